"""Where a model came from: lds.pipeline.loading.model_source, for lds's pipelines and plain diffusers ones,
and loading that stays offline through ``local_files_only`` (chapter 1 prints the source)."""

import shutil
import socket
import time
from pathlib import Path

import pytest
from diffusers import StableDiffusionPipeline

from lds.pipeline.loading import BUILTIN, ModelNotFoundError, ModelSource, load_pipeline, lds_mini_path, model_source

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plain():
    """lds-mini loaded by diffusers alone, without lds."""
    return StableDiffusionPipeline.from_pretrained(str(lds_mini_path()), local_files_only=True)


def test_load_pipeline_records_what_was_asked_for(pipe):
    src = model_source(pipe)
    assert isinstance(src, ModelSource)
    assert src == ModelSource("lds-mini", "builtin", str(BUILTIN["lds-mini"]))
    assert src.folder == BUILTIN["lds-mini"] and not hasattr(pipe, "lds_source")


def test_plain_diffusers_pipeline_is_recognised(pipe, plain):
    """diffusers' own record (name_or_path) is enough: lds-mini loaded without lds is still lds-mini."""
    assert model_source(plain) == model_source(pipe)


def test_other_folder_and_pipeline_assembled_in_memory(tmp_path, plain):
    folder = tmp_path / "copy"
    shutil.copytree(lds_mini_path(), folder)
    copy = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    assert model_source(copy) == ModelSource(str(folder), "folder", str(folder.resolve()))
    loose = StableDiffusionPipeline(**plain.components)
    src = model_source(loose)
    assert src.kind == "in memory" and src.folder is None and "StableDiffusionPipeline" in src.name


def test_instruments_work_on_a_plain_pipeline(pipe, plain):
    """Every instrument that asks where the model came from gives the same answer for both."""
    from lds.instruments import ensemble
    from lds.instruments import token_stats
    from lds.pipeline import receipt

    assert model_source(plain).training_config() == model_source(pipe).training_config() is not None
    assert ensemble.is_lds_mini(plain) and ensemble.is_lds_mini(pipe)
    assert receipt.receipt(plain)["model"] == receipt.receipt(pipe)["model"] == \
        {"name": "lds-mini", "kind": "builtin", "location": "lds/weights/lds-mini"}
    assert token_stats.initial_token_embedding(plain).shape == plain.text_encoder.get_input_embeddings().weight.shape
    loose = StableDiffusionPipeline(**plain.components)  # no folder: the same instruments say "nothing to read"
    assert model_source(loose).training_config() is None and not ensemble.is_lds_mini(loose)
    assert token_stats.initial_token_embedding(loose) is None
    assert receipt.receipt(loose)["model"]["kind"] == "in memory"


def test_no_private_attribute_left():
    """Provenance is asked through model_source only: nothing reads or writes an attribute on the pipeline."""
    files = [*(ROOT / "lds").rglob("*.py"), *(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "benchmarks").glob("*.py"),
             *(ROOT / "tests").glob("*.py")]
    offenders = [str(f.relative_to(ROOT)) for f in files
                 if f != Path(__file__).resolve() and "lds_source" in f.read_text(encoding="utf-8")]
    assert offenders == []


@pytest.fixture
def partial_hub_cache(monkeypatch, tmp_path):
    """A hub id in the cache layout with only model_index.json, and huggingface_hub told it may go online.

    huggingface_hub reads HF_HUB_OFFLINE once, at import (the test session sets it); here it is
    switched off, so only ``local_files_only`` stands between the load and the network. Its
    user-agent registry (one request per process, capped at 3 s) is given as already fetched.
    """
    import huggingface_hub.constants
    import huggingface_hub.utils._detect_agent as detect_agent

    snap = tmp_path / "models--someone--partial" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    shutil.copy(lds_mini_path() / "model_index.json", snap)
    (tmp_path / "models--someone--partial" / "refs").mkdir()
    (tmp_path / "models--someone--partial" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(detect_agent, "_registry", detect_agent._EMPTY_REGISTRY)
    monkeypatch.delenv("LDS_ALLOW_DOWNLOAD", raising=False)
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"test: no network ({address})")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    return attempts


def test_cached_hub_id_loads_with_local_files_only(partial_hub_cache):
    """An incomplete cached hub id fails at once with what to do, and nothing is fetched to complete it."""
    from diffusers import StableDiffusionPipeline  # noqa: F401  (imported before the clock starts)

    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="cached copy of 'someone/partial'.*incomplete.*allow_download=True"):
        load_pipeline("someone/partial")
    assert partial_hub_cache == [], "the load tried the network"
    assert time.perf_counter() - t0 < 5
