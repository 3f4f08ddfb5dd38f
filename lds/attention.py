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
        self.by_resolution = {}
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
        # Summed per resolution; upsampled once, in maps(), rather than at every layer and step
        key = (side_h, side_w)
        self.by_resolution[key] = grid if key not in self.by_resolution else self.by_resolution[key] + grid
        total = probs.float().sum(1)  # (b, 77): attention mass per slot in this layer
        self._current = total if self._current is None else self._current + total
        self.layers.add(name)
        self.calls += 1

    @property
    def maps(self):
        """Every layer's map on the latent grid, summed (bicubic upsampling, as DAAM)."""
        if not self.by_resolution:
            return None
        total = 0
        for (h, w), grid in self.by_resolution.items():
            if (h, w) != (self.h, self.w):
                grid = F.interpolate(grid, size=(self.h, self.w), mode="bicubic", align_corners=False).clamp_min(0)
            total = total + grid
        return total

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
            maps = store.maps
            if maps is None:
                raise RuntimeError("No cross-attention was recorded: did the generation run inside the `with` block?")
            return AttentionRecord(maps, torch.stack(store.step_share), sorted(store.layers), store.calls)

    try:
        yield Handle()
    finally:
        pipe.unet.set_attn_processor(original)


def cross_attention_layers(unet) -> list[str]:
    """Names of the U-Net's cross-attention layers (16 in SD 1.5: 6 down, 1 mid, 9 up)."""
    return [n for n in unet.attn_processors if n.endswith("attn2.processor")]


# ----------------------------------------------------------------------------------------------
# Reading a record (chapter 6)
# ----------------------------------------------------------------------------------------------

def share_by_kind(share: torch.Tensor, kinds: list[str]) -> dict[str, float]:
    """One prompt's (77,) share summed by slot kind: start, content, end, padding."""
    out = {k: 0.0 for k in ("start", "content", "end", "padding")}
    for s, k in zip(share.tolist(), kinds):
        out[k] += s
    return out


def word_slots(tokenizer, tokenized, text: str) -> list[int]:
    """The slots that hold ``text``'s BPE pieces in a tokenized prompt (its first occurrence).

    A word split into pieces occupies several slots; its share is the sum over them.
    Raises if the pieces do not occur (for example because truncation cut them off).
    """
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    row = list(tokenized.input_ids)
    for start in range(1, 1 + tokenized.n_content - len(ids) + 1):
        if row[start:start + len(ids)] == ids:
            return list(range(start, start + len(ids)))
    raise ValueError(f"{text!r} does not occur as whole pieces in the prompt {tokenized.prompt!r} "
                     "(tokenized in context it may split differently, or truncation cut it).")


def recording_cost(pipe, prompt: str, *, seed: int = 0, num_inference_steps: int = 25, guidance_scale: float = 7.5,
                   repeats: int = 3) -> dict:
    """Time the same generation plain and with :func:`record_cross_attention`, alternating runs.

    Returns the seconds of each run, the ratio of the medians (recorded / plain), and whether the
    recorded images are bit-identical to the plain ones.
    """
    import statistics

    from .sampling import generate

    plain, recorded, identical = [], [], True
    for _ in range(repeats):
        a = generate(pipe, prompt, seed=seed, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
        with record_cross_attention(pipe) as rec:
            b = generate(pipe, prompt, seed=seed, num_inference_steps=num_inference_steps,
                         guidance_scale=guidance_scale, callback=rec.step)
        rec.result()
        plain.append(a.seconds)
        recorded.append(b.seconds)
        identical &= bool(torch.equal(a.image_tensor, b.image_tensor))
    return {"plain_seconds": plain, "recorded_seconds": recorded,
            "ratio": statistics.median(recorded) / statistics.median(plain), "identical": identical}


def plot_overlays(image, record: AttentionRecord, labels: list[str], slots: list[int], index: int = 0,
                  columns: int = 6):
    """The generated image, then each chosen slot's map laid over it (maps scaled to [0, 1] each)."""
    import matplotlib.pyplot as plt
    import numpy as np

    img = np.asarray(image, dtype=np.float32) / 255.0
    maps = record.normalized_maps()[index]
    share = record.share[index]
    n = len(slots) + 1
    cols = min(columns, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(img)
    axes.flat[0].set_title("generated", fontsize=8)
    for ax, slot, label in zip(axes.flat[1:], slots, labels):
        m = F.interpolate(maps[slot][None, None], size=img.shape[:2], mode="bicubic", align_corners=False)[0, 0]
        ax.imshow(img)
        ax.imshow(m.clamp(0, 1).numpy(), cmap="inferno", alpha=0.6)
        ax.set_title(f"{slot}: {label}\n{100 * float(share[slot]):.1f}%", fontsize=8)
    fig.tight_layout()
    return fig
