"""Autoencoder trials: what size and schedule reach the lds-mini issue's 28 dB held-out PSNR?

The full recipe's autoencoder (block_out_channels 32-64-128, one layer per block, 6,000 steps, then a 1,500-step
decoder fine-tune) reached 25.3 dB, 25.9 after the fine-tune: short of the issue's 28. Each trial trains a fresh
autoencoder exactly as ``lds train``'s ``autoencoder`` stage does (:func:`lds.models.autoencoder.train_autoencoder`, the
shipped CLIP as the perceptual judge, the same kept images and the same held-out 256), with some
``AutoencoderTrainConfig`` fields changed, and scores the held-out images' round trip with
:func:`lds.models.autoencoder.psnr`, the stage's own measure. One JSON object per trial is appended to
``benchmarks/ae_trials.jsonl``.

    python benchmarks/ae_trials.py --name base-800 --steps 800 --set disc_start=100000
    python benchmarks/ae_trials.py --name wide-800 --steps 800 --set disc_start=100000 --set block_out_channels=64,128,256
    python benchmarks/ae_trials.py --name deep-800 --steps 800 --set disc_start=100000 --set layers_per_block=2

``--decoder MODEL`` instead continues MODEL's decoder with the encoder frozen (the latents, and so the U-Net, stay
valid), as the ``decoder`` and ``decoder_recon`` stages do, with ``--set`` naming ``DecoderFinetuneConfig`` fields:

    python benchmarks/ae_trials.py --name recon-1500 --decoder lds/weights/lds-mini --steps 1500 \
        --set lr=2e-4 --set perceptual_weight=0.1 --set disc_weight=0

``--workdir`` names an ``lds train`` work folder whose ``web.npz`` (the filter's kept pairs) and ``holdout.npy`` fix the
images; without one, every corpus image is used and the holdout is drawn as the stage draws it (seed 0, 256 images).
A wider or deeper autoencoder costs checkpoint size: each row says what the shipped folder would weigh with it
(``checkpoint_mb_if_shipped``; 40 MB is the issue's limit, and 32-64-128 with two layers per block already passes
it). Short trials compare sizes at equal steps (``disc_start`` past the end keeps the discriminator out, as the stage's
first 1,400-3,800 steps do); they rank candidates, they do not predict a full run's PSNR. One trial at
``LDS_THREADS=1`` leaves the other core free.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "ae_trials.jsonl"

from unet_trials import append_row, config_with  # noqa: E402  (this folder is on sys.path when the script runs)


def images_and_holdout(workdir: Path | None, corpus, seed: int = 0):
    """(train ids, held-out ids) as the autoencoder stage chooses them (lds.training.recipe.Trainer.stage_autoencoder)."""
    import numpy as np

    if workdir is not None and (workdir / "web.npz").exists():
        web = np.load(workdir / "web.npz")
        kept = np.unique(web["image"][web["keep"]])
    else:
        kept = np.arange(len(corpus))
    if workdir is not None and (workdir / "holdout.npy").exists():
        holdout = np.load(workdir / "holdout.npy")
    else:
        holdout = np.random.default_rng(seed).choice(kept, size=min(256, len(kept) // 10), replace=False)
    return np.setdiff1d(kept, holdout), holdout


def shipped_mb(vae) -> float:
    """Megabytes of the shipped lds-mini folder if ``vae`` (saved in half precision) replaced its autoencoder."""
    from lds.pipeline.loading import lds_mini_path

    folder = lds_mini_path()
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    own = sum(f.stat().st_size for f in (folder / "vae").glob("*.safetensors"))
    return (total - own + 2 * sum(q.numel() for q in vae.parameters())) / 1e6


def decoder_trial(p, args) -> int:
    """Continue a model's decoder as the decoder stages do; score held-out PSNR and the round trip's SSIM."""
    import torch
    from diffusers import AutoencoderKL

    from lds.models.autoencoder import DecoderFinetuneConfig, NLayerDiscriminator, decode, encode, finetune_decoder, psnr
    from lds.models.clip import load_clip
    from lds.data.corpus import load_corpus
    from lds.measures import ssim
    from lds.pipeline.loading import load_pipeline
    from lds.training.recipe import set_threads

    set_threads()
    cfg = config_with(p, DecoderFinetuneConfig(), args.set, steps=args.steps)
    corpus = load_corpus()
    train_ids, holdout = images_and_holdout(Path(args.workdir) if args.workdir else None, corpus)
    pipe = load_pipeline(str(args.decoder))
    vae = AutoencoderKL.from_pretrained(str(args.decoder / "vae")).float()
    clip = load_clip(args.decoder / "clip", pipe.text_encoder)
    rgb = corpus.rgb()
    x = torch.from_numpy(rgb[holdout]).permute(0, 3, 1, 2)

    def scores():
        with torch.no_grad():
            r = decode(vae, encode(vae, x))
        return float(psnr(r, x).mean()), float(ssim(r, x).mean())

    before = scores()
    t0 = time.time()
    history = finetune_decoder(vae, NLayerDiscriminator(n_layers=3), rgb[train_ids], clip, cfg, progress=True)
    seconds = time.time() - t0
    after = scores()
    if args.save:  # the autoencoder and its loss curves (what lds train keeps in training_curves.json)
        vae.save_pretrained(str(args.save))
        (args.save / "history.json").write_text(json.dumps(history))
    row = {"name": args.name, "decoder_of": str(args.decoder), "config": dataclasses.asdict(cfg),
           "train_seconds": round(seconds), "seconds_per_step": round(seconds / max(1, cfg.steps), 3),
           "holdout_psnr_db_before": round(before[0], 3), "holdout_psnr_db": round(after[0], 3),
           "roundtrip_ssim_before": round(before[1], 4), "roundtrip_ssim": round(after[1], 4),
           "holdout_images": int(len(holdout)),
           "l1_last100": round(sum(history["l1"][-100:]) / max(1, len(history["l1"][-100:])), 5),
           "workdir": args.workdir, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M")}
    append_row(OUT, row)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--workdir", default=None, help="an lds train work folder (web.npz, holdout.npy)")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="an AutoencoderTrainConfig field; tuples as comma-separated values (block_out_channels=64,128,256)")
    p.add_argument("--decoder", type=Path, metavar="MODEL",
                   help="continue this model folder's decoder (encoder frozen); --set names DecoderFinetuneConfig fields")
    p.add_argument("--save", type=Path, help="save the trained autoencoder here (diffusers folder)")
    args = p.parse_args(argv)
    if args.decoder:
        return decoder_trial(p, args)

    import torch

    from lds.models.autoencoder import AutoencoderTrainConfig, decode, encode, psnr, train_autoencoder
    from lds.models.clip import load_clip
    from lds.data.corpus import load_corpus
    from lds.pipeline.loading import load_pipeline, lds_mini_path
    from lds.training.recipe import set_threads

    set_threads()
    cfg = config_with(p, AutoencoderTrainConfig(), args.set, steps=args.steps)
    corpus = load_corpus()
    train_ids, holdout = images_and_holdout(Path(args.workdir) if args.workdir else None, corpus)
    pipe = load_pipeline("lds-mini")
    clip = load_clip(lds_mini_path() / "clip", pipe.text_encoder)  # the perceptual judge, as in the stage
    rgb = corpus.rgb()
    t0 = time.time()
    vae, _, history = train_autoencoder(rgb[train_ids], clip, cfg, progress=True)
    seconds = time.time() - t0
    x = torch.from_numpy(rgb[holdout]).permute(0, 3, 1, 2)
    held = float(psnr(decode(vae, encode(vae, x)), x).mean())
    row = {"name": args.name, "config": dataclasses.asdict(cfg), "train_seconds": round(seconds),
           "seconds_per_step": round(seconds / max(1, cfg.steps), 3),
           "parameters": int(sum(q.numel() for q in vae.parameters())),
           # the shipped folder's size with this autoencoder in place of its own (half precision): the limit
           # for the checkpoint in git is 40 MB, and the full recipe's folder is already 39.5 MB
           "checkpoint_mb_if_shipped": round(shipped_mb(vae), 1),
           "holdout_psnr_db": round(held, 3), "holdout_images": int(len(holdout)),
           "l1_last100": round(sum(history["l1"][-100:]) / max(1, len(history["l1"][-100:])), 5),
           "workdir": args.workdir, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M")}
    append_row(OUT, row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
