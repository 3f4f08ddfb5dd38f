"""The forward (noising) process and the ε-prediction objective, written out; a frequency measure.

Chapter 4 (The U-Net in training) explains them. The formulas are those of DDPM (Ho et al. 2020,
eq. 4 and the simplified loss of eq. 14) with SD 1.x's schedule (``lds.models.unet.SCHEDULE``):

    x_t = sqrt(alpha_bar_t) * x_0 + sqrt(1 - alpha_bar_t) * ε,        ε ~ N(0, I)
    loss = || ε - unet(x_t, t, prompt_embeds) ||^2

``add_noise`` gives the same numbers as diffusers' ``DDPMScheduler.add_noise`` (tests/test_ch04_unet.py).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F


def alphas_cumprod(scheduler) -> torch.Tensor:
    """alpha_bar_t for t = 0 .. T-1: how much of the clean latents survives at each timestep."""
    return scheduler.alphas_cumprod.detach().float().cpu()


def signal_to_noise(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """SNR(t) = alpha_bar_t / (1 - alpha_bar_t): signal variance over noise variance."""
    return alphas_cumprod / (1 - alphas_cumprod)


def add_noise(latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
              alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """q(x_t | x_0): the clean latents shrunk and mixed with noise, in one step for any t."""
    a = alphas_cumprod.to(latents.device)[timesteps].view(-1, 1, 1, 1).to(latents.dtype)
    return a.sqrt() * latents + (1 - a).sqrt() * noise


def epsilon_loss(unet, latents, noise, timesteps, prompt_embeds, alphas_cumprod) -> torch.Tensor:
    """The training objective: how far the U-Net's noise prediction is from the noise actually added."""
    return F.mse_loss(unet(add_noise(latents, noise, timesteps, alphas_cumprod), timesteps, prompt_embeds).sample, noise)


@dataclasses.dataclass
class Batch:
    """One training step's draw: which images, which timesteps, which noise."""

    index: torch.Tensor  # (B,) rows of the latents / captions
    timesteps: torch.Tensor  # (B,)
    noise: torch.Tensor  # (B, C, h, w)


def make_batches(n_items: int, steps: int, batch_size: int, latent_shape: tuple, num_train_timesteps: int,
                 seed: int = 0) -> list[Batch]:
    """Draw every step's batch up front, so two U-Nets can be scored on exactly the same batches."""
    g = torch.Generator().manual_seed(int(seed))
    return [Batch(torch.randint(0, n_items, (batch_size,), generator=g),
                  torch.randint(0, num_train_timesteps, (batch_size,), generator=g),
                  torch.randn((batch_size, *latent_shape), generator=g)) for _ in range(steps)]


def train_on_batches(unet, latents: torch.Tensor, prompt_embeds: torch.Tensor, batches: list[Batch],
                     alphas_cumprod: torch.Tensor, lr: float = 1e-3, progress: bool = False) -> list[float]:
    """Plain ε-prediction training (AdamW, no schedule, no EMA): one step per batch; the losses."""
    from lds.models.training_loop import run_steps

    unet.train()
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.01)
    device = next(unet.parameters()).device

    def step(i):
        b = batches[i]
        loss = epsilon_loss(unet, latents[b.index].to(device), b.noise.to(device), b.timesteps.to(device),
                            prompt_embeds[b.index].to(device), alphas_cumprod)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        return {"loss": loss.item()}

    losses = run_steps(step, len(batches), ("loss",), desc="U-Net", progress=progress)["loss"]
    unet.eval()
    return losses


@torch.no_grad()
def losses_on_batches(unet, latents: torch.Tensor, prompt_embeds: torch.Tensor, batches: list[Batch],
                      alphas_cumprod: torch.Tensor) -> list[float]:
    """The objective of a (trained) U-Net on the given batches, without training it."""
    device, dtype = unet.device, unet.dtype
    return [epsilon_loss(unet, latents[b.index].to(device, dtype), b.noise.to(device, dtype), b.timesteps.to(device),
                         prompt_embeds[b.index].to(device, dtype), alphas_cumprod).item() for b in batches]
