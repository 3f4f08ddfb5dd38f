"""How the chapters and the audit report show text and tables: one font check, one table renderer.

**The font check.** Figures are drawn by matplotlib with its default font (DejaVu Sans), which has no
Chinese, Japanese or Korean glyphs and neither reorders nor joins right-to-left scripts: Arabic and
Persian letters come out separate and in the wrong order even where the font has them. A figure label
in such a script is replaced (:func:`for_figure`), and the notebook prints the text itself, which the
browser renders in any script. :func:`undrawable` is the one test of what the font draws.

**The table renderer.** :class:`Table` is one table with three renderings: Markdown for a notebook
(``display(Table(...))``; myst-nb and Jupyter render it), HTML for the audit's offline report
(:meth:`Table.to_html`), and aligned plain text for a terminal (``print(Table(...))``). Every
rendering formats a value the same way (:func:`cell_text`).
"""

from __future__ import annotations

import html

# Scripts that are written right to left or whose letters join or combine by shaping rules (Hebrew,
# Arabic, Syriac, Thaana, N'Ko; the Indic scripts, Thai, Lao, Tibetan, Myanmar; Khmer, Mongolian; the
# Hebrew and Arabic presentation forms): matplotlib draws them glyph by glyph, left to right.
UNSHAPED_RANGES = ((0x0590, 0x08FF), (0x0900, 0x109F), (0x1780, 0x18AF), (0xFB1D, 0xFDFF), (0xFE70, 0xFEFF))


def undrawable(text: str) -> list[str]:
    """The characters of ``text`` that matplotlib's default font cannot draw as they are read: those it has no
    glyph for, and those of a script it does not shape (:data:`UNSHAPED_RANGES`). Whitespace is always drawable."""
    from matplotlib.font_manager import FontProperties, findfont, get_font

    font = get_font(findfont(FontProperties()))
    return [c for c in text if not c.isspace()
            and (not font.get_char_index(ord(c)) or any(a <= ord(c) <= b for a, b in UNSHAPED_RANGES))]


def font_draws(text: str) -> bool:
    """Whether a figure can show ``text`` as it is (:func:`undrawable` finds nothing)."""
    return not undrawable(text)


def for_figure(text: str, replacement: str | None = None) -> str:
    """``text`` with each character the font cannot draw replaced by ``replacement``, or, by default, by its code
    point (``U+7B11``), so that a figure never shows a missing-glyph box and matplotlib prints no warning."""
    bad = set(undrawable(text))
    if not bad:
        return text
    if replacement is not None:
        return "".join(replacement if c in bad else c for c in text)
    return " ".join(f"U+{ord(c):04X}" if c in bad else c for c in text)


def cell_text(value, decimals: int = 2, thousands: bool = False) -> str:
    """A table cell's text: nothing for ``None``, ``decimals`` places for floats, and integers as they are or, with
    ``thousands``, with separators (parameter counts, not token ids)."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if thousands else str(value)
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    return str(value)


class Table:
    """``rows`` (sequences, or dicts read in the order of ``headers``) under ``headers``; without ``headers``,
    ``rows`` must be dicts and their first row's keys are the columns. ``decimals`` and ``thousands``: see
    :func:`cell_text`."""

    def __init__(self, rows, headers=None, decimals: int = 2, thousands: bool = False):
        rows = list(rows)
        if headers is None:
            headers = list(rows[0]) if rows else []
        self.headers = list(headers)
        self.rows = [[r.get(h) for h in self.headers] if isinstance(r, dict) else list(r) for r in rows]
        self.decimals, self.thousands = decimals, thousands

    def _cells(self):
        return [[cell_text(v, self.decimals, self.thousands) for v in row] for row in self.rows]

    def to_markdown(self) -> str:
        def esc(s):
            s = html.escape(s, quote=False).replace("|", "\\|").replace("\n", " ")
            return s.replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")

        lines = ["| " + " | ".join(esc(str(h)) for h in self.headers) + " |", "|" + "---|" * len(self.headers)]
        return "\n".join(lines + ["| " + " | ".join(esc(c) for c in row) + " |" for row in self._cells()])

    def to_html(self) -> str:
        if not self.rows:
            return "<p>(none)</p>"
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._cells())
        return f"<table><tr>{head}</tr>{body}</table>"

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max([len(str(h))] + [len(row[i]) for row in cells]) for i, h in enumerate(self.headers)]
        lines = ["  ".join(str(h).ljust(w) for h, w in zip(self.headers, widths)), "  ".join("-" * w for w in widths)]
        return "\n".join(lines + ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells])

    __repr__ = __str__  # a terminal, and the plain-text part of a notebook output

    def _repr_markdown_(self) -> str:
        return self.to_markdown()
