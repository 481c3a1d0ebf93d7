"""Spectral starts for completion, built from the observed entries without densifying.

A random start leaves ALS on sparse observations in a swamp more often than not (300^3, rank 8,
2*10^5 entries: 5 of 6 random starts stall at a training error of 0.3-0.6). The classical
remedy (Keshavan, Montanari & Oh 2010; Jain & Oh 2014) starts from the leading singular
subspaces of the *rescaled zero-filled* unfoldings, which estimate the true ones once there
are ``O(I^{N/2} R)`` observations.

For mode ``n`` let ``M`` be the zero-filled mode-``n`` unfolding (one column per index of the
other modes, observed entries only). With sampling rate ``p``, ``E[M M^T] = p^2 X X^T`` off the
diagonal and ``p X X^T`` on it, so ``M M^T - (1 - p) D`` (``D`` the diagonal of ``M M^T``)
estimates ``p^2 X X^T`` without the diagonal bias that otherwise dominates when most columns
hold a single observation. Its leading eigenvectors come from a subspace iteration in which
every product with ``M`` or ``M^T`` is a segment sum over the observations: ``O(n_obs * k)``
per step, nothing of the size of the unfolding.

For CP, the zero-filled tensor rescaled by ``1/p`` is projected onto those subspaces (a small
``k^N`` core, one pass over the observations) and the core's CP decomposition, mapped back,
is the start (:func:`tnml.decompositions.cp.spectral_cp`, beside CP): it puts ALS into the
basin of the true factors, not only of their span.
"""

import math

import numpy as np

from ..backend import check_random_state, get_namespace, to_device
from ._linalg import orthonormal_columns
from ._masked import segment_sum

__all__ = [
    "observed_subspaces",
    "projected_core",
    "subspace_iteration",
    "core_sum",
]

# Largest k^N * n_obs multiply-adds spent on projecting the observations onto the core.
_CORE_FLOPS = 4 * 10**9


def _column_groups(observations, mode):
    """Observation -> index of its mode-``mode`` unfolding column (a dense group id)."""
    xp = get_namespace(observations.indices)
    indices, shape = observations.indices, observations.shape
    key = xp.zeros(observations.n_obs, dtype=xp.int64)
    others = [m for m in range(len(shape)) if m != mode]
    if math.prod(shape[m] for m in others) < 2**62:
        for m in others:
            key = key * shape[m] + indices[:, m]
        order = xp.argsort(key, kind="stable")
        sorted_keys = key[order]
    else:  # a linear column index would overflow int64: sort on the coordinates instead
        order = xp.asarray(np.lexsort([np.asarray(indices[:, m]) for m in reversed(others)]))
        sorted_keys = indices[order][:, others]
    if sorted_keys.ndim == 1:
        change = sorted_keys[1:] != sorted_keys[:-1]
    else:
        change = xp.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)
    change = xp.concatenate([xp.ones(1, dtype=bool), change])
    starts = xp.nonzero(change)[0]
    group_sorted = xp.cumsum(change) - 1
    group = xp.empty_like(group_sorted)
    group[order] = group_sorted
    return order, starts, group


def _sparse_module(xp):
    """scipy.sparse for NumPy, cupyx.scipy.sparse for CuPy, None for other namespaces."""
    from ..backend import namespace_name

    name = namespace_name(xp)
    try:
        if name == "numpy":
            import scipy.sparse as sparse
        elif name == "cupy":
            import cupyx.scipy.sparse as sparse
        else:
            return None
    except ImportError:
        return None
    return sparse


def _unfolding_products(observations, mode):
    """``(Y -> M Z, Y -> M^T Y)`` for the zero-filled mode-``mode`` unfolding ``M``.

    Only the observed columns of ``M`` exist (``n_cols <= n_obs``). A sparse CSR matrix in the
    observations' namespace where one exists (about 20x faster than segment sums of gathered
    rows), else segment sums.
    """
    values = observations.values
    xp = get_namespace(values)
    rows = observations.column(mode)
    col_order, col_starts, col_group = _column_groups(observations, mode)
    n_cols, dim = int(col_starts.shape[0]), observations.shape[mode]
    sparse = _sparse_module(xp)
    if sparse is not None:
        M = sparse.csr_matrix(sparse.coo_matrix((values, (rows, col_group)), shape=(dim, n_cols)))
        Mt = M.T.tocsr()
        return (lambda Z: M @ Z), (lambda Y: Mt @ Y)
    row_order, row_groups, row_starts = observations.sorted_by(mode)
    v_rows, v_cols = values[row_order], values[col_order]

    def rmatmul(Y):
        return segment_sum(v_cols[:, None] * xp.take(Y, rows[col_order], axis=0), col_starts)

    def matmul(Z):
        out = xp.zeros((dim, Z.shape[1]), dtype=Z.dtype)
        back = xp.take(Z, col_group[row_order], axis=0) * v_rows[:, None]
        out[row_groups] = segment_sum(back, row_starts)
        return out

    return matmul, rmatmul


def observed_subspaces(observations, rank, n_iter=8, oversample=5, random_state=None):
    """Leading left singular subspaces of the rescaled zero-filled unfoldings.

    Parameters
    ----------
    observations : Observations
    rank : int
        Columns wanted per mode (clipped to the mode size).
    n_iter : int, default=8
        Subspace iterations of the debiased ``M M^T`` (see the module docstring).
    oversample : int, default=5
        Extra columns carried through the iteration (a randomized range finder's oversampling).
    random_state : None, int or RandomState

    Returns
    -------
    list of arrays of shape (I_n, min(rank, I_n))
        Orthonormal columns, in the observations' namespace.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import Observations, random_cp
    >>> from tnml.decompositions._starts import observed_subspaces
    >>> truth = random_cp((30, 30, 30), 2, random_state=0)
    >>> coords = np.random.default_rng(0).integers(0, 30, size=(4000, 3))
    >>> bases = observed_subspaces(Observations(coords, truth.entries(coords), truth.shape), 2)
    >>> q, _ = np.linalg.qr(truth.factors[0])
    >>> bool(np.linalg.svd(q.T @ bases[0], compute_uv=False).min() > 0.9)
    True
    """
    # A rank search asks for rank after rank on the same observations: the subspaces of the
    # largest rank asked so far serve every smaller one (Rayleigh-Ritz orders their columns).
    # Asked for more than the cache holds, twice the cached rank is computed, so that a search
    # over ranks 1, 2, ..., R computes about log2(R) sets of subspaces.
    cached = getattr(observations, "_spectral_bases", None)
    if cached is not None and cached[0] >= rank:
        return [basis[:, : min(rank, basis.shape[1])] for basis in cached[1]]
    wanted = rank
    if cached is not None:
        rank = max(rank, 2 * cached[0])
    values = observations.values
    xp = get_namespace(values)

    def operator(mode):
        matmul, rmatmul = _unfolding_products(observations, mode)
        row_order, row_groups, row_starts = observations.sorted_by(mode)
        diagonal = xp.zeros(observations.shape[mode], dtype=values.dtype)
        diagonal[row_groups] = segment_sum((values * values)[row_order], row_starts)
        return (lambda Y: matmul(rmatmul(Y))), diagonal

    bases = subspace_iteration(
        operator,
        observations.shape,
        observations.n_obs,
        rank,
        n_iter,
        oversample,
        check_random_state(random_state),
        xp,
        values.dtype,
    )
    observations._spectral_bases = (rank, bases)
    return [basis[:, : min(wanted, basis.shape[1])] for basis in bases]


def subspace_iteration(operator, shape, n_obs, rank, n_iter, oversample, rng, xp, dtype):
    """The iteration of :func:`observed_subspaces` on any representation of the observations.

    ``operator(mode)`` returns ``(Y -> M (M^T Y), diagonal of M M^T)`` for the zero-filled
    mode-``mode`` unfolding ``M``; the random draws and every step on the small matrices are
    the same whatever computes those products (in memory, or summed over a cluster's blocks).
    """
    p = min(1.0, n_obs / math.prod(shape))
    bases = []
    for mode, dim in enumerate(shape):
        k = min(rank, dim)
        width = min(dim, k + oversample)
        gram, diagonal = operator(mode)

        def apply(Y, gram=gram, diagonal=diagonal):
            # M (M^T Y) over the observed columns, minus the diagonal bias.
            return gram(Y) - (1 - p) * diagonal[:, None] * Y

        Y = orthonormal_columns(
            xp.asarray(to_device(rng.standard_normal((dim, width)), xp), dtype=dtype)
        )
        for _ in range(n_iter):
            Y = orthonormal_columns(apply(Y))
        # Rayleigh-Ritz: order the carried columns by eigenvalue, keep the leading k.
        small = Y.T @ apply(Y)
        eigenvalues, vectors = xp.linalg.eigh((small + small.T) / 2)
        bases.append(Y @ vectors[:, xp.argsort(-eigenvalues)[:k]])
    return bases


def projected_core(observations, bases):
    """``X_0 x_1 U_1^T ... x_N U_N^T / p``: the zero-filled tensor, rescaled, on the bases.

    ``X_0 / p`` is an unbiased estimate of the tensor, so the result estimates its core in the
    bases. One pass over the observations in chunks; None when it would cost more than
    ``_CORE_FLOPS`` multiply-adds.
    """
    values = observations.values
    xp = get_namespace(values)
    shape = observations.shape
    size = math.prod(b.shape[1] for b in bases)
    if size * observations.n_obs > _CORE_FLOPS:
        return None
    p = min(1.0, observations.n_obs / math.prod(shape))
    core = core_sum(observations.indices, values, bases)
    return xp.reshape(core / p, tuple(b.shape[1] for b in bases))


def core_sum(indices, values, bases):
    """``sum_j x_j U_1[i_1j] o ... o U_N[i_Nj]`` over the given entries, as a matrix
    ``(k_1, k_2 ... k_N)``: :func:`projected_core` before its ``1/p`` (a sum over blocks of
    observations adds up to it)."""
    xp = get_namespace(values)
    size = math.prod(b.shape[1] for b in bases)
    first = bases[0].shape[1]
    core = xp.zeros((first, size // first), dtype=values.dtype)
    chunk = max(1, 2**21 // (size // first))
    for begin in range(0, values.shape[0], chunk):
        idx = indices[begin : begin + chunk]
        rows = xp.ones((idx.shape[0], 1), dtype=values.dtype)
        for mode, basis in enumerate(bases[1:], start=1):
            gathered = xp.take(basis, idx[:, mode], axis=0)
            rows = xp.reshape(rows[:, :, None] * gathered[:, None, :], (rows.shape[0], -1))
        # The first mode joins through one GEMM: the chunk's sum of outer products.
        weighted = xp.take(bases[0], idx[:, 0], axis=0) * values[begin : begin + chunk][:, None]
        core = core + weighted.T @ rows
    return core
