r"""Per-particle kernels and complete-data sufficient statistics of the linear-Gaussian SSM.

The kernels implement the shared interface (:mod:`statespace.interface`) on
:class:`~statespace.linear_gaussian.params.KernelParams`, so the particle methods
of :mod:`smc` run on this model and are tested against the Kalman filter.
:func:`particle_kernels` picks them for a model's dimensions: straight-line
ones for ``d = m = 1``, copies of :mod:`._particle_kernels` compiled for fixed
sizes up to 8, the general ones beyond; all compile without reference counting
(see :mod:`._particle_kernels` for why), so a filter costs about what it costs
on a hand-written model.

Sufficient statistics
---------------------
EM for this model (Shumway & Stoffer 1982; missing coordinates as in
Shumway & Stoffer 2017, sec. 6.4) needs the expected values of, with
:math:`z_t = (x_{t-1}, u_t)` for transitions and :math:`(x_t, u_t)` for emissions,

.. math::

    x_0,\; x_0 x_0^\top;\quad
    \textstyle\sum_{t\ge1} x_{t-1}x_{t-1}^\top,\ x_t x_{t-1}^\top,\ x_t x_t^\top,\
    x_{t-1}u_t^\top,\ x_t u_t^\top,\ u_t u_t^\top,\ \varepsilon_t\varepsilon_t^\top;\quad
    \textstyle\sum_{t\ge0} \hat y_t x_t^\top,\ \hat y_t \hat y_t^\top,\ x_t x_t^\top,\ x_t u_t^\top,\
    \hat y_t u_t^\top,\ u_t u_t^\top,\ r_t r_t^\top,

where :math:`\varepsilon_t = x_t - F_t x_{t-1} - B u_t` and :math:`r_t = y_t - H_t x_t - D u_t`
use the *current* parameters (they serve the M-step of ``Q`` and ``R`` when the
matrices in front are frozen, possibly time-varying). Missing coordinates
:math:`y_t^{m}` are latent too: given :math:`x_t` and the observed
:math:`y_t^{o}` they are Gaussian with mean
:math:`H^m x_t + D^m u_t + G (y^o_t - H^o x_t - D^o u_t)`, :math:`G = R_{mo} R_{oo}^{-1}`,
and covariance :math:`R_{mm} - G R_{om}`, which is how they enter :math:`\hat y_t`.

The routines here compute these statistics from Gaussian *moments* of
:math:`(x_{t-1}, x_t)`: :func:`expected_statistics` passes smoothed means and
covariances (the reference E-step), the additive functional (for PaRIS /
particle EM) passes a particle (zero covariance). The E-step of EM runs the
equivalent inline loop of ``_fast.stats_loop`` (no calls per step; tested equal),
which calls back here for rows with missing coordinates.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numba as nb
import numpy as np

from .._compile import specialised_copy
from .._numerics.linalg import cholesky, solve_lower, solve_upper_t
from ..interface import AdditiveFunctional
from . import _particle_kernels
from ._linalg import ix

# the general per-particle kernels (for any dimensions; see particle_kernels below)
from ._particle_kernels import (
    _kernel,
    log_transition_bound,
    residual,
)

_LOG_2PI = math.log(2.0 * math.pi)


# --- the same kernels for d = m = 1 ----------------------------------------------
# Straight-line code is small enough for LLVM to inline into the particle loops,
# which then neither pass the 21 arrays of KernelParams (~1.7 kB of arguments per
# call) nor branch on loop bounds: a scalar model runs several times faster, at the cost of a
# hand-written one. LinearGaussianSSM.kernels() picks them when d = m = 1.
@_kernel
def sample_initial_scalar(kp, rng, x_out):
    x_out[0] = kp.m0[0] + kp.chol_P0[0, 0] * rng.standard_normal()


@_kernel
def log_initial_scalar(kp, x):
    z = kp.white_P0[0, 0] * (x[0] - kp.m0[0])
    return -0.5 * (_LOG_2PI + z * z) - math.log(kp.chol_P0[0, 0])


@_kernel
def sample_transition_scalar(kp, t, x_prev, rng, x_out):
    f = kp.F[ix(kp.F.shape[0], t), 0, 0]
    b = kp.bu[ix(kp.bu.shape[0], t), 0]
    s = kp.chol_Q[ix(kp.chol_Q.shape[0], t), 0, 0]
    x_out[0] = b + f * x_prev[0] + s * rng.standard_normal()


@_kernel
def log_transition_scalar(kp, t, x_prev, x):
    w = kp.white_Q[ix(kp.white_Q.shape[0], t), 0, 0]
    wf = kp.white_F[ix(kp.white_F.shape[0], t), 0, 0]
    wb = kp.white_bu[ix(kp.white_bu.shape[0], t), 0]
    z = w * x[0] - wf * x_prev[0] - wb
    return -0.5 * (_LOG_2PI + kp.logdet_Q[ix(kp.logdet_Q.shape[0], t)] + z * z)


@_kernel
def log_emission_scalar(kp, t, x, y):
    v = y[t, 0]
    if math.isnan(v):
        return 0.0
    kr = ix(kp.white_R.shape[0], t)
    wh = kp.white_H[ix(kp.white_H.shape[0], t), 0, 0]
    wd = kp.white_du[ix(kp.white_du.shape[0], t), 0]
    z = kp.white_R[kr, 0, 0] * v - wh * x[0] - wd
    return -0.5 * (_LOG_2PI + kp.logdet_R[kr] + z * z)


@_kernel
def sample_emission_scalar(kp, t, x, y, rng, y_out):
    h = kp.H[ix(kp.H.shape[0], t), 0, 0]
    b = kp.du[ix(kp.du.shape[0], t), 0]
    s = kp.chol_R[ix(kp.chol_R.shape[0], t), 0, 0]
    y_out[0] = b + h * x[0] + s * rng.standard_normal()


#: Largest dimensions that get kernels compiled for their sizes (as the Kalman loops).
MAX_FIXED_SIZE = 8
_fixed_size: dict[tuple[int, int], object] = {}


def _fixed_size_module(d: int, m: int):
    """A copy of :mod:`._particle_kernels` with ``D = d, M = m``, cached on disk like the Kalman loops."""
    key = (d, m)
    if key in _fixed_size:
        return _fixed_size[key]
    module = specialised_copy(Path(_particle_kernels.__file__), "particle", d, m) or _particle_kernels
    _fixed_size[key] = module
    return module


def particle_kernels(d: int, m: int) -> tuple:
    """The seven per-particle kernels for dimensions ``(d, m)``, in :class:`ModelKernels` order.

    Straight-line ones for ``d = m = 1``, ones compiled for fixed sizes up to
    ``MAX_FIXED_SIZE``, the general ones beyond (where unrolling gains nothing).
    """
    if d == 1 and m == 1:
        return (
            sample_initial_scalar,
            log_initial_scalar,
            sample_transition_scalar,
            log_transition_scalar,
            log_transition_bound,
            log_emission_scalar,
            sample_emission_scalar,
        )
    k = _fixed_size_module(int(d), int(m)) if max(d, m) <= MAX_FIXED_SIZE else _particle_kernels
    return (
        k.sample_initial,
        k.log_initial,
        k.sample_transition,
        k.log_transition,
        k.log_transition_bound,
        k.log_emission,
        k.sample_emission,
    )


# --- sufficient statistics --------------------------------------------------------
class StatsLayout(NamedTuple):
    """Offsets of the blocks of the sufficient-statistics vector (see :func:`stats_layout`)."""

    n0: int
    x0: int
    x0x0: int
    nt: int
    xpxp: int
    xxp: int
    xx: int
    xpu: int
    xu: int
    uut: int
    qres: int
    ne: int
    yx: int
    yy: int
    xexe: int
    xeu: int
    yu: int
    uue: int
    rres: int
    size: int


@nb.njit(cache=True)
def _layout(d, m, p):
    sizes = (
        1,
        d,
        d * d,
        1,
        d * d,
        d * d,
        d * d,
        d * p,
        d * p,
        p * p,
        d * d,
        1,
        m * d,
        m * m,
        d * d,
        d * p,
        m * p,
        p * p,
        m * m,
    )
    offs = np.empty(len(sizes) + 1, np.int64)
    o = 0
    for i in range(len(sizes)):
        offs[i] = o
        o += sizes[i]
    offs[len(sizes)] = o
    return offs


def stats_layout(d: int, m: int, p: int) -> StatsLayout:
    """Where each expected statistic sits in the flat vector, for dimensions ``d, m, p``."""
    return StatsLayout(*(int(o) for o in _layout(d, m, p)))


@nb.njit(cache=True)
def _outer_add(out, off, a, b, scale):
    na, nb_ = a.shape[0], b.shape[0]
    for i in range(na):
        for j in range(nb_):
            out[off + i * nb_ + j] += scale * a[i] * b[j]


@nb.njit(cache=True)
def _mat_add(out, off, M):
    na, nb_ = M.shape
    for i in range(na):
        for j in range(nb_):
            out[off + i * nb_ + j] += M[i, j]


@nb.njit(cache=True)
def stats_workspace(d, m):
    """Buffers for the statistics routines, so the E-step loop allocates nothing."""
    return (
        np.empty(m, np.int64),  # observed coordinates
        np.empty(m, np.int64),  # missing coordinates
        np.empty(d),  # eps
        np.empty((d, d)),  # F Ppp
        np.empty((d, d)),  # F Pcp^T
        np.empty((m, d)),  # A
        np.empty(m),  # c
        np.empty((m, m)),  # Sig
        np.empty((m, m)),  # G
        np.empty((m, m)),  # R_oo
        np.empty((m, m)),  # its Cholesky factor
        np.empty(m),  # g
        np.empty(m),  # yhat
        np.empty((m, d)),  # Ar
        np.empty(m),  # rbar
        np.empty((m, d)),  # A P
        np.empty((m, d)),  # Ar P
        np.empty((d, d)),  # Cov(eps)
    )


@nb.njit(cache=True)
def _transition_mean(kp, t, x_prev, out):
    F = kp.F[ix(kp.F.shape[0], t)]
    bu = kp.bu[ix(kp.bu.shape[0], t)]
    d = x_prev.shape[0]
    for i in range(d):
        s = bu[i]
        for k in range(d):
            s += F[i, k] * x_prev[k]
        out[i] = s


@nb.njit(cache=True)
def add_initial_stats(kp, offs, mean, cov, with_cov, out):
    """Accumulate ``1, E[x_0], E[x_0 x_0^T]``; ``offs`` is :func:`_layout`'s output."""
    d = mean.shape[0]
    out[offs[0]] += 1.0
    for i in range(d):
        out[offs[1] + i] += mean[i]
    _outer_add(out, offs[2], mean, mean, 1.0)
    if with_cov:
        _mat_add(out, offs[2], cov)


@nb.njit(cache=True)
def add_transition_stats(kp, offs, t, mp, mc, Ppp, Pcc, Pcp, with_cov, out, ws):
    """Accumulate the transition statistics of step ``t`` from moments of ``(x_{t-1}, x_t)``.

    ``Pcp`` is :math:`Cov(x_t, x_{t-1})`; covariances are ignored unless ``with_cov``;
    ``ws`` is :func:`stats_workspace`'s output.
    """
    d = mc.shape[0]
    p = kp.u.shape[1]
    eps, FP, FPc = ws[2], ws[3], ws[4]
    out[offs[3]] += 1.0
    _outer_add(out, offs[4], mp, mp, 1.0)
    _outer_add(out, offs[5], mc, mp, 1.0)
    _outer_add(out, offs[6], mc, mc, 1.0)
    if p > 0:
        u = kp.u[t]
        _outer_add(out, offs[7], mp, u, 1.0)
        _outer_add(out, offs[8], mc, u, 1.0)
        _outer_add(out, offs[9], u, u, 1.0)
    if with_cov:
        _mat_add(out, offs[4], Ppp)
        _mat_add(out, offs[5], Pcp)
        _mat_add(out, offs[6], Pcc)
    # eps = x_t - F x_{t-1} - B u_t under the current parameters
    F = kp.F[ix(kp.F.shape[0], t)]
    _transition_mean(kp, t, mp, eps)
    for i in range(d):
        eps[i] = mc[i] - eps[i]
    _outer_add(out, offs[10], eps, eps, 1.0)
    if with_cov:
        residual_cov(F, Pcc, Ppp, Pcp, FP, FPc, ws[17])
        _mat_add(out, offs[10], ws[17])


@nb.njit(cache=True)
def residual_cov(F, P, Pp, X, FP, FX, out):
    """``out = P - F X^T - X F^T + F Pp F^T``: the covariance of ``x_t - F x_{t-1}`` given
    ``Cov(x_t) = P``, ``Cov(x_{t-1}) = Pp`` and ``Cov(x_t, x_{t-1}) = X`` (or the sums of these
    over steps: the expression is linear in them); ``FP``, ``FX`` are ``(d, d)`` scratch."""
    d = P.shape[0]
    for i in range(d):
        for j in range(d):
            a = 0.0
            b = 0.0
            for k in range(d):
                a += F[i, k] * Pp[k, j]
                b += F[i, k] * X[j, k]
            FP[i, j] = a
            FX[i, j] = b
    for i in range(d):
        for j in range(d):
            v = P[i, j] - FX[i, j] - FX[j, i]
            for k in range(d):
                v += FP[i, k] * F[j, k]
            out[i, j] = v


@nb.njit(cache=True)
def add_emission_stats(kp, offs, t, mean, cov, with_cov, y, out, ws):
    """Accumulate the emission statistics of step ``t`` from moments of ``x_t`` (missing ``y`` imputed)."""
    obs, mis, A, c, Sig, G, Roo, L, g, yhat, Ar, rbar, AP, ArP = (
        ws[0],
        ws[1],
        ws[5],
        ws[6],
        ws[7],
        ws[8],
        ws[9],
        ws[10],
        ws[11],
        ws[12],
        ws[13],
        ws[14],
        ws[15],
        ws[16],
    )
    d = mean.shape[0]
    p = kp.u.shape[1]
    H = kp.H[ix(kp.H.shape[0], t)]
    R = kp.R[ix(kp.R.shape[0], t)]
    du = kp.du[ix(kp.du.shape[0], t)]
    m = H.shape[0]
    yt = y[t]
    n = 0
    nm = 0
    for j in range(m):
        if math.isnan(yt[j]):
            mis[nm] = j
            nm += 1
        else:
            obs[n] = j
            n += 1
    # yhat = A x + c; rows observed: A = 0, c = y; missing: regression on the observed residual
    A[:, :] = 0.0
    Sig[:, :] = 0.0  # covariance of the missing coordinates given x_t and y_t^o
    for a in range(n):
        c[obs[a]] = yt[obs[a]]
    if nm > 0:
        G[:, :] = 0.0
        if n > 0:
            for a in range(n):
                for b in range(n):
                    Roo[a, b] = R[obs[a], obs[b]]
            cholesky(Roo, L, n)
            for i in range(nm):
                for a in range(n):
                    g[a] = R[mis[i], obs[a]]
                solve_lower(L, g, n)
                solve_upper_t(L, g, n)
                for a in range(n):
                    G[mis[i], a] = g[a]
        for i in range(nm):
            r = mis[i]
            s = du[r]
            for a in range(n):
                s += G[r, a] * (yt[obs[a]] - du[obs[a]])
            c[r] = s
            for k in range(d):
                v = H[r, k]
                for a in range(n):
                    v -= G[r, a] * H[obs[a], k]
                A[r, k] = v
            for j2 in range(nm):
                q = mis[j2]
                v = R[r, q]
                for a in range(n):
                    v -= G[r, a] * R[obs[a], q]
                Sig[r, q] = v
    for i in range(m):
        s = c[i]
        for k in range(d):
            s += A[i, k] * mean[k]
        yhat[i] = s
    # residual r = yhat - H x - du = (A - H) x + (c - du)
    for i in range(m):
        s = c[i] - du[i]
        for k in range(d):
            Ar[i, k] = A[i, k] - H[i, k]
            s += Ar[i, k] * mean[k]
        rbar[i] = s
    out[offs[11]] += 1.0
    _outer_add(out, offs[12], yhat, mean, 1.0)
    _outer_add(out, offs[13], yhat, yhat, 1.0)
    _mat_add(out, offs[13], Sig)
    _outer_add(out, offs[14], mean, mean, 1.0)
    if p > 0:
        u = kp.u[t]
        _outer_add(out, offs[15], mean, u, 1.0)
        _outer_add(out, offs[16], yhat, u, 1.0)
        _outer_add(out, offs[17], u, u, 1.0)
    _outer_add(out, offs[18], rbar, rbar, 1.0)
    _mat_add(out, offs[18], Sig)
    if with_cov:
        _mat_add(out, offs[14], cov)
        for i in range(m):
            for j in range(d):
                s = 0.0
                s2 = 0.0
                for k in range(d):
                    s += A[i, k] * cov[k, j]
                    s2 += Ar[i, k] * cov[k, j]
                AP[i, j] = s
                ArP[i, j] = s2
        _mat_add(out, offs[12], AP)
        o13, o18 = offs[13], offs[18]
        for i in range(m):
            for j in range(m):
                s = 0.0
                s2 = 0.0
                for k in range(d):
                    s += AP[i, k] * A[j, k]
                    s2 += ArP[i, k] * Ar[j, k]
                out[o13 + i * m + j] += s
                out[o18 + i * m + j] += s2


@nb.njit(cache=True)
def expected_statistics(kp, y, sm, sP, cross, out):
    """Add the exact expected sufficient statistics of one sequence (from RTS moments) to ``out``."""
    T = y.shape[0]
    d, m = sm.shape[1], y.shape[1]
    offs = _layout(d, m, kp.u.shape[1])
    ws = stats_workspace(d, m)
    add_initial_stats(kp, offs, sm[0], sP[0], True, out)
    add_emission_stats(kp, offs, 0, sm[0], sP[0], True, y, out, ws)
    for t in range(1, T):
        add_transition_stats(kp, offs, t, sm[t - 1], sm[t], sP[t - 1], sP[t], cross[t - 1], True, out, ws)
        add_emission_stats(kp, offs, t, sm[t], sP[t], True, y, out, ws)


@nb.njit(cache=True)
def functional_initial(kp, x, y, out):
    d, m = x.shape[0], y.shape[1]
    offs = _layout(d, m, kp.u.shape[1])
    out[:] = 0.0
    add_initial_stats(kp, offs, x, kp.P0, False, out)
    add_emission_stats(kp, offs, 0, x, kp.P0, False, y, out, stats_workspace(d, m))


@nb.njit(cache=True, inline="always")
def _outer_set(out, off, a, b):
    na, nb_ = a.shape[0], b.shape[0]
    for i in range(na):
        for j in range(nb_):
            out[off + i * nb_ + j] = a[i] * b[j]


@nb.njit(cache=True, inline="always")
def _self_outer_in_place(out, off, n):
    """``out[off:off+n*n] = v v^T`` where ``v`` sits in ``out[off:off+n]`` (rows filled last first)."""
    for i in range(n - 1, -1, -1):
        vi = out[off + i]
        for j in range(n):
            out[off + i * n + j] = vi * out[off + j]


@_kernel
def functional_step(kp, t, x_prev, x, y, out):
    # PaRIS calls this N x K times per step. A fully observed row (the usual case)
    # takes a direct path that allocates nothing (the residuals are built in their
    # own output blocks), hence compiles without reference counting like the
    # kernels above: far cheaper than the general path, whose workspace holds 17
    # arrays. Rows with gaps impute the missing coordinates as in the E-step.
    yt = y[t]
    m = yt.shape[0]
    for j in range(m):
        if math.isnan(yt[j]):
            _functional_step_general(kp, t, x_prev, x, y, out)
            return
    d, p = x.shape[0], kp.u.shape[1]
    # the offsets of _layout, without its allocation
    o_nt = 1 + d + d * d
    o_xpxp = o_nt + 1
    o_xxp = o_xpxp + d * d
    o_xx = o_xxp + d * d
    o_xpu = o_xx + d * d
    o_xu = o_xpu + d * p
    o_uut = o_xu + d * p
    o_qres = o_uut + p * p
    o_ne = o_qres + d * d
    o_yx = o_ne + 1
    o_yy = o_yx + m * d
    o_xexe = o_yy + m * m
    o_xeu = o_xexe + d * d
    o_yu = o_xeu + d * p
    o_uue = o_yu + m * p
    o_rres = o_uue + p * p
    for i in range(out.shape[0]):
        out[i] = 0.0
    F = kp.F[ix(kp.F.shape[0], t)]
    bu = kp.bu[ix(kp.bu.shape[0], t)]
    residual(x, bu, F, x_prev, out, o_qres, d, d)
    _self_outer_in_place(out, o_qres, d)
    H = kp.H[ix(kp.H.shape[0], t)]
    du = kp.du[ix(kp.du.shape[0], t)]
    residual(yt, du, H, x, out, o_rres, m, d)
    _self_outer_in_place(out, o_rres, m)
    out[o_nt] = 1.0
    _outer_set(out, o_xpxp, x_prev, x_prev)
    _outer_set(out, o_xxp, x, x_prev)
    _outer_set(out, o_xx, x, x)
    out[o_ne] = 1.0
    _outer_set(out, o_yx, yt, x)
    _outer_set(out, o_yy, yt, yt)
    _outer_set(out, o_xexe, x, x)
    if p > 0:
        u = kp.u[t]
        _outer_set(out, o_xpu, x_prev, u)
        _outer_set(out, o_xu, x, u)
        _outer_set(out, o_uut, u, u)
        _outer_set(out, o_xeu, x, u)
        _outer_set(out, o_yu, yt, u)
        _outer_set(out, o_uue, u, u)


@nb.njit(cache=True, _nrt=True)  # explicit, or it would inherit functional_step's _nrt=False
def _functional_step_general(kp, t, x_prev, x, y, out):
    d, m = x.shape[0], y.shape[1]
    offs = _layout(d, m, kp.u.shape[1])
    ws = stats_workspace(d, m)
    out[:] = 0.0
    add_transition_stats(kp, offs, t, x_prev, x, kp.P0, kp.P0, kp.P0, False, out, ws)
    add_emission_stats(kp, offs, t, x, kp.P0, False, y, out, ws)


def sufficient_statistics(d: int, m: int, p: int) -> AdditiveFunctional:
    """The complete-data sufficient statistics as an additive functional on :class:`KernelParams`."""
    return AdditiveFunctional(initial=functional_initial, step=functional_step, dim=stats_layout(d, m, p).size)
