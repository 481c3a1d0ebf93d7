"""The tubal (t-SVD) estimator."""

import math
import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from ..backend import get_namespace
from ..decompositions import best_of_starts, t_product, t_svd, t_transpose, tubal_complete
from ._base import TensorDecompositionMixin

__all__ = ["TubalSVD"]


class TubalSVD(TensorDecompositionMixin):
    """Truncated t-SVD ``X = U * S * V^T`` with samples on axis 0 (the horizontal slices).

    X has shape ``(n_samples, d_1, d_2, ...)``: the t-product treats ``d_2, ...`` as the tube
    modes and ``d_1`` as the second matrix dimension (2-D X has tubes of length one, and the
    t-SVD becomes the SVD). A sample (a horizontal slice) is
    represented by its row of U: ``rank`` tubes of length ``d_2 * ...``, so ``transform``
    returns ``rank * prod(d_2, ...)`` coordinates.

    Parameters
    ----------
    rank : int or None, default=None
        Tubal rank; None keeps all (exact t-SVD).
    tensor_shape : tuple of int, optional
        Shape of one sample (at least two modes) when X is given flat.
    tube_transform : {'fft', 'dct'} or invertible matrix, default='fft'
        Transform along the tubes (Lu, Peng & Wei 2019); named so as not to shadow
        :meth:`transform`.
    solver : {'altmin', 'admm', 'gd'}, default='altmin'
        Completion algorithm when X has missing entries (NaN): alternating minimisation at
        tubal rank ``rank`` (ADMM when ``rank`` is None), TNN minimisation by ADMM (the rank
        is then read off the result and truncated to ``rank`` if given), or gradient descent
        from a small start.
    max_iter : int, default=100
    tol : float, default=1e-6
    n_init : int, default=1
        Starts of the 'altmin' and 'gd' completions: the solver's own start ('altmin': the
        t-SVD of the rescaled zero-filled data), then random ones; the lowest training error
        wins. ADMM and the complete t-SVD are deterministic.
    random_state : None, int or RandomState
    verbose : int, default=0

    Attributes
    ----------
    decomposition_ : TubalTensor
    components_ : array of shape (rank * prod(d_2, ...), prod(d_1, d_2, ...))
    n_components_, reconstruction_error_, n_iter_, tensor_shape_, n_features_in_

    Examples
    --------
    >>> import numpy as np
    >>> from tnml import TubalSVD
    >>> X = np.random.default_rng(0).random((20, 6, 5))
    >>> model = TubalSVD(rank=2).fit(X)
    >>> model.transform(X).shape
    (20, 10)
    """

    _parameter_constraints = {
        **TensorDecompositionMixin._parameter_constraints,
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "tube_transform": [StrOptions({"fft", "dct"}), "array-like"],
        "solver": [StrOptions({"altmin", "admm", "gd"})],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        rank=None,
        *,
        tensor_shape=None,
        tube_transform="fft",
        solver="altmin",
        max_iter=100,
        tol=1e-6,
        n_init=1,
        random_state=None,
        verbose=0,
    ):
        self.rank = rank
        self.tensor_shape = tensor_shape
        self.tube_transform = tube_transform
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose

    def _decompose(self, X, mask):
        if X.ndim == 2:  # a matrix is a tensor with tubes of length one: the t-SVD is the SVD
            X = X[:, :, None]
            mask = None if mask is None else mask[:, :, None]
        rank = None if self.rank is None else min(self.rank, X.shape[0], X.shape[1])
        if mask is None:
            return t_svd(X, rank=rank, transform=self.tube_transform)
        params = {"max_iter": self.max_iter, "tol": self.tol, "verbose": self.verbose}
        if self.solver == "admm" or (self.solver == "altmin" and rank is None):
            return tubal_complete(
                X, mask=mask, solver="admm", rank=rank, transform=self.tube_transform, **params
            )

        def fit(start, rng):
            # Start 0 is the solver's own (seeded by random_state); later ones are random.
            extra = {"init": "random"} if start and self.solver == "altmin" else {}
            return tubal_complete(
                X,
                mask=mask,
                solver=self.solver,
                rank=rank,
                transform=self.tube_transform,
                random_state=rng if start else self.random_state,
                **extra,
                **params,
            )

        return best_of_starts(fit, self.n_init, self.random_state)

    def _sample_factor(self, tubal):
        # A sample is its row of U: k tubes, flattened in the unit order of _components.
        xp = get_namespace(tubal.U)
        return xp.reshape(tubal.U[:, : tubal.rank], (tubal.U.shape[0], -1))

    def _components(self, tubal):
        xp = get_namespace(tubal.U)
        k, tube = tubal.rank, tuple(tubal.U.shape[2:])
        n_tube = math.prod(tube)
        # W = S * V^T maps a sample's row of U (k tubes) to the sample; push every unit
        # coordinate (one tube entry of one lateral slice) through it.
        weights = t_product(tubal.S, t_transpose(tubal.V[:, :k], tubal.transform), tubal.transform)
        units = xp.reshape(xp.eye(k * n_tube, dtype=tubal.U.dtype), (k * n_tube, k) + tube)
        basis = t_product(units, weights, tubal.transform)
        return xp.reshape(basis, (k * n_tube, -1))
