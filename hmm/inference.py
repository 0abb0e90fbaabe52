r"""Viterbi, posterior path sampling and predicted distributions (Numba).

Same conventions as :mod:`hmm.forward_backward`: ``A`` is ``(S, K, K)`` with
``S == 1`` (time-invariant) or ``S == T - 1``; ``loglik`` ``(T, K)`` already holds
the log-plausibilities of partial knowledge and zeros for missing steps.

* :func:`viterbi` - :math:`\arg\max_{z} p(z_{0:T-1} \mid y)` by max-product in log space.
* :func:`sample_paths` - forward filtering, backward sampling:
  :math:`z_{T-1} \sim \alpha_{T-1}`, then
  :math:`p(z_t = i \mid z_{t+1} = j, y) \propto \alpha_t(i) A_{t+1}(i, j)`.
* :func:`predicted` - one-step predictions :math:`p(z_t \mid y_{0:t-1}) = A_t^\top \alpha_{t-1}`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .log_space import log_of


@nb.njit(cache=True)
def viterbi(pi0, A, loglik):
    """Most probable state path ``(T,)`` int64 and its joint log-probability."""
    T, K = loglik.shape
    S = A.shape[0]
    logA = log_of(A)
    delta = np.empty(K)
    new = np.empty(K)
    back = np.zeros((T, K), np.int64)
    for k in range(K):
        delta[k] = (math.log(pi0[k]) if pi0[k] > 0 else -np.inf) + loglik[0, k]
    for t in range(1, T):
        la = logA[t - 1] if S > 1 else logA[0]
        for j in range(K):
            best = -np.inf
            arg = 0
            for i in range(K):
                v = delta[i] + la[i, j]
                if v > best:
                    best = v
                    arg = i
            new[j] = best + loglik[t, j]
            back[t, j] = arg
        delta[:] = new
    path = np.empty(T, np.int64)
    best = -np.inf
    arg = 0
    for k in range(K):
        if delta[k] > best:
            best = delta[k]
            arg = k
    path[T - 1] = arg
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path, best


@nb.njit(cache=True)
def _draw(p, rng):
    u = rng.random()
    c = 0.0
    K = p.shape[0]
    for k in range(K):
        c += p[k]
        if u < c:
            return k
    # round-off: last state with positive mass
    for k in range(K - 1, -1, -1):
        if p[k] > 0:
            return k
    return K - 1


@nb.njit(cache=True)
def sample_paths(A, filtered, n_samples, rng):
    """``n_samples`` posterior paths ``(n_samples, T)`` int64 from the forward pass's ``filtered``."""
    T, K = filtered.shape
    S = A.shape[0]
    out = np.empty((n_samples, T), np.int64)
    p = np.empty(K)
    for n in range(n_samples):
        out[n, T - 1] = _draw(filtered[T - 1], rng)
        for t in range(T - 2, -1, -1):
            At = A[t] if S > 1 else A[0]
            j = out[n, t + 1]
            tot = 0.0
            for i in range(K):
                p[i] = filtered[t, i] * At[i, j]
                tot += p[i]
            for i in range(K):
                p[i] /= tot
            out[n, t] = _draw(p, rng)
    return out


@nb.njit(cache=True)
def predicted(pi0, A, filtered):
    """``(T, K)``: ``pred[0] = pi0``, ``pred[t] = A_t^T filtered[t-1]``."""
    T, K = filtered.shape
    S = A.shape[0]
    out = np.zeros((T, K))
    out[0] = pi0
    for t in range(1, T):
        At = A[t - 1] if S > 1 else A[0]
        for i in range(K):
            a = filtered[t - 1, i]
            for j in range(K):
                out[t, j] += a * At[i, j]
    return out
