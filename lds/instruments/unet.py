"""The U-Net, inspected: its blocks drawn, and its skip connections scaled at sampling time.

Chapter 4 (The U-Net) explains it; the network and its training are :mod:`lds.models.unet`."""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch


@contextmanager
def skip_connections_scaled(unet, scale: float = 0.0):
    """Scale the U-Net's skip connections (the encoder features handed across to the decoder).

    Chapter 4 zeroes them at sampling time to measure what they carry. Implemented with forward
    pre-hooks on the up blocks, which receive the skips as ``res_hidden_states_tuple``.
    """
    handles = []

    def hook(module, args, kwargs):
        if "res_hidden_states_tuple" in kwargs:
            kwargs["res_hidden_states_tuple"] = tuple(h * scale for h in kwargs["res_hidden_states_tuple"])
        return args, kwargs

    for block in unet.up_blocks:
        handles.append(block.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield unet
    finally:
        for h in handles:
            h.remove()



@contextmanager
def skip_connections_scaled_at(unet, scales: dict):
    """Like :func:`skip_connections_scaled`, per up block: ``{up_block_index: scale}``.

    Chapter 4 zeroes only the finest (last up block, full latent resolution) or only the coarsest
    skips to see which carry detail. Blocks not named keep their skips.
    """
    handles = []

    def make(scale):
        def hook(module, args, kwargs):
            if "res_hidden_states_tuple" in kwargs:
                kwargs["res_hidden_states_tuple"] = tuple(h * scale for h in kwargs["res_hidden_states_tuple"])
            return args, kwargs
        return hook

    for i, block in enumerate(unet.up_blocks):
        if i in scales:
            handles.append(block.register_forward_pre_hook(make(scales[i]), with_kwargs=True))
    try:
        yield unet
    finally:
        for h in handles:
            h.remove()



@torch.no_grad()
def describe_blocks(unet) -> list[dict]:
    """The U-Net's blocks in order (down, mid, up): channels, resolution, cross-attention, skips.

    Shapes are measured by running one forward pass on zeros with hooks, so this works for any
    ``UNet2DConditionModel`` (lds-mini's or SD 1.5's). Chapter 4 prints and draws it.
    """
    size = unet.config.sample_size
    size = size if isinstance(size, int) else size[0]
    rows, handles = [], []

    def attn_count(block):
        return sum(1 for name, _ in block.named_modules() if name.endswith("attn2"))

    blocks = [("down", i, b) for i, b in enumerate(unet.down_blocks)] + [("mid", 0, unet.mid_block)] + \
             [("up", i, b) for i, b in enumerate(unet.up_blocks)]
    for stage, i, block in blocks:
        row = {"stage": stage, "index": i, "class": type(block).__name__, "resnets": len(block.resnets),
               "cross_attention": attn_count(block),
               "parameters": int(sum(p.numel() for p in block.parameters()))}
        rows.append(row)

        def hook(module, args, kwargs, output, row=row, stage=stage):
            x = kwargs.get("hidden_states", args[0] if args else None)
            out = output[0] if isinstance(output, tuple) else output
            row["in_channels"], row["in_resolution"] = int(x.shape[1]), int(x.shape[-1])
            row["out_channels"], row["out_resolution"] = int(out.shape[1]), int(out.shape[-1])
            if stage == "down":
                row["skips_out"] = len(output[1]) if isinstance(output, tuple) else 0
            if stage == "up":
                row["skips_in"] = len(kwargs.get("res_hidden_states_tuple", ()))
        handles.append(block.register_forward_hook(hook, with_kwargs=True))
    try:
        p = next(unet.parameters())
        x = torch.zeros(1, unet.config.in_channels, size, size, device=p.device, dtype=p.dtype)
        c = torch.zeros(1, 77, unet.config.cross_attention_dim, device=p.device, dtype=p.dtype)
        unet(x, torch.tensor([500], device=p.device), c)
    finally:
        for h in handles:
            h.remove()
    return rows



def draw_blocks(rows: list[dict], ax=None):
    """Draw :func:`describe_blocks` as a U: resolution falls on the way down, rises on the way up;
    dashed arcs are the skip connections, orange boxes hold cross-attention (the prompt's way in)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * len(rows) + 1, 4.2))
    top = max(r["in_resolution"] for r in rows)
    level = {id(r): math.log2(top / r["in_resolution"]) for r in rows}  # where each block works
    pos = {}
    for x, r in enumerate(rows):
        y = -level[id(r)]
        pos[(r["stage"], r["index"])] = (x, y)
        colour = "#f4a259" if r["cross_attention"] else "#9cc5e8"
        ax.add_patch(FancyBboxPatch((x - 0.42, y - 0.3), 0.84, 0.6, boxstyle="round,pad=0.02", fc=colour, ec="k"))
        label = (f"{r['stage']} {r['index']}\n{r['out_channels']} ch\n{r['in_resolution']}x{r['in_resolution']}"
                 + (f"\n{r['cross_attention']} x-attn" if r["cross_attention"] else ""))
        ax.text(x, y, label, ha="center", va="center", fontsize=7)
    downs = [r for r in rows if r["stage"] == "down"]
    ups = [r for r in rows if r["stage"] == "up"]
    for d, u in zip(downs, reversed(ups)):
        (x0, y0), (x1, y1) = pos[("down", d["index"])], pos[("up", u["index"])]
        ax.annotate("", xy=(x1, y1 + 0.3), xytext=(x0, y0 + 0.3),
                    arrowprops=dict(arrowstyle="->", ls="--", color="grey", connectionstyle="arc3,rad=-0.25"))
    ax.set_xlim(-0.7, len(rows) - 0.3)
    ax.set_ylim(-max(level.values()) - 0.8, 1.2)
    ax.axis("off")
    return ax


@torch.no_grad()
def skip_band_errors(unet, latents: torch.Tensor, prompt_embeds: torch.Tensor, alphas_cumprod: torch.Tensor,
                     strengths=(1.0, 0.75, 0.5, 0.0), timesteps=(100, 300, 500, 700), draws: int = 3,
                     seed: int = 0) -> list[dict]:
    """Chapter 4's test of claim 14: the clean latents a U-Net's noise prediction implies, with every skip scaled
    by each of ``strengths``, scored against the true latents in the coarse band (outline) and the fine band
    (detail) of :func:`lds.measures.band_split`.

    For every timestep and noise draw (the same noise for every strength), one row per strength: the noise loss,
    the error of the implied clean latents in each band absolutely (``coarse``, ``fine``: mean squared) and over
    that band's own size in the true latents (``coarse_rel``, ``fine_rel``), and ``agnostic``: the loss of the best
    predictor that knows nothing of any image but each channel's mean and variance over ``latents`` (the linear
    least-squares guess of the noise from the noisy input; the bar a working network must clear, not "predicting no
    noise", which any input-scaled guess beats)."""
    from lds.measures import band_split

    device, dtype = latents.device, latents.dtype
    mu = latents.mean(dim=(0, 2, 3), keepdim=True)
    var = latents.var(dim=(0, 2, 3), keepdim=True)
    sizes = [b.pow(2).mean() for b in band_split(latents)]
    rows = []
    for t in timesteps:
        tt = torch.full((len(latents),), int(t), device=device)
        a = alphas_cumprod[int(t)].to(device, dtype)
        for d in range(draws):
            eps_true = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed + 1000 * d + int(t)))
            eps_true = eps_true.to(device, dtype)
            x_t = a.sqrt() * latents + (1 - a).sqrt() * eps_true
            guess = (1 - a).sqrt() * (x_t - a.sqrt() * mu) / (a * var + (1 - a))  # E[eps | x_t] for Gaussian latents
            agnostic = float((guess - eps_true).pow(2).mean())
            for s in strengths:
                with skip_connections_scaled(unet, s):
                    eps = unet(x_t, tt, prompt_embeds).sample
                x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
                low, high = (e.pow(2).mean() for e in band_split(x0 - latents))
                rows.append({"timestep": int(t), "draw": d, "strength": float(s),
                             "loss": float((eps - eps_true).pow(2).mean()), "agnostic": agnostic,
                             "coarse": float(low), "fine": float(high),
                             "coarse_rel": float(low / sizes[0]), "fine_rel": float(high / sizes[1])})
    return rows
