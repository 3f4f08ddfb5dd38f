"""An audit's run folder on disk: its spec, its shards (each written atomically), its results table and images.

Chapter 12 (Audits) explains the layout (see :mod:`lds.audit.run`)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from lds.audit.spec import AuditSpec, AuditSpecError, load_spec


def atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)



def shard_file(out: Path, k: int) -> Path:
    return Path(out) / "shards" / f"shard-{k:05d}.npz"



def write_shard(out: Path, k: int, result: dict) -> None:
    rows = json.dumps(result["rows"], ensure_ascii=False)
    atomic_write(shard_file(out, k), lambda f: np.savez_compressed(
        f, rows=np.array(rows), images=result["images"], unconditional=result["unconditional"],
        seeds=result["seeds"]))



SHARD_ARRAYS = ("rows", "images", "unconditional", "seeds")


def shard_done(path: Path) -> bool:
    """True if the shard's file is whole: a zip holding its four arrays. Only the zip's directory (at the file's
    end, so a file cut short has none) is read, no array; a shard that is not whole is rerun."""
    try:
        with np.load(path) as z:
            return set(SHARD_ARRAYS) <= set(z.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def done_shards(out: Path) -> set[int]:
    return {int(p.stem.split("-")[1]) for p in (Path(out) / "shards").glob("shard-*.npz") if shard_done(p)}


def read_shard(path: Path, array: str) -> np.ndarray | list[dict]:
    """One array of a finished shard (``rows`` as the list of dicts it holds); each array is read when asked for."""
    try:
        with np.load(path) as z:
            return json.loads(str(z["rows"])) if array == "rows" else z[array]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise AuditSpecError(f"{path} is damaged ({err}): delete it and run the audit again, which redoes that "
                             "shard.") from None



def refuse_folder(out: Path, s: AuditSpec) -> bool:
    """True if ``out`` already holds this audit, False if it is new; refuses anything else (never overwrites)."""
    import yaml

    spec_file = out / "spec.yaml"
    if spec_file.exists():
        old, new = yaml.safe_load(spec_file.read_text()), s.model_dump()
        if old != new:
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise AuditSpecError(f"{out} holds another audit (its spec differs in {', '.join(diff)}). It is never "
                                 "overwritten: choose another --out, or run its own spec there to resume it.")
        return True
    if out.exists() and any(out.iterdir()):
        raise AuditSpecError(f"{out} exists and is not an audit run folder (no spec.yaml); choose another --out.")
    return False



def prepare_folder(out: Path, s: AuditSpec) -> None:
    """Create the run folder, or accept it only if it holds the same spec."""
    import yaml

    if refuse_folder(out, s):
        return
    (out / "shards").mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(s.model_dump(), sort_keys=False, allow_unicode=True)
    atomic_write(out / "spec.yaml", lambda f: f.write(text.encode()))



def load_run_spec(out: Path) -> AuditSpec:
    """The spec a run folder was made with, validated as any spec is (a hand-edited one names its line)."""
    f = Path(out) / "spec.yaml"
    if not f.is_file():
        raise AuditSpecError(f"{out} is not an audit run folder (no spec.yaml).")
    return load_spec(f, check_model=False)



COLUMNS = ("shard", "image", "prompt_index", "prompt", "group", "lang", "seed", "guidance_scale", "target",
           "target_name", "nearest", "nearest_name", "nearest_distance", "target_rank", "right",
           "right_unconditional", "tone_colour", "tone_nearest", "distance_from_unconditional", "saturation",
           "out_of_range")



def schema():
    import pyarrow as pa

    types = {"prompt": pa.string(), "group": pa.string(), "lang": pa.string(), "target_name": pa.string(),
             "nearest_name": pa.string(), "tone_colour": pa.string(), "tone_nearest": pa.string(),
             "guidance_scale": pa.float64(), "nearest_distance": pa.float64(),
             "distance_from_unconditional": pa.float64(), "saturation": pa.float64(), "out_of_range": pa.float64(),
             "right": pa.bool_(), "right_unconditional": pa.bool_()}
    return pa.schema([(c, types.get(c, pa.int64())) for c in COLUMNS])



def load_results(out) -> list[dict]:
    """The results table of a run folder, one dict per image."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(out) / "results.parquet").to_pylist()



class StoredImages:
    """The stored images of a run folder, each shard's read from disk once, when first asked for.

    ``StoredImages(out).of(rows)``: the images of ``rows`` (from :func:`load_results`), as (N, H, W, 3) uint8.
    The report's figures share one, so that a report reads each shard's images once.
    """

    def __init__(self, out):
        self.out = Path(out)
        self._shards: dict[int, np.ndarray] = {}

    def shard(self, k: int) -> np.ndarray:
        if k not in self._shards:
            self._shards[k] = read_shard(shard_file(self.out, k), "images")
        return self._shards[k]

    def of(self, rows: list[dict]) -> np.ndarray:
        picked = [self.shard(r["shard"])[r["image"]] for r in rows]
        return np.stack(picked) if picked else np.zeros((0, 1, 1, 3), np.uint8)
