"""The reproducibility receipt at the end of every chapter and every `lds rerun`."""

from __future__ import annotations

import platform
import time
from pathlib import Path


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("lds", "torch", "diffusers", "transformers", "open_clip_torch", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _public_location(location: str) -> str:
    """Paths inside the lds package are shown relative to it; home folders are never written out."""
    import lds

    root = Path(lds.__file__).parent
    try:
        return "lds/" + str(Path(location).resolve().relative_to(root))
    except ValueError:
        home = str(Path.home())
        return location.replace(home, "~") if home and home != "/" else location


def receipt(pipe=None, parameters: dict | None = None, seed: int | None = None) -> dict:
    """Model (and where it came from), versions, seed, parameters, device, time."""
    import torch

    out = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(),
           "platform": f"{platform.system()} {platform.machine()}", "torch_threads": torch.get_num_threads()}
    if pipe is not None:
        from ..pipeline import model_source

        src = model_source(pipe).as_dict()
        out["model"] = {**src, "location": _public_location(src.get("location", ""))}
        out["device"] = str(pipe.unet.device)
        out["dtype"] = str(pipe.unet.dtype).replace("torch.", "")
        from ..safety import safety_summary

        out["safety_checker"] = safety_summary(pipe)  # whether one ran, and what it flagged
    if seed is not None:
        out["seed"] = int(seed)
    if parameters:
        out["parameters"] = parameters
    return out


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip("."), value


def show_receipt(pipe=None, parameters: dict | None = None, seed: int | None = None) -> dict:
    """Print the receipt in a notebook, record it (``receipt``) for ``lds rerun``, and return it."""
    import json

    from .record import record

    r = receipt(pipe, parameters, seed)
    rows = list(_flatten(r))
    width = max(len(k) for k, _ in rows)
    print("Reproducibility receipt")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    record("receipt", json.dumps(r, ensure_ascii=False, default=str))
    return r
