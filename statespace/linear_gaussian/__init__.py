"""Linear-Gaussian state-space models: Kalman filter, RTS smoother, FFBS, forecasting and EM."""

from .kalman import FilterResult, kalman_filter
from .params import LGSSMParams
from .smoother import SmootherResult, rts_smoother, sample_posterior
