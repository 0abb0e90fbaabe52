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
Taylor polynomial (the scaled matrix has 1-norm at most 1/2 and the degree is
the smallest whose first omitted term is below 1e-18: 15 at norm 1/2, about 7
for the short intervals of a dense grid), so the whole E-step stays compiled.
The Van Loan exponential keeps its block-triangular structure (three ``K x K``
products per step instead of one ``2K x 2K``).

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

#: Truncation tolerance of the Taylor polynomial (relative to the scaled matrix's norm scale).
_TAYLOR_TOL = 1e-18


@nb.njit(cache=True)
def _matmul(A, B, out):
    """``out = A @ B`` for small square matrices (loops beat a BLAS call at K <= 12)."""
    n = A.shape[0]
    for i in range(n):
        for j in range(n):
            out[i, j] = 0.0
        for k in range(n):
            a = A[i, k]
            if a != 0.0:
                for j in range(n):
                    out[i, j] += a * B[k, j]


@nb.njit(cache=True)
def _norm1(A):
    n = A.shape[0]
    norm = 0.0
    for j in range(n):
        s = 0.0
        for i in range(n):
            s += abs(A[i, j])
        norm = max(norm, s)
    return norm


@nb.njit(cache=True)
def _taylor_plan(norm):
    """``(squarings, degree)``: scale to 1-norm <= 1/2, then the smallest degree
    whose first omitted term ``norm^(m+1)/(m+1)!`` is below ``_TAYLOR_TOL``."""
    squarings = 0
    if norm > 0.5:
        squarings = int(math.ceil(math.log2(norm / 0.5)))
        norm = norm * 0.5**squarings
    m = 0
    term = 1.0
    while m < 30:
        term *= norm / (m + 1)
        if term <= _TAYLOR_TOL:
            break
        m += 1
    return squarings, m


@nb.njit(cache=True)
def expm(A):
    """``exp(A)`` for a small dense matrix (scaling and squaring, adaptive-degree Taylor)."""
    n = A.shape[0]
    squarings, degree = _taylor_plan(_norm1(A))
    X = A * (0.5**squarings)
    E = np.eye(n)
    tmp = np.empty((n, n))
    for k in range(degree, 0, -1):
        _matmul(X, E, tmp)
        for i in range(n):
            for j in range(n):
                E[i, j] = tmp[i, j] / k + (1.0 if i == j else 0.0)
    for _ in range(squarings):
        _matmul(E, E, tmp)
        E[:, :] = tmp
    return E


@nb.njit(cache=True)
def _van_loan_block(A, Wd, E1, E2, t1, t2):
    """Upper blocks of ``exp([[A, Wd], [0, A]])``: ``E1 = exp(A)``, ``E2`` the integral block.

    The block-triangular structure is kept throughout: a Horner step is
    ``E1 <- I + A E1 / k``, ``E2 <- (A E2 + Wd E1) / k`` and a squaring is
    ``E2 <- E1 E2 + E2 E1``, ``E1 <- E1 E1`` (3 products of size K instead of one of size 2K).
    """
    n = A.shape[0]
    norm = 0.0
    for j in range(n):
        s1 = 0.0
        s2 = 0.0
        for i in range(n):
            s1 += abs(A[i, j])
            s2 += abs(Wd[i, j]) + abs(A[i, j])
        norm = max(norm, s1, s2)
    squarings, degree = _taylor_plan(norm)
    c = 0.5**squarings
    As = A * c
    Ws = Wd * c
    for i in range(n):
        for j in range(n):
            E1[i, j] = 1.0 if i == j else 0.0
            E2[i, j] = 0.0
    for k in range(degree, 0, -1):
        _matmul(As, E2, t1)
        _matmul(Ws, E1, t2)
        for i in range(n):
            for j in range(n):
                E2[i, j] = (t1[i, j] + t2[i, j]) / k
        _matmul(As, E1, t1)
        for i in range(n):
            for j in range(n):
                E1[i, j] = t1[i, j] / k + (1.0 if i == j else 0.0)
    for _ in range(squarings):
        _matmul(E1, E2, t1)
        _matmul(E2, E1, t2)
        for i in range(n):
            for j in range(n):
                E2[i, j] = t1[i, j] + t2[i, j]
        _matmul(E1, E1, t1)
        E1[:, :] = t1


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
    ``W_u`` enters linearly, so it is normalised before exponentiating (its size
    must not drive the number of squarings) and the result scaled back.
    """
    K = Q.shape[0]
    M = np.zeros((K, K))
    A = np.empty((K, K))
    Wd = np.empty((K, K))
    E1 = np.empty((K, K))
    E2 = np.empty((K, K))
    t1 = np.empty((K, K))
    t2 = np.empty((K, K))
    for u in range(dts.shape[0]):
        d = dts[u]
        wn = _norm1(W[u])
        if wn == 0.0:
            continue
        for i in range(K):
            for j in range(K):
                A[i, j] = Q[j, i] * d
                Wd[i, j] = W[u, i, j] * d / wn
        _van_loan_block(A, Wd, E1, E2, t1, t2)
        for i in range(K):
            for j in range(K):
                M[i, j] += E2[i, j] * wn
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


@nb.njit(cache=True)
def conditional_statistics(Q, dts):
    """Endpoint-conditioned expectations per interval length: ``(U, K, K, K + K*K)``.

    ``out[u, a, b, k] = E[time in k | a, b]`` and
    ``out[u, a, b, K + k*K + l] = E[number of k -> l jumps | a, b]`` over an
    interval of length ``dts[u]`` (zero where ``P(dt)[a, b] = 0``). One block
    exponential per state and per allowed jump, ``I_kl`` being the upper-right
    block of ``exp([[Q, E_kl], [0, Q]] dt)``.
    """
    K = Q.shape[0]
    out = np.zeros((dts.shape[0], K, K, K + K * K))
    A = np.empty((K, K))
    Wd = np.zeros((K, K))
    E1 = np.empty((K, K))
    E2 = np.empty((K, K))
    t1 = np.empty((K, K))
    t2 = np.empty((K, K))
    for u in range(dts.shape[0]):
        d = dts[u]
        P = expm(Q * d)
        for i in range(K):
            for j in range(K):
                A[i, j] = Q[i, j] * d
        for k in range(K):
            for l in range(K):
                if k != l and Q[k, l] <= 0.0:
                    continue
                Wd[k, l] = d
                _van_loan_block(A, Wd, E1, E2, t1, t2)
                Wd[k, l] = 0.0
                for a in range(K):
                    for b in range(K):
                        if P[a, b] > 0.0:
                            v = E2[a, b] / P[a, b]
                            if k == l:
                                out[u, a, b, k] = v
                            else:
                                out[u, a, b, K + k * K + l] = Q[k, l] * v
    return out
