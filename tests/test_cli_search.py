"""``tnml search`` and ``tnml complete --model search``, in process."""

import csv
import json

import numpy as np
from skimage import io

from tnml.cli import main
from tnml.decompositions import random_network
from tnml.structure_search import canonical_key, to_data_order

RING = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]


def _run(*args):
    try:
        return main(list(args)) or 0
    except SystemExit as exit:
        return exit.code


def _instance(path):
    """A file in the papers' format: goal, adj_matrix, permute."""
    X = random_network(RING, random_state=0).to_tensor()
    np.savez(path, goal=X, adj_matrix=np.array(RING), permute=np.arange(4))
    return X


def test_search_writes_results_history_and_figures(tmp_path, capsys):
    _instance(tmp_path / "ring.npz")
    out = tmp_path / "out"
    assert (
        _run(
            "search",
            str(tmp_path / "ring.npz"),
            "--method",
            "greedy",
            "random",
            "--max-rank",
            "2",
            "--max-rse",
            "1e-6",
            "--max-evaluations",
            "30",
            "--out",
            str(out),
            "--quiet",
        )
        == 0
    )
    result = json.loads((out / "result.json").read_text())
    assert set(result["methods"]) == {"greedy", "random"}
    greedy = result["methods"]["greedy"]
    assert greedy["rse"] < 1e-6
    assert canonical_key(greedy["best_structure"]) == canonical_key(to_data_order(RING))
    with open(out / "history.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert {r["method"] for r in rows} == {"greedy", "random"}
    assert sum(r["method"] == "random" for r in rows) == 30
    best = [float(r["best_objective"]) for r in rows if r["method"] == "random"]
    assert best == sorted(best, reverse=True)  # the running best only falls
    for name in ("trace.png", "network.png"):
        figure = io.imread(out / name)
        assert figure.ndim == 3 and figure.shape[0] > 300 and figure.shape[1] > 300
    assert "greedy" in capsys.readouterr().out


def test_search_never_overwrites_without_permission(tmp_path, capsys):
    _instance(tmp_path / "ring.npz")
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text("keep me")
    args = (
        "search",
        str(tmp_path / "ring.npz"),
        "--method",
        "random",
        "--max-rank",
        "2",
        "--max-evaluations",
        "3",
        "--out",
        str(out),
        "--quiet",
    )
    capsys.readouterr()
    assert _run(*args) == 2
    stderr = capsys.readouterr().err
    assert "--overwrite" in stderr and len(stderr.strip().splitlines()) == 1
    assert (out / "result.json").read_text() == "keep me"
    assert _run(*args, "--overwrite") == 0
    assert json.loads((out / "result.json").read_text())["methods"]["random"]


def test_search_checkpoint_and_resume(tmp_path):
    _instance(tmp_path / "ring.npz")
    out = tmp_path / "out"
    base = (
        "search",
        str(tmp_path / "ring.npz"),
        "--method",
        "random",
        "--max-rank",
        "2",
        "--out",
        str(out),
        "--quiet",
        "--checkpoint",
    )
    assert _run(*base, "--max-evaluations", "4") == 0
    assert (out / "checkpoint-random.npz").exists()
    assert _run(*base, "--max-evaluations", "8", "--resume", "--overwrite") == 0
    assert json.loads((out / "result.json").read_text())["methods"]["random"]["n_evaluations"] == 8


def test_search_errors_are_one_line(tmp_path, capsys):
    capsys.readouterr()
    assert _run("search", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "o")) == 2
    assert "no such file" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.ones((3, 3)))
    assert (
        _run("search", str(tmp_path / "x.npy"), "--max-rank", "0", "--out", str(tmp_path / "o"))
        == 2
    )
    assert "--max-rank must be >= 1" in capsys.readouterr().err


def test_complete_with_structure_search(tmp_path):
    X = random_network(np.array(RING) + 2 * np.eye(4, dtype=int), random_state=0).to_tensor()
    X[np.random.default_rng(0).random(X.shape) < 0.3] = np.nan
    np.save(tmp_path / "x.npy", X)
    assert (
        _run(
            "complete",
            str(tmp_path / "x.npy"),
            "--model",
            "search",
            "--rank",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        )
        == 0
    )
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["model"] == "search"
    completed = np.load(tmp_path / "o" / "completed.npy")
    truth = random_network(np.array(RING) + 2 * np.eye(4, dtype=int), random_state=0).to_tensor()
    np.testing.assert_allclose(completed, truth, atol=1e-3)  # the planted ring, completed
