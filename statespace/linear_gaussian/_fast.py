"""The Kalman filter, RTS and E-step time loops, written once and specialised per dimension.

This module is a template. ``D`` and ``M`` below are 0 here, which makes the
loops read the state and observation dimensions from the arrays (the generic
kernels). :mod:`statespace.linear_gaussian._specialise` writes copies of this
file with ``D`` and ``M`` set to literal values; Numba then treats them as
compile-time constants, so the small fixed-size loops are unrolled and
vectorised, and ``cache=True`` keeps the
compiled code across processes.

Everything happens in one function per pass, indexing the output arrays
directly: no allocation, no array views and no calls in the time loop. Each
pass writes its outputs as views of one block given by the caller: EM reuses
its blocks across iterations, and one-off calls allocate one large block, which
stays in the C allocator's heap between calls (glibc returns freed memory to the
system above an adaptive threshold that a few large blocks raise), so repeated
calls do not pay fresh page faults, which otherwise cost several times the
arithmetic.
The mathematics is documented in :mod:`~statespace.linear_gaussian.kalman`
and :mod:`~statespace.linear_gaussian.smoother`.
"""

import math

import numba as nb
import numpy as np

from statespace._numerics.copy import copy_into
from statespace._numerics.fastmath import FASTMATH
from statespace._numerics.linalg import cholesky, fixed_point, solve_lower
from statespace._standalone import standalone
from statespace.errors import DataError
from statespace.linear_gaussian.kernels import (
    _layout,
    _mat_add,
    add_emission_stats,
    residual_cov,
    stats_workspace,
)
from statespace.linear_gaussian.params import KernelParams

D = 0
M = 0

_LOG_2PI = math.log(2.0 * math.pi)
# Reassociation lets LLVM vectorise the small reductions; "nnan" stays off because NaN marks missing data.
_FLAGS = dict(cache=True, fastmath=FASTMATH)

FAIL_INNOVATION = 0
FAIL_OVERFLOW = 1
FAIL_CANCELLATION = 2
FAIL_IMPOSSIBLE = 3
_EPS = 2.220446049250313e-16


def filter_size(T: int, d: int) -> int:
    """Length of the output block of :func:`filter_loop`."""
    return 2 * T * d * (d + 1)


def rts_size(T: int, d: int) -> int:
    """Length of the output block of :func:`rts_loop`."""
    return T * d + (T + 2 * max(T - 1, 0)) * d * d


@nb.njit(**_FLAGS)
def filter_loop(kp, y, buf):
    """Kalman filter over ``y`` (``(T, m)``, NaN = missing); outputs are views of ``buf`` (:func:`filter_size`).

    Returns ``(loglik, filtered_means, filtered_covs, predicted_means, predicted_covs, bad, why)``
    where ``bad`` is the first time step the filter cannot represent, or -1, and
    ``why`` says what failed there (the pass stops at ``bad``; ``loglik`` covers the
    steps before it):

    * ``FAIL_INNOVATION``: the innovation covariance is not positive definite in
      float64, or exceeds its range;
    * ``FAIL_OVERFLOW``: the predicted mean or covariance exceeds float64's range
      (an unstable ``F`` over many missing steps);
    * ``FAIL_CANCELLATION``: the mean update cancels a prediction so far from the
      data that its rounding error (bounded by ``4 eps`` times the magnitudes it
      summed) exceeds the filtered standard deviation, of a state coordinate or
      along an observed row of ``H``, and is 1e3 times the float64 resolution of
      the result: the filtered mean would be round-off, and every later
      innovation with it;
    * ``FAIL_IMPOSSIBLE``: the observation's log-density is below float64's range
      (``loglik`` is then ``-inf``, exactly as for every longer sequence).
    """
    T = y.shape[0]
    d = D if D > 0 else kp.m0.shape[0]
    fm = buf[: T * d].reshape((T, d))
    pm = buf[T * d : 2 * T * d].reshape((T, d))
    fP = buf[2 * T * d : 2 * T * d + T * d * d].reshape((T, d, d))
    pP = buf[2 * T * d + T * d * d :].reshape((T, d, d))
    none = np.empty((0, 0, 0))
    # np.int64: a run-time mode, so that this filter and the batch's share one compiled _filter
    mode = np.int64(PLAIN)
    ll, bad, why = _filter(kp, y, fm, pm, fP, pP, mode, none, none, np.empty(0), np.empty((0, 0)), None, None)
    return ll, fm, fP, pm, pP, bad, why


#: What :func:`_filter` does: the whole filter; the whole filter, recording the covariance side's
#: per-step factors; the means only, replaying factors recorded for an earlier sequence.
PLAIN, RECORD, REPLAY = 0, 1, 2


@nb.njit(inline="always")
def _same(a, ra, rb, d):
    """Whether rows ``ra`` and ``rb`` of the covariances ``a`` agree to round-off (:func:`fixed_point`);
    a row aliased to itself (see :func:`_filter`'s ``ixf``) agrees without a look."""
    return ra == rb or fixed_point(a[ra], a[rb], d)


@standalone
@nb.njit(**_FLAGS)
def _filter(kp, y, fm, pm, fP, pP, mode, gHP, gL, glog, gsd, ixf, ixp):
    """:func:`filter_loop` into the given ``(T, d)`` means and ``(T, d, d)`` covariances, or with
    ``mode`` one of its two halves for a batch of sequences; returns ``(loglik, bad, why)``.

    Sequences of one length with the same missing coordinates share every covariance of the
    filter (they depend on the pattern of observed coordinates only). The first runs with
    ``RECORD``, which also stores the per-step factors of the update's covariance side
    (``gHP[t] = H_o P_{t|t-1}``, ``gL[t]`` the factor of ``S_t``, ``glog[t] = log|S_t| / 2``,
    ``gsd[t]`` the filtered standard deviations along the observed rows of ``H``); the others
    run with ``REPLAY`` on that sequence's covariances ``fP, pP`` (read, not written): they
    read those factors instead of computing them, at ``O(d^2 + d m + m^2)`` per step, and the
    rest of the step is the very arithmetic of the whole filter (the same numbers to the bit).

    Given arrays ``ixf, ixp`` (``PLAIN`` only; ``None`` copies), a covariance at its fixed point is
    not copied to the next step's row: ``ixf[t]`` (``ixp[t]``) is the row of ``fP`` (``pP``) that
    holds step ``t``'s, ``t`` itself or the previous step's row. A long sequence then reads and
    writes ``O(d^2)`` numbers per step once the Riccati recursion has converged, instead of
    copying two ``d x d`` matrices, which at ``d = 16`` moved 40 MB per 10,000 steps. The numbers
    are those of the copying filter, to the bit. (``None`` is a type of its own: Numba compiles the
    copying loops without the row bookkeeping.)
    """
    record = mode == RECORD
    replay = mode == REPLAY
    compact = ixf is not None
    T = y.shape[0]
    d = D if D > 0 else kp.m0.shape[0]
    m = M if M > 0 else y.shape[1]
    Fs, Qs, Hs, Rs, bus, dus = kp.F, kp.Q, kp.H, kp.R, kp.bu, kp.du
    nF, nQ, nH, nR, nU = Fs.shape[0], Qs.shape[0], Hs.shape[0], Rs.shape[0], bus.shape[0]
    obs = np.empty(m, np.int64)
    HP = np.empty((m, d))
    S = np.empty((m, m))
    L = np.empty((m, m))
    e = np.empty(m)
    K = np.empty((d, m))
    A = np.empty((d, d))
    AP = np.empty((d, d))
    tmp = np.empty((d, d))
    KR = np.empty((d, m))
    mag = np.empty(d)
    hsd = np.empty(m)  # filtered standard deviation along each observed row of H
    fixed_fq = nF == 1 and nQ == 1
    fixed_hr = nH == 1 and nR == 1
    n_prev = -1  # observed coordinates at the previous step (-1: none yet)
    logdet = 0.0
    ll = 0.0
    # With ``compact`` the rows are written out at each use ("ixf[t - 1] if compact else t - 1"): held in
    # variables carried from step to step, they slowed the copying loops down (20% at d = 2).
    for t in range(T):
        if t == 0:
            if compact:
                ixp[0] = 0
            for i in range(d):
                pm[0, i] = kp.m0[i]
                if not replay:
                    for j in range(d):
                        pP[0, i, j] = kp.P0[i, j]
        else:
            f = 0 if nF == 1 else t
            q = 0 if nQ == 1 else t
            uu = 0 if nU == 1 else t
            for i in range(d):
                s = bus[uu, i]
                for k in range(d):
                    s += Fs[f, i, k] * fm[t - 1, k]
                pm[t, i] = s
            if replay:
                pass
            elif (
                fixed_fq and t >= 2 and _same(fP, ixf[t - 1] if compact else t - 1, ixf[t - 2] if compact else t - 2, d)
            ):
                # the Riccati recursion reached a fixed point: F P F^T + Q of the same P, bit for bit
                if compact:
                    ixp[t] = ixp[t - 1]
                else:
                    for i in range(d):
                        for j in range(d):
                            pP[t, i, j] = pP[t - 1, i, j]
            else:
                for i in range(d):
                    for j in range(d):
                        s = 0.0
                        for k in range(d):
                            s += Fs[f, i, k] * fP[ixf[t - 1] if compact else t - 1, k, j]
                        tmp[i, j] = s
                for i in range(d):
                    for j in range(i + 1):
                        s = Qs[q, i, j]
                        for k in range(d):
                            s += tmp[i, k] * Fs[f, j, k]
                        pP[t, i, j] = s
                        pP[t, j, i] = s
                if compact:
                    ixp[t] = t
            for i in range(d):
                if not (abs(pm[t, i]) <= 1.7e308 and pP[ixp[t] if compact else t, i, i] <= 1.7e308):
                    return ll, t, FAIL_OVERFLOW
        h = 0 if nH == 1 else t
        r = 0 if nR == 1 else t
        uu = 0 if nU == 1 else t
        n = 0
        same_pattern = True
        for j in range(m):
            if not math.isnan(y[t, j]):
                if n >= n_prev or obs[n] != j:
                    same_pattern = False
                obs[n] = j
                n += 1
        if n == 0:
            n_prev = 0
            for i in range(d):
                fm[t, i] = pm[t, i]
                if not replay:
                    for j in range(d):
                        fP[t, i, j] = pP[ixp[t] if compact else t, i, j]
            if compact:
                ixf[t] = t
            continue
        # The update's covariance side (S, its factor, the gain, P_{t|t}) is a function of P_{t|t-1},
        # H, R and the observed coordinates alone: when they repeat the previous step's, so does it.
        steady = (
            not replay
            and fixed_hr
            and same_pattern
            and n == n_prev
            and _same(pP, ixp[t] if compact else t, ixp[t - 1] if compact else t - 1, d)
        )
        n_prev = n
        for a in range(n):
            ra = obs[a]
            s = y[t, ra] - dus[uu, ra]
            for k in range(d):
                s -= Hs[h, ra, k] * pm[t, k]
            e[a] = s
        if replay:
            logdet = glog[t]
            for a in range(n):
                hsd[a] = gsd[t, a]
                for j in range(d):
                    HP[a, j] = gHP[t, a, j]
                for b in range(a + 1):
                    L[a, b] = gL[t, a, b]
        elif not steady:
            for a in range(n):
                ra = obs[a]
                for j in range(d):
                    s = 0.0
                    for k in range(d):
                        s += Hs[h, ra, k] * pP[ixp[t] if compact else t, k, j]
                    HP[a, j] = s
            for a in range(n):
                for b in range(a + 1):
                    s = Rs[r, obs[a], obs[b]]
                    for k in range(d):
                        s += HP[a, k] * Hs[h, obs[b], k]
                    S[a, b] = s
            # Cholesky factor of S (lower), then the log-density of the innovation
            if not cholesky(S, L, n):  # not positive definite, or beyond float64's range
                return ll, t, FAIL_INNOVATION
            logdet = 0.0
            for a in range(n):
                logdet += math.log(L[a, a])
        quad = solve_lower(L, e, n)
        ll += -0.5 * (n * _LOG_2PI + quad) - logdet
        if ll == -math.inf:
            return ll, t, FAIL_IMPOSSIBLE
        for a in range(n - 1, -1, -1):
            s = e[a]
            for k in range(a + 1, n):
                s -= L[k, a] * e[k]
            e[a] = s / L[a, a]
        # mean update m + (H_o P)^T S^{-1} e
        for i in range(d):
            s = pm[t, i]
            acc = abs(s)
            for a in range(n):
                v = HP[a, i] * e[a]
                s += v
                acc += abs(v)
            fm[t, i] = s
            mag[i] = acc  # the magnitudes the update summed: they bound its rounding error
        if replay:
            pass
        elif steady and compact:
            ixf[t] = ixf[t - 1]
        elif steady:
            for i in range(d):
                for j in range(d):
                    fP[t, i, j] = fP[t - 1, i, j]
        else:
            if compact:
                ixf[t] = t
            # gain K = (H_o P)^T S^{-1}, then Joseph form (I - K H_o) P (I - K H_o)^T + K R_oo K^T
            for j in range(d):
                for a in range(n):
                    s = HP[a, j]
                    for k in range(a):
                        s -= L[a, k] * K[j, k]
                    K[j, a] = s / L[a, a]
                for a in range(n - 1, -1, -1):
                    s = K[j, a]
                    for k in range(a + 1, n):
                        s -= L[k, a] * K[j, k]
                    K[j, a] = s / L[a, a]
            for i in range(d):
                for j in range(d):
                    s = 1.0 if i == j else 0.0
                    for a in range(n):
                        s -= K[i, a] * Hs[h, obs[a], j]
                    A[i, j] = s
            for i in range(d):
                for j in range(d):
                    s = 0.0
                    for k in range(d):
                        s += A[i, k] * pP[ixp[t] if compact else t, k, j]
                    AP[i, j] = s
            for i in range(d):
                for a in range(n):
                    s = 0.0
                    for b in range(n):
                        s += K[i, b] * Rs[r, obs[b], obs[a]]
                    KR[i, a] = s
            for i in range(d):
                for j in range(i + 1):
                    s = 0.0
                    for k in range(d):
                        s += AP[i, k] * A[j, k]
                    for a in range(n):
                        s += KR[i, a] * K[j, a]
                    fP[t, i, j] = s
                    fP[t, j, i] = s
            for a in range(n):
                ra = obs[a]
                var = 0.0
                for i in range(d):
                    s = 0.0
                    for k in range(d):
                        s += fP[t, i, k] * Hs[h, ra, k]
                    var += Hs[h, ra, i] * s
                hsd[a] = math.sqrt(max(var, 0.0))
        if record:
            glog[t] = logdet
            for a in range(n):
                gsd[t, a] = hsd[a]
                for j in range(d):
                    gHP[t, a, j] = HP[a, j]
                for b in range(a + 1):
                    gL[t, a, b] = L[a, b]
        # Rounding error of the filtered mean against its standard deviation, per state
        # coordinate and along each observed row of H (where the next innovations look;
        # an unobserved direction of huge variance hides it from the coordinates).
        for i in range(d):
            err = 4.0 * _EPS * mag[i]
            if err > math.sqrt(max(fP[ixf[t] if compact else t, i, i], 0.0)) and err > 4e3 * _EPS * abs(fm[t, i]):
                return ll, t, FAIL_CANCELLATION
        for a in range(n):
            ra = obs[a]
            err = 0.0
            val = 0.0
            for i in range(d):
                err += abs(Hs[h, ra, i]) * mag[i]
                val += Hs[h, ra, i] * fm[t, i]
            err *= 4.0 * _EPS
            if err > hsd[a] and err > 4e3 * _EPS * abs(val):
                return ll, t, FAIL_CANCELLATION
    return ll, -1, -1


@nb.njit(**_FLAGS)
def rts_loop(kp, fm, fP, pm, pP, buf):
    """RTS backward pass into views of ``buf`` (:func:`rts_size`).

    Returns ``(smoothed_means, smoothed_covs, cross_covs, gains, bad)``.
    """
    T = fm.shape[0]
    d = D if D > 0 else fm.shape[1]
    n1 = max(T - 1, 0)
    sm = buf[: T * d].reshape((T, d))
    sP = buf[T * d : T * d + T * d * d].reshape((T, d, d))
    o = T * d + T * d * d
    cross = buf[o : o + n1 * d * d].reshape((n1, d, d))
    gains = buf[o + n1 * d * d :].reshape((n1, d, d))
    bad = _rts(kp, fm, fP, pm, pP, sm, sP, cross, gains, False, None, None, None, None)
    return sm, sP, cross, gains, bad


@standalone
@nb.njit(**_FLAGS)
def _rts(kp, fm, fP, pm, pP, sm, sP, cross, gains, replay, ixf, ixp, ixg, ixs):
    """:func:`rts_loop` into the given outputs, returning ``bad``; with ``replay``, the smoothed
    means only, for a sequence whose smoothed covariances, cross-covariances and gains are those
    given (recorded for an earlier sequence, see :func:`_filter`'s ``REPLAY``), by the same arithmetic.

    Given arrays ``ixf, ixp, ixg, ixs`` (``None``: copy), after :func:`_filter` with the rows
    ``ixf, ixp``, matrices at their fixed point are not copied either: ``ixg[t]`` is the row of
    ``gains`` that holds step ``t``'s gain, ``ixs[t]`` the row of ``sP`` and ``cross`` that holds its
    smoothed covariance and cross-covariance (one index: the two are copied together)."""
    T = fm.shape[0]
    d = D if D > 0 else fm.shape[1]
    compact = ixs is not None
    Fs = kp.F
    nF = Fs.shape[0]
    L = np.empty((d, d))
    C = np.empty((d, d))
    JD = np.empty((d, d))
    for i in range(d):
        sm[T - 1, i] = fm[T - 1, i]
        if not replay:
            for j in range(d):
                sP[T - 1, i, j] = fP[ixf[T - 1] if compact else T - 1, i, j]
    if compact:
        ixs[T - 1] = T - 1
    for t in range(T - 2, -1, -1):
        f = 0 if nF == 1 else t + 1
        # J_t is a function of P_{t|t}, P_{t+1|t} and F alone; P_{t|T} and the cross-covariance
        # add P_{t+1|T}: where the filter's and the smoother's covariances sit at their fixed
        # points, the previous step's matrices are copied (see fixed_point), or with ``compact`` their
        # rows reused. (Rows are written out at each use, "ixp[t + 1] if compact else t + 1": held in
        # variables across the steady branches, they made the copying loops 5x slower at d = 2.)
        steady = (
            not replay
            and nF == 1
            and t + 2 < T
            and _same(pP, ixp[t + 1] if compact else t + 1, ixp[t + 2] if compact else t + 2, d)
            and _same(fP, ixf[t] if compact else t, ixf[t + 1] if compact else t + 1, d)
        )
        rg = t
        if replay:
            pass
        elif steady and compact:
            rg = ixg[t + 1]
        elif steady:
            for i in range(d):
                for j in range(d):
                    gains[t, i, j] = gains[t + 1, i, j]
        else:
            # Cholesky factor of P_{t+1|t}
            if not cholesky(pP[ixp[t + 1] if compact else t + 1], L, d):
                return t + 1
            # C = F P_{t|t}; column j of J^T solves P_{t+1|t} J^T[:, j] = C[:, j]
            for i in range(d):
                for j in range(d):
                    s = 0.0
                    for k in range(d):
                        s += Fs[f, i, k] * fP[ixf[t] if compact else t, k, j]
                    C[i, j] = s
            for j in range(d):
                for i in range(d):
                    s = C[i, j]
                    for k in range(i):
                        s -= L[i, k] * gains[t, j, k]
                    gains[t, j, i] = s / L[i, i]
                for i in range(d - 1, -1, -1):
                    s = gains[t, j, i]
                    for k in range(i + 1, d):
                        s -= L[k, i] * gains[t, j, k]
                    gains[t, j, i] = s / L[i, i]
        if compact:
            ixg[t] = rg
        for i in range(d):
            s = fm[t, i]
            for k in range(d):
                s += gains[rg, i, k] * (sm[t + 1, k] - pm[t + 1, k])
            sm[t, i] = s
        if replay:
            continue
        if steady and _same(sP, ixs[t + 1] if compact else t + 1, ixs[t + 2] if compact else t + 2, d):
            if compact:
                ixs[t] = ixs[t + 1]
            else:
                for i in range(d):
                    for j in range(d):
                        sP[t, i, j] = sP[t + 1, i, j]
                        cross[t, i, j] = cross[t + 1, i, j]
            continue
        # the rows of P_{t|t}, P_{t+1|t}, P_{t+1|T} (and of J_t: rg)
        rf, rp1, rs1 = (ixf[t], ixp[t + 1], ixs[t + 1]) if compact else (t, t + 1, t + 1)
        for i in range(d):
            for j in range(d):
                s = 0.0
                for k in range(d):
                    s += gains[rg, i, k] * (sP[rs1, k, j] - pP[rp1, k, j])
                JD[i, j] = s
        for i in range(d):
            for j in range(i + 1):
                s = fP[rf, i, j]
                for k in range(d):
                    s += JD[i, k] * gains[rg, j, k]
                sP[t, i, j] = s
                sP[t, j, i] = s
        for i in range(d):
            for j in range(d):
                s = 0.0
                for k in range(d):
                    s += sP[rs1, i, k] * gains[rg, j, k]
                cross[t, i, j] = s
        if compact:
            ixs[t] = t
    return -1


@nb.njit(**_FLAGS)
def stats_loop(kp, y, sm, sP, cross, out):
    """Add the expected sufficient statistics of one sequence to ``out``.

    The same quantities as :func:`~statespace.linear_gaussian.kernels.expected_statistics`
    (layout ``stats_layout``), accumulated
    inline; rows with missing coordinates go through the general routine, which
    imputes them.
    """
    _stats(kp, y, sm, sP, cross, out, np.int64(BOTH), None, True)  # run-time parts: one compiled _stats for all


#: What :func:`_stats` adds: every term, the terms of the means (and the counts) only, the covariances' only.
BOTH, MEANS, COVARIANCES = 0, 1, 2


@nb.njit(inline="always")
def _add_run(acc, A, row, n):
    """``acc += n A[row]``: a covariance summed over the ``n`` steps that share its row (:func:`_rts`'s ``ixs``)."""
    if n > 0:
        for i in range(acc.shape[0]):
            for j in range(acc.shape[1]):
                acc[i, j] += n * A[row, i, j]


@standalone
@nb.njit(**_FLAGS)
def _stats(kp, y, sm, sP, cross, out, parts, ixs, missing):
    """:func:`stats_loop`, or with ``parts`` one of its two additive halves: every statistic is a sum of
    a term of the smoothed means (and data) and a term of the smoothed covariances. Sequences of
    one length without missing values share the covariances (:func:`_filter`'s ``REPLAY``): the batch adds
    the covariance half once per such sequence from the first one's sum. The halves are exact only
    for complete sequences (rows with missing coordinates impute from both at once).

    An array ``ixs`` (``None``: every step has its own row) gives the rows of ``sP`` and ``cross`` that hold each step's (:func:`_rts`'s
    ``compact``): a run of steps sharing a row adds it once, times their number.

    ``missing``: ``True`` when rows of ``y`` may have missing coordinates, which the general routine
    imputes; ``None`` when the caller has checked that none has, and that routine is then left out of
    the compiled code (a third of this kernel's compilation, which a complete fleet's first E-step
    waits for with an empty cache)."""
    means = parts != COVARIANCES
    covs = parts != MEANS
    compact = ixs is not None
    run_p = run_x = run_e = 0  # rows of the runs being summed into c_xp and c_cross, c_x, c_e ...
    n_p = n_x = n_e_run = 0  # ... and their lengths so far
    T = y.shape[0]
    d = D if D > 0 else sm.shape[1]
    m = M if M > 0 else y.shape[1]
    p = kp.u.shape[1]
    offs = _layout(d, m, p)
    ws = stats_workspace(d, m)
    Fs, Hs, bus, dus, us = kp.F, kp.H, kp.bu, kp.du, kp.u
    nF, nH, nU = Fs.shape[0], Hs.shape[0], bus.shape[0]
    o_x0, o_x0x0, o_nt, o_xpxp, o_xxp, o_xx = offs[1], offs[2], offs[3], offs[4], offs[5], offs[6]
    o_xpu, o_xu, o_uut, o_qres = offs[7], offs[8], offs[9], offs[10]
    o_ne, o_yx, o_yy, o_xexe, o_xeu, o_yu, o_uue, o_rres = (
        offs[11],
        offs[12],
        offs[13],
        offs[14],
        offs[15],
        offs[16],
        offs[17],
        offs[18],
    )
    eps = np.empty(d)
    r = np.empty(m)
    # Sums kept in local (d, d) blocks and added to ``out`` once at the end: the inner loops then
    # run over contiguous rows of arrays nothing else points into, which the compiler vectorises.
    # Means' outer products (t >= 1 for the transition, complete rows for the emission):
    m_xpxp, m_xxp, m_xx, m_xexe = np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d))
    m_q, m_r, m_yx, m_yy = np.zeros((d, d)), np.zeros((m, m)), np.zeros((m, d)), np.zeros((m, m))
    # Covariances: sums of P_{t-1|T}, P_{t|T}, Cov(x_t, x_{t-1} | y) over t >= 1, of P_{t|T} over the
    # complete rows. With one F (one H) the residuals' covariance terms are linear in these, so
    # their sums come from them and one product at the end, instead of O(d^3) products at every
    # step; a time-varying F_t (H_t) adds its products step by step into c_q (c_r).
    c_xp, c_x, c_cross, c_e = np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d))
    c_q, c_r = np.zeros((d, d)), np.zeros((m, m))
    CQ, FP, FX = ws[17], ws[3], ws[4]  # a step's Cov(eps) and its scratch (time-varying F)
    CE, HP = np.empty((m, m)), np.empty((m, d))  # a step's H P H^T and its scratch (time-varying H)
    fixed_f = nF == 1
    fixed_h = nH == 1
    n_e = 0.0
    if means:
        out[offs[0]] += 1.0
        if T > 1:
            out[o_nt] += T - 1.0
    r0 = ixs[0] if compact else 0
    for i in range(d):
        if means:
            out[o_x0 + i] += sm[0, i]
        for j in range(d):
            out[o_x0x0 + i * d + j] += (sP[r0, i, j] if covs else 0.0) + (sm[0, i] * sm[0, j] if means else 0.0)
    for t in range(T):
        rt = ixs[t] if compact else t  # the row of sP (and cross) holding step t's
        if t > 0:
            f = 0 if nF == 1 else t
            u_ = 0 if nU == 1 else t
            rt1 = ixs[t - 1] if compact else t - 1
            if covs and compact:
                if rt1 != run_p:
                    _add_run(c_xp, sP, run_p, n_p)
                    _add_run(c_cross, cross, run_p, n_p)
                    run_p, n_p = rt1, 0
                n_p += 1
                if rt != run_x:
                    _add_run(c_x, sP, run_x, n_x)
                    run_x, n_x = rt, 0
                n_x += 1
            elif covs:
                for i in range(d):
                    for j in range(d):
                        c_xp[i, j] += sP[t - 1, i, j]
                        c_x[i, j] += sP[t, i, j]
                        c_cross[i, j] += cross[t - 1, i, j]
            if covs and not fixed_f:
                residual_cov(Fs[f], sP[rt], sP[rt1], cross[rt1], FP, FX, CQ)
                for i in range(d):
                    for j in range(d):
                        c_q[i, j] += CQ[i, j]
            if means:
                # residual eps = x_t - F x_{t-1} - B u_t (its covariance term: see c_q)
                for i in range(d):
                    v = sm[t, i] - bus[u_, i]
                    for k in range(d):
                        v -= Fs[f, i, k] * sm[t - 1, k]
                    eps[i] = v
                for i in range(d):
                    a_p, a_x, e_i = sm[t - 1, i], sm[t, i], eps[i]
                    for j in range(d):
                        m_xpxp[i, j] += a_p * sm[t - 1, j]
                        m_xxp[i, j] += a_x * sm[t - 1, j]
                        m_xx[i, j] += a_x * sm[t, j]
                        m_q[i, j] += e_i * eps[j]
                for i in range(d):
                    for k in range(p):
                        out[o_xpu + i * p + k] += sm[t - 1, i] * us[t, k]
                        out[o_xu + i * p + k] += sm[t, i] * us[t, k]
                for i in range(p):
                    for k in range(p):
                        out[o_uut + i * p + k] += us[t, i] * us[t, k]
        complete = True
        for j in range(m):
            if math.isnan(y[t, j]):
                complete = False
        if not complete:
            if missing is not None:  # pruned by type for None: see the docstring
                add_emission_stats(kp, offs, t, sm[t], sP[rt], True, y, out, ws)
            else:
                raise DataError("y: a row with a missing value where the caller declared every row complete")
            continue
        h = 0 if nH == 1 else t
        u_ = 0 if nU == 1 else t
        if covs and compact:
            if rt != run_e:
                _add_run(c_e, sP, run_e, n_e_run)
                run_e, n_e_run = rt, 0
            n_e_run += 1
        elif covs:
            for i in range(d):
                for j in range(d):
                    c_e[i, j] += sP[t, i, j]
        if covs and not fixed_h:
            _sandwich(Hs[h], sP[rt], HP, CE)
            for i in range(m):
                for j in range(m):
                    c_r[i, j] += CE[i, j]
        if means:
            n_e += 1.0
            # residual r = y_t - H x_t - D u_t (its covariance term H P_{t|T} H^T: see c_r)
            for i in range(m):
                v = y[t, i] - dus[u_, i]
                for k in range(d):
                    v -= Hs[h, i, k] * sm[t, k]
                r[i] = v
            for i in range(d):
                a_x = sm[t, i]
                for j in range(d):
                    m_xexe[i, j] += a_x * sm[t, j]
            for i in range(m):
                a_y, r_i = y[t, i], r[i]
                for j in range(d):
                    m_yx[i, j] += a_y * sm[t, j]
                for j in range(m):
                    m_yy[i, j] += a_y * y[t, j]
                    m_r[i, j] += r_i * r[j]
            for i in range(d):
                for k in range(p):
                    out[o_xeu + i * p + k] += sm[t, i] * us[t, k]
            for i in range(m):
                for k in range(p):
                    out[o_yu + i * p + k] += y[t, i] * us[t, k]
            for i in range(p):
                for k in range(p):
                    out[o_uue + i * p + k] += us[t, i] * us[t, k]
    if covs and compact:
        _add_run(c_xp, sP, run_p, n_p)
        _add_run(c_cross, cross, run_p, n_p)
        _add_run(c_x, sP, run_x, n_x)
        _add_run(c_e, sP, run_e, n_e_run)
    if covs:
        if fixed_f and T > 1:
            residual_cov(Fs[0], c_x, c_xp, c_cross, FP, FX, c_q)
        if fixed_h:
            _sandwich(Hs[0], c_e, HP, c_r)
    # each statistic is its means' term plus its covariances' (each zero when not asked for)
    m_xpxp += c_xp
    m_xxp += c_cross
    m_xx += c_x
    m_q += c_q
    m_xexe += c_e
    m_r += c_r
    if means:
        out[o_ne] += n_e
    for at, block in ((o_xpxp, m_xpxp), (o_xxp, m_xxp), (o_xx, m_xx), (o_qres, m_q), (o_xexe, m_xexe)):
        _mat_add(out, at, block)
    for at, block in ((o_rres, m_r), (o_yx, m_yx), (o_yy, m_yy)):
        _mat_add(out, at, block)


@nb.njit(**_FLAGS)
def _sandwich(H, P, HP, out):
    """``out = H P H^T`` (``HP``: ``(m, d)`` scratch)."""
    m, d = H.shape
    for i in range(m):
        for j in range(d):
            v = 0.0
            for k in range(d):
                v += H[i, k] * P[k, j]
            HP[i, j] = v
    for i in range(m):
        for j in range(m):
            v = 0.0
            for k in range(d):
                v += HP[i, k] * H[j, k]
            out[i, j] = v


@nb.njit(cache=True)
def _sequence_params(kp, a, b):
    """The parameters of the sequence in rows ``a:b`` of a batch: the input terms sliced (``bu``,
    ``du``, ``u`` hold one row per step of the batch when the model has inputs)."""
    bu = kp.bu[a:b] if kp.bu.shape[0] > 1 else kp.bu[0:1]
    du = kp.du[a:b] if kp.du.shape[0] > 1 else kp.du[0:1]
    u = kp.u[a:b] if kp.u.shape[0] > 1 else kp.u[0:1]
    return KernelParams(
        kp.m0,
        kp.P0,
        kp.chol_P0,
        kp.F,
        kp.Q,
        kp.chol_Q,
        kp.logdet_Q,
        kp.H,
        kp.R,
        kp.chol_R,
        kp.logdet_R,
        bu,
        du,
        u,
        kp.white_P0,
        kp.white_Q,
        kp.white_F,
        kp.white_bu,
        kp.white_R,
        kp.white_H,
        kp.white_du,
    )


@standalone
@nb.njit(**_FLAGS)
def _filter_smooth(
    kps, ys, fm, pm, fP, pP, mode, replay, g, smooth, sm, sP, cross, gains, s, lls, bad, why, ixf, ixp, ixg, ixs
):
    """Filter sequence ``s`` of a batch in ``mode`` (and with ``smooth`` smooth it), recording its
    log-likelihood and outcome in ``lls, bad, why``; whether it went through. ``replay``: ``mode == REPLAY``
    (given, so that a literal ``PLAIN`` also gives :func:`_rts` a literal ``False``). ``ixf, ixp, ixg, ixs``:
    ``None``, or for a ``PLAIN`` sequence arrays that receive :func:`_filter`'s ``ixf, ixp`` and
    :func:`_rts`'s ``ixg, ixs`` (covariances at their fixed point left in place).

    A function of its own, not inlined: inlined, an ``is None`` test on ``ixf`` is no longer a test on
    an argument, which Numba prunes by type, and the branch not taken compiled a third copy of
    :func:`_filter` (3.5 s of a first fit with an empty cache)."""
    gHP, gL, glog, gsd = g
    ll, bd, wy = _filter(kps, ys, fm, pm, fP, pP, mode, gHP, gL, glog, gsd, ixf, ixp)
    lls[s] = ll
    if bd >= 0:
        bad[s] = bd
        why[s] = wy
        return False
    if smooth:
        bd = _rts(kps, fm, fP, pm, pP, sm, sP, cross, gains, replay, ixf, ixp, ixg, ixs)
        if bd >= 0:
            bad[s] = bd
            why[s] = -2
            return False
    return True


@nb.njit(inline="always")
def _open(offsets, s, lls, bad, why):
    """Rows ``a, b`` of sequence ``s`` of a batch, its outcome reset (an empty one's log-likelihood is 0)."""
    a, b = offsets[s], offsets[s + 1]
    bad[s] = -1
    why[s] = -1
    if a == b:
        lls[s] = 0.0
    return a, b


@nb.njit(inline="always")
def _gather_rows(A, rows, s, out):
    """``out[:, k] = A[rows[k] + s]``: step ``s`` of each lock-step member (columns of ``out``), from a
    batch array in the rows of ``y``."""
    for k in range(out.shape[1]):
        r = rows[k] + s
        for i in range(out.shape[0]):
            out[i, k] = A[r, i]


@nb.njit(inline="always")
def _lockstep_residual(X, C, A, Z, out):
    """``out = X - C - A Z`` for lock-step members side by side (columns of ``X, C, Z, out``): the regression
    residuals of :func:`_lockstep_e_step` (``C``: each member's input term ``B u`` or ``D u``)."""
    for i in range(out.shape[0]):
        for k in range(out.shape[1]):
            out[i, k] = X[i, k] - C[i, k]
        for l in range(Z.shape[0]):
            a = A[i, l]
            for k in range(out.shape[1]):
                out[i, k] -= a * Z[l, k]


@standalone
@nb.njit(**_FLAGS)
def _lockstep_e_step(kp, y, offsets, order, k0, G, fP, pP, g, gains, want_stats, out, PMb, FMb, lls, bad, why, us):
    """:func:`batch_loop`'s replay of the ``G`` sequences ``order[k0:k0 + G]`` in lock-step: complete, of one
    length ``T >= 2``, sharing the covariances, factors and RTS gains on the first rows of ``fP, pP, g,
    gains`` (their source's, just recorded; inputs move the means only). Their filter runs as in
    :func:`replay_groups` (means into ``PMb, FMb``, ``(T, d, G)``), then with ``want_stats`` their RTS
    means and the means' half of the E-step statistics (:func:`_stats` with ``MEANS``), summed over the
    members and added to ``out``. Returns whether every member went through (``lls, bad, why`` as in
    :func:`batch_loop`; nothing is added otherwise).

    Every statistic is a sum over steps of products of the smoothed means: each member keeps its own
    ``(d, d)`` sums, side by side in ``(d, d, G)`` arrays (no reduction across members inside the
    time loop), reduced once at the end. The outer products ``x_t x_t^T`` are summed once over the
    interior steps ``1..T-2``; the transition's ``sum_{t>=1}`` and ``sum_{t<=T-2}`` and the emission's
    ``sum_t`` add the end steps to it. With inputs, ``us`` is ``kp.u``, and ``kp.bu, kp.du, kp.u`` hold
    a row per row of ``y``: each member reads its own in the residuals and the products with ``u_t``;
    the sums of the inputs alone (``u_t u_t^T``, ``y_t u_t^T``) are taken member by member over its
    rows. ``us`` is ``None`` for a model without inputs, which leaves those loops out of its compiled code.
    """
    d = D if D > 0 else kp.m0.shape[0]
    m = M if M > 0 else y.shape[1]
    p = 0
    if us is not None:
        p = us.shape[1]
    F, H = kp.F[0], kp.H[0]
    bus, dus = kp.bu, kp.du
    PM = np.empty((d, G))
    FM = np.empty((d, G))
    no_rows = np.empty((0, d))
    _lockstep_filter(
        kp, F, H, y, offsets, order, k0, G, 0, fP, pP, g, no_rows, no_rows, PMb, FMb, PM, FM, lls, bad, why
    )
    for k in range(G):
        if bad[order[k0 + k]] >= 0:
            return False
    if not want_stats:
        return True
    T = offsets[order[k0] + 1] - offsets[order[k0]]
    rows = np.empty(G, np.int64)
    for k in range(G):
        rows[k] = offsets[order[k0 + k]]
    SM = FM  # x_{t+1|T}, starting at t + 1 = T - 1 where it is the filtered mean
    SN = PM  # x_{t|T}
    LAST = SM.copy()
    D1 = np.empty((d, G))
    EPS = np.empty((d, G))
    R = np.empty((m, G))
    Yt = np.empty((m, G))
    CB = np.empty((d, G))  # each member's B u_{t+1} (without inputs: the zero kp.bu[0], set once)
    CD = np.empty((m, G))  # and D u_t
    if us is None:
        for k in range(G):
            for i in range(d):
                CB[i, k] = bus[0, i]
            for a in range(m):
                CD[a, k] = dus[0, a]
    Ut = np.empty((p, G))  # each member's u_{t+1} (the transition), then u_t (the emission)
    XPU = np.zeros((d, p, G))  # sum of x_{t-1} u_t^T over t >= 1
    XU = np.zeros((d, p, G))  # sum of x_t u_t^T over t >= 1
    XEU = np.zeros((d, p, G))  # sum of x_t u_t^T over every t
    AI = np.zeros((d, d, G))  # sum of x_t x_t^T over t = 1 .. T-2
    XXP = np.zeros((d, d, G))  # sum of x_t x_{t-1}^T over t >= 1
    QQ = np.zeros((d, d, G))  # sum of eps_t eps_t^T, eps_t = x_t - F x_{t-1} - b
    YX = np.zeros((m, d, G))
    YY = np.zeros((m, m, G))
    RR = np.zeros((m, m, G))  # sum of r_t r_t^T, r_t = y_t - H x_t - d
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            # RTS: x_{t|T} = x_{t|t} + J_t (x_{t+1|T} - x_{t+1|t})
            for i in range(d):
                for k in range(G):
                    D1[i, k] = SM[i, k] - PMb[t + 1, i, k]
            for i in range(d):
                for k in range(G):
                    SN[i, k] = FMb[t, i, k]
                for l in range(d):
                    jl = gains[t, i, l]
                    for k in range(G):
                        SN[i, k] += jl * D1[l, k]
            if us is not None:
                _gather_rows(bus, rows, t + 1, CB)
                _gather_rows(us, rows, t + 1, Ut)
                for i in range(d):
                    for j in range(p):
                        for k in range(G):
                            XPU[i, j, k] += SN[i, k] * Ut[j, k]
                            XU[i, j, k] += SM[i, k] * Ut[j, k]
            _lockstep_residual(SM, CB, F, SN, EPS)  # the transition t -> t + 1
            for i in range(d):
                for j in range(d):
                    for k in range(G):
                        XXP[i, j, k] += SM[i, k] * SN[j, k]
                        QQ[i, j, k] += EPS[i, k] * EPS[j, k]
            if t >= 1:
                for i in range(d):
                    for j in range(i + 1):
                        for k in range(G):
                            AI[i, j, k] += SN[i, k] * SN[j, k]
            SM, SN = SN, SM
        # the emission at t (x_{t|T} is now SM)
        _gather_rows(y, rows, t, Yt)
        if us is not None:
            _gather_rows(dus, rows, t, CD)
            _gather_rows(us, rows, t, Ut)
            for i in range(d):
                for j in range(p):
                    for k in range(G):
                        XEU[i, j, k] += SM[i, k] * Ut[j, k]
        _lockstep_residual(Yt, CD, H, SM, R)
        for a in range(m):
            for j in range(d):
                for k in range(G):
                    YX[a, j, k] += Yt[a, k] * SM[j, k]
            for b in range(a + 1):
                for k in range(G):
                    YY[a, b, k] += Yt[a, k] * Yt[b, k]
                    RR[a, b, k] += R[a, k] * R[b, k]
    # SM holds x_{0|T}, LAST x_{T-1|T}: the sums over the members, then into out (_stats' layout)
    offs = _layout(d, m, p)
    o_x0, o_x0x0, o_nt, o_xpxp, o_xxp, o_xx, o_qres = offs[1], offs[2], offs[3], offs[4], offs[5], offs[6], offs[10]
    o_ne, o_yx, o_yy, o_xexe, o_rres = offs[11], offs[12], offs[13], offs[14], offs[18]
    if us is not None:
        o_xpu, o_xu, o_uut, o_xeu, o_yu, o_uue = offs[7], offs[8], offs[9], offs[15], offs[16], offs[17]
        for i in range(d):
            for j in range(p):
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
                for k in range(G):
                    s1 += XPU[i, j, k]
                    s2 += XU[i, j, k]
                    s3 += XEU[i, j, k]
                out[o_xpu + i * p + j] += s1
                out[o_xu + i * p + j] += s2
                out[o_xeu + i * p + j] += s3
        UU0 = np.zeros((p, p))  # u_0 u_0^T: in the emission's sum, not the transition's
        UU = np.zeros((p, p))  # over t >= 1
        YU = np.zeros((m, p))
        for k in range(G):
            r0 = rows[k]
            for t in range(T):
                for i in range(p):
                    ui = us[r0 + t, i]
                    for a in range(m):
                        YU[a, i] += y[r0 + t, a] * ui
                    for j in range(p):
                        if t == 0:
                            UU0[i, j] += ui * us[r0, j]
                        else:
                            UU[i, j] += ui * us[r0 + t, j]
        for i in range(p):
            for j in range(p):
                out[o_uut + i * p + j] += UU[i, j]
                out[o_uue + i * p + j] += UU[i, j] + UU0[i, j]
        for a in range(m):
            for i in range(p):
                out[o_yu + a * p + i] += YU[a, i]
    out[offs[0]] += G
    out[o_nt] += G * (T - 1.0)
    out[o_ne] += G * float(T)
    A0, AL, Ai = np.empty((d, d)), np.empty((d, d)), np.empty((d, d))
    for i in range(d):
        s = 0.0
        for k in range(G):
            s += SM[i, k]
        out[o_x0 + i] += s
        for j in range(d):
            s0 = 0.0
            sl = 0.0
            si = 0.0
            for k in range(G):
                s0 += SM[i, k] * SM[j, k]
                sl += LAST[i, k] * LAST[j, k]
                si += AI[max(i, j), min(i, j), k]
            A0[i, j], AL[i, j], Ai[i, j] = s0, sl, si
    for i in range(d):
        for j in range(d):
            out[o_x0x0 + i * d + j] += A0[i, j]
            out[o_xpxp + i * d + j] += A0[i, j] + Ai[i, j]
            out[o_xx + i * d + j] += Ai[i, j] + AL[i, j]
            out[o_xexe + i * d + j] += A0[i, j] + Ai[i, j] + AL[i, j]
            s1 = 0.0
            s2 = 0.0
            for k in range(G):
                s1 += XXP[i, j, k]
                s2 += QQ[i, j, k]
            out[o_xxp + i * d + j] += s1
            out[o_qres + i * d + j] += s2
    for a in range(m):
        for j in range(d):
            s = 0.0
            for k in range(G):
                s += YX[a, j, k]
            out[o_yx + a * d + j] += s
        for b in range(m):
            s1 = 0.0
            s2 = 0.0
            for k in range(G):
                s1 += YY[max(a, b), min(a, b), k]
                s2 += RR[max(a, b), min(a, b), k]
            out[o_yy + a * m + b] += s1
            out[o_rres + a * m + b] += s2
    return True


#: Most rows (steps x members) of one lock-step group of :func:`batch_loop`: its filtered and predicted
#: means, ``(T, d, G)`` each, stay within a few MB of scratch (longer sequences form smaller groups).
ESTEP_BLOCK_ROWS = 32_768


def loop_work_size(t_max: int, d: int) -> int:
    """Length of the ``work`` block of :func:`batch_loop`: the moments of one sequence of at most ``t_max`` steps."""
    return t_max * (3 * d + 5 * d * d)


def factors_size(t_max: int, d: int, m: int) -> int:
    """Length of :func:`batch_loop`'s ``factors``: the covariance side's per-step factors a source records."""
    return t_max * (m * d + m * m + m + 1)


def means_block_size(t_max: int, d: int, lockstep: int) -> int:
    """Length of :func:`batch_loop`'s ``means_block`` (lock-step groups of at most ``lockstep`` members)."""
    return 2 * d * min(ESTEP_BLOCK_ROWS, t_max * lockstep)


@nb.njit(cache=True, nogil=True)
def batch_loop(
    kp, y, offsets, order, chunk_ends, c0, c1, want_stats, stats, lls, bad, why, work, lone_rows, factors,
    means_block, lockstep, min_lockstep, inputs, missing,
):  # fmt: skip
    """Filter (and, with ``want_stats``, smooth and add the E-step statistics of) the sequences of chunks ``c0:c1``.

    Sequence ``s`` is ``y[offsets[s]:offsets[s + 1]]``; chunk ``c`` holds sequences
    ``order[chunk_ends[c - 1]:chunk_ends[c]]`` (``order`` a permutation of the batch that
    puts sequences of one length next to each other, so that they share covariances) and
    adds their statistics, in that order, to ``stats[c]``, so that the sums do not depend
    on how chunks are spread over threads (the GIL is released: callers run disjoint
    chunk ranges at once, each with its own scratch). ``lls[s]`` is the log-likelihood of sequence ``s``;
    ``bad[s] >= 0`` marks where its filter (``why[s]``: a ``FAIL_*`` code) or its
    smoother (``why[s] = -2``) stopped, and the statistics then omit it. The scratch, for the
    longest sequence of the chunks, is kept by the caller across EM iterations (``statespace._scratch``):
    ``work`` (:func:`loop_work_size`) holds one sequence's moments.

    The three other blocks select the paths, and ``None`` leaves a path out of the compiled code (Numba
    compiles whatever a kernel can reach, and each path costs seconds before a first result with an
    empty cache):

    * ``lone_rows`` (``(4, t_max)`` integers): a sequence that shares its covariances with neither
      neighbour leaves them at their fixed points in place (``_filter``'s ``ixf``). ``None``: it
      records, as a source does (the same moments; the statistics' sums regrouped).
    * ``factors`` (:func:`factors_size`): sequences of one length and missing pattern share their
      covariances, the first recording its factors there and the others replaying them. ``None``:
      every sequence runs alone (``lone_rows`` must then be given).
    * ``means_block`` (:func:`means_block_size`, with ``factors``): a run of at least
      ``min_lockstep`` complete sequences sharing the covariances of the one before them replays
      them in lock-step groups of at most ``lockstep`` members
      (:func:`_lockstep_e_step`), the others one at a time. ``None``: one at a time.

    ``inputs`` is ``kp.u`` for a model with inputs, ``None`` otherwise (the lock-step statistics
    of the inputs are then left out of the compiled code). ``missing`` is ``None`` when the caller has
    checked that no row of ``y`` has a missing value, ``True`` otherwise (:func:`_stats`).
    """
    d = D if D > 0 else kp.m0.shape[0]
    m = y.shape[1]
    s_lo = 0 if c0 == 0 else chunk_ends[c0 - 1]
    t_max = 0
    for k in range(s_lo, chunk_ends[c1 - 1] if c1 > c0 else s_lo):
        s = order[k]
        t_max = max(t_max, offsets[s + 1] - offsets[s])
    fm_, pm_, sm_ = (
        _carve2(work, 0, t_max, d),
        _carve2(work, t_max * d, t_max, d),
        _carve2(work, 2 * t_max * d, t_max, d),
    )
    at = 3 * t_max * d
    fP_, pP_, sP_ = (
        _carve3(work, at, t_max, d, d),
        _carve3(work, at + t_max * d * d, t_max, d, d),
        _carve3(work, at + 2 * t_max * d * d, t_max, d, d),
    )
    cross_, gains_ = (
        _carve3(work, at + 3 * t_max * d * d, t_max, d, d),
        _carve3(work, at + 4 * t_max * d * d, t_max, d, d),
    )
    # a lone sequence's filter computes its factors without keeping them
    no_factors = (np.empty((0, 0, 0)), np.empty((0, 0, 0)), np.empty(0), np.empty((0, 0)))
    g = no_factors
    if factors is not None:
        at = t_max * m * d
        g = (
            _carve3(factors, 0, t_max, m, d),
            _carve3(factors, at, t_max, m, m),
            factors[at + t_max * m * m + t_max * m : at + t_max * m * m + t_max * m + t_max],
            _carve2(factors, at + t_max * m * m, t_max, m),
        )
    cov_half = np.zeros(stats.shape[1])
    # A lone sequence (compact rows) runs the loops with literal modes, compiled for it alone (a
    # run-time mode slowed the E-step of one sequence, d = 2, by 45 %); the sharers' calls, whose
    # modes vary, take run-time integers: literal ones compiled a copy of the callee per value.
    record, replay = np.int64(RECORD), np.int64(REPLAY)
    means, covariances, both = np.int64(MEANS), np.int64(COVARIANCES), np.int64(BOTH)
    for c in range(c0, c1):
        s0 = 0 if c == 0 else chunk_ends[c - 1]
        s1 = chunk_ends[c]
        ref_T = -1  # the last sequence whose covariances the buffers hold (-1: none)
        ref_a = np.int64(0)  # not a literal 0: _same_mask would compile for that type too
        cov_ok = False  # cov_half holds the covariance half of the current run of shared sequences
        k = s0 - 1
        while k + 1 < s1:
            k += 1
            s = order[k]
            a, b = _open(offsets, s, lls, bad, why)
            T = b - a
            if T == 0:
                continue
            kps = _sequence_params(kp, a, b)
            ys = y[a:b]
            fm, pm, fP, pP = fm_[:T], pm_[:T], fP_[:T], pP_[:T]
            sm, sP, cross, gains = sm_[:T], sP_[:T], cross_[: T - 1], gains_[: T - 1]
            # same length and missing pattern as the sequence before it: the same covariances
            shared = T == ref_T and _same_mask(y, ref_a, a, T)
            ref_T = -1
            # the first of sequences that share covariances records their factors for the others; one
            # that shares with neither neighbour leaves its covariances at their fixed points in place
            nx = order[k + 1] if k + 1 < s1 else -1
            shares_next = nx >= 0 and offsets[nx + 1] - offsets[nx] == T and _same_mask(y, a, offsets[nx], T)
            if lone_rows is not None:
                lone = not shared and not shares_next
                if factors is None:
                    lone = True
                if lone:
                    ixf, ixp, ixg, ixs = lone_rows[0, :T], lone_rows[1, :T], lone_rows[2, :T], lone_rows[3, :T]
                    if not _filter_smooth(
                        kps, ys, fm, pm, fP, pP, PLAIN, False, no_factors, want_stats, sm, sP, cross, gains, s, lls,
                        bad, why, ixf, ixp, ixg, ixs,
                    ):  # fmt: skip
                        continue
                    if want_stats:
                        _stats(kps, ys, sm, sP, cross, stats[c], BOTH, ixs, missing)
                    continue  # no sharer follows it (and ref_T stays -1: its rows are not a sharer's)
            if factors is None:
                continue  # not reached: every sequence ran alone above
            mode = replay if shared else record
            if not _filter_smooth(
                kps, ys, fm, pm, fP, pP, mode, shared, g, want_stats, sm, sP, cross, gains, s, lls, bad, why,
                None, None, None, None,
            ):  # fmt: skip
                continue
            if want_stats:
                if not shared:
                    # the covariance half of the statistics, kept for the sequences that will share it
                    cov_ok = shares_next and _complete(ys)
                    if cov_ok:
                        cov_half[:] = 0.0
                        _stats(kps, ys, sm, sP, cross, cov_half, covariances, None, missing)
                if cov_ok:
                    _stats(kps, ys, sm, sP, cross, stats[c], means, None, missing)
                    for i in range(cov_half.shape[0]):
                        stats[c, i] += cov_half[i]
                else:
                    _stats(kps, ys, sm, sP, cross, stats[c], both, None, missing)
            ref_T = T
            ref_a = a
            if means_block is None or shared or T < 2 or not _complete(ys):
                continue
            # the run of sequences after this source that share its covariances, in lock-step groups
            n_run = 0
            while k + 1 + n_run < s1:
                nx = order[k + 1 + n_run]
                if offsets[nx + 1] - offsets[nx] != T or not _same_mask(y, a, offsets[nx], T):
                    break
                n_run += 1
            n_block = means_block.shape[0] // 2
            G_max = min(lockstep, n_block // (T * d))
            if n_run < min_lockstep or G_max < min_lockstep:
                continue
            while n_run > 0:
                G = min(G_max, n_run)
                for j in range(k + 1, k + 1 + G):
                    _open(offsets, order[j], lls, bad, why)
                PMb = means_block[: T * d * G].reshape((T, d, G))
                FMb = means_block[n_block : n_block + T * d * G].reshape((T, d, G))
                if _lockstep_e_step(
                    kp, y, offsets, order, k + 1, G, fP, pP, g, gains, want_stats, stats[c], PMb, FMb, lls, bad, why,
                    inputs,
                ):  # fmt: skip
                    if want_stats:
                        for _ in range(G):
                            for i in range(cov_half.shape[0]):
                                stats[c, i] += cov_half[i]
                k += G
                n_run -= G


@nb.njit(inline="always")
def _carve2(work, at, n, k):
    return work[at : at + n * k].reshape((n, k))


@nb.njit(inline="always")
def _carve3(work, at, n, k, l):
    return work[at : at + n * k * l].reshape((n, k, l))


@nb.njit(cache=True)
def _same_mask(y, a0, a1, T):
    """Whether rows ``a0:a0+T`` and ``a1:a1+T`` of ``y`` have their NaN in the same places."""
    for t in range(T):
        for j in range(y.shape[1]):
            if math.isnan(y[a0 + t, j]) != math.isnan(y[a1 + t, j]):
                return False
    return True


@nb.njit(cache=True)
def _complete(y):
    """Whether ``y`` has no missing coordinate."""
    for t in range(y.shape[0]):
        for j in range(y.shape[1]):
            if math.isnan(y[t, j]):
                return False
    return True


@nb.njit(inline="always")
def _source_failed(src, s, bad):
    """Whether sequence ``s`` shares the covariances of a source that failed: such a sharer is not run,
    and is marked ``bad = -3`` (the caller raises for the source)."""
    if src[s] != s and bad[src[s]] != -1:
        bad[s] = -3
        return True
    return False


@nb.njit(cache=True, nogil=True)
def batch_moments(kp, y, offsets, src, crow, seqs, lo, hi, fm, pm, fP, pP, g, lls, bad, why):
    """Filter sequences ``seqs[lo:hi]`` of a ragged batch into batch-wide outputs (:func:`batch_rts` smooths them).

    Means are rows of ``fm, pm`` (``(N, d)``, the rows of ``y``). Covariances are
    stored once per *source* sequence: ``src[s]`` is the sequence whose covariances
    sequence ``s`` shares (``src[s] == s`` for a source), and rows ``crow[s]:crow[s] + T``
    of ``fP, pP`` hold them, with ``crow[s] == crow[src[s]]``. ``g = (gHP, gL, glog, gsd)``
    holds, on the same rows, the factors :func:`_filter` records. A source runs the whole
    recursion (``RECORD``); a sharer, called after its source has finished, replays its
    source's covariances and factors (``REPLAY``), one sequence at a time: the same numbers
    to the bit as the whole recursion (large groups of sharers go to :func:`replay_groups`
    instead). ``lls, bad, why`` as in :func:`batch_loop`; a sharer whose source failed is
    not run (``bad = -3``). The GIL is released: callers run disjoint ``lo:hi`` at once.
    """
    gHP, gL, glog, gsd = g
    for k in range(lo, hi):
        s = seqs[k]
        a, b = _open(offsets, s, lls, bad, why)
        T = b - a
        if T == 0 or _source_failed(src, s, bad):
            continue
        c = crow[s]
        e = c + T
        mode = RECORD if src[s] == s else REPLAY
        ll, bd, wy = _filter(
            _sequence_params(kp, a, b),
            y[a:b],
            fm[a:b],
            pm[a:b],
            fP[c:e],
            pP[c:e],
            mode,
            gHP[c:e],
            gL[c:e],
            glog[c:e],
            gsd[c:e],
            None,
            None,
        )
        lls[s] = ll
        if bd >= 0:
            bad[s] = bd
            why[s] = wy


@nb.njit(cache=True, nogil=True)
def batch_rts(kp, offsets, src, crow, seqs, lo, hi, fm, pm, fP, pP, sm, sP, cross, gains, bad, why):
    """RTS smoother of sequences ``seqs[lo:hi]`` after :func:`batch_moments` filtered them (a kernel of
    its own, so that a filter does not compile it): smoothed means in the rows of ``sm``, covariances,
    cross-covariances and gains on the source's rows (``crow[s]:crow[s] + T``, ``T - 1`` for the last
    two), which a sharer replays (sources first, as for the filter). A sequence whose filter failed is
    skipped; a sharer whose source failed here is not run (``bad = -3``); a failure here sets
    ``bad`` and ``why = -2``."""
    for k in range(lo, hi):
        s = seqs[k]
        a, b = offsets[s], offsets[s + 1]
        T = b - a
        if T == 0 or bad[s] != -1 or _source_failed(src, s, bad):
            continue
        c = crow[s]
        e = c + T
        bd = _rts(
            _sequence_params(kp, a, b),
            fm[a:b],
            fP[c:e],
            pm[a:b],
            pP[c:e],
            sm[a:b],
            sP[c:e],
            cross[c : e - 1],
            gains[c : e - 1],
            src[s] != s,
            None,
            None,
            None,
            None,
        )
        if bd >= 0:
            bad[s] = bd
            why[s] = -2


_NO_FAIL = 3
#: Steps of means staged per member of a lock-step group before they go to the member's rows.
STAGE_STEPS = 128
#: Spare rows after each member's staging block. Without them the members' blocks lie a multiple of
#: 4 kB apart at d = 2, 4 and 8, and a step's reads across the members all map to one set of the
#: first-level cache: the smoother's mean replay of 2,000 x 100 steps (d = 4, one thread) took
#: 14.9 ms with the members 4 kB apart, 8.9 ms with one spare row.
_STAGE_PAD = 1
_FAIL_OF_STAGE = (FAIL_OVERFLOW, FAIL_IMPOSSIBLE, FAIL_CANCELLATION)


@standalone
@nb.njit(**_FLAGS)
def _lockstep_filter(kp, F, H, y, offsets, members, lo, G, c, fP, pP, g, pm, fm, PMb, FMb, PM, FM, lls, bad, why):
    """The forward pass of :func:`_filter`'s ``REPLAY`` for the ``G`` sequences ``members[lo:lo + G]`` (longest
    first), in lock-step (:func:`replay_groups`), on the shared covariances and factors from row ``c``
    (``fP, pP``, ``g = (gHP, gL, glog, gsd)``; ``F, H`` are ``kp.F[0], kp.H[0]``).

    The means go to each member's rows of ``pm`` and ``fm`` (staged, see below) when ``PMb`` has no
    rows, else to ``PMb[t], FMb[t]``, ``(T, d, G)`` (the E-step's layout: one group's steps side by
    side, where its RTS pass reads them back). ``PM, FM`` are ``(d, G)`` scratch; ``FM`` holds the
    last step's filtered means on return. ``lls, bad, why`` as in :func:`batch_loop`.
    """
    gHP, gL, glog, gsd = g
    d = D if D > 0 else kp.m0.shape[0]
    m = M if M > 0 else y.shape[1]
    bus, dus = kp.bu, kp.du
    varying_b = bus.shape[0] > 1
    varying_d = dus.shape[0] > 1
    obs = np.empty(m, np.int64)
    rows = np.empty(G, np.int64)
    for k in range(G):
        rows[k] = offsets[members[lo + k]]
    T = offsets[members[lo] + 1] - rows[0]
    # each member's means of the last STAGE_STEPS steps, flushed to its own rows as one
    # contiguous block: written step by step, the members' rows (a page or more apart) cost
    # more than the arithmetic (2,000 x 1,000 steps, one thread: 154 -> 105 ms)
    staged = PMb.shape[0] == 0
    S = STAGE_STEPS if staged else 0
    SPM = np.empty((G, S + _STAGE_PAD, d))
    SFM = np.empty((G, S + _STAGE_PAD, d))
    E = np.empty((m, G))
    MAG = np.empty((d, G))
    LL = np.zeros(G)
    alive = np.ones(G, np.bool_)
    # the earliest check each member failed at this step (0 overflow, 1 impossible data,
    # 2 cancellation), kept branch-free in the vector loops and read only when some did
    STAGE = np.full(G, _NO_FAIL, np.int64)
    hits = 0
    Gt = G  # members still running at step t (sorted by length, longest first)
    Gb = G
    for t in range(T):
        while offsets[members[lo + Gt - 1] + 1] - offsets[members[lo + Gt - 1]] <= t:
            Gt -= 1
        ct = c + t
        tt = t % STAGE_STEPS if staged else 0
        if tt == 0:
            Gb = Gt  # the members the block's flush writes (some may stop within it)
        # prediction
        if t == 0:
            for i in range(d):
                for k in range(Gt):
                    PM[i, k] = kp.m0[i]
        else:
            for i in range(d):
                for k in range(Gt):
                    PM[i, k] = bus[rows[k] + t, i] if varying_b else bus[0, i]
                for l in range(d):
                    f = F[i, l]
                    for k in range(Gt):
                        PM[i, k] += f * FM[l, k]
            for i in range(d):
                # a shared covariance that overflowed stops every member here (the source did too)
                cov_over = not pP[ct, i, i] <= 1.7e308
                for k in range(Gt):
                    hit = cov_over or not abs(PM[i, k]) <= 1.7e308
                    STAGE[k] = min(STAGE[k], 0 if hit else _NO_FAIL)
                    hits += hit
        _keep_means(PM, staged, SPM, PMb, t, tt, Gt)
        # the observed coordinates (the group's common pattern)
        n = 0
        r0 = rows[0] + t
        for a in range(m):
            if not math.isnan(y[r0, a]):
                obs[n] = a
                n += 1
        if n == 0:
            for i in range(d):
                for k in range(Gt):
                    FM[i, k] = PM[i, k]
        else:
            for a in range(n):
                ra = obs[a]
                for k in range(Gt):
                    E[a, k] = y[rows[k] + t, ra] - (dus[rows[k] + t, ra] if varying_d else dus[0, ra])
                for l in range(d):
                    h = H[ra, l]
                    for k in range(Gt):
                        E[a, k] -= h * PM[l, k]
            # forward substitution: E = L^{-1} E, its squared norm into the log-likelihood
            for k in range(Gt):
                MAG[0, k] = 0.0  # the quadratic form, accumulated here before MAG is used
            for a in range(n):
                for b in range(a):
                    lab = gL[ct, a, b]
                    for k in range(Gt):
                        E[a, k] -= lab * E[b, k]
                inv = gL[ct, a, a]
                for k in range(Gt):
                    E[a, k] = E[a, k] / inv
                    MAG[0, k] += E[a, k] * E[a, k]
            logdet = glog[ct]
            for k in range(Gt):
                LL[k] += -0.5 * (n * _LOG_2PI + MAG[0, k]) - logdet
                hit = LL[k] == -math.inf
                STAGE[k] = min(STAGE[k], 1 if hit else _NO_FAIL)
                hits += hit
            # back substitution: E = L^{-T} E
            for a in range(n - 1, -1, -1):
                for b in range(a + 1, n):
                    lba = gL[ct, b, a]
                    for k in range(Gt):
                        E[a, k] -= lba * E[b, k]
                inv = gL[ct, a, a]
                for k in range(Gt):
                    E[a, k] = E[a, k] / inv
            # mean update m + (H_o P)^T S^{-1} e, with the magnitudes it summed
            for i in range(d):
                for k in range(Gt):
                    FM[i, k] = PM[i, k]
                    MAG[i, k] = abs(PM[i, k])
                for a in range(n):
                    hp = gHP[ct, a, i]
                    for k in range(Gt):
                        v = hp * E[a, k]
                        FM[i, k] += v
                        MAG[i, k] += abs(v)
            # the rounding checks of the whole filter (see _filter)
            for i in range(d):
                sd = math.sqrt(max(fP[ct, i, i], 0.0))
                for k in range(Gt):
                    err = 4.0 * _EPS * MAG[i, k]
                    hit = err > sd and err > 4e3 * _EPS * abs(FM[i, k])
                    STAGE[k] = min(STAGE[k], 2 if hit else _NO_FAIL)
                    hits += hit
            for a in range(n):
                ra = obs[a]
                hsd = gsd[ct, a]
                for k in range(Gt):
                    err = 0.0
                    val = 0.0
                    for i in range(d):
                        err += abs(H[ra, i]) * MAG[i, k]
                        val += H[ra, i] * FM[i, k]
                    err *= 4.0 * _EPS
                    hit = err > hsd and err > 4e3 * _EPS * abs(val)
                    STAGE[k] = min(STAGE[k], 2 if hit else _NO_FAIL)
                    hits += hit
        _keep_means(FM, staged, SFM, FMb, t, tt, Gt)
        if staged and (tt == STAGE_STEPS - 1 or t == T - 1):
            _unstage(SPM, pm, SFM, fm, rows, offsets, members, lo, Gb, t - tt, tt + 1)
        if hits:  # rare: record the first failure of each member, by the order of the checks
            for k in range(Gt):
                if STAGE[k] != _NO_FAIL and alive[k]:
                    alive[k] = False
                    bad[members[lo + k]] = t
                    why[members[lo + k]] = _FAIL_OF_STAGE[STAGE[k]]
                STAGE[k] = _NO_FAIL
            hits = 0
    for k in range(G):
        lls[members[lo + k]] = LL[k]


@nb.njit(cache=True, nogil=True, fastmath=FASTMATH)
def replay_groups(kp, y, offsets, src, members, group_ends, g0, g1, crow, fm, pm, fP, pP, g, lls, bad, why):
    """:func:`_filter`'s ``REPLAY`` for groups ``g0:g1`` of sharers, in lock-step (:func:`replay_rts_groups`
    then takes their RTS means).

    Group ``j`` is ``members[group_ends[j - 1]:group_ends[j]]``, longest first: sequences that replay
    the covariance factors on rows ``crow[member]`` of one source, the same for the whole group
    (one missing pattern; one length when smoothing; the filter's factors of a step do not depend
    on what comes after it, so for the filter alone complete sequences of every length share the
    longest one's, each reading its first rows; a member stops at its own length). Replayed one sequence at a time, each step waits on the
    previous one (a chain of dependent products and divisions); here step ``t`` is taken for
    every member of the group before step ``t + 1``, with the members innermost and their means
    in ``(d, G)`` arrays, so the independent chains run side by side in vector registers. Each
    member's arithmetic is that of the per-sequence replay (the same error checks, the same
    ``lls, bad, why``); sums may be associated differently, so results agree to round-off.
    """
    d = D if D > 0 else kp.m0.shape[0]
    F, H = kp.F[0], kp.H[0]
    no_block = np.empty((0, d, 0))  # the means go to the sequences' rows, not to a (T, d, G) block
    for j in range(g0, g1):
        lo = 0 if j == 0 else group_ends[j - 1]
        hi = group_ends[j]
        G = hi - lo
        for k in range(G):
            s = members[lo + k]
            bad[s] = -1
            why[s] = -1
        first = members[lo]  # the longest: a filter-only group may hold several lengths
        if bad[src[first]] != -1:
            for k in range(G):
                bad[members[lo + k]] = -3
            continue
        PM = np.empty((d, G))
        FM = np.empty((d, G))
        _lockstep_filter(
            kp,
            F,
            H,
            y,
            offsets,
            members,
            lo,
            G,
            crow[first],
            fP,
            pP,
            g,
            pm,
            fm,
            no_block,
            no_block,
            PM,
            FM,
            lls,
            bad,
            why,
        )


@nb.njit(cache=True, nogil=True, fastmath=FASTMATH)
def replay_rts_groups(kp, offsets, members, group_ends, g0, g1, crow, fm, pm, sm, gains, bad):
    """:func:`_rts`'s ``REPLAY`` of the means for the groups ``g0:g1`` of :func:`replay_groups` (one length
    each), in lock-step, after their filter: ``sm[t] = fm[t] + J_t (sm[t+1] - pm[t+1])`` backwards from
    ``sm[T-1] = fm[T-1]``, over blocks of steps whose filtered and predicted means are staged per member
    first (as in the forward pass). A group whose source failed is left (the caller raises). Its own
    kernel, so that a filter alone does not compile it.
    """
    d = D if D > 0 else kp.m0.shape[0]
    for j in range(g0, g1):
        lo = 0 if j == 0 else group_ends[j - 1]
        G = group_ends[j] - lo
        first = members[lo]
        if bad[first] == -3:
            continue
        T = offsets[first + 1] - offsets[first]
        c = crow[first]
        rows = np.empty(G, np.int64)
        SM = np.empty((d, G))
        for k in range(G):
            rows[k] = offsets[members[lo + k]]
            for i in range(d):
                SM[i, k] = fm[rows[k] + T - 1, i]
                sm[rows[k] + T - 1, i] = SM[i, k]
        D1 = np.empty((d, G))
        SFM = np.empty((G, STAGE_STEPS + _STAGE_PAD, d))
        SPM = np.empty((G, STAGE_STEPS + _STAGE_PAD, d))
        SSM = SPM  # the block's smoothed means, flushed like the filter's
        E = np.empty((1, G))
        hi = T - 1  # steps lo_:hi of the block (sm[hi] known)
        while hi > 0:
            lo_ = max(hi - STAGE_STEPS, 0)
            nb = hi - lo_
            for k in range(G):
                r = rows[k]
                copy_into(fm[r + lo_ : r + hi], SFM[k, :nb])
                copy_into(pm[r + lo_ + 1 : r + hi + 1], SPM[k, :nb])
            for tt in range(nb - 1, -1, -1):
                t = lo_ + tt
                for i in range(d):
                    for k in range(G):
                        D1[i, k] = SM[i, k] - SPM[k, tt, i]
                for i in range(d):
                    for k in range(G):
                        E[0, k] = SFM[k, tt, i]  # scratch row for the new mean's coordinate i
                    for l in range(d):
                        jl = gains[c + t, i, l]
                        for k in range(G):
                            E[0, k] += jl * D1[l, k]
                    for k in range(G):
                        SSM[k, tt, i] = E[0, k]
                for i in range(d):
                    for k in range(G):
                        SM[i, k] = SSM[k, tt, i]
            for k in range(G):
                r = rows[k]
                copy_into(SSM[k, :nb], sm[r + lo_ : r + hi])
            hi = lo_


@nb.njit(inline="always")
def _keep_means(X, staged, S, B, t, tt, Gt):
    """Step ``t``'s means ``X`` (``(d, G)``) of the first ``Gt`` members of a lock-step group: into their
    staging blocks ``S[k, tt]`` when ``staged``, else into the group's ``(T, d, G)`` block ``B[t]``."""
    if staged:
        for k in range(Gt):
            for i in range(X.shape[0]):
                S[k, tt, i] = X[i, k]
    else:
        for i in range(X.shape[0]):
            for k in range(Gt):
                B[t, i, k] = X[i, k]


@nb.njit(inline="always")
def _unstage(SPM, pm, SFM, fm, rows, offsets, members, lo, G, t0, nb):
    """Write the staged steps ``t0:t0 + nb`` of the first ``G`` members of a lock-step group to their
    rows of ``pm`` and ``fm`` (a member's steps beyond its own length are dropped)."""
    for k in range(G):
        s = members[lo + k]
        n = min(nb, offsets[s + 1] - offsets[s] - t0)
        if n > 0:
            r = rows[k] + t0
            copy_into(SPM[k, :n], pm[r : r + n])
            copy_into(SFM[k, :n], fm[r : r + n])
