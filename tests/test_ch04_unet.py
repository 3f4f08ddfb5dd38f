"""Chapter 4 (The U-Net in training): lds.models.forward_process, the U-Net inspection helpers, and the chapter's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lds import measures
from lds.models import forward_process as fp
from lds.book.record import VERDICTS
from lds.models.unet import SCHEDULE, UNetTrainConfig, build_unet
from lds.instruments.unet import describe_blocks, skip_connections_scaled, skip_connections_scaled_at


@pytest.fixture(scope="module")
def tiny_unet():
    torch.manual_seed(0)
    return build_unet(UNetTrainConfig(block_out_channels=(32, 32, 32)), sample_size=8, cross_attention_dim=16).eval()


def test_add_noise_matches_diffusers():
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(**SCHEDULE)
    x0, noise = torch.randn(5, 4, 8, 8), torch.randn(5, 4, 8, 8)
    t = torch.tensor([0, 10, 500, 900, 999])
    ours = fp.add_noise(x0, noise, t, fp.alphas_cumprod(sched))
    assert torch.allclose(ours, sched.add_noise(x0, noise, t), atol=1e-6)


def test_schedule_and_snr():
    from diffusers import DDPMScheduler

    ac = fp.alphas_cumprod(DDPMScheduler(**SCHEDULE))
    snr = fp.signal_to_noise(ac)
    assert len(ac) == 1000 and (snr[1:] < snr[:-1]).all()  # signal only ever falls
    assert snr[0] > 1000 and snr[-1] < 0.01


def test_epsilon_loss_is_the_mse_of_the_noise(tiny_unet):
    from diffusers import DDPMScheduler

    ac = fp.alphas_cumprod(DDPMScheduler(**SCHEDULE))
    x0, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    t, c = torch.tensor([100, 700]), torch.randn(2, 77, 16)
    with torch.no_grad():
        loss = fp.epsilon_loss(tiny_unet, x0, noise, t, c, ac)
        pred = tiny_unet(fp.add_noise(x0, noise, t, ac), t, c).sample
    assert loss.item() == pytest.approx(((pred - noise) ** 2).mean().item(), rel=1e-5)


def test_batches_are_reproducible_and_training_learns(tiny_unet):
    from diffusers import DDPMScheduler

    a = fp.make_batches(10, 3, 4, (4, 8, 8), 1000, seed=3)
    b = fp.make_batches(10, 3, 4, (4, 8, 8), 1000, seed=3)
    assert all(torch.equal(x.noise, y.noise) and torch.equal(x.timesteps, y.timesteps) for x, y in zip(a, b))
    ac = fp.alphas_cumprod(DDPMScheduler(**SCHEDULE))
    torch.manual_seed(0)
    unet = build_unet(UNetTrainConfig(block_out_channels=(32, 32, 32)), sample_size=8, cross_attention_dim=16)
    latents, embeds = torch.randn(8, 4, 8, 8), torch.randn(8, 77, 16)
    batches = fp.make_batches(8, 1, 8, (4, 8, 8), 1000, seed=0) * 25  # the same batch, over and over
    losses = fp.train_on_batches(unet, latents, embeds, batches, ac, lr=1e-3)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    again = fp.losses_on_batches(unet, latents, embeds, batches[:1], ac)
    assert again[0] < losses[0]


def test_high_frequency_share_and_spectrum():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(2, 3, 32, 32, generator=g)
    yy = torch.linspace(0, 1, 32)
    smooth = (yy[None, None, :, None] * yy[None, None, None, :]).expand(2, 3, 32, 32)
    assert (measures.high_frequency_share(noise) > 0.5).all()
    assert (measures.high_frequency_share(smooth) < 0.1).all()  # the FFT wraps around: the ramp jumps at the border
    freqs, power = measures.radial_spectrum(noise, bins=8)
    assert freqs.shape == (8,) and power.shape == (2, 8) and (power >= 0).all()


def test_describe_blocks(tiny_unet):
    rows = describe_blocks(tiny_unet)
    assert [r["stage"] for r in rows] == ["down"] * 3 + ["mid"] + ["up"] * 3
    assert [r["in_resolution"] for r in rows] == [8, 4, 2, 2, 2, 4, 8]
    assert sum(r["cross_attention"] for r in rows) == 1 + 1 + 1 + 2 + 2  # the smoke layout
    assert sum(r["skips_out"] for r in rows if r["stage"] == "down") + 1 == \
        sum(r["skips_in"] for r in rows if r["stage"] == "up")  # + the conv_in output


def test_skip_scaling_hooks(tiny_unet):
    x, t, c = torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 77, 16)
    with torch.no_grad():
        base = tiny_unet(x, t, c).sample
        with skip_connections_scaled(tiny_unet, 1.0):
            same = tiny_unet(x, t, c).sample
        with skip_connections_scaled(tiny_unet, 0.0):
            cut = tiny_unet(x, t, c).sample
        with skip_connections_scaled_at(tiny_unet, {0: 0.0, 1: 0.0, 2: 0.0}):
            cut_at = tiny_unet(x, t, c).sample
        with skip_connections_scaled_at(tiny_unet, {2: 0.0}):
            finest = tiny_unet(x, t, c).sample
        after = tiny_unet(x, t, c).sample
    assert torch.equal(base, same) and torch.equal(base, after)  # hooks are removed
    assert torch.allclose(cut, cut_at)
    assert not torch.allclose(base, cut) and not torch.allclose(base, finest)


# -- the chapter, executed with its CI parameters ------------------------------------------------

@pytest.fixture(scope="module")
def records(executed):
    return executed("04_unet_training")


def test_unet_shape(records):
    assert records["cross_attention_layers"] > 0
    assert records["skip_connections"] > 0
    res = records["unet_resolutions"]
    assert min(res) < max(res) and res[0] == res[-1]  # down and back up


def test_forward_process(records):
    assert records["num_train_timesteps"] == 1000
    assert records["add_noise_max_diff"] < 1e-5
    assert records["snr_first"] > 1000 > 0.01 > records["snr_last"]
    assert 0 < records["snr_crossover_t"] < 1000


def test_live_training_loss_decreases(records):
    losses = records["live_losses"]
    assert len(losses) == 30  # CI parameters
    assert records["live_loss_last"] < records["live_loss_first"]
    assert records["trained_unet_loss"] < records["zero_prediction_loss"]
    assert records["trained_unet_loss"] < records["live_loss_last"]
    assert records["trained_unet_loss"] < 0.2  # lds-mini's U-Net has learned the corpus's noise


def test_zeroed_skips_change_the_image(records):
    diff = records["skip_difference"]
    assert diff["all skips zeroed"] > 0.1
    assert diff["finest skips zeroed"] > 4 * diff["coarsest skips zeroed"] > 0  # the finest skips carry the most
    assert records["loss_skips_zeroed"] > 5 * records["loss_with_skips_same_batches"]
    assert records["loss_skips_zeroed"] > records["zero_prediction_loss"]  # worse than predicting no noise
    hf = records["skip_hf_share"]
    assert hf["all skips zeroed"] < hf["normal"]  # the share falls ...
    assert records["hf_energy_all_zeroed"] > 0.5  # ... but not because fine-scale energy vanished
    assert set(records["skip_hf_share"]) == set(diff)


def test_claim_14(records):
    row = records["claim:14"]
    assert row["number"] == 14 and row["verdict"] in VERDICTS and row["lds_mini"] and row["sd15"]
    # the verdict follows from the half-strength test against the target, not from the broken, skips-zeroed network
    errors = records["skip_band_error"]
    assert set(errors) == {"1.0", "0.9", "0.75", "0.5", "0.0"} and records["skip_probe_images"] == 64
    assert errors["0.5"]["fine"] > errors["1.0"]["fine"] and errors["0.5"]["coarse"] > errors["1.0"]["coarse"]
    # read at the weakest strength at which the network beats the image-agnostic guess in every timestep x draw case
    # (full size: 0.9; at half strength it is worse than that guess at 3 of 4 timesteps, measured). There, medians
    # over 12 cases: the detail gains about 2-2.5x the outline's added error in absolute terms, but the outline's
    # error grows by the larger factor; by timestep the balance turns (detail at 500 and 700, outline at 100 and 300)
    ratio = records["skip_fine_over_coarse"]
    growth = records["skip_growth_factor"]
    assert records["skip_probe_cases"] == 3 * len(records["skip_probe_timesteps"])
    if records["skip_test_strength"] == 0:
        assert row["verdict"] == "not testable on lds-mini"
    else:
        assert records["skip_test_strength"] in (0.9, 0.75, 0.5)
        held = [p["holds"] for p in row["parts"]]
        assert held == [ratio > 2, growth["coarse"] < growth["fine"]]
        assert row["verdict"] == ("holds" if all(held) else "does not hold" if not any(held) else "holds in part")
    assert "twice" in row["threshold"]


def test_skip_band_errors_rows_and_the_agnostic_bar():
    """lds.instruments.unet.skip_band_errors on a tiny random U-Net: one row per timestep x draw x strength, the
    bands' errors finite, and the image-agnostic bar equal to its closed form for unit-Gaussian latents."""
    from diffusers import UNet2DConditionModel

    from lds.instruments.unet import skip_band_errors

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=8,
                                attention_head_dim=2, norm_num_groups=4).eval()
    latents = torch.randn(16, 4, 8, 8)
    ac = torch.linspace(0.999, 0.01, 1000)
    rows = skip_band_errors(unet, latents, torch.randn(16, 3, 8), ac, strengths=(1.0, 0.5), timesteps=(100, 700), draws=2)
    assert len(rows) == 2 * 2 * 2
    assert all(np.isfinite([r["loss"], r["coarse"], r["fine"], r["coarse_rel"], r["fine_rel"]]).all() for r in rows)
    for r in rows:  # unit-variance latents: the best linear guess leaves 1 - (1 - a) = a of the noise's variance
        a = float(ac[r["timestep"]])
        assert r["agnostic"] == pytest.approx(a, rel=0.1)
