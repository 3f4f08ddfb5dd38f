"""How a U-Net in training draws so far: the evaluation run on a training stage's checkpoint, mid-run.

A full-recipe run spans working sessions, and its U-Net stage is the longest. This assembles a pipeline from the
U-Net checkpoint's EMA weights (the weights the stage would hand on if it stopped now) and the run's finished
autoencoder, CLIP and tokenizer (``Trainer.stage_pipeline`` with another U-Net folder), and scores it with
:func:`lds.training.evaluate.evaluate_model`, the function the ``evaluate`` stage calls, with fewer prompts in the other
languages (``--per-language``, default 2) to keep it short. One JSON object per run is appended to
``benchmarks/checkpoint_evals.jsonl``: the step reached, the headline numbers and top-5 for each kind. Rows from
different steps of one run show whether the remaining steps are still buying anything, and which kinds lag.

    LDS_THREADS=1 python benchmarks/checkpoint_eval.py .lds-cache/train-full --recipe full --name full-recipe

The training run may go on meanwhile (the checkpoint is read once; it is replaced atomically when saved).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "checkpoint_evals.jsonl"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path, help="the run's --workdir (its U-Net stage has a checkpoint)")
    ap.add_argument("--recipe", default="full", help="the run's recipe (its configuration must match the workdir's)")
    ap.add_argument("--name", default="run", help="a label for the row")
    ap.add_argument("--per-language", type=int, default=2, help="prompts in each language other than English")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    import torch

    from lds.training.evaluate import evaluate_model, recipe_summary
    from lds.pipeline.loading import load_pipeline
    from lds.training.recipe import TrainConfig, Trainer, set_threads
    from lds.models.unet import build_unet

    set_threads()
    ckpt = args.workdir / "checkpoints" / "unet.pt"
    if not ckpt.exists():
        raise SystemExit(f"no U-Net checkpoint in {ckpt.parent}: is the run's U-Net stage under way?")
    cfg = TrainConfig.recipe_named(args.recipe)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trainer = Trainer(cfg, args.workdir, tmp / "pipeline", progress=False)
        state = torch.load(ckpt, weights_only=True)
        text_width = trainer.clip_model().config.text_config.hidden_size
        latent_size = cfg.image_size // 2 ** (len(cfg.autoencoder.block_out_channels) - 1)
        unet = build_unet(cfg.unet, latent_size, text_width, cfg.autoencoder.latent_channels)
        unet.load_state_dict(state["objects"]["ema"])
        unet.save_pretrained(str(tmp / "unet"))
        trainer.stage_pipeline(unet_folder=tmp / "unet")
        with torch.no_grad():
            pipe = load_pipeline(str(tmp / "pipeline"))
            ev = evaluate_model(pipe, dataclasses.replace(cfg.evaluation, n_per_language=args.per_language),
                                progress=True)
    metrics = json.loads((args.workdir / "metrics.json").read_text())
    summary = recipe_summary(metrics, ev, cfg.to_dict())
    row = {"name": args.name, "recipe": args.recipe, "step": int(state["step"]), "of_steps": cfg.unet.steps,
           "unet_loss_last_500": float(sum(state["extra"]["losses"][-500:]) / 500),
           **{k: summary[k] for k in ("en_pixel_top1", "en_pixel_top5", "uncond_pixel_top5", "en_ssim",
                                       "clip_en_top1", "worst_kind_pixel_top5")},
           "en_clip_top1": ev["en_clip_top1"], "by_kind_pixel_top5": summary["by_kind_pixel_top5"],
           "by_kind_ssim": {k: v["ssim"] for k, v in ev["en_by_kind"].items()},
           "seconds": round(time.time() - t0, 1), "date": time.strftime("%Y-%m-%d %H:%M")}
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=2))
    return row


if __name__ == "__main__":
    main()
