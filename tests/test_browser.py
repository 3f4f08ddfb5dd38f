"""The built book in a real browser, offline: headless Chromium (Debian's) driven by Playwright.

The build from tests/test_book.py is served on 127.0.0.1 and every page of the table of contents is
loaded. A page passes when it asks nothing of any other host, logs no error, shows its equations
typeset by the vendored MathJax (no raw LaTeX left) and loads every image (the chapters save no widgets:
their dials are for a live kernel, tests/test_ch08_guidance.py checks them);
the sidebar and the "next" links must reach every chapter.
"""

from __future__ import annotations

import os

import re
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from conftest import offline_context
from test_book import build_ci_book, toc_pages

LATEX_LEFTOVERS = re.compile(r"\$\$|\\frac|\\sqrt|\\begin\{|\\mathrm|\\epsilon|\\\(|\\\[")
# Markdown a renderer left as text: a table's pipes or its |---| rule, **bold**, `code`.
MARKDOWN_LEFTOVERS = re.compile(r"^\s*\|.*\|.*\|\s*$|\|\s*:?[-—]{3,}|\*\*\S|`", re.M)
# What a library prints when something is off: a Python warning category, or a logger's WARNING.
OUTPUT_WARNINGS = re.compile(r"\b[A-Z]\w*Warning\b|\bWARNING\b|Token indices sequence length")

pytestmark = [pytest.mark.browser, pytest.mark.notebooks]


@pytest.fixture(scope="session")
def visits(site, browser):
    """Load every page once; returns {page: what happened}."""
    host = urlparse(site).hostname
    outside: list[str] = []
    context = offline_context(browser, site, outside)
    results = {}
    for page_name in [*toc_pages(), "genindex", "search"]:
        page = context.new_page()
        seen = {"errors": [], "failed": [], "outside": [], "requests": []}
        page.on("console", lambda m, s=seen: s["errors"].append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e, s=seen: s["errors"].append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r, s=seen: s["failed"].append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r, s=seen: s["failed"].append(f"{r.url} (HTTP {r.status})")
                if r.status >= 400 else None)
        page.on("request", lambda r, s=seen: s["requests"].append(r.url))
        url = urljoin(site, f"{page_name}.html")
        page.goto(url, wait_until="load", timeout=60_000)
        seen.update(_inspect(page))
        seen["outside"] = [u for u in seen["requests"]
                           if urlparse(u).scheme in ("http", "https") and urlparse(u).hostname != host]
        results[page_name] = seen
        page.close()
    context.close()
    results["_outside_any"] = outside
    return results


def _inspect(page) -> dict:
    """Wait for MathJax, images and widgets; report what is on the page."""
    out = {}
    has_math = page.evaluate("() => document.querySelectorAll('.math').length") > 0
    out["has_math"] = has_math
    if has_math:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                               timeout=30_000)
        page.evaluate("() => MathJax.startup.promise")
        out["untypeset"] = page.evaluate(
            "() => Array.from(document.querySelectorAll('.math'))"
            ".filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80))")
    # Lazy images would wait for scrolling: make them eager, then wait for every one to settle.
    page.evaluate("""() => Promise.all(Array.from(document.images).map(img => {
        img.loading = 'eager';
        return img.complete ? null : new Promise(r => { img.onload = img.onerror = r; });
    }))""")
    out["broken_images"] = page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    out["n_images"] = page.evaluate("() => document.images.length")
    # Visible text outside code: what a reader sees where equations should be.
    out["text"] = page.evaluate("""() => {
        const main = (document.querySelector('main') || document.body).cloneNode(true);
        main.querySelectorAll('pre, code, .highlight, script, style, mjx-assistive-mml').forEach(e => e.remove());
        return main.innerText;
    }""")
    # Cell outputs: what a chapter printed (stderr is shown with the class "stderr").
    out["outputs"] = page.evaluate(
        "() => Array.from(document.querySelectorAll('.cell_output')).map(e => e.innerText)")
    out["stderr"] = page.evaluate(
        "() => Array.from(document.querySelectorAll('.cell_output .stderr')).map(e => e.innerText.slice(0, 200))")
    n_widgets = page.evaluate(
        "() => document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]').length")
    out["n_widgets"] = n_widgets
    if n_widgets:
        page.wait_for_function("() => document.querySelectorAll('.jupyter-widgets, .widget-inline-hbox').length > 0",
                               timeout=30_000)
        out["widgets_rendered"] = page.evaluate("() => document.querySelectorAll('.jupyter-widgets').length")
    out["sidebar"] = page.evaluate(
        "() => Array.from(document.querySelectorAll('.bd-sidebar-primary a.reference.internal'))"
        ".map(a => a.href.split('#')[0])")
    out["links"] = page.evaluate(
        "() => Array.from(document.querySelectorAll('main a[href]')).map(a => a.href.split('#')[0])"
        ".filter(h => h.startsWith(location.origin))")
    nxt = page.query_selector("a.right-next")
    out["next"] = nxt.evaluate("a => a.href.split('#')[0]") if nxt else None
    return out


def test_no_request_leaves_the_host(visits):
    outside = {p: v["outside"] for p, v in visits.items() if not p.startswith("_") and v["outside"]}
    assert not outside and not visits["_outside_any"], f"requests to other hosts: {outside or visits['_outside_any']}"


def test_no_console_errors_or_failed_requests(visits):
    bad = {p: v["errors"] + v["failed"] for p, v in visits.items()
           if not p.startswith("_") and (v["errors"] or v["failed"])}
    assert not bad, f"errors in the browser: {bad}"


def test_math_is_typeset(visits):
    pages = {p: v for p, v in visits.items() if not p.startswith("_")}
    for page, v in pages.items():
        if v["has_math"]:
            assert not v["untypeset"], f"{page}: equations MathJax did not typeset: {v['untypeset'][:3]}"
        leftover = LATEX_LEFTOVERS.search(v["text"])
        assert not leftover, f"{page}: raw LaTeX in the visible text near {v['text'][max(0, leftover.start() - 60):leftover.end() + 60]!r}"


def test_no_raw_markdown_in_page_text(visits):
    """Tables, bold and code that a chapter displays as Markdown are rendered, not shown as source."""
    for page, v in visits.items():
        if page.startswith("_"):
            continue
        leftover = MARKDOWN_LEFTOVERS.search(v["text"])
        assert not leftover, (f"{page}: raw Markdown in the visible text near "
                              f"{v['text'][max(0, leftover.start() - 60):leftover.end() + 60]!r}")


def test_no_warnings_in_cell_outputs(visits):
    for page, v in visits.items():
        if page.startswith("_"):
            continue
        assert not v["stderr"], f"{page}: a cell wrote to stderr: {v['stderr'][:2]}"
        for text in v["outputs"]:
            found = OUTPUT_WARNINGS.search(text)
            assert not found, f"{page}: a warning in a cell's output: {text[max(0, found.start() - 80):found.end() + 120]!r}"


def test_every_image_loads(visits):
    broken = {p: v["broken_images"] for p, v in visits.items() if not p.startswith("_") and v["broken_images"]}
    assert not broken, f"images that did not load: {broken}"
    chapters_with_images = [p for p, v in visits.items() if p.startswith("notebooks/") and v["n_images"]]
    assert chapters_with_images, "no chapter shows a single image"


def test_navigation_reaches_every_chapter(visits, site):
    pages = toc_pages()
    expected = [urljoin(site, f"{p}.html") for p in pages]
    sidebar = set(visits[pages[0]]["sidebar"]) | {urljoin(site, f"{pages[0]}.html")}
    missing = [u for u in expected if u not in sidebar]
    assert not missing, f"the sidebar of {pages[0]} does not link to {missing}"
    # Following "next" from the first page walks the whole book in order.
    walk = [expected[0]]
    by_url = dict(zip(expected, pages))
    while visits[by_url[walk[-1]]]["next"] and len(walk) <= len(pages):
        nxt = visits[by_url[walk[-1]]]["next"]
        assert nxt in by_url, f"'next' from {walk[-1]} leads outside the book: {nxt}"
        walk.append(nxt)
    assert walk == expected, "following 'next' does not visit every chapter in order"


def test_links_between_pages_resolve(visits, site, executed):
    """Every link in a page's text to another page of the book (the ledger's chapter links, the
    glossary's, the prose's) points at a file the build contains."""
    html = build_ci_book(executed)
    broken = {}
    for page, v in visits.items():
        if page.startswith("_"):
            continue
        for link in v["links"]:
            path = urlparse(link).path.lstrip("/") or "index.html"
            if not (html / path).is_file():
                broken.setdefault(page, []).append(path)
    assert not broken, f"links to pages that were not built: {broken}"


def test_rerun_page_shows_tables_and_typesets_math_offline(browser, tmp_path):
    """``lds rerun``'s self-contained page: a displayed Markdown table is a table and equations are
    typeset by the vendored MathJax copied beside it, opened from disk with no network."""
    from conftest import one_chapter_book

    from lds.book.rerun import rerun

    cell = ('from IPython.display import Markdown, display\n'
            'display(Markdown("| setting | weights |\\n|---|---|\\n| 7.5 | (-6.5, 7.5) |\\n\\n'
            'The step is $a\\\\,\\\\epsilon_\\\\text{uncond} + b\\\\,\\\\epsilon_\\\\text{text}$, **bold**."))')
    book = one_chapter_book(tmp_path / "book", "01_toy", 'seed = 0  # a seed', [cell])
    folder = rerun("toy", {}, out=tmp_path / "run", root=book, progress=False)
    assert (folder / "mathjax" / "tex-chtml.js").is_file()
    context = browser.new_context()
    outside = []
    context.route("**/*", lambda r: (outside.append(r.request.url), r.abort()) if r.request.url.startswith("http")
                  else r.continue_())
    page = context.new_page()
    page.goto((folder / "01_toy.html").as_uri(), wait_until="load")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise")
    assert page.evaluate("() => document.querySelectorAll('mjx-container').length") >= 1
    assert page.evaluate("() => document.querySelectorAll('.jp-OutputArea table td').length") == 2
    text = page.evaluate("""() => { const b = document.body.cloneNode(true);
        b.querySelectorAll('pre, code, .jp-InputArea, script, style, mjx-assistive-mml').forEach(e => e.remove());
        return b.innerText; }""")
    assert not LATEX_LEFTOVERS.search(text) and not MARKDOWN_LEFTOVERS.search(text), text[:500]
    assert not outside, outside
    context.close()
