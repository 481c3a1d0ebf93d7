"""TensorImputer against scikit-learn's imputers, side by side in one process, same masks.

(a) Digits (1797 x 64) with 30% and 60% of the pixels missing (uniform mask, seed 0): 5-fold
pipeline accuracy (imputer + StandardScaler + LogisticRegression; the folds of
``StratifiedKFold(5, shuffle=True, random_state=0)``) and the RMSE on the missing entries of
each test fold, the imputer fitted on the training fold only (what ``cross_val_score`` of the
pipeline does).
(b) Indian Pines as rows = pixels (21,025 x 200 bands, scaled to [0, 1]) with 50% and 90%
missing: one split, 80% of the pixels to fit and 20% to transform; RMSE on the missing test
entries, fit and transform times. ``IterativeImputer`` runs there with
``n_nearest_features=20``: with its defaults it did not finish in 10 minutes (run
``--iterative-defaults`` to try it with a 10-minute limit).

Imputers: ``SimpleImputer`` (mean), ``KNNImputer`` (defaults), ``IterativeImputer``
(defaults, ``max_iter=10``), ``TensorImputer("auto")`` and ``TensorImputer(family)`` for
'cp' and 'tt' (the best of them is reported as "best family"; on a matrix of rows every
family that folds in is a low-rank matrix model: 'tucker' is the same model, slower, and 'tr'
the same with r^2 coefficients per row).

Targets (issue 17): TensorImputer("auto") has the lowest RMSE on each data set, a pipeline
accuracy at least KNNImputer's, and a time no more than IterativeImputer's and within 20x
KNNImputer's. Times are wall-clock seconds on this machine (shared machines: compare the
ratios printed side by side, not the absolute values).

Run: ``python benchmarks/bench_imputers.py [--quick] [--iterative-defaults]``; ``--quick``
(digits 30% with 3 folds and Indian Pines 50% on 3,000 pixels) takes a few minutes.
"""

import argparse
import multiprocessing
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401 - registers the class
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import tnml
from tnml.datasets import load_indian_pines

# On a matrix of rows every family that folds in is a low-rank matrix model; 'tr' is left
# out: a ring of two cores of rank r has r^2 coefficients per row for the same model.
# 'tucker' is left out too: the same model as 'cp' there, and 5x slower (478 s on digits 30%).
FAMILIES = ("cp", "tt")
ITERATIVE_LIMIT = 600.0
_DEFAULTS = {}  # whether IterativeImputer's defaults finished on Indian Pines


def imputers(n_nearest=None):
    """The imputers compared, by label."""
    rows = {
        "SimpleImputer": lambda: SimpleImputer(),
        "KNNImputer": lambda: KNNImputer(),
        "IterativeImputer": lambda: IterativeImputer(
            max_iter=10, random_state=0, n_nearest_features=n_nearest
        ),
        "TensorImputer(auto)": lambda: tnml.TensorImputer("auto", random_state=0),
    }
    for family in FAMILIES:
        rows[f"TensorImputer({family})"] = lambda f=family: tnml.TensorImputer(f, random_state=0)
    return rows


def _rmse(truth, completed, missing):
    return float(np.sqrt(np.mean((completed[missing] - truth[missing]) ** 2)))


def digits(ratio, n_folds, labels):
    X_true, y = load_digits(return_X_y=True)
    X = np.where(np.random.default_rng(0).random(X_true.shape) < ratio, np.nan, X_true)
    folds = list(StratifiedKFold(n_folds, shuffle=True, random_state=0).split(X, y))
    table = {}
    for label, make in imputers().items():
        if label not in labels:
            continue
        accuracy, squared, count, fit_s, transform_s = [], 0.0, 0, 0.0, 0.0
        for train, test in folds:
            imputer = make()
            start = time.perf_counter()
            X_train = imputer.fit_transform(X[train])
            fit_s += time.perf_counter() - start
            start = time.perf_counter()
            X_test = imputer.transform(X[test])
            transform_s += time.perf_counter() - start
            missing = np.isnan(X[test])
            squared += float(np.sum((X_test[missing] - X_true[test][missing]) ** 2))
            count += int(missing.sum())
            classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            accuracy.append(classifier.fit(X_train, y[train]).score(X_test, y[test]))
        table[label] = {
            "accuracy": float(np.mean(accuracy)),
            "rmse": float(np.sqrt(squared / count)),
            "fit_s": fit_s,
            "transform_s": transform_s,
            "model": _model(imputer),
        }
        _print_row(f"digits {ratio:.0%}", label, table[label])
    return table


def _model(imputer):
    summary = getattr(imputer, "summary_", None)
    if summary is None:
        return ""
    return f"{summary['model']} rank {summary['rank']} alpha {imputer.alpha_}"


def _run(make, X_train, X_test, out):
    imputer = make()
    start = time.perf_counter()
    imputer.fit(X_train)
    out["fit_s"] = time.perf_counter() - start
    start = time.perf_counter()
    out["completed"] = imputer.transform(X_test)
    out["transform_s"] = time.perf_counter() - start
    out["model"] = _model(imputer)


def _run_limited(make, X_train, X_test, limit):
    """Run in a child process (fork) that is stopped after ``limit`` seconds; None then."""
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        out = manager.dict()
        process = context.Process(target=_run, args=(make, X_train, X_test, out))
        process.start()
        process.join(limit)
        if process.is_alive():
            process.terminate()
            process.join()
            return None
        return dict(out)


def pines(ratio, n_rows, labels, iterative_defaults):
    cube = load_indian_pines()
    X_true = (cube / cube.max()).reshape(-1, cube.shape[2])
    rng = np.random.default_rng(0)
    rows = rng.permutation(X_true.shape[0])[:n_rows]
    X_true = X_true[rows]
    X = np.where(rng.random(X_true.shape) < ratio, np.nan, X_true)
    split = int(0.8 * len(X))
    train, test = slice(0, split), slice(split, None)
    missing = np.isnan(X[test])
    table = {}
    makers = imputers(n_nearest=20)
    if iterative_defaults and "IterativeImputer" in labels and "finished" not in _DEFAULTS:
        # Tried once (on the first ratio): its cost per feature does not depend on the ratio.
        run = _run_limited(imputers()["IterativeImputer"], X[train], X[test], ITERATIVE_LIMIT)
        _DEFAULTS["finished"] = run is not None
        if run is None:
            print(
                f"pines {ratio:.0%}: IterativeImputer with its defaults did not finish in "
                f"{ITERATIVE_LIMIT:.0f} s; using n_nearest_features=20"
            )
    if _DEFAULTS.get("finished"):
        makers["IterativeImputer"] = imputers()["IterativeImputer"]
    for label, make in makers.items():
        if label not in labels:
            continue
        out = {}
        _run(make, X[train], X[test], out)
        table[label] = {
            "rmse": _rmse(X_true[test], out["completed"], missing),
            "fit_s": out["fit_s"],
            "transform_s": out["transform_s"],
            "model": out["model"],
        }
        _print_row(f"pines {ratio:.0%}", label, table[label])
    return table


def _print_row(data, label, row):
    accuracy = f"{row['accuracy']:.4f}" if "accuracy" in row else "   -  "
    print(
        f"{data:<11} {label:<22} {accuracy:>8} {row['rmse']:>9.4f} {row['fit_s']:>8.1f} "
        f"{row['transform_s']:>8.2f}  {row['model']}",
        flush=True,
    )


def check_targets(name, table):
    """The targets of issue 17 on one data set; returns the list of misses."""
    auto = table["TensorImputer(auto)"]
    misses = []
    families = [
        label for label in table if label.startswith("TensorImputer(") and "auto" not in label
    ]
    if families:
        best = min(families, key=lambda label: table[label]["rmse"])
        print(f"{name}: best family {best} RMSE {table[best]['rmse']:.4f}")
    others = {k: v["rmse"] for k, v in table.items() if not k.startswith("TensorImputer")}
    if others and auto["rmse"] > min(others.values()):
        misses.append(f"{name}: auto RMSE {auto['rmse']:.4f} > {min(others.values()):.4f}")
    if "accuracy" in auto and "KNNImputer" in table:
        if auto["accuracy"] < table["KNNImputer"]["accuracy"]:
            misses.append(
                f"{name}: accuracy {auto['accuracy']:.4f} < KNNImputer's "
                f"{table['KNNImputer']['accuracy']:.4f}"
            )

    def total(row):
        return row["fit_s"] + row["transform_s"]

    if "IterativeImputer" in table and total(auto) > total(table["IterativeImputer"]):
        misses.append(
            f"{name}: time {total(auto):.1f} s > IterativeImputer's "
            f"{total(table['IterativeImputer']):.1f} s"
        )
    if "KNNImputer" in table:
        ratio = total(auto) / total(table["KNNImputer"])
        print(f"{name}: TensorImputer(auto) time / KNNImputer time = {ratio:.1f}x")
        if ratio > 20:
            misses.append(f"{name}: time {ratio:.1f}x KNNImputer's (target <= 20x)")
    return misses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for development")
    parser.add_argument(
        "--iterative-defaults",
        action="store_true",
        help="try IterativeImputer's defaults on Indian Pines (10-minute limit) first",
    )
    parser.add_argument("--imputers", nargs="*", default=None, help="labels to run (default all)")
    parser.add_argument(
        "--datasets", nargs="*", default=["digits", "pines"], choices=["digits", "pines"]
    )
    args = parser.parse_args(argv)
    labels = args.imputers or list(imputers())
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    print(
        f"{'data':<11} {'imputer':<22} {'accuracy':>8} {'RMSE':>9} {'fit s':>8} "
        f"{'trans. s':>8}  model"
    )
    misses = []
    ratios = (0.3,) if args.quick else (0.3, 0.6)
    for ratio in ratios if "digits" in args.datasets else ():
        table = digits(ratio, 3 if args.quick else 5, labels)
        misses += check_targets(f"digits {ratio:.0%}", table)
    for ratio in ((0.5,) if args.quick else (0.5, 0.9)) if "pines" in args.datasets else ():
        table = pines(ratio, 3000 if args.quick else 21025, labels, args.iterative_defaults)
        misses += check_targets(f"pines {ratio:.0%}", table)
    for miss in misses:
        print("MISSED:", miss)
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
