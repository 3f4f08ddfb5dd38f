"""lds.training.evaluate's structural similarity: the formula of Wang et al. (2004), checked by hand."""

import numpy as np
import pytest
import torch

from lds.measures import LUMA
from lds.training.evaluate import ssim


def _reference_ssim(x: np.ndarray, y: np.ndarray, win: int = 11, sigma: float = 1.5) -> float:
    """SSIM written out window by window (no convolution): Gaussian-weighted local statistics of each 11x11
    window inside the image, the SSIM formula with K1 = 0.01, K2 = 0.03, then the mean over windows."""
    r = np.arange(win) - (win - 1) / 2
    g = np.exp(-r ** 2 / (2 * sigma ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for i in range(x.shape[0] - win + 1):
        for j in range(x.shape[1] - win + 1):
            px, py = x[i:i + win, j:j + win], y[i:i + win, j:j + win]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_identical_images_score_one():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-6)


def test_flat_grey_images_follow_the_closed_form():
    # No structure: the contrast-structure term is C2/C2 = 1, leaving (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.7, 0.01 ** 2
    x, y = torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)
    assert ssim(x, y).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)


def test_matches_the_formula_written_out_window_by_window():
    rng = np.random.default_rng(0)
    x = rng.random((20, 20, 3))
    y = np.clip(0.6 * x + 0.3 * rng.random((20, 20, 3)) + 0.1, 0, 1)  # related, not identical
    luma = lambda im: im @ np.array(LUMA)
    expected = _reference_ssim(luma(x), luma(y))
    got = ssim(torch.from_numpy(x).permute(2, 0, 1)[None], torch.from_numpy(y).permute(2, 0, 1)[None]).item()
    assert 0.05 < expected < 0.95 and got == pytest.approx(expected, rel=1e-5)


def test_structure_counts_not_only_colour():
    # A red disc against the same disc's colours shuffled over the image: same colours, no drawing
    yy, xx = np.mgrid[:32, :32]
    disc = np.ones((32, 32, 3))
    disc[(yy - 16) ** 2 + (xx - 16) ** 2 < 100] = (0.9, 0.1, 0.1)
    shuffled = disc.reshape(-1, 3)[np.random.default_rng(0).permutation(32 * 32)].reshape(32, 32, 3)
    t = lambda im: torch.from_numpy(im).permute(2, 0, 1)[None].float()
    assert ssim(t(disc), t(disc)).item() > 0.99 and ssim(t(shuffled), t(disc)).item() < 0.3


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 16, 16))
