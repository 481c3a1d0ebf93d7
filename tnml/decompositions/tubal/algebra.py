"""The t-product algebra, the t-SVD and the TubalTensor format."""

import math

import numpy as np

from ..._config import check_memory
from ..._validation import (
    check_nonneg_float,
    check_positive_int,
    check_tensor,
)
from ...backend import get_namespace, to_device
from ...contract import einsum
from .._base import FactorizedTensor
from .._fitting import truncation_result
from .transforms import (
    bind_transform,
    get_transform,
    hermitian_transpose,
    per_slice,
    real_dtype,
    slice_svd,
)

__all__ = [
    "TubalTensor",
    "t_product",
    "t_transpose",
    "t_transpose_bound",
    "t_identity",
    "t_inverse",
    "t_svd",
    "tubal_singular_values",
    "tubal_rank",
    "tensor_nuclear_norm",
    "tubal_from_factors",
]


def _check_order3(A, name):
    A = check_tensor(A, name, min_order=3)
    return A


# ---------------------------------------------------------------------------------------------
# The format
# ---------------------------------------------------------------------------------------------
class TubalTensor(FactorizedTensor):
    """A tensor in t-SVD format: ``X = U * S * V^T`` under a tube transform.

    ``S`` is f-diagonal: its diagonal tubes are the rows of ``s`` (the tubal singular values).
    ``U`` and ``V`` may hold more lateral slices than ``len(s)`` (a full t-SVD); the extra ones
    complete orthogonal bases and do not enter the tensor.

    Parameters
    ----------
    U : array of shape ``(n1, r1, *tube)``
    s : array of shape ``(k, *tube)``, k <= min(r1, r2)
    V : array of shape ``(n2, r2, *tube)``
    transform : {'fft', 'dct'} or matrix or sequence of matrices, default='fft'
        The transform under which the t-product is taken (see :func:`get_transform`).

    Attributes
    ----------
    rank : int
        The tubal rank of the format, ``len(s)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_svd
    >>> X = np.random.default_rng(0).standard_normal((4, 5, 6))
    >>> tt, _ = t_svd(X, rank=2)
    >>> tt.shape, tt.rank, tt.n_params
    ((4, 5, 6), 2, 120)
    >>> bool(np.isclose(tt.norm(), np.linalg.norm(tt.to_tensor())))
    True
    """

    _array_names = ("U", "s", "V")

    def __init__(self, U, s, V, transform="fft"):
        for name, array in (("U", U), ("s", s), ("V", V)):
            if not hasattr(array, "ndim"):
                raise TypeError(f"{name} must be an array, got {type(array).__name__}")
        if U.ndim < 3:
            raise ValueError(
                f"U must have shape (n1, r, n3, ...) with at least 3 axes, got {tuple(U.shape)}"
            )
        tube = tuple(U.shape[2:])
        if V.ndim != U.ndim or tuple(V.shape[2:]) != tube:
            raise ValueError(f"V must have shape (n2, r, *{tube}), got {tuple(V.shape)}")
        if s.ndim != U.ndim - 1 or tuple(s.shape[1:]) != tube:
            raise ValueError(f"s must have shape (k, *{tube}), got {tuple(s.shape)}")
        if s.shape[0] > min(U.shape[1], V.shape[1]):
            raise ValueError(
                f"s has {s.shape[0]} tubes but U and V only {U.shape[1]} and "
                f"{V.shape[1]} lateral slices"
            )
        self.U, self.s, self.V, self.transform = U, s, V, transform
        self._bind()

    def _bind(self):
        self._bound = get_transform(
            self.transform,
            tuple(self.U.shape[2:]),
            get_namespace(self.U, self.s, self.V),
            self.U.dtype,
        )

    def __getstate__(self):
        # The bound transform holds its namespace module, which does not pickle; rebuild it.
        state = dict(self.__dict__)
        del state["_bound"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind()

    @property
    def shape(self):
        return (self.U.shape[0], self.V.shape[0]) + tuple(self.U.shape[2:])

    @property
    def rank(self):
        return int(self.s.shape[0])

    @property
    def S(self):
        """The f-diagonal tensor of shape ``(r1, r2, *tube)``."""
        xp = self.xp
        out = xp.zeros(
            (self.U.shape[1], self.V.shape[1]) + tuple(self.s.shape[1:]), dtype=self.s.dtype
        )
        k = self.rank
        out[xp.arange(k), xp.arange(k)] = self.s
        return out

    def _metadata(self):
        return {"transform": self.transform}

    def _rank_repr(self):
        name = self.transform if isinstance(self.transform, str) else "matrix"
        return f"rank={self.rank}, transform={name!r}"

    def _transformed(self):
        """``U_hat (T, n1, k)``, ``s_hat (T, k)``, ``V_hat (T, n2, k)``."""
        tr, k = self._bound, self.rank
        return (
            tr.to_slices(self.U[:, :k]),
            tr.xp.moveaxis(tr.forward(self.s), -1, 0),
            tr.to_slices(self.V[:, :k]),
        )

    def _to_tensor_bytes(self):
        # The transformed slices (complex under the FFT) and the result exist together.
        return math.prod(self.shape) * np.dtype(self._bound.slice_dtype).itemsize * 2

    def _to_tensor(self):
        tr = self._bound
        u_hat, s_hat, v_hat = self._transformed()
        x_hat = (u_hat * s_hat[:, None, :]) @ hermitian_transpose(tr.xp, v_hat)
        return tr.from_slices(x_hat)

    def entries(self, indices, batch_size=65536):
        indices = self._checked_indices(indices)
        tr, xp = self._bound, self._bound.xp
        u_hat, s_hat, v_hat = self._transformed()
        u_hat = xp.moveaxis(u_hat * s_hat[:, None, :], 0, -1)  # (n1, k, T)
        v_hat = tr.conj(xp.moveaxis(v_hat, 0, -1))  # (n2, k, T)
        strides = [math.prod(tr.tube_shape[a + 1 :]) for a in range(len(tr.tube_shape))]
        out = []
        for start in range(0, indices.shape[0], batch_size):
            idx = indices[start : start + batch_size]
            tubes_hat = einsum("nkt,nkt->nt", u_hat[idx[:, 0]], v_hat[idx[:, 1]])
            tubes = xp.reshape(tr.inverse(tubes_hat), (idx.shape[0], -1))
            flat = idx[:, 2] * strides[0]
            for a in range(1, len(strides)):
                flat = flat + idx[:, 2 + a] * strides[a]
            out.append(xp.take_along_axis(tubes, flat[:, None], axis=1)[:, 0])
        if not out:
            return xp.zeros((0,), dtype=self.dtype)
        return out[0] if len(out) == 1 else xp.concatenate(out)

    def norm(self):
        tr, xp = self._bound, self._bound.xp
        if not tr.orthogonal:
            return float(xp.linalg.norm(xp.reshape(self.to_tensor(), (-1,))))
        u_hat, s_hat, v_hat = self._transformed()
        gram_u = hermitian_transpose(xp, u_hat) @ u_hat
        gram_v = hermitian_transpose(xp, v_hat) @ v_hat
        # ||U D V^H||_F^2 = sum_ab conj(d_a) (U^H U)_ab d_b (V^H V)_ba, per slice
        per_slice = einsum("ta,tab,tb,tba->t", tr.conj(s_hat), gram_u, s_hat, gram_v)
        weights = to_device(tr.weights, xp)
        return math.sqrt(max(float(xp.sum(weights * xp.real(per_slice))), 0.0))

    def tubal_singular_values(self):
        """Frobenius norms of the tubal singular tubes ``s[i]`` (meaningful when ``U``, ``V``
        are orthogonal, as from :func:`t_svd`)."""
        xp = self.xp
        return xp.sqrt(xp.sum(xp.reshape(self.s, (self.rank, -1)) ** 2, axis=1))


# ---------------------------------------------------------------------------------------------
# Algebra
# ---------------------------------------------------------------------------------------------
def t_product(A, B, transform="fft"):
    """The t-product ``A * B`` under a transform along modes 3..p.

    Parameters
    ----------
    A : array of shape (n1, n2, n3, ..., np), p >= 3
    B : array of shape (n2, n4, n3, ..., np)
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'
        See :func:`get_transform`.

    Returns
    -------
    C : array of shape (n1, n4, n3, ..., np), in the namespace of A and B.

    Raises
    ------
    ValueError
        Order below 3, ``A.shape[1] != B.shape[0]`` or different tube shapes.

    References
    ----------
    Kilmer & Martin, "Factorization strategies for third-order tensors", Linear Algebra Appl.
    435(3), 2011. Kernfeld, Kilmer & Aeron, "Tensor-tensor products with invertible linear
    transforms", Linear Algebra Appl. 485, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_product, t_identity
    >>> A = np.arange(24.0).reshape(2, 3, 4)
    >>> bool(np.allclose(t_product(A, t_identity(3, 4)), A))
    True
    >>> t_product(A, np.ones((3, 5, 4))).shape
    (2, 5, 4)
    """
    A = _check_order3(A, "A")
    B = _check_order3(B, "B")
    if A.ndim != B.ndim or A.shape[2:] != B.shape[2:]:
        raise ValueError(
            f"A and B must have the same tube modes 3..p; got shapes "
            f"{tuple(A.shape)} and {tuple(B.shape)}"
        )
    if A.shape[1] != B.shape[0]:
        raise ValueError(
            f"t_product(A, B) needs A.shape[1] == B.shape[0]; got shapes "
            f"{tuple(A.shape)} and {tuple(B.shape)}"
        )
    get_namespace(A, B)
    tr = bind_transform(transform, A)
    check_memory(
        tr.n_slices
        * (A.shape[0] * A.shape[1] + B.shape[0] * B.shape[1] + A.shape[0] * B.shape[1])
        * np.dtype(tr.slice_dtype).itemsize,
        "t_product",
    )
    return tr.from_slices(tr.to_slices(A) @ tr.to_slices(B))


def t_transpose(A, transform="fft"):
    """The tensor transpose ``A^T``: ``L(A^T)_t = L(A)_t^H`` for every transformed slice.

    With the FFT this transposes every frontal slice and reverses the order of slices 2..n3
    (along every tube mode); with a real matrix transform it transposes every frontal slice.

    Parameters
    ----------
    A : array of shape (n1, n2, n3, ..., np)
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'

    Returns
    -------
    array of shape (n2, n1, n3, ..., np)

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_transpose
    >>> A = np.arange(12.0).reshape(2, 2, 3)
    >>> t_transpose(A)[:, :, 1].tolist() == A[:, :, 2].T.tolist()
    True
    """
    A = _check_order3(A, "A")
    return t_transpose_bound(bind_transform(transform, A), A)


def t_transpose_bound(tr, A):
    """t-transpose of an array of any dtype (masks included) under a bound transform."""
    xp = get_namespace(A)
    out = xp.swapaxes(A, 0, 1)
    if tr.name == "fft":
        for axis in range(2, A.ndim):
            out = xp.roll(xp.flip(out, axis=axis), 1, axis=axis)  # index k -> -k mod n
    return out


def t_identity(n, tube_shape, transform="fft", *, xp=None, dtype="float64"):
    """The identity tensor of the t-product: ``L(I)_t`` is the identity matrix for every ``t``.

    Parameters
    ----------
    n : int
        Size of the frontal slices.
    tube_shape : int or tuple of int
        Sizes of modes 3..p.
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'
    xp : namespace, optional
        Array namespace of the result (NumPy by default).
    dtype : real dtype, default='float64'

    Returns
    -------
    array of shape ``(n, n, *tube_shape)``

    Examples
    --------
    >>> from tnml.decompositions.tubal import t_identity
    >>> t_identity(2, 3)[:, :, 0].tolist(), float(abs(t_identity(2, 3)[:, :, 1:]).max())
    ([[1.0, 0.0], [0.0, 1.0]], 0.0)
    """
    n = check_positive_int(n, "n")
    xp = np if xp is None else xp
    tr = get_transform(transform, tube_shape, xp, dtype)
    ones = xp.ones((tr.n_slices,), dtype=tr.slice_dtype)
    tube = xp.asarray(tr.inverse(ones), dtype=tr.dtype)
    eye = xp.eye(n, dtype=tr.dtype)
    return xp.reshape(eye, (n, n) + (1,) * len(tr.tube_shape)) * tube


def t_inverse(A, transform="fft"):
    """The t-inverse ``A^{-1}`` with ``A * A^{-1} = A^{-1} * A = I``.

    Parameters
    ----------
    A : array of shape (n, n, n3, ..., np)
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'

    Returns
    -------
    array of shape (n, n, n3, ..., np)

    Raises
    ------
    ValueError
        Non-square frontal slices, or a singular transformed slice.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_inverse, t_product, t_identity
    >>> A = np.random.default_rng(0).standard_normal((3, 3, 4))
    >>> bool(np.allclose(t_product(A, t_inverse(A)), t_identity(3, 4)))
    True
    """
    A = _check_order3(A, "A")
    if A.shape[0] != A.shape[1]:
        raise ValueError(
            f"A must have square frontal slices to be t-invertible, got shape {tuple(A.shape)}"
        )
    tr = bind_transform(transform, A)
    xp = tr.xp
    slices = tr.to_slices(A)
    try:
        inv = xp.linalg.inv(slices)
        ok = bool(xp.all(xp.isfinite(inv)))
    except Exception:  # noqa: BLE001 - numpy and cupy raise different LinAlgError types
        ok = False
    if not ok:
        raise ValueError("A is not t-invertible: a transformed frontal slice is singular")
    return tr.from_slices(inv)


def t_svd(X, rank=None, transform="fft", full_matrices=False):
    """The t-SVD ``X = U * S * V^T``, full, economy or truncated to tubal rank ``rank``.

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np), p >= 3
    rank : int, optional
        Keep the ``rank`` leading singular values of every transformed slice (the truncated
        t-SVD). Under an orthogonal transform this is the best tubal-rank-``rank``
        approximation and ``||X - X_k||_F^2`` is the energy of the discarded tubal singular
        values (Kilmer & Martin 2011, Theorem 4.3).
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'
    full_matrices : bool, default=False
        ``U`` of shape ``(n1, n1, ...)`` and ``V`` of shape ``(n2, n2, ...)`` (ignored with
        ``rank``).

    Returns
    -------
    tubal : TubalTensor
        ``U`` and ``V`` t-orthogonal, ``s`` the tubal singular values (diagonal tubes of S).
    result : FitResult
        One pass; ``errors`` holds the relative error of the truncation.

    References
    ----------
    Kilmer & Martin, "Factorization strategies for third-order tensors", 2011.
    Lu, Peng & Wei, "Low-rank tensor completion with a new tensor nuclear norm induced by
    invertible linear transforms", CVPR 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_svd
    >>> X = np.random.default_rng(0).standard_normal((5, 4, 6))
    >>> tt, result = t_svd(X)
    >>> float(np.linalg.norm(tt.to_tensor() - X)) < 1e-12
    True
    >>> t_svd(X, rank=2, transform="dct")[0].U.shape
    (5, 2, 6)
    """
    X = _check_order3(X, "X")
    n1, n2 = X.shape[:2]
    k = min(n1, n2)
    if rank is not None:
        rank = check_positive_int(rank, "rank", upper=k)
        full_matrices = False
    tr = bind_transform(transform, X)
    xp = tr.xp
    itemsize = np.dtype(tr.slice_dtype).itemsize
    size_u = n1 if full_matrices else k
    size_v = n2 if full_matrices else k
    check_memory(tr.n_slices * (2 * n1 * n2 + n1 * size_u + n2 * size_v) * itemsize, "t_svd")
    u_hat, s_hat, vh_hat = slice_svd(tr, tr.to_slices(X), full_matrices=full_matrices)
    if rank is not None:
        u_hat, s_hat, vh_hat = u_hat[:, :, :rank], s_hat[:, :rank], vh_hat[:, :rank]
    v_hat = hermitian_transpose(xp, vh_hat)
    s = tr.inverse(xp.moveaxis(xp.asarray(s_hat, dtype=tr.slice_dtype), 0, -1))
    tubal = TubalTensor(tr.from_slices(u_hat), s, tr.from_slices(v_hat), transform=transform)
    return tubal, truncation_result(X, tubal)


def _slice_singular_values(X, transform):
    X = _check_order3(X, "X")
    tr = bind_transform(transform, X)
    return tr, slice_svd(tr, tr.to_slices(X), compute_uv=False)


def tubal_singular_values(X, transform="fft"):
    """Frobenius norms of the tubal singular tubes ``S(i, i, :)`` of the t-SVD, descending.

    Under an orthogonal transform their squares sum to ``||X||_F^2``.

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'

    Returns
    -------
    array of shape (min(n1, n2),)

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import tubal_singular_values
    >>> X = np.random.default_rng(0).standard_normal((4, 3, 5))
    >>> sv = tubal_singular_values(X)
    >>> bool(np.isclose(np.sum(sv ** 2), np.sum(X ** 2)))
    True
    """
    tr, s_hat = _slice_singular_values(X, transform)
    xp = tr.xp
    tubes = tr.inverse(xp.moveaxis(xp.asarray(s_hat, dtype=tr.slice_dtype), 0, -1))
    return xp.sqrt(xp.sum(xp.reshape(tubes, (tubes.shape[0], -1)) ** 2, axis=1))


def tubal_rank(X, rtol=None, transform="fft"):
    """Tubal rank: the number of non-zero tubal singular tubes of the t-SVD.

    A tube counts as non-zero when its norm exceeds ``rtol`` times the largest one.

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
    rtol : float, optional
        Relative threshold; default ``max(n1, n2) * eps`` of X's dtype (as
        :func:`numpy.linalg.matrix_rank`). ``rtol=1e-3`` gives an *effective* tubal rank.
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_product, tubal_rank
    >>> rng = np.random.default_rng(0)
    >>> X = t_product(rng.standard_normal((6, 2, 5)), rng.standard_normal((2, 7, 5)))
    >>> tubal_rank(X)
    2
    """
    X = _check_order3(X, "X")
    sv = tubal_singular_values(X, transform)
    if rtol is None:
        rtol = max(X.shape[:2]) * float(np.finfo(real_dtype(X.dtype)).eps)
    rtol = check_nonneg_float(rtol, "rtol")
    xp = get_namespace(sv)
    largest = float(xp.max(sv))
    if largest == 0:
        return 0
    return int(xp.sum(sv > rtol * largest))


def tensor_nuclear_norm(X, transform="fft"):
    """Tensor nuclear norm ``||X||_TNN = sum_t w_t ||L(X)_t||_*`` (Lu et al.).

    With the FFT this is ``(1/n3) sum_t ||X_hat_t||_*`` over all ``n3`` transformed slices (only
    the half spectrum is computed); with an orthogonal-up-to-scale matrix ``M M^T = l I`` the
    weights are ``1/l``. For other invertible matrices the weights are 1.

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'

    Returns
    -------
    float

    References
    ----------
    Lu, Feng, Chen, Liu, Lin & Yan, "Tensor robust principal component analysis with a new
    tensor nuclear norm", IEEE TPAMI 42(4), 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import tensor_nuclear_norm
    >>> X = np.zeros((2, 2, 3)); X[:, :, 0] = np.eye(2)
    >>> round(tensor_nuclear_norm(X), 12)
    2.0
    """
    tr, s_hat = _slice_singular_values(X, transform)
    xp = tr.xp
    return float(xp.sum(to_device(tr.weights, xp) * xp.sum(s_hat, axis=1)))


def tubal_from_factors(U, V, transform="fft"):
    """Compact t-SVD of ``U * V^T`` from its factors, without forming the product.

    Per transformed slice: QR of both factors and the SVD of the small ``R_U R_V^H``.

    Parameters
    ----------
    U : array of shape (n1, r, n3, ..., np)
    V : array of shape (n2, r, n3, ..., np)
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'

    Returns
    -------
    TubalTensor of tubal rank ``min(n1, n2, r)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import tubal_from_factors, t_product, t_transpose
    >>> rng = np.random.default_rng(0)
    >>> U, V = rng.standard_normal((5, 2, 4)), rng.standard_normal((6, 2, 4))
    >>> tt = tubal_from_factors(U, V)
    >>> bool(np.allclose(tt.to_tensor(), t_product(U, t_transpose(V))))
    True
    """
    U = _check_order3(U, "U")
    V = _check_order3(V, "V")
    if U.shape[1] != V.shape[1] or U.shape[2:] != V.shape[2:]:
        raise ValueError(
            f"U and V must have shapes (n1, r, *tube) and (n2, r, *tube); got "
            f"{tuple(U.shape)} and {tuple(V.shape)}"
        )
    tr = bind_transform(transform, U)
    u_hat, s_hat, v_hat = _compact_from_slices(tr, tr.to_slices(U), tr.to_slices(V))
    s = tr.inverse(tr.xp.moveaxis(tr.xp.asarray(s_hat, dtype=tr.slice_dtype), 0, -1))
    return TubalTensor(tr.from_slices(u_hat), s, tr.from_slices(v_hat), transform=transform)


def _compact_from_slices(tr, u_hat, v_hat):
    """Slice-wise SVD of ``u_hat @ v_hat^H`` through QR; real slices stay real."""
    xp = tr.xp

    def compact(u, v):
        q_u, r_u = xp.linalg.qr(u)
        q_v, r_v = xp.linalg.qr(v)
        a, s, bh = xp.linalg.svd(r_u @ hermitian_transpose(xp, r_v))
        return q_u @ a, s, q_v @ hermitian_transpose(xp, bh)

    return per_slice(tr, compact, u_hat, v_hat)
