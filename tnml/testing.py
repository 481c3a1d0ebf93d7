"""A host-guard array namespace: proves on a CPU that code never copies device data to the host.

:class:`HostGuardArray` behaves like a CuPy array: it has its own namespace (this module, which
mirrors NumPy's API and returns guard arrays), it supports NumPy's ``__array_ufunc__`` and
``__array_function__`` protocols, and - the point - implicit conversion to a NumPy array raises
``TypeError`` just as CuPy does. An algorithm that runs on guard arrays end to end and returns
guard arrays therefore makes no implicit device-to-host copy (no ``np.asarray``, no SciPy call,
no host-side initialisation left on the host) and will run unchanged on CuPy.

Examples
--------
>>> import numpy as np
>>> from tnml import testing
>>> x = testing.asarray(np.ones((2, 3)))
>>> y = (x * 2).sum(axis=0)
>>> type(y).__name__
'HostGuardArray'
>>> np.asarray(y)
Traceback (most recent call last):
...
TypeError: implicit conversion of a HostGuardArray to a NumPy array is not allowed; use tnml.backend.to_numpy
"""  # noqa: E501 - a doctest traceback is one line

import sys
import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

__all__ = ["HostGuardArray", "asarray"]


class HostGuardArray(NDArrayOperatorsMixin):
    """An array that lives on a pretend device; see the module docstring."""

    __slots__ = ("_data",)

    def __init__(self, data):
        self._data = data

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "implicit conversion of a HostGuardArray to a NumPy array is not "
            "allowed; use tnml.backend.to_numpy"
        )

    def __array_namespace__(self, api_version=None):
        return sys.modules[__name__]

    def __tnml_to_numpy__(self):
        return np.array(self._data)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs)))

    def __array_function__(self, func, types_, args, kwargs):
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # Scalar extraction is allowed, as in CuPy (it synchronises and copies one number).
    def __float__(self):
        return float(self._data)

    def __int__(self):
        return int(self._data)

    def __index__(self):
        return self._data.__index__()

    def __complex__(self):
        return complex(self._data)

    def __bool__(self):
        return bool(self._data)

    def item(self):
        return self._data.item()

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        return (_wrap(row) for row in self._data)

    def __getitem__(self, key):
        return _wrap(self._data[_unwrap(key)])

    def __setitem__(self, key, value):
        self._data[_unwrap(key)] = _unwrap(value)

    def __repr__(self):
        return f"HostGuardArray({self._data!r})"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in ("tolist", "tobytes", "__array_interface__", "ctypes", "data"):
            raise TypeError(f"HostGuardArray.{name} would copy to the host implicitly")
        return _wrap(getattr(self._data, name))

    def __reduce__(self):
        return (HostGuardArray, (self._data,))


def _unwrap(obj):
    if isinstance(obj, HostGuardArray):
        return obj._data
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(item) for item in obj)
    if isinstance(obj, dict):
        return {key: _unwrap(value) for key, value in obj.items()}
    return obj


def _wrap(obj):
    if isinstance(obj, (np.ndarray, np.generic)) and not isinstance(obj, np.dtype):
        return HostGuardArray(np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(item) for item in obj)
    if isinstance(obj, list):
        return [_wrap(item) for item in obj]
    if callable(obj) and not isinstance(obj, type):

        def wrapped(*args, **kwargs):
            return _wrap(obj(*_unwrap(args), **_unwrap(kwargs)))

        wrapped.__name__ = getattr(obj, "__name__", "wrapped")
        return wrapped
    if hasattr(obj, "_asdict"):  # named tuples such as linalg.svd's result
        return type(obj)(*(_wrap(item) for item in obj))
    return obj


class _SubNamespace(types.SimpleNamespace):
    """Mirror of a NumPy submodule (``linalg``, ``fft``, ``random``) over guard arrays."""

    def __init__(self, module):
        super().__init__()
        object.__setattr__(self, "_module", module)

    def __getattr__(self, name):
        return _wrap(getattr(self._module, name))


linalg = _SubNamespace(np.linalg)
fft = _SubNamespace(np.fft)


def asarray(obj, dtype=None, copy=None):
    """Move ``obj`` onto the pretend device (host-to-device copies are always allowed)."""
    if isinstance(obj, HostGuardArray):
        data = obj._data if dtype is None else obj._data.astype(dtype, copy=bool(copy))
        return HostGuardArray(np.array(data) if copy else data)
    return HostGuardArray(np.array(obj, dtype=dtype, copy=True))


def __getattr__(name):
    """Every other NumPy function, constant and dtype, over guard arrays."""
    if name.startswith("__"):
        raise AttributeError(name)
    return _wrap(getattr(np, name))
