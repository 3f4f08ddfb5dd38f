"""Classifier-free guidance: the formula, the conventions, and lds's guarantees at the edges (chapter 8)."""

from __future__ import annotations

import math

import pytest
import torch

from lds.instruments.guidance import CONVENTIONS, lds_scale_for, weights_diffusers, weights_ho_salimans, weights_lds
from lds.pipeline.guidance import apply_guidance
from lds.measures import diversity, hsv_saturation, out_of_range, spearman


@pytest.fixture(scope="module")
def predictions():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)


def test_scale_zero_is_unconditional(predictions):
    u, c = predictions
    assert torch.equal(apply_guidance(u, c, 0.0), u)


def test_scale_one_is_conditional(predictions):
    u, c = predictions
    torch.testing.assert_close(apply_guidance(u, c, 1.0), c, rtol=0, atol=1e-6)


def test_scale_between_and_above(predictions):
    u, c = predictions
    torch.testing.assert_close(apply_guidance(u, c, 0.5), (u + c) / 2, rtol=0, atol=1e-6)
    # 7.5 extrapolates: 7.5 times the gap, measured from the unconditional prediction
    gap = (apply_guidance(u, c, 7.5) - u).norm() / (c - u).norm()
    assert math.isclose(float(gap), 7.5, rel_tol=1e-5)


@pytest.mark.parametrize("s", [0.0, 0.5, 1.0, 3.0, 7.5, 25.0])
def test_conventions_weights(s):
    assert weights_lds(s) == (1.0 - s, s)
    assert weights_ho_salimans(s - 1) == pytest.approx((1.0 - s, s))  # w = s - 1
    assert weights_diffusers(s) == ((1.0 - s, s) if s > 1 else (0.0, 1.0))
    for f in CONVENTIONS.values():
        a, b = f(s)
        assert a + b == pytest.approx(1.0)
        assert lds_scale_for((a, b)) == pytest.approx(b)


def test_cfg0_across_conventions():
    # "CFG 0": unconditional in lds / ComfyUI / A1111, conditional in diffusers and for Ho & Salimans' w = 0
    assert lds_scale_for(CONVENTIONS["lds / ComfyUI / AUTOMATIC1111"](0.0)) == 0.0
    assert lds_scale_for(CONVENTIONS["diffusers StableDiffusionPipeline"](0.0)) == 1.0
    assert lds_scale_for(CONVENTIONS["Ho & Salimans w"](0.0)) == 1.0
    with pytest.raises(ValueError):
        lds_scale_for((0.5, 0.7))


def test_image_measures():
    grey = torch.full((1, 3, 4, 4), 0.5)
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    assert hsv_saturation(grey).item() == 0.0
    assert hsv_saturation(red).item() == 1.0
    assert diversity(torch.cat([grey, grey])) == 0.0
    assert diversity(torch.cat([grey, red])) == pytest.approx(float(((grey - red) ** 2).mean().sqrt()), rel=1e-5)


def test_out_of_range_counts_the_raw_values_clamping_cuts():
    raw = torch.zeros(2, 3, 4, 4)
    raw[0, 0, 0, :2] = torch.tensor([1.5, -1.01])  # 2 of 48 values outside [-1, 1]
    raw[1] = 1.0  # on the edge, not outside
    assert out_of_range(raw).tolist() == [pytest.approx(2 / 48), 0.0]


def test_spearman_ranks_with_ties_and_says_zero_for_no_order():
    assert spearman([0, 1, 3, 7.5], [0.1, 0.2, 0.3, 0.9]) == pytest.approx(1.0)
    assert spearman([0, 1, 2, 3], [1, 1, 2, 2]) == pytest.approx(0.8944271909999159)  # ties: average ranks
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0  # constant: no order to correlate


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), "seven", None])
def test_non_finite_guidance_refused(pipe, bad):
    from lds.pipeline.sampling import generate

    with pytest.raises(ValueError):
        generate(pipe, "red apple", seed=0, num_inference_steps=2, guidance_scale=bad)


def test_guidance_zero_equals_empty_prompt(pipe):
    """At s = 0 the prompt has no influence: the image equals the empty prompt's, at any scale, same seed."""
    from lds.pipeline.sampling import generate

    unconditional = generate(pipe, "red apple", seed=3, num_inference_steps=4, guidance_scale=0.0).image_tensor
    for s in (0.0, 1.0, 7.5):
        empty = generate(pipe, "", seed=3, num_inference_steps=4, guidance_scale=s).image_tensor
        torch.testing.assert_close(unconditional, empty, rtol=0, atol=1e-6)
    other = generate(pipe, "thumbs up", seed=3, num_inference_steps=4, guidance_scale=0.0).image_tensor
    assert torch.equal(unconditional, other)
    prompted = generate(pipe, "red apple", seed=3, num_inference_steps=4, guidance_scale=1.0).image_tensor
    assert (prompted - unconditional).abs().max() > 1e-3  # the prompt does act at s = 1


def test_diffusers_guidance_zero_is_conditional(pipe):
    """diffusers' own pipeline at guidance_scale=0 gives the conditional-only image (lds s = 1)."""
    import numpy as np

    from lds.pipeline.sampling import generate

    out = pipe("red apple", generator=torch.Generator().manual_seed(5), guidance_scale=0.0,
               num_inference_steps=4, output_type="np").images
    theirs = torch.from_numpy(np.asarray(out)).permute(0, 3, 1, 2).float()
    conditional = generate(pipe, "red apple", seed=5, num_inference_steps=4, guidance_scale=1.0).image_tensor.float()
    unconditional = generate(pipe, "red apple", seed=5, num_inference_steps=4, guidance_scale=0.0).image_tensor.float()
    torch.testing.assert_close(theirs, conditional, rtol=0, atol=1e-4)
    assert (theirs - unconditional).abs().max() > 1e-3
