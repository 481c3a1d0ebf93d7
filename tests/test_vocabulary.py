"""One vocabulary (issue 19): every public estimator and fitting function speaks it.

The walk covers every class exported by ``tnml``, every function exported by
``tnml.decompositions`` and the regression solvers, so a new public name is checked without
touching this file. A renamed name listed in ``CHANGELOG.md`` must not come back.
"""

import inspect

import numpy as np
import pytest

import tnml
import tnml.decompositions as D
from tnml.decompositions import FitResult
from tnml.supervised import regression

# Old name -> the vocabulary's name.
OLD_PARAMETERS = {
    "ridge": "alpha",
    "shape": "tensor_shape",  # estimators only: functions take the data, not a shape
    "max_rank": "rank (max_rank only beside rank='auto')",
}
OLD_ATTRIBUTES = ("best_rse_", "train_error_", "weights_", "shape_")
# Estimators whose parameters other engineers own for now (imputer: issue 17).
PENDING = set()

ESTIMATORS = [
    obj
    for name, obj in vars(tnml).items()
    if name in tnml.__all__ and inspect.isclass(obj) and not issubclass(obj, Exception)
]
FUNCTIONS = [getattr(D, name) for name in D.__all__ if inspect.isfunction(getattr(D, name))] + [
    getattr(regression, name)
    for name in regression.__all__
    if inspect.isfunction(getattr(regression, name))
]


def _fitting_functions():
    """Functions that fit a model to data: they take ``max_iter`` or truncate by SVD."""
    one_pass = {"hosvd", "tt_svd", "tr_svd", "t_svd"}
    return [
        f
        for f in FUNCTIONS
        if "max_iter" in inspect.signature(f).parameters or f.__name__ in one_pass
    ]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda c: c.__name__)
def test_estimator_parameters_use_the_vocabulary(estimator):
    if estimator.__name__ in PENDING:
        pytest.skip("parameters renamed by their own issue")
    params = inspect.signature(estimator).parameters
    for old, new in OLD_PARAMETERS.items():
        if old == "max_rank":
            continue  # a cap of a rank the estimator chooses (rank='auto', a search)
        assert old not in params, f"{estimator.__name__}({old}=...) is now {new}"
    if "method" in params:
        assert estimator.__name__ == "StructureSearch", "the fitting algorithm is `solver`"
    if "verbose" in params:
        assert params["verbose"].default == 0
    if "init" in params and estimator.__name__ != "StructureSearch":
        assert "n_init" in params, f"{estimator.__name__} has random starts but no n_init"


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_function_parameters_use_the_vocabulary(function):
    params = inspect.signature(function).parameters
    assert "ridge" not in params, f"{function.__name__}(ridge=...) is now alpha"
    if "verbose" in params:
        default = params["verbose"].default
        assert default == 0 and not isinstance(default, bool), f"{function.__name__} verbose"
    if "init" in params and "random_state" in params and function.__name__ != "random_network":
        assert "n_init" in params, f"n_init hidden from the signature of {function.__name__}"
    if "max_rank" in params:
        assert "rank" in params and params["rank"].default == "auto", function.__name__
    if "cutoff" in params and "tol" in params:
        pytest.fail(f"{function.__name__}: tol is for convergence only, not beside cutoff")


@pytest.mark.parametrize("function", _fitting_functions(), ids=lambda f: f.__name__)
def test_fitting_functions_take_a_mask_keyword_or_observations(function):
    params = inspect.signature(function).parameters
    first = next(iter(params))
    one_pass = function.__name__ in {"hosvd", "tt_svd", "tr_svd", "t_svd"}
    if first == "observations" or function.__module__ == regression.__name__ or one_pass:
        return  # an Observations carries its mask; X, y and exact SVDs have none
    assert "mask" in params, f"{function.__name__} takes no mask"
    assert params["mask"].kind is inspect.Parameter.KEYWORD_ONLY, function.__name__


def test_every_fitting_function_returns_a_format_and_a_fit_result():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 5, 6))
    mask = rng.random(X.shape) < 0.8
    obs = D.Observations.from_dense(X, mask)
    ring = D.ring_adjacency((4, 5, 6), (2, 2, 2))
    calls = {
        "cp_als": lambda: D.cp_als(X, 2, max_iter=2),
        "cp_complete": lambda: D.cp_complete(obs, 2, max_iter=2),
        "hosvd": lambda: D.hosvd(X, 2),
        "tucker_hooi": lambda: D.tucker_hooi(X, 2, max_iter=2),
        "tucker_complete": lambda: D.tucker_complete(obs, 2, max_iter=2),
        "tt_svd": lambda: D.tt_svd(X, 2),
        "tt_als": lambda: D.tt_als(X, 2, max_iter=2),
        "tt_dmrg": lambda: D.tt_dmrg(X, 2, max_iter=2),
        "tt_complete": lambda: D.tt_complete(obs, 2, max_iter=2),
        "tr_svd": lambda: D.tr_svd(X, 2),
        "tr_als": lambda: D.tr_als(X, 2, max_iter=2, n_init=1),
        "tr_complete": lambda: D.tr_complete(obs, 2, max_iter=2),
        "t_svd": lambda: D.t_svd(X, 2),
        "tnn_complete": lambda: D.tnn_complete(X, mask=mask, max_iter=2),
        "tubal_complete": lambda: D.tubal_complete(X, mask=mask, max_iter=2),
        "smooth_tucker_complete": lambda: D.smooth_tucker_complete(X, mask=mask, max_iter=1),
        "soft_impute": lambda: D.soft_impute(X[0], mask=mask[0], alpha=0.1, max_iter=2),
        "network_als": lambda: D.network_als(X, ring, max_iter=2),
        "network_adam": lambda: D.network_adam(X, ring, max_iter=2),
        "cp_regression": lambda: regression.cp_regression(X, X[:, 0, 0], 1, max_iter=2),
        "tucker_regression": lambda: regression.tucker_regression(X, X[:, 0, 0], (1, 1)),
        "tt_regression": lambda: regression.tt_regression(X, X[:, 0, 0], 1, max_iter=2),
    }
    assert {f.__name__ for f in _fitting_functions()} <= set(calls), "a new fitting function"
    for name, call in calls.items():
        model, info = call()
        assert isinstance(model, D.FactorizedTensor), name
        assert isinstance(info, FitResult) and info.n_iter >= 1 and info.errors, name


def test_fitted_attributes_use_the_vocabulary():
    rng = np.random.default_rng(0)
    coords = np.stack(np.unravel_index(rng.permutation(60)[:40], (3, 4, 5)), axis=1)
    reg = tnml.TensorCompletionRegressor(rank=1, max_iter=2).fit(coords, rng.random(40))
    X = rng.standard_normal((20, 3, 4))
    fitted = [
        reg,
        tnml.CPRegressor(rank=1, max_iter=2).fit(X, X[:, 0, 0]),
        tnml.StructureSearch(max_rank=2, max_evaluations=2, max_iter=2).fit(X),
    ]
    for model in fitted:
        assert hasattr(model, "reconstruction_error_") or hasattr(model, "decomposition_")
        for old in OLD_ATTRIBUTES:
            if old == "shape_" and isinstance(model, tnml.StructureSearch):
                continue  # the searched tensor's shape, not a tensor_shape of samples
            assert not hasattr(model, old), f"{type(model).__name__}.{old}"
    assert isinstance(reg.reconstruction_error_, float)
    assert isinstance(fitted[2].reconstruction_error_, float)
