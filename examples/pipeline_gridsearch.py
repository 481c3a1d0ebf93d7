"""Tucker features in a scikit-learn pipeline, with the Tucker rank chosen by GridSearchCV.

Each 8 x 8 digit is projected on the Tucker factors learned from the training images
(``tnml.Tucker(rank=(r, r), tensor_shape=(8, 8))`` keeps r x r core coordinates as features) and
a logistic regression classifies those features. ``GridSearchCV`` (3-fold) picks r. It prints
the grid, the test accuracy of the chosen pipeline, and writes a figure of the cross-validated
accuracy against the number of features.

Run::

    python examples/pipeline_gridsearch.py [--output pipeline_gridsearch.png] [--quick]

About ten seconds on 2 CPU cores (``--quick``: 600 images and three ranks).
"""

import argparse
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from tnml import Tucker  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="pipeline_gridsearch.png", help="PNG to write")
    parser.add_argument("--quick", action="store_true", help="small run (smoke test)")
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    ranks = [1, 3, 5] if args.quick else [1, 2, 3, 4, 5, 6, 7, 8]
    if args.quick:
        X_train, y_train = X_train[:600], y_train[:600]
    pipeline = Pipeline(
        [
            ("tucker", Tucker(tensor_shape=(8, 8))),
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(max_iter=2000)),
        ]
    )
    search = GridSearchCV(pipeline, {"tucker__rank": [(r, r) for r in ranks]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    scores = search.cv_results_["mean_test_score"]
    print(f"{'rank':>8s} {'features':>8s} {'cv acc':>7s}")
    for r, score in zip(ranks, scores):
        print(f"{f'({r}, {r})':>8s} {r * r:8d} {score:7.4f}")
    print(
        f"best: {search.best_params_['tucker__rank']}, test accuracy "
        f"{search.score(X_test, y_test):.4f}"
    )

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r * r for r in ranks], scores, "o-")
    ax.set_xlabel("Tucker features (r x r core)")
    ax.set_ylabel("3-fold CV accuracy")
    ax.set_title("Tucker -> LogisticRegression on digits")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
