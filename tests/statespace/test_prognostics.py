"""Prognostics building blocks against hand computations and closed forms."""

import math

import numpy as np
import pytest

from statespace.datasets.cmapss import SensorFeatures
from statespace.errors import DataError, ParameterError, ShapeError
from statespace.prognostics import (
    HealthIndicator,
    PhaseTypeDistribution,
    capped_means,
    cdfs,
    cut_weights,
    exponential_smoothing,
    informative_columns,
    interval_coverage,
    per_engine_means,
    phm08_score,
    phm08_scores,
    piecewise_linear_rul,
    quantiles,
    rmse,
    rul_report,
    simulated_test_sets,
    time_to_absorption,
    times_to_absorption,
    truncation_splits,
)


# ----------------------------------------------------------------------------- metrics
def test_metrics_by_hand():
    pred = np.array([10.0, 30.0, 50.0])
    true = np.array([23.0, 20.0, 50.0])  # d = -13 (early), +10 (late), 0
    assert rmse(pred, true) == pytest.approx(math.sqrt((169 + 100) / 3))
    np.testing.assert_allclose(phm08_scores(pred, true), [math.e - 1, math.e - 1, 0.0])
    assert phm08_score(pred, true) == pytest.approx(2 * (math.e - 1))
    assert interval_coverage(true, [20, 21, 49], [25, 40, 50]) == pytest.approx(2 / 3)
    rep = rul_report(pred, true, [0, 0, 0], [100, 100, 100])
    assert rep["n"] == 3 and rep["coverage"] == 1.0 and rep["mean_width"] == 100.0
    assert rep["mae"] == pytest.approx(23 / 3)


def test_metrics_reject_bad_input():
    with pytest.raises(ShapeError, match="same length"):
        rmse([1.0, 2.0], [1.0])
    with pytest.raises(DataError, match="predicted: non-finite value nan at index 1"):
        phm08_score([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(DataError, match="lower bound"):
        interval_coverage([1.0], [3.0], [2.0])


def test_weighted_report_equals_the_report_of_replicated_rows():
    # integer weights are repetitions: the oracle is the unweighted report of the repeated rows
    rng = np.random.default_rng(2)
    pred, true = rng.uniform(0, 150, 9), rng.uniform(0, 150, 9)
    lo, hi = pred - rng.uniform(0, 40, 9), pred + rng.uniform(0, 40, 9)
    w = np.array([1, 3, 2, 1, 1, 4, 2, 1, 5])
    rep = rul_report(pred, true, lo, hi, weights=w)
    want = rul_report(*(np.repeat(a, w) for a in (pred, true, lo, hi)))
    for key in ("rmse", "mae", "score", "score_per_engine", "coverage", "mean_width"):
        assert rep[key] == pytest.approx(want[key], rel=1e-12), key
    assert rep["n"] == 9 and rep["total_weight"] == w.sum()
    # fractional weights: a uniform rescaling changes only the score sum
    half = rul_report(pred, true, lo, hi, weights=w / 2)
    assert half["rmse"] == pytest.approx(rep["rmse"]) and half["score"] == pytest.approx(rep["score"] / 2)
    assert rul_report(pred, true, lo, hi, weights=np.ones(9)) == rul_report(pred, true, lo, hi)
    with pytest.raises(ShapeError, match="weights: expected one weight per prediction"):
        rul_report(pred, true, weights=w[:3])
    with pytest.raises(DataError, match="weights: expected finite non-negative weights, got -1.0 at index 2"):
        rul_report(pred, true, weights=np.r_[1.0, 1.0, -1.0, np.ones(6)])
    with pytest.raises(DataError, match="every weight is zero"):
        rul_report(pred, true, weights=np.zeros(9))


# ----------------------------------------------------------------------------- phase type
def _two_stage(p1, p2):
    return np.array([[p1, 1 - p1, 0.0], [0.0, p2, 1 - p2], [0.0, 0.0, 1.0]])


def test_geometric_closed_form():
    p = 0.93
    d = time_to_absorption([1.0, 0.0], np.array([[p, 1 - p], [0.0, 1.0]]))
    n = np.arange(1, 60)
    np.testing.assert_allclose(d.pmf[1:60], (1 - p) * p ** (n - 1), rtol=1e-10)
    assert d.pmf[0] == 0.0
    assert d.mean == pytest.approx(1 / (1 - p)) and d.var == pytest.approx(p / (1 - p) ** 2)
    q = np.array([0.05, 0.5, 0.9, 0.95])
    np.testing.assert_array_equal(d.quantile(q), np.ceil(np.log(1 - q) / math.log(p)))


def test_hypoexponential_closed_form_with_offset_and_mixture():
    p1, p2 = 0.8, 0.9
    A = _two_stage(p1, p2)
    n = np.arange(0, 400)
    pmf = np.where(n >= 2, (1 - p1) * (1 - p2) * (p1 ** (n - 1.0) - p2 ** (n - 1.0)) / (p1 - p2), 0.0)
    d = time_to_absorption([1.0, 0.0, 0.0], A)
    m = len(d.pmf)
    assert d.tail < 1e-10 and m < 400
    np.testing.assert_allclose(d.pmf, pmf[:m], atol=1e-14)
    assert d.mean == pytest.approx(1 / (1 - p1) + 1 / (1 - p2))
    assert d.var == pytest.approx(p1 / (1 - p1) ** 2 + p2 / (1 - p2) ** 2)
    # quantiles against the closed-form cdf
    cdf = np.cumsum(pmf)
    for q in (0.05, 0.5, 0.95):
        assert d.quantile(q) == int(np.argmax(cdf >= q))
    # RUL convention: offset 1 shifts the support; a mixture over states mixes the pmfs
    w = np.array([0.3, 0.5, 0.2])  # 0.2 already absorbed
    dm = time_to_absorption(w, A, offset=1)
    geo = np.where(n >= 1, (1 - p2) * p2 ** (n - 1.0), 0.0)
    mix = 0.3 * pmf + 0.5 * geo
    expect = np.r_[mix[0] + mix[1] + 0.2, mix[2:]]
    np.testing.assert_allclose(dm.pmf, expect[: len(dm.pmf)], atol=1e-14)
    m_tau = 0.3 * (1 / (1 - p1) + 1 / (1 - p2)) + 0.5 / (1 - p2)
    assert dm.mean == pytest.approx(m_tau - 0.8)  # only the 0.2 at tau = 0 is clipped (by 1 cycle)
    assert dm.mean == pytest.approx(float(np.arange(len(dm.pmf)) @ dm.pmf), rel=1e-8)
    second = float((np.arange(len(dm.pmf)) ** 2) @ dm.pmf)
    assert dm.var == pytest.approx(second - dm.mean**2, rel=1e-7)


def test_rows_of_a_fleet_against_their_closed_forms():
    """Every row's distribution against the two-stage closed form (a mixture of the hypoexponential
    from stage 1, the geometric from stage 2 and mass already absorbed), rows whose grids end at
    different lengths; each equals its single-row call to the last bit (the same arithmetic)."""
    p1, p2 = 0.8, 0.9
    A = _two_stage(p1, p2)
    n = np.arange(0, 600)
    hypo = np.where(n >= 2, (1 - p1) * (1 - p2) * (p1 ** (n - 1.0) - p2 ** (n - 1.0)) / (p1 - p2), 0.0)
    geo = np.where(n >= 1, (1 - p2) * p2 ** (n - 1.0), 0.0)
    rows = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.3, 0.5, 0.2], [0.0, 0.0, 1.0], [0.05, 0.0, 0.95]])
    dists = times_to_absorption(rows, A, offset=1)
    assert len({len(d.pmf) for d in dists}) >= 3
    for w, d in zip(rows, dists):
        tau = w[0] * hypo + w[1] * geo
        tau[0] += w[2]
        want = np.r_[tau[0] + tau[1], tau[2:]]
        np.testing.assert_allclose(d.pmf, want[: len(d.pmf)], atol=1e-14)
        assert d.tail < 1e-10
        m_tau = w[0] * (1 / (1 - p1) + 1 / (1 - p2)) + w[1] / (1 - p2)
        assert d.mean == pytest.approx(m_tau - 1 + w[2], abs=1e-12)  # the mass at tau = 0 is clipped
        one = time_to_absorption(w, A, offset=1)
        assert np.array_equal(one.pmf, d.pmf) and (one.mean, one.var, one.tail) == (d.mean, d.var, d.tail)
    with pytest.raises(ParameterError, match=r"state_probs\[1\]"):
        times_to_absorption(rows[[3, 0]], A, max_steps=50)  # row 0 is absorbed already
    with pytest.raises(ParameterError, match=r"state_probs: row \(1,\)"):
        times_to_absorption([[1.0, 0.0, 0.0], [0.7, 0.7, 0.0]], A)
    with pytest.raises(ShapeError, match="state_probs"):
        times_to_absorption([[1.0, 0.0]], A)


def test_banded_chain_survival_against_dense_products():
    """A left-to-right chain whose rows are narrow bands (the degradation chains of prognostics):
    the survival curves, visited band by band with the running rows in vector lanes, against
    ``P(tau > n) = a S^n 1`` by dense NumPy products, for rows that end at many different steps."""
    rng = np.random.default_rng(7)
    K = 12
    A = np.zeros((K, K))
    for i in range(K - 1):
        w = rng.random(min(K, i + 4) - i)
        w[0] += 8.0
        A[i, i : i + len(w)] = w / w.sum()
    A[-1, -1] = 1.0
    rows = rng.dirichlet(np.full(K, 0.3), size=40)
    dists = times_to_absorption(rows, A, tol=1e-9)
    assert len({len(d.pmf) for d in dists}) >= 10
    S = A[:-1, :-1]
    for a, d in zip(rows, dists):
        v, surv = a[:-1].copy(), [a[:-1].sum()]
        for _ in range(len(d.pmf) - 1):
            v = v @ S
            surv.append(v.sum())
        surv = np.array(surv)
        want = np.r_[1.0 - surv[0], surv[:-1] - surv[1:]]
        np.testing.assert_allclose(d.pmf, want, rtol=1e-12, atol=1e-15)
        assert d.tail == pytest.approx(surv[-1], rel=1e-12)


def test_a_fleets_readouts_against_each_grid_by_hand():
    """Quantiles, CDFs and capped means of distributions on grids of different lengths (one with a
    tail, one a point mass, one with a shifted support) against each grid read by hand: the first
    grid point whose cumulative sum reaches the level, the cumulative sum at floor(x), and
    sum_x min(x, c) p(x) + c * tail."""
    rng = np.random.default_rng(3)
    dists = []
    for n, tail, shift in [(1, 0.0, 0), (7, 0.0, 0), (40, 0.02, 0), (15, 0.0, 5), (120, 1e-9, 0)]:
        pmf = rng.random(n) * (rng.random(n) < 0.7)
        pmf[0] += 1e-3
        pmf *= (1.0 - tail) / pmf.sum()
        dists.append(PhaseTypeDistribution(np.arange(n) + shift, pmf, tail, 0.0, 0.0))
    levels = np.array([0.0, 0.05, 0.5, 0.95, 1.0])
    per_row = rng.random((len(dists), 2))
    xs = np.array([-np.inf, -0.5, -0.0, 0.0, 2.7, 6.0, 39.2, 500.0, np.inf])
    got_q, got_row, got_F = quantiles(dists, levels), quantiles(dists, per_row), cdfs(dists, xs)
    got_m = capped_means(dists, [3.5, 125.0])
    for i, d in enumerate(dists):
        c = [sum(d.pmf[: k + 1]) for k in range(len(d.pmf))]
        first = [next((k for k in range(len(c)) if c[k] >= q - 1e-12), len(c) - 1) for q in levels]
        np.testing.assert_array_equal(got_q[i], d.support[first])
        first = [next((k for k in range(len(c)) if c[k] >= q - 1e-12), len(c) - 1) for q in per_row[i]]
        np.testing.assert_array_equal(got_row[i], d.support[first])
        want = [0.0 if x < 0 else c[-1] if x >= len(c) - 1 else c[math.floor(x)] for x in xs]
        np.testing.assert_allclose(got_F[i], want, rtol=1e-14, atol=0)
        for j, cap in enumerate([3.5, 125.0]):
            want = sum(min(x, cap) * p for x, p in zip(d.support, d.pmf)) + cap * d.tail
            assert got_m[i, j] == pytest.approx(want, rel=1e-13)
            assert d.truncated_mean(cap) == got_m[i, j]  # one row of the same pass
        assert np.array_equal(d.quantile(levels), got_q[i]) and np.array_equal(d.cdf(xs), got_F[i])
    assert quantiles([], levels).shape == (0, 5)
    with pytest.raises(ParameterError, match=r"q\[1\]: expected a probability"):
        quantiles(dists, [0.5, 1.5])
    with pytest.raises(ParameterError, match=r"q\[2, 0\]: expected a probability"):
        quantiles(dists, np.where(np.arange(5)[:, None] == 2, np.nan, per_row))
    with pytest.raises(ParameterError, match=r"^q: expected a probability in \[0, 1\], got -0.1"):
        dists[0].quantile(-0.1)
    with pytest.raises(DataError, match=r"x\[0\]: expected a number, got nan"):
        cdfs(dists, [np.nan])
    with pytest.raises(ShapeError, match=r"x: expected shape"):
        cdfs(dists, np.zeros((2, 1)))
    with pytest.raises(ParameterError, match=r"distributions\[1\]: expected a PhaseTypeDistribution"):
        quantiles([dists[0], 0.5], levels)


def test_conditioning_and_capped_mean():
    d = time_to_absorption([1.0, 0.0], np.array([[0.9, 0.1], [0.0, 1.0]]), offset=1)
    c = d.conditioned_below(10)
    n = np.arange(11)
    expect = 0.1 * 0.9**n / (1 - 0.9**11)
    np.testing.assert_allclose(c.pmf, expect, rtol=1e-10)
    assert c.mean == pytest.approx(float(n @ expect))
    # E[min(X, 5)] for X ~ Geom on {0, 1, ...}: sum_{k=1..5} P(X >= k) = sum 0.9^k
    assert d.truncated_mean(5) == pytest.approx(sum(0.9**k for k in range(1, 6)))


def test_phase_type_errors():
    with pytest.raises(ParameterError, match="no absorbing"):
        time_to_absorption([0.5, 0.5], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ParameterError, match="never reaches"):
        time_to_absorption([1.0, 0.0, 0.0], [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]], absorbing=[2])
    with pytest.raises(ParameterError, match="state_probs"):
        time_to_absorption([0.7, 0.7], [[0.9, 0.1], [0.0, 1.0]])


# ----------------------------------------------------------------------------- features
def test_smoothing_and_columns():
    x = np.array([1.0, 0.0, 0.0, 2.0])
    np.testing.assert_allclose(exponential_smoothing(x, 0.5), [1.0, 0.5, 0.25, 1.125])
    X = np.c_[np.ones(10), np.arange(10.0), np.tile([0.0, 1.0], 5)]
    np.testing.assert_array_equal(informative_columns(X, 3), [1])
    np.testing.assert_array_equal(piecewise_linear_rul(5, cap=3), [3, 3, 2, 1, 0])
    with pytest.raises(ParameterError, match="alpha"):
        exponential_smoothing(x, 0.0)


def test_health_indicator_recovers_a_linear_target():
    rng = np.random.default_rng(0)
    engines, lengths = [], rng.integers(150, 250, size=8)
    w = np.array([0.5, -2.0])
    for T in lengths:
        h = np.minimum(1.0, piecewise_linear_rul(T) / 100.0)
        other = rng.normal(size=T)
        engines.append(np.c_[(h - 0.3 - w[1] * other) / w[0], other])  # 0.3 + w @ x = h exactly
    hi = HealthIndicator(cap=100.0, lam=0.0).fit(engines)
    np.testing.assert_allclose(hi.weights_, [0.3, 0.5, -2.0], atol=1e-8)
    out = hi.transform(engines)
    np.testing.assert_allclose(out[0][-1], 0.0, atol=1e-8)


def test_sensor_features_pipeline():
    rng = np.random.default_rng(3)
    sens = [np.c_[np.full(T, 5.0), rng.normal(10, 2, (T, 2))] for T in (40, 50)]
    f = SensorFeatures(baseline_cycles=5).fit(sens)
    np.testing.assert_array_equal(f.columns_, [1, 2])
    out = f.transform(sens)
    assert out[0].shape == (40, 2)
    np.testing.assert_allclose(out[1][:5].mean(0), 0.0, atol=1e-12)
    with pytest.raises(ShapeError, match=r"sensors\[0\]: expected 3 columns"):
        f.transform([np.zeros((4, 2))])
    with pytest.raises(DataError, match="non-finite"):
        f.transform([np.full((4, 3), np.inf)])


def test_sensor_features_health_channel():
    """The health channel is the health indicator of the features *before* baseline removal,
    standardised over the training cycles: recomputed here from SensorFeatures and HealthIndicator."""
    rng = np.random.default_rng(4)
    sens = []
    for T in (60, 75, 90, 70):
        wear = rng.uniform(0.0, 0.5) + np.linspace(0.0, 1.0, T) ** 2  # engines start with different wear
        sens.append(np.c_[np.full(T, 5.0), wear + 0.1 * rng.standard_normal(T), -wear + 0.1 * rng.standard_normal(T)])
    f = SensorFeatures(baseline_cycles=8, health_cap=40.0).fit(sens)
    out = f.transform(sens)
    assert f.n_features == 3 and out[0].shape == (60, 3)
    plain = SensorFeatures(baseline_cycles=8).fit(sens).transform(sens)
    levels = SensorFeatures().fit(sens).transform(sens)
    hi = HealthIndicator(cap=40.0).fit(levels).transform(levels)
    h = np.concatenate(hi)
    for o, p, want in zip(out, plain, hi):
        np.testing.assert_allclose(o[:, :2], p, atol=1e-12)
        np.testing.assert_allclose(o[:, 2], (want - h.mean()) / h.std(), atol=1e-10)
    # a prefix of an engine (at least the baseline's cycles) gets the prefix of its features
    np.testing.assert_allclose(f.transform([sens[1][:20]])[0], out[1][:20], atol=1e-12)
    with pytest.raises(ParameterError, match="health_cap"):
        SensorFeatures(health_cap=0.0)


# ----------------------------------------------------------------------------- cross-validation
def test_truncation_splits_partition_and_bounds():
    lengths = np.array([128, 200, 362, 150, 180, 240, 131])
    splits = list(truncation_splits(lengths, n_folds=3, n_cuts=4, min_cycles=31, max_rul=150, rng=5))
    held = np.concatenate([np.unique([c.engine for c in cuts]) for _, cuts in splits])
    np.testing.assert_array_equal(np.sort(held), np.arange(7))
    for train, cuts in splits:
        assert not set(train) & {c.engine for c in cuts}
        assert len(cuts) == 4 * len({c.engine for c in cuts})
        for c in cuts:
            assert c.n_observed + c.rul == lengths[c.engine]
            assert c.n_observed >= 31 and 1 <= c.rul <= 150
    again = list(truncation_splits(lengths, n_folds=3, n_cuts=4, rng=5))
    assert [c for _, cs in again for c in cs] == [c for _, cs in splits for c in cs]
    with pytest.raises(DataError, match="engine 0 has 20 cycles"):
        list(truncation_splits([20, 100], n_folds=2))


def test_every_admissible_cut_once():
    lengths = np.array([128, 200, 362, 150, 180])
    splits = list(truncation_splits(lengths, n_folds=2, n_cuts="all", min_cycles=31, max_rul=150, rng=1))
    cuts = [c for _, cs in splits for c in cs]
    for e, T in enumerate(lengths):
        ruls = [c.rul for c in cuts if c.engine == e]
        assert ruls == list(range(1, min(150, T - 31) + 1))  # by hand: 1..min(max_rul, T - min_cycles)
        assert all(c.n_observed == T - c.rul for c in cuts if c.engine == e)
    w = cut_weights(cuts)
    engines = np.array([c.engine for c in cuts])
    np.testing.assert_allclose(np.bincount(engines, weights=w), np.ones(5))
    assert w[0] == 1.0 / np.sum(engines == engines[0])
    # the folds are those of any n_cuts with the same seed
    assert [list(t) for t, _ in splits] == [list(t) for t, _ in truncation_splits(lengths, 2, 3, rng=1)]
    with pytest.raises(ParameterError, match="n_cuts: expected a positive integer or 'all', got 'every'"):
        list(truncation_splits(lengths, 2, "every"))
    with pytest.raises(DataError, match="at least one cut"):
        cut_weights([])
    # per-engine means, engines in increasing order, against a loop by hand
    values = np.arange(len(cuts), dtype=float) ** 1.5
    want = [np.mean([v for v, c in zip(values, cuts) if c.engine == e]) for e in range(5)]
    np.testing.assert_allclose(per_engine_means(values, cuts), want, rtol=1e-12)
    with pytest.raises(ShapeError, match="one value per cut"):
        per_engine_means(values[:-1], cuts)


def test_simulated_test_sets_against_enumeration():
    # engine 0 has three cuts, engine 1 two: six equally likely test sets, enumerated by hand
    from statespace.prognostics import Cut

    cuts = [Cut(0, 50, 3), Cut(1, 40, 7), Cut(0, 49, 4), Cut(1, 41, 6), Cut(0, 48, 5)]
    pred = np.array([10.0, 0.0, 4.0, 20.0, 5.0])
    true = np.array([c.rul for c in cuts], dtype=float)
    combos = [(i, j) for i in (0, 2, 4) for j in (1, 3)]
    exact = {round(math.sqrt(((pred[i] - true[i]) ** 2 + (pred[j] - true[j]) ** 2) / 2), 9): 0.0 for i, j in combos}
    for i, j in combos:
        exact[round(math.sqrt(((pred[i] - true[i]) ** 2 + (pred[j] - true[j]) ** 2) / 2), 9)] += 1 / 6
    n = 60_000
    sim = simulated_test_sets(pred, true, cuts, n_draws=n, rng=0)
    values, counts = np.unique(sim["rmse"].round(9), return_counts=True)
    assert set(values) == set(exact)
    for v, c in zip(values, counts):  # within 5 binomial standard errors
        p = exact[v]
        assert abs(c / n - p) < 5 * math.sqrt(p * (1 - p) / n)
    # each draw's score is the sum of its two cuts' scores
    scores = phm08_scores(pred, true)
    sums = {
        round(math.sqrt(((pred[i] - true[i]) ** 2 + (pred[j] - true[j]) ** 2) / 2), 9): scores[i] + scores[j]
        for i, j in combos
    }
    np.testing.assert_allclose(sim["score"], [sums[v] for v in sim["rmse"].round(9)], rtol=1e-12)
    with pytest.raises(ShapeError, match="cuts: got 2 cuts for 5 predictions"):
        simulated_test_sets(pred, true, cuts[:2])


def test_truncated_rul_is_uniform_on_its_range():
    # one long engine: RUL uniform on 1..150; chi-square against uniform with fixed seed
    lengths = np.full(2, 400)
    ruls = np.array([c.rul for _, cuts in truncation_splits(lengths, 2, 3000, rng=0) for c in cuts])
    counts = np.bincount((ruls - 1) // 15, minlength=10)
    expected = len(ruls) / 10
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 27.9  # 0.999 quantile of chi-square with 9 degrees of freedom


def test_plots_return_figures():
    import matplotlib

    matplotlib.use("Agg")
    from statespace.prognostics.plots import plot_health_indicator, plot_rul_predictions, plot_state_posterior

    fig, ax = plot_health_indicator([np.linspace(1, 0, 30)], [np.repeat([0, 1, 2], 10)], n_states=3)
    assert ax.get_xlabel()
    fig2, _ = plot_state_posterior(np.full((30, 3), 1 / 3))
    fig3, _ = plot_rul_predictions([10, 20], [5, 15], [15, 30], true=[12, 18])
    import matplotlib.pyplot as plt

    for f in (fig, fig2, fig3):
        plt.close(f)
