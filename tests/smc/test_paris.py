"""PaRIS against exact smoothers (RTS for linear-Gaussian, forward-backward for HMM) and its own O(N^2) reference."""

import math

import numba as nb
import numpy as np
import pytest
from test_particle_filter import rule_generators

import smc
from smc.paris import PaRIS, paris_smoother
from statespace import AdditiveFunctional, StochasticVolatility
from statespace.errors import ParameterError


def lg_model():
    from statespace.linear_gaussian import LinearGaussianSSM

    return LinearGaussianSSM(m0=[0.0], P0=[[1.0]], F=[[0.9]], Q=[[0.5]], H=[[1.0]], R=[[1.0]])


def hmm_model():
    from hmm import GaussianHMM, HMMParams
    from hmm.emissions import GaussianEmissionParams

    A = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    em = GaussianEmissionParams(weights=np.array([-2.0, 0.0, 2.0]).reshape(3, 1, 1), covs=np.ones((3, 1, 1)))
    return GaussianHMM(3, 1, params=HMMParams(np.ones(3) / 3, A, em))


# S = (sum_{t>=1} x_{t-1} x_t, sum_{t>=0} x_t^2, sum_t x_t)
@nb.njit
def _moments_initial(kp, x, y, out):
    out[0] = 0.0
    out[1] = x[0] * x[0]
    out[2] = x[0]


@nb.njit
def _moments_step(kp, t, x_prev, x, y, out):
    out[0] = x_prev[0] * x[0]
    out[1] = x[0] * x[0]
    out[2] = x[0]


MOMENTS = AdditiveFunctional(_moments_initial, _moments_step, 3)


def replicate(model, y, N, R, seed, functional=MOMENTS, **kw):
    return np.array([paris_smoother(model, y, functional, N, rng=seed + r, **kw).estimate for r in range(R)])


def lg_exact_stats(model, y):
    from statespace.linear_gaussian import e_step

    return e_step(model.params, [y], [None])[0]


def lg_target_moments(stats):
    """(sum_{t>=1} x_{t-1} x_t, sum_{t>=0} x_t^2) from the scalar model's built-in statistics vector."""
    from statespace.linear_gaussian import stats_layout

    lay = stats_layout(1, 1, 0)
    stats = np.atleast_2d(stats)
    return np.stack([stats[:, lay.xxp], stats[:, lay.x0x0] + stats[:, lay.xx]], axis=-1)


def test_lg_builtin_statistics_match_rts_with_missing_data():
    model = lg_model()
    _, y = model.sample(100, rng=0)
    y[[20, 21, 60]] = np.nan
    exact = lg_exact_stats(model, y)
    # independent check of the oracle's two entries we care most about, from the RTS output itself
    s = model.smooth(y)
    m, P, C = s.smoothed_means[:, 0], s.smoothed_covs[:, 0, 0], s.smoothed_cross_covs[:, 0, 0]
    np.testing.assert_allclose(lg_target_moments(exact)[0], [np.sum(C + m[:-1] * m[1:]), np.sum(P + m**2)])
    est = replicate(model, y, 1000, 8, seed=10, functional=None)
    err = est.mean(axis=0) - exact
    se = est.std(axis=0, ddof=1) / math.sqrt(len(est))
    assert np.all(np.abs(err) < 4 * se + 1e-6 * (1 + np.abs(exact))), (err, se)
    # and each single run is close: a few percent at N = 1000
    mom, ex = lg_target_moments(est), lg_target_moments(exact)[0]
    assert np.all(np.abs(mom - ex) < 0.05 * np.abs(ex)), (mom, ex)


@pytest.mark.slow
def test_lg_error_shrinks_like_one_over_sqrt_n():
    model = lg_model()
    _, y = model.sample(100, rng=1)
    exact = lg_target_moments(lg_exact_stats(model, y))[0]
    rmse = {}
    for N in (250, 1000, 4000):
        est = lg_target_moments(replicate(model, y, N, 16, seed=100 * N, functional=None))
        rmse[N] = np.sqrt(np.mean((est - exact) ** 2, axis=0))
    # RMSE * sqrt(N) is flat: each quadrupling of N halves the error (within replicate noise)
    for small, big in ((250, 1000), (1000, 4000)):
        ratio = rmse[small] / rmse[big]
        assert np.all((ratio > 1.3) & (ratio < 3.2)), (small, big, ratio)
    ratio = rmse[250] / rmse[4000]
    assert np.all((ratio > 2.5) & (ratio < 7.0)), ratio


def test_hmm_occupancy_and_transition_counts_match_forward_backward():
    model = hmm_model()
    _, y = model.sample(100, rng=3)
    exact = model.smooth(y)
    K = 3
    # built-in layout [K initial | K*K transitions | emission]: occupancy = initial + column sums
    est = replicate(model, y, 1000, 6, seed=50, functional=None)
    trans = est[:, K : K + K * K]
    occ = est[:, :K] + trans.reshape(-1, K, K).sum(axis=1)
    for got, target in ((occ, exact.smoothed_probs.sum(axis=0)), (trans, exact.transition_counts.ravel())):
        se = got.std(axis=0, ddof=1) / math.sqrt(len(got))
        assert np.all(np.abs(got.mean(axis=0) - target) < 4 * se + 0.05), (got.mean(axis=0), target, se)
        assert np.all(np.abs(got - target) < 0.1 * target.sum() / K)


def test_sv_hybrid_agrees_with_exact_backward_reference():
    model = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    _, y = model.sample(100, rng=4)
    R, N = 8, 300
    hybrid = replicate(model, y, N, R, seed=0)
    exact = replicate(model, y, N, R, seed=1000, backward="exact")
    forced = replicate(model, y, N, R, seed=2000, max_trials=1)  # mostly fallbacks
    se = np.sqrt(hybrid.var(axis=0, ddof=1) / R + exact.var(axis=0, ddof=1) / R)
    assert np.all(np.abs(hybrid.mean(axis=0) - exact.mean(axis=0)) < 4 * se), (hybrid.mean(0), exact.mean(0), se)
    se = np.sqrt(forced.var(axis=0, ddof=1) / R + exact.var(axis=0, ddof=1) / R)
    assert np.all(np.abs(forced.mean(axis=0) - exact.mean(axis=0)) < 4 * se)
    assert paris_smoother(model, y, MOMENTS, N, rng=0, backward="exact").fallback_rate == 1.0
    assert 0.0 <= paris_smoother(model, y, MOMENTS, N, rng=0).fallback_rate < 0.5


def test_online_equals_batch_and_parallel_equals_serial():
    model = StochasticVolatility()
    _, y = model.sample(60, rng=5)
    batch = paris_smoother(model, y, MOMENTS, 200, rng=7)
    online = PaRIS(model, MOMENTS, 200, rng=7)
    for t in range(len(y)):
        est = online.update(y[t])
        np.testing.assert_allclose(est, batch.estimates[t], rtol=1e-12, atol=1e-12)
    assert online.log_likelihood == pytest.approx(batch.log_likelihood, rel=1e-12)
    par = paris_smoother(model, y, MOMENTS, 200, rng=7, parallel=True)
    np.testing.assert_allclose(par.estimates, batch.estimates, rtol=1e-12, atol=1e-12)
    again = paris_smoother(model, y, MOMENTS, 200, rng=7)
    np.testing.assert_array_equal(again.estimates, batch.estimates)
    both = paris_smoother(model, [y, y[:30]], MOMENTS, 200, rng=7)
    assert isinstance(both, list) and [len(r.estimates) for r in both] == [60, 30]
    # a list's sequences draw from generators seeded from four draws of the caller's (smc.bootstrap_filter)
    for r, ys, g in zip(both, [y, y[:30]], rule_generators(7, 2)):
        alone = paris_smoother(model, ys, MOMENTS, 200, rng=g)
        np.testing.assert_array_equal(r.estimates, alone.estimates)
    assert paris_smoother(model, [y], MOMENTS, 200, rng=7)[0].log_likelihood == batch.log_likelihood


def test_guided_paris_matches_e_step():
    from test_particle_filter import OPTIMAL  # the locally optimal proposal of the same scalar model

    model = lg_model()
    _, y = model.sample(60, rng=9)
    y[10] = np.nan
    exact = lg_exact_stats(model, y)
    est = replicate(model, y, 500, 6, seed=300, functional=None, proposal=OPTIMAL)
    se = est.std(axis=0, ddof=1) / math.sqrt(len(est))
    assert np.all(np.abs(est.mean(axis=0) - exact) < 4 * se + 1e-6 * (1 + np.abs(exact)))


def test_wrong_transition_bound_is_detected():
    from smc.paris import _raise_if_bad, backward_step, build_alias

    model = StochasticVolatility()
    kp, k = model.kernel_params(), model.kernels()
    rng = np.random.default_rng(0)
    N = 50
    x_prev, x_new = rng.normal(-1, 1, (N, 1)), rng.normal(-1, 1, (N, 1))
    W = np.full(N, 1.0 / N)
    prob, alias = np.empty(N), np.empty(N, dtype=np.int64)
    build_alias(W, prob, alias)
    outs = [np.zeros((N, 3)), np.zeros((N, 3)), np.zeros((N, 2), dtype=np.int64)]
    fb, viol = np.zeros(N, dtype=np.int64), np.zeros(N, dtype=np.int64)
    y = np.zeros((2, 1))
    args = (k, MOMENTS, kp, 1, y, x_prev, W, np.zeros((N, 3)), x_new, prob, alias, 2)
    backward_step(*args, k.log_transition_bound(kp, 1), N, False, 1, *outs, fb, viol)
    assert viol.sum() == 0
    backward_step(*args, -50.0, N, False, 1, *outs, fb, viol)  # a "bound" far below the density
    assert viol.sum() > 0
    with pytest.raises(ParameterError, match="log_transition_bound"):
        _raise_if_bad(-1, int(viol.sum()))


class NoStats(StochasticVolatility):
    def sufficient_statistics(self):
        raise NotImplementedError


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_backward=0), "n_backward"),
        (dict(backward="ffbsi"), "backward"),
        (dict(max_trials=0), "max_trials"),
        (dict(functional=None, model=NoStats()), "sufficient statistics"),
        (dict(functional=_moments_step), "functional"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(model=StochasticVolatility(), y=np.zeros(5), functional=MOMENTS, n_particles=10)
    args.update(kwargs)
    with pytest.raises(ParameterError, match=match):
        paris_smoother(**args)
    with pytest.raises(ParameterError, match="y_t"):
        PaRIS(StochasticVolatility(), MOMENTS, 10).update([1.0, 2.0])


def test_exported_from_package():
    assert smc.paris_smoother is paris_smoother and smc.PaRIS is PaRIS


def test_markov_jump_process_filter_and_smoother_match_exact():
    from hmm.markov_jump import GaussianLevels, MarkovJumpProcess

    Q = np.array([[-1.0, 0.7, 0.3], [0.4, -0.8, 0.4], [0.2, 0.5, -0.7]])
    model = MarkovJumpProcess(Q=Q, observation=GaussianLevels(means=[-1.0, 0.0, 1.0], stds=[0.5, 0.5, 0.5]))
    times = np.cumsum(np.random.default_rng(0).exponential(0.5, 60))  # irregular observation times
    _, y = model.sample(rng=1, times=times)
    exact_f = model.filter(y, times=times).filtered_probs
    filt = smc.bootstrap_filter(model, y, 2000, rng=2, times=times)
    sd = np.sqrt(exact_f * (1 - exact_f) / filt.ess[:, None]) + 1e-3
    assert np.max(np.abs(filt.filtered_probs - exact_f) / sd) < 6.0
    # the built-in statistics start with the indicator of x_0: its smoothed mean is p(x_0 | y)
    exact_s = model.smooth(y, times=times).smoothed_probs[0]
    est = replicate(model, y, 500, 4, seed=20, functional=None, times=times)[:, :3]
    se = est.std(axis=0, ddof=1) / 2.0
    assert np.all(np.abs(est.mean(axis=0) - exact_s) < 4 * se + 0.02), (est.mean(axis=0), exact_s)
