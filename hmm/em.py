r"""The (generalised) EM driver of every discrete chain, and the Baum-Welch E-step.

One iteration at parameters :math:`\theta` sums, over the sequences, the expected
complete-data sufficient statistics given by forward-backward (emission
log-likelihoods plus the log-plausibilities of partial knowledge)

.. math::

    \log p(y \mid \theta), \quad \gamma_0(k), \quad N_{ij} = \sum_t \xi_t(i, j), \quad
    \text{emission statistics weighted by } \gamma_t(k) = p(z_t = k \mid y, pl),

through :class:`statespace.distributed.EStep` (in process, or map-reduce on Dask),
then applies the model's M-step: closed form for the HMM (Baum-Welch, MAP-EM with
the emission's and the transition structure's priors), closed form for ``pi`` and
``A`` plus gradient steps accepted only when they raise the expected complete-data
objective for the deep chains (generalised EM). Either way the objective
(log-likelihood plus log-prior) never decreases. :func:`expectation_maximisation`
stops when it improves by less than ``tol * max(1, |objective|)`` or after
``max_iter`` iterations; should it ever drop beyond round-off, the run stops at the
best parameters with a warning and ``converged=False`` (the library's one rule:
``ConvergenceMonitor``).

The Baum-Welch E-step is the module-level :func:`chain_e_step` (picklable, for the
Dask workers): ``chain_e_step((emission, params), shard)`` with one ``(y, u, log_pl)``
item per sequence returns :class:`ChainStats`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from statespace._parallel_compile import compile_together, first_use
from statespace._ragged import n_threads_for, pack, packed
from statespace._scratch import scratch
from statespace.convergence import ConvergenceMonitor
from statespace.interface import FitResult
from statespace.progress import progress_bar

from .batch import _posteriors_kernel, _shift_rows, batch_posteriors, exact_kernels, posteriors_kernels
from .forward_backward import backward, forward, impossible_data_error, posteriors, two_slice_marginals


class ChainStats(NamedTuple):
    """Expected statistics summed over sequences (additive: the sum over shards is the whole).

    Attributes:
        log_likelihood: ``sum_i log p(y_i, pl_i)``.
        initial: ``(K,)`` ``sum_i gamma_0^i``.
        transitions: ``(K, K)`` expected move counts.
        emission: the emission object's statistics (:meth:`accumulate`), flattened ``(n,)``.
    """

    log_likelihood: float
    initial: np.ndarray
    transitions: np.ndarray
    emission: np.ndarray


def chain_e_step(model_params, shard) -> ChainStats:
    """Forward-backward on the ``(y, u, log_pl)`` items of ``shard`` under ``model_params = (emission, HMMParams)``.

    The shard is one ragged batch (its sequences concatenated, plus offsets): the
    emission log-likelihoods come from one call of the emission object, the posteriors
    of every sequence from one compiled call of :func:`hmm.batch.batch_posteriors`
    (parallel over sequences; one long sequence runs its forward and backward passes
    at once), the emission statistics from one call of ``accumulate``. Each sequence's
    posteriors are exactly those of :func:`hmm.forward_backward.posteriors`.
    Raises :class:`~statespace.errors.ImpossibleDataError` naming ``y[i]`` (``i`` within
    the shard) for the first sequence of zero probability.
    """
    emission, params = model_params
    K = params.pi0.shape[0]
    stats = emission.zero_stats()
    if not shard:
        return ChainStats(0.0, np.zeros(K), np.zeros((K, K)), emission.flat_stats(stats))
    y, u, log_pl, offsets = concatenated(shard, K)
    # into kept scratch, as the posteriors below: an (N, K) block of fresh pages each iteration cost about
    # 4% of a fleet's E-step in process (20,000 x 200 steps, 5 states: 160 MB), more on a Dask worker
    N = y.shape[0]
    loglik = emission.log_likelihood(params.emission, y, u, offsets, out=scratch("hmm.em.loglik", N * K).reshape(N, K))
    if log_pl is not None:
        loglik += log_pl
    # its posteriors are read before the next E-step: the same memory every iteration (reuse)
    post = batch_posteriors(params.pi0, params.A, loglik, offsets, overwrite=True, reuse=True)
    lls = post.log_likelihoods
    impossible = np.flatnonzero(~(lls > -np.inf))
    if impossible.size:
        i = int(impossible[0])
        y_i, u_i, lp_i = shard[i]
        ll_i = emission.log_likelihood(params.emission, y_i, u_i)
        raise impossible_data_error(f"y[{i}]", params.pi0, params.A[None], ll_i if lp_i is None else ll_i + lp_i)
    emission.accumulate(params.emission, y, u, post.smoothed, stats, offsets)
    return ChainStats(
        float(lls.sum()), post.initial_counts(), post.transition_counts.sum(axis=0), emission.flat_stats(stats)
    )


def compile_e_step(emission, K: int, shard) -> int:
    """Before a process's first forward-backward (its first fit), with an empty cache, compile the
    kernels that :func:`chain_e_step` runs on ``shard`` (those of the initialisation's M-step among
    them) side by side, in helper processes (:func:`statespace._parallel_compile.compile_together`),
    before any of them runs, for a ``K``-state chain. Returns the helpers started.

    Compiled one after the other, an autoregressive HMM's first fit of one sequence took 18 s: the
    emission statistics' kernel for the autoregressive rows and the emission log-likelihoods' kernel
    (about 4 s each), then the one-sequence forward-backward (6 s). This process compiles the
    forward-backward's kernels and the emission's small ones; a helper the emission's largest (both of
    them beside the one-sequence forward-backward, the largest alone beside a fleet's lanes, whose
    own kernel is built per ``K`` and compiles at its call). The helper then compiles, without the fit
    waiting, the kernels that only some data need (:func:`hmm.batch.exact_kernels`: the exact log-space
    pass, and behind a fleet's lanes the one-sequence forward-backward): an ARPHMM fitted on soft
    labels sends units down both, which took its first fit and predictions from 28 to 20 s.
    """
    if not first_use(_shift_rows):  # both posterior paths run it: not the process's first fit
        return 0
    y, u, _, offsets = concatenated(shard, K)
    pi0, A = np.full(K, 1.0 / K), np.full((K, K), 1.0 / K)  # any chain of K states
    post = posteriors_kernels(pi0, A, offsets)
    emis = emission.kernels(y, u, offsets)
    away = 2 if post and post[0][0] is _posteriors_kernel else 1
    calls = post + emis[away:] + emis[:away]
    here = len(calls) - min(away, len(emis))
    return compile_together(calls, n_threads_for(None), here, later=exact_kernels(pi0, A, offsets))


def concatenated(shard, K: int):
    """``(y, u, log_pl, offsets)``: the ``(y, u, log_pl)`` items of ``shard`` as one ragged batch
    (``log_pl`` None when no item has partial knowledge, 0 for the items without). One item is used
    as it is, without a copy."""
    if len(shard) == 1:
        y, u, lp = shard[0]
        return y, u, lp, np.array([0, len(y)], dtype=np.int64)
    y, offsets = packed(shard, 0)
    u, _ = packed(shard, 1)
    return y, u, log_pl_block([it[2] for it in shard], offsets, K), offsets


def batched(seqs, inputs, log_pls, K: int):
    """:func:`concatenated` of the sequences, inputs and log-plausibilities given as three lists
    (:class:`~statespace._ragged.Tiled` lists, as the validation makes them, give their blocks
    without a copy)."""
    if len(seqs) == 1:
        return seqs[0], inputs[0], log_pls[0], np.array([0, len(seqs[0])], dtype=np.int64)
    y, offsets = pack(seqs)
    u, _ = pack(inputs)
    return y, u, log_pl_block(log_pls, offsets, K), offsets


def log_pl_block(log_pls: list, offsets: np.ndarray, K: int):
    """The sequences' ``(T_i, K)`` log-plausibilities concatenated (0 for a ``None`` entry), or ``None``
    when every entry is ``None``."""
    if all(lp is None for lp in log_pls):
        return None
    lengths = np.diff(offsets).tolist()
    return np.concatenate([np.zeros((T, K)) if lp is None else lp for lp, T in zip(log_pls, lengths)])


def expectation_maximisation(
    start, e_step, m_step, log_prior, max_iter: int, tol: float, name: str, bar=None
) -> FitResult:
    """Run (generalised) EM from ``start``; ``history[i]`` is the objective at the parameters entering iteration ``i``.

    ``e_step(params)`` returns the summed statistics, the log-likelihood first;
    ``m_step(stats, params)`` the next parameters; ``log_prior(params)`` the prior term
    of the objective. Stopping and the returned parameters follow ``ConvergenceMonitor``.
    """
    monitor = ConvergenceMonitor(tol, name)
    params = start
    it = 0
    for it in range(1, max_iter + 1):
        stats = e_step(params)
        obj = stats[0] + log_prior(params)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{obj:.6g}", refresh=False)
        if monitor.record(obj, params):
            return monitor.result(it)
        params = m_step(stats, params)
    monitor.record(e_step(params)[0] + log_prior(params), params)  # the final parameters' objective
    return monitor.result(it)


def fit_em(
    starts,
    e_step,
    m_step,
    log_prior,
    max_iter: int,
    tol: float,
    name: str,
    label: str,
    progress: bool,
    estep=None,
) -> FitResult:
    """:func:`expectation_maximisation` from each starting point, under one progress bar (``label``);
    keeps the run with the best final objective (the first of equals).

    ``estep`` is the fit's :class:`~statespace.distributed.EStep`: inside a
    :func:`statespace.distributed.use` block, when it says so
    (:meth:`~statespace.distributed.EStep.runs_as_tasks`: several starts, data small
    enough to copy), the runs go side by side as Dask tasks, each computing its E-steps
    in process on its worker; otherwise they run in turn, each E-step on the cluster.
    The runs, and so the result, are the same either way.
    """
    if estep is not None and estep.runs_as_tasks(len(starts)):
        from statespace.distributed import map_jobs

        def run(p0):
            return expectation_maximisation(p0, e_step, m_step, log_prior, max_iter, tol, name)

        with progress_bar(max_iter * len(starts), label, progress) as bar:
            runs = map_jobs(run, starts, on_done=lambda: bar.update(max_iter))
    else:
        with progress_bar(max_iter * len(starts), label, progress) as bar:
            runs = [expectation_maximisation(p0, e_step, m_step, log_prior, max_iter, tol, name, bar) for p0 in starts]
    best = None
    for res in runs:
        if best is None or res.log_likelihoods[-1] > best.log_likelihoods[-1]:
            best = res
    return best


class PerSequence:
    """Arrays of a shard's sequences, in order, whose sum is their concatenation.

    The statistics of a generalised M-step include each sequence's posteriors; with
    ``+`` concatenating, the sum over shards (``statespace.distributed``'s reduction)
    is the whole list, in the order of the items.
    """

    __slots__ = ("arrays",)

    def __init__(self, arrays=()):
        self.arrays = list(arrays)

    def __add__(self, other: PerSequence) -> PerSequence:
        return PerSequence(self.arrays + other.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i):
        return self.arrays[i]

    def __iter__(self):
        return iter(self.arrays)

    def __getstate__(self):
        return self.arrays

    def __setstate__(self, arrays):
        self.arrays = arrays


class PosteriorStats(NamedTuple):
    """What a generalised M-step reads: summed counts plus each sequence's posteriors.

    ``gammas`` (``(T_i, K)`` smoothed marginals) and ``two_slice`` (``(T_i - 1, K, K)``,
    empty unless asked for) hold one entry per sequence in the order of the items
    (:class:`PerSequence`: additive by concatenation).
    """

    log_likelihood: float
    initial: np.ndarray
    transitions: np.ndarray
    gammas: PerSequence
    two_slice: PerSequence


def chain_posteriors(model_params, shard) -> PosteriorStats:
    """Forward-backward on each ``(y, u, log_pl, dt)`` item of ``shard`` under ``model_params = (model, params)``.

    The chain comes from ``model._inference_args``; ``model._two_slice`` asks for the
    per-step two-slice marginals ``(T-1, K, K)`` of each sequence too (a time-varying
    transition network's M-step reads them). Errors name ``y[i]`` within the shard.
    """
    from .chain import ChainData

    model, params = model_params
    data = ChainData.from_items(shard)
    K = model.n_states
    total, pi_counts, trans, gammas, xis = 0.0, np.zeros(K), np.zeros((K, K)), [], []
    for i, pi0, A, ll in model._each(data, params):
        if model._two_slice:
            lik, filt, scale = forward(pi0, A, ll)
            if not lik > -np.inf:
                raise impossible_data_error(f"y[{i}]", pi0, A, ll)
            beta = backward(A, ll, scale)
            gamma = filt * beta  # rows normalised: see two_slice_marginals
            gamma = gamma / gamma.sum(axis=1, keepdims=True)
            xi = two_slice_marginals(A, ll, filt, scale, beta)
            xis.append(xi)
            counts = xi.sum(axis=0) if len(xi) else np.zeros((K, K))
        else:
            lik, _, gamma, counts = posteriors(pi0, A, ll)
            if not lik > -np.inf:
                raise impossible_data_error(f"y[{i}]", pi0, A, ll)
        total += lik
        pi_counts += gamma[0]
        trans += counts
        gammas.append(gamma)
    return PosteriorStats(float(total), pi_counts, trans, PerSequence(gammas), PerSequence(xis))
