"""Offsets of a ragged batch: what the validation accepts and rejects, and how work is cut into parts."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statespace._ragged import Ragged, Tiled, check_offsets, even_cuts, offsets_of, views
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


@given(
    lengths=st.one_of(
        st.lists(st.integers(0, 6), max_size=12),  # ragged, empty sequences included
        st.tuples(st.integers(1, 6), st.integers(1, 12)).map(lambda tn: [tn[0]] * tn[1]),  # one length
    ),
    row_shape=st.sampled_from([(), (3,), (2, 2)]),
    start=st.integers(0, 3),
)
def test_views_are_the_slices(lengths, row_shape, start):
    """``views`` (one reshape for sequences of one length, slices otherwise) against the slices
    themselves: the same numbers, the same memory, writeable as the data are; also through
    ``Tiled`` and ``Ragged``, which build their views with it. Offsets may start past row 0 (a part
    of a batch)."""
    offsets = offsets_of(lengths) + start
    data = np.arange((start + sum(lengths)) * int(np.prod(row_shape, dtype=int))).reshape(-1, *row_shape) * 1.5
    for writeable in (True, False):
        data.flags.writeable = writeable
        got = views(data, offsets)
        assert len(got) == len(lengths)
        for i, v in enumerate(got):
            ref = data[offsets[i] : offsets[i + 1]]
            assert v.shape == ref.shape and v.flags.c_contiguous and v.flags.writeable == writeable
            np.testing.assert_array_equal(v, ref)
            assert np.shares_memory(v, data) or v.size == 0
            if v.size:
                assert v.__array_interface__["data"][0] == ref.__array_interface__["data"][0]
    block = data[start:]
    for listed in (Tiled(block, offsets - start), list(Ragged(block, offsets - start))):
        assert [v.tolist() for v in listed] == [
            block[a:b].tolist() for a, b in zip(offsets[:-1] - start, offsets[1:] - start)
        ]
