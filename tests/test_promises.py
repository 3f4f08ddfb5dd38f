"""Promises the README, the CLI's help and CONTRIBUTING make, each checked: downloads only when asked,
LDS_DEVICE / LDS_DTYPE / LDS_THREADS, `lds train --stage` through the command line, and a notebook that
never writes outside its folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import one_chapter_book, writes_stay_in

ROOT = Path(__file__).resolve().parents[1]


# -- --allow-download / allow_download=True, without a network -------------------------------------------

class _Called(Exception):
    pass


@pytest.fixture
def hub(monkeypatch):
    """The hub as lds sees it: nothing cached, and a from_pretrained that records its call instead of
    downloading."""
    import diffusers
    import huggingface_hub

    calls = []

    def from_pretrained(name, **kwargs):
        calls.append((name, kwargs))
        raise _Called(name)

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_pretrained", staticmethod(from_pretrained))
    monkeypatch.delenv("LDS_ALLOW_DOWNLOAD", raising=False)
    return calls


def test_allow_download_reaches_the_hub_only_when_asked(hub):
    from lds.pipeline.loading import ModelNotFoundError, load_pipeline, resolve

    with pytest.raises(ModelNotFoundError, match="downloads are off"):
        load_pipeline("someone/a-model")
    assert hub == []
    assert resolve("someone/a-model", allow_download=True) == ("hub", "someone/a-model")
    with pytest.raises(_Called):
        load_pipeline("someone/a-model", allow_download=True)
    name, kwargs = hub[-1]
    assert name == "someone/a-model" and kwargs["local_files_only"] is False


def test_the_cli_flag_allow_download(hub, tmp_path, capsys):
    from lds.cli import main

    assert main(["generate", "frog", "--model", "someone/a-model", "--out", str(tmp_path / "a.png")]) == 2
    assert "not in the local cache" in capsys.readouterr().err and hub == []
    with pytest.raises(_Called):
        main(["generate", "frog", "--model", "someone/a-model", "--allow-download", "--out", str(tmp_path / "b.png")])
    assert hub[-1][0] == "someone/a-model" and hub[-1][1]["local_files_only"] is False


# -- LDS_DEVICE, LDS_DTYPE, LDS_THREADS ------------------------------------------------------------------

def test_lds_dtype_and_lds_device_reach_every_component(monkeypatch):
    from lds.pipeline.loading import load_pipeline

    monkeypatch.setenv("LDS_DTYPE", "bfloat16")
    monkeypatch.setenv("LDS_DEVICE", "meta")  # a device every machine has: shapes without storage
    pipe = load_pipeline("lds-mini")
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        p = next(part.parameters())
        assert p.dtype == torch.bfloat16 and p.device.type == "meta", type(part).__name__
    monkeypatch.setenv("LDS_DTYPE", "float64")
    with pytest.raises(ValueError, match="LDS_DTYPE='float64': use float32, float16 or bfloat16"):
        load_pipeline("lds-mini")


def test_lds_threads_sets_torch_threads(monkeypatch):
    from lds.training.recipe import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LDS_THREADS", "1")
        set_threads()
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("LDS_THREADS", "2")
        set_threads()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- lds train --stage, through the command line ---------------------------------------------------------

def test_lds_train_stage_resumes_through_the_cli(tmp_path, capsys):
    from lds.cli import main

    work, out = tmp_path / "work", tmp_path / "model"
    base = ["train", "--smoke", "--workdir", str(work), "--out", str(out)]
    assert main(base + ["--stage", "clip"]) == 0
    assert (work / "clip.done").exists() and not (work / "filter.done").exists()
    clip_done = (work / "clip.done").stat().st_mtime_ns
    assert main(base + ["--stage", "filter"]) == 0  # reads the CLIP the first call trained
    assert (work / "filter.done").exists()
    assert (work / "clip.done").stat().st_mtime_ns == clip_done, "a stage not named was redone"
    filter_done = (work / "filter.done").stat().st_mtime_ns
    assert main(base + ["--stage", "filter"]) == 0  # a stage named again runs again
    assert (work / "filter.done").stat().st_mtime_ns != filter_done
    assert (work / "clip.done").stat().st_mtime_ns == clip_done
    assert main(base + ["--stage", "nonsense"]) == 2
    assert "unknown stage(s) ['nonsense']" in capsys.readouterr().err


# -- a notebook never writes outside its folder ----------------------------------------------------------
# Every chapter the suite executes (the ``executed`` fixture) runs inside ``writes_stay_in``; this is its
# positive control.

def test_a_write_outside_the_folder_is_caught(tmp_path):
    from lds.book.runner import execute

    book = one_chapter_book(tmp_path / "book", "01_writer", "name = 'x'  # a file name",
                            ["from pathlib import Path\nPath(name).write_text('written')"])
    nb = book / "notebooks" / "01_writer.ipynb"
    inside = tmp_path / "book" / "out" / "notebooks"
    inside.mkdir(parents=True)
    with writes_stay_in(inside, root=tmp_path / "book"):
        execute(nb, inside / nb.name, {"name": "kept.txt"}, progress=False)
    with pytest.raises(AssertionError, match="written outside"):
        with writes_stay_in(inside, root=tmp_path / "book"):
            execute(nb, inside / nb.name, {"name": "../escaped.txt"}, progress=False, force=True)
