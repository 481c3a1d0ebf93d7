"""Whole-tensor imputation with any decomposition estimator, or with model selection."""

import numbers
import time
import warnings
from dataclasses import replace

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_tensor, missing_mask
from ..backend import get_namespace, is_numpy, serial_blas
from .families import AUTOMATIC, FAMILIES, SearchOptions, from_layout, select, to_layout

# 'auto' probes every family cheaply, then searches fully the best this many, of those whose
# probe's held-out error is within this factor of the best probe's.
_LEADERS = 2
_LEADER_MARGIN = 1.25
# Sweeps (or iterations) per fit of a probe.
_PROBE_MAX_ITER = 10

__all__ = ["TensorImputer"]


class TensorImputer(TransformerMixin, BaseEstimator):
    """Complete a tensor's missing entries with a low-rank model, like sklearn's imputers.

    The whole tensor is one data set (there is no sample axis here): ``fit`` learns a model on
    the observed entries and ``transform`` returns the tensor with its missing entries replaced
    by the model's values and its observed entries returned exactly as given.

    Parameters
    ----------
    model : estimator or {'auto', 'cp', 'tucker', 'tt', 'tr', 'tubal', 'smooth', 'search'}, \
default='auto'
        A tnml decomposition estimator (cloned and fitted to the tensor with NaN for missing
        entries), or a model family whose rank is chosen on held-out observed entries by
        warm-started rank growth ('tubal': TNN minimisation, whose tube orientation and
        transform are chosen the same way; 'smooth': a Tucker model low-rank along the last
        axis and smooth along the others, see
        :func:`~tnml.decompositions.smooth_tucker_complete`, whose penalty order and weight
        are chosen the same way). 'auto' probes every family that applies to X's shape
        cheaply (its first ranks with few sweeps, one setting), searches the two best fully
        (the second only if its probe's held-out error is within 25% of the best) and keeps
        the one with the lowest held-out error (successive halving). 'search': a
        tensor-network structure search, :class:`~tnml.StructureSearch` with TnALE, bond ranks
        up to ``rank`` (default 4); 'auto' never tries it.
    rank : int, optional
        Rank for a model family instead of the held-out search. For 'smooth' it is the number
        of channel patterns kept along the last axis (default: all channels, at most 64).
    missing_values : float, default=np.nan
        The value that marks a missing entry. NaN is always missing too, whatever the marker
        (:func:`tnml._validation.missing_mask`, the one rule of every estimator).
    tensorize : {'auto'} or bool, default='auto'
        Reshape an image-like tensor (H, W[, C]) into a high-order tensor of small modes that
        pairs row and column scales ("ket augmentation", Bengua et al. 2017) before fitting,
        so that TT/TR models exploit multiscale structure. 'auto' does so for the 'tt' and 'tr'
        families when X is 2-D, or 3-D with at most 4 channels.
    validation_fraction : float, default=0.1
        Share of the observed entries held out to choose ranks and families.
    max_iter : int, default=50
        Sweeps per rank for the model families.
    max_time : float, optional
        Time budget in seconds for the model search: once spent, rank growth stops at the
        rank reached and no further family is searched (the fits under way finish). None:
        no budget.
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
        ``model`` (family or class name), ``rank``, ``validation_rse`` (the chosen model's
        held-out relative error, at the chosen rank), ``settings`` (the other choices made on
        held-out entries, e.g. the smooth family's ``order`` and ``smoothness``) and
        ``candidates`` (one dict per family and stage tried, ``'probe'`` or ``'full'``, with
        its held-out relative error and time; a family that does not apply to X's shape,
        such as 'tubal' for a tensor that is not 3-way, appears with ``skipped``: the
        reason).
    layout_ : tuple
        How the tensor was arranged for the fitted format: ``('plain',)``, ``('ket',)``
        (ket-augmented) or ``('transpose', axes)``.
    shape_ : tuple of int
    n_features_in_ : int
        ``shape_[1]``, as scikit-learn counts the columns of a 2-D X.
    n_iter_ : int or None
        Sweeps (or iterations) of the final fit.
    n_missing_ : int
        Missing entries of the X given to ``fit`` (0 is allowed: the model is then fitted to
        every entry, and ``transform`` returns X unchanged where X has no missing entries).

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
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # What :func:`tnml.load` may restore besides the parameters (nothing else is set).
    _fitted_attributes = (
        "n_features_in_",
        "feature_names_in_",
        "shape_",
        "n_missing_",
        "model_",
        "decomposition_",
        "summary_",
        "layout_",
        "n_iter_",
        "_sklearn_output_config",
    )

    def __init__(
        self,
        model="auto",
        *,
        rank=None,
        missing_values=np.nan,
        tensorize="auto",
        validation_fraction=0.1,
        max_iter=50,
        max_time=None,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.rank = rank
        self.missing_values = missing_values
        self.tensorize = tensorize
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state
        self.verbose = verbose

    # -- input -----------------------------------------------------------------------------------
    def _missing(self, X):
        return missing_mask(X, self.missing_values)

    def _check(self, X, reset=False):
        xp = get_namespace(X)
        if is_numpy(xp) and not (hasattr(X, "ndim") and getattr(X, "ndim", 2) > 2):
            # Host 2-D data (arrays, lists, DataFrames, sparse) go through scikit-learn's own
            # checks and messages, as in every tnml estimator; tensors through check_tensor.
            X = validate_data(
                self, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan"
            )
        X = check_tensor(X, "X", allow_nan=True)
        if reset:
            self.n_features_in_ = X.shape[1]
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
        # Nothing missing is no error (scikit-learn's imputers pass such data through, and a
        # test split often has no NaN): the model is fitted to every entry, so that transform
        # can still fill entries missing in a later X of this shape.
        X, missing, n_missing = self._check(X, reset=True)
        self.shape_ = tuple(X.shape)
        self.n_missing_ = n_missing
        self.model_ = None
        if isinstance(self.model, str):
            self._fit_family(X, ~missing)
        else:
            self._fit_estimator(X, missing)
        return self

    def _fit_estimator(self, X, missing):
        xp = get_namespace(X)
        self.layout_ = ("ket",) if self.tensorize is True else ("plain",)
        self.model_ = clone(self.model).fit(to_layout(xp.where(missing, xp.nan, X), self.layout_))
        self.decomposition_ = self.model_.decomposition_
        self.n_iter_ = getattr(self.model_, "n_iter_", None)
        self.summary_ = {
            "model": type(self.model).__name__,
            "rank": getattr(self.model_.decomposition_, "rank", None),
            "settings": {},
            "candidates": [],
        }

    def _fit_family(self, X, observed):
        from tqdm.auto import tqdm

        families = AUTOMATIC if self.model == "auto" else (self.model,)
        skipped = [
            {"model": f, "skipped": FAMILIES[f].skip_reason(X.shape)}
            for f in families
            if FAMILIES[f].skip_reason(X.shape)
        ]
        if len(skipped) == len(families):
            raise ValueError(f"model={self.model!r} does not apply to X: {skipped[0]['skipped']}")
        families = tuple(f for f in families if not FAMILIES[f].skip_reason(X.shape))
        deadline = None if self.max_time is None else time.perf_counter() + self.max_time
        progress = tqdm(desc="TensorImputer", unit="fit", disable=not self.verbose)
        current = {}

        def moved(rank, error):  # one rank step inside a family: the bar moves
            progress.update(1)
            progress.set_postfix(model=current["family"], rank=rank, held_out_rse=f"{error:.4g}")

        options = SearchOptions(
            rank=self.rank,
            max_iter=self.max_iter,
            validation_fraction=self.validation_fraction,
            random_state=self.random_state,
            tensorize=self.tensorize,
            deadline=deadline,
            progress=moved,
        )

        def run(family, options, stage):
            current["family"] = family
            start = time.perf_counter()
            selection = select(family, X, observed, options)
            row = {
                "model": family,
                "stage": stage,
                "rank": selection.rank,
                "validation_rse": selection.validation_rse,
                "seconds": round(time.perf_counter() - start, 3),
            }
            progress.update(1)
            progress.set_postfix(
                model=family, rank=selection.rank, held_out_rse=f"{selection.validation_rse:.4g}"
            )
            if self.verbose > 1:
                progress.write(
                    f"{family} ({stage}) rank {selection.rank}: held-out relative "
                    f"error {selection.validation_rse:.4g}"
                )
            return selection, row

        probes, leaders = [], families
        if len(families) > _LEADERS:
            # Successive halving (as HalvingGridSearchCV): a cheap probe of every family (few
            # ranks and sweeps, one setting), then the full search for the leaders only.
            probe = replace(options, probe=True, max_iter=min(self.max_iter, _PROBE_MAX_ITER))
            # Probes fit ranks up to 4: skinny products and tiny solves, which a threaded
            # host BLAS only slows down (4x on a busy 2-core machine; serial_blas).
            with serial_blas():
                probes = [run(family, probe, "probe") for family in families]
            ranked = sorted(probes, key=lambda c: c[0].validation_rse)
            cutoff = _LEADER_MARGIN * ranked[0][0].validation_rse
            leaders = tuple(
                c[1]["model"] for c in ranked[:_LEADERS] if c[0].validation_rse <= cutoff
            )
        candidates = []
        for family in leaders:
            if candidates and deadline is not None and time.perf_counter() > deadline:
                break  # out of time: keep what the full search has found so far
            candidates.append(run(family, options, "full"))
        progress.close()
        best, summary = min(candidates, key=lambda c: c[0].validation_rse)
        candidates = probes + candidates
        if not best.converged:
            warnings.warn(
                f"TensorImputer: the final {summary['model']} fit stopped at its "
                f"iteration cap before converging; raise max_iter",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.decomposition_, self.layout_ = best.format, best.layout
        self.n_iter_ = best.n_iter
        self.summary_ = {
            "model": summary["model"],
            "rank": best.rank,
            "settings": best.settings,
            "validation_rse": summary["validation_rse"],
            "candidates": [row for _, row in candidates] + skipped,
        }

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
        if X.shape[1] != self.shape_[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but TensorImputer is expecting "
                f"{self.shape_[1]} features as input (X has shape "
                f"{tuple(X.shape)}, the fitted tensor {self.shape_})"
            )
        if tuple(X.shape) != self.shape_:
            raise ValueError(
                f"X has shape {tuple(X.shape)}, but TensorImputer was fitted on {self.shape_}"
            )
        return get_namespace(X).where(missing, self.reconstruction(), X)

    def reconstruction(self):
        """The model's values for every entry (observed ones included), in the fitted shape."""
        check_is_fitted(self)
        return from_layout(self.decomposition_.to_tensor(), self.layout_, self.shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.three_d_array = True
        return tags
