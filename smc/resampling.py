r"""Resampling schemes: draw ancestor indices from normalised weights.

Given normalised weights :math:`W^{1:N}` and a number of offspring :math:`M`,
every scheme returns ancestor indices :math:`A^{1:M}` (sorted increasingly) whose
offspring counts :math:`O^n = \#\{m : A^m = n\}` are unbiased,
:math:`\mathbb E[O^n] = M W^n`. They differ in variance:

* **multinomial** -- :math:`A^m \overset{iid}{\sim} \mathcal M(W)`; drawn by inverting the
  CDF at :math:`M` sorted uniforms (normalised cumulative sums of exponentials),
  so it costs :math:`O(N + M)`, not :math:`O(M \log N)`.
* **stratified** -- inverts the CDF at :math:`U^m = (m + V^m)/M` with independent
  :math:`V^m \sim \mathcal U[0,1)`.
* **systematic** -- the same with a single :math:`V` shared by all strata;
  lowest variance in practice, the default.
* **residual** -- keeps :math:`\lfloor M W^n \rfloor` copies of particle :math:`n`
  and draws the :math:`R = M - \sum_n \lfloor M W^n\rfloor` remaining ones
  multinomially from the residual weights :math:`(M W^n - \lfloor M W^n\rfloor)/R`.

The compiled functions take a ``numpy.random.Generator`` so that a seed
reproduces a run; particle routines call :func:`resample_compiled` with an
integer scheme code (see :func:`scheme_code`). Example::

    import numpy as np
    from smc.resampling import resample
    A = resample([0.1, 0.2, 0.7], scheme="systematic", n=10, rng=0)
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from statespace.errors import ParameterError
from statespace.validation import as_float_array, as_rng, check_int

MULTINOMIAL, STRATIFIED, SYSTEMATIC, RESIDUAL = 0, 1, 2, 3

#: Scheme names and their integer codes (what the compiled loops take).
SCHEMES = {"multinomial": MULTINOMIAL, "stratified": STRATIFIED, "systematic": SYSTEMATIC, "residual": RESIDUAL}


def scheme_code(name: str, argument: str = "resampling") -> int:
    """The integer code of a resampling scheme named ``name`` (``argument``: how the caller calls it)."""
    try:
        return SCHEMES[name]
    except (KeyError, TypeError):
        raise ParameterError(f"{argument}: expected one of {sorted(SCHEMES)}, got {name!r}") from None


@nb.njit(cache=True)
def inverse_cdf(su, W):
    """Indices ``A[m] = min{n : W[0] + ... + W[n] > su[m]}`` for sorted uniforms ``su``."""
    M = su.shape[0]
    N = W.shape[0]
    A = np.empty(M, dtype=np.int64)
    j = 0
    s = W[0]
    for m in range(M):
        # the last index absorbs the rounding error of the cumulative sum
        while su[m] > s and j < N - 1:
            j += 1
            s += W[j]
        A[m] = j
    return A


@nb.njit(cache=True)
def uniform_spacings(M, rng):
    """``M`` sorted uniforms on [0, 1) in O(M) (normalised cumulative sums of exponentials)."""
    z = np.empty(M + 1)
    s = 0.0
    for m in range(M + 1):
        s += rng.standard_exponential()
        z[m] = s
    return z[:M] / s


@nb.njit(cache=True)
def multinomial(W, M, rng):
    """``M`` iid draws from the categorical distribution ``W``, returned sorted."""
    return inverse_cdf(uniform_spacings(M, rng), W)


@nb.njit(cache=True)
def stratified(W, M, rng):
    """Stratified resampling: one uniform per stratum ``[m/M, (m+1)/M)``."""
    su = np.empty(M)
    for m in range(M):
        su[m] = (m + rng.random()) / M
    return inverse_cdf(su, W)


@nb.njit(cache=True)
def systematic_into(W, rng, out):
    """Systematic resampling of ``M = out.shape[0]`` ancestors, written into ``out`` (no allocation).

    ``A[m] = min{n : S_n >= (m + V) / M}`` (capped at ``N - 1``) for the cumulative weights ``S_n``.
    The merge loop that walks ``m`` and ``n`` together mispredicts a branch about once per particle
    when the weights change from step to step (a filter), so the same indices are computed without
    data-dependent branches: ``A[m]`` is the number of ``n`` whose count of points
    ``C_n = #{m : (m + V) / M <= S_n}`` is at most ``m``; scatter ``+1`` at each ``C_n`` and take
    prefix sums.
    """
    M = out.shape[0]
    N = W.shape[0]
    v = rng.random()
    S = np.empty(N)
    s = 0.0
    for n in range(N):
        s += W[n]
        S[n] = s
    C = np.empty(N, dtype=np.int64)
    # a separate loop without the cumulative sum's dependency chain, so that it vectorises
    for n in range(N):
        s = S[n]
        c = max(int(math.floor(M * s - v)) + 1, 0)
        # the same comparison (m + v) / M <= s as the merge loop, for agreement at rounding boundaries
        # (branch-free; at c = 0 the first test is false since s >= 0)
        c -= np.int64((c - 1 + v) / M > s)
        c += np.int64((c + v) / M <= s)
        C[n] = min(c, M)
    for m in range(M):
        out[m] = 0
    for n in range(N):
        if C[n] < M:
            out[C[n]] += 1
    a = 0
    for m in range(M):
        a += out[m]
        out[m] = min(a, N - 1)


@nb.njit(cache=True)
def systematic(W, M, rng):
    """Systematic resampling: the strata share one uniform."""
    A = np.empty(M, dtype=np.int64)
    systematic_into(W, rng, A)
    return A


@nb.njit(cache=True)
def residual(W, M, rng):
    """Residual resampling: deterministic copies, then multinomial on the residuals."""
    N = W.shape[0]
    counts = np.empty(N, dtype=np.int64)
    res = np.empty(N)
    total = 0
    for n in range(N):
        mw = M * W[n]
        c = int(math.floor(mw))
        counts[n] = c
        res[n] = mw - c
        total += c
    R = M - total
    if R > 0:
        s = res.sum()
        for n in range(N):
            res[n] /= s
        extra = multinomial(res, R, rng)
        for r in range(R):
            counts[extra[r]] += 1
    A = np.empty(M, dtype=np.int64)
    m = 0
    for n in range(N):
        for _ in range(counts[n]):
            A[m] = n
            m += 1
    return A


@nb.njit(cache=True)
def resample_compiled(code, W, M, rng):
    """Dispatch on a scheme code (see :data:`SCHEMES`); ``W`` must be normalised."""
    if code == MULTINOMIAL:
        return multinomial(W, M, rng)
    if code == STRATIFIED:
        return stratified(W, M, rng)
    if code == RESIDUAL:
        return residual(W, M, rng)
    return systematic(W, M, rng)


@nb.njit(cache=True)
def resample_into(code, W, rng, out):
    """:func:`resample_compiled` with ``M = out.shape[0]`` written into ``out`` (the same draws).

    The default systematic scheme then allocates nothing, which the filters do at every step.
    """
    if code == SYSTEMATIC:
        systematic_into(W, rng, out)
    else:
        A = resample_compiled(code, W, out.shape[0], rng)
        for m in range(out.shape[0]):
            out[m] = A[m]


def resample(weights, scheme: str = "systematic", n: int | None = None, rng=None) -> np.ndarray:
    """Ancestor indices drawn from ``weights`` (non-negative, normalised here).

    Args:
        weights: ``(N,)`` non-negative weights, not all zero.
        scheme: ``"multinomial"``, ``"stratified"``, ``"systematic"`` or ``"residual"``.
        n: number of draws (default ``N``).
        rng: ``numpy.random.Generator`` or seed.

    Returns:
        ``(n,)`` int64 ancestor indices, sorted increasingly.
    """
    code = scheme_code(scheme, "scheme")
    W = as_float_array("weights", weights, 1)
    if W.size == 0:
        raise ParameterError("weights: expected at least one weight")
    bad = ~np.isfinite(W) | (W < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ParameterError(f"weights: expected finite non-negative values, got {W[i]} at index {i}")
    total = W.sum()
    if not total > 0:
        raise ParameterError("weights: all weights are zero")
    M = len(W) if n is None else check_int("n", n, minimum=1)
    return resample_compiled(code, W / total, M, as_rng(rng))
