"""Chapter 5 (Tokenization): the numbers its argument rests on, read back from the executed chapter."""

from __future__ import annotations

import pytest

from lds.book.record import VERDICTS


@pytest.fixture(scope="module")
def records(executed):
    return executed("05_tokenization")


def test_prompt_in_77_slots(records):
    assert records["context_length"] == 77
    n = records["prompt_n_content"]
    assert records["prompt_ids"][0] == 49406 and records["prompt_ids"][-1] == 49407
    assert len(records["prompt_ids"]) == n + 2
    assert records["prompt_n_padding"] == 77 - n - 2
    assert records["prompt_ids"] == [49406, 9200, 1710, 593, 1936, 268, 3095, 49407]  # smiling face with heart-eyes


def test_two_paddings_and_ftfy(records):
    assert records["hf_padding_id"] == 49407
    assert records["open_clip_padding_id"] == 0
    assert records["open_clip_same_content_plain"] is True
    assert records["open_clip_same_content_tricky"] is False  # curly quotes and &amp;


def test_truncation_is_visible(records):
    assert records["long_prompt_content_tokens"] == 75
    assert records["long_prompt_truncated_tokens"] == 83 - 75  # 12 repeats of 6 tokens + 11 commas


def test_languages_pay_differently(records):
    assert 4.7 < records["tokens_per_name_en"] < 4.8
    assert 27.4 < records["tokens_per_name_ru"] < 27.6
    assert records["names_truncated_en"] == 0
    assert records["names_truncated_ru"] == 24
    others = [records[f"tokens_per_name_{lang}"] for lang in
              ("es", "ja", "ko", "pt", "it", "fr", "de", "fa", "id", "zh", "ru", "tr", "ar")]
    assert min(others) > records["tokens_per_name_en"]
    assert records["tokens_per_name_ratio_max_over_en"] > 5
    assert records["other_prompts_tokens"][2] < records["other_prompts_tokens"][0]  # emoji are whole tokens


def test_vocabulary_and_claim_6(records):
    assert records["vocab_total"] == records["vocab_tokenizer_len"] == records["vocab_embedding_rows"] == 49408
    assert records["vocab_decomposition"] == [256, 256, 48894, 2]
    assert records["vocab_clip_paper_count"] == 49152
    c = records["claim:6"]
    assert c["verdict"] == "holds with a qualifier" and "49,408" in c["lds_mini"]


def test_frequent_and_rare_words_and_claim_7(records):
    assert records["gaussian_noise_ids"] == [49406, 5919, 31218, 9307, 49407]
    assert records["commodity_tokens"] == 1
    assert records["artstation_pieces"] == ["art", "station</w>"]
    assert records["single_token_share_frequent"] > records["single_token_share_rare"]
    assert records["tokens_per_word_frequent"] < records["tokens_per_word_rare"]
    c = records["claim:7"]
    assert c["verdict"] in VERDICTS and "27.5" in c["lds_mini"]
    # claim 7 in parts (issue 27 item 4): frequency (BPE's rule, witnessed in the names) and "specificity lost",
    # tested by CLIP retrieval of names with a word in pieces against whole-word names (full size: 95.4% against
    # 96.5% top-1 on 658 and 3,154 names, measured): the specificity part fails by the 10-point threshold
    held = [p["holds"] for p in c["parts"]]
    gap = records["retrieval_top1_whole"] - records["retrieval_top1_split"]
    assert held == [records["single_token_share_frequent"] > records["single_token_share_rare"], gap >= 0.10]
    # the frequency half is BPE's rule, true by construction: it is shown, and only the measured half decides
    assert [p["by_construction"] for p in c["parts"]] == [True, False]
    assert c["verdict"] == records["claim7_verdict"] == ("holds" if held[1] else "does not hold")
    assert records["retrieval_split_names"] > 100


def test_words_never_seen(records):
    n = records["trained_token_ids"]
    assert 5000 < n < records["corpus_token_ids"] < 10000  # CLIP's draw held only a share of the non-English names
    assert n + records["never_seen_token_ids"] == 49408
    assert records["corpus_ids_never_trained"] == records["corpus_token_ids"] - n  # the draw's ids are the corpus's
    seen = records["words_seen_in_corpus"]
    assert seen["face"] and seen["apple"] and not seen["masterpiece"] and not seen["commodity"]
    # lds-mini's rows for tokens it never saw are still its random initialisation (up to weight decay)
    assert records["unused_corr_with_init"] > 0.99
    assert records["moved_used_median"] > 2 * records["moved_unused_median"]


def test_states_and_claim_8(records, pipe):
    d = pipe.text_encoder.config.hidden_size
    assert records["prompt_embeds_shape"] == [77, d]
    assert records["text_encoder_width"] == records["unet_cross_attention_dim"] == d
    c = records["claim:8"]
    # the paper's sentence (tokens mapped into a vector space of the encoder's width), not "one vector per prompt"
    assert c["verdict"] == "holds" and f"77 x {d}" in c["lds_mini"] and "77 x 768" in c["sd15"]
