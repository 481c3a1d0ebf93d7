"""method='svdins': the one-shot regularised structure search, its bond-penalty hook in
network_als, prune_network, and the runner features it relies on."""

import itertools

import numpy as np
import pytest

import tnml
from tnml.decompositions import network_als, pad_network, prune_network, random_network
from tnml.structure_search import (
    METHODS,
    BondPenalty,
    Objective,
    Runner,
    SearchSpace,
    canonical_key,
    n_params,
    svdins,
    to_data_order,
)
from tnml.structure_search.cuts import cheapest_structures, cut_ranks, reaches

RING = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
RING_PERMUTATION = [0, 2, 1, 3]
CHAIN = np.diag([3] * 5)
for _i, _r in enumerate([2, 3, 3, 2]):
    CHAIN[_i, _i + 1] = CHAIN[_i + 1, _i] = _r
CHAIN_PERMUTATION = [0, 3, 1, 4, 2]


def _search(**kwargs):
    settings = dict(objective="constrained", max_rse=1e-6, max_rank=3)
    return tnml.StructureSearch("svdins", **{**settings, **kwargs})


@pytest.fixture
def regularised(monkeypatch):
    """The regularised paths alone (no cut-rank candidates), as on noisy data."""
    from tnml.structure_search import searchers

    params = searchers.svdins.params
    monkeypatch.setattr(
        searchers.svdins,
        "params",
        lambda settings, space: {**params(settings, space), "n_candidates": 0},
    )


# -- planted structures, from the full graph ---------------------------------------------------
@pytest.mark.parametrize(
    "adjacency, permutation, seed",
    [(RING, RING_PERMUTATION, 1), (CHAIN, CHAIN_PERMUTATION, 1)],
    ids=["ring4", "chain5"],
)
@pytest.mark.usefixtures("regularised")
def test_svdins_recovers_planted_structure_from_full_graph(adjacency, permutation, seed):
    X = random_network(adjacency, permutation, random_state=seed).to_tensor()
    search = _search(random_state=seed).fit(X)
    planted = to_data_order(adjacency, permutation)
    assert canonical_key(search.best_structure_) == canonical_key(planted)
    assert search.reconstruction_error_ <= 1e-6
    np.testing.assert_allclose(search.best_network_.to_tensor(), X, atol=1e-5)
    history = [h for h in search.history_ if h["stage"] != "svdins-floor"]
    stages = [h["stage"] for h in history]
    # the uniform chain and ring first, then two paths (n_init) from the full graph at rank
    # 3, penalised rounds, refit, polish
    assert search.history_[0]["stage"] == "svdins-floor"
    assert stages[:2] == ["svdins-start", "svdins-start-1"]
    assert "svdins" in stages and "refit" in stages
    first = np.asarray(history[0]["structure"])
    assert np.all(first[~np.eye(len(first), dtype=bool)] == 3)
    rounds = [h for h in search.history_ if h["stage"] == "svdins"]
    assert all("pruned" in h for h in rounds)


def test_svdins_is_registered_for_the_estimator_and_the_cli():
    assert "svdins" in METHODS
    from tnml.cli import build_parser

    args = build_parser().parse_args(["search", "x.npy", "--method", "svdins", "--out", "o"])
    assert args.method == ["svdins"]


# -- runner features -----------------------------------------------------------------------------
@pytest.mark.usefixtures("regularised")
def test_svdins_keeps_max_rank():
    X = random_network(RING, random_state=1).to_tensor()
    search = _search(max_rank=1, random_state=1).fit(X)
    assert search.n_evaluations_ == 1 and search.best_network_.n_params == 12
    search = _search(max_rank=2, random_state=1).fit(X)
    assert all(np.max(np.asarray(h["structure"]) * (1 - np.eye(4))) <= 2 for h in search.history_)


@pytest.mark.usefixtures("regularised")
def test_svdins_budget_is_respected():
    X = random_network(RING, random_state=1).to_tensor()
    search = _search(max_evaluations=5, random_state=1).fit(X)
    assert search.n_evaluations_ == 5
    assert np.isfinite(search.reconstruction_error_)


@pytest.mark.usefixtures("regularised")
def test_svdins_resumed_makes_the_uninterrupted_decisions(tmp_path):
    X = random_network(RING, RING_PERMUTATION, random_state=1).to_tensor()
    checkpoint = str(tmp_path / "search.npz")
    _search(max_evaluations=12, random_state=1, checkpoint=checkpoint).fit(X)
    resumed = _search(random_state=1, checkpoint=checkpoint, resume=True).fit(X)
    uninterrupted = _search(random_state=1).fit(X)
    assert [h["key"] for h in resumed.history_] == [h["key"] for h in uninterrupted.history_]
    assert [h.get("pruned") for h in resumed.history_] == [
        h.get("pruned") for h in uninterrupted.history_
    ]
    assert resumed.best_network_.n_params == uninterrupted.best_network_.n_params
    # the first twelve were restored, not refitted: same recorded times
    assert [h["seconds"] for h in resumed.history_[:12]] == [
        h["seconds"] for h in _history(checkpoint)[:12]
    ]


def _history(checkpoint):
    return tnml.structure_search.read_checkpoint(checkpoint)["history"]


@pytest.mark.usefixtures("regularised")
def test_svdins_paths_in_parallel_give_the_serial_result():
    # n_init paths run side by side: one candidate per path in each batch
    X = random_network(RING, RING_PERMUTATION, random_state=1).to_tensor()
    serial = _search(random_state=1, n_jobs=1).fit(X)
    parallel = _search(random_state=1, n_jobs=2).fit(X)
    assert [h["key"] for h in serial.history_] == [h["key"] for h in parallel.history_]
    assert [h["rse"] for h in serial.history_] == pytest.approx(
        [h["rse"] for h in parallel.history_], rel=1e-6, abs=1e-12
    )


@pytest.mark.usefixtures("regularised")
@pytest.mark.slow
def test_svdins_on_a_dask_cluster_gives_the_serial_result():
    import warnings

    import joblib

    distributed = pytest.importorskip("dask.distributed")
    X = random_network(RING, RING_PERMUTATION, random_state=1).to_tensor()
    serial = _search(random_state=1).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            distributed.Client(cluster),
        ):
            with joblib.parallel_config(backend="dask"):
                remote = _search(random_state=1).fit(X)
    assert [h["key"] for h in remote.history_] == [h["key"] for h in serial.history_]
    assert remote.best_network_.n_params == serial.best_network_.n_params


@pytest.mark.usefixtures("regularised")
def test_checkpoint_with_a_forged_pruned_structure_is_refused(tmp_path):
    from tnml.structure_search.checkpoint import write_log

    X = random_network(RING, random_state=1).to_tensor()
    checkpoint = str(tmp_path / "search.npz")
    _search(max_evaluations=10, random_state=1, checkpoint=checkpoint).fit(X)
    content = tnml.structure_search.read_checkpoint(checkpoint)
    record = next(h for h in content["history"] if "pruned" in h)
    record["pruned"] = (np.asarray(record["structure"]) + 1).tolist()  # grows every bond
    networks = content["networks"]
    write_log(
        checkpoint, content["fingerprint"], content["history"], content["elapsed"],
        list(networks), networks,
    )  # fmt: skip
    with pytest.raises(ValueError, match="pruned"):
        _search(max_evaluations=16, random_state=1, checkpoint=checkpoint, resume=True).fit(X)


def test_runner_warm_start_from_a_larger_parent_is_truncated():
    X = random_network(RING, random_state=0).to_tensor()
    runner = Runner(X, None, None, Objective(), method="svdins", seed=0, fit_params={})
    big = np.array(RING)
    big[big == 2] = 3
    (parent,) = runner.evaluate([{"structure": big, "keep": True}])
    (child,) = runner.evaluate([{"structure": RING, "warm_from": parent}])
    assert child["start"] == "warm" and child["parent"] == parent["evaluation"]
    assert child["rse"] < 1e-6


# -- bad parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0, -1.0, "big"])
def test_svdins_bad_alpha_is_rejected(alpha):
    X = random_network(RING, random_state=0).to_tensor()
    with pytest.raises((ValueError, TypeError), match="alpha"):
        _search(alpha=alpha).fit(X)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("inf"), True])
def test_bond_penalty_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        BondPenalty(alpha)


@pytest.mark.parametrize(
    "penalty, match",
    [
        ({(0, 2): [1.0, 1.0]}, "not joined"),  # no bond between cores 0 and 2
        ({(0, 1): [1.0]}, "2 finite weights"),  # wrong length
        ({(0, 1): [1.0, -1.0]}, "finite weights >= 0"),
        ({(0, 1): [1.0, np.nan]}, "finite weights >= 0"),
        ({0: [1.0, 1.0]}, "pairs"),
        ([1.0], "mapping"),
    ],
)
def test_network_als_rejects_bad_bond_penalty(penalty, match):
    X = random_network(RING, random_state=0).to_tensor()
    with pytest.raises((ValueError, TypeError), match=match):
        network_als(X, RING, max_iter=1, bond_penalty=penalty)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cutoff": -1.0}, "cutoff"),
        ({"ranks": {(1, 0): 1}}, "k < q"),
        ({"ranks": {(0, 2): 1}}, "joined"),
        ({"ranks": {(0, 1): 0}}, "int >= 1"),
    ],
)
def test_prune_network_rejects_bad_parameters(kwargs, match):
    net = random_network(RING, random_state=0)
    with pytest.raises(ValueError, match=match):
        prune_network(net, **kwargs)


# -- the pieces ----------------------------------------------------------------------------------
def test_bond_penalty_hook_drives_a_penalised_index_to_zero_whatever_the_scale():
    X = random_network(RING, random_state=0).to_tensor()
    big = np.array(RING)
    big[big == 2] = 3
    start = pad_network(random_network(RING, random_state=0), big, random_state=0)
    penalty = {(0, 1): [0.0, 0.0, 1e3], (1, 0): [0.0, 0.0, 1e3]}
    slices = []
    for scale in (1.0, 1e6):
        net, result = network_als(
            X * scale, big, init=start, max_iter=20, tol=0, bond_penalty=penalty
        )
        core = np.asarray(net.cores[0])  # axes: data, bond to 1, bond to 3
        slices.append(np.linalg.norm(core[:, 2]) / np.linalg.norm(core))
        assert result.error < 1e-3
    # relative to each core's normal equations: the same effect at any data scale
    assert max(slices) < 1e-3


def test_bond_penalty_applies_to_masked_fits_and_svdins_takes_missing_data():
    X = random_network(RING, random_state=0).to_tensor()
    mask = np.random.default_rng(0).random(X.shape) < 0.8
    big = np.array(RING)
    big[big == 2] = 3
    start = pad_network(random_network(RING, random_state=0), big, random_state=0)
    penalty = {(0, 1): [0.0, 0.0, 1e3], (1, 0): [0.0, 0.0, 1e3]}
    net, _ = network_als(X, big, mask=mask, init=start, max_iter=10, tol=0, bond_penalty=penalty)
    core = np.asarray(net.cores[0])
    assert np.linalg.norm(core[:, 2]) < 1e-3 * np.linalg.norm(core)
    Y = np.where(mask, X, np.nan)
    search = _search(max_evaluations=20, random_state=1).fit(Y)
    assert search.n_evaluations_ <= 20 and np.isfinite(search.reconstruction_error_)


def test_bond_penalty_callable_is_called_every_sweep():
    X = random_network(RING, random_state=0).to_tensor()
    calls = []

    def penalty(network):
        calls.append(network.n_params)
        return BondPenalty(1e-4)(network)

    network_als(X, RING, max_iter=4, tol=0, bond_penalty=penalty, random_state=0)
    assert calls == [48] * 4


def test_prune_network_keeps_the_tensor_and_drops_small_directions():
    net = random_network(RING, random_state=0)
    same, spectra = prune_network(net)
    np.testing.assert_allclose(same.to_tensor(), net.to_tensor(), atol=1e-12)
    assert all(np.all(np.diff(s) <= 0) for s in spectra.values())
    # a padded bond carries exact zeros in its new direction: the cutoff drops it again
    big = np.array(RING)
    big[0, 1] = big[1, 0] = 3
    padded = pad_network(net, big, random_state=0, scale=0.0)
    pruned, _ = prune_network(padded, 1e-10)
    np.testing.assert_array_equal(pruned.adjacency, RING)
    np.testing.assert_allclose(pruned.to_tensor(), net.to_tensor(), atol=1e-12)


# -- the cut-rank start ------------------------------------------------------------------------
def _generic_cut_ranks(adjacency, shape):
    """Generic cut ranks of a structure (every core a data core), by brute force."""
    adjacency = np.asarray(adjacency)
    n = len(shape)
    out = {}
    for mask in range(1, 2 ** (n - 1)):
        side = [mask >> k & 1 for k in range(n)]
        best = np.inf
        for vertices in itertools.product([0, 1], repeat=n):
            bound = 1
            for i, j in itertools.combinations(range(n), 2):
                if vertices[i] != vertices[j] and adjacency[i, j] >= 2:
                    bound *= adjacency[i, j]
            for k in range(n):
                if vertices[k] != side[k]:
                    bound *= shape[k]
            best = min(best, bound)
        out[mask] = int(best)
    return out


def test_cut_ranks_of_a_random_network_are_its_generic_ones():
    planted = to_data_order(RING5, RING5_PERMUTATION)
    X = random_network(RING5, RING5_PERMUTATION, random_state=0).to_tensor()
    assert cut_ranks(X, 1e-8) == _generic_cut_ranks(planted, X.shape)
    # a coarse error allows lower ranks, never higher
    coarse = cut_ranks(X + 1e-3 * np.random.default_rng(0).standard_normal(X.shape), 0.1)
    assert all(coarse[m] <= r for m, r in cut_ranks(X, 1e-8).items())


def test_cheapest_structures_are_in_order_and_reach_the_cut_ranks():
    X = random_network(RING5, RING5_PERMUTATION, random_state=0).to_tensor()
    lower = cut_ranks(X, 1e-6)
    edges = list(itertools.combinations(range(5), 2))
    found = list(itertools.islice(cheapest_structures(X.shape, edges, 3, lower), 20))
    sizes = [size for size, _ in found]
    assert sizes == sorted(sizes) and len(set(map(tuple, (r for _, r in found)))) == len(found)
    for size, ranks in found:
        structure = np.diag(X.shape)
        for (i, j), rank in zip(edges, ranks):
            structure[i, j] = structure[j, i] = rank
        assert n_params(structure) == size and reaches(structure, lower)
    # the planted ring is among the cheapest that reach the cut ranks, and the first that
    # explains them
    planted = to_data_order(RING5, RING5_PERMUTATION)
    (size, ranks), *_ = cheapest_structures(X.shape, edges, 3, lower, cut_ranks(X, 1e-8))
    assert size == n_params(planted) and size >= sizes[0]
    assert all(
        planted[i, j] == max(r, 1) or (planted[i, j] == 0 and r == 1)
        for (i, j), r in zip(edges, ranks)
    )


# order 5, modes of 3, ranks 2 and 3, permuted modes: from the full graph
RING5 = [[3, 2, 0, 0, 3], [2, 3, 3, 0, 0], [0, 3, 3, 2, 0], [0, 0, 2, 3, 2], [3, 0, 0, 2, 3]]
RING5_PERMUTATION = [2, 0, 4, 1, 3]
# order 6, modes of 3, a bond of rank 4: the full graph's regularised start (rank 3) cannot
# hold it
RING6 = np.diag([3] * 6)
for _i, _r in enumerate([3, 4, 2, 2, 3, 2]):
    RING6[_i, (_i + 1) % 6] = RING6[(_i + 1) % 6, _i] = _r
RING6_PERMUTATION = [0, 3, 2, 1, 4, 5]


def test_svdins_finds_planted_structures_from_their_cut_ranks_on_every_seed():
    # the regularised paths alone end larger on 1 (RING5) and 3 (CHAIN) of these seeds and
    # miss RING6 (126 parameters, 138-195 found) on all five
    cases = [(RING5, RING5_PERMUTATION), (CHAIN, CHAIN_PERMUTATION), (RING6, RING6_PERMUTATION)]
    for adjacency, permutation in cases:
        planted = to_data_order(adjacency, permutation)
        for seed in range(5):
            X = random_network(adjacency, permutation, random_state=seed).to_tensor()
            search = _search(max_rank=4, random_state=seed).fit(X)
            assert canonical_key(search.best_structure_) == canonical_key(planted), seed
            assert search.reconstruction_error_ <= 1e-6
            # one fit: the cheapest structure that explains the cut ranks, no polish move
            # (every lower bond misses a cut rank)
            assert [h["stage"] for h in search.history_] == ["svdins-cuts"]


def test_svdins_cut_start_sees_through_noise_below_max_rse():
    # noise a tenth of max_rse fills every unfolding's tail: the cut ranks at max_rse / 100
    # would all be full, the drop where the signal ends is not
    planted = to_data_order(RING6, RING6_PERMUTATION)
    for seed in range(3):
        X = random_network(RING6, RING6_PERMUTATION, random_state=seed).to_tensor()
        noise = np.random.default_rng(seed).standard_normal(X.shape)
        X = X + 1e-5 * np.linalg.norm(X) * noise / np.linalg.norm(noise)
        search = _search(max_rse=1e-4, max_rank=4, random_state=seed).fit(X)
        assert canonical_key(search.best_structure_) == canonical_key(planted), seed
        assert search.history_[0]["stage"] == "svdins-cuts"


def test_svdins_cut_start_on_a_ring_template_with_its_permutation():
    # the cut ranks are over data modes, the template's edges over slots
    X = random_network(RING6, RING6_PERMUTATION, random_state=0).to_tensor()
    search = _search(graph="ring", permutation=RING6_PERMUTATION, max_rank=4, random_state=0)
    search.fit(X)
    planted = to_data_order(RING6, RING6_PERMUTATION)
    assert canonical_key(search.best_structure_) == canonical_key(planted)
    assert [h["stage"] for h in search.history_] == ["svdins-cuts"]


def test_svdins_cut_start_is_checkpointed_and_resumed(tmp_path):
    X = random_network(RING5, RING5_PERMUTATION, random_state=0).to_tensor()
    checkpoint = str(tmp_path / "search.npz")
    first = _search(random_state=0, checkpoint=checkpoint).fit(X)
    resumed = _search(random_state=0, checkpoint=checkpoint, resume=True).fit(X)
    assert [h["key"] for h in resumed.history_] == [h["key"] for h in first.history_]
    assert [h["seconds"] for h in resumed.history_] == [h["seconds"] for h in first.history_]
    assert resumed.best_network_.n_params == first.best_network_.n_params


def test_svdins_merges_a_tucker_core_into_a_data_core():
    # Tucker: data cores around an internal core; the full graph over the data modes has
    # no internal core, so the answer holds it in the data core whose merge costs least
    tucker = np.zeros((5, 5), dtype=int)
    tucker[np.arange(4), np.arange(4)] = 4
    tucker[np.arange(4), 4] = tucker[4, np.arange(4)] = [2, 2, 3, 2]
    X = random_network(tucker, random_state=0).to_tensor()
    search = _search(max_rank=4, random_state=0).fit(X)
    ranks = [2, 2, 3, 2]
    stars = [
        4 * np.prod(ranks) // ranks[hub] + sum(4 * r for k, r in enumerate(ranks) if k != hub)
        for hub in range(4)
    ]
    assert search.reconstruction_error_ <= 1e-6
    assert search.best_network_.n_params == min(stars)
    assert search.history_[0]["stage"] == "svdins-cuts"


def test_svdins_on_noisy_or_missing_data_runs_the_regularised_paths():
    X = random_network(RING, RING_PERMUTATION, random_state=1).to_tensor()
    penalized = _search(objective="penalized", max_evaluations=3, random_state=1).fit(X)
    assert penalized.history_[0]["stage"] == "svdins-floor"
    Y = np.where(np.random.default_rng(0).random(X.shape) < 0.9, X, np.nan)
    missing = _search(max_evaluations=3, random_state=1).fit(Y)
    assert missing.history_[0]["stage"] == "svdins-floor"
    # no low-rank network near the data at max_rse: no singular-value drop on most cuts
    Z = np.random.default_rng(0).standard_normal((4, 4, 4, 4))
    noise = _search(max_rse=0.3, max_evaluations=3, random_state=1).fit(Z)
    assert noise.history_[0]["stage"] == "svdins-floor"


def _noisy_plain_ring():
    """A plain tensor ring of order 5 (modes of 4, bonds of 2) with 1% noise: (structure,
    data)."""
    adjacency = np.diag([4] * 5)
    for k in range(5):
        adjacency[k, (k + 1) % 5] = adjacency[(k + 1) % 5, k] = 2
    X = random_network(adjacency, random_state=0).to_tensor()
    noise = np.random.default_rng(0).standard_normal(X.shape)
    return adjacency, X + 0.01 * np.linalg.norm(X) / np.sqrt(X.size) * noise


def test_svdins_is_never_worse_than_the_best_uniform_chain_or_ring():
    # a noisy plain tensor ring of order 5: the regularised rounds start from the dense full
    # graph (rank 4 on 10 bonds) and, within a short budget, end far above the plain ring
    adjacency, X = _noisy_plain_ring()
    search = _search(objective="penalized", max_rank=4, max_evaluations=12, random_state=0)
    search.fit(X)
    floor = [h for h in search.history_ if h["stage"] == "svdins-floor" and h["status"] == "ok"]
    assert floor
    assert search.best_objective_ <= min(h["objective"] for h in floor)
    assert search.best_network_.n_params <= n_params(adjacency)
    assert search.reconstruction_error_ <= 0.02


def test_svdins_does_not_fit_a_start_it_cannot_afford(monkeypatch):
    # a start whose sweep plans more flops than the cap (at order 10, the fully connected
    # start plans 2.5e14: hours a sweep) is not fitted: the answer is the floor's
    from tnml.structure_search import regularized

    monkeypatch.setattr(regularized, "_MAX_START_FLOPS", 1e4)
    _, X = _noisy_plain_ring()
    search = _search(objective="penalized", max_rank=4, max_evaluations=40, random_state=0)
    search.fit(X)
    stages = {h["stage"] for h in search.history_}
    assert "svdins-floor" in stages
    assert not stages & {"svdins-start", "svdins", "svdins-inflate", "refit"}
    floor = [h for h in search.history_ if h["stage"] == "svdins-floor" and h["status"] == "ok"]
    assert search.best_objective_ == min(h["objective"] for h in floor)
    assert search.reconstruction_error_ <= 0.02


def test_svdins_without_an_explaining_structure_within_max_rank_falls_back():
    # the planted ring needs rank 3: with max_rank 2 no candidate reaches the cut ranks
    X = random_network(RING5, RING5_PERMUTATION, random_state=0).to_tensor()
    search = _search(max_rank=2, max_evaluations=4, random_state=0).fit(X)
    stages = [h["stage"] for h in search.history_]
    assert "svdins-floor" in stages  # after the cut candidates, the regularised path's floor


@pytest.mark.parametrize("n_candidates", [-1, 1.5, True])
def test_svdins_bad_n_candidates_is_rejected(n_candidates):
    X = random_network(RING, random_state=0).to_tensor()
    runner = Runner(X, None, None, Objective("constrained"), method="svdins", seed=0, fit_params={})
    space = SearchSpace(X.shape, "full", max_rank=3)
    with pytest.raises(ValueError, match="n_candidates"):
        svdins(runner, space, np.random.RandomState(0), n_candidates=n_candidates)
