"""Cut ranks of a tensor and the cheapest bond ranks a template graph needs to respect them.

Any tensor network that fits ``X`` with relative error at most ``eps`` gives, for every
bipartition ``(S, T)`` of the data modes, a factorisation of the unfolding ``X_(S)`` through
the bonds the cut crosses (and through the data legs of the cores placed on the other side):
its rank-``r`` truncation error is at most ``eps * ||X||``, so ``r`` is at least the
*cut rank* of ``S`` at ``eps`` (:func:`cut_ranks`), the smallest rank whose discarded
singular values carry at most ``eps^2 ||X||^2``. With every core carrying a data mode, a
structure can fit only if for every cut the product of the ranks of the bonds crossing it
is at least that cut rank. :func:`cheapest_structures` lists the bond ranks on a template
graph that satisfy every cut, cheapest (fewest parameters) first, by a best-first search
over bond increments; given upper bounds too (the ranks where the singular values drop the
most, see :func:`cut_ranks`'s ``gap``), only those that *explain* the cut ranks: whose
generic cut ranks (the minimum over vertex cuts of the product of the crossing bond ranks
and misplaced mode sizes) lie between the two, as those of a tensor drawn from that
structure do. A cheaper structure that respects every cut but explains none is possible
(its unfoldings could have the ranks, yet its manifold is too small), so all of these are
candidates to fit, not answers.
"""

import contextlib
import heapq
import itertools
import math

import numpy as np

from ..backend import serial_blas
from .trees import CutRanks

__all__ = ["cheapest_structures", "cut_ranks", "reaches"]

# Data up to this many entries have their unfoldings' SVDs on one BLAS thread.
_SERIAL_ENTRIES = 2**22
# Singular values below this share of the largest are round-off.
_ROUND_OFF = 1e-12
# Relative slack of the log-rank comparisons.
_SLACK = 1e-9


def cut_ranks(X, eps, gap=None):
    """Numerical ranks of the unfoldings of ``X`` over its bipartitions.

    Parameters
    ----------
    X : array of order N >= 2, or CutRanks
        Complete data (a :class:`~tnml.structure_search.trees.CutRanks` of it keeps the
        singular values for another call).
    eps : float
        Relative error allowed: the rank of a cut is the smallest one whose discarded
        singular values carry at most ``eps**2 * ||X||**2``.
    gap : float or None
        When given, the rank of a cut is instead the ``r``, at least that one, where the
        singular values drop the most, ``s_r / s_{r+1}`` (those below the round-off of
        ``s_1`` count as zero), if that drop is at least ``gap``, else the full rank: where
        the signal ends and the noise begins when the noise is below ``eps`` (the signal's
        end when there is none).

    Returns
    -------
    dict
        ``{mask: rank}`` for the ``2^(N-1) - 1`` bipartitions, ``mask`` the bit set of the
        modes on the side that does not hold mode ``N - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.structure_search.cuts import cut_ranks
    >>> X = np.einsum("i,j,k->ijk", [1.0, 2], [3.0, 4], [5.0, 6])
    >>> cut_ranks(X, 1e-8)
    {1: 1, 2: 1, 3: 1}
    >>> noisy = X + 1e-4 * np.random.default_rng(0).standard_normal(X.shape)
    >>> cut_ranks(noisy, 1e-8), cut_ranks(noisy, 1e-4, gap=10)
    ({1: 2, 2: 2, 3: 2}, {1: 1, 2: 1, 3: 1})
    """
    ranks = X if isinstance(X, CutRanks) else CutRanks(X)
    out = {}
    # small unfoldings: a multithreaded LAPACK whose cores are busy stalls on them
    with serial_blas() if math.prod(ranks.X.shape) <= _SERIAL_ENTRIES else contextlib.nullcontext():
        for mask in range(1, 2 ** (ranks.ndim - 1)):
            modes = {k for k in range(ranks.ndim) if mask >> k & 1}
            out[mask] = rank = ranks.rank(modes, eps)
            if gap is not None:
                values = np.asarray(ranks.singular_values(modes), dtype=float)
                values = np.where(values > _ROUND_OFF * values[0], values, 0.0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    drops = values[rank - 1 : -1] / values[rank:]
                drops = np.nan_to_num(drops, nan=0.0, posinf=np.inf)
                largest = int(np.argmax(drops)) if drops.size else 0
                found = drops.size and drops[largest] >= gap
                out[mask] = rank + largest if found else len(values)
    return out


def _vertex_cuts(sizes, ends, members):
    """Generic cut ranks: every vertex set V bounds the rank of a cut S by the bonds V cuts
    and the legs of the cores in S xor V (V = S: the bonds S cuts). Returns which edges
    each V cuts, (2^n, edges), and the log size of the misplaced legs, (cuts, 2^n)."""
    vertex_sets = np.array(list(itertools.product([False, True], repeat=len(sizes))), dtype=bool)
    vertex_crosses = vertex_sets[:, ends[:, 0]] != vertex_sets[:, ends[:, 1]]
    misplaced = (members[:, None, :] != vertex_sets[None, :, :]) @ np.log(
        np.asarray(sizes, dtype=float)
    )
    return vertex_crosses, misplaced


def reaches(structure, lower):
    """Whether the generic cut ranks of ``structure`` (every core carrying a data mode)
    reach ``lower`` (``{mask: rank}`` over its cores): a fit within the error those cut
    ranks were computed at needs it.

    Examples
    --------
    >>> from tnml.structure_search.cuts import reaches
    >>> reaches([[2, 2, 1], [2, 2, 2], [1, 2, 2]], {1: 2, 2: 2, 3: 2})
    True
    >>> reaches([[2, 2, 1], [2, 2, 1], [1, 1, 2]], {1: 2, 2: 2, 3: 2})
    False
    """
    structure = np.asarray(structure)
    n = len(structure)
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if structure[i, j] >= 2]
    masks = sorted(lower)
    members = np.array([[m >> k & 1 for k in range(n)] for m in masks], dtype=bool)
    ends = np.array(edges, dtype=np.int64).reshape(-1, 2)
    vertex_crosses, misplaced = _vertex_cuts(np.diag(structure), ends, members)
    logs = np.log(np.array([structure[i, j] for i, j in edges], dtype=float))
    generic = np.min(vertex_crosses @ logs + misplaced, axis=1)
    return bool(np.all(generic >= np.log([lower[m] for m in masks]) - _SLACK))


def cheapest_structures(
    sizes, edges, max_rank, lower, upper=None, *, merged=False, excess=0, max_states=100_000
):
    """Bond ranks on ``edges`` whose cut ranks reach ``lower``, cheapest first.

    Parameters
    ----------
    sizes : sequence of int
        Mode size of each core (every core carries a data mode).
    edges : list of (int, int)
        The template graph's edges over the cores.
    max_rank : int
        Largest bond rank.
    lower : dict
        ``{mask: rank}`` over core bit sets, as :func:`cut_ranks` returns them for the
        cores' modes: the ranks a fit within the error must reach.
    upper : dict or None
        When given, only the structures that *explain* the cut ranks: whose generic cut
        ranks are at most these (cut ranks at a smaller error) as well.
    max_states : int
        Bond-rank vectors the search may visit before it gives up.

    Yields
    ------
    (n_params, ranks)
        ``ranks`` a tuple over ``edges``, in order of ``n_params``.

    Examples
    --------
    >>> from tnml.structure_search.cuts import cheapest_structures
    >>> ranks = {1: 2, 2: 4, 3: 2}  # of a chain 0 - 1 - 2 of rank 2, modes of 2, 4 and 2
    >>> next(cheapest_structures([2, 4, 2], [(0, 1), (1, 2), (0, 2)], 4, ranks, ranks))
    (24, (2, 2, 1))
    """
    n = len(sizes)
    n_edges = len(edges)
    sizes = np.asarray(sizes, dtype=np.int64)
    masks = sorted(lower)
    need = np.log(np.array([lower[m] for m in masks], dtype=float)) - _SLACK
    most = None if upper is None else np.log([upper[m] for m in masks]) + _SLACK
    members = np.array([[m >> k & 1 for k in range(n)] for m in masks], dtype=bool)
    ends = np.array(edges, dtype=np.int64).reshape(-1, 2)
    incident = np.zeros((n, n_edges), dtype=bool)
    incident[ends[:, 0], np.arange(n_edges)] = incident[ends[:, 1], np.arange(n_edges)] = True
    vertex_crosses, misplaced = _vertex_cuts(sizes, ends, members)
    singles = np.ones(n)  # the rank each core's bonds must reach together
    for row, mask in enumerate(masks):
        if members[row].sum() == 1:
            singles[int(np.flatnonzero(members[row])[0])] = lower[mask]
        elif members[row].sum() == n - 1:
            singles[int(np.flatnonzero(~members[row])[0])] = lower[mask]

    if upper is not None:
        # generic cut ranks (log) less those of the misplaced legs, plus those of the legs
        # as the explained structures count them
        legs = [misplaced]
        if merged:
            # One core's data leg may enter at its mode's rank: the core then holds a
            # Tucker-like core merged into it (the data are generic for the structure with
            # that leg compressed, not for the structure itself).
            for k in range(n):
                compressed = sizes.astype(float)
                compressed[k] = min(sizes[k], singles[k])
                legs.append(_vertex_cuts(compressed, ends, members)[1])
        legs = np.array(legs) - misplaced

    def cost(vector):
        products = np.prod(np.where(incident, vector, 1), axis=1)
        # a lower bound of the cost of every structure above it that reaches ``lower``
        return int(sizes @ products), float(sizes @ np.maximum(products, singles))

    start = (1,) * n_edges
    params, bound = cost(np.ones(n_edges, dtype=np.int64))
    heap = [(bound, params, start)]
    seen = {start}
    while heap:
        _, params, state = heapq.heappop(heap)
        vector = np.array(state, dtype=np.int64)
        bounds = vertex_crosses @ np.log(vector.astype(float)) + misplaced
        tightest = np.argmin(bounds, axis=1)
        generic = bounds[np.arange(len(masks)), tightest]
        over = np.min(bounds + legs, axis=2) > most if most is not None else None
        if most is not None and not np.any(np.sum(over, axis=1) <= excess):
            continue  # generic cut ranks only grow with the bond ranks
        short = generic < need
        if not short.any():
            yield params, state
            continue
        # some bond that the tightest vertex cut of a short cut crosses must grow
        free = vertex_crosses[tightest[short]] & (vector < max_rank)
        counts = free.sum(axis=1)
        if counts.min() == 0:  # a cut no increment can satisfy any more
            continue
        for edge in np.flatnonzero(free[int(np.argmin(counts))]):
            child = list(state)
            child[edge] += 1
            child = tuple(child)
            if child in seen:
                continue
            if len(seen) >= max_states:
                return
            seen.add(child)
            params, bound = cost(np.array(child, dtype=np.int64))
            heapq.heappush(heap, (bound, params, child))
