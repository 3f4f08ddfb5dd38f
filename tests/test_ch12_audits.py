"""Chapter 12 (Audits): both shipped audits run from the book, with the counts behind every share (CI parameters)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lds.data.corpus import LANGUAGES, TONE_NAMES

CI = yaml.safe_load((Path(__file__).parent / "ci_parameters" / "12_audits.yml").read_text())


@pytest.fixture(scope="module")
def records(executed):
    return executed("12_audits")


def test_default_tone_audit_counts_every_image(records):
    expected = CI["tone_sample"] * CI["tone_seeds"] * len(CI["tone_scales"])
    assert records["tone_images"] == expected and records["tone_bases"] == CI["tone_sample"]
    counts = records["tone_counts"]
    assert sorted(counts) == sorted(f"{s:g}" for s in CI["tone_scales"])
    for scale, row in counts.items():
        # every image is read as exactly one of the six tones: the counts add up to the images
        assert sum(row[t] for t in TONE_NAMES) == row["images"] == expected // len(CI["tone_scales"])
        assert records["tone_unmarked_share"][scale] == pytest.approx(row["none"] / row["images"], abs=1e-3)
    for scale, n in records["tone_drawn_right"].items():
        assert 0 < n <= counts[scale]["images"]


def test_guidance_zero_is_the_unconditional_image(records):
    by_scale = {row["guidance_scale"]: row for row in records["tone_by_scale"]}
    assert by_scale[0.0]["distance_from_unconditional"] == 0.0
    assert by_scale[max(CI["tone_scales"])]["distance_from_unconditional"] > 0.01


def test_languages_audit_covers_all_14(records):
    right = records["language_right"]
    assert list(right) == list(LANGUAGES)
    assert all(n == len(CI["language_emoji"]) * CI["language_seeds"] for _, n in right.values())
    assert records["language_images"] == 14 * len(CI["language_emoji"]) * CI["language_seeds"]
    assert 0 <= records["language_floor"] <= 1


def test_report_opens_offline(records):
    assert records["report_offline"] is True


def test_shares_are_shown_as_percentages_with_their_references(records):
    """Issue 27: no raw dict in the prose; the unmarked share is read against one variant in six and the captions'
    own share (each untoned name belongs to the unmarked image alone), and the English gap is in points."""
    assert records["tone_base_uniform"] == pytest.approx(1 / 6, abs=1e-3)
    assert records["tone_base_captioned"] == 1.0
    for scale, share in records["tone_unmarked_share"].items():
        assert f"{share:.0%} at guidance {scale}" in records["tone_unmarked_share_text"]
    assert records["language_english_minus_others_points"] == round(100 * records["language_english_minus_others"])
    assert -1 <= records["language_tokens_spearman"] <= 1


def test_the_dial_word_follows_both_counts(records):
    """'the dial adds to the default' only where the unmarked share rises among the images that show the emoji."""
    above = sorted((s for s in CI["tone_scales"] if s > 0))
    text = records["tone_dial_word"]
    if len(above) < 2:
        assert text.startswith("this run has one scale above 0")
        return
    lo, hi = f"{above[0]:g}", f"{above[-1]:g}"
    right = records["tone_unmarked_share_when_drawn_right"]
    rise_right = right.get(hi, 0) - right.get(lo, 0)
    assert ("the dial adds to the default" in text) == (rise_right > 0.05)
