"""`make bench`: speed and size of lds against plain diffusers, measured on this machine.

Writes benchmarks/results.json and benchmarks/results.md (the README's performance table). Timings
are medians of several runs; comparisons are ratios measured in the same run, interleaved, because
shared machines are noisy. Nothing here is asserted by the tests: correctness has its own tests
(parity, determinism); this script measures.

    python benchmarks/run.py [--quick] [--only NAME ...] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks"
PY = sys.executable


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def run_with_peak_memory(cmd: list[str], env=None) -> tuple[float, float, float]:
    """Wall time (s), peak memory (MB) and peak summed RSS (MB) of a command and all its children.

    Memory is the peak of the summed proportional set size (PSS: each shared page counted once, split between
    the processes that map it). Summing resident sizes (RSS) would count torch's shared libraries, about
    0.5 GB of file-backed pages, once per kernel when two chapters execute at once; the third value is that larger
    figure, for comparison with rows measured before."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = rss_peak = 0.0
    p = psutil.Process(proc.pid)

    def memory(q):
        try:
            return q.memory_full_info().pss, q.memory_info().rss
        except (psutil.AccessDenied, AttributeError):  # no PSS on this platform: fall back to RSS
            rss = q.memory_info().rss
            return rss, rss

    def poll():
        nonlocal peak, rss_peak
        while proc.poll() is None:
            try:
                procs = [p] + p.children(recursive=True)
                sizes = [memory(q) for q in procs if q.is_running()]
                peak = max(peak, sum(a for a, _ in sizes) / 1e6)
                rss_peak = max(rss_peak, sum(b for _, b in sizes) / 1e6)
            except psutil.Error:
                pass
            time.sleep(0.2)

    th = threading.Thread(target=poll)
    th.start()
    _, err = proc.communicate()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return time.perf_counter() - t0, peak, rss_peak


# ---------------------------------------------------------------------------------------------
def _book_run(jobs: int, repeats: int) -> dict:
    results, rss, chapters = [], [], {}
    for _ in range(repeats):
        tmp = Path(tempfile.mkdtemp(prefix="lds-bench-book-"))
        wall, peak, rss_peak = run_with_peak_memory([PY, "-m", "lds.book.runner", "--executed", str(tmp), "--no-build",
                                                     "--force"], env={**os.environ, "HF_HUB_OFFLINE": "1",
                                                                      "LDS_JOBS": str(jobs)})
        results.append((wall, peak))
        rss.append(rss_peak)
        if (tmp / "timings.json").exists():
            chapters = json.loads((tmp / "timings.json").read_text())
        shutil.rmtree(tmp, ignore_errors=True)
    return {"seconds": statistics.median(w for w, _ in results), "peak_memory_mb": max(p for _, p in results),
            "peak_rss_sum_mb": max(rss), "chapter_seconds": chapters}


def bench_book(repeats: int) -> dict:
    """1. Executing every chapter with papermill on lds-mini (full defaults): wall time, peak memory.

    First as the runner does by default here (two chapters at once on a machine with 2 cores and 4 GiB free),
    then one chapter at a time (``LDS_JOBS=1``), the setting for a machine short of memory."""
    from lds.book.runner import default_jobs

    jobs = default_jobs()
    main = _book_run(jobs, repeats)
    out = {"book_execute_seconds": main["seconds"], "book_peak_memory_mb": main["peak_memory_mb"],
           "book_peak_rss_sum_mb": main["peak_rss_sum_mb"], "jobs": jobs, "chapter_seconds": main["chapter_seconds"],
           "runs": repeats, "target": "<= 300 s, < 2000 MB"}
    if jobs > 1:
        one = _book_run(1, repeats)
        out.update({"one_at_a_time_seconds": one["seconds"], "one_at_a_time_peak_memory_mb": one["peak_memory_mb"],
                    "one_at_a_time_chapter_seconds": one["chapter_seconds"]})
    return out


def bench_first_image(repeats: int) -> dict:
    """2a. In a process that has imported torch and diffusers: load lds-mini + 25 steps."""
    import diffusers  # noqa: F401  (imported before timing, as the target says)
    import torch  # noqa: F401

    from lds.pipeline.loading import load_pipeline
    from lds.pipeline.sampling import generate

    def once():
        pipe = load_pipeline("lds-mini")
        generate(pipe, "grinning face", seed=0, num_inference_steps=25)

    once()  # warm file caches
    med, times = median_time(once, repeats)
    return {"first_image_seconds": med, "times": times, "target": "< 2 s"}


PLAIN_SCRIPT = """
import sys, torch
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1], dtype=torch.float32, safety_checker=None,
                                               requires_safety_checker=False, local_files_only=True)
pipe.set_progress_bar_config(disable=True)
img = pipe("grinning face", generator=torch.Generator().manual_seed(0), num_inference_steps=25).images[0]
img.save(sys.argv[2])
"""


def bench_cli(repeats: int) -> dict:
    """2b. `lds generate` in a fresh process against a plain diffusers script doing the same."""
    from lds.pipeline.loading import lds_mini_path

    tmp = Path(tempfile.mkdtemp(prefix="lds-bench-cli-"))
    script = tmp / "plain.py"
    script.write_text(PLAIN_SCRIPT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    lds_times, plain_times = [], []
    for i in range(repeats + 1):  # the first pair warms caches and is dropped
        out = tmp / f"lds{i}.png"
        t0 = time.perf_counter()
        subprocess.run([PY, "-m", "lds", "generate", "grinning face", "--out", str(out)], check=True, env=env,
                       capture_output=True, cwd=ROOT)
        t_lds = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([PY, str(script), str(lds_mini_path()), str(tmp / f"plain{i}.png")], check=True, env=env,
                       capture_output=True)
        t_plain = time.perf_counter() - t0
        if i:
            lds_times.append(t_lds)
            plain_times.append(t_plain)
    shutil.rmtree(tmp, ignore_errors=True)
    ratios = [a / b for a, b in zip(lds_times, plain_times)]
    return {"lds_generate_seconds": statistics.median(lds_times), "plain_diffusers_seconds": statistics.median(plain_times),
            "ratio": statistics.median(ratios), "target": "ratio <= 1.1"}


def _sd15_random_pipeline():
    """A StableDiffusionPipeline at SD 1.5's published configuration with random weights."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from lds.models.tokenizer import reference_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
                                block_out_channels=(320, 640, 1280, 1280), layers_per_block=2)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                                        eos_token_id=49407, bos_token_id=49406, pad_token_id=49407))
    sched = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                          steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=reference_tokenizer(), unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _instrumented_vs_plain(pipe, steps: int, repeats: int) -> dict:
    import torch

    from lds.pipeline.attention import record_cross_attention
    from lds.pipeline.sampling import generate

    prompt, seed = "grinning face", 0

    def plain():
        return pipe(prompt, generator=torch.Generator().manual_seed(seed), num_inference_steps=steps,
                    guidance_scale=7.5, output_type="np").images

    def instrumented():
        preds = []
        with record_cross_attention(pipe) as rec:
            def callback(state):
                rec.step()
                preds.append(state.pred_original_sample)
            out = generate(pipe, prompt, seed=seed, num_inference_steps=steps, guidance_scale=7.5, callback=callback)
        rec.result()
        return out, preds

    plain()
    instrumented()
    t_plain, t_instr = [], []
    for _ in range(repeats):  # interleaved
        t0 = time.perf_counter(); ref = plain(); t_plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); out, _ = instrumented(); t_instr.append(time.perf_counter() - t0)
    import numpy as np

    same = bool(np.array_equal(np.asarray(out.images[0]), (ref[0] * 255).round().astype("uint8")))
    return {"plain_seconds": statistics.median(t_plain), "instrumented_seconds": statistics.median(t_instr),
            "ratio": statistics.median([a / b for a, b in zip(t_instr, t_plain)]), "same_image": same}


def bench_instrumented(repeats: int, quick: bool) -> dict:
    """3. Cross-attention recording + per-step predicted image vs the plain diffusers pipeline."""
    import torch

    from lds.pipeline.loading import load_pipeline

    torch.set_num_threads(os.cpu_count() or 1)
    out = {"lds-mini (25 steps)": _instrumented_vs_plain(load_pipeline("lds-mini"), 25, repeats)}
    if not quick:
        out["SD 1.5 configuration, random weights (3 steps, 64x64 latents)"] = _instrumented_vs_plain(
            _sd15_random_pipeline(), 3, max(2, repeats // 2))
    out["target"] = "ratio <= 1.15, same image"
    return out


def bench_training() -> dict:
    """4. Retraining lds-mini, per recipe: the shipped weights' own run (the metrics.json `lds train` wrote beside
    them) and the other recipe's record kept beside them (``recipe_<name>.json``, benchmarks/recipe_record.py)."""
    from lds.pipeline.loading import lds_mini_path

    folder = lds_mini_path()
    m = json.loads((folder / "metrics.json").read_text())
    config = json.loads((folder / "training_config.json").read_text())
    stages = {k: v["seconds"] for k, v in m.items() if isinstance(v, dict) and "seconds" in v}
    shipped = {"recipe": config.get("recipe", "quick"), "stage_seconds": stages, "total_seconds": sum(stages.values()),
               "timed_from_step": {k: v["timed_from_step"] for k, v in m.items()
                                   if isinstance(v, dict) and "timed_from_step" in v}}
    recipes = {shipped["recipe"]: shipped}
    for path in sorted(folder.glob("recipe_*.json")):
        other = json.loads(path.read_text())["summary"]
        recipes.setdefault(other["recipe"], {"recipe": other["recipe"], "total_seconds": other["training_minutes"] * 60,
                                             "stage_seconds": {}, "timed_from_step": {}, "from": path.name})
    return {"recipes": recipes, "stage_seconds": stages, "total_seconds": sum(stages.values()),
            "note": "from the shipped model's metrics.json (the training run that produced it) and the other "
                    "recipe's record beside it",
            "measured": "by the lds train runs that produced the shipped weights and the earlier ones",
            "target": "quick <= 2700 s; full <= 4 h"}


def bench_rebuild() -> dict:
    """5. Rebuilding the book after one chapter changes: only that chapter re-executes."""
    import nbformat

    from lds.book.runner import execute_book

    tmp = Path(tempfile.mkdtemp(prefix="lds-bench-rebuild-"))
    src = tmp / "book"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", "_build", ".git", "runs", ".lds-cache"))
    t0 = time.perf_counter()
    execute_book(tmp / "exec", src / "tests" / "ci_parameters", root=src, progress=False)
    t_first = time.perf_counter() - t0
    nb_path = src / "notebooks" / "05_tokenization.ipynb"
    nb = nbformat.read(str(nb_path), as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("An edit."))
    nbformat.write(nb, str(nb_path))
    t0 = time.perf_counter()
    second = execute_book(tmp / "exec", src / "tests" / "ci_parameters", root=src, progress=False)
    t_second = time.perf_counter() - t0
    ran = [r["chapter"] for r in second if not r["skipped"]]
    chapter_time = sum(r["seconds"] for r in second if not r["skipped"])
    shutil.rmtree(tmp, ignore_errors=True)
    return {"first_seconds": t_first, "rebuild_seconds": t_second, "re_executed": ran,
            "overhead_seconds": t_second - chapter_time, "target": "only the changed chapter; overhead < 60 s"}


def bench_sd15_chapter(steps: int = 2) -> dict:
    """6. One generating chapter (1, the ensemble) at SD 1.5's full configuration with random
    weights (lds/testing.py, safety checker included), for ``steps`` denoising steps, on the CPU:
    what a reader without a GPU would wait for, and the memory it takes."""
    from lds.testing import sd15_folder

    tmp = Path(tempfile.mkdtemp(prefix="lds-bench-sd15-"))
    try:
        t0 = time.perf_counter()
        folder = sd15_folder(tmp / "sd15-full-size", full_size=True)
        build = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        cmd = [PY, "-m", "lds", "rerun", "1", "--model", str(folder), "--out", str(tmp / "run"),
               "-p", "num_inference_steps", str(steps), "-p", "timing_repeats", "1"]
        wall, peak, _ = run_with_peak_memory(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"chapter": "01_ensemble", "num_inference_steps": steps, "chapter_seconds": wall, "peak_memory_mb": peak,
            "folder_gb": size / 1e9, "folder_build_seconds": build,
            "target": "measured, not a target: what a CPU run of SD 1.5 costs"}


LABELS = ("prompt", "seed", "guidance_scale", "nearest", "target_rank", "right", "tone_colour", "tone_nearest")


def bench_audit(quick: bool) -> dict:
    """7. `lds audit` throughput: images per second for lds-mini at the best batch size, then one process
    against two (accelerate launch) on the same small audit, end to end (imports, model load, measures, report)."""
    import torch

    from lds.pipeline.sampling import initial_latents
    from lds.pipeline.loading import load_pipeline
    from lds.pipeline.sampling import generate

    cpus = os.cpu_count() or 1
    torch.set_num_threads(cpus)
    pipe = load_pipeline("lds-mini")
    per_batch = {}
    for bs in ([32, 128] if quick else [16, 32, 64, 128, 256]):
        lat = initial_latents(pipe, list(range(bs)))
        t0 = time.perf_counter()
        generate(pipe, ["thumbs up"] * bs, latents=lat, num_inference_steps=25, guidance_scale=5.0)
        per_batch[bs] = bs / (time.perf_counter() - t0)
    best = max(per_batch, key=per_batch.get)
    sets = ["--set", "sample=8", "--set", "seeds=4" if quick else "seeds=8", "--set", "guidance_scales=[0,5]",
            "--set", f"batch_size={best}", "--quiet"]
    images = 8 * (4 if quick else 8) * 2
    runs = {}
    for procs in (1, 2):
        tmp = Path(tempfile.mkdtemp(prefix="lds-bench-audit-"))
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cpus // procs))}
        if procs == 1:
            cmd = [PY, "-m", "lds", "audit", "default-tone", "--out", str(tmp / "run"), *sets]
        else:
            cmd = [str(Path(PY).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "-m", "lds", "audit", "default-tone", "--out", str(tmp / "run"), *sets]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True)
        from lds.audit.store import load_results

        runs[procs] = {"seconds": time.perf_counter() - t0, "rows": load_results(tmp / "run")}
        shutil.rmtree(tmp, ignore_errors=True)
    shipped = {"default-tone": 24 * 16 * 5, "languages": 12 * 14 * 16}
    return {"images_per_second_by_batch": per_batch, "best_batch": best, "best_images_per_second": per_batch[best],
            "audit_images": images, "one_process_seconds": runs[1]["seconds"], "two_processes_seconds": runs[2]["seconds"],
            # one process uses every core's threads, each of two processes half: PyTorch's CPU arithmetic
            # depends on the thread count, so floats may differ in the last bits; labels should not
            "same_table": runs[1]["rows"] == runs[2]["rows"],
            "same_labels": [{k: r[k] for k in LABELS} for r in runs[1]["rows"]]
            == [{k: r[k] for k in LABELS} for r in runs[2]["rows"]],
            "max_float_difference": max((abs(a[k] - b[k]) for a, b in zip(runs[1]["rows"], runs[2]["rows"])
                                         for k in a if isinstance(a[k], float)), default=0.0),
            "shipped_audit_minutes_estimate": {k: n / per_batch[best] / 60 for k, n in shipped.items()},
            "scale_out": "shards are independent: N processes (GPUs) run about N times the one-process rate, up to one "
                         "process per shard (16 in the shipped audits), less each process's model load (about 1 s). "
                         "An estimate from the design, not a measurement on GPUs.",
            "target": "each shipped audit <= 10 min on 2 cores; the same table for 1 and 2 processes"}


def bench_live(repeats: int) -> dict:
    """8. The live pages in headless Chromium (benchmarks/live.py): parity with lds in Python, time to ready and to
    the first image against torch, the bytes a reader downloads. Reads the book `make book` built (_build/html)."""
    sys.path.insert(0, str(OUT))
    import live

    return live.measure(ROOT / "_build" / "html", repeats)


def markdown(results: dict) -> str:
    lines = ["| measure | result | target |", "|---|---|---|"]
    if "book" in results:
        b = results["book"]
        jobs = f"{b['jobs']} chapters at once, " if b.get("jobs", 1) > 1 else ""
        rss = f" (summed RSS {b['book_peak_rss_sum_mb']:.0f} MB)" if "book_peak_rss_sum_mb" in b else ""
        lines.append(f"| execute the whole book (papermill, lds-mini; {jobs}peak memory as summed PSS) | "
                     f"{b['book_execute_seconds']:.0f} s, peak {b['book_peak_memory_mb']:.0f} MB{rss} | "
                     f"≤ 300 s, < 2,000 MB |")
        if "one_at_a_time_seconds" in b:
            lines.append(f"| the same, one chapter at a time (`LDS_JOBS=1`) | {b['one_at_a_time_seconds']:.0f} s, peak "
                         f"{b['one_at_a_time_peak_memory_mb']:.0f} MB | ≤ 300 s, < 2,000 MB |")
    if "first_image" in results:
        lines.append(f"| load lds-mini + 25 steps (torch, diffusers imported) | "
                     f"{results['first_image']['first_image_seconds']:.2f} s | < 2 s |")
    if "cli" in results:
        c = results["cli"]
        lines.append(f"| `lds generate` vs plain diffusers script, fresh process | {c['lds_generate_seconds']:.1f} s vs "
                     f"{c['plain_diffusers_seconds']:.1f} s (×{c['ratio']:.2f}) | ≤ ×1.10 |")
    if "instrumented" in results:
        for k, v in results["instrumented"].items():
            if isinstance(v, dict):
                lines.append(f"| recording + per-step prediction vs plain pipeline, {k} | ×{v['ratio']:.3f} "
                             f"(same image: {v['same_image']}) | ≤ ×1.15 |")
    if "training" in results:
        targets = {"quick": "≤ 45 min", "full": "≤ 4 h"}
        recipes = results["training"].get("recipes") or {"quick": results["training"]}  # older results: one recipe
        for name, t in sorted(recipes.items(), key=lambda kv: kv[0] != "quick"):
            per = ", ".join(f"{k} {v / 60:.1f}" for k, v in t.get("stage_seconds", {}).items())
            timed = "; ".join(f"{k} timed from step {v:,}" for k, v in t.get("timed_from_step", {}).items())
            what = "; ".join(filter(None, [f"minutes per stage: {per}" if per else "", timed,
                                           f"from {t['from']}" if t.get("from") else ""]))
            lines.append(f"| retrain lds-mini, `--recipe {name}` ({what}) | {t['total_seconds'] / 60:.1f} min | "
                         f"{targets.get(name, 'measured')} |")
    if "rebuild" in results:
        r = results["rebuild"]
        lines.append(f"| rebuild after editing one chapter | re-executed {', '.join(r['re_executed']) or 'none'}; "
                     f"overhead {r['overhead_seconds']:.1f} s | that chapter only; < 60 s + its time |")
    if "sd15_chapter" in results:
        r = results["sd15_chapter"]
        lines.append(f"| chapter 1 on SD 1.5's full configuration, random weights, {r['num_inference_steps']} steps, "
                     f"CPU | {r['chapter_seconds']:.0f} s, peak {r['peak_memory_mb']:.0f} MB | measured, no target |")


    if "audit" in results:
        a = results["audit"]
        est = ", ".join(f"{k} {v:.1f} min" for k, v in a["shipped_audit_minutes_estimate"].items())
        lines.append(f"| `lds audit` throughput, lds-mini (25 steps) | {a['best_images_per_second']:.1f} images/s at batch "
                     f"{a['best_batch']}; a {a['audit_images']}-image audit end to end: 1 process "
                     f"{a['one_process_seconds']:.0f} s, 2 processes {a['two_processes_seconds']:.0f} s (same labels: "
                     f"{a['same_labels']}, floats within {a['max_float_difference']:.1e}); shipped audits, "
                     f"estimated: {est} | each ≤ 10 min; same labels |")
    if "live" in results:
        v = results["live"]
        lines.append(f"| the live page in Chromium (wasm, 1 thread; WebGPU not measured): ready, first 25-step image | "
                     f"ready {v['ready_ms'] / 1000:.1f} s, first image {v['first_image_ms'] / 1000:.2f} s (torch "
                     f"{v['torch_image_ms'] / 1000:.2f} s); images within {v['image_max_diff_of_255']}/255 of lds, word "
                     f"maps r ≥ {int(v['word_map_min_r'] * 1e5) / 1e5:.5f}, {v['n_token_mismatches']} of {v['token_prompts']} prompts' "
                     f"token ids differ; {v['live_page_bytes'] / 1e6:.1f} MB | ready ≤ 5 s, image ≤ 2 s, ≤ 2/255, "
                     f"r ≥ 0.999, ≤ 45 MB |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="skip the SD 1.5-sized comparison and repeat less")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", nargs="*", choices=["book", "first_image", "cli", "instrumented", "training", "rebuild",
                                                   "sd15_chapter", "audit", "live"])
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    wanted = args.only or ["book", "first_image", "cli", "instrumented", "training", "rebuild", "sd15_chapter", "audit",
                           "live"]
    reps = 2 if args.quick else args.repeats
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
               "date": time.strftime("%Y-%m-%d %H:%M")}
    runners = {"book": lambda: bench_book(1), "first_image": lambda: bench_first_image(reps),
               "cli": lambda: bench_cli(max(2, reps // 2 + 1)), "instrumented": lambda: bench_instrumented(reps, args.quick),
               "training": bench_training, "rebuild": bench_rebuild, "sd15_chapter": bench_sd15_chapter,
               "audit": lambda: bench_audit(args.quick), "live": lambda: bench_live(min(reps, 3))}
    previous = json.loads((OUT / "results.json").read_text()) if (OUT / "results.json").exists() else {}
    for name in wanted:
        print(f"[bench] {name} ...", flush=True)
        results[name] = runners[name]()
        results[name].setdefault("measured", time.strftime("%Y-%m-%d %H:%M"))
        print(json.dumps(results[name], indent=2, default=str), flush=True)
    merged = {**previous, **results}
    (OUT / "results.json").write_text(json.dumps(merged, indent=2, default=str))
    table = markdown(merged)
    when = "; ".join(f"{k} {v['measured']}" for k, v in merged.items() if isinstance(v, dict) and "measured" in v)
    (OUT / "results.md").write_text(f"# Benchmarks\n\nMeasured on {merged['machine']['cpus']} CPU cores with `make bench` "
                                    f"(`python benchmarks/run.py`; `--only NAME` reruns one row). When each row was "
                                    f"measured: {when}.\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
