"""The safety checker: the CLIP-based filter Stable Diffusion 1.5 runs on every image it makes.

Chapter 2 (The CLIP-filtered web) reads it beside the training filter. SD 1.5's folder ships a
``safety_checker`` (diffusers' ``StableDiffusionSafetyChecker``: a CLIP ViT-L/14 image tower whose
embedding is compared with 17 hidden "concept" embeddings and 3 "special care" ones) and the
``feature_extractor`` that prepares its 224 x 224 input. diffusers' ``StableDiffusionPipeline``
runs it after decoding and returns a black image for every image it flags; lds's loop
(:func:`lds.pipeline.sampling.generate`) does the same through :func:`check_images`. lds-mini ships none.
"""

from __future__ import annotations

import weakref

import torch

# Per pipeline, how many images its checker has checked and flagged (for the receipt). Kept here, keyed weakly
# by the pipeline, so that nothing is stored on the pipeline object and a pipeline let go is forgotten.
_TALLIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_images(pipe, image: torch.Tensor, pil: list) -> tuple[torch.Tensor, list, list[bool] | None]:
    """Run ``pipe.safety_checker`` as diffusers' ``run_safety_checker`` does, if the pipeline has one.

    ``image`` is the decoded batch (B, 3, H, W) in [0, 1] and ``pil`` the same images as PIL. Returns
    them with every flagged image black, and one flag per image (``None`` when there is no checker).
    The running count is kept for the receipt (:func:`safety_summary`), beside the pipeline, not on it.
    """
    checker = getattr(pipe, "safety_checker", None)
    if checker is None:
        return image, pil, None
    clip_input = pipe.feature_extractor(pil, return_tensors="pt").pixel_values.to(checker.device, checker.dtype)
    checked, flags = checker(images=image.clone(), clip_input=clip_input)
    flags = [bool(f) for f in flags]
    if any(flags):
        image = torch.as_tensor(checked).to(image)
        pil = [p if not f else pipe.numpy_to_pil(image[i:i + 1].cpu().permute(0, 2, 3, 1).float().numpy())[0]
               for i, (p, f) in enumerate(zip(pil, flags))]
    tally = _TALLIES.setdefault(pipe, {"images_checked": 0, "images_flagged": 0})
    tally["images_checked"] += len(flags)
    tally["images_flagged"] += sum(flags)
    return image, pil, flags


def safety_summary(pipe) -> dict:
    """For the receipt: whether a safety checker ran, and how many images it checked and flagged."""
    present = getattr(pipe, "safety_checker", None) is not None
    tally = _TALLIES.get(pipe, {"images_checked": 0, "images_flagged": 0})
    return {"present": present, **(tally if present else {})}
