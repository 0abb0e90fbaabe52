r"""Kalman filter, RTS smoother and EM statistics over a ragged batch, in one compiled call.

A batch of ``S`` sequences is one concatenated array ``y (N, m)`` plus
``offsets (S + 1,)`` (:mod:`statespace._ragged`): sequence ``i`` is
``y[offsets[i]:offsets[i + 1]]``, NaN marking missing coordinates. For one
parameter set (time-invariant matrices; inputs, when the model has them,
concatenated the same way as ``u (N, p)``):

* :func:`batch_log_likelihood` returns :math:`\log p(y^{(i)})` for every sequence
  (the filter's forward pass, as ``kalman_log_likelihood`` computes it);
* :func:`batch_e_step` returns the expected complete-data sufficient statistics
  summed over the batch (layout of ``stats_layout``) and the total log-likelihood,
  as :func:`~statespace.linear_gaussian.em.e_step` does sequence by sequence.

Both run the filter, RTS and statistics loops of ``_fast`` (the copy compiled for
the model's dimensions when it has one) on every sequence inside one compiled
function per thread, in parallel over fixed chunks of sequences; each chunk
sums its own sequences in order and the chunks are summed in order, so the result
does not depend on the number of threads. ``n_threads`` sets Numba's thread count
for the call (``None``: the current ``numba.get_num_threads()``; 1 inside a Dask
worker that already runs one task per core).

* :func:`batch_filter` and :func:`batch_smoother` return the filtered (and
  smoothed) moments of every sequence as one :class:`BatchMoments`: means as
  ``(N, d)`` arrays in the rows of ``y``, and covariances stored once per group
  of sequences that share them. The covariance side of the recursion (``P``,
  ``S_t``, the gain, the RTS gain and smoothed covariances) depends on the
  sequence's length and on which coordinates are missing, not on the observed
  values or the inputs (the filter's, up to a step, not even on the length). So a
  fleet of complete sequences runs the ``O(d^3)`` covariance recursion once (the
  filter: once for the longest; the smoother: once per length); every other
  sequence replays its factors and pays ``O(d^2 + d m + m^2)`` per step for its
  means, in lock-step with the others of its group when it has at least
  ``MIN_LOCKSTEP`` members (their independent chains side by side in vector
  registers; the same numbers as running it alone, to round-off; alone, to the
  bit). Sequences with missing values share with those of the same length
  and the same missing coordinates.

A sequence that shares its covariances with no other (one long sequence, or a length of its own
in a ragged fleet) needs them only inside the E-step and the log-likelihood: there, once a
covariance of the filter or the smoother reaches its fixed point, the loops leave it in the row
where it was reached instead of copying it to every later step (``_fast._filter``'s ``ixf``), and
the statistics add a run of steps that share a row as that row times their number. Past the
first steps each step then costs ``O(d^2 + d m + m^2)`` arithmetic and memory traffic, not the
copies of five ``d x d`` matrices (at d = 16, 100 MB per 10,000 steps).

A sequence the filter cannot carry raises the same error as the per-sequence
functions, naming ``y[i]`` (``y`` when the batch has one sequence).

:func:`batch_log_likelihood` and :func:`batch_e_step` keep constant memory per
thread (they reduce as they go, sharing covariances between consecutive
sequences of a chunk, and replay a run of at least ``MIN_LOCKSTEP`` complete
sharers (with or without inputs, which move only the means) in lock-step groups
whose means stay in a block of ``_fast.ESTEP_BLOCK_ROWS`` steps; the E-step's
statistics of the means are summed there, member by member side by side); :func:`batch_filter` and
:func:`batch_smoother` keep every step's output, so they store each shared
covariance sequence once instead.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numba
import numpy as np

from .._parallel_compile import compile_together, first_use
from .._ragged import check_offsets, n_threads_for, offsets_of, row_split, run_parts, views
from .._scratch import one_block, scratch
from ..errors import DataError, ShapeError
from . import _fast
from ._specialise import MIN_SPECIALISED_T, loops
from .kalman import KalmanFilterResult, filter_kernel_params
from .kernels import stats_layout
from .params import LGSSMParams, kernel_params
from .smoother import SmootherResult, smooth_kernel_params

#: Most chunks a batch is cut into (the unit of parallel work; fixed so sums do not depend on the threads).
MAX_CHUNKS = 64
#: Fewest rows per chunk. Sequences share covariances, and replay in lock-step, only within a chunk:
#: each chunk runs the whole covariance recursion once per length and missing pattern it holds (the
#: batch is sorted by length before it is cut, so a chunk holds long runs of one length), and a
#: length needs ``MIN_LOCKSTEP + 1`` sequences in one chunk to replay in lock-step. Small chunks
#: repeat that work; few chunks leave threads idle on a machine with many cores. One E-step,
#: d = 2, m = 2, 5,000 sequences of 200 steps, one thread: 33.2 ms in chunks of 8,192 rows (64
#: chunks), 28.7 ms in 32,768 (16), 26.1 ms in 65,536 (8).
MIN_CHUNK_ROWS = 32_768
#: Fewest sequences of the batch's mean length per chunk: one covariance recursion of length ``T``
#: costs about ten replays of it, so a chunk of long sequences needs more rows to amortise it
#: (2,000 x 1,000 steps, d = 4, one thread: 157 ms in chunks of 8,192 rows, 107 ms in 64,000).
SHARERS_PER_CHUNK = 64
#: Fewest chunks of a batch of several sequences, so that a small fleet still runs on two threads
#: (fixed, not the thread count: the sums must not depend on the threads). 100 sequences of about
#: 100 steps, 5 EM iterations: 16.5 ms in one chunk, 11.4 ms in two.
MIN_CHUNKS = 2


#: Most sequences replayed in lock-step by one call (``_fast.replay_groups``): their means and staging
#: blocks stay in the first-level caches (2,000 sequences of 1,000 steps, d = 4, one thread: 32
#: members 103-112 ms, 64 members 113-118 ms, 256 members 123-138 ms).
LOCKSTEP = 32
#: Fewest sharers of one source replayed in lock-step: below it the loops over the members are too
#: short to pay for themselves and each sequence replays alone (groups of 1-5 members were up to
#: 1.6x slower in lock-step).
MIN_LOCKSTEP = 8


def _chunk_ends(offsets: np.ndarray) -> np.ndarray:
    """Ends of runs of consecutive sequences with about equal numbers of rows: a power of two of them,
    at most :data:`MAX_CHUNKS`, each of at least :data:`MIN_CHUNK_ROWS` rows and of
    :data:`SHARERS_PER_CHUNK` times the mean length where there are that many, and at least
    :data:`MIN_CHUNKS` where there are that many sequences (fewer where one sequence holds more rows
    than a chunk's share).

    A power of two splits evenly over 2, 4, 8, ... threads (3 chunks on 2 threads leave one
    thread a third idle), and over the shards of a distributed E-step: half the batch is cut
    into half the chunks, so each shard repeats no per-chunk work the whole batch would not.
    """
    S = len(offsets) - 1
    if S == 1:  # one sequence: one chunk (what the arithmetic below gives, without its 10 us)
        return np.ones(1, dtype=np.int64)
    N = int(offsets[-1])
    rows = max(MIN_CHUNK_ROWS, SHARERS_PER_CHUNK * N // max(S, 1))
    n = min(S, MAX_CHUNKS, max(MIN_CHUNKS, N // rows))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    n = 1 << (n.bit_length() - 1)
    targets = offsets[-1] * np.arange(1, n + 1) / n
    ends = np.searchsorted(offsets[1:], targets, side="left") + 1
    ends = np.unique(np.minimum(ends, S))
    ends[-1] = S
    return ends.astype(np.int64)


def _prepare(params: LGSSMParams, y, offsets, inputs, complete=False):
    """``(y, offsets, kp, module, complete)``: the batch's arrays, compiled loops, and whether ``y`` holds
    only finite numbers. One pass over ``y`` finds that out (a finite sum: no inf, nothing missing) and
    rejects inf; ``complete=True`` from the caller (a :class:`~statespace._ragged.Tiled` list the
    validation found complete) skips it."""
    if params.time_varying:
        raise ShapeError(
            f"params: time-varying {params.time_varying} cannot be shared by a batch of sequences; "
            "run the per-sequence functions"
        )
    y = np.ascontiguousarray(y, dtype=np.float64)
    if y.ndim == 1 and params.obs_dim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != params.obs_dim:
        raise ShapeError(f"y: expected concatenated observations (N, {params.obs_dim}), got shape {y.shape}")
    if complete is not True:
        with np.errstate(over="ignore", invalid="ignore"):
            complete = math.isfinite(float(y.sum()))
        if not complete and np.isinf(y).any():
            r = int(np.argmax(np.isinf(y).any(axis=1)))
            raise DataError(f"y: row {r} holds an infinite value; observations must be finite or NaN (missing)")
    offsets = check_offsets("offsets", offsets, y.shape[0])
    if params.input_dim == 0:
        if inputs is not None:
            raise ShapeError("inputs: the model has no input matrices (B and D have 0 columns) but inputs were given")
        kp = kernel_params(params, None, whitened=False)
    else:
        if inputs is None:
            raise ShapeError(
                f"inputs: the model has {params.input_dim} inputs; pass the concatenated inputs (N, {params.input_dim})"
            )
        u = np.ascontiguousarray(inputs, dtype=np.float64)
        if u.shape != (y.shape[0], params.input_dim):
            raise ShapeError(f"inputs: expected shape ({y.shape[0]}, {params.input_dim}), got {u.shape}")
        kp = kernel_params(params, u, whitened=False, scratch_key="linear_gaussian.batch_inputs")
    module = loops(params.state_dim, params.obs_dim) if y.shape[0] >= MIN_SPECIALISED_T else _fast
    return y, offsets, kp, module, complete


def _paths(lengths: np.ndarray, complete: bool) -> tuple[bool, bool, bool]:
    """Which of :func:`_fast.batch_loop`'s paths a batch may take: ``(lone, shared, lockstep)``.

    Sequences share covariances with a neighbour of the same length (and missing pattern),
    run alone otherwise, and a run of more than ``MIN_LOCKSTEP`` complete sharers replays
    in lock-step. A path the batch cannot take is left out of the compiled kernel, which
    is compiled for what the data need (a fleet of equal lengths never compiles the lone
    path, one sequence never the sharing ones). Missing values may split any run, so a
    batch with some keeps the lone path.
    """
    if len(lengths) == 1:  # one sequence, the common case: without np.unique's 10 us per E-step
        return True, False, False
    counts = np.unique(lengths[lengths > 0], return_counts=True)[1]
    shared = bool((counts >= 2).any())
    lone = not complete or not shared or bool((counts == 1).any())
    lockstep = shared and bool((counts > MIN_LOCKSTEP).any())
    return lone, shared, lockstep


def _run(params, y, offsets, inputs, want_stats, n_threads, complete=False):
    y, offsets, kp, module, complete = _prepare(params, y, offsets, inputs, complete)
    lengths = np.diff(offsets)
    # the whole batch in order of length (a stable sort), then cut into chunks: consecutive sequences
    # of one length and missing pattern share their covariances, and each chunk holds long runs of
    # them however the lengths are spread over the batch
    order = np.argsort(lengths, kind="stable").astype(np.int64)
    ends = _chunk_ends(offsets_of(lengths[order]))
    S = len(offsets) - 1
    d, m = params.state_dim, params.obs_dim
    size = stats_layout(d, m, params.input_dim).size
    stats = np.zeros((len(ends), size if want_stats else 0))
    lls, bad, why = np.empty(S), np.empty(S, dtype=np.int64), np.empty(S, dtype=np.int64)
    lone, shared, lockstep = _paths(lengths, complete)
    # the inputs as an argument of their own, None without: Numba then compiles no input terms for such a model
    inputs = kp.u if params.input_dim > 0 else None
    k = min(n_threads_for(n_threads), len(ends))
    bounds = np.unique(len(ends) * np.arange(k + 1) // max(k, 1))
    work = {}  # one set of scratch blocks per part (each part runs on its own thread)
    for j in range(len(bounds) - 1):
        c0, c1 = int(bounds[j]), int(bounds[j + 1])
        s0, s1 = (0 if c0 == 0 else int(ends[c0 - 1])), int(ends[c1 - 1])
        t_max = int(lengths[order[s0:s1]].max()) if s1 > s0 else 0
        key = ("linear_gaussian.batch_loop", j)
        work[c0] = (
            scratch(key + ("moments",), _fast.loop_work_size(t_max, d)),
            scratch(key + ("lone",), 4 * t_max).view(np.int64).reshape(4, t_max) if lone else None,
            scratch(key + ("factors",), _fast.factors_size(t_max, d, m)) if shared else None,
            scratch(key + ("lockstep",), _fast.means_block_size(t_max, d, LOCKSTEP)) if lockstep else None,
        )

    # None: every row checked complete, and the statistics' imputation of missing rows is not compiled in
    missing = None if complete else True

    def args(c0, c1):
        return (kp, y, offsets, order, ends, c0, c1, want_stats, stats, lls, bad, why, *work[c0], LOCKSTEP, MIN_LOCKSTEP, inputs, missing)  # fmt: skip

    path = (module.__name__, lone, shared, lockstep, inputs is None, complete)  # what batch_loop's signature depends on
    if path not in _PATHS_SEEN:  # a process's first E-step on this path: its kernels side by side
        _PATHS_SEEN.add(path)
        kernels, here, needs = _loop_callees(module, lone, shared, lockstep, args(0, int(bounds[1])))
        compile_together(kernels, n_threads_for(n_threads), here, needs=needs)
    run_parts(lambda c0, c1: module.batch_loop(*args(c0, c1)), bounds)
    return y, offsets, kp, stats, lls, bad, why


#: The ``batch_loop`` paths (``_run``'s key) whose kernels this process has compiled or loaded: a set
#: lookup per E-step, where typing the arguments again would cost a short sequence's EM iteration a tenth.
_PATHS_SEEN: set = set()


def _loop_callees(module, lone, shared, lockstep, loop_args):
    """``(kernels, here, needs)``: what a first E-step compiles side by side (``compile_together``), with the
    types ``batch_loop`` passes (its arguments ``loop_args`` on the paths ``lone, shared, lockstep``), how
    many of them this process takes, and which of its kernels call the helper's (and wait for them).

    The large callees are standalone (``statespace._standalone``): ``batch_loop``'s compilation loads
    each from the disk, where a helper put it, instead of compiling a copy of it. Sequences that all
    run alone (one sequence: a fit's common case): this process compiles the smoother's pass ``_rts`` and
    the statistics' kernel ``_stats`` (and the small ``_sequence_params``), a helper the filter and smoother
    ``_filter_smooth`` (its filter ``_filter``, then ``_rts`` loaded from the disk), with the literal modes of
    the lone path; ``batch_loop`` follows at its call.
    A fleet: this process compiles ``_stats``, the lock-step replay ``_lockstep_e_step`` and then
    ``batch_loop``, a helper first the replay's filter ``_lockstep_filter`` (which the replay's
    compilation, waiting for it, then loads) and then ``_filter_smooth`` (which ``batch_loop`` waits for),
    about half of the whole on each side. Complete data (``missing`` None) compile ``_stats`` without
    the imputation of missing rows.
    """
    kp, y, offsets, order, _, _, _, want_stats, _, lls, bad, why, *_, inputs, missing = loop_args
    i1, f1, f2, f3 = np.empty(0, np.int64), np.empty(0), np.empty((0, 0)), np.empty((0, 0, 0))
    g = (f3, f3, f1, f2)
    both = numba.types.literal(module.BOTH)
    lone_filter_smooth = (kp, y, f2, f2, f3, f3, numba.types.literal(module.PLAIN), numba.types.literal(False), g, want_stats, f2, f3, f3, f3, 0, lls, bad, why, i1, i1, i1, i1)  # fmt: skip
    lone_stats = (kp, y, f2, f3, f3, f1, both, i1, missing)
    if lone and not shared:
        # the smoother's pass _rts here, first: the helper's _filter_smooth, which calls it, then finds it on
        # the disk (it compiles the filter _filter first, which takes twice as long)
        lone_rts = (kp, f2, f3, f2, f3, f2, f3, f3, f3, numba.types.literal(False), i1, i1, i1, i1)
        return (
            [
                (module._rts, lone_rts),
                (module._stats, lone_stats),
                (module._sequence_params, (kp, 0, 0)),
                (module._filter_smooth, lone_filter_smooth),
            ],
            3,
            None,
        )
    # batch_loop's run-time flag want_stats keeps the statistics in its code, called by every path
    here = [(module._sequence_params, (kp, 0, 0)), (module._stats, (kp, y, f2, f3, f3, f1, 0, None, missing))]
    helper = [(module._filter_smooth, (kp, y, f2, f2, f3, f3, 0, False, g, want_stats, f2, f3, f3, f3, 0, lls, bad, why, None, None, None, None))]  # fmt: skip
    if lone:  # the lone path's literal modes
        here.append((module._stats, lone_stats))
        helper.append((module._filter_smooth, lone_filter_smooth))
    if lockstep:  # the replay's filter first, which the replay's compilation here loads
        row0 = numba.types.literal(0)
        helper.insert(0, (module._lockstep_filter, (kp, f2, f2, y, offsets, order, 0, 0, row0, f3, f3, g, f2, f2, f3, f3, f2, f2, lls, bad, why)))  # fmt: skip
        here.append((module._lockstep_e_step, (kp, y, offsets, order, 0, 0, f3, f3, g, f3, want_stats, f1, f3, f3, lls, bad, why, inputs)))  # fmt: skip
    here.append((module.batch_loop, loop_args))
    needs = {module._lockstep_e_step: (module._lockstep_filter,), module.batch_loop: (module._filter_smooth,)}
    return here + helper, len(here), needs


def _sequence_kp(params, kp, a, b):
    return kp if params.input_dim == 0 else kernel_params(params, kp.u[a:b], whitened=False)


def _label(i, S):
    return "y" if S == 1 else f"y[{i}]"


def batch_log_likelihood(
    params: LGSSMParams, y, offsets, inputs=None, n_threads: int | None = None, *, complete: bool = False
) -> np.ndarray:
    """``(S,)`` log-likelihoods of the sequences of a ragged batch (module docstring).

    ``-inf`` for a sequence with an observation whose density is below float64's
    range; exact when the predicted moments overflow only in a trailing run of
    missing observations (as ``kalman_log_likelihood``). ``complete`` as in ``batch_e_step``.
    """
    y, offsets, kp, _, lls, bad, _ = _run(params, y, offsets, inputs, False, n_threads, complete)
    S = len(lls)
    for i in np.flatnonzero(bad >= 0):
        a, b = offsets[i], offsets[i + 1]
        # the per-sequence path decides (and words the error) exactly as for one sequence
        lls[i] = filter_kernel_params(
            _sequence_kp(params, kp, a, b), y[a:b], moments=False, label=_label(i, S)
        ).log_likelihood
    return lls


def batch_e_step(
    params: LGSSMParams, y, offsets, inputs=None, n_threads: int | None = None, *, complete: bool = False
) -> tuple[np.ndarray, float]:
    """Summed expected sufficient statistics (``stats_layout``) and total log-likelihood of a ragged batch.

    Args:
        params: time-invariant model parameters.
        y: ``(N, m)`` concatenated observations (NaN = missing).
        offsets: ``(S + 1,)`` sequence boundaries.
        inputs: ``(N, p)`` concatenated inputs when the model has inputs.
        n_threads: Numba threads for this call.
        complete: the caller guarantees that ``y`` holds only finite numbers (nothing missing), as a
            :class:`~statespace._ragged.Tiled` list checked by the validation does; the pass over
            ``y`` that looks for inf and NaN is skipped. ``False``: that pass runs.

    Raises the per-sequence error (naming ``y[i]`` and the time step) for the first
    sequence the filter or smoother cannot carry.
    """
    y, offsets, kp, stats, lls, bad, _ = _run(params, y, offsets, inputs, True, n_threads, complete)
    S = len(lls)
    failed = np.flatnonzero(bad >= 0)
    if len(failed):
        i = int(failed[0])
        a, b = offsets[i], offsets[i + 1]
        smooth_kernel_params(_sequence_kp(params, kp, a, b), y[a:b], label=_label(i, S))  # raises the named error
        raise DataError(f"{_label(i, S)}: the Kalman smoother could not carry this sequence (time step {int(bad[i])})")
    return stats.sum(axis=0), float(lls.sum())


class BatchMoments(NamedTuple):
    """Filtered (and smoothed) moments of a ragged batch of ``S`` sequences, ``N`` rows in all.

    Sequence ``i`` covers rows ``offsets[i]:offsets[i + 1]`` of the ``(N, d)`` means, and
    rows ``cov_rows[i]:cov_rows[i] + T_i`` of the ``(R, d, d)`` covariances (``T_i - 1``
    rows of the cross-covariances and gains), which sequences sharing their covariances
    share (module docstring). The covariance arrays are read-only for that reason.
    :meth:`sequence` gives one sequence's :class:`~statespace.linear_gaussian.KalmanFilterResult`
    (or :class:`~statespace.linear_gaussian.SmootherResult`) as views, :meth:`sequences` all of them.

    Attributes:
        offsets: ``(S + 1,)`` sequence boundaries.
        log_likelihoods: ``(S,)`` :math:`\\log p(y^{(i)})`.
        filtered_means, predicted_means: ``(N, d)``.
        cov_rows: ``(S,)`` first covariance row of each sequence.
        filtered_covs, predicted_covs: ``(R, d, d)``.
        smoothed_means: ``(N, d)``, or ``None`` from :func:`batch_filter`.
        smoothed_covs, smoothed_cross_covs, smoother_gains: ``(R, d, d)``, or ``None``.
    """

    offsets: np.ndarray
    log_likelihoods: np.ndarray
    filtered_means: np.ndarray
    predicted_means: np.ndarray
    cov_rows: np.ndarray
    filtered_covs: np.ndarray
    predicted_covs: np.ndarray
    smoothed_means: np.ndarray | None = None
    smoothed_covs: np.ndarray | None = None
    smoothed_cross_covs: np.ndarray | None = None
    smoother_gains: np.ndarray | None = None

    def sequence(self, i: int) -> KalmanFilterResult | SmootherResult:
        """Sequence ``i``'s result (negative ``i`` counts from the end), its arrays views of the batch's."""
        i = range(len(self.log_likelihoods))[i]  # an IndexError naming the range when out of it
        o = self.offsets
        return self._results(self.log_likelihoods[i : i + 1], o[i : i + 2], self.cov_rows[i : i + 1])[0]

    def sequences(self) -> list:
        """Every sequence's result, in order."""
        return self._results(self.log_likelihoods, self.offsets, self.cov_rows)

    def _results(self, lls, offsets, rows) -> list:
        """The results of the sequences on rows ``offsets[k]:offsets[k + 1]`` of the means whose
        covariances start at row ``rows[k]``. Built in bulk (a fleet's thousands of results are most
        of the cost of a short fleet's filter): the means' views by :func:`~statespace._ragged.views`,
        one view per distinct block of covariances (sharers share it, as they share the memory), and
        the results by ``tuple.__new__`` over the columns, without a Python call per sequence."""
        lengths = np.diff(offsets)
        # the distinct blocks of covariances, (first row, length), and which one each sequence reads
        _, first, which = np.unique(
            rows.astype(np.int64) * (int(lengths.max(initial=0)) + 1) + lengths, return_index=True, return_inverse=True
        )
        blocks = list(zip(rows[first].tolist(), lengths[first].tolist()))
        which = which.tolist()

        def shared(arr, shorter):
            cut = [arr[c : c + max(T - shorter, 0)] for c, T in blocks]
            return list(map(cut.__getitem__, which))

        lls = lls.tolist()
        fm, pm = views(self.filtered_means, offsets), views(self.predicted_means, offsets)
        fP, pP = shared(self.filtered_covs, 0), shared(self.predicted_covs, 0)
        if self.smoothed_means is None:
            return list(map(partial(tuple.__new__, KalmanFilterResult), zip(lls, fm, fP, pm, pP)))
        sm = views(self.smoothed_means, offsets)
        sP, cross, gains = (
            shared(self.smoothed_covs, 0),
            shared(self.smoothed_cross_covs, 1),
            shared(self.smoother_gains, 1),
        )
        return list(map(partial(tuple.__new__, SmootherResult), zip(lls, sm, sP, cross, fm, fP, pm, pP, gains)))


def _sources(y: np.ndarray, offsets: np.ndarray, prefix: bool, finite: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """``(src, cov_rows, R)``: the sequence whose covariances each shares, their first rows, and the rows in all.

    Complete sequences of one length share the first one's; with ``prefix`` (the filter alone,
    whose covariances at a step do not depend on the steps after it) complete sequences of every
    length share the first longest one's first rows. A sequence with missing values shares with
    the first of the same length and the same missing coordinates. ``finite``: ``y`` is known
    to hold no NaN, and is not scanned for them.
    """
    S = len(offsets) - 1
    lengths = np.diff(offsets)
    # a sequence's sum is NaN when it holds a NaN (inf is rejected before; a sum that overflows to
    # inf - inf only sends a complete sequence down the per-pattern branch below, which shares less)
    flat = y.reshape(-1)
    starts = np.minimum(offsets[:-1] * y.shape[1], max(flat.size - 1, 0))
    if finite or not flat.size:
        has_nan = np.zeros(S, bool)
    else:
        has_nan = (lengths > 0) & np.isnan(np.add.reduceat(flat, starts))
    src = np.arange(S, dtype=np.int64)
    complete = np.flatnonzero(~has_nan)
    if len(complete) and prefix:
        src[complete] = complete[np.argmax(lengths[complete])]
    elif len(complete):
        _, first, inverse = np.unique(lengths[complete], return_index=True, return_inverse=True)
        src[complete] = complete[first][inverse]
    seen: dict = {}
    for s in np.flatnonzero(has_nan):
        key = (int(lengths[s]), np.isnan(y[offsets[s] : offsets[s + 1]]).tobytes())
        src[s] = seen.setdefault(key, s)
    own = np.where(src == np.arange(S), lengths, 0)
    start = np.concatenate([[0], np.cumsum(own)[:-1]]).astype(np.int64)
    return src, start[src], int(own.sum())


def _moments(params, y, offsets, inputs, smooth, n_threads, complete=False) -> BatchMoments:
    y, offsets, kp, module, complete = _prepare(params, y, offsets, inputs, complete)
    S, N = len(offsets) - 1, y.shape[0]
    d, m = params.state_dim, params.obs_dim
    src, crow, R = _sources(y, offsets, not smooth, complete)
    n, r = (N, R) if smooth else (0, 0)
    fm, pm, fP, pP, sm, sP, cross, gains = one_block(
        (N, d), (N, d), (R, d, d), (R, d, d), (n, d), (r, d, d), (r, d, d), (r, d, d)
    )
    g = (np.empty((R, m, d)), np.empty((R, m, m)), np.empty(R), np.empty((R, m)))
    lls, bad, why = np.empty(S), np.empty(S, dtype=np.int64), np.empty(S, dtype=np.int64)
    k = n_threads_for(n_threads)
    lengths = np.diff(offsets)
    is_source = src == np.arange(S)
    sharers = np.flatnonzero(~is_source)
    members = sharers[np.lexsort((-lengths[sharers], src[sharers]))]  # by source, longest first
    starts = np.flatnonzero(np.diff(src[members], prepend=-1))
    sizes = np.diff(np.append(starts, len(members)))
    big = sizes >= MIN_LOCKSTEP
    lockstep = np.repeat(big, sizes)
    if big.any():
        # runs of at most LOCKSTEP members of one source: their means stay in cache, and threads
        # share out the work of one large group
        grouped, sizes = members[lockstep], sizes[big]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        group_ends = np.concatenate(
            [np.append(np.arange(a + LOCKSTEP, a + n, LOCKSTEP), a + n) for a, n in zip(starts, sizes)]
        ).astype(np.int64)
        group_rows = np.add.reduceat(lengths[grouped], np.concatenate([[0], group_ends[:-1]]))

    def moments(seqs, lo, hi):
        return kp, y, offsets, src, crow, seqs, lo, hi, fm, pm, fP, pP, g, lls, bad, why

    def rts(seqs, lo, hi):
        return kp, offsets, src, crow, seqs, lo, hi, fm, pm, fP, pP, sm, sP, cross, gains, bad, why

    def replay(g0, g1):
        return kp, y, offsets, src, grouped, group_ends, g0, g1, crow, fm, pm, fP, pP, g, lls, bad, why

    def replay_rts(g0, g1):
        return kp, offsets, grouped, group_ends, g0, g1, crow, fm, pm, sm, gains, bad

    # on an empty cache, the kernels below compile side by side (here the largest, the lock-step replay)
    no_seqs = np.empty(0, dtype=np.int64)
    kernels = [(module.batch_moments, moments(no_seqs, 0, 0))]
    if smooth:
        kernels.append((module.batch_rts, rts(no_seqs, 0, 0)))
    if big.any():
        kernels.insert(0, (module.replay_groups, replay(0, 0)))
        if smooth:
            kernels.append((module.replay_rts_groups, replay_rts(0, 0)))
    if first_use(*(f for f, _ in kernels)):
        compile_together(kernels, k)
    # the sources first (they record what the others replay), then the sharers of small groups
    # one by one, then the large groups in lock-step; when smoothing, the RTS pass of each set
    # follows its filter (kernels of their own, so that a filter does not compile them)
    for seqs in (np.flatnonzero(is_source), members[~lockstep]):
        parts = row_split(offsets_of(lengths[seqs]), k) if len(seqs) else np.zeros(1, dtype=np.int64)
        run_parts(lambda lo, hi, seqs=seqs: module.batch_moments(*moments(seqs, lo, hi)), parts)
        if smooth:
            run_parts(lambda lo, hi, seqs=seqs: module.batch_rts(*rts(seqs, lo, hi)), parts)
    if big.any():
        parts = row_split(offsets_of(group_rows), k)
        run_parts(lambda g0, g1: module.replay_groups(*replay(g0, g1)), parts)
        if smooth:  # the RTS means, from the filtered ones (a kernel of its own: a filter does not compile it)
            run_parts(lambda g0, g1: module.replay_rts_groups(*replay_rts(g0, g1)), parts)
    failed = np.flatnonzero(bad >= 0)
    if len(failed):
        i = int(failed[0])
        a, b = offsets[i], offsets[i + 1]
        label = _label(i, S)
        kps = _sequence_kp(params, kp, a, b)
        # the per-sequence path words the error exactly as for one sequence
        if why[i] == -2:
            smooth_kernel_params(kps, y[a:b], label=label)
            raise DataError(f"{label}: predicted covariance not positive definite at time step {int(bad[i])}")
        filter_kernel_params(kps, y[a:b], label=label)
        raise DataError(f"{label}: the Kalman filter could not carry this sequence (time step {int(bad[i])})")
    for arr in (fP, pP, sP, cross, gains):
        arr.flags.writeable = False
    if not smooth:
        return BatchMoments(offsets, lls, fm, pm, crow, fP, pP)
    return BatchMoments(offsets, lls, fm, pm, crow, fP, pP, sm, sP, cross, gains)


def batch_filter(
    params: LGSSMParams, y, offsets, inputs=None, n_threads: int | None = None, *, complete: bool = False
) -> BatchMoments:
    """Kalman filter of every sequence of a ragged batch, in one compiled call per thread.

    Args:
        params: time-invariant model parameters.
        y: ``(N, m)`` concatenated observations (NaN = missing).
        offsets: ``(S + 1,)`` sequence boundaries.
        inputs: ``(N, p)`` concatenated inputs when the model has inputs.
        n_threads: threads for this call (``None``: Numba's current setting).
        complete: the caller guarantees that ``y`` holds only finite numbers (as ``batch_e_step``).

    Returns:
        A :class:`BatchMoments` without the smoothed fields; ``.sequence(i)`` equals
        ``kalman_filter`` of sequence ``i`` alone.

    Raises the per-sequence error, naming ``y[i]`` and the time step, for the first
    sequence the filter cannot carry (an observation of zero probability included).
    """
    return _moments(params, y, offsets, inputs, False, n_threads, complete)


def batch_smoother(
    params: LGSSMParams, y, offsets, inputs=None, n_threads: int | None = None, *, complete: bool = False
) -> BatchMoments:
    """Kalman filter and RTS smoother of every sequence of a ragged batch (arguments as :func:`batch_filter`).

    ``.sequence(i)`` of the result equals ``rts_smoother`` of sequence ``i`` alone.
    """
    return _moments(params, y, offsets, inputs, True, n_threads, complete)
