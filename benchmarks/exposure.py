"""Exposure: how often each kind of emoji reaches the U-Net after the web is drawn and filtered.

The lds-mini issue asks whether one-image kinds (objects, food, animals, symbols) fail because the U-Net sees them
less often than people and hands, which come in six skin tones. This counts, for a training run's filtered web
(``<workdir>/web.npz``, written by ``lds train``'s ``filter`` stage), the kept pairs whose caption names the image,
per image and per shape family (an emoji and its tone variants), with :func:`lds.instruments.ranking.exposure`, the function
chapter 2's ranking section would call. One JSON object per run is appended to ``benchmarks/exposure.jsonl``.

    python benchmarks/exposure.py .lds-cache/train-full --name full-recipe

Costs seconds: no model is loaded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "exposure.jsonl"


def main(argv=None) -> dict:
    import numpy as np

    from lds.data.corpus import load_corpus
    from lds.instruments.ranking import exposure

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path, help="an `lds train` work folder whose filter stage is done")
    ap.add_argument("--name", required=True, help="the row's name in exposure.jsonl")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    web_file = args.workdir / "web.npz"
    if not web_file.exists():
        raise SystemExit(f"{web_file} does not exist: run `lds train --workdir {args.workdir}` at least "
                         "through its filter stage first")
    web = dict(np.load(web_file))
    result = exposure(web, web["keep"], load_corpus())
    row = {"date": time.strftime("%Y-%m-%d %H:%M"), "name": args.name, "workdir": str(args.workdir),
           "note": args.note, **result}
    with args.out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{'kind':8} {'images':>6} {'families':>8} {'img/fam':>7} {'pairs/img':>9} {'pairs/fam':>9} "
          f"{'never':>6} {'share':>6} {'balanced':>8}")
    for kind, r in result["by_kind"].items():
        print(f"{kind:8} {r['images']:6d} {r['families']:8d} {r['images_per_family']:7.2f} "
              f"{r['median_pairs_per_image']:9.1f} {r['median_pairs_per_family']:9.1f} "
              f"{r['never_reached_share']:6.3f} {r['share_of_training']:6.3f} {r['share_if_family_balanced']:8.3f}")
    return row


if __name__ == "__main__":
    main()
