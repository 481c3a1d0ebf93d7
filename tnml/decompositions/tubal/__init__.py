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

Layout: :mod:`.transforms` (the tube transforms, with the library's one DCT), :mod:`.algebra`
(the t-product algebra, the t-SVD and :class:`TubalTensor`) and :mod:`.completion` (the
completion solvers).
"""

from .algebra import (
    TubalTensor,
    t_identity,
    t_inverse,
    t_product,
    t_svd,
    t_transpose,
    tensor_nuclear_norm,
    tubal_from_factors,
    tubal_rank,
    tubal_singular_values,
)
from .completion import altmin_complete, gd_complete, tnn_complete, tubal_complete
from .transforms import TubeTransform, dct, get_transform, idct

__all__ = [
    "TubalTensor",
    "TubeTransform",
    "get_transform",
    "t_product",
    "t_transpose",
    "t_identity",
    "t_inverse",
    "t_svd",
    "tubal_singular_values",
    "tubal_rank",
    "tensor_nuclear_norm",
    "tubal_from_factors",
    "tubal_complete",
    "tnn_complete",
    "altmin_complete",
    "gd_complete",
    "dct",
    "idct",
]
