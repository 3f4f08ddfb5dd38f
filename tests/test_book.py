"""The strict book build: every chapter executed (CI parameters), then ``jupyter-book build -W -n --keep-going``.

The build goes to _build/html-ci; tests/test_browser.py loads the same build. Set ``LDS_TEST_HTML`` to
the folder of a book built elsewhere (for example ``_build/html`` after ``make book``) to test that
build instead of making one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import CI_PARAMETERS, EXECUTED, ROOT

HTML_CI = ROOT / "_build" / "html-ci"
_BUILT: dict = {}


def toc_pages() -> list[str]:
    """Every page the table of contents lists, in order (``book/intro``, ``notebooks/01_ensemble`` ...)."""
    from lds.book.runner import _toc_files

    return _toc_files(ROOT)


def execute_all(executed) -> Path:
    """Every chapter through the ``executed`` fixture (toc order), the claims ledger last; once per session.

    The ledger reads the other executed chapters, which the runner's fingerprint does not cover, so
    it is executed again (forced) once they are all there. Returns the ledger's executed copy.
    """
    if "ledger" in _BUILT:
        return _BUILT["ledger"]
    from lds.book.runner import chapters, execute, load_parameter_file

    for nb in chapters(ROOT):
        if nb.parent.name == "notebooks" and nb.stem != "10_claims":
            executed(nb.stem)
    ledger = ROOT / "notebooks" / "10_claims.ipynb"
    out = EXECUTED / "notebooks" / ledger.name
    execute(ledger, out, load_parameter_file(CI_PARAMETERS).get(ledger.stem, {}), force=True, progress=False)
    _BUILT["ledger"] = out
    return out


def build_ci_book(executed) -> Path:
    """Execute everything, then build strictly into _build/html-ci; once per session."""
    if "html" in _BUILT:
        return _BUILT["html"]
    if os.environ.get("LDS_TEST_HTML"):
        _BUILT["html"] = Path(os.environ["LDS_TEST_HTML"]).resolve()
        return _BUILT["html"]
    from lds.book.runner import build_book

    execute_all(executed)
    _BUILT["html"] = build_book(EXECUTED, HTML_CI, strict=True, root=ROOT)
    return _BUILT["html"]


@pytest.fixture(scope="session")
def built_book(executed) -> Path:
    return build_ci_book(executed)


def test_every_toc_notebook_exists():
    missing = [f for f in toc_pages() if f.startswith("notebooks/") and not (ROOT / f"{f}.ipynb").exists()]
    assert not missing, f"_toc.yml lists chapters that do not exist: {missing}"


@pytest.mark.notebooks
def test_strict_build_has_every_page(built_book):
    for page in toc_pages():
        html = built_book / f"{page}.html"
        assert html.is_file(), f"{html} was not built"
        assert html.stat().st_size > 5_000, f"{html} is suspiciously small"
    assert (built_book / "index.html").is_file()
    # The scripts a page needs are served from the book itself (see book/_vendor/VENDOR.txt).
    for vendored in ("mathjax/tex-chtml.js", "requirejs/require.js", "jupyter-widgets/html-manager/embed-amd.js"):
        assert (built_book / "_static" / vendored).is_file(), vendored


@pytest.mark.notebooks
def test_pages_reference_no_cdn(built_book):
    """No page's HTML points a script, stylesheet or font at another host."""
    import re

    offenders = {}
    for page in [*toc_pages(), "index", "genindex", "search"]:
        path = built_book / f"{page}.html"
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        remote = []
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", text):
            url = re.search(r'(?:src|href)="((?:https?:)?//[^"]+)"', tag)
            if url and not re.search(r'rel="(?:canonical|alternate|author|license)"', tag):
                remote.append(url.group(1))
        if remote:
            offenders[page] = remote
    assert not offenders, f"pages load from other hosts: {offenders}"


@pytest.mark.notebooks
def test_chapter_pages_carry_their_numbers(built_book):
    """Chapters rendered from executed notebooks: each has outputs, and the ledger shows its table."""
    for page in toc_pages():
        if not page.startswith("notebooks/"):
            continue
        text = (built_book / f"{page}.html").read_text(encoding="utf-8")
        assert 'class="cell_output' in text, f"{page} has no outputs: was it executed?"
    ledger = (built_book / "notebooks" / "10_claims.html").read_text(encoding="utf-8")
    assert "lds-claims-ledger" in ledger
    assert ledger.count("<tr") >= 25


# ------------------------------------------------------------------ glossary and citations (no build)

AGREED_TERMS = [
    "latents", "token", "embedding", "prompt_embeds", "cross-attention", "guidance scale", "classifier-free guidance",
    "U-Net", "autoencoder", "VAE", "PatchGAN", "CLIP", "contrastive learning", "BPE", "context window", "padding",
    "scheduler", "timestep", "noise prediction", "skip connection", "diffusion", "denoising", "seed", "parameter",
    "checkpoint", "receptive field", "KL divergence", "perceptual loss", "cosine similarity", "neural exchange value",
    "commensuration", "social exchange value", "mean image", "synthetic web", "LAION", "lds-mini",
    "Stable Diffusion 1.5",
]


def glossary_terms() -> list[str]:
    """The terms book/glossary.md defines: unindented lines inside its {glossary} directive."""
    import re

    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    body = re.search(r":::\{glossary\}\n(.*?)\n:::", text, flags=re.S).group(1)
    return [line.strip() for line in body.splitlines() if line and not line[0].isspace() and not line.startswith(":")]


def _sources() -> dict[str, str]:
    """Every prose source of the book: the pages in book/ and the Markdown cells of the notebooks."""
    import json

    out = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in (ROOT / "book").glob("*.md")}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        out[str(nb.relative_to(ROOT))] = "\n".join(
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells if c["cell_type"] == "markdown")
    return out


def test_glossary_defines_every_agreed_term():
    terms = glossary_terms()
    assert len(terms) == len(set(terms)), "a term is defined twice"
    missing = [t for t in AGREED_TERMS if t not in terms]
    assert not missing, f"book/glossary.md lacks {missing}"


def test_every_term_reference_is_defined():
    import re

    defined = {t.lower() for t in glossary_terms()}
    bad = {}
    for name, text in _sources().items():
        for ref in re.findall(r"\{term\}`([^`]+)`", text):
            target = re.search(r"<([^>]+)>\s*$", ref)
            target = (target.group(1) if target else ref).strip()
            if target.lower() not in defined:
                bad.setdefault(name, []).append(target)
    assert not bad, f"{{term}} references to terms the glossary does not define: {bad}"


def test_every_citation_key_is_in_the_bibliography():
    import re

    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(encoding="utf-8"), flags=re.M))
    assert "salvaggio2026market" in keys
    bad = {}
    for name, text in _sources().items():
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            for key in group.split(","):
                if key.strip() not in keys:
                    bad.setdefault(name, []).append(key.strip())
    assert not bad, f"citation keys missing from book/references.bib: {bad}"
