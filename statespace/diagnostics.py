"""MCMC and learning diagnostics: ArviZ 1.x ``DataTree`` conversion and plots.

Particle Gibbs chains (trajectories or parameters), PPG estimator chains and
particle-learning traces convert to an ArviZ ``DataTree`` whose ``posterior``
group has ``chain`` and ``draw`` dimensions and named coordinates, so that
``arviz.rhat``, ``arviz.ess``, ``arviz.summary``, ``arviz.plot_trace`` and
``arviz.plot_rank`` work on them directly::

    import arviz as az
    from smc.learning import SVPrior, bayesian_particle_gibbs
    from statespace import StochasticVolatility
    from statespace.diagnostics import to_datatree, trace_plot
    x, y = StochasticVolatility(-1.0, 0.95, 0.3).sample(200, rng=0)
    post = bayesian_particle_gibbs(StochasticVolatility(0.0, 0.8, 0.5), y, SVPrior(), n_iter=100, n_chains=2, rng=1)
    dt = to_datatree(post)
    az.summary(dt); az.rhat(dt)
    trace_plot(dt)

Parameter names such as ``"F[0,1]"`` become one variable ``F`` with dimensions
``F_dim_0, F_dim_1``. Each result class says what it holds through one method,
``datatree_groups`` (see :class:`DataTreeGroups`), so a new sampler joins with no change
here. Sampler by-products (log-likelihood estimates of the
sweeps, particle-steps) go to the ``sample_stats`` group. arviz and matplotlib
are imported only inside these functions (``import statespace`` stays fast);
plots return their figure/collection and never call ``show()``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from .errors import ShapeError

_INDEXED = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<idx>[0-9,\s]+)\]$")


class DataTreeGroups(NamedTuple):
    """What a result holds for an ArviZ ``DataTree``: the protocol of :func:`to_datatree`.

    A result class joins :func:`to_datatree` by a method ``datatree_groups(self, state_names=None)``
    returning one of these (the sampler and learning results of :mod:`smc` do).

    Attributes:
        posterior: variable name -> array with leading ``(chain, draw)`` dimensions.
        sample_stats: sampler by-products, name -> ``(chain, draw)`` array; or ``None``.
        dims: variable name -> the names of its dimensions after ``(chain, draw)``.
        coords: dimension name -> its coordinate values.
    """

    posterior: dict
    sample_stats: dict | None
    dims: dict
    coords: dict

    @classmethod
    def from_samples(cls, samples: dict, sample_stats: dict | None = None) -> DataTreeGroups:
        """Groups from ``name -> (chain, draw)`` parameter draws, stacking entries ``"X[i,j]"`` into one variable ``X``.

        ``X`` gets the dimensions ``X_dim_0, X_dim_1, ...`` (integer coordinates); entries absent from
        ``samples`` are NaN.
        """
        data, dims, coords = {}, {}, {}
        indexed: dict = {}
        for name, arr in samples.items():
            m = _INDEXED.match(name)
            if m:
                idx = tuple(int(i) for i in m.group("idx").split(","))
                indexed.setdefault(m.group("base"), {})[idx] = np.asarray(arr, dtype=float)
            else:
                data[name] = np.asarray(arr, dtype=float)
        for base, entries in indexed.items():
            shape = tuple(max(i[k] for i in entries) + 1 for k in range(len(next(iter(entries)))))
            first = next(iter(entries.values()))
            full = np.full(first.shape + shape, np.nan)
            for idx, arr in entries.items():
                full[(Ellipsis,) + idx] = arr
            data[base] = full
            dims[base] = [f"{base}_dim_{k}" for k in range(len(shape))]
            for k, n in enumerate(shape):
                coords[f"{base}_dim_{k}"] = np.arange(n)
        return cls(data, sample_stats, dims, coords)


def _stack_chains(parts: list) -> DataTreeGroups:
    """One :class:`DataTreeGroups` from several results, concatenated along ``chain``."""
    first = parts[0]
    stacked = []
    for group in ("posterior", "sample_stats"):
        if getattr(first, group) is None:
            stacked.append(None)
            continue
        out = {}
        for name in getattr(first, group):
            arrs = [getattr(g, group)[name] for g in parts]
            shapes = {a.shape[1:] for a in arrs}
            if len(shapes) != 1:
                raise ShapeError(
                    f"obj: the results must have equal shapes to be chains; {name} has "
                    f"(draw, ...) shapes {sorted(shapes)}"
                )
            out[name] = np.concatenate(arrs, axis=0)
        stacked.append(out)
    return DataTreeGroups(stacked[0], stacked[1], first.dims, first.coords)


def to_datatree(obj, *, state_names=None):
    """Convert sampler or learning output to an ArviZ ``DataTree``.

    Accepts a dict ``name -> (chain, draw, ...)`` array, any result with a
    ``datatree_groups(state_names=None)`` method returning :class:`DataTreeGroups`, or a list
    of such results (stacked as chains). The results of :mod:`smc` have one:
    :class:`~smc.learning.PosteriorChains` (parameter chains),
    :class:`~smc.csmc.ParticleGibbsResult` (trajectory chains: variable ``x`` with
    dims ``time, state``, named by ``state_names``), :class:`~smc.ppg.PPGResult` (per-iteration
    estimates: variable ``estimate`` with dim ``component``) and
    :class:`~smc.learning.LearningResult` (one chain, ``draw`` = iteration, the start included;
    a list of them is one chain each).
    """
    import arviz as az

    if isinstance(obj, dict):
        groups = DataTreeGroups.from_samples(obj)
        for k, v in groups.posterior.items():
            if v.ndim < 2:
                raise ShapeError(f"{k}: expected an array with leading (chain, draw) dimensions, got shape {v.shape}")
    elif hasattr(obj, "datatree_groups"):
        groups = obj.datatree_groups(state_names=state_names)
    elif isinstance(obj, (list, tuple)) and obj and all(hasattr(o, "datatree_groups") for o in obj):
        groups = _stack_chains([o.datatree_groups(state_names=state_names) for o in obj])
    else:
        raise ShapeError(
            f"obj: cannot convert {type(obj).__name__} to a DataTree; expected a dict of "
            "(chain, draw, ...) arrays, a result with datatree_groups(), or a list of such results"
        )
    out = {"posterior": groups.posterior}
    if groups.sample_stats is not None:
        out["sample_stats"] = groups.sample_stats
    return az.from_dict(out, dims=groups.dims or None, coords=groups.coords or None)


def trace_plot(dt, var_names=None, **kwargs):
    """ArviZ trace plot (densities and traces per chain) of a ``DataTree``; returns the plot collection."""
    import arviz as az

    return az.plot_trace(dt, var_names=var_names, backend="matplotlib", **kwargs)


def rank_plot(dt, var_names=None, **kwargs):
    """ArviZ rank (ECDF of ranks) plot, the mixing check of Vehtari et al. (2021)."""
    import arviz as az

    return az.plot_rank(dt, var_names=var_names, backend="matplotlib", **kwargs)


def learning_curve_plot(results, labels=None, *, x="iteration", truth=None):
    """Parameter traces and log-likelihood estimates of particle learning runs.

    Args:
        results: a :class:`~smc.learning.LearningResult` or a list of them (one line each).
        labels: legend labels.
        x: ``"iteration"`` or ``"particle_steps"`` on the horizontal axis.
        truth: optional ``name -> value`` drawn as horizontal lines.

    Returns ``(figure, axes)``; one panel per parameter plus one for the log-likelihood.
    """
    import matplotlib.pyplot as plt

    runs = [results] if hasattr(results, "trace") else list(results)
    if x not in ("iteration", "particle_steps"):
        raise ShapeError(f"x: expected 'iteration' or 'particle_steps', got {x!r}")
    labels = labels or [f"run {i}" for i in range(len(runs))]
    names = runs[0].param_names
    n = len(names) + 1
    fig, axes = plt.subplots(n, 1, figsize=(6.5, 1.8 * n), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for r, lab in zip(runs, labels):
        xs = np.arange(len(r.trace)) if x == "iteration" else np.concatenate([[0.0], r.particle_steps])
        for j in range(len(names)):
            axes[j].plot(xs, r.trace[:, j], label=lab, lw=1)
        axes[-1].plot(xs[1:], r.log_likelihoods, lw=0.8, label=lab)
    for j, name in enumerate(names):
        axes[j].set_ylabel(name)
        if truth and name in truth:
            axes[j].axhline(truth[name], color="k", ls="--", lw=0.8)
    axes[-1].set_ylabel("log-lik. est.")
    axes[-1].set_xlabel("iteration" if x == "iteration" else "particle-steps")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return fig, axes
