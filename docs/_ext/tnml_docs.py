"""Sphinx extension that writes the pages taken from the repository: README sections and gallery.

At ``builder-inited`` (before Sphinx reads the sources) it writes

* ``docs/readme/<section>.md``: one page per ``##`` section of ``README.md`` (the text before
  the first one is ``overview.md``), headings raised one level, links to another section's
  anchor pointed at that section's page; ``docs/readme/toctree.inc`` lists them in README order;
* ``docs/gallery/<example>.rst``: one page per ``examples/*.py``, with the example's module
  docstring, its figure if ``docs/_static/gallery/<example>.png`` exists (made by
  ``docs/gallery_figures.py``; the build never runs the examples) and the script itself;
  ``docs/gallery/index.rst`` shows every figure with a link to its page.

Both folders are generated (git-ignored); a file is rewritten only when its text changes, so an
unchanged README or example does not make Sphinx rebuild its page.
"""

import ast
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent

_FENCE = re.compile(r"^(```|~~~)")
_LINK_TO_ANCHOR = re.compile(r"\]\(#([^)\s]+)\)")


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _remove_others(folder, kept):
    """Delete the pages of ``folder`` not in ``kept``: a section or example that is gone would
    otherwise leave a page in no toctree, which fails the -W build."""
    for path in folder.iterdir():
        if path.is_file() and path.name not in kept:
            path.unlink()


def _slug(title):
    """GitHub's (and MyST's) anchor of a heading: lower case, punctuation dropped, spaces -> -."""
    title = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return title.replace(" ", "-")


def split_readme(text):
    """``[(page name, title, markdown lines)]``: the overview, then one entry per ``##`` section.

    Headings inside fenced code blocks are not headings.
    """
    pages = [["overview", None, []]]
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced and line.startswith("# ") and pages[0][1] is None:
            pages[0][1] = line[2:].strip()
            continue
        if not fenced and line.startswith("## "):
            title = line[3:].strip()
            pages.append([_slug(title), title, []])
            continue
        if not fenced and line.startswith("###"):
            line = line[1:]  # the section's title is the page's H1: sub-headings move up a level
        pages[-1][2].append(line)
    return pages


def write_readme_pages(readme=ROOT / "README.md", out=DOCS / "readme"):
    pages = split_readme(readme.read_text(encoding="utf-8"))
    # Which page holds each heading's anchor, so that ``[x](#anchor)`` still lands there.
    anchors = {}
    for name, title, lines in pages:
        if title is not None:
            anchors[_slug(title)] = name
        for line in lines:
            if line.startswith("## "):
                anchors[_slug(line.lstrip("#"))] = name

    for name, title, lines in pages:

        def relink(match, page=name):
            target = anchors.get(match.group(1))
            if target is None or target == page:
                return match.group(0)
            return f"]({target}.md#{match.group(1)})"

        body = "\n".join(_LINK_TO_ANCHOR.sub(relink, line) for line in lines).strip()
        _write(out / f"{name}.md", f"# {title or 'Overview'}\n\n{body}\n")
    entries = "\n".join(f"   readme/{name}" for name, _, _ in pages)
    _write(
        out / "toctree.inc",
        f".. toctree::\n   :maxdepth: 2\n   :caption: User guide (the README)\n\n{entries}\n",
    )
    _remove_others(out, {f"{name}.md" for name, _, _ in pages} | {"toctree.inc"})


def _underline(title, char):
    return f"{title}\n{char * len(title)}\n"


def write_gallery(examples=ROOT / "examples", out=DOCS / "gallery"):
    figures = DOCS / "_static" / "gallery"
    cards, names = [], []
    for script in sorted(examples.glob("*.py")):
        tree = ast.parse(script.read_text(encoding="utf-8"))
        docstring = ast.get_docstring(tree) or script.stem
        # The page shows the docstring as text; the listing starts after it.
        first_code_line = tree.body[0].end_lineno + 1 if ast.get_docstring(tree) else 1
        title, _, body = docstring.partition("\n")
        figure = figures / f"{script.stem}.png"
        title = title.strip().rstrip(".")
        parts = [f".. _gallery-{script.stem}:\n", _underline(title, "=")]
        parts.append(f"``examples/{script.name}``\n")
        if figure.exists():
            parts.append(
                f".. image:: ../_static/gallery/{figure.name}\n   :alt: figure written by "
                f"examples/{script.name}\n"
            )
            cards.append(
                f".. figure:: ../_static/gallery/{figure.name}\n   :figclass: gallery-card\n"
                f"   :target: {script.stem}.html\n\n   :doc:`{script.stem}`\n"
            )
        else:
            cards.append(f"* :doc:`{script.stem}` (no figure committed)\n")
        parts.append(body.strip() + "\n")
        parts.append(
            f".. literalinclude:: ../../examples/{script.name}\n   :language: python\n"
            f"   :lines: {first_code_line}-\n   :caption: examples/{script.name}\n"
        )
        _write(out / f"{script.stem}.rst", "\n".join(parts))
        names.append(script.stem)
    index = [
        _underline("Gallery", "="),
        "The scripts in ``examples/`` and the figures they write. The figures were made by "
        "``python docs/gallery_figures.py`` (each example with its default settings); the "
        "documentation build does not run the examples.\n",
        *cards,
        ".. toctree::\n   :hidden:\n\n" + "\n".join(f"   {name}" for name in names) + "\n",
    ]
    _write(out / "index.rst", "\n".join(index))
    _remove_others(out, {f"{name}.rst" for name in names} | {"index.rst"})


def _generate(app):
    write_readme_pages()
    write_gallery()


def setup(app):
    app.connect("builder-inited", _generate)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
