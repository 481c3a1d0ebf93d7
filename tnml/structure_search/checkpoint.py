"""The structure search's checkpoint file: an append-only log of batches.

A search appends one *frame* per batch of evaluations: the batch's records, the seconds
elapsed, which evaluations' networks are still kept for warm starts, and the networks newly
kept by this batch. Writing a batch therefore costs what the batch holds, not what the whole
search holds (rewriting everything after every batch made the I/O quadratic in the length of
the search). A resumed search first *compacts* the log: one frame with every record and only
the networks still kept, written to a temporary file and moved into place. A running search
compacts it too once the bytes of dropped networks exceed what the compacted file would
hold, so the file stays within twice its compacted size at an amortised cost of O(batch)
per batch.

Layout: the 16 bytes ``TNML-SEARCH-LOG\\n``, then frames. A frame is ``TNMF``, the payload's
length (8 bytes, little-endian), the payload's SHA-256 (32 bytes), and the payload: the
length of a JSON header (8 bytes), the JSON header, and the networks' cores as ``.npy``
arrays, one after another (the header lists them). The first frame holds the format and the
fingerprint of the search, the next ones a batch each.

A crash (or a full disk) in the middle of an append leaves a frame cut short or not matching
its hash: it and whatever follows are ignored with a warning, and the search resumes after
the last complete batch (its evaluations are fitted again). Every length is checked against
the file before anything is read, arrays are read with :func:`tnml._files.read_npy`'s checks,
and nothing is unpickled.
"""

import hashlib
import io
import json
import os
import struct
import warnings
import zipfile

import numpy as np

from .._files import atomic_write, read_arrays, read_npy

__all__ = ["read_checkpoint"]

LOG_FORMAT = "tnml-structure-search-log-1"
# The whole-file format of tnml before the log (an .npz rewritten after every batch): still
# read, and compacted into a log when such a search is resumed.
LEGACY_FORMAT = "tnml-structure-search-checkpoint-1"
_MAGIC = b"TNML-SEARCH-LOG\n"
_FRAME = b"TNMF"
_FRAME_HEAD = len(_FRAME) + 8 + 32


class CheckpointDamaged(UserWarning):
    """A checkpoint's last batch was cut short (a crash while it was written): ignored."""


def _frame(meta, arrays=()):
    """The bytes of one frame: ``meta`` (a dict, JSON) and ``arrays`` after it; and the
    bytes each array takes in it."""
    blobs = []
    for array in arrays:
        stream = io.BytesIO()
        np.lib.format.write_array(stream, np.ascontiguousarray(array), allow_pickle=False)
        blobs.append(stream.getvalue())
    meta = {**meta, "arrays": [len(blob) for blob in blobs]}
    header = json.dumps(meta, separators=(",", ":")).encode()
    payload = b"".join([struct.pack("<Q", len(header)), header, *blobs])
    frame = _FRAME + struct.pack("<Q", len(payload)) + hashlib.sha256(payload).digest() + payload
    return frame, [len(blob) for blob in blobs]


def _batch_frame(records, elapsed, kept, networks):
    """A batch's frame: its records, the kept evaluations, and ``networks`` (evaluation ->
    list of host arrays) newly written; and the bytes each network takes in it."""
    arrays, listed = [], []
    for evaluation, cores in networks.items():
        listed.append([int(evaluation), len(cores)])
        arrays.extend(cores)
    meta = {
        "kind": "batch",
        "records": records,
        "elapsed": elapsed,
        "kept": sorted(int(e) for e in kept),
        "networks": listed,
    }
    frame, sizes = _frame(meta, arrays)
    written, position = {}, 0
    for evaluation, n_cores in listed:
        written[evaluation] = sum(sizes[position : position + n_cores])
        position += n_cores
    return frame, written


def write_log(path, fingerprint, history, elapsed, kept, networks):
    """Write a compacted log at ``path`` (atomically: a temporary file moved into place).

    Parameters
    ----------
    path : str
    fingerprint : dict
    history : list of dict
    elapsed : float
    kept : iterable of int
        The evaluations whose networks are kept for warm starts.
    networks : dict
        Evaluation -> list of host arrays, for the kept evaluations whose network is known.

    Returns
    -------
    dict
        Evaluation -> bytes its network takes in the file.
    """
    header, _ = _frame({"kind": "header", "format": LOG_FORMAT, "fingerprint": fingerprint})
    batch, written = _batch_frame(history, elapsed, kept, networks)
    with atomic_write(path) as stream:
        stream.write(_MAGIC + header + batch)
    return written


def append_batch(path, records, elapsed, kept, networks):
    """Append one batch's frame to the log at ``path`` and flush it to disk.

    Returns
    -------
    dict
        Evaluation -> bytes its network takes in the file.
    """
    data, written = _batch_frame(records, elapsed, kept, networks)
    with open(path, "ab") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    return written


def is_log(path):
    """Whether the file at ``path`` starts like a checkpoint log."""
    with open(path, "rb") as stream:
        return stream.read(len(_MAGIC)) == _MAGIC


def _read_frames(path):
    """The payloads of a log's complete frames, and ``(offset, n_bytes)`` of what follows
    the last complete one (None when nothing does)."""
    size = os.path.getsize(path)
    payloads = []
    with open(path, "rb") as stream:
        if stream.read(len(_MAGIC)) != _MAGIC:
            raise ValueError("it does not start as a structure-search checkpoint")
        offset = len(_MAGIC)
        while offset < size:
            head = stream.read(_FRAME_HEAD)
            length = struct.unpack("<Q", head[4:12])[0] if len(head) == _FRAME_HEAD else None
            # A length beyond the file is never read (nor allocated): the frame is cut short.
            if head[:4] != _FRAME or length is None or length > size - offset - _FRAME_HEAD:
                return payloads, (offset, size - offset)
            payload = stream.read(length)
            if hashlib.sha256(payload).digest() != head[12:]:
                return payloads, (offset, size - offset)
            payloads.append(payload)
            offset += _FRAME_HEAD + length
    return payloads, None


def _parse(payload, what):
    """(meta, arrays) of a frame's payload."""
    if len(payload) < 8:
        raise ValueError(f"{what} is shorter than its header")
    (length,) = struct.unpack("<Q", payload[:8])
    if length > len(payload) - 8:
        raise ValueError(f"{what}: its header is longer than the frame")
    meta = json.loads(payload[8 : 8 + length].decode())
    if not isinstance(meta, dict):
        raise ValueError(f"{what}: its header is not a mapping")
    sizes = meta.get("arrays", [])
    if not isinstance(sizes, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes
    ):
        raise ValueError(f"{what}: its list of arrays is invalid")
    offset, arrays = 8 + length, []
    if offset + sum(sizes) != len(payload):
        raise ValueError(f"{what}: its arrays do not fill the frame")
    for index, n_bytes in enumerate(sizes):
        stream = io.BytesIO(payload[offset : offset + n_bytes])
        arrays.append(read_npy(stream, n_bytes, f"{what}, array {index}"))
        offset += n_bytes
    return meta, arrays


def read_log(path):
    """The content of a checkpoint log (see the module doc).

    Returns
    -------
    dict
        ``fingerprint``, ``history`` (every complete batch's records, in order), ``elapsed``,
        ``kept`` (evaluations whose networks are kept), ``cores`` (evaluation -> {index:
        array}, for the kept evaluations), ``damaged`` (``(offset, n_bytes)`` of an ignored
        tail, or None) and ``network_bytes`` (bytes of every network the log holds).

    Raises
    ------
    ValueError
        The file is not a log, or one of its complete frames is invalid.
    """
    payloads, damaged = _read_frames(path)
    if not payloads:
        raise ValueError("it holds no complete header")
    meta, _ = _parse(payloads[0], "frame 1")
    if meta.get("kind") != "header" or meta.get("format") != LOG_FORMAT:
        raise ValueError(f"unknown format {meta.get('format')!r:.80}")
    content = {
        "fingerprint": meta.get("fingerprint"),
        "history": [],
        "elapsed": 0.0,
        "kept": [],
        "cores": {},
        "damaged": damaged,
        "network_bytes": 0,
    }
    networks = {}
    for number, payload in enumerate(payloads[1:], start=2):
        what = f"frame {number}"
        meta, arrays = _parse(payload, what)
        records, listed, kept = meta.get("records"), meta.get("networks"), meta.get("kept")
        if meta.get("kind") != "batch" or not isinstance(records, list):
            raise ValueError(f"{what} is not a batch of records")
        if not isinstance(kept, list) or not all(isinstance(e, int) for e in kept):
            raise ValueError(f"{what}: 'kept' is not a list of evaluations")
        if not isinstance(listed, list) or not all(
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in item)
            for item in listed
        ):
            raise ValueError(f"{what}: its list of networks is invalid")
        if sum(n for _, n in listed) != len(arrays):
            raise ValueError(f"{what}: its networks do not account for its arrays")
        position = 0
        for evaluation, n_cores in listed:
            networks[evaluation] = arrays[position : position + n_cores]
            position += n_cores
            content["network_bytes"] += sum(a.nbytes for a in networks[evaluation])
        content["history"].extend(records)
        content["elapsed"] = meta.get("elapsed")
        content["kept"] = kept
    content["cores"] = {e: dict(enumerate(networks[e])) for e in content["kept"] if e in networks}
    return content


def read_legacy(path):
    """The content of a checkpoint of the whole-file format (an ``.npz``), as :func:`read_log`
    gives it (every network it holds is kept)."""
    entries = read_arrays(path)  # tnml.load's limits on what the archive declares
    if "meta" not in entries:
        raise ValueError("no 'meta' entry")
    meta = json.loads(entries.pop("meta").tobytes().decode())
    if not isinstance(meta, dict) or meta.get("format") != LEGACY_FORMAT:
        raise ValueError(f"unknown format {meta.get('format')!r:.80}")
    cores = {}
    for name, array in entries.items():
        parts = name.split("_")
        if len(parts) != 3 or parts[0] != "network":
            raise ValueError(f"unexpected entry {name!r:.80}")
        cores.setdefault(int(parts[1]), {})[int(parts[2])] = array
    return {
        "fingerprint": meta.get("fingerprint"),
        "history": meta.get("history"),
        "elapsed": meta.get("elapsed"),
        "kept": sorted(cores),
        "cores": cores,
        "damaged": None,
        "network_bytes": sum(a.nbytes for parts in cores.values() for a in parts.values()),
    }


def read_content(path):
    """:func:`read_log` or :func:`read_legacy`, whichever the file is; a damaged tail is
    reported with a :class:`CheckpointDamaged` warning."""
    if is_log(path):
        content = read_log(path)
    elif zipfile.is_zipfile(path):
        content = read_legacy(path)
    else:
        raise ValueError("it does not start as a structure-search checkpoint log")
    if content["damaged"] is not None:
        offset, n_bytes = content["damaged"]
        warnings.warn(
            f"checkpoint {path!r}: its last {n_bytes} bytes (from byte {offset}) are not a "
            f"complete batch (a write cut short by a crash) and are ignored: the search "
            f"resumes after evaluation {len(content['history'])}",
            CheckpointDamaged,
            stacklevel=3,
        )
    return content


def read_checkpoint(path):
    """What a structure search's checkpoint holds, without resuming it.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        ``fingerprint`` (the data hash and settings it was written for), ``history`` (one
        record per evaluation, as :attr:`~tnml.StructureSearch.history_`), ``elapsed``
        (seconds) and ``networks`` (evaluation -> list of cores, the networks kept for warm
        starts).

    Raises
    ------
    ValueError
        The file is not a structure-search checkpoint.

    Examples
    --------
    >>> import os, tempfile
    >>> import tnml
    >>> from tnml.decompositions import random_network
    >>> from tnml.structure_search import read_checkpoint
    >>> X = random_network([[3, 2, 0], [2, 3, 2], [0, 2, 3]], random_state=0).to_tensor()
    >>> path = os.path.join(tempfile.mkdtemp(), "search.ckpt")
    >>> _ = tnml.StructureSearch("random", max_rank=2, max_evaluations=3, random_state=0,
    ...                          checkpoint=path).fit(X)
    >>> len(read_checkpoint(path)["history"])
    3
    """
    path = os.fspath(path)
    try:
        content = read_content(path)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path!r} is not a structure-search checkpoint ({type(error).__name__}: {error})"
        ) from None
    return {
        "fingerprint": content["fingerprint"],
        "history": content["history"],
        "elapsed": content["elapsed"],
        "networks": {
            e: [parts[i] for i in sorted(parts)] for e, parts in sorted(content["cores"].items())
        },
    }
