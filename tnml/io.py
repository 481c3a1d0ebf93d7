"""Saving and loading formats and fitted estimators without pickle.

A file is a NumPy ``.npz`` archive: every array is stored as itself, and a JSON manifest (kept
as a uint8 array inside the archive) describes the object: its class (only tnml classes can be
named), its parameters and fitted attributes, and the SHA-256 of every array so that a
corrupted or tampered file is detected. Loading uses ``allow_pickle=False`` throughout.
Device arrays are copied to the host explicitly on save and come back as NumPy arrays.
"""

import hashlib
import json
import numbers
import os
import zipfile

import numpy as np

from ._config import format_bytes
from ._files import ARRAY_KINDS as _ARRAY_KINDS
from ._files import InvalidFile as _Invalid
from ._files import (
    atomic_write,
    default_max_bytes,
    read_npy,
    remove_stale_temps,
)
from .backend import to_numpy

__all__ = ["save", "load"]

_FORMAT = "tnml-npz"
_VERSION = 1
_MANIFEST = "__manifest__"


def _formats():
    """Format classes a file may name."""
    from . import decompositions
    from .supervised import mps

    return {
        name: obj
        for module in (decompositions, mps)
        for name in module.__all__
        if isinstance(obj := getattr(module, name), type)
        and issubclass(obj, decompositions.FactorizedTensor)
    }


def _estimators():
    """Estimator classes a file may name: those exported by :mod:`tnml` and
    :mod:`tnml.estimators` (``StructureSearch`` included); nothing else is ever instantiated
    by :func:`load`."""
    from sklearn.base import BaseEstimator

    import tnml

    from . import estimators

    return {
        name: obj
        for module in (estimators, tnml)
        for name in module.__all__
        if isinstance(obj := getattr(module, name), type) and issubclass(obj, BaseEstimator)
    }


def _is_fitted_name(cls, name):
    """Whether ``name`` is a fitted attribute of ``cls``: one it declares in
    ``_fitted_attributes``, or, for a class that declares none, a name of scikit-learn's
    convention (a trailing underscore, not a parameter, not private)."""
    declared = getattr(cls, "_fitted_attributes", None)
    if declared is not None:
        return name in declared
    return name.endswith("_") and not name.startswith("_") and name not in cls._get_param_names()


def _estimator_state(obj):
    """The fitted attributes of ``obj`` (see :func:`_is_fitted_name`)."""
    return {name: value for name, value in vars(obj).items() if _is_fitted_name(type(obj), name)}


class _Encoder:
    """Turns an object tree into JSON plus named arrays."""

    def __init__(self):
        self.arrays = {}

    def add_array(self, array):
        key = f"a{len(self.arrays)}"
        host = np.ascontiguousarray(to_numpy(array))
        if host.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"cannot save an array of dtype {host.dtype}")
        self.arrays[key] = host
        return {"__array__": key, "sha256": hashlib.sha256(host.tobytes()).hexdigest()}

    def encode(self, value):
        from .decompositions import FactorizedTensor

        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, np.integer)):
            return {"__int__": int(value)}
        if isinstance(value, (float, np.floating)):
            return {"__float__": float(value).hex()}  # hex round-trips every bit
        if isinstance(value, FactorizedTensor):
            fields = {name: getattr(value, name) for name in value._array_names}
            return {
                "__format__": type(value).__name__,
                "fields": self.encode({**fields, **value._metadata()}),
            }
        if _estimators().get(type(value).__name__) is type(value):
            # An estimator inside an estimator: TensorImputer(model=tnml.CP(...)) and its
            # fitted clone ``model_``.
            return {
                "__estimator__": type(value).__name__,
                "params": self.encode(value.get_params(deep=False)),
                "state": self.encode(_estimator_state(value)),
            }
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self.encode(value.get_state(legacy=True))}
        if isinstance(value, np.ndarray) and value.dtype == object:
            if not all(isinstance(v, str) for v in value.ravel()):
                raise TypeError("cannot save an object array that does not hold strings")
            return {"__strings__": [str(v) for v in value.ravel()]}  # feature_names_in_
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return self.add_array(value)
        if isinstance(value, (list, tuple)):
            return {
                "__list__" if isinstance(value, list) else "__tuple__": [
                    self.encode(v) for v in value
                ]
            }
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.encode(v) for k, v in value.items()}}
        raise TypeError(f"cannot save a value of type {type(value).__name__}: {value!r:.80}")


class _Decoder:
    def __init__(self, archive):
        self.archive = archive

    @staticmethod
    def fail(why):
        raise _Invalid(why)

    def decode(self, value):
        if value is None or isinstance(value, (bool, str)):
            return value
        if not isinstance(value, dict) or not value:
            self.fail(f"unexpected entry {value!r:.80}")
        if "__array__" in value:
            return self.archive.array(value["__array__"], value.get("sha256"))
        if "__format__" in value:
            return self.format(value)
        if "__estimator__" in value:
            return self.estimator(
                value.get("__estimator__"), value.get("params"), value.get("state")
            )
        if len(value) != 1:
            self.fail(f"unexpected entry {value!r:.80}")
        ((tag, content),) = value.items()
        if tag == "__int__" and isinstance(content, int) and not isinstance(content, bool):
            return content
        if tag == "__float__" and isinstance(content, str):
            return float.fromhex(content)
        if (
            tag == "__strings__"
            and isinstance(content, list)
            and all(isinstance(v, str) for v in content)
        ):
            return np.array(content, dtype=object)
        if tag in ("__list__", "__tuple__") and isinstance(content, list):
            items = [self.decode(v) for v in content]
            return items if tag == "__list__" else tuple(items)
        if tag == "__dict__" and isinstance(content, dict):
            return {k: self.decode(v) for k, v in content.items()}
        if tag == "__random_state__":
            state = self.decode(content)
            random_state = np.random.RandomState()
            random_state.set_state(state)
            return random_state
        self.fail(f"unknown or malformed tag {tag!r}")

    def format(self, value):
        cls = _formats().get(value["__format__"])
        if cls is None:
            self.fail(f"unknown format {value['__format__']!r:.80}")
        fields = self.decode(value.get("fields"))
        if not isinstance(fields, dict):
            self.fail(f"the fields of a {cls.__name__} must be a mapping")
        arrays = [a for name in cls._array_names for a in _flat_arrays(fields.get(name))]
        dtypes = {a.dtype for a in arrays}
        if any(d.kind != "f" for d in dtypes) or len(dtypes) > 1:
            self.fail(
                f"a {cls.__name__} holds arrays of one real floating dtype, got "
                f"{sorted(str(d) for d in dtypes)}"
            )
        try:
            return cls(**fields)
        except (TypeError, ValueError) as error:
            self.fail(f"invalid {cls.__name__}: {error}")

    def estimator(self, name, params, state):
        """An instance of a tnml estimator class with only what that class declares: the
        parameters of its constructor and its ``_fitted_attributes``."""
        cls = _estimators().get(name) if isinstance(name, str) else None
        if cls is None:
            self.fail(f"unknown estimator class {name!r:.80}")
        params, state = self.decode(params), self.decode(state)
        if not isinstance(params, dict) or not isinstance(state, dict):
            self.fail(f"the parameters and state of a {name} must be mappings")
        allowed = set(cls._get_param_names())
        unknown = sorted(set(params) - allowed)
        if unknown:
            self.fail(f"{name} has no parameters {unknown}")
        undeclared = sorted(name for name in state if not _is_fitted_name(cls, name))
        if undeclared:
            self.fail(f"{name} does not declare the attributes {undeclared}")
        estimator = cls(**params)
        for attribute, content in state.items():
            setattr(estimator, attribute, content)
        if any(key.endswith("_") and not key.startswith("_") for key in state):  # fitted
            _check_fitted_arrays(estimator, state)
        return estimator


def _flat_arrays(value):
    """The NumPy arrays in ``value`` (an array, or lists/tuples/dicts of them)."""
    if isinstance(value, np.ndarray):
        return [] if value.dtype == object else [value]
    if isinstance(value, (list, tuple)):
        return [a for item in value for a in _flat_arrays(item)]
    if isinstance(value, dict):
        return [a for item in value.values() for a in _flat_arrays(item)]
    return []


def _check_fitted_arrays(estimator, state):
    """Check a loaded estimator's fitted arrays against what its parameters and its other
    fitted attributes imply, so a file edited to hold another shape or dtype is refused
    here rather than failing (or answering wrongly) at predict time.

    Generic rules: no fitted array is complex; ``feature_names_in_`` has ``n_features_in_``
    names. Per class: ``_fitted_shapes()`` (when the class defines it) maps fitted attribute
    names to the shape they must have (``None``: any size on that axis; for a format, its
    ``shape``); those arrays must be real floating.
    """
    name = type(estimator).__name__
    for attribute, value in state.items():
        for array in _flat_arrays(value):
            if array.dtype.kind not in "biuf":
                raise _Invalid(f"{name}.{attribute} has dtype {array.dtype}; it must be real")
    names = state.get("feature_names_in_")
    if names is not None and len(names) != state.get("n_features_in_"):
        raise _Invalid(
            f"{name}.feature_names_in_ has {len(names)} names for "
            f"n_features_in_={state.get('n_features_in_')!r:.20}"
        )
    declared = getattr(estimator, "_fitted_shapes", None)
    if declared is None:
        return
    try:
        expected = declared()
    except Exception as error:  # noqa: BLE001 - missing or ill-typed attributes
        raise _Invalid(
            f"{name}'s fitted attributes are incomplete or inconsistent "
            f"({type(error).__name__}: {error!s:.200})"
        ) from None
    for attribute, shape in expected.items():
        if attribute not in state:
            raise _Invalid(f"{name} is fitted but has no {attribute}")
        value = state[attribute]
        actual = getattr(value, "shape", None)
        dtype = getattr(value, "dtype", None)
        if actual is None or getattr(dtype, "kind", None) != "f":
            raise _Invalid(f"{name}.{attribute} must be a real floating array or format")
        actual = tuple(actual)
        if len(actual) != len(shape) or any(
            e is not None and a != e for a, e in zip(actual, shape)
        ):
            want = tuple("any" if e is None else e for e in shape)
            raise _Invalid(
                f"{name}.{attribute} has shape {actual}; its parameters and fitted "
                f"attributes imply {want}"
            )


class _Archive:
    """The arrays of a tnml file, read from the zip entries with every declared size checked
    against the entry before anything is decompressed or allocated."""

    def __init__(self, zf, limit):
        self.zf = zf
        self.infos, self.used = {}, set()
        for info in zf.infolist():
            if info.filename in self.infos:
                raise _Invalid(f"entry {info.filename!r:.80} appears twice")
            self.infos[info.filename] = info
        if _MANIFEST + ".npy" not in self.infos:
            raise _Invalid("no manifest")
        for name in self.infos:
            if not name.endswith(".npy") or not (
                name == _MANIFEST + ".npy" or (name[0] == "a" and name[1:-4].isdigit())
            ):
                raise _Invalid(f"unexpected entry {name!r:.80}")
        declared = sum(info.file_size for info in self.infos.values())
        if declared > limit:
            raise _Invalid(
                f"it declares {format_bytes(declared)} of arrays, more than the limit of "
                f"{format_bytes(limit)}; if you trust the file, raise it with "
                f"tnml.load(path, max_bytes=...)"
            )

    def read(self, key):
        """The array stored under ``key`` (without checksum)."""
        info = self.infos.get(f"{key}.npy")
        if info is None:
            raise _Invalid(f"array {key!r:.40} is missing")
        with self.zf.open(info) as stream:
            return read_npy(stream, info.file_size, f"array {key!r}")

    def array(self, key, sha256):
        if not isinstance(key, str):
            raise _Invalid(f"array reference {key!r:.40} is not a name")
        # save gives every array its own entry: a manifest naming one entry many times could
        # make load allocate far more than the file declares.
        if key in self.used:
            raise _Invalid(f"array {key!r} is referenced twice")
        self.used.add(key)
        array = self.read(key)
        if hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() != sha256:
            raise _Invalid(f"array {key!r} does not match its checksum (corrupted or modified)")
        return array


def save(obj, path):
    """Save a format or an estimator (fitted or not) to ``path`` (an ``.npz`` file).

    The file is written to a temporary name next to ``path`` (``.<name>.<pid>.<random>
    .tnml-tmp``), flushed to disk and renamed, so an interrupted save never leaves a truncated
    file behind; a temporary file left by a killed save is removed by the next save or load
    of the same path. The file gets the permissions a newly created file gets (the umask
    applies).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> import tnml
    >>> from tnml.decompositions import random_cp
    >>> cp = random_cp((3, 4, 5), 2, random_state=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "cp.npz")
    >>> tnml.save(cp, path)
    >>> back = tnml.load(path)
    >>> bool(np.array_equal(back.factors[1], cp.factors[1]))
    True
    """
    from .decompositions import FactorizedTensor

    encoder = _Encoder()
    if isinstance(obj, FactorizedTensor):
        manifest = {"kind": "format", "object": encoder.encode(obj)}
    elif _estimators().get(type(obj).__name__) is type(obj):
        manifest = {
            "kind": "estimator",
            "class": type(obj).__name__,
            "params": encoder.encode(obj.get_params(deep=False)),
            "state": encoder.encode(_estimator_state(obj)),
        }
    else:
        raise TypeError(f"tnml.save saves tnml formats and estimators, got {type(obj).__name__}")
    manifest.update(format=_FORMAT, version=_VERSION)
    blob = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    path = os.fspath(path)
    with atomic_write(path) as stream:
        np.savez(stream, **{_MANIFEST: blob}, **encoder.arrays)


def load(path, *, max_bytes=None):
    """Load what :func:`save` wrote.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int, optional
        The most bytes the arrays of the file may declare. Sizes are checked in the zip
        directory and in every array header before anything is decompressed or allocated.
        The default is the file's own size plus 64 MiB (tnml writes uncompressed arrays, so
        only a compressed or crafted file declares more), capped by ``max_memory`` when set.

    Returns
    -------
    FactorizedTensor or estimator

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Anything else: the file is not a tnml file, is corrupted or modified, names a class
        that is not a tnml format or estimator, sets attributes the class does not declare,
        holds fitted arrays whose shapes or dtypes do not match what the parameters and the
        other fitted attributes imply (a class's ``_fitted_shapes``; complex arrays never),
        or declares more than ``max_bytes``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 0
    ):
        raise TypeError(f"max_bytes must be a non-negative int or None, got {max_bytes!r}")
    remove_stale_temps(path)
    try:
        if max_bytes is None:
            max_bytes = default_max_bytes(path)
        if not zipfile.is_zipfile(path):
            raise _Invalid("it is not a zip archive (.npz)")
        with zipfile.ZipFile(path) as zf:
            archive = _Archive(zf, max_bytes)
            blob = archive.read(_MANIFEST)
            if blob.dtype != np.uint8 or blob.ndim != 1:
                raise _Invalid("the manifest is not a byte string")
            manifest = json.loads(blob.tobytes().decode())
            if (
                not isinstance(manifest, dict)
                or manifest.get("format") != _FORMAT
                or manifest.get("version") != _VERSION
            ):
                raise _Invalid("unknown format/version")
            decoder = _Decoder(archive)
            if manifest.get("kind") == "format":
                value = manifest.get("object")
                if not isinstance(value, dict) or "__format__" not in value:
                    raise _Invalid("the top-level object is not a tnml format")
                return decoder.format(value)
            if manifest.get("kind") == "estimator":
                return decoder.estimator(
                    manifest.get("class"), manifest.get("params"), manifest.get("state")
                )
            raise _Invalid(
                "the top-level object must be a tnml format or estimator, got "
                f"kind {manifest.get('kind')!r:.40}"
            )
    except _Invalid as error:
        raise ValueError(f"{path} is not a valid tnml file: {error}") from None
    except RecursionError:
        raise ValueError(
            f"{path} is not a valid tnml file: its manifest is nested too deeply"
        ) from None
    except Exception as error:  # noqa: BLE001 - whatever a crafted file triggers is its fault
        raise ValueError(
            f"{path} is not a valid tnml file ({type(error).__name__}: {error!s:.200})"
        ) from None
