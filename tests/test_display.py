"""lds.instruments.display: the one font check and the one table renderer (issue 29)."""

from __future__ import annotations

from lds.instruments.display import Table, cell_text, font_draws, for_figure, undrawable


def test_the_font_check_refuses_what_matplotlib_cannot_draw_as_read():
    assert font_draws("grinning face") and font_draws("cara sonriente, ¿qué? Ёлка — «ok»")
    assert undrawable("笑顔 smile") == ["笑", "顔"]  # DejaVu Sans has no CJK glyphs
    assert not font_draws("وجه مبتسم")  # the font has Arabic letters, but matplotlib neither joins nor reorders them
    assert not font_draws("चेहरा")  # Devanagari needs shaping too
    assert font_draws("  \t")


def test_for_figure_replaces_only_what_cannot_be_drawn():
    assert for_figure("smile") == "smile"
    assert for_figure("a笑") == "a U+7B11"
    assert for_figure("a 笑", "?") == "a ?"


def test_one_table_three_renderings():
    t = Table([("a|b", 1234, 0.5), ("<x>", None, 2.0)], ["text", "n", "share"])
    assert t.to_markdown().splitlines() == ["| text | n | share |", "|---|---|---|",
                                            "| a\\|b | 1234 | 0.50 |", "| &lt;x&gt; |  | 2.00 |"]
    assert t._repr_markdown_() == t.to_markdown()
    assert t.to_html() == ("<table><tr><th>text</th><th>n</th><th>share</th></tr><tr><td>a|b</td><td>1234</td>"
                           "<td>0.50</td></tr><tr><td>&lt;x&gt;</td><td></td><td>2.00</td></tr></table>")
    assert str(t).splitlines() == ["text  n     share", "----  ----  -----", "a|b   1234  0.50 ", "<x>         2.00 "]
    assert repr(t) == str(t)
    dicts = Table([{"component": "unet", "parameters": 1234567}], thousands=True)
    assert dicts.headers == ["component", "parameters"] and "1,234,567" in str(dicts)
    assert Table([], ["a"]).to_html() == "<p>(none)</p>"
    assert cell_text(True) == "True" and cell_text(3) == "3" and cell_text(0.12345, 3) == "0.123"
