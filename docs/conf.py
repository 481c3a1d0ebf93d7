"""Sphinx configuration of tnml's documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
# Document the checkout this file belongs to, even where another copy of tnml is installed.
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS / "_ext"))

import inspect  # noqa: E402
import shutil  # noqa: E402

import sphinx.ext.autosummary  # noqa: E402

import tnml  # noqa: E402

project = "tnml"
author = "the tnml developers"
copyright = "the tnml developers"
version = release = tnml.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "tnml_docs",  # README sections and the examples' gallery as pages (docs/_ext)
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_static_path = ["_static"]
html_css_files = ["gallery.css"]
html_theme = "alabaster"

# One stub page per public name, written from api.rst's autosummary tables into generated/. The
# folder is rewritten on every build: a stub left from a renamed name would be a page in no
# toctree, which fails the -W build.
shutil.rmtree(DOCS / "generated", ignore_errors=True)
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types

# numpydoc renders the docstrings; the class templates list the members themselves, so numpydoc's
# own member tables (a second stub per method) are off. No style checks beyond parsing.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

# The README's headings are link targets (e.g. ``[Contractions](#contractions)``).
myst_heading_anchors = 3

# No intersphinx: the build must not need the network.

# The estimators' pages show their own methods and the scikit-learn methods a user calls on them;
# scikit-learn's plumbing (metadata routing, set_output, HTML repr) links to scikit-learn's own
# docs and is documented there.
_SKLEARN_METHODS_SHOWN = {"fit_transform", "get_params", "set_params"}


def _skip_member(app, what, name, obj, skip, options):
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module.startswith("sklearn.") and name not in _SKLEARN_METHODS_SHOWN:
        return True
    return None


# autosummary's table shows each docstring's first sentence, but Sphinx cuts it at the first
# ". " even inside an inline literal (``X = core x_1 U_1 x_2 U_2 ... x_N U_N``), which leaves an
# unterminated literal. Where that happens, cut at the first period outside a literal instead.
_extract_summary = sphinx.ext.autosummary.extract_summary


def _first_sentence(text):
    inside = False
    i = 0
    while i < len(text):
        if text.startswith("``", i):
            inside = not inside
            i += 2
            continue
        if not inside and text[i] == "." and (i + 1 == len(text) or text[i + 1].isspace()):
            return text[: i + 1]
        i += 1
    return text


def _summary_outside_literals(doc, settings):
    summary = _extract_summary(doc, settings)
    if summary.count("``") % 2 == 0:
        return summary
    stanza = []
    for line in doc:
        if stanza and not line.strip():
            break
        if line.strip():
            stanza.append(line.strip())
    return _first_sentence(" ".join(stanza))


sphinx.ext.autosummary.extract_summary = _summary_outside_literals


def _drop_type_docstring(app, what, name, obj, options, lines):
    """A constant without a doc comment (``FORMATS = ("cp", ...)``) would show the docstring of
    its type (tuple's, dict's); show its value alone."""
    type_doc = inspect.cleandoc(type(obj).__doc__ or "")
    if what in ("data", "attribute") and type_doc and "\n".join(lines).strip() == type_doc:
        lines[:] = []


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    # Before numpydoc (priority 500) rewrites the lines.
    app.connect("autodoc-process-docstring", _drop_type_docstring, priority=400)
