import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import tnml
from tnml.datasets import load_image, make_mask
from tnml.decompositions import random_cp


def _with_missing(X, ratio, seed=0):
    return np.where(np.random.default_rng(seed).random(X.shape) < ratio, np.nan, X)


@pytest.mark.parametrize(
    "model", ["cp", "tucker", "tt", "tr", tnml.CP(rank=2, random_state=0, max_iter=300, tol=1e-10)]
)
def test_observed_entries_come_back_exactly(model):
    X = random_cp((12, 13, 14), 2, random_state=0).to_tensor()
    X_missing = _with_missing(X, 0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        completed = tnml.TensorImputer(model, random_state=0).fit_transform(X_missing)
    observed = ~np.isnan(X_missing)
    assert np.array_equal(completed[observed], X_missing[observed])
    assert np.isfinite(completed).all()


def test_family_search_recovers_low_rank_tensor():
    X = random_cp((20, 21, 22), 3, random_state=1).to_tensor()
    imputer = tnml.TensorImputer("cp", random_state=0)
    completed = imputer.fit_transform(_with_missing(X, 0.6))
    assert imputer.summary_["rank"] == 3
    assert np.abs(completed - X).max() < 1e-4


def test_auto_tries_every_family_on_an_image():
    image = load_image("astronaut", size=16)  # 32 x 32 took 27 s, this well under 2
    X = np.where(make_mask(image.shape, 0.5, random_state=0), image, np.nan)
    imputer = tnml.TensorImputer("auto", random_state=0, max_iter=10)
    completed = imputer.fit_transform(X)
    probed = [c["model"] for c in imputer.summary_["candidates"] if c["stage"] == "probe"]
    assert probed == list(tnml.estimators.families.AUTOMATIC)  # every family but 'search'
    # Successive halving: the two best probes get the full search, and the best of those wins.
    full = [c for c in imputer.summary_["candidates"] if c["stage"] == "full"]
    leaders = sorted(
        (c for c in imputer.summary_["candidates"] if c["stage"] == "probe"),
        key=lambda c: c["validation_rse"],
    )[:2]
    assert [c["model"] for c in full] == [
        c["model"] for c in leaders if c["validation_rse"] <= 1.25 * leaders[0]["validation_rse"]
    ]
    assert imputer.summary_["model"] == min(full, key=lambda c: c["validation_rse"])["model"]
    assert completed.shape == image.shape


def test_custom_missing_value_and_explicit_rank():
    X = random_cp((10, 11, 12), 2, random_state=0).to_tensor() + 5.0
    X_missing = np.where(np.random.default_rng(0).random(X.shape) < 0.3, -1.0, X)
    imputer = tnml.TensorImputer("tt", rank=4, missing_values=-1.0, random_state=0)
    completed = imputer.fit_transform(X_missing)
    assert imputer.summary_["rank"] == 4 and not (completed == -1.0).any()


def test_warns_when_the_final_fit_stops_at_its_cap():
    X = random_cp((10, 11, 12), 2, random_state=0).to_tensor()
    with pytest.warns(ConvergenceWarning, match="final cp fit stopped at its iteration cap"):
        tnml.TensorImputer("cp", rank=2, max_iter=1, random_state=0).fit(_with_missing(X, 0.3))


def test_tensor_input_tag():
    assert tnml.TensorImputer().__sklearn_tags__().input_tags.three_d_array


def test_bad_input():
    X = np.ones((4, 5, 6))
    with pytest.raises(ValueError, match="no observed entries"):
        tnml.TensorImputer("cp").fit(np.full((4, 5, 6), np.nan))
    imputer = tnml.TensorImputer("cp", rank=1).fit(_with_missing(X, 0.3))
    with pytest.raises(ValueError, match="fitted on"):
        imputer.transform(_with_missing(np.ones((4, 5, 7)), 0.3))
    with pytest.raises(ValueError, match="model"):
        tnml.TensorImputer("magic").fit(_with_missing(X, 0.3))


# -- issue 11: TensorImputer as scikit-learn users expect, on any order >= 2 -------------------
def test_fully_observed_input_passes_through_and_new_nan_are_filled():
    X = random_cp((8, 9, 10), 2, random_state=0).to_tensor()
    imputer = tnml.TensorImputer("cp", random_state=0).fit(X)
    assert imputer.n_missing_ == 0
    assert np.array_equal(imputer.transform(X), X)
    later = X.copy()
    later[0, 0, 0] = np.nan
    assert abs(imputer.transform(later)[0, 0, 0] - X[0, 0, 0]) < 1e-6


def test_default_on_a_matrix_skips_tubal_with_the_reason():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 25))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        imputer = tnml.TensorImputer(random_state=0, max_iter=20).fit(_with_missing(M, 0.3))
    skipped = {c["model"]: c["skipped"] for c in imputer.summary_["candidates"] if "skipped" in c}
    assert list(skipped) == ["tubal"] and "3-way" in skipped["tubal"]
    completed = imputer.transform(_with_missing(M, 0.3))
    assert np.abs(completed - M).max() < 1e-3 * np.abs(M).max()
    with pytest.raises(ValueError, match="3-way"):
        tnml.TensorImputer("tubal").fit(_with_missing(M, 0.3))


def test_default_on_a_4d_tensor():
    X = random_cp((6, 7, 5, 4), 2, random_state=0).to_tensor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        imputer = tnml.TensorImputer(random_state=0, max_iter=20)
        completed = imputer.fit_transform(_with_missing(X, 0.3))
    assert "tubal" in [c["model"] for c in imputer.summary_["candidates"] if "skipped" in c]
    assert np.abs(completed - X).max() < 1e-3 * np.abs(X).max()


def test_tr_rank_ladder_is_capped_for_a_small_tensorized_matrix():
    A = np.random.default_rng(0).random((12, 10))
    imputer = tnml.TensorImputer("tr", random_state=0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        completed = imputer.fit_transform(_with_missing(A, 0.3))
    assert completed.shape == A.shape and np.isfinite(completed).all()


@pytest.mark.parametrize("rank", [1, 2, 5])
def test_tubal_honours_rank(rank):
    T = _with_missing(np.random.default_rng(0).random((8, 9, 10)), 0.3)
    imputer = tnml.TensorImputer("tubal", rank=rank, random_state=0, max_iter=10).fit(T)
    assert imputer.summary_["rank"] == rank == imputer.decomposition_.rank


def test_split_honours_a_random_state_instance():
    T = _with_missing(np.random.default_rng(0).random((8, 9, 10)), 0.3)

    def held_out_error(state):
        return (
            tnml.TensorImputer("tubal", random_state=state, max_iter=10)
            .fit(T)
            .summary_["validation_rse"]
        )

    first = held_out_error(np.random.RandomState(0))
    assert first == held_out_error(np.random.RandomState(0))
    assert first != held_out_error(np.random.RandomState(1))


def test_summary_reports_the_chosen_ranks_held_out_error():
    X = random_cp((12, 13, 14), 3, random_state=0).to_tensor()
    imputer = tnml.TensorImputer("cp", random_state=0).fit(_with_missing(X, 0.5))
    rank = imputer.summary_["rank"]
    chosen = imputer.summary_["validation_rse"]
    (candidate,) = imputer.summary_["candidates"]
    assert candidate["validation_rse"] == chosen
    assert rank == 3 and chosen < 1e-4
