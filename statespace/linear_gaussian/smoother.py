r"""Rauch-Tung-Striebel smoothing and posterior trajectory sampling.

Given the filter's moments, the RTS backward pass runs for ``t = T-2, ..., 0``:

.. math::

    J_t = P_{t|t} F_{t+1}^\top P_{t+1|t}^{-1}, \qquad
    m_{t|T} = m_{t|t} + J_t (m_{t+1|T} - m_{t+1|t}),

    P_{t|T} = P_{t|t} + J_t (P_{t+1|T} - P_{t+1|t}) J_t^\top, \qquad
    \operatorname{Cov}(x_{t+1}, x_t \mid y_{0:T-1}) = P_{t+1|T} J_t^\top,

the last being the lag-one cross-covariance EM needs. The same gains give the
backward kernel of forward-filtering backward-sampling (FFBS, Carter & Kohn
1994; Frühwirth-Schnatter 1994):

.. math::

    x_t \mid x_{t+1}, y_{0:t} \sim N\big(m_{t|t} + J_t (x_{t+1} - m_{t+1|t}),\;
    P_{t|t} - J_t P_{t+1|t} J_t^\top\big),

so whole trajectories are drawn exactly from :math:`p(x_{0:T-1} \mid y_{0:T-1})`.
``P_{t+1|t}`` is inverted through its Cholesky factor; it is positive definite
because ``Q`` is. The backward conditional covariance may be singular (e.g. when
``F`` is not invertible), so it is factorised by a semi-definite Cholesky.

Like the filter's, the backward pass's gains and covariances reach a fixed point
for time-invariant matrices; where the filter's covariances and the smoothed ones
agree with the next step's to round-off, the pass copies them instead of
recomputing (``O(d^2)`` per step).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from .._numerics.linalg import cholesky_psd
from ..errors import DataError
from ..validation import as_rng, check_int
from ._fast import rts_size
from ._linalg import symmetrize
from ._specialise import loops_for
from .data import prepare
from .kalman import KalmanFilterResult, filter_kernel_params
from .params import KernelParams, LGSSMParams, kernel_params


class SmootherResult(NamedTuple):
    """Output of ``rts_smoother`` for one sequence of length ``T``.

    Attributes:
        log_likelihood: :math:`\\log p(y_{0:T-1})`.
        smoothed_means: ``(T, d)`` :math:`E[x_t \\mid y_{0:T-1}]`.
        smoothed_covs: ``(T, d, d)`` :math:`Cov[x_t \\mid y_{0:T-1}]`.
        smoothed_cross_covs: ``(T-1, d, d)``; entry ``t`` is :math:`Cov(x_{t+1}, x_t \\mid y_{0:T-1})`.
        filtered_means, filtered_covs, predicted_means, predicted_covs: as in
            :class:`~statespace.linear_gaussian.kalman.KalmanFilterResult`.
        smoother_gains: ``(T-1, d, d)`` the gains :math:`J_t`.
    """

    log_likelihood: float
    smoothed_means: np.ndarray
    smoothed_covs: np.ndarray
    smoothed_cross_covs: np.ndarray
    filtered_means: np.ndarray
    filtered_covs: np.ndarray
    predicted_means: np.ndarray
    predicted_covs: np.ndarray
    smoother_gains: np.ndarray


def smooth_kernel_params(kp: KernelParams, y: np.ndarray, buffers=None, label: str = "y") -> SmootherResult:
    """Filter then smooth clean arrays (no validation; internal and for ``smc`` oracles).

    ``buffers`` is ``None`` or ``(filter_block, smoother_block)`` of lengths
    ``_fast.filter_size(T, d)`` and ``_fast.rts_size(T, d)``, reused by EM across iterations.
    """
    fbuf, sbuf = (None, None) if buffers is None else buffers
    f = filter_kernel_params(kp, y, fbuf, label=label)
    return smooth_filtered(kp, f, sbuf)


def smooth_filtered(kp: KernelParams, f: KalmanFilterResult, buf: np.ndarray | None = None) -> SmootherResult:
    """The RTS pass over a filter result (outputs are views of ``buf``, allocated if not given)."""
    T, d = f.filtered_means.shape
    if buf is None:
        buf = np.empty(rts_size(T, d))
    rts_loop = loops_for(d, kp.H.shape[1], T).rts_loop
    sm, sP, cross, gains, bad = rts_loop(
        kp, f.filtered_means, f.filtered_covs, f.predicted_means, f.predicted_covs, buf
    )
    if bad >= 0:
        raise DataError(f"y: predicted covariance not positive definite at time step {bad}")
    return SmootherResult(f.log_likelihood, sm, sP, cross, *f[1:], gains)


def rts_smoother(params: LGSSMParams, y, inputs=None) -> SmootherResult | list[SmootherResult]:
    """Kalman filter then RTS smoother of one sequence or a list of them (NaN = missing).

    Arguments as in ``kalman_filter``.
    """
    seqs, us, single = prepare(params, y, inputs)
    out = [
        smooth_kernel_params(kernel_params(params, u, whitened=False), s, label="y" if single else f"y[{i}]")
        for i, (s, u) in enumerate(zip(seqs, us))
    ]
    return out[0] if single else out


@nb.njit(cache=True)
def _backward_factors(fP, pP, gains):
    """Cholesky factors of the FFBS backward covariances ``P_{t|t} - J_t P_{t+1|t} J_t^T``."""
    T, d = fP.shape[0], fP.shape[1]
    out = np.zeros((T, d, d))
    cov = np.empty((d, d))
    JP = np.empty((d, d))
    for t in range(T - 1):
        J = gains[t]
        for i in range(d):
            for j in range(d):
                s = 0.0
                for k in range(d):
                    s += J[i, k] * pP[t + 1, k, j]
                JP[i, j] = s
        for i in range(d):
            for j in range(d):
                s = fP[t, i, j]
                for k in range(d):
                    s -= JP[i, k] * J[j, k]
                cov[i, j] = s
        symmetrize(cov)
        cholesky_psd(cov, out[t])
    cholesky_psd(fP[T - 1], out[T - 1])
    return out


@nb.njit(cache=True)
def _ffbs(fm, pm, gains, factors, n_samples, rng):
    T, d = fm.shape
    out = np.empty((n_samples, T, d))
    z = np.empty(d)
    for n in range(n_samples):
        x = out[n]
        for i in range(d):
            z[i] = rng.standard_normal()
        for i in range(d):
            s = fm[T - 1, i]
            for k in range(i + 1):
                s += factors[T - 1, i, k] * z[k]
            x[T - 1, i] = s
        for t in range(T - 2, -1, -1):
            for i in range(d):
                z[i] = rng.standard_normal()
            J = gains[t]
            for i in range(d):
                s = fm[t, i]
                for k in range(d):
                    s += J[i, k] * (x[t + 1, k] - pm[t + 1, k])
                for k in range(i + 1):
                    s += factors[t, i, k] * z[k]
                x[t, i] = s
    return out


def sample_posterior(smoothed: SmootherResult, n_samples: int, rng) -> np.ndarray:
    """``n_samples`` trajectories ``(n_samples, T, d)`` from :math:`p(x_{0:T-1} \\mid y)` by FFBS."""
    factors = _backward_factors(smoothed.filtered_covs, smoothed.predicted_covs, smoothed.smoother_gains)
    return _ffbs(
        smoothed.filtered_means,
        smoothed.predicted_means,
        smoothed.smoother_gains,
        factors,
        check_int("n_samples", n_samples, minimum=1),
        as_rng(rng),
    )
