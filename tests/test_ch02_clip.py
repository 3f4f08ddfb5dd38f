"""Chapter 2 (CLIP and the filtered web): lds/instruments/vectorspace.py, lds/data/clip_filter.py and the chapter's records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lds.data import clip_filter
from lds.instruments import vectorspace
from lds.data.corpus import LANGUAGES, WebConfig, load_corpus, sample_web


# -- lds/instruments/vectorspace.py and lds/data/clip_filter.py ----------------------------------------------------------

def test_matched_auc():
    s = np.array([0.9, 0.8, 0.1, 0.2])
    m = np.array([True, True, False, False])
    assert vectorspace.matched_auc(s, m, ~m) == 1.0
    assert vectorspace.matched_auc(s, ~m, m) == 0.0
    assert vectorspace.matched_auc(np.ones(4), m, ~m) == 0.5


def test_matched_auc_counts_every_pair_of_a_web_sized_float32_score():
    """The share of (matched, other) pairs the matched one wins, ties half, counted exactly: to 1e-12 on CLIP's float32
    scores at chapter 2's size (scipy in the scores' dtype would be off by 6e-8)."""
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(0.3, 0.1, 20_000), 4).astype(np.float32)  # rounded: ties, as identical pairs give
    m = rng.random(len(s)) < 0.8
    a, b = np.sort(s[m].astype(np.float64)), np.sort(s[~m].astype(np.float64))
    wins = np.searchsorted(b, a, side="left").sum() + 0.5 * (np.searchsorted(b, a, "right") - np.searchsorted(b, a, "left")).sum()
    assert abs(vectorspace.matched_auc(s, m, ~m) - wins / (len(a) * len(b))) < 1e-12


def test_pca_2d_recovers_the_main_direction():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 1, generator=g) * torch.tensor([[3.0, 0, 0, 0]]) + 0.01 * torch.randn(500, 4, generator=g)
    coords, explained = vectorspace.pca_2d(x)
    assert coords.shape == (500, 2)
    assert explained[0] > 0.99


def test_neighbour_kind_agreement_against_chance():
    # two tight clusters of kinds a and b: every neighbour shares the row's kind; chance is (n_K - 1) / (n - 1)
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    kinds = ["a"] * 6 + ["b"] * 4
    x = centres[[0] * 6 + [1] * 4] + 0.01 * torch.randn(10, 3, generator=g)
    x = x / x.norm(dim=1, keepdim=True)
    r = vectorspace.neighbour_kind_agreement(x, kinds, k=3)
    assert r["agreement"] == 1.0
    assert r["by_kind"]["a"]["chance"] == pytest.approx(5 / 9) and r["by_kind"]["b"]["chance"] == pytest.approx(3 / 9)
    assert r["chance"] == pytest.approx((6 * 5 / 9 + 4 * 3 / 9) / 10)
    # with each row's own family left out (families of two), a family cannot agree with itself
    fam = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    rf = vectorspace.neighbour_kind_agreement(x, kinds, k=2, families=fam)
    assert rf["own_family_excluded"] and rf["agreement"] == 1.0
    assert rf["by_kind"]["b"]["chance"] == pytest.approx(2 / 8)
    # random directions: agreement near chance
    y = torch.randn(400, 16, generator=g)
    y = y / y.norm(dim=1, keepdim=True)
    rr = vectorspace.neighbour_kind_agreement(y, ["a", "b"] * 200, k=8)
    assert abs(rr["agreement"] - rr["chance"]) < 0.06


def test_reports_at_shares_ordered():
    corpus = load_corpus()
    web = sample_web(corpus, WebConfig(pairs=2000))
    rng = np.random.default_rng(0)
    scores = rng.normal(size=2000) + web["matched"] * 1.0
    reps = clip_filter.reports_at_shares(web, scores, corpus, {"strict": 0.5, "default": 0.3, "lenient": 0.15})
    assert reps["strict"]["threshold"] > reps["default"]["threshold"] > reps["lenient"]["threshold"]
    assert reps["strict"]["kept_share"] < reps["default"]["kept_share"] < reps["lenient"]["kept_share"]
    assert abs(reps["default"]["kept_share"] - 0.7) < 0.01
    assert set(reps["default"]["matched_by_language"]) == set(LANGUAGES)


def test_scoring_distinct_images_once_equals_scoring_pair_by_pair(pipe):
    from lds.models.clip import clip_score

    clip = vectorspace.web_clip(pipe)
    corpus = load_corpus()
    web = sample_web(corpus, WebConfig(pairs=64))
    ws = clip_score(clip.model, clip.tokenizer, (corpus.rgb(), web["image"]), web["caption"])
    ref = clip_score(clip.model, clip.tokenizer, corpus.rgb()[web["image"]], web["caption"])
    assert ws.image_embeds.shape[0] == len(corpus) and len(ws.captions) < len(web["caption"])
    assert np.allclose(ws.scores, ref.scores, atol=1e-5)
    known = clip_score(clip.model, clip.tokenizer, (corpus.rgb(), web["image"][:32]), web["caption"][:32])
    again = clip_score(clip.model, clip.tokenizer, (corpus.rgb(), web["image"]), web["caption"], bank=ws.image_embeds,
                       known=known)
    assert np.allclose(again.scores, ws.scores, atol=1e-6)


# -- the executed chapter --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def records(executed):
    return executed("02_clip_filtered_web")


def test_chapter_thresholds_ordered_by_strictness(records):
    t, kept = records["thresholds"], records["kept_share"]
    assert t["strict"] > t["default"] > t["lenient"]
    assert 0 <= kept["strict"] < kept["default"] < kept["lenient"] <= 1
    assert abs(kept["default"] - 0.70) < 0.01  # default_drop = 0.30
    # the same drop share on a smaller draw of the training web lands near the training threshold
    assert abs(records["training_threshold"] - t["default"]) < 0.05


def test_chapter_shares_in_range_and_monotone(records):
    for name in ("strict", "default", "lenient"):
        for lang, v in records["matched_kept_by_language"][name].items():
            assert 0 <= v <= 1, (name, lang)
        ev = records["english_vs_other_kept"][name]
        assert 0 <= ev["en"] <= 1 and 0 <= ev["other"] <= 1
    for lang in LANGUAGES:
        by = records["matched_kept_by_language"]
        assert by["strict"][lang] <= by["default"][lang] <= by["lenient"][lang]


def test_chapter_claim3_matched_beats_mismatched(records):
    k = records["kept_by_pair_type"]
    assert records["matched_vs_mismatched_auc"] > 0.6
    for name in ("strict", "default", "lenient"):
        assert k[name]["matched"] > k[name]["mismatched"]
    assert records["claim:3"]["verdict"] in ("holds", "holds with a qualifier")


def test_chapter_claim4_the_filter_keeps_english_and_drops_the_uncaptioned(records):
    ev = records["english_vs_other_kept"]["default"]
    unc = records["uncaptioned_kept_share"]
    matched = records["kept_by_pair_type"]["default"]["matched"]
    # Measured at CI size (2026-12-02): correct English captions kept 99%, the 13 other languages 74%
    # (gap 0.25; at the strict threshold 98% vs 35%); uncaptioned pairs 7% against matched 85%.
    assert records["english_minus_other_kept"] == pytest.approx(ev["en"] - ev["other"])
    assert records["english_minus_other_kept"] > 0.1, "the filter's language gap shrank or reversed: reread ch. 2"
    strict = records["english_vs_other_kept"]["strict"]
    assert strict["en"] - strict["other"] > 0.3
    assert unc < matched - 0.4
    # each half has its own verdict: the language half holds; the uncaptioned half asks whether an empty caption is
    # dropped more surely than a wrong one (full size, this chapter's 20,000-pair web: 4.5% against 3.6% kept, interval
    # across 0; the training web: 127 of 3,992 against 464 of 11,524, interval below 0, so it holds there)
    c4 = records["claim:4"]
    halves = [p["holds"] for p in c4["parts"]]
    assert len(halves) == 2 and halves[0] is True
    # each half turns on the 95% interval of a difference of shares lying wholly below 0, not on which share comes
    # out lower (on a small web that can flip by chance: the verdict once depended on the run's size)
    lang, blank = records["claim4_language_difference"], records["claim4_uncaptioned_difference"]
    assert lang[1] <= lang[0] <= lang[2] and blank[1] <= blank[0] <= blank[2]
    assert lang[0] == pytest.approx(ev["other"] - ev["en"], abs=1e-3)
    assert blank[0] == pytest.approx(unc - records["kept_by_pair_type"]["default"]["mismatched"], abs=1e-3)
    # the uncaptioned half is decided on the training web (80,000 pairs, the filter lds-mini was made with), where it
    # is on record; this chapter's own web is reported beside it
    decisive = records.get("claim4_uncaptioned_difference_pooled") or blank  # both webs pooled, where on record
    assert decisive[1] <= decisive[0] <= decisive[2]
    assert halves == [lang[2] < 0, decisive[2] < 0]
    assert halves[1] == records["claim4_uncaptioned_below_mismatched"]
    assert c4["verdict"] == ("holds" if all(halves) else "holds in part")
    # how many uncaptioned pairs entered lds-mini's training: its filter kept some (the paper: it filters them out)
    assert 0 < records["training_uncaptioned_kept"] < records["training_uncaptioned_pairs"]
    # a cut at LAION's severity makes the filter more lopsided in ratio (full size: English kept 3.2 times as often
    # as other languages, against 1.3 at the default), though not in points (20% vs 6%, against 99% vs 75%)
    laion = records["laion_scale_kept"]
    assert laion["drop_share"] == 0.9
    assert records["laion_scale_ratio"] == pytest.approx(laion["en"] / laion["other"])
    assert records["laion_scale_word"] == ("more lopsided" if records["laion_scale_ratio"] > records["default_english_ratio"]
                                           else "no more lopsided")


def test_chapter_claim5_dogs_and_bicycle(records):
    near, far = records["near_pair"], records["far_pair"]
    assert (near["a"], near["b"]) == ("dog face", "dog")
    assert far["b"] == "bicycle"
    # Measured at CI size: dog face/dog 0.88 (percentile 99.8), dog face/bicycle 0.56 (95.7)
    assert near["image_cosine"] > far["image_cosine"] + 0.15
    assert near["image_percentile"] > 99
    # the two halves of the paper's sentence, each with its verdict: the dogs near, the dog and the bicycle far apart
    c5 = records["claim:5"]
    assert [p["holds"] for p in c5["parts"]] == [True, records["claim5_far_is_far"]]
    assert c5["verdict"] == ("holds" if records["claim5_far_is_far"] else "holds in part")


def test_chapter_space_sorts_kinds_over_the_whole_corpus(records):
    # r1 #1: one dog query is the space's weakest corner; over every image the kinds sort far above chance
    # (full size: 73% against 28%, own skin-tone variants left out; animals 28% against 4%)
    assert records["kind_agreement"] > 2 * records["kind_agreement_chance"]
    by_kind = records["kind_agreement_by_kind"]
    assert all(v["agreement"] > v["chance"] for v in by_kind.values())
    assert records["kind_agreement_animal"] == by_kind["animal"]["agreement"]
    assert "animals" in records["kind_agreement_weakest"]
    assert records["kind_agreement_word"] == "well above"


def test_chapter_claim3_in_parts_and_the_receipt_keeps_its_parameters(records):
    c3 = records["claim:3"]
    assert len(c3["parts"]) == 2 and c3["verdict"] in ("holds", "holds in part")
    # cell 26 once overwrote the `pairs` parameter with the grid's own-name counts, and the receipt recorded a list
    receipt = records["receipt"]
    receipt = json.loads(receipt) if isinstance(receipt, str) else receipt
    assert receipt["parameters"]["pairs"] == 4000  # CI's `pairs`


def test_chapter_taste_against_the_matched_base(records):
    # r1 #11: the tones compared with the unmarked members of their own families, and the cause not darkness
    base = records["aesthetic_toned_base_kept"]
    tones = {t: records["aesthetic_kept_by_tone"][t] for t in ("light", "medium-light", "medium", "medium-dark", "dark")}
    assert max(tones.values()) < base
    assert records["aesthetic_tones_vs_base_word"] == "less often than"
    assert abs(tones["light"] - tones["dark"]) < 0.05  # the lightest kept about as rarely as the darkest
    assert records["aesthetic_blank_images"] + records["aesthetic_achromatic"] > records["aesthetic_blank_images"] > 0
