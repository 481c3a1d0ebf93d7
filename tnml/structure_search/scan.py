"""The uniform scan: the best structure with every bond rank equal, in a handful of
evaluations. The start of :func:`~tnml.structure_search.tnale` (and of ``tnls`` with
``start='uniform'``) and the plain-format floor of :func:`~tnml.structure_search.svdins`."""

import numpy as np

from .encoding import n_params

__all__ = ["uniform_scan"]


def uniform_scan(runner, space, permutation=None, stage=None):
    """The best structure with every bond rank equal, found in a handful of evaluations.

    The objective of the template with all bond ranks ``r`` is roughly unimodal in ``r``:
    the error term falls and the parameter term grows with ``r``. The scan doubles ``r``
    (1, 2, 4, ..., then ``max_rank``; two ranks a batch, cheapest first) while the largest
    rank fitted is the best, then bisects the gap on each side of the best rank until its
    neighbours are scored: about ``2 log2(max_rank)`` evaluations instead of ``max_rank``. A
    rank whose parameters alone score no better than the best is not fitted. It is the
    default start of :func:`tnale` (and with ``start='uniform'`` of :func:`tnls`), so that
    its result is never worse than the plain tensor ring / train of the best single rank.

    Parameters
    ----------
    runner : Runner
    space : SearchSpace
    permutation : sequence of int, optional
        Placement of the data modes (None: the space's starting one).
    stage : str, optional
        Stage of the scan's records (None: the runner's default).

    Returns
    -------
    rank : int
        The best uniform rank (the smallest one on ties).
    scores : dict
        Objective of every rank fitted, and for a rank not fitted because its parameter count
        alone scores no better than the best (an exact fit could not win) that lower bound.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_network
    >>> from tnml.structure_search import Objective, Runner, SearchSpace
    >>> space = SearchSpace((3, 3, 3, 3), "ring", max_rank=8)
    >>> X = random_network(space.structure([3] * 4), random_state=0).to_tensor()
    >>> runner = Runner(X, None, None, Objective(), method="scan", seed=0,
    ...                 fit_params={"max_iter": 100, "n_init": 2})
    >>> rank, scores = uniform_scan(runner, space)
    >>> rank, sorted(scores)  # doubled up to 8, then the gaps around 4, then 3 bisected
    (3, [1, 2, 3, 4, 6, 8])
    >>> runner.n_evaluations  # rank 6 needs more parameters than rank 4 scores: not fitted
    5
    """
    permutation = space.permutation if permutation is None else np.asarray(permutation)
    n_edges = len(space.edges)
    tag = {} if stage is None else {"stage": stage}
    scores = {}

    def fit(values):
        values = [v for v in values if v not in scores]
        structures = {v: space.structure([v] * n_edges, permutation) for v in values}
        if scores:
            # A rank whose parameters alone (an exact fit) score no better than the best is
            # not fitted: that bound stands for it. It keeps a fully connected template from
            # fitting networks of r ** (N - 1) parameters per core.
            bound = {
                v: runner.objective(n_params(structures[v]), runner.n_entries, 0.0) for v in values
            }
            top = min(scores.values())
            scores.update((v, bound[v]) for v in values if bound[v] >= top)
            values = [v for v in values if bound[v] < top]
        if values:
            records = runner.evaluate(
                [{"structure": structures[v], "keep": True, **tag} for v in values]
            )
            scores.update((v, r["objective"]) for v, r in zip(values, records))

    def best():
        return min(scores, key=lambda v: (scores[v], v))

    doubling = []
    value = 1
    while value < space.max_rank:
        doubling.append(value)
        value *= 2
    doubling.append(space.max_rank)
    for index in range(0, len(doubling), 2):
        fit(doubling[index : index + 2])
        if best() < max(scores):  # the objective turned up: the best rank is bracketed
            break
    while True:
        centre = best()
        low = max((v for v in scores if v < centre), default=0)
        high = min((v for v in scores if v > centre), default=space.max_rank + 1)
        probes = [(low + centre) // 2, (centre + high + 1) // 2]
        probes = [v for v in probes if low < v < high and v != centre]
        if not probes:
            return centre, scores
        fit(probes)
