"""Plots for jump processes: the state posterior over continuous time as a heatmap.

matplotlib is imported inside the function (``import hmm`` stays fast); the
figure is returned and never shown::

    import numpy as np
    from hmm.markov_jump import MarkovJumpProcess, NoisyLabels, plot_posterior
    model = MarkovJumpProcess(np.array([[-1.0, 1.0], [0.5, -0.5]]), observation=NoisyLabels.uniform_replacement(2, 0.1))
    times = np.linspace(0.0, 10.0, 30)
    _, y, true_path = model.sample(times=times, rng=0, return_paths=True)
    q = np.linspace(times[0], times[-1], 400)
    res = model.smooth(y, times=times, query_times=q)
    fig, ax = plot_posterior(res.query_probs, q, obs_times=times, y=y, path=true_path)
"""

from __future__ import annotations

import numpy as np

from statespace.errors import ShapeError


def plot_posterior(probs, query_times, obs_times=None, y=None, path=None, ax=None, cmap: str = "Greys"):
    """Heatmap of ``p(x(s) = k | y)`` over ``query_times`` (rows: states), with overlays.

    Args:
        probs: ``(S, K)`` marginals at the ``S`` query times (``smooth(..., query_times=...)``).
        query_times: ``(S,)`` increasing times.
        obs_times, y: observation times and state-coded observations (labels), drawn as dots.
        path: a true or sampled path ``(jump_times, states)`` drawn as a step line.
        ax: axes to draw on (a new figure when omitted).

    Returns:
        ``(figure, axes)``.
    """
    import matplotlib.pyplot as plt

    probs = np.asarray(probs, dtype=np.float64)
    q = np.asarray(query_times, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != q.shape[0]:
        raise ShapeError(f"probs: expected shape ({q.shape[0]}, K) to match query_times, got {probs.shape}")
    K = probs.shape[1]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 0.5 * K + 1.5))
    edges = np.concatenate([[q[0]], 0.5 * (q[1:] + q[:-1]), [q[-1]]])
    mesh = ax.pcolormesh(edges, np.arange(K + 1) - 0.5, probs.T, cmap=cmap, vmin=0.0, vmax=1.0, shading="flat")
    fig.colorbar(mesh, ax=ax, label="posterior probability")
    if path is not None:
        jt, js = path
        ts = np.concatenate([[q[0]], np.asarray(jt), [q[-1]]])
        ax.step(ts, np.concatenate([js, [js[-1]]]), where="post", color="tab:red", lw=1.2, label="path")
    if obs_times is not None and y is not None:
        v = np.asarray(y, dtype=np.float64).reshape(len(obs_times), -1)[:, 0]
        ax.plot(np.asarray(obs_times), v, "o", ms=3, color="tab:blue", label="observations")
    ax.set_xlabel("time")
    ax.set_ylabel("state")
    ax.set_yticks(range(K))
    if path is not None or y is not None:
        ax.legend(loc="upper right", fontsize="small")
    return fig, ax
