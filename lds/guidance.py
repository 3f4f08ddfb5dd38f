"""Classifier-free guidance: one line, and the three conventions that give "CFG 0" three meanings.

Chapter 8 (Classifier-free guidance) explains it.

lds applies ``noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)`` for
every scale, so 0 is the unconditional prediction, 1 the conditional one, and values above 1
extrapolate away from the unconditional (the convention of ComfyUI's ``cfg_function`` and
AUTOMATIC1111's ``combine_denoised``, and the paper's). diffusers' ``StableDiffusionPipeline``
uses the same formula but only when ``guidance_scale > 1``; below that it runs the conditional
branch alone. Ho & Salimans (2022) write it with ``w = s - 1``.
"""

from __future__ import annotations

import math

import torch
from .measures import diversity, hsv_saturation, out_of_range, spearman  # noqa: F401  (chapter 8's measures, defined once in lds.measures)

MAX_GUIDANCE = 1000.0  # beyond this every pixel saturates; larger values are refused, not clipped


def apply_guidance(noise_pred_uncond: torch.Tensor, noise_pred_text: torch.Tensor,
                   guidance_scale: float) -> torch.Tensor:
    """The classifier-free guidance line, exactly as written, for any scale."""
    return noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)


def check_guidance_scale(guidance_scale) -> float:
    try:
        s = float(guidance_scale)
    except (TypeError, ValueError):
        raise ValueError(f"guidance_scale must be a number, got {guidance_scale!r}.") from None
    if not math.isfinite(s):
        raise ValueError(f"guidance_scale must be a finite number, got {s}. Try 0 (unconditional), "
                         "1 (conditional only) or 7.5 (SD's usual default).")
    if abs(s) > MAX_GUIDANCE:
        raise ValueError(f"guidance_scale {s} is outside [-{MAX_GUIDANCE:g}, {MAX_GUIDANCE:g}]: every pixel would "
                         "saturate. Chapter 8 sweeps 0-25; use a value in that range.")
    return s


# What a tool's "CFG = s" computes, written as weights (a, b) on (uncond, cond): a*u + b*c.
def weights_lds(s: float) -> tuple[float, float]:
    """lds, ComfyUI and AUTOMATIC1111: u + s(c - u)."""
    return (1.0 - s, s)


def weights_diffusers(s: float) -> tuple[float, float]:
    """diffusers' StableDiffusionPipeline: the formula only when s > 1, otherwise c alone."""
    return (1.0 - s, s) if s > 1 else (0.0, 1.0)


def weights_ho_salimans(w: float) -> tuple[float, float]:
    """Ho & Salimans (2022), eq. 6: (1 + w) c - w u; their w is s - 1."""
    return (-w, 1.0 + w)


CONVENTIONS = {
    "lds / ComfyUI / AUTOMATIC1111": weights_lds,
    "diffusers StableDiffusionPipeline": weights_diffusers,
    "Ho & Salimans w": weights_ho_salimans,
}


# ------------------------------------------------------------------------------------------------
# Measures against the guidance scale (chapter 8)
# ------------------------------------------------------------------------------------------------

def lds_scale_for(weights: tuple[float, float]) -> float:
    """The lds ``guidance_scale`` that computes ``a*u + b*c``: ``b``, valid whenever ``a + b = 1``.

    Every convention in :data:`CONVENTIONS` has ``a + b = 1``, so each tool's setting can be
    generated with :func:`lds.sampling.generate` by passing ``b``.
    """
    a, b = weights
    if not math.isclose(a + b, 1.0, abs_tol=1e-9):
        raise ValueError(f"weights {weights} do not sum to 1: no single guidance_scale computes them.")
    return float(b)


def drop_rate(model_folder) -> float | None:
    """The share of training steps in which the prompt was dropped (``training_config.json``), if recorded."""
    import json
    from pathlib import Path

    f = Path(model_folder) / "training_config.json"
    if not f.is_file():
        return None
    return json.loads(f.read_text()).get("unet", {}).get("cond_drop")


class GuidanceRecorder:
    """A ``callback`` for :func:`lds.sampling.generate`: per step, how far apart the two predictions are.

    ``difference`` is ||c - u|| / ||u|| (the prompt's relative effect on the noise prediction) and
    ``pushed`` is ||guided - u|| / ||u|| (how far guidance moved the prediction from the
    unconditional one), each averaged over the batch.
    """

    def __init__(self):
        self.difference: list[float] = []
        self.pushed: list[float] = []

    def __call__(self, state) -> None:
        u = state.noise_pred_uncond.float().flatten(1)
        norm = u.norm(dim=1).clamp_min(1e-12)
        self.difference.append(float(((state.noise_pred_text.float().flatten(1) - u).norm(dim=1) / norm).mean()))
        self.pushed.append(float(((state.noise_pred.float().flatten(1) - u).norm(dim=1) / norm).mean()))


def clip_agreement(clip_model, tokenizer, images: torch.Tensor, prompt: str) -> torch.Tensor:
    """CLIP score of each image with ``prompt``, images resized to the CLIP's input size first."""
    import torch.nn.functional as F

    from .clip import clip_score

    x = torch.as_tensor(images).float()
    size = clip_model.config.vision_config.image_size
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return torch.from_numpy(clip_score(clip_model, tokenizer, x, [prompt] * len(x)))


