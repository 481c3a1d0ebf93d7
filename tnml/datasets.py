"""Data for tensor learning: bundled images and cubes, masks of observed entries, synthetic
low-rank tensors.

Every real data set here ships with a dependency (scikit-image, scikit-learn, TensorLy): nothing
is downloaded at run time. All arrays are NumPy arrays on the host; move them with
:func:`tnml.backend.to_device`.
"""

import math
import numbers

import numpy as np

from ._config import check_memory
from ._validation import check_positive_int, check_rank_sequence
from .backend import check_random_state
from .decompositions import (
    CPTensor,
    TuckerTensor,
    random_cp,
    random_tr,
    random_tt,
    random_tucker,
)

__all__ = [
    "available_images",
    "load_image",
    "load_indian_pines",
    "load_kinetic",
    "make_mask",
    "make_low_rank",
    "make_low_rank_entries",
]

# Images bundled with scikit-image (its ``skimage.data`` functions of the same name) that need
# no download; scikit-learn bundles two more.
_SKIMAGE_IMAGES = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "checkerboard",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "shepp_logan_phantom",
    "text",
)
_SKLEARN_IMAGES = ("china", "flower")
_FORMATS = ("cp", "tucker", "tt", "tr")
_PATTERNS = ("random", "fiber", "slice", "block")


# -- images -------------------------------------------------------------------------------------
def available_images():
    """Names accepted by :func:`load_image`, sorted.

    Examples
    --------
    >>> from tnml.datasets import available_images
    >>> "astronaut" in available_images() and "china" in available_images()
    True
    """
    return tuple(sorted(_SKIMAGE_IMAGES + _SKLEARN_IMAGES))


def _raw_image(name):
    if name in _SKLEARN_IMAGES:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    return getattr(skimage.data, name)()


def _check_size(size):
    """``None``, an int (square) or a pair ``(height, width)`` of positive ints."""
    if size is None:
        return None
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise TypeError(f"size must be None, an int or a pair (height, width), got {size!r}")
    return tuple(check_positive_int(s, "size") for s in size)


def load_image(name, size=None, as_gray=False):
    """A sample image bundled with scikit-image or scikit-learn, as floats in [0, 1].

    Parameters
    ----------
    name : str
        One of :func:`available_images` (case-insensitive; ``"china.jpg"`` and
        ``"flower.jpg"``, scikit-learn's file names, work too).
    size : None, int or (int, int)
        Resize to ``(size, size)`` or ``(height, width)`` with
        :func:`skimage.transform.resize` (anti-aliased). ``None`` keeps the original size.
        Powers of two suit :func:`tnml.tensorize.ket_augment`.
    as_gray : bool
        Convert colour images to luminance (:func:`skimage.color.rgb2gray`).

    Returns
    -------
    ndarray of float64, shape (H, W, 3) for colour images, (H, W) for grey ones
        Values in [0, 1]. Transparent images (``logo``) are composited on white.

    Raises
    ------
    ValueError
        Unknown name (the message lists the available ones).

    Examples
    --------
    >>> from tnml.datasets import load_image
    >>> image = load_image("astronaut", size=64)
    >>> image.shape, image.dtype, bool(image.min() >= 0 and image.max() <= 1)
    ((64, 64, 3), dtype('float64'), True)
    >>> load_image("camera", size=(32, 16)).shape
    (32, 16)
    """
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_float64

    if not isinstance(name, str):
        raise TypeError(f"name must be a string, one of {available_images()}, got {name!r}")
    key = name.lower().removesuffix(".jpg")
    if key not in available_images():
        raise ValueError(f"name must be one of {available_images()}, got {name!r}")
    size = _check_size(size)
    image = img_as_float64(_raw_image(key))
    if image.ndim == 3 and image.shape[2] == 4:
        image = rgba2rgb(image)
    if as_gray and image.ndim == 3:
        image = rgb2gray(image)
    if size is not None:
        from skimage.transform import resize

        image = resize(image, size + image.shape[2:], anti_aliasing=True)
    # Interpolation can overshoot by rounding; the documented range is [0, 1].
    return np.ascontiguousarray(np.clip(image, 0.0, 1.0), dtype=np.float64)


def load_indian_pines():
    """The Indian Pines hyperspectral cube, 145 x 145 pixels x 200 bands, float64.

    Bundled with TensorLy (``tensorly.datasets.load_indian_pines``).

    Examples
    --------
    >>> from tnml.datasets import load_indian_pines
    >>> load_indian_pines().shape
    (145, 145, 200)
    """
    from tensorly.datasets import load_indian_pines as tl_load

    return np.ascontiguousarray(tl_load()["tensor"], dtype=np.float64)


def load_kinetic():
    """The Kinetic fluorescence tensor bundled with TensorLy, float64.

    Examples
    --------
    >>> from tnml.datasets import load_kinetic
    >>> load_kinetic().ndim
    4
    """
    from tensorly.datasets import load_kinetic as tl_load

    return np.ascontiguousarray(tl_load()["tensor"], dtype=np.float64)


# -- masks --------------------------------------------------------------------------------------
def _check_shape(shape, name="shape"):
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of positive ints, got {shape!r}") from None
    if not shape:
        raise ValueError(f"{name} must have at least one axis, got {shape}")
    return tuple(check_positive_int(s, f"{name}[{k}]") for k, s in enumerate(shape))


def _check_axis(axis, ndim):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise ValueError(
            f"axis must be an int in [{-ndim}, {ndim - 1}] for a tensor of order "
            f"{ndim}, got {axis!r}"
        )
    return int(axis) % ndim


def _check_block_size(block_size, shape):
    """One side per axis: an int for all axes (capped by the axis), None = the whole axis."""
    if block_size is None:
        block_size = max(1, min(shape) // 8)
    if isinstance(block_size, numbers.Integral) and not isinstance(block_size, bool):
        block_size = (block_size,) * len(shape)
    try:
        block_size = tuple(block_size)
    except TypeError:
        raise TypeError(
            f"block_size must be None, an int or a sequence of ints/None, got {block_size!r}"
        ) from None
    if len(block_size) != len(shape):
        raise ValueError(
            f"block_size must have {len(shape)} entries (one per axis of shape "
            f"{shape}), got {block_size}"
        )
    return tuple(
        dim if side is None else min(check_positive_int(side, "block_size"), dim)
        for side, dim in zip(block_size, shape)
    )


def _n_missing_units(missing_ratio, n_units, unit, shape, pattern):
    """``round(missing_ratio * n_units)``, refusing a rounding to none or to all of them."""
    n_missing = int(round(missing_ratio * n_units))
    if missing_ratio > 0 and n_missing == 0:
        raise ValueError(
            f"missing_ratio={missing_ratio} removes no {unit} of a tensor of shape "
            f"{shape} with pattern={pattern!r} (round({missing_ratio} * {n_units}) "
            f"= 0); use missing_ratio=0 for a fully observed mask or a larger ratio"
        )
    if n_missing >= n_units:
        raise ValueError(
            f"missing_ratio={missing_ratio} removes every {unit} of a tensor of "
            f"shape {shape} with pattern={pattern!r} (round({missing_ratio} * "
            f"{n_units}) = {n_units}); nothing would be observed, use a smaller "
            f"ratio"
        )
    return n_missing


def make_mask(shape, missing_ratio, pattern="random", random_state=None, axis=-1, block_size=None):
    """A boolean mask of observed entries (True = observed) with a given share missing.

    Parameters
    ----------
    shape : int or tuple of int
    missing_ratio : float in [0, 1)
        Share of the pattern's units that are missing: entries (``"random"``), fibers
        (``"fiber"``), slices (``"slice"``) or grid blocks (``"block"``). The number of
        missing units is ``round(missing_ratio * n_units)``, exactly.
    pattern : {"random", "fiber", "slice", "block"}
        - ``"random"``: entries missing uniformly at random.
        - ``"fiber"``: whole fibers along ``axis`` missing, e.g. pixels missing in every band
          of a hyperspectral cube (``axis=-1``).
        - ``"slice"``: whole slices ``X[..., k, ...]`` at random indices ``k`` of ``axis``
          missing, e.g. lost frames of a video.
        - ``"block"``: the tensor is tiled by a grid of blocks of side ``block_size`` and whole
          blocks are missing (the edge blocks are smaller when a side does not divide).
    random_state : None, int or numpy RandomState
        Seed (sklearn's meaning); the same seed gives the same mask.
    axis : int
        Direction of the fibers (``"fiber"``) or the axis indexing the slices (``"slice"``).
    block_size : None, int or sequence of (int or None)
        Block side along each axis for ``"block"``; an int is used on every axis (capped by
        the axis length, so an image's blocks span its colour channels), ``None`` in a
        sequence spans the whole axis. Default ``max(1, min(shape) // 8)``.

    Returns
    -------
    ndarray of bool, shape ``shape``

    Raises
    ------
    ValueError
        ``missing_ratio`` outside [0, 1), an unknown ``pattern``, or a ratio that rounds to no
        missing unit or to all of them: a mask is never all-missing, and all-observed only when
        ``missing_ratio=0`` asks for it.

    Examples
    --------
    >>> from tnml.datasets import make_mask
    >>> mask = make_mask((10, 10), 0.3, random_state=0)
    >>> mask.dtype, int((~mask).sum())
    (dtype('bool'), 30)
    >>> mask = make_mask((4, 5, 6), 0.5, pattern="fiber", axis=-1, random_state=0)
    >>> int((~mask).sum()) // 6, bool((mask == mask[:, :, :1]).all())
    (10, True)
    """
    shape = _check_shape(shape)
    if isinstance(missing_ratio, bool) or not isinstance(missing_ratio, numbers.Real):
        raise TypeError(f"missing_ratio must be a number in [0, 1), got {missing_ratio!r}")
    if not 0 <= missing_ratio < 1:
        raise ValueError(f"missing_ratio must be in [0, 1), got {missing_ratio}")
    if pattern not in _PATTERNS:
        raise ValueError(f"pattern must be one of {_PATTERNS}, got {pattern!r}")
    rng = check_random_state(random_state)
    if pattern == "random":
        return _missing_units(shape, missing_ratio, rng, shape, "entry", pattern)
    if pattern == "block":
        sides = _check_block_size(block_size, shape)
        grid = tuple(-(-dim // side) for dim, side in zip(shape, sides))
        cells = _missing_units(grid, missing_ratio, rng, shape, "block", pattern)
        for k, side in enumerate(sides):  # each grid cell covers a block of `side` entries
            cells = np.repeat(cells, side, axis=k)
        return np.ascontiguousarray(cells[tuple(slice(0, dim) for dim in shape)])
    axis = _check_axis(axis, len(shape))
    if pattern == "fiber":
        # One flag per fiber, broadcast along the fiber's direction.
        flags = _missing_units(
            shape[:axis] + shape[axis + 1 :], missing_ratio, rng, shape, "fiber", pattern
        )
        return np.ascontiguousarray(np.broadcast_to(np.expand_dims(flags, axis), shape))
    flags = _missing_units((shape[axis],), missing_ratio, rng, shape, "slice", pattern)
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.ascontiguousarray(np.broadcast_to(flags.reshape(view), shape))


def _missing_units(grid, missing_ratio, rng, shape, unit, pattern):
    """A bool array of shape ``grid`` with exactly the rounded share of False entries."""
    n_units = math.prod(grid)
    if missing_ratio == 0:
        return np.ones(grid, dtype=bool)
    n_missing = _n_missing_units(missing_ratio, n_units, unit, shape, pattern)
    observed = np.ones(n_units, dtype=bool)
    # A permutation, not independent coin flips: the missing count is exact, not binomial.
    observed[rng.permutation(n_units)[:n_missing]] = False
    return observed.reshape(grid)


# -- synthetic low-rank tensors -----------------------------------------------------------------
def _random_format(shape, rank, format, rng):
    """A random tensor of the format whose entries have unit variance (over the draw)."""
    if format == "cp":
        rank = check_positive_int(rank, "rank")
        cp = random_cp(shape, rank, random_state=rng)
        # Each entry sums `rank` products of independent standard normals: variance `rank`.
        return CPTensor(cp.weights / math.sqrt(rank), cp.factors)
    if format == "tucker":
        tucker = random_tucker(shape, rank, random_state=rng)
        full = tucker.rank
        # Orthonormal factors have entries of variance 1/I_n: scale the core back to unit.
        scale = math.sqrt(math.prod(dim / r for dim, r in zip(shape, full)))
        return TuckerTensor(tucker.core * scale, tucker.factors)
    n_bonds = len(shape) - 1 if format == "tt" else len(shape)
    if format == "tr" and len(shape) < 2:
        raise ValueError(f"format='tr' needs at least two axes, got shape {shape}")
    ranks = check_rank_sequence(rank, n_bonds, "rank")
    if format == "tt":
        for k, r in enumerate(ranks):
            # A larger bond is silently a smaller rank: refuse it so the rank is what was asked.
            largest = min(math.prod(shape[: k + 1]), math.prod(shape[k + 1 :]))
            if r > largest:
                raise ValueError(
                    f"rank[{k}]={r} exceeds the largest TT rank {largest} of that "
                    f"bond for shape {shape}"
                )
    network = (random_tt if format == "tt" else random_tr)(shape, ranks, random_state=rng)
    # An entry sums prod(ranks) paths of products of standard normals; dividing each core by
    # the square root of its right bond gives unit variance.
    return type(network)([core / math.sqrt(core.shape[2]) for core in network.cores])


def _check_generator_args(shape, format, noise):
    shape = _check_shape(shape)
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real):
        raise TypeError(f"noise must be a non-negative number, got {noise!r}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    return shape


def _noise_scale(tensor, noise, shape):
    """Standard deviation giving ``||E|| ~ noise * ||X||``: noise is relative to the signal."""
    if noise == 0:
        return 0.0
    return noise * float(tensor.norm()) / math.sqrt(math.prod(shape))


def make_low_rank(shape, rank, format="cp", noise=0.0, random_state=None):
    """A dense random tensor of low rank in the given format, plus optional Gaussian noise.

    Parameters
    ----------
    shape : tuple of int
    rank : int or sequence of int
        The format's rank: the CP rank (int); the Tucker multilinear rank (int or one per
        axis); the ``d - 1`` inner TT ranks (int or sequence); the ``d`` TR bond ranks (int or
        sequence).
    format : {"cp", "tucker", "tt", "tr"}
    noise : float >= 0
        Relative noise level: i.i.d. Gaussian noise with ``||E||_F ~ noise * ||X||_F``.
    random_state : None, int or numpy RandomState

    Returns
    -------
    ndarray of float64, shape ``shape``
        The factors are scaled so that entries have unit variance over the random draw.

    Raises
    ------
    tnml.MemoryBudgetError
        The dense tensor is larger than ``max_memory`` (:func:`tnml.config_context`); use
        :func:`make_low_rank_entries` for large tensors.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.datasets import make_low_rank
    >>> X = make_low_rank((6, 7, 8), 3, format="cp", random_state=0)
    >>> X.shape, int(np.linalg.matrix_rank(X.reshape(6, -1)))
    ((6, 7, 8), 3)
    >>> X = make_low_rank((4, 5, 6, 7), (2, 3, 2), format="tt", random_state=0)
    >>> int(np.linalg.matrix_rank(X.reshape(20, 42)))
    3
    """
    shape = _check_generator_args(shape, format, noise)
    check_memory(math.prod(shape) * 8, "make_low_rank (dense tensor)")
    rng = check_random_state(random_state)
    tensor = _random_format(shape, rank, format, rng)
    dense = np.asarray(tensor.to_tensor(), dtype=np.float64)
    scale = _noise_scale(tensor, noise, shape)
    if scale:
        dense = dense + scale * rng.standard_normal(shape)
    return dense


def _sample_coordinates(shape, n_obs, rng):
    """``n_obs`` distinct coordinates, uniformly at random, in ``O(n_obs)`` memory."""
    total = math.prod(shape)
    if 2 * n_obs > total:
        # Dense sampling: the index set is at most twice the output, so listing it is fine.
        flat = rng.permutation(total)[:n_obs]
        return np.stack(np.unravel_index(flat, shape), axis=1).astype(np.int64)
    coords = np.empty((0, len(shape)), dtype=np.int64)
    while coords.shape[0] < n_obs:
        # Rejection: at most half of the tensor is taken, so each draw is new with
        # probability >= 1/2; drawing 10% extra usually finishes in one round.
        n_draw = (n_obs - coords.shape[0]) * 11 // 10 + 16
        draw = np.stack([rng.randint(0, dim, size=n_draw) for dim in shape], axis=1)
        coords = np.concatenate([coords, draw.astype(np.int64)])
        _, first = np.unique(coords, axis=0, return_index=True)
        coords = coords[np.sort(first)]  # keep the draw order: reproducible and unbiased
    return np.ascontiguousarray(coords[:n_obs])


def make_low_rank_entries(shape, rank, n_obs, format="cp", noise=0.0, random_state=None):
    """``n_obs`` distinct entries of a random low-rank tensor, without forming the tensor.

    The tensor is the one :func:`make_low_rank` gives with the same arguments and
    ``random_state`` (without noise, values match exactly); its values are read with the
    format's ``entries`` method, so memory is ``O(n_obs * ndim)`` plus the factors.

    Parameters
    ----------
    shape : tuple of int
    rank : int or sequence of int
        See :func:`make_low_rank`.
    n_obs : int
        Number of distinct coordinates, at most ``prod(shape)``.
    format : {"cp", "tucker", "tt", "tr"}
    noise : float >= 0
        Relative noise level, as in :func:`make_low_rank` (the noise itself is drawn per
        sampled entry, so it differs from the dense version's).
    random_state : None, int or numpy RandomState

    Returns
    -------
    coords : ndarray of int64, shape (n_obs, ndim)
        Distinct coordinates, uniformly at random, in random order.
    values : ndarray of float64, shape (n_obs,)

    Examples
    --------
    >>> from tnml.datasets import make_low_rank_entries
    >>> coords, values = make_low_rank_entries((1000, 1000, 1000), 5, 100, format="tt",
    ...                                        random_state=0)
    >>> coords.shape, coords.dtype, values.shape
    ((100, 3), dtype('int64'), (100,))
    """
    shape = _check_generator_args(shape, format, noise)
    n_obs = check_positive_int(n_obs, "n_obs")
    if n_obs > math.prod(shape):
        raise ValueError(
            f"n_obs must be at most the number of entries of a tensor of shape "
            f"{shape} ({math.prod(shape)}), got {n_obs}"
        )
    check_memory(n_obs * (len(shape) + 1) * 8, "make_low_rank_entries (coordinates)")
    rng = check_random_state(random_state)
    tensor = _random_format(shape, rank, format, rng)  # first draw: the same as make_low_rank
    coords = _sample_coordinates(shape, n_obs, rng)
    values = np.asarray(tensor.entries(coords), dtype=np.float64)
    scale = _noise_scale(tensor, noise, shape)
    if scale:
        values = values + scale * rng.standard_normal(n_obs)
    return coords, values


# -- supervised learning: digit images ----------------------------------------------------------
__all__ += ["load_digits_images", "load_mnist"]

# IDX element types: code -> big-endian NumPy dtype (LeCun's format description).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_digits_images():
    """scikit-learn's bundled 8 x 8 handwritten digits as images.

    Returns
    -------
    images : ndarray of float64, shape (1797, 8, 8)
        Grey levels 0..16, as scikit-learn ships them.
    target : ndarray of int64, shape (1797,)

    Examples
    --------
    >>> from tnml.datasets import load_digits_images
    >>> images, target = load_digits_images()
    >>> images.shape, int(images.max()), sorted(set(target.tolist())) == list(range(10))
    ((1797, 8, 8), 16, True)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float64), digits.target.astype(np.int64)


def _read_idx(path):
    """An IDX file (raw or gzip-compressed) as a NumPy array of its stored type."""
    import gzip

    with open(path, "rb") as stream:
        compressed = stream.read(2) == b"\x1f\x8b"
    opener = gzip.open if compressed else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4]!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated: the header needs {header} bytes")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path} holds {len(data) - header} bytes of data but its header "
            f"announces shape {shape} ({expected} bytes)"
        )
    return (
        np.frombuffer(data, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _find_idx(directory, stem, kind):
    import os

    # The files go by several names: LeCun's originals, with a dot before 'idx', gzipped.
    names = [f"{stem}-{kind}", f"{stem}.{kind}"]
    for name in names:
        for suffix in ("", ".gz"):
            candidate = os.path.join(directory, name + suffix)
            if os.path.isfile(candidate):
                return candidate
    raise FileNotFoundError(f"no {names[0]} file (raw or .gz) in {directory}")


def load_mnist(path, subset="train", pool=False):
    """Read MNIST (or Fashion-MNIST) from the IDX files a user already has; nothing is
    downloaded.

    Parameters
    ----------
    path : str or path-like
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``; the
        ``train-images.idx3-ubyte`` spelling is accepted too).
    subset : {'train', 'test'}, default='train'
    pool : bool, default=False
        Average 2 x 2 blocks (28 x 28 -> 14 x 14), as in Stoudenmire & Schwab (2016).

    Returns
    -------
    images : ndarray of float64, shape (n, 28, 28) or (n, 14, 14)
        Grey levels scaled to [0, 1].
    labels : ndarray of int64, shape (n,)

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> import numpy as np
    >>> from tnml.datasets import load_mnist
    >>> folder = tempfile.mkdtemp()
    >>> header = bytes([0, 0, 8, 3]) + np.array([2, 4, 4], ">u4").tobytes()
    >>> with gzip.open(os.path.join(folder, "train-images-idx3-ubyte.gz"), "wb") as f:
    ...     _ = f.write(header + bytes(range(32)))
    >>> with open(os.path.join(folder, "train-labels-idx1-ubyte"), "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1]) + np.array([2], ">u4").tobytes() + bytes([7, 1]))
    >>> images, labels = load_mnist(folder, pool=True)
    >>> images.shape, labels.tolist()
    ((2, 2, 2), [7, 1])
    """
    import os

    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    if not isinstance(pool, (bool, np.bool_)):
        raise TypeError(f"pool must be a bool, got {pool!r}")
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"path must be a directory holding the MNIST IDX files, got {path!r}"
        )
    prefix = "train" if subset == "train" else "t10k"
    images = _read_idx(_find_idx(path, f"{prefix}-images", "idx3-ubyte"))
    labels = _read_idx(_find_idx(path, f"{prefix}-labels", "idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST images must be (n, height, width) and labels (n,), got "
            f"{images.shape} and {labels.shape}"
        )
    images = images.astype(np.float64) / 255.0
    if pool:
        n, height, width = images.shape
        if height % 2 or width % 2:
            raise ValueError(f"pool=True needs even image sides, got {height} x {width}")
        images = images.reshape(n, height // 2, 2, width // 2, 2).mean(axis=(2, 4))
    return images, labels.astype(np.int64)
