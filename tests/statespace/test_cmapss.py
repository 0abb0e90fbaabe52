"""CMAPSS loader: the shared FD001 files, any directory, malformed input, operating conditions."""

import os

import numpy as np
import pytest

from statespace.datasets import OperatingConditionNormalizer, load_cmapss, read_cmapss_table, read_rul_file
from statespace.errors import DataError

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cmapss")
DATA = os.environ.get("CMAPSS_DIR", os.path.abspath(DATA))
needs_data = pytest.mark.skipif(
    not os.path.isfile(os.path.join(DATA, "train_FD001.txt")), reason="CMAPSS FD001 not available"
)


def _row(unit, cycle, rng):
    return " ".join([str(unit), str(cycle)] + [f"{v:.4f}" for v in rng.normal(size=24)])


def _write(path, lines):
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


@needs_data
def test_fd001_shapes_units_and_cycle_order():
    data = load_cmapss(DATA, "FD001")
    raw_train = np.loadtxt(os.path.join(DATA, "train_FD001.txt"))
    raw_test = np.loadtxt(os.path.join(DATA, "test_FD001.txt"))
    for table, raw in ((data.train, raw_train), (data.test, raw_test)):
        assert table.n_units == 100
        np.testing.assert_array_equal(table.unit_ids, np.arange(1, 101))
        assert table.sensors.shape == (len(raw), 21) and table.settings.shape == (len(raw), 3)
        np.testing.assert_array_equal(table.sensors, raw[:, 5:])
        for u, cyc in zip(table.unit_ids, table.split(table.cycles)):
            np.testing.assert_array_equal(cyc, np.arange(1, len(cyc) + 1))
        assert table.lengths.sum() == len(raw)
    assert data.test_rul is None  # withheld in the shared copy
    rul = data.train.rul()
    ends = np.cumsum(data.train.lengths) - 1
    assert (rul[ends] == 0).all() and rul[0] == data.train.lengths[0] - 1


def test_any_directory_and_rul_file(tmp_path):
    rng = np.random.default_rng(0)
    _write(tmp_path / "train_FD003.txt", [_row(u, c, rng) for u in (1, 2) for c in range(1, 6)])
    _write(tmp_path / "test_FD003.txt", [_row(u, c, rng) for u, n in ((1, 3), (2, 4)) for c in range(1, n + 1)])
    _write(tmp_path / "RUL_FD003.txt", ["12", "7"])
    data = load_cmapss(tmp_path, "fd003")
    assert data.subset == "FD003" and data.train.n_units == 2
    np.testing.assert_array_equal(data.test.lengths, [3, 4])
    np.testing.assert_array_equal(data.test_rul, [12, 7])


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_FD002.txt"):
        load_cmapss(tmp_path, "FD002")
    with pytest.raises(FileNotFoundError):
        load_cmapss(tmp_path / "nowhere", "FD001")
    with pytest.raises(DataError, match="subset"):
        load_cmapss(tmp_path, "FD005")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda rows: rows[:2] + [rows[2].rsplit(" ", 1)[0]] + rows[3:], "line 3 has 25 fields"),
        (
            lambda rows: rows[:1] + [rows[1].replace(rows[1].split()[5], "abc", 1)] + rows[2:],
            r"line 2, column 6 \(sensor_1\): 'abc' is not a number",
        ),
        (lambda rows: rows[:3] + ["1 9 " + rows[3].split(" ", 2)[2]] + rows[4:], "expected 4"),
        (lambda rows: [r.replace("1 ", "0 ", 1) if i == 0 else r for i, r in enumerate(rows)], "positive integer"),
        (lambda rows: rows[:5] + rows[:1] + rows[5:], "not contiguous|expected"),
        (lambda rows: rows[:2] + [rows[2].replace(rows[2].split()[7], "nan", 1)] + rows[3:], "non-finite"),
    ],
)
def test_malformed_rows(tmp_path, mutate, message):
    rng = np.random.default_rng(1)
    rows = [_row(u, c, rng) for u in (1, 2) for c in range(1, 6)]
    path = tmp_path / "train_FD001.txt"
    _write(path, mutate(rows))
    with pytest.raises(DataError, match=message):
        read_cmapss_table(path)


def _corrupt(fields, column, value):
    fields = list(fields)
    fields[column] = value
    return " ".join(fields)


# (column, replacement or a function of the row's fields, what the message must say besides the place)
CORRUPTIONS = {
    "unit_huge": (0, "1e20", "not a positive integer"),
    "unit_negative": (0, "-5", "not a positive integer"),
    "unit_fraction": (0, "3.5", "not a positive integer"),
    "cycle_zero": (1, "0", "not a positive integer"),
    "cycle_skipped": (1, "9", "expected"),
    "sensor_nan": (7, "nan", "non-finite"),
    "sensor_inf": (12, "-inf", "non-finite"),
    "setting_text": (3, "x1", "not a number"),
}


@pytest.mark.parametrize("blank_lines", [(), (1, 4, 5)], ids=["no_blank", "blank_lines"])
@pytest.mark.parametrize("corrupt_row", [0, 3, 7])
@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_errors_name_the_file_line_and_column(tmp_path, kind, corrupt_row, blank_lines):
    """The reported line is the line of the file that was corrupted (blank lines counted), with its column."""
    column, value, what = CORRUPTIONS[kind]
    if kind == "cycle_skipped" and corrupt_row == 0:
        value = "2"  # the first cycle of a unit must be 1
    rng = np.random.default_rng(3)
    rows = [_row(u, c, rng) for u in (1, 2) for c in range(1, 6)]
    rows[corrupt_row] = _corrupt(rows[corrupt_row].split(), column, value)
    lines = list(rows)
    for b in sorted(blank_lines):  # file line b + 1 (1-based) is blank
        lines.insert(b, "   " if b % 2 else "")
    corrupted_line = lines.index(rows[corrupt_row]) + 1
    path = tmp_path / "train_FD001.txt"
    _write(path, lines)
    with pytest.raises(DataError) as info:
        read_cmapss_table(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert f"line {corrupted_line}, column {column + 1} " in msg and what in msg, msg


def test_unit_ids_out_of_range_never_overflow(tmp_path):
    """1e20 is integral in float64 but no exact unit number: an error, not a wrapped negative id."""
    import warnings

    rng = np.random.default_rng(4)
    rows = [_row(u, 1, rng) for u in (1, 2)] + [_row("100000000000000000000", 1, rng)]
    path = tmp_path / "test_FD001.txt"
    _write(path, rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="line 3, column 1"):
            read_cmapss_table(path)


def test_rul_file_errors(tmp_path):
    _write(tmp_path / "r.txt", ["5", "-1"])
    with pytest.raises(DataError, match="line 2"):
        read_rul_file(tmp_path / "r.txt")
    for bad in ("1e20", "inf", "2.5", "nan"):
        _write(tmp_path / "r.txt", ["5", "", bad])
        with pytest.raises(DataError, match="line 3"):
            read_rul_file(tmp_path / "r.txt")
    _write(tmp_path / "r.txt", ["5", "6"])
    with pytest.raises(DataError, match="2 RUL values for 3"):
        read_rul_file(tmp_path / "r.txt", 3)


def test_nearest_centres_against_argmin_of_the_distances():
    """The k-means assignments against NumPy's argmin of every row's squared distances (the first
    centre on a tie), with exact ties: duplicated centres and rows on a coarse grid."""
    from statespace.datasets.cmapss.features import _nearest_centres

    rng = np.random.default_rng(9)
    for z in (rng.normal(size=(2000, 3)), np.round(rng.normal(size=(2000, 3)), 1), rng.normal(size=(500, 1))):
        for k in (1, 2, 5, 9):
            c = z[rng.choice(len(z), k, replace=False)]
            c = np.vstack([c, c[::-1]])  # every centre twice: the first copy wins
            want = np.argmin(((z[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
            np.testing.assert_array_equal(_nearest_centres(z, c), want)
            assert _nearest_centres(z, c).max() < k


def test_operating_conditions_found_and_normalised():
    rng = np.random.default_rng(2)
    centers = np.array([[0, 0, 100], [10, 0.25, 100], [20, 0.7, 100], [25, 0.62, 60], [35, 0.84, 100], [42, 0.84, 100]])
    lab = rng.integers(0, 6, 3000)
    settings = centers[lab] + rng.normal(0, 1e-3, (3000, 3)) * [1, 0.01, 0]
    shift = rng.normal(0, 50, (6, 4))
    sensors = shift[lab] + rng.normal(size=(3000, 4)) * (1 + lab[:, None])
    norm = OperatingConditionNormalizer().fit(settings, sensors)
    assert len(norm.centers_) == 6
    found = norm.conditions(settings)
    assert len(set(zip(found.tolist(), lab.tolist()))) == 6  # a bijection with the true regimes
    z = norm.transform(settings, sensors)
    for j in range(6):
        np.testing.assert_allclose(z[lab == j].mean(0), 0, atol=1e-10)
        np.testing.assert_allclose(z[lab == j].std(0), 1, atol=1e-10)
    # one noisy regime (FD001-like) is one condition
    one = OperatingConditionNormalizer().fit(rng.normal(0, 1e-3, (2000, 3)) + [0, 0, 100], sensors[:2000])
    assert len(one.centers_) == 1
