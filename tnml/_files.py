"""Reading and writing the files tnml uses, with one set of limits.

Every array file tnml reads (saved models, search checkpoints, the command line's inputs) goes
through :func:`read_npy`: sizes are checked against the file before anything is decompressed
or allocated, and nothing is unpickled. Every file tnml writes goes through
:func:`atomic_write`. :mod:`tnml.io` builds save/load on these; this module imports nothing
above the configuration, so any layer may use it.
"""

import math
import os
import secrets
import zipfile
from contextlib import contextmanager

import numpy as np

from ._config import check_memory, format_bytes, get_config

__all__ = [
    "InvalidFile",
    "ARRAY_KINDS",
    "EXPANSION_ALLOWANCE",
    "read_npy",
    "default_max_bytes",
    "read_array",
    "read_arrays",
    "remove_stale_temps",
    "atomic_write",
]


class InvalidFile(ValueError):
    """Why a file is not a valid tnml file (becomes the documented ValueError)."""


# Array dtype kinds a file may hold: bool, integers, floats, complex (never objects).
ARRAY_KINDS = "biufc"
_TEMP_SUFFIX = ".tnml-tmp"
# Bytes a file may declare beyond its own size (only compressed entries can): the default
# of ``load(max_bytes=None)``. tnml writes uncompressed entries, whose size is the file's.
EXPANSION_ALLOWANCE = 64 * 2**20


def read_npy(stream, size, what="the array"):
    """Read one ``.npy`` array of ``size`` bytes from ``stream``, checking its header first.

    The header's shape and dtype must account for exactly ``size`` bytes and the dtype must be
    a number type, so a crafted header never makes this allocate more than the data it
    claims to hold (nor unpickle anything). Raises ``ValueError`` naming ``what``.
    """
    try:
        version = np.lib.format.read_magic(stream)
    except ValueError:
        raise InvalidFile(f"{what} is not a NumPy .npy array (no .npy header)") from None
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise InvalidFile(f"{what} has an unsupported .npy version {version}")
    if dtype.hasobject or dtype.kind not in ARRAY_KINDS:
        raise InvalidFile(f"{what} has dtype {dtype}, not a number type")
    n_bytes = math.prod(shape) * dtype.itemsize
    header = stream.tell()
    if header + n_bytes != size:
        raise InvalidFile(
            f"{what} declares shape {shape} of {dtype} ({format_bytes(n_bytes)}), "
            f"but holds {format_bytes(max(size - header, 0))}"
        )
    check_memory(n_bytes, what)
    buffer = np.empty(n_bytes, dtype=np.uint8)
    view, filled = memoryview(buffer), 0
    while filled < n_bytes:
        count = stream.readinto(view[filled:])
        if not count:
            raise InvalidFile(f"{what} is truncated")
        filled += count
    stream.read(1)  # reach the end of a zip entry, where zipfile checks its CRC
    return buffer.view(dtype).reshape(shape, order="F" if fortran else "C")


def default_max_bytes(path):
    """The most bytes a file's arrays may declare unless the caller says otherwise: the
    file's own size plus 64 MiB (only a compressed or crafted file declares more), capped by
    ``max_memory`` when set. The one rule for :func:`tnml.load` and every file the CLI reads."""
    limit = os.path.getsize(path) + EXPANSION_ALLOWANCE
    budget = get_config()["max_memory"]
    return limit if budget is None else min(limit, budget)


def _check_declared(declared, limit, what):
    if declared > limit:
        raise InvalidFile(
            f"{what} declares {format_bytes(declared)} of data, more than the limit of "
            f"{format_bytes(limit)} (its size plus {format_bytes(EXPANSION_ALLOWANCE)}, or "
            f"max_memory)"
        )


def read_array(path, *, key=None, max_bytes=None):
    """One array from a ``.npy`` file or an ``.npz`` archive, with the limits of :func:`tnml.load`.

    Every size the file declares (zip directory, ``.npy`` header) is checked against
    ``max_bytes`` before anything is decompressed or allocated, and nothing is unpickled.

    Parameters
    ----------
    path : str or path-like
    key : str, optional
        The entry of an ``.npz`` to read when it is there (e.g. ``'goal'``); otherwise the
        archive must hold exactly one array.
    max_bytes : int, optional
        Default: :func:`default_max_bytes`.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        The file is not such an array, or declares more than ``max_bytes``.
    """
    path = os.fspath(path)
    limit = default_max_bytes(path) if max_bytes is None else max_bytes
    try:
        if path.lower().endswith(".npz") or zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir()]
                chosen = [i for i in infos if key is not None and i.filename == f"{key}.npy"]
                if not chosen:
                    if len(infos) != 1:
                        names = ", ".join(i.filename.removesuffix(".npy") for i in infos)
                        raise InvalidFile(f"it holds {len(infos)} arrays ({names:.200}); give one")
                    chosen = infos
                (info,) = chosen
                _check_declared(info.file_size, limit, f"entry {info.filename!r:.80}")
                with zf.open(info) as stream:
                    return read_npy(stream, info.file_size, f"entry {info.filename!r:.80}")
        size = os.path.getsize(path)
        _check_declared(size, limit, "it")
        with open(path, "rb") as stream:
            return read_npy(stream, size, "it")
    except InvalidFile as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def read_arrays(path, *, max_bytes=None):
    """Every array of an ``.npz`` archive, by entry name (without ``.npy``), with the limits
    of :func:`tnml.load`: the sizes the archive declares, together, may not exceed ``max_bytes``
    (default: :func:`default_max_bytes`), checked before anything is decompressed.

    Raises
    ------
    ValueError
        The file is not such an archive, or declares more than ``max_bytes``.
    """
    path = os.fspath(path)
    limit = default_max_bytes(path) if max_bytes is None else max_bytes
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_declared(sum(info.file_size for info in infos), limit, "it")
            arrays = {}
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise InvalidFile(f"entry {info.filename!r:.80} is not an array")
                with zf.open(info) as stream:
                    arrays[info.filename[:-4]] = read_npy(
                        stream, info.file_size, f"entry {info.filename!r:.80}"
                    )
            return arrays
    except InvalidFile as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def _temp_prefix(path):
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.")


def remove_stale_temps(path, include_alive=False):
    """Remove the temporary files that saves of ``path`` by processes that no longer exist
    left behind (a save killed by SIGKILL or a power cut cannot clean up after itself).

    With ``include_alive=True`` every temporary file of ``path`` is removed, whichever
    process wrote it: for a caller that holds an exclusive lock on ``path`` (a process id
    can be reused by an unrelated process after the writer was killed).
    """
    prefix = _temp_prefix(path)
    directory, start = os.path.split(prefix)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(start) and name.endswith(_TEMP_SUFFIX)):
            continue
        pid = name[len(start) : -len(_TEMP_SUFFIX)].split(".")[0]
        if not pid.isdigit() or (not include_alive and _process_alive(int(pid))):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _process_alive(pid):
    # On Windows os.kill(pid, 0) sends CTRL_C_EVENT instead of probing: never clean up there.
    if pid == os.getpid() or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # another user's process, or a platform without signals: keep the file
    return True


@contextmanager
def atomic_write(path):
    """A new binary file that replaces ``path`` only once it is complete and on disk.

    Written under a recognisable temporary name next to ``path`` (``.<name>.<pid>.<random>
    .tnml-tmp``) and renamed; removed on any error. A temporary file that a killed process
    left is removed by the next write or :func:`tnml.load` of the same path. The file gets the
    permissions of any file the user creates (0o666 less the umask).

    Examples
    --------
    >>> import os, tempfile
    >>> from tnml._files import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), "out.bin")
    >>> with atomic_write(path) as stream:
    ...     _ = stream.write(b"complete")
    >>> open(path, "rb").read()
    b'complete'
    """
    path = os.fspath(path)
    remove_stale_temps(path)
    tmp = f"{_temp_prefix(path)}{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
