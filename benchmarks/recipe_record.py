"""A recipe's record for the model card: the headline numbers of one trained model folder, kept beside other weights.

The model card compares the recipe that made the shipped weights with the others (``lds train --recipe quick``, the
retrain a reader can run in 45 minutes, against ``--recipe full``). Only one model ships, so the others' numbers are
kept as a small JSON file in the shipped folder, ``recipe_<name>.json``, written by this script from the other
model's own training records (``metrics.json``, ``training_config.json``, ``evaluation.json``) with
:func:`lds.training.evaluate.recipe_summary`. Evaluations made before CLIP's name retrieval joined ``evaluate_model`` lack it;
it is then measured here on that model's CLIP (:func:`lds.training.evaluate.clip_name_retrieval`, about a minute on a CPU).

    python benchmarks/recipe_record.py path/to/quick-model lds/weights/lds-mini/recipe_quick.json --about "..."
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="a folder written by lds train (the pipeline stage's --out)")
    ap.add_argument("out", type=Path, help="where to write the record (recipe_<name>.json in the shipped folder)")
    ap.add_argument("--about", default="", help="one sentence for the card: which weights these were, and when")
    args = ap.parse_args(argv)

    from lds.training.evaluate import clip_name_retrieval, recipe_summary

    read = lambda name: json.loads((args.model / name).read_text())
    metrics, config, evaluation = read("metrics.json"), read("training_config.json"), read("evaluation.json")
    if "clip_names" not in evaluation:
        import torch

        from lds.models.clip import load_clip
        from lds.data.corpus import load_corpus
        from lds.pipeline.loading import load_pipeline

        with torch.no_grad():
            pipe = load_pipeline(str(args.model))
            clip_model = load_clip(args.model / "clip", pipe.text_encoder)
            evaluation["clip_names"] = clip_name_retrieval(clip_model, pipe.tokenizer, load_corpus())
    record = {"about": args.about, "summary": recipe_summary(metrics, evaluation, config),
              "clip_names": evaluation["clip_names"]}
    args.out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(record["summary"], indent=2))
    return record


if __name__ == "__main__":
    main()
