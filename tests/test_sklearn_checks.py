"""Every estimator of tnml against scikit-learn's estimator checks, in one place.

``ESTIMATORS`` lists every estimator class with settings that keep the checks fast; a second
test runs :func:`sklearn.utils.estimator_checks.check_estimator` on each class constructed with
its defaults. Expected failures carry their reason.
"""

import warnings

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

# A whole-tensor imputer's rows are not samples: the fitted model covers exactly the fitted
# tensor's shape, so checks that transform other rows than were fitted cannot pass.
_IMPUTER = {
    "check_methods_subset_invariance": "transforms a subset of the fitted rows: the fitted "
    "model covers exactly the fitted tensor's shape",
    "check_fit_idempotent": "transforms a test split of another shape than the fitted tensor",
}


# The whole X is one tensor (no sample axis): there is no per-feature contract.
_STRUCTURE_SEARCH = {
    "check_n_features_in": "no sample axis",
    "check_n_features_in_after_fitting": "no sample axis",
}


def _expected_failed_checks(estimator):
    name = type(estimator).__name__
    if name == "StructureSearch":
        return _STRUCTURE_SEARCH
    if name == "TensorImputer":
        return _IMPUTER
    if name == "TensorCompletionRegressor":
        # The check fits 10-column "coordinates" (rounded standardised features): 200 entries
        # of an order-10 tensor, one or two per parameter of a rank-2 model. The fit predicts
        # held-out entries no better than their mean there, warns, and predicts the mean
        # (whose training score is 0; the check asks for 0.5 on the training entries).
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
