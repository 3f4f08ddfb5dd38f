"""Measures of generated images: one implementation each, shared by the chapters and ``lds audit``.

Chapter 12 (Audits) runs them over thousands of images; the chapter named beside each explains it.
Most measures already live beside the chapter that introduced them, and are imported from there
rather than written again (principle 13: a chapter, an audit and the claims ledger call the same
function):

=============================  =============================================  ==========
measure                        function                                       chapter
=============================  =============================================  ==========
nearest corpus image           :func:`lds.denoising.nearest`                   7
rank of the named emoji        :func:`named_rank` (the model card's judge)     11
skin tone of a gesture         :func:`lds.denoising.classify_tone`             7
saturation                     :func:`lds.guidance.hsv_saturation`             8
out-of-range share             :func:`lds.guidance.out_of_range`               8
diversity across seeds         :func:`lds.guidance.diversity`                  8
pixel-mean image               :func:`mean_image`                              8, 12
distance from unconditional    :func:`distance_from_unconditional`             8, 12
=============================  =============================================  ==========

Every function takes decoded images as ``(B, 3, H, W)`` tensors in [0, 1] (what
:func:`lds.sampling.generate` returns as ``image_tensor``), at whatever size the model makes.
"""

from __future__ import annotations

import numpy as np
import torch

from .denoising import classify_tone, corpus_tensor, nearest, to_size  # noqa: F401  (re-exported above)
from .guidance import diversity, hsv_saturation, out_of_range  # noqa: F401


def named_rank(images: torch.Tensor, targets, corpus, bank: torch.Tensor | None = None) -> np.ndarray:
    """Rank (0 = nearest) of the named corpus image among all corpus images, by pixel distance.

    The judge of the model card's retrieval score (:mod:`lds.evaluate`), one image at a time:
    0 means the emoji the prompt named is the nearest of all 3,812; a rank of a few means a
    near miss (often the same emoji in another skin tone). Images are resized to corpus size.
    """
    from .evaluate import _nn_ranks

    bank = corpus_tensor(corpus) if bank is None else bank  # (N, 3, h, w), computed once by a caller in a loop
    query = to_size(images, bank.shape[-1])
    return _nn_ranks(query.flatten(1), bank.flatten(1), np.asarray(targets, dtype=np.int64), "l2")


def distance_from_unconditional(images: torch.Tensor, unconditional: torch.Tensor) -> np.ndarray:
    """RMS pixel distance between each image and the unconditional image of the same seed.

    The unconditional image (guidance 0) is what the model makes from that seed's noise when the
    prompt cannot act; the distance is how far the prompt, at this guidance scale, moved it.
    """
    a = torch.as_tensor(images).float().flatten(1)
    b = torch.as_tensor(unconditional).float().flatten(1)
    if a.shape != b.shape:
        raise ValueError(f"{tuple(a.shape)} images but {tuple(b.shape)} unconditional images: give one per image.")
    return ((a - b) ** 2).mean(1).sqrt().numpy()


def mean_image(images: torch.Tensor) -> torch.Tensor:
    """The pixel mean of a set of images (Steyerl's "mean image", taken literally): ``(3, H, W)``."""
    x = torch.as_tensor(images).float()
    if x.ndim != 4 or not len(x):
        raise ValueError(f"mean_image needs a non-empty (B, 3, H, W) batch, got shape {tuple(x.shape)}.")
    return x.mean(0)
