"""CLIP's vector space: scoring the synthetic web, neighbours, distances, and a 2-D map.

Chapter 2 (CLIP and the filtered web) explains it; :mod:`lds.data.clip_filter` holds the thresholds.

Every image and every caption becomes a unit vector; the CLIP score of a pair is the cosine of
their angle. Scoring a web of many thousand pairs only needs one embedding per distinct image and per
distinct caption, so :func:`lds.models.clip.clip_score` embeds each once and takes dot products: the
same numbers as scoring pair by pair, for a fraction of the work.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lds.data.corpus import KINDS, Corpus
from lds.instruments.display import font_draws
from lds.pipeline.loading import model_source


# ----------------------------------------------------------------------------------------------
# Which CLIP
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class WebCLIP:
    """The full CLIP (image and text towers) used to score the synthetic web."""

    model: torch.nn.Module  # transformers CLIPModel
    tokenizer: object
    folder: str  # where its clip/ folder is
    own: bool  # True: the loaded model's own CLIP; False: lds-mini's, because the model ships none
    note: str


def web_clip(pipe) -> WebCLIP:
    """The CLIP that scored the model's training web: the pipeline's own ``clip/`` where it has one.

    SD 1.5 ships only CLIP's text tower (its text encoder, ViT-L/14's); the image tower and the
    ViT-B/32 that filtered LAION are not part of it. For such a model the chapter uses lds-mini's
    full CLIP (the synthetic web is lds-mini's corpus anyway) and says so.
    """
    from lds.models.clip import load_clip

    folder = model_source(pipe).folder
    own = folder / "clip" if folder else None
    if own is not None and (own / "config.json").is_file():
        te = pipe.text_encoder
        if te.device.type != "cpu" or te.dtype != torch.float32:  # CLIP is scored on the CPU in float32
            import copy

            te = copy.deepcopy(te).to("cpu", torch.float32)
        return WebCLIP(load_clip(own, te), pipe.tokenizer, str(own), True,
                       "the loaded model's own CLIP (its text tower is the pipeline's text encoder)")
    from lds.pipeline.loading import load_pipeline

    mini = load_pipeline("lds-mini")
    folder = model_source(mini).folder / "clip"
    return WebCLIP(load_clip(folder, mini.text_encoder), mini.tokenizer, str(folder), False,
                   f"{model_source(pipe).name} ships no CLIP image tower, so lds-mini's CLIP scores the "
                   "synthetic web (lds-mini's corpus)")


# ----------------------------------------------------------------------------------------------
# Embedding and scoring the web
# ----------------------------------------------------------------------------------------------

def embed_corpus(clip: WebCLIP, corpus: Corpus) -> torch.Tensor:
    from lds.models.clip import image_embeds

    return image_embeds(clip.model, corpus.rgb())


def embed_captions(clip: WebCLIP, captions) -> torch.Tensor:
    from lds.models.clip import text_embeds

    return text_embeds(clip.model, clip.tokenizer, list(captions))


def matched_auc(scores: np.ndarray, matched: np.ndarray, other: np.ndarray) -> float:
    """Probability that a random matched pair outscores a random ``other`` pair (ties count half): the ROC curve's
    area, which is the Mann-Whitney U of the matched scores over the number of (matched, other) pairs
    (``scipy.stats.mannwhitneyu``)."""
    from scipy.stats import mannwhitneyu

    # in float64: scipy sums the ranks in the scores' own dtype, and float32 loses the last of 10^8 counted pairs
    a, b = np.asarray(scores[matched], np.float64), np.asarray(scores[other], np.float64)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(mannwhitneyu(a, b).statistic / (len(a) * len(b)))


# ----------------------------------------------------------------------------------------------
# Distances, neighbours, ranks
# ----------------------------------------------------------------------------------------------

def most_similar(query: torch.Tensor, pool: torch.Tensor, k: int = 8, exclude: int | None = None):
    """Indices and cosines of the ``k`` rows of ``pool`` most similar to ``query`` (unit vectors): the
    highest cosines, as gensim's ``most_similar``. (:func:`lds.measures.nearest` is a pixel distance.)"""
    cos = pool @ query
    if exclude is not None:
        cos = cos.clone()
        cos[exclude] = -float("inf")
    top = torch.topk(cos, k)
    return top.indices.tolist(), top.values.tolist()


def pairs_below(embeds: torch.Tensor, values, rows_at_once: int = 256) -> torch.Tensor:
    """For each of ``values``: how many distinct pairs of rows of ``embeds`` (i < j) have a cosine below it.

    All n(n-1)/2 pairs are counted, a block of rows at a time: the full similarity matrix of the corpus and
    its upper triangle as one vector took about 0.4 GB, and decided the peak memory of the chapter."""
    v = torch.as_tensor(values, dtype=embeds.dtype).reshape(-1)
    counts = torch.zeros(len(v), dtype=torch.long)
    n = len(embeds)
    cols = torch.arange(n)
    for r0 in range(0, n, rows_at_once):
        rows = torch.arange(r0, min(n, r0 + rows_at_once))
        block = (embeds[r0:r0 + rows_at_once] @ embeds.T)[cols[None, :] > rows[:, None]]
        counts += (block[None, :] < v[:, None]).sum(1)
    return counts


def neighbour_kind_agreement(embeds: torch.Tensor, kinds, k: int = 8, families=None,
                             rows_at_once: int = 512) -> dict:
    """How well the space sorts kinds, over every row of ``embeds`` (unit vectors), not one query: the share of
    each row's ``k`` nearest other rows that have its kind, averaged over all rows (``agreement``), against the
    share a random list of ``k`` other rows would give (``chance``: for a row of kind K, (n_K - 1) / (n - 1)),
    overall and per kind (``by_kind``: ``agreement``, ``chance``, ``rows``). With ``families`` (one id per row, a
    shape family: an emoji and its skin-tone variants), rows of the query's own family are left out of its
    neighbours and of its chance, so a family of recoloured drawings cannot agree with itself.
    Chapter 2 (the vector space) explains it."""
    kinds = np.asarray(kinds)
    n = len(kinds)
    fam = None if families is None else torch.as_tensor(np.asarray(families))
    same = np.zeros(n)
    chance = np.zeros(n)
    for r0 in range(0, n, rows_at_once):
        rows = torch.arange(r0, min(n, r0 + rows_at_once))
        cos = embeds[rows] @ embeds.T
        mask = torch.arange(n)[None, :] == rows[:, None]
        if fam is not None:
            mask |= fam[None, :] == fam[rows][:, None]
        cos = cos.masked_fill(mask, -float("inf"))
        top = torch.topk(cos, k, dim=1).indices.numpy()
        r = rows.numpy()
        same[r] = (kinds[top] == kinds[r][:, None]).mean(1)
        allowed = ~mask.numpy()
        chance[r] = (allowed & (kinds[None, :] == kinds[r][:, None])).sum(1) / allowed.sum(1)
    by_kind = {str(kd): {"agreement": float(same[kinds == kd].mean()), "chance": float(chance[kinds == kd].mean()),
                         "rows": int((kinds == kd).sum())} for kd in dict.fromkeys(kinds.tolist())}
    return {"k": int(k), "rows": int(n), "agreement": float(same.mean()), "chance": float(chance.mean()),
            "own_family_excluded": fam is not None, "by_kind": by_kind}


@dataclasses.dataclass
class PairDistance:
    a: str
    b: str
    image_cosine: float  # image of a vs image of b
    image_percentile: float  # share of all image-image pairs in the corpus that are less similar
    caption_cosine: float  # caption a vs caption b (English names)
    caption_percentile: float
    cross_cosine: float  # image of a vs caption b

    def row(self) -> dict:
        return dataclasses.asdict(self)


def pair_distances(clip: WebCLIP, corpus: Corpus, image_embeds: torch.Tensor, pairs: list[tuple[str, str]],
                   lang: str = "en", caption_embeds: torch.Tensor | None = None) -> list[PairDistance]:
    """Cosines between chosen emoji (by ``lang`` name), as images and as captions, with their rank.

    The percentile places each cosine among all pairs of corpus images (or of the corpus's
    captions in ``lang``): 99 means only 1% of all pairs sit closer.
    """
    if caption_embeds is None:
        caption_embeds = embed_captions(clip, corpus.names(lang))
    index = [(corpus.find(a, lang), corpus.find(b, lang)) for a, b in pairs]
    # each cosine from its row of the similarity matrix, as pairs_below computes them
    img = [float((image_embeds[i:i + 1] @ image_embeds.T)[0, j]) for i, j in index]
    txt = [float((caption_embeds[i:i + 1] @ caption_embeds.T)[0, j]) for i, j in index]
    n = len(corpus)
    total = n * (n - 1) / 2
    img_below, txt_below = pairs_below(image_embeds, img), pairs_below(caption_embeds, txt)
    return [PairDistance(a, b, img[k], float(img_below[k]) / total * 100, txt[k], float(txt_below[k]) / total * 100,
                         float(image_embeds[i] @ caption_embeds[j]))
            for k, ((a, b), (i, j)) in enumerate(zip(pairs, index))]


# ----------------------------------------------------------------------------------------------
# The 2-D map
# ----------------------------------------------------------------------------------------------

def pca_2d(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components (SVD of the centred rows) and their share of the variance."""
    x = x.double()
    x = x - x.mean(0, keepdim=True)
    _, s, vt = torch.linalg.svd(x, full_matrices=False)
    coords = (x @ vt[:2].T).numpy()
    explained = (s[:2] ** 2 / (s ** 2).sum()).numpy()
    return coords, explained


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------

def composition(web: dict, corpus: Corpus) -> dict:
    """Shares of the web by language, kind, skin tone and pair type (what the crawl yields)."""
    from lds.data.corpus import LANGUAGES, TONE_NAMES

    kinds = np.array([corpus.records[i]["kind"] for i in web["image"]])
    tones = np.array([corpus.records[i]["tone"] for i in web["image"]])
    n = len(web["image"])
    return {
        "by_language": {lang: float((web["lang"] == lang).sum() / n) for lang in LANGUAGES},
        "by_kind": {k: float((kinds == k).sum() / n) for k in KINDS},
        "by_tone": {t: float((tones == t).sum() / n) for t in (*TONE_NAMES, "mixed")},
        "matched": float(web["matched"].mean()),
        "mismatched": float((~web["matched"] & ~web["uncaptioned"]).mean()),
        "uncaptioned": float(web["uncaptioned"].mean()),
        "distinct_images": int(len(np.unique(web["image"]))),
    }


def plot_pairs(corpus: Corpus, web: dict, scores: np.ndarray, idx, keep: np.ndarray | None = None):
    """A few pairs of the web: the image, its caption (language), its CLIP score, kept or not."""
    import matplotlib.pyplot as plt

    idx = list(idx)
    cols = min(8, len(idx))
    rows = (len(idx) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.55 * cols, 1.95 * rows), squeeze=False)
    rgb = corpus.rgb()
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, idx):
        ax.imshow(rgb[web["image"][i]])
        cap = web["caption"][i] or "(no caption)"
        cap = cap if font_draws(cap) else f"#{i} (listed below)"
        kind = "matched" if web["matched"][i] else ("uncaptioned" if web["uncaptioned"][i] else "mismatched")
        status = "" if keep is None else (" kept" if keep[i] else " dropped")
        ax.set_title(f"{cap[:18]}\n[{web['lang'][i]}] {kind}\n{scores[i]:.3f}{status}", fontsize=6.5,
                     color="#222" if keep is None or keep[i] else "#c0504d")
    fig.tight_layout()
    return fig

KIND_COLOURS = dict(zip(KINDS, ("#e6a01e", "#c0504d", "#9b59b6", "#4f8a3c", "#d35400", "#2e86c1", "#7f8c8d",
                                "#16a085")))


def plot_score_histogram(web: dict, scores: np.ndarray, thresholds: dict):
    """CLIP scores of matched, mismatched and uncaptioned pairs, with the thresholds drawn in."""
    import matplotlib.pyplot as plt

    groups = {"matched": web["matched"], "mismatched": ~web["matched"] & ~web["uncaptioned"],
              "uncaptioned (empty caption)": web["uncaptioned"]}
    fig, ax = plt.subplots(figsize=(9, 3.6))
    bins = np.linspace(scores.min(), scores.max(), 60)
    for (name, mask), colour in zip(groups.items(), ("#2e86c1", "#c0504d", "#7f8c8d")):
        if mask.any():
            ax.hist(scores[mask], bins=bins, alpha=0.6, label=f"{name} ({mask.sum():,})", color=colour, density=True)
    for (name, t), style in zip(thresholds.items(), (":", "-", "--")):
        ax.axvline(t, color="k", ls=style, lw=1.2, label=f"{name}: {t:.3f}")
    ax.set_xlabel("CLIP score (cosine of image and caption)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_kept(reports: dict, key: str, order=None, title: str = "", baseline: dict | None = None):
    """Bars: the share kept at each threshold, by ``key`` (by_language, by_kind, by_tone)."""
    import matplotlib.pyplot as plt

    names = list(reports)
    cats = list(order or reports[names[0]][key])
    cats = [c for c in cats if reports[names[0]][key].get(c, {}).get("pairs", 0) > 0]
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(cats) + 2), 3.6))
    x = np.arange(len(cats))
    for k, (name, colour) in enumerate(zip(names, ("#7fa7d4", "#34568b", "#1b2a47"))):
        vals = [reports[name][key][c]["kept_share"] for c in cats]
        ax.bar(x + (k - (len(names) - 1) / 2) * width, vals, width, label=name, color=colour)
    if baseline:
        for k, c in enumerate(cats):
            if c in baseline:
                ax.plot([k - 0.4, k + 0.4], [baseline[c]] * 2, color="#c0504d", lw=1)
    ax.set_xticks(x, cats, rotation=0 if len(cats) < 10 else 45)
    ax.set_ylabel("share of pairs kept")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=len(names))
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_neighbours(corpus: Corpus, rows: list[tuple[str, list[int], list[float]]], lang: str = "en"):
    """One row per query: its nearest corpus images with their cosines and names."""
    import matplotlib.pyplot as plt

    k = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), k, figsize=(1.25 * k, 1.6 * len(rows)), squeeze=False)
    rgb = corpus.rgb()
    for r, (label, idx, cos) in enumerate(rows):
        for c in range(k):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(idx):
                ax.imshow(rgb[idx[c]])
                ax.set_title(f"{corpus.records[idx[c]]['names'][lang][:16]}\n{cos[c]:.2f}", fontsize=6.5)
        label = label if font_draws(label) else f"query {r + 1} (listed below)"
        axes[r, 0].text(-0.15, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def plot_map(coords: np.ndarray, kinds: list[str], modality: list[str], explained: np.ndarray,
             highlight: dict | None = None):
    """Images (dots) and captions (crosses) on the first two principal components, coloured by kind."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    kinds, modality = np.asarray(kinds), np.asarray(modality)
    for kind in KINDS:
        for mod, marker, size in (("image", "o", 5), ("caption", "x", 6)):
            m = (kinds == kind) & (modality == mod)
            if m.any():
                ax.scatter(coords[m, 0], coords[m, 1], s=size, marker=marker, color=KIND_COLOURS[kind], alpha=0.5,
                           linewidths=0.6, label=f"{kind}" if mod == "image" else None)
    for label, (i, mod) in (highlight or {}).items():
        ax.scatter(coords[i, 0], coords[i, 1], s=60, facecolors="none", edgecolors="k")
        ax.annotate(label, coords[i], xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xlabel(f"first principal component ({explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"second principal component ({explained[1]:.0%})")
    ax.legend(fontsize=7, markerscale=3, title="kind (o image, x caption)", title_fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
