"""DeepARPHMMRUL: filtering against a plain forward recursion on scipy densities, causality of the
S5 encoder, structural zeros through generalised EM, predictive quantiles against the phase-type
closed form written with matrix powers, the pipeline and cross-validation end to end."""

import os

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")
import scipy.stats  # noqa: E402

from hmm.learned_emission import LearnedEmissionHMM  # noqa: E402
from hmm.rul import DeepARPHMMRUL, RULPipeline, cross_validate  # noqa: E402
from statespace.datasets.cmapss import SensorFeatures  # noqa: E402
from statespace.errors import DataError, ParameterError, ShapeError  # noqa: E402

DATA = os.environ.get(
    "CMAPSS_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cmapss"))
)
needs_data = pytest.mark.skipif(
    not os.path.isfile(os.path.join(DATA, "train_FD001.txt")), reason="CMAPSS FD001 not available"
)

K, D = 5, 2
TINY = dict(n_states=K, cap=30.0, max_jump=1, hidden=4, state=2, n_layers=1, max_iter=4, m_steps=15, init_iter=5)


def _engines(rng, n=6):
    """Run-to-failure engines: two features drifting faster and faster towards failure."""
    out = []
    for _ in range(n):
        T = int(rng.integers(45, 70))
        frac = np.arange(T) / (T - 1)
        drift = np.column_stack([-3.0 * frac**3, 2.0 * frac**2]) + rng.normal(0, 0.3, 2)[None]
        out.append(drift + 0.25 * rng.standard_normal((T, D)))
    return out


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    x = _engines(rng)
    model = DeepARPHMMRUL(**TINY)
    res = model.fit(x, rng=0, progress=False)
    return model, x, res


def _forward(pi0, A, logg):
    """Filtered probabilities and log p(y) by the textbook normalised recursion."""
    alpha, ll, out = pi0 * np.exp(logg[0]), 0.0, []
    for t in range(len(logg)):
        if t:
            alpha = (alpha @ A) * np.exp(logg[t])
        c = alpha.sum()
        ll += np.log(c)
        alpha = alpha / c
        out.append(alpha)
    return np.array(out), ll


def _scipy_loglik(model, y):
    means, scales = model.hmm.emission_params(y)
    obs = ~np.isnan(y)
    return np.array(
        [
            [scipy.stats.norm.logpdf(y[t], means[t, k], scales[t, k])[obs[t]].sum() for k in range(K)]
            for t in range(len(y))
        ]
    )


def test_filter_matches_forward_recursion_on_network_emissions(fitted):
    model, x, _ = fitted
    y = x[1][:30].copy()
    y[4, 0] = np.nan  # one missing coordinate, then a missing row
    y[9] = np.nan
    p = model.hmm.params
    want, ll = _forward(p.pi0, p.A, _scipy_loglik(model, y))
    got = model.filter(y)
    np.testing.assert_allclose(got, want, atol=1e-10)
    assert model.hmm.log_likelihood(y) == pytest.approx(ll, rel=1e-10)


def test_encoder_and_filter_are_causal(fitted):
    model, x, _ = fitted
    full, cut = model.filter(x[2]), model.filter(x[2][:25])
    np.testing.assert_allclose(cut, full[:25], atol=1e-12)
    # the prediction at a cut uses the filter at the cut: changing later cycles cannot move it
    later = x[2].copy()
    later[25:] += 5.0
    np.testing.assert_allclose(model.filter(later)[:25], cut, atol=1e-12)
    # cycle increments reach the S5 encoder: unit increments are the default, others change the filter
    np.testing.assert_allclose(model.filter(x[2], dt=np.ones(len(x[2]))), full, atol=1e-12)
    one = x[2][:25]
    assert not np.allclose(model.predict(one, dt=np.full(25, 3.0)).state_probs, model.predict(one).state_probs)
    with pytest.raises(ShapeError, match="dt"):
        model.predict([one, one], dt=[np.ones(25)])


def test_predict_cuts_equals_predict_of_the_truncated_engines(fitted):
    """The network is causal, so every cut can be read from one pass over its engine."""
    from statespace.prognostics import Cut

    model, x, _ = fitted
    cuts = [Cut(3, 30, 0), Cut(1, 12, 0), Cut(3, 44, 0), Cut(1, len(x[1]), 0)]
    got, want = model.predict_cuts(x, cuts), model.predict([x[c.engine][: c.n_observed] for c in cuts])
    np.testing.assert_allclose(got.state_probs, want.state_probs, atol=1e-10)
    np.testing.assert_allclose(got.rul, want.rul, rtol=1e-8)
    np.testing.assert_array_equal(got.q95, want.q95)


def test_left_to_right_structure_survives_generalised_em(fitted):
    model, _, res = fitted
    A = model.transition_matrix
    i, j = np.indices((K, K))
    assert (A[(j < i) | (j > i + 1)] == 0).all()
    assert A[-1, -1] == 1.0
    np.testing.assert_allclose(A.sum(1), 1.0, atol=1e-12)
    ll = res.log_likelihoods
    assert np.all(np.diff(ll) >= -1e-9 * np.abs(ll[:-1]))
    assert ll[-1] > ll[0]


def test_predict_matches_phase_type_closed_form(fitted):
    model, x, _ = fitted
    cuts = [x[0][:20], x[3][:40]]
    pred = model.predict(cuts)
    A = model.transition_matrix
    S = A[:-1, :-1]
    for i, y in enumerate(cuts):
        alpha = model.filter(y)[-1]
        np.testing.assert_allclose(pred.state_probs[i], alpha, atol=1e-12)
        # P(RUL > n) = P(tau > n + 1) = alpha S^(n+1) 1 (RUL counts cycles after the last observed one)
        surv = np.array([alpha[:-1] @ np.linalg.matrix_power(S, n + 1) @ np.ones(K - 1) for n in range(3000)])
        cdf = 1.0 - surv
        for q, got in ((0.05, pred.q05[i]), (0.5, pred.q50[i]), (0.95, pred.q95[i])):
            assert got == int(np.argmax(cdf >= q - 1e-12))
        assert pred.rul[i] == pytest.approx(surv[: int(model.cap)].sum(), rel=1e-8)  # E[min(RUL, cap)]
        # E[max(tau - 1, 0)] = E[tau] - 1 + P(tau = 0), tau = 0 being the mass already in the failed state
        mean = alpha[:-1] @ np.linalg.solve(np.eye(K - 1) - S, np.ones(K - 1)) - 1.0 + alpha[-1]
        assert pred.mean[i] == pytest.approx(mean, rel=1e-8)
    assert (pred.q05 <= pred.q50).all() and (pred.q50 <= pred.q95).all()


def test_empirical_readout_mixes_training_rul_by_filtered_state(fitted):
    """age_bandwidth=None: p(r | y) = sum_k alpha_k p(r | k), p(r | k) the filtered mass of k on training cycles with RUL r."""
    _, x, _ = fitted
    model = DeepARPHMMRUL(**TINY, readout="empirical", age_bandwidth=None)
    model.fit(x, rng=0, progress=False)
    filt = model.filter(x)
    R = max(len(f) for f in filt)
    table = np.zeros((K, R))
    for f in filt:
        table[:, len(f) - 1 - np.arange(len(f))] += f.T
    mass = table.sum(1, keepdims=True)
    table = np.where(mass > 0, table / np.where(mass > 0, mass, 1.0), table.sum(0) / table.sum())
    cut = x[4][:35]
    pred = model.predict([cut])
    pmf = model.filter(cut)[-1] @ table
    np.testing.assert_allclose(pred.distributions[0].pmf, pmf, atol=1e-12)
    assert pred.rul[0] == pytest.approx(np.minimum(np.arange(R), model.cap) @ pmf, rel=1e-10)
    with pytest.raises(ParameterError, match="age"):
        model.rul_distribution(pmf[:K] * 0 + 1.0 / K)


def test_shared_shift_log_likelihood_matches_scipy_with_dt():
    """The expanded-square log-density of the shared-shift emission against scipy, with S5 increments."""
    rng = np.random.default_rng(1)
    ys = [rng.standard_normal((12, D)) for _ in range(2)]
    m = LearnedEmissionHMM(
        3,
        D,
        layer="s5",
        hidden=4,
        state=2,
        n_layers=1,
        emission="shared_shift",
        transitions="left-to-right",
        max_jump=1,
    )
    m.fit(ys, max_iter=1, m_steps=2, rng=0, progress=False, ar_init=False)
    y = ys[0].copy()
    y[3, 1] = np.nan
    dt = rng.uniform(0.5, 3.0, len(y))
    means, scales = m.emission_params(y, dt=dt)
    logg = np.array(
        [
            [scipy.stats.norm.logpdf(y[t], means[t, k], scales[t, k])[~np.isnan(y[t])].sum() for k in range(3)]
            for t in range(len(y))
        ]
    )
    p = m.params
    _, ll = _forward(p.pi0, p.A, logg)
    assert m.log_likelihood(y, dt=dt) == pytest.approx(ll, rel=1e-10)
    # unit increments are the default; other increments change the encoding from the first step they enter
    np.testing.assert_allclose(m.emission_params(y, dt=np.ones(len(y)))[0], m.emission_params(y)[0], atol=1e-12)
    assert not np.allclose(means[1:], m.emission_params(y)[0][1:])
    with pytest.raises(DataError, match="dt"):
        m.log_likelihood(y, dt=-np.ones(len(y)))
    with pytest.raises(ShapeError, match="dt"):
        m.log_likelihood(y, dt=np.ones(3))
    with pytest.raises(ParameterError, match="dt"):
        LearnedEmissionHMM(2, D, layer="lru", hidden=4, state=2, n_layers=1, params=None)._increments(
            [np.ones(3)], [3], False
        )


def test_save_load_keeps_structure_and_emission_kind(fitted, tmp_path):
    model, x, _ = fitted
    path = model.hmm.save(tmp_path / "deep.npz")
    back = LearnedEmissionHMM.load(path)
    assert (back.emission, back.transitions, back.max_jump) == ("shared_shift", "left-to-right", 1)
    assert back.log_likelihood(x[0]) == pytest.approx(model.hmm.log_likelihood(x[0]), rel=1e-12)


def test_validation_and_unfitted():
    with pytest.raises(ParameterError, match="fit"):
        DeepARPHMMRUL(**TINY).predict([np.zeros((5, D))])
    with pytest.raises(ParameterError, match="point"):
        DeepARPHMMRUL(point="mode")
    with pytest.raises(ParameterError, match="n_states"):
        DeepARPHMMRUL(n_states=2)
    with pytest.raises(ParameterError, match="emission"):
        LearnedEmissionHMM(2, 1, emission="mixture")
    with pytest.raises(ParameterError, match="transitions"):
        LearnedEmissionHMM(2, 1, transitions="banded")


@needs_data
@pytest.mark.slow  # about 20 s: JAX compiles the network for each padded length
def test_pipeline_and_cross_validation_on_a_few_engines():
    from statespace.datasets import load_cmapss

    tr = load_cmapss(DATA, "FD001").train
    sens, sets = tr.split(tr.sensors)[:8], tr.split(tr.settings)[:8]
    make = lambda: RULPipeline(
        SensorFeatures(baseline_cycles=10),  # noqa: E731
        DeepARPHMMRUL(n_states=6, cap=100.0, horizon=150, hidden=4, state=2, max_iter=2, m_steps=3, init_iter=3),
    )
    cv = cross_validate(make, sens, sets, n_folds=2, n_cuts=1, rng=0, progress=False)
    assert len(cv.true_rul) == 8
    for key in ("rmse", "score", "coverage"):
        assert np.isfinite(cv.report[key])
    p = cv.prediction
    assert (p.q05 <= p.q50).all() and (p.q50 <= p.q95).all() and (p.q95 <= 150).all()
    assert ((p.rul >= 0) & (p.rul <= 100)).all()
    # the same cuts as the classical model gets from the same seed
    from hmm.rul import ARPHMMRUL

    classical = cross_validate(
        lambda: RULPipeline(SensorFeatures(baseline_cycles=10), ARPHMMRUL(n_states=6, lags=0, cap=100.0, max_iter=3)),
        sens,
        sets,
        n_folds=2,
        n_cuts=1,
        rng=0,
        progress=False,
    )
    assert classical.cuts == cv.cuts
