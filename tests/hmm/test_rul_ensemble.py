"""The linear pool of RUL predictions: mixture algebra, pooled predictions and CV, the ensemble of pipelines."""

import os

import numpy as np
import pytest

from hmm.emissions import GaussianEmissionParams
from hmm.model import HMMParams
from hmm.rul import (
    ARPHMMRUL,
    RULEnsemble,
    RULPipeline,
    combine_cv,
    cross_validate,
    pool_predictions,
    recalibrated_levels,
)
from statespace.datasets.cmapss import SensorFeatures
from statespace.errors import ParameterError, ShapeError
from statespace.prognostics import mixture, rul_report

DATA = os.environ.get(
    "CMAPSS_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cmapss"))
)
needs_data = pytest.mark.skipif(
    not os.path.isfile(os.path.join(DATA, "train_FD001.txt")), reason="CMAPSS FD001 not available"
)


def _known_model(p_stay, K=6, cap=100.0):
    """A fitted-looking ARPHMMRUL with hand-set parameters: stage means 0, -1, -2, ..."""
    model = ARPHMMRUL(n_states=K, lags=0, cap=cap)
    model.hmm = model._new_hmm(1)
    A = np.zeros((K, K))
    for k in range(K - 1):
        A[k, k], A[k, k + 1] = p_stay, 1 - p_stay
    A[-1, -1] = 1.0
    W = -np.arange(K, dtype=float).reshape(K, 1, 1)
    covs = np.tile(0.3 * np.eye(1), (K, 1, 1))
    model.hmm.params = HMMParams(np.eye(K)[0], A, GaussianEmissionParams(W, covs, W[:, 0], covs.copy(), 0, 0))
    return model


def test_mixture_against_a_direct_computation():
    a = _known_model(0.8).rul_distribution(np.eye(6)[1])  # short grid
    b = _known_model(0.95).rul_distribution(np.eye(6)[0])  # long grid
    w = np.array([0.3, 0.7])
    mix = mixture([a, b], w)
    n = max(len(a.pmf), len(b.pmf))
    direct = np.zeros(n)
    direct[: len(a.pmf)] += 0.3 * a.pmf
    direct[: len(b.pmf)] += 0.7 * b.pmf
    np.testing.assert_allclose(mix.pmf, direct, rtol=0, atol=1e-15)
    x = np.arange(n)
    # moments: law of total expectation / variance, and the grid itself (tails below 1e-10)
    assert mix.mean == pytest.approx(0.3 * a.mean + 0.7 * b.mean, rel=1e-12)
    assert mix.mean == pytest.approx(x @ direct, rel=1e-6)
    assert mix.var == pytest.approx(((x - x @ direct) ** 2) @ direct, rel=1e-5)
    # quantiles by brute force on the pooled cdf
    c = np.cumsum(direct)
    for q in (0.05, 0.5, 0.95):
        assert mix.quantile(q) == np.flatnonzero(c >= q - 1e-12)[0]
    assert mixture([a, b]).mean == pytest.approx(0.5 * (a.mean + b.mean))  # equal weights by default
    with pytest.raises(ShapeError):
        mixture([])
    with pytest.raises(ParameterError, match="weights"):
        mixture([a, b], [1.2, -0.2])
    with pytest.raises(ShapeError, match="weights"):
        mixture([a, b], [1.0])


def test_pooled_prediction_is_the_mixture_and_its_point_the_weighted_mean():
    rng = np.random.default_rng(0)
    ys = [np.r_[rng.normal(0, 0.5, 20), rng.normal(-1, 0.5, n)][:, None] for n in (2, 6, 12)]
    members = [_known_model(0.85).predict(ys), _known_model(0.93).predict(ys)]
    w = [0.25, 0.75]
    pooled = pool_predictions(members, w, point_cap=100.0)
    # E[min(RUL, cap)] is linear in the distribution: the members' point forecasts, weighted
    np.testing.assert_allclose(pooled.rul, 0.25 * members[0].rul + 0.75 * members[1].rul, rtol=1e-12)
    np.testing.assert_allclose(pooled.mean, 0.25 * members[0].mean + 0.75 * members[1].mean, rtol=1e-12)
    for e in range(3):
        d = mixture([members[0].distributions[e], members[1].distributions[e]], w)
        assert (pooled.q05[e], pooled.q50[e], pooled.q95[e]) == tuple(d.quantile([0.05, 0.5, 0.95]))
        # the pool lies between its members
        assert min(m.q50[e] for m in members) <= pooled.q50[e] <= max(m.q50[e] for m in members)
    # one member: the member itself
    alone = pool_predictions(members[:1], point_cap=100.0)
    np.testing.assert_allclose(alone.rul, members[0].rul)
    assert np.array_equal(alone.q95, members[0].q95)
    with pytest.raises(ShapeError, match="predictions"):
        pool_predictions([members[0], _known_model(0.9).predict(ys[:2])], point_cap=100.0)


def _pipelines():
    return [
        RULPipeline(SensorFeatures(baseline_cycles=10), ARPHMMRUL(n_states=6, lags=0, cap=120.0, max_iter=4)),
        RULPipeline(
            SensorFeatures(baseline_cycles=10),
            ARPHMMRUL(n_states=5, lags=0, cap=120.0, max_iter=4, readout="empirical", age_bandwidth=10.0),
        ),
    ]


@needs_data
def test_combine_cv_and_the_fitted_ensemble_on_engines():
    from statespace.datasets import load_cmapss

    data = load_cmapss(DATA)
    sens, sets = data.train.split(data.train.sensors)[:10], data.train.split(data.train.settings)[:10]
    factories = [lambda i=i: _pipelines()[i] for i in range(2)]
    cvs = [cross_validate(f, sens, sets, n_folds=2, n_cuts=2, rng=3, progress=False) for f in factories]
    pooled = combine_cv(cvs, point_cap=120.0)
    np.testing.assert_allclose(pooled.prediction.rul, 0.5 * (cvs[0].prediction.rul + cvs[1].prediction.rul), rtol=1e-12)
    assert np.array_equal(pooled.weights, np.full(20, 0.5))  # two cuts of each engine
    assert pooled.report == rul_report(
        pooled.prediction.rul, cvs[0].true_rul, pooled.prediction.q05, pooled.prediction.q95, pooled.weights
    )
    other = cross_validate(factories[0], sens, sets, n_folds=2, n_cuts=2, rng=4, progress=False)
    with pytest.raises(ParameterError, match="cuts"):
        combine_cv([cvs[0], other], point_cap=120.0)

    ens = RULEnsemble(_pipelines())
    fits = ens.fit(sens, sets, rng=0, progress=False)
    assert len(fits) == 2
    test = data.test.split(data.test.sensors)[:4], data.test.split(data.test.settings)[:4]
    pred = ens.predict(*test)
    members = [m.predict(*test) for m in ens.members]
    # each member fits from its own generator spawned from rng (so that members can fit as independent jobs)
    for alone, member_rng, fit in zip(_pipelines(), np.random.default_rng(0).spawn(2), fits):
        np.testing.assert_array_equal(
            alone.fit(sens, sets, rng=member_rng, progress=False).log_likelihoods, fit.log_likelihoods
        )
    np.testing.assert_allclose(pred.rul, 0.5 * (members[0].rul + members[1].rul), rtol=1e-12)
    # recalibration: the levels are the PIT quantiles of the pooled CV distributions
    ens.calibrate(pooled.prediction.distributions, pooled.true_rul, rng=1)
    want = recalibrated_levels(pooled.prediction.distributions, pooled.true_rul, rng=1)
    np.testing.assert_array_equal(ens.pit_levels[1], want[1])
    after = ens.predict(*test)
    lv = np.interp([0.05, 0.95], *want)
    assert np.array_equal(after.q05, [d.quantile(lv[0]) for d in after.distributions])
    assert np.array_equal(after.q95, [d.quantile(lv[1]) for d in after.distributions])
    with pytest.raises(ShapeError, match="weights"):
        RULEnsemble(_pipelines(), weights=[1.0])
    with pytest.raises(ParameterError, match="point"):
        RULEnsemble(_pipelines(), point="mode")
