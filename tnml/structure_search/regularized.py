"""One-shot structure search by a regularised fit: ``method='svdins'``.

In the spirit of SVDinsTN [svdins]_: a network on the whole template graph (the fully
connected one by default) is fitted once, with a diagonal factor inserted on every bond and a
sparsity-inducing penalty on those diagonals, and the bond indices whose diagonal entries
vanish are pruned as the fit goes, a bond left with one index being removed. What this
implementation does, and where it differs from the paper:

- **Cut-rank start.** With the constrained objective on complete data and a template of
  data cores, the data's cut ranks at ``max_rse`` (the numerical ranks of its unfoldings
  over every bipartition of the modes, :mod:`.cuts`) bound what any structure within
  ``max_rse`` must carry across each cut. The structures on the template that explain
  them (their generic cut ranks reach those and stay within where each unfolding's
  singular values drop the most, the signal's end; then those that do with one core
  holding a Tucker-like core, or that do but on one or two cuts, as noise close to the
  signal hides its smallest directions) are fitted cheapest first, unpenalised, up to
  ``n_candidates``; the
  first within ``max_rse`` is polished (only moves that keep every cut rank are fitted,
  usually none) and is the answer. The regularised rounds below run when none is, and
  always on noisy data (the penalized objective) or missing data: a start sized per bond
  by cut ranks is then no better than the uniform one, as every cut is of full rank.
- **Affordable starts only.** A start (or an inflated stage) whose sweep plans more than
  ``1e12`` flops (:func:`~tnml.decompositions.network_flops`; rank 2 on every bond of a
  fully connected 4^10 network plans 2.5e14, hours a sweep) is not fitted: the answer is
  then the floor's.
- **A floor of plain formats.** Before the rounds, the best uniform chain and ring are
  found by :func:`~tnml.structure_search.uniform_scan` (a handful of evaluations each,
  stage ``'svdins-floor'``):
  the answer is never worse than the plain tensor train or ring of the best single rank,
  however far the rounds get within the budget (on real data they can end with the start
  still dense).
- **Rounds.** The fit runs in rounds of a few ALS sweeps
  (:func:`~tnml.decompositions.network_als`, warm-started from the previous round). Between
  rounds every bond gets its diagonal factor by SVD of the two cores it joins
  (:func:`~tnml.decompositions.prune_network`), and the indices whose singular value is at
  most ``cutoff`` times the bond's largest are dropped. The search stops when the structure
  has not changed for ``patience`` rounds (or after ``max_rounds``).
- **Penalty.** The paper solves for the diagonals with an l1 proximal step. Here the
  diagonals stay absorbed into the cores and the penalty is a reweighted ridge on the bond
  slices (:class:`BondPenalty`, through ``network_als``'s ``bond_penalty`` hook), reweighted
  before every sweep from the share of the core's norm each bond index carries: an
  iteratively reweighted approximation of counting the bond indices, each weighted by the
  parameters it costs, so that the fit trades error against parameters as the search's
  objective does. It is relative to the scale of each core's normal equations, so neither
  the data's scale nor the network's gauge changes it.
- **Start, and a second stage.** Every template bond starts at the largest rank (at most
  ``max_rank``) for which no core has more bond unknowns than the data has entries for it
  (``rank^degree <=`` the product of the other modes' sizes) nor more than 1024 (see
  :func:`start_rank`); the paper starts from a given rank. Once the rounds have thinned the
  template, the bonds that survived restart (from random cores) at the largest rank they
  afford with no more parameters than the start had, and are thinned again: a sparse graph
  affords higher ranks than the full one (modes of size 3 on a fully connected order-6 graph
  start at rank 3; a ring that needs a bond of rank 4 is found in the second stage only).
- **Refit and polish.** The structure each stage ends with is refitted without penalty
  (warm, up to 300 sweeps); while that improves the objective, so are those of the rounds 1,
  2, 4, ... before it (a penalty strong enough to prune quickly can prune one index too
  many). The best refit is then polished: each bond is lowered by one (its smallest
  singular direction dropped, warm start) and the move with the best objective is taken
  while it improves the objective.

Every round, refit and polish fit is an evaluation of the :class:`Runner`: recorded (stages
``'svdins-start'``, ``'svdins'`` and ``'svdins-inflate'``, with ``-1``, ``-2``, ... for the
paths after the first, then ``'refit'`` and ``'polish'``; the RSE of a round is that of its
penalised fit, and its record holds the structure pruning left of it, ``pruned``),
checkpointed and resumable, within ``max_evaluations`` and ``max_time``. ``n_paths``
independent paths (different random starts) run side by side, one candidate per path in
each batch, so they use ``n_jobs`` workers or a Dask cluster; a single path is sequential
(each round starts from the one before) and runs in one worker at a time: only the polish
batches (one candidate per bond) use the others.

References
----------
.. [svdins] Y.-B. Zheng, X.-L. Zhao, J. Zeng, C. Li, Q. Zhao, H.-C. Li, T.-Z. Huang,
   "SVDinsTN: A tensor network paradigm for efficient structure search from regularized
   modeling perspective", CVPR 2024.
"""

import itertools
import math
import numbers

import numpy as np

from ..backend import get_namespace, to_numpy
from ..decompositions import network_flops
from .cuts import cheapest_structures, cut_ranks, reaches
from .encoding import SearchSpace, canonical_key, n_params
from .scan import uniform_scan
from .trees import CutRanks

__all__ = ["BondPenalty", "svdins"]

# A bond index's weight is alpha * cost / (share + _SHARE_FLOOR): the floor bounds the weight
# of an index that carries nothing (reweighted-l1's epsilon).
_SHARE_FLOOR = 0.1
# Unpenalised refits: a warm start from a penalised fit converges slowly to an exact fit
# (greedy's precise refits run 500 sweeps); polish moves only have to show an improvement.
_REFIT = {"max_iter": 300, "tol": 0.0}
# Bond unknowns per core of a start: above this the first sweeps of a fully connected start
# dominate the search (order 5, modes of 7: rank 5, 625 unknowns, 0.7 s a sweep; rank 6,
# 1296 unknowns, 3.6 s).
_MAX_START_UNKNOWNS = 1024
# Planned flops of one sweep (network_flops) above which a start, or an inflated stage, is
# not fitted: rank 2 on a fully connected 4^8 network plans 3e10, on 4^10 2.5e14 (hours a
# sweep); the search then answers from its floor of plain formats.
_MAX_START_FLOPS = 1e12
_POLISH = {"max_iter": 100}


class BondPenalty:
    """The reweighted bond penalty of :func:`svdins`: ``bond_penalty`` of ``network_als``.

    Called with the current network before every sweep, it returns for every core ``k``
    and neighbour ``q`` the weights ``alpha * cost / (share_r + 0.1)`` of the indices ``r``
    of their bond, where ``share_r`` is the share of core ``k``'s squared norm in the slice
    of index ``r`` and ``cost`` the parameters of one such slice (the core's size over the
    bond's rank). ``network_als`` scales them by the mean diagonal of the core's normal
    equations, so an index that carries a small share is driven to zero at a cost close to
    ``alpha`` times its parameters in squared relative error.

    Parameters
    ----------
    alpha : float
        Squared relative error one parameter of a bond index is worth.

    Examples
    --------
    >>> from tnml.decompositions import random_network
    >>> from tnml.structure_search import BondPenalty
    >>> net = random_network([[3, 2, 2], [2, 3, 2], [2, 2, 3]], random_state=0)
    >>> weights = BondPenalty(1e-4)(net)
    >>> sorted(weights), weights[0, 1].shape
    ([(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)], (2,))
    """

    def __init__(self, alpha):
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, numbers.Real)
            or not alpha > 0
            or not math.isfinite(alpha)
        ):
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def __repr__(self):
        return f"BondPenalty(alpha={self.alpha!r})"

    def __call__(self, network):
        adjacency = np.asarray(network.adjacency)
        weights = {}
        for k, core in enumerate(network.cores):
            xp = get_namespace(core)
            first = int(adjacency[k, k] > 0)  # the data axis comes first (TensorNetwork)
            neighbours = [q for q in range(len(adjacency)) if q != k and adjacency[k, q] >= 2]
            squares = core * core
            total = float(xp.sum(squares))
            for j, q in enumerate(neighbours):
                axis = first + j
                norms = to_numpy(
                    xp.sum(squares, axis=tuple(i for i in range(core.ndim) if i != axis))
                )
                share = norms / total if total > 0 else np.full(norms.shape, 1 / norms.size)
                cost = core.size / norms.size
                weights[k, q] = self.alpha * cost / (share + _SHARE_FLOOR)
        return weights


def start_rank(space, graph=None, max_params=None):
    """The rank every bond of a :func:`svdins` start takes: the largest one, at most
    ``space.max_rank``, with which no data core has more bond unknowns than the product of
    the other modes' sizes (its least-squares problems stay determined) nor more than 1024
    (the first sweeps stay affordable), and, when given, the network has at most
    ``max_params`` parameters. Internal cores are not bounded.

    Parameters
    ----------
    space : SearchSpace
    graph : (N, N) int array or None
        A structure whose bonds (entries >= 2) are the ones to size; None: the template.
    max_params : int or None

    Returns
    -------
    int
        At least 2 (a bond of rank 1 is no bond) unless ``space.max_rank`` is 1.

    Examples
    --------
    >>> from tnml.structure_search import SearchSpace
    >>> from tnml.structure_search.regularized import start_rank
    >>> start_rank(SearchSpace((3,) * 6, "full", max_rank=7))  # 5 bonds: 3^5 <= 3^5 < 4^5
    3
    >>> start_rank(SearchSpace((3,) * 6, "ring", max_rank=7))  # 2 bonds: 7^2 <= 3^5
    7
    """
    shape = space.shape
    total = math.prod(shape)
    template = space.structure([2] * len(space.edges))
    edges = (template if graph is None else np.asarray(graph)) >= 2
    np.fill_diagonal(edges, False)
    for rank in range(space.max_rank, 2, -1):
        structure = np.where(edges, rank, 0)
        np.fill_diagonal(structure, np.diag(template))
        bonds = np.where(edges, rank, 1)
        fits = all(
            math.prod(bonds[k].tolist()) <= min(total // shape[k], _MAX_START_UNKNOWNS)
            for k in range(len(shape))
        )
        if fits and (max_params is None or n_params(structure) <= max_params):
            return rank
    return min(2, space.max_rank)


def svdins(
    runner,
    space,
    rng,
    *,
    alpha=1e-4,
    cutoff=1e-2,
    round_iter=3,
    max_rounds=40,
    patience=6,
    n_paths=1,
    inflate=True,
    polish=True,
    n_candidates=4,
):
    """One-shot regularised structure search [svdins]_ (see the module doc).

    Parameters
    ----------
    runner : Runner
    space : SearchSpace
        The template (its permutation is kept; the mode placement is not searched).
    rng : numpy RandomState
        Unused: the paths' random starts are seeded by the runner.
    alpha : float, default=1e-4
        Strength of the bond penalty (:class:`BondPenalty`).
    cutoff : float, default=1e-2
        Relative singular value at which a bond index is pruned between rounds.
    round_iter : int, default=3
        ALS sweeps per round.
    max_rounds : int, default=40
        Rounds per stage.
    patience : int, default=6
        Rounds without a change of structure after which a stage ends.
    n_paths : int, default=1
        Independent paths (random starts), run side by side.
    inflate : bool, default=True
        Once the template is thinned, refit the bonds that survived at the largest rank
        they afford (:func:`start_rank`, no more parameters than the start had) and prune
        again: the start's rank bounds what the first stage can find.
    polish : bool, default=True
        Lower single bond ranks after the refit while the objective improves.
    n_candidates : int, default=4
        With the constrained objective on complete data, the structures that explain the
        data's cut ranks fitted (cheapest first) before the regularised paths, which run
        only when none of them reaches ``max_rse``; 0: the regularised paths alone.
    """
    del rng  # every fit is seeded by the runner from its candidate
    if not isinstance(n_paths, numbers.Integral) or n_paths < 1:
        raise ValueError(f"n_paths must be an int >= 1, got {n_paths!r}")
    if (
        isinstance(n_candidates, bool)
        or not isinstance(n_candidates, numbers.Integral)
        or n_candidates < 0
    ):
        raise ValueError(f"n_candidates must be an int >= 0, got {n_candidates!r}")
    settings = {
        "penalty": BondPenalty(alpha),
        "cutoff": cutoff,
        "round_iter": round_iter,
        "max_rounds": max_rounds,
        "patience": patience,
        "inflate": inflate,
    }
    if space.max_rank < 2:  # no bond to prune: the one structure there is
        runner.evaluate([{"structure": space.structure([1] * len(space.edges))}])
        return
    spectra = _cut_spectra(runner, space)
    if spectra is not None:
        lower = cut_ranks(spectra, runner.objective.max_rse)
        found = _fit_cut_candidates(runner, space, spectra, lower, n_candidates)
        if found is not None:
            if polish:
                _polish(runner, found, allowed=lambda structure: reaches(structure, lower))
            return
    _plain_floor(runner, space)
    paths = [_path(space, f"-{p}" if p else "", **settings) for p in range(n_paths)]
    finished = [r for r in _run_side_by_side(runner, paths) if r is not None]
    if finished and polish:
        _polish(runner, min(finished, key=lambda r: (r["objective"], r["n_params"])))


def _plain_floor(runner, space):
    """The best uniform chain and ring (:func:`~tnml.structure_search.uniform_scan`, a
    handful of evaluations each), fitted before the regularised paths: both are subgraphs of
    the full template, so the search's answer is never worse than the plain tensor train or
    ring of the best single rank, whatever the penalised rounds reach within the budget (on
    real data they can stop far above it, with the start still dense)."""
    for graph in ("chain", "ring"):
        plain = SearchSpace(space.shape, graph, space.permutation, max_rank=space.max_rank)
        uniform_scan(runner, plain, stage="svdins-floor")


def _run_side_by_side(runner, paths):
    """Drive generators that yield candidates and receive their records: one batch per
    step with one candidate of every unfinished path. Returns what each path returns."""
    results = [None] * len(paths)
    pending = {}
    for index, path in enumerate(paths):
        try:
            pending[index] = next(path)
        except StopIteration as stop:  # nothing to fit (a start it cannot afford)
            results[index] = stop.value
    while pending:
        order = list(pending)
        records = runner.evaluate([pending[i] for i in order])
        for index, record in zip(order, records):
            try:
                pending[index] = paths[index].send(record)
            except StopIteration as stop:
                results[index] = stop.value
                del pending[index]
    return results


def _path(space, suffix, *, penalty, cutoff, round_iter, max_rounds, patience, inflate):
    """One path (a generator of candidates): thin the template, inflate what survived and
    thin again, then refit; returns its best refit record (None when nothing was fitted)."""
    # tol 0: a round always runs its sweeps; no target: a penalised fit does not reach one.
    settings = {"max_iter": round_iter, "tol": 0.0, "target_error": None}
    template = space.structure([start_rank(space)] * len(space.edges), space.permutation)
    if not _affordable(template, space):
        return None
    start = {
        "stage": "svdins-start" + suffix,
        "keep": True,
        "prune": cutoff,
        "fit_params": {**settings, "n_init": 1},
    }
    record = yield {"structure": template, **start}
    if record["status"] != "ok":
        return None
    limits = (max_rounds, patience)
    rounds = yield from _rounds(record, suffix, penalty, cutoff, settings, *limits)
    stages = [rounds]
    graph = np.asarray(rounds[-1]["pruned"])
    rank = start_rank(space, graph, max_params=n_params(template))
    inflated = np.where(graph >= 2, rank, 0)
    np.fill_diagonal(inflated, np.diag(graph))
    if (
        inflate
        and np.any(np.maximum(inflated, 1) > np.maximum(graph, 1))
        and _affordable(inflated, space)
    ):
        record = yield {"structure": inflated, **start, "stage": "svdins-inflate" + suffix}
        if record["status"] == "ok":
            stages.append((yield from _rounds(record, suffix, penalty, cutoff, settings, *limits)))
    best = None
    for rounds in reversed(stages):  # the second stage's answer first
        refit = yield from _refit_back(rounds)
        if refit is not None and (best is None or refit["objective"] < best["objective"]):
            best = refit
    return best


def _affordable(structure, space):
    """Whether one sweep of ``structure`` plans at most ``_MAX_START_FLOPS``."""
    return network_flops(structure, None, space.shape) <= _MAX_START_FLOPS


def _rounds(record, suffix, penalty, cutoff, settings, max_rounds, patience):
    """Penalised rounds from ``record``, each pruned; returns the rounds' records."""
    rounds = [record]
    sizes = [n_params(record["pruned"])]
    for _ in range(max_rounds):
        if len(sizes) > patience and sizes[-1] == sizes[-1 - patience]:
            break
        record = yield {
            "structure": rounds[-1]["pruned"],
            "stage": "svdins" + suffix,
            "warm_from": rounds[-1],
            "keep": True,
            "prune": cutoff,
            "fit_params": {**settings, "bond_penalty": penalty},
        }
        if record["status"] != "ok":
            break
        rounds.append(record)
        sizes.append(n_params(record["pruned"]))
    return rounds


def _refit_back(rounds):
    """Refit (unpenalised, warm) the structure the last round left, then, while that
    improves the objective, those of rounds 1, 2, 4, ... before it: a penalty strong enough
    to prune quickly can prune one index too many."""
    best = None
    candidates, seen = [], set()
    step = 0
    while step < len(rounds):
        record = rounds[-1 - step]
        step = 2 * step or 1
        if canonical_key(record["pruned"]) not in seen:
            seen.add(canonical_key(record["pruned"]))
            candidates.append({"structure": record["pruned"], "warm_from": record})
    for candidate in candidates:
        refit = yield {**candidate, "stage": "refit", "keep": True, "fit_params": _REFIT}
        if refit["status"] != "ok":
            continue
        if best is not None and refit["objective"] >= best["objective"]:
            break
        best = refit
    return best


def _polish(runner, current, allowed=None):
    """Lower one bond rank at a time (warm start: the bond's smallest singular direction
    dropped) while the best such move improves the objective; ``allowed(structure)``, when
    given, says which moves are worth a fit."""
    while True:
        structure = np.asarray(current["structure"])
        batch = []
        for k, q in zip(*np.nonzero(np.triu(structure >= 2, 1))):
            lower = structure.copy()
            lower[k, q] = lower[q, k] = structure[k, q] - 1 if structure[k, q] > 2 else 0
            if allowed is not None and not allowed(lower):
                continue
            batch.append(
                {
                    "structure": lower,
                    "stage": "polish",
                    "warm_from": current,
                    "keep": True,
                    "fit_params": _POLISH,
                }
            )
        if not batch:
            return
        records = [r for r in runner.evaluate(batch) if r["status"] == "ok"]
        if not records:
            return
        best = min(records, key=lambda r: (r["objective"], r["n_params"]))
        if best["objective"] >= current["objective"]:
            return
        current = best


# -- the cut-rank start --------------------------------------------------------------------------
# The generic cut ranks of an explaining structure are at most where each unfolding's singular
# values drop by this factor (the signal's end; see cut_ranks): with noise below max_rse they
# need not be at max_rse / 100, exact data have them at the round-off.
_EXPLAIN_GAP = 10
# Share of the cuts that may have no drop past max_rse (see _fit_cut_candidates).
_MAX_UNEXPLAINED = 0.25
# The tiers of cut candidates, in turn: (one core may hold a Tucker-like core, cuts on which the
# generic rank may exceed the data's); a merged tier costs about 4 plain ones.
_TIERS = ((False, 0), (False, 1), (True, 0), (False, 2), (True, 1), (True, 2))
# Beyond this order the 2^(N-1) unfoldings and the 2^N vertex cuts of every structure the
# search visits cost seconds (order 8: about 3 s on 4^8 data whose cut ranks nothing explains).
_MAX_CUT_ORDER = 8
# Structures the best-first search over bond ranks may visit: a few ms each hundred.
_MAX_STATES = 20_000
# Fits of the cut candidates: cold starts of (near-)exact structures converge in tens of sweeps
# and stall far above max_rse otherwise.
_CANDIDATE = {"max_iter": 300, "tol": 1e-6}


def _cut_spectra(runner, space):
    """The singular values of the data's unfoldings (:class:`CutRanks`), or None where cut
    ranks do not apply (the penalized objective, missing data, internal cores) or cost too
    much (orders above 8)."""
    if (
        runner.objective.kind != "constrained"
        or runner.train is not None
        or runner.held_out is not None
        or space.n_internal
        or len(space.shape) > _MAX_CUT_ORDER
    ):
        return None
    return CutRanks(runner.X)


def _slot_ranks(space, ranks):
    """``{mask: rank}`` over data-mode bit sets as the same over slot bit sets."""
    ndim = len(space.shape)
    full = (1 << ndim) - 1
    slot_of = np.argsort(space.permutation)  # slot s carries mode permutation[s]
    out = {}
    for mask, rank in ranks.items():
        slots = sum(1 << int(slot_of[k]) for k in range(ndim) if mask >> k & 1)
        out[min(slots, full ^ slots)] = rank
    return out


def _fit_cut_candidates(runner, space, spectra, lower, n_candidates):
    """Fit, cheapest first, up to ``n_candidates`` structures on the template that explain
    the data's cut ranks; return the record of the first within ``max_rse`` (None if none).
    """
    if not n_candidates:
        return None
    upper = cut_ranks(spectra, runner.objective.max_rse, gap=_EXPLAIN_GAP)
    ndim = len(space.shape)
    full = {
        mask: min(size, math.prod(space.shape) // size)
        for mask in lower
        for size in [math.prod(space.shape[k] for k in range(ndim) if mask >> k & 1)]
    }
    # no drop in the singular values past max_rse on many cuts: data that are not close to a
    # low-rank network at max_rse (photographs), whose cut ranks nothing explains
    unexplained = sum(upper[m] == full[m] and lower[m] < full[m] for m in lower)
    if unexplained > _MAX_UNEXPLAINED * len(lower):
        return None
    # those that explain them, then those that do but on one cut (the generic rank of a cut
    # across a loop can exceed its actual one, and noise hides the signal's smallest
    # directions), then with one core holding a Tucker-like core, ... (cheapest_structures)
    tiers = (
        cheapest_structures(
            space.sizes,
            space.edges,
            space.max_rank,
            _slot_ranks(space, lower),
            _slot_ranks(space, upper),
            merged=merged,
            excess=excess,
            max_states=_MAX_STATES,
        )
        for merged, excess in _TIERS
    )
    seen = set()
    fitted = 0
    for _, ranks in itertools.chain.from_iterable(tiers):
        if fitted == n_candidates:
            break
        if ranks in seen:
            continue
        seen.add(ranks)
        fitted += 1
        (record,) = runner.evaluate(
            [
                {
                    "structure": space.structure(ranks),
                    "stage": "svdins-cuts",
                    "keep": True,
                    "fit_params": _CANDIDATE,
                }
            ]
        )
        if record["status"] == "ok" and record["rse"] <= runner.objective.max_rse:
            return record
    return None
