"""A number stated in two chapters is computed once: recorded in one chapter, read from the same function in
the other (issue 14: chapter 1 once gave the discriminator 695,588 parameters, counting BatchNorm's running
statistics, and chapter 3 694,689)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lds.instruments import ensemble
from lds.instruments import autoencoder as ia
from lds.pipeline.loading import lds_mini_path
from lds.book.runner import find_chapter

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "executed-ci"  # where conftest's `executed` fixture writes the chapters


def _stdout(stem: str) -> str:
    nb = json.loads((EXECUTED / "notebooks" / find_chapter(stem, ROOT).name).read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")


def test_training_networks_count_learned_parameters_only():
    """The count read from the safetensors header equals the loaded model's parameters (buffers excluded)."""
    disc = ia.load_discriminator(lds_mini_path())
    counted = {n["name"]: n["parameters"] for n in ensemble.training_networks(lds_mini_path())}
    assert counted["discriminator"] == sum(p.numel() for p in disc.parameters())
    buffers = sum(b.numel() for b in disc.buffers())
    assert buffers > 0  # BatchNorm's running statistics are saved beside the weights, and are not parameters


@pytest.mark.parametrize("quantity, recorded_in, record_key, stated_in, pattern", [
    ("discriminator parameters", "01_ensemble", ("training_networks_parameters", "discriminator"),
     "03_autoencoder", r"discriminator/ folder \(([\d,]+) parameters"),
])
def test_shared_quantity_is_stated_once(executed, quantity, recorded_in, record_key, stated_in, pattern):
    """The chapter that states a quantity another chapter records states the same value."""
    value = executed(recorded_in)
    for key in record_key:
        value = value[key]
    executed(stated_in)
    stated = re.findall(pattern, _stdout(stated_in))
    assert stated, f"{stated_in} no longer states the {quantity}; update this test"
    assert {int(s.replace(",", "")) for s in stated} == {value}, (quantity, stated, value)


def test_unmarked_hand_counted_once(executed):
    """Chapter 8 traces chapter 7's skin-tone count along the dial on chapter 7's seeds (issue 27: 'waving hand' was
    95% unmarked at guidance 1 in chapter 7, 40 seeds, and 75% in chapter 8, 8 of them). At guidance 1 and at chapter
    7's guidance the two chapters count the same images, so they state the same share."""
    ch7, ch8 = executed("07_denoising"), executed("08_guidance")
    gesture = ch8["default_gesture"]
    row = ch7["tone_summary"][gesture]
    assert ch8["unmarked_share_at_1"] == pytest.approx(row["unguided_unmarked_share"], abs=1e-3)
    assert ch8["unmarked_share_at_7_5"] == pytest.approx(row["generated_unmarked_share"], abs=1e-3)


def test_blank_and_achromatic_counts_are_the_datasheets(executed):
    """Chapter 2 counts the images its taste scores 0 as blank and achromatic apart; the datasheet states both counts
    (once '85 blank images' on one page and '23 images are empty' on the other, issue 27 / r1 #10)."""
    r = executed("02_clip_filtered_web")
    text = re.sub(r"\s+", " ", (ROOT / "book" / "datasheet.md").read_text(encoding="utf-8"))
    assert f"{r['aesthetic_blank_images']} images are empty" in text
    assert f"A further {r['aesthetic_achromatic']} drawings are achromatic" in text


def test_token_rows_seen_in_training_are_counted_once(executed):
    """The model card and chapter 5 state how many token rows ever met a training caption (issue 27 / r3 F21: 7,213 on
    the card, which left out the start and end tokens, against 7,215 in chapter 5); both now call
    lds.instruments.token_stats.clip_training_token_ids (the captions the text encoder was trained on, not every
    corpus name: issue 27's second read)."""
    assert executed("11_model_card")["vocabulary_seen_in_corpus"] == executed("05_tokenization")["trained_token_ids"]


def test_attention_per_slot_is_chapter_6s(executed):
    """Chapter 9 restates chapter 6's per-slot attention (issue 27 item 1: the words' share per slot against a padding
    slot and an even 1/77, not the 81% total); it reads chapter 6's records, and this keeps the two pages one number."""
    ch6, ch9 = executed("06_cross_attention"), executed("09_conclusion")
    for name in ("share_per_slot_content", "share_per_slot_padding", "share_uniform_slot"):
        assert ch9[name] == pytest.approx(ch6[name], abs=1e-6), name


def test_the_datasheet_counts_the_russian_names_that_lost_their_short_i():
    """The `emoji` package writes й as и in many Russian names (issue 27's second read); the datasheet says how many
    corpus names show it by a word ending in "-ыи", which no Russian word does."""
    from lds.data.corpus import load_corpus

    n = sum(bool(re.search(r"ыи\b", name)) for name in load_corpus().names("ru"))
    text = re.sub(r"\s+", " ", (ROOT / "book" / "datasheet.md").read_text(encoding="utf-8"))
    assert f"{n} of the corpus's Russian names hold a word ending in \"-ыи\"" in text
