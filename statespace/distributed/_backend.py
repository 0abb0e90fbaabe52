"""The active Dask backend (a context variable), shard boundaries and global error indices.

Nothing here imports Dask on the client: the client object is whatever the user passed to
:func:`use`, and only its methods are called (:func:`size_jax_pools`, run on workers, asks Dask
for the worker's thread count).
"""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import os
import pickle
import re
from typing import NamedTuple

import numpy as np

from ..errors import ParameterError


class Backend(NamedTuple):
    """The cluster work is sent to: a ``dask.distributed.Client`` and the shard count (``None``: one per worker thread)."""

    client: object
    n_shards: int | None

    def shards_for(self, n_items: int) -> int:
        """How many shards ``n_items`` sequences are split into (at least one, at most one per sequence)."""
        n = self.n_shards if self.n_shards is not None else sum(self.client.nthreads().values())
        return max(1, min(int(n), n_items))


_ACTIVE: contextvars.ContextVar[Backend | None] = contextvars.ContextVar("statespace_distributed", default=None)


@contextlib.contextmanager
def use(client, n_shards: int | None = None):
    """Run the library's E-steps, batch inference and jobs on a Dask cluster inside the ``with`` block.

    Args:
        client: a ``dask.distributed.Client`` (from ``Client(LocalCluster(...))`` on a laptop or
            ``Client("tcp://scheduler:8786")`` on a cluster), or a scheduler address string, for which
            a client is opened here and closed at the end of the block.
        n_shards: how many shards each collection of sequences is split into; default one per
            worker thread of the cluster (read when the work is submitted). Results do not depend
            on it beyond floating-point round-off in the order of sums.

    Example::

        from dask.distributed import Client, LocalCluster
        import statespace.distributed as ssd

        with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
            with ssd.use(client):
                result = model.fit(sequences)  # E-steps run on the workers
    """
    if n_shards is not None and (
        isinstance(n_shards, bool) or not isinstance(n_shards, (int, np.integer)) or n_shards < 1
    ):
        raise ParameterError(f"n_shards: expected a positive integer or None, got {n_shards!r}")
    own = None
    if isinstance(client, str):
        from dask.distributed import Client

        client = own = Client(client)
    if not all(hasattr(client, a) for a in ("submit", "gather", "scatter", "nthreads")):
        raise ParameterError(
            f"client: expected a dask.distributed.Client or a scheduler address, got {type(client).__name__}"
        )
    token = _ACTIVE.set(Backend(client, None if n_shards is None else int(n_shards)))
    try:
        yield client
    finally:
        _ACTIVE.reset(token)
        if own is not None:
            own.close()


def in_task(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` as a task on the cluster: its compiled loops on one thread.

    The cluster's worker threads are its parallelism, as Dask's workers start with
    ``OMP_NUM_THREADS=1``; Numba's loops would otherwise each start as many threads as the
    machine has cores, in every worker thread at once. Numba's thread count belongs to the
    calling thread, so the setting holds for this task's thread only. JAX's pools belong to
    the process: :func:`size_jax_pools` sizes them.
    """
    import numba

    size_jax_pools()
    numba.set_num_threads(1)
    return fn(*args, **kwargs)


def size_jax_pools():
    """Size this worker process's JAX thread pools to the worker's threads, unless the environment chose.

    XLA's CPU client sizes its pools once, when JAX first computes in a process, from
    ``PJRT_NPROC`` (or ``NPROC``), by default one thread per core of the machine whatever the
    worker's share of it: two one-thread workers on two cores, each training a network, ran
    their CMAPSS folds 1.9x slower each than one worker alone (docs/distributed.md). So the
    variable is set here, before a task's work starts, to the worker's thread count. Work that
    unpickles JAX arrays does so through :func:`loads_on_worker` (the E-step's parameters, a batch
    verb's model): a JAX array unpickled starts JAX. Jobs are unpickled by Dask, so a job whose arguments hold
    JAX arrays starts it with the default; set ``PJRT_NPROC`` in the workers' environment then.
    Only a worker in a process of its own (started by a nanny or ``LocalCluster``) is sized: a
    worker thread in the user's process (``LocalCluster(processes=False)``) shares JAX with the
    user's own work, and ``dask worker --no-nanny`` needs the variable set in its shell.
    """
    if "PJRT_NPROC" in os.environ or "NPROC" in os.environ or multiprocessing.parent_process() is None:
        return
    try:
        from distributed import get_worker

        threads = int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):  # not in a worker's task: one thread, as Numba's loops
        threads = 1
    os.environ["PJRT_NPROC"] = str(max(1, threads))


def loads_on_worker(message: bytes):
    """``pickle.loads(message)`` once :func:`size_jax_pools` has run: a JAX array unpickled starts JAX,
    whose pools keep the size they start with."""
    size_jax_pools()
    return pickle.loads(message)


def active():
    """The backend of the innermost :func:`use` block (its ``client`` and ``n_shards``), or ``None`` (run in process)."""
    return _ACTIVE.get()


def shard_bounds(sizes, n_shards: int) -> np.ndarray:
    """Boundaries ``b`` (``n_shards + 1``) of contiguous shards ``items[b[j]:b[j+1]]`` of nearly equal total size.

    ``sizes`` are the items' costs (sequence lengths); shard ``j`` ends at the first item
    whose cumulative size reaches ``(j + 1) / n_shards`` of the total, and no shard is empty.
    """
    sizes = np.maximum(np.asarray(sizes, dtype=np.float64), 1.0)
    n = len(sizes)
    cum = np.cumsum(sizes)
    ends = np.searchsorted(cum, cum[-1] * np.arange(1, n_shards) / n_shards, side="left") + 1
    b = np.concatenate([[0], ends, [n]]).astype(np.int64)
    # no empty shard: bounds strictly increasing within 0..n
    for j in range(1, n_shards):
        b[j] = min(max(b[j], b[j - 1] + 1), n - (n_shards - j))
    return b


def item_size(item) -> int:
    """The cost of one item: the length of its first array (the observations)."""
    first = item[0] if isinstance(item, tuple) else item
    try:
        return len(first)
    except TypeError:
        return 1


_INDEXED = re.compile(r"(?<![\w\]])(ys?)\[(\d+)\]")
_BARE = re.compile(r"^(ys?)(?=[:\s])")


def globalise(exc: BaseException, start: int, shard_len: int, total: int) -> BaseException:
    """Rewrite the sequence index of a library error raised on a shard to the index in the user's data.

    Within a shard, ``fn`` names sequence ``i`` of the shard ``y[i]`` (or ``y`` when the shard
    holds one sequence); the user's data hold it at ``start + i``.
    """
    if not isinstance(exc, ValueError) or not exc.args or not isinstance(exc.args[0], str) or total <= 1:
        return exc
    msg = _INDEXED.sub(lambda m: f"{m.group(1)}[{start + int(m.group(2))}]", exc.args[0])
    if shard_len == 1:
        msg = _BARE.sub(lambda m: f"{m.group(1)}[{start}]", msg)
    exc.args = (msg,) + exc.args[1:]
    return exc


def reduce_sum(parts):
    """The leafwise sum of pytrees (tuples, lists, NamedTuples of floats and arrays), in the given order."""
    total = parts[0]
    for p in parts[1:]:
        total = _add(total, p)
    return total


def _add(a, b):
    if isinstance(a, tuple) and hasattr(a, "_fields"):
        return type(a)._make(_add(x, y) for x, y in zip(a, b))
    if isinstance(a, (tuple, list)):
        return type(a)(_add(x, y) for x, y in zip(a, b))
    if a is None:
        return None
    return a + b
