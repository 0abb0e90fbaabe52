r"""Baum-Welch (EM) for hidden Markov models, with partial knowledge.

Each iteration runs forward-backward on every sequence (emission
log-likelihoods plus the log-plausibilities of partial knowledge), sums the
expected complete-data sufficient statistics

.. math::

    \gamma_0(k), \quad N_{ij} = \sum_t \xi_t(i, j), \quad
    \text{emission statistics weighted by } \gamma_t(k) = p(z_t = k \mid y, pl),

and applies the closed-form M-step of the model (:meth:`hmm.model.HMM.m_step`).
The objective is the log-likelihood of the data and the evidence plus the
log-prior (MAP-EM); it never decreases, which the tests check on every model.
Iteration stops when the objective improves by less than
``tol * max(1, |objective|)`` or after ``max_iter`` iterations; should it ever
drop beyond round-off, the run stops at the best parameters with a warning and
``converged=False`` (the library's one rule:
``ConvergenceMonitor``).
"""

from __future__ import annotations

import numpy as np

from statespace.convergence import ConvergenceMonitor
from statespace.interface import FitResult
from statespace.progress import progress_bar

from .forward_backward import forward, impossible_data_error, posteriors


def e_step(model, params, seqs, inputs, log_pls):
    """``(log_likelihood, flat expected statistics)`` summed over sequences."""
    K = model.n_states
    total = 0.0
    stats = model._zero_stats()
    pi_counts = np.zeros(K)
    trans = np.zeros((K, K))
    A = params.A[None]
    for i, (y, u, lp) in enumerate(zip(seqs, inputs, log_pls)):
        ll_mat = model._emission_loglik(params, y, u)
        if lp is not None:
            ll_mat = ll_mat + lp
        ll, _, gamma, counts = posteriors(params.pi0, A, ll_mat, overwrite=True)
        if not ll > -np.inf:
            raise impossible_data_error(f"y[{i}]", params.pi0, A, model._loglik_matrix(params, y, u, lp))
        total += ll
        pi_counts += gamma[0]
        trans += counts
        model._accumulate(params, y, u, gamma, stats)
    return total, np.concatenate([pi_counts, trans.ravel(), model._flat_stats(stats)])


def log_likelihood(model, params, seqs, inputs, log_pls) -> float:
    """``log p(y, pl)`` summed over sequences (forward passes only)."""
    A = params.A[None]
    return float(sum(forward(params.pi0, A, model._loglik_matrix(params, y, u, lp))[0] for y, u, lp in zip(seqs, inputs, log_pls)))


def baum_welch(model, params, seqs, inputs, log_pls, max_iter=100, tol=1e-6, frozen=frozenset(), bar=None) -> FitResult:
    """Run EM from ``params``; ``history[i]`` is the objective at the parameters entering iteration ``i``.

    Stopping and the returned parameters follow ``ConvergenceMonitor``
    (a drop beyond round-off stops the run at the best parameters, with a warning).
    """
    monitor = ConvergenceMonitor(tol, f"Baum-Welch ({type(model).__name__})")
    it = 0
    for it in range(1, max_iter + 1):
        ll, stats = e_step(model, params, seqs, inputs, log_pls)
        obj = ll + model._log_prior(params)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{obj:.6g}")
        if monitor.record(obj, params):
            return monitor.result(it)
        params = model._m_step_params(stats, params, frozen)
    # the final parameters' objective needs only a forward pass
    monitor.record(log_likelihood(model, params, seqs, inputs, log_pls) + model._log_prior(params), params)
    return monitor.result(it)


def fit_with_restarts(model, starts, seqs, inputs, log_pls, max_iter, tol, frozen, progress) -> FitResult:
    """EM from each starting point; keep the run with the best final objective."""
    best = None
    with progress_bar(max_iter * len(starts), "Baum-Welch", progress) as bar:
        for p0 in starts:
            res = baum_welch(model, p0, seqs, inputs, log_pls, max_iter, tol, frozen, bar)
            if best is None or res.log_likelihoods[-1] > best.log_likelihoods[-1]:
                best = res
    return best
