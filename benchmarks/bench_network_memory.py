"""Memory and time of one full-data ALS sweep on fully connected networks (issue 18 item 3).

For each case: the planned peak (network_memory), the measured tracemalloc peak of one sweep,
both divided by the bytes of the data plus the network, the seconds of one sweep (measured
without tracemalloc), and the flops of the sweep's normal equations (every core's E^T E and
X E, the BLAS floor) beside the environments' contraction flops of the plan. Cases whose
planned flops exceed ``--max-flops`` are planned only (a sweep of rank 2 at order 10 plans
about 1e14 flops: hours on a laptop core).

Run: ``python benchmarks/bench_network_memory.py`` (about a minute).
"""

import argparse
import math
import time
import tracemalloc

import numpy as np

from tnml.decompositions import fully_connected_adjacency, network_als, network_memory
from tnml.decompositions.network import als


def planned_flops(adjacency, shape):
    graph = als._graph(als.check_adjacency(adjacency), tuple(range(len(shape))))
    cap = als._fit_cap(graph)
    total, floor = 0, 0
    for k in range(graph.n_cores):
        rows, bonds = math.prod(shape) // shape[k], graph.bond_sizes[k]
        floor += 2 * rows * bonds * (bonds + shape[k])
        info, _ = als._sliced_environment(graph, k, cap)
        total += info.flops
    return floor, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-flops", type=float, default=1e11)
    args = parser.parse_args()
    print(f"{'case':<16}{'planned/x':>10}{'peak/x':>8}{'s/sweep':>9}{'gram GF':>9}{'env GF':>9}")
    for order, rank in [(8, 2), (8, 3), (10, 2)]:
        shape = (4,) * order
        A = fully_connected_adjacency(shape, rank)
        graph = als._graph(als.check_adjacency(A), tuple(range(order)))
        n_params = sum(math.prod(s) for s in graph.core_shapes)
        size = 8 * (math.prod(shape) + n_params)
        planned = network_memory(A, None, shape) / size
        floor, env = planned_flops(A, shape)
        name = f"4^{order} rank {rank}"
        if floor + env > args.max_flops:
            print(f"{name:<16}{planned:>10.1f}{'-':>8}{'-':>9}{floor / 1e9:>9.1f}{env / 1e9:>9.1f}")
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
            f"{floor / 1e9:>9.1f}{env / 1e9:>9.1f}"
        )


if __name__ == "__main__":
    main()
