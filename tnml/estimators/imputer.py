"""Whole-tensor imputation with any decomposition estimator."""

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from .._validation import check_tensor
from ..backend import get_namespace
from .cp import CP

__all__ = ["TensorImputer"]


class TensorImputer(TransformerMixin, BaseEstimator):
    """Complete a tensor's missing entries with a low-rank model, like sklearn's imputers.

    The whole tensor is one data set (there is no sample axis here): ``fit`` learns ``model``
    on the observed entries and ``transform`` returns the tensor with its missing entries
    replaced by the model's values and its observed entries returned exactly as given.

    Parameters
    ----------
    model : estimator, default=None
        Any tnml decomposition estimator (CP, Tucker, TensorTrain, TensorRing, TubalSVD, ...);
        it is cloned. None means ``CP(rank=8)``.
    missing_values : float, default=np.nan
        The value that marks a missing entry.
    tensorize : bool, default=False
        Reshape an image-like tensor (H, W[, C]) into a high-order tensor of small modes that
        pairs row and column scales ("ket augmentation", Bengua et al. 2017) before fitting,
        so that TT/TR models exploit multiscale structure; the result is reshaped back.

    Attributes
    ----------
    model_ : estimator
        The fitted clone of ``model`` (on the tensorized tensor when ``tensorize``).
    shape_ : tuple of int
        Shape of the fitted tensor.
    n_missing_ : int
        Number of missing entries seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> import tnml
    >>> from tnml.decompositions import random_cp
    >>> X = random_cp((20, 21, 22), 2, random_state=0).to_tensor()
    >>> X_missing = X.copy()
    >>> X_missing[np.random.default_rng(0).random(X.shape) < 0.5] = np.nan
    >>> X_full = tnml.TensorImputer(tnml.CP(rank=2, random_state=0)).fit_transform(X_missing)
    >>> bool(np.abs(X_full - X).max() < 1e-4)
    True
    """

    _parameter_constraints = {
        "model": [HasMethods(["fit"]), None],
        "missing_values": [numbers.Real],
        "tensorize": ["boolean"],
    }

    def __init__(self, model=None, *, missing_values=np.nan, tensorize=False):
        self.model = model
        self.missing_values = missing_values
        self.tensorize = tensorize

    def _missing(self, X):
        xp = get_namespace(X)
        if isinstance(self.missing_values, float) and math.isnan(self.missing_values):
            return xp.isnan(X)
        return X == self.missing_values

    def _check(self, X):
        X = check_tensor(X, "X", allow_nan=True)
        missing = self._missing(X)
        n_missing = int(get_namespace(X).sum(missing))
        if n_missing == X.size:
            raise ValueError("X has no observed entries; nothing to fit")
        return X, missing, n_missing

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the model to the observed entries of X.

        Parameters
        ----------
        X : array of shape (I_1, ..., I_N), N >= 2
            Missing entries hold ``missing_values``.
        y : ignored

        Returns
        -------
        self
        """
        X, missing, n_missing = self._check(X)
        if n_missing == 0:
            raise ValueError("X has no missing entries; there is nothing to impute")
        xp = get_namespace(X)
        self.shape_ = tuple(X.shape)
        self.n_missing_ = n_missing
        model = CP(rank=8) if self.model is None else self.model
        self.model_ = clone(model).fit(self._forward(xp.where(missing, xp.nan, X)))
        return self

    def transform(self, X):
        """X with its missing entries filled in by the fitted model.

        Parameters
        ----------
        X : array of the fitted shape

        Returns
        -------
        X_completed : array, in X's namespace; observed entries are X's own values.
        """
        check_is_fitted(self)
        X, missing, _ = self._check(X)
        if tuple(X.shape) != self.shape_:
            raise ValueError(f"X has shape {tuple(X.shape)}, but TensorImputer was fitted on "
                             f"{self.shape_}")
        return get_namespace(X).where(missing, self.reconstruction(), X)

    def reconstruction(self):
        """The model's values for every entry (observed ones included), in the fitted shape."""
        check_is_fitted(self)
        return self._inverse(self.model_.decomposition_.to_tensor())

    def _forward(self, X):
        if not self.tensorize:
            return X
        from ..tensorize import ket_augment

        return ket_augment(X)

    def _inverse(self, tensor):
        if not self.tensorize:
            return tensor
        from ..tensorize import ket_restore

        return ket_restore(tensor, self.shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
