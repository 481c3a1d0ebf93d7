"""Formats and fitting algorithms: pure functions over arrays, no scikit-learn here."""

from ._base import FactorizedTensor, FitResult
from .cp import CPTensor, cp_als, random_cp
from .tr import TRTensor, tr_als, tr_svd
from .tt import TTTensor, tt_als, tt_dmrg, tt_round, tt_svd
from .tubal import (TubalTensor, t_identity, t_inverse, t_product, t_svd, t_transpose,
                    tensor_nuclear_norm, tubal_complete, tubal_rank)
from .tucker import TuckerTensor, hosvd, random_tucker, tucker_hooi

__all__ = ["FactorizedTensor", "FitResult", "CPTensor", "cp_als", "random_cp",
           "TuckerTensor", "hosvd", "tucker_hooi", "random_tucker",
           "TTTensor", "tt_svd", "tt_round", "tt_als", "tt_dmrg", "TRTensor", "tr_svd", "tr_als",
           "TubalTensor", "t_product", "t_transpose", "t_identity", "t_inverse", "t_svd",
           "tubal_rank", "tensor_nuclear_norm", "tubal_complete"]
