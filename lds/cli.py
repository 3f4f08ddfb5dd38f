"""The ``lds`` command line (also ``python -m lds``).

    lds info                                   versions, device, models available offline
    lds generate PROMPT [--model M] [--seed N] [--steps N] [--guidance S] [--out FILE.png]
    lds train [--stage NAME] [--workdir DIR] [--out DIR]
    lds chapters                               the chapters and their parameters
    lds rerun CHAPTER [-p NAME VALUE]... [--model M] [--out DIR] [--batch prompts.csv]
    lds audit SPEC|NAME [--out DIR] [--set KEY=VALUE]... [--part I/N]   (also: accelerate launch -m lds audit ...)
    lds audit merge DIR... --out DIR
    lds export-web FOLDER [--model M]          the model's graphs for the live pages (ONNX, tokenizer.json, live.json)

Imports stay inside the commands: ``lds --help`` does not load torch, and ``lds generate`` loads
no more than a plain diffusers script would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="lds-mini",
                   help="'lds-mini' (shipped), a local diffusers folder, or a hub id such as "
                        "stable-diffusion-v1-5/stable-diffusion-v1-5 (default: lds-mini)")
    p.add_argument("--allow-download", action="store_true",
                   help="allow downloading a hub model (otherwise only the local cache is used)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps ...")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])


def cmd_info(args) -> int:
    from lds.pipeline.loading import available_models, downloads_allowed
    from lds.pipeline.receipt import versions

    print("lds: latent diffusion, taken apart")
    for k, v in versions().items():
        print(f"  {k:<16} {v or 'not installed'}")
    import torch

    devices = ["cpu"] + (["cuda (" + torch.cuda.get_device_name(0) + ")"] if torch.cuda.is_available() else [])
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append("mps")
    print(f"  {'devices':<16} {', '.join(devices)}")
    print(f"  {'downloads':<16} {'allowed (LDS_ALLOW_DOWNLOAD)' if downloads_allowed() else 'off (offline by default)'}")
    print("Models available offline:")
    for m in available_models():
        state = "ok" if m["available"] else "MISSING"
        print(f"  {m['name']:<44} {m['kind']:<10} {state:<8} {m['location']}")
    return 0


def _slug(text: str) -> str:
    import re

    s = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-")
    return (s or "empty")[:40]


def cmd_generate(args) -> int:
    out = Path(args.out) if args.out else Path(f"{_slug(args.prompt)}-seed{args.seed}.png")
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; choose another --out or pass --overwrite.", file=sys.stderr)
        return 2
    if out.suffix.lower() != ".png":
        print(f"error: --out must be a .png file, got {out}.", file=sys.stderr)
        return 2
    if not out.parent.exists():
        print(f"error: the folder {out.parent} does not exist.", file=sys.stderr)
        return 2
    import torch

    from lds.pipeline.loading import ModelNotFoundError, load_pipeline
    from lds.pipeline.sampling import generate

    try:
        pipe = load_pipeline(args.model, allow_download=args.allow_download, device=args.device,
                             dtype=getattr(torch, args.dtype))
        result = generate(pipe, args.prompt, seed=args.seed, num_inference_steps=args.steps,
                          guidance_scale=args.guidance, negative_prompt=args.negative_prompt,
                          height=args.height, width=args.width)
    except (ModelNotFoundError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", json.dumps({**result.params, "model": args.model}, ensure_ascii=False))
    try:
        result.images[0].save(out, pnginfo=info)
    except OSError as err:
        print(f"error: could not write {out}: {err}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{out}  ({result.params['width']}x{result.params['height']}, seed {args.seed}, "
          f"{args.steps} steps, guidance {args.guidance}, {result.seconds:.2f} s)")
    return 0


def cmd_train(args) -> int:
    from lds.pipeline.loading import lds_mini_path
    from lds.training.recipe import STAGES, TrainConfig, Trainer

    cfg = TrainConfig.recipe_named("smoke" if args.smoke else args.recipe)
    out = Path(args.out) if args.out else lds_mini_path()
    stages = STAGES if not args.stage else tuple(args.stage)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        print(f"error: unknown stage(s) {unknown}; stages are {', '.join(STAGES)}", file=sys.stderr)
        return 2
    try:
        trainer = Trainer(cfg, Path(args.workdir), out, checkpoint_seconds=60 * args.checkpoint_minutes
                          if args.checkpoint_minutes > 0 else None)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.stage:  # a stage asked for by name runs again even if it was done
        for s in stages:
            (Path(args.workdir) / f"{s}.done").unlink(missing_ok=True)
    metrics = trainer.run(stages)
    trainer.finalize()
    print(json.dumps({k: v for k, v in metrics.items()}, indent=2)[:4000])
    print(f"lds-mini written to {out}")
    return 0


def cmd_chapters(args) -> int:
    from lds.book.runner import chapters, parameters_of

    for nb in chapters():
        if nb.parent.name != "notebooks":
            continue
        print(nb.stem)
        for p in parameters_of(nb):
            comment = f"  # {p.comment}" if p.comment else ""
            print(f"    {p.name:<18} {p.type:<6} = {p.default!r}{comment}")
    return 0


def cmd_rerun(args) -> int:
    from lds.book.rerun import RerunError, rerun, rerun_batch

    params = {name: value for name, value in (args.param or [])}
    try:
        if args.batch:
            index = rerun_batch(args.chapter, Path(args.batch), model=args.model, out=args.out)
            print(f"batch done: open {index}")
        else:
            folder = rerun(args.chapter, params, model=args.model, out=args.out)
            print(f"done: {folder}  (notebook, HTML page and receipt.json)")
    except RerunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_audit(args) -> int:
    from lds.audit.run import merge_runs, run_audit
    from lds.audit.spec import AuditSpecError, parse_overrides, shipped_audits

    try:
        if args.spec == "merge":
            if not args.dirs or not args.out:
                print("error: write `lds audit merge DIR... --out DIR`.", file=sys.stderr)
                return 2
            out = merge_runs(args.dirs, args.out)
        else:
            if args.dirs:
                print(f"error: unexpected arguments {args.dirs}; to merge runs write `lds audit merge DIR... --out DIR`.",
                      file=sys.stderr)
                return 2
            part = None
            if args.part:
                try:
                    i, n = (int(x) for x in args.part.split("/"))
                    assert 0 <= i < n
                except (ValueError, AssertionError):
                    print(f"error: --part {args.part!r}: write I/N with 0 <= I < N, e.g. --part 0/3.", file=sys.stderr)
                    return 2
                part = (i, n)
            out = run_audit(args.spec, args.out, parse_overrides(args.set), part=part, progress=not args.quiet)
    except AuditSpecError as err:
        print(f"error: {err}", file=sys.stderr)
        if "shipped audit" in str(err):
            print(f"shipped audits: {', '.join(shipped_audits())}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, one process reports
        print(f"done: {out}  (results.parquet, results.csv, report.html)")
    return 0


def cmd_export_web(args) -> int:
    from lds.pipeline.loading import ModelNotFoundError, load_pipeline
    from lds.web.export import MANIFEST, ExportError, export_web

    folder = Path(args.folder)
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / MANIFEST).is_file())):
        print(f"error: {folder} exists and is not an earlier export (no {MANIFEST}); choose a new or empty folder, "
              "so that nothing else in it is overwritten.", file=sys.stderr)
        return 2
    try:
        export = export_web(load_pipeline(args.model, allow_download=args.allow_download), folder)
    except (ModelNotFoundError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done: {folder} ({export.total_bytes / 1e6:.1f} MB: {', '.join(f['path'] for f in export.manifest['files'].values())}, "
          f"{MANIFEST}). A built book reads it from _build/html/_static/live/model/.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lds", description="Latent diffusion, taken apart: the book's companion tool.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="versions, device and the models available offline")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("generate", help="generate one image, reproducibly for a seed")
    s.add_argument("prompt")
    _add_model_args(s)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--steps", type=int, default=25, dest="steps", help="num_inference_steps (default 25)")
    s.add_argument("--guidance", type=float, default=7.5,
                   help="guidance_scale s in uncond + s*(cond - uncond), for every s: 0 = unconditional, "
                        "1 = conditional only (default 7.5)")
    s.add_argument("--negative-prompt", default="")
    s.add_argument("--height", type=int, default=None)
    s.add_argument("--width", type=int, default=None)
    s.add_argument("--out", default=None, help="output .png (default: <prompt>-seed<N>.png)")
    s.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("train", help="train lds-mini from scratch (or one stage), resumable")
    s.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    s.add_argument("--workdir", default=".lds-cache/train", help="where stages keep their results")
    s.add_argument("--out", default=None, help="where to write the pipeline (default: lds/weights/lds-mini)")
    s.add_argument("--recipe", choices=("quick", "full"), default="quick",
                   help="quick: the retrain a reader can run, budgeted at 45 minutes on 2 CPU cores (default); "
                        "full: the larger budget that made the shipped weights, several hours (measured times: "
                        "the README's Performance table)")
    s.add_argument("--smoke", action="store_true", help="a minutes-long tiny configuration (for tests)")
    s.add_argument("--checkpoint-minutes", type=float, default=10.0,
                   help="save each training stage's state this often into <workdir>/checkpoints/, and resume "
                        "from it after an interruption (default 10; 0: no checkpoints)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("chapters", help="the chapters, with their parameters, types and defaults")
    s.set_defaults(func=cmd_chapters)

    s = sub.add_parser("rerun", help="rerun a chapter with your own parameters")
    s.add_argument("chapter", help="number, name or stem, e.g. 5, tokenization, 05_tokenization")
    s.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"))
    s.add_argument("--model", default=None, help="shorthand for -p model M")
    s.add_argument("--out", default=None, help="run folder (default: runs/<chapter>-<time>); never overwritten")
    s.add_argument("--batch", default=None, help="CSV: one run per row, a column per parameter (+ optional 'name')")
    s.set_defaults(func=cmd_rerun)

    s = sub.add_parser("audit", help="run an audit (prompts x seeds x guidance scales) declared in a YAML spec")
    s.add_argument("spec", help="a spec file, a shipped audit (default-tone, languages), or 'merge'")
    s.add_argument("dirs", nargs="*", help="(merge only) the run folders to merge")
    s.add_argument("--out", default=None, help="run folder (default: audits/<name>-<spec hash>); a rerun resumes it")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a spec key, e.g. --set seeds=4")
    s.add_argument("--part", default=None, help="I/N: run only this share of the shards (one laptop of N)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("export-web", help="export the model for the live pages: ONNX graphs, tokenizer.json, live.json")
    s.add_argument("folder", help="where to write (a new or empty folder, or an earlier export)")
    s.add_argument("--model", default="lds-mini", help="'lds-mini' (default) or a local diffusers folder small enough "
                                                        "for a browser (DDIM scheduler)")
    s.add_argument("--allow-download", action="store_true", help="allow downloading a hub model")
    s.set_defaults(func=cmd_export_web)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
