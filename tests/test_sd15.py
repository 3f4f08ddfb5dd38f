"""Stable Diffusion 1.5's shape: lds-mini is saved in its layout, its safety checker runs, and every
chapter executes on a random-weight folder laid out and configured like it (lds/testing.py).

The chapters run through the same runner as ``make book MODEL=...`` and ``lds rerun N --model``,
at CI sizes; where a measurement needs something SD 1.5 does not ship (lds-mini's CLIP image
tower, the discriminator, the training records), the chapter must say so, and the test checks
that it does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lds.testing import SD15_FILES, layout_differences, sd15_folder, sd15_text_encoder_keys

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "lds" / "weights" / "lds-mini"


@pytest.fixture(scope="session")
def sd15(tmp_path_factory):
    """A tiny random-weight folder with SD 1.5's layout and configurations, written once."""
    return sd15_folder(tmp_path_factory.mktemp("sd15") / "sd15-shaped")


def test_lds_mini_is_saved_in_sd15_layout():
    """The files SD 1.5's folder has, and its text-encoder tensor names (``text_model.`` prefix),
    which transformers 4.x needs: without the prefix it silently runs a random text encoder."""
    assert layout_differences(MINI) == []
    for name in SD15_FILES["tokenizer"]:
        assert (MINI / "tokenizer" / name).is_file(), name


def test_layout_check_notices_a_flattened_text_encoder(tmp_path):
    from safetensors.torch import load_file, save_file

    import shutil

    copy = tmp_path / "mini"
    shutil.copytree(MINI, copy, ignore=shutil.ignore_patterns("clip", "discriminator", "unet", "vae"))
    flat = {k.removeprefix("text_model."): v for k, v in load_file(str(copy / "text_encoder" / "model.safetensors")).items()}
    save_file(flat, str(copy / "text_encoder" / "model.safetensors"))
    (copy / "tokenizer" / "vocab.json").unlink()
    problems = layout_differences(copy)
    assert any("text_encoder keys" in p for p in problems) and "missing tokenizer/vocab.json" in problems


def test_prefixed_text_encoder_loads_every_tensor():
    """transformers 5 reads the SD 1.5 names back: the loaded weights are the file's, tensor for tensor."""
    from safetensors.torch import load_file
    from transformers import CLIPTextModel

    saved = load_file(str(MINI / "text_encoder" / "model.safetensors"))
    assert sorted(saved) == sd15_text_encoder_keys(len({k.split(".")[3] for k in saved if ".layers." in k}))
    model = CLIPTextModel.from_pretrained(str(MINI / "text_encoder"))
    state = model.state_dict()
    for key, tensor in saved.items():
        assert torch.equal(state[key.removeprefix("text_model.")].half(), tensor), key


def test_tokenizer_files_give_the_same_ids(tmp_path):
    """vocab.json + merges.txt alone (what transformers 4.x's CLIPTokenizer reads) tokenize as tokenizer.json."""
    import shutil

    from transformers import CLIPTokenizer

    for name in SD15_FILES["tokenizer"]:
        shutil.copy(MINI / "tokenizer" / name, tmp_path / name)
    prompts = ["smiling face with heart-eyes", "笑脸爱心眼 😍🍎", "Ünïcödé café, trending on ArtStation!!"]
    assert (CLIPTokenizer.from_pretrained(str(tmp_path))(prompts).input_ids
            == CLIPTokenizer.from_pretrained(str(MINI / "tokenizer"))(prompts).input_ids)


def test_sd15_folder_has_sd15_layout_and_configs(sd15):
    assert layout_differences(sd15) == []
    assert not (sd15 / "clip").exists() and not (sd15 / "training_config.json").exists()
    index = json.loads((sd15 / "model_index.json").read_text())
    assert index["scheduler"] == ["diffusers", "PNDMScheduler"] and index["requires_safety_checker"] is True
    assert index["safety_checker"] == ["stable_diffusion", "StableDiffusionSafetyChecker"]
    unet = json.loads((sd15 / "unet" / "config.json").read_text())
    assert unet["sample_size"] == 64 and unet["cross_attention_dim"] == 768 and len(unet["block_out_channels"]) == 4
    vae = json.loads((sd15 / "vae" / "config.json").read_text())
    assert vae["scaling_factor"] == 0.18215 and len(vae["block_out_channels"]) == 4
    text = json.loads((sd15 / "text_encoder" / "config.json").read_text())
    assert text["hidden_size"] == 768 and text["eos_token_id"] == 2


def test_safety_checker_runs_as_in_diffusers(sd15, caplog):
    """Loaded and run when the folder ships one; a flagged image comes back black and the receipt
    counts it; switched off, diffusers' own warning says so."""
    from lds.pipeline.loading import load_pipeline
    from lds.pipeline.receipt import receipt
    from lds.pipeline.sampling import generate

    pipe = load_pipeline(str(sd15))
    assert pipe.safety_checker is not None and pipe.feature_extractor is not None
    kept = generate(pipe, "dog face", seed=0, num_inference_steps=2, height=64, width=64)
    assert kept.nsfw_content_detected == [False] and kept.image_tensor.abs().sum() > 0
    # Every concept threshold below any cosine similarity: the checker flags everything.
    pipe.safety_checker.concept_embeds_weights.data.fill_(-2.0)
    flagged = generate(pipe, "dog face", seed=0, num_inference_steps=2, height=64, width=64)
    assert flagged.nsfw_content_detected == [True]
    assert flagged.image_tensor.abs().sum() == 0 and not np.asarray(flagged.images[0]).any()
    assert any("safety checker flagged" in n for n in flagged.notes)
    # diffusers' own pipeline, same components and settings, flags and blacks out the same image
    reference = pipe("dog face", generator=torch.Generator().manual_seed(0), num_inference_steps=2, height=64,
                     width=64, guidance_scale=7.5, output_type="np")
    assert reference.nsfw_content_detected == [True] and not reference.images[0].any()
    assert receipt(pipe)["safety_checker"] == {"present": True, "images_checked": 2, "images_flagged": 1}
    assert "Potential NSFW content was detected" in caplog.text  # diffusers' own message
    off = load_pipeline(str(sd15), safety_checker=False)
    assert off.safety_checker is None and "You have disabled the safety checker" in caplog.text
    assert receipt(off)["safety_checker"] == {"present": False}
    assert generate(off, "dog face", seed=0, num_inference_steps=2, height=64, width=64).nsfw_content_detected is None


def test_lds_mini_has_no_safety_checker(pipe):
    assert pipe.safety_checker is None
    assert receipt_of(pipe)["safety_checker"] == {"present": False}


def receipt_of(pipe):
    from lds.pipeline.receipt import receipt

    return receipt(pipe)


def test_make_book_model_builds_into_its_own_folder(capsys):
    from lds.book.runner import main, model_build_dir

    assert model_build_dir(None) == Path("_build")
    assert model_build_dir("stable-diffusion-v1-5/stable-diffusion-v1-5") == Path(
        "_build/models/stable-diffusion-v1-5-stable-diffusion-v1-5")
    assert model_build_dir(str(MINI)) == Path("_build/models/lds-mini")
    assert main(["--model", "someone/not-cached", "--no-build"]) == 2
    assert "not in the local cache" in capsys.readouterr().err


def _printed(notebook: Path) -> str:
    """Everything a chapter's cells printed or displayed as text (not its source)."""
    out = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for o in cell.get("outputs", []):
            for part in (o.get("text", ""), *(o.get("data", {}).get(k, "") for k in ("text/plain", "text/markdown"))):
                out.append("".join(part) if isinstance(part, list) else part)
    return "\n".join(out)


# What each chapter prints on SD 1.5 where it needs something SD 1.5 does not ship.
SD_BRANCHES = {
    "01_ensemble": ["this chapter is allowed to spend: counted, not timed"],
    "02_clip_filtered_web": ["ships no CLIP image tower, so lds-mini's CLIP scores the synthetic web"],
    "03_autoencoder": ["ships no discriminator"],
    "08_guidance": ["No training_config.json beside this model", "this model ships no CLIP image tower"],
    "11_model_card": ["training records found: {'metrics': False"],
}


@pytest.mark.notebooks
def test_every_chapter_runs_on_an_sd15_shaped_folder(sd15, tmp_path):
    """The whole book, on the SD-1.5-shaped folder, through ``make book MODEL=...``'s code path."""
    from test_outputs import warnings_in

    from lds.book.record import read_records
    from lds.book.runner import execute_book, load_parameter_file

    results = execute_book(tmp_path, ROOT / "tests" / "sd15_parameters.yml", root=ROOT, model=str(sd15), progress=True)
    assert len(results) >= 11 and not any(r["skipped"] for r in results)
    params = load_parameter_file(ROOT / "tests" / "sd15_parameters.yml")
    for nb in sorted((tmp_path / "notebooks").glob("*.ipynb")):
        text = _printed(nb)
        assert not warnings_in(nb), f"{nb.stem} on SD 1.5's shape: {warnings_in(nb)}"
        for expected in SD_BRANCHES.get(nb.stem, []):
            assert expected in text, f"{nb.stem} does not say {expected!r} on SD 1.5's shape"
        records = read_records(nb)
        if "receipt" in records and nb.stem in params:
            receipt = json.loads(records["receipt"]) if isinstance(records["receipt"], str) else records["receipt"]
            if "model" in receipt:
                assert receipt["model"]["location"].endswith("sd15-shaped"), nb.stem
                assert receipt["safety_checker"]["present"] is True, nb.stem
