"""The example scripts run end to end (smallest settings) and write a readable PNG."""

import pathlib
import subprocess
import sys

import pytest
from skimage import io

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow  # each script runs in its own interpreter: 6-10 s apiece
@pytest.mark.parametrize(
    "script, extra",
    [
        ("complete_image.py", ["--models", "cp", "tr", "smooth"]),
        ("complete_hyperspectral.py", []),
        ("complete_ratings.py", []),
        ("mps_digits.py", []),
        ("tensor_regression.py", []),
        ("pipeline_gridsearch.py", []),
        ("structure_search_tnale.py", []),
        ("structure_search_greedy.py", []),
    ],
)
def test_example_writes_png(script, extra, tmp_path):
    output = tmp_path / "figure.png"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--output", str(output), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}" in result.stdout
    figure = io.imread(output)
    assert figure.ndim == 3 and figure.shape[0] > 100 and figure.shape[1] > 100
