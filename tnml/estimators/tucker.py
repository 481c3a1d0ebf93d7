"""The Tucker estimator."""

import math
import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from ..decompositions import check_tucker_rank, mode_dot, tucker_hooi
from ._base import TensorDecompositionMixin

__all__ = ["Tucker"]


class Tucker(TensorDecompositionMixin):
    """Tucker decomposition (HOOI) with samples on axis 0.

    Parameters
    ----------
    rank : int, sequence of int or None, default=None
        Multilinear rank. An int or a sequence of ``k`` entries compresses the ``k`` sample
        modes and leaves the sample axis whole (features are core coordinates); a sequence of
        ``k + 1`` entries also compresses the sample axis. An int larger than a mode is capped
        at that mode's size; None keeps every mode whole.
    tensor_shape : tuple of int, optional
        Shape of one sample when X is given flat.
    max_iter : int, default=100
    tol : float, default=1e-6
    init : {'svd', 'random'}, default='svd'
    n_init : int, default=1
        Number of starts: ``init`` first, then random ones; the lowest training error wins.
    random_state : None, int or RandomState
    verbose : int, default=0

    Attributes
    ----------
    decomposition_ : TuckerTensor
        Sample mode first; its factor is None when the sample axis is not compressed.
    components_ : array of shape ``(n_components_, prod(tensor_shape_))``
    n_components_, reconstruction_error_, n_iter_, tensor_shape_, n_features_in_

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from tnml import Tucker
    >>> X = load_digits().data
    >>> features = Tucker(rank=(4, 4), tensor_shape=(8, 8)).fit_transform(X)
    >>> features.shape
    (1797, 16)
    """

    _parameter_constraints = {
        **TensorDecompositionMixin._parameter_constraints,
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), "array-like", None],
        "init": [StrOptions({"svd", "random"})],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        rank=None,
        *,
        tensor_shape=None,
        max_iter=100,
        tol=1e-6,
        init="svd",
        n_init=1,
        random_state=None,
        verbose=0,
    ):
        self.rank = rank
        self.tensor_shape = tensor_shape
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose

    def _full_rank(self, shape):
        k = len(shape) - 1
        if self.rank is None:
            return [None] * (k + 1)
        if isinstance(self.rank, numbers.Integral):
            return [None] + [min(self.rank, d) for d in shape[1:]]
        rank = list(self.rank)
        if len(rank) == k:
            return [None] + rank
        if len(rank) == k + 1:
            return rank
        raise ValueError(
            f"rank must have {k} entries (one per sample mode) or {k + 1} (with "
            f"the sample axis first) for samples of shape {tuple(shape[1:])}, "
            f"got {len(rank)}"
        )

    def _decompose(self, X, mask):
        rank = check_tucker_rank(self._full_rank(X.shape), X.shape)
        return tucker_hooi(
            X,
            rank,
            mask=mask,
            max_iter=self.max_iter,
            tol=self.tol,
            init=self.init,
            n_init=self.n_init,
            random_state=self.random_state,
            verbose=self.verbose,
        )

    def _sample_factor(self, tucker):
        if tucker.factors[0] is None:  # one coordinate per core entry, as in _components
            return tucker.xp.reshape(tucker.core, (tucker.core.shape[0], -1))
        return tucker.factors[0]

    def _components(self, tucker):
        xp = tucker.xp
        if tucker.factors[0] is None:
            # Sample axis whole: one component per core entry (the Kronecker product of the
            # factors, orthonormal rows), obtained by pushing an identity through them.
            basis = xp.eye(math.prod(tucker.core.shape[1:]), dtype=tucker.core.dtype)
            basis = xp.reshape(basis, (-1,) + tucker.core.shape[1:])
        else:
            basis = tucker.core
        for mode, factor in enumerate(tucker.factors[1:], start=1):
            if factor is not None:
                basis = mode_dot(basis, factor, mode)
        return xp.reshape(basis, (basis.shape[0], -1))
