"""What made these images: the model and where it came from, library versions, seed, parameters, device.

The receipt at the end of every chapter and `lds rerun` (:func:`lds.book.receipt.show_receipt`), and in every
audit's run folder."""

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
    root = Path(__file__).resolve().parents[1]  # the lds package
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
        from lds.pipeline.loading import model_source

        src = model_source(pipe).as_dict()
        out["model"] = {**src, "location": _public_location(src.get("location", ""))}
        out["device"] = str(pipe.unet.device)
        out["dtype"] = str(pipe.unet.dtype).replace("torch.", "")
        from lds.pipeline.safety import safety_summary

        out["safety_checker"] = safety_summary(pipe)  # whether one ran, and what it flagged
    if seed is not None:
        out["seed"] = int(seed)
    if parameters:
        out["parameters"] = parameters
    return out
