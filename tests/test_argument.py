"""Every chapter returns to the paper's argument, pairs itself with readings, and offers exercises a reader can do
by changing parameters only (issue 13, items 4 and 6).

The rules, checked on the committed notebooks (only test_argument_numbers_render executes the chapters):

- every chapter notebook except the claims ledger (``10_claims``) has a Markdown section whose heading begins
  "What this means for the argument"; in a chapter of measurements (01 onwards) the section cites the paper and,
  where the chapter records numbers, pastes at least one of them with ``{glue:text}``; every name any section pastes
  is one the notebook records (the framework chapter, 00, sets out the paper's vocabulary throughout and may argue
  without them);
- every chapter (the ledger included) has a "Reading with this chapter" list of at least two works, each item
  citing a key of ``book/references.bib``; the first item cites the paper or one of its own sources;
- every chapter has an "Exercises" section with at least two numbered exercises that change a parameter, and a
  "Questions for discussion" section that cites at least one of the chapter's readings;
- inside an exercise, every piece of code (text in backticks) must be one of: a parameter of the chapter's
  ``parameters`` cell; ``name = literal`` for such a parameter; a Python literal; an ``lds rerun`` option
  (``--model``, ``-p``, ...); or a whole ``lds rerun CHAPTER ...`` command whose ``-p NAME VALUE`` names are
  parameters of CHAPTER. Anything else (``lds.generate(...)``, ``ws.image_embeds``, a module constant) is an API
  call and fails, and so does a call written out in the prose (``something.name(``);
- every text literal in an exercise (a prompt, a caption, a list of words) is made only of tokens that lds-mini's
  training captions contained: an exercise built on a word lds-mini never trained (such as "fancy") fails. Paths,
  model ids (anything with a ``/`` or a ``$``) and the corpus's language codes (``"fa"``) are exempt.

The framework chapter (``00_*``) and an audits chapter (``12_*``) are checked like the others when they exist.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import ROOT

ARGUMENT = "What this means for the argument"
READING = "Reading with this chapter"
LEDGER = "10_claims"

# The bibliography keys for sources of the paper itself: entries of the paper's own bibliography ("The Market in the
# Model", preprint of 17 June 2026), matched by author, year and title. The paper itself (salvaggio2026market) is
# not counted, nor works the book adds (LAION, DDPM, DAAM, diffusers, Datasheets ...). The last seven arrived with
# the framework chapter; a key counts once it is in book/references.bib.
PAPER_SOURCES = {
    "agarwal2021evaluating", "baack2024commoncrawl", "bianchi2023easily", "birhane2021multimodal", "birhane2023laion",
    "chun2013programmed", "crawford2021excavating", "demir2018patch", "deng2009imagenet", "denton2021whose",
    "devlin2019bert", "esser2021vqgan", "hanna2020scale", "ho2022cfg", "impett2026vector", "isola2017pix2pix",
    "lideng2017imagenet", "luccioni2021commoncrawl", "meyer2023archive", "pasquinelli2009pagerank",
    "pasquinelli2023eye", "peebles2023dit", "radford2021clip", "rombach2022ldm", "ronneberger2015unet",
    "sohldickstein2015diffusion", "star1999infrastructure", "sterne2012perceptual", "steyerl2023mean",
    "terranova2000free", "vaswani2017attention", "zhang2018lpips",
    "amoore2025prompt", "browne2015dark", "fazi2024search", "lazzarato1996immaterial", "reisner2025commoncrawl",
    "salvaggio2022read", "sohnrethel1978intellectual",
}
PAPER = "salvaggio2026market"
FRAMEWORK = "00_"
MIN_PAPER_SOURCES_CITED = 30

# `lds rerun`'s own options (lds/cli.py); -p/--param take NAME VALUE, the others one value.
RERUN_OPTIONS = {"-p": 2, "--param": 2, "--model": 1, "--out": 1, "--batch": 1}
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")
CALL_IN_PROSE = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\s*\(")


def chapters() -> list[Path]:
    """Every chapter notebook (``NN_name.ipynb``), 00_framework and 12_audits included when they exist."""
    return sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(nb: Path) -> list[dict]:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    for c in cells:
        c["text"] = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    return cells


def markdown(nb: Path) -> str:
    return "\n\n".join(c["text"] for c in _cells(nb) if c["cell_type"] == "markdown")


def section(text: str, title: str) -> str | None:
    """The body of the Markdown section headed ``title`` (any level), up to the next heading of that level or above."""
    m = re.search(rf"^(#+) {re.escape(title)}[^\n]*$", text, flags=re.M)
    if not m:
        return None
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.M)
    return rest[: end.start()] if end else rest


def parameters(nb: Path) -> dict:
    """Name -> default of the chapter's ``parameters`` cell (literals only, as the CLI reads them)."""
    cells = [c for c in _cells(nb) if c["cell_type"] == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{nb.name}: expected one cell tagged 'parameters', found {len(cells)}"
    out = {}
    for node in ast.parse(cells[0]["text"]).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                out[target.id] = ast.literal_eval(node.value)
    return out


def recorded_names(nb: Path) -> list[re.Pattern]:
    """Patterns for the names the notebook's code records (``record("name", ...)`` and computed words,
    ``word("name_word", ...)``; f-strings as wildcards)."""
    pats = []
    for c in _cells(nb):
        if c["cell_type"] != "code":
            continue
        for fstring, name in re.findall(r"\b(?:record|word)\((f?)\"([^\"]+)\"", c["text"]):
            if fstring:
                pats.append(re.compile("^" + re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(name)) + "$"))
            else:
                pats.append(re.compile("^" + re.escape(name) + "$"))
    return pats


def exercises(text: str) -> list[str]:
    """The numbered items of the Exercises section (each item with its continuation lines)."""
    body = section(text, "Exercises") or ""
    return [m.group(1) for m in re.finditer(r"^\d+\.\s+(.*?)(?=^\d+\.\s|\Z)", body, flags=re.M | re.S)]


@lru_cache(maxsize=1)
def trained_token_ids() -> frozenset[int]:
    """Token ids that lds-mini's text encoder was trained on (the captions of its CLIP's training draw)."""
    import json

    from lds.data.corpus import load_corpus
    from lds.instruments.token_stats import clip_training_token_ids
    from lds.models.tokenizer import reference_tokenizer
    from lds.pipeline.loading import WEIGHTS_DIR

    config = json.loads((WEIGHTS_DIR / "lds-mini" / "training_config.json").read_text())
    return frozenset(clip_training_token_ids(reference_tokenizer(), load_corpus(), config))


def untrained_words(value) -> list[str]:
    """The texts in ``value`` (a string or nested lists of them) with a token lds-mini never trained."""
    from lds.models.tokenizer import reference_tokenizer

    if isinstance(value, (list, tuple)):
        return [w for v in value for w in untrained_words(v)]
    from lds.data.corpus import LANGUAGES

    if not isinstance(value, str) or "/" in value or "$" in value or not value.strip() or value in LANGUAGES:
        return []
    ids = reference_tokenizer()(value, add_special_tokens=False)["input_ids"]
    return [value] if any(i not in trained_token_ids() for i in ids) else []


def _literal(code: str):
    try:
        return True, ast.literal_eval(code)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False, None


def check_code(code: str, params: dict, params_of) -> tuple[list[str], bool]:
    """Problems with one backticked piece of an exercise, and whether it changes a parameter.

    ``params`` are the chapter's parameters; ``params_of(chapter)`` gives another chapter's (for ``lds rerun N``).
    """
    code = code.strip()
    if code in params:
        return [], True
    if code in RERUN_OPTIONS or code == "lds rerun":
        return [], True
    m = re.fullmatch(r"([A-Za-z_]\w*)\s*=\s*(.+)", code, flags=re.S)
    if m and m.group(1) in params:
        ok, value = _literal(m.group(2))
        if not ok:
            return [f"`{code}`: the value is not a literal"], False
        return [f"`{code}`: {w!r} contains a token lds-mini never trained" for w in untrained_words(value)], True
    if code.startswith("lds "):
        return check_rerun(code, params_of)
    ok, value = _literal(code)
    if ok:
        return [f"`{code}`: {w!r} contains a token lds-mini never trained" for w in untrained_words(value)], False
    return [f"`{code}` is neither a parameter of this chapter, nor a literal, nor an `lds rerun` command"], False


def check_rerun(code: str, params_of) -> tuple[list[str], bool]:
    try:
        argv = shlex.split(code)
    except ValueError as e:
        return [f"`{code}`: {e}"], False
    if argv[:2] != ["lds", "rerun"] or len(argv) < 3:
        return [f"`{code}`: only `lds rerun CHAPTER ...` may appear in an exercise"], False
    try:
        target = params_of(argv[2])
    except Exception as e:  # noqa: BLE001 - any failure to resolve the chapter is the finding
        return [f"`{code}`: chapter {argv[2]!r} not found ({e})"], False
    problems, i = [], 3
    while i < len(argv):
        opt = argv[i]
        if opt not in RERUN_OPTIONS:
            return problems + [f"`{code}`: {opt!r} is not an option of `lds rerun`"], False
        args = argv[i + 1: i + 1 + RERUN_OPTIONS[opt]]
        if len(args) < RERUN_OPTIONS[opt]:
            return problems + [f"`{code}`: {opt} needs {RERUN_OPTIONS[opt]} value(s)"], False
        if opt in ("-p", "--param"):
            name, value = args
            if name not in target:
                problems.append(f"`{code}`: {name!r} is not a parameter of chapter {argv[2]}")
            ok, parsed = _literal(value)
            problems += [f"`{code}`: {w!r} contains a token lds-mini never trained"
                         for w in untrained_words(parsed if ok else value)]
        i += 1 + RERUN_OPTIONS[opt]
    return problems, True


def check_exercise(item: str, params: dict, params_of) -> tuple[list[str], bool]:
    """Problems with one exercise, and whether it is done by changing parameters."""
    problems, changes = [], False
    for code in re.findall(r"`([^`]+)`", item):
        p, c = check_code(code, params, params_of)
        problems += p
        changes |= c
    prose = re.sub(r"`[^`]+`", "", item)
    problems += [f"an API call in the prose: {m.group(0)!r}" for m in CALL_IN_PROSE.finditer(prose)]
    return problems, changes


def _params_of(chapter: str) -> dict:
    from lds.book.runner import find_chapter

    return parameters(find_chapter(chapter, ROOT))


# ------------------------------------------------------------------ the rules on each chapter

# The ledger is left out: it is the argument's table, not a chapter with measurements of its own.
@pytest.mark.parametrize("nb", [p for p in chapters() if p.stem != LEDGER], ids=lambda p: p.stem)
def test_chapter_returns_to_the_argument(nb):
    text = markdown(nb)
    body = section(text, ARGUMENT)
    assert body is not None, f"{nb.name} has no '## {ARGUMENT}' section"
    assert len(body.split()) >= 150, f"{nb.name}: '{ARGUMENT}' is too short to say anything ({len(body.split())} words)"
    if not nb.stem.startswith(FRAMEWORK):
        assert PAPER in " ".join(CITE.findall(body)), f"{nb.name}: '{ARGUMENT}' does not cite the paper"
    recorded = recorded_names(nb)
    glued = GLUE.findall(body)
    if recorded and not nb.stem.startswith(FRAMEWORK):
        assert glued, f"{nb.name}: '{ARGUMENT}' pastes none of the chapter's recorded numbers"
    unknown = [g for g in glued if not any(p.match(g) for p in recorded)]
    assert not unknown, f"{nb.name}: '{ARGUMENT}' pastes numbers the chapter never records: {unknown}"


@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_chapter_has_readings(nb):
    body = section(markdown(nb), READING)
    assert body is not None, f"{nb.name} has no '## {READING}' section"
    items = re.findall(r"^- (.*?)(?=^- |\Z)", body, flags=re.M | re.S)
    assert len(items) >= 2, f"{nb.name}: '{READING}' lists {len(items)} works; two or three are expected"
    for item in items:
        assert CITE.search(item), f"{nb.name}: a reading without a citation: {item[:80]!r}"
        assert len(CITE.sub("", item).split()) >= 8, f"{nb.name}: a reading without a sentence on why: {item[:80]!r}"
    first = {k.strip() for k in CITE.findall(items[0])[0].split(",")}
    assert first & (PAPER_SOURCES | {PAPER}), f"{nb.name}: the first reading should be the paper's own source, not {first}"


@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_exercises_change_parameters_only(nb):
    text = markdown(nb)
    params = parameters(nb)
    items = exercises(text)
    problems, by_parameters = [], 0
    for n, item in enumerate(items, 1):
        p, changes = check_exercise(item, params, _params_of)
        problems += [f"exercise {n}: {x}" for x in p]
        by_parameters += changes
    assert not problems, f"{nb.name}:\n" + "\n".join(problems)
    assert by_parameters >= 2, f"{nb.name}: {by_parameters} exercise(s) change a parameter; at least two are expected"


@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_discussion_is_tied_to_the_readings(nb):
    text = markdown(nb)
    questions = section(text, "Questions for discussion")
    assert questions is not None, f"{nb.name} has no 'Questions for discussion'"
    readings = {k.strip() for group in CITE.findall(section(text, READING) or "") for k in group.split(",")}
    cited = {k.strip() for group in CITE.findall(questions) for k in group.split(",")}
    assert cited & readings, f"{nb.name}: no discussion question cites one of the chapter's readings {sorted(readings)}"


def test_paper_sources_are_cited_where_they_bear():
    """At least 30 of the paper's own sources are cited on the book's pages (notebooks and book/*.md)."""
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(encoding="utf-8"),
                          flags=re.M))
    assert len(PAPER_SOURCES & keys) >= 32, f"paper sources missing from references.bib: {sorted(PAPER_SOURCES - keys)}"
    pages = [p.read_text(encoding="utf-8") for p in (ROOT / "book").glob("*.md")]
    pages += [markdown(nb) for nb in chapters()]
    cited = {k.strip() for text in pages for group in CITE.findall(text) for k in group.split(",")}
    found = sorted(PAPER_SOURCES & keys & cited)
    assert len(found) >= MIN_PAPER_SOURCES_CITED, (
        f"{len(found)} of the paper's sources are cited; uncited: {sorted(PAPER_SOURCES - cited)}")


# ------------------------------------------------------------------ the exercise rule fails where it should

@pytest.mark.parametrize("item", [
    "Call `lds.generate(pipe, \"dog face\")` and compare.",
    "Run lds.generate(pipe, prompt) with another seed.",
    "Find the closest pair (hint: `ws.image_embeds @ ws.image_embeds.T`).",
    "Lower `lds.measures.LOW_FREQUENCY_CUTOFF` to 0.1.",
    "Set `no_such_parameter = 3`.",
    "Run `lds rerun 1 -p no_such_parameter 3`.",
    "Run `lds rerun 1 --steps 3`.",
    "Run `lds generate \"dog face\"`.",
    "Set `prompt` to `\"fancy house\"`.",
    "Set `prompt = \"an African man and his fancy house\"`.",
    "Run `lds rerun 1 -p prompt \"masterpiece\"`.",
])
def test_exercise_rule_rejects_api_calls_and_untrained_words(item):
    params = {"prompt": "dog face", "seed": 0}
    problems, _ = check_exercise(item, params, _params_of)
    assert problems, f"the rule let through: {item}"


@pytest.mark.parametrize("item", [
    "Set `prompt` to `\"money bag\"` and `seed` to 1.",
    "Set `seed = 2` and rerun (`lds rerun 1 -p prompt \"dog face\" --out runs/x`).",
    "Rerun on SD 1.5 (`lds rerun 1 --model stable-diffusion-v1-5/stable-diffusion-v1-5`).",
])
def test_exercise_rule_accepts_parameter_changes(item):
    problems, changes = check_exercise(item, {"prompt": "dog face", "seed": 0}, _params_of)
    assert not problems and changes, problems


# ------------------------------------------------------------------ pasted numbers render (executes the chapters)

def _glue_specs(text: str) -> list[tuple[str, str]]:
    return re.findall(r"\{glue(?::\w+)?\}`([^`:]+)(?::([^`]*))?`", text)


@pytest.mark.notebooks
@pytest.mark.parametrize("nb", [p for p in chapters() if p.stem != LEDGER], ids=lambda p: p.stem)
def test_argument_numbers_render(nb, executed):
    """Every number the argument pastes exists in the executed chapter and takes its format."""
    records = executed(nb.stem)
    for name, spec in _glue_specs(section(markdown(nb), ARGUMENT) or ""):
        assert name in records, f"{nb.name}: {name} was not recorded in the CI run"
        format(records[name], spec or "")


# ------------------------------------------------------------------ the seminar guide

def test_seminar_is_built_on_the_framework_chapter_and_trained_words():
    """book/seminar.md starts from chapter 0 and the readings, and sends students only to prompts lds-mini knows."""
    text = (ROOT / "book" / "seminar.md").read_text(encoding="utf-8")
    assert "00_framework" in text, "the seminar guide should be built around chapter 0"
    assert len(set(CITE.findall(text))) >= 6, "the seminar guide should pair its sessions with readings"
    problems = []
    commands = re.findall(r"^(?:\.venv/bin/)?(lds rerun .*)$", text, flags=re.M)
    commands += [c for c in re.findall(r"`([^`]+)`", text) if c.startswith("lds rerun ")]
    for command in commands:
        if "--batch" in command:
            continue
        p, _ = check_rerun(command, _params_of_or_framework)
        problems += p
    for code in re.findall(r"`([^`]+)`", text):
        ok, value = _literal(code)
        if ok:
            problems += [f"{w!r} contains a token lds-mini never trained" for w in untrained_words(value)]
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):  # the batch CSV: the prompt column
        rows = [r.split(",") for r in block.strip().splitlines()]
        if "prompt" in rows[0]:
            col = rows[0].index("prompt")
            problems += [f"{w!r} (batch CSV) contains a token lds-mini never trained"
                         for r in rows[1:] for w in untrained_words(r[col])]
    assert not problems, "\n".join(problems)


def _params_of_or_framework(chapter: str) -> dict:
    """A chapter's parameters; chapter 0 may not exist on a branch without it, where only its `emoji` is known."""
    from lds.book.runner import find_chapter

    try:
        return parameters(find_chapter(chapter, ROOT))
    except Exception:  # noqa: BLE001
        if chapter in ("0", "00", "00_framework", "framework"):
            return {"emoji": "dog face", "model": "lds-mini", "seed": 0}
        raise
