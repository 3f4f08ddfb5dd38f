"""lds.settings.parse_value: one reading of a value typed as text, for the audit, the chapters and the benchmarks."""

from __future__ import annotations

import pytest

from lds.settings import parse_value


@pytest.mark.parametrize("text, value", [("4", 4), ("2.5", 2.5), ("1e-4", 1e-4), ("None", None), ("null", None),
                                         ("True", True), ("true", True), ("[0, 7.5]", [0, 7.5]), ("{a: 1}", {"a": 1}),
                                         ("'quoted'", "quoted"), ("waving hand", "waving hand"), ("none", "none"),
                                         ("", ""), ("a: b: c", "a: b: c")])
def test_parse_value(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_the_audit_and_the_chapters_read_a_setting_alike(tmp_path):
    from lds.audit.spec import parse_overrides
    from lds.book.runner import Parameter, coerce

    assert parse_overrides(["guidance_scales=[0, 7.5]", "seeds=4", "model=lds-mini"]) == {
        "guidance_scales": [0, 7.5], "seeds": 4, "model": "lds-mini"}
    assert coerce("[0, 7.5]", Parameter("guidance_scales", [1.0], "list")) == [0, 7.5]
    assert coerce("4", Parameter("seeds", 2, "int")) == 4
    assert coerce("no", Parameter("prompt", "x", "str")) == "no"  # a string parameter is never parsed
