"""The chain and ring engine of TT and TR completion (``_chain.py``): masked ALS, padding and
the EM alternative."""

import time

import numpy as np
import pytest

from tnml import testing
from tnml.backend import to_numpy
from tnml.decompositions import Observations, _chain
from tnml.decompositions.tr import TRTensor, pad_tr, tr_als, tr_complete
from tnml.decompositions.tt import TTTensor, pad_tt, tt_als, tt_complete


def random_tt(shape, rank, seed=0):
    rng = np.random.default_rng(seed)
    full = [1] + [rank] * (len(shape) - 1) + [1]
    return TTTensor([rng.standard_normal((full[k], n, full[k + 1])) for k, n in enumerate(shape)])


def random_tr(shape, rank, seed=0):
    rng = np.random.default_rng(seed)
    return TRTensor([rng.standard_normal((rank, n, rank)) for n in shape])


def observe(X, fraction, seed=0):
    mask = np.random.default_rng(seed).random(X.shape) < fraction
    return mask, Observations.from_dense(X, mask)


def missing_error(model, X, mask):
    return np.linalg.norm((model.to_tensor() - X)[~mask]) / np.linalg.norm(X[~mask])


# -- recovery -------------------------------------------------------------------------------------
def test_tt_recovers_low_rank_tensor_from_20_percent():
    X = random_tt((10, 11, 12, 13), 3).to_tensor()
    mask, obs = observe(X, 0.2)
    validation = Observations.from_dense(X, ~mask)
    tt, result = tt_complete(obs, 3, tol=1e-10, max_iter=300, random_state=0, validation=validation)
    assert result.converged and tt.rank == (1, 3, 3, 3, 1)
    assert missing_error(tt, X, mask) < 1e-6
    assert len(result.validation_errors) == result.n_iter
    assert result.validation_errors[-1] < 1e-6 < result.validation_errors[0]


def test_tr_recovers_low_rank_ring_with_restarts():
    # TR-ALS has local minima (a random start reaches the global fit about half the time on
    # this instance): keep the best of a few seeds by training error, as a user would.
    truth = random_tr((8, 9, 10), 2)
    X = truth.to_tensor()
    mask, obs = observe(X, 0.4)
    fits = [tr_complete(obs, 2, tol=1e-10, max_iter=300, random_state=seed) for seed in range(4)]
    tr, result = min(fits, key=lambda fit: fit[1].error)
    assert result.error < 1e-6 and missing_error(tr, X, mask) < 1e-5


def test_rank_growth_with_padding_recovers_long_train():
    # (4,)*8 at 10%: 6.5k entries for 177 degrees of freedom. A random start at the final rank
    # can stall in a local minimum; growing the rank from 1 with warm starts does not.
    X = random_tt((4,) * 8, 3).to_tensor()
    mask, obs = observe(X, 0.1)
    start = time.perf_counter()
    tt, _ = tt_complete(obs, 1, max_iter=30, random_state=0)
    for rank in (2, 3):
        tt, result = tt_complete(
            obs,
            rank,
            init=pad_tt(tt, rank, random_state=0),
            tol=1e-10 if rank == 3 else 1e-4,
            max_iter=200,
        )
    assert time.perf_counter() - start < 15
    assert tt.rank == (1,) + (3,) * 7 + (1,) and missing_error(tt, X, mask) < 1e-5


# -- the normal equations -------------------------------------------------------------------------
def dense_core_solution(model, obs, k, ridge):
    """Core k from an explicitly built design: column (a, i, b) is the model with core k
    replaced by the unit tensor E_{a i b}, evaluated at the observations."""
    cores, shape = model.cores, model.cores[k].shape
    design = np.empty((obs.n_obs, np.prod(shape)))
    for column in range(design.shape[1]):
        unit = np.zeros(shape)
        unit.flat[column] = 1.0
        design[:, column] = type(model)(cores[:k] + [unit] + cores[k + 1 :]).entries(obs.indices)
    core = np.zeros(shape)
    for i in range(shape[1]):
        rows = obs.indices[:, k] == i
        cols = [
            np.ravel_multi_index((a, i, b), shape) for a in range(shape[0]) for b in range(shape[2])
        ]
        A, y = design[np.ix_(rows, cols)], obs.values[rows]
        core[:, i, :] = np.linalg.solve(A.T @ A + ridge * np.eye(len(cols)), A.T @ y).reshape(
            shape[0], shape[2]
        )
    return core


@pytest.mark.parametrize(
    "make", [lambda: random_tt((3, 4, 5, 3), 2, seed=1), lambda: random_tr((3, 4, 5), 2, seed=1)]
)
def test_rowwise_normal_equations_match_dense_reference(make):
    model = make()
    X = model.to_tensor() + 0.1 * np.random.default_rng(2).standard_normal(model.shape)
    _, obs = observe(X, 0.5)
    state = _chain._Environments(obs, [np.array(core) for core in model.cores])
    for k in list(range(model.ndim)) + list(range(model.ndim - 2, -1, -1)):
        state.move_to(k)
        reference = dense_core_solution(type(model)(state.cores), obs, k, ridge=1e-3)
        state.solve(1e-3)
        np.testing.assert_allclose(state.cores[k], reference, atol=1e-10)
        np.testing.assert_allclose(
            state.predictions(), type(model)(state.cores).entries(obs.indices), atol=1e-12
        )


# -- tt_als / tr_als with a mask ------------------------------------------------------------------
def test_als_is_the_default_and_em_still_works():
    X = random_tt((8, 9, 10), 2, seed=3).to_tensor()
    mask = np.random.default_rng(0).random(X.shape) > 0.4
    X_missing = np.where(mask, X, np.nan)
    tt_a, result_a = tt_als(X_missing, 2, mask=mask, tol=1e-10, max_iter=300)
    tt_e, result_e = tt_als(X_missing, 2, mask=mask, missing="em", tol=1e-10, max_iter=300)
    assert missing_error(tt_a, X, mask) < 1e-6 and missing_error(tt_e, X, mask) < 1e-5
    assert result_a.n_iter < result_e.n_iter  # ALS on observed entries converges faster
    with pytest.raises(ValueError, match="missing"):
        tt_als(X_missing, 2, mask=mask, missing="mean")

    Y = random_tr((8, 9, 10), 2, seed=4).to_tensor()
    mask = np.random.default_rng(0).random(Y.shape) > 0.3
    Y_missing = np.where(mask, Y, np.nan)
    errors = {
        missing: missing_error(
            tr_als(
                Y_missing,
                2,
                mask=mask,
                missing=missing,
                init="random",
                tol=1e-10,
                max_iter=300,
                random_state=0,
            )[0],
            Y,
            mask,
        )
        for missing in ("als", "em")
    }
    assert max(errors.values()) < 1e-4, errors
    with pytest.raises(ValueError, match="missing"):
        tr_als(Y_missing, 2, mask=mask, missing="mean")


# -- padding --------------------------------------------------------------------------------------
def test_pad_keeps_the_tensor():
    tt = random_tt((4, 5, 6, 3), 2)
    padded = pad_tt(tt, (3, 4, 3), scale=1e-3, random_state=0)
    assert padded.rank == (1, 3, 4, 3, 1)
    X = tt.to_tensor()
    assert 0 < np.linalg.norm(padded.to_tensor() - X) / np.linalg.norm(X) < 1e-4
    tr = random_tr((4, 5, 6), 2)
    padded = pad_tr(tr, (3, 2, 4), scale=1e-3, random_state=0)
    assert padded.rank == (3, 2, 4)
    Y = tr.to_tensor()
    assert 0 < np.linalg.norm(padded.to_tensor() - Y) / np.linalg.norm(Y) < 1e-4
    assert pad_tt(tt, 2).rank == tt.rank
    with pytest.raises(ValueError, match="new_rank"):
        pad_tt(tt, (1, 2, 2))
    with pytest.raises(ValueError, match="new_rank"):
        pad_tr(tr, 1)
    with pytest.raises(TypeError, match="tt must be a TTTensor"):
        pad_tt(tr, 3)


# -- namespaces -----------------------------------------------------------------------------------
@pytest.mark.parametrize("complete", [tt_complete, tr_complete])
def test_host_guard_in_host_guard_out(complete):
    X = random_tt((5, 6, 7), 2).to_tensor()
    mask = np.random.default_rng(0).random(X.shape) < 0.5
    obs = Observations.from_dense(testing.asarray(X), testing.asarray(mask))
    held_out = Observations.from_dense(testing.asarray(X), testing.asarray(~mask))
    model, result = complete(obs, 2, max_iter=3, random_state=0, validation=held_out)
    assert all(isinstance(core, testing.HostGuardArray) for core in model.cores)
    assert len(result.validation_errors) == 3
    host, _ = complete(Observations.from_dense(X, mask), 2, max_iter=3, random_state=0)
    for core, reference in zip(model.cores, host.cores):
        np.testing.assert_allclose(to_numpy(core), reference, atol=1e-10)


# -- bad input ------------------------------------------------------------------------------------
OBS = Observations.from_dense(np.ones((3, 4, 5)), np.ones((3, 4, 5), dtype=bool))


@pytest.mark.parametrize(
    "complete, kwargs, error, match",
    [
        (tt_complete, {"rank": (2, 9)}, ValueError, "rank"),
        (tt_complete, {"rank": (2, 2, 2)}, ValueError, "rank"),
        (tr_complete, {"rank": (3, 3, 30)}, ValueError, "rank"),
        (tt_complete, {"rank": 2, "alpha": -1.0}, ValueError, "alpha"),
        (tr_complete, {"rank": 2, "max_iter": 0}, ValueError, "max_iter"),
        (tt_complete, {"rank": 2, "init": "svd"}, ValueError, "init"),
        (tr_complete, {"rank": 2, "init": random_tr((3, 4, 5), 3)}, ValueError, "init"),
        (tt_complete, {"rank": None}, ValueError, "rank"),
        (
            tt_complete,
            {
                "rank": 2,
                "validation": Observations.from_dense(np.ones((3, 4)), np.ones((3, 4), dtype=bool)),
            },
            ValueError,
            "validation",
        ),
    ],
)
def test_bad_parameters_name_themselves(complete, kwargs, error, match):
    with pytest.raises(error, match=match):
        complete(OBS, **kwargs)


@pytest.mark.parametrize("complete", [tt_complete, tr_complete])
def test_observations_are_checked(complete):
    with pytest.raises(TypeError, match="observations must be an Observations"):
        complete(np.ones((3, 4, 5)), 2)
    with pytest.raises(TypeError, match="observations must have floating values"):
        complete(Observations(np.zeros((2, 3), dtype=int), np.arange(2), (3, 4, 5)), 2)
    with pytest.raises(ValueError, match="no observed entries"):
        complete(Observations(np.zeros((0, 3), dtype=int), np.zeros(0), (3, 4, 5)), 2)
