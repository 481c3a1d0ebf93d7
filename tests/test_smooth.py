"""Smooth Tucker completion: the DCT, the solve against a direct one, recovery, bad input."""

import numpy as np
import pytest
import scipy.fft

import tnml
import tnml.datasets
import tnml.metrics
from tnml import testing
from tnml.decompositions import TuckerTensor, smooth_tucker_complete
from tnml.decompositions.tubal.transforms import _dct_fft, _idct_fft, dct, idct


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("shape, axis", [((7,), 0), ((6, 5), 0), ((6, 5), 1), ((3, 8, 4), 1)])
def test_fft_dct_matches_scipy(shape, axis):
    x = np.random.default_rng(0).standard_normal(shape)
    expected = scipy.fft.dct(x, axis=axis, norm="ortho")
    np.testing.assert_allclose(_dct_fft(x, axis, np), expected, atol=1e-12)
    np.testing.assert_allclose(_idct_fft(expected, axis, np), x, atol=1e-12)


def neumann_penalty(grid, order):
    """L^order built from explicit difference matrices (no DCT): the independent reference."""
    lap = np.zeros((int(np.prod(grid)),) * 2)
    for axis, n in enumerate(grid):
        diff = np.diff(np.eye(n), axis=0)  # (n-1, n) first differences
        factors = [np.eye(m) for m in grid]
        factors[axis] = diff.T @ diff
        term = factors[0]
        for f in factors[1:]:
            term = np.kron(term, f)
        lap += term
    return np.linalg.matrix_power(lap, order)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_first_solve_matches_direct_solution(order):
    # With one iteration and K = C, every channel solves its own system
    # (diag(mask) + smoothness L^order) x = mask * X, whatever W is.
    rng = np.random.default_rng(order)
    grid, smoothness = (9, 7), 0.05
    X = rng.standard_normal(grid + (2,))
    mask = rng.random(X.shape) < 0.4
    model, info = smooth_tucker_complete(
        X, mask=mask, smoothness=smoothness, order=order, max_iter=1, cg_tol=1e-13
    )
    penalty = neumann_penalty(grid, order)
    for c in range(2):
        m = mask[..., c].ravel().astype(float)
        direct = np.linalg.solve(np.diag(m) + smoothness * penalty, m * X[..., c].ravel())
        np.testing.assert_allclose(model.to_tensor()[..., c].ravel(), direct, atol=1e-9)
    assert info.n_iter == 1 and len(info.errors) == 1


def smooth_low_rank(shape, rank, channels, seed):
    """Channels mixing ``rank`` smooth random fields (sums of a few low DCT modes)."""
    rng = np.random.default_rng(seed)
    fields = []
    for _ in range(rank):
        coeffs = np.zeros(shape)
        coeffs[:4, :4] = rng.standard_normal((4, 4)) / (
            1 + np.add.outer(np.arange(4), np.arange(4))
        )
        fields.append(scipy.fft.idctn(coeffs, norm="ortho"))
    return np.stack(fields, -1) @ rng.standard_normal((rank, channels))


def test_recovers_smooth_channel_low_rank_field():
    X = smooth_low_rank((40, 30), 2, 6, seed=0)
    mask = np.random.default_rng(1).random(X.shape) < 0.15  # 85% missing
    coupled, info = smooth_tucker_complete(X, mask=mask, smoothness=1e-4)
    separate, _ = smooth_tucker_complete(X, mask=mask, smoothness=1e-4, max_ratio=1)
    assert isinstance(coupled, TuckerTensor) and coupled.factors[-1].shape == (6, 6)
    assert rel(coupled.to_tensor(), X) < 1e-2
    # the reweighting lets a pixel borrow edges from the channels it was observed in
    assert rel(coupled.to_tensor(), X) < 0.5 * rel(separate.to_tensor(), X)
    assert info.converged


def test_rank_truncates_channel_patterns_and_feature_axis_moves():
    X = smooth_low_rank((20, 18), 2, 5, seed=2)
    mask = np.random.default_rng(3).random(X.shape) < 0.3
    model, _ = smooth_tucker_complete(X, mask=mask, rank=2, smoothness=1e-3)
    assert model.core.shape == (20, 18, 2) and model.factors[:2] == [None, None]
    assert rel(model.to_tensor(), X) < 3e-2
    moved, _ = smooth_tucker_complete(
        np.moveaxis(X, -1, 0),
        mask=np.moveaxis(mask, -1, 0),
        feature_axis=0,
        rank=2,
        smoothness=1e-3,
    )
    np.testing.assert_allclose(np.moveaxis(moved.to_tensor(), 0, -1), model.to_tensor(), atol=1e-8)


def test_single_channel_smooths_every_axis():
    t = np.linspace(0, 1, 30)
    X = np.add.outer(np.sin(3 * t), np.cos(2 * t))
    mask = np.random.default_rng(0).random(X.shape) < 0.2
    model, _ = smooth_tucker_complete(X, mask=mask, feature_axis=None, smoothness=1e-3)
    assert model.core.shape == X.shape and model.factors == [None, None]
    assert rel(model.to_tensor(), X) < 3e-2


def test_host_guard_and_namespace_dct():
    rng = np.random.default_rng(0)
    X = smooth_low_rank((12, 10), 2, 3, seed=4)
    mask = rng.random(X.shape) < 0.5
    expected, _ = smooth_tucker_complete(X, mask=mask, max_iter=3, tol=0)
    model, _ = smooth_tucker_complete(
        testing.asarray(X), mask=testing.asarray(mask), max_iter=3, tol=0
    )
    assert isinstance(model.core, testing.HostGuardArray)
    assert isinstance(model.factors[-1], testing.HostGuardArray)
    np.testing.assert_allclose(
        tnml.backend.to_numpy(model.to_tensor()), expected.to_tensor(), atol=1e-8
    )
    x = testing.asarray(rng.standard_normal((5, 6)))
    assert isinstance(dct(x, (0, 1)), testing.HostGuardArray)
    np.testing.assert_allclose(
        tnml.backend.to_numpy(idct(dct(x, (0, 1)), (0, 1))), tnml.backend.to_numpy(x), atol=1e-12
    )


def test_imputer_smooth_returns_observed_entries_exactly():
    image = tnml.datasets.load_image("astronaut", size=32)
    observed = tnml.datasets.make_mask(image.shape, 0.7, random_state=0)
    X = np.where(observed, image, np.nan)
    imputer = tnml.TensorImputer("smooth", random_state=0)
    completed = imputer.fit_transform(X)
    assert np.array_equal(completed[observed], image[observed])
    assert imputer.summary_["model"] == "smooth" and imputer.summary_["rank"] == 3
    assert set(imputer.summary_["settings"]) == {"feature_axis", "rank", "order", "smoothness"}
    per_channel_mean = np.where(observed, image, np.nanmean(X, axis=(0, 1)))
    assert (
        tnml.metrics.psnr(image, completed, mask=~observed, data_range=1.0)
        > tnml.metrics.psnr(image, per_channel_mean, mask=~observed, data_range=1.0) + 5
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"mask": np.zeros((6, 5, 2), bool)}, ValueError, "no observed entries"),
        ({"feature_axis": 3}, ValueError, "feature_axis"),
        ({"feature_axis": 1.5}, ValueError, "feature_axis"),
        ({"rank": 3}, ValueError, "rank=3"),
        ({"rank": 0}, ValueError, "rank"),
        ({"order": 0}, ValueError, "order"),
        ({"smoothness": -1.0}, ValueError, "smoothness"),
        ({"smoothness": np.nan}, ValueError, "smoothness"),
        ({"max_ratio": 0.5}, ValueError, "max_ratio"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"mask": np.ones((6, 5), bool)}, ValueError, "shape"),
        ({"mask": np.ones((6, 5, 2), int)}, TypeError, "boolean"),
    ],
)
def test_bad_input(kwargs, error, match):
    X = np.random.default_rng(0).random((6, 5, 2))
    kwargs.setdefault("mask", np.ones(X.shape, bool))
    mask = kwargs.pop("mask")
    with pytest.raises(error, match=match):
        smooth_tucker_complete(X, mask=mask, **kwargs)


def test_bad_values_and_axes():
    X = np.random.default_rng(0).random((6, 5, 2))
    mask = np.ones(X.shape, bool)
    X[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        smooth_tucker_complete(X, mask=mask)
    X[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN at observed"):
        smooth_tucker_complete(X, mask=mask)
    mask[0, 0, 0] = False  # a NaN where unobserved is fine
    smooth_tucker_complete(X, mask=mask, max_iter=1)
    with pytest.raises(ValueError, match="length >= 2"):
        smooth_tucker_complete(np.ones((1, 5, 2)), mask=np.ones((1, 5, 2), bool))
    with pytest.raises(ValueError, match="ordered axis"):
        smooth_tucker_complete(np.ones(5), mask=np.ones(5, bool))
