"""Every family on generated valid data: missing values, partial labels, particles, determinism, CMAPSS.

Oracles:
* linear-Gaussian: dense joint-Gaussian conditioning (tests/statespace/lgssm_dense.py);
* HMMs with partial labels ``pl`` and any transition structure: brute-force
  enumeration of all K^T paths, the plausibilities multiplying the emissions;
* particle filters and PaRIS on an HMM: finite, normalised output; same seed,
  same bits; all-zero weights raise ``DegenerateWeightsError`` naming ``t``;
* CMAPSS: line numbers counted in the file the user wrote.
"""

from __future__ import annotations

import itertools
import os
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from robustness_support import (
    FAST,
    HEAVY,
    assert_no_nan,
    expect_error,
    gaussian_hmm,
    hmm_data,
    left_to_right_hmm,
    lg_model,
    mjp,
    sv_model,
)
from scipy.special import logsumexp
from scipy.stats import norm

import smc
from statespace.errors import DegenerateWeightsError, ImpossibleDataError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "statespace"))
from lgssm_dense import condition  # noqa: E402


# =========================================================================== missing data (class 0)
@pytest.mark.issue18(0, "result")
@HEAVY
@given(T=st.integers(1, 7), seed=st.integers(0, 2**16), p_missing=st.sampled_from([0.0, 0.3, 0.7, 1.0]))
def test_lg_missing_coordinates_match_dense_oracle(T, seed, p_missing):
    model = lg_model(2)
    _, y = model.sample(T, rng=seed)
    y = np.array(y, dtype=float)
    y[np.random.default_rng(seed).random(y.shape) < p_missing] = np.nan
    sm = model.smooth(y)
    mean, cov, ll = condition(model.params, y)
    np.testing.assert_allclose(sm.log_likelihood, ll, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sm.smoothed_means.ravel(), mean, rtol=1e-8, atol=1e-9)
    assert_no_nan(sm)
    # forecasting h steps is conditioning the model extended by h missing steps
    h = 3
    fc = model.forecast(y, steps=h)
    ext_mean, ext_cov, _ = condition(model.params, np.vstack([y, np.full((h, y.shape[1]), np.nan)]))
    d = model.params.state_dim
    np.testing.assert_allclose(fc.means, ext_mean.reshape(T + h, d)[T:], rtol=1e-8, atol=1e-9)
    for k in range(h):
        blk = ext_cov[(T + k) * d : (T + k + 1) * d, (T + k) * d : (T + k + 1) * d]
        np.testing.assert_allclose(fc.covs[k], blk, rtol=1e-8, atol=1e-9)


def _hmm_loglik_matrix(kind, model, y):
    """Emission log-likelihoods from the model's definition (scipy), for the plain kinds."""
    p = model.params
    if kind == "categorical":
        B = p.emission.probs
        out = np.zeros((len(y), B.shape[0]))
        obs = ~np.isnan(y[:, 0])
        with np.errstate(divide="ignore"):
            out[obs] = np.log(B[:, y[obs, 0].astype(int)]).T
        return out
    means = p.emission.weights[:, 0, 0]
    sds = np.sqrt(p.emission.covs[:, 0, 0])
    out = norm.logpdf(y[:, :1], means[None], sds[None])
    out[np.isnan(y[:, 0])] = 0.0
    return out


@pytest.mark.issue18(0, "result")
@pytest.mark.parametrize("kind", ["gaussian", "categorical", "left_to_right", "banded"])
@HEAVY
@given(T=st.integers(1, 6), seed=st.integers(0, 2**16), data=st.data())
def test_hmm_missing_data_and_partial_labels_match_enumeration(kind, T, seed, data):
    model, y = hmm_data(kind, T=T, seed=seed)
    y = y.reshape(T, -1).copy()
    rng = np.random.default_rng(seed)
    y[rng.random(T) < 0.3] = np.nan
    K = model.n_states
    pl = None
    if data.draw(st.booleans()):
        pl = rng.random((T, K))
        pl[rng.random((T, K)) < 0.3] = 0.0
        pl[np.arange(T), rng.integers(0, K, T)] = 1.0  # no row of zeros
    L = _hmm_loglik_matrix(kind, model, y)
    if pl is not None:
        with np.errstate(divide="ignore"):
            L = L + np.log(pl)
    p = model.params
    with np.errstate(divide="ignore"):
        lpi, lA = np.log(p.pi0), np.log(p.A)
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    w = lpi[paths[:, 0]] + L[0, paths[:, 0]]
    for t in range(1, T):
        w = w + lA[paths[:, t - 1], paths[:, t]] + L[t, paths[:, t]]
    logZ = logsumexp(w)
    if not np.isfinite(logZ):  # labels contradict the structure: data of zero probability
        assert model.log_likelihood(y, pl=pl) == -np.inf
        exc = expect_error(("y", "pl"), model.smooth, y, pl=pl)
        assert isinstance(exc, ImpossibleDataError) and "time step" in str(exc), str(exc)
        return
    marg = np.zeros((T, K))
    for t in range(T):
        np.add.at(marg[t], paths[:, t], np.exp(w - logZ))
    sm = model.smooth(y, pl=pl)
    np.testing.assert_allclose(sm.log_likelihood, logZ, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sm.smoothed_probs, marg, atol=1e-10)
    np.testing.assert_allclose(model.log_likelihood(y, pl=pl), logZ, rtol=1e-10, atol=1e-12)
    best = model.most_likely_states(y, pl=pl)
    score = lambda q: lpi[q[0]] + L[0, q[0]] + sum(lA[q[t - 1], q[t]] + L[t, q[t]] for t in range(1, T))  # noqa: E731
    assert score(best) >= w.max() - 1e-9 * abs(w.max())
    fc = model.forecast(y, steps=2, n_samples=4, rng=seed, pl=pl)  # p(z_{T-1+h} | y) = p(z_{T-1} | y) A^h
    np.testing.assert_allclose(fc.state_probs, np.stack([marg[-1] @ p.A, marg[-1] @ p.A @ p.A]), atol=1e-10)
    draws = model.sample_posterior(y, n_samples=8, rng=seed, pl=pl)
    assert np.all(np.isfinite([score(d) for d in draws])), "a posterior draw has probability zero"


@pytest.mark.issue18(8, "result")
def test_partial_labels_list_matches_sequences():
    model = left_to_right_hmm()
    ys = [np.asarray(model.sample(T, rng=T)[1], dtype=float) for T in (4, 6)]
    pls = [np.ones((4, 3)), np.tile([1.0, 1.0, 0.2], (6, 1))]
    total = model.log_likelihood(ys, pl=pls)
    np.testing.assert_allclose(total, sum(model.log_likelihood(y, pl=p) for y, p in zip(ys, pls)), rtol=1e-12)


@pytest.mark.issue18(0, "result")
@pytest.mark.parametrize("kind", ["exact", "noisy", "gauss"])
def test_mjp_missing_observations_and_query_times(kind):
    model = mjp(kind)
    times = np.array([0.0, 0.3, 1.1, 2.0, 4.5])
    y = np.asarray(model.sample(times=times, rng=5)[1], dtype=float).ravel()
    y[2] = np.nan
    sm = model.smooth(y, times=times, query_times=np.array([0.1, 1.5, 3.0, 10.0]))
    assert_no_nan(sm)
    np.testing.assert_allclose(np.asarray(sm.smoothed_probs).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(sm.query_probs).sum(axis=1), 1.0, atol=1e-12)
    # dropping the missing step gives the same likelihood
    keep = ~np.isnan(y)
    np.testing.assert_allclose(
        model.log_likelihood(y, times=times), model.log_likelihood(y[keep], times=times[keep]), rtol=1e-12
    )


@pytest.mark.issue18(0, "result")
@HEAVY
@given(seed=st.integers(0, 2**16), T=st.integers(2, 6))
def test_mjp_exact_observations_pin_the_posterior(seed, T):
    """With exact state observations the Viterbi path is the data and every posterior path passes through it."""
    model = mjp("exact")
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(0.8, T))
    y = np.asarray(model.sample(times=times, rng=seed)[1], dtype=float).ravel()
    np.testing.assert_array_equal(model.most_likely_states(y, times=times), y.astype(int))
    sm = model.smooth(y, times=times)
    np.testing.assert_allclose(sm.smoothed_probs, np.eye(3)[y.astype(int)], atol=1e-12)
    _, [(jump_times, states)] = model.sample_posterior(y, times=times, rng=seed, return_paths=True)
    jump_times, states = np.asarray(jump_times, dtype=float), np.asarray(states).astype(int)
    assert not np.isnan(jump_times).any()
    assert np.all(np.diff(jump_times) >= 0)
    assert len(states) == len(jump_times) + 1  # states[0] holds from times[0], states[i + 1] from jump_times[i]
    for t_obs, s_obs in zip(times, y.astype(int)):  # the state in force at each observation time
        current = states[np.searchsorted(jump_times, t_obs, side="right")]
        assert current == s_obs, (t_obs, s_obs, jump_times, states)


# =========================================================================== particles
@pytest.mark.issue18(0, "result")
@pytest.mark.parametrize("routine", ["bootstrap", "paris"])
def test_particle_methods_on_missing_data_and_same_seed(routine):
    y = np.array([0.3, np.nan, -1.2, 0.8, np.nan, np.nan, 2.0])

    def run(seed):
        if routine == "bootstrap":
            return smc.bootstrap_filter(sv_model(), y, n_particles=64, rng=seed)
        return smc.paris_smoother(sv_model(), y, n_particles=64, rng=seed)

    a, b = run(7), run(7)
    assert_no_nan(a)
    assert np.isfinite(a.log_likelihood)
    assert a.log_likelihood == b.log_likelihood


@pytest.mark.issue18(0, "error")
def test_particle_filter_degenerate_weights_name_the_step():
    """An HMM observation impossible in every state kills every particle at t = 3."""
    from robustness_support import categorical_hmm

    model = categorical_hmm(np.array([[0.7, 0.3, 0.0], [0.1, 0.9, 0.0]]))
    exc = expect_error("t=3", smc.bootstrap_filter, model, np.array([0.0, 1.0, 0.0, 2.0, 1.0]), n_particles=32, rng=0)
    assert isinstance(exc, DegenerateWeightsError) and exc.t == 3


@pytest.mark.issue18(0, "result")
def test_particle_filter_on_hmm_agrees_with_forward_algorithm():
    """A cheap statistical check: 4000 particles, T = 8, |error| below 5 standard errors of 20 replicates."""
    model, y = hmm_data("gaussian", T=8, seed=2)
    exact = model.log_likelihood(y)
    est = np.array([smc.bootstrap_filter(model, y, n_particles=4000, rng=s).log_likelihood for s in range(20)])
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - exact) < 5 * se + 1e-3, (est.mean(), exact, se)


@pytest.mark.issue18(0, "result")
def test_particle_gibbs_and_ppg_give_finite_results():
    y = np.array([0.3, -1.2, np.nan, 0.8])
    pg = smc.particle_gibbs(sv_model(), y, n_iter=6, n_particles=8, rng=1, progress=False)
    assert_no_nan(pg.smoothed_means)
    assert np.isfinite(pg.log_likelihoods).all()
    ppg = smc.ppg_smoother(sv_model(), y, n_iter=4, n_particles=8, rng=1, progress=False)
    assert_no_nan(ppg.estimate)


# =========================================================================== determinism
Y3 = np.array([0.1, 2.0, -1.0])  # arrays, not lists: list conversion is class 8's, tested in test_inputs.py

DETERMINISTIC = {
    "lg.sample": lambda s: lg_model(1).sample(5, rng=s),
    "hmm.sample": lambda s: gaussian_hmm().sample(5, rng=s),
    "hmm.sample_posterior": lambda s: gaussian_hmm().sample_posterior(Y3, n_samples=3, rng=s),
    "hmm.forecast": lambda s: gaussian_hmm().forecast(Y3, steps=2, n_samples=5, rng=s),
    "hmm.fit": lambda s: (
        gaussian_hmm()
        .fit(np.array([0.1, 2.0, -1.0, 0.5, 0.3]), n_restarts=2, max_iter=3, rng=s, progress=False)
        .log_likelihoods
    ),
    "mjp.sample": lambda s: mjp("noisy").sample(times=np.array([0.0, 1.0, 2.0]), rng=s),
    "resample": lambda s: smc.resample(np.array([0.1, 0.2, 0.7]), n=6, rng=s),
}


@pytest.mark.issue18(0, "result")
@pytest.mark.parametrize("call", sorted(DETERMINISTIC))
def test_same_seed_same_result(call):
    from robustness_support import _leaves

    a, b = DETERMINISTIC[call](11), DETERMINISTIC[call](np.random.default_rng(11))
    la, lb = list(_leaves(a, "a")), list(_leaves(b, "a"))
    assert len(la) == len(lb)
    for (_, x), (_, z) in zip(la, lb):
        np.testing.assert_array_equal(x, z)


@pytest.mark.issue18(0, "result")
def test_particle_gibbs_same_seed_any_thread_count():
    y = np.array([0.3, -1.2, 0.8, 0.1])
    runs = [
        smc.particle_gibbs(sv_model(), y, n_iter=5, n_particles=8, n_chains=2, rng=3, progress=False, n_threads=n)
        for n in (1, 2)
    ]
    np.testing.assert_array_equal(runs[0].trajectories, runs[1].trajectories)
    np.testing.assert_array_equal(runs[0].log_likelihoods, runs[1].log_likelihoods)


# =========================================================================== CMAPSS (class 10)
def _row(unit, cycle):
    return " ".join([str(unit), str(cycle)] + ["0.5"] * 24)


def _write_cmapss(tmp_path, train_lines, test_lines=None):
    (tmp_path / "train_FD001.txt").write_text("\n".join(train_lines) + "\n")
    (tmp_path / "test_FD001.txt").write_text("\n".join(test_lines or [_row(1, 1), _row(1, 2)]) + "\n")
    return tmp_path


@pytest.mark.issue18(10, "error")
@pytest.mark.parametrize("bad", ["cycle", "fields", "word", "inf"])
def test_cmapss_errors_name_the_file_line(tmp_path, bad):
    from statespace.datasets import load_cmapss

    lines = ["", "", _row(1, 1), _row(1, 2), "", _row(1, 3), _row(2, 1)]
    bad_row = {
        "cycle": _row(2, 3),
        "fields": "2 2 0.5",
        "word": _row(2, 2).replace("0.5", "x", 1),
        "inf": _row(2, 2).replace("0.5", "inf", 1),
    }[bad]
    lines.append(bad_row)  # file line 8; data row 6
    exc = expect_error("train_FD001.txt", load_cmapss, _write_cmapss(tmp_path, lines))
    assert "line 8" in str(exc), str(exc)


@pytest.mark.issue18(10, "error")
@pytest.mark.parametrize("unit", ["1e20", "99999999999999999999", "-3", "1.5", "0"])
def test_cmapss_unit_id_out_of_range(tmp_path, unit):
    import warnings

    from statespace.datasets import load_cmapss

    lines = [_row(1, 1), _row(1, 2), " ".join([unit, "1"] + ["0.5"] * 24)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exc = expect_error("train_FD001.txt", load_cmapss, _write_cmapss(tmp_path, lines))
    assert "line 3" in str(exc), str(exc)


# =========================================================================== prognostics metrics
@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize("fn", ["rmse", "mae", "phm08_score"])
@pytest.mark.parametrize("bad", ["nan", "inf", "length", "empty"])
def test_prognostics_metrics_validate(fn, bad):
    import statespace.prognostics as P

    pred, true = np.array([10.0, 20.0, 30.0]), np.array([12.0, 18.0, 33.0])
    if bad == "nan":
        pred[1] = np.nan
    elif bad == "inf":
        true[0] = np.inf
    elif bad == "length":
        true = true[:2]
    else:
        pred, true = pred[:0], true[:0]
    expect_error(("predicted", "true"), getattr(P, fn), pred, true)


@pytest.mark.issue18(8, "result")
@FAST
@given(pairs=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), min_size=1, max_size=10))
def test_prognostics_metrics_lists_equal_arrays_and_closed_form(pairs):
    import statespace.prognostics as P

    pred, true = [float(p) for p, _ in pairs], [float(t) for _, t in pairs]
    d = np.array(pred) - np.array(true)
    np.testing.assert_allclose(P.rmse(pred, true), np.sqrt(np.mean(d**2)), rtol=1e-12)
    s = np.where(d < 0, np.exp(-d / 13) - 1, np.exp(d / 10) - 1)
    np.testing.assert_allclose(P.phm08_scores(pred, true), s, rtol=1e-12)
    assert P.rmse(pred, true) == P.rmse(np.array(pred), np.array(true))
