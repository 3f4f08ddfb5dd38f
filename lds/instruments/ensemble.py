"""The model as an ensemble: its components, what passes between them, and what latents save.

Chapter 1 (The model is not one network) explains it.

Everything here is read from loaded objects. :func:`components` lists what a loaded
``StableDiffusionPipeline`` holds (class, parameter count, dtype); :func:`trace_shapes` runs each
component once on a prompt and measures the shapes that pass between them (prompt -> 77 token ids
-> ``prompt_embeds`` -> U-Net on ``latents`` -> VAE decoder -> image); :func:`latent_vs_pixel_cost`
measures what running the U-Net on latents instead of pixels saves. Where Stable Diffusion 1.5's
weights are absent, :func:`reference_components` builds its three networks from their published
configurations on PyTorch's ``meta`` device (shapes without weights or memory), so the same
functions count their parameters and operations.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

# ----------------------------------------------------------------------------------------------
# Stable Diffusion 1.5, as published
# ----------------------------------------------------------------------------------------------

# The configurations of SD 1.5's networks, copied from the model repository's config files
# (stable-diffusion-v1-5/stable-diffusion-v1-5 on the Hugging Face hub, formerly
# runwayml/stable-diffusion-v1-5: unet/config.json, vae/config.json, text_encoder/config.json).
# Only architectural keys are kept; building them on the meta device reproduces the published
# parameter counts below exactly (tests/test_ch01_ensemble.py checks this).
SD15_CONFIGS = {
    "unet": dict(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        norm_num_groups=32, act_fn="silu", flip_sin_to_cos=True, freq_shift=0, downsample_padding=1,
    ),
    "vae": dict(
        sample_size=512, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, act_fn="silu", scaling_factor=0.18215,
    ),
    # CLIP ViT-L/14's text transformer (OpenAI's openai/clip-vit-large-patch14 text_config)
    "text_encoder": dict(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
    ),
}

# Published figures, for comparison with what the code measures. Sources: the SD v1-5 model card
# ("a latent diffusion model ... 860M UNet and CLIP ViT-L/14 text encoder"), Radford et al. 2021
# (CLIP, Table 20: ViT-L/14 text transformer width 768, 12 layers, 12 heads), Rombach et al. 2022
# (the f=8 autoencoder: 512x512x3 -> 64x64x4), and the config files above.
SD15_PUBLISHED = {
    "text_encoder_parameters": 123_060_480,  # "123M"
    "text_encoder_width": 768,
    "text_encoder_layers": 12,
    "unet_parameters": 859_520_964,  # "~860M"
    "unet_block_out_channels": (320, 640, 1280, 1280),
    "cross_attention_dim": 768,
    "cross_attention_layers": 16,  # 6 in the down blocks, 1 in the middle, 9 in the up blocks
    "vae_parameters": 83_653_863,  # "~84M"
    "image_shape": (3, 512, 512),
    "latent_shape": (4, 64, 64),
}


# ----------------------------------------------------------------------------------------------
# Components
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Component:
    """One part of the pipeline, as loaded."""

    name: str  # the pipeline's attribute: tokenizer, text_encoder, unet, vae.encoder, vae.decoder, scheduler
    cls: str  # class name
    library: str  # the package the class comes from
    parameters: int  # trained numbers (0 for the tokenizer and the scheduler)
    dtype: str  # of the parameters ("-" where there are none)
    role: str  # what it does, in a few words
    detail: str  # the configuration that matters for the chapter
    network: bool  # a neural network (has trained parameters)

    def row(self) -> dict:
        return dataclasses.asdict(self)


def count_parameters(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _dtype(module) -> str:
    for p in module.parameters():
        return str(p.dtype).replace("torch.", "")
    return "-"


def count_cross_attention_layers(unet) -> int:
    """How many attention layers in the U-Net attend to the prompt (diffusers names them ``attn2``).

    A count, for chapter 1's table; :func:`lds.pipeline.attention.cross_attention_layers` lists their names.
    """
    return sum(1 for name, m in unet.named_modules()
               if name.endswith("attn2") and getattr(m, "is_cross_attention", True))


def _vae_parts(vae):
    # The encoder half includes quant_conv (mean and log-variance); the decoder half post_quant_conv.
    enc = [m for m in (vae.encoder, getattr(vae, "quant_conv", None)) if m is not None]
    dec = [m for m in (vae.decoder, getattr(vae, "post_quant_conv", None)) if m is not None]
    return enc, dec


def components(pipe) -> list[Component]:
    """The pipeline's components as loaded: classes, parameter counts, dtypes, key sizes."""
    out = []
    tok = pipe.tokenizer
    out.append(Component(
        "tokenizer", type(tok).__name__, type(tok).__module__.split(".")[0], 0, "-",
        "text -> 77 token ids", f"vocabulary {len(tok):,}, context {tok.model_max_length}", False))
    te = pipe.text_encoder
    c = te.config
    out.append(Component(
        "text_encoder", type(te).__name__, type(te).__module__.split(".")[0], count_parameters(te), _dtype(te),
        "token ids -> prompt_embeds", f"width {c.hidden_size}, {c.num_hidden_layers} layers, "
                                      f"{c.num_attention_heads} heads", True))
    u = pipe.unet
    c = u.config
    out.append(Component(
        "unet", type(u).__name__, type(u).__module__.split(".")[0], count_parameters(u), _dtype(u),
        "noisy latents + prompt_embeds -> noise prediction",
        f"block_out_channels {tuple(c.block_out_channels)}, cross_attention_dim {c.cross_attention_dim}, "
        f"{count_cross_attention_layers(u)} cross-attention layers", True))
    enc, dec = _vae_parts(pipe.vae)
    c = pipe.vae.config
    factor = 2 ** (len(c.block_out_channels) - 1)
    for half, parts, role in (("encoder", enc, "image -> latents (training)"),
                              ("decoder", dec, "latents -> image")):
        out.append(Component(
            f"vae.{half}", f"{type(pipe.vae).__name__}.{half}", type(pipe.vae).__module__.split(".")[0],
            sum(count_parameters(m) for m in parts), _dtype(pipe.vae), role,
            f"downsampling factor {factor}, {c.latent_channels} latent channels", True))
    s = pipe.scheduler
    out.append(Component(
        "scheduler", type(s).__name__, type(s).__module__.split(".")[0], 0, "-",
        "noise schedule and update rule", f"{s.config.num_train_timesteps} training timesteps, "
                                          f"{s.config.beta_schedule} betas", False))
    if getattr(pipe, "safety_checker", None) is not None:
        sc = pipe.safety_checker
        out.append(Component("safety_checker", type(sc).__name__, type(sc).__module__.split(".")[0],
                             count_parameters(sc), _dtype(sc), "image -> flagged or not", "", True))
    return out


def reference_components() -> list[Component]:
    """SD 1.5's three networks built from :data:`SD15_CONFIGS` on the meta device (no weights)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        te = CLIPTextModel(CLIPTextConfig(**SD15_CONFIGS["text_encoder"]))
        unet = UNet2DConditionModel(**SD15_CONFIGS["unet"])
        vae = AutoencoderKL(**SD15_CONFIGS["vae"])
    enc, dec = _vae_parts(vae)
    cfg = SD15_CONFIGS
    return [
        Component("tokenizer", "CLIPTokenizer", "transformers", 0, "-", "text -> 77 token ids",
                  "vocabulary 49,408, context 77", False),
        Component("text_encoder", "CLIPTextModel", "transformers", count_parameters(te), "(published config)",
                  "token ids -> prompt_embeds", f"width {cfg['text_encoder']['hidden_size']}, "
                  f"{cfg['text_encoder']['num_hidden_layers']} layers, 12 heads", True),
        Component("unet", "UNet2DConditionModel", "diffusers", count_parameters(unet), "(published config)",
                  "noisy latents + prompt_embeds -> noise prediction",
                  f"block_out_channels {cfg['unet']['block_out_channels']}, cross_attention_dim 768, "
                  f"{count_cross_attention_layers(unet)} cross-attention layers", True),
        Component("vae.encoder", "AutoencoderKL.encoder", "diffusers", sum(count_parameters(m) for m in enc),
                  "(published config)", "image -> latents (training)", "downsampling factor 8, 4 latent channels", True),
        Component("vae.decoder", "AutoencoderKL.decoder", "diffusers", sum(count_parameters(m) for m in dec),
                  "(published config)", "latents -> image", "downsampling factor 8, 4 latent channels", True),
        Component("scheduler", "PNDMScheduler", "diffusers", 0, "-", "noise schedule and update rule",
                  "1000 training timesteps, scaled_linear betas", False),
    ]


BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked", "position_ids")  # saved, not learned


def training_networks(folder: str | Path) -> list[dict]:
    """Networks that shaped the model in training but do not ship in the pipeline, where the folder has them.

    lds-mini keeps its CLIP (vision tower and projections, in ``clip/``; the text tower is the
    pipeline's text encoder) and its PatchGAN discriminator (``discriminator/``). Parameters are
    counted from the safetensors headers, without loading anything, and only learned ones: buffers
    (BatchNorm's running statistics, position ids) are saved beside them but are not parameters, so
    the count equals ``sum(p.numel() for p in model.parameters())`` (chapter 3 states the same number).
    """
    from safetensors import safe_open

    out = []
    folder = Path(folder)
    for sub, role in (("clip", "CLIP image tower + projections: scored the web for the filter"),
                      ("discriminator", "PatchGAN: judged the autoencoder's reconstructions")):
        f = folder / sub / "model.safetensors"
        if not f.is_file():
            continue
        n = 0
        with safe_open(str(f), "pt") as sf:
            for k in sf.keys():
                if k.endswith(BUFFER_SUFFIXES):
                    continue
                shape = sf.get_slice(k).get_shape()
                n += int(torch.tensor(shape).prod().item()) if shape else 1
        out.append({"name": sub, "parameters": n, "role": role})
    return out


# ----------------------------------------------------------------------------------------------
# One pass through every component, measured
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Stage:
    """One component run once: what went in and what came out (shapes without the batch axis)."""

    component: str
    cls: str
    inputs: dict  # name -> shape
    output_name: str
    output_shape: tuple
    seconds: float

    @property
    def values(self) -> int:
        n = 1
        for s in self.output_shape:
            n *= s
        return n


@dataclasses.dataclass
class Trace:
    """What :func:`trace_shapes` measured, with the tensors themselves for the figures."""

    prompt: str
    seed: int
    stages: list[Stage]
    tokens: list[str]  # the 77 slots, as text
    input_ids: torch.Tensor  # (77,)
    prompt_embeds: torch.Tensor  # (77, d)
    latents: torch.Tensor  # (4, h, w): the starting noise
    noise_pred: torch.Tensor  # (4, h, w)
    pred_original_sample: torch.Tensor  # (4, h, w): the clean latents one step implies
    image: torch.Tensor  # (3, H, W) in [0, 1]: the decoder's picture of those latents
    reencoded: torch.Tensor  # (4, h, w): that image back through the encoder

    def shapes(self) -> dict:
        return {s.output_name: list(s.output_shape) for s in self.stages}


@torch.no_grad()
def trace_shapes(pipe, prompt: str, seed: int = 0, num_inference_steps: int = 25) -> Trace:
    """Run each component once on ``prompt`` and measure what passes between them.

    The steps follow ``StableDiffusionPipeline.__call__`` (and :func:`lds.pipeline.sampling.generate`), but
    stop after one U-Net call: the decoder then draws the clean latents that this single noise
    prediction implies. The last stage sends that image back through the encoder, the direction
    training uses.
    """
    from lds.models.autoencoder import encode
    from lds.pipeline.sampling import decode_latents, initial_latents, pred_original_sample
    from lds.models.tokenizer import tokenize

    device, dtype = pipe.unet.device, pipe.unet.dtype
    stages = []

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out, time.perf_counter() - t0

    # 1. Tokenize: text -> 77 ids (start, content, end, padding)
    tp = tokenize(pipe.tokenizer, prompt)
    ids, sec = timed(lambda: pipe.tokenizer(prompt, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                                            truncation=True, return_tensors="pt").input_ids)
    stages.append(Stage("tokenizer", type(pipe.tokenizer).__name__, {"prompt": (len(prompt),)}, "input_ids",
                        tuple(ids.shape[1:]), sec))
    # 2. Encode: ids -> prompt_embeds, one state per slot
    prompt_embeds, sec = timed(lambda: pipe.text_encoder(ids.to(device))[0].to(dtype))
    stages.append(Stage("text_encoder", type(pipe.text_encoder).__name__, {"input_ids": tuple(ids.shape[1:])},
                        "prompt_embeds", tuple(prompt_embeds.shape[1:]), sec))
    # 3. Start from noise in latent space, of the size the U-Net was trained at
    latents = initial_latents(pipe, seed)
    pipe.scheduler.set_timesteps(num_inference_steps, device=device)
    t = pipe.scheduler.timesteps[0]
    latents = latents * pipe.scheduler.init_noise_sigma
    x = pipe.scheduler.scale_model_input(latents, t)
    # 4. One U-Net call: noisy latents + prompt_embeds -> noise prediction
    noise_pred, sec = timed(lambda: pipe.unet(x, t, encoder_hidden_states=prompt_embeds, return_dict=False)[0])
    stages.append(Stage("unet", type(pipe.unet).__name__,
                        {"latents": tuple(x.shape[1:]), "prompt_embeds": tuple(prompt_embeds.shape[1:])},
                        "noise_pred", tuple(noise_pred.shape[1:]), sec))
    pred_original = pred_original_sample(pipe.scheduler, x, noise_pred, t)
    # 5. Decode: latents -> image
    image, sec = timed(lambda: decode_latents(pipe.vae, pred_original))
    stages.append(Stage("vae.decoder", f"{type(pipe.vae).__name__}.decoder", {"latents": tuple(pred_original.shape[1:])},
                        "image", tuple(image.shape[1:]), sec))
    # 6. (Training's direction) encode: image -> latents
    reencoded, sec = timed(lambda: encode(pipe.vae, image))
    stages.append(Stage("vae.encoder", f"{type(pipe.vae).__name__}.encoder", {"image": tuple(image.shape[1:])},
                        "latents", tuple(reencoded.shape[1:]), sec))
    return Trace(prompt, int(seed), stages, tp.tokens, ids[0].cpu(), prompt_embeds[0].float().cpu(),
                 latents[0].float().cpu(), noise_pred[0].float().cpu(), pred_original[0].float().cpu(),
                 image[0].float().cpu(), reencoded[0].float().cpu())


# ----------------------------------------------------------------------------------------------
# Claim 2: what running on latents saves
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Compression:
    image_shape: tuple  # (3, H, W)
    latent_shape: tuple  # (c, h, w)

    @property
    def image_values(self) -> int:
        return int(torch.tensor(self.image_shape).prod())

    @property
    def latent_values(self) -> int:
        return int(torch.tensor(self.latent_shape).prod())

    @property
    def ratio(self) -> float:
        from lds.models.autoencoder import compression_ratio

        return compression_ratio(self.image_shape, self.latent_shape)


def compression(pipe) -> Compression:
    """Values per image in pixels and in latents, at the size the model was trained at."""
    h = pipe.unet.config.sample_size
    H = h * pipe.vae_scale_factor
    return Compression((pipe.vae.config.in_channels, H, H), (pipe.vae.config.latent_channels, h, h))


def sd15_compression() -> Compression:
    return Compression(SD15_PUBLISHED["image_shape"], SD15_PUBLISHED["latent_shape"])


def unet_flops(config: dict, side: int, in_channels: int, prompt_slots: int = 77) -> int:
    """Floating-point operations of one U-Net forward pass (batch 1) at ``side`` x ``side``.

    Counted with ``torch.utils.flop_counter`` on the meta device: the network is built from its
    configuration and run on shapes only, so even SD 1.5 at 512x512 pixels costs nothing to count.
    Convolutions, matrix products and attention are counted (normalisations and activations are not).
    """
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    cfg = {k: v for k, v in dict(config).items() if not k.startswith("_")}
    cfg.update(in_channels=in_channels, out_channels=in_channels, sample_size=side)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(cfg)
        x = torch.empty(1, in_channels, side, side)
        e = torch.empty(1, prompt_slots, cfg["cross_attention_dim"])
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        unet(x, 999, encoder_hidden_states=e)
    return int(counter.get_total_flops())


def time_unet(unet, side: int, in_channels: int, repeats: int = 3) -> float:
    """Seconds for one forward pass (batch 1) at ``side`` x ``side``: the fastest of ``repeats``."""
    device, dtype = unet.device, unet.dtype
    g = torch.Generator("cpu").manual_seed(0)
    x = torch.randn(1, in_channels, side, side, generator=g).to(device, dtype)
    e = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g).to(device, dtype)
    best = float("inf")
    with torch.no_grad():
        unet(x, 999, encoder_hidden_states=e)  # warm-up
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            unet(x, 999, encoder_hidden_states=e)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    return best


@dataclasses.dataclass
class Cost:
    """One U-Net forward pass on latents against the same architecture run on pixels."""

    latent_side: int
    pixel_side: int
    latent_gflops: float
    pixel_gflops: float
    latent_seconds: float | None
    pixel_seconds: float | None  # None where the pixel U-Net was too costly to run (see note)
    note: str

    @property
    def flops_ratio(self) -> float:
        return self.pixel_gflops / self.latent_gflops

    @property
    def seconds_ratio(self) -> float | None:
        if self.pixel_seconds is None or not self.latent_seconds:
            return None
        return self.pixel_seconds / self.latent_seconds


def latent_vs_pixel_cost(unet_config: dict, latent_side: int, pixel_side: int, *, unet=None,
                         max_pixel_gflops: float = 50.0, repeats: int = 3) -> Cost:
    """Count (and where affordable, time) the U-Net on latents and the same U-Net on pixels.

    The pixel U-Net is the loaded U-Net's configuration with ``in_channels=3`` at full image size
    and random weights: what one step would cost had diffusion run on the image itself. It is
    timed only when its operation count is under ``max_pixel_gflops`` (SD 1.5's is about half a
    petaflop, hours on a laptop); otherwise only counted. ``unet`` (the loaded one) is timed on
    latents when given.
    """
    from diffusers import UNet2DConditionModel

    lat = unet_flops(unet_config, latent_side, unet_config["in_channels"]) / 1e9
    pix = unet_flops(unet_config, pixel_side, 3) / 1e9
    latent_seconds = pixel_seconds = None
    if unet is not None:
        latent_seconds = time_unet(unet, latent_side, unet_config["in_channels"], repeats)
        if pix <= max_pixel_gflops:
            cfg = {k: v for k, v in dict(unet_config).items() if not k.startswith("_")}
            cfg.update(in_channels=3, out_channels=3, sample_size=pixel_side)
            torch.manual_seed(0)
            pixel_unet = UNet2DConditionModel.from_config(cfg).to(unet.device).eval()
            if unet.dtype != torch.float32:
                pixel_unet = pixel_unet.to(dtype=unet.dtype)
            pixel_seconds = time_unet(pixel_unet, pixel_side, 3, repeats)
            del pixel_unet
            note = "both timed on this machine (fastest of a few runs)"
        else:
            note = (f"the pixel U-Net needs {pix:,.0f} GFLOPs per step, above the {max_pixel_gflops:g} GFLOPs "
                    "this chapter is allowed to spend: counted, not timed")
    else:
        note = "counted from the published configuration (no weights loaded)"
    return Cost(latent_side, pixel_side, lat, pix, latent_seconds, pixel_seconds, note)


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------

def _fmt_shape(shape) -> str:
    return " x ".join(str(s) for s in shape)


def draw_flow(trace: Trace, comps: list[Component], title: str = ""):
    """The pipeline as a flow of measured shapes: every box and label comes from ``trace`` and ``comps``.

    Component boxes carry the class and parameter count; tensor boxes carry the measured shape, the
    number of values, and a square whose area is proportional to that number.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    by_name = {c.name: c for c in comps}
    st = {s.component: s for s in trace.stages}
    unet_in = st["unet"].inputs["latents"]
    nodes = [  # (kind, label, shape or component name)
        ("tensor", "prompt", (len(trace.prompt),)),
        ("comp", "tokenizer", None),
        ("tensor", "input_ids", st["tokenizer"].output_shape),
        ("comp", "text_encoder", None),
        ("tensor", "prompt_embeds", st["text_encoder"].output_shape),
        ("comp", "unet", None),
        ("tensor", "latents", st["unet"].output_shape),
        ("comp", "vae.decoder", None),
        ("tensor", "image", st["vae.decoder"].output_shape),
    ]
    values = [v for k, _, v in nodes if k == "tensor"]
    biggest = max(int(torch.tensor(v).prod()) for v in values)
    fig, ax = plt.subplots(figsize=(15, 4.6))
    ax.set_xlim(-0.6, len(nodes) - 0.4)
    ax.set_ylim(-2.3, 1.35)
    ax.axis("off")
    for i, (kind, label, shape) in enumerate(nodes):
        if kind == "comp":
            c = by_name[label]
            ax.add_patch(FancyBboxPatch((i - 0.45, -0.35), 0.9, 0.7, boxstyle="round,pad=0.03",
                                        fc="#dde8f5" if c.network else "#eeeeee", ec="#34568b", lw=1.5))
            params = f"{c.parameters / 1e6:,.1f}M parameters" if c.parameters else "no parameters"
            ax.text(i, 0.14, label, ha="center", va="center", fontsize=10, weight="bold")
            ax.text(i, -0.06, c.cls.split(".")[0], ha="center", va="center", fontsize=7.5)
            ax.text(i, -0.22, params, ha="center", va="center", fontsize=7.5)
            secs = st[label].seconds if label in st else None
            if secs is not None:
                ax.text(i, -0.47, f"ran in {secs * 1000:,.1f} ms", ha="center", va="top", fontsize=7, color="#555")
        else:
            n = int(torch.tensor(shape).prod())
            text = f'"{trace.prompt[:18]}{"..." if len(trace.prompt) > 18 else ""}"' if label == "prompt" \
                else _fmt_shape(shape)
            ax.text(i, 0.55, label, ha="center", va="bottom", fontsize=9.5, style="italic")
            ax.text(i, 0.0, text, ha="center", va="center", fontsize=9)
            unit = "characters" if label == "prompt" else "values"
            ax.text(i, -0.25, f"{n:,} {unit}", ha="center", va="center", fontsize=8, color="#333")
            side = 0.9 * (n / biggest) ** 0.5
            side = max(side, 0.02)
            ax.add_patch(Rectangle((i - side / 2, -0.55 - side), side, side, fc="#f2b880", ec="#a0522d", lw=0.8))
        if i < len(nodes) - 1:
            ax.add_patch(FancyArrowPatch((i + 0.47, 0.0), (i + 0.53, 0.0), arrowstyle="-|>", mutation_scale=14,
                                         color="#34568b"))
    # The seed's noise enters the U-Net from below
    u = [i for i, (k, label, _) in enumerate(nodes) if label == "unet"][0]
    ax.annotate(f"seed {trace.seed} -> noise latents {_fmt_shape(unet_in)}", xy=(u, -0.62), xytext=(u, -1.75),
                ha="center", va="center", fontsize=8.5, color="#8b3434",
                arrowprops=dict(arrowstyle="-|>", color="#8b3434"))
    ax.text(u, 0.45, "run once per step", ha="center", va="bottom", fontsize=8.5, color="#34568b")
    ax.text(-0.55, -2.25, "Orange squares: area proportional to the number of values in each tensor "
            "(measured by running each component once).", fontsize=8, color="#555")
    if title:
        ax.set_title(title)
    return fig


def draw_one_pass(trace: Trace):
    """The tensors of one pass: starting noise, the implied clean latents, the decoded image."""
    import matplotlib.pyplot as plt

    c = trace.latents.shape[0]
    fig, axes = plt.subplots(2, c + 1, figsize=(2.0 * (c + 1), 4.2))
    for row, (name, lat) in enumerate((("noise latents", trace.latents),
                                       ("pred_original_sample", trace.pred_original_sample))):
        for k in range(c):
            axes[row, k].imshow(lat[k].numpy(), cmap="RdBu_r")
            axes[row, k].set_title(f"{name}\nchannel {k}" if k == 0 else f"channel {k}", fontsize=8)
            axes[row, k].axis("off")
    axes[0, c].imshow(trace.image.permute(1, 2, 0).numpy())
    axes[0, c].set_title(f"decoded\n{_fmt_shape(trace.image.shape)}", fontsize=8)
    axes[0, c].axis("off")
    axes[1, c].imshow(trace.prompt_embeds.numpy(), aspect="auto", cmap="RdBu_r")
    axes[1, c].set_title(f"prompt_embeds\n{_fmt_shape(trace.prompt_embeds.shape)}", fontsize=8)
    axes[1, c].set_xlabel("width")
    axes[1, c].set_ylabel("slot")
    fig.tight_layout()
    return fig


def compare_table(mine: list[Component], reference: list[Component]) -> list[dict]:
    """Rows for a side-by-side table: component, the loaded model's class and size, SD 1.5's."""
    ref = {c.name: c for c in reference}
    rows = []
    for c in mine:
        r = ref.get(c.name)
        rows.append({"component": c.name, "class": c.cls, "parameters": c.parameters, "dtype": c.dtype,
                     "detail": c.detail, "SD 1.5 parameters": r.parameters if r else None,
                     "SD 1.5 detail": r.detail if r else ""})
    return rows


def is_lds_mini(pipe) -> bool:
    """Whether the loaded pipeline is the built-in lds-mini (by location, not by name)."""
    from lds.pipeline.loading import lds_mini_path, model_source

    folder = model_source(pipe).folder
    try:
        return folder is not None and folder.resolve() == lds_mini_path().resolve()
    except OSError:
        return False


def describe_networks(comps: list[Component], extra: list[dict] = ()) -> str:
    """One line for the claims ledger: the networks and their parameter counts."""
    nets = [c for c in comps if c.network]
    text = "; ".join(f"{c.name} {c.parameters:,}" for c in nets)
    more = "".join(f"; {n['name']} {n['parameters']:,} (training only)" for n in extra)
    return f"{len(nets)} networks in the pipeline ({text}){more}"
