"""Supervised tensor networks against their peers, side by side in one run.

1. Digits (scikit-learn's 8 x 8 images, 75/25 split, random_state=0): MPSClassifier beside
   LogisticRegression and an RBF SVC. Target: >= 97% test accuracy in <= 60 s of training.
2. Rank-3 CP regression, X of shape (n, 32, 32): tnml's CPRegressor and TuckerRegressor beside
   TensorLy's (same data, same ridge, each library's default stopping rule). Targets: test R^2
   within 0.01 of TensorLy's and >= 3x faster (best of ``--repeats`` fits each, interleaved).
3. Cost of one MPS DMRG sweep against n_samples and against n_sites: the log-log slopes must be
   ~1 (accepted in [0.75, 1.25]); CPU seconds on one BLAS thread, so that the slope measures
   the cost model rather than the machine's load.

Exits 1 when a target is missed. ``--quick`` runs smaller sizes (no targets checked).

    python benchmarks/bench_supervised.py
"""

import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import tnml
from tnml.supervised.mps import feature_map, init_mps, mps_dmrg_sweep


def timed(fit, cpu=False):
    clock = time.process_time if cpu else time.perf_counter
    start = clock()
    model = fit()
    return model, clock() - start


def bench_digits(bond_dim, max_iter):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    rows = []
    for name, model in [
        (
            f"MPSClassifier(bond_dim={bond_dim}, max_iter={max_iter})",
            tnml.MPSClassifier(bond_dim=bond_dim, max_iter=max_iter, random_state=0),
        ),
        ("LogisticRegression", make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))),
        ("SVC(rbf)", make_pipeline(StandardScaler(), SVC())),
    ]:
        cpu_start = time.process_time()
        with warnings.catch_warnings():
            # Pixels constant in the training split fall outside its range in the test split.
            warnings.filterwarnings("ignore", "X has features outside the range seen in fit")
            model, seconds = timed(lambda m=model: m.fit(X_train, y_train))
            accuracy = model.score(X_test, y_test)
        rows.append((name, accuracy, seconds, time.process_time() - cpu_start))
    print("\n== digits: 1347 train / 450 test ==")
    print(f"{'model':45s} {'test acc':>9s} {'fit s':>8s} {'CPU s':>8s}")
    for name, accuracy, seconds, cpu in rows:
        print(f"{name:45s} {accuracy:9.4f} {seconds:8.2f} {cpu:8.2f}")
    accuracy, seconds = rows[0][1], rows[0][2]
    ok = accuracy >= 0.97 and seconds <= 60
    print(
        f"target: MPS accuracy >= 0.97 in <= 60 s: {accuracy:.4f} in {seconds:.1f} s -> "
        f"{'OK' if ok else 'MISSED'}"
    )
    return ok


def bench_regression(n_train, n_test, repeats):
    from tensorly.regression import CPRegressor as TLCPRegressor
    from tensorly.regression import TuckerRegressor as TLTuckerRegressor

    rng = np.random.default_rng(0)
    n = n_train + n_test
    X = rng.standard_normal((n, 32, 32))
    W = sum(np.outer(rng.standard_normal(32), rng.standard_normal(32)) for _ in range(3))
    signal = np.einsum("nij,ij->n", X, W)
    y = signal + 0.1 * signal.std() * rng.standard_normal(n)
    X_train, X_test, y_train, y_test = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
    pairs = [
        # Same ridge; each library's own default stopping rule (tnml: the MSE moves by less
        # than 1e-4 of var(y) in a sweep; TensorLy: ||W|| moves by less than 1e-6 relative).
        (
            "CP rank 3",
            lambda: tnml.CPRegressor(rank=3, alpha=1.0),
            lambda: TLCPRegressor(weight_rank=3, reg_W=1.0, verbose=0, random_state=0),
        ),
        (
            "Tucker rank (3, 3)",
            lambda: tnml.TuckerRegressor(rank=(3, 3), alpha=1.0),
            lambda: TLTuckerRegressor(weight_ranks=[3, 3], reg_W=1.0, verbose=0, random_state=0),
        ),
    ]
    print(f"\n== rank-3 CP regression, X ({n_train} + {n_test}, 32, 32), best of {repeats} ==")
    print(
        f"{'model':20s} {'tnml R2':>9s} {'TL R2':>9s} {'tnml s':>8s} {'TL s':>8s} {'speedup':>8s}"
    )
    ok = True
    for name, ours, theirs in pairs:
        times = {"tnml": [], "tensorly": []}
        for _ in range(repeats):
            for key, make in (("tnml", ours), ("tensorly", theirs)):
                model = make()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    model, seconds = timed(lambda m=model: m.fit(X_train, y_train))
                times[key].append(seconds)
                if key == "tnml":
                    r2_ours = r2_score(y_test, model.predict(X_test))
                else:
                    r2_theirs = r2_score(y_test, model.predict(X_test))
        t_ours, t_theirs = min(times["tnml"]), min(times["tensorly"])
        speedup = t_theirs / t_ours
        good = abs(r2_ours - r2_theirs) <= 0.01 and speedup >= 3
        ok &= good
        print(
            f"{name:20s} {r2_ours:9.5f} {r2_theirs:9.5f} {t_ours:8.3f} {t_theirs:8.3f} "
            f"{speedup:7.1f}x {'OK' if good else 'MISSED'}"
        )
    print("targets: |R2 difference| <= 0.01 and speedup >= 3x")
    return ok


def sweep_seconds(n_samples, n_sites, bond_dim, repeats=2):
    """CPU seconds of one sweep on one BLAS thread: the cost model, not the machine's load."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _sweep_seconds(n_samples, n_sites, bond_dim, repeats)


def _sweep_seconds(n_samples, n_sites, bond_dim, repeats):
    rng = np.random.default_rng(0)
    phi = feature_map(rng.random((n_samples, n_sites)))
    Y = np.eye(2)[rng.integers(0, 2, n_samples)]
    cores, site = init_mps(phi, 2, bond_dim, Y=Y)
    best = np.inf
    for _ in range(repeats):
        start = time.process_time()
        mps_dmrg_sweep([c.copy() for c in cores], site, phi, Y, bond_dim=bond_dim, alpha=1e-4)
        best = min(best, time.process_time() - start)
    return best


def bench_scaling(samples, sites, bond_dim):
    # The first and last log2(bond_dim) bonds are narrower (2, 4, 8, ...): chains much longer
    # than that measure the per-site cost, short ones would bias the n_sites slope upwards.
    print(
        f"\n== MPS sweep cost (bond_dim={bond_dim}, d=2, 2 classes; CPU s on one BLAS thread, "
        f"best of 2) =="
    )
    ok = True
    for label, values, measure in [
        ("n_samples", samples, lambda v: sweep_seconds(v, 16, bond_dim)),
        ("n_sites", sites, lambda v: sweep_seconds(samples[0], v, bond_dim)),
    ]:
        seconds = [measure(v) for v in values]
        slope = np.polyfit(np.log(values), np.log(seconds), 1)[0]
        table = ", ".join(f"{v}: {s:.3f} s" for v, s in zip(values, seconds))
        good = 0.75 <= slope <= 1.25
        ok &= good
        print(f"{label:9s} {table}")
        print(
            f"{label:9s} log-log slope {slope:.2f} (target ~1, accepted [0.75, 1.25]) "
            f"{'OK' if good else 'MISSED'}"
        )
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, targets not checked")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        bench_digits(bond_dim=6, max_iter=1)
        bench_regression(300, 200, repeats=1)
        bench_scaling([200, 400], [8, 16], bond_dim=4)
        print("\nquick run: targets not checked")
        return 0
    results = [
        bench_digits(bond_dim=20, max_iter=1),
        bench_regression(1000, 1000, repeats=args.repeats),
        bench_scaling([2000, 4000, 8000, 16000], [32, 64, 128, 256], bond_dim=16),
    ]
    print("\nall targets met" if all(results) else "\nSOME TARGETS MISSED")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
