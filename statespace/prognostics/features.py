r"""Features of run-to-failure data: RUL labels, column selection, smoothing, a linear health indicator.

Dataset-free building blocks on per-engine ``(T_i, n)`` arrays; the CMAPSS
feature pipeline that chains them (``statespace.datasets.cmapss.SensorFeatures``)
lives with its loader.

* :func:`piecewise_linear_rul`: the RUL ``T-1, ..., 1, 0`` of an engine that
  fails after ``T`` cycles, optionally capped (the field's piecewise-linear target).
* :func:`informative_columns`: the columns with at least ``min_distinct``
  distinct values (drops constant and two-level quantisation-noise sensors).
* :func:`exponential_smoothing`: causal smoothing
  :math:`s_t = a x_t + (1-a) s_{t-1}`, so a truncated engine is treated exactly
  as it would be online.
* ``HealthIndicator`` (Ramasso's RULCLIPPER idea): the features projected
  on a degradation target by least squares with ridge ``lam`` on the weights,

  .. math::

      h_t = w_0 + w^\top x_t \approx \min\!\big(1, \mathrm{RUL}_t / c\big),

  1 while healthy and falling linearly to 0 at failure over the last ``c`` cycles.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, ParameterError, ShapeError
from ..validation import as_float_array, as_sequences, check_int, check_real


def piecewise_linear_rul(length: int, cap: float | None = None) -> np.ndarray:
    """RUL ``T-1, ..., 1, 0`` of a run-to-failure engine, capped at ``cap`` when given."""
    rul = np.arange(check_int("length", length, minimum=0) - 1, -1, -1, dtype=np.float64)
    return rul if cap is None else np.minimum(rul, check_real("cap", cap, 0.0))


def exponential_smoothing(x, alpha: float) -> np.ndarray:
    """Causal exponential smoothing along axis 0 (``alpha = 1`` returns ``x``)."""
    x = as_float_array("x", x, (1, 2))
    if not 0.0 < alpha <= 1.0:
        raise ParameterError(f"alpha: expected 0 < alpha <= 1, got {alpha}")
    out = np.empty_like(x)
    out[0] = x[0]
    for t in range(1, len(x)):
        out[t] = alpha * x[t] + (1.0 - alpha) * out[t - 1]
    return out


def informative_columns(x, min_distinct: int = 3) -> np.ndarray:
    """Indices of columns of ``x`` with at least ``min_distinct`` distinct values."""
    x = as_float_array("x", x, 2)
    return np.asarray([j for j in range(x.shape[1]) if len(np.unique(x[:, j])) >= min_distinct], dtype=np.int64)


def _as_engines(name, seqs, width=None):
    """A non-empty list of per-engine ``(T_i, n)`` finite arrays (the sequence rule, with no missing values)."""
    engines, single = as_sequences(name, seqs, width, allow_nan=False)
    if single:
        raise ShapeError(f"{name}: expected a list of per-engine (T_i, n) arrays, got one array")
    return engines


class HealthIndicator:
    """Linear health indicator: ridge regression of features on ``min(1, RUL / cap)``.

    Args:
        cap: cycles before failure over which the target falls from 1 to 0.
        lam: ridge penalty on the weights (not on the intercept).
    """

    def __init__(self, cap: float = 125.0, lam: float = 1e-3):
        self.cap = check_real("cap", cap, 0.0, strict=True)
        self.lam = check_real("lam", lam, 0.0)

    def fit(self, features, rul=None) -> HealthIndicator:
        """Fit on run-to-failure engines (``rul`` defaults to ``T-1, ..., 0`` per engine)."""
        features = _as_engines("features", features)
        if rul is None:
            rul = [piecewise_linear_rul(len(f)) for f in features]
        if len(rul) != len(features):
            raise ShapeError(f"rul: got {len(rul)} engines for {len(features)} feature engines")
        X = np.vstack(features)
        y = np.minimum(1.0, np.concatenate([np.asarray(r, float) for r in rul]) / self.cap)
        if len(y) != len(X):
            raise ShapeError(f"rul: {len(y)} values in total for {len(X)} feature rows")
        X1 = np.c_[np.ones(len(X)), X]
        pen = self.lam * len(X) * np.eye(X1.shape[1])
        pen[0, 0] = 0.0
        self.weights_ = np.linalg.solve(X1.T @ X1 + pen, X1.T @ y)
        return self

    def transform(self, features) -> list[np.ndarray]:
        """Per-engine health indicators ``(T_i,)`` (about 1 healthy, 0 at failure)."""
        if not hasattr(self, "weights_"):
            raise DataError("HealthIndicator: call fit before transform")
        features = _as_engines("features", features, len(self.weights_) - 1)
        return [self.weights_[0] + f @ self.weights_[1:] for f in features]

    def fit_transform(self, features, rul=None) -> list[np.ndarray]:
        """:meth:`fit` on the engines ``features`` (and ``rul``), then :meth:`transform` them.

        Returns the per-engine indicators ``(T_i,)`` of the training engines; errors as in
        :meth:`fit` and :meth:`transform`.
        """
        return self.fit(features, rul).transform(features)
