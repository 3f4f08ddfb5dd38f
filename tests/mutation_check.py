"""Mutation check: does the suite fail when the book breaks? (``make bench`` runs it; not part of CI.)

Each mutation is a deliberate breakage applied to a scratch copy of the repository (the working tree:
tracked and untracked files, without _build/, .git or .venv). The tests that guard against it run in
that copy; a mutation counts as caught when they fail. The same tests first run on an unmutated copy and
must pass, so a failure is the mutation's doing. Every mutation must be caught; the exit status is 1
otherwise.

    python tests/mutation_check.py            # all mutations, a table and benchmarks/mutations.json
    python tests/mutation_check.py --only guidance-formula offline-guard-sitecustomize
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise RuntimeError(f"mutation target not found in {path}: {old[:70]!r}")
    path.write_text(text.replace(old, new, 1))


def random_unet(root: Path) -> None:
    """lds-mini's U-Net replaced by a re-initialised one of the same configuration (same tensors, same
    header, same file size)."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = root / "lds" / "weights" / "lds-mini" / "unet"
    target = folder / "diffusion_pytorch_model.safetensors"
    with safe_open(str(target), "pt") as f:
        metadata, keys = f.metadata(), list(f.keys())
        dtypes = {k: f.get_slice(k).get_dtype() for k in keys}
    torch.manual_seed(0)
    config = json.loads((folder / "config.json").read_text())
    state = UNet2DConditionModel.from_config(config).state_dict()
    size = target.stat().st_size
    save_file({k: state[k].to(getattr(torch, {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtypes[k]]))
                  .contiguous() for k in keys}, str(target), metadata=metadata)
    if target.stat().st_size != size:
        raise RuntimeError(f"the random U-Net file is {target.stat().st_size} bytes, not {size}")


MUTATIONS = {
    "random-unet-weights": (
        "the shipped U-Net replaced by random weights of the same size",
        random_unet,
        ["tests/test_model_card.py::test_live_retrieval_from_the_shipped_weights"]),
    "guidance-formula": (
        "guidance returns the prompted prediction instead of uncond + s (cond - uncond)",
        lambda r: _replace(r / "lds" / "guidance.py",
                           "return noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)",
                           "return noise_pred_text"),
        ["tests/test_guidance.py"]),
    "offline-guard-sitecustomize": (
        "the socket guard loaded by the kernels does nothing",
        lambda r: (r / "tests" / "support" / "sitecustomize.py").write_text('"""disabled"""\n'),
        ["tests/test_safety.py::test_the_guard_is_live_inside_a_papermill_kernel"]),
    "offline-guard-not-installed": (
        "the kernels are started without tests/support on PYTHONPATH",
        lambda r: _replace(r / "tests" / "conftest.py",
                           'os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT)] + ([old] if old else []))',
                           'os.environ["PYTHONPATH"] = old or ""'),
        ["tests/test_safety.py::test_the_guard_is_live_inside_a_papermill_kernel"]),
    "chapter-key-number": (
        "chapter 5 records a vocabulary 256 entries short (CLIP's own figure)",
        lambda r: _replace(r / "notebooks" / "05_tokenization.ipynb",
                           'record(\\"vocab_total\\", vd.total)', 'record(\\"vocab_total\\", vd.total - 256)'),
        ["tests/test_ch05_tokenization.py::test_vocabulary_and_claim_6"]),
    "fingerprint-by-size": (
        "the runner's fingerprint reads file sizes instead of contents",
        lambda r: _replace(r / "lds" / "book" / "runner.py", "h.update(file_digest(f).encode())",
                           "h.update(str(f.stat().st_size).encode())"),
        ["tests/test_runner.py::test_fingerprint_covers_weights_corpus_code_and_library_versions"]),
    "skips-allowed-in-ci": (
        "tests/conftest.py no longer turns a skip into a failure where CI is set",
        lambda r: _replace(r / "tests" / "conftest.py",
                           "from support.no_skips_in_ci import pytest_runtest_makereport", "import support"),
        ["tests/test_no_skips.py"]),
    "notebook-writes-outside": (
        "the check that a chapter writes only inside its folder does nothing",
        lambda r: _replace(r / "tests" / "conftest.py", "    if changed:\n        raise AssertionError",
                           "    if False:\n        raise AssertionError"),
        ["tests/test_promises.py::test_a_write_outside_the_folder_is_caught"]),
}


def scratch_copy(dest: Path) -> Path:
    """The working tree (tracked and untracked, not ignored files) copied to ``dest``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def run_tests(root: Path, tests: list[str], timeout: int) -> tuple[bool, float, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LDS_BOOK", "CI")}
    env.update(PYTHONPATH=str(root), HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests], cwd=root,
                           env=env, capture_output=True, text=True, timeout=timeout)
        lines = (r.stdout + r.stderr).strip().splitlines()
        why = [l.strip() for l in lines if l.startswith("E ")][:1]  # the first assertion that failed
        passed, tail = r.returncode == 0, lines[-1:] + why
    except subprocess.TimeoutExpired:
        passed, tail = False, ["timed out"]
    return passed, round(time.perf_counter() - t0, 1), " ".join(tail)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", choices=sorted(MUTATIONS), help="these mutations only")
    p.add_argument("--timeout", type=int, default=1200, help="seconds for one test run")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "mutations.json"), help="where the report goes")
    args = p.parse_args(argv)
    names = args.only or list(MUTATIONS)
    results = []
    with tempfile.TemporaryDirectory(prefix="lds-mutations-") as tmp:
        base = scratch_copy(Path(tmp) / "base")
        subsets = sorted({t for n in names for t in MUTATIONS[n][2]})
        ok, seconds, tail = run_tests(base, subsets, args.timeout)
        print(f"unmutated copy: {'pass' if ok else 'FAIL'} ({seconds} s) {tail}", flush=True)
        if not ok:
            print("the guarding tests fail without a mutation; fix that first", file=sys.stderr)
            return 2
        for name in names:
            what, apply, tests = MUTATIONS[name]
            root = Path(tmp) / name
            shutil.copytree(base, root, ignore=shutil.ignore_patterns("_build", "__pycache__"))
            apply(root)
            passed, seconds, tail = run_tests(root, tests, args.timeout)
            results.append({"mutation": name, "breakage": what, "tests": tests, "caught": not passed,
                            "seconds": seconds, "outcome": tail})
            print(f"{'caught ' if not passed else 'MISSED '} {name:<30} by {', '.join(tests)} ({seconds} s): {tail}",
                  flush=True)
            shutil.rmtree(root, ignore_errors=True)
    report = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "mutations": results,
              "all_caught": all(r["caught"] for r in results)}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{sum(r['caught'] for r in results)} of {len(results)} mutations caught; report in {args.json}")
    return 0 if report["all_caught"] else 1


if __name__ == "__main__":
    sys.exit(main())
