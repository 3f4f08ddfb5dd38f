"""Denoising, measured: the trajectory of one generation, coarse against fine, and what comes out.

Chapter 7 (Denoising) explains it; chapter 8 reuses the image measures.

Everything here works on decoded images as ``(B, 3, H, W)`` tensors in [0, 1] (what
:func:`lds.sampling.generate` and :func:`lds.sampling.decode_latents` return), at whatever size the
model makes, so the same code measures lds-mini (32 px) and Stable Diffusion 1.5 (512 px). Where a
generated image is compared with the emoji corpus it is first resized to the corpus's size.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from .sampling import StepState, decode_latents, initial_latents

# The radial frequency (as a fraction of the Nyquist frequency) that separates "outline" from
# "detail". A quarter of Nyquist keeps blobs at least ~8 pixels across on a 32 px image
# (~128 px on SD's 512 px): the layout, not the texture. Chapter 7 shows the split itself.
LOW_FREQUENCY_CUTOFF = 0.25


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
    """A ``callback`` for :func:`lds.sampling.generate` that keeps every step's latents.

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
            raise RuntimeError("Nothing recorded: pass the recorder as callback= to lds.sampling.generate first.")
        lat = torch.stack([s.latents for s in self.steps])  # (steps, B, 4, h, w)
        x0 = torch.stack([s.pred_original_sample for s in self.steps])
        n, b = lat.shape[:2]
        images = decode_latents(self.pipe.vae, x0.flatten(0, 1)).unflatten(0, (n, b))
        latent_images = decode_latents(self.pipe.vae, lat.flatten(0, 1)).unflatten(0, (n, b))
        return Trajectory([s.t for s in self.steps], lat, x0, images.float(), latent_images.float())


# ------------------------------------------------------------------------------------------------
# Coarse and fine: a radial split of the Fourier spectrum
# ------------------------------------------------------------------------------------------------

def radial_frequency(height: int, width: int) -> torch.Tensor:
    """(H, W) radial frequency of each FFT bin as a fraction of Nyquist (0 = mean, 1 = Nyquist)."""
    fy = torch.fft.fftfreq(height).abs() * 2
    fx = torch.fft.fftfreq(width).abs() * 2
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def band_split(images: torch.Tensor, cutoff: float = LOW_FREQUENCY_CUTOFF) -> tuple[torch.Tensor, torch.Tensor]:
    """Split images into a low-pass part (the outline) and a high-pass part (the detail); they sum to the input."""
    x = torch.as_tensor(images).float()
    spectrum = torch.fft.fft2(x)
    low_mask = (radial_frequency(*x.shape[-2:]) <= cutoff).to(x.dtype)
    low = torch.fft.ifft2(spectrum * low_mask).real
    return low, x - low


def band_energy(images: torch.Tensor, cutoff: float = LOW_FREQUENCY_CUTOFF) -> dict[str, np.ndarray]:
    """Per image: energy (mean squared value) below and above ``cutoff``, the mean (DC) excluded.

    Returns ``{"low": (B,), "high": (B,), "high_share": (B,)}``.
    """
    x = torch.as_tensor(images).float().cpu()
    x = x - x.mean(dim=(-2, -1), keepdim=True)  # the plain background colour is not "outline"
    power = torch.fft.fft2(x).abs() ** 2 / (x.shape[-1] * x.shape[-2]) ** 2
    r = radial_frequency(*x.shape[-2:])
    low = (power * (r <= cutoff)).sum(dim=(-3, -2, -1))
    high = (power * (r > cutoff)).sum(dim=(-3, -2, -1))
    return {"low": low.numpy(), "high": high.numpy(), "high_share": (high / (low + high).clamp_min(1e-12)).numpy()}


def band_convergence(images: torch.Tensor, cutoff: float = LOW_FREQUENCY_CUTOFF) -> dict[str, np.ndarray]:
    """For a trajectory ``(steps, B, 3, H, W)``: each band's distance to the final image's band.

    Each curve is the RMS difference between step i's band and the last step's band, divided by
    that band's RMS in the final image, averaged over the batch: 1 means "as far from the final
    band as the band is large", 0 means "settled". Returns ``{"low": (steps,), "high": (steps,)}``.
    """
    x = torch.as_tensor(images).float()
    low, high = band_split(x, cutoff)
    out = {}
    for name, band in (("low", low - low.mean(dim=(-2, -1), keepdim=True)), ("high", high)):
        final = band[-1:]
        dist = ((band - final) ** 2).mean(dim=(-3, -2, -1)).sqrt()  # (steps, B)
        scale = (final ** 2).mean(dim=(-3, -2, -1)).sqrt().clamp_min(1e-8)
        out[name] = (dist / scale).mean(1).numpy()
    return out


def settling_step(curve: np.ndarray, tolerance: float = 0.1) -> int:
    """The first step from which a convergence curve stays below ``tolerance`` (0-based)."""
    above = np.nonzero(np.asarray(curve) > tolerance)[0]
    return int(above[-1] + 1) if len(above) else 0


# ------------------------------------------------------------------------------------------------
# Image statistics: is it noise, is it an image?
# ------------------------------------------------------------------------------------------------

def pixel_std(images: torch.Tensor) -> np.ndarray:
    """Standard deviation of all pixel values of each image."""
    x = torch.as_tensor(images).float()
    return x.flatten(1).std(1).numpy()


def spectral_slope(images: torch.Tensor) -> np.ndarray:
    """Slope of log radial power against log frequency, per image.

    White (Gaussian, independent) noise has a flat spectrum, slope about 0; photographs fall off
    roughly as 1/f^2 (slope about -2); flat-coloured drawings such as emoji fall off steeply too.
    """
    x = torch.as_tensor(images).float().mean(1)  # grey
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs() ** 2
    r = radial_frequency(*x.shape[-2:])
    edges = torch.linspace(0, 1, min(x.shape[-2:]) // 2 + 1)
    centres, rows = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (r > lo) & (r <= hi)
        if m.any():
            centres.append(float((lo + hi) / 2))
            rows.append(power[:, m].mean(-1))
    logf = np.log(np.array(centres))
    logp = np.log(torch.stack(rows, 1).clamp_min(1e-20).numpy())  # (B, bins)
    a = np.vstack([logf, np.ones_like(logf)]).T
    return np.linalg.lstsq(a, logp.T, rcond=None)[0][0]


def gaussian_noise_images(n: int, channels: int, height: int, width: int, *, seed: int = 0,
                          mean: float = 0.5, std: float = 0.25) -> torch.Tensor:
    """Real Gaussian noise as images in [0, 1]: independent pixels, ``N(mean, std)``, clipped."""
    g = torch.Generator("cpu").manual_seed(seed)
    return (mean + std * torch.randn(n, channels, height, width, generator=g)).clamp(0, 1)


def to_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(B, 3, H, W)`` images to ``size`` x ``size`` by averaging (no-op at that size)."""
    x = torch.as_tensor(images).float()
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="area")


def corpus_tensor(corpus, indices=None) -> torch.Tensor:
    """Corpus images on white, as ``(N, 3, h, w)`` in [0, 1] (what lds-mini was trained on)."""
    rgb = corpus.rgb() if indices is None else corpus.rgb()[np.asarray(indices)]
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float()


def rms_distances(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, N) root-mean-square pixel distance between every image and every reference image."""
    a = torch.as_tensor(images).float().flatten(1)
    b = torch.as_tensor(reference).float().flatten(1)
    return torch.cdist(a, b) / a.shape[1] ** 0.5


def nearest(images: torch.Tensor, reference: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """For each image: the index of the nearest reference image and the RMS pixel distance to it.

    Images are resized to the reference's size first (so SD 1.5's 512 px outputs meet 32 px emoji).
    """
    d = rms_distances(to_size(images, reference.shape[-1]), reference)
    dist, idx = d.min(1)
    return idx.numpy(), dist.numpy()


def generate_seeds(pipe, prompt: str, seeds, **kwargs):
    """:func:`lds.sampling.generate` for one prompt over many seeds, as one batch (starting noise
    from :func:`lds.sampling.initial_latents`, one generator per seed)."""
    from .sampling import generate

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


def classify_tone(images: torch.Tensor, corpus, variants: list[int]) -> dict:
    """Two classifications of each image's skin tone among the gesture's variants.

    ``nearest``: the tone of the nearest variant in pixels (RMS, at corpus size). ``colour``: the
    tone whose variant has the nearest mean colour over the gesture's "skin" pixels, taken as the
    pixels where the unmarked (yellow) variant and the toned variants differ most. Both assume
    the image shows the gesture at all; they always return one of the six tones.
    """
    ref = corpus_tensor(corpus, variants)  # (6, 3, h, w)
    tones = [corpus.records[i]["tone"] for i in variants]
    x = to_size(images, ref.shape[-1])
    idx, dist = nearest(x, ref)
    # skin pixels: where the variants disagree (the hand), not the shared outline or background
    mask = ref.std(0).mean(0) > 0.1  # (h, w)
    ref_colour = ref[:, :, mask].mean(-1)  # (6, 3)
    colour = x[:, :, mask].mean(-1)  # (B, 3)
    cidx = torch.cdist(colour, ref_colour).argmin(1).numpy()
    return {"nearest": [tones[i] for i in idx], "colour": [tones[i] for i in cidx],
            "distance": dist, "tones": tones, "skin_pixels": int(mask.sum())}


def tone_shares(labels, tones) -> dict[str, float]:
    """Share of each tone among ``labels`` (every tone listed, zeros included)."""
    labels = list(labels)
    return {t: labels.count(t) / max(1, len(labels)) for t in tones}


def training_tone_shares(pipe, corpus, variants: list[int], prompt: str | None = None) -> dict | None:
    """How the gesture's tones were represented in the web lds-mini was trained on.

    Redraws the synthetic web from the model's ``training_config.json`` and keeps the pairs
    showing the gesture. ``web``: shares among all those pairs; ``kept``: among those that pass the
    CLIP filter (threshold from ``filter_report.json``, scores from the shipped CLIP), the pairs
    the U-Net saw; ``captioned``: among pairs whose caption is exactly ``prompt``.
    Returns None for a model without those files (SD 1.5: its data are not available).
    """
    import json

    from .corpus import WebConfig, sample_web
    from .pipeline import model_source

    folder = model_source(pipe).folder
    if folder is None or not (folder / "training_config.json").is_file():
        return None
    cfg = json.loads((folder / "training_config.json").read_text())
    web = sample_web(corpus, WebConfig(**cfg["web"]))
    tones = [corpus.records[i]["tone"] for i in variants]
    tone_of = dict(zip(variants, tones))
    rows = np.nonzero(np.isin(web["image"], variants))[0]
    labels = [tone_of[int(web["image"][r])] for r in rows]
    out = {"pairs": int(len(rows)), "web": tone_shares(labels, tones)}
    report = folder / "filter_report.json"
    if report.is_file() and (folder / "clip").is_dir() and len(rows):
        from .clip import clip_score, load_clip

        clip = load_clip(folder / "clip", pipe.text_encoder)
        scores = clip_score(clip, pipe.tokenizer, corpus.rgb()[web["image"][rows]], web["caption"][rows])
        keep = scores >= json.loads(report.read_text())["threshold"]
        out["kept_pairs"] = int(keep.sum())
        out["kept"] = tone_shares([l for l, k in zip(labels, keep) if k], tones)
    if prompt is not None:
        cap = [l for l, r in zip(labels, rows) if str(web["caption"][r]).lower() == prompt.lower()]
        out["captioned_pairs"] = len(cap)
        out["captioned"] = tone_shares(cap, tones)
    return out
