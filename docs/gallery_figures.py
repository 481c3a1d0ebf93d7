"""Regenerate the gallery's figures: run every ``examples/*.py`` and keep its PNG.

The documentation build never runs the examples (it must stay fast); it shows the PNGs committed
in ``docs/_static/gallery/``. This script refreshes them: each example runs in its own process
with its default settings (``--quick``: with ``--quick`` where the example has it, seconds each
but smaller problems), and its figure is written to ``docs/_static/gallery/<example>.png``,
downscaled to at most ``--width`` pixels and saved as an 8-bit palette PNG so that the committed
figures stay small.

Run (from the repository root)::

    python docs/gallery_figures.py [--quick] [--only complete_image mps_digits] [--width 900]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GALLERY = ROOT / "docs" / "_static" / "gallery"


def command(script, output, quick):
    """The command line that runs ``script`` and writes its figure to ``output``."""
    source = script.read_text()
    args = [sys.executable, str(script)]
    # Examples take ``--output PATH``, except those that take the path as their only argument.
    args += ["--output", str(output)] if "--output" in source else [str(output)]
    if quick and "--quick" in source:
        args.append("--quick")
    return args


def shrink(path, width):
    """Downscale ``path`` to at most ``width`` pixels wide; store it with a 256-colour palette."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(256).save(path, optimize=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run the examples with --quick")
    parser.add_argument("--only", nargs="+", help="example names (default: all)")
    parser.add_argument("--width", type=int, default=900, help="largest width kept (pixels)")
    args = parser.parse_args(argv)
    GALLERY.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    failed = []
    for script in sorted(EXAMPLES.glob("*.py")):
        if args.only and script.stem not in args.only:
            continue
        output = GALLERY / f"{script.stem}.png"
        start = time.perf_counter()
        done = subprocess.run(command(script, output, args.quick), cwd=ROOT, env=env)
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not output.exists():
            failed.append(script.stem)
            print(f"{script.stem}: FAILED ({seconds:.0f} s)", flush=True)
            continue
        shrink(output, args.width)
        print(f"{script.stem}: {output.stat().st_size // 1024} KiB, {seconds:.0f} s", flush=True)
    if failed:
        sys.exit(f"failed: {' '.join(failed)}")


if __name__ == "__main__":
    main()
