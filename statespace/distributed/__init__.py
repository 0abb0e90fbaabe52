"""Scale-out on Dask: E-steps as map-reduce, batch inference and independent jobs on a cluster.

One switch for the whole library: inside ``with statespace.distributed.use(client):``
(a ``dask.distributed.Client``, or a scheduler address), every EM that sums statistics
over sequences (LinearGaussianSSM, the HMM family, MarkovJumpProcess) runs its E-step
on the workers, :func:`map_sequences` runs a model verb over shards of sequences, and
:func:`map_jobs` runs independent jobs as tasks; outside it everything runs in process
and Dask is never imported.

An EM E-step is additive over sequences: with items ``y^(1), ..., y^(S)`` (each
whatever the family's E-step needs for one sequence: observations, inputs,
partial-knowledge weights, ...),

    E-step(theta, items) = sum over shards B of  fn(theta, B),

where ``fn(params, shard)`` returns a pytree (tuple, list or NamedTuple of floats
and NumPy arrays) of statistics summed over the items of ``shard``. :class:`EStep`
is the one place every EM of the library sums those statistics.
"""

from __future__ import annotations

from ._backend import active, use
from .batch import PER_SEQUENCE, map_sequences
from .estep import EStep
from .jobs import map_jobs, spawn_seeds

__all__ = ["EStep", "PER_SEQUENCE", "active", "map_jobs", "map_sequences", "spawn_seeds", "use"]
