"""The memory budget (``tnml.config_context(max_memory=...)``) holds everywhere (issue 9)."""

import time

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import tnml
from tnml import MemoryBudgetError
from tnml.decompositions import (
    CPTensor,
    TRTensor,
    TTTensor,
    TubalTensor,
    TuckerTensor,
    random_cp,
    random_tucker,
)


def _huge_formats():
    """Formats whose dense tensor is (10^4)^3 = 8 TB, held in a few kB."""
    rng = np.random.default_rng(0)
    n = 10**4
    return [
        CPTensor(np.ones(2), [rng.random((n, 2)) for _ in range(3)]),
        TuckerTensor(rng.random((2, 2, 2)), [rng.random((n, 2)) for _ in range(3)]),
        TTTensor([rng.random((1, n, 2)), rng.random((2, n, 2)), rng.random((2, n, 1))]),
        TRTensor([rng.random((2, n, 2)) for _ in range(3)]),
    ]


@pytest.mark.parametrize("fmt", _huge_formats(), ids=lambda f: type(f).__name__)
def test_every_format_checks_to_tensor_against_the_budget(fmt):
    """Item 4: CP and Tucker included, refused before allocating, with or without a budget."""
    with tnml.config_context(max_memory="1MB"):
        start = time.perf_counter()
        with pytest.raises(
            MemoryBudgetError,
            match=rf"{type(fmt).__name__}.to_tensor needs "
            r"\S+ TB, more than max_memory=1 MB",
        ):
            fmt.to_tensor()
        assert time.perf_counter() - start < 0.5
    with pytest.raises(MemoryBudgetError, match="more than this machine's memory"):
        fmt.to_tensor()


def test_cp_final_product_and_tubal_are_checked():
    """Item 4: a 2000 x 2000 CP product (32 MB) is refused under 1 MB; TubalTensor too."""
    cp = random_cp((2000, 2000), 2, random_state=0)
    with tnml.config_context(max_memory="1MB"):
        with pytest.raises(MemoryBudgetError, match="CPTensor.to_tensor"):
            cp.to_tensor()
    with tnml.config_context(max_memory="100MB"):
        assert cp.to_tensor().shape == (2000, 2000)
    from tnml.decompositions import t_svd

    tubal = t_svd(np.random.default_rng(0).random((30, 30, 30)), rank=2)[0]
    assert isinstance(tubal, TubalTensor)
    with tnml.config_context(max_memory="100kB"):
        with pytest.raises(MemoryBudgetError, match="TubalTensor.to_tensor"):
            tubal.to_tensor()


def test_tucker_budget_counts_intermediates_larger_than_the_result():
    """A factor with fewer rows than columns shrinks a mode late: the intermediate after the
    first mode product is larger than the result and is what the budget must see."""
    tucker = TuckerTensor(
        np.ones((50, 50, 50)), [np.ones((400, 50)), np.ones((400, 50)), np.ones((1, 50))]
    )
    assert tucker._to_tensor_bytes() == 400 * 400 * 50 * 8
    with tnml.config_context(max_memory="5MB"):  # result 1.28 MB, intermediate 64 MB
        with pytest.raises(MemoryBudgetError):
            tucker.to_tensor()
    exact = random_tucker((6, 7, 8), (2, 3, 4), random_state=0)
    reference = np.einsum("abc,ia,jb,kc->ijk", exact.core, *exact.factors)
    np.testing.assert_allclose(exact.to_tensor(), reference, rtol=1e-12)


def test_completion_regressor_checks_start_factors_before_allocating():
    """Item 5: shape=(10^9,)*3 is refused at once, under a budget and without one."""
    rng = np.random.default_rng(0)
    coords, values = rng.integers(0, 5, (50, 3)), rng.random(50)
    model = tnml.TensorCompletionRegressor(rank=2, tensor_shape=(10**9,) * 3)
    for budget, text in [
        ("100MB", "more than max_memory=100 MB"),
        (None, "more than this machine's memory"),
    ]:
        with tnml.config_context(max_memory=budget):
            start = time.perf_counter()
            with pytest.raises(MemoryBudgetError, match=rf"start factors .* needs 48 GB, {text}"):
                model.fit(coords, values)
            assert time.perf_counter() - start < 0.5


def test_budget_messages_use_readable_units():
    """Item 11: a budget in kB is reported in kB, not as 0.0 MB."""
    with tnml.config_context(max_memory="10KB"):
        with pytest.raises(MemoryBudgetError, match=r"needs 20 kB, more than max_memory=10 kB"):
            tnml._config.check_memory(20_000, "x")
    assert tnml._config.format_bytes(1234) == "1.234 kB"
    assert tnml._config.format_bytes(5) == "5 B"


def _search(n_jobs):
    # Start factors of 120 MB and 240 MB. refit=False: every fit happens in the workers (the
    # final refit would run in the caller's thread, which always saw the budget).
    return GridSearchCV(
        tnml.TensorCompletionRegressor(tensor_shape=(5 * 10**6,) * 3, max_iter=1),
        {"rank": [1, 2]},
        cv=2,
        n_jobs=n_jobs,
        error_score="raise",
        refit=False,
    )


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_grid_search_workers_see_the_budget(backend):
    """Item 6: under max_memory=100MB, GridSearchCV(n_jobs=2) refuses as n_jobs=1 does."""
    rng = np.random.default_rng(0)
    coords, values = rng.integers(0, 50, (200, 3)), rng.random(200)
    with tnml.config_context(max_memory="100MB"), joblib.parallel_config(backend=backend):
        for n_jobs in (1, 2):
            with pytest.raises(MemoryBudgetError, match="more than max_memory=100 MB"):
                _search(n_jobs).fit(coords, values)
    assert tnml.get_config()["max_memory"] is None


@pytest.mark.parametrize("backend", ["threading", pytest.param("loky", marks=pytest.mark.slow)])
def test_workers_get_the_budget_of_the_caller(backend):
    """The workers see exactly the caller's setting, and the caller's thread keeps its own."""
    from sklearn.utils.parallel import Parallel, delayed

    def budget(_):
        return tnml.get_config()["max_memory"]

    with joblib.parallel_config(backend=backend):
        with tnml.config_context(max_memory="3MB"):
            assert Parallel(n_jobs=2)(delayed(budget)(i) for i in range(4)) == [3 * 10**6] * 4
        assert Parallel(n_jobs=2)(delayed(budget)(i) for i in range(4)) == [None] * 4
        search = GridSearchCV(
            tnml.TensorCompletionRegressor(max_iter=2),
            {"rank": [1, 2]},
            cv=2,
            n_jobs=2,
            error_score="raise",
        )
        rng = np.random.default_rng(0)
        with tnml.config_context(max_memory="100MB"):
            search.fit(rng.integers(0, 6, (200, 3)), rng.random(200))  # within budget: fits
    assert search.best_params_["rank"] in (1, 2)


def test_no_format_bypasses_the_to_tensor_template():
    from tnml import decompositions

    formats = [getattr(decompositions, name) for name in decompositions.__all__]
    formats = [
        f
        for f in formats
        if isinstance(f, type)
        and issubclass(f, decompositions.FactorizedTensor)
        and f is not decompositions.FactorizedTensor
    ]
    assert len(formats) >= 5
    for cls in formats:
        assert "to_tensor" not in vars(cls), cls  # they implement _to_tensor
        assert "_to_tensor" in vars(cls), cls
