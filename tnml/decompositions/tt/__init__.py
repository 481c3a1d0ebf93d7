"""Tensor-train (TT, also the matrix product state) format and its algorithms.

``X[i_1, ..., i_d] = G_1[:, i_1, :] @ G_2[:, i_2, :] @ ... @ G_d[:, i_d, :]`` with cores
``G_k`` of shape ``(r_k, I_k, r_{k+1})`` and ``r_1 = r_{d+1} = 1`` (TensorLy's layout).

Algorithms:

- :func:`tt_svd` — Oseledets' sequential truncated SVDs (one pass, quasi-optimal);
- :func:`tt_round` — recompression of a TT without densifying;
- :func:`tt_als` — fixed-rank one-site ALS;
- :func:`tt_dmrg` — two-site sweeps that adapt the ranks to a tolerance;
- :func:`tt_complete` — completion by ALS over observed entries only (never densifies), and
  :func:`pad_tt`, its warm start at larger ranks.

The sweeps of :func:`tt_als` and :func:`tt_dmrg` (orthonormal cores, so every local
least-squares problem is a projection computed by GEMMs) are in ``sweeps.py``; the format,
TT-SVD and rounding in ``format.py``; the fitting algorithms in ``fitting.py``.
"""

from .fitting import pad_tt, tt_als, tt_complete, tt_dmrg
from .format import TTTensor, max_tt_rank, random_tt, tt_round, tt_svd

__all__ = [
    "TTTensor",
    "tt_svd",
    "tt_round",
    "tt_als",
    "tt_dmrg",
    "tt_complete",
    "pad_tt",
    "random_tt",
    "max_tt_rank",
]
