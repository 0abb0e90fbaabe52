r"""Conditional SMC: the particle Gibbs kernel for trajectories.

Given a reference trajectory :math:`\zeta_{0:T}` (the current state of the
chain), conditional SMC runs a bootstrap particle filter in which particle 0 is
frozen to the reference:

.. math::

    \xi_0^0 = \zeta_0, \quad \xi_0^i \sim \mu, \qquad
    A_t^i \sim \mathrm{Cat}(\omega_{t-1}),\ \xi_t^i \sim f(\cdot \mid \xi_{t-1}^{A_t^i}) \ (i \ge 1), \quad
    \xi_t^0 = \zeta_t, \qquad \omega_t^i = g(y_t \mid \xi_t^i),

and draws the next reference from the particle system in one of two ways, both
leaving the smoothing distribution :math:`p(x_{0:T} \mid y_{0:T})` invariant:

* **ancestor sampling** (Lindsten, Jordan & Schon 2014, PGAS): the ancestor of
  the frozen particle is redrawn, :math:`A_t^0 \sim \omega_{t-1}^l
  f(\zeta_t \mid \xi_{t-1}^l)`, and the new path is the genealogy of a particle
  drawn from :math:`\omega_T`;
* **backward sampling** (Whiteley 2010): :math:`b_T \sim \omega_T`, then
  :math:`b_t \sim \omega_t^l f(\xi_{t+1}^{b_{t+1}} \mid \xi_t^l)`, the new path
  being :math:`(\xi_t^{b_t})_t` (forward filtering backward sampling on the
  conditional particle system).

Both cost O(T N). Several independent chains run in parallel threads (the
compiled sweep releases the GIL), each with its own generator spawned from
``rng``::

    from statespace import StochasticVolatility
    from smc import particle_gibbs
    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    x, y = sv.sample(200, rng=0)
    res = particle_gibbs(sv, y, n_iter=100, n_particles=32, n_chains=2, rng=1)
    res.trajectories.shape      # (2, 100, 200, 1): chain, draw, time, state

The compiled sweep :func:`conditional_sweep` is shared with PPG
(:mod:`smc.ppg`): it also runs the PaRIS backward statistics when asked.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace import distributed
from statespace._compile import compiled
from statespace._numerics.categorical import draw_from_logits
from statespace._numerics.copy import copy_into
from statespace._numerics.weights import normalise
from statespace.diagnostics import DataTreeGroups
from statespace.errors import DegenerateWeightsError, ParameterError, ShapeError
from statespace.interface import AdditiveFunctional
from statespace.progress import progress_bar
from statespace.validation import as_float_array, as_rng, as_sequences, check_choice, check_fit_options, check_int

from .paris import backward_step, build_alias
from .resampling import multinomial

METHODS = ("backward", "ancestor")


# --------------------------------------------------------------------------
# compiled building blocks
# --------------------------------------------------------------------------
@nb.njit(nogil=True)
def conditional_sweep(
    kernels,
    no_functional,
    h_initial,
    h_step,
    kp,
    hp,
    y,
    ref,
    has_ref,
    ancestor_sampling,
    n_particles,
    n_backward,
    hdim,
    max_tries,
    rng,
):
    """One (conditional) particle filter sweep, with PaRIS statistics when ``n_backward > 0``.

    Particle 0 is frozen to ``ref`` when ``has_ref``; its ancestor is redrawn when
    ``ancestor_sampling``. With ``n_backward = K > 0`` the backward indices of every
    particle are drawn by :func:`smc.paris.backward_step` (accept-reject on the
    transition bound, exact draw after ``max_tries`` proposals) and each particle
    carries the PaRIS statistic :math:`\\tau_t^i = K^{-1} \\sum_j (\\tau_{t-1}^{J_{ij}} +
    h_t(\\xi_{t-1}^{J_{ij}}, \\xi_t^i))`, with ``h_step`` evaluated on ``hp``.

    Returns ``(x, logw, anc, bidx, tau, loglik, status)``: particles ``(T, N, d)``,
    log-weights ``(T, N)``, ancestors ``(T, N)``, backward indices ``(T, N, K)``,
    the final statistics ``(N, hdim)``, the log-likelihood estimate, and a status:
    -1 if fine, ``t >= 0`` if all weights vanished at step ``t``, ``-2 - t`` if the
    transition density exceeded its bound at step ``t``.
    """
    T = y.shape[0]
    d = ref.shape[1]
    N = n_particles
    K = n_backward
    x = np.empty((T, N, d))
    logw = np.empty((T, N))
    anc = np.zeros((T, N), dtype=np.int64)
    bidx = np.zeros((T, N, max(K, 0)), dtype=np.int64)
    tau = np.zeros((N, hdim))
    tau_new = np.zeros((N, hdim))
    hbuf = np.empty(hdim)
    w = np.empty(N)
    wtmp = np.empty(N)
    logits = np.empty(N)
    prob = np.empty(N)
    alias = np.empty(N, dtype=np.int64)
    empty_tau = np.zeros((N, 0))
    empty_h = np.zeros((N, 0))
    fallbacks = np.zeros(N, dtype=np.int64)
    violations = np.zeros(N, dtype=np.int64)
    start = 1 if has_ref else 0

    for i in range(N):
        if i < start:
            copy_into(ref[0], x[0, i])
        else:
            kernels.sample_initial(kp, rng, x[0, i])
        logw[0, i] = kernels.log_emission(kp, 0, x[0, i], y)
        if K > 0:
            h_initial(hp, x[0, i], y, hbuf)
            copy_into(hbuf, tau[i])
    loglik = 0.0
    lse, _ = normalise(logw[0], w)
    if not lse > -np.inf:
        return x, logw, anc, bidx, tau, loglik, 0
    loglik += lse - math.log(N)

    for t in range(1, T):
        copy_into(multinomial(w, N - start, rng), anc[t, start:])
        for i in range(start, N):
            kernels.sample_transition(kp, t, x[t - 1, anc[t, i]], rng, x[t, i])
        if has_ref:
            copy_into(ref[t], x[t, 0])
            if ancestor_sampling:
                for l in range(N):
                    if w[l] > 0:
                        logits[l] = math.log(w[l]) + kernels.log_transition(kp, t, x[t - 1, l], ref[t])
                    else:
                        logits[l] = -np.inf
                a = draw_from_logits(logits, wtmp, rng)
                anc[t, 0] = a if a >= 0 else 0
            else:
                anc[t, 0] = 0
        if K > 0:
            build_alias(w, prob, alias)
            seed = rng.integers(0, 2**62)
            bound = kernels.log_transition_bound(kp, t)
            backward_step(
                kernels,
                no_functional,
                kp,
                t,
                y,
                x[t - 1],
                w,
                empty_tau,
                x[t],
                prob,
                alias,
                K,
                bound,
                max_tries,
                False,
                seed,
                empty_tau,
                empty_h,
                bidx[t],
                fallbacks,
                violations,
            )
            if violations.sum() > 0:
                return x, logw, anc, bidx, tau, loglik, -2 - t
            for i in range(N):
                tau_new[i, :] = 0.0
                for j in range(K):
                    l = bidx[t, i, j]
                    h_step(hp, t, x[t - 1, l], x[t, i], y, hbuf)
                    for k in range(hdim):
                        tau_new[i, k] += tau[l, k] + hbuf[k]
                for k in range(hdim):
                    tau_new[i, k] /= K
            tau, tau_new = tau_new, tau
        for i in range(N):
            logw[t, i] = kernels.log_emission(kp, t, x[t, i], y)
        lse, _ = normalise(logw[t], w)
        if not lse > -np.inf:
            return x, logw, anc, bidx, tau, loglik, t
        loglik += lse - math.log(N)
    return x, logw, anc, bidx, tau, loglik, -1


@nb.njit(cache=True, nogil=True)  # arrays and a generator only: nothing model-specific to record on disk
def trace_ancestry(x, logw, anc, rng):
    """The genealogy of one particle drawn from the final weights (ancestor sampling)."""
    T, N, d = x.shape
    w = np.empty(N)
    b = draw_from_logits(logw[T - 1].copy(), w, rng)
    path = np.empty((T, d))
    for t in range(T - 1, -1, -1):
        copy_into(x[t, b], path[t])
        b = anc[t, b]
    return path


@nb.njit(nogil=True)
def backward_sample(log_transition, kp, x, logw, rng):
    """One trajectory by exact backward sampling on a stored particle system (FFBS)."""
    T, N, d = x.shape
    w = np.empty(N)
    logits = np.empty(N)
    b = draw_from_logits(logw[T - 1].copy(), w, rng)
    path = np.empty((T, d))
    copy_into(x[T - 1, b], path[T - 1])
    for t in range(T - 2, -1, -1):
        for l in range(N):
            logits[l] = logw[t, l] + log_transition(kp, t + 1, x[t, l], path[t + 1])
        b = draw_from_logits(logits, w, rng)
        if b < 0:
            b = 0  # unreachable for a model whose reference path has positive density
        copy_into(x[t, b], path[t])
    return path


@nb.njit(cache=True, nogil=True)
def index_tree_sample(x, logw, bidx, rng):
    """One trajectory read off the PaRIS backward-index tree (a backward-sampling draw at no extra cost)."""
    T, N, d = x.shape
    K = bidx.shape[2]
    w = np.empty(N)
    b = draw_from_logits(logw[T - 1].copy(), w, rng)
    path = np.empty((T, d))
    for t in range(T - 1, -1, -1):
        copy_into(x[t, b], path[t])
        if t > 0:
            b = bidx[t, b, int(rng.random() * K)]
    return path


# not cached: its overloads are keyed on the caller's parameter types, which may live in any module
@nb.njit
def _no_functional_initial(hp, x, y, out):
    pass


@nb.njit
def _no_functional_step(hp, t, x_prev, x, y, out):
    pass


NO_FUNCTIONAL = AdditiveFunctional(_no_functional_initial, _no_functional_step, 0)


# --------------------------------------------------------------------------
# Python face
# --------------------------------------------------------------------------
def run_sweep(
    kernels,
    kp,
    y,
    ref,
    *,
    n_particles,
    functional=NO_FUNCTIONAL,
    hp=None,
    n_backward=0,
    ancestor_sampling=False,
    rng=None,
    max_tries=None,
):
    """Run :func:`conditional_sweep` for one sequence; ``ref=None`` gives an unconditional sweep."""
    has_ref = ref is not None
    if ref is None:
        ref = np.zeros((y.shape[0], kernels.state_dim))
    sweep = compiled(
        conditional_sweep,
        kernels=kernels,
        no_functional=NO_FUNCTIONAL,
        h_initial=functional.initial,
        h_step=functional.step,
    )
    out = sweep(
        kp,
        kp if hp is None else hp,
        y,
        ref,
        has_ref,
        ancestor_sampling,
        int(n_particles),
        int(n_backward),
        int(functional.dim),
        int(n_particles if max_tries is None else max_tries),
        rng,
    )
    status = int(out[-1])
    if status >= 0:
        raise DegenerateWeightsError(status, "in a conditional particle filter sweep")
    if status <= -2:
        raise ParameterError(
            f"log_transition_bound: the transition log-density exceeded the model's bound at time step {-2 - status}"
        )
    return out


def csmc_step(kernels, kp, y, ref, *, n_particles, method="backward", rng=None):
    """One particle Gibbs update of the trajectory: a new path given the reference ``ref``.

    ``ref=None`` runs an unconditional filter and draws a path from it (how
    chains are initialised). Returns ``(path, log_likelihood_estimate)``.
    """
    check_choice("method", method, METHODS)
    n_particles = check_int("n_particles", n_particles, minimum=2)
    x, logw, anc, _, _, loglik, _ = run_sweep(
        kernels, kp, y, ref, n_particles=n_particles, ancestor_sampling=(method == "ancestor"), rng=rng
    )
    if method == "ancestor":
        return trace_ancestry(x, logw, anc, rng), loglik
    return compiled(backward_sample, log_transition=kernels.log_transition)(kp, x, logw, rng), loglik


class ParticleGibbsResult(NamedTuple):
    """Trajectory chains from particle Gibbs.

    Attributes:
        trajectories: ``(n_chains, n_draws, T, state_dim)`` kept draws (``None`` when ``store_paths=False``).
        smoothed_means: ``(T, state_dim)`` average of the kept draws over chains and draws.
        smoothed_vars: ``(T, state_dim)`` their variance (the smoothing marginal variances).
        log_likelihoods: ``(n_chains, n_iter)`` log-likelihood estimate of each conditional sweep.
        update_rates: ``(T,)`` fraction of iterations in which ``x_t`` changed (mixing diagnostic).
        method: ``"backward"`` or ``"ancestor"``.
    """

    trajectories: np.ndarray | None
    smoothed_means: np.ndarray
    smoothed_vars: np.ndarray
    log_likelihoods: np.ndarray
    update_rates: np.ndarray
    method: str

    def datatree_groups(self, state_names=None) -> DataTreeGroups:
        """The kept paths as the ``posterior`` variable ``x`` (dims ``time, state``, the states named by
        ``state_names``) and the sweeps' log-likelihood estimates as ``sample_stats``."""
        if self.trajectories is None:
            raise ShapeError("trajectories: the chain was run with store_paths=False; nothing to convert")
        T, d = self.trajectories.shape[2:]
        coords = {"time": np.arange(T), "state": list(state_names) if state_names else np.arange(d)}
        n_draws = self.trajectories.shape[1]
        return DataTreeGroups(
            {"x": self.trajectories},
            {"log_likelihood_estimate": self.log_likelihoods[:, -n_draws:]},
            {"x": ["time", "state"]},
            coords,
        )


def check_sampler_args(n_iter, n_particles, n_chains, burn_in=0):
    """Validate the options every particle MCMC routine shares; return them as ``int``.

    ``n_particles >= 2`` (one particle is the frozen reference), ``n_iter >= 1``,
    ``n_chains >= 1``, ``0 <= burn_in < n_iter``.
    """
    n_particles = check_int("n_particles", n_particles, minimum=2)
    n_iter = check_fit_options(n_iter, max_iter_name="n_iter")[0]
    n_chains = check_int("n_chains", n_chains, minimum=1)
    burn_in = check_int("burn_in", burn_in, minimum=0)
    if burn_in >= n_iter:
        raise ParameterError(f"burn_in: expected 0 <= burn_in < n_iter = {n_iter}, got {burn_in}")
    return n_iter, n_particles, n_chains, burn_in


def check_reference(ref, T, d, name="reference"):
    ref = as_float_array(name, ref, (1, 2))
    if ref.ndim == 1:
        ref = ref[:, None]
    if ref.shape != (T, d):
        raise ShapeError(f"{name}: expected shape ({T}, {d}) (one state per time step), got {ref.shape}")
    if not np.isfinite(ref).all():
        t = int(np.argwhere(~np.isfinite(ref))[0][0])
        raise ShapeError(f"{name}: non-finite state at time step {t}")
    return np.ascontiguousarray(ref)


def one_sequence(model, y, inputs, routine):
    """``(kernels, y, kernel_params)`` for a routine that takes one observation sequence."""
    k = model.kernels()
    seqs, single = as_sequences("y", y, k.obs_dim)
    if not single:
        raise ShapeError(f"y: {routine} takes one sequence; run it per sequence")
    return k, seqs[0], model.kernel_params(inputs=inputs)


def run_chains(worker, n_chains, rng, n_threads=None):
    """Run ``worker(chain_index, generator)`` for each chain in threads, or as Dask tasks inside
    :func:`statespace.distributed.use`; returns the list of results (the same either way: each
    chain's generator is spawned from ``rng``)."""
    gens = as_rng(rng).spawn(n_chains)
    if n_chains == 1:
        return [worker(0, gens[0])]
    if distributed.active() is not None:
        return distributed.map_jobs(lambda job: worker(*job), list(zip(range(n_chains), gens)))
    with ThreadPoolExecutor(max_workers=n_threads or min(n_chains, os.cpu_count() or 1)) as pool:
        return list(pool.map(worker, range(n_chains), gens))


def particle_gibbs(
    model,
    y,
    n_iter=1000,
    n_particles=64,
    *,
    method="backward",
    n_chains=1,
    burn_in=0,
    reference=None,
    inputs=None,
    store_paths=True,
    rng=None,
    progress=True,
    n_threads=None,
):
    """Particle Gibbs for the trajectory of one sequence at fixed parameters.

    Args:
        model: any :class:`~statespace.interface.StateSpaceModel`.
        y: one observation sequence ``(T, obs_dim)`` (1-D for ``obs_dim == 1``).
        n_iter: iterations per chain (including ``burn_in``).
        n_particles: particles of each conditional sweep (the reference included).
        method: ``"backward"`` (backward sampling) or ``"ancestor"`` (ancestor sampling).
        n_chains: independent chains, run in parallel threads.
        burn_in: iterations discarded from the kept draws and the moments.
        reference: initial reference path ``(T, state_dim)``; default, a draw from an unconditional sweep.
        store_paths: keep every post-burn-in trajectory (memory ``n_chains * n_draws * T * d``).
        rng: seed or Generator; chains use generators spawned from it.
    """
    n_iter, n_particles, n_chains, burn_in = check_sampler_args(n_iter, n_particles, n_chains, burn_in)
    check_choice("method", method, METHODS)
    k, yy, kp = one_sequence(model, y, inputs, "particle_gibbs")
    T, d = yy.shape[0], k.state_dim
    ref0 = None if reference is None else check_reference(reference, T, d)
    n_keep = n_iter - burn_in
    bar = progress_bar(n_iter * n_chains, f"particle Gibbs ({method})", progress)

    def worker(c, g):
        ref = (
            ref0
            if ref0 is not None
            else csmc_step(k, kp, yy, None, n_particles=n_particles, method="backward", rng=g)[0]
        )
        paths = np.empty((n_keep, T, d)) if store_paths else None
        s1 = np.zeros((T, d))
        s2 = np.zeros((T, d))
        lls = np.empty(n_iter)
        moved = np.zeros(T)
        for it in range(n_iter):
            new, lls[it] = csmc_step(k, kp, yy, ref, n_particles=n_particles, method=method, rng=g)
            moved += np.any(new != ref, axis=1)
            ref = new
            if it >= burn_in:
                if store_paths:
                    paths[it - burn_in] = ref
                s1 += ref
                s2 += ref * ref
            bar.update(1)
        return paths, s1, s2, lls, moved

    out = run_chains(worker, n_chains, rng, n_threads)
    bar.close()
    n_tot = n_keep * n_chains
    mean = sum(o[1] for o in out) / n_tot
    var = sum(o[2] for o in out) / n_tot - mean * mean
    return ParticleGibbsResult(
        trajectories=np.stack([o[0] for o in out]) if store_paths else None,
        smoothed_means=mean,
        smoothed_vars=var,
        log_likelihoods=np.stack([o[3] for o in out]),
        update_rates=sum(o[4] for o in out) / (n_iter * n_chains),
        method=method,
    )
