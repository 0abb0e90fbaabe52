r"""Forward-backward for discrete latent chains, compiled with Numba.

For a chain with initial distribution :math:`\pi`, transition matrices
:math:`A_t` (``A[t-1]`` moves the chain from time ``t-1`` to ``t``; a single
matrix when time-invariant) and per-step emission log-likelihoods
:math:`\ell_t(k) = \log p(y_t \mid z_t = k)`, the scaled forward recursion is

.. math::

    \tilde\alpha_0 = \pi \odot e^{\ell_0}, \qquad
    \tilde\alpha_t = (A_t^\top \alpha_{t-1}) \odot e^{\ell_t}, \qquad
    c_t = \textstyle\sum_k \tilde\alpha_t(k), \quad \alpha_t = \tilde\alpha_t / c_t,

so :math:`\alpha_t = p(z_t \mid y_{0:t})` and
:math:`\log p(y_{0:T-1}) = \sum_t (\log c_t + m_t)` where :math:`m_t = \max_k \ell_t(k)`
is subtracted before exponentiating (the scaling keeps everything in range
without log-sum-exp in the inner loop, which is what makes it fast). The
backward pass uses the same constants, giving smoothed marginals
:math:`\gamma_t = \alpha_t \odot \beta_t` and two-slice marginals
:math:`\xi_t(i,j) = \alpha_{t-1}(i) A_t(i,j) e^{\ell_t(j) - m_t} \beta_t(j) / c_t`.

Partial knowledge (plausibilities ``pl``) and missing observations enter only
through ``loglik``: add ``log(pl)``; put 0 for a missing step. These kernels are
shared by the HMM family and the Markov jump processes (``A_t = expm(Q dt_t)``).

Speed (what the benchmark measures): the exponentials :math:`B_t(k) = e^{\ell_t(k) - m_t}`
are computed once, in one vectorised NumPy pass by :func:`posteriors` (NumPy's
SIMD ``exp`` is several times faster than a scalar loop), and reused by the
forward pass, the backward pass and the two-slice counts; no logarithm is taken
inside the recursion; the per-step matrix-vector products run over contiguous rows so LLVM
vectorises them (``fastmath`` limited to re-association, never to assuming
finite values, since ``-inf`` log-likelihoods are legitimate); for a
time-invariant chain the backward pass is fused with the smoothed marginals and
the expected counts :math:`A \odot \sum_t \alpha_{t-1}\tilde\beta_t^\top`, keeping
only two beta vectors and writing the marginals over ``B`` (fresh ``(T, K)``
pages cost as much as the arithmetic at this size). From Python, a
time-invariant chain with enough work runs the forward and backward passes at
once on two threads (``hmm.parallel_forward_backward``; measured speeds are in
docs/benchmarks.md).

Data of zero probability (a symbol no state emits, a state the transition
structure cannot reach, log-likelihoods beyond float64's range) give a
log-likelihood of ``-inf``, with the filtered rows NaN from the first step no
reachable state explains; the models' verbs turn that into the error of
:func:`impossible_data_error`.

Robustness: the fast pass shifts each step by the maximum over *all* states.
When only states the chain cannot occupy explain a step, every reachable term
underflows; the pass then restarts in ``_forward_robust``, which shifts by
the best *reachable* state, so the result is NaN-free unless the data are truly
impossible (log-likelihood ``-inf``). Scaling cannot represent a path whose weight
falls below ``1e-308`` of the best one at some step, yet such a path can dominate
later (ruled out by one observation, restored by the next under a sparse
transition matrix); when a finite log-likelihood lies more than 700 nats below
its step's maximum, or a weight falls below ``1e-290``, the fast passes stop. Not when
the chain mixes (every move at least ``1e-30`` likely, ``_drop_negligible``): there
a term that far down can never come to matter, so it is dropped and one extreme
observation stays on the scaled path. Otherwise :func:`smoother` and :func:`posteriors`
hand the sequence to ``hmm.certified_scaling.exact_posteriors``: a plain scaled pass
whose backward messages bound, after the fact, what underflow lost (most such losses are
of weights that never return: a left-to-right chain's far states), and the exact
log-space recursion of ``hmm.log_space`` when that bound does not prove the loss
negligible (slower; such data were found by the property-based tests). :func:`forward`
does the same with a bound it carries forward (``exact_forward``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from statespace._numerics.fastmath import FASTMATH
from statespace._standalone import standalone
from statespace.errors import ImpossibleDataError

from .certified_scaling import exact_forward, exact_posteriors

_EXP_CLIP = 700.0  # exp(700) is finite; only unreachable states ever get near it
# A state's scaled weight below this, computed from non-zero factors, is about to be lost to
# underflow; under structural zeros nothing re-seeds it, yet later data may make it dominant
# (exactly: e^-800 times a later likelihood ratio of e^900), so the pass hands over to log space.
_TINY = 1e-290
#: What the scaled forward passes return when a weight was lost to underflow.
PRECISION_LOST = -1


@nb.njit(cache=True)
def _row_max(loglik):
    T, K = loglik.shape
    m = np.empty(T)
    for t in range(T):
        mt = -np.inf
        for k in range(K):
            if loglik[t, k] > mt:
                mt = loglik[t, k]
        m[t] = mt
    return m


@nb.njit(cache=True)
def _exp_shifted(loglik, m):
    T, K = loglik.shape
    B = np.empty((T, K))
    for t in range(T):
        for k in range(K):
            B[t, k] = math.exp(loglik[t, k] - m[t])
    return B


@nb.njit(cache=True, fastmath=FASTMATH, inline="always")
def _scale_row(row, ct):
    """Divide ``row`` by its sum ``ct`` in place; ``False`` (and ``row`` untouched) when ``ct`` is
    not a positive finite number, i.e. the step's data are impossible or overflowed."""
    if not (0.0 < ct < np.inf):
        return False
    inv = 1.0 / ct
    for k in range(row.shape[0]):
        row[k] *= inv
    return True


@nb.njit(cache=True, fastmath=FASTMATH, inline="always")
def _dot(row, x, n):
    """``sum_{i < n} row[i] x[i]``: one entry of a matrix-vector product, read along a contiguous row.

    Both passes multiply by rows: the forward pass by those of :math:`A^\top` (its
    :math:`A^\top \alpha`), the backward pass by those of :math:`A` (its :math:`A \tilde\beta`).
    The sum runs into a register accumulator, which re-association lets LLVM vectorise.
    The callers pass their own ``K`` as ``n``: with the same trip count as their
    other loops, the inlined code compiles to exactly the instructions of the loop
    written in place (a bound read from ``row.shape`` did not).
    """
    acc = 0.0
    for i in range(n):
        acc += row[i] * x[i]
    return acc


@nb.njit(cache=True, fastmath=FASTMATH)
def _forward_fixed(pi0, A2, B, filtered, c):
    r"""Forward recursion for one time-invariant ``A2 (K, K)``.

    The recursion runs on the unnormalised rows :math:`\tilde\alpha_t =
    (A^\top \tilde\alpha_{t-1}) \odot B_t / c_{t-1}`: the division by
    :math:`c_{t-1}` is applied after the next matrix-vector product instead of
    before it, which takes the division's latency off the step-to-step
    dependency chain (it dominates at small K). The product runs as dot
    products over the contiguous rows of :math:`A^\top` into a register
    accumulator, reading the previous row from a local vector: accumulating
    into ``filtered[t]`` itself (which LLVM must assume aliases
    ``filtered[t-1]``) made every step a chain of stores and reloads. Rows are normalised in a separate pass.
    """
    T, K = B.shape
    AT = np.ascontiguousarray(A2.T)
    prev = np.empty(K)
    t_end = T
    ct = 0.0
    for k in range(K):
        prev[k] = pi0[k] * B[0, k]
        filtered[0, k] = prev[k]
        ct += prev[k]
    if not (0.0 < ct < np.inf):
        return 0
    c[0] = ct
    prev_inv = 1.0 / ct
    cur = np.empty(K)
    for t in range(1, T):
        Bt = B[t]
        ct = 0.0
        for k in range(K):
            acc = _dot(AT[k], prev, K)
            v = acc * Bt[k] * prev_inv
            if v < _TINY and acc > 0.0 and Bt[k] > 0.0:
                return PRECISION_LOST
            cur[k] = v
            ct += v
        if not (0.0 < ct < np.inf):
            t_end = t
            break
        out = filtered[t]
        for k in range(K):
            prev[k] = cur[k]
            out[k] = cur[k]
        c[t] = ct
        prev_inv = 1.0 / ct
    for t in range(t_end):
        inv = 1.0 / c[t]
        for k in range(K):
            filtered[t, k] *= inv
    return t_end


@nb.njit(cache=True, fastmath=FASTMATH)
def _forward_varying(pi0, A, B, filtered, c):
    """Forward recursion with ``A[t-1]`` moving the chain into step ``t``."""
    T, K = B.shape
    for t in range(T):
        if t == 0:
            for k in range(K):
                filtered[0, k] = pi0[k] * B[0, k]
        else:
            for k in range(K):
                filtered[t, k] = 0.0
            for i in range(K):
                a = filtered[t - 1, i]
                for k in range(K):
                    filtered[t, k] += a * A[t - 1, i, k]
            for k in range(K):
                v = filtered[t, k] * B[t, k]
                if v < _TINY and filtered[t, k] > 0.0 and B[t, k] > 0.0:
                    return PRECISION_LOST
                filtered[t, k] = v
        ct = 0.0
        for k in range(K):
            ct += filtered[t, k]
        if not _scale_row(filtered[t], ct):
            return t
        c[t] = ct
    return T


@nb.njit(cache=True, fastmath=FASTMATH)
def _forward_robust(pi0, A, loglik, filtered, B, c, m):
    """Forward pass shifting each step by the best log-likelihood among *reachable* states.

    The fast pass shifts by the maximum over all states; when only unreachable
    states explain a step well, every reachable term underflows to zero. Here
    ``m_t`` is the maximum over states with positive predicted probability, and
    ``B`` is clipped at 1 for the others (their terms are multiplied by zero
    anyway), so the pass fails only when the data are truly impossible.
    Fills ``filtered``, ``B``, ``c``, ``m``; returns the first failing t (or T).
    """
    T, K = loglik.shape
    S = A.shape[0]
    pred = np.empty(K)
    for t in range(T):
        if t == 0:
            for k in range(K):
                pred[k] = pi0[k]
        else:
            s = t - 1 if S > 1 else 0
            for k in range(K):
                pred[k] = 0.0
            for i in range(K):
                a = filtered[t - 1, i]
                for k in range(K):
                    pred[k] += a * A[s, i, k]
        mt = -np.inf
        for k in range(K):
            if pred[k] > 0.0 and loglik[t, k] > mt:
                mt = loglik[t, k]
        if mt == -np.inf:
            return t
        ct = 0.0
        for k in range(K):
            B[t, k] = math.exp(min(loglik[t, k] - mt, 0.0))
            filtered[t, k] = pred[k] * B[t, k]
            ct += filtered[t, k]
        if not _scale_row(filtered[t], ct):
            return t
        c[t] = ct
        m[t] = mt
    return T


@nb.njit(cache=True)
def _forward_scaled(pi0, A, B, filtered, c):
    """Forward recursion on ``B[t] = exp(loglik[t] - m_t)``; fills ``filtered``, ``c``; returns the first failing t (or T)."""
    if A.shape[0] == 1:
        return _forward_fixed(pi0, A[0], B, filtered, c)
    return _forward_varying(pi0, A, B, filtered, c)


@nb.njit(cache=True, fastmath=FASTMATH)
def _backward_scaled(A, Bc, beta):
    """``beta`` from ``Bc[t] = exp(loglik[t] - scale[t])``; on return ``Bc[t] *= beta[t]``."""
    T, K = Bc.shape
    S = A.shape[0]
    beta[T - 1] = 1.0
    for t in range(T - 1, 0, -1):
        At = A[t - 1] if S > 1 else A[0]
        bt = Bc[t]
        beta_t = beta[t]
        for j in range(K):
            bt[j] *= beta_t[j]
            # overflow only happens for states the chain cannot occupy at t; they
            # enter the sum with A_ij = 0, so 0 keeps 0 * inf from becoming NaN
            if not (bt[j] < np.inf):
                bt[j] = 0.0
        out = beta[t - 1]
        for i in range(K):
            out[i] = _dot(At[i], bt, K)


_COUNT_BLOCK = 4  # time steps per sweep over the count matrix (the flush below is written out for 4)


@nb.njit(cache=True, fastmath=FASTMATH)
def _backward_fused(A2, B, c, filtered, G):
    """Backward pass for one ``A2 (K, K)`` fused with the marginals and the count matrix.

    Keeps only two ``K``-vectors of beta; overwrites ``B`` row by row with the
    smoothed marginals (one fewer ``(T, K)`` array to allocate) and adds
    ``G[i, j] += filtered[t-1, i] * B[t, j] beta_t(j) / c_t`` (counts are ``A2 * G``).
    The rank-one count updates are applied :data:`_COUNT_BLOCK` steps at a
    time from a small buffer of the scaled rows: one load and store of ``G``
    per block instead of per step (at K = 20 those ``K^2`` loads and stores,
    not the arithmetic, bounded the pass).
    """
    T, K = B.shape
    beta = np.ones(K)
    buf = np.empty((_COUNT_BLOCK, K))
    n_buf = 0
    for t in range(T - 1, 0, -1):
        inv = 1.0 / c[t]
        bt = buf[n_buf]
        Bt = B[t]
        Ft = filtered[t]
        for j in range(K):
            v = Bt[j] * inv * beta[j]
            # overflow only for states the chain cannot occupy at t (A_ij = 0 there)
            bt[j] = v if v < np.inf else 0.0
            Bt[j] = Ft[j] * beta[j] if Ft[j] > 0.0 else 0.0
        n_buf += 1
        if n_buf == _COUNT_BLOCK:
            # buf[r] was filled at step t + 3 - r and pairs with filtered[t + 2 - r]
            for i in range(K):
                a0 = filtered[t + 2, i]
                a1 = filtered[t + 1, i]
                a2 = filtered[t, i]
                a3 = filtered[t - 1, i]
                Gi = G[i]
                b0 = buf[0]
                b1 = buf[1]
                b2 = buf[2]
                b3 = buf[3]
                for j in range(K):
                    Gi[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
            n_buf = 0
        for i in range(K):
            beta[i] = _dot(A2[i], bt, K)
    # leftover rows: buf[r] holds step n_buf - r, paired with filtered[n_buf - 1 - r]
    for r in range(n_buf):
        for i in range(K):
            a = filtered[n_buf - 1 - r, i]
            for j in range(K):
                G[i, j] += a * buf[r, j]
    F0 = filtered[0]
    for j in range(K):
        B[0, j] = F0[j] * beta[j] if F0[j] > 0.0 else 0.0


_UNDERFLOW = -700.0  # exp of anything below is (nearly) lost to float64 underflow
# A chain mixes when every move has probability at least _MIXING: then every state keeps a
# predicted probability >= _MIXING at every step t >= 1 and backward messages differ by a factor
# <= 1 / _MIXING, so a term e^_NEGLIGIBLE below its step's best moves any posterior by less than
# e^-500 / _MIXING^2 ~ 1e-157 relative: exactly nothing in float64. Dropping such terms keeps
# one extreme observation (log-likelihood rows spread over 1e6 nats) on the scaled path.
_MIXING = 1e-30
_NEGLIGIBLE = -500.0


@nb.njit(cache=True)
def _underflows(loglik, m):
    """Whether some finite log-likelihood sits so far below its step's maximum that its weight underflows."""
    T, K = loglik.shape
    for t in range(T):
        for k in range(K):
            v = loglik[t, k]
            if v > -np.inf and v - m[t] < _UNDERFLOW:
                return True
    return False


@nb.njit(cache=True)
def _drop_negligible(pi0, A, loglik):
    """Whether the scaled passes may run on ``loglik`` after dropping its negligible terms (in place).

    Only for a chain that mixes (every entry of every ``A_t`` at least
    :data:`_MIXING`): in rows ``t >= 1``, entries more than :data:`_NEGLIGIBLE`
    nats below the row's best become ``-inf`` (see the bound above). Row 0's weights are
    ``pi0 * B_0``, with no lower bound on the prior, so there the comparison is of
    ``log pi0_k + loglik[0, k]`` (a term that far below the best moves a posterior by less
    than ``e^_NEGLIGIBLE / _MIXING``: the backward messages' spread), and a state ``pi0``
    rules out gets ``-inf`` (its weight is zero either way), except the row's largest entry,
    by which the callers scale the row (as no row's largest entry is dropped). The answer is False if row 0
    still underflows, or if the chain does not mix: the caller then needs the exact
    log-space recursion (rows may have been thinned already, which changes nothing there
    either). Row 0 underflowed for AR models whose first step is far from the initial
    distribution's mean, which sent every such sequence to the log-space pass.
    """
    for v in A.ravel():
        if not v >= _MIXING:
            return False
    T, K = loglik.shape
    for t in range(1, T):
        mt = -np.inf
        for k in range(K):
            mt = max(mt, loglik[t, k])
        for k in range(K):
            if loglik[t, k] - mt < _NEGLIGIBLE:
                loglik[t, k] = -np.inf
    m0 = -np.inf
    top = 0  # row 0's largest entry stays: the callers scale row 0 by it
    j0 = -np.inf  # the best joint weight of row 0, log pi0_k + loglik[0, k]
    for k in range(K):
        if loglik[0, k] > m0:
            m0, top = loglik[0, k], k
        if pi0[k] > 0.0:
            j0 = max(j0, math.log(pi0[k]) + loglik[0, k])
    if j0 > -np.inf:
        for k in range(K):
            if k != top and not (pi0[k] > 0.0 and math.log(pi0[k]) + loglik[0, k] - j0 >= _NEGLIGIBLE):
                loglik[0, k] = -np.inf
    for k in range(K):
        if loglik[0, k] > -np.inf and loglik[0, k] - m0 < _UNDERFLOW:
            return False
    return True


@standalone
@nb.njit(cache=True)
def forward(pi0, A, loglik):
    """Scaled forward pass.

    Args:
        pi0: ``(K,)`` initial distribution.
        A: ``(S, K, K)`` transition matrices with ``S == 1`` or ``S == T - 1``.
        loglik: ``(T, K)`` emission log-likelihoods (``-inf`` allowed).

    Returns:
        ``(log_likelihood, filtered (T, K), scale (T,))`` where ``scale[t] = log c_t + m_t``.
        ``log_likelihood`` is ``-inf`` when the data are impossible under the model.
        When a weight would be lost to underflow: the certified scaled pass or exact log space (``exact_forward``).
    """
    T, K = loglik.shape
    m = _row_max(loglik)
    if _underflows(loglik, m):
        kept = loglik.copy()
        if not _drop_negligible(pi0, A, kept):
            return exact_forward(pi0, A, loglik)
        loglik = kept
    B = _exp_shifted(loglik, m)
    filtered = np.empty((T, K))
    c = np.empty(T)
    t_ok = _forward_scaled(pi0, A, B, filtered, c)
    if t_ok == PRECISION_LOST:
        return exact_forward(pi0, A, loglik)
    if t_ok < T:
        t_ok = _forward_robust(pi0, A, loglik, filtered, B, c, m)
    scale = np.empty(T)
    total = 0.0
    for t in range(t_ok):
        scale[t] = math.log(c[t]) + m[t]
        total += scale[t]
    if t_ok < T:
        filtered[t_ok:] = np.nan
        scale[t_ok:] = -np.inf
        return -np.inf, filtered, scale
    return total, filtered, scale


@nb.njit(cache=True)
def backward(A, loglik, scale):
    """Scaled backward pass with the forward pass's constants: ``beta (T, K)``."""
    T, K = loglik.shape
    beta = np.empty((T, K))
    Bc = np.empty((T, K))
    for t in range(T):
        for k in range(K):
            # clipped: a state unreachable at t may explain y_t far better than scale[t] says
            Bc[t, k] = math.exp(min(loglik[t, k] - scale[t], _EXP_CLIP))
    _backward_scaled(A, Bc, beta)
    return beta


@nb.njit(cache=True)
def _sum_log(c):
    """``sum(log(c))`` with one logarithm per ~100 steps (products kept in range)."""
    total = 0.0
    prod = 1.0
    for t in range(c.shape[0]):
        v = c[t]
        if v < 1e-50:
            total += math.log(v)
        else:
            prod *= v
            if prod < 1e-250:
                total += math.log(prod)
                prod = 1.0
    return total + math.log(prod)


@nb.njit(cache=True)
def _posteriors_from_B(pi0, A, loglik, B, m):
    """Forward-backward on precomputed ``B = exp(loglik - m[:, None])`` (``B``, ``m`` are overwritten)."""
    return _posteriors_into(pi0, A, loglik, B, m, np.empty(B.shape))


@nb.njit(cache=True)
def _forward_outcome(pi0, A, loglik, B, m, filtered, c, t_ok):
    """What the scaled forward pass that stopped at step ``t_ok`` (``T``: it went through) leads to: the
    log-likelihood; NaN, which asks the caller for the exact pass (:func:`exact_posteriors`: the pass
    lost precision, or ``loglik`` came empty and it could not carry the data); or ``-inf`` for data of
    zero probability (``filtered`` NaN from the failing step on). The exact pass is the caller's: a
    rare path, compiled (seconds) only when some data first need it, not with every kernel here."""
    T = B.shape[0]
    if t_ok == PRECISION_LOST:
        return np.nan
    if t_ok < T:
        if loglik.shape[0] != T:
            return np.nan  # the caller overwrote loglik with B (B is still intact): it retries the slow way
        t_ok = _forward_robust(pi0, A, loglik, filtered, B, c, m)
    if t_ok < T:
        filtered[t_ok:] = np.nan
        return -np.inf
    return _sum_log(c) + m.sum()


@standalone
@nb.njit(cache=True)
def _posteriors_fixed(pi0, A, loglik, B, m, filtered):
    """:func:`_posteriors_into` for a time-invariant chain (``A`` of shape ``(1, K, K)``): what a batch
    of sequences needs, without the time-varying branch, which a batch then does not compile."""
    T, K = B.shape
    c = np.empty(T)
    counts = np.zeros((K, K))
    ll = _forward_outcome(pi0, A, loglik, B, m, filtered, c, _forward_fixed(pi0, A[0], B, filtered, c))
    if not ll > -np.inf:
        return ll, filtered, B if math.isnan(ll) else np.full((T, K), np.nan), counts
    G = np.zeros((K, K))
    _backward_fused(A[0], B, c, filtered, G)
    for i in range(K):
        for j in range(K):
            counts[i, j] = A[0, i, j] * G[i, j]
    return ll, filtered, B, counts


@nb.njit(cache=True)
def _posteriors_into(pi0, A, loglik, B, m, filtered):
    """:func:`_posteriors_from_B` writing the filtered probabilities into ``filtered (T, K)``.

    A log-likelihood of NaN asks the caller for the exact log-space pass (:func:`_forward_outcome`).

    Python callers allocate ``filtered`` with NumPy, which asks the kernel for
    huge pages on large arrays: first touch of a fresh 16 MB array then costs
    about a quarter of what it costs from Numba's allocator (K = 20, T = 1e5).
    """
    if A.shape[0] == 1:
        return _posteriors_fixed(pi0, A, loglik, B, m, filtered)
    T, K = B.shape
    c = np.empty(T)
    counts = np.zeros((K, K))
    ll = _forward_outcome(pi0, A, loglik, B, m, filtered, c, _forward_varying(pi0, A, B, filtered, c))
    if not ll > -np.inf:
        return ll, filtered, B if math.isnan(ll) else np.full((T, K), np.nan), counts
    smoothed = np.empty((T, K))
    for t in range(T):
        inv = 1.0 / c[t]
        for k in range(K):
            B[t, k] *= inv
    beta = np.empty((T, K))
    _backward_scaled(A, B, beta)  # B[t] now holds exp(loglik[t] - scale[t]) * beta[t]
    # beta may overflow only for states the chain cannot occupy (filtered == 0)
    for t in range(T):
        for k in range(K):
            smoothed[t, k] = filtered[t, k] * beta[t, k] if filtered[t, k] > 0.0 else 0.0
    for t in range(1, T):
        for i in range(K):
            a = filtered[t - 1, i]
            for j in range(K):
                counts[i, j] += a * A[t - 1, i, j] * B[t, j]
    return ll, filtered, smoothed, counts


@nb.njit(cache=True)
def smoother(pi0, A, loglik):
    """Forward-backward: ``(log_likelihood, filtered, smoothed, transition_counts)``.

    ``transition_counts[i, j] = sum_t xi_t(i, j)``, the expected number of i->j moves
    (what Baum-Welch needs for a time-invariant chain). Callable from compiled
    code; from Python, :func:`posteriors` returns the same, faster.
    """
    m = _row_max(loglik)
    work = loglik
    if _underflows(loglik, m):
        work = loglik.copy()
        if not _drop_negligible(pi0, A, work):
            return exact_posteriors(pi0, A, loglik)
    out = _posteriors_from_B(pi0, A, work, _exp_shifted(work, m), m)
    if math.isnan(out[0]):
        return exact_posteriors(pi0, A, work)
    return out


@nb.njit(cache=True)
def _shifted(loglik):
    """``(loglik - m[:, None], m)`` with ``m`` the row maxima, in one pass."""
    T, K = loglik.shape
    m = _row_max(loglik)
    out = np.empty((T, K))
    for t in range(T):
        for k in range(K):
            out[t, k] = loglik[t, k] - m[t]
    return out, m


@nb.njit(cache=True)
def _shift_in_place(loglik):
    m = _row_max(loglik)
    T, K = loglik.shape
    for t in range(T):
        for k in range(K):
            loglik[t, k] -= m[t]
    return m


def _two_threads(A, loglik) -> bool:
    """Whether ``hmm.parallel_forward_backward`` applies (one transition matrix) and pays (enough work)."""
    from .parallel_forward_backward import MIN_WORK

    T, K = loglik.shape
    return A.shape[0] == 1 and T >= 4 and T * K >= MIN_WORK


def posteriors(pi0, A, loglik, overwrite: bool = False):
    """:func:`smoother` with the exponentials taken by NumPy's vectorised ``exp`` (Python callers).

    ``overwrite=True`` lets it use ``loglik``'s memory for its work (the array is
    destroyed): one fewer ``(T, K)`` allocation, whose first touch costs as much as
    the forward pass itself at small ``K``. A time-invariant chain with enough
    work (``T * K`` at least ``hmm.parallel_forward_backward.MIN_WORK``) runs
    on two threads (``hmm.parallel_forward_backward``), with the same answers.
    """
    if _two_threads(A, loglik):
        from .parallel_forward_backward import posteriors_two_threads

        usable = overwrite and loglik.flags.c_contiguous and loglik.dtype == np.float64 and loglik.flags.writeable
        work = loglik if usable else np.array(loglik, dtype=np.float64, order="C")
        fast, m = posteriors_two_threads(pi0, A[0], work)
        if fast is None and m is None and _drop_negligible(pi0, A, work):  # work holds the log-likelihoods again
            fast, m = posteriors_two_threads(pi0, A[0], work)
        if fast is not None:
            return fast
        if m is None:  # a weight would underflow
            return exact_posteriors(pi0, A, work)
        return _posteriors_scaled(pi0, A, work, m)
    if not overwrite:
        return _posteriors_sequential(pi0, A, loglik)
    if not (loglik.flags.c_contiguous and loglik.dtype == np.float64 and loglik.flags.writeable):
        return _posteriors_sequential(pi0, A, loglik)
    m = _shift_in_place(loglik)
    if _underflows(loglik, np.zeros_like(m)) and not _drop_negligible(pi0, A, loglik):
        loglik += m[:, None]
        return exact_posteriors(pi0, A, loglik)
    np.exp(loglik, out=loglik)
    return _posteriors_scaled(pi0, A, loglik, m)


def _posteriors_sequential(pi0, A, loglik):
    """One-thread :func:`posteriors` that keeps ``loglik`` (it can take the robust path)."""
    B, m = _shifted(loglik)
    if _underflows(loglik, m) and not _drop_negligible(pi0, A, B):
        return exact_posteriors(pi0, A, loglik)
    np.exp(B, out=B)
    out = _posteriors_into(pi0, A, loglik, B, m, np.empty(B.shape))
    if np.isnan(out[0]):  # the scaled pass lost precision
        return exact_posteriors(pi0, A, loglik)
    return out


def _posteriors_scaled(pi0, A, B, m):
    """One-thread posteriors from ``B = exp(loglik - m[:, None])`` alone (``B`` is overwritten)."""
    out = _posteriors_into(pi0, A, np.empty((0, B.shape[1])), B, m, np.empty(B.shape))
    if np.isnan(out[0]):  # every reachable state underflowed somewhere: rebuild loglik, robust path
        with np.errstate(divide="ignore"):
            original = np.log(out[2]) + m[:, None]
        return _posteriors_sequential(pi0, A, original)
    return out


@nb.njit(cache=True)
def two_slice_marginals(A, loglik, filtered, scale, beta):
    """Per-step two-slice marginals ``xi (T-1, K, K)``: ``xi[t-1, i, j] = p(z_{t-1}=i, z_t=j | y)``.

    Needed when each step has its own transition matrix and its own M-step
    weights (Markov jump processes observed at irregular times). Like
    :func:`backward`, it works on scaled quantities: when a finite
    log-likelihood lies more than 700 nats below its step's maximum, paths can
    be lost to underflow; :func:`smoother` switches to log space there.

    Each ``xi[t-1]`` is divided by its sum. In exact arithmetic that sum is 1;
    in float64, ``scale[t] = m_t + log c_t`` is rounded to the spacing of
    ``m_t`` (1 for log-likelihoods near ``-5e15``, an observation ``10^8``
    standard deviations out), which multiplies ``exp(loglik[t] - scale[t])``, and
    every earlier ``beta``, by a factor common to the whole step: the division
    removes it. (``filtered * beta`` carries the same factor per row:
    normalise its rows.)
    """
    T, K = loglik.shape
    xi = np.empty((max(T - 1, 0), K, K))
    for t in range(1, T):
        At = A[t - 1] if A.shape[0] > 1 else A[0]
        total = 0.0
        for i in range(K):
            for j in range(K):
                v = filtered[t - 1, i] * At[i, j] * math.exp(min(loglik[t, j] - scale[t], _EXP_CLIP)) * beta[t, j]
                xi[t - 1, i, j] = v
                total += v
        if total > 0.0:
            inv = 1.0 / total
            for i in range(K):
                for j in range(K):
                    xi[t - 1, i, j] *= inv
    return xi


def impossible_data_error(
    name: str, pi0, A, loglik, times=None, check: str = "the data or the emission parameters"
) -> ImpossibleDataError:
    """The error for observations of zero probability: names ``name`` and the first impossible step.

    That step is the first at which no state the chain can occupy (given the
    transition structure, ``pl`` and the earlier observations) explains the
    observation: where the forward pass (rerun here, on this rare path) stops.
    A log-likelihood of ``-inf`` for every state is also what a density too
    small for float64 gives (an observation ``1e200`` standard deviations out).
    ``times`` (observation times, continuous-time chains) adds the step's time;
    ``check`` says what the user should look at.
    """
    loglik = np.asarray(loglik, dtype=np.float64)
    filtered = forward(pi0, A, loglik)[1]
    bad = ~np.isfinite(filtered).all(axis=1)
    t = int(np.argmax(bad)) if bad.any() else loglik.shape[0] - 1
    if (loglik[t] > -np.inf).any():
        where = "every state the chain can occupy there (the transition structure, pl or the earlier observations rule out the others)"
    else:
        where = "every state"
    at = f" (time {times[t]:.6g})" if times is not None else ""
    return ImpossibleDataError(
        f"{name}: the observation at time step {t}{at} has zero probability under {where} "
        f"(impossible data: log-likelihood -inf, or below float64's range); check {check}"
    )
