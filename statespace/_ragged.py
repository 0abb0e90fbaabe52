"""The ragged-batch layout: many sequences as one concatenated array plus offsets.

Sequence ``i`` of a batch is ``data[offsets[i]:offsets[i + 1]]``: ``offsets`` is
an ``int64`` array of length ``S + 1``, starting at 0, non-decreasing, ending at
``len(data)``. Compiled batch kernels take ``(data, offsets)`` and return their
per-step outputs in the same layout (one array, the same offsets), so a batch of
thousands of short sequences costs one compiled call and a handful of arrays,
not one Python call and one result object per sequence. :class:`Ragged` is the
cheap per-sequence view over such an output: indexing it slices, nothing is
copied or built in advance.
"""

from __future__ import annotations

import numpy as np

from .errors import ShapeError


def offsets_of(lengths) -> np.ndarray:
    """``offsets (S + 1,)`` int64 of sequences of the given lengths."""
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=out[1:])
    return out


def views(data: np.ndarray, offsets) -> list:
    """``[data[offsets[i]:offsets[i + 1]] for each i]``: every sequence's view of a ragged array, in order.

    Sequences of one length (a fleet's usual case) are cut by one reshape and NumPy's own
    iteration over its first axis, at a fraction of a Python slice's cost per sequence; the views
    are the same (C-contiguous, of the same memory, writeable as ``data`` is).
    """
    offsets = np.asarray(offsets)
    S = len(offsets) - 1
    if S > 0:
        a = int(offsets[0])
        T = int(offsets[1]) - a
        if T > 0 and int(offsets[-1]) - a == S * T and bool((np.diff(offsets) == T).all()):
            return list(data[a : a + S * T].reshape(S, T, *data.shape[1:]))
    bounds = offsets.tolist()
    return [data[x:y] for x, y in zip(bounds[:-1], bounds[1:])]


#: Fewest bytes per sequence, on average, at which :func:`pack` looks for sequences that already tile
#: one block. The look costs about 1.8 us per sequence (reading each view's address); a copy costs
#: less up to about 16 kB per sequence (1,000 sequences: 1.7-1.9 ms to look; a copy 0.1-0.3 ms at
#: 0.4-4.8 kB, 1.2-2.0 ms at 13-24 kB, 7-17 ms at 48-128 kB).
SPAN_MIN_BYTES = 16_384


def pack(seqs, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(data, offsets)``: the sequences (arrays with one leading time axis) concatenated, and their offsets.

    A :class:`Tiled` list gives its block at once. Other sequences of at least
    :data:`SPAN_MIN_BYTES` each on average that already tile one block end to end (consecutive
    views of one C-contiguous array, as ``list(Y)`` of a 3-D ``Y`` or a batch's per-sequence views
    are) give a view of that block: nothing is copied. Shorter ones are copied, which costs less
    than finding that out.
    """
    if type(seqs) is Tiled and seqs.block.dtype == dtype:
        return seqs.block, seqs.offsets
    seqs = list(seqs)
    offsets = offsets_of([len(s) for s in seqs])
    if not seqs:
        return np.empty((0,), dtype=dtype), offsets
    row_bytes = getattr(seqs[0], "nbytes", 0) // max(len(seqs[0]), 1)
    if row_bytes * int(offsets[-1]) >= SPAN_MIN_BYTES * len(seqs):
        span = _tiled_span(seqs, dtype)
        if span is not None:
            return span, offsets
    return np.ascontiguousarray(np.concatenate(seqs, axis=0), dtype=dtype), offsets


def _tiled_span(seqs: list, dtype) -> np.ndarray | None:
    """The view of the block that ``seqs`` tile end to end, or ``None`` when they do not.

    Every sequence must be a C-contiguous view of the same base array with the same dtype and
    row shape, each non-empty one starting where the previous one ends.
    """
    first = seqs[0]
    base = getattr(first, "base", None)
    if base is None or not isinstance(base, np.ndarray) or first.dtype != dtype:
        return None
    end = first.__array_interface__["data"][0]
    for s in seqs:
        if not (
            isinstance(s, np.ndarray)
            and s.base is base
            and s.dtype == dtype
            and s.shape[1:] == first.shape[1:]
            and s.flags.c_contiguous
            and (len(s) == 0 or s.__array_interface__["data"][0] == end)  # an empty view's address is arbitrary
        ):
            return None
        end += s.nbytes
    n = sum(len(s) for s in seqs)
    # the tiles are contiguous within one allocation (the shared base), so the span is valid memory
    return np.lib.stride_tricks.as_strided(
        first, shape=(n, *first.shape[1:]), strides=first.strides, writeable=first.flags.writeable
    )


class Tiled(list):
    """The sequences of a ragged batch as a list of consecutive views of one block.

    ``block`` and ``offsets`` are the batch in the ragged layout; :func:`pack` returns them
    without a copy or a check per sequence, and a contiguous slice is again a ``Tiled`` over
    its part of the block. ``complete`` is ``True`` when the block is known to hold only
    finite numbers (no NaN: nothing missing); ``False`` or ``None`` when that is not known. The list
    cannot be changed in place (the views and the block must stay one and the same).
    """

    __slots__ = ("block", "offsets", "complete")

    def __init__(self, block: np.ndarray, offsets: np.ndarray, complete: bool | None = None):
        super().__init__(views(block, offsets))
        self.block, self.offsets, self.complete = block, offsets, complete

    def __getitem__(self, i):
        if not isinstance(i, slice) or i.step not in (None, 1):
            return super().__getitem__(i)
        a, b, _ = i.indices(len(self))
        b = max(a, b)
        o = self.offsets
        part = Tiled.__new__(Tiled)
        list.extend(part, super().__getitem__(slice(a, b)))  # the same views: a slice makes none afresh
        part.block, part.offsets, part.complete = self.block[o[a] : o[b]], o[a : b + 1] - o[a], self.complete
        return part

    def _read_only(self, *args, **kwargs):
        raise TypeError("a Tiled list of sequences cannot be changed in place; copy it with list(...)")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __reduce__(self):
        return (Tiled, (self.block, self.offsets, self.complete))


def tile(items) -> list:
    """``items`` (tuples, one per sequence) with every array field stored once, as consecutive views of one block.

    At each position of the tuples where every item holds an array (one dtype, one
    row shape), the arrays are copied once into one block and replaced by their
    views, so that :func:`packed` gives that field of any contiguous run of the items
    (a shard) without a copy. Returns a :class:`TiledItems`; items that are not
    tuples of one length come back as a plain list, unchanged.
    """
    items = list(items)
    if not items or any(type(it) is not tuple or len(it) != len(items[0]) for it in items):
        return items
    columns, blocks = [], []
    for p in range(len(items[0])):
        col = [it[p] for it in items]
        first = col[0]
        if (
            isinstance(first, np.ndarray)
            and first.ndim >= 1
            and all(
                isinstance(a, np.ndarray) and a.dtype == first.dtype and a.shape[1:] == first.shape[1:] for a in col
            )
        ):
            block, offsets = pack(col, dtype=first.dtype)
            columns.append(views(block, offsets))
            blocks.append((block, offsets))
        else:
            columns.append(col)
            blocks.append(None)
    return TiledItems(zip(*columns), blocks)


class TiledItems(list):
    """A list of item tuples made by :func:`tile`: ``blocks[p]`` is ``(data, offsets)`` of field ``p``
    (``None`` where the field is not tiled). A contiguous slice is again a ``TiledItems`` over the same
    blocks; pickled, it carries each block once (not one array per item)."""

    __slots__ = ("blocks",)

    def __init__(self, items, blocks):
        super().__init__(items)
        self.blocks = blocks

    def __getitem__(self, i):
        if not isinstance(i, slice) or i.step not in (None, 1):
            return super().__getitem__(i)
        a, b, _ = i.indices(len(self))
        b = max(a, b)
        blocks = [
            None if blk is None else (blk[0][blk[1][a] : blk[1][b]], blk[1][a : b + 1] - blk[1][a])
            for blk in self.blocks
        ]
        return TiledItems(super().__getitem__(i), blocks)

    def __reduce__(self):
        fields = [blk if blk is not None else [it[p] for it in self] for p, blk in enumerate(self.blocks)]
        return (_untile, (fields, [blk is not None for blk in self.blocks], len(self)))


def _untile(fields, tiled, n) -> TiledItems:
    columns = []
    for f, t in zip(fields, tiled):
        if t:
            columns.append(views(*f))
        else:
            columns.append(f)
    return TiledItems(zip(*columns) if columns else [()] * n, [f if t else None for f, t in zip(fields, tiled)])


def packed(items, p: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(data, offsets)`` of field ``p`` of ``items``: without a copy from a :class:`TiledItems`, else :func:`pack`."""
    blk = items.blocks[p] if isinstance(items, TiledItems) else None
    if blk is not None and blk[0].dtype == dtype:
        return blk
    return pack([it[p] for it in items], dtype)


def check_offsets(name: str, offsets, n_rows: int) -> np.ndarray:
    """``offsets`` as a validated int64 array for ``n_rows`` concatenated rows (:class:`ShapeError` naming what is wrong)."""
    o = np.asarray(offsets)
    if o.ndim != 1 or o.shape[0] < 1 or o.dtype.kind not in "iu":
        raise ShapeError(
            f"{name}: expected a 1-D integer array of S + 1 offsets, got {o.dtype} array of shape {o.shape}"
        )
    o = np.ascontiguousarray(o, dtype=np.int64)
    if o[0] != 0 or o[-1] != n_rows:
        raise ShapeError(
            f"{name}: offsets must start at 0 and end at the number of rows ({n_rows}), got {o[0]} .. {o[-1]}"
        )
    # two offsets that start at 0 and end at n_rows >= 0 cannot decrease (the check costs more than the call)
    if o.shape[0] > 2:
        steps = np.diff(o)
        if (steps < 0).any():
            i = int(np.argmax(steps < 0))
            raise ShapeError(
                f"{name}: offsets must not decrease; offsets[{i + 1}] = {o[i + 1]} < offsets[{i}] = {o[i]}"
            )
    return o


def even_cuts(n: int, parts: int) -> np.ndarray:
    """Boundaries ``(parts + 1,)`` of ``parts >= 1`` contiguous ranges of ``0..n`` whose sizes differ by at
    most one (strictly increasing when ``parts <= n``): the unit of work of a call split over threads."""
    return np.arange(parts + 1, dtype=np.int64) * n // parts


class Ragged:
    """Per-sequence view of a ragged batch output: ``view[i]`` is ``data[offsets[i]:offsets[i + 1]]``.

    Supports ``len``, iteration and indexing (negative indices too); the slices
    are views of ``data``, made on access.
    """

    __slots__ = ("data", "offsets")

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        self.data = data
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self)
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"sequence index {i} out of range for a batch of {n} sequences")
        return self.data[self.offsets[j] : self.offsets[j + 1]]

    def __iter__(self):
        return iter(views(self.data, self.offsets))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __repr__(self) -> str:
        return f"Ragged({len(self)} sequences, {self.data.shape[0]} rows, row shape {self.data.shape[1:]})"


_POOL = None


def n_threads_for(n_threads: int | None) -> int:
    """Threads a batch call uses: ``n_threads``, or Numba's current setting (``numba.set_num_threads``,
    ``NUMBA_NUM_THREADS``) when it is ``None``."""
    if n_threads is None:
        import numba

        return max(1, numba.get_num_threads())
    return max(1, int(n_threads))


def row_split(offsets: np.ndarray, parts: int) -> np.ndarray:
    """Boundaries ``(k + 1,)`` cutting the sequences into ``k <= parts`` contiguous runs of about equal rows."""
    S = len(offsets) - 1
    k = max(1, min(parts, S))
    if k == 1:
        return np.array([0, S], dtype=np.int64)
    targets = offsets[-1] * np.arange(1, k) / k
    inner = np.searchsorted(offsets[1:], targets, side="left") + 1
    return np.unique(np.concatenate([[0], np.minimum(inner, S), [S]])).astype(np.int64)


def run_parts(fn, bounds: np.ndarray) -> None:
    """Call ``fn(bounds[i], bounds[i + 1])`` for every part, on threads when there are several.

    ``fn`` should spend its time in compiled code that releases the GIL (``nogil=True``),
    and must write disjoint outputs per part. The calling thread runs the first part; a
    shared pool runs the others (threads, not Numba's ``parallel=True``: no second
    compilation of the loops and no thread layer to clash with a Dask worker's).
    """
    global _POOL
    n = len(bounds) - 1
    if n <= 1:
        if n == 1:
            fn(int(bounds[0]), int(bounds[1]))
        return
    if _POOL is None:
        import os
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(
            max_workers=max(1, (os.cpu_count() or 1) - 1) or 1, thread_name_prefix="statespace-batch"
        )
    futures = [_POOL.submit(fn, int(bounds[i]), int(bounds[i + 1])) for i in range(1, n)]
    fn(int(bounds[0]), int(bounds[1]))
    for f in futures:
        f.result()


def run_items(fn, sizes, n_threads: int | None = None) -> list:
    """``[fn(i) for i in range(len(sizes))]``, the items cut into contiguous runs of about equal total
    ``sizes`` (:func:`row_split`), one per thread (:func:`run_parts`; ``n_threads`` as :func:`n_threads_for`).

    For many independent compiled calls (a fleet's particle filters): ``fn`` should spend its time in
    compiled code that releases the GIL. Results come back in item order whatever the threads.
    """
    out = [None] * len(sizes)

    def part(lo, hi):
        for i in range(lo, hi):
            out[i] = fn(i)

    run_parts(part, row_split(offsets_of(sizes), n_threads_for(n_threads)))
    return out
