"""The text encoder: from token ids to the 77 per-token states the U-Net attends to.

Chapter 5 (Tokenization) explains it. SD 1.x conditions its U-Net on the last hidden states of
CLIP ViT-L/14's text transformer (77 x 768), not on the pooled vector CLIP uses for scoring;
lds-mini does the same at its own width.
"""

from __future__ import annotations

import torch

from lds.models.tokenizer import CONTEXT_LENGTH


@torch.no_grad()
def encode_prompts(text_encoder, tokenizer, prompts: list[str], batch_size: int = 512,
                   progress: bool = False) -> torch.Tensor:
    """``prompt_embeds`` as StableDiffusionPipeline computes them: (N, 77, width).

    Prompts are padded with <|endoftext|> to all 77 slots and truncated past them, exactly as
    the pipeline does; ``lds.models.tokenizer.tokenize`` reports what truncation removed.
    """
    from tqdm.auto import tqdm

    out = []
    for i in tqdm(range(0, len(prompts), batch_size), desc="text encoder", disable=not progress):
        ids = tokenizer(list(prompts[i:i + batch_size]), padding="max_length", max_length=CONTEXT_LENGTH,
                        truncation=True, return_tensors="pt").input_ids
        out.append(encode_input_ids(text_encoder, ids))
    return torch.cat(out)


@torch.no_grad()
def encode_input_ids(text_encoder, input_ids: torch.Tensor) -> torch.Tensor:
    """``prompt_embeds`` of prompts already tokenized: (N, 77) token ids -> (N, 77, width), the last hidden states.

    What :func:`encode_prompts` does after tokenizing; :func:`lds.pipeline.sampling.generate` calls it with the
    ids of :func:`lds.models.tokenizer.tokenize`, so that each prompt is tokenized once.
    """
    return text_encoder(input_ids.to(text_encoder.device))[0]


# Stable Diffusion 1.5's text_encoder/model.safetensors names every tensor under ``text_model.``
# (transformers 4.x's CLIPTextModel wraps a CLIPTextTransformer of that name). transformers 5
# flattened the class and saves without the prefix; it still loads either layout, but transformers
# 4.x silently skips every unprefixed tensor and runs a randomly initialised encoder.
SD15_PREFIX = "text_model."


def save_text_encoder_as_sd15(folder) -> list[str]:
    """Rewrite ``folder/model.safetensors`` (a saved ``CLIPTextModel``) with SD 1.5's key names.

    The tensors are untouched; only names lacking the ``text_model.`` prefix gain it. Returns the
    new key names. Chapter 1 (The model is not one network) reads the folder it belongs to.
    """
    from pathlib import Path

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = Path(folder) / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
        tensors = {k if k.startswith(SD15_PREFIX) else SD15_PREFIX + k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(path), metadata={**metadata, "format": "pt"})
    return sorted(tensors)
