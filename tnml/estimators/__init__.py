"""scikit-learn estimators over the decompositions."""

from .cp import CP
from .imputer import TensorImputer
from .tr import TensorRing
from .tt import TensorTrain
from .tubal import TubalSVD
from .tucker import Tucker

__all__ = ["CP", "Tucker", "TensorTrain", "TensorRing", "TensorImputer", "TubalSVD"]
