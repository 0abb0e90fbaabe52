r"""Pieces shared by the deep SSM layers: the linear-recurrence scan, HiPPO matrices, initialisers.

Every layer here is a diagonal linear recurrence

.. math::  x_t = \bar a_t \odot x_{t-1} + b_t,

run either in *parallel* (an associative scan: ``(a_1, b_1) \bullet (a_2, b_2) =
(a_1 a_2,\; a_2 b_1 + b_2)``, depth ``log2 L``) or one step at a time (what a
filter or a sampler needs online). Both use the same discretised coefficients,
which is why they agree to rounding error.

The HiPPO-LegS matrix (Gu et al. 2020) is

.. math::  A_{nk} = -\begin{cases}\sqrt{(2n+1)(2k+1)} & n > k\\ n+1 & n = k\\ 0 & n < k\end{cases},
           \qquad B_n = \sqrt{2n+1},

and its *normal part* ``A + P P^T`` with ``P_n = sqrt(n + 1/2)`` is ``-I/2`` plus a
skew-symmetric matrix, so it is unitarily diagonalisable with eigenvalues
``-1/2 + i w``; S4D-LegS and S5 start from those eigenvalues.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ShapeError


def linear_scan(a, b, axis: int = 0, x0=None):
    """All states of ``x_t = a_t * x_{t-1} + b_t`` (``x_{-1} = x0`` or 0) by an associative scan.

    ``a`` broadcasts against ``b``; the recurrence runs along ``axis``.
    """
    a = jnp.broadcast_to(a, b.shape)
    if x0 is not None:
        first = jax.lax.index_in_dim(b, 0, axis) + jax.lax.index_in_dim(a, 0, axis) * jnp.expand_dims(x0, axis)
        b = jax.lax.dynamic_update_index_in_dim(b, first, 0, axis)

    def combine(left, right):
        a1, b1 = left
        a2, b2 = right
        return a1 * a2, a2 * b1 + b2

    return jax.lax.associative_scan(combine, (a, b), axis=axis)[1]


def hippo_legs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The HiPPO-LegS ``(A, B)`` of size ``n`` (numpy, float64)."""
    q = np.sqrt(2.0 * np.arange(n) + 1.0)
    A = -np.tril(np.outer(q, q), -1) - np.diag(np.arange(n) + 1.0)
    return A, q.copy()


def hippo_normal_eig(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition of the normal part of HiPPO-LegS: ``(lam (n,), V (n, n), B (n,))``.

    ``A + P P^T = V diag(lam) V^*`` with ``V`` unitary; ``B`` is HiPPO-LegS's input vector.
    """
    A, B = hippo_legs(n)
    p = np.sqrt(np.arange(n) + 0.5)
    S = A + np.outer(p, p)
    skew = S + 0.5 * np.eye(n)
    # i * skew is Hermitian: eigh is stable and returns a unitary V.
    w, V = np.linalg.eigh(1j * skew)
    lam = -0.5 - 1j * w
    return lam, V, B


def lecun_normal(key, shape, fan_in: int, dtype=None):
    """Normal entries with variance ``1 / fan_in``."""
    return jax.random.normal(key, shape, dtype=dtype or jnp.result_type(float)) / np.sqrt(fan_in)


def log_uniform(key, shape, low: float, high: float):
    """``log`` of draws that are log-uniform on ``[low, high]``."""
    u = jax.random.uniform(key, shape, dtype=jnp.result_type(float))
    return np.log(low) + u * (np.log(high) - np.log(low))


def over_batch(fn, n_core: int):
    """Apply ``fn(params, *arrays)`` written for unbatched arrays of ``n_core`` dims to any leading batch dims.

    Only the first array decides the batch shape; other array arguments are either
    batched alike or ``None``.
    """

    def wrapped(params, u, *rest):
        extra = u.ndim - n_core
        if extra < 0:
            raise ShapeError(f"inputs: expected at least {n_core} dimensions, got shape {u.shape}")
        f = fn
        for _ in range(extra):
            axes = (None, 0) + tuple(None if r is None else 0 for r in rest)
            f = jax.vmap(f, in_axes=axes)
        return f(params, u, *rest)

    return wrapped
