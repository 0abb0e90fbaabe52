"""The E-step of every many-sequence EM: in process, or map-reduce over persisted shards on Dask."""

from __future__ import annotations

import pickle

import numpy as np

from .._ragged import tile
from .._scratch import Workspace, kept
from ._backend import active, item_size, reduce_sum, shard_bounds

# Whole fits (restarts) run as one task each when their items total at most this many
# bytes: each task then carries its own copy of the data. Beyond it, the fits run one
# after another and each E-step is sharded, which sends the data to the cluster once.
TASK_DATA_BYTES = 64 * 2**20

# Tries of one E-step round when a worker cannot be reached (its process lost): between
# tries the shard hosts are rebuilt from the persisted shards.
ROUND_ATTEMPTS = 4


class EStep:
    """Callable ``params -> statistics summed over all items``, the E-step of one fit.

    Without an active :func:`~statespace.distributed.use` block it is exactly
    ``fn(params, items)``. Inside one (read when the ``EStep`` is built), the items are
    split into contiguous shards of nearly equal total length, each shard is persisted
    on a worker once (the data stay there for the whole fit), and one shard host (a
    Dask actor) per worker holds
    that worker's shards. Each call sends ``params`` to every host in one direct call (one
    pickled message; cloudpickle where pickle refuses),
    runs ``fn(params, shard)`` on every shard where it lives, and sums the shards'
    statistics on the client in shard order. The sums over sequences are regrouped, so
    the result equals the in-process one to round-off, whatever the number of workers
    or shards. When a host cannot be reached (its worker process lost), the hosts are
    rebuilt where the shards now are (the scheduler recomputes lost shards from the
    tasks that made them) and the round is repeated, up to ``ROUND_ATTEMPTS`` times. A
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
        # each field stored once as one block: every E-step (and shard) then reads its batch without a copy
        self.items = tile(items)
        self._backend = active()
        self._shards = None
        self._hosts = None
        self._workspace = Workspace()

    def __call__(self, params):
        if self._backend is None:
            with kept(self._workspace):  # the kernels' scratch, reused by the next iteration
                return self.fn(params, self.items)
        client = self._backend.client
        if self._shards is None:
            from ._cluster import persist_shards

            n = self._backend.shards_for(len(self.items))
            b = shard_bounds([item_size(it) for it in self.items], n)
            self._starts, self._lengths = b[:-1], np.diff(b)
            self._shards = persist_shards(client, [self.items[b[j] : b[j + 1]] for j in range(n)], "estep")
        from ._cluster import dumps, host_shards

        # the parameters travel as one pickled message, and the statistics come back as one: Dask's own
        # serialisation walks a tuple of arrays element by element, a fifth of a no-op round's cost
        # (docs/distributed.md)
        message = dumps(params)
        for attempt in range(ROUND_ATTEMPTS):
            # fn's errors come back as replies: what raises here is the cluster (a worker lost
            # while the hosts were placed, before or during the calls)
            try:
                if self._hosts is None:
                    self._hosts = host_shards(
                        client, self.fn, self._shards, self._starts, self._lengths, len(self.items)
                    )
                _, actors, index = self._hosts
                calls = [a.run(message) for a in actors]  # every worker starts before the client waits on one
                replies = [pickle.loads(r) for r in client.sync(_replies, calls)]
                break
            except Exception:
                if attempt == ROUND_ATTEMPTS - 1:
                    raise
                self._release_hosts()  # rebuilt from the shards, which the scheduler recomputes where lost
        failed = [(j, exc) for j, exc in replies if j is not None]
        if failed:
            raise min(failed, key=lambda f: f[0])[1]
        stats = [None] * len(self._shards)
        for js, (_, out) in zip(index, replies):
            for j, s in zip(js, out):
                stats[j] = s
        return reduce_sum(stats)

    def _release_hosts(self):
        if self._hosts is not None:
            self._backend.client.cancel(self._hosts[0])
            self._hosts = None

    @property
    def nbytes(self) -> int:
        """Total size of the items' NumPy arrays (what a task holding all of them carries)."""
        return sum(_nbytes(it) for it in self.items)

    def runs_as_tasks(self, n_fits: int) -> bool:
        """Whether ``n_fits`` whole fits over these items (restarts) should each run as one Dask task.

        True inside a :func:`~statespace.distributed.use` block (as read when the ``EStep``
        was built) for more than one fit whose items total at most ``TASK_DATA_BYTES``:
        the fits then run side by side, each on one worker with an in-process copy of this
        E-step (a pickled ``EStep`` is an in-process one). For larger data the fits run in
        turn and each E-step is sharded over the whole cluster.
        """
        return self._backend is not None and n_fits > 1 and self.nbytes <= TASK_DATA_BYTES

    def __reduce__(self):
        """A pickled ``EStep`` is an in-process one over the same items: a task that runs a
        whole fit on a worker computes its E-steps there, never on the cluster again."""
        return (_in_process, (self.fn, self.items))

    @property
    def in_process(self) -> bool:
        """Whether the E-steps run in this process (no :func:`~statespace.distributed.use` block was active)."""
        return self._backend is None

    @property
    def n_shards(self) -> int:
        """Shards the items are split into (1 in process)."""
        return 1 if self._shards is None else len(self._shards)

    def close(self) -> None:
        """Release the persisted shards and the kernels' scratch."""
        self._workspace.clear()
        if self._shards is not None:
            self._release_hosts()
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


async def _replies(calls):
    """The replies of one round's actor calls, awaited on the client's event loop: one hand-off from this
    thread to the loop and back for the whole round, where a ``result()`` per call paid one each (a round
    with no work, median of 275, relayed by the scheduler: 2.20 -> 2.11 ms on 2 workers, 9.6 -> 8.5 ms on 8;
    docs/benchmarks.md, "Session 29")."""
    return [await c for c in calls]


def _in_process(fn, items) -> EStep:
    est = EStep.__new__(EStep)
    est.fn, est.items, est._backend, est._shards, est._hosts = fn, items, None, None, None
    est._workspace = Workspace()
    return est


def _nbytes(tree) -> int:
    if isinstance(tree, np.ndarray):
        return tree.nbytes
    if isinstance(tree, (tuple, list)):
        return sum(_nbytes(t) for t in tree)
    return 0
