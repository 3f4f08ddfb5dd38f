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
# "holds in part": the claim has parts (two statements joined, a mechanism and its manner, ...) and by the
# chapter's own tests some hold and some do not; computed by :func:`parts_verdict` from the parts, never
# chosen by hand, and the ledger says which part holds. A part true by construction (a formula, an algorithm's
# rule) is shown beside them and does not count. A failed part is never absorbed into a qualifier:
# "holds with a qualifier" is for a claim that holds once a convention or scale is stated, or by a hair.
VERDICTS = ("holds", "holds in part", "holds with a qualifier", "does not hold", "not computational",
            "not testable on lds-mini", "interpretive")
PART_VERDICTS = ("holds", "holds in part", "does not hold")  # what :func:`parts_verdict` can give


def record(name: str, value, display: bool = False):
    """Record ``value`` (a number, string, list or dict of those) under ``name``."""
    from myst_nb import glue

    if hasattr(value, "item"):  # numpy / torch scalars
        value = value.item()
    glue(name, value, display=display)
    return value


def word(name: str, *cases: tuple[bool, str], otherwise: str) -> str:
    """Record the word the prose uses for a number, computed from it: the first ``(condition, word)`` whose
    condition holds, else ``otherwise``. ``name`` must end in ``_word``; the prose pastes it with
    ``{glue:text}`name```, so a comparative ("falls", "about as rarely as") follows its number when the
    number moves, in the book and in a reader's rerun (tests/test_words.py checks the prose for such words).
    """
    if not name.endswith("_word"):
        raise ValueError(f"a computed word's name ends in '_word' (tests/test_words.py looks for it), got {name!r}")
    chosen = next((w for condition, w in cases if condition), otherwise)
    record(name, chosen)
    return chosen


def part(text: str, holds, evidence: str, by_construction: bool = False) -> dict:
    """One part of a claim: what it says, whether the chapter's test finds it (a bool from recorded values), and
    the number that decides it. For :func:`claim`'s ``parts``.

    ``by_construction``: the part is true by a formula or an algorithm's definition (guidance's line, BPE's merge
    rule), so what the chapter computes checks the code, not the model. The ledger marks it so, and
    :func:`parts_verdict` does not count it where the claim has a measured part."""
    return {"part": str(text), "holds": bool(holds), "evidence": str(evidence), "by_construction": bool(by_construction)}


def parts_verdict(parts: list[dict]) -> str:
    """The verdict of a claim made of ``parts`` (:func:`part`): every part holds, "holds"; none, "does not hold";
    some and not others, "holds in part".

    A part true by construction (``by_construction``) is context, not evidence: where the claim has a measured part,
    only the measured parts decide, so that a formula's identity cannot turn a failed measurement into "holds in
    part". A claim all of whose parts are by construction is decided by them."""
    if not parts:
        raise ValueError("a claim checked in parts needs at least one part")
    measured = [p for p in parts if not p.get("by_construction")]
    held = [bool(p["holds"]) for p in (measured or parts)]
    return "holds" if all(held) else "does not hold" if not any(held) else "holds in part"


def claim(number: int, *, lds_mini: str, sd15: str, verdict: str | None = None, cell: str, note: str = "",
          test: str = "", threshold: str = "", counts: str = "", parts: list[dict] | None = None) -> dict:
    """Record the chapter's finding on claim ``number`` of the ledger (lds.book.claims.CLAIMS).

    ``test`` says what was measured, ``threshold`` what value the verdict turns on and why (what would
    count as the claim failing), ``counts`` how many images, seeds and prompts the finding rests on.
    The ledger (notebooks/10_claims) shows them in their own column, so a reader can check the verdict
    against its own numbers.

    ``parts`` (a list of :func:`part`): a claim of several parts gets its verdict from them
    (:func:`parts_verdict`); ``verdict`` may then be left out, and if given must be the same, and a claim
    with a failed part cannot be recorded as "holds with a qualifier" (a verdict is never rescued by its
    easier half).
    """
    if parts:
        computed = parts_verdict(parts)
        # a qualifier may narrow a claim whose every measured part holds (a statement of it left untested, said in the
        # note), never one with a failed part
        if verdict == "holds with a qualifier" and computed == "holds":
            computed = verdict
        if verdict is not None and verdict != computed:
            raise ValueError(f"claim {number}: its parts give {computed!r} "
                             f"({'; '.join(('holds: ' if p['holds'] else 'fails: ') + p['part'] for p in parts)}), "
                             f"not {verdict!r}")
        verdict = computed
    if verdict is None:
        raise ValueError(f"claim {number}: give a verdict, or the parts it is computed from")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    row = {"number": int(number), "lds_mini": str(lds_mini), "sd15": str(sd15), "verdict": verdict,
           "cell": cell, "note": note, "test": str(test), "threshold": str(threshold), "counts": str(counts),
           "parts": [part(p["part"], p["holds"], p["evidence"], p.get("by_construction", False)) for p in parts or []]}
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
