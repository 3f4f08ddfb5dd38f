"""Words that cannot drift from their numbers (issue 27, item 3): every sentence of a chapter that puts a
comparative or directional word beside a number is computed or pinned (tests/prose_pins.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prose_pins import PINS

ROOT = Path(__file__).resolve().parents[1]
# The words whose truth depends on a number beside them.
WORDS = re.compile(r"\b(most|least|fewest|falls?|fell|rises?|rose|before|quickly|slowly|far|every|never|always|"
                   r"majority|nearly|almost|twice|half)\b", re.I)
NUMBER = re.compile(r"\{glue:text\}|\d+(\.\d+)?\s?%|\b\d{2,}\b")
COMPUTED = re.compile(r"\{glue:text\}`[\w:.-]*_word")


def sentences(stem: str) -> list[str]:
    nb = json.loads(next((ROOT / "notebooks").glob(f"{stem}.ipynb")).read_text())
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"\s+", " ", "".join(cell["source"]))
        out += [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*{(\"“])", text) if s.strip()]
    return out


def needs_pin(sentence: str) -> bool:
    return bool(WORDS.search(sentence) and NUMBER.search(sentence) and not COMPUTED.search(sentence))


def chapters() -> list[str]:
    return sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s)


@pytest.mark.parametrize("stem", chapters())
def test_every_comparative_beside_a_number_is_computed_or_pinned(stem):
    pins = [_norm(f) for s, f, _ in PINS if s == stem]
    loose = [s for s in sentences(stem) if needs_pin(s) and not any(f in s for f in pins)]
    assert not loose, (f"{stem}: sentences whose comparative word rests on a number, neither computed "
                       "(lds.book.record.word) nor pinned (tests/prose_pins.py):\n- " + "\n- ".join(loose))


@pytest.mark.parametrize("stem, fragment", sorted({(s, f) for s, f, _ in PINS}))
def test_every_pin_still_points_at_its_words(stem, fragment):
    assert any(_norm(fragment) in s for s in sentences(stem)), \
        f"{stem}: the pinned words {fragment!r} are gone; update tests/prose_pins.py with the new sentence"


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", sorted({s for s, _, c in PINS if callable(c)}))
def test_pinned_words_fit_their_numbers(executed, stem):
    records = executed(stem)
    wrong = [f for s, f, check in PINS if s == stem and callable(check) and not check(records)]
    assert not wrong, f"{stem}: the numbers no longer fit the words: {wrong}"


def test_the_lint_catches_a_loose_word_and_passes_a_computed_one():
    assert needs_pin("The share falls from {glue:text}`a` to {glue:text}`b`.")
    assert needs_pin("Most of the attention, 81%, went to padding.")
    assert not needs_pin("The share {glue:text}`share_word` from {glue:text}`a` to {glue:text}`b`.")
    assert not needs_pin("Most of what follows is about the U-Net.")


def test_a_computed_word_follows_its_number():
    from lds.book.record import word

    assert word("kept_word", (0.331 < 0.340, "less often than"), otherwise="as often as") == "less often than"
    assert word("kept_word", (False, "less often than"), otherwise="as often as") == "as often as"
    with pytest.raises(ValueError, match="_word"):
        word("kept", (True, "x"), otherwise="y")
