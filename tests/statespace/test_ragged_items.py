"""The tiled item lists of ``statespace._ragged`` (one block per field, shards read without a copy),
against the per-item arrays they were built from."""

import pickle

import numpy as np
import pytest

from statespace._ragged import SPAN_MIN_BYTES, Tiled, TiledItems, pack, packed, tile


def _items(rng, n=7):
    lengths = rng.integers(1, 9, size=n)
    return [
        (rng.normal(size=(T, 3)), rng.integers(0, 5, size=(T, 0)), None if i % 2 else rng.normal(size=(T, 2)))
        for i, T in enumerate(lengths)
    ]


@pytest.mark.parametrize("cut", [(0, 7), (2, 5), (3, 3), (6, 7)])
def test_a_tiled_slice_packs_without_a_copy_to_what_pack_gives(cut):
    items = _items(np.random.default_rng(0))
    tiled = tile(items)
    assert isinstance(tiled, TiledItems) and len(tiled) == len(items)
    a, b = cut
    part = tiled[a:b]
    assert isinstance(part, TiledItems) and len(part) == b - a
    y, offsets = packed(part, 0)
    y_ref, off_ref = pack([it[0] for it in items[a:b]])
    np.testing.assert_array_equal(y, y_ref.reshape(-1, 3))  # an empty pack has no row shape
    np.testing.assert_array_equal(offsets, off_ref)
    assert y.size == 0 or np.shares_memory(y, tiled.blocks[0][0])  # a view of the one block
    for got, it in zip(part, items[a:b]):  # every item unchanged, its arrays views of the blocks
        np.testing.assert_array_equal(got[0], it[0])
        assert got[1].shape == it[1].shape and got[1].dtype == it[1].dtype
        assert (got[2] is None) == (it[2] is None)
    # the field holding None for some items is not tiled: packed falls back to pack
    assert tiled.blocks[2] is None


def test_a_pickled_tiled_shard_carries_each_block_once_and_stays_tiled():
    rng = np.random.default_rng(1)
    items = [(rng.normal(size=(50, 4)), np.zeros((50, 0))) for _ in range(200)]
    shard = tile(items)[40:160]
    blob = pickle.dumps(shard, protocol=5)
    per_item = pickle.dumps([it for it in items[40:160]], protocol=5)
    assert len(blob) < len(per_item)  # one array header per field, not one per item
    back = pickle.loads(blob)
    assert isinstance(back, TiledItems)
    y, offsets = packed(back, 0)
    np.testing.assert_array_equal(y, np.concatenate([it[0] for it in items[40:160]]))
    np.testing.assert_array_equal(offsets, np.arange(121) * 50)
    assert np.shares_memory(back[5][0], y)


def test_items_that_are_not_tuples_of_one_length_come_back_unchanged():
    arrays = [np.ones((3, 2)), np.ones((4, 2))]
    assert tile(arrays) == arrays and not isinstance(tile(arrays), TiledItems)
    mixed = [(np.ones((3, 2)),), (np.ones((3, 2)), 1)]
    assert not isinstance(tile(mixed), TiledItems)
    # a field of two dtypes is left as it is
    t = tile([(np.ones((3, 2)),), (np.ones((3, 2), dtype=np.float32),)])
    assert t.blocks == [None]


# --- Tiled: the validation's one block per batch of sequences ---------------------------------


def _fleet(rng, n=9, width=3):
    return [rng.normal(size=(int(T), width)) for T in rng.integers(1, 12, size=n)]


def test_tiled_views_equal_the_sequences_and_pack_returns_the_block_itself():
    seqs = _fleet(np.random.default_rng(2))
    block, offsets = pack(seqs)
    tiled = Tiled(block, offsets, complete=True)
    assert len(tiled) == len(seqs)
    for got, ref in zip(tiled, seqs):
        np.testing.assert_array_equal(got, ref)
        assert np.shares_memory(got, block)
    y, off = pack(tiled)
    assert y is block and off is offsets  # no copy, no per-sequence work


@pytest.mark.parametrize("T", [5, SPAN_MIN_BYTES // 24, SPAN_MIN_BYTES // 24 + 200])
def test_pack_of_a_3d_arrays_rows_equals_their_concatenation_and_long_rows_are_not_copied(T):
    Y = np.random.default_rng(7).normal(size=(6, T, 3))
    for seqs in (list(Y), [Y[i] for i in (0, 2, 1, 3, 4, 5)], list(Y[:, ::2])):  # in order, permuted, strided
        block, offsets = pack(seqs)
        np.testing.assert_array_equal(block, np.concatenate(seqs))
        np.testing.assert_array_equal(offsets, np.arange(7) * len(seqs[0]))
    block, _ = pack(list(Y))
    # a view of Y where each sequence holds SPAN_MIN_BYTES or more: looking for it costs less than a copy
    assert np.shares_memory(block, Y) == (T * 3 * 8 >= SPAN_MIN_BYTES)
    assert not np.shares_memory(pack([Y[i] for i in (0, 2, 1, 3, 4, 5)])[0], Y)


@pytest.mark.parametrize("cut", [(0, 9), (2, 6), (4, 4), (8, 9)])
def test_a_tiled_slice_is_tiled_over_its_part_of_the_block(cut):
    seqs = _fleet(np.random.default_rng(3))
    tiled = Tiled(*pack(seqs), complete=False)
    a, b = cut
    part = tiled[a:b]
    assert type(part) is Tiled and part.complete is False and len(part) == b - a
    y, off = pack(part)
    y_ref, off_ref = pack(seqs[a:b]) if b > a else (np.empty((0, 3)), np.zeros(1, dtype=np.int64))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(off, off_ref)
    assert y.size == 0 or np.shares_memory(y, tiled.block)
    # a strided slice or an index is a plain list entry, as for a list
    assert type(tiled[::2]) is list and len(tiled[::2]) == 5
    np.testing.assert_array_equal(tiled[-1], seqs[-1])


def test_a_tiled_list_cannot_be_changed_in_place_and_survives_pickling():
    seqs = _fleet(np.random.default_rng(4))
    tiled = Tiled(*pack(seqs))
    for change in (
        lambda t: t.append(seqs[0]),
        lambda t: t.__setitem__(0, seqs[1]),
        lambda t: t.pop(),
        lambda t: t.sort(key=len),
        lambda t: t.__delitem__(0),
    ):
        with pytest.raises(TypeError, match="cannot be changed in place"):
            change(tiled)
    copy = list(tiled)
    copy.append(seqs[0])  # a plain copy can
    back = pickle.loads(pickle.dumps(tiled))
    assert type(back) is Tiled and back.complete is None
    for got, ref in zip(back, seqs):
        np.testing.assert_array_equal(got, ref)
        assert np.shares_memory(got, back.block)
