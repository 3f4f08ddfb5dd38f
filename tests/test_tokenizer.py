"""The CLIP tokenizer (chapter 5): vocabulary size, known splits, truncation, the two paddings."""

from __future__ import annotations

import pytest

from lds.instruments import token_stats
from lds.models.tokenizer import CONTEXT_LENGTH, reference_tokenizer, tokenize, vocabulary_decomposition


@pytest.fixture(scope="module")
def tok():
    return reference_tokenizer()


def test_vocabulary_decomposition(tok):
    vd = vocabulary_decomposition()
    assert (vd.byte_tokens, vd.byte_tokens_end_of_word, vd.merges, vd.special) == (256, 256, 48894, 2)
    assert vd.total == 49408 == len(tok)
    assert vd.clip_paper_count == 49152  # the paper's (and CLIP's) figure
    assert tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"]) == [49406, 49407]


def test_known_splits(tok):
    ids = tokenize(tok, "Gaussian noise").input_ids
    assert ids[:5] == [49406, 5919, 31218, 9307, 49407]
    assert ids[5:] == [49407] * (CONTEXT_LENGTH - 5)
    assert token_stats.pieces(tok, "Gaussian noise") == ["gau", "ssian</w>", "noise</w>"]
    assert token_stats.pieces(tok, "commodity") == ["commodity</w>"]
    assert token_stats.pieces(tok, "trending on ArtStation") == ["trending</w>", "on</w>", "art", "station</w>"]


def test_slot_kinds(tok):
    tp = tokenize(tok, "red apple")
    kinds = tp.slot_kinds()
    assert len(kinds) == len(tp.input_ids) == CONTEXT_LENGTH
    assert kinds[:4] == ["start", "content", "content", "end"] and set(kinds[4:]) == {"padding"}
    assert tp.n_content == 2 and not tp.truncated


def test_truncation_reports_what_was_cut(tok):
    words = [f"w{i}" for i in range(100)]  # "w12" etc.: count the pieces rather than assume
    prompt = " ".join(words)
    full = tok(prompt, add_special_tokens=False)["input_ids"]
    assert len(full) > 75
    tp = tokenize(tok, prompt)
    assert tp.truncated and tp.n_content == 75 and len(tp.input_ids) == CONTEXT_LENGTH
    assert tp.truncated_ids == full[75:]
    assert tp.input_ids[1:76] == full[:75] and tp.input_ids[76] == 49407
    assert tp.truncated_text.replace(" ", "").endswith("w99")
    assert "w0" not in tp.truncated_text.split()


def test_no_truncation_at_exactly_75(tok):
    prompt = " ".join(["apple"] * 75)
    tp = tokenize(tok, prompt)
    assert tp.n_content == 75 and not tp.truncated and tp.input_ids[-1] == 49407
    tp = tokenize(tok, prompt + " apple")
    assert tp.truncated_ids == [3055] and tp.truncated_text.strip() == "apple"


def test_hf_pads_with_end_token_open_clip_with_zero(tok):
    c = token_stats.compare_open_clip("red apple", tok)
    assert c["hf"][:4] == c["open_clip"][:4] == [49406, 736, 3055, 49407]
    assert set(c["hf"][4:]) == {49407} and set(c["open_clip"][4:]) == {0}
    assert len(c["hf"]) == len(c["open_clip"]) == CONTEXT_LENGTH and c["same_content"]
    # open_clip cleans text with ftfy and HTML unescaping; Hugging Face's tokenizer here does not
    assert not token_stats.compare_open_clip("“red” apple &amp; pear", tok)["same_content"]


def test_readable_pieces_for_other_scripts(tok):
    # pieces that are whole characters are shown as text, parts of a character as their bytes
    assert token_stats.pieces(tok, "你好") == ["<e4 bd>", "<a0>", "<e5 a5>", "<bd></w>"]
    assert token_stats.pieces(tok, "سلام") == ["س", "ل", "<d8 a7 d9>", "<85></w>"]
    assert token_stats.pieces(tok, "😍") == ["😍</w>"]


def test_names_cost_more_outside_english(tok):
    from lds.data.corpus import load_corpus

    costs = {c.language: c for c in token_stats.tokens_per_name(tok, load_corpus(), ["en", "ru"])}
    assert 4.5 < costs["en"].mean_tokens < 5.0
    assert 27.0 < costs["ru"].mean_tokens < 28.0
    assert costs["en"].truncated == 0 and costs["ru"].truncated > 0


@pytest.mark.parametrize("prompt", ["", "red apple", " ".join(["apple"] * 75), " ".join(f"w{i}" for i in range(100)),
                                    "拇指向上 👍🏽", "a" * 2000])
def test_slots_are_the_tokenizers_own(tok, prompt):
    """tokenize's one pass gives the ids diffusers' padded, truncated call gives (the slots the text encoder sees)."""
    ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True)["input_ids"]
    assert tokenize(tok, prompt).input_ids == ids
