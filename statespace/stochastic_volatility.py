r"""Stochastic volatility: a user-defined model written against the shared interface.

.. math::

    x_0 \sim N\!\left(\mu, \frac{\sigma^2}{1-\phi^2}\right), \qquad
    x_t = \mu + \phi (x_{t-1} - \mu) + \sigma \varepsilon_t, \qquad
    y_t = \exp(x_t / 2)\, \eta_t, \qquad \varepsilon_t, \eta_t \sim N(0, 1).

It has no exact filter: the particle methods of :mod:`smc` handle it. It is the
template for a user model: a validated parameter container, seven small
compiled kernels, and a class tying them together::

    from statespace import StochasticVolatility
    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    x, y = sv.sample(1000, rng=0)
    # smc.bootstrap_filter(sv, y, n_particles=1000, rng=1)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from .errors import ParameterError
from .interface import ModelKernels, StateSpaceModel

_LOG_2PI = math.log(2.0 * math.pi)


class _SVParamsBase(NamedTuple):
    mu: float
    phi: float
    sigma: float


class SVParams(_SVParamsBase):
    """Parameters of the stochastic volatility model.

    Attributes:
        mu: mean log-variance.
        phi: autoregression coefficient, ``|phi| < 1`` (stationarity).
        sigma: innovation standard deviation, ``> 0``.
    """

    __slots__ = ()

    def __new__(cls, mu: float, phi: float, sigma: float):
        mu, phi, sigma = float(mu), float(phi), float(sigma)
        for name, v in (("mu", mu), ("phi", phi), ("sigma", sigma)):
            if not math.isfinite(v):
                raise ParameterError(f"{name}: expected a finite number, got {v}")
        if not abs(phi) < 1.0:
            raise ParameterError(f"phi: expected |phi| < 1 for a stationary log-variance, got {phi}")
        if not sigma > 0.0:
            raise ParameterError(f"sigma: expected a positive standard deviation, got {sigma}")
        return super().__new__(cls, mu, phi, sigma)


@nb.njit(cache=True)
def _sample_initial(kp, rng, x_out):
    x_out[0] = kp.mu + kp.sigma / math.sqrt(1.0 - kp.phi**2) * rng.standard_normal()


@nb.njit(cache=True)
def _log_initial(kp, x):
    s2 = kp.sigma**2 / (1.0 - kp.phi**2)
    z = x[0] - kp.mu
    return -0.5 * (_LOG_2PI + math.log(s2) + z * z / s2)


@nb.njit(cache=True)
def _sample_transition(kp, t, x_prev, rng, x_out):
    x_out[0] = kp.mu + kp.phi * (x_prev[0] - kp.mu) + kp.sigma * rng.standard_normal()


@nb.njit(cache=True)
def _log_transition(kp, t, x_prev, x):
    z = (x[0] - kp.mu - kp.phi * (x_prev[0] - kp.mu)) / kp.sigma
    return -0.5 * (_LOG_2PI + z * z) - math.log(kp.sigma)


@nb.njit(cache=True)
def _log_transition_bound(kp, t):
    return -0.5 * _LOG_2PI - math.log(kp.sigma)


@nb.njit(cache=True)
def _log_emission(kp, t, x, y):
    v = y[t, 0]
    if math.isnan(v):
        return 0.0
    return -0.5 * (_LOG_2PI + x[0] + v * v * math.exp(-x[0]))


@nb.njit(cache=True)
def _sample_emission(kp, t, x, y, rng, y_out):
    y_out[0] = math.exp(0.5 * x[0]) * rng.standard_normal()


_KERNELS = ModelKernels(
    sample_initial=_sample_initial,
    log_initial=_log_initial,
    sample_transition=_sample_transition,
    log_transition=_log_transition,
    log_transition_bound=_log_transition_bound,
    log_emission=_log_emission,
    sample_emission=_sample_emission,
    state_dim=1,
    obs_dim=1,
)


class StochasticVolatility(StateSpaceModel):
    """The stochastic volatility model (see the module docstring)."""

    def __init__(self, mu: float = -1.0, phi: float = 0.95, sigma: float = 0.3, params: SVParams | None = None):
        self.params = params if params is not None else SVParams(mu, phi, sigma)

    def kernels(self) -> ModelKernels:
        return _KERNELS

    def kernel_params(self, inputs=None, times=None) -> SVParams:
        return self.params

    def __repr__(self) -> str:
        p = self.params
        return f"StochasticVolatility(mu={p.mu:.4g}, phi={p.phi:.4g}, sigma={p.sigma:.4g})"
