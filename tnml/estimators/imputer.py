"""Whole-tensor imputation with any decomposition estimator, or with model selection."""

import math
import numbers
import time
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._validation import check_tensor
from ..backend import get_namespace
from ..decompositions import cp, smooth, tr, tt, tubal, tucker
from ..decompositions._masked import Observations, observed_error
from ..decompositions._rank_search import grow_rank, split_observations

__all__ = ["TensorImputer", "FAMILIES"]

FAMILIES = ("cp", "tucker", "tt", "tr", "tubal", "smooth")

# Ranks tried in order by the warm-started growth; it stops once held-out error stops falling.
_RANK_LADDERS = {
    "cp": (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128),
    "tucker": (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64),
    "tt": (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48),
    "tr": (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20),
}


_GROWTH_SWEEPS = 25

# The 'smooth' family's grid, scored on held-out entries: the penalty order (1: edges, as in
# piecewise-flat hyperspectral fields; 2: smooth gradients, as in photographs) and its weight.
_SMOOTH_ORDERS = (1, 2)
_SMOOTH_WEIGHTS = (0.003, 0.03)
# Channel patterns kept by default: more cost time linearly and gain little beyond this.
_SMOOTH_MAX_RANK = 64


def _complete_function(family):
    return {"cp": (cp.cp_complete, cp.pad_cp), "tucker": (tucker.tucker_complete,
                                                           tucker.pad_tucker),
            "tt": (tt.tt_complete, tt.pad_tt), "tr": (tr.tr_complete, tr.pad_tr)}[family]


def _held_out_error(completed, X, held_out):
    """Relative error of ``completed`` on the ``held_out`` entries of ``X``."""
    xp = get_namespace(X)
    return float(xp.linalg.norm((completed - X)[held_out]) / xp.linalg.norm(X[held_out]))


def _family_rank(family, rank, shape):
    """A ladder rank in the family's own rank type, capped to what the shape allows."""
    if family == "tucker":
        return tuple(min(rank, d) for d in shape)
    if family == "tt":
        return min(rank, max(tt.max_tt_rank(shape)))
    return rank


class TensorImputer(TransformerMixin, BaseEstimator):
    """Complete a tensor's missing entries with a low-rank model, like sklearn's imputers.

    The whole tensor is one data set (there is no sample axis here): ``fit`` learns a model on
    the observed entries and ``transform`` returns the tensor with its missing entries replaced
    by the model's values and its observed entries returned exactly as given.

    Parameters
    ----------
    model : estimator or {'auto', 'cp', 'tucker', 'tt', 'tr', 'tubal', 'smooth'}, default='auto'
        A tnml decomposition estimator (cloned and fitted to the tensor with NaN for missing
        entries), or a model family whose rank is chosen on held-out observed entries by
        warm-started rank growth ('tubal': TNN minimisation, whose tube orientation and
        transform are chosen the same way; 'smooth': a Tucker model low-rank along the last
        axis and smooth along the others, see
        :func:`~tnml.decompositions.smooth_tucker_complete`, whose penalty order and weight
        are chosen the same way). 'auto' tries every family and keeps the one with the
        lowest held-out error.
    rank : int, optional
        Rank for a model family instead of the held-out search. For 'smooth' it is the number
        of channel patterns kept along the last axis (default: all channels, at most 64).
    missing_values : float, default=np.nan
        The value that marks a missing entry.
    tensorize : {'auto'} or bool, default='auto'
        Reshape an image-like tensor (H, W[, C]) into a high-order tensor of small modes that
        pairs row and column scales ("ket augmentation", Bengua et al. 2017) before fitting,
        so that TT/TR models exploit multiscale structure. 'auto' does so for the 'tt' and 'tr'
        families when X is 2-D, or 3-D with at most 4 channels.
    validation_fraction : float, default=0.1
        Share of the observed entries held out to choose ranks and families.
    max_iter : int, default=50
        Sweeps per rank for the model families.
    random_state : None, int or RandomState
    verbose : int, default=0
        1: a progress bar with the held-out error of the current model; 2: also a line per
        model.

    Attributes
    ----------
    model_ : estimator or None
        The fitted clone when ``model`` is an estimator.
    decomposition_ : format
        The fitted format (of the tensorized tensor when tensorized).
    summary_ : dict
        ``model`` (family or class name), ``rank``, ``settings`` (the other choices made on
        held-out entries, e.g. the smooth family's ``order`` and ``smoothness``) and
        ``candidates`` (one dict per family tried, with its held-out relative error and
        time).
    shape_ : tuple of int
    n_missing_ : int

    Examples
    --------
    >>> import numpy as np
    >>> import tnml
    >>> from tnml.decompositions import random_cp
    >>> X = random_cp((20, 21, 22), 2, random_state=0).to_tensor()
    >>> X_missing = X.copy()
    >>> X_missing[np.random.default_rng(0).random(X.shape) < 0.5] = np.nan
    >>> imputer = tnml.TensorImputer("cp", random_state=0)
    >>> X_full = imputer.fit_transform(X_missing)
    >>> imputer.summary_["rank"], bool(np.abs(X_full - X).max() < 1e-4)
    (2, True)
    """

    _parameter_constraints = {
        "model": [HasMethods(["fit"]), StrOptions({"auto", *FAMILIES})],
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "missing_values": [numbers.Real],
        "tensorize": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, model="auto", *, rank=None, missing_values=np.nan, tensorize="auto",
                 validation_fraction=0.1, max_iter=50, random_state=None, verbose=0):
        self.model = model
        self.rank = rank
        self.missing_values = missing_values
        self.tensorize = tensorize
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    # -- input -----------------------------------------------------------------------------------
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

    # -- fit -------------------------------------------------------------------------------------
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
        self.shape_ = tuple(X.shape)
        self.n_missing_ = n_missing
        self.model_, self._layout = None, ("plain",)
        if isinstance(self.model, str):
            self._fit_family(X, ~missing)
        else:
            self._fit_estimator(X, missing)
        return self

    def _fit_estimator(self, X, missing):
        xp = get_namespace(X)
        self._layout = ("ket",) if self.tensorize is True else ("plain",)
        self.model_ = clone(self.model).fit(self._forward(xp.where(missing, xp.nan, X)))
        self.decomposition_ = self.model_.decomposition_
        self.summary_ = {"model": type(self.model).__name__,
                         "rank": getattr(self.model_.decomposition_, "rank", None), "settings": {},
                         "candidates": []}

    def _fit_family(self, X, observed):
        from tqdm.auto import tqdm

        families = FAMILIES if self.model == "auto" else (self.model,)
        candidates = []
        progress = tqdm(families, desc="TensorImputer", unit="model", disable=not self.verbose)
        for family in progress:
            progress.set_postfix(model=family)
            start = time.perf_counter()
            search = {"tubal": self._search_tubal, "smooth": self._search_smooth}.get(
                family, self._search)
            fitted = search(family, X, observed)
            candidates.append({"model": family, "rank": fitted["rank"],
                               "validation_rse": fitted["validation_rse"],
                               "seconds": round(time.perf_counter() - start, 3), **fitted})
            progress.set_postfix(model=family, rank=fitted["rank"],
                                 held_out_rse=f"{fitted['validation_rse']:.4g}")
            if self.verbose > 1:
                progress.write(f"{family} rank {fitted['rank']}: held-out relative error "
                               f"{fitted['validation_rse']:.4g}")
        best = min(candidates, key=lambda c: c["validation_rse"])
        self.decomposition_, self._layout = best["format"], best["layout"]
        self.summary_ = {"model": best["model"], "rank": best["rank"],
                         "settings": best.get("settings", {}),
                         "candidates": [{k: c[k] for k in ("model", "rank", "validation_rse",
                                                           "seconds")} for c in candidates]}

    def _family_layout(self, family, shape):
        image_like = len(shape) == 2 or (len(shape) == 3 and shape[2] <= 4)
        wanted = self.tensorize is True or (self.tensorize == "auto" and image_like
                                            and family in ("tt", "tr"))
        return ("ket",) if wanted else ("plain",)

    def _search(self, family, X, observed):
        """Warm-started rank growth on held-out entries (or the given rank) for one family."""
        layout = self._family_layout(family, X.shape)
        self._layout = layout
        tensor, mask = self._forward(X), self._forward(observed)
        observations = Observations.from_dense(tensor, mask)
        complete, pad = _complete_function(family)

        def fit(obs, rank, init):
            # Ranks on the way up only need to be good warm starts and fair held-out scores;
            # the final fit on every observation gets the full sweep budget.
            sweeps = self.max_iter if obs is observations else _GROWTH_SWEEPS
            return complete(obs, rank, init="random" if init is None else init,
                            max_iter=min(sweeps, self.max_iter), tol=1e-5,
                            random_state=self.random_state)

        if self.rank is not None:
            rank = _family_rank(family, self.rank, tensor.shape)
            train, held_out = split_observations(observations, self.validation_fraction,
                                                 self.random_state)
            fitted, _ = fit(train, rank, None)
            error = observed_error(fitted.entries, held_out)
            fitted, _ = fit(observations, rank, fitted)
        else:
            ladder = sorted({_family_rank(family, r, tensor.shape)
                             for r in _RANK_LADDERS[family]},
                            key=lambda r: r if isinstance(r, int) else sum(r))
            fitted, rank, history = grow_rank(
                fit, partial(pad, random_state=self.random_state), observations, ladder,
                validation_fraction=self.validation_fraction, random_state=self.random_state,
                patience=2)  # one bad warm start (ALS local minimum) must not end the search
            error = min(h[2] for h in history)
        return {"format": fitted, "rank": rank, "validation_rse": float(error),
                "layout": layout}

    def _search_tubal(self, family, X, observed):
        """TNN completion; the tube axis and transform are chosen on held-out entries."""
        xp = get_namespace(X)
        if X.ndim != 3:
            raise ValueError(f"the tubal model needs a 3-way tensor, got shape {X.shape}")
        train, held_out = self._split(observed)
        best = None
        for tube_axis in range(3):
            for transform in ("dct", "fft"):
                order = tuple(a for a in range(3) if a != tube_axis) + (tube_axis,)
                completed = self._tnn(X, train, order, transform)
                error = _held_out_error(completed, X, held_out)
                if best is None or error < best[0]:
                    best = (error, order, transform)
        error, order, transform = best
        completed = self._tnn(X, observed, order, transform)
        rank = tubal.tubal_rank(xp.transpose(completed, order), rtol=1e-3, transform=transform)
        fitted = tubal.t_svd(xp.transpose(completed, order), rank=rank, transform=transform)
        return {"format": fitted, "rank": rank, "validation_rse": error,
                "layout": ("transpose", order)}

    def _split(self, observed):
        """A random ``validation_fraction`` of the observed entries, held out: (train, held)."""
        xp = get_namespace(observed)
        rng = np.random.default_rng(self.random_state if isinstance(self.random_state, int)
                                    else None)
        held_out = observed & xp.asarray(rng.random(observed.shape) < self.validation_fraction)
        return observed & ~held_out, held_out

    def _search_smooth(self, family, X, observed):
        """Smooth Tucker completion; penalty order, weight (and, for matrices, whether the
        columns are channels or a second ordered axis) chosen on held-out entries."""
        train, held_out = self._split(observed)
        feature_axes = (None, -1) if X.ndim == 2 else (-1,)
        best = None
        for feature_axis in feature_axes:
            channels = 1 if feature_axis is None else X.shape[feature_axis]
            rank = min(self.rank or _SMOOTH_MAX_RANK, channels)
            for order in _SMOOTH_ORDERS:
                for weight in _SMOOTH_WEIGHTS:
                    settings = {"feature_axis": feature_axis, "rank": rank, "order": order,
                                "smoothness": weight}
                    fitted, _ = smooth.smooth_tucker_complete(
                        X, train, max_iter=self.max_iter, **settings)
                    completed = fitted.to_tensor()
                    error = _held_out_error(completed, X, held_out)
                    if best is None or error < best[0]:
                        best = (error, settings)
        error, settings = best
        fitted, _ = smooth.smooth_tucker_complete(X, observed, max_iter=self.max_iter,
                                                  **settings)
        return {"format": fitted, "rank": settings["rank"], "validation_rse": error,
                "layout": ("plain",), "settings": settings}

    def _tnn(self, X, observed, order, transform):
        xp = get_namespace(X)
        completed, _ = tubal.tnn_complete(xp.transpose(xp.where(observed, X, 0), order),
                                          xp.transpose(observed, order), transform=transform,
                                          max_iter=self.max_iter * 4, tol=1e-5)
        return xp.transpose(completed, tuple(np.argsort(order)))

    # -- transform -------------------------------------------------------------------------------
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
        return self._inverse(self.decomposition_.to_tensor())

    def _forward(self, X):
        if self._layout[0] == "ket":
            from ..tensorize import ket_augment

            return ket_augment(X)
        return X

    def _inverse(self, tensor):
        xp = get_namespace(tensor)
        if self._layout[0] == "ket":
            from ..tensorize import ket_restore

            return ket_restore(tensor, self.shape_)
        if self._layout[0] == "transpose":
            return xp.transpose(tensor, tuple(np.argsort(self._layout[1])))
        return xp.reshape(tensor, self.shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
