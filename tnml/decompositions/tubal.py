"""The t-product algebra, the t-SVD, the TubalTensor format and low-tubal-rank completion.

A third-order tensor ``A`` of shape ``(n1, n2, n3)`` is a matrix whose entries are *tubes* of
length ``n3``. Under an invertible transform ``L`` along the tubes, the t-product is the
slice-wise matrix product in the transformed domain (Kilmer & Martin 2011; Kernfeld, Kilmer &
Aeron 2015)::

    L(A * B)[:, :, t] = L(A)[:, :, t] @ L(B)[:, :, t]

With the FFT (the default) this is the original t-product of circular convolutions; the DCT and
any invertible matrix give the transformed t-product (Lu, Peng & Wei 2019). An order-p tensor
``(n1, n2, n3, ..., np)`` is handled by transforming along every mode 3..p (Martin, Shafer &
LaRue 2013), so that all functions here accept order >= 3.

Everything is computed on stacks of transformed frontal slices: one batched ``xp.linalg.svd``
(or ``@``) over the stack, so that CuPy runs the slice SVDs on the GPU. With the FFT on real
data the transformed slices come in conjugate pairs; only the ``ceil((n3 + 1) / 2)`` slices of
the half spectrum are computed (``rfft``), and the self-conjugate ones (the zero and Nyquist
frequencies), which are real, are decomposed in real arithmetic - this keeps the factors of the
t-SVD exactly real and halves their cost.

The transform is given by ``transform=``: ``"fft"``, ``"dct"`` (orthonormal DCT-II), an
invertible ``(n, n)`` matrix applied along every tube mode, or a sequence of matrices, one per
tube mode. Norm identities (Eckart-Young, the tensor nuclear norm as the dual of the spectral
norm, the proximal operator used by the ADMM solver) need a transform with ``M @ M.T = l * I``
(orthogonal up to scale, as the FFT, the DCT and any orthogonal matrix are); general invertible
matrices are accepted by the algebra (products, transposes, inverses, the t-SVD itself).
"""

import math
import numbers

import numpy as np

from .._config import check_memory
from .._validation import (
    check_masked_tensor,
    check_nonneg_float,
    check_positive_int,
    check_tensor,
)
from ..backend import check_random_state, get_namespace, to_device, to_numpy
from ..contract import einsum
from ._base import FactorizedTensor, FitResult

__all__ = ["TubalTensor", "TubeTransform", "get_transform", "t_product", "t_transpose",
           "t_identity", "t_inverse", "t_svd", "tubal_singular_values", "tubal_rank",
           "tensor_nuclear_norm", "tubal_from_factors", "tubal_complete", "tnn_complete",
           "altmin_complete", "gd_complete"]

_SOLVERS = ("admm", "altmin", "gd")


# ---------------------------------------------------------------------------------------------
# Transforms along the tubes
# ---------------------------------------------------------------------------------------------
class TubeTransform:
    """An invertible transform along the tube modes, bound to a tube shape and a namespace.

    Obtain one with :func:`get_transform`. ``forward`` maps an array whose trailing axes are the
    tube modes to an array whose last axis enumerates the *stored* transformed slices;
    ``inverse`` maps back. For the FFT of real data only the half spectrum is stored.

    Attributes
    ----------
    name : str
        ``"fft"``, ``"dct"`` or ``"matrix"``.
    tube_shape : tuple of int
        Sizes of modes 3..p.
    n_slices : int
        Number of stored transformed slices (``n3 // 2 + 1`` for the FFT of order 3).
    is_complex : bool
        Whether the transformed slices are complex.
    orthogonal : bool
        Whether ``M @ M.T = l * I`` for some ``l > 0`` (true for the FFT and the DCT).
    scale : float or None
        That ``l`` (``prod(tube_shape)`` for the FFT, 1 for the DCT); None if not orthogonal.
    weights : ndarray of shape (n_slices,)
        Host weights ``w_t`` with ``||X||_F^2 = sum_t w_t ||L(X)_t||_F^2`` when ``orthogonal``
        (multiplicity of the slice in the full spectrum divided by ``l``); all ones otherwise.
    """

    def __init__(self, name, tube_shape, xp, dtype, matrices=None):
        self.name, self.tube_shape, self.xp = name, tuple(tube_shape), xp
        self.dtype = np.dtype(_real_dtype(dtype))
        self.n_tube = math.prod(self.tube_shape)
        self.real_index = self.complex_index = self.dup_dst = self.dup_src = None
        if name == "fft":
            self._init_fft()
            return
        self.is_complex = False
        self.n_slices = self.n_tube
        self.matrices, self.inverses, scales = [], [], []
        for matrix in matrices:
            inverse = np.linalg.inv(matrix)
            gram = matrix @ matrix.T
            scale = np.trace(gram) / matrix.shape[0]
            scales.append(scale)
            self.matrices.append(to_device(matrix.astype(self.dtype), xp))
            self.inverses.append(to_device(inverse.astype(self.dtype), xp))
            if not (np.allclose(gram, scale * np.eye(matrix.shape[0]), rtol=0, atol=1e-10 * scale)
                    and np.allclose(matrix.T @ matrix, scale * np.eye(matrix.shape[0]), rtol=0,
                                    atol=1e-10 * scale)):
                scales[-1] = None
        self.orthogonal = all(s is not None for s in scales)
        self.scale = math.prod(scales) if self.orthogonal else None
        weight = 1.0 / self.scale if self.orthogonal else 1.0
        self.weights = np.full(self.n_slices, weight)

    def _init_fft(self):
        self.is_complex = True
        other, last = self.tube_shape[:-1], self.tube_shape[-1]
        half = other + (last // 2 + 1,)
        self.half_shape = half
        self.n_slices = math.prod(half)
        self.orthogonal = True
        self.scale = float(self.n_tube)
        # Bins 0 and n/2 of the last axis hold their own mirror images: weight 1, others 2.
        boundary = [0] + ([last // 2] if last % 2 == 0 and last > 1 else [])
        multiplicity = np.full(half, 2.0)
        multiplicity[..., boundary] = 1.0
        self.weights = multiplicity.ravel() / self.n_tube
        # In the boundary planes, slice j and slice -j (mod n) are conjugate; self-conjugate
        # slices are real. Compute each pair once and the real ones in real arithmetic.
        grid = np.indices(other).reshape(len(other), -1) if other else np.zeros((0, 1), int)
        mirrored = (-grid) % np.asarray(other, dtype=int).reshape(-1, 1) if other else grid
        real, dst, src = [], [], []
        for b in boundary:
            flat = np.ravel_multi_index(tuple(grid) + (np.full(grid.shape[1], b),), half)
            flat_m = np.ravel_multi_index(tuple(mirrored) + (np.full(grid.shape[1], b),), half)
            real.extend(flat[flat == flat_m])
            dst.extend(flat[flat > flat_m])
            src.extend(flat_m[flat > flat_m])
        taken = set(real) | set(dst)
        self.real_index = np.asarray(sorted(real), dtype=np.intp)
        self.complex_index = np.asarray([t for t in range(self.n_slices) if t not in taken],
                                        dtype=np.intp)
        self.dup_dst = np.asarray(dst, dtype=np.intp)
        self.dup_src = np.asarray(src, dtype=np.intp)

    @property
    def complex_dtype(self):
        return np.result_type(self.dtype, np.complex64)

    @property
    def slice_dtype(self):
        """dtype of the transformed slices."""
        return self.complex_dtype if self.is_complex else self.dtype

    def _axes(self, ndim):
        return tuple(range(ndim - len(self.tube_shape), ndim))

    def forward(self, A):
        """Transform the trailing tube axes of ``A``: shape ``A.shape[:-d] + (n_slices,)``."""
        xp = self.xp
        lead = A.shape[:A.ndim - len(self.tube_shape)]
        if self.name == "fft":
            if len(self.tube_shape) == 1:
                out = xp.fft.rfft(A, axis=-1)
            else:
                out = xp.fft.rfftn(A, axes=self._axes(A.ndim))
            return xp.reshape(out, lead + (self.n_slices,))
        return xp.reshape(self._apply(A, self.matrices), lead + (self.n_slices,))

    def inverse(self, A_hat):
        """Inverse of :meth:`forward`: last axis of stored slices -> real tube axes."""
        xp = self.xp
        lead = A_hat.shape[:-1]
        if self.name == "fft":
            A_hat = xp.reshape(A_hat, lead + self.half_shape)
            if len(self.tube_shape) == 1:
                return xp.fft.irfft(A_hat, n=self.tube_shape[0], axis=-1)
            return xp.fft.irfftn(A_hat, s=self.tube_shape, axes=self._axes(A_hat.ndim))
        return self._apply(xp.reshape(A_hat, lead + self.tube_shape), self.inverses)

    def _apply(self, A, matrices):
        xp = self.xp
        d = len(self.tube_shape)
        if d == 1:
            shape = A.shape
            return xp.reshape(xp.reshape(A, (-1, shape[-1])) @ matrices[0].T, shape)
        for offset, matrix in enumerate(matrices):
            axis = A.ndim - d + offset
            A = xp.moveaxis(xp.moveaxis(A, axis, -1) @ matrix.T, -1, axis)
        return A

    def to_slices(self, A):
        """``(a, b, *tube)`` -> stack of transformed frontal slices ``(n_slices, a, b)``."""
        return self.xp.moveaxis(self.forward(A), -1, 0)

    def from_slices(self, A_hat):
        """Stack ``(n_slices, a, b)`` -> real tensor ``(a, b, *tube)``."""
        return self.inverse(self.xp.moveaxis(A_hat, 0, -1))

    def conj(self, A_hat):
        return self.xp.conj(A_hat) if self.is_complex else A_hat

    def __repr__(self):
        return (f"TubeTransform({self.name!r}, tube_shape={self.tube_shape}, "
                f"n_slices={self.n_slices})")


def _real_dtype(dtype):
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" and dtype.itemsize >= 4 else np.dtype(np.float64)


def get_transform(transform, tube_shape, xp=np, dtype="float64"):
    """Validate ``transform`` and bind it to a tube shape and an array namespace.

    Parameters
    ----------
    transform : {'fft', 'dct'}, array of shape (n, n), sequence of arrays, or TubeTransform
        ``'fft'`` (the original t-product), ``'dct'`` (orthonormal DCT-II), one invertible real
        matrix applied along every tube mode (all of size ``n``), or one matrix per tube mode.
    tube_shape : int or tuple of int
        Sizes of modes 3..p of the tensors it will act on.
    xp : namespace, default=numpy
        Namespace of those tensors; matrices are moved there explicitly.
    dtype : dtype, default='float64'
        Real dtype of those tensors.

    Returns
    -------
    TubeTransform

    Raises
    ------
    ValueError
        Unknown name, a matrix of the wrong size, non-square, non-finite, complex or singular.

    Examples
    --------
    >>> from tnml.decompositions.tubal import get_transform
    >>> tr = get_transform("fft", 8)
    >>> tr.n_slices, tr.real_index.tolist()
    (5, [0, 4])
    >>> get_transform("dct", (4, 3)).n_slices
    12
    """
    if isinstance(tube_shape, numbers.Integral):
        tube_shape = (int(tube_shape),)
    tube_shape = tuple(int(n) for n in tube_shape)
    if not tube_shape or any(n < 1 for n in tube_shape):
        raise ValueError(f"tube_shape must be a non-empty tuple of positive sizes, got "
                         f"{tube_shape}")
    if isinstance(transform, TubeTransform):
        if transform.tube_shape != tube_shape:
            raise ValueError(f"transform is bound to tube shape {transform.tube_shape}, but the "
                             f"tensor's modes 3..p have sizes {tube_shape}")
        transform = transform.name if transform.name != "matrix" else \
            [to_numpy(m) for m in transform.matrices]
    if isinstance(transform, str):
        name = transform.lower()
        if name == "fft":
            return TubeTransform("fft", tube_shape, xp, dtype)
        if name == "dct":
            from scipy.fft import dct  # host-side construction of a small matrix
            matrices = [dct(np.eye(n), norm="ortho", axis=0) for n in tube_shape]
            return TubeTransform("dct", tube_shape, xp, dtype, matrices)
        raise ValueError(f"transform must be 'fft', 'dct', an invertible (n3, n3) matrix or "
                         f"a sequence of matrices, got {transform!r}")
    if isinstance(transform, (list, tuple)) and transform and all(
            hasattr(m, "ndim") and m.ndim == 2 for m in transform):
        given = list(transform)
        if len(given) != len(tube_shape):
            raise ValueError(f"transform has {len(given)} matrices but the tensor has "
                             f"{len(tube_shape)} tube modes (modes 3..p, sizes {tube_shape})")
    elif hasattr(transform, "shape") or isinstance(transform, (list, tuple)):
        given = [transform] * len(tube_shape)
    else:
        raise ValueError(f"transform must be 'fft', 'dct', an invertible (n3, n3) matrix or a "
                         f"sequence of matrices, got {type(transform).__name__}")
    matrices = []
    for offset, (matrix, size) in enumerate(zip(given, tube_shape)):
        matrix = to_numpy(matrix) if hasattr(matrix, "shape") else np.asarray(matrix)
        mode = offset + 3
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"transform matrix for mode {mode} must be square, got shape "
                             f"{matrix.shape}")
        if matrix.shape[0] != size:
            raise ValueError(f"transform matrix for mode {mode} has shape {matrix.shape}, but "
                             f"mode {mode} has size {size}; expected ({size}, {size})")
        if matrix.dtype.kind not in "biuf":
            raise ValueError(f"transform matrix for mode {mode} must be real (dtype "
                             f"{matrix.dtype} given); use transform='fft' for the DFT")
        matrix = matrix.astype(np.float64)
        if not np.all(np.isfinite(matrix)):
            raise ValueError(f"transform matrix for mode {mode} contains NaN or infinity")
        cond = np.linalg.cond(matrix)
        if not cond < 1.0 / (np.finfo(np.float64).eps * size):
            raise ValueError(f"transform matrix for mode {mode} is not invertible (condition "
                             f"number {cond:.3g}); the transformed t-product needs an "
                             f"invertible matrix")
        matrices.append(matrix)
    return TubeTransform("matrix", tube_shape, xp, dtype, matrices)


def _bind(transform, X):
    return get_transform(transform, tuple(X.shape[2:]), get_namespace(X), X.dtype)


def _index(index, xp):
    """A basic slice for a contiguous run of indices (a view, no copy), else device indices."""
    if index.size and np.array_equal(index, np.arange(index[0], index[0] + index.size)):
        return slice(int(index[0]), int(index[0]) + index.size)
    return to_device(index, xp)


def _take(xp, stack, index):
    return stack[_index(index, xp)]


def _put(xp, stack, index, values):
    stack[_index(index, xp)] = values


def _per_slice(tr, func, *stacks):
    """Apply ``func`` (returning a tuple of slice stacks) to stacks of transformed slices.

    For the FFT, mirrored slices of the half spectrum (order >= 4) are filled by conjugation
    instead of being computed, and the self-conjugate slices (real: the zero and Nyquist
    frequencies) are recomputed in real arithmetic, so that factorisations of them are exactly
    real whatever phases a complex LAPACK routine would pick and the spatial factors are real.
    """
    xp = tr.xp
    if not tr.is_complex:
        return func(*stacks)
    if not tr.dup_dst.size:
        # one batched call on the whole stack (a view: no copy); the few real slices are
        # redone below, which is cheaper than splitting the stack in two
        result = list(func(*stacks))
    else:
        n_slices = stacks[0].shape[0]
        taken = np.setdiff1d(np.arange(n_slices), tr.dup_dst)
        part = func(*(_take(xp, stack, taken) for stack in stacks))
        result = []
        for values in part:
            full = xp.empty((n_slices,) + tuple(values.shape[1:]), dtype=values.dtype)
            _put(xp, full, taken, values)
            mirrored = _take(xp, full, tr.dup_src)
            _put(xp, full, tr.dup_dst, xp.conj(mirrored) if xp.iscomplexobj(full) else mirrored)
            result.append(full)
    if tr.real_index.size:
        real = func(*(xp.real(_take(xp, stack, tr.real_index)) for stack in stacks))
        for full, values in zip(result, real):
            _put(xp, full, tr.real_index, values)
    return tuple(result)


def _slice_svd(tr, stack, full_matrices=False, compute_uv=True):
    """Batched SVD of a stack of transformed slices ``(n_slices, a, b)`` (see _per_slice)."""
    xp = tr.xp
    if compute_uv:
        return _per_slice(tr, lambda st: tuple(xp.linalg.svd(st, full_matrices=full_matrices)),
                          stack)
    return _per_slice(tr, lambda st: (xp.linalg.svd(st, compute_uv=False),), stack)[0]


def _hermitian_transpose(xp, stack):
    return xp.conj(xp.swapaxes(stack, -1, -2)) if xp.iscomplexobj(stack) else \
        xp.swapaxes(stack, -1, -2)


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
    U : array of shape (n1, r1, *tube)
    s : array of shape (k, *tube), k <= min(r1, r2)
    V : array of shape (n2, r2, *tube)
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
    >>> tt = t_svd(X, rank=2)
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
            raise ValueError(f"U must have shape (n1, r, n3, ...) with at least 3 axes, got "
                             f"{tuple(U.shape)}")
        tube = tuple(U.shape[2:])
        if V.ndim != U.ndim or tuple(V.shape[2:]) != tube:
            raise ValueError(f"V must have shape (n2, r, *{tube}), got {tuple(V.shape)}")
        if s.ndim != U.ndim - 1 or tuple(s.shape[1:]) != tube:
            raise ValueError(f"s must have shape (k, *{tube}), got {tuple(s.shape)}")
        if s.shape[0] > min(U.shape[1], V.shape[1]):
            raise ValueError(f"s has {s.shape[0]} tubes but U and V only {U.shape[1]} and "
                             f"{V.shape[1]} lateral slices")
        self.U, self.s, self.V, self.transform = U, s, V, transform
        self._bind()

    def _bind(self):
        self._bound = get_transform(self.transform, tuple(self.U.shape[2:]),
                                    get_namespace(self.U, self.s, self.V), self.U.dtype)

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
        out = xp.zeros((self.U.shape[1], self.V.shape[1]) + tuple(self.s.shape[1:]),
                       dtype=self.s.dtype)
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
        return (tr.to_slices(self.U[:, :k]), tr.xp.moveaxis(tr.forward(self.s), -1, 0),
                tr.to_slices(self.V[:, :k]))

    def to_tensor(self):
        tr = self._bound
        check_memory(math.prod(self.shape) * np.dtype(tr.slice_dtype).itemsize * 2,
                     "TubalTensor.to_tensor")
        u_hat, s_hat, v_hat = self._transformed()
        x_hat = (u_hat * s_hat[:, None, :]) @ _hermitian_transpose(tr.xp, v_hat)
        return tr.from_slices(x_hat)

    def entries(self, indices, batch_size=65536):
        indices = self._checked_indices(indices)
        tr, xp = self._bound, self._bound.xp
        u_hat, s_hat, v_hat = self._transformed()
        u_hat = xp.moveaxis(u_hat * s_hat[:, None, :], 0, -1)   # (n1, k, T)
        v_hat = tr.conj(xp.moveaxis(v_hat, 0, -1))               # (n2, k, T)
        strides = [math.prod(tr.tube_shape[a + 1:]) for a in range(len(tr.tube_shape))]
        out = []
        for start in range(0, indices.shape[0], batch_size):
            idx = indices[start:start + batch_size]
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
        gram_u = _hermitian_transpose(xp, u_hat) @ u_hat
        gram_v = _hermitian_transpose(xp, v_hat) @ v_hat
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
        raise ValueError(f"A and B must have the same tube modes 3..p; got shapes "
                         f"{tuple(A.shape)} and {tuple(B.shape)}")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"t_product(A, B) needs A.shape[1] == B.shape[0]; got shapes "
                         f"{tuple(A.shape)} and {tuple(B.shape)}")
    get_namespace(A, B)
    tr = _bind(transform, A)
    check_memory(tr.n_slices * (A.shape[0] * A.shape[1] + B.shape[0] * B.shape[1]
                                + A.shape[0] * B.shape[1]) * np.dtype(tr.slice_dtype).itemsize,
                 "t_product")
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
    return _t_transpose(_bind(transform, A), A)


def _t_transpose(tr, A):
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
    array of shape (n, n, *tube_shape)

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
        raise ValueError(f"A must have square frontal slices to be t-invertible, got shape "
                         f"{tuple(A.shape)}")
    tr = _bind(transform, A)
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
    TubalTensor
        ``U`` and ``V`` t-orthogonal, ``s`` the tubal singular values (diagonal tubes of S).

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
    >>> tt = t_svd(X)
    >>> float(np.linalg.norm(tt.to_tensor() - X)) < 1e-12
    True
    >>> t_svd(X, rank=2, transform="dct").U.shape
    (5, 2, 6)
    """
    X = _check_order3(X, "X")
    n1, n2 = X.shape[:2]
    k = min(n1, n2)
    if rank is not None:
        rank = check_positive_int(rank, "rank", upper=k)
        full_matrices = False
    tr = _bind(transform, X)
    xp = tr.xp
    itemsize = np.dtype(tr.slice_dtype).itemsize
    size_u = n1 if full_matrices else k
    size_v = n2 if full_matrices else k
    check_memory(tr.n_slices * (2 * n1 * n2 + n1 * size_u + n2 * size_v) * itemsize, "t_svd")
    u_hat, s_hat, vh_hat = _slice_svd(tr, tr.to_slices(X), full_matrices=full_matrices)
    if rank is not None:
        u_hat, s_hat, vh_hat = u_hat[:, :, :rank], s_hat[:, :rank], vh_hat[:, :rank]
    v_hat = _hermitian_transpose(xp, vh_hat)
    s = tr.inverse(xp.moveaxis(xp.asarray(s_hat, dtype=tr.slice_dtype), 0, -1))
    return TubalTensor(tr.from_slices(u_hat), s, tr.from_slices(v_hat), transform=transform)


def _slice_singular_values(X, transform):
    X = _check_order3(X, "X")
    tr = _bind(transform, X)
    return tr, _slice_svd(tr, tr.to_slices(X), compute_uv=False)


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
        rtol = max(X.shape[:2]) * float(np.finfo(_real_dtype(X.dtype)).eps)
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
        raise ValueError(f"U and V must have shapes (n1, r, *tube) and (n2, r, *tube); got "
                         f"{tuple(U.shape)} and {tuple(V.shape)}")
    tr = _bind(transform, U)
    u_hat, s_hat, v_hat = _compact_from_slices(tr, tr.to_slices(U), tr.to_slices(V))
    s = tr.inverse(tr.xp.moveaxis(tr.xp.asarray(s_hat, dtype=tr.slice_dtype), 0, -1))
    return TubalTensor(tr.from_slices(u_hat), s, tr.from_slices(v_hat), transform=transform)


def _compact_from_slices(tr, u_hat, v_hat):
    """Slice-wise SVD of ``u_hat @ v_hat^H`` through QR; real slices stay real."""
    xp = tr.xp

    def compact(u, v):
        q_u, r_u = xp.linalg.qr(u)
        q_v, r_v = xp.linalg.qr(v)
        a, s, bh = xp.linalg.svd(r_u @ _hermitian_transpose(xp, r_v))
        return q_u @ a, s, q_v @ _hermitian_transpose(xp, bh)

    return _per_slice(tr, compact, u_hat, v_hat)


# ---------------------------------------------------------------------------------------------
# Completion
# ---------------------------------------------------------------------------------------------
def _check_completion_input(X, mask, transform, need_orthogonal=True):
    X, mask = check_masked_tensor(X, mask, min_order=3, require_mask=True)
    tr = _bind(transform, X)
    if need_orthogonal and not tr.orthogonal:
        raise ValueError("transform must be orthogonal up to scale (M @ M.T = l * I, as the "
                         "FFT, the DCT and orthogonal matrices are) for this completion solver")
    return X, mask, tr


def _svt(tr, stack, threshold):
    """Singular value thresholding of every transformed slice (the prox of the TNN)."""
    xp = tr.xp
    u, s, vh = _slice_svd(tr, stack)
    s = xp.maximum(s - threshold, 0)
    keep = int(xp.max(xp.sum(s > 0, axis=1))) if s.size else 0
    if keep == 0:
        return xp.zeros(stack.shape, dtype=stack.dtype), 0
    u, s, vh = u[:, :, :keep], s[:, :keep], vh[:, :keep]
    return (u * xp.asarray(s, dtype=u.dtype)[:, None, :]) @ vh, keep


def tnn_complete(X, mask, *, transform="fft", max_iter=500, tol=1e-8, rho=1.1, mu=None,
                 mu_max=1e10, verbose=False):
    """Tensor completion by minimising the tensor nuclear norm with ADMM (the convex baseline).

    Solves ``min ||Z||_TNN  s.t.  Z = X on the observed entries`` with the splitting of Lu et
    al.: ``Z`` low-rank, ``E`` supported on the missing entries, ``Z + E = X``. Each iteration
    is one singular value thresholding of the transformed slices (batched SVD).

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
        Values at the missing entries are ignored (may be NaN).
    mask : bool array of X's shape
        True where X is observed.
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
    verbose : bool, default=False

    Returns
    -------
    X_completed : array of X's shape
        Observed entries kept, missing ones from the low-TNN iterate.
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
    >>> Xc, info = tnn_complete(X, mask)
    >>> bool(np.linalg.norm(Xc - X) / np.linalg.norm(X) < 1e-5)
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
        sigma = float(xp.max(_slice_svd(tr, tr.to_slices(M), compute_uv=False)))
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
        change = max(float(xp.max(xp.abs(Z - Z_old))), float(xp.max(xp.abs(E - E_old))),
                     float(xp.max(xp.abs(residual))))
        errors.append(float(xp.linalg.norm(xp.reshape(residual, (-1,)))) / norm_obs)
        if verbose:
            print(f"tnn_complete iteration {iteration + 1}: observed error {errors[-1]:.3e}, "
                  f"rank {keep}, mu {mu:.3g}")
        if change < tol * scale:
            converged = True
            break
        Y = Y + mu * residual
        mu = min(rho * mu, mu_max)
    return xp.where(mask, M, Z), FitResult(len(errors), errors, converged)


def _design_rows(tr, v_hat):
    """Matrices of the linear maps ``u -> (u * V^T)(:, j)`` restricted to one row of U.

    Returns ``D`` of shape ``(n2 * T, r * T)``: row ``(j, k)``, column ``(r, k')`` is the
    coefficient of ``u[r, k']`` in ``X[i, j, k]`` for ``X = U * V^T``.
    """
    xp = tr.xp
    n_tube = tr.n_tube
    basis = xp.reshape(xp.eye(n_tube, dtype=tr.dtype), (n_tube,) + tr.tube_shape)
    basis_hat = tr.forward(basis)                                     # (T', S) rows: k'
    _, n2, r = v_hat.shape
    coeff = tr.conj(xp.moveaxis(v_hat, 0, -1))                       # (n2, r, S)
    prod = coeff[:, :, None, :] * basis_hat[None, None, :, :]         # (n2, r, k', S)
    cols = xp.reshape(tr.inverse(prod), (n2, r, n_tube, n_tube))      # (n2, r, k', k)
    return xp.reshape(xp.transpose(cols, (0, 3, 1, 2)), (n2 * n_tube, r * n_tube))


def _als_half_step(tr, target, maskflat, v_hat, ridge):
    """Least-squares update of U given V, one independent system per horizontal slice."""
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
    grams[:, diag, diag] += (ridge * trace + 1e-300)[:, None]
    solution = xp.linalg.solve(grams, rhs[:, :, None])[:, :, 0]       # (n1, r*T)
    r = v_hat.shape[2]
    return xp.reshape(solution, (n1, r) + tr.tube_shape)


def altmin_complete(X, mask, rank, *, transform="fft", max_iter=100, tol=1e-10, ridge=1e-12,
                    init="svd", random_state=None, verbose=False):
    """Low-tubal-rank completion by alternating least squares on ``X = U * V^T``.

    Each half step solves the exact least-squares problem for one factor on the observed
    entries: one ``(r n3) x (r n3)`` system per horizontal (resp. lateral) slice.

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
    mask : bool array of X's shape
        True where X is observed.
    rank : int
        Tubal rank ``r`` of the factors.
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'
    max_iter : int, default=100
        Maximum number of sweeps (U then V).
    tol : float, default=1e-10
        Stop when the relative observed error falls below ``tol`` or changes by less than
        ``tol`` (relative) between sweeps.
    ridge : float, default=1e-12
        Tikhonov term relative to the mean diagonal of each normal matrix.
    init : {'svd', 'random'}, default='svd'
        ``'svd'``: leading tubal singular slices of the zero-filled data rescaled by the
        observed fraction (Liu & Aeron); ``'random'``: Gaussian.
    random_state : None, int or RandomState
    verbose : bool, default=False

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
    >>> tt, info = altmin_complete(X, mask, 2)
    >>> bool(np.linalg.norm(tt.to_tensor() - X) / np.linalg.norm(X) < 1e-6)
    True
    """
    M, mask, tr = _check_completion_input(X, mask, transform, need_orthogonal=False)
    n1, n2 = M.shape[:2]
    rank = check_positive_int(rank, "rank", upper=min(n1, n2))
    check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    ridge = check_nonneg_float(ridge, "ridge")
    xp = tr.xp
    size = rank * tr.n_tube
    check_memory((max(n1, n2) * size * size + max(n1, n2) * tr.n_tube * size * 2)
                 * np.dtype(tr.dtype).itemsize, "altmin_complete normal equations")
    n_obs = int(xp.sum(mask))
    norm_obs = float(xp.linalg.norm(xp.reshape(M, (-1,))))
    norm_obs = norm_obs if norm_obs > 0 else 1.0
    if init == "svd":
        tt = t_svd(M * (M.size / n_obs), rank=rank, transform=transform)
        s_hat = xp.moveaxis(tr.forward(tt.s), -1, 0)
        U = tr.from_slices(tr.to_slices(tt.U) * xp.asarray(s_hat, tr.slice_dtype)[:, None, :])
        V = tt.V
    elif init == "random":
        rng = check_random_state(random_state)
        U = xp.asarray(to_device(rng.standard_normal((n1, rank) + tr.tube_shape), xp),
                       dtype=tr.dtype)
        V = xp.asarray(to_device(rng.standard_normal((n2, rank) + tr.tube_shape), xp),
                       dtype=tr.dtype)
    else:
        raise ValueError(f"init must be 'svd' or 'random', got {init!r}")
    mask_rows = xp.reshape(mask, (n1, -1))
    # X^T = V * U^T with the t-transpose (tubes reversed under the FFT), so the V step is
    # the U step on the t-transposed data and mask.
    mask_cols = xp.reshape(_t_transpose(tr, mask), (n2, -1))
    M_t = _t_transpose(tr, M)
    errors, converged = [], False
    for iteration in range(max_iter):
        # X = U * V^T: rows of U given V; X^T = V * U^T: rows of V given U.
        U = _als_half_step(tr, M, mask_rows, tr.to_slices(V), ridge)
        V = _als_half_step(tr, M_t, mask_cols, tr.to_slices(U), ridge)
        fit = tr.from_slices(tr.to_slices(U) @ _hermitian_transpose(xp, tr.to_slices(V)))
        error = float(xp.linalg.norm(xp.reshape(xp.where(mask, fit - M, 0), (-1,)))) / norm_obs
        errors.append(error)
        if verbose:
            print(f"altmin_complete sweep {iteration + 1}: observed error {error:.3e}")
        if error <= tol or (iteration and abs(errors[-2] - error) <= tol * errors[-2]):
            converged = True
            break
    return tubal_from_factors(U, V, transform), FitResult(len(errors), errors, converged)


def gd_complete(X, mask, *, rank=None, init_scale=1e-3, learning_rate=0.5, max_iter=2000,
                tol=1e-7, transform="fft", random_state=None, callback=None, verbose=False):
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
        True where X is observed; ``p`` is the observed fraction.
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
    verbose : bool, default=False

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
    >>> tt, info = gd_complete(X, rng.random(X.shape) < 0.7, random_state=0)
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
    sigma = float(xp.max(_slice_svd(tr, tr.to_slices(M), compute_uv=False))) / fraction
    step = learning_rate / (sigma if sigma > 0 else 1.0)
    rng = check_random_state(random_state)
    # Entry scale such that every transformed slice of U0 (V0) has spectral norm close to
    # init_scale * sqrt(sigma): the initial product is init_scale**2 times the data's scale,
    # whatever the size, the transform or the units of X.
    unit = init_scale * math.sqrt(sigma / tr.scale) if sigma > 0 else init_scale
    U0 = rng.standard_normal((n1, rank) + tr.tube_shape) * (unit / (n1 ** 0.5 + rank ** 0.5))
    V0 = rng.standard_normal((n2, rank) + tr.tube_shape) * (unit / (n2 ** 0.5 + rank ** 0.5))
    u_hat = tr.to_slices(xp.asarray(to_device(U0, xp), dtype=tr.dtype))
    v_hat = tr.to_slices(xp.asarray(to_device(V0, xp), dtype=tr.dtype))
    errors, converged = [], False
    for iteration in range(max_iter):
        fit = tr.from_slices(u_hat @ _hermitian_transpose(xp, v_hat))
        residual = xp.where(mask, fit - M, 0)
        errors.append(float(xp.linalg.norm(xp.reshape(residual, (-1,)))) / norm_obs)
        if verbose:
            print(f"gd_complete iteration {iteration + 1}: observed error {errors[-1]:.3e}")
        if errors[-1] <= tol:
            converged = True
            break
        r_hat = tr.to_slices(residual / fraction)
        grad_u = r_hat @ v_hat
        grad_v = _hermitian_transpose(xp, r_hat) @ u_hat
        u_hat = u_hat - step * grad_u
        v_hat = v_hat - step * grad_v
        if callback is not None and callback(iteration, tr.from_slices(u_hat),
                                             tr.from_slices(v_hat)):
            break
    U, V = tr.from_slices(u_hat), tr.from_slices(v_hat)
    return tubal_from_factors(U, V, transform), FitResult(len(errors), errors, converged)


def tubal_complete(X, mask, *, solver="admm", rank=None, transform="fft", **params):
    """Low-tubal-rank completion, with the algorithm chosen by ``solver``.

    Parameters
    ----------
    X : array of shape (n1, n2, n3, ..., np)
    mask : bool array of X's shape (True = observed)
    solver : {'admm', 'altmin', 'gd'}, default='admm'
        ``'admm'``: TNN minimisation (:func:`tnn_complete`, convex, no rank needed);
        ``'altmin'``: alternating least squares at tubal rank ``rank``
        (:func:`altmin_complete`); ``'gd'``: gradient descent on an overparametrised
        factorisation from a small start (:func:`gd_complete`; ``rank`` is the factor width).
    rank : int, optional
        Required by ``'altmin'``; optional for ``'gd'``; not used by ``'admm'``.
    transform : {'fft', 'dct'}, matrix or sequence of matrices, default='fft'
    **params
        Passed to the solver.

    Returns
    -------
    result : array (``'admm'``) or TubalTensor (``'altmin'``, ``'gd'``)
    info : FitResult

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tubal import t_product, tubal_complete
    >>> rng = np.random.default_rng(0)
    >>> X = t_product(rng.standard_normal((10, 2, 4)), rng.standard_normal((2, 10, 4)))
    >>> tt, info = tubal_complete(X, rng.random(X.shape) < 0.6, solver="altmin", rank=2)
    >>> tt.rank
    2
    """
    if solver == "admm":
        if rank is not None:
            raise ValueError("rank is not used by solver='admm' (TNN minimisation picks the "
                             "rank); leave it as None or use solver='altmin'")
        return tnn_complete(X, mask, transform=transform, **params)
    if solver == "altmin":
        if rank is None:
            raise ValueError("solver='altmin' needs rank (the tubal rank of the factors)")
        return altmin_complete(X, mask, rank, transform=transform, **params)
    if solver == "gd":
        return gd_complete(X, mask, rank=rank, transform=transform, **params)
    raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}")
