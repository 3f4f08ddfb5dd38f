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
