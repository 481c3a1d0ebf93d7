"""Imputation with a low-rank tensor model: whole tensors, or new rows folded in."""

import hashlib
import math
import numbers
import time
import warnings
from dataclasses import replace

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .._config import check_memory, held_memory
from .._validation import check_tensor, missing_mask
from ..backend import get_namespace, is_numpy, serial_blas, to_numpy
from ..decompositions import row_model
from ..decompositions.fold_in import FOLD_IN_FORMATS
from ._base import _check_tensor_shape
from .families import (
    AUTOMATIC,
    FAMILIES,
    RowScoring,
    SearchOptions,
    choose_shrinkage,
    complete_rows,
    from_layout,
    select,
    to_layout,
)

# 'auto' probes every family cheaply, then searches fully the best this many, of those whose
# probe's held-out error is within this factor of the best probe's.
_LEADERS = 2
_LEADER_MARGIN = 1.25
# Sweeps (or iterations) per fit of a probe.
_PROBE_MAX_ITER = 10
# What the model search holds while it fits, in copies of X and of the observed entries'
# coordinates and values (measured with tracemalloc on 60^3-100^3 tensors at 30-90% missing).
_HELD_DENSE_COPIES, _HELD_OBSERVATION_COPIES = 4, 3
# alpha='auto': the fold-in shrinkage strengths (pseudo-observations) tried on held-out
# entries of the training rows. Few observed entries per row against many coefficients
# overfit without shrinkage; exact low-rank rows want none.
_ALPHAS = (1e-8, 0.3, 3.0, 30.0, 300.0, 3000.0)

__all__ = ["TensorImputer"]

_FOLDING = tuple(name for name, family in FAMILIES.items() if family.folds_in)


class TensorImputer(TransformerMixin, BaseEstimator):
    """Complete missing entries with a low-rank tensor model, like scikit-learn's imputers.

    Axis 0 holds samples, as in every tnml estimator: ``fit(X)`` fits a low-rank model to the
    observed entries of the training tensor X (rows = samples; 2-D X with ``tensor_shape``
    for rows that are images), and ``transform(X_new)`` completes new rows: each row's own
    sample-axis factor is solved from its observed entries with the fitted factors of the
    other axes held fixed ("fold-in", :func:`~tnml.decompositions.fold_in`), and only its
    missing entries are filled. A row's result depends on that row only. The families
    'cp', 'tucker', 'tt' and 'tr' (and estimators whose format is one of those) fold in.

    A single tensor whose axes are all ordered (a photograph, a hyperspectral cube, a video)
    is completed as a whole: pass ``ordered_axes`` (``tnml complete`` does) and
    ``fit_transform`` fits the joint model of that tensor, with the families that assume
    ordered axes ('smooth', ket augmentation) and 'tubal' among the candidates of 'auto'.

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
        are chosen the same way). 'auto' probes cheaply every family that applies (its first
        ranks with few sweeps, one setting), searches the two best fully (the second only
        if its probe's held-out error is within 25% of the best) and keeps the one with the
        lowest held-out error. Unless axis 0 is in ``ordered_axes``, 'auto' tries only the
        families that fold in new rows ('cp', 'tucker', 'tt', 'tr'); on a matrix of rows
        (2-D X, one side at most 2048 long) 'cp' with ``rank='auto'`` also runs the
        soft-impute path (:func:`~tnml.decompositions.soft_impute`: column means plus a
        nuclear-norm-shrunk low rank, its threshold chosen on held-out entries), and keeps it
        where it predicts the held-out entries better than the rank ladder (noisy data; the
        ladder's unshrunk fit wins on exactly low-rank data). 'search': a
        tensor-network structure search (:class:`~tnml.StructureSearch`, TnALE, bond ranks
        up to ``max_rank``, default 4); 'auto' never tries it.
    rank : int or 'auto', default='auto'
        Rank of a model family; 'auto' chooses it on held-out entries. For 'smooth' it is
        the number of channel patterns kept along the last axis (default: all channels, at
        most 64).
    max_rank : int, optional
        The largest rank that ``rank='auto'`` tries (default: the family's whole ladder).
    missing_values : float, default=np.nan
        The value that marks a missing entry. NaN is always missing too, whatever the marker
        (:func:`tnml._validation.missing_mask`, the one rule of every estimator).
    tensor_shape : tuple of int, optional
        The shape of one sample when X is 2-D: X of shape ``(n, prod(tensor_shape))`` is
        fitted as the tensor ``(n, *tensor_shape)`` (e.g. ``(8, 8)`` for 8x8 images).
        ``transform`` returns X's own shape.
    ordered_axes : tuple of int, optional
        The axes of the fitted tensor along which neighbouring entries are related (image
        rows and columns, time, wavelength). None: no axis is ordered, axis 0 holds samples
        in any order. With axis 0 ordered, X is one whole tensor: 'auto' also tries 'tubal',
        and 'smooth' when every axis but the last is ordered; ``tensorize='auto'``
        ket-augments for TT/TR when axes 0 and 1 are ordered; ``fit_transform`` returns the
        joint fit.
    tensorize : {'auto'} or bool, default='auto'
        Reshape an image-like tensor (H, W[, C]) into a high-order tensor of small modes that
        pairs row and column scales ("ket augmentation", Bengua et al. 2017) before fitting,
        so that TT/TR models exploit multiscale structure. 'auto' does so for the 'tt' and 'tr'
        families when axes 0 and 1 are ordered and X is 2-D, or 3-D with at most 4
        channels. A ket-augmented model completes only the tensor it was fitted on.
    n_neighbors : int or None, default=10
        A folded-in row's coefficients are shrunk towards the mean coefficients of the
        ``n_neighbors`` fitted rows nearest to it on its observed entries (their model values
        compared, :func:`~tnml.decompositions.fold_in.nearest_rows`), and its missing
        entries get those rows' mean residual (data minus model, where they observed the
        entry) added: a nearest-neighbour correction of what the low-rank model misses
        (:func:`~tnml.estimators.families.complete_rows`). Between a nearest-neighbour
        imputation (large ``alpha``) and the row's own least squares (small ``alpha``).
        None: shrink towards the mean of all fitted rows, no correction (the fitted rows
        are then not kept).
    alpha : float or 'auto', default='auto'
        Strength of that shrinkage, in pseudo-observations of an average entry (relative to
        the model's scale, see :func:`~tnml.decompositions.fold_in`): rows with few
        observed entries lean on their prior more. 'auto' chooses it on held-out entries of
        the training rows (for one whole tensor, see ``ordered_axes``: the smallest, 1e-8).
    validation_fraction : float, default=0.1
        Share of the observed entries held out to choose ranks, families and ``alpha``.
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
        its held-out relative error and time; a family that does not apply appears with
        ``skipped``: the reason).
    alpha_ : float or None
        The fold-in shrinkage used by ``transform``; None when the model does not fold in.
    layout_ : tuple
        How the tensor was arranged for the fitted format: ``('plain',)``, ``('ket',)``
        (ket-augmented) or ``('transpose', axes)``.
    shape_ : tuple of int
        Shape of the fitted tensor.
    tensor_shape_ : tuple of int
        Shape of one sample (``shape_[1:]``).
    n_features_in_ : int
        ``prod(tensor_shape_)``, as scikit-learn counts the columns of a 2-D X.
    n_iter_ : int or None
        Sweeps (or iterations) of the final fit.
    n_missing_ : int
        Missing entries of the X given to ``fit`` (0 is allowed: the model is then fitted to
        every entry, and ``transform`` fills entries missing in later rows).

    Notes
    -----
    A row of ``transform``'s X with no observed entry gets the model's mean row (the fitted
    rows' mean coefficients), with a warning. A model that does not fold in new rows
    ('tubal', 'smooth', 'search', ket-augmented layouts, :class:`~tnml.TubalSVD`) completes
    the tensor it was fitted on (``fit_transform``, or ``transform`` of that same X) and
    raises ``ValueError`` for other rows that have missing entries.

    Examples
    --------
    >>> import numpy as np
    >>> import tnml
    >>> from tnml.decompositions import random_cp
    >>> X = random_cp((60, 9, 10), 2, random_state=0).to_tensor()
    >>> X_missing = X.copy()
    >>> X_missing[np.random.default_rng(0).random(X.shape) < 0.5] = np.nan
    >>> imputer = tnml.TensorImputer("cp", random_state=0).fit(X_missing[:40])
    >>> X_new = imputer.transform(X_missing[40:])  # rows not seen in fit
    >>> imputer.summary_["rank"], bool(np.abs(X_new - X[40:]).max() < 1e-4)
    (2, True)
    """

    _parameter_constraints = {
        "model": [HasMethods(["fit"]), StrOptions({"auto", *FAMILIES})],
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_rank": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "missing_values": [numbers.Real],
        "tensor_shape": ["array-like", None],
        "ordered_axes": ["array-like", None],
        "tensorize": ["boolean", StrOptions({"auto"})],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
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
        "tensor_shape_",
        "n_missing_",
        "model_",
        "decomposition_",
        "summary_",
        "layout_",
        "alpha_",
        "n_iter_",
        "_whole_tensor",
        "_fit_digest",
        "_fit_X",
        "_sklearn_output_config",
    )

    def __init__(
        self,
        model="auto",
        *,
        rank="auto",
        max_rank=None,
        missing_values=np.nan,
        tensor_shape=None,
        ordered_axes=None,
        tensorize="auto",
        n_neighbors=10,
        alpha="auto",
        validation_fraction=0.1,
        max_iter=50,
        max_time=None,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.rank = rank
        self.max_rank = max_rank
        self.missing_values = missing_values
        self.tensor_shape = tensor_shape
        self.ordered_axes = ordered_axes
        self.tensorize = tensorize
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state
        self.verbose = verbose

    # -- input -----------------------------------------------------------------------------------
    def _check(self, X, reset=False):
        """X as a tensor ``(n, *tensor_shape)``, its missing mask and X's own shape."""
        tensor_shape = _check_tensor_shape(self.tensor_shape)
        xp = get_namespace(X)
        if is_numpy(xp) and not (hasattr(X, "ndim") and getattr(X, "ndim", 2) > 2):
            # Host 2-D data (arrays, lists, DataFrames, sparse) go through scikit-learn's own
            # checks and messages, as in every tnml estimator; tensors through check_tensor.
            X = validate_data(
                self, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan"
            )
        X = check_tensor(X, "X", allow_nan=True)
        input_shape = tuple(X.shape)
        width = math.prod(X.shape[1:])
        if reset:
            self.n_features_in_ = width
        elif width != self.n_features_in_:
            raise ValueError(
                f"X has {width} features, but TensorImputer is expecting "
                f"{self.n_features_in_} features as input (rows of shape {self.tensor_shape_})"
            )
        if tensor_shape is not None:
            if math.prod(tensor_shape) != width:
                raise ValueError(
                    f"tensor_shape={tensor_shape} holds {math.prod(tensor_shape)} entries but "
                    f"X has {width} features per row"
                )
            if X.ndim > 2 and tuple(X.shape[1:]) != tensor_shape:
                raise ValueError(
                    f"tensor_shape={tensor_shape} does not match X's row shape {tuple(X.shape[1:])}"
                )
            X = get_namespace(X).reshape(X, (X.shape[0],) + tensor_shape)
        if not reset and tuple(X.shape[1:]) != self.tensor_shape_:
            raise ValueError(
                f"X's rows have shape {tuple(X.shape[1:])}, but TensorImputer was fitted on "
                f"rows of shape {self.tensor_shape_}"
            )
        return X, missing_mask(X, self.missing_values), input_shape

    def _ordered(self, ndim):
        if self.ordered_axes is None:
            return ()
        try:
            axes = tuple(int(a) for a in self.ordered_axes)
            valid = all(-ndim <= a < ndim for a in axes) and all(
                isinstance(a, numbers.Integral) and not isinstance(a, bool)
                for a in self.ordered_axes
            )
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(
                f"ordered_axes must be None or a tuple of axes of X (ints in [{-ndim}, "
                f"{ndim})), got {self.ordered_axes!r}"
            )
        return tuple(sorted({a % ndim for a in axes}))

    @staticmethod
    def _digest(X, missing):
        """A fingerprint of the observed entries of X (its missing pattern included)."""
        xp = get_namespace(X)
        values = to_numpy(xp.where(missing, 0, X))
        digest = hashlib.sha256(np.ascontiguousarray(values).tobytes())
        digest.update(np.packbits(to_numpy(missing)).tobytes())
        digest.update(repr(tuple(X.shape)).encode())
        return digest.hexdigest()

    # -- fit -------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the model to the observed entries of X.

        Parameters
        ----------
        X : array of shape (n_samples, d_1, ..., d_k), or (n_samples, n_features)
            Missing entries hold ``missing_values``; 2-D X is reshaped with ``tensor_shape``
            when given.
        y : ignored

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    def _fit(self, X):
        X, missing, _ = self._check(X, reset=True)
        xp = get_namespace(X)
        n_missing = int(xp.sum(missing))
        if n_missing == X.size:
            raise ValueError("X has no observed entries; nothing to fit")
        ordered = self._ordered(X.ndim)
        # Refuse before anything large is allocated: the search holds the observed entries'
        # coordinates and values (and their training and held-out splits) and dense copies
        # of X (filled, its mask, the best completion so far) while it fits; every step's
        # own check then counts them (held_memory).
        n_observed = X.size - n_missing
        held = _HELD_DENSE_COPIES * X.size * X.dtype.itemsize
        held += _HELD_OBSERVATION_COPIES * n_observed * 8 * (X.ndim + 1)
        check_memory(held, f"TensorImputer's model search on a tensor of shape {tuple(X.shape)}")
        with held_memory(held):
            return self._fit_search(X, missing, ordered, n_missing)

    def _fit_search(self, X, missing, ordered, n_missing):
        xp = get_namespace(X)
        # Nothing missing is no error (scikit-learn's imputers pass such data through, and a
        # test split often has no NaN): the model is fitted to every entry, so that transform
        # can still fill entries missing in later rows.
        self.shape_ = tuple(X.shape)
        self.tensor_shape_ = tuple(X.shape[1:])
        self.n_missing_ = n_missing
        self._whole_tensor = 0 in ordered
        self.model_ = None
        if isinstance(self.model, str):
            self._fit_family(X, ~missing, ordered)
        else:
            self._fit_estimator(X, missing)
        self._fit_digest = self._digest(X, missing) if not self._folds_in() else None
        # Like KNNImputer, the fitted rows are kept: new rows borrow their nearest rows'
        # residuals (data minus model).
        self._fit_X = (
            xp.reshape(xp.where(missing, xp.nan, X), (X.shape[0], -1))
            if self._folds_in() and self.n_neighbors is not None
            else None
        )
        self.alpha_ = self._choose_alpha(X, ~missing) if self._folds_in() else None
        return X, missing

    def _folds_in(self):
        return self.layout_ == ("plain",) and isinstance(self.decomposition_, FOLD_IN_FORMATS)

    def _tensorize(self, ordered):
        if self.tensorize == "auto" and not {0, 1} <= set(ordered):
            return False  # rows of samples in any order are never ket-augmented
        return self.tensorize

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

    def _candidates(self, X, ordered):
        """The families to try and the reasons the others of 'auto' are skipped."""
        if self.model != "auto":
            reason = FAMILIES[self.model].skip_reason(X.shape)
            if reason:
                raise ValueError(f"model={self.model!r} does not apply to X: {reason}")
            return (self.model,), []
        families, skipped = [], []
        for name in AUTOMATIC:
            family = FAMILIES[name]
            reason = family.skip_reason(X.shape)
            if reason is None and not self._whole_tensor and not family.folds_in:
                reason = (
                    f"does not fold in new rows; with rows of samples 'auto' tries "
                    f"{', '.join(_FOLDING)} (pass ordered_axes including axis 0 to complete "
                    f"one whole tensor)"
                )
            if reason is None and not self._whole_tensor and X.ndim == 2 and name != "cp":
                reason = (
                    "on a matrix of rows every family that folds in is a low-rank matrix "
                    "model; 'cp' stands for them"
                )
            if reason is None and name == "smooth" and set(ordered) != set(range(X.ndim - 1)):
                reason = (
                    f"assumes every axis but the last is ordered (ordered_axes="
                    f"{tuple(range(X.ndim - 1))}), got ordered_axes={tuple(ordered)}"
                )
            if reason:
                skipped.append({"model": name, "skipped": reason})
            else:
                families.append(name)
        if not families:
            raise ValueError(f"model='auto' has no family for X: {skipped[0]['skipped']}")
        return tuple(families), skipped

    def _fit_family(self, X, observed, ordered):
        from tqdm.auto import tqdm

        families, skipped = self._candidates(X, ordered)
        deadline = None if self.max_time is None else time.perf_counter() + self.max_time
        progress = tqdm(desc="TensorImputer", unit="fit", disable=not self.verbose)
        current = {}

        def moved(rank, error):  # one rank step inside a family: the bar moves
            progress.update(1)
            progress.set_postfix(model=current["family"], rank=rank, held_out_rse=f"{error:.4g}")

        options = SearchOptions(
            rank=None if self.rank == "auto" else self.rank,
            max_rank=self.max_rank,
            max_iter=self.max_iter,
            validation_fraction=self.validation_fraction,
            random_state=self.random_state,
            tensorize=self._tensorize(ordered),
            deadline=deadline,
            progress=moved,
            rows=self._scoring(),
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
                stacklevel=4,
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

    def _scoring(self):
        """How ranks and ``alpha`` are scored when rows are samples (None otherwise)."""
        if self._whole_tensor:
            return None
        seed = check_random_state(self.random_state).randint(2**31 - 1)
        return RowScoring(
            n_neighbors=self.n_neighbors,
            alphas=_ALPHAS if self.alpha == "auto" else (float(self.alpha),),
            random_state=int(seed),
        )

    def _choose_alpha(self, X, observed):
        """``alpha`` as given, the one chosen with the rank, or the value of ``_ALPHAS``
        whose fold-in of the training rows best predicts held-out entries."""
        if self.alpha != "auto":
            return float(self.alpha)
        if self._whole_tensor:
            return _ALPHAS[0]  # one whole tensor: fit_transform never folds in, keep it cheap
        chosen = self.summary_.get("settings", {}).get("alpha")
        if chosen is not None:
            return chosen
        return choose_shrinkage(
            self.decomposition_,
            X,
            observed,
            self._scoring(),
            self.validation_fraction,
        )

    # -- transform -------------------------------------------------------------------------------
    def fit_transform(self, X, y=None):
        """Fit the model to X and return X with its missing entries filled in.

        With rows of samples (axis 0 not in ``ordered_axes``) this is
        ``fit(X).transform(X)``: every row folded in against the fitted factors. For one whole
        tensor it is the joint fit's completion of X.

        Parameters
        ----------
        X : array of shape (n_samples, d_1, ..., d_k), or (n_samples, n_features)
        y : ignored

        Returns
        -------
        X_completed : array of X's shape, in X's namespace
        """
        return self._fit_transform(X)

    @_fit_context(prefer_skip_nested_validation=False)
    def _fit_transform(self, X):
        if not self._whole_tensor_requested():
            return self.fit(X).transform(X)
        tensor, missing = self._fit(X)
        completed = get_namespace(tensor).where(missing, self.reconstruction(), tensor)
        return get_namespace(tensor).reshape(completed, self._check_shape(X))

    def _whole_tensor_requested(self):
        return self.ordered_axes is not None and any(
            isinstance(a, numbers.Integral) and a == 0 for a in self.ordered_axes
        )

    @staticmethod
    def _check_shape(X):
        return tuple(X.shape) if hasattr(X, "shape") else np.shape(X)

    def transform(self, X):
        """X with its missing entries filled in by the fitted model.

        Parameters
        ----------
        X : array of shape (n_samples, d_1, ..., d_k), or (n_samples, n_features)
            Any number of rows of the fitted row shape.

        Returns
        -------
        X_completed : array of X's shape, in X's namespace; observed entries are X's own.

        Raises
        ------
        ValueError
            When the model does not fold in new rows (see Notes) and X is not the fitted
            tensor but has missing entries.
        """
        check_is_fitted(self)
        X, missing, input_shape = self._check(X)
        xp = get_namespace(X)
        if not bool(xp.any(missing)):
            return xp.reshape(X, input_shape)
        if self._folds_in():
            completed = self._fold_in(X, missing)
        elif self._fit_digest is not None and self._digest(X, missing) == self._fit_digest:
            completed = self.reconstruction()
        else:
            raise ValueError(
                f"the fitted {self.summary_['model']} model (layout {self.layout_[0]}) does not "
                f"fold in new rows: it completes only the tensor it was fitted on. Models "
                f"that complete new rows: the families {', '.join(_FOLDING)} (not "
                f"ket-augmented) or estimators whose format is one of "
                f"{', '.join(c.__name__ for c in FOLD_IN_FORMATS)}"
            )
        return xp.reshape(xp.where(missing, completed, X), input_shape)

    def _fold_in(self, X, missing):
        xp = get_namespace(X)
        flat = xp.reshape(X, (X.shape[0], -1))
        observed = ~xp.reshape(missing, flat.shape)
        empty = int(xp.sum(~xp.any(observed, axis=1)))
        if empty:
            warnings.warn(
                f"{empty} row(s) of X have no observed entries (all missing); they are "
                f"filled with the model's mean row",
                UserWarning,
                stacklevel=3,
            )
        design, coefficients = row_model(self.decomposition_)
        design = xp.asarray(design, dtype=flat.dtype)
        coefficients = xp.asarray(coefficients, dtype=flat.dtype)
        if self._fit_X is None:
            fitted = fitted_mask = None
        else:
            fitted_mask = ~xp.isnan(self._fit_X)
            fitted = xp.where(fitted_mask, self._fit_X, 0).astype(flat.dtype, copy=False)
        ((_, rows),) = complete_rows(
            design,
            coefficients,
            fitted,
            fitted_mask,
            flat,
            observed,
            self.n_neighbors if fitted is not None else None,
            (self.alpha_,),
        )
        return xp.reshape(rows, X.shape)

    def reconstruction(self):
        """The model's values for every entry of the fitted tensor (observed ones included)."""
        check_is_fitted(self)
        return from_layout(self.decomposition_.to_tensor(), self.layout_, self.shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.three_d_array = True
        return tags
