"""Matrix product state (MPS) models for supervised learning, as pure array functions.

The model of Stoudenmire & Schwab (2016): every feature ``x_j`` (scaled to [0, 1]) is mapped to a
local vector ``phi(x_j)`` of dimension ``d``, and the prediction for output ``l`` is the
contraction of the product state ``phi(x_1) (x) ... (x) phi(x_N)`` with an MPS whose site
``label_site`` carries one extra index ``l`` (the label index)::

    f_l(x) = sum  A1[s1, a1] A2[a1, s2, a2] ... C[a_{c-1}, s_c, l, a_c] ... AN[a_{N-1}, sN]
                   * phi(x_1)[s1] ... phi(x_N)[sN]

Cores are stored as a list: site ``k`` has shape ``(D_{k-1}, d, D_k)`` (``D_0 = D_N = 1``) and
the label site has shape ``(D_{c-1}, d, L, D_c)``.

Training (:func:`mps_dmrg_sweep`) moves a two-site bond tensor along the chain: the sites left of
the bond are left-orthonormal and those right of it right-orthonormal, and the per-sample
environments (the contractions of each side with the sample's features) are cached at unit
norm, their log-norms tracked. Without that, the environments shrink like the share of each
sample's product state that the MPS keeps: on digits upsampled to 28 x 28 (784 sites) their
median norm at the chain's centre was 3e-5 and the smallest 1e-48, the outputs 1e-3 against
targets of order one, and the bond tensors stayed near zero (42% test accuracy at 196 sites).
By default the model itself is defined on unit environments (:func:`mps_predict`). The bond
tensor solves the ridge-regularised normal equations (directly where that is cheaper,
otherwise by conjugate-gradient steps) and is split back by a truncated SVD, which moves the
label index one site on. One bond update costs ``O(n_samples * D^2 * d^2 * L)``, one sweep
``n_sites`` times that.

The initial MPS is the data's own "principal product subspace": scanning from each end, the
left (right) block keeps the ``D`` leading singular directions of the samples' unit block
environments; the label core is then the ridge solution on that basis.

References
----------
E. M. Stoudenmire and D. J. Schwab, "Supervised learning with tensor networks", NeurIPS 2016.
A. Novikov, M. Trofimov and I. Oseledets, "Exponential machines", ICLR workshop 2017.
E. M. Stoudenmire, "Learning relevant features of data with multi-scale tensor networks",
Quantum Sci. Technol. 3, 2018 (data-driven initialisation).
"""

import math

import numpy as np

from ..backend import get_namespace
from ..contract import einsum
from ..decompositions import FactorizedTensor, TTTensor
from ..decompositions.network import adam_update

__all__ = [
    "MPSTensor",
    "environment_bytes",
    "feature_map",
    "init_mps",
    "mps_predict",
    "mps_dmrg_sweep",
    "mps_loss_and_grads",
    "adam_init",
    "adam_step",
    "FEATURE_MAPS",
]

FEATURE_MAPS = ("trig", "poly")


class MPSTensor(FactorizedTensor):
    """A fitted MPS model: a tensor train whose site ``label_site`` carries the label index.

    Parameters
    ----------
    cores : list of arrays
        Site ``k`` has shape ``(D_{k-1}, d, D_k)`` (``D_0 = D_N = 1``); the label site has
        shape ``(D_{c-1}, d, L, D_c)``.
    label_site : int

    The weight tensor ``W`` has shape ``(d, ..., d, L, d, ..., d)``: the label index right
    after its site's index (mode ``label_site + 1``). ``to_tensor``, ``entries`` and ``norm``
    are those of that tensor, computed as a :class:`~tnml.decompositions.TTTensor` with one
    extra site for the label.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.supervised.mps import MPSTensor
    >>> cores = [np.ones((1, 2, 3)), np.ones((3, 2, 4, 1))]
    >>> mps = MPSTensor(cores, label_site=1)
    >>> mps.shape, mps.n_params, mps.n_outputs, float(mps.norm()) ** 2
    ((2, 2, 4), 30, 4, 144.0)
    """

    _array_names = ("cores",)

    def __init__(self, cores, label_site):
        if not isinstance(cores, (list, tuple)) or len(cores) < 2:
            raise ValueError("cores must be a list of at least 2 arrays")
        label_site = int(label_site)
        if not 0 <= label_site < len(cores):
            raise ValueError(f"label_site must be in [0, {len(cores) - 1}], got {label_site}")
        for k, core in enumerate(cores):
            ndim = 4 if k == label_site else 3
            if getattr(core, "ndim", None) != ndim:
                raise ValueError(
                    f"core {k} must have {ndim} dimensions, got shape "
                    f"{getattr(core, 'shape', None)}"
                )
            if k and core.shape[0] != cores[k - 1].shape[-1]:
                raise ValueError(f"cores {k - 1} and {k} do not share their bond dimension")
        if cores[0].shape[0] != 1 or cores[-1].shape[-1] != 1:
            raise ValueError("the first and last bond dimensions must be 1")
        self.cores = list(cores)
        self.label_site = label_site

    def _metadata(self):
        return {"label_site": self.label_site}

    @property
    def n_outputs(self):
        """Size L of the label index."""
        return int(self.cores[self.label_site].shape[2])

    @property
    def bond_dims(self):
        """``(D_1, ..., D_{N-1})``."""
        return tuple(int(core.shape[0]) for core in self.cores[1:])

    def _rank_repr(self):
        return f"bond_dims={self.bond_dims}, label_site={self.label_site}"

    @property
    def shape(self):
        shape = [int(core.shape[1]) for core in self.cores]
        shape.insert(self.label_site + 1, self.n_outputs)
        return tuple(shape)

    def to_tt(self):
        """The same tensor as a TTTensor: the label index becomes its own site."""
        xp = self.xp
        cores = list(self.cores)
        a, d, n_out, b = cores[self.label_site].shape
        site = xp.reshape(cores[self.label_site], (a, d, n_out * b))
        label = xp.reshape(xp.eye(n_out * b, dtype=site.dtype), (n_out * b, n_out, b))
        cores[self.label_site : self.label_site + 1] = [site, label]
        return TTTensor(cores)

    def _to_tensor_bytes(self):
        return self.to_tt()._to_tensor_bytes()

    def _to_tensor(self):
        return self.to_tt()._to_tensor()

    def entries(self, indices):
        """Values of ``W`` at integer coordinates ``indices`` of shape ``(n, n_sites + 1)``."""
        return self.to_tt().entries(self._checked_indices(indices))

    def norm(self):
        """Frobenius norm of ``W``, from transfer matrices."""
        return self.to_tt().norm()


def feature_map(X, kind="trig"):
    """Local feature vectors of scaled inputs.

    Parameters
    ----------
    X : array of shape (n_samples, n_sites), values in [0, 1]
    kind : {'trig', 'poly'} or callable
        ``'trig'``: ``[cos(pi x / 2), sin(pi x / 2)]`` (unit norm); ``'poly'``: ``[1, x]``
        (the exponential machine); a callable maps X to an array (n_samples, n_sites, d).

    Returns
    -------
    phi : array of shape (n_samples, n_sites, d), in X's namespace

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.supervised.mps import feature_map
    >>> feature_map(np.array([[0.0, 1.0]])).round(6).tolist()
    [[[1.0, 0.0], [0.0, 1.0]]]
    """
    xp = get_namespace(X)
    if kind == "trig":
        angle = (math.pi / 2) * X
        return xp.stack([xp.cos(angle), xp.sin(angle)], axis=-1)
    if kind == "poly":
        return xp.stack([xp.ones_like(X), X], axis=-1)
    phi = kind(X)
    if getattr(phi, "ndim", None) != 3 or tuple(phi.shape[:2]) != tuple(X.shape):
        raise ValueError(
            f"feature_map callable must return an array of shape "
            f"{tuple(X.shape) + ('d',)}, got "
            f"{getattr(phi, 'shape', type(phi).__name__)}"
        )
    return phi


# -- environments -------------------------------------------------------------------------------
def _by_site(phi):
    """phi as (n_sites, n_samples, d), contiguous: every per-site slice is then one contiguous
    block instead of a gather with a stride of n_sites * d (which made long chains slower per
    site than short ones)."""
    xp = get_namespace(phi)
    return xp.ascontiguousarray(xp.moveaxis(phi, 1, 0))


def _ones(phi, xp):
    return xp.ones((phi.shape[0], 1), dtype=phi.dtype)


def _normalize(env):
    """Every sample's environment divided by its norm, and those norms.

    Through N products the raw environments of one sample shrink like the share of its
    product state that the MPS's left (right) subspaces keep: at 784 sites their median norm
    was 3e-5 and the smallest 1e-48 on upsampled digits, so that the outputs and the curvature
    of the bond problem underflowed. The model is defined on unit environments (see
    :func:`mps_predict`), so the norms are not needed later; a zero environment stays zero.
    """
    xp = get_namespace(env)
    norms = xp.sqrt(xp.sum(env * env, axis=1, keepdims=True))
    return env / xp.where(norms > 0, norms, xp.ones_like(norms)), norms


def _log(norms):
    xp = get_namespace(norms)
    return xp.log(xp.where(norms > 0, norms, xp.full_like(norms, 1e-300)))


def _extend_left(env, phi_k, core, log_scale=None):
    """Unit left environment of site k + 1 from that of site k (core without label); with
    ``log_scale`` (n, 1), also the log of the plain environment's norm."""
    env, norms = _normalize(einsum("na,ns,asb->nb", env, phi_k, core))
    return env if log_scale is None else (env, log_scale + _log(norms))


def _extend_right(env, phi_k, core, log_scale=None):
    env, norms = _normalize(einsum("asb,ns,nb->na", core, phi_k, env))
    return env if log_scale is None else (env, log_scale + _log(norms))


def _leading_directions(M, rank):
    """Orthonormal basis (columns) of the ``rank`` leading right singular directions of M."""
    xp = get_namespace(M)
    # The Gram matrix is small ((D d) x (D d)) and costs one pass over the samples.
    values, vectors = xp.linalg.eigh(M.T @ M)
    keep = min(rank, M.shape[1])
    return vectors[:, ::-1][:, :keep]


# Arrays of a two-site tensor's size that one bond solve holds at once, measured (the tensor, its
# solution, and the conjugate-gradient residual, direction and product).
_BOND_ARRAYS = 12


def environment_bytes(n_samples, n_sites, d, bond_dim, n_outputs, itemsize, n_steps=5):
    """Bytes a DMRG fit holds at once.

    Per sample: the environments of every site (left and right, and their next sweep's), the
    local features (and their per-site copy), one bond's design halves, its direct-solve
    design row and the contraction intermediates of its outputs (``n_steps``, the
    conjugate-gradient steps per bond, sets the widest bond solved directly). Once: the bond
    solve, whose two-site tensor and conjugate-gradient vectors have ``(bond_dim d)^2
    n_outputs`` entries each. This is the budget that :func:`tnml.config_context`'s
    ``max_memory`` bounds.

    Examples
    --------
    >>> from tnml.supervised.mps import environment_bytes
    >>> environment_bytes(1000, 64, 2, 20, 10, 8) < environment_bytes(1000, 64, 2, 300, 10, 8)
    True
    """
    dims = [min(bond_dim, d ** min(k, n_sites - k, 60)) for k in range(n_sites + 1)]
    direct_row = max(64, 2 * n_steps * n_outputs)  # the widest bond _solve_bond solves directly
    per_sample = (
        2 * sum(dims) + 4 * n_sites * d + 4 * bond_dim * d + 4 * n_outputs + direct_row
    ) + 2 * bond_dim * d * n_outputs
    bond = _BOND_ARRAYS * (bond_dim * d) ** 2 * n_outputs
    return (int(n_samples) * per_sample + bond) * int(itemsize)


def init_mps(
    phi,
    n_outputs,
    bond_dim,
    label_site=None,
    Y=None,
    alpha=1e-4,
    n_steps=10,
    normalize=True,
    start="data",
    random_state=None,
):
    """The data-driven initial MPS: principal product subspaces from both ends; the label core
    is zero, or fitted to targets ``Y`` when given.

    Scanning from each end, the left (right) block keeps the ``bond_dim`` leading singular
    directions of the samples' unit environments (times their next local vector), so every
    sample weighs the same whatever the chain's length; the label core is then the ridge
    solution on that fixed basis (a linear model on the retained features), which puts the
    outputs at the targets' scale before the first sweep.

    Parameters
    ----------
    phi : array (n_samples, n_sites, d)
        Local feature vectors (:func:`feature_map`).
    n_outputs : int
        Size L of the label index.
    bond_dim : int
        Largest bond dimension D.
    label_site : int, optional
        Site carrying the label index; the central site by default.
    Y : array (n_samples, n_outputs), optional
    alpha : float
        Ridge penalty of the label core's fit, relative to the design's scale (see
        :func:`mps_dmrg_sweep`).
    n_steps : int
        Conjugate-gradient steps for the label core when a direct solve is dearer.
    normalize : bool
        Fit the label core for the model with unit environments (:func:`mps_predict`).
    start : {'data', 'identity'}
        ``'identity'``: the paper's near-identity start instead (``A[:, 0, :] = I`` plus
        N(0, 0.01) noise); it learned no better than the data-driven start on upsampled
        digits (14 x 14: 99.3% both) nor on long noisy synthetic chains.
    random_state : None, int or RandomState
        The noise of the identity start.

    Returns
    -------
    cores : list of arrays
    label_site : int
    """
    xp = get_namespace(phi)
    n, n_sites, d = phi.shape
    sites = _by_site(phi)
    c = n_sites // 2 if label_site is None else label_site
    if start == "identity":
        return _identity_start(
            phi, n_outputs, bond_dim, c, Y, alpha, n_steps, normalize, random_state
        )
    cores = [None] * n_sites
    env, log_scale = _ones(phi, xp), xp.zeros((n, 1), dtype=phi.dtype)
    for k in range(c):
        M = xp.reshape(env[:, :, None] * sites[k][:, None, :], (n, -1))
        basis = _leading_directions(M, bond_dim)
        cores[k] = xp.reshape(basis, (env.shape[1], d, basis.shape[1]))
        env, norms = _normalize(M @ basis)
        log_scale = log_scale + _log(norms)
    left = env
    env = _ones(phi, xp)
    for k in range(n_sites - 1, c, -1):
        M = xp.reshape(sites[k][:, :, None] * env[:, None, :], (n, -1))
        basis = _leading_directions(M, bond_dim)
        cores[k] = xp.reshape(basis.T, (basis.shape[1], d, env.shape[1]))
        env, norms = _normalize(M @ basis)
        log_scale = log_scale + _log(norms)
    left_dim, right_dim = left.shape[1], env.shape[1]
    label_core = xp.zeros((left_dim * d, n_outputs, right_dim), dtype=phi.dtype)
    if Y is not None:
        LP = xp.reshape(left[:, :, None] * sites[c][:, None, :], (n, -1))
        if not normalize:
            LP = LP * xp.exp(log_scale)
        label_core = _solve_bond(LP, env, Y, label_core, alpha, n_steps)
    cores[c] = xp.reshape(label_core, (left_dim, d, n_outputs, right_dim))
    return cores, c


def _identity_start(phi, n_outputs, bond_dim, c, Y, alpha, n_steps, normalize, random_state):
    """The near-identity start: every core passes its left bond on unchanged for the first
    local component (``A[:, 0, :] = I``) plus small noise, so that every sample's
    environments start alike and each bond update first sees its own two sites' features."""
    from ..backend import check_random_state, to_device

    xp = get_namespace(phi)
    n, n_sites, d = phi.shape
    rng = check_random_state(random_state)
    dims = [min(bond_dim, d ** min(k, n_sites - k, 30)) for k in range(n_sites + 1)]
    cores = []
    for k in range(n_sites):
        core = 1e-2 * rng.standard_normal((dims[k], d, dims[k + 1]))
        core[:, 0, :] += np.eye(dims[k], dims[k + 1])
        cores.append(to_device(core.astype(phi.dtype), xp))
    a, _, b = cores[c].shape
    cores[c] = xp.zeros((a, d, n_outputs, b), dtype=phi.dtype)
    if Y is not None:
        env = Environments(cores, c, phi)
        LP, R = env.design(c, _by_site(phi), normalize, label=True)
        C = _solve_bond(LP, R, Y, xp.reshape(cores[c], (a * d, n_outputs, b)), alpha, n_steps)
        cores[c] = xp.reshape(C, (a, d, n_outputs, b))
    return cores, c


def mps_predict(cores, label_site, phi, normalize=True):
    """Outputs ``f(x)`` of shape (n_samples, L) for local features ``phi``.

    With ``normalize`` the model is ``f(x) = l(x) . C[phi_c(x)] . r(x)``, with ``l(x)`` and
    ``r(x)`` the sample's left and right environments of the label site scaled to unit norm:
    the plain MPS contraction divided by a positive number per sample (the share of the
    sample's product state that the MPS's left and right subspaces keep), so that a
    classifier's winning class is the plain MPS's while the outputs keep the targets' scale at
    any chain length. Without, the plain (multilinear) MPS contraction, computed from unit
    environments and their log-norms so that nothing underflows on the way.
    """
    xp = get_namespace(phi, *cores)
    sites = _by_site(phi)
    c = label_site
    left, right = _ones(phi, xp), _ones(phi, xp)
    log_left = log_right = xp.zeros((phi.shape[0], 1), dtype=phi.dtype)
    for k in range(c):
        left, log_left = _extend_left(left, sites[k], cores[k], log_left)
    for k in range(len(cores) - 1, c, -1):
        right, log_right = _extend_right(right, sites[k], cores[k], log_right)
    f = einsum("na,ns,aslb,nb->nl", left, sites[c], cores[c], right)
    return f if normalize else f * xp.exp(log_left + log_right)


# -- two-site DMRG --------------------------------------------------------------------------------
def _solve_bond(LP, QR, Y, B, alpha, n_steps):
    """The bond tensor minimising ``||f - Y||^2 / n + alpha * s * ||B||^2``, from ``B``.

    ``LP`` (n, x) and ``QR`` (n, y) are the per-sample left and right halves of the design
    (unit environment times local features); ``B`` has shape (x, L, y); ``s`` is the mean
    squared norm of a design row ``LP_n (x) QR_n``, so that ``alpha`` is relative to the
    design's scale. The normal equations share one (x y) x (x y) matrix across the L outputs:
    they are solved directly when forming it (``2 n (x y)^2`` flops) costs less than
    ``n_steps`` conjugate-gradient steps from ``B`` (``4 n x y L`` each), as at the chain's
    ends; otherwise by those steps.
    """
    xp = get_namespace(LP, QR, Y, B)
    n = LP.shape[0]
    x, n_out, y = B.shape
    scale = float(xp.sum(xp.sum(LP * LP, axis=1) * xp.sum(QR * QR, axis=1))) / n
    ridge = alpha * scale if scale > 0 else alpha
    if x * y <= 2 * n_steps * n_out or x * y <= 64:
        Z = xp.reshape(LP[:, :, None] * QR[:, None, :], (n, x * y))
        gram = Z.T @ Z / n
        gram = gram + ridge * xp.eye(x * y, dtype=gram.dtype)
        rhs = Z.T @ Y / n
        try:
            W = xp.linalg.solve(gram, rhs)
        except Exception:  # singular without a ridge: the least-norm solution
            W = xp.linalg.lstsq(gram, rhs, rcond=None)[0]
        return xp.transpose(xp.reshape(W, (x, y, n_out)), (0, 2, 1))

    def predict(W):
        return einsum("nx,xly,ny->nl", LP, W, QR)

    def normal(W):
        return einsum("nx,nl,ny->xly", LP, predict(W), QR) / n + ridge * W

    residual = einsum("nx,nl,ny->xly", LP, Y, QR) / n - normal(B)
    direction = residual
    rr = float(xp.sum(residual * residual))
    for _ in range(n_steps):
        Ad = normal(direction)
        curvature = float(xp.sum(direction * Ad))
        # Zero curvature: the residual is already zero (or the design is); nothing to gain.
        if not rr > 0 or not curvature > 0 or not math.isfinite(curvature):
            break
        step = rr / curvature
        B = B + step * direction
        residual = residual - step * Ad
        rr_new = float(xp.sum(residual * residual))
        direction = residual + (rr_new / rr) * direction
        rr = rr_new
    return B


def _split(matrix, bond_dim, cutoff):
    """Truncated SVD ``matrix ~= U @ (s V)``: at most ``bond_dim`` values, and none whose share
    of the squared norm is below ``cutoff``.

    ``matrix`` has few rows (``D d``) and many columns: the left singular vectors come from the
    eigenvectors of the small Gram matrix and ``s V = U^T matrix`` is a projection (no division
    by small singular values). A LAPACK SVD of the wide matrix is no more accurate for what is
    kept and, with a threaded BLAS on a busy machine, up to a hundred times slower.
    """
    xp = get_namespace(matrix)
    energy, u = xp.linalg.eigh(matrix @ matrix.T)
    energy, u = energy[::-1], u[:, ::-1]
    keep = min(bond_dim, matrix.shape[0], matrix.shape[1])
    total = float(xp.sum(xp.clip(energy, 0, None)))
    if total > 0:
        keep = min(keep, max(1, int(xp.sum(energy / total > max(cutoff, 1e-14)))))
    u = u[:, :keep]
    return u, u.T @ matrix


class Environments:
    """Per-sample unit left and right environments of a mixed-canonical MPS.

    ``left[k]`` (n, D_{k-1}) contracts sites ``0..k-1``; ``right[k]`` (n, D_k) contracts sites
    ``k+1..N-1``; each row has norm one (or is zero); ``left_log[k]`` and ``right_log[k]``
    (n, 1) are the logs of the plain environments' norms (the tracked scales, which stay
    finite where the plain norms underflow); entries not valid for the current bond position
    are None.
    """

    def __init__(self, cores, label_site, phi):
        xp = get_namespace(phi, *cores)
        sites = _by_site(phi)
        n_sites = len(cores)
        self.left, self.left_log = [None] * n_sites, [None] * n_sites
        self.right, self.right_log = [None] * n_sites, [None] * n_sites
        zero = xp.zeros((phi.shape[0], 1), dtype=phi.dtype)
        self.left[0], self.left_log[0] = _ones(phi, xp), zero
        for k in range(label_site):
            self.left[k + 1], self.left_log[k + 1] = _extend_left(
                self.left[k], sites[k], cores[k], self.left_log[k]
            )
        self.right[n_sites - 1], self.right_log[n_sites - 1] = _ones(phi, xp), zero
        for k in range(n_sites - 1, label_site, -1):
            self.right[k - 1], self.right_log[k - 1] = _extend_right(
                self.right[k], sites[k], cores[k], self.right_log[k]
            )

    def design(self, j, sites, normalize, label=False):
        """The halves (n, x) and (n, y) of the design of bond (j, j + 1), or of site j alone
        with ``label``; without ``normalize`` the left half carries the tracked scales."""
        xp = get_namespace(sites)
        n = sites.shape[1]
        LP = xp.reshape(self.left[j][:, :, None] * sites[j][:, None, :], (n, -1))
        if label:
            QR, log = self.right[j], self.left_log[j] + self.right_log[j]
        else:
            QR = xp.reshape(sites[j + 1][:, :, None] * self.right[j + 1][:, None, :], (n, -1))
            log = self.left_log[j] + self.right_log[j + 1]
        return (LP if normalize else LP * xp.exp(log)), QR


def mps_dmrg_sweep(
    cores,
    label_site,
    phi,
    Y,
    env=None,
    *,
    bond_dim,
    cutoff=0.0,
    alpha=1e-4,
    n_steps=5,
    normalize=True,
    progress=None,
):
    """One two-site DMRG sweep: the label index travels to the last site, to the first and back.

    Parameters
    ----------
    cores : list of arrays
        The MPS, mixed-canonical around ``label_site`` (as :func:`init_mps` returns it); updated
        in place.
    label_site : int
    phi : array (n_samples, n_sites, d)
    Y : array (n_samples, L)
        Targets.
    env : Environments, optional
        Cached environments for this ``cores``/``label_site`` (built when None).
    bond_dim, cutoff : truncation of every bond.
    alpha : float
        Ridge penalty on the bond tensor, relative to the design's scale: the loss of a bond
        update is the mean squared error plus ``alpha * s * ||B||^2``, ``s`` the mean squared
        norm of a design row (1 for the 'trig' map, whose local vectors have unit norm).
    n_steps : int
        Conjugate-gradient steps per bond update (where a direct solve costs more).
    normalize : bool
        Fit the model with unit environments (True) or the plain MPS (see
        :func:`mps_predict`).
    progress : callable, optional
        Called once per bond update.

    Returns
    -------
    cores, env
        The updated cores (label index back on ``label_site``) and their environments.
    """
    xp = get_namespace(phi, Y, *cores)
    n_sites = len(cores)
    if n_sites < 2:
        raise ValueError(f"a DMRG sweep needs at least 2 sites, got {n_sites}")
    if env is None:
        env = Environments(cores, label_site, phi)
    sites = _by_site(phi)
    schedule = (
        [(j, "right") for j in range(label_site, n_sites - 1)]
        + [(j, "left") for j in range(n_sites - 2, -1, -1)]
        + [(j, "right") for j in range(0, label_site)]
    )
    for j, direction in schedule:
        if direction == "right":  # label on j, moves to j + 1
            a, s, n_out, m = cores[j].shape
            _, t, b = cores[j + 1].shape
            B = einsum("aslm,mtb->asltb", cores[j], cores[j + 1])
        else:  # label on j + 1, moves to j
            a, s, m = cores[j].shape
            _, t, n_out, b = cores[j + 1].shape
            B = einsum("asm,mtlb->asltb", cores[j], cores[j + 1])
        LP, QR = env.design(j, sites, normalize)
        B = _solve_bond(LP, QR, Y, xp.reshape(B, (a * s, n_out, t * b)), alpha, n_steps)
        if direction == "right":
            matrix = xp.reshape(
                xp.transpose(xp.reshape(B, (a * s, n_out, t, b)), (0, 2, 1, 3)),
                (a * s, t * n_out * b),
            )
            u, sv = _split(matrix, bond_dim, cutoff)
            cores[j] = xp.reshape(u, (a, s, u.shape[1]))
            cores[j + 1] = xp.reshape(sv, (u.shape[1], t, n_out, b))
            env.left[j + 1], env.left_log[j + 1] = _extend_left(
                env.left[j], sites[j], cores[j], env.left_log[j]
            )
        else:
            matrix = xp.reshape(B, (a * s * n_out, t * b))
            us, v = _split(matrix.T, bond_dim, cutoff)  # right-orthonormal V: split transposed
            cores[j + 1] = xp.reshape(us.T, (us.shape[1], t, b))
            cores[j] = xp.reshape(v.T, (a, s, n_out, us.shape[1]))
            env.right[j], env.right_log[j] = _extend_right(
                env.right[j + 1], sites[j + 1], cores[j + 1], env.right_log[j + 1]
            )
        if progress is not None:
            progress()
    # The bond updates fit the model with unit environments around the bond; once the label
    # is back on its site, the model is the one with unit environments around that site
    # (mps_predict), which differs per sample where the split truncated. Refitting the label
    # core on its own (one small solve) makes the returned model the optimum of its own form.
    c = label_site
    a, s, n_out, b = cores[c].shape
    LP, R = env.design(c, sites, normalize, label=True)
    C = _solve_bond(LP, R, Y, xp.reshape(cores[c], (a * s, n_out, b)), alpha, n_steps)
    cores[c] = xp.reshape(C, (a, s, n_out, b))
    return cores, env


# -- gradient training ---------------------------------------------------------------------------
def mps_loss_and_grads(cores, label_site, phi, Y, normalize=True):
    """Mean squared error ``mean_n ||f(x_n) - y_n||^2`` and its gradient for every core.

    ``f`` is :func:`mps_predict`'s model (with or without ``normalize``; the plain model's
    gradients are computed from plain environments, fine for chains of up to a few
    hundred sites). One forward pass caches the
    unit left and right environments of every site and the norms they were divided by, one
    backward pass propagates the residual from the label site outwards, projecting out at
    every site the direction that the normalisation removes; the cost is
    ``O(n_samples * n_sites * D^2 * d)`` plus the label site's ``L`` factor.
    """
    xp = get_namespace(phi, Y, *cores)
    n, n_sites, _ = phi.shape
    sites = _by_site(phi)
    c = label_site
    lefts, left_norms = [_ones(phi, xp)], [None]
    for k in range(c):
        env, norms = _normalize(einsum("na,ns,asb->nb", lefts[-1], sites[k], cores[k]))
        lefts.append(env)
        left_norms.append(norms)
    rights, right_norms = {n_sites - 1: _ones(phi, xp)}, {}
    for k in range(n_sites - 1, c, -1):
        env, norms = _normalize(einsum("asb,ns,nb->na", cores[k], sites[k], rights[k]))
        rights[k - 1], right_norms[k - 1] = env, norms

    if not normalize:
        lefts = [_ones(phi, xp)]
        for k in range(c):
            lefts.append(einsum("na,ns,asb->nb", lefts[-1], sites[k], cores[k]))
        rights = {n_sites - 1: _ones(phi, xp)}
        for k in range(n_sites - 1, c, -1):
            rights[k - 1] = einsum("asb,ns,nb->na", cores[k], sites[k], rights[k])

    def unnormalized_adjoint(back, env, norms):
        if not normalize:
            return back
        # adjoint of u -> u / ||u|| at u: (g - (g . e) e) / ||u||
        back = back - xp.sum(back * env, axis=1, keepdims=True) * env
        return back / xp.where(norms > 0, norms, xp.ones_like(norms))

    f = einsum("na,ns,aslb,nb->nl", lefts[c], sites[c], cores[c], rights[c])
    residual = f - Y
    loss = float(xp.sum(residual * residual)) / n
    weight = (2.0 / n) * residual
    grads = [None] * n_sites
    grads[c] = einsum("na,ns,nl,nb->aslb", lefts[c], sites[c], weight, rights[c])
    # adjoint of the left environment, propagated leftwards
    back = einsum("ns,aslb,nl,nb->na", sites[c], cores[c], weight, rights[c])
    for k in range(c - 1, -1, -1):
        back = unnormalized_adjoint(back, lefts[k + 1], left_norms[k + 1])
        grads[k] = einsum("na,ns,nb->asb", lefts[k], sites[k], back)
        back = einsum("nb,ns,asb->na", back, sites[k], cores[k])
    back = einsum("na,ns,aslb,nl->nb", lefts[c], sites[c], cores[c], weight)
    for k in range(c + 1, n_sites):
        back = unnormalized_adjoint(back, rights[k - 1], right_norms[k - 1])
        grads[k] = einsum("na,ns,nb->asb", back, sites[k], rights[k])
        back = einsum("na,ns,asb->nb", back, sites[k], cores[k])
    return loss, grads


def adam_init(cores):
    """Zero first and second moments for :func:`adam_step`."""
    xp = get_namespace(*cores)
    return {"t": 0, "m": [xp.zeros_like(c) for c in cores], "v": [xp.zeros_like(c) for c in cores]}


def adam_step(cores, grads, state, learning_rate, alpha=0.0, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of every core in place (``alpha``: L2 penalty added to the gradient),
    by :func:`tnml.decompositions.network.adam_update`."""
    state["t"] += 1
    t = state["t"]
    if alpha:
        grads = [grad + 2 * alpha * core for core, grad in zip(cores, grads)]
    step_size = learning_rate * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    return adam_update(cores, grads, state["m"], state["v"], step_size, beta1, beta2, eps)
