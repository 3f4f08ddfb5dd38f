"""Shared fixtures. Chapters execute once per session (papermill, CI-sized parameters from
tests/ci_parameters/<chapter>.yml) into _build/executed-ci; tests read their recorded numbers."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from urllib.parse import urlparse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "executed-ci"
CI_PARAMETERS = ROOT / "tests" / "ci_parameters"
SUPPORT = ROOT / "tests" / "support"
# Present when every executed copy in EXECUTED ran with sockets blocked (copies from before are re-run).
GUARD_STAMP = EXECUTED / ".sockets-blocked"

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from support.no_skips_in_ci import pytest_runtest_makereport  # noqa: E402,F401  (a skip fails where CI is set)


@contextlib.contextmanager
def sockets_blocked():
    """Processes started inside (papermill kernels, ``lds`` CLI runs) load tests/support/sitecustomize.py,
    which refuses any connection off this machine. The test process itself is not guarded."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT)] + ([old] if old else []))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


_NOT_WATCHED = {".git", ".venv", "__pycache__", ".pytest_cache", ".ipynb_checkpoints"}


def _tree_state(root: Path, skip: Path) -> dict:
    state = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _NOT_WATCHED and Path(folder, d) != skip]
        for f in files:
            path = Path(folder, f)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            state[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return state


@contextlib.contextmanager
def writes_stay_in(folder: Path, root: Path = ROOT):
    """Raise if anything in the checkout outside ``folder`` is created, changed or removed inside the block
    (CONTRIBUTING: a notebook executes from its own folder and never writes outside it)."""
    folder = Path(folder).resolve()
    before = _tree_state(root, folder)
    yield
    after = _tree_state(root, folder)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        raise AssertionError(f"written outside {folder}: {changed[:10]}")


@pytest.fixture(scope="session")
def executed():
    """``executed("05_tokenization")`` -> the chapter's records, executing it (once) if needed."""
    from lds.book.record import read_records
    from lds.book.runner import execute, find_chapter, load_parameter_file

    params = load_parameter_file(CI_PARAMETERS)
    cache = {}
    if not GUARD_STAMP.exists():  # executed copies from an unguarded run are not reused
        for stamp in (EXECUTED / "notebooks").glob("*.fingerprint"):
            stamp.unlink()
        GUARD_STAMP.parent.mkdir(parents=True, exist_ok=True)
        GUARD_STAMP.write_text("every chapter here executed with tests/support/sitecustomize.py loaded\n")

    def run(stem: str) -> dict:
        if stem not in cache:
            nb = find_chapter(stem, ROOT)
            out = EXECUTED / "notebooks" / nb.name
            out.parent.mkdir(parents=True, exist_ok=True)
            with sockets_blocked(), writes_stay_in(out.parent):
                execute(nb, out, params.get(nb.stem, {}), progress=False)
            cache[stem] = read_records(out)
        return cache[stem]

    return run


@pytest.fixture(scope="session")
def pipe():
    """lds-mini, loaded once."""
    from lds.pipeline.loading import load_pipeline

    return load_pipeline("lds-mini")


def one_chapter_book(folder: Path, stem: str, parameters: str, cells: list[str]) -> Path:
    """A book with the real layout (``_toc.yml``, ``book/``, ``notebooks/``) and one chapter:
    a cell tagged ``parameters`` holding ``parameters``, then one code cell per entry of ``cells``."""
    return book_of_chapters(folder, {stem: (parameters, cells)})


def book_of_chapters(folder: Path, chapters: dict[str, tuple[str, list[str]]]) -> Path:
    """:func:`one_chapter_book` with several chapters, in the given order: ``{stem: (parameters, cells)}``."""
    import nbformat

    (folder / "notebooks").mkdir(parents=True)
    (folder / "book").mkdir()
    (folder / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                     + "".join(f"  - file: notebooks/{stem}\n" for stem in chapters))
    for stem, (parameters, cells) in chapters.items():
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell(parameters)
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {stem}"), params] + [nbformat.v4.new_code_cell(c) for c in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / "notebooks" / f"{stem}.ipynb"))
    return folder


# The browser tests' shared fixtures (tests/test_browser.py, tests/test_live.py): one build, one Chromium.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="session")
def site(executed):
    """The CI build served on an ephemeral 127.0.0.1 port; yields its base URL."""
    from test_book import build_ci_book

    html = build_ci_book(executed)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: .ci/run installs Debian chromium (apt-get install chromium)")
        pytest.skip("Chromium is not installed at /usr/bin/chromium; install Debian chromium: "
                    "apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def offline_context(browser, site: str, outside: list):
    """A browser context that lets through only requests to ``site``'s host; every other http(s) or ws(s)
    request is aborted and its URL appended to ``outside``."""
    host = urlparse(site).hostname
    context = browser.new_context(service_workers="block")

    def guard(route):
        url = route.request.url
        if urlparse(url).scheme in ("http", "https", "ws", "wss") and urlparse(url).hostname != host:
            outside.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    return context
