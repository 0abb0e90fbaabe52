r"""The Gaussian log-density of the observed coordinates of a vector with missing (NaN) entries.

For a residual :math:`r = y - \mu` whose missing coordinates are NaN, and the covariance
:math:`S` of the full vector, the density of what was observed is the marginal over the
observed index set :math:`o`,

.. math::

    \log \mathcal N(r_o; 0, S_{oo}) = -\tfrac12 \left(n_o \log 2\pi + \log|S_{oo}| + z^\top z\right),
    \qquad S_{oo} = L L^\top, \quad z = L^{-1} r_o,

(marginalising a Gaussian drops the rows and columns of the missing coordinates), and 0 when
nothing is observed. :func:`logpdf_observed` gathers :math:`S_{oo}`, factors it
(:func:`.linalg.cholesky`, in place) and whitens :math:`r_o` by forward substitution
(:func:`.linalg.solve_lower`), so the
quadratic form never forms an inverse. A principal block of a positive-definite matrix is
positive definite; should round-off make the factor fail, the result is NaN, which the
callers' recursions report as an error rather than pass on.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .linalg import cholesky, solve_lower

LOG_2PI = math.log(2.0 * math.pi)


@nb.njit(cache=True)
def count_observed(v):
    """The number of non-NaN entries of the vector ``v`` (its observed coordinates)."""
    n = 0
    for x in v:
        if not math.isnan(x):
            n += 1
    return n


@nb.njit(cache=True)
def logpdf_observed(r, S):
    """``log N(r_o; 0, S_oo)`` over the non-NaN coordinates ``o`` of ``r`` (``S``: covariance of the full
    vector); 0 when every coordinate is missing."""
    d = r.shape[0]
    n = count_observed(r)
    if n == 0:
        return 0.0
    sub = np.empty((n, n))
    z = np.empty(n)
    a = 0
    for i in range(d):
        if math.isnan(r[i]):
            continue
        z[a] = r[i]
        b = 0
        for j in range(d):
            if not math.isnan(r[j]):
                sub[a, b] = S[i, j]
                b += 1
        a += 1
    if not cholesky(sub, sub, n):  # in place: row j reads only the finished rows above it
        return np.nan
    q = solve_lower(sub, z, n)
    logdet = 0.0
    for i in range(n):
        logdet += 2.0 * math.log(sub[i, i])
    return -0.5 * (n * LOG_2PI + logdet + q)
