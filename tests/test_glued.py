"""lds.book.glued: glued paragraphs read with their values filled in, and compared between two executions."""

import json

from lds.book.glued import compare, fill, main


def _executed(folder, values: dict, prose: str, name="01_probe"):
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "application/papermill.record/"
    outputs = [{"output_type": "display_data", "metadata": {"scrapbook": {"name": k, "mime_prefix": prefix}},
                "data": {f"{prefix}text/plain": repr(v)}} for k, v in values.items()]
    nb = {"cells": [{"cell_type": "code", "source": "record(...)", "outputs": outputs, "metadata": {}},
                    {"cell_type": "markdown", "source": prose, "metadata": {}}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / f"{name}.ipynb").write_text(json.dumps(nb))
    return folder


PROSE = ("An unglued paragraph.\n\n"
         "Top-5 was {glue:text}`top5:.0%` for people, against {glue:text}`others:.2f`,\n"
         "on {glue:text}`n:,d` images.\n\n"
         "Steps: {glue:text}`steps`.")


def test_values_are_filled_with_their_format():
    assert fill("{glue:text}`a:.0%` and {glue:text}`b:,d` and {glue:text}`c`", {"a": 0.514, "b": 3812, "c": "x"}) \
        == "51% and 3,812 and x"
    assert fill("{glue:text}`gone:.2f`", {}) == "[gone missing]"
    assert fill("{glue:text}`s:.2f`", {"s": "text"}) == "[s: bad format '.2f']"


def test_only_changed_paragraphs_are_listed_against_an_earlier_execution(tmp_path, capsys):
    old = _executed(tmp_path / "old", {"top5": 0.51, "others": 0.2, "n": 3812, "steps": 25}, PROSE)
    new = _executed(tmp_path / "new", {"top5": 0.83, "others": 0.2, "n": 3812, "steps": 25}, PROSE)
    assert len(compare(new)) == 2  # the two glued paragraphs, not the plain one
    (chapter, before, after), = compare(new, old)
    assert chapter == "01_probe" and "51% for people" in before and "83% for people" in after
    assert compare(old, old) == []
    assert main([str(new), "--before", str(old)]) == 0
    assert "83% for people, against 0.20,\non 3,812 images." in capsys.readouterr().out


def test_a_missing_record_fails_the_command(tmp_path):
    book = _executed(tmp_path / "ex", {"top5": 0.5, "others": 0.1, "n": 1}, PROSE)  # no "steps"
    assert main([str(book)]) == 1
    assert main([str(tmp_path / "nowhere")]) == 2


def test_the_runners_layout_is_read_and_an_empty_folder_is_an_error(tmp_path, capsys):
    """make book writes executed chapters to _build/executed/notebooks: the command takes _build/executed."""
    _executed(tmp_path / "old" / "notebooks", {"top5": 0.51, "others": 0.2, "n": 3812, "steps": 25}, PROSE)
    _executed(tmp_path / "new" / "notebooks", {"top5": 0.83, "others": 0.2, "n": 3812, "steps": 25}, PROSE)
    assert len(compare(tmp_path / "new", tmp_path / "old")) == 1
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no executed chapters" in capsys.readouterr().err
