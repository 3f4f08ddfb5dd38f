"""Live dials: the chapters that offer one show a real ipywidgets slider when `interactive=True`."""

import json
from pathlib import Path

import numpy as np
import pytest

from lds.book.dials import bar_image, image_dial
from lds.book.runner import execute, find_chapter, load_parameter_file

ROOT = Path(__file__).resolve().parents[1]


def test_bar_image_and_dial():
    frames = [bar_image(["en", "ar"], [0.8, v], "t") for v in (0.2, 0.5)]
    assert frames[0].shape[-1] == 3 and 0 <= frames[0].min() and frames[0].max() <= 1
    assert not np.array_equal(frames[0], frames[1])
    box = image_dial(frames, [0, 1], "threshold", captions=["strict", "lenient"])
    assert type(box).__name__ == "VBox"
    with pytest.raises(ValueError):
        image_dial(frames, [0, 1, 2])


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", ["02_clip_filtered_web", "07_denoising", "08_guidance"])
def test_chapter_dials_render_in_jupyter(tmp_path, stem):
    nb = find_chapter(stem, ROOT)
    params = {**load_parameter_file(ROOT / "tests" / "ci_parameters").get(stem, {}), "interactive": True}
    out = tmp_path / nb.name
    execute(nb, out, params, progress=False)
    outputs = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), \
        f"{stem} shows no widget with interactive=True"
