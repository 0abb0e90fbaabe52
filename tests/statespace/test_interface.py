"""The shared interface: per-particle kernels of the shipped models against scipy, simulation, functionals."""

import math

import numpy as np
import pytest
from lgssm_dense import joint, random_params
from scipy import stats

from statespace import (
    ExactInferenceUnavailable,
    LinearGaussianSSM,
    ModelKernels,
    ParameterError,
    ShapeError,
    StochasticVolatility,
    SVParams,
    simulate,
)
from statespace.linear_gaussian import e_step


@pytest.fixture(scope="module")
def lg():
    rng = np.random.default_rng(0)
    params = random_params(rng, d=3, m=3, p=2, T=5, time_varying=("F", "Q", "R"))
    u = rng.normal(size=(5, 2))
    model = LinearGaussianSSM(params)
    return model, model.kernel_params(u), u


def test_lgssm_kernels_are_model_kernels(lg):
    model, _, _ = lg
    k = model.kernels()
    assert isinstance(k, ModelKernels)
    assert (k.state_dim, k.obs_dim, k.n_states) == (3, 3, 0)
    assert model.state_dim == 3 and model.obs_dim == 3


def test_lgssm_log_densities_match_scipy(lg):
    model, kp, u = lg
    p = model.params
    k = model.kernels()
    rng = np.random.default_rng(1)
    x0, x1 = rng.normal(size=3), rng.normal(size=3)
    assert math.isclose(k.log_initial(kp, x0), stats.multivariate_normal(p.m0, p.P0).logpdf(x0), rel_tol=1e-12)
    t = 3
    mean = p.F[t] @ x0 + p.B @ u[t]
    expected = stats.multivariate_normal(mean, p.Q[t]).logpdf(x1)
    assert math.isclose(k.log_transition(kp, t, x0, x1), expected, rel_tol=1e-12)
    bound = k.log_transition_bound(kp, t)
    assert math.isclose(bound, stats.multivariate_normal(mean, p.Q[t]).logpdf(mean), rel_tol=1e-12)
    assert all(k.log_transition(kp, t, x0, rng.normal(size=3)) <= bound for _ in range(20))
    y = rng.normal(size=(5, 3))
    emean = p.H @ x1 + p.D @ u[t]
    assert math.isclose(
        k.log_emission(kp, t, x1, y), stats.multivariate_normal(emean, p.R[t]).logpdf(y[t]), rel_tol=1e-12
    )
    y[t, 1] = np.nan
    keep = [0, 2]
    marg = stats.multivariate_normal(emean[keep], p.R[t][np.ix_(keep, keep)]).logpdf(y[t, keep])
    assert math.isclose(k.log_emission(kp, t, x1, y), marg, rel_tol=1e-12)
    y[t] = np.nan
    assert k.log_emission(kp, t, x1, y) == 0.0


def test_lgssm_sample_matches_dense_joint_moments(lg):
    model, _, u = lg
    n = 4000
    rng = np.random.default_rng(2)
    draws = np.array(
        [np.concatenate([a.ravel(), b.ravel()]) for a, b in (model.sample(5, rng=rng, inputs=u) for _ in range(n))]
    )
    mu_x, cov_x, mu_y, cov_y, cov_xy = joint(model.params, 5, u)
    mu = np.concatenate([mu_x, mu_y])
    cov = np.block([[cov_x, cov_xy], [cov_xy.T, cov_y]])
    se = np.sqrt(np.diag(cov) / n)
    assert (np.abs(draws.mean(axis=0) - mu) < 4 * se).all()
    # variances: the sample variance has standard error about sqrt(2/n) * var
    assert (np.abs(draws.var(axis=0) - np.diag(cov)) < 4 * np.sqrt(2 / n) * np.diag(cov)).all()


def test_sample_is_reproducible_and_validated(lg):
    model, _, u = lg
    a = model.sample(5, rng=3, inputs=u)
    b = model.sample(5, rng=np.random.default_rng(3), inputs=u)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ShapeError, match="T"):
        model.sample(6, rng=0, inputs=np.zeros((6, 2)))
    with pytest.raises(ShapeError, match="inputs"):
        model.sample(5, rng=0, inputs=np.zeros((4, 2)))
    with pytest.raises(ShapeError, match="inputs"):
        model.sample(5, rng=0)


def test_simulate_runs_any_model_kernels(lg):
    model, kp, _ = lg
    x, y = simulate(model.kernels(), kp, 5, np.random.default_rng(4))
    assert x.shape == (5, 3) and y.shape == (5, 3) and np.isfinite(y).all()


def test_sufficient_statistics_functional_matches_exact_e_step():
    # Average of the additive functional over exact posterior draws (FFBS) equals
    # the exact expected statistics (smoothed moments), within Monte Carlo error.
    rng = np.random.default_rng(5)
    params = random_params(rng, d=2, m=3, p=1)
    model = LinearGaussianSSM(params)
    T = 6
    u = rng.normal(size=(T, 1))
    _, y = model.sample(T, rng=rng, inputs=u)
    y[1, 0] = np.nan
    y[3] = np.nan
    y[4, [0, 2]] = np.nan
    kp = model.kernel_params(u)
    h = model.sufficient_statistics()
    exact, _ = e_step(params, [y], [u])
    assert h.dim == exact.shape[0]
    paths = model.sample_posterior(y, 3000, rng=6, inputs=u)
    values = np.empty((len(paths), h.dim))
    buf = np.empty(h.dim)
    for i, x in enumerate(paths):
        h.initial(kp, x[0], y, buf)
        values[i] = buf
        for t in range(1, T):
            h.step(kp, t, x[t - 1], x[t], y, buf)
            values[i] += buf
    se = values.std(axis=0) / np.sqrt(len(values))
    np.testing.assert_array_less(np.abs(values.mean(axis=0) - exact), 4.5 * se + 1e-10)


def test_m_step_from_functional_statistics_returns_model():
    rng = np.random.default_rng(7)
    model = LinearGaussianSSM(random_params(rng, d=2, m=2), frozen=("F",))
    _, y = model.sample(30, rng=rng)
    stats, _ = e_step(model.params, [y], [None])
    new = model.m_step(stats)
    assert isinstance(new, LinearGaussianSSM) and new.frozen == model.frozen
    np.testing.assert_array_equal(new.params.F, model.params.F)
    assert new.log_likelihood(y) >= model.log_likelihood(y)
    with pytest.raises(ShapeError, match="stats"):
        model.m_step(stats[:-1])


# --- the stochastic volatility example model -------------------------------------
def test_sv_kernels_match_scipy():
    sv = StochasticVolatility(mu=-1.0, phi=0.9, sigma=0.4)
    k, kp = sv.kernels(), sv.kernel_params()
    x0, x1 = np.array([-0.5]), np.array([-1.3])
    s0 = 0.4 / math.sqrt(1 - 0.81)
    assert math.isclose(k.log_initial(kp, x0), stats.norm(-1.0, s0).logpdf(-0.5), rel_tol=1e-12)
    m = -1.0 + 0.9 * (-0.5 + 1.0)
    assert math.isclose(k.log_transition(kp, 1, x0, x1), stats.norm(m, 0.4).logpdf(-1.3), rel_tol=1e-12)
    assert math.isclose(k.log_transition_bound(kp, 1), stats.norm(m, 0.4).logpdf(m), rel_tol=1e-12)
    y = np.array([[0.7], [np.nan]])
    assert math.isclose(k.log_emission(kp, 0, x1, y), stats.norm(0, math.exp(-1.3 / 2)).logpdf(0.7), rel_tol=1e-12)
    assert k.log_emission(kp, 1, x1, y) == 0.0


def test_sv_sample_is_stationary_and_reproducible():
    sv = StochasticVolatility(mu=-1.0, phi=0.5, sigma=0.5)
    x, y = sv.sample(20000, rng=8)
    x2, _ = sv.sample(20000, rng=8)
    np.testing.assert_array_equal(x, x2)
    var = 0.25 / (1 - 0.25)
    # AR(1) mean: standard error sqrt(var (1 + phi) / (1 - phi) / n)
    se = math.sqrt(var * 3 / 20000)
    assert abs(x.mean() + 1.0) < 4 * se
    assert abs(x.var() - var) < 0.05 * var
    # E[y^2] = E[exp(x)] = exp(mu + var / 2)
    assert abs(np.mean(y**2) / math.exp(-1 + var / 2) - 1) < 0.1


def test_sv_has_no_exact_inference_and_validates():
    sv = StochasticVolatility()
    y = np.zeros(5)
    for call in (sv.log_likelihood, sv.filter, sv.smooth, sv.fit):
        with pytest.raises(ExactInferenceUnavailable):
            call(y)
    with pytest.raises(ParameterError, match="phi"):
        SVParams(mu=0.0, phi=1.0, sigma=1.0)
    with pytest.raises(ParameterError, match="sigma"):
        SVParams(mu=0.0, phi=0.5, sigma=-1.0)
    with pytest.raises(ParameterError, match="mu"):
        SVParams(mu=float("nan"), phi=0.5, sigma=1.0)
    with pytest.raises(ShapeError, match="T"):
        sv.sample(0)


def test_sv_m_step_on_complete_data_recovers_parameters():
    # Complete data (the simulated path): the functional's statistics summed over
    # the path and one M-step give the complete-data MLE, close to the truth.
    sv = StochasticVolatility(mu=-1.0, phi=0.8, sigma=0.5)
    x, y = sv.sample(20000, rng=9)
    h, kp = sv.sufficient_statistics(), sv.kernel_params()
    total, buf = np.zeros(h.dim), np.empty(h.dim)
    h.initial(kp, x[0], y, buf)
    total += buf
    for t in range(1, len(x)):
        h.step(kp, t, x[t - 1], x[t], y, buf)
        total += buf
    fit = sv.m_step(total).params
    # asymptotic standard errors of the AR(1) MLE
    n = len(x)
    se_phi = math.sqrt((1 - 0.64) / n)
    se_mu = 0.5 / (1 - 0.8) / math.sqrt(n)
    se_sigma = 0.5 / math.sqrt(2 * n)
    assert abs(fit.phi - 0.8) < 4 * se_phi
    assert abs(fit.mu + 1.0) < 4 * se_mu
    assert abs(fit.sigma - 0.5) < 4 * se_sigma
