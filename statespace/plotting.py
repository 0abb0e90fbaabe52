"""Matplotlib helpers: latent states with credible bands, learning curves.

They return the figure and axes (never call ``show()``) so they work the same in
scripts, notebooks and tests; matplotlib is imported only when one is called::

    from statespace import LinearGaussianSSM
    from statespace.plotting import plot_states, plot_learning_curve
    model = LinearGaussianSSM(m0=[0.0], P0=[[1.0]], F=[[0.95]], Q=[[0.1]], H=[[1.0]], R=[[0.5]])
    x, y = model.sample(200, rng=0)
    fig, axes = plot_states(model.smooth(y), truth=x)
    fig.savefig("states.png")

Any result with ``smoothed_means``/``filtered_means`` and matching
``*_covs`` (``(T, d, d)``) or ``*_vars`` (``(T, d)``) fields can be drawn: the
Kalman and RTS results, and the particle smoothers of :mod:`smc`.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ShapeError


def _moments(result, which: str):
    kinds = ("smoothed", "filtered") if which == "auto" else (which,)
    for kind in kinds:
        mean = getattr(result, f"{kind}_means", None)
        if mean is None:
            continue
        covs = getattr(result, f"{kind}_covs", None)
        if covs is not None:
            return kind, np.asarray(mean), np.diagonal(np.asarray(covs), axis1=1, axis2=2)
        var = getattr(result, f"{kind}_vars", None)
        if var is not None:
            return kind, np.asarray(mean), np.asarray(var)
    raise ShapeError(
        f"result: expected fields {kinds[0]}_means and {kinds[0]}_covs (or _vars), got {type(result).__name__}"
    )


def plot_states(
    result, truth=None, *, which: str = "auto", dims=None, level: float = 0.95, times=None, labels=None, axes=None
):
    """Posterior means of the latent states with central credible bands, one panel per dimension.

    Args:
        result: a filter or smoother result (see the module docstring).
        truth: optional ``(T, d)`` true states drawn as dots.
        which: ``"smoothed"``, ``"filtered"`` or ``"auto"`` (smoothed if present).
        dims: state coordinates to draw (default: all).
        level: probability of the Gaussian credible band, in ``(0, 1)``.
        times: optional ``(T,)`` x-axis values.
        labels: optional names of the coordinates.
        axes: optional sequence of axes to draw on (one per coordinate).

    Returns:
        ``(fig, axes)``.
    """
    from scipy.stats import norm

    if not 0.0 < level < 1.0:
        raise ShapeError(f"level: expected a probability in (0, 1), got {level}")
    kind, mean, var = _moments(result, which)
    T, d = mean.shape
    dims = list(range(d)) if dims is None else [int(i) for i in dims]
    for i in dims:
        if not 0 <= i < d:
            raise ShapeError(f"dims: coordinate {i} out of range for a {d}-dimensional state")
    t = np.arange(T) if times is None else np.asarray(times)
    if t.shape != (T,):
        raise ShapeError(f"times: expected shape ({T},), got {t.shape}")
    if truth is not None:
        truth = np.asarray(truth, dtype=float).reshape(T, -1)
    z = norm.ppf(0.5 + level / 2)
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(dims), 1, figsize=(8, 1.8 * len(dims) + 0.6), sharex=True, squeeze=False)
        axes = axes[:, 0]
    else:
        axes = np.atleast_1d(axes)
        if len(axes) != len(dims):
            raise ShapeError(f"axes: expected {len(dims)} axes (one per coordinate), got {len(axes)}")
        fig = axes[0].figure
    for ax, i in zip(axes, dims):
        sd = np.sqrt(np.maximum(var[:, i], 0.0))
        ax.fill_between(t, mean[:, i] - z * sd, mean[:, i] + z * sd, alpha=0.3, lw=0, label=f"{level:.0%} band")
        ax.plot(t, mean[:, i], lw=1.2, label=f"{kind} mean")
        if truth is not None:
            ax.plot(t, truth[:, i], ".", ms=2, color="k", label="truth")
        ax.set_ylabel(labels[i] if labels is not None else f"x[{i}]")
    axes[0].legend(loc="upper right", fontsize="small", ncols=3)
    axes[-1].set_xlabel("t")
    return fig, axes


def plot_learning_curve(fit, ax=None, *, per_observation: int | None = None):
    """The objective per EM / learning iteration (a ``FitResult`` or an array).

    ``per_observation`` divides by that number of observations, which makes
    curves of different data sets comparable. Returns ``(fig, ax)``.
    """
    lls = np.asarray(getattr(fit, "log_likelihoods", fit), dtype=float)
    if lls.ndim != 1 or lls.size == 0:
        raise ShapeError(f"fit: expected a FitResult or a 1-D array of log-likelihoods, got shape {lls.shape}")
    if per_observation:
        lls = lls / per_observation
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
    ax.plot(np.arange(lls.size), lls, marker="o" if lls.size <= 30 else None, ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("log-likelihood" + (" per observation" if per_observation else ""))
    if math.isfinite(lls[-1]):
        ax.set_title(f"final {lls[-1]:.6g}", fontsize="small")
    return fig, ax
