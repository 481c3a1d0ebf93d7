"""CP completion on a Dask cluster: masked ALS whose observations never leave the workers.

The observations are dask arrays (coordinates ``(n_obs, N)`` and values ``(n_obs,)``, chunked
along the observations). :func:`distribute_observations` lays them out once per mode in
*row blocks* of that mode: block ``b`` of mode ``n`` holds every observation whose mode-``n``
index lies in the block's range, so that a worker owns whole rows of the mode-``n`` factor and
solves them itself (SPLATT's and DFacTo's layout). A factor update then moves only the small
factors (scattered once per update, ``client.scatter(..., broadcast=True)``) and the solved
rows back; nothing is reduced. The other layout, partial per-row Gram sums reduced across the
input partitions, moves ``n_rows * R^2`` numbers per partition and mode: at 10^5 rows and rank
10, 80 MB per partition per update, against 8 MB for a whole factor here. The price is one
shuffle at the start and ``N`` copies of the observations on the workers, kept compact: a
block is sorted by its mode (its own coordinate becomes run pointers), the other coordinates
are stored in the smallest unsigned type that holds them and the values in float64, 14-16
bytes per observation and mode for a third-order tensor. The shuffle runs one mode at a time,
reading the inputs again for each, so that only one mode's pieces are in flight besides the
finished blocks; every per-observation work buffer is chunked.

Every sweep performs the arithmetic of :func:`~tnml.decompositions.cp_complete` (same start,
same damping, same balancing, same stopping rule), with the row sums accumulated on the
workers, so that a fit equals the in-memory one to rounding. Dask retries the tasks of a lost
worker from their inputs; a block whose inputs are lost too is recomputed from the original
collections, so a fit either finishes with the same result or raises Dask's error.

Dask is imported only when these functions run: ``pip install tnml[dask]``.
"""

import math

import numpy as np

from .._validation import check_positive_int
from ..backend import serial_blas
from ._fitting import (
    best_of_starts,
    check_fit_params,
    check_n_init,
    fit_sweeps,
    is_exact_fit,
    stalled,
)
from ._masked import Observations, SweepLog, segment_sum, solve_runs
from ._starts import _CORE_FLOPS, _unfolding_products, core_sum, subspace_iteration
from .cp import (
    CPTensor,
    _balance,
    _complete_start,
    _cp_design,
    _sweep_ridge,
    spectral_cp_from,
)

# Tries of one update on a cluster that loses workers (see DistributedObservations._run).
_TRIES = 5

__all__ = [
    "DistributedObservations",
    "distribute_observations",
    "cp_complete_distributed",
    "entries_distributed",
]


def _client(client):
    if client is not None:
        return client
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        raise ValueError(
            "no Dask client: start one (distributed.Client(...)) before fitting dask "
            "collections, or pass client="
        ) from None


# Observations per row block by default (16 bytes each for a third-order tensor: 64 MB).
_BLOCK_OBSERVATIONS = 4 * 10**6
# Entries evaluated at once when a block computes model values (bounds the work buffers).
_CHUNK = 2**18


def _coordinate_dtype(dim):
    """The smallest unsigned integer type that holds the indices ``0 .. dim - 1``."""
    return np.min_scalar_type(max(0, int(dim) - 1))


class _Block:
    """The observations of one row block of one mode, as they live on a worker.

    Sorted (stably) by the block's mode, so that the observations of local row ``r`` are the
    run ``ptr[r]:ptr[r + 1]``: the mode's own coordinates are not stored. The other modes'
    coordinates are kept one contiguous column each, in the smallest unsigned type that holds
    them (2 or 4 bytes for modes up to 2^32), and the values in float64: 16 bytes per
    observation for a third-order tensor with modes up to 2^32, instead of 32 for int64
    coordinates and values.
    """

    def __init__(self, columns, values, ptr, shape, mode, begin, stop):
        self.mode, self.begin, self.stop, self.shape = mode, begin, stop, tuple(shape)
        self.columns, self.values, self.ptr = columns, values, ptr
        self.n_obs = int(values.shape[0])
        self._products = {}

    @classmethod
    def from_pieces(cls, pieces, shape, mode, begin, stop):
        """The block from ``(rows, columns, values)`` pieces (``rows`` local to the block),
        concatenated in order and sorted stably by row: within a row the observations keep
        the order of the input, as in :meth:`Observations.sorted_by`."""
        rows = np.concatenate([p[0] for p in pieces])
        order = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=stop - begin)
        del rows
        ptr = np.zeros(stop - begin + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        columns = [
            None if m == mode else np.concatenate([p[1][m] for p in pieces])[order]
            for m in range(len(shape))
        ]
        values = np.concatenate([p[2] for p in pieces])[order]
        return cls(columns, values, ptr, shape, mode, begin, stop)

    def __sizeof__(self):
        # What Dask's memory accounting sees of a block.
        arrays = [c for c in self.columns if c is not None] + [self.values, self.ptr]
        return object.__sizeof__(self) + sum(a.nbytes for a in arrays)

    def runs(self):
        """``(groups, starts)``: the local rows with observations and where their runs begin."""
        groups = np.nonzero(np.diff(self.ptr))[0]
        return groups, self.ptr[groups]

    def own_rows(self, begin, end):
        """Local rows of the block's mode of observations ``begin:end``."""
        return np.searchsorted(self.ptr, np.arange(begin, end), side="right") - 1

    def global_indices(self, begin=0, end=None):
        """Coordinates (int64, global) of observations ``begin:end``."""
        end = self.n_obs if end is None else end
        indices = np.empty((end - begin, len(self.shape)), dtype=np.int64)
        for m, column in enumerate(self.columns):
            if m == self.mode:
                indices[:, m] = self.own_rows(begin, end) + self.begin
            else:
                indices[:, m] = column[begin:end]
        return indices

    def chunks(self):
        return range(0, self.n_obs, _CHUNK)

    def entries(self, model):
        """The model's entries at the block's observations, chunk by chunk (a generator)."""
        for begin in self.chunks():
            end = min(begin + _CHUNK, self.n_obs)
            yield begin, end, model.entries(self.global_indices(begin, end))

    def take(self, keep):
        """The observations where the boolean ``keep`` holds, as a block (order kept)."""
        kept = np.zeros(self.n_obs + 1, dtype=np.int64)
        np.cumsum(keep, out=kept[1:])
        columns = [None if c is None else c[keep] for c in self.columns]
        return _Block(
            columns, self.values[keep], kept[self.ptr], self.shape, self.mode, self.begin, self.stop
        )

    def subset(self, fraction, seed, held_out):
        """The block's held-out (or training) observations of :func:`_held_out`."""
        keep = np.empty(self.n_obs, dtype=bool)
        for begin in self.chunks():
            end = min(begin + _CHUNK, self.n_obs)
            keep[begin:end] = _held_out(self.global_indices(begin, end), fraction, seed)
        return self.take(keep if held_out else ~keep)

    def observations(self):
        """The block as an :class:`Observations` with the block's mode shifted to start at 0
        (int64 coordinates: for the spectral start's sparse products only)."""
        local_shape = list(self.shape)
        local_shape[self.mode] = max(1, self.stop - self.begin)
        indices = self.global_indices()
        indices[:, self.mode] -= self.begin
        return Observations(indices, self.values, tuple(local_shape))


def _mix(z):
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _held_out(indices, fraction, seed):
    """Whether each entry is held out: a hash of its coordinates and ``seed`` below
    ``fraction``. A function of the entry alone, so every mode's blocks, any chunking and any
    worker agree, with nothing to draw on the client (a repeated entry stays on one side)."""
    with np.errstate(over="ignore"):
        hashed = _mix(np.full(indices.shape[0], np.uint64(seed), dtype=np.uint64))
        for column in indices.T:
            hashed = _mix(hashed ^ column.astype(np.uint64))
    return (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction


def _split(indices, values, mode, edges, shape):
    """Pieces of one input partition, one per row block of ``mode`` (stable order): the rows
    local to the block, the other modes' coordinates in their smallest type, the values."""
    indices = np.asarray(indices)
    values = np.asarray(values, dtype=np.float64)
    own = indices[:, mode]
    block = np.searchsorted(edges, own, side="right") - 1
    order = np.argsort(block, kind="stable")
    starts = np.searchsorted(block[order], np.arange(len(edges)))
    del block
    row_dtype = _coordinate_dtype(int(np.max(np.diff(edges))))
    pieces = []
    for b in range(len(edges) - 1):
        positions = order[starts[b] : starts[b + 1]]
        rows = (own[positions] - edges[b]).astype(row_dtype)
        columns = [
            None if m == mode else indices[positions, m].astype(_coordinate_dtype(dim))
            for m, dim in enumerate(shape)
        ]
        pieces.append((rows, columns, values[positions]))
    return pieces


def _piece(pieces, b):
    return pieces[b]


def _assemble(b, mode, edges, shape, *pieces):
    """Block ``b`` of ``mode``: its pieces from every input partition, in partition order."""
    return _Block.from_pieces(pieces, shape, mode, int(edges[b]), int(edges[b + 1]))


def _solve_block(block, factors, rank, alpha):
    """Rows ``begin:stop`` of the block's mode, solved from the block's observations."""
    n_rows = block.stop - block.begin
    if block.n_obs == 0:
        return np.zeros((n_rows, rank))
    design = _cp_design(list(factors), block.columns, block.mode)
    groups, starts = block.runs()
    return solve_runs(design, block.values, None, groups, starts, n_rows, rank, alpha)


def _squared_residual(block, factors):
    return _model_residual(block, CPTensor(None, list(factors)))


def _model_residual(block, model):
    total = 0.0
    for begin, end, entries in block.entries(model):
        residual = block.values[begin:end] - entries
        total += float(residual @ residual)
    return total


def _subset(block, fraction, seed, held_out):
    return block.subset(fraction, seed, held_out)


def _unfolding_gram(block, mode, Y):
    """``M_b (M_b^T Y)`` for the block's part of the mode-``mode`` unfolding (``mode`` is not
    the block's own mode, so every unfolding column lies in one block and the blocks' terms
    add up to ``M (M^T Y)``), and the block's share of the diagonal of ``M M^T``."""
    if block.n_obs == 0:
        return 0.0, 0.0
    products = block._products
    if mode not in products:
        # Kept until the start is computed (_forget_products): sparse copies of the block.
        observations = block.observations()
        matmul, rmatmul = _unfolding_products(observations, mode)
        order, groups, starts = observations.sorted_by(mode)
        diagonal = np.zeros(block.shape[mode])
        values = observations.values
        diagonal[groups] = segment_sum((values * values)[order], starts)
        products[mode] = (matmul, rmatmul, diagonal)
    matmul, rmatmul, diagonal = products[mode]
    return (None if Y is None else matmul(rmatmul(Y))), diagonal


def _forget_products(block):
    block._products.clear()


def _block_core(block, bases):
    total = 0.0
    for begin in block.chunks():
        end = min(begin + _CHUNK, block.n_obs)
        indices = block.global_indices(begin, end)
        total = total + core_sum(indices, block.values[begin:end], list(bases))
    return total


def _block_scale_sums(block, weights, factors):
    cross = square = 0.0
    for begin, end, model in block.entries(CPTensor(weights, list(factors))):
        cross += float(model @ block.values[begin:end])
        square += float(model @ model)
    return cross, square


def _block_sums(block):
    """``(n_obs, sum, sum of squares)`` of a block's values."""
    values = block.values
    return block.n_obs, float(values.sum()), float(values @ values)


def _call_unpacked(block, function, args):
    return function(block, *args)


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(_add(x, y) for x, y in zip(a, b))
    if a is None:
        return None
    return a + b


class DistributedObservations:
    """Observed entries on a Dask cluster, laid out in row blocks of every mode.

    Built by :func:`distribute_observations`; holds futures only (the observations stay on
    the workers). ``blocks[mode]`` are the futures of that mode's row blocks.

    Attributes
    ----------
    shape : tuple of int
    n_obs : int
    sum, squared_norm : float
        Sum of the values and of their squares.
    blocks : list of lists of futures
    client : distributed.Client
    """

    def __init__(self, blocks, shape, client):
        self.blocks, self.shape, self.client = blocks, tuple(shape), client
        sums = client.gather(client.map(_block_sums, blocks[0], pure=False))
        self.n_obs = sum(s[0] for s in sums)
        self.sum = math.fsum(s[1] for s in sums)
        self.squared_norm = math.fsum(s[2] for s in sums)

    def split(self, fraction, seed):
        """``(train, held_out)``: the entries whose coordinate hash (with ``seed``) falls
        below ``fraction`` are held out; both keep the row-block layout."""
        parts = []
        for held_out in (False, True):
            blocks = [
                self.client.map(
                    _subset,
                    mode_blocks,
                    fraction=fraction,
                    seed=seed,
                    held_out=held_out,
                    pure=False,
                )
                for mode_blocks in self.blocks
            ]
            parts.append(DistributedObservations(blocks, self.shape, self.client))
        if not (parts[0].n_obs and parts[1].n_obs):
            raise ValueError(
                f"a held-out fraction of {fraction} of {self.n_obs} observed entries leaves "
                f"no entry on one side of the split"
            )
        return tuple(parts)

    def relative_error(self, model):
        """``||x - x_hat|| / ||x||`` over the observations, for any format ``model``."""
        shared = self.client.scatter(model, broadcast=True, hash=False)
        parts = self.client.map(_model_residual, self.blocks[0], model=shared, pure=False)
        return math.sqrt(math.fsum(self.client.gather(parts))) / (
            math.sqrt(self.squared_norm) or 1.0
        )

    def _run(self, function, blocks, **kwargs):
        """``function(block, **kwargs)`` on every block, gathered in block order.

        Dask reruns the tasks of a lost worker (and the tasks that made its blocks); what it
        cannot rerun is a broadcast of the factors to a worker that died meanwhile, or one
        whose every copy is lost: then the update is tried again with a fresh broadcast, and
        after ``_TRIES`` tries the fit stops with an error rather than go on with a wrong
        factor.
        """
        import time

        from distributed.client import FutureCancelledError
        from distributed.comm import CommClosedError

        for attempt in range(_TRIES):
            try:
                shared = {
                    name: self.scatter(value) if name in ("factors", "args") else value
                    for name, value in kwargs.items()
                }
                futures = self.client.map(function, blocks, pure=False, **shared)
                return self.client.gather(futures)
            except (FutureCancelledError, CommClosedError, OSError) as error:
                if attempt == _TRIES - 1:
                    raise RuntimeError(
                        f"the Dask cluster lost the data of {function.__name__} {_TRIES} "
                        f"times in a row ({type(error).__name__}: {error}); the fit was "
                        f"stopped, no model is returned"
                    ) from error
                time.sleep(0.5 * (attempt + 1))  # let the scheduler see the lost worker

    def scatter(self, data):
        """``data`` (the factors, a tuple of arrays) on every worker: one future, one
        broadcast."""
        [future] = self.client.scatter([tuple(data)], broadcast=True, hash=False)
        return future

    def solve(self, mode, factors, rank, alpha):
        """The mode-``mode`` factor solved row block by row block on the workers."""
        rows = self._run(_solve_block, self.blocks[mode], factors=factors, rank=rank, alpha=alpha)
        return np.concatenate(rows, axis=0)

    def squared_residual(self, factors):
        """``sum (x - x_hat)^2`` over every observation (from mode 0's blocks)."""
        return math.fsum(self._run(_squared_residual, self.blocks[0], factors=factors))

    def _sum(self, func, blocks, *args):
        shared = self.client.scatter([args], broadcast=True, hash=False)[0] if args else None
        if shared is None:
            parts = self.client.map(func, blocks, pure=False)
        else:
            parts = self.client.map(_call_unpacked, blocks, function=func, args=shared, pure=False)
        results = self.client.gather(parts)
        total = results[0]
        for part in results[1:]:
            total = _add(total, part)
        return total

    def spectral_start(self, rank, random_state=None, n_iter=8, oversample=5, n_core_starts=5):
        """:func:`~tnml.decompositions._starts.spectral_cp` with its sparse products summed
        over the blocks; ``(weights, factors)`` or None (then start at random)."""
        shape = self.shape
        n = len(shape)

        def operator(mode):
            # Blocks of another mode hold every unfolding column whole. One mode's sparse
            # products at a time: the previous mode's are dropped first.
            self._forget_products()
            blocks = self.blocks[(mode + 1) % n]
            _, diagonal = self._sum(_unfolding_gram, blocks, mode, None)
            return (lambda Y: self._sum(_unfolding_gram, blocks, mode, Y)[0]), diagonal

        def subspaces(rank, rng):
            return subspace_iteration(
                operator, shape, self.n_obs, rank, n_iter, oversample, rng, np, np.float64
            )

        def core(bases):
            size = math.prod(b.shape[1] for b in bases)
            if size * self.n_obs > _CORE_FLOPS:
                return None
            p = min(1.0, self.n_obs / math.prod(shape))
            total = self._sum(_block_core, self.blocks[0], tuple(bases))
            return np.reshape(total / p, tuple(b.shape[1] for b in bases))

        def scale_sums(weights, factors):
            return self._sum(_block_scale_sums, self.blocks[0], weights, tuple(factors))

        try:
            with serial_blas():
                return spectral_cp_from(
                    shape,
                    self.n_obs,
                    rank,
                    subspaces,
                    core,
                    scale_sums,
                    random_state,
                    n_core_starts,
                )
        finally:
            self._forget_products()

    def _forget_products(self):
        for blocks in self.blocks:
            self.client.gather(self.client.map(_forget_products, blocks, pure=False))

    def release(self):
        """Drop the workers' copies of the observations."""
        for futures in self.blocks:
            self.client.cancel(futures)
        self.blocks = []


def distribute_observations(indices, values, shape, *, n_blocks=None, client=None):
    """Lay out dask observations in row blocks of every mode, on the workers.

    Parameters
    ----------
    indices : dask array of int, shape (n_obs, ndim)
        Coordinates, chunked along the observations only.
    values : dask array of float, shape (n_obs,)
        Chunked like ``indices`` along the observations.
    shape : tuple of int
    n_blocks : int, optional
        Row blocks per mode, at most the mode's size; default one per 4 x 10^6 observations,
        at least two per worker.
    client : distributed.Client, optional
        Default: the current client.

    Returns
    -------
    DistributedObservations
    """
    import dask
    from distributed import wait

    client = _client(client)
    shape = tuple(int(d) for d in shape)
    indices = indices.rechunk({1: -1})
    values = values.rechunk((indices.chunks[0],))
    index_parts = indices.to_delayed().ravel()
    value_parts = values.to_delayed().ravel()
    if n_blocks is None:
        n_workers = len(client.scheduler_info()["workers"])
        n_blocks = max(2 * n_workers, -(-indices.shape[0] // _BLOCK_OBSERVATIONS))
    n_blocks = check_positive_int(n_blocks, "n_blocks")
    split = dask.delayed(_split, pure=True)
    blocks = []
    for mode, dim in enumerate(shape):
        count = max(1, min(n_blocks, dim))
        edges = np.linspace(0, dim, count + 1).round().astype(np.int64)
        # One graph per mode: Dask's ordering splits each input partition as soon as it is
        # read (or generated) and frees it, so the inputs are never all in memory at once;
        # they are read again for the next mode.
        parts = client.compute(
            [split(i, v, mode, edges, shape) for i, v in zip(index_parts, value_parts)]
        )
        pieces = [client.map(_piece, parts, [b] * len(parts), pure=False) for b in range(count)]
        del parts  # each partition's pieces are separate keys: the list itself is freed
        mode_blocks = [
            client.submit(_assemble, b, mode, edges, shape, *pieces[b], pure=False)
            for b in range(count)
        ]
        # The pieces of one mode at a time: the blocks of the next mode are built only once
        # these are done and their pieces freed.
        wait(mode_blocks)
        del pieces
        blocks.append(mode_blocks)
    observations = DistributedObservations(blocks, shape, client)
    # Only the blocks are held from here on: the scheduler forgets the input partitions and
    # pieces but keeps their tasks, to recompute a block whose worker is lost.
    if observations.n_obs == 0:
        raise ValueError("indices and values are empty: there are no observed entries to fit")
    return observations


def cp_complete_distributed(
    observations,
    rank,
    *,
    max_iter=100,
    tol=1e-6,
    init="spectral",
    random_state=None,
    alpha=1e-8,
    verbose=0,
    n_init=1,
    callback=None,
    state=None,
    validation=None,
):
    """:func:`~tnml.decompositions.cp_complete` on observations held by a Dask cluster.

    Parameters
    ----------
    observations : DistributedObservations
        From :func:`distribute_observations`.
    rank : int
    max_iter, tol, random_state, verbose
        As in :func:`~tnml.decompositions.cp_complete`.
    init : {'spectral', 'random'} or CPTensor, default='spectral'
        As in :func:`~tnml.decompositions.cp_complete`; the spectral start's sparse products
        are sums over the blocks.
    alpha : float, default=1e-8
        The ridge penalty of every row's normal equations, as ``alpha`` of
        :func:`~tnml.decompositions.cp_complete`.
    n_init : int, default=1
        Starts: ``init``, then random ones; the lowest final training error wins. With
        ``n_init=1`` a spectral start that stalls gets one random start more, as in
        :func:`~tnml.decompositions.cp_complete`.
    callback : callable, optional
        ``callback(state)`` after every sweep, with ``state`` a dict of the balanced
        ``factors`` (weights absorbed), the start's ``kind`` and the training ``errors`` so
        far: what ``state=`` needs to continue the fit exactly (a checkpoint). With a
        callback or a state, one start runs (``n_init`` must be 1; no extra start after a
        stall), so that a resumed fit ends where an uninterrupted one does.
    state : dict, optional
        A ``callback``'s state to continue from instead of starting.
    validation : DistributedObservations, optional
        Held-out entries: each start's final relative error on them is its
        ``validation_errors`` (one value), and starts are compared on it.

    Returns
    -------
    cp : CPTensor
    info : FitResult
    """
    rank = check_positive_int(rank, "rank")
    tol, alpha = check_fit_params(max_iter, tol, verbose, alpha)

    def fit(start, rng, state=None):
        result = _fit(
            observations,
            rank,
            init if start == 0 else "random",
            rng,
            max_iter,
            tol,
            alpha,
            verbose,
            callback,
            state,
        )
        if validation is not None:
            result[1].validation_errors = [validation.relative_error(result[0])]
        return result

    if callback is not None or state is not None:
        if check_n_init(n_init) != 1:
            raise ValueError(f"a checkpointed fit runs one start; got n_init={n_init}")
        return fit(0, random_state, state)
    if check_n_init(n_init) == 1:
        result = fit(0, random_state)
        if not (isinstance(init, str) and init != "random" and not result[1].converged):
            return result
        n_init = 2
    return best_of_starts(fit, n_init, random_state)


def _start(observations, rank, init, random_state):
    """The start of :func:`~tnml.decompositions.cp_complete` for ``init``: (kind, factors)."""
    return _complete_start(
        observations.shape,
        rank,
        init,
        random_state,
        spectral=lambda: observations.spectral_start(rank, random_state),
        mean_square=lambda: observations.squared_norm / observations.n_obs,
    )


def _fit(observations, rank, init, random_state, max_iter, tol, alpha, verbose, callback, state):
    shape = observations.shape
    if state is None:
        kind, factors = _start(observations, rank, init, random_state)
        done = []
    else:
        kind, done = state["kind"], list(state["errors"])
        factors = [np.asarray(f, dtype=np.float64) for f in state["factors"]]
    norm = math.sqrt(observations.squared_norm) or 1.0
    log = SweepLog(None, None, "cp_complete_distributed", verbose)
    log.errors.extend(done)

    def step(iteration):
        nonlocal factors
        iteration += len(done)
        for mode in range(len(shape)):
            rows_per_slice = observations.n_obs / shape[mode]
            ridge = _sweep_ridge(kind, alpha, iteration, factors, mode, rows_per_slice)
            factors[mode] = observations.solve(mode, factors, rank, ridge)
        factors = _balance(factors)
        error = math.sqrt(observations.squared_residual(factors)) / norm
        if callback is not None:
            callback({"factors": factors, "kind": kind, "errors": log.errors + [error]})
        return CPTensor(None, factors), error

    dtype = np.dtype(np.float64)
    if done and (is_exact_fit(done[-1], dtype) or stalled(done, tol, 1)):
        info = log.result(True)  # the checkpoint was written by the converged sweep
    elif len(done) >= max_iter:
        info = log.result(False)
    else:
        info = fit_sweeps(step, max_iter - len(done), tol, log, dtype)
    return CPTensor(None, factors).normalize(), info


def _entries(indices, model):
    return model.entries(np.asarray(indices, dtype=np.int64))


def entries_distributed(model, indices):
    """The entries of a format at dask coordinates, as a lazy dask array (one task a chunk).

    Parameters
    ----------
    model : FactorizedTensor
        Any format (``CPTensor``, ...); it travels with the tasks (it is small).
    indices : dask array of int, shape (n, ndim)

    Returns
    -------
    dask array of shape (n,)
    """
    indices = indices.rechunk({1: -1})
    try:  # on a cluster: one copy of the model per worker, not one per task
        from distributed import default_client

        model = default_client().scatter(model, broadcast=True)
    except (ImportError, ValueError):
        pass
    return indices.map_blocks(_entries, model, drop_axis=1, dtype=np.float64)
