"""The two install paths (pip + pyproject.toml, conda + environment.yml) ask for the same packages."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return req.replace(" ", "").lower().replace("_", "-")


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("book", "test"):
        wanted |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert {_norm(r) for r in listed} == {_norm(r) for r in wanted}
    assert "python=3.11" in env["dependencies"]


def test_torch_is_never_pinned_alone():
    """torchvision comes in through open_clip_torch (lds imports nothing of it); pip matches it to torch, which a
    pin of torch alone would break."""
    import importlib.metadata

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0] for d in deps}
    assert "torch" in names and "torchvision" not in names
    assert "torchvision" in importlib.metadata.requires("open_clip_torch")
    assert not any(d.startswith("torch==") for d in deps), "never pin torch alone"


def test_attention_hook_libraries_are_pinned():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for lib in ("diffusers==", "transformers==", "open_clip_torch=="):
        assert any(d.startswith(lib) for d in deps), lib
