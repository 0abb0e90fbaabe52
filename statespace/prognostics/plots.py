"""Plots for prognostics: health indicators by state, state posteriors, RUL predictions with intervals.

Every helper returns ``(fig, ax)``, draws on ``ax`` when given and never calls
``show()``; matplotlib is imported only here, inside the functions.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def plot_health_indicator(indicators, states=None, n_states: int | None = None, ax=None, max_engines: int = 20):
    """Health-indicator trajectories against cycles before the end, coloured by (most likely) state.

    Args:
        indicators: list of ``(T_i,)`` health indicators.
        states: optional list of ``(T_i,)`` integer states (e.g. argmax of smoothed probabilities).
        n_states: number of states for the colour scale (default ``max(states) + 1``).
        max_engines: draw at most this many engines.
    """
    fig, ax = _axes(ax, (8, 4.5))
    indicators = list(indicators)[:max_engines]
    if states is not None:
        states = list(states)[: len(indicators)]
        if len(states) != len(indicators):
            raise ShapeError(f"states: got {len(states)} state sequences for {len(indicators)} indicators")
        K = n_states or int(max(int(np.max(s)) for s in states)) + 1
    for i, h in enumerate(indicators):
        h = np.asarray(h, dtype=np.float64).ravel()
        x = np.arange(len(h)) - (len(h) - 1)
        ax.plot(x, h, color="0.8", lw=0.6, zorder=1)
        if states is not None:
            s = np.asarray(states[i]).ravel()
            if len(s) != len(h):
                raise ShapeError(f"states[{i}]: length {len(s)} but indicator has {len(h)} cycles")
            sc = ax.scatter(x, h, c=s, cmap="viridis", vmin=0, vmax=max(K - 1, 1), s=4, zorder=2)
    if states is not None and indicators:
        fig.colorbar(sc, ax=ax, label="most likely state")
    ax.set_xlabel("cycles relative to the last one")
    ax.set_ylabel("health indicator")
    return fig, ax


def plot_state_posterior(probs, ax=None, title: str | None = None):
    """Heatmap of state probabilities ``(T, K)`` over time."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ShapeError(f"probs: expected a (T, K) array, got shape {probs.shape}")
    fig, ax = _axes(ax, (8, 3.5))
    im = ax.imshow(probs.T, aspect="auto", origin="lower", cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="probability")
    ax.set_xlabel("cycle")
    ax.set_ylabel("state")
    if title:
        ax.set_title(title)
    return fig, ax


def plot_rul_predictions(rul, lower, upper, true=None, ax=None, sort: bool = True, label: str = "90% interval"):
    """Point forecasts with intervals per engine, optionally against the true RULs.

    Engines are sorted by true RUL when given (else by the forecast) so that the
    picture reads as a calibration plot.
    """
    rul, lower, upper = (np.asarray(a, dtype=np.float64).ravel() for a in (rul, lower, upper))
    if not (rul.shape == lower.shape == upper.shape):
        raise ShapeError(f"rul, lower, upper: expected the same length, got {rul.size}, {lower.size}, {upper.size}")
    fig, ax = _axes(ax, (10, 4.5))
    key = np.asarray(true, dtype=np.float64).ravel() if true is not None else rul
    order = np.argsort(key, kind="stable") if sort else np.arange(len(rul))
    x = np.arange(len(rul))
    ax.fill_between(x, lower[order], upper[order], color="C0", alpha=0.25, step="mid", label=label)
    ax.plot(x, rul[order], "o", ms=3, color="C0", label="predicted RUL")
    if true is not None:
        ax.plot(x, key[order], "k_", ms=8, label="true RUL")
    ax.set_xlabel("engine (sorted)")
    ax.set_ylabel("RUL (cycles)")
    ax.legend(loc="upper left")
    return fig, ax
