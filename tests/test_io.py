import warnings
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import tnml
from tnml.decompositions import TuckerTensor, random_cp, random_tucker


def _formats():
    from tnml.decompositions.tr import tr_svd
    from tnml.decompositions.tt import tt_svd

    X = np.random.default_rng(0).random((4, 5, 6))
    return [random_cp((4, 5, 6), 3, random_state=0),
            random_tucker((4, 5, 6), (2, None, 3), random_state=0),
            tt_svd(X, rank=3), tr_svd(X, rank=2)]


@pytest.mark.parametrize("fmt", _formats(), ids=lambda f: type(f).__name__)
def test_formats_round_trip_bit_for_bit(fmt, tmp_path):
    tnml.save(fmt, tmp_path / "f.npz")
    back = tnml.load(tmp_path / "f.npz")
    assert type(back) is type(fmt)
    for a, b in zip(fmt._arrays(), back._arrays()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    if isinstance(fmt, TuckerTensor):
        assert back.factors[1] is None


@pytest.mark.parametrize("model", [tnml.CP(rank=3, random_state=0), tnml.Tucker(rank=(2, 3)),
                                   tnml.TensorTrain(rank=3),
                                   tnml.TensorRing(rank=2, random_state=0, max_iter=5),
                                   tnml.TubalSVD(rank=2)])
def test_fitted_estimators_round_trip(model, tmp_path):
    X = np.random.default_rng(1).random((12, 5, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    tnml.save(model, tmp_path / "m.npz")
    back = tnml.load(tmp_path / "m.npz")
    assert back.get_params() == model.get_params()
    assert back.reconstruction_error_ == model.reconstruction_error_
    np.testing.assert_array_equal(back.components_, model.components_)
    np.testing.assert_array_equal(back.transform(X), model.transform(X))
    assert back.transform(X).dtype == np.float32




def test_corrupted_and_tampered_files(tmp_path):
    cp = random_cp((4, 5, 6), 2, random_state=0)
    path = tmp_path / "cp.npz"
    tnml.save(cp, path)
    # tamper: rewrite one array with different values but keep the manifest
    with np.load(path) as archive:
        contents = {k: archive[k] for k in archive.files}
    contents["a1"] = contents["a1"] + 1
    np.savez(tmp_path / "tampered.npz", **contents)
    with pytest.raises(ValueError, match="checksum"):
        tnml.load(tmp_path / "tampered.npz")
    raw = path.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a valid tnml file"):
        tnml.load(tmp_path / "truncated.npz")
    np.savez(tmp_path / "foreign.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="no manifest"):
        tnml.load(tmp_path / "foreign.npz")
    with pytest.raises(FileNotFoundError):
        tnml.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="saves tnml formats and estimators"):
        tnml.save(object(), tmp_path / "x.npz")
    assert zipfile.is_zipfile(path)


@pytest.mark.parametrize("transform", ["fft", "dct", "matrix"])
def test_tubal_round_trip(transform, tmp_path):
    from tnml.decompositions import t_svd

    rng = np.random.default_rng(0)
    if transform == "matrix":
        transform = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    tubal = t_svd(rng.random((5, 6, 4)), rank=2, transform=transform)
    tnml.save(tubal, tmp_path / "t.npz")
    back = tnml.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.to_tensor(), tubal.to_tensor())
