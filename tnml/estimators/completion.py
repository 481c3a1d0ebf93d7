"""Tensor completion as supervised learning on coordinates.

``X`` holds integer coordinates of observed entries and ``y`` their values; the regressor fits a
low-rank format to them by masked ALS (:func:`~tnml.decompositions.cp_complete` and siblings)
and predicts the format's entries at new coordinates. The dense tensor is never built: memory
is ``O(n_obs * R + n_params)``, so a 1000 x 1000 x 1000 tensor with 10^6 observed entries
fits in a few hundred megabytes.
"""

import contextlib
import json
import math
import numbers
import os
import tempfile
import warnings
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._config import check_memory
from ..decompositions import (
    CPTensor,
    Observations,
    grow_rank,
    observed_error,
    split_observations,
)
from .families import FAMILIES, family_ranks

__all__ = ["TensorCompletionRegressor"]

# The families that complete from coordinates alone (the dense-only ones need the tensor).
_MODELS = tuple(name for name, family in FAMILIES.items() if family.complete is not None)
# The families whose fit runs on dask collections (TensorCompletionRegressor._fit_dask).
_DISTRIBUTED_MODELS = ("cp",)
_CHECKPOINT_FORMAT = "tnml-completion-checkpoint-1"
# Sweeps per rank tried by rank='auto' on its training part.
_SEARCH_SWEEPS = 30
# Below this many observations per parameter the observations may not determine the model:
# measured on 2000 x 3000 x 50 CP-rank-6 tensors with 5% noise, ALS predicts held-out entries
# at 0.05 / 0.7 / 5 times their standard deviation from 33 / 10 / 3.3 observations per
# parameter. There the fit is regularised on held-out observations and compared with the mean.
_FEW_OBS_PER_PARAM = 10
# Ridge strengths tried there, largest first, in pseudo-observations per row (relative to the
# data's scale: an entry of a row's Gram matrix gains about this many observations' worth).
_GUARD_ALPHAS = (30.0, 3.0, 0.3)
# Sweeps per ridge strength on the training part (each warm-started from the previous), and
# their convergence tolerance: they only need fair held-out scores, and a start that has not
# converged in its sweeps gets a second start (cp_complete's stall rule), doubling the cost.
_GUARD_SWEEPS = 10
_GUARD_TOL = 1e-3


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


def _is_dask(data):
    """A dask collection (checked by type, so that in-memory input never imports dask)."""
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr")


def _dask_input(X, y):
    """``(coordinates, values)`` dask arrays from dask arrays, a DataFrame and a Series."""
    if hasattr(X, "to_dask_array"):  # a dask DataFrame: one column per mode (+ values)
        if y is None:
            columns = list(X.columns)
            y, X = X[columns[-1]], X[columns[:-1]]
        X = X.to_dask_array(lengths=True)
    if y is None:
        raise ValueError("y is None: give the observed values (or a DataFrame with a value column)")
    if hasattr(y, "to_dask_array"):
        y = y.to_dask_array(lengths=True)
    if not (_is_dask(X) and _is_dask(y)):
        raise TypeError(
            f"X and y must both be dask collections or both in memory, got "
            f"{type(X).__name__} and {type(y).__name__}"
        )
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(
            f"X must be 2-D (n_obs, ndim) and y 1-D (n_obs,), got shapes {X.shape} and {y.shape}"
        )
    if X.dtype.kind not in "iuf" or y.dtype.kind not in "iuf":
        raise ValueError(
            f"X must hold integer coordinates and y numbers, got dtypes {X.dtype} and {y.dtype}"
        )
    if X.shape[0] != y.shape[0] or X.chunks[0] != y.chunks[0]:
        try:
            y = y.rechunk((X.chunks[0],))
        except ValueError:
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: "
                f"{X.shape[0]} and {y.shape[0]}"
            ) from None
    return X, y.astype(np.float64)


def _atomic_savez(path, arrays):
    """``np.savez`` to a temporary file beside ``path``, then moved onto it: a fit killed
    while writing leaves the previous checkpoint whole. (tnml.io has the same for saved
    estimators; importing it here would close a cycle, io -> estimators.)"""
    path = os.fspath(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path) or "."
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _checked_block(indices, shape):
    """One chunk of prediction coordinates, checked as :meth:`predict` checks arrays."""
    indices = _check_coordinates(np.asarray(indices))
    _check_inside(indices, shape)
    return indices


# Observations in memory (Observations) or on a cluster (DistributedObservations): the few
# operations model selection needs, for either.


def _split(observations, fraction, random_state):
    if isinstance(observations, Observations):
        return split_observations(observations, fraction, random_state)
    # A cluster's split hashes the coordinates with an int seed (drawn from a generator).
    seed = random_state if isinstance(random_state, numbers.Integral) else None
    if seed is None:
        seed = int(check_random_state(random_state).randint(2**31))
    return observations.split(fraction, int(seed))


def _score(model, observations):
    if isinstance(observations, Observations):
        return observed_error(model.entries, observations)
    return observations.relative_error(model)


def _moments(observations):
    """Mean and mean square of the observed values."""
    if isinstance(observations, Observations):
        values = observations.values
        return float(np.mean(values)), float(np.mean(values**2))
    return observations.sum / observations.n_obs, observations.squared_norm / observations.n_obs


def _relative_error(constant, observations):
    """Relative error of predicting ``constant`` everywhere, as ``observed_error`` has it."""
    if isinstance(observations, Observations):
        values = observations.values
        return float(np.linalg.norm(values - constant) / (np.linalg.norm(values) or 1.0))
    n, total, square = observations.n_obs, observations.sum, observations.squared_norm
    return math.sqrt(max(square - 2 * constant * total + n * constant**2, 0.0)) / (
        math.sqrt(square) or 1.0
    )


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
        is; the observed values' scale sets what is small). With fewer than 10 observations
        per parameter the penalty is chosen on held-out observations instead (see Notes).
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
        "checkpoint": [str, os.PathLike, None],
        "resume": ["boolean"],
    }

    def _fitted_shapes(self):
        """Shapes the fitted arrays must have (checked by :func:`tnml.load`)."""
        shape = tuple(self.tensor_shape_)
        if self.n_features_in_ != len(shape):
            raise ValueError(f"n_features_in_={self.n_features_in_} for tensor_shape_={shape}")
        return {"decomposition_": shape}

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
        checkpoint=None,
        resume=False,
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
        self.checkpoint = checkpoint
        self.resume = resume

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the format to the entries ``y`` observed at coordinates ``X``.

        Parameters
        ----------
        X : array-like of shape (n_obs, ndim), dask array or dask DataFrame
            Integer coordinates. A dask array (chunked along the observations) or a dask
            DataFrame (one column per mode) fits on the current ``distributed.Client``'s
            cluster (``model='cp'``); a DataFrame given without ``y`` holds the values in
            its last column.
        y : array-like of shape (n_obs,), dask array or dask Series
            Observed values (a dask collection when ``X`` is one).

        Returns
        -------
        self
        """
        if _is_dask(X) or _is_dask(y):
            return self._fit_dask(X, y)
        if self.checkpoint is not None:
            raise ValueError(
                "checkpoint is supported for fits on dask collections (which may run for "
                "hours); an in-memory fit restarts instead"
            )
        # validate_data checks lengths, 2-D X and finite X and y with scikit-learn's messages;
        # "numeric" keeps integer coordinates integer and turns object arrays into floats.
        X, y = validate_data(self, X, y, dtype="numeric", y_numeric=True)
        X = _check_coordinates(X)
        self.tensor_shape_ = self._resolve_shape(X)
        family = FAMILIES[self.model]
        largest = family.rank(
            self.max_rank if self.rank == "auto" else int(self.rank), self.tensor_shape_
        )
        # The start factors are drawn before the first sweep: refuse them before they exist
        # (a huge ``shape`` would otherwise allocate, or be killed, before any other check).
        check_memory(
            _n_params(self.model, self.tensor_shape_, largest) * np.dtype(np.float64).itemsize,
            f"TensorCompletionRegressor start factors (model={self.model!r}, "
            f"tensor_shape={self.tensor_shape_})",
        )
        y = np.asarray(y, dtype=np.float64)
        observations = Observations(X, y, self.tensor_shape_)
        self._fit_observations(observations, family, largest)
        self.reconstruction_error_ = float(
            np.sqrt(np.mean((self.decomposition_.entries(X) - y) ** 2))
            / (np.sqrt(np.mean(y**2)) or 1.0)
        )
        return self

    def _fit_observations(self, observations, family, largest, complete=None):
        """Set ``decomposition_``, ``rank_``, ``n_iter_`` (and ``rank_history_``);
        ``complete`` replaces the family's (for observations on a cluster)."""
        complete = family.complete if complete is None else complete
        fits = []  # every (format, FitResult), so that n_iter_ is the final fit's

        def fit(obs, rank, init, ridge=self.alpha, max_iter=None, tol=self.tol):
            # Ranks tried on the training part only need fair held-out scores (an over-rank
            # fit of noisy data creeps for 100 sweeps); the final fit gets the full budget.
            if max_iter is None:
                full = obs is observations
                max_iter = self.max_iter if full else min(self.max_iter, _SEARCH_SWEEPS)
            fits.append(self._fit_rank(complete, obs, rank, init, max_iter, ridge, tol))
            return fits[-1]

        n_params = _n_params(self.model, self.tensor_shape_, largest)
        per_param = observations.n_obs / n_params
        few = per_param < _FEW_OBS_PER_PARAM and observations.n_obs >= 20
        if few:
            warnings.warn(
                f"{observations.n_obs} observations for {n_params} parameters of a "
                f"rank-{largest if isinstance(largest, int) else max(largest)} "
                f"{self.model!r} model ({per_param:.3g} per parameter; about "
                f"{_FEW_OBS_PER_PARAM} are needed) may not determine it: the fit is "
                f"regularised on 10% held-out observations and falls back to predicting "
                f"the mean where it predicts them no better",
                UserWarning,
                stacklevel=3,
            )
        if self.rank == "auto":
            ranks = family_ranks(family, range(1, self.max_rank + 1), self.tensor_shape_)
            # CP's own (spectral) start at each rank beats a warm start padded from the last
            # one: growing CP from rank 1 on sparse data stalls in swamps.
            pad = (
                None if self.model == "cp" else partial(family.pad, random_state=self.random_state)
            )
            self.decomposition_, rank, self.rank_history_ = grow_rank(
                fit,
                pad,
                observations,
                ranks,
                random_state=self.random_state,
                split=_split,
                score=_score,
            )
            self.rank_ = rank if isinstance(rank, int) else max(rank)
            info = fits[-1][1]
            if few:
                # grow_rank held out the same entries (same seed): the mean's error there.
                train, held_out = _split(observations, 0.1, self.random_state)
                best = min(h[2] for h in self.rank_history_)
                if _relative_error(_moments(train)[0], held_out) <= best:
                    self._predict_mean(observations, sum(f[1].n_iter for f in fits))
                    return
        elif few:
            self._fit_regularised(observations, family, fit)
            return
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
                    stacklevel=3,
                )
        self.n_iter_ = info.n_iter

    def _fit_regularised(self, observations, family, fit):
        """Few observations per parameter: choose the ridge on 10% held-out observations.

        The ridge strengths of ``_GUARD_ALPHAS`` (relative to the data's scale), then the
        estimator's own ``alpha``, are fitted in turn on the training part, each warm-started
        from the last, until the held-out error rises; the constant model (the training mean)
        competes too. The winner is refitted on every observation.
        """
        rank = family.rank(int(self.rank), self.tensor_shape_)
        train, held_out = _split(observations, 0.1, self.random_state)
        # A row's Gram entry per observation: (mean square / R)^((N-1)/N) when the format's
        # entries have the data's mean square, spread evenly over R components and N modes.
        order = len(self.tensor_shape_)
        mean, mean_square = _moments(train)
        scale = (mean_square / int(self.rank)) ** ((order - 1) / order)
        best = (_relative_error(mean, held_out), None, None)
        start, sweeps = None, 0
        for ridge in [a * scale for a in _GUARD_ALPHAS] + [self.alpha]:
            tol = max(self.tol, _GUARD_TOL)
            start, info = fit(train, rank, start, ridge=ridge, max_iter=_GUARD_SWEEPS, tol=tol)
            sweeps += info.n_iter
            error = _score(start, held_out)
            if error < best[0]:
                best = (error, ridge, start)
            elif error > best[0]:
                break  # the held-out error rises from here on
        if best[1] is None:
            self._predict_mean(observations, sweeps)
            return
        self.rank_ = int(self.rank)
        self.decomposition_, info = fit(observations, rank, best[2], ridge=best[1])
        self.n_iter_ = info.n_iter

    def _predict_mean(self, observations, sweeps):
        """The constant model (a rank-1 CP holding the mean): nothing else predicted better.
        ``n_iter_`` counts the ``sweeps`` of the fits it was compared with."""
        mean = _moments(observations)[0]
        self.decomposition_ = CPTensor(
            np.array([mean]), [np.ones((d, 1)) for d in self.tensor_shape_]
        )
        self.rank_, self.n_iter_ = 1, sweeps

    def _fit_rank(self, complete, observations, rank, init, max_iter, ridge, tol):
        # init None: the algorithm's own default start (CP's spectral start, random for the
        # others); a warm start from the rank search otherwise, which extra starts would waste.
        kwargs = {} if init is None else {"init": init}
        n_init = self.n_init if init is None else 1
        common = dict(
            max_iter=max_iter,
            tol=tol,
            random_state=self.random_state,
            alpha=ridge,
            verbose=self.verbose,
        )
        if n_init == 1:
            return complete(observations, rank, **common, **kwargs)
        # Several starts are compared on 10% held-out entries; the winner is refitted on all.
        train, held_out = _split(observations, 0.1, self.random_state)
        best, _ = complete(train, rank, **common, validation=held_out, n_init=n_init, **kwargs)
        return complete(observations, rank, **{**common, "init": best})

    def _fit_dask(self, X, y):
        """Fit CP on the cluster of the current ``distributed.Client``; the observations stay
        on the workers (:mod:`tnml.decompositions.distributed`)."""
        import dask

        from ..decompositions.distributed import (
            cp_complete_distributed,
            distribute_observations,
        )

        if self.model not in _DISTRIBUTED_MODELS:
            raise ValueError(
                f"model={self.model!r} does not run on dask collections; the families that "
                f"run distributed are {_DISTRIBUTED_MODELS}"
            )
        X, y = _dask_input(X, y)
        # One pass over the observations for every check of the in-memory path.
        low, high, integral, finite = dask.compute(
            X.min(axis=0), X.max(axis=0), (X == X.round()).all(), dask.array.isfinite(y).all()
        )
        if not bool(finite):
            raise ValueError("Input y contains NaN or infinity.")
        if X.dtype.kind == "f" and not bool(integral):
            raise ValueError("X must hold integer coordinates; got non-integral values")
        if X.shape[0] and int(low.min()) < 0:
            raise ValueError(
                f"Negative values in data passed to X: coordinates index the tensor from 0, "
                f"got {int(low.min())}"
            )
        X = X.astype(np.int64)
        self.n_features_in_ = int(X.shape[1])
        self.tensor_shape_ = self._resolve_shape(np.asarray(high, dtype=np.int64)[None, :])
        family = FAMILIES[self.model]
        largest = self.max_rank if self.rank == "auto" else int(self.rank)
        check_memory(
            _n_params(self.model, self.tensor_shape_, largest) * np.dtype(np.float64).itemsize,
            f"TensorCompletionRegressor start factors (model={self.model!r}, "
            f"tensor_shape={self.tensor_shape_})",
        )
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True needs checkpoint= (the file to resume from)")
        observations = distribute_observations(X, y, self.tensor_shape_)

        def complete(obs, rank, *, alpha, init="spectral", **kwargs):
            ridge = alpha
            # The final fit (on every observation, one start) is the one checkpointed.
            if self.checkpoint is not None and obs is observations:
                kwargs["callback"] = partial(self._write_checkpoint, rank, ridge)
                if self.resume:
                    kwargs["state"] = self._read_checkpoint(rank, ridge)
            return cp_complete_distributed(obs, rank, alpha=ridge, init=init, **kwargs)

        try:
            self._fit_observations(observations, family, largest, complete)
            self.reconstruction_error_ = float(_score(self.decomposition_, observations))
        finally:
            observations.release()
        return self

    def _checkpoint_fingerprint(self, rank, ridge):
        """What a checkpoint must match to be resumed: the fit's parameters and shape."""
        return {
            "format": _CHECKPOINT_FORMAT,
            "shape": list(self.tensor_shape_),
            "rank": rank,
            "alpha": float(ridge),
            "random_state": self.random_state
            if isinstance(self.random_state, (int, type(None)))
            else repr(self.random_state),
        }

    def _write_checkpoint(self, rank, ridge, state):
        """Write the fit's state after a sweep: factors, start kind and errors so far."""
        meta = {**self._checkpoint_fingerprint(rank, ridge), "kind": state["kind"]}
        meta["errors"] = list(state["errors"])
        arrays = {f"factor_{k}": f for k, f in enumerate(state["factors"])}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        _atomic_savez(self.checkpoint, arrays)

    def _read_checkpoint(self, rank, ridge):
        """The state recorded in ``checkpoint``, or None where there is none yet."""
        if not os.path.exists(self.checkpoint):
            return None
        try:
            with np.load(self.checkpoint, allow_pickle=False) as archive:
                meta = json.loads(archive["meta"].tobytes().decode())
                factors = [archive[f"factor_{k}"] for k in range(len(self.tensor_shape_))]
        except Exception as error:  # noqa: BLE001 - any failure means an unusable file
            raise ValueError(
                f"checkpoint {os.fspath(self.checkpoint)!r} is corrupted or not a "
                f"TensorCompletionRegressor checkpoint ({type(error).__name__}: {error})"
            ) from None
        expected = self._checkpoint_fingerprint(rank, ridge)
        if any(meta.get(key) != value for key, value in expected.items()):
            raise ValueError(
                f"checkpoint {os.fspath(self.checkpoint)!r} was written by another fit "
                f"({ {k: meta.get(k) for k in expected} }); this one is {expected}"
            )
        if any(f.shape != (d, rank) for f, d in zip(factors, self.tensor_shape_)):
            raise ValueError(
                f"checkpoint {os.fspath(self.checkpoint)!r} has factors of other shapes"
            )
        return {"factors": factors, "kind": meta["kind"], "errors": meta["errors"]}

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
        if _is_dask(X):
            from ..decompositions.distributed import entries_distributed

            if hasattr(X, "to_dask_array"):
                X = X.to_dask_array(lengths=True)
            if X.ndim != 2 or X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[-1]} features, but TensorCompletionRegressor is "
                    f"expecting {self.n_features_in_} features as input."
                )
            X = X.rechunk({1: -1}).map_blocks(_checked_block, self.tensor_shape_, dtype=np.int64)
            return entries_distributed(self.decomposition_, X)
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
