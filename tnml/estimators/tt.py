"""The tensor-train (MPS) estimator."""

import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from ..backend import get_namespace
from ..decompositions import tt_als, tt_dmrg, tt_svd
from ._base import TensorDecompositionMixin

__all__ = ["TensorTrain"]


class TensorTrain(TensorDecompositionMixin):
    """Tensor-train (MPS) decomposition with samples on axis 0 (the first core).

    Parameters
    ----------
    rank : int, sequence of int or None, default=None
        Bond dimensions: an int caps every bond, a sequence gives the ``ndim - 1`` inner bonds.
        None keeps the ranks that ``cutoff`` needs (exact when ``cutoff=0``). With missing
        entries (NaN), solver 'svd' fits by ALS at this rank (by DMRG when rank is None).
    tensor_shape : tuple of int, optional
    solver : {'svd', 'als', 'dmrg'}, default='svd'
        TT-SVD (one pass), fixed-rank ALS sweeps initialised by TT-SVD, or two-site DMRG sweeps
        that adapt the ranks to ``cutoff``.
    cutoff : float, default=1e-6
        Truncation tolerance of 'svd' and 'dmrg': relative Frobenius accuracy of the
        truncated SVDs.
    tol : float, default=1e-6
        Convergence tolerance of 'als': stop when the relative error changes by less.
    max_iter : int, default=100
    n_init : int, default=1
        Number of ALS starts (TT-SVD, then random trains); the lowest training error wins.
    random_state : None, int or RandomState
    verbose : int, default=0

    Attributes
    ----------
    decomposition_ : TTTensor
    components_ : array of shape ``(r_1, prod(tensor_shape_))``
        The right part of the train, one row per value of the first bond.
    n_components_, reconstruction_error_, n_iter_, tensor_shape_, n_features_in_

    Examples
    --------
    >>> import numpy as np
    >>> from tnml import TensorTrain
    >>> X = np.random.default_rng(0).random((30, 4, 5, 6))
    >>> model = TensorTrain(rank=4).fit(X)
    >>> model.decomposition_.rank
    (1, 4, 4, 4, 1)
    >>> model.transform(X).shape
    (30, 4)
    """

    _parameter_constraints = {
        **TensorDecompositionMixin._parameter_constraints,
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), "array-like", None],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "solver": [StrOptions({"svd", "als", "dmrg"})],
        "cutoff": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        rank=None,
        *,
        tensor_shape=None,
        solver="svd",
        cutoff=1e-6,
        tol=1e-6,
        max_iter=100,
        n_init=1,
        random_state=None,
        verbose=0,
    ):
        self.rank = rank
        self.tensor_shape = tensor_shape
        self.solver = solver
        self.cutoff = cutoff
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose

    def _decompose(self, X, mask):
        solver = self.solver
        if mask is not None and solver == "svd":
            # TT-SVD needs every entry: fit the observed ones by ALS at the given rank, or
            # let DMRG find the ranks when none is given.
            solver = "dmrg" if self.rank is None else "als"
        if solver == "svd":
            return tt_svd(X, rank=self.rank, cutoff=self.cutoff or None)
        if solver == "dmrg":
            return tt_dmrg(
                X,
                rank=self.rank,
                cutoff=max(self.cutoff, 1e-14),
                mask=mask,
                max_iter=self.max_iter,
                random_state=self.random_state,
                verbose=self.verbose,
            )
        rank = (
            self.rank
            if mask is not None
            else tt_svd(X, rank=self.rank, cutoff=self.cutoff or None)[0].rank
        )
        return self._als(X, mask, rank)

    def _als(self, X, mask, rank):
        return tt_als(
            X,
            rank,
            mask=mask,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
            verbose=self.verbose,
            n_init=self.n_init,
        )

    def _sample_factor(self, tt):
        return get_namespace(*tt.cores).reshape(tt.cores[0], tt.cores[0].shape[1:])

    def _components(self, tt):
        xp = get_namespace(*tt.cores)
        right = tt.cores[1]
        for core in tt.cores[2:]:
            right = xp.reshape(right, (-1, core.shape[0])) @ xp.reshape(core, (core.shape[0], -1))
        return xp.reshape(right, (tt.cores[0].shape[2], -1))
