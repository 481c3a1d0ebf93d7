"""CP (CANDECOMP/PARAFAC) format and the ALS algorithm.

The ALS sweep is organised as a two-level dimension tree (Phan, Tichavsky & Cichocki 2013): the
modes are split into a left and a right group, and each group's MTTKRPs are computed from one
GEMM of the tensor with the Khatri-Rao product of the *other* group's factors. A sweep therefore
streams the tensor twice whatever its order, instead of once per mode, and the Gram matrices
are Hadamard products of small R x R matrices. The fit is tracked from quantities the sweep
already has (``<X, X_hat>`` from the last MTTKRP), so it costs no extra pass.
"""

import math

import numpy as np

from .._validation import check_masked_tensor, check_positive_int
from ..backend import check_random_state, get_namespace, serial_blas, to_device
from ._base import FactorizedTensor
from ._fitting import (
    best_of_starts,
    check_fit_params,
    check_missing,
    em_sweeps,
    expanded_error,
    fit_sweeps,
    stalled,
    with_restarts,
)
from ._linalg import (
    PAD_SCALE,
    khatri_rao,
    leading_left_singular_vectors,
    orthonormal_columns,
    solve_spd,
    split_point,
    unfold,
)
from ._masked import Observations, SweepLog, solve_rowwise
from ._starts import _CORE_FLOPS, observed_subspaces, projected_core

__all__ = ["CPTensor", "cp_als", "cp_complete", "pad_cp", "random_cp", "max_cp_rank"]

_RESIDUAL_BLOCK_BYTES = 4 * 2**20  # rows of X per block of the explicit residual
_ANNEAL_DECAY = 0.5  # per-sweep decay of cp_complete's damping from a random start
_ANNEAL_START = 0.3  # its first value, as a fraction of the typical Gram diagonal
# Tensors above this many entries get the sketched SVD start (_sketched_bases), smaller ones
# the exact leading singular vectors of their unfoldings.
_SKETCH_MIN_SIZE = 2**18
_JUMP_START = 3  # first sweep (0-based) that tries Bro's line search
# cp_als's progress_after rule: the least relative error decrease over this many sweeps.
_MIN_PROGRESS = 0.01
_PROGRESS_LAG = 10


class CPTensor(FactorizedTensor):
    """A tensor in CP format: ``X = sum_r weights[r] * A_1[:, r] o ... o A_N[:, r]``.

    Parameters
    ----------
    weights : array of shape (rank,)
    factors : list of arrays of shape (I_n, rank)

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import CPTensor
    >>> cp = CPTensor(np.ones(2), [np.ones((3, 2)), np.ones((4, 2)), np.ones((5, 2))])
    >>> cp.shape, cp.rank, cp.n_params
    ((3, 4, 5), 2, 26)
    >>> float(cp.to_tensor()[0, 0, 0])
    2.0
    """

    _array_names = ("weights", "factors")

    def __init__(self, weights, factors):
        factors = list(factors)
        if len(factors) < 1 or any(getattr(f, "ndim", 0) != 2 for f in factors):
            raise ValueError("factors must be a non-empty list of 2-D arrays (I_n, rank)")
        rank = factors[0].shape[1]
        if any(f.shape[1] != rank for f in factors):
            raise ValueError(
                f"factors must all have the same number of columns (the rank), "
                f"got {[f.shape[1] for f in factors]}"
            )
        if weights is None:
            weights = get_namespace(*factors).ones(rank, dtype=factors[0].dtype)
        if getattr(weights, "ndim", None) != 1 or weights.shape[0] != rank:
            raise ValueError(f"weights must be a 1-D array of length rank={rank}")
        self.weights, self.factors = weights, factors

    @property
    def shape(self):
        return tuple(f.shape[0] for f in self.factors)

    @property
    def rank(self):
        return self.weights.shape[0]

    def _to_tensor_bytes(self):
        # The Khatri-Rao product of all but the first factor exists next to the result.
        rest = math.prod(self.shape[1:]) * self.rank if self.ndim > 1 else 0
        return (math.prod(self.shape) + rest) * self.dtype.itemsize

    def _to_tensor(self):
        xp = self.xp
        first = self.factors[0] * self.weights
        rest = khatri_rao(self.factors[1:]) if len(self.factors) > 1 else None
        if rest is None:
            return xp.sum(first, axis=1)
        return xp.reshape(first @ rest.T, self.shape)

    def entries(self, indices):
        indices = self._checked_indices(indices)
        xp = self.xp
        rows = self.weights[None, :]
        for mode, factor in enumerate(self.factors):
            # take() gathers rows about twice as fast as fancy indexing on 10^6 coordinates.
            rows = rows * xp.take(factor, indices[:, mode], axis=0)
        return xp.sum(rows, axis=1)

    def gram(self):
        """Hadamard product of the factor Gram matrices, weighted: ``<a_r, a_s>`` for all r, s."""
        grams = [f.T @ f for f in self.factors]
        product = grams[0]
        for g in grams[1:]:
            product = product * g
        return product * (self.weights[:, None] * self.weights[None, :])

    def norm(self):
        xp = self.xp
        return xp.sqrt(xp.abs(xp.sum(self.gram())))

    def normalize(self):
        """Unit-norm factor columns, the scale moved to ``weights``; same tensor."""
        xp = self.xp
        weights, factors = self.weights, []
        for factor in self.factors:
            norms = xp.linalg.norm(factor, axis=0)
            norms = xp.where(norms == 0, 1, norms)
            factors.append(factor / norms)
            weights = weights * norms
        return CPTensor(weights, factors)

    def to_tensorly(self):
        """The equivalent :class:`tensorly.cp_tensor.CPTensor`."""
        from tensorly.cp_tensor import CPTensor as TLCPTensor

        return TLCPTensor((self.weights, list(self.factors)))

    @classmethod
    def from_tensorly(cls, cp_tensor):
        """Build from a TensorLy CP tensor or a ``(weights, factors)`` pair."""
        weights, factors = cp_tensor
        return cls(weights, list(factors))


def max_cp_rank(shape):
    """Largest rank for which every ALS subproblem is overdetermined: ``prod(I) / max(I)``."""
    return math.prod(shape) // max(shape)


def random_cp(shape, rank, random_state=None, xp=None, dtype="float64"):
    """A CP tensor with standard normal factors and unit weights (drawn on the host)."""
    rng = check_random_state(random_state)
    xp = np if xp is None else xp
    factors = [to_device(rng.standard_normal((dim, rank)).astype(dtype), xp) for dim in shape]
    return CPTensor(xp.ones(rank, dtype=factors[0].dtype), factors)


def _initial_factors(X, rank, init, random_state):
    xp = get_namespace(X)
    if not isinstance(init, str):
        cp = init if isinstance(init, CPTensor) else CPTensor.from_tensorly(init)
        if cp.shape != X.shape or cp.rank != rank:
            raise ValueError(
                f"init has shape {cp.shape} and rank {cp.rank}; expected {X.shape} and {rank}"
            )
        factors = [xp.asarray(f, dtype=X.dtype) for f in cp.factors]
        factors[0] = factors[0] * xp.asarray(cp.weights, dtype=X.dtype)
        return factors
    if init == "random":
        return random_cp(X.shape, rank, random_state, xp, X.dtype).factors
    if init == "svd":
        factors = []
        rng = check_random_state(random_state)
        if math.prod(X.shape) > _SKETCH_MIN_SIZE:
            bases = _sketched_bases(X, rank, rng)
        else:  # small: the exact singular vectors cost nothing
            bases = [leading_left_singular_vectors(unfold(X, mode), rank) for mode in range(X.ndim)]
        for dim, u in zip(X.shape, bases):
            if u.shape[1] < rank:  # rank above the mode size: pad with random columns
                extra = to_device(rng.standard_normal((dim, rank - u.shape[1])), xp)
                u = xp.concatenate([u, xp.asarray(extra, dtype=X.dtype)], axis=1)
            factors.append(u)
        return factors
    raise ValueError(f"init must be 'svd', 'random' or a CPTensor, got {init!r}")


def _sketched_bases(X, rank, rng):
    """Leading left singular subspaces of every unfolding, by a Khatri-Rao randomized range
    finder with one power step: ``orth(X_(n) KR(G_m, m != n))`` for Gaussian ``G_m``, then the
    same with the orthonormal bases found, then a small SVD to order the columns.

    Every product is an MTTKRP, so both passes together cost what two ALS sweeps cost (the
    dimension tree streams X twice per pass), instead of a full QR or SVD of each unfolding
    (200^3, rank 20: 0.57 s, the time of 35 sweeps).
    """
    xp = get_namespace(X)
    width = rank
    factors = [
        xp.asarray(to_device(rng.standard_normal((dim, width)), xp), dtype=X.dtype)
        for dim in X.shape
    ]
    split = split_point(X.shape)
    for _ in range(2):  # the sketch, then one power step
        sketches = _all_mttkrps(X, factors, split)
        factors = [orthonormal_columns(s) for s in sketches]
    bases = []
    for basis, sketch in zip(factors, sketches):
        u, _, _ = xp.linalg.svd(basis.T @ sketch, full_matrices=False)
        bases.append((basis @ u)[:, : min(rank, basis.shape[0])])
    return bases


def _all_mttkrps(X, factors, split):
    """``X_(n) KR(factors[m], m != n)`` for every mode ``n`` with fixed factors (two GEMMs)."""
    xp = get_namespace(X)
    shape, rank = X.shape, factors[0].shape[1]
    X_matrix = xp.reshape(X, (math.prod(shape[:split]), -1))
    partial = xp.reshape(khatri_rao(factors[split:]).T @ X_matrix.T, (rank,) + shape[:split])
    result = [_inner_mttkrp(partial, factors[:split], mode) for mode in range(split)]
    partial = xp.reshape(khatri_rao(factors[:split]).T @ X_matrix, (rank,) + shape[split:])
    return result + [
        _inner_mttkrp(partial, factors[split:], mode - split) for mode in range(split, len(shape))
    ]


def _inner_mttkrp(partial, factors, mode):
    """MTTKRP for one mode of a group, from the tensor already contracted with the other group.

    ``partial`` has shape ``(R, d_0, ..., d_{k-1})`` (rank axis first) and ``factors`` are the
    group's k factors. The other modes are contracted one at a time as batched GEMVs on
    reshape views (leading modes from the front, trailing ones from the back), which runs
    several times faster than a generic einsum with the rank index in every operand.
    """
    xp = get_namespace(partial)
    rank, dims = partial.shape[0], partial.shape[1:]
    result = partial
    for m in range(mode):
        result = xp.matmul(factors[m].T[:, None, :], xp.reshape(result, (rank, dims[m], -1)))
    for m in reversed(range(mode + 1, len(dims))):
        result = xp.matmul(xp.reshape(result, (rank, -1, dims[m])), factors[m].T[:, :, None])
    return xp.reshape(result, (rank, dims[mode])).T


@with_restarts
def cp_als(
    X,
    rank,
    *,
    mask=None,
    missing="als",
    max_iter=100,
    tol=1e-8,
    init="svd",
    random_state=None,
    linesearch=False,
    alpha=None,
    progress_after=None,
    verbose=0,
):
    """CP decomposition by alternating least squares.

    Parameters
    ----------
    X : array of shape (I_1, ..., I_N), N >= 2
        NumPy or CuPy; the result lives in the same namespace.
    rank : int
        Number of rank-one components, ``1 <= rank <= prod(I) / max(I)``.
    mask : bool array of X's shape, optional
        True where X is observed; unobserved entries may hold NaN.
    missing : {'als', 'em'}, default='als'
        How a mask is used. 'als': every factor row is fitted to the observed entries only
        (:func:`cp_complete`, row-wise normal equations); 'em': unobserved entries are
        imputed by the current model at every sweep and the dense ALS runs on the result.
    max_iter : int, default=100
        Maximum number of ALS sweeps.
    tol : float, default=1e-8
        Stop when the relative error changes by less than ``tol`` between sweeps.
    init : {'svd', 'random'} or CPTensor, default='svd'
        Leading left singular vectors of the unfoldings (of the zero-filled tensor under a
        mask), Gaussian factors, or a given start.
    n_init : int, default=1
        Number of starts: ``init`` first, then random ones drawn from ``random_state``; the fit
        with the lowest final error (held-out when ``validation`` is given) is kept. A start
        that fits to rounding ends the search.
    random_state : None, int or RandomState
        Seed of the random initialisation.
    linesearch : bool, default=False
        Extrapolate the factors along the last update (Bro's line search) and keep the jump
        when it lowers the error; costs one extra pass over X per sweep. Not used by
        ``missing='als'``.
    alpha : float, optional
        Ridge penalty added to the normal equations, absolute (added to their diagonal as
        is). None: 0 without a mask, 1e-8 with
        ``missing='als'`` (a factor row seen fewer times than the rank needs it).
    progress_after : int, optional
        Sweeps after which the fit goes on only while its error still falls by at least
        ``1%`` of itself per ``10`` sweeps (``tol`` applies throughout; without a mask).
        ALS in a swamp (nearly collinear components) gains several percent per 10 sweeps
        for hundreds of sweeps on its way to the exact fit, while an over-ranked CP of real
        data creeps along a degenerate path (diverging, cancelling components) by fractions
        of a percent: this lets a large ``max_iter`` serve the first and not harm the
        second. None: no such rule.
    verbose : int, default=0
        Print the error after each sweep.

    Returns
    -------
    cp : CPTensor
        Factors with unit-norm columns and the scale in ``weights``.
    info : FitResult
        ``n_iter``, ``errors`` (relative error per sweep) and ``converged``.

    References
    ----------
    Kolda & Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
    Phan, Tichavsky & Cichocki, "Fast alternating LS algorithms for high order CANDECOMP/PARAFAC
    tensor factorizations", IEEE TSP 61(19), 2013.

    Examples
    --------
    >>> from tnml.decompositions import cp_als, random_cp
    >>> X = random_cp((10, 11, 12), 3, random_state=0).to_tensor()
    >>> cp, info = cp_als(X, 3, max_iter=500, tol=1e-14, random_state=0)
    >>> info.error < 1e-8
    True
    """
    X, mask = check_masked_tensor(X, mask)
    rank = check_positive_int(rank, "rank", upper=max_cp_rank(X.shape))
    masked_als = mask is not None and check_missing(missing) == "als"
    tol, alpha = check_fit_params(
        max_iter, tol, verbose, (1e-8 if masked_als else 0.0) if alpha is None else alpha
    )
    if progress_after is not None:
        progress_after = check_positive_int(progress_after, "progress_after")
    factors = _initial_factors(X, rank, init, random_state)
    if masked_als:
        return cp_complete(
            Observations.from_dense(X, mask),
            rank,
            max_iter=max_iter,
            tol=tol,
            init=CPTensor(None, factors),
            alpha=alpha,
            verbose=verbose,
        )
    xp = get_namespace(X)
    norm_x = float(xp.linalg.norm(X)) or 1.0
    split = split_point(X.shape)
    log = SweepLog(None, None, "cp_als", verbose)

    def sweep(target, factors, iteration):
        previous = list(factors) if linesearch else None
        factors, inner = _als_sweep(target, factors, split, alpha)
        error = None
        if mask is None:
            model_sq = float(xp.sum(_hadamard([f.T @ f for f in factors])))
            error = expanded_error(norm_x**2 - 2 * inner + model_sq, norm_x**2, X.dtype)
        if linesearch and iteration >= _JUMP_START:
            if error is None:
                error = _residual_error(X, mask, factors, norm_x, split)
            factors, error = _line_search(X, mask, factors, previous, error, norm_x, iteration)
        return factors, error

    if mask is not None:
        factors, info = em_sweeps(
            X,
            mask,
            factors,
            lambda *args: sweep(*args)[0],
            _reconstruct,
            impute_start=True,
            max_iter=max_iter,
            tol=tol,
            log=log,
        )
        return CPTensor(None, factors).normalize(), info

    def step(iteration):
        nonlocal factors
        factors, error = sweep(X, factors, iteration)
        if error is None:
            error = _residual_error(X, None, factors, norm_x, split)
        return None, error

    def stop(errors):
        slow = (
            progress_after is not None
            and len(errors) > max(progress_after, _PROGRESS_LAG)
            and errors[-1 - _PROGRESS_LAG] - errors[-1] < _MIN_PROGRESS * errors[-1 - _PROGRESS_LAG]
        )
        return slow or stalled(errors, tol, 1)

    info = fit_sweeps(step, max_iter, tol, log, X.dtype, stop=stop)
    return CPTensor(None, factors).normalize(), info


@with_restarts(retry_stalled=True)
def cp_complete(
    observations,
    rank,
    *,
    max_iter=100,
    tol=1e-6,
    init="spectral",
    random_state=None,
    alpha=1e-8,
    verbose=0,
    validation=None,
):
    """CP completion by ALS over the observed entries only (never densifies).

    Each sweep solves, for every mode ``n`` and row ``i``, the ridge least squares of the
    observed entries with mode-``n`` index ``i`` against their design rows, the Hadamard
    products of the other factors' rows (:func:`~tnml.decompositions._masked.solve_rowwise`).
    Cost per sweep ``O(N * n_obs * R^2)``, memory ``O(n_obs * N + sum(I) * R^2)``.

    Parameters
    ----------
    observations : Observations
        Coordinates, values and shape of the observed entries.
    rank : int
        Number of rank-one components.
    max_iter : int, default=100
        Maximum number of sweeps.
    tol : float, default=1e-6
        Stop when the relative training error changes by less than ``tol`` between sweeps.
    init : {'spectral', 'random'} or CPTensor, default='spectral'
        'spectral': the leading singular subspaces of the rescaled zero-filled unfoldings and
        the CP decomposition of the observations projected onto them, computed by sparse
        products over the observations (never densifying; see
        :func:`spectral_cp`); it falls back to 'random' with fewer than
        3 observations per factor parameter, a mode smaller than ``rank``, or a projected core
        too large. 'random': Gaussian factors scaled to the data. Or a start of this shape
        and rank (a warm start, e.g. from :func:`pad_cp`).
    n_init : int, default=1
        Number of starts: ``init`` first, then random ones drawn from ``random_state``; the fit
        with the lowest final error (held-out when ``validation`` is given) is kept. A start
        that fits to rounding ends the search. With ``n_init=1``, a spectral start that stalls
        (reaches ``max_iter`` unconverged) gets one random start more: the spectral start
        can miss on few observations of a tensor with a weak component.
    random_state : None, int or RandomState
    alpha : float, default=1e-8
        The ridge penalty ``alpha`` (absolute: added to the diagonal as is) of every row's normal
        equations; a row without observations becomes zero. From a random start the first sweeps are
        damped by a larger ridge (0.3 times the typical Gram diagonal, halved every sweep) that
        decays to ``alpha``.
    verbose : int, default=0
        Print the errors after each sweep.
    validation : Observations, optional
        Held-out entries whose relative error is recorded after each sweep (it does not
        steer the fit).

    Returns
    -------
    cp : CPTensor
        Unit-norm factor columns, the scale in ``weights``.
    info : FitResult
        ``errors``: relative error ``||x - x_hat|| / ||x||`` over the observed entries per
        sweep; ``validation_errors`` likewise over ``validation`` (None without it).

    See Also
    --------
    cp_als : dense ALS, and this function behind ``mask=..., missing='als'``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import cp_complete, random_cp
    >>> from tnml.decompositions import Observations
    >>> truth = random_cp((20, 21, 22), 2, random_state=0)
    >>> coords = np.random.default_rng(0).integers(0, 20, size=(2000, 3))
    >>> obs = Observations(coords, truth.entries(coords), truth.shape)
    >>> cp, info = cp_complete(obs, 2, tol=1e-12, max_iter=300, random_state=0)
    >>> info.error < 1e-6
    True
    """
    shape = observations.shape
    rank = check_positive_int(rank, "rank")
    tol, alpha = check_fit_params(max_iter, tol, verbose, alpha)
    kind, factors = _initial_complete_factors(observations, rank, init, random_state)
    columns = [observations.column(mode) for mode in range(len(shape))]

    def step(iteration):
        nonlocal factors
        for mode in range(len(shape)):
            rows_per_slice = observations.n_obs / shape[mode]
            damped = _sweep_ridge(kind, alpha, iteration, factors, mode, rows_per_slice)
            factors[mode] = solve_rowwise(
                observations, mode, _cp_design(factors, columns, mode), shape[mode], rank, damped
            )
        factors = _balance(factors)
        return CPTensor(None, factors), None

    info = fit_sweeps(
        step,
        max_iter,
        tol,
        SweepLog(observations, validation, "cp_complete", verbose),
        observations.values.dtype,
    )
    return CPTensor(None, factors).normalize(), info


def _typical_gram_diagonal(factors, mode, rows_per_slice):
    """Mean diagonal of a mode-``mode`` row's Gram matrix, estimated from column norms.

    From a random start the first sweeps use a ridge of 0.3 times this, halved every sweep down
    to the requested one: damping the early steps keeps ALS out of swamps where a row seen by
    few entries overfits them. Measured, random starts stuck without / with damping: 30^3,
    rank 3, 15% observed: 3 / 2 of 10; 20^3, rank 2, 31% observed: 2 / 0 of 6 (a start of
    1.0 instead of 0.3 kills components: 2 of 6 stuck).
    """
    xp = get_namespace(*factors)
    mean_square = None
    for other, factor in enumerate(factors):
        if other != mode:
            columns = xp.sum(factor * factor, axis=0) / factor.shape[0]
            mean_square = columns if mean_square is None else mean_square * columns
    return 0.0 if mean_square is None else rows_per_slice * float(xp.mean(mean_square))


def _cp_design(factors, columns, mode):
    """Design rows of ``mode``: at each observation, the product of the other factors' rows."""
    xp = get_namespace(*factors)

    def design_rows(positions):
        rows = None
        for other, (factor, column) in enumerate(zip(factors, columns)):
            if other != mode:
                gathered = xp.take(factor, xp.take(column, positions), axis=0)
                rows = gathered if rows is None else rows * gathered
        if rows is None:  # a vector: the design is the constant 1
            rows = xp.ones((positions.shape[0], factors[mode].shape[1]), dtype=factors[0].dtype)
        return rows

    return design_rows


def _balance(factors):
    """Rescale the columns so that every mode carries the same column norm; same tensor.

    The ridge penalises each row's norm, so without balancing a mode that grew large would
    drown the ridge while one that shrank would be pulled to zero by it.
    """
    xp = get_namespace(*factors)
    norms = [xp.linalg.norm(f, axis=0) for f in factors]
    product = norms[0]
    for n in norms[1:]:
        product = product * n
    target = product ** (1.0 / len(factors))
    return [f * xp.where(n > 0, target / xp.where(n > 0, n, 1), 1) for f, n in zip(factors, norms)]


def _initial_complete_factors(observations, rank, init, random_state):
    """Factors (weights absorbed) for :func:`cp_complete`, in the observations' namespace."""
    values = observations.values
    xp = get_namespace(values)
    return _complete_start(
        observations.shape,
        rank,
        init,
        random_state,
        spectral=lambda: spectral_cp(observations, rank, random_state),
        mean_square=lambda: float(xp.sum(values * values)) / observations.n_obs,
        xp=xp,
        dtype=values.dtype,
    )


def _complete_start(shape, rank, init, random_state, spectral, mean_square, xp=np, dtype=None):
    """``(kind, factors)``: the start of masked CP ALS for ``init``, weights absorbed.

    ``spectral()`` computes the spectral start, ``(weights, factors)`` or None where it does
    not apply (then the start is random); ``mean_square()`` the observed values' mean square,
    which scales a random start. In-memory and distributed fits share this, so that equal
    seeds give equal starts.
    """
    dtype = np.float64 if dtype is None else dtype
    if isinstance(init, str):
        if init not in ("spectral", "random"):
            raise ValueError(f"init must be 'spectral', 'random' or a CPTensor, got {init!r}")
        if init == "spectral":
            start = spectral()
            if start is not None:
                weights, factors = start
                factors[0] = factors[0] * weights
                return init, _balance(factors)
        # Entries of a product of N Gaussian factors with entry variance s^2 have variance
        # R s^(2N): choose s so that the start has the data's root mean square.
        scale = ((mean_square() or 1.0) / rank) ** (1.0 / (2 * len(shape)))
        start = random_cp(shape, rank, random_state, xp, dtype)
        return "random", [f * scale for f in start.factors]
    if not isinstance(init, CPTensor):
        raise TypeError(
            f"init must be 'spectral', 'random' or a CPTensor, got {type(init).__name__}"
        )
    if init.shape != tuple(shape) or init.rank != rank:
        raise ValueError(
            f"init has shape {init.shape} and rank {init.rank}; expected {tuple(shape)} and {rank}"
        )
    factors = [xp.asarray(f, dtype=dtype) for f in init.factors]
    factors[0] = factors[0] * xp.asarray(init.weights, dtype=dtype)
    return None, _balance(factors)


def _sweep_ridge(kind, alpha, iteration, factors, mode, rows_per_slice):
    """The ridge of mode ``mode``'s row solves in sweep ``iteration`` of masked CP ALS.

    From a random start (``kind == 'random'``) the first sweeps are damped by a ridge of
    ``_ANNEAL_START`` times the typical Gram diagonal, decaying by ``_ANNEAL_DECAY`` a sweep
    down to ``alpha`` (see :func:`_typical_gram_diagonal`); otherwise ``alpha``.
    """
    if kind != "random":
        return alpha
    damping = _ANNEAL_START * _ANNEAL_DECAY**iteration
    return max(alpha, damping * _typical_gram_diagonal(factors, mode, rows_per_slice))


def pad_cp(cp, new_rank, scale=PAD_SCALE, random_state=None):
    """Warm start of a higher rank: ``cp`` plus ``new_rank - rank`` small random components.

    Parameters
    ----------
    cp : CPTensor
    new_rank : int
        At least ``cp.rank``.
    scale : float, default=1e-3
        Weight of each new component relative to the largest weight of ``cp``.
    random_state : None, int or RandomState

    Returns
    -------
    CPTensor
        Of rank ``new_rank``, equal to ``cp`` up to the small new components.

    Examples
    --------
    >>> from tnml.decompositions import pad_cp, random_cp
    >>> pad_cp(random_cp((3, 4, 5), 2, random_state=0), 5, random_state=0).rank
    5
    """
    new_rank = check_positive_int(new_rank, "new_rank")
    if new_rank < cp.rank:
        raise ValueError(f"new_rank={new_rank} is smaller than the rank {cp.rank} to pad")
    extra = new_rank - cp.rank
    if extra == 0:
        return cp
    xp = cp.xp
    rng = check_random_state(random_state)
    top = float(xp.max(xp.abs(cp.weights))) or 1.0
    # Unit expected column norm, like the normalised columns of ``cp``.
    new_columns = [
        rng.standard_normal((f.shape[0], extra)) / math.sqrt(f.shape[0]) for f in cp.factors
    ]
    factors = [
        xp.concatenate([f, xp.asarray(to_device(c, xp), dtype=f.dtype)], axis=1)
        for f, c in zip(cp.factors, new_columns)
    ]
    weights = xp.concatenate([cp.weights, xp.full(extra, scale * top, dtype=cp.weights.dtype)])
    return CPTensor(weights, factors)


def _residual_error(X, mask, factors, norm_x, split=1):
    """Relative error from the residual itself, exact where the expanded formula cancels.

    The residual is formed block by block of rows of X (as a matrix cut at ``split``), so the
    reconstruction never exists whole: one GEMM-sized pass over X, cache-sized temporaries.
    """
    xp = get_namespace(X)
    shape = X.shape
    X_matrix = xp.reshape(X, (math.prod(shape[:split]), -1))
    mask_matrix = None if mask is None else xp.reshape(mask, X_matrix.shape)
    left, right_t = khatri_rao(factors[:split]), khatri_rao(factors[split:]).T
    block = max(1, _RESIDUAL_BLOCK_BYTES // (X_matrix.shape[1] * X.dtype.itemsize))
    total = 0.0
    for start in range(0, X_matrix.shape[0], block):
        rows = slice(start, start + block)
        residual = X_matrix[rows] - left[rows] @ right_t
        if mask_matrix is not None:
            residual = xp.where(mask_matrix[rows], residual, 0)
        total += float(xp.sum(residual * residual))
    return math.sqrt(total) / norm_x


def _hadamard(matrices):
    product = matrices[0]
    for m in matrices[1:]:
        product = product * m
    return product


def _update_factor(mttkrp, factors, mode, alpha):
    grams = [f.T @ f for i, f in enumerate(factors) if i != mode]
    return solve_spd(_hadamard(grams), mttkrp, alpha)


def _als_sweep(X, factors, split, alpha):
    """One ALS sweep over all modes with a two-level dimension tree; returns <X, X_hat>."""
    xp = get_namespace(X)
    shape, rank = X.shape, factors[0].shape[1]
    factors = list(factors)
    X_matrix = xp.reshape(X, (math.prod(shape[:split]), -1))
    # Each group: one GEMM of the other group's Khatri-Rao product with X, written as
    # KR^T @ X (or X^T) so that BLAS streams X in its fastest layout; the partial result keeps
    # the rank axis first.
    partial = xp.reshape(khatri_rao(factors[split:]).T @ X_matrix.T, (rank,) + shape[:split])
    for mode in range(split):
        mttkrp = _inner_mttkrp(partial, factors[:split], mode)
        factors[mode] = _update_factor(mttkrp, factors, mode, alpha)
    partial = xp.reshape(khatri_rao(factors[:split]).T @ X_matrix, (rank,) + shape[split:])
    for mode in range(split, len(shape)):
        mttkrp = _inner_mttkrp(partial, factors[split:], mode - split)
        factors[mode] = _update_factor(mttkrp, factors, mode, alpha)
    inner = float(xp.sum(mttkrp * factors[-1]))
    return factors, inner


def _reconstruct(factors):
    return CPTensor(None, factors).to_tensor()


def _line_search(X, mask, factors, previous, error, norm_x, iteration):
    """Bro's extrapolation: try ``old + step * (new - old)`` and keep it if the error drops."""
    xp = get_namespace(X)
    step = iteration ** (1.0 / 3)
    candidate = [p + step * (f - p) for f, p in zip(factors, previous)]
    residual = X - _reconstruct(candidate)
    if mask is not None:
        residual = xp.where(mask, residual, 0)
    candidate_error = float(xp.linalg.norm(residual)) / norm_x
    if candidate_error < error:
        return candidate, candidate_error
    return factors, error


# The spectral start needs this many observations per factor parameter (sum(I) * R).
_MIN_OBS_PER_PARAM = 3


def spectral_cp(observations, rank, random_state=None, n_core_starts=5):
    """A CP start from the observations: the core's CP on the observed subspaces.

    Returns ``(weights, factors)`` in the observations' namespace, or None when the mode
    sizes are below ``rank`` or the core would be too costly; the caller then starts at random.
    The host BLAS runs single-threaded meanwhile: every product here is skinny (k columns),
    where threads gain nothing and stall when the cores are busy.
    """
    with serial_blas():
        return _spectral_cp(observations, rank, random_state, n_core_starts)


def _spectral_cp(observations, rank, random_state, n_core_starts):
    def scale_sums(weights, factors):
        model = CPTensor(weights, factors).entries(observations.indices)
        xp = get_namespace(model)
        return float(xp.sum(model * observations.values)), float(xp.sum(model * model))

    return spectral_cp_from(
        observations.shape,
        observations.n_obs,
        rank,
        lambda rank, rng: observed_subspaces(observations, rank, random_state=rng),
        lambda bases: projected_core(observations, bases),
        scale_sums,
        random_state,
        n_core_starts,
    )


def spectral_cp_from(shape, n_obs, rank, subspaces, core, scale_sums, random_state, n_core_starts):
    """:func:`spectral_cp` given its three passes over the observations as functions.

    ``subspaces(rank, rng)`` gives the bases of :func:`observed_subspaces`, ``core(bases)``
    the :func:`projected_core` (or None), ``scale_sums(weights, factors)`` the sums
    ``(<model, x>, <model, model>)`` over the observations; the rest runs on the small core
    (the same steps whatever computes the passes: in memory, or summed over a cluster).
    """
    rng = check_random_state(random_state)
    # Below a few observations per parameter the subspaces are noise, and a start from noise
    # is worse than a damped random one (scikit-learn's order-10 check data: 200 entries).
    if len(shape) < 2 or min(shape) < rank or n_obs < _MIN_OBS_PER_PARAM * rank * sum(shape):
        return None
    # The projected core (rank^N per observation) would be refused: skip the subspaces too.
    if rank ** len(shape) * n_obs > _CORE_FLOPS:
        return None
    bases = subspaces(rank, rng)
    core = core(bases)
    if core is None or rank > max_cp_rank(core.shape):
        return None
    # The core is small (rank^N): several of its own starts cost nothing next to one sweep of
    # the observations, and a wrong basin here would be inherited.
    cp, _ = best_of_starts(
        lambda start, r: cp_als(
            core,
            rank,
            init="svd" if start == 0 else "random",
            random_state=r,
            max_iter=500,
            tol=1e-10,
        ),
        n_core_starts,
        rng,
    )
    factors = [basis @ factor for basis, factor in zip(bases, cp.factors)]
    # 1/p only estimates the scale: fit it to the observations (least squares in one scalar).
    inner, square = scale_sums(cp.weights, factors)
    return cp.weights * (inner / (square or 1.0)), factors
