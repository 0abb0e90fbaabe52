"""Learning building blocks against independent oracles: the SV M-step against numerical
optimisation, the Fisher-identity score against the exact Kalman gradient, the JAX log joint
densities against the models' compiled kernels, SAEM schedules and argument checks."""

import math

import numpy as np
import pytest
from _ppg_oracles import ScalarLG, kalman_rts
from scipy.optimize import minimize

from smc.learning import Parametrization, estimate_score, particle_em, score_ascent, score_climbing
from smc.learning.parametrization import enable_x64
from statespace import LinearGaussianSSM, StochasticVolatility
from statespace.errors import ParameterError

LG = LinearGaussianSSM(
    m0=np.zeros(1), P0=np.eye(1), F=[[0.8]], Q=[[0.5]], H=[[1.0]], R=[[1.0]], frozen=("m0", "P0", "H")
)


def _sv_complete_loglik(theta, x):
    mu, phi, s = theta
    v0 = s * s / (1 - phi * phi)
    r = x[1:] - mu - phi * (x[:-1] - mu)
    return -0.5 * (math.log(2 * math.pi * v0) + (x[0] - mu) ** 2 / v0) - 0.5 * np.sum(
        np.log(2 * math.pi * s * s) + r * r / (s * s)
    )


def test_sv_m_step_maximises_complete_data_likelihood():
    x, _ = StochasticVolatility(-1.0, 0.9, 0.4).sample(400, rng=0)
    x = x[:, 0]
    stats = np.array(
        [
            1,
            x[0],
            x[0] ** 2,
            len(x) - 1,
            x[:-1].sum(),
            x[1:].sum(),
            (x[:-1] ** 2).sum(),
            (x[:-1] * x[1:]).sum(),
            (x[1:] ** 2).sum(),
        ]
    )
    got = StochasticVolatility().m_step(stats).params
    opt = minimize(
        lambda th: -_sv_complete_loglik(th, x),
        x0=[-0.5, 0.5, 1.0],
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000},
    )
    np.testing.assert_allclose(got, opt.x, atol=1e-5)
    assert _sv_complete_loglik(got, x) >= -opt.fun - 1e-8


def test_sv_m_step_rejects_bad_statistics():
    with pytest.raises(ParameterError, match="stats"):
        StochasticVolatility().m_step(np.zeros(4))
    with pytest.raises(ParameterError, match="counts"):
        StochasticVolatility().m_step(np.zeros(9))


def test_fisher_identity_score_matches_exact_kalman_gradient():
    # a user model with a user parametrization theta = (F, log Q, log R)
    param = Parametrization(
        ("F", "log_Q", "log_R"),
        lambda m: np.array([m.params.F, math.log(m.params.Q), math.log(m.params.R)]),
        lambda th: ScalarLG(th[0], math.exp(th[1]), math.exp(th[2])),
    )
    model = ScalarLG(0.8, 0.5, 1.0)
    _, y = model.sample(60, rng=0)
    th = param.to_vector(model)

    def loglik(t):
        return kalman_rts(param.from_vector(t).params, y).log_likelihood

    exact = np.array([(loglik(th + e) - loglik(th - e)) / 2e-6 for e in 1e-6 * np.eye(3)])
    est = np.array(
        [
            estimate_score(model, y, param, n_particles=24, smoother="ppg", n_sweeps=12, burn_in=2, rng=i)
            for i in range(10)
        ]
    )
    se = est.std(axis=0, ddof=1) / math.sqrt(len(est))
    assert (np.abs(est.mean(axis=0) - exact) < 4 * se).all(), (est.mean(axis=0), exact, se)
    assert (se < 0.2 * np.abs(exact) + 0.5).all()


@pytest.mark.parametrize("model", [StochasticVolatility(-1.0, 0.9, 0.4), LG])
def test_jax_log_joint_matches_compiled_kernels(model):
    x, y = model.sample(30, rng=1)
    y[3] = np.nan
    k, kp = model.kernels(), model.kernel_params()
    exact = k.log_initial(kp, x[0]) + sum(k.log_transition(kp, t, x[t - 1], x[t]) for t in range(1, 30))
    exact += sum(k.log_emission(kp, t, x[t], y) for t in range(30))
    param = model.parametrization()
    jnp = enable_x64()

    got = float(param.log_joint(jnp.asarray(param.to_vector(model)), jnp.asarray(x), jnp.asarray(y)))
    assert got == pytest.approx(exact, rel=1e-10)
    back = param.from_vector(param.to_vector(model))
    np.testing.assert_allclose(
        np.concatenate([np.ravel(a) for a in back.params]),
        np.concatenate([np.ravel(a) for a in model.params]),
        atol=1e-12,
    )


def test_learning_runs_reproducibly_on_several_sequences():
    truth = StochasticVolatility(-1.0, 0.9, 0.4)
    ys = [truth.sample(80, rng=s)[1] for s in range(2)]
    start = StochasticVolatility(0.0, 0.5, 1.0)
    a = particle_em(start, ys, n_iter=6, n_particles=8, rng=3, progress=False)
    b = particle_em(start, ys, n_iter=6, n_particles=8, rng=3, progress=False)
    np.testing.assert_array_equal(a.trace, b.trace)
    assert a.trace.shape == (7, 3) and a.param_names == ("mu", "phi", "sigma")
    assert np.all(np.diff(a.particle_steps) > 0)
    c = score_ascent(start, ys, n_iter=4, n_particles=8, rng=3, progress=False)
    d = score_climbing(start, ys, n_iter=4, n_particles=8, kernel="ppg", n_paths=3, rng=3, progress=False)
    for r in (c, d):
        assert r.trace.shape == (5, 3) and np.isfinite(r.trace).all()


def test_learning_argument_errors():
    _, y = StochasticVolatility().sample(20, rng=0)
    with pytest.raises(ParameterError, match="smoother"):
        particle_em(StochasticVolatility(), y, smoother="ffbs", progress=False)
    with pytest.raises(ParameterError, match="step_sizes"):
        particle_em(StochasticVolatility(), y, n_iter=3, step_sizes=[1.0, 2.0, 0.5], progress=False)
    with pytest.raises(ParameterError, match="n_paths"):
        score_climbing(StochasticVolatility(), y, n_paths=2, kernel="csmc", progress=False)
    with pytest.raises(ParameterError, match="optimizer"):
        score_ascent(StochasticVolatility(), y, optimizer="lbfgs", progress=False)
