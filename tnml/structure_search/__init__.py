"""Tensor-network structure search: encodings, objectives, searchers, the evaluation runner and
the :class:`~tnml.StructureSearch` estimator."""

from .encoding import SearchSpace, canonical_key, n_params, to_data_order
from .estimator import METHODS, StructureSearch
from .objective import Objective, holdout_split
from .runner import BudgetExhausted, Runner, cache_key, candidate_seed
from .searchers import SEARCHERS, greedy, random_search, tnale, tnls, uniform_scan

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
    "SEARCHERS",
    "greedy",
    "tnale",
    "tnls",
    "random_search",
    "uniform_scan",
]
