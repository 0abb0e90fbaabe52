r"""Cross-validation for remaining-useful-life models, built the way test sets are.

CMAPSS test engines are run-to-failure trajectories cut at a random cycle; the
target is the number of cycles left after the cut. A fair validation does the
same to held-out *training* engines: split the engines into folds (never the
cycles of one engine, which are strongly dependent), fit on the other folds and
cut each held-out engine at random cycles. The cut leaves at least
``min_cycles`` observed cycles (the shortest CMAPSS FD001 test engine has 31)
and a true RUL at most ``max_rul`` (FD001 test RULs are below about 150): the
RUL is drawn uniformly on ``1 .. min(max_rul, T - min_cycles)``.

Example::

    from statespace.prognostics import truncation_splits
    for train_idx, cuts in truncation_splits(lengths, n_folds=5, n_cuts=3, rng=0):
        ...  # cuts: list of (engine index, observed cycles, true RUL)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DataError, ParameterError
from ..validation import as_rng


class Cut(NamedTuple):
    """A held-out engine observed for its first ``n_observed`` cycles; ``rul`` cycles remain."""

    engine: int
    n_observed: int
    rul: int


def truncation_splits(lengths, n_folds: int = 5, n_cuts: int = 1, min_cycles: int = 31, max_rul: int = 150, rng=None):
    """Yield ``(train_indices, cuts)`` for each fold: engines to fit on, and held-out cuts.

    Args:
        lengths: number of cycles of each run-to-failure engine.
        n_folds: number of folds over engines (``len(lengths)`` gives leave-one-out).
        n_cuts: random cuts per held-out engine.
        min_cycles: fewest observed cycles a cut leaves.
        max_rul: largest true RUL a cut leaves.
        rng: seed or Generator (same seed, same folds and cuts).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    n_folds, n_cuts, min_cycles, max_rul = int(n_folds), int(n_cuts), int(min_cycles), int(max_rul)
    if not 2 <= n_folds <= n:
        raise ParameterError(f"n_folds: expected 2 <= n_folds <= {n} (number of engines), got {n_folds}")
    if n_cuts < 1 or min_cycles < 1 or max_rul < 1:
        raise ParameterError(f"n_cuts, min_cycles, max_rul: expected positive integers, got {n_cuts}, {min_cycles}, {max_rul}")
    short = np.flatnonzero(lengths <= min_cycles)
    if short.size:
        i = int(short[0])
        raise DataError(f"lengths: engine {i} has {lengths[i]} cycles; a cut needs more than min_cycles={min_cycles}")
    rng = as_rng(rng)
    folds = np.array_split(rng.permutation(n), n_folds)
    for fold in folds:
        held = np.sort(fold)
        train = np.setdiff1d(np.arange(n), held)
        cuts = []
        for e in held:
            T = int(lengths[e])
            hi = min(max_rul, T - min_cycles)
            for rul in rng.integers(1, hi + 1, size=n_cuts):
                cuts.append(Cut(int(e), T - int(rul), int(rul)))
        yield train, cuts
