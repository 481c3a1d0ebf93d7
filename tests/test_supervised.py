"""MPS classifier/regressor and low-rank tensor regression: ground truth, peers, bad input."""

import gzip
import os
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

import tnml
from tnml import testing
from tnml.datasets import load_digits_images, load_mnist
from tnml.decompositions import random_cp, random_tucker
from tnml.supervised.mps import (
    Environments,
    MPSTensor,
    feature_map,
    init_mps,
    mps_dmrg_sweep,
    mps_loss_and_grads,
    mps_predict,
)
from tnml.supervised.regression import cp_regression, tt_regression, tucker_regression


def _random_mps(rng, n_sites=6, bond=3, n_out=2, site=3):
    cores = [
        rng.standard_normal((1 if k == 0 else bond, 2, bond if k < n_sites - 1 else 1))
        for k in range(n_sites)
    ]
    cores[site] = rng.standard_normal((bond, 2, n_out, bond))
    return cores, site


# -- MPS algorithms -----------------------------------------------------------------------------
def test_dmrg_recovers_an_exact_mps_model(rng):
    # Bonds at their full dimensions (2, 4, 8, 4, 2): every environment subspace is the whole
    # product space, so unit environments are those of the unit-norm product state and the
    # model is the plain linear MPS, which DMRG must then match exactly.
    dims = [1, 2, 4, 8, 4, 2, 1]
    cores = [rng.standard_normal((dims[k], 2, dims[k + 1])) for k in range(6)]
    cores[3] = rng.standard_normal((8, 2, 2, 4))
    phi = feature_map(rng.random((400, 6)))
    weights = np.einsum("iaj,jbk,kcl,ldum,mew,wfz->abcdefuiz", *cores)[..., 0, 0]
    Y = np.einsum("abcdefu,na,nb,nc,nd,ne,nf->nu", weights, *np.moveaxis(phi, 1, 0))
    fitted, label_site = init_mps(phi, 2, 16, Y=Y)
    env = None
    for _ in range(3):
        fitted, env = mps_dmrg_sweep(
            fitted, label_site, phi, Y, env, bond_dim=16, alpha=0.0, n_steps=50
        )
    error = np.linalg.norm(mps_predict(fitted, label_site, phi) - Y) / np.linalg.norm(Y)
    assert error < 1e-6
    # the cached environments after the sweep are those of the returned cores
    fresh = Environments(fitted, label_site, phi)
    for k in range(label_site + 1):
        np.testing.assert_allclose(env.left[k], fresh.left[k], atol=1e-10)


def test_environments_of_the_canonical_mps_are_bounded(rng):
    phi = feature_map(rng.random((300, 40)))
    cores, site = init_mps(phi, 3, 5, Y=rng.random((300, 3)))
    env = Environments(cores, site, phi)
    # isometric cores and unit-norm features: no sample's environment grows past norm one
    for vectors in env.left[1 : site + 1] + env.right[site:-1]:
        assert np.linalg.norm(vectors, axis=1).max() <= 1 + 1e-10


def test_gradients_match_finite_differences(rng):
    cores, site = _random_mps(rng)
    phi = feature_map(rng.random((20, 6)))
    Y = rng.standard_normal((20, 2))
    loss, grads = mps_loss_and_grads(cores, site, phi, Y)
    for k, index in [(0, (0, 1, 2)), (site, (1, 0, 1, 2)), (5, (2, 1, 0))]:
        step = np.zeros_like(cores[k])
        step[index] = 1e-6
        moved = [c.copy() for c in cores]
        moved[k] = moved[k] + step
        assert (mps_loss_and_grads(moved, site, phi, Y)[0] - loss) / 1e-6 == pytest.approx(
            grads[k][index], rel=1e-4
        )


# -- MPS estimators -----------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:X has features outside the range seen in fit")
def test_mps_classifier_on_digits():
    X, y = load_digits(return_X_y=True)
    clf = tnml.MPSClassifier(bond_dim=6, max_iter=1).fit(X[:500], y[:500])
    assert clf.score(X[1000:1400], y[1000:1400]) > 0.85
    proba = clf.predict_proba(X[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X[:5]))
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 1 and max(clf.bond_dims_) == 6
    assert clf.decomposition_.cores[clf.label_site_].shape[2] == 10


def test_mps_adam_partial_fit_and_early_stopping(rng):
    X = rng.random((300, 6))
    y = (X[:, 0] + X[:, 3] > 1).astype(int)
    clf = tnml.MPSClassifier(bond_dim=4, solver="adam", learning_rate=1e-2, random_state=0)
    for _ in range(5):
        clf.partial_fit(X, y, classes=[0, 1])
    assert clf.n_iter_ == 5 and clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert not hasattr(tnml.MPSClassifier(), "partial_fit")  # DMRG needs the whole data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        stopped = tnml.MPSClassifier(
            bond_dim=4, early_stopping=True, max_iter=6, validation_fraction=0.2, random_state=0
        ).fit(X, y)
    assert len(stopped.validation_scores_) == stopped.n_iter_ >= 1
    assert stopped.score(X, y) > 0.9


def test_mps_regressor_fits_a_product_function(rng):
    X = rng.random((400, 5))
    y = 3 * X[:, 0] * X[:, 1] + X[:, 4]  # multilinear: exact for the map [1, x], bond dim 2
    reg = tnml.MPSRegressor(
        bond_dim=4,
        feature_map="poly",
        normalize=False,
        max_iter=3,
        alpha=1e-10,
        n_local_steps=20,
    ).fit(X[:300], y[:300])
    assert reg.score(X[300:], y[300:]) > 0.999
    multi = tnml.MPSRegressor(bond_dim=4).fit(X, np.c_[y, -y])
    assert multi.predict(X[:3]).shape == (3, 2)


def test_mps_keeps_device_arrays(rng):
    X = testing.asarray(rng.random((60, 5)))
    y = np.array([0, 1, 2] * 20)
    clf = tnml.MPSClassifier(bond_dim=3).fit(X, y)
    assert isinstance(clf.predict_proba(X), testing.HostGuardArray)
    assert isinstance(clf.predict(X), testing.HostGuardArray)
    adam = tnml.MPSRegressor(bond_dim=3, solver="adam", max_iter=2, early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adam.fit(X, testing.asarray(rng.random(60)))
    assert isinstance(adam.predict(X), testing.HostGuardArray)


@pytest.mark.filterwarnings("ignore:X has features outside the range seen in fit")
def test_mps_in_a_grid_search():
    X, y = load_digits(return_X_y=True)
    search = GridSearchCV(tnml.MPSClassifier(max_iter=1), {"bond_dim": [1, 6]}, cv=2)
    search.fit(X[:300], y[:300])
    assert search.best_params_ == {"bond_dim": 6}


@pytest.mark.parametrize("Estimator", [tnml.MPSClassifier, tnml.MPSRegressor])
def test_mps_bad_input(Estimator, rng):
    X, y = rng.random((20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError, match="bond_dim"):
        Estimator(bond_dim=0).fit(X, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Estimator().fit(X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        Estimator().fit(np.where(X > 0.9, np.nan, X), y)
    with pytest.raises(ValueError, match="feature_map"):
        Estimator(feature_map=lambda x: x).fit(X, y)
    model = Estimator(bond_dim=2, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((2, 4), np.nan))
    # outside the training range: clipped to the map's domain, with a warning
    with pytest.warns(UserWarning, match="outside the range seen in fit"):
        far = model.predict(np.full((1, 4), 5.0))
    np.testing.assert_array_equal(far, model.predict(X.max(axis=0, keepdims=True)))


def test_mps_classifier_needs_two_classes(rng):
    with pytest.raises(ValueError, match="at least 2 classes; got one class"):
        tnml.MPSClassifier().fit(rng.random((10, 3)), np.ones(10))


@pytest.mark.parametrize(
    "make",
    [
        lambda: tnml.MPSClassifier(bond_dim=3, solver="adam", max_iter=2),
        lambda: tnml.MPSRegressor(bond_dim=3),
        lambda: tnml.CPRegressor(rank=2),
        lambda: tnml.TuckerRegressor(rank=2),
        lambda: tnml.TTRegressor(rank=2),
    ],
)
def test_save_load_round_trip(make, rng, tmp_path):
    if isinstance(make(), (tnml.MPSClassifier, tnml.MPSRegressor)):
        X, y = rng.random((40, 5)), np.arange(40) % 3
    else:
        X, y = rng.random((40, 3, 4)), rng.random(40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make().fit(X, y)
    tnml.save(model, tmp_path / "model.npz")
    back = tnml.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    assert back.get_params() == model.get_params()


# -- tensor regression -------------------------------------------------------------------------
def _regression_problem(weights, n, rng, intercept=2.5):
    X = rng.standard_normal((n,) + weights.shape)
    return X, np.tensordot(X, weights, axes=weights.ndim) + intercept


@pytest.mark.parametrize(
    "solve, truth, rank",
    [
        (cp_regression, lambda: random_cp((5, 6, 4), 2, random_state=0).to_tensor(), 2),
        (
            tucker_regression,
            lambda: random_tucker((5, 6, 4), (2, 3, 2), random_state=0).to_tensor(),
            (2, 3, 2),
        ),
        (tt_regression, lambda: random_cp((5, 6, 4), 2, random_state=0).to_tensor(), 2),
    ],
)
def test_regression_recovers_exact_low_rank_weights(solve, truth, rank, rng):
    W = truth()
    X, y = _regression_problem(W, 400, rng)
    weights, result = solve(X, y, rank, alpha=0.0, tol=1e-14, max_iter=300)
    np.testing.assert_allclose(weights.to_tensor(), W, atol=1e-6)
    assert result.intercept == pytest.approx(2.5, abs=1e-6)
    assert result.error < 1e-6 and result.n_iter == len(result.errors)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: tnml.CPRegressor(rank=3), "CPRegressor"),
        (lambda: tnml.TuckerRegressor(rank=3), "TuckerRegressor"),
    ],
)
def test_regressors_match_tensorly(ours, theirs, rng):
    import tensorly.regression as tlr

    W = random_cp((10, 12), 3, random_state=1).to_tensor()
    X, y = _regression_problem(W, 600, rng, intercept=0.0)
    y = y + 0.1 * rng.standard_normal(600)
    peer = getattr(tlr, theirs)(
        3 if theirs == "CPRegressor" else [3, 3], reg_W=1.0, verbose=0, random_state=0
    ).fit(X[:400], y[:400])
    model = ours().fit(X[:400], y[:400])
    assert model.score(X[400:], y[400:]) == pytest.approx(
        1
        - np.sum((peer.predict(X[400:]) - y[400:]) ** 2) / np.sum((y[400:] - y[400:].mean()) ** 2),
        abs=0.01,
    )


def test_regressor_flat_input_and_device_arrays(rng):
    W = random_cp((4, 5), 1, random_state=0).to_tensor()
    X, y = _regression_problem(W, 200, rng)
    flat = tnml.CPRegressor(rank=1, tensor_shape=(4, 5), alpha=1e-8, tol=1e-12)
    flat.fit(X.reshape(200, -1), y)
    np.testing.assert_allclose(flat.coef_, W, atol=1e-6)
    assert isinstance(flat.decomposition_, tnml.decompositions.CPTensor)
    for Estimator in (tnml.CPRegressor, tnml.TuckerRegressor, tnml.TTRegressor):
        model = Estimator(rank=1).fit(testing.asarray(X), testing.asarray(y))
        assert isinstance(model.predict(testing.asarray(X)), testing.HostGuardArray)


@pytest.mark.parametrize("Estimator", [tnml.CPRegressor, tnml.TuckerRegressor, tnml.TTRegressor])
def test_regressor_bad_input(Estimator, rng):
    X, y = rng.random((20, 3, 4)), rng.random(20)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Estimator().fit(X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        Estimator().fit(np.where(X > 0.9, np.nan, X), y)
    with pytest.raises(ValueError, match="rank"):
        Estimator(rank=0).fit(X, y)
    with pytest.raises(ValueError, match="tensor_shape"):
        Estimator(tensor_shape=(5, 5)).fit(X.reshape(20, -1), y)
    model = Estimator(rank=1).fit(X, y)
    with pytest.raises(ValueError, match="shape"):
        model.predict(rng.random((2, 4, 3)))


# -- datasets -----------------------------------------------------------------------------------
def _write_idx(path, array, compress):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.array(array.shape, ">u4").tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as stream:
        stream.write(header + array.tobytes())


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_reads_idx_files(compress, rng, tmp_path):
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    _write_idx(tmp_path / f"t10k-labels.idx1-ubyte{suffix}", labels, compress)
    X, y = load_mnist(tmp_path, subset="test")
    np.testing.assert_allclose(X, images / 255.0)
    np.testing.assert_array_equal(y, labels)
    pooled, _ = load_mnist(tmp_path, subset="test", pool=True)
    assert pooled.shape == (5, 14, 14)
    np.testing.assert_allclose(pooled[:, 3, 5], images[:, 6:8, 10:12].mean(axis=(1, 2)) / 255)


def test_load_mnist_bad_files(rng, tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="subset"):
        load_mnist(tmp_path, subset="validation")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x08\x08\x08\x03garbage")
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8), False)
    with pytest.raises(ValueError, match="not an IDX file"):
        load_mnist(tmp_path)
    header = bytes([0, 0, 8, 3]) + np.array([2, 4, 4], ">u4").tobytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + bytes(31))
    with pytest.raises(ValueError, match="header announces"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="directory"):
        load_mnist(os.fspath(tmp_path / "nowhere"))


def test_load_digits_images():
    images, target = load_digits_images()
    assert images.shape == (1797, 8, 8) and target.shape == (1797,)
    np.testing.assert_array_equal(images.reshape(1797, -1), load_digits().data)


# -- MPS at the paper's scale (issue 16) --------------------------------------------------------
def _template_images(n, n_sites=196, n_classes=5, seed=0):
    """Sparse "ink" images of ``n_classes`` random templates, each sample showing 40% of its
    template's ink plus stray ink: every sample's product state differs all along the chain,
    which made the environments of the old (unnormalised) model vanish."""
    rng = np.random.default_rng(seed)
    templates = (rng.random((n_classes, n_sites)) < 0.3).astype(float)
    y = rng.integers(0, n_classes, n)
    X = templates[y] * (rng.random((n, n_sites)) < 0.4) * rng.uniform(0.5, 1.0, (n, n_sites))
    X += 0.3 * rng.random((n, n_sites)) * (rng.random((n, n_sites)) < 0.3)
    return X, y


@pytest.mark.parametrize("solver", ["dmrg", "adam"])
def test_mps_classifier_learns_a_196_site_chain(solver):
    # The code before the unit environments reached 66% test accuracy here (DMRG defaults).
    X, y = _template_images(300)
    params = {"solver": "adam", "max_iter": 10} if solver == "adam" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Adam's ConvergenceWarning; stray-ink ranges
        clf = tnml.MPSClassifier(random_state=0, **params).fit(X[:200], y[:200])
        assert clf.score(X[200:], y[200:]) >= 0.95


def test_mps_regressor_learns_a_196_site_chain():
    X, y = _template_images(300)
    target = y.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = tnml.MPSRegressor(random_state=0).fit(X[:200], target[:200])
        assert reg.score(X[200:], target[200:]) >= 0.9


@pytest.mark.parametrize("n_features", [1000, pytest.param(3000, marks=pytest.mark.slow)])
def test_mps_wide_inputs_learn(n_features):
    # Formerly a ZeroDivisionError in the conjugate-gradient step (1000-2000 features) or a
    # constant model (every probability 0.5 at 3000).
    rng = np.random.default_rng(0)
    X = rng.random((100, n_features))
    signal = X[:, 0] + X[:, n_features // 2]
    clf = tnml.MPSClassifier(bond_dim=4, max_iter=1).fit(X, (signal > 1).astype(int))
    assert np.ptp(clf.predict_proba(X)[:, 1]) > 0.1
    assert clf.score(X, (signal > 1).astype(int)) > 0.65
    reg = tnml.MPSRegressor(bond_dim=4, max_iter=1).fit(X, signal)
    assert reg.score(X, signal) > 0.3


def test_environments_stay_unit_along_a_784_site_sweep(rng):
    X, _ = _template_images(40, n_sites=784)
    phi = testing.asarray(feature_map(X))
    Y = testing.asarray(np.eye(2)[rng.integers(0, 2, 40)])
    cores, site = init_mps(phi, 2, 8, Y=Y)
    cores, env = mps_dmrg_sweep(cores, site, phi, Y, bond_dim=8)
    assert isinstance(env.left[site], testing.HostGuardArray)
    for k in range(1, site + 1):
        norms = np.linalg.norm(tnml.backend.to_numpy(env.left[k]), axis=1)
        np.testing.assert_allclose(norms, 1.0, rtol=1e-10)
        assert np.all(np.isfinite(tnml.backend.to_numpy(env.left_log[k])))
    # the plain model's scales: shrinking along the chain, but finite (no underflow to 0)
    assert np.all(np.isfinite(tnml.backend.to_numpy(env.left_log[site])))
    assert float(np.max(tnml.backend.to_numpy(env.left_log[site]))) < 0
    f = tnml.backend.to_numpy(mps_predict(cores, site, phi))
    assert np.all(np.isfinite(f)) and np.std(f) > 1e-3


def test_mps_memory_budget_is_checked_before_allocating():
    X = np.zeros((2000, 500))
    y = np.arange(2000) % 2
    with tnml.config_context(max_memory="20MB"):
        with pytest.raises(tnml.MemoryBudgetError, match="MPSClassifier"):
            tnml.MPSClassifier(bond_dim=64).fit(X, y)


def test_mps_float32_fit_then_float64_predict_does_not_warn(rng):
    X = rng.random((80, 6)) * 1000 + 5000
    y = np.arange(80) % 2
    clf = tnml.MPSClassifier(bond_dim=3, max_iter=1).fit(X.astype(np.float32), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(X)
    with pytest.warns(UserWarning, match="outside the range"):
        clf.predict(X + 1000)


def test_mps_fitted_model_is_a_format(rng):
    X, y = rng.random((60, 5)), np.arange(60) % 3
    clf = tnml.MPSClassifier(bond_dim=3, max_iter=1).fit(X, y)
    model = clf.decomposition_
    assert isinstance(model, MPSTensor) and model.label_site == clf.label_site_
    assert model.shape[model.label_site + 1] == 3 and len(model.shape) == 6
    W = model.to_tensor()
    assert float(model.norm()) == pytest.approx(np.linalg.norm(W))
    index = np.array([[1, 0, 1, 2, 0, 1]])
    np.testing.assert_allclose(model.entries(index), W[tuple(index[0])])
    assert model.n_params == sum(core.size for core in model.cores)


@pytest.mark.filterwarnings("ignore:X has features outside the range seen in fit")
def test_mps_validation_scores_are_scores():
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    clf = tnml.MPSClassifier(bond_dim=6, early_stopping=True, max_iter=3, random_state=0)
    clf.fit(X, y)
    assert all(0 <= s <= 1 for s in clf.validation_scores_)
    assert max(clf.validation_scores_) > 0.8  # accuracies, no longer negative losses
    reg = tnml.MPSRegressor(bond_dim=4, early_stopping=True, max_iter=3, random_state=0)
    reg.fit(X, y.astype(float))
    assert all(s <= 1 for s in reg.validation_scores_) and max(reg.validation_scores_) > 0  # R^2


def test_identity_start_fits_its_label_core(rng):
    phi = feature_map(rng.random((50, 12)))
    Y = np.eye(3)[rng.integers(0, 3, 50)]
    cores, site = init_mps(phi, 3, 4, Y=Y, start="identity", random_state=0)
    assert cores[site].shape[2] == 3 and np.abs(mps_predict(cores, site, phi)).max() > 0.1


@pytest.mark.filterwarnings("ignore:X has features outside the range seen in fit")
def test_mps_cutoff_adapts_the_bond_dimensions():
    X, y = load_digits(return_X_y=True)
    full = tnml.MPSClassifier(bond_dim=12, max_iter=1).fit(X[:300], y[:300])
    cut = tnml.MPSClassifier(bond_dim=12, max_iter=1, cutoff=1e-3).fit(X[:300], y[:300])
    assert max(full.bond_dims_) == 12
    assert sum(cut.bond_dims_) < sum(full.bond_dims_)
    assert cut.decomposition_.n_params < full.decomposition_.n_params
