r"""Exact forward-backward in log space: what the scaled recursions fall back on.

With :math:`\log\alpha_0 = \log\pi + \ell_0` and

.. math::

    \log\alpha_t(k) = \operatorname{logsumexp}_i\big(\log\alpha_{t-1}(i) + \log A_t(i, k)\big) + \ell_t(k),
    \qquad
    \log\beta_{t-1}(i) = \operatorname{logsumexp}_j\big(\log A_t(i, j) + \ell_t(j) + \log\beta_t(j)\big),

every weight is kept as a logarithm, so no path is lost to underflow however
far below the best it falls; it is several times slower than scaling, which is
why :mod:`hmm.forward_backward` uses it only when a scaled pass reports lost
precision. The log-sum-exps run over the moves the chain allows only
(structural zeros of ``A`` have weight exactly 0): a banded left-to-right
chain then costs ``K (J + 1)`` terms per step instead of ``K^2``, with results
bit-identical to the dense sums.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True)
def log_of(A):
    """Elementwise logarithm with ``log 0 = -inf`` (no warning, no NaN)."""
    out = np.empty(A.shape)
    flat, src = out.reshape(-1), A.reshape(-1)
    for i in range(src.shape[0]):
        flat[i] = math.log(src[i]) if src[i] > 0.0 else -np.inf
    return out


@nb.njit(cache=True)
def _lse_row(v):
    mx = -np.inf
    for x in v:
        if x > mx:
            mx = x
    if mx == -np.inf:
        return -np.inf
    s = 0.0
    for x in v:
        if x > -np.inf:  # exp(-inf) is 0: skipping it saves the exponential
            s += math.exp(x - mx)
    return mx + math.log(s)


@nb.njit(cache=True)
def _support(logA):
    """The moves some ``A_s`` allows, as index lists: ``into[ptr_in[k]:ptr_in[k+1]]`` are the
    ``i`` with ``i -> k`` allowed, ``out[ptr_out[i]:ptr_out[i+1]]`` the ``j`` with ``i -> j``.

    The log-sum-exps run over these lists only; a skipped move has weight exactly 0,
    and the allowed ones are summed in the same (ascending) order as over all states,
    so the results are bit-identical to the dense loops.
    """
    S, K, _ = logA.shape
    allowed = np.zeros((K, K), dtype=np.bool_)
    for s in range(S):
        for i in range(K):
            for j in range(K):
                if logA[s, i, j] > -np.inf:
                    allowed[i, j] = True
    ptr_in, ptr_out = np.zeros(K + 1, dtype=np.int64), np.zeros(K + 1, dtype=np.int64)
    for i in range(K):
        for j in range(K):
            if allowed[i, j]:
                ptr_out[i + 1] += 1
                ptr_in[j + 1] += 1
    for k in range(K):
        ptr_in[k + 1] += ptr_in[k]
        ptr_out[k + 1] += ptr_out[k]
    into, out = np.empty(ptr_in[K], dtype=np.int64), np.empty(ptr_out[K], dtype=np.int64)
    fill_in, fill_out = ptr_in[:-1].copy(), ptr_out[:-1].copy()
    for i in range(K):  # ascending i and j keep each list sorted
        for j in range(K):
            if allowed[i, j]:
                into[fill_in[j]] = i
                fill_in[j] += 1
                out[fill_out[i]] = j
                fill_out[i] += 1
    return ptr_in, into, ptr_out, out


@nb.njit(cache=True)
def log_space_forward(pi0, A, loglik):
    """Exact forward pass in log space: ``(log_likelihood, filtered, scale)`` as the scaled
    :func:`hmm.forward_backward.forward` returns them."""
    logA = log_of(A)
    ptr_in, into, _, _ = _support(logA)
    total, filtered, scale, _ = _forward(pi0, logA, loglik, ptr_in, into)
    return total, filtered, scale


@nb.njit(cache=True)
def _forward(pi0, logA, loglik, ptr_in, into):
    """``(log_likelihood, filtered, scale, log alpha)``."""
    T, K = loglik.shape
    S = logA.shape[0]
    la = np.empty((T, K))
    tmp = np.empty(K)
    for k in range(K):
        la[0, k] = (math.log(pi0[k]) if pi0[k] > 0.0 else -np.inf) + loglik[0, k]
    for t in range(1, T):
        s = t - 1 if S > 1 else 0
        for k in range(K):
            n = 0
            for p in range(ptr_in[k], ptr_in[k + 1]):
                i = into[p]
                tmp[n] = la[t - 1, i] + logA[s, i, k]
                n += 1
            la[t, k] = _lse_row(tmp[:n]) + loglik[t, k]
    filtered = np.empty((T, K))
    scale = np.empty(T)
    prev = 0.0
    for t in range(T):
        z = _lse_row(la[t])
        scale[t] = z - prev
        prev = z
        for k in range(K):
            filtered[t, k] = math.exp(la[t, k] - z) if z > -np.inf else np.nan
    return _lse_row(la[T - 1]), filtered, scale, la


@nb.njit(cache=True)
def log_space_posteriors(pi0, A, loglik):
    """Exact forward-backward in log space: the fallback when a weight would underflow.

    A path whose weight is below ``1e-308`` of the best at some step can still
    dominate later (a state ruled out by one observation and restored by the
    next under a sparse transition matrix); scaling cannot represent it, logs can.
    Returns ``(log_likelihood, filtered, smoothed, counts, scale)``.
    """
    T, K = loglik.shape
    S = A.shape[0]
    logA = log_of(A)
    ptr_in, into, ptr_out, out = _support(logA)
    total, filtered, scale, la = _forward(pi0, logA, loglik, ptr_in, into)
    tmp = np.empty(K)
    counts = np.zeros((K, K))
    if total == -np.inf:
        return total, filtered, np.full((T, K), np.nan), counts, scale
    lb = np.zeros((T, K))
    for t in range(T - 1, 0, -1):
        s = t - 1 if S > 1 else 0
        for i in range(K):
            n = 0
            for p in range(ptr_out[i], ptr_out[i + 1]):
                j = out[p]
                tmp[n] = logA[s, i, j] + loglik[t, j] + lb[t, j]
                n += 1
            lb[t - 1, i] = _lse_row(tmp[:n])
        for i in range(K):
            for p in range(ptr_out[i], ptr_out[i + 1]):
                j = out[p]
                w = la[t - 1, i] + logA[s, i, j] + loglik[t, j] + lb[t, j] - total
                if w > -np.inf:
                    counts[i, j] += math.exp(w)
    smoothed = np.empty((T, K))
    for t in range(T):
        for k in range(K):
            w = la[t, k] + lb[t, k] - total
            smoothed[t, k] = math.exp(w) if w > -np.inf else 0.0
    return total, filtered, smoothed, counts, scale
