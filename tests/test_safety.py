"""Safety: safetensors only, no remote code, no network, no home paths in what lds writes."""

import contextlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXECUTED, GUARD_STAMP, one_chapter_book, sockets_blocked

ROOT = Path(__file__).resolve().parents[1]
GUARD_MESSAGE = "network blocked by the lds test suite"  # tests/support/sitecustomize.py's MESSAGE


@pytest.fixture
def no_network(monkeypatch):
    real = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
            raise OSError(f"network blocked: {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(OSError("blocked")))


def test_source_never_unpickles_or_trusts_remote_code():
    for path in (ROOT / "lds").rglob("*.py"):
        text = path.read_text()
        assert "trust_remote_code" not in text, path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert not re.search(r"^\s*(import pickle|from pickle)|pickle\.load", text, re.M), path


def test_generation_with_sockets_blocked(no_network):
    from lds.pipeline.loading import load_pipeline
    from lds.pipeline.sampling import generate

    pipe = load_pipeline("lds-mini")
    assert generate(pipe, "frog", seed=0, num_inference_steps=3).images


def _guarded_env() -> dict:
    """The environment of a child process under the guard, without HF_HUB_OFFLINE: the guard, not the
    variable, keeps it offline."""
    with sockets_blocked():
        env = dict(os.environ)
    env.pop("HF_HUB_OFFLINE", None)
    return env


def test_cli_generation_in_a_process_with_network_blocked(tmp_path):
    env = _guarded_env()
    r = subprocess.run([sys.executable, "-m", "lds", "generate", "frog", "--steps", "3", "--out", str(tmp_path / "f.png")],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "lds", "generate", "frog", "--model", "someone/not-cached",
                        "--out", str(tmp_path / "g.png")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "not in the local cache" in r.stderr


# -- the guard in the kernels: a positive control first, then the chapters that generate ----------------

# A connection to a documentation-only address (RFC 5737): refused by the guard at once; without the
# guard it fails differently (unreachable or timed out) or, on an open network, connects.
_PROBE = """import socket
from lds.book.record import record
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2).close()
    outcome = "connected"
except OSError as err:
    outcome = f"{type(err).__name__}: {err}"
record("outcome", outcome)"""


def _probe(tmp_path, guarded: bool) -> str:
    from lds.book.record import read_records
    from lds.book.runner import execute

    book = one_chapter_book(tmp_path, "01_probe", "seed = 0  # unused", [_PROBE])
    out = tmp_path / "out" / "01_probe.ipynb"
    with sockets_blocked() if guarded else contextlib.nullcontext():
        execute(book / "notebooks" / "01_probe.ipynb", out, {}, progress=False, force=True)
    return read_records(out)["outcome"]


def test_the_guard_is_live_inside_a_papermill_kernel(tmp_path):
    """The same ``sockets_blocked`` the ``executed`` fixture runs every chapter under refuses a connection
    inside a papermill kernel; the same probe without it is not refused by the guard."""
    assert GUARD_MESSAGE in _probe(tmp_path / "on", guarded=True)
    assert GUARD_MESSAGE not in _probe(tmp_path / "off", guarded=False)


def _generating_chapters() -> list[str]:
    from lds.book.runner import chapters

    return [nb.stem for nb in chapters(ROOT) if nb.parent.name == "notebooks" and "generate(" in nb.read_text()]


def test_the_generating_chapters_ran_with_sockets_blocked(executed):
    """Every chapter that generates, executed (once per session, shared with its own tests) under the
    guard proved live above; none swallowed a refused connection."""
    generating = _generating_chapters()
    assert len(generating) >= 6, generating  # 1, 4, 6, 7, 8 and the model card today
    for stem in generating:
        assert executed(stem), stem
        assert GUARD_STAMP.exists(), "an executed copy from an unguarded run could have been reused"
        text = (EXECUTED / "notebooks" / f"{stem}.ipynb").read_text()
        assert GUARD_MESSAGE not in text, f"{stem} tried to reach the network"


@pytest.fixture(scope="module")
def offline_rerun(tmp_path_factory):
    """``lds rerun`` of chapter 1 (it generates) at CI size, in a process under the guard."""
    out = tmp_path_factory.mktemp("rerun") / "run"
    r = subprocess.run([sys.executable, "-m", "lds", "rerun", "1", "-p", "num_inference_steps", "3",
                        "-p", "timing_repeats", "1", "--out", str(out)],
                       capture_output=True, text=True, env=_guarded_env(), cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


def test_lds_rerun_with_sockets_blocked(offline_rerun):
    assert (offline_rerun / "receipt.json").exists()
    assert GUARD_MESSAGE not in (offline_rerun / "01_ensemble.ipynb").read_text()


def test_the_rerun_page_opens_offline(offline_rerun):
    """Nothing on the page is fetched from another host: no src/href/url() with a scheme (http, https,
    ftp, ...) or protocol-relative (``//host``); links a reader may click (``<a href>``) are allowed."""
    page = (offline_rerun / "01_ensemble.html").read_text()
    assert "data:image/png;base64" in page
    fetched = re.findall(r"<(?!a[\s>])[a-z]+[^>]*?\s(?:src|href|data)\s*=\s*[\"']?((?:[a-z][a-z0-9+.-]*:)?//[^\"'\s>]+)",
                         page, flags=re.I)
    fetched += re.findall(r"url\(\s*[\"']?((?:[a-z][a-z0-9+.-]*:)?//[^\"')]+)", page, flags=re.I)
    fetched += re.findall(r"@import\s+[\"']((?:[a-z][a-z0-9+.-]*:)?//[^\"']+)", page, flags=re.I)
    assert not fetched, f"the page fetches from other hosts: {sorted(set(fetched))[:10]}"


def test_no_home_or_checkout_paths_in_outputs(offline_rerun):
    """An executed chapter, its page and its receipt carry no absolute home or checkout path (the rerun
    above: chapter 1 executed outside the checkout)."""
    home = str(Path.home())
    for name in ("01_ensemble.ipynb", "01_ensemble.html", "receipt.json"):
        text = (offline_rerun / name).read_text()
        assert str(ROOT) not in text, name
        if home not in ("/", ""):
            assert home + "/" not in text, name
    text = (offline_rerun / "01_ensemble.ipynb").read_text()
    receipt = re.search(r'"location": "([^"]*)"', text.replace('\\"', '"'))
    assert receipt, "the executed chapter shows its receipt"
    assert not receipt.group(1).startswith("/"), receipt.group(1)
