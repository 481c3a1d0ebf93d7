"""Array namespaces: the inputs decide where the computation runs.

tnml never switches a global backend. Every function asks :func:`get_namespace` for the
namespace (``numpy``, ``cupy`` or any module exposing the NumPy API for its array type) of its
operands, computes in it and returns arrays of it. Moving data to the host is explicit, through
:func:`to_numpy`; anything else would be a silent device-to-host copy.
"""

import contextlib
import importlib
import threading

import numpy as np

__all__ = [
    "get_namespace",
    "namespace_name",
    "to_numpy",
    "to_device",
    "is_numpy",
    "check_random_state",
    "serial_blas",
]


def _array_module(array):
    """The namespace of one array, or None for host data (NumPy arrays, scalars, lists)."""
    if isinstance(array, (np.ndarray, np.generic, int, float, complex, list, tuple)):
        return None
    namespace = getattr(array, "__array_namespace__", None)
    if namespace is not None:
        module = namespace()
        # CuPy's array-API namespace is cupy itself or a strict subset; keep the full module.
        if module.__name__.split(".")[0] == "cupy":
            return importlib.import_module("cupy")
        return module
    root = type(array).__module__.split(".")[0]
    if root == "cupy":
        return importlib.import_module("cupy")
    return None


def get_namespace(*arrays):
    """Return the array namespace shared by ``arrays``.

    NumPy arrays, Python scalars and ``None`` mix with any namespace; two different device
    namespaces do not.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.backend import get_namespace
    >>> get_namespace(np.ones(3), 2.0).__name__
    'numpy'
    """
    found = None
    for array in arrays:
        if array is None:
            continue
        module = _array_module(array)
        if module is None:
            continue
        if found is not None and module is not found:
            raise TypeError(
                f"arrays from different namespaces: {found.__name__} and "
                f"{module.__name__}; move them with tnml.backend.to_device first"
            )
        found = module
    return np if found is None else found


def namespace_name(xp):
    """Name of the namespace as opt_einsum expects it for its ``backend`` argument."""
    return xp.__name__


def is_numpy(xp):
    """True when ``xp`` is NumPy itself."""
    return xp is np


def to_numpy(array):
    """Copy ``array`` to a NumPy array on the host. The only sanctioned device-to-host path.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.backend import to_numpy
    >>> to_numpy(np.arange(3))
    array([0, 1, 2])
    """
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "get") and type(array).__module__.split(".")[0] == "cupy":
        return array.get()
    to_host = getattr(array, "__tnml_to_numpy__", None)
    if to_host is not None:
        return to_host()
    return np.asarray(array)


def to_device(array, xp):
    """Put a host array (or anything array-like) into namespace ``xp``.

    Host-to-device copies are explicit too: algorithms call this for their random
    initialisations, which are drawn on the host for reproducibility across namespaces.
    """
    if xp is np:
        return np.asarray(array)
    return xp.asarray(array)


def check_random_state(random_state):
    """A NumPy ``RandomState`` from ``None``, an int or a ``RandomState`` (sklearn's meaning).

    Random numbers are drawn on the host so that a seed gives the same model on every
    namespace; they are then moved with :func:`to_device`.
    """
    if random_state is None or random_state is np.random:
        return np.random.mtrand._rand
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.RandomState(random_state)
    if isinstance(random_state, np.random.RandomState):
        return random_state
    raise ValueError(
        f"random_state must be None, an int or a numpy RandomState, got {random_state!r}"
    )


@contextlib.contextmanager
def serial_blas():
    """A context manager that runs the host BLAS/LAPACK single-threaded meanwhile.

    For work made of many small or skinny products and factorisations (a few hundred rows
    wide), threads gain little, and a multithreaded OpenBLAS whose cores are busy with other
    work stalls.

    Safe under threads. The BLAS thread count is one process-wide setting, so the contexts of
    all threads share one limit: the first context to open (no limit held) sets it to 1 and
    restores the caller's setting when it closes; a context opened meanwhile, in any thread,
    only runs under that limit (a per-context save and restore would let a thread that closes
    last restore the 1 another set). The limit is set and restored by one thread, which is
    what OpenBLAS needs: it ignores ``openblas_set_num_threads`` from other threads than the
    main one. Nested contexts in one thread are free.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.backend import serial_blas
    >>> with serial_blas():
    ...     float(np.ones((3, 3)) @ np.ones(3) @ np.ones(3))
    9.0
    """
    global _SERIAL_LIMIT
    depth = getattr(_SERIAL_STATE, "depth", 0)
    owner = False
    if depth == 0:
        with _SERIAL_LOCK:
            if _SERIAL_LIMIT is None:
                _SERIAL_LIMIT = _blas_controller().limit(limits=1, user_api="blas")
                owner = True
    _SERIAL_STATE.depth = depth + 1
    try:
        yield
    finally:
        _SERIAL_STATE.depth = depth
        if owner:
            with _SERIAL_LOCK:
                _SERIAL_LIMIT.restore_original_limits()
                _SERIAL_LIMIT = None


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, found once (a millisecond)."""
    global _THREADPOOLS
    if _THREADPOOLS is None:
        from threadpoolctl import ThreadpoolController

        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS


_THREADPOOLS = None
# The one limit held by serial_blas (None: none), the lock around it, and each thread's depth
# of nested serial_blas contexts.
_SERIAL_LIMIT = None
_SERIAL_LOCK = threading.Lock()
_SERIAL_STATE = threading.local()
