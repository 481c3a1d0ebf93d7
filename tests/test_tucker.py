import numpy as np
import pytest
import tensorly as tl
from tensorly.decomposition import tucker

from tnml import testing
from tnml.decompositions import TuckerTensor, hosvd, random_tucker, tucker_hooi


@pytest.mark.parametrize(
    "shape, rank",
    [
        ((8, 9, 10), (2, 3, 4)),
        ((5, 6, 4, 5), (2, 3, 2, 3)),
        ((5, 6, 4, 5, 3), (2, 3, 2, 3, 2)),
        ((4, 3, 4, 3, 4, 3), (2, 2, 2, 2, 2, 2)),
        ((20, 30), (4, 4)),
    ],
)
def test_exact_recovery(shape, rank):
    X = random_tucker(shape, rank, random_state=0).to_tensor()
    assert np.linalg.norm(X - hosvd(X, rank)[0].to_tensor()) / np.linalg.norm(X) < 1e-8
    t, info = tucker_hooi(X, rank, init="random", random_state=1, max_iter=50, tol=1e-14)
    assert info.error < 1e-8
    np.testing.assert_allclose(t.to_tensor(), X, atol=1e-8 * np.abs(X).max())


@pytest.mark.parametrize("shape, rank", [((20, 25, 30), (3, 4, 5)), ((6, 7, 5, 8), (2, 3, 2, 3))])
def test_same_error_as_tensorly(shape, rank, rng):
    X = rng.random(shape)
    t, info = tucker_hooi(X, rank, max_iter=10, tol=0)
    tl_t, errors = tucker(X, rank, n_iter_max=10, tol=0, return_errors=True)
    tl_error = np.linalg.norm(X - tl.tucker_to_tensor(tl_t)) / np.linalg.norm(X)
    assert abs(info.error - tl_error) < 1e-6


def test_partial_tucker_leaves_mode_whole(rng):
    X = rng.random((7, 8, 9))
    t, _ = tucker_hooi(X, (None, 3, 4), max_iter=5)
    assert t.factors[0] is None and t.rank == (7, 3, 4)
    assert t.n_params == 7 * 3 * 4 + 8 * 3 + 9 * 4


def test_format_interface(rng):
    t = random_tucker((4, 5, 6), (2, 3, None), random_state=0)
    dense = t.to_tensor()
    idx = np.stack([rng.integers(0, d, 40) for d in t.shape], axis=1)
    np.testing.assert_allclose(t.entries(idx), dense[tuple(idx.T)])
    scaled = TuckerTensor(t.core, [2.0 * t.factors[0], t.factors[1], None])
    np.testing.assert_allclose(scaled.norm(), np.linalg.norm(scaled.to_tensor()))
    np.testing.assert_allclose(TuckerTensor.from_tensorly(t.to_tensorly()).to_tensor(), dense)


def test_mask_em(rng):
    X = random_tucker((12, 13, 14), (2, 2, 2), random_state=3).to_tensor()
    mask = rng.random(X.shape) > 0.3
    t, _ = tucker_hooi(np.where(mask, X, np.nan), (2, 2, 2), mask=mask, max_iter=300, tol=1e-12)
    assert np.linalg.norm((t.to_tensor() - X)[~mask]) / np.linalg.norm(X[~mask]) < 1e-4


def test_host_guard():
    X = testing.asarray(random_tucker((6, 7, 8), 2, random_state=0).to_tensor())
    t, _ = tucker_hooi(X, (2, 2, 2), max_iter=3)
    assert isinstance(t.core, testing.HostGuardArray)
    assert isinstance(hosvd(X, 2)[0].to_tensor(), testing.HostGuardArray)
    assert isinstance(t.norm(), testing.HostGuardArray)
    t, _ = tucker_hooi(
        X,
        (2, 2, 2),
        max_iter=3,
        init="random",
        random_state=0,
        mask=testing.asarray(np.ones((6, 7, 8), dtype=bool)),
    )
    assert isinstance(
        t.entries(testing.asarray(np.zeros((2, 3), dtype=int))), testing.HostGuardArray
    )
