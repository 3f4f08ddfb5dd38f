"""The reproducibility receipt at the end of every chapter and every `lds rerun`."""

from __future__ import annotations

from lds.pipeline.receipt import receipt


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip("."), value


def show_receipt(pipe=None, parameters: dict | None = None, seed: int | None = None) -> dict:
    """Print the receipt in a notebook, record it (``receipt``) for ``lds rerun``, and return it."""
    import json

    from lds.book.record import record

    r = receipt(pipe, parameters, seed)
    rows = list(_flatten(r))
    width = max(len(k) for k, _ in rows)
    print("Reproducibility receipt")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    record("receipt", json.dumps(r, ensure_ascii=False, default=str))
    return r
