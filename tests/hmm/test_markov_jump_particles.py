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
