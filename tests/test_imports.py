"""The layering rules of DESIGN.md, checked on the source (``ast``, nothing imported):

- no import cycle between tnml's modules, counting the imports inside functions too (deferring
  an import to call time hides a cycle from Python, not from a reader); a package's
  ``__getattr__`` (PEP 562) re-exporting a name from a layer above, as
  ``tnml.structure_search.StructureSearch`` does, is a facade and not counted;
- a package imports another package's public names only: nothing whose dotted path has a
  ``_private`` part below the common ancestor (the root's private modules, such as
  ``tnml._validation``, serve every subpackage).
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "tnml"


def _modules():
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = (path, parts[-1] == "__init__")
    return modules


MODULES = _modules()


def _package(module):
    return module if MODULES[module][1] else module.rpartition(".")[0]


def _imports(module):
    """``(target module, imported name or None, line)`` for every import of a tnml module."""
    path, is_init = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    facades = set()
    if is_init:
        for top in tree.body:
            if isinstance(top, ast.FunctionDef) and top.name == "__getattr__":
                facades.update(ast.walk(top))
    for node in ast.walk(tree):
        if node in facades:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tnml":
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(module).split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "tnml":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # `from . import backend`: the module itself
                    yield sub, None, node.lineno
                else:
                    yield target, alias.name, node.lineno


def test_no_import_cycle():
    graph = {m: sorted({t for t, _, _ in _imports(m) if t in MODULES and t != m}) for m in MODULES}
    # A package's __init__ re-exports its modules; a module importing a name from its own
    # package's __init__ would close a loop through it, so __init__ edges count too.
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for module in graph:
        if module not in state:
            visit(module)
    # A parent package's __init__ importing its children is not a cycle of its own making;
    # report cycles that close through a non-__init__ module only.
    real = [c for c in cycles if any(not MODULES[m][1] for m in c[:-1]) and not _via_init(c)]
    assert not real, "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)


def _via_init(cycle):
    """A cycle made only by a package __init__ and the children it imports (the usual
    re-export: ``pkg/__init__`` imports ``pkg.a``, which imports ``pkg.b``...) is closed by
    an edge into the __init__ from one of its own descendants, which Python resolves because
    the names come from an already-imported child module."""
    return any(
        MODULES[m][1] and all(other.startswith(m + ".") or other == m for other in cycle)
        for m in cycle
    )


def _private_part(dotted, below):
    """Whether ``dotted`` has a part starting with '_' after its first ``below`` parts."""
    return any(p.startswith("_") and not p.startswith("__") for p in dotted.split(".")[below:])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_from_another_package(module):
    own = _package(module)
    bad = []
    for target, name, line in _imports(module):
        target_package = _package(target) if target in MODULES else target
        if target_package == own or own.startswith(target_package + "."):
            continue  # its own package, or an ancestor's (tnml._validation, tnml._config)
        common = 0
        for a, b in zip(own.split("."), target.split(".")):
            if a != b:
                break
            common += 1
        dotted = target if name is None else f"{target}.{name}"
        if _private_part(dotted, common):
            bad.append(f"line {line}: {dotted}")
    assert not bad, f"{module} imports private names of another package: {bad}"
