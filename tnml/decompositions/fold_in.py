"""Fold-in: the sample-axis factors of new rows, with the other factors of a fit held fixed.

A decomposition of a tensor whose axis 0 holds samples is linear in its sample-axis factor:
row ``i`` of the tensor, flattened over the other axes, is ``coefficients[i] @ design.T`` for
a ``design`` matrix ``(prod(shape[1:]), R)`` built from the other factors alone (CP: the
weighted Khatri-Rao product, ``R`` = rank; Tucker: the core multiplied by the non-sample
factors, ``R = r_0``; TT: the right environment of the first core, ``R = r_1``; TR: the
environment of the first core around the ring, ``R = r_0 r_1``). A new row's coefficients are
the ridge least squares of its observed entries against the design rows of those entries,
shrunk towards the mean coefficients of the fitted rows: an R x R system per row, assembled
for a batch of rows by two GEMMs and solved as one batched solve.
"""

import numbers

from .._config import check_memory, get_config
from ..backend import get_namespace
from ._linalg import mode_dot
from .cp import CPTensor
from .tr import TRTensor
from .tt import TTTensor
from .tucker import TuckerTensor

__all__ = [
    "FOLD_IN_FORMATS",
    "row_model",
    "fold_in",
    "fold_in_memory",
    "nearest_rows",
    "neighbour_residuals",
]

# Formats whose sample-axis rows fold in (by class name, as error messages list them).
FOLD_IN_FORMATS = (CPTensor, TuckerTensor, TTTensor, TRTensor)

# Bytes of the largest block that a batch works on when no ``max_memory`` is set: blocks of
# this size keep the GEMMs efficient and the peak memory small.
_BLOCK_BYTES = 64 * 2**20


def row_model(decomposition):
    """The linear model of one sample-axis row of ``decomposition``.

    Parameters
    ----------
    decomposition : CPTensor, TuckerTensor, TTTensor or TRTensor
        A fitted format whose axis 0 is the sample axis.

    Returns
    -------
    design : array of shape (prod(shape[1:]), R)
    coefficients : array of shape (shape[0], R)
        The fitted rows' coefficients: ``coefficients @ design.T`` is the tensor unfolded
        along axis 0.

    Raises
    ------
    TypeError
        For a format that has no linear sample-axis factor (tubal, general networks).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_tt
    >>> from tnml.decompositions.fold_in import row_model
    >>> tt = random_tt((5, 4, 3), 2, random_state=0)
    >>> design, coefficients = row_model(tt)
    >>> design.shape, coefficients.shape
    ((12, 2), (5, 2))
    >>> bool(np.allclose(coefficients @ design.T, tt.to_tensor().reshape(5, -1)))
    True
    """
    xp = get_namespace(*_arrays(decomposition))
    if isinstance(decomposition, CPTensor):
        factors = decomposition.factors
        rank = factors[0].shape[1]
        design = factors[1]
        for factor in factors[2:]:
            design = xp.reshape(design[:, None, :] * factor[None, :, :], (-1, rank))
        return design * decomposition.weights, factors[0]
    if isinstance(decomposition, TuckerTensor):
        core, first = decomposition.core, decomposition.factors[0]
        if first is None:
            # An uncompressed sample axis (factor None is the identity): a row's coefficients
            # are its whole core slice, against the identity core of the other modes.
            coefficients = xp.reshape(core, (core.shape[0], -1))
            size = coefficients.shape[1]
            core = xp.reshape(xp.eye(size, dtype=core.dtype), (size,) + tuple(core.shape[1:]))
        else:
            coefficients = first
        for mode, factor in enumerate(decomposition.factors[1:], start=1):
            if factor is not None:
                core = mode_dot(core, factor, mode)
        return xp.reshape(core, (core.shape[0], -1)).T, coefficients
    if isinstance(decomposition, TTTensor):
        cores = decomposition.cores
        environment = cores[-1]  # (r, I, 1), grown leftwards to (r_1, J, 1)
        for core in cores[-2:0:-1]:
            r, size = core.shape[0], core.shape[1]
            environment = xp.reshape(
                xp.reshape(core, (r * size, -1))
                @ xp.reshape(environment, (environment.shape[0], -1)),
                (r, -1, 1),
            )
        return xp.reshape(environment, (environment.shape[0], -1)).T, cores[0][0]
    if isinstance(decomposition, TRTensor):
        cores = decomposition.cores
        first = cores[0]  # (r_0, I_0, r_1)
        environment = cores[1]  # (r_1, J', r_2), grown rightwards to (r_1, J, r_0)
        for core in cores[2:]:
            r_left, size = environment.shape[0], environment.shape[1]
            environment = xp.reshape(
                xp.reshape(environment, (r_left * size, -1))
                @ xp.reshape(core, (core.shape[0], -1)),
                (r_left, -1, core.shape[2]),
            )
        r0, r1 = first.shape[0], first.shape[2]
        # Entry j of row i: sum_{a, b} first[a, i, b] environment[b, j, a].
        design = xp.reshape(xp.transpose(environment, (1, 2, 0)), (-1, r0 * r1))
        coefficients = xp.reshape(xp.transpose(first, (1, 0, 2)), (first.shape[1], r0 * r1))
        return design, coefficients
    names = ", ".join(cls.__name__ for cls in FOLD_IN_FORMATS)
    raise TypeError(
        f"new rows fold in for the formats {names}; a {type(decomposition).__name__} has no "
        f"linear sample-axis factor"
    )


def _arrays(decomposition):
    arrays = []
    for name in decomposition._array_names:
        value = getattr(decomposition, name)
        arrays.extend(value if isinstance(value, (list, tuple)) else [value])
    return arrays


def _blocks(n_rows, n_features, rank, itemsize):
    """Rows and features per block, and the bytes a block's intermediates take."""
    budget = get_config()["max_memory"]
    target = _BLOCK_BYTES if budget is None else min(_BLOCK_BYTES, budget // 4)
    # Feature blocks: the outer products of the design rows, (features, R^2).
    features = max(1, min(n_features, target // max(1, rank * rank * itemsize)))
    # Row blocks: a block's Gram matrices (rows, R^2) and its masked values (rows, features).
    rows = max(1, min(n_rows, target // max(1, (rank * rank + n_features + 2 * rank) * itemsize)))
    peak = (features * rank * rank + rows * (rank * rank + 2 * n_features + 3 * rank)) * itemsize
    return rows, features, peak


def fold_in_memory(n_rows, n_features, rank, itemsize=8):
    """Bytes of the largest intermediates of :func:`fold_in` (its output excluded)."""
    return _blocks(n_rows, n_features, rank, itemsize)[2]


def fold_in(design, X, mask, *, prior=None, alpha=1e-8):
    """Coefficients of new rows from their observed entries, the design held fixed.

    Row ``i`` solves ``min_a ||mask_i * (X_i - design @ a)||^2 + lam ||a - prior||^2`` with
    ``lam = alpha * trace(design.T @ design) / (J * R)``: ``alpha`` counts pseudo-observations
    of an average design row, so it does not depend on the scale of the data or of the
    factors. A row without observed entries gets ``prior``.

    Rows are solved in blocks: per block, the Gram matrices of every row are one GEMM of the
    mask with the row-wise outer products of the design, the right-hand sides one GEMM of the
    masked values with the design, then one batched solve. Blocks are sized to stay within
    ``max_memory`` (:func:`tnml.config_context`), which is checked before anything is
    allocated. Each row's result depends on that row only.

    Parameters
    ----------
    design : array of shape (J, R)
        From :func:`row_model`.
    X : array of shape (n, J)
        New rows; entries outside ``mask`` are ignored (may be NaN).
    mask : bool array of shape (n, J)
        True where X is observed.
    prior : array of shape (R,) or (n, R), optional
        The coefficients towards which rows are shrunk (default zero): one for every row
        (e.g. the mean of the fitted rows' coefficients) or one per row (e.g. the mean of
        its nearest fitted rows', :func:`nearest_rows`).
    alpha : float or sequence of float, default=1e-8
        Strength of the shrinkage, in pseudo-observations (see above). A sequence gives one
        solution per value, from the same Gram matrices (which cost ``n J R^2``; each value
        then costs one batched ``R x R`` solve).

    Returns
    -------
    coefficients : array of shape (n, R), or (len(alpha), n, R) for a sequence of ``alpha``;
        ``coefficients @ design.T`` are the rows' values.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_cp
    >>> from tnml.decompositions.fold_in import fold_in, row_model
    >>> X = random_cp((30, 6, 7), 3, random_state=0).to_tensor().reshape(30, -1)
    >>> design, _ = row_model(random_cp((30, 6, 7), 3, random_state=0))
    >>> mask = np.random.default_rng(0).random(X.shape) < 0.5
    >>> rows = fold_in(design, np.where(mask, X, np.nan), mask) @ design.T
    >>> bool(np.abs(rows - X).max() < 1e-6)
    True
    """
    xp = get_namespace(design, X)
    n, n_features = X.shape
    rank = design.shape[1]
    if design.shape[0] != n_features or tuple(mask.shape) != tuple(X.shape):
        raise ValueError(
            f"X and mask must have shape (n, {design.shape[0]}) to match the design, got "
            f"{tuple(X.shape)} and {tuple(mask.shape)}"
        )
    dtype = design.dtype
    rows, features, peak = _blocks(n, n_features, rank, dtype.itemsize)
    check_memory(peak, f"folding in {n} rows of {n_features} entries at rank {rank}")
    single = isinstance(alpha, numbers.Real)
    alphas = (alpha,) if single else tuple(alpha)
    scale = float(xp.sum(design * design)) / max(1, n_features * rank)
    # A floor far below any data-driven value keeps an empty row's system (0 + lam I) regular.
    lams = [max(a * scale if scale > 0 else a, 1e-300) for a in alphas]
    prior = xp.zeros(rank, dtype=dtype) if prior is None else xp.asarray(prior, dtype=dtype)
    if prior.ndim == 1:
        prior = xp.broadcast_to(prior, (n, rank))
    identity = xp.eye(rank, dtype=dtype)
    out = xp.empty((len(alphas), n, rank), dtype=dtype)
    kernel = None
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        widest = int(xp.max(xp.sum(mask[start:stop], axis=1))) if stop > start else 0
        if widest < rank:
            # Fewer observed entries than coefficients: the same ridge solution in its dual
            # form, a - prior = D_o^T (D_o D_o^T + lam I)^{-1} (x_o - D_o prior), one system
            # of the row's observed entries (padded to the block's widest row).
            if kernel is None:
                kernel = design @ design.T
            out[:, start:stop] = _fold_in_dual(
                design, kernel, X[start:stop], mask[start:stop], prior[start:stop], lams, widest
            )
            continue
        observed = xp.asarray(mask[start:stop], dtype=dtype)
        values = xp.where(mask[start:stop], X[start:stop], 0).astype(dtype, copy=False)
        grams = xp.zeros((stop - start, rank * rank), dtype=dtype)
        for j in range(0, n_features, features):
            block = design[j : j + features]
            outer = xp.reshape(block[:, :, None] * block[:, None, :], (block.shape[0], -1))
            grams += observed[:, j : j + features] @ outer
        grams = xp.reshape(grams, (-1, rank, rank))
        rhs = values @ design
        for which, lam in enumerate(lams):
            out[which, start:stop] = xp.linalg.solve(
                grams + lam * identity, (rhs + lam * prior[start:stop])[:, :, None]
            )[:, :, 0]
    return out[0] if single else out


def _fold_in_dual(design, kernel, X, mask, prior, lams, widest):
    """:func:`fold_in` of a block of rows with at most ``widest`` (< R) observed entries each,
    through the kernel ``design @ design.T``: ``(len(lams), n, R)``."""
    xp = get_namespace(design)
    n, rank = X.shape[0], design.shape[1]
    dtype = design.dtype
    counts = xp.sum(mask, axis=1)
    # Each row's observed columns first (a stable sort keeps their order), padded with others.
    order = xp.argsort(~mask, axis=1, kind="stable")[:, :widest]
    valid = xp.arange(widest)[None, :] < counts[:, None]
    gram = xp.where(
        valid[:, :, None] & valid[:, None, :], kernel[order[:, :, None], order[:, None, :]], 0
    )
    # A padded slot's equation (1 + lam) w = 0 keeps w = 0 there.
    padded_rows, padded_slots = xp.nonzero(~valid)
    gram[padded_rows, padded_slots, padded_slots] = 1
    rows = design[order]  # (n, widest, R)
    values = xp.take_along_axis(xp.where(mask, X, 0), order, axis=1)
    residual = xp.where(valid, values - xp.matmul(rows, prior[:, :, None])[:, :, 0], 0)
    out = xp.empty((len(lams), n, rank), dtype=dtype)
    rows_t = xp.swapaxes(rows, 1, 2)
    if len(lams) == 1:
        w = xp.linalg.solve(gram + lams[0] * xp.eye(widest, dtype=dtype), residual[:, :, None])
        out[0] = prior + xp.matmul(rows_t, w)[:, :, 0]
        return out
    # Several strengths: one eigendecomposition per row, then a diagonal scaling per value
    # (a solve per value costs about as much as the eigendecomposition).
    eigenvalues, vectors = xp.linalg.eigh(gram)
    eigenvalues = xp.maximum(eigenvalues, 0)  # a Gram matrix: negatives are rounding
    projected = xp.matmul(xp.swapaxes(vectors, 1, 2), residual[:, :, None])
    for which, lam in enumerate(lams):
        w = xp.matmul(vectors, projected / (eigenvalues[:, :, None] + lam))
        out[which] = prior + xp.matmul(rows_t, w)[:, :, 0]
    return out


def nearest_rows(reference, X, mask, n_neighbors, *, exclude=None):
    """Indices of the ``n_neighbors`` rows of ``reference`` nearest to each row of X, by the
    mean squared difference over the row's observed entries.

    Distances are computed by GEMMs over blocks of rows sized to ``max_memory``.

    Parameters
    ----------
    reference : array of shape (m, J)
        Complete rows (e.g. a model's values for the fitted rows).
    X : array of shape (n, J)
    mask : bool array of shape (n, J)
        True where X is observed; a row without observed entries is equally near to all.
    n_neighbors : int
    exclude : int array of shape (n,), optional
        A reference row that row ``i`` may not choose (``exclude[i]``, e.g. itself; a
        negative value excludes none).

    Returns
    -------
    indices : int array of shape (n, min(n_neighbors, m - (exclude is not None)))
    """
    xp = get_namespace(reference, X)
    n, n_features = X.shape
    m = reference.shape[0]
    k = max(1, min(n_neighbors, m - (exclude is not None)))
    itemsize = reference.dtype.itemsize
    budget = get_config()["max_memory"]
    target = _BLOCK_BYTES if budget is None else min(_BLOCK_BYTES, budget // 4)
    rows = max(1, min(n, target // max(1, (2 * m + 2 * n_features) * itemsize)))
    check_memory(rows * (2 * m + 2 * n_features) * itemsize, f"the nearest of {m} rows")
    squares = (reference * reference).T  # (J, m)
    out = xp.empty((n, k), dtype=xp.int64)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        observed = xp.asarray(mask[start:stop], dtype=reference.dtype)
        values = xp.where(mask[start:stop], X[start:stop], 0).astype(reference.dtype, copy=False)
        # sum_j m_ij (x_ij - r_tj)^2 = sum_j m_ij x_ij^2 - 2 x_i . r_t + m_i . r_t^2
        distances = observed @ squares - 2 * (values @ reference.T)
        distances += xp.sum(values * values, axis=1, keepdims=True)
        distances /= xp.maximum(xp.sum(observed, axis=1, keepdims=True), 1)
        if exclude is not None:
            which = exclude[start:stop]
            rows_here = xp.nonzero(which >= 0)[0]
            distances[rows_here, which[rows_here]] = xp.inf
        if k < m:
            out[start:stop] = xp.argpartition(distances, k - 1, axis=1)[:, :k]
        else:
            out[start:stop] = xp.argsort(distances, axis=1)[:, :k]
    return out


def neighbour_residuals(residuals, observed, nearest, rows, columns):
    """The mean residual of each entry's nearest rows, over those that observed it.

    Parameters
    ----------
    residuals : array of shape (m, J)
        Data minus model of the fitted rows (any value where not observed).
    observed : bool array of shape (m, J)
    nearest : int array of shape (n, k)
        Nearest fitted rows of each new row (:func:`nearest_rows`).
    rows, columns : int arrays of shape (n_entries,)
        The entries (row of the new rows, column) to correct.

    Returns
    -------
    array of shape (n_entries,)
        0 where none of the nearest rows observed the entry.
    """
    xp = get_namespace(residuals)
    neighbours = nearest[rows]  # (n_entries, k)
    seen = observed[neighbours, columns[:, None]]
    total = xp.sum(xp.where(seen, residuals[neighbours, columns[:, None]], 0), axis=1)
    return total / xp.maximum(xp.sum(seen, axis=1), 1)
