"""What every format class shares: the arrays it holds and the interface built on them."""

import math

from .._config import check_memory
from .._validation import check_indices
from ..backend import get_namespace, to_numpy

__all__ = ["FactorizedTensor", "FitResult"]


class FitResult:
    """Convergence information returned by every fitting algorithm next to the format.

    Attributes
    ----------
    n_iter : int
        Iterations (or sweeps) performed.
    errors : list of float
        Relative reconstruction error ``||X - X_hat|| / ||X||`` after each iteration, on the
        observed entries when a mask was given.
    converged : bool
        Whether the relative change of the error fell below ``tol``.
    validation_errors : list of float or None
        Relative error on held-out entries after each iteration, when the algorithm was given
        validation observations (the completion algorithms); None otherwise.
    intercept : float or None
        The fitted intercept of a regression solver (:mod:`tnml.supervised.regression`), whose
        ``errors`` are relative training errors ``||y_hat - y|| / ||y - mean(y)||``; None for
        the decompositions.

    The one-pass (SVD-type) algorithms report ``n_iter=1``, ``converged=True`` and the relative
    error of their truncation in ``errors``.
    """

    __slots__ = ("n_iter", "errors", "converged", "validation_errors", "intercept")

    def __init__(self, n_iter, errors, converged, validation_errors=None, intercept=None):
        self.n_iter, self.errors, self.converged = n_iter, list(errors), converged
        self.validation_errors = None if validation_errors is None else list(validation_errors)
        self.intercept = intercept

    @property
    def error(self):
        """The final relative error."""
        return self.errors[-1] if self.errors else float("nan")

    def __repr__(self):
        return (
            f"FitResult(n_iter={self.n_iter}, error={self.error:.3g}, converged={self.converged})"
        )


class FactorizedTensor:
    """Base class of the formats. Subclasses define ``_array_names`` and the methods below.

    A format is light: it holds arrays of one namespace and derives everything else.
    ``_array_names`` lists the attributes holding arrays or lists of arrays; it drives
    copying, namespace detection and persistence (:mod:`tnml.io`).
    """

    _array_names = ()

    # -- interface every subclass implements --------------------------------------------------
    @property
    def shape(self):
        raise NotImplementedError

    def to_tensor(self):
        """The dense tensor (allocates ``prod(shape)`` entries).

        Refused with :class:`tnml.MemoryBudgetError` before anything is allocated when the
        largest array it builds would exceed ``max_memory`` (see :func:`tnml.config_context`).
        """
        check_memory(self._to_tensor_bytes(), f"{type(self).__name__}.to_tensor")
        return self._to_tensor()

    def _to_tensor(self):
        """The dense tensor; called by :meth:`to_tensor` once the budget allows it."""
        raise NotImplementedError

    def _to_tensor_bytes(self):
        """Bytes of the largest array :meth:`_to_tensor` allocates (the result by default)."""
        return math.prod(self.shape) * self.dtype.itemsize

    def _chain_bytes(self):
        """Largest array of a left-to-right chain of core GEMMs (TT, TR): after core ``k`` it
        holds ``r_0 * I_0 * ... * I_k * r_{k+1}`` numbers, which can exceed the result when
        bond ranks are larger than the remaining modes."""
        cores = self.cores
        largest, size = math.prod(self.shape), cores[0].shape[0]
        for core in cores:
            size *= core.shape[1]
            largest = max(largest, size * core.shape[2])
        return largest * self.dtype.itemsize

    def entries(self, indices):
        """Values at integer coordinates ``indices`` of shape ``(n, ndim)``, never densifying."""
        raise NotImplementedError

    def norm(self):
        """Frobenius norm, computed from the factors without densifying."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def _arrays(self):
        arrays = []
        for name in self._array_names:
            value = getattr(self, name)
            arrays.extend(value if isinstance(value, (list, tuple)) else [value])
        return arrays

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def n_params(self):
        """Number of stored parameters (entries of all factors)."""
        return int(sum(math.prod(a.shape) for a in self._arrays()))

    @property
    def dtype(self):
        return self._arrays()[0].dtype

    @property
    def xp(self):
        """The array namespace of the factors."""
        return get_namespace(*self._arrays())

    def compression_ratio(self):
        """``n_params / prod(shape)``: below one means the format compresses."""
        return self.n_params / math.prod(self.shape)

    def _checked_indices(self, indices):
        return check_indices(indices, self.shape)

    def to_numpy(self):
        """A copy of this format with every array moved to the host."""
        return self._map_arrays(to_numpy)

    def scaled(self, factor):
        """A copy representing ``factor * self.to_tensor()`` (the first array is scaled: every
        format is linear in it)."""
        first = self._array_names[0]
        kwargs = {name: getattr(self, name) for name in self._array_names}
        value = kwargs[first]
        kwargs[first] = (
            [value[0] * factor, *value[1:]] if isinstance(value, (list, tuple)) else value * factor
        )
        return type(self)(**kwargs, **self._metadata())

    def _map_arrays(self, func):
        kwargs = {}
        for name in self._array_names:
            value = getattr(self, name)
            kwargs[name] = (
                [func(a) for a in value] if isinstance(value, (list, tuple)) else func(value)
            )
        return type(self)(**kwargs, **self._metadata())

    def _metadata(self):
        """Non-array constructor arguments (JSON-serialisable), for copies and persistence."""
        return {}

    def __repr__(self):
        return (
            f"{type(self).__name__}(shape={tuple(self.shape)}, n_params={self.n_params}, "
            f"{self._rank_repr()})"
        )

    def _rank_repr(self):
        return f"rank={getattr(self, 'rank', None)}"
