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
    imputer = tnml.TensorImputer("auto", random_state=0, max_iter=10, ordered_axes=(0, 1))
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
    with pytest.raises(ValueError, match="expecting 30 features"):
        imputer.transform(_with_missing(np.ones((4, 5, 7)), 0.3))
    with pytest.raises(ValueError, match="fitted on rows of shape"):
        imputer.transform(_with_missing(np.ones((4, 6, 5)), 0.3))
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
    # Rows of samples: the families that cannot fold in new rows are skipped, with why.
    assert list(skipped) == ["tucker", "tt", "tr", "tubal", "smooth"]
    assert "3-way" in skipped["tubal"] and "fold in" in skipped["smooth"]
    assert "low-rank matrix" in skipped["tt"] and imputer.summary_["model"] == "cp"
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


# -- issue 17: rows are samples; new rows fold in -----------------------------------------------
def _exact(family, shape=(60, 6, 7, 5)):
    from tnml.decompositions import random_tr, random_tt, random_tucker

    makers = {
        "cp": lambda: random_cp(shape, 3, random_state=0),
        "tucker": lambda: random_tucker(shape, (3, 3, 3, 2)[: len(shape)], random_state=0),
        "tt": lambda: random_tt(shape, 2, random_state=0),
        "tr": lambda: random_tr(shape, 2, random_state=0),
    }
    X = makers[family]().to_tensor()
    return X / np.abs(X).max()


@pytest.mark.parametrize("family, rank", [("cp", 3), ("tucker", 3), ("tt", 2), ("tr", 2)])
def test_fold_in_recovers_held_out_rows_of_an_exact_low_rank_tensor(family, rank):
    X = _exact(family)
    train, new = _with_missing(X[:45], 0.3), _with_missing(X[45:], 0.5, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        imputer = tnml.TensorImputer(family, rank=rank, random_state=0, max_iter=500)
        imputer.fit(train)
    completed = imputer.transform(new)
    observed = ~np.isnan(new)
    assert np.array_equal(completed[observed], new[observed])
    assert np.abs(completed - X[45:]).max() < 1e-6


def _digits_like(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 4)) @ rng.random((4, 24)) + 0.01 * rng.standard_normal((n, 24))
    return X, _with_missing(X, 0.3, seed)


def test_rows_are_independent_of_their_batch_and_refits_are_idempotent():
    _, X = _digits_like()
    imputer = tnml.TensorImputer("cp", random_state=0).fit(X[:80])
    whole = imputer.transform(X[80:])
    rows = np.concatenate([imputer.transform(X[80 + i : 81 + i]) for i in range(40)])
    np.testing.assert_allclose(whole, rows, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(imputer.transform(X[90:95]), whole[10:15], rtol=1e-10, atol=1e-12)
    again = tnml.TensorImputer("cp", random_state=0).fit(X[:80]).fit(X[:80])
    np.testing.assert_allclose(again.transform(X[80:]), whole, rtol=1e-9, atol=1e-12)


def test_fit_transform_is_fit_then_transform_for_rows_of_samples():
    _, X = _digits_like()
    imputer = tnml.TensorImputer("tucker", random_state=0)
    np.testing.assert_allclose(
        imputer.fit_transform(X), imputer.fit(X).transform(X), rtol=1e-7, atol=1e-9
    )


def test_flat_rows_with_tensor_shape():
    X = _exact("tucker", shape=(60, 4, 6))
    flat = _with_missing(X.reshape(60, 24), 0.3)
    imputer = tnml.TensorImputer("tucker", rank=3, tensor_shape=(4, 6), random_state=0)
    completed = imputer.fit(flat[:40]).transform(flat[40:])
    assert completed.shape == (20, 24) and imputer.tensor_shape_ == (4, 6)
    assert imputer.n_features_in_ == 24
    with pytest.raises(ValueError, match="tensor_shape"):
        tnml.TensorImputer("cp", tensor_shape=(5, 5)).fit(flat)
    with pytest.raises(ValueError, match="expecting 24 features"):
        imputer.transform(flat[:, :20])


def test_rows_without_observed_entries_get_the_mean_row_never_nan():
    _, X = _digits_like()
    imputer = tnml.TensorImputer("cp", rank=4, random_state=0).fit(X[:80])
    new = X[80:90].copy()
    new[3] = np.nan
    with pytest.warns(UserWarning, match="no observed entries"):
        completed = imputer.transform(new)
    assert np.isfinite(completed).all()
    design, coefficients = tnml.decompositions.row_model(imputer.decomposition_)
    np.testing.assert_allclose(completed[3], coefficients.mean(axis=0) @ design.T)


def test_families_that_cannot_fold_in_say_which_can():
    T = _with_missing(np.random.default_rng(0).random((8, 9, 10)), 0.3)
    imputer = tnml.TensorImputer("tubal", random_state=0, max_iter=10).fit(T)
    assert np.isfinite(imputer.transform(T)).all()  # the fitted tensor itself
    with pytest.raises(ValueError, match="cp, tucker, tt, tr"):
        imputer.transform(T[:4])


def test_auto_never_assumes_ordered_rows_unless_told():
    image = load_image("astronaut", size=16)
    X = np.where(make_mask(image.shape, 0.5, random_state=0), image, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        rows = tnml.TensorImputer(random_state=0, max_iter=5).fit(X)
    skipped = [c["model"] for c in rows.summary_["candidates"] if "skipped" in c]
    assert skipped == ["tubal", "smooth"] and rows.layout_ == ("plain",)
    assert rows.summary_["model"] in ("cp", "tucker", "tt", "tr")


def test_memory_budget_refuses_before_the_search():
    X = _with_missing(np.random.default_rng(0).random((200, 30, 20)), 0.3)
    with tnml.config_context(max_memory="100kB"):
        with pytest.raises(tnml.MemoryBudgetError, match="model search"):
            tnml.TensorImputer("cp").fit(X)
    imputer = tnml.TensorImputer("cp", rank=2, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        imputer.fit(X)
    with tnml.config_context(max_memory="2kB"):
        with pytest.raises(tnml.MemoryBudgetError, match="nearest of 200 rows|folding in"):
            imputer.transform(X)


def test_why_snippet_gives_scores_and_grid_search_over_rank():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    X, y = X[:240], y[:240]
    X = _with_missing(X, 0.3)
    pipe = make_pipeline(
        tnml.TensorImputer("cp", max_rank=6, random_state=0), LogisticRegression(max_iter=200)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(pipe, X, y, cv=3)
        assert np.isfinite(scores).all() and scores.min() > 0.7
        search = GridSearchCV(pipe, {"tensorimputer__rank": [2, 6]}, cv=2, n_jobs=2).fit(X, y)
    assert search.best_params_["tensorimputer__rank"] in (2, 6)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_soft_impute_recovers_a_low_rank_matrix_and_warm_starts():
    from tnml.decompositions import soft_impute

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)) @ rng.standard_normal((3, 40)) + 5.0
    mask = rng.random(X.shape) < 0.6
    cp, info = soft_impute(X, mask=mask, alpha=0.01, max_iter=1000, tol=1e-10)
    # Shrinkage biases the singular values by the threshold: close, not exact.
    assert np.linalg.norm(cp.to_tensor() - X) / np.linalg.norm(X) < 2e-2
    # The column means are a component of their own; few components beyond rank 3 survive.
    assert cp.rank <= 3 + 1 + 2 and info.converged
    # A large threshold leaves the column means alone; a warm start continues a fit.
    means, _ = soft_impute(X, mask=mask, alpha=1.0)
    column_means = np.nanmean(np.where(mask, X, np.nan), axis=0)
    np.testing.assert_allclose(means.to_tensor(), np.broadcast_to(column_means, X.shape))
    _, warm_info = soft_impute(X, mask=mask, alpha=0.01, init=cp, max_iter=1000, tol=1e-10)
    assert warm_info.n_iter < info.n_iter
    with pytest.raises(ValueError, match="matrix"):
        soft_impute(X[None], mask=mask[None], alpha=0.1)


def test_fold_in_dual_form_and_alpha_sequence_match_the_primal():
    from tnml.decompositions import fold_in

    rng = np.random.default_rng(0)
    design = rng.standard_normal((40, 30))
    X = rng.standard_normal((50, 40))
    prior = rng.standard_normal((50, 30))
    for share in (0.3, 0.95):  # fewer observed entries than coefficients (dual), or more
        mask = rng.random(X.shape) < share
        mask[0] = False  # an empty row gets its prior
        solutions = fold_in(design, X, mask, prior=prior, alpha=(0.3, 30.0))
        scale = np.sum(design * design) / design.size
        for alpha, solution in zip((0.3, 30.0), solutions):
            lam = alpha * scale
            for i in range(X.shape[0]):
                D = design[mask[i]]
                expected = np.linalg.solve(
                    D.T @ D + lam * np.eye(30), D.T @ X[i, mask[i]] + lam * prior[i]
                )
                np.testing.assert_allclose(solution[i], expected, rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(
                fold_in(design, X, mask, prior=prior, alpha=alpha), solution, rtol=1e-12
            )


def test_matrix_of_noisy_rows_is_completed_by_the_soft_impute_path():
    # Many weak components under noise: the convex path (shrunk, high rank) predicts held-out
    # rows better than the unshrunk rank ladder, and 'auto' keeps it.
    rng = np.random.default_rng(0)
    spectrum = 0.8 ** np.arange(30)
    X = (rng.standard_normal((300, 30)) * spectrum) @ rng.standard_normal((30, 40))
    X += 0.3 * rng.standard_normal(X.shape)
    X_missing = _with_missing(X, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        imputer = tnml.TensorImputer(random_state=0).fit(X_missing[:240])
        ladder = tnml.TensorImputer("cp", rank=5, random_state=0).fit(X_missing[:240])
    assert imputer.summary_["settings"]["solver"] == "soft-impute"
    missing = np.isnan(X_missing[240:])

    def rmse(model):
        return np.sqrt(np.mean((model.transform(X_missing[240:])[missing] - X[240:][missing]) ** 2))

    assert rmse(imputer) < rmse(ladder)
