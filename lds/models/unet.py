"""The U-Net: the network that learns to predict the noise in noisy latents, given a prompt.

Chapter 4 (The U-Net in training) explains it; chapters 6-8 run it.

lds-mini's U-Net is diffusers' ``UNet2DConditionModel`` (the class of SD's U-Net) with
cross-attention on all 77 per-token states of the text encoder, trained for ε-prediction on the
forward process of SD 1.x's scheduler (scaled-linear betas, 1,000 steps), with the prompt replaced
by the empty prompt 10% of the time so that classifier-free guidance has an unconditional
prediction to work with (SD v1-3 onwards did the same).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

# SD 1.x's noise schedule (its scheduler_config.json)
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


@dataclasses.dataclass
class UNetTrainConfig:
    """Size and training of lds-mini's U-Net (measured on 2 CPU cores)."""

    block_out_channels: tuple = (64, 128, 128)  # SD 1.5: (320, 640, 1280, 1280)
    layers_per_block: int = 1  # SD 1.5: 2
    # Channels per attention head. diffusers' argument ``attention_head_dim`` is misnamed: for
    # UNet2DConditionModel it is the number of heads (SD 1.5's config says 8, meaning 8 heads of 40 to 160
    # channels), so build_unet passes channels // this. lds-mini: 8 channels a head, so 8 and 16 heads.
    attention_head_dim: int = 8
    steps: int = 3600
    batch_size: int = 64
    lr: float = 2e-3  # 2e-3 to 4e-3 scored alike in 1,500-step trials; 5e-4 far worse
    # Linear warmup (Goyal et al. 2017): Adam's moment estimates are noise in the first steps, and at 2e-3 a
    # full-size first update can throw a fresh network far off; 200 steps is about 5% of the run.
    warmup_steps: int = 200
    # Cosine decay to this share of lr, not to 0: the loss was still falling at the end, so the last steps
    # keep learning while the EMA averages them. transformers' cosine runs from the end of the warmup to the
    # last step. The shipped U-Net was trained with this schedule at the full recipe's sizes (its
    # training_config.json: 12,000 steps, 500 of warmup, this floor), recomputed for 12,000 steps part-way
    # (schedule_change.json).
    lr_floor: float = 0.05
    weight_decay: float = 0.01  # AdamW's default, and diffusers' train_text_to_image.py (--adam_weight_decay)
    # Gradient-norm clipping at 1.0, diffusers' train_text_to_image.py default (--max_grad_norm): a batch of
    # nearly clean timesteps or a rare caption can produce one huge gradient; clipping keeps it one step long.
    max_grad_norm: float = 1.0
    cond_drop: float = 0.1  # SD v1-3+: "10% dropping of the text-conditioning"
    ema_decay: float = 0.999
    # Min-SNR-γ loss weighting (Hang et al. 2023; diffusers' train_text_to_image --snr_gamma):
    # each timestep's ε-loss weighted by min(SNR, γ)/SNR, so that nearly clean timesteps, which
    # teach little about the prompt, do not dominate. None: the plain mean of SD's objective.
    snr_gamma: float | None = 5.0  # the value Hang et al. recommend
    # How the kept pairs are drawn. 0: uniformly, so each shape family (an emoji and its skin-tone variants)
    # is seen as often as the filtered web shows it. 1: every family equally often, pairs uniform within a
    # family (so the tone and language mix inside a family stays the web's). Values between flatten part way:
    # a pair's weight is (kept pairs of its family) ** -family_balance. See family_balanced_weights.
    family_balance: float = 0.0
    seed: int = 0


def family_balanced_weights(pairs_image: np.ndarray, families: np.ndarray, balance: float) -> np.ndarray | None:
    """Sampling weight of each pair: ``n_f ** -balance``, ``n_f`` the number of pairs of its shape family.

    ``families[i]`` is corpus image i's family (:attr:`lds.data.corpus.Corpus.families`). With ``balance`` 1 each
    family's pairs together weigh 1, so a family is drawn as often as any other however often the web showed
    it; within a family the pairs keep their proportions. None when ``balance`` is 0 (uniform draws).
    """
    if not balance:
        return None
    fam = np.asarray(families)[np.asarray(pairs_image)]
    counts = np.bincount(fam)
    return counts[fam].astype(np.float64) ** (-float(balance))


def draw_pairs(rng: np.random.Generator, n: int, batch_size: int, p: np.ndarray | None = None) -> np.ndarray:
    """Indices of one batch of training pairs: uniform over the ``n`` pairs, or with probabilities ``p``."""
    return rng.integers(0, n, size=batch_size) if p is None else rng.choice(n, size=batch_size, p=p)


def build_unet(cfg: UNetTrainConfig, sample_size: int, cross_attention_dim: int, in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    n = len(cfg.block_out_channels)
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=in_channels, out_channels=in_channels,
        down_block_types=("CrossAttnDownBlock2D",) * (n - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n - 1),
        block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=tuple(c // cfg.attention_head_dim for c in cfg.block_out_channels),
        norm_num_groups=32,
    )


def min_snr_weights(noise_scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ weights for the ε-loss: min(SNR(t), γ) / SNR(t), with SNR(t) = ᾱ_t / (1 − ᾱ_t).

    1 for noisy timesteps (SNR below γ), smaller for nearly clean ones, where predicting the noise
    is easy and says little about what the prompt asks for.
    """
    from lds.models.forward_process import signal_to_noise

    snr = signal_to_noise(noise_scheduler.alphas_cumprod.to(timesteps.device)[timesteps])
    return torch.clamp(snr, max=gamma) / snr


def train_unet(latent_mean: torch.Tensor, latent_std: torch.Tensor, pairs_image: np.ndarray,
               pairs_text: np.ndarray, text_states: torch.Tensor, empty_state: torch.Tensor,
               cfg: UNetTrainConfig, progress: bool = True, log=None, unet=None, checkpoint=None,
               pair_weights: np.ndarray | None = None):
    """ε-prediction training.

    ``latent_mean/std`` are the autoencoder's posterior per corpus image (scaled); each step samples
    a latent from it, as SD's training did. ``pairs_image[i]`` and ``pairs_text[i]`` index an image
    and a row of ``text_states`` (the text encoder's 77 x d states per unique caption). Pass ``unet``
    to continue training a model (a second phase with its own schedule) instead of starting afresh.
    ``checkpoint`` (an :class:`lds.training.recipe.StageCheckpoint`) saves the training state as it goes and, if it
    holds one, continues from it. ``pair_weights`` (one per pair, any positive scale) draws pairs in
    proportion to them instead of uniformly (:func:`family_balanced_weights`).
    """
    from diffusers import DDPMScheduler
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    from lds.models.training_loop import run_steps

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    noise_scheduler = DDPMScheduler(**SCHEDULE)
    if unet is None:
        unet = build_unet(cfg, latent_mean.shape[-1], text_states.shape[-1], latent_mean.shape[1])
    unet.train()
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps, min_lr_rate=cfg.lr_floor)
    n = len(pairs_image)
    p = None if pair_weights is None else np.asarray(pair_weights, np.float64) / np.sum(pair_weights)

    def step(i):
        idx = draw_pairs(rng, n, cfg.batch_size, p)
        img = torch.from_numpy(pairs_image[idx])
        latents = latent_mean[img] + latent_std[img] * torch.randn_like(latent_mean[img])
        encoder_hidden_states = text_states[torch.from_numpy(pairs_text[idx])].float()
        drop = torch.from_numpy(rng.random(cfg.batch_size) < cfg.cond_drop)
        encoder_hidden_states = torch.where(drop.view(-1, 1, 1), empty_state.float(), encoder_hidden_states)
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (cfg.batch_size,))
        noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)  # forward process q(x_t | x_0)
        noise_pred = unet(noisy_latents, timesteps, encoder_hidden_states).sample
        per_sample = F.mse_loss(noise_pred, noise, reduction="none").mean(dim=(1, 2, 3))  # the ε-prediction objective
        if cfg.snr_gamma is None:
            loss = per_sample.mean()
        else:
            loss = (min_snr_weights(noise_scheduler, timesteps, cfg.snr_gamma) * per_sample).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + i) / (10 + i))
            for k, v in unet.state_dict().items():
                if v.is_floating_point():
                    ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
        return {"loss": per_sample.mean().item()}  # the plain ε-MSE, comparable across weightings

    losses = run_steps(step, cfg.steps, ("loss",), desc="U-Net", progress=progress,
                       log=None if log is None else lambda i, means: log(i, {"unet_loss": means["loss"]}),
                       checkpoint=checkpoint, state={"model": unet, "ema": ema, "opt": opt, "sched": sched},
                       rng=rng)["loss"]
    unet.load_state_dict(ema)
    unet.eval()
    return unet, losses
