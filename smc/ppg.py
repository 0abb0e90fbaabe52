r"""The Parisian particle Gibbs (PPG) sampler: PaRIS driven by conditional SMC.

Target: the smoothed expectation of an additive functional

.. math::

    \Pi(h) = E\Big[h_0(X_0) + \sum_{t=1}^{T-1} h_t(X_{t-1}, X_t) \,\Big|\, y_{0:T-1}\Big].

PaRIS (Olsson & Westerborn 2017) estimates it online: particle :math:`i` at
time :math:`t` carries :math:`\tau_t^i = K^{-1}\sum_{j=1}^K (\tau_{t-1}^{J_t^{i,j}}
+ h_t(\xi_{t-1}^{J_t^{i,j}}, \xi_t^i))` with :math:`J_t^{i,j}` drawn from the
backward kernel :math:`\Lambda_t(i, l) \propto \omega_{t-1}^l f(\xi_t^i \mid \xi_{t-1}^l)`,
and the estimate is :math:`\sum_i \omega_{T-1}^i \tau_{T-1}^i / \sum_i \omega_{T-1}^i`.
Being self-normalised, it is biased, with a bias of order :math:`1/N`.

PPG (Cardoso, Janati El Idrissi, Le Corff, Moulines & Olsson, ICML 2023,
arXiv:2301.00900) makes PaRIS a Markov chain on paths. Iteration :math:`\ell`:

1. run **conditional PaRIS** around the reference path :math:`\zeta[\ell-1]`:
   the forward pass is conditional SMC (particle 0 is frozen to :math:`\zeta_t`,
   its ancestor is not resampled), the backward statistics are the PaRIS ones,
   with :math:`K` backward indices for *every* particle, the frozen one included;
2. record :math:`\hat\Pi_\ell(h) = \sum_i \omega_{T-1}^i \tau_{T-1}^i / \Omega_{T-1}`;
3. draw the next reference :math:`\zeta[\ell]` from the backward-index tree:
   :math:`b_{T-1} \sim \omega_{T-1}`, then :math:`b_{t-1} = J_t^{b_t, U_t}`
   with :math:`U_t` uniform on :math:`1..K`. The indices :math:`J` are exact
   draws of the backward kernel, so this is backward sampling (Whiteley 2010)
   on the conditional particle system: the path chain leaves
   :math:`p(x_{0:T-1} \mid y)` invariant, at no extra cost.

The estimator after :math:`k` iterations with burn-in :math:`k_0` is the average
:math:`(k - k_0)^{-1}\sum_{\ell=k_0+1}^{k} \hat\Pi_\ell(h)`, the paper's
bias-reduced estimator: each term averages :math:`h` over all :math:`N` backward
genealogies instead of the single sampled path (the Rao-Blackwellisation over a
plain particle Gibbs estimate :math:`h(\zeta[\ell])`), and its bias decays
geometrically in :math:`k_0` at the particle Gibbs mixing rate. The initial path
:math:`\zeta[0]` is drawn from the index tree of one unconditional PaRIS pass
(iteration 0, not averaged). Backward indices are drawn by accept-reject on
the transition bound with an exact O(N) fallback after a few failures, so one
iteration costs O(T N K) like one PaRIS pass.

Example::

    from statespace import StochasticVolatility
    from smc import ppg_smoother
    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    x, y = sv.sample(500, rng=0)
    res = ppg_smoother(sv, y, sv.sufficient_statistics(), n_particles=32, n_iter=20, burn_in=5, rng=1)
    res.estimate
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from statespace.diagnostics import DataTreeGroups
from statespace.errors import ShapeError
from statespace.progress import progress_bar
from statespace.validation import as_float_array, as_rng, check_int

from .csmc import check_reference, check_sampler_args, index_tree_sample, one_sequence, run_chains, run_sweep
from .paris import resolve_functional


def ppg_step(kernels, kp, y, ref, functional, *, n_particles, n_backward=2, hp=None, rng=None):
    """One PPG iteration on one sequence: ``(estimate, next_reference, log_likelihood_estimate)``.

    ``ref=None`` runs a plain (unconditional) PaRIS pass, which also draws a path
    from its index tree: the way PPG starts, and PaRIS itself.
    """
    n_backward = check_int("n_backward", n_backward, minimum=1)
    n_particles = check_int("n_particles", n_particles, minimum=2)
    x, logw, _, bidx, tau, loglik, _ = run_sweep(
        kernels, kp, y, ref, n_particles=n_particles, functional=functional, hp=hp, n_backward=n_backward, rng=rng
    )
    w = np.exp(logw[-1] - logw[-1].max())
    estimate = w @ tau / w.sum()
    return estimate, index_tree_sample(x, logw, bidx, rng), loglik


class PPGResult(NamedTuple):
    """Output of :func:`ppg_smoother`.

    Attributes:
        estimate: ``(dim,)`` the PPG estimator, averaged over chains and iterations after ``burn_in``.
        standard_error: ``(dim,)`` Monte Carlo standard error (between-chain when ``n_chains > 1``,
            batch means of one chain otherwise).
        estimates: ``(n_chains, n_iter, dim)`` the conditional PaRIS estimate of each iteration.
        references: ``(n_chains, T, state_dim)`` the last reference path of each chain (warm start).
        log_likelihoods: ``(n_chains, n_iter)`` the forward pass's log-likelihood estimates.
    """

    estimate: np.ndarray
    standard_error: np.ndarray
    estimates: np.ndarray
    references: np.ndarray
    log_likelihoods: np.ndarray

    def datatree_groups(self, state_names=None) -> DataTreeGroups:
        """The per-iteration estimates as the ``posterior`` variable ``estimate`` (dim ``component``) and the
        forward passes' log-likelihood estimates as ``sample_stats``; ``state_names`` is unused."""
        return DataTreeGroups(
            {"estimate": self.estimates},
            {"log_likelihood_estimate": self.log_likelihoods},
            {"estimate": ["component"]},
            {"component": np.arange(self.estimates.shape[2])},
        )


def ppg_smoother(
    model,
    y,
    functional=None,
    n_particles=32,
    n_backward=2,
    n_iter=20,
    burn_in=0,
    *,
    n_chains=1,
    reference=None,
    inputs=None,
    hp=None,
    rng=None,
    progress=True,
    n_threads=None,
):
    """Smoothed expectation of an additive functional by PPG, for one sequence.

    Args:
        model: any :class:`~statespace.interface.StateSpaceModel`.
        y: one observation sequence.
        functional: an :class:`~statespace.interface.AdditiveFunctional`; default,
            the model's sufficient statistics.
        n_particles: N, particles of each conditional pass (the frozen one included).
        n_backward: K, backward draws per particle (2 is the usual choice).
        n_iter: PPG iterations per chain after the initial PaRIS pass.
        burn_in: :math:`k_0`, iterations left out of the average.
        n_chains: independent chains in parallel threads.
        reference: initial reference path ``(T, state_dim)`` (default: drawn from a PaRIS pass),
            or ``(n_chains, T, state_dim)``.
        hp: parameters passed to the functional (default: the model's kernel parameters).
        rng: seed or Generator.
    """
    n_iter, n_particles, n_chains, burn_in = check_sampler_args(n_iter, n_particles, n_chains, burn_in)
    n_backward = check_int("n_backward", n_backward, minimum=1)
    functional = resolve_functional(model, functional)
    k, yy, kp = one_sequence(model, y, inputs, "ppg_smoother")
    T, d = yy.shape[0], k.state_dim
    refs = None
    if reference is not None:
        r = as_float_array("reference", reference, (1, 2, 3))
        if r.ndim == 3 and len(r) != n_chains:
            raise ShapeError(f"reference: expected {n_chains} paths (one per chain), got shape {r.shape}")
        refs = [check_reference(r[c] if r.ndim == 3 else r, T, d) for c in range(n_chains)]
    bar = progress_bar(n_iter * n_chains, "PPG", progress)

    def worker(c, g):
        ref = (
            refs[c]
            if refs is not None
            else ppg_step(k, kp, yy, None, functional, n_particles=n_particles, n_backward=n_backward, hp=hp, rng=g)[1]
        )
        est = np.empty((n_iter, functional.dim))
        lls = np.empty(n_iter)
        for it in range(n_iter):
            est[it], ref, lls[it] = ppg_step(
                k, kp, yy, ref, functional, n_particles=n_particles, n_backward=n_backward, hp=hp, rng=g
            )
            bar.update(1)
        return est, ref, lls

    out = run_chains(worker, n_chains, as_rng(rng), n_threads)
    bar.close()
    estimates = np.stack([o[0] for o in out])
    kept = estimates[:, burn_in:]
    return PPGResult(
        estimate=kept.mean(axis=(0, 1)),
        standard_error=_standard_error(kept),
        estimates=estimates,
        references=np.stack([o[1] for o in out]),
        log_likelihoods=np.stack([o[2] for o in out]),
    )


def _standard_error(kept):
    """Between-chain standard error of the grand mean, or batch means for one chain."""
    n_chains, n, _ = kept.shape
    if n_chains > 1:
        return kept.mean(axis=1).std(axis=0, ddof=1) / np.sqrt(n_chains)
    n_batches = min(n, 10)
    if n_batches < 2:
        return np.full(kept.shape[2], np.nan)
    size = n // n_batches
    means = kept[0, : size * n_batches].reshape(n_batches, size, -1).mean(axis=1)
    return means.std(axis=0, ddof=1) / np.sqrt(n_batches)
