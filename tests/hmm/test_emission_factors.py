"""The Gaussian emission's covariance factors, the M-step's usability test and the log-prior, each
computed in one compiled call, against LAPACK and the documented formulas written out with NumPy."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import solve_triangular

from hmm import EmissionPrior
from hmm.emission_updates import _MAX_CONDITION, _usable, gaussian_log_prior
from hmm.emissions import GaussianEmissionParams, cholesky_factors, inverse_factors


def _spd_stack(rng, K, d, scale=1.0, diagonal=False):
    if diagonal:
        return np.stack([np.diag(rng.uniform(0.2, 3.0, d)) for _ in range(K)]) * scale
    A = rng.standard_normal((K, d, d))
    return (A @ A.transpose(0, 2, 1) + 0.3 * np.eye(d)) * scale


@settings(max_examples=40, deadline=None)
@given(
    K=st.integers(1, 6),
    d=st.integers(1, 8),
    log_scale=st.sampled_from([-150, -3, 0, 3, 150]),
    diagonal=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_factors_and_their_inverses_equal_lapacks(K, d, log_scale, diagonal, seed):
    covs = _spd_stack(np.random.default_rng(seed), K, d, 10.0**log_scale, diagonal)
    chol, logdet, Linv, diag = inverse_factors(covs)
    want = np.linalg.cholesky(covs)
    np.testing.assert_allclose(chol, want, rtol=1e-12, atol=0)
    assert (np.triu(chol, 1) == 0).all()  # a factor, not the lower triangle of a scratch matrix
    np.testing.assert_allclose(logdet, np.linalg.slogdet(covs)[1], rtol=1e-12, atol=1e-12 * d)
    inv = np.stack([solve_triangular(c, np.eye(d), lower=True) for c in want])
    np.testing.assert_allclose(Linv, inv, rtol=1e-10, atol=0)
    assert diag == (diagonal or d == 1)
    c2, l2 = cholesky_factors(covs)
    np.testing.assert_array_equal(c2, chol)
    np.testing.assert_array_equal(l2, logdet)


def test_a_stack_without_a_factor_raises_lapacks_error():
    covs = _spd_stack(np.random.default_rng(0), 3, 3)
    covs[1] = np.diag([1.0, -1.0, 1.0])
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_factors(covs)


def _usable_oracle(S):
    """The M-step's rule written with LAPACK: a Cholesky factor, finite, with squared diagonal ratio at most the bound."""
    try:
        c = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        return False
    dg = np.diag(c)
    return bool(np.isfinite(c).all() and dg.min() > 0 and (dg.max() / dg.min()) ** 2 <= _MAX_CONDITION)


def test_usable_covariances_are_the_ones_lapack_factors_within_the_condition_bound():
    rng = np.random.default_rng(3)
    good = _spd_stack(rng, 1, 3)[0]
    v = rng.standard_normal((3, 1))
    cases = [
        good,
        1e-200 * good,  # rescaling never changes the verdict
        1e200 * good,
        v @ v.T,  # rank one: singular
        np.diag([1.0, 0.0, 2.0]),
        np.diag([1.0, -1e-3, 2.0]),  # indefinite
        np.diag([1.0, 1e-11, 1.0]),  # condition 1e11: kept
        np.diag([1.0, 1e-13, 1.0]),  # condition 1e13: refused
        np.diag([1.0, np.nan, 1.0]),
        np.diag([1.0, np.inf, 1.0]),
    ]
    S = np.stack(cases)
    np.testing.assert_array_equal(_usable(S), [_usable_oracle(m) for m in cases])
    assert _usable(S).tolist()[:3] == [True, True, True] and _usable(S)[7] == False  # noqa: E712


def _log_prior_oracle(e, covariance_type, prior, uses_init):
    """The module docstring's log-prior, term by term, with explicit inverses and log-determinants."""
    K, q, d = e.weights.shape
    Lam = prior.ridge * np.diag(np.r_[0.0, np.ones(q - 1)])
    Psi = prior.reg_covar * np.eye(d)
    total = 0.0
    for k in range(K):
        Sinv = np.linalg.inv(e.covs[k])
        total += 0.5 * np.trace(Sinv @ e.weights[k].T @ Lam @ e.weights[k])
    for k in range(1 if covariance_type == "tied" else K):
        total += 0.5 * np.trace(np.linalg.inv(e.covs[k]) @ Psi) + 0.5 * prior.cov_dof * np.linalg.slogdet(e.covs[k])[1]
    if uses_init:
        for k in range(K):
            S0 = e.init_covs[k]
            total += 0.5 * np.trace(np.linalg.inv(S0) @ Psi) + 0.5 * prior.cov_dof * np.linalg.slogdet(S0)[1]
    return -total


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied"])
@pytest.mark.parametrize("lags", [0, 2])
@pytest.mark.parametrize("prior", [EmissionPrior(), EmissionPrior(0.3, 2.5, 0.7), EmissionPrior(0.0, 0.0, 0.0)])
def test_log_prior_is_the_documented_sum(covariance_type, lags, prior):
    rng = np.random.default_rng(11)
    K, d = 4, 3
    covs = _spd_stack(rng, K, d, diagonal=covariance_type == "diag")
    if covariance_type == "tied":
        covs = np.repeat(covs[:1], K, axis=0)
    e = GaussianEmissionParams.from_ar(
        rng.standard_normal((K, d)),
        covs,
        ar_coefs=0.3 * rng.standard_normal((K, lags, d, d)) if lags else None,
        init_means=rng.standard_normal((K, d)) if lags else None,
        init_covs=_spd_stack(rng, K, d) if lags else None,
    )
    got = gaussian_log_prior(e, covariance_type, prior, lags > 0)
    want = _log_prior_oracle(e, covariance_type, prior, lags > 0)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


def test_statistics_of_no_rows_are_zero_and_warn_nothing():
    from hmm.emission_updates import weighted_scatter

    S = np.zeros((2, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a division by a zero thread count warned here once
        fast = weighted_scatter(np.empty((0, 2)), np.empty((0, 0)), 0, np.array([0, 0]), np.empty((0, 2)), False, S)
    assert fast.shape == (0,) and (S == 0).all()
