"""Datasets (images, masks, synthetic low-rank tensors), metrics and image tensorization."""

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import tnml
from tnml.datasets import (
    available_images,
    load_image,
    make_low_rank,
    make_low_rank_entries,
    make_mask,
)
from tnml.decompositions import hosvd, tt_svd
from tnml.metrics import compression_ratio, psnr, rse, ssim
from tnml.tensorize import ket_augment, ket_factors, ket_restore, ket_shape

FORMATS = ["cp", "tucker", "tt", "tr"]


# -- images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", available_images())
def test_every_image_loads_in_unit_range(name):
    image = load_image(name)
    assert image.dtype == np.float64 and image.ndim in (2, 3)
    assert image.ndim == 2 or image.shape[2] == 3
    assert 0 <= image.min() and image.max() <= 1 and image.max() > image.min()


def test_image_sizes_and_gray():
    assert load_image("astronaut").shape == (512, 512, 3)
    assert load_image("china.jpg").shape == load_image("China").shape == (427, 640, 3)
    assert load_image("flower", size=64).shape == (64, 64, 3)
    assert load_image("coffee", size=(32, 48)).shape == (32, 48, 3)
    gray = load_image("chelsea", size=16, as_gray=True)
    assert gray.shape == (16, 16) and 0 <= gray.min() and gray.max() <= 1
    assert load_image("camera", as_gray=True).shape == (512, 512)
    assert load_image("logo").shape == (500, 500, 3)  # alpha composited away


def test_image_bad_input():
    with pytest.raises(ValueError, match="name must be one of .*astronaut.*china"):
        load_image("lena")
    with pytest.raises(TypeError, match="name must be a string"):
        load_image(3)
    with pytest.raises(ValueError, match="size must be >= 1"):
        load_image("camera", size=0)
    with pytest.raises(TypeError, match="size must be None, an int or a pair"):
        load_image("camera", size=(1, 2, 3))


# -- masks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9, 0.123])
def test_random_mask_exact_count(ratio):
    shape = (7, 11, 13)
    mask = make_mask(shape, ratio, random_state=0)
    assert mask.dtype == bool and mask.shape == shape
    assert (~mask).sum() == round(ratio * math.prod(shape))


def test_mask_reproducible_by_seed():
    for pattern in ["random", "fiber", "slice", "block"]:
        a = make_mask((16, 16, 3), 0.3, pattern, random_state=1)
        b = make_mask((16, 16, 3), 0.3, pattern, random_state=1)
        c = make_mask((16, 16, 3), 0.3, pattern, random_state=2)
        assert np.array_equal(a, b) and not np.array_equal(a, c)
    rng = np.random.RandomState(0)
    assert not np.array_equal(
        make_mask(100, 0.5, random_state=rng), make_mask(100, 0.5, random_state=rng)
    )


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_fiber_mask(axis):
    shape = (5, 6, 7)
    mask = make_mask(shape, 0.4, "fiber", random_state=0, axis=axis)
    # Constant along the fiber direction, and exactly round(0.4 * n_fibers) fibers missing.
    assert np.array_equal(mask, np.take(mask, [0], axis=axis).repeat(shape[axis], axis=axis))
    n_fibers = math.prod(shape) // shape[axis]
    assert (~mask).sum() == round(0.4 * n_fibers) * shape[axis]


@pytest.mark.parametrize("axis", [0, 2])
def test_slice_mask(axis):
    shape = (10, 4, 20)
    mask = make_mask(shape, 0.3, "slice", random_state=0, axis=axis)
    other = tuple(a for a in range(3) if a != axis)
    per_slice = mask.all(axis=other)
    assert np.array_equal(per_slice, mask.any(axis=other))  # each slice all in or all out
    assert (~per_slice).sum() == round(0.3 * shape[axis])


def test_block_mask():
    mask = make_mask((32, 32, 3), 0.25, "block", random_state=0, block_size=8)
    assert (~mask).sum() == round(0.25 * 16) * 8 * 8 * 3  # blocks span the 3 channels
    cells = mask.reshape(4, 8, 4, 8, 3)
    assert np.array_equal(cells.all(axis=(1, 3, 4)), cells.any(axis=(1, 3, 4)))
    # Sides that do not divide: edge blocks are cropped, every block whole or absent.
    mask = make_mask((10, 10), 0.5, "block", random_state=0, block_size=(4, None))
    assert np.array_equal(mask, mask[:, :1].repeat(10, axis=1))
    assert (~mask[:, 0]).sum() in (2, 4, 6)


def test_mask_zero_ratio_is_fully_observed():
    for pattern in ["random", "fiber", "slice", "block"]:
        assert make_mask((4, 4, 4), 0, pattern, random_state=0).all()


def test_mask_bad_input():
    with pytest.raises(ValueError, match=r"missing_ratio must be in \[0, 1\), got 1"):
        make_mask((4, 4), 1.0)
    with pytest.raises(ValueError, match="missing_ratio must be in"):
        make_mask((4, 4), -0.1)
    with pytest.raises(TypeError, match="missing_ratio must be a number"):
        make_mask((4, 4), "half")
    with pytest.raises(ValueError, match="pattern must be one of .*'random'.*'block'"):
        make_mask((4, 4), 0.5, pattern="stripes")
    with pytest.raises(ValueError, match="axis must be an int in"):
        make_mask((4, 4), 0.5, pattern="slice", axis=2)
    with pytest.raises(ValueError, match="shape\\[1\\] must be >= 1"):
        make_mask((4, 0), 0.5)
    # Never all-missing or silently all-observed.
    with pytest.raises(ValueError, match="removes no slice"):
        make_mask((4, 4), 0.1, pattern="slice")
    with pytest.raises(ValueError, match="removes every slice"):
        make_mask((4, 4), 0.9, pattern="slice")
    with pytest.raises(ValueError, match="removes every entry"):
        make_mask((10,), 0.99)
    with pytest.raises(ValueError, match="block_size must have 2 entries"):
        make_mask((8, 8), 0.5, pattern="block", block_size=(2, 2, 2))


# -- synthetic low-rank tensors -----------------------------------------------------------------
def _unfolding_rank(X, k):
    return np.linalg.matrix_rank(X.reshape(math.prod(X.shape[:k]), -1))


def test_low_rank_cp_and_tucker_ranks():
    X = make_low_rank((6, 7, 8), 4, "cp", random_state=0)
    assert [
        np.linalg.matrix_rank(np.moveaxis(X, m, 0).reshape(X.shape[m], -1)) for m in range(3)
    ] == [4, 4, 4]
    X = make_low_rank((6, 7, 8), (2, 3, 4), "tucker", random_state=0)
    assert [
        np.linalg.matrix_rank(np.moveaxis(X, m, 0).reshape(X.shape[m], -1)) for m in range(3)
    ] == [2, 3, 4]
    assert np.linalg.norm(hosvd(X, (2, 3, 4))[0].to_tensor() - X) < 1e-10 * np.linalg.norm(X)


def test_low_rank_tt_and_tr_ranks():
    X = make_low_rank((4, 5, 6, 7), (2, 3, 4), "tt", random_state=0)
    assert [_unfolding_rank(X, k) for k in (1, 2, 3)] == [2, 3, 4]
    assert np.linalg.norm(tt_svd(X, (2, 3, 4))[0].to_tensor() - X) < 1e-10 * np.linalg.norm(X)
    # A ring's unfolding after k modes has rank r_0 * r_k.
    X = make_low_rank((5, 6, 6, 5), (2, 2, 3, 2), "tr", random_state=0)
    assert [_unfolding_rank(X, k) for k in (1, 2, 3)] == [4, 6, 4]


@pytest.mark.parametrize("format", FORMATS)
def test_low_rank_entries_are_unit_scale(format):
    X = make_low_rank((12, 13, 14, 15), 3, format, random_state=0)
    assert 0.2 < X.std() < 5


@pytest.mark.parametrize("format", FORMATS)
def test_entries_match_dense_at_same_seed(format):
    shape = (6, 7, 8)
    X = make_low_rank(shape, 2, format, random_state=3)
    coords, values = make_low_rank_entries(shape, 2, 50, format, random_state=3)
    assert coords.dtype == np.int64 and coords.shape == (50, 3) and values.shape == (50,)
    assert len(np.unique(coords, axis=0)) == 50
    np.testing.assert_allclose(values, X[tuple(coords.T)], rtol=1e-10, atol=1e-12)


def test_entries_dense_regime_and_all_entries():
    coords, _ = make_low_rank_entries((3, 4), 1, 12, random_state=0)
    assert sorted(map(tuple, coords)) == [(i, j) for i in range(3) for j in range(4)]
    coords, _ = make_low_rank_entries((5, 5), 1, 20, random_state=0)
    assert len(np.unique(coords, axis=0)) == 20
    with pytest.raises(ValueError, match="n_obs must be at most"):
        make_low_rank_entries((3, 4), 1, 13)


@pytest.mark.parametrize("format", FORMATS)
def test_entries_never_densify(format):
    shape = (10**4,) * 3
    with tnml.config_context(max_memory="50MB"):
        coords, values = make_low_rank_entries(shape, 3, 2000, format, noise=0.1, random_state=0)
        with pytest.raises(tnml.MemoryBudgetError):
            make_low_rank(shape, 3, format)
    assert len(np.unique(coords, axis=0)) == 2000 and np.isfinite(values).all()


def test_noise_is_relative():
    clean = make_low_rank((20, 20, 20), 3, "tucker", random_state=0)
    noisy = make_low_rank((20, 20, 20), 3, "tucker", noise=0.1, random_state=0)
    assert rse(clean, noisy) == pytest.approx(0.1, rel=0.1)


def test_generator_bad_input():
    with pytest.raises(ValueError, match="format must be one of .*'tr'"):
        make_low_rank((3, 3), 1, format="mps")
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        make_low_rank((3, 3), 1, noise=-1)
    with pytest.raises(ValueError, match="rank must have 2 entries"):
        make_low_rank((3, 3, 3), (1, 2, 3), format="tt")
    with pytest.raises(ValueError, match=r"rank\[0\]=5 exceeds the largest TT rank 3"):
        make_low_rank((3, 4, 5), (5, 2), format="tt")
    with pytest.raises(ValueError, match="rank must be >= 1"):
        make_low_rank((3, 3), 0)
    with pytest.raises(TypeError, match="n_obs must be a positive integer"):
        make_low_rank_entries((3, 3), 1, 2.5)


# -- tensorization ------------------------------------------------------------------------------
def test_ket_hand_example():
    image = np.arange(16).reshape(4, 4)
    tensor = ket_augment(image)
    # Mode 0: which 2 x 2 block (row-major over blocks); mode 1: which pixel inside it.
    expected = np.array([[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]])
    assert np.array_equal(tensor, expected)
    for i in range(4):
        for j in range(4):
            assert tensor[(i // 2) * 2 + j // 2, (i % 2) * 2 + j % 2] == image[i, j]


@pytest.mark.parametrize(
    "shape", [(256, 256), (256, 256, 3), (256, 128, 3), (12, 18), (7, 1), (9, 8, 2)]
)
def test_ket_round_trip(shape):
    image = np.random.default_rng(0).random(shape)
    tensor = ket_augment(image)
    assert tensor.shape == ket_shape(shape)
    assert np.array_equal(ket_restore(tensor, shape), image)
    mask = image > 0.5
    assert np.array_equal(ket_augment(mask), tensor > 0.5)  # masks follow their pixels
    assert np.array_equal(ket_restore(ket_augment(mask), shape), mask)


def test_ket_shapes_and_factors():
    assert ket_shape((256, 256, 3)) == (4,) * 8 + (3,)
    assert ket_shape((256, 128)) == (2,) + (4,) * 7
    assert ket_factors(12, 18) == ((2, 2, 3), (2, 3, 3))
    factors = ((4, 4), (2, 8))
    image = np.random.default_rng(0).random((16, 16, 3))
    tensor = ket_augment(image, factors)
    assert tensor.shape == (8, 32, 3)
    assert np.array_equal(ket_restore(tensor, image.shape, factors), image)
    # The channel mode is last and untouched.
    assert np.array_equal(tensor[..., 1], ket_augment(image[..., 1], factors))


def test_ket_on_real_image_keeps_multiscale_structure():
    image = load_image("astronaut", size=64, as_gray=True)
    tensor = ket_augment(image)
    assert np.array_equal(ket_restore(tensor, image.shape), image)
    assert tensor.shape == (4,) * 6


def test_ket_bad_input():
    with pytest.raises(ValueError, match="factors\\[0\\] .* product is the image side 8"):
        ket_augment(np.ones((8, 8)), ((2, 2), (2, 2, 2)))
    with pytest.raises(TypeError, match="factors must be None or a pair"):
        ket_augment(np.ones((8, 8)), (2, 2, 2))
    with pytest.raises(ValueError, match="image.shape must be \\(H, W\\) or \\(H, W, C\\)"):
        ket_augment(np.ones(8))
    with pytest.raises(ValueError, match="tensor must have shape \\(4, 4\\)"):
        ket_restore(np.ones((4, 2)), (4, 4))
    with pytest.raises(TypeError, match="image must be an array"):
        ket_augment([[1, 2], [3, 4]])


# -- metrics ------------------------------------------------------------------------------------
@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    X = rng.random((40, 50, 3))
    return X, np.clip(X + 0.1 * rng.standard_normal(X.shape), 0, 1)


def test_rse_formula_and_mask(images):
    X, Y = images
    assert rse(X, Y) == pytest.approx(np.linalg.norm(X - Y) / np.linalg.norm(X))
    mask = np.random.default_rng(1).random(X.shape) < 0.3
    assert rse(X, Y, mask) == pytest.approx(np.linalg.norm((X - Y)[mask]) / np.linalg.norm(X[mask]))
    assert rse(X, np.where(mask, Y, X), ~mask) == 0.0
    assert rse(np.ones(4), np.zeros(4)) == 1.0


def test_psnr_matches_skimage(images):
    X, Y = images
    assert psnr(X, Y) == pytest.approx(peak_signal_noise_ratio(X, Y))
    assert psnr(X * 255, Y * 255) == pytest.approx(
        peak_signal_noise_ratio(X * 255, Y * 255, data_range=np.ptp(X * 255))
    )
    assert psnr(X, Y, data_range=255) == pytest.approx(
        peak_signal_noise_ratio(X, Y, data_range=255)
    )
    mask = np.random.default_rng(1).random(X.shape) < 0.3
    assert psnr(X, Y, mask) == pytest.approx(10 * np.log10(1 / np.mean((X - Y)[mask] ** 2)))
    assert psnr(X, X) == math.inf


def test_ssim_matches_skimage(images):
    X, Y = images
    assert ssim(X, Y) == pytest.approx(structural_similarity(X, Y, data_range=1, channel_axis=-1))
    assert ssim(X[..., 0], Y[..., 0]) == pytest.approx(
        structural_similarity(X[..., 0], Y[..., 0], data_range=1)
    )
    assert ssim(X, Y, gaussian_weights=True) == pytest.approx(
        structural_similarity(X, Y, data_range=1, channel_axis=-1, gaussian_weights=True)
    )
    # A full mask is the unmasked score; a 2-D mask applies to every channel.
    assert ssim(X, Y, mask=np.ones(X.shape, bool)) == pytest.approx(ssim(X, Y))
    assert ssim(X, Y, mask=np.ones(X.shape[:2], bool)) == pytest.approx(ssim(X, Y))
    assert ssim(X, Y, mask=np.ones(X.shape[:2], bool), win_size=5) == pytest.approx(
        ssim(X, Y, win_size=5)
    )


def test_ssim_mask_is_map_average(images):
    X, Y = images
    _, smap = structural_similarity(X, Y, data_range=1, channel_axis=-1, full=True)
    mask = np.zeros(X.shape[:2], bool)
    mask[10:20, 5:30] = True
    assert ssim(X, Y, mask=mask) == pytest.approx(smap[10:20, 5:30].mean())
    half = np.where(mask[..., None], Y, X)
    assert ssim(X, half, mask=mask) < ssim(X, half) < 1


def test_metrics_bad_input(images):
    X, Y = images
    for metric in (rse, psnr, ssim):
        with pytest.raises(ValueError, match="X_true and X_pred must have the same shape"):
            metric(X, Y[:-1])
        with pytest.raises(TypeError, match="mask must be a boolean array"):
            metric(X, Y, mask=np.ones(X.shape))
        with pytest.raises(ValueError, match="mask selects no"):
            metric(X, Y, mask=np.zeros(X.shape, bool))
    with pytest.raises(ValueError, match="mask must have the shape"):
        rse(X, Y, mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
        psnr(X, Y, data_range=0)
    with pytest.raises(ValueError, match="X_true is constant"):
        psnr(np.full(4, 3.0), np.zeros(4))
    with pytest.raises(ValueError, match="X_true must be an image"):
        ssim(np.ones((8, 8, 8, 2)), np.ones((8, 8, 8, 2)))
    with pytest.raises(ValueError, match="mask selects no pixel at least 3 pixels"):
        ssim(X, Y, mask=np.pad(np.zeros((34, 44), bool), 3, constant_values=True))


def test_compression_ratio():
    from tnml.decompositions import TTTensor

    tt = TTTensor([np.ones((1, 10, 2)), np.ones((2, 10, 2)), np.ones((2, 10, 1))])
    assert compression_ratio(tt) == tt.compression_ratio() == 80 / 1000
    assert compression_ratio(80, (10, 10, 10)) == 0.08
    with pytest.raises(ValueError, match="shape is required"):
        compression_ratio(80)
    with pytest.raises(TypeError, match="format_or_n_params must be a tnml format"):
        compression_ratio("cp", (3, 3))
    with pytest.raises(ValueError, match="shape must be a non-empty sequence"):
        compression_ratio(3, (3, 0))
