r"""Features of CMAPSS engines: per-condition normalisation and the sensor pipeline the RUL models read.

An engine is a ``(T, 21)`` array of sensors and a ``(T, 3)`` array of
operating settings (:mod:`statespace.datasets.cmapss.loader`). Two steps
are specific to this layout:

* :class:`OperatingConditionNormalizer`: the settings sit on a few tight
  clusters (flight regimes); k-means on the standardised settings finds them,
  and each sensor is standardised within its regime,
  :math:`\tilde x_{tj} = (x_{tj} - m_{c_t j}) / s_{c_t j}` with :math:`c_t` the
  nearest cluster centre of the settings at cycle ``t``.
* :class:`SensorFeatures`: the pipeline fitted on training engines only and
  applied unchanged to new ones:

  1. **Selection**: drop sensors with fewer than ``min_distinct`` distinct
     values in the training data (constant, or two-level quantisation noise:
     on FD001 this drops sensors 1, 5, 6, 10, 16, 18, 19 and keeps the usual 14;
     :func:`statespace.prognostics.informative_columns`).
  2. **Normalisation** per operating condition (one condition is a plain z-score).
  3. **Baseline removal** (optional): subtract each engine's mean over its
     first ``baseline_cycles`` cycles. Engines start healthy but with different
     initial wear and manufacturing variation; removing the offset leaves the
     *degradation* in the signal.
  4. **Health channel** (optional, ``health_cap``): one more column, the
     health indicator (:class:`statespace.prognostics.HealthIndicator`) of the
     normalised features *before* baseline removal, standardised over the
     training cycles. Baseline removal keeps the degradation since the
     engine's start but drops where the engine stands relative to failure: an
     engine that started worn fails after less degradation.
  5. **Smoothing** (optional): causal exponential smoothing
     :math:`s_t = a x_t + (1-a) s_{t-1}` of every column
     (:func:`statespace.prognostics.exponential_smoothing`; causal, so a
     truncated engine is treated exactly as it would be online).

Example::

    # needs data: NASA CMAPSS FD001 in the folder named by $CMAPSS_DIR
    import os
    from statespace.datasets.cmapss import SensorFeatures, load_cmapss
    data = load_cmapss(os.environ["CMAPSS_DIR"], "FD001")
    sensors = data.train.split(data.train.sensors)
    settings = data.train.split(data.train.settings)
    feats = SensorFeatures(baseline_cycles=31, health_cap=125.0)
    x = feats.fit_transform(sensors, settings)       # list of (T_i, 15) arrays
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ...errors import DataError, ParameterError, ShapeError
from ...prognostics.features import HealthIndicator, _as_engines, exponential_smoothing, informative_columns
from ...validation import as_rng, check_int, check_real


class SensorFeatures:
    """Selection, per-condition normalisation, baseline removal and smoothing (see module docstring).

    Args:
        min_distinct: a sensor needs this many distinct training values to be kept.
        n_conditions: operating conditions (``None``: detected by clustering the settings).
        baseline_cycles: cycles averaged for the per-engine baseline (0: none).
        alpha: smoothing weight in ``(0, 1]`` (1: none).
        health_cap: append the health channel, a ``HealthIndicator`` with this cap fitted
            on the normalised features before baseline removal (``None``: no channel). ``fit``
            then needs run-to-failure engines: the last cycle of each is its failure.
    """

    def __init__(
        self,
        min_distinct: int = 3,
        n_conditions: int | None = None,
        baseline_cycles: int = 0,
        alpha: float = 1.0,
        health_cap: float | None = None,
    ):
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
        self.normalizer_ = OperatingConditionNormalizer(self.n_conditions).fit(
            np.vstack(settings), allx[:, self.columns_]
        )
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
        """:meth:`fit` on the training engines, then :meth:`transform` them.

        Args:
            sensors: one ``(T_i, n_sensors)`` array per engine.
            settings: the matching ``(T_i, n_settings)`` operating settings, or ``None``
                (one operating condition: a plain z-score).

        Returns:
            One ``(T_i, n_features)`` feature array per engine.
        """
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


class OperatingConditionNormalizer:
    """Standardise sensors within each operating condition (clusters of the settings).

    The settings of CMAPSS sit on a few tight clusters (one for FD001/FD003, six
    for FD002/FD004). ``fit`` finds them by k-means on the standardised settings;
    with ``n_conditions=None`` it keeps the largest k (up to ``max_conditions``)
    whose clusters are *well separated*: the closest two centres are more than
    ``separation`` times the largest within-cluster RMS radius apart (noise
    around a single regime, as in FD001, never passes, so k = 1). It stores each
    sensor's mean and standard deviation per cluster; ``transform`` assigns rows
    to the nearest cluster and standardises. Sensors constant within a cluster
    get standard deviation 1 (they carry no information there and stay at 0).
    """

    def __init__(self, n_conditions: int | None = None, max_conditions: int = 10, separation: float = 10.0, rng=0):
        self.n_conditions = None if n_conditions is None else check_int("n_conditions", n_conditions, minimum=1)
        self.max_conditions = check_int("max_conditions", max_conditions, minimum=1)
        self.separation = check_real("separation", separation, 0.0, strict=True)
        as_rng(rng)  # checked here, drawn from in fit
        self.rng = rng

    def fit(self, settings, sensors) -> OperatingConditionNormalizer:
        """Find the operating conditions of ``settings`` and each sensor's mean and scale within each.

        Args:
            settings: ``(N, s)`` operational settings, the rows of all engines stacked.
            sensors: ``(N, n)`` sensor values, row-aligned with ``settings``.

        Returns:
            ``self``, with ``centers_`` (``(k, s)`` cluster centres of the standardised
            settings) and ``means_``, ``scales_`` (``(k, n)`` per condition and sensor).

        Raises:
            ShapeError: the arrays are not 2-D with the same number of rows.
            DataError: ``n_conditions`` exceeds the number of rows.
        """
        settings, sensors = _check_rows(settings, sensors)
        self.settings_mean_ = settings.mean(0)
        self.settings_scale_ = np.where(settings.std(0) > 0, settings.std(0), 1.0)
        z = (settings - self.settings_mean_) / self.settings_scale_
        rng = as_rng(self.rng)
        if self.n_conditions is not None:
            k = self.n_conditions
            centers, labels = _kmeans(z, k, rng)
        else:
            # choose k on a subsample (clusters are tight, a few thousand rows are plenty)
            sub = z[rng.permutation(len(z))[:2000]]
            k_best = 1
            for k in range(2, min(self.max_conditions, len(sub)) + 1):
                c, lab = _kmeans(sub, k, rng)
                radius = max(
                    np.sqrt(np.mean(np.sum((sub[lab == j] - c[j]) ** 2, axis=1))) if np.any(lab == j) else 0.0
                    for j in range(k)
                )
                gap = min(np.linalg.norm(c[i] - c[j]) for i in range(k) for j in range(i + 1, k))
                if gap > self.separation * radius:
                    k_best = k
            centers, labels = _kmeans(z, k_best, rng)
        self.centers_ = centers
        k = len(centers)
        self.means_ = np.zeros((k, sensors.shape[1]))
        self.scales_ = np.ones((k, sensors.shape[1]))
        for j in range(k):
            block = sensors[labels == j]
            self.means_[j] = block.mean(0)
            sd = block.std(0)
            self.scales_[j] = np.where(sd > 1e-12 * np.maximum(1.0, np.abs(self.means_[j])), sd, 1.0)
        return self

    def conditions(self, settings) -> np.ndarray:
        """``(N,)`` index of the operating condition of each row."""
        settings = np.asarray(settings, dtype=np.float64)
        z = (settings - self.settings_mean_) / self.settings_scale_
        return np.argmin(((z[:, None, :] - self.centers_[None]) ** 2).sum(-1), axis=1)

    def transform(self, settings, sensors) -> np.ndarray:
        """Standardise each row within its operating condition: ``(sensors - means_[c]) / scales_[c]``.

        ``c`` is the condition whose centre is nearest to the row's standardised settings
        (:meth:`conditions`). Arguments as in :meth:`fit`; returns an ``(N, n)`` array.

        Raises:
            DataError: called before :meth:`fit`.
            ShapeError: rows of ``settings`` and ``sensors`` differ, or ``sensors`` does not
                have the columns seen by :meth:`fit`.
        """
        settings, sensors = _check_rows(settings, sensors)
        if not hasattr(self, "centers_"):
            raise DataError("OperatingConditionNormalizer: call fit before transform")
        if sensors.shape[1] != self.means_.shape[1]:
            raise ShapeError(f"sensors: expected {self.means_.shape[1]} columns as in fit, got {sensors.shape[1]}")
        c = self.conditions(settings)
        return (sensors - self.means_[c]) / self.scales_[c]

    def fit_transform(self, settings, sensors) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same rows: the ``(N, n)`` standardised sensors."""
        return self.fit(settings, sensors).transform(settings, sensors)


def _check_rows(settings, sensors):
    settings = np.asarray(settings, dtype=np.float64)
    sensors = np.asarray(sensors, dtype=np.float64)
    if settings.ndim != 2 or sensors.ndim != 2 or len(settings) != len(sensors):
        raise ShapeError(
            f"settings, sensors: expected 2-D arrays with the same number of rows, got {settings.shape} and {sensors.shape}"
        )
    return settings, sensors


def _kmeans(z: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 4):
    """Best of ``n_init`` k-means runs (lowest within-cluster sum of squares)."""
    best = None
    for _ in range(n_init if k > 1 else 1):
        centers, labels = _lloyd(z, k, rng)
        inertia = float(np.sum((z - centers[labels]) ** 2))
        if best is None or inertia < best[0]:
            best = (inertia, centers, labels)
    return best[1], best[2]


def _lloyd(z: np.ndarray, k: int, rng: np.random.Generator, n_iter: int = 50):
    """Lloyd's k-means with k-means++ seeding (a few thousand rows, a few dimensions).

    Each iteration assigns the rows to their nearest centre (:func:`_nearest_centres`, a compiled
    loop; the first nearest on a tie, as ``argmin``) and moves every centre to the mean of its rows by
    weighted counts: no ``(n, k, s)`` temporary, no masked mean per centre. On settings without
    distinct conditions (FD001's are noise) the iterations take 10 to 50 rounds at each of the 36
    trial runs of a fit, so the rounds must be cheap."""
    n = len(z)
    if k > n:
        raise DataError(f"n_conditions: {k} clusters requested for {n} rows")
    centers = [z[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((z[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centers.append(z[rng.choice(n, p=p)])
    centers = np.asarray(centers)
    labels = np.zeros(n, dtype=np.int64)
    for it in range(n_iter):
        new = _nearest_centres(z, centers)
        if it > 0 and np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        for j in range(z.shape[1]):
            centers[filled, j] = np.bincount(labels, weights=z[:, j], minlength=k)[filled] / counts[filled]
    return centers, labels


@nb.njit(cache=True)
def _nearest_centres(z, centers):
    """Each row's nearest centre: squared distances summed over the columns in order, the first
    centre on a tie (the labels of scipy's ``vq``, without importing ``scipy.spatial``)."""
    labels = np.empty(z.shape[0], dtype=np.int64)
    for i in range(z.shape[0]):
        best, label = np.inf, 0
        for j in range(centers.shape[0]):
            d = 0.0
            for t in range(z.shape[1]):
                e = z[i, t] - centers[j, t]
                d += e * e
            if d < best:
                best, label = d, j
        labels[i] = label
    return labels
