r"""PaRIS: online smoothing of additive functionals (Olsson & Westerborn, Bernoulli 2017).

Target: the smoothed expectation of an additive functional

.. math::

    S_T = h_0(x_0) + \sum_{t=1}^{T-1} h_t(x_{t-1}, x_t), \qquad
    \mathbb E[S_T \mid y_{0:T-1}],

computed online with memory :math:`O(N)` independent of :math:`T`. Alongside a
particle filter :math:`(x_t^i, W_t^i)` (see :mod:`smc.particle_filter`) each particle
carries a statistic :math:`\tau_t^i \approx \mathbb E[S_t \mid x_t = x_t^i, y_{0:t}]`:

.. math::

    \tau_0^i = h_0(x_0^i), \qquad
    \tau_t^i = \frac1K \sum_{k=1}^K \left[\tau_{t-1}^{J_t^{i,k}} + h_t\big(x_{t-1}^{J_t^{i,k}}, x_t^i\big)\right],
    \qquad \widehat{\mathbb E}[S_t \mid y_{0:t}] = \sum_i W_t^i \tau_t^i,

where the :math:`K` indices (default 2) are drawn independently from the
*backward kernel*

.. math::

    \Lambda_t(i, j) = \frac{W_{t-1}^j f_t(x_t^i \mid x_{t-1}^j)}{\sum_\ell W_{t-1}^\ell f_t(x_t^i \mid x_{t-1}^\ell)} .

Computing :math:`\Lambda_t(i,\cdot)` exactly costs :math:`O(N)` per particle
(``backward="exact"``, the :math:`O(N^2)` reference). The default
``backward="hybrid"`` samples it by accept-reject (Douc, Garivier, Moulines &
Olsson 2011): propose :math:`j \sim W_{t-1}` (an alias table, :math:`O(1)` per
draw) and accept with probability :math:`f_t(x_t^i\mid x_{t-1}^j)/\bar f_t`, where
:math:`\bar f_t \ge \sup f_t` is the model's ``log_transition_bound``. Because the
acceptance rate can be tiny for a few particles, at most ``max_trials`` proposals
are made per draw before falling back to the exact kernel for that particle
(the hybrid scheme of Dau & Chopin 2022; default ``max_trials = N``), so a
draw never costs more than about twice the exact one while typical draws cost
:math:`O(1)`. Models without a finite bound use the exact kernel.

K = 1 makes the estimator degenerate (path collapse); K >= 2 gives an
:math:`O(1/\sqrt N)` error uniformly in time (Olsson & Westerborn, Thm 1).

Randomness: the filter draws with the caller's ``numpy.random.Generator``; the
backward step draws one 64-bit seed per time step from it and gives particle
``i`` its own counter-based stream (SplitMix64 of ``seed + i``), so the backward
step can run in parallel over particles (``parallel=True``, numba ``prange``)
and a seed reproduces the result exactly, whatever the number of threads.

Example::

    import smc
    from statespace import StochasticVolatility
    sv = StochasticVolatility()
    x, y = sv.sample(300, rng=0)
    fun = smc.smoothed_marginals_functional(len(y), sv.state_dim)
    res = smc.paris_smoother(sv, y, fun, n_particles=200, rng=1)
    means, variances = smc.split_marginals(res.estimate, len(y), sv.state_dim)

    online = smc.PaRIS(sv, fun, n_particles=200, rng=1)
    for t in range(len(y)):
        est = online.update(y[t])        # E[S_t | y_{0:t}] after each observation

Reusable pieces (particle Gibbs / PPG build on them): :func:`backward_step`
computes the new statistics from the previous particles, weights and
statistics; :func:`build_alias` prepares the proposal of the accept-reject
sampler; :func:`paris_initial` and :func:`paris_advance` are one full PaRIS step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace._compile import compiled
from statespace._numerics.weights import normalise
from statespace.errors import DataError, DegenerateWeightsError, ParameterError, ShapeError
from statespace.interface import AdditiveFunctional
from statespace.validation import as_float_array, as_rng, check_choice, check_int

from .particle_filter import (
    BOOTSTRAP,
    Proposal,
    check_filter_args,
    each_sequence,
    forward_step,
    initial_step,
    prepare_sequences,
    weighted_means,
)

#: A backward draw's cost in filter particle-steps, at the least (hybrid draws, K = 2: about 8 on the
#: scalar linear-Gaussian model, 48 on stochastic volatility): how a fleet decides to use threads.
BACKWARD_DRAW_COST = 8

#: Backward sampling modes (the integer codes the compiled step takes).
BACKWARD_MODES = {"hybrid": 0, "exact": 1}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53


class PaRISResult(NamedTuple):
    """Output of :func:`paris_smoother` on one sequence of length ``T``.

    Attributes:
        estimate: ``(dim,)`` estimate of :math:`\\mathbb E[S_T \\mid y_{0:T-1}]`.
        estimates: ``(T, dim)`` online estimates :math:`\\mathbb E[S_t \\mid y_{0:t}]`.
        log_likelihood: the particle filter's log-likelihood estimate.
        filtered_means: ``(T, state_dim)`` filtered means.
        ess: ``(T,)`` effective sample sizes.
        resampled: ``(T,)`` resampling flags.
        fallback_rate: fraction of backward draws that fell back to the exact kernel
            (1 with ``backward="exact"``).
    """

    estimate: np.ndarray
    estimates: np.ndarray
    log_likelihood: float
    filtered_means: np.ndarray
    ess: np.ndarray
    resampled: np.ndarray
    fallback_rate: float


# --- counter-based random numbers for the parallel backward step -----------------
@nb.njit(inline="always")
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@nb.njit(inline="always")
def _uniform(state):
    """Advance a SplitMix64 state; return ``(new_state, u)`` with ``u`` uniform on [0, 1)."""
    state = state + _GOLDEN
    return state, float(_mix64(state) >> np.uint64(11)) * _TO_UNIT


@nb.njit(cache=True)
def build_alias(W, prob, alias):
    """Walker/Vose alias table of the categorical ``W`` (``O(N)``), written into ``prob`` and ``alias``."""
    N = W.shape[0]
    small = np.empty(N, dtype=np.int64)
    large = np.empty(N, dtype=np.int64)
    ns = 0
    nl = 0
    for j in range(N):
        prob[j] = W[j] * N
        alias[j] = j
        if prob[j] < 1.0:
            small[ns] = j
            ns += 1
        else:
            large[nl] = j
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        l = large[nl - 1]
        alias[s] = l
        prob[l] = prob[l] + prob[s] - 1.0
        if prob[l] < 1.0:
            nl -= 1
            small[ns] = l
            ns += 1
    # leftovers are 1 up to rounding
    for r in range(ns):
        prob[small[r]] = 1.0
    for r in range(nl):
        prob[large[r]] = 1.0


@nb.njit(inline="always")
def _alias_draw(prob, alias, u):
    N = prob.shape[0]
    v = u * N
    j = int(v)
    if j >= N:
        j = N - 1
    return j if v - j < prob[j] else alias[j]


@nb.njit
def _exact_draws(kernels, kp, t, x_prev, W_prev, xi, n_draws, state, out, start, logp):
    """Fill ``out[start:start+n_draws]`` with draws from the exact backward kernel of ``xi``."""
    N = x_prev.shape[0]
    m = -np.inf
    for j in range(N):
        if W_prev[j] > 0.0:
            logp[j] = math.log(W_prev[j]) + kernels.log_transition(kp, t, x_prev[j], xi)
        else:
            logp[j] = -np.inf
        if logp[j] > m:
            m = logp[j]
    total = 0.0
    for j in range(N):
        logp[j] = math.exp(logp[j] - m) if m > -np.inf else W_prev[j]
        total += logp[j]
    for k in range(n_draws):
        state, u = _uniform(state)
        target = u * total
        acc = 0.0
        j = 0
        while j < N - 1:
            acc += logp[j]
            if acc > target:
                break
            j += 1
        out[start + k] = j
    return state


def _backward_step_py(
    kernels,
    functional,
    kp,
    t,
    y,
    x_prev,
    W_prev,
    tau_prev,
    x_new,
    prob,
    alias,
    n_backward,
    log_bound,
    max_trials,
    exact,
    seed,
    tau_new,
    hbuf,
    draws,
    fallbacks,
    violations,
):
    N_new = x_new.shape[0]
    N_prev = x_prev.shape[0]
    p = tau_prev.shape[1]
    K = n_backward
    use_exact = exact or not (log_bound < np.inf)
    for i in nb.prange(N_new):
        state = np.uint64(seed) + np.uint64(i) * _GOLDEN
        state = _mix64(state)
        J = draws[i]
        xi = x_new[i]
        nfb = K if use_exact else 0
        nviol = 0
        if not use_exact:
            for k in range(K):
                accepted = False
                for _ in range(max_trials):
                    state, u = _uniform(state)
                    j = _alias_draw(prob, alias, u)
                    lf = kernels.log_transition(kp, t, x_prev[j], xi) - log_bound
                    if lf > 1e-9:
                        nviol += 1
                    state, v = _uniform(state)
                    if v < math.exp(lf):
                        J[k] = j
                        accepted = True
                        break
                if not accepted:
                    # the remaining draws for this particle come from the exact kernel
                    nfb = K - k
                    break
        if nfb > 0:
            logp = np.empty(N_prev)
            state = _exact_draws(kernels, kp, t, x_prev, W_prev, xi, nfb, state, J, K - nfb, logp)
        fallbacks[i] = nfb
        violations[i] = nviol
        for c in range(p):
            tau_new[i, c] = 0.0
        h = hbuf[i]
        for k in range(K):
            j = J[k]
            functional.step(kp, t, x_prev[j], xi, y, h)
            for c in range(p):
                tau_new[i, c] += tau_prev[j, c] + h[c]
        for c in range(p):
            tau_new[i, c] /= K


backward_step = nb.njit(_backward_step_py)
backward_step.__doc__ = """PaRIS backward step: new statistics ``tau_new`` from the previous generation.

    Args:
        kernels: the model's :class:`~statespace.interface.ModelKernels`.
        functional: an :class:`~statespace.interface.AdditiveFunctional` (its ``step`` is called).
        kp, t, y: kernel parameters, time index of the new particles, observations ``(T, m)``.
        x_prev, W_prev, tau_prev: previous particles ``(N, d)``, normalised weights ``(N,)``,
            statistics ``(N, p)``.
        x_new: new particles ``(M, d)``.
        prob, alias: alias table of ``W_prev`` (:func:`build_alias`; unused when exact).
        n_backward: number ``K`` of backward draws per particle.
        log_bound: ``log_transition_bound(kp, t)``; ``inf`` forces exact sampling.
        max_trials: accept-reject proposals per draw before the exact fallback.
        exact: use the exact ``O(N)``-per-particle backward kernel.
        seed: uint64 seed of this step's counter-based streams (particle ``i`` uses ``seed + i``).
        tau_new: ``(M, p)`` output; hbuf: ``(M, p)`` scratch.
        draws: ``(M, K)`` int64 output: the backward indices ``J`` drawn for each new particle.
        fallbacks, violations: ``(M,)`` int64 outputs: draws that fell back to the exact
            kernel, and proposals whose log-density exceeded ``log_bound`` (a wrong bound).
    """
backward_step_parallel = nb.njit(parallel=True)(_backward_step_py)


@nb.njit
def paris_initial(kernels, proposal, guided, functional, kp, y, rng, x, logw, W, tau):
    """Time 0: draw particles, weight them, set ``tau_0 = h_0(x_0)``; return ``(logsumexp, ess)``."""
    initial_step(kernels, proposal, guided, kp, y, rng, x, logw)
    for i in range(x.shape[0]):
        functional.initial(kp, x[i], y, tau[i])
    return normalise(logw, W)


class _ParisOptions(NamedTuple):
    """The validated options of one PaRIS run (see :func:`paris_smoother`)."""

    threshold: float  # resample when ESS < threshold * N
    scheme: int  # resampling scheme code
    n_backward: int  # K
    max_trials: int  # accept-reject proposals before the exact fallback
    exact: bool  # exact O(N) backward kernel
    guided: bool  # a user proposal, not the transition


class _ParisWork(NamedTuple):
    """Scratch buffers of a PaRIS step for ``N`` particles, ``p`` statistics and ``K`` backward draws."""

    anc: np.ndarray  # (N,) ancestor indices
    prob: np.ndarray  # (N,) alias table: probabilities
    alias: np.ndarray  # (N,) alias table: aliases
    hbuf: np.ndarray  # (N, p) scratch of the functional
    draws: np.ndarray  # (N, K) backward indices
    fallbacks: np.ndarray  # (N,) draws that used the exact kernel
    violations: np.ndarray  # (N,) proposals above the transition bound


@nb.njit(cache=True)
def _paris_work(N, p, K):
    return _ParisWork(
        np.arange(N),
        np.empty(N),
        np.empty(N, dtype=np.int64),
        np.zeros((N, p)),
        np.zeros((N, K), dtype=np.int64),
        np.zeros(N, dtype=np.int64),
        np.zeros(N, dtype=np.int64),
    )


@nb.njit
def paris_advance(
    kernels,
    proposal,
    functional,
    backward,
    kp,
    t,
    y,
    rng,
    x,
    x_new,
    logw,
    W,
    tau,
    tau_new,
    work,
    ess_prev,
    lse_prev,
    opts,
):
    """One PaRIS step ``t-1 -> t`` (filter move, then backward step); returns ``(lse, ess, resampled, n_fb, n_viol)``.

    On return ``x_new``, ``W`` (normalised in place) and ``tau_new`` hold generation ``t``;
    the caller swaps the buffers. On entry ``W`` must hold the normalised weights of ``t-1``, ``logw``
    their unnormalised logarithms and ``lse_prev`` the latter's ``logsumexp`` (see ``smc.particle_filter.forward_step``).
    """
    N = x.shape[0]
    rs = opts.threshold >= 1.0 or ess_prev < opts.threshold * N
    if not opts.exact:
        build_alias(W, work.prob, work.alias)
    # the backward kernel needs W_{t-1}; forward_step only reads W, so keep it until the backward step
    forward_step(kernels, proposal, opts.guided, kp, t, y, x, W, lse_prev, rs, opts.scheme, rng, x_new, logw, work.anc)
    # a 53-bit seed from random(): Generator.integers costs seconds of compilation
    seed = np.int64(rng.random() * 9007199254740992.0)
    log_bound = kernels.log_transition_bound(kp, t)
    backward(
        kernels,
        functional,
        kp,
        t,
        y,
        x,
        W,
        tau,
        x_new,
        work.prob,
        work.alias,
        opts.n_backward,
        log_bound,
        opts.max_trials,
        opts.exact,
        seed,
        tau_new,
        work.hbuf,
        work.draws,
        work.fallbacks,
        work.violations,
    )
    lse, e = normalise(logw, W)
    n_fb = 0
    n_viol = 0
    for i in range(N):
        n_fb += work.fallbacks[i]
        n_viol += work.violations[i]
    return lse, e, rs, n_fb, n_viol


@nb.njit(nogil=True)  # a fleet's sequences run on threads (each_sequence)
def _paris_loop(kernels, proposal, functional, backward, kp, y, N, p, opts, rng):
    # p = functional.dim, an argument: a functional's length varies with the data (smoothed marginals)
    # while its functions do not, and the loop is compiled for the functions only
    T = y.shape[0]
    d = kernels.state_dim
    x = np.empty((N, d))
    x_new = np.empty((N, d))
    logw = np.empty(N)
    W = np.empty(N)
    tau = np.zeros((N, p))
    tau_new = np.zeros((N, p))
    work = _paris_work(N, p, opts.n_backward)
    estimates = np.zeros((T, p))
    means = np.zeros((T, d))
    ess = np.zeros(T)
    resampled = np.zeros(T, dtype=np.bool_)
    loglik = 0.0
    n_fb = 0
    n_viol = 0
    lse, e = paris_initial(kernels, proposal, opts.guided, functional, kp, y, rng, x, logw, W, tau)
    if math.isnan(lse):
        return 0, estimates, loglik, means, ess, resampled, n_fb, n_viol
    loglik += lse - math.log(N)
    ess[0] = e
    _summaries(np.int64(0), x, W, tau, estimates, means)  # not a literal: one specialisation
    for t in range(1, T):
        lse, e, rs, fb, viol = paris_advance(
            kernels, proposal, functional, backward, kp, t, y, rng, x, x_new, logw, W, tau, tau_new, work, e, lse, opts
        )
        x, x_new = x_new, x
        tau, tau_new = tau_new, tau
        n_fb += fb
        n_viol += viol
        if math.isnan(lse):
            return t, estimates, loglik, means, ess, resampled, n_fb, n_viol
        loglik += lse - (math.log(N) if rs else 0.0)
        ess[t] = e
        resampled[t] = rs
        _summaries(t, x, W, tau, estimates, means)
    return -1, estimates, loglik, means, ess, resampled, n_fb, n_viol


class _Steps(NamedTuple):
    """The functions of an :class:`AdditiveFunctional` without its length (passed to the loops at run time)."""

    initial: object
    step: object


def _steps(functional: AdditiveFunctional) -> _Steps:
    return _Steps(functional.initial, functional.step)


@nb.njit(cache=True)
def _summaries(t, x, W, tau, estimates, means):
    """Step ``t``'s estimate of the functional and filtered mean: the weighted means of ``tau`` and ``x``."""
    weighted_means(W, tau, estimates[t])
    weighted_means(W, x, means[t])


# --- the Python layer ----------------------------------------------------------------
def resolve_functional(model, functional) -> AdditiveFunctional:
    """``functional``, or the model's ``sufficient_statistics()`` when it is ``None``, checked."""
    if functional is None:
        try:
            functional = model.sufficient_statistics()
        except NotImplementedError:
            raise ParameterError(
                f"functional: {type(model).__name__} has no built-in sufficient statistics; pass an AdditiveFunctional"
            ) from None
    if not isinstance(functional, AdditiveFunctional):
        raise ParameterError("functional: expected a statespace.AdditiveFunctional(initial, step, dim)")
    return functional


def _check_paris_args(
    model, functional, n_particles, n_backward, backward, max_trials, ess_threshold, resampling, proposal
):
    N, thr, code = check_filter_args(n_particles, ess_threshold, resampling)
    functional = resolve_functional(model, functional)
    K = check_int("n_backward", n_backward, minimum=1)
    check_choice("backward", backward, sorted(BACKWARD_MODES))
    trials = N if max_trials is None else check_int("max_trials", max_trials, minimum=1)
    guided = proposal is not None
    if guided and not isinstance(proposal, Proposal):
        raise ParameterError("proposal: expected a smc.Proposal(sample_initial, log_initial, sample, log_density)")
    opts = _ParisOptions(thr, code, K, trials, BACKWARD_MODES[backward] == 1, guided)
    return functional, N, opts, (proposal if guided else BOOTSTRAP)


def _raise_if_bad(status, n_viol, where=""):
    if n_viol > 0:
        raise ParameterError(
            f"log_transition_bound: {n_viol} transition log-densities exceeded the model's bound{where}; "
            "the accept-reject backward sampler needs a true upper bound (return inf when there is none)"
        )
    if status >= 0:
        raise DegenerateWeightsError(status, where.strip(" ()"))


def paris_smoother(
    model,
    y,
    functional: AdditiveFunctional | None = None,
    n_particles: int = 1000,
    n_backward: int = 2,
    rng=None,
    backward: str = "hybrid",
    max_trials: int | None = None,
    resampling: str = "systematic",
    ess_threshold: float = 0.5,
    proposal: Proposal | None = None,
    inputs=None,
    times=None,
    parallel: bool = False,
):
    """Batch PaRIS: smoothed expectation of an additive functional over one sequence or a list.

    Args:
        model: any :class:`statespace.StateSpaceModel`.
        y: ``(T, obs_dim)`` observations (NaN = missing), or a list of sequences.
        functional: an :class:`~statespace.interface.AdditiveFunctional`; default: the model's
            ``sufficient_statistics()``.
        n_particles: ``N``. n_backward: ``K`` backward draws per particle (default 2).
        rng: ``numpy.random.Generator`` or seed; a list runs on Numba's threads, each sequence on its
            own generator, when it carries enough work (as in :func:`smc.bootstrap_filter`; a PaRIS
            step counts ``1 + BACKWARD_DRAW_COST * n_backward`` filter steps), and never with ``parallel``.
        backward: ``"hybrid"`` (accept-reject with exact fallback, default) or ``"exact"`` (``O(N^2)``).
        max_trials: accept-reject proposals per draw before the fallback (default ``N``, as
            recommended by Dau & Chopin 2022: the cost per draw is then at most about twice the exact one).
        resampling, ess_threshold, proposal, inputs, times: as in :func:`smc.guided_filter`
            (``proposal=None`` is the bootstrap filter).
        parallel: run the backward step over particles with numba ``prange``.

    Returns:
        a :class:`PaRISResult`, or a list of them for a list of sequences.
    """
    functional, N, opts, prop = _check_paris_args(
        model, functional, n_particles, n_backward, backward, max_trials, ess_threshold, resampling, proposal
    )
    kernels, jobs, single = prepare_sequences(model, y, inputs, times)
    step = backward_step_parallel if parallel else backward_step
    results = []
    loop = compiled(_paris_loop, kernels=kernels, proposal=prop, functional=_steps(functional), backward=step)

    def run(i, g):
        kp, ys = jobs[i]
        return loop(kp, ys, N, int(functional.dim), opts, g)

    # with ``parallel`` each sequence's backward step already shares the threads
    work = 0 if parallel else N * (1 + BACKWARD_DRAW_COST * opts.n_backward)
    outs = each_sequence(run, [len(ys) for _, ys in jobs], as_rng(rng), work)
    for s, (out, (_, ys)) in enumerate(zip(outs, jobs)):
        status, estimates, loglik, means, ess, rs, n_fb, n_viol = out
        _raise_if_bad(status, n_viol, "" if single else f" (sequence {s})")
        n_draws = max(1, (len(ys) - 1) * N * opts.n_backward)
        results.append(PaRISResult(estimates[-1].copy(), estimates, float(loglik), means, ess, rs, n_fb / n_draws))
    return results[0] if single else results


class PaRIS:
    """Online PaRIS: feed observations one at a time, read the current smoothed estimate.

    Memory is ``O(N (state_dim + dim))`` plus the observations seen so far (kept
    because emissions may depend on past observations). Arguments as :func:`paris_smoother`;
    ``inputs``/``times`` cover the whole horizon that will be streamed.

    Example::

        from smc import PaRIS
        from statespace import StochasticVolatility
        model = StochasticVolatility()
        _, stream = model.sample(100, rng=0)
        functional = model.sufficient_statistics()   # E[S_t | y_{0:t}] of the M-step's statistics
        online = PaRIS(model, functional, n_particles=200, rng=0)
        for y_t in stream:
            estimate = online.update(y_t)
    """

    def __init__(
        self,
        model,
        functional: AdditiveFunctional | None = None,
        n_particles: int = 1000,
        n_backward: int = 2,
        rng=None,
        backward: str = "hybrid",
        max_trials: int | None = None,
        resampling: str = "systematic",
        ess_threshold: float = 0.5,
        proposal: Proposal | None = None,
        inputs=None,
        times=None,
        parallel: bool = False,
    ):
        self.functional, self.n_particles, self._opts, self._proposal = _check_paris_args(
            model, functional, n_particles, n_backward, backward, max_trials, ess_threshold, resampling, proposal
        )
        self.n_backward = self._opts.n_backward
        self.model = model
        self._kernels = model.kernels()
        self._kp = model.kernel_params(inputs=inputs, times=times)
        self._rng = as_rng(rng)
        step = backward_step_parallel if parallel else backward_step
        fixed = {"kernels": self._kernels, "proposal": self._proposal, "functional": _steps(self.functional)}
        self._initial = compiled(paris_initial, **fixed)
        self._advance = compiled(paris_advance, backward=step, **fixed)
        N, d, p = self.n_particles, self._kernels.state_dim, self.functional.dim
        self._y = np.full((16, self._kernels.obs_dim), np.nan)
        self.t = -1
        self.log_likelihood = 0.0
        self.ess = float(N)
        self._lse = 0.0
        self._n_fb = 0
        self._x, self._x_new = np.empty((N, d)), np.empty((N, d))
        self._logw, self.weights = np.empty(N), np.full(N, 1.0 / N)
        self._tau, self._tau_new = np.zeros((N, p)), np.zeros((N, p))
        self._work = _paris_work(N, p, self.n_backward)

    @property
    def particles(self) -> np.ndarray:
        """``(N, state_dim)`` current particles."""
        return self._x

    @property
    def statistics(self) -> np.ndarray:
        """``(N, dim)`` current per-particle statistics ``tau``."""
        return self._tau

    @property
    def estimate(self) -> np.ndarray:
        """Current estimate of :math:`\\mathbb E[S_t \\mid y_{0:t}]`."""
        return self.weights @ self._tau

    @property
    def fallback_rate(self) -> float:
        """Fraction of backward draws so far that used the exact kernel."""
        return self._n_fb / max(1, self.t * self.n_particles * self.n_backward)

    def update(self, y_t) -> np.ndarray:
        """Assimilate the next observation (``(obs_dim,)``, NaN = missing); return the current estimate."""
        m = self._kernels.obs_dim
        row = as_float_array("y_t", y_t, (0, 1)).reshape(-1)
        if row.shape != (m,):
            raise ParameterError(f"y_t: expected {m} values (one observation), got shape {np.shape(y_t)}")
        if np.isinf(row).any():
            raise DataError(f"y_t: infinite value at time step {self.t + 1} (use NaN for missing)")
        t = self.t + 1
        if t >= len(self._y):
            self._y = np.concatenate([self._y, np.full_like(self._y, np.nan)])
        self._y[t] = row
        y = self._y[: t + 1]
        kp = self._kp
        if t == 0:
            lse, e = self._initial(self._opts.guided, kp, y, self._rng, self._x, self._logw, self.weights, self._tau)
            rs = True
            viol = 0
        else:
            lse, e, rs, fb, viol = self._advance(
                kp,
                t,
                y,
                self._rng,
                self._x,
                self._x_new,
                self._logw,
                self.weights,
                self._tau,
                self._tau_new,
                self._work,
                self.ess,
                self._lse,
                self._opts,
            )
            self._x, self._x_new = self._x_new, self._x
            self._tau, self._tau_new = self._tau_new, self._tau
            self._n_fb += fb
        _raise_if_bad(t if math.isnan(lse) else -1, viol)
        self._lse = lse  # the log-weights' normaliser, which the next move subtracts
        self.t = t
        self.ess = e
        self.log_likelihood += lse - (math.log(self.n_particles) if rs else 0.0)
        return self.estimate


# --- a built-in functional: smoothed marginal moments ---------------------------------
@nb.njit(cache=True)
def _marginals_write(t, x, out):
    d = x.shape[0]
    half = out.shape[0] // 2
    for c in range(out.shape[0]):
        out[c] = 0.0
    for k in range(d):
        out[t * d + k] = x[k]
        out[half + t * d + k] = x[k] * x[k]


@nb.njit
def _marginals_initial(kp, x, y, out):
    _marginals_write(np.int64(0), x, out)


@nb.njit
def _marginals_step(kp, t, x_prev, x, y, out):
    _marginals_write(t, x, out)


def smoothed_marginals_functional(T: int, state_dim: int = 1) -> AdditiveFunctional:
    r"""The functional :math:`\sum_t e_t \otimes (x_t, x_t^2)` whose smoothed value holds every
    marginal mean and second moment :math:`\mathbb E[x_t \mid y_{0:T-1}]`, :math:`\mathbb E[x_t^2 \mid y_{0:T-1}]`.

    Its dimension is ``2 T state_dim``, so a PaRIS pass costs ``O(N T^2)``: meant for
    moderate ``T`` (plots, checks); split the result with :func:`split_marginals`.
    """
    T, d = check_int("T", T, minimum=1), check_int("state_dim", state_dim, minimum=1)
    return AdditiveFunctional(_marginals_initial, _marginals_step, 2 * T * d)


def split_marginals(estimate, T: int, state_dim: int = 1):
    """``(means, variances)`` of shapes ``(T, state_dim)`` from a :func:`smoothed_marginals_functional` estimate."""
    T, state_dim = check_int("T", T, minimum=1), check_int("state_dim", state_dim, minimum=1)
    est = as_float_array("estimate", estimate, 1)
    half = T * state_dim
    if est.shape != (2 * half,):
        raise ShapeError(f"estimate: expected shape ({2 * half},) for T={T}, state_dim={state_dim}, got {est.shape}")
    means = est[:half].reshape(T, state_dim)
    variances = np.maximum(est[half:].reshape(T, state_dim) - means**2, 0.0)
    return means, variances
