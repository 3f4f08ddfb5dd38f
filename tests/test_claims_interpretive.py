"""The interpretive claims in the ledger (lds.book.claims.INTERPRETIVE, notebooks/10_claims.ipynb)."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import pytest

from lds.book.claims import CLAIMS, INTERPRETIVE, INTERPRETIVE_VERDICT, interpretive_evidence, interpretive_html
from lds.book.record import VERDICTS

ROOT = Path(__file__).resolve().parents[1]
# Not shipped with the book: it sits beside the checkout (../shared/paper/), on CI too; LDS_PAPER overrides.
PAPER = Path(os.environ.get("LDS_PAPER") or ROOT.parent / "shared" / "paper" / "the-market-in-the-model.txt")


def _notebook(path: Path, records: dict) -> None:
    outputs = [{"output_type": "display_data", "metadata": {"scrapbook": {"name": k, "mime_prefix": ""}},
                "data": {"text/plain": repr(v)}} for k, v in records.items()]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1, "source": "",
                     "outputs": outputs}]}
    path.write_text(json.dumps(nb))


def test_registry_is_well_formed():
    assert INTERPRETIVE_VERDICT in VERDICTS
    assert not set(INTERPRETIVE) & set(CLAIMS), "an interpretive claim reuses a technical claim's number"
    assert min(INTERPRETIVE) == max(CLAIMS) + 1
    toc = (ROOT / "_toc.yml").read_text()
    for number, (section, quote, evidence, would) in INTERPRETIVE.items():
        assert section and quote and would, number
        assert len(quote.split()) <= 25, number
        for chapter, name, shows in evidence:
            assert f"notebooks/{chapter}" in toc, (number, chapter)
            assert shows
            # the record exists: the chapter calls record("name", ...)
            source = (ROOT / "notebooks" / f"{chapter}.ipynb").read_text()
            assert f'record(\\"{name}\\"' in source, (number, chapter, name)
    quotes = " ".join(q for _, q, _, _ in INTERPRETIVE.values())
    for phrase in ("form of a market", "sets a position", "train users to a vocabulary", "neural economy"):
        assert phrase in quotes, phrase


@pytest.mark.skipif(not PAPER.exists(), reason="the paper's text is not on this machine")
def test_quotations_are_verbatim():
    paper = PAPER.read_text()
    for number, (_, quote, _, _) in INTERPRETIVE.items():
        assert quote in paper, f"interpretive claim {number} is not verbatim: {quote!r}"


def test_evidence_reads_this_runs_records(tmp_path):
    _notebook(tmp_path / "02_clip_filtered_web.ipynb", {"near_pair": {"a": "dog face", "image_cosine": 0.875},
                                                         "far_pair": {"a": "dog face", "image_cosine": 0.56}})
    evidence = interpretive_evidence(tmp_path)
    assert sorted(evidence) == sorted(INTERPRETIVE)
    rows = {(r["chapter"], r["record"]): r["value"] for r in evidence[27]}
    assert rows[("02_clip_filtered_web", "near_pair")]["image_cosine"] == 0.875
    assert rows[("00_framework", "neighbour_cosines")] is None  # chapter 0 not executed here
    page = interpretive_html(evidence)
    assert page.count("<tr") == 1 + len(INTERPRETIVE)
    assert page.count(f"<strong>{INTERPRETIVE_VERDICT}</strong>") == len(INTERPRETIVE)
    assert "0.875" in page and "not recorded in this run" in page
    assert 'href="02_clip_filtered_web.html"' in page
    for _, quote, _, _ in INTERPRETIVE.values():
        assert f"“{html.escape(quote)}”" in page


def test_ledger_notebook_shows_them():
    nb = json.loads((ROOT / "notebooks" / "10_claims.ipynb").read_text())
    source = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert "show_interpretive(executed_dir)" in source
    assert re.search(r"^## The paper's interpretive claims", source, flags=re.M)
