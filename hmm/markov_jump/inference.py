r"""Exact inference for a Markov jump process observed at irregular times.

Sampled at times :math:`t_0 < \dots < t_{T-1}`, the chain is a discrete-time
HMM with time-varying transition matrices :math:`A_t = e^{Q (t_t - t_{t-1})}`,
so the scaled forward-backward kernels of :mod:`hmm.forward_backward` apply
unchanged. Two things make it fast for many sequences:

* transition matrices are computed once per *distinct* interval length
  (:func:`interval_table` groups lengths equal to 1e-10 relative precision, so a
  regular grid, whose ``np.diff`` differs in the last bits, costs one exponential);
* all sequences are concatenated and processed in one compiled call, which also
  accumulates the EM weights :math:`W_u = \sum \xi_t / A_t` per interval length
  (computed as :math:`\alpha_{t-1}(a)\, e^{\ell_t(b) - c_t} \beta_t(b)`, so no
  division by a vanishing transition probability happens on the scaled path).

Every step is divided by its own total as ``hmm.log_space`` does, and a path
too light for float64 that a later observation makes dominant is handled in
log space (:func:`sequence_posteriors`): one extreme observation leaves every
posterior exact. The same per-step quantities give the marginals between
observation times and the posterior paths (:mod:`hmm.markov_jump.model`);
Viterbi comes from :mod:`hmm.inference` (it accepts one matrix per interval).

Data of zero probability (an exact jump the generator forbids, a label no
reachable state emits): the log-likelihood is ``-inf`` and every verb that
conditions on the data raises :class:`~statespace.errors.ImpossibleDataError`
(:func:`raise_if_impossible`), naming the sequence and the first such step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from hmm.forward_backward import _EXP_CLIP, _MIXING, _TINY, backward, forward, impossible_data_error
from hmm.log_space import log_space_posteriors_by_slot
from statespace._numerics.copy import copy_into
from statespace._standalone import standalone

#: Interval lengths closer than this (relative) share one transition matrix.
LENGTH_RTOL = 1e-10


class IntervalTable(NamedTuple):
    """Distinct interval lengths of a set of observation grids.

    Attributes:
        lengths: ``(U,)`` distinct interval lengths.
        index: ``(sum_i (T_i - 1),)`` which length each interval has, sequences concatenated.
        offsets: ``(n_seq + 1,)`` start of each sequence in the concatenated observations
            (sequence ``s``'s intervals start at ``offsets[s] - s`` in ``index``).
    """

    lengths: np.ndarray
    index: np.ndarray
    offsets: np.ndarray


def interval_table(times_list) -> IntervalTable:
    """Group the intervals of all grids by length (see :data:`LENGTH_RTOL`)."""
    sizes = np.array([len(t) for t in times_list], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    dts = np.concatenate([np.diff(t) for t in times_list]) if len(times_list) else np.zeros(0)
    if dts.size == 0:
        return IntervalTable(np.zeros(0), np.zeros(0, dtype=np.int64), offsets)
    order = np.argsort(dts, kind="stable")
    sd = dts[order]
    new_group = np.empty(sd.size, dtype=bool)
    new_group[0] = True
    # Compare with the previous value: a run of near-equal lengths forms one group.
    new_group[1:] = (sd[1:] - sd[:-1]) > LENGTH_RTOL * sd[1:]
    group = np.cumsum(new_group) - 1
    lengths = sd[new_group]
    index = np.empty(dts.size, dtype=np.int64)
    index[order] = group
    return IntervalTable(lengths, index, offsets)


@nb.njit(cache=True)
def _sequence_chain(P, index, offsets, s):
    """``(a, b, A)``: sequence ``s`` spans rows ``a:b`` of the concatenated data, and ``A``
    ``(max(b - a - 1, 1), K, K)`` holds the transition matrices of its ``b - a - 1`` intervals
    (the identity for a sequence of one observation)."""
    a, b = offsets[s], offsets[s + 1]
    start, n = a - s, b - a - 1
    K = P.shape[1]
    A = np.zeros((max(n, 1), K, K))
    if n == 0:
        for k in range(K):
            A[0, k, k] = 1.0
    for t in range(n):
        copy_into(P[index[start + t]], A[t])  # not a slice assignment: that compiles Numba's shape-mismatch message
    return a, b, A


@nb.njit(cache=True)
def sequence_log_likelihoods(pi0, P, index, offsets, loglik):
    """``log p(y_s)`` for every sequence ``s`` (``-inf`` where the data are impossible)."""
    n_seq = offsets.shape[0] - 1
    out = np.empty(n_seq)
    for s in range(n_seq):
        a, b, A = _sequence_chain(P, index, offsets, s)
        ll, _, _ = forward(pi0, A, loglik[a:b])
        out[s] = ll
    return out


@nb.njit(cache=True)
def filtered_marginals(pi0, P, index, offsets, loglik):
    """``(log-likelihood per sequence, p(x_t | y_{0:t}) concatenated (N, K))``."""
    n_seq = offsets.shape[0] - 1
    lls = np.empty(n_seq)
    filt = np.empty(loglik.shape)
    for s in range(n_seq):
        a, b, A = _sequence_chain(P, index, offsets, s)
        ll, f, _ = forward(pi0, A, loglik[a:b])
        lls[s] = ll
        copy_into(f, filt[a:b])
    return lls, filt


@nb.njit(cache=True)
def _needs_log_space(pi0, A, loglik, filt):
    """Whether the scaled backward pass could miss a path that matters (then the posteriors come from log space).

    A chain that mixes (every entry of every ``A_t`` at least ``1e-30``) keeps
    backward messages within ``1e30`` of each other, so a path too light for
    float64 never matters (see :mod:`hmm.forward_backward`). Otherwise a state
    with positive predicted probability, a finite log-likelihood and a filtered
    probability below ``1e-290`` is a path the scaled messages may have lost (it
    can dominate once a later observation rules out the others).
    """
    T, K = loglik.shape
    mixing = True
    for v in A.ravel():
        if not v >= _MIXING:
            mixing = False
            break
    if mixing:
        return False
    pred = np.empty(K)
    for t in range(T):
        for k in range(K):
            pred[k] = pi0[k] if t == 0 else 0.0
        if t > 0:
            At = A[t - 1]
            for i in range(K):
                for k in range(K):
                    pred[k] += filt[t - 1, i] * At[i, k]
        for k in range(K):
            if pred[k] > 0.0 and loglik[t, k] > -np.inf and filt[t, k] < _TINY:
                return True
    return False


@standalone
@nb.njit(cache=True)
def sequence_posteriors(pi0, A, loglik):
    r"""One sequence's ``(log-likelihood, smoothed (T, K), R (T-1, K, K))``, ``A[t-1] = P(t_t - t_{t-1})``.

    ``R[t-1, a, b] = p(x_{t-1}=a, x_t=b | y) / A[t-1, a, b]``, formed as
    :math:`\alpha_{t-1}(a)\, e^{\ell_t(b) - s_t} \beta_t(b) / n_{t-1}` without dividing by a
    (possibly vanishing) transition probability: the EM weights are sums of ``R``
    over the intervals of one length, and the marginal at a time ``s`` between
    ``t_{t-1}`` and ``t_t`` is :math:`\sum_{ab} R_{ab} P(s - t_{t-1})_{ak} P(t_t - s)_{kb}`.

    Each step is normalised as in ``hmm.log_space``: :math:`\gamma_{t-1} \propto
    \alpha_{t-1} \odot \beta_{t-1}` and ``R[t-1]`` are both divided by
    :math:`n_{t-1} = \sum_a \alpha_{t-1}(a) \beta_{t-1}(a)`, the sum of the step's
    :math:`\xi_t` since :math:`\beta_{t-1} = A_t (e^{\ell_t - s_t} \odot \beta_t)`.
    In exact arithmetic :math:`n_{t-1} = 1`; in float64 the forward scale
    :math:`s_t = m_t + \log c_t` is rounded to the spacing of :math:`m_t` (about 1 for
    log-likelihoods near ``-5e15``, one observation ``10^8`` standard deviations
    out), a factor common to step ``t`` and every earlier beta that this division
    removes: every row of the marginals sums to one and every
    :math:`\sum_{ab} R_{ab} A_{ab}` is one, so expected dwell times add up to
    the interval's length. When a path may have been lost to underflow
    (:func:`_needs_log_space`), everything comes from the exact log-space
    recursion of ``hmm.log_space`` instead. Impossible data: ``-inf``, NaN
    marginals and ``R = 0``.
    """
    T, K = loglik.shape
    R = np.zeros((max(T - 1, 0), K, K))
    ll, filt, scale = forward(pi0, A, loglik)
    if ll == -np.inf:
        return ll, np.full((T, K), np.nan), R
    if _needs_log_space(pi0, A, loglik, filt):
        _, _, gamma, xi, _ = log_space_posteriors_by_slot(pi0, A, loglik, np.arange(T - 1), T - 1)
        for t in range(T - 1):
            for i in range(K):
                for j in range(K):
                    if A[t, i, j] > 0.0:
                        R[t, i, j] = xi[t, i, j] / A[t, i, j]
        return ll, gamma, R
    beta = backward(A, loglik, scale)
    gamma = np.empty((T, K))
    tmp = np.empty(K)
    for t in range(T):
        norm = 0.0
        for k in range(K):
            g = filt[t, k] * beta[t, k] if filt[t, k] > 0.0 else 0.0  # beta may overflow where filt is 0
            gamma[t, k] = g
            norm += g
        inv = 1.0 / norm
        for k in range(K):
            gamma[t, k] *= inv
        if t == T - 1:
            break
        for j in range(K):
            tmp[j] = math.exp(min(loglik[t + 1, j] - scale[t + 1], _EXP_CLIP)) * beta[t + 1, j] * inv
        for i in range(K):
            f = filt[t, i]
            if f != 0.0:
                for j in range(K):
                    R[t, i, j] = f * tmp[j]
    return ll, gamma, R


@nb.njit(cache=True)
def posterior_pass(pi0, P, index, offsets, loglik):
    """Forward-backward over all sequences (:func:`sequence_posteriors` for each).

    Returns ``(log-likelihood per sequence, smoothed marginals (N, K), W (U, K, K))``
    with ``W[u, a, b] = sum over intervals of length u of p(x_{t-1}=a, x_t=b | y) / P_u[a, b]``.
    A sequence with impossible data gets ``-inf`` and NaN marginals and adds nothing to ``W``
    (callers then raise with :func:`raise_if_impossible`).
    """
    n_seq = offsets.shape[0] - 1
    U, K = P.shape[0], P.shape[1]
    lls = np.empty(n_seq)
    gamma = np.empty(loglik.shape)
    W = np.zeros((U, K, K))
    for s in range(n_seq):
        a, b, A = _sequence_chain(P, index, offsets, s)
        ll, g, R = sequence_posteriors(pi0, A, loglik[a:b])
        lls[s] = ll
        copy_into(g, gamma[a:b])
        for t in range(b - a - 1):
            Wu, Rt = W[index[a - s + t]], R[t]
            for i in range(K):
                for j in range(K):
                    Wu[i, j] += Rt[i, j]
    return lls, gamma, W


def raise_if_impossible(lls, pi0, P, table: IntervalTable, loglik, grids=None, single: bool = False, name: str = "y"):
    """Raise :class:`~statespace.errors.ImpossibleDataError` if some sequence's log-likelihood is ``-inf``.

    Names the first such sequence (``y[s]``, or ``y`` for a single one) and the
    first time step at which its forward pass found no state both reachable and
    able to emit the observation (with its time when ``grids`` is given).
    """
    bad = np.flatnonzero(~(np.asarray(lls) > -np.inf))
    if bad.size == 0:
        return
    s = int(bad[0])
    a, b, A = _sequence_chain(P, table.index, table.offsets, s)
    raise impossible_data_error(
        name if single else f"{name}[{s}]",
        pi0,
        A,
        loglik[a:b],
        times=None if grids is None else grids[s],
        check="the data, the zero rates of the generator and the observation model",
    )
