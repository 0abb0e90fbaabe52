"""Conditional SMC (particle Gibbs with backward / ancestor sampling) against exact RTS smoothing."""

import numpy as np
import pytest
from _ppg_oracles import ScalarLG, kalman_rts

from smc.csmc import particle_gibbs
from statespace.errors import ShapeError, StateSpaceError

MODEL = ScalarLG(F=0.9, Q=0.5, R=1.0, m0=0.5, P0=2.0)


@pytest.fixture(scope="module")
def data():
    _, y = MODEL.sample(20, rng=3)
    y[[4, 11]] = np.nan  # missing observations are part of the oracle
    return y


def _batch_z(draws, exact, n_batches=20):
    """z-scores of the chain averages against ``exact`` per time step (batch means over chains x batches)."""
    n_chains, n, T = draws.shape
    size = n // n_batches
    b = draws[:, : size * n_batches].reshape(n_chains * n_batches, size, T).mean(axis=1)
    se = b.std(axis=0, ddof=1) / np.sqrt(b.shape[0])
    return (b.mean(axis=0) - exact) / se


@pytest.mark.parametrize("method", ["backward", "ancestor"])
def test_particle_gibbs_leaves_smoothing_invariant(data, method):
    exact = kalman_rts(MODEL.params, data)
    res = particle_gibbs(
        MODEL,
        data,
        n_iter=2200,
        n_particles=8,
        method=method,
        n_chains=4,
        burn_in=200,
        reference=np.full((20, 1), 4.0),
        rng=11,
        progress=False,
    )
    x = res.trajectories[..., 0]
    z_mean = _batch_z(x, exact.means)
    z_second = _batch_z(x * x, exact.vars + exact.means**2)
    # 40 roughly independent z-scores: 4.0 is a Bonferroni-safe bound at level ~1e-3
    assert np.abs(z_mean).max() < 4.0, z_mean
    assert np.abs(z_second).max() < 4.0, z_second
    np.testing.assert_allclose(res.smoothed_means[:, 0], x.mean(axis=(0, 1)))
    assert res.update_rates.min() > 0.3


def test_chains_are_reproducible_and_independent(data):
    a = particle_gibbs(MODEL, data, n_iter=5, n_particles=6, n_chains=3, rng=7, progress=False)
    b = particle_gibbs(MODEL, data, n_iter=5, n_particles=6, n_chains=3, rng=7, progress=False)
    np.testing.assert_array_equal(a.trajectories, b.trajectories)
    assert not np.array_equal(a.trajectories[0], a.trajectories[1])
    assert a.trajectories.shape == (3, 5, 20, 1) and a.log_likelihoods.shape == (3, 5)


def test_bad_arguments(data):
    with pytest.raises(StateSpaceError, match="reference"):
        particle_gibbs(MODEL, data, n_iter=3, reference=np.zeros((5, 1)), progress=False)
    with pytest.raises(ValueError, match="method"):
        particle_gibbs(MODEL, data, n_iter=3, method="forward", progress=False)
    with pytest.raises(ValueError, match="n_particles"):
        particle_gibbs(MODEL, data, n_iter=3, n_particles=1, progress=False)
    with pytest.raises(ValueError, match="burn_in"):
        particle_gibbs(MODEL, data, n_iter=3, burn_in=3, progress=False)
    with pytest.raises(ShapeError):
        particle_gibbs(MODEL, [data, data], n_iter=3, progress=False)
