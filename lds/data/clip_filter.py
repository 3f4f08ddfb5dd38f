"""The filter: a LAION-style threshold on CLIP similarity over the synthetic web.

Chapter 2 (CLIP and the filtered web) explains it. LAION-400M kept image-text pairs whose CLIP
ViT-B/32 cosine similarity was at least 0.3; LAION-5B used 0.28 for English and 0.26 for other
languages. lds-mini's CLIP has its own scale, so the book's thresholds are set where they keep a
stated share of the web, and the report records what each keeps and drops by language and kind.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lds.data.corpus import KINDS, LANGUAGES, Corpus


@dataclasses.dataclass
class FilterConfig:
    # The default threshold is the score below which this share of the web falls. LAION's
    # thresholds removed most candidates; on a web of 15% mismatched and 5% uncaptioned pairs,
    # dropping the lowest 30% leaves room to see what else goes with the noise.
    drop_share: float = 0.30


def threshold_for_share(scores: np.ndarray, drop_share: float) -> float:
    return float(np.quantile(scores, drop_share))


def filter_report(web: dict, scores: np.ndarray, threshold: float, corpus: Corpus) -> dict:
    """What a threshold keeps and drops, overall, by language, by kind and by skin tone."""
    keep = scores >= threshold
    kinds = np.array([corpus.records[i]["kind"] for i in web["image"]])
    tones = np.array([corpus.records[i]["tone"] for i in web["image"]])

    def share(mask):
        return {"pairs": int(mask.sum()), "kept": int((keep & mask).sum()),
                "kept_share": float((keep & mask).sum() / max(1, mask.sum()))}

    return {
        "threshold": float(threshold),
        "pairs": int(len(scores)),
        "kept": int(keep.sum()),
        "kept_share": float(keep.mean()),
        "matched_kept_share": float(keep[web["matched"]].mean()),
        "mismatched_kept_share": float(keep[~web["matched"] & ~web["uncaptioned"]].mean()),
        "uncaptioned_kept_share": float(keep[web["uncaptioned"]].mean()) if web["uncaptioned"].any() else None,
        # the counts behind the shares above, for intervals (lds.measures.share_difference)
        "counts": {"matched": share(web["matched"]), "mismatched": share(~web["matched"] & ~web["uncaptioned"]),
                   "uncaptioned": share(web["uncaptioned"])},
        "by_language": {lang: share(web["lang"] == lang) for lang in LANGUAGES},
        "by_kind": {k: share(kinds == k) for k in KINDS},
        "by_tone": {t: share(tones == t) for t in sorted(set(tones))},
        # Of the pairs that survive, the share in each language: the composition the U-Net trains on
        "kept_language_mix": {lang: float((keep & (web["lang"] == lang)).sum() / max(1, keep.sum()))
                              for lang in LANGUAGES},
    }


# ----------------------------------------------------------------------------------------------
# Chapter 2: the filter at several thresholds
# ----------------------------------------------------------------------------------------------

# LAION's thresholds on OpenAI CLIP ViT-B/32 cosines (Schuhmann et al. 2021, 2022): LAION-400M kept
# pairs at 0.30 or above; LAION-5B used 0.28 for English and 0.26 for other languages (scored with
# a multilingual CLIP). lds-mini's CLIP has its own scale, so a cosine of 0.28 means nothing to it;
# the book keeps LAION's order (strict > default > lenient) and sets each threshold by the share of
# the web it drops.
LAION_THRESHOLDS = {
    "strict": ("LAION-400M", 0.30),
    "default": ("LAION-5B, English", 0.28),
    "lenient": ("LAION-5B, other languages", 0.26),
}


def matched_by_language(web: dict, keep: np.ndarray) -> dict:
    """Kept share by language among *matched* pairs only: language separated from noisy alt text."""
    out = {}
    for lang in LANGUAGES:
        m = (web["lang"] == lang) & web["matched"]
        out[lang] = {"pairs": int(m.sum()), "kept": int((keep & m).sum()),
                     "kept_share": float((keep & m).sum() / max(1, m.sum()))}
    return out


def reports_at_shares(web: dict, scores: np.ndarray, corpus: Corpus, drop_shares: dict) -> dict:
    """:func:`filter_report` at each named drop share, with English-versus-other summaries added."""
    out = {}
    for name, share in drop_shares.items():
        t = threshold_for_share(scores, share)
        rep = filter_report(web, scores, t, corpus)
        keep = scores >= t
        rep["drop_share"] = float(share)
        rep["matched_by_language"] = matched_by_language(web, keep)
        en = web["matched"] & (web["lang"] == "en")
        other = web["matched"] & (web["lang"] != "en")
        rep["english_matched_kept_share"] = float(keep[en].mean()) if en.any() else None
        rep["other_matched_kept_share"] = float(keep[other].mean()) if other.any() else None
        rep["counts"].update({"english_matched": {"pairs": int(en.sum()), "kept": int((keep & en).sum())},
                              "other_matched": {"pairs": int(other.sum()), "kept": int((keep & other).sum())}})
        out[name] = rep
    return out


def split_threshold_report(web: dict, scores: np.ndarray, corpus: Corpus, english: float, other: float) -> dict:
    """LAION-5B's arrangement: one threshold for English captions, a lower one for the rest."""
    t = np.where(web["lang"] == "en", english, other)
    keep = scores >= t
    en = web["matched"] & (web["lang"] == "en")
    oth = web["matched"] & (web["lang"] != "en")
    return {"english_threshold": float(english), "other_threshold": float(other),
            "kept_share": float(keep.mean()),
            "english_matched_kept_share": float(keep[en].mean()) if en.any() else None,
            "other_matched_kept_share": float(keep[oth].mean()) if oth.any() else None,
            "matched_by_language": matched_by_language(web, keep)}
