"""lds audit: bad specs refused before work; resuming loses nothing; 1 and 2 processes agree; merge;
the report opens offline. Tiny audits (2 prompts, 2 seeds, 2 scales, 2 steps) keep it to seconds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lds.audit import spec as audit_spec
from lds.audit import store as audit_store
from lds.audit.run import run_audit
from lds.audit.spec import AuditSpecError, load_spec
from lds.audit.store import load_results
from lds.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = {"name": "tiny", "prompts": ["thumbs up", "dog face"], "seeds": 2, "guidance_scales": [0, 5],
        "num_inference_steps": 2, "seeds_per_shard": 1}


def _images(out):
    images = audit_store.StoredImages(out)
    return {k: images.shard(k) for k in sorted(audit_store.done_shards(out))}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Every run here on one thread, as each of the two accelerate processes below: the same arithmetic."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def uninterrupted(one_thread, tmp_path_factory):
    return run_audit(dict(TINY), tmp_path_factory.mktemp("audit") / "full", progress=False)


# ------------------------------------------------------------------------------------------------
# Refused before any work
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("name: x\nprompts: [thumbs up]\nseedz: 4\n", r"bad\.yaml:3: unknown key 'seedz'"),
    ("name: x\nprompts: [thumbs up]\nseeds: four\n", r"bad\.yaml:3: 'seeds' must be a whole number"),
    ("name: x\nprompts: []\n", r"bad\.yaml:2: the audit has no prompts"),
    ("name: x\nfill: languages\nemoji: [no such emoji]\n", r"bad\.yaml:3: no emoji named 'no such emoji'"),
    ("name: x\nmodel: no-such-model\nprompts: [thumbs up]\n", r"bad\.yaml:2: Unknown model 'no-such-model'"),
    ("name: x\nprompts: [thumbs up]\nguidance_scales: [5, .nan]\n", r"bad\.yaml:3: guidance_scale must be a finite"),
    ("name: x\nfill: tone-bases\nkinds: [hands]\n", r"bad\.yaml:3: unknown kind 'hands'"),
])
def test_bad_spec_is_refused_before_work(tmp_path, text, message, monkeypatch):
    import lds.pipeline.loading

    def no_model(*a, **k):
        raise AssertionError("a model was loaded for a bad spec")

    monkeypatch.setattr(lds.pipeline.loading, "load_pipeline", no_model)
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(AuditSpecError, match=message):
        run_audit(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_bad_override_names_the_key(capsys, tmp_path):
    assert main(["audit", "default-tone", "--set", "seeds=0", "--out", str(tmp_path / "o")]) == 2
    assert "--set seeds: 'seeds' must be at least 1" in capsys.readouterr().err
    assert main(["audit", "default-tone", "--set", "colour=red", "--out", str(tmp_path / "o")]) == 2
    assert "--set colour: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_shipped_audits_validate_at_their_sizes():
    tone = load_spec("default-tone")
    assert tone.seeds >= 16 and len(tone.guidance_scales) >= 5 and tone.fill == "tone-bases"
    items = tone.items
    assert len(items) == tone.sample and all(i.target >= 0 for i in items)
    assert len(audit_spec.tone_bases(__import__("lds.data.corpus").data.corpus.load_corpus())) == 309
    lang = load_spec("languages")
    items = lang.items
    assert len({i.lang for i in items}) == 14 and len(items) == 14 * len(lang.emoji)


# ------------------------------------------------------------------------------------------------
# The table, the shards and the report
# ------------------------------------------------------------------------------------------------

def test_table_has_one_row_per_image_with_the_measures(uninterrupted):
    rows = load_results(uninterrupted)
    assert len(rows) == 2 * 2 * 2
    assert {(r["prompt"], r["seed"], r["guidance_scale"]) for r in rows} == {
        (p, s, g) for p in TINY["prompts"] for s in range(2) for g in (0.0, 5.0)}
    # guidance 0 is the unconditional image: no distance from it, whatever the prompt (up to float rounding between
    # batches of different sizes, which can move one pixel by one uint8 level: 7e-5, measured)
    assert all(r["distance_from_unconditional"] < 1e-3 for r in rows if r["guidance_scale"] == 0)
    assert any(r["distance_from_unconditional"] > 0.01 for r in rows if r["guidance_scale"] == 5)
    thumbs = [r for r in rows if r["prompt"] == "thumbs up"]
    assert all(r["tone_colour"] in ("none", "light", "medium-light", "medium", "medium-dark", "dark") for r in thumbs)
    assert all(r["tone_colour"] == "" for r in rows if r["prompt"] == "dog face")  # no tone variants
    assert all(0 <= r["target_rank"] < 3812 for r in rows)
    assert (uninterrupted / "results.csv").read_text().count("\n") == len(rows) + 1
    assert sum(len(v) for v in _images(uninterrupted).values()) == len(rows)


def test_table_measures_are_the_chapters_functions(uninterrupted):
    """Recompute two columns from the stored images with the chapters' functions."""
    import torch

    from lds.data.corpus import load_corpus
    from lds.measures import corpus_tensor, nearest

    rows = load_results(uninterrupted)
    x = torch.from_numpy(audit_store.StoredImages(uninterrupted).of(rows)).permute(0, 3, 1, 2).float() / 255
    idx, dist = nearest(x, corpus_tensor(load_corpus()))
    assert list(idx) == [r["nearest"] for r in rows]
    # the same function on the same images; torch.cdist's batch-size-dependent kernels differ in the 6th digit
    np.testing.assert_allclose(dist, [r["nearest_distance"] for r in rows], rtol=1e-4)


def test_report_opens_offline(uninterrupted):
    page = (uninterrupted / "report.html").read_text()
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert page.count('src="data:image/png;base64,') >= 3
    assert "8</b> images" in page


# ------------------------------------------------------------------------------------------------
# Resumable, never overwritten, mergeable
# ------------------------------------------------------------------------------------------------

def test_interrupted_run_resumes_without_loss(uninterrupted, tmp_path):
    out = tmp_path / "resumed"
    run_audit(dict(TINY), out, max_shards=1, progress=False)  # stopped after one shard
    assert audit_store.done_shards(out) == {0}
    # a kill during a write leaves only a temporary file, and a damaged shard is redone
    (out / "shards" / ".shard-00001.npz.999.tmp").write_bytes(b"half a shard")
    (out / "shards" / "shard-00001.npz").write_bytes(b"not a zip")
    run_audit(dict(TINY), out, progress=False)
    assert load_results(out) == load_results(uninterrupted)
    a, b = _images(out), _images(uninterrupted)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_existing_folder_with_another_spec_is_refused(uninterrupted):
    before = (uninterrupted / "results.parquet").read_bytes()
    with pytest.raises(AuditSpecError, match="never overwritten"):
        run_audit({**TINY, "seeds": 4}, uninterrupted, progress=False)
    assert (uninterrupted / "results.parquet").read_bytes() == before


def test_parts_merge_into_the_whole(uninterrupted, tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    import yaml

    spec.write_text(yaml.safe_dump(TINY))
    for i in (0, 1):
        assert main(["audit", str(spec), "--part", f"{i}/2", "--out", str(tmp_path / f"laptop{i}"), "--quiet"]) == 0
    assert audit_store.done_shards(tmp_path / "laptop0") == {0} and audit_store.done_shards(tmp_path / "laptop1") == {1}
    assert main(["audit", "merge", str(tmp_path / "laptop0"), str(tmp_path / "laptop1"),
                 "--out", str(tmp_path / "all")]) == 0
    assert load_results(tmp_path / "all") == load_results(uninterrupted)


# ------------------------------------------------------------------------------------------------
# Distributed: accelerate launch with 2 CPU processes gives the same table
# ------------------------------------------------------------------------------------------------

def test_two_processes_give_the_same_table(uninterrupted, tmp_path):
    import yaml

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --multi_gpu is accelerate's multi-process launcher (torchrun); on a machine without GPUs its
    # processes run on the CPU and talk over gloo. (--cpu alone starts a single process.)
    proc = subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lds", "audit", str(spec),
                           "--out", str(tmp_path / "two"), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done:") == 1
    receipt = (tmp_path / "two" / "receipt.json").read_text()
    assert '"processes": 2' in receipt
    assert load_results(tmp_path / "two") == load_results(uninterrupted)


def test_every_problem_named_with_its_line(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nseeds: 0\nprompts: [thumbs up]\ndtype: float8\n")
    with pytest.raises(AuditSpecError) as err:
        load_spec(spec)
    assert str(err.value).splitlines() == [
        f"{spec}:2: 'seeds' must be at least 1, got 0.",
        f"{spec}:4: dtype must be float32, float16 or bfloat16, got 'float8'."]


def test_run_folder_spec_is_validated(uninterrupted, tmp_path):
    out = tmp_path / "edited"
    shutil.copytree(uninterrupted, out)
    text = (out / "spec.yaml").read_text()
    (out / "spec.yaml").write_text(text.replace("seeds: 2\n", "seeds: two\n"))
    line = 1 + text.splitlines().index("seeds: 2")
    with pytest.raises(AuditSpecError, match=rf"spec\.yaml:{line}: 'seeds' must be a whole number"):
        audit_store.load_run_spec(out)


def test_assembling_reads_each_shard_array_once(uninterrupted, tmp_path, monkeypatch):
    """The rows of each shard once (the table), its images once (the report's two image figures share them)."""
    from collections import Counter

    from lds.audit import run as audit_run

    out = tmp_path / "again"
    shutil.copytree(uninterrupted, out)
    reads = Counter()
    read = audit_store.read_shard

    def counted(path, array):
        reads[Path(path).name, array] += 1
        return read(path, array)

    monkeypatch.setattr(audit_store, "read_shard", counted)
    monkeypatch.setattr(audit_run, "read_shard", counted)
    audit_run.assemble(out, audit_store.load_run_spec(out))
    assert reads and set(reads.values()) == {1}
    assert {a for _, a in reads} == {"rows", "images"}
    assert load_results(out) == load_results(uninterrupted)
