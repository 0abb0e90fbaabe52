r"""The point forecast of predictive RUL distributions, chosen by cross-validation.

A predictive RUL distribution :math:`p(r \mid y_{0:t})` offers many point
forecasts. Under the field's convention of capped RUL targets the forecast is
the capped mean

.. math::

    m_c = E[\min(R, c)] = \sum_r \min(r, c)\, p(r \mid y_{0:t}),

which never exceeds :math:`c`. The cap :math:`c` is a *decision*, not a model
parameter: a higher cap lifts the forecasts of healthy engines (whose true
RUL may be well above 125 cycles) and so lowers the squared error there, but
risks late forecasts, which the PHM08 score punishes harder than early ones
(:func:`statespace.prognostics.phm08_scores`). It should be chosen for the
loss the forecasts will be judged by.

:func:`select_point_cap` does so from cross-validated distributions at cuts
built like a test set (:func:`statespace.prognostics.truncation_splits`).
For each candidate cap it computes the expected RMSE and PHM08 score of a
test set with one cut per engine (cuts weighted by
:func:`statespace.prognostics.cut_weights`), and, when targets are given
(``max_rmse`` and/or ``max_score``), the probability that such a test set
meets them, estimated by :func:`statespace.prognostics.simulated_test_sets`
with the *same* draws for every cap, so that the caps are compared on paired
test sets. The selected cap maximises that probability (ties: the lower
expected RMSE); without targets it minimises the expected RMSE.

Example::

    import numpy as np
    from statespace.prognostics import select_point_cap, time_to_absorption, truncation_splits
    lengths = np.random.default_rng(0).integers(130, 360, 40)
    cuts = [c for _, fold in truncation_splits(lengths, n_cuts=2, rng=0) for c in fold]
    # stand-ins for cross-validated predictions (hmm.rul.cross_validate): geometric RUL, mean the truth
    dists = [time_to_absorption([1.0, 0.0], [[1 - 1 / (c.rul + 1), 1 / (c.rul + 1)], [0.0, 1.0]], absorbing=[1])
             for c in cuts]
    sel = select_point_cap(dists, [c.rul for c in cuts], cuts,
                           caps=(125, 130, 135, 140), max_rmse=60.0, max_score=5000.0, rng=0)
    sel.cap, sel.p_targets      # chosen cap; P(one test set meets both) per cap
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ParameterError, ShapeError
from ..validation import as_float_array, as_rng
from .cross_validation import cut_weights, simulated_test_sets
from .metrics import rul_report
from .phase_type import _capped_means


class PointCapSelection(NamedTuple):
    """Candidate caps of the capped-mean point forecast and their cross-validated figures.

    ``rmse``: expected RMSE over the cut, per cap; ``score``: expected PHM08 score
    of a test set with one cut per engine (the sum over engines); ``p_targets``:
    the simulated probability that such a test set meets the targets (``None``
    without targets); ``cap``: the selected cap.
    """

    cap: float
    caps: np.ndarray
    rmse: np.ndarray
    score: np.ndarray
    p_targets: np.ndarray | None


def capped_means(distributions, caps) -> np.ndarray:
    """``E[min(R, c)]`` of each distribution (rows) for each cap ``c`` (columns)."""
    return _capped_means(distributions, _check_caps(caps))


def select_point_cap(
    distributions,
    true_rul,
    cuts,
    caps,
    *,
    max_rmse: float | None = None,
    max_score: float | None = None,
    n_draws: int = 4000,
    rng=None,
) -> PointCapSelection:
    """Choose the cap of the capped-mean point forecast from cross-validated predictions (module docstring).

    Args:
        distributions: one predictive :class:`statespace.prognostics.PhaseTypeDistribution` per cut.
        true_rul: ``(n,)`` true RUL at each cut.
        cuts: the :class:`statespace.prognostics.Cut` of each prediction (engines and their number of cuts).
        caps: candidate caps (positive, finite).
        max_rmse, max_score: targets for one test set; either, both or neither.
        n_draws: simulated test sets for the probability of meeting the targets.
        rng: seed or ``np.random.Generator`` of those draws (one stream, shared by every cap).
    """
    caps = _check_caps(caps)
    true_rul = as_float_array("true_rul", true_rul, 1)
    if true_rul.size != len(distributions):
        raise ShapeError(
            f"true_rul: expected one true RUL per distribution ({len(distributions)}), got {true_rul.size}"
        )
    if len(cuts) != true_rul.size:
        raise ShapeError(f"cuts: got {len(cuts)} cuts for {true_rul.size} predictions")
    for name, value in (("max_rmse", max_rmse), ("max_score", max_score)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ParameterError(f"{name}: expected a positive finite target or None, got {value}")
    points = capped_means(distributions, caps)
    # cut-weighted figures: expectations over the cut; the score is that of one test set (each engine weighs 1)
    reports = [rul_report(points[:, j], true_rul, weights=cut_weights(cuts)) for j in range(caps.size)]
    rmse, score = (np.array([r[k] for r in reports]) for k in ("rmse", "score"))
    if max_rmse is None and max_score is None:
        return PointCapSelection(float(caps[np.argmin(rmse)]), caps, rmse, score, None)
    seed = as_rng(rng).integers(2**63)
    p = np.empty(caps.size)
    for j in range(caps.size):
        sim = simulated_test_sets(points[:, j], true_rul, cuts, n_draws=n_draws, rng=seed)  # same draws for every cap
        met = np.ones(n_draws, dtype=bool)
        if max_rmse is not None:
            met &= sim["rmse"] <= max_rmse
        if max_score is not None:
            met &= sim["score"] <= max_score
        p[j] = met.mean()
    best = min(range(caps.size), key=lambda j: (-p[j], rmse[j]))
    return PointCapSelection(float(caps[best]), caps, rmse, score, p)


def _check_caps(caps) -> np.ndarray:
    caps = np.atleast_1d(np.asarray(caps, dtype=np.float64))
    if caps.ndim != 1 or caps.size == 0:
        raise ShapeError(f"caps: expected a non-empty 1-D sequence of caps, got shape {caps.shape}")
    bad = np.flatnonzero(~(np.isfinite(caps) & (caps > 0)))
    if bad.size:
        raise ParameterError(f"caps[{bad[0]}]: expected a positive finite cap, got {caps[bad[0]]}")
    return caps
