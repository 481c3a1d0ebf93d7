"""Chains and rings of 3-way cores: gauge moves, padding and masked ALS shared by TT and TR.

Cores ``G_k`` have shape ``(r_k, I_k, r_{k+1})`` with ``r_d = r_0``. A tensor train is the ring
whose closing bond ``r_0`` is 1, so one engine completes both formats.

Masked ALS (:func:`complete_chain`). An observed entry ``j`` at ``(i_0, ..., i_{d-1})`` is

    x_j = trace(L_j G_k[:, i_k, :] R_j) = sum_{a, b} G_k[a, i_k, b] (L_j^T R_j^T)[a, b],

with ``L_j = G_0[i_0] ... G_{k-1}[i_{k-1}]`` (``r_0 x r_k``) and ``R_j = G_{k+1}[i_{k+1}] ...
G_{d-1}[i_{d-1}]`` (``r_{k+1} x r_0``). So core ``k`` is a row-wise least-squares problem
(:func:`~tnml.decompositions._masked.solve_rowwise`): slice ``i_k`` is fitted to the entries
with that index, each with the design row ``vec(L_j^T R_j^T)`` of ``P = r_k r_{k+1}`` unknowns.

The *environments* ``L_j`` and ``R_j^T`` are kept per observation, as ``(n_obs, r_0, r)``
arrays (vectors for a TT). Sweeps go back and forth, as in DMRG: moving the solved core's
position one step costs a single product per observation, ``O(n_obs r_0 r^2)``, and no
environment is ever recomputed from scratch. Each step also moves the orthogonality centre
with a QR (an exact gauge change), so that the cores outside the one being solved stay
orthonormal. For a TT this makes the full-data design orthonormal: the masked normal equations
are then about ``p I`` for a fraction ``p`` observed, well conditioned and on the same scale
whatever the gauge, which is what lets one absolute ridge ``alpha`` fit every core. A ring
keeps one bond outside any gauge, but the QRs still stop norms drifting between cores.

Cost per sweep: ``O(n_obs sum_k (r_k r_{k+1})^2)`` for the Gram matrices (GEMMs), plus
``O(n_obs d r_0 r^2)`` for environments; memory ``O(n_obs d r_0 r)``.
"""

from .._config import check_memory
from .._validation import check_nonneg_float
from ..backend import check_random_state, get_namespace, to_device, to_numpy
from ._fitting import fit_sweeps
from ._linalg import pad_array
from ._masked import Observations, SweepLog, solve_rowwise

__all__ = [
    "qr_left",
    "qr_right",
    "random_cores",
    "pad_cores",
    "pad_chain",
    "complete_chain",
    "check_observations",
]


# -- gauge moves ----------------------------------------------------------------------------------
def qr_left(cores, k, keep_rank=False):
    """Make ``cores[k]`` left-orthonormal, pushing the R factor into ``cores[k + 1]``.

    A bond larger than ``r_k I_k`` shrinks to it, unless ``keep_rank``: then such a core is left
    as it is (a ring may have such bonds; the tensor is the same either way).
    """
    xp = get_namespace(cores[k])
    rank_in, size, rank_out = cores[k].shape
    if keep_rank and rank_in * size < rank_out:
        return
    q, r = xp.linalg.qr(xp.reshape(cores[k], (rank_in * size, rank_out)))
    cores[k] = xp.reshape(q, (rank_in, size, q.shape[1]))
    nxt = cores[k + 1]
    cores[k + 1] = xp.reshape(
        r @ xp.reshape(nxt, (rank_out, -1)), (r.shape[0], nxt.shape[1], nxt.shape[2])
    )


def qr_right(cores, k, keep_rank=False):
    """Make ``cores[k]`` right-orthonormal (LQ via QR of the transpose), pushing L left."""
    xp = get_namespace(cores[k])
    rank_in, size, rank_out = cores[k].shape
    if keep_rank and size * rank_out < rank_in:
        return
    q, r = xp.linalg.qr(xp.reshape(cores[k], (rank_in, size * rank_out)).T)
    cores[k] = xp.reshape(q.T, (q.shape[1], size, rank_out))
    prev = cores[k - 1]
    cores[k - 1] = xp.reshape(
        xp.reshape(prev, (-1, rank_in)) @ r.T, (prev.shape[0], prev.shape[1], r.shape[0])
    )


def random_cores(shape, bonds, random_state=None, xp=None, dtype="float64"):
    """Standard normal cores ``(bonds[k], shape[k], bonds[k + 1])``, drawn on the host (a seed
    gives the same cores on every namespace), then moved to ``xp`` (NumPy by default)."""
    import numpy as np

    rng = check_random_state(random_state)
    xp = np if xp is None else xp
    return [
        to_device(rng.standard_normal((bonds[k], size, bonds[k + 1])).astype(dtype), xp)
        for k, size in enumerate(shape)
    ]


# -- padding --------------------------------------------------------------------------------------
def pad_cores(cores, ranks, scale, random_state):
    """Cores grown to bond dimensions ``ranks`` (``d + 1`` of them), new entries small.

    Each core keeps its old block; the new entries are Gaussian with standard deviation
    ``scale`` times the core's root mean square. Every path through a new bond index enters it
    through one core's new entries and leaves through the next one's, so the tensor changes by
    ``O(scale^2)`` relative to its norm.
    """
    rng = check_random_state(random_state)
    padded = []
    for k, core in enumerate(cores):
        shape = (ranks[k], core.shape[1], ranks[k + 1])
        padded.append(core if shape == tuple(core.shape) else pad_array(core, shape, scale, rng))
    return padded


def pad_chain(network, ranks, scale, random_state):
    """``network`` (a TTTensor or TRTensor) grown to the bonds ``ranks`` (``d + 1`` of them,
    the closing bond repeated at the end), the new entries small; see :func:`pad_cores`."""
    scale = check_nonneg_float(scale, "scale")
    kind = "TT" if len(network.rank) == len(ranks) else "TR"  # a ring lists d bonds, a train d + 1
    if any(new < old for new, old in zip(ranks, network.rank)):
        raise ValueError(
            f"new_rank must be at least the current {kind} rank {network.rank} on "
            f"every bond, got {tuple(ranks[: len(network.rank)])}"
        )
    return type(network)(pad_cores(network.cores, ranks, scale, random_state))


# -- validation -----------------------------------------------------------------------------------
def check_observations(observations, validation=None):
    """The observations (float values) and the validation set (same shape, or None)."""
    for name, obs in (("observations", observations), ("validation", validation)):
        if obs is None and name == "validation":
            continue
        if not isinstance(obs, Observations):
            raise TypeError(
                f"{name} must be an Observations (coordinates, values and shape), "
                f"got {type(obs).__name__}"
            )
        if obs.values.dtype.kind != "f":
            raise TypeError(f"{name} must have floating values, got dtype {obs.values.dtype}")
        if len(obs.shape) < 2:
            raise ValueError(f"{name} must describe a tensor of order >= 2, got shape {obs.shape}")
    if validation is not None and validation.shape != observations.shape:
        raise ValueError(
            f"validation has shape {validation.shape}, but observations have "
            f"shape {observations.shape}"
        )
    return observations, validation


def _start_cores(init, random_start, observations, to_format):
    """The cores of ``init`` (a format, or "random" for ``random_start()``) in the observations'
    namespace and dtype."""
    if isinstance(init, to_format):
        values = observations.values
        xp = get_namespace(values)
        return [xp.asarray(to_device(core, xp), dtype=values.dtype) for core in init.cores]
    if isinstance(init, str) and init == "random":
        return random_start().cores
    raise ValueError(f"init must be 'random' or a {to_format.__name__}, got {init!r}")


# -- environments ---------------------------------------------------------------------------------
def _apply_slices(env, slices, observations, mode):
    """``env[j] @ slices[i_mode(j)]`` for every observation ``j``, shape ``(n, r_0, b)``.

    ``env`` is ``(n, r_0, a)`` or None for the identity (then ``r_0 = a``); ``slices`` is
    ``(I_mode, a, b)``. Observations with equal index share their matrix, so each slice is one
    GEMM over all of them (``(n_i r_0, a) @ (a, b)``) instead of ``n`` tiny products.
    """
    xp = get_namespace(slices)
    column = observations.column(mode)
    if env is None:
        return xp.take(slices, column, axis=0)
    n, closing, width = env.shape
    out = xp.empty((n, closing, slices.shape[2]), dtype=slices.dtype)
    order, groups, starts = observations.sorted_by(mode)
    bounds = list(to_numpy(starts)) + [n]
    for index, begin, end in zip(to_numpy(groups), bounds[:-1], bounds[1:]):
        rows = order[int(begin) : int(end)]
        block = xp.reshape(xp.take(env, rows, axis=0), (-1, width))
        out[rows] = xp.reshape(block @ slices[int(index)], (-1, closing, slices.shape[2]))
    return out


def _slices(core, transpose=False):
    """The core as ``(I_k, r_k, r_{k+1})`` matrices (or their transposes)."""
    xp = get_namespace(core)
    moved = xp.moveaxis(core, 1, 0)
    return xp.ascontiguousarray(xp.swapaxes(moved, 1, 2) if transpose else moved)


def _design_rows(left, right, shape):
    """Callback for :func:`solve_rowwise`: rows ``vec(L_j^T R_j^T)`` of the given positions."""
    rank_in, _, rank_out = shape
    size = rank_in * rank_out

    def design_rows(positions):
        xp = get_namespace(positions)
        if left is None:  # core 0: L_j is the identity
            return xp.reshape(xp.take(right, positions, axis=0), (-1, size))
        lefts = xp.take(left, positions, axis=0)
        if right is None:  # core d-1: R_j is the identity
            return xp.reshape(xp.swapaxes(lefts, 1, 2), (-1, size))
        rights = xp.take(right, positions, axis=0)
        if lefts.shape[1] == 1:  # a train: an outer product, no batched matmul needed
            return xp.reshape(lefts[:, 0, :, None] * rights[:, 0, None, :], (-1, size))
        return xp.reshape(xp.swapaxes(lefts, 1, 2) @ rights, (-1, size))

    return design_rows


class _Environments:
    """Cores, orthogonality centre and the per-observation environments of the centre.

    ``left[k]`` holds ``L_j`` for core ``k`` and ``right[k]`` holds ``R_j^T``, both
    ``(n_obs, r_0, r)``; None stands for the identity (``left[0]``, ``right[d - 1]``) or
    for an environment that the last centre move made stale (it is rebuilt before use).
    """

    def __init__(self, observations, cores):
        self.obs, self.cores, d = observations, list(cores), len(cores)
        largest = max(core.shape[0] * core.shape[2] for core in cores)
        check_memory(
            observations.n_obs * largest * cores[0].dtype.itemsize, "masked ALS environments"
        )
        for k in range(d - 1, 0, -1):
            qr_right(self.cores, k, keep_rank=True)
        self.center, self.left, self.right = 0, [None] * d, [None] * d
        for k in range(d - 2, -1, -1):
            self.right[k] = self._grow_right(k + 1)

    def _grow_left(self, k):
        """Left environment of core ``k + 1`` from that of core ``k``."""
        return _apply_slices(self.left[k], _slices(self.cores[k]), self.obs, k)

    def _grow_right(self, k):
        """Right environment of core ``k - 1`` from that of core ``k``."""
        return _apply_slices(self.right[k], _slices(self.cores[k], transpose=True), self.obs, k)

    def move_to(self, k):
        """Move the centre one step to core ``k``: gauge via QR, then one environment."""
        c = self.center
        if k == c + 1:
            qr_left(self.cores, c, keep_rank=True)
            self.left[k], self.right[c] = self._grow_left(c), None
        elif k == c - 1:
            qr_right(self.cores, c, keep_rank=True)
            self.right[k], self.left[c] = self._grow_right(c), None
        elif k != c:
            raise ValueError(f"the centre moves one core at a time, not from {c} to {k}")
        self.center = k

    def solve(self, alpha):
        """Re-solve the centre core by row-wise ridge least squares."""
        k, core = self.center, self.cores[self.center]
        xp = get_namespace(core)
        rank_in, size, rank_out = core.shape
        solution = solve_rowwise(
            self.obs,
            k,
            _design_rows(self.left[k], self.right[k], core.shape),
            size,
            rank_in * rank_out,
            alpha,
        )
        self.cores[k] = xp.ascontiguousarray(
            xp.moveaxis(xp.reshape(solution, (size, rank_in, rank_out)), 0, 1)
        )

    def predictions(self):
        """Model values at every observation, from the centre's environments."""
        k, xp = self.center, get_namespace(self.obs.values)
        partial = _apply_slices(self.left[k], _slices(self.cores[k]), self.obs, k)
        if self.right[k] is None:  # close the ring: trace of the (r_0, r_0) products
            return xp.trace(partial, axis1=1, axis2=2)
        return xp.sum(xp.reshape(partial * self.right[k], (partial.shape[0], -1)), axis=1)


# -- the sweeps -----------------------------------------------------------------------------------
def complete_chain(
    observations, init, random_start, *, max_iter, tol, alpha, verbose, validation, to_format, label
):
    """Masked ALS over a chain (TT) or ring (TR) of cores; see the module docstring.

    One iteration is one sweep, alternately left to right and right to left; every sweep after
    the first skips its first core, which the previous sweep solved last.

    Parameters
    ----------
    observations, validation : Observations (validation may be None)
    init : "random" or a format of the observations' shape (checked by the caller)
        The start; any gauge.
    random_start : callable
        ``random_start()`` is the random start, a format.
    max_iter, tol, alpha, verbose
        As in :func:`~tnml.decompositions.tt.tt_complete`.
    to_format : callable
        Builds the format (TTTensor or TRTensor) from cores.
    label : str
        Name in verbose output.

    Returns
    -------
    network : the format built by ``to_format``
    result : FitResult
    """
    xp = get_namespace(observations.values)
    norm = float(xp.linalg.norm(observations.values)) or 1.0
    cores = _start_cores(init, random_start, observations, to_format)
    state = _Environments(observations, cores)
    d = len(cores)

    def step(iteration):
        forward = iteration % 2 == 0
        path = list(range(state.center, d) if forward else range(state.center, -1, -1))
        for k in path[1:] if iteration else path:
            state.move_to(k)
            state.solve(alpha)
        # The training error comes from the cached environments, not from entries().
        residual = observations.values - state.predictions()
        return to_format(state.cores), float(xp.linalg.norm(residual)) / norm

    # Compare sweeps of the same direction (lag 2): the ridge acts on the centre core, which
    # alternates between the ends, so at a fixed point the errors alternate too.
    result = fit_sweeps(
        step,
        max_iter,
        tol,
        SweepLog(observations, validation, label, verbose),
        observations.values.dtype,
        lag=2,
    )
    return to_format(state.cores), result
