"""Small helpers of the linear-Gaussian loops: parameter-stack indexing and symmetrisation.

Cholesky factors and triangular solves are the library's shared kernels,
:mod:`statespace._numerics.linalg`.
"""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True, inline="always")
def ix(n, t):
    """Index into a parameter stack of length ``n`` (1 for time-invariant) at time ``t``."""
    return 0 if n == 1 else t


@nb.njit(cache=True)
def symmetrize(a):
    n = a.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            v = 0.5 * (a[i, j] + a[j, i])
            a[i, j] = v
            a[j, i] = v
