import subprocess
import sys


def _run(*args):
    return subprocess.run([sys.executable, "-m", "tnml", *args], capture_output=True, text=True,
                          timeout=600)


def test_demo_prints_a_table_for_every_model():
    result = _run("demo", "--rank", "4")
    assert result.returncode == 0, result.stderr
    for name in ("CP", "Tucker", "TensorTrain", "TensorRing"):
        assert name in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()
            if line.split() and line.split()[0] in ("CP", "Tucker", "TensorTrain", "TensorRing")]
    errors = [float(row[3]) for row in rows]
    assert all(0 < e < 1 for e in errors)


def test_bad_options_exit_2_without_traceback():
    result = _run("demo", "--rank", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--rank must be >= 1" in result.stderr
    result = _run("frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
