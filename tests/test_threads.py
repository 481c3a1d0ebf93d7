"""serial_blas under threads: concurrent fits leave the BLAS thread count as it was."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import tnml.backend
from tnml.backend import serial_blas
from tnml.decompositions import network_als, random_network


class _ProcessWideBLAS:
    """A stand-in for threadpoolctl's controller of a BLAS whose thread count any thread may
    set (OpenBLAS honours only the main thread's calls; others, such as BLIS, do not care)."""

    def __init__(self, threads):
        self.threads = threads

    def limit(self, limits, user_api):
        blas = self

        class Limiter:
            def __init__(self):
                self.original, blas.threads = blas.threads, limits

            def restore_original_limits(self):
                blas.threads = self.original

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.restore_original_limits()

        return Limiter()


def test_contexts_closed_out_of_order_restore_the_callers_setting(monkeypatch):
    # Thread A opens, then B; A closes first, B last. A save-and-restore per context has B
    # restore the 1 that A set, leaving BLAS single-threaded for good.
    blas = _ProcessWideBLAS(threads=4)
    monkeypatch.setattr(tnml.backend, "_THREADPOOLS", blas)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with serial_blas():
            a_in.set()
            b_in.wait(5)
            seen.append(blas.threads)
        a_out.set()

    def second():
        a_in.wait(5)
        with serial_blas():
            b_in.set()
            a_out.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [1]
    assert blas.threads == 4


def _blas_threads():
    counts = {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
    if not counts:
        pytest.skip("threadpoolctl finds no BLAS library")
    return counts


def test_concurrent_fits_in_a_thread_pool_leave_blas_threads_unchanged():
    ring = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
    X = random_network(ring, random_state=0).to_tensor()  # loads BLAS

    def fit(seed):
        with serial_blas():  # nested with the fit's own serial_blas
            return network_als(X, ring, max_iter=5, random_state=seed)[1].error

    with threadpool_limits(limits=2, user_api="blas"):  # so that a stray 1 shows
        before = _blas_threads()
        with ThreadPoolExecutor(max_workers=4) as pool:
            pending = pool.map(fit, range(12))
            main = [fit(seed) for seed in range(12, 16)]  # the main thread fits meanwhile
            errors = list(pending) + main
        assert all(np.isfinite(errors))
        assert _blas_threads() == before
