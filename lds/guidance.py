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
