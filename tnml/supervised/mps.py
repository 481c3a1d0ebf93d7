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
the bond are left-orthonormal and those right of it right-orthonormal, so that the per-sample
environments (the contractions of each side with the sample's features) are cached vectors of
norm at most one and never explode or vanish through 64 or 784 products. The bond tensor is
updated by conjugate-gradient steps on the ridge-regularised squared loss (exact least squares in
the limit of many steps) and split back by a truncated SVD, which moves the label index one site
on. One bond update costs ``O(n_samples * D^2 * d^2 * L)``, one sweep ``n_sites`` times that.

The initial MPS is the data's own "principal product subspace": scanning from each end, the
left (right) block keeps the ``D`` leading singular directions of the samples' block
environments, which retains as much of each sample's product-state norm as bond dimension
``D`` allows. This is what keeps the environments well scaled from the first sweep on.

References
----------
E. M. Stoudenmire and D. J. Schwab, "Supervised learning with tensor networks", NeurIPS 2016.
A. Novikov, M. Trofimov and I. Oseledets, "Exponential machines", ICLR workshop 2017.
E. M. Stoudenmire, "Learning relevant features of data with multi-scale tensor networks",
Quantum Sci. Technol. 3, 2018 (data-driven initialisation).
"""

import math

from ..backend import get_namespace
from ..contract import einsum

__all__ = [
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


def _extend_left(env, phi_k, core):
    """Left environment of site k + 1 from that of site k (core without label)."""
    return einsum("na,ns,asb->nb", env, phi_k, core)


def _extend_right(env, phi_k, core):
    return einsum("asb,ns,nb->na", core, phi_k, env)


def _leading_directions(M, rank):
    """Orthonormal basis (columns) of the ``rank`` leading right singular directions of M."""
    xp = get_namespace(M)
    # The Gram matrix is small ((D d) x (D d)) and costs one pass over the samples.
    values, vectors = xp.linalg.eigh(M.T @ M)
    keep = min(rank, M.shape[1])
    return vectors[:, ::-1][:, :keep]


def init_mps(phi, n_outputs, bond_dim, label_site=None, Y=None, alpha=0.0, n_steps=10):
    """The data-driven initial MPS: principal product subspaces from both ends; the label core
    is zero, or fitted to targets ``Y`` by ``n_steps`` conjugate-gradient steps when given.

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
        Ridge penalty of the label core's fit.

    Returns
    -------
    cores : list of arrays
    label_site : int
    """
    xp = get_namespace(phi)
    n, n_sites, d = phi.shape
    sites = _by_site(phi)
    c = n_sites // 2 if label_site is None else label_site
    cores = [None] * n_sites
    env = _ones(phi, xp)
    for k in range(c):
        M = xp.reshape(env[:, :, None] * sites[k][:, None, :], (n, -1))
        basis = _leading_directions(M, bond_dim)
        cores[k] = xp.reshape(basis, (env.shape[1], d, basis.shape[1]))
        env = M @ basis
    left_dim = env.shape[1]
    env = _ones(phi, xp)
    for k in range(n_sites - 1, c, -1):
        M = xp.reshape(sites[k][:, :, None] * env[:, None, :], (n, -1))
        basis = _leading_directions(M, bond_dim)
        cores[k] = xp.reshape(basis.T, (basis.shape[1], d, env.shape[1]))
        env = M @ basis
    right_dim = env.shape[1]
    label_core = xp.zeros((left_dim * d, n_outputs, right_dim), dtype=phi.dtype)
    if Y is not None:
        left = _ones(phi, xp)
        for k in range(c):
            left = _extend_left(left, sites[k], cores[k])
        LP = xp.reshape(left[:, :, None] * sites[c][:, None, :], (n, -1))
        label_core = _solve_bond(LP, env, Y, label_core, alpha, n_steps)
    cores[c] = xp.reshape(label_core, (left_dim, d, n_outputs, right_dim))
    return cores, c


def mps_predict(cores, label_site, phi):
    """Outputs ``f(x)`` of shape (n_samples, L) for local features ``phi``."""
    xp = get_namespace(phi, *cores)
    sites = _by_site(phi)
    c = label_site
    left = _ones(phi, xp)
    for k in range(c):
        left = _extend_left(left, sites[k], cores[k])
    right = _ones(phi, xp)
    for k in range(len(cores) - 1, c, -1):
        right = _extend_right(right, sites[k], cores[k])
    return einsum("na,ns,aslb,nb->nl", left, sites[c], cores[c], right)


# -- two-site DMRG --------------------------------------------------------------------------------
def _solve_bond(LP, QR, Y, B, alpha, n_steps):
    """Conjugate-gradient steps on ``min ||f - Y||^2 / n + alpha ||B||^2`` from ``B``.

    ``LP`` (n, x) and ``QR`` (n, y) are the per-sample left and right halves of the design
    (environment times local features); ``B`` has shape (x, L, y). Each step costs two
    matrix products of size ``n * x * L * y``.
    """
    xp = get_namespace(LP, QR, Y, B)
    n = LP.shape[0]
    x, n_out, y = B.shape

    def predict(W):
        return einsum("nx,xly,ny->nl", LP, W, QR)

    def normal(W):
        return einsum("nx,nl,ny->xly", LP, predict(W), QR) / n + alpha * W

    residual = einsum("nx,nl,ny->xly", LP, Y, QR) / n - normal(B)
    direction = residual
    rr = float(xp.sum(residual * residual))
    for _ in range(n_steps):
        if rr == 0.0:
            break
        Ad = normal(direction)
        step = rr / float(xp.sum(direction * Ad))
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
    """Per-sample left and right environments of a mixed-canonical MPS.

    ``left[k]`` (n, D_{k-1}) contracts sites ``0..k-1``; ``right[k]`` (n, D_k) contracts sites
    ``k+1..N-1``; entries not valid for the current bond position are None.
    """

    def __init__(self, cores, label_site, phi):
        xp = get_namespace(phi, *cores)
        sites = _by_site(phi)
        n_sites = len(cores)
        self.left = [None] * n_sites
        self.right = [None] * n_sites
        self.left[0] = _ones(phi, xp)
        for k in range(label_site):
            self.left[k + 1] = _extend_left(self.left[k], sites[k], cores[k])
        self.right[n_sites - 1] = _ones(phi, xp)
        for k in range(n_sites - 1, label_site, -1):
            self.right[k - 1] = _extend_right(self.right[k], sites[k], cores[k])


def _bond_design(env, j, sites):
    n = sites.shape[1]
    LP = env.left[j][:, :, None] * sites[j][:, None, :]
    QR = sites[j + 1][:, :, None] * env.right[j + 1][:, None, :]
    return xp_reshape(LP, (n, -1)), xp_reshape(QR, (n, -1))


def xp_reshape(a, shape):
    return get_namespace(a).reshape(a, shape)


def mps_dmrg_sweep(
    cores,
    label_site,
    phi,
    Y,
    env=None,
    *,
    bond_dim,
    cutoff=0.0,
    alpha=0.0,
    n_steps=5,
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
        Ridge penalty on the bond tensor (the loss is the mean squared error plus
        ``alpha * ||B||^2``).
    n_steps : int
        Conjugate-gradient steps per bond update.
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
        LP, QR = _bond_design(env, j, sites)
        B = _solve_bond(LP, QR, Y, xp.reshape(B, (a * s, n_out, t * b)), alpha, n_steps)
        if direction == "right":
            matrix = xp.reshape(
                xp.transpose(xp.reshape(B, (a * s, n_out, t, b)), (0, 2, 1, 3)),
                (a * s, t * n_out * b),
            )
            u, sv = _split(matrix, bond_dim, cutoff)
            cores[j] = xp.reshape(u, (a, s, u.shape[1]))
            cores[j + 1] = xp.reshape(sv, (u.shape[1], t, n_out, b))
            env.left[j + 1] = _extend_left(env.left[j], sites[j], cores[j])
        else:
            matrix = xp.reshape(B, (a * s * n_out, t * b))
            us, v = _split(matrix.T, bond_dim, cutoff)  # right-orthonormal V: split transposed
            cores[j + 1] = xp.reshape(us.T, (us.shape[1], t, b))
            cores[j] = xp.reshape(v.T, (a, s, n_out, us.shape[1]))
            env.right[j] = _extend_right(env.right[j + 1], sites[j + 1], cores[j + 1])
        if progress is not None:
            progress()
    return cores, env


# -- gradient training ---------------------------------------------------------------------------
def mps_loss_and_grads(cores, label_site, phi, Y):
    """Mean squared error ``mean_n ||f(x_n) - y_n||^2`` and its gradient for every core.

    One forward pass caches the left and right environments of every site, one backward pass
    propagates the residual from the label site outwards; the cost is
    ``O(n_samples * n_sites * D^2 * d)`` plus the label site's ``L`` factor.
    """
    xp = get_namespace(phi, Y, *cores)
    n, n_sites, _ = phi.shape
    sites = _by_site(phi)
    c = label_site
    lefts = [_ones(phi, xp)]
    for k in range(c):
        lefts.append(_extend_left(lefts[-1], sites[k], cores[k]))
    rights = {n_sites - 1: _ones(phi, xp)}
    for k in range(n_sites - 1, c, -1):
        rights[k - 1] = _extend_right(rights[k], sites[k], cores[k])
    f = einsum("na,ns,aslb,nb->nl", lefts[c], sites[c], cores[c], rights[c])
    residual = f - Y
    loss = float(xp.sum(residual * residual)) / n
    weight = (2.0 / n) * residual
    grads = [None] * n_sites
    grads[c] = einsum("na,ns,nl,nb->aslb", lefts[c], sites[c], weight, rights[c])
    # adjoint of the left environment, propagated leftwards
    back = einsum("ns,aslb,nl,nb->na", sites[c], cores[c], weight, rights[c])
    for k in range(c - 1, -1, -1):
        grads[k] = einsum("na,ns,nb->asb", lefts[k], sites[k], back)
        back = einsum("nb,ns,asb->na", back, sites[k], cores[k])
    back = einsum("na,ns,aslb,nl->nb", lefts[c], sites[c], cores[c], weight)
    for k in range(c + 1, n_sites):
        grads[k] = einsum("na,ns,nb->asb", back, sites[k], rights[k])
        back = einsum("na,ns,asb->nb", back, sites[k], cores[k])
    return loss, grads


def adam_init(cores):
    """Zero first and second moments for :func:`adam_step`."""
    xp = get_namespace(*cores)
    return {"t": 0, "m": [xp.zeros_like(c) for c in cores], "v": [xp.zeros_like(c) for c in cores]}


def adam_step(cores, grads, state, learning_rate, alpha=0.0, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of every core in place (``alpha``: L2 penalty added to the gradient)."""
    xp = get_namespace(*cores)
    state["t"] += 1
    t = state["t"]
    correction = math.sqrt(1 - beta2**t) / (1 - beta1**t)
    for k, (core, grad) in enumerate(zip(cores, grads)):
        if alpha:
            grad = grad + 2 * alpha * core
        state["m"][k] = beta1 * state["m"][k] + (1 - beta1) * grad
        state["v"][k] = beta2 * state["v"][k] + (1 - beta2) * grad * grad
        cores[k] = core - learning_rate * correction * state["m"][k] / (
            xp.sqrt(state["v"][k]) + eps
        )
    return cores
