"""The suite's own rule: where ``CI`` is set, a test that would skip fails (tests/support/no_skips_in_ci.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, ci: bool) -> str:
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\n"
        "def test_skips_inside():\n    pytest.skip('no font')\n\n"
        "@pytest.mark.skipif(True, reason='no paper')\ndef test_skip_marker():\n    pass\n\n"
        "@pytest.mark.xfail(reason='known')\ndef test_expected_failure():\n    assert False\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "support"), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no_skips_in_ci", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=120)
    return r.stdout.splitlines()[-1]


def test_a_skip_fails_where_ci_is_set(tmp_path):
    # a skip inside the test fails it; a skip marker fails its setup (reported as an error)
    assert _run(tmp_path, ci=True).startswith("1 failed, 1 xfailed, 1 error")
    assert _run(tmp_path, ci=False).startswith("2 skipped, 1 xfailed")


def test_no_absolute_machine_paths_in_the_repository():
    try:
        tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT).stdout.split()
    except FileNotFoundError:  # no git: every file outside the build and the environment
        tracked = []
    if not tracked:
        tracked = [str(f.relative_to(ROOT)) for f in ROOT.rglob("*") if f.is_file() and not
                   {".git", ".venv", "_build", "runs", "__pycache__"} & set(f.relative_to(ROOT).parts)]
    assert len(tracked) > 50
    for name in tracked:
        if name.endswith((".py", ".md", ".yml", ".yaml", ".toml", ".ipynb", ".cfg", ".txt")) or name == "Makefile":
            text = (ROOT / name).read_text(errors="replace")
            for marker in (f"/{d}/" for d in ("work", "home", "Users", "root")):  # spelt so as not to match itself
                assert marker not in text, f"{name} names a machine path ({marker})"


def test_the_suite_registers_the_rule():
    import conftest

    assert getattr(conftest, "pytest_runtest_makereport", None) is not None, \
        "tests/conftest.py must import no_skips_in_ci's hook"
