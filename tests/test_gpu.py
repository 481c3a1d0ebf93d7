"""CuPy runs: skipped unless CuPy and a CUDA device are present (see conftest.py)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import tnml
from tnml.backend import to_numpy
from tnml.decompositions import cp_als, random_cp, tr_als, tt_svd, tucker_hooi

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy():
    return pytest.importorskip("cupy")


def test_algorithms_stay_on_device_and_match_cpu(cupy):
    X = random_cp((20, 21, 22), 3, random_state=0).to_tensor()
    X_gpu = cupy.asarray(X)
    cp_cpu, _ = cp_als(X, 3, max_iter=20, tol=0, init="svd")
    cp_gpu, _ = cp_als(X_gpu, 3, max_iter=20, tol=0, init="svd")
    assert isinstance(cp_gpu.factors[0], cupy.ndarray)
    np.testing.assert_allclose(to_numpy(cp_gpu.to_tensor()), cp_cpu.to_tensor(), atol=1e-8)
    for result in (
        tucker_hooi(X_gpu, 3, max_iter=3)[0],
        tt_svd(X_gpu, rank=3)[0],
        tr_als(X_gpu, 2, max_iter=3)[0],
    ):
        assert isinstance(result.to_tensor(), cupy.ndarray)


def test_estimators_return_device_arrays(cupy):
    X = cupy.asarray(np.random.default_rng(0).random((30, 5, 6)))
    for model in (
        tnml.CP(rank=3),
        tnml.Tucker(rank=2),
        tnml.TensorTrain(rank=3),
        tnml.TensorRing(rank=2),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            assert isinstance(model.fit(X).transform(X), cupy.ndarray)
