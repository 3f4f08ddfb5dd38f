"""Classifier-free guidance, measured: what each tool's "CFG = s" computes, and what the scale does to the
prediction and the image. Chapter 8 (Classifier-free guidance) explains it; the step itself is
:func:`lds.pipeline.guidance.apply_guidance`."""

from __future__ import annotations

import math

import torch


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



def lds_scale_for(weights: tuple[float, float]) -> float:
    """The lds ``guidance_scale`` that computes ``a*u + b*c``: ``b``, valid whenever ``a + b = 1``.

    Every convention in :data:`CONVENTIONS` has ``a + b = 1``, so each tool's setting can be
    generated with :func:`lds.pipeline.sampling.generate` by passing ``b``.
    """
    a, b = weights
    if not math.isclose(a + b, 1.0, abs_tol=1e-9):
        raise ValueError(f"weights {weights} do not sum to 1: no single guidance_scale computes them.")
    return float(b)



def drop_rate(pipe) -> float | None:
    """The share of training steps in which the prompt was dropped (``training_config.json``), if recorded."""
    from lds.pipeline.loading import model_source

    config = model_source(pipe).training_config()
    return None if config is None else config.get("unet", {}).get("cond_drop")



class GuidanceRecorder:
    """A ``callback`` for :func:`lds.pipeline.sampling.generate`: per step, how far apart the two predictions are.

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
    from lds.measures import to_size
    from lds.models.clip import clip_score

    x = to_size(images, clip_model.config.vision_config.image_size)
    return torch.from_numpy(clip_score(clip_model, tokenizer, x, [prompt] * len(x)).scores)

