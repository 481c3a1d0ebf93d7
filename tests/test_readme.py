"""README.md's code runs as written: each ``python`` block as a script of its own, each ``bash``
block that installs nothing as a shell script, both in an empty folder."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
BLOCK_SECONDS = 120  # a block is meant to take <= 30 s on 2 cores; this only stops a hang


def readme_blocks(language, text=None):
    """The fenced blocks of one language, as ``(first line number, code)`` pairs."""
    text = README.read_text(encoding="utf-8") if text is None else text
    return [
        (text[: match.start()].count("\n") + 1, match.group(2))
        for match in FENCE.finditer(text)
        if match.group(1) == language
    ]


def _shell_blocks():
    # The install commands (quick start) are what CI itself runs; they are not re-run here.
    return [(line, code) for line, code in readme_blocks("bash") if "pip install" not in code]


def _run(command, cwd):
    env = dict(os.environ, MPLBACKEND="Agg")
    # The `tnml` script of this interpreter's environment comes first on PATH.
    env["PATH"] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_SECONDS
    )


def test_the_readme_has_the_blocks_this_file_runs():
    assert len(readme_blocks("python")) >= 3
    assert len(_shell_blocks()) >= 1
    languages = {match.group(1) for match in FENCE.finditer(README.read_text(encoding="utf-8"))}
    assert languages <= {"python", "bash"}, f"code blocks no test runs: {languages}"


def test_a_broken_block_is_caught(tmp_path):
    """The runner reports a failure (so a broken README block cannot pass unnoticed)."""
    broken = "```python\nimport tnml\ntnml.CP(rank=2).fit(undefined_name)\n```\n"
    ((_, code),) = readme_blocks("python", broken)
    result = _run([sys.executable, "-c", code], tmp_path)
    assert result.returncode != 0 and "NameError" in result.stderr


@pytest.mark.parametrize(
    "line, code", readme_blocks("python"), ids=[f"line{n}" for n, _ in readme_blocks("python")]
)
def test_python_block_runs(line, code, tmp_path):
    script = tmp_path / f"readme_line{line}.py"
    script.write_text(code, encoding="utf-8")
    result = _run([sys.executable, str(script)], tmp_path)
    assert result.returncode == 0, f"README block at line {line} failed:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize(
    "line, code", _shell_blocks(), ids=[f"line{n}" for n, _ in _shell_blocks()]
)
def test_shell_block_runs(line, code, tmp_path):
    result = _run(["bash", "-euo", "pipefail", "-c", code], tmp_path)
    assert result.returncode == 0, f"README block at line {line} failed:\n{result.stderr[-3000:]}"
