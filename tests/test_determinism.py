"""Same model, prompt, seed and parameters on the same machine: the same PNG, by every route."""

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import one_chapter_book

from lds.cli import main
from lds.book.rerun import rerun


def _book_generating(tmp_path: Path) -> Path:
    """A one-chapter book whose chapter generates with lds and shows the image (as chapters do)."""
    return one_chapter_book(tmp_path, "01_gen", 'model = "lds-mini"\nprompt = "grinning face"\nseed = 3', [
        "import lds\npipe = lds.load_pipeline(model)\n"
        "out = lds.generate(pipe, prompt, seed=seed, num_inference_steps=6, guidance_scale=7.5)\nout.images[0]"])


def _png_outputs(ipynb: Path) -> list[bytes]:
    nb = json.loads(ipynb.read_text())
    return [base64.b64decode("".join(o["data"]["image/png"])) for c in nb["cells"] for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]


def test_rerun_cli_and_api_agree_bit_for_bit(tmp_path, pipe):
    book = _book_generating(tmp_path / "book")
    a = rerun("gen", {"prompt": "grinning face", "seed": "3"}, out=tmp_path / "a", root=book, progress=False)
    b = rerun("gen", {"prompt": "grinning face", "seed": "3"}, out=tmp_path / "b", root=book, progress=False)
    png_a, png_b = _png_outputs(a / "01_gen.ipynb"), _png_outputs(b / "01_gen.ipynb")
    assert png_a and png_a == png_b, "two reruns give byte-identical PNGs"
    assert main(["generate", "grinning face", "--seed", "3", "--steps", "6", "--guidance", "7.5",
                 "--out", str(tmp_path / "cli.png")]) == 0
    from lds.pipeline.sampling import generate

    api = np.asarray(generate(pipe, "grinning face", seed=3, num_inference_steps=6, guidance_scale=7.5).images[0])
    cli = np.asarray(Image.open(tmp_path / "cli.png").convert("RGB"))
    notebook = np.asarray(Image.open(io.BytesIO(png_a[0])).convert("RGB"))
    assert np.array_equal(api, cli) and np.array_equal(api, notebook)
