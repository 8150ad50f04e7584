"""Sphinx fixes for the rendered book.

jupyter-book 1 registers sphinx-thebe's inline configuration script twice on a page (its
``env-before-read-docs`` handler runs once per read pass), which makes the browser throw
"Identifier 'THEBE_JS_URL' has already been declared". This drops repeated scripts from each page.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        name = getattr(script, "filename", script) or ""  # an inline script's is None or ''
        key = (str(name), tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
