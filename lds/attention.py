"""Cross-attention: which prompt slots each image region attends to, recorded as it happens.

Chapter 6 (Cross-attention) explains it.

Recording goes through diffusers' supported hook, the attention processor
(``unet.set_attn_processor``), on the cross-attention layers only (``attn2``). The processor
hands the layer's output to diffusers' own ``AttnProcessor2_0``, so the image is bit-identical to
the plain pipeline's, and separately computes the attention probabilities from the same
projections. Maps are aggregated as DAAM does (Tang et al. 2023): summed over heads, layers and
steps, each layer's map upsampled to the latent grid, for all 77 slots, special tokens included.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import torch
import torch.nn.functional as F


@dataclasses.dataclass
class AttentionRecord:
    """Aggregated cross-attention for one generation (the conditional half of the batch)."""

    maps: torch.Tensor  # (B, 77, h, w): summed over layers, heads (mean) and steps, on the latent grid
    share_per_step: torch.Tensor  # (steps, B, 77): each slot's share of all attention at each step
    layers: list[str]
    calls: int

    @property
    def share(self) -> torch.Tensor:
        """(B, 77): each slot's share of the attention, over the whole generation (sums to 1)."""
        s = self.share_per_step.sum(0)
        return s / s.sum(-1, keepdim=True)

    def normalized_maps(self) -> torch.Tensor:
        """Each slot's map scaled to [0, 1] (for display; shares carry the magnitudes)."""
        m = self.maps
        lo = m.flatten(2).min(-1).values[..., None, None]
        hi = m.flatten(2).max(-1).values[..., None, None]
        return (m - lo) / (hi - lo).clamp_min(1e-12)


class CrossAttentionRecorder:
    """An attention processor that records cross-attention probabilities (see module docstring)."""

    def __init__(self, store: "_Store", name: str):
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.inner = AttnProcessor2_0()
        self.store, self.name = store, name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        out = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kw)
        if encoder_hidden_states is not None and self.store.active:
            with torch.no_grad():
                x = hidden_states
                if x.ndim == 4:
                    x = x.flatten(2).transpose(1, 2)
                if attn.group_norm is not None:
                    x = attn.group_norm(x.transpose(1, 2)).transpose(1, 2)
                ctx = attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states
                q = attn.head_to_batch_dim(attn.to_q(x))
                k = attn.head_to_batch_dim(attn.to_k(ctx))
                probs = attn.get_attention_scores(q, k, attention_mask)  # (B*heads, hw, 77)
                self.store.add(self.name, probs.view(-1, attn.heads, *probs.shape[1:]).mean(1))
        return out


class _Store:
    def __init__(self, latent_hw: tuple[int, int], keep: str = "cond"):
        self.h, self.w = latent_hw
        self.keep = keep
        self.active = True
        self.maps = None
        self.step_share = []
        self._current = None
        self.layers = set()
        self.calls = 0

    def add(self, name: str, probs: torch.Tensor) -> None:
        # probs: (2B, hw, 77) with the unconditional half first, as the sampler batches them
        if self.keep == "cond" and probs.shape[0] % 2 == 0:
            probs = probs[probs.shape[0] // 2:]
        b, hw, n = probs.shape
        side_h = int(round((hw * self.h / self.w) ** 0.5))
        side_w = hw // side_h
        grid = probs.transpose(1, 2).reshape(b, n, side_h, side_w).float()
        if (side_h, side_w) != (self.h, self.w):
            grid = F.interpolate(grid, size=(self.h, self.w), mode="bicubic", align_corners=False).clamp_min(0)
        self.maps = grid if self.maps is None else self.maps + grid
        total = probs.float().sum(1)  # (b, 77): attention mass per slot in this layer
        self._current = total if self._current is None else self._current + total
        self.layers.add(name)
        self.calls += 1

    def end_step(self) -> None:
        if self._current is not None:
            self.step_share.append(self._current / self._current.sum(-1, keepdim=True))
            self._current = None


@contextmanager
def record_cross_attention(pipe, height: int | None = None, width: int | None = None, keep: str = "cond"):
    """Record cross-attention while sampling; yields a callable that returns the :class:`AttentionRecord`.

    Use with :func:`lds.sampling.generate` and pass ``callback=recorder.step`` so steps are told apart::

        with record_cross_attention(pipe) as rec:
            out = generate(pipe, prompt, callback=rec.step)
        record = rec.result()
    """
    default = pipe.unet.config.sample_size * pipe.vae_scale_factor
    h = (height or default) // pipe.vae_scale_factor
    w = (width or default) // pipe.vae_scale_factor
    store = _Store((h, w), keep)
    original = pipe.unet.attn_processors
    processors = {name: (CrossAttentionRecorder(store, name) if name.endswith("attn2.processor") else proc)
                  for name, proc in original.items()}
    pipe.unet.set_attn_processor(processors)

    class Handle:
        def step(self, state=None):
            store.end_step()

        def result(self) -> AttentionRecord:
            store.end_step()
            if store.maps is None:
                raise RuntimeError("No cross-attention was recorded: did the generation run inside the `with` block?")
            return AttentionRecord(store.maps, torch.stack(store.step_share), sorted(store.layers), store.calls)

    try:
        yield Handle()
    finally:
        pipe.unet.set_attn_processor(original)


def cross_attention_layers(unet) -> list[str]:
    """Names of the U-Net's cross-attention layers (16 in SD 1.5: 6 down, 1 mid, 9 up)."""
    return [n for n in unet.attn_processors if n.endswith("attn2.processor")]
