r"""Scaled forward-backward with an a posteriori certificate that underflow lost nothing.

The scaled recursion of :mod:`hmm.forward_backward` computes, with
:math:`B_t(k) = e^{\ell_t(k) - m_t}` and :math:`m_t = \max_k \ell_t(k)`,

.. math::

    \tilde\alpha_t = (A_t^\top \alpha_{t-1}) \odot B_t, \qquad c_t = \textstyle\sum_k \tilde\alpha_t(k),
    \qquad \alpha_t = \tilde\alpha_t / c_t,
    \qquad \hat\beta_{t-1} = A_t (B_t \odot \hat\beta_t) / c_t, \quad \hat\beta_{T-1} = 1,

so that :math:`\sum_k \alpha_t(k) \hat\beta_t(k) = 1` for every ``t``. Results below the smallest
normal number, :math:`2^{-1022}`, lose at most that much each (rounded to a subnormal, or flushed
to zero where a library in the process has switched flush-to-zero on), and exponentials underflow
(:math:`\ell_t(k) - m_t < -708`) the same way, so each entry of :math:`\tilde\alpha_t` is perturbed
by an absolute :math:`|e_t(k)| \le \delta = (K + 2)\, 2^{-1022}` (``K`` products summed, the
exponential, the product with it). The recursion is linear, so these
perturbations reach the likelihood through the exact backward messages: with :math:`p` the true
likelihood and :math:`\hat p = \prod_t c_t\, e^{m_t}` the computed one,

.. math::

    \frac{|\hat p - p|}{\hat p} \;\le\; \sum_t \sum_k \frac{|e_t(k)|}{c_t}\,\hat\beta_t(k)
    \;\le\; \delta \sum_t \frac{1}{c_t} \sum_k \hat\beta_t(k) \;=:\; \varepsilon,

and every filtered and smoothed marginal and every expected move count is off by at most
about :math:`\varepsilon` as well (the same sum bounds their perturbation; the backward pass's
own underflow enters weighted by :math:`\alpha_t \le 1`, i.e. not at all). A state whose
weight underflowed and that later data revive (a weight of :math:`e^{-800}` times a likelihood
ratio of :math:`e^{900}`) is exactly a state whose :math:`\hat\beta_t(k)` is astronomically
large, so :math:`\varepsilon` exposes it; a weight that underflowed and never comes back
costs nothing, however far below the best it fell.

A filter has no backward messages. It carries the bound forward instead: the perturbation of
:math:`\alpha_t` obeys :math:`d_t = (A_t^\top d_{t-1} \odot B_t + e_t) / c_t` (the same linear map),
so :math:`|d_t| \le \delta V_t` entry by entry with

.. math::

    V_0 = \mathbf 1 / c_0, \qquad V_t = \big((A_t^\top V_{t-1}) \odot B_t + \mathbf 1\big) / c_t,

and the filtered distribution at ``t`` is off by at most :math:`2 \delta \sum_k V_t(k)` in total
variation, its log-likelihood by :math:`\delta \sum_k V_t(k)` (:math:`\sum_k V_t(k)` is the
sum above written for the horizon ``t``; one more product with :math:`A_t^\top` per step).

:func:`certified_posteriors` runs the scaled passes without the fast path's pre-checks
(a finite log-likelihood more than 700 nats below its step's best, a weight below
``1e-290``: conservative tests that cannot tell a harmless loss from a harmful one) and
accepts their result when :math:`\varepsilon \le 2^{-52}`, what one rounding costs, i.e.
when :math:`\sum_t c_t^{-1} \sum_k \hat\beta_t(k) \le 2^{970} / (K + 2)`. Otherwise it
answers NaN, and :func:`exact_posteriors` runs the log-space recursion of
:mod:`hmm.log_space`; :func:`certified_forward` and :func:`exact_forward` do the same for a
filter, with :math:`\max_t \sum_k V_t(k)` in place of the sum. On the left-to-right ARPHMM
of the CMAPSS example (30 states), every sequence failed the pre-checks and took the
log-space pass; the certificate accepts them with :math:`\varepsilon` between ``5e-304``
and ``3e-303`` (docs/benchmarks.md, "Session 30").

The sums run over the moves the chain allows only (the index lists of
:func:`hmm.log_space._support`), as the log-space pass does: a banded chain costs ``K (J + 1)``
products per step.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from statespace._standalone import standalone

from .log_space import _support, log_space_forward, log_space_posteriors, row_max

#: Accept when sum_t (1 / c_t) sum_k beta_t(k) <= _CERTIFIED / (K + 2): the underflow's share of
#: every result is then below 2^-52 (the bound in the module docstring, with delta = (K + 2) 2^-1022).
_CERTIFIED = 2.0**970


@nb.njit(cache=True)
def _scaled_forward(pi0, A, loglik, ptr_in, into, m, B, filtered, c, bound):
    """The plain scaled forward pass over the allowed moves: fills ``m``, ``B = exp(loglik - m)``,
    ``filtered`` (normalised) and ``c``. With ``bound`` (a ``K``-vector; ``None`` prunes the branch) it
    also carries the filter's bound ``V_t`` there and stops once ``sum_k V_t(k)`` passes the limit.
    Returns whether it went through (False as well when a step's weights all vanish)."""
    T, K = loglik.shape
    S = A.shape[0]
    grown = np.zeros(K)
    limit = _CERTIFIED / (K + 2)
    for t in range(T):
        m[t] = row_max(loglik[t])
        if m[t] == -np.inf:
            return False
        for k in range(K):
            B[t, k] = math.exp(loglik[t, k] - m[t])
        s = t - 1 if S > 1 else 0
        ct = 0.0
        for k in range(K):
            if t == 0:
                pred = pi0[k]
            else:
                pred = 0.0
                for p in range(ptr_in[k], ptr_in[k + 1]):
                    i = into[p]
                    pred += filtered[t - 1, i] * A[s, i, k]
                    if bound is not None:
                        grown[k] += bound[i] * A[s, i, k]
            v = pred * B[t, k]
            filtered[t, k] = v
            ct += v
        if not (0.0 < ct < np.inf):
            return False
        c[t] = ct
        inv = 1.0 / ct
        for k in range(K):
            filtered[t, k] *= inv
        if bound is not None:
            size = 0.0
            for k in range(K):
                bound[k] = (grown[k] * B[t, k] + 1.0) * inv
                grown[k] = 0.0
                size += bound[k]
            if not size <= limit:  # NaN and inf included
                return False
    return True


@nb.njit(cache=True)
def certified_posteriors(pi0, A, loglik):
    """The scaled forward-backward and its certificate (module docstring).

    Args:
        pi0: ``(K,)`` initial distribution.
        A: ``(S, K, K)`` transition matrices, ``S == 1`` or ``S == T - 1``.
        loglik: ``(T, K)`` emission log-likelihoods, ``T >= 1`` (``-inf`` allowed).

    Returns:
        ``(log_likelihood, filtered, smoothed, counts)`` as :func:`hmm.forward_backward.smoother`
        returns them, with ``counts = sum_t xi_t``; a log-likelihood of NaN when the certificate
        fails or a step's weights all vanish (the log-space pass then decides, impossible data
        included).
    """
    T, K = loglik.shape
    S = A.shape[0]
    ptr_in, into, ptr_out, out = _support(A)
    m, c = np.empty(T), np.empty(T)
    B, filtered = np.empty((T, K)), np.empty((T, K))
    if not _scaled_forward(pi0, A, loglik, ptr_in, into, m, B, filtered, c, None):
        return np.nan, B, B, np.zeros((K, K))
    smoothed = np.empty((T, K))
    counts = np.zeros((K, K))
    beta = np.ones(K)
    w = np.empty(K)
    weight = 0.0  # sum_t (1 / c_t) sum_k beta_t(k): the certificate's sum
    for t in range(T - 1, -1, -1):
        inv = 1.0 / c[t]
        total = 0.0
        for k in range(K):
            total += beta[k]
            smoothed[t, k] = filtered[t, k] * beta[k]
        weight += total * inv
        if not weight <= _CERTIFIED / (K + 2):  # NaN and inf included
            return np.nan, B, B, np.zeros((K, K))
        if t == 0:
            break
        s = t - 1 if S > 1 else 0
        for j in range(K):
            w[j] = B[t, j] * beta[j] * inv
        for i in range(K):
            a = filtered[t - 1, i]
            acc = 0.0
            for p in range(ptr_out[i], ptr_out[i + 1]):
                j = out[p]
                x = A[s, i, j] * w[j]
                acc += x
                counts[i, j] += a * x
            beta[i] = acc
    total = 0.0
    for t in range(T):
        total += math.log(c[t]) + m[t]
    return total, filtered, smoothed, counts


@standalone
@nb.njit(cache=True)
def exact_posteriors(pi0, A, loglik):
    """``(log_likelihood, filtered, smoothed, counts)`` exact to rounding whatever underflows: the
    certified scaled pass when its certificate holds, the log-space pass otherwise."""
    out = certified_posteriors(pi0, A, loglik)
    if math.isnan(out[0]):
        return log_space_posteriors(pi0, A, loglik)[:4]
    return out


@nb.njit(cache=True)
def certified_forward(pi0, A, loglik):
    """The scaled forward pass and its certificate (module docstring).

    Returns:
        ``(log_likelihood, filtered, scale)`` as :func:`hmm.forward_backward.forward` returns them
        (``scale[t] = log c_t + m_t``); a log-likelihood of NaN when the certificate fails or a step's
        weights all vanish.
    """
    T, K = loglik.shape
    ptr_in, into, _, _ = _support(A)
    m, c = np.empty(T), np.empty(T)
    B, filtered = np.empty((T, K)), np.empty((T, K))
    if not _scaled_forward(pi0, A, loglik, ptr_in, into, m, B, filtered, c, np.empty(K)):
        return np.nan, filtered, c
    scale = np.empty(T)
    total = 0.0
    for t in range(T):
        scale[t] = math.log(c[t]) + m[t]
        total += scale[t]
    return total, filtered, scale


@standalone
@nb.njit(cache=True)
def exact_forward(pi0, A, loglik):
    """``(log_likelihood, filtered, scale)`` exact to rounding whatever underflows: the certified
    scaled forward pass when its certificate holds, the log-space pass otherwise."""
    out = certified_forward(pi0, A, loglik)
    if math.isnan(out[0]):
        return log_space_forward(pi0, A, loglik)
    return out
