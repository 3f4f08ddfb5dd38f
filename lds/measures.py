"""Measures of images: one implementation each, shared by the chapters, ``lds audit`` and the claims ledger.

Every function takes decoded images as ``(B, 3, H, W)`` tensors in [0, 1] (what
:func:`lds.pipeline.sampling.generate` returns as ``image_tensor``), at whatever size the model makes, so the same
code measures lds-mini (32 px) and Stable Diffusion 1.5 (512 px); where an image is compared with the
emoji corpus it is first resized to the corpus's size; :func:`out_of_range` alone takes the decoder's raw output
(``decode_latents(..., raw=True)``), before it is clamped to an image. Nothing here loads or runs a model: the
callers (:func:`lds.pipeline.sampling.generate`, the chapters' instruments, :mod:`lds.audit.run`,
:mod:`lds.training.evaluate`, the claims ledger) generate or decode and pass the images in.

=============================  =============================================  ==========
measure                        function                                       chapter
=============================  =============================================  ==========
frequency bands, settling      :func:`band_energy`, :func:`band_convergence`  7
high-frequency share           :func:`high_frequency_share`                   3, 4
radial spectrum, its slope     :func:`radial_spectrum`, :func:`spectral_slope` 4, 7
nearest corpus image           :func:`nearest`                                7
rank of the named emoji        :func:`named_rank` (the model card's judge)     11
structural similarity          :func:`ssim`                                   11
skin tone of a gesture         :func:`classify_tone`, :func:`tone_shares`,    7, 8, 12
                               :func:`shows_emoji`
saturation                     :func:`hsv_saturation`                         8
share clamped by the decoder   :func:`out_of_range`                           8, 12
diversity across seeds         :func:`diversity`                              8
pixel-mean image               :func:`mean_image`                             8, 12
distance from unconditional    :func:`distance_from_unconditional`            8, 12
rank correlation               :func:`spearman`                               8
=============================  =============================================  ==========
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------
# Frequencies: where outline and detail live (chapters 3, 4, 7)
# ----------------------------------------------------------------------------------------------

# The radial frequency (as a fraction of the Nyquist frequency) that separates "outline" from
# "detail". A quarter of Nyquist keeps blobs at least ~8 pixels across on a 32 px image
# (~128 px on SD's 512 px): the layout, not the texture. Chapter 7 shows the split itself.
LOW_FREQUENCY_CUTOFF = 0.25


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


def high_frequency_share(images: torch.Tensor, cutoff: float = 0.5) -> torch.Tensor:
    """Share of each image's spectral energy above ``cutoff`` x Nyquist: (N, 3, H, W) -> (N,).

    The mean (the 0-frequency term) is removed first, so a flat image has no share to speak of.
    Outlines and broad shapes are low frequencies; edges, texture and noise are high ones.
    The measure is :func:`band_energy`'s, which chapter 7 uses at its own cutoff.
    """
    return torch.from_numpy(band_energy(images, cutoff)["high_share"])


def radial_spectrum(images: torch.Tensor, bins: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Mean spectral energy per band of radial frequency (fractions of Nyquist): (centres, (N, bins))."""
    x = images.float().cpu()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    p = torch.fft.fft2(x).abs().pow(2).sum(-3)  # (N, H, W), summed over colour channels
    r = radial_frequency(*p.shape[-2:]).clamp(max=1.0)
    edges = torch.linspace(0, 1.0, bins + 1)
    band = torch.bucketize(r, edges[1:-1])
    out = torch.stack([(p * (band == k)).flatten(1).sum(1) / (band == k).sum().clamp_min(1) for k in range(bins)], 1)
    return ((edges[:-1] + edges[1:]) / 2).numpy(), out.numpy()


# ----------------------------------------------------------------------------------------------
# Distances to the corpus (chapters 7, 8, 11, 12)
# ----------------------------------------------------------------------------------------------

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


def nn_ranks(query: torch.Tensor, bank: torch.Tensor, targets: np.ndarray, metric: str) -> np.ndarray:
    """Rank (0 = nearest) of each target among the bank, for each query."""
    if metric == "cosine":
        sim = query @ bank.T
    else:  # negative squared distance
        sim = -torch.cdist(query, bank) ** 2
    target_sim = sim[torch.arange(len(targets)), torch.as_tensor(targets)]
    return (sim > target_sim[:, None]).sum(1).numpy()


def named_rank(images: torch.Tensor, targets, corpus, bank: torch.Tensor | None = None) -> np.ndarray:
    """Rank (0 = nearest) of the named corpus image among all corpus images, by pixel distance.

    The judge of the model card's retrieval score (:mod:`lds.training.evaluate`), one image at a time:
    0 means the emoji the prompt named is the nearest of all 3,812; a rank of a few means a
    near miss (often the same emoji in another skin tone). Images are resized to corpus size.
    """
    bank = corpus_tensor(corpus) if bank is None else bank  # (N, 3, h, w), computed once by a caller in a loop
    query = to_size(images, bank.shape[-1])
    return nn_ranks(query.flatten(1), bank.flatten(1), np.asarray(targets, dtype=np.int64), "l2")


# ITU-R BT.601 luma weights (the Y of YCbCr, on which Wang et al. computed SSIM for colour images)
LUMA = (0.299, 0.587, 0.114)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of each pair of images: (N, C, H, W) -> (N,).

    RGB images are compared on their luminance (:data:`LUMA`). The statistics are local, under an 11x11
    Gaussian window (σ = 1.5) and with K1 = 0.01, K2 = 0.03 as in the paper; windows that would cross the
    border are left out ("valid"), and the per-window values averaged. This is what scikit-image's
    ``structural_similarity(x, y, data_range=1, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` computes. 1 for identical images; near 0 for unrelated ones.
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim needs images of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.double(), y.double()
    if x.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)
        x, y = (x * w).sum(1, keepdim=True), (y * w).sum(1, keepdim=True)
    if min(x.shape[-2:]) < win_size:
        raise ValueError(f"ssim: images of {tuple(x.shape[-2:])} are smaller than the {win_size}x{win_size} window")
    r = torch.arange(win_size, dtype=x.dtype) - (win_size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(x.shape[1], 1, win_size, win_size)

    def blur(t):
        return torch.nn.functional.conv2d(t, window, groups=x.shape[1])

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).float()


# ----------------------------------------------------------------------------------------------
# Skin tone (chapters 7, 8, 12)
# ----------------------------------------------------------------------------------------------

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


def shows_emoji(images: torch.Tensor, corpus, indices: list[int], bank: torch.Tensor | None = None) -> dict:
    """Whether each image shows one of the corpus images ``indices`` (say, a gesture's six tone variants): its nearest
    corpus image of all, in pixels (RMS, at corpus size), is one of them. The check to make before
    :func:`classify_tone`, which gives any image a tone, a picture of something else included. Returns ``shows``
    (bools) and ``nearest`` (each image's nearest corpus index)."""
    bank = corpus_tensor(corpus) if bank is None else bank
    idx, _ = nearest(images, bank)
    members = set(int(i) for i in indices)
    return {"shows": [int(i) in members for i in idx], "nearest": [int(i) for i in idx]}


def tone_shares(labels, tones) -> dict[str, float]:
    """Share of each tone among ``labels`` (every tone listed, zeros included)."""
    labels = list(labels)
    return {t: labels.count(t) / max(1, len(labels)) for t in tones}


# ----------------------------------------------------------------------------------------------
# What guidance does to a set of images (chapters 8, 12)
# ----------------------------------------------------------------------------------------------

def hsv_saturation(images: torch.Tensor) -> torch.Tensor:
    """Mean HSV saturation, (max - min) / max over RGB, of each ``(B, 3, H, W)`` image in [0, 1]."""
    x = torch.as_tensor(images).float()
    hi, lo = x.max(1).values, x.min(1).values
    return torch.where(hi > 0, (hi - lo) / hi.clamp_min(1e-12), torch.zeros_like(hi)).flatten(1).mean(1)


def out_of_range(raw: torch.Tensor) -> torch.Tensor:
    """Per image, the share of the decoder's raw values outside [-1, 1]: what clamping to an image will cut.

    ``raw`` is ``(B, 3, H, W)`` as the VAE's decoder returns it (nominally in [-1, 1]; see
    :func:`lds.pipeline.sampling.decode_latents` with ``raw=True``); :func:`lds.pipeline.sampling.generate` reports it as
    ``Generation.out_of_range``. Extreme guidance shows up here as flat, saturated colour (chapter 8).
    """
    return (torch.as_tensor(raw).abs() > 1).flatten(1).float().mean(1)


def diversity(images: torch.Tensor) -> float:
    """Mean RMS pixel distance between every pair of images (seeds): 0 when all are the same."""
    x = torch.as_tensor(images).float().flatten(1)
    if len(x) < 2:
        return 0.0
    d = torch.cdist(x, x) / x.shape[1] ** 0.5
    n = len(x)
    return float(d.sum() / (n * (n - 1)))


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


def spearman(x, y) -> float:
    """Spearman's rank correlation (ties get their average rank), ``scipy.stats.spearmanr``: +1 when y always rises
    with x; 0 when either is constant (scipy's nan: no order to correlate)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def wilson_interval(kept: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval for a share ``kept / n`` (95% for z = 1.96): stays inside [0, 1] and behaves at
    shares near 0 or 1, where the textbook ``p ± z·sqrt(p(1-p)/n)`` does not."""
    if n <= 0:
        raise ValueError("a share needs at least one pair")
    p = kept / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def share_difference(kept_a: int, n_a: int, kept_b: int, n_b: int, z: float = 1.96) -> tuple[float, float, float]:
    """The difference of two shares, ``kept_a / n_a - kept_b / n_b``, with its 95% interval (for z = 1.96) by
    Newcombe's hybrid score method (Newcombe 1998, method 10: each share's Wilson interval, combined). A share
    counted on a small sample can come out above or below another by chance; the interval says when it cannot:
    an interval wholly below 0 says a is kept less often than b beyond what sampling alone would give."""
    pa, pb = kept_a / n_a, kept_b / n_b
    la, ua = wilson_interval(kept_a, n_a, z)
    lb, ub = wilson_interval(kept_b, n_b, z)
    d = pa - pb
    return float(d), float(d - np.sqrt((pa - la) ** 2 + (ub - pb) ** 2)), float(d + np.sqrt((ua - pa) ** 2 + (pb - lb) ** 2))
