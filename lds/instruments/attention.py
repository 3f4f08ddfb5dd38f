"""Cross-attention, read: shares by slot kind, a word's slots, the cost of recording, the maps over the image.

Chapter 6 (Cross-attention) explains it; the recording itself is :mod:`lds.pipeline.attention`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lds.pipeline.attention import AttentionRecord, record_cross_attention


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

    from lds.pipeline.sampling import generate

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
