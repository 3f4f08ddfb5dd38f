"""Readers rerun the prompt chapters with their own prompts: too long, other scripts, emoji."""

import json
from pathlib import Path

import pytest

from lds.book.record import read_records
from lds.book.runner import execute, find_chapter, load_parameter_file

ROOT = Path(__file__).resolve().parents[1]
LONG = ("a grinning face with big eyes and a red apple and a rocket and a penguin wearing sunglasses " * 4).strip()
PROMPTS = {"long": LONG, "arabic": "وجه مبتسم", "chinese": "笑脸爱心眼", "emoji": "😍🍎❤️"}
CASES = [("05_tokenization", "long"), ("05_tokenization", "arabic"), ("05_tokenization", "emoji"),
         ("06_cross_attention", "long"), ("06_cross_attention", "emoji"), ("07_denoising", "chinese"),
         ("08_guidance", "arabic"), ("08_guidance", "long")]


@pytest.mark.notebooks
@pytest.mark.parametrize("stem, kind", CASES)
def test_chapter_runs_with_a_readers_prompt(tmp_path, stem, kind):
    nb = find_chapter(stem, ROOT)
    params = {**load_parameter_file(ROOT / "tests" / "ci_parameters").get(stem, {}), "prompt": PROMPTS[kind]}
    out = tmp_path / nb.name
    execute(nb, out, params, progress=False)
    text = out.read_text()
    assert '"output_type": "error"' not in text
    records = read_records(out)
    assert records, "the chapter recorded its numbers"
    if stem == "05_tokenization" and kind == "long":
        assert records["long_prompt_truncated_tokens"] > 0 and records["prompt_n_content"] == 75
    if kind == "long":
        assert "truncat" in json.dumps(json.loads(text)["cells"]).lower(), "the truncation is shown"
