"""Sphinx extension for the book (loaded through _config.yml, ``sphinx.local_extensions``).

With Sphinx 7.4, inline scripts that extensions add with ``app.add_js_file(None, body=...)`` while
reading (sphinx-thebe, sphinx-togglebutton) appear twice on every page: once as added (filename
None) and once re-added from the registry (filename ''), which Sphinx does not recognise as the
same script. The second ``const THEBE_JS_URL = ...`` is an error in the browser. This keeps the
first copy of each identical script (same file, same attributes, same body). The browser test
(tests/test_browser.py) fails on any console error, so it would notice if this stopped working.
"""

from __future__ import annotations


def _key(js) -> tuple:
    # An inline script is registered with filename None and re-added from the registry with ''.
    filename = getattr(js, "filename", js) or ""
    return str(filename), tuple(sorted((getattr(js, "attributes", None) or {}).items()))


def dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        if _key(js) not in seen:
            seen.add(_key(js))
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)  # after every extension added its scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
