"""The live pages (issue 28): parity with lds in Python and time in headless Chromium, on this machine.

Serves a built book (default _build/html, from `make book`) on 127.0.0.1 with every other host blocked,
and measures, in one run:

- parity: token ids of `lds.web.parity.parity_prompts()` against lds's tokenizer; the final image of
  10 prompts x 2 seeds (25 steps, guidance 7.5) against `lds.generate` (max difference per channel, of
  255); word maps against `record_cross_attention` (Pearson's r, worst slot);
- times: models loaded and ready from a fresh page (no cache), the first image after that for 25
  guided steps and the median of the next runs, against torch's time for the same image in this run;
- weight: the bytes the live page downloads (its own runtime, the vendored libraries, the model).

Writes the "live" entry of benchmarks/results.json (the other entries are kept). `make bench` runs it as the
"live" row (`python benchmarks/run.py --only live`), after `make book` has built the pages.

    python benchmarks/live.py [--html _build/html] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks"
sys.path.insert(0, str(ROOT / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS, _QuietHandler, offline_context  # noqa: E402  (the browser tests' own)


def serve(html: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def open_live(browser, base: str, html: Path):
    """A fresh context (empty cache) on book/live.html, ready; returns (context, page, ready_ms, bytes by URL)."""
    outside, fetched = [], {}
    context = offline_context(browser, base, outside)
    page = context.new_page()

    def on_response(r):
        path = html / urlparse(r.url).path.lstrip("/")
        if path.is_file():
            fetched[urlparse(r.url).path] = path.stat().st_size

    page.on("response", on_response)
    page.goto(f"{base}book/live.html", wait_until="load")
    ready_ms = page.evaluate("async () => { await window.ldsLive.ready; return performance.now(); }")
    if outside:
        raise RuntimeError(f"the live page asked other hosts: {outside}")
    return context, page, ready_ms, fetched


def js_image(page, prompt, seed, steps=25, guidance=7.5):
    import numpy as np

    r = page.evaluate("""async (p) => { const r = await ldsLive.generate(p);
        return {w: r.width, h: r.height, rgba: Array.from(r.rgba), ms: r.ms}; }""",
                      {"prompt": prompt, "seed": seed, "steps": steps, "guidance": guidance})
    return np.array(r["rgba"], np.int16).reshape(r["h"], r["w"], 4)[..., :3], r["ms"]


def measure(html: Path, repeats: int = 3) -> dict:
    """The live row: parity, times and weight of the live page in ``html`` (a built book)."""
    import numpy as np
    import torch
    from playwright.sync_api import sync_playwright

    import lds
    from lds.models.tokenizer import tokenize
    from lds.pipeline.attention import map_correlation, record_cross_attention
    from lds.pipeline.sampling import clean_prompt
    from lds.web.parity import IMAGE_PROMPTS, parity_prompts

    if not (html / "_static" / "live" / "model" / "live.json").is_file():
        raise FileNotFoundError(f"{html} holds no live model (_static/live/model/live.json). Build the book first: "
                                "make book")
    torch.set_num_threads(int(os.environ.get("LDS_THREADS", "1")))
    pipe = lds.load_pipeline("lds-mini")
    server, base = serve(html)
    result = {"machine": {"cpus": os.cpu_count(), "threads_torch": torch.get_num_threads(), "browser": "Debian chromium, headless, wasm, 1 thread"}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        # Load to ready, fresh each time (no cache: a reader's first visit), and the first image after it
        ready, first, weights = [], [], None
        for _ in range(repeats):
            context, page, ready_ms, fetched = open_live(browser, base, html)
            ready.append(ready_ms)
            first.append(js_image(page, "grinning face", 0)[1])
            weights = fetched
            context.close()
        context, page, _, _ = open_live(browser, base, html)
        js_image(page, "grinning face", 0)
        warm = [js_image(page, "grinning face", 0)[1] for _ in range(repeats)]
        torch_first = lds.generate(pipe, "grinning face", seed=0).seconds  # in this process, pipeline loaded
        torch_warm = [lds.generate(pipe, "grinning face", seed=0).seconds * 1000 for _ in range(repeats)]
        # Parity
        prompts = parity_prompts()
        got = page.evaluate("ps => Promise.all(ps.map(p => ldsLive.tokenize(p)))", prompts)
        token_mismatches = [q for q, js in zip(prompts, got)
                            if js["ids"] != tokenize(pipe.tokenizer, clean_prompt(q)[0]).input_ids]
        diffs = {}
        for prompt in IMAGE_PROMPTS:
            for seed in (0, 1):
                img, _ = js_image(page, prompt, seed)
                want = np.asarray(lds.generate(pipe, prompt, seed=seed).images[0]).astype(np.int16)
                diffs[f"{prompt[:40]!r} seed {seed}"] = int(np.abs(img - want).max())
        correlations = []
        for prompt, seed in [("grinning face", 0), ("waving hand", 1), ("cara sonriente", 2)]:
            js = page.evaluate("""async (p) => Array.from((await ldsLive.generate(p, {record: {maps: true}})).maps)""",
                               {"prompt": prompt, "seed": seed, "steps": 25, "guidance": 7.5})
            with record_cross_attention(pipe) as rec:
                lds.generate(pipe, prompt, seed=seed, callback=rec.step)
            want = rec.result().maps[0]
            m = torch.tensor(js).reshape(want.shape)
            correlations.append(min(map_correlation(m[k], want[k]) for k in range(77)))
        context.close()
        browser.close()
    server.shutdown()
    live_bytes = {k: v for k, v in weights.items() if k.startswith(("/_static/live/", "/_static/onnxruntime-web/", "/_static/tokenizers/"))}
    result.update({
        "token_prompts": len(prompts), "token_mismatches": token_mismatches[:10], "n_token_mismatches": len(token_mismatches),
        "images": len(diffs), "image_max_diff_of_255": max(diffs.values()), "image_diffs": diffs,
        "word_map_min_r": min(correlations),
        "ready_ms": statistics.median(ready), "ready_ms_runs": ready,
        "first_image_ms": statistics.median(first), "first_image_ms_runs": first,
        "warm_image_ms": statistics.median(warm), "torch_first_image_ms": torch_first * 1000,
        "torch_image_ms": statistics.median(torch_warm),
        "ratio_browser_to_torch": statistics.median(warm) / statistics.median(torch_warm),
        "live_page_bytes": sum(live_bytes.values()), "page_bytes": sum(weights.values()),
        "largest_files": dict(sorted(live_bytes.items(), key=lambda kv: -kv[1])[:8]),
        "targets": {"image_max_diff_of_255": "<= 2", "word_map_min_r": ">= 0.999", "first_image_ms": "<= 2000",
                    "ready_ms": "<= 5000", "live_page_bytes": "<= 45 MB"},
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    })
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--html", default=str(ROOT / "_build" / "html"), help="a built book (make book)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    try:
        result = measure(Path(args.html).resolve(), args.repeats)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    path = OUT / "results.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, "live": result}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
