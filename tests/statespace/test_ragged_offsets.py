"""Offsets of a ragged batch: what the validation accepts and rejects, and how work is cut into parts."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statespace._ragged import check_offsets, even_cuts
from statespace.errors import ShapeError


@pytest.mark.parametrize(
    ("offsets", "n_rows", "message"),
    [
        (np.zeros((2, 2), dtype=np.int64), 0, r"1-D integer array .* shape \(2, 2\)"),
        (np.array([0.0, 3.0]), 3, "1-D integer array of S \\+ 1 offsets, got float64"),
        (np.array([False, True]), 1, "got bool"),
        (np.array([], dtype=np.int64), 0, r"shape \(0,\)"),
        (np.array([1, 3]), 3, r"start at 0 and end at the number of rows \(3\), got 1 .. 3"),
        (np.array([0, 2]), 3, r"got 0 .. 2"),
        (np.array([0, 4, 2, 5]), 5, r"offsets\[2\] = 2 < offsets\[1\] = 4"),
        (np.array([0, 2, 1]), 1, r"offsets\[2\] = 1 < offsets\[1\] = 2"),
    ],
)
def test_bad_offsets_name_what_is_wrong(offsets, n_rows, message):
    with pytest.raises(ShapeError, match=message):
        check_offsets("offsets", offsets, n_rows)


@given(lengths=st.lists(st.integers(0, 50), min_size=1, max_size=20), kind=st.sampled_from(["int32", "uint16", "list"]))
def test_good_offsets_come_back_as_contiguous_int64(lengths, kind):
    o = np.concatenate([[0], np.cumsum(lengths)])
    given_offsets = o.tolist() if kind == "list" else o.astype(kind)
    got = check_offsets("offsets", given_offsets, int(o[-1]))
    assert got.dtype == np.int64 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, o)


@given(n=st.integers(0, 10**7), parts=st.integers(1, 64))
def test_even_cuts_split_the_rows_into_parts_one_row_apart(n, parts):
    cuts = even_cuts(n, parts)
    sizes = np.diff(cuts)
    assert cuts.dtype == np.int64 and len(cuts) == parts + 1
    assert cuts[0] == 0 and cuts[-1] == n
    # what dividing n rows as evenly as possible gives: n % parts parts one row longer than the others
    assert sorted(sizes.tolist()) == sorted([n // parts] * (parts - n % parts) + [n // parts + 1] * (n % parts))
    if parts <= n:
        assert (sizes > 0).all()
