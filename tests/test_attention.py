"""Cross-attention recording (chapter 6): shares, map shapes, and that looking changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lds.pipeline.attention import cross_attention_layers, record_cross_attention
from lds.instruments.attention import recording_cost, share_by_kind, word_slots
from lds.pipeline.sampling import generate
from lds.models.tokenizer import CONTEXT_LENGTH

STEPS = 4


@pytest.fixture(scope="module")
def recorded(pipe):
    with record_cross_attention(pipe) as rec:
        out = generate(pipe, ["red apple", "smiling face with heart-eyes"], seed=3, num_inference_steps=STEPS,
                       callback=rec.step)
    return out, rec.result()


def test_maps_and_shares(pipe, recorded):
    out, rec = recorded
    latent = pipe.unet.config.sample_size
    assert tuple(rec.maps.shape) == (2, CONTEXT_LENGTH, latent, latent)
    assert tuple(rec.share_per_step.shape) == (STEPS, 2, CONTEXT_LENGTH)
    torch.testing.assert_close(rec.share.sum(-1), torch.ones(2), rtol=0, atol=1e-5)
    torch.testing.assert_close(rec.share_per_step.sum(-1), torch.ones(STEPS, 2), rtol=0, atol=1e-5)
    assert (rec.share >= 0).all() and (rec.maps >= 0).all()
    n_layers = len(cross_attention_layers(pipe.unet))
    assert len(rec.layers) == n_layers and rec.calls == n_layers * STEPS
    # every slot, special tokens and padding included, receives some attention
    assert (rec.share > 0).all()
    kinds = share_by_kind(rec.share[0], out.tokenized[0].slot_kinds())
    assert abs(sum(kinds.values()) - 1) < 1e-5 and kinds["padding"] > 0


def test_word_slots(pipe, recorded):
    out, _ = recorded
    assert word_slots(pipe.tokenizer, out.tokenized[0], "apple") == [2]
    assert word_slots(pipe.tokenizer, out.tokenized[1], "heart-eyes") == [4, 5, 6]
    with pytest.raises(ValueError):
        word_slots(pipe.tokenizer, out.tokenized[0], "pear")


def test_recording_is_bit_identical_to_diffusers(pipe):
    """minGPT-style parity: diffusers' own pipeline, lds's sampler, and lds's sampler while recording."""
    prompt, seed = "red apple", 7
    reference = pipe(prompt, generator=torch.Generator().manual_seed(seed), num_inference_steps=STEPS,
                     guidance_scale=7.5, output_type="np").images
    plain = generate(pipe, prompt, seed=seed, num_inference_steps=STEPS, guidance_scale=7.5)
    with record_cross_attention(pipe) as rec:
        watched = generate(pipe, prompt, seed=seed, num_inference_steps=STEPS, guidance_scale=7.5, callback=rec.step)
    rec.result()
    ours = plain.image_tensor.permute(0, 2, 3, 1).numpy()
    assert ours.shape == reference.shape
    assert np.array_equal(ours, reference)
    assert torch.equal(plain.image_tensor, watched.image_tensor)
    assert torch.equal(plain.latents, watched.latents)
    # the recorder removes itself: the pipeline's processors are diffusers' own again
    assert not any(type(p).__name__ == "CrossAttentionRecorder" for p in pipe.unet.attn_processors.values())


def test_recording_cost_reports_identity(pipe):
    cost = recording_cost(pipe, "red apple", num_inference_steps=2, repeats=1)
    assert cost["identical"] is True
    assert len(cost["plain_seconds"]) == len(cost["recorded_seconds"]) == 1
    assert cost["ratio"] > 0
