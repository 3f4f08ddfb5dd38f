"""lds train: every stage runs, writes a standard pipeline folder and metrics, and resumes."""

import json

import pytest
from diffusers import StableDiffusionPipeline

from lds.train import STAGES, TrainConfig, Trainer


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
    import lds.unet

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(lds.unet, "train_unet", boom)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, work, out, progress=False).run()
    done_before = {s: (work / f"{s}.done").stat().st_mtime for s in STAGES if (work / f"{s}.done").exists()}
    assert set(done_before) == {"clip", "filter", "autoencoder", "latents", "decoder"}
    monkeypatch.undo()
    Trainer(cfg, work, out, progress=False).run(stages=("clip", "filter", "autoencoder", "latents", "decoder", "unet"))
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

    from lds.unet import SCHEDULE, min_snr_weights

    sched = DDPMScheduler(**SCHEDULE)
    t = torch.arange(0, 1000)
    w = min_snr_weights(sched, t, gamma=5.0)
    snr = sched.alphas_cumprod / (1 - sched.alphas_cumprod)
    assert torch.allclose(w[snr <= 5], torch.ones(int((snr <= 5).sum())))  # noisy timesteps: full weight
    assert torch.allclose(w[snr > 5], 5.0 / snr[snr > 5])  # nearly clean ones: γ / SNR < 1
    assert w[0] < 0.02 and w[-1] == 1.0 and bool((w[1:] >= w[:-1]).all())  # rises as the noise grows
