r"""Viterbi, posterior path sampling and predicted distributions (Numba).

Same conventions as :mod:`hmm.forward_backward`: ``A`` is ``(S, K, K)`` with
``S == 1`` (time-invariant) or ``S == T - 1``; ``loglik`` ``(T, K)`` already holds
the log-plausibilities of partial knowledge and zeros for missing steps.

* :func:`viterbi` - :math:`\arg\max_{z} p(z_{0:T-1} \mid y)` by max-product in log space, shifted per step.
* :func:`sample_paths` - forward filtering, backward sampling:
  :math:`z_{T-1} \sim \alpha_{T-1}`, then
  :math:`p(z_t = i \mid z_{t+1} = j, y) \propto \alpha_t(i) A_{t+1}(i, j)`.
* :func:`predicted` - one-step predictions :math:`p(z_t \mid y_{0:t-1}) = A_t^\top \alpha_{t-1}`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from statespace._numerics.categorical import draw, draw_from_logits
from statespace._numerics.copy import copy_into

from .log_space import log_of, log_space_filtered, row_max


@nb.njit(cache=True)
def viterbi(pi0, A, loglik):
    r"""Most probable state path ``(T,)`` int64 and its joint log-probability (``-inf``: impossible data).

    The scores :math:`\delta_t(j) = \max_i \delta_{t-1}(i) + \log A_t(i, j) + \ell_t(j)`
    are kept shifted so that each step's best is 0: each row of ``loglik`` enters
    minus its maximum, and each step's scores minus their maximum, the shifts
    being added to the returned log-probability only. The arg-maxes do not
    change (a constant per step), and the scores stay of the order of
    log-probabilities: unshifted, one observation ``10^8`` standard deviations
    out would leave every later score near ``-5e15``, where float64 cannot
    tell two paths one nat apart.
    """
    T, K = loglik.shape
    S = A.shape[0]
    logA = log_of(A)
    delta = np.empty(K)
    new = np.empty(K)
    back = np.zeros((T, K), np.int64)
    m = row_max(loglik[0])
    for k in range(K):
        delta[k] = (math.log(pi0[k]) if pi0[k] > 0 else -np.inf) + (loglik[0, k] - m)
    shift = row_max(delta)
    offset = m + shift
    if not shift > -np.inf:
        return np.zeros(T, np.int64), -np.inf
    for k in range(K):
        delta[k] -= shift
    for t in range(1, T):
        la = logA[t - 1] if S > 1 else logA[0]
        m = row_max(loglik[t])
        if not m > -np.inf:
            return np.zeros(T, np.int64), -np.inf
        for j in range(K):
            best = -np.inf
            arg = 0
            for i in range(K):
                v = delta[i] + la[i, j]
                if v > best:
                    best = v
                    arg = i
            new[j] = best + (loglik[t, j] - m)
            back[t, j] = arg
        shift = row_max(new)
        if not shift > -np.inf:
            return np.zeros(T, np.int64), -np.inf
        for k in range(K):
            delta[k] = new[k] - shift
        offset += m + shift
    path = np.empty(T, np.int64)
    arg = 0
    for k in range(K):
        if delta[k] == 0.0:
            arg = k
            break
    path[T - 1] = arg
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path, offset


def sample_paths(pi0, A, loglik, filtered, n_samples, rng):
    """``n_samples`` posterior paths ``(n_samples, T)`` int64 by forward filtering, backward sampling.

    ``filtered`` is the scaled forward pass's output for ``loglik``. Where a
    backward step's weights ``alpha_t(i) A(i, j)`` all underflow (one
    observation ruled a state out by hundreds of nats, yet the next observation
    leaves it the only way in), the linear weights have lost the path; the draws
    are then redone from the exact log-space forward pass.
    """
    out = np.empty((n_samples, filtered.shape[0]), np.int64)
    if _sample_linear(A, filtered, rng, out):
        return out
    _sample_log(log_of(A), log_space_filtered(pi0, A, loglik), rng, out)
    return out


@nb.njit(cache=True)
def _sample_linear(A, filtered, rng, out):
    """Fill ``out`` by backward sampling on linear weights; ``False`` when a step's weights all underflow."""
    n_samples, T = out.shape
    K = filtered.shape[1]
    S = A.shape[0]
    p = np.empty(K)
    for n in range(n_samples):
        out[n, T - 1] = draw(filtered[T - 1], rng)
        for t in range(T - 2, -1, -1):
            At = A[t] if S > 1 else A[0]
            j = out[n, t + 1]
            tot = 0.0
            for i in range(K):
                p[i] = filtered[t, i] * At[i, j]
                tot += p[i]
            if not tot > 0.0:
                return False
            for i in range(K):
                p[i] /= tot
            out[n, t] = draw(p, rng)
    return True


@nb.njit(cache=True)
def _sample_log(logA, log_filtered, rng, out):
    """Backward sampling on the logits ``log alpha_t(i) + log A(i, j)`` (:func:`draw_from_logits`: exact
    for any range of logits)."""
    n_samples, T = out.shape
    K = log_filtered.shape[1]
    S = logA.shape[0]
    logits = np.empty(K)
    w = np.empty(K)
    for n in range(n_samples):
        out[n, T - 1] = draw_from_logits(log_filtered[T - 1], w, rng)
        for t in range(T - 2, -1, -1):
            s = t if S > 1 else 0
            j = out[n, t + 1]
            for i in range(K):
                logits[i] = log_filtered[t, i] + logA[s, i, j]
            out[n, t] = draw_from_logits(logits, w, rng)


@nb.njit(cache=True)
def _predict_rows(pi0, A, filtered, a, b, out):
    """Rows ``a:b`` (one sequence) of ``out`` (zeros there): ``out[a] = pi0``, ``out[t] = A_{t-a}^T filtered[t-1]``."""
    K = filtered.shape[1]
    S = A.shape[0]
    if b > a:
        copy_into(pi0, out[a])  # not a slice assignment: that compiles Numba's shape-mismatch message (2 s)
    for t in range(a + 1, b):
        At = A[t - a - 1] if S > 1 else A[0]
        for i in range(K):
            v = filtered[t - 1, i]
            for j in range(K):
                out[t, j] += v * At[i, j]


@nb.njit(cache=True)
def predicted(pi0, A, filtered):
    """``(T, K)``: ``pred[0] = pi0``, ``pred[t] = A_t^T filtered[t-1]``."""
    out = np.zeros(filtered.shape)
    _predict_rows(pi0, A, filtered, 0, filtered.shape[0], out)
    return out


@nb.njit(cache=True)
def predicted_batch(pi0, A, filtered, offsets):
    """:func:`predicted` of every sequence of a ragged batch sharing one chain (``filtered (N, K)`` with
    ``offsets``): the same numbers, in one call instead of one per sequence."""
    out = np.zeros(filtered.shape)
    for s in range(offsets.shape[0] - 1):
        _predict_rows(pi0, A, filtered, offsets[s], offsets[s + 1], out)
    return out
