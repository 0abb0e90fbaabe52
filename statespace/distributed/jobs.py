"""Independent jobs (cross-validation cells, restarts, MCMC chains) as Dask tasks, reproducibly seeded."""

from __future__ import annotations

import uuid

import numpy as np

from ._backend import active, in_task


def spawn_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seeds of ``seed`` (an int, a ``SeedSequence`` or ``None``: fresh entropy)."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(n)


def map_jobs(fn, jobs, *, seed=None, seeded: bool = False, on_done=None) -> list:
    """``[fn(job) for job in jobs]``, as one Dask task per job inside a :func:`~statespace.distributed.use` block.

    With ``seeded=True`` job ``i`` is called ``fn(job, seeds[i])`` with ``seeds =
    spawn_seeds(seed, len(jobs))`` (``np.random.SeedSequence.spawn``): each job's random
    numbers depend only on ``seed`` and its position, so the results equal the serial
    run's whatever the number of workers. ``fn`` may be a closure (Dask sends it with
    cloudpickle); results come back in the order of ``jobs``, and the first failing job's
    exception is raised on the client. ``on_done()`` (a progress-bar update, say) is
    called on the client as each job finishes.
    """
    jobs = list(jobs)
    args = [(j, s) for j, s in zip(jobs, spawn_seeds(seed, len(jobs)))] if seeded else [(j,) for j in jobs]
    backend = active()
    done = on_done if on_done is not None else (lambda: None)
    if backend is None or len(jobs) <= 1:
        out = []
        for a in args:
            out.append(fn(*a))
            done()
        return out
    from dask.distributed import as_completed
    from dask.utils import funcname

    from ._cluster import data_in_graph

    client = backend.client
    # a job may carry its data (a restart of a fit holds its sequences, up to EStep's TASK_DATA_BYTES)
    with data_in_graph():
        name = funcname(fn)
        futures = [client.submit(in_task, fn, *a, pure=False, key=f"{name}-{uuid.uuid4().hex}") for a in args]
    position = {f.key: i for i, f in enumerate(futures)}
    out = [None] * len(futures)
    try:
        # each result fetched as its job ends: its transfer and unpickling overlap the jobs still running
        for future in as_completed(futures):
            out[position[future.key]] = future.result()
            done()
        return out
    finally:
        client.cancel(futures)
