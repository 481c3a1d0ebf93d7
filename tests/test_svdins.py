"""method='svdins': the one-shot regularised structure search, its bond-penalty hook in
network_als, prune_network, and the runner features it relies on."""

import numpy as np
import pytest

import tnml
from tnml.decompositions import network_als, pad_network, prune_network, random_network
from tnml.structure_search import (
    METHODS,
    BondPenalty,
    Objective,
    Runner,
    canonical_key,
    to_data_order,
)

RING = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
RING_PERMUTATION = [0, 2, 1, 3]
CHAIN = np.diag([3] * 5)
for _i, _r in enumerate([2, 3, 3, 2]):
    CHAIN[_i, _i + 1] = CHAIN[_i + 1, _i] = _r
CHAIN_PERMUTATION = [0, 3, 1, 4, 2]


def _search(**kwargs):
    settings = dict(objective="constrained", max_rse=1e-6, max_rank=3)
    return tnml.StructureSearch("svdins", **{**settings, **kwargs})


# -- planted structures, from the full graph ---------------------------------------------------
@pytest.mark.parametrize(
    "adjacency, permutation, seed",
    [(RING, RING_PERMUTATION, 1), (CHAIN, CHAIN_PERMUTATION, 1)],
    ids=["ring4", "chain5"],
)
def test_svdins_recovers_planted_structure_from_full_graph(adjacency, permutation, seed):
    X = random_network(adjacency, permutation, random_state=seed).to_tensor()
    search = _search(random_state=seed).fit(X)
    planted = to_data_order(adjacency, permutation)
    assert canonical_key(search.best_structure_) == canonical_key(planted)
    assert search.reconstruction_error_ <= 1e-6
    np.testing.assert_allclose(search.best_network_.to_tensor(), X, atol=1e-5)
    stages = [h["stage"] for h in search.history_]
    # two paths (n_init) from the full graph at rank 3, penalised rounds, refit, polish
    assert stages[:2] == ["svdins-start", "svdins-start-1"]
    assert "svdins" in stages and "refit" in stages
    first = np.asarray(search.history_[0]["structure"])
    assert np.all(first[~np.eye(len(first), dtype=bool)] == 3)
    rounds = [h for h in search.history_ if h["stage"] == "svdins"]
    assert all("pruned" in h for h in rounds)


def test_svdins_is_registered_for_the_estimator_and_the_cli():
    assert "svdins" in METHODS
    from tnml.cli import build_parser

    args = build_parser().parse_args(["search", "x.npy", "--method", "svdins", "--out", "o"])
    assert args.method == ["svdins"]


# -- runner features -----------------------------------------------------------------------------
def test_svdins_keeps_max_rank():
    X = random_network(RING, random_state=1).to_tensor()
    search = _search(max_rank=1, random_state=1).fit(X)
    assert search.n_evaluations_ == 1 and search.best_network_.n_params == 12
    search = _search(max_rank=2, random_state=1).fit(X)
    assert all(np.max(np.asarray(h["structure"]) * (1 - np.eye(4))) <= 2 for h in search.history_)


def test_svdins_budget_is_respected():
    X = random_network(RING, random_state=1).to_tensor()
    search = _search(max_evaluations=5, random_state=1).fit(X)
    assert search.n_evaluations_ == 5
    assert np.isfinite(search.reconstruction_error_)


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


def test_svdins_paths_in_parallel_give_the_serial_result():
    # n_init paths run side by side: one candidate per path in each batch
    X = random_network(RING, RING_PERMUTATION, random_state=1).to_tensor()
    serial = _search(random_state=1, n_jobs=1).fit(X)
    parallel = _search(random_state=1, n_jobs=2).fit(X)
    assert [h["key"] for h in serial.history_] == [h["key"] for h in parallel.history_]
    assert [h["rse"] for h in serial.history_] == pytest.approx(
        [h["rse"] for h in parallel.history_], rel=1e-6, abs=1e-12
    )


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


def test_checkpoint_with_a_forged_pruned_structure_is_refused(tmp_path):
    from tnml.structure_search.checkpoint import write_log

    X = random_network(RING, random_state=1).to_tensor()
    checkpoint = str(tmp_path / "search.npz")
    _search(max_evaluations=4, random_state=1, checkpoint=checkpoint).fit(X)
    content = tnml.structure_search.read_checkpoint(checkpoint)
    record = next(h for h in content["history"] if "pruned" in h)
    record["pruned"] = (np.asarray(record["structure"]) + 1).tolist()  # grows every bond
    networks = content["networks"]
    write_log(
        checkpoint, content["fingerprint"], content["history"], content["elapsed"],
        list(networks), networks,
    )  # fmt: skip
    with pytest.raises(ValueError, match="pruned"):
        _search(max_evaluations=8, random_state=1, checkpoint=checkpoint, resume=True).fit(X)


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
