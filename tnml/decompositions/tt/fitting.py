"""Fitting tensor trains: :func:`tt_als`, :func:`tt_dmrg`, :func:`tt_complete` and the warm
start :func:`pad_tt`."""

import math
from functools import partial

from ..._config import check_memory
from ..._validation import (
    check_masked_tensor,
    check_nonneg_float,
)
from ...backend import get_namespace, to_device
from .._chain import check_observations, complete_chain, pad_chain
from .._fitting import check_fit_params, check_missing, em_sweeps, fit_sweeps, with_restarts
from .._linalg import PAD_SCALE
from .._masked import Observations, SweepLog
from .format import (
    TTTensor,
    _check_init_shape,
    _check_tt_rank,
    _start_ranks,
    _step_delta,
    max_tt_rank,
    random_tt,
    tt_svd,
)
from .sweeps import als_sweep, dmrg_sweep, projection_error

__all__ = ["tt_als", "tt_dmrg", "tt_complete", "pad_tt"]

# tt_dmrg stops when the ranks are stable and the error changed by less than this (relative).
_DMRG_STALL = 1e-6


# -- fitting ------------------------------------------------------------------------------------
def _check_sweep_memory(shape, ranks, itemsize, what):
    # The largest buffers of a sweep: P[d-2] and the last frame, prod(I[:-1]) x r_{d-1} each.
    last_rank = 1 if ranks is None else ranks[-1]
    check_memory(2 * math.prod(shape[:-1]) * last_rank * itemsize, what)


def _fit(
    X,
    mask,
    cores,
    sweep,
    *,
    max_iter,
    tol,
    verbose,
    label,
    stop=None,
    caps=None,
    rel_delta=None,
    impute_from_init=True,
):
    """Run sweeps (EM-imputing unobserved entries when ``mask`` is given) until converged.

    ``sweep(X, cores, caps, rel_delta)`` returns the new cores and the last left frame;
    ``stop(errors, old_rank, new_rank)``, when given, replaces the stalled-error test.
    """
    xp = get_namespace(X, *cores)
    log = SweepLog(None, None, label, verbose, show_rank=True)
    ranks = [TTTensor(cores).rank]  # before the first sweep, then after each

    def tt_sweep(filled, state, iteration):
        new_cores, frame = sweep(filled, state[0], caps, rel_delta)
        ranks.append(TTTensor(new_cores).rank)
        return new_cores, frame

    def to_dense(state):
        cores, frame = state
        if frame is None:
            return TTTensor(cores).to_tensor()
        return xp.reshape(frame @ xp.reshape(cores[-1], (frame.shape[1], -1)), X.shape)

    def to_model(state):
        return TTTensor(state[0])

    stop_ranks = None if stop is None else (lambda errors: stop(errors, ranks[-2], ranks[-1]))
    if mask is not None:
        # A random start is no estimate of the missing entries: begin from zeros instead.
        (cores, _), info = em_sweeps(
            X,
            mask,
            (cores, None),
            tt_sweep,
            to_dense,
            impute_start=impute_from_init,
            max_iter=max_iter,
            tol=tol,
            log=log,
            to_model=to_model,
            stop=stop_ranks,
        )
        return TTTensor(cores), info
    norm_x = float(xp.linalg.norm(xp.reshape(X, (-1,))))
    state = (cores, None)

    def step(iteration):
        nonlocal state
        state = tt_sweep(X, state, iteration)
        return to_model(state), projection_error(X, state[1], state[0][-1], norm_x)

    info = fit_sweeps(step, max_iter, tol, log, X.dtype, stop=stop_ranks)
    return TTTensor(state[0]), info


# -- ALS ------------------------------------------------------------------------------------------
@with_restarts
def tt_als(
    X,
    rank,
    *,
    mask=None,
    missing="als",
    max_iter=100,
    tol=1e-8,
    init="svd",
    random_state=None,
    verbose=0,
):
    """Fixed-rank tensor-train approximation by one-site alternating least squares.

    Each iteration right-orthonormalizes the cores, projects X onto the right frames (one pass
    over X) and re-solves every core left to right as the projection of X on its frames,
    keeping the frames orthonormal with QR. The error follows from ``||X||^2 - ||last core||^2``
    (no densifying), or from the explicit residual once round-off would dominate it.

    Parameters
    ----------
    X : array of shape (I_1, ..., I_d), d >= 2
    rank : int, sequence of int or None
        Inner bond dimensions, as in :func:`tt_svd` (an int is capped per bond). ``None`` takes
        the ranks of ``init``, which must then be a TTTensor.
    mask : bool array of X's shape or None
        True where X is observed (unobserved entries may be NaN); errors are then measured on
        the observed entries.
    missing : {"als", "em"}, default="als"
        How a ``mask`` is handled. "als": every core is fitted to the observed entries only
        (:func:`tt_complete`, with its default alpha); "em": unobserved entries are imputed
        with the current reconstruction before every sweep of the dense algorithm.
    max_iter : int, default=100
        Maximum number of sweeps.
    tol : float, default=1e-8
        Stop when the relative change of the error between two sweeps is below ``tol``.
    init : {"svd", "random"} or TTTensor, default="svd"
        Starting point: TT-SVD at ``rank`` (of the zero-filled X under a mask), Gaussian cores
        drawn with ``random_state``, or a given TT of the same shape and ranks.
    n_init : int, default=1
        Number of starts: ``init`` first, then random ones drawn from ``random_state``; the fit
        with the lowest final error (held-out when ``validation`` is given) is kept. A start
        that fits to rounding ends the search.
    random_state : None, int or numpy RandomState
        Seeds ``init="random"``.
    verbose : int, default=0
        Print the error after each sweep.

    Returns
    -------
    tt : TTTensor
        Orthogonality centre on the last core (without a mask or with ``missing="em"``).
    result : FitResult
        Sweeps done, relative error after each, and whether ``tol`` was reached.

    References
    ----------
    S. Holtz, T. Rohwedder, R. Schneider, "The alternating linear scheme for tensor
    optimization in the tensor train format", SIAM J. Sci. Comput. 34(2), A683-A713, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tt import TTTensor, tt_als
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.standard_normal(s) for s in [(1, 4, 2), (2, 5, 3), (3, 6, 1)]]
    >>> X = TTTensor(cores).to_tensor()
    >>> tt, result = tt_als(X, rank=(2, 3), init="random", random_state=0)
    >>> tt.rank, result.converged, result.error < 1e-8
    ((1, 2, 3, 1), True, True)
    """
    X, mask = check_masked_tensor(X, mask)
    tol, _ = check_fit_params(max_iter, tol, verbose)
    check_missing(missing)
    xp, shape = get_namespace(X), tuple(X.shape)
    ranks = _start_ranks(rank, init, shape)
    if isinstance(init, TTTensor):
        cores = [to_device(core, xp) for core in init.cores]
    elif isinstance(init, str) and init == "svd":
        cores = tt_svd(X, rank=ranks)[0].cores
    elif isinstance(init, str) and init == "random":
        cores = random_tt(shape, ranks, random_state, xp, X.dtype).cores
    else:
        raise ValueError(f"init must be 'svd', 'random' or a TTTensor, got {init!r}")
    if mask is not None and missing == "als":
        return tt_complete(
            Observations.from_dense(X, mask),
            ranks,
            max_iter=max_iter,
            tol=tol,
            init=TTTensor(cores),
            verbose=verbose,
        )
    _check_sweep_memory(shape, ranks, X.dtype.itemsize, "tt_als sweep")
    return _fit(
        X,
        mask,
        cores,
        als_sweep,
        max_iter=max_iter,
        tol=tol,
        verbose=verbose,
        label="tt_als",
        impute_from_init=not isinstance(init, str) or init != "random",
    )


# -- DMRG -----------------------------------------------------------------------------------------
@with_restarts
def tt_dmrg(
    X,
    rank=None,
    *,
    cutoff=1e-10,
    mask=None,
    max_iter=20,
    init=None,
    random_state=None,
    verbose=0,
):
    """Tensor-train approximation whose ranks adapt to a tolerance (two-site DMRG sweeps).

    Each sweep projects X on the left frame of cores ``< k`` and the right frame of cores
    ``> k + 1``; the truncated SVD of that two-site supercore gives new cores ``k`` and
    ``k + 1``, so bond ``k + 1`` grows or shrinks to what ``cutoff`` requires. Starting from rank
    1, a few sweeps reach the TT ranks of a tensor with exact low TT rank.

    Parameters
    ----------
    X : array of shape (I_1, ..., I_d), d >= 2
    rank : int, sequence of int or None
        Caps on the inner bond dimensions, as in :func:`tt_svd`; None: no cap (the ranks are
        what ``cutoff`` needs).
    cutoff : float, default=1e-10
        Relative Frobenius truncation tolerance; each supercore SVD drops a tail of norm at most
        ``cutoff / sqrt(d - 1)`` times the supercore's norm (at convergence, about ``||X||``).
        The SVDs see projections of X, so the final error is close to ``cutoff``, not bounded
        by it as in :func:`tt_svd`.
    mask : bool array of X's shape or None
        True where X is observed; EM imputation as in :func:`tt_als`. Give ``rank`` (or a
        larger ``cutoff``) with a mask: the imputed tensor is not low-rank until the fit is, so a
        tiny tolerance lets the ranks grow to their maxima.
    max_iter : int, default=20
        Maximum number of sweeps.
    init : None, "random" or TTTensor
        Starting point: random rank-1 cores drawn with ``random_state`` (None, "random") or a
        TT of any ranks.
    n_init : int, default=1
        Number of starts: ``init``, then random rank-1 ones; the lowest error wins.
    random_state : None, int or numpy RandomState
    verbose : int, default=0

    Returns
    -------
    tt : TTTensor
        Orthogonality centre on the last core.
    result : FitResult
        ``converged`` when the error is at most ``cutoff``, or when the ranks stopped changing and
        the error changed by less than 1e-6 (relative) in the last sweep.

    References
    ----------
    S. R. White, "Density matrix formulation for quantum renormalization groups", Phys. Rev.
    Lett. 69, 2863, 1992. S. Holtz, T. Rohwedder, R. Schneider, SIAM J. Sci. Comput. 34(2),
    A683-A713, 2012 (MALS).

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tt import TTTensor, tt_dmrg
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.standard_normal(s) for s in [(1, 4, 2), (2, 5, 3), (3, 6, 1)]]
    >>> X = TTTensor(cores).to_tensor()
    >>> tt, result = tt_dmrg(X, random_state=0)
    >>> tt.rank, result.error < 1e-10
    ((1, 2, 3, 1), True)
    """
    X, mask = check_masked_tensor(X, mask)
    check_fit_params(max_iter, 0.0, verbose)
    cutoff = check_nonneg_float(cutoff, "cutoff")
    xp, shape = get_namespace(X), tuple(X.shape)
    caps = _check_tt_rank(rank, shape)
    if isinstance(init, TTTensor):
        _check_init_shape(init, shape)
        cores = [to_device(core, xp) for core in init.cores]
    elif init is None or (isinstance(init, str) and init == "random"):
        cores = random_tt(shape, 1, random_state, xp, X.dtype).cores
    else:
        raise ValueError(f"init must be None, 'random' or a TTTensor, got {init!r}")
    _check_sweep_memory(shape, caps or max_tt_rank(shape), X.dtype.itemsize, "tt_dmrg sweep")

    def stop(errors, old_rank, new_rank):
        if errors[-1] <= cutoff:
            return True
        return (
            len(errors) > 1
            and old_rank == new_rank
            and abs(errors[-2] - errors[-1]) <= _DMRG_STALL * errors[-2]
        )

    return _fit(
        X,
        mask,
        cores,
        dmrg_sweep,
        max_iter=max_iter,
        tol=cutoff,
        verbose=verbose,
        label="tt_dmrg",
        stop=stop,
        caps=caps,
        rel_delta=_step_delta(cutoff, 1.0, X.ndim),
        impute_from_init=isinstance(init, TTTensor),
    )


# -- completion -----------------------------------------------------------------------------------
@with_restarts
def tt_complete(
    observations,
    rank,
    *,
    max_iter=100,
    tol=1e-6,
    init="random",
    random_state=None,
    alpha=1e-8,
    verbose=0,
    validation=None,
):
    """Tensor-train completion by ALS over the observed entries only (never densifies).

    Core ``k``'s slice ``i`` is the ridge least-squares fit of the observed entries with
    ``i_k = i``, each against its design row, the outer product of its left environment (the
    product of cores ``< k`` at its indices, a row of length ``r_k``) and its right environment
    (length ``r_{k+1}``); see :func:`~tnml.decompositions._masked.solve_rowwise`. Sweeps go back
    and forth, updating one environment per step and keeping the other cores orthonormal, so
    the normal equations stay well conditioned. Cost per sweep
    ``O(n_obs sum_k (r_k r_{k+1})^2)``, memory ``O(n_obs d r)``: suited to long trains of small
    modes (a tensorized image) as well as to short trains of large ones.

    Parameters
    ----------
    observations : Observations
        Coordinates, values and shape of the observed entries.
    rank : int, sequence of int or None
        Inner bond dimensions, as in :func:`tt_svd` (an int is capped per bond). ``None`` takes
        the ranks of ``init``, which must then be a TTTensor.
    max_iter : int, default=100
        Maximum number of sweeps (one sweep updates every core once, alternating direction).
    tol : float, default=1e-6
        Stop when the relative training error changes by less than ``tol`` between sweeps.
    init : "random" or TTTensor, default="random"
        Gaussian cores drawn with ``random_state``, or a start of this shape and ranks (a
        warm start, e.g. from :func:`pad_tt`).
    n_init : int, default=1
        Number of starts: ``init`` first, then random ones drawn from ``random_state``; the fit
        with the lowest final error (held-out when ``validation`` is given) is kept. A start
        that fits to rounding ends the search.
    random_state : None, int or RandomState
    alpha : float, default=1e-8
        The ridge penalty ``alpha`` (absolute: added to the diagonal as is) of every slice's normal
        equations; a slice without observations becomes zero. With orthonormal environments the
        unridged normal matrix is about ``p I`` for a fraction ``p`` observed: that is the scale
        ``alpha`` compares with.
    verbose : int, default=0
        Print the errors after each sweep.
    validation : Observations, optional
        Held-out entries whose relative error is recorded after each sweep (it does not steer
        the fit).

    Returns
    -------
    tt : TTTensor
    result : FitResult
        ``errors``: relative error ``||x - x_hat|| / ||x||`` over the observed entries per sweep;
        ``validation_errors`` likewise over ``validation`` (None without it).

    See Also
    --------
    tt_als : dense ALS, and this function behind ``mask=..., missing="als"``.

    References
    ----------
    L. Grasedyck, M. Kluge, S. Kraemer, "Variants of alternating least squares tensor
    completion in the tensor train format", SIAM J. Sci. Comput. 37(5), A2424-A2450, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tt import TTTensor, tt_complete
    >>> from tnml.decompositions import Observations
    >>> rng = np.random.default_rng(0)
    >>> truth = TTTensor([rng.standard_normal(s) for s in [(1, 8, 2), (2, 9, 2), (2, 10, 1)]])
    >>> coords = np.argwhere(rng.random(truth.shape) < 0.5)
    >>> obs = Observations(coords, truth.entries(coords), truth.shape)
    >>> tt, result = tt_complete(obs, 2, tol=1e-10, random_state=0)
    >>> X = truth.to_tensor()
    >>> bool(np.linalg.norm(tt.to_tensor() - X) < 1e-6 * np.linalg.norm(X))
    True
    """
    observations, validation = check_observations(observations, validation)
    tol, alpha = check_fit_params(max_iter, tol, verbose, alpha)
    values, shape = observations.values, observations.shape
    xp = get_namespace(values)
    ranks = _start_ranks(rank, init, shape)
    random_start = partial(random_tt, shape, ranks, random_state, xp, values.dtype)
    return complete_chain(
        observations,
        init,
        random_start,
        max_iter=max_iter,
        tol=tol,
        alpha=alpha,
        verbose=verbose,
        validation=validation,
        to_format=TTTensor,
        label="tt_complete",
    )


def pad_tt(tt, new_rank, scale=PAD_SCALE, random_state=None):
    """Warm start at larger bond dimensions: ``tt`` with its cores padded by small noise.

    Parameters
    ----------
    tt : TTTensor
    new_rank : int or sequence of int
        Inner bond dimensions as in :func:`tt_svd` (an int is capped per bond); each at least
        the current one.
    scale : float, default=1e-3
        Standard deviation of the new entries relative to each core's root mean square; the
        tensor changes by ``O(scale^2)`` relative to its norm.
    random_state : None, int or RandomState

    Returns
    -------
    TTTensor

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions.tt import TTTensor, pad_tt
    >>> tt = TTTensor([np.ones((1, 4, 2)), np.ones((2, 5, 2)), np.ones((2, 6, 1))])
    >>> padded = pad_tt(tt, 3, random_state=0)
    >>> padded.rank, bool(np.allclose(padded.to_tensor(), tt.to_tensor(), rtol=1e-4))
    ((1, 3, 3, 1), True)
    """
    if not isinstance(tt, TTTensor):
        raise TypeError(f"tt must be a TTTensor, got {type(tt).__name__}")
    ranks = (1,) + _check_tt_rank(new_rank, tt.shape, name="new_rank") + (1,)
    return pad_chain(tt, ranks, scale, random_state)
