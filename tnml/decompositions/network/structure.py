"""Network structure: adjacency checks and builders, and the graph of subscripts of a
structure (the internal ``_Graph``) that formats and fits share.

See :mod:`tnml.decompositions.network` for the adjacency and permutation conventions.
"""

import math
import numbers
from functools import lru_cache

import numpy as np
import opt_einsum

from ..._validation import check_positive_int
from ...contract import compile_sliced_einsum, contraction_info, sliced_contraction_info

# Path optimiser of a network's own contractions (environments, values, norm). "dp" (optimal
# dynamic programme) plans 6-operand environments faster but 12-operand norms 5x slower;
# "auto" was the fastest overall on the TnALE order-6 ring (planning a new structure: 20 ms).
_PATH = "auto"
# The working memory of a network's contractions (a full-data fit, the dense tensor, the
# norm): at most this factor times the entries of the data plus the network, or this many
# entries (32 MB in float64) if that is more; larger intermediates are formed in slices.
_WORKING_FACTOR = 8
_WORKING_FLOOR = 2**22
_DENSE_FLOOR = 2**16


def _working_cap(graph):
    """Entries a network's contractions may hold at once (see ``_WORKING_FACTOR``)."""
    n_params = sum(math.prod(s) for s in graph.core_shapes)
    return max(_WORKING_FACTOR * (math.prod(graph.shape) + n_params), _WORKING_FLOOR)


def _dense_cap(graph):
    """Entries per slice of the dense tensor's contraction: its own size and the network's
    (at least ``_DENSE_FLOOR``): slicing that fine costs under 2x the time of the 32 MB
    slices of the working cap (rank 2 on every bond of an order-8 network: 1.2 s instead of
    0.7 s) and holds 4 MB instead of 100 MB."""
    n_params = sum(math.prod(s) for s in graph.core_shapes)
    return max(math.prod(graph.shape) + n_params, _DENSE_FLOOR)


def _full_contraction(graph, xp=None, itemsize=8):
    """The network's dense tensor as a contraction run in slices within the working cap
    (rank 2 on every bond of a fully connected order-8 network: an intermediate of 2^24
    entries unsliced, for a tensor of 2^16)."""
    return compile_sliced_einsum(
        graph.full_subscripts,
        *graph.core_shapes,
        max_entries=_dense_cap(graph),
        xp=xp,
        itemsize=itemsize,
        optimize=_PATH,
    )


def _full_info(graph):
    return sliced_contraction_info(
        graph.full_subscripts, *graph.core_shapes, max_entries=_dense_cap(graph), optimize=_PATH
    )


@lru_cache(maxsize=1024)
def _norm_by_dense(graph):
    """Whether the norm is cheaper from the dense tensor's slices than from the doubled
    network (whose largest intermediate on a densely connected network, 2^32 entries for
    rank 2 on every bond of an order-8 one, squares that of the dense tensor): both are
    planned within the working cap, and the one of fewer flops runs."""
    shapes = graph.core_shapes
    cap = _working_cap(graph)
    doubled = contraction_info(graph.norm_subscripts, *shapes, *shapes, optimize=_PATH)
    if doubled.largest_intermediate <= cap:
        return False
    doubled = sliced_contraction_info(
        graph.norm_subscripts, *shapes, *shapes, max_entries=cap, optimize=_PATH
    )
    return _full_info(graph).flops < doubled.flops


def check_adjacency(adjacency, name="adjacency"):
    """A validated adjacency matrix as a tuple of tuples of Python ints.

    Raises ``ValueError`` (naming ``name``) unless ``adjacency`` is a square, symmetric matrix of
    non-negative integers with at least one data mode, and ``TypeError`` for non-integers.

    Examples
    --------
    >>> from tnml.decompositions.network import check_adjacency
    >>> check_adjacency([[3, 2], [2, 4]])
    ((3, 2), (2, 4))
    """
    try:
        matrix = np.asarray(adjacency)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a square integer matrix, got {adjacency!r:.80}") from None
    if matrix.dtype == object or matrix.dtype.kind not in "iuf" or matrix.dtype.kind == "b":
        raise TypeError(f"{name} must be a square matrix of integers, got dtype {matrix.dtype}")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty square (N, N) matrix, got shape {matrix.shape}"
        )
    if matrix.dtype.kind == "f":
        if not np.all(np.isfinite(matrix)) or not np.all(matrix == np.round(matrix)):
            raise TypeError(f"{name} must hold integers, got {matrix.tolist()}")
        matrix = matrix.astype(np.int64)
    if np.any(matrix < 0):
        raise ValueError(
            f"{name} must be non-negative (sizes and bond ranks), got {matrix.tolist()}"
        )
    if not np.array_equal(matrix, matrix.T):
        raise ValueError(
            f"{name} must be symmetric (bond rank A[k, q] == A[q, k]), got {matrix.tolist()}"
        )
    if not np.any(np.diag(matrix) > 0):
        raise ValueError(
            f"{name} must have at least one data mode (a positive diagonal "
            f"entry), got {matrix.tolist()}"
        )
    return tuple(tuple(int(v) for v in row) for row in matrix)


def check_permutation(permutation, n_modes, name="permutation"):
    """``permutation`` of ``range(n_modes)`` as a tuple of ints (None: the identity); the one
    check of a data-mode permutation (networks, structure search).

    Raises
    ------
    ValueError
        Naming ``name``, when it is not a permutation of ``0..n_modes - 1``.
    """
    if permutation is None:
        return tuple(range(n_modes))
    try:
        values = np.asarray(permutation)
    except (TypeError, ValueError):
        values = np.asarray([None])
    if (
        values.ndim != 1
        or values.dtype.kind not in "iu"
        or values.shape[0] != n_modes
        or sorted(values.tolist()) != list(range(n_modes))
    ):
        raise ValueError(
            f"{name} must be a permutation of 0..{n_modes - 1} (one data mode per "
            f"core with a positive diagonal), got {permutation!r}"
        )
    return tuple(int(v) for v in values)


def fully_connected_adjacency(shape, rank=1):
    """Adjacency of the fully-connected network (FCTN) over data modes of sizes ``shape``.

    Parameters
    ----------
    shape : sequence of int
        Data mode sizes, one core each.
    rank : int or (d, d) array
        The bond rank of every edge, or a symmetric matrix of them (diagonal ignored).

    Examples
    --------
    >>> from tnml.decompositions.network import fully_connected_adjacency
    >>> fully_connected_adjacency((3, 4, 5), 2)
    array([[3, 2, 2],
           [2, 4, 2],
           [2, 2, 5]])
    """
    shape = [check_positive_int(s, "shape") for s in shape]
    d = len(shape)
    if isinstance(rank, numbers.Integral) and not isinstance(rank, bool):
        check_positive_int(rank, "rank")
        matrix = np.full((d, d), int(rank), dtype=np.int64)
    else:
        matrix = np.array(rank, dtype=np.int64)
        if matrix.shape != (d, d):
            raise ValueError(
                f"rank must be an int or a ({d}, {d}) matrix, got shape {matrix.shape}"
            )
    np.fill_diagonal(matrix, shape)
    check_adjacency(matrix, "rank")
    return matrix


def ring_adjacency(shape, ranks):
    """Adjacency of the tensor ring ``0 - 1 - ... - (d-1) - 0``, bond ``k`` between cores ``k``
    and ``k + 1`` (the last one closing the ring), as the structure-search papers encode it.

    Examples
    --------
    >>> from tnml.decompositions.network import ring_adjacency
    >>> ring_adjacency((3, 4, 5), (2, 3, 4))
    array([[3, 2, 4],
           [2, 4, 3],
           [4, 3, 5]])
    """
    shape = [check_positive_int(s, "shape") for s in shape]
    ranks = list(ranks)
    if len(ranks) != len(shape):
        raise ValueError(f"ranks must have one bond per core ({len(shape)}), got {ranks}")
    d = len(shape)
    if d < 2:
        raise ValueError(f"shape must have at least two modes for a ring, got {shape}")
    ranks = [check_positive_int(rank, "ranks") for rank in ranks]
    matrix = np.diag(np.array(shape, dtype=np.int64))
    if d == 2:  # both bonds join the same two cores: one edge of their product
        ranks = [ranks[0] * ranks[1], ranks[0] * ranks[1]]
    for k, rank in enumerate(ranks):
        matrix[k, (k + 1) % d] = matrix[(k + 1) % d, k] = rank
    return matrix


class _Graph:
    """Everything derived from (adjacency, permutation): labels, shapes, einsum subscripts.

    Built once per structure (:func:`_graph` caches it); arrays never enter it.
    """

    def __init__(self, adjacency, permutation):
        A = np.array(adjacency, dtype=np.int64)
        n = A.shape[0]
        self.adjacency, self.permutation, self.n_cores = adjacency, permutation, n
        self.data_cores = tuple(k for k in range(n) if A[k, k] > 0)
        d = len(self.data_cores)
        self.mode_of_core = [None] * n
        for j, k in enumerate(self.data_cores):
            self.mode_of_core[k] = permutation[j]
        self.core_of_mode = [None] * d
        for k, mode in enumerate(self.mode_of_core):
            if mode is not None:
                self.core_of_mode[mode] = k
        self.shape = tuple(int(A[k, k]) for k in self.core_of_mode)
        self.edges = [
            (a, b, int(A[a, b])) for a in range(n) for b in range(a + 1, n) if A[a, b] >= 2
        ]
        n_edges = len(self.edges)
        symbol = opt_einsum.get_symbol
        self.data_symbols = [symbol(m) for m in range(d)]
        edge_symbol, primed_symbol = {}, {}
        for e, (a, b, _) in enumerate(self.edges):
            edge_symbol[a, b] = edge_symbol[b, a] = symbol(d + e)
            primed_symbol[a, b] = primed_symbol[b, a] = symbol(d + n_edges + e)
        self.batch = symbol(d + 2 * n_edges)
        self.edge_label = edge_symbol
        self.label_size = {
            self.data_symbols[m]: int(A[k, k]) for m, k in enumerate(self.core_of_mode)
        }
        self.label_size.update({edge_symbol[a, b]: r for a, b, r in self.edges})
        self.neighbours = [[q for q in range(n) if q != k and A[k, q] >= 2] for k in range(n)]
        self.bond_labels = [
            "".join(edge_symbol[k, q] for q in self.neighbours[k]) for k in range(n)
        ]
        self.primed_labels = [
            "".join(primed_symbol[k, q] for q in self.neighbours[k]) for k in range(n)
        ]
        self.bond_shapes = [tuple(int(A[k, q]) for q in self.neighbours[k]) for k in range(n)]
        self.data_label = [self.data_symbols[m] if m is not None else "" for m in self.mode_of_core]
        self.labels = [self.data_label[k] + self.bond_labels[k] for k in range(n)]
        self.core_shapes = [
            ((int(A[k, k]),) if A[k, k] > 0 else ()) + self.bond_shapes[k] for k in range(n)
        ]
        self.bond_sizes = [math.prod(s) for s in self.bond_shapes]
        # A graph has a cycle when it has more edges than a spanning forest.
        parent = list(range(n))

        def root(k):
            while parent[k] != k:
                k = parent[k]
            return k

        self.has_cycle = False
        for a, b, _ in self.edges:
            ra, rb = root(a), root(b)
            if ra == rb:
                self.has_cycle = True
            parent[ra] = rb
        self.output = "".join(self.data_symbols)
        self.full_subscripts = ",".join(self.labels) + "->" + self.output
        # |T|^2: the network and its mirror image, sharing the data indices.
        self.norm_subscripts = (
            ",".join(self.labels + [self.data_label[k] + self.primed_labels[k] for k in range(n)])
            + "->"
        )
        # Values at coordinates: every data core gathered to (n, bonds), one batch index.
        self.entries_subscripts = ",".join(self._gathered(k) for k in range(n)) + "->" + self.batch

    def block_labels(self, block):
        """Output labels of a contracted block of cores: its data labels in data order, then
        its open bonds ordered by (outside core, inside core). For the block of all cores but
        ``k`` this is exactly :meth:`environment_subscripts`'s output."""
        inside = set(block)
        data = "".join(
            self.data_symbols[m]
            for m in sorted(self.mode_of_core[q] for q in block if self.mode_of_core[q] is not None)
        )
        bonds = sorted((b, a) for a in block for b in self.neighbours[a] if b not in inside)
        return data + "".join(self.edge_label[a, b] for b, a in bonds)

    def label_shape(self, labels):
        return tuple(self.label_size[c] for c in labels)

    def _gathered(self, k):
        return (self.batch if self.mode_of_core[k] is not None else "") + self.bond_labels[k]

    def others(self, k):
        return [q for q in range(self.n_cores) if q != k]

    def environment_subscripts(self, k):
        """Other cores -> (other data modes in data order, then core k's bonds)."""
        others = self.others(k)
        out = (
            "".join(s for m, s in enumerate(self.data_symbols) if m != self.mode_of_core[k])
            + self.bond_labels[k]
        )
        return ",".join(self.labels[q] for q in others) + "->" + out

    def gram_subscripts(self, k):
        """The doubled network without core k: E_k^T E_k as (bonds, bonds')."""
        others = self.others(k)
        terms = [self.labels[q] for q in others] + [
            self.data_label[q] + self.primed_labels[q] for q in others
        ]
        return ",".join(terms) + "->" + self.bond_labels[k] + self.primed_labels[k]

    def rhs_subscripts(self, k):
        """X contracted with every core but k: X_(k) E_k, in core k's layout (also the
        gradient of <R, T> with respect to core k)."""
        others = self.others(k)
        return ",".join([self.output] + [self.labels[q] for q in others]) + "->" + self.labels[k]

    def design_subscripts(self, k):
        """Gathered other cores -> (n, core k's bonds): the design rows of observations."""
        others = self.others(k)
        return ",".join(self._gathered(q) for q in others) + "->" + self.batch + self.bond_labels[k]


@lru_cache(maxsize=1024)
def _graph(adjacency, permutation):
    return _Graph(adjacency, permutation)


def _check_structure(adjacency, permutation, shape):
    """Validated (adjacency, permutation) for data of ``shape``."""
    adjacency = check_adjacency(adjacency)
    n_modes = sum(1 for k in range(len(adjacency)) if adjacency[k][k] > 0)
    if n_modes != len(shape):
        raise ValueError(
            f"adjacency has {n_modes} cores with a data mode (positive diagonal) "
            f"but X has {len(shape)} modes, shape {tuple(shape)}"
        )
    permutation = check_permutation(permutation, n_modes)
    graph = _graph(adjacency, permutation)
    if graph.shape != tuple(shape):
        raise ValueError(
            f"adjacency's mode sizes (diagonal, placed by permutation) give a "
            f"tensor of shape {graph.shape}, but X has shape {tuple(shape)}"
        )
    return adjacency, permutation, graph
