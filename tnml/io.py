"""Saving and loading formats and fitted estimators without pickle.

A file is a NumPy ``.npz`` archive: every array is stored as itself, and a JSON manifest (kept
as a uint8 array inside the archive) describes the object: its class (only tnml classes can be
named), its parameters and fitted attributes, and the SHA-256 of every array so that a
corrupted or tampered file is detected. Loading uses ``allow_pickle=False`` throughout.
Device arrays are copied to the host explicitly on save and come back as NumPy arrays.
"""

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from .backend import to_numpy

__all__ = ["save", "load"]

_FORMAT = "tnml-npz"
_VERSION = 1
_MANIFEST = "__manifest__"


def _registry():
    """Classes a file may name; nothing else is ever instantiated by :func:`load`."""
    from . import decompositions, estimators

    classes = {}
    for module in (decompositions, estimators):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type):
                classes[name] = obj
    return classes


class _Encoder:
    """Turns an object tree into JSON plus named arrays."""

    def __init__(self):
        self.arrays = {}

    def add_array(self, array):
        key = f"a{len(self.arrays)}"
        host = np.ascontiguousarray(to_numpy(array))
        if host.dtype.kind not in "biufc":
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
            return {"__format__": type(value).__name__,
                    "fields": self.encode({**fields, **value._metadata()})}
        if isinstance(value, np.ndarray) and value.dtype == object:
            if not all(isinstance(v, str) for v in value.ravel()):
                raise TypeError("cannot save an object array that does not hold strings")
            return {"__strings__": [str(v) for v in value.ravel()]}  # feature_names_in_
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return self.add_array(value)
        if isinstance(value, (list, tuple)):
            return {"__list__" if isinstance(value, list) else "__tuple__":
                    [self.encode(v) for v in value]}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.encode(v) for k, v in value.items()}}
        raise TypeError(f"cannot save a value of type {type(value).__name__}: {value!r:.80}")


class _Decoder:
    def __init__(self, archive, path):
        self.archive, self.path = archive, path

    def fail(self, why):
        raise ValueError(f"{self.path} is not a valid tnml file: {why}")

    def decode(self, value):
        if value is None or isinstance(value, (bool, str)):
            return value
        if not isinstance(value, dict) or len(value) not in (1, 2):
            self.fail(f"unexpected entry {value!r:.80}")
        if "__array__" in value:
            key = value["__array__"]
            if key not in self.archive.files:
                self.fail(f"array {key!r} is missing")
            array = self.archive[key]
            if hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() != value.get(
                    "sha256"):
                self.fail(f"array {key!r} does not match its checksum (corrupted or modified)")
            return array
        if "__format__" in value:
            cls = _registry().get(value["__format__"])
            if cls is None:
                self.fail(f"unknown format {value['__format__']!r}")
            return cls(**self.decode(value["fields"]))
        (tag, content), = value.items()
        if tag == "__int__":
            return int(content)
        if tag == "__float__":
            return float.fromhex(content)
        if tag == "__strings__":
            return np.array(content, dtype=object)
        if tag == "__list__":
            return [self.decode(v) for v in content]
        if tag == "__tuple__":
            return tuple(self.decode(v) for v in content)
        if tag == "__dict__":
            return {k: self.decode(v) for k, v in content.items()}
        self.fail(f"unknown tag {tag!r}")


def save(obj, path):
    """Save a format or an estimator (fitted or not) to ``path`` (an ``.npz`` file).

    The file is written to a temporary name and renamed, so an interrupted save never leaves
    a truncated file behind.

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
    elif type(obj).__name__ in _registry() and hasattr(obj, "get_params"):
        state = {k: v for k, v in vars(obj).items() if k not in obj.get_params(deep=False)}
        manifest = {"kind": "estimator", "class": type(obj).__name__,
                    "params": encoder.encode(obj.get_params(deep=False)),
                    "state": encoder.encode(state)}
    else:
        raise TypeError(f"tnml.save saves tnml formats and estimators, got "
                        f"{type(obj).__name__}")
    manifest.update(format=_FORMAT, version=_VERSION)
    blob = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **{_MANIFEST: blob}, **encoder.arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path):
    """Load what :func:`save` wrote. Raises ``ValueError`` for a corrupted or foreign file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _MANIFEST not in archive.files:
                raise ValueError(f"{path} is not a valid tnml file: no manifest")
            manifest = json.loads(archive[_MANIFEST].tobytes().decode())
            if manifest.get("format") != _FORMAT or manifest.get("version") != _VERSION:
                raise ValueError(f"{path} is not a valid tnml file: unknown format/version")
            decoder = _Decoder(archive, path)
            if manifest["kind"] == "format":
                return decoder.decode(manifest["object"])
            cls = _registry().get(manifest.get("class"))
            if cls is None:
                decoder.fail(f"unknown class {manifest.get('class')!r}")
            estimator = cls(**decoder.decode(manifest["params"]))
            for name, value in decoder.decode(manifest["state"]).items():
                setattr(estimator, name, value)
            return estimator
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, UnicodeDecodeError,
            json.JSONDecodeError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not a valid tnml file ({type(error).__name__}: {error})") \
            from None
