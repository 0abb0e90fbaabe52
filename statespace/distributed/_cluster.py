"""Dask plumbing shared by the E-step, batch inference and jobs (imported only under :func:`use`)."""

from __future__ import annotations

import contextlib
import pickle
import uuid
import warnings

# Parameters whose pickle is at most this size travel inside each shard's task: the round
# is then one message to the scheduler. Dask's client batches its messages to the
# scheduler 10 ms apart, so a separate broadcast message would delay the round by up to
# that much; larger parameters are still sent once per round and fetched by the workers.
EMBED_BYTES = 256 * 1024


def _hold(items):
    """A shard's items, as the result of a task: the scheduler keeps the task, so a lost shard is recomputed."""
    return items


def _apply(fn, params, shard):
    return fn(params, shard)


def _apply_pickled(fn, blob, shard):
    return fn(pickle.loads(blob), shard)


@contextlib.contextmanager
def data_in_graph():
    """Silence Dask's large-graph warnings for tasks that carry their data on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
        warnings.filterwarnings("ignore", message=".*[Ll]arge object.*")
        yield


def persist_shards(client, chunks, label: str):
    """Place each chunk of items on a worker (round robin) as the result of a task that returns it.

    Scattered data die with their worker; a task's result is recomputed by the scheduler from the
    task it keeps, so a shard survives the loss of the worker process holding it.
    """
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"]) if hasattr(client, "scheduler_info") else []
    tag = uuid.uuid4().hex[:12]
    futures = []
    with data_in_graph():  # the data are the graph here: that is what makes the shards recomputable
        for j, chunk in enumerate(chunks):
            where = {"workers": [workers[j % len(workers)]], "allow_other_workers": True} if workers else {}
            futures.append(client.submit(_hold, chunk, key=f"{label}-shard-{tag}-{j}", pure=False, **where))
    return futures


def gather_in_order(client, futures, starts, lengths, total):
    """Results of ``futures`` in order; the first failed shard's library error re-raised with global indices."""
    from ._backend import globalise

    try:
        return client.gather(futures)
    except Exception:
        from dask.distributed import wait

        wait(futures)  # every shard settled, so the error reported is the first in order, whatever finished first
        for f, s, n in zip(futures, starts, lengths):
            if f.status == "error":
                exc = f.exception()
                raise globalise(exc, int(s), int(n), total).with_traceback(f.traceback()) from None
        raise


def broadcast(client, obj):
    """A future of ``obj`` for the tasks of one round: sent to the cluster once, fetched by the workers that need it.

    It is the result of a task rather than scattered data, so the scheduler recomputes it if
    the worker holding it dies (scattered data would be lost with it).
    """
    return client.submit(_hold, obj, pure=False)


def map_shards(client, fn, params, shards):
    """Futures of ``[fn(params, shard) for shard in shards]`` on the workers, one round.

    Small ``params`` (pickled, at most :data:`EMBED_BYTES`) travel inside each task, so the
    round costs one message to the scheduler; larger ones are broadcast once and fetched
    by the workers that need them.
    """
    n = len(shards)
    try:
        blob = pickle.dumps(params, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - not picklable by pickle (a closure): Dask's cloudpickle sends it below
        blob = None
    if blob is not None and len(blob) <= EMBED_BYTES:
        return client.map(_apply_pickled, [fn] * n, [blob] * n, shards, pure=False)
    p = broadcast(client, params)
    return client.map(_apply, [fn] * n, [p] * n, shards, pure=False)
