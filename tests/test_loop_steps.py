"""The loop's steps, each written once in lds.pipeline.sampling and checked against diffusers' own code:
starting noise (initial_latents), the clean latents a prediction implies (pred_original_sample),
and latents to pixels (decode_latents). Chapter 7 explains the loop."""

import re
from pathlib import Path

import torch
from diffusers import DDPMScheduler
from diffusers.image_processor import VaeImageProcessor

from lds.pipeline.sampling import decode_latents, generate, initial_latents, pred_original_sample

ROOT = Path(__file__).resolve().parents[1]


def test_pred_original_sample_is_diffusers_x0():
    """The same x̂0 that DDPMScheduler.step reports (clipping off, epsilon prediction)."""
    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False)
    sched.set_timesteps(25)
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    for t in sched.timesteps[[0, 12, -1]]:
        theirs = sched.step(eps, t, x, generator=torch.Generator().manual_seed(1)).pred_original_sample
        torch.testing.assert_close(pred_original_sample(sched, x, eps, t), theirs, rtol=1e-5, atol=1e-5)


def test_initial_latents_is_what_generate_draws(pipe):
    a = generate(pipe, "frog", seed=5, num_inference_steps=3)
    b = generate(pipe, "frog", seed=0, num_inference_steps=3, latents=initial_latents(pipe, 5))
    assert torch.equal(a.latents, b.latents)
    # a list of seeds stacks each seed's single-prompt noise; one seed for a batch draws it with one generator
    many = initial_latents(pipe, [3, 4])
    assert torch.equal(many[1:], initial_latents(pipe, 4)) and not torch.equal(many, initial_latents(pipe, 3, 2))
    assert torch.equal(initial_latents(pipe, 3, 2), initial_latents(pipe, torch.Generator().manual_seed(3), 2))
    side = pipe.unet.config.sample_size
    assert many.shape == (2, pipe.unet.config.in_channels, side, side) and many.dtype == pipe.unet.dtype


def test_decode_latents_is_diffusers_postprocess(pipe):
    """Step 7 gives what diffusers' VAE decode + image processor give, in [0, 1]; raw keeps what clamping cuts."""
    latents = 3 * initial_latents(pipe, [0, 1, 2])
    with torch.no_grad():
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    expected = VaeImageProcessor(vae_scale_factor=pipe.vae_scale_factor).postprocess(decoded, output_type="pt")
    ours = decode_latents(pipe.vae, latents)
    assert ours.dtype == torch.float32 and ours.device.type == "cpu"
    assert torch.equal(ours, expected)
    raw = decode_latents(pipe.vae, latents, raw=True)
    assert torch.equal(raw, decoded) and (raw.abs() > 1).any()
    # in batches of one (SD's 512 px decodes a few at a time): the same images, up to float rounding
    torch.testing.assert_close(decode_latents(pipe.vae, latents, batch_size=1), ours, rtol=0, atol=1e-5)


def test_each_step_is_written_once():
    """Outside lds.models.autoencoder (the VAE's one decode and its training), nothing in lds calls the decoder,
    and only lds.pipeline.sampling spells out x̂0."""
    for f in (ROOT / "lds").rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        if f.name != "autoencoder.py":
            assert "vae.decode(" not in text, f"{f.name} decodes latents itself: call lds.pipeline.sampling.decode_latents"
        if f.name != "sampling.py":
            assert not re.search(r"\(1 - \w+\)\.sqrt\(\) \* noise_pred", text), f"{f.name} computes x̂0 itself"


def test_out_of_range_is_measured_on_the_one_decode(pipe):
    """generate decodes once: its out_of_range is the measure of the decoder's raw output for its latents,
    and its image is that output mapped to [0, 1]."""
    from lds.measures import out_of_range

    out = generate(pipe, ["red apple", "rocket"], seed=3, guidance_scale=30.0, num_inference_steps=4)
    raw = decode_latents(pipe.vae, out.latents, raw=True)
    assert torch.equal(out.out_of_range, out_of_range(raw)) and out.out_of_range.shape == (2,)
    assert torch.equal(out.image_tensor, decode_latents(pipe.vae, out.latents))
