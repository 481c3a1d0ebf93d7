import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

import tnml
from tnml import testing
from tnml.decompositions import random_cp, random_tr, random_tucker

ESTIMATORS = [tnml.CP(), tnml.Tucker(), tnml.TensorTrain(), tnml.TensorRing(), tnml.TubalSVD()]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_tensor_input_tag(estimator):
    assert estimator.__sklearn_tags__().input_tags.three_d_array


@pytest.mark.parametrize(
    "model",
    [
        tnml.CP(rank=12, random_state=0),
        pytest.param(tnml.Tucker(rank=(3, 3)), marks=pytest.mark.slow),  # ~10 s
        tnml.TensorTrain(rank=8),
        tnml.TensorRing(rank=4, random_state=0),
    ],
)
def test_pipeline_grid_search_cross_val(model):
    digits = load_digits()
    X, y = digits.data[:400], digits.target[:400]
    model.set_params(tensor_shape=(8, 8))
    pipe = make_pipeline(model, LogisticRegression(max_iter=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.5  # 10 classes: chance is 0.1


def test_grid_search_over_rank():
    digits = load_digits()
    pipe = make_pipeline(tnml.Tucker(tensor_shape=(8, 8)), LogisticRegression(max_iter=500))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipe, {"tucker__rank": [(1, 1), (5, 5)]}, cv=2)
        search.fit(digits.data[:600], digits.target[:600])
    assert search.best_params_["tucker__rank"] == (5, 5)


def test_transform_inverse_transform_on_exact_model(rng):
    X = random_cp((30, 5, 6, 7), 3, random_state=0).to_tensor()
    model = tnml.CP(rank=3, tol=1e-14, max_iter=2000, random_state=0).fit(X)
    assert model.reconstruction_error_ < 1e-8
    X_new = random_cp((30, 5, 6, 7), 3, random_state=0).to_tensor()[:4]
    W = model.transform(X_new)
    np.testing.assert_allclose(model.inverse_transform(W), X_new, atol=1e-6)
    # flat input with tensor_shape gives flat output
    flat = tnml.CP(rank=3, tensor_shape=(5, 6, 7), tol=1e-14, max_iter=2000, random_state=0).fit(
        X.reshape(30, -1)
    )
    assert flat.inverse_transform(flat.transform(X.reshape(30, -1)[:2])).shape == (2, 210)


@pytest.mark.parametrize(
    "model, make",
    [
        (
            tnml.Tucker(rank=(2, 3, 4)),
            lambda: random_tucker((20, 6, 7, 8), (20, 2, 3, 4), random_state=0).to_tensor(),
        ),
        (tnml.TensorTrain(rank=None, tol=0), lambda: np.random.default_rng(0).random((9, 3, 4, 5))),
    ],
)
def test_exact_models_reconstruct_samples(model, make):
    X = make()
    model.fit(X)
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), X, atol=1e-8)


@pytest.mark.parametrize(
    "model, make",
    [
        (tnml.CP(rank=3, tol=1e-14, max_iter=500, random_state=0), random_cp),
        (tnml.Tucker(rank=(3, 3, 3)), random_cp),
        (tnml.Tucker(rank=(4, 3, 3, 3)), random_cp),
        (tnml.TensorTrain(rank=3), random_cp),
        (tnml.TensorRing(rank=2, tol=1e-12, max_iter=500), random_tr),
        (tnml.TubalSVD(rank=2), random_cp),
    ],
)
def test_fit_transform_is_the_fitted_sample_factor(model, make):
    X = make((12, 5, 6, 7), 2, random_state=0).to_tensor()
    W = model.fit_transform(X)
    assert W.shape == (12, model.n_components_)
    # the model itself, nothing solved again ...
    model_values = np.reshape(model.decomposition_.to_tensor(), (12, -1))
    np.testing.assert_allclose(W @ model.components_, model_values, atol=1e-10)
    # ... and, at a fixed point of the fit, the least-squares coordinates of transform
    np.testing.assert_allclose(
        W @ model.components_, model.transform(X) @ model.components_, atol=1e-6 * np.abs(X).max()
    )


def test_estimators_keep_device_arrays():
    X = testing.asarray(random_cp((12, 4, 5), 2, random_state=0).to_tensor())
    for model in [
        tnml.CP(rank=2, max_iter=5),
        tnml.Tucker(rank=2, max_iter=3),
        tnml.TensorTrain(rank=2),
        tnml.TensorRing(rank=1, max_iter=3),
        tnml.TubalSVD(rank=2),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            W = model.fit(X).transform(X)
        assert isinstance(W, testing.HostGuardArray), type(model).__name__
        assert isinstance(model.inverse_transform(W), testing.HostGuardArray)


def test_convergence_warning():
    X = np.random.default_rng(0).random((10, 8, 9))
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        tnml.CP(rank=5, max_iter=2, tol=1e-12).fit(X)


def test_clone_and_pickle_fitted(rng):
    X = rng.random((15, 4, 5))
    model = tnml.TensorRing(rank=2, random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.transform(X), model.transform(X))
    assert clone(model).get_params() == model.get_params()


@pytest.mark.parametrize("Estimator", [tnml.CP, tnml.Tucker, tnml.TensorTrain, tnml.TensorRing])
def test_mismatched_tensor_shape(Estimator, rng):
    with pytest.raises(ValueError, match="tensor_shape"):
        Estimator(tensor_shape=(3, 3)).fit(rng.random((10, 10)))
    with pytest.raises(ValueError, match="tensor_shape"):
        Estimator(tensor_shape=(4, 2)).fit(rng.random((10, 2, 4)))
    with pytest.raises(ValueError, match="tensor_shape"):
        Estimator(tensor_shape=(0, 2)).fit(rng.random((10, 2, 4)))
    model = Estimator(rank=1).fit(rng.random((10, 2, 4)))
    with pytest.raises(ValueError, match="features"):
        model.transform(rng.random((3, 3, 3)))


@pytest.mark.parametrize("Estimator", [tnml.CP, tnml.Tucker, tnml.TensorTrain, tnml.TensorRing])
def test_invalid_rank_parameter(Estimator, rng):
    with pytest.raises(ValueError, match="rank"):
        Estimator(rank=0).fit(rng.random((10, 3, 4)))
    with pytest.raises((ValueError, TypeError), match="rank"):
        Estimator(rank="big").fit(rng.random((10, 3, 4)))


def test_tubal_svd_exact_and_missing(rng):
    from tnml.decompositions import t_product

    X = t_product(rng.standard_normal((30, 3, 5)), rng.standard_normal((3, 6, 5)))
    model = tnml.TubalSVD(rank=3).fit(X)
    assert model.reconstruction_error_ < 1e-12
    assert model.transform(X).shape == (30, 15)
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), X, atol=1e-10)
    # completion needs enough observations per slice: a bigger tensor, 30% missing
    X = t_product(rng.standard_normal((40, 3, 5)), rng.standard_normal((3, 20, 5)))
    X_missing = np.where(rng.random(X.shape) < 0.3, np.nan, X)
    completed = tnml.TensorImputer(tnml.TubalSVD(rank=3, max_iter=300, tol=1e-12)).fit_transform(
        X_missing
    )
    np.testing.assert_allclose(completed, X, atol=1e-6)


@pytest.mark.parametrize(
    "model",
    [
        tnml.CP(rank=2, random_state=0, max_iter=300, tol=1e-12),
        # 15 sweeps reach 1e-7 here (300 took 30 s)
        tnml.Tucker(rank=(2, 2), max_iter=15, tol=1e-12),
    ],
)
def test_estimators_fit_observed_entries_only(model, rng):
    X = random_cp((25, 8, 9), 2, random_state=1).to_tensor()
    X_missing = np.where(rng.random(X.shape) < 0.3, np.nan, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_missing)
    missing = np.isnan(X_missing)
    assert np.abs(model.decomposition_.to_tensor() - X)[missing].max() < 1e-3
    # a new sample with missing features is fitted on what it observed
    W = model.transform(X_missing[:3])
    np.testing.assert_allclose(model.inverse_transform(W), X[:3], atol=1e-3)
