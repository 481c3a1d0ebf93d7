"""scikit-learn estimators over the decompositions."""

from . import _parallel  # noqa: F401 - tnml's config_context travels into joblib workers
from .completion import TensorCompletionRegressor
from .cp import CP
from .imputer import TensorImputer
from .mps import MPSClassifier, MPSRegressor
from .search import StructureSearch
from .tensor_regression import CPRegressor, TTRegressor, TuckerRegressor
from .tr import TensorRing
from .tt import TensorTrain
from .tubal import TubalSVD
from .tucker import Tucker

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
]
