"""EM and structured maximum likelihood for Markov jump processes."""

import numpy as np
import pytest
import scipy.linalg

from hmm.markov_jump import (
    GaussianLevels,
    MarkovJumpProcess,
    MJPParams,
    NoisyLabels,
    fit_structured,
    flashing_ratchet_rates,
    generator_from_rates,
    observed_information,
    stationary_distribution,
    structured_log_likelihood,
)

OFF4 = ~np.eye(4, dtype=bool)


def free_rates(theta):
    """All 12 off-diagonal rates of a 4-state generator as parameters (row-major)."""
    import jax.numpy as jnp

    return jnp.zeros((4, 4)).at[jnp.asarray(np.nonzero(OFF4))[0], jnp.asarray(np.nonzero(OFF4))[1]].set(theta)


def irregular_grids(rng, n, horizon=5.0, step=0.25, size=8):
    grid = np.arange(0.0, horizon + step / 2, step)
    return [np.sort(rng.choice(grid, size=size, replace=False)) for _ in range(n)]


def test_em_recovers_a_random_generator_within_3_standard_errors():
    rng = np.random.default_rng(42)
    Q = generator_from_rates(rng.uniform(0.2, 1.2, (4, 4)))
    truth = MarkovJumpProcess(Q, rng.dirichlet(np.ones(4)))
    grids = irregular_grids(rng, 500)
    _, y = truth.sample(times=grids, rng=rng)
    start = MarkovJumpProcess(generator_from_rates(np.ones((4, 4))))
    fit = start.fit(y, times=grids, tol=1e-11, max_iter=2000, progress=False)
    assert fit.converged
    assert np.all(np.diff(fit.log_likelihoods) >= -1e-9 * abs(fit.log_likelihoods[-1]))
    q_hat = np.asarray(fit.params.Q)[OFF4]
    # Honest standard errors: the observed information of the 12 free rates at the
    # EM estimate (initial distribution fixed at its separable MLE).
    H = observed_information(free_rates, q_hat, y, grids, initial=fit.params.initial)
    se = np.sqrt(np.diag(np.linalg.inv(H)))
    z = (q_hat - Q[OFF4]) / se
    assert np.all(np.abs(z) < 3), z
    # EM's fixed point is a stationary point of the likelihood: the structured MLE
    # over the same free rates, started there, does not move.
    res = fit_structured(free_rates, q_hat, y, grids, initial=fit.params.initial, bounds=[(1e-8, None)] * 12)
    np.testing.assert_allclose(res.theta, q_hat, atol=0.05 * se.min())
    assert res.log_likelihood == pytest.approx(fit.log_likelihoods[-1], abs=1e-5)


@pytest.mark.parametrize("kind", ["exact", "labels", "symmetric", "gaussian"])
def test_em_log_likelihood_never_decreases_and_structural_zeros_stay(kind):
    rng = np.random.default_rng(1)
    R = rng.uniform(0.3, 1.5, (3, 3))
    R[0, 2] = 0.0
    Q = generator_from_rates(R)
    obs = {
        "exact": None,
        "labels": NoisyLabels(np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.05, 0.15, 0.8]])),
        "symmetric": NoisyLabels.uniform_replacement(3, 0.2),
        "gaussian": GaussianLevels([0.0, 1.0, 2.0], [0.4, 0.4, 0.4]),
    }[kind]
    truth = MarkovJumpProcess(Q, None, obs)
    grids = [np.sort(rng.uniform(0, 6, 25)) for _ in range(15)]
    _, y = truth.sample(times=grids, rng=rng)
    y[0][3] = np.nan  # missing data are marginalised
    start_obs = {
        "exact": None,
        "labels": NoisyLabels(np.full((3, 3), 0.1) + 0.7 * np.eye(3)),
        "symmetric": NoisyLabels.uniform_replacement(3, 0.4, learn="symmetric"),
        "gaussian": GaussianLevels([-0.5, 0.8, 2.5], [1.0, 1.0, 1.0]),
    }[kind]
    R0 = np.ones((3, 3))
    R0[0, 2] = 0.0
    start = MJPParams(generator_from_rates(R0), None, start_obs)
    fit = MarkovJumpProcess(params=start).fit(y, times=grids, max_iter=60, tol=0.0, progress=False)
    lls = fit.log_likelihoods
    assert len(lls) == 61
    assert np.all(np.diff(lls) >= -1e-9 * abs(lls[-1])), np.diff(lls).min()
    assert fit.params.Q[0, 2] == 0.0
    # history[-1] is the log-likelihood of the returned parameters
    assert MarkovJumpProcess(params=fit.params).log_likelihood(y, times=grids) == pytest.approx(lls[-1], rel=1e-10)


def test_symmetric_noise_m_step_is_the_maximiser():
    # The closed-form replacement rate maximises the expected complete-data term:
    # compare with a grid search of sum_t sum_k gamma_t(k) log B[k, y_t].
    rng = np.random.default_rng(3)
    K = 4
    gamma = rng.dirichlet(np.ones(K), size=200)
    y = rng.integers(0, K, 200).astype(float)[:, None]
    obs = NoisyLabels.uniform_replacement(K, 0.3, learn="symmetric")
    eps = obs.m_step([gamma], [y]).replacement_rate

    def q(e):
        return np.sum(gamma * np.log(NoisyLabels.uniform_replacement(K, e).emission[:, y[:, 0].astype(int)].T))

    grid = np.linspace(0.01, 0.99, 9801)
    assert q(eps) >= max(q(e) for e in grid) - 1e-9


def test_structured_likelihood_equals_model_likelihood_and_mle_is_consistent():
    rng = np.random.default_rng(0)
    theta = np.array([1.0, 1.0, 1.0])
    R = np.asarray(flashing_ratchet_rates(theta))
    Q = generator_from_rates(R)
    pi = stationary_distribution(Q)
    model = MarkovJumpProcess(Q, pi)
    grids = [np.linspace(0, 1, 30)] * 80
    _, y = model.sample(times=grids, rng=rng)
    assert structured_log_likelihood(flashing_ratchet_rates, theta, y, grids) == pytest.approx(
        model.log_likelihood(y, times=grids), rel=1e-10
    )
    # noisy labels go through the batched forward recursion; with irregular grids of different lengths
    noisy = MarkovJumpProcess(Q, pi, NoisyLabels.uniform_replacement(6, 0.1))
    g2 = [np.sort(rng.uniform(0, 2, n)) for n in (5, 9, 2)]
    _, y2 = noisy.sample(times=g2, rng=rng)
    assert structured_log_likelihood(
        flashing_ratchet_rates, theta, y2, g2, observation=noisy.params.observation
    ) == pytest.approx(noisy.log_likelihood(y2, times=g2), rel=1e-10)
    res = fit_structured(
        flashing_ratchet_rates, [0.5, 0.5, 0.5], y, grids, bounds=[(None, None), (1e-6, None), (1e-6, None)]
    )
    assert res.converged
    assert np.all(np.abs(res.theta - theta) < 4 * res.std_errors)
    # the MLE beats the truth and every nearby point
    assert res.log_likelihood >= structured_log_likelihood(flashing_ratchet_rates, theta, y, grids)
    for d in np.eye(3) * 0.02:
        assert res.log_likelihood >= structured_log_likelihood(flashing_ratchet_rates, res.theta + d, y, grids)


def test_structured_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    Q = generator_from_rates(np.asarray(flashing_ratchet_rates(np.array([0.7, 1.3, 0.9]))))
    obs = NoisyLabels.uniform_replacement(6, 0.1)
    grids = [np.sort(rng.uniform(0, 2, 12)) for _ in range(6)]
    _, y = MarkovJumpProcess(Q, None, obs).sample(times=grids, rng=rng)
    theta = np.array([0.8, 1.1, 1.0])
    H = observed_information(flashing_ratchet_rates, theta, y, grids, observation=obs)
    h = 1e-4

    def f(t):
        return structured_log_likelihood(flashing_ratchet_rates, t, y, grids, observation=obs)

    for i in range(3):
        for j in range(3):
            ei, ej = np.eye(3)[i] * h, np.eye(3)[j] * h
            fd = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)) / (4 * h * h)
            assert -H[i, j] == pytest.approx(fd, rel=1e-4, abs=1e-4)


def test_warm_start_and_transition_matrix_identity():
    # fit(params=...) starts from the given parameters: a converged fit restarted stays put.
    rng = np.random.default_rng(8)
    Q = generator_from_rates(rng.uniform(0.3, 1.0, (3, 3)))
    grids = [np.sort(rng.uniform(0, 3, 10)) for _ in range(30)]
    _, y = MarkovJumpProcess(Q).sample(times=grids, rng=rng)
    m = MarkovJumpProcess(generator_from_rates(np.ones((3, 3))))
    first = m.fit(y, times=grids, tol=1e-12, max_iter=3000, progress=False)
    again = m.fit(y, times=grids, init=first.params, max_iter=5, progress=False)
    assert again.log_likelihoods[0] == pytest.approx(first.log_likelihoods[-1], rel=1e-12)
    np.testing.assert_allclose(again.params.Q, first.params.Q, atol=1e-5)
    np.testing.assert_allclose(scipy.linalg.expm(np.asarray(first.params.Q)).sum(axis=1), 1.0)
