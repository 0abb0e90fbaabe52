"""MCMC and learning diagnostics: ArviZ 1.x ``DataTree`` conversion and plots.

Particle Gibbs chains (trajectories or parameters), PPG estimator chains and
particle-learning traces convert to an ArviZ ``DataTree`` whose ``posterior``
group has ``chain`` and ``draw`` dimensions and named coordinates, so that
``arviz.rhat``, ``arviz.ess``, ``arviz.summary``, ``arviz.plot_trace`` and
``arviz.plot_rank`` work on them directly::

    import arviz as az
    from statespace.diagnostics import to_datatree, trace_plot
    dt = to_datatree(post)            # post = smc.learning.bayesian_particle_gibbs(...)
    az.summary(dt); az.rhat(dt)
    trace_plot(dt)

Parameter names such as ``"F[0,1]"`` become one variable ``F`` with dimensions
``F_dim_0, F_dim_1``. Sampler by-products (log-likelihood estimates of the
sweeps, particle-steps) go to the ``sample_stats`` group. arviz and matplotlib
are imported only inside these functions (``import statespace`` stays fast);
plots return their figure/collection and never call ``show()``.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import ShapeError

_INDEXED = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<idx>[0-9,\s]+)\]$")


def _group_names(samples: dict) -> tuple[dict, dict, dict]:
    """Variables, dims and coords from ``name -> (chain, draw)`` arrays, stacking ``X[i,j]`` entries."""
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
    return data, dims, coords


def to_datatree(obj, *, state_names=None):
    """Convert sampler or learning output to an ArviZ ``DataTree``.

    Accepts: :class:`~smc.learning.bayesian_gibbs.PosteriorChains` (parameter chains),
    :class:`~smc.csmc.ParticleGibbsResult` (trajectory chains: variable ``x`` with
    dims ``time, state``), :class:`~smc.ppg.PPGResult` (per-iteration estimates:
    variable ``estimate`` with dim ``component``), a
    :class:`~smc.learning.LearningResult` or a list of them (one chain each,
    ``draw`` = iteration, the start included), or a dict ``name -> (chain, draw, ...)``.
    """
    import arviz as az

    kind = type(obj).__name__
    sample_stats = None
    dims: dict = {}
    coords: dict = {}
    if isinstance(obj, dict):
        posterior, dims, coords = _group_names(obj)
        for k, v in posterior.items():
            if v.ndim < 2:
                raise ShapeError(f"{k}: expected an array with leading (chain, draw) dimensions, got shape {v.shape}")
    elif kind == "PosteriorChains":
        posterior, dims, coords = _group_names(obj.samples)
        n_draws = next(iter(obj.samples.values())).shape[1]
        sample_stats = {"log_likelihood_estimate": obj.log_likelihoods[:, -n_draws:]}
    elif kind == "ParticleGibbsResult":
        if obj.trajectories is None:
            raise ShapeError("trajectories: the chain was run with store_paths=False; nothing to convert")
        T, d = obj.trajectories.shape[2:]
        posterior = {"x": obj.trajectories}
        dims = {"x": ["time", "state"]}
        coords = {"time": np.arange(T), "state": list(state_names) if state_names else np.arange(d)}
        n_draws = obj.trajectories.shape[1]
        sample_stats = {"log_likelihood_estimate": obj.log_likelihoods[:, -n_draws:]}
    elif kind == "PPGResult":
        posterior = {"estimate": obj.estimates}
        dims = {"estimate": ["component"]}
        coords = {"component": np.arange(obj.estimates.shape[2])}
        sample_stats = {"log_likelihood_estimate": obj.log_likelihoods}
    elif kind == "LearningResult" or (isinstance(obj, (list, tuple)) and obj and type(obj[0]).__name__ == "LearningResult"):
        runs = [obj] if kind == "LearningResult" else list(obj)
        lengths = {r.trace.shape for r in runs}
        if len(lengths) != 1:
            raise ShapeError(f"results: learning traces must have equal shapes to be chains, got {sorted(lengths)}")
        trace = np.stack([r.trace for r in runs])
        posterior, dims, coords = _group_names({n: trace[:, :, j] for j, n in enumerate(runs[0].param_names)})
        ll = np.stack([np.concatenate([[np.nan], r.log_likelihoods]) for r in runs])
        steps = np.stack([np.concatenate([[0.0], r.particle_steps]) for r in runs])
        sample_stats = {"log_likelihood_estimate": ll, "particle_steps": steps}
    else:
        raise ShapeError(f"obj: cannot convert {kind} to a DataTree")
    groups = {"posterior": posterior}
    if sample_stats is not None:
        groups["sample_stats"] = sample_stats
    return az.from_dict(groups, dims=dims or None, coords=coords or None)


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

    runs = [results] if type(results).__name__ == "LearningResult" else list(results)
    if x not in ("iteration", "particle_steps"):
        raise ShapeError(f"x: expected 'iteration' or 'particle_steps', got {x!r}")
    labels = labels or [f"run {i}" for i in range(len(runs))]
    names = runs[0].param_names
    n = len(names) + 1
    fig, axes = plt.subplots(n, 1, figsize=(6.5, 1.8 * n), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for r, lab in zip(runs, labels):
        xs = np.arange(len(r.trace)) if x == "iteration" else np.concatenate([[0.0], r.particle_steps])
        for j, name in enumerate(names):
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
