"""Formats and fitting algorithms: pure functions over arrays, no scikit-learn here."""

from ._base import FactorizedTensor, FitResult
from ._linalg import khatri_rao, mode_dot, solve_spd
from ._masked import Observations, observed_error
from ._rank_search import grow_rank, split_mask, split_observations
from .cp import CPTensor, cp_als, cp_complete, max_cp_rank, pad_cp, random_cp
from .network import (
    TensorNetwork,
    fully_connected_adjacency,
    load_network_instance,
    network_adam,
    network_als,
    network_memory,
    pad_network,
    random_network,
    ring_adjacency,
)
from .smooth import smooth_tucker_complete
from .tr import TRTensor, pad_tr, random_tr, tr_als, tr_complete, tr_svd
from .tt import (
    TTTensor,
    max_tt_rank,
    pad_tt,
    random_tt,
    tt_als,
    tt_complete,
    tt_dmrg,
    tt_round,
    tt_svd,
)
from .tubal import (
    TubalTensor,
    t_identity,
    t_inverse,
    t_product,
    t_svd,
    t_transpose,
    tensor_nuclear_norm,
    tnn_complete,
    tubal_complete,
    tubal_rank,
)
from .tucker import (
    TuckerTensor,
    check_tucker_rank,
    hosvd,
    pad_tucker,
    random_tucker,
    tucker_complete,
    tucker_hooi,
)

__all__ = [
    "FactorizedTensor", "FitResult", "Observations", "observed_error", "grow_rank",
    "split_mask", "split_observations", "khatri_rao", "mode_dot", "solve_spd",
    "CPTensor", "cp_als", "cp_complete", "pad_cp", "random_cp",
    "TuckerTensor", "hosvd", "tucker_hooi", "tucker_complete", "pad_tucker", "random_tucker",
    "check_tucker_rank",
    "TTTensor", "tt_svd", "tt_round", "tt_als", "tt_dmrg", "tt_complete", "pad_tt", "random_tt",
    "max_tt_rank", "max_cp_rank",
    "TRTensor", "tr_svd", "tr_als", "tr_complete", "pad_tr", "random_tr",
    "TubalTensor", "t_product", "t_transpose", "t_identity", "t_inverse", "t_svd", "tubal_rank",
    "tensor_nuclear_norm", "tnn_complete", "tubal_complete",
    "smooth_tucker_complete",
    "TensorNetwork", "random_network", "pad_network", "network_als", "network_adam",
    "network_memory", "load_network_instance", "fully_connected_adjacency", "ring_adjacency",
]
