"""The simulated aesthetic stage (lds/instruments/aesthetic.py) and the popularity measures (lds/instruments/ranking.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lds.instruments.aesthetic import (TASTE, AestheticConfig, aesthetic_report, aesthetic_scores, aesthetic_threshold,
                           colourfulness)
from lds.data.corpus import KINDS, LANGUAGES, WebConfig, load_corpus, popularity, popularity_ranks, sample_web
from lds.instruments.ranking import survival


def test_colourfulness_is_zero_for_grey_and_orders_saturation():
    grey = np.full((1, 8, 8, 3), 0.5)
    white = np.ones((1, 8, 8, 3))
    half = np.ones((1, 8, 8, 3))
    half[:, :, :4] = [1.0, 0.0, 0.0]  # half red, half white
    red = np.zeros((1, 8, 8, 3))
    red[..., 0] = 1.0
    pale = 0.8 + 0.2 * red  # pink: red diluted with white
    m = colourfulness(np.concatenate([grey, white, pale, red, half]))
    assert m[0] == pytest.approx(0) and m[1] == pytest.approx(0)
    assert 0 < m[2] < m[3]  # a pale colour scores below the saturated one
    # Hasler and Süsstrunk's formula by hand for the flat red image: rg = 255, yb = 127.5, no spread
    assert m[3] == pytest.approx(0.3 * np.hypot(255, 127.5))
    assert m[4] > 0 and m[4] != pytest.approx(m[3])  # spread counts too


def test_colourfulness_rejects_rgba():
    with pytest.raises(ValueError, match="corpus.rgb"):
        colourfulness(np.zeros((1, 8, 8, 4)))


def test_threshold_drops_the_stated_share_and_rejects_nonsense():
    scores = np.arange(100, dtype=float)
    t = aesthetic_threshold(scores, AestheticConfig(drop_share=0.25))
    assert (scores >= t).mean() == pytest.approx(0.75, abs=0.011)
    with pytest.raises(ValueError, match="drop_share"):
        aesthetic_threshold(scores, AestheticConfig(drop_share=1.0))


def test_report_on_the_corpus_counts_what_the_taste_removes():
    corpus = load_corpus()
    scores = aesthetic_scores(corpus)
    assert scores.shape == (len(corpus),) and np.isfinite(scores).all()
    t = aesthetic_threshold(scores, AestheticConfig(drop_share=0.5))
    rep = aesthetic_report(corpus, scores, t)
    assert rep["taste"] == TASTE
    assert rep["kept"] == int((scores >= t).sum())
    assert sum(v["images"] for v in rep["by_kind"].values()) == len(corpus)
    assert sum(v["kept"] for v in rep["by_kind"].values()) == rep["kept"]
    assert sum(v["images"] for v in rep["by_tone"].values()) == len(corpus)
    # Glyphs newer than the font render blank: they score 0, and the taste removes them all
    assert rep["blank_images"] > 0
    # Score 0 is not the same as blank: the grey, black and white drawings score 0 too (chapter 2 counts both)
    from lds.data.corpus import blank_images

    assert rep["blank_images"] == len(blank_images(corpus))
    assert rep["zero_score"] == int((scores == 0).sum()) == rep["blank_images"] + rep["achromatic"]
    assert rep["achromatic"] > 0 and sum(rep["achromatic_by_kind"].values()) == rep["achromatic"]
    # the tones' matched base: the unmarked members of the toned families, kept more often than "none" as a whole
    base = rep["toned_family_base"]
    assert 0 < base["images"] < rep["by_tone"]["none"]["images"]
    assert base["kept_share"] > rep["by_tone"]["none"]["kept_share"]
    # What this taste does, measured on the shipped corpus: it favours the saturated yellow default
    # over every skin tone, and the darkest tone least of all; faces and flags over hands
    tones = {k: v["kept_share"] for k, v in rep["by_tone"].items()}
    assert tones["none"] > max(tones[t] for t in ("light", "medium-light", "medium", "medium-dark", "dark"))
    assert tones["dark"] == min(tones[t] for t in ("light", "medium-light", "medium", "medium-dark", "dark"))
    kinds = {k: v["kept_share"] for k, v in rep["by_kind"].items()}
    assert kinds["face"] > 0.8 and kinds["flag"] > 0.8 and kinds["hand"] < 0.5


def test_report_over_the_web_counts_pairs_by_language():
    corpus = load_corpus()
    web = sample_web(corpus, WebConfig(pairs=3000, seed=3))
    scores = aesthetic_scores(corpus)
    keep = web["matched"]  # any prior decision per pair (here: the correct captions)
    rep = aesthetic_report(corpus, scores, aesthetic_threshold(scores), web, keep)
    assert rep["pairs_in"] == int(keep.sum())
    assert rep["pairs_kept"] == int((keep & (scores[web["image"]] >= rep["threshold"])).sum())
    assert set(rep["by_language"]) == set(LANGUAGES)
    assert sum(v["pairs"] for v in rep["by_language"].values()) == rep["pairs_in"]
    assert sum(rep["language_mix_before"].values()) == pytest.approx(1)
    assert sum(rep["language_mix_after"].values()) == pytest.approx(1)


def test_popularity_ranks_order_the_weights():
    corpus = load_corpus()
    cfg = WebConfig(zipf_s=0.8, tone_weight=1.0)
    ranks = popularity_ranks(corpus, cfg)
    w = popularity(corpus, cfg)
    assert ranks.min() == 1
    top, bottom = np.argmin(ranks), np.argmax(ranks)
    assert w[top] > w[bottom]
    assert w[top] / w[bottom] == pytest.approx((ranks[bottom] / ranks[top]) ** 0.8)
    # skin-tone variants share their base's rank
    i = corpus.find("thumbs up")
    j = corpus.find("thumbs up dark skin tone")
    assert ranks[i] == ranks[j]


def test_survival_shrinks_as_popularity_skew_grows():
    corpus = load_corpus()
    out = {}
    for s in (0.0, 1.2):
        cfg = WebConfig(pairs=6000, zipf_s=s, seed=0)
        web = sample_web(corpus, cfg)
        out[s] = survival(web, web["matched"], corpus, cfg)  # keep every correct pair
    assert out[0.0]["survive"] > out[1.2]["survive"]
    assert out[0.0]["top_tenth_share_of_kept"] < out[1.2]["top_tenth_share_of_kept"]
    assert set(out[0.0]["survive_by_kind"]) == set(KINDS)
    cfg = WebConfig(pairs=6000, zipf_s=1.2, seed=0)
    web = sample_web(corpus, cfg)
    nothing = survival(web, np.zeros(len(web["image"]), bool), corpus, cfg)
    assert nothing["survive"] == 0
    assert dataclasses.asdict(cfg)["zipf_s"] == nothing["zipf_s"]


def test_only_correct_captions_make_an_emoji_survive():
    corpus = load_corpus()
    cfg = WebConfig(pairs=3000, mismatch_rate=1.0, uncaptioned_rate=0.0, seed=1)
    web = sample_web(corpus, cfg)
    keep_all = np.ones(len(web["image"]), bool)
    out = survival(web, keep_all, corpus, cfg)
    # every caption names another emoji (bar the rare draw of the same one): kept, but not learnable
    assert out["survive"] == int(web["matched"].sum() > 0) * len(set(web["image"][web["matched"]]))
    assert out["survive"] < 0.01 * out["distinct_in_web"]


def test_exposure_counts_kept_correct_pairs_per_image_and_per_shape_family():
    """A hand-counted web: one toned hand family (six images) and one apple; wrong captions and dropped
    pairs do not count."""
    from lds.instruments.ranking import exposure

    corpus = load_corpus()
    hand = [i for i, r in enumerate(corpus.records) if r["base"] == "\U0001F44B"]  # waving hand, six tones
    apple = corpus.find("red apple")
    assert len(hand) == 6
    image = np.array(hand * 2 + [apple] * 5 + [apple, hand[0]])
    matched = np.array([True] * 12 + [True] * 5 + [False, True])
    keep = np.array([True] * 12 + [True] * 4 + [False] + [True, False])
    web = {"image": image, "matched": matched}
    out = exposure(web, keep, corpus)
    assert out["kept_correct_pairs"] == 12 + 4
    food, hands = out["by_kind"]["food"], out["by_kind"]["hand"]
    assert hands["share_of_training"] == pytest.approx(12 / 16) and food["share_of_training"] == pytest.approx(4 / 16)
    # drawn family by family, the apple's one image would weigh as much as the six-tone hand
    assert hands["share_if_family_balanced"] == food["share_if_family_balanced"] == pytest.approx(1 / 2)
    # every other hand and food emoji got nothing: medians are 0, and almost all never reach the U-Net
    assert hands["median_pairs_per_image"] == 0 and hands["never_reached_share"] < 1
    assert food["images_per_family"] == pytest.approx(1.0) and hands["images_per_family"] > 2
    assert sum(v["images"] for v in out["by_kind"].values()) == len(corpus)
