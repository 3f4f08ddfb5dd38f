"""Does text conditioning work? A retrieval score of generated images against the corpus.

The model card reports it; ``lds train`` (stage ``evaluate``) and ``make bench`` compute it.

For a fixed, seeded sample of corpus emoji, each name is used as a prompt; the generated image is
compared with all 3,812 corpus images, and we ask where the emoji that was named ranks. Two judges:
pixel distance (no learned model: a generated image must look like the right emoji, pixel for pixel)
and lds-mini's CLIP image embedding (a learned judge, trained on the same corpus: say so when quoting
it). The same score for the unconditional output (guidance 0, same seeds) is the floor: what the
model makes when the prompt cannot act. Skin-tone variants are near duplicates, so "base" accuracy
also counts the right emoji in another tone as right.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .corpus import LANGUAGES, load_corpus
from .pipeline import model_source


@dataclasses.dataclass
class EvalConfig:
    n_prompts: int = 96  # English names, sampled once with `seed`
    n_per_language: int = 24  # for each of the other 13 languages
    guidance_scale: float = 5.0
    num_inference_steps: int = 25
    seed: int = 1234
    batch_size: int = 48


def _nn_ranks(query: torch.Tensor, bank: torch.Tensor, targets: np.ndarray, metric: str) -> np.ndarray:
    """Rank (0 = nearest) of each target among the bank, for each query."""
    if metric == "cosine":
        sim = query @ bank.T
    else:  # negative squared distance
        sim = -torch.cdist(query, bank) ** 2
    target_sim = sim[torch.arange(len(targets)), torch.as_tensor(targets)]
    return (sim > target_sim[:, None]).sum(1).numpy()


def _generate(pipe, prompts: list[str], cfg: EvalConfig, guidance_scale: float, progress: bool) -> torch.Tensor:
    from tqdm.auto import tqdm

    from .sampling import generate

    out = []
    chunks = range(0, len(prompts), cfg.batch_size)
    for k, i in enumerate(tqdm(chunks, desc=f"evaluate (guidance {guidance_scale:g})", disable=not progress)):
        g = generate(pipe, prompts[i:i + cfg.batch_size], seed=cfg.seed + k, guidance_scale=guidance_scale,
                     num_inference_steps=cfg.num_inference_steps)
        out.append(g.image_tensor.float().cpu())
    return torch.cat(out)


def retrieval_scores(images: torch.Tensor, targets: np.ndarray, corpus, clip_model=None,
                     bank_embeds: torch.Tensor | None = None) -> dict:
    """Top-1/top-5 (exact emoji) and base top-1 (any skin tone) under the pixel and CLIP judges."""
    rgb = torch.from_numpy(corpus.rgb()).permute(0, 3, 1, 2)
    if images.shape[-2:] != rgb.shape[-2:]:
        images = torch.nn.functional.interpolate(images, size=rgb.shape[-2:], mode="area")
    bases = np.array([r["base"] for r in corpus.records])
    out = {}
    judges = [("pixel", images.flatten(1), rgb.flatten(1), "l2")]
    if clip_model is not None:
        from .clip import image_embeds

        bank = bank_embeds if bank_embeds is not None else image_embeds(clip_model, rgb)
        judges.append(("clip", image_embeds(clip_model, images), bank, "cosine"))
    for name, q, bank, metric in judges:
        ranks = _nn_ranks(q, bank, targets, metric)
        sim = q @ bank.T if metric == "cosine" else -torch.cdist(q, bank) ** 2
        nearest = sim.argmax(1).numpy()
        out[f"{name}_top1"] = float((ranks == 0).mean())
        out[f"{name}_top5"] = float((ranks < 5).mean())
        out[f"{name}_base_top1"] = float((bases[nearest] == bases[targets]).mean())
        out[f"{name}_median_rank"] = float(np.median(ranks))
    return out


def evaluate_model(pipe, cfg: EvalConfig = EvalConfig(), progress: bool = True) -> dict:
    """Conditional vs unconditional retrieval scores, in English and in the other 13 languages."""
    from .clip import image_embeds, load_clip

    corpus = load_corpus()
    rng = np.random.default_rng(cfg.seed)
    folder = model_source(pipe).folder
    clip_model = load_clip(folder / "clip", pipe.text_encoder) if folder and (folder / "clip").exists() else None
    bank = image_embeds(clip_model, corpus.rgb()) if clip_model is not None else None
    targets = rng.choice(len(corpus), size=min(cfg.n_prompts, len(corpus)), replace=False)
    prompts = [corpus.records[i]["names"]["en"] for i in targets]
    result = {"config": dataclasses.asdict(cfg), "corpus_size": len(corpus), "prompts": prompts}
    cond = _generate(pipe, prompts, cfg, cfg.guidance_scale, progress)
    uncond = _generate(pipe, prompts, cfg, 0.0, progress)
    for label, imgs in (("en", cond), ("uncond", uncond)):
        for k, v in retrieval_scores(imgs, targets, corpus, clip_model, bank).items():
            result[f"{label}_{k}"] = v
    # The same English images, split by kind: where conditioning works and where it does not
    kinds = np.array(corpus.kinds)[targets]
    result["en_by_kind"] = {
        kind: {"n": int((kinds == kind).sum()),
               **retrieval_scores(cond[torch.from_numpy(kinds == kind)], targets[kinds == kind], corpus, clip_model,
                                  bank)}
        for kind in sorted(set(kinds))}
    result["chance_top1"] = 1.0 / len(corpus)
    result["chance_top5"] = 5.0 / len(corpus)
    per_lang = {}
    for lang in LANGUAGES[1:]:
        t = rng.choice(len(corpus), size=min(cfg.n_per_language, len(corpus)), replace=False)
        imgs = _generate(pipe, [corpus.records[i]["names"][lang] for i in t], cfg, cfg.guidance_scale, False)
        per_lang[lang] = retrieval_scores(imgs, t, corpus, clip_model, bank)
    result["by_language"] = per_lang
    return result


KIND_GRID = {
    "faces": ["grinning face", "face with tears of joy", "smiling face with sunglasses", "angry face"],
    "people (skin tones)": ["woman dancing", "man dancing dark skin tone", "person running light skin tone",
                            "baby medium skin tone"],
    "hands": ["thumbs up", "thumbs up dark skin tone", "waving hand", "clapping hands medium skin tone"],
    "animals": ["dog face", "cat face", "frog", "penguin"],
    "food": ["red apple", "pizza", "banana", "birthday cake"],
    "objects": ["rocket", "light bulb", "umbrella", "bicycle"],
    "symbols": ["red heart", "check mark button", "recycling symbol", "sparkles"],
    "flags": ["Japan", "Brazil", "Germany", "chequered flag"],
}


def kind_grid(pipe, seed: int = 0, guidance_scale: float = 5.0, num_inference_steps: int = 25):
    """Generated images for prompts across kinds, beside the corpus image they name (for the model card)."""
    import matplotlib.pyplot as plt

    from .sampling import generate

    corpus = load_corpus()
    rows = list(KIND_GRID.items())
    cols = max(len(v) for _, v in rows)
    fig, axes = plt.subplots(len(rows), 2 * cols, figsize=(2 * cols * 1.1, len(rows) * 1.25))
    for r, (kind, prompts) in enumerate(rows):
        out = generate(pipe, prompts, seed=seed, guidance_scale=guidance_scale, num_inference_steps=num_inference_steps)
        for c, (p, img) in enumerate(zip(prompts, out.images)):
            try:
                ref = corpus.rgb()[corpus.find(p)]
            except KeyError:
                ref = np.ones((32, 32, 3))
            axes[r, 2 * c].imshow(img)
            axes[r, 2 * c + 1].imshow(ref)
            axes[r, 2 * c].set_title(p[:22], fontsize=6)
            axes[r, 2 * c + 1].set_title("corpus", fontsize=6, color="gray")
        axes[r, 0].set_ylabel(kind, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
