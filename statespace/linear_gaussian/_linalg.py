"""Small dense linear algebra for the per-particle kernels and posterior sampling, as plain loops.

State and observation dimensions are small: calling BLAS from a per-particle
kernel costs more than the arithmetic, so these helpers work in place on
caller-owned buffers and LLVM inlines them.
"""

from __future__ import annotations

import math

import numba as nb


@nb.njit(cache=True, inline="always")
def ix(n, t):
    """Index into a parameter stack of length ``n`` (1 for time-invariant) at time ``t``."""
    return 0 if n == 1 else t


@nb.njit(cache=True)
def cholesky(a, out):
    """Lower Cholesky factor of the symmetric matrix ``a``; returns False if not positive definite."""
    n = a.shape[0]
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= out[j, k] * out[j, k]
        if not s > 0.0:
            return False
        ljj = math.sqrt(s)
        out[j, j] = ljj
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= out[i, k] * out[j, k]
            out[i, j] = s / ljj
        for i in range(j):
            out[i, j] = 0.0
    return True


@nb.njit(cache=True)
def cholesky_psd(a, out):
    """Lower Cholesky factor of a positive *semi*-definite matrix.

    Pivots at round-off level are set to zero (their column too), which is the
    right factor for a degenerate conditional covariance in posterior sampling.
    """
    n = a.shape[0]
    scale = 0.0
    for i in range(n):
        scale = max(scale, abs(a[i, i]))
    tiny = 1e-13 * scale
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= out[j, k] * out[j, k]
        if s <= tiny:
            for i in range(n):
                out[i, j] = 0.0
            continue
        ljj = math.sqrt(s)
        out[j, j] = ljj
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= out[i, k] * out[j, k]
            out[i, j] = s / ljj
        for i in range(j):
            out[i, j] = 0.0


@nb.njit(cache=True)
def solve_lower(L, b, n):
    """In place ``b[:n] = L[:n, :n]^{-1} b[:n]`` (forward substitution)."""
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * b[k]
        b[i] = s / L[i, i]


@nb.njit(cache=True)
def solve_upper_t(L, b, n):
    """In place ``b[:n] = L[:n, :n]^{-T} b[:n]`` (back substitution with the transpose)."""
    for i in range(n - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, n):
            s -= L[k, i] * b[k]
        b[i] = s / L[i, i]


@nb.njit(cache=True)
def symmetrize(a):
    n = a.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            v = 0.5 * (a[i, j] + a[j, i])
            a[i, j] = v
            a[j, i] = v
