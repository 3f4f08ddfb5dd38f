"""Chapter 8 (Classifier-free guidance): the recorded numbers behind claims 19-22 and 24 (CI parameters)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def records(executed):
    return executed("08_guidance")


def test_claim_19_drop_rate_and_two_predictions(records):
    assert records["cond_drop"] == pytest.approx(0.1)  # lds-mini's training_config.json
    assert records["uncond_cond_relative_difference"] > 0.01
    assert records["claim:19"]["verdict"] == "holds"


def test_commodity_is_not_in_the_corpus(records):
    assert records["prompt_in_corpus_captions"] == 0


def test_claim_20_cfg0_is_convention_dependent(records):
    # lds / ComfyUI / A1111: at 0 the prompt has no influence, exactly
    assert records["cfg0_max_difference_between_prompts"] == 0.0
    # diffusers' own pipeline at guidance_scale=0 is the conditional image, not the unconditional one
    assert records["diffusers_cfg0_vs_conditional_max_abs"] < 1e-4
    assert records["diffusers_cfg0_vs_unconditional_max_abs"] > 0.01
    assert records["conditional_vs_unconditional_rms"] > 0.01
    assert records["claim:20"]["verdict"] == "holds with a qualifier"


def test_claims_21_22_measures_against_scale(records):
    scales = records["guidance_scales"]
    assert scales == [0.0, 0.5, 1.0, 3.0, 7.5, 12.0, 25.0]
    for prompt, m in records["guidance_measures"].items():
        assert m["distance_from_unconditional"][0] == 0.0  # s = 0 is the unconditional image itself
        assert all(len(v) == len(scales) for v in m.values())
        assert all(0.0 <= v <= 1.0 for v in m["out_of_range"] + m["saturation"])
    assert records["distance_trend_spearman"] > 0.8
    assert records["pushed_over_gap_at_7_5"] == pytest.approx(7.5, rel=1e-3)  # the formula, step by step
    # claim 22 from its parts: per step exactly s times the gap (the formula), and over whole images a distance that
    # keeps rising above s = 1 for two thirds of the trained prompts
    c = records["claim:22"]
    rising = sum(v > 0.8 for v in records["distance_trend_by_prompt"].values())
    assert records["distance_rising_prompts"] == rising
    # the per-step part is the formula (by construction, not counted); the image part has a ceiling (issue 27's third
    # read): where the distance at s = 1 is already about that between unrelated unprompted images, not testable
    if c["verdict"] == "not testable on lds-mini":
        lo = float(records["distance_at_1_range"].split(" to ")[0])
        assert lo >= 0.8 * records["distance_between_unprompted"] - 0.01
    else:
        assert [p["holds"] for p in c["parts"]] == [True, rising >= 2] and c["parts"][0]["by_construction"]
        assert c["verdict"] == ("holds" if rising >= 2 else "does not hold")
    assert records["claim22_verdict"] == c["verdict"]


def test_claim_21_tested_on_agreement_with_the_prompt(records):
    """Claim 21's 'saturating' is the prompt's: agreement stops rising, then how much of its rise is lost at the top."""
    by_prompt = records["agreement_by_prompt"]
    assert set(by_prompt) == {"green apple", "waving hand", "cat face"} and records["claim21_prompts"] == 3  # not 'commodity'
    for row in by_prompt.values():
        assert row["peak"] >= max(row["at_0"], row["at_top"])
    lost = sorted(row["lost_at_top"] for row in by_prompt.values())[1]  # the median of three
    assert records["agreement_lost_at_top"] == pytest.approx(lost, abs=1e-3)
    # two parts, each for two thirds of the prompts: saturates (peaks below the top), collapses (more than half lost)
    peaked = sum(row["peak_scale"] < records["guidance_scales"][-1] and row["at_top"] < row["peak"] for row in by_prompt.values())
    collapsed = sum(row["lost_at_top"] > 0.5 for row in by_prompt.values())
    assert (records["agreement_peaked"], records["agreement_collapsed"]) == (peaked, collapsed)
    c = records["claim:21"]
    held = [peaked >= 2, collapsed >= 2]
    assert [p["holds"] for p in c["parts"]] == held
    assert c["verdict"] == ("holds" if all(held) else "holds in part" if any(held) else "does not hold")
    assert "half" in c["threshold"] and "3 trained prompts" in c["counts"]
    assert "colour saturation is a separate" in c["note"]


def test_claim_24_diversity_and_mean_image(records):
    for key in ("diversity_at_0", "diversity_at_1", "diversity_at_max"):
        assert 0.0 < records[key] < 1.0
    assert all(len(v) == len(records["guidance_scales"]) for v in records["mean_image_to_corpus_mean"].values())
    # The finding on lds-mini at CI size (4 seeds): variety narrows from s = 0 to s = 1 (the quick recipe's weights:
    # 0.361 to 0.333, 0.406 at s = 25; the full recipe's: 0.359 at s = 0, 0.236 at s = 25). A model whose variety
    # widened from s = 0 to 1 would change the chapter's reading, which starts the test of claim 24 at s = 1.
    assert records["diversity_at_1"] < records["diversity_at_0"]
    shape = records["diversity_by_prompt"]
    assert records["claim24_prompts"] == len(shape) == 3
    fall = sorted(row["fall"] for row in shape.values())[1]
    rebound = sorted(row["rebound"] for row in shape.values())[1]
    assert records["diversity_fall"] == pytest.approx(fall, abs=1e-3)
    assert records["diversity_rebound"] == pytest.approx(rebound, abs=1e-3)  # the median of three is the middle one
    top_vs_s1 = sorted(row["top_vs_s1"] for row in shape.values())[1]  # the glued end of the sweep, against s = 1
    assert records["diversity_top_vs_s1"] == pytest.approx(top_vs_s1, abs=1e-3)
    # the ratio of two values recorded to 4 decimals: a relative tolerance (at_1 can be as small as 0.05)
    assert all(row["top_vs_s1"] == pytest.approx(row["at_top"] / row["at_1"], rel=1e-2, abs=2e-3) for row in shape.values())
    assert all(row["lowest"] <= min(row["at_1"], row["at_top"]) for row in shape.values())  # lowest from s = 1 up
    # two parts, each for two thirds of the prompts: narrowing (a fall of more than a tenth) and a mean image nearer
    # the corpus mean at the top than at s = 1
    narrowed = sum(row["fall"] > 0.1 for row in shape.values())
    i1, means = records["guidance_scales"].index(1.0), records["mean_image_to_corpus_mean"]
    nearer = sum(means[p][-1] < means[p][i1] for p in shape)
    assert (records["diversity_narrowed"], records["mean_image_nearer_corpus_mean"]) == (narrowed, nearer)
    c = records["claim:24"]
    if narrowed >= 2 and nearer >= 2:
        assert c["verdict"] in ("holds", "holds with a qualifier")
    else:
        assert [p["holds"] for p in c["parts"]] == [narrowed >= 2, nearer >= 2]
        assert c["verdict"] == ("holds in part" if narrowed >= 2 or nearer >= 2 else "does not hold")
    assert "a tenth" in c["threshold"] and "cross-attention" in c["note"]
    # each prompt's shape is stated for that prompt, not as medians of separate quantities
    assert all(f"'{p}' falls" in c["lds_mini"] for p in shape)
    # the low end of the dial: the unprompted mean image against the corpus mean
    assert records["mean_to_corpus_at_0_max"] == pytest.approx(max(means[p][0] for p in shape), abs=1e-3)


def test_unmarked_default_across_the_dial(records):
    # tones are counted only in images that show the gesture (classify_tone gives a picture of anything a tone)
    shares = records["unmarked_share_by_scale"]
    assert len(shares) == len(records["guidance_scales"]) and all(v is None or 0.0 <= v <= 1.0 for v in shares)
    assert records["default_gesture_seeds"] == 8  # tests/ci_parameters/08_guidance.yml: chapter 7's n_tone_seeds
    trace = records["default_gesture_trace"]
    assert all((v is None) == (trace[f"{s:g}"]["shows"] == 0) for s, v in zip(records["guidance_scales"], shares))
    assert records["unmarked_count_at_1"] == trace["1"]["unmarked_shown"] and records["shows_at_1"] == trace["1"]["shows"]
    assert records["unmarked_share_at_1"] == pytest.approx(trace["1"]["unmarked_shown"] / trace["1"]["shows"], abs=1e-3)
    assert records["default_shows_at_0"] == trace["0"]["shows"]
    assert all(v["unmarked_shown"] <= min(v["unmarked"], v["shows"]) for v in trace.values())


def test_dial_over_precomputed_images():
    import numpy as np

    from lds.book.dials import image_dial, image_strip

    images = [np.full((8, 8, 3), v, dtype=np.float32) for v in (0.0, 0.5, 1.0)]
    box = image_dial(images, [0.0, 7.5, 25.0], "guidance")
    slider, picture, label = box.children
    assert [v for v, _ in slider.options] == ["0", "7.5", "25"]
    first = picture.value
    slider.value = 2  # moving the dial swaps in the precomputed image, nothing is generated
    assert picture.value != first and label.value == "guidance = 25"
    steps = image_dial(images, [1, 2, 3], "steps").children[0]
    assert type(steps).__name__ == "IntSlider" and (steps.min, steps.max) == (1, 3)
    fig = image_strip(images, [0.0, 7.5, 25.0], "s")
    assert len(fig.axes) == 3
