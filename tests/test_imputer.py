import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import tnml
from tnml.datasets import load_image, make_mask
from tnml.decompositions import random_cp


def _with_missing(X, ratio, seed=0):
    return np.where(np.random.default_rng(seed).random(X.shape) < ratio, np.nan, X)


@pytest.mark.parametrize("model", ["cp", "tucker", "tt", "tr",
                                   tnml.CP(rank=2, random_state=0, max_iter=300, tol=1e-10)])
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
    tried = [c["model"] for c in imputer.summary_["candidates"]]
    assert tried == list(tnml.estimators.families.AUTOMATIC)  # every family but "search"
    assert imputer.summary_["model"] == min(imputer.summary_["candidates"],
                                            key=lambda c: c["validation_rse"])["model"]
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
    with pytest.raises(ValueError, match="no missing entries"):
        tnml.TensorImputer("cp").fit(X)
    with pytest.raises(ValueError, match="no observed entries"):
        tnml.TensorImputer("cp").fit(np.full((4, 5, 6), np.nan))
    imputer = tnml.TensorImputer("cp", rank=1).fit(_with_missing(X, 0.3))
    with pytest.raises(ValueError, match="fitted on"):
        imputer.transform(_with_missing(np.ones((4, 5, 7)), 0.3))
    with pytest.raises(ValueError, match="model"):
        tnml.TensorImputer("magic").fit(_with_missing(X, 0.3))
