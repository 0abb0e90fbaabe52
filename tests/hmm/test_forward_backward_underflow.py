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


def test_log_space_kernel_with_moves_that_change_over_time():
    """Time-varying A whose allowed moves differ between steps (frozen steps, banded steps,
    one dense step) against the scipy oracle written step by step."""
    from hmm.log_space import log_space_forward, log_space_posteriors

    rng = np.random.default_rng(11)
    K, T = 5, 40
    As = np.repeat(_left_to_right(K)[None], T - 1, axis=0)
    As[::6] = np.eye(K)
    As[17] = rng.dirichlet(np.ones(K), size=K)
    pi0 = np.eye(K)[0]
    ll = rng.normal(scale=200.0, size=(T, K))
    ll[rng.random((T, K)) < 0.1] = -np.inf
    ll[:, 0] = np.maximum(ll[:, 0], -50.0)  # a path always exists
    with np.errstate(divide="ignore"):
        lA, la = np.log(As), [np.log(pi0) + ll[0]]
    for t in range(1, T):
        la.append(logsumexp(la[-1][:, None] + lA[t - 1], axis=0) + ll[t])
    la = np.array(la)
    lb = np.zeros((T, K))
    for t in range(T - 1, 0, -1):
        lb[t - 1] = logsumexp(lA[t - 1] + ll[t] + lb[t], axis=1)
    total = logsumexp(la[-1])
    got_total, filt, smo, counts, _ = log_space_posteriors(pi0, As, ll)
    assert got_total == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(filt, np.exp(la - logsumexp(la, axis=1, keepdims=True)), atol=1e-12)
    np.testing.assert_allclose(smo, np.exp(la + lb - total), atol=1e-12)
    want_counts = sum(np.exp(la[t - 1][:, None] + lA[t - 1] + ll[t] + lb[t] - total) for t in range(1, T))
    np.testing.assert_allclose(counts, want_counts, atol=1e-10)
    f_total, f_filt, _ = log_space_forward(pi0, As, ll)
    assert f_total == got_total and np.array_equal(f_filt, filt)


def test_a_fleet_hands_what_only_log_space_carries_to_the_exact_pass(monkeypatch):
    """Sequences of a batch whose scaled pass cannot carry them (weights that underflow beyond
    dropping, or precision lost) come back from the exact log-space pass, which the compiled batch
    kernel leaves to Python; the others stay on the scaled path. Every one against the oracle."""
    import hmm.batch as hb
    from statespace._ragged import pack

    calls = []
    slow = hb._log_space_kernel
    monkeypatch.setattr(hb, "_log_space_kernel", lambda *a: calls.append(len(a[4])) or slow(*a))
    rng = np.random.default_rng(5)
    K = 6
    A = _left_to_right(K)
    pi0 = np.eye(K)[0]
    lls = []
    for i in range(9):  # swings of hundreds of nats in every third sequence, mild ones elsewhere
        lls.append(rng.normal(scale=100.0 if i % 3 == 0 else 1.0, size=(int(rng.integers(20, 60)), K)))
    loglik, offsets = pack(lls)
    res = hb.batch_posteriors(pi0, A[None], loglik.copy(), offsets, n_threads=2)
    assert sum(calls) >= 2  # the path under test ran, for several sequences
    for i, ll in enumerate(lls):
        total, filtered, smoothed = _log_space_oracle(pi0, A, ll)
        a, b = offsets[i], offsets[i + 1]
        assert res.log_likelihoods[i] == pytest.approx(total, rel=1e-10)
        np.testing.assert_allclose(res.filtered[a:b], filtered, atol=1e-9)
        np.testing.assert_allclose(res.smoothed[a:b], smoothed, atol=1e-9)
