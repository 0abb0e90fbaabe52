r"""EM for the generator of a Markov jump process (Bladt & Sorensen 2005).

The complete-data log-likelihood of a path observed continuously is

.. math::

    \log L(Q) = \sum_{k \ne l} N_{kl} \log q_{kl} - \sum_k R_k \sum_{l \ne k} q_{kl}
    \;(+ \log \pi_0(x_{t_0}) + \textstyle\sum_t \log p(y_t \mid x_{t})),

with :math:`N_{kl}` the number of ``k -> l`` jumps and :math:`R_k` the time
spent in ``k``. Between observations the path is hidden, so the E-step takes
their posterior expectations: for each interval, the endpoint-conditioned
expectations of :mod:`hmm.markov_jump.expectations` weighted by the two-slice
posteriors :math:`\xi_t(a, b) = p(x_{t-1}=a, x_t=b \mid y)` (indicators for exact
observations). The M-step is closed form,

.. math::

    q_{kl} = \mathbb E[N_{kl}] / \mathbb E[R_k], \qquad
    \pi_0 = \text{mean over sequences of } \gamma_0,

plus the observation model's own M-step (from its expected statistics, e.g. the
:math:`\gamma`-weighted counts or moments). Every statistic is a sum over sequences
(``MJPStats``), so the E-step is a map-reduce over shards of sequences. A structural zero stays zero
(:math:`\mathbb E[N_{kl}] \propto q_{kl}`). Each iteration maximises the expected
complete-data log-likelihood exactly, so the observed log-likelihood never
decreases (tested).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from statespace._parallel_compile import compile_together, first_use
from statespace._ragged import n_threads_for
from statespace.convergence import ConvergenceMonitor
from statespace.distributed import EStep
from statespace.interface import FitResult
from statespace.progress import progress_bar
from statespace.validation import as_sequences

from .expectations import transition_matrices, van_loan_integrals
from .generator import MJPParams
from .inference import interval_table, posterior_pass, raise_if_impossible
from .observations import time_grids

#: Rows whose expected dwell time falls below this keep their previous rates (no information).
_MIN_DWELL = 1e-300


def expected_statistics(params: MJPParams, ys, times_list):
    """E-step over all sequences.

    Returns ``(log_likelihood, dwell (K,), jumps (K, K), gamma (N, K), offsets)``: the
    expected total time in each state, the expected number of each jump, and the
    smoothed marginals of all sequences concatenated (sequence ``s`` is
    ``gamma[offsets[s]:offsets[s + 1]]``).
    """
    ys, single = as_sequences("ys", ys, obs_dim=1)
    grids = time_grids("times_list", times_list, [len(y) for y in ys])
    for i, y in enumerate(ys):
        params.observation.check_data("ys" if single else f"ys[{i}]", y, params.n_states)
    return _e_step(params, np.concatenate(ys), interval_table(grids))


def _e_step(params, y, table):
    Q = np.asarray(params.Q)
    K = Q.shape[0]
    loglik = params.observation.log_likelihoods(y, K)
    pi0 = np.asarray(params.initial)
    if first_use(posterior_pass):  # a process's first E-step, on an empty cache: its kernels side by side
        compile_together(e_step_kernels(Q, pi0, table, loglik), n_threads_for(None))
    P = transition_matrices(Q, table.lengths)
    lls, gamma, W = posterior_pass(pi0, P, table.index, table.offsets, loglik)
    raise_if_impossible(lls, pi0, P, table, loglik)
    M = van_loan_integrals(Q, table.lengths, W)
    dwell = np.clip(np.diag(M).copy(), 0.0, None)
    off = Q - np.diag(np.diag(Q))
    jumps = np.clip(off * M, 0.0, None)
    return float(lls.sum()), dwell, jumps, gamma, table.offsets


def e_step_kernels(Q, pi0, table, loglik) -> list:
    """The compiled kernels of an E-step, each with arguments of the types it is passed, the largest
    first: the forward-backward over the intervals (12 s to compile on the 2-core machine), which the
    calling process compiles while a helper compiles the transition matrices and the Van Loan
    integrals (3 s) (``statespace._parallel_compile.compile_together``)."""
    P = np.empty((0, *Q.shape))  # the transition matrices' and the weights' type
    return [
        (posterior_pass, (pi0, P, table.index, table.offsets, loglik)),
        (transition_matrices, (Q, table.lengths)),
        (van_loan_integrals, (Q, table.lengths, P)),
    ]


def update_rates(Q, dwell, jumps) -> np.ndarray:
    """``q_kl = E[N_kl] / E[R_k]``; a state never visited (no dwell time) keeps its rates."""
    Q = np.array(Q)
    for k in range(Q.shape[0]):
        if dwell[k] > _MIN_DWELL:
            Q[k] = jumps[k] / dwell[k]
            Q[k, k] = 0.0
            Q[k, k] = -Q[k].sum()
    return Q


class MJPStats(NamedTuple):
    """Expected statistics summed over sequences (additive: the sum over shards is the whole).

    Attributes:
        log_likelihood: ``sum_i log p(y_i)``.
        dwell: ``(K,)`` expected time spent in each state.
        jumps: ``(K, K)`` expected number of each jump.
        initial: ``(K,)`` ``sum_i gamma_0^i``, the expected initial-state counts.
        observation: the observation model's ``statistics`` (flat).
    """

    log_likelihood: float
    dwell: np.ndarray
    jumps: np.ndarray
    initial: np.ndarray
    observation: np.ndarray


def shard_e_step(params: MJPParams, shard) -> MJPStats:
    """The E-step over the ``(y, times)`` items of ``shard`` (the ``fn`` of :class:`~statespace.distributed.EStep`).

    Raises :class:`~statespace.errors.ImpossibleDataError` naming ``y[i]`` (``i`` within the
    shard) when a sequence has zero probability.
    """
    y = np.concatenate([yi for yi, _ in shard])
    ll, dwell, jumps, gamma, offsets = _e_step(params, y, interval_table([t for _, t in shard]))
    obs = params.observation.statistics([gamma], [y])
    return MJPStats(ll, dwell, jumps, gamma[offsets[:-1]].sum(axis=0), obs)


def m_step(params: MJPParams, stats: MJPStats, learn_initial: bool = True) -> MJPParams:
    """Closed-form maximiser of the expected complete-data log-likelihood, from the summed ``stats``."""
    Q = update_rates(np.asarray(params.Q), stats.dwell, stats.jumps)
    initial = np.asarray(params.initial)
    if learn_initial:
        initial = stats.initial / stats.initial.sum()
    K = Q.shape[0]
    observation = params.observation.m_step_from_statistics(stats.observation, K)
    return MJPParams(Q, initial, observation)


def fit_em(
    params: MJPParams,
    ys,
    times_list,
    max_iter: int = 500,
    tol: float = 1e-9,
    learn_initial: bool = True,
    progress: bool | None = True,
) -> FitResult:
    """Run EM from ``params`` (warm start) on validated data until the relative gain is below ``tol``.

    The E-step runs through :class:`~statespace.distributed.EStep` (in process, or on the
    shards of a Dask cluster inside :func:`statespace.distributed.use`).
    ``log_likelihoods[i]`` is the log-likelihood of the parameters after ``i`` M-steps,
    so ``log_likelihoods[-1]`` is that of the returned parameters. Convergence and a
    drop beyond round-off (stop at the best parameters, warn, ``converged=False``)
    follow ``ConvergenceMonitor``.
    """
    monitor = ConvergenceMonitor(tol, "MJP EM")
    n_iter = 0
    with progress_bar(max_iter, "MJP EM", progress) as bar, EStep(shard_e_step, list(zip(ys, times_list))) as estep:
        stats = estep(params)
        monitor.record(stats.log_likelihood, params)
        for n_iter in range(1, max_iter + 1):  # noqa: B007 (the count is read after the loop)
            params = m_step(params, stats, learn_initial)
            stats = estep(params)
            bar.update(1)
            bar.set_postfix(loglik=f"{stats.log_likelihood:.6g}")
            if monitor.record(stats.log_likelihood, params):
                break
    return monitor.result(n_iter)
