"""The book's sentences with their glued numbers filled in, to read what a re-execution changed.

The chapters paste recorded values into their prose with ``{glue:text}`name:format```. When the model is retrained
or a parameter changes, the numbers follow by themselves and the words around them may stop being true ("most",
"fails", "about half"). This module fills each glued paragraph with the values of an executed book, so that the
prose can be read as the reader will see it, and compares two executions paragraph by paragraph::

    python -m lds.book.glued _build/executed                                      # every glued paragraph
    python -m lds.book.glued _build/executed --before OLD_EXECUTED                # only those that changed

(``make book`` writes the executed chapters to ``_build/executed/notebooks``; either folder will do. Copy it
aside before re-executing to keep an OLD_EXECUTED.)

The values are formatted as myst-nb formats them (Python's format spec after the colon).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from lds.book.record import read_records

GLUE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")


def fill(text: str, records: dict) -> str:
    """``text`` with every ``{glue:text}`name:format``` replaced by the recorded value (``[name missing]`` if the
    executed notebook has no such record, ``[name: bad format]`` if the format does not apply)."""
    def one(match: re.Match) -> str:
        name, spec = match.group(1), match.group(2) or ""
        if name not in records:
            return f"[{name} missing]"
        try:
            return format(records[name], spec)
        except (TypeError, ValueError):
            return f"[{name}: bad format {spec!r}]"

    return GLUE.sub(one, text)


def glued_paragraphs(notebook: str | Path) -> list[tuple[str, str]]:
    """(paragraph as written, paragraph with the values filled in) for every markdown paragraph of an executed
    ``notebook`` that holds a glued value, in reading order."""
    nb = json.loads(Path(notebook).read_text())
    records = read_records(notebook)
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for paragraph in re.split(r"\n\s*\n", source):
            if GLUE.search(paragraph):
                out.append((paragraph, fill(paragraph, records)))
    return out


def notebooks_folder(folder: str | Path) -> Path:
    """The folder that holds the executed ``.ipynb`` files: ``folder`` itself, or its ``notebooks/`` (the
    runner's layout: ``_build/executed/notebooks``)."""
    folder = Path(folder)
    return folder / "notebooks" if not any(folder.glob("*.ipynb")) and (folder / "notebooks").is_dir() else folder


def compare(new_dir: str | Path, old_dir: str | Path | None = None) -> list[tuple[str, str | None, str]]:
    """(chapter, old filled paragraph or None, new filled paragraph) for every glued paragraph of the executed
    book in ``new_dir``; with ``old_dir``, only the paragraphs whose filled text differs (matched by the
    paragraph as written, so an edited paragraph shows as new)."""
    rows = []
    for notebook in sorted(notebooks_folder(new_dir).glob("*.ipynb")):
        old_nb = notebooks_folder(old_dir) / notebook.name if old_dir else None
        old = dict(glued_paragraphs(old_nb)) if old_nb and old_nb.exists() else {}
        for written, filled in glued_paragraphs(notebook):
            before = old.get(written)
            if old_dir is None or before != filled:
                rows.append((notebook.stem, before, filled))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lds.book.glued", description=__doc__.splitlines()[0])
    ap.add_argument("executed", help="a folder of executed chapters (the runner's output)")
    ap.add_argument("--before", help="an earlier execution's folder: print only the paragraphs that changed")
    args = ap.parse_args(argv)
    if not Path(args.executed).is_dir():
        print(f"no such folder: {args.executed} (execute the book first: make book)", file=sys.stderr)
        return 2
    if not any(notebooks_folder(args.executed).glob("*.ipynb")):
        print(f"no executed chapters in {args.executed} (make book writes them to _build/executed)", file=sys.stderr)
        return 2
    rows = compare(args.executed, args.before)
    for chapter, before, after in rows:
        print(f"== {chapter}")
        if args.before:
            print("-- before:\n" + (before if before is not None else "(no such paragraph)"))
            print("-- after:")
        print(after + "\n")
    missing = sum(after.count(" missing]") for _, _, after in rows)
    print(f"{len(rows)} glued paragraph(s){' changed' if args.before else ''}; {missing} missing value(s)",
          file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
