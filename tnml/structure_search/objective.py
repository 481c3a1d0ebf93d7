"""What a structure search minimises.

The papers (TNLS, TnALE) score a candidate by ``params / entries + lambda * RSE^2``: the
compression ratio plus a weighted squared relative error. The constrained form asks for the
fewest parameters whose RSE is at most ``max_rse``; an infeasible structure scores above every
feasible one and below any worse infeasible one, so local searches still see a slope. With
missing data the RSE is measured on held-out observed entries (see :func:`holdout_split`).
"""

import numbers

import numpy as np

from ..decompositions import split_mask

__all__ = ["Objective", "holdout_split"]

# Infeasible structures score this much plus their error ratio: above any compression ratio.
_INFEASIBLE = 1e3


class Objective:
    """Score of a fitted structure from its parameter count and relative error.

    Parameters
    ----------
    kind : {'penalized', 'constrained'}
        'penalized': ``n_params / n_entries + rse_weight * rse ** 2``. 'constrained':
        ``n_params / n_entries`` when ``rse <= max_rse``, else ``1000 + rse / max_rse``.
    rse_weight : float
        The papers' lambda (200 for their ring search, 5 for images).
    max_rse : float
        The error bound of the constrained form.

    Examples
    --------
    >>> Objective("penalized", rse_weight=200)(126, 729, 0.01)
    0.1928...
    >>> Objective("constrained", max_rse=0.1)(126, 729, 0.05)
    0.1728...
    >>> Objective("constrained", max_rse=0.1)(10, 729, 0.2) > 1000
    True
    """

    def __init__(self, kind="penalized", *, rse_weight=200.0, max_rse=1e-4):
        if kind not in ("penalized", "constrained"):
            raise ValueError(f"objective must be 'penalized' or 'constrained', got {kind!r}")
        for name, value in (("rse_weight", rse_weight), ("max_rse", max_rse)):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not value > 0
                or not np.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self.kind, self.rse_weight, self.max_rse = kind, float(rse_weight), float(max_rse)

    def __call__(self, n_params, n_entries, rse):
        if not np.isfinite(rse):
            return float("inf")
        ratio = n_params / n_entries
        if self.kind == "penalized":
            return float(ratio + self.rse_weight * rse**2)
        return float(ratio if rse <= self.max_rse else _INFEASIBLE + rse / self.max_rse)

    def resolution(self, n_entries):
        """The RSE below which a better fit no longer changes the score noticeably.

        Penalized: where ``rse_weight * RSE^2`` is a ten-thousandth of one parameter's
        share of the compression ratio; constrained: a tenth of ``max_rse``. Fits stop there.

        Examples
        --------
        >>> round(Objective("penalized", rse_weight=200).resolution(729), 7)
        2.62e-05
        """
        if self.kind == "penalized":
            return float(np.sqrt(1e-4 / (n_entries * self.rse_weight)))
        return self.max_rse / 10

    def settings(self):
        return {"kind": self.kind, "rse_weight": self.rse_weight, "max_rse": self.max_rse}


# The split of observed entries into fitting and held-out ones: the one of the completion
# estimators (same draws for the same seed), kept under this module's name.
holdout_split = split_mask
