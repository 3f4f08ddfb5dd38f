"""Values typed as text: the one parser behind every ``KEY=VALUE`` lds reads from a command line.

``lds audit --set`` (:func:`lds.audit.spec.parse_overrides`), a chapter's parameters given to ``lds rerun`` or
``make book`` (:func:`lds.book.runner.coerce`, which then checks the value against the chapter's default) and the
benchmarks' ``--set FIELD=VALUE`` all read a value with :func:`parse_value`, so the same text means the same value
everywhere.
"""

from __future__ import annotations

import ast


def parse_value(text):
    """``text`` read as the Python literal it spells (``3``, ``2.5``, ``1e-4``, ``None``, ``True``, ``[0, 5]``,
    ``'a prompt'``, as in a chapter's parameters cell), else as YAML (``null``, ``true``, ``[0, 5.0]``,
    ``{a: 1}``, as in an audit spec), else as the text itself. A value that is not a string is returned as it is.

    >>> parse_value("4"), parse_value("[0, 7.5]"), parse_value("null"), parse_value("waving hand")
    (4, [0, 7.5], None, 'waving hand')
    """
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if not stripped:
        return text
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    import yaml

    try:
        value = yaml.safe_load(stripped)
    except yaml.YAMLError:
        return text
    return text if isinstance(value, str) else value
