"""The notebook runner: papermill over every chapter in ``_toc.yml``, then the book from those copies.

Used by ``make book``, ``make test`` (through the ``executed`` fixture in tests/conftest.py) and
``lds rerun``. A chapter re-executes only when its notebook, its parameters, the lds package or the
model changed (a fingerprint is stored beside each executed copy), so rebuilding after one chapter
changes runs only that chapter.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the lds package (this file is lds/book/runner.py)


class ChapterFailed(RuntimeError):
    """A chapter raised an error; names the chapter and the cell."""

    def __init__(self, chapter: str, cell: int | None, error: str, output: Path | None):
        self.chapter, self.cell, self.error, self.output = chapter, cell, error, output
        where = f"cell {cell}" if cell is not None else "before any cell ran"
        super().__init__(f"Chapter {chapter!r} failed at {where}: {error}"
                         + (f"\n  The partly executed notebook is kept at {output}" if output else ""))


def book_root(start: Path | None = None) -> Path:
    """The folder holding ``_toc.yml`` (the repository root), from ``LDS_BOOK`` or upwards from cwd."""
    if os.environ.get("LDS_BOOK"):
        return Path(os.environ["LDS_BOOK"]).resolve()
    for folder in [Path(start or Path.cwd()).resolve(), *Path(start or Path.cwd()).resolve().parents,
                   PACKAGE_DIR.parent]:
        if (folder / "_toc.yml").is_file() and (folder / "notebooks").is_dir():
            return folder
    raise FileNotFoundError("Could not find the book (a folder with _toc.yml and notebooks/). Run this from "
                            "the lds repository, or set LDS_BOOK to its path.")


def _toc_files(root: Path) -> list[str]:
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def chapters(root: Path | None = None) -> list[Path]:
    """Every notebook the book lists, in order."""
    root = root or book_root()
    return [root / f"{f}.ipynb" for f in _toc_files(root) if (root / f"{f}.ipynb").exists()]


def find_chapter(name: str, root: Path | None = None) -> Path:
    """A chapter by stem (``05_tokenization``), number (``5``) or name fragment (``tokenization``)."""
    found = chapters(root)
    name = str(name).strip()
    for nb in found:
        num = nb.stem.split("_", 1)[0]
        if name in (nb.stem, nb.name) or (name.isdigit() and num.isdigit() and int(num) == int(name)):
            return nb
    matches = [nb for nb in found if name.lower() in nb.stem.lower()]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"Unknown chapter {name!r}. Chapters: {', '.join(nb.stem for nb in found)}")


@dataclasses.dataclass
class Parameter:
    name: str
    default: object
    type: str
    comment: str = ""


def parameters_of(notebook: Path) -> list[Parameter]:
    """The chapter's parameters, read from its cell tagged ``parameters`` (the only list kept)."""
    nb = json.loads(Path(notebook).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            lines = source.splitlines()
            out = []
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    value = ast.literal_eval(node.value)
                    line = lines[node.lineno - 1]
                    comment = line.split("#", 1)[1].strip() if "#" in line else ""
                    out.append(Parameter(node.targets[0].id, value, type(value).__name__, comment))
            return out
    raise ValueError(f"{notebook} has no cell tagged 'parameters'.")


def check_parameters(notebook: Path, given: dict) -> dict:
    """Validate names and types against the chapter before anything runs; returns coerced values."""
    params = {p.name: p for p in parameters_of(notebook)}
    valid = ", ".join(f"{p.name} ({p.type}, default {p.default!r})" for p in params.values())
    out = {}
    for name, value in given.items():
        if name not in params:
            raise ValueError(f"Chapter {Path(notebook).stem} has no parameter {name!r}. Valid parameters: {valid}")
        out[name] = coerce(value, params[name], Path(notebook).stem)
    return out


def coerce(value, param: Parameter, chapter: str = ""):
    """A command-line string (or a value) converted to the parameter's type, or a clear error."""
    from lds.settings import parse_value

    want = type(param.default)
    if isinstance(value, str) and want is not str:
        value = parse_value(value)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want is list and isinstance(value, str):
        value = [value]
    if param.default is None or isinstance(value, want) and not (want is int and isinstance(value, bool)):
        return value
    raise ValueError(f"Parameter {param.name!r} of chapter {chapter} must be {want.__name__} "
                     f"(default {param.default!r}), got {value!r}.")


_DIGESTS: dict[tuple, str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's contents, cached in this process while its size, times and inode are unchanged
    (so a test session or ``make book`` hashes the 50 MB of weights and corpus once, not per chapter)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _tree_files(folder: Path) -> list[Path]:
    return sorted(f for f in Path(folder).rglob("*")
                  if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc")


def library_versions() -> dict[str, str]:
    """The installed versions a chapter's numbers depend on (read from package metadata, nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for dist in ("torch", "diffusers", "transformers", "open_clip_torch", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


def fingerprint(notebook: Path, parameters: dict, inputs: list[Path] = ()) -> str:
    """What an executed copy depends on: the notebook, its parameters, every file of the lds package by
    content (code in any subfolder, lds-mini's weights, the corpus), a model folder named by the
    ``model`` parameter, the versions of torch, diffusers, transformers and open_clip, and (for the
    chapters that summarise others) the executed chapters it reads."""
    h = hashlib.sha256()
    for f in sorted(inputs):
        h.update(f.name.encode())
        h.update(Path(f).read_bytes())
    h.update(Path(notebook).read_bytes())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(json.dumps(library_versions(), sort_keys=True).encode())
    folders = [PACKAGE_DIR]
    model = parameters.get("model") if isinstance(parameters, dict) else None
    if isinstance(model, str) and model and Path(model).expanduser().is_dir():
        folders.append(Path(model).expanduser().resolve())
    for folder in folders:
        for f in _tree_files(folder):
            h.update(str(f.relative_to(folder)).encode())
            h.update(file_digest(f).encode())
    return h.hexdigest()


def _kernel_config():
    """The kernel talks to papermill over CurveZMQ-encrypted sockets where pyzmq supports it (the
    kernelspec declares support; ipykernel otherwise logs "Kernel is running over TCP without
    encryption" once per chapter), and over local IPC sockets where it does not (not on Windows)."""
    import zmq
    from traitlets.config import Config

    if zmq.has("curve"):
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    if os.name != "nt":
        return Config({"KernelManager": {"transport": "ipc"}})
    return Config()


def reads_other_chapters(notebook: Path) -> bool:
    """Whether a chapter reads the executed copies of the chapters before it (an ``executed_dir`` parameter:
    the conclusion, the ledger): its fingerprint covers them, and it runs only after them."""
    return any(p.name == "executed_dir" for p in parameters_of(notebook))


def execute(notebook: Path, output: Path, parameters: dict | None = None, *, force: bool = False,
            progress: bool = True, timeout: int = 1800, warm: "WarmKernels | None" = None) -> dict:
    """Execute one chapter with papermill into ``output``; returns timings. Raises ChapterFailed.

    ``warm``: the kernel is forked from a warm server (:mod:`lds.book.warm`) instead of started afresh."""
    import papermill as pm

    from lds.book.warm import KERNEL_EXEC_LINE  # memory a cell freed goes back to the system after it

    parameters = check_parameters(notebook, parameters or {})
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    stamp = output.with_suffix(".fingerprint")
    reads_chapters = reads_other_chapters(notebook)
    inputs = [f for f in sorted(output.parent.glob("*.ipynb")) if f.name < notebook.name] if reads_chapters else []
    fp = fingerprint(notebook, parameters, inputs)
    if not force and output.exists() and stamp.exists() and stamp.read_text() == fp:
        if progress:
            print(f"  {notebook.stem}: unchanged", flush=True)
        return {"chapter": notebook.stem, "skipped": True, "seconds": 0.0}
    t0 = time.perf_counter()
    env_before = os.environ.get("HF_HUB_OFFLINE")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        engine_kwargs = {"kernel_manager_class": warm.manager_class()} if warm is not None else {}
        pm.execute_notebook(str(notebook), str(output), parameters=parameters, cwd=str(output.parent),
                            progress_bar=False, log_output=False, kernel_name="python3",
                            execution_timeout=timeout, report_mode=False, config=_kernel_config(),
                            # jupyter_client interrupts every kernel it shuts down; a kernel still finishing a
                            # message then logs "KeyboardInterrupt caught in kernel" at ERROR level onto the
                            # runner's terminal after the chapter succeeded. The kernel's own log is quiet below
                            # CRITICAL; errors in cells are in the executed notebook and raise ChapterFailed.
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL", KERNEL_EXEC_LINE],
                            **engine_kwargs)
    except pm.PapermillExecutionError as err:
        stamp.unlink(missing_ok=True)
        scrub(output)
        cell = _failed_cell(output)
        raise ChapterFailed(notebook.stem, cell, f"{err.ename}: {err.evalue}", output) from None
    except Exception as err:  # kernel died, timeout ...
        stamp.unlink(missing_ok=True)
        raise ChapterFailed(notebook.stem, _failed_cell(output), f"{type(err).__name__}: {err}",
                            output if output.exists() else None) from None
    finally:
        if env_before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
    scrub(output)
    stamp.write_text(fp)
    seconds = time.perf_counter() - t0
    if progress:
        print(f"  {notebook.stem}: executed in {seconds:.1f} s", flush=True)
    return {"chapter": notebook.stem, "skipped": False, "seconds": round(seconds, 2)}


def scrub(notebook: Path) -> None:
    """Keep the reader's home folder and the checkout's absolute path out of an executed notebook.

    Library warnings and papermill's metadata carry absolute paths; a notebook shared by a student
    should not reveal their user name. Paths become relative to the book (``./``) or to ``~``.
    """
    text = Path(notebook).read_text(encoding="utf-8")
    root = str(book_root() if os.environ.get("LDS_BOOK") else PACKAGE_DIR.parent)
    home = str(Path.home())
    for old, new in ((root + "/", "./"), (root, "."), (home + "/", "~/")):
        if old and old not in ("/", "./", "~/") and len(old) > 2:
            text = text.replace(old, new)
    Path(notebook).write_text(text, encoding="utf-8")


def _failed_cell(output: Path) -> int | None:
    """1-based index of the code cell that raised, from the executed copy."""
    if not output.exists():
        return None
    nb = json.loads(output.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, c in enumerate(code, 1):
        if any(o.get("output_type") == "error" for o in c.get("outputs", [])):
            return i
    return None


def load_parameter_file(path: Path | None) -> dict:
    """Per-chapter parameters: a YAML file (stem -> parameters) or a folder of ``<stem>.yml`` files."""
    if not path:
        return {}
    import yaml

    path = Path(path)
    if path.is_dir():
        return {f.stem: yaml.safe_load(f.read_text()) or {} for f in sorted(path.glob("*.yml"))}
    return yaml.safe_load(path.read_text()) or {}


# Two chapters at once peak at about 1.9 GB (warm kernels; measured in the README's performance section), one at
# a time at about 1.4 GB. Below this much free memory the runner executes one chapter at a time.
TWO_JOBS_MEMORY_BYTES = 4 * 1024 ** 3


def _available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux's MemAvailable), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_jobs() -> int:
    """How many chapters execute at once: ``LDS_JOBS`` if set; else 2 on a machine with at least 2 cores and
    4 GiB of available memory, 1 otherwise.

    Two kernels with one thread each use two cores better than one kernel with two threads (lds-mini's
    tensors are small): the whole book in about 300 s instead of about 500 s on 2 cores, for about 1 GB more
    memory (README, performance). More than two rarely pays on a laptop: each kernel holds its own torch."""
    env = os.environ.get("LDS_JOBS")
    if env:
        try:
            jobs = int(env)
        except ValueError:
            raise ValueError(f"LDS_JOBS={env!r}: give a whole number of chapters to execute at once") from None
        if jobs < 1:
            raise ValueError(f"LDS_JOBS={env!r}: give at least 1")
        return jobs
    memory = _available_memory()
    if (os.cpu_count() or 1) >= 2 and (memory is None or memory >= TWO_JOBS_MEMORY_BYTES):
        return 2
    return 1


def _timings_file(out_dir: Path) -> Path:
    return Path(out_dir) / "timings.json"


class WarmKernels:
    """The warm kernel server (:mod:`lds.book.warm`) for one run of the book, started when the first chapter
    that needs executing asks for a kernel (a rebuild where every chapter is unchanged starts none), from the
    environment the runner has set for its kernels by then."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._server = None

    def manager_class(self):
        from lds.book.warm import WarmServer

        with self._lock:
            if self._server is None:
                self._server = WarmServer().__enter__()
            return self._server.manager_class

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None


def execute_book(out_dir: Path, parameter_file: Path | None = None, *, only: list[str] | None = None,
                 force: bool = False, progress: bool = True, root: Path | None = None,
                 model: str | None = None, jobs: int | None = None) -> list[dict]:
    """Execute every chapter (or ``only`` those) into ``out_dir``; stops at the first failure.

    ``model`` (a folder or hub id) is passed to every chapter that has a ``model`` parameter.
    ``jobs`` chapters execute at once (default :func:`default_jobs`), each kernel with its share of the
    cores; the longest chapters (by the last run's ``timings.json``) start first. A chapter that reads the
    other chapters' results (an ``executed_dir`` parameter: the conclusion, the ledger) starts only when
    every chapter before it in ``_toc.yml`` has finished. Results are returned in the table of contents'
    order. Where more than one chapter is to run, their kernels are forked from one warm process
    (:mod:`lds.book.warm`; ``LDS_WARM_KERNELS=0`` starts ordinary ones)."""
    root = root or book_root()
    per_chapter = load_parameter_file(parameter_file)
    out_dir = Path(out_dir)
    jobs = default_jobs() if jobs is None else jobs
    todo = []
    for nb in chapters(root):
        if nb.parent.name != "notebooks" or (only and nb.stem not in only):
            continue
        params = dict(per_chapter.get(nb.stem, {}))
        if model is not None and any(p.name == "model" for p in parameters_of(nb)):
            params["model"] = model
        todo.append((nb, out_dir / "notebooks" / nb.name, params))
    from lds.book.warm import available as warm_available

    warm = WarmKernels() if len(todo) > 1 and warm_available() else None
    try:
        if jobs <= 1 or len(todo) <= 1:
            results = [execute(nb, out, params, force=force, progress=progress, warm=warm)
                       for nb, out, params in todo]
        else:
            results = _execute_parallel(todo, out_dir, jobs, force, progress, warm)
    finally:
        if warm is not None:
            warm.close()
    timings = _timings_file(out_dir)
    try:
        known = json.loads(timings.read_text()) if timings.exists() else {}
    except ValueError:
        known = {}
    known.update({r["chapter"]: r["seconds"] for r in results if not r["skipped"]})
    timings.parent.mkdir(parents=True, exist_ok=True)
    timings.write_text(json.dumps(known, indent=1, sort_keys=True))
    return results


def _execute_parallel(todo: list, out_dir: Path, jobs: int, force: bool, progress: bool,
                      warm: "WarmKernels | None" = None) -> list[dict]:
    """Run ``todo`` with ``jobs`` kernels at once. Each chapter still gets its own kernel process; the threads here
    only wait on them. The kernels inherit one environment, set for the whole run: offline, and ``cores // jobs``
    threads each for torch, OpenMP and BLAS."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    try:
        last = json.loads(_timings_file(out_dir).read_text())
    except (OSError, ValueError):
        last = {}
    reads = {nb.stem: reads_other_chapters(nb) for nb, _, _ in todo}
    order = [nb.stem for nb, _, _ in todo]
    pending = sorted(todo, key=lambda t: -float(last.get(t[0].stem, 0.0)))  # longest first; stable otherwise
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           **{v: os.environ.get(v, threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    done: dict[str, dict] = {}
    running = {}
    failure = None
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            while (pending and failure is None) or running:
                for item in list(pending):
                    if failure is not None or len(running) >= jobs:
                        break
                    nb = item[0]
                    before = order[:order.index(nb.stem)]
                    if reads[nb.stem] and not all(s in done for s in before):
                        continue  # waits for every chapter before it
                    pending.remove(item)
                    running[pool.submit(execute, nb, item[1], item[2], force=force, progress=progress,
                                        warm=warm)] = nb.stem
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    stem = running.pop(fut)
                    try:
                        done[stem] = fut.result()
                    except ChapterFailed as err:
                        failure = failure or err
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if failure is not None:
        raise failure
    return [done[s] for s in order if s in done]


def model_build_dir(model: str | None) -> Path:
    """Where ``make book MODEL=...`` builds: one folder per model, so that lds-mini's book stays."""
    import re

    if model is None:
        return Path("_build")
    name = Path(model).name if Path(model).expanduser().exists() else model
    return Path("_build") / "models" / (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model")


def stage_source(executed_dir: Path, stage: Path, root: Path | None = None) -> Path:
    """The book's source as Jupyter Book sees it: pages from book/, executed notebooks."""
    root = root or book_root()
    stage = Path(stage)
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(root / name, stage / name)
    shutil.copytree(root / "book", stage / "book")
    (stage / "notebooks").mkdir()
    for nb in chapters(root):
        if nb.parent.name == "notebooks":
            executed = Path(executed_dir) / "notebooks" / nb.name
            if not executed.exists():
                raise FileNotFoundError(f"{executed} is missing: execute the chapters first (make book).")
            shutil.copy(executed, stage / "notebooks" / nb.name)
    return stage


def build_book(executed_dir: Path, output_dir: Path, *, strict: bool = True, root: Path | None = None,
               live_model: str | None = "lds-mini") -> Path:
    """Build the HTML book from executed notebooks; strict = ``-W -n --keep-going``.

    ``live_model`` is exported into the built book for its live pages (book/live.md, :mod:`lds.web`):
    the model the chapters ran on. One too large for a browser is left out, and the live pages say so.
    """
    root = root or book_root()
    output_dir = Path(output_dir).resolve()
    stage = stage_source(executed_dir, output_dir.parent / (output_dir.name + "-src"), root)
    script = Path(sys.executable).parent / "jupyter-book"
    launcher = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]
    cmd = launcher + ["build", str(stage), "--path-output", str(stage), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    built = stage / "_build" / "html"
    if proc.returncode != 0 or not (built / "index.html").exists():
        raise RuntimeError(f"The book build failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    if output_dir.exists():
        shutil.rmtree(output_dir)
    shutil.move(str(built), str(output_dir))
    if live_model is not None:
        install_live_model(output_dir, live_model, root)
    return output_dir


def install_live_model(html: Path, model: str, root: Path) -> None:
    """The live pages' runtime and ``model``'s graphs into the built book (``_static/live/``)."""
    from lds.pipeline.loading import load_pipeline
    from lds.web.export import ExportError, install_live

    try:
        export = install_live(html, load_pipeline(model), root)
    except ExportError as err:
        print(f"note: the live pages have no model in this build: {err}", file=sys.stderr)
        return
    print(f"live pages: {model} exported into {html / '_static' / 'live'} ({export.total_bytes / 1e6:.1f} MB)", flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m lds.book.runner``: execute the chapters and build the book (used by ``make book``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m lds.book.runner", description=main.__doc__)
    p.add_argument("--model", default=None,
                   help="run every chapter on this model (a diffusers folder or hub id) instead of lds-mini; "
                        "builds into _build/models/<name>/ unless --executed/--html say otherwise")
    p.add_argument("--executed", default=None, help="where executed notebooks go (default _build/executed)")
    p.add_argument("--html", default=None, help="where the HTML book goes (default _build/html)")
    p.add_argument("--parameters", default=None, help="YAML file: chapter stem -> parameters")
    p.add_argument("--only", nargs="*", default=None, help="execute only these chapters")
    p.add_argument("--force", action="store_true", help="re-execute even if nothing changed")
    p.add_argument("--no-build", action="store_true", help="execute only; do not build HTML")
    p.add_argument("--no-strict", action="store_true", help="do not treat warnings as errors")
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="chapters executed at once (default: LDS_JOBS, else 2 on a machine with 2 or more cores)")
    args = p.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        p.error("--jobs must be at least 1")
    root = book_root()
    base = model_build_dir(args.model)
    args.executed = args.executed or str(base / "executed")
    args.html = args.html or str(base / "html")
    if args.model is not None:
        from lds.pipeline.loading import ModelNotFoundError, resolve

        try:  # a wrong name fails here, before any chapter runs
            resolve(args.model)
        except ModelNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"model: {args.model}", flush=True)
    t0 = time.perf_counter()
    try:
        results = execute_book(root / args.executed, args.parameters, only=args.only, force=args.force, root=root,
                               model=args.model, jobs=args.jobs)
    except ChapterFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    ran = [r for r in results if not r["skipped"]]
    summary = f"{len(ran)} chapter(s) executed, {len(results) - len(ran)} unchanged, {time.perf_counter() - t0:.0f} s"
    if not args.no_build:
        try:
            html = build_book(root / args.executed, root / args.html, strict=not args.no_strict, root=root,
                              live_model=args.model or "lds-mini")
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"The book is built ({summary}). Open {html / 'index.html'}")
    else:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
