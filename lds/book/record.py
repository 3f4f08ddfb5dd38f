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
# bears on it (lds.book.claims.INTERPRETIVE); no computation gives it another verdict.
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


def claim(number: int, *, lds_mini: str, sd15: str, verdict: str, cell: str, note: str = "", test: str = "",
          threshold: str = "", counts: str = "") -> dict:
    """Record the chapter's finding on claim ``number`` of the ledger (lds.book.claims.CLAIMS).

    ``test`` says what was measured, ``threshold`` what value the verdict turns on and why (what would
    count as the claim failing), ``counts`` how many images, seeds and prompts the finding rests on.
    The ledger (notebooks/10_claims) shows them in their own column, so a reader can check the verdict
    against its own numbers.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    row = {"number": int(number), "lds_mini": str(lds_mini), "sd15": str(sd15), "verdict": verdict,
           "cell": cell, "note": note, "test": str(test), "threshold": str(threshold), "counts": str(counts)}
    from myst_nb import glue

    glue(f"{CLAIM_PREFIX}{number}", json.dumps(row, ensure_ascii=False), display=False)
    return row


def margin_verdict(value: float, threshold: float, margin: float, *, above: bool = True) -> tuple[str, str]:
    """A verdict from a measured ``value`` against ``threshold``, with a hair's ``margin`` stated.

    ``above=True``: the claim holds when ``value > threshold`` (``above=False``: when it is below).
    Cleared by more than ``margin``: ``"holds"``. Cleared by ``margin`` or less: ``"holds with a
    qualifier"``, and the qualifier says it held by a hair. Not cleared: ``"does not hold"`` (with
    "missed by a hair" when within the margin). Returns ``(verdict, qualifier)``; the qualifier is
    "" when the value is clear of the margin. Used by the chapters' claim cells (chapters 2, 7, 8).
    """
    value, threshold, margin = float(value), float(threshold), abs(float(margin))
    clearance = (value - threshold) if above else (threshold - value)
    side = ">" if above else "<"
    if clearance > margin:
        return "holds", ""
    if clearance > 0:
        return "holds with a qualifier", (f"by a hair: {value:.3g} against the threshold {side} {threshold:g}, "
                                          f"within the stated margin of {margin:g}")
    if clearance > -margin:
        return "does not hold", (f"missed by a hair: {value:.3g} against the threshold {side} {threshold:g} "
                                 f"(margin {margin:g})")
    return "does not hold", ""


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
