"""Matrix product state classifier and regressor (Stoudenmire & Schwab, 2016).

The estimators validate input, learn the scaling of the features, map features to local
vectors and call the pure array functions of :mod:`tnml.supervised.mps` (two-site DMRG sweeps or
Adam). Arrays stay in the namespace of ``X`` (NumPy or CuPy).
"""

import contextlib
import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._config import check_memory
from .._validation import check_tensor
from ..backend import (
    check_random_state,
    get_namespace,
    is_numpy,
    serial_blas,
    to_device,
    to_numpy,
)
from ..supervised.mps import (
    MPSTensor,
    adam_init,
    adam_step,
    environment_bytes,
    feature_map,
    init_mps,
    mps_dmrg_sweep,
    mps_loss_and_grads,
    mps_predict,
)

__all__ = ["MPSClassifier", "MPSRegressor"]

# Scaled test features may leave [0, 1] by rounding; only a real excursion is worth a warning.
_DOMAIN_SLACK = 1e-9
# feature_scale="auto": the mean squared distance of two scaled samples that full-range angles
# suit (that of scikit-learn's 8 x 8 digits, 9.5).
_MEAN_SQ_DISTANCE = 10.0


def _small_blas(X):
    """One BLAS thread for the MPS kernels on the host (:func:`tnml.backend.serial_blas`):
    every product of a sweep is small (samples x 2D times 2D x (n_classes D)) and they run
    one after the other, so BLAS threads gain little and stall on a busy machine."""
    return serial_blas() if is_numpy(get_namespace(X)) else contextlib.nullcontext()


def _uses_adam(estimator):
    if estimator.solver != "adam":
        raise AttributeError(
            "partial_fit is only available for solver='adam' (DMRG sweeps "
            "need the whole training set)"
        )
    return True


class _MPSBase(BaseEstimator):
    """Shared fitting machinery; subclasses turn ``y`` into targets and outputs back into
    predictions (``_encode_targets``, ``_n_outputs``)."""

    def _fitted_shapes(self):
        """Shapes the fitted arrays must have (checked by :func:`tnml.load`): one site of the
        feature map's size per feature (at least two), the label index of the outputs' size
        after ``label_site_``, and the scaling of every feature."""
        n_features = int(self.n_features_in_)
        n_sites = max(2, n_features)
        n_outputs = self._fitted_n_outputs()
        if not 0 <= int(self.label_site_) < n_sites:
            raise ValueError(f"label_site_={self.label_site_} for {n_sites} sites")
        d = int(self.decomposition_.shape[0])
        shape = [d] * n_sites
        shape.insert(int(self.label_site_) + 1, n_outputs)
        return {
            "decomposition_": tuple(shape),
            "data_min_": (n_features,),
            "data_range_": (n_features,),
        }

    # What :func:`tnml.load` may restore besides the parameters (nothing else is set).
    _fitted_attributes = (
        "n_features_in_",
        "feature_names_in_",
        "classes_",
        "decomposition_",
        "bond_dims_",
        "label_site_",
        "data_min_",
        "data_range_",
        "feature_scale_",
        "loss_curve_",
        "n_iter_",
        "validation_scores_",
        "y_mean_",
        "y_scale_",
        "_y_ndim",
        "_adam",
    )

    _parameter_constraints = {
        "bond_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "feature_map": [StrOptions({"trig", "poly"}), callable],
        "scaling": [StrOptions({"feature", "global"})],
        "feature_scale": [StrOptions({"auto"}), Interval(numbers.Real, 0, 1, closed="right")],
        "normalize": ["boolean"],
        "solver": [StrOptions({"dmrg", "adam"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "cutoff": [Interval(numbers.Real, 0, 1, closed="left")],
        "n_local_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        bond_dim=20,
        *,
        feature_map="trig",
        scaling="feature",
        feature_scale="auto",
        normalize=True,
        solver="dmrg",
        max_iter=2,
        tol=1e-4,
        alpha=1e-4,
        cutoff=0.0,
        n_local_steps=5,
        learning_rate=1e-3,
        batch_size=64,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=2,
        random_state=None,
        verbose=0,
    ):
        self.bond_dim = bond_dim
        self.feature_map = feature_map
        self.scaling = scaling
        self.feature_scale = feature_scale
        self.normalize = normalize
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.cutoff = cutoff
        self.n_local_steps = n_local_steps
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    # -- input ------------------------------------------------------------------------------------
    def _validate_X(self, X, reset, y=None):
        xp = get_namespace(X)
        if is_numpy(xp):
            if y is None:
                return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32]), None
            return validate_data(
                self,
                X,
                y,
                reset=reset,
                dtype=[np.float64, np.float32],
                y_numeric=not isinstance(self, ClassifierMixin),
                multi_output=not isinstance(self, ClassifierMixin),
            )
        X = check_tensor(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if reset:
            self.n_features_in_ = int(X.shape[1])
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        if y is not None and len(y) != X.shape[0]:
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: "
                f"X has {X.shape[0]}, y has {len(y)}"
            )
        return X, y

    def _scale(self, X):
        """Features mapped to [0, 1] by the scaling learned in fit; values outside are clipped
        with a warning (they lie outside the training range)."""
        xp = get_namespace(X)
        scaled = (X - self.data_min_) / self.data_range_
        low, high = float(xp.min(scaled)), float(xp.max(scaled))
        # The scaling is stored in the fit's dtype: a float32 fit rounds the minimum and the
        # range by its epsilon relative to the features' magnitude, which float64 test
        # features equal to training ones then "leave".
        magnitude = (xp.abs(self.data_min_) + xp.abs(self.data_min_ + self.data_range_)) / (
            self.data_range_
        )
        eps = float(np.finfo(np.dtype(str(self.data_range_.dtype))).eps)
        slack = _DOMAIN_SLACK + 4 * eps * float(xp.max(magnitude))
        if low < -slack or high > 1 + slack:
            warnings.warn(
                f"X has features outside the range seen in fit (scaled values in "
                f"[{low:.3g}, {high:.3g}], the feature map's domain is [0, 1]); "
                f"they are clipped to [0, 1]",
                UserWarning,
                stacklevel=3,
            )
        scaled = xp.clip(scaled, 0.0, 1.0) * self.feature_scale_
        if scaled.shape[1] == 1:
            # A chain needs two sites; the constant extra site (phi(0)) is part of the model.
            scaled = xp.concatenate([scaled, xp.zeros_like(scaled)], axis=1)
        return scaled

    def _features(self, X):
        return feature_map(self._scale(X), self.feature_map)

    def _learn_scaling(self, X):
        xp = get_namespace(X)
        if self.scaling == "global":
            self.data_min_ = xp.full(X.shape[1], xp.min(X), dtype=X.dtype)
            span = xp.full(X.shape[1], xp.max(X), dtype=X.dtype) - self.data_min_
        else:
            self.data_min_ = xp.min(X, axis=0)
            span = xp.max(X, axis=0) - self.data_min_
        # Constant features carry no information: any positive range keeps them at 0.
        self.data_range_ = xp.where(span > 0, span, xp.ones_like(span))
        if self.feature_scale != "auto":
            self.feature_scale_ = float(self.feature_scale)
            return
        # The product states of two samples overlap as prod_j cos(pi s (x_j - x'_j) / 2),
        # about exp(-1.23 s^2 ||x - x'||^2 / 2): with many correlated features (a digit
        # upsampled to 28 x 28) every sample's state is nearly orthogonal to every other's at
        # s = 1, and the model memorises (91% test accuracy there, 98.9% at s = 0.25-0.5).
        # The scale keeps the mean squared distance of two scaled samples at most that of
        # 8 x 8 digits at s = 1 (about 10), where full range works best; pairs are fixed
        # (sample i with sample i + n/2) so that the scale is deterministic.
        n = X.shape[0]
        rows = min(n, 2000)
        first = (X[:rows] - self.data_min_) / self.data_range_
        second = (X[(xp.arange(rows) + n // 2) % n] - self.data_min_) / self.data_range_
        mean_sq = float(xp.sum((first - second) ** 2)) / rows
        self.feature_scale_ = min(1.0, math.sqrt(_MEAN_SQ_DISTANCE / mean_sq)) if mean_sq else 1.0

    # -- fitting ----------------------------------------------------------------------------------
    def _fit(self, X, y):
        with _small_blas(X):
            return self._fit_host_threads(X, y)

    def _fit_host_threads(self, X, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        X, y = self._validate_X(X, reset=True, y=y)
        Y = self._encode_targets(y, X)
        self._check_memory(X, Y.shape[1])
        self._learn_scaling(X)
        phi = self._features(X)
        rng = check_random_state(self.random_state)
        phi_val = Y_val = None
        if self.early_stopping:
            n_val = max(1, int(round(self.validation_fraction * phi.shape[0])))
            if phi.shape[0] - n_val < 2:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves "
                    f"{phi.shape[0] - n_val} training samples; need at least 2"
                )
            order = to_device(rng.permutation(phi.shape[0]), get_namespace(phi))
            phi, Y = phi[order], Y[order]
            phi_val, Y_val, phi, Y = phi[:n_val], Y[:n_val], phi[n_val:], Y[n_val:]
        cores, self.label_site_ = self._init_cores(phi, Y)
        self.loss_curve_, self.validation_scores_ = [], [] if self.early_stopping else None
        self.n_iter_ = 0
        self._adam = adam_init(cores) if self.solver == "adam" else None
        best, best_cores, stale, best_loss = -math.inf, None, 0, math.inf
        env = None
        converged = False
        progress = self._progress(phi)
        for _ in range(self.max_iter):
            if self.solver == "dmrg":
                cores, env = mps_dmrg_sweep(
                    cores,
                    self.label_site_,
                    phi,
                    Y,
                    env,
                    bond_dim=self.bond_dim,
                    cutoff=self.cutoff,
                    alpha=self.alpha,
                    n_steps=self.n_local_steps,
                    normalize=self.normalize,
                    progress=progress.update if progress is not None else None,
                )
            else:
                self._adam_epoch(cores, phi, Y, rng, progress)
            self.n_iter_ += 1
            self.loss_curve_.append(self._loss(cores, phi, Y))
            if self.verbose > 1:
                name, loss = type(self).__name__, self.loss_curve_[-1]
                print(f"{name} iteration {self.n_iter_}: training loss {loss:.6g}")
            if phi_val is not None:
                score = self._validation_score(
                    mps_predict(cores, self.label_site_, phi_val, self.normalize), Y_val
                )
                self.validation_scores_.append(score)
                if not math.isfinite(best) or score > best + self.tol * abs(best):
                    best, best_cores, stale = score, [c.copy() for c in cores], 0
                else:
                    stale += 1
                    if stale >= self.n_iter_no_change:
                        converged = True
                        break
            else:
                # As scikit-learn's MLP: stop after n_iter_no_change iterations that do not
                # improve the best training loss by tol (relative); Adam's epoch losses are
                # noisy, a single worse epoch is no convergence.
                loss = self.loss_curve_[-1]
                if not math.isfinite(best_loss) or loss < best_loss * (1 - self.tol):
                    best_loss, stale = loss, 0
                else:
                    stale += 1
                    if stale >= self.n_iter_no_change:
                        converged = True
                        break
        if progress is not None:
            progress.close()
        if best_cores is not None:
            cores = best_cores
        if not converged and self.max_iter > 1 and self.solver == "adam":
            warnings.warn(
                f"{type(self).__name__} did not converge in {self.max_iter} epochs; raise max_iter",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_model(cores)
        return self

    def _set_model(self, cores):
        self.decomposition_ = MPSTensor(cores, self.label_site_)
        self.bond_dims_ = self.decomposition_.bond_dims

    def _check_memory(self, X, n_outputs):
        """Refuse a fit whose per-sample arrays exceed ``max_memory`` before any is built."""
        n, n_sites = X.shape[0], max(2, X.shape[1])
        d = 2  # both named maps; a callable's d is known only once it has run
        rows = n if self.solver == "dmrg" else min(n, self.batch_size)
        needed = environment_bytes(
            rows, n_sites, d, self.bond_dim, n_outputs, X.dtype.itemsize, self.n_local_steps
        )
        needed += n * n_sites * d * X.dtype.itemsize  # the local features of every sample
        check_memory(
            needed,
            f"{type(self).__name__}(bond_dim={self.bond_dim}) on X of shape {tuple(X.shape)}",
        )

    def _init_cores(self, phi, Y):
        return init_mps(
            phi,
            Y.shape[1],
            self.bond_dim,
            Y=Y,
            alpha=self.alpha,
            n_steps=2 * self.n_local_steps,
            normalize=self.normalize,
        )

    def _progress(self, phi):
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        if self.solver == "dmrg":
            total = self.max_iter * 2 * (phi.shape[1] - 1)
            unit = "bond"
        else:
            total = self.max_iter * math.ceil(phi.shape[0] / self.batch_size)
            unit = "batch"
        return tqdm(total=total, desc=type(self).__name__, unit=unit)

    def _loss(self, cores, phi, Y):
        xp = get_namespace(phi)
        residual = mps_predict(cores, self.label_site_, phi, self.normalize) - Y
        return float(xp.sum(residual * residual)) / phi.shape[0]

    def _adam_epoch(self, cores, phi, Y, rng, progress):
        xp = get_namespace(phi)
        order = to_device(rng.permutation(phi.shape[0]), xp)
        for start in range(0, phi.shape[0], self.batch_size):
            batch = order[start : start + self.batch_size]
            _, grads = mps_loss_and_grads(
                cores, self.label_site_, phi[batch], Y[batch], self.normalize
            )
            adam_step(cores, grads, self._adam, self.learning_rate, alpha=self.alpha)
            if progress is not None:
                progress.update()

    def _partial_fit(self, X, y, classes=None):
        with _small_blas(X):
            return self._partial_fit_host_threads(X, y, classes)

    def _partial_fit_host_threads(self, X, y, classes):
        first = not hasattr(self, "decomposition_")
        X, y = self._validate_X(X, reset=first, y=y)
        if first:
            Y = self._encode_targets(y, X, classes=classes)
            self._check_memory(X, Y.shape[1])
            self._learn_scaling(X)
            phi = self._features(X)
            cores, self.label_site_ = self._init_cores(phi, Y)
            self._adam = adam_init(cores)
            self.loss_curve_, self.validation_scores_, self.n_iter_ = [], None, 0
        else:
            Y = self._encode_targets(y, X, refit=False)
            self._check_memory(X, Y.shape[1])
            phi = self._features(X)
            cores = list(self.decomposition_.cores)
        self._adam_epoch(cores, phi, Y, check_random_state(self.random_state), None)
        self._set_model(cores)
        self.n_iter_ += 1
        self.loss_curve_.append(self._loss(cores, phi, Y))
        return self

    def _decision(self, X):
        check_is_fitted(self)
        X, _ = self._validate_X(X, reset=False)
        with _small_blas(X):
            model = self.decomposition_
            return mps_predict(model.cores, model.label_site, self._features(X), self.normalize)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class MPSClassifier(ClassifierMixin, _MPSBase):
    """Matrix product state classifier (Stoudenmire & Schwab, 2016).

    Every feature is scaled to [0, ``feature_scale_``] (minimum and range learned in ``fit``),
    mapped to a local vector, and the product state of a sample is contracted with an MPS
    whose central site carries the label index; the class with the largest output wins.
    Each sample's output is divided by the norm of its environments at the label site (see
    ``normalize``), which does not change the winning class but keeps the outputs at the
    targets' scale on chains of hundreds of sites. Training minimises the squared error to
    one-hot targets.

    Parameters
    ----------
    bond_dim : int, default=20
        Largest bond dimension D (cost of a sweep: about
        ``28 * n_samples * n_features * (2 D)^2 * n_classes`` flops with the default
        ``n_local_steps``; bond dimensions up to a few hundred are practical).
    feature_map : {'trig', 'poly'} or callable, default='trig'
        ``'trig'``: ``[cos(pi x / 2), sin(pi x / 2)]``; ``'poly'``: ``[1, x]`` (exponential
        machine); a callable maps scaled X (n, n_features) to (n, n_features, d).
    scaling : {'feature', 'global'}, default='feature'
        ``'feature'``: every feature's own minimum and range (tabular data); ``'global'``: one
        range for all features, the paper's convention for images (a faint border pixel stays
        faint). Both reached 99.3% on digits upsampled to 14 x 14 and 28 x 28; on the 8 x 8
        digits 'feature' reached 99.3%, 'global' 98.9%.
    feature_scale : 'auto' or float in (0, 1], default='auto'
        Scaled features lie in [0, ``feature_scale``], so the angle of the 'trig' map spans
        ``[0, feature_scale * pi / 2]``. Two samples' product states overlap about
        ``exp(-1.23 feature_scale^2 ||x - x'||^2 / 2)``: with many correlated features they are
        nearly orthogonal at full range and the model memorises (28 x 28 upsampled digits: 91%
        test accuracy at 1, 98.9% at 0.25-0.5). 'auto' keeps the mean squared distance of two
        scaled training samples at most 10 (that of 8 x 8 digits at full range):
        ``min(1, sqrt(10 / mean ||x - x'||^2))``.
    normalize : bool, default=True
        Divide every sample's output by the norm of its left and right environments at the
        label site (the share of its product state that the MPS's subspaces keep); the
        environments are kept at unit norm along the sweep and their log-norms tracked.
        False fits the plain multilinear MPS (the exponential machine with 'poly'), whose
        outputs shrink geometrically along long chains.
    solver : {'dmrg', 'adam'}, default='dmrg'
        ``'dmrg'``: two-site sweeps, each bond tensor solved on the normal equations (directly
        where forming them is cheaper, else ``n_local_steps`` conjugate-gradient steps from
        the current tensor), SVD truncation to ``bond_dim``/``cutoff``, and the label core
        refitted at the end of the sweep. ``'adam'``: minibatch gradient training of all cores
        at fixed bond dimension (enables :meth:`partial_fit`).
    max_iter : int, default=2
        Sweeps (dmrg) or epochs (adam).
    tol : float, default=1e-4
        Stop when for ``n_iter_no_change`` iterations the training loss (or, with early
        stopping, the validation score) has not improved on its best by this fraction.
    alpha : float, default=1e-4
        Ridge penalty. DMRG: relative to the design's scale, ``alpha * s * ||B||^2`` added to
        the mean squared error with ``s`` the mean squared norm of a design row (1 for
        'trig' with ``normalize``). Adam: ``alpha * ||A||^2`` on every core (absolute).
        With ``bond_dim`` well below the number of classes the label index is squeezed through
        every bond it crosses, and exactly solved bond tensors truncate badly: raise
        ``alpha`` to about 1e-2 there (8 x 8 digits, 500 training images, bond_dim=4: 19%
        test accuracy at 1e-4, 87% at 1e-2; at bond_dim 8 and 20, 1e-4 is best, 96.7% and
        97.8%).
    cutoff : float, default=0.0
        Drop singular values whose share of the bond tensor's squared norm is below this
        (adaptive bond dimensions, at most ``bond_dim``).
    n_local_steps : int, default=5
        Conjugate-gradient steps per bond update where a direct solve costs more.
    learning_rate, batch_size : Adam's step size and minibatch size.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data and keep the model with the best
        validation score.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=2
        Iterations without improvement before stopping (see ``tol``).
    random_state : None, int or RandomState
    verbose : int, default=0
        1: a tqdm progress bar; 2: also the training loss after every iteration.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    decomposition_ : MPSTensor
        The fitted MPS (:class:`tnml.supervised.mps.MPSTensor`): ``cores[label_site]`` has
        shape ``(D, d, n_classes, D')``, every other core ``(D, d, D')``. A single feature
        gets a second, constant site.
    label_site_ : int
    bond_dims_ : tuple of int
    data_min_, data_range_ : arrays of shape (n_features,)
        The learned scaling ``(X - data_min_) / data_range_`` (before ``feature_scale_``).
    feature_scale_ : float
        The upper end of the scaled features' range.
    n_iter_ : int
    loss_curve_ : list of float
        Training mean squared error after every sweep or epoch.
    validation_scores_ : list of float or None
        Validation accuracy after every iteration when ``early_stopping``.
    n_features_in_ : int

    Notes
    -----
    Test features outside the training range are clipped to [0, 1] after scaling, with a
    ``UserWarning``. ``predict_proba`` is the softmax of :meth:`decision_function`'s per-class
    outputs: a monotone score, not a calibrated probability.

    References
    ----------
    E. M. Stoudenmire and D. J. Schwab, "Supervised learning with tensor networks",
    NeurIPS 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from tnml import MPSClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MPSClassifier(bond_dim=8, max_iter=1).fit(X[:500], y[:500])
    >>> clf.score(X[1000:1300], y[1000:1300]) > 0.85
    True
    """

    @staticmethod
    def _validation_score(f, Y):
        """Accuracy of the outputs ``f`` against one-hot ``Y``."""
        xp = get_namespace(f)
        return float(xp.mean(xp.argmax(f, axis=1) == xp.argmax(Y, axis=1)))

    def _fitted_n_outputs(self):
        return len(self.classes_)

    def _encode_targets(self, y, X, classes=None, refit=True):
        xp = get_namespace(X)
        y = to_numpy(y)
        if refit:
            check_classification_targets(y)
            self.classes_ = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if self.classes_.shape[0] < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes; "
                    f"got one class: {self.classes_.tolist()}"
                )
        codes = np.searchsorted(self.classes_, y)
        if np.any(codes >= self.classes_.shape[0]) or np.any(
            self.classes_[np.minimum(codes, self.classes_.shape[0] - 1)] != y
        ):
            raise ValueError(f"y has labels not in classes_ {self.classes_.tolist()}")
        return to_device(np.eye(self.classes_.shape[0], dtype=X.dtype)[codes], xp)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the MPS to labelled samples.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        return self._fit(X, y)

    @available_if(_uses_adam)
    def partial_fit(self, X, y, classes=None):
        """One Adam epoch over (X, y); the first call learns the scaling and needs ``classes``
        when y does not show every class.

        Returns
        -------
        self
        """
        if not hasattr(self, "decomposition_"):
            self._validate_params()
        return self._partial_fit(X, y, classes=classes)

    def decision_function(self, X):
        """Per-class MPS outputs (n_samples, n_classes); for two classes the difference
        ``f_1 - f_0`` (n_samples,)."""
        f = self._decision(X)
        return f[:, 1] - f[:, 0] if f.shape[1] == 2 else f

    def predict_proba(self, X):
        """Softmax of the per-class outputs (n_samples, n_classes)."""
        f = self._decision(X)
        xp = get_namespace(f)
        e = xp.exp(f - xp.max(f, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)

    def predict(self, X):
        """The class with the largest output."""
        f = self._decision(X)
        index = get_namespace(f).argmax(f, axis=1)
        if is_numpy(get_namespace(f)):
            return self.classes_[index]
        return to_device(self.classes_, get_namespace(f))[index]


class MPSRegressor(RegressorMixin, _MPSBase):
    """Matrix product state regressor: the MPS classifier's model with one output per target
    (the label index of size ``n_outputs``), fitted to standardised targets.

    Parameters are those of :class:`MPSClassifier`.

    Attributes
    ----------
    decomposition_, label_site_, bond_dims_, data_min_, data_range_, feature_scale_, n_iter_,
    loss_curve_, n_features_in_ : as in :class:`MPSClassifier`
    validation_scores_ : list of float or None
        Validation R^2 (outputs averaged uniformly) after every iteration when
        ``early_stopping``.
    y_mean_, y_scale_ : arrays of shape (n_outputs,)
        Targets are fitted as ``(y - y_mean_) / y_scale_``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml import MPSRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((300, 4))
    >>> y = X[:, 0] * X[:, 1] + X[:, 2]
    >>> MPSRegressor(bond_dim=4, random_state=0).fit(X, y).score(X, y) > 0.95
    True
    """

    @staticmethod
    def _validation_score(f, Y):
        """R^2 of the outputs ``f`` against standardised targets ``Y`` (outputs averaged
        uniformly, as :meth:`score`)."""
        xp = get_namespace(f)
        residual = xp.sum((f - Y) ** 2, axis=0)
        total = xp.sum((Y - xp.mean(Y, axis=0)) ** 2, axis=0)
        total = xp.where(total > 0, total, xp.ones_like(total))
        return float(xp.mean(1 - residual / total))

    def _fitted_n_outputs(self):
        return int(self.y_mean_.shape[0])

    def _encode_targets(self, y, X, classes=None, refit=True):
        xp = get_namespace(X)
        y = to_device(y, xp) if is_numpy(xp) else y
        Y = xp.reshape(xp.asarray(y, dtype=X.dtype), (X.shape[0], -1))
        if refit:
            self._y_ndim = y.ndim
            self.y_mean_ = xp.mean(Y, axis=0)
            std = xp.std(Y, axis=0)
            self.y_scale_ = xp.where(std > 0, std, xp.ones_like(std))
        return (Y - self.y_mean_) / self.y_scale_

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the MPS to (X, y); y of shape (n_samples,) or (n_samples, n_outputs).

        Returns
        -------
        self
        """
        return self._fit(X, y)

    @available_if(_uses_adam)
    def partial_fit(self, X, y):
        """One Adam epoch over (X, y); the first call learns the scalings.

        Returns
        -------
        self
        """
        if not hasattr(self, "decomposition_"):
            self._validate_params()
        return self._partial_fit(X, y)

    def predict(self, X):
        """Predicted targets, shaped like the y given to fit."""
        f = self._decision(X) * self.y_scale_ + self.y_mean_
        return f[:, 0] if self._y_ndim == 1 else f

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
