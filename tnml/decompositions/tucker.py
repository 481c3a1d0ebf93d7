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

from .._validation import check_nonneg_float, check_positive_int
from ..backend import check_random_state, get_namespace, to_device
from ._base import FactorizedTensor, FitResult
from ._linalg import leading_left_singular_vectors, mode_dot, unfold
from .cp import _check_fit_input, _split_point

__all__ = ["TuckerTensor", "hosvd", "tucker_hooi", "random_tucker", "check_tucker_rank"]

_CANCELLATION_LIMIT = 1e-5
_EXACT = 1e-13


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
            raise ValueError(f"core must have one axis per factor ({len(factors)}), got "
                             f"shape {getattr(core, 'shape', None)}")
        for mode, factor in enumerate(factors):
            if factor is not None and (factor.ndim != 2 or factor.shape[1] != core.shape[mode]):
                raise ValueError(f"factors[{mode}] must have shape (I, {core.shape[mode]}), "
                                 f"got {factor.shape}")
        self.core, self.factors = core, factors

    def _arrays(self):
        return [self.core] + [f for f in self.factors if f is not None]

    @property
    def shape(self):
        return tuple(r if f is None else f.shape[0]
                     for r, f in zip(self.core.shape, self.factors))

    @property
    def rank(self):
        return tuple(self.core.shape)

    def to_tensor(self):
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
        rows = [xp.eye(r, dtype=self.core.dtype)[indices[:, m]] if f is None else f[indices[:, m]]
                for m, (r, f) in enumerate(zip(self.core.shape, self.factors))]
        result = xp.reshape(rows[0] @ xp.reshape(self.core, (self.core.shape[0], -1)),
                            (-1,) + self.core.shape[1:])
        for row in rows[1:]:
            result = xp.sum(result * xp.reshape(row, row.shape + (1,) * (result.ndim - 2)),
                            axis=1)
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
        factors = [xp.eye(r, dtype=self.core.dtype) if f is None else f
                   for r, f in zip(self.core.shape, self.factors)]
        return TLTuckerTensor((self.core, factors))

    @classmethod
    def from_tensorly(cls, tucker_tensor):
        """Build from a TensorLy Tucker tensor or a ``(core, factors)`` pair."""
        core, factors = tucker_tensor
        return cls(core, list(factors))

    def _map_arrays(self, func):
        return TuckerTensor(func(self.core), [None if f is None else func(f)
                                              for f in self.factors])


def check_tucker_rank(rank, shape):
    """Validate a Tucker rank: int (all modes), or one int or None (uncompressed) per mode."""
    if rank is None or isinstance(rank, int) and not isinstance(rank, bool):
        rank = [rank] * len(shape)
    try:
        rank = list(rank)
    except TypeError:
        raise TypeError(f"rank must be an int or a sequence of ints/None, got {rank!r}") from None
    if len(rank) != len(shape):
        raise ValueError(f"rank must have {len(shape)} entries (one per mode of a tensor of "
                         f"shape {tuple(shape)}), got {len(rank)}")
    checked = [None if r is None else check_positive_int(r, f"rank[{mode}]", upper=shape[mode])
               for mode, r in enumerate(rank)]
    full = [shape[m] if r is None else r for m, r in enumerate(checked)]
    for mode, r in enumerate(full):
        if checked[mode] is None:  # an uncompressed mode may be redundant; that is allowed
            continue
        others = math.prod(full[:mode] + full[mode + 1:])
        if r > others:
            raise ValueError(f"rank[{mode}]={r} exceeds the product of the other ranks "
                             f"({others}); no Tucker core can have that multilinear rank")
    return checked


def random_tucker(shape, rank, random_state=None, xp=None, dtype="float64"):
    """A Tucker tensor with a Gaussian core and orthonormal factors (drawn on the host)."""
    import numpy as np

    rng = check_random_state(random_state)
    xp = np if xp is None else xp
    rank = check_tucker_rank(rank, shape)
    full = [shape[m] if r is None else r for m, r in enumerate(rank)]
    core = to_device(rng.standard_normal(full).astype(dtype), xp)
    factors = [None if r is None else
               to_device(np.linalg.qr(rng.standard_normal((dim, r)))[0].astype(dtype), xp)
               for dim, r in zip(shape, rank)]
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
    TuckerTensor

    Examples
    --------
    >>> from tnml.decompositions import hosvd, random_tucker
    >>> X = random_tucker((6, 7, 8), (2, 3, 4), random_state=0).to_tensor()
    >>> t = hosvd(X, (2, 3, 4))
    >>> bool(abs(t.norm() - (X ** 2).sum() ** 0.5) < 1e-10)
    True
    """
    X, _ = _check_fit_input(X, None)
    rank = check_tucker_rank(rank, X.shape)
    factors = [None if r is None else leading_left_singular_vectors(unfold(X, m), r)
               for m, r in enumerate(rank)]
    return TuckerTensor(_project(X, factors), factors)


def _initial_factors(X, rank, init, random_state):
    xp = get_namespace(X)
    if isinstance(init, str):
        if init == "svd":
            return [None if r is None else leading_left_singular_vectors(unfold(X, m), r)
                    for m, r in enumerate(rank)]
        if init == "random":
            return random_tucker(X.shape, rank, random_state, xp, X.dtype).factors
        raise ValueError(f"init must be 'svd', 'random' or a TuckerTensor, got {init!r}")
    start = init if isinstance(init, TuckerTensor) else TuckerTensor.from_tensorly(init)
    if start.shape != X.shape or start.rank != tuple(
            X.shape[m] if r is None else r for m, r in enumerate(rank)):
        raise ValueError(f"init has shape {start.shape} and rank {start.rank}, which does not "
                         f"match X's shape {X.shape} and rank {tuple(rank)}")
    return [None if r is None else xp.linalg.qr(xp.asarray(f, dtype=X.dtype))[0]
            for r, f in zip(rank, start.factors)]


def tucker_hooi(X, rank, *, mask=None, n_iter_max=100, tol=1e-8, init="svd",
                random_state=None, verbose=False):
    """Tucker decomposition by higher-order orthogonal iteration (HOOI).

    Parameters
    ----------
    X : array of shape (I_1, ..., I_N), N >= 2
    rank : int or sequence of (int or None)
        Multilinear rank, ``R_n <= I_n``; None leaves mode n uncompressed.
    mask : bool array of X's shape, optional
        True where observed; unobserved entries are imputed by the model at each sweep (EM).
    n_iter_max : int, default=100
    tol : float, default=1e-8
        Stop when the relative error changes by less than ``tol``.
    init : {'svd', 'random'} or TuckerTensor, default='svd'
    random_state : None, int or RandomState
    verbose : bool, default=False

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
    X, mask = _check_fit_input(X, mask)
    rank = check_tucker_rank(rank, X.shape)
    check_positive_int(n_iter_max, "n_iter_max")
    check_nonneg_float(tol, "tol")
    xp = get_namespace(X)
    factors = _initial_factors(X, rank, init, random_state)
    norm_x = float(xp.linalg.norm(X)) or 1.0
    split = _split_point(X.shape)
    errors, converged, core = [], False, None
    for iteration in range(n_iter_max):
        target = X
        if mask is not None and core is not None:
            target = xp.where(mask, X, TuckerTensor(core, factors).to_tensor())
        factors, core = _hooi_sweep(target, factors, rank, split)
        # Orthonormal factors: ||X - X_hat||^2 = ||X||^2 - ||core||^2 (exact unless it cancels).
        error = math.sqrt(abs(norm_x ** 2 - float(xp.sum(core ** 2)))) / norm_x
        if mask is not None or error < _CANCELLATION_LIMIT:
            residual = X - TuckerTensor(core, factors).to_tensor()
            if mask is not None:
                residual = xp.where(mask, residual, 0)
            error = float(xp.linalg.norm(residual)) / norm_x
        errors.append(error)
        if verbose:
            print(f"tucker_hooi sweep {iteration + 1}: relative error {error:.6g}")
        if error < _EXACT or (iteration and abs(errors[-2] - error) <= tol * errors[-2]):
            converged = True
            break
    return TuckerTensor(core, factors), FitResult(len(errors), errors, converged)


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
