"""Under-sampled completion (issue 20, item 5): 10^6 observations of a 20,000 x 30,000 x 500
CP-rank-6 tensor with 5% noise (3.3 observations per parameter), fitted by
``TensorCompletionRegressor(model="cp", rank=6)``, scored on 10^5 held-out entries.

Target: held-out RMSE below the standard deviation of the values (never worse than predicting
the mean), in <= 30 s. Prints, per data seed, RMSE / std, RMSE / noise, the rank fitted and the
seconds; exit status 1 when a target is missed.

Run::

    python benchmarks/bench_under_sampled.py --seeds 3
"""

import argparse
import sys
import time
import warnings

import numpy as np

import tnml
from tnml.datasets import make_low_rank_entries

SHAPE = (20_000, 30_000, 500)
RANK = 6
N_TRAIN, N_TEST = 1_000_000, 100_000
NOISE = 0.05


def run(seed):
    coords, values = make_low_rank_entries(
        SHAPE, RANK, N_TRAIN + N_TEST, noise=NOISE, random_state=seed
    )
    train, test = slice(None, N_TRAIN), slice(N_TRAIN, None)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the under-sampling warning, expected
        model = tnml.TensorCompletionRegressor(
            model="cp", rank=RANK, tensor_shape=SHAPE, random_state=seed
        ).fit(coords[train], values[train])
    seconds = time.perf_counter() - start
    error = model.predict(coords[test]) - values[test]
    rmse = float(np.sqrt(np.mean(error**2)))
    std = float(values[test].std())
    noise = NOISE * float(np.sqrt(np.mean(values**2)))  # make_low_rank_entries' noise scale
    return rmse / std, rmse / noise, model.rank_, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{SHAPE} CP rank {RANK}, {N_TRAIN} observations, {NOISE:.0%} noise")
    print(f"{'seed':>4} {'RMSE/std':>9} {'RMSE/noise':>10} {'rank_':>5} {'seconds':>8}")
    ok = True
    for seed in range(args.seeds):
        over_std, over_noise, rank, seconds = run(seed)
        print(f"{seed:>4} {over_std:>9.4f} {over_noise:>10.2f} {rank!s:>5} {seconds:>8.1f}")
        ok &= over_std < 1.0 and seconds <= 30.0
    print("target RMSE < std, <= 30 s:", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
