"""Independent jobs (cross-validation cells, restarts, MCMC chains) as Dask tasks, reproducibly seeded."""

from __future__ import annotations

import numpy as np

from ._backend import active


def spawn_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seeds of ``seed`` (an int, a ``SeedSequence`` or ``None``: fresh entropy)."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(n)


def map_jobs(fn, jobs, *, seed=None, seeded: bool = False) -> list:
    """``[fn(job) for job in jobs]``, as one Dask task per job inside a :func:`~statespace.distributed.use` block.

    With ``seeded=True`` job ``i`` is called ``fn(job, seeds[i])`` with ``seeds =
    spawn_seeds(seed, len(jobs))`` (``np.random.SeedSequence.spawn``): each job's random
    numbers depend only on ``seed`` and its position, so the results equal the serial
    run's whatever the number of workers. ``fn`` may be a closure (Dask sends it with
    cloudpickle); results come back in the order of ``jobs``, and the first failing job's
    exception is raised on the client.
    """
    jobs = list(jobs)
    args = [(j, s) for j, s in zip(jobs, spawn_seeds(seed, len(jobs)))] if seeded else [(j,) for j in jobs]
    backend = active()
    if backend is None or len(jobs) <= 1:
        return [fn(*a) for a in args]
    client = backend.client
    futures = [client.submit(fn, *a, pure=False) for a in args]
    try:
        return client.gather(futures)
    finally:
        client.cancel(futures)
