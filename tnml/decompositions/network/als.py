"""Fitting a tensor network of a fixed structure by ALS (:func:`network_als`), and the
plans and memory of a fit (:func:`network_memory`).

Core ``k`` enters the tensor linearly: with the
*environment* ``E_k`` (all other cores contracted, shape ``prod(other modes) x B_k`` where
``B_k`` is the product of core ``k``'s bond ranks), ``X_(k) ~= G_k E_k^T``. ALS solves these
least-squares problems one core after the other. With full data only ``E_k^T E_k`` (``B x B``)
and ``X_(k) E_k`` (``I_k x B``) are needed; per core the cheaper of two exact ways is chosen
from the contraction costs (known before running, from :func:`tnml.contract.contraction_info`):
contract the two directly (the doubled network without core ``k``, and X with the network
without core ``k``), or form ``E_k`` once and take two GEMMs. When every core forms its
environment, the environments are reused along the sweep (the blocks of cores after ``k`` are
contracted once per sweep, the block before ``k`` grows by one core per update), so a sweep
costs about ``3N`` pairwise contractions instead of ``N(N-2)``, as long as the blocks held fit
the working-memory cap (the data, the network and one core's Gram matrix, see
:func:`_fit_cap`). An environment whose contraction holds more than the cap is never formed:
it is contracted in slices (:func:`~tnml.contract.compile_sliced_einsum`, never cutting core
``k``'s bonds) and each block of its rows is added to ``E^T E`` and ``X E`` and dropped; a
doubled network a little over the cap is contracted into ``E^T E`` in slices added up. With
a mask every slice of
core ``k`` is a row-wise least-squares problem over its observed entries
(:func:`~tnml.decompositions._masked.solve_rowwise`), whose design rows are rows of the dense
environment on small tensors and gathered per observation otherwise. Every contraction goes
through :mod:`tnml.contract` (:func:`~tnml.contract.einsum`, or
:func:`~tnml.contract.compile_einsum` in the sweep loops), whose compiled paths are cached by
shapes, so refitting a structure (restarts, sweeps, a search revisiting it) never searches a
path twice. Networks with cycles have poor local minima that random starts fall into; a
regularisation path (a relative ridge of 1 halved every sweep) avoids most of them.
"""

import contextlib
import math
import numbers
import time
from collections.abc import Mapping
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np

from ..._config import check_memory
from ..._validation import check_masked_tensor, check_nonneg_float, check_positive_int
from ...backend import (
    check_random_state,
    get_namespace,
    is_numpy,
    serial_blas,
    to_device,
    to_numpy,
)
from ...contract import (
    compile_einsum,
    compile_sliced_einsum,
    contraction_info,
    einsum,
    sliced_contraction_info,
)
from .._fitting import (
    best_of_starts,
    check_fit_params,
    expanded_error,
    fit_sweeps,
    past,
    stalled,
    target_reached,
)
from .._linalg import solve_spd
from .._masked import Observations, SweepLog, solve_rowwise
from .format import TensorNetwork
from .structure import (
    _PATH,
    _check_structure,
    _full_contraction,
    _graph,
    check_adjacency,
)

# Observations whose design rows set the scale of the masked ridge.
_RIDGE_SAMPLE = 2048
# Relative ridge floor with a mask when no alpha is given (a slice with few observed entries
# has a singular system): a safeguard scaled like the regularisation path, not a penalty.
_MASKED_RIDGE = 1e-10
# Masked fits of tensors up to this many entries use dense environments (see _MaskedData).
_DENSE_ENVIRONMENT_ENTRIES = 2**20
# The regularisation path of random starts (see _ridge_path).
_RIDGE_START, _RIDGE_DECAY = 1.0, 0.5
# Environments of at most this many entries are always formed, on networks of at most
# _SMALL_NETWORK cores (see _plan): on larger densely connected ones a small environment can
# still pass through large intermediates (rank 2 on every bond of an order-8 network of
# modes of size 2: an environment of 2^14 entries, an intermediate of 2^21).
_SMALL_ENVIRONMENT = 2**15
_SMALL_NETWORK = 6
# Doubled networks sliced into their Gram matrices only up to this many times the cap.
_SLICED_GRAM = 64
# The least working memory of a full-data fit, in entries (see _fit_cap): below it slicing
# would only add Python overhead.
_FIT_FLOOR = 2**18
# Bytes a pairwise contraction step holds per entry of its largest intermediate, as
# tracemalloc measures it: its operands, their transposed copies for the GEMM, and its result
# (an order-8 fully connected rank-2 fit: 41.6 MB measured for 16.6 MB of intermediates).
_EXECUTION_FACTOR = 3
# Fits whose environments and data have at most this many entries run BLAS on one thread.
_ONE_THREAD_ENTRIES = 2**20
# Core solves with at most this many unknowns per row run LAPACK on one thread (_solve_core).
_ONE_THREAD_SOLVE = 512
# Path optimiser of the doubled network and of X with the network (twice the operands of an
# environment): opt_einsum's "auto" would run a branch-and-bound search for every new structure.
_DOUBLED_PATH = "greedy"
# Path optimiser of sliced environments of at most _SLICED_DP_CORES cores: only large
# environments are sliced, where an optimal path (2.7e9 flops instead of 5.9e9 per core for
# rank 2 on all bonds of a 4^8 tensor) is worth its search (0.1 s for 8 cores, seconds for 10).
_SLICED_DP_CORES = 8
# The price of one pairwise contraction step in flops (~30 us of Python and dispatch at about
# 1 GFlop/s): decides between the contraction strategies of small problems.
_STEP_FLOPS = 30_000


# -- fitting: validation and plans ----------------------------------------------------------------


class _FitPlan(NamedTuple):
    """How a full-data fit gets each core's normal equations (see :func:`_plan`)."""

    strategies: tuple  # per core: "environment" or "gram"
    sliced: tuple  # per core: max entries of a slice of its environment, 0 if formed whole
    reuse: bool  # environments reused along a sweep (blocks held, see _FullData)
    peak: int  # bytes
    small: bool  # every environment (block) and X at most _ONE_THREAD_ENTRIES entries
    flops: int  # one sweep, each core's chosen way (its contraction steps priced in)


def _sliced_path(graph):
    return "dp" if graph.n_cores <= _SLICED_DP_CORES else _PATH


def _fit_cap(graph):
    """Entries a full-data fit's contractions may hold at once: the data, the network and
    one core's normal equations (its Gram matrix), at least ``_FIT_FLOOR``. An environment
    (or a contraction of its path) larger than that is formed in slices (see :func:`_plan`)."""
    n_params = sum(math.prod(s) for s in graph.core_shapes)
    gram = max(graph.bond_sizes) ** 2
    return max(math.prod(graph.shape) + n_params + gram, _FIT_FLOOR)


def _sliced_environment(graph, k, cap):
    """The slicing of core ``k``'s environment whose slices hold at most ``cap /
    _EXECUTION_FACTOR`` entries (:func:`~tnml.contract.sliced_contraction_info`), and the
    entries of one block of rows of the environment (all its columns): the unit added to
    ``E^T E`` and ``X E``."""
    shapes = [graph.core_shapes[q] for q in graph.others(k)]
    info = sliced_contraction_info(
        graph.environment_subscripts(k),
        *shapes,
        max_entries=max(cap // _EXECUTION_FACTOR, 1),
        optimize=_sliced_path(graph),
        keep=graph.bond_labels[k],
    )
    data = set(graph.data_symbols)
    cut = math.prod(graph.label_size[c] for c in info.labels if c in data)
    mode = graph.mode_of_core[k]
    rows = math.prod(graph.shape) // (graph.shape[mode] if mode is not None else 1)
    return info, rows // cut * graph.bond_sizes[k]


@lru_cache(maxsize=1024)
def _plan(adjacency, permutation, itemsize):
    """Per core: the cheaper exact way to get E^T E and X E within the working-memory cap.

    A strategy is ``"environment"`` (form ``E_k``, then two GEMMs) or ``"gram"`` (contract the
    doubled network and X directly). The cost is the flop count plus a fixed price per pairwise
    contraction: on the small tensors of a structure search, the Python overhead of a step
    outweighs its arithmetic. Memory is bounded as well as time: an environment whose
    contraction holds more than the cap (:func:`_fit_cap`: the data, the network and one Gram
    matrix) is formed in slices (:func:`~tnml.contract.compile_sliced_einsum`), its blocks of
    rows added to ``E^T E`` and ``X E`` one at a time, so that no design matrix is ever held
    (rank 2 on all bonds of a fully connected 4^10 network: an environment of 2^27 entries and
    intermediates of 2^33 unsliced, blocks and slices of at most 2^20 sliced). The cheapest way
    within the cap wins, the smallest one when none fits. Environments are reused along a
    sweep (``_FullData``) only when every core forms its environment whole and the held blocks
    fit the cap too. The peak counts X, its unfolded copies, and ``_EXECUTION_FACTOR`` times
    the largest whole environment or contraction intermediate and the held blocks (a sliced
    update: that factor times a slice, its block of rows and two Gram matrices).
    """
    graph = _graph(adjacency, permutation)
    shape = graph.shape
    total = math.prod(shape)
    cap = _fit_cap(graph)
    strategies, sliced, working, copies, largest, flops = [], [], 0, 0, total, 0
    for k in range(graph.n_cores):
        others = graph.others(k)
        other_shapes = [graph.core_shapes[q] for q in others]
        size = shape[graph.mode_of_core[k]] if graph.mode_of_core[k] is not None else 1
        rows, bonds = total // size, graph.bond_sizes[k]
        if rows * bonds <= _SMALL_ENVIRONMENT and graph.n_cores <= _SMALL_NETWORK:
            # A small environment is the cheaper way whatever the doubled network costs: no
            # need to plan anything here (path searches dominate a new structure's first fit;
            # a contraction that is planned later still checks the budget before it runs).
            # Its cost, counted in the sweep's flops only: the products E^T E and X E.
            products = 2 * rows * bonds * (bonds + size)
            options = [(products, "environment", 0, rows * bonds + bonds * bonds, rows * bonds)]
        else:
            env = contraction_info(graph.environment_subscripts(k), *other_shapes, optimize=_PATH)
            memory = max(env.largest_intermediate, rows * bonds) + bonds * bonds
            products = 2 * rows * bonds * (bonds + size)  # E^T E and X E
            cost = env.flops + products + _STEP_FLOPS * (len(env.path) + 2)
            options = [(cost, "environment", 0, memory, rows * bonds)]
            if memory > cap:
                info, block = _sliced_environment(graph, k, cap)
                n_blocks = rows * bonds // block
                # Held at once: a slice's contraction (_EXECUTION_FACTOR times its largest
                # intermediate) and the partial sum it is added to, a block of rows, E^T E
                # with its update and X E; in units of the peak's factor, as for the others.
                memory = (
                    (_EXECUTION_FACTOR + 1) * info.info.largest_intermediate
                    + block
                    + 2 * bonds * bonds
                    + size * bonds
                ) // _EXECUTION_FACTOR + 1
                cost = (
                    info.flops
                    + products
                    + _STEP_FLOPS * (info.n_slices * (len(info.info.path) + 1) + 2 * n_blocks)
                )
                options.append(
                    (cost, "environment", max(cap // _EXECUTION_FACTOR, 1), memory, block)
                )
            gram = contraction_info(
                graph.gram_subscripts(k), *other_shapes, *other_shapes, optimize=_DOUBLED_PATH
            )
            rhs = contraction_info(
                graph.rhs_subscripts(k), shape, *other_shapes, optimize=_DOUBLED_PATH
            )
            gram_cost = gram.flops + rhs.flops + _STEP_FLOPS * (len(gram.path) + len(rhs.path))
            gram_memory = max(gram.largest_intermediate, rhs.largest_intermediate)
            options.append((gram_cost, "gram", 0, gram_memory, 0))
            if gram_memory > cap and gram.largest_intermediate <= _SLICED_GRAM * cap:
                # Both contracted in slices added up (on a rank-16 ring of a 4^8 tensor: 16
                # and 4 slices, as fast as whole); not where the doubled network is far too
                # large (a densely connected one: 2^32 entries, its slicing planned in
                # seconds and dearer than a streamed environment).
                entries = max(cap // _EXECUTION_FACTOR, 1)
                gram, rhs = (
                    sliced_contraction_info(
                        subscripts, *shapes, max_entries=entries, optimize=_DOUBLED_PATH
                    )
                    for subscripts, shapes in [
                        (graph.gram_subscripts(k), other_shapes + other_shapes),
                        (graph.rhs_subscripts(k), [shape] + other_shapes),
                    ]
                )
                steps = gram.n_slices * len(gram.info.path) + rhs.n_slices * len(rhs.info.path)
                memory = (
                    (_EXECUTION_FACTOR + 1)
                    * max(gram.info.largest_intermediate, rhs.info.largest_intermediate)
                    + bonds * bonds
                    + bonds * size
                ) // _EXECUTION_FACTOR + 1
                options.append(
                    (gram.flops + rhs.flops + _STEP_FLOPS * steps, "gram", entries, memory, 0)
                )
        fitting = [option for option in options if option[3] <= cap]
        cost, choice, n_sliced, memory, held = (
            min(fitting) if fitting else min(options, key=lambda option: option[3])
        )
        flops += cost
        strategies.append(choice)
        sliced.append(n_sliced)
        working = max(working, memory)
        largest = max(largest, held)
        unfolded = choice == "environment" and not n_sliced  # X_(k) held (see _FullData)
        copies += unfolded and graph.mode_of_core[k] not in (None, 0)
    n = graph.n_cores
    reuse = n >= 3 and all(c == "environment" for c in strategies) and not any(sliced)
    if reuse:

        def size_of(block):
            return math.prod(graph.label_shape(graph.block_labels(block)))

        held = sum(size_of(range(j, n)) for j in range(1, n))
        held += max(size_of(range(k + 1)) for k in range(n - 1))
        reuse = held + working <= cap
        working += held if reuse else 0
    return _FitPlan(
        tuple(strategies),
        tuple(sliced),
        reuse,
        ((1 + copies) * total + _EXECUTION_FACTOR * working) * itemsize,
        largest <= _ONE_THREAD_ENTRIES,
        flops,
    )


def _blas_threads(small):
    """One BLAS thread for a fit whose GEMMs are all small, as scikit-learn's KMeans does
    for its small per-chunk GEMMs: threads gain nothing on them, and OpenBLAS's spinning
    threads stall when the cores are busy. Larger fits keep the caller's setting."""
    return serial_blas() if small else contextlib.nullcontext()


def _effective_ridge(ridge, scale):
    """The ridge added to a normal-equation matrix whose mean diagonal is ``scale``.

    ``ridge`` is ``(relative, alpha)``: the regularisation path's (or the mask safeguard's)
    relative term, scaled by ``scale``, and the user's absolute ``alpha``; the larger wins.
    """
    relative, alpha = ridge
    return max(relative * scale if scale > 0 else relative, alpha)


def _solve_core(gram, rhs, ridge, diagonal=None):
    """A core's normal equations with the ridge ``(relative, alpha)`` (see _effective_ridge)
    and, when given, the core's bond penalty (a vector added to the diagonal, see
    :func:`_bond_diagonals`).

    Systems of at most ``_ONE_THREAD_SOLVE`` unknowns per row run LAPACK on one thread even
    when the fit's contractions are threaded: threads gain nothing on solves that small, and
    a threaded OpenBLAS stalls on them when the cores are busy.
    """
    xp = get_namespace(gram)
    bonds = gram.shape[0]
    scale = float(xp.trace(gram)) / bonds
    alpha = _effective_ridge(ridge, scale)
    if diagonal is not None:
        alpha = diagonal * scale + alpha
    if bonds > _ONE_THREAD_SOLVE or not is_numpy(xp):
        return solve_spd(gram, rhs, alpha)
    with serial_blas():
        return solve_spd(gram, rhs, alpha)


def _bond_diagonals(graph, penalty, like):
    """Per core, the vector that ``bond_penalty`` adds to the diagonal of its normal equations,
    relative to their mean diagonal (None for a core without one): entry ``(r_1, ..., r_m)``
    of the core's bonds (in its layout order) gets ``sum_j penalty[(k, q_j)][r_j]``."""
    if not isinstance(penalty, Mapping):
        raise TypeError(
            f"bond_penalty must be a mapping {{(core, neighbour): weights}} (or a callable "
            f"returning one), got {type(penalty).__name__}"
        )
    xp = get_namespace(like)
    weights = {}
    for key, values in penalty.items():
        if (
            not isinstance(key, tuple)
            or len(key) != 2
            or not all(isinstance(c, numbers.Integral) for c in key)
        ):
            raise ValueError(f"bond_penalty keys must be (core, neighbour) pairs, got {key!r:.40}")
        k, q = int(key[0]), int(key[1])
        if not (0 <= k < graph.n_cores and q in graph.neighbours[k]):
            raise ValueError(
                f"bond_penalty key {key!r}: cores {k} and {q} are not joined by a bond of rank >= 2"
            )
        host = np.asarray(to_numpy(values), dtype=np.float64)
        rank = graph.bond_shapes[k][graph.neighbours[k].index(q)]
        if host.shape != (rank,) or not np.all(np.isfinite(host)) or np.any(host < 0):
            raise ValueError(
                f"bond_penalty[{key!r}] must hold {rank} finite weights >= 0 (the bond's "
                f"rank), got shape {host.shape}"
            )
        weights[k, q] = host
    diagonals = []
    for k in range(graph.n_cores):
        axes = [weights.get((k, q)) for q in graph.neighbours[k]]
        if all(w is None for w in axes):
            diagonals.append(None)
            continue
        shape = graph.bond_shapes[k]
        total = np.zeros(shape)
        for j, w in enumerate(axes):
            if w is not None:
                total = total + np.reshape(w, [-1 if i == j else 1 for i in range(len(shape))])
        diagonals.append(xp.asarray(to_device(total.ravel(), xp), dtype=like.dtype))
    return diagonals


def network_memory(adjacency, permutation, shape, itemsize=8):
    """Bytes of the largest intermediate of fitting this structure to data of ``shape``.

    Known before anything is allocated, from the contraction paths
    (:func:`tnml.contract.contraction_info`): :func:`network_als` refuses a structure whose
    peak exceeds ``max_memory`` (:class:`tnml.MemoryBudgetError`), so a structure search can
    record it as skipped.

    Parameters
    ----------
    adjacency : (N, N) int array
    permutation : sequence of int or None
    shape : tuple of int
        The data's shape.
    itemsize : int, default=8
        Bytes per element (8 for float64).

    Returns
    -------
    int

    Examples
    --------
    >>> from tnml.decompositions import network_memory
    >>> ring = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
    >>> network_memory(ring, None, (3, 3, 3, 3)) > 0
    True
    """
    _, permutation, _ = _check_structure(adjacency, permutation, tuple(shape))
    return _plan(check_adjacency(adjacency), permutation, int(itemsize)).peak


def network_flops(adjacency, permutation, shape):
    """Floating-point operations of one full-data :func:`network_als` sweep, as planned.

    Known before anything is allocated, from the same plan as :func:`network_memory`: every
    core's normal equations the cheaper exact way within the working-memory cap, a small
    fixed price per contraction step included (for an environment small enough not to be
    planned, the products ``E^T E`` and ``X E`` only). On densely connected networks it grows
    fast with the order (rank 2 on every bond of a fully connected network: about 3e10 at
    4^8, 2.5e14 at 4^10), so that a search can tell a start it cannot afford before fitting.

    Parameters
    ----------
    adjacency, permutation, shape
        As in :func:`network_memory`.

    Returns
    -------
    int

    Examples
    --------
    >>> from tnml.decompositions import fully_connected_adjacency, network_flops
    >>> ring = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
    >>> full = fully_connected_adjacency((3, 3, 3, 3), 2)
    >>> network_flops(ring, None, (3, 3, 3, 3)) < network_flops(full, None, (3, 3, 3, 3))
    True
    """
    _, permutation, _ = _check_structure(adjacency, permutation, tuple(shape))
    return int(_plan(check_adjacency(adjacency), permutation, 8).flops)


def _check_network_fit_params(max_iter, tol, target_error, n_init, verbose, alpha=0.0):
    tol, alpha = check_fit_params(max_iter, tol, verbose, alpha)
    if target_error is not None:
        target_error = check_nonneg_float(target_error, "target_error")
    return tol, target_error, check_positive_int(n_init, "n_init"), alpha


def _prepare(X, adjacency, permutation, mask, init):
    """Validated data (zeros where unobserved), mask, structure and a checked init network."""
    X, mask = check_masked_tensor(X, mask)
    if mask is not None and bool(get_namespace(mask).all(mask)):
        mask = None  # the full-data solver is exact and much cheaper
    adjacency, permutation, graph = _check_structure(adjacency, permutation, X.shape)
    if isinstance(init, TensorNetwork):
        if init._graph.adjacency != adjacency or init.permutation != permutation:
            raise ValueError(
                f"init has adjacency {init.adjacency.tolist()} and permutation "
                f"{init.permutation}; expected {[list(r) for r in adjacency]} and "
                f"{permutation} (use pad_network to grow a network first)"
            )
    elif not (isinstance(init, str) and init == "random"):
        raise ValueError(f"init must be 'random' or a TensorNetwork, got {init!r:.80}")
    return X, mask, adjacency, permutation, graph


def _random_start(graph, X, norm_x, rng, std=None):
    """Gaussian cores; scaled so that the network's norm is ``||X||`` unless ``std`` is given."""
    xp = get_namespace(X)
    cores = [
        xp.asarray(to_device(rng.standard_normal(s), xp), dtype=X.dtype) for s in graph.core_shapes
    ]
    if std is not None:
        return [core * std for core in cores]
    shapes = graph.core_shapes
    if contraction_info(
        graph.norm_subscripts, *shapes, *shapes, optimize=_PATH
    ).largest_intermediate <= _fit_cap(graph):
        norm = float(xp.sqrt(xp.abs(einsum(graph.norm_subscripts, *cores, *cores, optimize=_PATH))))
    else:
        # The doubled network of a densely connected one (rank 2 on every bond of an order-8
        # network: 2^32 entries) is too large to contract: its expected norm instead, exact
        # for independent standard Gaussian cores (the fits are invariant to this scale).
        norm = math.sqrt(math.prod(graph.shape) * math.prod(r for _, _, r in graph.edges))
    factor = (norm_x / norm) ** (1.0 / len(cores)) if norm > 0 else 1.0
    return [core * factor for core in cores]


def _initial_cores(graph, X, init, norm_x, rng, std=None):
    if isinstance(init, TensorNetwork):
        xp = get_namespace(X)
        return [xp.asarray(core, dtype=X.dtype) for core in init.cores]
    return _random_start(graph, X, norm_x, rng, std)


# -- ALS ------------------------------------------------------------------------------------------
class _FullData:
    """Full-data ALS: per core, X unfolded once and the chosen contraction strategy, its
    expressions compiled once for the whole fit."""

    def __init__(self, X, graph, plan):
        xp = get_namespace(X)
        self.X, self.graph, self.plan, self.xp = X, graph, plan, xp
        self.diagonals = [None] * graph.n_cores  # bond penalties (see _bond_diagonals)
        self.norm_x_sq = float(xp.sum(X * X))
        itemsize = X.dtype.itemsize
        n = graph.n_cores
        self.reuse = plan.reuse
        self.unfolded, self.expressions, self.slices = {}, [], {}
        for k in range(graph.n_cores):
            mode = graph.mode_of_core[k]
            other_shapes = [graph.core_shapes[q] for q in graph.others(k)]
            if plan.strategies[k] == "environment" and plan.sliced[k]:
                # Streamed in blocks of rows (see _plan); X with core k's mode first (a view),
                # each block's rows of it taken when they are used.
                self.slices[k] = (
                    xp.reshape(X, (1,) + X.shape) if mode is None else xp.moveaxis(X, mode, 0)
                )
                self.expressions.append(
                    compile_sliced_einsum(
                        graph.environment_subscripts(k),
                        *other_shapes,
                        max_entries=plan.sliced[k],
                        xp=xp,
                        itemsize=itemsize,
                        optimize=_sliced_path(graph),
                        blocks_only=True,
                        keep=graph.bond_labels[k],
                    )
                )
            elif plan.strategies[k] == "environment":
                # X_(k): core k's data mode first, the others in data order (one copy per mode).
                self.unfolded[k] = (
                    xp.reshape(X, (1, -1))
                    if mode is None
                    else xp.ascontiguousarray(
                        xp.reshape(xp.moveaxis(X, mode, 0), (X.shape[mode], -1))
                    )
                )
                self.expressions.append(
                    None
                    if self.reuse
                    else compile_einsum(
                        graph.environment_subscripts(k),
                        *other_shapes,
                        xp=xp,
                        itemsize=itemsize,
                        optimize=_PATH,
                    )
                )
            else:
                # Whole, or in slices added up when the plan says so (see _plan).
                compile = (
                    partial(compile_sliced_einsum, max_entries=plan.sliced[k])
                    if plan.sliced[k]
                    else compile_einsum
                )
                self.expressions.append(
                    (
                        compile(
                            graph.gram_subscripts(k),
                            *other_shapes,
                            *other_shapes,
                            xp=xp,
                            itemsize=itemsize,
                            optimize=_DOUBLED_PATH,
                        ),
                        compile(
                            graph.rhs_subscripts(k),
                            X.shape,
                            *other_shapes,
                            xp=xp,
                            itemsize=itemsize,
                            optimize=_DOUBLED_PATH,
                        ),
                    )
                )
        # Only near round-off (see error); in slices on densely connected networks.
        self.full = _full_contraction(graph, xp, itemsize)
        if self.reuse:
            # Sweeping 0..N-1, core k's environment is (cores 0..k-1, already updated) x
            # (cores k+1..N-1, not yet): right blocks R_j = cores j..N-1 are built once per
            # sweep, the left block grows by one core per update, and each environment is
            # one pairwise contraction: about 3N contractions per sweep instead of N(N-2).
            def pairwise(left, right, out):
                return compile_einsum(
                    f"{left},{right}->{out}",
                    graph.label_shape(left),
                    graph.label_shape(right),
                    xp=xp,
                    itemsize=itemsize,
                )

            block = graph.block_labels
            self.right = {
                j: pairwise(graph.labels[j], block(range(j + 1, n)), block(range(j, n)))
                for j in range(1, n - 1)
            }
            self.left = {
                k: pairwise(block(range(k)), graph.labels[k], block(range(k + 1)))
                for k in range(1, n - 1)
            }
            self.between = {
                k: pairwise(
                    block(range(k)), block(range(k + 1, n)), block([q for q in range(n) if q != k])
                )
                for k in range(1, n - 1)
            }

    def sweep(self, cores, ridge, deadline=None):
        """One ALS sweep over the cores (in place); the last update's quantities. Past
        ``deadline`` (:func:`time.monotonic`) it ends after the core it is updating."""
        n = self.graph.n_cores
        if not self.reuse:
            return _plain_sweep(self, cores, ridge, deadline)
        right = {n - 1: cores[n - 1]}
        for j in range(n - 2, 0, -1):
            right[j] = self.right[j](cores[j], right[j + 1])
        left = None
        for k in range(n):
            if k == 0:
                env = right[1]
            elif k == n - 1:
                env = left
            else:
                env = self.between[k](left, right[k + 1])
            last = self._solve(cores, k, env, ridge)
            if past(deadline):  # before the scale moves on: the network is the fitted one
                break
            if k < n - 1:
                _normalize(cores, k)
                left = cores[0] if k == 0 else self.left[k](left, cores[k])
        return last

    def _solve(self, cores, k, env, ridge):
        xp = self.xp
        bonds = self.graph.bond_sizes[k]
        env = xp.reshape(env, (-1, bonds))
        gram = env.T @ env
        rhs = self.unfolded[k] @ env
        solution = _solve_core(gram, rhs, ridge, self.diagonals[k])
        cores[k] = xp.reshape(solution, self.graph.core_shapes[k])
        return solution, rhs, gram

    def _streamed(self, cores, k):
        """``E^T E`` and ``X E`` of core k added up over blocks of rows of its environment.

        The sliced contraction yields the environment's blocks with the output's leading
        (data) indices outermost: the consecutive blocks of one data slice (cut along core
        k's bonds when the slicing chose those) are gathered into its block of rows, which
        is added to both products and dropped.
        """
        xp, graph = self.xp, self.graph
        expression, moved = self.expressions[k], self.slices[k]
        bonds, n_data = graph.bond_sizes[k], len(graph.shape) - (graph.mode_of_core[k] is not None)
        out_shape = expression.out_shape
        gram = rhs = 0
        current = rows = None

        def add(gram, rhs):
            env = xp.reshape(rows, (-1, bonds))
            block = xp.reshape(moved[(slice(None),) + current], (moved.shape[0], -1))
            return gram + env.T @ env, rhs + block @ env

        for index, block in expression.blocks(*[cores[q] for q in graph.others(k)]):
            head = index[:n_data]
            if head != current:
                if current is not None:
                    gram, rhs = add(gram, rhs)
                current = head
                if block.shape[n_data:] == out_shape[n_data:]:
                    rows = block
                    continue
                rows = xp.empty(block.shape[:n_data] + out_shape[n_data:], dtype=block.dtype)
            rows[(slice(None),) * n_data + index[n_data:]] = block
        gram, rhs = add(gram, rhs)
        return gram, rhs

    def update(self, cores, k, ridge):
        """Solve core k in place; return its matricised solution, rhs and Gram matrix."""
        xp, graph = self.xp, self.graph
        others = graph.others(k)
        bonds = graph.bond_sizes[k]
        if k in self.slices:
            gram, rhs = self._streamed(cores, k)
        elif self.plan.strategies[k] == "environment":
            return self._solve(cores, k, self.expressions[k](*[cores[q] for q in others]), ridge)
        else:
            gram_expression, rhs_expression = self.expressions[k]
            operands = [cores[q] for q in others]
            gram = xp.reshape(gram_expression(*operands, *operands), (bonds, bonds))
            rhs = xp.reshape(rhs_expression(self.X, *operands), (-1, bonds))
        solution = _solve_core(gram, rhs, ridge, self.diagonals[k])
        cores[k] = xp.reshape(solution, graph.core_shapes[k])
        return solution, rhs, gram

    def error(self, cores, solution, rhs, gram):
        """Relative error from the last update's quantities; the explicit residual near
        round-off, where the expansion cancels."""
        xp = self.xp
        if self.norm_x_sq == 0:
            return 0.0
        inner = float(xp.sum(solution * rhs))
        norm_hat_sq = float(xp.sum(solution * (solution @ gram)))
        error = expanded_error(
            max(self.norm_x_sq - 2 * inner + norm_hat_sq, 0.0), self.norm_x_sq, self.X.dtype
        )
        if error is None:
            residual = self.X - self.full(*cores)
            error = math.sqrt(float(xp.sum(residual * residual)) / self.norm_x_sq)
        return error


class _MaskedData:
    """Masked ALS: every slice of a core fitted to its observed entries (row-wise solver).

    The design row of an observation is core k's environment at the observation's other
    coordinates. When the tensor is small or densely observed (``prod(shape) <= max(8 n_obs,
    2^20)``, see ``_DENSE_ENVIRONMENT_ENTRIES``), the dense environment ``E_k``
    (``prod(other modes) x B``, no larger than the design matrix itself once ``p I_k >= 1``)
    is contracted once per update and its rows are gathered: one compiled contraction instead
    of batched ones. Otherwise the other cores' slices are gathered per observation and
    contracted with a batch index, never forming anything of the tensor's size.
    """

    def __init__(self, X, mask, graph):
        xp = get_namespace(X)
        self.observations = obs = Observations.from_dense(X, mask)
        self.graph, self.xp, self.X = graph, xp, X
        self.diagonals = [None] * graph.n_cores  # bond penalties (see _bond_diagonals)
        self.columns = [obs.column(m) for m in range(len(graph.shape))]
        self.design = [graph.design_subscripts(k) for k in range(graph.n_cores)]
        self.norm_observed = float(xp.linalg.norm(obs.values)) or 1.0
        total = math.prod(graph.shape)
        self.dense = total <= max(8 * obs.n_obs, _DENSE_ENVIRONMENT_ENTRIES)
        if self.dense:
            itemsize = X.dtype.itemsize
            self.weight = xp.asarray(mask, dtype=X.dtype)
            self.full = _full_contraction(graph, xp, itemsize)
            self.environments, self.rows = [], []
            for k in range(graph.n_cores):
                others = graph.others(k)
                self.environments.append(
                    compile_einsum(
                        graph.environment_subscripts(k),
                        *[graph.core_shapes[q] for q in others],
                        xp=xp,
                        itemsize=itemsize,
                        optimize=_PATH,
                    )
                )
                # Row of E_k of each observation: its other coordinates, C order.
                row, stride = 0, 1
                for m in reversed(range(len(graph.shape))):
                    if m != graph.mode_of_core[k]:
                        row = row + self.columns[m] * stride
                        stride *= graph.shape[m]
                self.rows.append(row)

    def design_rows(self, cores, k, positions):
        xp, graph = self.xp, self.graph
        gathered = []
        for q in graph.others(k):
            mode = graph.mode_of_core[q]
            gathered.append(
                cores[q]
                if mode is None
                else xp.take(cores[q], xp.take(self.columns[mode], positions), axis=0)
            )
        return xp.reshape(
            einsum(self.design[k], *gathered, optimize=_PATH),
            (positions.shape[0], graph.bond_sizes[k]),
        )

    def update(self, cores, k, ridge):
        xp, graph, obs = self.xp, self.graph, self.observations
        bonds, mode = graph.bond_sizes[k], graph.mode_of_core[k]
        n_rows = 1 if mode is None else graph.shape[mode]
        if self.dense:
            env = xp.reshape(
                self.environments[k](*[cores[q] for q in graph.others(k)]), (-1, bonds)
            )
            rows = self.rows[k]

            def design(idx):
                return xp.take(env, xp.take(rows, idx), axis=0)
        else:

            def design(idx):
                return self.design_rows(cores, k, idx)

        # The relative part of the ridge is scaled by the mean diagonal of a slice's normal
        # equations, estimated from a sample of design rows.
        sample = design(xp.arange(min(obs.n_obs, _RIDGE_SAMPLE)))
        scale = float(xp.mean(sample * sample)) * obs.n_obs / n_rows
        alpha = _effective_ridge(ridge, scale)
        if self.diagonals[k] is not None:
            alpha = self.diagonals[k] * scale + alpha
        solution = solve_rowwise(obs, mode, design, n_rows, bonds, alpha=alpha)
        cores[k] = xp.reshape(solution, graph.core_shapes[k])
        return solution, None, None

    def sweep(self, cores, ridge, deadline=None):
        return _plain_sweep(self, cores, ridge, deadline)

    def error(self, cores, *_):
        """Relative error on the observed entries; None leaves it to the sweep log (entries
        at the observed coordinates) when the tensor is not formed."""
        if not self.dense:
            return None
        xp = self.xp
        residual = (self.X - self.full(*cores)) * self.weight
        return math.sqrt(float(xp.sum(residual * residual))) / self.norm_observed


def _plain_sweep(problem, cores, ridge, deadline=None):
    """Update every core in turn from its own environment contraction; past ``deadline``
    (:func:`time.monotonic`), stop after the core being updated (one update of a large
    dense network can take minutes, a sweep many of them)."""
    n = problem.graph.n_cores
    last = None
    for k in range(n):
        del last  # the previous core's normal equations: not held while the next are formed
        last = problem.update(cores, k, ridge)
        if past(deadline):  # before the scale moves on: the network is the fitted one
            break
        if k < n - 1:
            _normalize(cores, k)
    return last


def _normalize(cores, k):
    """Keep every core but the one holding the scale at unit norm: the next solve absorbs the
    scale, and the Gram matrices stay on one scale whatever the gauge."""
    xp = get_namespace(cores[k])
    norm = float(xp.sqrt(xp.sum(cores[k] * cores[k])))
    if norm > 0:
        cores[k] = cores[k] / norm


def _als_run(
    problem, graph, cores, max_iter, tol, target_error, log, ridges, dtype, penalty, deadline
):

    def sweep(iteration):
        if callable(penalty):  # reweighted from the current cores before every sweep
            network = TensorNetwork._trusted(list(cores), graph)
            problem.diagonals = _bond_diagonals(graph, penalty(network), cores[0])
        solution, rhs, gram = problem.sweep(cores, next(ridges), deadline)
        return (
            TensorNetwork._trusted(list(cores), graph),
            problem.error(cores, solution, rhs, gram),
        )

    stop = None
    if target_error is not None:

        def stop(errors):
            return errors[-1] <= target_error or stalled(errors, tol, 1)

    result = fit_sweeps(sweep, max_iter, tol, log, dtype, stop=stop, deadline=deadline)
    return TensorNetwork._trusted(list(cores), graph), result


def _ridge_path(floor, start):
    """Relative ridges of successive sweeps: from ``start``, halved every sweep, down to
    ``floor``. Heavily regularised first sweeps keep a random start from locking into the
    poor local minima that networks with cycles have (tensor ring, triangle, FCTN): on small
    random instances this lifts the per-start recovery rate from about one in two (one in
    five for some) to eight or more in ten, for about ten more sweeps."""
    relative = start
    while True:
        yield max(relative, floor)
        relative *= _RIDGE_DECAY


def network_als(
    X,
    adjacency,
    permutation=None,
    *,
    mask=None,
    init="random",
    max_iter=100,
    tol=1e-7,
    target_error=None,
    n_init=1,
    alpha=None,
    bond_penalty=None,
    regularization_path=True,
    max_time=None,
    random_state=None,
    verbose=0,
):
    """Fit a tensor network of a fixed structure to ``X`` by alternating least squares.

    Each sweep solves every core's least-squares problem against its environment (see the
    module docstring): full data through the Gram matrix ``E^T E`` and ``X E`` (never the
    dense design matrix unless forming it is the cheaper exact way for that core), masked data
    slice by slice over the observed entries.

    Parameters
    ----------
    X : array of shape (I_0, ..., I_{d-1})
        Real data of any namespace (NumPy, CuPy, ...); the network lives there too.
    adjacency : (N, N) symmetric int array
        The structure (see :class:`TensorNetwork`); its data cores' sizes, placed by
        ``permutation``, must be X's shape.
    permutation : sequence of int or None
        Which data mode sits on which core (see :class:`TensorNetwork`); None: identity.
    mask : bool array of X's shape or None
        True where X is observed (unobserved entries may be NaN); errors are then measured on
        the observed entries.
    init : "random" or TensorNetwork, default="random"
        Gaussian cores scaled to ``||X||`` (drawn with ``random_state``), or a network of this
        structure (a warm start, e.g. from :func:`pad_network`); with ``n_init > 1`` the later
        restarts are random.
    max_iter : int, default=100
        Maximum number of sweeps per start.
    tol : float, default=1e-7
        Stop when the relative change of the error between two sweeps is below ``tol``.
    target_error : float or None
        Stop as soon as the relative error is at most this (and skip further restarts).
    n_init : int, default=1
        Number of starts; the network with the lowest final error is returned.
    alpha : float or None, default=None
        Ridge penalty of every core's normal equations, absolute (added to their diagonal as
        is, as ``alpha`` everywhere in tnml). None: 0 with full data (a singular Gram matrix
        falls back to the pseudo-inverse); with a mask, a safeguard of 1e-10 times the mean
        diagonal of each normal-equation matrix (a slice with few observed entries has a
        singular system).
    bond_penalty : mapping, callable or None, default=None
        A weighted ridge per bond index: ``{(k, q): weights}`` with ``weights`` a vector of
        the rank of the bond between cores ``k`` and ``q`` (core numbering of ``adjacency``);
        every entry of core ``k`` whose index on that bond is ``r`` is penalised by
        ``weights[r]`` times its square, summed over the core's bonds. The weights are
        relative, like the regularisation path's ridge: multiplied by the mean diagonal of
        the core's normal equations when it is solved, so they do not depend on the data's
        scale nor on how the network's norm is spread over its cores. A callable
        ``bond_penalty(network)`` returning such a mapping is called before every sweep
        with the current network: penalties reweighted from the fit, as
        the ``'svdins'`` structure search does (:func:`~tnml.structure_search.svdins`) to
        drive unneeded bond indices to zero.
    regularization_path : bool, default=True
        On networks with cycles, random starts begin with a ridge of 1 times the mean diagonal,
        halved every sweep (the larger of it and ``alpha`` is used): this keeps them out of the poor
        local minima of such networks (see ``_ridge_path``). Trees (TT, Tucker) do not need it (on
        them a strong ridge can collapse bonds), nor do warm starts (``init`` a network): they use
        ``alpha`` throughout.
    max_time : float or None, default=None
        Seconds after which no further core update, sweep or start begins: the fit returns
        the best start so far, not converged (at least one core is updated). A structure
        search passes what is left of its own ``max_time``, so that a slow candidate does
        not overrun it by more than one core update.
    random_state : None, int or numpy RandomState
    verbose : int, default=0
        Print the error after every sweep.

    Returns
    -------
    network : TensorNetwork
    result : FitResult
        Of the returned start: sweeps, relative error after each, whether it converged (tol,
        target_error or exact fit).

    Raises
    ------
    tnml.MemoryBudgetError
        Before allocating anything, when :func:`network_memory` exceeds ``max_memory``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_network, network_als
    >>> ring = [[3, 2, 0, 3], [2, 4, 2, 0], [0, 2, 3, 2], [3, 0, 2, 4]]
    >>> X = random_network(ring, random_state=0).to_tensor()
    >>> net, result = network_als(X, ring, max_iter=500, tol=0, target_error=1e-10,
    ...                           n_init=3, random_state=0)
    >>> bool(result.error <= 1e-10), net.shape
    (True, (3, 4, 3, 4))
    """
    alpha_given = alpha
    tol, target_error, n_init, alpha = _check_network_fit_params(
        max_iter, tol, target_error, n_init, verbose, 0.0 if alpha is None else alpha
    )
    deadline = None
    if max_time is not None:
        deadline = time.monotonic() + check_nonneg_float(max_time, "max_time")
    floor = _MASKED_RIDGE if alpha_given is None and mask is not None else 0.0
    X, mask, adjacency, permutation, graph = _prepare(X, adjacency, permutation, mask, init)
    plan = _plan(adjacency, permutation, X.dtype.itemsize)
    check_memory(plan.peak, f"network_als on a structure of {graph.n_cores} cores")
    xp = get_namespace(X)
    rng = check_random_state(random_state)
    if mask is None:
        problem = _FullData(X, graph, plan)
        norm_x = math.sqrt(problem.norm_x_sq)
        observations = None
    else:
        problem = _MaskedData(X, mask, graph)
        norm_x = float(xp.linalg.norm(problem.observations.values)) * math.sqrt(
            math.prod(X.shape) / problem.observations.n_obs
        )
        observations = problem.observations

    if bond_penalty is not None and not callable(bond_penalty):
        problem.diagonals = _bond_diagonals(graph, bond_penalty, X)

    def fit(start, rng):
        warm = start == 0 and isinstance(init, TensorNetwork)
        cores = _initial_cores(graph, X, init if warm else "random", norm_x, rng)
        log = SweepLog(observations, None, "network_als", verbose)
        path = regularization_path and graph.has_cycle and not warm
        ridges = (
            (relative, alpha) for relative in _ridge_path(floor, _RIDGE_START if path else floor)
        )
        return _als_run(
            problem,
            graph,
            cores,
            max_iter,
            tol,
            target_error,
            log,
            ridges,
            X.dtype,
            bond_penalty,
            deadline,
        )

    reached = target_reached(target_error) or (lambda result: False)
    with _blas_threads(plan.small):
        return best_of_starts(
            fit, n_init, rng, stop=lambda result: reached(result) or past(deadline)
        )
