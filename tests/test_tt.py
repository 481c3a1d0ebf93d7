"""Tensor train: format, TT-SVD, rounding, ALS, DMRG, masks, namespaces and input checks."""

import numpy as np
import pytest

from tnml import testing
from tnml.backend import to_numpy
from tnml.decompositions.tt import TTTensor, max_tt_rank, tt_als, tt_dmrg, tt_round, tt_svd

CASES = [  # (shape, inner ranks): orders 3 to 6, uneven sizes and ranks
    ((4, 5, 6), (2, 3)),
    ((3, 6, 5, 4), (3, 4, 2)),
    ((2, 3, 4, 3, 2), (2, 3, 3, 2)),
    ((3, 3, 3, 3, 3, 3), (2, 3, 4, 3, 2)),
]


def random_tt(shape, ranks, seed=0):
    rng = np.random.default_rng(seed)
    full = (1,) + tuple(ranks) + (1,)
    return TTTensor([rng.standard_normal((full[k], n, full[k + 1])) for k, n in enumerate(shape)])


def rel_err(approx, X):
    return np.linalg.norm(to_numpy(approx) - X) / np.linalg.norm(X)


def unfolding_tails(X, ranks):
    """Discarded singular-value tails of the TT unfoldings at ``ranks`` (TT-SVD's error bound)."""
    tails = []
    for k, r in enumerate(ranks, start=1):
        s = np.linalg.svd(X.reshape(np.prod(X.shape[:k]), -1), compute_uv=False)
        tails.append(np.sum(s[r:] ** 2))
    return np.sqrt(np.sum(tails))


# -- format -------------------------------------------------------------------------------------
def test_format_properties_and_consistency():
    tt = random_tt((4, 5, 6, 3), (2, 3, 2))
    X = tt.to_tensor()
    assert tt.shape == (4, 5, 6, 3) and tt.rank == (1, 2, 3, 2, 1) and tt.ndim == 4
    assert tt.n_params == 4 * 2 + 2 * 5 * 3 + 3 * 6 * 2 + 2 * 3
    idx = np.random.default_rng(1).integers(0, [4, 5, 6, 3], size=(50, 4))
    np.testing.assert_allclose(tt.entries(idx), X[tuple(idx.T)], rtol=1e-12)
    np.testing.assert_allclose(float(tt.norm()), np.linalg.norm(X), rtol=1e-12)
    assert tt.entries(np.zeros((0, 4), dtype=int)).shape == (0,)
    assert "TTTensor(shape=(4, 5, 6, 3)" in repr(tt)


@pytest.mark.parametrize("center", [0, 1, 2, 3, -1])
def test_orthogonalize(center):
    tt = random_tt((4, 5, 6, 3), (2, 3, 2))
    ortho = tt.orthogonalize(center)
    np.testing.assert_allclose(ortho.to_tensor(), tt.to_tensor(), atol=1e-12)
    center %= 4
    for k, core in enumerate(ortho.cores):
        r0, n, r1 = core.shape
        if k < center:
            q = core.reshape(r0 * n, r1)
            np.testing.assert_allclose(q.T @ q, np.eye(r1), atol=1e-12)
        elif k > center:
            q = core.reshape(r0, n * r1)
            np.testing.assert_allclose(q @ q.T, np.eye(r0), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(ortho.cores[center]), np.linalg.norm(tt.to_tensor()))
    assert tt.left_orthogonalize().rank == tt.right_orthogonalize().rank == tt.rank


def test_constructor_validation():
    with pytest.raises(ValueError, match="cores"):
        TTTensor([])
    with pytest.raises(ValueError, match="cores"):
        TTTensor([np.ones((1, 2, 2)), np.ones((2, 3))])
    with pytest.raises(ValueError, match="cores.*boundary"):
        TTTensor([np.ones((2, 2, 2)), np.ones((2, 3, 1))])
    with pytest.raises(ValueError, match=r"cores\[0\] and cores\[1\]"):
        TTTensor([np.ones((1, 2, 2)), np.ones((3, 3, 1))])
    with pytest.raises(TypeError, match="cores"):
        TTTensor(np.ones((1, 2, 1)))
    with pytest.raises(ValueError, match="center"):
        random_tt((3, 4), (2,)).orthogonalize(2)


def test_tensorly_round_trip():
    import tensorly as tl
    from tensorly.decomposition import tensor_train

    tt = random_tt((4, 5, 6), (2, 3))
    np.testing.assert_allclose(tl.tt_to_tensor(tt.to_tensorly()), tt.to_tensor(), atol=1e-12)
    X = np.random.default_rng(0).standard_normal((5, 6, 7))
    theirs = tensor_train(X, rank=[1, 3, 4, 1])
    ours = TTTensor.from_tensorly(theirs)
    assert ours.rank == (1, 3, 4, 1)
    np.testing.assert_allclose(ours.to_tensor(), tl.tt_to_tensor(theirs), atol=1e-12)


# -- TT-SVD and rounding ------------------------------------------------------------------------
@pytest.mark.parametrize("shape, ranks", CASES)
def test_tt_svd_exact_recovery(shape, ranks):
    X = random_tt(shape, ranks).to_tensor()
    by_tol = tt_svd(X, cutoff=1e-10)[0]
    assert by_tol.rank[1:-1] == ranks
    assert rel_err(by_tol.to_tensor(), X) < 1e-8
    by_rank = tt_svd(X, rank=ranks)[0]
    assert by_rank.rank[1:-1] == ranks and rel_err(by_rank.to_tensor(), X) < 1e-8
    assert tt_svd(X, rank=(1,) + ranks + (1,))[0].rank == by_rank.rank  # boundary 1s accepted


def test_tt_svd_rank_rules():
    X = np.random.default_rng(0).standard_normal((2, 2, 2, 2))
    assert tt_svd(X, rank=10)[0].rank == (1, 2, 4, 2, 1)  # an int is a cap, per bond
    assert tt_svd(X)[0].rank == (1,) + max_tt_rank(X.shape) + (1,)
    assert rel_err(tt_svd(X)[0].to_tensor(), X) < 1e-12
    Y = np.random.default_rng(1).standard_normal((6, 7, 8))
    for tol in (0.1, 0.3, 0.6):
        assert rel_err(tt_svd(Y, cutoff=tol)[0].to_tensor(), Y) <= tol


@pytest.mark.parametrize("shape", [(6, 7, 8), (4, 5, 4, 5)])
def test_tt_svd_matches_tensorly_and_bound(shape):
    from tensorly.decomposition import tensor_train

    X = np.random.default_rng(0).standard_normal(shape)
    ranks = tuple(min(3, m) for m in max_tt_rank(shape))
    ours = rel_err(tt_svd(X, rank=3)[0].to_tensor(), X)
    theirs = rel_err(tensor_train(X, rank=[1, *ranks, 1]).to_tensor(), X)
    assert abs(ours - theirs) < 1e-10
    assert ours * np.linalg.norm(X) <= unfolding_tails(X, ranks) * (1 + 1e-10)


def test_tt_round_to_lower_rank_and_tol():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 6, 7, 4))
    exact = tt_svd(X)[0]
    rounded = tt_round(exact, rank=(3, 4, 3))
    # rounding an exact TT is TT-SVD of the dense tensor: the same quasi-optimal error
    reference = tt_svd(X, rank=(3, 4, 3))[0]
    assert rounded.rank == (1, 3, 4, 3, 1)
    err = rel_err(rounded.to_tensor(), X)
    np.testing.assert_allclose(err, rel_err(reference.to_tensor(), X), rtol=1e-8)
    assert err * np.linalg.norm(X) <= unfolding_tails(X, (3, 4, 3)) * (1 + 1e-10)
    by_tol = exact.round(cutoff=0.2)
    assert rel_err(by_tol.to_tensor(), X) <= 0.2 and by_tol.n_params < exact.n_params
    # a redundant TT (the same tensor written with doubled bonds) rounds to its true ranks
    tt = random_tt((4, 5, 6), (2, 3))
    padded = tt_svd(tt.to_tensor())[0]
    assert padded.rank == (1, 4, 6, 1) and tt_round(padded, cutoff=1e-10).rank == tt.rank


# -- iterative fits -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, ranks", CASES)
def test_tt_als_recovers(shape, ranks):
    tt = random_tt(shape, ranks)
    X = tt.to_tensor()
    fit, result = tt_als(X, ranks)
    assert fit.rank[1:-1] == ranks and result.converged and rel_err(fit.to_tensor(), X) < 1e-8
    rng = np.random.default_rng(1)
    perturbed = TTTensor([c + 0.1 * np.std(c) * rng.standard_normal(c.shape) for c in tt.cores])
    fit, result = tt_als(X, ranks, init=perturbed, max_iter=300, tol=1e-12)
    assert rel_err(fit.to_tensor(), X) < 1e-8
    assert result.errors[-1] < 1e-8 and np.all(np.diff(result.errors) <= 1e-12)


def test_tt_als_random_init_and_fit_result():
    X = random_tt((5, 6, 7), (2, 3)).to_tensor()
    fit, result = tt_als(X, (2, 3), init="random", random_state=0, max_iter=200)
    assert result.converged and result.n_iter == len(result.errors)
    assert rel_err(fit.to_tensor(), X) < 1e-8
    noisy = np.random.default_rng(0).standard_normal((5, 6, 7))
    _, short = tt_als(noisy, 2, init="random", random_state=0, max_iter=2, tol=0)
    assert short.n_iter == 2 and not short.converged
    # on data without low TT rank, ALS decreases the error monotonically and beats TT-SVD
    fit, result = tt_als(noisy, 3, init="random", random_state=0, max_iter=30)
    assert np.all(np.diff(result.errors) <= 1e-12)
    np.testing.assert_allclose(result.error, rel_err(fit.to_tensor(), noisy), rtol=1e-10)
    assert result.error < rel_err(tt_svd(noisy, rank=3)[0].to_tensor(), noisy)
    _, zero = tt_als(np.zeros((3, 4, 5)), 2)
    assert zero.error == 0 and zero.converged


@pytest.mark.parametrize("shape, ranks", CASES)
def test_tt_dmrg_finds_ranks(shape, ranks):
    X = random_tt(shape, ranks).to_tensor()
    fit, result = tt_dmrg(X, random_state=0)
    assert fit.rank[1:-1] == ranks
    assert result.converged and rel_err(fit.to_tensor(), X) < 1e-8


def test_tt_dmrg_caps_and_tolerance():
    X = np.random.default_rng(0).standard_normal((6, 7, 8))
    capped, _ = tt_dmrg(X, rank=3, random_state=0)
    assert max(capped.rank) <= 3
    loose, result = tt_dmrg(X, cutoff=0.5, random_state=0)
    assert result.error <= 0.5 + 1e-9 and loose.n_params < X.size


def test_mask_em_completion():
    tt = random_tt((8, 9, 10), (2, 3), seed=3)
    X = tt.to_tensor()
    mask = np.random.default_rng(0).random(X.shape) > 0.3
    X_missing = np.where(mask, X, np.nan)
    fit, result = tt_als(X_missing, (2, 3), mask=mask, missing="em", max_iter=500, tol=1e-12)
    missing = ~mask
    err_missing = np.linalg.norm((fit.to_tensor() - X)[missing]) / np.linalg.norm(X[missing])
    assert result.converged and err_missing < 1e-8 and result.error < 1e-8
    fit, _ = tt_als(
        X_missing, (2, 3), mask=mask, missing="em", init="random", random_state=0, max_iter=500
    )
    err_missing = np.linalg.norm((fit.to_tensor() - X)[missing]) / np.linalg.norm(X[missing])
    assert err_missing < 1e-6
    fit, _ = tt_dmrg(X_missing, rank=(2, 3), mask=mask, max_iter=200, random_state=0)
    err_missing = np.linalg.norm((fit.to_tensor() - X)[missing]) / np.linalg.norm(X[missing])
    assert fit.rank == (1, 2, 3, 1) and err_missing < 1e-6


def test_float32_stays_float32():
    X = random_tt((4, 5, 6), (2, 3)).to_tensor().astype(np.float32)
    assert tt_svd(X, rank=(2, 3))[0].dtype == np.float32
    fit, result = tt_als(X, (2, 3))
    assert fit.dtype == np.float32 and result.error < 1e-5


# -- namespaces -----------------------------------------------------------------------------------
def test_host_guard_no_implicit_copies():
    tt = random_tt((4, 5, 6), (2, 3))
    X = testing.asarray(tt.to_tensor())
    guard = testing.HostGuardArray
    fits = [
        tt_svd(X, cutoff=1e-10)[0],
        tt_als(X, (2, 3))[0],
        tt_als(X, 2, init="random")[0],
        tt_dmrg(X, random_state=0)[0],
        tt_als(
            X,
            (2, 3),
            mask=testing.asarray(np.random.default_rng(0).random(X.shape) > 0.3),
            max_iter=3,
        )[0],
    ]
    fits.append(tt_round(fits[0], rank=2))
    for fit in fits:
        assert all(isinstance(core, guard) for core in fit.cores)
    idx = testing.asarray(np.array([[0, 1, 2], [3, 4, 5]]))
    assert isinstance(fits[0].entries(idx), guard)
    assert isinstance(fits[0].norm(), guard)
    assert isinstance(fits[0].orthogonalize(1).cores[0], guard)
    assert isinstance(fits[0].to_tensor(), guard)
    assert rel_err(to_numpy(fits[1].to_tensor()), tt.to_tensor()) < 1e-8


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "func", [tt_svd, lambda X, **kw: tt_als(X, 2, **kw), lambda X, **kw: tt_dmrg(X, **kw)]
)
def test_bad_tensors(func):
    with pytest.raises(ValueError, match="X contains NaN"):
        func(np.full((3, 4), np.nan))
    with pytest.raises(TypeError, match="X must hold real numbers"):
        func(np.ones((3, 4), dtype=complex))
    with pytest.raises(TypeError, match="X"):
        func(np.array([[1, "a"], [2, 3]], dtype=object))
    with pytest.raises(ValueError, match="X must have at least 2 axes"):
        func(np.ones(5))
    with pytest.raises(ValueError, match="X has an empty axis"):
        func(np.ones((3, 0, 2)))


def test_bad_ranks_and_params():
    X = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="rank must be >= 1"):
        tt_svd(X, rank=0)[0]
    with pytest.raises(TypeError, match="rank must be an int"):
        tt_svd(X, rank=2.5)[0]
    with pytest.raises(ValueError, match=r"rank=\(3, 2\) is impossible"):
        tt_svd(X, rank=(3, 2))[0]
    with pytest.raises(ValueError, match="rank must have 2 inner bond"):
        tt_svd(X, rank=(2, 2, 2))[0]
    with pytest.raises(ValueError, match="rank with 4 entries must start and end with 1"):
        tt_svd(X, rank=(2, 2, 2, 1))[0]
    with pytest.raises(ValueError, match="not a possible TT rank"):
        tt_svd(np.ones((2, 2, 2, 2)), rank=(1, 4, 1))[0]
    with pytest.raises(ValueError, match="rank must be >= 1"):
        tt_dmrg(X, rank=0)
    for bad in (0, [2, 0], -1):
        with pytest.raises(ValueError, match="rank must be >= 1"):
            tt_als(X, bad)
    with pytest.raises(ValueError, match="cutoff"):
        tt_svd(X, cutoff=-1)[0]
    with pytest.raises(ValueError, match="init"):
        tt_als(X, 2, init="nope")
    with pytest.raises(ValueError, match="init has TT rank"):
        tt_als(X, 1, init=tt_svd(X, rank=2)[0])
    with pytest.raises(ValueError, match="init has shape"):
        tt_als(X, 2, init=random_tt((2, 3, 5), (2, 2)))
    with pytest.raises(ValueError, match="max_iter"):
        tt_als(X, 2, max_iter=0)
    with pytest.raises(TypeError, match="tt must be a TTTensor"):
        tt_round(X, rank=1)
    with pytest.raises(ValueError, match="mask must have the tensor's shape"):
        tt_als(X, 2, mask=np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="NaN at observed entries"):
        tt_als(np.full((2, 3, 4), np.nan), 2, mask=np.ones((2, 3, 4), dtype=bool))
