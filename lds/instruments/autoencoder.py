"""Looking inside the autoencoder: round trips, inputs from outside the corpus, the discriminator.

Chapter 3 (The autoencoder) uses these. Everything here works on any ``AutoencoderKL`` (lds-mini's
or Stable Diffusion 1.5's): sizes come from the loaded objects. The training code lives in
:mod:`lds.models.autoencoder`; this module only measures.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lds.models.autoencoder import NLayerDiscriminator, encode, psnr
from lds.pipeline.loading import model_source
from lds.pipeline.sampling import batch_size_for, decode_latents


def pixel_size(pipe) -> int:
    """The image size the model was trained at (U-Net sample size x the VAE's downsampling)."""
    return int(pipe.unet.config.sample_size * pipe.vae_scale_factor)


def to_model_size(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W, 3) or (N, 3, H, W) in [0, 1] -> (N, 3, size, size), bicubic when enlarging.

    The emoji corpus is rendered at 32 px; SD 1.5 works at 512 px, so for it the corpus is enlarged.
    """
    x = torch.as_tensor(np.asarray(images)).float()
    if x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    if x.shape[-1] != size:
        mode = "bicubic" if size > x.shape[-1] else "area"
        x = F.interpolate(x, size=(size, size), mode=mode, **({"align_corners": False} if mode == "bicubic" else {}))
    return x.clamp(0, 1).contiguous()


@dataclasses.dataclass
class RoundTrip:
    """Images through encoder and decoder: what went in, what came out, and how far apart."""

    images: torch.Tensor  # (N, 3, H, W) in [0, 1]
    latents: torch.Tensor  # (N, C, h, w), scaled as the U-Net sees them
    reconstructions: torch.Tensor  # (N, 3, H, W) in [0, 1]
    psnr: torch.Tensor  # (N,) dB
    error: torch.Tensor  # (N, H, W): mean absolute error over colour channels


def encode_images(vae, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> scaled latents (posterior mean) on the CPU: :func:`lds.models.autoencoder.encode`
    in batches sized for the image (a handful at a time at SD's 512 px). The way back is
    :func:`lds.pipeline.sampling.decode_latents`, the loop's own last step."""
    return encode(vae, images, batch_size=batch_size or batch_size_for(images.shape[-1]))


def round_trip(vae, images: torch.Tensor) -> RoundTrip:
    """Encode (posterior mean, as the pipeline's image-to-image does) and decode."""
    latents = encode_images(vae, images)
    rec = decode_latents(vae, latents)
    return RoundTrip(images, latents, rec, psnr(rec, images), (rec - images).abs().mean(1))


# ---------------------------------------------------------------------------------------------
# Inputs from outside the corpus, drawn with numpy
# ---------------------------------------------------------------------------------------------

def gaussian_noise(n: int, size: int, rng: np.random.Generator, std: float = 0.25) -> np.ndarray:
    """Pixels drawn independently from N(0.5, std^2), clipped to [0, 1]: no structure at all."""
    return np.clip(rng.normal(0.5, std, size=(n, size, size, 3)), 0, 1).astype(np.float32)


def checkerboard(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Black-and-white checkerboards with squares of 1 to 4 pixels (at 32 px; scaled with the size)."""
    out = np.zeros((n, size, size, 3), np.float32)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        sq = max(1, int(rng.integers(1, 5) * size / 32))
        out[i] = (((yy // sq) + (xx // sq)) % 2)[..., None]
    return out


def smooth_gradient(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Photo-like smooth colour fields: a sky-to-ground gradient with a soft blob (no outline)."""
    yy, xx = np.mgrid[:size, :size] / max(size - 1, 1)
    out = np.zeros((n, size, size, 3), np.float32)
    for i in range(n):
        top, bottom = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        angle = rng.uniform(0, np.pi)
        ramp = (np.cos(angle) * yy + np.sin(angle) * xx)
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-8)
        img = top * (1 - ramp[..., None]) + bottom * ramp[..., None]
        cy, cx, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.1, 0.3)]
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))[..., None]
        out[i] = np.clip(img * (1 - 0.5 * blob) + rng.uniform(0, 1, 3) * 0.5 * blob, 0, 1)
    return out


def text_strokes(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Dark one-pixel strokes on white, arranged in lines like handwriting (drawn with numpy)."""
    out = np.ones((n, size, size, 3), np.float32)
    width = max(1, size // 32)
    for i in range(n):
        rows = range(int(size * 0.2), int(size * 0.85), max(3, int(size * 0.22)))
        for row in rows:
            x = int(rng.integers(1, max(2, size // 8)))
            while x < size - 2:
                h = int(rng.integers(max(2, size // 10), max(3, size // 5)))
                kind = rng.integers(0, 3)
                if kind == 0:  # a vertical stroke
                    out[i, max(0, row - h):row, x:x + width] = 0.1
                elif kind == 1:  # a horizontal stroke
                    out[i, row - 1:row - 1 + width, x:x + h // 2 + 1] = 0.1
                else:  # a diagonal stroke
                    for k in range(h):
                        out[i, max(0, row - k):max(0, row - k) + width, min(size - 1, x + k // 2)] = 0.1
                x += int(rng.integers(max(2, size // 16), max(3, size // 8))) + width
    return out


OUTSIDE_KINDS = {"Gaussian noise": gaussian_noise, "checkerboard": checkerboard,
                 "smooth gradient": smooth_gradient, "text-like strokes": text_strokes}


def outside_inputs(n: int, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` images of each kind in :data:`OUTSIDE_KINDS`, as (n, 3, size, size) tensors in [0, 1]."""
    rng = np.random.default_rng(seed)
    return {name: to_model_size(make(n, size, rng), size) for name, make in OUTSIDE_KINDS.items()}


# ---------------------------------------------------------------------------------------------
# What is lost: frequencies and edges
# ---------------------------------------------------------------------------------------------

def edge_error_share(images: torch.Tensor, error: torch.Tensor, top: float = 0.2) -> torch.Tensor:
    """Share of the absolute error that falls on the ``top`` fraction of pixels with the strongest edges."""
    gray = images.mean(1, keepdim=True)
    gx = F.pad(gray[..., :, 1:] - gray[..., :, :-1], (0, 1, 0, 0)).abs()
    gy = F.pad(gray[..., 1:, :] - gray[..., :-1, :], (0, 0, 0, 1)).abs()
    grad = (gx + gy).flatten(1)
    err = error.flatten(1)
    k = max(1, int(top * grad.shape[1]))
    idx = grad.topk(k, dim=1).indices
    return err.gather(1, idx).sum(1) / err.sum(1).clamp_min(1e-12)


# ---------------------------------------------------------------------------------------------
# Pixel and perceptual distances
# ---------------------------------------------------------------------------------------------

def pixel_distances(a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image pixel distances for images in [0, 1]: ``L1``, the mean absolute difference, and ``MSE``, the mean
    squared error (the square of the L2 distance, over the number of values)."""
    return {"L1": (a - b).abs().flatten(1).mean(1), "MSE": (a - b).pow(2).flatten(1).mean(1)}


def perceptual_judge(pipe):
    """The perceptual distance lds-mini's autoencoder was trained with: :class:`CLIPPerceptualLoss`.

    It compares images in the hidden layers of lds-mini's CLIP image tower (LPIPS cannot be used
    offline; see lds.models.autoencoder). A model folder without ``clip/`` (SD 1.5) borrows lds-mini's,
    and images are resized to that tower's input size. Returns ``distance(a, b) -> (N,)``.
    """
    from transformers import CLIPTextModel

    from lds.models.autoencoder import CLIPPerceptualLoss
    from lds.models.clip import load_clip
    from lds.pipeline.loading import BUILTIN

    folder = Path(model_source(pipe).location)
    if (folder / "clip" / "config.json").exists():
        clip = load_clip(folder / "clip", pipe.text_encoder)
    else:
        mini = BUILTIN["lds-mini"]
        clip = load_clip(mini / "clip", CLIPTextModel.from_pretrained(str(mini / "text_encoder")))
    loss = CLIPPerceptualLoss(clip)  # the vision tower only; it stays on the CPU
    size = clip.config.vision_config.image_size

    @torch.no_grad()
    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = to_model_size(a.cpu(), size), to_model_size(b.cpu(), size)
        return torch.stack([loss(a[i:i + 1], b[i:i + 1]) for i in range(len(a))])

    distance.image_size = size
    return distance


def normalised_error(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """(N,) squared round-trip error over each input's own pixel variance: 0 is a perfect copy, 1 is no better
    than returning a flat image of the input's mean colour. Unlike PSNR it does not punish an input for varying a
    lot (a black-and-white checkerboard), so kinds of input can be compared fairly (chapter 3). An input of one
    flat colour has no variance to keep and gives nan."""
    mse = (reconstructions - images).pow(2).flatten(1).mean(1)
    var = images.flatten(1).var(1, unbiased=False)
    return torch.where(var > 0, mse / var.clamp_min(1e-12), torch.full_like(mse, float("nan")))


@torch.no_grad()
def filter_check(pipe, images: torch.Tensor, names: list[str], seed: int = 0) -> dict | None:
    """Would ``images`` have passed the model's own CLIP filter into its training data? Each image is scored
    (:func:`lds.models.clip.clip_score`'s cosine) against the threshold the model's ``filter_report.json``
    recorded, with three captions: none (the empty caption the synthetic web gives uncaptioned pairs), a corpus
    name drawn at random (``names``, seeded), and the name among ``names`` it scores best with (the most
    favourable caption a crawl could have given it). Returns the threshold, the scores and the share passing
    with each, the share of the training web's matched, mismatched and uncaptioned pairs the filter kept, or None for a model without a ``clip/`` folder and filter record (SD 1.5). Chapter 3 (claim 12)."""
    from lds.instruments.vectorspace import web_clip
    from lds.models.clip import image_embeds, text_embeds

    folder = model_source(pipe).folder
    if folder is None or not (folder / "clip" / "config.json").is_file() or not (folder / "filter_report.json").is_file():
        return None
    report = json.loads((folder / "filter_report.json").read_text())
    threshold = float(report["threshold"])
    clip = web_clip(pipe).model  # the model's own CLIP, on the CPU in float32
    size = clip.config.vision_config.image_size
    img = image_embeds(clip, to_model_size(images.cpu(), size))
    bank = text_embeds(clip, pipe.tokenizer, list(names))
    empty = text_embeds(clip, pipe.tokenizer, [""])[0]
    rng = np.random.default_rng(seed)
    sims = img @ bank.T
    scores = {"no caption": img @ empty,
              "a random name": sims[torch.arange(len(img)), torch.as_tensor(rng.integers(0, len(names), len(img)))],
              "its best name": sims.max(1).values}
    return {"threshold": threshold, "scores": {k: v.numpy() for k, v in scores.items()},
            "passing": {k: float((v >= threshold).float().mean()) for k, v in scores.items()},
            "best_names": [names[int(i)] for i in sims.argmax(1)],
            # what the filter kept of the training web's own pairs, by kind of pair: the base rates to read against
            "web_kept": {k: float(report[f"{k}_kept_share"]) for k in ("matched", "mismatched", "uncaptioned")}}


def shift(images: torch.Tensor, pixels: int = 1) -> torch.Tensor:
    """Move the images ``pixels`` to the right, filling with the edge colour (white for emoji)."""
    return torch.cat([images[..., :, :1].expand(*images.shape[:-1], pixels), images[..., :, :-pixels]], -1)


def nearest_other(images: torch.Tensor, groups: list) -> torch.Tensor:
    """For each image, the index of the pixel-nearest image (L2) from a different group."""
    flat = images.flatten(1)
    d = torch.cdist(flat, flat)
    g = np.asarray(groups)
    same = torch.from_numpy(g[:, None] == g[None, :])
    d[same] = float("inf")
    return d.argmin(1)


# ---------------------------------------------------------------------------------------------
# The discriminator (PatchGAN)
# ---------------------------------------------------------------------------------------------

def load_discriminator(model_folder: str | Path) -> NLayerDiscriminator | None:
    """lds-mini's trained PatchGAN from ``<model>/discriminator/`` (fp16 on disk -> float), or None.

    SD 1.5 does not ship its discriminator; chapter 3 then computes only the receptive field.
    """
    from safetensors.torch import load_file

    folder = Path(model_folder) / "discriminator"
    if not (folder / "model.safetensors").exists():
        return None
    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
    disc = NLayerDiscriminator(input_nc=cfg.get("input_nc", 3), ndf=cfg.get("ndf", 32), n_layers=cfg.get("n_layers", 3))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(folder / "model.safetensors")).items()}
    disc.load_state_dict(state)
    return disc.eval()


@torch.no_grad()
def patch_logits(disc: NLayerDiscriminator, images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, h, w) realness logits, one per patch (the VAE's [-1, 1] input)."""
    return disc(images * 2 - 1)[:, 0]


def patch_grid(n_layers: int, size: int) -> tuple[int, int]:
    """The shape of the discriminator's logit grid for a ``size`` x ``size`` image."""
    with torch.no_grad():
        return tuple(NLayerDiscriminator(n_layers=n_layers)(torch.zeros(1, 3, size, size)).shape[-2:])


def effective_stride(module: torch.nn.Module) -> int:
    """How many input pixels separate neighbouring output values (the product of the strides)."""
    jump = 1
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d):
            jump *= layer.stride[0]
    return jump


# ---------------------------------------------------------------------------------------------
# KL or vector quantisation?
# ---------------------------------------------------------------------------------------------

def quantisation_report(vae) -> dict:
    """What the loaded autoencoder is: its class, latent channels, and whether it has a codebook.

    A VQ model (taming's VQGAN, diffusers' ``VQModel``) carries a codebook (``quantize``,
    ``num_vq_embeddings``); an ``AutoencoderKL`` outputs a Gaussian per latent value instead.
    """
    codebook = [name for name, _ in vae.named_modules() if name.split(".")[-1] in ("quantize", "codebook")]
    cfg = dict(vae.config)
    return {"class": type(vae).__name__, "latent_channels": int(cfg["latent_channels"]),
            "downsampling": 2 ** (len(cfg["block_out_channels"]) - 1),
            "codebook_modules": codebook, "num_vq_embeddings": cfg.get("num_vq_embeddings"),
            "scaling_factor": float(cfg["scaling_factor"]),
            "posterior": "diagonal Gaussian (mean, log-variance per latent value)"}
