r"""Forward-backward for discrete latent chains, compiled with Numba.

For a chain with initial distribution :math:`\pi`, transition matrices
:math:`A_t` (``A[t-1]`` moves the chain from time ``t-1`` to ``t``; a single
matrix when time-invariant) and per-step emission log-likelihoods
:math:`\ell_t(k) = \log p(y_t \mid z_t = k)`, the scaled forward recursion is

.. math::

    \tilde\alpha_0 = \pi \odot e^{\ell_0}, \qquad
    \tilde\alpha_t = (A_t^\top \alpha_{t-1}) \odot e^{\ell_t}, \qquad
    c_t = \textstyle\sum_k \tilde\alpha_t(k), \quad \alpha_t = \tilde\alpha_t / c_t,

so :math:`\alpha_t = p(z_t \mid y_{0:t})` and
:math:`\log p(y_{0:T-1}) = \sum_t (\log c_t + m_t)` where :math:`m_t = \max_k \ell_t(k)`
is subtracted before exponentiating (the scaling keeps everything in range
without log-sum-exp in the inner loop, which is what makes it fast). The
backward pass uses the same constants, giving smoothed marginals
:math:`\gamma_t = \alpha_t \odot \beta_t` and two-slice marginals
:math:`\xi_t(i,j) = \alpha_{t-1}(i) A_t(i,j) e^{\ell_t(j) - m_t} \beta_t(j) / c_t`.

Partial knowledge (plausibilities ``pl``) and missing observations enter only
through ``loglik``: add ``log(pl)``; put 0 for a missing step. These kernels are
shared by the HMM family and the Markov jump processes (``A_t = expm(Q dt_t)``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True)
def forward(pi0, A, loglik):
    """Scaled forward pass.

    Args:
        pi0: ``(K,)`` initial distribution.
        A: ``(S, K, K)`` transition matrices with ``S == 1`` or ``S == T - 1``.
        loglik: ``(T, K)`` emission log-likelihoods (``-inf`` allowed).

    Returns:
        ``(log_likelihood, filtered (T, K), scale (T,))`` where ``scale[t] = log c_t + m_t``.
        ``log_likelihood`` is ``-inf`` when the data are impossible under the model.
    """
    T, K = loglik.shape
    filtered = np.empty((T, K))
    scale = np.empty(T)
    total = 0.0
    for t in range(T):
        m = -np.inf
        for k in range(K):
            if loglik[t, k] > m:
                m = loglik[t, k]
        if m == -np.inf:
            filtered[t:] = np.nan
            scale[t:] = -np.inf
            return -np.inf, filtered, scale
        c = 0.0
        if t == 0:
            for k in range(K):
                v = pi0[k] * math.exp(loglik[0, k] - m)
                filtered[0, k] = v
                c += v
        else:
            At = A[t - 1] if A.shape[0] > 1 else A[0]
            for k in range(K):
                filtered[t, k] = 0.0
            for i in range(K):
                a = filtered[t - 1, i]
                if a != 0.0:
                    for k in range(K):
                        filtered[t, k] += a * At[i, k]
            for k in range(K):
                v = filtered[t, k] * math.exp(loglik[t, k] - m)
                filtered[t, k] = v
                c += v
        if c <= 0.0 or not math.isfinite(c):
            filtered[t:] = np.nan
            scale[t:] = -np.inf
            return -np.inf, filtered, scale
        inv = 1.0 / c
        for k in range(K):
            filtered[t, k] *= inv
        scale[t] = math.log(c) + m
        total += scale[t]
    return total, filtered, scale


@nb.njit(cache=True)
def backward(A, loglik, scale):
    """Scaled backward pass with the forward pass's constants: ``beta (T, K)``."""
    T, K = loglik.shape
    beta = np.empty((T, K))
    beta[T - 1] = 1.0
    tmp = np.empty(K)
    for t in range(T - 1, 0, -1):
        At = A[t - 1] if A.shape[0] > 1 else A[0]
        for j in range(K):
            tmp[j] = math.exp(loglik[t, j] - scale[t]) * beta[t, j]
        for i in range(K):
            s = 0.0
            for j in range(K):
                s += At[i, j] * tmp[j]
            beta[t - 1, i] = s
    return beta


@nb.njit(cache=True)
def smoother(pi0, A, loglik):
    """Forward-backward: ``(log_likelihood, filtered, smoothed, transition_counts)``.

    ``transition_counts[i, j] = sum_t xi_t(i, j)``, the expected number of i->j moves
    (what Baum-Welch needs for a time-invariant chain).
    """
    T, K = loglik.shape
    ll, filtered, scale = forward(pi0, A, loglik)
    counts = np.zeros((K, K))
    if ll == -np.inf:
        return ll, filtered, np.full((T, K), np.nan), counts
    beta = backward(A, loglik, scale)
    smoothed = filtered * beta
    tmp = np.empty(K)
    for t in range(1, T):
        At = A[t - 1] if A.shape[0] > 1 else A[0]
        for j in range(K):
            tmp[j] = math.exp(loglik[t, j] - scale[t]) * beta[t, j]
        for i in range(K):
            a = filtered[t - 1, i]
            for j in range(K):
                counts[i, j] += a * At[i, j] * tmp[j]
    return ll, filtered, smoothed, counts


@nb.njit(cache=True)
def two_slice_marginals(A, loglik, filtered, scale, beta):
    """Per-step two-slice marginals ``xi (T-1, K, K)``: ``xi[t-1, i, j] = p(z_{t-1}=i, z_t=j | y)``.

    Needed when each step has its own transition matrix and its own M-step
    weights (Markov jump processes observed at irregular times).
    """
    T, K = loglik.shape
    xi = np.empty((max(T - 1, 0), K, K))
    for t in range(1, T):
        At = A[t - 1] if A.shape[0] > 1 else A[0]
        for i in range(K):
            for j in range(K):
                xi[t - 1, i, j] = filtered[t - 1, i] * At[i, j] * math.exp(loglik[t, j] - scale[t]) * beta[t, j]
    return xi
