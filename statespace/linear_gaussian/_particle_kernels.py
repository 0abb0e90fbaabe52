"""The per-particle kernels of the linear-Gaussian SSM for any dimensions (see :mod:`.kernels`).

This module is also a template: :func:`statespace.linear_gaussian.kernels.particle_kernels`
imports a copy with ``D`` and ``M`` set to the state and observation dimensions
(written by ``statespace._compile.specialised_copy``). Loops over compile-time sizes
unroll into straight-line code that LLVM inlines into the particle loops: 2x
faster at ``d = 3, m = 2``. With ``D = M = 0`` the sizes are read from the arrays.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from statespace._compile import refcount_free, with_refcount
from statespace._numerics.gaussian import count_observed, logpdf_observed
from statespace.linear_gaussian._linalg import ix

_LOG_2PI = math.log(2.0 * math.pi)

D = 0
M = 0


# --- per-particle kernels ---------------------------------------------------------
# Particle loops call these N x T times, so they allocate nothing and touch no
# reference counts. Numba increfs every array of an argument tuple on entry and
# decrefs it on exit (21 arrays in KernelParams, plus the views taken here); its
# pruning pass drops those pairs in straight-line code but not around loops, so a
# kernel with a loop over coordinates paid tens of atomic operations per call, per
# particle-step whatever the dimension: many times a scalar hand-written model.
# ``_nrt=False`` compiles them without the reference counting (they own no memory:
# they only read KernelParams and write caller-owned buffers), which removes that cost. The option is
# private to Numba: :func:`statespace._compile.refcount_free` drops it where it is missing.
# Allocation is not available there, so the rare rows with some coordinates
# missing go to the ordinary function :func:`_log_emission_partial`.
#
# Densities use the whitened matrices of KernelParams; draws fill x_out with
# standard normals and transform it in place from the last coordinate up (L is
# lower-triangular, so row i only reads entries k <= i that are still untouched).
# x_out must not alias x_prev.
_kernel = nb.njit(**refcount_free(cache=True))


# The transition and the emission are one shape, ``v = b + A x + L z`` with ``z ~ N(0, I)``; their
# draws and densities are written once here. Inlined into each kernel in Numba's IR (so the kernel
# keeps its flags and its compile-time sizes, and the machine code is that of the loops written out).
@nb.njit(inline="always")
def _draw_affine(b, A, x, L, rng, v, n, d):
    """Fill ``v`` (``n``) with a draw of ``b + A x + L z``: ``L`` lower-triangular, ``x`` of length ``d``."""
    for i in range(n):
        v[i] = rng.standard_normal()
    for i in range(n - 1, -1, -1):
        s = b[i]
        for k in range(d):
            s += A[i, k] * x[k]
        for k in range(i + 1):
            s += L[i, k] * v[k]
        v[i] = s


@nb.njit(inline="always")
def residual(v, b, A, x, out, off, n, d):
    """``out[off:off + n] = v - A x - b`` (``x`` of length ``d``): NaN in ``v`` stays NaN."""
    for i in range(n):
        s = v[i] - b[i]
        for k in range(d):
            s -= A[i, k] * x[k]
        out[off + i] = s


@nb.njit(inline="always")
def _whitened_square(W, WA, Wb, v, x, n, d):
    """``|L^{-1} (v - A x - b)|^2`` from the whitened ``W = L^{-1}``, ``WA = L^{-1} A``, ``Wb = L^{-1} b``."""
    q = 0.0
    for i in range(n):
        z = -Wb[i]
        for k in range(i + 1):
            z += W[i, k] * v[k]
        for k in range(d):
            z -= WA[i, k] * x[k]
        q += z * z
    return q


@_kernel
def sample_initial(kp, rng, x_out):
    d = D if D else x_out.shape[0]
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
    d = D if D else x.shape[0]
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
    d = D if D else x_out.shape[0]
    F = kp.F[ix(kp.F.shape[0], t)]
    bu = kp.bu[ix(kp.bu.shape[0], t)]
    L = kp.chol_Q[ix(kp.chol_Q.shape[0], t)]
    _draw_affine(bu, F, x_prev, L, rng, x_out, d, d)


@_kernel
def log_transition(kp, t, x_prev, x):
    d = D if D else x.shape[0]
    W = kp.white_Q[ix(kp.white_Q.shape[0], t)]
    WF = kp.white_F[ix(kp.white_F.shape[0], t)]
    Wb = kp.white_bu[ix(kp.white_bu.shape[0], t)]
    q = _whitened_square(W, WF, Wb, x, x_prev, d, d)
    return -0.5 * (d * _LOG_2PI + kp.logdet_Q[ix(kp.logdet_Q.shape[0], t)] + q)


@_kernel
def log_transition_bound(kp, t):
    """The maximum of the Gaussian transition density, :math:`-\\tfrac12 (d \\log 2\\pi + \\log|Q_t|)`."""
    d = D if D else kp.m0.shape[0]
    return -0.5 * (d * _LOG_2PI + kp.logdet_Q[ix(kp.logdet_Q.shape[0], t)])


@nb.njit(**with_refcount(cache=True))  # explicit, or it would inherit log_emission's _nrt=False
def _log_emission_partial(Hs, dus, Rs, t, x, y):
    """Log-density of the observed coordinates of ``y[t]``: the residual ``y_t - H x - D u_t`` keeps
    the NaN of the missing coordinates, and :func:`statespace._numerics.gaussian.logpdf_observed`
    marginalises them out."""
    H = Hs[ix(Hs.shape[0], t)]
    du = dus[ix(dus.shape[0], t)]
    yt = y[t]
    m, d = H.shape
    r = np.empty(m)
    residual(yt, du, H, x, r, 0, m, d)
    return logpdf_observed(r, Rs[ix(Rs.shape[0], t)])


@_kernel
def log_emission(kp, t, x, y):
    """``log N(y_t^o; H^o x + D^o u_t, R_oo)`` over the observed coordinates (0 for a missing row)."""
    yt = y[t]
    m = M if M else yt.shape[0]
    kr = ix(kp.white_R.shape[0], t)
    W = kp.white_R[kr]
    WH = kp.white_H[ix(kp.white_H.shape[0], t)]
    Wd = kp.white_du[ix(kp.white_du.shape[0], t)]
    d = D if D else x.shape[0]
    q = _whitened_square(W, WH, Wd, yt, x, m, d)
    # a missing coordinate makes q NaN (W has a nonzero diagonal), so fully
    # observed rows need no separate pass to look for gaps
    if math.isnan(q):
        n = count_observed(yt)
        if n == 0:
            return 0.0
        if n < m:
            return _log_emission_partial(kp.H, kp.du, kp.R, t, x, y)
    return -0.5 * (m * _LOG_2PI + kp.logdet_R[kr] + q)


@_kernel
def sample_emission(kp, t, x, y, rng, y_out):
    H = kp.H[ix(kp.H.shape[0], t)]
    du = kp.du[ix(kp.du.shape[0], t)]
    L = kp.chol_R[ix(kp.chol_R.shape[0], t)]
    m = M if M else H.shape[0]
    d = D if D else H.shape[1]
    _draw_affine(du, H, x, L, rng, y_out, m, d)
