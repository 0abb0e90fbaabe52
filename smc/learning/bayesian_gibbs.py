r"""Bayesian particle Gibbs: trajectories by conditional SMC, parameters from conjugate conditionals.

The chain alternates, for the posterior :math:`p(\theta, x_{0:T} \mid y)`,

.. math::

    x \sim \text{CSMC}_\theta(x_\text{prev}, \cdot) \quad\text{(backward or ancestor sampling)}, \qquad
    \theta \sim p(\theta \mid x, y),

(Andrieu, Doucet & Holenstein 2010; Lindsten, Jordan & Schon 2014). Both moves
leave the joint posterior invariant, so the parameter draws form an MCMC chain
for :math:`p(\theta \mid y)`. Parameter conditionals:

**Stochastic volatility** (:class:`SVPrior`): :math:`\mu \sim N(m_\mu, s_\mu^2)`,
:math:`\phi \sim N(m_\phi, s_\phi^2)` truncated to :math:`(-1, 1)` (flat when
:math:`s_\phi = \infty`), :math:`\sigma^2 \sim IG(a, b)`. With the stationary
initial law :math:`x_0 \sim N(\mu, \sigma^2/(1-\phi^2))`,
:math:`\sigma^2 \mid \cdot` is inverse-gamma and :math:`\mu \mid \cdot` Gaussian
(both exact); :math:`\phi` is drawn from the Gaussian conditional of the
transition terms and accepted with probability
:math:`\min(1, h(\phi')/h(\phi))`, :math:`h(\phi) = \prod_\text{seq}\sqrt{1-\phi^2}\,
e^{-(1-\phi^2)(x_0-\mu)^2/2\sigma^2}` (independence Metropolis-within-Gibbs,
exact).

**Linear-Gaussian** (:class:`LGPrior`): entries of :math:`F` independent
:math:`N(F_\text{mean}, s_F^2)`, :math:`Q \sim IW(\nu_Q, \Psi_Q)`,
:math:`R \sim IW(\nu_R, \Psi_R)` (inverse-gamma in one dimension). Given the
states, :math:`\operatorname{vec} F` is Gaussian with precision
:math:`s_F^{-2} I + Q^{-1} \otimes \sum_t x_{t-1}x_{t-1}^\top` (row-major vec),
:math:`Q \mid \cdot \sim IW(\nu_Q + n_\text{trans}, \Psi_Q + \sum_t r_t r_t^\top)`
and :math:`R \mid \cdot \sim IW(\nu_R + n_\text{obs}, \Psi_R + \sum_t e_t e_t^\top)`.
Fields in the model's ``frozen`` set are kept; ``m0, P0, H, B, D`` are always
kept (``H`` fixes the scale of the states). Rows with some but not all
coordinates missing cannot update ``R`` conjugately and raise an error when
``R`` is learned.

Example::

    from statespace import StochasticVolatility
    from smc.learning import bayesian_particle_gibbs, SVPrior
    x, y = StochasticVolatility(-1.0, 0.95, 0.3).sample(500, rng=0)
    post = bayesian_particle_gibbs(StochasticVolatility(0.0, 0.8, 0.5), y, SVPrior(), n_iter=2000, n_chains=4, rng=1)
    post.samples["phi"].mean()
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from statespace.errors import DataError, ParameterError
from statespace.progress import progress_bar
from statespace.validation import check_fit_options

from ..csmc import METHODS, check_sampler_args, csmc_step, run_chains
from ._engine import prepare


class SVPrior(NamedTuple):
    """Priors of the stochastic volatility parameters (see the module docstring)."""

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
            model: the current :class:`~statespace.StochasticVolatility`.
            paths: one ``(T_i, 1)`` state trajectory per sequence.
            data: the ``(y, inputs)`` pairs of the sequences (unused: the emission has no parameters).
            rng: a ``numpy.random.Generator``.

        Returns:
            A new :class:`~statespace.StochasticVolatility` with the drawn ``mu, phi, sigma``.
        """
        from statespace import StochasticVolatility

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


class LGPrior(NamedTuple):
    """Priors of a linear-Gaussian model's ``F, Q, R`` (see the module docstring).

    ``Q_scale`` / ``R_scale`` are the inverse-Wishart scale matrices (a scalar means
    that multiple of the identity); the degrees of freedom must exceed ``dim - 1``.
    """

    F_mean: float = 0.0
    F_sd: float = 1.0
    Q_df: float = 3.0
    Q_scale: float | np.ndarray = 1.0
    R_df: float = 3.0
    R_scale: float | np.ndarray = 1.0

    def _learned(self, model):
        return [f for f in ("F", "Q", "R") if f not in model.frozen]

    def names(self, model):
        """Names of the sampled entries, in the order of :meth:`values`: ``"F[i,j]"``, ``"Q[i,j]"``,
        ``"R[i,j]"`` for every entry of each of ``F, Q, R`` not in ``model.frozen``."""
        out = []
        for f in self._learned(model):
            a = getattr(model.params, f)
            out += [f"{f}[{','.join(map(str, idx))}]" for idx in np.ndindex(a.shape)]
        return tuple(out)

    def values(self, model):
        """The learned matrices among ``F, Q, R`` of ``model``, each flattened row-major, concatenated."""
        return np.concatenate([np.ravel(getattr(model.params, f)) for f in self._learned(model)])

    def draw(self, model, paths, data, rng):
        """One Gibbs sweep over the learned parameters among ``F, Q, R`` given the state trajectories.

        Draws, in turn, each from the values just drawn: ``vec F | Q, x`` (Gaussian; prior
        ``N(F_mean, F_sd^2)`` on each entry), ``Q | F, x ~ IW(Q_df + n_trans, Q_scale + sum_t r_t r_t^T)``
        with the transition residuals ``r_t = x_t - F x_{t-1} - B u_t``, and
        ``R | x, y ~ IW(R_df + n_obs, R_scale + sum_t e_t e_t^T)`` with the residuals
        ``e_t = y_t - H x_t - D u_t`` of the fully observed rows. Frozen parameters and
        ``m0, P0, H, B, D`` are kept.

        Args:
            model: the current time-invariant :class:`~statespace.LinearGaussianSSM`.
            paths: one ``(T_i, d)`` state trajectory per sequence.
            data: the ``(y, inputs)`` pairs of the sequences, ``y`` of shape ``(T_i, m)``
                (``inputs`` ``None`` without inputs).
            rng: a ``numpy.random.Generator``.

        Returns:
            A new :class:`~statespace.LinearGaussianSSM` with the same frozen set.

        Raises:
            DataError: ``R`` is learned and a row of ``y`` is partly missing (the conditional
                of ``R`` is then not inverse-Wishart; freeze ``R``).
        """
        from scipy.stats import invwishart

        from statespace import LinearGaussianSSM

        p = model.params
        learn = self._learned(model)
        d, m = p.state_dim, p.obs_dim
        fields = {f: getattr(p, f) for f in ("m0", "P0", "F", "B", "Q", "H", "D", "R")}
        kps = [model.kernel_params(inputs=u) for _, u in data]

        def bu(kp, T):
            return np.broadcast_to(kp.bu, (T, d)) if kp.bu.shape[0] == 1 else kp.bu

        F, Q = np.asarray(p.F), np.asarray(p.Q)
        if "F" in learn:
            Sxx = np.zeros((d, d))
            Sxz = np.zeros((d, d))
            for x, kp in zip(paths, kps):
                tgt = x[1:] - bu(kp, len(x))[1:]
                Sxx += x[:-1].T @ x[:-1]
                Sxz += tgt.T @ x[:-1]
            Qi = np.linalg.inv(Q)
            prec = np.eye(d * d) / self.F_sd**2 + np.kron(Qi, Sxx)
            lin = np.full(d * d, self.F_mean / self.F_sd**2) + (Qi @ Sxz).ravel()
            L = np.linalg.cholesky(prec)
            mean = np.linalg.solve(prec, lin)
            F = (mean + np.linalg.solve(L.T, rng.standard_normal(d * d))).reshape(d, d)
            fields["F"] = F
        if "Q" in learn:
            S = _scale(self.Q_scale, d)
            n = 0
            for x, kp in zip(paths, kps):
                r = x[1:] - x[:-1] @ F.T - bu(kp, len(x))[1:]
                S = S + r.T @ r
                n += len(r)
            fields["Q"] = _invwishart(invwishart, self.Q_df + n, S, rng)
        if "R" in learn:
            S = _scale(self.R_scale, m)
            n = 0
            H = np.asarray(p.H)
            for (yy, _), x, kp in zip(data, paths, kps):
                du = np.broadcast_to(kp.du, (len(yy), m)) if kp.du.shape[0] == 1 else kp.du
                obs = ~np.isnan(yy)
                partial = obs.any(axis=1) & ~obs.all(axis=1)
                if partial.any():
                    t = int(np.argmax(partial))
                    raise DataError(f"y: row {t} is partly missing; R cannot be drawn conjugately (freeze R)")
                rows = obs.all(axis=1)
                e = yy[rows] - x[rows] @ H.T - du[rows]
                S = S + e.T @ e
                n += int(rows.sum())
            fields["R"] = _invwishart(invwishart, self.R_df + n, S, rng)
        from statespace.linear_gaussian import LGSSMParams

        return LinearGaussianSSM(LGSSMParams(**fields), frozen=model.frozen)


def _scale(s, n):
    s = np.asarray(s, dtype=float)
    return s * np.eye(n) if s.ndim == 0 else s.copy()


def _invwishart(dist, df, scale, rng):
    draw = dist.rvs(df=df, scale=scale, random_state=rng)
    draw = np.atleast_2d(draw)
    return 0.5 * (draw + draw.T)


def default_prior(model):
    from statespace import LinearGaussianSSM, StochasticVolatility

    if isinstance(model, StochasticVolatility):
        return SVPrior()
    if isinstance(model, LinearGaussianSSM):
        return LGPrior()
    raise ParameterError(f"prior: no conjugate prior for {type(model).__name__}; pass one with names/values/draw")


class PosteriorChains(NamedTuple):
    """Parameter chains of Bayesian particle Gibbs.

    Attributes:
        samples: name -> ``(n_chains, n_draws)`` post-burn-in parameter draws.
        param_names: the names, in order.
        log_likelihoods: ``(n_chains, n_iter)`` log-likelihood estimates of the conditional sweeps.
        smoothed_means: list (one per sequence) of ``(T, state_dim)`` posterior means of the states.
        last_models: the model at the last draw of each chain (warm start).
    """

    samples: dict
    param_names: tuple
    log_likelihoods: np.ndarray
    smoothed_means: list
    last_models: list

    def to_datatree(self):
        """The chains as an ArviZ ``DataTree`` (see :func:`statespace.diagnostics.to_datatree`)."""
        from statespace.diagnostics import to_datatree

        return to_datatree(self)


def bayesian_particle_gibbs(model, y, prior=None, n_iter=2000, n_particles=32, *, method="backward", n_chains=1,
                            burn_in=None, inputs=None, rng=None, progress=True, n_threads=None) -> PosteriorChains:
    """Sample :math:`p(\\theta, x \\mid y)` by particle Gibbs with conjugate parameter draws.

    Args:
        model: the starting point (its parameters initialise every chain).
        y: one sequence or a list.
        prior: :class:`SVPrior`, :class:`LGPrior` or any object with ``names(model)``,
            ``values(model)`` and ``draw(model, paths, data, rng)``; default, the model's.
        n_iter: iterations per chain; ``burn_in`` (default ``n_iter // 5``) are discarded.
        n_particles: N of each conditional sweep.
        method: ``"backward"`` or ``"ancestor"`` sampling.
        n_chains: independent chains in parallel threads.
    """
    n_iter = check_fit_options(n_iter, max_iter_name="n_iter")[0]
    burn_in = n_iter // 5 if burn_in is None else burn_in
    n_iter, n_particles, n_chains, burn_in = check_sampler_args(n_iter, n_particles, n_chains, burn_in)
    if method not in METHODS:
        raise ParameterError(f"method: expected one of {METHODS}, got {method!r}")
    prior = prior or default_prior(model)
    data = prepare(model, y, inputs)
    names = prior.names(model)
    bar = progress_bar(n_iter * n_chains, "Bayesian particle Gibbs", progress)

    def worker(c, g):
        m = model
        refs = [None] * len(data)
        draws = np.empty((n_iter - burn_in, len(names)))
        lls = np.empty(n_iter)
        sums = [np.zeros((len(s), m.kernels().state_dim)) for s, _ in data]
        for it in range(n_iter):
            k = m.kernels()
            lls[it] = 0.0
            for i, (yy, u) in enumerate(data):
                refs[i], lli = csmc_step(k, m.kernel_params(inputs=u), yy, refs[i], n_particles=n_particles,
                                         method=method if refs[i] is not None else "backward", rng=g)
                lls[it] += lli
            m = prior.draw(m, refs, data, g)
            if it >= burn_in:
                draws[it - burn_in] = prior.values(m)
                for i in range(len(data)):
                    sums[i] += refs[i]
            bar.update(1)
        return draws, lls, sums, m

    out = run_chains(worker, n_chains, rng, n_threads)
    bar.close()
    chains = np.stack([o[0] for o in out])
    n_tot = (n_iter - burn_in) * n_chains
    return PosteriorChains(
        samples={n: chains[:, :, j] for j, n in enumerate(names)},
        param_names=tuple(names),
        log_likelihoods=np.stack([o[1] for o in out]),
        smoothed_means=[sum(o[2][i] for o in out) / n_tot for i in range(len(data))],
        last_models=[o[3] for o in out],
    )
