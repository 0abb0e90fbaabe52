"""Property-based checks of the forward-backward kernels against a log-space oracle."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from hmm.forward_backward import _row_max, _underflows, backward, forward, posteriors, smoother, two_slice_marginals


def _log_space(pi0, A, ll):
    with np.errstate(divide="ignore"):
        lA, la = np.log(A), np.log(pi0) + ll[0]
    alphas = [la]
    for t in range(1, len(ll)):
        la = logsumexp(la[:, None] + lA[t - 1 if len(A) > 1 else 0], axis=0) + ll[t]
        alphas.append(la)
    return logsumexp(la), np.array(alphas)


@st.composite
def chains(draw):
    K = draw(st.integers(1, 5))
    T = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    varying = draw(st.booleans()) and T > 1
    S = T - 1 if varying else 1
    A = rng.dirichlet(np.ones(K), size=(S, K))
    A[rng.uniform(size=A.shape) < 0.3] = 0.0  # structural zeros
    A[..., 0] += 1e-3  # keep every row non-empty
    A /= A.sum(axis=-1, keepdims=True)
    pi0 = rng.dirichlet(np.ones(K))
    ll = rng.normal(scale=draw(st.sampled_from([1.0, 50.0, 800.0])), size=(T, K))
    ll[rng.uniform(size=ll.shape) < 0.2] = -np.inf  # partial knowledge ruling states out
    return pi0, A, ll


@settings(max_examples=60, deadline=None)
@given(chains())
def test_kernels_match_log_space_and_are_normalised(chain):
    pi0, A, ll = chain
    ref, log_alpha = _log_space(pi0, A, ll)
    lik, filt, scale = forward(pi0, A, ll)
    if ref == -np.inf:
        assert lik == -np.inf
        return
    assert lik == pytest.approx(ref, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(filt, np.exp(log_alpha - logsumexp(log_alpha, axis=1, keepdims=True)), atol=1e-9)
    in_place = lambda p, a, x: posteriors(p, a, x.copy(), overwrite=True)  # noqa: E731
    for fn in (smoother, posteriors, in_place):
        l2, f2, smo, counts = fn(pi0, A, ll)
        assert l2 == pytest.approx(ref, rel=1e-9, abs=1e-9)
        assert np.isfinite(smo).all() and np.isfinite(counts).all()
        np.testing.assert_allclose(smo.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_allclose(counts.sum(), len(ll) - 1, atol=1e-8)
    if _underflows(ll, _row_max(ll)):
        return  # scaled betas cannot represent such paths (documented); the marginals above are exact
    beta = backward(A, ll, scale)
    xi = two_slice_marginals(A, ll, filt, scale, beta)
    if len(ll) > 1:
        np.testing.assert_allclose(xi.sum(axis=(1, 2)), 1.0, atol=1e-8)
        np.testing.assert_allclose(xi.sum(axis=2), smo[:-1], atol=1e-8)


@settings(max_examples=80, deadline=None)
@given(chains())
def test_a_certified_scaled_pass_is_exact(chain):
    """Whatever the chain and however far its weights underflow, the scaled passes (the filter, the
    smoother) either fail their certificates (NaN: the log-space pass takes over) or give the oracle's
    likelihood and marginals."""
    from hmm.certified_scaling import certified_forward, certified_posteriors

    pi0, A, ll = chain
    ref, log_alpha = _log_space(pi0, A, ll)
    if ref == -np.inf:  # impossible data: a certified pass never answers (the log-space pass says -inf)
        assert np.isnan(certified_forward(pi0, A, ll)[0]) and np.isnan(certified_posteriors(pi0, A, ll)[0])
        return
    want_filtered = np.exp(log_alpha - logsumexp(log_alpha, axis=1, keepdims=True))
    f_lik, f_filt, f_scale = certified_forward(pi0, A, ll)
    if not np.isnan(f_lik):
        assert f_lik == pytest.approx(ref, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(f_filt, want_filtered, atol=1e-9)
    lik, filt, smo, counts = certified_posteriors(pi0, A, ll)
    if np.isnan(lik):
        return
    assert lik == pytest.approx(ref, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(filt, want_filtered, atol=1e-9)
    with np.errstate(divide="ignore"):
        lA = np.log(A)
    log_beta = np.zeros_like(ll)
    for t in range(len(ll) - 1, 0, -1):
        log_beta[t - 1] = logsumexp(lA[t - 1 if len(A) > 1 else 0] + ll[t] + log_beta[t], axis=1)
    np.testing.assert_allclose(smo, np.exp(log_alpha + log_beta - ref), atol=1e-9)
    np.testing.assert_allclose(counts.sum(), len(ll) - 1, atol=1e-8)
