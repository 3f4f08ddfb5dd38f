"""Measuring the tokenizer and the token embedding: what a prompt costs and what the model learned.

Chapter 5 (Tokenization) uses these. Every function takes the loaded ``tokenizer`` /
``text_encoder`` (lds-mini's or SD 1.5's), so the same code measures either model.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lds.pipeline.loading import model_source
from lds.instruments.display import for_figure
from lds.models.tokenizer import CONTEXT_LENGTH, bytes_to_unicode, tokenize

SLOT_COLORS = {"start": "#4c72b0", "content": "#55a868", "end": "#c44e52", "padding": "#bbbbbb"}


def readable_piece(tokenizer, token_id: int) -> str:
    """A BPE piece as a reader can see it.

    The vocabulary stores bytes as printable stand-in characters (GPT-2's ``bytes_to_unicode``),
    so an Arabic letter appears as ``Ùħ``. This turns the piece back into its bytes and shows the
    text they spell; a piece that is only part of a character (common for Chinese and emoji) is
    shown as its bytes in hex, e.g. ``<e4 bd>``. ``</w>`` (the end-of-word mark) is kept.
    """
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece in (tokenizer.bos_token, tokenizer.eos_token) or piece is None:
        return str(piece)
    end = piece.endswith("</w>")
    core = piece[:-4] if end else piece
    decoder = {v: k for k, v in bytes_to_unicode().items()}
    try:
        raw = bytes(decoder[c] for c in core)
    except KeyError:  # not a byte-level piece (another tokenizer): show as is
        return piece
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = "<" + " ".join(f"{b:02x}" for b in raw) + ">"
    return text + ("</w>" if end else "")


def pieces(tokenizer, text: str) -> list[str]:
    """The readable BPE pieces of ``text`` (no start/end tokens, no truncation)."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    return [readable_piece(tokenizer, i) for i in ids]


def count_tokens(tokenizer, texts: list[str]) -> np.ndarray:
    """Content tokens per text before truncation (what each text would need of the 75 slots)."""
    ids = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    return np.array([len(x) for x in ids])


@dataclasses.dataclass
class LanguageCost:
    """What the corpus's names cost in tokens, per language (chapter 5)."""

    language: str
    names: int
    mean_tokens: float
    median_tokens: float
    max_tokens: int
    mean_characters: float
    truncated: int  # names longer than the 75 content slots
    truncated_examples: list[str]


def tokens_per_name(tokenizer, corpus, languages) -> list[LanguageCost]:
    """Tokens per emoji name in each language, and how many names the 77-slot window cuts."""
    limit = CONTEXT_LENGTH - 2
    out = []
    for lang in languages:
        names = corpus.names(lang)
        n = count_tokens(tokenizer, names)
        cut = [names[i] for i in np.flatnonzero(n > limit)]
        out.append(LanguageCost(lang, len(names), float(n.mean()), float(np.median(n)), int(n.max()),
                                float(np.mean([len(s) for s in names])), len(cut), cut[:3]))
    return out


def corpus_token_ids(tokenizer, corpus, languages) -> set[int]:
    """Token ids that can reach the text encoder from the corpus's names in ``languages``.

    Only the first 75 content tokens of a name fit the window (plus the start and end token and
    the padding), so pieces cut off by truncation are not counted: the model never saw them.
    """
    seen = set()
    for lang in languages:
        seen |= _window_ids(tokenizer, corpus.names(lang))
    return seen


def _window_ids(tokenizer, texts) -> set[int]:
    """Every token id of ``texts`` as the 77-slot window holds them (truncated, padded)."""
    ids = tokenizer(list(texts), padding="max_length", max_length=CONTEXT_LENGTH, truncation=True,
                    verbose=False)["input_ids"]
    return {i for row in ids for i in row}


def clip_training_token_ids(tokenizer, corpus, training_config: dict | None) -> set[int] | None:
    """Token ids in the captions the model's text encoder was trained on, or None where they are not on record.

    The text encoder of a model trained by ``lds train`` is its CLIP's text tower, trained on one draw of the
    synthetic web (``training_config["clip_web"]``: every English name, a share of each other language's) and frozen
    afterwards (the U-Net's captions are encoded once, by the frozen tower). So a corpus name reaches a trained row
    only if it was among that draw's captions: this rebuilds the draw (:func:`lds.data.corpus.sample_web`, seeded)
    and collects its ids as :func:`corpus_token_ids` does, truncation included. ``training_config``:
    ``model_source(pipe).training_config()``, None for a model trained elsewhere (SD 1.5)."""
    from lds.data.corpus import WebConfig, sample_web

    if not training_config or "clip_web" not in training_config:
        return None
    web = sample_web(corpus, WebConfig(**training_config["clip_web"]))
    return _window_ids(tokenizer, sorted({str(c) for c in web["caption"]}))


def embedding_rows(text_encoder) -> torch.Tensor:
    """The token embedding table, (vocabulary, width): one learned row per token id."""
    return text_encoder.get_input_embeddings().weight.detach().float().cpu()


def initial_token_embedding(pipe) -> torch.Tensor | None:
    """For a model trained by ``lds train``: the token embedding as it was before training.

    ``lds train`` seeds torch and builds its CLIP from ``training_config.json``, so the random
    initialisation can be rebuilt exactly. Returns None for models that were not trained by lds
    (SD 1.5: its initial weights were never published).
    """
    cfg = model_source(pipe).training_config()
    if cfg is None:
        return None
    from transformers import CLIPModel

    from lds.models.clip import CLIPTrainConfig, clip_config

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(cfg["clip"]["seed"])
        model = CLIPModel(clip_config(CLIPTrainConfig(**cfg["clip"]), cfg["image_size"]))
    finally:
        torch.random.set_rng_state(state)
    return model.text_model.embeddings.token_embedding.weight.detach().float()


@dataclasses.dataclass
class EmbeddingComparison:
    """Rows of the token embedding the corpus uses vs rows it never uses (chapter 5)."""

    used: int
    unused: int
    norm_used: np.ndarray
    norm_unused: np.ndarray
    # Only when the initial weights can be rebuilt (lds-mini): how far each row moved in training
    moved_used: np.ndarray | None = None
    moved_unused: np.ndarray | None = None
    corr_unused_with_init: float | None = None


def compare_embedding_rows(text_encoder, used_ids, initial: torch.Tensor | None = None) -> EmbeddingComparison:
    """Norms of used vs unused rows; with the initial table, how far each moved from it."""
    w = embedding_rows(text_encoder)
    mask = torch.zeros(len(w), dtype=torch.bool)
    mask[sorted(used_ids)] = True
    norms = w.norm(dim=1).numpy()
    out = EmbeddingComparison(int(mask.sum()), int((~mask).sum()), norms[mask.numpy()], norms[~mask.numpy()])
    if initial is not None:
        moved = ((w - initial).norm(dim=1) / initial.norm(dim=1)).numpy()
        out.moved_used, out.moved_unused = moved[mask.numpy()], moved[~mask.numpy()]
        a, b = w[~mask].flatten(), initial[~mask].flatten()
        out.corr_unused_with_init = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    return out


def compare_open_clip(prompt: str, hf_tokenizer, open_clip_name: str = "ViT-L-14") -> dict:
    """The same prompt through Hugging Face's tokenizer (SD's) and open_clip's: ids side by side."""
    import open_clip

    oc = open_clip.get_tokenizer(open_clip_name)
    oc_ids = [int(i) for i in oc([prompt])[0]]
    hf_ids = list(hf_tokenizer(prompt, padding="max_length", max_length=CONTEXT_LENGTH, truncation=True)["input_ids"])
    return {"prompt": prompt, "hf": hf_ids, "open_clip": oc_ids,
            "hf_padding": hf_ids[-1], "open_clip_padding": oc_ids[-1],
            "same_content": [i for i in hf_ids if i not in (49406, 49407)] ==
                            [i for i in oc_ids if i not in (49406, 49407, 0)]}


def plot_slots(tokenizer, prompt: str, ax=None, columns: int = 11):
    """All 77 slots of ``prompt`` as a grid of cells coloured by kind (start, content, end, padding)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    tp = tokenize(tokenizer, prompt)
    rows = -(-len(tp.input_ids) // columns)
    if ax is None:
        _, ax = plt.subplots(figsize=(columns * 1.25, rows * 0.62))
    for k, (i, kind) in enumerate(zip(tp.input_ids, tp.slot_kinds())):
        r, c = divmod(k, columns)
        ax.add_patch(Rectangle((c, -r), 0.95, 0.9, color=SLOT_COLORS[kind]))
        label = {"start": "START", "end": "END", "padding": "pad"}.get(kind, for_figure(readable_piece(tokenizer, i)))
        ax.text(c + 0.47, -r + 0.58, label[:10], ha="center", va="center", fontsize=7)
        ax.text(c + 0.47, -r + 0.22, str(i), ha="center", va="center", fontsize=6, color="#222222")
    ax.set_xlim(0, columns)
    ax.set_ylim(-rows + 1, 1)
    ax.axis("off")
    ax.legend(handles=[Patch(color=v, label=k) for k, v in SLOT_COLORS.items()], loc="upper center",
              bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False, fontsize=8)
    return tp


def retrieval_by_split(pipe, corpus, language: str = "en") -> dict:
    """Does a name whose words the tokenizer breaks into pieces pick out its image less well? Each corpus name in
    ``language`` is compared (cosine) with every corpus image by the model's CLIP (:func:`lds.instruments.vectorspace.web_clip`:
    its own, or lds-mini's for a model that ships none), and its image's rank among them is taken, as
    :func:`lds.models.clip.name_retrieval` does. Names are split into those with at least one word of several pieces
    and those whose every word is one token. Returns top-1 for each group, their sizes, and whether the CLIP was the
    model's own. Chapter 5 (claim 7: "their specificity lost")."""
    import re

    from lds.instruments.vectorspace import web_clip
    from lds.models.clip import image_embeds, text_embeds

    clip = web_clip(pipe)
    names = corpus.names(language)
    bank = image_embeds(clip.model, corpus.rgb())
    sim = text_embeds(clip.model, pipe.tokenizer, names) @ bank.T
    ranks = (sim >= sim.diagonal()[:, None]).sum(1).numpy() - 1
    split = np.array([any(len(pieces(pipe.tokenizer, w)) > 1 for w in re.findall(r"\w+", n.lower())) for n in names])
    return {"top1_split": float((ranks[split] == 0).mean()) if split.any() else float("nan"),
            "top1_whole": float((ranks[~split] == 0).mean()) if (~split).any() else float("nan"),
            "n_split": int(split.sum()), "n_whole": int((~split).sum()), "own_clip": bool(clip.own)}
