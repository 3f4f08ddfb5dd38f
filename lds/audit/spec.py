"""The audit spec: the YAML file that declares an audit, read, typed and validated before anything runs, and
the plan it makes (prompts, seeds, shards). Chapter 12 (Audits) explains it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from pathlib import Path

import numpy as np


AUDITS_DIR = Path(__file__).parent / "specs"



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
    from lds.data.corpus import KINDS, LANGUAGES
    from lds.pipeline.guidance import check_guidance_scale

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
        from lds.pipeline.loading import ModelNotFoundError, resolve

        try:
            resolve(s.model)
        except ModelNotFoundError as err:
            raise AuditSpecError(f"{where('model')}: {err}") from None



def tone_bases(corpus, kinds=()) -> list[int]:
    """Corpus index of the unmarked (yellow) form of every base that also comes in all five skin tones."""
    from lds.data.corpus import TONE_NAMES

    by_base: dict[str, dict[str, int]] = {}
    for i, r in enumerate(corpus.records):
        by_base.setdefault(r["base"], {})[r["tone"]] = i
    out = [v["none"] for v in by_base.values() if set(TONE_NAMES) <= set(v)]
    if kinds:
        out = [i for i in out if corpus.records[i]["kind"] in kinds]
    return sorted(out)



def plan_items(s: AuditSpec) -> list[Item]:
    """The audit's prompts, in a fixed order (``prompt_index`` in the table)."""
    from lds.data.corpus import LANGUAGES, load_corpus

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
