"""Audits: many prompts x seeds x guidance scales, declared in a file, resumable, distributed.

Chapter 12 (Audits) explains it and runs the two shipped audits (``lds/audit/specs/*.yaml``).

An audit is a YAML spec (:class:`AuditSpec`) turned into a run folder::

    DIR/spec.yaml          the spec as run (a rerun resumes only when it is the same)
    DIR/shards/*.npz       one file per shard: its rows and its images (uint8), written atomically
    DIR/results.parquet    one row per image (also results.csv)
    DIR/receipt.json       model, versions, platform, spec
    DIR/report.html        plots, counts and image grids; opens offline (images inline)

Work is split into shards by seed: shard k holds every prompt at every guidance scale for a block
of seeds, plus those seeds' unconditional images (guidance 0, which the prompt cannot affect). A
shard is written to a temporary file and renamed into place, so a run killed at any moment loses
at most the shards in flight, and a rerun skips the shards already on disk. Shards are the unit
that Hugging Face Accelerate splits between processes (``accelerate launch -m lds audit SPEC``),
and each shard is computed the same way whatever process runs it, so the table does not depend on
the number of processes, given the same number of threads per process (PyTorch's CPU arithmetic
depends on it in the last bits; ``make bench`` reports how far).

The measures come from :mod:`lds.measures`, the functions the chapters use.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from lds.audit.spec import AuditSpec, AuditSpecError, Item, default_out, load_spec, shard_seeds, tone_bases
from lds.audit.store import (atomic_write, done_shards, load_run_spec, prepare_folder, read_shard, refuse_folder,
                             schema, shard_file, write_shard)


# ------------------------------------------------------------------------------------------------
# 1. One shard: generate, measure, write atomically
# ------------------------------------------------------------------------------------------------


def _uint8(images) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8, as a PNG would store them."""
    return (images.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


def _tensor(images: np.ndarray):
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def run_shard(pipe, s: AuditSpec, items: list[Item], k: int, seeds: list[int], corpus) -> dict:
    """Generate and measure shard ``k``: every item x every scale x ``seeds``; returns its arrays."""
    from lds import measures
    from lds.pipeline.sampling import initial_latents
    from lds.pipeline.sampling import generate

    # 1. The seeds' unconditional images (guidance 0: the prompt cannot act, so one per seed)
    uncond = generate(pipe, [""] * len(seeds), latents=initial_latents(pipe, list(seeds)), guidance_scale=0.0,
                      num_inference_steps=s.num_inference_steps, negative_prompt=s.negative_prompt)
    uncond_u8 = _uint8(uncond.image_tensor)
    uncond_x = _tensor(uncond_u8)
    bank = measures.corpus_tensor(corpus)  # (N, 3, h, w): every measure compares with the corpus at its size
    uncond_nearest, _ = measures.nearest(uncond_x, bank)

    # 2. Every (item, seed) pair at every scale, in batches
    pairs = [(j, si) for j in range(len(items)) for si in range(len(seeds))]
    rows, images = [], []
    for g in s.guidance_scales:
        for b in range(0, len(pairs), s.batch_size):
            batch = pairs[b:b + s.batch_size]
            out = generate(pipe, [items[j].prompt for j, _ in batch],
                           latents=initial_latents(pipe, [seeds[si] for _, si in batch]), guidance_scale=g,
                           num_inference_steps=s.num_inference_steps, negative_prompt=s.negative_prompt)
            u8 = _uint8(out.image_tensor)
            saturation = measures.hsv_saturation(out.image_tensor.float().cpu()).numpy()
            oor = out.out_of_range.numpy()
            # measured on the stored (uint8) images, so a table can be recomputed from the shards
            rows += _measure(_tensor(u8), batch, items, seeds, g, uncond_x, uncond_nearest, corpus, bank,
                             saturation, oor, offset=sum(len(x) for x in images), shard=k)
            images.append(u8)
    images = np.concatenate(images)
    # 3. Skin tone, once per emoji over the whole shard, against that emoji's six corpus variants (chapter 7)
    _add_tones(rows, _tensor(images), corpus)
    return {"rows": rows, "images": images, "unconditional": uncond_u8, "seeds": np.array(seeds)}


def _add_tones(rows: list[dict], x, corpus) -> None:
    """Fill ``tone_colour`` and ``tone_nearest`` of the rows whose named emoji comes in all five tones."""
    from lds import measures

    variants_of = _tone_variants(corpus)
    by_base: dict[str, list[dict]] = {}
    for r in rows:
        if r["target"] >= 0 and corpus.records[r["target"]]["base"] in variants_of:
            by_base.setdefault(corpus.records[r["target"]]["base"], []).append(r)
    for base, rs in by_base.items():
        c = measures.classify_tone(x[[r["image"] for r in rs]], corpus, variants_of[base])
        for r, colour, near in zip(rs, c["colour"], c["nearest"]):
            r["tone_colour"], r["tone_nearest"] = colour, near


def _measure(x, batch, items, seeds, g, uncond_x, uncond_nearest, corpus, bank, saturation, oor, offset, shard):
    from lds import measures

    targets = np.array([items[j].target for j, _ in batch])
    nearest_idx, nearest_dist = measures.nearest(x, bank)
    rank = np.full(len(batch), -1)
    named = targets >= 0
    if named.any():
        rank[named] = measures.named_rank(x[named], targets[named], corpus, bank)
    dist_u = measures.distance_from_unconditional(x, uncond_x[[si for _, si in batch]])
    rows = []
    recs = corpus.records
    for n, (j, si) in enumerate(batch):
        it, t, ni = items[j], int(targets[n]), int(nearest_idx[n])
        un = int(uncond_nearest[si])
        rows.append({
            "shard": shard, "image": offset + n, "prompt_index": j, "prompt": it.prompt, "group": it.group,
            "lang": it.lang, "seed": seeds[si], "guidance_scale": float(g),
            "target": t, "target_name": recs[t]["names"]["en"] if t >= 0 else "",
            "nearest": ni, "nearest_name": recs[ni]["names"]["en"], "nearest_distance": float(nearest_dist[n]),
            "target_rank": int(rank[n]),
            "right": bool(t >= 0 and recs[ni]["base"] == recs[t]["base"]),
            "right_unconditional": bool(t >= 0 and recs[un]["base"] == recs[t]["base"]),
            "tone_colour": "", "tone_nearest": "",  # filled per emoji over the whole shard (_add_tones)
            "distance_from_unconditional": float(dist_u[n]),
            "saturation": float(saturation[n]), "out_of_range": float(oor[n]),
        })
    return rows


_VARIANTS: dict = {}


def _tone_variants(corpus) -> dict[str, list[int]]:
    """base -> its six variants (unmarked first), for bases with all five tones."""
    if id(corpus) not in _VARIANTS:
        bases = {corpus.records[i]["base"] for i in tone_bases(corpus)}
        out: dict[str, list[int]] = {}
        for i, r in enumerate(corpus.records):
            if r["base"] in bases and r["tone"] != "mixed":
                out.setdefault(r["base"], []).append(i)
        _VARIANTS[id(corpus)] = out
    return _VARIANTS[id(corpus)]


# ------------------------------------------------------------------------------------------------
# 2. The run: prepare the folder, split shards between processes, assemble
# ------------------------------------------------------------------------------------------------


def run_audit(spec, out: str | os.PathLike | None = None, overrides: dict | None = None, *, part: tuple[int, int] | None = None,
              max_shards: int | None = None, progress: bool = True) -> Path:
    """Run (or resume) an audit; returns its folder. The Python face of ``lds audit``.

    ``spec``: a file, a shipped audit's name or an :class:`AuditSpec`; ``overrides`` as ``--set``.
    ``part=(i, n)`` runs only shards ``k`` with ``k % n == i`` (one laptop's share; merge with
    :func:`merge_runs`). ``max_shards`` stops after that many new shards (the rest on the next call).
    Under ``accelerate launch`` the shards to do are split between the processes.
    """
    import torch
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from lds.data.corpus import load_corpus
    from lds.pipeline.loading import load_pipeline
    from lds.pipeline.receipt import receipt

    s = spec if isinstance(spec, AuditSpec) else load_spec(spec, overrides)
    if isinstance(spec, AuditSpec) and overrides:
        s = load_spec(s.model_dump(), overrides)
    out = Path(out) if out is not None else default_out(s)
    state = PartialState(cpu=s.device == "cpu")
    refuse_folder(out, s)  # every process refuses the same folder, before any process writes
    state.wait_for_everyone()
    if state.is_main_process:
        prepare_folder(out, s)
    state.wait_for_everyone()

    items = s.items  # planned once, when the spec was validated
    shards = shard_seeds(s)
    todo = [k for k in range(len(shards)) if part is None or k % part[1] == part[0]]
    todo = [k for k in todo if k not in done_shards(out)]
    if max_shards is not None:
        todo = todo[:max_shards]
    state.wait_for_everyone()  # every process has listed the same shards before any is written

    device = str(state.device) if s.device != "cpu" and state.num_processes > 1 else s.device
    pipe = load_pipeline(s.model, device=device, dtype=getattr(torch, s.dtype))
    corpus = load_corpus()
    with state.split_between_processes(todo) as mine:
        bar = tqdm(mine, desc=f"audit {s.name} ({len(items)} prompts x {len(s.guidance_scales)} scales)",
                   unit="shard", disable=not progress or not state.is_local_main_process)
        for k in bar:
            write_shard(out, k, run_shard(pipe, s, items, k, shards[k], corpus))
    state.wait_for_everyone()
    if state.is_main_process:
        r = receipt(pipe, parameters={"spec": s.model_dump(), "processes": state.num_processes,
                                      "part": list(part) if part else None})
        atomic_write(out / "receipt.json", lambda f: f.write(json.dumps(r, indent=1, default=str).encode()))
        assemble(out, s)
    state.wait_for_everyone()
    return out


def assemble(out: Path, s: AuditSpec) -> dict:
    """Write results.parquet, results.csv and report.html from the shards on disk; returns counts.

    ``s`` is the spec the folder holds (the caller has it, validated). Each shard's rows are read here, and its
    images once more by the report's figures (:class:`lds.audit.store.StoredImages`).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(out)
    rows = []
    done = sorted(done_shards(out))
    for k in done:
        rows += read_shard(shard_file(out, k), "rows")
    rows.sort(key=lambda r: (r["prompt_index"], r["guidance_scale"], r["seed"]))
    table = pa.Table.from_pylist(rows, schema=schema()) if rows else schema().empty_table()
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write(out / "results.parquet", lambda f: f.write(buf.getvalue()))
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    atomic_write(out / "results.csv", lambda f: f.write(buf.getvalue()))
    counts = {"images": len(rows), "shards_done": len(done), "shards": len(shard_seeds(s))}
    from lds.audit.report import write_report

    write_report(out, s, rows, counts)
    return counts


def merge_runs(dirs, out) -> Path:
    """Merge run folders of the same spec (e.g. one per laptop, ``--part``) into ``out``.

    Shards are copied (a shard present in several folders must be byte-identical in its rows);
    ``out`` may already hold the same audit, never another.
    """
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise AuditSpecError("merge needs at least one run folder.")
    specs = [load_run_spec(d) for d in dirs]
    for d, sp in zip(dirs[1:], specs[1:]):
        if sp != specs[0]:
            raise AuditSpecError(f"{d} holds another audit than {dirs[0]} (their spec.yaml differ): only runs of "
                                 "the same spec can be merged.")
    out = Path(out)
    prepare_folder(out, specs[0])
    have = done_shards(out)
    for d in dirs:
        for k in sorted(done_shards(d)):
            src = shard_file(d, k)
            if k in have:
                if read_shard(src, "rows") != read_shard(shard_file(out, k), "rows"):
                    raise AuditSpecError(f"shard {k} of {d} differs from the one already merged: the runs did not "
                                         "compute the same thing (different library versions or hardware?).")
                continue
            atomic_write(shard_file(out, k), lambda f, src=src: f.write(src.read_bytes()))
            have.add(k)
    receipts = [json.loads((d / "receipt.json").read_text()) for d in dirs if (d / "receipt.json").is_file()]
    merged = {"merged_from": [str(d) for d in dirs], "receipts": receipts}
    atomic_write(out / "receipt.json", lambda f: f.write(json.dumps(merged, indent=1, default=str).encode()))
    assemble(out, specs[0])
    return out
