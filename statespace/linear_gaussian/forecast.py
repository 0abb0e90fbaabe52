r"""k-step-ahead forecasting from the end of a filtered sequence.

From :math:`x_{T-1} \mid y_{0:T-1} \sim N(m, P)` the forecast iterates the
prediction step with no update:

.. math::

    m_{T-1+h} = F m_{T-2+h} + B u_{T-1+h}, \qquad P_{T-1+h} = F P_{T-2+h} F^\top + Q,

    E[y_{T-1+h}] = H m_{T-1+h} + D u_{T-1+h}, \qquad
    Cov[y_{T-1+h}] = H P_{T-1+h} H^\top + R, \qquad h = 1, \dots, k.

Time-varying matrices have no values beyond the data, so forecasting needs a
time-invariant model.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DataError, ShapeError
from ..validation import as_float_array, check_int
from .data import prepare
from .kalman import filter_kernel_params
from .params import LGSSMParams, check_not_time_varying, kernel_params


class ForecastResult(NamedTuple):
    """Predictive moments of the next ``k`` states and observations.

    Attributes:
        means: ``(k, d)`` state means.
        covs: ``(k, d, d)`` state covariances.
        obs_means: ``(k, m)`` observation means.
        obs_covs: ``(k, m, m)`` observation covariances.
    """

    means: np.ndarray
    covs: np.ndarray
    obs_means: np.ndarray
    obs_covs: np.ndarray


def forecast(
    params: LGSSMParams, y, steps: int, inputs=None, future_inputs=None
) -> ForecastResult | list[ForecastResult]:
    """Forecast ``steps`` time steps past the end of each sequence.

    Args:
        params: time-invariant model parameters.
        y, inputs: data as in ``kalman_filter``.
        steps: forecast horizon ``k >= 1``.
        future_inputs: ``(k, p)`` inputs over the horizon (a list for several sequences);
            required when the model has inputs.
    """
    check_not_time_varying(params, ("F", "Q", "H", "R"), "has no values beyond the data to forecast with")
    k = check_int("steps", steps, minimum=1, error=ShapeError)
    seqs, us, single = prepare(params, y, inputs)
    p = params.input_dim
    if p == 0:
        if future_inputs is not None:
            raise ShapeError("future_inputs: the model takes no inputs")
        futures = [np.zeros((k, 0))] * len(seqs)
    else:
        if future_inputs is None:
            raise ShapeError(f"future_inputs: the model takes {p}-dimensional inputs; give ({k}, {p}) future inputs")
        futures = [future_inputs] if single else list(future_inputs)
        if len(futures) != len(seqs):
            raise ShapeError(f"future_inputs: got {len(futures)} sequences for {len(seqs)} observation sequences")
        futures = [as_float_array("future_inputs", f, 2) for f in futures]
        for f in futures:
            if f.shape != (k, p):
                raise ShapeError(f"future_inputs: expected shape ({k}, {p}), got {f.shape}")
    out = []
    F, Q, H, R, B, D = params.F, params.Q, params.H, params.R, params.B, params.D
    for s, u, fu in zip(seqs, us, futures):
        f = filter_kernel_params(kernel_params(params, u, whitened=False), s)
        mean, cov = f.filtered_means[-1], f.filtered_covs[-1]
        means, covs = np.empty((k, params.state_dim)), np.empty((k, params.state_dim, params.state_dim))
        for h in range(k):
            with np.errstate(over="ignore", invalid="ignore"):  # checked below, with the step named
                mean = F @ mean + B @ fu[h]
                cov = F @ cov @ F.T + Q
                cov = 0.5 * (cov + cov.T)
            if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
                raise DataError(
                    f"steps: the forecast {h + 1} steps ahead exceeds the float64 range (F amplifies the "
                    f"state's uncertainty beyond it); forecast at most {h} steps with this model"
                )
            means[h], covs[h] = mean, cov
        with np.errstate(over="ignore", invalid="ignore"):
            obs_means = means @ H.T + fu @ D.T
            obs_covs = H @ covs @ H.T + R
        finite = np.isfinite(obs_means).all(axis=1) & np.isfinite(obs_covs).all(axis=(1, 2))
        if not finite.all():
            h = int(np.argmin(finite))
            raise DataError(
                f"steps: the observation forecast {h + 1} steps ahead exceeds the float64 range; "
                f"forecast at most {h} steps with this model"
            )
        out.append(ForecastResult(means, covs, obs_means, 0.5 * (obs_covs + np.swapaxes(obs_covs, 1, 2))))
    return out[0] if single else out
