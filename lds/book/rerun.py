"""``lds rerun``: a chapter with a reader's own parameters, as a run folder that can be shared.

The seminar guide (book/seminar.md) explains how a class uses it. A run folder holds the executed
notebook, a self-contained HTML page (images embedded, no network needed to open it) and
``receipt.json``. Parameters are checked against the chapter's ``parameters`` cell before anything
runs; an existing folder is never overwritten; a failing run keeps what it produced.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import time
from pathlib import Path

from lds.book.runner import ChapterFailed, book_root, check_parameters, execute, find_chapter, parameters_of


class RerunError(RuntimeError):
    """Bad parameters, an unusable output folder, or a chapter that failed."""


def _new_folder(out: str | Path | None, stem: str, root: Path) -> Path:
    if out is None:
        base = root / "runs" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        folder, n = base, 1
        while folder.exists():
            n += 1
            folder = base.with_name(f"{base.name}-{n}")
    else:
        folder = Path(out)
        if folder.exists():
            raise RerunError(f"{folder} already exists; a run folder is never overwritten. Choose a new --out.")
    try:
        folder.mkdir(parents=True)
    except OSError as err:
        raise RerunError(f"Cannot create the run folder {folder}: {err}") from None
    return folder


MATHJAX_CONFIG = """<script>
window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
                        processEscapes: true, processEnvironments: true},
                  options: {ignoreHtmlClass: "tex2jax_ignore", processHtmlClass: "tex2jax_process"}};
</script>
<script src="mathjax/tex-chtml.js" defer></script>
"""


def _vendored_mathjax(root: Path | None) -> Path | None:
    """The MathJax 3 copy the book vendors (book/_vendor/mathjax, see VENDOR.txt there)."""
    from lds.book.runner import PACKAGE_DIR

    for base in ([root] if root else []) + [PACKAGE_DIR.parent]:
        folder = Path(base) / "book" / "_vendor" / "mathjax"
        if (folder / "tex-chtml.js").is_file():
            return folder
    return None


def notebook_to_html(notebook: Path, target: Path, root: Path | None = None) -> Path:
    """A self-contained HTML page: images are inlined; no script or style is fetched from the network.

    Equations are typeset offline by the book's vendored MathJax, copied beside the page
    (``mathjax/``, about 2 MB) when the page has any; without it they would stay raw TeX.
    """
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:  # recorded values (myst-nb glue) are data for the book, not page content
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if "scrapbook" not in o.get("metadata", {})]
    body, _ = exporter.from_notebook_node(nb)
    # Drop every script/link that points off the machine (require.js, the MathJax 2 CDN copy).
    body = re.sub(r"<script[^>]+src=\"https?://[^\"]+\"[^>]*>\s*</script>", "", body)
    body = re.sub(r"<link[^>]+href=\"https?://[^\"]+\"[^>]*>", "", body)
    body = re.sub(r"<script type=\"text/x-mathjax-config\">.*?</script>", "", body, flags=re.S)
    mathjax = _vendored_mathjax(root)
    if mathjax is not None and _has_math(nb):
        shutil.copytree(mathjax, target.parent / "mathjax", dirs_exist_ok=True)
        body = body.replace("</head>", MATHJAX_CONFIG + "</head>", 1)
    target.write_text(body, encoding="utf-8")
    return target


def _has_math(nb) -> bool:
    """Whether a markdown cell or output holds TeX (``$...$``, ``\\(``, ``\\[`` or an environment)."""
    texts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            data = o.get("data", {})
            texts += [data.get("text/markdown", ""), data.get("text/latex", "")]
    return any(re.search(r"\$[^$\s][^$]*\$|\\\(|\\\[|\\begin\{", "".join(t) if isinstance(t, list) else t)
               for t in texts)


def rerun(chapter: str, parameters: dict | None = None, *, model: str | None = None,
          out: str | Path | None = None, root: Path | None = None, progress: bool = True) -> Path:
    """Execute ``chapter`` with ``parameters`` into a new run folder; returns the folder."""
    from lds.pipeline.receipt import versions

    root = root or book_root()
    try:
        nb = find_chapter(chapter, root)
    except ValueError as err:
        raise RerunError(str(err)) from None
    given = dict(parameters or {})
    if model is not None:
        given["model"] = model
    try:
        checked = check_parameters(nb, given)
    except ValueError as err:
        raise RerunError(str(err)) from None
    folder = _new_folder(out, nb.stem, root)
    defaults = {p.name: p.default for p in parameters_of(nb)}
    receipt = {"chapter": nb.stem, "parameters": {**defaults, **checked}, "given": checked,
               "versions": versions(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    executed = folder / nb.name
    t0 = time.perf_counter()
    status, error = "ok", None
    try:
        execute(nb, executed, checked, force=True, progress=progress)
    except ChapterFailed as err:
        status, error = "failed", {"cell": err.cell, "error": err.error}
    receipt["seconds"] = round(time.perf_counter() - t0, 2)
    receipt["status"] = status
    if executed.exists():
        from lds.book.record import read_records

        records = read_records(executed)
        chapter_receipt = records.get("receipt")
        if isinstance(chapter_receipt, str):
            chapter_receipt = json.loads(chapter_receipt)
        if isinstance(chapter_receipt, dict):
            for key in ("model", "device", "dtype", "seed", "platform", "torch_threads"):
                if key in chapter_receipt:
                    receipt[key] = chapter_receipt[key]
        notebook_to_html(executed, folder / f"{nb.stem}.html", root)
    if error:
        receipt["error"] = error
    (folder / "receipt.json").write_text(json.dumps(receipt, indent=2, ensure_ascii=False))
    if error:
        raise RerunError(f"Chapter {nb.stem} failed at cell {error['cell']}: {error['error']}. "
                         f"What it produced is kept in {folder}.")
    return folder


def _key_images(notebook: Path, limit: int = 3) -> list[str]:
    """PNG outputs of cells tagged ``key-figure`` (else the first ``limit`` figures), base64."""
    nb = json.loads(notebook.read_text())
    tagged, anyfig = [], []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            png = o.get("data", {}).get("image/png")
            if png:
                png = "".join(png) if isinstance(png, list) else png
                (tagged if "key-figure" in cell.get("metadata", {}).get("tags", []) else anyfig).append(png)
    return (tagged or anyfig)[:limit]


def rerun_batch(chapter: str, csv_path: Path, *, model: str | None = None, out: str | Path | None = None,
                root: Path | None = None) -> Path:
    """One run per CSV row (a column per parameter, optional ``name``), then a comparison page."""
    root = root or book_root()
    try:
        nb = find_chapter(chapter, root)
    except ValueError as err:
        raise RerunError(str(err)) from None
    if not Path(csv_path).exists():
        raise RerunError(f"{csv_path} does not exist.")
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise RerunError(f"{csv_path} has no rows (the first line must name the parameters).")
    # Check every row before running any
    runs = []
    for i, row in enumerate(rows, 1):
        name = (row.pop("name", "") or f"row{i:02d}").strip()
        name = re.sub(r"[^\w.-]+", "-", name)[:60] or f"row{i:02d}"
        params = {k: v for k, v in row.items() if k and v not in (None, "")}
        if model:
            params["model"] = model
        try:
            check_parameters(nb, params)
        except ValueError as err:
            raise RerunError(f"row {i} of {csv_path}: {err}") from None
        runs.append((name, params))
    batch = _new_folder(out, f"{nb.stem}-batch", root)
    results = []
    for name, params in runs:
        try:
            folder = rerun(chapter, params, out=batch / name, root=root)
            results.append((name, params, folder, None))
        except RerunError as err:
            results.append((name, params, batch / name, str(err)))
    index = batch / "index.html"
    cards = []
    for name, params, folder, error in results:
        ipynb = folder / nb.name
        imgs = _key_images(ipynb) if ipynb.exists() else []
        figs = "".join(f'<img src="data:image/png;base64,{b}" alt="figure from {html.escape(name)}">' for b in imgs)
        plist = "".join(f"<li><code>{html.escape(k)}</code> = {html.escape(str(v))}</li>" for k, v in params.items())
        status = f'<p class="error">failed: {html.escape(error)}</p>' if error else ""
        cards.append(f'<section><h2><a href="{html.escape(name)}/{nb.stem}.html">{html.escape(name)}</a></h2>'
                     f"<ul>{plist}</ul>{status}{figs}</section>")
    index.write_text(
        "<!doctype html><meta charset='utf-8'><title>" + html.escape(nb.stem) + " — class runs</title>"
        "<style>body{font-family:sans-serif;margin:1em}main{display:flex;flex-wrap:wrap;gap:1em}"
        "section{flex:1 1 320px;border:1px solid #ccc;padding:.5em}img{max-width:100%}.error{color:#a00}</style>"
        f"<h1>{html.escape(nb.stem)}: {len(results)} runs side by side</h1><main>" + "".join(cards) + "</main>",
        encoding="utf-8")
    (batch / "batch.json").write_text(json.dumps(
        [{"name": n, "parameters": p, "folder": str(f.name), "error": e} for n, p, f, e in results], indent=2,
        ensure_ascii=False))
    return index
