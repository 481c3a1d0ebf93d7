"""The model families of tensor completion: one entry each, used by every estimator.

A :class:`Family` says how a model family fits and completes, how it is warm-started at a
larger rank, which ranks are tried in order, what its rank argument looks like for a given
tensor, whether it prefers a tensorized (ket-augmented) layout of image-like tensors, and how
its model is selected on held-out entries. :class:`~tnml.TensorImputer` selects models through
:func:`select`; :class:`~tnml.TensorCompletionRegressor` fits the families that can work from
coordinates alone (those with a ``complete`` function). Adding a family means adding one entry
to :data:`FAMILIES`.

Model selection is a pure function of the data and :class:`SearchOptions`: it returns a
:class:`Selection` (the fitted format, its rank, its held-out error, the layout the format is
fitted in and any other choices made) and sets no state anywhere.
"""

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from ..backend import get_namespace
from ..decompositions import (
    Observations,
    cp_als,
    cp_complete,
    fold_in,
    grow_rank,
    largest_singular_value,
    max_cp_rank,
    max_tt_rank,
    network_als,
    observed_error,
    pad_cp,
    pad_tr,
    pad_tt,
    pad_tucker,
    row_model,
    smooth_tucker_complete,
    soft_impute,
    split_mask,
    split_observations,
    t_svd,
    tnn_complete,
    tr_als,
    tr_complete,
    tt_als,
    tt_complete,
    tubal_complete,
    tubal_rank,
    tucker_complete,
    tucker_hooi,
)
from ..decompositions.fold_in import nearest_rows, neighbour_residuals
from ..metrics import rse

__all__ = [
    "Family",
    "FAMILIES",
    "AUTOMATIC",
    "SearchOptions",
    "Selection",
    "select",
    "to_layout",
    "from_layout",
    "default_layout",
    "family_ranks",
    "RowScoring",
    "choose_shrinkage",
    "shrinkage_prior",
    "complete_rows",
]

# Sweeps per rank on the way up a ladder: the ranks there only need to be good warm starts
# and fair held-out scores; the final fit on every observation gets the full budget.
_GROWTH_SWEEPS = 25
# A probe tries this many ranks of a ladder, with this many sweeps each (and the final fit).
_PROBE_RANKS = 4
_PROBE_SWEEPS = 5
# The 'smooth' family's grid, scored on held-out entries: the penalty order (1: edges, as in
# piecewise-flat hyperspectral fields; 2: smooth gradients, as in photographs) and its weight.
_SMOOTH_ORDERS = (1, 2)
_SMOOTH_WEIGHTS = (0.003, 0.03)
# Channel patterns kept by default: more cost time linearly and gain little beyond this.
_SMOOTH_MAX_RANK = 64


@dataclass(frozen=True)
class SearchOptions:
    """What a model selection may use: the estimator's settings, nothing else."""

    rank: int | None = None  # None: chosen on held-out entries
    max_rank: int | None = None  # the largest rank the held-out search tries
    max_iter: int = 50
    validation_fraction: float = 0.1
    random_state: Any = None
    tensorize: Any = "auto"
    # A cheap probe (few ranks and sweeps, one setting) to rank the families before the full
    # search spends its time on the leaders only.
    probe: bool = False
    deadline: float | None = None  # time.perf_counter() after which rank growth stops
    progress: Any = None  # progress(rank, validation_error) after every rank tried
    # Rows are samples: ranks of the families that fold in are scored by folding the rows in
    # (RowScoring) rather than by the joint fit's values at the held-out entries.
    rows: Any = None


@dataclass(frozen=True)
class RowScoring:
    """How held-out entries score a rank when rows are samples: each row's coefficients are
    folded in from its training entries (:func:`~tnml.decompositions.fold_in`), shrunk
    towards the mean coefficients of its ``n_neighbors`` nearest fitted rows (among at most
    ``max_reference`` of them, never itself) with the best of ``alphas``, as ``transform``
    completes new rows."""

    n_neighbors: int | None = 10
    alphas: tuple = (1e-8, 0.3, 3.0, 30.0, 300.0)
    max_reference: int = 2000
    random_state: Any = None


@dataclass(frozen=True)
class Selection:
    """The outcome of selecting one family's model on held-out entries."""

    format: Any
    rank: Any
    validation_rse: float
    layout: tuple = ("plain",)
    settings: dict = field(default_factory=dict)
    converged: bool = True  # whether the final fit stopped before its iteration cap
    n_iter: int = 0  # sweeps (or iterations) of the final fit


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes
    ----------
    name : str
    fit : callable
        The dense fitting function, ``fit(X, rank, mask=..., max_iter=..., ...)``.
    select : callable
        ``select(family, X, observed, options)`` returns a :class:`Selection`.
    complete : callable or None
        Completion from observations alone, ``complete(observations, rank, *, max_iter, tol,
        init, random_state, ridge, verbose)``; None for families that need the dense tensor.
    pad : callable or None
        ``pad(format, rank, random_state=...)``: the warm start at a larger rank.
    ladder : tuple of int
        Ranks tried in order by warm-started growth.
    rank : callable
        ``rank(r, shape)``: the family's rank argument for the ladder rank ``r`` (an int, or one
        per mode), clipped to what ``shape`` allows.
    tensorized : bool
        Whether image-like tensors are fitted in the ket-augmented layout under
        ``tensorize='auto'``.
    skip_reason : callable
        ``skip_reason(shape)``: why the family does not apply to a tensor of ``shape``, or
        None when it does.
    automatic : bool
        Whether ``model='auto'`` (and ``tnml demo``) tries this family; False for families
        too slow to try by default (structure search).
    folds_in : bool
        Whether new sample-axis rows fold in (:func:`~tnml.decompositions.fold_in`) with the
        fitted non-sample factors held fixed (in the plain layout).
    """

    name: str
    fit: Callable
    select: Callable
    complete: Callable | None = None
    pad: Callable | None = None
    ladder: tuple = ()
    rank: Callable = lambda r, shape: r
    tensorized: bool = False
    skip_reason: Callable = lambda shape: None
    automatic: bool = True
    folds_in: bool = False


# -- rank types ---------------------------------------------------------------------------------
def _tucker_rank(rank, shape):
    """One rank per mode, clipped to the mode sizes and to the product of the other ranks."""
    ranks = [min(rank, d) for d in shape]
    for _ in ranks:  # each pass can only lower ranks; len(ranks) passes reach the fixpoint
        ranks = [min(r, math.prod(ranks[:m] + ranks[m + 1 :])) for m, r in enumerate(ranks)]
    return tuple(ranks)


def _cp_rank(rank, shape):
    """An int capped where every ALS row problem stays overdetermined (``max_cp_rank``)."""
    return max(1, min(rank, max_cp_rank(shape)))


def _tr_rank(rank, shape):
    """An int capped so that every core has at most as many unknowns per slice (``r^2``) as
    the other modes give equations: rank ladders on small or tensorized shapes stop there."""
    smallest = min(math.prod(shape) // d for d in shape)
    return max(1, min(rank, math.isqrt(smallest)))


def _tubal_skip(shape):
    return (
        None
        if len(shape) == 3
        else (f"the tubal model needs a 3-way tensor, got shape {tuple(shape)}")
    )


def _smooth_skip(shape):
    if min(shape[:-1]) < 2:
        return (
            f"the smooth model needs every axis but the last of length >= 2 (they are "
            f"smoothed), got shape {tuple(shape)}"
        )
    return None


def _tt_rank(rank, shape):
    """An int capped at the largest bond this shape allows (larger ints mean the same TT)."""
    return min(rank, max(max_tt_rank(shape)))


def family_ranks(family, ranks, shape):
    """The distinct family ranks of the ladder ranks ``ranks``, in increasing order."""
    converted = []
    for r in ranks:
        value = family.rank(r, shape)
        if value not in converted:
            converted.append(value)
    return sorted(converted, key=lambda r: r if isinstance(r, int) else sum(r))


# -- layouts ------------------------------------------------------------------------------------
def default_layout(family, shape, tensorize):
    """The layout a family is fitted in: ('ket',) (ket-augmented) or ('plain',)."""
    image_like = len(shape) == 2 or (len(shape) == 3 and shape[2] <= 4)
    wanted = tensorize is True or (tensorize == "auto" and image_like and family.tensorized)
    return ("ket",) if wanted else ("plain",)


def to_layout(X, layout):
    """X in ``layout``: ('plain',), ('ket',) or ('transpose', order)."""
    if layout[0] == "ket":
        from ..tensorize import ket_augment

        return ket_augment(X)
    if layout[0] == "transpose":
        return get_namespace(X).transpose(X, tuple(layout[1]))
    return X


def from_layout(tensor, layout, shape):
    """The inverse of :func:`to_layout`, back to ``shape``."""
    xp = get_namespace(tensor)
    if layout[0] == "ket":
        from ..tensorize import ket_restore

        return ket_restore(tensor, shape)
    if layout[0] == "transpose":
        return xp.transpose(tensor, tuple(np.argsort(layout[1])))
    return xp.reshape(tensor, shape)


# -- selection ----------------------------------------------------------------------------------
def select(name, X, observed, options):
    """Select the model of family ``name`` for X (observed where ``observed``) on held-out
    entries; see :class:`Selection`."""
    family = FAMILIES[name]
    return family.select(family, X, observed, options)


def _grow(family, X, observed, options):
    """Warm-started rank growth on held-out observations (or the given rank); for a matrix
    of rows with a short side, also the soft-impute path (:func:`_soft_impute_path`), and
    the one of lower held-out error (on the same held-out entries)."""
    path = (
        family.name == "cp"
        and options.rows is not None
        and options.rank is None
        and not options.probe
        and X.ndim == 2
        and min(X.shape) <= _SOFT_IMPUTE_MAX_SIDE
        and (options.max_rank is None or options.max_rank >= 2)
    )
    if path and not isinstance(options.random_state, numbers.Integral):
        # One seed, so that both searches hold out the same entries.
        seed = int(check_random_state(options.random_state).randint(2**31 - 1))
        options = replace(options, random_state=seed)
    if not path:
        return _grow_ladder(family, X, observed, options)
    # The convex path wins on noisy data (a high rank, shrunk); the rank ladder's unshrunk fit
    # wins on exactly or nearly low-rank data. The ladder runs in full only where its probe
    # (its first ranks, few sweeps) comes near the convex path's held-out error.
    convex = _soft_impute_path(X, observed, options)
    probe = _grow_ladder(
        family, X, observed, replace(options, probe=True, max_iter=min(options.max_iter, 10))
    )
    if probe.validation_rse > _LADDER_MARGIN * convex.validation_rse:
        return convex
    ladder = _grow_ladder(family, X, observed, options)
    return min((ladder, convex), key=lambda selection: selection.validation_rse)


def _grow_ladder(family, X, observed, options):
    """Warm-started rank growth on held-out observations (or the given rank)."""
    layout = default_layout(family, X.shape, options.tensorize)
    tensor, mask = to_layout(X, layout), to_layout(observed, layout)
    observations = Observations.from_dense(tensor, mask)

    infos = []
    scored = options.rows is not None and family.folds_in and layout == ("plain",)
    alphas = {}
    split_seed = options.random_state
    if scored:
        # One seed for the split that grow_rank makes and for the same split here, whose
        # held-out values choose the shrinkage of the fold-in that scores each rank.
        if not isinstance(split_seed, numbers.Integral):
            split_seed = int(check_random_state(split_seed).randint(2**31 - 1))
        held_out_values = split_observations(observations, options.validation_fraction, split_seed)[
            1
        ]

    def fit(obs, rank, init):
        init = getattr(init, "format", init)
        fitted, info = _fit(obs, rank, init)
        if scored and obs is not observations:
            folded = _FoldedIn(fitted, obs, held_out_values, options.rows)
            alphas[_key(rank)] = folded.alpha
            return folded, info
        return fitted, info

    def _fit(obs, rank, init):
        sweeps = options.max_iter if obs is observations else _GROWTH_SWEEPS
        if options.probe:
            sweeps = _PROBE_SWEEPS
        fitted, info = family.complete(
            obs,
            rank,
            init="random" if init is None else init,
            max_iter=min(sweeps, options.max_iter),
            tol=1e-5,
            random_state=options.random_state,
        )
        infos.append(info)
        return fitted, info

    if options.rank is not None:
        rank = family.rank(options.rank, tensor.shape)
        train, held_out = split_observations(observations, options.validation_fraction, split_seed)
        fitted, _ = fit(train, rank, None)
        error = observed_error(fitted.entries, held_out)
        fitted, _ = fit(observations, rank, fitted)
    else:
        pad = partial(family.pad, random_state=options.random_state)
        ladder = family.ladder
        if options.max_rank is not None:
            ladder = tuple(r for r in ladder if r <= options.max_rank) or (options.max_rank,)
        if scored:
            ladder = _geometric(ladder)
        ladder = family_ranks(family, ladder, tensor.shape)
        fitted, rank, history = grow_rank(
            fit,
            lambda previous, rank: pad(getattr(previous, "format", previous), rank),
            observations,
            ladder[:_PROBE_RANKS] if options.probe else ladder,
            validation_fraction=options.validation_fraction,
            random_state=split_seed,
            patience=2,  # one bad warm start (ALS local minimum) must not end the search
            callback=None
            if options.progress is None
            else (lambda r, train_error, error: options.progress(r, error)),
            stop=None
            if options.deadline is None
            else (lambda: time.perf_counter() > options.deadline),
        )
        error = next(h[2] for h in history if h[0] == rank)  # the chosen rank's, not the min
    # The last fit is the final one, on every observation.
    return Selection(
        fitted,
        rank,
        float(error),
        layout,
        {"alpha": alphas[_key(rank)]} if _key(rank) in alphas else {},
        converged=infos[-1].converged,
        n_iter=infos[-1].n_iter,
    )


# A matrix of rows (the CP family of order 2) with a side this short or shorter is completed by
# soft-impute: one iteration is a Gram matrix of that side and its eigendecomposition.
_SOFT_IMPUTE_MAX_SIDE = 2048
# Its path: singular-value thresholds relative to the largest singular value, halved each step
# (warm-started), and the convergence tolerance of each step.
_SOFT_IMPUTE_THRESHOLDS = tuple(0.5**k for k in range(1, 12))
_SOFT_IMPUTE_TOL = 1e-5
# The rank ladder is searched in full next to it when its probe's held-out error is within
# this factor of the path's.
_LADDER_MARGIN = 1.25
# The path stops after this many thresholds in a row that lower the held-out error by less
# than this share (as grow_rank).
_PATIENCE = 2
_MIN_IMPROVEMENT = 0.01


def _soft_impute_rank(options):
    """Singular values soft-impute may keep: its format has one more component (the column
    means), and ``max_rank`` caps the format's rank."""
    return "auto" if options.max_rank is None else options.max_rank - 1


def _soft_impute_path(X, observed, options):
    """Choose the soft-impute threshold (and so the rank) of a matrix of rows on held-out
    entries, scored as ``transform`` completes rows (folded in with the nearest-row prior and
    correction, :func:`complete_rows`), on at most ``options.rows.max_reference`` rows.

    The regularisation path runs from a large threshold (a low rank, strong shrinkage) down,
    each fit warm-started from the previous one, and stops after two thresholds in a row fail
    to lower the held-out error by 1%, or at ``options.deadline``. The threshold of the lowest
    held-out error is refitted on every observation (warm-started): along a convex path a
    smaller threshold that scores lower is no more complex to fold in."""
    xp = get_namespace(X)
    scoring = options.rows
    seed = options.random_state
    if not isinstance(seed, numbers.Integral):
        seed = int(check_random_state(seed).randint(2**31 - 1))
    train, held = split_mask(observed, options.validation_fraction, seed)
    scale = largest_singular_value(X, train)
    n = X.shape[0]
    rows = xp.asarray(np.sort(np.random.default_rng(seed).permutation(n)[: scoring.max_reference]))
    values = xp.where(train, X, 0)[rows]
    mask = train[rows]
    held_rows, held_columns = xp.nonzero(held[rows])
    truth = X[rows][held_rows, held_columns]
    norm = max(float(xp.linalg.norm(truth)), 1e-300)
    reference = xp.arange(rows.shape[0])
    best, previous, misses, target = None, None, 0, math.inf
    for threshold in _SOFT_IMPUTE_THRESHOLDS:
        if previous is not None and options.deadline is not None:
            if time.perf_counter() > options.deadline:
                break
        fitted, _ = soft_impute(
            X,
            mask=train,
            alpha=threshold,
            init=previous,
            scale=scale,
            max_iter=options.max_iter,
            tol=_SOFT_IMPUTE_TOL,
            rank=_soft_impute_rank(options),
        )
        previous = fitted
        design, coefficients = row_model(fitted)
        error, alpha, _ = _best_fold_in(
            design,
            coefficients[rows],
            values,
            mask,
            scoring,
            (held_rows, held_columns),
            truth,
            reference,
        )
        error /= norm
        if options.progress is not None:
            options.progress(fitted.rank, error)
        if best is None or error < best[0]:
            best = (error, alpha, threshold, fitted)
        if error < (1 - _MIN_IMPROVEMENT) * target:
            target, misses = error, 0
        else:
            misses += 1
            if misses >= _PATIENCE:
                break
    error, alpha, threshold, fitted = best
    final, info = soft_impute(
        X,
        mask=observed,
        alpha=threshold,
        init=fitted,
        max_iter=options.max_iter,
        tol=_SOFT_IMPUTE_TOL,
        rank=_soft_impute_rank(options),
    )
    return Selection(
        final,
        final.rank,
        error,
        ("plain",),
        {"alpha": alpha, "solver": "soft-impute", "threshold": threshold},
        converged=info.converged,
        n_iter=info.n_iter,
    )


# Rows of samples: rank growth steps by at least this factor (every rank there is also scored
# by folding the rows in; the fold-in's shrinkage absorbs a rank between two steps).
_ROW_LADDER_STEP = 1.5


def _geometric(ladder):
    """The ranks of ``ladder`` that grow by at least ``_ROW_LADDER_STEP`` each."""
    kept = [ladder[0]]
    for rank in ladder[1:]:
        if rank >= _ROW_LADDER_STEP * kept[-1]:
            kept.append(rank)
    return tuple(kept)


def _key(rank):
    return tuple(rank) if isinstance(rank, (list, tuple)) else rank


def _dense_rows(observations):
    """Observations of a tensor with samples on axis 0 as dense rows: values (n, J), with 0
    where unobserved, the mask of observed entries, and each entry's (row, column)."""
    xp = get_namespace(observations.values)
    shape = observations.shape
    n, width = shape[0], math.prod(shape[1:])
    columns = xp.zeros(observations.indices.shape[0], dtype=xp.int64)
    for axis in range(1, len(shape)):
        columns = columns * shape[axis] + observations.indices[:, axis]
    rows = observations.indices[:, 0]
    values = xp.zeros((n, width), dtype=observations.values.dtype)
    mask = xp.zeros((n, width), dtype=bool)
    values[rows, columns] = observations.values
    mask[rows, columns] = True
    return values, mask, rows, columns


def shrinkage_prior(design, coefficients, values, mask, n_neighbors, reference=None):
    """What each row is shrunk towards when folded in, and its nearest fitted rows.

    The prior of a row is the mean coefficients of its ``n_neighbors`` nearest fitted rows
    (by their model values on the row's observed entries; among the fitted rows
    ``reference`` only, when given, and never the row of the same index), or of all fitted
    rows when ``n_neighbors`` is None or the row is empty.

    Returns
    -------
    prior : array of shape (n, R) or (R,)
    nearest : int array of shape (n, k), or None without neighbours
        Indices into the fitted rows (into ``reference`` when given).
    """
    xp = get_namespace(values)
    mean = xp.mean(coefficients, axis=0)
    if n_neighbors is None:
        return mean, None
    exclude = None
    if reference is not None:
        exclude = xp.full(values.shape[0], -1, dtype=xp.int64)
        exclude[reference] = xp.arange(reference.shape[0])
        coefficients = coefficients[reference]
    nearest = nearest_rows(coefficients @ design.T, values, mask, n_neighbors, exclude=exclude)
    prior = xp.mean(coefficients[nearest], axis=1)
    return xp.where(xp.any(mask, axis=1)[:, None], prior, mean), nearest


def complete_rows(
    design,
    coefficients,
    fitted,
    fitted_mask,
    values,
    mask,
    n_neighbors,
    alphas,
    entries=None,
    reference=None,
):
    """Fold rows in and add their nearest fitted rows' mean residual at ``entries``.

    A row's value at an entry is its folded-in model value plus the mean, over its nearest
    fitted rows that observed the entry, of their data minus model there (a
    nearest-neighbour correction of what the low-rank model misses). With a large ``alpha``
    this is a nearest-neighbour imputation, with a small one the row's own least squares.

    Parameters
    ----------
    design, coefficients : the fitted row model (:func:`~tnml.decompositions.row_model`)
    fitted, fitted_mask : arrays of shape (m, J)
        The fitted rows' data and where it is observed (for their residuals).
    values, mask : arrays of shape (n, J)
        The rows to complete and where they are observed.
    n_neighbors : int or None
    alphas : sequence of float
        Shrinkage strengths; one completion per value is yielded.
    entries : (rows, columns) int arrays, optional
        The entries corrected (default: the unobserved entries of ``values``).
    reference : int array, optional
        See :func:`shrinkage_prior`.

    Yields
    ------
    alpha, completed : float and array of shape (n, J)
    """
    xp = get_namespace(values)
    prior, nearest = shrinkage_prior(
        design, coefficients, values, mask, n_neighbors, reference=reference
    )
    if entries is None:
        entries = xp.nonzero(~mask)
    rows, columns = entries
    correction = None
    if nearest is not None:
        chosen = slice(None) if reference is None else reference
        residuals = fitted[chosen] - coefficients[chosen] @ design.T
        correction = neighbour_residuals(residuals, fitted_mask[chosen], nearest, rows, columns)
        # An empty row has no nearest rows (every row is as near): it gets the mean row.
        correction = xp.where(xp.any(mask, axis=1)[rows], correction, 0)
    # One set of Gram matrices for every alpha.
    solutions = fold_in(design, values, mask, prior=prior, alpha=tuple(alphas))
    for alpha, coefficients_ in zip(alphas, solutions):
        completed = coefficients_ @ design.T
        if correction is not None:
            completed[rows, columns] += correction
        yield alpha, completed


def _best_fold_in(design, coefficients, values, mask, scoring, entries, truth, reference):
    """Rows completed by folding them in, at the shrinkage of ``scoring.alphas`` whose values
    at ``entries`` (a pair of index arrays) come closest to ``truth``: ``(error, alpha,
    completed)``, the error an absolute norm."""
    xp = get_namespace(values)
    best = None
    for alpha, completed in complete_rows(
        design,
        coefficients,
        values,
        mask,
        values,
        mask,
        scoring.n_neighbors,
        scoring.alphas,
        entries=entries,
        reference=reference,
    ):
        error = float(xp.linalg.norm(completed[entries] - truth))
        if best is None or error < best[0]:
            best = (error, alpha, completed)
    return best


# A fold-in whose held-out relative error is below this fits to rounding.
_EXACT = 1e-6


class _FoldedIn:
    """A fitted format whose ``entries`` are the values of its rows folded in from the
    training observations, as :class:`~tnml.TensorImputer` completes new rows (the score
    of a rank when rows are samples). ``format`` is the fitted format itself."""

    def __init__(self, format, train, held_out, scoring):
        self.format = format
        xp = get_namespace(train.values)
        values, mask, _, _ = _dense_rows(train)
        design, coefficients = row_model(format)
        n = values.shape[0]
        rng = np.random.default_rng(
            scoring.random_state if isinstance(scoring.random_state, int) else 0
        )
        reference = xp.asarray(np.sort(rng.permutation(n)[: scoring.max_reference]))
        _, _, rows, columns = _dense_rows(held_out)
        error, self.alpha, self._rows = _best_fold_in(
            design,
            coefficients,
            values,
            mask,
            scoring,
            (rows, columns),
            held_out.values,
            reference,
        )
        # A fold-in exact to rounding (exact low-rank data) scores the joint fit instead, so
        # that ranks past the true one do not win on rounding noise.
        self._joint = error <= _EXACT * float(xp.linalg.norm(held_out.values))

    def entries(self, indices):
        if self._joint:
            return self.format.entries(indices)
        xp = get_namespace(self._rows)
        columns = xp.zeros(indices.shape[0], dtype=xp.int64)
        for axis in range(1, len(self.format.shape)):
            columns = columns * self.format.shape[axis] + indices[:, axis]
        return self._rows[indices[:, 0], columns]


def choose_shrinkage(format, X, observed, scoring, validation_fraction):
    """The fold-in shrinkage ``alpha`` of ``scoring.alphas`` that best predicts a held-out
    ``validation_fraction`` of the observed entries of X (rows = samples) from the others,
    for a ``format`` fitted to X."""
    observations = Observations.from_dense(X, observed)
    train, held_out = split_observations(observations, validation_fraction, scoring.random_state)
    return _FoldedIn(format, train, held_out, scoring).alpha


def _split_mask(observed, options):
    """A random ``validation_fraction`` of the observed entries held out: (train, held_out)."""
    return split_mask(observed, options.validation_fraction, options.random_state)


def _tnn(X, observed, order, transform, options):
    """TNN completion of X with the tubes along ``order[-1]``, back in X's axis order."""
    xp = get_namespace(X)
    completed, info = tnn_complete(
        xp.transpose(xp.where(observed, X, 0), order),
        mask=xp.transpose(observed, order),
        transform=transform,
        max_iter=options.max_iter * (2 if options.probe else 4),
        tol=1e-5,
    )
    return xp.transpose(completed.to_tensor(), tuple(np.argsort(order))), info


def _select_tubal(family, X, observed, options):
    """TNN completion; the tube axis and transform are chosen on held-out entries."""
    xp = get_namespace(X)
    if _tubal_skip(X.shape):
        raise ValueError(_tubal_skip(X.shape))
    train, held_out = _split_mask(observed, options)
    best = None
    # A probe tries the last axis as tubes (channels, frames, bands) with the DCT only.
    for tube_axis in (2,) if options.probe else range(3):
        for transform in ("dct",) if options.probe else ("dct", "fft"):
            order = tuple(a for a in range(3) if a != tube_axis) + (tube_axis,)
            completed, info = _tnn(X, train, order, transform, options)
            error = rse(X, completed, mask=held_out)
            if best is None or error < best[0]:
                best = (error, order, transform)
    error, order, transform = best
    if not options.probe:  # a probe only ranks the family: its training fit will do
        completed, info = _tnn(X, observed, order, transform, options)
    completed = xp.transpose(completed, order)
    # TNN chooses its own rank; a given rank truncates its t-SVD there.
    rank = options.rank or tubal_rank(completed, rtol=1e-3, transform=transform)
    return Selection(
        t_svd(completed, rank=rank, transform=transform)[0],
        rank,
        error,
        ("transpose", order),
        converged=info.converged,
        n_iter=info.n_iter,
    )


def _select_smooth(family, X, observed, options):
    """Smooth Tucker completion; penalty order, weight (and, for matrices, whether the columns
    are channels or a second ordered axis) chosen on held-out entries."""
    train, held_out = _split_mask(observed, options)
    # A matrix's columns may be channels or a second ordered axis (smoothed: needs length 2).
    feature_axes = (None, -1) if X.ndim == 2 and X.shape[1] >= 2 else (-1,)
    best = None
    for feature_axis in feature_axes:
        channels = 1 if feature_axis is None else X.shape[feature_axis]
        rank = min(options.rank or options.max_rank or _SMOOTH_MAX_RANK, channels)
        for order in _SMOOTH_ORDERS[-1:] if options.probe else _SMOOTH_ORDERS:
            for weight in _SMOOTH_WEIGHTS[-1:] if options.probe else _SMOOTH_WEIGHTS:
                settings = {
                    "feature_axis": feature_axis,
                    "rank": rank,
                    "order": order,
                    "smoothness": weight,
                }
                fitted, info = smooth_tucker_complete(
                    X, mask=train, max_iter=options.max_iter, **settings
                )
                error = rse(X, fitted.to_tensor(), mask=held_out)
                if best is None or error < best[0]:
                    best = (error, settings, fitted, info)
    error, settings, fitted, info = best
    if not options.probe:  # a probe only ranks the family: its training fit will do
        fitted, info = smooth_tucker_complete(
            X, mask=observed, max_iter=options.max_iter, **settings
        )
    return Selection(
        fitted, settings["rank"], error, ("plain",), settings, info.converged, info.n_iter
    )


# Structure search inside TensorImputer: TnALE over the fully connected graph, bond ranks up to
# ``rank`` (default below), a budget that keeps a search to minutes on a laptop.
_SEARCH_MAX_RANK = 4
_SEARCH_EVALUATIONS = 100


def _select_search(family, X, observed, options):
    """Tensor-network structure search (:class:`~tnml.StructureSearch`, TnALE) scored on
    held-out entries; the best network is refitted on every observed entry."""
    from ..structure_search import StructureSearch

    xp = get_namespace(X)
    layout = default_layout(family, X.shape, options.tensorize)
    tensor = to_layout(xp.where(observed, X, xp.nan), layout)
    search = StructureSearch(
        "tnale",
        max_rank=options.rank or options.max_rank or _SEARCH_MAX_RANK,
        max_evaluations=_SEARCH_EVALUATIONS,
        max_iter=options.max_iter,
        validation_fraction=options.validation_fraction,
        random_state=options.random_state,
    ).fit(tensor)
    return Selection(
        search.best_network_,
        search.best_structure_.tolist(),
        search.reconstruction_error_,
        layout,
        {"n_evaluations": search.n_evaluations_},
    )


_LADDER = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128)

FAMILIES = {
    "cp": Family(
        "cp",
        fit=cp_als,
        select=_grow,
        complete=cp_complete,
        pad=pad_cp,
        folds_in=True,
        ladder=_LADDER,
        rank=_cp_rank,
    ),
    "tucker": Family(
        "tucker",
        fit=tucker_hooi,
        select=_grow,
        complete=tucker_complete,
        pad=pad_tucker,
        folds_in=True,
        ladder=_LADDER[:16],
        rank=_tucker_rank,
    ),
    "tt": Family(
        "tt",
        fit=tt_als,
        select=_grow,
        complete=tt_complete,
        pad=pad_tt,
        ladder=(1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48),
        rank=_tt_rank,
        tensorized=True,
        folds_in=True,
    ),
    "tr": Family(
        "tr",
        fit=tr_als,
        select=_grow,
        complete=tr_complete,
        pad=pad_tr,
        ladder=(1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20),
        rank=_tr_rank,
        tensorized=True,
        folds_in=True,
    ),
    "tubal": Family("tubal", fit=tubal_complete, select=_select_tubal, skip_reason=_tubal_skip),
    "smooth": Family(
        "smooth", fit=smooth_tucker_complete, select=_select_smooth, skip_reason=_smooth_skip
    ),
    "search": Family(
        "search", fit=network_als, select=_select_search, tensorized=True, automatic=False
    ),
}

# The families ``model='auto'`` tries, in order.
AUTOMATIC = tuple(name for name, family in FAMILIES.items() if family.automatic)
