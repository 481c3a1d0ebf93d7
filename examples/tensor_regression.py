"""Image-valued predictors: low-rank tensor regression against ridge on the flattened pixels.

Each sample is a 32 x 32 noise image X_n and its response is y_n = <W, X_n> + noise, where the
weight image W is a cross (rank 2). With few samples (fewer than the 1024 pixels) ridge
regression on the flattened images cannot find W; CP, Tucker and tensor-train regressors of
rank 2 (``tnml.CPRegressor`` etc.) estimate 2 x 2 x 32 numbers instead of 1024 and recover it.
It prints the test R^2 of each model and writes a figure of the true and estimated weights.

Run::

    python examples/tensor_regression.py [--output tensor_regression.png] [--quick]

A few seconds on 2 CPU cores (``--quick``: 16 x 16 images).
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import RidgeCV  # noqa: E402

from tnml import CPRegressor, TTRegressor, TuckerRegressor  # noqa: E402


def cross(size):
    W = np.zeros((size, size))
    third = size // 3
    W[third : 2 * third, :] = 1.0
    W[:, third : 2 * third] = 1.0
    return W


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="tensor_regression.png", help="PNG to write")
    parser.add_argument("--quick", action="store_true", help="small images (smoke test)")
    args = parser.parse_args(argv)

    size, n_train, n_test = (16, 150, 300) if args.quick else (32, 500, 1000)
    rng = np.random.default_rng(0)
    W = cross(size)
    X = rng.standard_normal((n_train + n_test, size, size))
    signal = np.einsum("nij,ij->n", X, W)
    y = signal + 0.5 * signal.std() * rng.standard_normal(len(X))
    X_train, X_test, y_train, y_test = X[:n_train], X[n_train:], y[:n_train], y[n_train:]

    models = {
        "ridge (flattened)": RidgeCV(alphas=np.logspace(-2, 4, 13)),
        "CPRegressor(rank=2)": CPRegressor(rank=2),
        "TuckerRegressor(rank=2)": TuckerRegressor(rank=2),
        "TTRegressor(rank=2)": TTRegressor(rank=2),
    }
    estimates = {}
    print(f"{n_train} training images of {size} x {size}")
    print(f"{'model':26s} {'test R2':>8s}")
    for name, model in models.items():
        if name.startswith("ridge"):
            model.fit(X_train.reshape(n_train, -1), y_train)
            score = model.score(X_test.reshape(n_test, -1), y_test)
            estimates[name] = model.coef_.reshape(size, size)
        else:
            model.fit(X_train, y_train)
            score = model.score(X_test, y_test)
            estimates[name] = model.coef_
        print(f"{name:26s} {score:8.4f}")

    fig, axes = plt.subplots(1, len(estimates) + 1, figsize=(3 * (len(estimates) + 1), 3.2))
    for ax, (title, image) in zip(axes, [("true W", W), *estimates.items()]):
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
