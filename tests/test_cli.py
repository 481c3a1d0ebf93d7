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
from tnml.decompositions import random_cp


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
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tnml",
            "complete",
            str(tmp_path / "x.npy"),
            "--model",
            "cp",
            "--rank",
            "1",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert np.isfinite(np.load(tmp_path / "o" / "completed.npy")).all()


def test_complete_image_file_writes_real_pngs(tmp_path):
    image_path = tmp_path / "small.png"
    io.imsave(image_path, (load_image("astronaut", size=32) * 255).astype(np.uint8))
    out = tmp_path / "out"
    assert (
        _run(
            "complete",
            str(image_path),
            "--missing",
            "0.5",
            "--model",
            "cp",
            "--rank",
            "4",
            "--out",
            str(out),
            "--quiet",
        )
        == 0
    )
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
        assert (
            _run(
                "complete",
                str(image_path),
                "--missing",
                "0.8",
                "--model",
                model,
                "--out",
                str(out),
                "--quiet",
            )
            == 0
        )
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
    assert (
        _run(
            "complete",
            str(tmp_path / "x.npy"),
            "--model",
            "tucker",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        )
        == 0
    )
    completed = np.load(tmp_path / "o" / "completed.npy")
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(completed[observed], X[observed])
    assert np.isfinite(completed).all()


@pytest.mark.parametrize(
    "args, text",
    [
        (["no-such-file.png", "--missing", "0.5"], "no such file"),
        (["--dataset", "atlantis", "--missing", "0.5"], "unknown dataset"),
        (["--dataset", "astronaut", "--missing", "1.5"], "--missing must be in [0, 1)"),
        (["--dataset", "astronaut", "--rank", "0"], "--rank must be >= 1"),
    ],
)
def test_complete_errors(args, text, tmp_path, capsys):
    _assert_one_line_error(capsys, ["complete", *args, "--out", str(tmp_path / "o")], text)


def test_complete_rejects_unreadable_and_complete_inputs(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    _assert_one_line_error(
        capsys,
        ["complete", str(bad), "--missing", "0.5", "--out", str(tmp_path / "o")],
        "cannot read",
    )
    np.save(tmp_path / "full.npy", np.ones((4, 5)))
    _assert_one_line_error(
        capsys,
        ["complete", str(tmp_path / "full.npy"), "--out", str(tmp_path / "o")],
        "no missing entries",
    )


def test_unknown_command_exits_2(capsys):
    assert _run("frobnicate") == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.slow
def test_default_model_completes_a_grey_image_and_a_4d_tensor(tmp_path):
    # Issue 11: the default (auto) used to stop at "the tubal model needs a 3-way tensor".
    grey = (load_image("astronaut", size=32, as_gray=True) * 255).astype(np.uint8)
    io.imsave(tmp_path / "grey.png", grey, check_contrast=False)
    assert (
        _run(
            "complete",
            str(tmp_path / "grey.png"),
            "--missing",
            "0.5",
            "--out",
            str(tmp_path / "g"),
            "--quiet",
        )
        == 0
    )
    assert (tmp_path / "g" / "completed.png").exists()
    X = random_cp((5, 6, 4, 3), 2, random_state=0).to_tensor()
    X[np.random.default_rng(0).random(X.shape) < 0.3] = np.nan
    np.save(tmp_path / "x4.npy", X)
    assert _run("complete", str(tmp_path / "x4.npy"), "--out", str(tmp_path / "f"), "--quiet") == 0
    metrics = json.loads((tmp_path / "f" / "metrics.json").read_text())
    skipped = [c["model"] for c in metrics["candidates"] if "skipped" in c]
    assert skipped == ["tubal"]


# -- issue 9: the CLI never loses the user's data (in-process through tnml.cli.main) ----------
def _main(capsys, *argv):
    """``tnml *argv`` in process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = _run(*argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(code, err, text):
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert text in err, err


def _low_rank_npy(path, scale=1.0):
    rng = np.random.default_rng(0)
    X = np.einsum("ir,jr,kr->ijk", rng.random((10, 2)), rng.random((11, 2)), rng.random((4, 2)))
    np.save(path, X * scale)
    return X * scale


def test_cli_never_replaces_the_input_file(tmp_path, capsys):
    """Item 1: `tnml complete d/completed.npy --out d` replaced the input with the result."""
    source = tmp_path / "completed.npy"
    _low_rank_npy(source)
    before = source.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, err = _main(
            capsys,
            "complete",
            str(source),
            "--missing",
            "0.5",
            "--model",
            "cp",
            "--rank",
            "2",
            "--out",
            str(tmp_path),
            "--quiet",
            *extra,
        )
        _one_line_error(code, err, "would replace the input file")
        assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["completed.npy"]


def test_cli_replaces_outputs_only_with_overwrite(tmp_path, capsys):
    """Item 1: existing completed.*, metrics.json or comparison.png are kept unless asked."""
    source = tmp_path / "x.npy"
    _low_rank_npy(source)
    out = tmp_path / "out"
    args = (
        "complete",
        str(source),
        "--missing",
        "0.5",
        "--model",
        "cp",
        "--rank",
        "2",
        "--out",
        str(out),
        "--quiet",
    )
    for name in ("metrics.json", "comparison.png", "completed.npy"):
        out.mkdir(exist_ok=True)
        (out / name).write_text("precious")
        code, _, err = _main(capsys, *args)
        _one_line_error(code, err, f"{name} exists; pass --overwrite")
        assert (out / name).read_text() == "precious"
        assert sorted(p.name for p in out.iterdir()) == [name]  # nothing else written either
        (out / name).unlink()
    code, _, err = _main(capsys, *args)
    assert code == 0, err
    first = json.loads((out / "metrics.json").read_text())
    code, _, err = _main(capsys, *args, "--overwrite")
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["rank"] == first["rank"] == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.png",
        "completed.npy",
        "metrics.json",
    ]  # no temporary left


def test_cli_refuses_complex_input(tmp_path, capsys):
    """Item 2: the imaginary part was silently dropped (exit 0)."""
    np.save(tmp_path / "c.npy", np.ones((6, 7)) + 1j)
    code, _, err = _main(
        capsys,
        "complete",
        str(tmp_path / "c.npy"),
        "--missing",
        "0.5",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    _one_line_error(code, err, "complex numbers")
    assert not (tmp_path / "o" / "completed.npy").exists()


def test_cli_names_files_that_are_not_arrays(tmp_path, capsys):
    """Item 7: a text file named .npy got numpy's advice to load it with allow_pickle; a header
    claiming (10^6, 10^6) allocated (MemoryError)."""
    (tmp_path / "text.npy").write_text("just some notes\n" * 10)
    code, _, err = _main(
        capsys,
        "complete",
        str(tmp_path / "text.npy"),
        "--missing",
        "0.5",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    _one_line_error(code, err, "is not a NumPy .npy array")
    assert "allow_pickle" not in err
    import io as bytes_io

    header = bytes_io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    (tmp_path / "huge.npy").write_bytes(header.getvalue() + bytes(80))
    code, _, err = _main(
        capsys,
        "complete",
        str(tmp_path / "huge.npy"),
        "--missing",
        "0.5",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    _one_line_error(code, err, "declares shape (1000000, 1000000)")


def test_cli_completes_huge_valued_input(tmp_path, capsys):
    """Item 10: values around 1e200 printed a traceback (exit 1); they are completed exactly as
    the same data at scale 1 is."""
    results = {}
    for scale in (1.0, 1e200):
        _low_rank_npy(tmp_path / "x.npy", scale=scale)
        out = tmp_path / f"o{scale:g}"
        code, printed, err = _main(
            capsys,
            "complete",
            str(tmp_path / "x.npy"),
            "--missing",
            "0.3",
            "--model",
            "cp",
            "--rank",
            "2",
            "--out",
            str(out),
            "--quiet",
        )
        assert code == 0, err
        results[scale] = (np.load(out / "completed.npy"), json.loads(printed))
    (small, small_metrics), (huge, huge_metrics) = results[1.0], results[1e200]
    assert np.isfinite(huge).all()
    np.testing.assert_allclose(huge / 1e200, small, rtol=1e-9)
    assert huge_metrics["psnr_missing"] == pytest.approx(small_metrics["psnr_missing"])
    assert huge_metrics["rse_missing"] == pytest.approx(small_metrics["rse_missing"])


def test_cli_completes_a_constant_tensor(tmp_path, capsys):
    """Item 10: a constant tensor stopped on 'data_range must be ... > 0' and wrote nothing."""
    np.save(tmp_path / "c.npy", np.full((8, 9, 3), 2.5))
    code, out, err = _main(
        capsys,
        "complete",
        str(tmp_path / "c.npy"),
        "--missing",
        "0.5",
        "--model",
        "cp",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "o" / "completed.npy"), 2.5, rtol=1e-7)
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["psnr_missing"] is None and metrics["rse_missing"] < 1e-7
    assert json.loads(out)["psnr_missing"] is None


def test_cli_auto_completes_a_small_matrix(tmp_path, capsys):
    """Found probing: 'auto' on a 10 x 12 matrix stopped on an impossible tensor-ring rank of
    its ket-augmented (2, 4, 15) layout, then on the tubal model that needs 3 axes."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "m.npy", rng.random((10, 1)) @ rng.random((1, 12)) + 1)
    code, out, err = _main(
        capsys,
        "complete",
        str(tmp_path / "m.npy"),
        "--missing",
        "0.3",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    fitted = {c["model"] for c in metrics["candidates"] if "skipped" not in c}
    assert [c["model"] for c in metrics["candidates"] if "skipped" in c] == ["tubal"]
    assert fitted == {"cp", "tucker", "tt", "tr", "smooth"}
    assert metrics["rse_missing"] < 0.05  # rank-one data
