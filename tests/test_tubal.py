"""Tests of the t-product algebra, the t-SVD, TubalTensor and the tubal completion solvers."""

import numpy as np
import pytest

from tnml import testing
from tnml._config import MemoryBudgetError, config_context
from tnml.decompositions.tubal import (
    TubalTensor,
    altmin_complete,
    gd_complete,
    get_transform,
    t_identity,
    t_inverse,
    t_product,
    t_svd,
    t_transpose,
    tensor_nuclear_norm,
    tnn_complete,
    tubal_complete,
    tubal_from_factors,
    tubal_rank,
    tubal_singular_values,
)

SHAPES = [(6, 5, 7), (5, 6, 8), (4, 5, 3, 4)]
TRANSFORMS = ["fft", "dct", "orthogonal"]


def make_transform(kind, tube_shape, seed=0):
    """'fft', 'dct', or one random orthogonal matrix per tube mode."""
    if kind != "orthogonal":
        return kind
    rng = np.random.default_rng(seed)
    return [np.linalg.qr(rng.standard_normal((n, n)))[0] for n in tube_shape]


def random_low_tubal_rank(shape, rank, seed=0, transform="fft"):
    rng = np.random.default_rng(seed)
    n1, n2, tube = shape[0], shape[1], tuple(shape[2:])
    return t_product(
        rng.standard_normal((n1, rank) + tube), rng.standard_normal((rank, n2) + tube), transform
    )


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# --- the algebra ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", TRANSFORMS)
def test_t_svd_reconstructs_exactly(shape, kind):
    tf = make_transform(kind, shape[2:])
    X = np.random.default_rng(1).standard_normal(shape)
    tt = t_svd(X, transform=tf)[0]
    assert rel(tt.to_tensor(), X) < 1e-12
    # U * S * V^T with the public algebra, and real, t-orthogonal factors
    rebuilt = t_product(t_product(tt.U, tt.S, tf), t_transpose(tt.V, tf), tf)
    assert rel(rebuilt, X) < 1e-12
    assert np.isrealobj(tt.U) and np.isrealobj(tt.V) and np.isrealobj(tt.s)
    k = min(shape[:2])
    eye = t_identity(k, shape[2:], tf)
    assert np.allclose(t_product(t_transpose(tt.U, tf), tt.U, tf), eye, atol=1e-12)
    assert np.allclose(t_product(t_transpose(tt.V, tf), tt.V, tf), eye, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", TRANSFORMS)
def test_full_t_svd(shape, kind):
    tf = make_transform(kind, shape[2:])
    X = np.random.default_rng(2).standard_normal(shape)
    tt = t_svd(X, transform=tf, full_matrices=True)[0]
    assert tt.U.shape[:2] == (shape[0], shape[0]) and tt.V.shape[:2] == (shape[1], shape[1])
    assert tt.S.shape == shape[:2] + shape[2:] and tt.S.shape[:2] == (shape[0], shape[1])
    rebuilt = t_product(t_product(tt.U, tt.S, tf), t_transpose(tt.V, tf), tf)
    assert rel(rebuilt, X) < 1e-12
    assert np.allclose(
        t_product(t_transpose(tt.U, tf), tt.U, tf), t_identity(shape[0], shape[2:], tf), atol=1e-12
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", TRANSFORMS)
def test_truncated_t_svd_eckart_young(shape, kind):
    tf = make_transform(kind, shape[2:])
    X = np.random.default_rng(3).standard_normal(shape)
    sv = tubal_singular_values(X, tf)
    assert np.all(np.diff(sv) <= 1e-12)
    assert np.isclose(np.sum(sv**2), np.sum(X**2))
    for k in range(1, min(shape[:2])):
        tk = t_svd(X, rank=k, transform=tf)[0]
        assert tk.rank == k and tk.U.shape[1] == k
        error = np.linalg.norm(X - tk.to_tensor())
        assert np.isclose(error, np.sqrt(np.sum(sv[k:] ** 2)), rtol=1e-10, atol=1e-12)
    # no other tensor of tubal rank k does better than the truncated t-SVD
    k = 2
    best = np.linalg.norm(X - t_svd(X, rank=k, transform=tf)[0].to_tensor())
    for seed in range(3):
        other = random_low_tubal_rank(shape, k, seed, tf)
        scale = np.sum(other * X) / np.sum(other * other)
        assert np.linalg.norm(X - scale * other) >= best


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", TRANSFORMS + ["general"])
def test_t_product_associative_and_identity(shape, kind):
    rng = np.random.default_rng(4)
    tube = shape[2:]
    tf = (
        [rng.standard_normal((n, n)) for n in tube]
        if kind == "general"
        else make_transform(kind, tube)
    )
    A = rng.standard_normal((3, 4) + tube)
    B = rng.standard_normal((4, 5) + tube)
    C = rng.standard_normal((5, 2) + tube)
    left = t_product(t_product(A, B, tf), C, tf)
    right = t_product(A, t_product(B, C, tf), tf)
    assert rel(left, right) < 1e-12
    assert rel(t_product(t_identity(3, tube, tf), A, tf), A) < 1e-12
    assert rel(t_product(A, t_identity(4, tube, tf), tf), A) < 1e-12
    # (A * B)^T = B^T * A^T
    assert (
        rel(
            t_transpose(t_product(A, B, tf), tf),
            t_product(t_transpose(B, tf), t_transpose(A, tf), tf),
        )
        < 1e-12
    )
    # the t-inverse
    D = rng.standard_normal((4, 4) + tube)
    assert np.allclose(t_product(D, t_inverse(D, tf), tf), t_identity(4, tube, tf), atol=1e-10)


def test_fft_t_product_is_block_circulant_product():
    """The FFT t-product equals bcirc(A) @ unfold(B) (Kilmer & Martin's definition)."""
    rng = np.random.default_rng(5)
    A, B = rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 2, 5))
    n3 = A.shape[2]
    bcirc = np.block([[A[:, :, (i - j) % n3] for j in range(n3)] for i in range(n3)])
    unfold_b = np.concatenate([B[:, :, k] for k in range(n3)], axis=0)
    expected = (bcirc @ unfold_b).reshape(n3, 3, 2).transpose(1, 2, 0)
    assert rel(t_product(A, B), expected) < 1e-12
    # the FFT transpose: slice 1 transposed, slices 2..n3 transposed in reverse order
    At = t_transpose(A)
    assert np.array_equal(At[:, :, 0], A[:, :, 0].T)
    assert np.array_equal(At[:, :, 1], A[:, :, n3 - 1].T)


def test_conjugate_symmetry_halves_the_slices():
    assert get_transform("fft", 256).n_slices == 129
    assert get_transform("fft", 7).n_slices == 4
    tr = get_transform("fft", (4, 6))
    assert tr.n_slices == 16
    # self-conjugate slices are real; their mirror images are filled, not recomputed
    assert tr.real_index.size == 4 and tr.dup_dst.size == 2  # (1, b) mirrors (3, b)
    X = np.random.default_rng(0).standard_normal((3, 4, 4, 6))
    full = np.fft.fftn(X, axes=(2, 3))
    assert np.isclose(
        np.sum(tr.weights * np.sum(np.abs(tr.forward(X)) ** 2, axis=(0, 1))),
        np.sum(np.abs(full) ** 2) / 24,
    )


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_tensor_nuclear_norm(kind):
    shape = (5, 4, 6)
    tf = make_transform(kind, shape[2:])
    X = np.random.default_rng(6).standard_normal(shape)
    if kind == "fft":
        slices = np.fft.fft(X, axis=2)
        expected = sum(np.linalg.norm(slices[:, :, t], "nuc") for t in range(6)) / 6
    else:
        matrix = get_transform(tf, shape[2:]).matrices[0]
        slices = X @ matrix.T
        expected = sum(np.linalg.norm(slices[:, :, t], "nuc") for t in range(6))
    assert np.isclose(tensor_nuclear_norm(X, tf), expected)
    # dual of the spectral norm: TNN >= <X, Y> / ||Y||_spec, with equality at Y = U * V^T
    tt = t_svd(X, transform=tf)[0]
    polar = t_product(tt.U, t_transpose(tt.V, tf), tf)
    assert np.isclose(np.sum(X * polar), tensor_nuclear_norm(X, tf))


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_tubal_rank(kind):
    tf = make_transform(kind, (5,))
    X = random_low_tubal_rank((8, 9, 5), 3, 0, tf)
    assert tubal_rank(X, transform=tf) == 3
    assert tubal_rank(np.zeros((3, 3, 2))) == 0
    assert tubal_rank(np.random.default_rng(0).standard_normal((4, 6, 3))) == 4


# --- the format -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", TRANSFORMS)
def test_tubal_tensor_interface(shape, kind):
    tf = make_transform(kind, shape[2:])
    X = np.random.default_rng(7).standard_normal(shape)
    tt = t_svd(X, rank=2, transform=tf)[0]
    dense = tt.to_tensor()
    assert tt.shape == shape and tt.ndim == len(shape) and tt.rank == 2
    tube = int(np.prod(shape[2:]))
    assert tt.n_params == (shape[0] + shape[1] + 1) * 2 * tube
    assert np.isclose(tt.norm(), np.linalg.norm(dense))
    rng = np.random.default_rng(0)
    indices = np.stack([rng.integers(0, n, 40) for n in shape], axis=1)
    assert np.allclose(tt.entries(indices), dense[tuple(indices.T)])
    assert np.allclose(tt.entries(indices, batch_size=7), dense[tuple(indices.T)])
    copy = tt.to_numpy()
    assert isinstance(copy, TubalTensor) and np.allclose(copy.to_tensor(), dense)
    assert "TubalTensor" in repr(tt) and "rank=2" in repr(tt)
    S = tt.S
    assert S.shape == (2, 2) + shape[2:] and np.all(S[0, 1] == 0)
    assert np.allclose(tt.tubal_singular_values(), tubal_singular_values(X, tf)[:2])


def test_tubal_from_factors_and_validation():
    rng = np.random.default_rng(8)
    U, V = rng.standard_normal((7, 3, 4, 2)), rng.standard_normal((6, 3, 4, 2))
    tt = tubal_from_factors(U, V)
    assert tt.rank == 3
    assert rel(tt.to_tensor(), t_product(U, t_transpose(V))) < 1e-12
    with pytest.raises(ValueError, match="V must have shape"):
        TubalTensor(U, tt.s, V[:, :, :3])
    with pytest.raises(ValueError, match="s has 4 tubes"):
        TubalTensor(U, np.zeros((4, 4, 2)), V)


def test_float32_stays_float32():
    X = np.random.default_rng(0).standard_normal((5, 4, 6)).astype(np.float32)
    tt = t_svd(X)[0]
    assert tt.U.dtype == np.float32 and tt.s.dtype == np.float32
    assert rel(tt.to_tensor(), X) < 1e-5
    assert t_product(X, t_transpose(X)).dtype == np.float32


def test_memory_budget_refused_before_allocating():
    X = np.zeros((50, 50, 20))
    with config_context(max_memory="10KB"):
        with pytest.raises(MemoryBudgetError):
            t_svd(X)[0]


# --- bad input --------------------------------------------------------------------------------
def test_bad_transform_matrices():
    X = np.random.default_rng(0).standard_normal((3, 3, 4))
    singular = np.ones((4, 4))
    with pytest.raises(ValueError, match="transform matrix for mode 3 is not invertible"):
        t_product(X, X, transform=singular)
    with pytest.raises(ValueError, match=r"transform matrix for mode 3 has shape \(5, 5\)"):
        t_svd(X, transform=np.eye(5))[0]
    with pytest.raises(ValueError, match="transform matrix for mode 3 must be square"):
        t_svd(X, transform=np.eye(4)[:3])[0]
    with pytest.raises(ValueError, match="transform matrix for mode 3 must be real"):
        t_svd(X, transform=np.fft.fft(np.eye(4)))[0]
    with pytest.raises(ValueError, match="transform has 1 matrices"):
        t_svd(np.zeros((2, 2, 3, 3)), transform=[np.eye(3)])[0]
    with pytest.raises(ValueError, match="transform must be 'fft', 'dct'"):
        t_svd(X, transform="wavelet")[0]
    with pytest.raises(ValueError, match="transform must be orthogonal"):
        tnn_complete(X, mask=np.ones(X.shape, bool), transform=np.triu(np.ones((4, 4))))


def test_bad_shapes():
    A = np.ones((3, 4, 5))
    with pytest.raises(ValueError, match="A must have at least 3 axes"):
        t_product(np.ones((3, 4)), A)
    with pytest.raises(ValueError, match="B must have at least 3 axes"):
        t_product(A, np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"A.shape\[1\] == B.shape\[0\]"):
        t_product(A, np.ones((3, 2, 5)))
    with pytest.raises(ValueError, match="same tube modes"):
        t_product(A, np.ones((4, 2, 6)))
    with pytest.raises(ValueError, match="X must have at least 3 axes"):
        t_svd(np.ones((3, 4)))[0]
    with pytest.raises(ValueError, match="square frontal slices"):
        t_inverse(A)
    with pytest.raises(ValueError, match="not t-invertible"):
        t_inverse(np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="rank=4 is larger"):
        t_svd(A, rank=4)[0]


def test_bad_completion_input():
    X = random_low_tubal_rank((6, 6, 3), 1)
    mask = np.ones(X.shape, bool)
    with pytest.raises(ValueError, match="solver must be one of"):
        tubal_complete(X, mask=mask, solver="sgd")
    with pytest.raises(ValueError, match="needs rank"):
        tubal_complete(X, mask=mask, solver="altmin")
    with pytest.raises(ValueError, match="mask must have the tensor's shape"):
        tnn_complete(X, mask=mask[:3])
    with pytest.raises(TypeError, match="mask must be a boolean"):
        tnn_complete(X, mask=mask.astype(int))
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN at observed entries"):
        gd_complete(bad, mask=mask)


# --- completion -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fft", "dct"])
def test_tnn_admm_recovers_small(kind):
    X = random_low_tubal_rank((30, 30, 10), 2, 0, kind)
    mask = np.random.default_rng(1).random(X.shape) < 0.5
    X_nan = np.where(mask, X, np.nan)  # missing values are ignored, NaN included
    tubal, info = tnn_complete(X_nan, mask=mask, transform=kind)
    completed = tubal.to_tensor()
    assert info.converged and info.errors[-1] < 1e-6
    assert rel(completed, X) < 1e-6
    np.testing.assert_allclose(completed[mask], X[mask], rtol=0, atol=1e-10)


def test_altmin_recovers_small():
    X = random_low_tubal_rank((30, 30, 8), 2, 1)
    mask = np.random.default_rng(2).random(X.shape) < 0.3
    tt, info = altmin_complete(X, 2, mask=mask)
    assert isinstance(tt, TubalTensor) and tt.rank == 2
    assert rel(tt.to_tensor(), X) < 1e-6
    dct, _ = tubal_complete(
        X,
        mask=mask,
        solver="altmin",
        rank=2,
        transform="dct",
        init="random",
        random_state=0,
        max_iter=5,
    )
    assert dct.shape == X.shape


@pytest.mark.slow  # 400 gradient steps twice: ~9 s
def test_gd_implicit_low_tubal_rank():
    """From init scale 1e-3, GD on a full-width U * V^T ends at effective tubal rank 3."""
    X = random_low_tubal_rank((40, 40, 8), 3, 0)
    mask = np.random.default_rng(0).random(X.shape) < 0.6
    tt, info = gd_complete(X, mask=mask, init_scale=1e-3, max_iter=400, random_state=0)
    assert tt.rank == 40  # overparametrised: full width
    sv = tt.tubal_singular_values()
    assert int(np.sum(sv > 1e-3 * sv[0])) == 3
    assert tubal_rank(tt.to_tensor(), rtol=1e-3) == 3
    assert rel(tt.to_tensor(), X) < 1e-2
    # a large start loses the bias
    big, _ = gd_complete(X, mask=mask, init_scale=0.3, max_iter=400, random_state=0)
    assert tubal_rank(big.to_tensor(), rtol=1e-3) > 3


def test_gd_callback_stops():
    X = random_low_tubal_rank((10, 10, 4), 2, 0)
    seen = []

    def callback(iteration, U, V):
        seen.append((iteration, U.shape, V.shape))
        return iteration == 4

    _, info = tubal_complete(X, mask=np.ones(X.shape, bool), solver="gd", callback=callback)
    assert len(seen) == 5 and seen[0][1] == (10, 10, 4) and info.n_iter == 5


@pytest.mark.slow
def test_tnn_admm_acceptance_100x100x50():
    X = random_low_tubal_rank((100, 100, 50), 5, 0)
    mask = np.random.default_rng(0).random(X.shape) >= 0.5  # 50% missing
    completed, info = tnn_complete(X, mask=mask)
    assert rel(completed.to_tensor(), X) <= 1e-6


@pytest.mark.slow
def test_altmin_acceptance_100x100x50():
    X = random_low_tubal_rank((100, 100, 50), 5, 0)
    mask = np.random.default_rng(0).random(X.shape) < 0.3  # 30% observed
    tt, info = altmin_complete(X, 5, mask=mask, tol=1e-9)
    assert rel(tt.to_tensor(), X) <= 1e-6


# --- arrays stay where they are -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fft", "dct"])
def test_host_guard(kind):
    rng = np.random.default_rng(0)
    A = testing.asarray(rng.standard_normal((4, 3, 5)))
    B = testing.asarray(rng.standard_normal((3, 2, 5)))
    guard = testing.HostGuardArray
    assert isinstance(t_product(A, B, kind), guard)
    assert isinstance(t_transpose(A, kind), guard)
    tt = t_svd(A, rank=2, transform=kind)[0]
    assert all(isinstance(a, guard) for a in (tt.U, tt.s, tt.V))
    assert isinstance(tt.to_tensor(), guard)
    assert isinstance(tt.entries(testing.asarray(np.array([[0, 1, 2], [3, 0, 4]]))), guard)
    assert isinstance(tt.norm(), float)
    assert isinstance(tubal_singular_values(A, kind), guard)
    assert isinstance(t_identity(3, 5, kind, xp=testing), guard)
    assert isinstance(t_inverse(testing.asarray(rng.standard_normal((3, 3, 5))), kind), guard)
    X = testing.asarray(random_low_tubal_rank((4, 6, 5), 2, 0, kind))
    mask = testing.asarray(rng.random((4, 6, 5)) < 0.7)
    completed, _ = tnn_complete(X, mask=mask, transform=kind, max_iter=3)
    assert isinstance(completed.U, guard)
    alt, _ = altmin_complete(X, 2, mask=mask, transform=kind, max_iter=2)
    assert isinstance(alt.U, guard) and isinstance(alt.to_tensor(), guard)
    gd, _ = gd_complete(X, mask=mask, transform=kind, max_iter=3, random_state=0)
    assert isinstance(gd.U, guard) and isinstance(gd.s, guard)
    orth = testing.asarray(np.linalg.qr(rng.standard_normal((5, 5)))[0])
    assert isinstance(t_svd(A, transform=orth)[0].U, guard)


def test_tubal_svd_n_init_keeps_the_best_start():
    import tnml

    rng = np.random.default_rng(3)
    X = t_product(rng.standard_normal((12, 2, 4)), rng.standard_normal((2, 10, 4)))
    X[rng.random(X.shape) < 0.4] = np.nan
    one = tnml.TubalSVD(rank=2, solver="gd", max_iter=30, random_state=0).fit(X)
    same = tnml.TubalSVD(rank=2, solver="gd", max_iter=30, random_state=0, n_init=1).fit(X)
    three = tnml.TubalSVD(rank=2, solver="gd", max_iter=30, random_state=0, n_init=3).fit(X)
    assert one.reconstruction_error_ == same.reconstruction_error_
    assert three.reconstruction_error_ <= one.reconstruction_error_
