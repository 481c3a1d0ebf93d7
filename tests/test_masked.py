"""Fitting on observed entries only: masked ALS of CP and Tucker (the row-wise kernel of
``_masked.py``), warm-start padding and rank growth (``_rank_search.py``)."""

from functools import partial

import numpy as np
import pytest

from tnml import testing
from tnml.decompositions import (
    CPTensor,
    Observations,
    cp_als,
    cp_complete,
    grow_rank,
    pad_cp,
    pad_tucker,
    random_cp,
    random_tucker,
    tucker_complete,
    tucker_hooi,
)


def _masked(X, fraction, seed=0):
    return np.random.default_rng(seed).random(X.shape) < fraction


def _missing_error(X, X_hat, mask):
    return np.linalg.norm((X - X_hat)[~mask]) / np.linalg.norm(X[~mask])


def _coordinates(shape, n, seed=0):
    return np.random.default_rng(seed).integers(0, shape, size=(n, len(shape)))


def test_cp_masked_als_recovers_missing_entries():
    X = random_cp((15, 16, 17), 2, random_state=1).to_tensor()
    mask = _masked(X, 0.25)
    cp, info = cp_als(
        np.where(mask, X, np.nan), 2, mask=mask, tol=1e-14, max_iter=500, random_state=0
    )
    assert _missing_error(X, cp.to_tensor(), mask) < 1e-6


def test_tucker_masked_als_recovers_missing_entries():
    X = random_tucker((15, 16, 17), (2, 3, 2), random_state=1).to_tensor()
    mask = _masked(X, 0.25)
    tucker, info = tucker_hooi(
        np.where(mask, X, np.nan), (2, 3, 2), mask=mask, tol=1e-14, max_iter=300
    )
    assert _missing_error(X, tucker.to_tensor(), mask) < 1e-6
    factor = tucker.factors[1]
    np.testing.assert_allclose(factor.T @ factor, np.eye(3), atol=1e-10)


@pytest.mark.parametrize("decompose", [partial(cp_als, rank=2), partial(tucker_hooi, rank=2)])
def test_em_option_still_works(decompose):
    X = random_cp((10, 11, 12), 2, random_state=1).to_tensor()
    mask = _masked(X, 0.6)
    fitted, info = decompose(np.where(mask, X, 0), mask=mask, missing="em", max_iter=500, tol=1e-14)
    assert _missing_error(X, fitted.to_tensor(), mask) < 1e-3
    with pytest.raises(ValueError, match="missing"):
        decompose(X, mask=mask, missing="impute")


def test_cp_complete_matches_dense_normal_equations():
    rng = np.random.default_rng(0)
    shape, rank, ridge = (4, 5, 6), 2, 1e-3
    X = rng.standard_normal(shape)
    mask = _masked(X, 0.6)
    unit = random_cp(shape, rank, random_state=0).normalize().factors
    start = CPTensor(np.ones(rank), unit)  # balanced already: cp_complete rescales nothing
    cp, _ = cp_complete(Observations.from_dense(X, mask), rank, init=start, max_iter=1, alpha=ridge)
    # Reference: one sweep of the textbook per-row normal equations, one row at a time.
    factors = [f.copy() for f in start.factors]
    coords = np.argwhere(mask)
    for mode in range(3):
        for row in range(shape[mode]):
            here = coords[coords[:, mode] == row]
            design = np.ones((len(here), rank))
            for other in set(range(3)) - {mode}:
                design *= factors[other][here[:, other]]
            gram = design.T @ design + ridge * np.eye(rank)
            factors[mode][row] = np.linalg.solve(gram, design.T @ X[tuple(here.T)])
    np.testing.assert_allclose(cp.to_tensor(), CPTensor(None, factors).to_tensor(), atol=1e-12)


def test_validation_errors_are_tracked():
    truth = random_cp((12, 13, 14), 2, random_state=0)
    coords = _coordinates(truth.shape, 800)
    held = _coordinates(truth.shape, 100, seed=1)
    _, info = cp_complete(
        Observations(coords, truth.entries(coords), truth.shape),
        2,
        validation=Observations(held, truth.entries(held), truth.shape),
        max_iter=5,
        tol=0,
    )
    assert len(info.validation_errors) == info.n_iter == 5


def test_pad_keeps_the_tensor_nearly_unchanged():
    cp = random_cp((5, 6, 7), 2, random_state=0)
    padded = pad_cp(cp, 4, scale=1e-6, random_state=0)
    assert padded.rank == 4
    np.testing.assert_allclose(padded.to_tensor(), cp.to_tensor(), atol=1e-4)
    tucker = random_tucker((5, 6, 7), (2, 2, 2), random_state=0)
    grown = pad_tucker(tucker, (3, 4, 2), scale=0.0, random_state=0)
    assert grown.rank == (3, 4, 2)
    np.testing.assert_allclose(grown.to_tensor(), tucker.to_tensor(), atol=1e-12)


def test_grow_rank_picks_the_true_rank():
    truth = random_cp((20, 20, 20), 3, random_state=2)
    coords = _coordinates(truth.shape, 3200)
    values = truth.entries(coords) + 1e-3 * np.random.default_rng(0).standard_normal(3200)
    obs = Observations(coords, values, truth.shape)

    def fit(observations, rank, init):
        return cp_complete(
            observations,
            rank,
            init="random" if init is None else init,
            tol=1e-8,
            max_iter=200,
            random_state=0,
        )

    best, rank, history = grow_rank(
        fit, partial(pad_cp, random_state=0), obs, range(1, 7), random_state=0
    )
    assert rank == 3 and best.rank == 3
    assert [h[0] for h in history][:4] == [1, 2, 3, 4]


@pytest.mark.parametrize("complete, rank", [(cp_complete, 2), (tucker_complete, (2, 2, 2))])
def test_completion_stays_on_the_device(complete, rank):
    truth = random_cp((6, 7, 8), 2, random_state=0)
    coords = _coordinates(truth.shape, 200)
    obs = Observations(testing.asarray(coords), testing.asarray(truth.entries(coords)), truth.shape)
    fitted, info = complete(obs, rank, max_iter=3, random_state=0, validation=obs)
    for array in fitted._arrays():
        assert isinstance(array, testing.HostGuardArray)
