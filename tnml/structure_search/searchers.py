"""The searchers: greedy rank growth, TnALE, TNLS, random sampling, and (registered here from
:mod:`.regularized`) the one-shot regularised search.

Each searcher moves in a :class:`~tnml.structure_search.encoding.SearchSpace` and hands batches
of candidates to a :class:`~tnml.structure_search.runner.Runner`, which fits, scores, caches
and records them and raises :class:`~tnml.structure_search.runner.BudgetExhausted` when the
budget is spent. A searcher's decisions depend only on the records it gets back and on its own
random generator, which is what makes a search reproducible and resumable.

References
----------
.. [greedy] M. Hashemizadeh, M. Liu, J. Miller, G. Rabusseau, "Adaptive learning of tensor
   network structures", arXiv:2008.05437.
.. [tnls] C. Li, J. Zeng, Z. Tao, Q. Zhao, "Permutation search of tensor network structures
   via local sampling", ICML 2022.
.. [tnale] C. Li, J. Zeng, C. Li, C. Caiafa, Q. Zhao, "Alternating local enumeration (TnALE):
   solving tensor network structure search with fewer evaluations", ICML 2023.
"""

import numpy as np

from .encoding import SearchSpace, n_params
from .regularized import svdins
from .scan import uniform_scan

__all__ = ["greedy", "tnale", "tnls", "random_search", "uniform_scan", "SEARCHERS", "METHODS"]

_MAX_IDLE_BATCHES = 20
# Greedy refits: the short-fit RSE below which a refit runs to the target; otherwise the
# relative change per sweep, and the sweeps, at which it stops.
_NEAR_TARGET = 1e-2
_SETTLED = 1e-5
_STEPPING_STONE_ITER = 100


def _candidate(space, ranks, permutation, **extra):
    return {"structure": space.structure(ranks, permutation), **extra}


def greedy(
    runner,
    space,
    rng,
    *,
    rank_increment=1,
    candidate_iter=10,
    refit_iter=500,
    max_rse=1e-6,
    criterion="efficiency",
    prune=True,
    exchange=True,
    propose_tree=True,
):
    """Greedy rank growth [greedy]_, then pruning and bond exchange.

    From every bond rank 1 on the template graph (the fully connected one by default), each step
    tries ``+rank_increment`` on every edge, each candidate warm-started from the current network
    with small new slices and fitted for ``candidate_iter`` sweeps; the chosen candidate (see
    ``criterion``) is refitted towards RSE ``max_rse / 10`` from a random start and then, unless
    that one reached it, from its warm start, the better kept; it becomes the current network. A
    candidate whose short fit ended near the target (RSE <= 1e-2) is refitted for up to
    ``refit_iter`` sweeps, any other only until its error settles (at most 100 sweeps): it is a
    stepping stone. Growth stops when the RSE reaches ``max_rse``, no edge can grow, or the budget
    is spent. ``criterion='efficiency'`` (default) picks the candidate that removes the most squared
    error per added parameter, ``'error'`` the lowest error (the paper's rule).

    Growth is myopic: a bond added early to lower the error fastest can be one the final
    network does not need. With ``prune``, ranks that later steps made redundant are lowered
    one at a time while the RSE stays within ``max_rse``. With ``exchange``, each bond of the
    result is then dropped in turn, the error it leaves is regrown greedily on the other
    edges (the dropped one barred) and pruned again; the search moves whenever that gives
    fewer parameters, until no bond's exchange does.

    With ``propose_tree`` and complete data, the cheapest spanning tree of the template at
    RSE ``max_rse`` is priced first from the singular values of the unfoldings (exact for
    trees: :func:`~tnml.structure_search.trees.cheapest_tree`) and fitted; when it meets
    ``max_rse``, growth stops at its size and pruning and exchange start from the smaller of
    the two. Growth alone reaches a Tucker-like star only by luck: no single early rank
    increment favours the bonds of its centre.
    """
    settings = {
        "rank_increment": rank_increment,
        "candidate_iter": candidate_iter,
        "refit_iter": refit_iter,
        "max_rse": max_rse,
        "criterion": criterion,
    }
    permutation = space.permutation
    tree, bound = (
        _tree_proposal(runner, space, max_rse, refit_iter) if propose_tree else (None, None)
    )
    ranks = [1] * len(space.edges)
    (current,) = runner.evaluate([_candidate(space, ranks, permutation, keep=True)])
    ranks, current = _grow(
        runner, space, rng, ranks, permutation, current, max_params=bound, **settings
    )
    grown = current["status"] == "ok" and current["rse"] <= max_rse
    if tree is not None and (not grown or bound < current["n_params"]):
        ranks = tree
    elif not grown:
        return
    if prune:
        ranks = _prune(runner, space, ranks, permutation, max_rse)
    if exchange:
        _exchange(runner, space, rng, ranks, permutation, prune=prune, **settings)


def _grow(
    runner,
    space,
    rng,
    ranks,
    permutation,
    current,
    *,
    rank_increment,
    candidate_iter,
    refit_iter,
    max_rse,
    criterion,
    barred=(),
    max_params=None,
):
    """Raise one bond rank at a time from ``ranks`` (fitted as ``current``) until the RSE
    reaches ``max_rse``; return the final ranks and record. Edges in ``barred`` never grow,
    and no step goes beyond ``max_params`` parameters."""
    while current["status"] == "ok" and current["rse"] > max_rse:
        batch, steps = [], []
        for index, rank in enumerate(ranks):
            if rank + rank_increment > space.max_rank or index in barred:
                continue
            grown = _with(ranks, index, rank + rank_increment)
            structure = space.structure(grown, permutation)
            if max_params is not None and n_params(structure) > max_params:
                continue
            seed = int(rng.randint(2**31 - 1))
            batch.append(
                {
                    "structure": structure,
                    "keep": True,
                    "stage": "grow",
                    "warm_from": current,
                    "pad_seed": seed,
                    "fit_params": {"max_iter": candidate_iter},
                }
            )
            steps.append(grown)
        if not batch:
            break
        records = runner.evaluate(batch)
        usable = [i for i, r in enumerate(records) if r["status"] == "ok"]
        if not usable:
            break
        if criterion == "error":
            chosen = min(usable, key=lambda i: (records[i]["rse"], records[i]["n_params"], i))
        else:  # squared error removed per parameter added
            gain = [
                (current["rse"] ** 2 - records[i]["rse"] ** 2)
                / max(records[i]["n_params"] - current["n_params"], 1)
                for i in usable
            ]
            chosen = usable[max(range(len(usable)), key=lambda k: (gain[k], -k))]
        ranks = steps[chosen]
        (current,) = runner.evaluate(
            [
                _refit(
                    batch[chosen]["structure"],
                    records[chosen],
                    refit_iter,
                    max_rse,
                    precise=records[chosen]["rse"] <= _NEAR_TARGET,
                )
            ]
        )
    return ranks, current


def _tree_proposal(runner, space, max_rse, refit_iter):
    """The cheapest spanning tree's ranks and size when it fits within ``max_rse``, else
    ``(None, None)``; only on complete data (the singular values need every entry)."""
    from .trees import cheapest_tree

    if runner.train is not None:
        return None, None
    ranks = cheapest_tree(runner.X, space, max_rse)
    if ranks is None:
        return None, None
    structure = space.structure(ranks, space.permutation)
    (record,) = runner.evaluate(
        [_refit(structure, None, refit_iter, max_rse, precise=True, stage="tree")]
    )
    if record["status"] != "ok" or record["rse"] > max_rse:
        return None, None
    return ranks, record["n_params"]


def _refit(structure, warm, refit_iter, max_rse, *, precise, stage="refit"):
    """A fit towards RSE ``max_rse / 10``, from a random start and then from ``warm`` (the
    record of a kept fit, or None): a warm start near a saddle can stall where a fresh start
    converges.

    A ``precise`` refit (of a structure whose short fit ended near the target) runs to the
    target or ``refit_iter`` sweeps, as slow final convergence would otherwise pass for
    infeasibility; any other only has to settle (relative change below ``_SETTLED``, within
    ``_STEPPING_STONE_ITER`` sweeps): it is a stepping stone, and most refits are.
    """
    return {
        "structure": structure,
        "keep": True,
        "stage": stage,
        **({} if warm is None else {"warm_from": warm, "starts": ("random", "warm")}),
        "fit_params": {
            "max_iter": refit_iter if precise else min(refit_iter, _STEPPING_STONE_ITER),
            "tol": 0.0 if precise else _SETTLED,
            "target_error": max_rse / 10,
        },
    }


def _prune(runner, space, ranks, permutation, max_rse):
    """Lower bond ranks one at a time while the error bound holds; return the final ranks.

    Growth adds the bond that pays best at each step, and an early choice can be made
    redundant by later ones; each round refits every structure one rank below the current one
    (from random starts) and moves to the smallest that still meets ``max_rse``.
    """
    while True:
        batch, steps = [], []
        for index, rank in enumerate(ranks):
            if rank <= 1:
                continue
            lower = _with(ranks, index, rank - 1)
            batch.append(
                {
                    "structure": space.structure(lower, permutation),
                    "stage": "prune",
                    "fit_params": {"target_error": max_rse / 10, "tol": 0.0},
                }
            )
            steps.append(lower)
        records = runner.evaluate(batch) if batch else []
        feasible = [i for i, r in enumerate(records) if r["status"] == "ok" and r["rse"] <= max_rse]
        if not feasible:
            return ranks
        chosen = min(feasible, key=lambda i: (records[i]["n_params"], records[i]["rse"], i))
        ranks = steps[chosen]


def _exchange(runner, space, rng, ranks, permutation, *, prune, max_params_growth=1.5, **settings):
    """Drop one bond, regrow the error it leaves on the other edges, prune; move when cheaper.

    Bonds are tried in order of the parameters their removal saves; the first exchange that
    ends with fewer parameters is taken and the bonds of the new network are tried again.
    Regrowth may pass through up to ``max_params_growth`` times the current parameters (a
    bond's work can need a larger detour before pruning trims it).
    """
    max_rse = settings["max_rse"]
    size = n_params(space.structure(ranks, permutation))
    tried = set()
    while True:
        active = [i for i, rank in enumerate(ranks) if rank > 1]
        saving = {
            i: size - n_params(space.structure(_with(ranks, i, 1), permutation)) for i in active
        }
        for index in sorted(active, key=lambda i: (-saving[i], i)):
            dropped = _with(ranks, index, 1)
            if tuple(dropped) in tried:
                continue
            tried.add(tuple(dropped))
            structure = space.structure(dropped, permutation)
            (start,) = runner.evaluate(
                [_refit(structure, None, settings["refit_iter"], max_rse, precise=False)]
            )
            grown, record = _grow(
                runner,
                space,
                rng,
                dropped,
                permutation,
                start,
                barred=(index,),
                max_params=max_params_growth * size,
                **settings,
            )
            if record["status"] != "ok" or record["rse"] > max_rse:
                continue
            if prune:
                grown = _prune(runner, space, grown, permutation, max_rse)
            grown_size = n_params(space.structure(grown, permutation))
            if grown_size < size:
                ranks, size = grown, grown_size
                break
        else:
            return


def _with(ranks, index, value):
    """A copy of ``ranks`` with ``ranks[index]`` set to ``value``."""
    changed = list(ranks)
    changed[index] = value
    return changed


def _is_full(space):
    n = len(space.shape)
    return space.n_internal == 0 and len(space.edges) == n * (n - 1) // 2


def _ring_start(runner, space, rng, settings):
    """The best uniform chain (:func:`uniform_scan`), then TnALE on the rings inside a fully
    connected template (mode placement searched, from the best uniform ring); the best
    network so far as ranks of the template's edges. Every ring and chain is a subgraph of
    the full graph, so the search starting there is never worse than the best plain TT of a
    single rank, nor than the TR tnale reached. Sweeps over the full graph's edges one rank at
    a time, as tnale's are, do not find a permuted ring: moving one bond means raising one
    rank and lowering another, and neither step pays on its own."""
    kwargs = {"max_rank": space.max_rank}
    uniform_scan(runner, SearchSpace(space.shape, "chain", space.permutation, **kwargs))
    ring = SearchSpace(space.shape, "ring", space.permutation, search_permutation=True, **kwargs)
    tnale(runner, ring, rng, **settings, start="uniform")
    if runner.best is None or runner.best["status"] != "ok":
        return _start(runner, space, rng, "uniform")
    matrix = np.asarray(runner.best["structure"])
    slot_mode = space.permutation
    ranks = [max(1, int(matrix[slot_mode[i], slot_mode[j]])) for i, j in space.edges]
    return ranks, np.array(space.permutation)


def _start(runner, space, rng, start, settings=None):
    """Starting ranks and permutation of a local search (see :func:`tnale`'s ``start``)."""
    if isinstance(start, str):
        if start == "uniform":
            rank, _ = uniform_scan(runner, space)
            return [rank] * len(space.edges), np.array(space.permutation)
        if start == "random":
            return space.random_ranks(rng), space.random_permutation(rng)
        if start == "ring" and settings is not None and _is_full(space):
            return _ring_start(runner, space, rng, settings)
        raise ValueError(
            f"start must be 'uniform', 'random', 'ring' (tnale on the full graph) or "
            f"(ranks, permutation), got {start!r}"
        )
    ranks, permutation = start
    return list(ranks), np.asarray(permutation)


def _rank_grid(value, radius, max_rank):
    """``2 * radius + 1`` consecutive ranks around ``value``, shifted to fit in [1, max_rank]."""
    width = min(2 * radius + 1, max_rank)
    low = min(max(1, value - radius), max_rank - width + 1)
    return list(range(low, low + width))


def _interpolated_rse(grid, evaluated):
    """RSE at every grid point, linear between the evaluated ones (TnALE's initial phase)."""
    points = sorted(evaluated)
    return np.interp(grid, points, [evaluated[p] for p in points])


def _perturbed(space, rng, ranks, permutation, radius):
    """A random neighbour: every rank moved by a uniform step in ``[-radius, radius]`` and,
    when the permutation is searched, one random transposition half of the time."""
    steps = rng.randint(-radius, radius + 1, size=len(ranks))
    trial = [int(min(max(r + s, 1), space.max_rank)) for r, s in zip(ranks, steps)]
    trial_permutation = np.array(permutation)
    if space.search_permutation and rng.rand() < 0.5:
        i, j = rng.choice(len(permutation), 2, replace=False)
        trial_permutation[[i, j]] = trial_permutation[[j, i]]
    return trial, trial_permutation


def tnale(
    runner,
    space,
    rng,
    *,
    radius=1,
    init_radius=2,
    n_interpolation_sweeps=1,
    n_restarts=3,
    start="uniform",
):
    """Alternating local enumeration, TnALE [tnale]_.

    The variables are the bond ranks of the template edges and, when searched, the data-mode
    permutation. A sweep visits them forward then backward; each visit enumerates one variable
    around its current value (ranks within ``radius``; permutations one transposition away)
    with the others fixed, and moves to the best. During the first ``n_interpolation_sweeps``
    sweeps the rank windows are ``init_radius`` wide and only their two ends and middle are
    fitted: the RSE of the other ranks is interpolated linearly, which crosses a wide range
    with three evaluations per variable. A larger rank is fitted from the centre's network
    padded with small new slices (so it never scores a worse error than the centre); other
    candidates start at random. When a full sweep without interpolation changes
    nothing, the search restarts from a random neighbour of the best structure found (the
    reference implementation's local sampling), at most ``n_restarts`` times, then stops.

    ``start`` is where the sweeps begin: ``'uniform'`` (default) the best structure with all
    bond ranks equal, at the space's starting permutation, found by :func:`uniform_scan` (so
    the result is never worse than the best uniform ring or train); ``'ring'`` on a fully
    connected template, the best ring or chain that tnale finds on the rings inside it (mode
    placement searched), see :func:`_ring_start`; ``'random'`` random ranks and, when
    searched, a random permutation (the reference implementation's start); or a pair
    ``(ranks, permutation)``.
    """
    settings = {
        "radius": radius,
        "init_radius": init_radius,
        "n_interpolation_sweeps": n_interpolation_sweeps,
        "n_restarts": n_restarts,
    }
    ranks, permutation = _start(runner, space, rng, start, settings)
    n_ranks = len(ranks)
    variables = list(range(n_ranks)) + ([n_ranks] if space.search_permutation else [])
    order = variables + variables[-2:0:-1] if len(variables) > 1 else variables

    sweep, restarts, best = 0, 0, None
    while True:
        interpolate = sweep < n_interpolation_sweeps
        width = init_radius if interpolate else radius
        before = (list(ranks), permutation.tolist())
        for variable in order:
            if variable == n_ranks:
                options = space.transpositions(permutation)
                records = runner.evaluate([_candidate(space, ranks, p, keep=True) for p in options])
                chosen = min(range(len(options)), key=lambda i: (records[i]["objective"], i))
                permutation = options[chosen]
                continue
            grid = _rank_grid(ranks[variable], width, space.max_rank)
            if interpolate and len(grid) > 3:
                probes = sorted({grid[0], grid[(len(grid) - 1) // 2], grid[-1]})
            else:
                probes = grid
            # Larger ranks start from the centre's fit, padded: never worse than the centre,
            # where a random start of an over-complete ring often stalls in a swamp.
            (centre,) = runner.evaluate([_candidate(space, ranks, permutation, keep=True)])
            warm = runner.can_warm_start(centre)
            candidates = []
            for value in probes:
                trial = _with(ranks, variable, value)
                candidate = _candidate(space, trial, permutation, keep=True)
                if warm and value > ranks[variable]:
                    candidate["warm_from"] = centre
                    candidate["pad_seed"] = int(rng.randint(2**31 - 1))
                candidates.append(candidate)
            records = runner.evaluate(candidates)
            if probes is grid:
                scores = [r["objective"] for r in records]
            else:
                rse = _interpolated_rse(
                    grid,
                    {p: r["rse"] if r["status"] == "ok" else 1.0 for p, r in zip(probes, records)},
                )
                scores = []
                for value, error in zip(grid, rse):
                    trial = _with(ranks, variable, value)
                    params = n_params(space.structure(trial, permutation))
                    scores.append(runner.objective(params, runner.n_entries, float(error)))
            # Ties keep the current value, so a sweep without improvement changes nothing.
            current = ranks[variable]
            ranks[variable] = grid[
                min(range(len(grid)), key=lambda i: (scores[i], grid[i] != current, i))
            ]
        sweep += 1
        if interpolate or (list(ranks), permutation.tolist()) != before:
            continue
        (centre,) = runner.evaluate([_candidate(space, ranks, permutation)])
        if best is None or centre["objective"] < best[0]:
            best = (centre["objective"], list(ranks), np.array(permutation))
        if restarts >= n_restarts:
            return
        restarts += 1
        ranks, permutation = _perturbed(space, rng, best[1], best[2], init_radius)


def tnls(runner, space, rng, *, radius=1, n_samples=None, n_iter_no_change=5, start="random"):
    """Local sampling, TNLS [tnls]_.

    Each iteration draws ``n_samples`` structures around the current centre (every rank moved
    by a uniform step in ``[-radius, radius]``, and, when the permutation is searched, one
    random transposition half of the time), fits them as one batch, and moves the centre to
    the best sample if it improves on it. It stops after ``n_iter_no_change`` iterations
    without improvement, or at the budget. ``start`` is the first centre, as in :func:`tnale`
    (default ``'random'``: from the best uniform structure the sampling often stops before it
    finds a better placement).
    """
    ranks, permutation = _start(runner, space, rng, start)
    n_samples = n_samples or max(4, len(ranks))
    (centre,) = runner.evaluate([_candidate(space, ranks, permutation)])
    stale = 0
    while stale < n_iter_no_change:
        samples = [_perturbed(space, rng, ranks, permutation, radius) for _ in range(n_samples)]
        records = runner.evaluate([_candidate(space, r, p) for r, p in samples])
        best = min(range(len(records)), key=lambda i: (records[i]["objective"], i))
        if records[best]["objective"] < centre["objective"]:
            centre = records[best]
            ranks, permutation = samples[best]
            stale = 0
        else:
            stale += 1


def random_search(runner, space, rng, *, batch_size=4, start=None):
    """Uniform random structures (ranks in ``[1, max_rank]``, random permutations) until the
    budget is spent: the baseline that shows what searching buys."""
    idle = 0
    while idle < _MAX_IDLE_BATCHES:  # a small space can run out of unseen structures
        before = runner.n_evaluations
        runner.evaluate(
            [
                _candidate(space, space.random_ranks(rng), space.random_permutation(rng))
                for _ in range(batch_size)
            ]
        )
        idle = idle + 1 if runner.n_evaluations == before else 0


# -- the searchers and the StructureSearch parameters each one reads ----------------------------
# A searcher is registered here with ``params(settings, space)``: its keyword arguments from
# StructureSearch's parameters (``settings``, a dict of get_params()) and the search space. The
# estimator and the CLI read the methods from SEARCHERS, so a new searcher touches this file.


def _auto_start(settings, space, default):
    """``start='auto'``: the given graph's own ranks and permutation, else ``default``."""
    if settings["start"] != "auto":
        return settings["start"]
    if not isinstance(settings["graph"], str):
        return (space.start_ranks, space.permutation)
    return default


greedy.params = lambda settings, space: {
    "rank_increment": settings["rank_increment"],
    "max_rse": settings["max_rse"],
    "candidate_iter": min(settings["max_iter"], 10),
}
tnale.params = lambda settings, space: {
    "radius": settings["radius"],
    "init_radius": settings["radius"] + 1,
    # on the full graph, the rings inside it first (see _ring_start)
    "start": _auto_start(settings, space, "ring" if settings["graph"] == "full" else "uniform"),
}
tnls.params = lambda settings, space: {
    "radius": settings["radius"],
    "start": _auto_start(settings, space, "random"),
}
random_search.params = lambda settings, space: {}
svdins.params = lambda settings, space: {"alpha": settings["alpha"], "n_paths": settings["n_init"]}

SEARCHERS = {
    "greedy": greedy,
    "tnale": tnale,
    "tnls": tnls,
    "random": random_search,
    "svdins": svdins,
}
METHODS = tuple(SEARCHERS)
