"""Tensor-ring (TR) format and its algorithms.

``X[i_0, ..., i_{d-1}] = trace(G_0[:, i_0, :] @ G_1[:, i_1, :] @ ... @ G_{d-1}[:, i_{d-1}, :])``
with cores ``G_k`` of shape ``(r_k, I_k, r_{k+1})`` and the closing bond ``r_d = r_0``
(TensorLy's layout).

Algorithms:

- :func:`tr_svd` — Zhao et al.'s TR-SVD: one SVD split into the closing and the first bond,
  then sequential SVDs that carry the closing bond to the end;
- :func:`tr_als` — fixed-rank ALS over the cores; under a mask, ALS over the observed entries
  (:func:`tr_complete`) or EM imputation;
- :func:`tr_complete` — completion by ALS over observed entries only (never densifies), and
  :func:`pad_tr`, its warm start at larger ranks.

How :func:`tr_als` stays cheap: per sweep it makes two passes over X, each a single GEMM on a
reshape view of X (``X x_{d-1} G_{d-1}`` once, whose contractions with the later cores serve
every update but the last, and ``X x_0 G_0`` for the last core). Everything else is
contractions of those ``r^2``-times-smaller results, again GEMMs on reshape views. The normal
equations use the Gram matrix of the subchain, a product of ``r^2 x r^2`` transfer matrices,
so the ``prod(I) / I_k x r^2`` design matrix is never formed, and the error follows from
quantities the last update computed anyway.
"""

import math
from functools import partial

from .._config import check_memory
from .._validation import check_masked_tensor, check_nonneg_float, check_rank_sequence
from ..backend import check_random_state, get_namespace, to_device
from ..contract import einsum
from ._base import FactorizedTensor
from ._chain import check_observations, complete_chain, pad_chain, random_cores
from ._fitting import (
    check_fit_params,
    check_missing,
    em_sweeps,
    expanded_error,
    fit_sweeps,
    truncation_result,
    with_restarts,
)
from ._linalg import PAD_SCALE, low_rank_split, solve_spd
from ._masked import Observations, SweepLog

__all__ = ["TRTensor", "tr_svd", "tr_als", "tr_complete", "pad_tr", "random_tr"]

# Relative size of the random entries that fill bonds an unfolding is too small to support,
# when tr_svd initialises ALS (zeros there would make ALS's normal equations singular forever).
_PAD_SCALE = 1e-3
# Default ridge of the row-wise normal equations of tr_complete.
_COMPLETE_RIDGE = 1e-8


# -- the format ---------------------------------------------------------------------------------
class TRTensor(FactorizedTensor):
    """A tensor in tensor-ring format.

    Parameters
    ----------
    cores : list of 3-D arrays
        ``cores[k]`` has shape ``(r_k, I_k, r_{k+1})``; neighbouring bond dimensions match and
        the last core's last axis closes the ring on the first core's first axis.

    Attributes
    ----------
    cores : list of arrays
    shape : tuple of int
    rank : tuple of int
        The ``d`` bond dimensions ``(r_0, ..., r_{d-1})``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tr import TRTensor
    >>> tr = TRTensor([np.ones((2, 3, 2)), np.ones((2, 4, 2))])
    >>> tr.shape, tr.rank, tr.n_params
    ((3, 4), (2, 2), 28)
    >>> float(tr.to_tensor()[0, 0]), float(tr.entries(np.array([[2, 3]]))[0]), float(tr.norm())
    (4.0, 4.0, 13.856406460551018)
    """

    _array_names = ("cores",)

    def __init__(self, cores):
        if isinstance(cores, (str, bytes)) or not hasattr(cores, "__len__"):
            raise TypeError(f"cores must be a list of 3-D arrays, got {type(cores).__name__}")
        cores = list(cores)
        if len(cores) < 2 or any(getattr(core, "ndim", None) != 3 for core in cores):
            raise ValueError(
                f"cores must be a list of at least two 3-D arrays "
                f"(r_k, I_k, r_k+1), got ndims "
                f"{[getattr(c, 'ndim', None) for c in cores]}"
            )
        get_namespace(*cores)  # raises on cores from different device namespaces
        shapes = [tuple(core.shape) for core in cores]
        for k in range(len(cores)):
            following = (k + 1) % len(cores)
            if shapes[k][2] != shapes[following][0]:
                raise ValueError(
                    f"cores[{k}] and cores[{following}] have mismatched bond "
                    f"dimensions {shapes[k][2]} and {shapes[following][0]}: "
                    f"core shapes {shapes}"
                )
        if any(0 in shape for shape in shapes):
            raise ValueError(f"cores must not have empty axes, got core shapes {shapes}")
        self.cores = cores

    @property
    def shape(self):
        return tuple(core.shape[1] for core in self.cores)

    @property
    def rank(self):
        return tuple(core.shape[0] for core in self.cores)

    def _to_tensor_bytes(self):
        return self._chain_bytes()

    def _to_tensor(self):
        """The dense tensor: a chain of GEMMs, then one contraction that closes the ring."""
        xp = self.xp
        chain = _open_chain(self.cores[:-1])  # (r_0, prod(I[:-1]), r_{d-1})
        return xp.reshape(einsum("apb,bia->pi", chain, self.cores[-1]), self.shape)

    def entries(self, indices):
        """Values at integer coordinates ``indices`` of shape ``(n, ndim)``.

        Gathers one core slice per coordinate and multiplies the ``(n, r, r)`` stacks with
        batched matmuls, closing the ring with a trace: ``O(n d r^3)``, never densifying.
        """
        indices = self._checked_indices(indices)
        xp = self.xp
        slices = [
            xp.moveaxis(xp.take(core, indices[:, k], axis=1), 1, 0)
            for k, core in enumerate(self.cores)
        ]  # (n, r_k, r_{k+1}) each
        product = slices[0]
        for matrices in slices[1:-1]:
            product = product @ matrices
        # trace(A @ B) = sum(A * B^T): saves the last matmul.
        return einsum("nab,nba->n", product, slices[-1])

    def norm(self):
        """Frobenius norm from the ring of transfer matrices, ``O(d (I r^4 + r^6))``.

        Returns a 0-d array of the cores' namespace.
        """
        xp = self.xp
        product = _transfer(self.cores[0])
        for core in self.cores[1:]:
            product = product @ _transfer(core)
        return xp.sqrt(xp.abs(xp.trace(product)))

    def to_tensorly(self):
        """The same ring as a :class:`tensorly.tr_tensor.TRTensor` (same core layout)."""
        from tensorly.tr_tensor import TRTensor as TLTRTensor

        return TLTRTensor(list(self.cores))

    @classmethod
    def from_tensorly(cls, tr):
        """A TRTensor from a TensorLy TRTensor (or its list of factors)."""
        return cls(list(getattr(tr, "factors", tr)))


def _transfer(core):
    """``E[(a, a'), (b, b')] = sum_i G[a, i, b] G[a', i, b']``, shape ``(r_k^2, r_{k+1}^2)``."""
    xp = get_namespace(core)
    left, _, right = core.shape
    return xp.reshape(einsum("aib,cid->acbd", core, core), (left * left, right * right))


def _open_chain(cores):
    """``G_0 ... G_m`` as a ``(r_0, prod(I), r_{m+1})`` array: one GEMM per core."""
    xp = get_namespace(*cores)
    chain = cores[0]
    first = chain.shape[0]
    for core in cores[1:]:
        rank_in, size, rank_out = core.shape
        chain = xp.reshape(
            xp.reshape(chain, (-1, rank_in)) @ xp.reshape(core, (rank_in, size * rank_out)),
            (first, -1, rank_out),
        )
    return chain


# -- validation -----------------------------------------------------------------------------------
def _check_tr_rank(rank, shape, name="rank"):
    """Bond ranks (r_0, ..., r_{d-1}) for which every core's least squares is determined."""
    ranks = check_rank_sequence(rank, len(shape), name)
    d = len(shape)
    for k in range(d):
        pair = ranks[k] * ranks[(k + 1) % d]
        rows = math.prod(shape) // shape[k]
        if pair > rows:
            raise ValueError(
                f"{name}={rank!r} is impossible for shape {tuple(shape)}: core {k} has "
                f"r_{k} * r_{k + 1} = {pair} unknowns per slice but the other modes give only "
                f"{rows} equations; lower r_{k} or r_{(k + 1) % d}"
            )
    return ranks


def random_tr(shape, rank, random_state=None, xp=None, dtype="float64"):
    """A tensor ring with standard normal cores (drawn on the host, then moved).

    Parameters
    ----------
    shape : tuple of int
        At least two modes.
    rank : int or sequence of d ints
        Bond dimensions ``(r_0, ..., r_{d-1})``; an int is used for every bond.
    random_state : None, int or RandomState
    xp : array namespace, optional
        Where the cores live (NumPy by default).
    dtype : dtype, default="float64"

    Returns
    -------
    TRTensor

    Examples
    --------
    >>> from tnml.decompositions import random_tr
    >>> random_tr((4, 5, 6), (2, 3, 2), random_state=0).rank
    (2, 3, 2)
    """
    ranks = check_rank_sequence(rank, len(shape), "rank")
    return TRTensor(random_cores(shape, ranks + ranks[:1], random_state, xp, dtype))


# -- TR-SVD ----------------------------------------------------------------------------------------
def tr_svd(X, rank, *, cutoff=None):
    """Tensor-ring decomposition by sequential truncated SVDs (TR-SVD).

    The first unfolding ``X_(0)`` (``I_0 x prod(I_1..I_{d-1})``) is truncated to
    ``r_0 * r_1`` singular vectors, which are split into the closing bond ``r_0`` and the
    first bond ``r_1``; the remainder, with ``r_0`` moved to its end, is decomposed by TT-SVD.

    Parameters
    ----------
    X : array of shape (I_0, ..., I_{d-1}), d >= 2
        Real data of any namespace (NumPy, CuPy, ...); the result lives there too.
    rank : int or sequence of d ints
        Bond dimensions ``(r_0, ..., r_{d-1})``; an int is used for every bond. With ``cutoff``
        they are upper bounds.
    cutoff : float or None
        Relative truncation tolerance ``eps``: each SVD drops a tail of norm at most
        ``eps * ||X|| / sqrt(d)`` (``sqrt(2)`` times that for the first), as in Zhao et al.,
        so bonds may come out smaller than ``rank``.

    Returns
    -------
    tr : TRTensor
    result : FitResult
        One pass; ``errors`` holds the relative error of the truncation.

    Notes
    -----
    The split of the first bond fixes a gauge that in general does not match the ring
    structure of X, so the remainder's unfoldings can have rank up to ``r_0^2 r_k`` instead
    of ``r_k``. TR-SVD is therefore exact for a tensor of TR rank ``(r_0, ..., r_{d-1})``
    when ``r_0 = 1`` (a tensor train) or when ``rank`` allows ``r_0^2 r_k`` at bonds
    ``k >= 2``; at smaller ranks it is a quasi-optimal start for :func:`tr_als`. Bonds that
    an unfolding is too small to support are padded with zeros (still exact).

    References
    ----------
    Q. Zhao, G. Zhou, S. Xie, L. Zhang, A. Cichocki, "Tensor ring decomposition",
    arXiv:1606.05535, 2016 (Algorithm 1).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tr import TRTensor, tr_svd
    >>> rng = np.random.default_rng(0)
    >>> shapes = [(2, 6, 3), (3, 7, 2), (2, 8, 2)]
    >>> X = TRTensor([rng.standard_normal(s) for s in shapes]).to_tensor()
    >>> tr, result = tr_svd(X, rank=(2, 3, 8))
    >>> tr.rank, bool(np.linalg.norm(tr.to_tensor() - X) < 1e-10 * np.linalg.norm(X))
    ((2, 3, 8), True)
    """
    X, _ = check_masked_tensor(X, None)
    ranks = _check_tr_rank(rank, X.shape)
    if cutoff is not None:
        cutoff = check_nonneg_float(cutoff, "cutoff")
    tr = TRTensor(_tr_svd(X, ranks, cutoff))
    return tr, truncation_result(X, tr)


def _tr_svd(X, ranks, cutoff, pad_rng=None):
    """TR-SVD cores; ``pad_rng`` fills unsupported bonds with small noise instead of zeros."""
    xp = get_namespace(X)
    shape, d = X.shape, X.ndim
    delta = (
        None
        if cutoff is None
        else cutoff * float(xp.linalg.norm(xp.reshape(X, (-1,)))) / math.sqrt(d)
    )
    left, rest = low_rank_split(
        xp.reshape(X, (shape[0], -1)),
        ranks[0] * ranks[1],
        None if delta is None else math.sqrt(2) * delta,
    )
    closing, first = (
        (ranks[0], ranks[1]) if cutoff is None else _split_bond(left.shape[1], ranks[0], ranks[1])
    )
    left, rest = _pad_pair(left, rest, closing * first, pad_rng)
    cores = [xp.moveaxis(xp.reshape(left, (shape[0], closing, first)), 0, 1)]
    # (r_0, r_1, I_1 ... I_{d-1}) -> (r_1, I_1 ... I_{d-1}, r_0): the closing bond rides along.
    rest = xp.moveaxis(xp.reshape(rest, (closing, first, -1)), 0, -1)
    bond = first
    for k in range(1, d - 1):
        left, rest = low_rank_split(xp.reshape(rest, (bond * shape[k], -1)), ranks[k + 1], delta)
        keep = ranks[k + 1] if cutoff is None else left.shape[1]
        left, rest = _pad_pair(left, rest, keep, pad_rng)
        cores.append(xp.reshape(left, (bond, shape[k], keep)))
        bond = keep
    cores.append(xp.reshape(rest, (bond, shape[-1], closing)))
    return [xp.ascontiguousarray(core) for core in cores]


def _split_bond(kept, closing, first):
    """Bonds ``(r_0', r_1') <= (r_0, r_1)`` with the smallest product ``>= kept``, as square
    as possible (Zhao et al. choose the most balanced factorisation)."""
    pairs = [
        (a * b, abs(a - b), a, b)
        for a in range(1, closing + 1)
        for b in range(1, first + 1)
        if a * b >= kept
    ]
    return min(pairs)[2:]


def _pad_pair(left, right, size, rng):
    """Pad ``left``'s columns and ``right``'s rows to ``size`` (their product is unchanged
    with zeros; with ``rng``, small noise keeps every bond alive for ALS)."""
    missing = size - left.shape[1]
    if missing <= 0:
        return left, right
    xp = get_namespace(left, right)
    blocks = []
    for matrix, pad_shape in ((left, (left.shape[0], missing)), (right, (missing, right.shape[1]))):
        if rng is None:
            blocks.append(xp.zeros(pad_shape, dtype=matrix.dtype))
        else:
            scale = _PAD_SCALE * float(xp.sqrt(xp.mean(matrix * matrix)))
            blocks.append(
                to_device((scale * rng.standard_normal(pad_shape)).astype(matrix.dtype), xp)
            )
    return (xp.concatenate([left, blocks[0]], axis=1), xp.concatenate([right, blocks[1]], axis=0))


# -- ALS ------------------------------------------------------------------------------------------
def _right_contractions(X, cores):
    """``R[k]`` = X contracted with cores ``k+1 .. d-1``, shape ``(r_0, I_0 ... I_k, r_{k+1})``.

    One pass over X (a GEMM on a reshape view), then each step is a GEMM on the previous
    result, ``I_{k+1} r_{k+2} / r_{k+1}`` times smaller.
    """
    xp = get_namespace(X, *cores)
    d, last = len(cores), cores[-1]
    rank_last, size, closing = last.shape
    rows = math.prod(X.shape[:-1])
    # (r_0 r_{d-1}, I) @ (I, P) with X's transposed view as B: a short, wide result is the
    # GEMM shape BLAS runs fastest (a tall (P, r^2) one crawls when threads are contended).
    product = (
        xp.reshape(xp.moveaxis(last, 2, 0), (closing * rank_last, size))
        @ xp.reshape(X, (rows, size)).T
    )
    # (r_0, r_{d-1}, P) -> (r_0, P, r_{d-1}): a small copy that makes every later step a GEMM.
    right = [None] * (d - 1)
    right[d - 2] = xp.ascontiguousarray(
        xp.moveaxis(xp.reshape(product, (closing, rank_last, rows)), 1, 2)
    )
    for k in range(d - 2, 0, -1):
        rank_in, size, rank_out = cores[k].shape
        step = (
            xp.reshape(right[k], (-1, size * rank_out))
            @ xp.reshape(cores[k], (rank_in, size * rank_out)).T
        )
        right[k - 1] = xp.reshape(step, (closing, -1, rank_in))
    return right


def _absorb_left(partial, cores):
    """Contract ``partial`` (``(r_0, I_0, ..., r)``) with ``cores`` from its left end; every
    step contracts the leading (bond, mode) pair with one GEMM on a reshape view."""
    xp = get_namespace(partial, *cores)
    for core in cores:
        rank_in, size, rank_out = core.shape
        partial = xp.reshape(core, (rank_in * size, rank_out)).T @ xp.reshape(
            partial, (rank_in * size, -1)
        )
    return partial


def _last_rhs(X, cores):
    """X contracted with cores ``0 .. d-2``, shape ``(r_{d-1}, I_{d-1}, r_0)`` (one pass)."""
    xp = get_namespace(X, *cores)
    first = cores[0]
    closing, size, rank_out = first.shape
    partial = xp.reshape(xp.moveaxis(first, 1, 2), (closing * rank_out, size)) @ xp.reshape(
        X, (size, -1)
    )
    partial = xp.reshape(partial, (closing, rank_out, -1))
    for core in cores[1:-1]:
        rank_in, size, rank_out = core.shape
        # batched over the closing bond r_0: one GEMM per slice
        partial = xp.reshape(core, (rank_in * size, rank_out)).T @ xp.reshape(
            partial, (closing, rank_in * size, -1)
        )
    partial = xp.reshape(partial, (closing, cores[-1].shape[0], cores[-1].shape[1]))
    return xp.moveaxis(partial, 0, 2)


def _gram(right_transfer, left_transfer, rank_in, rank_out):
    """Gram matrix of core k's design, ``((r_k r_{k+1}), (r_k r_{k+1}))``, from the ring of
    transfer matrices ``E_{k+1} ... E_{d-1} E_0 ... E_{k-1}`` (indexed ``(b b'), (a a')``)."""
    xp = get_namespace(right_transfer, left_transfer)
    ring = xp.reshape(right_transfer @ left_transfer, (rank_out, rank_out, rank_in, rank_in))
    return xp.reshape(xp.transpose(ring, (2, 0, 3, 1)), (rank_in * rank_out, rank_in * rank_out))


def _solve_core(rhs, gram, alpha):
    """Least-squares core from its right-hand side ``(r_k, I_k, r_{k+1})`` and Gram matrix."""
    xp = get_namespace(rhs, gram)
    rank_in, size, rank_out = rhs.shape
    rhs = xp.reshape(xp.moveaxis(rhs, 1, 0), (size, rank_in * rank_out))
    solution = solve_spd(gram, rhs, alpha)
    core = xp.ascontiguousarray(xp.moveaxis(xp.reshape(solution, (size, rank_in, rank_out)), 0, 1))
    return core, rhs, solution


def _als_sweep(X, cores, alpha):
    """Update every core once, 0 to d-1; returns the cores, ``<X, X_hat>`` and ``||X_hat||^2``.

    Core k's right-hand side is X contracted with the other cores: cores ``k+1 .. d-1`` come
    from :func:`_right_contractions` (still valid, they are updated later in the sweep), and
    the freshly updated cores ``0 .. k-1`` are absorbed from the left.
    """
    xp = get_namespace(X, *cores)
    d = len(cores)
    cores = list(cores)
    right = _right_contractions(X, cores)
    closing = cores[0].shape[0]
    # suffix products E_{k+1} ... E_{d-1} of the old cores, and the running prefix of new ones
    suffix = [None] * d
    suffix[d - 1] = xp.eye(closing * closing, dtype=X.dtype)
    for k in range(d - 2, -1, -1):
        suffix[k] = _transfer(cores[k + 1]) @ suffix[k + 1]
    prefix = xp.eye(closing * closing, dtype=X.dtype)
    for k in range(d):
        rank_in, _, rank_out = cores[k].shape
        if k < d - 1:
            rhs = xp.reshape(_absorb_left(right[k], cores[:k]), cores[k].shape)
        else:
            rhs = _last_rhs(X, cores)
        gram = _gram(suffix[k], prefix, rank_in, rank_out)
        cores[k], rhs_matrix, solution = _solve_core(rhs, gram, alpha)
        prefix = prefix @ _transfer(cores[k])
    inner = float(xp.sum(rhs_matrix * solution))
    norm_hat = float(xp.sum((solution @ gram) * solution))
    return cores, inner, norm_hat


def _residual_error(X, cores, inner, norm_hat, norm_x):
    """Relative error from ``||X||^2 - 2<X, X_hat> + ||X_hat||^2``, or from the explicit
    residual when that difference is below round-off resolution."""
    xp = get_namespace(X, *cores)
    error = expanded_error(norm_x**2 - 2 * inner + norm_hat, norm_x**2, X.dtype)
    if error is not None:
        return error
    residual = X - TRTensor(cores).to_tensor()
    return float(xp.linalg.norm(xp.reshape(residual, (-1,)))) / norm_x


def _init_cores(X, ranks, init, random_state):
    xp, shape, d = get_namespace(X), tuple(X.shape), X.ndim
    if isinstance(init, TRTensor):
        if tuple(init.shape) != shape:
            raise ValueError(f"init has shape {init.shape}, but X has shape {shape}")
        if tuple(init.rank) != ranks:
            raise ValueError(f"init has TR rank {init.rank}, but rank asks for {ranks}")
        return [xp.asarray(to_device(core, xp), dtype=X.dtype) for core in init.cores]
    if isinstance(init, str) and init == "svd":
        return _tr_svd(X, ranks, None, pad_rng=check_random_state(random_state))
    if isinstance(init, str) and init == "random":
        cores = random_tr(shape, ranks, random_state, xp, X.dtype).cores
        # scale the ring to ||X|| so that the transfer-matrix products neither over- nor
        # underflow and ALS starts at the data's magnitude
        norm_x = float(xp.linalg.norm(xp.reshape(X, (-1,))))
        norm_tr = float(TRTensor(cores).norm())
        if norm_x > 0 and norm_tr > 0:
            cores = [core * (norm_x / norm_tr) ** (1.0 / d) for core in cores]
        return cores
    raise ValueError(f"init must be 'svd', 'random' or a TRTensor, got {init!r}")


def _check_als_memory(shape, ranks, itemsize):
    # The largest buffers of a sweep: the first right contraction, prod(I[:-1]) r_{d-1} r_0,
    # and the last core's first partial, prod(I[1:]) r_0 r_1.
    first = math.prod(shape[:-1]) * ranks[-1] * ranks[0]
    last = math.prod(shape[1:]) * ranks[0] * ranks[1]
    check_memory((first + last) * itemsize, "tr_als sweep")


@with_restarts(n_init=3)
def tr_als(
    X,
    rank,
    *,
    mask=None,
    missing="als",
    max_iter=100,
    tol=1e-8,
    init="svd",
    random_state=None,
    verbose=0,
    alpha=None,
):
    """Fixed-rank tensor-ring approximation by alternating least squares.

    Each iteration updates the cores in turn, each from its normal equations
    ``G_k (Q_k^T Q_k) = X_(k) Q_k``, where ``Q_k`` is the (never formed) subchain of the
    other cores. The right-hand side is computed from two GEMM passes over X per sweep and the
    Gram matrix from ``r^2 x r^2`` transfer matrices; the error follows from
    ``||X||^2 - 2<X, X_hat> + ||X_hat||^2`` without densifying (or from the explicit residual
    once round-off would dominate that difference).

    Parameters
    ----------
    X : array of shape (I_0, ..., I_{d-1}), d >= 2
        Real data of any namespace (NumPy, CuPy, ...); the result lives there too.
    rank : int or sequence of d ints
        Bond dimensions ``(r_0, ..., r_{d-1})``; an int is used for every bond. Each core's
        least squares must be determined: ``r_k r_{k+1} <= prod(I_m, m != k)``.
    mask : bool array of X's shape or None
        True where X is observed (unobserved entries may be NaN); errors are then measured on
        the observed entries.
    missing : {"als", "em"}, default="als"
        How a ``mask`` is handled. "als": every core is fitted to the observed entries only
        (:func:`tr_complete`); "em": unobserved entries are imputed with the current
        reconstruction before every sweep of the dense algorithm.
    max_iter : int, default=100
        Maximum number of sweeps.
    tol : float, default=1e-8
        Stop when the relative change of the error between two sweeps is below ``tol``.
    init : {"svd", "random"} or TRTensor, default="svd"
        Starting point: :func:`tr_svd` at ``rank`` (of the zero-filled X under a mask),
        Gaussian cores drawn with ``random_state`` and scaled to ``||X||``, or a given
        TRTensor of X's shape and ``rank``.
    n_init : int, default=3 (1 when ``init`` is a given TRTensor)
        Number of starts: ``init`` first, then random rings drawn from ``random_state``; the
        fit with the lowest training error is kept, and a start that fits to rounding ends the
        search. More than one by default: from the one deterministic TR-SVD start some rings
        stay in a local minimum whatever the seed (shape (6, 5, 7), ranks (2, 3, 2): relative
        error 0.17), while 4 of 6 random starts recover them. A given start (a warm start) is
        fitted once unless ``n_init`` says otherwise.
    random_state : None, int or numpy RandomState
        Seeds ``init="random"`` (and the tiny noise that fills bonds TR-SVD cannot support).
    verbose : int, default=0
        Print the error after each sweep.
    alpha : float or None, default=None
        Ridge penalty added to every Gram matrix, absolute (added to its diagonal as is); stabilises
        ill-conditioned subchains. None means 0, except with ``missing="als"``, where it means
        :func:`tr_complete`'s 1e-8 (a slice with few observed entries has a singular Gram matrix).

    Returns
    -------
    tr : TRTensor
    result : FitResult
        Sweeps done, relative error after each, and whether ``tol`` was reached.

    References
    ----------
    Q. Zhao, G. Zhou, S. Xie, L. Zhang, A. Cichocki, "Tensor ring decomposition",
    arXiv:1606.05535, 2016 (Algorithm 2).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tr import TRTensor, tr_als
    >>> rng = np.random.default_rng(0)
    >>> shapes = [(2, 6, 3), (3, 7, 2), (2, 8, 2)]
    >>> X = TRTensor([rng.standard_normal(s) for s in shapes]).to_tensor()
    >>> tr, result = tr_als(X, rank=(2, 3, 2), max_iter=500, tol=1e-12)
    >>> tr.rank, bool(result.error < 1e-6)
    ((2, 3, 2), True)
    """
    X, mask = check_masked_tensor(X, mask)
    masked_als = mask is not None and check_missing(missing) == "als"
    if alpha is None:
        alpha = _COMPLETE_RIDGE if masked_als else 0.0
    tol, alpha = check_fit_params(max_iter, tol, verbose, alpha)
    ranks = _check_tr_rank(rank, X.shape)
    if not masked_als:
        _check_als_memory(X.shape, ranks, X.dtype.itemsize)
    cores = _init_cores(X, ranks, init, random_state)
    if masked_als:
        return tr_complete(
            Observations.from_dense(X, mask),
            ranks,
            max_iter=max_iter,
            tol=tol,
            init=TRTensor(cores),
            alpha=alpha,
            verbose=verbose,
        )
    log = SweepLog(None, None, "tr_als", verbose)
    if mask is not None:

        def sweep(filled, cores, iteration):
            return _als_sweep(filled, cores, alpha)[0]

        cores, info = em_sweeps(
            X,
            mask,
            cores,
            sweep,
            lambda cores: TRTensor(cores).to_tensor(),
            impute_start=True,
            max_iter=max_iter,
            tol=tol,
            log=log,
        )
        return TRTensor(cores), info
    xp = get_namespace(X, *cores)
    norm_x = float(xp.linalg.norm(xp.reshape(X, (-1,)))) or 1.0

    def step(iteration):
        nonlocal cores
        cores, inner, norm_hat = _als_sweep(X, cores, alpha)
        return None, _residual_error(X, cores, inner, norm_hat, norm_x)

    info = fit_sweeps(step, max_iter, tol, log, X.dtype)
    return TRTensor(cores), info


# -- completion -----------------------------------------------------------------------------------
@with_restarts
def tr_complete(
    observations,
    rank,
    *,
    max_iter=100,
    tol=1e-6,
    init="random",
    random_state=None,
    alpha=_COMPLETE_RIDGE,
    verbose=0,
    validation=None,
):
    """Tensor-ring completion by ALS over the observed entries only (never densifies).

    Core ``k``'s slice ``i`` is the ridge least-squares fit of the observed entries with
    ``i_k = i``, each against its design row: the ``r_{k+1} x r_k`` product of the other cores'
    slices around the ring at its indices, flattened
    (:func:`~tnml.decompositions._masked.solve_rowwise`). The products are cached per
    observation as left and right partial products; sweeps go back and forth so that each
    step updates one of them. Cost per sweep ``O(n_obs sum_k (r_k r_{k+1})^2)`` for the normal
    equations plus ``O(n_obs d r^3)`` for the partial products; memory ``O(n_obs d r^2)``.

    Parameters
    ----------
    observations : Observations
        Coordinates, values and shape of the observed entries.
    rank : int or sequence of d ints
        Bond dimensions ``(r_0, ..., r_{d-1})``; an int is used for every bond. Each core's
        least squares must be determinable: ``r_k r_{k+1} <= prod(I_m, m != k)``.
    max_iter : int, default=100
        Maximum number of sweeps (one sweep updates every core once, alternating direction).
    tol : float, default=1e-6
        Stop when the relative training error changes by less than ``tol`` between sweeps.
    init : "random" or TRTensor, default="random"
        Gaussian cores drawn with ``random_state``, or a start of this shape and rank (a warm
        start, e.g. from :func:`pad_tr`).
    n_init : int, default=1
        Number of starts: ``init`` first, then random ones drawn from ``random_state``; the fit
        with the lowest final error (held-out when ``validation`` is given) is kept. A start
        that fits to rounding ends the search.
    random_state : None, int or RandomState
    alpha : float, default=1e-8
        The ridge penalty ``alpha`` (absolute: added to the diagonal as is) of every slice's normal
        equations; a slice without observations becomes zero.
    verbose : int, default=0
        Print the errors after each sweep.
    validation : Observations, optional
        Held-out entries whose relative error is recorded after each sweep (it does not steer
        the fit).

    Returns
    -------
    tr : TRTensor
    result : FitResult
        ``errors``: relative error ``||x - x_hat|| / ||x||`` over the observed entries per sweep;
        ``validation_errors`` likewise over ``validation`` (None without it).

    Notes
    -----
    Like dense TR-ALS, this is a non-convex problem with local minima, more so than a TT:
    from a random start, a few seeds (or growing the rank from a smaller fit with
    :func:`pad_tr`) may be needed to reach the global fit.

    See Also
    --------
    tr_als : dense ALS, and this function behind ``mask=..., missing="als"``.

    References
    ----------
    L. Yuan, J. Cao, X. Zhao, Q. Wu, Q. Zhao, "Higher-dimension tensor completion via low-rank
    tensor ring decomposition", APSIPA ASC, 2018 (TR-ALS on observed entries).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tr import TRTensor, tr_complete
    >>> from tnml.decompositions import Observations
    >>> rng = np.random.default_rng(0)
    >>> truth = TRTensor([rng.standard_normal((2, n, 2)) for n in (8, 9, 10)])
    >>> coords = np.argwhere(rng.random(truth.shape) < 0.5)
    >>> obs = Observations(coords, truth.entries(coords), truth.shape)
    >>> tr, result = tr_complete(obs, 2, tol=1e-10, max_iter=300, random_state=1)
    >>> X = truth.to_tensor()
    >>> bool(np.linalg.norm(tr.to_tensor() - X) < 1e-6 * np.linalg.norm(X))
    True
    """
    observations, validation = check_observations(observations, validation)
    tol, alpha = check_fit_params(max_iter, tol, verbose, alpha)
    values, shape = observations.values, observations.shape
    xp = get_namespace(values)
    ranks = _check_tr_rank(rank, shape)
    if isinstance(init, TRTensor):
        if tuple(init.shape) != shape or tuple(init.rank) != ranks:
            raise ValueError(
                f"init has shape {init.shape} and TR rank {init.rank}; expected {shape} and {ranks}"
            )
    random_start = partial(random_tr, shape, ranks, random_state, xp, values.dtype)
    return complete_chain(
        observations,
        init,
        random_start,
        max_iter=max_iter,
        tol=tol,
        alpha=alpha,
        verbose=verbose,
        validation=validation,
        to_format=TRTensor,
        label="tr_complete",
    )


def pad_tr(tr, new_rank, scale=PAD_SCALE, random_state=None):
    """Warm start at larger bond dimensions: ``tr`` with its cores padded by small noise.

    Parameters
    ----------
    tr : TRTensor
    new_rank : int or sequence of d ints
        Bond dimensions ``(r_0, ..., r_{d-1})``, each at least the current one.
    scale : float, default=1e-3
        Standard deviation of the new entries relative to each core's root mean square; the
        tensor changes by ``O(scale^2)`` relative to its norm.
    random_state : None, int or RandomState

    Returns
    -------
    TRTensor

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tr import TRTensor, pad_tr
    >>> tr = TRTensor([np.ones((2, 4, 2)), np.ones((2, 5, 2)), np.ones((2, 6, 2))])
    >>> padded = pad_tr(tr, 3, random_state=0)
    >>> padded.rank, bool(np.allclose(padded.to_tensor(), tr.to_tensor(), rtol=1e-4))
    ((3, 3, 3), True)
    """
    if not isinstance(tr, TRTensor):
        raise TypeError(f"tr must be a TRTensor, got {type(tr).__name__}")
    ranks = _check_tr_rank(new_rank, tr.shape, name="new_rank")
    return pad_chain(tr, ranks + ranks[:1], scale, random_state)
