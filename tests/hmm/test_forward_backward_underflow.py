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
    slow = hb._exact_kernel
    monkeypatch.setattr(hb, "_exact_kernel", lambda *a: calls.append(len(a[4])) or slow(*a))
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


def _revival(n_revive):
    """Two states that never move. Step 0 puts state 1 at e^-800 of state 0 (its scaled weight
    underflows to zero); each of the next ``n_revive`` steps favours it by e^100."""
    pi0 = np.array([0.5, 0.5])
    A = np.eye(2)
    ll = np.zeros((1 + n_revive, 2))
    ll[0, 1] = -800.0
    ll[1:, 0] = -100.0
    return pi0, A, ll


@pytest.mark.parametrize("n_revive", [6, 7, 8, 9])
def test_the_certificate_accepts_a_lost_weight_only_when_it_cannot_matter(n_revive):
    """After 6 revivals state 1 is still e^-200 behind: losing it costs nothing and the certified
    scaled pass answers. After 8 the two paths tie (posterior 1/2 each), after 9 state 1 wins: the
    scaled pass, which lost it, would say state 0 with certainty; its backward messages grow by
    e^100 per step, the certificate fails and the log-space pass answers. After 7 the loss is still
    harmless (e^-100), but the bound (about e^700 times 2^-1022) no longer proves it: log space,
    the conservative side. Every answer against the oracle."""
    from hmm.certified_scaling import certified_forward, certified_posteriors, exact_posteriors

    pi0, A, ll = _revival(n_revive)
    total, filtered, smoothed = _log_space_oracle(pi0, A, ll)
    certified = certified_posteriors(pi0, A[None], ll)
    assert np.isnan(certified[0]) == (n_revive >= 7)
    # the filter's own certificate (its bound carried forward) decides the same at the last step
    assert np.isnan(certified_forward(pi0, A[None], ll)[0]) == (n_revive >= 7)
    got_total, got_filtered, _ = forward(pi0, A[None], ll)
    assert got_total == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(got_filtered, filtered, atol=1e-12)
    for got in (exact_posteriors(pi0, A[None], ll), smoother(pi0, A[None], ll)):
        assert got[0] == pytest.approx(total, rel=1e-12)
        np.testing.assert_allclose(got[1], filtered, atol=1e-12)
        np.testing.assert_allclose(got[2], smoothed, atol=1e-12)
    if n_revive == 8:
        np.testing.assert_allclose(smoothed[-1], [0.5, 0.5])


def _left_to_right_fit(seed, K=8, T=120, sd=0.05):
    """A degradation chain as a fitted ARPHMM has them: states in order, each observed level
    far from the others (0.05 apart in units of 1: hundreds of nats), the far states thousands
    of nats below the best at every step. Nothing lost to underflow ever returns."""
    rng = np.random.default_rng(seed)
    A = _left_to_right(K)
    A[:-2, :] *= 0.95
    for i in range(K - 2):
        A[i, i + 2] = 0.05  # a skip, as fitted chains have
    pi0 = np.eye(K)[0]
    z = np.minimum(np.cumsum(rng.random(T) < 0.08), K - 1)
    y = z + rng.normal(scale=sd, size=T)
    ll = -0.5 * ((y[:, None] - np.arange(K)) / sd) ** 2
    return pi0, A, ll


@pytest.mark.parametrize("seed", range(4))
def test_a_left_to_right_chain_far_below_its_best_states_is_certified_not_sent_to_log_space(seed):
    """The fast passes' pre-checks reject these data (a finite log-likelihood 700 nats below its step's
    best, a chain that does not mix); the certificate accepts them and the answers are the oracle's,
    expected move counts included (summed two-slice marginals, written out with scipy)."""
    from hmm.certified_scaling import certified_forward, certified_posteriors
    from hmm.forward_backward import _drop_negligible, _row_max, _underflows

    pi0, A, ll = _left_to_right_fit(seed)
    assert _underflows(ll, _row_max(ll)) and not _drop_negligible(pi0, A[None], ll.copy())
    total, filtered, smoothed = _log_space_oracle(pi0, A, ll)
    f_total, f_filtered, f_scale = certified_forward(pi0, A[None], ll)
    assert f_total == pytest.approx(total, rel=1e-12) and f_scale.sum() == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(f_filtered, filtered, atol=1e-12)
    got_total, got_filtered, got_smoothed, counts = certified_posteriors(pi0, A[None], ll)
    assert got_total == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(got_filtered, filtered, atol=1e-12)
    np.testing.assert_allclose(got_smoothed, smoothed, atol=1e-12)
    T = len(ll)
    with np.errstate(divide="ignore"):
        lA = np.log(A)
    la = np.log(filtered + 1e-300 * (filtered == 0))  # the oracle's filtered weights, in logs
    lb = np.log(smoothed + 1e-300 * (smoothed == 0)) - la  # its scaled backward messages
    want = np.zeros_like(A)
    for t in range(1, T):
        xi = np.exp(la[t - 1][:, None] + lA + ll[t] + lb[t])
        want += xi / xi.sum()
    np.testing.assert_allclose(counts, want, atol=1e-9)
