"""Tables and figures of an audit, and its offline HTML report.

Chapter 12 (Audits) shows the same figures: the chapter and ``DIR/report.html`` call these functions
on the results table (:func:`lds.audit.store.load_results`), so the book and the report cannot disagree.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from lds.instruments.display import Table, for_figure

# Unmarked emoji yellow, then the five Fitzpatrick-based tones as Noto draws them (approximately)
TONE_COLOURS = {"none": "#ffcc4d", "light": "#f7dece", "medium-light": "#f3d2a2", "medium": "#d5ab88",
                "medium-dark": "#af7e57", "dark": "#7c533e"}


def _scales(rows) -> list[float]:
    return sorted({r["guidance_scale"] for r in rows})


def by_scale(rows) -> list[dict]:
    """Per guidance scale: images, share drawn right, median rank of the named emoji, image measures."""
    out = []
    for g in _scales(rows):
        rs = [r for r in rows if r["guidance_scale"] == g]
        named = [r for r in rs if r["target"] >= 0]
        out.append({
            "guidance_scale": g, "images": len(rs),
            "right": sum(r["right"] for r in named), "named": len(named),
            "share_right": sum(r["right"] for r in named) / len(named) if named else float("nan"),
            "median_rank": float(np.median([r["target_rank"] for r in named])) if named else float("nan"),
            "saturation": float(np.mean([r["saturation"] for r in rs])),
            "out_of_range": float(np.mean([r["out_of_range"] for r in rs])),
            "distance_from_unconditional": float(np.mean([r["distance_from_unconditional"] for r in rs])),
        })
    return out


def tone_table(rows, method: str = "colour", only_right: bool = False) -> list[dict]:
    """Per guidance scale: how many images were read as unmarked (``none``) and as each tone.

    ``only_right`` keeps the images whose nearest corpus emoji is the named one in some tone: the
    tone readers (chapter 7) assume the image shows the gesture, and give any other image a tone too.
    """
    from lds.data.corpus import TONE_NAMES

    out = []
    for g in _scales(rows):
        labels = [r[f"tone_{method}"] for r in rows if r["guidance_scale"] == g and r[f"tone_{method}"]
                  and (r["right"] or not only_right)]
        if labels:
            out.append({"guidance_scale": g, "images": len(labels), **{t: labels.count(t) for t in TONE_NAMES}})
    return out


def language_table(rows) -> list[dict]:
    """Per language and scale: images, how many the model drew right (the named emoji's base is nearest),
    and the same count for the same seeds' unconditional images (the floor)."""
    from lds.data.corpus import LANGUAGES

    out = []
    for lang in [x for x in LANGUAGES if any(r["lang"] == x for r in rows)]:
        for g in _scales(rows):
            rs = [r for r in rows if r["lang"] == lang and r["guidance_scale"] == g and r["target"] >= 0]
            if rs:
                out.append({"lang": lang, "guidance_scale": g, "images": len(rs), "right": sum(r["right"] for r in rs),
                            "share_right": sum(r["right"] for r in rs) / len(rs),
                            "share_right_unconditional": sum(r["right_unconditional"] for r in rs) / len(rs)})
    return out


def cell_table(images, rows, max_groups: int | None = None) -> list[dict]:
    """Per (prompt group, scale): diversity across seeds and the pixel-mean image (``mean_image``, (3, H, W)).

    ``images``: the run folder's :class:`lds.audit.store.StoredImages`."""
    import torch

    from lds.measures import diversity, mean_image

    groups = list(dict.fromkeys(r["group"] for r in rows))[:max_groups]
    cells = []
    for grp in groups:
        for g in _scales(rows):
            rs = [r for r in rows if r["group"] == grp and r["guidance_scale"] == g]
            x = torch.from_numpy(images.of(rs)).permute(0, 3, 1, 2).float() / 255.0
            cells.append({"group": grp, "guidance_scale": g, "images": len(rs), "diversity": diversity(x),
                          "mean_image": mean_image(x)})
    return cells


# ------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------

def plot_tone_shares(rows, method: str = "colour", title: str | None = None, only_right: bool = False):
    """Stacked bars: the share of images read as unmarked or as each tone, at each guidance scale (counts above)."""
    import matplotlib.pyplot as plt

    from lds.data.corpus import TONE_NAMES

    table = tone_table(rows, method, only_right)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = np.arange(len(table))
    bottom = np.zeros(len(table))
    for t in TONE_NAMES:
        share = np.array([row[t] / row["images"] for row in table])
        ax.bar(xs, share, bottom=bottom, color=TONE_COLOURS[t], edgecolor="#444", linewidth=0.4,
               label="unmarked (yellow)" if t == "none" else t)
        bottom += share
    for x, row in zip(xs, table):
        ax.text(x, 1.02, f"n={row['images']}", ha="center", fontsize=8)
    ax.set_xticks(xs, [f"{row['guidance_scale']:g}" for row in table])
    ax.set_xlabel("guidance scale")
    ax.set_ylabel(f"share of images (tone read by {method})")
    ax.set_ylim(0, 1.12)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title(title or "Which tone the model draws when the prompt names none", fontsize=10)
    fig.tight_layout()
    return fig


def plot_languages(rows, guidance_scale: float | None = None, title: str | None = None):
    """Bars: the share of images that show the named emoji, per prompt language (counts on the bars)."""
    import matplotlib.pyplot as plt

    table = language_table(rows)
    g = guidance_scale if guidance_scale is not None else max(r["guidance_scale"] for r in table)
    table = [r for r in table if r["guidance_scale"] == g]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    xs = np.arange(len(table))
    ax.bar(xs, [r["share_right"] for r in table], color="#4c72b0", label=f"prompt (guidance {g:g})")
    ax.scatter(xs, [r["share_right_unconditional"] for r in table], color="k", marker="_", s=200, zorder=3,
               label="same seeds, unconditional (floor)")
    for x, r in zip(xs, table):
        ax.text(x, r["share_right"] + 0.02, f"{r['right']}/{r['images']}", ha="center", fontsize=7, rotation=90)
    ax.set_xticks(xs, [r["lang"] for r in table])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("share drawn right")
    ax.set_xlabel("language of the prompt")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title or "The same emoji, named in each language", fontsize=10)
    fig.tight_layout()
    return fig


def plot_by_scale(rows):
    """Three panels against the guidance scale: share drawn right, saturation and out-of-range, distance
    from the unconditional image."""
    import matplotlib.pyplot as plt

    t = by_scale(rows)
    g = [r["guidance_scale"] for r in t]
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
    axes[0].plot(g, [r["share_right"] for r in t], "o-")
    axes[0].set_ylabel("share drawn right")
    axes[1].plot(g, [r["saturation"] for r in t], "o-", label="saturation")
    axes[1].plot(g, [r["out_of_range"] for r in t], "s--", label="out of range")
    axes[1].legend(fontsize=7)
    axes[2].plot(g, [r["distance_from_unconditional"] for r in t], "o-")
    axes[2].set_ylabel("RMS distance from\nunconditional image")
    for ax in axes:
        ax.set_xlabel("guidance scale")
    fig.tight_layout()
    return fig



def plot_mean_images(images, rows, max_groups: int = 8):
    """Grid: the pixel-mean image of every seed, per prompt (rows) and guidance scale (columns),
    with the diversity across those seeds. ``images``: the run folder's :class:`lds.audit.store.StoredImages`."""
    import matplotlib.pyplot as plt

    cells = cell_table(images, rows, max_groups)
    groups = list(dict.fromkeys(c["group"] for c in cells))
    scales = _scales(rows)
    fig, axes = plt.subplots(len(groups), len(scales), figsize=(1.3 * len(scales) + 1.5, 1.35 * len(groups) + 0.4),
                             squeeze=False)
    for c in cells:
        ax = axes[groups.index(c["group"]), scales.index(c["guidance_scale"])]
        ax.imshow(c["mean_image"].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        ax.set_title(f"s={c['guidance_scale']:g} div {c['diversity']:.2f}", fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    for r, grp in enumerate(groups):
        axes[r, 0].set_ylabel(for_figure(grp[:18], "?"), fontsize=7)
    fig.suptitle(f"Mean image over {rows and max(c['images'] for c in cells)} seeds per cell", fontsize=9)
    fig.tight_layout()
    return fig


def plot_samples(images, rows, guidance_scale: float | None = None, max_groups: int = 8, max_seeds: int = 8):
    """Grid of stored images: prompts (rows) x seeds (columns) at one guidance scale.
    ``images``: the run folder's :class:`lds.audit.store.StoredImages`."""
    import matplotlib.pyplot as plt

    g = guidance_scale if guidance_scale is not None else max(_scales(rows))
    groups = list(dict.fromkeys(r["prompt"] for r in rows))[:max_groups]
    seeds = sorted({r["seed"] for r in rows})[:max_seeds]
    fig, axes = plt.subplots(len(groups), len(seeds), figsize=(1.1 * len(seeds) + 1.5, 1.1 * len(groups) + 0.4),
                             squeeze=False)
    for i, p in enumerate(groups):
        rs = [r for r in rows if r["prompt"] == p and r["guidance_scale"] == g and r["seed"] in seeds]
        rs.sort(key=lambda r: r["seed"])
        for j, (r, im) in enumerate(zip(rs, images.of(rs))):
            axes[i, j].imshow(im, interpolation="nearest")
            axes[i, j].set_title(for_figure(r["tone_colour"] or ("right" if r["right"] else r["nearest_name"][:12]), "?"), fontsize=6)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(for_figure(p[:18], "?"), fontsize=7)
    fig.suptitle(f"Samples at guidance {g:g} (title: tone read, or nearest corpus emoji)", fontsize=9)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# The HTML report: everything inline, nothing fetched
# ------------------------------------------------------------------------------------------------

def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(rows: list[dict]) -> str:
    """An HTML table of ``rows`` for the report (the mean images are shown as figures, not as cells)."""
    return Table([{k: v for k, v in r.items() if k != "mean_image"} for r in rows], decimals=3).to_html()


def write_report(out, spec, rows, counts) -> Path:
    """``out/report.html``: counts, tables and figures, with every image inline (opens offline)."""
    from lds.audit.store import StoredImages, atomic_write

    out = Path(out)
    images = StoredImages(out)  # the two image figures share it: each shard's images read once
    parts = [f"<h1>Audit: {html.escape(spec.name)}</h1>", f"<p>{html.escape(spec.description)}</p>",
             f"<p><b>{counts['images']}</b> images from <b>{counts['shards_done']}</b> of {counts['shards']} shards "
             f"(model {html.escape(spec.model)}, {spec.num_inference_steps} steps, seeds {spec.seed_start}.."
             f"{spec.seed_start + spec.seeds - 1}, guidance scales {', '.join(f'{g:g}' for g in spec.guidance_scales)})."
             " Results: <code>results.parquet</code>, <code>results.csv</code> (one row per image).</p>"]
    if rows:
        parts += ["<h2>By guidance scale</h2>", _table(by_scale(rows)), _png(plot_by_scale(rows))]
        if tone_table(rows):
            parts += ["<h2>Skin tone read from colour</h2>", _table(tone_table(rows)),
                      _png(plot_tone_shares(rows)), "<h3>Read by nearest variant</h3>",
                      _table(tone_table(rows, "nearest")),
                      "<h3>Only images whose nearest corpus emoji is the named one (in any tone)</h3>",
                      _table(tone_table(rows, only_right=True))]
        if len({r["lang"] for r in rows if r["lang"]}) > 1:
            parts += ["<h2>By language</h2>", _table(language_table(rows)), _png(plot_languages(rows))]
        parts += ["<h2>Mean image and diversity per cell</h2>", _png(plot_mean_images(images, rows)),
                  "<h2>Samples</h2>", _png(plot_samples(images, rows))]
    import yaml

    parts += ["<h2>Spec</h2>", f"<pre>{html.escape(yaml.safe_dump(spec.model_dump(), sort_keys=False, allow_unicode=True))}</pre>"]
    receipt = out / "receipt.json"
    if receipt.is_file():
        parts += ["<h2>Receipt</h2>", f"<pre>{html.escape(json.dumps(json.loads(receipt.read_text()), indent=1))}</pre>"]
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>lds audit: "
            f"{html.escape(spec.name)}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
            "table{border-collapse:collapse;font-size:85%}td,th{border:1px solid #ccc;padding:2px 6px}"
            "img{max-width:100%}</style></head><body>" + "\n".join(parts) + "</body></html>")
    atomic_write(out / "report.html", lambda f: f.write(page.encode()))
    return out / "report.html"
