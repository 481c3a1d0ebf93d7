"""The fitting scaffold of every ALS-type algorithm (CP, Tucker, TT, TR; dense, EM and masked).

Each algorithm supplies one *sweep* (how it updates its factors or cores) and how it measures
its error; everything around that is written once here:

- :func:`check_fit_params` and :func:`check_missing`, the parameters every fit shares;
- :func:`fit_sweeps`, the sweep loop: it records every sweep in a
  :class:`~tnml.decompositions._masked.SweepLog` (errors, held-out errors, verbose lines) and
  stops at an exact fit, when the error stalls, or at ``max_iter``;
- :func:`em_sweeps`, the EM loop around a dense sweep: the unobserved entries are imputed by
  the current model before every sweep;
- :func:`is_exact_fit` and :func:`expanded_error`: what "exact" means, and when the cheap
  expanded error formula has cancelled and the residual must be formed explicitly.
"""

import math
import numbers

import numpy as np

from .._validation import check_nonneg_float, check_positive_int
from ..backend import get_namespace

__all__ = [
    "check_fit_params",
    "check_missing",
    "is_exact_fit",
    "expanded_error",
    "fit_sweeps",
    "em_sweeps",
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


def check_fit_params(max_iter, tol, verbose=False, ridge=0.0):
    """Validated ``(tol, ridge)`` of a fit; raises on a bad ``max_iter`` or ``verbose``."""
    check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    ridge = check_nonneg_float(ridge, "ridge")
    if not isinstance(verbose, (bool, numbers.Integral)):
        raise TypeError(f"verbose must be a bool or an int, got {verbose!r}")
    return tol, ridge


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


def stalled(errors, tol, lag):
    """The error changed by at most ``tol`` (relative) over the last ``lag`` sweeps."""
    return len(errors) > lag and abs(errors[-1 - lag] - errors[-1]) <= tol * errors[-1 - lag]


def fit_sweeps(step, max_iter, tol, log, dtype, lag=1, stop=None):
    """The sweep loop: run ``step`` until an exact fit, a stalled error, or ``max_iter``.

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
    return log.result(converged)


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
