"""Denoising, measured: the trajectory of one generation, coarse against fine, and what comes out.

Chapter 7 (Denoising) explains it; chapter 8 reuses the image measures.

Everything here works on decoded images as ``(B, 3, H, W)`` tensors in [0, 1] (what
:func:`lds.pipeline.sampling.generate` and :func:`lds.pipeline.sampling.decode_latents` return), at whatever size the
model makes, so the same code measures lds-mini (32 px) and Stable Diffusion 1.5 (512 px). Where a
generated image is compared with the emoji corpus it is first resized to the corpus's size.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lds.pipeline.sampling import StepState, decode_latents, initial_latents
from lds.measures import (
    tone_shares)


# ------------------------------------------------------------------------------------------------
# The trajectory of one generation
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Trajectory:
    """What :class:`TrajectoryRecorder` kept: one entry per step of the loop."""

    timesteps: list[int]
    latents: torch.Tensor  # (steps, B, 4, h, w): x_{t-1} after each step
    pred_original_sample: torch.Tensor  # (steps, B, 4, h, w): the clean latents each step implies
    images: torch.Tensor  # (steps, B, 3, H, W): pred_original_sample decoded, in [0, 1]
    latent_images: torch.Tensor  # (steps, B, 3, H, W): the noisy latents decoded as they stand


class TrajectoryRecorder:
    """A ``callback`` for :func:`lds.pipeline.sampling.generate` that keeps every step's latents.

    Decoding happens once at the end (:meth:`result`), so the loop itself runs as usual.
    """

    def __init__(self, pipe):
        self.pipe = pipe
        self.steps: list[StepState] = []

    def __call__(self, state: StepState) -> None:
        self.steps.append(StepState(state.i, state.t, None, None, None, None,
                                    state.pred_original_sample.detach().clone(), state.latents.detach().clone()))

    def result(self) -> Trajectory:
        if not self.steps:
            raise RuntimeError("Nothing recorded: pass the recorder as callback= to lds.pipeline.sampling.generate first.")
        lat = torch.stack([s.latents for s in self.steps])  # (steps, B, 4, h, w)
        x0 = torch.stack([s.pred_original_sample for s in self.steps])
        n, b = lat.shape[:2]
        images = decode_latents(self.pipe.vae, x0.flatten(0, 1)).unflatten(0, (n, b))
        latent_images = decode_latents(self.pipe.vae, lat.flatten(0, 1)).unflatten(0, (n, b))
        return Trajectory([s.t for s in self.steps], lat, x0, images.float(), latent_images.float())


# ------------------------------------------------------------------------------------------------
# Coarse and fine: a radial split of the Fourier spectrum
# ------------------------------------------------------------------------------------------------


def settling_step(curve: np.ndarray, tolerance: float = 0.1) -> int:
    """The first step from which a convergence curve stays below ``tolerance`` (0-based)."""
    above = np.nonzero(np.asarray(curve) > tolerance)[0]
    return int(above[-1] + 1) if len(above) else 0


# ------------------------------------------------------------------------------------------------
# Image statistics: is it noise, is it an image?
# ------------------------------------------------------------------------------------------------


def gaussian_noise_images(n: int, channels: int, height: int, width: int, *, seed: int = 0,
                          mean: float = 0.5, std: float = 0.25) -> torch.Tensor:
    """Real Gaussian noise as images in [0, 1]: independent pixels, ``N(mean, std)``, clipped."""
    g = torch.Generator("cpu").manual_seed(seed)
    return (mean + std * torch.randn(n, channels, height, width, generator=g)).clamp(0, 1)


def generate_seeds(pipe, prompt: str, seeds, **kwargs):
    """:func:`lds.pipeline.sampling.generate` for one prompt over many seeds, as one batch (starting noise
    from :func:`lds.pipeline.sampling.initial_latents`, one generator per seed)."""
    from lds.pipeline.sampling import generate

    seeds = [int(s) for s in seeds]
    return generate(pipe, [prompt] * len(seeds), seed=seeds[0],
                    latents=initial_latents(pipe, seeds, height=kwargs.get("height"), width=kwargs.get("width")),
                    **kwargs)


# ------------------------------------------------------------------------------------------------
# Skin tone of a generated gesture (claim 23)
# ------------------------------------------------------------------------------------------------

def gesture_variants(corpus, name: str, lang: str = "en") -> list[int]:
    """Indices of every corpus image that shows the gesture ``name`` (its unmarked form and its tones)."""
    base = corpus.records[corpus.find(name, lang)]["base"]
    return [i for i, r in enumerate(corpus.records) if r["base"] == base]


def training_tone_shares(pipe, corpus, variants: list[int], prompt: str | None = None) -> dict | None:
    """How the gesture's tones were represented in the web lds-mini was trained on.

    The pairs showing the gesture in the training web, rebuilt from the model's records
    (:func:`lds.instruments.ranking.recorded_training_web`). ``web``: shares among all those pairs;
    ``kept``: among those that pass the CLIP filter, the pairs the U-Net saw; ``captioned``: among pairs
    whose caption is exactly ``prompt``. Returns None for a model without those records (SD 1.5: its data
    are not available).
    """
    from lds.instruments.ranking import recorded_training_web

    recorded = recorded_training_web(pipe, corpus, images=variants)
    if recorded is None:
        return None
    web, _, keep = recorded
    tones = [corpus.records[i]["tone"] for i in variants]
    tone_of = dict(zip(variants, tones))
    labels = [tone_of[int(i)] for i in web["image"]]
    out = {"pairs": int(len(labels)), "web": tone_shares(labels, tones)}
    if len(labels):
        out["kept_pairs"] = int(keep.sum())
        out["kept"] = tone_shares([l for l, k in zip(labels, keep) if k], tones)
    if prompt is not None:
        cap = [l for l, c in zip(labels, web["caption"]) if str(c).lower() == prompt.lower()]
        out["captioned_pairs"] = len(cap)
        out["captioned"] = tone_shares(cap, tones)
    return out
