"""Real data sets bundled with tnml's dependencies (no download at run time)."""

import numpy as np

__all__ = ["load_indian_pines", "load_kinetic"]


def load_indian_pines():
    """The Indian Pines hyperspectral cube, 145 x 145 pixels x 200 bands, float64.

    Bundled with TensorLy (``tensorly.datasets.load_indian_pines``).

    Examples
    --------
    >>> from tnml.datasets import load_indian_pines
    >>> load_indian_pines().shape
    (145, 145, 200)
    """
    from tensorly.datasets import load_indian_pines as tl_load

    return np.ascontiguousarray(tl_load()["tensor"], dtype=np.float64)


def load_kinetic():
    """The Kinetic fluorescence tensor bundled with TensorLy, float64.

    Examples
    --------
    >>> from tnml.datasets import load_kinetic
    >>> load_kinetic().ndim
    4
    """
    from tensorly.datasets import load_kinetic as tl_load

    return np.ascontiguousarray(tl_load()["tensor"], dtype=np.float64)
