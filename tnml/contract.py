"""The contraction engine: every einsum in tnml goes through here.

Contractions are compiled once into :func:`opt_einsum.contract_expression` objects and cached by
(subscripts, shapes, backend). Structure search and ALS sweeps contract thousands of networks of
few distinct shapes; the cache makes the path search a one-off cost. Before a contraction runs,
its cost (flops) and largest intermediate are known from the path, and a contraction whose
intermediate would exceed ``max_memory`` is refused before anything is allocated.
"""

from dataclasses import dataclass
from functools import lru_cache, partial

import opt_einsum

from ._config import check_memory
from .backend import get_namespace, namespace_name

__all__ = ["einsum", "compile_einsum", "contraction_info", "ContractionInfo", "clear_cache"]


@dataclass(frozen=True)
class ContractionInfo:
    """Cost of a contraction, known before it runs.

    Attributes
    ----------
    flops : int
        Floating-point operations of the chosen path (opt_einsum counts a multiply-add as 2).
    largest_intermediate : int
        Number of elements of the largest intermediate or output tensor.
    path : tuple
        The pairwise contraction order.
    """

    subscripts: str
    shapes: tuple
    flops: int
    largest_intermediate: int
    path: tuple

    def nbytes(self, itemsize=8):
        """Bytes of the largest intermediate for elements of ``itemsize`` bytes."""
        return self.largest_intermediate * itemsize


@lru_cache(maxsize=4096)
def _compiled(subscripts, shapes, backend, optimize):
    # ``backend`` is part of the key so that expressions compiled for one namespace never
    # leak converted constants into another.
    path, path_info = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize=optimize)
    expression = opt_einsum.contract_expression(subscripts, *shapes, optimize=path)
    output_size = 1
    for dim in _output_shape(subscripts, shapes):
        output_size *= dim
    info = ContractionInfo(
        subscripts,
        shapes,
        int(path_info.opt_cost),
        int(max(path_info.largest_intermediate, output_size)),
        tuple(tuple(step) for step in path),
    )
    return expression, info


def _output_shape(subscripts, shapes):
    inputs, _, output = subscripts.replace(" ", "").partition("->")
    sizes = {}
    for term, shape in zip(inputs.split(","), shapes):
        sizes.update(zip(term, shape))
    return tuple(sizes[c] for c in output)


def _check_subscripts(subscripts, shapes):
    if not isinstance(subscripts, str) or "->" not in subscripts or "." in subscripts:
        raise ValueError(
            f"subscripts must be an explicit einsum string like 'ij,jk->ik' "
            f"(no ellipsis), got {subscripts!r}"
        )
    terms = subscripts.replace(" ", "").split("->")[0].split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"subscripts {subscripts!r} name {len(terms)} operands, got {len(shapes)}")
    sizes = {}
    for position, (term, shape) in enumerate(zip(terms, shapes)):
        if len(term) != len(shape):
            raise ValueError(
                f"operand {position} has {len(shape)} axes but subscripts "
                f"{subscripts!r} give it {len(term)}"
            )
        for label, dim in zip(term, shape):
            if sizes.setdefault(label, dim) != dim:
                raise ValueError(
                    f"index {label!r} has size {sizes[label]} and {dim} in "
                    f"subscripts {subscripts!r}"
                )


def contraction_info(subscripts, *shapes, optimize="auto"):
    """Flops and largest intermediate of a contraction, without running it.

    Parameters
    ----------
    subscripts : str
        Explicit einsum subscripts, e.g. ``"ijk,jr,kr->ir"``.
    *shapes : tuple of int
        Shapes of the operands.

    Returns
    -------
    ContractionInfo

    Examples
    --------
    >>> from tnml.contract import contraction_info
    >>> info = contraction_info("ij,jk->ik", (10, 20), (20, 30))
    >>> info.flops, info.largest_intermediate
    (12000, 300)
    """
    shapes = tuple(tuple(int(d) for d in shape) for shape in shapes)
    _check_subscripts(subscripts, shapes)
    return _compiled(subscripts, shapes, "numpy", optimize)[1]


def einsum(subscripts, *operands, optimize="auto"):
    """Contract ``operands`` in their own namespace through a cached opt_einsum expression.

    Raises :class:`tnml.MemoryBudgetError` before allocating when the largest intermediate
    would exceed ``max_memory`` (see :func:`tnml.config_context`).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.contract import einsum
    >>> einsum("ij,jk->ik", np.eye(2), np.ones((2, 3))).shape
    (2, 3)
    """
    xp = get_namespace(*operands)
    shapes = tuple(tuple(op.shape) for op in operands)
    _check_subscripts(subscripts, shapes)
    expression, info = _compiled(subscripts, shapes, namespace_name(xp), optimize)
    itemsize = max(op.dtype.itemsize for op in operands)
    check_memory(info.nbytes(itemsize), f"contraction {subscripts!r}")
    return expression(*operands, backend=namespace_name(xp))


def compile_einsum(subscripts, *shapes, xp=None, itemsize=8, optimize="auto"):
    """A contraction of fixed shapes compiled once, for loops that repeat it many times.

    The same cached expression as :func:`einsum` uses, with the checks and the memory budget
    applied once here instead of at every call: an ALS sweep or an Adam step calls it
    thousands of times on small operands, where those per-call checks would cost as much as
    the contraction.

    Parameters
    ----------
    subscripts : str
        Explicit einsum subscripts.
    *shapes : tuple of int
        Shapes of the operands the callable will receive.
    xp : array namespace or None
        Namespace of the operands (NumPy when None).
    itemsize : int, default=8
        Bytes per element, for the memory budget.

    Returns
    -------
    callable
        ``f(*operands)`` returns the contraction.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.contract import compile_einsum
    >>> matmul = compile_einsum("ij,jk->ik", (2, 2), (2, 3))
    >>> matmul(np.eye(2), np.ones((2, 3))).shape
    (2, 3)
    """
    shapes = tuple(tuple(int(d) for d in shape) for shape in shapes)
    _check_subscripts(subscripts, shapes)
    backend = namespace_name(get_namespace() if xp is None else xp)
    expression, info = _compiled(subscripts, shapes, backend, optimize)
    check_memory(info.nbytes(itemsize), f"contraction {subscripts!r}")
    return partial(expression, backend=backend)


def clear_cache():
    """Forget every compiled expression (mainly for tests and benchmarks)."""
    _compiled.cache_clear()


def cache_info():
    """Hits and misses of the expression cache, as :func:`functools.lru_cache` reports them."""
    return _compiled.cache_info()
