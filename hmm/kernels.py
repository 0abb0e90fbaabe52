r"""Per-particle compiled kernels of the HMM family (the shared interface's compiled face).

The state is ``x[0] = k``, the state code stored as a float. Particle filters
run on an HMM through these functions, and the exact forward algorithm is
their oracle. ``log_emission`` includes ``log pl_t(k)`` when the kernel
parameters carry partial knowledge, so a particle filter targets the same
quantity as :func:`hmm.forward_backward.forward`. The additive functional
(:func:`stats_initial`, :func:`stats_step`) gives the complete-data sufficient
statistics in the flat layout that :meth:`hmm.model.HMM.m_step` reads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace._numerics.categorical import draw
from statespace._numerics.copy import copy_into

from . import emission_updates as eu
from . import emissions as em_

GAUSSIAN, CATEGORICAL = 0, 1


class HMMKernelParams(NamedTuple):
    """Numba-friendly parameters of one sequence (see :meth:`hmm.model.HMM.kernel_params`)."""

    pi0: np.ndarray
    A: np.ndarray  # (1, K, K)
    logA: np.ndarray
    log_pl: np.ndarray  # (T, K) or (0, K)
    kind: int
    lags: int
    W: np.ndarray
    chol: np.ndarray
    logdet: np.ndarray
    covs: np.ndarray
    mu0: np.ndarray
    chol0: np.ndarray
    logdet0: np.ndarray
    covs0: np.ndarray
    inputs: np.ndarray
    probs: np.ndarray
    logB: np.ndarray


def build(p, kind: str, lags: int, inputs: np.ndarray, log_pl: np.ndarray) -> HMMKernelParams:
    K = p.pi0.shape[0]
    with np.errstate(divide="ignore"):
        logA = np.log(p.A)[None]
    e = p.emission
    if kind == "categorical":
        z3, z2, z1 = np.zeros((K, 1, 1)), np.zeros((K, 1)), np.zeros(K)
        with np.errstate(divide="ignore"):
            logB = np.log(e.probs)
        return HMMKernelParams(
            p.pi0, p.A[None].copy(), logA, log_pl, CATEGORICAL, 0, z3, z3, z1, z3, z2, z3, z1, z3, inputs, e.probs, logB
        )
    chol, logdet = em_.cholesky_factors(e.covs)
    chol0, logdet0 = em_.cholesky_factors(e.init_covs)
    return HMMKernelParams(
        p.pi0,
        p.A[None].copy(),
        logA,
        log_pl,
        GAUSSIAN,
        int(lags),
        e.weights,
        chol,
        logdet,
        e.covs,
        e.init_means,
        chol0,
        logdet0,
        e.init_covs,
        inputs,
        np.zeros((K, 1)),
        np.zeros((K, 1)),
    )


@nb.njit(cache=True)
def sample_initial(kp, rng, x_out):
    x_out[0] = draw(kp.pi0, rng)


@nb.njit(cache=True)
def log_initial(kp, x):
    p = kp.pi0[int(x[0])]
    return math.log(p) if p > 0 else -np.inf


@nb.njit(cache=True)
def sample_transition(kp, t, x_prev, rng, x_out):
    x_out[0] = draw(kp.A[0, int(x_prev[0])], rng)


@nb.njit(cache=True)
def log_transition(kp, t, x_prev, x):
    return kp.logA[0, int(x_prev[0]), int(x[0])]


@nb.njit(cache=True)
def log_transition_bound(kp, t):
    return np.max(kp.logA[0])


@nb.njit(cache=True)
def _mean(kp, t, k, y, x, mean):
    """Fill the conditional mean; False when the initial Gaussian applies."""
    d = mean.shape[0]
    if not em_.regressor(y, kp.inputs, t, kp.lags, x):
        for j in range(d):
            mean[j] = kp.mu0[k, j]
        return False
    q = x.shape[0]
    for j in range(d):
        s = 0.0
        for i in range(q):
            s += kp.W[k, i, j] * x[i]
        mean[j] = s
    return True


@nb.njit(cache=True)
def log_emission(kp, t, x, y):
    k = int(x[0])
    extra = kp.log_pl[t, k] if t < kp.log_pl.shape[0] else 0.0
    if kp.kind == CATEGORICAL:
        v = y[t, 0]
        return extra if math.isnan(v) else extra + kp.logB[k, int(v)]
    d = y.shape[1]
    xr = np.empty(kp.W.shape[1])
    mean = np.empty(d)
    if _mean(kp, t, k, y, xr, mean):
        return extra + em_.gaussian_logpdf(y[t], mean, kp.covs[k], kp.chol[k], kp.logdet[k])
    return extra + em_.gaussian_logpdf(y[t], mean, kp.covs0[k], kp.chol0[k], kp.logdet0[k])


@nb.njit(cache=True)
def sample_emission(kp, t, x, y, rng, y_out):
    k = int(x[0])
    if kp.kind == CATEGORICAL:
        y_out[0] = draw(kp.probs[k], rng)
        return
    d = y.shape[1]
    xr = np.empty(kp.W.shape[1])
    mean = np.empty(d)
    L = kp.chol[k] if _mean(kp, t, k, y, xr, mean) else kp.chol0[k]
    z = np.empty(d)
    for j in range(d):
        z[j] = rng.standard_normal()
    for i in range(d):
        s = mean[i]
        for j in range(i + 1):
            s += L[i, j] * z[j]
        y_out[i] = s


@nb.njit(cache=True)
def rollouts(kp, y_ext, T, last_filtered, n_samples, rng):
    """Future paths: ``z_{T-1} ~ last_filtered``, then the chain and emissions for the remaining rows."""
    steps = y_ext.shape[0] - T
    d = y_ext.shape[1]
    states = np.empty((n_samples, steps), np.int64)
    obs = np.empty((n_samples, steps, d))
    ys = y_ext.copy()
    x = np.empty(1)
    for n in range(n_samples):
        x[0] = draw(last_filtered, rng)
        for h in range(steps):
            t = T + h
            x[0] = draw(kp.A[0, int(x[0])], rng)
            sample_emission(kp, t, x, ys, rng, ys[t])
            states[n, h] = int(x[0])
            copy_into(ys[t], obs[n, h])  # not a slice assignment: that compiles Numba's shape-mismatch message
    return states, obs


@nb.njit(cache=True)
def _emission_stats(kp, t, k, y, out, offset):
    K = kp.pi0.shape[0]
    if kp.kind == CATEGORICAL:
        v = y[t, 0]
        if not math.isnan(v):
            M = kp.probs.shape[1]
            out[offset + k * M + int(v)] += 1.0
        return
    q = kp.W.shape[1]
    d = y.shape[1]
    o = offset
    n = out[o : o + K]
    o += K
    Sxx = out[o : o + K * q * q].reshape((K, q, q))
    o += K * q * q
    Sxy = out[o : o + K * q * d].reshape((K, q, d))
    o += K * q * d
    Syy = out[o : o + K * d * d].reshape((K, d, d))
    o += K * d * d
    n0 = out[o : o + K]
    o += K
    s0 = out[o : o + K * d].reshape((K, d))
    o += K * d
    S00 = out[o : o + K * d * d].reshape((K, d, d))
    eu.ar_accumulate_step(y, kp.inputs, t, kp.lags, k, kp.W, kp.covs, kp.mu0, kp.covs0, n, Sxx, Sxy, Syy, n0, s0, S00)


@nb.njit(cache=True)
def stats_initial(kp, x, y, out):
    K = kp.pi0.shape[0]
    out[:] = 0.0
    k = int(x[0])
    out[k] = 1.0
    _emission_stats(kp, 0, k, y, out, K + K * K)


@nb.njit(cache=True)
def stats_step(kp, t, x_prev, x, y, out):
    K = kp.pi0.shape[0]
    out[:] = 0.0
    i = int(x_prev[0])
    j = int(x[0])
    out[K + i * K + j] = 1.0
    _emission_stats(kp, t, j, y, out, K + K * K)
