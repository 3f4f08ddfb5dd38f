"""Dials: sliders over images computed in advance, for reading a parameter's effect live.

Chapter 8 (Classifier-free guidance) uses one for the guidance scale. Nothing is generated while
the slider moves: every position shows an image that was computed when the chapter ran, so the
dial is instant on a laptop and shows exactly what the static figure beside it shows. In the HTML
book there is no running kernel, so chapters show the static figure and display the dial only
when their ``interactive`` parameter is True (in Jupyter).
"""

from __future__ import annotations

import io

import numpy as np


def _png(image) -> bytes:
    """One (3, H, W) tensor / (H, W, 3) array in [0, 1], or a PIL image, as PNG bytes (upscaled if tiny)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        a = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = a.transpose(1, 2, 0)
        image = Image.fromarray((a.clip(0, 1) * 255).round().astype(np.uint8))
    if image.width < 256:  # small images are shown with visible pixels, not blurred
        factor = 256 // image.width
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def image_dial(images, values, description: str = "value", captions=None):
    """An ipywidgets slider over precomputed ``images`` (one per entry of ``values``).

    Integer values give an ``IntSlider``, others a ``SelectionSlider`` over the exact values (a
    float slider would offer positions that were never computed). Returns the widget box.
    """
    import ipywidgets as widgets

    values = list(values)
    if len(values) != len(images):
        raise ValueError(f"{len(values)} values but {len(images)} images: give one image per value.")
    pngs = [_png(im) for im in images]
    captions = list(captions) if captions is not None else [f"{description} = {v:g}" for v in values]
    picture = widgets.Image(value=pngs[0], format="png")
    label = widgets.Label(captions[0])
    if all(float(v).is_integer() for v in values) and values == list(range(int(values[0]), int(values[-1]) + 1)):
        slider = widgets.IntSlider(value=int(values[0]), min=int(values[0]), max=int(values[-1]),
                                   description=description)
        position = lambda v: int(v) - int(values[0])  # noqa: E731
    else:
        slider = widgets.SelectionSlider(options=[(f"{v:g}", i) for i, v in enumerate(values)], value=0,
                                         description=description)
        position = lambda v: v  # noqa: E731

    def show(change):
        i = position(change["new"])
        picture.value, label.value = pngs[i], captions[i]

    slider.observe(show, names="value")
    return widgets.VBox([slider, picture, label])


def image_strip(images, values, description: str = "value", title: str | None = None, ax_size: float = 1.6):
    """The static counterpart of :func:`image_dial`: every position side by side (a matplotlib figure)."""
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(ax_size * n, ax_size + 0.5), squeeze=False)
    for ax, im, v in zip(axes[0], images, values):
        a = np.asarray(im.detach().cpu() if hasattr(im, "detach") else im, dtype=np.float32)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = a.transpose(1, 2, 0)
        ax.imshow(a.clip(0, 1), interpolation="nearest")
        ax.set_title(f"{description} {v:g}", fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def bar_image(labels, values, title: str = "", ylabel: str = "share kept") -> np.ndarray:
    """A small bar chart as an (H, W, 3) image in [0, 1]: one position of a dial (chapter 2's threshold dial)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.4), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(list(labels), list(values), color="#4c72b0")
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba(), dtype=np.float32)[..., :3] / 255.0
