import numpy as np
import pytest
import tensorly as tl
from sklearn.exceptions import ConvergenceWarning
from tensorly.decomposition import parafac

import tnml
from tnml import testing
from tnml.decompositions import CPTensor, cp_als, random_cp


@pytest.mark.parametrize(
    "shape, rank",
    [
        ((10, 11, 12), 3),
        ((6, 7, 5, 8), 4),
        ((5, 6, 4, 5, 3), 3),
        ((4, 3, 4, 3, 4, 3), 2),
        ((30, 20), 5),
    ],
)
def test_exact_recovery(shape, rank):
    X = random_cp(shape, rank, random_state=1).to_tensor()
    cp, info = cp_als(X, rank, max_iter=3000, tol=1e-15, random_state=0)
    assert info.error < 1e-8
    np.testing.assert_allclose(cp.to_tensor(), X, atol=1e-7 * np.abs(X).max())


@pytest.mark.parametrize("shape", [(20, 30, 25), (6, 7, 5, 8)])
def test_same_error_as_tensorly_from_same_init(shape, rng):
    X = rng.random(shape)
    init = random_cp(shape, 4, random_state=3)
    cp, info = cp_als(X, 4, max_iter=25, tol=0, init=init)
    tl_cp, errors = parafac(X, 4, n_iter_max=25, tol=0, init=init.to_tensorly(), return_errors=True)
    tl_error = np.linalg.norm(X - tl.cp_to_tensor(tl_cp)) / np.linalg.norm(X)
    assert abs(info.error - tl_error) < 1e-6
    assert abs(np.linalg.norm(X - cp.to_tensor()) / np.linalg.norm(X) - info.error) < 1e-10


def test_format_interface(rng):
    cp = random_cp((4, 5, 6), 3, random_state=0)
    dense = cp.to_tensor()
    idx = np.stack([rng.integers(0, d, 50) for d in cp.shape], axis=1)
    np.testing.assert_allclose(cp.entries(idx), dense[tuple(idx.T)])
    np.testing.assert_allclose(cp.norm(), np.linalg.norm(dense))
    assert cp.n_params == 3 * (4 + 5 + 6) + 3
    back = CPTensor.from_tensorly(cp.to_tensorly())
    np.testing.assert_array_equal(back.to_tensor(), dense)
    np.testing.assert_allclose(cp.normalize().to_tensor(), dense)


def test_linesearch_and_ridge_still_fit(rng):
    X = random_cp((15, 16, 17), 4, random_state=2).to_tensor() + 1e-3 * rng.random((15, 16, 17))
    _, plain = cp_als(X, 4, max_iter=40, tol=0, init="random", random_state=0)
    _, jumped = cp_als(X, 4, max_iter=40, tol=0, init="random", random_state=0, linesearch=True)
    assert jumped.error <= plain.error * 1.01
    _, ridged = cp_als(X, 4, max_iter=40, alpha=1e-8, random_state=0)
    assert ridged.error < 1e-2


def test_mask_em_imputation(rng):
    X = random_cp((12, 13, 14), 2, random_state=4).to_tensor()
    mask = rng.random(X.shape) > 0.3
    X_missing = np.where(mask, X, np.nan)
    cp, info = cp_als(X_missing, 2, mask=mask, max_iter=500, tol=1e-12, random_state=0)
    missing_error = np.linalg.norm((cp.to_tensor() - X)[~mask]) / np.linalg.norm(X[~mask])
    assert missing_error < 1e-4


def test_host_guard_no_implicit_copies():
    X = testing.asarray(random_cp((6, 7, 8), 2, random_state=0).to_tensor())
    mask = testing.asarray(np.ones((6, 7, 8), dtype=bool))
    for kwargs in ({}, {"init": "random", "random_state": 0, "linesearch": True}, {"mask": mask}):
        cp, info = cp_als(X, 2, max_iter=5, **kwargs)
        assert all(isinstance(f, testing.HostGuardArray) for f in cp.factors)
    assert isinstance(cp.to_tensor(), testing.HostGuardArray)
    assert isinstance(
        cp.entries(testing.asarray(np.zeros((3, 3), dtype=int))), testing.HostGuardArray
    )
    assert isinstance(cp.norm(), testing.HostGuardArray)


def test_float32_stays_float32():
    X = random_cp((6, 7, 8), 2, random_state=0).to_tensor().astype(np.float32)
    cp, _ = cp_als(X, 2, max_iter=5)
    assert cp.factors[0].dtype == np.float32


def _swamp(seed, shape=(9, 11, 13), rank=5):
    """An exact CP tensor whose first two components correlate at 0.9 in every mode."""
    rng = np.random.default_rng(seed)
    factors = []
    for dim in shape:
        z = rng.standard_normal((dim, rank))
        z[:, 1] = 0.9 * z[:, 0] + np.sqrt(1 - 0.9**2) * z[:, 1]
        factors.append(z)
    return CPTensor(np.ones(rank), factors).to_tensor(), rank


def test_cp_defaults_recover_a_swamp():
    X, rank = _swamp(0)
    with pytest.warns(ConvergenceWarning):
        plain = tnml.CP(rank=rank, max_iter=100, linesearch=False, random_state=0).fit(X)
    model = tnml.CP(rank=rank, random_state=0).fit(X)
    assert plain.reconstruction_error_ > 1e-6  # 100 plain sweeps stay in the swamp
    assert model.reconstruction_error_ < 1e-8
    assert model.n_iter_ > 100  # the progress rule let it go on


def test_progress_after_stops_a_creeping_fit():
    # Noise fitted at an over-rank: the error creeps down by fractions of a percent.
    X = np.random.default_rng(0).standard_normal((12, 11, 10))
    free = cp_als(X, 12, max_iter=200, tol=1e-12, random_state=0)[1]
    ruled = cp_als(X, 12, max_iter=200, tol=1e-12, random_state=0, progress_after=20)[1]
    assert free.n_iter == 200
    assert 20 < ruled.n_iter < 200
    errors = ruled.errors
    assert errors[-11] - errors[-1] < 0.01 * errors[-11]
    np.testing.assert_allclose(errors, free.errors[: ruled.n_iter])  # same path until it stops
    with pytest.raises(ValueError, match="progress_after"):
        cp_als(X, 2, progress_after=0)
