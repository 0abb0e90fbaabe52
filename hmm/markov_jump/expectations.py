r"""Endpoint-conditioned expectations and path sampling for a Markov jump process.

Between two observation times ``dt`` apart, with end states ``a`` and ``b``,
EM needs the expected time spent in each state ``k`` and the expected number
of ``k -> l`` jumps (Hobolth & Jensen 2011):

.. math::

    \mathbb E[R_k \mid a, b] = \frac{I_{kk}(dt)_{ab}}{P(dt)_{ab}}, \qquad
    \mathbb E[N_{kl} \mid a, b] = q_{kl} \frac{I_{kl}(dt)_{ab}}{P(dt)_{ab}}, \qquad
    I_{kl}(t) = \int_0^t e^{Qs} e_k e_l^\top e^{Q(t-s)} \, ds .

EM only ever needs these expectations *summed* over intervals and over end
states with posterior weights :math:`\xi(a, b)` (exact observations: an
indicator). Writing :math:`W = \sum \xi(a,b) / P(dt)_{ab}\, e_a e_b^\top` for
all intervals of the same length, the sum is

.. math::

    \sum_{ab} W_{ab} I_{kl}(dt)_{ab} = \Big[\int_0^{dt} e^{Q^\top s} W e^{Q^\top (dt - s)} ds\Big]_{kl},

the upper-right block of the Van Loan (1978) block exponential
:math:`\exp\big(\begin{smallmatrix} Q^\top & W \\ 0 & Q^\top\end{smallmatrix} dt\big)`.
So one ``2K x 2K`` exponential per *distinct* interval length gives every
dwell time and jump count at once (a regular grid needs a single one).

The matrix exponential is computed in Numba by scaling and squaring with a
degree-16 Taylor polynomial (the scaled matrix has 1-norm at most 1/2, where the
truncation error is below 1e-19), so the whole E-step stays compiled.

Endpoint-conditioned paths are drawn by uniformization (Hobolth & Stone 2009):
with :math:`\mu = \max_i (-q_{ii})` and :math:`R = I + Q/\mu`, the number of
(real or virtual) jumps is drawn from
:math:`\Pr(n \mid a, b) = \mathrm{Pois}(n; \mu t) (R^n)_{ab} / P(t)_{ab}`, their
times are uniform order statistics, and the states form an ``R``-chain bridged
to ``b``; virtual self-jumps are then dropped.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from statespace.errors import ParameterError

from .generator import check_generator

_TAYLOR_DEGREE = 16


@nb.njit(cache=True)
def expm(A):
    """``exp(A)`` for a small dense matrix (scaling and squaring, Taylor degree 16)."""
    n = A.shape[0]
    norm = 0.0
    for j in range(n):
        s = 0.0
        for i in range(n):
            s += abs(A[i, j])
        if s > norm:
            norm = s
    squarings = 0
    if norm > 0.5:
        squarings = int(math.ceil(math.log2(norm / 0.5)))
    X = A * (0.5**squarings)
    E = np.eye(n)
    for k in range(_TAYLOR_DEGREE, 0, -1):
        E = np.eye(n) + (X @ E) / k
    for _ in range(squarings):
        E = E @ E
    return E


@nb.njit(cache=True)
def transition_matrices(Q, dts):
    """``P[u] = expm(Q dts[u])`` for each interval length, entries clipped at 0: ``(U, K, K)``."""
    K = Q.shape[0]
    P = np.empty((dts.shape[0], K, K))
    for u in range(dts.shape[0]):
        Pu = expm(Q * dts[u])
        for i in range(K):
            for j in range(K):
                P[u, i, j] = max(Pu[i, j], 0.0)
    return P


@nb.njit(cache=True)
def van_loan_integrals(Q, dts, W):
    """``sum_u int_0^{dt_u} expm(Q^T s) W_u expm(Q^T (dt_u - s)) ds``: a ``(K, K)`` matrix ``M``.

    ``M[k, k]`` is the expected total dwell time in ``k`` and ``Q[k, l] M[k, l]``
    the expected number of ``k -> l`` jumps, summed over all intervals whose
    weights ``W_u[a, b] = sum xi(a, b) / P(dt_u)[a, b]`` were accumulated.
    """
    K = Q.shape[0]
    M = np.zeros((K, K))
    B = np.zeros((2 * K, 2 * K))
    for u in range(dts.shape[0]):
        d = dts[u]
        for i in range(K):
            for j in range(K):
                B[i, j] = Q[j, i] * d
                B[K + i, K + j] = Q[j, i] * d
                B[i, K + j] = W[u, i, j] * d
        E = expm(B)
        for i in range(K):
            for j in range(K):
                M[i, j] += E[i, K + j]
    return M


def endpoint_expectations(Q, t: float):
    """Expected dwell times and jump counts given both end states of an interval of length ``t``.

    Returns ``(dwell, jumps)`` of shapes ``(K, K, K)`` and ``(K, K, K, K)``:
    ``dwell[a, b, k] = E[time in k | x_0 = a, x_t = b]`` and
    ``jumps[a, b, k, l] = E[number of k -> l jumps | x_0 = a, x_t = b]``
    (NaN where ``P(t)[a, b] = 0``: that end-point pair is impossible).
    """
    Q = check_generator("Q", Q)
    if not (np.isfinite(t) and t > 0):
        raise ParameterError(f"t: expected a positive finite interval length, got {t}")
    K = Q.shape[0]
    P = transition_matrices(Q, np.array([t]))[0]
    dwell = np.full((K, K, K), np.nan)
    jumps = np.full((K, K, K, K), np.nan)
    off = Q - np.diag(np.diag(Q))
    for a in range(K):
        for b in range(K):
            if P[a, b] <= 0.0:
                continue
            W = np.zeros((1, K, K))
            W[0, a, b] = 1.0 / P[a, b]
            M = van_loan_integrals(Q, np.array([t]), W)
            dwell[a, b] = np.diag(M)
            jumps[a, b] = off * M
    return dwell, jumps


@nb.njit(cache=True)
def _bridge_path(Q, a, b, t, rng):
    K = Q.shape[0]
    mu = 0.0
    for i in range(K):
        if -Q[i, i] > mu:
            mu = -Q[i, i]
    if mu == 0.0:
        return np.zeros(0), np.array([a])
    R = np.eye(K) + Q / mu
    Pab = expm(Q * t)[a, b]
    # Draw n from Pois(mu t)(n) (R^n)_{ab} / P_ab by inversion, extending R^n as needed.
    powers = [np.eye(K)]
    u = rng.random() * Pab
    n = 0
    log_pois = -mu * t
    cum = math.exp(log_pois) * powers[0][a, b]
    while cum < u and n < 100000:
        n += 1
        powers.append(powers[n - 1] @ R)
        log_pois += math.log(mu * t) - math.log(n)
        cum += math.exp(log_pois) * powers[n][a, b]
    times = np.sort(rng.random(n) * t)
    states = np.empty(n + 1, dtype=np.int64)
    states[0] = a
    probs = np.empty(K)
    for i in range(1, n + 1):
        prev = states[i - 1]
        rest = powers[n - i]
        total = 0.0
        for k in range(K):
            probs[k] = R[prev, k] * rest[k, b]
            total += probs[k]
        v = rng.random() * total
        acc = 0.0
        choice = K - 1
        for k in range(K):
            acc += probs[k]
            if v < acc:
                choice = k
                break
        states[i] = choice
    # Drop virtual jumps (self-transitions of the uniformized chain).
    keep = np.ones(n, dtype=np.bool_)
    n_real = 0
    for i in range(1, n + 1):
        keep[i - 1] = states[i] != states[i - 1]
        if keep[i - 1]:
            n_real += 1
    jt = np.empty(n_real)
    js = np.empty(n_real + 1, dtype=np.int64)
    js[0] = a
    m = 0
    for i in range(1, n + 1):
        if keep[i - 1]:
            jt[m] = times[i - 1]
            js[m + 1] = states[i]
            m += 1
    return jt, js


def sample_bridge(Q, a: int, b: int, t: float, rng=None):
    """One path of the chain on ``[0, t]`` conditioned on ``x_0 = a`` and ``x_t = b`` (uniformization).

    Returns ``(jump_times, states)``: ``states[0] = a``, ``states[i]`` holds from
    ``jump_times[i - 1]`` on, and ``states[-1] = b``.
    """
    from statespace.validation import as_rng

    Q = check_generator("Q", Q)
    K = Q.shape[0]
    for name, v in (("a", a), ("b", b)):
        if not (0 <= int(v) < K):
            raise ParameterError(f"{name}: expected a state in 0..{K - 1}, got {v}")
    if not (np.isfinite(t) and t > 0):
        raise ParameterError(f"t: expected a positive finite interval length, got {t}")
    if transition_matrices(Q, np.array([float(t)]))[0][int(a), int(b)] <= 0.0:
        raise ParameterError(f"a, b: the end states ({a}, {b}) are impossible over an interval of length {t}")
    return _bridge_path(Q, int(a), int(b), float(t), as_rng(rng))
