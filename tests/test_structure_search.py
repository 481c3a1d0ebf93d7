"""Structure search: planted structures recovered, cache, Dask, resume, bad input."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import tnml
from tnml import testing
from tnml.decompositions import random_network, ring_adjacency
from tnml.structure_search import (
    BudgetExhausted,
    Objective,
    Runner,
    SearchSpace,
    cache_key,
    canonical_key,
    n_params,
    to_data_order,
    uniform_scan,
)

# A ring over 4 modes of size 3, bond ranks 2, with modes placed out of order.
RING = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
RING_PERMUTATION = [0, 2, 1, 3]


def _planted(adjacency=RING, permutation=None, seed=0):
    return random_network(adjacency, permutation, random_state=seed).to_tensor()


def _planted_structure(adjacency=RING, permutation=None):
    return to_data_order(adjacency, permutation)


# -- searchers find planted structures ---------------------------------------------------------
def test_greedy_recovers_planted_ring_exactly():
    X = _planted()
    search = tnml.StructureSearch("greedy", max_rse=1e-6, max_rank=3, random_state=0).fit(X)
    assert search.reconstruction_error_ < 1e-6
    assert canonical_key(search.best_structure_) == canonical_key(_planted_structure())
    np.testing.assert_allclose(search.best_network_.to_tensor(), X, atol=1e-5)
    # the cheapest tree priced first, then every step tried every edge of the fully
    # connected start, warm started
    stages = [h["stage"] for h in search.history_]
    assert stages[:2] == ["tree", "fit"] and stages.count("refit") >= 1 and "grow" in stages


@pytest.mark.parametrize(
    "method, max_rank",
    [("tnale", 2), ("tnls", 2), pytest.param("tnale", 3, marks=pytest.mark.slow)],
)
def test_local_searches_recover_planted_permuted_ring(method, max_rank):
    X = _planted(RING, RING_PERMUTATION)
    truth = _planted_structure(RING, RING_PERMUTATION)
    search = tnml.StructureSearch(
        method, graph="ring", max_rank=max_rank, max_evaluations=120, n_init=3, random_state=0
    ).fit(X)
    assert search.reconstruction_error_ < 1e-3
    assert canonical_key(search.best_structure_) == canonical_key(truth)
    # the objective is the papers' score of what was found
    expected = n_params(search.best_structure_) / X.size + 200 * search.reconstruction_error_**2
    assert search.best_objective_ == pytest.approx(expected)


def _bond_ranks(structure):
    matrix = np.asarray(structure)
    return sorted(matrix[~np.eye(len(matrix), dtype=bool) & (matrix > 1)].tolist())


@pytest.mark.parametrize(
    "graph, shape, rank, max_rank",
    [("ring", (5,) * 4, 3, 8), ("ring", (7,) * 4, 5, 12), ("chain", (6,) * 4, 4, 16)],
)
def test_uniform_scan_finds_the_planted_uniform_rank(graph, shape, rank, max_rank):
    space = SearchSpace(shape, graph, max_rank=max_rank)
    X = random_network(space.structure([rank] * len(space.edges)), random_state=1).to_tensor()
    runner = Runner(
        X, None, None, Objective(), method="test", fit_params={"max_iter": 100, "n_init": 2}, seed=0
    )
    found, scores = uniform_scan(runner, space)
    assert found == rank
    # bracketed: both neighbours were scored and are worse, in fewer fits than every rank
    assert scores[rank - 1] > scores[rank] < scores[rank + 1]
    assert runner.n_evaluations <= len(scores) and runner.n_evaluations < max_rank
    # ground truth: the planted rank fits exactly, the rank below cannot
    fits = {max(_bond_ranks(h["structure"]), default=1): h for h in runner.history}
    assert fits[rank]["rse"] < 1e-6 and fits[rank - 1]["rse"] > 1e-2
    # the scan's score is the runner's record of that uniform structure
    assert scores[rank] == fits[rank]["objective"]


def test_tnale_starts_from_the_best_uniform_ring_and_only_improves_on_it():
    # a ring with unequal ranks: the best uniform ring is not the answer
    adjacency = [[4, 3, 0, 2], [3, 4, 2, 0], [0, 2, 4, 3], [2, 0, 3, 4]]
    X = _planted(adjacency, seed=2)
    search = tnml.StructureSearch(
        "tnale", graph="ring", max_rank=6, max_evaluations=80, random_state=0
    ).fit(X)
    # the scan came first: every bond rank equal, at the identity placement
    identity = SearchSpace(X.shape, "ring", max_rank=6)
    uniform = {canonical_key(identity.structure([r] * 4)) for r in range(1, 7)}
    n_scan = next(
        i for i, h in enumerate(search.history_) if canonical_key(h["structure"]) not in uniform
    )
    scan = search.history_[:n_scan]
    assert 3 <= n_scan < 6
    best_uniform = min(scan, key=lambda h: h["objective"])
    assert search.best_objective_ <= best_uniform["objective"]
    # and the sweeps improved on it: the planted ring, exactly
    assert search.best_objective_ < best_uniform["objective"]
    assert canonical_key(search.best_structure_) == canonical_key(_planted_structure(adjacency))
    assert search.reconstruction_error_ < 1e-4


def test_defaults_find_a_permuted_ring_from_the_full_graph():
    # StructureSearch() searches the full graph with tnale; sweeps over its edges from the
    # best uniform full network stopped at 132 parameters and RSE 1.4e-2 here. The default
    # start first searches the rings inside the full graph (placement searched), then
    # sweeps the full graph's edges from the best one.
    A = ring_adjacency((3,) * 5, [2, 3, 2, 2, 3])
    permutation = [0, 2, 4, 1, 3]
    X = _planted(A, permutation)
    search = tnml.StructureSearch(max_rank=3, max_evaluations=80, random_state=0).fit(X)
    assert canonical_key(search.best_structure_) == canonical_key(to_data_order(A, permutation))
    assert search.reconstruction_error_ < 1e-4


def test_start_option_chooses_where_the_local_searches_begin():
    X = _planted(RING, RING_PERMUTATION)
    kwargs = dict(graph="ring", max_rank=4, max_evaluations=3, random_state=0)
    first = {
        start: tnml.StructureSearch("tnale", start=start, **kwargs).fit(X).history_[0]
        for start in ("auto", "uniform", "random")
    }
    # 'auto' on a named graph is the uniform scan, which begins at rank 1
    assert first["auto"]["key"] == first["uniform"]["key"]
    assert _bond_ranks(first["uniform"]["structure"]) == []
    assert first["random"]["key"] != first["uniform"]["key"]
    # 'auto' with a matrix starts from its ranks, and 'uniform' overrides them
    matrix = [[3, 3, 0, 1], [3, 3, 2, 0], [0, 2, 3, 2], [1, 0, 2, 3]]
    given = tnml.StructureSearch("tnale", **{**kwargs, "graph": matrix}).fit(X).history_[0]
    assert given["key"] == cache_key(to_data_order(matrix))
    scanned = tnml.StructureSearch("tnale", start="uniform", **{**kwargs, "graph": matrix})
    assert _bond_ranks(scanned.fit(X).history_[0]["structure"]) == []


def test_random_search_spends_exactly_its_budget_without_repeats():
    X = _planted()
    search = tnml.StructureSearch("random", max_rank=3, max_evaluations=12, random_state=0).fit(X)
    assert search.n_evaluations_ == 12 == len(search.history_)
    keys = [h["key"] for h in search.history_]
    assert len(set(keys)) == len(keys)
    assert [h["evaluation"] for h in search.history_] == list(range(1, 13))
    best = min(search.history_, key=lambda h: h["objective"])
    assert search.best_objective_ == best["objective"]


def test_constrained_objective_returns_fewest_parameters_within_bound():
    X = _planted()
    search = tnml.StructureSearch(
        "greedy", objective="constrained", max_rse=1e-4, max_rank=3, random_state=0
    ).fit(X)
    feasible = [h for h in search.history_ if h["rse"] <= 1e-4]
    assert feasible and search.reconstruction_error_ <= 1e-4
    assert search.best_network_.n_params == min(h["n_params"] for h in feasible)


def test_missing_entries_use_held_out_error_and_complete_the_tensor():
    X = _planted(np.array(RING) + np.diag([2, 2, 2, 2]))  # modes of size 5: 625 entries
    rng = np.random.default_rng(0)
    X_missing = np.where(rng.random(X.shape) < 0.3, np.nan, X)
    search = tnml.StructureSearch("greedy", max_rse=1e-5, max_rank=2, random_state=0).fit(X_missing)
    assert search.reconstruction_error_ < 1e-5  # measured on held-out observed entries
    np.testing.assert_allclose(search.reconstruction(), X, atol=1e-3)
    imputer = tnml.TensorImputer(
        tnml.StructureSearch("greedy", max_rse=1e-5, max_rank=2, random_state=0)
    )
    completed = imputer.fit_transform(X_missing)
    np.testing.assert_allclose(completed, X, atol=1e-3)


def test_device_arrays_stay_on_device():
    X = testing.asarray(_planted())
    search = tnml.StructureSearch("greedy", max_rse=1e-6, max_rank=3, random_state=0).fit(X)
    assert all(isinstance(core, testing.HostGuardArray) for core in search.best_network_.cores)
    assert search.reconstruction_error_ < 1e-6


# -- encoding, cache -----------------------------------------------------------------------
def test_isomorphic_candidates_are_scored_once():
    X = _planted()
    space = SearchSpace(X.shape, "ring", max_rank=3, search_permutation=True)
    # the same ring read from another starting core, and in the other direction
    ring = space.structure([2, 2, 2, 2], [0, 1, 2, 3])
    rotated = space.structure([2, 2, 2, 2], [1, 2, 3, 0])
    reflected = space.structure([2, 2, 2, 2], [3, 2, 1, 0])
    runner = Runner(X, None, None, Objective(), method="test", fit_params={"max_iter": 20}, seed=0)
    records = runner.evaluate(
        [{"structure": ring}, {"structure": rotated}, {"structure": reflected}]
    )
    assert runner.n_evaluations == 1 and runner.n_cache_hits == 2
    assert records[0] is records[1] is records[2]
    runner.evaluate([{"structure": ring}])
    assert runner.n_evaluations == 1 and runner.n_cache_hits == 3


def test_differently_fitted_requests_of_one_structure_get_their_own_answers():
    # The cache key holds the fit settings and the start: a one-sweep refit and a full one of
    # the same structure (greedy's stepping stone and precise refit share the stage) are two
    # questions, and a warm start from a fitted network is a third.
    X = _planted()
    runner = Runner(X, None, None, Objective(), method="test", fit_params={"max_iter": 200}, seed=0)
    short, full = runner.evaluate(
        [
            {"structure": RING, "stage": "refit", "keep": True, "fit_params": {"max_iter": 1}},
            {"structure": RING, "stage": "refit", "keep": True, "fit_params": {"max_iter": 200}},
        ]
    )
    assert runner.n_evaluations == 2 and short["key"] != full["key"]
    assert short["rse"] > 100 * full["rse"]
    (warm,) = runner.evaluate([{"structure": RING, "stage": "refit", "warm_from": short}])
    assert runner.n_evaluations == 3 and warm["start"] == "warm" and warm["parent"] == 1
    # asked again, each is answered from the cache
    again = runner.evaluate(
        [
            {"structure": RING, "stage": "refit", "fit_params": {"max_iter": 1}},
            {"structure": RING, "stage": "refit", "warm_from": short},
        ]
    )
    assert again == [short, warm] and runner.n_evaluations == 3


def test_tnale_warm_starts_never_score_worse_than_their_centre():
    # The uniform scan fits ring ranks 1, 2, 4, 3 from random starts first; tnale's sweeps
    # then ask for larger ranks warm-started from the centre: each is its own evaluation
    # (before, the scan's random-start record answered for it) and, padded from the centre's
    # network, ends no worse than the centre.
    X = _planted(RING) + 0.05 * np.random.default_rng(0).standard_normal((3,) * 4)
    search = tnml.StructureSearch(
        "tnale", graph="ring", max_rank=3, max_evaluations=40, random_state=0
    ).fit(X)
    by_evaluation = {h["evaluation"]: h for h in search.history_}
    warm = [h for h in search.history_ if h["start"] == "warm"]
    assert warm
    for record in warm:
        assert record["rse"] <= by_evaluation[record["parent"]]["rse"] * (1 + 1e-6) + 1e-9
        assert record["n_params"] > by_evaluation[record["parent"]]["n_params"]


def test_runner_keeps_only_the_networks_that_can_serve_as_warm_starts(monkeypatch):
    from tnml.structure_search import runner as runner_module

    monkeypatch.setattr(runner_module, "KEPT_NETWORKS", 3)
    X = _planted()
    space = SearchSpace(X.shape, "ring", max_rank=3)
    runner = Runner(X, None, None, Objective(), method="test", fit_params={"max_iter": 5}, seed=0)
    structures = [space.structure(np.add(ranks, 1)) for ranks in np.ndindex(3, 3, 3, 1)]
    for structure in structures[:10]:
        (record,) = runner.evaluate([{"structure": structure, "keep": True}])
        assert runner.can_warm_start(record)
        assert len(runner.networks) <= 4 and runner.best["evaluation"] in runner.networks
    batch = runner.evaluate([{"structure": s, "keep": True} for s in structures[10:16]])
    assert all(runner.can_warm_start(r) for r in batch)  # the latest batch is kept whole
    assert len(runner.networks) <= 7


def test_internal_cores_are_relabelled_in_the_canonical_form():
    # Tucker-like: two data cores on two internal cores, internal cores listed both ways
    a = [[2, 0, 3, 1], [0, 2, 1, 3], [3, 1, 0, 2], [1, 3, 2, 0]]
    b = [[2, 0, 1, 3], [0, 2, 3, 1], [1, 3, 0, 2], [3, 1, 2, 0]]
    assert canonical_key(a) == canonical_key(b)
    assert canonical_key(a) != canonical_key(
        [[2, 0, 3, 1], [0, 2, 2, 3], [3, 2, 0, 2], [1, 3, 2, 0]]
    )
    # rank-1 bonds are no bonds
    assert canonical_key([[2, 1], [1, 3]]) == canonical_key([[2, 0], [0, 3]])


def test_candidates_over_the_memory_budget_are_recorded_as_skipped():
    X = _planted()
    # bytes: a fit's plan counts what its contraction steps hold (_EXECUTION_FACTOR)
    with tnml.config_context(max_memory=60000):
        search = tnml.StructureSearch("random", max_rank=6, max_evaluations=10, random_state=0).fit(
            X
        )
    statuses = {h["status"] for h in search.history_}
    assert statuses == {"ok", "skipped_memory"}
    skipped = [h for h in search.history_ if h["status"] == "skipped_memory"]
    assert all(h["objective"] == float("inf") for h in skipped)


def test_parallel_and_serial_searches_are_identical():
    X = _planted(RING, RING_PERMUTATION)
    kwargs = dict(graph="ring", max_rank=2, max_evaluations=16, max_iter=30, random_state=3)
    serial = tnml.StructureSearch("tnale", n_jobs=1, **kwargs).fit(X)
    parallel = tnml.StructureSearch("tnale", n_jobs=2, **kwargs).fit(X)
    assert [h["key"] for h in serial.history_] == [h["key"] for h in parallel.history_]
    assert [h["rse"] for h in serial.history_] == pytest.approx(
        [h["rse"] for h in parallel.history_], rel=1e-6, abs=1e-12
    )


def test_one_pool_per_search_hands_large_data_once_and_gives_the_serial_result():
    # Inside `with runner:` one joblib pool serves every batch, and data over 1 MB is
    # memory-mapped to its workers once (read-only there): same records as a serial runner.
    space = SearchSpace((8,) * 6, "ring", max_rank=2)
    X = random_network(space.structure([2] * 6), random_state=0).to_tensor()
    assert X.nbytes > 2**20
    results = []
    for n_jobs in (1, 2):
        runner = Runner(
            X, None, None, Objective(), method="test", fit_params={"max_iter": 3}, seed=0,
            n_jobs=n_jobs,
        )  # fmt: skip
        with runner:
            first = runner.evaluate(
                [
                    {"structure": space.structure([1] * 6), "keep": True},
                    {"structure": space.structure([2] * 6)},
                ]
            )
            parallel = runner._parallel
            second = runner.evaluate(
                [{"structure": space.structure([2, 1] * 3), "warm_from": first[0]}]
            )
            assert runner._parallel is parallel
        results.append([r["rse"] for r in first + second])
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)


def test_dask_cluster_gives_the_serial_result():
    distributed = pytest.importorskip("dask.distributed")
    import joblib

    X = _planted()
    kwargs = dict(max_rse=1e-6, max_rank=2, random_state=0)
    serial = tnml.StructureSearch("greedy", n_jobs=1, **kwargs).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            with joblib.parallel_config(backend="dask"):
                remote = tnml.StructureSearch("greedy", **kwargs).fit(X)
            workers_used = client.run(lambda: True)
    assert len(workers_used) == 2
    assert canonical_key(remote.best_structure_) == canonical_key(serial.best_structure_)
    assert [h["key"] for h in remote.history_] == [h["key"] for h in serial.history_]


# -- checkpoint and resume -----------------------------------------------------------------
_RESUME_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, tnml
    from tnml.decompositions import random_network, ring_adjacency
    X = random_network({ring}, random_state=0).to_tensor()
    search = tnml.StructureSearch("tnls", graph="ring", max_rank=3, max_evaluations=30,
                                  max_iter=40, random_state=1, checkpoint=sys.argv[1],
                                  resume=sys.argv[2] == "1")
    search.fit(X)
""")


def _history(checkpoint):
    return tnml.structure_search.read_checkpoint(checkpoint)["history"]


def test_killed_search_resumes_without_losing_or_repeating_evaluations(tmp_path):
    script = tmp_path / "search.py"
    script.write_text(_RESUME_SCRIPT.format(ring=RING))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    full = tmp_path / "full.npz"
    subprocess.run([sys.executable, str(script), str(full), "0"], check=True, env=env, timeout=300)
    reference = _history(full)
    assert len(reference) == 30

    killed = tmp_path / "killed.npz"
    process = subprocess.Popen([sys.executable, str(script), str(killed), "0"], env=env)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for a few checkpointed evaluations, then kill
        try:
            if 5 <= len(_history(killed)) < 30:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _history(killed)
    done = len(before)
    assert 5 <= done < 30, done

    subprocess.run(
        [sys.executable, str(script), str(killed), "1"], check=True, env=env, timeout=300
    )
    resumed = _history(killed)
    strip = ("seconds", "elapsed")
    assert [{k: v for k, v in h.items() if k not in strip} for h in resumed] == [
        {k: v for k, v in h.items() if k not in strip} for h in reference
    ]
    # the first `done` evaluations were restored, not refitted
    assert resumed[:done] == before


def test_a_fit_stops_at_the_search_deadline_and_a_resume_fits_it_again(tmp_path):
    # max_time all but spent: the deadline falls inside the fit, which stops after its
    # sweep and is marked truncated; a resumed search, given more time, fits it again
    # rather than replaying the cut answer.
    X = _planted()  # with noise: no fit is exact, so every one runs its max_iter sweeps
    X = X + 0.01 * np.random.default_rng(0).standard_normal(X.shape) * X.std()
    checkpoint = str(tmp_path / "search.npz")
    candidate = {"structure": _planted_structure(), "keep": True}
    settings = dict(method="test", fit_params={"max_iter": 5000, "tol": 0.0}, seed=0)
    runner = Runner(X, None, None, Objective(), max_time=3600, checkpoint=checkpoint, **settings)
    runner._elapsed_before = 3600 - 0.02
    with pytest.raises(BudgetExhausted):
        runner.evaluate([candidate])
    runner.close()
    cut = runner.history[0]
    assert cut["truncated"] is True and cut["status"] == "ok"
    resumed = Runner(X, None, None, Objective(), checkpoint=checkpoint, resume=True, **settings)
    [record] = resumed.evaluate([candidate])
    resumed.close()
    assert "truncated" not in record and record["key"] == cut["key"]
    assert record["rse"] <= cut["rse"]
    # the log now holds the full fit, not the cut one
    again = Runner(X, None, None, Objective(), checkpoint=checkpoint, resume=True, **settings)
    assert again.evaluate([candidate])[0]["rse"] == record["rse"]
    again.close()


def test_resume_continues_in_process_and_reports_the_same_best(tmp_path):
    X = _planted()
    checkpoint = str(tmp_path / "search.npz")
    kwargs = dict(max_rank=3, random_state=0, checkpoint=checkpoint)
    first = tnml.StructureSearch("random", max_evaluations=6, **kwargs).fit(X)
    # a larger budget continues the same search: the first six are restored
    more = tnml.StructureSearch("random", max_evaluations=10, resume=True, **kwargs).fit(X)
    assert [h["key"] for h in more.history_[:6]] == [h["key"] for h in first.history_]
    uninterrupted = tnml.StructureSearch(
        "random", max_evaluations=10, max_rank=3, random_state=0
    ).fit(X)
    assert [h["key"] for h in more.history_] == [h["key"] for h in uninterrupted.history_]
    assert canonical_key(more.best_structure_) == canonical_key(uninterrupted.best_structure_)


def test_resume_with_networks_dropped_makes_the_uninterrupted_decisions(tmp_path, monkeypatch):
    # Greedy warm-starts every step from kept networks; with only two kept besides the best
    # and the latest batch, most are dropped before the checkpoint is written. The replay
    # knows which were kept at each step (warm starts are part of the cache key), so the
    # resumed search asks the same questions as the uninterrupted one.
    from tnml.structure_search import runner as runner_module

    monkeypatch.setattr(runner_module, "KEPT_NETWORKS", 2)
    X = _planted()
    checkpoint = str(tmp_path / "search.npz")
    kwargs = dict(max_rank=3, max_rse=1e-6, random_state=0)
    tnml.StructureSearch("greedy", max_evaluations=25, checkpoint=checkpoint, **kwargs).fit(X)
    resumed = tnml.StructureSearch(
        "greedy", max_evaluations=45, checkpoint=checkpoint, resume=True, **kwargs
    ).fit(X)
    uninterrupted = tnml.StructureSearch("greedy", max_evaluations=45, **kwargs).fit(X)
    assert [h["key"] for h in resumed.history_] == [h["key"] for h in uninterrupted.history_]
    assert any(h["start"] != "random" for h in resumed.history_[25:])


def test_tnale_resumed_mid_scan_makes_the_uninterrupted_decisions(tmp_path):
    X = _planted(RING, RING_PERMUTATION)
    checkpoint = str(tmp_path / "search.npz")
    kwargs = dict(graph="ring", max_rank=3, max_iter=30, random_state=0)
    # two evaluations: stopped inside the uniform scan
    tnml.StructureSearch("tnale", max_evaluations=2, checkpoint=checkpoint, **kwargs).fit(X)
    resumed = tnml.StructureSearch(
        "tnale", max_evaluations=25, checkpoint=checkpoint, resume=True, **kwargs
    ).fit(X)
    uninterrupted = tnml.StructureSearch("tnale", max_evaluations=25, **kwargs).fit(X)
    assert [h["key"] for h in resumed.history_] == [h["key"] for h in uninterrupted.history_]
    assert resumed.best_objective_ == uninterrupted.best_objective_


def _greedy_checkpointed(checkpoint, max_evaluations, **kwargs):
    return tnml.StructureSearch(
        "greedy",
        max_rank=3,
        max_rse=1e-6,
        random_state=0,
        max_evaluations=max_evaluations,
        checkpoint=checkpoint,
        **kwargs,
    ).fit(_planted())


def test_checkpoint_is_appended_per_batch_not_rewritten(tmp_path, monkeypatch):
    # Issue 18 item 2: each batch appends its own records and newly kept networks; the
    # file was rewritten whole after every batch (I/O quadratic in the search's length).
    from tnml.structure_search import checkpoint as log
    from tnml.structure_search import runner as runner_module

    growth, whole = [], []
    append, write = log.append_batch, log.write_log

    def counted_append(path, records, *args):
        before = os.path.getsize(path)
        written = append(path, records, *args)
        growth.append((len(records), os.path.getsize(path) - before))
        return written

    def counted_write(path, *args):
        whole.append(1)
        return write(path, *args)

    monkeypatch.setattr(runner_module, "append_batch", counted_append)
    monkeypatch.setattr(runner_module, "write_log", counted_write)
    checkpoint = str(tmp_path / "search.ckpt")
    search = _greedy_checkpointed(checkpoint, 40)
    assert len(whole) == 1 and len(growth) >= 10  # created once, then appended
    # a batch writes its records (about 1 kB each with their network), whatever came before
    assert all(size <= 4096 * n_records for n_records, size in growth)
    first, last = growth[0][1] / growth[0][0], growth[-1][1] / growth[-1][0]
    assert last <= 3 * first
    assert len(tnml.structure_search.read_checkpoint(checkpoint)["history"]) == 40
    assert search.n_evaluations_ == 40


def test_checkpoint_is_compacted_on_resume_and_when_dropped_networks_dominate(
    tmp_path, monkeypatch
):
    from tnml.structure_search import checkpoint as log
    from tnml.structure_search import runner as runner_module

    monkeypatch.setattr(runner_module, "KEPT_NETWORKS", 2)
    monkeypatch.setattr(runner_module, "_COMPACT_SLACK", 10**9)  # never while running
    checkpoint = str(tmp_path / "search.ckpt")
    _greedy_checkpointed(checkpoint, 30)
    content = log.read_log(checkpoint)
    kept = sum(a.nbytes for parts in content["cores"].values() for a in parts.values())
    assert content["network_bytes"] > 2 * kept  # the networks dropped since are still there
    assert len(log._read_frames(checkpoint)[0]) > 2
    resumed = _greedy_checkpointed(checkpoint, 30, resume=True)  # nothing left to fit
    assert len(log._read_frames(checkpoint)[0]) == 2  # the header and one batch
    compacted = log.read_log(checkpoint)
    assert compacted["network_bytes"] == kept
    assert compacted["history"] == content["history"] == resumed.history_
    # while running: the file stays within about twice its compacted size
    monkeypatch.setattr(runner_module, "_COMPACT_SLACK", 0)
    sizes = []
    write_checkpoint = runner_module.Runner._write_checkpoint

    def measured(self):
        before = os.path.getsize(self.checkpoint) if os.path.exists(self.checkpoint) else 0
        write_checkpoint(self)
        kept = {e: [c for c in n.cores] for e, n in self.networks.items() if n is not None}
        compacted = str(tmp_path / "compacted.ckpt")
        log.write_log(compacted, self.fingerprint, self.history, 0.0, list(kept), kept)
        after = os.path.getsize(self.checkpoint)
        sizes.append((after, os.path.getsize(compacted), max(after - before, 0)))

    monkeypatch.setattr(runner_module.Runner, "_write_checkpoint", measured)
    _greedy_checkpointed(str(tmp_path / "running.ckpt"), 30)
    # within twice the compacted file, give or take the batch just appended
    assert all(size <= 2 * compacted + batch for size, compacted, batch in sizes)
    assert any(size < before for (before, _, _), (size, _, _) in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_a_damaged_checkpoint_tail_is_ignored_and_the_resume_matches(tmp_path, damage):
    # A crash in the middle of an append leaves a frame cut short (or a disk's garbage):
    # resuming warns, drops that batch only, and fits it again: the same search as an
    # uninterrupted one.
    from tnml.structure_search.checkpoint import CheckpointDamaged

    checkpoint = tmp_path / "search.ckpt"
    _greedy_checkpointed(str(checkpoint), 20)
    data = checkpoint.read_bytes()
    last = data.rindex(b"TNMF")
    if damage == "cut":
        checkpoint.write_bytes(data[: last + (len(data) - last) // 2])
    else:
        checkpoint.write_bytes(data[:last] + bytes(len(data) - last))
    with pytest.warns(CheckpointDamaged, match="cut short"):
        resumed = _greedy_checkpointed(str(checkpoint), 35, resume=True)
    uninterrupted = tnml.StructureSearch(
        "greedy", max_rank=3, max_rse=1e-6, random_state=0, max_evaluations=35
    ).fit(_planted())
    assert [h["key"] for h in resumed.history_] == [h["key"] for h in uninterrupted.history_]
    assert [h["rse"] for h in resumed.history_] == [h["rse"] for h in uninterrupted.history_]
    assert resumed.best_objective_ == uninterrupted.best_objective_
    assert len(tnml.structure_search.read_checkpoint(checkpoint)["history"]) == 35


def test_a_legacy_whole_file_checkpoint_is_resumed_and_compacted(tmp_path):
    import json

    from tnml.structure_search import checkpoint as log

    checkpoint = str(tmp_path / "search.npz")
    first = _greedy_checkpointed(checkpoint, 10)
    content = log.read_log(checkpoint)
    meta = {
        "format": log.LEGACY_FORMAT,
        "fingerprint": content["fingerprint"],
        "history": content["history"],
        "elapsed": content["elapsed"],
    }
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    for evaluation, parts in content["cores"].items():
        for index, core in parts.items():
            arrays[f"network_{evaluation}_{index}"] = core
    with open(checkpoint, "wb") as stream:
        np.savez(stream, **arrays)
    resumed = _greedy_checkpointed(checkpoint, 10, resume=True)
    assert resumed.history_ == first.history_
    assert log.is_log(checkpoint)


@pytest.mark.parametrize("image", ["camera", "moon"])
def test_default_search_is_never_worse_than_plain_tt_and_tr_it_can_reach(image):
    # Issue 18 item 3: with the defaults (graph 'full', tnale from the uniform chain and the
    # rings inside the full graph), the result is never worse than plain TT (TT-SVD) or TR
    # (TR-ALS) of any single rank within max_rank.
    from tnml.datasets import load_image
    from tnml.decompositions import tr_als, tt_svd

    X = load_image(image, size=16).reshape((4,) * 4)
    search = tnml.StructureSearch(rse_weight=5, max_rank=4, max_evaluations=60, random_state=0)
    search.fit(X)

    def objective(model):
        rse = np.linalg.norm(X - model.to_tensor()) / np.linalg.norm(X)
        return model.n_params / X.size + 5 * rse**2

    plain = [objective(tt_svd(X, r)[0]) for r in range(1, 5)]
    plain += [objective(tr_als(X, r, max_iter=20, random_state=0)[0]) for r in range(1, 5)]
    assert search.best_objective_ <= min(plain) + 1e-12


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, text",
    [
        ({"graph": [[3, 2, 0, 2], [1, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]}, "symmetric"),
        ({"graph": [[3, -2, 0, 2], [-2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]}, "non-negative"),
        ({"graph": "ring", "permutation": [0, 1, 1, 3]}, "permutation must be a permutation"),
        ({"graph": [[4, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]}, "mode sizes"),
        ({"graph": [[3, 2, 2], [2, 3, 2], [2, 2, 3]]}, "graph has 3 cores with a data mode"),
        ({"max_rank": 0}, "max_rank"),
        ({"max_evaluations": 0}, "max_evaluations"),
        ({"max_time": 0}, "max_time"),
        ({"method": "annealing"}, "method"),
        ({"start": "best"}, "start"),
    ],
)
def test_bad_input_names_the_parameter(params, text):
    with pytest.raises(ValueError, match=text):
        tnml.StructureSearch(**params).fit(_planted())


def test_corrupted_checkpoint_is_an_error_and_left_untouched(tmp_path):
    checkpoint = tmp_path / "search.npz"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint .* is corrupted"):
        tnml.StructureSearch(checkpoint=str(checkpoint), resume=True).fit(_planted())
    assert checkpoint.read_bytes() == b"not a checkpoint"
    with pytest.raises(ValueError, match="already exists"):
        tnml.StructureSearch(checkpoint=str(checkpoint)).fit(_planted())
    assert checkpoint.read_bytes() == b"not a checkpoint"


def test_checkpoint_of_another_search_is_refused(tmp_path):
    checkpoint = str(tmp_path / "search.npz")
    X = _planted()
    tnml.StructureSearch(
        "random", max_rank=2, max_evaluations=3, random_state=0, checkpoint=checkpoint
    ).fit(X)
    with pytest.raises(ValueError, match="different search"):
        tnml.StructureSearch(
            "random",
            max_rank=3,
            max_evaluations=3,
            random_state=0,
            checkpoint=checkpoint,
            resume=True,
        ).fit(X)


def test_objective_and_space_validation():
    with pytest.raises(ValueError, match="rse_weight"):
        Objective(rse_weight=-1)
    with pytest.raises(ValueError, match="objective"):
        Objective("fastest")
    with pytest.raises(ValueError, match="graph must be one of"):
        SearchSpace((3, 3), "star")
