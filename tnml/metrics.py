"""Scores for reconstructions and completions: rse, psnr, ssim and compression_ratio.

Every score takes an optional ``mask``, a boolean array of ``X_true``'s shape that **selects
the entries to score** (True = scored). To score a completion on the entries it did not see,
pass the complement of the mask of observed entries, ``mask=~observed``; ``mask=None`` scores
every entry.

Scores are computed in the namespace of the inputs (NumPy or CuPy) and returned as Python
floats; only :func:`ssim`, which needs scikit-image, copies to the host, explicitly.
"""

import math
import numbers

from .backend import get_namespace, to_numpy

__all__ = ["rse", "psnr", "ssim", "compression_ratio"]


def _check_pair(X_true, X_pred, mask):
    """Same shapes; a boolean mask of that shape with at least one scored entry."""
    if tuple(X_true.shape) != tuple(X_pred.shape):
        raise ValueError(
            f"X_true and X_pred must have the same shape, got {X_true.shape} and {X_pred.shape}"
        )
    xp = get_namespace(X_true, X_pred, mask)
    if mask is None:
        return xp
    if not hasattr(mask, "dtype") or mask.dtype != xp.bool_:
        raise TypeError(
            f"mask must be a boolean array (True = scored entry), got "
            f"{getattr(mask, 'dtype', type(mask).__name__)}"
        )
    if tuple(mask.shape) != tuple(X_true.shape):
        raise ValueError(
            f"mask must have the shape of X_true {tuple(X_true.shape)}, got {tuple(mask.shape)}"
        )
    if not bool(xp.any(mask)):
        raise ValueError(
            "mask selects no entry to score; it must have at least one True "
            "(True = scored, e.g. mask=~observed to score the missing entries)"
        )
    return xp


def _scored(X_true, X_pred, mask):
    if mask is None:
        return X_true, X_pred
    return X_true[mask], X_pred[mask]


def _default_data_range(X_true, xp):
    """1 for data in [0, 1] (floating-point images, as scikit-image assumes), else max - min.

    The range is taken over the whole of ``X_true``, not the scored entries only: the peak is a
    property of the signal, and scores of different masks on one tensor stay comparable.
    """
    low, high = float(xp.min(X_true)), float(xp.max(X_true))
    if low >= 0 and high <= 1:
        return 1.0
    if high == low:
        raise ValueError(
            f"X_true is constant ({low}) and outside [0, 1], so its range is "
            f"zero; give data_range explicitly"
        )
    return high - low


def _check_data_range(data_range, X_true, xp):
    if data_range is None:
        return _default_data_range(X_true, xp)
    if (
        isinstance(data_range, bool)
        or not isinstance(data_range, numbers.Real)
        or not (data_range > 0 and math.isfinite(data_range))
    ):
        raise ValueError(f"data_range must be a finite number > 0 or None, got {data_range!r}")
    return float(data_range)


def rse(X_true, X_pred, mask=None):
    """Relative error ``||X_true - X_pred||_F / ||X_true||_F`` on the scored entries.

    Parameters
    ----------
    X_true, X_pred : arrays of the same shape
    mask : bool array of that shape or None
        Entries to score (True = scored); ``~observed`` scores the missing entries only.

    Returns
    -------
    float
        Where ``X_true`` is zero on the scored entries, the absolute error
        ``||X_true - X_pred||_F``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.metrics import rse
    >>> rse(np.ones(4), np.zeros(4))
    1.0
    >>> rse(np.ones(4), np.array([1.0, 1.0, 0.0, 0.0]), mask=np.array([True, True, False, True]))
    0.5773502691896258
    """
    xp = _check_pair(X_true, X_pred, mask)
    X_true, X_pred = _scored(X_true, X_pred, mask)
    norm = float(xp.linalg.norm(X_true))
    return float(xp.linalg.norm(X_true - X_pred)) / (norm or 1.0)


def psnr(X_true, X_pred, mask=None, data_range=None):
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in decibels.

    Equals :func:`skimage.metrics.peak_signal_noise_ratio` without a mask, but also works on
    any namespace and scores the selected entries only when given a mask.

    Parameters
    ----------
    X_true, X_pred : arrays of the same shape
    mask : bool array of that shape or None
        Entries to score (True = scored); the MSE is averaged over them.
    data_range : float or None
        The peak. ``None``: 1.0 when ``X_true`` lies in [0, 1] (floating-point images, as
        scikit-image assumes), otherwise ``X_true.max() - X_true.min()``; both over the whole
        ``X_true`` (the peak belongs to the signal, not to the mask). Pass 255 for 8-bit data.

    Returns
    -------
    float
        ``inf`` when the scored entries are reproduced exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.metrics import psnr
    >>> X = np.full((4, 4), 0.5)
    >>> round(psnr(X, X + 0.1), 6)
    20.0
    """
    xp = _check_pair(X_true, X_pred, mask)
    data_range = _check_data_range(data_range, X_true, xp)
    X_true, X_pred = _scored(X_true, X_pred, mask)
    diff = X_true - X_pred
    mse = float(xp.mean(diff * diff))
    if mse == 0:
        return math.inf
    return 10 * math.log10(data_range**2 / mse)


def _ssim_pad(win_size, gaussian_weights):
    """Border width that :func:`skimage.metrics.structural_similarity` leaves out of its mean."""
    if win_size is None:
        win_size = 11 if gaussian_weights else 7  # scikit-image's defaults
    return (win_size - 1) // 2


def ssim(X_true, X_pred, mask=None, data_range=None, **kwargs):
    """Structural similarity of two images, by :func:`skimage.metrics.structural_similarity`.

    Parameters
    ----------
    X_true, X_pred : arrays of shape (H, W) or (H, W, C)
        A 3-D array is an image with channels last (colour, or the bands of a hyperspectral
        cube); its score is the mean over channels. Copied to the host explicitly.
    mask : bool array of shape (H, W) or (H, W, C), or None
        Pixels to score (True = scored): the SSIM map is averaged over them. An (H, W) mask
        applies to every channel. Like scikit-image's mean, the map's border (half a window
        wide), where it is not defined, is never scored.
    data_range : float or None
        As in :func:`psnr`.
    **kwargs
        Passed to scikit-image (``win_size``, ``gaussian_weights``, ``sigma``, ...).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.metrics import ssim
    >>> X = np.random.default_rng(0).random((32, 32))
    >>> ssim(X, X)
    1.0
    >>> damaged = np.zeros((32, 32), dtype=bool); damaged[8:16, 8:16] = True
    >>> X_pred = np.where(damaged, 0.5, X)
    >>> ssim(X, X_pred, mask=damaged) < ssim(X, X_pred) < 1.0
    True
    """
    from skimage.metrics import structural_similarity

    if getattr(X_true, "ndim", None) not in (2, 3):
        raise ValueError(
            f"X_true must be an image of shape (H, W) or (H, W, C), got shape "
            f"{getattr(X_true, 'shape', None)}"
        )
    X_true, X_pred = to_numpy(X_true), to_numpy(X_pred)
    if mask is not None:
        mask = to_numpy(mask)
        if X_true.ndim == 3 and getattr(mask, "ndim", None) == 2:
            mask = _broadcast_mask(mask, X_true.shape)
    xp = _check_pair(X_true, X_pred, mask)
    data_range = _check_data_range(data_range, X_true, xp)
    channel_axis = -1 if X_true.ndim == 3 else None
    kwargs.pop("full", None)
    score, ssim_map = structural_similarity(
        X_true, X_pred, data_range=data_range, channel_axis=channel_axis, full=True, **kwargs
    )
    if mask is None:
        return float(score)
    pad = _ssim_pad(kwargs.get("win_size"), kwargs.get("gaussian_weights", False))
    interior = xp.zeros(X_true.shape, dtype=bool)
    interior[pad : X_true.shape[0] - pad, pad : X_true.shape[1] - pad] = True
    scored = mask & interior
    if not scored.any():
        raise ValueError(
            f"mask selects no pixel at least {pad} pixels from the border, where "
            f"the SSIM map is defined; nothing to score"
        )
    return float(ssim_map[scored].mean(dtype="float64"))


def _broadcast_mask(mask, shape):
    if tuple(mask.shape) != tuple(shape[:2]):
        raise ValueError(
            f"mask must have shape {tuple(shape[:2])} or {tuple(shape)}, got {tuple(mask.shape)}"
        )
    return get_namespace(mask).broadcast_to(mask[:, :, None], shape)


def compression_ratio(format_or_n_params, shape=None):
    """Stored parameters over dense entries, ``n_params / prod(shape)``: below 1 compresses.

    The same convention as the formats' ``compression_ratio()`` method (some papers report
    the inverse).

    Parameters
    ----------
    format_or_n_params : a tnml format (anything with ``n_params`` and ``shape``) or int
    shape : tuple of int or None
        The dense tensor's shape; defaults to the format's shape, required with an int.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.metrics import compression_ratio
    >>> from tnml.decompositions import CPTensor
    >>> cp = CPTensor(np.ones(2), [np.ones((10, 2))] * 3)
    >>> compression_ratio(cp)
    0.062
    >>> compression_ratio(62, (10, 10, 10))
    0.062
    """
    if hasattr(format_or_n_params, "n_params"):
        n_params = format_or_n_params.n_params
        shape = format_or_n_params.shape if shape is None else shape
    elif isinstance(format_or_n_params, numbers.Integral) and not isinstance(
        format_or_n_params, bool
    ):
        n_params = int(format_or_n_params)
        if n_params < 0:
            raise ValueError(f"format_or_n_params must be >= 0 parameters, got {n_params}")
        if shape is None:
            raise ValueError("shape is required when format_or_n_params is a number of parameters")
    else:
        raise TypeError(
            f"format_or_n_params must be a tnml format (with n_params and shape) "
            f"or an int, got {type(format_or_n_params).__name__}"
        )
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of positive ints, got {shape!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"shape must be a non-empty sequence of positive ints, got {shape}")
    return n_params / math.prod(shape)
