"""The contraction engine: every einsum in tnml goes through here.

Contractions are compiled once into :func:`opt_einsum.contract_expression` objects and cached by
(subscripts, shapes, backend). Structure search and ALS sweeps contract thousands of networks of
few distinct shapes; the cache makes the path search a one-off cost. Before a contraction runs,
its cost (flops) and largest intermediate are known from the path, and a contraction whose
intermediate would exceed ``max_memory`` is refused before anything is allocated.
"""

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache, partial

import opt_einsum

from ._config import check_memory
from .backend import get_namespace, namespace_name

__all__ = [
    "einsum",
    "compile_einsum",
    "compile_sliced_einsum",
    "sliced_contraction_info",
    "contraction_info",
    "ContractionInfo",
    "SlicedInfo",
    "clear_cache",
]


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


# -- sliced contractions --------------------------------------------------------------------------
@dataclass(frozen=True)
class SlicedInfo:
    """How a contraction runs in slices (see :func:`sliced_contraction_info`).

    Attributes
    ----------
    labels : str
        The sliced indices: the contraction runs once per combination of their values, with
        each operand cut to that value (an output index: the slice fills its part of the
        output; a summed one: the slices are added up).
    n_slices : int
    info : ContractionInfo
        Of one slice (flops and largest intermediate per slice).
    output_size : int
        Entries of the whole output.
    """

    labels: str
    n_slices: int
    info: ContractionInfo
    output_size: int

    @property
    def flops(self):
        """Floating-point operations of all the slices together."""
        return self.n_slices * self.info.flops

    @property
    def largest_intermediate(self):
        """Entries held at once: the output, one slice's result being added to it, and the
        slice's largest intermediate."""
        if not self.labels:
            return self.info.largest_intermediate
        return self.output_size + 2 * self.info.largest_intermediate

    def nbytes(self, itemsize=8):
        """Bytes of :attr:`largest_intermediate` for elements of ``itemsize`` bytes."""
        return self.largest_intermediate * itemsize


def _sliced_shapes(subscripts, shapes, labels):
    inputs = subscripts.replace(" ", "").split("->")[0].split(",")
    return tuple(
        tuple(1 if label in labels else dim for label, dim in zip(term, shape))
        for term, shape in zip(inputs, shapes)
    )


def _largest_labels(subscripts, shapes):
    """The indices of the largest intermediate (or output) of the greedy path: slicing any
    other index cannot make it smaller."""
    _, path_info = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize="greedy")
    sizes = path_info.size_dict
    largest, labels = -1, ""
    for step in path_info.contraction_list:
        result = step[2].split("->")[1]
        size = math.prod(sizes[c] for c in result)
        if size > largest:
            largest, labels = size, result
    return labels


@lru_cache(maxsize=1024)
def _slicing(subscripts, shapes, optimize, max_entries, keep=""):
    sliced = ""
    current = shapes
    info = _compiled(subscripts, shapes, "numpy", optimize)[1]
    sizes = {}
    for term, shape in zip(subscripts.replace(" ", "").split("->")[0].split(","), shapes):
        sizes.update(zip(term, shape))
    # Greedy, as cotengra slices: cut the index that shrinks the largest intermediate most
    # (then costs the fewest flops over all slices), among those of the largest intermediate.
    while info.largest_intermediate > max_entries:
        candidates = [c for c in _largest_labels(subscripts, current) if sizes[c] > 1]
        candidates = [c for c in candidates if c not in sliced and c not in keep]
        if not candidates:
            break
        best = None
        for label in candidates:
            trial = _sliced_shapes(subscripts, shapes, sliced + label)
            _, path_info = opt_einsum.contract_path(
                subscripts, *trial, shapes=True, optimize="greedy"
            )
            n_slices = math.prod(sizes[c] for c in sliced + label)
            score = (int(path_info.largest_intermediate), n_slices * int(path_info.opt_cost))
            if best is None or score < best[0]:
                best = (score, label)
        sliced += best[1]
        current = _sliced_shapes(subscripts, shapes, sliced)
        info = _compiled(subscripts, current, "numpy", optimize)[1]
    output_size = math.prod(_output_shape(subscripts, shapes))
    return SlicedInfo(sliced, math.prod(sizes[c] for c in sliced), info, output_size)


def sliced_contraction_info(subscripts, *shapes, max_entries, optimize="auto", keep=""):
    """How a contraction runs in slices whose largest intermediate has at most ``max_entries``.

    Contracting a densely connected network to its dense tensor (rank 2 on every bond of a
    fully connected order-8 network: an intermediate of 2^24 entries for an output of 2^16)
    needs far more memory than its result; cutting a few indices to one value at a time and
    running the contraction once per combination holds one slice's intermediates instead.
    Indices are chosen greedily (the one that shrinks the largest intermediate most), until
    the largest intermediate of a slice fits ``max_entries`` (or nothing is left to cut).

    Parameters
    ----------
    subscripts : str
    *shapes : tuple of int
    max_entries : int
        Largest intermediate wanted per slice.
    optimize : str, default="auto"
        The path optimiser of each slice.
    keep : str, default=""
        Indices never cut (e.g. the columns of a design matrix whose blocks of rows a caller
        reduces, see :func:`compile_sliced_einsum`).

    Returns
    -------
    SlicedInfo

    Examples
    --------
    >>> from tnml.contract import sliced_contraction_info
    >>> info = sliced_contraction_info("ia,ja,ka->ijk", (64, 2), (64, 2), (64, 2),
    ...                                max_entries=2**12)
    >>> info.n_slices > 1, info.info.largest_intermediate <= 2**12
    (True, True)
    """
    shapes = tuple(tuple(int(d) for d in shape) for shape in shapes)
    _check_subscripts(subscripts, shapes)
    return _slicing(subscripts, shapes, optimize, int(max_entries), keep)


def compile_sliced_einsum(
    subscripts,
    *shapes,
    max_entries,
    xp=None,
    itemsize=8,
    optimize="auto",
    blocks_only=False,
    keep="",
):
    """:func:`compile_einsum` run in slices whose intermediates hold at most ``max_entries``
    (see :func:`sliced_contraction_info`); the memory budget is checked once, for the output
    (one block of it with ``blocks_only``) and one slice.

    Parameters
    ----------
    subscripts : str
    *shapes : tuple of int
    max_entries : int
        Largest intermediate wanted per slice.
    xp : array namespace or None
    itemsize : int, default=8
    optimize : str, default="auto"
    blocks_only : bool, default=False
        The caller only iterates ``f.blocks`` and never holds the output (a streamed reduction,
        such as the normal equations of an ALS update accumulated over blocks of a design
        matrix): the budget is checked for one block and one slice instead of the output.
    keep : str, default=""
        Indices never cut (see :func:`sliced_contraction_info`).

    Returns
    -------
    callable
        ``f(*operands)`` returns the contraction; ``f.blocks(*operands)`` yields ``(index,
        block)`` pairs instead, ``block`` being ``out[index]`` (for reductions such as a norm
        that need not hold the output), in the output's index order (the last sliced output
        index fastest); ``f.info`` is the :class:`SlicedInfo`.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.contract import compile_sliced_einsum
    >>> a = np.arange(12.0).reshape(3, 4)
    >>> f = compile_sliced_einsum("ij,jk->ik", (3, 4), (4, 3), max_entries=3)
    >>> bool(np.allclose(f(a, a.T), a @ a.T)), f.info.n_slices > 1
    (True, True)
    """
    shapes = tuple(tuple(int(d) for d in shape) for shape in shapes)
    _check_subscripts(subscripts, shapes)
    sliced = _slicing(subscripts, shapes, optimize, int(max_entries), keep)
    backend = namespace_name(get_namespace() if xp is None else xp)
    function = _SlicedEinsum(subscripts, shapes, sliced, backend, optimize)
    if blocks_only and sliced.labels:
        entries = function.block_size + 2 * sliced.info.largest_intermediate
    else:
        entries = sliced.largest_intermediate
    check_memory(entries * itemsize, f"contraction {subscripts!r}")
    return function


class _SlicedEinsum:
    def __init__(self, subscripts, shapes, info, backend, optimize):
        self.info, self.backend = info, backend
        inputs, output = subscripts.replace(" ", "").split("->")
        self.inputs, self.output = inputs.split(","), output
        sizes = {}
        for term, shape in zip(self.inputs, shapes):
            sizes.update(zip(term, shape))
        self.out_shape = tuple(sizes[c] for c in output)
        # Output indices outermost, in the output's order (consecutive blocks share their
        # leading indices: a caller can gather the blocks of one leading slice); the summed
        # ones of one output slice are added up in turn.
        self.labels = [c for c in output if c in info.labels] + [
            c for c in info.labels if c not in output
        ]
        self.n_out = sum(c in output for c in info.labels)
        self.ranges = [range(sizes[c]) for c in self.labels]
        self.block_size = math.prod(
            1 if c in info.labels else size for c, size in zip(output, self.out_shape)
        )
        sliced_shapes = _sliced_shapes(subscripts, shapes, info.labels)
        self.expression = _compiled(subscripts, sliced_shapes, backend, optimize)[0]

    def _cut(self, operands, values):
        chosen = dict(zip(self.labels, values))
        return [
            operand[
                tuple(slice(chosen[c], chosen[c] + 1) if c in chosen else slice(None) for c in term)
            ]
            if any(c in chosen for c in term)
            else operand
            for term, operand in zip(self.inputs, operands)
        ]

    def blocks(self, *operands):
        """``(index, block)`` for every slice of the output (see compile_sliced_einsum)."""
        outer = self.ranges[: self.n_out]
        inner = self.ranges[self.n_out :]
        for head in itertools.product(*outer):
            block = None
            for tail in itertools.product(*inner):
                part = self.expression(*self._cut(operands, head + tail), backend=self.backend)
                block = part if block is None else block + part
            chosen = dict(zip(self.labels, head))
            index = tuple(
                slice(chosen[c], chosen[c] + 1) if c in chosen else slice(None) for c in self.output
            )
            yield index, block

    def __call__(self, *operands):
        if not self.info.labels:
            return self.expression(*operands, backend=self.backend)
        xp = get_namespace(*operands)
        out = None
        for index, block in self.blocks(*operands):
            if out is None:
                out = xp.zeros(self.out_shape, dtype=block.dtype)
            out[index] = block
        return out


def clear_cache():
    """Forget every compiled expression (mainly for tests and benchmarks)."""
    _compiled.cache_clear()
    _slicing.cache_clear()


def cache_info():
    """Hits and misses of the expression cache, as :func:`functools.lru_cache` reports them."""
    return _compiled.cache_info()
