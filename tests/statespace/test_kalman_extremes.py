"""Kalman filter, smoother, forecast and EM on extreme but valid data: exact answers or named errors.

Oracles: an exact Kalman filter and RTS smoother in rational arithmetic
(``fractions``, below), which has no round-off (the dense joint-Gaussian algebra of
``lgssm_dense.py`` is itself ill-conditioned for an unstable ``F``); and
the model's change of units (``y -> c y``, ``x -> a x``), which maps every
moment and shifts the log-likelihood by the Jacobian.
"""

import math
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lgssm_dense import random_params  # noqa: E402

from statespace import LinearGaussianSSM  # noqa: E402
from statespace.errors import DataError, ImpossibleDataError, ParameterError  # noqa: E402
from statespace.linear_gaussian import (  # noqa: E402
    LGSSMParams,
    fit_em,
    forecast,
    kalman_filter,
    kalman_log_likelihood,
    rts_smoother,
)


# ---------------------------------------------------------------- exact rational filter
def _mm(A, B):
    return [[sum(A[i][k] * B[k][j] for k in range(len(B))) for j in range(len(B[0]))] for i in range(len(A))]


def _inv(A):
    if len(A) == 1:
        return [[1 / A[0][0]]]
    det = A[0][0] * A[1][1] - A[0][1] * A[1][0]
    return [[A[1][1] / det, -A[0][1] / det], [-A[1][0] / det, A[0][0] / det]]


def exact_kalman(params: LGSSMParams, y: np.ndarray, smooth: bool = False):
    """Kalman filter (and RTS smoother) in exact rational arithmetic: one observed coordinate, ``d <= 2``.

    Returns ``log p(y)`` and, with ``smooth``, the smoothed means ``(T, d)`` and covariances ``(T, d, d)``.
    """
    fr = lambda A: [[Fraction(float(v)) for v in row] for row in np.atleast_2d(A)]  # noqa: E731
    F, Q, H, R = fr(params.F), fr(params.Q), fr(params.H), fr(params.R)
    Ft = [list(r) for r in zip(*F)]
    m, P = [[Fraction(float(v))] for v in params.m0], fr(params.P0)
    d, ll = len(m), 0.0
    fm, fP, pm, pP = [], [], [], []
    for t in range(len(y)):
        if t > 0:
            m = _mm(F, m)
            P = [[a + b for a, b in zip(r1, r2)] for r1, r2 in zip(_mm(_mm(F, P), Ft), Q)]
        pm.append(m), pP.append(P)
        if not np.isnan(y[t, 0]):
            HP = _mm(H, P)
            S = sum(HP[0][k] * H[0][k] for k in range(d)) + R[0][0]
            e = Fraction(float(y[t, 0])) - _mm(H, m)[0][0]
            ll += -0.5 * (math.log(2 * math.pi) + math.log(S.numerator) - math.log(S.denominator)) - 0.5 * float(
                e * e / S
            )
            m = [[m[i][0] + HP[0][i] / S * e] for i in range(d)]
            P = [[P[i][j] - HP[0][i] * HP[0][j] / S for j in range(d)] for i in range(d)]
        fm.append(m), fP.append(P)
    if not smooth:
        return ll
    sm, sP = [None] * len(y), [None] * len(y)
    sm[-1], sP[-1] = fm[-1], fP[-1]
    for t in range(len(y) - 2, -1, -1):
        J = _mm(_mm(fP[t], Ft), _inv(pP[t + 1]))
        sm[t] = [[fm[t][i][0] + sum(J[i][k] * (sm[t + 1][k][0] - pm[t + 1][k][0]) for k in range(d))] for i in range(d)]
        D = [[sP[t + 1][i][j] - pP[t + 1][i][j] for j in range(d)] for i in range(d)]
        JDJ = _mm(_mm(J, D), [list(r) for r in zip(*J)])
        sP[t] = [[fP[t][i][j] + JDJ[i][j] for j in range(d)] for i in range(d)]
    means = np.array([[float(v[0]) for v in x] for x in sm])
    covs = np.array([[[float(v) for v in row] for row in x] for x in sP])
    return ll, means, covs


def exact_log_likelihood(params: LGSSMParams, y: np.ndarray) -> float:
    """``log p(y)`` by :func:`exact_kalman`."""
    return exact_kalman(params, y)


def _unstable(d):
    F = 1.5 * np.eye(1) if d == 1 else np.array([[1.5, 0.2], [0.0, 1.2]])
    return LGSSMParams(m0=np.zeros(d), P0=np.eye(d), F=F, Q=np.eye(d), H=np.ones((1, d)), R=[[1.0]])


def _gappy(n_obs, gap, tail=0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.full((n_obs + gap + tail, 1), np.nan)
    y[:n_obs, 0] = rng.normal(size=n_obs)
    y[n_obs + gap :, 0] = 1.0
    return y


# ---------------------------------------------------------------- unstable F, trailing gap
@pytest.mark.parametrize("d", [1, 2])
def test_trailing_gap_beyond_float64_is_a_named_error_and_the_likelihood_stays_exact(d):
    params = _unstable(d)
    y = _gappy(50, 2000)
    for verb in (
        lambda: kalman_filter(params, y),
        lambda: rts_smoother(params, y),
        lambda: LinearGaussianSSM(params).smooth(y),
        lambda: fit_em(params, y, max_iter=2, progress=False),
    ):
        with pytest.raises(
            DataError,
            match=r"exceeds the float64 range at time step \d+, \d+ steps after the last "
            r"observation \(time step 49\)",
        ):
            verb()
    # the trailing missing steps do not enter the likelihood: that of the observed prefix
    ll = exact_log_likelihood(params, y[:50])
    np.testing.assert_allclose(kalman_log_likelihood(params, y), ll, rtol=1e-10)
    np.testing.assert_allclose(LinearGaussianSSM(params).log_likelihood(y), ll, rtol=1e-10)


@pytest.mark.parametrize("d", [1, 2])
def test_long_representable_trailing_gap_smooths_exactly(d):
    # predicted variances reach ~1.5^300 = 1e53: representable, so every moment must be exact and finite
    params = _unstable(d)
    y = _gappy(30, 150)
    s = rts_smoother(params, y)
    ll, mean, cov = exact_kalman(params, y, smooth=True)
    assert np.isfinite(s.smoothed_means).all() and np.isfinite(s.smoothed_covs).all()
    assert np.isfinite(s.smoothed_cross_covs).all() and np.isfinite(s.smoother_gains).all()
    np.testing.assert_allclose(s.log_likelihood, ll, rtol=1e-10)
    for t in range(len(y)):
        scale = np.sqrt(np.abs(np.diag(cov[t])).max())
        np.testing.assert_allclose(s.smoothed_means[t], mean[t], rtol=1e-7, atol=1e-7 * scale, err_msg=f"t={t}")
        np.testing.assert_allclose(s.smoothed_covs[t], cov[t], rtol=1e-7, atol=1e-7 * scale * scale, err_msg=f"t={t}")
    # in the trailing gap the smoothed law is the filtered one (no later data)
    np.testing.assert_array_equal(s.smoothed_means[30:], s.filtered_means[30:])


# ---------------------------------------------------------------- unstable F, gap then data
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("gap", [20, 40])
def test_gap_then_data_matches_the_exact_rational_filter(d, gap):
    params = _unstable(d)
    y = _gappy(50, gap, tail=5)
    np.testing.assert_allclose(kalman_log_likelihood(params, y), exact_log_likelihood(params, y), rtol=1e-8)


@pytest.mark.parametrize("d", [1, 2])
def test_gap_whose_prediction_float64_cannot_update_is_a_named_error(d):
    # after 100 steps the prediction is ~1e17 from the data in units of the filtered standard
    # deviation: the update is round-off, and the likelihood came out silently wrong (-149.4 against
    # the exact -142.1 for d = 1; -178.3 against -172.8 for d = 2)
    params = _unstable(d)
    y = _gappy(50, 100, tail=5)
    assert np.isfinite(exact_log_likelihood(params, y))
    for verb in (
        lambda: kalman_log_likelihood(params, y),
        lambda: kalman_filter(params, y),
        lambda: rts_smoother(params, y),
    ):
        with pytest.raises(DataError, match="at time step 150 the filtered mean is lost to round-off"):
            verb()


# ---------------------------------------------------------------- extreme scales
def _transform(p, c, a):
    return LGSSMParams(
        m0=a * p.m0, P0=a * a * p.P0, F=p.F, B=a * p.B, Q=a * a * p.Q, H=(c / a) * p.H, D=c * p.D, R=c * c * p.R
    )


@pytest.mark.parametrize("c", [1e-150, 1e150])
@pytest.mark.parametrize("state_follows", [False, True])
def test_data_at_extreme_scales_give_the_rescaled_answers(c, state_follows):
    rng = np.random.default_rng(4)
    params = random_params(rng, d=2, m=2)
    _, y = LinearGaussianSSM(params).sample(40, rng=rng)
    y[rng.random(y.shape) < 0.2] = np.nan
    a = c if state_follows else 1.0
    q, cy = _transform(params, c, a), c * y
    n_obs = int((~np.isnan(y)).sum())
    ref, got = rts_smoother(params, y), rts_smoother(q, cy)
    np.testing.assert_allclose(got.log_likelihood, ref.log_likelihood - n_obs * math.log(c), rtol=1e-10)
    for name, power in (("smoothed_means", 1), ("smoothed_covs", 2), ("smoothed_cross_covs", 2), ("filtered_means", 1)):
        want = getattr(ref, name) * a**power
        np.testing.assert_allclose(getattr(got, name), want, rtol=1e-8, atol=1e-8 * np.abs(want).max(), err_msg=name)
    fr, fg = forecast(params, y, 4), forecast(q, cy, 4)
    np.testing.assert_allclose(fg.obs_means, c * fr.obs_means, rtol=1e-8, atol=1e-8 * c * np.abs(fr.obs_means).max())
    np.testing.assert_allclose(fg.obs_covs, c * c * fr.obs_covs, rtol=1e-8)


def test_observation_beyond_float64_density_range_follows_the_impossible_data_policy():
    # observations 1e150 under noise of variance 1e-150: log-density ~ -1e450, below float64
    rng = np.random.default_rng(0)
    params = random_params(rng, d=2, m=2)
    tiny = params.replace(P0=params.P0 * 1e-150, Q=params.Q * 1e-150, R=params.R * 1e-150)
    y = rng.normal(size=(20, 2)) * 1e150
    assert kalman_log_likelihood(tiny, y) == -np.inf
    assert LinearGaussianSSM(tiny).log_likelihood(y) == -np.inf
    for verb in (
        lambda: kalman_filter(tiny, y),
        lambda: rts_smoother(tiny, y),
        lambda: forecast(tiny, y, 2),
        lambda: fit_em(tiny, y, max_iter=2, progress=False),
        lambda: LinearGaussianSSM(tiny).sample_posterior(y, 2, rng=0),
    ):
        with pytest.raises(ImpossibleDataError, match="time step 0 has zero probability"):
            verb()


def test_forecast_beyond_float64_is_a_named_error():
    params = _unstable(1)
    y = _gappy(20, 0)
    ok = forecast(params, y, 800)
    assert np.isfinite(ok.covs).all()
    with pytest.raises(DataError, match=r"steps: the forecast \d+ steps ahead exceeds the float64 range"):
        forecast(params, y, 2000)


def test_em_on_a_long_gap_never_reports_a_decrease_as_convergence():
    # smoothed moments ~1e35 in the gap make the M-step's covariances round-off; the
    # first M-step then lowers the likelihood, which EM must report, not hide
    params = _unstable(1)
    y = _gappy(50, 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_em(params, y, max_iter=20, tol=1e-8, progress=False)
    lls = res.log_likelihoods
    assert (np.diff(lls) >= -1e-9 * np.abs(lls[:-1])).all()
    if any("decreased" in str(w.message) for w in caught):
        assert not res.converged


def test_m_step_on_overflowing_statistics_names_the_entry():
    from statespace.linear_gaussian import m_step, stats_layout

    params = _unstable(2)
    stats = np.ones(stats_layout(2, 1, 0).size)
    stats[7] = np.inf
    with pytest.raises(ParameterError, match="stats: non-finite sufficient statistic at index 7"):
        m_step(params, stats)
