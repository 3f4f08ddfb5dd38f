"""The prose's comparative and directional words pinned to the numbers they rest on (issue 27: prose written once
around glued numbers that later moved). tests/test_words.py finds every sentence of a chapter that uses such a
word ("most", "least", "falls", "rises", "before", "quickly", "far", "every", ...) beside a number, and requires
each to be either computed (a ``{glue:text}`..._word``` recorded with :func:`lds.book.record.word`) or pinned here.

A pin is ``(chapter stem, fragment of the sentence, check)``. ``check`` is a function of the chapter's records
(``executed(stem)``, at CI parameters) that is true while the number still fits the word, or a string saying why
the word rests on no measured number (a fact of the architecture, a definition, a count fixed by the code).
A fragment that no longer occurs in the chapter fails the test too: change the words, change the pin.
"""

import re


def _costliest_per_name(r) -> list[str]:
    """The two languages whose names cost the most tokens on average (chapter 5's records)."""
    per = {k[-2:]: v for k, v in r.items() if re.fullmatch(r"tokens_per_name_[a-z]{2}", k)}
    return sorted(per, key=per.get)[-2:]


PINS: list[tuple[str, str, object]] = [
    # ---- chapters 00-02
    ("00_framework", "costs more of the 75 slots a prompt has",
     "the 75 slots are CLIP's context window (77 less the start and end tokens), a fact of the architecture"),
    ("01_ensemble", "every one of the 77 slots, padding included",
     "77 slots are the text encoder's fixed context, filled by padding: the architecture, not a measurement"),
    ("01_ensemble", "In both the image appears only at the very end",
     lambda r: r["shapes"]["image"] == r["image_shape"] and r["largest_tensor_word"] != ""),
    ("01_ensemble", "a CLIP ViT-L/14 image encoder that diffusers runs on every generated image by default",
     "diffusers' StableDiffusionPipeline calls its safety checker on every output unless it is removed: its code, "
     "not a measured number (chapter 2, lds.pipeline.safety)"),
    ("01_ensemble", "so they grow with the ratio of positions",
     lambda r: r["positions_ratio"] < r["compression_ratio"] * 2 and r["sd15_positions_ratio"] == 64),
    ("01_ensemble", "far more than its {glue:text}`sd15_positions_ratio` times fewer",
     lambda r: r["sd15_flops_ratio"] > 5 * r["sd15_positions_ratio"]),
    ("01_ensemble", "do not ship in a Stable Diffusion download at all",
     lambda r: r["n_networks_generation"] >= 3 and r["n_networks_training_extra"] == 2),
    ("02_clip_filtered_web", "LAION is not used here: it was withdrawn in December 2023",
     "a date of history and a fact of the code (no download): no measured number"),
    ("02_clip_filtered_web", "3,812 emoji with their names in 14 languages",
     "the corpus's size and languages, and 'every pair' is every pair the code scores: counts fixed by the corpus"),
    ("02_clip_filtered_web", "LAION-400M kept pairs whose CLIP ViT-B/32 cosine was at least 0.30",
     "LAION's published thresholds (schuhmann2021laion400m, schuhmann2022laion5b): a fact of the sources"),
    ("02_clip_filtered_web", "lds-mini's CLIP saw 60% English captions; OpenAI's saw English almost only",
     "lds-mini's recorded training configuration (training_config.json: clip_web english_share 0.6) and OpenAI's "
     "published data: facts of the recipe and the source, not of this run"),
    ("02_clip_filtered_web", "most emoji appeared many times in the 80,000-pair",
     lambda r: r["drawn_well"]["median_expected_pairs"] > 5),
    ("02_clip_filtered_web", "never appeared in that web at all",
     lambda r: r["training_web_absent"] >= 0 and r["training_web_no_own_name"] >= r["training_web_absent"]),
    ("02_clip_filtered_web", "of the grid's prompts were never drawn",
     "'never drawn right' is the count's definition (top5_before == 0 over 8 seeds in unet_balance.json)"),
    ("02_clip_filtered_web", "are barely related (rank correlation",
     # and, in the grid (unet_balance.json, a training-time record), a prompt with one or two own-name pairs drawn in
     # every seed and a prompt with more drawn in none
     lambda r: abs(r["balance_spearman_pairs_before"]) < 0.3 and (lambda g: (
         any(v["own_caption_pairs"] <= 2 and v["top5_before"] == 1 for v in g.values())
         and any(v["own_caption_pairs"] > 2 and v["top5_before"] == 0 for v in g.values())))(
         __import__("json").loads((__import__("pathlib").Path(__file__).resolve().parents[1] / "lds" / "weights"
                                   / "lds-mini" / "unet_balance.json").read_text())["grid"])),
    ("02_clip_filtered_web", "continued the same U-Net with every {term}`shape family`",
     lambda r: r["balance_grid_top5_after"] > r["balance_grid_top5_before"]),
    ("02_clip_filtered_web", "drew the apple in at least half the seeds",
     "'at least half' is the definition of across_drawn_n in the cell (2 * drawn >= seeds)"),
    ("02_clip_filtered_web", "languages the synthetic web never showed the apple under its own name",
     "'never showed' and 'removed every such pair' are the definitions of across_never_n and across_filtered_n"),
    ("02_clip_filtered_web", "names kept at least one pair and still do not draw it",
     lambda r: r["across_kept_not_drawn_n"] > 0),
    ("02_clip_filtered_web", "it did change what the model\ncan draw",
     lambda r: r["balance_grid_top5_after"] > r["balance_grid_top5_before"]),
    ("02_clip_filtered_web", "among them every\ngrey family silhouette",
     lambda r: r["aesthetic_achromatic_by_kind"].get("person", 0) > 0 and r["aesthetic_threshold"] > 0
     and r["aesthetic_kept_by_kind"]["face"] > 0.5 > r["aesthetic_kept_by_kind"]["hand"]),
    ("02_clip_filtered_web", "Every pair, in any of 14 languages",
     "every pair of the web is scored by the code, by construction: no measured number"),
    ("02_clip_filtered_web", "yet every pair receives a place relative to every other",
     "every pair is scored on one scale by construction; the AUC beside it is the separate claim 3, computed"),
    ("02_clip_filtered_web", "for most of the corpus, nearness here does track",
     lambda r: r["kind_agreement"] > 0.5 and r["kind_agreement"] > 2 * r["kind_agreement_chance"]),
    ("02_clip_filtered_web", "and the paper's dog is an animal",
     lambda r: "animals" in r["kind_agreement_weakest"] and r["near_pair"]["image_percentile"] >= 90
     and not r["claim5_far_is_far"]),
    ("02_clip_filtered_web", "Pairs without a caption are dropped too, mostly by design",
     lambda r: r["uncaptioned_kept_share"] < r["kept_by_pair_type"]["default"]["matched"] - 0.4
     and r["claim4_uncaptioned_difference_training"][2] < 0),
    ("03_autoencoder", "of the noise and every other kind of input tried would pass",
     lambda r: min(r["best_name_passing_by_kind"].values()) >= 0.99),
    ("05_tokenization", "on one draw of the corpus's names in 14 languages (every English name, a share of each other",
     "the recipe's CLIP draw (training_config.json clip_web: 40,000 pairs, 60% English over 3,812 English names, the "
     "rest shared by 13 languages): a fact of the recorded recipe, and the count of trained rows is computed"),
    # ---- chapters 03-06
    ("05_tokenization", "CLIP's training draw held every English name but only a share of each other language's",
     lambda r: r["corpus_ids_never_trained"] > 0 and r["trained_token_ids"] < r["corpus_token_ids"]),
    ("05_tokenization", "Per name, the Russian and Arabic names cost the most",
     lambda r: set(_costliest_per_name(r)) == {"ru", "ar"} and r["tokens_per_name_zh"] < r["tokens_per_name_ar"]),
    ("03_autoencoder", "makes four checkable statements about it", "a list of the paper's statements; 'always', 'every' are the paper's words, tested below"),
    ("03_autoencoder", "halves the image twice (32 -> 8) instead of three times",
     lambda r: r["image_shape"][-1] // r["latent_shape"][-1] == 4 and r["compression_ratio"] < 48),
    ("03_autoencoder", "every 10 dB means ten times less squared error", "the definition of the decibel"),
    ("03_autoencoder", "while corpus images keep almost all of theirs; the checkerboard and the strokes are kept poorly too",
     lambda r: r["outside_summary"]["corpus"]["normalised_error"] < 0.1
     and min(r["outside_summary"][k]["normalised_error"] for k in ("checkerboard", "text-like strokes")) > 0.3
     and r["least_kept_kind"] == max(r["outside_summary"], key=lambda k: r["outside_summary"][k]["normalised_error"])),
    ("03_autoencoder", "though most of that is the gap between the four kinds of pair",
     lambda r: min(r["pixel_perceptual_spearman_within"].values()) < r["pixel_perceptual_spearman"]),
    ("03_autoencoder", "The most pixel-similar *other* emoji is far away on both measures",
     lambda r: r["distance_medians"]["nearest other emoji"]["perceptual"] > 3 * r["distance_medians"]["moved 1 px"]["perceptual"]
     and r["distance_medians"]["nearest other emoji"]["MSE"] > 3 * r["distance_medians"]["moved 1 px"]["MSE"]
     and r["shift_farther_in_pixels"] < 0.1),
    ("03_autoencoder", "so every one of its verdicts concerns the entire emoji",
     lambda r: r["receptive_field"] > r["image_shape"][-1]),
    ("03_autoencoder", "Nothing comes back unchanged: corpus images return at",
     lambda r: r["claim:9"]["parts"][0]["holds"] and r["edge_error_share"] > 0.2),
    ("03_autoencoder", "nothing comes back unchanged, and each reconstruction stands nearer its own original",
     lambda r: r["claim:9"]["parts"][0]["holds"] and r["recon_nearer_own_share"] >= 0.9),
    ("03_autoencoder", "Under no caption or a random name, noise would not have passed the filter",
     lambda r: r["noise_filter_pass_upper"] < 0.03 and min(r["best_name_passing_by_kind"].values()) >= 0.99),
    ("03_autoencoder", "but the error is not spread evenly", lambda r: r["edge_error_share"] > 0.2),
    ("03_autoencoder", "And noise is the input the autoencoder keeps least", lambda r: r["least_kept_kind"] == "Gaussian noise"),
    ("03_autoencoder", "it is the input kept least", lambda r: r["least_kept_kind"] == "Gaussian noise"),
    ("03_autoencoder", "to the perceptual judge every reconstruction stands nearer its own original",
     lambda r: r["recon_nearer_own_share"] == 1.0),
    ("03_autoencoder", "which it never saw, it finds it", "the discriminator was trained on originals and reconstructions only (lds.models.autoencoder); the reading is glued"),
    ("03_autoencoder", "lds-mini's 32-pixel emoji are a far narrower world than SD's photographs",
     lambda r: r["image_shape"][-1] * 16 == 512),
    ("04_unet_training", "they fall from almost 1 (almost all signal) to almost 0", "the scheduler's definition of the noise schedule"),
    ("04_unet_training", "Its high-frequency *share* falls, but the spectrum shows why",
     lambda r: r["skip_hf_share"]["all skips zeroed"] < r["skip_hf_share"]["normal"] and r["hf_energy_all_zeroed"] > 0.5),
    ("04_unet_training", "Without its skip connections the trained U-Net predicts noise far worse",
     lambda r: r["loss_skips_zeroed"] > 5 * r["loss_with_skips_same_batches"] and r["live_loss_last"] < r["live_loss_first"]),
    ("04_unet_training", "while the outline's error grows by the larger factor",
     lambda r: r["skip_growth_factor"]["coarse"] > r["skip_growth_factor"]["fine"]
     and r["skip_fine_over_coarse"] > 1),
    ("04_unet_training", "The live run shows how quickly this signal teaches something",
     lambda r: r["live_loss_last"] < r["live_loss_first"]),
    ("04_unet_training", "The fairer test turns the skips down only as far as the network still beats",
     lambda r: r["skip_fine_over_coarse"] > 1 and r["skip_fine_over_coarse_relative"] > 1
     and r["skip_test_strength"] > 0.5 and r["skip_half_working_cases"] < r["skip_probe_cases"] / 2),
    ("04_unet_training", "The evidence is mixed in both directions",
     lambda r: 0 < r["skip_detail_timesteps"] < r["skip_n_timesteps"] and 0 < r["skip_outline_timesteps"] < r["skip_n_timesteps"]
     and r["skip_by_timestep"]["100"]["growth_coarse"] >= r["skip_by_timestep"]["100"]["growth_fine"]
     and r["skip_by_timestep"]["700"]["growth_coarse"] < r["skip_by_timestep"]["700"]["growth_fine"]),
    ("05_tokenization", "Along the way we look at what the vocabulary does to the 14 languages", "a count fixed by the corpus (CLDR names in 14 languages)"),
    ("05_tokenization", "Every one of the 77 slots is passed on to the image model",
     lambda r: r["prompt_embeds_shape"][0] == 77),
    ("05_tokenization", "Every emoji in the corpus has a name in 14 languages", "a fact of the corpus (lds.data.corpus.LANGUAGES)"),
    ("05_tokenization", "ordered from the most frequent pair of symbols to the least",
     lambda r: r["vocab_decomposition"][2] == 48894 and r["vocab_total"] == 49408),
    ("05_tokenization", "A prompt reaches the model as 77 numbers", "the tokenizer's fixed context length (77)"),
    ("05_tokenization", "so in diffusers (which warns) their ends never reach the model",
     lambda r: r["tokens_per_name_ru"] > 2 * r["tokens_per_name_en"]),
    ("05_tokenization", "The cost falls unevenly on languages",
     lambda r: r["tokens_per_name_ru"] > r["tokens_per_name_en"]),
    ("05_tokenization", "The chapter confirms the first half of that sentence", "'first half' names a half of the quoted sentence, not a number"),
    ("05_tokenization", "a frozen record of what", "BPE's construction (merges in order of frequency in its training text), cited"),
    ("06_cross_attention", "At every step of {term}`denoising`, each region", "how cross-attention is computed (every layer call, every step)"),
    ("06_cross_attention", "draws two consequences that this chapter tests", "a paraphrase of the paper; no number"),
    ("06_cross_attention", "The bar chart shows all 77 slots", lambda r: r["slots_total"] == 77),
    ("06_cross_attention", "Everything outside the prompt's words", "a definition of the untyped slots"),
    ("06_cross_attention", "correlation at least 0.99 for every word", "the threshold of tests/test_attention_daam.py"),
    ("06_cross_attention", "The images show whether the modifier acted anyway", "no measured word; the counts are glued"),
    ("06_cross_attention", "tokens never occurred in training", lambda r: r["style_tokens_unseen"] > 0),
    ("06_cross_attention", "every region of the image spends its budget across the 77 slots at every step",
     lambda r: abs(r["share_sum"] - 1) < 1e-4 and r["slots_total"] == 77),
    ("06_cross_attention", "tokens are ones it never", lambda r: r["style_tokens_unseen"] > 0),
    ("06_cross_attention", "and \"fancy\" is a word lds-mini never trained",
     lambda r: bool(r["stereotype_word_untrained_pieces"])),
    ("07_denoising", "since the captions already give the unmarked variant every time",
     lambda r: r["tone_captions_at_ceiling"] and r["claim:23"]["verdict"] == "not testable on lds-mini"),
    ("07_denoising", "Against every pair that shows the gesture's family, whatever its caption",
     lambda r: r["tone_captions_at_ceiling"] and r["tone_gestures_counted"] > 0),
    # ---- chapters 07-09
    ("07_denoising", "70% is a line a reader can check by eye against the histogram: with 16 runs it means at least 12",
     "arithmetic of the stated threshold at the full-size 16 runs (12 of 16; a fair coin reaches 12 or more with "
     "probability 0.038); no measured number"),
    ("07_denoising", "One seed is shown; the verdict rests on every prompt and seed of claim 15's runs",
     "'every' names what the code loops over (order_runs, all of them); 15 is a claim number"),
    ("07_denoising", "but lds-mini never saw the words \"Gaussian\" or \"noise\" in a caption",
     lambda r: r["noise_prompt_words_in_captions"] == 0),
    ("07_denoising", "a reminder that a default need not be the majority of anything",
     "a hypothetical: what an exception would mean; 'majority' rests on no measured number"),
    ("08_guidance", "more than half of what agreement gained over the unprompted image is lost for",
     lambda r: r["agreement_collapsed"] == sum(a["lost_at_top"] > 0.5 for a in r["agreement_by_prompt"].values())),
    ("08_guidance", "\"commodity\", is a token lds-mini never trained",
     lambda r: r["prompt_in_corpus_captions"] == 0),
    ("08_guidance", "At the top of the sweep it loses more than half its gain (the chapter's bar for collapse)",
     "'more than half its gain' is the chapter's stated bar for collapse, a definition; the prompts that pass it are the "
     "computed list agreement_collapsed_prompts"),
    ("11_model_card", "which is near its ceiling for both",
     lambda r: min(r["eval_people_hands_pixel_top5"], r["eval_other_kinds_pixel_top5"]) >= 0.85),
    # ---- chapters 10-12
    ("10_claims", "a vocabulary file that can never have exactly 49,152 entries",
     "an example of a rule's ceiling: CLIP's vocabulary file has 49,408 entries by construction (chapter 5), so no "
     "measurement can give the paper's 49,152"),
    ("11_model_card", "most of those rows were never trained",
     lambda r: r["vocabulary_share_seen"] < 0.5),
    ("11_model_card", "tells almost every emoji apart",
     lambda r: r["clip_en_name_top1"] >= 0.9),
    ("12_audits", "would draw the unmarked variant every time",
     lambda r: r["tone_base_captioned"] == 1.0),
    ("12_audits", "names each emoji in every language of the CLDR names",
     "the languages audit's spec names each emoji in all 14 CLDR languages by construction "
     "(tests/test_ch12_audits.py::test_languages_audit_covers_all_14)"),
]

