"""Compression vs accuracy of every format on a real hyperspectral cube.

Fits CP, Tucker, tensor-train and tensor-ring models of growing rank to Indian Pines
(145 x 145 x 200, bundled with TensorLy) and plots the relative error against the fraction of
parameters kept. Writes ``compression_tradeoff.png`` (or the path given as the first argument).

Run: ``python examples/compression_tradeoff.py [out.png]``
"""

import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import tnml  # noqa: E402
from tnml.datasets import load_indian_pines  # noqa: E402


def sweep(X):
    models = {
        "CP": [tnml.CP(rank=r, max_iter=30, random_state=0) for r in (2, 5, 10, 20)],
        "Tucker": [tnml.Tucker(rank=(r, r, r), max_iter=10) for r in (2, 5, 10, 20)],
        "TensorTrain": [tnml.TensorTrain(rank=r) for r in (2, 5, 10, 20)],
        "TensorRing": [tnml.TensorRing(rank=r, max_iter=10, random_state=0) for r in (2, 3, 5)],
    }
    results = {}
    for name, estimators in models.items():
        points = []
        for model in estimators:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X)
            points.append((model.decomposition_.compression_ratio(), model.reconstruction_error_))
            ratio, error = points[-1]
            print(f"{name:<12} params/entries {ratio:.5f}  relative error {error:.4f}")
        results[name] = points
    return results


def main(out="compression_tradeoff.png"):
    X = load_indian_pines()
    results = sweep(X / X.max())
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in results.items():
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("parameters / entries")
    ax.set_ylabel("relative error")
    ax.set_title("Indian Pines 145x145x200")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
