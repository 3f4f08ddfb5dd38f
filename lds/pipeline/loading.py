"""Loading a model: lds-mini, a local diffusers folder, or a Hugging Face hub id.

Chapter 1 (The model is not one network) explains what comes back.

:func:`load_pipeline` returns a real diffusers ``StableDiffusionPipeline``. Nothing touches the
network unless the reader allows it (``allow_download=True`` or ``LDS_ALLOW_DOWNLOAD=1``): a hub
id is looked up in the local Hugging Face cache only, so that a classroom without internet gets an
immediate, clear error instead of a 45-second retry.

:func:`model_source` says where any pipeline's weights came from: the instruments of every chapter
ask it (for a model's name, its folder, its ``training_config.json``), so they work on a plain
diffusers pipeline as well as on one from :func:`load_pipeline`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import weakref
from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
BUILTIN = {"lds-mini": WEIGHTS_DIR / "lds-mini"}
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelNotFoundError(FileNotFoundError):
    """The requested model is not available offline (or does not exist)."""


def downloads_allowed(allow_download: bool = False) -> bool:
    return bool(allow_download) or os.environ.get("LDS_ALLOW_DOWNLOAD", "") not in ("", "0", "false", "False")


def _is_pipeline_folder(path: Path) -> bool:
    return (path / "model_index.json").is_file()


def resolve(name_or_path: str, *, allow_download: bool = False) -> tuple[str, str]:
    """Where a model comes from: ``(kind, location)`` with kind in builtin / folder / hub-cache / hub.

    Raises :class:`ModelNotFoundError` with what was looked for and what to do.
    """
    name = str(name_or_path).strip()
    if name in BUILTIN:
        folder = BUILTIN[name]
        if not _is_pipeline_folder(folder):
            raise ModelNotFoundError(
                f"The built-in model {name!r} should be at {folder}, but its model_index.json is missing. "
                "Reinstall lds from a complete checkout, or retrain it with `lds train`.")
        return "builtin", str(folder)
    path = Path(name).expanduser()
    if path.exists():
        if _is_pipeline_folder(path):
            return "folder", str(path.resolve())
        raise ModelNotFoundError(
            f"{path} exists but is not a diffusers pipeline folder (no model_index.json). Point --model at the "
            "folder that contains model_index.json, unet/, vae/, text_encoder/ and tokenizer/.")
    if _HUB_ID.match(name):
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "model_index.json")
        if isinstance(cached, str):
            return "hub-cache", str(Path(cached).parent)
        if downloads_allowed(allow_download):
            return "hub", name
        raise ModelNotFoundError(
            f"{name!r} looks like a Hugging Face hub id, but it is not in the local cache "
            f"({_cache_dir()}) and downloads are off. Either allow a download (allow_download=True, "
            "`lds generate --allow-download`, or LDS_ALLOW_DOWNLOAD=1; needs internet and, for some models, "
            "accepting a licence on the hub), or pass the path of a local diffusers folder.")
    raise ModelNotFoundError(
        f"Unknown model {name!r}: it is not a built-in model ({', '.join(BUILTIN)}), not an existing folder, "
        "and not a hub id of the form 'owner/name'. Run `lds info` to see the models available offline.")


def _cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def load_pipeline(name_or_path: str = "lds-mini", *, allow_download: bool = False, device: str | None = None,
                  dtype=None, safety_checker: bool | None = None):
    """A diffusers ``StableDiffusionPipeline`` for ``name_or_path`` (see :func:`resolve`).

    ``device`` defaults to the CPU and ``dtype`` to float32; GPU users pass ``device="cuda"`` and
    may pass ``dtype=torch.float16``, or set ``LDS_DEVICE=cuda`` (and ``LDS_DTYPE=float16``) so that
    every chapter, which calls ``load_pipeline(model)``, runs on the GPU unchanged.

    A safety checker the folder ships (SD 1.5's does; lds-mini has none) is loaded and runs after
    every generation, as in diffusers (:mod:`lds.pipeline.safety`); ``safety_checker=False`` (or
    ``LDS_SAFETY_CHECKER=0``) leaves it out, with diffusers' own warning about doing so.
    """
    import torch
    from diffusers import StableDiffusionPipeline

    kind, location = resolve(name_or_path, allow_download=allow_download)
    device = device or os.environ.get("LDS_DEVICE", "cpu")
    if dtype is None:
        name = os.environ.get("LDS_DTYPE", "float32")
        if name not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"LDS_DTYPE={name!r}: use float32, float16 or bfloat16.")
        dtype = getattr(torch, name)
    # local_files_only is what keeps a load offline: no weights are fetched (tests/test_provenance.py).
    # Setting HF_HUB_OFFLINE here would change nothing, since huggingface_hub reads it once, at import;
    # set before Python starts (make and lds.book.runner do), it also stops huggingface_hub 2.x's one
    # request per process for its user-agent registry (3-second timeout), which local_files_only does not.
    offline = kind != "hub"
    if safety_checker is None:
        safety_checker = os.environ.get("LDS_SAFETY_CHECKER", "1") not in ("0", "false", "False")
    kwargs = dict(dtype=dtype, use_safetensors=True)
    if not safety_checker:
        kwargs.update(safety_checker=None, feature_extractor=None)
    # A sub-second local load needs no progress bars in a notebook; restored afterwards.
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    bars = (dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled())
    if kind != "hub":
        dlog.disable_progress_bar()
        tlog.disable_progress_bar()
    try:
        if kind == "hub-cache":
            pipe = StableDiffusionPipeline.from_pretrained(name_or_path, local_files_only=True, **kwargs)
        else:
            pipe = StableDiffusionPipeline.from_pretrained(location, local_files_only=offline, **kwargs)
    except (OSError, ValueError, RuntimeError) as err:  # corrupted or incomplete weights
        if kind == "hub-cache":
            raise ModelNotFoundError(
                f"The cached copy of {name_or_path!r} at {location} is incomplete or unreadable ({err}), and "
                "downloads are off. Allow a download to complete it (allow_download=True, `lds generate "
                "--allow-download`, or LDS_ALLOW_DOWNLOAD=1; needs internet), or pass the path of a complete "
                "local diffusers folder.") from err
        raise ModelNotFoundError(
            f"Could not load the model at {location}: {err}. The files may be incomplete or corrupted; "
            "for lds-mini, restore lds/weights/lds-mini from git (`git checkout -- lds/weights`) or retrain "
            "it with `lds train`.") from err
    finally:
        if bars[0]:
            dlog.enable_progress_bar()
        if bars[1]:
            tlog.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    _LOADED[pipe] = ModelSource(str(name_or_path), kind, location)
    return pipe


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a pipeline's weights came from: what :func:`model_source` returns (chapter 1 prints it)."""

    name: str  # what the reader asked for: "lds-mini", a folder, a hub id
    kind: str  # builtin / folder / hub-cache / hub, "in memory" (assembled from parts), or "unknown"
    location: str  # the folder the weights were read from (the hub id for "hub"); "" when there is none

    @property
    def folder(self) -> Path | None:
        """The local folder beside the weights (``training_config.json``, ``clip/`` ...), or None."""
        return Path(self.location) if self.location and self.kind != "hub" else None

    def training_config(self) -> dict | None:
        """The configuration ``lds train`` trained these weights with (``training_config.json`` beside them:
        the web, the filter, each network's recipe), or None for a model that has none (SD 1.5)."""
        f = self.folder / "training_config.json" if self.folder else None
        return json.loads(f.read_text()) if f is not None and f.is_file() else None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# What load_pipeline knows about the pipelines it returned (the name as asked for), kept beside them
# rather than written onto the library's object; a pipeline that is collected drops out by itself.
_LOADED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def model_source(pipe) -> ModelSource:
    """Where ``pipe``'s weights came from, for any diffusers pipeline.

    For a pipeline from :func:`load_pipeline`, what it resolved; for any other, its
    ``name_or_path`` (diffusers' record of the folder or hub id ``from_pretrained`` read) resolved
    the same way, without touching the network; for one assembled from parts, ``"in memory"``.
    """
    known = _LOADED.get(pipe)
    if known is not None:
        return known
    name = str(getattr(pipe, "name_or_path", None) or getattr(getattr(pipe, "config", None), "_name_or_path", None)
               or "")
    if not name:
        return ModelSource(f"{type(pipe).__name__} assembled in memory", "in memory", "")
    try:
        kind, location = resolve(name, allow_download=True)  # allow: names an uncached hub id, never fetches
    except ModelNotFoundError:
        return ModelSource(name, "unknown", "")
    if kind == "folder":
        for builtin, folder in BUILTIN.items():
            if Path(location) == folder.resolve():
                return ModelSource(builtin, "builtin", str(folder))
    return ModelSource(name, kind, location)


def available_models() -> list[dict]:
    """Models that load offline: built-ins and SD-family pipelines in the Hugging Face cache."""
    out = []
    for name, folder in BUILTIN.items():
        out.append({"name": name, "kind": "builtin", "location": str(folder), "available": _is_pipeline_folder(folder)})
    try:
        from huggingface_hub import scan_cache_dir

        for repo in scan_cache_dir().repos:
            if repo.repo_type == "model" and any(
                    f.file_name == "model_index.json" for rev in repo.revisions for f in rev.files):
                out.append({"name": repo.repo_id, "kind": "hub-cache", "location": str(repo.repo_path),
                            "available": True})
    except Exception:  # no cache folder yet  # noqa: BLE001
        pass
    return out


def save_pipeline(pipe, folder) -> Path:
    """Save a pipeline with Stable Diffusion 1.5's folder layout, so that it loads in the versions
    readers have (transformers 4.x and diffusers 0.2x as well as today's).

    ``save_pretrained`` writes today's layout; two parts of it differ from SD 1.5's folder and
    break older loaders: the text encoder's tensor names (no ``text_model.`` prefix, see
    :func:`lds.models.text_encoder.save_text_encoder_as_sd15`) and a tokenizer folder holding only
    ``tokenizer.json`` (the ``CLIPTokenizer`` that model_index.json names needs ``vocab.json`` and
    ``merges.txt``; :func:`lds.models.tokenizer.build_tokenizer_files` writes them and its configs).
    """
    from lds.models.text_encoder import save_text_encoder_as_sd15
    from lds.models.tokenizer import build_tokenizer_files

    folder = Path(folder)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    save_text_encoder_as_sd15(folder / "text_encoder")
    build_tokenizer_files(folder / "tokenizer")
    return folder


def lds_mini_path() -> Path:
    return BUILTIN["lds-mini"]
