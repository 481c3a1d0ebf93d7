import warnings
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import tnml
from tnml.decompositions import TuckerTensor, random_cp, random_tucker


def _formats():
    from tnml.decompositions.tr import tr_svd
    from tnml.decompositions.tt import tt_svd

    X = np.random.default_rng(0).random((4, 5, 6))
    return [
        random_cp((4, 5, 6), 3, random_state=0),
        random_tucker((4, 5, 6), (2, None, 3), random_state=0),
        tt_svd(X, rank=3)[0],
        tr_svd(X, rank=2)[0],
    ]


@pytest.mark.parametrize("fmt", _formats(), ids=lambda f: type(f).__name__)
def test_formats_round_trip_bit_for_bit(fmt, tmp_path):
    tnml.save(fmt, tmp_path / "f.npz")
    back = tnml.load(tmp_path / "f.npz")
    assert type(back) is type(fmt)
    for a, b in zip(fmt._arrays(), back._arrays()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    if isinstance(fmt, TuckerTensor):
        assert back.factors[1] is None


@pytest.mark.parametrize(
    "model",
    [
        tnml.CP(rank=3, random_state=0),
        tnml.Tucker(rank=(2, 3)),
        tnml.TensorTrain(rank=3),
        tnml.TensorRing(rank=2, random_state=0, max_iter=5),
        tnml.TubalSVD(rank=2),
    ],
)
def test_fitted_estimators_round_trip(model, tmp_path):
    X = np.random.default_rng(1).random((12, 5, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    tnml.save(model, tmp_path / "m.npz")
    back = tnml.load(tmp_path / "m.npz")
    assert back.get_params() == model.get_params()
    assert back.reconstruction_error_ == model.reconstruction_error_
    np.testing.assert_array_equal(back.components_, model.components_)
    np.testing.assert_array_equal(back.transform(X), model.transform(X))
    assert back.transform(X).dtype == np.float32


def test_corrupted_and_tampered_files(tmp_path):
    cp = random_cp((4, 5, 6), 2, random_state=0)
    path = tmp_path / "cp.npz"
    tnml.save(cp, path)
    # tamper: rewrite one array with different values but keep the manifest
    with np.load(path) as archive:
        contents = {k: archive[k] for k in archive.files}
    contents["a1"] = contents["a1"] + 1
    np.savez(tmp_path / "tampered.npz", **contents)
    with pytest.raises(ValueError, match="checksum"):
        tnml.load(tmp_path / "tampered.npz")
    raw = path.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a valid tnml file"):
        tnml.load(tmp_path / "truncated.npz")
    np.savez(tmp_path / "foreign.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="no manifest"):
        tnml.load(tmp_path / "foreign.npz")
    with pytest.raises(FileNotFoundError):
        tnml.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="saves tnml formats and estimators"):
        tnml.save(object(), tmp_path / "x.npz")
    assert zipfile.is_zipfile(path)


@pytest.mark.parametrize("transform", ["fft", "dct", "matrix"])
def test_tubal_round_trip(transform, tmp_path):
    from tnml.decompositions import t_svd

    rng = np.random.default_rng(0)
    if transform == "matrix":
        transform = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    tubal = t_svd(rng.random((5, 6, 4)), rank=2, transform=transform)[0]
    tnml.save(tubal, tmp_path / "t.npz")
    back = tnml.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.to_tensor(), tubal.to_tensor())


# -- crafted and edited files (issue 9, items 7 and 8) ----------------------------------------
def _entries(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _write_entries(path, entries, deflated=()):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            compression = zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=compression)


def _npy_bytes(array):
    import io

    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def _manifest(path):
    import json

    with np.load(path) as archive:
        return json.loads(archive["__manifest__"].tobytes().decode())


def _with_manifest(path, out, manifest):
    import json

    entries = _entries(path)
    blob = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    entries["__manifest__.npy"] = _npy_bytes(blob)
    _write_entries(out, entries)
    return out


def _zip_bomb(path, out, n_bytes=200 * 10**6):
    """``path`` with array a0 replaced by ``n_bytes`` of zeros, deflated (~1000:1)."""
    entries = _entries(path)
    header = _npy_bytes(np.zeros(n_bytes // 8))[:128]  # the .npy header of that array
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries.items():
            if name != "a0.npy":
                zf.writestr(name, data)
        info = zipfile.ZipInfo("a0.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as stream:
            stream.write(header)
            chunk = bytes(2**20)
            written = len(header)
            while written < n_bytes:
                part = chunk[: n_bytes - written]
                stream.write(part)
                written += len(part)
    return out


def _huge_npy_header(path, out):
    """``path`` with array a0's header claiming shape (10^6, 10^6) over a few bytes of data."""
    entries = _entries(path)
    import io

    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        stream, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    entries["a0.npy"] = stream.getvalue() + bytes(64)
    _write_entries(out, entries)
    return out


def _deep_json(path, out, depth=200_000):
    entries = _entries(path)
    blob = np.frombuffer(("[" * depth + "]" * depth).encode(), dtype=np.uint8)
    entries["__manifest__.npy"] = _npy_bytes(blob)
    _write_entries(out, entries)
    return out


def _text_file(path, out):
    out.write_text("this is not a tnml file\n" * 100)
    return out


CRAFTED = {
    "zip_bomb": _zip_bomb,
    "huge_npy_header": _huge_npy_header,
    "deep_json": _deep_json,
    "text_file": _text_file,
}


@pytest.mark.parametrize("craft", list(CRAFTED), ids=list(CRAFTED))
def test_crafted_files_fail_fast_and_small(craft, tmp_path):
    """Item 7: each crafted file is a ValueError within 1 s and 50 MB of extra memory."""
    import time
    import tracemalloc

    path = tmp_path / "cp.npz"
    tnml.save(random_cp((4, 5, 6), 2, random_state=0), path)
    crafted = CRAFTED[craft](path, tmp_path / f"{craft}.npz")
    if craft == "zip_bomb":
        assert crafted.stat().st_size < 400_000  # 200 MB of zeros in a few hundred kB
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match="is not a valid tnml file") as info:
            tnml.load(crafted)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "allow_pickle" not in str(info.value)
    assert elapsed < 1.0, elapsed
    assert peak < 50 * 2**20, peak


def test_declared_sizes_are_capped_and_the_cap_can_be_raised(tmp_path):
    path = tmp_path / "big.npz"
    tnml.save(random_cp((200_000, 3), 2, random_state=0), path)  # 3.2 MB of factors
    with pytest.raises(ValueError, match=r"more than the limit .*max_bytes"):
        tnml.load(path, max_bytes=10**6)
    assert tnml.load(path, max_bytes=10**7).shape == (200_000, 3)
    with tnml.config_context(max_memory="1MB"):
        with pytest.raises(ValueError, match="more than the limit"):
            tnml.load(path)
    with pytest.raises(TypeError, match="max_bytes"):
        tnml.load(path, max_bytes="lots")


def test_zip_bomb_loads_when_the_caller_raises_the_cap(tmp_path):
    """The cap is a limit, not a ban: a compressed file that declares more loads when allowed
    (here it then fails on its checksum, after reading the data)."""
    path = tmp_path / "cp.npz"
    tnml.save(random_cp((4, 5, 6), 2, random_state=0), path)
    bomb = _zip_bomb(path, tmp_path / "bomb.npz", n_bytes=10**6)
    with pytest.raises(ValueError, match="more than the limit"):
        tnml.load(bomb, max_bytes=10**5)
    with pytest.raises(ValueError, match="shape"):  # 10^6 bytes under a header for 2*10^8
        tnml.load(bomb, max_bytes=10**7)


def test_edited_manifest_cannot_set_undeclared_attributes(tmp_path):
    """Item 8: only the class's parameters and declared fitted attributes are restored."""
    X = np.random.default_rng(0).random((8, 4, 5))
    path = tmp_path / "cp.npz"
    tnml.save(tnml.CP(rank=2, random_state=0).fit(X), path)
    manifest = _manifest(path)
    shadow = dict(manifest)
    shadow["state"] = {"__dict__": {**manifest["state"]["__dict__"], "transform": "pwned"}}
    with pytest.raises(ValueError, match=r"does not declare the attributes \['transform'\]"):
        tnml.load(_with_manifest(path, tmp_path / "shadow.npz", shadow))
    extra = dict(manifest)
    extra["params"] = {"__dict__": {**manifest["params"]["__dict__"], "evil": None}}
    with pytest.raises(ValueError, match=r"has no parameters \['evil'\]"):
        tnml.load(_with_manifest(path, tmp_path / "param.npz", extra))
    for name in (
        tnml.CP._fitted_attributes
        + tnml.TensorImputer._fitted_attributes
        + tnml.TensorCompletionRegressor._fitted_attributes
    ):
        assert not hasattr(tnml.CP, name) or name == "feature_names_in_", name
    assert tnml.load(path).transform(X).shape == (8, 2)


def test_an_array_cannot_be_referenced_twice(tmp_path):
    """A manifest naming one entry many times would allocate it many times over."""
    path = tmp_path / "cp.npz"
    tnml.save(random_cp((4, 5, 6), 2, random_state=0), path)
    manifest = _manifest(path)
    fields = manifest["object"]["fields"]["__dict__"]
    first = fields["factors"]["__list__"][0]
    fields["factors"]["__list__"] = [first] * 3
    with pytest.raises(ValueError, match="referenced twice"):
        tnml.load(_with_manifest(path, tmp_path / "repeated.npz", manifest))


def test_top_level_object_is_a_format_or_an_estimator(tmp_path):
    """Item 8: a FitResult (or anything else) is not a valid top-level object."""
    path = tmp_path / "cp.npz"
    tnml.save(random_cp((4, 5, 6), 2, random_state=0), path)
    fit_result = {
        "__format__": "FitResult",
        "fields": {
            "__dict__": {"n_iter": {"__int__": 1}, "errors": {"__list__": []}, "converged": True}
        },
    }
    manifest = _manifest(path)
    for kind, body in [
        ("format", {"object": fit_result}),
        (
            "estimator",
            {"class": "FitResult", "params": {"__dict__": {}}, "state": {"__dict__": {}}},
        ),
        ("estimator", {"class": "CPTensor", "params": {"__dict__": {}}, "state": {"__dict__": {}}}),
        ("format", {"object": {"__int__": 3}}),
        ("pickle", {}),
    ]:
        edited = {
            "format": manifest["format"],
            "version": manifest["version"],
            "kind": kind,
            **body,
        }
        with pytest.raises(ValueError, match="is not a valid tnml file"):
            tnml.load(_with_manifest(path, tmp_path / "edited.npz", edited))


# -- writing (issue 9, item 9) ------------------------------------------------------------------
_KILLED_SAVE = """
import sys, time
import numpy as np
import tnml
from tnml.decompositions import random_cp

def slow_savez(stream, **arrays):
    stream.write(b"x" * 4_000_000)
    stream.flush()
    print("writing", flush=True)
    time.sleep(60)

np.savez = slow_savez
tnml.save(random_cp((4, 5, 6), 2, random_state=0), sys.argv[1])
"""


def test_save_killed_by_sigkill_leaves_no_orphan_after_next_save(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    path = tmp_path / "model.npz"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SAVE, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        child.stdout.close()
    orphans = [p for p in tmp_path.iterdir() if p.name.endswith(".tnml-tmp")]
    assert len(orphans) == 1 and orphans[0].name.startswith(".model.npz.")
    assert orphans[0].stat().st_size >= 4_000_000
    assert not path.exists()
    cp = random_cp((4, 5, 6), 2, random_state=0)
    tnml.save(cp, path)  # the next save of that path removes what the killed one left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    (tmp_path / f".model.npz.{orphans[0].name.split('.')[3]}.dead.tnml-tmp").write_bytes(b"x")
    tnml.load(path)  # and so does a load
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_failed_save_cleans_up_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    cp = random_cp((4, 5, 6), 2, random_state=0)
    tnml.save(cp, path)
    before = path.read_bytes()

    def failing_savez(stream, **arrays):
        stream.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        tnml.save(cp, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    assert path.read_bytes() == before


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_file_mode_follows_the_umask(umask, mode, tmp_path):
    import os
    import stat

    old = os.umask(umask)
    try:
        tnml.save(random_cp((4, 5, 6), 2, random_state=0), tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == mode


# -- documented configurations (issue 9, item 12) ------------------------------------------------
def test_imputer_with_an_estimator_model_round_trips(tmp_path):
    X = random_cp((10, 11, 12), 2, random_state=0).to_tensor()
    X[np.random.default_rng(0).random(X.shape) < 0.3] = np.nan
    imputer = tnml.TensorImputer(tnml.CP(rank=2, random_state=0)).fit(X)
    tnml.save(imputer, tmp_path / "imp.npz")
    back = tnml.load(tmp_path / "imp.npz")
    assert type(back.model) is tnml.CP and back.model.get_params() == imputer.model.get_params()
    assert not hasattr(back.model, "decomposition_")  # the parameter stays unfitted
    np.testing.assert_array_equal(back.model_.components_, imputer.model_.components_)
    np.testing.assert_array_equal(back.transform(X), imputer.transform(X))
    unfitted = tnml.TensorImputer(tnml.Tucker(rank=(2, 2, 2)), missing_values=-1.0)
    tnml.save(unfitted, tmp_path / "unfitted.npz")
    assert tnml.load(tmp_path / "unfitted.npz").get_params()["model"].rank == (2, 2, 2)


def test_random_state_instance_round_trips_exactly(tmp_path):
    rs = np.random.RandomState(7)
    rs.standard_normal(3)  # a state with a cached Gaussian and a moved position
    model = tnml.CP(rank=2, random_state=rs, init="random")
    tnml.save(model, tmp_path / "cp.npz")
    back = tnml.load(tmp_path / "cp.npz").random_state
    assert isinstance(back, np.random.RandomState) and back is not rs
    for a, b in zip(back.get_state(), rs.get_state()):
        np.testing.assert_array_equal(a, b)
    assert back.standard_normal(5).tolist() == rs.standard_normal(5).tolist()


def test_set_output_configuration_round_trips(tmp_path):
    model = tnml.CP(rank=2).set_output(transform="pandas")
    tnml.save(model, tmp_path / "cp.npz")
    assert tnml.load(tmp_path / "cp.npz")._sklearn_output_config == {"transform": "pandas"}


def _fitted_examples():
    X = np.random.default_rng(1).random((12, 5, 6))
    X_missing = X.copy()
    X_missing[0, 0, 0] = np.nan
    coords = np.random.default_rng(0).integers(0, 5, (60, 3))
    values = np.random.default_rng(0).random(60)
    return [
        (tnml.CP(rank=2, max_iter=5), (X,)),
        (tnml.Tucker(rank=(2, 2)), (X,)),
        (tnml.TensorTrain(rank=2), (X,)),
        (tnml.TensorRing(rank=2, max_iter=5), (X,)),
        (tnml.TubalSVD(rank=2), (X,)),
        (tnml.TensorImputer("cp", rank=2), (X_missing,)),
        (tnml.TensorImputer(tnml.CP(rank=2, max_iter=5)), (X_missing,)),
        (tnml.TensorCompletionRegressor(rank="auto", max_rank=2), (coords, values)),
    ]


@pytest.mark.parametrize(
    "model, data", _fitted_examples(), ids=lambda v: type(v).__name__ if hasattr(v, "fit") else ""
)
def test_every_fitted_attribute_is_declared(model, data, tmp_path):
    """What fit sets is what the class declares, so save keeps all of it and load accepts it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(*data)
    state = set(vars(model)) - set(model.get_params(deep=False))
    assert state <= set(type(model)._fitted_attributes), state - set(model._fitted_attributes)
    for name in type(model)._fitted_attributes:
        assert not callable(getattr(type(model), name, None)), name  # never shadows a method
    tnml.save(model, tmp_path / "m.npz")
    back = tnml.load(tmp_path / "m.npz")
    assert set(vars(back)) == set(vars(model))
