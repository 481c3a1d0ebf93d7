"""Under ``tnml.config_context(max_memory="50MB")`` every exported estimator's ``fit`` on
data whose fit needs more is refused before its peak memory passes 50 MB above the input.

Peak memory is measured with :mod:`tracemalloc`, which sees NumPy's allocations. Each case
is sized so that the fit needs several hundred MB (a rank, bond dimension or tensor far
beyond the budget) while the input itself is a few MB.
"""

import tracemalloc

import numpy as np
import pytest

import tnml

BUDGET = 50 * 10**6


def _tensor(shape, seed=0):
    return np.random.default_rng(seed).random(shape)


def _cases():
    rng = np.random.default_rng(0)
    cube = _tensor((60, 60, 60))  # 1.7 MB
    samples = rng.random((400, 20))  # bond dimension 300: about 100 MB of environments
    labels = np.arange(400) % 3
    target = rng.random(400)
    coords = np.stack([rng.integers(0, 400, 2000) for _ in range(3)], axis=1)
    values = rng.random(2000)
    missing = cube.copy()
    missing[rng.random(cube.shape) < 0.3] = np.nan
    big_missing = _tensor((100, 100, 100))
    big_missing[rng.random(big_missing.shape) < 0.3] = np.nan
    return {
        # A Khatri-Rao product of 3600 x 2000 (58 MB) and a 2000 x 2000 Gram per mode.
        "CP": (tnml.CP(rank=2000, max_iter=2), (cube,)),
        # Full multilinear ranks on a 200^3 tensor: each unfolding copy and its QR are 64 MB.
        "Tucker": (tnml.Tucker(rank=(200, 200), max_iter=2), (_tensor((200, 200, 200)),)),
        # TT-SVD of 40^4: the 1600 x 1600 step's SVD needs about 140 MB.
        "TensorTrain": (tnml.TensorTrain(rank=3000), (_tensor((40, 40, 40, 40)),)),
        "TensorRing": (tnml.TensorRing(rank=200, max_iter=2), (cube,)),
        "TubalSVD": (tnml.TubalSVD(rank=150), (_tensor((150, 150, 150)),)),
        "TensorImputer(CP)": (tnml.TensorImputer(tnml.CP(rank=2000, max_iter=2)), (missing,)),
        # The default search over the families on 100^3 (8 MB) at 30% missing.
        "TensorImputer": (tnml.TensorImputer(), (big_missing,)),
        "TensorCompletionRegressor": (
            tnml.TensorCompletionRegressor(model="tucker", rank=300, max_iter=2),
            (coords, values),
        ),
        # Seeded: about 3% of random draws of two structures hold one small enough to fit.
        "StructureSearch": (
            tnml.StructureSearch(method="random", max_rank=200, max_evaluations=2, random_state=0),
            (cube,),
        ),
        "MPSClassifier": (tnml.MPSClassifier(bond_dim=300, max_iter=1), (samples, labels)),
        "MPSRegressor": (tnml.MPSRegressor(bond_dim=300, max_iter=1), (samples, target)),
        # A 180000-unknown ridge step (its Gram alone is 259 GB).
        "CPRegressor": (
            tnml.CPRegressor(rank=3000, max_iter=2),
            (rng.random((400, 60, 60)), target),
        ),
        "TuckerRegressor": (
            tnml.TuckerRegressor(rank=(60, 60), max_iter=2),
            (rng.random((400, 60, 60)), target),
        ),
        "TTRegressor": (
            tnml.TTRegressor(rank=1000, max_iter=2),
            (rng.random((400, 60, 60)), target),
        ),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_fit_is_refused_before_passing_the_budget(name):
    estimator, data = _cases()[name]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        with tnml.config_context(max_memory=BUDGET), pytest.raises(MemoryError):
            estimator.fit(*data)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak <= BUDGET, f"{name} peaked at {peak / 1e6:.0f} MB above its input"


def test_every_exported_estimator_has_a_case():
    exported = {
        n
        for n in tnml.__all__
        if isinstance(getattr(tnml, n), type) and hasattr(getattr(tnml, n), "fit")
    }
    assert exported <= set(_cases())
