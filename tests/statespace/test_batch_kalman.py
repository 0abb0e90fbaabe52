"""The Kalman filter, RTS smoother and E-step at the covariance recursions' fixed point.

Once the Riccati and RTS recursions of a time-invariant model agree with the
previous step to round-off, the loops copy the previous step's matrices
(``statespace._numerics.linalg.fixed_point``). Oracles: the same model written
with time-varying parameter stacks of identical matrices (which always takes the
full recursion), and the dense joint-Gaussian algebra of ``lgssm_dense``.
"""

import numpy as np
import pytest

from statespace.linear_gaussian import LGSSMParams, kalman_filter, rts_smoother
from statespace.linear_gaussian.data import prepare
from statespace.linear_gaussian.em import e_step

from lgssm_dense import block, condition


def _model(d, m, seed):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(d, d))
    F *= 0.9 / max(abs(np.linalg.eigvals(F)))
    Lq = rng.normal(size=(d, d)) * 0.3
    Lr = rng.normal(size=(m, m)) * 0.3
    return LGSSMParams(m0=rng.normal(size=d), P0=np.eye(d), F=F, Q=Lq @ Lq.T + 0.1 * np.eye(d),
                       H=rng.normal(size=(m, d)), R=Lr @ Lr.T + 0.2 * np.eye(m))


def _stacked(p, T):
    """The same model with every matrix repeated along a time axis (never at a fixed point by construction)."""
    return p.replace(F=np.repeat(p.F[None], T, 0), Q=np.repeat(p.Q[None], T, 0),
                     H=np.repeat(p.H[None], T, 0), R=np.repeat(p.R[None], T, 0))


def _data(p, T, seed, missing):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(T, p.obs_dim)) * 2.0
    if missing:
        y[T // 3 : T // 3 + 15] = np.nan  # a gap: the recursion leaves the fixed point and returns to it
        y[T // 2 :: 37, 0] = np.nan  # isolated partial rows: another pattern of observed coordinates
    return y


@pytest.mark.parametrize("d,m,T", [(1, 1, 300), (3, 2, 300), (3, 2, 700), (12, 2, 300)])
@pytest.mark.parametrize("missing", [False, True])
def test_fixed_point_matches_full_recursion(d, m, T, missing):
    p = _model(d, m, seed=d + 10 * m)
    y = _data(p, T, seed=T, missing=missing)
    full = rts_smoother(_stacked(p, T), y)
    fast = rts_smoother(p, y)
    assert fast.log_likelihood == pytest.approx(full.log_likelihood, rel=1e-13)
    for name in ("filtered_means", "predicted_means", "smoothed_means"):
        np.testing.assert_allclose(getattr(fast, name), getattr(full, name), rtol=1e-11, atol=1e-11, err_msg=name)
    for name in ("filtered_covs", "predicted_covs", "smoothed_covs", "smoothed_cross_covs", "smoother_gains"):
        a, b = getattr(fast, name), getattr(full, name)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max(), err_msg=name)
    # E-step statistics: the stacked model takes the full per-step path of the statistics loop too
    seqs, us, _ = prepare(p, y, None)
    s_fast, ll_fast = e_step(p, seqs, us)
    s_full, ll_full = e_step(_stacked(p, T), seqs, us)
    assert ll_fast == pytest.approx(ll_full, rel=1e-13)
    np.testing.assert_allclose(s_fast, s_full, rtol=1e-11, atol=1e-10 * np.abs(s_full).max())


def test_fixed_point_is_reached_and_copied():
    """After convergence the covariances are constant exactly (the full recursion wanders by ulps)."""
    p = _model(4, 2, seed=3)
    y = _data(p, 2000, seed=1, missing=False)
    res = rts_smoother(p, y)
    for name in ("filtered_covs", "predicted_covs", "smoothed_covs", "smoother_gains"):
        c = getattr(res, name)
        assert (c[300:1500] == c[300]).all(), name


def test_fixed_point_against_dense_oracle():
    p = _model(2, 1, seed=5)
    T = 90
    y = _data(p, T, seed=2, missing=True)
    mean, cov, ll = condition(p, y)
    d = p.state_dim
    res = rts_smoother(p, y)
    np.testing.assert_allclose(res.smoothed_means.ravel(), mean, rtol=1e-9, atol=1e-9)
    blocks = np.array([block(cov, d, t, t) for t in range(T)])
    np.testing.assert_allclose(res.smoothed_covs, blocks, rtol=1e-9, atol=1e-11)
    assert res.log_likelihood == pytest.approx(ll, rel=1e-10)
