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

A sequence the filter cannot carry raises the same error as the per-sequence
functions, naming ``y[i]`` (``y`` when the batch has one sequence).
"""

from __future__ import annotations

import numpy as np

from .._ragged import check_offsets, n_threads_for, run_parts
from ..errors import DataError, ShapeError
from . import _fast
from ._specialise import MIN_SPECIALISED_T, loops
from .kalman import filter_kernel_params
from .kernels import stats_layout
from .params import LGSSMParams, kernel_params

#: Most chunks a batch is cut into (the unit of parallel work; fixed so sums do not depend on the threads).
MAX_CHUNKS = 64


def _chunk_ends(offsets: np.ndarray) -> np.ndarray:
    """Ends of up to :data:`MAX_CHUNKS` runs of consecutive sequences with about equal numbers of rows."""
    S = len(offsets) - 1
    n = min(S, MAX_CHUNKS)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    targets = offsets[-1] * np.arange(1, n + 1) / n
    ends = np.searchsorted(offsets[1:], targets, side="left") + 1
    ends = np.unique(np.minimum(ends, S))
    ends[-1] = S
    return ends.astype(np.int64)


def _prepare(params: LGSSMParams, y, offsets, inputs):
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
    if np.isinf(y).any():
        r = int(np.argmax(np.isinf(y).any(axis=1)))
        raise DataError(f"y: row {r} holds an infinite value; observations must be finite or NaN (missing)")
    offsets = check_offsets("offsets", offsets, y.shape[0])
    if params.input_dim == 0:
        if inputs is not None:
            raise ShapeError("inputs: the model has no input matrices (B and D have 0 columns) but inputs were given")
        kp = kernel_params(params, None)
    else:
        if inputs is None:
            raise ShapeError(
                f"inputs: the model has {params.input_dim} inputs; pass the concatenated inputs (N, {params.input_dim})"
            )
        u = np.ascontiguousarray(inputs, dtype=np.float64)
        if u.shape != (y.shape[0], params.input_dim):
            raise ShapeError(f"inputs: expected shape ({y.shape[0]}, {params.input_dim}), got {u.shape}")
        kp = kernel_params(params, u)
    module = loops(params.state_dim, params.obs_dim) if y.shape[0] >= MIN_SPECIALISED_T else _fast
    return y, offsets, kp, module


def _run(params, y, offsets, inputs, want_stats, n_threads):
    y, offsets, kp, module = _prepare(params, y, offsets, inputs)
    ends = _chunk_ends(offsets)
    S = len(offsets) - 1
    size = stats_layout(params.state_dim, params.obs_dim, params.input_dim).size
    stats = np.zeros((len(ends), size if want_stats else 0))
    lls, bad, why = np.empty(S), np.empty(S, dtype=np.int64), np.empty(S, dtype=np.int64)
    k = min(n_threads_for(n_threads), len(ends))
    bounds = np.unique(len(ends) * np.arange(k + 1) // max(k, 1))
    run_parts(lambda c0, c1: module.batch_loop(kp, y, offsets, ends, c0, c1, want_stats, stats, lls, bad, why), bounds)
    return y, offsets, kp, stats, lls, bad, why


def _sequence_kp(params, kp, a, b):
    return kp if params.input_dim == 0 else kernel_params(params, kp.u[a:b])


def _label(i, S):
    return "y" if S == 1 else f"y[{i}]"


def batch_log_likelihood(params: LGSSMParams, y, offsets, inputs=None, n_threads: int | None = None) -> np.ndarray:
    """``(S,)`` log-likelihoods of the sequences of a ragged batch (module docstring).

    ``-inf`` for a sequence with an observation whose density is below float64's
    range; exact when the predicted moments overflow only in a trailing run of
    missing observations (as ``kalman_log_likelihood``).
    """
    y, offsets, kp, _, lls, bad, _ = _run(params, y, offsets, inputs, False, n_threads)
    S = len(lls)
    for i in np.flatnonzero(bad >= 0):
        a, b = offsets[i], offsets[i + 1]
        # the per-sequence path decides (and words the error) exactly as for one sequence
        lls[i] = filter_kernel_params(
            _sequence_kp(params, kp, a, b), y[a:b], moments=False, label=_label(i, S)
        ).log_likelihood
    return lls


def batch_e_step(
    params: LGSSMParams, y, offsets, inputs=None, n_threads: int | None = None
) -> tuple[np.ndarray, float]:
    """Summed expected sufficient statistics (``stats_layout``) and total log-likelihood of a ragged batch.

    Args:
        params: time-invariant model parameters.
        y: ``(N, m)`` concatenated observations (NaN = missing).
        offsets: ``(S + 1,)`` sequence boundaries.
        inputs: ``(N, p)`` concatenated inputs when the model has inputs.
        n_threads: Numba threads for this call.

    Raises the per-sequence error (naming ``y[i]`` and the time step) for the first
    sequence the filter or smoother cannot carry.
    """
    y, offsets, kp, stats, lls, bad, _ = _run(params, y, offsets, inputs, True, n_threads)
    S = len(lls)
    failed = np.flatnonzero(bad >= 0)
    if len(failed):
        i = int(failed[0])
        a, b = offsets[i], offsets[i + 1]
        from .smoother import smooth_kernel_params

        smooth_kernel_params(_sequence_kp(params, kp, a, b), y[a:b], label=_label(i, S))  # raises the named error
        raise DataError(f"{_label(i, S)}: the Kalman smoother could not carry this sequence (time step {int(bad[i])})")
    return stats.sum(axis=0), float(lls.sum())
