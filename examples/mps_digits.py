"""MPS classifier on the 8 x 8 digits: test accuracy and training time against bond dimension.

A matrix product state over the 64 pixels (feature map [cos(pi x / 2), sin(pi x / 2)], the label
index on the central site) is trained by two-site DMRG sweeps (Stoudenmire & Schwab, 2016) at
several bond dimensions on scikit-learn's digits (75/25 split, random_state=0). It prints a
table and writes a figure of test accuracy and fit time against the bond dimension.

``--size 14`` or ``--size 28`` upsamples the images first (``skimage.transform.resize``): a
chain of 196 or 784 sites, the paper's MNIST scales.

Run::

    python examples/mps_digits.py [--output mps_digits.png] [--size 8] [--quick]

The default (bond dimensions 4 to 20, one sweep each) takes about a minute on 2 CPU cores;
``--quick`` trains on 500 images at bond dimensions 8 and 12 (a few seconds).
"""

import argparse
import time
import warnings

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from tnml import MPSClassifier  # noqa: E402
from tnml.datasets import load_digits_images  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="mps_digits.png", help="PNG to write")
    parser.add_argument("--sweeps", type=int, default=1, help="DMRG sweeps per model")
    parser.add_argument("--quick", action="store_true", help="small run (smoke test)")
    parser.add_argument("--size", type=int, default=8, help="image side (8: the originals)")
    args = parser.parse_args(argv)

    images, target = load_digits_images()
    if args.size != 8:
        from skimage.transform import resize

        images = np.stack([resize(image, (args.size, args.size)) for image in images])
    X = images.reshape(len(images), -1)  # one MPS site per pixel, row by row
    X_train, X_test, y_train, y_test = train_test_split(X, target, test_size=0.25, random_state=0)
    bond_dims = [8, 12] if args.quick else [4, 8, 12, 16, 20]
    if args.quick:
        X_train, y_train = X_train[:500], y_train[:500]
    rows = []
    print(f"{'bond_dim':>8s} {'test acc':>9s} {'fit s':>7s} {'parameters':>11s}")
    for bond_dim in bond_dims:
        # Well below the number of classes (10) the bonds squeeze the label index: a larger ridge
        # keeps the bond tensors truncatable (see MPSClassifier's alpha).
        alpha = 1e-2 if bond_dim <= 4 else 1e-4
        model = MPSClassifier(bond_dim=bond_dim, alpha=alpha, max_iter=args.sweeps, random_state=0)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        with warnings.catch_warnings():
            # pixels that are blank in every training image are clipped, as documented
            warnings.filterwarnings("ignore", "X has features outside the range seen in fit")
            accuracy = model.score(X_test, y_test)
        n_params = model.decomposition_.n_params
        rows.append((bond_dim, accuracy, seconds))
        print(f"{bond_dim:8d} {accuracy:9.4f} {seconds:7.2f} {n_params:11d}")

    fig, left = plt.subplots(figsize=(6, 4))
    left.plot([r[0] for r in rows], [r[1] for r in rows], "o-", color="C0")
    left.set_xlabel("bond dimension")
    left.set_ylabel("test accuracy", color="C0")
    right = left.twinx()
    right.plot([r[0] for r in rows], [r[2] for r in rows], "s--", color="C1")
    right.set_ylabel("training time (s)", color="C1")
    left.set_title(f"MPSClassifier on {args.size} x {args.size} digits ({args.sweeps} sweep(s))")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
