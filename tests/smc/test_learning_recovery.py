"""Each learning scheme recovers the parameters of SV and of a scalar linear-Gaussian model from
T = 2000 points within 3 standard errors (slow). Standard errors: the exact Kalman Hessian for
the linear-Gaussian model; for SV, the expected Fisher information estimated as the covariance
over simulated data sets of the Fisher-identity score at the truth."""

import math

import numpy as np
import pytest
from _ppg_oracles import ScalarLG, kalman_rts

from smc.learning import Parametrization, estimate_score, particle_em, score_ascent, score_climbing
from statespace import LinearGaussianSSM, StochasticVolatility

pytestmark = pytest.mark.slow
T = 2000


@pytest.fixture(scope="module")
def sv_problem():
    truth = StochasticVolatility(-1.0, 0.95, 0.3)
    _, y = truth.sample(T, rng=1)
    param = truth.parametrization()
    scores = np.array(
        [
            estimate_score(
                truth, truth.sample(T, rng=100 + i)[1], n_particles=32, smoother="ppg", n_sweeps=3, burn_in=1, rng=i
            )
            for i in range(20)
        ]
    )
    info = np.cov(scores.T)
    se_u = np.sqrt(np.diag(np.linalg.inv(info)))  # unconstrained (mu, atanh phi, log sigma)
    p = truth.params
    se = np.array([se_u[0], (1 - p.phi**2) * se_u[1], p.sigma * se_u[2]])
    start = StochasticVolatility(-0.5, 0.8, 0.5)
    return truth, y, param, se, start


@pytest.fixture(scope="module")
def lg_problem():
    truth = ScalarLG(0.8, 0.5, 1.0)
    _, y = truth.sample(T, rng=1)
    param = Parametrization(
        ("F", "log_Q", "log_R"),
        lambda m: np.array([m.params.F, math.log(m.params.Q), math.log(m.params.R)]),
        lambda th: ScalarLG(th[0], math.exp(th[1]), math.exp(th[2])),
        _scalar_lg_log_joint,
    )

    def nll(th):
        return -kalman_rts(ScalarLGParams(th[0], th[1], th[2]), y).log_likelihood

    from scipy.optimize import minimize

    mle = minimize(nll, [0.5, 1.0, 1.0], method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10}).x
    h = 1e-4
    H = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            ei, ej = h * np.eye(3)[i], h * np.eye(3)[j]
            H[i, j] = (nll(mle + ei + ej) - nll(mle + ei - ej) - nll(mle - ei + ej) + nll(mle - ei - ej)) / (4 * h * h)
    se = np.sqrt(np.diag(np.linalg.inv(H)))
    return truth, y, param, se, mle, ScalarLG(0.5, 1.0, 2.0)


def ScalarLGParams(F, Q, R):
    return ScalarLG(F, Q, R).params


def _scalar_lg_log_joint(theta, x, y):
    import jax.numpy as jnp

    F, Q, R = theta[0], jnp.exp(theta[1]), jnp.exp(theta[2])
    x, yy = x[:, 0], y[:, 0]
    lp = -0.5 * (jnp.log(2 * jnp.pi) + x[0] ** 2)
    r = x[1:] - F * x[:-1]
    lp += jnp.sum(-0.5 * (jnp.log(2 * jnp.pi * Q) + r * r / Q))
    obs = ~jnp.isnan(yy)
    e = jnp.where(obs, yy - x, 0.0)
    return lp + jnp.sum(jnp.where(obs, -0.5 * (jnp.log(2 * jnp.pi * R) + e * e / R), 0.0))


def _fit(scheme, start, y, param):
    if scheme == "em":
        return particle_em(start, y, n_iter=250, n_particles=16, rng=2, progress=False).model
    if scheme == "ascent":
        return score_ascent(start, y, n_iter=200, n_particles=16, parametrization=param, rng=2, progress=False).model
    return score_climbing(start, y, n_iter=400, n_particles=16, parametrization=param, rng=2, progress=False).model


@pytest.mark.parametrize("scheme", ["em", "ascent", "climb"])
def test_sv_recovery(sv_problem, scheme):
    truth, y, param, se, start = sv_problem
    got = np.array(_fit(scheme, start, y, param).params)
    z = (got - np.array(truth.params)) / se
    assert np.all(np.abs(z) < 3), (scheme, got, se)


@pytest.mark.parametrize("scheme", ["em", "ascent", "climb"])
def test_scalar_lg_recovery(lg_problem, scheme):
    truth, y, param, se, mle, start = lg_problem
    p = _fit(scheme, start, y, param).params
    got = np.array([p.F, p.Q, p.R])
    assert np.all(np.abs(got - np.array([0.8, 0.5, 1.0])) < 3 * se), (scheme, got, se)
    # and it is the maximum-likelihood estimate, up to less than the statistical error
    assert np.all(np.abs(got - mle) < se), (scheme, got, mle, se)


def test_linear_gaussian_ssm_particle_em_follows_exact_em():
    # integration with the library's LinearGaussianSSM (its sufficient statistics and M-step)
    truth = LinearGaussianSSM(
        m0=np.zeros(1), P0=np.eye(1), F=[[0.8]], Q=[[0.5]], H=[[1.0]], R=[[1.0]], frozen=("m0", "P0", "H")
    )
    _, y = truth.sample(500, rng=1)
    start = LinearGaussianSSM(
        m0=np.zeros(1), P0=np.eye(1), F=[[0.5]], Q=[[1.0]], H=[[1.0]], R=[[2.0]], frozen=("m0", "P0", "H")
    )
    # plain particle EM (gamma_k = 1) follows the exact EM path: compare both after 60 iterations
    exact = LinearGaussianSSM(start.params, frozen=start.frozen)
    exact.fit(y, max_iter=60, tol=0.0, progress=False)
    got = particle_em(start, y, n_iter=60, n_particles=16, step_sizes=np.ones(60), rng=3, progress=False).params
    em60 = np.array([float(getattr(exact.params, f)[0, 0]) for f in ("F", "Q", "R")])

    def nll(th):
        m = LinearGaussianSSM(m0=np.zeros(1), P0=np.eye(1), F=[[th[0]]], Q=[[th[1]]], H=[[1.0]], R=[[th[2]]])
        return -m.log_likelihood(y)

    h = 1e-4
    H = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            ei, ej = h * np.eye(3)[i], h * np.eye(3)[j]
            H[i, j] = (nll(em60 + ei + ej) - nll(em60 + ei - ej) - nll(em60 - ei + ej) + nll(em60 - ei - ej)) / (
                4 * h * h
            )
    se = np.sqrt(np.diag(np.linalg.inv(H)))
    est = np.array([float(getattr(got, f)[0, 0]) for f in ("F", "Q", "R")])
    assert np.all(np.abs(est - em60) < 0.5 * se), (est, em60, se)


def test_hmm_particle_em_reaches_exact_em_likelihood():
    # discrete states: PPG statistics and the HMM's own M-step (issue 3's model) against its exact EM
    hmm = pytest.importorskip("hmm")
    g = np.random.default_rng(0)
    y0 = np.concatenate([g.normal(-2, 1, 100), g.normal(2, 1, 100)] * 2)[:, None]
    truth = hmm.HMM(2, 1)
    truth.fit(y0, progress=False)
    _, y = truth.sample(300, rng=1)
    exact = hmm.HMM(2, 1, params=truth.params)
    exact.fit(y, progress=False)
    got = particle_em(hmm.HMM(2, 1, params=truth.params), y, n_iter=30, n_particles=32, rng=2, progress=False)
    assert got.model.log_likelihood(y) > exact.log_likelihood(y) - 0.05
    np.testing.assert_allclose(got.params.A, exact.params.A, atol=0.01)
