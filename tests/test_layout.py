"""The package's tree is its architecture (CONTRIBUTING, "The tree"): this keeps the tree and the import
direction true.

Every ``import`` in ``lds/`` (at module level or inside a function: both are dependencies a reader must
follow) is read with ``ast``. A module may import its own subpackage and the kinds below its own; never a
kind above it, and no chain of imports may come back to where it started.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lds

ROOT = Path(lds.__file__).parent

# Each kind's rank: a module may import modules of its own subpackage or of a strictly lower rank.
RANKS = {
    "lds.measures": 0,     # measures of images: nothing of lds
    "lds.data": 0,         # the corpus, the synthetic web and its CLIP filter
    "lds.settings": 0,     # values typed as text (KEY=VALUE): nothing of lds
    "lds.models": 1,       # the networks and their training loops
    "lds.pipeline": 2,     # loading, the sampling loop, guidance, attention recording, safety
    "lds.training": 3,     # the recipe and the model card's evaluation
    "lds.instruments": 4,  # what the chapters measure and draw
    "lds.audit": 5,        # audits at scale
    "lds.web": 5,          # the pipeline exported for the browser
    "lds.book": 6,         # the book's machinery
    "lds.cli": 7, "lds.testing": 7, "lds": 7, "lds.__main__": 8,
}
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py", "measures.py", "settings.py", "testing.py"}
SUBPACKAGES = {"models", "pipeline", "data", "training", "instruments", "audit", "web", "book", "weights"}


def module_name(path: Path) -> str:
    parts = ("lds",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kind(module: str) -> str:
    """The entry of RANKS a module belongs to: its subpackage, or itself at the top."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py") if "weights" not in p.relative_to(ROOT).parts}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The lds modules ``path`` imports (``from lds.x import y`` counts as lds.x.y when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t == "lds" or t.startswith("lds.")}
    return {t for t in found if t in known} - {name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, name, set(mods)) for name, path in mods.items()}


def test_the_top_holds_at_most_ten_modules_and_the_kinds_are_subpackages():
    top = {p.name for p in ROOT.glob("*.py")}
    assert top == TOP_LEVEL, f"modules at lds/'s top: {sorted(top)}; new code belongs in a subpackage"
    assert len(top) <= 10
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= SUBPACKAGES | {"data"}, f"unexpected folders under lds/: {sorted(folders - SUBPACKAGES)}"
    for name in SUBPACKAGES - {"weights"}:
        if (ROOT / name).is_dir():
            init = ROOT / name / "__init__.py"
            assert init.is_file(), f"lds/{name}/ has no __init__.py"
            tree = ast.parse(init.read_text())
            assert all(isinstance(n, ast.Expr) for n in tree.body), \
                f"lds/{name}/__init__.py does more than say what lives there (no re-exports)"


def test_every_module_has_a_rank():
    for name in modules():
        assert kind(name) in RANKS, f"{name}: add its kind to RANKS (and CONTRIBUTING's tree)"


def test_imports_only_go_down():
    upward = []
    for name, targets in graph().items():
        for t in targets:
            if t == "lds" and name != "lds":
                upward.append(f"{name} imports lds itself")
            elif kind(t) != kind(name) and RANKS[kind(t)] >= RANKS[kind(name)]:
                upward.append(f"{name} -> {t}")
    assert not upward, "imports against the direction of CONTRIBUTING's tree:\n" + "\n".join(sorted(upward))


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        colour[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if colour.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in colour and (c := visit(m)):
                return c
        stack.pop()
        colour[n] = 2
        return None

    for n in sorted(g):
        if n not in colour and (c := visit(n)):
            return c
    return None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("bad", ["upward", "cycle"])
def test_the_checks_catch_what_they_check(bad):
    """The checks above, fed a graph that breaks them, fail."""
    if bad == "cycle":
        assert find_cycle({"lds.a": {"lds.b"}, "lds.b": {"lds.c"}, "lds.c": {"lds.a"}}) == \
            ["lds.a", "lds.b", "lds.c", "lds.a"]
    else:
        assert RANKS[kind("lds.pipeline.sampling")] < RANKS[kind("lds.instruments.guidance")]
        assert kind("lds.models.unet") == "lds.models" and kind("lds.measures") == "lds.measures"


def test_contributing_draws_the_tree():
    """Every subpackage (and top-level module) is named in CONTRIBUTING's tree."""
    text = (ROOT.parent / "CONTRIBUTING.md").read_text()
    for name in sorted({kind(m) for m in modules()} - {"lds"}):
        path = name.replace(".", "/")
        assert f"`{path.removeprefix('lds/')}/`" in text or f"`{path.removeprefix('lds/')}`" in text, \
            f"CONTRIBUTING's tree does not name {path}"
