r"""Compiled per-particle kernels shared by the learned HMM components.

Kernel parameters carry ``pi0 (K,)``, transition matrices ``A (S, K, K)`` with ``S == 1``
(time-invariant) or one per step (``A[t-1]`` moves the chain to ``t``), and diagonal
Gaussian emission ``means, sds (S', K, d)`` with ``S' == 1`` or one per step ``t``.
:class:`hmm.learned_emission.LearnedEmissionHMM` has one ``A`` and per-step emissions
(computed by its network from the observed history); :class:`hmm.io_hmm.IOHMM` has
per-step ``A`` (from its network over the inputs) and one emission. NaN coordinates of
``y`` are marginalised; the state is ``x[0] = k``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace._numerics.categorical import draw

from .kernels import log_initial, sample_initial

_LOG_2PI = math.log(2.0 * math.pi)


class ChainKernelParams(NamedTuple):
    """``pi0 (K,)``, ``A (S, K, K)``, ``means (S', K, d)``, ``sds (S', K, d)`` (see the module docstring)."""

    pi0: np.ndarray
    A: np.ndarray
    means: np.ndarray
    sds: np.ndarray


@nb.njit(cache=True)
def _A(kp, t):
    return kp.A[t - 1] if kp.A.shape[0] > 1 else kp.A[0]


@nb.njit(cache=True)
def sample_transition(kp, t, x_prev, rng, x_out):
    x_out[0] = draw(_A(kp, t)[int(x_prev[0])], rng)


@nb.njit(cache=True)
def log_transition(kp, t, x_prev, x):
    p = _A(kp, t)[int(x_prev[0]), int(x[0])]
    return math.log(p) if p > 0 else -np.inf


@nb.njit(cache=True)
def log_transition_bound(kp, t):
    At = _A(kp, t)
    best = 0.0
    for i in range(At.shape[0]):
        for j in range(At.shape[1]):
            if At[i, j] > best:
                best = At[i, j]
    return math.log(best) if best > 0 else -np.inf


@nb.njit(cache=True)
def log_emission(kp, t, x, y):
    k = int(x[0])
    s = t if kp.means.shape[0] > 1 else 0
    out = 0.0
    for j in range(y.shape[1]):
        v = y[t, j]
        if not math.isnan(v):
            sd = kp.sds[s, k, j]
            r = (v - kp.means[s, k, j]) / sd
            out += -0.5 * _LOG_2PI - math.log(sd) - 0.5 * r * r
    return out


@nb.njit(cache=True)
def sample_emission(kp, t, x, y, rng, y_out):
    k = int(x[0])
    s = t if kp.means.shape[0] > 1 else 0
    for j in range(y_out.shape[0]):
        y_out[j] = kp.means[s, k, j] + kp.sds[s, k, j] * rng.standard_normal()


def chain_kernels(obs_dim: int, n_states: int):
    """The :class:`~statespace.interface.ModelKernels` of a learned HMM component."""
    from statespace.interface import ModelKernels

    return ModelKernels(
        sample_initial,
        log_initial,
        sample_transition,
        log_transition,
        log_transition_bound,
        log_emission,
        sample_emission,
        state_dim=1,
        obs_dim=obs_dim,
        n_states=n_states,
    )
