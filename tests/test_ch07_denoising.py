"""Chapter 7 (Denoising): the numbers its argument rests on, from the executed chapter (CI parameters)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def records(executed):
    return executed("07_denoising")


def test_trajectory_recorded_every_step(records):
    assert records["trajectory_steps"] == 10  # tests/ci_parameters/07_denoising.yml
    assert 1 <= records["low_band_settles_at_step"] <= records["trajectory_steps"]
    assert 1 <= records["high_band_settles_at_step"] <= records["trajectory_steps"]


def test_claim_15_coarse_before_fine(records):
    c = records["claim:15"]
    low, high = records["low_band_settles_at_step"], records["high_band_settles_at_step"]
    # The chapter's reading: the outline (low band) does not settle after the detail. A model whose fine
    # detail settled first would reverse it.
    assert low <= high
    # many runs, not one seed: tests/ci_parameters/07_denoising.yml (4 prompts x 2 seeds)
    leads = records["order_leads"]
    assert records["order_runs"] == len(leads) == records["order_prompts_count"] * records["order_seeds_count"] == 8
    share = sum(v > 0 for v in leads) / len(leads)
    assert records["order_outline_first_share"] == pytest.approx(share, abs=1e-3)
    # the verdict is computed from its two parts: the order (outline first in more than 70% of runs) and the speed
    # ("quickly": the outline settles in the first half of the loop); a failed part is never a qualifier
    order, quick = share > 0.7, records["order_low_settles_median"] <= records["trajectory_steps"] / 2
    assert [p["holds"] for p in c["parts"]] == [order, quick]
    hair = order and share <= 0.8
    expected = ("holds with a qualifier" if order and quick and hair else "holds" if order and quick
                else "holds in part" if order or quick else "does not hold")
    assert c["verdict"] == expected
    assert "70%" in c["threshold"] and c["test"] and "8 trajectories" in c["counts"]
    # the sensitivity table: 3 band cutoffs x 4 tolerances over the same runs, the default among them
    sens = records["order_sensitivity"]
    assert len(sens) == 12
    assert sens["cutoff 0.25, tolerance 0.1"]["outline_first"] == pytest.approx(share, abs=1e-3)
    assert records["order_low_settles_min"] <= records["order_low_settles_median"] <= records["order_low_settles_max"]


def test_claim_16_step_counts(records):
    dist = records["steps_distance_to_most"]
    assert set(dist) == {"1", "3", "10"}
    assert dist["1"] > dist["3"] > 0  # fewer steps end further from the finest walk (median over the runs)
    c = records["claim:16"]
    depends, detail = dist["1"] > 0.02, records["steps_detail_trend_spearman"] > 0.8
    assert [p["holds"] for p in c["parts"]] == [depends, detail]
    assert c["verdict"] == ("holds" if depends and detail else "holds in part" if depends or detail else "does not hold")
    assert "8 runs" in c["counts"]  # 4 prompts x 2 seeds at CI size, not one seed
    # the summary's word follows the fine-band energy: fewer steps give more of it, not less, on lds-mini
    energy = records["steps_high_energy"]
    assert records["steps_fewer_word"].startswith("a rougher" if energy["1"] > energy["10"] else "a coarser")


def test_seeds_differ(records):
    assert 0.02 < records["seed_diversity"] < 0.6


def test_claim_13_gaussian_noise_prompt_makes_images_not_noise(records):
    # real noise is spectrally flat; the generations fall off like drawings
    assert abs(records["real_noise_slope"]) < 0.3
    assert records["noise_prompt_slope"] < records["real_noise_slope"] - 1
    assert records["noise_prompt_to_corpus"] < records["noise_prompt_to_noise"]
    # the base rate: real noise is nearer the corpus than other noise too, so the generations are judged against
    # noise's own distance to the corpus
    assert records["noise_prompt_image_like"] == (records["noise_prompt_to_corpus"] < records["real_noise_to_corpus"]
                                                  and records["noise_prompt_slope"] < records["real_noise_slope"] - 1)
    assert records["noise_prompt_image_like"], "lds-mini's images for 'Gaussian noise' no longer read as images"
    # the words were never in a training caption: as for claims 17 and 18, no verdict rests on untrained tokens
    assert records["noise_prompt_words_in_captions"] == 0
    assert records["claim:13"]["verdict"] == "not testable on lds-mini"


def test_claim_23_skin_tones(records):
    summary = records["tone_summary"]
    assert set(summary) == {"thumbs up", "waving hand", "raised hand", "clapping hands", "thumbs down", "ok hand",
                            "raised fist"}
    for gesture, row in summary.items():
        assert row["corpus_unmarked_share"] == pytest.approx(1 / 6, abs=1e-3)
        assert 0.0 <= row["generated_unmarked_share"] <= 1.0
        assert 0.0 < row["training_unmarked_share"] < 1.0  # the gesture's web holds several tones
        assert row["captioned_unmarked_share"] >= row["training_unmarked_share"]  # the plain name goes with yellow
    drawn = [g for g, r in summary.items() if r["shows_gesture_share"] >= 0.5]  # nearest corpus image is a variant
    concentrated = [g for g in drawn if summary[g]["generated_unmarked_share"] > summary[g]["training_unmarked_share"] + 0.1]
    assert records["tone_gestures_counted"] == len(drawn)
    assert records["tone_gestures_concentrated"] == len(concentrated)
    # Measured at CI size (8 seeds, 10 steps) on the full recipe's weights: 6 of 7
    # gestures drawn (thumbs up came back as thumbs down in 7 of 8 images), all 6 at 100% unmarked against 32-52% of
    # their training pairs; guided 100% against 50-100% with the prompt alone. An untrained model draws
    # none of the gestures, and the six tones about equally (1/6 unmarked, below every gesture's training share).
    assert len(drawn) >= 5
    assert len(concentrated) >= 2 / 3 * len(drawn)
    # Guidance sharpens it on average: the guided share is at least the prompt-alone share
    assert sum(summary[g]["generated_unmarked_share"] for g in drawn) >= sum(summary[g]["unguided_unmarked_share"] for g in drawn)
    exceptions = [g for g in drawn if g not in concentrated]
    not_drawn = [g for g in summary if g not in drawn]
    assert (records["tone_exceptions"] == "none") == (not exceptions)
    assert all(f"'{g}'" in records["tone_exceptions"] for g in exceptions)
    assert (records["tone_not_drawn"] == "none") == (not not_drawn)
    assert all(f"'{g}'" in records["tone_not_drawn"] for g in not_drawn)
    # the verdict is computed from its parts: concentrated beyond the training pairs (two thirds of the gestures), and
    # beyond the pairs captioned exactly with the prompt (which are 100% unmarked: the model cannot go beyond them)
    c = records["claim:23"]
    beyond = [g for g in drawn if summary[g]["generated_unmarked_share"] > summary[g]["captioned_unmarked_share"] + 0.1]
    assert records["tone_beyond_captioned"] == len(beyond) == 0
    # with every captioned pair unmarked, the two readings predict the same images and the second part cannot pass:
    # not testable on lds-mini (issue 27's second read); otherwise computed from the two parts
    at_ceiling = all(summary[g]["captioned_unmarked_share"] >= 0.99 for g in drawn if "captioned_unmarked_share" in summary[g])
    assert records["tone_captions_at_ceiling"] == at_ceiling
    if at_ceiling:
        assert c["verdict"] == "not testable on lds-mini" and not c["parts"]
    else:
        assert [p["holds"] for p in c["parts"]] == [len(concentrated) >= 2 / 3 * len(drawn), len(beyond) >= 2 / 3 * len(drawn)]
    assert "not tested" in c["note"]  # the first clause (a correct distribution would not influence the model)


# Unit tests of lds.instruments.denoising's measures (no chapter execution needed)

def test_band_split_adds_up_and_separates():
    import torch

    from lds.measures import band_energy, band_split

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    low, high = band_split(x)
    torch.testing.assert_close(low + high, x, rtol=0, atol=1e-5)
    wave = 0.5 + 0.4 * torch.cos(2 * torch.pi * torch.arange(32) / 32)
    smooth = wave.repeat(1, 3, 32, 1)  # one slow wave across the image: all outline, no detail
    e = band_energy(smooth)
    assert e["high_share"][0] < 0.05
    assert band_energy(x)["high_share"].min() > 0.8  # independent noise is mostly fine detail


def test_spectral_slope_noise_vs_corpus():
    from lds.data.corpus import load_corpus
    from lds.measures import corpus_tensor, spectral_slope
    from lds.instruments.denoising import gaussian_noise_images

    noise = gaussian_noise_images(8, 3, 32, 32, seed=0)
    assert abs(spectral_slope(noise).mean()) < 0.3
    corpus = load_corpus()
    assert spectral_slope(corpus_tensor(corpus, range(0, 800, 100))).mean() < -1.5


def test_classify_tone_recovers_variants():
    from lds.data.corpus import load_corpus
    from lds.measures import classify_tone, corpus_tensor
    from lds.instruments.denoising import gesture_variants

    corpus = load_corpus()
    variants = gesture_variants(corpus, "thumbs up")
    assert len(variants) == 6
    c = classify_tone(corpus_tensor(corpus, variants), corpus, variants)
    assert c["nearest"] == c["tones"]
    assert c["colour"] == c["tones"]
    assert c["skin_pixels"] > 20


def test_shows_emoji_tells_a_gesture_from_another():
    """The check before a tone is read: thumbs-down images do not show 'thumbs up', its own variants do."""
    from lds.data.corpus import load_corpus
    from lds.measures import corpus_tensor, shows_emoji
    from lds.instruments.denoising import gesture_variants

    corpus = load_corpus()
    up, down = gesture_variants(corpus, "thumbs up"), gesture_variants(corpus, "thumbs down")
    assert shows_emoji(corpus_tensor(corpus, up), corpus, up)["shows"] == [True] * 6
    out = shows_emoji(corpus_tensor(corpus, down), corpus, up)
    assert out["shows"] == [False] * 6 and out["nearest"] == down
