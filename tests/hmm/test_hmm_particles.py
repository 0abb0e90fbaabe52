"""Particle filters run on an HMM through its compiled kernels; the exact forward pass is the oracle."""

import numpy as np

from hmm import ARHMM, GaussianEmissionParams, HMMParams


def test_bootstrap_filter_likelihood_is_unbiased_for_the_exact_arhmm_likelihood():
    smc = __import__("smc")
    rng = np.random.default_rng(0)
    K, d = 3, 2
    e = GaussianEmissionParams.from_ar(
        bias=np.array([[0.0, 0.0], [1.5, -1.0], [-1.5, 1.0]]),
        covs=np.stack([0.5 * np.eye(d)] * K),
        ar_coefs=0.3 * rng.normal(size=(K, 1, d, d)),
    )
    A = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    model = ARHMM(K, d, 1, params=HMMParams(np.full(K, 1 / 3), A, e))
    _, y = model.sample(60, rng=1)
    y[10, 0] = np.nan
    y[20] = np.nan
    exact = model.log_likelihood(y)
    ests = np.array([smc.bootstrap_filter(model, y, n_particles=1000, rng=s).log_likelihood for s in range(30)])
    ratio = np.exp(ests - exact)  # unbiased for 1
    assert abs(ratio.mean() - 1.0) < 4.0 * ratio.std(ddof=1) / np.sqrt(len(ratio)) + 1e-3
