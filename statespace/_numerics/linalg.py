r"""Small dense linear algebra as plain loops: Cholesky factors and triangular solves.

State and observation dimensions are small (a few to a few tens): calling LAPACK from a
compiled per-step or per-particle loop costs more than the arithmetic, so these kernels
work in place on the leading ``n x n`` block of caller-owned buffers (``n`` = the number of
observed coordinates at a step, so one buffer serves every missingness pattern) and LLVM
inlines them.

* :func:`cholesky` -- :math:`A = L L^\top` for a symmetric positive-definite :math:`A`, by the
  column-oriented (Cholesky-Banachiewicz) recursion. It refuses (returns ``False``) when a
  pivot is not in :math:`(0, 1.7 \cdot 10^{308}]`: not positive definite, NaN, or so large that
  the factor or its log-determinant would overflow. Only the lower triangle is written.
* :func:`cholesky_psd` -- the same for a positive *semi*-definite matrix: a pivot below
  :math:`10^{-13} \max_i |A_{ii}|` (round-off level relative to the matrix) is taken as zero
  and its column set to zero, which is the right factor of a degenerate covariance for
  sampling (:math:`x = m + L z`); the upper triangle is zeroed.
* :func:`solve_lower`, :func:`solve_upper_t` -- :math:`L^{-1} b` and :math:`L^{-\top} b` by
  forward and back substitution.
"""

from __future__ import annotations

import math

import numba as nb

#: Largest pivot accepted: beyond it the factor's square or the log-determinant leaves float64's range.
_LARGEST = 1.7e308


@nb.njit(cache=True, inline="always")
def _pivot(a, out, j):
    """The squared pivot of column ``j``: ``a[j, j]`` minus the squares of row ``j``'s finished entries."""
    s = a[j, j]
    for k in range(j):
        s -= out[j, k] * out[j, k]
    return s


@nb.njit(cache=True, inline="always")
def _column(a, out, j, n, ljj):
    """Column ``j`` of the factor below its pivot ``ljj``."""
    out[j, j] = ljj
    for i in range(j + 1, n):
        s = a[i, j]
        for k in range(j):
            s -= out[i, k] * out[j, k]
        out[i, j] = s / ljj


@nb.njit(cache=True, inline="always")
def cholesky(a, out, n):
    """Lower Cholesky factor of ``a[:n, :n]`` into ``out[:n, :n]`` (lower triangle only; ``out`` may be
    ``a``); ``False`` if ``a`` is not positive definite or a pivot exceeds float64's range."""
    for j in range(n):
        s = _pivot(a, out, j)
        if not 0.0 < s <= _LARGEST:
            return False
        _column(a, out, j, n, math.sqrt(s))
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
        s = _pivot(a, out, j)
        if s <= tiny:
            for i in range(n):
                out[i, j] = 0.0
            continue
        _column(a, out, j, n, math.sqrt(s))
        for i in range(j):
            out[i, j] = 0.0


@nb.njit(cache=True, inline="always")
def solve_lower(L, b, n):
    """In place ``b[:n] = L[:n, :n]^{-1} b[:n]`` (forward substitution); returns the squared norm of
    the result (for ``L L^T = S``: the quadratic form ``b^T S^{-1} b`` of a Gaussian density)."""
    q = 0.0
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * b[k]
        b[i] = s / L[i, i]
        q += b[i] * b[i]
    return q


@nb.njit(cache=True)
def solve_upper_t(L, b, n):
    """In place ``b[:n] = L[:n, :n]^{-T} b[:n]`` (back substitution with the transpose)."""
    for i in range(n - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, n):
            s -= L[k, i] * b[k]
        b[i] = s / L[i, i]


#: Entries of two covariance matrices closer than this many ulps of their scale count as one fixed point.
FIXED_POINT_ULPS = 16.0


@nb.njit(cache=True)
def fixed_point(a, b, n):
    r"""Whether the covariances ``a[:n, :n]`` and ``b[:n, :n]`` agree to round-off.

    ``|a_ij - b_ij| <= c \epsilon \sqrt{a_ii a_jj}`` with ``c =`` :data:`FIXED_POINT_ULPS`
    (the scale of entry ``ij`` of a covariance). The covariance recursions of a
    time-invariant model (Riccati, RTS) converge geometrically to a fixed point
    and then wander within a few ulps of it, never repeating exactly: once two
    consecutive steps agree to round-off, the loops copy the previous step's
    matrices instead of recomputing them (``O(d^2)`` per step instead of
    ``O(d^3)``), a change of the order of the recursion's own rounding.
    NaN agrees with nothing.
    """
    tol = FIXED_POINT_ULPS * 2.220446049250313e-16
    for i in range(n):
        for j in range(i + 1):
            u = abs(a[i, j] - b[i, j])
            v = abs(a[j, i] - b[j, i])
            if u == 0.0 and v == 0.0:  # the common case once the loops copy: no square roots
                continue
            # sqrt(a_ii) sqrt(a_jj), not sqrt(a_ii a_jj) nor squares: covariances of 1e-300 stay in range
            lim = tol * math.sqrt(abs(a[i, i])) * math.sqrt(abs(a[j, j]))
            if not (u <= lim and v <= lim):
                return False
    return True
