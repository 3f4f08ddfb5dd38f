"""Ranking: what the synthetic web's popularity skew does to the filter and to the trained model.

Chapter 2 (section *Ranking: what the crawl counts*) explains it.

Common Crawl decides what to crawl by Harmonic Centrality, a weighted tally of inbound links
(Baack 2024); the synthetic web's stand-in is a Zipf skew (``WebConfig.zipf_s``) over a seeded
ranking of the emoji. Two questions are measured here. First, as the skew grows, how many distinct
emoji still reach the model with at least one correct caption that the CLIP filter keeps, and how
much of what is kept goes to the most popular few? Second, does lds-mini, trained on a web with
``zipf_s = 0.5``, draw the emoji it saw often better than those it saw rarely? The second uses the
model's own evaluation (:mod:`lds.training.evaluate`): the same prompts, seeds and batches, with the rank of
each named emoji kept per image instead of averaged.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lds.data.corpus import KINDS, Corpus, WebConfig, popularity, popularity_ranks, sample_web


def _kept_correct(web: dict, keep: np.ndarray, n: int) -> np.ndarray:
    """Per corpus image: the kept pairs whose caption names it."""
    return np.bincount(web["image"][keep & web["matched"]], minlength=n)


def survival(web: dict, keep: np.ndarray, corpus: Corpus, cfg: WebConfig) -> dict:
    """Which emoji survive a filter decision ``keep`` on ``web`` (drawn with ``cfg``).

    An emoji *survives* when at least one pair with its correct caption (any language) is kept: only
    then can the model learn to draw it from its name.
    """
    keep = np.asarray(keep, bool)
    n = len(corpus)
    in_web = np.bincount(web["image"], minlength=n) > 0
    kept_correct = _kept_correct(web, keep, n)
    kept_pairs = np.bincount(web["image"][keep], minlength=n)
    ranks = popularity_ranks(corpus, cfg)
    top = ranks <= np.quantile(ranks, 0.1)  # the most linked tenth of the emoji (and their tones)
    kinds = np.array(corpus.kinds)
    tones = np.array(corpus.tones)
    survives = kept_correct > 0
    return {
        "zipf_s": float(cfg.zipf_s),
        "distinct_in_web": int(in_web.sum()),
        "survive": int(survives.sum()),
        "survive_share": float(survives.mean()),
        "top_tenth_share_of_kept": float(kept_pairs[top].sum() / max(1, kept_pairs.sum())),
        "survive_by_kind": {k: float(survives[kinds == k].mean()) for k in KINDS},
        "survive_by_tone": {str(t): float(survives[tones == t].mean()) for t in sorted(set(tones))},
    }


def exposure(web: dict, keep: np.ndarray, corpus: Corpus) -> dict:
    """How often each kind of emoji reaches the U-Net: kept pairs with a correct caption, by kind.

    The U-Net's main stage draws uniformly from the kept pairs, so an emoji's share of them is its share of
    that stage (the full recipe's last stage, ``unet_balance``, then draws every family equally often). Counted per image and per *shape family* (an emoji and its skin-tone variants, which share
    one drawing): a hand in five tones splits its pairs five ways per image, yet the family, one shape
    to learn, is seen more often than a one-image emoji such as an apple. Medians by kind, and the share
    of images that never reach the U-Net under their own name. ``share_if_family_balanced``: the kind's share
    of training if the U-Net drew every shape family that reaches it equally often instead of every kept pair
    (the most that reweighting by family could give a kind).
    """
    keep = np.asarray(keep, bool)
    n = len(corpus)
    correct = _kept_correct(web, keep, n)
    kinds = np.array(corpus.kinds)
    family = corpus.families
    family_pairs = np.bincount(family, weights=correct, minlength=family.max() + 1)
    family_size = np.bincount(family, minlength=family.max() + 1)
    reached = family_pairs > 0
    out = {"kept_correct_pairs": int(correct.sum()), "by_kind": {}}
    for k in KINDS:
        mask = kinds == k
        if not mask.any():
            continue
        fams = np.unique(family[mask])
        out["by_kind"][k] = {
            "images": int(mask.sum()),
            "families": int(len(fams)),
            "images_per_family": float(family_size[fams].mean()),
            "median_pairs_per_image": float(np.median(correct[mask])),
            "median_pairs_per_family": float(np.median(family_pairs[fams])),
            "never_reached_share": float((correct[mask] == 0).mean()),
            "share_of_training": float(correct[mask].sum() / max(1, correct.sum())),
            "share_if_family_balanced": float(reached[fams].sum() / max(1, reached.sum())),
        }
    return out


def caption_exposure(web: dict, keep: np.ndarray, corpus: Corpus, names: list[str], lang: str = "en") -> dict:
    """For each ``lang`` name in ``names``: how many kept pairs show its image under its own name in that
    language (``own_caption``), under any correct caption (``any_language``), and how many pairs its shape
    family has (``family``). A prompt's own-caption count is how often the U-Net saw exactly that prompt beside
    the right picture in the filtered web: a handful is too few, whatever the kind's median says."""
    keep = np.asarray(keep, bool)
    family = corpus.families
    correct = keep & web["matched"]
    family_pairs = np.bincount(family[web["image"][correct]], minlength=family.max() + 1)
    out = {}
    for name in names:
        i = corpus.find(name, lang)
        own = correct & (web["image"] == i) & (web["lang"] == lang)
        out[name] = {"own_caption": int(own.sum()), "any_language": int((correct & (web["image"] == i)).sum()),
                     "family": int(family_pairs[family[i]])}
    return out


def recorded_training_web(pipe, corpus: Corpus, clip=None, bank=None, images=None):
    """The filtered web ``pipe`` was trained on, rebuilt from its records: the web drawn from its training
    configuration (:meth:`lds.pipeline.loading.ModelSource.training_config`), scored by its own CLIP
    (``clip``, a :class:`lds.instruments.vectorspace.WebCLIP`, loaded unless given) and kept at the threshold
    its ``filter_report.json`` recorded. ``bank``: the corpus's image embeddings by that CLIP, if computed
    already; ``images``: only the pairs that show these corpus images (a gesture's tones), scored alone, each
    pair's image embedded in turn (a few pairs cost a few embeddings; batched otherwise than the whole web's,
    a score can differ from the whole web's in its last bit, 1e-7). Returns (web, scores, keep), or None for a model without those records (SD 1.5: its data are not available)."""
    import json

    from lds.models.clip import clip_score
    from lds.pipeline.loading import model_source

    source = model_source(pipe)
    config = source.training_config()
    report = source.folder / "filter_report.json" if source.folder else None
    if config is None or report is None or not report.is_file():
        return None
    if clip is None:
        from lds.instruments.vectorspace import web_clip

        clip = web_clip(pipe)
    web = sample_web(corpus, WebConfig(**config["web"]))
    pairs = (corpus.rgb(), web["image"])
    if images is not None:
        web = {k: v[np.isin(web["image"], images)] for k, v in web.items()}
        pairs, bank = corpus.rgb()[web["image"]], None
    if len(web["image"]):
        scores = clip_score(clip.model, clip.tokenizer, pairs, web["caption"], bank=bank).scores
    else:  # no pair shows the images asked for
        scores = np.zeros(0, np.float32)
    return web, scores, scores >= json.loads(report.read_text())["threshold"]


def name_across_languages(pipe, web: dict, keep: np.ndarray, corpus: Corpus, name: str, n_seeds: int = 8,
                          guidance_scale: float = 5.0) -> dict:
    """One emoji prompted by its name in each of the corpus's languages: per language, the name, the pairs of
    ``web`` that show the emoji under that name (``in_web``), how many of those the filter decision ``keep`` kept
    (``kept``), and in how many of ``n_seeds`` seeds (0, 1, ...) the model drew the emoji (named emoji in the
    pixel judge's top 5, as the model card's grid counts). ``name`` is the English name. Languages in which the
    name also names another emoji are left out (the judge could not tell which one was asked for)."""
    from lds.data.corpus import LANGUAGES
    from lds.training.evaluate import prompt_ranks

    target = corpus.find(name)
    names = {lang: corpus.records[target]["names"][lang] for lang in LANGUAGES}
    langs = [lang for lang in LANGUAGES if corpus.find(names[lang], lang) == target]
    everything = np.ones(len(web["image"]), bool)
    out = {}
    ranks = prompt_ranks(pipe, [names[lang] for lang in langs], n_seeds=n_seeds, guidance_scale=guidance_scale,
                         lang=langs)
    for lang in langs:
        n = names[lang]
        out[lang] = {"name": n,
                     "in_web": caption_exposure(web, everything, corpus, [n], lang)[n]["own_caption"],
                     "kept": caption_exposure(web, keep, corpus, [n], lang)[n]["own_caption"],
                     "drawn": int((ranks[n] < 5).sum()), "seeds": n_seeds}
    return out


def plot_name_across_languages(pipe, table: dict, seed: int = 0, guidance_scale: float = 5.0):
    """The images :func:`name_across_languages` judged for ``seed``, one per language, each titled with the
    language, the kept pairs under that name and the seeds drawn."""
    import matplotlib.pyplot as plt

    from lds.pipeline.sampling import generate

    langs = list(table)
    images = generate(pipe, [table[lg]["name"] for lg in langs], seed=seed,
                      guidance_scale=guidance_scale).image_tensor.float().cpu()
    cols = (len(langs) + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(1.05 * cols, 3.4))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, lg, im in zip(axes, langs, images):
        ax.imshow(im.permute(1, 2, 0).numpy())
        t = table[lg]
        ax.set_title(f"{lg}: web {t['in_web']}\nkept {t['kept']}\ndrawn {t['drawn']}/{t['seeds']}", fontsize=7)
    fig.tight_layout()
    return fig


def zipf_sweep(clip, corpus: Corpus, cfg: WebConfig, zipf_values, drop_share: float, image_embeds,
               known=None) -> dict:
    """:func:`survival` for webs drawn at each popularity skew, each filtered at ``drop_share``.

    Everything but ``zipf_s`` stays as in ``cfg`` (same seed, size, languages and noise). The captions
    of all the webs are embedded once (all the webs are scored as one), so the sweep costs about one web's
    scoring; ``known`` (a :class:`lds.models.clip.PairScores` of a web scored already) saves embedding its
    captions again.
    """
    from lds.data.clip_filter import threshold_for_share
    from lds.models.clip import clip_score

    webs = {float(s): sample_web(corpus, dataclasses.replace(cfg, zipf_s=float(s))) for s in zipf_values}
    every = clip_score(clip.model, clip.tokenizer, (corpus.rgb(), np.concatenate([w["image"] for w in webs.values()])),
                       np.concatenate([w["caption"] for w in webs.values()]), bank=image_embeds, known=known).scores
    ends = np.cumsum([len(w["image"]) for w in webs.values()])
    out = {}
    for (s, web), end in zip(webs.items(), ends):
        scores = every[end - len(web["image"]):end]
        keep = scores >= threshold_for_share(scores, drop_share)
        out[s] = survival(web, keep, corpus, dataclasses.replace(cfg, zipf_s=s))
    return out


@dataclasses.dataclass
class DrawnWell:
    """Per-image results of lds-mini's evaluation, beside each emoji's popularity in its training web."""

    names: list[str]
    targets: np.ndarray  # corpus index of each prompted emoji
    clip_rank: np.ndarray  # 0 = the generated image's nearest corpus image (CLIP judge) is the named emoji
    pixel_rank: np.ndarray  # the same under the pixel judge
    popularity_rank: np.ndarray  # 1 = most linked in the training web
    expected_pairs: np.ndarray  # how many training-web pairs show this emoji, in expectation
    images: object  # (N, 3, H, W) tensor of the generated images


def evaluation_ranks(pipe, training_web: WebConfig, n_prompts: int | None = None, bank=None,
                     progress: bool = False) -> DrawnWell:
    """Redo lds-mini's evaluation (:func:`lds.training.evaluate.evaluate_model`, English prompts, guided) per image.

    Same prompts, seeds and batches as the model card's evaluation, so with ``n_prompts`` left at
    the evaluation's 96 the top-1 shares equal those in ``evaluation.json``; fewer prompts take the
    first ones (the last batch is then smaller, so its images can differ from the evaluation's).
    ``bank``: the corpus's CLIP image embeddings, if already computed with the same CLIP.
    """
    from pathlib import Path

    from lds.data.corpus import load_corpus
    from lds.models.clip import load_clip
    from lds.pipeline.loading import model_source
    from lds.training.evaluate import EvalConfig, english_targets, generate_batches, judge_ranks

    cfg = EvalConfig()
    corpus = load_corpus()
    source = model_source(pipe).folder
    folder = (source or Path("")) / "clip"
    if source is None or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no CLIP: the per-image evaluation needs the model's own CLIP "
                                "(lds-mini ships one; Stable Diffusion 1.5 does not).")
    targets = english_targets(corpus, cfg)
    if n_prompts is not None:
        targets = targets[:n_prompts]
    names = [corpus.records[i]["names"]["en"] for i in targets]
    images = generate_batches(pipe, names, cfg, cfg.guidance_scale, progress)
    ranks = judge_ranks(images, targets, corpus, load_clip(folder, pipe.text_encoder), bank)
    (clip_rank, _), (pixel_rank, _) = ranks["clip"], ranks["pixel"]
    weights = popularity(corpus, training_web)
    return DrawnWell(names, targets, clip_rank, pixel_rank, popularity_ranks(corpus, training_web)[targets],
                     weights[targets] * training_web.pairs, images)


def drawn_well_summary(d: DrawnWell) -> dict:
    """Top-5 shares for the more and the less popular half of the prompts, and rank correlations."""
    from lds.measures import spearman

    order = np.argsort(d.popularity_rank, kind="stable")
    half = len(order) // 2
    popular, rare = order[:half], order[half:]
    return {
        "prompts": int(len(d.targets)),
        "clip_top1": float((d.clip_rank == 0).mean()),
        "clip_top5_popular_half": float((d.clip_rank[popular] < 5).mean()),
        "clip_top5_rare_half": float((d.clip_rank[rare] < 5).mean()),
        "pixel_top5_popular_half": float((d.pixel_rank[popular] < 5).mean()),
        "pixel_top5_rare_half": float((d.pixel_rank[rare] < 5).mean()),
        # Spearman of expected training pairs against retrieval rank: negative = seen more, drawn better
        "spearman_pairs_vs_clip_rank": spearman(d.expected_pairs, d.clip_rank),
        "spearman_pairs_vs_pixel_rank": spearman(d.expected_pairs, d.pixel_rank),
        "median_expected_pairs": float(np.median(d.expected_pairs)),
    }


def plot_sweep(sweep: dict):
    """Distinct emoji that survive, and the most popular tenth's share of what is kept, against zipf_s."""
    import matplotlib.pyplot as plt

    s = sorted(sweep)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 2.8))
    a.plot(s, [sweep[x]["survive_share"] for x in s], "o-")
    a.set_xlabel("popularity skew zipf_s")
    a.set_ylabel("share of the corpus that survives")
    a.set_ylim(0, 1.02)
    b.plot(s, [sweep[x]["top_tenth_share_of_kept"] for x in s], "o-", color="C3")
    b.set_xlabel("popularity skew zipf_s")
    b.set_ylabel("share of kept pairs: top tenth")
    b.set_ylim(0, 1.02)
    fig.tight_layout()
    return fig


def plot_drawn_well(d: DrawnWell):
    """Each evaluated emoji: expected training pairs (log) against the CLIP judge's rank (log)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.scatter(d.expected_pairs, d.clip_rank + 1, s=12)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pairs showing the emoji in the training web (expected)")
    ax.set_ylabel("rank of the named emoji + 1\n(1 = drawn recognisably)")
    fig.tight_layout()
    return fig
