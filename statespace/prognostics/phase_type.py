r"""Discrete phase-type distributions: the time to absorption of a Markov chain.

A chain on transient states :math:`0..m-1` plus absorbing states moves with the
transient block :math:`S` (``(m, m)``, sub-stochastic) and leaves to absorption
with probabilities :math:`s = \mathbf 1 - S\mathbf 1`. Started from
:math:`\alpha` (``alpha_0 = 1 - \alpha\mathbf 1`` is the mass already absorbed),
the number of steps until absorption :math:`\tau` has

.. math::

    P(\tau > n) = \alpha S^n \mathbf 1, \qquad
    P(\tau = n) = \alpha S^{n-1} s \;(n \ge 1), \qquad
    E[\tau] = \alpha (I - S)^{-1} \mathbf 1 .

For prognostics, :math:`\alpha` is the filtered distribution of a degradation
chain at the last observed cycle and absorption is failure; the remaining
useful life counted in whole cycles *after* the last observed one is
``tau - 1`` (:func:`time_to_absorption` with ``offset=1``).

Example (one transient state left with probability 0.1 per step: geometric)::

    import numpy as np
    from statespace.prognostics import time_to_absorption
    d = time_to_absorption([1.0, 0.0], np.array([[0.9, 0.1], [0.0, 1.0]]), absorbing=[1])
    d.mean, d.quantile(0.5)   # 10.0, 7
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from ..errors import DataError, ParameterError, ShapeError
from ..validation import (
    as_float_array,
    check_int,
    check_probability_vector,
    check_real,
    check_shape,
    check_stochastic_matrix,
)


class PhaseTypeDistribution(NamedTuple):
    """A discrete distribution on ``{offset', offset'+1, ...}`` given by its pmf on a finite grid.

    Attributes:
        support: ``(n,)`` integer values ``0, 1, ..., n-1`` (after the offset).
        pmf: ``(n,)`` probabilities on ``support``.
        tail: probability beyond the grid (kept below the requested tolerance).
        mean: exact mean (from the fundamental matrix, not the truncated grid).
        var: exact variance.
    """

    support: np.ndarray
    pmf: np.ndarray
    tail: float
    mean: float
    var: float

    def cdf(self, x) -> np.ndarray:
        """``P(X <= x)`` on the grid (``1 - tail`` beyond it, 0 below it), element-wise (:func:`cdfs`)."""
        x = np.asarray(x, dtype=np.float64)
        return cdfs([self], x if x.ndim <= 1 else x.ravel())[0].reshape(x.shape)

    def quantile(self, q) -> np.ndarray:
        """Smallest integer ``x`` with ``P(X <= x) >= q`` (element-wise for an array ``q``; :func:`quantiles`)."""
        q = np.asarray(q, dtype=np.float64)
        return quantiles([self], q if q.ndim <= 1 else q.ravel())[0].reshape(q.shape)[()]

    def conditioned_below(self, upper: int) -> PhaseTypeDistribution:
        """The distribution of ``X`` given ``X <= upper`` (moments from the grid).

        For prognostics: test engines cut so that at most ``upper`` cycles remain.
        When ``P(X <= upper)`` is zero the result is a point mass at ``upper``.
        """
        upper = check_int("upper", upper, minimum=0)
        pmf = np.zeros(upper + 1)
        n = min(upper + 1, len(self.pmf))
        pmf[:n] = self.pmf[:n]
        z = pmf.sum()
        if z <= 0:
            pmf[-1], z = 1.0, 1.0
        pmf /= z
        x = np.arange(upper + 1)
        mean = float(x @ pmf)
        return PhaseTypeDistribution(x, pmf, 0.0, mean, float(((x - mean) ** 2) @ pmf))

    def truncated_mean(self, cap: float) -> float:
        """``E[min(X, cap)]`` (the point forecast under a capped-RUL convention; a fleet's:
        :func:`statespace.prognostics.capped_means`)."""
        return float(_capped_means([self], np.array([float(cap)]))[0, 0])


# ----------------------------------------------------------------------------- a fleet's readouts
# A fleet's forecasts (one distribution per engine, thousands per cross-validation) are read in
# one compiled pass over their pmfs laid end to end, not one NumPy call per distribution; the
# single distribution's methods are the one-row case, so both give the same bits.


def _packed(distributions):
    """``(pmf, starts, support, tail)``: the pmfs and supports end to end, row ``i`` in ``starts[i]:starts[i+1]``."""
    dists = _distribution_list(distributions)
    for i, d in enumerate(dists):
        if len(d.pmf) == 0:
            raise ShapeError(f"distributions[{i}]: expected a non-empty grid, got an empty pmf")
    if not dists:
        return np.empty(0), np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    if len(dists) == 1:  # a single distribution's method: no copies
        d = dists[0]
        pmf, support = np.asarray(d.pmf, dtype=np.float64), np.asarray(d.support)
        return pmf, np.array([0, len(pmf)]), support, np.array([float(d.tail)])
    starts = np.zeros(len(dists) + 1, dtype=np.int64)
    np.cumsum([len(d.pmf) for d in dists], out=starts[1:])
    pmf = np.concatenate([d.pmf for d in dists]).astype(np.float64, copy=False)
    support = np.concatenate([d.support for d in dists])
    return pmf, starts, support, np.array([d.tail for d in dists], dtype=np.float64)


def _distribution_list(distributions) -> list:
    """``distributions`` as a list, each checked to be a :class:`PhaseTypeDistribution`."""
    dists = distributions if isinstance(distributions, list) else list(distributions)
    for i, d in enumerate(dists):
        if not isinstance(d, PhaseTypeDistribution):
            raise ParameterError(f"distributions[{i}]: expected a PhaseTypeDistribution, got {type(d).__name__}")
    return dists


def _per_row(name, values, n_rows, valid, expected, error) -> np.ndarray:
    """``values`` as ``(n_rows, L)`` float64 (shared ``(L,)`` or one row per distribution), each ``valid``."""
    v = np.asarray(values, dtype=np.float64)
    shared = v.ndim <= 1
    if v.ndim > 2 or (not shared and v.shape[0] != n_rows):
        raise ShapeError(f"{name}: expected shape (L,) or one row per distribution ({n_rows}, L), got {v.shape}")
    bad = np.flatnonzero(~valid(v))
    if bad.size:
        at = np.unravel_index(bad[0], v.shape)
        where = f"{name}[{', '.join(map(str, at))}]" if v.ndim else name
        raise error(f"{where}: expected {expected}, got {v[at]}")
    return np.ascontiguousarray(np.broadcast_to(v.reshape(1, -1), (n_rows, v.size)) if shared else v)


def quantiles(distributions, q) -> np.ndarray:
    """``(n, L)``: for each distribution the smallest grid value ``x`` with ``P(X <= x) >= q``.

    ``q``: levels in ``[0, 1]``, shared by every distribution (``(L,)``) or one row per
    distribution (``(n, L)``). The rule of :meth:`PhaseTypeDistribution.quantile`, computed for
    the whole fleet in one compiled pass (the same cumulative sums, to the bit).
    """
    pmf, starts, support, _ = _packed(distributions)
    levels = _per_row(
        "q", q, len(starts) - 1, lambda v: (v >= 0.0) & (v <= 1.0), "a probability in [0, 1]", ParameterError
    )
    out = np.empty(levels.shape, dtype=support.dtype)
    _quantiles(pmf, starts, support, levels, out)
    return out


def cdfs(distributions, x) -> np.ndarray:
    """``(n, L)``: ``P(X_i <= x_ij)`` for each distribution ``i`` (``x`` shared ``(L,)`` or per row ``(n, L)``).

    Below the grid 0, beyond it ``1 - tail`` (the grid's total); ``x`` may be infinite, not NaN.
    """
    pmf, starts, _, _ = _packed(distributions)
    at = _per_row("x", x, len(starts) - 1, lambda v: ~np.isnan(v), "a number", DataError)
    out = np.empty(at.shape)
    _cdfs(pmf, starts, at, out)
    return out


def _capped_means(distributions, caps) -> np.ndarray:
    """``(n, len(caps))``: ``E[min(X_i, c)] = sum_x min(x, c) p_i(x) + c * tail_i`` (caps checked by
    the caller, :func:`statespace.prognostics.capped_means`)."""
    pmf, starts, support, tail = _packed(distributions)
    out = np.empty((len(starts) - 1, len(caps)))
    _truncated_means(pmf, starts, support.astype(np.float64, copy=False), tail, np.asarray(caps, np.float64), out)
    return out


@nb.njit(cache=True)
def _quantiles(pmf, starts, support, q, out):
    # a tiny slack so that exact closed-form quantiles are not pushed up by rounding
    for i in range(len(starts) - 1):
        c = np.cumsum(pmf[starts[i] : starts[i + 1]])
        last = len(c) - 1
        for j in range(q.shape[1]):
            out[i, j] = support[starts[i] + min(np.searchsorted(c, q[i, j] - 1e-12), last)]


@nb.njit(cache=True)
def _cdfs(pmf, starts, x, out):
    for i in range(len(starts) - 1):
        c = np.cumsum(pmf[starts[i] : starts[i + 1]])
        last = len(c) - 1
        for j in range(x.shape[1]):
            if x[i, j] < 0.0:
                out[i, j] = 0.0
            elif x[i, j] >= last:
                out[i, j] = c[last]
            else:
                out[i, j] = c[int(np.floor(x[i, j]))]


@nb.njit(cache=True)
def _truncated_means(pmf, starts, support, tail, caps, out):
    for i in range(len(starts) - 1):
        for j in range(len(caps)):
            total = 0.0
            for k in range(starts[i], starts[i + 1]):
                total += min(support[k], caps[j]) * pmf[k]
            out[i, j] = total + caps[j] * tail[i]


def mixture(distributions, weights=None) -> PhaseTypeDistribution:
    r"""The linear pool :math:`\sum_i w_i\, p_i` of discrete distributions on ``0, 1, 2, ...``.

    The pmf is the weighted sum of the members' pmfs (each padded to the longest
    grid), the tail the weighted sum of their tails, and the moments exact
    from the members': :math:`E[X] = \sum_i w_i \mu_i` and
    :math:`\mathrm{Var}\,X = \sum_i w_i (\sigma_i^2 + \mu_i^2) - E[X]^2`.

    Args:
        distributions: ``PhaseTypeDistribution`` members, supports starting at 0.
        weights: non-negative, summing to 1 (default: equal weights).
    """
    dists = _distribution_list(distributions)
    if not dists:
        raise ShapeError("distributions: expected at least one distribution to mix")
    for i, d in enumerate(dists):
        if len(d.support) and d.support[0] != 0:
            raise ParameterError(f"distributions[{i}]: expected a support starting at 0, got {d.support[0]}")
    if weights is None:
        w = np.full(len(dists), 1.0 / len(dists))
    else:
        w = check_probability_vector("weights", weights, len(dists))
    n = max(len(d.pmf) for d in dists)
    pmf = np.zeros(n)
    for wi, d in zip(w, dists):
        pmf[: len(d.pmf)] += wi * np.asarray(d.pmf)
    mean = float(sum(wi * d.mean for wi, d in zip(w, dists)))
    second = float(sum(wi * (d.var + d.mean**2) for wi, d in zip(w, dists)))
    tail = float(sum(wi * d.tail for wi, d in zip(w, dists)))
    return PhaseTypeDistribution(np.arange(n), pmf, tail, mean, max(second - mean**2, 0.0))


def time_to_absorption(
    state_probs,
    transition,
    absorbing=None,
    offset: int = 0,
    tol: float = 1e-10,
    max_steps: int = 100_000,
) -> PhaseTypeDistribution:
    """Distribution of the number of steps until a chain started from ``state_probs`` is absorbed.

    Args:
        state_probs: ``(K,)`` distribution of the current state.
        transition: ``(K, K)`` transition matrix.
        absorbing: indices of the absorbing states (default: states with ``A[k, k] == 1``).
        offset: subtracted from ``tau`` (``offset=1`` gives the RUL after the
            current cycle when the failed state is entered one step after the last
            operating cycle). Mass already absorbed counts as ``tau = offset``,
            so the result is never negative.
        tol: the grid stops when ``P(tau > n) < tol``.
        max_steps: hard limit on the grid (raises if the tail is still above ``tol``).
    """
    A = _square_chain(transition)
    alpha = check_probability_vector("state_probs", state_probs, A.shape[0])
    return _distributions(alpha[None], A, absorbing, offset, tol, max_steps, ("state_probs",))[0]


def times_to_absorption(
    state_probs,
    transition,
    absorbing=None,
    offset: int = 0,
    tol: float = 1e-10,
    max_steps: int = 100_000,
) -> list[PhaseTypeDistribution]:
    """:func:`time_to_absorption` for every row of ``state_probs (n, K)`` under one chain.

    The same distributions as ``n`` calls (the same arithmetic, in the same order), with the
    chain checked and its fundamental matrix solved once and the survival curves of all rows
    advanced together in one compiled loop: what a fleet's remaining-useful-life forecasts need
    (one filtered state distribution per engine, one fitted chain).
    """
    A = _square_chain(transition)
    P = check_stochastic_matrix("state_probs", as_float_array("state_probs", state_probs, 2))
    check_shape("state_probs", P, (P.shape[0], A.shape[0]))
    return _distributions(P, A, absorbing, offset, tol, max_steps, [f"state_probs[{i}]" for i in range(len(P))])


def _square_chain(transition) -> np.ndarray:
    A = check_stochastic_matrix("transition", transition)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ShapeError(f"transition: expected a square matrix, got shape {A.shape}")
    return A


@nb.njit(cache=True)
def _survival_curves(a, S, tol, max_steps):
    r"""``P(tau > n) = a_r S^n 1`` for every row ``a_r`` of ``a``, from ``n = 0`` until it is at most ``tol``.

    Returns ``(curves, lengths)``: row ``r``'s curve is ``curves[r, :lengths[r]]``;
    ``lengths[r] = -1`` when ``P(tau > max_steps)`` is still above ``tol`` (the curve then
    holds ``max_steps + 1`` values). Each step is :math:`v \leftarrow v S` summed over ``i``
    in order, then :math:`\sum_j v_j` in order: the same arithmetic for a row whatever the others.

    The rows still running are advanced together, the innermost loop running over them (vector
    lanes), and the rows of ``S`` are visited only from their first to their last non-zero column
    (a left-to-right degradation chain's rows are narrow bands; the terms skipped are exact zeros,
    so every curve is that of the dense product to the bit). A row whose curve ends is swapped
    out of the running block.
    """
    R, m = a.shape
    first = np.zeros(m, dtype=np.int64)
    stop = np.zeros(m, dtype=np.int64)
    for i in range(m):
        for j in range(m):
            if S[i, j] != 0.0:
                if stop[i] == 0:
                    first[i] = j
                stop[i] = j + 1
    cap = 256
    curves = np.empty((R, cap))
    lengths = np.zeros(R, dtype=np.int64)
    # the running rows in columns 0..active-1 of v (state-major), ids[c] the row in column c
    v = np.empty((m, R))
    ids = np.empty(R, dtype=np.int64)
    active = 0
    for r in range(R):
        total = 0.0
        for j in range(m):
            total += a[r, j]
        curves[r, 0] = total
        if total <= tol:
            lengths[r] = 1
        else:
            for j in range(m):
                v[j, active] = a[r, j]
            ids[active] = r
            active += 1
    nxt = np.empty((m, R))
    total = np.empty(R)
    n = 0
    while active > 0:
        n += 1
        if n > max_steps:
            for c in range(active):
                lengths[ids[c]] = -1
            break
        if n >= cap:
            grown = np.empty((R, 2 * cap))
            grown[:, :cap] = curves
            curves, cap = grown, 2 * cap
        for j in range(m):
            for c in range(active):
                nxt[j, c] = 0.0
        for i in range(m):
            for j in range(first[i], stop[i]):
                sij = S[i, j]
                for c in range(active):
                    nxt[j, c] += v[i, c] * sij
        for c in range(active):
            total[c] = 0.0
        for j in range(m):
            for c in range(active):
                v[j, c] = nxt[j, c]
                total[c] += nxt[j, c]
        c = 0
        while c < active:
            r = ids[c]
            curves[r, n] = total[c]
            if total[c] <= tol:
                lengths[r] = n + 1
                active -= 1  # the last running row takes this column
                ids[c] = ids[active]
                total[c] = total[active]
                for j in range(m):
                    v[j, c] = v[j, active]
            else:
                c += 1
    return curves, lengths


def _distributions(P, A, absorbing, offset, tol, max_steps, names) -> list[PhaseTypeDistribution]:
    """The time to absorption from each row of ``P (n, K)`` (checked) under ``A`` (checked)."""
    K = A.shape[0]
    if absorbing is None:
        absorbing = np.flatnonzero(np.isclose(np.diag(A), 1.0))
    absorbing = np.unique(
        [
            check_int(f"absorbing[{i}]", a, minimum=0)
            for i, a in enumerate(np.atleast_1d(as_float_array("absorbing", absorbing, (0, 1))))
        ]
    ).astype(np.int64)
    if absorbing.size == 0:
        raise ParameterError("absorbing: the chain has no absorbing state (no k with transition[k, k] == 1)")
    if absorbing.min() < 0 or absorbing.max() >= K:
        raise ParameterError(f"absorbing: indices must lie in 0..{K - 1}, got {absorbing.tolist()}")
    transient = np.setdiff1d(np.arange(K), absorbing)
    S = np.ascontiguousarray(A[np.ix_(transient, transient)])
    a = np.ascontiguousarray(P[:, transient])
    offset = check_int("offset", offset, minimum=0)
    tol = check_real("tol", tol, 0.0, strict=True)
    max_steps = check_int("max_steps", max_steps, minimum=1)

    # Exact moments from the fundamental matrix N = (I - S)^{-1}.
    m = len(transient)
    if m:
        try:
            N1 = np.linalg.solve(np.eye(m) - S, np.ones(m))
        except np.linalg.LinAlgError:
            raise ParameterError("transition: some transient state never reaches an absorbing state") from None
        if not np.all(np.isfinite(N1)) or np.any(N1 < 0):
            raise ParameterError("transition: some transient state never reaches an absorbing state")
        N2 = np.linalg.solve(np.eye(m) - S, N1)
        e1s, e2s = a @ N1, a @ (2.0 * N2 - N1)  # E[tau], E[tau^2]
    else:
        e1s = e2s = np.zeros(len(a))

    curves, lengths = _survival_curves(a, S, tol, max_steps)
    failed = np.flatnonzero(lengths < 0)
    if len(failed):
        r = int(failed[0])
        where = f" ({names[r]})" if len(names) > 1 else ""
        raise ParameterError(
            f"max_steps: P(tau > {max_steps}) = {curves[r, max_steps]:.3g} is still above tol={tol}{where}"
        )
    flat, starts, below1, below2 = _pmfs(curves, lengths, offset)
    # X = max(tau - offset, 0): the exact moments of tau - offset, corrected on the
    # few grid points below the offset where the max clips
    mean = (e1s - offset) + below1
    var = (e2s - 2 * offset * e1s + offset**2) - below2 - mean * mean
    tails = curves[np.arange(len(a)), lengths - 1]
    # every row's pmf a view of one block, every support a view of one read-only grid
    grid = np.arange(int(np.max(np.diff(starts), initial=0)))
    grid.flags.writeable = False
    return [
        PhaseTypeDistribution(grid[: e - b], flat[b:e], float(t), float(mu), float(max(v, 0.0)))
        for b, e, t, mu, v in zip(starts[:-1].tolist(), starts[1:].tolist(), tails, mean, var)
    ]


@nb.njit(cache=True)
def _pmfs(curves, lengths, offset):
    """Each row's pmf of ``X = max(tau - offset, 0)`` from its survival curve, end to end, and the sums
    ``sum_{n < offset} (offset - n) P(tau = n)`` and ``sum_{n < offset} (n - offset)^2 P(tau = n)``.

    ``P(tau = 0) = max(1 - P(tau > 0), 0)``, ``P(tau = n) = max(P(tau > n-1) - P(tau > n), 0)``; the
    mass at ``tau <= offset`` collects at ``X = 0``. Sums run in grid order.
    """
    R = len(lengths)
    starts = np.zeros(R + 1, dtype=np.int64)
    for r in range(R):
        starts[r + 1] = starts[r] + max(lengths[r] - offset, 1)
    flat = np.empty(starts[R])
    below1 = np.zeros(R)
    below2 = np.zeros(R)
    for r in range(R):
        L = lengths[r]
        o = starts[r]
        first = 0.0
        for n in range(L):
            p = max(1.0 - curves[r, 0], 0.0) if n == 0 else max(curves[r, n - 1] - curves[r, n], 0.0)
            if n < offset:
                below1[r] += (offset - n) * p
                below2[r] += float((n - offset) ** 2) * p
            if n <= offset:
                first = first + p if n else p
            else:
                flat[o + n - offset] = p
        flat[o] = first
    return flat, starts, below1, below2
