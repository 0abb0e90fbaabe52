r"""NASA's CMAPSS turbofan run-to-failure data (Saxena et al., PHM08).

Each subset ``FD001`` ... ``FD004`` is three whitespace-separated text files in one
directory: ``train_FD00x.txt`` (engines run to failure), ``test_FD00x.txt``
(engines stopped some time before failure) and, when the user has it,
``RUL_FD00x.txt`` (the true remaining useful life after the last test cycle, one
integer per line). A data row is 26 numbers:

    unit, cycle, setting_1..setting_3, sensor_1..sensor_21

Units are numbered from 1; within a unit, cycles run 1, 2, ..., T. The remaining
useful life of a training engine at cycle ``t`` is ``T - t`` (0 at its last
cycle), the convention of the PHM08 challenge.

FD002 and FD004 mix six operating conditions (flight regimes) that shift every
sensor far more than wear does; :class:`OperatingConditionNormalizer` clusters
the three settings (k-means) and standardises each sensor within its regime.

Example::

    from statespace.datasets import load_cmapss
    data = load_cmapss("/path/to/CMAPSSData", "FD001")
    data.train.n_units, data.train.sensors.shape        # 100, (20631, 21)
    engines = data.train.split(data.train.sensors)      # list of (T_i, 21) arrays

The library never assumes where the files live: users pass their own directory.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..errors import DataError, ShapeError
from ..validation import as_rng, check_int, check_real

SUBSETS = ("FD001", "FD002", "FD003", "FD004")
N_COLUMNS = 26
SETTING_NAMES = tuple(f"setting_{i}" for i in range(1, 4))
SENSOR_NAMES = tuple(f"sensor_{i}" for i in range(1, 22))


class CMAPSSTable(NamedTuple):
    """One CMAPSS file, row-aligned arrays sorted by unit then cycle.

    Attributes:
        units: ``(N,)`` int unit numbers (1-based, as in the file).
        cycles: ``(N,)`` int cycle numbers, ``1..T_u`` within each unit.
        settings: ``(N, 3)`` operational settings.
        sensors: ``(N, 21)`` sensor measurements.
    """

    units: np.ndarray
    cycles: np.ndarray
    settings: np.ndarray
    sensors: np.ndarray

    @property
    def unit_ids(self) -> np.ndarray:
        """The distinct unit numbers, in file order."""
        return self.units[np.r_[True, self.units[1:] != self.units[:-1]]]

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    @property
    def lengths(self) -> np.ndarray:
        """``(n_units,)`` number of cycles of each unit."""
        starts = np.flatnonzero(np.r_[True, self.units[1:] != self.units[:-1]])
        return np.diff(np.r_[starts, len(self.units)])

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Cut a row-aligned array (``(N, ...)``) into one array per unit."""
        values = np.asarray(values)
        if values.shape[0] != len(self.units):
            raise ShapeError(f"values: expected {len(self.units)} rows (one per data row), got {values.shape[0]}")
        return np.split(values, np.cumsum(self.lengths)[:-1])

    def rul(self) -> np.ndarray:
        """``(N,)`` remaining useful life ``T_u - t`` of each row (meaningful for run-to-failure data)."""
        return np.concatenate([np.arange(n - 1, -1, -1) for n in self.lengths]).astype(np.int64)


class CMAPSSData(NamedTuple):
    """A CMAPSS subset: training and test tables and, when available, the true test RULs."""

    subset: str
    train: CMAPSSTable
    test: CMAPSSTable
    test_rul: np.ndarray | None


#: Largest unit/cycle number or RUL accepted: integers above 2**53 are not exact in float64.
MAX_INTEGER = 2**53
COLUMN_NAMES = ("unit", "cycle") + SETTING_NAMES + SENSOR_NAMES


def _where(path, lineno: int, column: int | None = None) -> str:
    """``"<path>: line 7, column 2 (cycle)"``: lines count every line of the file from 1."""
    col = "" if column is None else f", column {column + 1} ({COLUMN_NAMES[column]})"
    return f"{path}: line {lineno}{col}"


def read_cmapss_table(path) -> CMAPSSTable:
    """Read one CMAPSS data file, checking its layout row by row.

    Errors name the file, the line (1-based, counting every line of the file,
    blank ones included, although blank lines are skipped), the column and what
    was expected.

    Raises:
        FileNotFoundError: the file does not exist.
        DataError: a row does not have 26 numbers, a value is not finite, a unit
            or cycle number is not an integer from 1 to ``2**53``, units are not
            contiguous, or the cycles of a unit do not run 1, 2, 3, ...
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CMAPSS file not found: {path!r}")
    rows, lines = [], []
    with open(path, encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != N_COLUMNS:
                raise DataError(
                    f"{path}: line {lineno} has {len(fields)} fields, expected {N_COLUMNS} "
                    "(unit, cycle, 3 settings, 21 sensors)"
                )
            try:
                rows.append([float(f) for f in fields])
            except ValueError:
                c = next(c for c, f in enumerate(fields) if not _is_number(f))
                raise DataError(f"{_where(path, lineno, c)}: {fields[c]!r} is not a number") from None
            lines.append(lineno)
    if not rows:
        raise DataError(f"{path}: no data rows")
    data = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(data).all():
        r, c = np.argwhere(~np.isfinite(data))[0]
        raise DataError(f"{_where(path, lines[r], c)}: non-finite value {data[r, c]}; expected a finite number")
    for c in (0, 1):
        col = data[:, c]
        bad = (col != np.floor(col)) | (col < 1) | (col > MAX_INTEGER)
        if bad.any():
            r = int(np.argmax(bad))
            raise DataError(
                f"{_where(path, lines[r], c)}: {COLUMN_NAMES[c]} number {col[r]!r} is not a positive integer "
                f"(expected an integer from 1 to {MAX_INTEGER})"
            )
    units, cycles = data[:, 0].astype(np.int64), data[:, 1].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]])
    ids = units[starts]
    seen = {}
    for s, u in zip(starts, ids):
        if u in seen:
            raise DataError(
                f"{_where(path, lines[s], 0)}: rows of unit {u} are not contiguous (the unit appeared from line "
                f"{lines[seen[u]]} and reappears after another one)"
            )
        seen[u] = s
    expected = np.concatenate([np.arange(1, n + 1) for n in np.diff(np.r_[starts, len(units)])])
    bad = cycles != expected
    if bad.any():
        r = int(np.argmax(bad))
        raise DataError(
            f"{_where(path, lines[r], 1)}: unit {units[r]} has cycle {cycles[r]}, expected {expected[r]} "
            "(cycles must run 1, 2, 3, ... within each unit)"
        )
    return CMAPSSTable(units, cycles, data[:, 2:5].copy(), data[:, 5:].copy())


def read_rul_file(path, n_units: int | None = None) -> np.ndarray:
    """True RULs of the test engines: one non-negative integer per line (blank lines skipped)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CMAPSS RUL file not found: {path!r}")
    values = []
    with open(path, encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            v = float(fields[0]) if len(fields) == 1 and _is_number(fields[0]) else np.nan
            if not (v == np.floor(v) and 0 <= v <= MAX_INTEGER):
                raise DataError(
                    f"{path}: line {lineno}: expected one integer from 0 to {MAX_INTEGER} (the true RUL), got {line.strip()!r}"
                )
            values.append(int(v))
    rul = np.asarray(values, dtype=np.int64)
    if n_units is not None and len(rul) != n_units:
        raise DataError(f"{path}: {len(rul)} RUL values for {n_units} test units")
    return rul


def load_cmapss(directory, subset: str = "FD001", rul_file=None) -> CMAPSSData:
    """Load ``train_<subset>.txt``, ``test_<subset>.txt`` and ``RUL_<subset>.txt`` (if present).

    Args:
        directory: folder in NASA's layout.
        subset: ``"FD001"`` ... ``"FD004"``.
        rul_file: explicit path of the true test RULs (defaults to
            ``<directory>/RUL_<subset>.txt`` when that file exists).
    """
    subset = str(subset).upper()
    if subset not in SUBSETS:
        raise DataError(f"subset: expected one of {', '.join(SUBSETS)}, got {subset!r}")
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"directory: {directory!r} is not a directory")
    paths = {k: os.path.join(directory, f"{k}_{subset}.txt") for k in ("train", "test")}
    missing = [p for p in paths.values() if not os.path.isfile(p)]
    if missing:
        present = sorted(f for f in os.listdir(directory) if f.endswith(".txt"))
        raise FileNotFoundError(
            f"CMAPSS {subset}: missing {', '.join(map(repr, missing))}; "
            f"the directory holds {present or 'no .txt files'}"
        )
    train = read_cmapss_table(paths["train"])
    test = read_cmapss_table(paths["test"])
    if rul_file is None:
        default = os.path.join(directory, f"RUL_{subset}.txt")
        rul_file = default if os.path.isfile(default) else None
    test_rul = read_rul_file(rul_file, test.n_units) if rul_file is not None else None
    return CMAPSSData(subset, train, test, test_rul)


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
                radius = max(np.sqrt(np.mean(np.sum((sub[lab == j] - c[j]) ** 2, axis=1))) if np.any(lab == j) else 0.0 for j in range(k))
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
        settings, sensors = _check_rows(settings, sensors)
        if not hasattr(self, "centers_"):
            raise DataError("OperatingConditionNormalizer: call fit before transform")
        if sensors.shape[1] != self.means_.shape[1]:
            raise ShapeError(f"sensors: expected {self.means_.shape[1]} columns as in fit, got {sensors.shape[1]}")
        c = self.conditions(settings)
        return (sensors - self.means_[c]) / self.scales_[c]

    def fit_transform(self, settings, sensors) -> np.ndarray:
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
    """Lloyd's k-means with k-means++ seeding (a few thousand rows, a few dimensions)."""
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
        new = np.argmin(((z[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        if it > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            if np.any(labels == j):
                centers[j] = z[labels == j].mean(0)
    return centers, labels


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
