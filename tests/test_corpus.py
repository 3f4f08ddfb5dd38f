"""The emoji corpus: shipped intact, rebuildable identically, and the synthetic web's dials work."""

import hashlib
import os

import numpy as np
import pytest

from lds.data.corpus import FONT_PATH, KINDS, LANGUAGES, WebConfig, build_corpus, corpus_provenance, load_corpus, sample_web


def test_shipped_corpus_matches_its_provenance():
    c = load_corpus()
    prov = corpus_provenance()
    assert len(c) == prov["count"] == c.images.shape[0]
    assert hashlib.sha256(c.images.tobytes()).hexdigest() == prov["images_sha256"]
    assert c.images.shape[1:] == (32, 32, 4) and c.images.dtype == np.uint8
    assert "SIL Open Font License" in prov["image_licence"]


def test_every_record_has_fourteen_names_a_kind_and_a_tone():
    c = load_corpus()
    assert len(LANGUAGES) == 14
    for r in c.records:
        assert set(r["names"]) == set(LANGUAGES)
        assert r["kind"] in KINDS
    tones = {t: c.tones.count(t) for t in set(c.tones)}
    assert tones["dark"] == tones["light"] > 300  # every toned emoji comes in all five tones
    assert c.kinds.count("flag") > 250


@pytest.mark.skipif(not FONT_PATH.exists() and not os.environ.get("CI"),
                    reason="Noto Color Emoji not installed (apt-get install fonts-noto-color-emoji)")
def test_rebuild_is_identical():
    rebuilt = build_corpus(progress=False)
    assert hashlib.sha256(rebuilt.images.tobytes()).hexdigest() == corpus_provenance()["images_sha256"]


def test_synthetic_web_dials():
    c = load_corpus()
    web = sample_web(c, WebConfig(pairs=20000, english_share=0.7, mismatch_rate=0.2, uncaptioned_rate=0.1))
    assert abs((web["lang"] == "en").mean() - 0.7) < 0.02
    assert abs(web["uncaptioned"].mean() - 0.1) < 0.01
    assert abs((~web["matched"]).mean() - (0.1 + 0.9 * 0.2)) < 0.02
    assert all(cap == "" for cap in web["caption"][web["uncaptioned"]])
    # the popularity skew: skin-tone variants are drawn less often than their unmarked base
    toned = np.array([c.records[i]["tone"] != "none" for i in web["image"]])
    uniform = np.mean([t != "none" for t in c.tones])
    assert toned.mean() < uniform
    again = sample_web(c, WebConfig(pairs=20000, english_share=0.7, mismatch_rate=0.2, uncaptioned_rate=0.1))
    assert np.array_equal(web["image"], again["image"])  # seeded
