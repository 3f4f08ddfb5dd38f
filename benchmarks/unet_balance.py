"""The balanced last U-Net stage, measured on the prompts a reader tries first.

The full recipe's U-Net drew its training pairs uniformly from the filtered web, so each emoji reached it as often
as the web's popularity skew showed it. Most emoji did fine; a few of the model card's grid prompts never came out
right for any seed ("red apple" drawn as the red envelope, "banana" and "lemon" as other yellow shapes, "dog face"
as a blur). Their English names were among the rarest kept captions: "red apple" had two of 56,000 kept pairs.
``lds train``'s ``unet_balance`` stage continues the trained U-Net with every shape family drawn equally often
(:func:`lds.models.unet.family_balanced_weights`). This script measures that stage on a trained model folder:

1. rebuilds the model's filtered training web (its CLIP, its web configuration, its recorded threshold) and counts,
   per grid prompt, the kept pairs with its own English caption (:func:`lds.instruments.ranking.caption_exposure`);
2. draws every grid prompt with 8 seeds and ranks the named emoji (:func:`lds.training.evaluate.prompt_ranks`);
3. runs the stage from the model's U-Net (the recipe's ``unet_balance`` settings, ``--set`` to change them;
   checkpointed in ``--workdir``, so an interrupted run continues);
4. measures step 2 again and the model card's evaluation, and appends a row to ``benchmarks/unet_balance.jsonl``.

``--ship OUT`` also writes the model folder with the new U-Net (half precision, as ``lds train`` saves it) and its
records (metrics, configuration, curves, evaluation, and ``unet_balance.json``: the grid before and after) to OUT.

    git worktree add /tmp/main-stage 9d91961   # the weights before this stage: the main stage's U-Net
    LDS_THREADS=1 python benchmarks/unet_balance.py --name full-balance --model /tmp/main-stage/lds/weights/lds-mini

MODEL's U-Net should be a main stage's: the shipped weights already went through this stage (``metrics.json`` says
so under ``unet_balance``), and the script refuses them.

About 70 minutes on one core for the recipe's 4,000 steps (1 s a step), plus about 10 minutes of evaluation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unet_trials import append_row, config_with  # noqa: E402  (this folder is on sys.path when the script runs)

OUT = Path(__file__).resolve().parent / "unet_balance.jsonl"


def training_web(folder: Path, pipe, corpus, workdir: Path):
    """The model's filtered web, rebuilt from its records (:func:`lds.instruments.ranking.recorded_training_web`; cached in
    ``workdir/web.npz``)."""
    import numpy as np

    from lds.instruments.ranking import recorded_training_web

    path = workdir / "web.npz"
    if not path.exists():
        web, scores, keep = recorded_training_web(pipe, corpus)
        np.savez(path, image=web["image"], lang=web["lang"], caption=web["caption"].astype(str),
                 matched=web["matched"], score=scores, keep=keep)
    return dict(np.load(path))


def latents_file(pipe, corpus, web: dict, workdir: Path) -> Path:
    """What ``lds train``'s latents stage saves (:func:`lds.training.recipe.save_latents`), from the model's own autoencoder and
    text encoder (cached in ``workdir/latents.pt``)."""
    from lds.training.recipe import save_latents

    path = workdir / "latents.pt"
    if not path.exists():
        save_latents(pipe.vae, pipe.text_encoder, pipe.tokenizer, corpus.rgb(), web, path)
    return path


def grid_ranks(pipe, prompts, seeds: int) -> dict:
    from lds.training.evaluate import prompt_ranks

    return {p: r.tolist() for p, r in prompt_ranks(pipe, prompts, n_seeds=seeds).items()}


def main(argv=None) -> dict:
    import numpy as np

    from lds.data.corpus import load_corpus
    from lds.training.evaluate import KIND_GRID, EvalConfig, evaluate_model
    from lds.pipeline.loading import load_pipeline
    from lds.instruments.ranking import caption_exposure
    from lds.training.recipe import StageCheckpoint, TrainConfig, set_threads, train_unet_on_latents

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="the row's name in unet_balance.jsonl")
    p.add_argument("--model", required=True, help="a model folder written by lds train, its U-Net a main stage's")
    p.add_argument("--workdir", default=".lds-cache/unet-balance", help="web, latents and checkpoints go here")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a UNetTrainConfig field of the balanced stage (default: the full recipe's unet_balance)")
    p.add_argument("--seeds", type=int, default=8, help="seeds per grid prompt")
    p.add_argument("--ship", type=Path, help="write the model folder with the balanced U-Net here")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    cfg = config_with(p, TrainConfig.full().unet_balance, args.set)
    if not cfg.steps:
        p.error("the balanced stage needs steps > 0 (--set steps=2000)")
    folder, workdir = Path(args.model), Path(args.workdir)
    if "unet_balance" in json.loads((folder / "metrics.json").read_text()):
        p.error(f"{folder}'s U-Net already went through the balanced stage; pass a folder whose U-Net is a main "
                "stage's (see the docstring)")
    workdir.mkdir(parents=True, exist_ok=True)
    set_threads()
    pipe = load_pipeline(str(folder))
    corpus = load_corpus()
    prompts = [q for qs in KIND_GRID.values() for q in qs]
    web = training_web(folder, pipe, corpus, workdir)
    exposure = caption_exposure(web, web["keep"], corpus, prompts)
    before = grid_ranks(pipe, prompts, args.seeds)

    t0 = time.time()
    ck = StageCheckpoint(workdir / "checkpoints" / "unet_balance.pt")
    unet, losses = train_unet_on_latents(latents_file(pipe, corpus, web, workdir), cfg, True, checkpoint=ck,
                                         unet=pipe.unet.float(), families=corpus.families)
    seconds = time.time() - t0 + ck.prior_seconds
    pipe.unet = unet
    after = grid_ranks(pipe, prompts, args.seeds)
    t1 = time.time()
    evaluation = evaluate_model(pipe, EvalConfig(grid_seeds=args.seeds), progress=True)
    eval_seconds = time.time() - t1

    share = lambda ranks: float(np.mean(np.array(ranks) < 5))  # noqa: E731
    row = {"date": time.strftime("%Y-%m-%d %H:%M"), "name": args.name, "model": str(folder), "note": args.note,
           "config": dataclasses.asdict(cfg), "train_seconds": round(seconds, 1),
           "kept_pairs": int(web["keep"].sum()), "final_loss": float(np.mean(losses[-100:])),
           "grid": {q: {"own_caption_pairs": exposure[q]["own_caption"], "top5_before": share(before[q]),
                        "top5_after": share(after[q])} for q in prompts},
           "grid_top5_before": float(np.mean([share(r) for r in before.values()])),
           "grid_top5_after": float(np.mean([share(r) for r in after.values()])),
           "after": {k: evaluation[k] for k in ("en_pixel_top1", "en_pixel_top5", "en_ssim", "uncond_pixel_top5")},
           "after_by_kind_top5": {k: v["pixel_top5"] for k, v in evaluation["en_by_kind"].items()}}
    append_row(OUT, row)
    if args.ship:
        ship(folder, args.ship, unet, cfg, losses, seconds, evaluation, eval_seconds, row, ck)
    return row


def ship(folder: Path, out: Path, unet, cfg, losses, seconds: float, evaluation: dict, eval_seconds: float,
         row: dict, ck) -> None:
    """The model folder again with the balanced U-Net and records that say how it was made."""
    import torch

    from lds.training.recipe import curve_points

    if out.resolve() != folder.resolve():
        shutil.copytree(folder, out, dirs_exist_ok=True)
    shutil.rmtree(out / "unet")
    unet.to(torch.float16).save_pretrained(str(out / "unet"))  # half precision on disk, as lds train saves it
    unet.float()
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["unet_balance"] = {
        "seconds": round(seconds, 1), "final_loss": row["final_loss"], "steps": cfg.steps,
        "family_balance": cfg.family_balance,
        "how": ("run by benchmarks/unet_balance.py after the other stages, from the shipped U-Net (half precision) "
                f"on the training web rebuilt from the shipped CLIP ({row['kept_pairs']:,} kept pairs against the "
                f"{metrics['filter']['kept']:,} the filter stage recorded)")}
    if ck.timed_from_step:
        metrics["unet_balance"]["timed_from_step"] = ck.timed_from_step
    metrics["evaluate"] = {"seconds": round(eval_seconds, 1),
                           **{k: v for k, v in evaluation.items() if not isinstance(v, (list, dict))}}
    metrics["total_seconds"] = round(sum(v["seconds"] for v in metrics.values() if isinstance(v, dict)), 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    config = json.loads((out / "training_config.json").read_text())
    config["unet_balance"] = dataclasses.asdict(cfg)
    config["evaluation"] = evaluation["config"]
    (out / "training_config.json").write_text(json.dumps(config, indent=2))
    curves = json.loads((out / "training_curves.json").read_text())
    curves["unet_balance_loss"] = curve_points(losses)
    curves["unet_balance_steps"] = cfg.steps
    (out / "training_curves.json").write_text(json.dumps(curves))
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2, ensure_ascii=False))
    write_record(row, out)
    print(f"wrote {out}")


def write_record(row: dict, out: Path) -> Path:
    """``unet_balance.json`` beside the weights: per grid prompt, its own-caption pairs in the filtered web and the
    share of seeds drawn as the named emoji before the stage (the main U-Net) and after (chapter 2 and the model
    card read it; the main stage's U-Net itself is not shipped)."""
    record = {"about": ("the model card's grid prompts drawn with 8 seeds each (0-7, guidance 5, 25 steps) by the "
                        "U-Net before and after the unet_balance stage (benchmarks/unet_balance.py, row "
                        f"{row['name']!r} of {row['date']})"),
              "config": row["config"], "grid": row["grid"],
              "grid_top5_before": row["grid_top5_before"], "grid_top5_after": row["grid_top5_after"]}
    path = out / "unet_balance.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return path


if __name__ == "__main__":
    main()
