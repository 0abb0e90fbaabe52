r"""Exact forward-backward in log space: what the scaled recursions fall back on.

With :math:`\log\alpha_0 = \log\pi + \ell_0` and

.. math::

    \log\alpha_t(k) = \operatorname{logsumexp}_i\big(\log\alpha_{t-1}(i) + \log A_t(i, k)\big) + \ell_t(k),
    \qquad
    \log\beta_{t-1}(i) = \operatorname{logsumexp}_j\big(\log A_t(i, j) + \ell_t(j) + \log\beta_t(j)\big),

every weight is kept as a logarithm, so no path is lost to underflow however
far below the best it falls; it is several times slower than scaling, which is
why :mod:`hmm.forward_backward` uses it only when a scaled pass reports lost
precision. Each row of log-likelihoods is shifted by its maximum and each
message normalised at every step, exactly as in the scaled recursion: the
messages then stay of the order of log-probabilities, and one observation
:math:`10^8` standard deviations out (log-likelihoods near :math:`-5 \cdot 10^{15}`,
whose spacing in float64 is 1) leaves every other step's posterior exact to
rounding. Unnormalised, :math:`\log\alpha_t` would carry that magnitude to
every later step and :math:`\alpha_t \beta_t / p(y)` would be a difference of
such numbers. The log-sum-exps run over the moves the chain allows only
(structural zeros of ``A`` have weight exactly 0): a banded left-to-right
chain then costs ``K (J + 1)`` terms per step instead of ``K^2``, with results
bit-identical to the dense sums.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from statespace._standalone import standalone


@nb.njit(cache=True)
def log_of(A):
    """Elementwise logarithm with ``log 0 = -inf`` (no warning, no NaN)."""
    out = np.empty(A.shape)
    flat, src = out.reshape(-1), A.reshape(-1)
    for i in range(src.shape[0]):
        flat[i] = math.log(src[i]) if src[i] > 0.0 else -np.inf
    return out


@nb.njit(cache=True)
def row_max(v):
    """The largest entry of ``v`` (``-inf`` for an empty or all ``-inf`` vector)."""
    mx = -np.inf
    for x in v:
        if x > mx:
            mx = x
    return mx


@nb.njit(cache=True)
def _lse_row(v):
    mx = row_max(v)
    if mx == -np.inf:
        return -np.inf
    s = 0.0
    for x in v:
        if x > -np.inf:  # exp(-inf) is 0: skipping it saves the exponential
            s += math.exp(x - mx)
    return mx + math.log(s)


@nb.njit(cache=True)
def _support(A):
    """The moves some ``A_s`` allows (``A_s[i, j] > 0``), as index lists: ``into[ptr_in[k]:ptr_in[k+1]]`` are the
    ``i`` with ``i -> k`` allowed, ``out[ptr_out[i]:ptr_out[i+1]]`` the ``j`` with ``i -> j``.

    The log-sum-exps run over these lists only; a skipped move has weight exactly 0,
    and the allowed ones are summed in the same (ascending) order as over all states,
    so the results are bit-identical to the dense loops.
    """
    S, K, _ = A.shape
    allowed = np.zeros((K, K), dtype=np.bool_)
    for s in range(S):
        for i in range(K):
            for j in range(K):
                if A[s, i, j] > 0.0:
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


@standalone
@nb.njit(cache=True)
def log_space_forward(pi0, A, loglik):
    """Exact forward pass in log space: ``(log_likelihood, filtered, scale)`` as the scaled
    :func:`hmm.forward_backward.forward` returns them."""
    logA = log_of(A)
    ptr_in, into, _, _ = _support(A)
    total, filtered, scale, _, _ = _forward(pi0, logA, loglik, ptr_in, into)
    return total, filtered, scale


@nb.njit(cache=True)
def log_space_filtered(pi0, A, loglik):
    """``(T, K)`` exact normalised ``log alpha_t`` (``-inf`` rows from the first impossible step on)."""
    logA = log_of(A)
    ptr_in, into, _, _ = _support(A)
    return _forward(pi0, logA, loglik, ptr_in, into)[3]


@nb.njit(cache=True)
def _forward(pi0, logA, loglik, ptr_in, into):
    r"""Normalised forward pass.

    Returns ``(log_likelihood, filtered, scale, log_filtered, log_c)`` with
    ``log_filtered[t] = log alpha_t`` (normalised) and ``log_c[t]`` the step's log
    normaliser on the row shifted by its maximum ``m_t`` (``scale[t] = log_c[t] + m_t``).
    From the first step no state explains (every term ``-inf``) on, ``filtered``
    is NaN, ``scale`` and ``log_filtered`` are ``-inf`` and the log-likelihood is ``-inf``.
    """
    T, K = loglik.shape
    S = logA.shape[0]
    la = np.empty((T, K))
    lc = np.empty(T)
    scale = np.empty(T)
    filtered = np.empty((T, K))
    tmp = np.empty(K)
    total = 0.0
    for t in range(T):
        mt = row_max(loglik[t])
        if mt == -np.inf:  # a row of -inf: no state explains y_t
            return _impossible_from(t, total, filtered, scale, la, lc)
        s = t - 1 if S > 1 else 0
        for k in range(K):
            if t == 0:
                v = math.log(pi0[k]) if pi0[k] > 0.0 else -np.inf
            else:
                n = 0
                for p in range(ptr_in[k], ptr_in[k + 1]):
                    i = into[p]
                    tmp[n] = la[t - 1, i] + logA[s, i, k]
                    n += 1
                v = _lse_row(tmp[:n])
            la[t, k] = v + (loglik[t, k] - mt)
        z = _lse_row(la[t])
        if z == -np.inf:  # y_t is possible only in states the chain cannot occupy at t
            return _impossible_from(t, total, filtered, scale, la, lc)
        for k in range(K):
            la[t, k] -= z
            filtered[t, k] = math.exp(la[t, k])
        lc[t] = z
        scale[t] = z + mt
        total += scale[t]
    return total, filtered, scale, la, lc


@nb.njit(cache=True)
def _impossible_from(t, total, filtered, scale, la, lc):
    filtered[t:] = np.nan
    scale[t:] = -np.inf
    la[t:] = -np.inf
    lc[t:] = -np.inf
    return -np.inf, filtered, scale, la, lc


@nb.njit(cache=True)
def log_space_posteriors(pi0, A, loglik):
    r"""Exact forward-backward in log space: the fallback when a weight would underflow.

    Returns ``(log_likelihood, filtered, smoothed, counts, scale)`` with
    ``counts = sum_t xi_t``; see :func:`log_space_posteriors_by_slot`.
    """
    T = loglik.shape[0]
    total, filtered, smoothed, counts, scale = log_space_posteriors_by_slot(
        pi0, A, loglik, np.zeros(max(T - 1, 0), dtype=np.int64), 1
    )
    return total, filtered, smoothed, counts[0], scale


@nb.njit(cache=True)
def log_space_posteriors_by_slot(pi0, A, loglik, slot, n_slots):
    r"""Exact forward-backward in log space, two-slice marginals summed per slot.

    A path whose weight is below ``1e-308`` of the best at some step can still
    dominate later (a state ruled out by one observation and restored by the
    next under a sparse transition matrix); scaling cannot represent it, logs can.
    Returns ``(log_likelihood, filtered, smoothed, counts, scale)`` with
    ``counts[u] = sum of xi_t over the steps t with slot[t - 1] == u`` (``(n_slots, K, K)``:
    one slot for Baum-Welch's totals, one per step or per interval length for a
    Markov jump process).

    The messages are normalised at every step, like the scaled recursion's,
    so they stay of the order of log-probabilities however large the
    log-likelihoods: with :math:`c_t` the forward normaliser and
    :math:`\ell'_t = \ell_t - \max_k \ell_t(k)`,

    .. math::

        \log\beta_{t-1}(i) = \operatorname{logsumexp}_j\big(\log A_t(i, j) + \ell'_t(j) + \log\beta_t(j)\big) - \log c_t,

    :math:`\gamma_t \propto \alpha_t \odot \beta_t` and
    :math:`\xi_t(i, j) \propto \alpha_{t-1}(i) A_t(i, j) e^{\ell'_t(j)} \beta_t(j)`, both divided by
    :math:`\sum_k \alpha_t(k) \beta_t(k)` (the same sum for both), so every row of
    :math:`\gamma` and every :math:`\xi_t` sums to one to rounding.
    """
    T, K = loglik.shape
    S = A.shape[0]
    logA = log_of(A)
    ptr_in, into, ptr_out, out = _support(A)
    total, filtered, scale, la, lc = _forward(pi0, logA, loglik, ptr_in, into)
    counts = np.zeros((n_slots, K, K))
    if total == -np.inf:
        return total, filtered, np.full((T, K), np.nan), counts, scale
    tmp = np.empty(K)
    lb = np.zeros((T, K))
    smoothed = np.empty((T, K))
    row = np.empty(K)  # l'_t(j) + log beta_t(j)
    for t in range(T - 1, -1, -1):
        for k in range(K):
            tmp[k] = la[t, k] + lb[t, k]
        lg = _lse_row(tmp)  # log sum_k alpha_t(k) beta_t(k): 0 up to rounding
        for k in range(K):
            w = tmp[k] - lg
            smoothed[t, k] = math.exp(w) if w > -np.inf else 0.0
        if t == 0:
            break
        s = t - 1
        if S == 1:
            s = 0
        mt = row_max(loglik[t])
        for j in range(K):
            row[j] = loglik[t, j] - mt + lb[t, j]
        norm = lc[t] + lg
        c = counts[slot[t - 1]]
        for i in range(K):
            n = 0
            for p in range(ptr_out[i], ptr_out[i + 1]):
                j = out[p]
                tmp[n] = logA[s, i, j] + row[j]
                n += 1
            lb[t - 1, i] = _lse_row(tmp[:n]) - lc[t]
            a = la[t - 1, i] - norm
            if a > -np.inf:
                for p in range(ptr_out[i], ptr_out[i + 1]):
                    j = out[p]
                    w = a + logA[s, i, j] + row[j]
                    if w > -np.inf:
                        c[i, j] += math.exp(w)
    return total, filtered, smoothed, counts, scale
