r"""Per-particle kernels and complete-data sufficient statistics of the linear-Gaussian SSM.

The kernels implement the shared interface (:mod:`statespace.interface`) on
:class:`~statespace.linear_gaussian.params.KernelParams`, so the particle methods
of :mod:`smc` run on this model and are tested against the Kalman filter.

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
equivalent inline loop of ``_fast.stats_loop`` (40x faster; tested equal),
which calls back here for rows with missing coordinates.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from ..interface import AdditiveFunctional
from ._linalg import cholesky, ix, solve_lower, solve_upper_t

_LOG_2PI = math.log(2.0 * math.pi)


# --- per-particle kernels ---------------------------------------------------------
# Particle loops call these N x T times, so they allocate nothing and touch no
# reference counts. Numba increfs every array of an argument tuple on entry and
# decrefs it on exit (21 arrays in KernelParams, plus the views taken here); its
# pruning pass drops those pairs in straight-line code but not around loops, so a
# kernel with a loop over coordinates paid ~40 atomic operations per call: ~1 us
# per particle-step whatever the dimension, 20x a scalar hand-written model.
# ``_nrt=False`` compiles them without the reference counting (they own no memory:
# they only read KernelParams and write caller-owned buffers), which brings the
# d = 1 model to the hand-written model's cost. Allocation is not available there,
# so the rare rows with some coordinates missing go to the ordinary function
# :func:`_log_emission_partial`.
#
# Densities use the whitened matrices of KernelParams; draws fill x_out with
# standard normals and transform it in place from the last coordinate up (L is
# lower-triangular, so row i only reads entries k <= i that are still untouched).
# x_out must not alias x_prev.
_kernel = nb.njit(cache=True, _nrt=False)


@_kernel
def sample_initial(kp, rng, x_out):
    d = x_out.shape[0]
    L = kp.chol_P0
    m0 = kp.m0
    for i in range(d):
        x_out[i] = rng.standard_normal()
    for i in range(d - 1, -1, -1):
        s = m0[i]
        for k in range(i + 1):
            s += L[i, k] * x_out[k]
        x_out[i] = s


@_kernel
def log_initial(kp, x):
    d = x.shape[0]
    W = kp.white_P0
    L = kp.chol_P0
    m0 = kp.m0
    q = 0.0
    logdet = 0.0
    for i in range(d):
        z = 0.0
        for k in range(i + 1):
            z += W[i, k] * (x[k] - m0[k])
        q += z * z
        logdet += 2.0 * math.log(L[i, i])
    return -0.5 * (d * _LOG_2PI + logdet + q)


@_kernel
def sample_transition(kp, t, x_prev, rng, x_out):
    d = x_out.shape[0]
    F = kp.F[ix(kp.F.shape[0], t)]
    bu = kp.bu[ix(kp.bu.shape[0], t)]
    L = kp.chol_Q[ix(kp.chol_Q.shape[0], t)]
    for i in range(d):
        x_out[i] = rng.standard_normal()
    for i in range(d - 1, -1, -1):
        s = bu[i]
        for k in range(d):
            s += F[i, k] * x_prev[k]
        for k in range(i + 1):
            s += L[i, k] * x_out[k]
        x_out[i] = s


@_kernel
def log_transition(kp, t, x_prev, x):
    d = x.shape[0]
    W = kp.white_Q[ix(kp.white_Q.shape[0], t)]
    WF = kp.white_F[ix(kp.white_F.shape[0], t)]
    Wb = kp.white_bu[ix(kp.white_bu.shape[0], t)]
    q = 0.0
    for i in range(d):
        z = -Wb[i]
        for k in range(i + 1):
            z += W[i, k] * x[k]
        for k in range(d):
            z -= WF[i, k] * x_prev[k]
        q += z * z
    return -0.5 * (d * _LOG_2PI + kp.logdet_Q[ix(kp.logdet_Q.shape[0], t)] + q)


@_kernel
def log_transition_bound(kp, t):
    """The maximum of the Gaussian transition density, :math:`-\\tfrac12 (d \\log 2\\pi + \\log|Q_t|)`."""
    d = kp.m0.shape[0]
    return -0.5 * (d * _LOG_2PI + kp.logdet_Q[ix(kp.logdet_Q.shape[0], t)])


@nb.njit(cache=True, _nrt=True)  # explicit, or it would inherit log_emission's _nrt=False
def _log_emission_partial(Hs, dus, Rs, t, x, y, n):
    """Log-density of the ``n < m`` observed coordinates of ``y[t]``.

    One allocation: ``R_oo`` is factorised in place in ``buf[:n*n]`` (lower
    triangle, row-major) and the residual is whitened in ``buf[n*n:]``.
    """
    H = Hs[ix(Hs.shape[0], t)]
    du = dus[ix(dus.shape[0], t)]
    R = Rs[ix(Rs.shape[0], t)]
    yt = y[t]
    m, d = H.shape
    buf = np.empty(n * n + n)
    r = n * n
    a = 0
    for j in range(m):
        if math.isnan(yt[j]):
            continue
        s = yt[j] - du[j]
        for k in range(d):
            s -= H[j, k] * x[k]
        buf[r + a] = s
        b = 0
        for j2 in range(j + 1):
            if not math.isnan(yt[j2]):
                buf[a * n + b] = R[j, j2]
                b += 1
        a += 1
    logdet = 0.0
    q = 0.0
    for i in range(n):
        # row i of the Cholesky factor, then forward substitution of the residual
        for k in range(i + 1):
            s = buf[i * n + k]
            for l in range(k):
                s -= buf[i * n + l] * buf[k * n + l]
            if k < i:
                buf[i * n + k] = s / buf[k * n + k]
            else:
                buf[i * n + i] = math.sqrt(s)
        z = buf[r + i]
        for k in range(i):
            z -= buf[i * n + k] * buf[r + k]
        z /= buf[i * n + i]
        buf[r + i] = z
        q += z * z
        logdet += 2.0 * math.log(buf[i * n + i])
    return -0.5 * (n * _LOG_2PI + logdet + q)


@_kernel
def log_emission(kp, t, x, y):
    """``log N(y_t^o; H^o x + D^o u_t, R_oo)`` over the observed coordinates (0 for a missing row)."""
    yt = y[t]
    m = yt.shape[0]
    kr = ix(kp.white_R.shape[0], t)
    W = kp.white_R[kr]
    WH = kp.white_H[ix(kp.white_H.shape[0], t)]
    Wd = kp.white_du[ix(kp.white_du.shape[0], t)]
    d = x.shape[0]
    q = 0.0
    for i in range(m):
        z = -Wd[i]
        for k in range(i + 1):
            z += W[i, k] * yt[k]
        for k in range(d):
            z -= WH[i, k] * x[k]
        q += z * z
    # a missing coordinate makes q NaN (W has a nonzero diagonal), so fully
    # observed rows need no separate pass to look for gaps
    if math.isnan(q):
        n = 0
        for j in range(m):
            if not math.isnan(yt[j]):
                n += 1
        if n == 0:
            return 0.0
        if n < m:
            return _log_emission_partial(kp.H, kp.du, kp.R, t, x, y, n)
    return -0.5 * (m * _LOG_2PI + kp.logdet_R[kr] + q)


@_kernel
def sample_emission(kp, t, x, y, rng, y_out):
    H = kp.H[ix(kp.H.shape[0], t)]
    du = kp.du[ix(kp.du.shape[0], t)]
    L = kp.chol_R[ix(kp.chol_R.shape[0], t)]
    m, d = H.shape
    for i in range(m):
        y_out[i] = rng.standard_normal()
    for i in range(m - 1, -1, -1):
        s = du[i]
        for k in range(d):
            s += H[i, k] * x[k]
        for k in range(i + 1):
            s += L[i, k] * y_out[k]
        y_out[i] = s


# --- the same kernels for d = m = 1 ----------------------------------------------
# Straight-line code is small enough for LLVM to inline into the particle loops,
# which then neither pass the 21 arrays of KernelParams (~1.7 kB of arguments per
# call) nor branch on loop bounds: a scalar model runs ~3x faster, at the cost of a
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
    sizes = (1, d, d * d, 1, d * d, d * d, d * d, d * p, d * p, p * p, d * d, 1, m * d, m * m, d * d, d * p, m * p, p * p, m * m)
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
        # Cov(eps) = Pcc - F Pcp^T - Pcp F^T + F Ppp F^T
        for i in range(d):
            for j in range(d):
                s = 0.0
                c = 0.0
                for k in range(d):
                    s += F[i, k] * Ppp[k, j]
                    c += F[i, k] * Pcp[j, k]
                FP[i, j] = s
                FPc[i, j] = c
        o = offs[10]
        for i in range(d):
            for j in range(d):
                s = Pcc[i, j] - FPc[i, j] - FPc[j, i]
                for k in range(d):
                    s += FP[i, k] * F[j, k]
                out[o + i * d + j] += s


@nb.njit(cache=True)
def add_emission_stats(kp, offs, t, mean, cov, with_cov, y, out, ws):
    """Accumulate the emission statistics of step ``t`` from moments of ``x_t`` (missing ``y`` imputed)."""
    obs, mis, A, c, Sig, G, Roo, L, g, yhat, Ar, rbar, AP, ArP = (
        ws[0], ws[1], ws[5], ws[6], ws[7], ws[8], ws[9], ws[10], ws[11], ws[12], ws[13], ws[14], ws[15], ws[16]
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
            cholesky(Roo[:n, :n], L[:n, :n])
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
    # kernels above: ~20x faster than the general path, whose workspace holds 17
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
    for i in range(d):
        v = x[i] - bu[i]
        for k in range(d):
            v -= F[i, k] * x_prev[k]
        out[o_qres + i] = v
    _self_outer_in_place(out, o_qres, d)
    H = kp.H[ix(kp.H.shape[0], t)]
    du = kp.du[ix(kp.du.shape[0], t)]
    for i in range(m):
        v = yt[i] - du[i]
        for k in range(d):
            v -= H[i, k] * x[k]
        out[o_rres + i] = v
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
