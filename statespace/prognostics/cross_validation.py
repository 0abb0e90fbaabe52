r"""Cross-validation for remaining-useful-life models, built the way test sets are.

CMAPSS test engines are run-to-failure trajectories cut at a random cycle; the
target is the number of cycles left after the cut. A fair validation does the
same to held-out *training* engines: split the engines into folds (never the
cycles of one engine, which are strongly dependent), fit on the other folds and
cut each held-out engine at random cycles. The cut leaves at least
``min_cycles`` observed cycles (the shortest CMAPSS FD001 test engine has 31)
and a true RUL at most ``max_rul`` (FD001 test RULs are below about 150): the
RUL is drawn uniformly on ``1 .. min(max_rul, T - min_cycles)``.

``n_cuts="all"`` cuts each held-out engine at *every* admissible cycle
instead. A test set has one cut per engine, so a held-out engine's cuts are
then weighted by one over their number (:func:`cut_weights`): the weighted
metrics are the *expectations* over the random cut, free of the noise of a
few sampled cuts (with 3 cuts per engine, the share of cuts with more than
125 cycles left, which carry half the squared error on CMAPSS, varies by
several points between draws). The extra cuts cost predictions only, no
extra fit.

Example::

    import numpy as np
    from statespace.prognostics import truncation_splits
    lengths = np.random.default_rng(0).integers(130, 360, 100)   # run-to-failure lengths, as in FD001
    for train_idx, cuts in truncation_splits(lengths, n_folds=5, n_cuts=3, rng=0):
        ...  # cuts: list of (engine index, observed cycles, true RUL)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DataError, ParameterError, ShapeError
from ..validation import as_float_array, as_rng, check_int
from .metrics import _pair, phm08_scores


class Cut(NamedTuple):
    """A held-out engine observed for its first ``n_observed`` cycles; ``rul`` cycles remain."""

    engine: int
    n_observed: int
    rul: int


def truncation_splits(
    lengths, n_folds: int = 5, n_cuts: int | str = 1, min_cycles: int = 31, max_rul: int = 150, rng=None
):
    """Yield ``(train_indices, cuts)`` for each fold: engines to fit on, and held-out cuts.

    Args:
        lengths: number of cycles of each run-to-failure engine.
        n_folds: number of folds over engines (``len(lengths)`` gives leave-one-out).
        n_cuts: random cuts per held-out engine, or ``"all"``: every admissible cut, RUL
            ``1 .. min(max_rul, T - min_cycles)`` in increasing order (weigh them with :func:`cut_weights`).
        min_cycles: fewest observed cycles a cut leaves.
        max_rul: largest true RUL a cut leaves.
        rng: seed or Generator (same seed, same folds and cuts).
    """
    lengths = [check_int(f"lengths[{i}]", T, minimum=1) for i, T in enumerate(as_float_array("lengths", lengths, 1))]
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    every = isinstance(n_cuts, str)
    if every and n_cuts != "all":
        raise ParameterError(f"n_cuts: expected a positive integer or 'all', got {n_cuts!r}")
    n_folds = check_int("n_folds", n_folds, minimum=2)
    if n_folds > n:
        raise ParameterError(f"n_folds: expected 2 <= n_folds <= {n} (number of engines), got {n_folds}")
    n_cuts = 1 if every else check_int("n_cuts", n_cuts, minimum=1)
    min_cycles = check_int("min_cycles", min_cycles, minimum=1)
    max_rul = check_int("max_rul", max_rul, minimum=1)
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
            ruls = np.arange(1, hi + 1) if every else rng.integers(1, hi + 1, size=n_cuts)
            cuts += [Cut(int(e), T - int(rul), int(rul)) for rul in ruls]
        yield train, cuts


def cut_positions(cuts, lengths) -> tuple[np.ndarray, np.ndarray]:
    """``(engines, n_observed)`` of each cut, checked against the engines' ``lengths``.

    What a model needs to predict every cut from one pass over each engine: cut ``j`` is
    engine ``engines[j]`` observed for its first ``n_observed[j]`` cycles (at least one, at
    most all of them).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    engines = np.empty(len(cuts), dtype=np.int64)
    n_observed = np.empty(len(cuts), dtype=np.int64)
    for j, c in enumerate(cuts):
        if not isinstance(c, Cut):
            raise ParameterError(f"cuts[{j}]: expected a Cut (engine, n_observed, rul), got {type(c).__name__}")
        e = check_int(f"cuts[{j}].engine", c.engine, minimum=0)
        if e >= len(lengths):
            raise ParameterError(f"cuts[{j}].engine: expected an engine index below {len(lengths)}, got {e}")
        n = check_int(f"cuts[{j}].n_observed", c.n_observed, minimum=1)
        if n > lengths[e]:
            raise ParameterError(f"cuts[{j}].n_observed: engine {e} has {lengths[e]} cycles, got {n}")
        engines[j], n_observed[j] = e, n
    return engines, n_observed


def _engine_groups(cuts):
    """``(inverse, counts)``: each cut's position among the distinct engines (sorted), and their cut counts."""
    engines = np.array([c.engine for c in cuts], dtype=np.int64)
    if engines.size == 0:
        raise DataError("cuts: expected at least one cut")
    _, inverse, counts = np.unique(engines, return_inverse=True, return_counts=True)
    return inverse, counts


def cut_weights(cuts) -> np.ndarray:
    """One over the number of cuts of each cut's engine: every engine weighs 1 in total."""
    inverse, counts = _engine_groups(cuts)
    return 1.0 / counts[inverse]


def per_engine_means(values, cuts) -> np.ndarray:
    """The mean of ``values`` (one per cut) over each engine's cuts, engines in increasing order:
    the independent units for a standard error (an engine's cuts are strongly dependent)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(cuts),):
        raise ShapeError(f"values: expected one value per cut ({len(cuts)}), got shape {values.shape}")
    inverse, counts = _engine_groups(cuts)
    return np.bincount(inverse, weights=values) / counts


def simulated_test_sets(predicted, true, cuts, n_draws: int = 2000, rng=None) -> dict:
    """RMSE and PHM08 score of test sets drawn from cross-validated cuts.

    A test set has one cut of each engine, so its figures vary with where the
    engines happen to be cut. Each draw picks one cut of every engine uniformly
    among its cuts (with ``n_cuts="all"``: a fresh test set of these engines)
    and scores the predictions made at those cuts. Returns ``{"rmse": (n_draws,),
    "score": (n_draws,)}``; their quantiles say what a 100-engine test set's
    figures may be for the same model.
    """
    p, t = _pair(predicted, true)
    if len(cuts) != p.shape[0]:
        raise ShapeError(f"cuts: got {len(cuts)} cuts for {p.shape[0]} predictions")
    n_draws = check_int("n_draws", n_draws, minimum=1)
    engines = np.array([c.engine for c in cuts], dtype=np.int64)
    order = np.argsort(engines, kind="stable")
    _, start, count = np.unique(engines[order], return_index=True, return_counts=True)
    pick = order[start + (as_rng(rng).random((n_draws, len(count))) * count).astype(np.int64)]
    return {"rmse": np.sqrt(np.mean((p - t)[pick] ** 2, axis=1)), "score": phm08_scores(p, t)[pick].sum(axis=1)}
