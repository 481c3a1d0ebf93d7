"""Completion past one machine: TensorCompletionRegressor on a Dask LocalCluster.

Observations of a 10^5 x 10^5 x 10^3 CP-rank-10 tensor with 5% noise (sigma = 0.05 times the
root mean square of the entries) are generated on the workers, chunk by chunk from a seed (the
client never holds them), and fitted by the distributed masked CP-ALS behind
``TensorCompletionRegressor.fit`` on dask arrays (:mod:`tnml.decompositions.distributed`, from
a random start, ``tol=0``, ``--max-iter`` sweeps). Per size it prints: the layout's seconds
(the shuffle into row blocks), seconds per sweep, peak RSS of the client process (which also
runs the LocalCluster's scheduler) and of each worker, the bytes per observation of the row
blocks (all modes) and of the workers' peaks above their idle RSS, and the held-out RMSE over
the noise. With ``--in-memory N`` the in-memory estimator is run beside it on the same
observations up to N of them (``cp_complete``, same start; the observations are gathered to the
client for that purpose only, after the distributed measurement). Workers do not spill to disk
(the blocks are the working set) and are restarted past 95% of their memory limit.

Targets (issue 20): seconds per sweep linear in the observations (log-log slope <= 1.1), client
peak RSS independent of them (<= 1 GB), RMSE <= 1.1 x noise at 10^8 (at 10^6 and 10^7 there are
0.5 and 5 observations per parameter: no method recovers the tensor there), and at 10^6 no more
than 3x the in-memory time per sweep.

    python benchmarks/bench_completion_dask.py --sizes 1e6,1e7,1e8 [--workers 2]
        [--memory-limit 5.5GB] [--max-iter 10] [--in-memory 1e6] [--json out.json]
"""

import argparse
import json
import resource
import sys
import time

import numpy as np

SHAPE = (10**5, 10**5, 10**3)
MEMORY_CONFIG = {"target": False, "spill": False, "pause": 0.9, "terminate": 0.95}


def _peak_rss_mb():
    """Peak resident memory of this process since the last :func:`_reset_peak` (Linux's
    VmHWM; elsewhere the lifetime peak)."""
    try:
        with open("/proc/self/status") as stream:
            for line in stream:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _coordinates(n, seed, block_id=None):
    rng = np.random.default_rng([seed, block_id[0]])
    return np.stack([rng.integers(0, d, n) for d in SHAPE], axis=1)


def _values(coords, truth, sigma, seed, block_id=None):
    noise = np.random.default_rng([seed, block_id[0], 1]).standard_normal(coords.shape[0])
    return truth.entries(coords) + sigma * noise


def observations(n, chunk, truth, sigma, seed):
    """Dask coordinates and values, each chunk generated on a worker from its own seed.

    ``truth`` is a future of the true CPTensor (scattered once, not copied into every task).
    """
    import dask.array as da

    counts = tuple(min(chunk, n - begin) for begin in range(0, n, chunk))
    sizes = da.from_array(np.array(counts), chunks=1)
    coords = sizes.map_blocks(
        lambda c, block_id=None: _coordinates(int(c[0]), seed, block_id),
        new_axis=1,
        chunks=(counts, (len(SHAPE),)),
        dtype=np.int64,
    )
    values = coords.map_blocks(_values, truth, sigma, seed, drop_axis=1, dtype=np.float64)
    return coords, values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7,1e8", help="observations, comma-separated")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--memory-limit", default="5.5GB", help="per worker")
    parser.add_argument("--chunk", type=float, default=1e6, help="observations per chunk")
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--n-test", type=int, default=10**5)
    parser.add_argument("--in-memory", type=float, default=1e6, help="largest size run in memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from tnml.decompositions import Observations, cp_complete, random_cp
    from tnml.decompositions.distributed import (
        cp_complete_distributed,
        distribute_observations,
        entries_distributed,
    )

    truth = random_cp(SHAPE, args.rank, random_state=args.seed)
    probe = _coordinates(10**5, args.seed + 7, (0,))
    sigma = args.noise * float(np.sqrt(np.mean(truth.entries(probe) ** 2)))
    # A random start in both (the spectral start's cost is no sweep's); tol=0 runs max_iter.
    params = dict(init="random", random_state=args.seed, max_iter=args.max_iter, tol=0)
    print(
        f"{SHAPE} CP rank {args.rank}, noise {args.noise} x RMS; {args.workers} workers x "
        f"{args.threads} threads, {args.memory_limit} each; {args.max_iter} sweeps",
        flush=True,
    )
    rows = []
    # The blocks are what a fit needs in memory: no spilling them to disk (which Dask starts at
    # 60% of the limit); a worker past 95% of its limit is still restarted.
    config = {"distributed.worker.memory." + k: v for k, v in MEMORY_CONFIG.items()}
    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=args.threads,
            memory_limit=args.memory_limit,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        shared_truth = client.scatter(truth, broadcast=True)
        for size in [int(float(s)) for s in args.sizes.split(",")]:
            client.run(_reset_peak)
            _reset_peak()
            idle = sum(client.run(_rss_mb).values())
            X, y = observations(size, int(args.chunk), shared_truth, sigma, args.seed)
            start = time.perf_counter()
            distributed = distribute_observations(X, y, SHAPE)
            layout = time.perf_counter() - start
            block_bytes = sum(
                client.gather(client.map(sys.getsizeof, sum(distributed.blocks, []), pure=False))
            )
            start = time.perf_counter()
            fitted, info = cp_complete_distributed(distributed, args.rank, **params)
            seconds = time.perf_counter() - start
            distributed.release()
            X_test, y_test = observations(
                args.n_test, args.n_test, shared_truth, sigma, args.seed + 1
            )
            predicted = entries_distributed(fitted, X_test)
            rmse = float(da.sqrt(da.mean((predicted - y_test) ** 2)).compute())
            row = {
                "n_obs": size,
                "layout_seconds": round(layout, 2),
                "fit_seconds": round(seconds, 2),
                "n_iter": info.n_iter,
                "seconds_per_sweep": round(seconds / info.n_iter, 3),
                "client_peak_mb": round(_peak_rss_mb()),
                "worker_peak_mb": [round(v) for v in client.run(_peak_rss_mb).values()],
                "block_bytes_per_obs": round(block_bytes / size, 1),
                "rmse_over_noise": round(rmse / sigma, 3),
            }
            if size <= args.in_memory:
                coords, values = (np.asarray(a) for a in client.compute([X, y], sync=True))
                test = X_test.compute()
                start = time.perf_counter()
                local, local_info = cp_complete(
                    Observations(coords, values, SHAPE), args.rank, **params
                )
                local_seconds = time.perf_counter() - start
                residual = local.entries(test) - y_test.compute()
                row["in_memory_seconds_per_sweep"] = round(local_seconds / local_info.n_iter, 3)
                row["in_memory_rmse_over_noise"] = round(
                    float(np.sqrt(np.mean(residual**2))) / sigma, 3
                )
                row["dask_over_in_memory"] = round(
                    row["seconds_per_sweep"] / row["in_memory_seconds_per_sweep"], 2
                )
            row["worker_bytes_per_obs"] = round(
                (sum(row["worker_peak_mb"]) - idle) * 2**20 / size, 1
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    if len(rows) > 1:
        sizes = np.log([r["n_obs"] for r in rows])
        times = np.log([r["seconds_per_sweep"] for r in rows])
        ends = (times[-1] - times[0]) / (sizes[-1] - sizes[0])
        fitted = np.polyfit(sizes, times, 1)[0]
        print(
            f"log-log slope of seconds per sweep: {ends:.2f} between the ends, {fitted:.2f} "
            f"least squares (target <= 1.1)"
        )
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(rows, stream, indent=1)


def _rss_mb():
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak():
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) of this process.
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
    except OSError:
        pass


if __name__ == "__main__":
    main()
