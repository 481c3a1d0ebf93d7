"""Low-tubal-rank completion: TNN minimisation (ADMM), alternating minimisation and gradient
descent, behind one :func:`tubal_complete`."""

import math

import numpy as np

from ..._config import check_memory
from ..._validation import check_masked_tensor, check_nonneg_float, check_positive_int
from ...backend import check_random_state, to_device
from .._base import FitResult
from .algebra import t_svd, t_transpose_bound, tubal_from_factors
from .transforms import bind_transform, hermitian_transpose, slice_svd

__all__ = ["tubal_complete", "tnn_complete", "altmin_complete", "gd_complete"]

_SOLVERS = ("admm", "altmin", "gd")
# Relative ridge of altmin_complete's normal matrices when no alpha is given (a safeguard).
_ALTMIN_SAFEGUARD = 1e-12


# ---------------------------------------------------------------------------------------------
# Completion
# ---------------------------------------------------------------------------------------------
def _check_completion_input(X, mask, transform, need_orthogonal=True):
    X, mask = check_masked_tensor(X, mask, min_order=3, require_mask=True)
    tr = bind_transform(transform, X)
    if need_orthogonal and not tr.orthogonal:
        raise ValueError(
            "transform must be orthogonal up to scale (M @ M.T = l * I, as the "
            "FFT, the DCT and orthogonal matrices are) for this completion solver"
        )
    return X, mask, tr


def _svt(tr, stack, threshold):
    """Singular value thresholding of every transformed slice (the prox of the TNN)."""
    xp = tr.xp
    u, s, vh = slice_svd(tr, stack)
    s = xp.maximum(s - threshold, 0)
    keep = int(xp.max(xp.sum(s > 0, axis=1))) if s.size else 0
    if keep == 0:
        return xp.zeros(stack.shape, dtype=stack.dtype), 0
    u, s, vh = u[:, :, :keep], s[:, :keep], vh[:, :keep]
    return (u * xp.asarray(s, dtype=u.dtype)[:, None, :]) @ vh, keep


def tnn_complete(
    X,
    *,
    mask=None,
    rank=None,
    transform="fft",
    max_iter=500,
    tol=1e-8,
    rho=1.1,
    mu=None,
    mu_max=1e10,
    verbose=0,
):
    """Tensor completion by minimising the tensor nuclear norm with ADMM (the convex baseline).

    Solves ``min ||Z||_TNN  s.t.  Z = X on the observed entries`` with the splitting of Lu et
    al.: ``Z`` low-rank, ``E`` supported on the missing entries, ``Z + E = X``. Each iteration
    is one singular value thresholding of the transformed slices (batched SVD).

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
        Values at the missing entries are ignored (may be NaN).
    mask : bool array of X's shape
        True where X is observed (required).
    rank : int, optional
        Tubal rank at which the t-SVD of the completed tensor is truncated (None: the full
        t-SVD, which reproduces the completed tensor).
    transform : {'fft', 'dct'} or orthogonal matrix, default='fft'
    max_iter : int, default=500
    tol : float, default=1e-8
        Stop when the largest change of the iterates and the constraint violation fall below
        ``tol`` times the largest observed magnitude.
    rho : float, default=1.1
        Growth factor of the penalty ``mu`` per iteration.
    mu : float, optional
        Initial penalty. Default ``1 / sigma`` with ``sigma`` the largest singular value of the
        transformed slices of the zero-filled data, so that the first thresholding already
        keeps the leading component (Lu et al. start at 1e-4 on data in [0, 1]).
    mu_max : float, default=1e10
    verbose : int, default=0

    Returns
    -------
    tubal : TubalTensor
        The t-SVD of the completed tensor (observed entries kept, missing ones from the
        low-TNN iterate); with ``rank=None``, ``tubal.to_tensor()`` is the completed array.
    info : FitResult
        ``errors``: relative error of the low-rank iterate on the observed entries.

    References
    ----------
    Lu, Feng, Lin & Yan, "Exact low tubal rank tensor recovery from Gaussian measurements",
    IJCAI 2018; Lu, Feng, Chen, Liu, Lin & Yan, "Tensor robust principal component analysis
    with a new tensor nuclear norm", IEEE TPAMI 2020; Zhang & Aeron, "Exact tensor completion
    using t-SVD", IEEE TSP 65(6), 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_product, tnn_complete
    >>> rng = np.random.default_rng(0)
    >>> X = t_product(rng.standard_normal((20, 2, 8)), rng.standard_normal((2, 20, 8)))
    >>> mask = rng.random(X.shape) < 0.6
    >>> tubal, info = tnn_complete(X, mask=mask)
    >>> bool(np.linalg.norm(tubal.to_tensor() - X) / np.linalg.norm(X) < 1e-5)
    True
    """
    M, mask, tr = _check_completion_input(X, mask, transform)
    check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    rho = check_nonneg_float(rho, "rho")
    if rho < 1:
        raise ValueError(f"rho must be >= 1, got {rho}")
    mu_max = check_nonneg_float(mu_max, "mu_max")
    xp = tr.xp
    check_memory(M.size * 8 * np.dtype(tr.dtype).itemsize, "tnn_complete")
    scale = float(xp.max(xp.abs(M)))
    scale = scale if scale > 0 else 1.0
    norm_obs = float(xp.linalg.norm(xp.reshape(M, (-1,))))
    norm_obs = norm_obs if norm_obs > 0 else 1.0
    if mu is None:
        sigma = float(xp.max(slice_svd(tr, tr.to_slices(M), compute_uv=False)))
        mu = 1.0 / sigma if sigma > 0 else 1.0
    else:
        mu = check_nonneg_float(mu, "mu")
        if mu == 0:
            raise ValueError("mu must be > 0")
    E = xp.zeros_like(M)
    Y = xp.zeros_like(M)
    Z = xp.zeros_like(M)
    errors, converged = [], False
    for iteration in range(max_iter):
        Z_old, E_old = Z, E
        Z, keep = _svt(tr, tr.to_slices(M - E + Y / mu), 1.0 / mu)
        Z = tr.from_slices(Z)
        E = xp.where(mask, 0, M - Z + Y / mu)
        residual = M - Z - E  # zero off the mask by construction
        change = max(
            float(xp.max(xp.abs(Z - Z_old))),
            float(xp.max(xp.abs(E - E_old))),
            float(xp.max(xp.abs(residual))),
        )
        errors.append(float(xp.linalg.norm(xp.reshape(residual, (-1,)))) / norm_obs)
        if verbose:
            print(
                f"tnn_complete iteration {iteration + 1}: observed error {errors[-1]:.3e}, "
                f"rank {keep}, mu {mu:.3g}"
            )
        if change < tol * scale:
            converged = True
            break
        Y = Y + mu * residual
        mu = min(rho * mu, mu_max)
    completed = xp.where(mask, M, Z)
    return t_svd(completed, rank=rank, transform=transform)[0], FitResult(
        len(errors), errors, converged
    )


def _design_rows(tr, v_hat):
    """Matrices of the linear maps ``u -> (u * V^T)(:, j)`` restricted to one row of U.

    Returns ``D`` of shape ``(n2 * T, r * T)``: row ``(j, k)``, column ``(r, k')`` is the
    coefficient of ``u[r, k']`` in ``X[i, j, k]`` for ``X = U * V^T``.
    """
    xp = tr.xp
    n_tube = tr.n_tube
    basis = xp.reshape(xp.eye(n_tube, dtype=tr.dtype), (n_tube,) + tr.tube_shape)
    basis_hat = tr.forward(basis)  # (T', S) rows: k'
    _, n2, r = v_hat.shape
    coeff = tr.conj(xp.moveaxis(v_hat, 0, -1))  # (n2, r, S)
    prod = coeff[:, :, None, :] * basis_hat[None, None, :, :]  # (n2, r, k', S)
    cols = xp.reshape(tr.inverse(prod), (n2, r, n_tube, n_tube))  # (n2, r, k', k)
    return xp.reshape(xp.transpose(cols, (0, 3, 1, 2)), (n2 * n_tube, r * n_tube))


def _als_half_step(tr, target, maskflat, v_hat, ridge):
    """Least-squares update of U given V, one independent system per horizontal slice.

    ``ridge`` is ``(relative, alpha)``: the larger of ``relative`` times a slice's mean Gram
    diagonal and the absolute ``alpha`` is added to its diagonal.
    """
    xp = tr.xp
    n1 = target.shape[0]
    design = _design_rows(tr, v_hat)
    size = design.shape[1]
    grams = xp.empty((n1, size, size), dtype=tr.dtype)
    rhs = xp.empty((n1, size), dtype=tr.dtype)
    targetflat = xp.reshape(target, (n1, -1))
    for i in range(n1):
        rows = design[maskflat[i]]
        grams[i] = rows.T @ rows
        rhs[i] = rows.T @ targetflat[i][maskflat[i]]
    diag = xp.arange(size)
    trace = xp.sum(grams[:, diag, diag], axis=1) / size
    relative, alpha = ridge
    grams[:, diag, diag] += (xp.maximum(relative * trace, alpha) + 1e-300)[:, None]
    solution = xp.linalg.solve(grams, rhs[:, :, None])[:, :, 0]  # (n1, r*T)
    r = v_hat.shape[2]
    return xp.reshape(solution, (n1, r) + tr.tube_shape)


def altmin_complete(
    X,
    rank,
    *,
    mask=None,
    transform="fft",
    max_iter=100,
    tol=1e-10,
    alpha=None,
    init="svd",
    random_state=None,
    verbose=0,
):
    """Low-tubal-rank completion by alternating least squares on ``X = U * V^T``.

    Each half step solves the exact least-squares problem for one factor on the observed
    entries: one ``(r n3) x (r n3)`` system per horizontal (resp. lateral) slice.

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
    rank : int
        Tubal rank ``r`` of the factors.
    mask : bool array of X's shape
        True where X is observed (required).
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'
    max_iter : int, default=100
        Maximum number of sweeps (U then V).
    tol : float, default=1e-10
        Stop when the relative observed error falls below ``tol`` or changes by less than
        ``tol`` (relative) between sweeps.
    alpha : float or None, default=None
        Ridge penalty of every normal matrix, absolute (added to its diagonal as is). None: a
        safeguard of 1e-12 times each normal matrix's mean diagonal.
    init : {'svd', 'random'}, default='svd'
        ``'svd'``: leading tubal singular slices of the zero-filled data rescaled by the
        observed fraction (Liu & Aeron); ``'random'``: Gaussian.
    random_state : None, int or RandomState
    verbose : int, default=0

    Returns
    -------
    tubal : TubalTensor
        Compact t-SVD of the fitted ``U * V^T``.
    info : FitResult

    References
    ----------
    Liu, Aeron, Aggarwal & Wang, "Low-tubal-rank tensor completion using alternating
    minimization", SPIE 2016 / IEEE Trans. Inf. Theory 66(3), 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_product, altmin_complete
    >>> rng = np.random.default_rng(0)
    >>> X = t_product(rng.standard_normal((15, 2, 6)), rng.standard_normal((2, 15, 6)))
    >>> mask = rng.random(X.shape) < 0.5
    >>> tt, info = altmin_complete(X, 2, mask=mask)
    >>> bool(np.linalg.norm(tt.to_tensor() - X) / np.linalg.norm(X) < 1e-6)
    True
    """
    M, mask, tr = _check_completion_input(X, mask, transform, need_orthogonal=False)
    n1, n2 = M.shape[:2]
    rank = check_positive_int(rank, "rank", upper=min(n1, n2))
    check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    ridge = (_ALTMIN_SAFEGUARD, 0.0) if alpha is None else (0.0, check_nonneg_float(alpha, "alpha"))
    xp = tr.xp
    size = rank * tr.n_tube
    check_memory(
        (max(n1, n2) * size * size + max(n1, n2) * tr.n_tube * size * 2)
        * np.dtype(tr.dtype).itemsize,
        "altmin_complete normal equations",
    )
    n_obs = int(xp.sum(mask))
    norm_obs = float(xp.linalg.norm(xp.reshape(M, (-1,))))
    norm_obs = norm_obs if norm_obs > 0 else 1.0
    if init == "svd":
        tt, _ = t_svd(M * (M.size / n_obs), rank=rank, transform=transform)
        s_hat = xp.moveaxis(tr.forward(tt.s), -1, 0)
        U = tr.from_slices(tr.to_slices(tt.U) * xp.asarray(s_hat, tr.slice_dtype)[:, None, :])
        V = tt.V
    elif init == "random":
        rng = check_random_state(random_state)
        U = xp.asarray(
            to_device(rng.standard_normal((n1, rank) + tr.tube_shape), xp), dtype=tr.dtype
        )
        V = xp.asarray(
            to_device(rng.standard_normal((n2, rank) + tr.tube_shape), xp), dtype=tr.dtype
        )
    else:
        raise ValueError(f"init must be 'svd' or 'random', got {init!r}")
    mask_rows = xp.reshape(mask, (n1, -1))
    # X^T = V * U^T with the t-transpose (tubes reversed under the FFT), so the V step is
    # the U step on the t-transposed data and mask.
    mask_cols = xp.reshape(t_transpose_bound(tr, mask), (n2, -1))
    M_t = t_transpose_bound(tr, M)
    errors, converged = [], False
    for iteration in range(max_iter):
        # X = U * V^T: rows of U given V; X^T = V * U^T: rows of V given U.
        U = _als_half_step(tr, M, mask_rows, tr.to_slices(V), ridge)
        V = _als_half_step(tr, M_t, mask_cols, tr.to_slices(U), ridge)
        fit = tr.from_slices(tr.to_slices(U) @ hermitian_transpose(xp, tr.to_slices(V)))
        error = float(xp.linalg.norm(xp.reshape(xp.where(mask, fit - M, 0), (-1,)))) / norm_obs
        errors.append(error)
        if verbose:
            print(f"altmin_complete sweep {iteration + 1}: observed error {error:.3e}")
        if error <= tol or (iteration and abs(errors[-2] - error) <= tol * errors[-2]):
            converged = True
            break
    return tubal_from_factors(U, V, transform), FitResult(len(errors), errors, converged)


def gd_complete(
    X,
    *,
    mask=None,
    rank=None,
    init_scale=1e-3,
    learning_rate=0.5,
    max_iter=2000,
    tol=1e-7,
    transform="fft",
    random_state=None,
    callback=None,
    verbose=0,
):
    """Completion by gradient descent on an overparametrised ``U * V^T`` from a small start.

    Minimises ``(1 / 2p) ||P_Omega(U * V^T - X)||_F^2`` over factors of full width
    ``rank = min(n1, n2)`` by default, with no explicit regulariser: from a small random
    initialisation, gradient descent is biased towards low tubal rank (the tubal analogue of
    implicit regularisation in matrix factorisation). The iterations run on the transformed
    slices (one batched matmul per factor and two transforms of the residual per step).

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
    mask : bool array of X's shape
        True where X is observed (required); ``p`` is the observed fraction.
    rank : int, optional
        Width of the factors; default ``min(n1, n2)`` (overparametrised).
    init_scale : float, default=1e-3
        Scale of the random start, relative to the data: the initial factors are Gaussian,
        scaled so that each of their transformed slices has spectral norm about
        ``init_scale * sqrt(sigma)`` (``sigma`` as below); the initial ``U * V^T`` is then about
        ``init_scale**2`` times the data's scale.
    learning_rate : float, default=0.5
        Step size relative to ``1 / sigma``, where ``sigma`` is the largest singular value of
        the transformed slices of the zero-filled data divided by ``p``.
    max_iter : int, default=2000
    tol : float, default=1e-7
        Stop when the relative error on the observed entries falls below ``tol`` (a change
        criterion would stop on the initial plateau of a small start).
    transform : {'fft', 'dct'} or orthogonal matrix, default='fft'
    random_state : None, int or RandomState
    callback : callable, optional
        ``callback(iteration, U, V)`` after each step with the spatial factors; returning
        ``True`` stops the iterations.
    verbose : int, default=0

    Returns
    -------
    tubal : TubalTensor
        Compact t-SVD of the final ``U * V^T`` (its tubal singular values show the implicit
        low-rank bias; see :func:`tubal_rank` with ``rtol``).
    info : FitResult

    References
    ----------
    Karnik, Veselovska, Iwen & Krahmer, "Implicit regularization for tubal tensor
    factorizations via gradient descent", ICML 2025. Gunasekar et al., "Implicit regularization
    in matrix factorization", NeurIPS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_product, gd_complete, tubal_rank
    >>> rng = np.random.default_rng(0)
    >>> X = t_product(rng.standard_normal((12, 2, 4)), rng.standard_normal((2, 12, 4)))
    >>> tt, info = gd_complete(X, mask=rng.random(X.shape) < 0.7, random_state=0)
    >>> tubal_rank(tt.to_tensor(), rtol=1e-3)
    2
    """
    M, mask, tr = _check_completion_input(X, mask, transform)
    n1, n2 = M.shape[:2]
    rank = min(n1, n2) if rank is None else check_positive_int(rank, "rank")
    init_scale = check_nonneg_float(init_scale, "init_scale")
    learning_rate = check_nonneg_float(learning_rate, "learning_rate")
    check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    xp = tr.xp
    check_memory(M.size * 6 * np.dtype(tr.slice_dtype).itemsize, "gd_complete")
    fraction = float(xp.sum(mask)) / M.size
    norm_obs = float(xp.linalg.norm(xp.reshape(M, (-1,))))
    norm_obs = norm_obs if norm_obs > 0 else 1.0
    sigma = float(xp.max(slice_svd(tr, tr.to_slices(M), compute_uv=False))) / fraction
    step = learning_rate / (sigma if sigma > 0 else 1.0)
    rng = check_random_state(random_state)
    # Entry scale such that every transformed slice of U0 (V0) has spectral norm close to
    # init_scale * sqrt(sigma): the initial product is init_scale**2 times the data's scale,
    # whatever the size, the transform or the units of X.
    unit = init_scale * math.sqrt(sigma / tr.scale) if sigma > 0 else init_scale
    U0 = rng.standard_normal((n1, rank) + tr.tube_shape) * (unit / (n1**0.5 + rank**0.5))
    V0 = rng.standard_normal((n2, rank) + tr.tube_shape) * (unit / (n2**0.5 + rank**0.5))
    u_hat = tr.to_slices(xp.asarray(to_device(U0, xp), dtype=tr.dtype))
    v_hat = tr.to_slices(xp.asarray(to_device(V0, xp), dtype=tr.dtype))
    errors, converged = [], False
    for iteration in range(max_iter):
        fit = tr.from_slices(u_hat @ hermitian_transpose(xp, v_hat))
        residual = xp.where(mask, fit - M, 0)
        errors.append(float(xp.linalg.norm(xp.reshape(residual, (-1,)))) / norm_obs)
        if verbose:
            print(f"gd_complete iteration {iteration + 1}: observed error {errors[-1]:.3e}")
        if errors[-1] <= tol:
            converged = True
            break
        r_hat = tr.to_slices(residual / fraction)
        grad_u = r_hat @ v_hat
        grad_v = hermitian_transpose(xp, r_hat) @ u_hat
        u_hat = u_hat - step * grad_u
        v_hat = v_hat - step * grad_v
        if callback is not None and callback(
            iteration, tr.from_slices(u_hat), tr.from_slices(v_hat)
        ):
            break
    U, V = tr.from_slices(u_hat), tr.from_slices(v_hat)
    return tubal_from_factors(U, V, transform), FitResult(len(errors), errors, converged)


def tubal_complete(X, *, mask=None, solver="admm", rank=None, transform="fft", **params):
    """Low-tubal-rank completion, with the algorithm chosen by ``solver``.

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
    mask : bool array of X's shape
        True where X is observed (required).
    solver : {'admm', 'altmin', 'gd'}, default='admm'
        ``'admm'``: TNN minimisation (:func:`tnn_complete`, convex, no rank needed);
        ``'altmin'``: alternating least squares at tubal rank ``rank``
        (:func:`altmin_complete`); ``'gd'``: gradient descent on an overparametrised
        factorisation from a small start (:func:`gd_complete`; ``rank`` is the factor width).
    rank : int, optional
        Required by ``'altmin'``; optional for ``'gd'``; for ``'admm'``, the tubal rank at
        which the t-SVD of the completed tensor is truncated (None: the full t-SVD).
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'
    **params
        Passed to the solver.

    Returns
    -------
    result : TubalTensor
        For every solver (``'admm'``: the t-SVD of the completed tensor).
    info : FitResult

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_product, tubal_complete
    >>> rng = np.random.default_rng(0)
    >>> X = t_product(rng.standard_normal((10, 2, 4)), rng.standard_normal((2, 10, 4)))
    >>> tt, info = tubal_complete(X, mask=rng.random(X.shape) < 0.6, solver="altmin", rank=2)
    >>> tt.rank
    2
    """
    if solver == "admm":
        return tnn_complete(X, mask=mask, rank=rank, transform=transform, **params)
    if solver == "altmin":
        if rank is None:
            raise ValueError("solver='altmin' needs rank (the tubal rank of the factors)")
        return altmin_complete(X, rank, mask=mask, transform=transform, **params)
    if solver == "gd":
        return gd_complete(X, mask=mask, rank=rank, transform=transform, **params)
    raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}")
