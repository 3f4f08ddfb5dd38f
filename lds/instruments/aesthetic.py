"""A simulated aesthetic stage: an explicit taste, a threshold, and what it removes.

Chapter 2 (section *Taste: a simulated aesthetic stage*) explains it, and chapter 0 follows one
image through it.

Stable Diffusion 1.5 was fine-tuned on "laion-aesthetics v2 5+": the LAION-5B pairs whose image a
small predictor scored 5 or more out of 10. That predictor is a linear model on CLIP ViT-L/14 image
embeddings, trained on people's ratings (SAC, ratings of AI-generated images; LAION-Logos; AVA), so
its taste is learned from raters and never written down. It looks at the image only, never at the
caption.

This module is a **simulation**, not that predictor. Its taste is stated in one line: *colourful
pictures are beautiful*. The score is Hasler and Süsstrunk's colourfulness (2003), computed on the
image as the book shows it (composited on white), so a small or pale drawing scores low and a
saturated one high. As in LAION-Aesthetics, the score sees pixels only, and a threshold turns it into
a decision. The point is not that LAION's raters liked colour (the book cannot know what they
liked) but that any stated taste, applied by threshold, removes some kinds, tones and subjects more
than others, and that this can be counted.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lds.data.corpus import KINDS, LANGUAGES, TONE_NAMES, Corpus, blank_images

TASTE = "colourfulness (Hasler and Süsstrunk 2003) of the image on a white background: colourful is beautiful"


@dataclasses.dataclass
class AestheticConfig:
    # The threshold is the score below which this share of the scored images falls, as the book's CLIP
    # filter is set by the share it drops (lds.data.clip_filter). LAION-Aesthetics v2 5+ kept roughly a quarter of
    # LAION-2B-en (about 600 million of 2.3 billion pairs), so 0.75 is the closest analogue; 0.5 shows
    # the mechanism without emptying whole kinds.
    drop_share: float = 0.5


def colourfulness(images: np.ndarray) -> np.ndarray:
    """Hasler and Süsstrunk's colourfulness M of each ``(N, H, W, 3)`` image in [0, 1].

    M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2) on the 0-255 scale, with
    rg = R - G and yb = (R + G) / 2 - B. 0 for a grey or white image; about 100 is "quite
    colourful" on their scale, above 150 "extremely colourful".
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"colourfulness expects (N, H, W, 3) images in [0, 1], got shape {x.shape}; "
                         "for RGBA corpus images pass corpus.rgb().")
    x = x * 255.0
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    spread = np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2)
    mean = np.sqrt(rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2)
    return spread + 0.3 * mean


def aesthetic_scores(corpus: Corpus) -> np.ndarray:
    """The simulated aesthetic score of every corpus image (:data:`TASTE`)."""
    return colourfulness(corpus.rgb())


def aesthetic_threshold(scores: np.ndarray, cfg: AestheticConfig = AestheticConfig()) -> float:
    if not 0.0 <= cfg.drop_share < 1.0:
        raise ValueError(f"drop_share must be in [0, 1), got {cfg.drop_share}: it is the share of images removed.")
    return float(np.quantile(scores, cfg.drop_share))


def aesthetic_report(corpus: Corpus, scores: np.ndarray, threshold: float, web: dict | None = None,
                     keep: np.ndarray | None = None) -> dict:
    """What the aesthetic threshold removes: of the corpus by kind and tone; of the web by language.

    ``scores`` are per corpus image. With ``web`` (and optionally ``keep``, the CLIP filter's
    decision per pair), the stage runs after the CLIP filter, as LAION-Aesthetics ran on LAION-5B:
    the report gives, among the pairs the CLIP filter kept, the share the aesthetic stage keeps per
    caption language, and the language mix before and after it.
    """
    passes = np.asarray(scores) >= threshold
    kinds = np.array(corpus.kinds)
    tones = np.array(corpus.tones)
    families = np.asarray(corpus.families)
    blank = blank_images(corpus)
    achromatic = (np.asarray(scores) == 0) & ~np.isin(np.arange(len(passes)), blank)

    def share(mask):
        return {"images": int(mask.sum()), "kept": int((passes & mask).sum()),
                "kept_share": float((passes & mask).sum() / max(1, mask.sum()))}

    out = {
        "taste": TASTE,
        "threshold": float(threshold),
        "images": int(len(passes)),
        "kept": int(passes.sum()),
        "kept_share": float(passes.mean()),
        "by_kind": {k: share(kinds == k) for k in KINDS},
        "by_tone": {t: share(tones == t) for t in TONE_NAMES + ("mixed",) if (tones == t).any()},
        # score 0: the blank glyphs (lds.data.corpus.blank_images) and the achromatic drawings (grey, black, white)
        "zero_score": int((np.asarray(scores) == 0).sum()),
        "blank_images": len(blank),
        "achromatic": int(achromatic.sum()),
        "achromatic_by_kind": {k: int((achromatic & (kinds == k)).sum()) for k in KINDS if (achromatic & (kinds == k)).any()},
        # the matched base for the tones: the unmarked (yellow) member of each family that has skin-tone variants,
        # the same drawings before recolouring; "none" as a whole mixes faces, flags and objects
        "toned_family_base": share((tones == "none") & np.isin(families, families[tones != "none"])),
        "mean_score_by_tone": {t: float(np.asarray(scores)[tones == t].mean())
                               for t in TONE_NAMES + ("mixed",) if (tones == t).any()},
    }
    if web is not None:
        keep = np.ones(len(web["image"]), bool) if keep is None else np.asarray(keep, bool)
        pair_passes = passes[web["image"]]
        out["pairs_in"] = int(keep.sum())
        out["pairs_kept"] = int((keep & pair_passes).sum())
        out["by_language"] = {}
        for lang in LANGUAGES:
            m = keep & (web["lang"] == lang)
            out["by_language"][lang] = {"pairs": int(m.sum()), "kept": int((m & pair_passes).sum()),
                                        "kept_share": float((m & pair_passes).sum() / max(1, m.sum()))}
        out["language_mix_before"] = {lang: float((keep & (web["lang"] == lang)).sum() / max(1, keep.sum()))
                                      for lang in LANGUAGES}
        out["language_mix_after"] = {lang: float((keep & pair_passes & (web["lang"] == lang)).sum()
                                                 / max(1, (keep & pair_passes).sum())) for lang in LANGUAGES}
    return out


def plot_extremes(corpus: Corpus, scores: np.ndarray, n: int = 12):
    """The ``n`` images the taste ranks lowest and highest (blank images left out), with their scores."""
    import matplotlib.pyplot as plt

    order = [i for i in np.argsort(scores, kind="stable") if scores[i] > 0]
    rows = (("lowest", order[:n]), ("highest", order[::-1][:n]))
    fig, axes = plt.subplots(2, n, figsize=(n * 0.9, 2.4))
    rgb = corpus.rgb()
    for r, (label, idx) in enumerate(rows):
        for c, i in enumerate(idx):
            ax = axes[r, c]
            ax.imshow(rgb[i])
            ax.set_title(f"{scores[i]:.0f}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle("the simulated taste: least and most colourful emoji (score above each)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_kept_by(report: dict):
    """Bars: the share of corpus images the stage keeps, by kind and by skin tone."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), gridspec_kw={"width_ratios": [8, 7]})
    for ax, key, title in ((axes[0], "by_kind", "by kind"), (axes[1], "by_tone", "by skin tone ('none': yellow default)")):
        cats = [c for c, v in report[key].items() if v["images"]]
        ax.bar(range(len(cats)), [report[key][c]["kept_share"] for c in cats], color="#34568b")
        ax.axhline(report["kept_share"], color="#c0504d", lw=1)  # the overall kept share
        ax.set_xticks(range(len(cats)), cats, rotation=45, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("share of images kept")
    fig.tight_layout()
    return fig
