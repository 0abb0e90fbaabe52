"""Particle methods of smc run on the jump-process kernels; the exact forward-backward is the oracle."""

import numpy as np
import pytest

from hmm.markov_jump import MarkovJumpProcess, NoisyLabels, generator_from_rates

smc = pytest.importorskip("smc")


def test_bootstrap_filter_likelihood_and_filtered_probs_match_exact():
    rng = np.random.default_rng(0)
    Q = generator_from_rates(rng.uniform(0.3, 1.5, (3, 3)))
    model = MarkovJumpProcess(Q, None, NoisyLabels.uniform_replacement(3, 0.2))
    times = np.sort(rng.uniform(0, 8, 25))
    _, y = model.sample(times=times, rng=rng)
    y[4, 0] = np.nan
    exact_ll = model.log_likelihood(y, times=times)
    exact_filt = model.filter(y, times=times).filtered_probs
    ratios, last = [], []
    for seed in range(20):
        res = smc.bootstrap_filter(model, y, n_particles=400, rng=seed, times=times)
        ratios.append(np.exp(res.log_likelihood - exact_ll))
        last.append(res.filtered_probs[-1])
    ratios = np.array(ratios)
    # exp(log-likelihood estimate) is unbiased for the likelihood
    assert abs(ratios.mean() - 1.0) <= 3 * ratios.std(ddof=1) / np.sqrt(len(ratios))
    last = np.array(last)
    se = last.std(axis=0, ddof=1) / np.sqrt(len(last))
    assert np.all(np.abs(last.mean(axis=0) - exact_filt[-1]) <= 3 * se + 1e-3)


def test_paris_smoothed_means_match_exact_smoother():
    # PaRIS's accept-reject backward step relies on log_transition_bound (log max_ij P_t[i, j]).
    from smc import paris_smoother, smoothed_marginals_functional, split_marginals

    rng = np.random.default_rng(1)
    Q = generator_from_rates(rng.uniform(0.3, 1.5, (3, 3)))
    model = MarkovJumpProcess(Q, None, NoisyLabels.uniform_replacement(3, 0.3))
    times = np.sort(rng.uniform(0, 6, 15))
    _, y = model.sample(times=times, rng=rng)
    exact = model.smooth(y, times=times).smoothed_probs @ np.arange(3.0)
    T = len(times)
    means = []
    for seed in range(10):
        res = paris_smoother(model, y, smoothed_marginals_functional(T), n_particles=300, rng=seed, times=times)
        means.append(split_marginals(res.estimate, T)[0][:, 0])
    means = np.array(means)
    se = means.std(axis=0, ddof=1) / np.sqrt(len(means))
    # 3 replicate standard errors plus an O(1/N) allowance for the smoother's bias
    assert np.all(np.abs(means.mean(axis=0) - exact) <= 3 * se + 0.01)


def _exact_functional(model, y, times):
    """E[sufficient statistics | y] from the exact E-step (forward-backward + Van Loan)."""
    from hmm.markov_jump import expected_statistics

    ll, dwell, jumps, gamma, _ = expected_statistics(model.params, [y], [times])
    obs = model.params.observation
    seen = ~np.isnan(y[:, 0])
    if isinstance(obs, NoisyLabels):
        em = np.zeros(obs.emission.shape)
        np.add.at(em.T, y[seen, 0].astype(int), gamma[seen])
    else:
        v = y[seen, 0]
        g = gamma[seen]
        em = np.stack([g.sum(0), g.T @ v, g.T @ (v * v)], axis=1)
    return np.concatenate([gamma[0], dwell, jumps.ravel(), em.ravel()]), gamma


@pytest.mark.parametrize("kind", ["labels", "gaussian"])
def test_sufficient_statistics_tables_and_m_step_agree_with_exact_em(kind):
    from hmm.forward_backward import backward, forward, two_slice_marginals
    from hmm.markov_jump import GaussianLevels, MJPParams
    from hmm.markov_jump.em import MJPStats, m_step

    rng = np.random.default_rng(2)
    R = rng.uniform(0.3, 1.5, (3, 3))
    R[1, 0] = 0.0
    obs = (
        NoisyLabels(rng.dirichlet(np.ones(4), size=3))
        if kind == "labels"
        else GaussianLevels([0, 1, 2.0], [0.5, 0.6, 0.4])
    )
    model = MarkovJumpProcess(generator_from_rates(R), None, obs)
    times = np.sort(rng.uniform(0, 5, 12))
    _, y = model.sample(times=times, rng=rng)
    y[3, 0] = np.nan
    want, gamma = _exact_functional(model, y, times)
    # the per-interval tables weighted by the two-slice posteriors give the same expectations
    kp = model.kernel_params(times=times)
    L = obs.log_likelihoods(y, 3)
    A = kp.P[1:]
    _, filt, scale = forward(np.asarray(model.params.initial), A, L)
    xi = two_slice_marginals(A, L, filt, scale, backward(A, L, scale))
    tab = sum(np.einsum("ab,abd->d", xi[t - 1], kp.cond_stats[kp.stat_index[t]]) for t in range(1, len(times)))
    np.testing.assert_allclose(tab, want[3 : 3 + 3 + 9], rtol=1e-9, atol=1e-12)
    # m_step from the exact expected statistics is exactly the EM update
    new = model.m_step(want, n_sequences=1)
    K = 3
    exact = MJPStats(
        0.0, want[K : 2 * K], want[2 * K : 2 * K + K * K].reshape(K, K), gamma[0], obs.statistics([gamma], [y])
    )
    ref = m_step(model.params, exact)
    np.testing.assert_allclose(new.params.Q, ref.Q, rtol=1e-12)
    np.testing.assert_allclose(new.params.initial, ref.initial, rtol=1e-12)
    for f in ("emission", "means", "stds"):
        if getattr(ref, f) is not None:
            np.testing.assert_allclose(getattr(new.params, f), getattr(ref, f), rtol=1e-10)
    assert isinstance(new.params, MJPParams) and new.params.Q[1, 0] == 0.0


def test_paris_estimates_the_exact_sufficient_statistics():
    from smc import paris_smoother

    rng = np.random.default_rng(3)
    model = MarkovJumpProcess(
        generator_from_rates(rng.uniform(0.3, 1.5, (3, 3))), None, NoisyLabels.uniform_replacement(3, 0.2)
    )
    times = np.sort(rng.uniform(0, 6, 15))
    _, y = model.sample(times=times, rng=rng)
    want, _ = _exact_functional(model, y, times)
    est = np.array([paris_smoother(model, y, n_particles=300, rng=s, times=times).estimate for s in range(10)])
    se = est.std(axis=0, ddof=1) / np.sqrt(len(est))
    assert np.all(np.abs(est.mean(axis=0) - want) <= 3 * se + 0.02 * np.maximum(1.0, np.abs(want)))
