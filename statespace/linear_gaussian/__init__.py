"""Linear-Gaussian state-space models: Kalman filter, RTS smoother, FFBS, forecasting and EM.

See ``statespace.linear_gaussian.model`` for the model and a runnable example.
"""

from .batch import BatchMoments, batch_filter, batch_log_likelihood, batch_smoother
from .em import e_step, fit_em, m_step
from .forecast import ForecastResult, forecast
from .kalman import KalmanFilterResult, kalman_filter, kalman_log_likelihood
from .kernels import stats_layout
from .model import LinearGaussianSSM
from .params import KernelParams, LGSSMParams, kernel_params
from .smoother import SmootherResult, rts_smoother, sample_posterior

__all__ = [
    "BatchMoments",
    "KalmanFilterResult",
    "ForecastResult",
    "KernelParams",
    "LGSSMParams",
    "LinearGaussianSSM",
    "SmootherResult",
    "batch_filter",
    "batch_log_likelihood",
    "batch_smoother",
    "e_step",
    "fit_em",
    "forecast",
    "kalman_filter",
    "kalman_log_likelihood",
    "kernel_params",
    "m_step",
    "rts_smoother",
    "sample_posterior",
    "stats_layout",
]
