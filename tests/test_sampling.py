"""The written-out loop: parity with diffusers, determinism, and every bad input refused clearly."""

import io
import math

import numpy as np
import pytest
import torch

from lds.pipeline.sampling import MAX_PROMPT_CHARS, generate


def _png_bytes(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("guidance_scale", [3.0, 7.5])
def test_parity_with_diffusers_pipeline(pipe, guidance_scale):
    """Same model, prompt, seed: lds's loop and diffusers' StableDiffusionPipeline give the same pixels."""
    ours = generate(pipe, "grinning face", seed=7, guidance_scale=guidance_scale, num_inference_steps=12)
    ref = pipe("grinning face", generator=torch.Generator().manual_seed(7), guidance_scale=guidance_scale,
               num_inference_steps=12, output_type="np").images[0]
    assert np.array_equal(np.asarray(ours.images[0]), (ref * 255).round().astype("uint8"))


def test_diffusers_at_guidance_below_one_is_conditional_only(pipe):
    """diffusers skips guidance at s <= 1; lds applies the formula: s=1 agrees, s=0 does not."""
    cond = generate(pipe, "red apple", seed=1, guidance_scale=1.0, num_inference_steps=10).image_tensor
    d0 = pipe("red apple", generator=torch.Generator().manual_seed(1), guidance_scale=0.0,
              num_inference_steps=10, output_type="pt").images
    assert torch.allclose(cond, d0, atol=1e-5)
    ours0 = generate(pipe, "red apple", seed=1, guidance_scale=0.0, num_inference_steps=10).image_tensor
    assert (ours0 - d0).abs().mean() > 1e-3


def test_guidance_zero_is_unconditional(pipe):
    a = generate(pipe, "red apple", seed=2, guidance_scale=0.0, num_inference_steps=10).image_tensor
    b = generate(pipe, "rocket", seed=2, guidance_scale=0.0, num_inference_steps=10).image_tensor
    assert torch.equal(a, b), "at guidance 0 the prompt has no influence"


def test_same_seed_same_png_bytes(pipe):
    a = generate(pipe, "thumbs up", seed=11, num_inference_steps=10)
    b = generate(pipe, "thumbs up", seed=11, num_inference_steps=10)
    c = generate(pipe, "thumbs up", seed=12, num_inference_steps=10)
    assert _png_bytes(a.images[0]) == _png_bytes(b.images[0])
    assert _png_bytes(a.images[0]) != _png_bytes(c.images[0])


def test_callback_sees_every_step(pipe):
    seen = []
    generate(pipe, "frog", seed=0, num_inference_steps=8, callback=seen.append)
    assert [s.i for s in seen] == list(range(8))
    assert seen[0].pred_original_sample.shape == seen[0].latents.shape


def test_empty_prompt_is_documented_behaviour(pipe):
    out = generate(pipe, "", seed=0, num_inference_steps=4)
    assert any("empty" in n for n in out.notes)


def test_long_prompt_reports_truncation(pipe):
    prompt = " ".join(f"word{i}" for i in range(120))
    out = generate(pipe, prompt, seed=0, num_inference_steps=2)
    assert out.tokenized[0].truncated
    assert any("truncated at 77 tokens" in n for n in out.notes)
    assert "word119" in out.tokenized[0].truncated_text.replace(" ", "")


def test_hundred_thousand_characters(pipe):
    out = generate(pipe, "a" * MAX_PROMPT_CHARS, seed=0, num_inference_steps=1)
    assert out.tokenized[0].truncated
    with pytest.raises(ValueError, match="at most"):
        generate(pipe, "a" * (MAX_PROMPT_CHARS + 1), seed=0, num_inference_steps=1)


def test_control_characters_and_surrogates(pipe):
    out = generate(pipe, "red\x00 apple\x1b \ud800", seed=0, num_inference_steps=1)
    assert any("surrogate" in n for n in out.notes) and any("control" in n for n in out.notes)


@pytest.mark.parametrize("prompt", ["قبول", "拇指向上", "👍🏽🍎", "ё ж щ"])
def test_other_scripts_and_emoji(pipe, prompt):
    out = generate(pipe, prompt, seed=0, num_inference_steps=2)
    assert out.images[0].size == (out.params["width"], out.params["height"])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e9, "high"])
def test_bad_guidance_refused(pipe, bad):
    with pytest.raises(ValueError, match="guidance_scale"):
        generate(pipe, "frog", guidance_scale=bad, num_inference_steps=1)


def test_negative_guidance_is_allowed_and_differs(pipe):
    a = generate(pipe, "frog", seed=0, guidance_scale=-2.0, num_inference_steps=4).image_tensor
    b = generate(pipe, "frog", seed=0, guidance_scale=2.0, num_inference_steps=4).image_tensor
    assert not torch.equal(a, b)


@pytest.mark.parametrize("steps", [0, -3, 10**6, 2.5, True])
def test_bad_steps_refused(pipe, steps):
    with pytest.raises(ValueError, match="num_inference_steps"):
        generate(pipe, "frog", num_inference_steps=steps)


@pytest.mark.parametrize("size", [0, -32, 33, 10**5])
def test_bad_sizes_refused(pipe, size):
    with pytest.raises(ValueError, match="cannot be generated"):
        generate(pipe, "frog", height=size, num_inference_steps=1)


def test_non_string_prompt_refused(pipe):
    with pytest.raises(TypeError):
        generate(pipe, 42)


def test_negative_prompt_cleaning_is_noted(pipe):
    """What is done to the negative prompt is said too ("nothing is changed silently"), and named as the negative's."""
    out = generate(pipe, "frog", negative_prompt="blurry\x00 \ud800", seed=0, num_inference_steps=1)
    assert any(n.startswith("negative prompt: ") and "surrogate" in n for n in out.notes)
    assert any(n.startswith("negative prompt: ") and "control" in n for n in out.notes)
    long = " ".join(f"word{i}" for i in range(120))
    out = generate(pipe, "frog", negative_prompt=long, seed=0, num_inference_steps=1)
    assert any(n.startswith("negative prompt: truncated at 77 tokens") for n in out.notes)
    # the default, empty negative prompt is the unconditional prediction, not something to report
    assert generate(pipe, "frog", seed=0, num_inference_steps=1).notes == []


def test_parity_in_half_precision():
    """The one raw decode, mapped to [0, 1] in the VAE's own dtype, gives diffusers' pixels in float16 too."""
    from lds.pipeline.loading import load_pipeline

    half = load_pipeline("lds-mini", dtype=torch.float16)
    ours = generate(half, ["grinning face", "red apple"], seed=7, num_inference_steps=3)
    ref = half(["grinning face", "red apple"], generator=torch.Generator().manual_seed(7), num_inference_steps=3,
               output_type="pt").images
    assert torch.equal(ours.image_tensor, ref.float().cpu())
