"""Global configuration of tnml, modelled on :func:`sklearn.config_context`.

The one setting today is ``max_memory``: the largest array (in bytes) that tnml may allocate
for an intermediate result. Work that would exceed it is refused *before* it allocates, so a
structure search or a large contraction fails fast with a clear message instead of swapping.
"""

import os
import re
import threading
from contextlib import contextmanager

__all__ = ["get_config", "set_config", "config_context", "check_memory", "MemoryBudgetError"]

_DEFAULTS = {"max_memory": None}
_local = threading.local()

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


class MemoryBudgetError(MemoryError):
    """Raised when a computation would allocate more than ``max_memory`` bytes."""


def _state():
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def _parse_bytes(value):
    """Turn ``None``, a number of bytes or a string such as ``"2GB"`` into bytes (or None)."""
    if value is None:
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", value)
        if match is None or match.group(2).upper() not in _UNITS:
            raise ValueError(
                f"max_memory must be a number of bytes or a string like '512MB' or '2GiB', "
                f"got {value!r}"
            )
        value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"max_memory must be a positive number of bytes or None, got {value!r}")
    return int(value)


def get_config():
    """Return a copy of the current configuration.

    Examples
    --------
    >>> import tnml
    >>> tnml.get_config()["max_memory"] is None
    True
    """
    return dict(_state())


def set_config(max_memory=None):
    """Set the global configuration.

    Parameters
    ----------
    max_memory : int, float, str or None
        Largest intermediate array tnml may allocate, in bytes or as a string with a unit
        (``"500MB"``, ``"2GiB"``). ``None`` means no limit.
    """
    _state()["max_memory"] = _parse_bytes(max_memory)


@contextmanager
def config_context(**params):
    """Temporarily change the configuration, like :func:`sklearn.config_context`.

    Examples
    --------
    >>> import tnml
    >>> with tnml.config_context(max_memory="1GB"):
    ...     tnml.get_config()["max_memory"]
    1000000000
    >>> tnml.get_config()["max_memory"] is None
    True
    """
    unknown = set(params) - set(_DEFAULTS)
    if unknown:
        raise TypeError(
            f"config_context got unknown settings {sorted(unknown)}; allowed: {sorted(_DEFAULTS)}"
        )
    old = get_config()
    try:
        set_config(**{**old, **params})
        yield
    finally:
        _state().update(old)


def format_bytes(n_bytes):
    """``n_bytes`` with the largest decimal unit that keeps it >= 1 (``"1.5 kB"``, ``"12 B"``).

    Examples
    --------
    >>> from tnml._config import format_bytes
    >>> format_bytes(2_000), format_bytes(123_400_000), format_bytes(12)
    ('2 kB', '123.4 MB', '12 B')
    """
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.4g} {unit}"
        value /= 1000
    return f"{value:.4g} TB"  # pragma: no cover - the loop returns at TB


def _physical_memory():
    """Bytes of RAM of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


@contextmanager
def held_memory(n_bytes):
    """Count ``n_bytes`` that a fit holds for its whole length in every budget check meanwhile.

    A fit made of many steps (a model search) keeps arrays alive across them (the observed
    entries, their splits, the best model so far); each step's own check then asks whether
    its allocation fits beside them, not alone. Nested contexts add up; per thread.

    Examples
    --------
    >>> from tnml._config import check_memory, config_context, held_memory
    >>> with config_context(max_memory="10MB"), held_memory(8 * 10**6):
    ...     check_memory(4 * 10**6, "a step")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    MemoryBudgetError: a step needs 12 MB, more than max_memory=10 MB; ...
    """
    previous = getattr(_local, "held", 0)
    _local.held = previous + int(n_bytes)
    try:
        yield
    finally:
        _local.held = previous


def check_memory(n_bytes, what):
    """Refuse an allocation of ``n_bytes`` for ``what`` when it exceeds ``max_memory``
    together with what the running fit holds (:func:`held_memory`).

    Without a budget, an allocation larger than the machine's whole memory is refused too:
    it could only end with the process swapped to a halt or killed by the kernel.
    """
    n_bytes = n_bytes + getattr(_local, "held", 0)
    limit = _state()["max_memory"]
    if limit is not None and n_bytes > limit:
        raise MemoryBudgetError(
            f"{what} needs {format_bytes(n_bytes)}, more than max_memory="
            f"{format_bytes(limit)}; raise it with tnml.config_context(max_memory=...) or "
            f"reduce the sizes or ranks"
        )
    physical = _physical_memory() if limit is None else None
    if physical is not None and n_bytes > physical:
        raise MemoryBudgetError(
            f"{what} needs {format_bytes(n_bytes)}, more than this machine's memory "
            f"({format_bytes(physical)}); reduce the sizes or ranks"
        )
