"""Masked ALS for CP and Tucker, rank growth and the coordinate regressor."""

from functools import partial

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import tnml
from tnml import testing
from tnml.decompositions import (
    CPTensor,
    Observations,
    cp_als,
    cp_complete,
    pad_cp,
    pad_tucker,
    random_cp,
    random_tucker,
    tucker_complete,
    tucker_hooi,
)
from tnml.decompositions._rank_search import grow_rank
from tnml.estimators.completion import TensorCompletionRegressor


def _masked(X, fraction, seed=0):
    return np.random.default_rng(seed).random(X.shape) < fraction


def _missing_error(X, X_hat, mask):
    return np.linalg.norm((X - X_hat)[~mask]) / np.linalg.norm(X[~mask])


def _coordinates(shape, n, seed=0):
    return np.random.default_rng(seed).integers(0, shape, size=(n, len(shape)))


def test_cp_masked_als_recovers_missing_entries():
    X = random_cp((15, 16, 17), 2, random_state=1).to_tensor()
    mask = _masked(X, 0.25)
    cp, info = cp_als(np.where(mask, X, np.nan), 2, mask=mask, tol=1e-14, max_iter=500,
                      random_state=0)
    assert _missing_error(X, cp.to_tensor(), mask) < 1e-6


def test_tucker_masked_als_recovers_missing_entries():
    X = random_tucker((15, 16, 17), (2, 3, 2), random_state=1).to_tensor()
    mask = _masked(X, 0.25)
    tucker, info = tucker_hooi(np.where(mask, X, np.nan), (2, 3, 2), mask=mask, tol=1e-14,
                               max_iter=300)
    assert _missing_error(X, tucker.to_tensor(), mask) < 1e-6
    factor = tucker.factors[1]
    np.testing.assert_allclose(factor.T @ factor, np.eye(3), atol=1e-10)


@pytest.mark.parametrize("decompose", [partial(cp_als, rank=2), partial(tucker_hooi, rank=2)])
def test_em_option_still_works(decompose):
    X = random_cp((10, 11, 12), 2, random_state=1).to_tensor()
    mask = _masked(X, 0.6)
    fitted, info = decompose(np.where(mask, X, 0), mask=mask, missing="em", max_iter=500,
                             tol=1e-14)
    assert _missing_error(X, fitted.to_tensor(), mask) < 1e-3
    with pytest.raises(ValueError, match="missing"):
        decompose(X, mask=mask, missing="impute")


def test_cp_complete_matches_dense_normal_equations():
    rng = np.random.default_rng(0)
    shape, rank, ridge = (4, 5, 6), 2, 1e-3
    X = rng.standard_normal(shape)
    mask = _masked(X, 0.6)
    unit = random_cp(shape, rank, random_state=0).normalize().factors
    start = CPTensor(np.ones(rank), unit)  # balanced already: cp_complete rescales nothing
    cp, _ = cp_complete(Observations.from_dense(X, mask), rank, init=start, max_iter=1,
                        ridge=ridge)
    # Reference: one sweep of the textbook per-row normal equations, one row at a time.
    factors = [f.copy() for f in start.factors]
    coords = np.argwhere(mask)
    for mode in range(3):
        for row in range(shape[mode]):
            here = coords[coords[:, mode] == row]
            design = np.ones((len(here), rank))
            for other in set(range(3)) - {mode}:
                design *= factors[other][here[:, other]]
            gram = design.T @ design + ridge * np.eye(rank)
            factors[mode][row] = np.linalg.solve(gram, design.T @ X[tuple(here.T)])
    np.testing.assert_allclose(cp.to_tensor(), CPTensor(None, factors).to_tensor(), atol=1e-12)


def test_validation_errors_are_tracked():
    truth = random_cp((12, 13, 14), 2, random_state=0)
    coords = _coordinates(truth.shape, 800)
    held = _coordinates(truth.shape, 100, seed=1)
    _, info = cp_complete(Observations(coords, truth.entries(coords), truth.shape), 2,
                          validation=Observations(held, truth.entries(held), truth.shape),
                          max_iter=5, tol=0)
    assert len(info.validation_errors) == info.n_iter == 5


def test_pad_keeps_the_tensor_nearly_unchanged():
    cp = random_cp((5, 6, 7), 2, random_state=0)
    padded = pad_cp(cp, 4, scale=1e-6, random_state=0)
    assert padded.rank == 4
    np.testing.assert_allclose(padded.to_tensor(), cp.to_tensor(), atol=1e-4)
    tucker = random_tucker((5, 6, 7), (2, 2, 2), random_state=0)
    grown = pad_tucker(tucker, (3, 4, 2), scale=0.0, random_state=0)
    assert grown.rank == (3, 4, 2)
    np.testing.assert_allclose(grown.to_tensor(), tucker.to_tensor(), atol=1e-12)


def test_grow_rank_picks_the_true_rank():
    truth = random_cp((20, 20, 20), 3, random_state=2)
    coords = _coordinates(truth.shape, 3200)
    values = truth.entries(coords) + 1e-3 * np.random.default_rng(0).standard_normal(3200)
    obs = Observations(coords, values, truth.shape)

    def fit(observations, rank, init):
        return cp_complete(observations, rank, init="random" if init is None else init,
                           tol=1e-8, max_iter=200, random_state=0)

    best, rank, history = grow_rank(fit, partial(pad_cp, random_state=0), obs, range(1, 7),
                                    random_state=0)
    assert rank == 3 and best.rank == 3
    assert [h[0] for h in history][:4] == [1, 2, 3, 4]


@pytest.mark.parametrize("complete, rank", [(cp_complete, 2), (tucker_complete, (2, 2, 2))])
def test_completion_stays_on_the_device(complete, rank):
    truth = random_cp((6, 7, 8), 2, random_state=0)
    coords = _coordinates(truth.shape, 200)
    obs = Observations(testing.asarray(coords), testing.asarray(truth.entries(coords)),
                       truth.shape)
    fitted, info = complete(obs, rank, max_iter=3, random_state=0, validation=obs)
    for array in fitted._arrays():
        assert isinstance(array, testing.HostGuardArray)


# -- the regressor ------------------------------------------------------------------------------
def _expected_failed_checks(estimator):
    if estimator.model == "tucker":
        # The check fits 10-column "coordinates" (rounded standardised features): a Tucker
        # model of order 10 and rank 2 is no regressor for that data and scores below 0.5.
        return {"check_regressors_train": "order-10 Tucker of rank 2 underfits the check's "
                                          "synthetic data"}
    return {}


@parametrize_with_checks([TensorCompletionRegressor(rank=2, max_iter=20),
                          TensorCompletionRegressor("tucker", rank=2, max_iter=10)],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_checks(estimator, check):
    check(estimator)


def _regression_data(rank=2, n=2500, shape=(20, 20, 20)):
    truth = random_cp(shape, rank, random_state=3)
    coords = _coordinates(shape, n)
    return coords, truth.entries(coords), truth


def test_regressor_predicts_held_out_entries():
    coords, values, truth = _regression_data()
    reg = TensorCompletionRegressor(rank=2, tol=1e-12, max_iter=300, random_state=0)
    reg.fit(coords, values)
    assert reg.shape_ == truth.shape and reg.n_features_in_ == 3
    test = _coordinates(truth.shape, 200, seed=5)
    np.testing.assert_allclose(reg.predict(test), truth.entries(test), atol=1e-5)


def test_grid_search_over_rank_picks_the_true_rank():
    coords, values, truth = _regression_data()
    search = GridSearchCV(
        TensorCompletionRegressor(shape=truth.shape, tol=1e-8, max_iter=150, random_state=0),
        {"rank": [1, 2, 3]}, cv=3).fit(coords, values)
    assert search.best_params_ == {"rank": 2}
    scores = cross_val_score(TensorCompletionRegressor(rank=2, shape=truth.shape,
                                                       random_state=0), coords, values, cv=3)
    assert scores.min() > 0.99


@pytest.mark.parametrize("model", ["cp", "tucker"])
def test_regressor_auto_rank(model):
    coords, values, truth = _regression_data(n=3000)
    reg = TensorCompletionRegressor(model, rank="auto", max_rank=4, tol=1e-8, max_iter=150,
                                    random_state=0).fit(coords, values)
    assert reg.rank_ == 2 if model == "cp" else reg.rank_ >= 2
    assert [h[0] for h in reg.rank_history_][0] in (1, (1, 1, 1))


@pytest.mark.parametrize("X, y, shape, match", [
    ([[0, 1], [2, -1]], [1.0, 2.0], None, "Negative values"),
    ([[0, 1], [2, 5]], [1.0, 2.0], (3, 3), "outside shape"),
    ([[0, 1.5], [2, 1]], [1.0, 2.0], None, "integer coordinates"),
    ([[0, 1], [2, 1]], [1.0, np.nan], None, "NaN"),
    ([[0, 1], [2, 1]], [1.0, 2.0, 3.0], None, "inconsistent numbers of samples"),
    ([[0, 1], [2, 1]], [1.0, 2.0], (3, 3, 3), "shape must hold 2"),
])
def test_bad_input(X, y, shape, match):
    with pytest.raises(ValueError, match=match):
        TensorCompletionRegressor(rank=1, shape=shape).fit(np.asarray(X), np.asarray(y))


def test_predict_outside_the_fitted_shape():
    reg = TensorCompletionRegressor(rank=1, max_iter=2).fit([[0, 0], [1, 2]], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"outside shape=\(2, 3\)"):
        reg.predict([[2, 0]])


def test_regressor_never_densifies():
    shape = (10**4,) * 3
    truth = random_cp(shape, 2, random_state=0)
    coords = _coordinates(shape, 3000)
    with tnml.config_context(max_memory="50MB"):
        reg = TensorCompletionRegressor(rank=2, max_iter=5, random_state=0)
        reg.fit(coords, truth.entries(coords))
        assert reg.predict(coords[:10]).shape == (10,)
