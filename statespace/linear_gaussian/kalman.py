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
* Where float64 cannot carry the recursion, the filter stops with a
  :class:`~statespace.errors.DataError` naming the time step instead of
  returning NaN or round-off: predicted moments beyond float64's range (an
  unstable ``F`` over a long run of missing steps), an update whose rounding
  error exceeds the filtered standard deviation (a prediction that far from
  the data), an innovation covariance that is not positive definite in
  float64. An observation whose log-density is below float64's range is data
  of zero probability: :func:`kalman_log_likelihood` returns ``-inf``, the
  verbs that condition on the data raise
  :class:`~statespace.errors.ImpossibleDataError`. Overflow confined to a
  trailing run of missing steps leaves the log-likelihood exact, and
  :func:`kalman_log_likelihood` returns it.
* The time loop (in ``_fast``) works in preallocated buffers: no allocation,
  no BLAS call and no array view per step, which is what small state
  dimensions need; long sequences run a copy compiled for their exact
  dimensions (``_specialise``), short ones the generic loop.
* The covariance side of the recursion (``P``, ``S``, the gain) does not depend on
  the observed values: for time-invariant matrices it converges to the fixed point of
  the Riccati equation, and once a step's covariance agrees with the previous step's
  to round-off (``statespace._numerics.linalg.fixed_point``: 16 ulps of each entry's
  scale) the loop copies the previous step's matrices instead of recomputing them,
  ``O(d^2)`` per step instead of ``O(d^3)``. A new pattern of missing coordinates or a
  time-varying matrix takes the full recursion again. Batches of sequences
  (``statespace.linear_gaussian.batch``) also share the covariances between
  sequences of one length and one missing pattern.

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

from ..errors import DataError, ImpossibleDataError
from ._fast import FAIL_CANCELLATION, FAIL_IMPOSSIBLE, FAIL_OVERFLOW, filter_size
from ._specialise import loops_for
from .data import prepare
from .params import KernelParams, LGSSMParams, kernel_params


class KalmanFilterResult(NamedTuple):
    """Output of ``kalman_filter`` for one sequence of length ``T``.

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


def filter_kernel_params(
    kp: KernelParams, y: np.ndarray, buf: np.ndarray | None = None, *, moments: bool = True, label: str = "y"
) -> KalmanFilterResult:
    """Run the compiled filter on clean arrays (no validation; internal and for ``smc`` oracles).

    ``buf`` (length ``_fast.filter_size(T, d)``) receives the outputs, which are views of it;
    a new block is allocated when it is not given.

    Raises :class:`~statespace.errors.DataError` naming ``label`` and the time step where
    float64 cannot represent the filter (see ``_fast.filter_loop``). With ``moments=False``
    only the log-likelihood is wanted: predicted moments that overflow in a *trailing* run of
    missing observations do not enter it, so it is returned exactly, and an observation whose
    log-density is below float64's range gives ``-inf`` (the moments from that step on are then
    not filled in); with ``moments=True`` the latter raises
    :class:`~statespace.errors.ImpossibleDataError`.
    """
    T, m = y.shape
    d = kp.m0.shape[0]
    if buf is None:
        buf = np.empty(filter_size(T, d))
    ll, fm, fP, pm, pP, bad, why = loops_for(d, m, T).filter_loop(kp, y, buf)
    if bad < 0:
        return KalmanFilterResult(ll, fm, fP, pm, pP)
    if why == FAIL_OVERFLOW:
        observed = np.flatnonzero(~np.isnan(y[bad:]).all(axis=1))
        if len(observed) == 0 and not moments:
            return KalmanFilterResult(ll, fm, fP, pm, pP)
        last = int(np.flatnonzero(~np.isnan(y[:bad]).all(axis=1)).max(initial=-1))
        where = (
            f"the observation at time step {bad + int(observed[0])} cannot be filtered"
            if len(observed)
            else f"the moments of time steps {bad}..{T - 1} are not representable"
        )
        raise DataError(
            f"{label}: the predicted state mean or covariance exceeds the float64 range at time step {bad}, "
            f"{bad - last - 1} steps after the last observation (time step {last}): F amplifies the uncertainty "
            f"over the missing steps, and {where}. The moments up to time step {max(last, 0)} do not depend on "
            "the trailing missing steps: drop them, or use a stable model"
        )
    if why == FAIL_IMPOSSIBLE:
        if not moments:
            return KalmanFilterResult(ll, fm, fP, pm, pP)
        raise ImpossibleDataError(
            f"{label}: the observation at time step {bad} has zero probability under the model (log-density "
            "below float64's range: it lies too many standard deviations from its prediction); check the data "
            "or the noise covariances"
        )
    if why == FAIL_CANCELLATION:
        raise DataError(
            f"{label}: at time step {bad} the filtered mean is lost to round-off: the prediction is so far from "
            "the observation, relative to the filtered standard deviation, that float64 cannot resolve the update "
            "(typically an unstable F over a long run of missing steps); shorten the gap or rescale the model"
        )
    raise DataError(
        f"{label}: innovation covariance not positive definite at time step {bad}; "
        "the covariances are too ill-conditioned for float64, or beyond its range"
    )


def kalman_log_likelihood(params: LGSSMParams, y, inputs=None) -> float:
    """:math:`\\log p(y)` summed over one sequence or a list of them (the filter's forward pass).

    Exact also when the predicted moments overflow in a trailing run of missing
    observations, which ``kalman_filter`` cannot return.
    """
    seqs, us, single = prepare(params, y, inputs)
    return float(
        sum(
            filter_kernel_params(
                kernel_params(params, u, whitened=False), s, moments=False, label="y" if single else f"y[{i}]"
            ).log_likelihood
            for i, (s, u) in enumerate(zip(seqs, us))
        )
    )


def kalman_filter(params: LGSSMParams, y, inputs=None) -> KalmanFilterResult | list[KalmanFilterResult]:
    """Kalman filter of one sequence ``(T, m)`` or a list of them (NaN = missing).

    Args:
        params: the model parameters.
        y: observations, ``(T, m)`` (``(T,)`` when ``m == 1``) or a list of such arrays.
        inputs: ``(T, p)`` inputs aligned with ``y`` (a list for several sequences),
            required when the model has inputs (``p > 0``).

    Returns:
        A ``KalmanFilterResult`` (a list of them for a list of sequences).
    """
    seqs, us, single = prepare(params, y, inputs)
    out = [
        filter_kernel_params(kernel_params(params, u, whitened=False), s, label="y" if single else f"y[{i}]")
        for i, (s, u) in enumerate(zip(seqs, us))
    ]
    return out[0] if single else out
