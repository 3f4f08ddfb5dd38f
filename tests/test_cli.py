"""The lds command line: info, generate (reproducible, clear errors), chapters, train."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lds.cli import main

ROOT = Path(__file__).resolve().parents[1]


def lds(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lds", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_info_lists_models(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "lds-mini" in out and "diffusers" in out and "offline by default" in out


def test_generate_writes_a_reproducible_png(tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["generate", "grinning face", "--seed", "3", "--steps", "6", "--out", str(a)]) == 0
    assert main(["generate", "grinning face", "--seed", "3", "--steps", "6", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    from PIL import Image

    params = json.loads(Image.open(a).text["parameters"])
    assert params["seed"] == 3 and params["prompt"] == "grinning face" and params["model"] == "lds-mini"


def test_generate_matches_python_api(tmp_path, pipe):

    from lds.pipeline.sampling import generate

    out = tmp_path / "x.png"
    assert main(["generate", "red apple", "--seed", "5", "--steps", "6", "--guidance", "4", "--out", str(out)]) == 0
    from PIL import Image

    api = generate(pipe, "red apple", seed=5, num_inference_steps=6, guidance_scale=4.0).images[0]
    import numpy as np

    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(api))


def test_generate_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "a.png"
    out.write_bytes(b"keep me")
    assert main(["generate", "frog", "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert "exists" in capsys.readouterr().err


def test_generate_unwritable_folder(tmp_path, capsys):
    assert main(["generate", "frog", "--out", str(tmp_path / "missing" / "a.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--model", "nonexistent-model"], "Unknown model"),
    (["--guidance", "nan"], "guidance_scale"),
    (["--steps", "0"], "num_inference_steps"),
    (["--height", "30"], "cannot be generated"),
])
def test_generate_errors(tmp_path, capsys, args, message):
    assert main(["generate", "frog", "--out", str(tmp_path / "a.png"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_uncached_hub_id_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("LDS_ALLOW_DOWNLOAD", raising=False)
    assert main(["generate", "frog", "--model", "stable-diffusion-v1-5/stable-diffusion-v1-5",
                 "--out", str(tmp_path / "a.png")]) == 2
    assert "not in the local cache" in capsys.readouterr().err


def test_python_dash_m_and_help_are_cheap():
    r = lds("--help")
    assert r.returncode == 0 and "generate" in r.stdout
    r = subprocess.run([sys.executable, "-c", "import lds, sys; print('torch' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "False", "importing lds must not import torch"


def test_chapters_lists_parameters(capsys):
    assert main(["chapters"]) == 0
    out = capsys.readouterr().out
    assert "05_tokenization" in out and "model" in out and "'lds-mini'" in out
