"""Tensor-network structures as integer matrices, their search spaces and canonical forms.

A *structure* is a symmetric integer matrix in **data-mode order**: row ``k < ndim`` is the core
that carries data mode ``k`` (its diagonal entry is that mode's size), rows ``ndim, ...`` are
internal cores (diagonal 0), and an off-diagonal entry is a bond rank (0 or 1 = no edge). This
is the encoding of the structure-search papers after their permutation has been applied, so a
structure needs no separate permutation and two structures that differ only by how their
cores are numbered are the same matrix up to a relabelling of the internal cores.

A *search space* (:class:`SearchSpace`) is what a searcher moves in: a template graph over core
*slots* (which pairs may carry a bond), a rank vector over the template edges, and, when
searched, the permutation that puts data mode ``permutation[s]`` on slot ``s`` (the
convention of the reference ``.npz`` instances' ``permute``).
"""

import itertools
import math
import numbers

import numpy as np

from ..decompositions.network import check_adjacency as _check_adjacency
from ..decompositions.network import check_permutation as _check_permutation

__all__ = [
    "SearchSpace",
    "canonical_key",
    "check_adjacency",
    "check_permutation",
    "n_params",
    "to_data_order",
]

# Internal cores are relabelled exhaustively for the canonical form; beyond this many the
# form keeps their order (isomorphic candidates may then be scored twice, never wrongly).
_MAX_RELABELLED_INTERNAL = 6


def check_adjacency(adjacency, name="adjacency"):
    """:func:`tnml.decompositions.network.check_adjacency` as an int64 array.

    Examples
    --------
    >>> check_adjacency([[3, 2], [2, 4]]).tolist()
    [[3, 2], [2, 4]]
    """
    return np.array(_check_adjacency(adjacency, name), dtype=np.int64)


def check_permutation(permutation, n, name="permutation"):
    """A permutation of ``range(n)`` as an int64 array (None: the identity); see
    :func:`tnml.decompositions.network.check_permutation`."""
    return np.array(_check_permutation(permutation, n, name), dtype=np.int64)


def to_data_order(adjacency, permutation=None, shape=None):
    """Reorder a core-ordered matrix so that row ``k`` is the core carrying data mode ``k``.

    Parameters
    ----------
    adjacency : (N, N) int matrix
        Diagonal: the size of the data mode on each core (0 for an internal core).
    permutation : sequence of int, optional
        ``permutation[c]`` is the data mode carried by the ``c``-th core with a data mode
        (internal cores excluded); None: core order is data-mode order.
    shape : tuple of int, optional
        The data's shape; the mode sizes must match it.

    Returns
    -------
    structure : (N, N) int64 array in data-mode order (internal cores last)

    Examples
    --------
    >>> ring = [[3, 2, 4], [2, 5, 3], [4, 3, 6]]
    >>> to_data_order(ring, permutation=[2, 0, 1]).tolist()
    [[5, 3, 2], [3, 6, 4], [2, 4, 3]]
    """
    matrix = check_adjacency(adjacency)
    data_cores = np.flatnonzero(np.diag(matrix) > 0)
    internal = np.flatnonzero(np.diag(matrix) == 0)
    permutation = check_permutation(permutation, data_cores.size)
    order = np.empty(data_cores.size, dtype=np.int64)
    order[permutation] = data_cores  # data mode permutation[c] sits on data core c
    order = np.concatenate([order, internal])
    structure = matrix[np.ix_(order, order)]
    if shape is not None:
        sizes = tuple(int(d) for d in np.diag(structure)[: data_cores.size])
        if sizes != tuple(shape):
            raise ValueError(
                f"adjacency's mode sizes {sizes} (diagonal, in data-mode order) do "
                f"not match the data's shape {tuple(shape)}"
            )
    return structure


def n_params(structure):
    """Parameters of a network: per core, the product of its mode size and bond ranks.

    Examples
    --------
    >>> n_params([[3, 2, 2], [2, 3, 2], [2, 2, 3]])  # a ring of rank 2
    36
    """
    matrix = np.array(structure, dtype=np.int64)
    matrix[matrix == 0] = 1
    return int(sum(math.prod(row) for row in matrix.tolist()))


def canonical_key(structure):
    """A hashable form shared by every isomorphic copy of ``structure``.

    Bonds of rank 1 are no bonds; data-mode cores keep their place (data-mode order is
    already canonical) and internal cores take the relabelling whose matrix reads smallest.

    Examples
    --------
    >>> a = [[2, 0, 3, 1], [0, 2, 1, 3], [3, 1, 0, 0], [1, 3, 0, 0]]
    >>> b = [[2, 0, 1, 3], [0, 2, 3, 1], [1, 3, 0, 0], [3, 1, 0, 0]]
    >>> canonical_key(a) == canonical_key(b)
    True
    """
    matrix = np.array(structure, dtype=np.int64)
    off = ~np.eye(len(matrix), dtype=bool)
    matrix[off & (matrix <= 1)] = 0
    n_data = int(np.count_nonzero(np.diag(matrix)))
    internal = list(range(n_data, len(matrix)))
    if 1 < len(internal) <= _MAX_RELABELLED_INTERNAL:
        best = None
        for order in itertools.permutations(internal):
            index = list(range(n_data)) + list(order)
            flat = tuple(matrix[np.ix_(index, index)].ravel().tolist())
            if best is None or flat < best:
                best = flat
        flat = best
    else:
        flat = tuple(matrix.ravel().tolist())
    return f"{len(matrix)}:" + ",".join(map(str, flat))


def structure_from_key(key):
    """The structure matrix of a :func:`canonical_key`."""
    size, flat = key.split(":")
    return np.array([int(v) for v in flat.split(",")], dtype=np.int64).reshape(int(size), -1)


_GRAPHS = ("full", "ring", "chain")


class SearchSpace:
    """Ranks on the edges of a template graph over core slots, and a data-mode permutation.

    Parameters
    ----------
    shape : tuple of int
        Data mode sizes.
    graph : {'full', 'ring', 'chain'} or (N, N) int matrix
        The template: which slot pairs may carry a bond. A matrix is core-ordered like
        :func:`to_data_order`'s input (diagonal: mode sizes, 0 for internal cores; a
        non-zero off-diagonal entry allows that edge and, when > 1, is its starting rank).
    permutation : sequence of int, optional
        Starting placement of the data modes on the data slots (None: identity).
    max_rank : int
        Largest bond rank.
    search_permutation : bool
        Whether the searchers may move data modes between slots.

    Examples
    --------
    >>> space = SearchSpace((3, 4, 5), "ring", max_rank=4)
    >>> space.edges
    [(0, 1), (1, 2), (0, 2)]
    >>> space.structure([2, 3, 1], [0, 1, 2]).tolist()
    [[3, 2, 1], [2, 4, 3], [1, 3, 5]]
    """

    def __init__(
        self, shape, graph="full", permutation=None, *, max_rank=8, search_permutation=False
    ):
        self.shape = tuple(int(d) for d in shape)
        ndim = len(self.shape)
        self.permutation = check_permutation(permutation, ndim)
        if isinstance(graph, str):
            if graph not in _GRAPHS:
                raise ValueError(
                    f"graph must be one of {_GRAPHS} or an adjacency matrix, got {graph!r}"
                )
            if graph == "full":
                edges = [(i, j) for i in range(ndim) for j in range(i + 1, ndim)]
            else:
                edges = [(i, i + 1) for i in range(ndim - 1)]
                if graph == "ring" and ndim > 2:
                    edges.append((0, ndim - 1))
            # A named graph is built over slots: slot ``s`` carries mode ``permutation[s]``.
            self.sizes = tuple(self.shape[p] for p in self.permutation)
            self.n_internal = 0
            self.start_ranks = [1] * len(edges)
        else:
            matrix = check_adjacency(graph, "graph")
            data_cores = np.flatnonzero(np.diag(matrix) > 0)
            internal = np.flatnonzero(np.diag(matrix) == 0)
            if data_cores.size != ndim:
                raise ValueError(
                    f"graph has {data_cores.size} cores with a data mode but the "
                    f"data has {ndim} modes"
                )
            order = np.concatenate([data_cores, internal])
            matrix = matrix[np.ix_(order, order)]  # slots: data cores first, then internal
            self.sizes = tuple(int(d) for d in np.diag(matrix)[:ndim])
            self.n_internal = int(internal.size)
            edges = [
                (i, j)
                for i in range(len(matrix))
                for j in range(i + 1, len(matrix))
                if matrix[i, j] > 0
            ]
            self.start_ranks = [int(max(1, matrix[i, j])) for i, j in edges]
            if not edges:
                raise ValueError(
                    "graph has no edge to search over (all off-diagonal entries are 0)"
                )
        self.edges = edges
        if tuple(self.sizes[s] for s in np.argsort(self.permutation)) != self.shape:
            placed = tuple(int(self.sizes[s]) for s in np.argsort(self.permutation))
            raise ValueError(
                f"graph's mode sizes {placed} (after permutation) do not match "
                f"the data's shape {self.shape}"
            )
        if isinstance(max_rank, bool) or not isinstance(max_rank, numbers.Integral) or max_rank < 1:
            raise ValueError(f"max_rank must be an integer >= 1, got {max_rank!r}")
        self.max_rank = int(max_rank)
        self.start_ranks = [min(r, self.max_rank) for r in self.start_ranks]
        self.search_permutation = bool(search_permutation)

    @property
    def n_slots(self):
        return len(self.shape) + self.n_internal

    def structure(self, ranks, permutation=None):
        """The data-mode-ordered structure of ``ranks`` (one per edge) and ``permutation``."""
        permutation = self.permutation if permutation is None else np.asarray(permutation)
        ndim = len(self.shape)
        slot_mode = np.concatenate([permutation, np.arange(ndim, self.n_slots)])
        matrix = np.zeros((self.n_slots, self.n_slots), dtype=np.int64)
        for (i, j), rank in zip(self.edges, ranks):
            a, b = slot_mode[i], slot_mode[j]
            matrix[a, b] = matrix[b, a] = int(rank)
        matrix[np.arange(ndim), np.arange(ndim)] = self.shape
        return matrix

    def random_ranks(self, rng):
        return [int(r) for r in rng.randint(1, self.max_rank + 1, size=len(self.edges))]

    def random_permutation(self, rng):
        if not self.search_permutation:
            return self.permutation.copy()
        return rng.permutation(len(self.shape)).astype(np.int64)

    def transpositions(self, permutation):
        """``permutation`` and every permutation one swap of two slots away from it."""
        result = [np.asarray(permutation)]
        for i, j in itertools.combinations(range(len(permutation)), 2):
            swapped = np.array(permutation)
            swapped[[i, j]] = swapped[[j, i]]
            result.append(swapped)
        return result
