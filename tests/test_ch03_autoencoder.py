"""Chapter 3 (The autoencoder): lds.instruments.autoencoder, and the numbers the chapter's argument rests on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lds import measures
from lds.instruments import autoencoder as ia
from lds.models.autoencoder import NLayerDiscriminator, compression_ratio, receptive_field
from lds.book.record import VERDICTS


# -- the module, without a model ---------------------------------------------------------------

@pytest.mark.parametrize("n_layers, expected", [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_receptive_field_from_the_layers(n_layers, expected):
    assert receptive_field(NLayerDiscriminator(n_layers=n_layers)) == expected


def test_patch_grid_and_stride():
    assert ia.patch_grid(3, 32) == (2, 2)  # lds-mini: four verdicts, each wider than the image
    assert ia.patch_grid(3, 256) == (30, 30)
    assert ia.effective_stride(NLayerDiscriminator(n_layers=3)) == 8


def test_compression_ratios():
    assert compression_ratio((3, 32, 32), (4, 8, 8)) == 12
    assert compression_ratio((3, 512, 512), (4, 64, 64)) == 48


def test_outside_inputs_shapes_and_ranges():
    out = ia.outside_inputs(3, 32, seed=1)
    assert set(out) == {"Gaussian noise", "checkerboard", "smooth gradient", "text-like strokes"}
    for x in out.values():
        assert x.shape == (3, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    again = ia.outside_inputs(3, 32, seed=1)
    assert all(torch.equal(out[k], again[k]) for k in out)
    big = ia.outside_inputs(1, 64, seed=1)
    assert big["checkerboard"].shape == (1, 3, 64, 64)


def test_frequency_share_separates_noise_from_smooth():
    out = ia.outside_inputs(4, 32, seed=0)
    noise = measures.high_frequency_share(out["Gaussian noise"])
    smooth = measures.high_frequency_share(out["smooth gradient"])
    assert (noise > 0.5).all() and (smooth < 0.1).all()


def test_edge_error_share():
    img = torch.ones(1, 3, 8, 8)
    img[..., 4:] = 0  # one vertical edge
    err_on_edge = torch.zeros(1, 8, 8)
    err_on_edge[..., 3] = 1
    assert ia.edge_error_share(img, err_on_edge, top=0.2).item() == pytest.approx(1.0)
    assert ia.edge_error_share(img, torch.ones(1, 8, 8), top=0.2).item() < 0.3


def test_shift_and_nearest_other():
    x = torch.rand(2, 3, 8, 8)
    s = ia.shift(x, 1)
    assert torch.equal(s[..., 1:], x[..., :-1])
    imgs = torch.stack([torch.zeros(3, 4, 4), torch.zeros(3, 4, 4) + 0.01, torch.ones(3, 4, 4)])
    assert ia.nearest_other(imgs, ["a", "a", "b"]).tolist() == [2, 2, 1]


def test_quantisation_report_of_a_kl_autoencoder():
    from lds.models.autoencoder import AutoencoderTrainConfig, build_autoencoder

    vae = build_autoencoder(AutoencoderTrainConfig(block_out_channels=(32, 32)), 16)
    report = ia.quantisation_report(vae)
    assert report["class"] == "AutoencoderKL" and report["latent_channels"] == 4
    assert report["codebook_modules"] == [] and report["num_vq_embeddings"] is None
    assert report["downsampling"] == 2


def test_discriminator_absent_gives_none(tmp_path):
    assert ia.load_discriminator(tmp_path) is None


def test_discriminator_roundtrip_fp16(tmp_path):
    import json

    from safetensors.torch import save_file

    torch.manual_seed(0)
    disc = NLayerDiscriminator(n_layers=3).eval()
    (tmp_path / "discriminator").mkdir()
    save_file({k: v.half() if v.is_floating_point() else v for k, v in disc.state_dict().items()},
              str(tmp_path / "discriminator" / "model.safetensors"))
    (tmp_path / "discriminator" / "config.json").write_text(json.dumps({"input_nc": 3, "ndf": 32, "n_layers": 3}))
    loaded = ia.load_discriminator(tmp_path)
    x = torch.rand(2, 3, 32, 32)
    assert ia.patch_logits(loaded, x).shape == (2, 2, 2)
    assert torch.allclose(ia.patch_logits(loaded, x), disc(x * 2 - 1)[:, 0], atol=2e-2)


# -- the chapter, executed with its CI parameters ------------------------------------------------

@pytest.fixture(scope="module")
def records(executed):
    return executed("03_autoencoder")


def test_compression_from_the_loaded_objects(records):
    assert records["compression_ratio"] == pytest.approx(np.prod(records["image_shape"]) / np.prod(records["latent_shape"]))
    assert records["image_shape"] == [3, 32, 32] and records["latent_shape"] == [4, 8, 8]
    assert records["compression_ratio"] == 12


def test_round_trips_lose_something(records):
    # even the worst-kept corpus image comes back above the level of pure noise (~12 dB, measured below)
    assert 12 < records["psnr_corpus_min"] <= records["psnr_corpus_mean"] <= records["psnr_corpus_max"] < 60
    assert records["psnr_corpus_mean"] > 20
    assert records["edge_error_share"] > 0.3  # an even spread would give 0.2
    assert records["hf_retained_corpus"] < 1.0  # reconstructions are smoother than originals
    # claim 9 in parts (issue 27: a verdict is never rescued by its easier half): lossy, and a recognisable substitute.
    # The PatchGAN (full size: 0% of the shipped decoder's reconstructions as real as the median original) is reported,
    # not a part: it was trained against an earlier decoder, and the shipped decoder's last stage trained without it
    row = records["claim:9"]
    held = {p["part"].split(":")[0]: p["holds"] for p in row["parts"]}
    assert len(row["parts"]) == 2 and held["something is always lost"] is True
    assert records["recon_nearer_own_share"] >= 0.9 and held["a substitute for its original"] is True
    assert row["verdict"] == records["claim9_verdict"] == "holds with a qualifier"  # plausibility not measured
    assert 0 <= records["disc_reconstructions_fooling"] <= 1


def test_noise_does_not_survive(records):
    s = records["outside_summary"]
    assert records["psnr_gap_corpus_noise"] == pytest.approx(s["corpus"]["psnr_mean"] - s["Gaussian noise"]["psnr_mean"], abs=1e-2)
    assert records["psnr_gap_corpus_noise"] > 8  # corpus images come back far closer than noise (~12 dB)
    assert records["hf_retained_noise"] < 0.5  # noise comes back smoothed
    # PSNR punishes the high-variance checkerboard; allowing for each input's variance, noise is kept least
    # (full size: noise 1.06 of its variance, checkerboard 0.92, strokes 0.68, corpus 0.017)
    assert s["checkerboard"]["psnr_mean"] < s["Gaussian noise"]["psnr_mean"]
    assert records["noise_normalised_error"] == s["Gaussian noise"]["normalised_error"] >= 0.9
    assert s["corpus"]["normalised_error"] < 0.1 < s["checkerboard"]["normalised_error"]
    assert records["least_kept_kind"] == max(s, key=lambda k: s[k]["normalised_error"])
    # the paper's whole sentence, three parts: round trip, PatchGAN, and the model's own CLIP filter, under which
    # noise with no caption or a random name passes (95% upper bound over 512 images) less often than the web's own
    # stray pairs were kept. The reason ("looking for its opposite") is not a part: under the name each input scores
    # best with, every kind of input passes, so that caption cannot tell noise from anything (issue 27's second read)
    assert records["noise_filter_pass_upper"] < 0.03
    assert min(records["best_name_passing_by_kind"].values()) >= 0.99
    row = records["claim:12"]
    assert len(row["parts"]) == 3 and all(p["holds"] for p in row["parts"])
    assert row["verdict"] == records["claim12_verdict"] == "holds with a qualifier"  # the reason is not tested


def test_pixel_and_perceptual_distances(records):
    med = records["distance_medians"]
    assert set(med) == {"moved 1 px", "faint noise", "round trip", "nearest other emoji"}
    for d in med.values():
        assert all(np.isfinite(v) and v >= 0 for v in d.values())
    # The finding: on lds-mini the two judges agree. Measured at CI size: Spearman 0.91; no image's 1-px
    # shift is farther in pixels than a different emoji (0%); a different emoji is 6.1x (perceptual) and
    # 6.4x (MSE) farther than the shift.
    assert records["pixel_perceptual_spearman"] > 0.75
    assert records["shift_farther_in_pixels"] < 0.1
    assert med["nearest other emoji"]["perceptual"] > 3 * med["moved 1 px"]["perceptual"]
    assert med["nearest other emoji"]["MSE"] > 3 * med["moved 1 px"]["MSE"]
    assert med["moved 1 px"]["perceptual"] > med["faint noise"]["perceptual"]
    # the pooled correlation is mostly between kinds of pair; within each kind it is reported as a range
    assert set(records["pixel_perceptual_spearman_within"]) == set(med)
    ratio = records["shift_over_noise_perceptual"] / records["shift_over_noise_mse"]
    assert records["shift_sensitivity_word"] == ("about as" if 0.67 < ratio < 1.5 else "more" if ratio > 1 else "less")
    # what the judge and the autoencoder learned from: the filter left nearly every corpus image to the autoencoder
    assert records["ae_kept_images"] + records["ae_filter_removed"] == records["corpus_images"]
    assert records["ae_filter_removed_share"] < 0.05


def test_patchgan(records):
    assert records["receptive_field"] == 70
    assert records["receptive_fields"] == {1: 16, 2: 34, 3: 70, 4: 142}
    assert records["patch_grid_model"] == [2, 2] and records["patch_grid_sd"] == [62, 62]
    assert records["discriminator_loaded"] is True  # lds-mini ships its PatchGAN
    means = records["disc_logit_means"]
    assert {"corpus original", "reconstruction", "Gaussian noise"} <= set(means)
    # trained to tell originals from reconstructions, it ranks them so. On what it never saw its verdicts depend on
    # the run (the quick recipe's judge found noise "realer" than emoji, the full recipe's far less real: -6.6 against
    # +0.40 for originals and -1.1 for reconstructions, measured): the prose reads them, and says which.
    assert means["reconstruction"] < means["corpus original"]
    assert records["disc_noise_above_originals"] == (means["Gaussian noise"] > means["corpus original"])
    reading = records["disc_noise_reading"]
    assert reading.startswith("more") == records["disc_noise_above_originals"]
    assert ("more than their reconstructions" in reading) == (means["reconstruction"] < means["Gaussian noise"]
                                                              <= means["corpus original"])
    assert records["disc_noise_returned_reading"] == (
        "more" if means["Gaussian noise (returned)"] > means["Gaussian noise"] else "less")
    assert records["disc_reconstructions_fooling"] < 0.2
    assert records["claim:10"]["verdict"] == "holds"


def test_kl_not_vq(records):
    assert records["vae_class"] == "AutoencoderKL"
    assert records["latent_channels"] == 4 and records["has_codebook"] is False
    assert len(records["latent_channel_means"]) == 4
    assert records["posterior_std_mean"] < 0.5 * min(records["latent_channel_stds"])  # nearly deterministic
    # "this objective" (perceptual + patch adversarial) is VQGAN's; the missing codebook is context, not a qualifier
    assert records["claim:11"]["verdict"] == "holds"


def test_claims_recorded(records):
    for n in (9, 10, 11, 12):
        row = records[f"claim:{n}"]
        assert row["number"] == n and row["verdict"] in VERDICTS and row["lds_mini"] and row["sd15"]


def test_normalised_error():
    x = torch.rand(3, 3, 8, 8)
    assert torch.allclose(ia.normalised_error(x, x), torch.zeros(3))
    flat = x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)  # a flat image of each input's mean colour scores 1
    assert torch.allclose(ia.normalised_error(x, flat), torch.ones(3), atol=1e-5)
    assert torch.isnan(ia.normalised_error(torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))).all()
