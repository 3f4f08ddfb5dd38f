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
    modules = sorted(f for f in (ROOT / "lds").rglob("*.py") if "weights" not in f.parts)
    assert any(f.parent.name == "book" for f in modules), "the scan should see lds/book/"
    missing = [str(f.relative_to(ROOT)) for f in modules
               if f.stem != "__init__" and f"`{f.stem}`" not in tree]
    # a subpackage is named in the tree too
    missing += [d.name for d in sorted((ROOT / "lds").iterdir())
                if (d / "__init__.py").is_file() and f"`{d.name}/`" not in tree]
    assert missing == [], f"CONTRIBUTING.md's tree leaves out: {missing}"


def test_the_model_does_not_import_the_book_machinery():
    """lds/book/ builds the book; the model's components, the instruments, the audit and the measures work
    without it (CONTRIBUTING's tree). Only the entry points above the book (cli, testing, __main__) import it."""
    import ast

    above = {"cli.py", "testing.py", "__main__.py"}
    modules = [p for p in sorted((ROOT / "lds").rglob("*.py"))
               if "book" not in p.relative_to(ROOT / "lds").parts[:1] and p.name not in above]
    assert len(modules) > 30, modules  # the walk found the package
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith(("book", "lds.book"))], path.relative_to(ROOT)
