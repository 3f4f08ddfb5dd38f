"""Recording a chapter's key numbers, so the book can show them and the tests can assert them.

Every chapter calls :func:`record` for the numbers its argument rests on and :func:`claim` for the
paper's claims it checks (the claims ledger collects those). Both go through myst-nb's ``glue``,
so the book can paste them into prose with ``{glue:text}`name``` and :func:`read_records` can read
them back from an executed notebook (each chapter's test does, through the ``executed`` fixture in
tests/conftest.py).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

CLAIM_PREFIX = "claim:"
# "interpretive": one of the paper's arguments about value, listed in the ledger with the evidence that
# bears on it (lds.claims.INTERPRETIVE); no computation gives it another verdict.
# "not testable on lds-mini": the claim as the paper states it rests on something lds-mini never
# learned (a token absent from its training captions, photographs of people); the chapter names the
# Stable Diffusion 1.5 cell that would test it and what result would support or refute it.
VERDICTS = ("holds", "holds with a qualifier", "does not hold", "not computational", "not testable on lds-mini",
            "interpretive")


def record(name: str, value, display: bool = False):
    """Record ``value`` (a number, string, list or dict of those) under ``name``."""
    from myst_nb import glue

    if hasattr(value, "item"):  # numpy / torch scalars
        value = value.item()
    glue(name, value, display=display)
    return value


def claim(number: int, *, lds_mini: str, sd15: str, verdict: str, cell: str, note: str = "") -> dict:
    """Record the chapter's finding on claim ``number`` of the ledger (lds.claims.CLAIMS)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    row = {"number": int(number), "lds_mini": str(lds_mini), "sd15": str(sd15), "verdict": verdict,
           "cell": cell, "note": note}
    from myst_nb import glue

    glue(f"{CLAIM_PREFIX}{number}", json.dumps(row, ensure_ascii=False), display=False)
    return row


def read_records(notebook: str | Path) -> dict:
    """Every recorded value in an executed notebook, by name."""
    nb = json.loads(Path(notebook).read_text())
    out = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            data = o.get("data", {})
            prefix = meta.get("mime_prefix", "")
            text = data.get(f"{prefix}text/plain", data.get("text/plain", ""))
            text = "".join(text) if isinstance(text, list) else text
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
            if meta["name"].startswith(CLAIM_PREFIX) and isinstance(value, str):
                value = json.loads(value)
            out[meta["name"]] = value
    return out
