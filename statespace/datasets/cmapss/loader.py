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
sensor far more than wear does; :class:`~statespace.datasets.cmapss.OperatingConditionNormalizer`
(:mod:`statespace.datasets.cmapss.features`) clusters the three settings
(k-means) and standardises each sensor within its regime.

Example::

    # needs data: NASA CMAPSS FD001 in the folder named by $CMAPSS_DIR
    import os
    from statespace.datasets import load_cmapss
    data = load_cmapss(os.environ["CMAPSS_DIR"], "FD001")
    data.train.n_units, data.train.sensors.shape        # 100, (20631, 21)
    engines = data.train.split(data.train.sensors)      # list of (T_i, 21) arrays

The library never assumes where the files live: users pass their own directory.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ...errors import DataError, ShapeError

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
        """The number of distinct units (engines) in the file."""
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


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
