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
