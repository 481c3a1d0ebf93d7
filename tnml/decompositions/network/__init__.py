"""General tensor networks: any graph of cores, given by an adjacency matrix, and their fitting.

A network over ``N`` cores is described the way the structure-search papers (TNGA, TNLS,
TnALE) describe it, by a symmetric integer **adjacency matrix** ``A`` of shape ``(N, N)``:

- ``A[k, k]`` is the size of the data mode that sits on core ``k``; 0 means core ``k`` has no
  data mode (an internal core, such as the core of a Tucker decomposition);
- ``A[k, q]`` (``k != q``) is the bond rank between cores ``k`` and ``q``; 0 or 1 means no
  edge (a bond of rank 1 changes nothing, so it is not stored).

and a **permutation** that says which data mode sits on which core. Convention (the one of the
reference code of TNLS/TnALE, whose ``.npz`` instances store it under the key ``permute``):
list the cores that carry a data mode in increasing order, ``c_0 < c_1 < ...``; then core
``c_j`` carries data mode ``permutation[j]``. When every core carries a data mode (the papers'
case) this is simply "core ``k`` carries data mode ``permutation[k]``", and the adjacency in
data-mode order is ``P A P^T`` with ``P[permutation[k], k] = 1`` (exactly how the reference
code builds its network from a ring and ``permute``). :attr:`TensorNetwork.mode_cores` gives
the inverse map (the core of each data mode).

Core layout: core ``k`` has its data axis first (if any), then one axis per neighbour ``q``
with ``A[k, q] >= 2``, in increasing order of ``q``. So ``n_params`` is the papers' parameter
count ``sum_k prod_l max(A[k, q], 1)``.

The subpackage's modules: :mod:`.structure` (adjacency checks and builders, the internal graph
of subscripts), :mod:`.format` (:class:`TensorNetwork`, random and padded networks, the
reference instances), :mod:`.als` (fit plans and memory, :func:`network_als`) and
:mod:`.adam` (:func:`network_adam`).
"""

from .adam import adam_update, network_adam
from .als import network_als, network_flops, network_memory
from .format import (
    TensorNetwork,
    load_network_instance,
    pad_network,
    prune_network,
    random_network,
)
from .structure import (
    check_adjacency,
    check_permutation,
    fully_connected_adjacency,
    ring_adjacency,
)

__all__ = [
    "TensorNetwork",
    "adam_update",
    "check_adjacency",
    "check_permutation",
    "fully_connected_adjacency",
    "load_network_instance",
    "network_adam",
    "network_als",
    "network_flops",
    "network_memory",
    "pad_network",
    "prune_network",
    "random_network",
    "ring_adjacency",
]
