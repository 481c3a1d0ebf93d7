"""Every bad input gets a ValueError/TypeError naming the parameter."""

import numpy as np
import pytest

import tnml
from tnml.decompositions import cp_als, hosvd, tucker_hooi

ALGORITHMS = [
    lambda X, r: cp_als(X, r),
    lambda X, r: tucker_hooi(X, r),
    lambda X, r: hosvd(X, r)[0],
]
ESTIMATORS = [tnml.CP, tnml.Tucker, tnml.TensorTrain, tnml.TensorRing]


@pytest.mark.parametrize("fit", ALGORITHMS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite(fit, value):
    X = np.ones((3, 4, 5))
    X[1, 2, 3] = value
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fit(X, 2)


@pytest.mark.parametrize("fit", ALGORITHMS)
@pytest.mark.parametrize(
    "X",
    [
        np.array([["a", "b"], ["c", "d"]]),
        np.ones((3, 3), dtype=complex),
        np.empty((2, 2), dtype=object),
    ],
)
def test_non_numeric(fit, X):
    with pytest.raises(TypeError, match="X must hold real numbers"):
        fit(X, 1)


@pytest.mark.parametrize("fit", ALGORITHMS)
def test_order_below_two_and_empty_axes(fit):
    with pytest.raises(ValueError, match="X must have at least 2 axes"):
        fit(np.ones(5), 1)
    with pytest.raises(ValueError, match="X has an empty axis"):
        fit(np.ones((3, 0, 2)), 1)


@pytest.mark.parametrize("fit", ALGORITHMS)
@pytest.mark.parametrize("rank", [0, -2])
def test_nonpositive_rank(fit, rank):
    with pytest.raises(ValueError, match="rank"):
        fit(np.ones((3, 4, 5)), rank)


def test_rank_larger_than_tensor_allows():
    with pytest.raises(ValueError, match="rank=21 is larger than this tensor allows"):
        cp_als(np.ones((3, 4, 5)), 21)  # prod / max = 12 < 21 ... and 21 > 12
    with pytest.raises(ValueError, match=r"rank\[0\]=4 is larger than this tensor allows"):
        tucker_hooi(np.ones((3, 4, 5)), (4, 2, 2))
    with pytest.raises(ValueError, match="exceeds the product of the other ranks"):
        hosvd(np.ones((3, 4, 5)), (3, 1, 2))[0]
    with pytest.raises(ValueError, match="rank must have 3 entries"):
        tucker_hooi(np.ones((3, 4, 5)), (2, 2))
    with pytest.raises(TypeError, match="rank"):
        cp_als(np.ones((3, 4, 5)), 2.5)


def test_mask_problems():
    X = np.ones((3, 4, 5))
    with pytest.raises(ValueError, match="mask has no observed entries"):
        cp_als(X, 1, mask=np.zeros(X.shape, dtype=bool))
    with pytest.raises(ValueError, match="mask must have the tensor's shape"):
        cp_als(X, 1, mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        cp_als(X, 1, mask=np.ones(X.shape))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimators_reject_bad_tensors(Estimator):
    X = np.ones((6, 3, 4))
    X[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        Estimator().fit(X)
    with pytest.raises(ValueError, match="no observed entries"):
        Estimator().fit(np.full((6, 3, 4), np.nan))
    with pytest.raises(ValueError, match="empty axis"):
        Estimator().fit(np.ones((6, 0, 4)))
    with pytest.raises(TypeError, match="real numbers"):
        Estimator().fit(np.ones((6, 3, 4), dtype=complex))


def test_estimator_rank_too_large():
    with pytest.raises(ValueError, match="larger than this tensor allows"):
        tnml.CP(rank=500).fit(np.random.default_rng(0).random((6, 3, 4)))
    with pytest.raises(ValueError, match=r"rank\[1\]=9 is larger"):
        tnml.Tucker(rank=(9, 2)).fit(np.random.default_rng(0).random((6, 3, 4)))


# -- issue 9: one missing-value rule (item 3) and the small errors of item 11 ------------------
@pytest.mark.parametrize("family", ["cp", "tucker", "tt", "tr", "tubal", "smooth"])
def test_nan_is_missing_whatever_the_marker(family):
    """Item 3: with missing_values=-1, a NaN is missing too, for every family (no NaN out)."""
    from tnml.decompositions import random_cp

    X = random_cp((10, 11, 12), 2, random_state=0).to_tensor()
    X_missing = X.copy()
    X_missing[np.random.default_rng(1).random(X.shape) < 0.3] = -1
    X_missing[0, 0, 0] = np.nan
    imputer = tnml.TensorImputer(family, missing_values=-1, random_state=0, max_iter=20)
    completed = imputer.fit_transform(X_missing)
    assert np.isfinite(completed).all()
    assert imputer.n_missing_ == int((X_missing == -1).sum()) + 1
    observed = X_missing != -1
    observed[0, 0, 0] = False
    np.testing.assert_array_equal(completed[observed], X[observed])
    if family == "cp":  # rank-2 data: the missing entries, NaN's included, are recovered
        np.testing.assert_allclose(completed, X, atol=1e-6)


def test_missing_mask_is_the_one_rule():
    from tnml._validation import missing_mask

    X = np.array([[1.0, -1.0], [np.nan, 2.0]])
    assert missing_mask(X).tolist() == [[False, False], [True, False]]
    assert missing_mask(X, -1).tolist() == [[False, True], [True, False]]
    assert missing_mask(X, np.float32("nan")).tolist() == [[False, False], [True, False]]


@pytest.mark.parametrize("fit", [tucker_hooi, hosvd])
def test_numpy_integer_ranks(fit):
    X = np.random.default_rng(0).random((4, 5, 6))
    for rank in (np.int64(2), np.int32(2), (np.int64(2),) * 3):
        result = fit(X, rank)
        core = result[0].core if isinstance(result, tuple) else result.core
        assert core.shape == (2, 2, 2)


def test_nested_list_tensor_goes_to_the_estimator():
    X = np.random.default_rng(0).random((6, 4, 5))
    from_list = tnml.Tucker(rank=(2, 2)).fit(X.tolist())
    np.testing.assert_allclose(from_list.components_, tnml.Tucker(rank=(2, 2)).fit(X).components_)


def test_list_mask_is_a_mask():
    X = np.random.default_rng(0).random((4, 5, 6))
    mask = X > 0.2
    _, from_list = cp_als(X, 2, mask=mask.tolist(), random_state=0)
    _, from_array = cp_als(X, 2, mask=mask, random_state=0)
    assert from_list.errors == from_array.errors
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        cp_als(X, 2, mask=mask.astype(int).tolist())


def test_all_nan_sample_warns_at_transform():
    X = np.random.default_rng(0).random((6, 4, 5))
    model = tnml.CP(rank=2, random_state=0).fit(X)
    X_new = X.copy()
    X_new[1] = np.nan
    with pytest.warns(UserWarning, match=r"1 sample\(s\) of X have no observed entries"):
        W = model.transform(X_new)
    assert np.all(W[1] == 0) and np.all(np.isfinite(W))


@pytest.mark.parametrize("Estimator", ESTIMATORS + [tnml.TubalSVD])
@pytest.mark.parametrize("layout", ["tensor", "flat"])
def test_overflowing_values_get_one_clear_error(Estimator, layout):
    """Item 11: data scaled by 1e160 is a ValueError for every estimator (TensorRing raised
    LinAlgError, the others returned a NaN error)."""
    X = np.random.default_rng(0).random((6, 4, 5)) * 1e160
    if layout == "flat":
        X = X.reshape(6, 20)
    with pytest.raises(
        ValueError,
        match=r"X holds values up to 9.9\d*e\+159 in magnitude; "
        r"sums of their squares overflow float64",
    ):
        Estimator(rank=2).fit(X)
    with pytest.raises(ValueError, match="rescale X"):
        cp_als(X.reshape(6, 4, 5), 2)
    assert Estimator(rank=2).fit(X / 1e160).reconstruction_error_ < 1
