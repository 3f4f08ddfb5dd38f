"""Short U-Net trials on the latents of the training run that produced the shipped lds-mini, scored like ``lds train --stage evaluate``.

This is how lds-mini's U-Net recipe (min-SNR weighting, learning rate 2e-3) was chosen: each trial trains a fresh
U-Net for a few hundred to a few thousand steps on the latents and text states of an existing ``lds train`` work
folder, puts it into the shipped pipeline in place of lds-mini's U-Net, and runs the retrieval evaluation.
Results are appended, one JSON object per line, to ``benchmarks/unet_trials.jsonl``.

    python benchmarks/unet_trials.py --name lr2e-3 --set lr=2e-3 --set snr_gamma=5 --steps 1500
    python benchmarks/unet_trials.py --name plain --set snr_gamma=none --set lr=5e-4 --steps 1500

Two trials at ``LDS_THREADS=1`` side by side use two cores better than one at 2 threads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from lds.settings import parse_value

OUT = Path(__file__).resolve().parent / "unet_trials.jsonl"


def config_with(parser, default, items, **changes):
    """``default`` (a config dataclass) with the ``--set FIELD=VALUE`` items applied (comma-separated values make a
    tuple: ``block_out_channels=64,128,256``); an unknown field is a parser error naming the valid ones."""
    fields = {f.name for f in dataclasses.fields(default)}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields:
            parser.error(f"--set {key}: {type(default).__name__} has no such field (its fields: {', '.join(sorted(fields))})")
        changes[key] = tuple(parse_value(v) for v in value.split(",")) if "," in value else parse_value(value)
    return dataclasses.replace(default, **changes)


def append_row(path: Path, row: dict) -> None:
    """Append one trial's JSON object to its results file and print it."""
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--workdir", default=".lds-cache/train", help="an lds train work folder with latents.pt")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a UNetTrainConfig field")
    p.add_argument("--prompts", type=int, default=96, help="English prompts to evaluate")
    args = p.parse_args(argv)

    import numpy as np

    from lds.training.evaluate import EvalConfig, evaluate_model
    from lds.pipeline.loading import load_pipeline
    from lds.training.recipe import set_threads, train_unet_on_latents
    from lds.models.unet import UNetTrainConfig

    set_threads()
    cfg = config_with(p, UNetTrainConfig(), args.set, steps=args.steps)
    latents = Path(args.workdir) / "latents.pt"
    if not latents.exists():
        p.error(f"{latents} not found: run `lds train --stage latents --workdir {args.workdir}` first")
    pipe = load_pipeline("lds-mini")
    metrics = Path(args.workdir) / "metrics.json"
    made_by = json.loads(metrics.read_text()).get("autoencoder", {}).get("scaling_factor") if metrics.exists() else None
    if made_by is None or abs(made_by - pipe.vae.config.scaling_factor) > 1e-6:
        p.error(f"{args.workdir} is not the run that produced the shipped lds-mini (its autoencoder differs), so its "
                "latents would be decoded by the wrong decoder; retrain with `lds train --workdir` or pass that folder")
    t0 = time.time()
    unet, losses = train_unet_on_latents(latents, cfg)
    seconds = time.time() - t0
    pipe.unet = unet.float().eval()
    result = evaluate_model(pipe, EvalConfig(n_prompts=args.prompts, n_per_language=4), progress=True)
    row = {"name": args.name, "config": dataclasses.asdict(cfg), "train_seconds": round(seconds),
           "plain_loss_last100": float(np.mean(losses[-100:])), "date": time.strftime("%Y-%m-%d %H:%M")}
    row.update({k: v for k, v in result.items()
                if k.startswith(("en_pixel", "en_clip", "uncond_pixel_top5", "en_ssim", "uncond_ssim"))})
    row["en_by_kind"] = result["en_by_kind"]
    append_row(OUT, row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
