"""Memory and time of one full-data ALS sweep on fully connected networks (issue 18 item 3).

For each case: the planned peak (network_memory), the measured tracemalloc peak of one sweep,
both divided by the bytes of the data plus the network, the seconds of one sweep (measured
without tracemalloc), the flops of the sweep's normal equations (every core's E^T E and X E,
the BLAS floor) and the planned flops of the whole sweep (network_flops: the environments'
contractions too). Cases whose planned flops exceed ``--max-flops`` are planned only (a sweep
of rank 2 at order 10 plans about 2.5e14 flops: hours on a laptop core).

Run: ``python benchmarks/bench_network_memory.py`` (about a minute).
"""

import argparse
import math
import time
import tracemalloc

import numpy as np

from tnml.decompositions import (
    fully_connected_adjacency,
    network_als,
    network_flops,
    network_memory,
    random_network,
)


def normal_equation_flops(network):
    """Flops of every core's E^T E and X E: rows x bonds x (bonds + mode size), twice."""
    total = math.prod(network.shape)
    flops = 0
    for core in network.cores:
        size, bonds = core.shape[0], core.size // core.shape[0]
        flops += 2 * (total // size) * bonds * (bonds + size)
    return flops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-flops", type=float, default=1e11)
    args = parser.parse_args()
    print(f"{'case':<16}{'planned/x':>10}{'peak/x':>8}{'s/sweep':>9}{'gram GF':>9}{'sweep GF':>9}")
    for order, rank in [(8, 2), (8, 3), (10, 2)]:
        shape = (4,) * order
        A = fully_connected_adjacency(shape, rank)
        net = random_network(A, random_state=0)
        size = 8 * (math.prod(shape) + net.n_params)
        planned = network_memory(A, None, shape) / size
        floor, sweep = normal_equation_flops(net), network_flops(A, None, shape)
        name = f"4^{order} rank {rank}"
        if sweep > args.max_flops:
            print(
                f"{name:<16}{planned:>10.1f}{'-':>8}{'-':>9}{floor / 1e9:>9.1f}{sweep / 1e9:>9.1f}"
            )
            continue
        X = np.random.default_rng(0).standard_normal(shape)
        network_als(X, A, max_iter=1, random_state=0)  # planned and compiled once
        start = time.perf_counter()
        network_als(X, A, max_iter=1, random_state=0)
        seconds = time.perf_counter() - start
        tracemalloc.start()
        network_als(X, A, max_iter=1, random_state=0)
        peak = tracemalloc.get_traced_memory()[1] / size
        tracemalloc.stop()
        print(
            f"{name:<16}{planned:>10.1f}{peak:>8.1f}{seconds:>9.2f}"
            f"{floor / 1e9:>9.1f}{sweep / 1e9:>9.1f}"
        )


if __name__ == "__main__":
    main()
