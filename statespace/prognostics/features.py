r"""Feature pipeline for run-to-failure sensor data: selection, normalisation, health indicators.

Steps, each fitted on training engines only and applied unchanged to new ones:

1. **Selection**: drop sensors with fewer than ``min_distinct`` distinct values
   in the training data (constant, or two-level quantisation noise: on CMAPSS
   FD001 this drops sensors 1, 5, 6, 10, 16, 18, 19 and keeps the usual 14).
2. **Normalisation** per operating condition
   (:class:`~statespace.datasets.OperatingConditionNormalizer`; one condition
   is a plain z-score).
3. **Baseline removal** (optional): subtract each engine's mean over its first
   ``baseline_cycles`` cycles. Engines start healthy but with different initial
   wear and manufacturing variation; removing the offset leaves the
   *degradation* in the signal.
4. **Health channel** (optional, ``health_cap``): one more column, the health
   indicator below computed from the normalised features *before* baseline
   removal, standardised over the training cycles. Baseline removal keeps the
   degradation since the engine's start but drops where the engine stands
   relative to failure: an engine that started worn fails after less
   degradation. On CMAPSS FD001 the ARPHMM with this channel predicts the last
   cycles far better (cross-validated RMSE 2.3 against 9.5 for true RUL 1-5;
   docs/cmapss.md).
5. **Smoothing** (optional): causal exponential smoothing
   :math:`s_t = a x_t + (1-a) s_{t-1}` of every column (causal, so a truncated
   engine is treated exactly as it would be online).

A **health indicator** (Ramasso's RULCLIPPER idea) projects the features on a
degradation target: a least-squares regression (ridge ``lam``)

.. math::

    h_t = w_0 + w^\top x_t \approx \min\!\big(1, \mathrm{RUL}_t / c\big),

1 while healthy and falling linearly to 0 at failure over the last ``c`` cycles
(the piecewise-linear target of the field).
"""

from __future__ import annotations

import numpy as np

from ..datasets.cmapss import OperatingConditionNormalizer
from ..errors import DataError, ParameterError, ShapeError
from ..validation import as_float_array, check_int, check_real


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
    if not isinstance(seqs, (list, tuple)) or not seqs:
        raise ShapeError(f"{name}: expected a non-empty list of per-engine (T_i, n) arrays")
    out = []
    for i, s in enumerate(seqs):
        a = as_float_array(f"{name}[{i}]", s, 2)
        if len(a) == 0:
            raise ShapeError(f"{name}[{i}]: engine has no cycles")
        if width is not None and a.shape[1] != width:
            raise ShapeError(f"{name}[{i}]: expected {width} columns, got {a.shape[1]}")
        if not np.isfinite(a).all():
            t, j = np.argwhere(~np.isfinite(a))[0]
            raise DataError(f"{name}[{i}]: non-finite value at cycle index {t}, column {j}")
        out.append(a)
    return out


class SensorFeatures:
    """Selection, per-condition normalisation, baseline removal and smoothing (see module docstring).

    Args:
        min_distinct: a sensor needs this many distinct training values to be kept.
        n_conditions: operating conditions (``None``: detected by clustering the settings).
        baseline_cycles: cycles averaged for the per-engine baseline (0: none).
        alpha: smoothing weight in ``(0, 1]`` (1: none).
        health_cap: append the health channel, a :class:`HealthIndicator` with this cap fitted
            on the normalised features before baseline removal (``None``: no channel). ``fit``
            then needs run-to-failure engines: the last cycle of each is its failure.
    """

    def __init__(self, min_distinct: int = 3, n_conditions: int | None = None, baseline_cycles: int = 0, alpha: float = 1.0,
                 health_cap: float | None = None):
        self.baseline_cycles = check_int("baseline_cycles", baseline_cycles, minimum=0)
        self.alpha = check_real("alpha", alpha, 0.0, 1.0)
        if self.alpha == 0.0:
            raise ParameterError("alpha: expected 0 < alpha <= 1, got 0.0")
        self.health_cap = None if health_cap is None else check_real("health_cap", health_cap, 0.0, strict=True)
        self.min_distinct = check_int("min_distinct", min_distinct, minimum=1)
        self.n_conditions = None if n_conditions is None else check_int("n_conditions", n_conditions, minimum=1)

    def fit(self, sensors, settings=None) -> SensorFeatures:
        """Learn the kept columns and the normalisation from training engines (lists of arrays)."""
        sensors = _as_engines("sensors", sensors)
        self.n_sensors_ = sensors[0].shape[1]
        sensors = _as_engines("sensors", sensors, self.n_sensors_)
        settings = self._settings(settings, sensors)
        allx = np.vstack(sensors)
        self.columns_ = informative_columns(allx, self.min_distinct)
        if self.columns_.size == 0:
            raise DataError(f"sensors: no column has {self.min_distinct} distinct values; nothing to learn from")
        self.normalizer_ = OperatingConditionNormalizer(self.n_conditions).fit(np.vstack(settings), allx[:, self.columns_])
        if self.health_cap is not None:
            levels = [self.normalizer_.transform(s, x[:, self.columns_]) for x, s in zip(sensors, settings)]
            self.health_ = HealthIndicator(cap=self.health_cap).fit(levels)
            h = np.concatenate(self.health_.transform(levels))
            self.health_loc_, self.health_scale_ = float(h.mean()), float(h.std())
            if not self.health_scale_ > 0:
                raise DataError("sensors: the health indicator is constant over the training cycles")
        return self

    @property
    def n_features(self) -> int:
        """Columns of :meth:`transform`'s arrays: the kept sensors, plus one for the health channel."""
        if not hasattr(self, "columns_"):
            raise DataError("SensorFeatures: call fit before asking for n_features")
        return len(self.columns_) + (self.health_cap is not None)

    def transform(self, sensors, settings=None) -> list[np.ndarray]:
        """Per-engine feature arrays ``(T_i, n_kept)``."""
        if not hasattr(self, "columns_"):
            raise DataError("SensorFeatures: call fit before transform")
        sensors = _as_engines("sensors", sensors, self.n_sensors_)
        settings = self._settings(settings, sensors)
        out = []
        for x, s in zip(sensors, settings):
            level = self.normalizer_.transform(s, x[:, self.columns_])
            z = level - level[: self.baseline_cycles].mean(axis=0) if self.baseline_cycles else level
            if self.health_cap is not None:
                h = (self.health_.transform([level])[0] - self.health_loc_) / self.health_scale_
                z = np.c_[z, h]
            if self.alpha < 1.0:
                z = exponential_smoothing(z, self.alpha)
            out.append(z)
        return out

    def fit_transform(self, sensors, settings=None) -> list[np.ndarray]:
        return self.fit(sensors, settings).transform(sensors, settings)

    @staticmethod
    def _settings(settings, sensors):
        if settings is None:
            return [np.zeros((len(x), 1)) for x in sensors]
        settings = _as_engines("settings", settings)
        if len(settings) != len(sensors):
            raise ShapeError(f"settings: got {len(settings)} engines for {len(sensors)} sensor engines")
        for i, (s, x) in enumerate(zip(settings, sensors)):
            if len(s) != len(x):
                raise ShapeError(f"settings[{i}]: {len(s)} cycles but sensors[{i}] has {len(x)}")
        return settings


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
        return self.fit(features, rul).transform(features)
