"""Expected statistics summed over many sequences: in process, or as map-reduce on Dask.

An EM E-step is additive over sequences: with items ``y^(1), ..., y^(S)`` (each
whatever the family's E-step needs for one sequence: observations, inputs,
partial-knowledge weights, ...),

    E-step(theta, items) = sum over shards B of  fn(theta, B),

where ``fn(params, shard)`` returns a pytree (tuple, list or NamedTuple of floats
and NumPy arrays) of statistics summed over the items of ``shard``. ``EStep``
is the one place every EM of the library sums those statistics; without a Dask
client it is exactly ``fn(params, items)``.
"""

from __future__ import annotations


class EStep:
    """Callable ``params -> fn(params, items)``, the E-step of one fit.

    Args:
        fn: a module-level (picklable) function ``fn(params, shard) -> statistics``
            whose result is additive over shards.
        items: a list with one entry per sequence, in the order of the user's data.
    """

    def __init__(self, fn, items):
        self.fn = fn
        self.items = list(items)

    def __call__(self, params):
        return self.fn(params, self.items)

    def close(self) -> None:
        """Release whatever the E-step holds (persisted shards on a cluster)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
