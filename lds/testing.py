"""Folders shaped like Stable Diffusion 1.5, with random weights: for tests and benchmarks.

The book promises that every chapter runs on SD 1.5 (book/gpu.md). CI cannot download SD 1.5's
4 GB, so :func:`sd15_folder` writes a folder with SD 1.5's component layout and the configuration
values that choose code paths (scheduler class and schedule, safety checker and feature extractor,
an f=8 autoencoder with four levels and scaling factor 0.18215, a 768-wide CLIP text encoder whose
config carries SD 1.5's old special-token ids, a four-level U-Net with cross-attention width 768 and
64x64 latents; no ``clip/`` or ``training_config.json``, which only lds-mini ships). Channel counts
and depths, which choose no code path, are tiny unless ``full_size=True`` (benchmarks/run.py).
The real SD 1.5 values are written out here from its folder on the hub
(stable-diffusion-v1-5/stable-diffusion-v1-5, the ``config.json`` of each component).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# scheduler/scheduler_config.json of SD 1.5
SD15_SCHEDULER = {"beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                  "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
                  "steps_offset": 1, "trained_betas": None, "clip_sample": False}

# feature_extractor/preprocessor_config.json of SD 1.5 (what the safety checker sees: 224 x 224)
SD15_FEATURE_EXTRACTOR = {"crop_size": 224, "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True,
                          "do_resize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                          "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}

# The files of SD 1.5's folder that loaders look for (the weights as .safetensors), by component.
SD15_FILES = {
    "": ["model_index.json"],
    "scheduler": ["scheduler_config.json"],
    "text_encoder": ["config.json", "model.safetensors"],
    "tokenizer": ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"],
    "unet": ["config.json", "diffusion_pytorch_model.safetensors"],
    "vae": ["config.json", "diffusion_pytorch_model.safetensors"],
    "safety_checker": ["config.json", "model.safetensors"],
    "feature_extractor": ["preprocessor_config.json"],
}


def sd15_text_encoder_keys(num_hidden_layers: int = 12) -> list[str]:
    """The tensor names in SD 1.5's text_encoder/model.safetensors (CLIP ViT-L/14's text tower)."""
    keys = ["text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
            "text_model.final_layer_norm.weight", "text_model.final_layer_norm.bias"]
    for i in range(num_hidden_layers):
        layer = f"text_model.encoder.layers.{i}."
        for part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                     "layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"):
            keys += [layer + part + ".weight", layer + part + ".bias"]
    return sorted(keys)


def sd15_folder(folder, *, full_size: bool = False, seed: int = 0) -> Path:
    """Write a random-weight pipeline folder laid out and configured like SD 1.5; returns it.

    Tiny (about 90 MB, most of it the 49,408 x 768 token embedding) unless ``full_size``, which
    gives SD 1.5's own widths and depths (about 1.1 billion parameters, 4.3 GB in float32).
    """
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from lds.pipeline.loading import save_pipeline
    from lds.models.tokenizer import build_tokenizer_files

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2 if full_size else 1,
        block_out_channels=(320, 640, 1280, 1280) if full_size else (8, 16, 16, 16),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        # SD 1.5 has 8 heads; 2 in the tiny folder take the same code paths (averaging over heads included) at a
        # quarter of the cost of attention over 4,096 latent positions, which is most of a tiny step
        cross_attention_dim=768, attention_head_dim=8 if full_size else 2, norm_num_groups=32 if full_size else 8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=2 if full_size else 1,
        block_out_channels=(128, 256, 512, 512) if full_size else (8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=32 if full_size else 4, scaling_factor=0.18215)
    # SD 1.5's text config keeps OpenAI's original special-token ids (bos 0, pad 1, eos 2), which
    # sends transformers' pooled output down its legacy branch; the tokenizer uses 49406/49407.
    text_config = CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072 if full_size else 64,
        num_hidden_layers=12 if full_size else 2, num_attention_heads=12, max_position_embeddings=77,
        hidden_act="quick_gelu", projection_dim=768, bos_token_id=0, pad_token_id=1, eos_token_id=2)
    text_encoder = CLIPTextModel(text_config)
    safety_config = CLIPConfig(
        text_config={"hidden_size": 768 if full_size else 32, "intermediate_size": 3072 if full_size else 37,
                     "num_hidden_layers": 12 if full_size else 1, "num_attention_heads": 12 if full_size else 4},
        vision_config={"hidden_size": 1024 if full_size else 32, "intermediate_size": 4096 if full_size else 37,
                       "num_hidden_layers": 24 if full_size else 1, "num_attention_heads": 16 if full_size else 4,
                       "image_size": 224, "patch_size": 14},
        projection_dim=768)
    safety_checker = StableDiffusionSafetyChecker(safety_config)
    build_tokenizer_files(folder / "_tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "_tokenizer"))
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER), safety_checker=safety_checker,
        feature_extractor=CLIPImageProcessor(**SD15_FEATURE_EXTRACTOR), requires_safety_checker=True)
    if not full_size:  # half the disk (as SD 1.5's fp16 variant); load_pipeline loads float32
        for component in (unet, vae, text_encoder, safety_checker):
            component.half()
    save_pipeline(pipe, folder)
    shutil.rmtree(folder / "_tokenizer")
    return folder


def layout_differences(folder, reference: dict | None = None) -> list[str]:
    """What a pipeline folder lacks of SD 1.5's layout (files and text-encoder key names); empty if none.

    Components the folder does not have (lds-mini ships no safety checker) are not counted.
    """
    from safetensors import safe_open

    folder = Path(folder)
    index = json.loads((folder / "model_index.json").read_text())
    problems = []
    for component, files in (reference or SD15_FILES).items():
        if component and index.get(component, [None])[0] is None:
            continue
        for name in files:
            if not (folder / component / name).is_file():
                problems.append(f"missing {component + '/' if component else ''}{name}")
    weights = folder / "text_encoder" / "model.safetensors"
    if weights.is_file():
        layers = json.loads((folder / "text_encoder" / "config.json").read_text())["num_hidden_layers"]
        with safe_open(str(weights), "pt") as f:
            keys = {k for k in f.keys() if not k.endswith("position_ids")}
        expected = set(sd15_text_encoder_keys(layers))
        if keys != expected:
            problems.append(f"text_encoder keys differ from SD 1.5's: {sorted(keys ^ expected)[:4]} ...")
    return problems
