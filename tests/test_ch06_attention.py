"""Chapter 6 (Cross-attention): the numbers its argument rests on, read back from the executed chapter."""

from __future__ import annotations

import pytest

from lds.pipeline.attention import cross_attention_layers
from lds.book.record import VERDICTS


@pytest.fixture(scope="module")
def records(executed):
    return executed("06_cross_attention")


def test_every_slot_recorded(records, pipe):
    latent = pipe.unet.config.sample_size
    assert records["maps_shape"] == [1, 77, latent, latent]
    assert records["cross_attention_layers"] == len(cross_attention_layers(pipe.unet))
    # The finding: the prompt's words get a minority of the attention; end token and padding most of it.
    # Measured at CI size: start 5.6%, words 21.1%, end and padding 73.3%.
    assert records["share_content"] < 0.4
    assert records["share_end"] + records["share_padding"] > 2 * records["share_content"]
    # ... but per slot the words get more than an even share and more than a padding slot (issue 27 item 1: 70 of
    # the 77 slots are untyped; full size: words 3.2% each, padding 0.97%, even 1.30%)
    assert records["slots_content"] + records["slots_not_typed"] == records["slots_total"] == 77
    assert records["share_uniform_slot"] == pytest.approx(1 / 77, abs=1e-5)
    assert records["share_per_slot_content"] == pytest.approx(records["share_content"] / records["slots_content"], abs=1e-4)
    assert records["share_per_slot_content"] > records["share_uniform_slot"] > records["share_per_slot_padding"]
    assert records["named_priority_word"] == "does"


def test_modifiers_and_nouns(records):
    pairs = records["modifier_pairs"]
    assert pairs[:2] == ["red apple", "green apple"]
    assert len(records["modifier_share"]) == len(records["noun_share"]) == len(pairs)
    assert all(0 < v < 1 for v in records["modifier_share"] + records["noun_share"])
    assert records["modifier_loses_count"] == sum(m < n for m, n in zip(records["modifier_share"], records["noun_share"]))
    # The modifier test's finding on lds-mini: a modifier is not drowned by its noun. Measured at CI size:
    # less than its noun in 1 of 3 pairs; the smallest modifier/noun ratio 0.53 (green apple).
    assert records["modifier_loses_count"] <= len(pairs) // 2
    assert min(m / n for m, n in zip(records["modifier_share"], records["noun_share"])) > 0.35
    assert records["pair_image_distance_first_two"] > 0  # red and green apple differ


def test_style_words(records):
    assert records["style_tokens"] == 5  # masterpiece, trending, on, art, station
    assert records["style_tokens_unseen"] == 2  # masterpiece and trending never occur in the corpus's names
    assert 0 < records["style_share"] < 1
    assert records["style_pixel_distance"] > 0
    assert records["seed_pixel_distance"] > 0


def test_recording_costs_time_not_pixels(records):
    assert records["recording_identical"] is True
    assert 0.5 < records["recording_time_ratio"] < 20


def test_claims_17_and_18(records):
    for n in (17, 18):
        c = records[f"claim:{n}"]
        assert c["number"] == n and c["verdict"] in VERDICTS and c["lds_mini"]
    # Claim 18 is about words a model learned to value; two of lds-mini's five style tokens never occur in
    # its training captions, so whatever the chapter finds, it does not confirm the claim.
    assert records["style_tokens_unseen"] > 0 and records["claim:18"]["verdict"] != "holds"
    # Claim 17's verdict follows the modifier count, not a constant.
    holds17 = records["modifier_loses_count"] > records["modifier_pairs_count"] / 2
    assert (records["claim:17"]["verdict"] in ("holds", "holds with a qualifier")) == holds17 or \
        records["claim:17"]["verdict"] not in ("holds", "holds with a qualifier", "does not hold")
    assert "of the attention" in records["claim:17"]["lds_mini"]
    assert "never occur in the training captions" in records["claim:18"]["lds_mini"]
    # no verdict on an untrained token: "fancy", "masterpiece" and "trending" never occur in lds-mini's captions
    assert records["stereotype_word_untrained_pieces"]
    assert records["style_tokens_unseen"] > 0
    for n in (17, 18):
        assert records[f"claim:{n}"]["verdict"] == "not testable on lds-mini"
        assert "SD 1.5" in records[f"claim:{n}"]["sd15"] and "refute" in records[f"claim:{n}"]["sd15"]
    assert "Analogue" in records["claim:17"]["lds_mini"] and "The yellow default won" in records["claim:17"]["lds_mini"]


def test_stereotype_cell_measures(records):
    """The SD 1.5 measurement for claim 17 runs on every model (its numbers describe random vectors on lds-mini)."""
    shares = records["stereotype_share"]
    assert len(shares) == 3 and all(len(v) == records["stereotype_seeds"] >= 8 for v in shares.values())
    assert all(0 < x < 1 for v in shares.values() for x in v)
    with_term, without_term, control = shares  # the prompt with the term, without it, and the control of its length
    assert records["stereotype_share_falls"] == sum(a < b for a, b in zip(shares[with_term], shares[without_term]))
    assert records["stereotype_share_falls_vs_control"] == sum(a < b for a, b in zip(shares[with_term], shares[control]))


def test_claim_17_analogue(records):
    """The emoji analogue: a skin tone asked for against the yellow default, over at least 8 seeds."""
    analogue = records["analogue"]
    assert set(analogue) == {"waving hand", "raised hand"}
    for gesture, a in analogue.items():
        assert a["prompt"] == f"{gesture} dark skin tone" and a["seeds"] >= 8
        # tones counted only in images that show the gesture, and attention per slot as well as in total (the tone
        # phrase is three slots, a gesture two: a longer phrase takes more in total)
        assert 0 <= a["asked_tone"] + a["yellow_default"] <= a["shows"] <= a["seeds"]
        assert 0 < a["modifier_share"] < 1 and 0 < a["noun_share"] < 1
        assert a["modifier_share_per_slot"] == pytest.approx(a["modifier_share"] / 3, rel=1e-3)
        assert 0 <= a["modifier_less_attention"] <= a["seeds"] and 0 <= a["modifier_less_attention_per_slot"] <= a["seeds"]


def test_word_maps_are_daams(records):
    """Chapter 6 draws DAAM's maps and shows how far lds's earlier aggregation is from them."""
    assert records["word_map_aggregate"] == "daam"
    rs = records["daam_vs_layer_mean_r"]
    assert rs and all(-1 <= r <= 1 for r in rs)
    assert records["daam_vs_layer_mean_r_min"] == min(rs) < 0.999  # the two aggregations differ
