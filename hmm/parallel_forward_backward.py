r"""Forward-backward for a time-invariant chain on two threads that meet in the middle.

The scaled recursions of :mod:`hmm.forward_backward` tie the backward pass to
the forward pass through the normalising constants :math:`c_t`. They need not:
with :math:`B_t(k) = e^{\ell_t(k) - m_t}` and the filter
:math:`\alpha_t = p(z_t \mid y_{0:t})`, backward messages of *any* positive
scale,

.. math::

    \beta_{T-1} = \mathbf 1, \qquad \beta_{t-1} \propto A\,(B_t \odot \beta_t),

give the same posteriors

.. math::

    \gamma_t = \frac{\alpha_t \odot \beta_t}{\langle \alpha_t, \beta_t\rangle}, \qquad
    \xi_t(i, j) = \frac{\alpha_{t-1}(i)\, A_{ij}\, B_t(j)\, \beta_t(j)}{c_t\, \langle \alpha_t, \beta_t\rangle},

because :math:`\sum_{ij} \alpha_{t-1}(i) A_{ij} B_t(j) \beta_t(j) = c_t \langle \alpha_t, \beta_t\rangle`.
So the passes run at once on two threads, on ``B`` alone. Phase 1: the
forward thread filters steps ``0 .. mid-1`` while the backward thread runs
from ``T-1`` down to ``mid-1``. Phase 2: each thread carries on into the half
the other has done, and finishes every step as it goes (filter normalised,
:math:`\gamma_t`, and :math:`\xi_t` added to the counts) while its own
message is still in registers and the other's in cache. No third pass reads
the ``(T, K)`` arrays again: at ``K = 20`` memory traffic, not arithmetic,
bounds the whole computation.

Both recursions rescale *lazily*: since :math:`B_t \le 1` and :math:`A` is
stochastic, the forward row sum and the backward row sum never grow, so a row
is divided by its sum only when that falls below ``1e-30``; the division,
whose latency dominated each step at small ``K``, leaves the dependency chain.
With :math:`s_t` the sum of the forward row as stored, :math:`c_t = s_t / s'_{t-1}`
(:math:`s'_{t-1} = s_{t-1}`, or 1 after a rescaled row), and
:math:`\log p(y_{0:T-1}) = \log s_{T-1} + \sum_{t \text{ rescaled}} \log s_t + \sum_t m_t`.

The matrix-vector products are explicit vector instructions
(:func:`hmm.vector_product.vecmat`), compiled per ``K``; so are the counts,
a rank-64 update per chunk of finished steps
(:func:`hmm.vector_product.outer_accumulate`), and, when ``K`` divides 8, the
exponentials, one vectorised pass per half (:mod:`hmm.row_exponentials`).
Whenever a weight
computed from non-zero factors drops below ``1e-300``, or no reachable state
explains a step, a kernel reports it, ``B`` is left as it was, and
:func:`hmm.forward_backward.posteriors` takes its sequential path, which
handles those cases exactly.
"""

from __future__ import annotations

import os
import threading

import numba as nb
import numpy as np

from statespace._numerics.fastmath import FASTMATH

from .row_exponentials import EXPONENTIATED, SHIFTED, exponentiator, restore_log_rows
from .vector_product import LANES, outer_accumulate, padded_width, vecmat

_RESCALE = 1e-30  # a row whose sum falls below this is divided by it
_LOST = 1e-300  # a weight from non-zero factors below this is about to be lost to underflow
OK, LOST, FAILED = 0, 1, 2
#: Fewest ``T * K`` worth two threads (below it the thread hand-off costs more than it saves).
MIN_WORK = 40_000
_CHUNK = 64  # steps of recursion between two rounds of finishing in the second phase


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True, inline="always")
def _rescale(x, s, n):
    """Keep ``x[:n]``, of sum ``s``, while ``s >= 1e-30``, else divide it by ``s``; ``False`` when
    ``s`` is 0 or NaN (a row of -inf log-likelihoods: no state explains the step)."""
    if s >= _RESCALE:
        return True
    if not s > 0.0:
        return False
    f = 1.0 / s
    for k in range(n):
        x[k] *= f
    return True


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _padded(M, K, W):
    nb.literally(K)
    nb.literally(W)
    out = np.zeros((K, W))
    for i in range(K):
        for j in range(K):
            out[i, j] = M[i, j]
    return out


# Calls between these kernels pass arrays, and each array passed costs two calls into
# Numba's reference counting; row views (``B[t]``) cost the same. Both happen here once per
# chunk or per count batch, never per step: per step they took longer than the arithmetic.


@nb.njit(cache=True, nogil=True, inline="always")
def _row_length(x, K):
    # K as a constant gets loops fully unrolled: best while the unrolled code is short; beyond,
    # the trip count read at run time sends them to LLVM's loop vectoriser instead
    return K if K <= 8 else x.shape[1]


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True, inline="always")
def _product(M, x, out, K, W):
    """``out[:W] = x[:K] @ M`` (``M`` padded to ``W`` columns)."""
    if K <= 4:
        # a few scalars: LLVM keeps the step in registers, which beats the vector product up to
        # about K = 4 (measured; equal near K = 6, slower from K = 8)
        for j in range(K):
            acc = 0.0
            for i in range(K):
                acc += x[i] * M[i, j]
            out[j] = acc
    else:
        vecmat(M, x, 0, 1, out, 0, K, W, False)


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _forward_rows(Ap, prev, cur, B, raw, sums, t0, t1, K, W):
    """Forward steps ``t0 .. t1-1`` from ``prev`` (the row before, as the next step reads it)."""
    nb.literally(K)
    nb.literally(W)
    Kr = _row_length(raw, K)
    for t in range(t0, t1):
        _product(Ap, prev, cur, K, W)  # cur = A^T prev
        st = 0.0
        lost = False
        for k in range(Kr):
            v = cur[k] * B[t, k]
            # branch-free: a branch here doubled the step time at K = 20
            lost |= (v < _LOST) & (cur[k] > 0.0) & (B[t, k] > 0.0)
            raw[t, k] = v
            prev[k] = v
            st += v
        sums[t] = st
        if lost:
            return LOST
        if not _rescale(prev, st, Kr):
            return FAILED
    return OK


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _backward_rows(ATp, nxt, bb, B, out, hi, lo, offset, carry, K, W):
    """Messages ``hi`` (``nxt`` on entry) down to ``lo`` into ``out[u - offset]``; with ``carry``,
    ``nxt`` ends as the message at ``lo - 1`` (when ``lo >= 1``), else ``B[lo]`` is never read."""
    nb.literally(K)
    nb.literally(W)
    Kr = _row_length(out, K)
    for u in range(hi, lo - 1, -1):
        for k in range(Kr):
            out[u - offset, k] = nxt[k]
        if u == 0 or (u == lo and not carry):
            break
        for j in range(Kr):
            bb[j] = B[u, j] * nxt[j]
        _product(ATp, bb, nxt, K, W)  # nxt = A bb
        # No underflow check on single messages (the sequential pass has none either): a
        # message component below 1e-300 of the row only matters where the filter's mass
        # sits on it alone, and then <alpha_t, beta_t> vanishes, which finish() reports.
        s = 0.0
        for i in range(Kr):
            s += nxt[i]
        if not _rescale(nxt, s, Kr):
            return FAILED
    return OK


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _finish(B, raw, sums, msgs, offset, t_from, t_to, step, smoothed, bm, base, K):
    r"""Finish steps ``t_from, t_from + step, ..`` (``t_to`` excluded) with messages ``msgs[t - offset]``.

    With :math:`d_t = \langle \mathrm{raw}_t, \beta_t\rangle` (``raw_t`` the
    forward row as stored, of sum ``s_t``): writes
    :math:`\gamma_t = \mathrm{raw}_t \odot \beta_t / d_t`, normalises
    ``raw[t]`` into the filter, and for ``t >= 1`` stores the count row
    :math:`B_t \odot \beta_t / (c_t \langle \alpha_t, \beta_t\rangle) = B_t \odot \beta_t\, s'_{t-1} / d_t`
    in ``bm[t - base]`` (the counts are :math:`\sum_t \alpha_{t-1} \otimes` that row, times ``A``).
    Returns -1 when :math:`d_t` vanished (the messages' mass on disjoint states: precision lost), else 0.
    """
    nb.literally(K)
    Kr = _row_length(raw, K)
    for t in range(t_from, t_to, step):
        tb = t - offset
        # a pure reduction, apart from the stores: LLVM vectorises it (a loop that also
        # stored into raw ran as a scalar chain of dependent additions)
        d = 0.0
        for k in range(Kr):
            d += raw[t, k] * msgs[tb, k]
        if not (d > 0.0):
            return -1
        g = 1.0 / d
        inv = 1.0 / sums[t]
        for k in range(Kr):
            smoothed[t, k] = raw[t, k] * msgs[tb, k] * g
        if t > 0:
            s_before = sums[t - 1]
            # c_t = s_t / s'_{t-1}, s'_{t-1} = 1 after a rescaled row
            f = g * (s_before if s_before >= _RESCALE else 1.0)
            for k in range(Kr):
                bm[t - base, k] = B[t, k] * msgs[tb, k] * f
        for k in range(Kr):
            raw[t, k] *= inv
    return 0


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _accumulate(alpha, bm, lo, n, G, K, WM):
    """``G[i, j] += sum_{r < n} alpha[lo - 1 + r, i] * bm[r, j]``: the counts of steps ``lo .. lo+n-1``."""
    nb.literally(K)
    nb.literally(WM)
    if n == _CHUNK:
        outer_accumulate(G, alpha, (lo - 1) * K, bm, 0, _CHUNK, K, WM)
    else:
        for r in range(n):
            for i in range(K):
                a = alpha[lo - 1 + r, i]
                for j in range(K):
                    G[i, j] += a * bm[r, j]


def _build(K: int):
    """The entry kernels for ``K`` states. They close over ``K`` and ``W`` only (plain integers,
    so Numba caches them on disk) and pass them on as literals: every helper is compiled with
    ``K`` a compile-time constant. (Closures over other closures' dispatchers missed the disk
    cache in every process: seconds of compilation before the first long sequence.)"""
    W = padded_width(K)
    # count rows: packed when K divides a register's 8 lanes, else padded to W (outer_accumulate)
    WM = K if LANES % K == 0 else W

    @nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
    def forward_first(pi0, A2, B, raw, sums, t_end):
        """Lazily rescaled forward rows ``0 .. t_end-1`` into ``raw``; ``sums[t]``: row ``t``'s sum as stored."""
        prev = np.zeros(W)
        s = 0.0
        for k in range(K):
            prev[k] = pi0[k] * B[0, k]
            raw[0, k] = prev[k]
            s += prev[k]
        sums[0] = s
        if not (0.0 < s < np.inf):
            return FAILED
        if s < _RESCALE:
            for k in range(K):
                prev[k] /= s
        return _forward_rows(_padded(A2, K, W), prev, np.zeros(W), B, raw, sums, 1, t_end, K, W)

    @nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
    def backward_first(A2, B, beta, t_low):
        """Backward messages ``T-1`` down to ``t_low`` into ``beta[u - t_low]`` (any positive scale per row)."""
        T = B.shape[0]
        nxt = np.zeros(W)
        for k in range(K):
            nxt[k] = 1.0
        return _backward_rows(_padded(A2.T, K, W), nxt, np.zeros(W), B, beta, T - 1, t_low, t_low, False, K, W)

    @nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
    def forward_second(A2, B, raw, sums, beta, t_low, t_start, prev_raw, smoothed, G):
        """Forward steps ``t_start .. T-1`` against the stored ``beta``, finishing every step.

        Runs :data:`_CHUNK` steps of the recursion, then finishes them and adds
        their counts (one rank-64 update, :func:`_accumulate`) while they are
        in cache: finishing inside the recursion put its divisions on the
        recursion's critical path. ``prev_raw`` is row ``t_start - 1`` as
        stored (the other thread normalises ``raw[t_start - 1]`` meanwhile).
        Adds the counts of steps ``t_start .. T-1`` (before multiplying by
        ``A``) into ``G (K, W)``.
        """
        T = B.shape[0]
        Ap = _padded(A2, K, W)
        prev = np.zeros(W)
        cur = np.zeros(W)
        bm = np.zeros((_CHUNK, WM))
        first = np.empty(K)  # alpha_{t_start - 1}
        s_prev = sums[t_start - 1]
        for k in range(K):
            first[k] = prev_raw[k] / s_prev
            prev[k] = prev_raw[k] if s_prev >= _RESCALE else first[k]
        for c0 in range(t_start, T, _CHUNK):
            c1 = min(c0 + _CHUNK, T)
            status = _forward_rows(Ap, prev, cur, B, raw, sums, c0, c1, K, W)
            if status != OK:
                return status
            if _finish(B, raw, sums, beta, t_low, c0, c1, 1, smoothed, bm, c0, K) < 0:
                return LOST
            if c0 == t_start:  # alpha_{t_start - 1} is the other thread's row: the copy instead
                for i in range(K):
                    for j in range(K):
                        G[i, j] += first[i] * bm[0, j]
                _accumulate(raw, bm[1:], c0 + 1, c1 - c0 - 1, G, K, WM)
            else:
                _accumulate(raw, bm, c0, c1 - c0, G, K, WM)
        return OK

    @nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
    def backward_second(A2, B, raw, sums, beta_start, t_start, smoothed, G):
        """Backward steps ``t_start`` down to 0 against the stored filter, finishing every step.

        ``beta_start`` is the message at ``t_start``; messages are made
        :data:`_CHUNK` at a time, then the chunk is finished in descending
        order and its counts added (the filter row below the chunk is
        normalised only with the next chunk, so its division goes into the
        chunk's lowest count row). Adds the counts of steps ``1 .. t_start``
        into ``G (K, W)``.
        """
        ATp = _padded(A2.T, K, W)
        nxt = np.zeros(W)
        bb = np.zeros(W)
        chunk = np.empty((_CHUNK, K))
        bm = np.zeros((_CHUNK, WM))
        for k in range(K):
            nxt[k] = beta_start[k]
        for hi in range(t_start, -1, -_CHUNK):
            lo = max(hi - _CHUNK + 1, 0)
            status = _backward_rows(ATp, nxt, bb, B, chunk, hi, lo, lo, True, K, W)
            if status != OK:
                return status
            if _finish(B, raw, sums, chunk, lo, hi, lo - 1, -1, smoothed, bm, lo, K) < 0:
                return LOST
            if lo == 0:  # step 0 has no predecessor
                _accumulate(raw, bm[1:], 1, hi, G, K, WM)
            else:  # the filter at lo - 1 is normalised with the next chunk: its division goes here
                h = 1.0 / sums[lo - 1]
                for j in range(K):
                    bm[0, j] *= h
                _accumulate(raw, bm, lo, hi - lo + 1, G, K, WM)
        return OK

    return exponentiator(K), forward_first, backward_first, forward_second, backward_second


@nb.njit(cache=True, fastmath=FASTMATH)
def _log_likelihood(sums, m):
    """``log s_{T-1} + sum over rescaled rows t < T-1 of log s_t + sum_t m_t`` (module docstring)."""
    T = sums.shape[0]
    # two loops: the sum of m alone vectorises (reassociated), the rare rescaled rows do not need to
    total = np.log(sums[T - 1])
    shifts = 0.0
    for t in range(T):
        shifts += m[t]
    for t in range(T - 1):
        if sums[t] < _RESCALE:
            total += np.log(sums[t])
    return total + shifts


_KERNELS: dict = {}
_WORKSPACE = threading.local()


def _scratch(T: int, n_beta: int, K: int):
    """Row sums ``(T,)`` and messages ``(n_beta, K)``, reused between calls of one thread.

    Fresh pages cost a fault each on first touch (about a millisecond per
    call at K = 4, T = 1e5); the buffers grow as needed and are never shrunk.
    """
    need = T + n_beta * K
    buf = getattr(_WORKSPACE, "buffer", None)
    if buf is None or buf.shape[0] < need:
        buf = _WORKSPACE.buffer = np.empty(need)
    return buf[:T], buf[T:need].reshape(n_beta, K)


def kernels_for(K: int):
    """``(exponentiate, forward_first, backward_first, forward_second, backward_second)`` for ``K`` states."""
    if K not in _KERNELS:
        _KERNELS[K] = _build(K)
    return _KERNELS[K]


_POOL = None
_POOL_LOCK = threading.Lock()


def _pool():
    # one worker thread: the kernels release the GIL, so it runs beside the caller's thread
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward-backward")
        return _POOL


def _forget_pool():
    # a forked child inherits the executor but not its thread: work submitted there would wait forever
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def posteriors_two_threads(pi0, A2, loglik):
    """Posteriors of a time-invariant chain; ``loglik (T, K)``, ``T >= 4``, is overwritten.

    Each thread first exponentiates the rows its first phase reads (shifted by
    their maxima), so one hand-off starts all the work. Returns
    ``(result, m)``: ``result`` is ``(log_likelihood, filtered, smoothed, counts)``
    as :func:`hmm.forward_backward.posteriors` returns it, or ``None`` when the
    caller must take another path, with ``loglik`` then left as

    * ``m is None``: the log-likelihoods again (a weight would underflow: log space), or
    * ``exp(loglik - m[:, None])`` (a kernel reported lost precision or an
      unexplained step: the sequential scaled path).
    """
    T, K = loglik.shape
    exponentiate, forward_first, backward_first, forward_second, backward_second = kernels_for(K)
    mid = T // 2
    m = np.empty(T)
    # the two results share one allocation: above 4 MiB NumPy asks for huge pages, and at
    # K = 4, T = 1e5 the page faults of two separate 3.2 MB arrays cost a third of the run
    out = np.empty((2, T, K))
    raw, smoothed = out[0], out[1]
    sums, beta = _scratch(T, T - mid + 1, K)  # beta: messages mid-1 .. T-1

    G = np.zeros((2, K, padded_width(K)))
    # One task for the worker, both phases: whichever thread ends phase 1 first waits for the
    # other (one wake-up at the boundary, cheaper than returning a result and submitting again).
    worker_done, go_on = threading.Event(), threading.Event()
    shared = {}

    def worker():
        try:
            done = exponentiate(loglik, m, mid, T)  # rows mid .. T-1: all backward_first reads
            shared["first"] = (done, OK if done != EXPONENTIATED else backward_first(A2, loglik, beta, mid - 1))
        finally:
            worker_done.set()
        go_on.wait()
        if not shared.get("go"):
            return OK
        return backward_second(A2, loglik, raw, sums, beta[0], mid - 1, smoothed, G[1])

    job = _pool().submit(worker)
    try:
        done = exponentiate(loglik, m, 0, mid)
        status = OK if done != EXPONENTIATED else forward_first(pi0, A2, loglik, raw, sums, mid)
        prev_raw = raw[mid - 1].copy()  # the worker normalises this row in its second phase
        worker_done.wait()
        if "first" not in shared:
            job.result()  # the worker's exception surfaces here
        done_2, status_2 = shared["first"]
        underflow = done != EXPONENTIATED or done_2 != EXPONENTIATED
        shared["go"] = proceed = not underflow and max(status, status_2) == OK
    finally:
        go_on.set()  # never leave the worker waiting, whatever happened above
    if not proceed:
        job.result()
        if underflow:
            for lo, hi, state in ((0, mid, done), (mid, T, done_2)):
                if state == SHIFTED:
                    loglik[lo:hi] += m[lo:hi, None]
                else:
                    restore_log_rows(loglik, m, lo, hi)
            return None, None
        return None, m
    status = forward_second(A2, loglik, raw, sums, beta, mid - 1, mid, prev_raw, smoothed, G[0])
    if max(status, job.result()) != OK:
        return None, m
    return (_log_likelihood(sums, m), raw, smoothed, A2 * (G[0, :, :K] + G[1, :, :K])), m
