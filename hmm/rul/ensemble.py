r"""Ensembles of RUL pipelines: the linear pool of their predictive distributions.

Pipelines ``i = 1..M`` (:class:`hmm.rul.RULPipeline`, e.g. the classical
ARPHMM and the S5-emission ARPHMM of ``hmm.rul.deep``), each fitted on the
same engines, give predictive RUL distributions :math:`p_i(r \mid y_{0:t})` for
an engine observed up to cycle ``t``. The ensemble predicts with

.. math::

    p(r \mid y_{0:t}) = \sum_{i=1}^{M} w_i\, p_i(r \mid y_{0:t}), \qquad w_i \ge 0,\ \sum_i w_i = 1,

equal weights by default (a linear opinion pool: no weight is learned, so
cross-validating the ensemble costs nothing beyond its members' CV, see
:func:`combine_cv`). Point forecast, quantiles and PIT recalibration follow
the members' conventions (:func:`hmm.rul.predict_from_distributions`). The
pooled capped mean :math:`E[\min(r, c)]` is the weighted mean of the members'
capped means, so its squared error is at most the weighted mean of theirs
(convexity), and strictly less where the members disagree; the pooled
intervals widen where they disagree.

Example::

    # needs data: NASA CMAPSS FD001 in the folder named by $CMAPSS_DIR
    import os
    from hmm.rul import ARPHMMRUL, RULEnsemble, RULPipeline
    from statespace.datasets import load_cmapss
    data = load_cmapss(os.environ["CMAPSS_DIR"], "FD001")
    train_sensors, train_settings = data.train.split(data.train.sensors)[:20], data.train.split(data.train.settings)[:20]
    test_sensors, test_settings = data.test.split(data.test.sensors)[:5], data.test.split(data.test.settings)[:5]
    ens = RULEnsemble([RULPipeline(model=ARPHMMRUL(n_states=8, lags=1, cap=60)),   # any fitted-or-not pipelines,
                       RULPipeline(model=ARPHMMRUL(n_states=8, lags=0, cap=60))])  # e.g. a deep and a classical one
    ens.fit(train_sensors, train_settings, rng=0, progress=False)
    pred = ens.predict(test_sensors, test_settings)    # pred.rul, pred.q05, pred.q50, pred.q95
"""

from __future__ import annotations

import numpy as np

from statespace.distributed import map_jobs
from statespace.errors import ParameterError, ShapeError
from statespace.persistence import register_loadable
from statespace.prognostics import mixture, rul_report
from statespace.validation import as_rng, check_probability_vector

from .models import (
    CVResult,
    RULPipeline,
    RULPrediction,
    predict_cuts,
    predict_from_distributions,
    recalibrated_levels,
)
from .state import SavedRULModel, levels_from_array, pit_array


def _weights(weights, n: int) -> np.ndarray:
    if n < 1:
        raise ShapeError("members: expected at least one RUL pipeline or CV result")
    return np.full(n, 1.0 / n) if weights is None else check_probability_vector("weights", weights, n)


def pool_predictions(
    predictions, weights=None, *, point_cap: float, point="capped_mean", pit_levels=None
) -> RULPrediction:
    """The linear pool of members' :class:`hmm.rul.RULPrediction` for the same engines, engine by engine.

    ``point`` and ``point_cap`` give the pool's point forecast (predictions do not
    carry their model's; pass the members' for comparable figures). ``state_probs``
    of the result is the first member's.
    """
    preds = list(predictions)
    w = _weights(weights, len(preds))
    n = len(preds[0].distributions)
    for i, p in enumerate(preds):
        if len(p.distributions) != n:
            raise ShapeError(f"predictions[{i}]: {len(p.distributions)} engines, expected {n} like predictions[0]")
    dists = [mixture([p.distributions[e] for p in preds], w) for e in range(n)]
    return predict_from_distributions(dists, preds[0].state_probs, point, point_cap, pit_levels)


def combine_cv(results, weights=None, *, point_cap: float, point="capped_mean") -> CVResult:
    """Cross-validated predictions of the ensemble of the members whose CV results are given.

    The members must have been cross-validated on the same folds and cuts
    (same ``rng``); the pool is then formed cut by cut (point forecast as in
    :func:`pool_predictions`), and the report is computed as
    :func:`hmm.rul.cross_validate` does (raw, uncalibrated intervals).
    """
    results = list(results)
    _weights(weights, len(results))
    for i, r in enumerate(results[1:], start=1):
        if r.cuts != results[0].cuts:
            raise ParameterError(
                f"results[{i}]: cross-validated on other cuts than results[0]; "
                "cross-validate every member with the same rng"
            )
    pred = pool_predictions([r.prediction for r in results], weights, point_cap=point_cap, point=point)
    first = results[0]
    report = rul_report(pred.rul, first.true_rul, pred.q05, pred.q95, first.weights)
    return CVResult(first.cuts, pred, first.true_rul, report, first.weights)


class RULEnsemble(SavedRULModel):
    """Linear pool of fitted RUL pipelines (module docstring).

    Args:
        members: pipelines with ``fit(sensors, settings, rng, progress)`` and
            ``predict(sensors, settings) -> RULPrediction`` (:class:`hmm.rul.RULPipeline`).
        weights: pool weights (default: equal).
        point, point_cap: the point forecast (default: the first member's model's).
    """

    def __init__(self, members, weights=None, point: str | None = None, point_cap: float | None = None):
        self.members = list(members)
        self.weights = _weights(weights, len(self.members))
        first = self.members[0].model
        self.point = first.point if point is None else point
        if self.point not in ("capped_mean", "median"):
            raise ParameterError(f"point: expected 'capped_mean' or 'median', got {self.point!r}")
        self.point_cap = float(first.point_cap if point_cap is None else point_cap)
        self.pit_levels = None

    def fit(self, sensors, settings=None, rng=None, progress: bool = True) -> list:
        """Fit every member on the same engines; returns their fit results.

        Each member fits with its own generator spawned from ``rng``, so the members fit as
        independent jobs (:func:`statespace.distributed.map_jobs`) with the same result
        anywhere: inside a :func:`statespace.distributed.use` block, on the workers, and
        ``members`` then holds the fitted copies they send back.
        """
        rng = as_rng(rng)

        def fit_member(job):
            member, member_rng = job
            return member, member.fit(sensors, settings, rng=member_rng, progress=progress)

        done = map_jobs(fit_member, list(zip(self.members, rng.spawn(len(self.members)))))
        self.members = [member for member, _ in done]
        return [fit for _, fit in done]

    def predict(self, sensors, settings=None) -> RULPrediction:
        """Pooled predictive RUL of each engine (recalibrated when :meth:`calibrate` was called)."""
        return self._pool([m.predict(sensors, settings) for m in self.members])

    def predict_cuts(self, sensors, settings, cuts) -> RULPrediction:
        """Pooled predictive RUL of each cut (:func:`hmm.rul.predict_cuts` of every member)."""
        return self._pool([predict_cuts(m, sensors, settings, cuts) for m in self.members])

    def _pool(self, preds) -> RULPrediction:
        return pool_predictions(
            preds, self.weights, point_cap=self.point_cap, point=self.point, pit_levels=self.pit_levels
        )

    def calibrate(self, distributions, true_rul, rng=None, weights=None) -> RULEnsemble:
        """PIT recalibration of the quantile levels from the pool's cross-validated distributions
        (:func:`combine_cv`), as :meth:`hmm.rul.ChainRULModel.calibrate`. Returns ``self``."""
        self.pit_levels = recalibrated_levels(distributions, true_rul, rng, weights)
        return self

    def _persist_state(self) -> dict:
        for i, member in enumerate(self.members):
            if not isinstance(member, RULPipeline):
                raise ParameterError(
                    f"members[{i}]: only RULPipeline members can be saved, got {type(member).__name__}"
                )
        return {
            "members": self.members,
            "weights": self.weights,
            "point": self.point,
            "point_cap": self.point_cap,
            "pit_levels": pit_array(self.pit_levels),
        }

    @classmethod
    def _from_persisted(cls, state: dict) -> RULEnsemble:
        members = state["members"]
        if not isinstance(members, list) or not all(isinstance(m, RULPipeline) for m in members):
            raise ParameterError("members: expected a list of RULPipeline")
        pool = cls(members, state["weights"], state["point"], state["point_cap"])
        pool.pit_levels = levels_from_array(state["pit_levels"])
        return pool


register_loadable(RULEnsemble)
