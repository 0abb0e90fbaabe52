r"""Prognostic accuracy metrics of the PHM08 challenge and its successors.

With :math:`d_i = \widehat{\mathrm{RUL}}_i - \mathrm{RUL}_i` (predicted minus true):

.. math::

    \mathrm{RMSE} = \sqrt{\tfrac1n \textstyle\sum_i d_i^2}, \qquad
    S = \sum_i s_i, \quad s_i = \begin{cases} e^{-d_i/13} - 1 & d_i < 0 \text{ (early)} \\
                                               e^{d_i/10} - 1 & d_i \ge 0 \text{ (late)} \end{cases}

The score :math:`S` is a *sum* (it grows with the number of engines) and
punishes late predictions more, because a late maintenance call is the costly
mistake. Coverage of a predictive interval is the fraction of true values
inside ``[lower, upper]`` (both ends included, RULs being whole cycles).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, ShapeError
from ..validation import as_float_array


def _pair(predicted, true):
    p = as_float_array("predicted", predicted, 1)
    t = as_float_array("true", true, 1)
    if p.shape != t.shape:
        raise ShapeError(f"predicted, true: expected the same length, got {p.shape[0]} and {t.shape[0]}")
    if p.size == 0:
        raise ShapeError("predicted: expected at least one prediction")
    for name, a in (("predicted", p), ("true", t)):
        if not np.isfinite(a).all():
            i = int(np.argmax(~np.isfinite(a)))
            raise DataError(f"{name}: non-finite value {a[i]} at index {i}")
    return p, t


def rmse(predicted, true) -> float:
    """Root mean squared error."""
    p, t = _pair(predicted, true)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(predicted, true) -> float:
    """Mean absolute error."""
    p, t = _pair(predicted, true)
    return float(np.mean(np.abs(p - t)))


def phm08_scores(predicted, true) -> np.ndarray:
    """Per-engine PHM08 scores ``s_i`` (see the module docstring)."""
    p, t = _pair(predicted, true)
    d = p - t
    return np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))


def phm08_score(predicted, true) -> float:
    """The PHM08 score ``S``: the sum of :func:`phm08_scores`."""
    return float(np.sum(phm08_scores(predicted, true)))


def interval_coverage(true, lower, upper) -> float:
    """Fraction of ``true`` values with ``lower <= true <= upper``."""
    t = as_float_array("true", true, 1)
    lo = as_float_array("lower", lower, 1)
    hi = as_float_array("upper", upper, 1)
    if not (t.shape == lo.shape == hi.shape):
        raise ShapeError(f"true, lower, upper: expected the same length, got {t.shape[0]}, {lo.shape[0]}, {hi.shape[0]}")
    if (lo > hi).any():
        i = int(np.argmax(lo > hi))
        raise DataError(f"lower, upper: lower bound {lo[i]} above upper bound {hi[i]} at index {i}")
    return float(np.mean((t >= lo) & (t <= hi)))


def rul_report(predicted, true, lower=None, upper=None) -> dict:
    """RMSE, MAE, PHM08 score (sum and per engine) and, with bounds, interval coverage and width."""
    out = {
        "n": int(len(np.asarray(true))),
        "rmse": rmse(predicted, true),
        "mae": mae(predicted, true),
        "score": phm08_score(predicted, true),
    }
    out["score_per_engine"] = out["score"] / out["n"]
    if lower is not None and upper is not None:
        out["coverage"] = interval_coverage(true, lower, upper)
        out["mean_width"] = float(np.mean(np.asarray(upper, float) - np.asarray(lower, float)))
    return out
