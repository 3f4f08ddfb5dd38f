"""Does text conditioning work? A retrieval score of generated images against the corpus.

The model card reports it; ``lds train`` (stage ``evaluate``) and ``make bench`` compute it.

For a fixed, seeded sample of corpus emoji, each name is used as a prompt; the generated image is
compared with all 3,812 corpus images, and we ask where the emoji that was named ranks. Two judges:
pixel distance (no learned model: a generated image must look like the right emoji, pixel for pixel)
and lds-mini's CLIP image embedding (a learned judge, trained on the same corpus: say so when quoting
it). The same score for the unconditional output (guidance 0, same seeds) is the floor: what the
model makes when the prompt cannot act. Skin-tone variants are near duplicates, so "base" accuracy
also counts the right emoji in another tone as right.

Retrieval asks whether the image is nearer the named emoji than any other; it does not ask whether the
drawing is right. So each generated image is also compared with its named corpus image by structural
similarity (:func:`ssim`, on luminance at the corpus's 32x32): the local means, contrasts and correlations of
the two pictures, which a blob of the right colours does not match and speckle does not either. Retrieval
and SSIM are reported per kind of emoji too, on at least ``min_per_kind`` prompts for every kind.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lds.data.corpus import LANGUAGES, load_corpus
from lds.pipeline.loading import model_source
from lds.measures import nn_ranks, ssim, to_size


@dataclasses.dataclass
class EvalConfig:
    n_prompts: int = 96  # English names, sampled once with `seed`
    n_per_language: int = 24  # for each of the other 13 languages
    guidance_scale: float = 5.0
    num_inference_steps: int = 25
    seed: int = 1234
    batch_size: int = 48
    # The uniform sample above gives faces 2 prompts and food 3: too few to say anything per kind. Kinds with
    # fewer are topped up from a second seeded draw (the headline numbers stay on the uniform sample).
    min_per_kind: int = 10
    # The model card's grid prompts (KIND_GRID: the emoji a reader tries first), each drawn with this many seeds
    grid_seeds: int = 8


def ssim_to_named(images: torch.Tensor, targets: np.ndarray, corpus) -> np.ndarray:
    """SSIM of each generated image to the corpus image it names (resized to the corpus's size if needed)."""
    rgb = torch.from_numpy(corpus.rgb()[np.asarray(targets)]).permute(0, 3, 1, 2)
    return ssim(to_size(images, rgb.shape[-1]), rgb.float()).numpy()


def english_targets(corpus, cfg: EvalConfig, rng: np.random.Generator | None = None) -> np.ndarray:
    """The evaluation's English prompts, as corpus indices: ``cfg.n_prompts`` images drawn without replacement by
    ``rng``, a generator seeded with ``cfg.seed`` unless given (:func:`evaluate_model` passes its own, which goes on
    to draw the other languages' prompts)."""
    rng = np.random.default_rng(cfg.seed) if rng is None else rng
    return rng.choice(len(corpus), size=min(cfg.n_prompts, len(corpus)), replace=False)


def generate_batches(pipe, prompts: list[str], cfg: EvalConfig, guidance_scale: float,
                     progress: bool = False) -> torch.Tensor:
    """The evaluation's images of ``prompts``: batches of ``cfg.batch_size``, batch k seeded ``cfg.seed + k`` (so
    the first prompts of a shorter list get the same images, but for the last, smaller batch)."""
    from tqdm.auto import tqdm

    from lds.pipeline.sampling import generate

    out = []
    chunks = range(0, len(prompts), cfg.batch_size)
    for k, i in enumerate(tqdm(chunks, desc=f"evaluate (guidance {guidance_scale:g})", disable=not progress)):
        g = generate(pipe, prompts[i:i + cfg.batch_size], seed=cfg.seed + k, guidance_scale=guidance_scale,
                     num_inference_steps=cfg.num_inference_steps)
        out.append(g.image_tensor.float().cpu())
    return torch.cat(out)


def judge_ranks(images: torch.Tensor, targets: np.ndarray, corpus, clip_model=None,
                bank_embeds: torch.Tensor | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per judge, ``pixel`` and (with ``clip_model``) ``clip``: each image's rank of the emoji it names among the
    corpus (0 = nearest; :func:`lds.measures.nn_ranks`) and its nearest corpus image, images resized to the
    corpus's size. ``bank_embeds``: the corpus's CLIP image embeddings, if already computed with that CLIP."""
    rgb = torch.from_numpy(corpus.rgb()).permute(0, 3, 1, 2)
    images = to_size(images, rgb.shape[-1])
    judges = [("pixel", images.flatten(1), rgb.flatten(1), "l2")]
    if clip_model is not None:
        from lds.models.clip import image_embeds

        bank = bank_embeds if bank_embeds is not None else image_embeds(clip_model, rgb)
        judges.append(("clip", image_embeds(clip_model, images), bank, "cosine"))
    out = {}
    for name, q, bank, metric in judges:
        sim = q @ bank.T if metric == "cosine" else -torch.cdist(q, bank) ** 2
        out[name] = (nn_ranks(q, bank, targets, metric), sim.argmax(1).numpy())
    return out


def retrieval_scores(images: torch.Tensor, targets: np.ndarray, corpus, clip_model=None,
                     bank_embeds: torch.Tensor | None = None) -> dict:
    """Top-1/top-5 (exact emoji) and base top-1 (any skin tone) under the pixel and CLIP judges.

    One rule for ties in all three: the named image counts as nearest when no corpus image is strictly nearer
    (:func:`lds.measures.nn_ranks`). The corpus holds images that render identically under different names, so
    the first of several equally near images (``argmax``) can be another emoji while the named one ties with it;
    counting that as a base miss made base top-1 fall below top-1, which cannot be (a hit on the exact emoji is a
    hit on its base)."""
    bases = np.array([r["base"] for r in corpus.records])
    out = {}
    for name, (ranks, nearest) in judge_ranks(images, targets, corpus, clip_model, bank_embeds).items():
        out[f"{name}_top1"] = float((ranks == 0).mean())
        out[f"{name}_top5"] = float((ranks < 5).mean())
        out[f"{name}_base_top1"] = float(((ranks == 0) | (bases[nearest] == bases[targets])).mean())
        out[f"{name}_median_rank"] = float(np.median(ranks))
    return out


def evaluate_model(pipe, cfg: EvalConfig = EvalConfig(), progress: bool = True) -> dict:
    """Conditional vs unconditional retrieval scores, in English and in the other 13 languages."""
    from lds.models.clip import image_embeds, load_clip

    corpus = load_corpus()
    rng = np.random.default_rng(cfg.seed)
    folder = model_source(pipe).folder
    clip_model = load_clip(folder / "clip", pipe.text_encoder) if folder and (folder / "clip").exists() else None
    bank = image_embeds(clip_model, corpus.rgb()) if clip_model is not None else None
    targets = english_targets(corpus, cfg, rng)
    prompts = [corpus.records[i]["names"]["en"] for i in targets]
    result = {"config": dataclasses.asdict(cfg), "corpus_size": len(corpus), "prompts": prompts}
    cond = generate_batches(pipe, prompts, cfg, cfg.guidance_scale, progress)
    uncond = generate_batches(pipe, prompts, cfg, 0.0, progress)
    for label, imgs in (("en", cond), ("uncond", uncond)):
        for k, v in retrieval_scores(imgs, targets, corpus, clip_model, bank).items():
            result[f"{label}_{k}"] = v
        result[f"{label}_ssim"] = float(ssim_to_named(imgs, targets, corpus).mean())
    # By kind: the English images again, plus a second seeded draw for kinds the uniform sample left with
    # fewer than min_per_kind prompts (its own generator, so the draws below are the same as without it)
    all_kinds = np.array(corpus.kinds)
    extra_rng = np.random.default_rng(cfg.seed + 1)
    extra = []
    for kind in sorted(set(all_kinds)):
        pool = np.setdiff1d(np.flatnonzero(all_kinds == kind), targets)
        need = min(cfg.min_per_kind - int((all_kinds[targets] == kind).sum()), len(pool))
        if need > 0:
            extra.extend(extra_rng.choice(pool, size=need, replace=False).tolist())
    kind_targets, kind_images = targets, cond
    if extra:
        extra = np.array(extra)
        result["by_kind_extra_prompts"] = [corpus.records[i]["names"]["en"] for i in extra]
        kind_targets = np.concatenate([targets, extra])
        kind_images = torch.cat([cond, generate_batches(pipe, result["by_kind_extra_prompts"], cfg, cfg.guidance_scale,
                                                 progress)])
    kind_ssim = ssim_to_named(kind_images, kind_targets, corpus)
    kinds = all_kinds[kind_targets]
    result["en_by_kind"] = {
        kind: {"n": int((kinds == kind).sum()),
               **retrieval_scores(kind_images[torch.from_numpy(kinds == kind)], kind_targets[kinds == kind], corpus,
                                  clip_model, bank),
               "ssim": float(kind_ssim[kinds == kind].mean())}
        for kind in sorted(set(kinds))}
    result["chance_top1"] = 1.0 / len(corpus)
    result["chance_top5"] = 5.0 / len(corpus)
    per_lang = {}
    for lang in LANGUAGES[1:]:
        t = rng.choice(len(corpus), size=min(cfg.n_per_language, len(corpus)), replace=False)
        imgs = generate_batches(pipe, [corpus.records[i]["names"][lang] for i in t], cfg, cfg.guidance_scale, False)
        per_lang[lang] = retrieval_scores(imgs, t, corpus, clip_model, bank)
    result["by_language"] = per_lang
    if cfg.grid_seeds:
        prompts = [p for ps in KIND_GRID.values() for p in ps]
        ranks = prompt_ranks(pipe, prompts, n_seeds=cfg.grid_seeds, guidance_scale=cfg.guidance_scale,
                             num_inference_steps=cfg.num_inference_steps, batch_size=cfg.batch_size)
        result["grid_prompts"] = {p: {"ranks": r.tolist(), "top1": float((r == 0).mean()),
                                      "top5": float((r < 5).mean())} for p, r in ranks.items()}
        result["grid_top5"] = float(np.mean([v["top5"] for v in result["grid_prompts"].values()]))
    if clip_model is not None:  # does the text tower tell the corpus's names apart? (issue target: en top-1 0.95)
        result["clip_names"] = clip_name_retrieval(clip_model, pipe.tokenizer, corpus, bank)
    return result


def prompt_ranks(pipe, prompts: list[str], n_seeds: int = 8, seed: int = 0, guidance_scale: float = 5.0,
                 num_inference_steps: int = 25, batch_size: int = 48, lang: str | list[str] = "en") -> dict[str, np.ndarray]:
    """For each corpus name in ``prompts`` (names in ``lang``, or one language per prompt): the pixel rank
    (:func:`lds.measures.named_rank`) of the emoji it names, for images drawn with seeds ``seed`` ..
    ``seed + n_seeds - 1``. A verdict on one prompt should not rest on one seed: a share of seeds is what this
    gives."""
    from lds.measures import corpus_tensor, named_rank
    from lds.pipeline.sampling import generate

    corpus = load_corpus()
    bank = corpus_tensor(corpus)
    langs = [lang] * len(prompts) if isinstance(lang, str) else list(lang)
    targets = [corpus.find(p, lg) for p, lg in zip(prompts, langs)]
    out = {}
    for k in range(n_seeds):
        images = []
        for i in range(0, len(prompts), batch_size):
            images.append(generate(pipe, prompts[i:i + batch_size], seed=seed + k, guidance_scale=guidance_scale,
                                   num_inference_steps=num_inference_steps).image_tensor.float().cpu())
        ranks = named_rank(torch.cat(images), targets, corpus, bank)
        for p, r in zip(prompts, ranks):
            out.setdefault(p, []).append(int(r))
    return {p: np.array(r) for p, r in out.items()}


def clip_name_retrieval(clip_model, tokenizer, corpus, bank: torch.Tensor | None = None) -> dict:
    """:func:`lds.models.clip.name_retrieval` over the whole corpus, for every language: how often CLIP's text
    embedding of a name is nearer its own image than any other corpus image (no diffusion involved)."""
    from lds.models.clip import image_embeds, name_retrieval

    bank = image_embeds(clip_model, corpus.rgb()) if bank is None else bank
    return {lang: name_retrieval(clip_model, tokenizer, None, corpus.names(lang), bank) for lang in LANGUAGES}


# The headline numbers of a trained model, as the model card compares recipes: (label, where to find it)
SUMMARY_ROWS = (
    ("training time (minutes, before evaluation)", "training_minutes"),
    ("autoencoder held-out PSNR (dB)", "holdout_psnr_db"),
    ("CLIP: English name to image, top-1", "clip_en_top1"),
    ("English prompts: top-1 (pixel judge)", "en_pixel_top1"),
    ("English prompts: top-5 (pixel judge)", "en_pixel_top5"),
    ("guidance 0: top-5 (pixel judge)", "uncond_pixel_top5"),
    ("SSIM to the named emoji", "en_ssim"),
    ("lowest top-5 of the eight kinds", "worst_kind_pixel_top5"),
)


def holdout_psnr(metrics: dict) -> float | None:
    """The shipped autoencoder's held-out PSNR: the last autoencoder stage in ``metrics`` that measured it."""
    for stage in ("decoder_recon", "decoder", "autoencoder"):
        if metrics.get(stage, {}).get("holdout_psnr_db") is not None:
            return metrics[stage]["holdout_psnr_db"]
    return None


def recipe_summary(metrics: dict, evaluation: dict, config: dict) -> dict:
    """The numbers in :data:`SUMMARY_ROWS` from a model folder's ``metrics.json``, ``evaluation.json`` and
    ``training_config.json`` (None where a record lacks one), plus the per-kind top-5. The model card shows
    one column per recipe."""
    minutes = sum(v["seconds"] for k, v in metrics.items()
                  if isinstance(v, dict) and "seconds" in v and k != "evaluate") / 60
    by_kind = {k: v["pixel_top5"] for k, v in evaluation.get("en_by_kind", {}).items()}
    clip_names = evaluation.get("clip_names", {})
    return {
        "recipe": config.get("recipe", "quick"),  # folders trained before --recipe existed used the quick budget
        "training_minutes": round(minutes, 1),
        "holdout_psnr_db": holdout_psnr(metrics),
        "clip_en_top1": clip_names.get("en", {}).get("top1"),
        **{k: evaluation.get(k) for k in ("en_pixel_top1", "en_pixel_top5", "uncond_pixel_top5", "en_ssim")},
        "worst_kind_pixel_top5": min(by_kind.values()) if by_kind else None,
        "by_kind_pixel_top5": by_kind,
    }


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


def kind_grid(pipe, seed: int = 0, guidance_scale: float = 5.0, num_inference_steps: int = 25, n_seeds: int = 2,
              per_kind: int = 4):
    """Generated images for prompts across kinds, ``n_seeds`` seeds each (``seed``, ``seed + 1``, ...), beside the
    corpus image they name (for the model card: one seed could flatter or wrong the model). ``per_kind``: the
    first 1 to 4 prompts of each kind in :data:`KIND_GRID`."""
    if not 1 <= int(per_kind) <= min(len(v) for v in KIND_GRID.values()):
        raise ValueError(f"per_kind={per_kind}: choose 1 to {min(len(v) for v in KIND_GRID.values())} prompts per kind")
    import matplotlib.pyplot as plt

    from lds.pipeline.sampling import batch_size_for, check_size, generate, initial_latents

    corpus = load_corpus()
    rows = [(kind, prompts[:int(per_kind)]) for kind, prompts in KIND_GRID.items()]
    cols = max(len(v) for _, v in rows)
    per = n_seeds + 1  # each prompt: its seeds, then the corpus image
    # Each row's images for seed s are those of generate(pipe, row_prompts, seed=s): the row's starting noise is
    # drawn as that call draws it, and the rows go through the loop together in batches sized for the image.
    flat = [(r, p) for r, (_, prompts) in enumerate(rows) for p in prompts]
    chunk = batch_size_for(check_size(pipe, None, None)[0])
    drawn = {}
    for k in range(n_seeds):
        start = torch.cat([initial_latents(pipe, seed + k, batch_size=len(prompts)) for _, prompts in rows])
        images = []
        for i in range(0, len(flat), chunk):
            images += list(generate(pipe, [p for _, p in flat[i:i + chunk]], guidance_scale=guidance_scale,
                                    num_inference_steps=num_inference_steps, latents=start[i:i + chunk]).images)
        for (r, p), image in zip(flat, images):
            drawn[(r, p, k)] = image
    fig, axes = plt.subplots(len(rows), per * cols, figsize=(per * cols * 0.9, len(rows) * 1.15), squeeze=False)
    for r, (kind, prompts) in enumerate(rows):
        outs = [[drawn[(r, p, k)] for p in prompts] for k in range(n_seeds)]
        for c, p in enumerate(prompts):
            try:
                ref = corpus.rgb()[corpus.find(p)]
            except KeyError:
                ref = np.ones((32, 32, 3))
            for k in range(n_seeds):
                axes[r, per * c + k].imshow(outs[k][c])
                axes[r, per * c + k].set_title(f"{p[:18]} · {seed + k}" if k == 0 else f"seed {seed + k}", fontsize=5)
            axes[r, per * c + n_seeds].imshow(ref)
            axes[r, per * c + n_seeds].set_title("corpus", fontsize=5, color="gray")
        axes[r, 0].set_ylabel(kind, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
