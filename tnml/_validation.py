"""Input checks shared by every layer.

They name the parameter, what was given and what is allowed.
"""

import math
import numbers

import numpy as np

from .backend import get_namespace

__all__ = [
    "check_tensor",
    "check_positive_int",
    "check_nonneg_float",
    "check_rank_sequence",
    "check_mask",
    "check_masked_tensor",
    "check_indices",
    "missing_mask",
    "check_value_range",
]


def check_tensor(X, name="X", min_order=2, allow_nan=False, dtype=None):
    """Validate a dense tensor and return it as a floating array of its own namespace.

    Integer and boolean inputs become float64; float32 stays float32 (a GPU user chose it).

    Raises
    ------
    TypeError
        Non-numeric (object, string, complex) data.
    ValueError
        Fewer than ``min_order`` axes, an empty axis, or NaN/inf where not allowed.
    """
    xp = get_namespace(X)
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        X = np.asarray(X)
        if X.dtype == object:
            raise TypeError(f"{name} must be a numeric array, got a ragged or object sequence")
        xp = np
    kind = np.dtype(X.dtype).kind if xp is np else X.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (bool, int or float), got dtype {X.dtype}")
    if X.ndim < min_order:
        raise ValueError(f"{name} must have at least {min_order} axes, got shape {tuple(X.shape)}")
    if any(d == 0 for d in X.shape):
        raise ValueError(
            f"{name} has an empty axis: shape {tuple(X.shape)}; every axis needs at least one entry"
        )
    if dtype is None:
        dtype = X.dtype if kind == "f" and X.dtype.itemsize >= 4 else xp.float64
    # One contiguous copy up front (only when needed) lets every algorithm use reshape views.
    X = xp.ascontiguousarray(xp.asarray(X, dtype=dtype))
    finite = xp.isfinite(X)
    all_finite = bool(xp.all(finite))
    if not all_finite:
        if not allow_nan:
            raise ValueError(
                f"{name} contains NaN or infinity; give a mask of observed entries "
                f"(or NaN for missing entries where an estimator accepts them)"
            )
        if bool(xp.any(xp.isinf(X))):
            raise ValueError(f"{name} contains infinity; only NaN may mark missing entries")
    check_value_range(X, name, all_finite=all_finite)
    return X


def check_value_range(X, name="X", all_finite=False):
    """Refuse values whose squares overflow: every fit sums squares (norms, Gram matrices,
    normal equations), which would turn into inf/NaN or a LinAlgError far from the cause.

    ``X`` is a floating array without infinities; NaN entries (missing) are ignored.
    """
    xp = get_namespace(X)
    if not all_finite and not bool(xp.any(~xp.isnan(X))):
        return X
    low, high = (xp.min, xp.max) if all_finite else (xp.nanmin, xp.nanmax)
    largest = max(float(high(X)), -float(low(X)))  # no |X| copy
    limit = math.sqrt(float(xp.finfo(X.dtype).max) / X.size)
    if largest > limit:
        raise ValueError(
            f"{name} holds values up to {largest:.3g} in magnitude; sums of their "
            f"squares overflow {X.dtype} (its limit is {limit:.3g} for "
            f"{X.size} entries): rescale {name}, e.g. divide it by its largest "
            f"absolute value"
        )
    return X


def underflow_scale(X):
    """A power of two that brings tiny data to magnitude ~1, or 1.0 when none is needed.

    Every fit sums squares (norms, Gram matrices), and squares of values below about
    ``sqrt(tiny)`` (1e-154 in float64) underflow to zero, so a fit of such data breaks
    (``LinAlgError``, NaN). Scaling by a power of two is exact: fit ``X * scale`` and divide
    the model by ``scale``. NaN entries are ignored; all-zero data gives 1.0.

    Examples
    --------
    >>> import numpy as np
    >>> 0.5 <= underflow_scale(np.full((2, 2), 1e-160)) * 1e-160 < 1
    True
    >>> underflow_scale(np.ones((2, 2)))
    1.0
    """
    xp = get_namespace(X)
    if not bool(xp.any(~xp.isnan(X))):
        return 1.0
    largest = max(float(xp.nanmax(X)), -float(xp.nanmin(X)))
    if largest == 0 or largest >= float(xp.finfo(X.dtype).tiny) ** 0.25:
        return 1.0
    return math.ldexp(1.0, -math.frexp(largest)[1])


def missing_mask(X, missing_values=np.nan):
    """True where ``X`` is missing: NaN always, and entries equal to ``missing_values``.

    The one definition of a missing entry for every estimator: a NaN in data whose marker is
    another value is missing too, never a number that poisons the fit.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml._validation import missing_mask
    >>> missing_mask(np.array([1.0, -1.0, np.nan]), missing_values=-1).tolist()
    [False, True, True]
    """
    xp = get_namespace(X)
    missing = xp.isnan(X)
    if not (isinstance(missing_values, numbers.Real) and math.isnan(missing_values)):
        missing = missing | (X == missing_values)
    return missing


def check_mask(mask, shape, name="mask"):
    """Validate a boolean mask of observed entries (True = observed) for a tensor of ``shape``."""
    if mask is None:
        return None
    if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
        mask = np.asarray(mask)  # a nested list of booleans is a mask too
    xp = get_namespace(mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have the tensor's shape {tuple(shape)}, got {tuple(mask.shape)}"
        )
    if mask.dtype != xp.bool_:
        raise TypeError(f"{name} must be a boolean array (True = observed), got dtype {mask.dtype}")
    n_observed = int(xp.sum(mask))
    if n_observed == 0:
        raise ValueError(f"{name} has no observed entries; nothing to fit")
    return mask


def check_masked_tensor(X, mask, min_order=2, require_mask=False):
    """Validate a tensor with an optional mask of observed entries, the input of every fit.

    Unobserved entries may hold NaN; observed ones must be finite.

    Parameters
    ----------
    X : array
    mask : bool array of X's shape or None
        True where X is observed; None when every entry is (unless ``require_mask``).
    min_order : int, default=2
    require_mask : bool, default=False
        Raise when ``mask`` is None (solvers that exist only for incomplete data).

    Returns
    -------
    X : array
        Floating and C-contiguous (every unfolding is a reshape view), zero at the unobserved
        entries.
    mask : bool array or None

    Examples
    --------
    >>> import numpy as np
    >>> from tnml._validation import check_masked_tensor
    >>> X = np.array([[1.0, np.nan], [3.0, 4.0]])
    >>> filled, mask = check_masked_tensor(X, ~np.isnan(X))
    >>> filled.tolist()
    [[1.0, 0.0], [3.0, 4.0]]
    """
    if mask is None:
        if require_mask:
            raise ValueError(
                "mask is required: give a boolean array of X's shape, True where X is observed"
            )
        return check_tensor(X, "X", min_order=min_order), None
    X = check_tensor(X, "X", min_order=min_order, allow_nan=True)
    mask = check_mask(mask, X.shape)
    xp = get_namespace(X, mask)
    if bool(xp.any(xp.isnan(X) & mask)):
        raise ValueError("X has NaN at observed entries (where the mask is True)")
    return xp.ascontiguousarray(xp.where(mask, X, 0)), mask


def check_positive_int(value, name, upper=None):
    """An integer >= 1 (and <= upper when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    if upper is not None and value > upper:
        raise ValueError(f"{name}={value} is larger than this tensor allows (at most {upper})")
    return int(value)


def check_nonneg_float(value, name):
    """A finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative number, got {value!r}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def check_rank_sequence(rank, length, name="rank"):
    """An int (broadcast to ``length``) or a sequence of ``length`` positive ints."""
    if isinstance(rank, numbers.Integral) and not isinstance(rank, bool):
        ranks = [rank] * length
    else:
        try:
            ranks = list(rank)
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a sequence of {length} ints, got {rank!r}"
            ) from None
        if len(ranks) != length:
            raise ValueError(
                f"{name} must have {length} entries for this tensor, got "
                f"{len(ranks)}: {tuple(ranks)}"
            )
    return tuple(check_positive_int(r, name) for r in ranks)


def check_indices(indices, shape, name="indices"):
    """Integer coordinates of shape (n, ndim) inside ``shape``; returns them in their namespace."""
    xp = get_namespace(indices)
    if not hasattr(indices, "shape"):
        indices = np.asarray(indices)
        xp = np
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer coordinates, got dtype {indices.dtype}")
    if indices.ndim != 2 or indices.shape[1] != len(shape):
        raise ValueError(f"{name} must have shape (n, {len(shape)}), got {tuple(indices.shape)}")
    if indices.shape[0] and (
        bool(xp.any(indices < 0)) or bool(xp.any(indices >= xp.asarray(shape)))
    ):
        raise ValueError(f"{name} has coordinates outside the tensor's shape {tuple(shape)}")
    return indices
