"""The shared machinery of the decomposition estimators.

Axis 0 is the sample axis. ``fit(X)`` decomposes the whole tensor X of shape
``(n_samples, d_1, ..., d_k)`` (or 2-D X with ``tensor_shape=(d_1, ..., d_k)``). The factors of
the non-sample modes span a linear model of one sample: ``x ~= w @ components_`` with
``components_`` of shape ``(n_components_, d_1 * ... * d_k)``. ``transform`` returns the
least-squares coordinates ``w`` of new samples against those fixed factors and
``inverse_transform`` maps coordinates back, so the same class decomposes a single tensor and
extracts features inside a :class:`~sklearn.pipeline.Pipeline`.
"""

import math
import numbers
import warnings

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_tensor, check_value_range, missing_mask, underflow_scale
from ..backend import get_namespace, is_numpy
from ..contract import einsum
from ..decompositions import FitResult, solve_spd
from ..metrics import rse

__all__ = ["TensorDecompositionMixin"]


def _check_tensor_shape(tensor_shape):
    if tensor_shape is None:
        return None
    try:
        shape = tuple(tensor_shape)
    except TypeError:
        raise TypeError(
            f"tensor_shape must be a tuple of positive ints or None, got {tensor_shape!r}"
        ) from None
    if not shape or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in shape
    ):
        raise ValueError(
            f"tensor_shape must be a non-empty tuple of positive ints, got {tensor_shape!r}"
        )
    return tuple(int(d) for d in shape)


def _nested_ndim(X):
    try:
        return np.ndim(X)
    except ValueError:  # ragged: scikit-learn's checks explain it
        return 2


def _observed_mask(X):
    """True where X is observed (not NaN), or None when every entry is."""
    xp = get_namespace(X)
    missing = missing_mask(X)
    if not bool(xp.any(missing)):
        return None
    if bool(xp.all(missing)):
        raise ValueError("X has no observed entries (every entry is NaN)")
    return ~missing


class TensorDecompositionMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base of CP, Tucker, TensorTrain, TensorRing and TubalSVD; subclasses define three methods:

    ``_decompose(X, mask)``: fit the format to the validated tensor X (``mask`` of observed
    entries, or None when complete), return ``(format, FitResult)``.
    ``_components(decomposition)``: the ``(n_components, prod(d))`` basis of one sample.
    ``_sample_factor(decomposition)``: the fitted coordinates of the samples,
    ``(n_samples, n_components)``, with ``_sample_factor(d) @ _components(d)`` the model.
    """

    _parameter_constraints = {
        "tensor_shape": ["array-like", None],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # What :func:`tnml.load` may restore besides the parameters (nothing else is set).
    _fitted_attributes = (
        "n_features_in_",
        "feature_names_in_",
        "tensor_shape_",
        "decomposition_",
        "reconstruction_error_",
        "n_iter_",
        "components_",
        "n_components_",
        "_n_features_out",
        "_input_ndim",
        "_sklearn_output_config",
    )

    def _fitted_shapes(self):
        """Shapes the fitted arrays must have (checked by :func:`tnml.load`): the
        components are recomputed from the decomposition, not trusted."""
        shape = tuple(self.tensor_shape_)
        if self.n_features_in_ != math.prod(shape):
            raise ValueError(f"n_features_in_={self.n_features_in_} for tensor_shape_={shape}")
        n_components = int(self._components(self.decomposition_).shape[0])
        if self.n_components_ != n_components:
            raise ValueError(
                f"n_components_={self.n_components_}, the decomposition gives {n_components}"
            )
        return {
            "decomposition_": (None, *shape),
            "components_": (n_components, self.n_features_in_),
        }

    # -- input ----------------------------------------------------------------------------------
    def _validate_tensor(self, X, reset):
        """Return X as a floating tensor (n_samples, *tensor_shape) in its own namespace."""
        tensor_shape = _check_tensor_shape(self.tensor_shape)
        xp = get_namespace(X)
        if isinstance(X, (list, tuple)) and _nested_ndim(X) > 2:
            X = np.asarray(X)  # a nested list of samples that are themselves tensors
        if is_numpy(xp) and not (hasattr(X, "ndim") and getattr(X, "ndim", 2) > 2):
            # Host 2-D data (arrays, lists, DataFrames) go through scikit-learn's own checks,
            # which also record feature names.
            X = check_value_range(
                validate_data(
                    self,
                    X,
                    reset=reset,
                    dtype=[np.float64, np.float32],
                    ensure_all_finite="allow-nan",
                )
            )
        else:
            X = check_tensor(X, "X", allow_nan=True)
            flat = math.prod(X.shape[1:])
            if reset:
                self.n_features_in_ = flat
            elif flat != self.n_features_in_:
                raise ValueError(
                    f"X has {flat} features, but {type(self).__name__} is "
                    f"expecting {self.n_features_in_} features as input."
                )
        if reset:
            self._input_ndim = X.ndim
        if X.ndim == 2 and tensor_shape is not None:
            if math.prod(tensor_shape) != X.shape[1]:
                raise ValueError(
                    f"tensor_shape={tensor_shape} holds {math.prod(tensor_shape)} "
                    f"entries but X has {X.shape[1]} features per sample"
                )
            X = get_namespace(X).reshape(X, (X.shape[0],) + tensor_shape)
        elif X.ndim > 2 and tensor_shape is not None and tuple(X.shape[1:]) != tensor_shape:
            raise ValueError(
                f"tensor_shape={tensor_shape} does not match X's sample shape {tuple(X.shape[1:])}"
            )
        if not reset and tuple(X.shape[1:]) != self.tensor_shape_:
            raise ValueError(
                f"X's samples have shape {tuple(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on {self.tensor_shape_}"
            )
        return X

    # -- fit / transform ------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Decompose X (samples on axis 0).

        Parameters
        ----------
        X : array of shape (n_samples, d_1, ..., d_k), or (n_samples, n_features)
            NumPy or CuPy; 2-D X is reshaped with ``tensor_shape`` when given. NaN marks a
            missing entry: the model is fitted to the observed entries only. Tiny values
            (below about 1e-77 in float64) are fitted scaled by a power of two, which is
            exact; all-zero data gives the zero model with ``reconstruction_error_ == 0``.
        y : ignored

        Returns
        -------
        self
        """
        X = self._validate_tensor(X, reset=True)
        self.tensor_shape_ = tuple(X.shape[1:])
        mask = _observed_mask(X)
        xp = get_namespace(X)
        if not bool(xp.any(X != 0) if mask is None else xp.any(xp.where(mask, X, 0) != 0)):
            # All-zero data: whatever the format, its exact model is zero (RSE 0, not 0/0).
            decomposition, _ = self._decompose(X, mask)
            decomposition = decomposition.scaled(0.0)
            info = FitResult(1, [0.0], True)
        else:
            # Tiny data is fitted scaled by a power of two (exact), the model scaled back.
            scale = underflow_scale(X)
            decomposition, info = self._decompose(X * scale if scale != 1 else X, mask)
            if scale != 1:
                decomposition = decomposition.scaled(1 / scale)
        if info is not None and not info.converged:
            warnings.warn(
                f"{type(self).__name__} did not converge in {info.n_iter} iterations "
                f"(relative error {info.error:.3g}); raise max_iter or tol",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.decomposition_ = decomposition
        self.reconstruction_error_ = (
            float(info.error)
            if info is not None
            else rse(X, get_namespace(X).reshape(decomposition.to_tensor(), X.shape))
        )
        # A one-pass method (TT-SVD, a complete t-SVD) makes one pass: scikit-learn's contract
        # for estimators with max_iter is n_iter_ >= 1.
        self.n_iter_ = 1 if info is None else info.n_iter
        self.components_ = self._components(decomposition)
        self.n_components_ = int(self.components_.shape[0])
        self._n_features_out = self.n_components_
        return self

    def fit_transform(self, X, y=None):
        """Decompose X and return the fitted coordinates of its samples.

        The coordinates are the sample factor of the fitted decomposition (the model is
        ``fit_transform(X) @ components_``); nothing is solved again. At convergence they
        agree with ``transform(X)``, the least-squares coordinates against the fitted factors.

        Parameters
        ----------
        X : array of shape (n_samples, d_1, ..., d_k), or (n_samples, n_features)
        y : ignored

        Returns
        -------
        W : array of shape ``(n_samples, n_components_)``, in X's namespace
        """
        return self.fit(X, y)._sample_factor(self.decomposition_)

    def transform(self, X):
        """Least-squares coordinates of samples against the fitted non-sample factors.

        Parameters
        ----------
        X : array of shape (n_samples, d_1, ..., d_k) or (n_samples, n_features)

        Returns
        -------
        W : array of shape ``(n_samples, n_components_)``, in X's namespace. Samples with NaN
            entries are fitted on their observed entries only.
        """
        check_is_fitted(self)
        X = self._validate_tensor(X, reset=False)
        xp = get_namespace(X)
        flat = xp.reshape(X, (X.shape[0], -1))
        components = self.components_
        mask = _observed_mask(flat)
        if mask is None:
            return solve_spd(components @ components.T, flat @ components.T)
        # Missing features: each sample solves its own least squares over what it observed.
        empty = int(xp.sum(~xp.any(mask, axis=1)))
        if empty:
            warnings.warn(
                f"{empty} sample(s) of X have no observed entries (all NaN); their "
                f"coordinates are set to 0",
                UserWarning,
                stacklevel=2,
            )
        observed = xp.asarray(mask, dtype=flat.dtype)
        grams = einsum("pf,nf,qf->npq", components, observed, components)
        rhs = xp.where(mask, flat, 0) @ components.T
        ridge = 1e-12 * xp.eye(components.shape[0], dtype=flat.dtype)
        return xp.linalg.solve(grams + ridge, rhs[:, :, None])[:, :, 0]

    def inverse_transform(self, X):
        """Samples rebuilt from coordinates: ``X @ components_``, reshaped like the fit input.

        Parameters
        ----------
        X : array of shape ``(n_samples, n_components_)``

        Returns
        -------
        X_original : array of shape (n_samples, d_1, ..., d_k), or 2-D if fitted on 2-D X
        """
        check_is_fitted(self)
        W = check_tensor(X, "X")
        if W.ndim != 2 or W.shape[1] != self.n_components_:
            raise ValueError(
                f"X must have shape (n_samples, {self.n_components_}), got {tuple(W.shape)}"
            )
        flat = W @ self.components_
        if self._input_ndim == 2:
            return flat
        return get_namespace(flat).reshape(flat, (W.shape[0],) + self.tensor_shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = True
        tags.input_tags.three_d_array = True
        return tags
