"""Every executed chapter is clean: nothing on stderr and no library warning in any cell's output.

A warning in a chapter is printed into the book in front of readers; it is fixed at its cause
(or, where the cause is not lds's, filtered in the chapter with a comment saying why), never
silenced at import time. tests/test_browser.py checks the built pages for the same.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lds.book.runner import chapters

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "executed-ci" / "notebooks"
# A Python warning category (UserWarning, RuntimeWarning, FutureWarning ...), a logger's WARNING
# line, or transformers' tokenizer warning, which names no category.
WARNING = re.compile(r"\b[A-Z]\w*Warning\b|\bWARNING\b|Token indices sequence length")

pytestmark = pytest.mark.notebooks


def warnings_in(notebook: Path) -> list[str]:
    """What a chapter wrote to stderr or printed as a warning, one entry per output."""
    nb = json.loads(Path(notebook).read_text())
    found = []
    for n, cell in enumerate((c for c in nb["cells"] if c["cell_type"] == "code"), 1):
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            plain = out.get("data", {}).get("text/plain", "")
            text += "".join(plain) if isinstance(plain, list) else plain
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                found.append(f"code cell {n}, stderr: {text[:300]}")
            elif WARNING.search(text):
                found.append(f"code cell {n}: {text[:300]}")
    return found


def test_the_scan_finds_what_it_looks_for(tmp_path):
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["x.py:3: RuntimeWarning: invalid value\n"]},
        {"output_type": "stream", "name": "stderr", "text": "progress\n"},
        {"output_type": "stream", "name": "stdout", "text": "fine\n"}]}]}
    (tmp_path / "a.ipynb").write_text(json.dumps(nb))
    assert len(warnings_in(tmp_path / "a.ipynb")) == 2


@pytest.mark.parametrize("stem", [nb.stem for nb in chapters(ROOT) if nb.parent.name == "notebooks"])
def test_chapter_prints_no_warning(executed, stem):
    executed(stem)
    found = warnings_in(EXECUTED / f"{stem}.ipynb")
    assert not found, f"{stem} shows warnings to readers: {found}"
