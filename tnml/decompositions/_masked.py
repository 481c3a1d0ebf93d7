"""Fitting on observed entries only: the row-wise least-squares kernel every format shares.

With missing data, ALS no longer has one normal equation per factor but one per *slice*: row
``i`` of the factor (or core slice ``i``) of mode ``n`` is fitted to the observed entries whose
mode-``n`` index is ``i``. For CP, Tucker, TT and TR alike, each observed entry ``j``
contributes a design row ``d_j`` (the product of the other factors' rows, or the environment
of the other cores) and a value ``x_j``, and the slice solves

    (sum_j d_j d_j^T + alpha I) w_i = sum_j x_j d_j.

:class:`Observations` keeps the observed coordinates sorted once per mode, so that the sums
above run over contiguous runs; :func:`solve_rowwise` accumulates them in chunks of design
rows, as GEMMs of long runs and batched products of zero-padded short ones (memory
``chunk * P``, never ``n_obs * P^2``), and solves all slices in one batched solve.
Nothing here densifies the tensor: cost ``O(n_obs * P^2)`` per mode.
"""

import numpy as np

from .._config import check_memory
from .._validation import check_indices
from ..backend import get_namespace

__all__ = [
    "Observations",
    "solve_rowwise",
    "solve_runs",
    "segment_sum",
    "SweepLog",
    "observed_error",
]

# Bytes of design rows handled at once (the padded run buffer is about as large again).
_CHUNK_BYTES = 64 * 2**20
# Runs whose lengths differ by less than this factor share one zero-padded batched product.
_RUN_LENGTH_RATIO = 1.25
# Entries from which a run's Gram matrix is one GEMM of its own.
_LONG_RUN = 128


class Observations:
    """Observed entries of a tensor as coordinates and values, sorted once per mode.

    Parameters
    ----------
    indices : int array of shape (n_obs, ndim)
    values : float array of shape (n_obs,)
    shape : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.decompositions import Observations
    >>> X = np.arange(6.0).reshape(2, 3)
    >>> obs = Observations.from_dense(X, X > 1)
    >>> obs.n_obs, obs.values.tolist()
    (4, [2.0, 3.0, 4.0, 5.0])
    """

    def __init__(self, indices, values, shape):
        self.shape = tuple(int(d) for d in shape)
        self.indices = check_indices(indices, self.shape)
        self.values = values
        if values.ndim != 1 or values.shape[0] != indices.shape[0]:
            raise ValueError(
                f"values must have shape ({indices.shape[0]},), got {tuple(values.shape)}"
            )
        if values.shape[0] == 0:
            raise ValueError("indices and values are empty: there are no observed entries to fit")
        self._sorted, self._columns = {}, {}

    @classmethod
    def from_dense(cls, X, mask):
        """Coordinates and values of ``X`` where ``mask`` is True."""
        xp = get_namespace(X, mask)
        indices = xp.stack(xp.nonzero(mask), axis=1)
        return cls(indices, X[mask], X.shape)

    @property
    def n_obs(self):
        return int(self.values.shape[0])

    def take(self, positions):
        """The observations at ``positions`` (an integer array), as new Observations."""
        return Observations(self.indices[positions], self.values[positions], self.shape)

    def column(self, mode):
        """The mode-``mode`` coordinates as a contiguous vector (cached).

        Design-row callbacks gather from it with ``xp.take``, several times faster than
        indexing rows of ``indices`` on 10^6 entries.
        """
        if mode not in self._columns:
            xp = get_namespace(self.indices)
            self._columns[mode] = xp.ascontiguousarray(self.indices[:, mode])
        return self._columns[mode]

    def sorted_by(self, mode):
        """``(order, groups, starts)``: observations sorted by their mode-``mode`` index.

        ``order`` permutes observations so that equal indices are contiguous, ``groups`` are the
        distinct indices present and ``starts`` where each run begins in ``order``.
        """
        if mode not in self._sorted:
            xp = get_namespace(self.indices)
            keys = self.indices[:, mode]
            order = xp.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            change = xp.concatenate([xp.ones(1, dtype=bool), sorted_keys[1:] != sorted_keys[:-1]])
            starts = xp.nonzero(change)[0]
            self._sorted[mode] = (order, sorted_keys[starts], starts)
        return self._sorted[mode]


def observed_error(entries, observations, chunk=2**16):
    """Relative error ``||x - x_hat|| / ||x||`` over the observed entries only.

    Parameters
    ----------
    entries : callable
        ``entries(indices)`` gives model values at coordinates, e.g. a format's ``entries``.
    observations : Observations
    chunk : int
        Entries evaluated at once: bounds formats whose ``entries`` need ``chunk * R^2``.

    Returns
    -------
    float
    """
    xp = get_namespace(observations.values)
    residual_sq = 0.0
    for begin in range(0, observations.n_obs, chunk):
        stop = begin + chunk
        residual = observations.values[begin:stop] - entries(observations.indices[begin:stop])
        residual_sq += float(xp.sum(residual * residual))
    norm = float(xp.linalg.norm(observations.values)) or 1.0
    return residual_sq**0.5 / norm


def segment_sum(values, starts):
    """Sums of ``values`` over the runs beginning at ``starts`` (along axis 0).

    NumPy's ``add.reduceat`` does it in one pass; other namespaces use a cumulative sum
    difference, accumulated in float64 to keep the cancellation harmless.
    """
    xp = get_namespace(values)
    reduceat = getattr(getattr(xp, "add", None), "reduceat", None)
    if reduceat is not None:
        return reduceat(values, starts, axis=0)
    totals = xp.cumsum(xp.asarray(values, dtype=xp.float64), axis=0)
    ends = xp.concatenate([starts[1:], xp.asarray([values.shape[0]], dtype=starts.dtype)]) - 1
    sums = totals[ends]
    sums[1:] = sums[1:] - totals[starts[1:] - 1]
    return xp.asarray(sums, dtype=values.dtype)


def solve_rowwise(observations, mode, design_rows, n_rows, size, alpha=1e-10, values=None):
    """Ridge least squares per slice of ``mode`` over the observed entries.

    Parameters
    ----------
    observations : Observations
    mode : int or None
        Mode whose slices get separate solutions; None solves one system over all entries
        (e.g. a Tucker core).
    design_rows : callable
        ``design_rows(idx)`` returns the ``(len(idx), size)`` design rows of observations
        ``idx`` (positions into ``observations``).
    n_rows : int
        Number of slices (``shape[mode]``, or 1 when ``mode`` is None).
    size : int
        Number of unknowns per slice, ``P``.
    alpha : float or array of shape (size,)
        The ridge penalty ``alpha`` (absolute: added to the diagonal as is; a vector gives
        each unknown its own); a slice with no
        observations gets the zero solution.
    values : array, optional
        Targets to fit instead of ``observations.values`` (same order).

    Returns
    -------
    W : array of shape (n_rows, size)
    """
    xp = get_namespace(observations.values)
    values = observations.values if values is None else values
    if mode is None:
        order = None
        groups = xp.zeros(1, dtype=xp.int64)
        starts = xp.zeros(1, dtype=xp.int64)
    else:
        order, groups, starts = observations.sorted_by(mode)
    return solve_runs(design_rows, values, order, groups, starts, n_rows, size, alpha)


def solve_runs(design_rows, values, order, groups, starts, n_rows, size, alpha=1e-10):
    """:func:`solve_rowwise` on observations already grouped into runs of one slice each.

    Parameters
    ----------
    design_rows : callable
        ``design_rows(idx)`` returns the design rows of observations ``idx`` (positions).
    values : array of shape (n_obs,)
        Targets, in the observations' order.
    order : int array of shape (n_obs,) or None
        The permutation that makes the runs contiguous; None when they already are.
    groups, starts : int arrays
        The slice of each run and where it begins in ``order``.
    n_rows, size, alpha
        As in :func:`solve_rowwise`.

    Returns
    -------
    W : array of shape (n_rows, size)
    """
    xp = get_namespace(values)
    dtype = values.dtype
    check_memory(n_rows * size * size * dtype.itemsize, "row-wise normal equations")
    gram = xp.zeros((n_rows, size, size), dtype=dtype)
    rhs = xp.zeros((n_rows, size), dtype=dtype)
    n_obs = int(values.shape[0])
    starts_host = np.asarray(_host_ints(starts))
    groups_host = np.asarray(_host_ints(groups))
    chunk = max(1, _CHUNK_BYTES // (size * dtype.itemsize))
    for begin in range(0, n_obs, chunk):
        end = min(begin + chunk, n_obs)
        # Runs of this chunk: the global run starts inside it, plus the chunk's own start.
        first = int(np.searchsorted(starts_host, begin, side="right")) - 1
        last = int(np.searchsorted(starts_host, end, side="left"))
        local = np.concatenate([[begin], starts_host[first + 1 : last]]) - begin
        rows = groups_host[first:last]
        if order is None:
            idx, targets = xp.arange(begin, end), values[begin:end]
        else:
            idx = order[begin:end]
            targets = values[idx]
        _add_run_grams(gram, rhs, design_rows(idx), targets, local, rows)
    eye = xp.eye(size, dtype=dtype)
    try:
        solution = xp.linalg.solve(gram + alpha * eye, rhs[:, :, None])[:, :, 0]
        if bool(xp.all(xp.isfinite(solution))):
            return solution
    except Exception:  # noqa: BLE001 - numpy and cupy raise different LinAlgError types
        pass
    # A slice whose normal matrix is singular at working precision (a tiny ridge next to
    # huge entries): the minimum-norm least-squares solution instead of a crash.
    return (xp.linalg.pinv(gram + alpha * eye, hermitian=True) @ rhs[:, :, None])[:, :, 0]


def _add_run_grams(gram, rhs, design, targets, run_starts, rows):
    """Add each run's ``D^T D`` and ``D^T x`` to ``gram[row]`` and ``rhs[row]``.

    ``design`` and ``targets`` hold consecutive runs beginning at ``run_starts``. A long run
    (``_LONG_RUN`` entries or more) is one GEMM on its slice. Shorter runs of similar length
    (within a factor ``_RUN_LENGTH_RATIO``) are gathered, zero-padded to the longest of them,
    and stacked, so that one batched matrix product per group of lengths does all their Gram
    matrices: ``O(n P^2)`` flops in BLAS-shaped calls instead of a Python step per run (which
    costs microseconds per row) or per-entry outer products summed by segment (which write
    ``n P^2`` numbers and run at memory speed, 10-25x slower).
    """
    xp = get_namespace(design)
    lengths = np.diff(np.append(run_starts, design.shape[0]))
    for run in np.nonzero(lengths >= _LONG_RUN)[0]:
        block = design[run_starts[run] : run_starts[run] + lengths[run]]
        gram[int(rows[run])] += block.T @ block  # A^T A: NumPy calls SYRK
        rhs[int(rows[run])] += targets[run_starts[run] : run_starts[run] + lengths[run]] @ block
    short = lengths < _LONG_RUN
    bucket = np.floor(np.log(lengths) / np.log(_RUN_LENGTH_RATIO)).astype(np.int64)
    for key in np.unique(bucket[short]):
        members = np.nonzero(short & (bucket == key))[0]
        width = int(lengths[members].max())
        offsets = np.arange(width)
        padding = offsets >= lengths[members, None]
        local = xp.asarray((run_starts[members, None] + np.where(padding, 0, offsets)).ravel())
        block = xp.take(design, local, axis=0).reshape(len(members), width, -1)
        targets_block = xp.take(targets, local).reshape(len(members), width, 1)
        if padding.any():  # padding repeats a run's first entry: zero it
            padded = xp.asarray(padding)
            block[padded] = 0
            targets_block[padded] = 0
        block_t = xp.swapaxes(block, 1, 2)
        where = xp.asarray(rows[members])
        gram[where] += xp.matmul(block_t, block)
        rhs[where] += xp.matmul(block_t, targets_block)[:, :, 0]


def _host_ints(array):
    """Run starts are bookkeeping for the chunk loop: a short integer vector on the host."""
    from ..backend import to_numpy

    return to_numpy(array)


class SweepLog:
    """Per-sweep errors of a fit: on the observed entries, and on held-out ones if given.

    Every ALS loop (:func:`~tnml.decompositions._fitting.fit_sweeps`) records one sweep with
    :meth:`record` (which prints it when ``verbose``) and ends with :meth:`result`.
    ``observations`` may be None when every sweep reports its own error (dense fits).
    ``show_rank`` adds the model's rank to the verbose line (for rank-adaptive sweeps).
    """

    def __init__(self, observations, validation, label, verbose, show_rank=False):
        self.observations, self.validation = observations, validation
        self.label, self.verbose, self.show_rank = label, verbose, show_rank
        self.errors = []
        self.validation_errors = None if validation is None else []

    def record(self, model, error=None):
        """Append the relative error of ``model`` (or the given ``error``); return it."""
        if error is None:
            error = observed_error(model.entries, self.observations)
        self.errors.append(error)
        if self.validation is not None:
            self.validation_errors.append(observed_error(model.entries, self.validation))
        if self.verbose:
            held_out = (
                "" if self.validation is None else f", validation {self.validation_errors[-1]:.6g}"
            )
            rank = f", rank {model.rank}" if self.show_rank else ""
            print(
                f"{self.label} sweep {len(self.errors)}: relative error {error:.6g}{held_out}{rank}"
            )
        return error

    def result(self, converged):
        from ._base import FitResult

        return FitResult(len(self.errors), self.errors, converged, self.validation_errors)
