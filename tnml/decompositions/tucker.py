"""Tucker format, HOSVD and HOOI.

HOOI updates each factor from the leading left singular vectors of the tensor projected on all
other factors. The projections share work through the same two-level dimension tree as CP-ALS:
the modes are cut into a left and a right group, the tensor is projected once on the other
group's factors (one pass over X), and each mode of the group is finished from that much smaller
partial result. A sweep streams the tensor twice, whatever its order. A mode whose rank is
``None`` is left uncompressed (its factor is the identity and is not stored): this is the
"partial Tucker" used when one mode holds samples.
"""

import math
import numbers

from .._validation import check_masked_tensor, check_positive_int
from ..backend import check_random_state, get_namespace, to_device
from ._base import FactorizedTensor
from ._fitting import (
    check_fit_params,
    check_missing,
    em_sweeps,
    expanded_error,
    fit_sweeps,
    truncation_result,
    with_restarts,
)
from ._linalg import (
    PAD_SCALE,
    khatri_rao,
    leading_left_singular_vectors,
    mode_dot,
    pad_array,
    split_point,
    unfold,
)
from ._masked import Observations, SweepLog, solve_rowwise

__all__ = [
    "TuckerTensor",
    "hosvd",
    "tucker_hooi",
    "tucker_complete",
    "pad_tucker",
    "random_tucker",
    "check_tucker_rank",
]

# Bound on the (entries, prod(other ranks)) Kronecker rows behind one block of design rows.
_DESIGN_BYTES = 32 * 2**20


class TuckerTensor(FactorizedTensor):
    """A tensor in Tucker format: ``X = core x_1 U_1 x_2 U_2 ... x_N U_N``.

    Parameters
    ----------
    core : array of shape (R_1, ..., R_N)
    factors : list of arrays of shape (I_n, R_n), or None for an uncompressed mode (identity)

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import TuckerTensor
    >>> t = TuckerTensor(np.ones((2, 2)), [np.eye(3)[:, :2], None])
    >>> t.shape, t.rank
    ((3, 2), (2, 2))
    """

    _array_names = ("core", "factors")

    def __init__(self, core, factors):
        factors = list(factors)
        if getattr(core, "ndim", None) != len(factors):
            raise ValueError(
                f"core must have one axis per factor ({len(factors)}), got "
                f"shape {getattr(core, 'shape', None)}"
            )
        for mode, factor in enumerate(factors):
            if factor is not None and (factor.ndim != 2 or factor.shape[1] != core.shape[mode]):
                raise ValueError(
                    f"factors[{mode}] must have shape (I, {core.shape[mode]}), got {factor.shape}"
                )
        self.core, self.factors = core, factors

    def _arrays(self):
        return [self.core] + [f for f in self.factors if f is not None]

    @property
    def shape(self):
        return tuple(r if f is None else f.shape[0] for r, f in zip(self.core.shape, self.factors))

    @property
    def rank(self):
        return tuple(self.core.shape)

    def _to_tensor_bytes(self):
        # Mode products run in order; each intermediate has the full sizes of the modes done
        # so far and the ranks of the others, and can exceed the result when a factor has
        # fewer rows than columns.
        sizes, largest = list(self.core.shape), 0
        for mode, factor in enumerate(self.factors):
            if factor is not None:
                sizes[mode] = factor.shape[0]
                largest = max(largest, math.prod(sizes))
        return max(largest, math.prod(self.core.shape)) * self.dtype.itemsize

    def _to_tensor(self):
        result = self.core
        for mode, factor in enumerate(self.factors):
            if factor is not None:
                result = mode_dot(result, factor, mode)
        return result

    def entries(self, indices):
        indices = self._checked_indices(indices)
        xp = self.xp
        # Contract the core with one factor row per mode, smallest memory first: (n, R...) ->
        # never more than n * prod(R[1:]) numbers, never the dense tensor.
        rows = [
            xp.eye(r, dtype=self.core.dtype)[indices[:, m]] if f is None else f[indices[:, m]]
            for m, (r, f) in enumerate(zip(self.core.shape, self.factors))
        ]
        result = xp.reshape(
            rows[0] @ xp.reshape(self.core, (self.core.shape[0], -1)), (-1,) + self.core.shape[1:]
        )
        for row in rows[1:]:
            result = xp.sum(result * xp.reshape(row, row.shape + (1,) * (result.ndim - 2)), axis=1)
        return result

    def norm(self):
        xp = self.xp
        core = self.core
        for mode, factor in enumerate(self.factors):
            if factor is not None:
                # ||G x_n U|| = ||G x_n R|| with U = QR: contract with the small Cholesky-like
                # square root of U^T U instead of U itself.
                gram = factor.T @ factor
                evals, evecs = xp.linalg.eigh(gram)
                root = (evecs * xp.sqrt(xp.clip(evals, 0, None))) @ evecs.T
                core = mode_dot(core, root, mode)
        return xp.linalg.norm(core)

    def to_tensorly(self):
        """The equivalent :class:`tensorly.tucker_tensor.TuckerTensor` (identity factors filled)."""
        from tensorly.tucker_tensor import TuckerTensor as TLTuckerTensor

        xp = self.xp
        factors = [
            xp.eye(r, dtype=self.core.dtype) if f is None else f
            for r, f in zip(self.core.shape, self.factors)
        ]
        return TLTuckerTensor((self.core, factors))

    @classmethod
    def from_tensorly(cls, tucker_tensor):
        """Build from a TensorLy Tucker tensor or a ``(core, factors)`` pair."""
        core, factors = tucker_tensor
        return cls(core, list(factors))

    def _map_arrays(self, func):
        return TuckerTensor(func(self.core), [None if f is None else func(f) for f in self.factors])


def check_tucker_rank(rank, shape):
    """Validate a Tucker rank: int (all modes), or one int or None (uncompressed) per mode."""
    if rank is None or isinstance(rank, numbers.Integral) and not isinstance(rank, bool):
        rank = [rank] * len(shape)
    try:
        rank = list(rank)
    except TypeError:
        raise TypeError(f"rank must be an int or a sequence of ints/None, got {rank!r}") from None
    if len(rank) != len(shape):
        raise ValueError(
            f"rank must have {len(shape)} entries (one per mode of a tensor of "
            f"shape {tuple(shape)}), got {len(rank)}"
        )
    checked = [
        None if r is None else check_positive_int(r, f"rank[{mode}]", upper=shape[mode])
        for mode, r in enumerate(rank)
    ]
    full = [shape[m] if r is None else r for m, r in enumerate(checked)]
    for mode, r in enumerate(full):
        if checked[mode] is None:  # an uncompressed mode may be redundant; that is allowed
            continue
        others = math.prod(full[:mode] + full[mode + 1 :])
        if r > others:
            raise ValueError(
                f"rank[{mode}]={r} exceeds the product of the other ranks "
                f"({others}); no Tucker core can have that multilinear rank"
            )
    return checked


def random_tucker(shape, rank, random_state=None, xp=None, dtype="float64"):
    """A Tucker tensor with a Gaussian core and orthonormal factors (drawn on the host)."""
    import numpy as np

    rng = check_random_state(random_state)
    xp = np if xp is None else xp
    rank = check_tucker_rank(rank, shape)
    full = [shape[m] if r is None else r for m, r in enumerate(rank)]
    core = to_device(rng.standard_normal(full).astype(dtype), xp)
    factors = [
        None
        if r is None
        else to_device(np.linalg.qr(rng.standard_normal((dim, r)))[0].astype(dtype), xp)
        for dim, r in zip(shape, rank)
    ]
    return TuckerTensor(core, factors)


def _project(X, factors, skip=()):
    """``X x_m U_m^T`` for every mode not in ``skip`` with a factor; last modes first."""
    result = X
    for mode in reversed(range(len(factors))):
        if mode not in skip and factors[mode] is not None:
            result = mode_dot(result, factors[mode].T, mode)
    return result


def hosvd(X, rank):
    """Truncated higher-order SVD: leading singular vectors of each unfolding, then the core.

    Parameters
    ----------
    X : array of shape (I_1, ..., I_N)
    rank : int or sequence of (int or None)
        Multilinear rank; None leaves a mode uncompressed.

    Returns
    -------
    tucker : TuckerTensor
    result : FitResult
        One pass; ``errors`` holds the relative error of the truncation.

    Examples
    --------
    >>> from tnml.decompositions import hosvd, random_tucker
    >>> X = random_tucker((6, 7, 8), (2, 3, 4), random_state=0).to_tensor()
    >>> t, result = hosvd(X, (2, 3, 4))
    >>> bool(abs(t.norm() - (X ** 2).sum() ** 0.5) < 1e-10)
    True
    """
    X, _ = check_masked_tensor(X, None)
    rank = check_tucker_rank(rank, X.shape)
    factors = [
        None if r is None else leading_left_singular_vectors(unfold(X, m), r)
        for m, r in enumerate(rank)
    ]
    tucker = TuckerTensor(_project(X, factors), factors)
    # Orthonormal factors: the model is an orthogonal projection of X, its norm the core's.
    xp = get_namespace(X)
    return tucker, truncation_result(
        X, tucker, float(xp.linalg.norm(xp.reshape(tucker.core, (-1,))))
    )


def _initial_factors(X, rank, init, random_state):
    xp = get_namespace(X)
    if isinstance(init, str):
        if init == "svd":
            return [
                None if r is None else leading_left_singular_vectors(unfold(X, m), r)
                for m, r in enumerate(rank)
            ]
        if init == "random":
            return random_tucker(X.shape, rank, random_state, xp, X.dtype).factors
        raise ValueError(f"init must be 'svd', 'random' or a TuckerTensor, got {init!r}")
    start = init if isinstance(init, TuckerTensor) else TuckerTensor.from_tensorly(init)
    if start.shape != X.shape or start.rank != tuple(
        X.shape[m] if r is None else r for m, r in enumerate(rank)
    ):
        raise ValueError(
            f"init has shape {start.shape} and rank {start.rank}, which does not "
            f"match X's shape {X.shape} and rank {tuple(rank)}"
        )
    return [
        None if r is None else xp.linalg.qr(xp.asarray(f, dtype=X.dtype))[0]
        for r, f in zip(rank, start.factors)
    ]


@with_restarts
def tucker_hooi(
    X,
    rank,
    *,
    mask=None,
    missing="als",
    max_iter=100,
    tol=1e-8,
    init="svd",
    random_state=None,
    alpha=1e-8,
    verbose=0,
):
    """Tucker decomposition by higher-order orthogonal iteration (HOOI).

    Parameters
    ----------
    X : array of shape (I_1, ..., I_N), N >= 2
    rank : int or sequence of (int or None)
        Multilinear rank, ``R_n <= I_n``; None leaves mode n uncompressed.
    mask : bool array of X's shape, optional
        True where observed; unobserved entries may hold NaN.
    missing : {'als', 'em'}, default='als'
        How a mask is used. 'als': factor rows and core are fitted to the observed entries
        only (:func:`tucker_complete`); 'em': unobserved entries are imputed by the model at
        each sweep and HOOI runs on the result.
    max_iter : int, default=100
    tol : float, default=1e-8
        Stop when the relative error changes by less than ``tol``.
    init : {'svd', 'random'} or TuckerTensor, default='svd'
        Under a mask, 'svd' uses the zero-filled tensor.
    n_init : int, default=1
        Number of starts: ``init``, then random ones drawn from ``random_state``; the lowest
        training error wins (one start when ``init`` is a TuckerTensor).
    random_state : None, int or RandomState
    alpha : float, default=1e-8
        Ridge penalty of the row-wise normal equations of ``missing='als'``, absolute (added to
        their diagonal as is); unused otherwise.
    verbose : int, default=0

    Returns
    -------
    tucker : TuckerTensor
        Orthonormal factors and the core.
    info : FitResult

    References
    ----------
    De Lathauwer, De Moor & Vandewalle, "On the best rank-1 and rank-(R1,...,RN) approximation
    of higher-order tensors", SIAM J. Matrix Anal. Appl. 21(4), 2000.

    Examples
    --------
    >>> from tnml.decompositions import random_tucker, tucker_hooi
    >>> X = random_tucker((8, 9, 10), (2, 3, 4), random_state=0).to_tensor()
    >>> tucker, info = tucker_hooi(X, (2, 3, 4))
    >>> info.error < 1e-10
    True
    """
    X, mask = check_masked_tensor(X, mask)
    rank = check_tucker_rank(rank, X.shape)
    tol, alpha = check_fit_params(max_iter, tol, verbose, alpha)
    check_missing(missing)
    factors = _initial_factors(X, rank, init, random_state)
    if mask is not None and missing == "als":
        return tucker_complete(
            Observations.from_dense(X, mask),
            rank,
            max_iter=max_iter,
            tol=tol,
            init=TuckerTensor(_project(X, factors), factors),
            alpha=alpha,
            verbose=verbose,
        )
    split = split_point(X.shape)
    log = SweepLog(None, None, "tucker_hooi", verbose)

    def sweep(target, state, iteration):
        factors, core = _hooi_sweep(target, state[1], rank, split)
        return core, factors

    def to_dense(state):
        return TuckerTensor(*state).to_tensor()

    if mask is not None:
        # The first sweep sees zeros at the unobserved entries; later ones the model's values.
        state, info = em_sweeps(
            X,
            mask,
            (None, factors),
            sweep,
            to_dense,
            impute_start=False,
            max_iter=max_iter,
            tol=tol,
            log=log,
        )
        return TuckerTensor(*state), info
    xp = get_namespace(X)
    norm_sq = (float(xp.linalg.norm(X)) or 1.0) ** 2
    state = (None, factors)

    def step(iteration):
        nonlocal state
        state = sweep(X, state, iteration)
        # Orthonormal factors: ||X - X_hat||^2 = ||X||^2 - ||core||^2 (exact unless it cancels).
        error = expanded_error(norm_sq - float(xp.sum(state[0] ** 2)), norm_sq, X.dtype)
        if error is None:
            error = float(xp.linalg.norm(X - to_dense(state))) / math.sqrt(norm_sq)
        return None, error

    info = fit_sweeps(step, max_iter, tol, log, X.dtype)
    return TuckerTensor(*state), info


def _hooi_sweep(X, factors, rank, split):
    """Update every compressed mode once; returns the new factors and the core."""
    factors = list(factors)
    n_modes = X.ndim
    groups = [range(split), range(split, n_modes)]
    projected = None
    for group in groups:
        others = [m for m in range(n_modes) if m not in group]
        partial = _project(X, factors, skip=group)  # one pass over X
        for mode in group:
            if rank[mode] is None:
                continue
            projected = _project(partial, factors, skip=others + [mode])
            factors[mode] = leading_left_singular_vectors(unfold(projected, mode), rank[mode])
            last_mode = mode
    if projected is None:  # every mode uncompressed
        return factors, X
    return factors, mode_dot(projected, factors[last_mode].T, last_mode)


@with_restarts
def tucker_complete(
    observations,
    rank,
    *,
    max_iter=100,
    tol=1e-6,
    init="random",
    random_state=None,
    alpha=1e-8,
    verbose=0,
    validation=None,
):
    """Tucker completion by ALS over the observed entries only (never densifies).

    A sweep solves each factor row by row (:func:`~tnml.decompositions._masked.solve_rowwise`;
    the design row of an entry is the core contracted with the other factors' rows at its
    coordinates), then makes the factors orthonormal (their triangular parts go into the
    core, so the model is unchanged) and solves the core as one ridge least-squares problem
    over all entries. Cost per sweep ``O(n_obs * (sum_n R_n^2 + prod(R)^2))``.

    Parameters
    ----------
    observations : Observations
    rank : int or sequence of (int or None)
        Multilinear rank; None leaves a mode uncompressed (identity factor).
    max_iter : int, default=100
    tol : float, default=1e-6
        Stop when the relative training error changes by less than ``tol`` between sweeps.
    init : 'random' or TuckerTensor, default='random'
        Orthonormal random factors and a Gaussian core scaled to the data, or a start of this
        shape and rank (a warm start, e.g. from :func:`pad_tucker`).
    n_init : int, default=1
        Number of starts: ``init`` first, then random ones drawn from ``random_state``; the fit
        with the lowest final error (held-out when ``validation`` is given) is kept. A start
        that fits to rounding ends the search.
    random_state : None, int or RandomState
    alpha : float, default=1e-8
        Ridge penalty of every normal equation, absolute (added to its diagonal as is).
    verbose : int, default=0
    validation : Observations, optional
        Held-out entries whose relative error is recorded after each sweep.

    Returns
    -------
    tucker : TuckerTensor
        Orthonormal factors and the core.
    info : FitResult
        ``errors`` over the observed entries, ``validation_errors`` over ``validation``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import Observations, random_tucker, tucker_complete
    >>> truth = random_tucker((15, 16, 17), (2, 3, 2), random_state=0)
    >>> coords = np.random.default_rng(0).integers(0, 15, size=(1500, 3))
    >>> obs = Observations(coords, truth.entries(coords), truth.shape)
    >>> tucker, info = tucker_complete(obs, (2, 3, 2), tol=1e-12, max_iter=200,
    ...                                random_state=0)
    >>> info.error < 1e-6
    True
    """
    shape = observations.shape
    rank = check_tucker_rank(rank, shape)
    tol, alpha = check_fit_params(max_iter, tol, verbose, alpha)
    xp = get_namespace(observations.values)
    core, factors = _initial_complete(observations, rank, init, random_state)
    columns = [observations.column(mode) for mode in range(len(shape))]

    def step(iteration):
        nonlocal core, factors
        for mode, mode_rank in enumerate(rank):
            if mode_rank is not None:
                design = _factor_design(core, factors, columns, mode)
                factors[mode] = solve_rowwise(
                    observations, mode, design, shape[mode], mode_rank, alpha
                )
        core, factors = _orthonormalize(core, factors)
        design = _core_design(factors, columns, core)
        core = xp.reshape(
            solve_rowwise(observations, None, design, 1, math.prod(core.shape), alpha), core.shape
        )
        return TuckerTensor(core, factors), None

    info = fit_sweeps(
        step,
        max_iter,
        tol,
        SweepLog(observations, validation, "tucker_complete", verbose),
        observations.values.dtype,
    )
    return TuckerTensor(core, factors), info


def _factor_matrices(factors, core):
    """Every mode's factor, the identity standing in for an uncompressed mode."""
    xp = get_namespace(core)
    return [xp.eye(r, dtype=core.dtype) if f is None else f for r, f in zip(core.shape, factors)]


def _factor_rows(matrices, columns, positions, modes):
    """Rows of the ``modes``' factor matrices at the observations ``positions``."""
    xp = get_namespace(*matrices)
    return [xp.take(matrices[m], xp.take(columns[m], positions), axis=0) for m in modes]


def _row_kron(rows):
    """Row-wise Kronecker product (row ``j`` is ``kron(rows[0][j], rows[1][j], ...)``)."""
    return khatri_rao([r.T for r in rows]).T


def _blockwise(func, positions, row_bytes):
    """``func(positions)`` evaluated in blocks whose temporaries stay under _DESIGN_BYTES."""
    xp = get_namespace(positions)
    block = max(1, _DESIGN_BYTES // row_bytes)
    if positions.shape[0] <= block:
        return func(positions)
    return xp.concatenate(
        [func(positions[begin : begin + block]) for begin in range(0, positions.shape[0], block)]
    )


def _factor_design(core, factors, columns, mode):
    """Design rows of ``mode``: the core contracted with the other factors' rows."""
    xp = get_namespace(core)
    others = [m for m in range(core.ndim) if m != mode]
    # Core as a (prod(other ranks), R_mode) matrix, its rows in the Kronecker order below.
    matrix = xp.reshape(xp.moveaxis(core, mode, -1), (-1, core.shape[mode]))

    matrices = _factor_matrices(factors, core)

    def design_rows(positions):
        def block(part):
            if not others:
                return xp.ones((part.shape[0], 1), dtype=core.dtype) @ matrix
            return _row_kron(_factor_rows(matrices, columns, part, others)) @ matrix

        return _blockwise(block, positions, matrix.shape[0] * core.dtype.itemsize)

    return design_rows


def _core_design(factors, columns, core):
    """Design rows of the core: the Kronecker product of all factors' rows (C order)."""
    matrices = _factor_matrices(factors, core)
    modes = range(core.ndim)

    def design_rows(positions):
        return _row_kron(_factor_rows(matrices, columns, positions, modes))

    return design_rows


def _orthonormalize(core, factors):
    """Orthonormal factors by QR, the triangular parts pushed into the core: same tensor."""
    factors = list(factors)
    for mode, factor in enumerate(factors):
        if factor is not None:
            q, r = get_namespace(factor).linalg.qr(factor)
            factors[mode] = q
            core = mode_dot(core, r, mode)
    return core, factors


def _initial_complete(observations, rank, init, random_state):
    """Core and factors for :func:`tucker_complete`, in the observations' namespace."""
    values = observations.values
    xp = get_namespace(values)
    shape = observations.shape
    if isinstance(init, str):
        if init != "random":
            raise ValueError(f"init must be 'random' or a TuckerTensor, got {init!r}")
        start = random_tucker(shape, rank, random_state, xp, values.dtype)
        # Orthonormal factors: the mean square of all entries is ||core||^2 / prod(shape);
        # match it to the observed mean square.
        mean_square = float(xp.sum(values * values)) / observations.n_obs or 1.0
        core_sq = float(xp.sum(start.core * start.core)) or 1.0
        scale = math.sqrt(mean_square * math.prod(shape) / core_sq)
        return start.core * scale, list(start.factors)
    if not isinstance(init, TuckerTensor):
        raise TypeError(f"init must be 'random' or a TuckerTensor, got {type(init).__name__}")
    full = tuple(shape[m] if r is None else r for m, r in enumerate(rank))
    if init.shape != shape or init.rank != full:
        raise ValueError(
            f"init has shape {init.shape} and rank {init.rank}; expected {shape} and {full}"
        )
    if [f is None for f in init.factors] != [r is None for r in rank]:
        raise ValueError("init must leave uncompressed exactly the modes whose rank is None")
    core = xp.asarray(init.core, dtype=values.dtype)
    factors = [None if f is None else xp.asarray(f, dtype=values.dtype) for f in init.factors]
    return _orthonormalize(core, factors)


def pad_tucker(tucker, new_rank, scale=PAD_SCALE, random_state=None):
    """Warm start of a higher multilinear rank: ``tucker`` with extra orthonormal columns.

    The new factor columns are random and orthogonal to the old ones; the new core entries
    are Gaussian with ``scale`` times the root mean square of the old core, so the padded
    tensor is ``tucker`` plus a small perturbation.

    Parameters
    ----------
    tucker : TuckerTensor
    new_rank : int or sequence of (int or None)
        At least ``tucker.rank`` in every compressed mode; None where ``tucker`` has an
        uncompressed mode.
    scale : float, default=1e-3
    random_state : None, int or RandomState

    Returns
    -------
    TuckerTensor

    Examples
    --------
    >>> from tnml.decompositions import pad_tucker, random_tucker
    >>> pad_tucker(random_tucker((5, 6, 7), 2, random_state=0), (3, 4, 2)).rank
    (3, 4, 2)
    """
    shape = tucker.shape
    new_rank = check_tucker_rank(new_rank, shape)
    core, factors = _orthonormalize(tucker.core, tucker.factors)
    xp = get_namespace(core)
    rng = check_random_state(random_state)
    full = tuple(shape[m] if r is None else r for m, r in enumerate(new_rank))
    if any(new < old for new, old in zip(full, core.shape)) or [f is None for f in factors] != [
        r is None for r in new_rank
    ]:
        raise ValueError(
            f"new_rank={tuple(new_rank)} must keep the uncompressed modes and be "
            f"at least the current rank {core.shape} in every mode"
        )
    for mode, factor in enumerate(factors):
        extra = full[mode] - core.shape[mode]
        if factor is not None and extra:
            noise = xp.asarray(
                to_device(rng.standard_normal((shape[mode], extra)), xp), dtype=factor.dtype
            )
            new_columns = xp.linalg.qr(noise - factor @ (factor.T @ noise))[0]
            factors[mode] = xp.concatenate([factor, new_columns], axis=1)
    return TuckerTensor(pad_array(core, full, scale, rng), factors)
