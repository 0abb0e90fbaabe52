"""Bayesian particle Gibbs against an exact Kalman-marginalised random-walk Metropolis chain."""

import math

import numpy as np
import pytest
from _ppg_oracles import ScalarLGParams, kalman_rts
from scipy.stats import invwishart

from smc.learning import LGPrior, SVPrior, bayesian_particle_gibbs
from statespace import LinearGaussianSSM, StochasticVolatility


def _batch_se(chains, n_batches=10):
    """Standard error of the grand mean by batch means over (chains x batches)."""
    c, n = chains.shape
    size = n // n_batches
    b = chains[:, : size * n_batches].reshape(c * n_batches, size).mean(axis=1)
    return b.std(ddof=1) / math.sqrt(len(b))


def _kalman_mh(y, prior, n_iter, rng):
    """Random-walk Metropolis on (F, log Q, log R) with the exact Kalman likelihood."""

    def log_post(th):
        F, Q, R = th[0], math.exp(th[1]), math.exp(th[2])
        lp = -0.5 * ((F - prior.F_mean) / prior.F_sd) ** 2
        lp += invwishart.logpdf(Q, df=prior.Q_df, scale=prior.Q_scale) + th[1]
        lp += invwishart.logpdf(R, df=prior.R_df, scale=prior.R_scale) + th[2]
        return lp + kalman_rts(ScalarLGParams(F, Q, R, 0.0, 1.0), y).log_likelihood

    th = np.array([0.5, 0.0, 0.0])
    lp = log_post(th)
    out = np.empty((n_iter, 3))
    step = np.array([0.12, 0.45, 0.45])
    for i in range(n_iter):
        prop = th + step * rng.standard_normal(3)
        lq = log_post(prop)
        if math.log(rng.random()) < lq - lp:
            th, lp = prop, lq
        out[i] = th[0], math.exp(th[1]), math.exp(th[2])
    return out


@pytest.mark.slow
def test_bayesian_particle_gibbs_matches_exact_marginal_mcmc():
    truth = LinearGaussianSSM(
        m0=np.zeros(1), P0=np.eye(1), F=[[0.8]], Q=[[0.5]], H=[[1.0]], R=[[1.0]], frozen=("m0", "P0", "H")
    )
    _, y = truth.sample(50, rng=4)
    prior = LGPrior()
    post = bayesian_particle_gibbs(
        truth, y, prior, n_iter=1300, n_particles=10, n_chains=4, burn_in=100, rng=5, progress=False
    )
    mh = _kalman_mh(y[:, 0], prior, 30000, np.random.default_rng(6))[3000:]
    mh_chains = mh.reshape(4, -1, 3)
    for j, name in enumerate(("F[0,0]", "Q[0,0]", "R[0,0]")):
        pg = post.samples[name]
        se = math.hypot(_batch_se(pg), _batch_se(mh_chains[:, :, j]))
        assert abs(pg.mean() - mh[:, j].mean()) < 4 * se, (name, pg.mean(), mh[:, j].mean(), se)
        assert abs(pg.std() / mh[:, j].std() - 1) < 0.2, (name, pg.std(), mh[:, j].std())


def test_sv_gibbs_chains_are_reproducible_and_cover_truth():
    truth = StochasticVolatility(-1.0, 0.9, 0.4)
    _, y = truth.sample(300, rng=0)
    a = bayesian_particle_gibbs(
        StochasticVolatility(0.0, 0.5, 1.0), y, SVPrior(), n_iter=300, n_particles=12, n_chains=2, rng=1, progress=False
    )
    b = bayesian_particle_gibbs(
        StochasticVolatility(0.0, 0.5, 1.0), y, SVPrior(), n_iter=300, n_particles=12, n_chains=2, rng=1, progress=False
    )
    np.testing.assert_array_equal(a.samples["phi"], b.samples["phi"])
    assert a.samples["mu"].shape == (2, 240)
    for name, value in zip(("mu", "phi", "sigma"), truth.params):
        s = a.samples[name]
        # the truth lies in the bulk of the posterior (4 posterior standard deviations)
        assert abs(s.mean() - value) < 4 * s.std(), (name, s.mean(), s.std())
    assert (np.abs(a.samples["phi"]) < 1).all() and (a.samples["sigma"] > 0).all()
