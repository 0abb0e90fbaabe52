"""Kalman filter and RTS smoother against the dense joint-Gaussian oracle (lgssm_dense.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lgssm_dense import block, condition, random_params

from statespace.linear_gaussian import LGSSMParams, LinearGaussianSSM, kalman_filter, rts_smoother

RTOL = 1e-8

CASES = {
    "plain": dict(d=3, m=2),
    "inputs": dict(d=3, m=2, p=2),
    "time_varying": dict(d=2, m=3, time_varying=("F", "Q", "H", "R")),
    "scalar": dict(d=1, m=1),
    "more_obs_than_states": dict(d=2, m=4, p=1),
}


def _close(actual, expected):
    scale = max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


def _problem(name, missing, seed=0, T=6):
    rng = np.random.default_rng(seed)
    kw = CASES[name]
    params = random_params(rng, T=T, **kw)
    y = rng.normal(size=(T, params.obs_dim)) * 2
    u = rng.normal(size=(T, params.input_dim)) if params.input_dim else None
    if missing == "coords":
        mask = rng.random(y.shape) < 0.35
        mask[0, 0] = True
        y[mask] = np.nan
    elif missing == "rows":
        y[[1, 4]] = np.nan
    return params, y, u


@pytest.mark.parametrize("missing", ["none", "coords", "rows"])
@pytest.mark.parametrize("name", list(CASES))
def test_filter_matches_dense_gaussian(name, missing):
    params, y, u = _problem(name, missing)
    T, d = len(y), params.state_dim
    res = kalman_filter(params, y, inputs=u)
    _, _, ll = condition(params, y, u)
    _close(res.log_likelihood, ll)
    for t in range(T):
        mean, cov, _ = condition(params, y, u, upto=t + 1)
        _close(res.filtered_means[t], mean[t * d : (t + 1) * d])
        _close(res.filtered_covs[t], block(cov, d, t, t))
        mean, cov, _ = condition(params, y, u, upto=t)
        _close(res.predicted_means[t], mean[t * d : (t + 1) * d])
        _close(res.predicted_covs[t], block(cov, d, t, t))


@pytest.mark.parametrize("missing", ["none", "coords", "rows"])
@pytest.mark.parametrize("name", list(CASES))
def test_smoother_matches_dense_gaussian(name, missing):
    params, y, u = _problem(name, missing, seed=1)
    T, d = len(y), params.state_dim
    res = rts_smoother(params, y, inputs=u)
    mean, cov, ll = condition(params, y, u)
    _close(res.log_likelihood, ll)
    _close(res.smoothed_means, mean.reshape(T, d))
    for t in range(T):
        _close(res.smoothed_covs[t], block(cov, d, t, t))
    for t in range(T - 1):
        _close(res.smoothed_cross_covs[t], block(cov, d, t + 1, t))


def test_missing_rows_equal_dropping_them():
    # Dropping rows of a time-invariant model changes the dynamics between the
    # remaining steps, so the dense oracle keeps the states and drops the rows of Y.
    params, y, u = _problem("inputs", "none", seed=2, T=7)
    y_missing = y.copy()
    y_missing[[0, 3, 6]] = np.nan
    ll = kalman_filter(params, y_missing, inputs=u).log_likelihood
    _, _, ll_dense = condition(params, y_missing, u)
    _close(ll, ll_dense)
    # and the dense oracle itself: the marginal of the kept rows, computed by dropping them
    from lgssm_dense import joint

    mu_x, cov_x, mu_y, cov_y, _ = joint(params, 7, u)
    keep = np.concatenate([np.arange(t * 2, t * 2 + 2) for t in (1, 2, 4, 5)])
    r = y.ravel()[keep] - mu_y[keep]
    S = cov_y[np.ix_(keep, keep)]
    expected = -0.5 * (len(keep) * np.log(2 * np.pi) + np.linalg.slogdet(S)[1] + r @ np.linalg.solve(S, r))
    _close(ll, expected)


def test_all_missing_gives_prior():
    params, y, u = _problem("plain", "none", seed=3)
    y[:] = np.nan
    res = rts_smoother(params, y)
    assert res.log_likelihood == 0.0
    mean, cov, _ = condition(params, y)
    _close(res.smoothed_means.ravel(), mean)


def test_list_of_sequences_gives_list():
    params, y, _ = _problem("plain", "coords", seed=4)
    res = kalman_filter(params, [y, y[:3]])
    assert isinstance(res, list) and len(res) == 2
    _close(res[1].log_likelihood, kalman_filter(params, y[:3]).log_likelihood)


def test_one_dimensional_observations_accepted():
    p = LGSSMParams(m0=np.zeros(1), P0=np.eye(1), F=[[0.9]], Q=[[0.1]], H=[[1.0]], R=[[0.5]])
    y = np.array([0.3, np.nan, -0.2])
    a = kalman_filter(p, y)
    b = kalman_filter(p, y[:, None])
    assert a.log_likelihood == b.log_likelihood


def test_long_sequence_stays_symmetric_and_finite():
    rng = np.random.default_rng(5)
    params = random_params(rng, d=4, m=2)
    y = rng.normal(size=(3000, 2))
    y[rng.random(y.shape) < 0.2] = np.nan
    res = rts_smoother(params, y)
    assert np.isfinite(res.log_likelihood)
    np.testing.assert_array_equal(res.smoothed_covs, np.swapaxes(res.smoothed_covs, 1, 2))
    assert np.linalg.eigvalsh(res.filtered_covs).min() > 0
    assert np.linalg.eigvalsh(res.smoothed_covs).min() > 0


def test_forecast_equals_dense_prediction_of_appended_missing_rows():
    params, y, u = _problem("inputs", "coords", seed=6, T=5)
    k = 3
    rng = np.random.default_rng(6)
    fu = rng.normal(size=(k, params.input_dim))
    res = LinearGaussianSSM(params).forecast(y, k, inputs=u, future_inputs=fu)
    y_ext = np.vstack([y, np.full((k, params.obs_dim), np.nan)])
    u_ext = np.vstack([u, fu])
    from lgssm_dense import joint

    mean, cov, _ = condition(params, y_ext, u_ext)
    d, T = params.state_dim, len(y)
    _, _, _, cov_y, cov_xy = joint(params, T + k, u_ext)
    for h in range(k):
        t = T + h
        _close(res.means[h], mean[t * d : (t + 1) * d])
        _close(res.covs[h], block(cov, d, t, t))
        # observation moments: y_t = H x_t + D u_t + v_t with v_t independent of the past
        _close(res.obs_means[h], params.H @ mean[t * d : (t + 1) * d] + params.D @ fu[h])
        _close(res.obs_covs[h], params.H @ block(cov, d, t, t) @ params.H.T + params.R)


def test_ffbs_draws_have_smoothed_moments():
    params, y, u = _problem("inputs", "coords", seed=7, T=6)
    model = LinearGaussianSSM(params)
    n = 4000
    draws = model.sample_posterior(y, n, rng=7, inputs=u)
    mean, cov, _ = condition(params, y, u)
    flat = draws.reshape(n, -1)
    se = np.sqrt(np.diag(cov) / n)
    assert (np.abs(flat.mean(axis=0) - mean) < 4 * se).all()
    # every covariance entry (including lag-one cross-covariances) within 4.5 standard errors
    emp = np.cov(flat.T)
    sd = np.sqrt(np.diag(cov))
    se_cov = np.sqrt((np.outer(sd, sd) ** 2 + cov**2) / n)
    assert (np.abs(emp - cov) < 4.5 * se_cov).all()
    again = model.sample_posterior(y, n, rng=7, inputs=u)
    np.testing.assert_array_equal(draws, again)


def test_specialised_loops_equal_generic_loops():
    # Long sequences run loops compiled for their exact dimensions; they must agree
    # with the generic loops (which the dense-oracle tests above exercise).
    from statespace.linear_gaussian import _fast, _specialise
    from statespace.linear_gaussian.params import kernel_params

    params, y, u = _problem("time_varying", "coords", seed=8)
    kp = kernel_params(params, u)
    fast = _specialise.loops(params.state_dim, params.obs_dim)
    assert fast is not _fast and fast.D == params.state_dim and fast.M == params.obs_dim
    T, d = y.shape[0], params.state_dim

    def block_f():
        return np.empty(_fast.filter_size(T, d))

    def block_s():
        return np.empty(_fast.rts_size(T, d))

    a, b = _fast.filter_loop(kp, y, block_f()), fast.filter_loop(kp, y, block_f())
    for x1, x2 in zip(a[:5], b[:5]):
        np.testing.assert_allclose(x1, x2, rtol=1e-12, atol=1e-14)
    ra, rb = _fast.rts_loop(kp, *a[1:5], block_s()), fast.rts_loop(kp, *a[1:5], block_s())
    for x1, x2 in zip(ra[:4], rb[:4]):
        np.testing.assert_allclose(x1, x2, rtol=1e-12, atol=1e-14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    d=st.integers(1, 3),
    m=st.integers(1, 3),
    p=st.integers(0, 2),
    T=st.integers(1, 6),
    missing=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_shapes_and_missing_patterns_match_dense_gaussian(d, m, p, T, missing, seed):
    rng = np.random.default_rng(seed)
    params = random_params(rng, d=d, m=m, p=p)
    y = rng.normal(size=(T, m))
    y[rng.random(y.shape) < missing] = np.nan
    u = rng.normal(size=(T, p)) if p else None
    res = rts_smoother(params, y, inputs=u)
    mean, cov, ll = condition(params, y, u)
    _close(res.log_likelihood, ll)
    _close(res.smoothed_means, mean.reshape(T, d))
    assert res.smoothed_cross_covs.shape == (T - 1, d, d)
    for t in range(T):
        _close(res.smoothed_covs[t], block(cov, d, t, t))
