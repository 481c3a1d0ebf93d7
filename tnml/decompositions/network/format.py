"""The :class:`TensorNetwork` format: random and padded networks, and the reference
structure-search instances."""

import math
import numbers

import numpy as np

from ..._validation import check_nonneg_float
from ...backend import check_random_state, get_namespace, to_device, to_numpy
from ...contract import compile_sliced_einsum, einsum
from .._base import FactorizedTensor
from .._linalg import PAD_SCALE, pad_array
from .structure import (
    _PATH,
    _check_structure,
    _full_contraction,
    _full_info,
    _graph,
    _norm_by_dense,
    _working_cap,
    check_adjacency,
    check_permutation,
    fully_connected_adjacency,
)


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
        permutation = check_permutation(permutation, n_modes)
        graph = _graph(adjacency, permutation)
        if len(cores) != graph.n_cores:
            raise ValueError(
                f"cores must have one array per node of adjacency "
                f"({graph.n_cores}), got {len(cores)}"
            )
        get_namespace(*cores)  # raises on cores from different device namespaces
        for k, core in enumerate(cores):
            if tuple(getattr(core, "shape", ())) != graph.core_shapes[k] or not hasattr(
                core, "dtype"
            ):
                raise ValueError(
                    f"cores[{k}] must have shape {graph.core_shapes[k]} (data axis, "
                    f"then one axis per neighbour with bond rank >= 2), got "
                    f"{tuple(getattr(core, 'shape', ()))}"
                )
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
        return {
            "adjacency": [list(row) for row in self._graph.adjacency],
            "permutation": list(self._graph.permutation),
        }

    def _rank_repr(self):
        return f"edges={[(a, b, r) for a, b, r in self._graph.edges]}"

    # -- values -----------------------------------------------------------------------------------
    # _to_tensor and _to_tensor_bytes fill in FactorizedTensor.to_tensor, which checks the
    # memory budget before densifying.
    # Densely connected networks are contracted in slices (see _full_contraction), so that
    # the memory held stays within a small factor of the tensor and the network.
    def _to_tensor(self):
        return _full_contraction(self._graph, self.xp, self.dtype.itemsize)(*self.cores)

    def _to_tensor_bytes(self):
        return _full_info(self._graph).nbytes(self.dtype.itemsize)

    def entries(self, indices):
        """Values at integer coordinates ``indices`` of shape ``(n, ndim)``, never densifying:
        each core's slice is gathered per coordinate and the network is contracted with one
        batch index."""
        indices = self._checked_indices(indices)
        return einsum(
            self._graph.entries_subscripts,
            *_gather(self._graph, self.cores, indices),
            optimize=_PATH,
        )

    def norm(self):
        """Frobenius norm, from the doubled network, or from the dense tensor's slices (never
        held whole) when that is cheaper, as on densely connected networks; a 0-d array of
        the cores' namespace."""
        xp, graph, itemsize = self.xp, self._graph, self.dtype.itemsize
        if _norm_by_dense(graph):
            full = _full_contraction(graph, xp, itemsize)
            squares = sum(xp.sum(block * block) for _, block in full.blocks(*self.cores))
            return xp.sqrt(xp.asarray(squares))
        doubled = compile_sliced_einsum(
            graph.norm_subscripts,
            *graph.core_shapes,
            *graph.core_shapes,
            max_entries=_working_cap(graph),
            xp=xp,
            itemsize=itemsize,
            optimize=_PATH,
        )
        return xp.sqrt(xp.abs(xp.asarray(doubled(*self.cores, *self.cores))))

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
        factors = [
            xp.eye(tucker.core.shape[m], dtype=tucker.core.dtype) if f is None else f
            for m, f in enumerate(tucker.factors)
        ]
        axes = [["data", ("bond", m)] for m in range(d)] + [[("bond", m) for m in range(d)]]
        return _from_labelled(factors + [tucker.core], axes, [True] * d + [False])

    @classmethod
    def fully_connected(cls, shape, rank, *, random_state=None, dtype="float64", xp=None):
        """A random fully-connected network (FCTN): every pair of cores linked with ``rank``
        (an int or a symmetric ``(d, d)`` matrix); see :func:`random_network`."""
        return random_network(
            fully_connected_adjacency(shape, rank), random_state=random_state, dtype=dtype, xp=xp
        )


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
    permutation = check_permutation(permutation, n_modes)
    graph = _graph(adjacency, permutation)
    rng = check_random_state(random_state)
    xp = np if xp is None else xp
    cores = [to_device(rng.standard_normal(shape).astype(dtype), xp) for shape in graph.core_shapes]
    return TensorNetwork(cores, adjacency, permutation)


def pad_network(network, adjacency, *, random_state=None, scale=PAD_SCALE):
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
        raise ValueError(
            f"adjacency must keep the network's nodes and data modes (diagonal "
            f"{[old[k][k] for k in range(len(old))]}), got {[list(r) for r in new]}"
        )
    if any(
        max(new[k][q], 1) < max(old[k][q], 1)
        for k in range(len(old))
        for q in range(len(old))
        if k != q
    ):
        raise ValueError(
            f"adjacency must not shrink a bond: the network has "
            f"{[list(r) for r in old]}, got {[list(r) for r in new]}"
        )
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
        expanded_shape = tuple(
            ([old[k][k]] if old[k][k] > 0 else [])
            + [max(old[k][q], 1) for q in graph.neighbours[k]]
        )
        cores.append(pad_array(xp.reshape(core, expanded_shape), shape, scale, rng))
    return TensorNetwork(cores, new, network.permutation)


def prune_network(network, cutoff=0.0, *, ranks=None):
    """Insert a diagonal factor on every bond (by SVD) and drop its small entries.

    Bond by bond (in the order of the edges), the two cores ``k`` and ``q`` it joins are
    brought to a gauge in which the bond carries the singular values of their product: with
    ``H_k = Q_k R_k`` and ``H_q = Q_q R_q`` (QR with the bond as columns) and
    ``R_k R_q^T = U S V^T``, the cores become ``Q_k U S^(1/2)`` and ``Q_q V S^(1/2)``. The
    tensor is unchanged (up to round-off) until indices are dropped: those whose singular value
    is at most ``cutoff`` times the bond's largest, or all but the ``ranks`` largest. A bond
    left with one index is no bond (its rank becomes 0 in the adjacency). In a network with
    cycles these are singular values of the two cores only, not of the whole tensor across
    the bond: a measure of how much each index of the bond carries (the diagonal factors of
    SVDinsTN), exact on a tree in canonical form.

    Parameters
    ----------
    network : TensorNetwork
    cutoff : float, default=0.0
        Relative singular value at or below which a bond index is dropped (0: only exact
        zeros; the largest index of a bond is always kept).
    ranks : mapping or None
        ``{(k, q): rank}`` (``k < q``, core numbering): keep at most this many indices of the
        bond between cores ``k`` and ``q`` (the largest singular values); other bonds are
        pruned by ``cutoff`` alone.

    Returns
    -------
    network : TensorNetwork
        Same permutation; bonds never grow.
    spectra : dict
        ``{(k, q): singular values kept}`` (descending, NumPy) for every bond the input
        network had (one value for a bond now removed).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import TensorNetwork, random_network, prune_network
    >>> net = random_network([[3, 2, 2], [2, 3, 2], [2, 2, 3]], random_state=0)
    >>> same, spectra = prune_network(net)
    >>> bool(np.allclose(same.to_tensor(), net.to_tensor())), sorted(spectra)
    (True, [(0, 1), (0, 2), (1, 2)])
    >>> smaller, _ = prune_network(net, ranks={(0, 1): 1})  # the bond 0-1 removed
    >>> smaller.adjacency.tolist()
    [[3, 0, 2], [0, 3, 2], [2, 2, 3]]
    """
    if not isinstance(network, TensorNetwork):
        raise TypeError(f"network must be a TensorNetwork, got {type(network).__name__}")
    cutoff = check_nonneg_float(cutoff, "cutoff")
    graph = network._graph
    ranks = {} if ranks is None else dict(ranks)
    for key, rank in ranks.items():
        if (
            not isinstance(key, tuple)
            or len(key) != 2
            or key[0] >= key[1]
            or key[1] not in graph.neighbours[key[0]]
        ):
            raise ValueError(
                f"ranks keys must be (k, q) with k < q, cores joined by a bond, got {key!r:.40}"
            )
        if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank < 1:
            raise ValueError(f"ranks[{key!r}] must be an int >= 1, got {rank!r:.40}")
    xp = network.xp
    cores = list(network.cores)
    # Axis of the bond towards each neighbour; positions do not move while bonds shrink.
    axis = {
        (k, q): int(graph.mode_of_core[k] is not None) + j
        for k in range(graph.n_cores)
        for j, q in enumerate(graph.neighbours[k])
    }
    adjacency = np.array(graph.adjacency, dtype=np.int64)
    spectra = {}
    for k, q, _ in graph.edges:
        left = xp.moveaxis(cores[k], axis[k, q], -1)
        right = xp.moveaxis(cores[q], axis[q, k], -1)
        q_left, r_left = xp.linalg.qr(xp.reshape(left, (-1, left.shape[-1])))
        q_right, r_right = xp.linalg.qr(xp.reshape(right, (-1, right.shape[-1])))
        u, values, vt = xp.linalg.svd(r_left @ r_right.T)
        host = to_numpy(values)
        keep = int(np.sum(host > cutoff * host[0])) if host[0] > 0 else 1
        keep = max(1, min(keep, ranks.get((k, q), keep)))
        root = xp.sqrt(values[:keep])
        left = xp.reshape((q_left @ u[:, :keep]) * root, left.shape[:-1] + (keep,))
        right = xp.reshape((q_right @ vt[:keep].T) * root, right.shape[:-1] + (keep,))
        cores[k] = xp.moveaxis(left, -1, axis[k, q])
        cores[q] = xp.moveaxis(right, -1, axis[q, k])
        adjacency[k, q] = adjacency[q, k] = keep
        spectra[k, q] = host[:keep]
    # Bonds of rank 1 are no bonds: their axes go (from the last, so positions stay valid).
    for k in range(graph.n_cores):
        for q in reversed(graph.neighbours[k]):
            if adjacency[k, q] == 1:
                cores[k] = xp.reshape(
                    cores[k], tuple(d for i, d in enumerate(cores[k].shape) if i != axis[k, q])
                )
    adjacency[adjacency == 1] = 0
    np.fill_diagonal(adjacency, np.diag(np.array(graph.adjacency)))
    return TensorNetwork(cores, adjacency, network.permutation), spectra


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
        data_adjacency = (
            np.asarray(data["adj_matrix"], dtype=np.int64) if "adj_matrix" in data.files else None
        )
        permute = np.asarray(data["permute"], dtype=np.int64) if "permute" in data.files else None
    if permute is None:
        permutation = tuple(range(X.ndim))
        adjacency = data_adjacency
    else:
        permutation = check_permutation(permute, X.ndim, "permute")
        adjacency = data_adjacency[np.ix_(permutation, permutation)]
    if adjacency is not None and adjacency.shape == (X.ndim, X.ndim):
        try:
            _check_structure(adjacency, permutation, X.shape)
        except ValueError:
            adjacency = None  # a placeholder that does not describe X
    else:
        adjacency = None
    return X, adjacency, permutation
