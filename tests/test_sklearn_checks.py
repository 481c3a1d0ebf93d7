"""Every estimator of tnml against scikit-learn's estimator checks, in one place.

``ESTIMATORS`` lists every estimator class with settings that keep the checks fast; a second
test runs :func:`sklearn.utils.estimator_checks.check_estimator` on each class constructed with
its defaults. Expected failures carry their reason.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

import tnml

ESTIMATORS = [
    tnml.CP(),
    tnml.Tucker(),
    tnml.TensorTrain(),
    tnml.TensorRing(),
    tnml.TubalSVD(),
    tnml.TensorImputer(random_state=0, max_iter=10),
    tnml.TensorCompletionRegressor(rank=2, max_iter=20),
    tnml.TensorCompletionRegressor("tucker", rank=2, max_iter=10),
    tnml.MPSClassifier(bond_dim=6),
    tnml.MPSRegressor(bond_dim=6),
    tnml.MPSClassifier(bond_dim=6, solver="adam"),
    tnml.MPSRegressor(bond_dim=6, solver="adam"),
    tnml.CPRegressor(),
    tnml.TuckerRegressor(),
    tnml.TTRegressor(),
    tnml.StructureSearch(max_rank=2, max_evaluations=4, max_iter=10, random_state=0),
]

# Every estimator class of the package must be listed above.
CLASSES = sorted({type(e).__name__ for e in ESTIMATORS})

# The whole X is one tensor (no sample axis): there is no per-feature contract.
_STRUCTURE_SEARCH = {
    "check_n_features_in": "no sample axis",
    "check_n_features_in_after_fitting": "no sample axis",
}


def _expected_failed_checks(estimator):
    name = type(estimator).__name__
    if name == "StructureSearch":
        return _STRUCTURE_SEARCH
    if name == "TensorCompletionRegressor":
        # The check fits 10-column "coordinates" (rounded standardised features): 200 entries
        # of an order-10 tensor, one or two per parameter of a rank-2 model. The fit predicts
        # held-out entries no better than their mean there, warns, and predicts the mean
        # (whose training score is 0; the check asks for 0.5 on the training entries).
        # Measured on its 20 held-out entries: the strong ridges shrink the model to zero
        # (held-out error 1.0, the mean's 1.007), and a weak one (0.16, started afresh) that
        # fits the training entries (training score 0.78) has held-out error 1.5: no choice
        # made on held-out entries passes a training-score check on this data.
        return {
            "check_regressors_train": "too few observations per parameter: the fit falls "
            "back to the mean, as it should"
        }
    return {}


def test_every_estimator_is_checked():
    exported = sorted(
        name
        for name in tnml.__all__
        if isinstance(getattr(tnml, name), type) and issubclass(getattr(tnml, name), BaseEstimator)
    )
    assert CLASSES == exported


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # Few iterations on the checks' tiny data: non-convergence is expected there.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("name", CLASSES)
def test_check_estimator_on_defaults(name):
    estimator = getattr(tnml, name)()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        results = check_estimator(
            estimator, on_fail=None, expected_failed_checks=_expected_failed_checks(estimator)
        )
    failed = {
        r["check_name"]: repr(r["exception"])[:300] for r in results if r["status"] == "failed"
    }
    assert not failed, failed


# -- issue 17: every exported estimator saves and loads ------------------------------------------
def _tensor(shape, seed=0):
    return np.random.default_rng(seed).random(shape)


def _with_nan(X, ratio=0.3, seed=0):
    return np.where(np.random.default_rng(seed).random(X.shape) < ratio, np.nan, X)


def _supervised(n=40, seed=0):
    X = _tensor((n, 4, 4), seed)
    return X, X.reshape(n, -1) @ np.linspace(-1, 1, 16)


def _coordinates():
    rng = np.random.default_rng(0)
    coords = np.stack([rng.integers(0, d, 300) for d in (6, 7, 8)], axis=1)
    return coords, _tensor((6, 7, 8))[tuple(coords.T)]


# For each exported estimator: (instances, fit arguments, what must come back identically).
_ROUND_TRIPS = {
    "CP": ([tnml.CP(rank=2, random_state=0)], lambda: (_tensor((20, 4, 5)),), "transform"),
    "Tucker": ([tnml.Tucker(rank=2)], lambda: (_tensor((20, 4, 5)),), "transform"),
    "TensorTrain": ([tnml.TensorTrain(rank=2)], lambda: (_tensor((20, 4, 5)),), "transform"),
    "TensorRing": (
        [tnml.TensorRing(rank=2, random_state=0)],
        lambda: (_tensor((20, 4, 5)),),
        "transform",
    ),
    "TubalSVD": ([tnml.TubalSVD(rank=2)], lambda: (_tensor((20, 4, 5)),), "transform"),
    "TensorImputer": (
        [
            tnml.TensorImputer("cp", rank=2, random_state=0),
            tnml.TensorImputer(tnml.Tucker(rank=2), random_state=0),
            tnml.TensorImputer(
                tnml.StructureSearch(max_rank=2, max_evaluations=3, max_iter=10, random_state=0)
            ),
        ],
        lambda: (_with_nan(_tensor((8, 5, 6))),),
        "transform",
    ),
    "TensorCompletionRegressor": (
        [tnml.TensorCompletionRegressor(rank=2, max_iter=20, random_state=0)],
        _coordinates,
        "predict",
    ),
    "StructureSearch": (
        [tnml.StructureSearch(max_rank=2, max_evaluations=3, max_iter=10, random_state=0)],
        lambda: (_tensor((4, 5, 6)),),
        "reconstruction",
    ),
    "MPSClassifier": (
        [tnml.MPSClassifier(bond_dim=4, max_iter=1, random_state=0)],
        lambda: (_tensor((30, 6)), np.arange(30) % 3),
        "predict_proba",
    ),
    "MPSRegressor": (
        [tnml.MPSRegressor(bond_dim=4, max_iter=1, random_state=0)],
        lambda: (_tensor((30, 6)), _tensor((30,), 1)),
        "predict",
    ),
    "CPRegressor": ([tnml.CPRegressor(rank=2)], _supervised, "predict"),
    "TuckerRegressor": ([tnml.TuckerRegressor(rank=2)], _supervised, "predict"),
    "TTRegressor": ([tnml.TTRegressor(rank=2)], _supervised, "predict"),
}


def test_every_exported_estimator_has_a_save_load_round_trip():
    assert sorted(_ROUND_TRIPS) == CLASSES


@pytest.mark.parametrize("name", sorted(_ROUND_TRIPS))
def test_fitted_estimator_saves_and_loads(name, tmp_path):
    instances, data, method = _ROUND_TRIPS[name]
    for i, estimator in enumerate(instances):
        args = data()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            fitted = estimator.fit(*args)
        path = tmp_path / f"{name}{i}.npz"
        tnml.save(fitted, path)
        loaded = tnml.load(path)
        assert type(loaded) is type(fitted)
        assert loaded.get_params(deep=False).keys() == fitted.get_params(deep=False).keys()
        inputs = () if method == "reconstruction" else args[:1]
        expected = getattr(fitted, method)(*inputs)
        np.testing.assert_array_equal(getattr(loaded, method)(*inputs), expected)
