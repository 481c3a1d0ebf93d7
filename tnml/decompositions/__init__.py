"""Formats and fitting algorithms: pure functions over arrays, no scikit-learn here."""

from ._base import FactorizedTensor, FitResult
from .cp import CPTensor, cp_als, random_cp
from .tucker import TuckerTensor, hosvd, random_tucker, tucker_hooi

__all__ = ["FactorizedTensor", "FitResult", "CPTensor", "cp_als", "random_cp",
           "TuckerTensor", "hosvd", "tucker_hooi", "random_tucker"]
