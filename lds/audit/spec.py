"""The audit spec: the YAML file that declares an audit, read, typed and validated before anything runs, and
the plan it makes (prompts, seeds, shards). Chapter 12 (Audits) explains it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import typing
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from lds.data.corpus import KINDS, LANGUAGES

AUDITS_DIR = Path(__file__).parent / "specs"

FILLS = ("tone-bases", "languages")


class AuditSpecError(ValueError):
    """A spec that cannot run; the message names the file, line and key, and says what to do."""


@dataclasses.dataclass
class Item:
    """One prompt of an audit, with what it names in the corpus."""

    prompt: str
    group: str  # the English name of what is asked for (the same across languages)
    lang: str  # language of the prompt ("" for literal prompts not in the corpus)
    target: int  # corpus index of the named emoji, -1 if the prompt names none


def _problem(key: str, message: str) -> PydanticCustomError:
    """A problem of the spec as a whole, attributed to the key whose line the message names."""
    return PydanticCustomError("spec", "{message}", {"key": key, "message": message})


class AuditSpec(BaseModel):
    """What an audit generates. Every key of the YAML file is one field; unknown keys are refused.

    Validated by pydantic when made (strict types: a whole number is not a number written as text); frozen, so
    that its plan (:attr:`items`), made once while validating, stays the plan of what it says.
    :func:`load_spec` turns pydantic's errors into messages that name the file, line and key.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = "audit"  # names the default run folder and the report
    description: str = ""  # one or two sentences for the report
    model: str = "lds-mini"  # 'lds-mini', a local diffusers folder or a cached hub id
    # Prompts: a literal list, or a template filled from a list the corpus provides (fill).
    prompts: list[str] = []
    fill: Literal[("",) + FILLS] = ""  # "tone-bases": every emoji base with all five skin tones; "languages": emoji x languages
    template: str = "{name}"  # how a filled name becomes a prompt
    kinds: list[Literal[KINDS]] = []  # tone-bases only: keep these kinds (hand, person)
    sample: int = Field(0, ge=0)  # tone-bases only: this many bases, evenly spaced in corpus order (0 = all 309)
    emoji: list[str] = []  # languages only: English names of the emoji
    languages: list[Literal[LANGUAGES]] = []  # languages only: codes (empty = all 14)
    seeds: int = Field(16, ge=1)  # seeds seed_start .. seed_start + seeds - 1, for every prompt and scale
    seed_start: int = Field(0, ge=0)
    guidance_scales: list[float] = Field([0.0, 1.0, 3.0, 5.0, 7.5], min_length=1)
    num_inference_steps: int = Field(25, ge=1)  # the book's default throughout
    negative_prompt: str = ""
    seeds_per_shard: int = Field(1, ge=1)  # a shard = this many seeds x every prompt x every scale
    batch_size: int = Field(128, ge=1)  # images per call of the U-Net; the fastest on 2 CPU cores for lds-mini
    device: str = "cpu"  # cpu, cuda, mps; under accelerate launch each process takes its own GPU
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"

    @field_validator("*", mode="before")
    @classmethod
    def _as_written(cls, value, info: ValidationInfo):
        """A single value where a list is expected (``--set guidance_scales=5``); a key left blank is empty text."""
        field = cls.model_fields[info.field_name]
        if typing.get_origin(field.annotation) is list and isinstance(value, (str, int, float)) \
                and not isinstance(value, bool):
            return [value]
        if value is None and isinstance(field.default, str):
            return ""
        return value

    @field_validator("guidance_scales")
    @classmethod
    def _scales(cls, scales: list[float]) -> list[float]:
        from lds.pipeline.guidance import check_guidance_scale

        return [check_guidance_scale(g) for g in scales]

    @field_validator("model")
    @classmethod
    def _model_found(cls, model: str, info: ValidationInfo) -> str:
        """Only when asked (``load_spec(check_model=True)``): resolving a hub id looks in the cache."""
        if (info.context or {}).get("check_model"):
            from lds.pipeline.loading import ModelNotFoundError, resolve

            try:
                resolve(model)
            except ModelNotFoundError as err:
                raise ValueError(str(err)) from None
        return model

    @model_validator(mode="after")
    def _plan(self):
        if self.fill and self.prompts:
            raise _problem("prompts", "give either prompts or fill, not both.")
        if self.fill and "{name}" not in self.template:
            raise _problem("template", f"the template must contain {{name}}, got {self.template!r}.")
        try:
            items = self.items
        except KeyError as err:
            raise _problem("emoji" if self.fill == "languages" else "prompts",
                           f"{err.args[0]}. Names are the corpus's English CLDR names, e.g. 'thumbs up' "
                           "(see lds.load_corpus().names()).") from None
        if not items:
            raise _problem("prompts" if not self.fill else ("emoji" if self.fill == "languages" else "kinds"),
                           f"the audit has no prompts. Give prompts: [...] or fill: {' / '.join(FILLS)} "
                           "(languages also needs emoji: [...]).")
        return self

    @functools.cached_property
    def items(self) -> list[Item]:
        """The audit's prompts, in a fixed order (``prompt_index`` in the table); planned once, when validated."""
        from lds.data.corpus import load_corpus

        corpus = load_corpus()
        if self.fill == "tone-bases":
            idx = tone_bases(corpus, self.kinds)
            if self.sample and self.sample < len(idx):
                idx = [idx[int(k)] for k in np.linspace(0, len(idx) - 1, self.sample).round()]
            return [Item(self.template.format(name=corpus.records[i]["names"]["en"]), corpus.records[i]["names"]["en"],
                         "en", i) for i in idx]
        if self.fill == "languages":
            items = []
            for name in self.emoji:
                i = corpus.find(name, "en")
                for lang in self.languages or LANGUAGES:
                    items.append(Item(self.template.format(name=corpus.records[i]["names"][lang]),
                                      corpus.records[i]["names"]["en"], lang, i))
            return items
        items = []
        for p in self.prompts:
            try:
                i = corpus.find(p, "en")
            except KeyError:
                i = -1
            items.append(Item(p, p, "en" if i >= 0 else "", i))
        return items

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[:12]


# What each kind of value is called in a message
_KIND_WORDS = {int: "a whole number", float: "a number", str: "text"}
# The keys whose values come from a fixed list: what the message says for a value not on it
_NOT_ON_THE_LIST = {
    "fill": lambda v: f"fill must be one of {', '.join(FILLS)} (or omitted), got {v!r}.",
    "kinds": lambda v: f"unknown kind {v!r}; kinds are {', '.join(KINDS)}.",
    "languages": lambda v: f"unknown language {v!r}; languages are {', '.join(LANGUAGES)}.",
    "dtype": lambda v: f"dtype must be float32, float16 or bfloat16, got {v!r}.",
}


def _explain(err: dict) -> tuple[str | None, str]:
    """One of pydantic's errors -> (the key it is about, what to tell the reader)."""
    key = str(err["loc"][0]) if err["loc"] else None
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx", {})
    if kind == "spec":
        return ctx["key"], ctx["message"]
    if kind == "extra_forbidden":
        return key, f"unknown key '{key}'. Known keys: {', '.join(AuditSpec.model_fields)}."
    if kind == "value_error":
        return key, str(ctx["error"])
    if kind == "greater_than_equal":
        return key, f"'{key}' must be at least {ctx['ge']}, got {value}."
    if kind == "too_short":
        return key, "give at least one guidance scale, e.g. [0, 5]."
    if kind == "literal_error" and key in _NOT_ON_THE_LIST:
        return key, _NOT_ON_THE_LIST[key](value)
    hint = AuditSpec.model_fields[key].annotation
    if typing.get_origin(hint) is list:
        inner = typing.get_args(hint)[0]
        if len(err["loc"]) == 1:
            return key, f"'{key}' must be a list of {getattr(inner, '__name__', 'text')}, got {value!r}."
        hint = inner
    return key, f"'{key}' must be {_KIND_WORDS.get(hint, 'text')}, got {value!r} ({type(value).__name__})."


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
    """``["seeds=4", "guidance_scales=[0, 5]"]`` -> ``{"seeds": 4, "guidance_scales": [0, 5]}``
    (:func:`lds.settings.parse_value`: Python literals or YAML)."""
    from lds.settings import parse_value

    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise AuditSpecError(f"--set {pair!r}: write KEY=VALUE, for example --set seeds=4.")
        key, value = pair.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    return out


def load_spec(spec: str | os.PathLike | dict, overrides: dict | None = None, *, check_model: bool = True) -> AuditSpec:
    """Read, type-check and validate a spec (a file, a shipped audit's name, or a dict), ``overrides`` (``--set``)
    replacing its keys.

    Raises :class:`AuditSpecError` naming the file, line and key of each problem, before any model is loaded or
    any image is generated.
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
    overrides = overrides or {}

    def where(key):
        if key in overrides:
            return f"--set {key}"
        return f"{where_file}:{lines[key]}" if key in lines else where_file

    try:
        return AuditSpec.model_validate({**raw, **overrides}, context={"check_model": check_model})
    except ValidationError as err:
        problems = dict.fromkeys(_explain(e) for e in err.errors())  # in order, once each
        order = sorted(problems, key=lambda p: (p[0] in overrides, lines.get(p[0], 0)))
        raise AuditSpecError("\n".join(f"{where(key)}: {message}" for key, message in order)) from None


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



def shard_seeds(s: AuditSpec) -> list[list[int]]:
    """The seeds of each shard."""
    seeds = list(range(s.seed_start, s.seed_start + s.seeds))
    return [seeds[k:k + s.seeds_per_shard] for k in range(0, len(seeds), s.seeds_per_shard)]



def default_out(s: AuditSpec) -> Path:
    """``audits/<name>-<fingerprint>``: the same command resumes; another spec gets another folder."""
    return Path("audits") / f"{s.name}-{s.fingerprint()}"
