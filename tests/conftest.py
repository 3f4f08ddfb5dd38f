"""Shared fixtures. Chapters execute once per session (papermill, CI-sized parameters from
tests/ci_parameters/<chapter>.yml) into _build/executed-ci; tests read their recorded numbers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "executed-ci"
CI_PARAMETERS = ROOT / "tests" / "ci_parameters"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def executed():
    """``executed("05_tokenization")`` -> the chapter's records, executing it (once) if needed."""
    from lds.record import read_records
    from lds.runner import execute, find_chapter, load_parameter_file

    params = load_parameter_file(CI_PARAMETERS)
    cache = {}

    def run(stem: str) -> dict:
        if stem not in cache:
            nb = find_chapter(stem, ROOT)
            out = EXECUTED / "notebooks" / nb.name
            execute(nb, out, params.get(nb.stem, {}), progress=False)
            cache[stem] = read_records(out)
        return cache[stem]

    return run


@pytest.fixture(scope="session")
def pipe():
    """lds-mini, loaded once."""
    from lds.pipeline import load_pipeline

    return load_pipeline("lds-mini")


def one_chapter_book(folder: Path, stem: str, parameters: str, cells: list[str]) -> Path:
    """A book with the real layout (``_toc.yml``, ``book/``, ``notebooks/``) and one chapter:
    a cell tagged ``parameters`` holding ``parameters``, then one code cell per entry of ``cells``."""
    import nbformat

    (folder / "notebooks").mkdir(parents=True)
    (folder / "book").mkdir()
    (folder / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/{stem}\n")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {stem}"), params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "notebooks" / f"{stem}.ipynb"))
    return folder
