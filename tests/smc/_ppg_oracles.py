"""Oracles for the particle Gibbs / PPG / learning tests: a scalar linear-Gaussian model
written against the shared interface, with its exact Kalman filter and RTS smoother
(plain numpy, independent of the library's code under test)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace.interface import AdditiveFunctional, ModelKernels, StateSpaceModel

_LOG_2PI = math.log(2.0 * math.pi)


class ScalarLGParams(NamedTuple):
    F: float
    Q: float
    R: float
    m0: float
    P0: float


@nb.njit(cache=True)
def _si(kp, rng, x):
    x[0] = kp.m0 + math.sqrt(kp.P0) * rng.standard_normal()


@nb.njit(cache=True)
def _li(kp, x):
    z = x[0] - kp.m0
    return -0.5 * (_LOG_2PI + math.log(kp.P0) + z * z / kp.P0)


@nb.njit(cache=True)
def _st(kp, t, xp, rng, x):
    x[0] = kp.F * xp[0] + math.sqrt(kp.Q) * rng.standard_normal()


@nb.njit(cache=True)
def _lt(kp, t, xp, x):
    z = x[0] - kp.F * xp[0]
    return -0.5 * (_LOG_2PI + math.log(kp.Q) + z * z / kp.Q)


@nb.njit(cache=True)
def _ltb(kp, t):
    return -0.5 * (_LOG_2PI + math.log(kp.Q))


@nb.njit(cache=True)
def _le(kp, t, x, y):
    v = y[t, 0]
    if math.isnan(v):
        return 0.0
    z = v - x[0]
    return -0.5 * (_LOG_2PI + math.log(kp.R) + z * z / kp.R)


@nb.njit(cache=True)
def _se(kp, t, x, y, rng, out):
    out[0] = x[0] + math.sqrt(kp.R) * rng.standard_normal()


KERNELS = ModelKernels(_si, _li, _st, _lt, _ltb, _le, _se, 1, 1)


@nb.njit(cache=True)
def _cross_init(kp, x, y, out):
    out[0] = 0.0


@nb.njit(cache=True)
def _cross_step(kp, t, xp, x, y, out):
    out[0] = xp[0] * x[0]


#: sum_t x_{t-1} x_t, the functional of the PPG bias test.
CROSS = AdditiveFunctional(_cross_init, _cross_step, 1)


@nb.njit(cache=True)
def _ss_init(kp, x, y, out):
    # [sum x_{t-1}^2, sum x_{t-1} x_t, sum x_t^2 (t>=1), sum over observed (y-x)^2, n_observed]
    out[:] = 0.0
    if not math.isnan(y[0, 0]):
        out[3] = (y[0, 0] - x[0]) ** 2
        out[4] = 1.0


@nb.njit(cache=True)
def _ss_step(kp, t, xp, x, y, out):
    out[0] = xp[0] * xp[0]
    out[1] = xp[0] * x[0]
    out[2] = x[0] * x[0]
    out[3] = 0.0
    out[4] = 0.0
    if not math.isnan(y[t, 0]):
        out[3] = (y[t, 0] - x[0]) ** 2
        out[4] = 1.0


class ScalarLG(StateSpaceModel):
    """x_0 ~ N(m0, P0), x_t = F x_{t-1} + N(0, Q), y_t = x_t + N(0, R)."""

    def __init__(self, F=0.9, Q=0.5, R=1.0, m0=0.0, P0=1.0):
        self.params = ScalarLGParams(float(F), float(Q), float(R), float(m0), float(P0))

    def kernels(self):
        return KERNELS

    def kernel_params(self, inputs=None, times=None):
        return self.params

    def sufficient_statistics(self):
        return AdditiveFunctional(_ss_init, _ss_step, 5)

    def m_step(self, stats, n_sequences=1, n_steps=None):
        s = stats
        F = s[1] / s[0]
        Q = (s[2] - 2 * F * s[1] + F * F * s[0]) / (n_steps - n_sequences)
        R = s[3] / s[4]
        p = self.params
        return ScalarLG(F, Q, R, p.m0, p.P0)


class Smoothed(NamedTuple):
    log_likelihood: float
    means: np.ndarray
    vars: np.ndarray
    cross: np.ndarray  # E[x_{t-1} x_t | y], t = 1..T-1


def kalman_rts(p: ScalarLGParams, y) -> Smoothed:
    y = np.asarray(y, float).reshape(-1)
    T = len(y)
    mf, Pf, mp, Pp = (np.empty(T) for _ in range(4))
    ll = 0.0
    m, P = p.m0, p.P0
    for t in range(T):
        if t > 0:
            m, P = p.F * m, p.F**2 * P + p.Q
        mp[t], Pp[t] = m, P
        if not np.isnan(y[t]):
            S = P + p.R
            e = y[t] - m
            ll += -0.5 * (_LOG_2PI + math.log(S) + e * e / S)
            K = P / S
            m, P = m + K * e, (1 - K) * P
        mf[t], Pf[t] = m, P
    ms, Ps = mf.copy(), Pf.copy()
    cross = np.empty(T - 1)
    for t in range(T - 2, -1, -1):
        J = Pf[t] * p.F / Pp[t + 1]
        ms[t] = mf[t] + J * (ms[t + 1] - mp[t + 1])
        Ps[t] = Pf[t] + J * J * (Ps[t + 1] - Pp[t + 1])
        cross[t] = J * Ps[t + 1] + ms[t] * ms[t + 1]
    return Smoothed(ll, ms, Ps, cross)
