r"""Normalising log-weights: :math:`W_n = e^{\ell_n - m} / \sum_j e^{\ell_j - m}`, :math:`m = \max_j \ell_j`.

:func:`normalise` writes the normalised weights and returns the log of the normalising
constant, :math:`\log \sum_n e^{\ell_n} = m + \log \sum_n e^{\ell_n - m}` (shifting by the
maximum makes every term at most 1 and the largest exactly 1, so nothing overflows and the
sum is at least 1), and the effective sample size
:math:`\mathrm{ESS} = 1 / \sum_n W_n^2 = (\sum e^{\ell_n - m})^2 / \sum e^{2(\ell_n - m)}`.
The exponential is :func:`.exp.exp_nonpositive` (vectorises; terms below :math:`e^{-708}`
relative to the largest count as 0, which changes no normalised weight), and the two sums
are reassociated so that LLVM vectorises them (rounding-level changes only). Degenerate
weights (all ``-inf``, or any NaN or ``+inf``) give a NaN normalising constant and an ESS
of 0, never NaN weights passed on silently: the caller raises.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .exp import exp_nonpositive


@nb.njit(cache=True)
def max_and_nan(x):
    """``(max(x), whether x holds a NaN)``, NaN left out of the maximum (``-inf`` for an empty ``x``).

    Eight running maxima over interleaved elements: a single one is a chain of dependent
    compare-and-selects, one element per few cycles, which LLVM cannot vectorise without
    assuming no NaN. The maximum is the same in any order, so the result is exact.
    """
    N = x.shape[0]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = -np.inf
    nan = False
    B = N - N % 8
    for i in range(0, B, 8):
        v0, v1, v2, v3 = x[i], x[i + 1], x[i + 2], x[i + 3]
        v4, v5, v6, v7 = x[i + 4], x[i + 5], x[i + 6], x[i + 7]
        nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3) | (v4 != v4) | (v5 != v5) | (v6 != v6) | (v7 != v7)
        # a NaN never compares greater: the maxima stay NaN-free
        a0 = v0 if v0 > a0 else a0
        a1 = v1 if v1 > a1 else a1
        a2 = v2 if v2 > a2 else a2
        a3 = v3 if v3 > a3 else a3
        a4 = v4 if v4 > a4 else a4
        a5 = v5 if v5 > a5 else a5
        a6 = v6 if v6 > a6 else a6
        a7 = v7 if v7 > a7 else a7
    m = max(max(max(a0, a1), max(a2, a3)), max(max(a4, a5), max(a6, a7)))
    for n in range(B, N):
        v = x[n]
        nan |= v != v
        m = v if v > m else m
    return m, nan


@nb.njit(cache=True)
def _exp_shifted(logw, m, W):
    for n in range(logw.shape[0]):
        W[n] = exp_nonpositive(logw[n] - m)


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _sum_and_sum_of_squares(W):
    # reassociation lets LLVM vectorise the two reductions (rounding-level changes only)
    s = 0.0
    s2 = 0.0
    for n in range(W.shape[0]):
        s += W[n]
        s2 += W[n] * W[n]
    return s, s2


@nb.njit(cache=True)
def normalise(logw, W):
    """Normalise log-weights in place into ``W``; return ``(logsumexp, ess)``.

    ``logsumexp`` is ``nan`` when the weights are degenerate (all ``-inf``, or
    any ``nan`` / ``+inf``), which callers turn into :class:`DegenerateWeightsError`.
    """
    m, has_nan = max_and_nan(logw)
    if has_nan or m == np.inf or m == -np.inf:
        return np.nan, 0.0
    _exp_shifted(logw, m, W)
    s, s2 = _sum_and_sum_of_squares(W)
    inv = 1.0 / s
    for n in range(logw.shape[0]):
        W[n] *= inv
    # ESS = 1 / sum (w_n / s)^2 = s^2 / sum w_n^2: no second pass over the normalised weights
    return m + math.log(s), s * s / s2
