"""The text encoder: from token ids to the 77 per-token states the U-Net attends to.

Chapter 5 (Tokenization) explains it. SD 1.x conditions its U-Net on the last hidden states of
CLIP ViT-L/14's text transformer (77 x 768), not on the pooled vector CLIP uses for scoring;
lds-mini does the same at its own width.
"""

from __future__ import annotations

import torch

from .tokenizer import CONTEXT_LENGTH


@torch.no_grad()
def encode_prompts(text_encoder, tokenizer, prompts: list[str], batch_size: int = 512,
                   progress: bool = False) -> torch.Tensor:
    """``prompt_embeds`` as StableDiffusionPipeline computes them: (N, 77, width).

    Prompts are padded with <|endoftext|> to all 77 slots and truncated past them, exactly as
    the pipeline does; ``lds.tokenizer.tokenize`` reports what truncation removed.
    """
    from tqdm.auto import tqdm

    out = []
    for i in tqdm(range(0, len(prompts), batch_size), desc="text encoder", disable=not progress):
        ids = tokenizer(list(prompts[i:i + batch_size]), padding="max_length", max_length=CONTEXT_LENGTH,
                        truncation=True, return_tensors="pt").input_ids
        out.append(text_encoder(ids.to(text_encoder.device))[0])
    return torch.cat(out)
