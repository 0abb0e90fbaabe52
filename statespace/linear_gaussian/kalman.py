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
* The time loop (in ``_fast``) works in preallocated buffers: no allocation,
  no BLAS call and no array view per step, which is what small state
  dimensions need; long sequences run a copy compiled for their exact
  dimensions (``_specialise``), short ones the generic loop.

Example::

    import numpy as np
    from statespace.linear_gaussian import LGSSMParams, kalman_filter
    p = LGSSMParams(m0=np.zeros(1), P0=np.eye(1), F=[[0.9]], Q=[[0.1]], H=[[1.0]], R=[[0.5]])
    res = kalman_filter(p, np.array([0.3, np.nan, -0.2]))
    res.log_likelihood, res.filtered_means
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DataError
from ._fast import filter_size
from ._specialise import loops_for
from .data import prepare
from .params import KernelParams, LGSSMParams, kernel_params


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


def filter_kernel_params(kp: KernelParams, y: np.ndarray, buf: np.ndarray | None = None) -> FilterResult:
    """Run the compiled filter on clean arrays (no validation; internal and for ``smc`` oracles).

    ``buf`` (length ``_fast.filter_size(T, d)``) receives the outputs, which are views of it;
    a new block is allocated when it is not given.
    """
    T, m = y.shape
    d = kp.m0.shape[0]
    if buf is None:
        buf = np.empty(filter_size(T, d))
    ll, fm, fP, pm, pP, bad = loops_for(d, m, T).filter_loop(kp, y, buf)
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

