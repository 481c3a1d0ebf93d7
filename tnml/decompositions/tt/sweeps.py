"""The sweeps of the dense tensor-train algorithms (:func:`~tnml.decompositions.tt_als`,
:func:`~tnml.decompositions.tt_dmrg`) on cores ``(r_k, I_k, r_{k+1})``.

Both keep the cores orthonormal, so every local least-squares problem is a projection:
``core = frame^T @ data``, with no Gram matrix to invert. The data is projected onto the right
frames once per sweep (each projection reuses the previous one) and every product is a GEMM on
a reshape view of the tensor, never a copied unfolding.
"""

from ...backend import get_namespace
from .._chain import qr_right
from .._fitting import expanded_error
from .._linalg import truncated_svd

__all__ = ["als_sweep", "dmrg_sweep", "projection_error"]


def _right_projections(X, cores):
    """``P[k]``: X contracted with cores ``k+1 .. d-1``, shape ``(I_1 ... I_k, r_{k+1})``.

    Each is one GEMM on the previous one, so a sweep reads X once (for ``P[d-2]``).
    """
    xp = get_namespace(X, *cores)
    projections = [None] * len(cores)
    projections[-1] = xp.reshape(X, (-1, 1))
    for k in range(len(cores) - 1, 0, -1):
        rank_in, size, rank_out = cores[k].shape
        projections[k - 1] = (
            xp.reshape(projections[k], (-1, size * rank_out))
            @ xp.reshape(cores[k], (rank_in, size * rank_out)).T
        )
    return projections


def _extend_frame(frame, core):
    """Left frame (rows: multi-indices of modes < k+1) after appending left-orthonormal core k."""
    xp = get_namespace(frame, core)
    rank_in, size, rank_out = core.shape
    return xp.reshape(frame @ xp.reshape(core, (rank_in, size * rank_out)), (-1, rank_out))


def _right_orthonormal(cores):
    cores = list(cores)
    for k in range(len(cores) - 1, 0, -1):
        qr_right(cores, k)
    return cores


def als_sweep(X, cores, ranks=None, rel_delta=None):
    """One left-to-right one-site ALS sweep; returns the cores and the last left frame.

    With orthonormal frames the least-squares core is ``frame^T @ P[k]``; a QR then makes it
    left-orthonormal for the next frame (its R factor is dropped: the next core is re-solved).
    """
    xp = get_namespace(X, *cores)
    cores = _right_orthonormal(cores)
    projections = _right_projections(X, cores)
    frame = xp.ones((1, 1), dtype=X.dtype)
    d = len(cores)
    for k in range(d):
        rank_in, size, rank_out = cores[k].shape
        core = frame.T @ xp.reshape(projections[k], (frame.shape[0], size * rank_out))
        if k == d - 1:
            cores[k] = xp.reshape(core, (rank_in, size, rank_out))
            break
        q, _ = xp.linalg.qr(xp.reshape(core, (rank_in * size, rank_out)))
        cores[k] = xp.reshape(q, (rank_in, size, rank_out))
        frame = _extend_frame(frame, cores[k])
    return cores, frame


def dmrg_sweep(X, cores, ranks, rel_delta):
    """One left-to-right two-site sweep; the SVD of each supercore sets the bond it spans.

    The truncation is relative to the supercore's own norm, not to ``||X||``: from a poor start
    (rank 1) the supercore holds a small part of X, and an absolute budget would let every
    bond stay at rank 1 while the projection error, which the SVD never sees, stays large.
    """
    xp = get_namespace(X, *cores)
    cores = _right_orthonormal(cores)
    projections = _right_projections(X, cores)
    frame = xp.ones((1, 1), dtype=X.dtype)
    for k in range(len(cores) - 1):
        rank_in, size = frame.shape[1], cores[k].shape[1]
        _, size_next, rank_out = cores[k + 1].shape
        supercore = frame.T @ xp.reshape(
            projections[k + 1], (frame.shape[0], size * size_next * rank_out)
        )
        delta = rel_delta * float(xp.linalg.norm(xp.reshape(supercore, (-1,))))
        u, s, vt = truncated_svd(
            xp.reshape(supercore, (rank_in * size, size_next * rank_out)),
            rank=None if ranks is None else ranks[k],
            delta=delta,
        )
        cores[k] = xp.reshape(u, (rank_in, size, s.shape[0]))
        cores[k + 1] = xp.reshape(s[:, None] * vt, (s.shape[0], size_next, rank_out))
        frame = _extend_frame(frame, cores[k])
    return cores, frame


def projection_error(X, frame, last, norm_x):
    """Relative error of ``frame @ last``, the orthogonal projection of X on the frame."""
    xp = get_namespace(X, frame, last)
    # Orthonormal frame: ||X - X_hat||^2 = ||X||^2 - ||last||^2 (exact unless it cancels).
    error = expanded_error(norm_x**2 - float(xp.sum(last * last)), norm_x**2, X.dtype)
    if error is not None:
        return error
    approx = frame @ xp.reshape(last, (frame.shape[1], -1))
    return float(xp.linalg.norm(xp.reshape(X, approx.shape) - approx)) / (norm_x or 1.0)
