"""The CLIP byte-pair-encoding tokenizer, built offline from the vocabulary open_clip ships.

Chapter 5 (Tokenization) explains it. Stable Diffusion 1.x uses OpenAI CLIP's BPE tokenizer:
49,408 entries and a context of 77 slots. The merges file ships inside ``open_clip_torch``
(``bpe_simple_vocab_16e6.txt.gz``), so the real tokenizer is available without a model hub:
:func:`build_tokenizer_files` derives the ``vocab.json``/``merges.txt`` pair that transformers'
``CLIPTokenizer`` loads, with the same ordering as OpenAI's ``simple_tokenizer.py``.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from functools import lru_cache
from pathlib import Path

CONTEXT_LENGTH = 77  # start token + 75 content tokens + end token
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def bpe_path() -> Path:
    import open_clip.tokenizer as oct

    return Path(oct.default_bpe())


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _merges() -> list[str]:
    lines = gzip.open(bpe_path(), "rt", encoding="utf-8").read().split("\n")
    # As OpenAI's simple_tokenizer.py: skip the header line, keep 49152 - 256 - 2 merges.
    return lines[1 : 49152 - 256 - 2 + 1]


@dataclasses.dataclass(frozen=True)
class VocabularyDecomposition:
    """How the vocabulary's size is made up (chapter 5 checks the paper's 49,152 against it)."""

    byte_tokens: int
    byte_tokens_end_of_word: int
    merges: int
    special: int

    @property
    def total(self) -> int:
        return self.byte_tokens + self.byte_tokens_end_of_word + self.merges + self.special

    @property
    def clip_paper_count(self) -> int:
        """The figure CLIP's authors (and the paper) give: leaves out the ``</w>`` byte variants."""
        return self.byte_tokens + self.merges + self.special


def vocabulary_decomposition() -> VocabularyDecomposition:
    n_bytes = len(bytes_to_unicode())
    return VocabularyDecomposition(n_bytes, n_bytes, len(_merges()), 2)


def build_tokenizer_files(folder: Path) -> Path:
    """Write vocab.json, merges.txt and the configs of SD 1.x's tokenizer into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    merges = _merges()
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += [BOS, EOS]
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": CONTEXT_LENGTH,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,  # SD 1.x pads with <|endoftext|> (49407); open_clip pads with 0
        "do_lower_case": True,
        "errors": "replace",
        "clean_up_tokenization_spaces": False,
        "add_prefix_space": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}, indent=2))
    return folder


@lru_cache(maxsize=1)
def reference_tokenizer():
    """A transformers ``CLIPTokenizer`` identical to SD 1.x's, built from open_clip's file."""
    import tempfile

    from transformers import CLIPTokenizer

    folder = Path(tempfile.mkdtemp(prefix="lds-tokenizer-"))
    return CLIPTokenizer.from_pretrained(str(build_tokenizer_files(folder)))


@dataclasses.dataclass
class TokenizedPrompt:
    """A prompt as the text encoder receives it: all 77 slots, and what did not fit."""

    prompt: str
    input_ids: list[int]  # exactly 77
    tokens: list[str]  # the BPE piece in each slot
    n_content: int  # content tokens that fit (at most 75)
    truncated_ids: list[int]  # content tokens cut off by the 77-slot limit
    truncated_text: str  # what was cut off, decoded

    @property
    def truncated(self) -> bool:
        return bool(self.truncated_ids)

    def slot_kinds(self) -> list[str]:
        """'start', 'content', 'end' or 'padding' for each of the 77 slots."""
        kinds = ["start"] + ["content"] * self.n_content + ["end"]
        return kinds + ["padding"] * (len(self.input_ids) - len(kinds))


def tokenize(tokenizer, prompt: str) -> TokenizedPrompt:
    """Tokenize as StableDiffusionPipeline does (pad to 77, truncate), reporting what was cut.

    The prompt goes through the tokenizer once; the 77 slots are CLIP's template around its first 75
    pieces (start, content, end, then padding), the ids diffusers' ``tokenizer(prompt, padding="max_length",
    truncation=True)`` gives (tests/test_tokenizer.py::test_slots_are_the_tokenizers_own).
    """
    full = tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"]
    limit = tokenizer.model_max_length - 2
    ids = [tokenizer.bos_token_id] + full[:limit] + [tokenizer.eos_token_id]
    ids += [tokenizer.pad_token_id] * (tokenizer.model_max_length - len(ids))
    cut = full[limit:]
    return TokenizedPrompt(
        prompt=prompt,
        input_ids=list(ids),
        tokens=tokenizer.convert_ids_to_tokens(ids),
        n_content=min(len(full), limit),
        truncated_ids=cut,
        truncated_text=tokenizer.decode(cut) if cut else "",
    )
