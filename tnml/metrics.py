"""Scores for reconstructions."""

from .backend import get_namespace

__all__ = ["rse"]


def rse(X_true, X_pred):
    """Relative squared error's root: ``||X_true - X_pred||_F / ||X_true||_F``.

    Examples
    --------
    >>> import numpy as np
    >>> from tnml.metrics import rse
    >>> rse(np.ones(4), np.zeros(4))
    1.0
    """
    xp = get_namespace(X_true, X_pred)
    if X_true.shape != X_pred.shape:
        raise ValueError(f"X_true and X_pred must have the same shape, got {X_true.shape} and "
                         f"{X_pred.shape}")
    norm = float(xp.linalg.norm(X_true))
    return float(xp.linalg.norm(X_true - X_pred)) / (norm or 1.0)
