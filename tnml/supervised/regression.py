"""Low-rank tensor regression ``y = <W, X_n> + b`` by alternating ridge least squares.

``X`` has shape (n_samples, d_1, ..., d_k) and the weight tensor W is held in CP, Tucker or
tensor-train format. With every block of W but one fixed, the prediction is linear in the free
block: one ridge regression whose design (n_samples x block size) is a single contraction of X
with the fixed blocks (``tnml.contract.einsum``). The intercept is exact: X and y are centred
once, before the sweeps.

The initial W is the rank-truncated higher-order SVD of the cross-covariance tensor
``sum_n (y_n - mean y) (X_n - mean X)``, the gradient of the loss at W = 0; from there a few
sweeps reach the ALS fixed point that a random start needs tens of sweeps for.

References
----------
H. Zhou, L. Li and H. Zhu, "Tensor regression with applications in neuroimaging data
analysis", JASA 108, 2013 (CP and Tucker regression by block relaxation).
"""

import math
import string

from .._config import check_memory
from ..backend import get_namespace
from ..contract import einsum
from ..decompositions import (
    CPTensor,
    FitResult,
    TTTensor,
    TuckerTensor,
    khatri_rao,
    leading_left_singular_vectors,
    mode_dot,
    solve_spd,
    unfold,
)

__all__ = ["cp_regression", "tucker_regression", "tt_regression", "FORMATS"]

FORMATS = ("cp", "tucker", "tt")
_MODES = string.ascii_lowercase[:13]  # sample modes (n is the sample axis)
_BONDS = string.ascii_uppercase  # rank indices


def _ridge(design, y, alpha, centre):
    """Ridge solution ``w`` of ``design @ w ~= y`` (columns: the free block, flattened) and the
    training mean squared error, both from the small Gram matrix.

    With ``centre`` the design's columns are centred through the Gram matrix
    (``Z^T Z - n mu mu^T``; ``y`` is already centred), never by a copy of the design.
    """
    xp = get_namespace(design, y)
    n = design.shape[0]
    gram = design.T @ design
    rhs = design.T @ y
    if centre:
        mu = xp.mean(design, axis=0)
        gram = gram - n * (mu[:, None] * mu[None, :])
    w = solve_spd(gram, rhs[None, :], alpha=alpha)[0]
    loss = (float(y @ y) - 2 * float(w @ rhs) + float(w @ (gram @ w))) / n
    return w, max(loss, 0.0)


def _initial_bases(Xc, yc, ranks):
    """Leading left singular vectors of every unfolding of the cross-covariance tensor."""
    xp = get_namespace(Xc)
    C = xp.reshape(yc @ xp.reshape(Xc, (Xc.shape[0], -1)), Xc.shape[1:])
    return [leading_left_singular_vectors(unfold(C, m), r) for m, r in enumerate(ranks)]


def _converged(losses, tol, y):
    """The last sweep changed the mean squared error by at most ``tol`` times the variance of
    the (centred) targets: a change that no longer moves R^2 in its ``-log10(tol)``-th digit."""
    scale = float(y @ y) / y.shape[0] or 1.0
    return len(losses) > 1 and abs(losses[-2] - losses[-1]) <= tol * scale


def _check_step_memory(n, size, itemsize, extra=0, what="tensor regression"):
    """Refuse a ridge step before it allocates: its design (``n x size``), the Gram matrix
    and the copy the solver factorises (``size x size`` each) and ``extra`` entries of
    intermediates, alive together."""
    check_memory((n * size + 2 * size * size + extra) * itemsize, f"{what} (one ridge step)")


def cp_regression(X, y, rank, *, alpha=1.0, max_iter=100, tol=1e-4, fit_intercept=True):
    """CP-structured regression ``y = <[[U_1, ..., U_k]], X_n> + b``.

    Parameters
    ----------
    X : array (n_samples, d_1, ..., d_k)
    y : array (n_samples,)
    rank : int
    alpha : float
        Ridge penalty on every factor, absolute (added to the diagonal of each block's normal
        equations as is, as in :class:`sklearn.linear_model.Ridge`).
    max_iter : int
        Sweeps over the factors.
    tol : float
        Stop when a sweep changes the training mean squared error by less than ``tol`` times
        the variance of y.
    fit_intercept : bool

    Returns
    -------
    weights : CPTensor
    result : FitResult
        ``errors``: relative training error ``||y_hat - y|| / ||y - mean(y)||`` after every
        sweep; ``converged``: whether ``tol`` was met; ``intercept``: the fitted intercept.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.supervised.regression import cp_regression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 6, 7))
    >>> W = np.outer(rng.standard_normal(6), rng.standard_normal(7))
    >>> y = np.einsum("nij,ij->n", X, W) + 3.0
    >>> weights, result = cp_regression(X, y, 1, alpha=0.0, tol=1e-12)
    >>> bool(np.allclose(weights.to_tensor(), W)), round(result.intercept, 6)
    (True, 3.0)
    """
    X, y, X_mean, y_mean = _prepare(X, y, fit_intercept)
    xp = get_namespace(X)
    n, k = X.shape[0], X.ndim - 1
    shape = X.shape[1:]
    for m in range(k):  # the largest step decides, before any work
        A, d, B = math.prod(shape[:m]), shape[m], math.prod(shape[m + 1 :])
        after = B >= A if m < k - 1 else False
        extra = n * rank * d * (A if after else B) + rank * (A + B)
        _check_step_memory(n, d * rank, X.dtype.itemsize, extra, "CP regression")
    factors = _initial_bases(X, y, [rank] * k)
    factors = [_pad_columns(f, rank, xp) for f in factors]
    losses = []
    for _ in range(max_iter):
        for m in range(k):
            design = xp.reshape(_cp_design(X, factors, m), (n, -1))
            w, loss = _ridge(design, y, alpha, fit_intercept)
            factors[m] = xp.reshape(w, (X.shape[m + 1], rank))
        losses.append(loss)
        if _converged(losses, tol, y):
            break
    weights = CPTensor(xp.ones(rank, dtype=X.dtype), factors)
    return weights, _result(weights, losses, tol, y, X_mean, y_mean, fit_intercept)


def tucker_regression(X, y, rank, *, alpha=1.0, max_iter=100, tol=1e-4, fit_intercept=True):
    """Tucker-structured regression ``y = <G x_1 U_1 ... x_k U_k, X_n> + b``.

    Parameters are those of :func:`cp_regression`; ``rank`` is a sequence of ``k`` ints.

    Returns
    -------
    weights : TuckerTensor
    result : FitResult
        As in :func:`cp_regression`.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.supervised.regression import tucker_regression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 6, 7))
    >>> W = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 7))
    >>> y = np.einsum("nij,ij->n", X, W)
    >>> weights, _ = tucker_regression(X, y, (2, 2), alpha=0.0, tol=1e-12)
    >>> bool(np.allclose(weights.to_tensor(), W))
    True
    """
    X, y, X_mean, y_mean = _prepare(X, y, fit_intercept)
    xp = get_namespace(X)
    n, k = X.shape[0], X.ndim - 1
    rank = tuple(min(int(r), d) for r, d in zip(rank, X.shape[1:]))
    # The core's step: its design is n x prod(rank); the first projection of X is the
    # largest intermediate. A factor's step: n x (d_m r_m), with the einsum over X.
    first = n * math.prod(X.shape[1:-1]) * rank[-1]
    _check_step_memory(n, math.prod(rank), X.dtype.itemsize, first, "Tucker regression")
    for d, r in zip(X.shape[1:], rank):
        partial = r * math.prod(X.shape[1:]) // d  # the core times every other factor
        _check_step_memory(n, d * r, X.dtype.itemsize, 2 * partial, "Tucker regression")
    factors = [_pad_columns(f, r, xp) for f, r in zip(_initial_bases(X, y, rank), rank)]

    def core_design():
        # Always contract the last remaining sample mode (a batched GEMM on a view) and move
        # its new rank axis to the front; the first GEMM reads X once and shrinks it.
        projected = X
        for j in range(k - 1, -1, -1):
            shape = projected.shape
            projected = xp.matmul(xp.reshape(projected, (n, -1, shape[-1])), factors[j])
            projected = xp.moveaxis(xp.reshape(projected, shape[:-1] + (rank[j],)), -1, 1)
        return xp.reshape(projected, (n, -1))

    core = xp.reshape(_ridge(core_design(), y, alpha, fit_intercept)[0], rank)
    losses = []
    for _ in range(max_iter):
        for m in range(k):
            partial = core
            for j in range(k):
                if j != m:
                    partial = mode_dot(partial, factors[j], j)
            P = xp.moveaxis(partial, m, 0)
            design = xp.reshape(_mode_design(X, m, xp.reshape(P, (rank[m], -1))), (n, -1))
            # Orthonormal factors fix the gauge (no slow drift of norms between the blocks) and
            # make the core's ridge penalty the penalty on ||W||.
            w, _ = _ridge(design, y, alpha, fit_intercept)
            q, r = xp.linalg.qr(xp.reshape(w, (X.shape[m + 1], rank[m])))
            factors[m] = q
            core = mode_dot(core, r, m)
        w, loss = _ridge(core_design(), y, alpha, fit_intercept)
        core = xp.reshape(w, rank)
        losses.append(loss)
        if _converged(losses, tol, y):
            break
    weights = TuckerTensor(core, factors)
    return weights, _result(weights, losses, tol, y, X_mean, y_mean, fit_intercept)


def tt_regression(X, y, rank, *, alpha=1.0, max_iter=100, tol=1e-4, fit_intercept=True):
    """Tensor-train-structured regression ``y = <TT(G_1, ..., G_k), X_n> + b``.

    Parameters are those of :func:`cp_regression`; ``rank`` is an int (every inner bond) or
    a sequence of ``k - 1`` inner bond dimensions.

    Returns
    -------
    weights : TTTensor
    result : FitResult
        As in :func:`cp_regression`.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.supervised.regression import tt_regression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 4, 5, 3))
    >>> W = np.einsum("ia,ajb,bk->ijk", rng.standard_normal((4, 2)),
    ...               rng.standard_normal((2, 5, 2)), rng.standard_normal((2, 3)))
    >>> y = np.einsum("nijk,ijk->n", X, W)
    >>> weights, _ = tt_regression(X, y, 2, alpha=0.0, tol=1e-14, max_iter=200)
    >>> bool(np.allclose(weights.to_tensor(), W, atol=1e-6))
    True
    """
    X, y, X_mean, y_mean = _prepare(X, y, fit_intercept)
    xp = get_namespace(X)
    n, k = X.shape[0], X.ndim - 1
    shape = X.shape[1:]
    if isinstance(rank, int):
        rank = [rank] * (k - 1)
    ranks = [1]
    for j, r in enumerate(rank):
        ranks.append(max(1, min(int(r), ranks[-1] * shape[j], math.prod(shape[j + 1 :]))))
    ranks.append(1)
    for m in range(k):
        size = ranks[m] * shape[m] * ranks[m + 1]
        extra = n * ranks[m] * math.prod(shape[m:]) + math.prod(shape)
        _check_step_memory(n, size, X.dtype.itemsize, extra, "TT regression")
    # Start from the cross-covariance's TT-SVD truncated to the ranks (zero-padded if short).
    from ..decompositions.tt import tt_svd

    C = xp.reshape(y @ xp.reshape(X, (n, -1)), shape)
    start = tt_svd(C, rank=tuple(ranks[1:-1]))[0].cores if k > 1 else [xp.reshape(C, (1, -1, 1))]
    cores = []
    for j, core in enumerate(start):
        padded = xp.zeros((ranks[j], shape[j], ranks[j + 1]), dtype=X.dtype)
        padded[: core.shape[0], :, : core.shape[2]] = core
        cores.append(padded)
    losses = []
    for _ in range(max_iter):
        # Right to left and back, moving the orthogonality centre: every other core is an
        # isometry, so the free core's ridge penalty is the penalty on ||W||.
        for m, rightward in [(m, True) for m in range(k - 1)] + [
            (m, False) for m in range(k - 1, 0, -1)
        ]:
            left_size, right_size = math.prod(shape[:m]), math.prod(shape[m + 1 :])
            left = _chain(cores[:m], xp, X.dtype, from_left=True)  # (left_size, a)
            right = _chain(cores[m + 1 :], xp, X.dtype, from_left=False)  # (b, right_size)
            T = xp.matmul(left.T, xp.reshape(X, (n, left_size, shape[m] * right_size)))
            T = xp.reshape(T, (n, left.shape[1] * shape[m], right_size))
            design = xp.reshape(xp.matmul(T, right.T), (n, -1))
            w, loss = _ridge(design, y, alpha, fit_intercept)
            a, d, b = cores[m].shape
            if rightward:
                q, r = xp.linalg.qr(xp.reshape(w, (a * d, b)))
                cores[m] = xp.reshape(q, (a, d, q.shape[1]))
                cores[m + 1] = xp.reshape(
                    r @ xp.reshape(cores[m + 1], (b, -1)), (r.shape[0],) + cores[m + 1].shape[1:]
                )
            else:
                q, r = xp.linalg.qr(xp.reshape(w, (a, d * b)).T)
                cores[m] = xp.reshape(q.T, (q.shape[1], d, b))
                cores[m - 1] = xp.reshape(
                    xp.reshape(cores[m - 1], (-1, a)) @ r.T, cores[m - 1].shape[:2] + (r.shape[0],)
                )
        if k == 1:
            w, loss = _ridge(xp.reshape(X, (n, -1)), y, alpha, fit_intercept)
            cores[0] = xp.reshape(w, cores[0].shape)
        losses.append(loss)
        if _converged(losses, tol, y):
            break
    weights = TTTensor(cores)
    return weights, _result(weights, losses, tol, y, X_mean, y_mean, fit_intercept)


# -- helpers ------------------------------------------------------------------------------------
def _prepare(X, y, fit_intercept):
    """X untouched (the designs are centred instead: they are linear in X and far smaller),
    y centred, and the means for the intercept."""
    xp = get_namespace(X, y)
    if fit_intercept:
        return X, y - xp.mean(y, axis=0), xp.mean(X, axis=0), xp.mean(y, axis=0)
    return X, y, None, xp.zeros((), dtype=X.dtype)


def _pad_columns(basis, rank, xp):
    """A basis with fewer columns than ``rank`` (a mode smaller than the rank) is completed by
    small deterministic columns so that every rank-one term can still move."""
    if basis.shape[1] >= rank:
        return basis[:, :rank]
    extra = xp.ones((basis.shape[0], rank - basis.shape[1]), dtype=basis.dtype)
    return xp.concatenate([basis, 1e-2 * extra / math.sqrt(basis.shape[0])], axis=1)


def _cp_design(X, factors, m):
    """``design[n, i, r] = sum X[n, ..., i, ...] prod_{j != m} U_j[i_j, r]`` (i at mode m).

    X is viewed as (n, A, d_m, B) (A, B: the modes before and after m). The larger side is
    contracted first by one batched GEMM over X, which reads X once and never copies it; the
    other side (diagonal in r) then works on the far smaller intermediate.
    """
    xp = get_namespace(X, *factors)
    n, shape = X.shape[0], X.shape[1:]
    rank = factors[0].shape[1]
    A, d, B = math.prod(shape[:m]), shape[m], math.prod(shape[m + 1 :])
    before = khatri_rao(factors[:m]) if m else None
    after = khatri_rao(factors[m + 1 :]) if m < len(shape) - 1 else None
    if after is None and before is None:
        return xp.broadcast_to(xp.reshape(X, (n, d, 1)), (n, d, rank))
    if after is not None and (before is None or B >= A):
        T = xp.reshape(xp.matmul(xp.reshape(X, (n, A * d, B)), after), (n, A, d, rank))
        return T[:, 0] if before is None else einsum("nadr,ar->ndr", T, before)
    T = xp.reshape(xp.matmul(before.T, xp.reshape(X, (n, A, d * B))), (n, rank, d, B))
    if after is None:
        return xp.moveaxis(T[..., 0], 1, 2)
    return einsum("nrdb,br->ndr", T, after)


def _mode_design(X, m, P):
    """``design[n, i, r] = sum X[n, a, i, b] P[r, a, b]`` with X viewed as (n, A, d_m, B) and P
    of shape (R, A * B): a batched GEMM when mode m is the first or the last one."""
    xp = get_namespace(X, P)
    n, shape = X.shape[0], X.shape[1:]
    A, d, B = math.prod(shape[:m]), shape[m], math.prod(shape[m + 1 :])
    R = P.shape[0]
    if A == 1:
        return xp.matmul(xp.reshape(X, (n, d, B)), P.T)
    if B == 1:
        return xp.moveaxis(xp.matmul(P, xp.reshape(X, (n, A, d))), 1, 2)
    return einsum("naib,rab->nir", xp.reshape(X, (n, A, d, B)), xp.reshape(P, (R, A, B)))


def _chain(cores, xp, dtype, from_left):
    """Contraction of consecutive TT cores into a matrix: (prod I, r) from the left end,
    (r, prod I) from the right end; the empty chain is the 1 x 1 identity."""
    if not cores:
        return xp.ones((1, 1), dtype=dtype)
    result = xp.reshape(cores[0], (-1, cores[0].shape[2]))
    for core in cores[1:]:
        result = xp.reshape(result @ xp.reshape(core, (core.shape[0], -1)), (-1, core.shape[2]))
    # ``result`` is (r_first * prod I, r_last); the outer bond is 1 at either end of the train
    if from_left:
        return result
    return xp.reshape(result, (cores[0].shape[0], -1))


def _result(weights, losses, tol, y, X_mean, y_mean, fit_intercept):
    """The FitResult of a solver: relative training errors from the mean squared errors."""
    scale = float(y @ y) / y.shape[0] or 1.0
    return FitResult(
        len(losses),
        [math.sqrt(loss / scale) for loss in losses],
        _converged(losses, tol, y),
        intercept=_intercept(weights, X_mean, y_mean, fit_intercept),
    )


def _intercept(weights, X_mean, y_mean, fit_intercept):
    if not fit_intercept:
        return 0.0
    xp = get_namespace(X_mean)
    return float(y_mean - xp.sum(weights.to_tensor() * X_mean))
