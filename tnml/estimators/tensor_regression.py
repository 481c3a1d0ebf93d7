"""Low-rank tensor regression estimators: ``y = <W, X_n> + b`` with W in CP, Tucker or TT format.

The estimators validate input and call the alternating ridge solvers of
:mod:`tnml.supervised.regression`; the fitted weight tensor is a tnml format (``decomposition_``).
"""

import numbers
import warnings

from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_y, check_consistent_length, check_is_fitted

from .._validation import check_rank_sequence
from ..backend import get_namespace, is_numpy, to_device
from ..supervised.regression import cp_regression, tt_regression, tucker_regression
from ._base import TensorDecompositionMixin

__all__ = ["CPRegressor", "TuckerRegressor", "TTRegressor"]


class _TensorRegressor(RegressorMixin, BaseEstimator):
    """Shared input handling; subclasses set ``_solve(X, y)`` returning the solver's output."""

    def _fitted_shapes(self):
        """Shapes the fitted arrays must have (checked by :func:`tnml.load`)."""
        shape = tuple(self.tensor_shape_)
        n_features = 1
        for size in shape:
            n_features *= size
        if self.n_features_in_ != n_features:
            raise ValueError(f"n_features_in_={self.n_features_in_} for tensor_shape_={shape}")
        return {"decomposition_": shape, "_coef": (n_features,)}

    # What :func:`tnml.load` may restore besides the parameters (nothing else is set).
    _fitted_attributes = (
        "n_features_in_",
        "feature_names_in_",
        "tensor_shape_",
        "decomposition_",
        "intercept_",
        "loss_curve_",
        "n_iter_",
        "_coef",
        "_input_ndim",
    )

    _parameter_constraints = {
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "tensor_shape": ["array-like", None],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        rank=3,
        *,
        tensor_shape=None,
        alpha=1.0,
        fit_intercept=True,
        max_iter=100,
        tol=1e-4,
        verbose=0,
    ):
        self.rank = rank
        self.tensor_shape = tensor_shape
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose

    def _validate(self, X, y=None, reset=True):
        """X as (n_samples, *tensor_shape) in its namespace (and y as a vector there)."""
        # The decomposition estimators' input handling (2-D + tensor_shape or k-D, feature
        # names, n_features_in_), without their tolerance of NaN.
        X = TensorDecompositionMixin._validate_tensor(self, X, reset)
        xp = get_namespace(X)
        if bool(xp.any(xp.isnan(X))):
            raise ValueError(
                f"Input X contains NaN; {type(self).__name__} does not accept missing values"
            )
        if y is None:
            return X, None
        if is_numpy(get_namespace(y)):
            y = _check_y(y, y_numeric=True)
            check_consistent_length(X, y)
            y = to_device(y, xp)
        elif y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples or a "
                f"y that is not a vector: X has {X.shape[0]} samples, y has shape "
                f"{tuple(y.shape)}"
            )
        return X, xp.asarray(xp.reshape(y, (-1,)), dtype=X.dtype)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the low-rank weight tensor by alternating ridge least squares.

        Parameters
        ----------
        X : array of shape (n_samples, d_1, ..., d_k), or (n_samples, n_features) with
            ``tensor_shape``
        y : array of shape (n_samples,)

        Returns
        -------
        self
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        X, y = self._validate(X, y, reset=True)
        self.tensor_shape_ = tuple(X.shape[1:])
        weights, info = self._solve(X, y)
        self.decomposition_, self.intercept_ = weights, float(info.intercept)
        # The solvers' relative training errors, back to mean squared errors.
        xp = get_namespace(X)
        yc = y - xp.mean(y) if self.fit_intercept else y
        scale = float(yc @ yc) / y.shape[0] or 1.0
        losses = [error**2 * scale for error in info.errors]
        self.loss_curve_ = losses
        self.n_iter_ = info.n_iter
        if self.verbose:
            for sweep, loss in enumerate(losses, start=1):
                print(f"{type(self).__name__} sweep {sweep}: training MSE {loss:.6g}")
        if not info.converged and self.max_iter > 1:
            warnings.warn(
                f"{type(self).__name__} did not converge in {self.max_iter} sweeps; "
                f"raise max_iter or tol",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._coef = get_namespace(X).reshape(weights.to_tensor(), (-1,))
        return self

    def _solve_params(self):
        return {
            "alpha": self.alpha,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "fit_intercept": self.fit_intercept,
        }

    def predict(self, X):
        """``<decomposition_, X_n> + intercept_`` for every sample.

        Parameters
        ----------
        X : array of shape (n_samples, d_1, ..., d_k) or (n_samples, n_features)

        Returns
        -------
        y : array of shape (n_samples,), in X's namespace
        """
        check_is_fitted(self)
        X, _ = self._validate(X, reset=False)
        xp = get_namespace(X)
        return xp.reshape(X, (X.shape[0], -1)) @ self._coef + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    @property
    def coef_(self):
        """The dense weight tensor, shape ``tensor_shape_``."""
        check_is_fitted(self)
        return self.decomposition_.to_tensor()


_DOC = """{summary}

    Parameters
    ----------
    rank : {rank_doc}
    tensor_shape : tuple of int, optional
        Shape of one sample when X is given flat (n_samples, n_features).
    alpha : float, default=1.0
        Ridge penalty of every block update, absolute (added to the diagonal of its normal
        equations as is, as in :class:`sklearn.linear_model.Ridge`).
    fit_intercept : bool, default=True
    max_iter : int, default=100
        ALS sweeps.
    tol : float, default=1e-4
        Stop when a sweep changes the training mean squared error by less than ``tol`` times
        the variance of y.
    verbose : int, default=0
        Print the training mean squared error of every sweep after the fit.

    Attributes
    ----------
    decomposition_ : {format_name}
        The fitted weight tensor W.
    coef_ : array of shape ``tensor_shape_`` (dense W)
    intercept_ : float
    n_iter_ : int
    loss_curve_ : list of float
        Training mean squared error after every sweep.
    tensor_shape_ : tuple of int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from tnml import {name}
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((400, 8, 8))
    >>> W = np.outer(rng.standard_normal(8), rng.standard_normal(8))
    >>> y = np.einsum("nij,ij->n", X, W) + 1.0
    >>> {name}(rank={example_rank}, alpha=1e-6).fit(X, y).score(X, y) > 0.999
    True
    """


class CPRegressor(_TensorRegressor):
    __doc__ = _DOC.format(
        summary="Regression with a CP-structured weight tensor (Zhou, Li & Zhu, 2013).",
        rank_doc="int, default=3\n        CP rank of W.",
        format_name="CPTensor",
        name="CPRegressor",
        example_rank=1,
    )

    def _solve(self, X, y):
        if not isinstance(self.rank, numbers.Integral):
            raise TypeError(f"rank must be an int for CPRegressor, got {self.rank!r}")
        return cp_regression(X, y, int(self.rank), **self._solve_params())


class TuckerRegressor(_TensorRegressor):
    __doc__ = _DOC.format(
        summary="Regression with a Tucker-structured weight tensor (orthonormal factors, the "
        "ridge penalty on the core is the penalty on ||W||).",
        rank_doc="int or sequence of int, default=3\n        Multilinear rank of W (an int "
        "applies to every mode; capped at the mode sizes).",
        format_name="TuckerTensor",
        name="TuckerRegressor",
        example_rank=1,
    )

    def _solve(self, X, y):
        rank = check_rank_sequence(self.rank, X.ndim - 1)
        return tucker_regression(X, y, rank, **self._solve_params())


class TTRegressor(_TensorRegressor):
    __doc__ = _DOC.format(
        summary="Regression with a tensor-train-structured weight tensor (ALS with a moving "
        "orthogonality centre).",
        rank_doc="int or sequence of int, default=3\n        Inner bond dimensions of W (an "
        "int for every bond, or ``k - 1`` ints; capped where the shape allows less).",
        format_name="TTTensor",
        name="TTRegressor",
        example_rank=1,
    )

    def _solve(self, X, y):
        k = X.ndim - 1
        rank = check_rank_sequence(self.rank, max(k - 1, 1)) if k > 1 else (1,)
        return tt_regression(X, y, list(rank)[: max(k - 1, 0)], **self._solve_params())
