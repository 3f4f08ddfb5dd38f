"""lds.load_pipeline: the built-in model, local folders, hub ids (offline by default), clear errors."""

import json
import time

import pytest
import torch
from diffusers import StableDiffusionPipeline

from lds.pipeline.loading import ModelNotFoundError, available_models, load_pipeline, lds_mini_path, resolve


def test_lds_mini_is_a_real_diffusers_pipeline(pipe):
    assert isinstance(pipe, StableDiffusionPipeline)
    assert type(pipe.unet).__name__ == "UNet2DConditionModel"
    assert type(pipe.vae).__name__ == "AutoencoderKL"
    assert type(pipe.text_encoder).__name__ == "CLIPTextModel"
    assert type(pipe.tokenizer).__name__ == "CLIPTokenizer"
    assert len(pipe.tokenizer) == 49408 and pipe.tokenizer.model_max_length == 77
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert pipe.unet.dtype == torch.float32 and pipe.unet.device.type == "cpu"


def test_loads_without_lds_code():
    """The shipped folder is a standard diffusers folder: from_pretrained alone loads it."""
    p = StableDiffusionPipeline.from_pretrained(str(lds_mini_path()), local_files_only=True)
    assert p.unet.config.sample_size * p.vae_scale_factor == 32


def test_local_folder(pipe):
    kind, location = resolve(str(lds_mini_path()))
    assert kind == "folder" and location == str(lds_mini_path().resolve())


def test_unknown_model_error_says_what_to_do():
    with pytest.raises(ModelNotFoundError, match="Unknown model 'no such model'.*lds info"):
        load_pipeline("no such model")


def test_folder_without_model_index(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a diffusers pipeline folder"):
        load_pipeline(str(tmp_path))


def test_uncached_hub_id_fails_fast_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("LDS_ALLOW_DOWNLOAD", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="not in the local cache.*allow_download=True"):
        load_pipeline("stable-diffusion-v1-5/stable-diffusion-v1-5")
    assert time.perf_counter() - t0 < 5, "must not retry the network"


def test_download_allowed_by_environment(monkeypatch, tmp_path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("LDS_ALLOW_DOWNLOAD", "1")
    assert resolve("someone/some-model") == ("hub", "someone/some-model")


def test_hub_cache_is_used_offline(monkeypatch, tmp_path):
    """A model in the Hugging Face cache layout resolves to that snapshot without the network."""
    import shutil

    snap = tmp_path / "models--someone--mini" / "snapshots" / "abc123"
    shutil.copytree(lds_mini_path(), snap)
    (tmp_path / "models--someone--mini" / "refs").mkdir()
    (tmp_path / "models--someone--mini" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    kind, location = resolve("someone/mini")
    assert kind == "hub-cache" and location.endswith("abc123")


def test_corrupted_weights_give_a_clear_error(tmp_path):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(lds_mini_path(), folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: 1000])  # truncated
    with pytest.raises(ModelNotFoundError, match="incomplete or corrupted"):
        load_pipeline(str(folder))


def test_available_models_lists_lds_mini():
    names = {m["name"]: m for m in available_models()}
    assert names["lds-mini"]["available"]


def test_model_index_has_no_pickled_weights():
    files = [p.name for p in lds_mini_path().rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
    index = json.loads((lds_mini_path() / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
