"""Tree structures priced by singular values, without a fit.

Cutting one edge of a tree tensor network splits the data modes in two, and the smallest
rank that edge can have is the rank of the tensor's unfolding along that split (the
hierarchical SVD; TT-SVD is the chain case). Truncating every such unfolding to relative
error ``delta`` gives a tree within ``sqrt(n_edges) * delta`` of the tensor (Grasedyck's
bound for the hierarchical SVD). So on complete data every spanning tree of a search
template has a known size at a given error, and the cheapest one is found by enumeration:
the structure a greedy search would otherwise have to stumble on (a Tucker-like star, for
instance, whose bonds no single early rank increment favours).
"""

import itertools
import math

import numpy as np

from ..backend import get_namespace, to_numpy
from ..decompositions import svd_rank_for_tolerance
from .encoding import n_params

__all__ = ["CutRanks", "spanning_trees", "cheapest_tree"]

# Enumeration stops being cheap beyond this many edge subsets (a fully connected template of
# order 7 has C(21, 6) = 54,264), and the singular values beyond this many flops.
_MAX_SUBSETS = 100_000
_MAX_SVD_FLOPS = 2e10


class CutRanks:
    """Numerical ranks of a tensor's unfoldings, each computed once.

    Parameters
    ----------
    X : array
        Complete data (NumPy or CuPy).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_tt
    >>> X = random_tt((4, 5, 6, 3), [2, 3, 2], random_state=0).to_tensor()
    >>> ranks = CutRanks(X)
    >>> [ranks.rank({0}, 1e-10), ranks.rank({0, 1}, 1e-10), ranks.rank({3}, 1e-10)]
    [2, 3, 2]
    """

    def __init__(self, X):
        self.X = X
        self.ndim = X.ndim
        xp = get_namespace(X)
        self.norm = float(xp.linalg.norm(X))
        self._values = {}

    def singular_values(self, modes):
        """Singular values (descending, NumPy) of the unfolding ``modes`` x rest."""
        key = frozenset(modes)
        if 0 not in key:  # one unfolding per split: key it by the side with mode 0
            key = frozenset(range(self.ndim)) - key
        if key not in self._values:
            xp = get_namespace(self.X)
            side = sorted(key)
            rest = [m for m in range(self.ndim) if m not in key]
            rows = math.prod(self.X.shape[m] for m in side)
            matrix = xp.reshape(xp.transpose(self.X, side + rest), (rows, -1))
            self._values[key] = to_numpy(xp.linalg.svd(matrix, compute_uv=False))
        return self._values[key]

    def rank(self, modes, tolerance):
        """Smallest rank whose truncation of the unfolding ``modes`` x rest loses at most
        ``tolerance * ||X||`` (Frobenius)."""
        return svd_rank_for_tolerance(self.singular_values(modes), tolerance * self.norm)


def spanning_trees(edges, n_nodes):
    """Every subset of ``edges`` (index tuples) that is a spanning tree of ``n_nodes``.

    Examples
    --------
    >>> list(spanning_trees([(0, 1), (1, 2), (0, 2)], 3))
    [(0, 1), (0, 2), (1, 2)]
    """
    for subset in itertools.combinations(range(len(edges)), n_nodes - 1):
        parent = list(range(n_nodes))  # union-find: a cycle means not a tree
        for index in subset:
            a, b = (_root(parent, v) for v in edges[index])
            if a == b:
                break
            parent[a] = b
        else:
            yield subset


def _root(parent, node):
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


def _component(edges, tree, removed, start):
    """Nodes reachable from ``start`` over the tree's edges other than ``removed``."""
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        for index in tree:
            if index == removed:
                continue
            i, j = edges[index]
            for a, b in ((i, j), (j, i)):
                if a == node and b not in seen:
                    seen.add(b)
                    frontier.append(b)
    return seen


def cheapest_tree(X, space, max_rse):
    """Bond ranks (one per template edge, 1 off the tree) of the spanning tree of ``space``'s
    template with the fewest parameters at relative error ``<= max_rse``; None when there is
    no such tree within ``space.max_rank``, or when pricing them is not cheap (internal
    cores, too many edge subsets, unfoldings too large to decompose).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_tt
    >>> from tnml.structure_search.encoding import SearchSpace
    >>> X = random_tt((5, 5, 5, 5), [2, 4, 3], random_state=0).to_tensor()
    >>> space = SearchSpace(X.shape, "full", max_rank=6)
    >>> space.edges
    [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    >>> cheapest_tree(X, space, 1e-6)  # the chain it was made from
    [2, 1, 1, 4, 1, 3]
    """
    ndim = len(space.shape)
    n_subsets = math.comb(len(space.edges), ndim - 1)
    # an unfolding's SVD costs at most size * sqrt(size); there are 2^(ndim-1) - 1 splits
    flops = X.size * math.isqrt(X.size) * 2 ** (ndim - 1)
    if space.n_internal or ndim < 2 or n_subsets > _MAX_SUBSETS or flops > _MAX_SVD_FLOPS:
        return None
    cuts = CutRanks(X)
    tolerance = max_rse / (2 * math.sqrt(ndim - 1))  # the error bound above, halved
    mode_of_slot = np.asarray(space.permutation)
    best = None
    for tree in spanning_trees(space.edges, ndim):
        ranks = [1] * len(space.edges)
        for index in tree:
            side = _component(space.edges, tree, index, space.edges[index][0])
            ranks[index] = cuts.rank({int(mode_of_slot[s]) for s in side}, tolerance)
        if max(ranks) > space.max_rank:
            continue
        size = n_params(space.structure(ranks))
        if best is None or size < best[0]:
            best = (size, ranks)
    return None if best is None else best[1]
