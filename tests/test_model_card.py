"""The model card is computed from the training records and the loaded model; its numbers are checked."""


def test_model_card_numbers(executed):
    r = executed("11_model_card")
    assert r["corpus_size"] == 3812 and r["corpus_skin_tone_variants"] == 1890
    assert r["checkpoint_megabytes"] <= 40, "the checkpoint in git stays at 40 MB or less"
    # the full recipe's weights (the quick recipe's: 22.9 dB, top-1 0.33, top-5 0.51, SSIM 0.46, CLIP top-1 0.77)
    assert r["holdout_psnr_db"] > 27, "the full recipe's reconstruction-weighted decoder: 27.4 dB (target 28, not met)"
    # the prompt steers the image: prompted retrieval far above the unconditional floor (the lds-mini issue's targets:
    # top-1 0.6, top-5 0.8, every kind's top-5 0.5, SSIM 0.7, CLIP's English name retrieval 0.95; the 28 dB target
    # for the autoencoder is not met)
    assert r["eval_en_pixel_top1"] >= 0.6 and r["eval_en_pixel_top5"] >= 0.8 and r["eval_uncond_pixel_top5"] < 0.05
    assert r["eval_worst_kind_pixel_top5"] >= 0.5
    # the grid prompts, 8 seeds each: after the balanced last stage all but one are drawn in most seeds (measured 0.94;
    # "red apple", two kept pairs under its English name, is the one never drawn right)
    assert r["grid_seeds_evaluated"] == 8 and r["grid_top5"] >= 0.85 and r["grid_never_drawn"] <= 2
    assert r["eval_en_ssim"] >= 0.7 and r["eval_uncond_ssim"] < 0.2
    assert r["clip_en_name_top1"] >= 0.95
    assert r["eval_en_clip_top5"] > 0.5 and r["eval_en_clip_top5"] > r["eval_uncond_clip_top5"] + 0.4
    # what the card's prose says: people and hands come out right more often than the one-off kinds, and drawn closer
    assert r["eval_people_hands_pixel_top5"] >= r["eval_other_kinds_pixel_top5"]
    assert r["eval_people_hands_pixel_top5"] - r["eval_other_kinds_pixel_top5"] < 0.1  # "barely tells them apart"
    assert r["eval_people_hands_ssim"] > r["eval_other_kinds_ssim"] + 0.1  # measured 0.87 against 0.73
    # the two budgets side by side: the quick recipe's record is kept beside the weights
    assert r["recipe_quick_minutes"] <= 45 and r["recipe_quick_en_pixel_top5"] < r["eval_en_pixel_top5"]
    # the filter keeps English more often than the other languages (chapter 2 measures it)
    assert r["filter_en_kept"] > r["filter_non_en_kept"]
    # most of the 49,408 token embeddings are never used by the corpus's captions
    assert 0.05 < r["vocabulary_share_seen"] < 0.5
    assert r["unet_parameters"] > 1_000_000 and r["text_encoder_parameters"] > r["unet_parameters"]


# -- the weights themselves, not the report -----------------------------------------------------------
# evaluation.json and metrics.json are written by `lds train`; the test above reads them and would stay
# green if the shipped U-Net were swapped for random weights. This one generates from the shipped
# weights and scores retrieval live (lds/training/evaluate.py's judges) on 20 English corpus names, 10 steps.

def test_live_retrieval_from_the_shipped_weights(pipe):
    import numpy as np

    from lds.models.clip import image_embeds, load_clip
    from lds.data.corpus import load_corpus
    from lds.training.evaluate import retrieval_scores
    from lds.pipeline.loading import WEIGHTS_DIR
    from lds.pipeline.sampling import generate

    corpus = load_corpus()
    targets = np.random.default_rng(0).choice(len(corpus), size=20, replace=False)
    prompts = [corpus.records[i]["names"]["en"] for i in targets]
    clip = load_clip(WEIGHTS_DIR / "lds-mini" / "clip", pipe.text_encoder)
    bank = image_embeds(clip, corpus.rgb())
    out = generate(pipe, prompts, seed=0, guidance_scale=5.0, num_inference_steps=10)
    s = retrieval_scores(out.image_tensor.float().cpu(), targets, corpus, clip, bank)
    # Measured (2026-12-02, this call): the full recipe's weights score pixel_top5 0.90, clip_top5 0.95, median
    # ranks 0 / 0 of 3,812 (the quick recipe's: 0.35 / 0.55, ranks 51.5 / 3.5). The same pipeline with the U-Net
    # re-initialised from its own config (UNet2DConditionModel.from_config, seeds 0-1) scores 0.0-0.05 with median
    # ranks 2,114-2,441 / 2,157-2,222; guidance 0 (the prompt cannot act) 0.0 / 0.0, ranks 2,260 / 2,457.
    assert s["pixel_top5"] >= 0.6, s
    assert s["clip_top5"] >= 0.6, s
    assert s["pixel_median_rank"] < 5 and s["clip_median_rank"] < 5, s


def test_grid_prompts_the_main_stage_never_drew_are_drawn_by_the_shipped_weights(pipe):
    """The balanced last U-Net stage: prompts the main stage drew right in none of 8 seeds (benchmarks/unet_balance.jsonl:
    dog face, banana, rocket, chequered flag) come out as the named emoji in most seeds, live, from the shipped weights."""
    from lds.training.evaluate import prompt_ranks

    ranks = prompt_ranks(pipe, ["dog face", "banana", "rocket", "chequered flag"], n_seeds=4)
    # Measured (2026-12-03): 4 of 4 seeds each with the shipped weights; the main stage's U-Net alone: 0 of 8 each
    for prompt, r in ranks.items():
        assert (r < 5).sum() >= 3, (prompt, r.tolist())


# -- prompts no training decision looked at (issue 27, item 6) ----------------------------------------

def test_the_card_scores_prompts_no_training_decision_looked_at(executed):
    import json
    from pathlib import Path

    import yaml

    from lds.data.corpus import load_corpus
    from lds.pipeline.loading import WEIGHTS_DIR
    from lds.training.evaluate import KIND_GRID

    r = executed("11_model_card")
    ci = yaml.safe_load((Path(__file__).parent / "ci_parameters" / "11_model_card.yml").read_text())
    assert r["untouched_prompts_n"] == ci["untouched_prompts"] == len(r["untouched_prompt_list"])
    # none of them, nor any emoji of their shape families, is an evaluation prompt, a top-up or a grid prompt
    corpus = load_corpus()
    evaluation = json.loads((WEIGHTS_DIR / "lds-mini" / "evaluation.json").read_text())
    base = {rec["names"]["en"]: rec["base"] for rec in corpus.records}
    looked = {base[p] for p in evaluation["prompts"] + evaluation["by_kind_extra_prompts"]
              + [q for qs in KIND_GRID.values() for q in qs]}
    assert not looked & {base[p] for p in r["untouched_prompt_list"]}
    assert r["untouched_families_excluded"] >= len(looked) and r["untouched_pool_emoji"] > 1000
    # measured at full size (96 prompts, 2026-12-07): see the card; the prompt steers these too, far above the floor
    assert r["eval_untouched_pixel_top5"] >= 0.6 and r["eval_untouched_uncond_pixel_top5"] < 0.1
    gap = r["eval_untouched_pixel_top5"] - r["eval_en_pixel_top5"]
    assert r["untouched_vs_tuned_word"] == ("about the same as" if abs(gap) <= 0.05 else "below" if gap < 0 else "above")


def test_the_card_says_the_extension_did_not_fix_red_apple(executed):
    r = executed("11_model_card")
    at, after = r["red_apple_seeds_at_extension"], r["red_apple_seeds_after"]
    assert after < at and r["red_apple_extension_word"].startswith("fewer")  # 3 of 8 at the extension, 0 of 8 after
    assert r["balance_grid_word"] == ("raised" if r["grid_top5"] > r["grid_top5_before_balance"] else "did not raise")
    assert r["training_hours"] == round(r["training_minutes"] / 60, 1) or abs(r["training_hours"] - r["training_minutes"] / 60) < 0.06
