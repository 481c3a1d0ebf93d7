"""Matrix completion by nuclear-norm regularisation (soft-impute), as a rank-R CP of order 2.

Soft-impute (Mazumder, Hastie & Tibshirani 2010) solves
``min_Z 1/2 ||P_obs(X - mu - Z)||^2 + lam ||Z||_*`` (``mu``: the column means of the observed
entries) by iterating ``Z <- SVT_lam(P_obs(X - mu) + P_miss(Z))``: fill the missing entries with
the current model, shrink every singular value by ``lam`` and drop those that reach zero. The
rank is not fixed: it is the number of singular values above ``lam``. Warm-started along a
decreasing path of ``lam`` it is the regularisation path of the convex problem, whose
held-out error chooses ``lam`` (and with it the rank).

One iteration costs one Gram matrix of the filled matrix and its eigendecomposition,
``O(n J min(n, J))``: cheap when one side is short (samples x a few hundred features), where
an ALS over the observed entries pays ``O(n_obs R^2)`` per sweep at every rank of a ladder.
"""

from .._config import check_memory
from .._validation import check_masked_tensor, check_nonneg_float, check_positive_int
from ..backend import get_namespace
from ._base import FitResult
from .cp import CPTensor

__all__ = ["soft_impute", "soft_impute_memory", "largest_singular_value"]


def soft_impute_memory(shape, itemsize=8):
    """Bytes that :func:`soft_impute` holds for a matrix of ``shape`` (copies of the matrix
    and the Gram matrix of its short side)."""
    n, width = shape
    short = min(n, width)
    return (6 * n * width + 3 * short * short) * itemsize


def _centred(X, mask):
    xp = get_namespace(X)
    filled = xp.where(mask, X, 0)
    counts = xp.sum(mask, axis=0)
    mean = xp.sum(filled, axis=0) / xp.maximum(counts, 1)
    return xp.where(mask, filled - mean, 0), mean


def _svt(Z, threshold, max_rank):
    """Singular values of Z shrunk by ``threshold``, those above it kept: (U, s, V)."""
    xp = get_namespace(Z)
    tall = Z.shape[0] >= Z.shape[1]
    gram = Z.T @ Z if tall else Z @ Z.T
    eigenvalues, vectors = xp.linalg.eigh(gram)
    singular = xp.sqrt(xp.maximum(eigenvalues[::-1], 0))
    vectors = vectors[:, ::-1]
    keep = int(xp.sum(singular > threshold))
    if max_rank is not None:
        keep = min(keep, max_rank)
    singular, vectors = singular[:keep], vectors[:, :keep]
    if tall:
        V = vectors
        U = (Z @ V) / singular if keep else Z[:, :0]
    else:
        U = vectors
        V = (Z.T @ U) / singular if keep else Z[:0].T
    return U, singular - threshold, V


def largest_singular_value(X, mask):
    """The largest singular value of the centred, zero-filled observations: the smallest
    threshold of :func:`soft_impute` at which the model is the column means alone."""
    xp = get_namespace(X)
    centred, _ = _centred(X, mask)
    tall = centred.shape[0] >= centred.shape[1]
    gram = centred.T @ centred if tall else centred @ centred.T
    return float(xp.sqrt(xp.maximum(xp.linalg.eigvalsh(gram)[-1], 0)))


def soft_impute(
    X, *, mask, alpha, rank="auto", max_iter=100, tol=1e-5, init=None, scale=None, verbose=0
):
    """Soft-impute completion of a matrix: column means plus a nuclear-norm-shrunk low rank.

    Parameters
    ----------
    X : array of shape (n, J)
        Unobserved entries are ignored (may be NaN).
    mask : bool array of shape (n, J)
        True where X is observed.
    alpha : float
        The singular-value threshold ``lam``, relative to ``scale`` (default: the largest
        singular value of the centred zero-filled observations, at which the low-rank part
        vanishes), so in (0, 1) for a model with a low-rank part.
    rank : int or 'auto', default='auto'
        'auto': every singular value above the threshold is kept (the rank follows from
        ``alpha``); an int keeps at most that many (rank-restricted soft-impute).
    max_iter : int, default=100
        Iterations (each one thresholded SVD).
    tol : float, default=1e-5
        Stop when ``||Z_new - Z||^2 / ||Z||^2`` falls below ``tol`` (squared: 1e-5 stops at
        a relative change of 0.3%; along a warm-started path that is early stopping, which
        regularises too). Small thresholds from a cold start converge slowly (hundreds of
        iterations): warm-start them from larger ones.
    init : CPTensor, optional
        A previous fit of the same shape (e.g. at a larger ``alpha``): the warm start.
    scale : float, optional
        What ``alpha`` is relative to (see ``alpha``); pass it to keep the absolute threshold
        of another call.
    verbose : int, default=0
        Print the error after each iteration.

    Returns
    -------
    cp : CPTensor
        ``R + 1`` components: the shrunk singular triplets (weights = shrunk singular values,
        unit factor columns) and a last component ``ones x mu`` (weight 1) for the column
        means.
    info : FitResult
        ``errors``: relative error over the observed entries per iteration.

    References
    ----------
    Mazumder, Hastie & Tibshirani, "Spectral regularization algorithms for learning large
    incomplete matrices", JMLR 11, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.soft_impute import soft_impute
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 3)) @ rng.standard_normal((3, 40)) + 5.0
    >>> mask = rng.random(X.shape) < 0.6
    >>> cp, info = soft_impute(X, mask=mask, alpha=0.01, max_iter=1000, tol=1e-10)
    >>> bool(np.linalg.norm(cp.to_tensor() - X) / np.linalg.norm(X) < 2e-2)
    True
    """
    X, mask = check_masked_tensor(X, mask, min_order=2, require_mask=True)
    if X.ndim != 2:
        raise ValueError(f"soft_impute completes a matrix, got X of shape {tuple(X.shape)}")
    alpha = check_nonneg_float(alpha, "alpha")
    check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    if rank == "auto":
        max_rank = None
    else:
        max_rank = check_positive_int(rank, "rank")
    xp = get_namespace(X)
    check_memory(soft_impute_memory(X.shape, X.dtype.itemsize), "soft_impute")
    centred, mean = _centred(X, mask)
    if scale is None:
        scale = largest_singular_value(X, mask)
    threshold = alpha * scale
    if init is None:
        Z = xp.zeros_like(centred)
    else:
        if tuple(init.shape) != tuple(X.shape):
            raise ValueError(f"init has shape {tuple(init.shape)}, X has {tuple(X.shape)}")
        Z = init.to_tensor() - mean
    norm_observed = float(xp.linalg.norm(xp.where(mask, X, 0)))
    norm_observed = norm_observed if norm_observed > 0 else 1.0
    errors, converged = [], False
    U, s, V = centred[:, :0], xp.zeros(0, dtype=X.dtype), centred[:0].T
    for iteration in range(max_iter):
        U, s, V = _svt(xp.where(mask, centred, Z), threshold, max_rank)
        new = (U * s) @ V.T
        change = float(xp.sum((new - Z) ** 2)) / max(float(xp.sum(Z * Z)), 1e-300)
        Z = new
        errors.append(float(xp.linalg.norm(xp.where(mask, centred - Z, 0))) / norm_observed)
        if verbose:
            print(
                f"soft_impute iteration {iteration + 1}: rank {s.shape[0]}, error {errors[-1]:.6g}"
            )
        if change < tol:
            converged = True
            break
    ones = xp.ones((X.shape[0], 1), dtype=X.dtype)
    mean_norm = float(xp.linalg.norm(mean))
    unit_mean = mean / mean_norm if mean_norm > 0 else mean
    weights = xp.concatenate([s, xp.asarray([mean_norm * X.shape[0] ** 0.5], dtype=X.dtype)])
    factors = [
        xp.concatenate([U, ones / X.shape[0] ** 0.5], axis=1),
        xp.concatenate([V, unit_mean[:, None]], axis=1),
    ]
    return CPTensor(weights, factors), FitResult(iteration + 1, errors, converged)
