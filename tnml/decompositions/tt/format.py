"""The tensor-train format (:class:`TTTensor`), its validation, :func:`tt_svd` and
:func:`tt_round`."""

import math
import numbers

from ..._validation import (
    check_nonneg_float,
    check_positive_int,
    check_tensor,
)
from ...backend import get_namespace
from ...contract import einsum
from .._base import FactorizedTensor, FitResult
from .._chain import qr_left as _qr_left
from .._chain import qr_right as _qr_right
from .._chain import random_cores
from .._linalg import low_rank_split, truncated_svd

__all__ = ["TTTensor", "tt_svd", "tt_round", "random_tt", "max_tt_rank"]


# -- the format ---------------------------------------------------------------------------------
class TTTensor(FactorizedTensor):
    """A tensor in tensor-train (MPS) format.

    Parameters
    ----------
    cores : list of 3-D arrays
        ``cores[k]`` has shape ``(r_k, I_k, r_{k+1})``; neighbouring bond dimensions match and
        the boundary ranks are 1.

    Attributes
    ----------
    cores : list of arrays
    shape : tuple of int
    rank : tuple of int
        The ``d + 1`` bond dimensions, boundary ones included.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tt import TTTensor
    >>> tt = TTTensor([np.ones((1, 2, 3)), np.ones((3, 4, 2)), np.ones((2, 5, 1))])
    >>> tt.shape, tt.rank, tt.n_params
    ((2, 4, 5), (1, 3, 2, 1), 40)
    >>> float(tt.to_tensor()[0, 0, 0]), float(tt.entries(np.array([[1, 3, 4]]))[0])
    (6.0, 6.0)
    """

    _array_names = ("cores",)

    def __init__(self, cores):
        if (
            isinstance(cores, (str, bytes))
            or hasattr(cores, "shape")
            or not hasattr(cores, "__len__")
        ):
            raise TypeError(f"cores must be a list of 3-D arrays, got {type(cores).__name__}")
        cores = list(cores)
        if not cores or any(getattr(core, "ndim", None) != 3 for core in cores):
            raise ValueError(
                f"cores must be a non-empty list of 3-D arrays (r_k, I_k, r_k+1), "
                f"got ndims {[getattr(c, 'ndim', None) for c in cores]}"
            )
        get_namespace(*cores)  # raises on cores from different device namespaces
        shapes = [tuple(core.shape) for core in cores]
        if shapes[0][0] != 1 or shapes[-1][2] != 1:
            raise ValueError(
                f"cores must have boundary ranks 1: the first core's first axis and "
                f"the last core's last axis, got core shapes {shapes}"
            )
        for k in range(len(cores) - 1):
            if shapes[k][2] != shapes[k + 1][0]:
                raise ValueError(
                    f"cores[{k}] and cores[{k + 1}] have mismatched bond "
                    f"dimensions {shapes[k][2]} and {shapes[k + 1][0]}: core "
                    f"shapes {shapes}"
                )
        self.cores = cores

    @property
    def shape(self):
        return tuple(core.shape[1] for core in self.cores)

    @property
    def rank(self):
        return tuple(core.shape[0] for core in self.cores) + (1,)

    def _to_tensor_bytes(self):
        return self._chain_bytes()

    def _to_tensor(self):
        """The dense tensor: a chain of GEMMs, left to right."""
        xp = self.xp
        result = xp.reshape(self.cores[0], (-1, self.cores[0].shape[2]))
        for core in self.cores[1:]:
            rank_in, size, rank_out = core.shape
            result = xp.reshape(
                result @ xp.reshape(core, (rank_in, size * rank_out)), (-1, rank_out)
            )
        return xp.reshape(result, self.shape)

    def entries(self, indices):
        """Values at integer coordinates ``indices`` of shape ``(n, ndim)``.

        Gathers one core slice per coordinate and multiplies the ``(n, r, r)`` stacks with
        batched matmuls: ``O(n d r^2)``, never densifying.
        """
        indices = self._checked_indices(indices)
        xp = self.xp
        vectors = xp.ones((indices.shape[0], 1), dtype=self.dtype)
        for k, core in enumerate(self.cores):
            slices = xp.moveaxis(core, 1, 0)[indices[:, k]]  # (n, r_k, r_{k+1})
            vectors = (vectors[:, None, :] @ slices)[:, 0, :]
        return vectors[:, 0]

    def norm(self):
        """Frobenius norm from transfer matrices, ``O(d I r^3)``; a 0-d array of the namespace."""
        xp = self.xp
        transfer = xp.ones((1, 1), dtype=self.dtype)
        for core in self.cores:
            transfer = einsum("ab,aic,bid->cd", transfer, core, core)
        return xp.sqrt(xp.abs(transfer[0, 0]))

    def orthogonalize(self, center):
        """The same tensor with cores ``< center`` left- and ``> center`` right-orthonormal.

        Left-orthonormal means ``reshape(G, (r_k * I_k, r_{k+1}))`` has orthonormal columns;
        right-orthonormal means ``reshape(G, (r_k, I_k * r_{k+1}))`` has orthonormal rows.
        Bonds larger than their neighbours allow shrink to what the QR factors keep.

        Parameters
        ----------
        center : int
            Position of the orthogonality centre; negative values count from the end.

        Returns
        -------
        TTTensor
        """
        d = len(self.cores)
        if (
            isinstance(center, bool)
            or not isinstance(center, numbers.Integral)
            or not -d <= center < d
        ):
            raise ValueError(f"center must be an integer in [{-d}, {d - 1}], got {center!r}")
        center = int(center) % d
        cores = list(self.cores)
        for k in range(center):
            _qr_left(cores, k)
        for k in range(d - 1, center, -1):
            _qr_right(cores, k)
        return TTTensor(cores)

    def left_orthogonalize(self):
        """Orthogonality centre on the last core."""
        return self.orthogonalize(len(self.cores) - 1)

    def right_orthogonalize(self):
        """Orthogonality centre on the first core."""
        return self.orthogonalize(0)

    def round(self, rank=None, *, cutoff=None):
        """Recompress to lower ranks; see :func:`tt_round`."""
        return tt_round(self, rank=rank, cutoff=cutoff)

    def to_tensorly(self):
        """The equivalent :class:`tensorly.tt_tensor.TTTensor` (same core layout, no copy)."""
        from tensorly.tt_tensor import TTTensor as TLTTTensor

        return TLTTTensor(list(self.cores))

    @classmethod
    def from_tensorly(cls, tt):
        """Build from a :class:`tensorly.tt_tensor.TTTensor` (or its list of factors)."""
        return cls(list(getattr(tt, "factors", tt)))


# -- validation ---------------------------------------------------------------------------------
def max_tt_rank(shape):
    """Largest useful inner bond dimensions: ``min(prod(I[:k]), prod(I[k:]))`` for each bond.

    Examples
    --------
    >>> from tnml.decompositions.tt import max_tt_rank
    >>> max_tt_rank((2, 3, 4, 5))
    (2, 6, 5)
    """
    return tuple(min(math.prod(shape[:k]), math.prod(shape[k:])) for k in range(1, len(shape)))


def _check_tt_rank(rank, shape, name="rank"):
    """Inner TT ranks (d - 1 of them) from an int (capped per bond) or an explicit sequence.

    An explicit sequence may include the boundary 1s. It must be achievable as the TT rank of
    some tensor: each bond at most its maximum and at most its neighbour times the mode size
    between them (unfolding ranks satisfy ``r_{k+1} <= r_k * I_k``).
    """
    if rank is None:
        return None
    d, maxima = len(shape), max_tt_rank(shape)
    if isinstance(rank, numbers.Integral) and not isinstance(rank, bool):
        rank = check_positive_int(rank, name)
        return tuple(min(rank, m) for m in maxima)
    if isinstance(rank, (str, bytes)) or not hasattr(rank, "__iter__"):
        raise TypeError(
            f"{name} must be an int or a sequence of {d - 1} ints (or {d + 1} with "
            f"boundary 1s), got {rank!r}"
        )
    ranks = [check_positive_int(r, name) for r in rank]
    if len(ranks) == d + 1:
        if ranks[0] != 1 or ranks[-1] != 1:
            raise ValueError(
                f"{name} with {d + 1} entries must start and end with 1, got {tuple(ranks)}"
            )
        ranks = ranks[1:-1]
    elif len(ranks) != d - 1:
        raise ValueError(
            f"{name} must have {d - 1} inner bond dimensions (or {d + 1} with the "
            f"boundary 1s) for a tensor of order {d}, got {len(ranks)}: "
            f"{tuple(ranks)}"
        )
    too_big = [k for k, (r, m) in enumerate(zip(ranks, maxima)) if r > m]
    if too_big:
        raise ValueError(
            f"{name}={tuple(ranks)} is impossible for shape {tuple(shape)}: the "
            f"bond dimensions are at most {maxima}"
        )
    full = [1] + ranks + [1]
    for k in range(d):
        if full[k + 1] > full[k] * shape[k] or full[k] > shape[k] * full[k + 1]:
            raise ValueError(
                f"{name}={tuple(ranks)} is not a possible TT rank for shape "
                f"{tuple(shape)}: bond dimensions around mode {k} (size "
                f"{shape[k]}) are {full[k]} and {full[k + 1]}, and neither may "
                f"exceed the other times {shape[k]}"
            )
    return tuple(ranks)


def _check_init_shape(init, shape):
    if tuple(init.shape) != tuple(shape):
        raise ValueError(f"init has shape {init.shape}, but the data have shape {tuple(shape)}")


def _start_ranks(rank, init, shape):
    """Inner ranks of a fit: ``rank`` checked (and matched by a TTTensor ``init``), or the
    ranks of ``init`` when ``rank`` is None."""
    if rank is None and not isinstance(init, TTTensor):
        raise ValueError("rank is required unless init is a TTTensor")
    ranks = _check_tt_rank(rank, shape)
    if not isinstance(init, TTTensor):
        return ranks
    _check_init_shape(init, shape)
    _check_tt_rank(init.rank, shape, name="init")
    if ranks is not None and init.rank[1:-1] != ranks:
        raise ValueError(
            f"init has TT rank {init.rank}, but rank={rank!r} asks for inner ranks {ranks}"
        )
    return init.rank[1:-1]


def random_tt(shape, rank, random_state=None, xp=None, dtype="float64"):
    """A tensor train with standard normal cores (drawn on the host, then moved).

    Parameters
    ----------
    shape : tuple of int
    rank : int or sequence of int
        Inner bond dimensions, as in :func:`tt_svd` (an int is capped per bond).
    random_state : None, int or RandomState
    xp : array namespace, optional
        Where the cores live (NumPy by default).
    dtype : dtype, default="float64"

    Returns
    -------
    TTTensor

    Examples
    --------
    >>> from tnml.decompositions import random_tt
    >>> random_tt((4, 5, 6), 3, random_state=0).rank
    (1, 3, 3, 1)
    """
    bonds = (1,) + _check_tt_rank(rank, tuple(shape)) + (1,)
    return TTTensor(random_cores(shape, bonds, random_state, xp, dtype))


def _step_delta(cutoff, norm, d):
    """Per-SVD truncation so that ``d - 1`` truncations total at most ``cutoff * norm``."""
    return None if cutoff is None else cutoff * norm / math.sqrt(max(d - 1, 1))


# -- TT-SVD and rounding ------------------------------------------------------------------------
def tt_svd(X, rank=None, *, cutoff=None):
    """Tensor-train decomposition by sequential truncated SVDs (TT-SVD).

    Parameters
    ----------
    X : array of shape (I_1, ..., I_d), d >= 2
        Dense tensor (NumPy, CuPy, ...); the cores are arrays of the same namespace.
    rank : int, sequence of int or None
        Caps on the inner bond dimensions: an int for every bond (silently capped at each
        bond's maximum, see :func:`max_tt_rank`), or ``d - 1`` ints (``d + 1`` with the boundary
        1s), each possible for this shape. ``None``: no cap.
    cutoff : float or None
        Relative Frobenius truncation tolerance: each of the ``d - 1`` SVDs drops a tail of norm
        at most ``cutoff * ||X|| / sqrt(d - 1)``, so ``||X - TT|| <= cutoff * ||X||``. With both
        ``rank`` and ``cutoff`` None nothing is truncated (exact, ranks are the unfolding sizes).

    Returns
    -------
    tt : TTTensor
        Left-orthonormal cores; the last core carries the norm.
    result : FitResult
        One pass; ``errors`` holds the relative error of the truncation.

    References
    ----------
    I. V. Oseledets, "Tensor-train decomposition", SIAM J. Sci. Comput. 33(5), 2295-2317, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tt import TTTensor, tt_svd
    >>> rng = np.random.default_rng(0)
    >>> tt = TTTensor([rng.standard_normal(s) for s in [(1, 4, 2), (2, 5, 3), (3, 6, 1)]])
    >>> X = tt.to_tensor()
    >>> approx, result = tt_svd(X, cutoff=1e-10)
    >>> approx.rank
    (1, 2, 3, 1)
    >>> bool(np.linalg.norm(approx.to_tensor() - X) < 1e-10 * np.linalg.norm(X))
    True
    """
    X = check_tensor(X, "X")
    xp = get_namespace(X)
    shape, d = tuple(X.shape), X.ndim
    ranks = _check_tt_rank(rank, shape)
    if cutoff is not None:
        cutoff = check_nonneg_float(cutoff, "cutoff")
    norm = float(xp.linalg.norm(xp.reshape(X, (-1,))))
    delta = _step_delta(cutoff, norm, d)
    cores, remainder, rank_in, discarded = [], X, 1, []
    for k in range(d - 1):
        # ``remainder`` is U^T @ matrix of the previous step (C-contiguous): this is a view.
        matrix = xp.reshape(remainder, (rank_in * shape[k], -1))
        u, remainder = low_rank_split(matrix, None if ranks is None else ranks[k], delta, discarded)
        cores.append(xp.reshape(u, (rank_in, shape[k], u.shape[1])))
        rank_in = u.shape[1]
    cores.append(xp.reshape(remainder, (rank_in, shape[-1], 1)))
    # Each step projects orthogonally to the previous ones' errors: the squared error is the
    # sum of the discarded singular values' energies, exactly (no reconstruction needed).
    error = math.sqrt(sum(t * t for t in discarded)) / norm if norm > 0 else 0.0
    return TTTensor(cores), FitResult(1, [error], True)


def tt_round(tt, rank=None, *, cutoff=None):
    """Recompress a TT to lower ranks without densifying (TT-rounding).

    Right-orthogonalizes, then truncates each bond with an SVD of the orthogonality centre,
    left to right; every truncation is then optimal for its bond given the others.

    Parameters
    ----------
    tt : TTTensor
    rank : int, sequence of int or None
        Caps on the inner bond dimensions, as in :func:`tt_svd`.
    cutoff : float or None
        Relative Frobenius truncation tolerance, as in :func:`tt_svd`:
        ``||tt - result|| <= cutoff * ||tt||``.

    Returns
    -------
    TTTensor
        Left-orthonormal cores.

    References
    ----------
    I. V. Oseledets, "Tensor-train decomposition", SIAM J. Sci. Comput. 33(5), 2295-2317, 2011,
    Algorithm 2.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tt import TTTensor, tt_round, tt_svd
    >>> rng = np.random.default_rng(0)
    >>> tt = TTTensor([rng.standard_normal(s) for s in [(1, 4, 2), (2, 5, 3), (3, 6, 1)]])
    >>> exact, _ = tt_svd(tt.to_tensor())       # no truncation: ranks are the unfolding sizes
    >>> exact.rank, tt_round(exact, cutoff=1e-10).rank
    ((1, 4, 6, 1), (1, 2, 3, 1))
    """
    if not isinstance(tt, TTTensor):
        raise TypeError(f"tt must be a TTTensor, got {type(tt).__name__}")
    d = tt.ndim
    ranks = _check_tt_rank(rank, tt.shape)
    if cutoff is not None:
        cutoff = check_nonneg_float(cutoff, "cutoff")
    cores = tt.right_orthogonalize().cores
    xp = get_namespace(*cores)
    delta = (
        _step_delta(cutoff, float(xp.linalg.norm(xp.reshape(cores[0], (-1,)))), d)
        if cutoff is not None
        else None
    )
    for k in range(d - 1):
        rank_in, size, rank_out = cores[k].shape
        u, s, vt = truncated_svd(
            xp.reshape(cores[k], (rank_in * size, rank_out)),
            rank=None if ranks is None else ranks[k],
            delta=delta,
        )
        cores[k] = xp.reshape(u, (rank_in, size, s.shape[0]))
        nxt = cores[k + 1]
        cores[k + 1] = xp.reshape(
            (s[:, None] * vt) @ xp.reshape(nxt, (rank_out, -1)),
            (s.shape[0], nxt.shape[1], nxt.shape[2]),
        )
    return TTTensor(cores)
