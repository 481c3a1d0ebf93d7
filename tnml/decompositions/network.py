"""General tensor networks: any graph of cores, given by an adjacency matrix, and their fitting.

A network over ``N`` cores is described the way the structure-search papers (TNGA, TNLS,
TnALE) describe it, by a symmetric integer **adjacency matrix** ``A`` of shape ``(N, N)``:

- ``A[k, k]`` is the size of the data mode that sits on core ``k``; 0 means core ``k`` has no
  data mode (an internal core, such as the core of a Tucker decomposition);
- ``A[k, q]`` (``k != q``) is the bond rank between cores ``k`` and ``q``; 0 or 1 means no
  edge (a bond of rank 1 changes nothing, so it is not stored).

and a **permutation** that says which data mode sits on which core. Convention (the one of the
reference code of TNLS/TnALE, whose ``.npz`` instances store it under the key ``permute``):
list the cores that carry a data mode in increasing order, ``c_0 < c_1 < ...``; then core
``c_j`` carries data mode ``permutation[j]``. When every core carries a data mode (the papers'
case) this is simply "core ``k`` carries data mode ``permutation[k]``", and the adjacency in
data-mode order is ``P A P^T`` with ``P[permutation[k], k] = 1`` (exactly how the reference
code builds its network from a ring and ``permute``). :attr:`TensorNetwork.mode_cores` gives
the inverse map (the core of each data mode).

Core layout: core ``k`` has its data axis first (if any), then one axis per neighbour ``q``
with ``A[k, q] >= 2``, in increasing order of ``q``. So ``n_params`` is the papers' parameter
count ``sum_k prod_l max(A[k, q], 1)``.

Fitting (:func:`network_als`). Core ``k`` enters the tensor linearly: with the
*environment* ``E_k`` (all other cores contracted, shape ``prod(other modes) x B_k`` where
``B_k`` is the product of core ``k``'s bond ranks), ``X_(k) ~= G_k E_k^T``. ALS solves these
least-squares problems one core after the other. With full data only ``E_k^T E_k`` (``B x B``)
and ``X_(k) E_k`` (``I_k x B``) are needed; per core the cheaper of two exact ways is chosen
from the contraction costs (known before running, from :func:`tnml.contract.contraction_info`):
contract the two directly (the doubled network without core ``k``, and X with the network
without core ``k``), or form ``E_k`` once and take two GEMMs. When every core forms its
environment, the environments are reused along the sweep (the blocks of cores after ``k`` are
contracted once per sweep, the block before ``k`` grows by one core per update), so a sweep
costs about ``3N`` pairwise contractions instead of ``N(N-2)``. With a mask every slice of
core ``k`` is a row-wise least-squares problem over its observed entries
(:func:`~tnml.decompositions._masked.solve_rowwise`), whose design rows are rows of the dense
environment on small tensors and gathered per observation otherwise. Every contraction goes
through :mod:`tnml.contract` (:func:`~tnml.contract.einsum`, or
:func:`~tnml.contract.compile_einsum` in the sweep loops), whose compiled paths are cached by
shapes, so refitting a structure (restarts, sweeps, a search revisiting it) never searches a
path twice. Networks with cycles have poor local minima that random starts fall into; a
regularisation path (a relative ridge of 1 halved every sweep) avoids most of them.

:func:`network_adam` fits the same model by Adam with analytic gradients (each core's gradient
is the residual contracted with its environment): the protocol of the reference
implementations (10,000 Adam steps from N(0, 0.1) cores, learning rate 0.001), kept so that
it can be reproduced and compared.
"""

import contextlib
import math
import numbers
from functools import lru_cache

import numpy as np
import opt_einsum

from .._config import check_memory
from .._validation import check_masked_tensor, check_nonneg_float, check_positive_int
from ..backend import check_random_state, get_namespace, to_device
from ..contract import compile_einsum, contraction_info, einsum
from ._base import FactorizedTensor, FitResult
from ._fitting import _stalled, check_fit_params, expanded_error, fit_sweeps
from ._linalg import solve_spd
from ._masked import Observations, SweepLog, solve_rowwise

__all__ = [
    "TensorNetwork",
    "check_adjacency",
    "fully_connected_adjacency",
    "load_network_instance",
    "network_adam",
    "network_als",
    "network_memory",
    "pad_network",
    "random_network",
    "ring_adjacency",
]

# Observations whose design rows set the scale of the masked ridge.
_RIDGE_SAMPLE = 2048
# Default final ridge with a mask (relative, as every ridge here).
_MASKED_RIDGE = 1e-10
# Masked fits of tensors up to this many entries use dense environments (see _MaskedData).
_DENSE_ENVIRONMENT_ENTRIES = 2**20
# The regularisation path of random starts (see _ridge_path).
_RIDGE_START, _RIDGE_DECAY = 1.0, 0.5
# Environments of at most this many entries are always formed (see _plan).
_SMALL_ENVIRONMENT = 2**15
# Fits whose environments and data have at most this many entries run BLAS on one thread.
_ONE_THREAD_ENTRIES = 2**20
# Path optimiser of a network's own contractions (environments, values, norm). "dp" (optimal
# dynamic programme) plans 6-operand environments faster but 12-operand norms 5x slower;
# "auto" was the fastest overall on the TnALE order-6 ring (planning a new structure: 20 ms).
_PATH = "auto"
# Path optimiser of the doubled network and of X with the network (twice the operands of an
# environment): opt_einsum's "auto" would run a branch-and-bound search for every new structure.
_DOUBLED_PATH = "greedy"
# The price of one pairwise contraction step in flops (~30 us of Python and dispatch at about
# 1 GFlop/s): decides between the contraction strategies of small problems.
_STEP_FLOPS = 30_000


# -- structure ------------------------------------------------------------------------------------
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
        raise ValueError(f"{name} must be a non-empty square (N, N) matrix, got shape "
                         f"{matrix.shape}")
    if matrix.dtype.kind == "f":
        if not np.all(np.isfinite(matrix)) or not np.all(matrix == np.round(matrix)):
            raise TypeError(f"{name} must hold integers, got {matrix.tolist()}")
        matrix = matrix.astype(np.int64)
    if np.any(matrix < 0):
        raise ValueError(f"{name} must be non-negative (sizes and bond ranks), got "
                         f"{matrix.tolist()}")
    if not np.array_equal(matrix, matrix.T):
        raise ValueError(f"{name} must be symmetric (bond rank A[k, q] == A[q, k]), got "
                         f"{matrix.tolist()}")
    if not np.any(np.diag(matrix) > 0):
        raise ValueError(f"{name} must have at least one data mode (a positive diagonal "
                         f"entry), got {matrix.tolist()}")
    return tuple(tuple(int(v) for v in row) for row in matrix)


def _check_permutation(permutation, n_modes, name="permutation"):
    if permutation is None:
        return tuple(range(n_modes))
    try:
        values = np.asarray(permutation)
    except (TypeError, ValueError):
        values = np.asarray([None])
    if values.ndim != 1 or values.dtype.kind not in "iu" or values.shape[0] != n_modes \
            or sorted(values.tolist()) != list(range(n_modes)):
        raise ValueError(f"{name} must be a permutation of 0..{n_modes - 1} (one data mode per "
                         f"core with a positive diagonal), got {permutation!r}")
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
            raise ValueError(f"rank must be an int or a ({d}, {d}) matrix, got shape "
                             f"{matrix.shape}")
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
        self.edges = [(a, b, int(A[a, b])) for a in range(n) for b in range(a + 1, n)
                      if A[a, b] >= 2]
        n_edges = len(self.edges)
        symbol = opt_einsum.get_symbol
        self.data_symbols = [symbol(m) for m in range(d)]
        edge_symbol, primed_symbol = {}, {}
        for e, (a, b, _) in enumerate(self.edges):
            edge_symbol[a, b] = edge_symbol[b, a] = symbol(d + e)
            primed_symbol[a, b] = primed_symbol[b, a] = symbol(d + n_edges + e)
        self.batch = symbol(d + 2 * n_edges)
        self.edge_label = edge_symbol
        self.label_size = {self.data_symbols[m]: int(A[k, k]) for m, k in
                           enumerate(self.core_of_mode)}
        self.label_size.update({edge_symbol[a, b]: r for a, b, r in self.edges})
        self.neighbours = [[q for q in range(n) if q != k and A[k, q] >= 2] for k in range(n)]
        self.bond_labels = ["".join(edge_symbol[k, q] for q in self.neighbours[k])
                            for k in range(n)]
        self.primed_labels = ["".join(primed_symbol[k, q] for q in self.neighbours[k])
                              for k in range(n)]
        self.bond_shapes = [tuple(int(A[k, q]) for q in self.neighbours[k]) for k in range(n)]
        self.data_label = [self.data_symbols[m] if m is not None else ""
                           for m in self.mode_of_core]
        self.labels = [self.data_label[k] + self.bond_labels[k] for k in range(n)]
        self.core_shapes = [((int(A[k, k]),) if A[k, k] > 0 else ()) + self.bond_shapes[k]
                            for k in range(n)]
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
        self.norm_subscripts = ",".join(self.labels + [self.data_label[k] + self.primed_labels[k]
                                                       for k in range(n)]) + "->"
        # Values at coordinates: every data core gathered to (n, bonds), one batch index.
        self.entries_subscripts = ",".join(self._gathered(k) for k in range(n)) + "->" + self.batch

    def block_labels(self, block):
        """Output labels of a contracted block of cores: its data labels in data order, then
        its open bonds ordered by (outside core, inside core). For the block of all cores but
        ``k`` this is exactly :meth:`environment_subscripts`'s output."""
        inside = set(block)
        data = "".join(self.data_symbols[m] for m in sorted(
            self.mode_of_core[q] for q in block if self.mode_of_core[q] is not None))
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
        out = "".join(s for m, s in enumerate(self.data_symbols)
                      if m != self.mode_of_core[k]) + self.bond_labels[k]
        return ",".join(self.labels[q] for q in others) + "->" + out

    def gram_subscripts(self, k):
        """The doubled network without core k: E_k^T E_k as (bonds, bonds')."""
        others = self.others(k)
        terms = [self.labels[q] for q in others] + [self.data_label[q] + self.primed_labels[q]
                                                    for q in others]
        return ",".join(terms) + "->" + self.bond_labels[k] + self.primed_labels[k]

    def rhs_subscripts(self, k):
        """X contracted with every core but k: X_(k) E_k, in core k's layout (also the
        gradient of <R, T> with respect to core k)."""
        others = self.others(k)
        return ",".join([self.output] + [self.labels[q] for q in others]) + "->" + self.labels[k]

    def design_subscripts(self, k):
        """Gathered other cores -> (n, core k's bonds): the design rows of observations."""
        others = self.others(k)
        return ",".join(self._gathered(q) for q in others) + "->" + self.batch \
            + self.bond_labels[k]


@lru_cache(maxsize=1024)
def _graph(adjacency, permutation):
    return _Graph(adjacency, permutation)


# -- the format -----------------------------------------------------------------------------------
class TensorNetwork(FactorizedTensor):
    """A tensor network over any graph: cores, an adjacency matrix and a mode permutation.

    Parameters
    ----------
    cores : list of arrays
        One per node. Core ``k`` has its data axis first (when ``adjacency[k, k] > 0``), then one
        axis per neighbour ``q`` with ``adjacency[k, q] >= 2``, in increasing order of ``q``.
    adjacency : (N, N) symmetric array of non-negative ints
        Diagonal: the size of the data mode on each core (0: an internal core without one);
        off-diagonal: bond ranks (0 or 1: no edge). See the module docstring.
    permutation : sequence of int or None
        ``permutation[j]`` is the data mode carried by the ``j``-th core with a data mode
        (cores in increasing order): for networks where every core has a data mode, core
        ``k`` carries data mode ``permutation[k]`` (the reference code's ``permute``).
        None: the identity.

    Attributes
    ----------
    cores : list of arrays
    adjacency : ndarray of shape (N, N)
    permutation : tuple of int
    mode_cores : tuple of int
        The core carrying each data mode (the inverse of ``permutation`` in core numbers).
    n_cores : int
    shape : tuple of int
        The data tensor's shape, modes in data order.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import TensorNetwork, TRTensor
    >>> rng = np.random.default_rng(0)
    >>> tr = TRTensor([rng.standard_normal(s) for s in [(2, 3, 3), (3, 4, 2), (2, 5, 2)]])
    >>> net = TensorNetwork.from_tr(tr)
    >>> net.adjacency
    array([[3, 3, 2],
           [3, 4, 2],
           [2, 2, 5]])
    >>> net.shape, net.n_params == tr.n_params
    ((3, 4, 5), True)
    >>> bool(np.allclose(net.to_tensor(), tr.to_tensor()))
    True
    """

    _array_names = ("cores",)

    def __init__(self, cores, adjacency, permutation=None):
        if isinstance(cores, (str, bytes)) or not hasattr(cores, "__len__"):
            raise TypeError(f"cores must be a list of arrays, got {type(cores).__name__}")
        cores = list(cores)
        adjacency = check_adjacency(adjacency)
        n_modes = sum(1 for k in range(len(adjacency)) if adjacency[k][k] > 0)
        permutation = _check_permutation(permutation, n_modes)
        graph = _graph(adjacency, permutation)
        if len(cores) != graph.n_cores:
            raise ValueError(f"cores must have one array per node of adjacency "
                             f"({graph.n_cores}), got {len(cores)}")
        get_namespace(*cores)  # raises on cores from different device namespaces
        for k, core in enumerate(cores):
            if tuple(getattr(core, "shape", ())) != graph.core_shapes[k] \
                    or not hasattr(core, "dtype"):
                raise ValueError(f"cores[{k}] must have shape {graph.core_shapes[k]} (data axis, "
                                 f"then one axis per neighbour with bond rank >= 2), got "
                                 f"{tuple(getattr(core, 'shape', ()))}")
        self.cores, self._graph = cores, graph

    @classmethod
    def _trusted(cls, cores, graph):
        """A network from cores already known to fit ``graph`` (skips validation in loops)."""
        network = cls.__new__(cls)
        network.cores, network._graph = cores, graph
        return network

    # -- structure ------------------------------------------------------------------------------
    @property
    def adjacency(self):
        return np.array(self._graph.adjacency, dtype=np.int64)

    @property
    def permutation(self):
        return self._graph.permutation

    @property
    def mode_cores(self):
        return tuple(self._graph.core_of_mode)

    @property
    def n_cores(self):
        return self._graph.n_cores

    @property
    def shape(self):
        return self._graph.shape

    def _metadata(self):
        return {"adjacency": [list(row) for row in self._graph.adjacency],
                "permutation": list(self._graph.permutation)}

    def _rank_repr(self):
        return f"edges={[(a, b, r) for a, b, r in self._graph.edges]}"

    # -- values -----------------------------------------------------------------------------------
    # to_tensor/_to_tensor/_to_tensor_bytes: FactorizedTensor's memory-budget template (branch
    # i9); this to_tensor is the template's own and goes once that is merged.
    def _to_tensor(self):
        return einsum(self._graph.full_subscripts, *self.cores, optimize=_PATH)

    def _to_tensor_bytes(self):
        info = contraction_info(self._graph.full_subscripts, *self._graph.core_shapes,
                                optimize=_PATH)
        return info.largest_intermediate * self.dtype.itemsize

    def entries(self, indices):
        """Values at integer coordinates ``indices`` of shape ``(n, ndim)``, never densifying:
        each core's slice is gathered per coordinate and the network is contracted with one
        batch index."""
        indices = self._checked_indices(indices)
        return einsum(self._graph.entries_subscripts, *_gather(self._graph, self.cores, indices),
                      optimize=_PATH)

    def norm(self):
        """Frobenius norm from the doubled network (no densifying); a 0-d array of the cores'
        namespace."""
        xp = self.xp
        return xp.sqrt(xp.abs(einsum(self._graph.norm_subscripts, *self.cores, *self.cores,
                                     optimize=_PATH)))

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_tt(cls, tt):
        """The tensor train ``tt`` (a :class:`TTTensor`) as a path-graph network."""
        cores = list(tt.cores)
        d = len(cores)
        axes = [[("bond", (k - 1, k)), "data", ("bond", (k, k + 1))] for k in range(d)]
        return _from_labelled(cores, axes, [True] * d)

    @classmethod
    def from_tr(cls, tr):
        """The tensor ring ``tr`` (a :class:`TRTensor`) as a cycle-graph network."""
        cores = list(tr.cores)
        d = len(cores)
        axes = [[("bond", (k - 1) % d), "data", ("bond", k)] for k in range(d)]
        return _from_labelled(cores, axes, [True] * d)

    @classmethod
    def from_tucker(cls, tucker):
        """The Tucker tensor as a star: one core per factor (carrying the data mode, in order)
        and a last, internal core (the Tucker core) linked to all of them."""
        xp = tucker.xp
        d = len(tucker.factors)
        factors = [xp.eye(tucker.core.shape[m], dtype=tucker.core.dtype) if f is None else f
                   for m, f in enumerate(tucker.factors)]
        axes = [["data", ("bond", m)] for m in range(d)] + [[("bond", m) for m in range(d)]]
        return _from_labelled(factors + [tucker.core], axes, [True] * d + [False])

    @classmethod
    def fully_connected(cls, shape, rank, *, random_state=None, dtype="float64", xp=None):
        """A random fully-connected network (FCTN): every pair of cores linked with ``rank``
        (an int or a symmetric ``(d, d)`` matrix); see :func:`random_network`."""
        return random_network(fully_connected_adjacency(shape, rank),
                              random_state=random_state, dtype=dtype, xp=xp)


def _from_labelled(cores, axes, has_data):
    """A TensorNetwork from cores whose axes are labelled ``"data"`` or ``("bond", key)``.

    Two cores sharing a bond key are linked; size-1 bonds are dropped (they are no edge), and
    several bonds between the same pair (a two-core ring) are merged into one, their axes
    ordered by key on both sides so that the merge is consistent.
    """
    xp = get_namespace(*cores)
    n = len(cores)
    owners = {}
    for k, labels in enumerate(axes):
        for axis, label in enumerate(labels):
            if label != "data":
                owners.setdefault(label[1], []).append((k, axis))
    A = np.zeros((n, n), dtype=np.int64)
    neighbour_axes = [{} for _ in range(n)]  # k -> {q: [(key, axis), ...]}
    for key, ends in owners.items():
        if len(ends) != 2:
            continue  # an open boundary bond (size 1 in a TT)
        (a, axis_a), (b, axis_b) = ends
        if a == b:
            raise ValueError(f"core {a} has a bond to itself")
        neighbour_axes[a].setdefault(b, []).append((key, axis_a))
        neighbour_axes[b].setdefault(a, []).append((key, axis_b))
    for k in range(n):
        for q, bonds in neighbour_axes[k].items():
            A[k, q] = math.prod(int(cores[k].shape[axis]) for _, axis in bonds)
    new_cores = []
    for k, core in enumerate(cores):
        data_axes = [axis for axis, label in enumerate(axes[k]) if label == "data"]
        if has_data[k]:
            A[k, k] = int(core.shape[data_axes[0]])
        order = list(data_axes)
        sizes = [int(core.shape[a]) for a in data_axes]
        for q in sorted(neighbour_axes[k]):
            bonds = sorted(neighbour_axes[k][q], key=lambda item: str(item[0]))
            order += [axis for _, axis in bonds]
            if A[k, q] >= 2:
                sizes.append(int(A[k, q]))
        # Open boundary axes (size 1) go last and vanish in the reshape.
        order += [a for a in range(core.ndim) if a not in order]
        new_cores.append(xp.reshape(xp.transpose(core, order), tuple(sizes)))
    return TensorNetwork(new_cores, A)


def _gather(graph, cores, indices):
    """Core slices at the coordinates: data cores become ``(n, bonds...)``, internal ones stay."""
    xp = get_namespace(*cores)
    gathered = []
    for k, core in enumerate(cores):
        mode = graph.mode_of_core[k]
        gathered.append(core if mode is None else xp.take(core, indices[:, mode], axis=0))
    return gathered


# -- random networks and padding ------------------------------------------------------------------
def random_network(adjacency, permutation=None, *, random_state=None, dtype="float64", xp=None):
    """A network of the given structure with standard normal cores (drawn on the host).

    Parameters
    ----------
    adjacency : (N, N) symmetric int array
    permutation : sequence of int or None
        See :class:`TensorNetwork`.
    random_state : None, int or numpy RandomState
    dtype : dtype, default="float64"
    xp : array namespace or None
        Where the cores live (NumPy by default).

    Examples
    --------
    >>> from tnml.decompositions import random_network
    >>> net = random_network([[3, 2, 0], [2, 4, 3], [0, 3, 5]], random_state=0)
    >>> [core.shape for core in net.cores], net.n_params
    ([(3, 2), (4, 2, 3), (5, 3)], 45)
    """
    adjacency = check_adjacency(adjacency)
    n_modes = sum(1 for k in range(len(adjacency)) if adjacency[k][k] > 0)
    permutation = _check_permutation(permutation, n_modes)
    graph = _graph(adjacency, permutation)
    rng = check_random_state(random_state)
    xp = np if xp is None else xp
    cores = [to_device(rng.standard_normal(shape).astype(dtype), xp)
             for shape in graph.core_shapes]
    return TensorNetwork(cores, adjacency, permutation)


def pad_network(network, adjacency, *, random_state=None, scale=1e-3):
    """``network`` with its bonds enlarged to ``adjacency``: a warm start for a larger structure.

    Every core keeps its old block; new entries (new slices of grown bonds, and whole new axes
    for new edges) are Gaussian with standard deviation ``scale`` times the core's root mean
    square. A path through a new bond index enters and leaves it through new entries, so the
    tensor changes by ``O(scale^2)`` relative to its norm.

    Parameters
    ----------
    network : TensorNetwork
    adjacency : (N, N) int array
        The same diagonal as ``network.adjacency`` and every bond at least as large.
    random_state : None, int or numpy RandomState
    scale : float, default=1e-3

    Returns
    -------
    TensorNetwork
        Same permutation as ``network``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_network, pad_network
    >>> net = random_network([[3, 2, 0], [2, 4, 0], [0, 0, 5]], random_state=0)
    >>> big = pad_network(net, [[3, 3, 2], [3, 4, 2], [2, 2, 5]], random_state=0)
    >>> big.n_params, bool(np.allclose(big.to_tensor(), net.to_tensor(), rtol=1e-4, atol=1e-4))
    (62, True)
    """
    if not isinstance(network, TensorNetwork):
        raise TypeError(f"network must be a TensorNetwork, got {type(network).__name__}")
    scale = check_nonneg_float(scale, "scale")
    new = check_adjacency(adjacency)
    old = network._graph.adjacency
    if len(new) != len(old) or any(new[k][k] != old[k][k] for k in range(len(old))):
        raise ValueError(f"adjacency must keep the network's nodes and data modes (diagonal "
                         f"{[old[k][k] for k in range(len(old))]}), got {[list(r) for r in new]}")
    if any(max(new[k][q], 1) < max(old[k][q], 1) for k in range(len(old))
           for q in range(len(old)) if k != q):
        raise ValueError(f"adjacency must not shrink a bond: the network has "
                         f"{[list(r) for r in old]}, got {[list(r) for r in new]}")
    graph = _graph(new, network.permutation)
    old_graph = network._graph
    xp = network.xp
    rng = check_random_state(random_state)
    cores = []
    for k, core in enumerate(network.cores):
        shape = graph.core_shapes[k]
        if shape == old_graph.core_shapes[k]:
            cores.append(core)
            continue
        # The old core with size-1 axes for its new edges, in the new axis order.
        expanded_shape = tuple(([old[k][k]] if old[k][k] > 0 else [])
                               + [max(old[k][q], 1) for q in graph.neighbours[k]])
        expanded = xp.reshape(core, expanded_shape)
        rms = math.sqrt(float(xp.sum(core * core)) / max(core.size, 1)) or 1.0
        fresh = xp.asarray(to_device((scale * rms) * rng.standard_normal(shape), xp),
                           dtype=core.dtype)
        fresh[tuple(slice(0, s) for s in expanded_shape)] = expanded
        cores.append(fresh)
    return TensorNetwork(cores, new, network.permutation)


# -- fitting: validation and plans ----------------------------------------------------------------
def _check_structure(adjacency, permutation, shape):
    """Validated (adjacency, permutation) for data of ``shape``."""
    adjacency = check_adjacency(adjacency)
    n_modes = sum(1 for k in range(len(adjacency)) if adjacency[k][k] > 0)
    if n_modes != len(shape):
        raise ValueError(f"adjacency has {n_modes} cores with a data mode (positive diagonal) "
                         f"but X has {len(shape)} modes, shape {tuple(shape)}")
    permutation = _check_permutation(permutation, n_modes)
    graph = _graph(adjacency, permutation)
    if graph.shape != tuple(shape):
        raise ValueError(f"adjacency's mode sizes (diagonal, placed by permutation) give a "
                         f"tensor of shape {graph.shape}, but X has shape {tuple(shape)}")
    return adjacency, permutation, graph


@lru_cache(maxsize=1024)
def _plan(adjacency, permutation, itemsize):
    """Per core: the cheaper exact way to get E^T E and X E, and the fit's peak memory.

    Returns ``(strategies, peak_bytes, small)``; a strategy is ``"environment"`` (form ``E_k``,
    then two GEMMs) or ``"gram"`` (contract the doubled network and X directly). The cost is
    the flop count plus a fixed price per pairwise contraction: on the small tensors of a
    structure search, the Python overhead of a step outweighs its arithmetic. The peak counts
    X, its unfolded copies, the largest environment or contraction intermediate, and with
    environments reused along a sweep (``_FullData``) every block held at once. ``small``:
    every environment and X have at most ``_ONE_THREAD_ENTRIES`` entries (see
    :func:`_blas_threads`).
    """
    graph = _graph(adjacency, permutation)
    shape = graph.shape
    total = math.prod(shape)
    strategies, working, copies, largest = [], 0, 1, total
    for k in range(graph.n_cores):
        others = graph.others(k)
        other_shapes = [graph.core_shapes[q] for q in others]
        size = shape[graph.mode_of_core[k]] if graph.mode_of_core[k] is not None else 1
        rows, bonds = total // size, graph.bond_sizes[k]
        largest = max(largest, rows * bonds)
        if rows * bonds <= _SMALL_ENVIRONMENT:
            # A small environment is the cheaper way whatever the doubled network costs: no
            # need to plan anything here (path searches dominate a new structure's first fit;
            # a contraction that is planned later still checks the budget before it runs).
            choice, memory = "environment", rows * bonds + bonds * bonds
        else:
            env = contraction_info(graph.environment_subscripts(k), *other_shapes,
                                   optimize=_PATH)
            env_memory = max(env.largest_intermediate, rows * bonds) + bonds * bonds
            gram = contraction_info(graph.gram_subscripts(k), *other_shapes, *other_shapes,
                                    optimize=_DOUBLED_PATH)
            rhs = contraction_info(graph.rhs_subscripts(k), shape, *other_shapes,
                                   optimize=_DOUBLED_PATH)
            env_cost = env.flops + 2 * rows * bonds * (bonds + size) \
                + _STEP_FLOPS * (len(env.path) + 2)
            gram_cost = gram.flops + rhs.flops + _STEP_FLOPS * (len(gram.path) + len(rhs.path))
            choice, memory = ("environment", env_memory) if env_cost <= gram_cost else \
                ("gram", max(gram.largest_intermediate, rhs.largest_intermediate))
        strategies.append(choice)
        working = max(working, memory)
        copies += choice == "environment" and graph.mode_of_core[k] not in (None, 0)
    n = graph.n_cores
    if n >= 3 and all(choice == "environment" for choice in strategies):
        def size_of(block):
            return math.prod(graph.label_shape(graph.block_labels(block)))

        held = sum(size_of(range(j, n)) for j in range(1, n))
        working += held + max(size_of(range(k + 1)) for k in range(n - 1))
    return (tuple(strategies), (copies * total + working) * itemsize,
            largest <= _ONE_THREAD_ENTRIES)


@lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_threads(small):
    """One BLAS thread for a fit whose GEMMs are all small, as scikit-learn's KMeans does
    for its small per-chunk GEMMs: on 2 cores shared with other work, OpenBLAS's spinning
    threads made a 5-core FCTN fit on 7^5 entries 15x slower than one thread. Larger fits keep
    the caller's setting."""
    if not small:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


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
    return _plan(check_adjacency(adjacency), permutation, int(itemsize))[1]


def _check_network_fit_params(max_iter, tol, target_error, n_init, verbose, ridge=0.0):
    tol, ridge = check_fit_params(max_iter, tol, verbose, ridge)
    if target_error is not None:
        target_error = check_nonneg_float(target_error, "target_error")
    return tol, target_error, check_positive_int(n_init, "n_init"), ridge


def _prepare(X, adjacency, permutation, mask, init):
    """Validated data (zeros where unobserved), mask, structure and a checked init network."""
    X, mask = check_masked_tensor(X, mask)
    if mask is not None and bool(get_namespace(mask).all(mask)):
        mask = None  # the full-data solver is exact and much cheaper
    adjacency, permutation, graph = _check_structure(adjacency, permutation, X.shape)
    if isinstance(init, TensorNetwork):
        if init._graph.adjacency != adjacency or init.permutation != permutation:
            raise ValueError(f"init has adjacency {init.adjacency.tolist()} and permutation "
                             f"{init.permutation}; expected {[list(r) for r in adjacency]} and "
                             f"{permutation} (use pad_network to grow a network first)")
    elif not (isinstance(init, str) and init == "random"):
        raise ValueError(f"init must be 'random' or a TensorNetwork, got {init!r:.80}")
    return X, mask, adjacency, permutation, graph


def _random_start(graph, X, norm_x, rng, std=None):
    """Gaussian cores; scaled so that the network's norm is ``||X||`` unless ``std`` is given."""
    xp = get_namespace(X)
    cores = [xp.asarray(to_device(rng.standard_normal(s), xp), dtype=X.dtype)
             for s in graph.core_shapes]
    if std is not None:
        return [core * std for core in cores]
    norm = float(xp.sqrt(xp.abs(einsum(graph.norm_subscripts, *cores, *cores, optimize=_PATH))))
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

    def __init__(self, X, graph, strategies):
        xp = get_namespace(X)
        self.X, self.graph, self.strategies, self.xp = X, graph, strategies, xp
        self.norm_x_sq = float(xp.sum(X * X))
        itemsize = X.dtype.itemsize
        n = graph.n_cores
        self.reuse = n >= 3 and all(strategy == "environment" for strategy in strategies)
        self.unfolded, self.expressions = {}, []
        for k in range(graph.n_cores):
            mode = graph.mode_of_core[k]
            other_shapes = [graph.core_shapes[q] for q in graph.others(k)]
            if strategies[k] == "environment":
                # X_(k): core k's data mode first, the others in data order (one copy per mode).
                self.unfolded[k] = xp.reshape(X, (1, -1)) if mode is None else \
                    xp.ascontiguousarray(xp.reshape(xp.moveaxis(X, mode, 0), (X.shape[mode], -1)))
                self.expressions.append(None if self.reuse else compile_einsum(
                    graph.environment_subscripts(k), *other_shapes, xp=xp, itemsize=itemsize,
                    optimize=_PATH))
            else:
                self.expressions.append((
                    compile_einsum(graph.gram_subscripts(k), *other_shapes, *other_shapes,
                                   xp=xp, itemsize=itemsize, optimize=_DOUBLED_PATH),
                    compile_einsum(graph.rhs_subscripts(k), X.shape, *other_shapes,
                                   xp=xp, itemsize=itemsize, optimize=_DOUBLED_PATH)))
        self.full = compile_einsum(graph.full_subscripts, *graph.core_shapes, xp=xp,
                                   itemsize=itemsize, optimize=_PATH)
        if self.reuse:
            # Sweeping 0..N-1, core k's environment is (cores 0..k-1, already updated) x
            # (cores k+1..N-1, not yet): right blocks R_j = cores j..N-1 are built once per
            # sweep, the left block grows by one core per update, and each environment is
            # one pairwise contraction: about 3N contractions per sweep instead of N(N-2).
            def pairwise(left, right, out):
                return compile_einsum(f"{left},{right}->{out}", graph.label_shape(left),
                                      graph.label_shape(right), xp=xp, itemsize=itemsize)

            block = graph.block_labels
            self.right = {j: pairwise(graph.labels[j], block(range(j + 1, n)), block(range(j, n)))
                          for j in range(1, n - 1)}
            self.left = {k: pairwise(block(range(k)), graph.labels[k], block(range(k + 1)))
                         for k in range(1, n - 1)}
            self.between = {k: pairwise(block(range(k)), block(range(k + 1, n)),
                                        block([q for q in range(n) if q != k]))
                            for k in range(1, n - 1)}

    def sweep(self, cores, ridge):
        """One ALS sweep over the cores (in place); the last update's quantities."""
        n = self.graph.n_cores
        if not self.reuse:
            return _plain_sweep(self, cores, ridge)
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
        scale = float(xp.trace(gram)) / bonds
        solution = solve_spd(gram, rhs, ridge * scale if scale > 0 else ridge)
        cores[k] = xp.reshape(solution, self.graph.core_shapes[k])
        return solution, rhs, gram

    def update(self, cores, k, ridge):
        """Solve core k in place; return its matricised solution, rhs and Gram matrix."""
        xp, graph = self.xp, self.graph
        others = [cores[q] for q in graph.others(k)]
        bonds = graph.bond_sizes[k]
        if self.strategies[k] == "environment":
            return self._solve(cores, k, self.expressions[k](*others), ridge)
        else:
            gram_expression, rhs_expression = self.expressions[k]
            gram = xp.reshape(gram_expression(*others, *others), (bonds, bonds))
            rhs = xp.reshape(rhs_expression(self.X, *others), (-1, bonds))
        scale = float(xp.trace(gram)) / bonds
        solution = solve_spd(gram, rhs, ridge * scale if scale > 0 else ridge)
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
        error = expanded_error(max(self.norm_x_sq - 2 * inner + norm_hat_sq, 0.0),
                               self.norm_x_sq, self.X.dtype)
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
        self.columns = [obs.column(m) for m in range(len(graph.shape))]
        self.design = [graph.design_subscripts(k) for k in range(graph.n_cores)]
        self.norm_observed = float(xp.linalg.norm(obs.values)) or 1.0
        total = math.prod(graph.shape)
        self.dense = total <= max(8 * obs.n_obs, _DENSE_ENVIRONMENT_ENTRIES)
        if self.dense:
            itemsize = X.dtype.itemsize
            self.weight = xp.asarray(mask, dtype=X.dtype)
            self.full = compile_einsum(graph.full_subscripts, *graph.core_shapes, xp=xp,
                                       itemsize=itemsize, optimize=_PATH)
            self.environments, self.rows = [], []
            for k in range(graph.n_cores):
                others = graph.others(k)
                self.environments.append(compile_einsum(
                    graph.environment_subscripts(k), *[graph.core_shapes[q] for q in others],
                    xp=xp, itemsize=itemsize, optimize=_PATH))
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
            gathered.append(cores[q] if mode is None
                            else xp.take(cores[q], xp.take(self.columns[mode], positions), axis=0))
        return xp.reshape(einsum(self.design[k], *gathered, optimize=_PATH),
                          (positions.shape[0], graph.bond_sizes[k]))

    def update(self, cores, k, ridge):
        xp, graph, obs = self.xp, self.graph, self.observations
        bonds, mode = graph.bond_sizes[k], graph.mode_of_core[k]
        n_rows = 1 if mode is None else graph.shape[mode]
        if self.dense:
            env = xp.reshape(self.environments[k](*[cores[q] for q in graph.others(k)]),
                             (-1, bonds))
            rows = self.rows[k]

            def design(idx):
                return xp.take(env, xp.take(rows, idx), axis=0)
        else:
            def design(idx):
                return self.design_rows(cores, k, idx)
        # The ridge is relative: scaled by the mean diagonal of a slice's normal equations,
        # estimated from a sample of design rows.
        sample = design(xp.arange(min(obs.n_obs, _RIDGE_SAMPLE)))
        scale = float(xp.mean(sample * sample)) * obs.n_obs / n_rows
        solution = solve_rowwise(obs, mode, design, n_rows, bonds,
                                 ridge=ridge * scale if scale > 0 else ridge)
        cores[k] = xp.reshape(solution, graph.core_shapes[k])
        return solution, None, None

    def sweep(self, cores, ridge):
        return _plain_sweep(self, cores, ridge)

    def error(self, cores, *_):
        """Relative error on the observed entries; None leaves it to the sweep log (entries
        at the observed coordinates) when the tensor is not formed."""
        if not self.dense:
            return None
        xp = self.xp
        residual = (self.X - self.full(*cores)) * self.weight
        return math.sqrt(float(xp.sum(residual * residual))) / self.norm_observed


def _plain_sweep(problem, cores, ridge):
    """Update every core in turn from its own environment contraction."""
    n = problem.graph.n_cores
    for k in range(n):
        last = problem.update(cores, k, ridge)
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


def _als_run(problem, graph, cores, max_iter, tol, target_error, log, ridges, dtype):

    def sweep(iteration):
        solution, rhs, gram = problem.sweep(cores, next(ridges))
        return (TensorNetwork._trusted(list(cores), graph),
                problem.error(cores, solution, rhs, gram))

    stop = None
    if target_error is not None:
        def stop(errors):
            return errors[-1] <= target_error or _stalled(errors, tol, 1)
    result = fit_sweeps(sweep, max_iter, tol, log, dtype, stop=stop)
    return TensorNetwork._trusted(list(cores), graph), result


def _ridge_path(floor, start):
    """Relative ridges of successive sweeps: from ``start``, halved every sweep, down to
    ``floor``. Heavily regularised first sweeps keep a random start from locking into the
    poor local minima that networks with cycles have (tensor ring, triangle, FCTN): on small
    random instances this lifts the per-start recovery rate from about one in two (one in
    five for some) to eight or more in ten, for about ten more sweeps."""
    ridge = start
    while True:
        yield max(ridge, floor)
        ridge *= _RIDGE_DECAY


def network_als(X, adjacency, permutation=None, *, mask=None, init="random", max_iter=100,
                tol=1e-7, target_error=None, n_init=1, ridge=None, regularization_path=True,
                random_state=None, verbose=0):
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
    ridge : float or None, default=None
        Final Tikhonov term, relative to the mean diagonal of each normal-equation matrix.
        None: 0 with full data (a singular Gram matrix falls back to the pseudo-inverse), 1e-10
        with a mask (a slice with few observed entries has a singular system).
    regularization_path : bool, default=True
        On networks with cycles, random starts begin with a relative ridge of 1, halved
        every sweep down to ``ridge``: this keeps them out of the poor local minima of such
        networks (see ``_ridge_path``). Trees (TT, Tucker) do not need it (on them a strong
        ridge can collapse bonds), nor do warm starts (``init`` a network): they use
        ``ridge`` throughout.
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
    tol, target_error, n_init, ridge = _check_network_fit_params(
        max_iter, tol, target_error, n_init, verbose,
        (0.0 if mask is None else _MASKED_RIDGE) if ridge is None else ridge)
    X, mask, adjacency, permutation, graph = _prepare(X, adjacency, permutation, mask, init)
    strategies, peak, small = _plan(adjacency, permutation, X.dtype.itemsize)
    check_memory(peak, f"network_als on a structure of {graph.n_cores} cores")
    xp = get_namespace(X)
    rng = check_random_state(random_state)
    if mask is None:
        problem = _FullData(X, graph, strategies)
        norm_x = math.sqrt(problem.norm_x_sq)
        observations = None
    else:
        problem = _MaskedData(X, mask, graph)
        norm_x = float(xp.linalg.norm(problem.observations.values)) \
            * math.sqrt(math.prod(X.shape) / problem.observations.n_obs)
        observations = problem.observations
    best = None
    with _blas_threads(small):
        for start in range(n_init):
            warm = start == 0 and isinstance(init, TensorNetwork)
            cores = _initial_cores(graph, X, init if warm else "random", norm_x, rng)
            log = SweepLog(observations, None, "network_als", verbose)
            path = regularization_path and graph.has_cycle and not warm
            ridges = _ridge_path(ridge, _RIDGE_START if path else ridge)
            network, result = _als_run(problem, graph, cores, max_iter, tol, target_error, log,
                                       ridges, X.dtype)
            if best is None or result.error < best[1].error:
                best = (network, result)
            if target_error is not None and result.error <= target_error:
                break
    return best


# -- Adam -----------------------------------------------------------------------------------------
def network_adam(X, adjacency, permutation=None, *, mask=None, init="random", learning_rate=1e-3,
                 max_iter=10000, target_error=None, n_init=1, init_std=0.1, random_state=None,
                 verbose=0):
    """Fit a tensor network of a fixed structure by Adam with analytic gradients.

    The loss is the squared relative error ``||M * (X - T)||^2 / ||M * X||^2`` (``M`` the
    mask, all ones without one), the reference implementations' ``rse_loss``; the gradient
    with respect to core ``k`` is ``-2 / ||M X||^2`` times the residual contracted with core
    ``k``'s environment. The defaults reproduce the reference protocol: cores drawn from
    N(0, ``init_std`` = 0.1), learning rate 0.001, 10,000 steps.

    Parameters
    ----------
    X, adjacency, permutation, mask
        As in :func:`network_als`.
    init : "random" or TensorNetwork, default="random"
    learning_rate : float, default=1e-3
    max_iter : int, default=10000
        Adam steps per start.
    target_error : float or None
        Stop a start once its relative error (the square root of the loss) is at most this.
    n_init : int, default=1
        Starts; the best is returned.
    init_std : float, default=0.1
        Standard deviation of the random cores.
    random_state : None, int or numpy RandomState
    verbose : int, default=0
        Print the error every 1000 steps.

    Returns
    -------
    network : TensorNetwork
    result : FitResult
        ``errors`` holds the relative error every 100 steps and at the end; ``n_iter`` the
        steps of the returned start.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_network, network_adam
    >>> chain = [[3, 2, 0], [2, 3, 2], [0, 2, 3]]
    >>> X = random_network(chain, random_state=0).to_tensor()
    >>> net, result = network_adam(X, chain, learning_rate=0.01, max_iter=3000, random_state=0)
    >>> bool(result.error < 1e-2)
    True
    """
    _, target_error, n_init, _ = _check_network_fit_params(max_iter, 0.0, target_error, n_init,
                                                           verbose)
    learning_rate = check_nonneg_float(learning_rate, "learning_rate")
    init_std = check_nonneg_float(init_std, "init_std")
    X, mask, adjacency, permutation, graph = _prepare(X, adjacency, permutation, mask, init)
    _, peak, small = _plan(adjacency, permutation, X.dtype.itemsize)
    check_memory(peak, f"network_adam on a structure of {graph.n_cores} cores")
    xp = get_namespace(X)
    rng = check_random_state(random_state)
    weight = None if mask is None else xp.asarray(mask, dtype=X.dtype)
    norm_x_sq = float(xp.sum(X * X)) or 1.0
    itemsize = X.dtype.itemsize
    full = compile_einsum(graph.full_subscripts, *graph.core_shapes, xp=xp, itemsize=itemsize,
                          optimize=_PATH)
    gradients = [compile_einsum(graph.rhs_subscripts(k), X.shape,
                                *[graph.core_shapes[q] for q in graph.others(k)],
                                xp=xp, itemsize=itemsize, optimize=_PATH)
                 for k in range(graph.n_cores)]
    others = [graph.others(k) for k in range(graph.n_cores)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    best = None
    with _blas_threads(small):
        for start in range(n_init):
            cores = _initial_cores(graph, X, init if start == 0 else "random", 0.0, rng, init_std)
            first = [xp.zeros_like(core) for core in cores]
            second = [xp.zeros_like(core) for core in cores]
            errors, error, step = [], float("nan"), 0
            for step in range(1, max_iter + 1):
                residual = full(*cores) - X
                if weight is not None:
                    residual = residual * weight
                error = math.sqrt(float(xp.sum(residual * residual)) / norm_x_sq)
                if step % 100 == 1:
                    errors.append(error)
                if verbose and step % 1000 == 1:
                    print(f"network_adam step {step}: relative error {error:.6g}")
                if target_error is not None and error <= target_error:
                    break
                # Bias-corrected step size, as in Kingma & Ba (and TensorFlow's AdamOptimizer).
                alpha = learning_rate * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                residual = residual * (2.0 / norm_x_sq)
                grads = [gradients[k](residual, *[cores[q] for q in others[k]])
                         for k in range(graph.n_cores)]
                for k, grad in enumerate(grads):
                    first[k] = beta1 * first[k] + (1 - beta1) * grad
                    second[k] = beta2 * second[k] + (1 - beta2) * grad * grad
                    cores[k] = cores[k] - alpha * first[k] / (xp.sqrt(second[k]) + eps)
            residual = full(*cores) - X
            if weight is not None:
                residual = residual * weight
            error = math.sqrt(float(xp.sum(residual * residual)) / norm_x_sq)
            errors.append(error)
            result = FitResult(step, errors, target_error is not None and error <= target_error)
            network = TensorNetwork(cores, adjacency, permutation)
            if best is None or error < best[1].error:
                best = (network, result)
            if target_error is not None and error <= target_error:
                break
    return best


# -- reference instances --------------------------------------------------------------------------
def load_network_instance(path):
    """The data and ground-truth structure of a structure-search instance (``.npz``).

    The TNLS/TnALE instances store ``goal`` (the tensor), ``adj_matrix`` (the generating
    network's adjacency in data-mode order, i.e. row ``m`` is the core carrying data mode
    ``m``) and ``permute`` (which data mode sits at each node of the canonical structure).
    They are returned in this module's convention: ``adjacency`` is the canonical structure
    (``adj_matrix[permute][:, permute]``, e.g. the ring 0-1-...-(d-1)-0) and ``permutation``
    is ``permute``, so that ``TensorNetwork(cores, adjacency, permutation)`` is the generating
    network. Without ``permute`` (the image instances), the permutation is the identity.

    Returns
    -------
    X : ndarray (float64)
        ``goal``, as float64 (the reference generated it in float32; the cast is exact).
    adjacency : ndarray of int, or None
        None when the file has no ``adj_matrix`` or one that does not describe X (the image
        instances store a 4 x 4 placeholder).
    permutation : tuple of int
    """
    with np.load(path, allow_pickle=False) as data:
        if "goal" not in data.files:
            raise ValueError(f"{path} has no 'goal' array (keys: {data.files})")
        X = np.asarray(data["goal"], dtype=np.float64)
        data_adjacency = np.asarray(data["adj_matrix"], dtype=np.int64) \
            if "adj_matrix" in data.files else None
        permute = np.asarray(data["permute"], dtype=np.int64) if "permute" in data.files \
            else None
    if permute is None:
        permutation = tuple(range(X.ndim))
        adjacency = data_adjacency
    else:
        permutation = _check_permutation(permute, X.ndim, "permute")
        adjacency = data_adjacency[np.ix_(permutation, permutation)]
    if adjacency is not None and adjacency.shape == (X.ndim, X.ndim):
        try:
            _check_structure(adjacency, permutation, X.shape)
        except ValueError:
            adjacency = None  # a placeholder that does not describe X
    else:
        adjacency = None
    return X, adjacency, permutation
