"""lds train: every stage runs, writes a standard pipeline folder and metrics, and resumes."""

import json

import pytest
from diffusers import StableDiffusionPipeline

from lds.training.recipe import STAGES, TrainConfig, Trainer


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    work = tmp_path_factory.mktemp("train")
    out = work / "model"
    trainer = Trainer(TrainConfig.smoke(), work / "work", out, progress=False)
    metrics = trainer.run()
    trainer.finalize()
    return work / "work", out, metrics


def test_all_stages_run_and_report(smoke):
    work, out, metrics = smoke
    assert all(stage in metrics for stage in STAGES)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["total_seconds"] > 0
    assert 0 < saved["filter"]["kept"] < saved["filter"]["pairs"]
    assert saved["autoencoder"]["scaling_factor"] > 0
    assert saved["unet_balance"]["steps"] == 3 and saved["unet_balance"]["family_balance"] == 1.0
    assert "holdout_psnr_db" in saved["decoder_recon"]  # the reconstruction-weighted decoder ran and was measured


def _weights(cls, *folders):
    """The state dicts of ``cls`` models saved in ``folders``."""
    return [cls.from_pretrained(str(f)).state_dict() for f in folders]


def test_the_pipeline_ships_the_balanced_unet(smoke):
    import torch
    from diffusers import UNet2DConditionModel

    work, out, _ = smoke
    shipped, balanced, main = _weights(UNet2DConditionModel, out / "unet", work / "unet_balance", work / "unet")
    assert all(torch.equal(shipped[k], balanced[k].half().float()) for k in shipped)
    assert any(not torch.equal(main[k], balanced[k]) for k in main)  # the last stage trained on


def test_the_pipeline_ships_the_last_decoder(smoke):
    import torch
    from diffusers import AutoencoderKL

    work, out, _ = smoke
    shipped, recon, ft = _weights(AutoencoderKL, out / "vae", work / "vae_recon", work / "vae_ft")
    assert all(torch.equal(shipped[k], recon[k].half().float()) for k in shipped)
    changed = [k for k in ft if not torch.equal(ft[k], recon[k])]
    assert changed and all(k.startswith(("decoder.", "post_quant_conv.")) for k in changed)  # the encoder is frozen


def test_output_is_a_standard_pipeline(smoke):
    _, out, _ = smoke
    pipe = StableDiffusionPipeline.from_pretrained(str(out), local_files_only=True)
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    for extra in ("clip/model.safetensors", "discriminator/model.safetensors", "filter_report.json",
                  "training_curves.json", "evaluation.json"):
        assert (out / extra).exists(), extra


def test_interrupted_stage_resumes_and_finished_stages_are_kept(tmp_path, monkeypatch):
    cfg = TrainConfig.smoke()
    work, out = tmp_path / "work", tmp_path / "model"
    import lds.models.unet

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(lds.models.unet, "train_unet", boom)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, work, out, progress=False).run()
    done_before = {s: (work / f"{s}.done").stat().st_mtime for s in STAGES if (work / f"{s}.done").exists()}
    assert set(done_before) == {"clip", "filter", "autoencoder", "latents", "decoder", "decoder_recon"}
    monkeypatch.undo()
    Trainer(cfg, work, out, progress=False).run(stages=("clip", "filter", "autoencoder", "latents", "decoder",
                                                        "decoder_recon", "unet"))
    for s, mtime in done_before.items():
        assert (work / f"{s}.done").stat().st_mtime == mtime, f"{s} was redone"
    assert (work / "unet.done").exists()


def test_a_different_configuration_is_refused(tmp_path):
    Trainer(TrainConfig.smoke(), tmp_path, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="different configuration"):
        Trainer(TrainConfig(), tmp_path, tmp_path / "out", progress=False)


def test_min_snr_weights_follow_the_formula():
    import torch
    from diffusers import DDPMScheduler

    from lds.models.unet import SCHEDULE, min_snr_weights

    sched = DDPMScheduler(**SCHEDULE)
    t = torch.arange(0, 1000)
    w = min_snr_weights(sched, t, gamma=5.0)
    snr = sched.alphas_cumprod / (1 - sched.alphas_cumprod)
    assert torch.allclose(w[snr <= 5], torch.ones(int((snr <= 5).sum())))  # noisy timesteps: full weight
    assert torch.allclose(w[snr > 5], 5.0 / snr[snr > 5])  # nearly clean ones: γ / SNR < 1
    assert w[0] < 0.02 and w[-1] == 1.0 and bool((w[1:] >= w[:-1]).all())  # rises as the noise grows


# -- checkpoints inside a stage: interrupt, resume, and get the uninterrupted run's weights ----------------------

class _Interrupted(Exception):
    pass


def _interrupting(path, at):
    """A StageCheckpoint that saves every `at` steps and stops the run (as Ctrl-C would) right after step `at`."""
    from lds.training.recipe import StageCheckpoint

    class Interrupting(StageCheckpoint):
        def step(self, step, *args):
            super().step(step, *args)
            if step == at:
                raise _Interrupted

    return Interrupting(path, every_seconds=None, every_steps=at)


def _resumed_equals_uninterrupted(tmp_path, train, at=3):
    """Run `train(checkpoint)` three ways: uninterrupted; interrupted after `at` steps; resumed from there."""
    import torch

    from lds.training.recipe import StageCheckpoint

    path = tmp_path / "ck.pt"
    whole = train(None)
    with pytest.raises(_Interrupted):
        train(_interrupting(path, at))
    assert torch.load(path, weights_only=True)["step"] == at
    resumed = train(StageCheckpoint(path, every_seconds=600))
    (model_a, history_a), (model_b, history_b) = whole, resumed
    assert history_a == pytest.approx(history_b, rel=1e-5, abs=1e-7)  # the same losses, step by step
    a, b = model_a.state_dict(), model_b.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-5, atol=1e-6), k
    # ... and not because the weights ignore training: the run moved them away from where it started
    return whole


@pytest.fixture(scope="module")
def tiny_clip_parts():
    import numpy as np
    from transformers import CLIPTokenizer

    from lds.models.clip import CLIPTrainConfig
    from lds.pipeline.loading import lds_mini_path

    rng = np.random.default_rng(0)
    images = rng.random((12, 16, 16, 3)).astype(np.float32)
    pairs = {"image": np.arange(24) % 12, "caption": np.array([f"emoji number {i % 12}" for i in range(24)])}
    cfg = CLIPTrainConfig(width=32, layers=1, heads=2, vision_width=32, vision_layers=1, projection_dim=32,
                          steps=6, batch_size=6, warmup_steps=2)
    return images, pairs, CLIPTokenizer.from_pretrained(str(lds_mini_path() / "tokenizer")), cfg


def test_clip_stage_resumes_from_its_checkpoint(tmp_path, tiny_clip_parts):
    from lds.models.clip import train_clip

    images, pairs, tok, cfg = tiny_clip_parts
    _resumed_equals_uninterrupted(tmp_path, lambda ck: train_clip(images, pairs, tok, cfg, False, checkpoint=ck))


def test_autoencoder_and_decoder_stages_resume_from_their_checkpoints(tmp_path, tiny_clip_parts):
    import numpy as np

    from lds.models.autoencoder import AutoencoderTrainConfig, DecoderFinetuneConfig, finetune_decoder, train_autoencoder
    from lds.models.clip import train_clip

    images, pairs, tok, clip_cfg = tiny_clip_parts
    clip, _ = train_clip(images, pairs, tok, clip_cfg, False)
    cfg = AutoencoderTrainConfig(block_out_channels=(32, 32), steps=6, batch_size=2, disc_start=2, warmup_steps=2,
                                 disc_layers=2)  # two halvings of the PatchGAN fit 16x16 images

    def autoencoder(ck):
        vae, disc, history = train_autoencoder(images, clip, cfg, False, checkpoint=ck)
        return _Both(vae, disc), np.ravel([history[k] for k in ("l1", "g", "d")])

    (both, _) = _resumed_equals_uninterrupted(tmp_path / "ae", autoencoder)
    dcfg = DecoderFinetuneConfig(steps=6, batch_size=2, warmup_steps=2)

    def decoder(ck):
        import copy

        vae, disc = copy.deepcopy(both.vae), copy.deepcopy(both.disc)
        history = finetune_decoder(vae, disc, images, clip, dcfg, False, checkpoint=ck)
        return _Both(vae, disc), np.ravel([history[k] for k in ("l1", "g", "d")])

    _resumed_equals_uninterrupted(tmp_path / "dec", decoder)


class _Both:
    """The autoencoder and its discriminator, compared as one state dict."""

    def __init__(self, vae, disc):
        self.vae, self.disc = vae, disc

    def state_dict(self):
        return {**{f"vae.{k}": v for k, v in self.vae.state_dict().items()},
                **{f"disc.{k}": v for k, v in self.disc.state_dict().items()}}


def test_unet_stage_resumes_from_its_checkpoint(tmp_path):
    import numpy as np
    import torch

    from lds.models.unet import UNetTrainConfig, build_unet, train_unet

    g = torch.Generator().manual_seed(0)
    mean, std = torch.randn(10, 4, 8, 8, generator=g), 0.1 * torch.rand(10, 4, 8, 8, generator=g)
    states, empty = torch.randn(5, 77, 32, generator=g), torch.randn(77, 32, generator=g)
    pairs_image, pairs_text = np.arange(20) % 10, np.arange(20) % 5
    cfg = UNetTrainConfig(block_out_channels=(32, 32), steps=6, batch_size=4, warmup_steps=2, ema_decay=0.9)
    unet, _ = _resumed_equals_uninterrupted(
        tmp_path, lambda ck: train_unet(mean, std, pairs_image, pairs_text, states, empty, cfg, False, checkpoint=ck))
    torch.manual_seed(cfg.seed)
    fresh = build_unet(cfg, 8, 32, 4).state_dict()
    assert any(not torch.allclose(v, unet.state_dict()[k]) for k, v in fresh.items())  # training moved the weights


def test_family_balanced_weights_draw_every_family_alike_and_keep_proportions_inside_one():
    import numpy as np

    from lds.models.unet import family_balanced_weights

    families = np.array([0, 0, 1, 2])  # images 0 and 1 are one emoji in two tones; 2 and 3 one-image emoji
    pairs_image = np.array([0] * 60 + [1] * 20 + [2] * 15 + [3] * 5)
    w = family_balanced_weights(pairs_image, families, 1.0)
    fam = families[pairs_image]
    assert np.allclose(np.bincount(fam, weights=w), 1.0)  # each family weighs the same in all
    assert w[pairs_image == 0].sum() / w[pairs_image == 1].sum() == pytest.approx(3.0)  # the web's 60:20 kept
    half = family_balanced_weights(pairs_image, families, 0.5)
    totals = np.bincount(fam, weights=half)
    assert totals[0] > totals[1] > totals[2] and totals[0] / totals[2] == pytest.approx(np.sqrt(80 / 5))
    assert family_balanced_weights(pairs_image, families, 0.0) is None  # 0: uniform draws


def test_unet_stage_draws_pairs_by_their_weights(monkeypatch):
    import numpy as np
    import torch

    import lds.models.unet
    from lds.models.unet import UNetTrainConfig, train_unet

    g = torch.Generator().manual_seed(0)
    mean, std = torch.randn(4, 4, 8, 8, generator=g), 0.1 * torch.rand(4, 4, 8, 8, generator=g)
    states, empty = torch.randn(4, 77, 32, generator=g), torch.randn(77, 32, generator=g)
    pairs_image = np.array([0] * 97 + [1, 2, 3])
    drawn = []
    real = lds.models.unet.draw_pairs
    monkeypatch.setattr(lds.models.unet, "draw_pairs", lambda *a: drawn.append(real(*a)) or drawn[-1])
    cfg = UNetTrainConfig(block_out_channels=(32, 32), steps=2, batch_size=64, warmup_steps=1)
    weights = np.where(pairs_image == 0, 1.0 / 97, 1.0)  # each image equally likely
    train_unet(mean, std, pairs_image, pairs_image, states, empty, cfg, False, pair_weights=weights)
    off = np.concatenate(drawn) >= 97
    assert len(drawn) == 2 and off.mean() > 0.5  # uniform draws would give 3% of the pairs off image 0
    drawn.clear()
    train_unet(mean, std, pairs_image, pairs_image, states, empty, cfg, False)
    assert (np.concatenate(drawn) >= 97).mean() < 0.2


def test_trainer_keeps_a_checkpoint_per_training_stage_and_clears_it_when_done(smoke, tmp_path, monkeypatch):
    import shutil

    import torch

    import lds.models.unet

    work = tmp_path / "work"
    shutil.copytree(smoke[0], work)  # the smoke run's finished stages; the U-Net stage runs again
    (work / "unet.done").unlink()
    real = lds.models.unet.train_unet

    def interrupted(*args, checkpoint=None, **kwargs):
        return real(*args, checkpoint=_interrupting(checkpoint.path, 2), **kwargs)

    monkeypatch.setattr(lds.models.unet, "train_unet", interrupted)
    with pytest.raises(_Interrupted):
        Trainer(TrainConfig.smoke(), work, tmp_path / "model", progress=False).run(("unet",))
    assert (work / "checkpoints" / "unet.pt").exists()
    before = torch.load(work / "checkpoints" / "unet.pt", weights_only=True)["seconds"]
    monkeypatch.undo()
    Trainer(TrainConfig.smoke(), work, tmp_path / "model", progress=False).run(("unet",))
    assert (work / "unet.done").exists() and not (work / "checkpoints" / "unet.pt").exists()
    # the stage's time counts the interrupted process's part too
    unet = json.loads((work / "unet.done").read_text())
    assert unet["seconds"] >= round(before, 1) > 0 and "timed_from_step" not in unet
    assert not any((work / "checkpoints").glob("*.pt"))  # every finished stage cleared its checkpoint


def test_recipes_are_presets_named_in_training_config(smoke):
    _, out, _ = smoke
    assert json.loads((out / "training_config.json").read_text())["recipe"] == "smoke"
    quick, full = TrainConfig.recipe_named("quick"), TrainConfig.recipe_named("full")
    assert (quick.recipe, full.recipe) == ("quick", "full") and quick == TrainConfig()
    for stage in ("clip", "autoencoder", "decoder", "unet"):  # the full budget trains every stage longer
        assert getattr(full, stage).steps > getattr(quick, stage).steps, stage
    assert quick.decoder_recon.steps == quick.unet_balance.steps == 0  # the quick recipe skips the two last stages
    assert full.decoder_recon.steps > 0 and full.unet_balance.steps > 0 and full.unet_balance.family_balance == 1.0
    assert full.unet.block_out_channels == quick.unet.block_out_channels  # same model, longer schedule
    with pytest.raises(ValueError, match="choose one of quick, full"):
        TrainConfig.recipe_named("slow")


def test_evaluation_reports_ssim_and_every_kind(smoke):
    _, out, _ = smoke
    ev = json.loads((out / "evaluation.json").read_text())
    assert 0 <= ev["uncond_ssim"] <= 1 and -1 <= ev["en_ssim"] <= 1
    kinds = {"person", "object", "hand", "symbol", "flag", "animal", "food", "face"}
    assert set(ev["en_by_kind"]) == kinds  # all eight, topped up where the uniform sample missed a kind
    assert all(v["n"] >= ev["config"]["min_per_kind"] and "ssim" in v for v in ev["en_by_kind"].values())


def test_evaluation_reports_clip_name_retrieval_and_the_card_summary(smoke):
    from lds.data.corpus import LANGUAGES
    from lds.training.evaluate import SUMMARY_ROWS, recipe_summary

    _, out, _ = smoke
    read = lambda name: json.loads((out / name).read_text())
    ev, metrics, config = read("evaluation.json"), read("metrics.json"), read("training_config.json")
    assert set(ev["clip_names"]) == set(LANGUAGES)
    assert all(v["n"] == ev["corpus_size"] and 0 <= v["top1"] <= v["top5"] <= 1 for v in ev["clip_names"].values())
    s = recipe_summary(metrics, ev, config)
    assert s["recipe"] == "smoke" and all(key in s for _, key in SUMMARY_ROWS)
    assert s["clip_en_top1"] == ev["clip_names"]["en"]["top1"]
    assert s["worst_kind_pixel_top5"] == min(v["pixel_top5"] for v in ev["en_by_kind"].values())
    # the training time leaves out the evaluation itself
    stages = sum(metrics[k]["seconds"] for k in STAGES if k != "evaluate")
    assert abs(s["training_minutes"] - stages / 60) < 0.1


def test_a_checkpoint_carries_the_stage_time_and_an_older_one_says_where_timing_began(tmp_path):
    import numpy as np
    import torch

    from lds.training.recipe import StageCheckpoint

    w, rng = {"ema": {"w": torch.zeros(2)}}, np.random.default_rng(0)
    ck = StageCheckpoint(tmp_path / "a.pt", every_seconds=600)
    ck.prior_seconds = 100.0  # as if restored from a run that had spent 100 s
    ck.save(7, w, rng, {})
    again = StageCheckpoint(tmp_path / "a.pt", every_seconds=600)
    assert again.restore(w, rng)[0] == 7
    assert again.prior_seconds >= 100.0 and again.timed_from_step == 0
    state = torch.load(tmp_path / "a.pt", weights_only=True)
    del state["seconds"], state["timed_from_step"]  # a checkpoint written before lds kept the time
    torch.save(state, tmp_path / "a.pt")
    old = StageCheckpoint(tmp_path / "a.pt", every_seconds=600)
    old.restore(w, rng)
    assert old.prior_seconds == 0.0 and old.timed_from_step == 7
