"""Recover a hyperspectral cube from 10% of its entries.

Indian Pines (145 x 145 pixels x 200 bands, bundled with TensorLy) is scaled to [0, 1] and, for
speed, cropped to a 64 x 64 pixel window with all 200 bands (``--full``: the whole cube). 90% of
its entries are removed at random (``make_mask``, seed 0) and ``TensorImputer`` completes the
cube with a CP model whose rank is chosen on held-out observed entries (add Tucker, TT, TR or
tubal models with ``--models``; Tucker's held-out rank search is slow at this size, about 11
minutes for the 64 x 64 x 200 crop on 2 busy cores).

It prints the relative error (RSE) and PSNR on the missing entries, and writes a figure: one
band as observed / completed by each model / original, and the spectrum of one pixel (true vs
completed, observed bands marked).

Run::

    python examples/complete_hyperspectral.py [--output complete_hyperspectral.png] [--full]
                                              [--models cp tucker] [--quick]

The default takes well under a minute on 2 CPU cores (``--quick``: a 16 x 16 x 200 crop, a few
seconds). Writes the PNG in the current directory by default.
"""

import argparse
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import tnml  # noqa: E402
from tnml.datasets import load_indian_pines, make_mask  # noqa: E402
from tnml.metrics import psnr, rse  # noqa: E402

BAND = 100  # band shown in the image panels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        default="complete_hyperspectral.png",
        help="PNG to write (default: ./complete_hyperspectral.png)",
    )
    parser.add_argument("--crop", type=int, default=64, help="side of the pixel window")
    parser.add_argument("--full", action="store_true", help="the whole 145 x 145 x 200 cube")
    parser.add_argument("--missing", type=float, default=0.9, help="share of missing entries")
    parser.add_argument(
        "--models", nargs="+", default=["cp"], choices=["cp", "tucker", "tt", "tr", "tubal"]
    )
    parser.add_argument("--quick", action="store_true", help="16 x 16 crop (smoke test)")
    args = parser.parse_args(argv)

    cube = load_indian_pines()
    cube = (cube - cube.min()) / (cube.max() - cube.min())
    if not args.full:
        side = 16 if args.quick else args.crop
        top = (cube.shape[0] - side) // 2
        cube = np.ascontiguousarray(cube[top : top + side, top : top + side])
    observed = make_mask(cube.shape, args.missing, random_state=0)
    cube_missing = np.where(observed, cube, np.nan)
    print(
        f"Indian Pines {cube.shape}, {args.missing:.0%} of entries missing; scores on the "
        f"missing entries"
    )
    print(f"{'model':<8} {'rank':>14} {'RSE':>7} {'PSNR (dB)':>10} {'seconds':>8}")
    results = []
    for model in args.models:
        imputer = tnml.TensorImputer(model, random_state=0, ordered_axes=(0, 1))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            completed = imputer.fit_transform(cube_missing)
        seconds = time.perf_counter() - start
        error = rse(cube, completed, mask=~observed)
        score = psnr(cube, completed, mask=~observed)
        results.append((model, imputer.summary_["rank"], error, completed))
        print(
            f"{model:<8} {str(imputer.summary_['rank']):>14} {error:>7.4f} {score:>10.2f} "
            f"{seconds:>8.1f}",
            flush=True,
        )

    pixel = (cube.shape[0] // 3, cube.shape[1] // 2)
    low, high = np.percentile(cube[:, :, BAND], [1, 99])
    panels = [("observed", np.where(observed[:, :, BAND], cube[:, :, BAND], np.nan))]
    panels += [
        (f"{model} rank {rank}\nRSE {error:.3f}", completed[:, :, BAND])
        for model, rank, error, completed in results
    ]
    panels.append(("original", cube[:, :, BAND]))
    fig = plt.figure(figsize=(2.6 * len(panels), 5.6))
    grid = fig.add_gridspec(2, len(panels), height_ratios=[1, 0.9])
    for k, (title, image) in enumerate(panels):
        ax = fig.add_subplot(grid[0, k])
        shown = np.ma.masked_invalid(image)
        ax.imshow(shown, cmap="viridis", vmin=low, vmax=high)
        ax.plot(pixel[1], pixel[0], "r+", markersize=10)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    bands = np.arange(cube.shape[2])
    ax.plot(bands, cube[pixel], "k-", lw=2, label="true")
    for model, _, _, completed in results:
        ax.plot(bands, completed[pixel], lw=1, label=f"{model} completed")
    seen = observed[pixel]
    ax.plot(
        bands[seen],
        cube[pixel][seen],
        "o",
        ms=4,
        mfc="none",
        mec="C3",
        label=f"observed ({seen.sum()} of {seen.size} bands)",
    )
    ax.set_xlabel("band")
    ax.set_ylabel("scaled radiance")
    ax.set_title(f"spectrum of pixel {pixel} (red +)", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(f"Indian Pines {cube.shape}, {args.missing:.0%} missing; band {BAND}")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
