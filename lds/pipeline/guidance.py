"""Classifier-free guidance: the one line the sampling loop applies, and the check of its scale.

Chapter 8 (Classifier-free guidance) explains it.

lds applies ``noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)`` for
every scale, so 0 is the unconditional prediction, 1 the conditional one, and values above 1
extrapolate away from the unconditional (the convention of ComfyUI's ``cfg_function`` and
AUTOMATIC1111's ``combine_denoised``, and the paper's). diffusers' ``StableDiffusionPipeline``
uses the same formula but only when ``guidance_scale > 1``; below that it runs the conditional
branch alone. Ho & Salimans (2022) write it with ``w = s - 1``. The three conventions, as weights,
and chapter 8's measures are in :mod:`lds.instruments.guidance`.
"""

from __future__ import annotations

import math

import torch

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
