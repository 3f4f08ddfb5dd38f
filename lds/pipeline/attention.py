"""Cross-attention: which prompt slots each image region attends to, recorded as it happens.

Chapter 6 (Cross-attention) explains it.

Recording goes through diffusers' supported hook, the attention processor
(``unet.set_attn_processor``), on the cross-attention layers only (``attn2``). The processor
hands the layer's output to diffusers' own ``AttnProcessor2_0``, so the image is bit-identical to
the plain pipeline's, and separately computes the attention probabilities from the same
projections. It keeps, for every cross-attention layer and every head, the conditional half of the
batch's attention probabilities summed over the denoising steps: one map per slot on that layer's
grid, for all 77 slots, special tokens and padding included.

Two measures are read from that record:

- **Word maps** (:attr:`AttentionRecord.maps`, :func:`aggregate_maps`). The default,
  ``aggregate="daam"``, is DAAM's aggregation (Tang et al. 2023, ``daam`` 0.2.0,
  ``trace.py``: ``UNetCrossAttentionHooker`` and ``compute_global_heat_map``): the layers of the
  down and up blocks only (not the mid block); every (layer, head) map, summed over steps, is
  upsampled bicubically to one grid and clamped at zero; the maps are then *averaged over all
  layer-head pairs*, so a layer with 16 heads weighs twice as much as one with 8. No normalisation
  (DAAM's ``normalize=False`` default). ``tests/test_attention_daam.py`` checks this against maps
  that DAAM 0.2.0 itself computed on lds-mini (``tests/fixtures/daam_reference.npz``). The
  variant lds used before, ``aggregate="lds-layer-mean"``, includes the mid block, averages the
  heads within each layer and sums the layers, so every layer weighs the same; chapter 6 shows how
  much the two differ.
- **Shares** (:attr:`AttentionRecord.share`, ``share_per_step``): each slot's part of all the
  attention paid at a step, over all cross-attention layers (mid block included), heads averaged
  within a layer, positions summed; they add up to one at every step.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import torch
import torch.nn.functional as F

AGGREGATES = ("daam", "lds-layer-mean")
"""The word-map aggregations :func:`aggregate_maps` offers (see the module docstring)."""


def _in_daam_blocks(layer: str) -> bool:
    # DAAM's UNetCrossAttentionLocator takes the up and down blocks' attn2 and leaves the mid block out
    return layer.startswith(("down_blocks.", "up_blocks."))


def aggregate_maps(layer_maps: dict[str, torch.Tensor], aggregate: str = "daam",
                   size: tuple[int, int] | None = None) -> torch.Tensor:
    """One map per slot from per-layer, per-head cross-attention maps.

    ``layer_maps`` maps a cross-attention layer's name (diffusers' processor name, such as
    ``down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor``) to its maps, shape
    ``(B, heads, slots, h, w)``: each head's attention probabilities for each slot, summed over the
    denoising steps. ``size`` is the output grid; by default the largest layer grid, which is the
    latent grid in lds-mini and SD 1.5. Returns ``(B, slots, *size)``.

    ``aggregate="daam"`` (DAAM 0.2.0): layers whose names start with ``down_blocks.`` or
    ``up_blocks.`` only; each (layer, head) map upsampled to ``size`` (bicubic,
    ``align_corners=False``, as ``F.interpolate`` defaults) and clamped at 0 (bicubic undershoots);
    then the mean over all layer-head maps. DAAM upsamples to 64x64, which is SD 1.5's latent grid at
    512 px (96x96 for a pipeline of any other default size); pass ``size`` to match it. DAAM also
    skips any map on a grid 1/8 the width of its own, which in SD 1.5 at 512 px is only the mid block's.

    ``aggregate="lds-layer-mean"`` (lds before it followed DAAM): every cross-attention layer, mid
    block included; heads averaged within each layer; layers summed, per grid size; each sum upsampled
    (bicubic) to ``size`` and clamped at 0; the grid sizes summed.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}.")
    if not layer_maps:
        raise ValueError("No cross-attention maps to aggregate: did the generation run inside the recorder?")
    if size is None:
        size = max((tuple(m.shape[-2:]) for m in layer_maps.values()), key=lambda hw: hw[0] * hw[1])
    size = tuple(size)

    def upsample(grid: torch.Tensor) -> torch.Tensor:  # (N, S, h, w) -> (N, S, *size), clamped at 0
        if tuple(grid.shape[-2:]) != size:
            grid = F.interpolate(grid, size=size, mode="bicubic", align_corners=False)
        return grid.clamp_min(0)

    if aggregate == "daam":
        chosen = {k: m for k, m in layer_maps.items() if _in_daam_blocks(k)}
        if not chosen:
            raise ValueError("No down- or up-block cross-attention layers among "
                             f"{sorted(layer_maps)}; DAAM's aggregation needs them.")
        total, count = 0, 0
        for m in chosen.values():
            b, heads, s, h, w = m.shape
            # each head upsampled and clamped on its own, as DAAM does before it averages
            total = total + upsample(m.float().reshape(b * heads, s, h, w)).reshape(b, heads, s, *size).sum(1)
            count += heads
        return total / count

    by_grid = {}
    for m in layer_maps.values():
        mean = m.float().mean(1)  # (B, S, h, w): heads averaged within the layer
        key = tuple(mean.shape[-2:])
        by_grid[key] = mean if key not in by_grid else by_grid[key] + mean
    return sum(upsample(grid) for grid in by_grid.values())


def word_map(maps: torch.Tensor, slots: list[int]) -> torch.Tensor:
    """A word's map: the mean of its slots' maps (DAAM's ``compute_word_heat_map``).

    ``maps`` is ``(B, 77, h, w)`` or ``(77, h, w)``; ``slots`` are the word's slots, for example
    from :func:`word_slots` (DAAM averages over every occurrence of the word; pass them all).
    """
    if not slots:
        raise ValueError("A word map needs at least one slot.")
    return maps[..., slots, :, :].mean(-3)


def map_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson's r between two maps of the same shape, over their pixels (chapter 6, the parity test)."""
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-300))


@dataclasses.dataclass
class AttentionRecord:
    """Cross-attention recorded over one generation (the conditional half of the batch).

    ``maps`` are the word maps of ``aggregate`` on the latent grid (see :func:`aggregate_maps`);
    ``layer_maps`` keep what they were made from, so :meth:`aggregated` can give any other variant.
    """

    maps: torch.Tensor  # (B, 77, h, w): word maps of `aggregate`, on the latent grid
    share_per_step: torch.Tensor  # (steps, B, 77): each slot's share of all attention at each step
    layers: list[str]
    calls: int
    layer_maps: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict, repr=False)  # (B, heads, 77, h, w)
    aggregate: str = "daam"

    @property
    def share(self) -> torch.Tensor:
        """(B, 77): each slot's share of the attention, over the whole generation (sums to 1)."""
        s = self.share_per_step.sum(0)
        return s / s.sum(-1, keepdim=True)

    def aggregated(self, aggregate: str = "daam", size: tuple[int, int] | None = None) -> torch.Tensor:
        """(B, 77, *size) word maps of another aggregation (default size: the latent grid of ``maps``)."""
        return aggregate_maps(self.layer_maps, aggregate, size or tuple(self.maps.shape[-2:]))

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
                probs = attn.get_attention_scores(q, k, attention_mask)  # (B*heads, hw, 77), batch-major
                self.store.add(self.name, probs.view(-1, attn.heads, *probs.shape[1:]))
        return out


class _Store:
    def __init__(self, latent_hw: tuple[int, int], keep: str = "cond"):
        self.h, self.w = latent_hw
        self.keep = keep
        self.active = True
        self.layer_maps = {}
        self.step_share = []
        self._current = None
        self.calls = 0

    def add(self, name: str, probs: torch.Tensor) -> None:
        # probs: (2B, heads, hw, 77) with the unconditional half first, as the sampler batches them
        if self.keep == "cond" and probs.shape[0] % 2 == 0:
            probs = probs[probs.shape[0] // 2:]
        b, heads, hw, n = probs.shape
        side_h = int(round((hw * self.h / self.w) ** 0.5))
        side_w = hw // side_h
        grid = probs.transpose(2, 3).reshape(b, heads, n, side_h, side_w).float()
        # Summed over steps per layer and head; upsampled once, when aggregated
        self.layer_maps[name] = grid if name not in self.layer_maps else self.layer_maps[name] + grid
        total = probs.float().mean(1).sum(1)  # (b, 77): attention mass per slot in this layer, heads averaged
        self._current = total if self._current is None else self._current + total
        self.calls += 1

    def end_step(self) -> None:
        if self._current is not None:
            self.step_share.append(self._current / self._current.sum(-1, keepdim=True))
            self._current = None


@contextmanager
def record_cross_attention(pipe, height: int | None = None, width: int | None = None, keep: str = "cond",
                           aggregate: str = "daam"):
    """Record cross-attention while sampling; yields a handle whose ``result()`` is the :class:`AttentionRecord`.

    Use with :func:`lds.pipeline.sampling.generate` and pass ``callback=recorder.step`` so steps are told apart::

        with record_cross_attention(pipe) as rec:
            out = generate(pipe, prompt, callback=rec.step)
        record = rec.result()

    ``aggregate`` chooses how ``record.maps`` are made (:data:`AGGREGATES`; DAAM's by default).
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}.")
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
            if not store.layer_maps:
                raise RuntimeError("No cross-attention was recorded: did the generation run inside the `with` block?")
            maps = aggregate_maps(store.layer_maps, aggregate, (h, w))
            return AttentionRecord(maps, torch.stack(store.step_share), sorted(store.layer_maps), store.calls,
                                   dict(store.layer_maps), aggregate)

    try:
        yield Handle()
    finally:
        pipe.unet.set_attn_processor(original)


def cross_attention_layers(unet) -> list[str]:
    """Names of the U-Net's cross-attention layers (16 in SD 1.5: 6 down, 1 mid, 9 up)."""
    return [n for n in unet.attn_processors if n.endswith("attn2.processor")]
