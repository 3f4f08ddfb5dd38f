"""lds.measures.ssim, the model card's structural similarity: Wang et al. (2004), checked against scikit-image's
``structural_similarity`` (a test dependency) and two closed forms; and the card's retrieval scores' rule for ties."""

import numpy as np
import pytest
import torch

from lds.measures import LUMA, ssim


def test_identical_images_score_one():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-6)


def test_flat_grey_images_follow_the_closed_form():
    # No structure: the contrast-structure term is C2/C2 = 1, leaving (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.7, 0.01 ** 2
    x, y = torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)
    assert ssim(x, y).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)


def _skimage(x: np.ndarray, y: np.ndarray) -> float:
    """scikit-image's SSIM with Wang et al.'s settings, as lds.measures.ssim's docstring names them."""
    from skimage.metrics import structural_similarity

    return structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


@pytest.mark.parametrize("size", [11, 20, 32, 64])
def test_matches_scikit_image_on_luminance(size):
    rng = np.random.default_rng(size)
    x = rng.random((4, size, size, 3))
    y = np.clip(0.6 * x + 0.3 * rng.random(x.shape) + 0.1, 0, 1)  # related, not identical
    luma = lambda im: im @ np.array(LUMA)
    expected = [_skimage(luma(a), luma(b)) for a, b in zip(x, y)]
    got = ssim(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y).permute(0, 3, 1, 2)).numpy()
    assert all(0.05 < e < 0.95 for e in expected)
    np.testing.assert_allclose(got, expected, rtol=1e-6)  # float64 inside, returned in float32


def test_matches_scikit_image_on_corpus_emoji():
    """Drawings, not noise: each emoji against its neighbour in the corpus, one channel (no luminance step)."""
    from lds.data.corpus import load_corpus

    gray = load_corpus().rgb()[:40].astype(np.float64).mean(-1)  # (40, 32, 32) in [0, 1]
    expected = [_skimage(a, b) for a, b in zip(gray[:-1], gray[1:])]
    got = ssim(torch.from_numpy(gray[:-1])[:, None], torch.from_numpy(gray[1:])[:, None]).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


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


def test_a_tie_with_the_named_image_is_a_hit_for_top1_and_base_top1():
    """The corpus draws some emoji identically (Heard Island & McDonald Islands' flag is Australia's; the gender-
    neutral families are the men's): an exact copy of the named image ties with an image of another emoji that
    comes first in the corpus. Top-1 counts the tie as a hit (nothing is strictly nearer); base top-1 must too, or
    the card reports fewer base hits than exact hits, which cannot be."""
    from lds.data.corpus import load_corpus
    from lds.training.evaluate import retrieval_scores

    corpus = load_corpus()
    rgb = corpus.rgb()
    names = {r["names"]["en"]: i for i, r in enumerate(corpus.records)}
    targets = np.array([names["Heard Island & McDonald Islands"], names["family adult child"]])
    first = [names["Australia"], names["family man boy"]]
    assert all((rgb[t] == rgb[f]).all() and f < t for t, f in zip(targets, first))  # the ties this test is about
    images = torch.from_numpy(rgb[targets]).permute(0, 3, 1, 2)
    s = retrieval_scores(images, targets, corpus)
    assert s["pixel_top1"] == 1.0
    assert s["pixel_base_top1"] == 1.0
