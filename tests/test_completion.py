"""The coordinate regressor, :class:`tnml.TensorCompletionRegressor`."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score

import tnml
from tnml.decompositions import random_cp
from tnml.estimators.completion import TensorCompletionRegressor


def _coordinates(shape, n, seed=0):
    return np.random.default_rng(seed).integers(0, shape, size=(n, len(shape)))


def _regression_data(rank=2, n=2500, shape=(20, 20, 20)):
    truth = random_cp(shape, rank, random_state=3)
    coords = _coordinates(shape, n)
    return coords, truth.entries(coords), truth


def test_regressor_predicts_held_out_entries():
    coords, values, truth = _regression_data()
    reg = TensorCompletionRegressor(rank=2, tol=1e-12, max_iter=300, random_state=0)
    reg.fit(coords, values)
    assert reg.tensor_shape_ == truth.shape and reg.n_features_in_ == 3
    test = _coordinates(truth.shape, 200, seed=5)
    np.testing.assert_allclose(reg.predict(test), truth.entries(test), atol=1e-5)


def test_grid_search_over_rank_picks_the_true_rank():
    coords, values, truth = _regression_data()
    search = GridSearchCV(
        TensorCompletionRegressor(tensor_shape=truth.shape, tol=1e-8, max_iter=150, random_state=0),
        {"rank": [1, 2, 3]},
        cv=3,
    ).fit(coords, values)
    assert search.best_params_ == {"rank": 2}
    scores = cross_val_score(
        TensorCompletionRegressor(rank=2, tensor_shape=truth.shape, random_state=0),
        coords,
        values,
        cv=3,
    )
    assert scores.min() > 0.99


@pytest.mark.parametrize("model", ["cp", "tucker"])
def test_regressor_auto_rank(model):
    coords, values, truth = _regression_data(n=3000)
    reg = TensorCompletionRegressor(
        model, rank="auto", max_rank=4, tol=1e-8, max_iter=150, random_state=0
    ).fit(coords, values)
    assert reg.rank_ == 2 if model == "cp" else reg.rank_ >= 2
    assert [h[0] for h in reg.rank_history_][0] in (1, (1, 1, 1))


@pytest.mark.parametrize(
    "X, y, shape, match",
    [
        ([[0, 1], [2, -1]], [1.0, 2.0], None, "Negative values"),
        ([[0, 1], [2, 5]], [1.0, 2.0], (3, 3), "outside tensor_shape"),
        ([[0, 1.5], [2, 1]], [1.0, 2.0], None, "integer coordinates"),
        ([[0, 1], [2, 1]], [1.0, np.nan], None, "NaN"),
        ([[0, 1], [2, 1]], [1.0, 2.0, 3.0], None, "inconsistent numbers of samples"),
        ([[0, 1], [2, 1]], [1.0, 2.0], (3, 3, 3), "shape must hold 2"),
    ],
)
def test_bad_input(X, y, shape, match):
    with pytest.raises(ValueError, match=match):
        TensorCompletionRegressor(rank=1, tensor_shape=shape).fit(np.asarray(X), np.asarray(y))


def test_regressor_warns_when_it_stops_at_its_cap():
    coords, values, _ = _regression_data()
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 sweeps"):
        TensorCompletionRegressor(rank=2, max_iter=2, tol=0, random_state=0).fit(coords, values)


def test_predict_outside_the_fitted_shape():
    reg = TensorCompletionRegressor(rank=1, max_iter=2).fit([[0, 0], [1, 2]], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"outside tensor_shape=\(2, 3\)"):
        reg.predict([[2, 0]])


def test_regressor_never_densifies():
    shape = (10**4,) * 3
    truth = random_cp(shape, 2, random_state=0)
    coords = _coordinates(shape, 3000)
    with tnml.config_context(max_memory="50MB"):
        reg = TensorCompletionRegressor(rank=2, max_iter=5, random_state=0)
        reg.fit(coords, truth.entries(coords))
        assert reg.predict(coords[:10]).shape == (10,)


def test_under_sampled_fit_is_no_worse_than_the_mean():
    # 3.3 observations per parameter (the regime of 10^6 entries of a 20,000 x 30,000 x 500
    # rank-6 tensor, scaled down): an unregularised fit predicted held-out entries at 4.3
    # times their standard deviation.
    shape = (800, 1200, 20)
    truth = random_cp(shape, 6, random_state=12345)
    coords = _coordinates(shape, 40000 + 2000, seed=1)
    values = truth.entries(coords)
    values = values + 0.05 * values.std() * np.random.default_rng(2).standard_normal(len(values))
    reg = TensorCompletionRegressor(rank=6, tensor_shape=shape, random_state=0)
    with pytest.warns(UserWarning, match=r"3.3 per parameter"):
        reg.fit(coords[:40000], values[:40000])
    held_out = values[40000:]
    rmse = np.sqrt(np.mean((reg.predict(coords[40000:]) - held_out) ** 2))
    assert rmse < 1.01 * held_out.std()
