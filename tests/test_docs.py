"""The API reference lists every public name, and the docs extension splits the README right.

The Sphinx build itself (``python -m sphinx -W ...``) runs in ``.ci/run``; these tests need no
Sphinx and catch the commonest way the reference goes stale: a new public name not listed in
``docs/api.rst``.
"""

import importlib
import importlib.util
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.rst"

# Every module whose __all__ the reference covers.
MODULES = [
    "tnml",
    "tnml.decompositions",
    "tnml.decompositions.distributed",
    "tnml.structure_search",
    "tnml.supervised.mps",
    "tnml.supervised.regression",
    "tnml.metrics",
    "tnml.datasets",
    "tnml.tensorize",
    "tnml.backend",
    "tnml.contract",
]


def documented_names(text):
    """Full names that ``api.rst`` documents: its modules and its autosummary entries."""
    names, module, in_table = set(), None, False
    for line in text.splitlines():
        directive = re.match(r"\.\. (currentmodule|automodule):: (\S+)", line)
        if directive:
            names.add(directive.group(2))
            if directive.group(1) == "currentmodule":
                module = directive.group(2)
            in_table = False
        elif line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and line and not line[0].isspace():
            in_table = False
        elif in_table and line.strip() and not line.strip().startswith(":"):
            names.add(f"{module}.{line.strip()}")
    return names


def _resolve(full_name):
    try:
        return importlib.import_module(full_name)
    except ImportError:
        module, _, name = full_name.rpartition(".")
        return getattr(importlib.import_module(module), name)


@pytest.fixture(scope="module")
def documented():
    names = documented_names(API.read_text(encoding="utf-8"))
    # A re-exported object counts as documented under any of its public paths.
    return names, {id(_resolve(name)) for name in names}


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_is_in_the_api_reference(module_name, documented):
    names, objects = documented
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if name == "__version__":
            continue  # a string, named in the text of api.rst
        full_name = obj.__name__ if isinstance(obj, types.ModuleType) else f"{module_name}.{name}"
        if full_name not in names and id(obj) not in objects:
            missing.append(name)
    assert not missing, f"{module_name}: add {missing} to docs/api.rst"


def test_documented_names_exist(documented):
    """No entry of api.rst names something that is gone (a rename left behind)."""
    names, _ = documented
    for name in names:
        _resolve(name)


def test_api_reference_mentions_version():
    assert "tnml.__version__" in API.read_text(encoding="utf-8")


def _docs_extension():
    spec = importlib.util.spec_from_file_location(
        "tnml_docs", ROOT / "docs" / "_ext" / "tnml_docs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_sections_become_pages(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\nIntro, see [Part two](#part-two).\n\n## Part one\n\n```bash\n## not a"
        " heading\n```\n\n### Detail\n\ntext\n\n## Part two\n\nBack to [one](#part-one),"
        " [detail](#detail) and [here](#part-two).\n",
        encoding="utf-8",
    )
    out = tmp_path / "readme"
    _docs_extension().write_readme_pages(readme, out)
    assert (out / "overview.md").read_text().startswith("# Title\n")
    assert "[Part two](part-two.md#part-two)" in (out / "overview.md").read_text()
    one = (out / "part-one.md").read_text()
    assert one.startswith("# Part one\n") and "## not a heading" in one and "\n## Detail\n" in one
    two = (out / "part-two.md").read_text()
    assert "(part-one.md#part-one)" in two and "(part-one.md#detail)" in two
    assert "[here](#part-two)" in two
    toctree = (out / "toctree.inc").read_text()
    assert toctree.index("readme/overview") < toctree.index("readme/part-one")
    assert toctree.index("readme/part-one") < toctree.index("readme/part-two")


def test_gallery_has_a_page_per_example(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "demo.py").write_text('"""Do a thing.\n\nMore words.\n"""\nprint(1)\n')
    out = tmp_path / "gallery"
    _docs_extension().write_gallery(examples, out)
    page = (out / "demo.rst").read_text()
    assert page.startswith(".. _gallery-demo:") and "Do a thing\n==========" in page
    assert "More words." in page and ".. literalinclude:: ../../examples/demo.py" in page
    assert ":doc:`demo`" in (out / "index.rst").read_text()
