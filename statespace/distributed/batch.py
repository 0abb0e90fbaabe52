"""Batch inference over many sequences: one model verb applied shard by shard, results in input order."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..validation import split_batch
from ._backend import active, in_task, item_size, loads_on_worker, reduce_sum, shard_bounds

#: Keyword arguments that carry one entry per sequence (the data rule of the model contract).
PER_SEQUENCE = ("inputs", "pl", "times", "dt", "future_inputs", "settings")


def _call(message, ys, kwargs):
    # the verb (its model) arrives pickled, unpickled once the worker's JAX pools are sized
    return in_task(loads_on_worker(message), ys, **kwargs)


def map_sequences(verb, y, **kwargs):
    """``verb(y, **kwargs)`` for a model verb, with the sequences of ``y`` split into shards on the cluster.

    ``verb`` is a bound method of a model (``model.filter``, ``model.smooth``,
    ``model.log_likelihood``, ``model.most_likely_states``, ``model.predict`` of a RUL
    model, ...); ``y`` one sequence or a list of them. Keyword arguments named in
    ``PER_SEQUENCE`` (``inputs``, ``pl``, ``times``, ``dt``, ``future_inputs``) are split
    with ``y``; the others go to every shard unchanged. Per-sequence verbs give the list
    of results in the order of ``y``; a verb that returns a total over its sequences
    (``log_likelihood``) gives the sum over shards. A library error raised on a shard
    names the sequence by its index in ``y``.

    Without an active :func:`~statespace.distributed.use` block, or for one sequence,
    this is exactly ``verb(y, **kwargs)``.

    **Data larger than memory.** ``y`` may be a ``dask.bag.Bag`` of sequences (read
    lazily on the workers, e.g. ``dask.bag.from_delayed`` over files); per-sequence
    keyword arguments are then Bags partitioned like ``y``. The result is a lazy Bag,
    built whether or not a ``use`` block is active, that stays on the cluster until
    computed: each partition's sequences go to ``verb`` as one list; a list result's
    entries become the Bag's elements (one per sequence, in order), any other result
    (``log_likelihood``'s total, a RUL model's fleet prediction) one element per
    partition (``.sum()`` of the log-likelihoods is the whole data's).
    """
    if _is_bag(y):
        return _map_bag(verb, y, kwargs)
    backend = active()
    items, single = split_batch("y", y)
    if backend is None or single:
        return verb(y, **kwargs)
    per = {k: split_batch(k, v)[0] for k, v in kwargs.items() if k in PER_SEQUENCE and v is not None}
    shared = {k: v for k, v in kwargs.items() if k not in per}
    n = backend.shards_for(len(items))
    b = shard_bounds([item_size(s) for s in items], n)
    client = backend.client
    from ._cluster import broadcast, dumps, gather_in_order

    v = broadcast(client, dumps(verb))
    futures = [
        client.submit(
            _call, v, items[b[j] : b[j + 1]], {**shared, **{k: x[b[j] : b[j + 1]] for k, x in per.items()}}, pure=False
        )
        for j in range(n)
    ]
    try:
        parts = gather_in_order(client, futures, b[:-1], np.diff(b), len(items))
    finally:
        client.cancel(futures + [v])
    return _join(parts, np.diff(b))


def _is_bag(obj) -> bool:
    # by module name, so that Dask is never imported to ask
    return type(obj).__module__.startswith("dask.bag") and hasattr(obj, "map_partitions")


def _map_bag(verb, bag, kwargs):
    """:func:`map_sequences` over a ``dask.bag.Bag``: one lazy call of ``verb`` per partition."""
    import dask.bag as db

    per = {k: v for k, v in kwargs.items() if k in PER_SEQUENCE and v is not None}
    for k, v in per.items():
        if not _is_bag(v) or v.npartitions != bag.npartitions:
            raise ShapeError(
                f"{k}: with a dask Bag of sequences, per-sequence arguments must be Bags with the same "
                f"{bag.npartitions} partitions as y, got {type(v).__name__}"
                + (f" with {v.npartitions} partitions" if _is_bag(v) else "")
            )
    shared = {k: v for k, v in kwargs.items() if k not in per}
    from ._cluster import dumps

    return db.map_partitions(_call_partition, bag, dumps(verb), shared, tuple(per), *per.values())


def _call_partition(part, message, shared, names, *per_parts):
    ys = list(part)
    if not ys:
        return []
    out = in_task(loads_on_worker(message), ys, **shared, **{n: list(p) for n, p in zip(names, per_parts)})
    return out if isinstance(out, list) else [out]


def _join(parts, lengths):
    """The shards' results as one: per-sequence entries concatenated in order, totals summed."""
    first = parts[0]
    if isinstance(first, tuple):
        fields = [_join([p[i] for p in parts], lengths) for i in range(len(first))]
        return type(first)._make(fields) if hasattr(first, "_fields") else type(first)(fields)
    if isinstance(first, list) and all(len(p) == n for p, n in zip(parts, lengths)):
        return [r for p in parts for r in p]
    if isinstance(first, np.ndarray) and first.ndim > 0 and all(len(p) == n for p, n in zip(parts, lengths)):
        return np.concatenate(parts)
    return reduce_sum(parts)
