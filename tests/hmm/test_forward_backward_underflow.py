"""Scaled forward-backward must not lose a state whose weight underflows and later revives.

Under a left-to-right chain nothing re-seeds a state once its scaled weight has
underflowed, yet a later observation can make it dominant again (exactly: a weight
of e^-800 times a likelihood ratio of e^900). The oracle is a plain log-space
forward-backward written with scipy's logsumexp.
"""

import numpy as np
import pytest
from scipy.special import logsumexp

from hmm.forward_backward import forward, posteriors, smoother


def _left_to_right(K):
    A = np.zeros((K, K))
    for i in range(K - 1):
        A[i, i], A[i, i + 1] = 0.9, 0.1
    A[-1, -1] = 1.0
    return A


def _log_space_oracle(pi0, A, ll):
    T, K = ll.shape
    with np.errstate(divide="ignore"):
        lA, la = np.log(A), [np.log(pi0) + ll[0]]
    for t in range(1, T):
        la.append(logsumexp(la[-1][:, None] + lA, axis=0) + ll[t])
    la = np.array(la)
    lb = np.zeros((T, K))
    for t in range(T - 1, 0, -1):
        lb[t - 1] = logsumexp(lA + ll[t] + lb[t], axis=1)
    total = logsumexp(la[-1])
    return total, np.exp(la - logsumexp(la, axis=1, keepdims=True)), np.exp(la + lb - total)


@pytest.mark.parametrize("seed", range(6))
def test_underflowed_states_are_recovered_in_every_entry_point(seed):
    rng = np.random.default_rng(seed)
    K, T = 6, 50
    A = _left_to_right(K)
    pi0 = np.eye(K)[0]
    # likelihood swings of hundreds of nats per step (a high-dimensional emission)
    ll = rng.normal(scale=100.0, size=(T, K))
    total, filtered, smoothed = _log_space_oracle(pi0, A, ll)

    ll_f, filt_f, _ = forward(pi0, A[None], ll)
    assert ll_f == pytest.approx(total, rel=1e-10)
    np.testing.assert_allclose(filt_f, filtered, atol=1e-9)

    for A_arg in (A[None], np.repeat(A[None], T - 1, axis=0)):
        ll_s, filt_s, smo_s, _ = smoother(pi0, A_arg, ll)
        assert ll_s == pytest.approx(total, rel=1e-10)
        np.testing.assert_allclose(smo_s, smoothed, atol=1e-9)

    for overwrite in (False, True):
        ll_p, filt_p, smo_p, _ = posteriors(pi0, A[None], ll.copy(), overwrite=overwrite)
        assert ll_p == pytest.approx(total, rel=1e-10)
        np.testing.assert_allclose(filt_p, filtered, atol=1e-9)
        np.testing.assert_allclose(smo_p, smoothed, atol=1e-9)
