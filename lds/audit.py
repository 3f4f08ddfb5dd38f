"""Audits: many prompts x seeds x guidance scales, declared in a file, resumable, distributed.

Chapter 12 (Audits) explains it and runs the two shipped audits (``lds/audits/*.yaml``).

An audit is a YAML spec (:class:`AuditSpec`) turned into a run folder::

    DIR/spec.yaml          the spec as run (a rerun resumes only when it is the same)
    DIR/shards/*.npz       one file per shard: its rows and its images (uint8), written atomically
    DIR/results.parquet    one row per image (also results.csv)
    DIR/receipt.json       model, versions, platform, spec
    DIR/report.html        plots, counts and image grids; opens offline (images inline)

Work is split into shards by seed: shard k holds every prompt at every guidance scale for a block
of seeds, plus those seeds' unconditional images (guidance 0, which the prompt cannot affect). A
shard is written to a temporary file and renamed into place, so a run killed at any moment loses
at most the shards in flight, and a rerun skips the shards already on disk. Shards are the unit
that Hugging Face Accelerate splits between processes (``accelerate launch -m lds audit SPEC``),
and each shard is computed the same way whatever process runs it, so the table does not depend on
the number of processes, given the same number of threads per process (PyTorch's CPU arithmetic
depends on it in the last bits; ``make bench`` reports how far).

The measures come from :mod:`lds.measures`, the functions the chapters use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import typing
from pathlib import Path

import numpy as np

AUDITS_DIR = Path(__file__).parent / "audits"
FILLS = ("tone-bases", "languages")


class AuditSpecError(ValueError):
    """A spec that cannot run; the message names the file, line and key, and says what to do."""


@dataclasses.dataclass
class AuditSpec:
    """What an audit generates. Every key of the YAML file is one field; unknown keys are refused."""

    name: str = "audit"  # names the default run folder and the report
    description: str = ""  # one or two sentences for the report
    model: str = "lds-mini"  # 'lds-mini', a local diffusers folder or a cached hub id
    # Prompts: a literal list, or a template filled from a list the corpus provides (fill).
    prompts: list[str] = dataclasses.field(default_factory=list)
    fill: str = ""  # "tone-bases": every emoji base with all five skin tones; "languages": emoji x languages
    template: str = "{name}"  # how a filled name becomes a prompt
    kinds: list[str] = dataclasses.field(default_factory=list)  # tone-bases only: keep these kinds (hand, person)
    sample: int = 0  # tone-bases only: this many bases, evenly spaced in corpus order (0 = all 309)
    emoji: list[str] = dataclasses.field(default_factory=list)  # languages only: English names of the emoji
    languages: list[str] = dataclasses.field(default_factory=list)  # languages only: codes (empty = all 14)
    seeds: int = 16  # seeds seed_start .. seed_start + seeds - 1, for every prompt and scale
    seed_start: int = 0
    guidance_scales: list[float] = dataclasses.field(default_factory=lambda: [0.0, 1.0, 3.0, 5.0, 7.5])
    num_inference_steps: int = 25  # the book's default throughout
    negative_prompt: str = ""
    seeds_per_shard: int = 1  # a shard = this many seeds x every prompt x every scale
    batch_size: int = 128  # images per call of the U-Net; the fastest on 2 CPU cores for lds-mini
    device: str = "cpu"  # cpu, cuda, mps; under accelerate launch each process takes its own GPU
    dtype: str = "float32"  # float32, float16, bfloat16

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass
class Item:
    """One prompt of an audit, with what it names in the corpus."""

    prompt: str
    group: str  # the English name of what is asked for (the same across languages)
    lang: str  # language of the prompt ("" for literal prompts not in the corpus)
    target: int  # corpus index of the named emoji, -1 if the prompt names none


# ------------------------------------------------------------------------------------------------
# 1. The spec: read, type-check and validate before anything runs
# ------------------------------------------------------------------------------------------------

def _fields() -> list[str]:
    return [f.name for f in dataclasses.fields(AuditSpec)]


def _check_type(key: str, value, where: str):
    hint = typing.get_type_hints(AuditSpec)[key]
    origin = typing.get_origin(hint)
    if origin is list:
        (inner,) = typing.get_args(hint)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single value where a list is expected: --set guidance_scales=5
        if not isinstance(value, list):
            raise AuditSpecError(f"{where}: '{key}' must be a list of {inner.__name__}, got {value!r}.")
        return [_check_scalar(key, v, inner, where) for v in value]
    return _check_scalar(key, value, hint, where)


def _check_scalar(key, value, kind, where):
    ok = (isinstance(value, kind) and not isinstance(value, bool)) or (kind is float and isinstance(value, int)
                                                                       and not isinstance(value, bool))
    if kind is str and value is None:
        return ""
    if not ok:
        raise AuditSpecError(f"{where}: '{key}' must be {'a number' if kind is float else 'a whole number' if kind is int else 'text'}"
                             f", got {value!r} ({type(value).__name__}).")
    return float(value) if kind is float else value


def _key_lines(text: str) -> dict[str, int]:
    """Line (1-based) of each top-level key, for error messages."""
    import yaml

    node = yaml.compose(text)
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise AuditSpecError("the spec must be a mapping of keys to values (key: value), one per line.")
    return {k.value: k.start_mark.line + 1 for k, _ in node.value}


def shipped_audits() -> list[str]:
    """Names of the audits that ship with lds (``lds audit NAME``)."""
    return sorted(p.stem for p in AUDITS_DIR.glob("*.yaml"))


def spec_path(spec: str | os.PathLike) -> Path:
    """A spec file, or the file of a shipped audit named ``spec``."""
    p = Path(spec)
    if p.is_file():
        return p
    if (AUDITS_DIR / f"{spec}.yaml").is_file():
        return AUDITS_DIR / f"{spec}.yaml"
    raise AuditSpecError(f"{spec!r} is neither a spec file nor a shipped audit ({', '.join(shipped_audits())}).")


def parse_overrides(pairs) -> dict:
    """``["seeds=4", "guidance_scales=[0, 5]"]`` -> ``{"seeds": 4, "guidance_scales": [0, 5]}`` (YAML values)."""
    import yaml

    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise AuditSpecError(f"--set {pair!r}: write KEY=VALUE, for example --set seeds=4.")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def load_spec(spec: str | os.PathLike | dict, overrides: dict | None = None, *, check_model: bool = True) -> AuditSpec:
    """Read, type-check and validate a spec (a file, a shipped audit's name, or a dict).

    Raises :class:`AuditSpecError` naming the file, line and key of the first problem, before any
    model is loaded or any image is generated.
    """
    import yaml

    if isinstance(spec, dict):
        where_file, raw, lines = "spec", dict(spec), {}
    else:
        path = spec_path(spec)
        text = path.read_text()
        where_file = str(path)
        try:
            lines = _key_lines(text)
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise AuditSpecError(f"{where_file}: not valid YAML: {err}") from None
    fields = _fields()
    values = {}
    for key, value in raw.items():
        where = f"{where_file}:{lines[key]}" if key in lines else where_file
        if key not in fields:
            raise AuditSpecError(f"{where}: unknown key '{key}'. Known keys: {', '.join(fields)}.")
        values[key] = _check_type(key, value, where)
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise AuditSpecError(f"--set {key}: unknown key. Known keys: {', '.join(fields)}.")
        values[key] = _check_type(key, value, f"--set {key}")
    s = AuditSpec(**values)

    def where(key):
        if key in (overrides or {}):
            return f"--set {key}"
        return f"{where_file}:{lines[key]}" if key in lines else where_file

    _validate(s, where, check_model)
    return s


def _validate(s: AuditSpec, where, check_model: bool) -> None:
    from .corpus import KINDS, LANGUAGES
    from .guidance import check_guidance_scale

    if s.fill and s.fill not in FILLS:
        raise AuditSpecError(f"{where('fill')}: fill must be one of {', '.join(FILLS)} (or omitted), got {s.fill!r}.")
    if s.fill and s.prompts:
        raise AuditSpecError(f"{where('prompts')}: give either prompts or fill, not both.")
    if s.fill and "{name}" not in s.template:
        raise AuditSpecError(f"{where('template')}: the template must contain {{name}}, got {s.template!r}.")
    for k in s.kinds:
        if k not in KINDS:
            raise AuditSpecError(f"{where('kinds')}: unknown kind {k!r}; kinds are {', '.join(KINDS)}.")
    for lang in s.languages:
        if lang not in LANGUAGES:
            raise AuditSpecError(f"{where('languages')}: unknown language {lang!r}; languages are "
                                 f"{', '.join(LANGUAGES)}.")
    for key, low in (("seeds", 1), ("seed_start", 0), ("num_inference_steps", 1), ("seeds_per_shard", 1),
                     ("batch_size", 1), ("sample", 0)):
        if getattr(s, key) < low:
            raise AuditSpecError(f"{where(key)}: '{key}' must be at least {low}, got {getattr(s, key)}.")
    if not s.guidance_scales:
        raise AuditSpecError(f"{where('guidance_scales')}: give at least one guidance scale, e.g. [0, 5].")
    for g in s.guidance_scales:
        try:
            check_guidance_scale(g)
        except ValueError as err:
            raise AuditSpecError(f"{where('guidance_scales')}: {err}") from None
    if s.dtype not in ("float32", "float16", "bfloat16"):
        raise AuditSpecError(f"{where('dtype')}: dtype must be float32, float16 or bfloat16, got {s.dtype!r}.")
    try:
        items = plan_items(s)
    except KeyError as err:
        key = "emoji" if s.fill == "languages" else "prompts"
        raise AuditSpecError(f"{where(key)}: {err.args[0]}. Names are the corpus's English CLDR names, "
                             "e.g. 'thumbs up' (see lds.load_corpus().names()).") from None
    if not items:
        key = "prompts" if not s.fill else ("emoji" if s.fill == "languages" else "kinds")
        raise AuditSpecError(f"{where(key)}: the audit has no prompts. Give prompts: [...] or fill: "
                             f"{' / '.join(FILLS)} (languages also needs emoji: [...]).")
    if check_model:
        from .pipeline import ModelNotFoundError, resolve

        try:
            resolve(s.model)
        except ModelNotFoundError as err:
            raise AuditSpecError(f"{where('model')}: {err}") from None


# ------------------------------------------------------------------------------------------------
# 2. The plan: prompts, seeds and shards
# ------------------------------------------------------------------------------------------------

def tone_bases(corpus, kinds=()) -> list[int]:
    """Corpus index of the unmarked (yellow) form of every base that also comes in all five skin tones."""
    from .corpus import TONE_NAMES

    by_base: dict[str, dict[str, int]] = {}
    for i, r in enumerate(corpus.records):
        by_base.setdefault(r["base"], {})[r["tone"]] = i
    out = [v["none"] for v in by_base.values() if set(TONE_NAMES) <= set(v)]
    if kinds:
        out = [i for i in out if corpus.records[i]["kind"] in kinds]
    return sorted(out)


def plan_items(s: AuditSpec) -> list[Item]:
    """The audit's prompts, in a fixed order (``prompt_index`` in the table)."""
    from .corpus import LANGUAGES, load_corpus

    corpus = load_corpus()
    if s.fill == "tone-bases":
        idx = tone_bases(corpus, s.kinds)
        if s.sample and s.sample < len(idx):
            idx = [idx[int(k)] for k in np.linspace(0, len(idx) - 1, s.sample).round()]
        return [Item(s.template.format(name=corpus.records[i]["names"]["en"]), corpus.records[i]["names"]["en"],
                     "en", i) for i in idx]
    if s.fill == "languages":
        items = []
        for name in s.emoji:
            i = corpus.find(name, "en")
            for lang in s.languages or LANGUAGES:
                items.append(Item(s.template.format(name=corpus.records[i]["names"][lang]),
                                  corpus.records[i]["names"]["en"], lang, i))
        return items
    items = []
    for p in s.prompts:
        try:
            i = corpus.find(p, "en")
        except KeyError:
            i = -1
        items.append(Item(p, p, "en" if i >= 0 else "", i))
    return items


def shard_seeds(s: AuditSpec) -> list[list[int]]:
    """The seeds of each shard."""
    seeds = list(range(s.seed_start, s.seed_start + s.seeds))
    return [seeds[k:k + s.seeds_per_shard] for k in range(0, len(seeds), s.seeds_per_shard)]


def default_out(s: AuditSpec) -> Path:
    """``audits/<name>-<fingerprint>``: the same command resumes; another spec gets another folder."""
    return Path("audits") / f"{s.name}-{s.fingerprint()}"


# ------------------------------------------------------------------------------------------------
# 3. One shard: generate, measure, write atomically
# ------------------------------------------------------------------------------------------------

def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _uint8(images) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8, as a PNG would store them."""
    return (images.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


def _tensor(images: np.ndarray):
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def run_shard(pipe, s: AuditSpec, items: list[Item], k: int, seeds: list[int], corpus) -> dict:
    """Generate and measure shard ``k``: every item x every scale x ``seeds``; returns its arrays."""
    from . import measures
    from .sampling import initial_latents
    from .sampling import generate

    # 1. The seeds' unconditional images (guidance 0: the prompt cannot act, so one per seed)
    uncond = generate(pipe, [""] * len(seeds), latents=initial_latents(pipe, list(seeds)), guidance_scale=0.0,
                      num_inference_steps=s.num_inference_steps, negative_prompt=s.negative_prompt)
    uncond_u8 = _uint8(uncond.image_tensor)
    uncond_x = _tensor(uncond_u8)
    bank = measures.corpus_tensor(corpus)  # (N, 3, h, w): every measure compares with the corpus at its size
    uncond_nearest, _ = measures.nearest(uncond_x, bank)

    # 2. Every (item, seed) pair at every scale, in batches
    pairs = [(j, si) for j in range(len(items)) for si in range(len(seeds))]
    rows, images = [], []
    for g in s.guidance_scales:
        for b in range(0, len(pairs), s.batch_size):
            batch = pairs[b:b + s.batch_size]
            out = generate(pipe, [items[j].prompt for j, _ in batch],
                           latents=initial_latents(pipe, [seeds[si] for _, si in batch]), guidance_scale=g,
                           num_inference_steps=s.num_inference_steps, negative_prompt=s.negative_prompt)
            u8 = _uint8(out.image_tensor)
            saturation = measures.hsv_saturation(out.image_tensor.float().cpu()).numpy()
            oor = measures.out_of_range(pipe, out.latents).cpu().numpy()
            # measured on the stored (uint8) images, so a table can be recomputed from the shards
            rows += _measure(_tensor(u8), batch, items, seeds, g, uncond_x, uncond_nearest, corpus, bank,
                             saturation, oor, offset=sum(len(x) for x in images), shard=k)
            images.append(u8)
    images = np.concatenate(images)
    # 3. Skin tone, once per emoji over the whole shard, against that emoji's six corpus variants (chapter 7)
    _add_tones(rows, _tensor(images), corpus)
    return {"rows": rows, "images": images, "unconditional": uncond_u8, "seeds": np.array(seeds)}


def _add_tones(rows: list[dict], x, corpus) -> None:
    """Fill ``tone_colour`` and ``tone_nearest`` of the rows whose named emoji comes in all five tones."""
    from . import measures

    variants_of = _tone_variants(corpus)
    by_base: dict[str, list[dict]] = {}
    for r in rows:
        if r["target"] >= 0 and corpus.records[r["target"]]["base"] in variants_of:
            by_base.setdefault(corpus.records[r["target"]]["base"], []).append(r)
    for base, rs in by_base.items():
        c = measures.classify_tone(x[[r["image"] for r in rs]], corpus, variants_of[base])
        for r, colour, near in zip(rs, c["colour"], c["nearest"]):
            r["tone_colour"], r["tone_nearest"] = colour, near


def _measure(x, batch, items, seeds, g, uncond_x, uncond_nearest, corpus, bank, saturation, oor, offset, shard):
    from . import measures

    targets = np.array([items[j].target for j, _ in batch])
    nearest_idx, nearest_dist = measures.nearest(x, bank)
    rank = np.full(len(batch), -1)
    named = targets >= 0
    if named.any():
        rank[named] = measures.named_rank(x[named], targets[named], corpus, bank)
    dist_u = measures.distance_from_unconditional(x, uncond_x[[si for _, si in batch]])
    rows = []
    recs = corpus.records
    for n, (j, si) in enumerate(batch):
        it, t, ni = items[j], int(targets[n]), int(nearest_idx[n])
        un = int(uncond_nearest[si])
        rows.append({
            "shard": shard, "image": offset + n, "prompt_index": j, "prompt": it.prompt, "group": it.group,
            "lang": it.lang, "seed": seeds[si], "guidance_scale": float(g),
            "target": t, "target_name": recs[t]["names"]["en"] if t >= 0 else "",
            "nearest": ni, "nearest_name": recs[ni]["names"]["en"], "nearest_distance": float(nearest_dist[n]),
            "target_rank": int(rank[n]),
            "right": bool(t >= 0 and recs[ni]["base"] == recs[t]["base"]),
            "right_unconditional": bool(t >= 0 and recs[un]["base"] == recs[t]["base"]),
            "tone_colour": "", "tone_nearest": "",  # filled per emoji over the whole shard (_add_tones)
            "distance_from_unconditional": float(dist_u[n]),
            "saturation": float(saturation[n]), "out_of_range": float(oor[n]),
        })
    return rows


_VARIANTS: dict = {}


def _tone_variants(corpus) -> dict[str, list[int]]:
    """base -> its six variants (unmarked first), for bases with all five tones."""
    if id(corpus) not in _VARIANTS:
        bases = {corpus.records[i]["base"] for i in tone_bases(corpus)}
        out: dict[str, list[int]] = {}
        for i, r in enumerate(corpus.records):
            if r["base"] in bases and r["tone"] != "mixed":
                out.setdefault(r["base"], []).append(i)
        _VARIANTS[id(corpus)] = out
    return _VARIANTS[id(corpus)]


def shard_file(out: Path, k: int) -> Path:
    return Path(out) / "shards" / f"shard-{k:05d}.npz"


def write_shard(out: Path, k: int, result: dict) -> None:
    rows = json.dumps(result["rows"], ensure_ascii=False)
    _atomic_write(shard_file(out, k), lambda f: np.savez_compressed(
        f, rows=np.array(rows), images=result["images"], unconditional=result["unconditional"],
        seeds=result["seeds"]))


def read_shard(path: Path) -> dict | None:
    """A finished shard's arrays, or None if the file is missing or unreadable (then it is rerun)."""
    try:
        with np.load(path) as z:
            return {"rows": json.loads(str(z["rows"])), "images": z["images"], "unconditional": z["unconditional"],
                    "seeds": z["seeds"]}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def done_shards(out: Path) -> set[int]:
    return {int(p.stem.split("-")[1]) for p in (Path(out) / "shards").glob("shard-*.npz")
            if read_shard(p) is not None}


# ------------------------------------------------------------------------------------------------
# 4. The run: prepare the folder, split shards between processes, assemble
# ------------------------------------------------------------------------------------------------

def _check_folder(out: Path, s: AuditSpec) -> bool:
    """True if ``out`` already holds this audit, False if it is new; refuses anything else (never overwrites)."""
    import yaml

    spec_file = out / "spec.yaml"
    if spec_file.exists():
        old = yaml.safe_load(spec_file.read_text())
        if old != s.to_dict():
            diff = sorted(k for k in set(old) | set(s.to_dict()) if old.get(k) != s.to_dict().get(k))
            raise AuditSpecError(f"{out} holds another audit (its spec differs in {', '.join(diff)}). It is never "
                                 "overwritten: choose another --out, or run its own spec there to resume it.")
        return True
    if out.exists() and any(out.iterdir()):
        raise AuditSpecError(f"{out} exists and is not an audit run folder (no spec.yaml); choose another --out.")
    return False


def _prepare(out: Path, s: AuditSpec) -> None:
    """Create the run folder, or accept it only if it holds the same spec."""
    import yaml

    if _check_folder(out, s):
        return
    (out / "shards").mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(s.to_dict(), sort_keys=False, allow_unicode=True)
    _atomic_write(out / "spec.yaml", lambda f: f.write(text.encode()))


def run_audit(spec, out: str | os.PathLike | None = None, overrides: dict | None = None, *, part: tuple[int, int] | None = None,
              max_shards: int | None = None, progress: bool = True) -> Path:
    """Run (or resume) an audit; returns its folder. The Python face of ``lds audit``.

    ``spec``: a file, a shipped audit's name or an :class:`AuditSpec`; ``overrides`` as ``--set``.
    ``part=(i, n)`` runs only shards ``k`` with ``k % n == i`` (one laptop's share; merge with
    :func:`merge_runs`). ``max_shards`` stops after that many new shards (the rest on the next call).
    Under ``accelerate launch`` the shards to do are split between the processes.
    """
    import torch
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from .corpus import load_corpus
    from .pipeline import load_pipeline
    from .book.receipt import receipt

    s = spec if isinstance(spec, AuditSpec) else load_spec(spec, overrides)
    if isinstance(spec, AuditSpec) and overrides:
        s = load_spec(s.to_dict(), overrides)
    out = Path(out) if out is not None else default_out(s)
    state = PartialState(cpu=s.device == "cpu")
    _check_folder(out, s)  # every process refuses the same folder, before any process writes
    state.wait_for_everyone()
    if state.is_main_process:
        _prepare(out, s)
    state.wait_for_everyone()

    items = plan_items(s)
    shards = shard_seeds(s)
    todo = [k for k in range(len(shards)) if part is None or k % part[1] == part[0]]
    todo = [k for k in todo if k not in done_shards(out)]
    if max_shards is not None:
        todo = todo[:max_shards]
    state.wait_for_everyone()  # every process has listed the same shards before any is written

    device = str(state.device) if s.device != "cpu" and state.num_processes > 1 else s.device
    pipe = load_pipeline(s.model, device=device, dtype=getattr(torch, s.dtype))
    corpus = load_corpus()
    with state.split_between_processes(todo) as mine:
        bar = tqdm(mine, desc=f"audit {s.name} ({len(items)} prompts x {len(s.guidance_scales)} scales)",
                   unit="shard", disable=not progress or not state.is_local_main_process)
        for k in bar:
            write_shard(out, k, run_shard(pipe, s, items, k, shards[k], corpus))
    state.wait_for_everyone()
    if state.is_main_process:
        r = receipt(pipe, parameters={"spec": s.to_dict(), "processes": state.num_processes,
                                      "part": list(part) if part else None})
        _atomic_write(out / "receipt.json", lambda f: f.write(json.dumps(r, indent=1, default=str).encode()))
        assemble(out)
    state.wait_for_everyone()
    return out


def load_run_spec(out: Path) -> AuditSpec:
    import yaml

    f = Path(out) / "spec.yaml"
    if not f.is_file():
        raise AuditSpecError(f"{out} is not an audit run folder (no spec.yaml).")
    return AuditSpec(**yaml.safe_load(f.read_text()))


COLUMNS = ("shard", "image", "prompt_index", "prompt", "group", "lang", "seed", "guidance_scale", "target",
           "target_name", "nearest", "nearest_name", "nearest_distance", "target_rank", "right",
           "right_unconditional", "tone_colour", "tone_nearest", "distance_from_unconditional", "saturation",
           "out_of_range")


def assemble(out: Path) -> dict:
    """Write results.parquet, results.csv and report.html from the shards on disk; returns counts."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(out)
    s = load_run_spec(out)
    rows = []
    done = sorted(done_shards(out))
    for k in done:
        rows += read_shard(shard_file(out, k))["rows"]
    rows.sort(key=lambda r: (r["prompt_index"], r["guidance_scale"], r["seed"]))
    table = pa.Table.from_pylist(rows, schema=_schema()) if rows else _schema().empty_table()
    buf = io.BytesIO()
    pq.write_table(table, buf)
    _atomic_write(out / "results.parquet", lambda f: f.write(buf.getvalue()))
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    _atomic_write(out / "results.csv", lambda f: f.write(buf.getvalue()))
    counts = {"images": len(rows), "shards_done": len(done), "shards": len(shard_seeds(s))}
    from .audit_report import write_report

    write_report(out, s, rows, counts)
    return counts


def _schema():
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


def load_images(out, rows: list[dict]) -> np.ndarray:
    """The stored images of ``rows`` (from :func:`load_results`), as (N, H, W, 3) uint8."""
    cache: dict[int, np.ndarray] = {}
    picked = []
    for r in rows:
        if r["shard"] not in cache:
            cache[r["shard"]] = read_shard(shard_file(out, r["shard"]))["images"]
        picked.append(cache[r["shard"]][r["image"]])
    return np.stack(picked) if picked else np.zeros((0, 1, 1, 3), np.uint8)


def merge_runs(dirs, out) -> Path:
    """Merge run folders of the same spec (e.g. one per laptop, ``--part``) into ``out``.

    Shards are copied (a shard present in several folders must be byte-identical in its rows);
    ``out`` may already hold the same audit, never another.
    """
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise AuditSpecError("merge needs at least one run folder.")
    specs = [load_run_spec(d) for d in dirs]
    for d, sp in zip(dirs[1:], specs[1:]):
        if sp != specs[0]:
            raise AuditSpecError(f"{d} holds another audit than {dirs[0]} (their spec.yaml differ): only runs of "
                                 "the same spec can be merged.")
    out = Path(out)
    _prepare(out, specs[0])
    have = done_shards(out)
    for d in dirs:
        for k in sorted(done_shards(d)):
            src = shard_file(d, k)
            if k in have:
                if read_shard(src)["rows"] != read_shard(shard_file(out, k))["rows"]:
                    raise AuditSpecError(f"shard {k} of {d} differs from the one already merged: the runs did not "
                                         "compute the same thing (different library versions or hardware?).")
                continue
            _atomic_write(shard_file(out, k), lambda f, src=src: f.write(src.read_bytes()))
            have.add(k)
    receipts = [json.loads((d / "receipt.json").read_text()) for d in dirs if (d / "receipt.json").is_file()]
    merged = {"merged_from": [str(d) for d in dirs], "receipts": receipts}
    _atomic_write(out / "receipt.json", lambda f: f.write(json.dumps(merged, indent=1, default=str).encode()))
    assemble(out)
    return out
