"""The tensor-ring estimator."""

import math
import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from ..backend import get_namespace
from ..decompositions import tr_als, tr_svd
from ._base import TensorDecompositionMixin

__all__ = ["TensorRing"]


class TensorRing(TensorDecompositionMixin):
    """Tensor-ring decomposition with samples on axis 0 (the first core).

    Parameters
    ----------
    rank : int or sequence of int, default=2
        Bond ranks ``r_0, ..., r_{ndim-1}`` (``r_0`` closes the ring). An int applies to all
        bonds and is capped at ``isqrt(min_k prod_{m != k} I_m)`` so every ALS subproblem is
        determined; an explicit sequence that is impossible raises ``ValueError``.
    tensor_shape : tuple of int, optional
    solver : {'als', 'svd'}, default='als'
        ALS sweeps initialised by TR-SVD, or TR-SVD alone.
    tol : float, default=1e-6
    max_iter : int, default=100
    n_init : int, default=3
        Number of ALS starts: TR-SVD first, then random rings; the lowest training error wins
        and an exact fit ends the search early. One deterministic TR-SVD start leaves some
        rings in a local minimum whatever the seed (e.g. shape (6, 5, 7), ranks (2, 3, 2):
        relative error 0.17).
    alpha : float, default=0
        Ridge penalty of the ALS normal equations, absolute (added to their diagonal as is).
    random_state : None, int or RandomState
    verbose : int, default=0

    Attributes
    ----------
    decomposition_ : TRTensor
    components_ : array of shape ``(r_0 * r_1, prod(tensor_shape_))``
        The chain of non-sample cores, one row per pair of open bond values.
    n_components_, reconstruction_error_, n_iter_, tensor_shape_, n_features_in_

    Examples
    --------
    >>> import numpy as np
    >>> from tnml import TensorRing
    >>> X = np.random.default_rng(0).random((30, 4, 5, 6))
    >>> model = TensorRing(rank=2, random_state=0).fit(X)
    >>> model.transform(X).shape
    (30, 4)
    """

    _parameter_constraints = {
        **TensorDecompositionMixin._parameter_constraints,
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "solver": [StrOptions({"als", "svd"})],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        rank=2,
        *,
        tensor_shape=None,
        solver="als",
        tol=1e-6,
        max_iter=100,
        n_init=3,
        alpha=0.0,
        random_state=None,
        verbose=0,
    ):
        self.rank = rank
        self.tensor_shape = tensor_shape
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.alpha = alpha
        self.random_state = random_state
        self.verbose = verbose

    def _ring_rank(self, shape):
        """An int rank is capped so that every core's least-squares problem stays determined
        (``r^2 <= prod of the other dimensions``); a sequence is used as given."""
        if not isinstance(self.rank, numbers.Integral):
            return self.rank
        total = math.prod(shape)
        smallest = min(total // d for d in shape)
        return max(1, min(self.rank, math.isqrt(smallest)))

    def _decompose(self, X, mask):
        rank = self._ring_rank(X.shape)
        if self.solver == "svd" and mask is None:
            return tr_svd(X, rank)
        return tr_als(
            X,
            rank,
            mask=mask,
            max_iter=self.max_iter,
            tol=self.tol,
            alpha=self.alpha,
            random_state=self.random_state,
            verbose=self.verbose,
            n_init=self.n_init,
        )

    def _sample_factor(self, tr):
        # w[i, (a, b)] = G_0[a, i, b], in the (a, b) order of _components.
        xp = get_namespace(*tr.cores)
        first = tr.cores[0]
        return xp.reshape(xp.transpose(first, (1, 0, 2)), (first.shape[1], -1))

    def _components(self, tr):
        xp = get_namespace(*tr.cores)
        r0, r1 = tr.cores[0].shape[0], tr.cores[0].shape[2]
        chain = tr.cores[1]  # (r1, d1, r2) ... -> (r1, prod(d), r0)
        for core in tr.cores[2:]:
            chain = xp.reshape(chain, (-1, core.shape[0])) @ xp.reshape(core, (core.shape[0], -1))
        chain = xp.reshape(chain, (r1, -1, r0))
        # x[rest] = sum_{a,b} w[a, b] * chain[b, rest, a]: component (a, b) is chain[b, :, a].
        return xp.reshape(xp.transpose(chain, (2, 0, 1)), (r0 * r1, -1))
