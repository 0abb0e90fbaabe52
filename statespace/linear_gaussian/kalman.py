r"""The Kalman filter, compiled with Numba.

For the model of :mod:`statespace.linear_gaussian.params` the filter alternates

.. math::

    \text{predict:}\quad m_{t|t-1} = F_t m_{t-1|t-1} + B u_t, \qquad
    P_{t|t-1} = F_t P_{t-1|t-1} F_t^\top + Q_t,

    \text{update:}\quad e_t = y_t - H_t m_{t|t-1} - D u_t, \quad
    S_t = H_t P_{t|t-1} H_t^\top + R_t, \quad K_t = P_{t|t-1} H_t^\top S_t^{-1},

    m_{t|t} = m_{t|t-1} + K_t e_t, \qquad
    P_{t|t} = (I - K_t H_t) P_{t|t-1} (I - K_t H_t)^\top + K_t R_t K_t^\top,

starting from :math:`m_{0|-1} = m_0,\ P_{0|-1} = P_0`, and accumulates the exact
log-likelihood :math:`\log p(y_{0:T-1}) = \sum_t \log N(e_t; 0, S_t)`.

Design choices:

* The covariance update is in Joseph form, which stays symmetric positive
  semi-definite under round-off even with a slightly wrong gain; ``S_t`` is
  factorised by Cholesky, giving the log-determinant, the Mahalanobis term and
  the gain without forming an inverse.
* Missing data are exact: at each step only the observed coordinates ``o``
  enter (``H_t[o]``, ``R_t[o, o]``, ``y_t[o]``); that is the marginal of the
  joint Gaussian over the observed entries. A fully missing row is a pure
  prediction step and contributes nothing to the log-likelihood.
* The time loop works in preallocated buffers (see ``_linalg``): no allocation
  and no BLAS call per step, which is what small state dimensions need.

Example::

    import numpy as np
    from statespace.linear_gaussian import LGSSMParams, kalman_filter
    p = LGSSMParams(m0=np.zeros(1), P0=np.eye(1), F=[[0.9]], Q=[[0.1]], H=[[1.0]], R=[[0.5]])
    res = kalman_filter(p, np.array([0.3, np.nan, -0.2]))
    res.log_likelihood, res.filtered_means
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from ..errors import DataError
from ._linalg import cholesky, ix, solve_lower, solve_upper_t
from .data import prepare
from .params import KernelParams, LGSSMParams, kernel_params

_LOG_2PI = math.log(2.0 * math.pi)


class FilterResult(NamedTuple):
    """Output of :func:`kalman_filter` for one sequence of length ``T``.

    Attributes:
        log_likelihood: :math:`\\log p(y_{0:T-1})` (missing entries marginalised).
        filtered_means: ``(T, d)`` :math:`E[x_t \\mid y_{0:t}]`.
        filtered_covs: ``(T, d, d)`` :math:`Cov[x_t \\mid y_{0:t}]`.
        predicted_means: ``(T, d)`` :math:`E[x_t \\mid y_{0:t-1}]` (``m0`` at ``t = 0``).
        predicted_covs: ``(T, d, d)`` :math:`Cov[x_t \\mid y_{0:t-1}]`.
    """

    log_likelihood: float
    filtered_means: np.ndarray
    filtered_covs: np.ndarray
    predicted_means: np.ndarray
    predicted_covs: np.ndarray


@nb.njit(cache=True)
def predict(kp, t, mean, cov, mean_out, cov_out, tmp):
    """One prediction step from ``(mean, cov)`` at ``t - 1`` to time ``t``; ``tmp`` is ``(d, d)``."""
    d = mean.shape[0]
    F = kp.F[ix(kp.F.shape[0], t)]
    Q = kp.Q[ix(kp.Q.shape[0], t)]
    bu = kp.bu[ix(kp.bu.shape[0], t)]
    for i in range(d):
        s = bu[i]
        for k in range(d):
            s += F[i, k] * mean[k]
        mean_out[i] = s
    # tmp = F cov, cov_out = tmp F^T + Q
    for i in range(d):
        for j in range(d):
            s = 0.0
            for k in range(d):
                s += F[i, k] * cov[k, j]
            tmp[i, j] = s
    for i in range(d):
        for j in range(i + 1):
            s = Q[i, j]
            for k in range(d):
                s += tmp[i, k] * F[j, k]
            cov_out[i, j] = s
            cov_out[j, i] = s


@nb.njit(cache=True)
def _workspace(d, m):
    """Buffers for :func:`update`: observed indices, ``H_o P``, ``S``, its factor, residual, gain, ``A``, ``A P``."""
    return (
        np.empty(m, np.int64),
        np.empty((m, d)),
        np.empty((m, m)),
        np.empty((m, m)),
        np.empty(m),
        np.empty((d, m)),
        np.empty((d, d)),
        np.empty((d, d)),
    )


@nb.njit(cache=True)
def update(kp, t, y_t, mean, cov, mean_out, cov_out, ws):
    """Condition ``N(mean, cov)`` on the observed coordinates of ``y_t``.

    Writes the posterior into ``mean_out, cov_out`` (may alias the inputs) and
    returns the log-likelihood increment; ``nan`` if ``S_t`` is not positive
    definite (the caller reports the time step).
    """
    obs, HP, S, L, e, K, A, AP = ws
    d = mean.shape[0]
    m = y_t.shape[0]
    H = kp.H[ix(kp.H.shape[0], t)]
    R = kp.R[ix(kp.R.shape[0], t)]
    du = kp.du[ix(kp.du.shape[0], t)]
    n = 0
    for j in range(m):
        if not math.isnan(y_t[j]):
            obs[n] = j
            n += 1
    if n == 0:
        mean_out[:] = mean
        cov_out[:, :] = cov
        return 0.0
    # HP = H_o P, S = H_o P H_o^T + R_oo, e = y_o - H_o m - du_o
    for a in range(n):
        r = obs[a]
        for j in range(d):
            s = 0.0
            for k in range(d):
                s += H[r, k] * cov[k, j]
            HP[a, j] = s
        s = y_t[r] - du[r]
        for k in range(d):
            s -= H[r, k] * mean[k]
        e[a] = s
    for a in range(n):
        for b in range(a + 1):
            s = R[obs[a], obs[b]]
            for k in range(d):
                s += HP[a, k] * H[obs[b], k]
            S[a, b] = s
            S[b, a] = s
    Sv = S[:n, :n]
    Lv = L[:n, :n]
    if not cholesky(Sv, Lv):
        return np.nan
    logdet = 0.0
    for a in range(n):
        logdet += math.log(L[a, a])
    solve_lower(L, e, n)
    quad = 0.0
    for a in range(n):
        quad += e[a] * e[a]
    ll = -0.5 * (n * _LOG_2PI + quad) - logdet
    solve_upper_t(L, e, n)  # e = S^{-1} (y_o - ...)
    # K^T = S^{-1} H_o P: solve column by column into K (d, n)
    for j in range(d):
        col = K[j]
        for a in range(n):
            col[a] = HP[a, j]
        solve_lower(L, col, n)
        solve_upper_t(L, col, n)
    for i in range(d):
        s = mean[i]
        for a in range(n):
            s += HP[a, i] * e[a]
        mean_out[i] = s
    # Joseph form: A = I - K H_o; cov_out = A P A^T + K R_oo K^T
    for i in range(d):
        for j in range(d):
            s = 1.0 if i == j else 0.0
            for a in range(n):
                s -= K[i, a] * H[obs[a], j]
            A[i, j] = s
    for i in range(d):
        for j in range(d):
            s = 0.0
            for k in range(d):
                s += A[i, k] * cov[k, j]
            AP[i, j] = s
    for i in range(d):
        for j in range(i + 1):
            s = 0.0
            for k in range(d):
                s += AP[i, k] * A[j, k]
            for a in range(n):
                ka = 0.0
                for b in range(n):
                    ka += K[i, b] * R[obs[b], obs[a]]
                s += ka * K[j, a]
            cov_out[i, j] = s
            cov_out[j, i] = s
    return ll


@nb.njit(cache=True)
def _filter(kp, y):
    T, m = y.shape
    d = kp.m0.shape[0]
    fm = np.empty((T, d))
    fP = np.empty((T, d, d))
    pm = np.empty((T, d))
    pP = np.empty((T, d, d))
    ws = _workspace(d, m)
    tmp = np.empty((d, d))
    pm[0] = kp.m0
    pP[0] = kp.P0
    ll = 0.0
    for t in range(T):
        if t > 0:
            predict(kp, t, fm[t - 1], fP[t - 1], pm[t], pP[t], tmp)
        inc = update(kp, t, y[t], pm[t], pP[t], fm[t], fP[t], ws)
        if math.isnan(inc):
            return ll, fm, fP, pm, pP, t
        ll += inc
    return ll, fm, fP, pm, pP, -1


def filter_kernel_params(kp: KernelParams, y: np.ndarray) -> FilterResult:
    """Run the compiled filter on clean arrays (no validation; internal and for ``smc`` oracles)."""
    ll, fm, fP, pm, pP, bad = _filter(kp, y)
    if bad >= 0:
        raise DataError(
            f"y: innovation covariance not positive definite at time step {bad}; "
            "the covariances are too ill-conditioned for float64"
        )
    return FilterResult(ll, fm, fP, pm, pP)


def kalman_filter(params: LGSSMParams, y, inputs=None) -> FilterResult | list[FilterResult]:
    """Kalman filter of one sequence ``(T, m)`` or a list of them (NaN = missing).

    Args:
        params: the model parameters.
        y: observations, ``(T, m)`` (``(T,)`` when ``m == 1``) or a list of such arrays.
        inputs: ``(T, p)`` inputs aligned with ``y`` (a list for several sequences),
            required when the model has inputs (``p > 0``).

    Returns:
        A :class:`FilterResult` (a list of them for a list of sequences).
    """
    seqs, us, single = prepare(params, y, inputs)
    out = [filter_kernel_params(kernel_params(params, u), s) for s, u in zip(seqs, us)]
    return out[0] if single else out

