"""Large filters: particles in blocks with a random stream each, moved in parallel.

Oracles: the filter's steps composed by hand from the library's building blocks (the same
numbers, bit for bit), the Kalman filter (the blocked filter's moments and likelihood within
Monte Carlo error), and the filter itself on one thread (the same numbers on two).
"""

import math

import numba as nb
import numpy as np
import pytest
from test_particle_filter import OPTIMAL, lg_model

from smc.particle_filter import (
    BOOTSTRAP,
    PARALLEL_MIN_PARTICLES,
    PARTICLE_BLOCKS,
    bootstrap_filter,
    carry,
    forward_step,
    guided_filter,
    initial_step,
    move,
    particle_streams,
)
from statespace import StochasticVolatility
from statespace._numerics.weights import normalise

BIG = PARALLEL_MIN_PARTICLES


@nb.njit
def _initial(kernels, proposal, kp, y, rng, x, logw):
    initial_step(kernels, proposal, False, kp, y, rng, x, logw)


@nb.njit
def _forward(kernels, proposal, kp, t, y, x_prev, W, lse, rs, rng, x_new, logw, anc):
    forward_step(kernels, proposal, False, kp, t, y, x_prev, W, lse, rs, 2, rng, x_new, logw, anc)


@nb.njit
def _carry(rs, W, lse, rng, logw, anc):
    carry(rs, 2, W, lse, rng, logw, anc)


@nb.njit
def _move(kernels, proposal, kp, t, y, x_prev, anc, rng, x_new, logw):
    move(kernels, proposal, False, kp, t, y, x_prev, anc, rng, x_new, logw)


def _by_hand(model, y, N, seed):
    """The bootstrap filter (systematic resampling at ESS < N/2) composed from its documented steps:
    one stream below ``PARALLEL_MIN_PARTICLES``, else the moves of block ``b`` of ``particle_streams``'s
    bounds drawn from ``streams[b]``, the first particles and the resampling from the caller's generator. Returns the log-likelihood
    increments and the last particles."""
    kernels, kp = model.kernels(), model.kernel_params()
    rng = np.random.default_rng(seed)
    streams, bounds = particle_streams(N, rng)
    blocks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    x, x_new, logw, W = np.empty((N, 1)), np.empty((N, 1)), np.empty(N), np.empty(N)
    anc = np.arange(N)
    _initial(kernels, BOOTSTRAP, kp, y, rng, x, logw)
    lse, ess = normalise(logw, W)
    incs = [lse - math.log(N)]
    for t in range(1, len(y)):
        rs = ess < 0.5 * N
        if not streams:
            _forward(kernels, BOOTSTRAP, kp, t, y, x, W, lse, rs, rng, x_new, logw, anc)
        else:
            _carry(rs, W, lse, rng, logw, anc)
            for b, (lo, hi) in enumerate(blocks):
                _move(kernels, BOOTSTRAP, kp, t, y, x, anc[lo:hi], streams[b], x_new[lo:hi], logw[lo:hi])
        x, x_new = x_new, x
        lse, ess = normalise(logw, W)
        incs.append(lse - (math.log(N) if rs else 0.0))
    return np.array(incs), x


@pytest.mark.parametrize("N", [BIG - 1, BIG, 3 * BIG + 5])
def test_the_filter_is_its_steps_composed_by_hand(N):
    """Below the threshold one stream (the caller's, as before blocks existed); from it on, the blocks
    of ``particle_streams`` (uneven sizes included), each drawn from its own stream."""
    model = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    _, y = model.sample(25, rng=4)
    y[7] = np.nan
    incs, x = _by_hand(model, y, N, seed=21)
    res = bootstrap_filter(model, y, N, rng=21)
    np.testing.assert_array_equal(res.log_likelihood_increments, incs)
    np.testing.assert_array_equal(res.particles, x)
    assert res.resampled.any() and not res.resampled.all()  # both branches of the step ran


def test_blocks_draw_from_distinct_streams():
    """The noise of the first move, recovered from the history (``x_1 = mu + phi (x_0 - mu) + sigma eps``),
    holds no repeated value: blocks sharing or repeating a stream would repeat it. Another seed gives
    other noise (the streams are seeded from the caller's generator)."""
    mu, phi, sigma = -1.0, 0.95, 0.3
    model = StochasticVolatility(mu=mu, phi=phi, sigma=sigma)
    _, y = model.sample(3, rng=0)

    def noise(seed):
        r = bootstrap_filter(model, y, BIG, rng=seed, ess_threshold=0.0, return_history=True)
        x0, x1 = r.particle_history[0, :, 0], r.particle_history[1, :, 0]
        np.testing.assert_array_equal(r.ancestors[1], np.arange(BIG))  # no resampling: x_1[n] moves x_0[n]
        return np.round((x1 - mu - phi * (x0 - mu)) / sigma, 9)

    eps = noise(5)
    assert len(np.unique(eps)) == BIG
    assert abs(eps.mean()) < 5 / np.sqrt(BIG) and abs(eps.std() - 1.0) < 0.05  # standard normal draws
    assert not np.intersect1d(eps, noise(6)).size
    streams, bounds = particle_streams(BIG, np.random.default_rng(5))
    assert len(streams) == PARTICLE_BLOCKS and bounds[0] == 0 and bounds[-1] == BIG


@pytest.mark.skipif(nb.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("guided", [False, True])
def test_the_same_numbers_on_one_and_two_threads(guided):
    model = lg_model()
    _, y = model.sample(40, rng=3)
    y[[5, 6]] = np.nan
    before = nb.get_num_threads()

    def run(threads):
        nb.set_num_threads(threads)
        try:
            if guided:
                return guided_filter(model, y, OPTIMAL, BIG + 3, rng=8, return_history=True)
            return bootstrap_filter(model, [y, y[:10]], BIG + 3, rng=8, return_history=True)
        finally:
            nb.set_num_threads(before)

    one, two = run(1), run(2)
    for a, b in zip(one if isinstance(one, list) else [one], two if isinstance(two, list) else [two]):
        for name, value in a._asdict().items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(getattr(b, name), value, err_msg=name)
        assert a.log_likelihood == b.log_likelihood


@pytest.mark.parametrize("guided", [False, True])
def test_blocked_filter_matches_kalman(guided):
    """Filtered means within 5 Monte Carlo standard errors of Kalman's at every step (the error of a
    weighted mean is about ``sd / sqrt(ESS)``), and ``E[p_hat / p] = 1`` within 4 standard errors over
    400 replicates (the ratio's standard deviation is about 0.05 here: a bias of 1 % would sit about
    4 standard errors out, and 3 standard errors are passed by chance 1 time in 370)."""
    model = lg_model()
    _, y = model.sample(30, rng=12)
    y[[3, 17]] = np.nan
    kf = model.filter(y)
    mean, sd = kf.filtered_means[:, 0], np.sqrt(kf.filtered_covs[:, 0, 0])

    def run(seed):
        if guided:
            return guided_filter(model, y, OPTIMAL, BIG, rng=seed)
        return bootstrap_filter(model, y, BIG, rng=seed)

    res = run(0)
    err = np.abs(res.filtered_means[:, 0] - mean) / (sd / np.sqrt(res.ess))
    assert err.max() < 5.0, err.max()
    np.testing.assert_allclose(np.sqrt(res.filtered_covs[:, 0, 0]), sd, rtol=0.1)
    ratio = np.exp(np.array([run(1000 + r).log_likelihood for r in range(400)]) - model.log_likelihood(y))
    m, se = ratio.mean(), ratio.std(ddof=1) / math.sqrt(len(ratio))
    assert abs(m - 1.0) < 4 * se and se < 0.005, (m, se)
