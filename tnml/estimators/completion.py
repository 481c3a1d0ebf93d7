"""Tensor completion as supervised learning on coordinates.

``X`` holds integer coordinates of observed entries and ``y`` their values; the regressor fits a
low-rank format to them by masked ALS (:func:`~tnml.decompositions.cp_complete` and siblings)
and predicts the format's entries at new coordinates. The dense tensor is never built: memory
is ``O(n_obs * R + n_params)``, so a 1000 x 1000 x 1000 tensor with 10^6 observed entries
fits in a few hundred megabytes.
"""

import math
import numbers
import warnings
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._config import check_memory
from ..decompositions import Observations, grow_rank, split_observations
from .families import FAMILIES, family_ranks

__all__ = ["TensorCompletionRegressor"]

# The families that complete from coordinates alone (the dense-only ones need the tensor).
_MODELS = tuple(name for name, family in FAMILIES.items() if family.complete is not None)
# Sweeps per rank tried by rank='auto' on its training part.
_SEARCH_SWEEPS = 30


def _check_coordinates(X, name="X"):
    """Integer coordinates: integer dtype, or floats holding whole numbers (as pandas and
    scikit-learn's own checks often produce); anything else is a ValueError."""
    if X.dtype.kind == "f":
        if not np.all(np.isfinite(X)) or np.any(X != np.round(X)):
            raise ValueError(
                f"{name} must hold integer coordinates; got non-integral values "
                f"such as {X[np.nonzero(X != np.round(X))][:3].tolist()}"
            )
        X = X.astype(np.int64)
    elif X.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer coordinates, got dtype {X.dtype}")
    if X.size and X.min() < 0:
        raise ValueError(
            f"Negative values in data passed to {name}: coordinates index the "
            f"tensor from 0, got {int(X.min())}"
        )
    return X.astype(np.int64, copy=False)


def _check_inside(X, shape, name="X"):
    too_large = X >= np.asarray(shape)
    if np.any(too_large):
        axis = int(np.nonzero(too_large.any(axis=0))[0][0])
        raise ValueError(
            f"{name} has coordinates outside tensor_shape={tuple(shape)}: axis {axis} "
            f"reaches {int(X[:, axis].max())}, allowed at most {shape[axis] - 1}"
        )


def _n_params(model, shape, rank):
    """Numbers a format of ``shape`` and ``rank`` holds (an upper bound for TT and TR, whose
    bond ranks may be clipped below ``rank``)."""
    if model == "cp":
        return rank * (sum(shape) + 1)
    if model == "tucker":
        return sum(d * r for d, r in zip(shape, rank)) + math.prod(rank)
    bonds = [rank] * (len(shape) + 1)
    if model == "tt":
        bonds[0] = bonds[-1] = 1
    return sum(bonds[k] * d * bonds[k + 1] for k, d in enumerate(shape))


class TensorCompletionRegressor(RegressorMixin, BaseEstimator):
    """Low-rank tensor completion with the scikit-learn regressor API.

    Parameters
    ----------
    model : {'cp', 'tucker', 'tt', 'tr'}, default='cp'
        The tensor format fitted to the observed entries.
    rank : int or 'auto', default=8
        The format's rank (every mode's for Tucker, clipped to the mode sizes). 'auto' grows it
        from 1 to ``max_rank`` with warm starts and keeps the rank with the lowest error on
        10% held-out observations (:func:`~tnml.decompositions.grow_rank`).
    tensor_shape : tuple of int, optional
        Shape of the tensor; None infers it as the largest coordinate plus one per axis.
    max_rank : int, default=16
        Largest rank tried by ``rank='auto'``.
    alpha : float, default=1e-8
        Ridge penalty of the row-wise normal equations, absolute (added to their diagonal as
        is; the observed values' scale sets what is small).
    max_iter : int, default=100
        Maximum number of ALS sweeps.
    n_init : int, default=1
        Number of starts of a fit: the model's own start (for CP the spectral start built
        from the observations, which finds the true factors on its own in the common case),
        then random ones. With ``n_init > 1`` the starts are compared on 10% held-out
        observations and the best is refitted on all of them. Warm starts of the rank search
        are not restarted.
    tol : float, default=1e-6
        Stop when the relative training error changes by less than ``tol``.
    random_state : None, int or RandomState
        Seed of the initialisation (and of the held-out split of ``rank='auto'``).
    verbose : int, default=0

    Attributes
    ----------
    decomposition_ : FactorizedTensor
        The fitted format.
    tensor_shape_ : tuple of int
    rank_ : int
        The rank used (the selected one for ``rank='auto'``).
    rank_history_ : list of (rank, train_error, validation_error)
        Only with ``rank='auto'``.
    n_iter_ : int
    reconstruction_error_ : float
        Relative error on the training entries, ``||y_hat - y|| / ||y||``.
    n_features_in_ : int
        The tensor's order (columns of X).

    Notes
    -----
    Coordinates may be given as integers or as floats holding whole numbers; any other value,
    a negative coordinate, a coordinate outside ``tensor_shape`` (or, at predict time, outside
    ``tensor_shape_``), NaN or infinity in y and X and y of different lengths raise ``ValueError``.
    The estimator declares ``positive_only`` and ``categorical`` input tags, under which
    scikit-learn's common checks send non-negative integer data.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_cp
    >>> from tnml.estimators.completion import TensorCompletionRegressor
    >>> truth = random_cp((20, 20, 20), 2, random_state=0)
    >>> coords = np.random.default_rng(0).integers(0, 20, size=(3000, 3))
    >>> reg = TensorCompletionRegressor(rank=2, tol=1e-10, max_iter=300, random_state=0)
    >>> reg = reg.fit(coords, truth.entries(coords))
    >>> test = np.random.default_rng(1).integers(0, 20, size=(5, 3))
    >>> bool(np.allclose(reg.predict(test), truth.entries(test), atol=1e-5))
    True
    """

    _parameter_constraints = {
        "model": [StrOptions(set(_MODELS))],
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "tensor_shape": ["array-like", None],
        "max_rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
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
        "rank_",
        "rank_history_",
        "n_iter_",
        "reconstruction_error_",
    )

    def __init__(
        self,
        model="cp",
        rank=8,
        *,
        tensor_shape=None,
        max_rank=16,
        alpha=1e-8,
        max_iter=100,
        n_init=1,
        tol=1e-6,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.rank = rank
        self.tensor_shape = tensor_shape
        self.max_rank = max_rank
        self.alpha = alpha
        self.max_iter = max_iter
        self.n_init = n_init
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the format to the entries ``y`` observed at coordinates ``X``.

        Parameters
        ----------
        X : array-like of shape (n_obs, ndim)
            Integer coordinates.
        y : array-like of shape (n_obs,)
            Observed values.

        Returns
        -------
        self
        """
        # validate_data checks lengths, 2-D X and finite X and y with scikit-learn's messages;
        # "numeric" keeps integer coordinates integer and turns object arrays into floats.
        X, y = validate_data(self, X, y, dtype="numeric", y_numeric=True)
        X = _check_coordinates(X)
        self.tensor_shape_ = self._resolve_shape(X)
        family = FAMILIES[self.model]
        shape = self.tensor_shape_
        largest = family.rank(self.max_rank if self.rank == "auto" else int(self.rank), shape)
        # The start factors are drawn before the first sweep: refuse them before they exist
        # (a huge ``tensor_shape`` would otherwise allocate, or be killed, before any check).
        check_memory(
            _n_params(self.model, shape, largest) * np.dtype(np.float64).itemsize,
            f"TensorCompletionRegressor start factors (model={self.model!r}, tensor_shape={shape})",
        )
        y = np.asarray(y, dtype=np.float64)
        observations = Observations(X, y, self.tensor_shape_)
        fits = []  # every (format, FitResult), so that n_iter_ is the final fit's

        def fit(obs, rank, init):
            # Ranks tried on the training part only need fair held-out scores (an over-rank
            # fit of noisy data creeps for 100 sweeps); the final fit gets the full budget.
            sweeps = self.max_iter if obs is observations else min(self.max_iter, _SEARCH_SWEEPS)
            fits.append(self._fit_rank(family.complete, obs, rank, init, sweeps))
            return fits[-1]

        if self.rank == "auto":
            ranks = family_ranks(family, range(1, self.max_rank + 1), self.tensor_shape_)
            # CP's own (spectral) start at each rank beats a warm start padded from the last
            # one: growing CP from rank 1 on sparse data stalls in swamps.
            pad = (
                None if self.model == "cp" else partial(family.pad, random_state=self.random_state)
            )
            self.decomposition_, rank, self.rank_history_ = grow_rank(
                fit, pad, observations, ranks, random_state=self.random_state
            )
            self.rank_ = rank if isinstance(rank, int) else max(rank)
            info = fits[-1][1]
        else:
            self.rank_ = int(self.rank)
            self.decomposition_, info = fit(
                observations, family.rank(self.rank_, self.tensor_shape_), None
            )
            if not info.converged:
                warnings.warn(
                    f"TensorCompletionRegressor did not converge in {info.n_iter} "
                    f"sweeps (relative training error {info.error:.3g}); raise "
                    f"max_iter or tol",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        self.n_iter_ = info.n_iter
        self.reconstruction_error_ = float(
            np.sqrt(np.mean((self.decomposition_.entries(X) - y) ** 2))
            / (np.sqrt(np.mean(y**2)) or 1.0)
        )
        return self

    def _fit_rank(self, complete, observations, rank, init, max_iter):
        # init None: the algorithm's own default start (CP's spectral start, random for the
        # others); a warm start from the rank search otherwise, which extra starts would waste.
        kwargs = {} if init is None else {"init": init}
        n_init = self.n_init if init is None else 1
        common = dict(
            max_iter=max_iter,
            tol=self.tol,
            random_state=self.random_state,
            alpha=self.alpha,
            verbose=self.verbose,
        )
        if n_init == 1:
            return complete(observations, rank, **common, **kwargs)
        # Several starts are compared on 10% held-out entries; the winner is refitted on all.
        train, held_out = split_observations(observations, 0.1, self.random_state)
        best, _ = complete(train, rank, **common, validation=held_out, n_init=n_init, **kwargs)
        return complete(observations, rank, **{**common, "init": best})

    def _resolve_shape(self, X):
        inferred = tuple(int(d) for d in X.max(axis=0) + 1)
        if self.tensor_shape is None:
            return inferred
        shape = tuple(self.tensor_shape)
        if len(shape) != X.shape[1] or any(
            isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in shape
        ):
            raise ValueError(
                f"tensor_shape must hold {X.shape[1]} positive ints (one per column of "
                f"X), got {self.tensor_shape!r}"
            )
        _check_inside(X, shape)
        return tuple(int(d) for d in shape)

    def predict(self, X):
        """The fitted format's entries at coordinates ``X``.

        Parameters
        ----------
        X : array-like of shape (n, ndim)
            Integer coordinates inside ``tensor_shape_``.

        Returns
        -------
        y : ndarray of shape (n,)
        """
        check_is_fitted(self)
        X = _check_coordinates(validate_data(self, X, reset=False, dtype="numeric"))
        _check_inside(X, self.tensor_shape_)
        return self.decomposition_.entries(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Coordinates are non-negative integer categories: these tags make scikit-learn's
        # common checks send rounded non-negative data instead of Gaussian noise.
        tags.input_tags.positive_only = True
        tags.input_tags.categorical = True
        return tags
