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

**Weighted reports.** Cross-validation that cuts each held-out engine at
*every* admissible cycle (:func:`~statespace.prognostics.truncation_splits`
with ``n_cuts="all"``) weights cut ``i`` of engine ``e`` by
:math:`w_i = 1/n_e`, so that each engine counts once: :func:`rul_report`
then gives :math:`\sqrt{\sum_i w_i d_i^2 / \sum_i w_i}`, the weighted MAE
and coverage, and :math:`S = \sum_i w_i s_i`, the *expected* score of a test
set with one cut per engine drawn as the cuts were.
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


def interval_coverage(true, lower, upper, weights=None) -> float:
    """Fraction of ``true`` values with ``lower <= true <= upper`` (weighted by ``weights``)."""
    t = as_float_array("true", true, 1)
    lo = as_float_array("lower", lower, 1)
    hi = as_float_array("upper", upper, 1)
    if not (t.shape == lo.shape == hi.shape):
        raise ShapeError(
            f"true, lower, upper: expected the same length, got {t.shape[0]}, {lo.shape[0]}, {hi.shape[0]}"
        )
    if (lo > hi).any():
        i = int(np.argmax(lo > hi))
        raise DataError(f"lower, upper: lower bound {lo[i]} above upper bound {hi[i]} at index {i}")
    w = check_weights(weights, t.shape[0])
    return float(w @ ((t >= lo) & (t <= hi)) / w.sum())


def check_weights(weights, n: int) -> np.ndarray:
    """``(n,)`` weights, all ones when ``weights`` is None; refuses a wrong length, negative or
    non-finite weights (naming the index) and an all-zero set."""
    if weights is None:
        return np.ones(n)
    w = as_float_array("weights", weights, 1)
    if w.shape[0] != n:
        raise ShapeError(f"weights: expected one weight per prediction ({n}), got {w.shape[0]}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"weights: expected finite non-negative weights, got {w[i]} at index {i}")
    if not w.sum() > 0:
        raise DataError("weights: every weight is zero")
    return w


def rul_report(predicted, true, lower=None, upper=None, weights=None) -> dict:
    """RMSE, MAE, PHM08 score (sum and per engine) and, with bounds, interval coverage and width.

    ``weights`` (one per prediction, default all 1) make every figure a weighted
    mean and the score ``sum_i w_i s_i`` (module docstring); ``n`` stays the
    number of predictions and ``total_weight`` is ``sum_i w_i``.
    """
    p, t = _pair(predicted, true)
    w = check_weights(weights, p.shape[0])
    total = float(w.sum())
    d = p - t
    out = {
        "n": int(p.shape[0]),
        "total_weight": total,
        "rmse": float(np.sqrt(w @ d**2 / total)),
        "mae": float(w @ np.abs(d) / total),
        "score": float(w @ phm08_scores(p, t)),
    }
    out["score_per_engine"] = out["score"] / total
    if lower is not None and upper is not None:
        out["coverage"] = interval_coverage(t, lower, upper, w)
        out["mean_width"] = float(w @ (np.asarray(upper, float) - np.asarray(lower, float)) / total)
    return out
