"""The fitting scaffold of every ALS-type algorithm (CP, Tucker, TT, TR; dense, EM and masked).

Each algorithm supplies one *sweep* (how it updates its factors or cores) and how it measures
its error; everything around that is written once here:

- :func:`check_fit_params` and :func:`check_missing`, the parameters every fit shares;
- :func:`fit_sweeps`, the sweep loop: it records every sweep in a
  :class:`~tnml.decompositions._masked.SweepLog` (errors, held-out errors, verbose lines) and
  stops at an exact fit, when the error stalls, or at ``max_iter``;
- :func:`em_sweeps`, the EM loop around a dense sweep: the unobserved entries are imputed by
  the current model before every sweep;
- :func:`with_restarts` and :func:`best_of_starts`: ``n_init`` starts, the best kept;
- :func:`is_exact_fit` and :func:`expanded_error`: what "exact" means, and when the cheap
  expanded error formula has cancelled and the residual must be formed explicitly.
"""

import functools
import inspect
import math
import numbers
import time

import numpy as np

from .._validation import check_nonneg_float, check_positive_int
from ..backend import check_random_state, get_namespace
from ._base import FitResult

__all__ = [
    "check_fit_params",
    "check_missing",
    "is_exact_fit",
    "expanded_error",
    "fit_sweeps",
    "em_sweeps",
    "truncation_result",
    "check_n_init",
    "best_of_starts",
    "target_reached",
    "with_restarts",
]

# A relative error this many machine epsilons above zero is exact recovery: stop even if the
# relative change of two round-off-level errors is still large. 1000 rather than 100: normal
# equations (TR-ALS, every masked ALS) square the condition number of their design, which
# lifts their round-off floor that much above an orthogonal sweep's.
EXACT_FIT_EPS = 1000
# ||X||^2 - 2<X, X_hat> + ||X_hat||^2 has a relative precision of about eps / err^2. Below
# err^2 = CANCELLATION_EPS * eps (err ~ 1.5e-4 in float64) the residual is formed explicitly,
# so that the errors and the convergence test on them stay meaningful down to round-off.
CANCELLATION_EPS = 1e8


def check_fit_params(max_iter, tol, verbose=0, alpha=0.0):
    """Validated ``(tol, alpha)`` of a fit; raises on a bad ``max_iter`` or ``verbose``."""
    check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    alpha = check_nonneg_float(alpha, "alpha")
    if not isinstance(verbose, (bool, numbers.Integral)):
        raise TypeError(f"verbose must be a bool or an int, got {verbose!r}")
    return tol, alpha


def check_missing(missing):
    """How a mask is used: 'als' (fit the observed entries only) or 'em' (impute, then fit)."""
    if missing not in ("als", "em"):
        raise ValueError(f"missing must be 'als' or 'em', got {missing!r}")
    return missing


def is_exact_fit(error, dtype):
    """Whether a relative error is at round-off level for ``dtype`` (nothing left to fit)."""
    return error <= EXACT_FIT_EPS * float(np.finfo(dtype).eps)


def expanded_error(squared_residual, squared_norm, dtype):
    """``sqrt(squared_residual / squared_norm)``, or None where the expansion has cancelled.

    ``squared_residual`` comes from an expansion such as ``||X||^2 - 2<X, X_hat> +
    ||X_hat||^2``; a caller getting None forms the residual explicitly.
    """
    if squared_residual > CANCELLATION_EPS * float(np.finfo(dtype).eps) * squared_norm:
        return math.sqrt(squared_residual / squared_norm)
    return None


def truncation_result(X, model, model_norm=None, norm=None):
    """The :class:`FitResult` of a one-pass (SVD-type) fit: one iteration, converged, and the
    relative error of the truncation in ``errors``.

    ``model_norm``: the model's norm when it is an orthogonal projection of X (HOSVD, TT-SVD),
    so that ``||X - model||^2 = ||X||^2 - ||model||^2`` needs no reconstruction unless that
    difference has cancelled; otherwise the residual is formed. ``norm``: ``||X||`` when the
    caller has it.
    """
    xp = get_namespace(X)
    norm_sq = (float(xp.linalg.norm(xp.reshape(X, (-1,)))) if norm is None else norm) ** 2
    if norm_sq == 0:
        return FitResult(1, [0.0], True)
    error = None
    if model_norm is not None:
        error = expanded_error(max(norm_sq - model_norm**2, 0.0), norm_sq, X.dtype)
    if error is None:
        error = float(xp.linalg.norm(xp.reshape(X - model.to_tensor(), (-1,)))) / math.sqrt(norm_sq)
    return FitResult(1, [error], True)


def stalled(errors, tol, lag):
    """The error changed by at most ``tol`` (relative) over the last ``lag`` sweeps."""
    return len(errors) > lag and abs(errors[-1 - lag] - errors[-1]) <= tol * errors[-1 - lag]


def fit_sweeps(step, max_iter, tol, log, dtype, lag=1, stop=None, deadline=None):
    """The sweep loop: run ``step`` until an exact fit, a stalled error, ``max_iter`` or
    ``deadline``.

    Parameters
    ----------
    step : callable
        ``step(iteration)`` runs one sweep and returns ``(model, error)``: the model as
        ``log`` needs it (a format when ``log`` has observations to score) and its relative
        error, or None for ``log`` to measure it on its observations.
    max_iter : int
    tol : float
        Converged when the error changes by at most ``tol`` (relative) over ``lag`` sweeps.
    log : SweepLog
    dtype : dtype
        Of the data: sets the round-off level of an exact fit.
    lag : int, default=1
        Sweeps apart of the two errors compared (2 for back-and-forth sweeps, whose errors
        alternate with the direction).
    stop : callable, optional
        ``stop(errors)`` replaces the stalled-error test.
    deadline : float, optional
        A :func:`time.monotonic` time after which no further sweep starts (the fit is then
        not converged); at least one sweep always runs.

    Returns
    -------
    FitResult
    """
    converged = False
    for iteration in range(max_iter):
        model, error = step(iteration)
        error = log.record(model, error)
        stopped = stop(log.errors) if stop is not None else stalled(log.errors, tol, lag)
        if is_exact_fit(error, dtype) or stopped:
            converged = True
            break
        if past(deadline):
            break
    return log.result(converged)


def past(deadline):
    """Whether the :func:`time.monotonic` ``deadline`` (None: none) has passed."""
    return deadline is not None and time.monotonic() >= deadline


def em_sweeps(
    X, mask, state, sweep, to_dense, *, impute_start, max_iter, tol, log, to_model=None, stop=None
):
    """The EM loop: a dense sweep on X with its unobserved entries imputed by the model.

    Parameters
    ----------
    X : array
        Zero at the unobserved entries.
    mask : bool array
        True where X is observed.
    state
        The algorithm's start (factors, cores, ...), passed to ``sweep`` and ``to_dense``.
    sweep : callable
        ``sweep(filled, state, iteration)`` returns the new state after one dense sweep.
    to_dense : callable
        ``to_dense(state)`` is the model as a dense tensor of X's shape.
    impute_start : bool
        Impute from the start's model before the first sweep; otherwise the first sweep sees
        zeros there (a random start is no estimate of the missing entries).
    max_iter, tol, log
        As in :func:`fit_sweeps`; the errors are relative over the observed entries.
    to_model : callable, optional
        ``to_model(state)`` is what ``log`` records (its verbose line may show the rank).
    stop : callable, optional
        As in :func:`fit_sweeps`.

    Returns
    -------
    state, FitResult
    """
    xp = get_namespace(X, mask)
    norm = float(xp.linalg.norm(xp.reshape(X, (-1,)))) or 1.0
    filled = xp.where(mask, X, to_dense(state)) if impute_start else X
    current = state

    def step(iteration):
        nonlocal current, filled
        current = sweep(filled, current, iteration)
        approx = to_dense(current)
        residual = xp.where(mask, X - approx, 0)
        filled = xp.where(mask, X, approx)
        model = current if to_model is None else to_model(current)
        return model, float(xp.linalg.norm(xp.reshape(residual, (-1,)))) / norm

    result = fit_sweeps(step, max_iter, tol, log, X.dtype, stop=stop)
    return current, result


def check_n_init(n_init):
    """``n_init`` as a positive int (scikit-learn's name for the number of starts)."""
    if isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral) or n_init < 1:
        raise ValueError(f"n_init must be a positive int, got {n_init!r}")
    return int(n_init)


def target_reached(target_error):
    """The ``stop`` of :func:`best_of_starts` for a target error (None: never stop early)."""
    if target_error is None:
        return None
    return lambda result: result.error <= target_error


def best_of_starts(fit, n_init, random_state=None, stop=None):
    """Run ``fit`` from ``n_init`` starts and keep the best result.

    Parameters
    ----------
    fit : callable
        ``fit(start, rng)`` returns ``(format, FitResult)``; ``start`` is 0 for the caller's
        own initialisation and 1, 2, ... for the extra (random) ones, drawn from ``rng``.
    n_init : int
    random_state : None, int or RandomState
        One generator for all starts, so that a seed makes the whole set reproducible.
    stop : callable, optional
        ``stop(result)`` (the FitResult of a start) True ends the search after that start,
        e.g. when it reached a target error.

    Returns
    -------
    format, FitResult
        The result with the lowest last held-out error when the fit records one (completion
        with ``validation``), else the lowest last training error. A start that already fits
        to rounding ends the search.
    """
    rng = check_random_state(random_state)
    best, best_score = None, math.inf
    for start in range(check_n_init(n_init)):
        result = fit(start, rng)
        info = result[1]
        held_out = getattr(info, "validation_errors", None)
        score = held_out[-1] if held_out else info.error
        if best is None or score < best_score:
            best, best_score = result, score
        if is_exact_fit(info.error, result[0].dtype):  # no other start can do better
            break
        if stop is not None and stop(info):
            break
    return best


def with_restarts(func=None, *, n_init=1, retry_stalled=False):
    """Give an algorithm ``func(data, ..., *, init, random_state, ...)`` an ``n_init`` keyword
    (default ``n_init``; use as ``@with_restarts`` or ``@with_restarts(n_init=3)``).

    ``retry_stalled``: a single fit from a named start (not a warm start) that ends at
    ``max_iter`` without converging gets one random start more, and the better of the two is
    kept: a stall is the sign of a swamp, and it costs nothing where the start works.

    ``n_init=1`` calls ``func`` unchanged; more starts run ``init`` first and then
    ``init='random'`` starts drawn from one generator seeded by ``random_state``, and keep the
    best by :func:`best_of_starts`' rule (held-out error when ``validation`` is given). When
    ``init`` is a given start (a format, e.g. a warm start) and ``n_init`` is not given, one
    fit runs from it, as scikit-learn's KMeans does with an explicit ``init`` array.
    """
    if func is None:
        return functools.partial(with_restarts, n_init=n_init, retry_stalled=retry_stalled)
    default_init = inspect.signature(func).parameters["init"].default
    default_n_init = n_init

    @functools.wraps(func)
    def wrapper(data, *args, n_init=None, init=default_init, random_state=None, **kwargs):
        if n_init is None:
            n_init = default_n_init if isinstance(init, str) else 1
        if check_n_init(n_init) == 1:
            result = func(data, *args, init=init, random_state=random_state, **kwargs)
            if not (
                retry_stalled
                and isinstance(init, str)
                and init != "random"
                and not result[1].converged
            ):
                return result
            n_init = 2
        return best_of_starts(
            lambda start, rng: func(
                data, *args, init=init if start == 0 else "random", random_state=rng, **kwargs
            ),
            n_init,
            random_state,
        )

    # The signature shows ``n_init`` (keyword-only, after ``init``) so that help(), IDEs and
    # scikit-learn-style introspection see the parameter the wrapper adds.
    params = list(inspect.signature(func).parameters.values())
    where = next(i for i, p in enumerate(params) if p.name == "init") + 1
    params.insert(
        where, inspect.Parameter("n_init", inspect.Parameter.KEYWORD_ONLY, default=default_n_init)
    )
    wrapper.__signature__ = inspect.signature(func).replace(parameters=params)
    return wrapper
