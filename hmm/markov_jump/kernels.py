r"""Compiled per-particle kernels of a Markov jump process (the shared interface).

The state is the code in ``x[0]``. For one sequence, ``kernel_params`` (see
:class:`~hmm.markov_jump.model.MarkovJumpProcess`) precomputes the transition
matrices ``P[t] = expm(Q (t_t - t_{t-1}))`` and their bounds
``log max_ij P[t][i, j] <= 0`` (what PaRIS's accept-reject needs), the
observation model's parameters (``kind``: exact states, labels, Gaussian
levels), and, for the sufficient statistics, the endpoint-conditioned expected
dwell times and jump counts per interval length.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace._numerics.categorical import draw
from statespace.interface import ModelKernels

from ..kernels import log_initial, sample_initial
from .observations import EXACT, LABELS


class MJPKernelParams(NamedTuple):
    """What the compiled kernels read for one sequence.

    ``pi0`` is the initial distribution (the field name of every discrete chain's kernel
    parameters, so the HMM family's ``sample_initial`` and ``log_initial`` serve here);
    ``P[t]`` moves the chain from observation ``t-1`` to ``t`` (``P[0]`` is the
    identity); ``log_bound[t] = log max_ij P[t][i, j]``;
    ``cond_stats[stat_index[t], a, b]`` holds the expected dwell times and jump
    counts of interval ``t`` given its end states (for ``sufficient_statistics``).
    """

    P: np.ndarray
    log_bound: np.ndarray
    pi0: np.ndarray
    kind: int
    log_emission: np.ndarray
    emission: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    stat_index: np.ndarray
    cond_stats: np.ndarray


@nb.njit(cache=True)
def _sample_transition(kp, t, x_prev, rng, x_out):
    x_out[0] = draw(kp.P[t, int(x_prev[0])], rng)


@nb.njit(cache=True)
def _log_transition(kp, t, x_prev, x):
    p = kp.P[t, int(x_prev[0]), int(x[0])]
    return math.log(p) if p > 0.0 else -np.inf


@nb.njit(cache=True)
def _log_transition_bound(kp, t):
    return kp.log_bound[t]


@nb.njit(cache=True)
def _log_emission(kp, t, x, y):
    v = y[t, 0]
    if math.isnan(v):
        return 0.0
    k = int(x[0])
    if kp.kind == EXACT:
        return 0.0 if v == k else -np.inf
    if kp.kind == LABELS:
        return kp.log_emission[k, int(v)]
    z = (v - kp.means[k]) / kp.stds[k]
    return -0.5 * (math.log(2.0 * math.pi) + z * z) - math.log(kp.stds[k])


@nb.njit(cache=True)
def _sample_emission(kp, t, x, y, rng, y_out):
    k = int(x[0])
    if kp.kind == EXACT:
        y_out[0] = k
    elif kp.kind == LABELS:
        y_out[0] = draw(kp.emission[k], rng)
    else:
        y_out[0] = kp.means[k] + kp.stds[k] * rng.standard_normal()


@nb.njit(cache=True)
def _emission_stats(kp, t, x, y, out, offset):
    v = y[t, 0]
    if math.isnan(v) or kp.kind == EXACT:
        return
    k = int(x[0])
    if kp.kind == LABELS:
        out[offset + k * kp.emission.shape[1] + int(v)] = 1.0
    else:
        out[offset + 3 * k] = 1.0
        out[offset + 3 * k + 1] = v
        out[offset + 3 * k + 2] = v * v


@nb.njit(cache=True)
def _stats_initial(kp, x, y, out):
    K = kp.pi0.shape[0]
    out[:] = 0.0
    out[int(x[0])] = 1.0
    _emission_stats(kp, 0, x, y, out, 2 * K + K * K)


@nb.njit(cache=True)
def _stats_step(kp, t, x_prev, x, y, out):
    K = kp.pi0.shape[0]
    out[:] = 0.0
    row = kp.cond_stats[kp.stat_index[t], int(x_prev[0]), int(x[0])]
    for i in range(K + K * K):
        out[K + i] = row[i]
    _emission_stats(kp, t, x, y, out, 2 * K + K * K)


_KERNELS = ModelKernels(
    sample_initial=sample_initial,
    log_initial=log_initial,
    sample_transition=_sample_transition,
    log_transition=_log_transition,
    log_transition_bound=_log_transition_bound,
    log_emission=_log_emission,
    sample_emission=_sample_emission,
    state_dim=1,
    obs_dim=1,
    n_states=0,
)
