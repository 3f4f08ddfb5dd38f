"""The notebook runner and `lds rerun`: parameters checked first, runs never overwritten, failures named."""

import csv
import json
from pathlib import Path

import pytest
from conftest import book_of_chapters, one_chapter_book

from lds.book.rerun import RerunError, rerun, rerun_batch
from lds.book.runner import ChapterFailed, chapters, check_parameters, execute, find_chapter, parameters_of

ROOT = Path(__file__).resolve().parents[1]


def _toy_book(tmp_path, failing=False):
    """A one-chapter book with the real layout, for fast runner tests."""
    body = ("raise RuntimeError('boom')" if failing
            else "from lds.book.record import record\nrecord('echo', prompt)\nrecord('twice', seed * 2)")
    return one_chapter_book(tmp_path, "01_toy", 'prompt = "red apple"  # the prompt\nseed = 0  # a seed\nscale = 1.5',
                            [body, "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()"])


def test_every_toc_chapter_has_one_parameters_cell_and_no_outputs():
    nbs = [nb for nb in chapters(ROOT) if nb.parent.name == "notebooks"]
    assert len(nbs) >= 10
    for nb in nbs:
        data = json.loads(nb.read_text())
        tagged = [c for c in data["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, nb.name
        assert not any(c.get("outputs") for c in data["cells"] if c["cell_type"] == "code"), f"{nb.name} has outputs"
        names = {p.name for p in parameters_of(nb)}
        if nb.stem not in ("09_conclusion", "10_claims"):
            assert "model" in names and "seed" in names, nb.name


def test_find_chapter_by_number_and_name():
    assert find_chapter("5", ROOT).stem == "05_tokenization"
    assert find_chapter("tokenization", ROOT).stem == "05_tokenization"
    with pytest.raises(ValueError, match="Unknown chapter"):
        find_chapter("nonsense", ROOT)


def test_parameters_are_checked_against_the_cell(tmp_path):
    book = _toy_book(tmp_path)
    nb = book / "notebooks" / "01_toy.ipynb"
    assert [p.name for p in parameters_of(nb)] == ["prompt", "seed", "scale"]
    assert check_parameters(nb, {"seed": "3", "scale": "2"}) == {"seed": 3, "scale": 2.0}
    with pytest.raises(ValueError, match="no parameter 'sed'.*Valid parameters: prompt"):
        check_parameters(nb, {"sed": 1})
    with pytest.raises(ValueError, match="must be int"):
        check_parameters(nb, {"seed": "three"})


def test_execute_skips_unchanged_and_names_the_failing_cell(tmp_path):
    book = _toy_book(tmp_path / "ok")
    out = tmp_path / "exec" / "01_toy.ipynb"
    first = execute(book / "notebooks" / "01_toy.ipynb", out, {"seed": 2}, progress=False)
    again = execute(book / "notebooks" / "01_toy.ipynb", out, {"seed": 2}, progress=False)
    assert not first["skipped"] and again["skipped"]
    bad = _toy_book(tmp_path / "bad", failing=True)
    with pytest.raises(ChapterFailed, match=r"01_toy.*cell 2.*boom") as err:
        execute(bad / "notebooks" / "01_toy.ipynb", tmp_path / "exec2" / "01_toy.ipynb", progress=False)
    assert err.value.output.exists(), "the partly executed notebook is kept"


def test_rerun_writes_notebook_html_and_receipt(tmp_path):
    book = _toy_book(tmp_path / "book")
    folder = rerun("toy", {"prompt": "grinning face", "seed": "4"}, out=tmp_path / "run1", root=book, progress=False)
    receipt = json.loads((folder / "receipt.json").read_text())
    assert receipt["parameters"] == {"prompt": "grinning face", "seed": 4, "scale": 1.5}
    assert receipt["status"] == "ok" and receipt["versions"]["diffusers"]
    page = (folder / "01_toy.html").read_text()
    assert "data:image/png;base64" in page
    assert "https://" not in "".join(l for l in page.splitlines() if "<script" in l and "src=" in l)
    with pytest.raises(RerunError, match="never overwritten"):
        rerun("toy", {}, out=tmp_path / "run1", root=book, progress=False)
    with pytest.raises(RerunError, match="no parameter"):
        rerun("toy", {"promt": "x"}, out=tmp_path / "run2", root=book, progress=False)
    assert not (tmp_path / "run2").exists(), "nothing is created before parameters are valid"


def test_failing_rerun_keeps_what_it_produced(tmp_path):
    book = _toy_book(tmp_path / "book", failing=True)
    with pytest.raises(RerunError, match="failed at cell 2.*kept in"):
        rerun("toy", {}, out=tmp_path / "run", root=book, progress=False)
    receipt = json.loads((tmp_path / "run" / "receipt.json").read_text())
    assert receipt["status"] == "failed" and receipt["error"]["cell"] == 2
    assert (tmp_path / "run" / "01_toy.ipynb").exists()


def test_batch_runs_and_comparison_page(tmp_path):
    book = _toy_book(tmp_path / "book")
    rows = tmp_path / "class.csv"
    with open(rows, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "prompt", "seed"])
        w.writerow(["ana", "red apple", "1"])
        w.writerow(["ben", "rocket", "2"])
    index = rerun_batch("toy", rows, out=tmp_path / "class", root=book)
    page = index.read_text()
    assert "ana" in page and "ben" in page and page.count("data:image/png") >= 2
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,sede\nx,1\n")
    with pytest.raises(RerunError, match="row 1.*no parameter 'sede'"):
        rerun_batch("toy", bad, out=tmp_path / "class2", root=book)
    assert not (tmp_path / "class2").exists()


def test_rerun_into_an_unwritable_place(tmp_path):
    book = _toy_book(tmp_path / "book")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RerunError, match="Cannot create the run folder"):
        rerun("toy", {}, out=blocker / "run", root=book, progress=False)


# -- the fingerprint: what makes a cached executed chapter stale --------------------------------------

def _flip_a_byte(path: Path) -> None:
    import os

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: the old fingerprint (sizes only) missed exactly this
    before = path.stat().st_mtime_ns
    path.write_bytes(bytes(data))
    # a rewrite within one clock tick can keep the timestamp: make the change visible as a later edit would
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_fingerprint_covers_weights_corpus_code_and_library_versions(tmp_path, monkeypatch):
    import shutil

    from lds.book import runner

    pkg = tmp_path / "lds"
    shutil.copytree(runner.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runner, "PACKAGE_DIR", pkg)
    nb = _toy_book(tmp_path / "book") / "notebooks" / "01_toy.ipynb"
    base = runner.fingerprint(nb, {})
    assert runner.fingerprint(nb, {}) == base
    # the runner lives in lds/book/ and still fingerprints the whole lds package, not its own folder
    assert runner.PACKAGE_DIR.name == "lds" and (runner.PACKAGE_DIR / "book" / "runner.py").is_file()
    seen = {base}
    for changed in ("weights/lds-mini/unet/diffusion_pytorch_model.safetensors", "data/corpus32.npz",
                    "measures.py", "book/record.py"):
        _flip_a_byte(pkg / changed)
        fp = runner.fingerprint(nb, {})
        assert fp not in seen, f"a changed byte in {changed} left the fingerprint unchanged"
        seen.add(fp)
    # code in a subfolder the package does not have yet
    (pkg / "audits").mkdir(exist_ok=True)
    (pkg / "audits" / "new.yaml").write_text("x: 1\n")
    fp = runner.fingerprint(nb, {})
    assert fp not in seen
    seen.add(fp)
    # a library upgrade
    versions = runner.library_versions()
    assert {"torch", "diffusers", "transformers", "open_clip_torch"} <= set(versions)
    monkeypatch.setattr(runner, "library_versions", lambda: {**versions, "diffusers": "99.0"})
    assert runner.fingerprint(nb, {}) not in seen


def test_fingerprint_covers_a_model_folder_named_by_the_parameters(tmp_path):
    import shutil

    from lds.book.runner import PACKAGE_DIR, fingerprint

    model = tmp_path / "model"
    shutil.copytree(PACKAGE_DIR / "weights" / "lds-mini" / "vae", model / "vae")
    nb = _toy_book(tmp_path / "book") / "notebooks" / "01_toy.ipynb"
    before = fingerprint(nb, {"model": str(model)})
    _flip_a_byte(model / "vae" / "diffusion_pytorch_model.safetensors")
    assert fingerprint(nb, {"model": str(model)}) != before


def test_file_hashes_are_computed_once_per_process(monkeypatch, tmp_path):
    from lds.book import runner

    f = tmp_path / "w.bin"
    f.write_bytes(b"\0" * 1000)
    calls = []
    real = runner.hashlib.sha256
    monkeypatch.setattr(runner.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    first = runner.file_digest(f)
    assert runner.file_digest(f) == first and len(calls) == 1
    _flip_a_byte(f)
    assert runner.file_digest(f) != first and len(calls) == 2


def test_papermill_reads_every_parameters_cell_as_the_runner_does():
    """papermill injects parameters by parsing the tagged cell itself; a line it cannot parse (an ``=`` in a
    comment, say) is passed on as an "unknown parameter" with a warning in the executed chapter."""
    from papermill.translators import PythonTranslator

    for nb in [nb for nb in chapters(ROOT) if nb.parent.name == "notebooks"]:
        cell = next(c for c in json.loads(nb.read_text())["cells"]
                    if "parameters" in c.get("metadata", {}).get("tags", []))
        source = "".join(cell["source"])
        seen = [p.name for p in PythonTranslator.inspect({"source": source})]
        assert seen == [p.name for p in parameters_of(nb)], nb.name


def _three_chapter_book(folder: Path, failing: str | None = None) -> Path:
    """01 and 02 record a number; 03 reads the executed copies of both (an ``executed_dir`` parameter)."""
    chapters = {
        "01_one": ('seed = 1  # a seed', "import time; time.sleep(2)\nfrom lds.book.record import record\nrecord('n', seed)"),
        "02_two": ('seed = 2  # a seed', "from lds.book.record import record\nrecord('n', seed)"),
        "03_reader": ('executed_dir = "."  # where the other chapters are',
                      "from pathlib import Path\nfrom lds.book.record import read_records, record\n"
                      "record('sum', sum(read_records(Path(executed_dir) / f'{s}.ipynb')['n'] "
                      "for s in ('01_one', '02_two')))"),
    }
    return book_of_chapters(folder, {stem: (params, ["raise RuntimeError('boom')" if stem == failing else body])
                                     for stem, (params, body) in chapters.items()})


def test_book_executes_two_chapters_at_once_and_the_reader_waits(tmp_path):
    from lds.book.record import read_records
    from lds.book.runner import execute_book

    book = _three_chapter_book(tmp_path / "book")
    out = tmp_path / "exec"
    results = execute_book(out, root=book, progress=False, jobs=2)
    assert [r["chapter"] for r in results] == ["01_one", "02_two", "03_reader"]  # the table of contents' order
    # 03 ran after both others finished (01 sleeps, so 03 would otherwise have started beside it and failed)
    assert read_records(out / "notebooks" / "03_reader.ipynb")["sum"] == 3
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {"01_one", "02_two", "03_reader"} and timings["01_one"] >= 2
    again = execute_book(out, root=book, progress=False, jobs=2)
    assert all(r["skipped"] for r in again)


def test_a_failing_chapter_stops_the_parallel_book_and_is_named(tmp_path):
    from lds.book.runner import execute_book

    book = _three_chapter_book(tmp_path / "book", failing="02_two")
    with pytest.raises(ChapterFailed, match=r"02_two.*boom") as err:
        execute_book(tmp_path / "exec", root=book, progress=False, jobs=2)
    assert err.value.output.exists()
    assert not (tmp_path / "exec" / "notebooks" / "03_reader.ipynb").exists(), "the reader never started"


def test_jobs_setting_is_checked(monkeypatch):
    from lds.book.runner import default_jobs

    monkeypatch.setenv("LDS_JOBS", "3")
    assert default_jobs() == 3
    monkeypatch.setenv("LDS_JOBS", "many")
    with pytest.raises(ValueError, match="whole number"):
        default_jobs()
    monkeypatch.setenv("LDS_JOBS", "0")
    with pytest.raises(ValueError, match="at least 1"):
        default_jobs()


def test_one_chapter_at_a_time_where_memory_is_short(monkeypatch):
    import lds.book.runner as runner

    monkeypatch.delenv("LDS_JOBS", raising=False)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(runner, "_available_memory", lambda: 2 * 1024 ** 3)
    assert runner.default_jobs() == 1
    monkeypatch.setattr(runner, "_available_memory", lambda: 8 * 1024 ** 3)
    assert runner.default_jobs() == 2
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 1)
    assert runner.default_jobs() == 1


# A chapter that shows what a kernel is: its modules, figures, randomness, folder and environment, and
# whether the runner's memory hook is installed
_KERNEL_PROBE = [
    "import os, sys\nfrom pathlib import Path\nfrom lds.book.record import record\n"
    "record('torch_before_first_import', 'torch' in sys.modules)\n"
    "record('cwd_is_notebook_folder', Path.cwd().name == 'notebooks')\n"
    "record('offline', os.environ.get('HF_HUB_OFFLINE'))\n"
    "record('trim_hook', any('trim' in repr(getattr(f, '__code__', '')) or 'trim' in repr(f)\n"
    "                        for f in get_ipython().events.callbacks['post_run_cell']))",
    "import numpy as np, torch\nrecord('draw', float(np.random.default_rng(seed).normal() + torch.randn(1, generator="
    "torch.Generator().manual_seed(seed)).item()))\nprint('printed', seed)",
    "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2]); plt.show()",
    "import warnings\nwarnings.warn('a warning from a cell')",
    # progress bars of libraries that the warm server imported before any kernel existed
    "from transformers.utils import logging as tlog\nfrom diffusers.utils import logging as dlog\n"
    "for bar in (tlog.tqdm(range(3), desc='transformers'), dlog.tqdm(range(3), desc='diffusers')):\n"
    "    list(bar)\nfrom tqdm.auto import tqdm\nrecord('bar_class', tqdm.__module__)",
]


def _probe_outputs(notebook: Path) -> list:
    """Each cell's outputs without what differs between any two runs (none here is timed; a warning names the
    kernel's process id in its cell's file name)."""
    import re

    text = re.sub(r"ipykernel_[0-9]+", "ipykernel_PID", notebook.read_text())
    text = re.sub(r'"model_id": "[0-9a-f]+"', '"model_id": "ID"', text)  # a progress bar's widget
    text = re.sub(r"[0-9.]+it/s|[0-9]+:[0-9]+<|<[0-9]+:[0-9]+", "T", text)  # a text progress bar's speed
    nb = json.loads(text)
    return [[{k: v for k, v in o.items() if k not in ("execution_count", "metadata")} for o in c.get("outputs", [])]
            for c in nb["cells"] if c["cell_type"] == "code"]


def test_warm_kernels_give_the_notebooks_fresh_kernels_give(tmp_path, monkeypatch):
    """Two chapters through the warm server (lds/book/warm.py) and the same two in fresh kernels: the same
    outputs, figure included, except that torch was already imported in the warm ones."""
    from lds.book.record import read_records
    from lds.book.runner import execute_book
    from lds.book.warm import available

    assert available(), "warm kernels are used on Linux"
    book = book_of_chapters(tmp_path / "book", {f"0{i}_probe": (f"seed = {i}  # a seed", _KERNEL_PROBE)
                                                for i in (1, 2)})
    execute_book(tmp_path / "warm", root=book, progress=False, jobs=2)
    monkeypatch.setenv("LDS_WARM_KERNELS", "0")
    execute_book(tmp_path / "fresh", root=book, progress=False, jobs=2)
    for stem in ("01_probe", "02_probe"):
        warm, fresh = (tmp_path / run / "notebooks" / f"{stem}.ipynb" for run in ("warm", "fresh"))
        w, f = read_records(warm), read_records(fresh)
        assert w.pop("torch_before_first_import") is True and f.pop("torch_before_first_import") is False
        assert w == f and w["cwd_is_notebook_folder"] and w["offline"] == "1" and w["trim_hook"] is True
        w_out, f_out = _probe_outputs(warm), _probe_outputs(fresh)
        assert w_out[2:] == f_out[2:]  # [0] the parameters, [1] the probe of the kernel itself (compared above)
        assert "image/png" in w_out[3][0]["data"], "the figure is drawn inline in a warm kernel too"
        assert "a warning from a cell" in "".join(w_out[4][0]["text"])
    assert read_records(tmp_path / "warm" / "notebooks" / "01_probe.ipynb")["draw"] != \
        read_records(tmp_path / "warm" / "notebooks" / "02_probe.ipynb")["draw"]


def test_a_killed_attach_process_takes_its_warm_kernel_with_it(tmp_path):
    """The server forks a kernel for each attach process and kills it when that process goes (jupyter_client
    kills the attach process when it gives up on a kernel)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from lds.book.warm import WarmServer

    with WarmServer() as server:
        attach = subprocess.Popen([sys.executable, "-m", "lds.book.warm", "attach", server.socket_path,
                                   "-f", str(tmp_path / "kernel.json")])
        deadline = time.time() + 60
        kernels = []
        while time.time() < deadline and not kernels:
            out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout
            kernels = [int(p) for p in out.split()]
            time.sleep(0.2)
        assert kernels, "the server forked no kernel"
        os.kill(attach.pid, signal.SIGKILL)
        attach.wait()
        deadline = time.time() + 10
        while time.time() < deadline and os.path.exists(f"/proc/{kernels[0]}"):
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{kernels[0]}"), "the kernel outlived its attach process"
