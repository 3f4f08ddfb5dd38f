"""CLIP: the contrastive image-text model that scores, filters and conditions.

Chapter 2 (CLIP and the filtered web) explains it; chapter 5 uses its text tower.

lds-mini's CLIP is a transformers ``CLIPModel`` (the class that holds OpenAI's CLIP on the hub)
at a miniature size, trained here on an English-heavy draw of the emoji corpus. Its text tower is
saved separately as the pipeline's ``text_encoder`` (a ``CLIPTextModel``, as in SD 1.x); the
rest (vision tower, projections, temperature) is saved in ``clip/`` beside the pipeline, so the
two share one copy of the 49,408-row token embedding.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@dataclasses.dataclass
class CLIPTrainConfig:
    """Size and training of lds-mini's CLIP (chosen by measurement on 2 CPU cores)."""

    width: int = 128  # SD 1.5's text encoder is 768 wide; the 49,408 x width embedding dominates the size
    layers: int = 4  # SD 1.5: 12
    heads: int = 4
    vision_width: int = 128
    vision_layers: int = 3
    patch_size: int = 4  # 32x32 images -> 8x8 = 64 patches
    projection_dim: int = 128
    steps: int = 600
    batch_size: int = 192  # contrastive learning wants many negatives per batch
    lr: float = 1e-3
    # Linear warmup, then cosine decay to lr_floor, as CLIP was trained (Radford et al. 2021: warmup, cosine);
    # warmup keeps the first Adam steps, whose moment estimates are noise, from wrecking a fresh transformer.
    # The shipped CLIP was trained with this schedule at the full recipe's sizes (its training_config.json:
    # 2,400 steps, 120 of warmup, a twentieth of the run as here).
    warmup_steps: int = 30
    lr_floor: float = 0.0  # decay to 0 (CLIP's own cosine does): the model is final when training stops
    weight_decay: float = 0.1
    # CLIP's own training data (WIT) was English; this draw is English-heavy and clean.
    english_share: float = 0.6
    seed: int = 0


def clip_config(cfg: CLIPTrainConfig, image_size: int = 32):
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config=dict(
            vocab_size=49408, hidden_size=cfg.width, intermediate_size=4 * cfg.width,
            num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, max_position_embeddings=77,
            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, projection_dim=cfg.projection_dim,
            hidden_act="quick_gelu",
        ),
        vision_config=dict(
            image_size=image_size, patch_size=cfg.patch_size, num_channels=3, hidden_size=cfg.vision_width,
            intermediate_size=4 * cfg.vision_width, num_hidden_layers=cfg.vision_layers,
            num_attention_heads=cfg.heads, projection_dim=cfg.projection_dim, hidden_act="quick_gelu",
        ),
        projection_dim=cfg.projection_dim,
    )


# Images enter CLIP as RGB in [0, 1], normalised with the corpus's own statistics (OpenAI's CLIP
# uses ImageNet-like constants; ours come from the emoji renders on white).
IMAGE_MEAN = (0.80, 0.75, 0.68)
IMAGE_STD = (0.30, 0.32, 0.37)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> CLIP's normalised input."""
    mean = torch.tensor(IMAGE_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def train_clip(images: np.ndarray, pairs: dict, tokenizer, cfg: CLIPTrainConfig, progress: bool = True,
               log=None, model=None, frozen_vision: bool = False, checkpoint=None):
    """Contrastive training of a transformers ``CLIPModel`` on (image, caption) pairs.

    ``images`` is (N, H, W, 3) float in [0, 1]; ``pairs`` has arrays ``image`` and ``caption``.
    ``log(step, values, model)``, if given, is called every 50 steps (a trial scores the model there).
    Pass ``model`` to continue training one; ``frozen_vision=True`` trains only the text side (text tower,
    its projection, the temperature) against image features computed once, which is how
    ``benchmarks/clip_trials.py`` asks whether the text tower or the image tower limits retrieval.
    ``checkpoint`` (an :class:`lds.training.recipe.StageCheckpoint`) saves the training state as it goes and, if it
    holds one, continues from it. Returns the model and the loss history.
    """
    from transformers import CLIPModel, get_cosine_with_min_lr_schedule_with_warmup

    from lds.models.training_loop import run_steps

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if model is None:
        model = CLIPModel(clip_config(cfg, images.shape[1]))
    model.train()
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    frozen_features = None
    if frozen_vision:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(("text_model.", "text_projection.")) or name == "logit_scale")
        with torch.no_grad():
            frozen_features = torch.cat([_features(model.get_image_features(pixel_values=preprocess(x_all[i:i + 512])))
                                         for i in range(0, len(x_all), 512)])
    # β2 = 0.98: CLIP's for its vision transformers (Radford et al. 2021), steadier with large batches
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps, min_lr_rate=cfg.lr_floor)
    n = len(pairs["image"])

    def step(i):
        idx = rng.integers(0, n, size=cfg.batch_size)
        img_idx = pairs["image"][idx]
        # One caption per image in a batch: duplicates would be false negatives.
        _, first = np.unique(img_idx, return_index=True)
        idx, img_idx = idx[first], img_idx[first]
        image_features = F.normalize(
            frozen_features[img_idx] if frozen_vision else
            _features(model.get_image_features(pixel_values=preprocess(x_all[img_idx]))), dim=-1)
        text_features = F.normalize(_bucketed_text_features(model, tokenizer, pairs["caption"][idx]), dim=-1)
        # CLIP's symmetric cross-entropy over the batch's similarity matrix
        logits = model.logit_scale.exp() * text_features @ image_features.T
        labels = torch.arange(len(idx))
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():  # CLIP clamps its learned temperature at 100
            model.logit_scale.clamp_(0, math.log(100))
        return {"loss": loss.item()}

    losses = run_steps(step, cfg.steps, ("loss",), desc="CLIP", progress=progress,
                       log=None if log is None else lambda i, means: log(i, {"clip_loss": means["loss"]}, model),
                       checkpoint=checkpoint, state={"model": model, "opt": opt, "sched": sched}, rng=rng)["loss"]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return model, losses


def _features(out):
    # transformers 5 returns a model output for get_*_features; older versions a tensor
    return out.pooler_output if hasattr(out, "pooler_output") else out


def _bucketed_text_features(model, tokenizer, captions, buckets: int = 4) -> torch.Tensor:
    """Text features computed in length buckets: the same values, less padding to compute.

    Exact because the causal mask keeps padding after <|endoftext|> from reaching the pooled state.
    """
    ids = tokenizer(list(captions), truncation=True, max_length=77)["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    feats = [None] * len(ids)
    for chunk in np.array_split(order, buckets):
        if len(chunk) == 0:
            continue
        longest = max(len(ids[i]) for i in chunk)
        batch = torch.tensor([ids[i] + [tokenizer.pad_token_id] * (longest - len(ids[i])) for i in chunk])
        out = _features(model.get_text_features(input_ids=batch))
        for j, i in enumerate(chunk):
            feats[i] = out[j]
    return torch.stack(feats)


# ---------------------------------------------------------------------------------------------
# Saving and loading: text tower as the pipeline's text_encoder, the rest in clip/
# ---------------------------------------------------------------------------------------------

def save_clip(model, folder: Path, dtype=torch.float16) -> None:
    """Save the vision tower, projections and temperature (the text tower lives in text_encoder/)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(dtype if v.is_floating_point() and k != "logit_scale" else v.dtype).contiguous()
             for k, v in model.state_dict().items() if not k.startswith("text_model.")}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    model.config.to_json_file(str(folder / "config.json"))


def load_clip(folder: Path, text_encoder) -> "torch.nn.Module":
    """Reassemble the full ``CLIPModel`` from ``clip/`` and the pipeline's text encoder."""
    from safetensors.torch import load_file
    from transformers import CLIPConfig, CLIPModel

    folder = Path(folder)
    config = CLIPConfig.from_json_file(str(folder / "config.json"))
    model = CLIPModel(config).float()  # the stored config may say float16 (weights are half on disk)
    state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    state.update({f"text_model.{k.removeprefix('text_model.')}": v.float()
                  for k, v in text_encoder.state_dict().items()})
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing or unexpected:
        raise ValueError(f"CLIP checkpoint in {folder} does not match its config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Using it: embeddings and scores
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def image_embeds(model, images: np.ndarray | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Unit-norm image embeddings for (N, H, W, 3) arrays or (N, 3, H, W) tensors in [0, 1].

    Batches of 64: the same embeddings as larger batches, bit for bit, faster on a CPU and without the
    transient half gigabyte that batches of 512 took (measured on the corpus; it decided the book's peak memory)."""
    x = torch.as_tensor(images).float()
    if x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    out = []
    for i in range(0, len(x), batch_size):
        feats = _features(model.get_image_features(pixel_values=preprocess(x[i:i + batch_size])))
        out.append(F.normalize(feats, dim=-1))
    return torch.cat(out)


@torch.no_grad()
def text_embeds(model, tokenizer, captions, batch_size: int = 1024) -> torch.Tensor:
    """Unit-norm text embeddings (CLIP's pooled, projected <|endoftext|> state)."""
    captions = list(captions)
    out = []
    for i in range(0, len(captions), batch_size):
        feats = _bucketed_text_features(model, tokenizer, captions[i:i + batch_size], buckets=8)
        out.append(F.normalize(feats, dim=-1))
    return torch.cat(out) if out else torch.zeros(0, model.config.projection_dim)


@dataclasses.dataclass
class PairScores:
    """What :func:`clip_score` returns: the score of every pair, and the embeddings it took them from."""

    scores: np.ndarray  # (pairs,) cosine of each pair's image and caption
    image_embeds: torch.Tensor  # (distinct images, D), unit norm: the corpus's, for a web of corpus images
    captions: np.ndarray  # the distinct captions, sorted
    caption_index: np.ndarray  # (pairs,) row of ``text_embeds`` for each pair
    text_embeds: torch.Tensor  # (distinct captions, D), unit norm


def clip_score(model, tokenizer, images, captions, *, bank: torch.Tensor | None = None,
               known: PairScores | None = None) -> PairScores:
    """Cosine similarity of each image with its caption (``.scores``): the number LAION thresholded.

    ``images`` may be an array of images, or a pair ``(distinct_images, index)`` so that a web of many
    pairs over few images (the synthetic web over the corpus) embeds each image once; captions are
    embedded once per distinct caption. The same numbers as scoring pair by pair, for a fraction of the
    work. ``bank``: the distinct images' embeddings, if computed already; ``known``: scores of other pairs
    by the same CLIP, whose caption embeddings are taken instead of embedding those captions again.
    """
    if isinstance(images, tuple):
        distinct_images, image_index = images
    else:
        distinct_images, image_index = images, np.arange(len(images))
    img = image_embeds(model, distinct_images) if bank is None else bank
    captions, caption_index = np.unique(np.asarray(captions, dtype=str), return_inverse=True)
    if known is None:
        txt = text_embeds(model, tokenizer, list(captions))
    else:  # the same captions embed to the same vectors: take what was embedded, embed the rest
        have = {c: k for k, c in enumerate(known.captions.astype(str))}
        new = [c for c in captions if c not in have]
        fresh = text_embeds(model, tokenizer, new) if new else known.text_embeds[:0]
        fresh_row = {c: k for k, c in enumerate(new)}
        txt = torch.stack([known.text_embeds[have[c]] if c in have else fresh[fresh_row[c]] for c in captions])
    scores = (img[torch.as_tensor(image_index)] * txt[torch.as_tensor(caption_index)]).sum(-1).numpy()
    return PairScores(scores, img, captions, caption_index, txt)


@torch.no_grad()
def name_retrieval(model, tokenizer, images: np.ndarray, names, bank: torch.Tensor | None = None) -> dict:
    """How well the text tower tells the corpus apart: each name's rank for the image it names.

    For image i, the text embedding of ``names[i]`` is compared (cosine) with the embeddings of all
    ``images``; rank 0 means the named image is the nearest. Ties count against the name (a
    name whose image embedding equals another's is not retrieved). The lds-mini issue's target is
    English top-1 at least 0.95: below that, the prompt the U-Net is conditioned on may not
    distinguish the image it should draw. Pass ``bank`` (image embeddings) to reuse them.
    """
    bank = image_embeds(model, images) if bank is None else bank
    text = text_embeds(model, tokenizer, list(names))
    sim = text @ bank.T  # (names, images)
    target = sim.diagonal()
    ranks = (sim >= target[:, None]).sum(1).numpy() - 1  # the name's own image is counted once
    return {"top1": float((ranks == 0).mean()), "top5": float((ranks < 5).mean()),
            "median_rank": float(np.median(ranks)), "n": int(len(ranks))}
