"""Implicit regularisation of gradient descent towards low tubal rank.

A tensor of tubal rank 3 (40 x 40 x 8) is observed on 60% of its entries. Gradient descent fits
an *overparametrised* factorisation ``X = U * V^T`` (factors of full width 40, no penalty, no
rank given) from a random start of scale ``init_scale``. For decreasing scales, the figure shows

* the tubal singular values of the iterate over the iterations (one panel per scale): the
  three true components rise out of the noise one after another while the other 37 stay small,
  the smaller the start the smaller they stay;
* the effective tubal rank reached (tubal singular values above 1e-3 of the largest) against the
  initialisation scale: 3 (the true tubal rank) once the start is small enough.

Run::

    python examples/tubal_implicit_regularization.py [--output tubal_implicit_regularization.png]

It takes a few seconds and writes the PNG (default: in the current directory).
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tnml.decompositions.tubal import (  # noqa: E402
    gd_complete,
    t_product,
    tubal_from_factors,
    tubal_singular_values,
)

RTOL = 1e-3  # "effective" tubal rank: singular values above RTOL times the largest


def run(X, mask, init_scale, n_iter):
    """GD from ``init_scale``: recorded iterations, tubal singular values, final TubalTensor."""
    iterations, history = [], []
    # about 60 records, evenly spaced on the logarithmic iteration axis of the plot
    marks = set(np.unique(np.geomspace(1, n_iter, 60).astype(int)).tolist())

    def record(iteration, U, V):
        if iteration + 1 in marks:
            iterations.append(iteration + 1)
            history.append(tubal_from_factors(U, V).tubal_singular_values())

    tt, info = gd_complete(
        X, mask=mask, init_scale=init_scale, max_iter=n_iter, random_state=0, callback=record
    )
    return np.array(iterations), np.array(history), tt, info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        default="tubal_implicit_regularization.png",
        help="PNG to write (default: ./tubal_implicit_regularization.png)",
    )
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--scales", type=float, nargs="+", default=[1e-1, 1e-2, 1e-3, 1e-4])
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    shape, true_rank = (40, 40, 8), 3
    X = t_product(
        rng.standard_normal((shape[0], true_rank, shape[2])),
        rng.standard_normal((true_rank, shape[1], shape[2])),
    )
    mask = rng.random(shape) < 0.6
    truth = tubal_singular_values(X)

    start = time.perf_counter()
    scales = sorted(args.scales, reverse=True)
    n_cols = 3
    n_rows = -(-(len(scales) + 1) // n_cols)
    fig, grid = plt.subplots(n_rows, n_cols, figsize=(4.3 * n_cols, 3.6 * n_rows), squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(scales) + 1 :]:
        ax.set_visible(False)
    ranks = []
    print(f"ground truth: tubal rank {true_rank}, shape {shape}, 60% observed")
    print(f"{'init scale':>10}  {'eff. tubal rank':>15}  {'4th / 1st s.v.':>14}  {'RSE':>8}")
    for ax, scale in zip(axes, scales):
        iters, history, tt, info = run(X, mask, scale, args.iterations)
        final = tt.tubal_singular_values()
        rank = int(np.sum(final > RTOL * final[0]))
        ranks.append(rank)
        rse = np.linalg.norm(tt.to_tensor() - X) / np.linalg.norm(X)
        print(f"{scale:10.0e}  {rank:15d}  {final[true_rank] / final[0]:14.2e}  {rse:8.1e}")
        for i in range(history.shape[1]):
            color = f"C{i}" if i < true_rank else "0.6"
            ax.loglog(iters, history[:, i], color=color, lw=1.5 if i < true_rank else 0.6)
        for value in truth[:true_rank]:
            ax.axhline(value, color="k", ls=":", lw=0.8)
        ax.axhline(RTOL * final[0], color="r", ls="--", lw=0.8)
        ax.set_title(f"init scale {scale:g}: effective rank {rank}")
        ax.set_xlabel("iteration")
        ax.set_ylabel("tubal singular values of the iterate")
        ax.set_ylim(1e-9, 2 * truth[0])
    ax = axes[len(scales)]
    ax.semilogx(scales, ranks, "o-")
    ax.axhline(true_rank, color="k", ls=":", lw=0.8, label="true tubal rank")
    ax.set_xlabel("initialisation scale")
    ax.set_ylabel(f"effective tubal rank (s.v. > {RTOL:g} x largest)")
    ax.invert_xaxis()
    ax.legend()
    fig.suptitle(
        "Gradient descent on a full-width U * V^T: small starts find low tubal rank "
        "\n(colour: the 3 largest, grey: the other 37; "
        "dotted: true tubal singular values; dashed: 1e-3 x largest)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s")
    return ranks


if __name__ == "__main__":
    main()
