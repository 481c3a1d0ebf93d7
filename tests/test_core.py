"""Backend, host guard, configuration and the contraction engine."""

import numpy as np
import pytest

import tnml
from tnml import testing
from tnml.backend import get_namespace, to_numpy
from tnml.contract import cache_info, clear_cache, contraction_info, einsum


def test_namespace_follows_inputs():
    x = testing.asarray(np.ones(3))
    assert get_namespace(np.ones(2), 1.0) is np
    assert get_namespace(x, np.ones(2)) is testing
    assert isinstance(to_numpy(x), np.ndarray)


def test_guard_refuses_implicit_host_copies():
    x = testing.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="implicit conversion"):
        np.asarray(x)
    import scipy.linalg

    with pytest.raises(TypeError):
        scipy.linalg.svd(x)
    assert isinstance(x @ x.T, testing.HostGuardArray)
    assert isinstance(testing.linalg.qr(x)[0], testing.HostGuardArray)
    assert float(x.sum()) == 15.0


def test_einsum_matches_numpy_and_caches(rng):
    a, b, c = rng.random((4, 5)), rng.random((5, 6)), rng.random((6, 3))
    clear_cache()
    result = einsum("ij,jk,kl->il", a, b, c)
    np.testing.assert_allclose(result, a @ b @ c)
    einsum("ij,jk,kl->il", a, b, c)
    assert cache_info().hits >= 1
    guarded = einsum("ij,jk,kl->il", *(testing.asarray(m) for m in (a, b, c)))
    assert isinstance(guarded, testing.HostGuardArray)
    np.testing.assert_allclose(to_numpy(guarded), result)


def test_contraction_info_before_running():
    info = contraction_info("ij,jk,kl->il", (100, 2), (2, 100), (100, 3))
    # The good path contracts the small pair first and never builds the 100 x 100 matrix.
    assert info.largest_intermediate < 100 * 100
    assert info.flops > 0 and info.path


def test_memory_budget_refuses_before_allocating(rng):
    a = rng.random((300, 2))
    with tnml.config_context(max_memory="100KB"):
        with pytest.raises(tnml.MemoryBudgetError, match="max_memory"):
            einsum("ia,ja->ij", a, a)  # 300 x 300 x 8 bytes = 720 KB
        einsum("ia,ia->a", a, a)
    assert tnml.get_config()["max_memory"] is None


def test_sliced_blocks_keep_indices_come_in_order_and_budget_one_block(rng):
    # A design matrix (rows i, j; columns a) streamed in blocks of rows: ``keep`` never cuts
    # its columns, the blocks come with the leading index outermost, and with blocks_only
    # the budget holds one block, not the 64 x 64 x 8 output.
    from tnml.contract import compile_sliced_einsum

    u, v = rng.random((64, 8)), rng.random((64, 8))
    subscripts, shapes = "ia,ja->ija", ((64, 8), (64, 8))
    f = compile_sliced_einsum(subscripts, *shapes, max_entries=256, keep="a", blocks_only=True)
    assert f.info.labels and "a" not in f.info.labels
    whole = np.einsum(subscripts, u, v)
    heads = []
    for index, block in f.blocks(u, v):
        assert block.shape[-1] == 8
        np.testing.assert_allclose(block, whole[index])
        heads.append(index[0].start if index[0].start is not None else 0)
    assert heads == sorted(heads)
    with tnml.config_context(max_memory="200KB"):
        compile_sliced_einsum(subscripts, *shapes, max_entries=256, keep="a", blocks_only=True)
        with pytest.raises(tnml.MemoryBudgetError):
            compile_sliced_einsum(subscripts, *shapes, max_entries=256, keep="a")


@pytest.mark.parametrize("bad", ["lots", -1, 0, "5 parsecs"])
def test_config_rejects_bad_memory(bad):
    with pytest.raises(ValueError, match="max_memory"):
        tnml.set_config(max_memory=bad)


def test_einsum_checks_subscripts(rng):
    with pytest.raises(ValueError, match="operand 0"):
        einsum("ijk,jk->i", rng.random((2, 3)), rng.random((3, 4)))
    with pytest.raises(ValueError, match="size"):
        einsum("ij,jk->ik", rng.random((2, 3)), rng.random((4, 4)))


@pytest.mark.parametrize("long_run", [128, 5])
@pytest.mark.parametrize("chunk_rows", [10**6, 7])
def test_rowwise_least_squares_matches_direct_solves(chunk_rows, long_run, rng, monkeypatch):
    import tnml.decompositions._masked as masked

    monkeypatch.setattr(masked, "_CHUNK_BYTES", chunk_rows * 16 * 8)
    monkeypatch.setattr(masked, "_LONG_RUN", long_run)
    X = rng.random((7, 8, 9))
    # Slices seen by 0 to ~60 entries: short runs padded in several length groups, long ones
    # (with a low _LONG_RUN) by GEMM, and an empty slice that gets the zero solution.
    mask = rng.random(X.shape) < np.linspace(0.0, 1.0, 8)[None, :, None]
    obs = masked.Observations.from_dense(X, mask)
    design = rng.random((obs.n_obs, 4))
    W = masked.solve_rowwise(obs, 1, lambda idx: design[idx], 8, 4, alpha=1e-3)
    for i in range(8):
        rows = obs.indices[:, 1] == i
        A, b = design[rows], obs.values[rows]
        np.testing.assert_allclose(
            W[i], np.linalg.solve(A.T @ A + 1e-3 * np.eye(4), A.T @ b), atol=1e-12
        )
    guarded = masked.Observations.from_dense(testing.asarray(X), testing.asarray(mask))
    design_g = testing.asarray(design)
    W_g = masked.solve_rowwise(guarded, 1, lambda idx: design_g[idx], 8, 4, alpha=1e-3)
    assert isinstance(W_g, testing.HostGuardArray)
    np.testing.assert_allclose(to_numpy(W_g), W, atol=1e-12)


def test_serial_blas_limits_the_host_blas_and_restores_it():
    from threadpoolctl import threadpool_info

    from tnml.backend import serial_blas

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    with serial_blas():
        assert all(n == 1 for n in blas_threads())
        values = np.linalg.svd(np.diag([3.0, 2.0, 1.0]), compute_uv=False)
    np.testing.assert_allclose(values, [3.0, 2.0, 1.0])
    assert blas_threads() == before
