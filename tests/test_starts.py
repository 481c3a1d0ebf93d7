"""Starts and restarts (issue 11): the spectral start of sparse CP completion, n_init on the
algorithms and estimators, TR's default restarts, and the sketched SVD start of cp_als."""

import warnings

import numpy as np
import pytest

import tnml
from tnml.datasets import make_low_rank_entries
from tnml.decompositions import (
    Observations,
    cp_als,
    cp_complete,
    random_cp,
    random_tr,
    tr_als,
)
from tnml.decompositions._starts import observed_subspaces, projected_core
from tnml.decompositions.cp import spectral_cp
from tnml.testing import HostGuardArray


def _entries(shape, rank, n_obs, n_test, seed, noise=0.0):
    coords, values = make_low_rank_entries(
        shape, rank, n_obs + n_test, noise=noise, random_state=seed
    )
    return (
        Observations(coords[:n_obs], values[:n_obs], shape),
        Observations(coords[n_obs:], values[n_obs:], shape),
    )


def test_spectral_start_finds_the_basin_where_random_starts_stall():
    # 100^3, rank 5, 2*10^4 entries (13 per parameter): at this seed the damped random start
    # stalls, the spectral start converges in a few sweeps.
    train, test = _entries((100, 100, 100), 5, 20000, 2000, seed=1)
    _, spectral = cp_complete(train, 5, random_state=0, validation=test, max_iter=60)
    _, random = cp_complete(train, 5, init="random", random_state=0, validation=test, max_iter=60)
    assert spectral.validation_errors[-1] < 1e-6 and spectral.n_iter < 40
    assert random.validation_errors[-1] > 1e-2


def test_observed_subspaces_estimate_the_true_ones_without_densifying():
    truth = random_cp((40, 45, 50), 3, random_state=0)
    coords = np.random.default_rng(0).integers(0, truth.shape, size=(15000, 3))
    obs = Observations(coords, truth.entries(coords), truth.shape)
    bases = observed_subspaces(obs, 3, random_state=0)
    for basis, factor in zip(bases, truth.factors):
        q, _ = np.linalg.qr(factor)
        assert np.allclose(basis.T @ basis, np.eye(3), atol=1e-10)
        assert np.linalg.svd(q.T @ basis, compute_uv=False).min() > 0.85
    core = projected_core(obs, bases)
    assert core.shape == (3, 3, 3)
    # The projected core estimates X x_n U_n^T: its norm is the tensor's, roughly.
    assert abs(np.linalg.norm(core) / truth.norm() - 1) < 0.3


def test_spectral_start_refuses_too_few_observations():
    coords = np.random.default_rng(0).integers(0, 7, size=(200, 10))
    obs = Observations(coords, np.random.default_rng(1).standard_normal(200), (7,) * 10)
    assert spectral_cp(obs, 2) is None  # below 3 observations per parameter: random start


def test_spectral_start_stays_in_the_namespace():
    truth = random_cp((20, 21, 22), 2, random_state=0)
    coords = np.random.default_rng(0).integers(0, 20, size=(3000, 3))
    obs = Observations(HostGuardArray(coords), HostGuardArray(truth.entries(coords)), truth.shape)
    cp, info = cp_complete(obs, 2, random_state=0, max_iter=50, tol=1e-12)
    assert isinstance(cp.factors[0], HostGuardArray) and info.error < 1e-8


@pytest.mark.slow
def test_regressor_default_and_auto_recover_sparse_cp():
    shape, rank = (80, 80, 80), 4
    coords, values = make_low_rank_entries(shape, rank, 16000, noise=0.05, random_state=2)
    X, y, X_test, y_test = coords[:14000], values[:14000], coords[14000:], values[14000:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = tnml.TensorCompletionRegressor(model="cp", rank=rank, random_state=0).fit(X, y)
        auto = tnml.TensorCompletionRegressor(
            model="cp", rank="auto", max_rank=6, random_state=0
        ).fit(X, y)
    for model in (reg, auto):
        rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
        assert rmse < 1.2 * 0.05  # entries have unit variance: sigma = 0.05
    assert auto.rank_ == rank and auto.n_iter_ > 0


def test_regressor_n_init_compares_starts_on_held_out_entries():
    coords, values = make_low_rank_entries((30, 30, 30), 2, 4000, random_state=0)
    reg = tnml.TensorCompletionRegressor(
        model="tr", rank=2, n_init=3, max_iter=50, random_state=0
    ).fit(coords, values)
    assert reg.reconstruction_error_ < 1e-4


def test_n_init_keeps_the_best_start():
    X = random_cp((8, 9, 10), 3, random_state=0).to_tensor()
    X = X + 0.1 * np.random.default_rng(0).standard_normal(X.shape)  # no exact fit: all run
    singles = []
    rng = np.random.RandomState(0)
    for start in range(3):
        singles.append(
            cp_als(X, 3, init="svd" if start == 0 else "random", random_state=rng, max_iter=20)[
                1
            ].error
        )
    _, best = cp_als(X, 3, n_init=3, random_state=0, max_iter=20)
    assert best.error == pytest.approx(min(singles))
    with pytest.raises(ValueError, match="n_init"):
        cp_als(X, 3, n_init=0)


def test_tr_default_restarts_escape_the_deterministic_start():
    # An exact ring of shape (6, 5, 7), ranks (2, 3, 2): from the TR-SVD start alone ALS
    # stops at a relative error of 0.13 whatever the seed; the default restarts recover it.
    X = random_tr((6, 5, 7), (2, 3, 2), random_state=1).to_tensor()
    for seed in range(3):
        assert tr_als(X, (2, 3, 2), random_state=seed, n_init=1)[1].error > 0.1
        assert tr_als(X, (2, 3, 2), random_state=seed)[1].error < 1e-8
    model = tnml.TensorRing(rank=(2, 3, 2), random_state=0).fit(X)
    assert model.reconstruction_error_ < 1e-8


def test_cp_estimator_n_init():
    X = random_cp((10, 11, 12), 3, random_state=0).to_tensor()
    model = tnml.CP(rank=3, n_init=2, random_state=0, tol=1e-12, max_iter=300).fit(X)
    assert model.reconstruction_error_ < 1e-8


def test_sketched_svd_start_spans_the_leading_subspaces():
    # Above 2^18 entries cp_als starts from a Khatri-Rao range finder with one power step
    # (two MTTKRP passes) instead of an SVD of each unfolding: the same subspaces here.
    from tnml.decompositions.cp import _initial_factors

    truth = random_cp((70, 71, 72), 4, random_state=0)
    X = truth.to_tensor()
    factors = _initial_factors(X, 4, "svd", 0)
    for start, factor in zip(factors, truth.factors):
        q, _ = np.linalg.qr(factor)
        assert np.linalg.svd(q.T @ start, compute_uv=False).min() > 1 - 1e-8


def test_a_given_start_is_fitted_once_unless_n_init_says_otherwise(monkeypatch):
    # tr_als defaults to 3 starts from its named start; a given (warm) start runs once, as
    # scikit-learn's KMeans does with an explicit init array.
    import tnml.decompositions._fitting as starts
    from tnml.decompositions import random_tr, tr_als

    X = random_tr((6, 5, 7), (2, 3, 2), random_state=0).to_tensor()
    start = random_tr((6, 5, 7), (2, 3, 2), random_state=1)
    with monkeypatch.context() as patch:
        patch.setattr(starts, "best_of_starts", pytest.fail)  # no restarts from a given start
        default, info = tr_als(X, (2, 3, 2), init=start, max_iter=3, tol=0)
    once, info_once = tr_als(X, (2, 3, 2), init=start, max_iter=3, tol=0, n_init=1)
    assert info.errors == info_once.errors
    for a, b in zip(default.cores, once.cores):
        np.testing.assert_array_equal(a, b)
    _, three = tr_als(X, (2, 3, 2), init=start, max_iter=3, tol=0, n_init=3, random_state=0)
    assert three.error <= info.error
