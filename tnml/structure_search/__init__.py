"""Tensor-network structure search: encodings, objectives, searchers and the evaluation runner.

The :class:`~tnml.StructureSearch` estimator lives with the other estimators
(:mod:`tnml.estimators`) and is re-exported here.
"""

from .checkpoint import read_checkpoint
from .encoding import SearchSpace, canonical_key, n_params, to_data_order
from .objective import Objective, holdout_split
from .regularized import BondPenalty, svdins
from .runner import BudgetExhausted, Runner, cache_key, candidate_seed, check_checkpoint_path
from .searchers import METHODS, SEARCHERS, greedy, random_search, tnale, tnls, uniform_scan

__all__ = [
    "StructureSearch",
    "METHODS",
    "SearchSpace",
    "canonical_key",
    "n_params",
    "to_data_order",
    "Objective",
    "holdout_split",
    "Runner",
    "BudgetExhausted",
    "cache_key",
    "candidate_seed",
    "check_checkpoint_path",
    "read_checkpoint",
    "SEARCHERS",
    "greedy",
    "tnale",
    "tnls",
    "random_search",
    "uniform_scan",
    "svdins",
    "BondPenalty",
]


def __getattr__(name):
    # The estimator sits above this package (tnml.estimators imports it): imported on first
    # use, so that importing tnml.structure_search alone stays free of scikit-learn estimators.
    if name == "StructureSearch":
        from ..estimators.search import StructureSearch

        return StructureSearch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
