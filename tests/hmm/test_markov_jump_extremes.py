"""Markov jump processes observed with one extreme observation: posteriors stay exact.

One Gaussian-level observation ``10^3`` to ``10^8`` standard deviations from every
state (log-likelihoods down to ``-5e15``) must leave every posterior equal to the
model in which each step's log-likelihood row is shifted by its maximum before any
sum, so the outlier's magnitude never enters one. Oracles, written here with scipy
and independent of the library:

* brute-force enumeration of the ``K^T`` state sequences at the observation times,
  with transition matrices ``scipy.linalg.expm(Q dt)`` and log-likelihoods from
  ``scipy.stats.norm.logpdf`` (smoothed and two-slice marginals, Viterbi path);
* marginals between observations by bridging the enumerated two-slice marginals:
  ``p(x(s) = k | y) = sum_ab p(x_i = a, x_{i+1} = b | y) P(s - t_i)[a, k] P(t_{i+1} - s)[k, b] / P(dt)[a, b]``;
* expected dwell times and jump counts from the same two-slice marginals and
  scipy's Van Loan block exponential ``expm([[Q, E_kl], [0, Q]] dt)``.

Three chains: K = 2 and K = 3 with every rate positive (the scaled forward-backward
path) and a K = 3 chain with structural zeros (``expm(Q dt)`` has exact zeros, so
an outlier sends the forward pass to log space); and a sparse chain on which a
path ruled out by one observation (lighter than ``1e-308`` of the best) is the
only one a later observation leaves, which scaled messages cannot represent.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import scipy.linalg
from scipy.special import logsumexp
from scipy.stats import norm

from hmm.markov_jump import GaussianLevels, MarkovJumpProcess, expected_statistics

CHAINS = {
    "K2": (
        np.array([[-0.8, 0.8], [1.3, -1.3]]),
        np.array([0.35, 0.65]),
        np.array([0.0, 1.5]),
        np.array([1.0, 0.6]),
    ),
    "K3": (
        np.array([[-1.0, 0.7, 0.3], [0.4, -0.9, 0.5], [0.2, 0.8, -1.0]]),
        np.array([0.2, 0.5, 0.3]),
        np.array([0.0, 1.0, 2.5]),
        np.array([1.0, 0.7, 1.3]),
    ),
    "K3_structural_zeros": (  # 0 -> 1 -> 2, 2 absorbing: P(dt) upper triangular
        np.array([[-1.2, 1.2, 0.0], [0.0, -0.6, 0.6], [0.0, 0.0, 0.0]]),
        np.array([0.5, 0.3, 0.2]),
        np.array([0.0, 1.0, 2.5]),
        np.array([1.0, 0.7, 1.3]),
    ),
}
TIMES = np.array([0.0, 0.4, 1.1, 1.5, 2.7, 3.0])
BASE_Y = np.array([0.1, 1.2, 2.0, 0.5, 1.9, 2.2])
OUTLIERS = [1e3, 1e6, 1e8]


def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(x)


def _expm(M):
    """``scipy.linalg.expm`` with its round-off below zero (about -1e-18 where a probability is exactly 0) cut off."""
    return np.clip(scipy.linalg.expm(M), 0.0, None)


def _data(means, stds, sd, step):
    """``BASE_Y`` with ``sd`` standard deviations (of the widest state) added at ``step``."""
    y = BASE_Y.copy()
    y[step] = means.max() + sd * stds.max()
    return y


def _enumerate(Q, pi0, times, y, means, stds):
    """(smoothed (T, K), two-slice (T-1, K, K), most likely path) by enumeration of all K^T sequences."""
    K, T = Q.shape[0], len(times)
    lP = np.array([_log(_expm(Q * dt)) for dt in np.diff(times)])
    ll = norm.logpdf(y[:, None], means[None], stds[None])
    ll = ll - ll.max(axis=1, keepdims=True)
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    lw = _log(pi0)[paths[:, 0]] + ll[np.arange(T), paths].sum(axis=1)
    lw = lw + lP[np.arange(T - 1), paths[:, :-1], paths[:, 1:]].sum(axis=1)
    w = np.exp(lw - logsumexp(lw))
    gamma = np.zeros((T, K))
    xi = np.zeros((T - 1, K, K))
    for p, wp in zip(paths, w):
        gamma[np.arange(T), p] += wp
        xi[np.arange(T - 1), p[:-1], p[1:]] += wp
    return gamma, xi, paths[int(np.argmax(lw))]


def _bridge(Q, times, gamma, xi, s):
    """``p(x(s) | y)`` from the enumerated marginals (after the last time: gamma_{T-1} P(s - t_{T-1}))."""
    i = int(np.searchsorted(times, s, side="right") - 1)
    if s == times[i]:
        return gamma[i]
    P1 = _expm(Q * (s - times[i]))
    if i == len(times) - 1:
        return gamma[i] @ P1
    P2 = _expm(Q * (times[i + 1] - s))
    P = _expm(Q * (times[i + 1] - times[i]))
    ratio = np.divide(xi[i], P, out=np.zeros_like(P), where=P > 0)
    return np.einsum("ab,ak,kb->k", ratio, P1, P2)


def _van_loan(Q, times):
    """``I[t, k, l] = int_0^dt expm(Q u) e_k e_l^T expm(Q (dt - u)) du`` for each interval ``dt`` of ``times``.

    Van Loan (1978): the upper right block of ``expm([[Q, E_kl], [0, Q]] dt)``, by scipy.
    """
    K = Q.shape[0]
    out = np.zeros((len(times) - 1, K, K, K, K))
    for t, dt in enumerate(np.diff(times)):
        for k, l in itertools.product(range(K), repeat=2):
            E = np.zeros((K, K))
            E[k, l] = 1.0
            out[t, k, l] = scipy.linalg.expm(np.block([[Q, E], [np.zeros((K, K)), Q]]) * dt)[:K, K:]
    return out


@functools.cache
def _van_loan_of(chain):
    """:func:`_van_loan` on ``TIMES``: it depends on the chain and the grid only, so it is computed once per chain."""
    return _van_loan(CHAINS[chain][0], TIMES)


def _dwell_and_jumps(Q, times, I, xi):
    """Expected time in each state and expected number of each jump, given the two-slice marginals ``xi``."""
    K = Q.shape[0]
    dwell, jumps = np.zeros(K), np.zeros((K, K))
    for t, dt in enumerate(np.diff(times)):
        P = _expm(Q * dt)
        ratio = np.divide(xi[t], P, out=np.zeros_like(P), where=P > 0)
        for k in range(K):
            dwell[k] += (ratio * I[t, k, k]).sum()
            for l in range(K):
                if l != k:
                    jumps[k, l] += Q[k, l] * (ratio * I[t, k, l]).sum()
    return dwell, jumps


def _case(chain, sd, step):
    Q, pi0, means, stds = CHAINS[chain]
    y = _data(means, stds, sd, step)
    model = MarkovJumpProcess(Q, initial=pi0, observation=GaussianLevels(means, stds))
    return model, y, _enumerate(Q, pi0, TIMES, y, means, stds)


CASES = [(c, sd, step) for c in CHAINS for sd in OUTLIERS for step in (0, 2, len(TIMES) - 1)]


@pytest.mark.parametrize("chain, sd, step", CASES)
def test_smoothed_marginals_equal_enumeration(chain, sd, step):
    model, y, (gamma, _, _) = _case(chain, sd, step)
    got = model.smooth(y, times=TIMES).smoothed_probs
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, gamma, rtol=0, atol=1e-10)


@pytest.mark.parametrize("chain, sd, step", CASES)
def test_expected_dwell_times_and_jumps_equal_enumeration(chain, sd, step):
    model, y, (gamma, xi, _) = _case(chain, sd, step)
    _, dwell, jumps, g, _ = expected_statistics(model.params, y, TIMES)
    span = TIMES[-1] - TIMES[0]
    assert dwell.sum() == pytest.approx(span, rel=1e-12, abs=0)
    # every path enters k as often as it leaves it, up to where it starts and ends
    np.testing.assert_allclose(jumps.sum(axis=0) - jumps.sum(axis=1), gamma[-1] - gamma[0], rtol=0, atol=1e-10)
    dwell_ref, jumps_ref = _dwell_and_jumps(CHAINS[chain][0], TIMES, _van_loan_of(chain), xi)
    np.testing.assert_allclose(dwell, dwell_ref, rtol=0, atol=1e-10 * span)
    np.testing.assert_allclose(jumps, jumps_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(g, gamma, rtol=0, atol=1e-10)


@pytest.mark.parametrize("chain, sd, step", [c for c in CASES if c[2] == 2])
def test_query_marginals_equal_bridged_enumeration(chain, sd, step):
    model, y, (gamma, xi, _) = _case(chain, sd, step)
    Q = CHAINS[chain][0]
    q = np.array([0.0, 0.2, 0.9, 1.1, 1.3, 2.0, 3.0, 3.7])  # at, between and after the observations
    got = model.smooth(y, times=TIMES, query_times=q).query_probs
    want = np.array([_bridge(Q, TIMES, gamma, xi, s) for s in q])
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("chain, sd, step", CASES)
def test_most_likely_states_equal_enumeration(chain, sd, step):
    model, y, (_, _, best) = _case(chain, sd, step)
    np.testing.assert_array_equal(model.most_likely_states(y, times=TIMES), best)


def test_several_sequences_each_exact():
    """A list of sequences, outliers at different steps and magnitudes: each sequence equals its own enumeration."""
    Q, pi0, means, stds = CHAINS["K3"]
    model = MarkovJumpProcess(Q, initial=pi0, observation=GaussianLevels(means, stds))
    ys = [_data(means, stds, 1e8, 1), BASE_Y.copy(), _data(means, stds, 1e6, 4)]
    grids = [TIMES, TIMES * 0.5, TIMES + 2.0]
    got = [r.smoothed_probs for r in model.smooth(ys, times=grids)]
    _, dwell, _, _, _ = expected_statistics(model.params, ys, grids)
    assert dwell.sum() == pytest.approx(sum(g[-1] - g[0] for g in grids), rel=1e-12, abs=0)
    for y, g, smoothed in zip(ys, grids, got):
        np.testing.assert_allclose(smoothed, _enumerate(Q, pi0, g, y, means, stds)[0], rtol=0, atol=1e-10)


def _restored_case(times, y):
    """State 1 is ruled out by the first observation (800 nats below state 0) and restored by the next.

    States 0 and 2 absorb and only 1 leads to 2, so a later observation at state 2's
    level makes the path through 1, lighter than ``1e-308`` of the best at first,
    the only one left: the scaled messages lose it, the posteriors must not.
    """
    Q = np.array([[0.0, 0.0, 0.0], [0.5, -1.5, 1.0], [0.0, 0.0, 0.0]])
    pi0, means, stds = np.array([0.5, 0.3, 0.2]), np.array([0.0, 40.0, 80.0]), np.ones(3)
    model = MarkovJumpProcess(Q, initial=pi0, observation=GaussianLevels(means, stds))
    return model, Q, _enumerate(Q, pi0, times, y, means, stds)


@pytest.mark.parametrize(
    "times, y",
    [
        (np.array([0.0, 1.0]), np.array([0.0, 80.0])),
        (np.array([0.0, 1.0, 1.5, 2.0]), np.array([0.3, 0.0, 80.0, 79.0])),
        (np.array([0.0, 0.3, 1.0, 2.2]), np.array([0.0, 0.1, 81.0, 1e6])),
    ],
)
def test_a_path_restored_by_a_later_observation_keeps_its_weight(times, y):
    model, Q, (gamma, xi, best) = _restored_case(times, y)
    q = np.array([times[0], 0.5 * (times[0] + times[1]), 0.5 * (times[-2] + times[-1]), times[-1] + 1.0])
    r = model.smooth(y, times=times, query_times=q)
    np.testing.assert_allclose(r.smoothed_probs, gamma, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r.query_probs, [_bridge(Q, times, gamma, xi, s) for s in q], rtol=0, atol=1e-10)
    _, dwell, jumps, _, _ = expected_statistics(model.params, y, times)
    assert dwell.sum() == pytest.approx(times[-1] - times[0], rel=1e-12, abs=0)
    np.testing.assert_allclose(jumps.sum(axis=0) - jumps.sum(axis=1), gamma[-1] - gamma[0], rtol=0, atol=1e-10)
    dwell_ref, jumps_ref = _dwell_and_jumps(Q, times, _van_loan(Q, times), xi)
    np.testing.assert_allclose(dwell, dwell_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(jumps, jumps_ref, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(model.most_likely_states(y, times=times), best)


def test_posterior_paths_keep_a_path_restored_by_a_later_observation():
    """States at the observation times of drawn paths against the enumerated marginals (binomial bound, 5 sd)."""
    times, y = np.array([0.0, 1.0, 1.5, 2.0]), np.array([0.3, 0.0, 60.0, 80.0])
    model, _, (gamma, _, _) = _restored_case(times, y)
    rng, n = np.random.default_rng(3), 200
    counts = np.zeros_like(gamma)
    for _ in range(n):
        _, [(jump_times, states)] = model.sample_posterior(y, times=times, rng=rng, return_paths=True)
        counts[np.arange(len(times)), states[np.searchsorted(jump_times, times, side="right")]] += 1
    bound = 5 * np.sqrt(gamma * (1 - gamma) / n) + 1e-12
    assert (np.abs(counts / n - gamma) <= bound).all(), (counts / n, gamma)
