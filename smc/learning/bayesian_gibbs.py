r"""Bayesian particle Gibbs: trajectories by conditional SMC, parameters from conjugate conditionals.

The chain alternates, for the posterior :math:`p(\theta, x_{0:T} \mid y)`,

.. math::

    x \sim \text{CSMC}_\theta(x_\text{prev}, \cdot) \quad\text{(backward or ancestor sampling)}, \qquad
    \theta \sim p(\theta \mid x, y),

(Andrieu, Doucet & Holenstein 2010; Lindsten, Jordan & Schon 2014). Both moves
leave the joint posterior invariant, so the parameter draws form an MCMC chain
for :math:`p(\theta \mid y)`.

The parameter move is the prior object's ``draw(model, paths, data, rng)``: the
model owns its default through the hook
:meth:`~statespace.interface.StateSpaceModel.gibbs_prior`. Two conjugate ones ship
beside their models: :class:`~smc.learning.SVPrior` (normal
:math:`\mu`, truncated-normal :math:`\phi` by independence Metropolis-within-Gibbs,
inverse-gamma :math:`\sigma^2`) and :class:`~smc.learning.LGPrior`
(normal :math:`F`, inverse-Wishart :math:`Q, R`); their docstrings give the conditionals.

Example::

    from statespace import StochasticVolatility
    from smc.learning import bayesian_particle_gibbs, SVPrior
    x, y = StochasticVolatility(-1.0, 0.95, 0.3).sample(200, rng=0)
    post = bayesian_particle_gibbs(StochasticVolatility(0.0, 0.8, 0.5), y, SVPrior(), n_iter=100, n_chains=2, rng=1)
    post.samples["phi"].mean()
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from statespace.diagnostics import DataTreeGroups, to_datatree
from statespace.errors import ParameterError
from statespace.linear_gaussian.learning import LGPrior
from statespace.progress import progress_bar
from statespace.stochastic_volatility import SVPrior
from statespace.validation import check_fit_options

from ..csmc import METHODS, check_sampler_args, csmc_step, run_chains
from ._engine import prepare

__all__ = ["LGPrior", "PosteriorChains", "SVPrior", "bayesian_particle_gibbs"]


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

    def datatree_groups(self, state_names=None) -> DataTreeGroups:
        """The parameter draws as ``posterior`` variables (``"F[i,j]"`` stacked into ``F``) and the
        sweeps' log-likelihood estimates of the kept draws as ``sample_stats``; ``state_names`` is unused."""
        n_draws = next(iter(self.samples.values())).shape[1]
        return DataTreeGroups.from_samples(
            self.samples, {"log_likelihood_estimate": self.log_likelihoods[:, -n_draws:]}
        )

    def to_datatree(self):
        """The chains as an ArviZ ``DataTree`` (see :func:`statespace.diagnostics.to_datatree`)."""
        return to_datatree(self)


def bayesian_particle_gibbs(
    model,
    y,
    prior=None,
    n_iter=2000,
    n_particles=32,
    *,
    method="backward",
    n_chains=1,
    burn_in=None,
    inputs=None,
    rng=None,
    progress=True,
    n_threads=None,
) -> PosteriorChains:
    """Sample :math:`p(\\theta, x \\mid y)` by particle Gibbs with conjugate parameter draws.

    Args:
        model: the starting point (its parameters initialise every chain).
        y: one sequence or a list.
        prior: :class:`SVPrior`, :class:`LGPrior` or any object with ``names(model)``,
            ``values(model)`` and ``draw(model, paths, data, rng)``; default, ``model.gibbs_prior()``.
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
    prior = prior or model.gibbs_prior()
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
                refs[i], lli = csmc_step(
                    k,
                    m.kernel_params(inputs=u),
                    yy,
                    refs[i],
                    n_particles=n_particles,
                    method=method if refs[i] is not None else "backward",
                    rng=g,
                )
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
