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

The matrix exponential of a generator is computed in Numba
(:func:`generator_expm`) by scaling and squaring of the uniformised generator
:math:`Q + \mu I \ge 0` with a Taylor polynomial (scaled to :math:`\mu h \le 1/2`,
the degree the smallest whose first omitted term is below 1e-18: 15 at 1/2,
about 7 for the short intervals of a dense grid), renormalising the rows after
every squaring, so that ``P(dt)`` is stochastic and finite for a gap of any
length and reaches the limit ``P(inf)`` to rounding; the whole E-step stays
compiled. The Van Loan exponential keeps its block-triangular structure (three
``K x K`` products per step instead of one ``2K x 2K``).

Endpoint-conditioned paths are drawn by uniformization (Hobolth & Stone 2009):
with :math:`\mu = \max_i (-q_{ii})` and :math:`R = I + Q/\mu`, the number of
(real or virtual) jumps is drawn from
:math:`\Pr(n \mid a, b) = \mathrm{Pois}(n; \mu t) (R^n)_{ab} / P(t)_{ab}`, their
times are uniform order statistics, and the states form an ``R``-chain bridged
to ``b``; virtual self-jumps are then dropped. Long intervals are cut into
pieces whose end states are drawn first (:func:`_bridge_path`).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from statespace._numerics.categorical import draw
from statespace._numerics.copy import copy_into
from statespace.errors import DataError, ParameterError
from statespace.validation import as_rng, check_int, check_real

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
def _scaling(rate, dt):
    """``(s, h)``: ``h = dt / 2^s`` with ``rate * h <= 1/2`` and ``s`` the smallest such.

    Worked in logarithms (``math.ldexp`` is exact), so ``rate * dt`` may exceed
    the floating-point range (rates of 1e10 over a gap of 1e300) or underflow.
    """
    if rate <= 0.0 or dt <= 0.0:
        return 0, dt
    s = max(0, int(math.ceil(math.log2(rate) + math.log2(dt) + 1.0)))
    h = math.ldexp(dt, -s)
    while rate * h > 0.5:  # log2 rounding
        s += 1
        h = math.ldexp(dt, -s)
    return s, h


@nb.njit(cache=True)
def _taylor_degree(norm):
    """The smallest Taylor degree ``m`` whose first omitted term ``norm^(m+1)/(m+1)!`` is below ``_TAYLOR_TOL``
    (15 at norm 1/2, about 7 for the short intervals of a dense grid)."""
    m = 0
    term = 1.0
    while m < 30:
        term *= norm / (m + 1)
        if term <= _TAYLOR_TOL:
            break
        m += 1
    return m


@nb.njit(cache=True)
def _uniformisation_rate(Q):
    """``mu = max_i (-q_ii)``: ``Q + mu I`` is entrywise non-negative with row sums ``mu``."""
    mu = 0.0
    for i in range(Q.shape[0]):
        mu = max(mu, -Q[i, i])
    return mu


@nb.njit(cache=True, inline="always")
def _uniformised(Q, mu, h, X):
    """``X = (Q + mu I) h``, entrywise non-negative for ``mu`` the :func:`_uniformisation_rate` (no cancellation)."""
    n = Q.shape[0]
    for i in range(n):
        for j in range(n):
            X[i, j] = Q[i, j] * h + (mu * h if i == j else 0.0)


@nb.njit(cache=True)
def _normalise_rows(E, F):
    """Divide each row of ``E`` (and of ``F``, by the same factor) by ``E``'s row sum."""
    n = E.shape[0]
    for i in range(n):
        r = 0.0
        for j in range(n):
            r += E[i, j]
        inv = 1.0 / r
        for j in range(n):
            E[i, j] *= inv
            F[i, j] *= inv


@nb.njit(cache=True)
def _idempotent(E, E2):
    """Whether ``E2 = E @ E`` equals ``E`` entrywise up to the rounding of the product."""
    n = E.shape[0]
    tol = 4.0 * (n + 2) * 2.220446049250313e-16
    for i in range(n):
        for j in range(n):
            if abs(E2[i, j] - E[i, j]) > tol * E[i, j]:
                return False
    return True


@nb.njit(cache=True, inline="always")
def _taylor(X, Wh, degree, E1, E2, t1, t2, integral):
    """Horner's scheme for the degree-``degree`` Taylor polynomial of ``exp(X)`` into ``E1``; with
    ``integral``, also the upper-right block of that of ``exp([[X, Wh], [0, X]])`` into ``E2``
    (``t1, t2`` scratch; ``Wh``, ``E2`` and ``t2`` are not touched without ``integral``).

    Written once for :func:`generator_expm` and :func:`_van_loan_block`, whose ``E1`` recursion
    is the same: ``E1 <- X E1 / k + I`` and ``E2 <- (X E2 + Wh E1) / k``, from ``k = degree`` down.
    """
    n = X.shape[0]
    for i in range(n):
        for j in range(n):
            E1[i, j] = 1.0 if i == j else 0.0
            if integral:
                E2[i, j] = 0.0
    for k in range(degree, 0, -1):
        if integral:
            _matmul(X, E2, t1)
            _matmul(Wh, E1, t2)
            for i in range(n):
                for j in range(n):
                    E2[i, j] = (t1[i, j] + t2[i, j]) / k
        _matmul(X, E1, t1)
        for i in range(n):
            for j in range(n):
                E1[i, j] = t1[i, j] / k + (1.0 if i == j else 0.0)


@nb.njit(cache=True)
def generator_expm(Q, dt):
    """``P = exp(Q dt)`` for a generator ``Q``: row-stochastic for every ``dt >= 0``, however long.

    Scaling and squaring with the generator shifted to a non-negative matrix
    (uniformisation): with ``mu = max_i (-q_ii)`` and ``h = dt / 2^s``
    (``mu h <= 1/2``), ``exp(Q h) = e^{-mu h} exp((Q + mu I) h)``, whose Taylor
    terms are all non-negative (no cancellation: every entry, tiny ones
    included, is accurate to a few ulps relative). Each row is then divided by
    its sum (``e^{mu h}`` exactly) and the matrix squared ``s`` times,
    renormalising the rows after each squaring. Squaring a stochastic matrix
    cannot overflow; without the renormalisation a row-sum error ``e`` grows to
    ``(1 + e)^(2^s)``, which is what made long gaps overflow to inf and NaN.
    The squaring stops once the matrix is idempotent to rounding (the chain has
    reached its limit ``P(inf)``, stationary rows for an irreducible chain,
    absorption probabilities for a reducible one), so a gap of 1e300 costs no
    more than the mixing time and adds no rounding drift.
    """
    n = Q.shape[0]
    mu = _uniformisation_rate(Q)
    s, h = _scaling(mu, dt)
    X = np.empty((n, n))
    _uniformised(Q, mu, h, X)
    E = np.empty((n, n))
    tmp = np.empty((n, n))
    _taylor(X, X, _taylor_degree(mu * h), E, E, tmp, tmp, False)
    _normalise_rows(E, tmp)
    for _ in range(s):
        _matmul(E, E, tmp)
        _normalise_rows(tmp, X)
        if _idempotent(E, tmp):
            copy_into(tmp, E)
            break
        copy_into(tmp, E)
    return E


@nb.njit(cache=True)
def _van_loan_block(Q, W, dt, E1, E2, t1, t2):
    """``E1 = exp(Q dt)`` and ``E2 = int_0^dt exp(Q s) W exp(Q (dt - s)) ds`` for ``W >= 0``.

    These are the upper blocks of ``exp([[Q, W], [0, Q]] dt)`` (Van Loan 1978),
    computed like :func:`generator_expm`: the shifted block ``[[Q + mu I, W], [0, Q + mu I]]``
    is non-negative, so its Taylor terms never cancel; both blocks are divided
    by the row sums of ``E1`` (``e^{mu h}``), and the squarings
    ``E2 <- E1 E2 + E2 E1``, ``E1 <- E1 E1`` renormalise ``E1``'s rows, so
    ``E1`` stays stochastic and ``E2`` grows linearly in ``dt``, as the
    integral does, however long the interval. The block-triangular structure
    is kept throughout (3 products of size K instead of one of size 2K).
    """
    n = Q.shape[0]
    mu = _uniformisation_rate(Q)
    w = 0.0
    for i in range(n):
        r = 0.0
        for j in range(n):
            r += W[i, j]
        w = max(w, r)
    s, h = _scaling(mu + w, dt)
    X = np.empty((n, n))
    _uniformised(Q, mu, h, X)
    Wh = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            Wh[i, j] = W[i, j] * h
    _taylor(X, Wh, _taylor_degree((mu + w) * h), E1, E2, t1, t2, True)
    _normalise_rows(E1, E2)
    for _ in range(s):
        _matmul(E1, E2, t1)
        _matmul(E2, E1, t2)
        for i in range(n):
            for j in range(n):
                E2[i, j] = t1[i, j] + t2[i, j]
        _matmul(E1, E1, t1)
        _normalise_rows(t1, X)
        copy_into(t1, E1)


@nb.njit(cache=True, inline="always")
def _van_loan_scratch(K):
    """``(E1, E2, t1, t2)``: the outputs and scratch of :func:`_van_loan_block`, each ``(K, K)``."""
    return np.empty((K, K)), np.empty((K, K)), np.empty((K, K)), np.empty((K, K))


@nb.njit(cache=True)
def transition_matrices(Q, dts):
    """``P[u] = exp(Q dts[u])`` for each interval length (:func:`generator_expm`): ``(U, K, K)``."""
    K = Q.shape[0]
    P = np.empty((dts.shape[0], K, K))
    for u in range(dts.shape[0]):
        # a copy, not a slice assignment: that compiles Numba's shape-mismatch message
        copy_into(generator_expm(Q, dts[u]), P[u])
    return P


def transition_matrix(Q, t: float) -> np.ndarray:
    """``P(t) = expm(Q t)``: ``P[i, j] = Pr(x_t = j | x_0 = i)``, row-stochastic for any ``t >= 0``.

    Computed by ``generator_expm`` (non-negative
    uniformised Taylor terms, squaring with renormalised rows), so a gap of any
    length gives the limit ``lim_{t -> inf} P(t)`` to rounding instead of overflowing.
    """
    Q = check_generator("Q", Q)
    return generator_expm(Q, check_real("t", t, minimum=0.0))


@nb.njit(cache=True)
def van_loan_integrals(Q, dts, W):
    """``sum_u int_0^{dt_u} expm(Q^T s) W_u expm(Q^T (dt_u - s)) ds``: a ``(K, K)`` matrix ``M``.

    ``M[k, k]`` is the expected total dwell time in ``k`` and ``Q[k, l] M[k, l]``
    the expected number of ``k -> l`` jumps, summed over all intervals whose
    weights ``W_u[a, b] = sum xi(a, b) / P(dt_u)[a, b]`` were accumulated.
    Transposed, the integral is the block of :func:`_van_loan_block` for ``Q``
    and ``W_u^T``. ``W_u`` enters linearly, so it is normalised before
    exponentiating (its size must not drive the number of squarings) and the
    result scaled back.
    """
    K = Q.shape[0]
    M = np.zeros((K, K))
    Wt = np.empty((K, K))
    E1, E2, t1, t2 = _van_loan_scratch(K)
    for u in range(dts.shape[0]):
        wn = _norm1(W[u])
        if wn == 0.0:
            continue
        for i in range(K):
            for j in range(K):
                Wt[i, j] = W[u, j, i] / wn
        _van_loan_block(Q, Wt, dts[u], E1, E2, t1, t2)
        for i in range(K):
            for j in range(K):
                M[i, j] += E2[j, i] * wn
    return M


def endpoint_expectations(Q, t: float):
    """Expected dwell times and jump counts given both end states of an interval of length ``t``.

    Returns ``(dwell, jumps)`` of shapes ``(K, K, K)`` and ``(K, K, K, K)``:
    ``dwell[a, b, k] = E[time in k | x_0 = a, x_t = b]`` and
    ``jumps[a, b, k, l] = E[number of k -> l jumps | x_0 = a, x_t = b]``
    (NaN where ``P(t)[a, b] = 0``: that end-point pair is impossible).
    """
    Q = check_generator("Q", Q)
    t = check_real("t", t, minimum=0.0, strict=True)
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


#: Intervals with more expected uniformised jumps ``mu t`` than this are bridged
#: in pieces: ``Pois(mu t)`` at 0 underflows near ``mu t = 745``, and the inversion
#: below walks through about ``mu t`` powers of ``R``.
_BRIDGE_MU_T = 32.0

#: A path expected to hold more (real or virtual) jumps than this over one
#: interval is never materialised: it could not be held in memory.
MAX_PATH_JUMPS = 1e7


def path_too_long(Q, dt) -> np.ndarray:
    """Whether a path over each interval length in ``dt`` would exceed :data:`MAX_PATH_JUMPS` expected jumps."""
    mu = max(0.0, -float(np.min(np.diag(Q))))
    return mu * np.asarray(dt, dtype=np.float64) > MAX_PATH_JUMPS


def check_path_length(name: str, Q, dt: float) -> None:
    """Raise :class:`~statespace.errors.DataError` if a path over an interval of length ``dt`` is too long to hold."""
    if path_too_long(Q, dt):
        mu = max(0.0, -float(np.min(np.diag(Q))))
        raise DataError(
            f"{name}: a path over an interval of length {dt:.6g} holds about {mu * dt:.3g} jumps "
            f"(more than {MAX_PATH_JUMPS:.0e}); ask for the states at the observation times only, "
            "or for paths over shorter intervals"
        )


@nb.njit(cache=True)
def _bridge_path(Q, a, b, t, rng):
    """An endpoint-conditioned path on ``[0, t]`` (see the module docstring).

    A long interval (``mu t > _BRIDGE_MU_T``) is cut into ``2^d`` equal pieces
    whose end states are drawn first, coarse to fine, each midpoint ``m`` of a
    piece ``[l, r]`` of half-length ``h`` from ``P(h)[x_l, m] P(h)[m, x_r]``
    (exact: the Markov property); each piece is then bridged by uniformisation.
    """
    K = Q.shape[0]
    mu = _uniformisation_rate(Q)
    if mu == 0.0:
        return np.zeros(0), np.array([a])
    if mu * t <= _BRIDGE_MU_T:
        return _bridge_uniformised(Q, mu, a, b, t, rng)
    d = int(math.ceil(math.log2(mu * t / _BRIDGE_MU_T)))
    n = 1 << d
    ends = np.empty(n + 1, dtype=np.int64)
    ends[0] = a
    ends[n] = b
    probs = np.empty(K)
    step = n
    while step > 1:
        half = step // 2
        Ph = generator_expm(Q, t * half / n)
        for left in range(0, n, step):
            total = 0.0
            for k in range(K):
                probs[k] = Ph[ends[left], k] * Ph[k, ends[left + step]]
                total += probs[k]
            ends[left + half] = draw(probs, rng, total)
        step = half
    piece = t / n
    jts = []
    jss = []
    n_jumps = 0
    for i in range(n):
        jt, js = _bridge_uniformised(Q, mu, ends[i], ends[i + 1], piece, rng)
        jts.append(jt + i * piece)
        jss.append(js)
        n_jumps += jt.shape[0]
    jt_all = np.empty(n_jumps)
    js_all = np.empty(n_jumps + 1, dtype=np.int64)
    js_all[0] = a
    m = 0
    for i in range(n):
        for j in range(jts[i].shape[0]):
            jt_all[m] = jts[i][j]
            js_all[m + 1] = jss[i][j + 1]
            m += 1
    return jt_all, js_all


@nb.njit(cache=True)
def _bridge_uniformised(Q, mu, a, b, t, rng):
    K = Q.shape[0]
    R = np.eye(K) + Q / mu
    Pab = generator_expm(Q, t)[a, b]
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
        states[i] = draw(probs, rng, total)
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
    Q = check_generator("Q", Q)
    K = Q.shape[0]
    a, b = check_int("a", a), check_int("b", b)
    for name, v in (("a", a), ("b", b)):
        if not 0 <= v < K:
            raise ParameterError(f"{name}: expected a state in 0..{K - 1}, got {v}")
    t = check_real("t", t, minimum=0.0, strict=True)
    if transition_matrices(Q, np.array([t]))[0][a, b] <= 0.0:
        raise ParameterError(f"a, b: the end states ({a}, {b}) are impossible over an interval of length {t}")
    check_path_length("t", Q, t)
    return _bridge_path(Q, a, b, t, as_rng(rng))


@nb.njit(cache=True)
def conditional_statistics(Q, dts):
    """Endpoint-conditioned expectations per interval length: ``(U, K, K, K + K*K)``.

    ``out[u, a, b, k] = E[time in k | a, b]`` and
    ``out[u, a, b, K + k*K + l] = E[number of k -> l jumps | a, b]`` over an
    interval of length ``dts[u]`` (zero where ``P(dt)[a, b] = 0``). One block
    exponential per state and per allowed jump, ``I_kl`` being the upper-right
    block of ``exp([[Q, E_kl], [0, Q]] dt)`` (:func:`_van_loan_block`).
    """
    K = Q.shape[0]
    out = np.zeros((dts.shape[0], K, K, K + K * K))
    W = np.zeros((K, K))
    E1, E2, t1, t2 = _van_loan_scratch(K)
    for u in range(dts.shape[0]):
        d = dts[u]
        P = generator_expm(Q, d)
        for k in range(K):
            for l in range(K):
                if k != l and Q[k, l] <= 0.0:
                    continue
                W[k, l] = 1.0
                _van_loan_block(Q, W, d, E1, E2, t1, t2)
                W[k, l] = 0.0
                for a in range(K):
                    for b in range(K):
                        if P[a, b] > 0.0:
                            v = E2[a, b] / P[a, b]
                            if k == l:
                                out[u, a, b, k] = v
                            else:
                                out[u, a, b, K + k * K + l] = Q[k, l] * v
    return out
