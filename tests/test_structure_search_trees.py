"""Trees priced by singular values (tnml.structure_search.trees) and greedy's use of them."""

import itertools
import math

import numpy as np
import pytest

import tnml
from tnml.decompositions import random_network, random_tt
from tnml.structure_search import SearchSpace, canonical_key, n_params, to_data_order
from tnml.structure_search.trees import CutRanks, cheapest_tree, spanning_trees
from tnml.testing import HostGuardArray

# A star without internal cores: mode 2 in the centre, bonds 2, 3, 3, 2 to the others (the
# best network without internal cores for a Tucker tensor of ranks 2, 3, 4, 3, 2).
STAR = [
    [4, 0, 2, 0, 0],
    [0, 4, 3, 0, 0],
    [2, 3, 4, 3, 2],
    [0, 0, 3, 4, 0],
    [0, 0, 2, 0, 4],
]


def _unfolding_rank(X, modes):
    rest = [m for m in range(X.ndim) if m not in modes]
    rows = math.prod(X.shape[m] for m in modes)
    return np.linalg.matrix_rank(np.transpose(X, list(modes) + rest).reshape(rows, -1))


def test_cut_ranks_are_the_unfolding_ranks():
    X = random_network(STAR, random_state=1).to_tensor()
    cuts = CutRanks(X)
    for size in (1, 2):
        for modes in itertools.combinations(range(5), size):
            assert cuts.rank(set(modes), 1e-10) == _unfolding_rank(X, modes)


def test_cut_rank_truncates_to_the_tolerance():
    rng = np.random.RandomState(0)
    values = np.array([1.0, 0.5, 0.1, 0.01])
    U, _ = np.linalg.qr(rng.randn(6, 4))
    V, _ = np.linalg.qr(rng.randn(8, 4))
    X = (U * values) @ V.T
    norm = np.linalg.norm(values)
    cuts = CutRanks(X)
    assert cuts.rank({0}, 0.011 / norm) == 3  # dropping 0.01 is within the tolerance
    assert cuts.rank({0}, 0.009 / norm) == 4
    assert cuts.rank({0}, np.hypot(0.1, 0.01) / norm + 1e-12) == 2


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_spanning_trees_of_the_complete_graph_number_n_to_the_n_minus_2(n):
    edges = list(itertools.combinations(range(n), 2))
    trees = list(spanning_trees(edges, n))
    assert len(trees) == n ** (n - 2)  # Cayley's formula
    assert len(set(trees)) == len(trees)


def test_spanning_trees_of_a_ring_drop_one_edge_each():
    edges = [(0, 1), (1, 2), (2, 3), (0, 3)]
    assert sorted(spanning_trees(edges, 4)) == sorted(itertools.combinations(range(4), 3))


def test_cheapest_tree_is_the_planted_star():
    X = random_network(STAR, random_state=0).to_tensor()
    space = SearchSpace(X.shape, "full", max_rank=6)
    ranks = cheapest_tree(X, space, 1e-6)
    assert canonical_key(space.structure(ranks)) == canonical_key(to_data_order(STAR))


def test_cheapest_tree_follows_the_modes_placement():
    # a chain template whose slots carry the modes out of order: the cut of each slot edge
    # is between the modes placed on either side
    X = random_tt((4, 4, 4, 4), [2, 3, 2], random_state=0).to_tensor()
    space = SearchSpace(X.shape, "chain", permutation=[0, 1, 2, 3], max_rank=8)
    assert cheapest_tree(X, space, 1e-8) == [2, 3, 2]
    moved = SearchSpace(X.shape, "chain", permutation=[1, 0, 2, 3], max_rank=8)
    # slots 0-1-2-3 carry modes 1, 0, 2, 3: cuts {1}, {0, 1}, {0, 1, 2}
    assert cheapest_tree(X, moved, 1e-8) == [
        _unfolding_rank(X, (1,)),
        _unfolding_rank(X, (0, 1)),
        _unfolding_rank(X, (0, 1, 2)),
    ]


def test_cheapest_tree_respects_max_rank_and_says_none():
    X = random_network(STAR, random_state=0).to_tensor()
    assert cheapest_tree(X, SearchSpace(X.shape, "full", max_rank=2), 1e-6) is None
    with_internal = [[3, 0, 2], [0, 3, 2], [2, 2, 0]]
    Y = random_network(with_internal, random_state=0).to_tensor()
    assert cheapest_tree(Y, SearchSpace(Y.shape, with_internal, max_rank=4), 1e-6) is None


def test_cheapest_tree_stays_in_the_array_namespace():
    X = random_tt((3, 4, 5), [2, 3], random_state=0).to_tensor()
    space = SearchSpace(X.shape, "full", max_rank=4)
    assert cheapest_tree(HostGuardArray(X), space, 1e-8) == cheapest_tree(X, space, 1e-8)


def test_greedy_finds_the_planted_star():
    X = random_network(STAR, random_state=0).to_tensor()
    kwargs = dict(objective="constrained", max_rse=1e-6, max_rank=3, random_state=0)
    search = tnml.StructureSearch("greedy", **kwargs).fit(X)
    star = to_data_order(STAR)
    assert search.reconstruction_error_ <= 1e-6
    assert search.best_network_.n_params == n_params(star)
    assert canonical_key(search.best_structure_) == canonical_key(star)
    assert search.history_[0]["stage"] == "tree"


def test_greedy_prices_no_tree_on_missing_data():
    X = random_tt((4, 4, 4), [2, 2], random_state=0).to_tensor()
    X[0, 0, 0] = np.nan
    search = tnml.StructureSearch("greedy", max_rse=1e-3, max_rank=3, random_state=0).fit(X)
    assert "tree" not in {h["stage"] for h in search.history_}


@pytest.mark.slow
def test_exchange_undoes_a_bond_that_pruning_cannot_remove():
    # Growth without the tree proposal ends on this draw of a TT [2, 3, 6, 5] tensor at an
    # exact triangle on cores 2-3-4 (560 parameters) from which no single rank can be
    # lowered; dropping bond 2-4 and regrowing reaches the chain (427).
    from tnml.structure_search import Objective, Runner
    from tnml.structure_search.searchers import _exchange

    chain = np.diag([7] * 5)
    for i, rank in enumerate([2, 3, 6, 5]):
        chain[i, i + 1] = chain[i + 1, i] = rank
    X = random_network(chain, random_state=1).to_tensor()
    space = SearchSpace(X.shape, "full", max_rank=8)
    bonds = {(0, 1): 2, (1, 2): 3, (2, 3): 4, (2, 4): 2, (3, 4): 8}
    triangle = [bonds.get(edge, 1) for edge in space.edges]
    objective = Objective("constrained", max_rse=1e-6)
    fit_params = {"max_iter": 100, "tol": 1e-7, "n_init": 2, "target_error": 1e-7}
    runner = Runner(X, None, None, objective, method="greedy", fit_params=fit_params, seed=0)
    (start,) = runner.evaluate([{"structure": space.structure(triangle), "stage": "prune"}])
    assert start["rse"] <= 1e-6 and start["n_params"] == 560
    settings = dict(rank_increment=1, candidate_iter=10, refit_iter=500, max_rse=1e-6)
    _exchange(
        runner,
        space,
        np.random.RandomState(0),
        triangle,
        space.permutation,
        prune=True,
        criterion="efficiency",
        **settings,
    )
    assert runner.best["n_params"] == 427
    assert canonical_key(runner.best["structure"]) == canonical_key(chain)
