r"""Forward-backward over a ragged batch of sequences, in one compiled call.

A batch of ``S`` sequences is one concatenated array plus ``offsets (S + 1,)``
(:mod:`statespace._ragged`): sequence ``i`` occupies rows
``offsets[i]:offsets[i + 1]``. For emission log-likelihoods ``loglik (N, K)`` in
that layout, one initial distribution :math:`\pi` and one transition matrix
:math:`A` (the HMM family's time-invariant chain), :func:`batch_posteriors` runs the
scaled forward-backward recursion of :mod:`hmm.forward_backward` (the function
``smoother``, with its exact fallbacks) on every sequence, in parallel over
sequences (threads running a compiled loop that releases the GIL; one long
sequence runs forward and backward passes at once instead, as ``posteriors`` does;
in a call of at least three sequences of up to 16 states, those of up to 65,536
numbers run eight at a time in vector lanes, :mod:`hmm.lane_forward_backward`), and returns

* ``log_likelihoods (S,)``: :math:`\log p(y^{(i)})`, ``-inf`` for a sequence of zero probability;
* ``filtered (N, K)``, ``smoothed (N, K)``: :math:`p(z_t \mid y_{0:t})`, :math:`p(z_t \mid y)`, same layout;
* ``transition_counts (S, K, K)``: :math:`\sum_t \xi_t(i, j)` per sequence.

:func:`batch_forward` is the forward pass only (log-likelihoods and filtered
probabilities; in the same lanes, their forward half). :func:`batch_viterbi` gives every
sequence's most probable path (``hmm.inference.viterbi`` on each, in one compiled call per
thread). :func:`batch_gaussian_loglik` computes the (autoregressive) Gaussian emission
log-likelihoods of a whole batch, restarting the lag window at each sequence's start, in
parallel over equal row ranges (a range that cuts a sequence reads the rows of its lag window's
history before it). Each sequence's emission
log-likelihoods are exactly those of the per-sequence functions (the same code runs on each); its
posteriors agree with them to rounding (lanes sum a step's products in another order) and do not
depend on the other sequences of the batch or on the threads.

Threads: each call cuts the batch into as many runs of consecutive sequences
(about equal rows) as it has threads, ``n_threads`` or, when ``None``, Numba's
setting (``numba.set_num_threads``, ``NUMBA_NUM_THREADS``); pass 1 inside a Dask
worker that already runs one task per core.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from statespace._numerics.copy import copy_into
from statespace._parallel_compile import wait_for_helper
from statespace._ragged import (
    Ragged,
    check_offsets,
    even_cuts,
    n_threads_for,
    offsets_of,
    row_split,
    run_parts,
)
from statespace._scratch import one_block, scratch
from statespace._standalone import standalone
from statespace.errors import ShapeError

from .certified_scaling import exact_posteriors
from .emissions import ar_loglik, gaussian_factors
from .forward_backward import (
    _UNDERFLOW,
    _drop_negligible,
    _exp_shifted,
    _posteriors_fixed,
    _row_max,
    _two_threads,
    _underflows,
    forward,
    posteriors,
)
from .inference import viterbi
from .lane_forward_backward import MAX_CELLS, MAX_STATES, MIN_SEQUENCES, group_posteriors


@standalone
@nb.njit(cache=True)
def _one_sequence(pi0, A, loglik, B, m, filtered):
    """Forward-backward of one sequence from ``B = exp(loglik - m[:, None])``, as ``posteriors`` does it.

    ``filtered`` receives the filtered probabilities and ``B`` the smoothed ones
    on the scaled path; the fallbacks (negligible terms dropped, robust forward)
    return fresh arrays, which the caller copies. A log-likelihood of NaN leaves
    the sequence to the exact pass, which :func:`_exact_kernel`
    runs (compiled only when some data first need it).
    """
    if _underflows(loglik, m):
        kept = loglik.copy()
        if not _drop_negligible(pi0, A, kept):
            return np.nan, filtered, B, np.zeros((B.shape[1], B.shape[1]))
        B = _exp_shifted(kept, m)
        return _posteriors_fixed(pi0, A, kept, B, m, filtered)
    return _posteriors_fixed(pi0, A, loglik, B, m, filtered)


@nb.njit(cache=True, nogil=True)
def _exact_kernel(pi0, A, loglik, offsets, seqs, lls, filtered, smoothed, counts):
    """What :func:`_one_sequence` leaves with a NaN log-likelihood, for sequences ``seqs``: the exact
    pass (:func:`hmm.certified_scaling.exact_posteriors`: the scaled pass where its certificate holds,
    log space otherwise), on the log-likelihoods with their negligible terms dropped where it dropped
    them. A kernel of its own, so that it compiles when some data first need it, not with every batch."""
    for s in seqs:
        a, b = offsets[s], offsets[s + 1]
        ll = loglik[a:b]
        if _underflows(ll, _row_max(ll)):
            kept = ll.copy()
            if _drop_negligible(pi0, A, kept):
                ll = kept
        lik, f, g, c = exact_posteriors(pi0, A, ll)
        lls[s] = lik
        copy_into(f, filtered[a:b])
        copy_into(g, smoothed[a:b])
        copy_into(c, counts[s])


@nb.njit(cache=True, nogil=True)
def _shift_rows(loglik, a, b, m, out, low):
    """``m[t] = max_k loglik[t, k]`` and ``out[t] = loglik[t] - m[t]`` for rows ``a:b`` (NaN for a row of ``-inf``);
    ``low[t]``: a finite entry of row ``t`` sits so far below the maximum that its weight underflows
    (what :func:`hmm.forward_backward._underflows` looks for, found in the same pass)."""
    K = loglik.shape[1]
    for t in range(a, b):
        mt = -np.inf
        for k in range(K):
            if loglik[t, k] > mt:
                mt = loglik[t, k]
        m[t] = mt
        under = False
        for k in range(K):
            v = loglik[t, k] - mt
            under |= (v < _UNDERFLOW) & (loglik[t, k] > -np.inf)
            out[t, k] = v
        low[t] = under


@nb.njit(cache=True, nogil=True)
def _posteriors_kernel(pi0, A, loglik, offsets, seqs, m, lls, filtered, smoothed, counts):
    """Sequences ``seqs`` one at a time (:func:`_one_sequence`); ``smoothed`` holds ``exp(loglik - m[:, None])`` on entry."""
    for s in seqs:
        a, b = offsets[s], offsets[s + 1]
        if b == a:
            lls[s] = 0.0
            continue
        ll, f, g, c = _one_sequence(pi0, A, loglik[a:b], smoothed[a:b], m[a:b], filtered[a:b])
        lls[s] = ll
        if f.ctypes.data != filtered[a:b].ctypes.data:
            copy_into(f, filtered[a:b])
        if g.ctypes.data != smoothed[a:b].ctypes.data:
            copy_into(g, smoothed[a:b])
        copy_into(c, counts[s])


@nb.njit(cache=True, nogil=True)
def _lane_split(pi0, A, loglik, offsets, s0, s1, low, m, B, lls):
    """Sequences ``s0:s1`` as ``(alone, in_lanes)``: those the lanes take (non-empty, at most
    ``MAX_CELLS`` numbers), and the others.

    A sequence with a ``low`` row (a weight that would underflow) has its negligible terms dropped
    first, as :func:`_one_sequence` does, and its rows of ``B = exp(loglik - m)`` rewritten from the
    thinned log-likelihoods (``m`` is unchanged: a row's largest entry is never dropped); where the
    drop cannot make it safe, ``lls[s] = NaN`` leaves it to the exact pass (:func:`_exact_kernel`). Such rows are
    common, not rare: an AR model's first step, far from a state's initial mean, lies thousands of
    nats below the best state, which sent a third of a small ARHMM fleet down the one-sequence path
    (and compiled it, 5 s before the first result with an empty cache).
    """
    K = loglik.shape[1]
    alone = np.empty(s1 - s0, np.int64)
    lanes = np.empty(s1 - s0, np.int64)
    n_alone = n_lanes = 0
    for s in range(s0, s1):
        a, b = offsets[s], offsets[s + 1]
        if not (b > a and (b - a) * K <= MAX_CELLS):
            alone[n_alone] = s
            n_alone += 1
            continue
        clean = True
        for t in range(a, b):
            clean &= not low[t]
        if not clean:
            kept = loglik[a:b].copy()
            if not _drop_negligible(pi0, A, kept):
                lls[s] = np.nan
                continue
            copy_into(_exp_shifted(kept, m[a:b]), B[a:b])
        lanes[n_lanes] = s
        n_lanes += 1
    return alone[:n_alone], lanes[:n_lanes]


@nb.njit(cache=True, nogil=True)
def _forward_kernel(pi0, A, loglik, offsets, seqs, lls, filtered):
    """The forward pass of sequences ``seqs``, one at a time (``forward``, with its log-space fallbacks)."""
    for s in seqs:
        a, b = offsets[s], offsets[s + 1]
        if b == a:
            lls[s] = 0.0
            continue
        ll, f, _ = forward(pi0, A, loglik[a:b])
        lls[s] = ll
        copy_into(f, filtered[a:b])


@nb.njit(cache=True, nogil=True)
def _gaussian_kernel(
    y, u, offsets, lo, hi, L, W, Linv, const, diag, covs, chol, logdet, mu0, covs0, chol0, logdet0, out
):
    """Rows ``lo:hi`` of a ragged batch's emission log-likelihoods, sequence by sequence; a sequence
    cut at ``lo`` is read from up to ``L`` rows before it (its lag window's history). Without lags
    every row stands alone, and the rows run as one range whatever the sequences (the same
    arithmetic per row; one call's set-up, not one per sequence: 2 us each, more than a short
    sequence's rows cost at K = 2)."""
    if L == 0:
        ar_loglik(
            y[lo:hi], u[lo:hi], L, W, Linv, const, diag, covs, chol, logdet, mu0, covs0, chol0, logdet0, out[lo:hi]
        )
        return
    K = out.shape[1]
    s = np.searchsorted(offsets, lo, side="right") - 1
    while s < offsets.shape[0] - 1 and offsets[s] < hi:
        a, b = offsets[s], offsets[s + 1]
        r0, r1 = max(a, lo), min(b, hi)
        h = max(r0 - L, a)
        if r1 > r0 and h == r0:
            ar_loglik(
                y[r0:r1], u[r0:r1], L, W, Linv, const, diag, covs, chol, logdet, mu0, covs0, chol0, logdet0, out[r0:r1]
            )
        elif r1 > r0:
            part = np.empty((r1 - h, K))
            ar_loglik(y[h:r1], u[h:r1], L, W, Linv, const, diag, covs, chol, logdet, mu0, covs0, chol0, logdet0, part)
            copy_into(part[r0 - h :], out[r0:r1])
        s += 1


#: Work (rows x states x d^2) from which a batch's emission log-likelihoods are cut into one row range
#: per thread (a thread's hand-off costs tens of microseconds).
_THREAD_WORK = 200_000


class BatchPosteriors(NamedTuple):
    """Forward-backward results of a ragged batch (see the module docstring).

    ``filtered`` and ``smoothed`` are ``(N, K)`` in the batch's layout;
    :meth:`filtered_of` / :meth:`smoothed_of` (or ``Ragged(result.smoothed, result.offsets)``)
    give one sequence's rows as a view.
    """

    log_likelihoods: np.ndarray
    filtered: np.ndarray
    smoothed: np.ndarray
    transition_counts: np.ndarray
    offsets: np.ndarray

    def filtered_of(self) -> Ragged:
        return Ragged(self.filtered, self.offsets)

    def smoothed_of(self) -> Ragged:
        return Ragged(self.smoothed, self.offsets)

    def initial_counts(self) -> np.ndarray:
        """``(K,)``: :math:`\\sum_i p(z_0 = k \\mid y^{(i)})`, over the non-empty sequences."""
        starts = self.offsets[:-1][np.diff(self.offsets) > 0]
        return self.smoothed[starts].sum(axis=0)


@nb.njit(cache=True, nogil=True)
def _viterbi_kernel(pi0, A, loglik, offsets, s0, s1, paths, best):
    """:func:`hmm.inference.viterbi` of sequences ``s0:s1``, their paths into their rows of ``paths``."""
    for s in range(s0, s1):
        a, b = offsets[s], offsets[s + 1]
        if b == a:
            best[s] = 0.0
            continue
        path, v = viterbi(pi0, A, loglik[a:b])
        copy_into(path, paths[a:b])  # not a slice assignment: that compiles Numba's shape-mismatch message
        best[s] = v


class BatchViterbi(NamedTuple):
    """Most probable paths of a ragged batch: ``paths (N,)`` int64 in the batch's rows, their joint
    log-probabilities ``best (S,)`` (``-inf``: the sequence has zero probability), ``offsets``."""

    paths: np.ndarray
    best: np.ndarray
    offsets: np.ndarray


def batch_viterbi(pi0, A, loglik, offsets, n_threads: int | None = None) -> BatchViterbi:
    """Viterbi path of every sequence of a ragged batch (arguments as :func:`batch_posteriors`), in one
    compiled call per thread: the numbers of :func:`hmm.inference.viterbi` on each sequence alone."""
    pi0, A, loglik, offsets = _chain(pi0, A, loglik, offsets)
    paths = np.empty(loglik.shape[0], np.int64)
    best = np.empty(offsets.shape[0] - 1)
    run_parts(
        lambda s0, s1: _viterbi_kernel(pi0, A, loglik, offsets, s0, s1, paths, best),
        row_split(offsets, n_threads_for(n_threads)),
    )
    return BatchViterbi(paths, best, offsets)


class BatchFilter(NamedTuple):
    """Forward-pass results of a ragged batch: ``log_likelihoods (S,)``, ``filtered (N, K)``, ``offsets``."""

    log_likelihoods: np.ndarray
    filtered: np.ndarray
    offsets: np.ndarray


def _chain(pi0, A, loglik, offsets):
    loglik = np.ascontiguousarray(loglik, dtype=np.float64)
    if loglik.ndim != 2:
        raise ShapeError(f"loglik: expected (N, K) log-likelihoods, got shape {loglik.shape}")
    K = loglik.shape[1]
    pi0 = np.ascontiguousarray(pi0, dtype=np.float64)
    A = np.ascontiguousarray(A, dtype=np.float64)
    if A.ndim == 2:
        A = A[None]
    if pi0.shape != (K,) or A.shape != (1, K, K):
        raise ShapeError(
            f"pi0, A: expected shapes ({K},) and ({K}, {K}) for loglik with {K} states, got {pi0.shape} and {A.shape[-2:]}"
        )
    return pi0, A, loglik, check_offsets("offsets", offsets, loglik.shape[0])


def _lanes_carry(K: int, S: int) -> bool:
    """Whether a batch of ``S`` sequences of a ``K``-state chain goes to the vector lanes
    (:mod:`hmm.lane_forward_backward`), as :func:`batch_posteriors` and :func:`batch_forward` decide."""
    return K <= MAX_STATES and S >= MIN_SEQUENCES


def _weights(loglik, offsets, s0, s1, m, B, low):
    """Sequences ``s0:s1``'s row maxima ``m``, underflow marks ``low`` and weights ``B = exp(loglik - m)``."""
    a, b = offsets[s0], offsets[s1]
    _shift_rows(loglik, a, b, m, B, low)
    np.exp(B[a:b], out=B[a:b])  # NumPy's SIMD exp (releases the GIL like the kernels)


def _in_lanes(pi0, A, A2, loglik, offsets, s0, s1, m, low, lls, filtered, smoothed, counts, smooth):
    """Sequences ``s0:s1`` in the vector lanes (:func:`hmm.lane_forward_backward.group_posteriors`, the
    forward pass alone without ``smooth``), from their weights built in ``smoothed``; returns the
    sequences left to the one-sequence kernels (too long for the lanes, or handed back by a lane).
    Those :func:`_lane_split` leaves to the exact pass get ``lls = NaN``."""
    _weights(loglik, offsets, s0, s1, m, smoothed, low)
    alone, grouped = _lane_split(pi0, A, loglik, offsets, s0, s1, low, m, smoothed, lls)
    # by length, so that a group's padding is small (NumPy's sort: Numba's would add seconds of compilation)
    grouped = grouped[np.argsort(offsets[grouped + 1] - offsets[grouped], kind="stable")]
    if not grouped.size:
        return alone
    left = group_posteriors(pi0, A2, offsets, grouped, m, lls, filtered, smoothed, counts, smooth=smooth)
    return np.concatenate((alone, left))


def batch_posteriors(
    pi0, A, loglik, offsets, n_threads: int | None = None, overwrite: bool = False, reuse: bool = False
) -> BatchPosteriors:
    """Forward-backward of every sequence of a ragged batch (module docstring), parallel over sequences.

    Args:
        pi0: ``(K,)`` initial distribution.
        A: ``(K, K)`` transition matrix (or ``(1, K, K)``).
        loglik: ``(N, K)`` emission log-likelihoods of the concatenated sequences
            (log-plausibilities added, 0 for a missing step, ``-inf`` allowed).
        offsets: ``(S + 1,)`` sequence boundaries.
        n_threads: Numba threads for this call (``None``: the current setting).
        overwrite: let one long sequence use ``loglik``'s memory for its work (the
            array is then destroyed), as :func:`hmm.forward_backward.posteriors` does.
        reuse: take every array of the result (and the pass's own per-row scratch) from the
            active :func:`statespace._scratch.kept` workspace (an E-step that reads them before
            its next call): the same memory every iteration, instead of fresh pages whose
            first touch costs about as much as the lanes' whole pass at small ``K`` (on a Dask
            worker, whose allocator maps every block above 128 kB afresh, even the
            ``(S, K, K)`` counts and the ``(N,)`` flags).

    A sequence of zero probability gets ``log_likelihoods[i] = -inf`` (its rows
    NaN from the first impossible step); callers raise
    :func:`hmm.forward_backward.impossible_data_error` for it.
    """
    pi0, A, loglik, offsets = _chain(pi0, A, loglik, offsets)
    N, K = loglik.shape
    S = offsets.shape[0] - 1
    if S == 1 and _two_threads(A, loglik):  # one long sequence: parallel over time instead (same numbers)
        ll, f, g, c = posteriors(pi0, A, loglik if overwrite else loglik.copy(), overwrite=True)
        return BatchPosteriors(np.array([ll]), f, g, c[None], offsets)
    # allocated only here: unused (N, K) blocks would make the allocator hand out
    # fresh pages to the caller's next (N, K) array, whose first touch costs more
    # than a forward pass at small K
    if reuse:
        filtered = scratch("hmm.batch.filtered", N * K).reshape(N, K)
        smoothed = scratch("hmm.batch.smoothed", N * K).reshape(N, K)
        m = scratch("hmm.batch.m", N)
        lls = scratch("hmm.batch.lls", S)
        counts = scratch("hmm.batch.counts", S * K * K).reshape(S, K, K)
        counts.fill(0.0)
        low = scratch("hmm.batch.low", -(-N // 8)).view(np.bool_)[:N]
    else:
        filtered, smoothed = one_block((N, K), (N, K))
        m = np.empty(N)
        lls = np.empty(S)
        counts = np.zeros((S, K, K))
        low = np.empty(N, np.bool_)

    lanes = _lanes_carry(K, S)
    A2 = np.ascontiguousarray(A[0])

    def part(s0, s1):
        if not lanes:
            _weights(loglik, offsets, s0, s1, m, smoothed, low)
            _posteriors_kernel(pi0, A, loglik, offsets, np.arange(s0, s1), m, lls, filtered, smoothed, counts)
            return
        rest = _in_lanes(pi0, A, A2, loglik, offsets, s0, s1, m, low, lls, filtered, smoothed, counts, True)
        # the one-sequence kernel is called only for sequences that need it: a fleet the lanes carry
        # whole never compiles it (5 s before a fleet's first result with an empty cache)
        if rest.size:
            wait_for_helper(_posteriors_kernel)  # a first fit's helper may be compiling it (exact_kernels)
            _posteriors_kernel(pi0, A, loglik, offsets, rest, m, lls, filtered, smoothed, counts)

    run_parts(part, row_split(offsets, n_threads_for(n_threads)))
    exact = np.flatnonzero(np.isnan(lls))  # sequences only the exact pass carries
    if exact.size:
        wait_for_helper(_exact_kernel)
        run_parts(
            lambda i, j: _exact_kernel(pi0, A, loglik, offsets, exact[i:j], lls, filtered, smoothed, counts),
            row_split(offsets_of(np.diff(offsets)[exact]), n_threads_for(n_threads)),
        )
    return BatchPosteriors(lls, filtered, smoothed, counts, offsets)


def _listed_chain(pi0, A, offsets):
    """``(pi0, A, loglik, offsets, K, S)`` as :func:`batch_posteriors` passes them to its kernels, with an
    empty ``loglik`` of the batch's rows; ``None`` for one long sequence (two-thread kernels, built per
    ``K``, which compile at their call)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    K = np.shape(pi0)[0]
    pi0, A, loglik, offsets = _chain(pi0, A, np.empty((int(offsets[-1]), K)), offsets)
    S = offsets.shape[0] - 1
    return None if S == 1 and _two_threads(A, loglik) else (pi0, A, loglik, offsets, K, S)


def posteriors_kernels(pi0, A, offsets) -> list:
    """The compiled kernels :func:`batch_posteriors` runs on a batch with these ``offsets``, each with
    arguments of the types it passes them (empty arrays; no ``loglik`` needed), for
    :func:`statespace._parallel_compile.compile_together`. Empty for one long sequence: its two-thread
    kernels are built per ``K`` (:mod:`hmm.parallel_forward_backward`) and compile at their call."""
    chain = _listed_chain(pi0, A, offsets)
    if chain is None:
        return []
    pi0, A, loglik, offsets, K, S = chain
    m, lls, low = np.empty(0), np.empty(0), np.empty(0, np.bool_)
    filtered = smoothed = np.empty((0, K))
    calls = [(_shift_rows, (loglik, 0, 0, m, smoothed, low))]
    if _lanes_carry(K, S):
        return calls + [(_lane_split, (pi0, A, loglik, offsets, 0, 0, low, m, smoothed, lls))]
    no_seqs = np.arange(0)
    return [
        (_posteriors_kernel, (pi0, A, loglik, offsets, no_seqs, m, lls, filtered, smoothed, np.empty((0, K, K))))
    ] + calls


def exact_kernels(pi0, A, offsets) -> list:
    """The kernels :func:`batch_posteriors` runs only for the sequences its main path cannot carry, which
    the data decide (a fleet's sequences too long for the vector lanes, or whose weights underflow where
    the chain forbids dropping terms): the one-sequence forward-backward behind the lanes and the exact
    pass (certified scaling, log space), with arguments as :func:`posteriors_kernels` gives them. For
    ``compile_together(..., later=...)``: a helper compiles them without the caller waiting."""
    chain = _listed_chain(pi0, A, offsets)
    if chain is None:
        return []
    pi0, A, loglik, offsets, K, S = chain
    seqs, lls, counts, rows = np.arange(0), np.empty(0), np.empty((0, K, K)), np.empty((0, K))
    exact = [(_exact_kernel, (pi0, A, loglik, offsets, seqs, lls, rows, rows, counts))]
    if not _lanes_carry(K, S):  # then the one-sequence kernel is the main path (posteriors_kernels)
        return exact
    return [(_posteriors_kernel, (pi0, A, loglik, offsets, seqs, np.empty(0), lls, rows, rows, counts))] + exact


def batch_forward(pi0, A, loglik, offsets, n_threads: int | None = None) -> BatchFilter:
    """Forward pass of every sequence of a ragged batch (arguments as :func:`batch_posteriors`).

    In the vector lanes wherever :func:`batch_posteriors` uses them, the forward half of their pass
    (a fleet's filter or log-likelihoods cost less than its smoothing, not more); ``filtered`` holds
    the lanes' weights until each group writes its rows over them.
    """
    pi0, A, loglik, offsets = _chain(pi0, A, loglik, offsets)
    N, K = loglik.shape
    S = offsets.shape[0] - 1
    lls = np.zeros(S)  # NaN only where _lane_split leaves a sequence to the exact pass
    filtered = np.empty((N, K))
    if not _lanes_carry(K, S):
        run_parts(
            lambda s0, s1: _forward_kernel(pi0, A, loglik, offsets, np.arange(s0, s1), lls, filtered),
            row_split(offsets, n_threads_for(n_threads)),
        )
        return BatchFilter(lls, filtered, offsets)
    m = np.empty(N)
    low = np.empty(N, np.bool_)
    A2 = np.ascontiguousarray(A[0])
    no_counts = np.empty((0, K, K))

    def part(s0, s1):
        rest = _in_lanes(pi0, A, A2, loglik, offsets, s0, s1, m, low, lls, filtered, filtered, no_counts, False)
        # the rest, and those _lane_split left to the exact pass (NaN), one at a time
        rest = np.concatenate((rest, np.arange(s0, s1)[np.isnan(lls[s0:s1])]))
        if rest.size:
            _forward_kernel(pi0, A, loglik, offsets, rest, lls, filtered)

    run_parts(part, row_split(offsets, n_threads_for(n_threads)))
    return BatchFilter(lls, filtered, offsets)


def batch_gaussian_loglik(e, y, u, offsets, n_threads: int | None = None, out=None) -> np.ndarray:
    """``(N, K)`` emission log-likelihoods of a ragged batch under ``GaussianEmissionParams`` ``e``.

    ``y (N, d)`` and ``u (N, p)`` are the concatenated observations and inputs;
    each sequence's first ``e.lags`` steps (and steps whose lag window holds a
    NaN) use the initial Gaussian, exactly as :func:`hmm.emissions.gaussian_loglik`
    does for one sequence; NaN coordinates are marginalised. Written into ``out`` (a
    C-contiguous ``(N, K)`` float64 array) when given.
    """
    y, u, offsets = _gaussian_inputs(y, u, offsets)
    factors = gaussian_factors(e)
    N, d = y.shape
    if out is None:
        out = np.empty((N, e.n_states))
    # equal row ranges, whatever the sequences: a range that cuts a sequence reads its lag history
    parts = n_threads_for(n_threads) if N * e.n_states * d * d >= _THREAD_WORK else 1
    cuts = even_cuts(N, parts)
    run_parts(
        lambda i, j: _gaussian_kernel(y, u, offsets, cuts[i], cuts[j], e.lags, e.weights, *factors, out),
        np.arange(parts + 1),
    )
    return out


def _gaussian_inputs(y, u, offsets):
    y = np.ascontiguousarray(y, dtype=np.float64)
    u = np.ascontiguousarray(u, dtype=np.float64).reshape(y.shape[0], -1)
    return y, u, check_offsets("offsets", offsets, y.shape[0])


def gaussian_loglik_kernels(e, y, u, offsets) -> list:
    """The compiled kernel of :func:`batch_gaussian_loglik` with arguments of the types it passes
    (see :func:`posteriors_kernels`); computing them compiles the small kernel that factors the covariances."""
    y, u, offsets = _gaussian_inputs(y, u, offsets)
    out = np.empty((0, e.n_states))
    return [(_gaussian_kernel, (y, u, offsets, 0, 0, e.lags, e.weights, *gaussian_factors(e), out))]
