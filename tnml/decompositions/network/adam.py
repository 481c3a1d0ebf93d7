"""Fitting a tensor network of a fixed structure by Adam (:func:`network_adam`).

:func:`network_adam` fits the same model by Adam with analytic gradients (each core's gradient
is the residual contracted with its environment): the protocol of the reference
implementations (10,000 Adam steps from N(0, 0.1) cores, learning rate 0.001), kept so that
it can be reproduced and compared.
"""

import math

from ..._config import check_memory
from ..._validation import check_nonneg_float
from ...backend import check_random_state, get_namespace
from ...contract import compile_einsum, contraction_info
from .._base import FitResult
from .._fitting import best_of_starts, target_reached
from .als import (
    _EXECUTION_FACTOR,
    _blas_threads,
    _check_network_fit_params,
    _initial_cores,
    _plan,
    _prepare,
)
from .format import TensorNetwork
from .structure import _PATH, _full_contraction


# -- Adam -----------------------------------------------------------------------------------------
def adam_update(params, grads, first, second, step_size, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update (Kingma & Ba) of every array of ``params``, in place of the lists.

    ``first`` and ``second`` are the moment estimates (lists like ``params``, updated in
    place); ``step_size`` already carries the bias correction
    ``learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t)``. Shared by :func:`network_adam` and
    the MPS models' Adam solver.
    """
    xp = get_namespace(*params)
    for k, grad in enumerate(grads):
        first[k] = beta1 * first[k] + (1 - beta1) * grad
        second[k] = beta2 * second[k] + (1 - beta2) * grad * grad
        params[k] = params[k] - step_size * first[k] / (xp.sqrt(second[k]) + eps)
    return params


def network_adam(
    X,
    adjacency,
    permutation=None,
    *,
    mask=None,
    init="random",
    learning_rate=1e-3,
    max_iter=10000,
    target_error=None,
    n_init=1,
    init_std=0.1,
    random_state=None,
    verbose=0,
):
    """Fit a tensor network of a fixed structure by Adam with analytic gradients.

    The loss is the squared relative error ``||M * (X - T)||^2 / ||M * X||^2`` (``M`` the
    mask, all ones without one), the reference implementations' ``rse_loss``; the gradient
    with respect to core ``k`` is ``-2 / ||M X||^2`` times the residual contracted with core
    ``k``'s environment. The defaults reproduce the reference protocol: cores drawn from
    N(0, ``init_std`` = 0.1), learning rate 0.001, 10,000 steps.

    Parameters
    ----------
    X, adjacency, permutation, mask
        As in :func:`network_als`.
    init : "random" or TensorNetwork, default="random"
    learning_rate : float, default=1e-3
    max_iter : int, default=10000
        Adam steps per start.
    target_error : float or None
        Stop a start once its relative error (the square root of the loss) is at most this.
    n_init : int, default=1
        Starts; the best is returned.
    init_std : float, default=0.1
        Standard deviation of the random cores.
    random_state : None, int or numpy RandomState
    verbose : int, default=0
        Print the error every 1000 steps.

    Returns
    -------
    network : TensorNetwork
    result : FitResult
        ``errors`` holds the relative error every 100 steps and at the end; ``n_iter`` the
        steps of the returned start.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import random_network, network_adam
    >>> chain = [[3, 2, 0], [2, 3, 2], [0, 2, 3]]
    >>> X = random_network(chain, random_state=0).to_tensor()
    >>> net, result = network_adam(X, chain, learning_rate=0.01, max_iter=3000, random_state=0)
    >>> bool(result.error < 1e-2)
    True
    """
    _, target_error, n_init, _ = _check_network_fit_params(
        max_iter, 0.0, target_error, n_init, verbose
    )
    learning_rate = check_nonneg_float(learning_rate, "learning_rate")
    init_std = check_nonneg_float(init_std, "init_std")
    X, mask, adjacency, permutation, graph = _prepare(X, adjacency, permutation, mask, init)
    plan = _plan(adjacency, permutation, X.dtype.itemsize)
    itemsize = X.dtype.itemsize
    # Adam's own peak, not ALS's (whose plan slices environments Adam never forms): X, the
    # residual and the mask's weights, and the larger of the dense tensor's contraction (in
    # slices) and a gradient's (the residual contracted with a core's environment).
    gradient = max(
        contraction_info(
            graph.rhs_subscripts(k),
            X.shape,
            *[graph.core_shapes[q] for q in graph.others(k)],
            optimize=_PATH,
        ).nbytes(itemsize)
        for k in range(graph.n_cores)
    )
    xp = get_namespace(X)
    full = _full_contraction(graph, xp, itemsize)
    check_memory(
        3 * X.size * itemsize + _EXECUTION_FACTOR * max(full.info.nbytes(itemsize), gradient),
        f"network_adam on a structure of {graph.n_cores} cores",
    )
    rng = check_random_state(random_state)
    weight = None if mask is None else xp.asarray(mask, dtype=X.dtype)
    norm_x_sq = float(xp.sum(X * X)) or 1.0
    gradients = [
        compile_einsum(
            graph.rhs_subscripts(k),
            X.shape,
            *[graph.core_shapes[q] for q in graph.others(k)],
            xp=xp,
            itemsize=itemsize,
            optimize=_PATH,
        )
        for k in range(graph.n_cores)
    ]
    others = [graph.others(k) for k in range(graph.n_cores)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def fit(start, rng):
        cores = _initial_cores(graph, X, init if start == 0 else "random", 0.0, rng, init_std)
        first = [xp.zeros_like(core) for core in cores]
        second = [xp.zeros_like(core) for core in cores]
        errors, error, step = [], float("nan"), 0
        for step in range(1, max_iter + 1):
            residual = full(*cores) - X
            if weight is not None:
                residual = residual * weight
            error = math.sqrt(float(xp.sum(residual * residual)) / norm_x_sq)
            if step % 100 == 1:
                errors.append(error)
            if verbose and step % 1000 == 1:
                print(f"network_adam step {step}: relative error {error:.6g}")
            if target_error is not None and error <= target_error:
                break
            # Bias-corrected step size, as in Kingma & Ba (and TensorFlow's AdamOptimizer).
            alpha = learning_rate * math.sqrt(1 - beta2**step) / (1 - beta1**step)
            residual = residual * (2.0 / norm_x_sq)
            grads = [
                gradients[k](residual, *[cores[q] for q in others[k]]) for k in range(graph.n_cores)
            ]
            adam_update(cores, grads, first, second, alpha, beta1, beta2, eps)
        residual = full(*cores) - X
        if weight is not None:
            residual = residual * weight
        error = math.sqrt(float(xp.sum(residual * residual)) / norm_x_sq)
        errors.append(error)
        result = FitResult(step, errors, target_error is not None and error <= target_error)
        return TensorNetwork(cores, adjacency, permutation), result

    with _blas_threads(plan.small):
        return best_of_starts(fit, n_init, rng, stop=target_reached(target_error))
