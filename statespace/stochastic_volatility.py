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
from .interface import AdditiveFunctional, ModelKernels, StateSpaceModel
from .persistence import SavedModel, register_loadable
from .validation import check_real

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
        mu, phi, sigma = check_real("mu", mu), check_real("phi", phi), check_real("sigma", sigma)
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


# --- complete-data sufficient statistics (particle EM) -------------------------
#: Layout of :meth:`StochasticVolatility.sufficient_statistics`:
#: ``[n_0, sum x_0, sum x_0^2, n_trans, sum x_{t-1}, sum x_t, sum x_{t-1}^2, sum x_{t-1} x_t, sum x_t^2]``.
SV_STATS = ("n0", "x0", "x0x0", "nt", "xp", "x", "xpxp", "xpx", "xx")


@nb.njit(cache=True)
def _stats_initial(kp, x, y, out):
    out[:] = 0.0
    out[0] = 1.0
    out[1] = x[0]
    out[2] = x[0] * x[0]


@nb.njit(cache=True)
def _stats_step(kp, t, x_prev, x, y, out):
    out[:] = 0.0
    out[3] = 1.0
    out[4] = x_prev[0]
    out[5] = x[0]
    out[6] = x_prev[0] * x_prev[0]
    out[7] = x_prev[0] * x[0]
    out[8] = x[0] * x[0]


def _sv_profile(phi, s):
    """``(mu, sigma^2, profile log-likelihood)`` maximising the expected complete-data log-likelihood at ``phi``."""
    n0, a1, a2, nt, sp, st, spp, spt, stt = s
    c = 1.0 - phi * phi
    z1 = st - phi * sp
    z2 = stt - 2.0 * phi * spt + phi * phi * spp
    mu = (c * a1 + (1.0 - phi) * z1) / (n0 * c + nt * (1.0 - phi) ** 2)
    ss = c * (a2 - 2.0 * mu * a1 + n0 * mu * mu) + z2 - 2.0 * mu * (1.0 - phi) * z1 + nt * (mu * (1.0 - phi)) ** 2
    n = n0 + nt
    s2 = max(ss / n, 1e-300)
    return mu, s2, 0.5 * n0 * math.log(c) - 0.5 * n * math.log(s2) - 0.5 * n


class StochasticVolatility(StateSpaceModel, SavedModel):
    """The stochastic volatility model (see the module docstring)."""

    def __init__(self, mu: float = -1.0, phi: float = 0.95, sigma: float = 0.3, params: SVParams | None = None):
        if params is not None and not isinstance(params, SVParams):
            raise ParameterError(f"params: expected an SVParams, got {type(params).__name__}")
        self.params = params if params is not None else SVParams(mu, phi, sigma)

    def kernels(self) -> ModelKernels:
        return _KERNELS

    def kernel_params(self, inputs=None, times=None) -> SVParams:
        return self.params

    def __repr__(self) -> str:
        p = self.params
        return f"StochasticVolatility(mu={p.mu:.4g}, phi={p.phi:.4g}, sigma={p.sigma:.4g})"


    def sufficient_statistics(self) -> AdditiveFunctional:
        """The complete-data sufficient statistics (layout :data:`SV_STATS`), as a compiled functional."""
        return AdditiveFunctional(_stats_initial, _stats_step, len(SV_STATS))

    def m_step(self, stats, n_sequences: int = 1, n_steps: int | None = None) -> "StochasticVolatility":
        r"""Maximise the expected complete-data log-likelihood (counts are read from ``stats``).

        With the stationary initial law the objective is, for fixed ``phi``, a
        quadratic in ``mu`` and a scale family in ``sigma^2``: both are closed
        form, and ``phi`` maximises the one-dimensional profile on ``(-1, 1)``
        (bounded Brent search), so the M-step is exact and EM never decreases the
        likelihood. ``n_sequences`` and ``n_steps`` are not needed.
        """
        from scipy.optimize import minimize_scalar

        s = np.asarray(stats, dtype=np.float64)
        if s.shape != (len(SV_STATS),):
            raise ParameterError(f"stats: expected shape ({len(SV_STATS)},) in the layout {SV_STATS}, got {s.shape}")
        if not np.isfinite(s).all():
            raise ParameterError("stats: non-finite sufficient statistics")
        if not (s[0] > 0 and s[3] > 0):
            raise ParameterError("stats: need at least one initial state and one transition (counts n0, nt > 0)")
        lim = 1.0 - 1e-9
        res = minimize_scalar(lambda f: -_sv_profile(f, s)[2], bounds=(-lim, lim), method="bounded",
                              options={"xatol": 1e-10})
        phi = float(res.x)
        mu, s2, _ = _sv_profile(phi, s)
        return StochasticVolatility(params=SVParams(mu, phi, math.sqrt(s2)))


register_loadable(SVParams)
register_loadable(StochasticVolatility)
