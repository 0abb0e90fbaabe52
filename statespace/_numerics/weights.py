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
    N = logw.shape[0]
    m = -np.inf
    has_nan = False
    for n in range(N):
        v = logw[n]
        has_nan |= math.isnan(v)
        m = v if v > m else m
    if has_nan or m == np.inf or m == -np.inf:
        return np.nan, 0.0
    _exp_shifted(logw, m, W)
    s, s2 = _sum_and_sum_of_squares(W)
    inv = 1.0 / s
    for n in range(N):
        W[n] *= inv
    # ESS = 1 / sum (w_n / s)^2 = s^2 / sum w_n^2: no second pass over the normalised weights
    return m + math.log(s), s * s / s2
