"""tnml vs TensorLy, side by side in one process: CP-ALS, Tucker-HOOI, TT-SVD, TR-ALS.

Data sets: (a) Indian Pines 145x145x200 (bundled with TensorLy), (b) a random 200x200x200 tensor
of CP rank 20, (c) an order-6 tensor of 10^6 entries (a (10,)*6 grid from a random TT of rank 4
plus 1% noise). Both libraries get the same tensor and, where the algorithm takes one, the same
initialisation; timings are the median of ``--repeats`` runs, float64, and ratios are reported
because this machine is shared and noisy. CP-ALS is also put against its floor: a dimension-tree
sweep costs two GEMMs of X against an (n x R) matrix, and one such GEMM is timed here too.

Run: ``python benchmarks/bench_decompositions.py [--quick]``. Exits 1 if a target is missed.
"""

import argparse
import statistics
import sys
import time

import numpy as np
import tensorly as tl
from tensorly.decomposition import parafac, tensor_ring_als, tensor_train, tucker

from tnml.datasets import load_indian_pines
from tnml.decompositions import TRTensor, cp_als, random_cp, tr_als, tt_svd, tucker_hooi
from tnml.decompositions._linalg import split_point

TARGETS = {"CP-ALS": 3.0, "Tucker-HOOI": 2.0, "TT-SVD": 1.0, "TR-ALS": 3.0}


def timed(func, repeats):
    """Median wall time of ``repeats`` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def rel_error(X, X_hat):
    return float(np.linalg.norm(X - X_hat) / np.linalg.norm(X))


def datasets(quick):
    rng = np.random.default_rng(0)
    X = load_indian_pines()
    yield "Indian Pines 145x145x200", X, {"cp": 10, "tucker": 10, "tt": 10, "tr": 5}
    n = 120 if quick else 200
    X = random_cp((n, n, n), 20, random_state=0).to_tensor()
    yield f"random {n}^3, CP rank 20", X, {"cp": 20, "tucker": 20, "tt": 20, "tr": 5}
    from tnml.decompositions import TTTensor

    cores = [rng.standard_normal((1 if k == 0 else 4, 10, 1 if k == 5 else 4)) for k in range(6)]
    X = TTTensor(cores).to_tensor()
    X = X + 0.01 * np.linalg.norm(X) / 1e3 * rng.standard_normal(X.shape)
    yield "order-6 10^6 entries (TT rank 4)", X, {"cp": 10, "tucker": 4, "tt": 4, "tr": 3}


def bench_cp(X, rank, n_iter, repeats):
    init = random_cp(X.shape, rank, random_state=12345)  # not the seed that made (b)
    t_ours, (cp, info) = timed(lambda: cp_als(X, rank, max_iter=n_iter, tol=0, init=init), repeats)
    n_iter = info.n_iter  # an exact fit stops early; TensorLy runs the same number of sweeps
    t_tl, tl_cp = timed(
        lambda: parafac(X, rank, n_iter_max=n_iter, tol=0, init=init.to_tensorly()), repeats
    )
    # The same-size GEMM: X as a matrix at the dimension-tree cut, times an (n x R) matrix.
    p = split_point(X.shape)
    X_matrix = X.reshape(int(np.prod(X.shape[:p])), -1)
    right = np.random.default_rng(1).random((X_matrix.shape[1], rank))
    t_gemm, _ = timed(lambda: X_matrix @ right, max(repeats, 5))
    per_it, per_it_tl = t_ours / info.n_iter, t_tl / n_iter
    flops = 4 * X.size * rank  # two GEMMs per sweep; the rest is O((sum of halves) * R)
    floor = (
        f"{flops / per_it / 1e9:.1f} GFLOP/s, {2 * X.nbytes / per_it / 1e9:.1f} GB/s; "
        f"same-size GEMM {2 * X.size * rank / t_gemm / 1e9:.1f} GFLOP/s -> sweep = "
        f"{per_it / (2 * t_gemm):.2f}x the two-GEMM floor"
    )
    return (
        per_it * 1e3,
        per_it_tl * 1e3,
        info.error,
        rel_error(X, tl.cp_to_tensor(tl_cp)),
        "ms/iter",
        floor,
    )


def bench_tucker(X, rank, n_iter, repeats):
    ranks = tuple(min(rank, d) for d in X.shape)
    t_ours, (tk, info) = timed(lambda: tucker_hooi(X, ranks, max_iter=n_iter, tol=0), repeats)
    n_iter = info.n_iter
    t_tl, tl_tk = timed(lambda: tucker(X, ranks, n_iter_max=n_iter, tol=0), repeats)
    return (
        t_ours * 1e3,
        t_tl * 1e3,
        info.error,
        rel_error(X, tl.tucker_to_tensor(tl_tk)),
        f"ms (init + {n_iter} sweeps)",
        "",
    )


def bench_tt(X, rank, repeats):
    t_ours, tt = timed(lambda: tt_svd(X, rank=rank)[0], repeats)
    t_tl, tl_tt = timed(lambda: tensor_train(X, rank), repeats)
    return (
        t_ours * 1e3,
        t_tl * 1e3,
        rel_error(X, tt.to_tensor()),
        rel_error(X, tl.tt_to_tensor(tl_tt)),
        "ms",
        "",
    )


def bench_tr(X, rank, n_iter, repeats):
    # tensor_ring_als takes no init: give tnml the very cores it draws from the same seed.
    init = tl.random.random_tr(X.shape, rank, random_state=np.random.RandomState(0))
    start = TRTensor(list(init.factors))
    t_ours, (tr, info) = timed(lambda: tr_als(X, rank, max_iter=n_iter, tol=0, init=start), repeats)
    n_iter = info.n_iter
    t_tl, tl_tr = timed(
        lambda: tensor_ring_als(X, rank, n_iter_max=n_iter, tol=0, random_state=0), repeats
    )
    return (
        t_ours / n_iter * 1e3,
        t_tl / n_iter * 1e3,
        info.error,
        rel_error(X, tl.tr_to_tensor(tl_tr)),
        f"ms/iter ({n_iter} iters, same init)",
        "",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller tensors, fewer repeats")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    tl.set_backend("numpy")
    missed = []
    header = (
        f"{'data':<34} {'algorithm':<12} {'tnml':>10} {'TensorLy':>10} {'speed-up':>9} "
        f"{'err tnml':>10} {'err TL':>10}  unit"
    )
    print(header)
    print("-" * len(header))
    for name, X, ranks in datasets(args.quick):
        rows = {
            "CP-ALS": bench_cp(X, ranks["cp"], 10, repeats),
            "Tucker-HOOI": bench_tucker(X, ranks["tucker"], 5, repeats),
            "TT-SVD": bench_tt(X, ranks["tt"], repeats),
            "TR-ALS": bench_tr(X, ranks["tr"], 5, repeats),
        }
        for algorithm, (ours, theirs, err, err_tl, unit, note) in rows.items():
            ratio = theirs / ours
            ok = ratio >= TARGETS[algorithm] and err <= err_tl * (1 + 1e-6) + 1e-12
            if not ok:
                missed.append(
                    f"{algorithm} on {name}: {ratio:.2f}x (target "
                    f"{TARGETS[algorithm]}x), error {err:.4g} vs {err_tl:.4g}"
                )
            print(
                f"{name:<34} {algorithm:<12} {ours:>10.1f} {theirs:>10.1f} {ratio:>8.2f}x "
                f"{err:>10.4g} {err_tl:>10.4g}  {unit}{'' if ok else '  <-- MISSED'}"
            )
            if note:
                print(f"{'':<34} {'':<12} {note}")
        sys.stdout.flush()
    print()
    if missed:
        print("targets missed:\n  " + "\n  ".join(missed))
        return 1
    print(
        "all targets met: CP-ALS >= 3x, Tucker-HOOI >= 2x, TT-SVD >= 1x, TR-ALS >= 3x "
        "(at equal or better error)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
