"""Choose the rank of a ratings-tensor completion by cross-validation.

A synthetic (users x items x time) ratings tensor of shape 500 x 400 x 12 has CP rank 5 plus
Gaussian noise (relative level 0.2). Only 50,000 of its 2.4 million entries are known, as
(user, item, time) coordinates and values (``make_low_rank_entries``); the dense tensor is never
built. 40,000 go to training and 10,000 are held out for the test.

``GridSearchCV`` (3-fold, on the training entries) picks the rank of a
``TensorCompletionRegressor``. It prints the grid results, then the test RMSE of the chosen
model next to the noise level (the best any model can do on noisy entries) and the RMSE against
the noiseless tensor, and writes a figure of validation RMSE against rank.

Run::

    python examples/complete_ratings.py [--output complete_ratings.png] [--quick]

The default takes well under a minute on 2 CPU cores (``--quick``: a 100 x 80 x 6 tensor with
8,000 entries and fewer ranks, a few seconds). Writes the PNG in the current directory by
default.
"""

import argparse
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402

from tnml import TensorCompletionRegressor  # noqa: E402
from tnml.datasets import make_low_rank_entries  # noqa: E402


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        default="complete_ratings.png",
        help="PNG to write (default: ./complete_ratings.png)",
    )
    parser.add_argument("--rank", type=int, default=5, help="true CP rank")
    parser.add_argument("--noise", type=float, default=0.2, help="relative noise level")
    parser.add_argument("--quick", action="store_true", help="small tensor (smoke test)")
    args = parser.parse_args(argv)

    if args.quick:
        shape, n_obs, n_test, ranks = (100, 80, 6), 8_000, 2_000, [1, 3, 5, 8]
    else:
        shape, n_obs, n_test, ranks = (500, 400, 12), 50_000, 10_000, [1, 2, 3, 4, 5, 6, 8, 10]
    # The same seed without noise gives the same coordinates and the noiseless values.
    coords, values = make_low_rank_entries(
        shape, args.rank, n_obs, noise=args.noise, random_state=0
    )
    _, clean = make_low_rank_entries(shape, args.rank, n_obs, noise=0.0, random_state=0)
    noise_std = rmse(values, clean)
    X_train, X_test, y_train, y_test, _, clean_test = train_test_split(
        coords, values, clean, test_size=n_test, random_state=0
    )
    print(
        f"ratings tensor {shape}, CP rank {args.rank}, noise std {noise_std:.3f} "
        f"(rating std {values.std():.3f}); {len(y_train)} training, {len(y_test)} test entries"
    )

    search = GridSearchCV(
        TensorCompletionRegressor(
            "cp", tensor_shape=shape, max_iter=100, tol=1e-5, alpha=1.0, random_state=0
        ),
        {"rank": ranks},
        cv=3,
        scoring="neg_root_mean_squared_error",
        return_train_score=True,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    seconds = time.perf_counter() - start

    results = search.cv_results_
    print(f"\n{'rank':>4} {'train RMSE':>11} {'valid RMSE':>11} {'+/-':>7} {'fit (s)':>8}")
    for k, rank in enumerate(results["param_rank"]):
        marker = "  <- best" if rank == search.best_params_["rank"] else ""
        print(
            f"{rank:>4} {-results['mean_train_score'][k]:>11.4f} "
            f"{-results['mean_test_score'][k]:>11.4f} {results['std_test_score'][k]:>7.4f} "
            f"{results['mean_fit_time'][k]:>8.2f}{marker}"
        )
    prediction = search.predict(X_test)
    print(
        f"\ngrid search: {seconds:.1f} s, best rank {search.best_params_['rank']} "
        f"(true {args.rank})"
    )
    print(
        f"test RMSE {rmse(prediction, y_test):.4f} vs noise std {noise_std:.4f} "
        f"(ratio {rmse(prediction, y_test) / noise_std:.3f}); RMSE against the noiseless "
        f"tensor {rmse(prediction, clean_test):.4f}"
    )

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ranks = np.array(results["param_rank"], dtype=int)
    ax.errorbar(
        ranks,
        -results["mean_test_score"],
        yerr=results["std_test_score"],
        marker="o",
        capsize=3,
        label="validation (3-fold)",
    )
    ax.plot(ranks, -results["mean_train_score"], marker=".", ls="--", label="training")
    ax.axhline(noise_std, color="k", lw=0.8, ls=":", label="noise std")
    ax.axvline(args.rank, color="C3", lw=0.8, ls=":", label=f"true rank {args.rank}")
    ax.set_yscale("log")
    ax.set_xlabel("CP rank")
    ax.set_ylabel("RMSE")
    ax.set_title(f"ratings {shape}, {len(y_train)} training entries", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
