"""Issue 21: never lose or mix a user's work (search checkpoints, ``tnml search`` files,
``tnml.load``'s fitted arrays, tiny and zero data, strict JSON, the right messages).

The memory-budget acceptance test of item 8 is in ``test_memory_budget.py``.
"""

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import threading
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import tnml
from tnml.cli import main
from tnml.decompositions import random_network

RING = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
FAST = dict(method="random", max_rank=2, max_evaluations=3, max_iter=5, random_state=0)


def _planted():
    return random_network(RING, random_state=0).to_tensor()


def _run(*args):
    try:
        return main([str(a) for a in args]) or 0
    except SystemExit as exit:
        return exit.code


def _checkpointed(path, X=None, **kwargs):
    """A short search checkpointed at ``path`` (a str unless given a pathlib.Path)."""
    X = _planted() if X is None else X
    path = path if isinstance(path, pathlib.Path) and kwargs.pop("as_path", False) else str(path)
    return tnml.StructureSearch(**{**FAST, **kwargs}, checkpoint=path).fit(X)


# -- item 1: resume checks a content hash of the data and of its NaN pattern -------------------
def _with_nan(X, index):
    X = X.copy()
    X.flat[index] = np.nan
    return X


@pytest.mark.parametrize("case", ["negated", "permuted", "other_data_once_one_is_nan"])
def test_resume_refuses_other_data(tmp_path, case):
    X = _planted()
    if case == "negated":
        first, other = X, -X
    elif case == "permuted":
        first, other = X, np.ascontiguousarray(X[::-1])
    else:  # a NaN made the old fingerprint (a sum) NaN for any data
        first = _with_nan(X, 5)
        other = _with_nan(np.random.default_rng(1).random(X.shape), 5)
    path = tmp_path / "search.npz"
    _checkpointed(path, first)
    with pytest.raises(ValueError, match="different search.*data differ"):
        _checkpointed(path, other, resume=True)


def test_resume_refuses_another_nan_pattern(tmp_path):
    X = _planted()
    path = tmp_path / "search.npz"
    _checkpointed(path, _with_nan(X, 5))
    with pytest.raises(ValueError, match="data differ"):
        _checkpointed(path, _with_nan(X, 6), resume=True)
    _checkpointed(path, _with_nan(X, 5), resume=True)  # the same data resumes


# -- item 2: the input is never an output, in every command --------------------------------------
def _ring_file(path):
    np.save(path, _planted())
    return path


def test_search_overwrite_never_replaces_the_input_image(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    image = out / "trace.png"
    from skimage import io

    io.imsave(image, (np.random.default_rng(0).random((16, 16)) * 255).astype(np.uint8))
    before = image.read_bytes()
    assert _run("search", image, "--out", out, "--overwrite", "--quiet", "--max-rank", 2) == 2
    assert "input file" in capsys.readouterr().err
    assert image.read_bytes() == before


def test_search_overwrite_never_deletes_the_input_checkpoint(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    checkpoint = out / "checkpoint-tnale.npz"
    np.savez(checkpoint, goal=_planted())
    before = checkpoint.read_bytes()
    args = ("search", checkpoint, "--out", out, "--checkpoint", "--overwrite", "--quiet")
    assert _run(*args, "--max-rank", 2, "--max-evaluations", 2) == 2
    assert "input file" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before


def test_an_input_reached_through_a_link_is_not_an_output(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    source = _ring_file(tmp_path / "ring.npy")
    before = source.read_bytes()
    os.symlink(source, out / "result.json")
    args = ("search", source, "--out", out, "--overwrite", "--quiet", "--method", "random")
    assert _run(*args, "--max-rank", 2, "--max-evaluations", 2) == 2
    assert "input file" in capsys.readouterr().err
    assert source.read_bytes() == before


# -- item 3: complex input is refused by every command -------------------------------------------
@pytest.mark.parametrize("container", ["npy", "npz_goal"])
def test_search_refuses_complex_input(tmp_path, capsys, container):
    X = _planted() + 1j * _planted()
    path = tmp_path / f"complex.{container[:3]}"
    if container == "npy":
        np.save(path, X)
    else:
        np.savez(path, goal=X, adj_matrix=np.array(RING))
    out = tmp_path / "out"
    assert _run("search", path, "--out", out, "--quiet", "--max-rank", 2) == 2
    assert "complex" in capsys.readouterr().err
    assert not out.exists()


# -- item 4: the CLI reads every file with tnml.load's caps ----------------------------------------
def _compressed_npz(path, n_bytes=200 * 10**6, name="goal"):
    """An .npz whose one entry declares ``n_bytes`` of zeros, deflated to a few hundred kB."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0))
    header["shape"] = (n_bytes // 8,)
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(f"{name}.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as stream:
            stream.write(buffer.getvalue())
            chunk, written = bytes(2**20), 0
            while written < n_bytes:
                stream.write(chunk[: n_bytes - written])
                written += min(len(chunk), n_bytes - written)
    return path


@pytest.mark.parametrize("command", ["search", "complete"])
@pytest.mark.parametrize("name", ["goal", "data"])
def test_cli_caps_what_a_compressed_npz_declares(tmp_path, capsys, command, name):
    path = _compressed_npz(tmp_path / "bomb.npz", name=name)
    assert path.stat().st_size < 400_000
    extra = ("--missing", "0.5") if command == "complete" else ()
    tracemalloc.start()
    try:
        code = _run(command, path, "--out", tmp_path / "out", "--quiet", *extra)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2
    assert "limit" in capsys.readouterr().err
    assert peak < 50 * 2**20, peak


def test_cli_caps_what_an_image_declares(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("L", (9000, 9000)).save(path)  # 81 MB of pixels in a few hundred kB
    assert path.stat().st_size < 400_000
    assert _run("complete", path, "--out", tmp_path / "out", "--quiet") == 2
    assert "limit" in capsys.readouterr().err


# -- item 5: one search per checkpoint, unique temporaries, a killed writer cleaned up -------------
def test_a_second_search_on_a_checkpoint_in_use_is_refused(tmp_path, monkeypatch):
    from tnml.structure_search import runner

    path = tmp_path / "search.npz"
    started, release = threading.Event(), threading.Event()
    evaluate = runner.Runner.evaluate

    def slow_evaluate(self, candidates):
        if threading.current_thread().name == "first":
            started.set()
            release.wait(30)
        return evaluate(self, candidates)

    monkeypatch.setattr(runner.Runner, "evaluate", slow_evaluate)
    errors = []

    def first():
        try:
            _checkpointed(path)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=first, name="first")
    thread.start()
    assert started.wait(30)
    try:
        with pytest.raises(ValueError, match="in use by another search"):
            _checkpointed(path)
    finally:
        release.set()
        thread.join(60)
    assert not errors
    # the first search's file, complete
    assert len(tnml.structure_search.read_checkpoint(path)["history"]) == FAST["max_evaluations"]
    _checkpointed(path, resume=True)  # released when the first search ended


KILLED_WRITER = """
import os, signal, sys
import numpy as np
import tnml
from tnml.decompositions import random_network
os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # die before the rename
X = random_network({ring}, random_state=0).to_tensor()
tnml.StructureSearch(method="random", max_rank=2, max_evaluations=3, max_iter=5,
                     random_state=0, checkpoint=sys.argv[1]).fit(X)
"""


def test_a_killed_writers_temporary_is_removed_by_the_next_search(tmp_path):
    path = tmp_path / "search.npz"
    script = KILLED_WRITER.format(ring=RING)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script, str(path)], env=env, timeout=120)
    assert done.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
    assert left and not path.exists()  # the killed writer left its temporary file
    _checkpointed(path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "search.npz"
    ]


def test_checkpoint_accepts_a_path_and_refuses_an_empty_name(tmp_path, monkeypatch):
    path = tmp_path / "search.npz"
    search = _checkpointed(pathlib.Path(path), as_path=True)
    assert path.exists() and search.n_evaluations_ == FAST["max_evaluations"]
    from tnml.structure_search import runner

    calls = []
    monkeypatch.setattr(runner, "_evaluate", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match="checkpoint must name a file"):
        _checkpointed("")
    assert not calls  # refused before any candidate was fitted


# -- item 6: checkpoint contents validated like saved models -------------------------------------
def _edit_checkpoint(path, edit):
    """Rewrite the checkpoint log with ``edit`` applied, its hashes valid (a deliberate edit,
    not a damaged write: the records themselves must be checked)."""
    from tnml.structure_search import checkpoint as log

    content = log.read_log(str(path))
    meta = {"history": content["history"], "elapsed": content["elapsed"]}
    edit(meta)
    networks = {e: [p[i] for i in sorted(p)] for e, p in content["cores"].items()}
    log.write_log(
        str(path),
        content["fingerprint"],
        meta["history"],
        meta["elapsed"],
        content["kept"],
        networks,
    )


@pytest.mark.parametrize(
    "edit",
    [
        lambda meta: meta["history"][0].pop("key"),
        lambda meta: meta["history"][0].update(objective=-5.0),
        lambda meta: meta["history"][1].update(rse=-1.0),
        lambda meta: meta["history"][0].update(structure=[[1, 2], [2, 3]]),
        lambda meta: meta.update(history={"not": "a list"}),
        lambda meta: meta.update(elapsed="soon"),
    ],
    ids=["missing_key", "objective", "negative_rse", "structure", "history_type", "elapsed"],
)
def test_an_edited_checkpoint_is_a_named_value_error(tmp_path, edit):
    path = tmp_path / "search.npz"
    _checkpointed(path)
    _edit_checkpoint(path, edit)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="checkpoint .*search.npz"):
        _checkpointed(path, resume=True, max_evaluations=5)
    assert path.read_bytes() == before


def test_a_checkpoint_is_read_with_the_limits_of_load(tmp_path):
    path = _compressed_npz(tmp_path / "search.npz", name="meta")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="checkpoint .* corrupted.*limit"):
            _checkpointed(path, resume=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, peak


# -- item 7: tnml.load checks fitted arrays against what the parameters imply --------------------
def _fitted(estimator):
    rng = np.random.default_rng(0)
    if isinstance(estimator, tnml.StructureSearch):
        return estimator.fit(_planted())
    if isinstance(estimator, tnml.TensorCompletionRegressor):
        coords = np.stack([rng.integers(0, s, 200) for s in (5, 6, 7)], axis=1)
        return estimator.fit(coords, rng.random(200))
    if "Regressor" in type(estimator).__name__:
        return estimator.fit(rng.random((40, 3, 4)), rng.random(40))
    return estimator.fit(rng.random((10, 3, 4)))


def _complex_cp(cp):
    factors = [f.astype(complex) for f in cp.decomposition_.factors]
    cp.decomposition_ = tnml.decompositions.CPTensor(cp.decomposition_.weights, factors)


TAMPERED = {
    "components_shape": (
        tnml.Tucker(rank=2),
        lambda e: setattr(e, "components_", e.components_[:, :5]),
    ),
    "n_components": (tnml.CP(rank=2), lambda e: setattr(e, "n_components_", 7)),
    "complex_format": (tnml.CP(rank=2), _complex_cp),
    "complex_components": (
        tnml.TensorTrain(rank=2),
        lambda e: setattr(e, "components_", e.components_ + 0j),
    ),
    "tensor_shape": (tnml.TensorRing(rank=2), lambda e: setattr(e, "tensor_shape_", (4, 3))),
    "feature_names": (
        tnml.CP(rank=2),
        lambda e: setattr(e, "feature_names_in_", np.array(["a", "b"], dtype=object)),
    ),
    "regression_weights": (
        tnml.CPRegressor(rank=2),
        lambda e: setattr(e, "decomposition_", tnml.decompositions.random_cp((2, 4), 2)),
    ),
    "regression_coef": (tnml.TTRegressor(rank=2), lambda e: setattr(e, "_coef", e._coef[:-1])),
    "search_shape": (
        tnml.StructureSearch(**FAST),
        lambda e: setattr(e, "shape_", (3, 3, 3, 4)),
    ),
    "completion_shape": (
        tnml.TensorCompletionRegressor(model="cp", rank=2, max_iter=5),
        lambda e: setattr(e, "tensor_shape_", (5, 6, 8)),
    ),
}


@pytest.mark.parametrize("case", list(TAMPERED), ids=list(TAMPERED))
def test_load_checks_fitted_shapes_and_dtypes(tmp_path, case):
    estimator, tamper = TAMPERED[case]
    estimator = _fitted(estimator)
    path = tmp_path / "model.npz"
    tnml.save(estimator, path)
    tnml.load(path)  # the file as saved loads
    tamper(estimator)
    tnml.save(estimator, path)  # save does not judge; load must
    with pytest.raises(ValueError, match="is not a valid tnml file"):
        tnml.load(path)


def _complexified(estimator):
    """Turn the first fitted array (or format) of ``estimator`` complex; return its name."""
    from tnml.decompositions import FactorizedTensor

    for name in type(estimator)._fitted_attributes:
        value = getattr(estimator, name, None)
        if isinstance(value, FactorizedTensor):
            arrays = {n: getattr(value, n) for n in value._array_names}
            first = value._array_names[0]
            arrays[first] = (
                [arrays[first][0] * 1j, *arrays[first][1:]]
                if isinstance(arrays[first], list)
                else arrays[first] * 1j
            )
            setattr(estimator, name, type(value)(**arrays, **value._metadata()))
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            setattr(estimator, name, value * 1j)
        elif isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            setattr(estimator, name, [value[0] * 1j, *value[1:]])
        else:
            continue
        return name
    raise AssertionError(f"{type(estimator).__name__} has no fitted array")


def _fit_any(estimator):
    rng = np.random.default_rng(0)
    name = type(estimator).__name__
    if name == "MPSClassifier":
        return estimator.fit(rng.random((30, 6)), np.arange(30) % 3)
    if name == "MPSRegressor":
        return estimator.fit(rng.random((30, 6)), rng.random(30))
    if name == "TensorImputer":
        X = rng.random((6, 5, 4))
        X[0, 0, 0] = np.nan
        return estimator.fit(X)
    return _fitted(estimator)


COMPLEX_CASES = [
    tnml.CP(rank=2),
    tnml.Tucker(rank=2),
    tnml.TensorTrain(rank=2),
    tnml.TensorRing(rank=2, max_iter=5),
    tnml.TubalSVD(rank=2),
    tnml.TensorImputer(tnml.CP(rank=2, max_iter=5)),
    tnml.TensorCompletionRegressor(model="tt", rank=2, max_iter=5),
    tnml.MPSClassifier(bond_dim=4, max_iter=2),
    tnml.MPSRegressor(bond_dim=4, max_iter=2),
    tnml.CPRegressor(rank=2),
    tnml.TuckerRegressor(rank=(2, 2)),
    tnml.TTRegressor(rank=2),
]


@pytest.mark.parametrize("estimator", COMPLEX_CASES, ids=[type(e).__name__ for e in COMPLEX_CASES])
def test_load_refuses_complex_fitted_arrays(tmp_path, estimator):
    estimator = _fit_any(estimator)
    name = _complexified(estimator)
    tnml.save(estimator, tmp_path / "model.npz")
    with pytest.raises(ValueError, match="is not a valid tnml file") as info:
        tnml.load(tmp_path / "model.npz")
    assert "complex" in str(info.value) or name in str(info.value)


def test_load_checks_an_mps_classifiers_classes(tmp_path):
    rng = np.random.default_rng(0)
    model = tnml.MPSClassifier(bond_dim=4, max_iter=2).fit(rng.random((30, 6)), np.arange(30) % 3)
    model.classes_ = model.classes_[:2]
    tnml.save(model, tmp_path / "mps.npz")
    with pytest.raises(ValueError, match="is not a valid tnml file"):
        tnml.load(tmp_path / "mps.npz")


# -- item 9: the smaller ones ----------------------------------------------------------------------
def test_ring_graph_with_a_permutation():
    X = np.random.default_rng(0).random((3, 4, 5))
    search = tnml.StructureSearch(graph="ring", permutation=[2, 0, 1], **FAST).fit(X)
    assert search.best_structure_.shape == (3, 3)
    assert tuple(np.diag(search.best_structure_)) == X.shape


@pytest.mark.parametrize(
    "estimator",
    [tnml.StructureSearch(**FAST), tnml.TensorRing(rank=2, random_state=0), tnml.CP(rank=2)],
    ids=["StructureSearch", "TensorRing", "CP"],
)
def test_tiny_data_is_fitted_as_well_as_its_scaled_copy(estimator):
    X = np.random.default_rng(0).random((3, 4, 5))
    reference = estimator.__class__(**estimator.get_params()).fit(X)
    tiny = estimator.fit(X * 1e-160)
    assert tiny.reconstruction_error_ == pytest.approx(reference.reconstruction_error_, rel=1e-6)
    model = tiny.decomposition_.to_tensor()
    assert np.all(np.isfinite(model))
    assert np.linalg.norm(model - X * 1e-160) <= 0.5 * np.linalg.norm(X * 1e-160)


@pytest.mark.parametrize(
    "estimator",
    [
        tnml.StructureSearch(**FAST),
        tnml.TensorRing(rank=2, random_state=0),
        tnml.CP(rank=2),
        tnml.Tucker(rank=2),
    ],
    ids=["StructureSearch", "TensorRing", "CP", "Tucker"],
)
@pytest.mark.parametrize("missing", [False, True], ids=["complete", "with_nan"])
def test_zero_data_is_answered_exactly(estimator, missing):
    X = np.zeros((3, 4, 5))
    if missing:
        X[0, 0, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 0/0 on the way
        fitted = estimator.fit(X)
    assert fitted.reconstruction_error_ == 0.0
    assert not np.any(fitted.decomposition_.to_tensor())
    if isinstance(estimator, tnml.StructureSearch):
        assert math.isfinite(fitted.best_objective_)


def test_max_time_is_blamed_for_running_out_of_time():
    with pytest.raises(ValueError, match="max_time") as info:
        tnml.StructureSearch(max_time=1e-9, random_state=0).fit(_planted())
    assert "max_memory" not in str(info.value)


def test_resume_without_a_checkpoint_is_an_error():
    with pytest.raises(ValueError, match="resume=True .*checkpoint"):
        tnml.StructureSearch(resume=True, **FAST).fit(_planted())


def _strict(constant):
    raise ValueError(f"not JSON: {constant}")


def test_search_writes_strict_json(tmp_path):
    source = tmp_path / "zeros.npy"
    np.save(source, np.zeros((3, 4, 5)))
    out = tmp_path / "out"
    assert (
        _run(
            "search",
            source,
            "--out",
            out,
            "--quiet",
            "--method",
            "random",
            "--max-rank",
            2,
            "--max-evaluations",
            3,
        )
        == 0
    )
    json.loads((out / "result.json").read_text(), parse_constant=_strict)


def test_strict_json_writes_null_for_non_finite_numbers():
    from tnml.cli import _json

    text = _json({"rse": float("inf"), "values": [float("nan"), 1.5]})
    assert json.loads(text, parse_constant=_strict) == {"rse": None, "values": [None, 1.5]}


@pytest.mark.parametrize("option", [("--rse-weight", -1), ("--max-rse", 0), ("--max-time", -2)])
def test_search_validates_its_arguments_before_creating_out(tmp_path, capsys, option):
    source = _ring_file(tmp_path / "ring.npy")
    out = tmp_path / "out"
    assert _run("search", source, "--out", out, "--quiet", *option) == 2
    assert not out.exists()
    assert option[0] in capsys.readouterr().err
