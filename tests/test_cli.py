"""The command line: in process through ``tnml.cli.main(argv)``, plus one subprocess smoke
test of the installed entry point."""

import json
import subprocess
import sys

import numpy as np
import pytest
from skimage import io

from tnml.cli import main
from tnml.datasets import load_image


def _run(*args):
    """The exit status of ``tnml *args`` (argparse and usage errors exit through SystemExit)."""
    try:
        return main(list(args)) or 0
    except SystemExit as exit:
        return exit.code


def _assert_one_line_error(capsys, args, text):
    capsys.readouterr()
    assert _run(*args) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert text in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_subprocess_smoke(tmp_path):
    """``python -m tnml`` end to end in its own process: the real entry point and exit code."""
    rng = np.random.default_rng(0)
    X = rng.random((12, 1)) * rng.random((1, 14)) + 1.0
    X[rng.random(X.shape) < 0.3] = np.nan
    np.save(tmp_path / "x.npy", X)
    result = subprocess.run([sys.executable, "-m", "tnml", "complete", str(tmp_path / "x.npy"),
                             "--model", "cp", "--rank", "1", "--out", str(tmp_path / "o"),
                             "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert np.isfinite(np.load(tmp_path / "o" / "completed.npy")).all()


def test_complete_image_file_writes_real_pngs(tmp_path):
    image_path = tmp_path / "small.png"
    io.imsave(image_path, (load_image("astronaut", size=32) * 255).astype(np.uint8))
    out = tmp_path / "out"
    assert _run("complete", str(image_path), "--missing", "0.5", "--model", "cp", "--rank", "4",
                "--out", str(out), "--quiet") == 0
    completed = io.imread(out / "completed.png")
    assert completed.shape == (32, 32, 3) and completed.dtype == np.uint8
    figure = io.imread(out / "comparison.png")
    assert figure.ndim == 3 and figure.shape[0] > 100
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "cp" and metrics["rank"] == 4
    assert 10 < metrics["psnr_missing"] < 60


def test_complete_smooth_model_beats_low_rank_cp(tmp_path):
    image_path = tmp_path / "small.png"
    io.imsave(image_path, (load_image("astronaut", size=48) * 255).astype(np.uint8))
    scores = {}
    for model in ("smooth", "cp"):
        out = tmp_path / model
        assert _run("complete", str(image_path), "--missing", "0.8", "--model", model,
                    "--out", str(out), "--quiet") == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["model"] == model
        scores[model] = metrics["psnr_missing"]
        assert io.imread(out / "completed.png").shape == (48, 48, 3)
    assert scores["smooth"] > scores["cp"] + 2, scores


def test_complete_npy_with_nans_as_given(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((12, 1)) * rng.random((1, 14)) + 1.0
    X[rng.random(X.shape) < 0.3] = np.nan
    np.save(tmp_path / "x.npy", X)
    assert _run("complete", str(tmp_path / "x.npy"), "--model", "tucker",
                "--out", str(tmp_path / "o"), "--quiet") == 0
    completed = np.load(tmp_path / "o" / "completed.npy")
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(completed[observed], X[observed])
    assert np.isfinite(completed).all()


@pytest.mark.parametrize("args, text", [
    (["no-such-file.png", "--missing", "0.5"], "no such file"),
    (["--dataset", "atlantis", "--missing", "0.5"], "unknown dataset"),
    (["--dataset", "astronaut", "--missing", "1.5"], "--missing must be in [0, 1)"),
    (["--dataset", "astronaut", "--rank", "0"], "--rank must be >= 1"),
])
def test_complete_errors(args, text, tmp_path, capsys):
    _assert_one_line_error(capsys, ["complete", *args, "--out", str(tmp_path / "o")], text)


def test_complete_rejects_unreadable_and_complete_inputs(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    _assert_one_line_error(capsys, ["complete", str(bad), "--missing", "0.5", "--out",
                                    str(tmp_path / "o")], "cannot read")
    np.save(tmp_path / "full.npy", np.ones((4, 5)))
    _assert_one_line_error(capsys, ["complete", str(tmp_path / "full.npy"), "--out",
                                    str(tmp_path / "o")], "no missing entries")


def test_unknown_command_exits_2(capsys):
    assert _run("frobnicate") == 2
    assert "Traceback" not in capsys.readouterr().err
