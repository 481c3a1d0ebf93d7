"""Rank selection for completion by warm-started rank growth on held-out entries.

Fitting rank after rank from scratch wastes most of the work: a rank-``r`` fit is already a
good start for rank ``r + 1`` once a few small new components are added. :func:`grow_rank`
therefore grows the rank, each fit warm-started from the previous one, and watches the error
on a held-out part of the observations: it keeps the rank where that error is lowest and stops
once it has risen ``patience`` times in a row. It knows no format: the caller passes the
fitting and padding functions (CP, Tucker, TT and TR provide them).
"""

import numpy as np

from ..backend import check_random_state, get_namespace, to_device, to_numpy
from ._masked import observed_error

__all__ = ["grow_rank", "split_mask", "split_observations"]


def _draw_held_out(n_obs, validation_fraction, random_state):
    """Host positions ``(train, held_out)`` of a random split of ``n_obs`` entries.

    One permutation of ``n_obs`` from a legacy RandomState; its first
    ``round(validation_fraction * n_obs)`` positions are held out. (``RandomState.choice(n, k,
    replace=False)`` draws exactly these, so earlier splits made with it are unchanged.)
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    n_held_out = int(round(validation_fraction * n_obs))
    if not 1 <= n_held_out < n_obs:
        raise ValueError(
            f"validation_fraction={validation_fraction} of {n_obs} observed "
            f"entries leaves no entry on one side of the split"
        )
    # Drawn on the host so that a seed gives the same split on every namespace.
    permutation = check_random_state(random_state).permutation(n_obs)
    return permutation[n_held_out:], permutation[:n_held_out]


def split_observations(observations, validation_fraction, random_state=None):
    """Random split of observations into a training and a held-out part.

    The same entries are held out as by :func:`split_mask` on the mask of these observations
    (for the same seed), when the observations are in row-major order (as
    :meth:`Observations.from_mask` gives them).

    Parameters
    ----------
    observations : Observations
    validation_fraction : float
        Share of the entries held out, in (0, 1); at least one entry on each side.
    random_state : None, int or RandomState

    Returns
    -------
    train, validation : Observations

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import Observations
    >>> from tnml.decompositions import split_observations
    >>> obs = Observations(np.arange(20).reshape(10, 2) % 5, np.ones(10), (5, 5))
    >>> train, held_out = split_observations(obs, 0.2, random_state=0)
    >>> train.n_obs, held_out.n_obs
    (8, 2)
    """
    train, held_out = _draw_held_out(observations.n_obs, validation_fraction, random_state)
    xp = get_namespace(observations.indices)
    return (
        observations.take(to_device(np.sort(train), xp)),
        observations.take(to_device(np.sort(held_out), xp)),
    )


def split_mask(observed, validation_fraction, random_state=None):
    """Random split of a mask of observed entries into a training and a held-out mask.

    Parameters
    ----------
    observed : bool array
    validation_fraction : float
        Share of the observed entries held out, in (0, 1); at least one on each side.
    random_state : None, int or RandomState

    Returns
    -------
    train, held_out : bool arrays of ``observed``'s shape and namespace

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import split_mask
    >>> train, held = split_mask(np.ones((4, 5), bool), 0.25, random_state=0)
    >>> int(train.sum()), int(held.sum()), bool((train & held).any())
    (15, 5, False)
    """
    xp = get_namespace(observed)
    flat = np.flatnonzero(to_numpy(observed))
    _, chosen = _draw_held_out(flat.size, validation_fraction, random_state)
    held = np.zeros(int(np.prod(observed.shape)), dtype=bool)
    held[flat[chosen]] = True
    held = to_device(held.reshape(observed.shape), xp)
    return observed & ~held, held


def grow_rank(
    fit,
    pad,
    observations,
    ranks,
    validation_fraction=0.1,
    random_state=None,
    patience=1,
    min_improvement=0.01,
    callback=None,
    stop=None,
    split=None,
    score=None,
):
    """Fit increasing ranks with warm starts; keep the one best on held-out entries.

    Parameters
    ----------
    fit : callable
        ``fit(observations, rank, init)`` returns ``(format, FitResult)``; ``init`` is None
        for the first rank (the function's own initialisation) or a format of ``rank``.
    pad : callable or None
        ``pad(format, rank)`` returns ``format`` grown to ``rank`` (e.g. a partial of
        :func:`~tnml.decompositions.pad_cp`), the warm start of the next fit. None fits every
        rank from ``fit``'s own start (for a start that is better than a warm one, such as
        CP's spectral start: growing CP from rank 1 on sparse data stalls in swamps).
    observations : Observations
    ranks : iterable
        Increasing ranks to try, in the format's own rank type (int, tuple, ...).
    validation_fraction : float, default=0.1
        Share of the observations held out to compare the ranks.
    random_state : None, int or RandomState
        Seed of the split.
    patience : int, default=1
        Stop after the held-out error has failed to improve this many ranks in a row.
    min_improvement : float, default=0.01
        Relative drop of the held-out error below the best so far that counts as an
        improvement: a larger rank that fits noiseless data no better than rounding is not
        preferred to the smaller one.
    callback : callable, optional
        ``callback(rank, train_error, validation_error)`` after every rank tried (e.g. to move
        a progress bar).
    stop : callable, optional
        ``stop()`` is asked before every rank after the first; True ends the growth there (a
        time budget).
    split : callable, optional
        ``split(observations, validation_fraction, random_state)`` gives ``(train,
        held_out)``; default :func:`split_observations` (another representation of the
        observations, such as a cluster's, brings its own).
    score : callable, optional
        ``score(format, held_out)``: the held-out relative error; default
        :func:`~tnml.decompositions.observed_error` of ``format.entries``.

    Returns
    -------
    best_format
        The best rank refitted on all observations, warm-started from its held-out fit.
    best_rank
    history : list of (rank, train_error, validation_error)
        Relative errors of every rank tried, in order.

    Examples
    --------
    >>> import numpy as np
    >>> from functools import partial
    >>> from tnml.decompositions import Observations, cp_complete, pad_cp, random_cp
    >>> from tnml.decompositions import grow_rank
    >>> truth = random_cp((20, 20, 20), 3, random_state=2)
    >>> coords = np.random.default_rng(0).integers(0, 20, size=(3200, 3))
    >>> obs = Observations(coords, truth.entries(coords), truth.shape)
    >>> def fit(obs, rank, init):
    ...     return cp_complete(obs, rank, init="random" if init is None else init,
    ...                        tol=1e-8, max_iter=200, random_state=0)
    >>> cp, rank, history = grow_rank(fit, partial(pad_cp, random_state=0), obs,
    ...                               range(1, 7), random_state=0)
    >>> rank
    3
    """
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be a positive int, got {patience!r}")
    split = split_observations if split is None else split
    if score is None:

        def score(model, held_out):
            return observed_error(model.entries, held_out)

    train, held_out = split(observations, validation_fraction, random_state)
    history, best, previous, misses = [], None, None, 0
    for rank in ranks:
        if previous is not None and stop is not None and stop():
            break
        init = None if previous is None or pad is None else pad(previous, rank)
        previous, info = fit(train, rank, init)
        validation_error = score(previous, held_out)
        history.append((rank, info.error, validation_error))
        if callback is not None:
            callback(rank, info.error, validation_error)
        if best is None or validation_error < (1 - min_improvement) * best[2]:
            best, misses = (previous, rank, validation_error), 0
        else:
            misses += 1
            if misses >= patience:
                break
    if best is None:
        raise ValueError("ranks is empty; give at least one rank to try")
    best_format, _ = fit(observations, best[1], best[0])
    return best_format, best[1], history
