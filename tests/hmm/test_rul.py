"""ARPHMM RUL model: plausibilities, phase-type predictions against closed forms, the pipeline end to end."""

import math
import os

import numpy as np
import pytest
from scipy import stats

from hmm.emissions import GaussianEmissionParams
from hmm.forward_backward import forward
from hmm.model import HMMParams
from hmm.rul import ARPHMMRUL, RULPipeline, cross_validate, life_fraction_plausibilities, recalibrated_levels
from statespace.datasets.cmapss import SensorFeatures
from statespace.errors import DataError, ParameterError, ShapeError
from statespace.prognostics import time_to_absorption

DATA = os.environ.get(
    "CMAPSS_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cmapss"))
)
needs_data = pytest.mark.skipif(
    not os.path.isfile(os.path.join(DATA, "train_FD001.txt")), reason="CMAPSS FD001 not available"
)


def test_life_fraction_plausibilities():
    K, cap = 7, 100.0  # 5 stages of 20 cycles
    pl = life_fraction_plausibilities(150, K, cap, softness=0.5)
    assert pl.shape == (151, K)
    np.testing.assert_array_equal(pl[-1], np.eye(K)[-1])  # failure step
    assert (pl[:-1, -1] == 0).all()  # the failed state is ruled out while running
    rul = np.arange(149, -1, -1)
    # inside a bin: plausibility one; healthy while RUL >= cap
    np.testing.assert_array_equal(pl[:-1][rul >= 100, 0], 1.0)
    for k in range(1, 6):
        inside = (rul >= 100 - 20 * k) & (rul < 100 - 20 * (k - 1))
        np.testing.assert_array_equal(pl[:-1][inside, k], 1.0)
    # one stage span away from a bin: exp(-0.5 * (1 / 0.5)^2)
    t = int(np.flatnonzero(rul == 21)[0])  # RUL 21 is one cycle above stage 5 (RUL 0..20): distance 1/20 span
    assert pl[t, 5] == pytest.approx(math.exp(-0.5 * (1 / 20 / 0.5) ** 2))
    t = int(np.flatnonzero(rul == 99)[0])  # stage 1 covers [80, 100); stage 3 covers [40, 60): 39 cycles away
    assert pl[t, 3] == pytest.approx(math.exp(-0.5 * (39 / 20 / 0.5) ** 2))
    with pytest.raises(ParameterError, match="n_states"):
        life_fraction_plausibilities(10, 2, 100.0)


def _known_model(p_stay, K=6, d=1):
    """A fitted-looking ARPHMMRUL with hand-set parameters: stage means 0, -1, -2, ..."""
    model = ARPHMMRUL(n_states=K, lags=0, cap=100.0)
    model.hmm = model._new_hmm(d)
    A = np.zeros((K, K))
    for k in range(K - 1):
        A[k, k], A[k, k + 1] = p_stay, 1 - p_stay
    A[-1, -1] = 1.0
    W = -np.arange(K, dtype=float).reshape(K, 1, 1)
    covs = np.tile(0.3 * np.eye(d), (K, 1, 1))
    model.hmm.params = HMMParams(np.eye(K)[0], A, GaussianEmissionParams(W, covs, W[:, 0], covs.copy(), 0, 0))
    return model


@pytest.mark.parametrize("stage", [0, 2, 4])
def test_rul_from_a_known_state_is_negative_binomial(stage):
    p, K = 0.9, 6
    model = _known_model(p, K)
    m = K - 1 - stage  # geometric sojourns left before absorption
    dist = model.rul_distribution(np.eye(K)[stage])
    # tau ~ NegBin: P(tau = n) = C(n-1, m-1) (1-p)^m p^(n-m), n >= m; RUL = tau - 1
    nb = stats.nbinom(m, 1 - p, loc=m - 1)  # scipy counts failures before m successes
    x = np.arange(len(dist.pmf))
    np.testing.assert_allclose(dist.pmf, nb.pmf(x), atol=1e-12)
    assert dist.mean == pytest.approx(m / (1 - p) - 1)
    assert dist.var == pytest.approx(m * p / (1 - p) ** 2)
    for q in (0.05, 0.5, 0.95):
        assert dist.quantile(q) == nb.ppf(q)


def test_predict_uses_the_filter_and_phase_type():
    model = _known_model(0.85)
    rng = np.random.default_rng(0)
    y = np.r_[rng.normal(0, 0.5, 20), rng.normal(-1, 0.5, 6), rng.normal(-2, 0.5, 5)][:, None]
    filt = model.filter(y)
    p = model.hmm.params
    ll = model.hmm.emission_model.log_likelihood(p.emission, y, np.zeros((len(y), 0)))
    np.testing.assert_allclose(filt, forward(p.pi0, p.A[None], ll)[1], atol=1e-10)  # oracle: scaled forward pass
    pred = model.predict([y, y[:10]])
    ref = time_to_absorption(filt[-1], p.A, absorbing=[5], offset=1)
    assert pred.q05[0] == ref.quantile(0.05) and pred.q95[0] == ref.quantile(0.95)
    assert pred.mean[0] == pytest.approx(ref.mean)
    assert pred.rul[0] == pytest.approx(ref.truncated_mean(100.0))
    assert pred.rul[1] > pred.rul[0]  # earlier cut, still healthy: longer life ahead
    # an engine far from every stage: the log-space filter still returns probabilities
    far = model.filter(np.full((5, 1), 60.0))
    assert np.isfinite(far).all()
    np.testing.assert_allclose(far.sum(1), 1.0)


def test_calibration_of_a_correct_model_is_the_identity():
    rng = np.random.default_rng(1)
    model = _known_model(0.8)
    dists = [model.rul_distribution(np.eye(6)[k]) for k in rng.integers(0, 5, 2000)]
    truth = [rng.choice(len(d.pmf), p=d.pmf / d.pmf.sum()) for d in dists]
    model.calibrate(dists, truth, rng=2)
    nominal, levels = model.pit_levels
    # randomised PIT of the true distribution is U(0, 1): DKW band at 99.9%
    eps = math.sqrt(math.log(2 / 0.001) / (2 * 2000))
    assert np.max(np.abs(levels - nominal)) < eps


def test_weighted_calibration_places_pit_values_at_their_cumulative_weight():
    rng = np.random.default_rng(6)
    model = _known_model(0.8)
    dists = [model.rul_distribution(np.eye(6)[k]) for k in rng.integers(0, 5, 300)]
    truth = rng.integers(0, 30, 300)
    draws = np.random.default_rng(5)  # the randomised PIT values, written out
    u = np.array([d.cdf(r - 1) + draws.random() * (d.cdf(r) - d.cdf(r - 1)) for d, r in zip(dists, truth)])
    nominal = np.linspace(0, 1, 201)
    equal = recalibrated_levels(dists, truth, rng=5, weights=np.full(300, 0.3))
    np.testing.assert_allclose(equal[1], np.quantile(u, nominal), atol=1e-12)
    np.testing.assert_allclose(recalibrated_levels(dists, truth, rng=5)[1], equal[1], atol=1e-12)
    keep = rng.random(300) < 0.5  # zero weight drops a pair
    np.testing.assert_allclose(
        recalibrated_levels(dists, truth, rng=5, weights=keep.astype(float))[1],
        np.quantile(u[keep], nominal),
        atol=1e-12,
    )
    # weights 2 and 1: each sorted value sits at its cumulative weight, linear in between
    w = np.where(np.arange(300) % 3 == 0, 2.0, 1.0)
    order = np.argsort(u)
    pos = np.cumsum(w[order]) - w[order][0]
    got = recalibrated_levels(dists, truth, rng=5, weights=w)[1]
    np.testing.assert_allclose(got, np.interp(nominal, pos / pos[-1], u[order]), atol=1e-12)
    with pytest.raises(DataError, match="weights"):
        recalibrated_levels(dists, truth, weights=np.full(300, -1.0))
    with pytest.raises(ShapeError, match="weights"):
        recalibrated_levels(dists, truth, weights=np.ones(3))


def test_horizon_conditions_the_prediction():
    model = _known_model(0.97)
    model.horizon = 30
    d = model.rul_distribution(np.eye(6)[0])
    assert d.support[-1] == 30 and d.pmf.sum() == pytest.approx(1.0)
    assert d.quantile(0.95) <= 30


def test_empirical_readout_mixes_state_rul_tables_at_the_cut_age():
    """predict() with readout='empirical' against the readout refitted by hand on the filtered training engines."""
    from statespace.prognostics import StateRULReadout

    rng = np.random.default_rng(4)
    train = [np.cumsum(rng.normal(-0.05, 0.3, (T, 2)), axis=0) for T in rng.integers(60, 90, 8)]
    model = ARPHMMRUL(
        n_states=6,
        lags=0,
        cap=40.0,
        covariance_type="diag",
        horizon=50,
        max_iter=4,
        readout="empirical",
        age_bandwidth=6.0,
    )
    model.fit(train, rng=0, progress=False)
    ref = StateRULReadout(age_bandwidth=6.0).fit([model.hmm.filter(s).filtered_probs for s in train])
    test = [train[0][:35], train[3][:50]]
    pred = model.predict(test)
    for i, s in enumerate(test):
        d = ref.distribution(model.hmm.filter(s).filtered_probs[-1], len(s) - 1).conditioned_below(50)
        np.testing.assert_allclose(pred.distributions[i].pmf, d.pmf, atol=1e-12)
        assert pred.q05[i] == d.quantile(0.05) and pred.q95[i] == d.quantile(0.95)
        assert pred.rul[i] == pytest.approx(d.truncated_mean(40.0))
    with pytest.raises(ParameterError, match="age"):
        model.rul_distribution(pred.state_probs[0])
    with pytest.raises(ParameterError, match="readout"):
        ARPHMMRUL(readout="kaplan-meier")


def _same_predictions(got, want, rtol=1e-10):
    for f in ("rul", "mean", "state_probs"):
        np.testing.assert_allclose(getattr(got, f), getattr(want, f), rtol=rtol, atol=1e-12, err_msg=f)
    for f in ("q05", "q50", "q95"):
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)
    for a, b in zip(got.distributions, want.distributions, strict=True):
        np.testing.assert_allclose(a.pmf, b.pmf, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("readout", ["phase_type", "empirical"])
def test_predict_cuts_equals_predict_of_the_truncated_engines(readout):
    """Every cut predicted from one filtering pass per engine against predict() of each truncation
    (cuts of several engines, out of order, one engine cut at its last cycle)."""
    from statespace.prognostics import Cut

    rng = np.random.default_rng(5)
    engines = [np.cumsum(rng.normal(-0.05, 0.3, (T, 2)), axis=0) for T in rng.integers(60, 90, 9)]
    model = ARPHMMRUL(n_states=6, lags=0, cap=40.0, covariance_type="diag", horizon=50, max_iter=3, readout=readout)
    model.fit(engines[:6], rng=0, progress=False)
    cuts = [Cut(7, 40, 0), Cut(6, 12, 0), Cut(7, 21, 0), Cut(8, len(engines[8]), 0), Cut(6, 55, 0), Cut(7, 1, 0)]
    want = model.predict([engines[c.engine][: c.n_observed] for c in cuts])
    _same_predictions(model.predict_cuts(engines, cuts), want)
    with pytest.raises(ParameterError, match=r"cuts\[1\].n_observed: engine 6 has"):
        model.predict_cuts(engines, [cuts[0], Cut(6, len(engines[6]) + 1, 0)])
    with pytest.raises(ParameterError, match=r"cuts\[0\].engine: expected an engine index below 9"):
        model.predict_cuts(engines, [Cut(9, 5, 0)])
    with pytest.raises(ParameterError, match=r"cuts\[0\]: expected a Cut"):
        model.predict_cuts(engines, [(1, 5, 0)])


@needs_data
def test_pipeline_and_pool_predict_cuts_equal_predict_of_the_truncated_engines():
    """RULPipeline.predict_cuts (one feature transform and one filter pass per engine; cuts shorter
    than the features' baseline transformed on their own) and the pool's, against predict() of the
    truncated sensor and setting arrays; a pipeline without predict_cuts goes through predict."""
    from hmm.rul import RULEnsemble, predict_cuts
    from statespace.datasets import load_cmapss
    from statespace.prognostics import Cut

    data = load_cmapss(DATA)
    sens = data.train.split(data.train.sensors)[:12]
    sets = data.train.split(data.train.settings)[:12]
    members = [
        RULPipeline(
            SensorFeatures(baseline_cycles=20, health_cap=125.0),
            ARPHMMRUL(n_states=6, lags=lags, cap=120.0, max_iter=4, readout=readout, horizon=150),
        )
        for lags, readout in ((1, "phase_type"), (0, "empirical"))
    ]
    for m in members:
        m.fit(sens[:9], sets[:9], rng=0, progress=False)
    cuts = [Cut(10, 150, 0), Cut(9, 31, 0), Cut(10, 12, 0), Cut(11, 100, 0), Cut(10, 20, 0), Cut(9, 120, 0)]
    truncated = [sens[c.engine][: c.n_observed] for c in cuts], [sets[c.engine][: c.n_observed] for c in cuts]
    for m in members:
        _same_predictions(m.predict_cuts(sens, sets, cuts), m.predict(*truncated), rtol=1e-9)
    pool = RULEnsemble(members)
    _same_predictions(pool.predict_cuts(sens, sets, cuts), pool.predict(*truncated), rtol=1e-9)

    class PredictOnly:  # a user's pipeline: fit and predict only
        def predict(self, sensors, settings=None):
            return members[0].predict(sensors, settings)

    _same_predictions(predict_cuts(PredictOnly(), sens, sets, cuts), members[0].predict(*truncated), rtol=0)


@needs_data
def test_pipeline_on_a_few_engines():
    from statespace.datasets import load_cmapss

    data = load_cmapss(DATA)
    sens = data.train.split(data.train.sensors)[:12]
    sets = data.train.split(data.train.settings)[:12]

    def make():
        return RULPipeline(SensorFeatures(baseline_cycles=10), ARPHMMRUL(n_states=6, lags=1, cap=120.0, max_iter=6))

    pipe = make()
    fit = pipe.fit(sens, sets, rng=0, progress=False)
    assert np.all(np.diff(fit.log_likelihoods) >= -1e-6 * np.abs(fit.log_likelihoods[:-1]))  # EM never decreases
    A = pipe.model.transition_matrix
    assert np.allclose(np.tril(A, -1), 0) and A[-1, -1] == 1.0  # left to right, absorbing failure
    # the smoothed training engines end in the last stage
    ends = [s[-1].argmax() for s in pipe.model.smooth(pipe.transform(sens, sets))]
    assert np.mean(np.array(ends) >= 3) > 0.8
    cv = cross_validate(make, sens, sets, n_folds=3, n_cuts=1, rng=0, progress=False)
    pred = cv.prediction
    assert len(cv.true_rul) == 12 and np.isfinite(pred.rul).all()
    assert np.all(pred.q05 <= pred.q50) and np.all(pred.q50 <= pred.q95)
    assert np.all((pred.rul >= 0) & (pred.rul <= 120.0))
    assert set(cv.report) >= {"rmse", "score", "coverage"}
    pipe.model.calibrate(pred.distributions, cv.true_rul, rng=0)
    # every admissible cut: each engine weighs one, the report averages within engines first
    every = cross_validate(make, sens[:6], sets[:6], n_folds=2, n_cuts="all", rng=0, progress=False)
    engines = np.array([c.engine for c in every.cuts])
    assert len(every.cuts) == sum(min(150, len(s) - 31) for s in sens[:6])
    err2 = (every.prediction.rul - every.true_rul) ** 2
    per_engine = [err2[engines == e].mean() for e in range(6)]
    assert every.report["rmse"] == pytest.approx(math.sqrt(np.mean(per_engine)), rel=1e-12)
    assert every.report["total_weight"] == pytest.approx(6.0)
    test = data.test.split(data.test.sensors)[:4], data.test.split(data.test.settings)[:4]
    out = pipe.predict(*test)
    assert out.rul.shape == (4,) and np.all(out.q05 <= out.q95)


@needs_data
def test_example_script_runs(tmp_path):
    import csv
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "cmapss_rul.py")
    spec = importlib.util.spec_from_file_location("cmapss_rul_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "pred.csv"
    res = mod.main(
        [
            "--data",
            DATA,
            "--out",
            str(out),
            "--max-engines",
            "10",
            "--grid",
            "5,1,120,phase_type;5,0,120,empirical",
            "--folds",
            "2",
            "--cuts",
            "all",
            "--max-iter",
            "3",
            "--no-progress",
            "--save-model",
            str(tmp_path / "m"),
        ]
    )
    assert res["cv"]["total_weight"] == pytest.approx(10.0)  # every cut, each engine weighing one
    from statespace.datasets import load_cmapss

    te = load_cmapss(DATA).test
    shortest = min(len(s) for s in te.split(te.sensors)[:10])  # FD001's test engine 1: 31 cycles
    assert res["min_cycles"] == res["baseline_cycles"] == shortest
    rows = list(csv.DictReader(open(out)))
    assert [r["unit"] for r in rows] == [str(u) for u in range(1, 11)]
    assert set(rows[0]) == {"unit", "rul", "rul_q05", "rul_q50", "rul_q95"}
    # the saved model predicts the CSV again without refitting
    from hmm.rul import load_rul

    again = load_rul(tmp_path / "m.npz").predict(te.split(te.sensors)[:10], te.split(te.settings)[:10])
    np.testing.assert_allclose(again.rul, [float(r["rul"]) for r in rows], atol=0.005)
    np.testing.assert_allclose(again.q95, [float(r["rul_q95"]) for r in rows], atol=0.005)
    # the point forecast is E[min(RUL, c)] at the cap chosen by CV, among the labels' cap (120) and up to 25 above
    assert res["point_cap"] in (120.0, 125.0, 130.0, 135.0, 140.0, 145.0)
    np.testing.assert_allclose(again.rul, [d.truncated_mean(res["point_cap"]) for d in again.distributions], rtol=1e-12)
    for name in ("cmapss_health_indicator.png", "cmapss_state_posterior.png", "cmapss_rul_predictions.png"):
        assert (tmp_path / name).stat().st_size > 0


def _load_example():
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "cmapss_rul.py")
    spec = importlib.util.spec_from_file_location("cmapss_rul_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_example_grid_syntax():
    mod = _load_example()
    assert mod.parse_grid(None) == mod.DEFAULT_GRID
    assert mod.parse_grid(None, "deep") == mod.DEEP_GRID
    assert mod.DEEP_GRID[0] == ("arphmm", 30, 0, 125.0, "empirical", 0.1) and {c[0] for c in mod.DEEP_GRID[1:]} == {
        "deep"
    }
    assert mod.parse_grid("5,1,120,phase_type;deep:6,0,100") == (
        ("arphmm", 5, 1, 120.0, "phase_type", 0.5),
        ("deep", 6, 0, 100.0, "empirical", 0.1),
    )
    with pytest.raises(ValueError, match="lags 0"):
        mod.make_factory("deep", 5, 1, 120.0, 20, 3)
    with pytest.raises(ValueError, match="model"):
        mod.make_factory("lstm", 5, 0, 120.0, 20, 3)
    import argparse

    assert mod.point_cap_arg("auto") == "auto" and mod.point_cap_arg("132.5") == 132.5
    for bad in ("-3", "0", "nan", "inf", "high"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive number"):
            mod.point_cap_arg(bad)


@pytest.mark.slow
def test_example_script_compares_the_deep_model(tmp_path, capsys):
    """Deep and classical candidates on the same cuts and their pool (both deep configurations and
    the classical one), which ``--select pool`` refits (every member) and predicts with, plots from
    the first deep member's states."""
    import csv

    mod = _load_example()
    out = tmp_path / "pred.csv"
    res = mod.main(
        [
            "--data",
            DATA,
            "--out",
            str(out),
            "--max-engines",
            "6",
            "--grid",
            "5,0,120,phase_type;deep:5,0,120,phase_type;deep:5,0,120,empirical",
            "--folds",
            "2",
            "--cuts",
            "1",
            "--max-iter",
            "3",
            "--deep-max-iter",
            "1",
            "--no-progress",
            "--select",
            "pool",
            "--save-model",
            str(tmp_path / "pool"),
        ]
    )
    printed = capsys.readouterr().out
    assert "CV  deep" in printed and "CV  arphmm" in printed and "paired |error| difference" in printed
    assert (
        "CV  pool of 3 (every deep, the best classical)" in printed
        and "selected pool (equal weights) of deep" in printed
    )
    assert res["selected"][0] == "pool" and [c[0] for c in res["selected"][1:]] == ["deep", "deep", "arphmm"]
    assert printed.count("EM: ") == 3
    for name in ("cmapss_health_indicator.png", "cmapss_state_posterior.png", "cmapss_rul_predictions.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 6 and all(float(r["rul_q05"]) <= float(r["rul_q50"]) <= float(r["rul_q95"]) for r in rows)
    # the saved three-member pool predicts the CSV again without refitting
    from hmm.rul import load_rul
    from statespace.datasets import load_cmapss

    te = load_cmapss(DATA).test
    again = load_rul(tmp_path / "pool.npz").predict(te.split(te.sensors)[:6], te.split(te.settings)[:6])
    assert len(again.distributions) == 6
    np.testing.assert_allclose(again.rul, [float(r["rul"]) for r in rows], atol=0.005)
    np.testing.assert_allclose(again.q05, [float(r["rul_q05"]) for r in rows], atol=0.005)
