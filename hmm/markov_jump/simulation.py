r"""Exact simulation of Markov jump processes (Gillespie's algorithm).

From state ``i`` the chain waits :math:`\tau \sim \mathrm{Exp}(-q_{ii})` and
jumps to ``j`` with probability :math:`q_{ij}/(-q_{ii})`; an absorbing state
(:math:`q_{ii} = 0`) stays forever. Observing the path at given times reads the
state holding at each time. Every path may have its own observation grid::

    import numpy as np
    from hmm.markov_jump import MJPParams, sample_paths
    p = MJPParams(np.array([[-1.0, 1.0], [0.5, -0.5]]))
    grids = [np.sort(np.random.default_rng(0).uniform(0, 10, 20)) for _ in range(3)]
    states, paths = sample_paths(p, grids, rng=1)   # states[i] has the shape of grids[i]
"""

from __future__ import annotations

import numba as nb
import numpy as np

from statespace._numerics.categorical import draw
from statespace.validation import as_rng

from .expectations import check_path_length, generator_expm, path_too_long
from .generator import MJPParams
from .observations import as_time_grids, check_times


@nb.njit(cache=True)
def gillespie(Q, x0, t0, t1, rng):
    """A path on ``[t0, t1]`` from ``x0``: ``(jump_times, states)``, ``states[0] = x0``."""
    K = Q.shape[0]
    times = [t0]
    states = [x0]
    t = t0
    x = x0
    probs = np.empty(K)
    while True:
        rate = -Q[x, x]
        if rate <= 0.0:
            break
        t += rng.exponential(1.0 / rate)
        if t >= t1:
            break
        for k in range(K):
            probs[k] = Q[x, k] / rate if k != x else 0.0
        x = draw(probs, rng)
        times.append(t)
        states.append(x)
    jt = np.empty(len(times) - 1)
    js = np.empty(len(states), dtype=np.int64)
    for i in range(len(states)):
        js[i] = states[i]
        if i > 0:
            jt[i - 1] = times[i]
    return jt, js


@nb.njit(cache=True)
def states_at(jump_times, states, times):
    """The state holding at each of ``times`` on a path ``(jump_times, states)``."""
    out = np.empty(times.shape[0], dtype=np.int64)
    j = 0
    for i in range(times.shape[0]):
        while j < jump_times.shape[0] and jump_times[j] <= times[i]:
            j += 1
        out[i] = states[j]
    return out


def simulate(Q, x0: int, times, rng, name: str = "times", with_path: bool = True):
    """The states at ``times`` of a path started in ``x0`` at ``times[0]``, and the path.

    Returns ``(states (T,), (jump_times, path_states))``, or ``(states, None)``
    without ``with_path``. Gillespie's algorithm runs over each stretch of the
    grid; an interval so long that its path would hold more than
    :data:`~hmm.markov_jump.expectations.MAX_PATH_JUMPS` expected jumps is
    crossed in one exact draw from ``P(dt) = exp(Q dt)`` (the stationary law,
    for a gap long enough), so only paths, never states, are refused over it.
    """
    Q = np.asarray(Q)
    long = path_too_long(Q, np.diff(times))
    if not long.any():
        jt, js = gillespie(Q, int(x0), times[0], times[-1], rng)
        return states_at(jt, js, times), ((jt, js) if with_path else None)
    if with_path:
        i = int(np.argmax(long)) + 1
        check_path_length(f"{name}[{i}] - {name}[{i - 1}]", Q, float(times[i] - times[i - 1]))
    out = np.empty(len(times), dtype=np.int64)
    cuts = np.flatnonzero(long) + 1
    x = int(x0)
    for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts - 1, [len(times) - 1]])):
        if a > 0:
            x = int(draw(generator_expm(Q, float(times[a] - times[a - 1]))[x], rng))
        jt, js = gillespie(Q, x, times[a], times[b], rng)
        out[a : b + 1] = states_at(jt, js, times[a : b + 1])
        x = int(out[b])
    return out, None


def sample_path(params: MJPParams, times, rng=None):
    """One exact path observed at ``times``: ``(states (T,), (jump_times, path_states))``.

    The chain starts at ``times[0]`` from ``params.initial``.
    """
    times = check_times("times", times)
    rng = as_rng(rng)
    x0 = draw(np.asarray(params.initial), rng)
    return simulate(params.Q, x0, times, rng)


def sample_paths(params: MJPParams, times, rng=None):
    """Exact paths, one per observation grid in ``times`` (one grid, or a list of grids: see
    ``as_time_grids``).

    Returns ``(states, paths)``: ``states[i]`` (int array, the shape of ``times[i]``)
    and ``paths[i] = (jump_times, path_states)``. One grid gives unwrapped results.
    """
    rng = as_rng(rng)
    grids, single = as_time_grids("times", times)
    out = []
    for i, g in enumerate(grids):
        x0 = draw(np.asarray(params.initial), rng)
        out.append(simulate(params.Q, x0, g, rng, "times" if single else f"times[{i}]"))
    states = [o[0] for o in out]
    paths = [o[1] for o in out]
    return (states[0], paths[0]) if single else (states, paths)
