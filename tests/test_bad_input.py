"""Every bad input gets a ValueError/TypeError naming the parameter."""

import numpy as np
import pytest

import tnml
from tnml.decompositions import cp_als, hosvd, tucker_hooi

ALGORITHMS = [lambda X, r: cp_als(X, r), lambda X, r: tucker_hooi(X, r), lambda X, r: hosvd(X, r)]
ESTIMATORS = [tnml.CP, tnml.Tucker, tnml.TensorTrain, tnml.TensorRing]


@pytest.mark.parametrize("fit", ALGORITHMS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite(fit, value):
    X = np.ones((3, 4, 5))
    X[1, 2, 3] = value
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fit(X, 2)


@pytest.mark.parametrize("fit", ALGORITHMS)
@pytest.mark.parametrize("X", [np.array([["a", "b"], ["c", "d"]]),
                               np.ones((3, 3), dtype=complex), np.empty((2, 2), dtype=object)])
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
        hosvd(np.ones((3, 4, 5)), (3, 1, 2))
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
