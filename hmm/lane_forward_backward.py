r"""Forward-backward of many short sequences at once, one sequence per vector lane.

For one sequence, each step of the scaled recursions of
:mod:`hmm.forward_backward`,

.. math::

    \tilde\alpha_t = (A^\top \tilde\alpha_{t-1}) \odot B_t / c_{t-1}, \qquad
    c_t = \textstyle\sum_k \tilde\alpha_t(k), \qquad
    \beta_{t-1} = A\,(B_t \odot \beta_t) / c_t,

waits for the step before it: at small ``K`` a step costs the latency of a
matrix-vector product and a sum, and the arithmetic units stay mostly idle
(about 70 ns per step of forward and backward pass at ``K = 5``). A fleet of
sequences (units, patients, trials) has no such chain *across* sequences, so
this module runs :data:`~hmm.vector_product.LANES` sequences in lock-step:
state ``k`` of the group's eight sequences sits in one ``(8,)`` row of a
``(K, 8)`` block, and the products of a step are vector instructions over the
group (:func:`hmm.vector_product.lanes_forward_step`, :func:`~hmm.vector_product.lanes_backward_step`).

A group's sequences are aligned at their first step and padded to the longest
with steps of weight ``B = 1``, on which the recursions stay finite; step
``t`` counts for lane ``g`` only while ``t < n_g``: the transition counts are
masked, and the backward message stays exactly ``1`` until the lane's last
step, where its own recursion starts. Each lane therefore performs the
arithmetic of its own sequence, whatever its group mates, its lane or the
thread: the numbers agree with the one-sequence kernels to rounding (only the
order of the sums inside a step differs) and do not depend on the grouping.
The caller sorts the sequences by length, which keeps the padding small.

A lane that meets what the one-sequence kernels handle by a slower path (a
weight lost to underflow, a step that no reachable state explains) is
reported back with its rows untouched, and the caller runs that sequence
alone (``hmm.batch``), which handles it exactly.
"""

from __future__ import annotations

import threading

import numba as nb
import numpy as np

from statespace._numerics.fastmath import FASTMATH
from statespace._scratch import Workspace

from .forward_backward import _TINY, _sum_log
from .vector_product import LANES, lanes_backward_step, lanes_forward_step

#: Most states run in lanes: the products are written out per state pair (``K^2`` instructions).
MAX_STATES = 16
#: Longest sequence run in lanes, in ``T * K`` numbers: a group's scratch is ``2 * LANES`` times that.
MAX_CELLS = 1 << 16
#: Fewest sequences in a call for which the lanes are used. A group's step costs about what two
#: sequences alone cost, and a call about 10 µs more: one or two sequences run faster alone (K = 5,
#: T = 1,000: 145 vs 88 µs for one), three about break even at T = 100 and gain at T = 1,000 (188 vs
#: 214 µs), eight gain 1.6-1.9x. Decided per call, not per group, so that the numbers do not depend
#: on the threads a call is split over.
MIN_SEQUENCES = 3


@nb.njit(cache=True, nogil=True, fastmath=FASTMATH)
def _group(pi0, A2, B, starts, lengths, Bl, F, c, filtered, smoothed, counts_out, log_c, smooth, K):
    r"""Posteriors of up to ``LANES`` sequences in lock-step; returns ``ok (LANES,)``.

    ``B (N, K)`` holds :math:`e^{\ell_t - m_t}` of the batch; lane ``g`` is the
    sequence of rows ``starts[g] : starts[g] + lengths[g]`` (``lengths[g] = 0``:
    an unused lane). ``Bl``, ``F (Tmax, K, LANES)`` and ``c (Tmax, LANES)`` are
    scratch. For each lane with ``ok[g]``: its filtered and smoothed rows are
    written into ``filtered`` and ``smoothed`` (either may be ``B``), its
    transition counts into ``counts_out[g]`` and :math:`\sum_t \log c_t` into
    ``log_c[g]``. A lane without ``ok`` has written nothing. With ``smooth``
    false, the forward pass alone: ``filtered`` and ``log_c`` only.
    """
    nb.literally(K)
    Tmax = 0
    for g in range(LANES):
        Tmax = max(Tmax, lengths[g])
    for t in range(Tmax):  # the group's weights, lanes innermost; padding steps weigh 1
        for g in range(LANES):
            if t < lengths[g]:
                row = starts[g] + t
                for k in range(K):
                    Bl[t, k, g] = B[row, k]
            else:
                for k in range(K):
                    Bl[t, k, g] = 1.0
    bad = np.zeros(LANES)  # > 0 once a lane needs the one-sequence path
    live = np.empty(LANES)
    for g in range(LANES):
        ct = 0.0
        for k in range(K):
            v = pi0[k] * Bl[0, k, g]
            F[0, k, g] = v
            ct += v
        c[0, g] = ct
        if not (0.0 < ct < np.inf):
            bad[g] = 1.0
            ct = 1.0  # keeps the lane finite; its results are discarded
        inv = 1.0 / ct
        for k in range(K):
            F[0, k, g] *= inv
    step = K * LANES
    for t in range(1, Tmax):  # F[t]: the normalised filter
        for g in range(LANES):
            live[g] = 1.0 if t < lengths[g] else 0.0
        lanes_forward_step(F, (t - 1) * step, t * step, Bl, t * step, A2, c, t * LANES, bad, live, _TINY, K)
    # backward, fused with the marginals (into Bl) and the counts, as hmm.forward_backward._backward_fused
    G = np.zeros((K, K, LANES))
    if smooth:
        beta = np.ones((K, LANES))
        for t in range(Tmax - 1, 0, -1):
            for g in range(LANES):
                live[g] = 1.0 if t < lengths[g] else 0.0
            lanes_backward_step(Bl, t * step, F, t * step, (t - 1) * step, c, t * LANES, beta, G, A2, live, K)
        for j in range(K):
            for g in range(LANES):
                f = F[0, j, g]
                Bl[0, j, g] = f * beta[j, g] if f > 0.0 else 0.0
    ok = np.empty(LANES, np.bool_)
    column = np.empty(Tmax)
    for g in range(LANES):
        n = lengths[g]
        ok[g] = n > 0 and bad[g] == 0.0
        if not ok[g]:
            continue
        row0 = starts[g]
        for t in range(n):
            column[t] = c[t, g]
            for k in range(K):
                filtered[row0 + t, k] = F[t, k, g]
        if smooth:
            for t in range(n):
                for k in range(K):
                    smoothed[row0 + t, k] = Bl[t, k, g]
            for i in range(K):
                for j in range(K):
                    counts_out[g, i, j] = A2[i, j] * G[i, j, g]
        log_c[g] = _sum_log(column[:n])
    return ok


def _build(K: int):
    """The kernel for ``K`` states: it closes over ``K`` only (a plain integer, so Numba caches it on
    disk, as :func:`hmm.parallel_forward_backward.kernels_for` does) and passes it on as a literal.
    It returns a count rather than an array: an array returned by such a closure failed to box in
    one process (``NRT_adapt_ndarray_to_python``: ``descr`` is NULL), K = 10 loaded from the cache."""

    @nb.njit(cache=True, nogil=True, fastmath=FASTMATH)
    def run(pi0, A2, offsets, seqs, m, lls, filtered, smoothed, counts, failed, Bl, F, c, smooth):
        """Sequences ``seqs`` (sorted by length) in groups of ``LANES``; ``smoothed`` holds the batch's
        ``exp(loglik - m[:, None])`` on entry; ``Bl``, ``F (longest, K, LANES)`` and ``c (longest, LANES)``
        are scratch. The sequences a lane could not finish go to ``failed``; returns their number.
        Without ``smooth``: the forward pass only (``lls`` and ``filtered``; ``counts`` is not written)."""
        n_seqs = seqs.shape[0]
        starts = np.zeros(LANES, np.int64)
        lengths = np.zeros(LANES, np.int64)
        group_counts = np.empty((LANES, K, K))
        log_c = np.empty(LANES)
        n_failed = 0
        for g0 in range(0, n_seqs, LANES):
            n_g = min(LANES, n_seqs - g0)
            for g in range(LANES):
                s = seqs[g0 + min(g, n_g - 1)]
                starts[g] = offsets[s]
                lengths[g] = offsets[s + 1] - offsets[s] if g < n_g else 0
            ok = _group(
                pi0, A2, smoothed, starts, lengths, Bl, F, c, filtered, smoothed, group_counts, log_c, smooth, K
            )
            for g in range(n_g):
                s = seqs[g0 + g]
                if ok[g]:
                    total = 0.0
                    for t in range(offsets[s], offsets[s + 1]):
                        total += m[t]
                    lls[s] = log_c[g] + total
                    if smooth:
                        for i in range(K):
                            for j in range(K):
                                counts[s, i, j] = group_counts[g, i, j]
                else:
                    failed[n_failed] = s
                    n_failed += 1
        return n_failed

    return run


_KERNELS: dict = {}
_WORKSPACE = threading.local()


def _scratch(longest: int, K: int):
    """``Bl``, ``F (longest, K, LANES)`` and ``c (longest, LANES)``, reused between calls of one thread
    (a per-thread :class:`~statespace._scratch.Workspace`, kept for every call, not only inside a fit):
    fresh pages cost a fault each on first touch, as much as the lanes' pass for a few sequences."""
    n = longest * K * LANES
    need = 2 * n + longest * LANES
    ws = getattr(_WORKSPACE, "workspace", None)
    if ws is None:
        ws = _WORKSPACE.workspace = Workspace()
    buf = ws.array("lanes", need)
    return (
        buf[:n].reshape(longest, K, LANES),
        buf[n : 2 * n].reshape(longest, K, LANES),
        buf[2 * n : need].reshape(longest, LANES),
    )


def group_posteriors(pi0, A2, offsets, seqs, m, lls, filtered, smoothed, counts, smooth=True) -> np.ndarray:
    """Forward-backward of sequences ``seqs`` of a batch in lanes (arguments as ``hmm.batch``'s kernel,
    ``A2 (K, K)`` C-contiguous); returns the sequences left to the one-sequence path. ``smooth=False``:
    the forward pass only, into ``lls`` and ``filtered`` (``smoothed`` holds the weights on entry and
    may be ``filtered`` itself: a group reads its rows before it writes them)."""
    K = A2.shape[0]
    if K not in _KERNELS:
        _KERNELS[K] = _build(K)
    longest = int((offsets[seqs + 1] - offsets[seqs]).max()) if seqs.size else 0
    failed = np.empty(seqs.shape[0], np.int64)  # an integer count comes back, not an array: see _build
    n_failed = _KERNELS[K](
        pi0, A2, offsets, seqs, m, lls, filtered, smoothed, counts, failed, *_scratch(longest, K), smooth
    )
    return failed[:n_failed]
