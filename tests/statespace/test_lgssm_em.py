"""EM for linear-Gaussian SSMs: monotone log-likelihood, frozen parameters, recovery of known parameters."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lgssm_dense import random_params

from statespace import LinearGaussianSSM
from statespace.errors import ParameterError, ShapeError
from statespace.linear_gaussian import LGSSMParams, e_step, fit_em, m_step, rts_smoother


def _assert_monotone(lls):
    steps = np.diff(lls)
    assert (steps >= -1e-9 * np.abs(lls[:-1]).max()).all(), steps.min()


def _data(params, lengths, rng, missing=0.0, inputs=False):
    model = LinearGaussianSSM(params)
    ys, us = [], []
    for T in lengths:
        u = rng.normal(size=(T, params.input_dim)) if inputs else None
        _, y = model.sample(T, rng=rng, inputs=u)
        y[rng.random(y.shape) < missing] = np.nan
        ys.append(y)
        us.append(u)
    return ys, (us if inputs else None)


@pytest.mark.parametrize(
    "frozen, inputs, missing",
    [
        ((), False, 0.0),
        ((), True, 0.2),
        (("F", "H"), False, 0.3),
        (("m0", "P0", "Q"), True, 0.0),
        (("B",), True, 0.1),
        (("F", "B", "H", "D"), True, 0.2),
    ],
)
def test_em_is_monotone_over_sequences_of_different_lengths(frozen, inputs, missing):
    rng = np.random.default_rng(0)
    truth = random_params(rng, d=2, m=3, p=2 if inputs else 0)
    ys, us = _data(truth, [40, 25, 60], rng, missing, inputs)
    start = random_params(np.random.default_rng(1), d=2, m=3, p=2 if inputs else 0)
    res = fit_em(start, ys, us, frozen=frozen, max_iter=25, tol=0.0, progress=False)
    assert res.n_iter == 25 and len(res.log_likelihoods) == 26
    _assert_monotone(res.log_likelihoods)
    assert res.log_likelihoods[-1] > res.log_likelihoods[0]
    for name in frozen:
        np.testing.assert_array_equal(getattr(res.params, name), getattr(start, name))
    # the recorded value is the log-likelihood of the returned parameters
    ll = sum(r.log_likelihood for r in rts_smoother(res.params, ys, us))
    np.testing.assert_allclose(res.log_likelihoods[-1], ll, rtol=1e-12)


def test_em_with_time_varying_frozen_matrices_learns_Q_and_R():
    rng = np.random.default_rng(2)
    T = 50
    truth = random_params(rng, d=2, m=2, T=T, time_varying=("F", "H"))
    ys, _ = _data(truth, [T, T], rng, missing=0.1)
    start = truth.replace(Q=np.eye(2), R=2 * np.eye(2))
    res = fit_em(start, ys, frozen=("F", "H"), max_iter=15, tol=0.0, progress=False)
    _assert_monotone(res.log_likelihoods)
    with pytest.raises(ShapeError, match="F"):
        fit_em(start, ys, max_iter=1, progress=False)


def test_m_step_equals_least_squares_on_dense_posterior_moments():
    # The transition and initial blocks of the M-step, recomputed from the dense
    # joint-Gaussian posterior (no Kalman code involved) as weighted least squares.
    from lgssm_dense import condition

    rng = np.random.default_rng(3)
    params = random_params(rng, d=2, m=2, p=1)
    T = 8
    u = rng.normal(size=(T, 1))
    _, y = LinearGaussianSSM(params).sample(T, rng=rng, inputs=u)
    y[2, 0] = np.nan
    stats, _ = e_step(params, [y], [u])
    new = m_step(params, stats)
    mean, cov, _ = condition(params, y, u)
    d = 2
    Ex = mean.reshape(T, d)
    Exx = [cov[t * d : (t + 1) * d, t * d : (t + 1) * d] + np.outer(Ex[t], Ex[t]) for t in range(T)]
    Exxp = [cov[t * d : (t + 1) * d, (t - 1) * d : t * d] + np.outer(Ex[t], Ex[t - 1]) for t in range(1, T)]
    Szz = sum(
        np.block([[Exx[t - 1], np.outer(Ex[t - 1], u[t])], [np.outer(u[t], Ex[t - 1]), np.outer(u[t], u[t])]])
        for t in range(1, T)
    )
    Sxz = sum(np.hstack([Exxp[t - 1], np.outer(Ex[t], u[t])]) for t in range(1, T))
    C = np.linalg.solve(Szz, Sxz.T).T
    np.testing.assert_allclose(new.F, C[:, :d], rtol=1e-8)
    np.testing.assert_allclose(new.B, C[:, d:], rtol=1e-8)
    Sxx = sum(Exx[1:])
    Q = (Sxx - C @ Sxz.T - Sxz @ C.T + C @ Szz @ C.T) / (T - 1)
    np.testing.assert_allclose(new.Q, 0.5 * (Q + Q.T), rtol=1e-8)
    np.testing.assert_allclose(new.m0, Ex[0], rtol=1e-8)
    np.testing.assert_allclose(new.P0, cov[:d, :d], rtol=1e-7, atol=1e-12)


def test_m_step_emission_block_imputes_missing_coordinates_exactly():
    # With y[t, j] missing, the complete data include it: its conditional moments
    # come from the dense posterior of (X, Y) given the observed entries.
    from lgssm_dense import condition_joint

    rng = np.random.default_rng(7)
    d, m, T = 2, 3, 7
    params = random_params(rng, d=d, m=m, p=1)
    u = rng.normal(size=(T, 1))
    _, y = LinearGaussianSSM(params).sample(T, rng=rng, inputs=u)
    y[1, [0, 2]] = np.nan
    y[4] = np.nan
    y[5, 1] = np.nan
    new = m_step(params, e_step(params, [y], [u])[0])
    mean, cov = condition_joint(params, y, u)
    Td = T * d

    def second(i, j):
        return cov[np.ix_(i, j)] + np.outer(mean[i], mean[j])

    xs = [np.arange(t * d, (t + 1) * d) for t in range(T)]
    ys = [Td + np.arange(t * m, (t + 1) * m) for t in range(T)]
    Szz = sum(
        np.block(
            [[second(xs[t], xs[t]), np.outer(mean[xs[t]], u[t])], [np.outer(u[t], mean[xs[t]]), np.outer(u[t], u[t])]]
        )
        for t in range(T)
    )
    Syz = sum(np.hstack([second(ys[t], xs[t]), np.outer(mean[ys[t]], u[t])]) for t in range(T))
    Syy = sum(second(ys[t], ys[t]) for t in range(T))
    C = np.linalg.solve(Szz, Syz.T).T
    R = (Syy - C @ Syz.T - Syz @ C.T + C @ Szz @ C.T) / T
    np.testing.assert_allclose(new.H, C[:, :d], rtol=1e-8)
    np.testing.assert_allclose(new.D, C[:, d:], rtol=1e-8)
    np.testing.assert_allclose(new.R, 0.5 * (R + R.T), rtol=1e-8)
    # R alone (H, D frozen) uses the residual statistic under the current parameters
    frozen = m_step(params, e_step(params, [y], [u])[0], frozen=("H", "D"))
    C0 = np.hstack([params.H, params.D])
    R0 = (Syy - C0 @ Syz.T - Syz @ C0.T + C0 @ Szz @ C0.T) / T
    np.testing.assert_allclose(frozen.R, 0.5 * (R0 + R0.T), rtol=1e-8)


def test_fit_recovers_heldout_loglik_of_truth():
    rng = np.random.default_rng(4)
    truth = random_params(rng, d=2, m=3)
    train, _ = _data(truth, [300] * 4, rng, missing=0.1)
    test, _ = _data(truth, [300] * 4, rng, missing=0.1)
    model = LinearGaussianSSM.initialize(train, state_dim=2, rng=0)
    res = model.fit(train, max_iter=200, tol=1e-8, progress=False)
    _assert_monotone(res.log_likelihoods)
    ll_fit = model.log_likelihood(test)
    ll_true = LinearGaussianSSM(truth).log_likelihood(test)
    # The held-out deficit of an MLE is about half the number of free parameters
    # (here 2 + 3 + 4 + 3 + 6 + 6 + 3 = 27 up to non-identifiable directions).
    assert ll_fit > ll_true - 27, (ll_fit, ll_true)
    # and the model is better than a fit that ignores the dynamics entirely
    static = LinearGaussianSSM(model.params.replace(F=np.zeros((2, 2))))
    assert ll_fit > static.log_likelihood(test) + 50


def test_Q_and_R_recovered_within_three_standard_errors():
    # Replicates with fixed seeds give the estimator's standard error; the mean
    # over replicates must sit within 3 standard errors of the truth.
    F = np.array([[0.9, 0.2], [0.0, 0.7]])
    H = np.array([[1.0, 0.0], [0.5, 1.0]])
    truth = LGSSMParams(
        m0=np.zeros(2), P0=np.eye(2), F=F, Q=[[0.5, 0.1], [0.1, 0.3]], H=H, R=[[0.4, -0.1], [-0.1, 0.6]]
    )
    start = truth.replace(Q=np.eye(2), R=np.eye(2))
    estimates = []
    for rep in range(12):
        rng = np.random.default_rng(100 + rep)
        ys, _ = _data(truth, [400], rng)
        res = fit_em(start, ys, frozen=("F", "H", "m0", "P0"), max_iter=300, tol=1e-9, progress=False)
        estimates.append(np.concatenate([res.params.Q[np.tril_indices(2)], res.params.R[np.tril_indices(2)]]))
    est = np.array(estimates)
    target = np.concatenate([truth.Q[np.tril_indices(2)], truth.R[np.tril_indices(2)]])
    se = est.std(axis=0, ddof=1) / np.sqrt(len(est))
    assert (np.abs(est.mean(axis=0) - target) < 3 * se).all(), (est.mean(axis=0), target, se)
    # each replicate is itself within 3 standard deviations of the estimator
    assert (np.abs(est - target) < 3 * est.std(axis=0, ddof=1) + 1e-12).mean() > 0.9


def test_model_fit_updates_params_and_warm_starts():
    rng = np.random.default_rng(5)
    truth = random_params(rng, d=2, m=2)
    ys, _ = _data(truth, [100], rng)
    model = LinearGaussianSSM(truth.replace(Q=np.eye(2)), frozen=("F",))
    first = model.fit(ys, max_iter=5, tol=0.0, progress=False)
    assert model.params is first.params
    np.testing.assert_array_equal(model.params.F, truth.F)
    second = model.fit(ys, max_iter=5, tol=0.0, progress=False)
    np.testing.assert_allclose(second.log_likelihoods[0], first.log_likelihoods[-1], rtol=1e-12)
    _assert_monotone(np.concatenate([first.log_likelihoods, second.log_likelihoods[1:]]))


def test_converged_flag_and_bad_arguments():
    rng = np.random.default_rng(6)
    truth = random_params(rng, d=1, m=1)
    ys, _ = _data(truth, [200], rng)
    res = fit_em(truth, ys, max_iter=500, tol=1e-6, progress=False)
    assert res.converged and res.n_iter < 500
    with pytest.raises(ParameterError, match="frozen"):
        fit_em(truth, ys, frozen=("G",), progress=False)
    with pytest.raises(ParameterError, match="max_iter"):
        fit_em(truth, ys, max_iter=-1, progress=False)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    d=st.integers(1, 3),
    m=st.integers(1, 3),
    p=st.integers(0, 2),
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    missing=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**31 - 1),
)
def test_em_properties_on_random_problems(d, m, p, lengths, missing, seed):
    """Shapes, finiteness and monotonicity on random sizes and missing patterns (even all-missing rows)."""
    # the inputs' coefficients are identifiable only with as many transitions as regressors
    # (fewer make the M-step singular, which fit_em reports: test below)
    assume(sum(T - 1 for T in lengths) >= d + p)
    rng = np.random.default_rng(seed)
    params = random_params(rng, d=d, m=m, p=p)
    ys, us = _data(params, lengths, rng, missing, inputs=p > 0)
    res = fit_em(params, ys, us, max_iter=4, tol=0.0, progress=False)
    _assert_monotone(res.log_likelihoods)
    assert np.isfinite(res.log_likelihoods).all()
    sm = rts_smoother(res.params, ys, us)
    for s, y in zip(sm, ys):
        assert s.smoothed_means.shape == (len(y), d)
        assert s.smoothed_covs.shape == (len(y), d, d)
        assert s.smoothed_cross_covs.shape == (len(y) - 1, d, d)
        assert np.isfinite(s.smoothed_covs).all()


def test_too_few_transitions_for_the_input_coefficients_is_a_clear_error():
    # found by the property test above: one transition, two inputs -> <z z^T> of rank 2 for 3 columns
    rng = np.random.default_rng(1)
    params = random_params(rng, d=1, m=2, p=2)
    ys, us = _data(params, [2], rng, 0.0, inputs=True)
    with pytest.raises(ParameterError, match="F/B: the M-step normal equations are singular"):
        fit_em(params, ys, us, max_iter=4, tol=0.0, progress=False)


@pytest.mark.parametrize("time_varying", [("F", "H"), ()])  # (): the summed covariance terms
def test_inline_e_step_loop_equals_reference_statistics(time_varying):
    from statespace.linear_gaussian import _fast, _specialise
    from statespace.linear_gaussian.kernels import expected_statistics, stats_layout
    from statespace.linear_gaussian.params import kernel_params

    rng = np.random.default_rng(8)
    T = 30
    params = random_params(rng, d=3, m=2, p=2, T=T, time_varying=time_varying)
    u = rng.normal(size=(T, 2))
    _, y = LinearGaussianSSM(params).sample(T, rng=rng, inputs=u)
    y[rng.random(y.shape) < 0.3] = np.nan
    y[5] = np.nan
    kp = kernel_params(params, u)
    s = rts_smoother(params, y, u)
    moments = (s.smoothed_means, s.smoothed_covs, s.smoothed_cross_covs)
    ref = np.zeros(stats_layout(3, 2, 2).size)
    expected_statistics(kp, y, *moments, ref)
    for loops in (_fast, _specialise.loops(3, 2)):
        out = np.zeros_like(ref)
        loops.stats_loop(kp, y, *moments, out)
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_replace_built_skips_only_checks_its_values_pass():
    """The M-step's unvalidated ``replace_built`` equals the validated ``replace`` on what the M-step
    builds, and falls back to ``replace`` (its error) for a non-finite value or a wrong shape."""
    p = LGSSMParams(m0=np.zeros(2), P0=np.eye(2), F=0.5 * np.eye(2), Q=np.eye(2), H=np.ones((1, 2)), R=np.eye(1))
    new = {"F": [[0.9, 0.1], [0.0, 0.8]], "Q": [[2.0, 0.5], [0.5, 1.0]]}
    a, b = p.replace_built(**new), p.replace(**new)
    assert type(a) is LGSSMParams
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
        assert not x.flags.writeable
    with pytest.raises(ParameterError, match="Q"):
        p.replace_built(Q=[[np.nan, 0.0], [0.0, 1.0]])
    with pytest.raises(ShapeError, match="F"):
        p.replace_built(F=np.eye(3))
    with pytest.raises(ParameterError, match="R: not positive definite"):
        p.replace_built(R=[[-1.0]])


def _floored_oracle(cov):
    """The M-step covariance rule of ``_covariance``'s docstring, by eigendecomposition alone."""
    w, V = np.linalg.eigh(cov)
    floor = 1e-12 * w.max()
    return 0.5 * ((V * np.maximum(w, floor)) @ V.T + ((V * np.maximum(w, floor)) @ V.T).T) if (w < floor).any() else cov


@pytest.mark.parametrize("case", ["well_conditioned", "rank_one", "eigenvalue_below_floor", "eigenvalue_above_floor"])
@pytest.mark.parametrize("scale", [1e-200, 1.0, 1e200])
def test_m_step_covariance_is_the_eigenvalue_floored_estimate(case, scale):
    from statespace.linear_gaussian.em import _covariance

    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    eig = {
        "well_conditioned": [0.5, 1.0, 2.0, 3.0],
        "rank_one": [0.0, 0.0, 0.0, 2.0],
        "eigenvalue_below_floor": [1e-14, 1.0, 2.0, 3.0],
        "eigenvalue_above_floor": [1e-10, 1.0, 2.0, 3.0],
    }[case]
    S = scale * (Q * np.array(eig)) @ Q.T
    S = 0.5 * (S + S.T)
    got = _covariance(S * 7.0, np.zeros((4, 1)), np.zeros((1, 1)), np.zeros((4, 1)), 7.0, "Q")
    want = _floored_oracle(S)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13 * np.abs(want).max())
    w = np.linalg.eigvalsh(got)
    assert w.min() >= 0.99e-12 * w.max() and np.linalg.cholesky(got).shape == (4, 4)
