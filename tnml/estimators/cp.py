"""The CP estimator."""

import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from ..decompositions import cp_als, khatri_rao
from ._base import TensorDecompositionMixin

__all__ = ["CP"]

# Sweeps after which a fit goes on only while its error still falls materially (cp_als's
# progress_after): a swamp on its way to an exact fit does, a degenerate over-ranked fit of
# real data does not.
_PROGRESS_AFTER = 100


class CP(TensorDecompositionMixin):
    """CP (CANDECOMP/PARAFAC) decomposition with samples on axis 0.

    Parameters
    ----------
    rank : int or None, default=None
        Number of rank-one components; None uses the smallest dimension of X.
    tensor_shape : tuple of int, optional
        Shape of one sample when X is given flat as (n_samples, n_features).
    max_iter : int, default=500
        Maximum number of ALS sweeps. Past 100 sweeps a fit goes on only while its error
        still falls by 1% per 10 sweeps (``progress_after`` of
        :func:`tnml.decompositions.cp_als`): nearly collinear factors (a "swamp") need
        hundreds of such sweeps to be recovered exactly, while an over-ranked CP of real data
        would creep along a degenerate path (8 x 8 digits, rank 12: 500 sweeps with the line
        search and no such rule took the features' cross-validated accuracy from 0.65 to
        0.48; with it, 0.65).
    n_init : int, default=1
        Number of starts: ``init`` first, then random ones; the lowest training error wins.
    tol : float, default=1e-6
        Stop when the relative error changes by less than ``tol``.
    init : {'svd', 'random'}, default='svd'
    linesearch : bool, default=True
        Bro's line-search extrapolation (see :func:`tnml.decompositions.cp_als`): an extra
        pass over X per sweep, kept only where it lowers the error, that gets ALS out of
        swamps (random exact CP tensors, half with two components at correlation 0.9:
        18 of 20 recovered to 1e-8 with the defaults, 10 of 20 with 100 plain sweeps,
        8 of 20 with TensorLy's ``parafac``; ``benchmarks/bench_robustness.py``).
    alpha : float, default=0
        Ridge penalty of the normal equations, absolute (added to their diagonal as is).
    random_state : None, int or RandomState
    verbose : int, default=0

    Attributes
    ----------
    decomposition_ : CPTensor
        CP decomposition of the training tensor, sample mode first.
    components_ : array of shape ``(rank, prod(tensor_shape_))``
        Weighted rank-one terms of the non-sample modes, one per row.
    n_components_ : int
    reconstruction_error_ : float
        Relative Frobenius error of the fit.
    n_iter_ : int
    tensor_shape_ : tuple of int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from tnml import CP
    >>> from tnml.decompositions import random_cp
    >>> X = random_cp((20, 5, 6), 3, random_state=0).to_tensor()
    >>> model = CP(rank=3, tol=1e-12, max_iter=500, random_state=0).fit(X)
    >>> model.transform(X).shape
    (20, 3)
    >>> bool(model.reconstruction_error_ < 1e-8)
    True
    """

    _parameter_constraints = {
        **TensorDecompositionMixin._parameter_constraints,
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "init": [StrOptions({"svd", "random"})],
        "linesearch": ["boolean"],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        rank=None,
        *,
        tensor_shape=None,
        max_iter=500,
        tol=1e-6,
        init="svd",
        n_init=1,
        linesearch=True,
        alpha=0.0,
        random_state=None,
        verbose=0,
    ):
        self.rank = rank
        self.tensor_shape = tensor_shape
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.n_init = n_init
        self.linesearch = linesearch
        self.alpha = alpha
        self.random_state = random_state
        self.verbose = verbose

    def _decompose(self, X, mask):
        rank = min(X.shape) if self.rank is None else self.rank
        return cp_als(
            X,
            rank,
            mask=mask,
            max_iter=self.max_iter,
            tol=self.tol,
            init=self.init,
            random_state=self.random_state,
            linesearch=self.linesearch,
            alpha=self.alpha,
            verbose=self.verbose,
            n_init=self.n_init,
            progress_after=_PROGRESS_AFTER,
        )

    def _sample_factor(self, cp):
        return cp.factors[0]

    def _components(self, cp):
        factors = cp.factors[1:]
        return (khatri_rao(factors) * cp.weights).T
