"""Batch inference over many sequences: one model verb applied shard by shard, results in input order."""

from __future__ import annotations

import numpy as np

from ..validation import split_batch
from ._backend import active, item_size, reduce_sum, shard_bounds

#: Keyword arguments that carry one entry per sequence (the data rule of the model contract).
PER_SEQUENCE = ("inputs", "pl", "times", "dt", "future_inputs", "settings")


def _call(verb, ys, kwargs):
    return verb(ys, **kwargs)


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
    """
    backend = active()
    items, single = split_batch("y", y)
    if backend is None or single:
        return verb(y, **kwargs)
    per = {k: split_batch(k, v)[0] for k, v in kwargs.items() if k in PER_SEQUENCE and v is not None}
    shared = {k: v for k, v in kwargs.items() if k not in per}
    n = backend.shards_for(len(items))
    b = shard_bounds([item_size(s) for s in items], n)
    client = backend.client
    from ._cluster import broadcast, gather_in_order

    v = broadcast(client, verb)
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
