"""Dask plumbing shared by the E-step, batch inference and jobs (imported only under :func:`use`)."""

from __future__ import annotations

import contextlib
import pickle
import uuid
import warnings


def dumps(obj) -> bytes:
    """``obj`` as one pickled message: the standard library's pickle, or cloudpickle (Dask's own fallback,
    installed with it) for what pickle refuses, such as a lambda held by a parameter object."""
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _hold(items):
    """A shard's items, as the result of a task: the scheduler keeps the task, so a lost shard is recomputed."""
    return items


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


class ShardHost:
    """The shards of one fit that live on one worker, held there as a Dask actor for the whole fit.

    A round of the E-step is then one direct call per worker (the client reaches the
    actor through one remote procedure call, not through the scheduler's task
    graph), and the shards' statistics come back in its reply.

    Args:
        fn: the E-step ``fn(params, shard) -> statistics``.
        index: the shards' positions in the fit's shard list.
        starts, lengths: each shard's first item in the user's data and its item count.
        total: the number of items in the user's data.
        *shards: the shards' items (the persisted shard futures, resolved on the worker).
    """

    def __init__(self, fn, index, starts, lengths, total, *shards):
        from .._scratch import Workspace

        self.fn, self.index, self.starts, self.lengths, self.total = fn, index, starts, lengths, total
        self.shards = shards
        self.workspace = Workspace()  # the kernels' scratch, kept across the fit's rounds

    def run(self, message: bytes) -> bytes:
        """``(None, [fn(params, shard) ...])`` in shard order, or ``(j, error)`` for the first shard ``j`` that
        failed, pickled; ``message`` is the pickled ``params`` (one message each way: see ``EStep``).

        The error is returned rather than raised, so that the client tells an error of
        ``fn`` (re-raised, with the sequence index of the user's data) from the loss
        of the worker (the round is repeated).
        """
        from .._scratch import kept
        from ._backend import globalise, in_task, loads_on_worker

        params = loads_on_worker(message)
        out = []
        with kept(self.workspace):
            for j, s, n, shard in zip(self.index, self.starts, self.lengths, self.shards):
                try:
                    out.append(in_task(self.fn, params, shard))
                except Exception as exc:  # noqa: BLE001 - handed to the client, which re-raises it
                    return dumps((j, globalise(exc, s, n, self.total)))
        return dumps((None, out))


def host_shards(client, fn, shards, starts, lengths, total):
    """One :class:`ShardHost` actor per worker holding some of ``shards``, placed where its shards are.

    Returns ``(futures, actors, index)``: the actor tasks' futures (held to keep the
    actors alive), the actors, and each actor's shard positions.
    """
    from dask.distributed import wait

    wait(shards)
    who = client.who_has(shards)
    groups: dict = {}
    for j, f in enumerate(shards):
        holders = sorted(who.get(f.key, ()))
        groups.setdefault(holders[0] if holders else None, []).append(j)
    futures, index = [], []
    for worker, js in groups.items():
        where = {"workers": [worker], "allow_other_workers": True} if worker is not None else {}
        args = (fn, js, [int(starts[j]) for j in js], [int(lengths[j]) for j in js], total)
        futures.append(
            client.submit(
                ShardHost,
                *args,
                *[shards[j] for j in js],
                actor=True,
                pure=False,
                key=f"shard-host-{uuid.uuid4().hex[:12]}",
                **where,
            )
        )
        index.append(js)
    return futures, [f.result() for f in futures], index
