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

from ._numerics.exp import exp
from .errors import ParameterError
from .interface import AdditiveFunctional, ModelKernels, Parametrization, StateSpaceModel
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
    # branch-free, with the library's exponential rather than libm's: the particle filters'
    # loop over particles then vectorises (a missing y is a select, not a branch)
    v = y[t, 0]
    ll = -0.5 * (_LOG_2PI + x[0] + v * v * exp(-x[0]))
    return 0.0 if math.isnan(v) else ll


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
        """The complete-data sufficient statistics (layout ``SV_STATS``), as a compiled functional."""
        return AdditiveFunctional(_stats_initial, _stats_step, len(SV_STATS))

    def m_step(self, stats, n_sequences: int = 1, n_steps: int | None = None) -> StochasticVolatility:
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
        res = minimize_scalar(
            lambda f: -_sv_profile(f, s)[2], bounds=(-lim, lim), method="bounded", options={"xatol": 1e-10}
        )
        phi = float(res.x)
        mu, s2, _ = _sv_profile(phi, s)
        return StochasticVolatility(params=SVParams(mu, phi, math.sqrt(s2)))

    # --- learning hooks (smc.learning) ----------------------------------------
    def parametrization(self, inputs=None) -> Parametrization:
        """``theta = (mu, atanh phi, log sigma)``, with the JAX log joint density (the model takes no inputs)."""

        def to_vector(m):
            p = m.params
            return np.array([p.mu, math.atanh(p.phi), math.log(p.sigma)])

        def from_vector(th):
            phi = math.tanh(float(th[1]))
            phi = max(min(phi, 1.0 - 1e-12), -1.0 + 1e-12)
            return StochasticVolatility(float(th[0]), phi, math.exp(float(th[2])))

        return Parametrization(
            ("mu", "atanh_phi", "log_sigma"),
            to_vector,
            from_vector,
            _sv_log_joint,
            lambda m: {"mu": m.params.mu, "phi": m.params.phi, "sigma": m.params.sigma},
        )

    def gibbs_prior(self) -> SVPrior:
        """The default conjugate prior of Bayesian particle Gibbs: ``SVPrior()``."""
        return SVPrior()


def _sv_log_joint(theta, x, y):
    r""":math:`\log p_\theta(x, y)` in ``jax.numpy`` at ``theta = (mu, atanh phi, log sigma)`` (NaN ``y`` missing)."""
    import jax.numpy as jnp

    mu, phi, log_s = theta[0], jnp.tanh(theta[1]), theta[2]
    s2 = jnp.exp(2.0 * log_s)
    x = x[:, 0]
    yy = y[:, 0]
    v0 = s2 / (1.0 - phi**2)
    lp = -0.5 * (jnp.log(2 * jnp.pi * v0) + (x[0] - mu) ** 2 / v0)
    r = x[1:] - mu - phi * (x[:-1] - mu)
    lp += jnp.sum(-0.5 * (jnp.log(2 * jnp.pi * s2) + r**2 / s2))
    obs = ~jnp.isnan(yy)
    y0 = jnp.where(obs, yy, 0.0)
    le = -0.5 * (jnp.log(2 * jnp.pi) + x + y0**2 * jnp.exp(-x))
    return lp + jnp.sum(jnp.where(obs, le, 0.0))


class SVPrior(NamedTuple):
    r"""Conjugate priors of the stochastic volatility parameters, for Bayesian particle Gibbs.

    :math:`\mu \sim N(m_\mu, s_\mu^2)` (``mu_mean, mu_sd``), :math:`\phi \sim N(m_\phi, s_\phi^2)`
    truncated to :math:`(-1, 1)` (``phi_mean, phi_sd``; flat when ``phi_sd`` is infinite),
    :math:`\sigma^2 \sim IG(a, b)` (``sigma2_shape, sigma2_scale``). With the stationary initial
    law :math:`x_0 \sim N(\mu, \sigma^2/(1-\phi^2))`, :math:`\sigma^2 \mid \cdot` is inverse-gamma
    and :math:`\mu \mid \cdot` Gaussian (both exact); :math:`\phi` is drawn from the Gaussian
    conditional of the transition terms and accepted with probability
    :math:`\min(1, h(\phi')/h(\phi))`, :math:`h(\phi) = \prod_\text{seq}\sqrt{1-\phi^2}\,
    e^{-(1-\phi^2)(x_0-\mu)^2/2\sigma^2}` (independence Metropolis-within-Gibbs, exact).
    """

    mu_mean: float = 0.0
    mu_sd: float = 10.0
    phi_mean: float = 0.0
    phi_sd: float = math.inf
    sigma2_shape: float = 2.0
    sigma2_scale: float = 0.05

    def names(self, model):
        """The names of the sampled parameters, in the order of :meth:`values`: ``("mu", "phi", "sigma")``."""
        return ("mu", "phi", "sigma")

    def values(self, model):
        """``(3,)`` array ``(mu, phi, sigma)`` of ``model``'s parameters (one draw of the chain)."""
        p = model.params
        return np.array([p.mu, p.phi, p.sigma])

    def draw(self, model, paths, data, rng):
        """One Gibbs sweep over the parameters given the state trajectories.

        Draws, in turn, each given the values just drawn and the ``n`` states of ``paths``:
        ``sigma^2 ~ IG(sigma2_shape + n/2, sigma2_scale + S/2)`` with
        ``S = sum_seq (1 - phi^2)(x_0 - mu)^2 + sum_t (x_t - mu - phi (x_{t-1} - mu))^2``;
        ``mu`` from its Gaussian conditional (prior ``N(mu_mean, mu_sd^2)``); ``phi`` proposed
        from the Gaussian conditional of the transition terms and the prior
        ``N(phi_mean, phi_sd^2)`` (flat when ``phi_sd`` is infinite) and accepted by independence
        Metropolis on the stationary factor ``sqrt(1 - phi^2) exp(-(1 - phi^2)(x_0 - mu)^2 / 2 sigma^2)``
        of each sequence (a proposal outside ``(-1, 1)`` is rejected). Each move leaves the
        conditional posterior invariant.

        Args:
            model: the current ``StochasticVolatility``.
            paths: one ``(T_i, 1)`` state trajectory per sequence.
            data: the ``(y, inputs)`` pairs of the sequences (unused: the emission has no parameters).
            rng: a ``numpy.random.Generator``.

        Returns:
            A new ``StochasticVolatility`` with the drawn ``mu, phi, sigma``.
        """
        p = model.params
        mu, phi, s2 = p.mu, p.phi, p.sigma**2
        x0 = np.array([x[0, 0] for x in paths])
        prev = np.concatenate([x[:-1, 0] for x in paths])
        nxt = np.concatenate([x[1:, 0] for x in paths])
        n0, nt = len(paths), len(prev)
        # sigma^2 | mu, phi
        ss = (1 - phi**2) * np.sum((x0 - mu) ** 2) + np.sum((nxt - mu - phi * (prev - mu)) ** 2)
        s2 = (self.sigma2_scale + 0.5 * ss) / rng.gamma(self.sigma2_shape + 0.5 * (n0 + nt))
        # mu | phi, sigma^2
        c = 1 - phi**2
        prec = 1 / self.mu_sd**2 + (n0 * c + nt * (1 - phi) ** 2) / s2
        lin = self.mu_mean / self.mu_sd**2 + (c * x0.sum() + (1 - phi) * np.sum(nxt - phi * prev)) / s2
        mu = lin / prec + rng.standard_normal() / math.sqrt(prec)
        # phi | mu, sigma^2: Gaussian proposal from the transitions and prior, MH on the x_0 factor
        a, b = prev - mu, nxt - mu
        prec = (0.0 if math.isinf(self.phi_sd) else 1 / self.phi_sd**2) + np.sum(a * a) / s2
        lin = (0.0 if math.isinf(self.phi_sd) else self.phi_mean / self.phi_sd**2) + np.sum(a * b) / s2
        prop = lin / prec + rng.standard_normal() / math.sqrt(prec)
        if abs(prop) < 1:

            def log_h(f):
                return 0.5 * n0 * math.log(1 - f * f) - (1 - f * f) * np.sum((x0 - mu) ** 2) / (2 * s2)

            if math.log(rng.random()) < log_h(prop) - log_h(phi):
                phi = prop
        return StochasticVolatility(mu, phi, math.sqrt(s2))


register_loadable(SVParams)
register_loadable(StochasticVolatility)
