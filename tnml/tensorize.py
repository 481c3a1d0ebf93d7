"""Tensorization of images: reshape an image into a high-order tensor and back.

Ket augmentation (Bengua et al., 2017) writes the row index ``i`` and the column index ``j`` of
an image in mixed radix, ``i = (i_1, ..., i_d)`` and ``j = (j_1, ..., j_d)``, most significant
digit first, and makes mode ``k`` of the tensor the pair ``(i_k, j_k)``. Mode 1 then selects
one of the coarsest blocks of the image, mode ``d`` a pixel inside the finest block: a
256 x 256 x 3 image becomes a 4 x 4 x ... x 4 x 3 tensor of order 9 whose modes are the scales
of the image. Low TT/TR ranks of that tensor are multiscale self-similarity of the image, which
is what makes TT/TR completion of tensorized images work.

Both directions are pure reshapes and transposes: exact, cheap, valid for any dtype (masks
included) and for any array namespace.

References
----------
Bengua, J. A., Phien, H. N., Tuan, H. D. and Do, M. N. (2017). Efficient tensor completion for
color image and video recovery: low-rank tensor train. IEEE Transactions on Image Processing,
26(5), 2466-2479.
"""

import math
import numbers

from .backend import get_namespace

__all__ = ["ket_factors", "ket_shape", "ket_augment", "ket_restore"]


def _prime_factors(n):
    """Prime factors of ``n`` in non-decreasing order (trial division; image sides are small)."""
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1:
        factors.append(n)
    return factors


def _check_side(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_factor_list(factors, side, name):
    try:
        factors = tuple(factors)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of positive ints, got {factors!r}") from None
    factors = tuple(_check_side(f, name) for f in factors)
    if not factors or math.prod(factors) != side:
        raise ValueError(
            f"{name} must be a non-empty sequence of ints whose product is the "
            f"image side {side}, got {factors}"
        )
    return factors


def ket_factors(height, width, factors=None):
    """Row and column digits of the ket augmentation, padded to the same length.

    Parameters
    ----------
    height, width : int
        The image's number of rows and columns.
    factors : None or pair of sequences of int
        ``(row_factors, col_factors)`` with products ``height`` and ``width``. ``None`` uses
        the prime factorisation of each side (``256 -> (2,) * 8``), so that every mode of a
        power-of-two image has size 4 (a 2 x 2 block at each scale).

    Returns
    -------
    row_factors, col_factors : tuple of int
        Of equal length ``d``. The shorter list is padded with 1s at the front (the coarsest
        scales), so a 256 x 128 image gives modes ``(2, 4, 4, 4, 4, 4, 4, 4)``.

    Raises
    ------
    ValueError
        Factors whose product is not the side.

    Examples
    --------
    >>> from tnml.tensorize import ket_factors
    >>> ket_factors(8, 4)
    ((2, 2, 2), (1, 2, 2))
    >>> ket_factors(6, 6, factors=((3, 2), (3, 2)))
    ((3, 2), (3, 2))
    """
    height = _check_side(height, "height")
    width = _check_side(width, "width")
    if factors is None:
        rows, cols = tuple(_prime_factors(height)) or (1,), tuple(_prime_factors(width)) or (1,)
    else:
        if (
            isinstance(factors, (str, bytes))
            or not hasattr(factors, "__len__")
            or len(factors) != 2
        ):
            raise TypeError(
                f"factors must be None or a pair (row_factors, col_factors), got {factors!r}"
            )
        rows = _check_factor_list(factors[0], height, "factors[0] (row factors)")
        cols = _check_factor_list(factors[1], width, "factors[1] (column factors)")
    depth = max(len(rows), len(cols))
    # A factor of 1 is a digit that is always 0: padding at the coarse end changes nothing.
    return (1,) * (depth - len(rows)) + rows, (1,) * (depth - len(cols)) + cols


def _check_image_shape(image_shape, name="image_shape"):
    image_shape = tuple(image_shape)
    if len(image_shape) not in (2, 3):
        raise ValueError(f"{name} must be (H, W) or (H, W, C), got {image_shape}")
    return tuple(_check_side(s, f"{name}[{k}]") for k, s in enumerate(image_shape))


def ket_shape(image_shape, factors=None):
    """Shape of the ket-augmented tensor of an image of shape ``image_shape``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` or ``(H, W, C)``.
    factors : None or pair of sequences of int
        See :func:`ket_factors`.

    Returns
    -------
    tuple of int
        ``(r_1 * c_1, ..., r_d * c_d)``, followed by ``C`` for a colour image.

    Examples
    --------
    >>> from tnml.tensorize import ket_shape
    >>> ket_shape((256, 256, 3))
    (4, 4, 4, 4, 4, 4, 4, 4, 3)
    >>> ket_shape((256, 128))
    (2, 4, 4, 4, 4, 4, 4, 4)
    """
    image_shape = _check_image_shape(image_shape)
    rows, cols = ket_factors(image_shape[0], image_shape[1], factors)
    return tuple(r * c for r, c in zip(rows, cols)) + image_shape[2:]


def _interleaved_axes(depth, n_channel_axes):
    """Axes order taking (r_1..r_d, c_1..c_d[, C]) to (r_1, c_1, ..., r_d, c_d[, C])."""
    order = [axis for k in range(depth) for axis in (k, depth + k)]
    return order + list(range(2 * depth, 2 * depth + n_channel_axes))


def ket_augment(image, factors=None):
    """Ket augmentation: an ``(H, W)`` or ``(H, W, C)`` image as a tensor of order ``d`` (+1).

    Mode ``k`` (0-based) of the result is indexed by ``i_k * c_k + j_k``, where ``i_k`` and
    ``j_k`` are the ``k``-th most significant digits of the row and column indices in the radix
    given by :func:`ket_factors`; colour channels stay the last mode. The inverse is
    :func:`ket_restore`.

    Parameters
    ----------
    image : array of shape (H, W) or (H, W, C)
        Any dtype (a boolean mask of observed pixels is tensorized the same way) and any
        array namespace; the result is of the same namespace.
    factors : None or pair of sequences of int
        ``(row_factors, col_factors)``; see :func:`ket_factors`. ``None`` factorises each side
        into primes (mode size 4 for power-of-two images). Sides with large prime factors give
        large modes and little multiscale structure: resize such images first (for example
        with ``tnml.datasets.load_image(name, size=256)``).

    Returns
    -------
    array of shape ``ket_shape(image.shape, factors)``

    References
    ----------
    Bengua et al. (2017), IEEE Transactions on Image Processing 26(5), 2466-2479.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.tensorize import ket_augment, ket_restore
    >>> image = np.arange(16).reshape(4, 4)
    >>> tensor = ket_augment(image)
    >>> tensor.shape
    (4, 4)
    >>> tensor[0]  # the top-left 2 x 2 block, pixels in row-major order
    array([0, 1, 4, 5])
    >>> tensor[:, 0]  # the top-left pixel of each block
    array([ 0,  2,  8, 10])
    >>> bool(np.array_equal(ket_restore(tensor, image.shape), image))
    True
    """
    if not hasattr(image, "shape") or not hasattr(image, "ndim"):
        raise TypeError(
            f"image must be an array of shape (H, W) or (H, W, C), got {type(image).__name__}"
        )
    image_shape = _check_image_shape(image.shape, "image.shape")
    xp = get_namespace(image)
    rows, cols = ket_factors(image_shape[0], image_shape[1], factors)
    channels = image_shape[2:]
    digits = xp.reshape(image, rows + cols + channels)
    digits = xp.transpose(digits, _interleaved_axes(len(rows), len(channels)))
    return xp.reshape(digits, ket_shape(image_shape, (rows, cols)))


def ket_restore(tensor, image_shape, factors=None):
    """Inverse of :func:`ket_augment`: the image of shape ``image_shape`` back from its tensor.

    Parameters
    ----------
    tensor : array of shape ``ket_shape(image_shape, factors)``
        Any dtype and namespace; the result is of the same namespace.
    image_shape : tuple of int
        ``(H, W)`` or ``(H, W, C)``, the shape of the original image.
    factors : None or pair of sequences of int
        The same value as given to :func:`ket_augment`.

    Returns
    -------
    array of shape ``image_shape``

    Raises
    ------
    ValueError
        ``tensor`` does not have the shape the augmentation of such an image has.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.tensorize import ket_augment, ket_restore
    >>> image = np.random.default_rng(0).random((8, 4, 3))
    >>> tensor = ket_augment(image)
    >>> tensor.shape
    (2, 4, 4, 3)
    >>> bool(np.array_equal(ket_restore(tensor, (8, 4, 3)), image))
    True
    """
    image_shape = _check_image_shape(image_shape)
    expected = ket_shape(image_shape, factors)
    if tuple(getattr(tensor, "shape", ())) != expected:
        raise ValueError(
            f"tensor must have shape {expected} to restore an image of shape "
            f"{image_shape} with these factors, got "
            f"{tuple(getattr(tensor, 'shape', ()))}"
        )
    xp = get_namespace(tensor)
    rows, cols = ket_factors(image_shape[0], image_shape[1], factors)
    channels = image_shape[2:]
    depth = len(rows)
    pairs = tuple(f for r, c in zip(rows, cols) for f in (r, c))
    digits = xp.reshape(tensor, pairs + channels)
    order = _interleaved_axes(depth, len(channels))
    inverse = [order.index(axis) for axis in range(len(order))]
    return xp.reshape(xp.transpose(digits, inverse), image_shape)
