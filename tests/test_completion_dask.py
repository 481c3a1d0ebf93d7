"""CP completion on a Dask cluster: same answer as in memory, faults, checkpoints."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from tnml.decompositions import Observations, cp_complete, random_cp
from tnml.estimators.completion import TensorCompletionRegressor

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

SHAPE = (30, 40, 20)


def _cluster():
    # Two worker processes on the loopback interface, as a small real cluster.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    return cluster


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as client:
        yield client


def _data(n=3000, rank=3, noise=0.01):
    truth = random_cp(SHAPE, rank, random_state=7)
    rng = np.random.default_rng(0)
    coords = np.stack([rng.integers(0, d, n) for d in SHAPE], axis=1)
    return coords, truth.entries(coords) + noise * rng.standard_normal(n)


def _dask(coords, values, chunk):
    return da.from_array(coords, chunks=(chunk, coords.shape[1])), da.from_array(values, chunk)


def _relative_difference(a, b):
    a, b = a.to_tensor(), b.to_tensor()
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("chunk, init, n_init", [(3000, "spectral", 1), (701, "random", 2)])
def test_distributed_fit_equals_in_memory_fit(client, chunk, init, n_init):
    from tnml.decompositions.distributed import cp_complete_distributed, distribute_observations

    coords, values = _data()
    kwargs = dict(init=init, n_init=n_init, random_state=0, max_iter=40, tol=1e-8)
    expected, info = cp_complete(Observations(coords, values, SHAPE), 3, **kwargs)
    observations = distribute_observations(*_dask(coords, values, chunk), SHAPE)
    result, distributed_info = cp_complete_distributed(observations, 3, **kwargs)
    assert distributed_info.n_iter == info.n_iter
    assert _relative_difference(result, expected) < 1e-10
    observations.release()


def test_row_blocks_are_compact_and_chunking_changes_nothing(monkeypatch):
    # In this process, without a cluster: the blocks of every mode from two input
    # partitions, read in chunks of 7 observations.
    from tnml.decompositions import distributed as dist
    from tnml.decompositions._masked import solve_rowwise
    from tnml.decompositions.cp import _cp_design

    monkeypatch.setattr(dist, "_CHUNK", 7)
    coords, values = _data(n=500)
    factors = random_cp(SHAPE, 3, random_state=1).factors
    model = random_cp(SHAPE, 3, random_state=2)
    parts = [(coords[:230], values[:230]), (coords[230:], values[230:])]
    for mode, dim in enumerate(SHAPE):
        edges = np.array([0, dim // 3, dim])
        pieces = [dist._split(c, v, mode, edges, SHAPE) for c, v in parts]
        blocks = [dist._assemble(b, mode, edges, SHAPE, *(p[b] for p in pieces)) for b in (0, 1)]
        for b, block in enumerate(blocks):
            # A stable sort by the block's mode, as Observations.sorted_by has it.
            inside = (coords[:, mode] >= edges[b]) & (coords[:, mode] < edges[b + 1])
            order = np.argsort(coords[inside, mode], kind="stable")
            expected, expected_values = coords[inside][order], values[inside][order]
            np.testing.assert_array_equal(block.global_indices(), expected)
            np.testing.assert_array_equal(block.values, expected_values)
            # The own mode is not stored; the others as uint8 here (modes below 256).
            assert block.columns[mode] is None
            assert all(c.dtype == np.uint8 for c in block.columns if c is not None)
            residual = expected_values - model.entries(expected)
            assert np.isclose(dist._model_residual(block, model), residual @ residual)
            held_out = block.subset(0.3, 5, True)
            train = block.subset(0.3, 5, False)
            assert held_out.n_obs + train.n_obs == block.n_obs and held_out.n_obs > 0
            np.testing.assert_array_equal(
                held_out.global_indices(), expected[dist._held_out(expected, 0.3, 5)]
            )
            # The rows solved from the block are the in-memory ones.
            local = expected.copy()
            local[:, mode] -= edges[b]
            shape = list(SHAPE)
            shape[mode] = edges[b + 1] - edges[b]
            obs = Observations(local, expected_values, tuple(shape))
            columns = [obs.column(m) for m in range(3)]
            design = _cp_design(list(factors), columns, mode)
            direct = solve_rowwise(obs, mode, design, shape[mode], 3, 1e-3)
            np.testing.assert_allclose(dist._solve_block(block, factors, 3, 1e-3), direct)
        # 8 bytes a value and 1 a coordinate of each other mode, plus the run pointers.
        held = sum(
            sum(c.nbytes for c in block.columns if c is not None) + block.values.nbytes
            for block in blocks
        )
        assert held == 500 * (8 + 2)


def test_estimator_on_dask_collections(client):
    coords, values = _data()
    reg = TensorCompletionRegressor(rank=3, random_state=0, tol=1e-8)
    in_memory = reg.fit(coords, values).decomposition_
    fitted = TensorCompletionRegressor(rank=3, random_state=0, tol=1e-8)
    fitted.fit(*_dask(coords, values, 997))
    assert fitted.tensor_shape_ == SHAPE and fitted.n_features_in_ == 3
    assert _relative_difference(fitted.decomposition_, in_memory) < 1e-10
    predicted = fitted.predict(da.from_array(coords[:100], chunks=(30, 3)))
    assert isinstance(predicted, da.Array)
    np.testing.assert_allclose(predicted.compute(), reg.predict(coords[:100]), rtol=1e-9)
    with pytest.raises(ValueError, match="outside tensor_shape"):
        fitted.predict(da.from_array(coords[:10] + 100, chunks=(5, 3))).compute()


def test_estimator_on_a_dask_dataframe(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    coords, values = _data()
    expected = TensorCompletionRegressor(rank=3, random_state=0, tol=1e-8).fit(coords, values)
    frame = pd.DataFrame({"i": coords[:, 0], "j": coords[:, 1], "k": coords[:, 2], "x": values})
    ddf = dd.from_pandas(frame, npartitions=3)
    # The last column as the values, or the values as a Series.
    for X, y in [(ddf, None), (ddf[["i", "j", "k"]], ddf["x"])]:
        fitted = TensorCompletionRegressor(rank=3, random_state=0, tol=1e-8).fit(X, y)
        assert fitted.tensor_shape_ == SHAPE and fitted.n_features_in_ == 3
        assert _relative_difference(fitted.decomposition_, expected.decomposition_) < 1e-10
    predicted = fitted.predict(ddf[["i", "j", "k"]])
    assert isinstance(predicted, da.Array)
    np.testing.assert_allclose(predicted.compute(), expected.predict(coords), rtol=1e-9)


def test_other_families_name_the_distributed_ones(client):
    coords, values = _data(n=500)
    with pytest.raises(ValueError, match=r"run distributed are \('cp',\)"):
        TensorCompletionRegressor("tucker", rank=2).fit(*_dask(coords, values, 100))
    with pytest.raises(ValueError, match="NaN or infinity"):
        bad = values.copy()
        bad[3] = np.nan
        TensorCompletionRegressor(rank=2).fit(*_dask(coords, bad, 100))


_KILL_SCRIPT = """
import logging, os, signal, warnings
import numpy as np, dask.array as da, distributed
from tnml.decompositions.distributed import cp_complete_distributed, distribute_observations
from tnml.decompositions import random_cp

shape = (30, 40, 20)
truth = random_cp(shape, 3, random_state=7)
rng = np.random.default_rng(0)
coords = np.stack([rng.integers(0, d, 3000) for d in shape], axis=1)
values = truth.entries(coords) + 0.01 * rng.standard_normal(3000)
warnings.simplefilter("ignore")
with distributed.LocalCluster(
    n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
    dashboard_address=None, silence_logs=logging.CRITICAL,
) as cluster, distributed.Client(cluster) as client:
    observations = distribute_observations(
        da.from_array(coords, chunks=(500, 3)), da.from_array(values, 500), shape
    )
    kwargs = dict(init="random", random_state=0, max_iter=12, tol=0)
    expected, _ = cp_complete_distributed(observations, 3, callback=lambda s: None, **kwargs)

    def kill_one_worker(state):
        if len(state["errors"]) == 3:  # mid-fit: SIGKILL one worker process
            os.kill(next(iter(client.run(os.getpid).values())), signal.SIGKILL)

    result, info = cp_complete_distributed(observations, 3, callback=kill_one_worker, **kwargs)
    a, b = result.to_tensor(), expected.to_tensor()
    print(info.n_iter, np.linalg.norm(a - b) / np.linalg.norm(b))
"""


def test_a_killed_worker_changes_nothing():
    # In a fresh interpreter with a cluster of its own: killing a worker must not disturb the
    # other tests' cluster.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    n_iter, difference = done.stdout.split()[-2:]
    assert int(n_iter) == 12
    assert float(difference) < 1e-10


def test_checkpoint_and_resume(client, tmp_path):
    coords, values = _data()
    X, y = _dask(coords, values, 1000)
    path = tmp_path / "fit.npz"
    params = dict(rank=3, random_state=0, tol=0)
    full = TensorCompletionRegressor(max_iter=10, **params).fit(X, y)
    with pytest.warns(Warning, match="did not converge"):
        TensorCompletionRegressor(max_iter=4, checkpoint=path, **params).fit(X, y)
    assert path.exists()
    resumed = TensorCompletionRegressor(max_iter=10, checkpoint=path, resume=True, **params)
    with pytest.warns(Warning, match="did not converge"):
        resumed.fit(X, y)
    assert resumed.n_iter_ == 10
    assert _relative_difference(resumed.decomposition_, full.decomposition_) < 1e-10
    other = TensorCompletionRegressor(max_iter=10, checkpoint=path, resume=True, rank=2)
    with pytest.raises(ValueError, match="written by another fit"):
        other.fit(X, y)


def test_in_memory_fits_import_no_dask():
    code = (
        "import sys, numpy as np, tnml\n"
        "X = np.random.default_rng(0).integers(0, 5, size=(200, 3))\n"
        "tnml.TensorCompletionRegressor(rank=2, max_iter=3).fit(X, np.ones(200)).predict(X)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_under_sampled_dask_fit_warns_and_selects_on_held_out_entries(client):
    coords, values = _data(n=800)
    reg = TensorCompletionRegressor(rank=12, random_state=0, max_iter=20)
    with pytest.warns(UserWarning, match="per parameter"):
        reg.fit(*_dask(coords, values, 300))
    test, truth = _data(n=3800)
    rmse = np.sqrt(np.mean((reg.predict(test[800:]) - truth[800:]) ** 2))
    assert rmse < 1.01 * truth[800:].std()
