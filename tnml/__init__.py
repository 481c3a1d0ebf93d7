"""tnml: tensor-network machine learning with a scikit-learn API.

Decompose, compress, complete and learn with CP, Tucker, tensor-train and tensor-ring models
on NumPy or CuPy arrays.
"""

from . import backend, contract, decompositions
from ._config import MemoryBudgetError, config_context, get_config, set_config
from .estimators import (
    CP,
    CPRegressor,
    MPSClassifier,
    MPSRegressor,
    StructureSearch,
    TensorCompletionRegressor,
    TensorImputer,
    TensorRing,
    TensorTrain,
    TTRegressor,
    TubalSVD,
    Tucker,
    TuckerRegressor,
)
from .io import load, save

__version__ = "0.1.0"

__all__ = [
    "CP",
    "Tucker",
    "TensorTrain",
    "TensorRing",
    "TensorImputer",
    "TubalSVD",
    "TensorCompletionRegressor",
    "StructureSearch",
    "MPSClassifier",
    "MPSRegressor",
    "CPRegressor",
    "TuckerRegressor",
    "TTRegressor",
    "save",
    "load",
    "config_context",
    "get_config",
    "set_config",
    "MemoryBudgetError",
    "backend",
    "contract",
    "decompositions",
    "__version__",
]
