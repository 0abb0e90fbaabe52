"""The E-step of every many-sequence EM: in process, or map-reduce over persisted shards on Dask."""

from __future__ import annotations

import numpy as np

from ._backend import active, item_size, reduce_sum, shard_bounds


class EStep:
    """Callable ``params -> statistics summed over all items``, the E-step of one fit.

    Without an active :func:`~statespace.distributed.use` block it is exactly
    ``fn(params, items)``. Inside one (read when the ``EStep`` is built), the items are
    split into contiguous shards of nearly equal total length, each shard is persisted
    on a worker once (the data stay there for the whole fit), and each call sends
    ``params`` (inside the shards' tasks when small, else once to the cluster), runs
    ``fn(params, shard)`` on every shard where it lives, and sums the shards'
    statistics on the client in shard order. The sums over
    sequences are regrouped, so the result equals the in-process one to round-off,
    whatever the number of workers or shards. A worker lost during a call is absorbed by
    Dask (the task is retried, the shard recomputed from the task that made it). A
    library error raised on a shard names the sequence by its index in ``items``.

    Args:
        fn: a module-level (picklable) function ``fn(params, shard) -> statistics``
            whose result is a pytree (tuple, list or NamedTuple of floats and NumPy
            arrays, the log-likelihood included) additive over shards. It names the
            ``i``-th item of ``shard`` ``y[i]`` in its errors (``y`` when the shard has one).
        items: a list with one entry per sequence, in the order of the user's data
            (tuples of arrays and picklable objects; the first entry's length is the
            sequence's cost when balancing shards).
    """

    def __init__(self, fn, items):
        self.fn = fn
        self.items = list(items)
        self._backend = active()
        self._shards = None

    def __call__(self, params):
        if self._backend is None:
            return self.fn(params, self.items)
        from ._cluster import map_shards, persist_shards

        client = self._backend.client
        if self._shards is None:
            n = self._backend.shards_for(len(self.items))
            b = shard_bounds([item_size(it) for it in self.items], n)
            self._starts, self._lengths = b[:-1], np.diff(b)
            self._shards = persist_shards(client, [self.items[b[j] : b[j + 1]] for j in range(n)], "estep")
        parts = map_shards(client, self.fn, params, self._shards, self._starts, self._lengths, len(self.items))
        return reduce_sum(parts)

    @property
    def n_shards(self) -> int:
        """Shards the items are split into (1 in process)."""
        return 1 if self._shards is None else len(self._shards)

    def close(self) -> None:
        """Release the persisted shards (nothing to do in process)."""
        if self._shards is not None:
            self._backend.client.cancel(self._shards)
            self._shards = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown or a closed client: nothing left to release
            pass
