r"""Plots for particle methods: ESS and resampling over time, filtered/smoothed states with bands.

Bands are Gaussian-style :math:`m_t \pm z\, s_t` from the particle means and standard
deviations (``z = 1.96`` gives nominal 95%). Every function takes an optional ``ax``,
returns ``(fig, ax)`` and never calls ``show()``; matplotlib is imported on call so
``import smc`` stays fast::

    import smc
    from smc.plotting import plot_ess, plot_state_bands
    from statespace import StochasticVolatility
    model = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    x, y = model.sample(300, rng=0)
    res = smc.bootstrap_filter(model, y, 1000, rng=0)
    fig, ax = plot_ess(res, n_particles=1000)
    fig, ax = plot_state_bands(res.filtered_means[:, 0], res.filtered_covs[:, 0, 0] ** 0.5, label="filtered")
"""

from __future__ import annotations

import numpy as np


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3))
        return fig, ax
    return ax.figure, ax


def plot_ess(result, n_particles: int | None = None, ax=None, times=None):
    """Effective sample size per step, with the steps where resampling happened marked.

    Args:
        result: anything with ``ess`` and ``resampled`` arrays (:class:`~smc.ParticleFilterResult`,
            :class:`~smc.PaRISResult`).
        n_particles: draw the ``N`` line and label the axis as a fraction when given.
        times: x-axis values (default ``0..T-1``).
    """
    fig, ax = _axes(ax)
    ess = np.asarray(result.ess)
    t = np.arange(len(ess)) if times is None else np.asarray(times)
    ax.plot(t, ess, lw=1.0, color="C0", label="ESS")
    rs = np.asarray(result.resampled, dtype=bool)
    if rs.any():
        ax.plot(t[rs], ess[rs], "|", color="C3", ms=8, label="resampled before this step")
    if n_particles is not None:
        ax.axhline(n_particles, color="grey", lw=0.8, ls="--", label="N")
    ax.set_xlabel("t")
    ax.set_ylabel("effective sample size")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right", fontsize="small")
    return fig, ax


def plot_state_bands(
    means, sds, ax=None, times=None, label: str = "estimate", color=None, z: float = 1.96, truth=None, transform=None
):
    """A posterior mean with a ``mean +- z sd`` band, optionally over the true path.

    Args:
        means, sds: ``(T,)`` means and standard deviations of one state coordinate.
        transform: monotone function applied to the line and band ends (e.g.
            ``lambda x: np.exp(x / 2)`` turns a log-variance into a volatility).
        truth: ``(T,)`` true states, drawn in black (same transform).
    """
    fig, ax = _axes(ax)
    m, s = np.asarray(means, dtype=float), np.asarray(sds, dtype=float)
    t = np.arange(len(m)) if times is None else np.asarray(times)
    f = (lambda v: v) if transform is None else transform
    line = ax.plot(t, f(m), lw=1.2, color=color, label=label)[0]
    ax.fill_between(t, f(m - z * s), f(m + z * s), color=line.get_color(), alpha=0.25, lw=0)
    if truth is not None:
        ax.plot(t, f(np.asarray(truth, dtype=float)), color="k", lw=0.8, label="truth")
    ax.set_xlabel("t")
    ax.legend(loc="upper right", fontsize="small")
    return fig, ax
