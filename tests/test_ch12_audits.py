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
