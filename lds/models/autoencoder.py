"""The autoencoder: compression into latents, and the discriminator that judges plausibility.

Chapter 3 (The autoencoder) explains it.

lds-mini's autoencoder is diffusers' ``AutoencoderKL`` (the class of SD's VAE), trained with the
recipe of SD's ``LPIPSWithDiscriminator`` (taming-transformers / VQGAN): L1 + perceptual + KL +
a hinge PatchGAN discriminator. LPIPS needs an ImageNet backbone that cannot be installed offline,
so the perceptual term compares features of the mini CLIP's image tower instead: the judge of
what looks "the same" is itself trained on the filtered corpus.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass
class AutoencoderTrainConfig:
    """Size and training of lds-mini's autoencoder (measured on 2 CPU cores)."""

    # Three blocks = two halvings: 32x32x3 pixels -> 8x8x4 latents (12x fewer values; SD: 48x)
    block_out_channels: tuple = (32, 64, 128)
    layers_per_block: int = 1
    latent_channels: int = 4  # as SD
    steps: int = 2200
    batch_size: int = 16
    lr: float = 4.5e-4 / 2
    # Adam's β1 = 0.5, β2 = 0.9 for the autoencoder and its discriminator: VQGAN's optimiser
    # (Esser et al. 2021, taming-transformers' configure_optimizers), kept by SD's autoencoder training.
    # A short momentum memory (β1 = 0.5, as DCGAN) lets the two adversaries follow each other's moves.
    adam_betas: tuple = (0.5, 0.9)
    # Linear warmup over the first 100 steps (fresh weights, noisy Adam moments); then cosine decay to
    # lr_floor of lr, not 0: the discriminator joins late (disc_start) and the decoder must still be able
    # to answer it. transformers' cosine starts after the warmup. The shipped autoencoder was trained with this
    # schedule at the full recipe's sizes (its training_config.json: 6,000 steps, 100 of warmup, this floor).
    warmup_steps: int = 100
    lr_floor: float = 0.1
    kl_weight: float = 1e-6  # SD's kl-f8 value: the KL term only keeps latents from drifting
    perceptual_weight: float = 0.5
    disc_start: int = 1400  # the discriminator joins once reconstructions are reasonable (VQGAN)
    disc_weight: float = 0.5
    disc_layers: int = 3  # n_layers=3: a 70x70 receptive field at full size
    seed: int = 0


def build_autoencoder(cfg: AutoencoderTrainConfig, image_size: int = 32):
    from diffusers import AutoencoderKL

    n = len(cfg.block_out_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
        latent_channels=cfg.latent_channels, sample_size=image_size, norm_num_groups=32,
    )


class NLayerDiscriminator(nn.Module):
    """The PatchGAN discriminator of pix2pix (Isola et al. 2017), as taming-transformers uses it.

    Each output value judges one patch of the input; the patch size is the receptive field,
    computed by :func:`receptive_field` from the layers themselves (70 for ``n_layers=3``).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 32, n_layers: int = 3):
        super().__init__()
        kw, padw = 4, 1
        layers = [nn.Conv2d(input_nc, ndf, kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, kw, stride=2, padding=padw, bias=False),
                       nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, kw, stride=1, padding=padw, bias=False),
                   nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, kw, stride=1, padding=padw)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)  # (B, 1, h, w): one realness logit per patch


def receptive_field(module: nn.Module) -> int:
    """Receptive field (pixels on a side) of a stack of convolutions, from their kernels and strides.

    r = 1 + sum_l (k_l - 1) * prod_{m<l} s_m  (dilation 1).
    """
    r, jump = 1, 1
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            k, s = layer.kernel_size[0], layer.stride[0]
            r += (k - 1) * jump
            jump *= s
    return r


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


class CLIPPerceptualLoss(nn.Module):
    """Distance between images in the mini CLIP image tower's hidden layers (LPIPS's role).

    LPIPS compares unit-normalised VGG/AlexNet features; here the features come from each
    transformer layer of lds-mini's CLIP vision tower, likewise normalised per token.
    """

    def __init__(self, clip_model):
        super().__init__()
        self.vision = clip_model.vision_model
        for p in self.vision.parameters():
            p.requires_grad_(False)
        self.vision.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from lds.models.clip import preprocess

        both = torch.cat([x, y]).clamp(0, 1)
        hidden = self.vision(pixel_values=preprocess(both), output_hidden_states=True).hidden_states[1:]
        loss = 0.0
        for h in hidden:
            h = F.normalize(h, dim=-1)
            hx, hy = h.chunk(2)
            loss = loss + (hx - hy).pow(2).sum(-1).mean()
        return loss / len(hidden)


def _adaptive_weight(nll: torch.Tensor, g: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """VQGAN's balance of the GAN term against reconstruction, from their gradient norms."""
    nll_grads = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
    g_grads = torch.autograd.grad(g, last_layer, retain_graph=True)[0]
    w = torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)
    return torch.clamp(w, 0.0, 1e4).detach()


def _recipe_step(recon, x, perceptual, disc, opt, opt_d, sched, cfg, last_layer, extra_loss=0.0, gan_on=True):
    """One optimisation step of SD's autoencoder recipe (LPIPSWithDiscriminator): L1 + perceptual
    (+ ``extra_loss``, the KL term) + adaptively weighted hinge GAN, then one discriminator step.
    Returns the losses (l1, perceptual, generator, discriminator)."""
    x2 = x * 2 - 1
    l1 = (recon - x2).abs().mean()
    p_loss = perceptual((recon + 1) / 2, x)
    nll = l1 + cfg.perceptual_weight * p_loss
    loss = nll + extra_loss
    g_loss = torch.zeros(())
    if gan_on:
        g_loss = -disc(recon).mean()
        loss = loss + cfg.disc_weight * _adaptive_weight(nll, g_loss, last_layer) * g_loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    d_loss = torch.zeros(())
    if gan_on:
        d_loss = hinge_d_loss(disc(x2), disc(recon.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
    return l1, p_loss, g_loss, d_loss


def train_autoencoder(images: np.ndarray, clip_model, cfg: AutoencoderTrainConfig, progress: bool = True,
                      log=None, checkpoint=None):
    """Train ``AutoencoderKL`` on (N, H, W, 3) images in [0, 1]. Returns (vae, discriminator, history).

    ``checkpoint`` (an :class:`lds.training.recipe.StageCheckpoint`) saves the training state as it goes and, if it
    holds one, continues from it.
    """
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    from lds.models.training_loop import run_steps

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    vae = build_autoencoder(cfg, images.shape[1])
    disc = NLayerDiscriminator(n_layers=cfg.disc_layers)
    perceptual = CLIPPerceptualLoss(clip_model)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas))
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps, min_lr_rate=cfg.lr_floor)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    last_layer = vae.decoder.conv_out.weight

    def step(i):
        x = x_all[rng.integers(0, len(x_all), size=cfg.batch_size)]
        if rng.random() < 0.5:
            x = x.flip(-1)  # mirror images: cheap augmentation for a small corpus
        x2 = x * 2 - 1  # diffusers' VAEs work in [-1, 1]
        posterior = vae.encode(x2).latent_dist
        recon = vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / x[0].numel()  # per-pixel, to be comparable with l1
        l1, p_loss, g_loss, d_loss = _recipe_step(recon, x, perceptual, disc, opt, opt_d, sched, cfg, last_layer,
                                                  extra_loss=cfg.kl_weight * kl * x[0].numel(),
                                                  gan_on=i >= cfg.disc_start)
        return {"step": i, "l1": l1.item(), "perceptual": p_loss.item(), "kl": kl.item(), "g": g_loss.item(),
                "d": d_loss.item()}

    history = run_steps(step, cfg.steps, ("step", "l1", "perceptual", "kl", "g", "d"), desc="autoencoder",
                        progress=progress, shown=("l1", "d"),
                        log=None if log is None else lambda i, means: log(i, {"vae_l1": means["l1"]}),
                        checkpoint=checkpoint, rng=rng,
                        state={"model": vae, "disc": disc, "opt": opt, "opt_d": opt_d, "sched": sched})
    vae.eval()
    disc.eval()
    return vae, disc, history


@torch.no_grad()
def encode(vae, images: torch.Tensor | np.ndarray, sample: bool = False, generator=None, batch_size: int = 256):
    """(N, 3, H, W) or (N, H, W, 3) images in [0, 1] -> scaled latents, as the U-Net sees them.

    Works whatever the VAE's device and dtype; the latents come back as float32 on the CPU.
    """
    x = torch.as_tensor(images).float()
    if x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    p = next(vae.parameters())
    out = []
    for i in range(0, len(x), batch_size):
        dist = vae.encode(x[i:i + batch_size].to(p.device, p.dtype) * 2 - 1).latent_dist
        out.append((dist.sample(generator) if sample else dist.mean).float().cpu())
    return torch.cat(out) * vae.config.scaling_factor


@torch.no_grad()
def decode(vae, latents: torch.Tensor, batch_size: int = 256, raw: bool = False) -> torch.Tensor:
    """Scaled latents -> (N, 3, H, W) images in [0, 1] (clamped, as the pipeline's image processor),
    float32 on the CPU whatever the VAE's device and dtype; ``raw=True``: the decoder's own output,
    nominally in [-1, 1], before that mapping and clamping."""
    p = next(vae.parameters())
    out = []
    for i in range(0, len(latents), batch_size):
        image = vae.decode(latents[i:i + batch_size].to(p.device, p.dtype) / vae.config.scaling_factor).sample
        # mapped in the VAE's own dtype, then float32, as diffusers' image processor does (same pixels in float16)
        out.append((image if raw else denormalize(image)).float().cpu())
    return torch.cat(out)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """The decoder's output, nominally in [-1, 1], as an image in [0, 1]: diffusers' ``VaeImageProcessor.denormalize``."""
    return (image / 2 + 0.5).clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for images in [0, 1]."""
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def compression_ratio(image_shape: tuple, latent_shape: tuple) -> float:
    """How many times fewer values the latents hold than the pixels (SD 1.5: 512*512*3 / 64*64*4 = 48)."""
    return float(np.prod(image_shape) / np.prod(latent_shape))


@dataclasses.dataclass
class DecoderFinetuneConfig:
    """Continued training of the decoder alone, the encoder frozen (as SD's ft-EMA/ft-MSE VAEs did).

    The latents do not change, so a U-Net trained on them stays valid; only reconstructions improve.
    """

    steps: int = 400
    batch_size: int = 32
    lr: float = 1e-4
    adam_betas: tuple = (0.5, 0.9)  # VQGAN's (Esser et al. 2021), as in AutoencoderTrainConfig
    # Warmup (100 steps: the fine-tune starts a fresh optimiser) then cosine decay to 0: a fine-tune ends
    # where it should settle. transformers' cosine starts after the warmup. The shipped decoder's two fine-tunes
    # used this schedule (training_config.json's decoder and decoder_recon: 1,500 steps each, 100 of warmup).
    warmup_steps: int = 100
    lr_floor: float = 0.0
    perceptual_weight: float = 0.5
    disc_weight: float = 0.5  # 0: no discriminator at all (the reconstruction-weighted decoder_l1 stage)
    seed: int = 1


def finetune_decoder(vae, disc, images: np.ndarray, clip_model, cfg: DecoderFinetuneConfig, progress: bool = True,
                     checkpoint=None):
    """Train ``vae.decoder`` (and ``post_quant_conv``) on fixed posterior samples; returns the history.

    ``checkpoint`` (an :class:`lds.training.recipe.StageCheckpoint`) saves the training state as it goes and, if it
    holds one, continues from it.
    """
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    from lds.models.training_loop import run_steps

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        dists = [vae.encode(x_all[i:i + 256] * 2 - 1).latent_dist for i in range(0, len(x_all), 256)]
        mean = torch.cat([d.mean for d in dists])
        std = torch.cat([d.std for d in dists])
    for p in vae.parameters():
        p.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p in params:
        p.requires_grad_(True)
    perceptual = CLIPPerceptualLoss(clip_model)
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.adam_betas))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas))
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps, min_lr_rate=cfg.lr_floor)
    disc.train()
    vae.decoder.train()
    last_layer = vae.decoder.conv_out.weight

    def step(i):
        idx = torch.from_numpy(rng.integers(0, len(x_all), size=cfg.batch_size))
        x = x_all[idx]
        z = mean[idx] + std[idx] * torch.randn_like(mean[idx])
        recon = vae.decode(z).sample
        l1, p_loss, g_loss, d_loss = _recipe_step(recon, x, perceptual, disc, opt, opt_d, sched, cfg, last_layer,
                                                  gan_on=cfg.disc_weight > 0)
        return {"l1": l1.item(), "perceptual": p_loss.item(), "g": g_loss.item(), "d": d_loss.item()}

    history = run_steps(step, cfg.steps, ("l1", "perceptual", "g", "d"), desc="decoder fine-tune",
                        progress=progress, checkpoint=checkpoint, rng=rng,
                        state={"model": vae, "disc": disc, "opt": opt, "opt_d": opt_d, "sched": sched})
    vae.eval()
    disc.eval()
    for p in vae.parameters():
        p.requires_grad_(True)
    return history
