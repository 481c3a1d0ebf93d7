"""Invertible transforms along the tubes (FFT, DCT, matrices) and per-slice kernels.

The DCT here (:func:`dct`, :func:`idct`) is the library's one orthonormal DCT: the tubal
``'dct'`` transform is built from it and the smooth model (:mod:`tnml.decompositions.smooth`)
diagonalises its Laplacian with it.
"""

import contextlib
import math
import numbers

import numpy as np

from ...backend import get_namespace, serial_blas, to_device, to_numpy

__all__ = [
    "TubeTransform",
    "get_transform",
    "dct",
    "idct",
    "bind_transform",
    "per_slice",
    "slice_svd",
    "hermitian_transpose",
    "real_dtype",
]


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
        self.dtype = np.dtype(real_dtype(dtype))
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
            if not (
                np.allclose(gram, scale * np.eye(matrix.shape[0]), rtol=0, atol=1e-10 * scale)
                and np.allclose(
                    matrix.T @ matrix, scale * np.eye(matrix.shape[0]), rtol=0, atol=1e-10 * scale
                )
            ):
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
        self.complex_index = np.asarray(
            [t for t in range(self.n_slices) if t not in taken], dtype=np.intp
        )
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
        lead = A.shape[: A.ndim - len(self.tube_shape)]
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
        return (
            f"TubeTransform({self.name!r}, tube_shape={self.tube_shape}, n_slices={self.n_slices})"
        )


def real_dtype(dtype):
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
        raise ValueError(
            f"tube_shape must be a non-empty tuple of positive sizes, got {tube_shape}"
        )
    if isinstance(transform, TubeTransform):
        if transform.tube_shape != tube_shape:
            raise ValueError(
                f"transform is bound to tube shape {transform.tube_shape}, but the "
                f"tensor's modes 3..p have sizes {tube_shape}"
            )
        transform = (
            transform.name
            if transform.name != "matrix"
            else [to_numpy(m) for m in transform.matrices]
        )
    if isinstance(transform, str):
        name = transform.lower()
        if name == "fft":
            return TubeTransform("fft", tube_shape, xp, dtype)
        if name == "dct":
            # host-side construction of small matrices, from the one DCT below
            matrices = [dct(np.eye(n), (0,)) for n in tube_shape]
            return TubeTransform("dct", tube_shape, xp, dtype, matrices)
        raise ValueError(
            f"transform must be 'fft', 'dct', an invertible (n3, n3) matrix or "
            f"a sequence of matrices, got {transform!r}"
        )
    if (
        isinstance(transform, (list, tuple))
        and transform
        and all(hasattr(m, "ndim") and m.ndim == 2 for m in transform)
    ):
        given = list(transform)
        if len(given) != len(tube_shape):
            raise ValueError(
                f"transform has {len(given)} matrices but the tensor has "
                f"{len(tube_shape)} tube modes (modes 3..p, sizes {tube_shape})"
            )
    elif hasattr(transform, "shape") or isinstance(transform, (list, tuple)):
        given = [transform] * len(tube_shape)
    else:
        raise ValueError(
            f"transform must be 'fft', 'dct', an invertible (n3, n3) matrix or a "
            f"sequence of matrices, got {type(transform).__name__}"
        )
    matrices = []
    for offset, (matrix, size) in enumerate(zip(given, tube_shape)):
        matrix = to_numpy(matrix) if hasattr(matrix, "shape") else np.asarray(matrix)
        mode = offset + 3
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(
                f"transform matrix for mode {mode} must be square, got shape {matrix.shape}"
            )
        if matrix.shape[0] != size:
            raise ValueError(
                f"transform matrix for mode {mode} has shape {matrix.shape}, but "
                f"mode {mode} has size {size}; expected ({size}, {size})"
            )
        if matrix.dtype.kind not in "biuf":
            raise ValueError(
                f"transform matrix for mode {mode} must be real (dtype "
                f"{matrix.dtype} given); use transform='fft' for the DFT"
            )
        matrix = matrix.astype(np.float64)
        if not np.all(np.isfinite(matrix)):
            raise ValueError(f"transform matrix for mode {mode} contains NaN or infinity")
        cond = np.linalg.cond(matrix)
        if not cond < 1.0 / (np.finfo(np.float64).eps * size):
            raise ValueError(
                f"transform matrix for mode {mode} is not invertible (condition "
                f"number {cond:.3g}); the transformed t-product needs an "
                f"invertible matrix"
            )
        matrices.append(matrix)
    return TubeTransform("matrix", tube_shape, xp, dtype, matrices)


def bind_transform(transform, X):
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


def per_slice(tr, func, *stacks):
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


def slice_svd(tr, stack, full_matrices=False, compute_uv=True):
    """Batched SVD of a stack of transformed slices ``(n_slices, a, b)`` (see per_slice).

    Slices up to 1024 x 1024 go through host LAPACK single-threaded
    (:func:`~tnml.backend.serial_blas`): threads gain little there and stall when the cores
    are shared, and the TNN solvers run one such SVD per iteration.
    """
    small = stack.shape[-1] * stack.shape[-2] <= 2**20
    with serial_blas() if small else contextlib.nullcontext():
        return _slice_svd(tr, stack, full_matrices, compute_uv)


def _slice_svd(tr, stack, full_matrices, compute_uv):
    xp = tr.xp
    if compute_uv:
        return per_slice(
            tr, lambda st: tuple(xp.linalg.svd(st, full_matrices=full_matrices)), stack
        )
    return per_slice(tr, lambda st: (xp.linalg.svd(st, compute_uv=False),), stack)[0]


def hermitian_transpose(xp, stack):
    return (
        xp.conj(xp.swapaxes(stack, -1, -2))
        if xp.iscomplexobj(stack)
        else xp.swapaxes(stack, -1, -2)
    )


def dct(x, axes):
    """Orthonormal DCT-II of ``x`` along ``axes``, in ``x``'s namespace.

    NumPy arrays go to ``scipy.fft.dctn``; other namespaces (CuPy, the guard arrays of
    :mod:`tnml.testing`) use their own FFT on the even extension (Makhoul 1980), so the data
    never leaves the device.

    Examples
    --------
    >>> import numpy as np, scipy.fft
    >>> x = np.random.default_rng(0).random((5, 4))
    >>> bool(np.allclose(dct(x, (0, 1)), scipy.fft.dctn(x, norm="ortho")))
    True
    """
    return _along_axes(x, axes, "dctn", _dct_fft)


def idct(c, axes):
    """Inverse of :func:`dct` (the orthonormal DCT-III).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((5, 4))
    >>> bool(np.allclose(idct(dct(x, (0, 1)), (0, 1)), x))
    True
    """
    return _along_axes(c, axes, "idctn", _idct_fft)


def _along_axes(x, axes, scipy_name, one_axis):
    """scipy.fft's orthonormal ``scipy_name`` for NumPy, ``one_axis`` per axis otherwise."""
    if isinstance(x, np.ndarray):
        import scipy.fft

        return getattr(scipy.fft, scipy_name)(x, axes=axes, norm="ortho")
    xp = get_namespace(x)
    for axis in axes:
        x = one_axis(x, axis, xp)
    return x


def _twiddle(n, axis, ndim, xp, sign):
    """``exp(sign * i pi k / 2n)`` shaped to broadcast along ``axis``."""
    k = np.arange(n)
    shape = [n if a == axis else 1 for a in range(ndim)]
    return xp.asarray(np.exp(sign * 1j * np.pi * k / (2 * n)).reshape(shape))


def _ortho_scale(n, axis, ndim, xp, dtype):
    scale = np.full(n, math.sqrt(2.0 / n))
    scale[0] = math.sqrt(1.0 / n)
    return xp.asarray(scale.reshape([n if a == axis else 1 for a in range(ndim)]), dtype=dtype)


def _dct_fft(x, axis, xp):
    # FFT of [x, reversed x] at bin k is 2 exp(i pi k / 2n) sum_m x_m cos(pi k (2m + 1) / 2n).
    n = x.shape[axis]
    extended = xp.concatenate([x, xp.flip(x, axis=axis)], axis=axis)
    spectrum = xp.take(xp.fft.fft(extended, axis=axis), xp.arange(n), axis=axis)
    unscaled = xp.real(spectrum * _twiddle(n, axis, x.ndim, xp, -1.0)) / 2.0
    return unscaled * _ortho_scale(n, axis, x.ndim, xp, x.dtype)


def _idct_fft(c, axis, xp):
    # x_m = sum_k s_k c_k cos(pi k (2m + 1) / 2n) = Re(2n * ifft(s c exp(i pi k / 2n)))_m.
    n = c.shape[axis]
    weighted = c * _ortho_scale(n, axis, c.ndim, xp, c.dtype) * _twiddle(n, axis, c.ndim, xp, 1.0)
    padded = xp.concatenate([weighted, xp.zeros_like(weighted)], axis=axis)
    full = xp.fft.ifft(padded, axis=axis) * (2 * n)
    return xp.real(xp.take(full, xp.arange(n), axis=axis))
