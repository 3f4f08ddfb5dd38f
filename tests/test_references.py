"""Every reference to a test in the package's docstrings and the project's pages names a file that
exists (and, written as ``tests/file.py::name``, a test in it): a docstring that cites a test is a claim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"tests/[\w./-]+?\.py(?:::(\w+))?")


def _sources():
    yield from (ROOT / "lds").rglob("*.py")
    yield from (ROOT / "benchmarks").rglob("*.py")
    yield from (ROOT / "book").rglob("*.py")
    yield from (ROOT / "book").glob("*.md")
    yield from (ROOT / "notebooks").glob("*.ipynb")
    yield from (ROOT / f for f in ("README.md", "CONTRIBUTING.md", "Makefile"))


def test_every_test_reference_resolves():
    found, broken = 0, []
    for f in _sources():
        if not f.is_file():
            continue
        for m in REFERENCE.finditer(f.read_text(encoding="utf-8")):
            found += 1
            path, name = m.group(0).split("::")[0], m.group(1)
            target = ROOT / path
            if not target.is_file():
                broken.append(f"{f.relative_to(ROOT)}: {m.group(0)} (no such file)")
            elif name and not re.search(rf"^(async )?def {name}\b", target.read_text(encoding="utf-8"), re.M):
                broken.append(f"{f.relative_to(ROOT)}: {m.group(0)} (no such test)")
    assert found >= 4, "the scan found almost nothing: has the package moved?"
    assert broken == [], "\n".join(broken)


def test_contributing_tree_lists_every_module():
    """CONTRIBUTING.md's tree names every module of the package (a new module is added there too)."""
    tree = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    tree = tree[tree.index("## The tree"):tree.index("## A chapter notebook")]
    missing = [f.stem for f in sorted((ROOT / "lds").glob("*.py"))
               if f.stem != "__init__" and f"`{f.stem}`" not in tree]
    assert missing == [], f"CONTRIBUTING.md's tree leaves out: {missing}"
