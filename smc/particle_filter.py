r"""Bootstrap and guided particle filters for any model of the shared interface.

For a state-space model :math:`x_0 \sim \mu`, :math:`x_t \mid x_{t-1} \sim f_t(\cdot\mid x_{t-1})`,
:math:`y_t \mid x_t \sim g_t(\cdot\mid x_t)` and a proposal :math:`q_0(x_0)`,
:math:`q_t(x_t \mid x_{t-1})` (both may look at the observations), the filter
carries weighted particles :math:`(x_t^n, W_t^n)_{n=1}^N` approximating
:math:`p(x_t \mid y_{0:t})`:

1. :math:`x_0^n \sim q_0`, :math:`w_0^n = \mu(x_0^n) g_0(y_0\mid x_0^n) / q_0(x_0^n)`.
2. For :math:`t \ge 1`: if :math:`\mathrm{ESS}_{t-1} = 1/\sum_n (W_{t-1}^n)^2 < \kappa N`,
   resample ancestors :math:`A_t^n \sim W_{t-1}` and reset :math:`\hat W^n = 1/N`;
   otherwise :math:`A_t^n = n`, :math:`\hat W^n = W_{t-1}^n`. Then move and reweight

   .. math::

       x_t^n \sim q_t(\cdot \mid x_{t-1}^{A_t^n}), \qquad
       w_t^n = \hat W^{n}\, \frac{f_t(x_t^n \mid x_{t-1}^{A_t^n})\, g_t(y_t \mid x_t^n)}
                               {q_t(x_t^n \mid x_{t-1}^{A_t^n})}, \qquad
       W_t^n = w_t^n / \textstyle\sum_m w_t^m .

The bootstrap filter is :math:`q = f` (the ratio cancels). The likelihood estimate
:math:`\hat p(y_{0:T-1}) = \prod_t \sum_n w_t^n` (with :math:`\hat W = 1/N` at
:math:`t=0`) is unbiased. A missing observation (a row of NaN) has
:math:`g_t = 1`: the bootstrap weights are left unchanged.

Everything after validation runs in one compiled loop specialised on the model's
kernels (:class:`statespace.interface.ModelKernels`), the proposal and the
user's test function (through :func:`statespace._compile.compiled`, which caches it
on disk); weights stay in log space. Example::

    import smc
    from statespace import StochasticVolatility
    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    x, y = sv.sample(500, rng=0)
    res = smc.bootstrap_filter(sv, y, n_particles=1000, rng=1)
    res.log_likelihood, res.filtered_means[:, 0], res.ess

Large filters (``N >= PARALLEL_MIN_PARTICLES``) move their particles in
``PARTICLE_BLOCKS`` blocks, each drawing from its own generator seeded from the
caller's, in parallel over Numba's threads: the same numbers on any number of
threads (:func:`particle_streams`). A list of smaller filters (a fleet) that
carry enough work gives each sequence its own generator seeded from the caller's
and runs the sequences on Numba's threads (:func:`each_sequence`): again the
same numbers on any number of threads.

Design: :func:`initial_step` and :func:`forward_step` (:func:`carry`, then
:func:`move`) are the reusable compiled pieces (PaRIS and conditional SMC build on
them); the public functions are a thin validated layer over :func:`filter_loop`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from statespace._compile import compiled, refcount_free
from statespace._numerics.copy import copy_into
from statespace._numerics.weights import normalise
from statespace._ragged import run_items
from statespace.errors import DataError, DegenerateWeightsError, ParameterError, ShapeError
from statespace.validation import as_float_array, as_rng, as_sequences, check_int, check_real, split_batch

from .resampling import resample_into, scheme_code


class Proposal(NamedTuple):
    r"""A user proposal for :func:`guided_filter`, as compiled functions.

    ``y`` is the whole ``(T, obs_dim)`` observation array (look at ``y[t]``; NaN is missing).

    Attributes:
        sample_initial: ``sample_initial(kp, y, rng, x_out)`` draws :math:`x_0 \sim q_0`.
        log_initial: ``log_initial(kp, y, x) -> float`` is :math:`\log q_0(x_0)`.
        sample: ``sample(kp, t, x_prev, y, rng, x_out)`` draws :math:`x_t \sim q_t(\cdot\mid x_{t-1})`.
        log_density: ``log_density(kp, t, x_prev, x, y) -> float`` is :math:`\log q_t(x_t\mid x_{t-1})`.
    """

    sample_initial: Any
    log_initial: Any
    sample: Any
    log_density: Any


class StateFunction(NamedTuple):
    r"""A compiled test function :math:`\varphi_t(x_t)` whose filtered mean is recorded.

    Attributes:
        fn: ``fn(kp, t, x, out)`` writes (overwrites) :math:`\varphi_t(x_t)` into ``out`` (``(dim,)``).
        dim: length of the value.
    """

    fn: Any
    dim: int


class ParticleFilterResult(NamedTuple):
    """Output of a particle filter on one sequence of length ``T`` with ``N`` particles.

    Attributes:
        log_likelihood: the estimate of :math:`\\log p(y_{0:T-1})` (its exponential is unbiased).
        log_likelihood_increments: ``(T,)`` estimates of :math:`\\log p(y_t \\mid y_{0:t-1})`.
        filtered_means: ``(T, state_dim)`` filtered means.
        filtered_covs: ``(T, state_dim, state_dim)`` filtered covariances.
        filtered_probs: ``(T, n_states)`` filtered state probabilities (discrete models), else ``None``.
        filtered_moments: ``(T, dim)`` filtered means of the test function, else ``None``.
        ess: ``(T,)`` effective sample size of the weights after reweighting at ``t``.
        resampled: ``(T,)`` whether resampling happened before moving to ``t`` (``False`` at 0).
        particles: ``(N, state_dim)`` particles at the last step.
        log_weights: ``(N,)`` normalised log-weights at the last step.
        ancestors: ``(T, N)`` ancestor indices (``ancestors[t, n]`` is the parent at ``t-1``
            of particle ``n`` at ``t``; row 0 is the identity) when ``return_history``, else ``None``.
        particle_history: ``(T, N, state_dim)`` all particles when ``return_history``, else ``None``.
        log_weight_history: ``(T, N)`` normalised log-weights when ``return_history``, else ``None``.
    """

    log_likelihood: float
    log_likelihood_increments: np.ndarray
    filtered_means: np.ndarray
    filtered_covs: np.ndarray
    filtered_probs: np.ndarray | None
    filtered_moments: np.ndarray | None
    ess: np.ndarray
    resampled: np.ndarray
    particles: np.ndarray
    log_weights: np.ndarray
    ancestors: np.ndarray | None
    particle_history: np.ndarray | None
    log_weight_history: np.ndarray | None


# --- placeholders so that one compiled loop serves the bootstrap and guided filters ---
# Not cached on disk: they are generic over the user's ``kp`` type, and an on-disk index that records a
# user-defined NamedTuple breaks every later process in which its module is not importable.
@nb.njit
def _no_sample_initial(kp, y, rng, x_out):
    pass


@nb.njit
def _no_log_initial(kp, y, x):
    return 0.0


@nb.njit
def _no_sample(kp, t, x_prev, y, rng, x_out):
    pass


@nb.njit
def _no_log_density(kp, t, x_prev, x, y):
    return 0.0


@nb.njit
def _no_function(kp, t, x, out):
    pass


#: The proposal passed to the compiled loops by the bootstrap filter (never called).
BOOTSTRAP = Proposal(_no_sample_initial, _no_log_initial, _no_sample, _no_log_density)
NO_FUNCTION = StateFunction(_no_function, 0)


# --- compiled building blocks ----------------------------------------------------
@nb.njit
def initial_step(kernels, proposal, guided, kp, y, rng, x, logw):
    """Draw ``x_0`` (``(N, d)``, in place) and write its log-weights into ``logw``."""
    t0 = np.int64(0)  # a literal 0 would compile the kernels once more
    for n in range(x.shape[0]):
        if guided:
            proposal.sample_initial(kp, y, rng, x[n])
            logw[n] = (
                kernels.log_initial(kp, x[n])
                + kernels.log_emission(kp, t0, x[n], y)
                - proposal.log_initial(kp, y, x[n])
            )
        else:
            kernels.sample_initial(kp, rng, x[n])
            logw[n] = kernels.log_emission(kp, t0, x[n], y)


def _reweight(kernels, kp, t, x, y, logw):
    """``logw[n] += log g_t(y_t | x^n)`` for every particle: the bootstrap weights onto the carried ones."""
    for n in range(x.shape[0]):
        logw[n] += kernels.log_emission(kp, t, x[n], y)


#: The bootstrap reweighting loop, compiled without reference counting. Each ``x[n]`` passed to the
#: emission density is a view, whose reference count costs two atomic operations per particle, and
#: those also keep LLVM from vectorising the loop; without them a branch-free density (stochastic
#: volatility's, the linear-Gaussian one) runs several particles per instruction.
#:
#: A density compiled *from* this loop would inherit the option and could not allocate. It never is:
#: :func:`move` calls the density itself (its guided branch) before this loop, so Numba has
#: compiled it with reference counting by the time this loop is typed, and this loop calls that
#: version (an allocating density is tested through the filter and PaRIS).
_reweight_free = nb.njit(**refcount_free())(_reweight)


@nb.njit
def forward_step(
    kernels, proposal, guided, kp, t, y, x_prev, W_prev, lse_prev, resample, scheme, rng, x_new, logw_new, ancestors
):
    """One move-and-reweight step of the filter, from ``t-1`` to ``t``.

    Resamples the ancestors (written into ``ancestors``) when ``resample`` is true,
    otherwise keeps ``ancestors[n] = n`` and carries the previous normalised
    weights. Writes the new particles into ``x_new`` and unnormalised
    log-weights into ``logw_new``, scaled so that ``logsumexp(logw_new)`` minus
    ``log N`` (after resampling) or minus 0 (without) is the log-likelihood increment.

    On entry ``logw_new`` holds the previous step's unnormalised log-weights, whose
    ``logsumexp`` is ``lse_prev`` (``W_prev`` normalises them). The carried normalised
    log-weight is then ``logw_new[n] - lse_prev``, a subtraction that vectorises, where
    ``log(W_prev[n])`` is a libm call per particle (about 3.5 us per step of 1,000
    particles, on the majority of steps that do not resample).
    """
    carry(resample, scheme, W_prev, lse_prev, rng, logw_new, ancestors)
    move(kernels, proposal, guided, kp, t, y, x_prev, ancestors, rng, x_new, logw_new)


@nb.njit(inline="always")
def carry(resample, scheme, W_prev, lse_prev, rng, logw_new, ancestors):
    """The first half of :func:`forward_step`: the ancestors, and the weights they carry into ``logw_new``."""
    if resample:
        resample_into(scheme, W_prev, rng, ancestors)
        for n in range(ancestors.shape[0]):
            logw_new[n] = 0.0
    else:
        for n in range(ancestors.shape[0]):
            ancestors[n] = n
            logw_new[n] -= lse_prev


@nb.njit(inline="always")
def move(kernels, proposal, guided, kp, t, y, x_prev, ancestors, rng, x_new, logw_new):
    """The second half of :func:`forward_step`: ``x_new[n]`` drawn from its ancestor ``x_prev[ancestors[n]]``
    and its incremental weight added to ``logw_new[n]``, for every ``n`` of ``x_new`` (all the particles,
    or one block of them: the three arrays may be slices of one block)."""
    N = x_new.shape[0]
    # branches hoisted out of the particle loops, so that each loop body is branch-free and vectorises
    if guided:
        for n in range(N):
            a = ancestors[n]
            proposal.sample(kp, t, x_prev[a], y, rng, x_new[n])
            logw_new[n] += (
                kernels.log_transition(kp, t, x_prev[a], x_new[n])
                - proposal.log_density(kp, t, x_prev[a], x_new[n], y)
                + kernels.log_emission(kp, t, x_new[n], y)
            )
    else:
        for n in range(N):
            kernels.sample_transition(kp, t, x_prev[ancestors[n]], rng, x_new[n])
        _reweight_free(kernels, kp, t, x_new, y, logw_new)


# --- the particles in blocks, each with its own random stream (large N) -------------------
#: Fewest particles from which the filters draw them in :data:`PARTICLE_BLOCKS` blocks, each from its
#: own random stream, and move them in parallel when Numba has more than one thread.
PARALLEL_MIN_PARTICLES = 8192

#: Blocks of a large filter's particles: a fixed number, so that the streams, and the results, depend
#: on ``N`` and the seed alone, not on the machine's threads, and one compiled loop serves every ``N``
#: (a tuple of streams is typed by its length). It bounds the threads a filter uses; the loop's first
#: compilation grows with it (a fresh cache's first large filter: 12.5 s with 8 blocks, 14.7 s with 16).
PARTICLE_BLOCKS = 8


@nb.njit(inline="always")
def step_one(
    kernels,
    proposal,
    guided,
    kp,
    t,
    y,
    x_prev,
    W_prev,
    lse_prev,
    resample,
    scheme,
    rng,
    streams,
    bounds,
    x_new,
    logw_new,
    ancestors,
):
    """:func:`forward_step` of every particle from the caller's generator (below :data:`PARALLEL_MIN_PARTICLES`)."""
    forward_step(
        kernels, proposal, guided, kp, t, y, x_prev, W_prev, lse_prev, resample, scheme, rng, x_new, logw_new, ancestors
    )


def _step_blocks_py(
    kernels,
    proposal,
    guided,
    kp,
    t,
    y,
    x_prev,
    W_prev,
    lse_prev,
    resample,
    scheme,
    rng,
    streams,
    bounds,
    x_new,
    logw_new,
    ancestors,
):
    carry(resample, scheme, W_prev, lse_prev, rng, logw_new, ancestors)
    # block b draws from streams[b] alone, in its particles' order: the numbers do not depend on which
    # thread runs which block, or on how many threads there are
    for b in nb.prange(len(bounds) - 1):
        lo, hi = bounds[b], bounds[b + 1]
        move(kernels, proposal, guided, kp, t, y, x_prev, ancestors[lo:hi], streams[b], x_new[lo:hi], logw_new[lo:hi])


# module-level names: the generated loops import the kernels they call by name (cached on disk)
step_blocks = nb.njit(_step_blocks_py)
step_blocks_parallel = nb.njit(parallel=True)(_step_blocks_py)


def particle_step(N: int):
    """The step of the compiled loop for a filter of ``N`` particles: :func:`step_one` below
    :data:`PARALLEL_MIN_PARTICLES`; from it on ``step_blocks``, or ``step_blocks_parallel`` when Numba
    has more than one thread (the same numbers).

    Called from several Python threads at once, the parallel loops need Numba's ``omp`` or ``tbb``
    threading layer (its ``workqueue`` layer cannot serve two at a time); or ``numba.set_num_threads(1)``
    in those threads, which gives the same numbers.
    """
    if N < PARALLEL_MIN_PARTICLES:
        return step_one
    return step_blocks_parallel if nb.get_num_threads() > 1 else step_blocks


def particle_streams(N: int, rng: np.random.Generator):
    """``(streams, bounds)`` for one run of a filter of ``N`` particles: below
    :data:`PARALLEL_MIN_PARTICLES`, no streams of its own (every draw from ``rng``, as one loop over the
    particles); from it on, :data:`PARTICLE_BLOCKS` generators of ``rng``'s kind seeded from ``rng``
    (which then keeps drawing the first particles and the resampling) and the blocks' bounds."""
    if N < PARALLEL_MIN_PARTICLES:
        return (), np.array([0, N], dtype=np.int64)
    streams = tuple(child_generators(rng, PARTICLE_BLOCKS))
    return streams, np.linspace(0, N, PARTICLE_BLOCKS + 1).astype(np.int64)


def child_generators(rng: np.random.Generator, n: int) -> list:
    """``n`` independent generators of ``rng``'s kind, seeded (``numpy.random.SeedSequence.spawn``) from
    four draws of ``rng``: they depend on ``rng``'s state alone, as every other draw of a run does."""
    seeds = np.random.SeedSequence(rng.integers(0, 2**63, size=4).tolist()).spawn(n)
    kind = type(rng.bit_generator)
    return [np.random.Generator(kind(s)) for s in seeds]


#: Fewest particle-steps per sequence (its mean length times the work of a step, in filter
#: particle-steps) from which a list's sequences run on threads. Below it the Python around each
#: compiled call, which holds the GIL, costs more on two threads than on one (a fleet of 1,000 SV
#: filters of N = 100: 0.70x at T = 20, 0.89x at 50; N = 200: 1.46x at T = 50, 1.61x at 100), and
#: a generator per sequence would cost more than the filter (about 25 us: seeding, and Numba's first
#: look at a new generator).
PARALLEL_MIN_SEQUENCE_WORK = 8192


def threaded_fleet(lengths, work_per_step: float) -> bool:
    """Whether a list of sequences of these ``lengths`` runs on threads, each sequence on its own
    generator: several sequences carrying at least :data:`PARALLEL_MIN_SEQUENCE_WORK` filter
    particle-steps each on average (``work_per_step`` per time step). Sizes alone decide, never the
    machine: the numbers do not depend on the threads."""
    n = len(lengths)
    return n > 1 and work_per_step * sum(lengths) >= PARALLEL_MIN_SEQUENCE_WORK * n


def each_sequence(run, lengths, rng: np.random.Generator, work_per_step: float) -> list:
    """``[run(i, g_i) for each sequence i]``, ``run`` calling a compiled loop that releases the GIL.

    When :func:`threaded_fleet` (``work_per_step`` 0: never), ``g_i`` is sequence ``i``'s own
    generator (:func:`child_generators`) and the sequences run on Numba's threads
    (:func:`statespace._ragged.run_items`, cut by their ``lengths``); otherwise they run one after
    another, all on ``rng`` (as one long run would). Either way the same numbers on any number of
    threads.
    """
    if not threaded_fleet(lengths, work_per_step):
        return [run(i, rng) for i in range(len(lengths))]
    gens = child_generators(rng, len(lengths))
    return run_items(lambda i: run(i, gens[i]), lengths)


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def weighted_means(W, x, out):
    """``out[k] = sum_n W[n] x[n, k]``: the weighted mean of each column of ``x`` (``W`` normalised).

    Each sum runs in a local rather than in ``out``, and is reassociated, so LLVM vectorises it.
    """
    N, d = x.shape
    for k in range(d):
        s = 0.0
        for n in range(N):
            s += W[n] * x[n, k]
        out[k] = s


@nb.njit(fastmath={"reassoc", "contract"})
def _record_moments(kernels, fn, kp, t, x, W, means, covs, probs, moments, fbuf):
    N, d = x.shape
    weighted_means(W, x, means[t])
    # locals rather than array reads in the particle loops, and reassociation, so LLVM can vectorise the sums
    for k in range(d):
        mk = means[t, k]
        for l in range(k + 1):
            ml = means[t, l]
            s = 0.0
            for n in range(N):
                s += W[n] * (x[n, k] - mk) * (x[n, l] - ml)
            covs[t, k, l] = s
            covs[t, l, k] = s
    if kernels.n_states > 0:
        for k in range(probs.shape[1]):
            probs[t, k] = 0.0
        for n in range(N):
            probs[t, int(x[n, 0])] += W[n]
    p = moments.shape[1]
    if p > 0:
        for j in range(p):
            moments[t, j] = 0.0
        for n in range(N):
            fn(kp, t, x[n], fbuf)
            for j in range(p):
                moments[t, j] += W[n] * fbuf[j]


@nb.njit(cache=True)
def _store(t, anc, x, logw, lse, anc_hist, x_hist, lw_hist):
    copy_into(anc, anc_hist[t])
    copy_into(x, x_hist[t])
    for n in range(x.shape[0]):
        lw_hist[t, n] = logw[n] - lse


@nb.njit(nogil=True)  # a fleet's sequences run on threads (each_sequence)
def filter_loop(
    kernels, proposal, guided, fn, step, fdim, kp, y, N, threshold, scheme, rng, streams, bounds, keep_history
):
    """The whole filter in one compiled loop. Returns a tuple; ``status >= 0`` is the degenerate step.

    ``step`` is :func:`forward_step` for the layout of the particles (:func:`particle_step`),
    ``streams`` and ``bounds`` are :func:`particle_streams`'s; ``rng`` draws the first particles and the resampling."""
    T = y.shape[0]
    d = kernels.state_dim
    K = kernels.n_states
    incs = np.zeros(T)
    means = np.zeros((T, d))
    covs = np.zeros((T, d, d))
    probs = np.zeros((T, K if K > 0 else 0))
    moments = np.zeros((T, fdim))
    fbuf = np.zeros(fdim)
    ess = np.zeros(T)
    resampled = np.zeros(T, dtype=np.bool_)
    H = T if keep_history else 1
    anc_hist = np.zeros((H, N), dtype=np.int64)
    x_hist = np.zeros((H, N, d))
    lw_hist = np.zeros((H, N))
    x = np.empty((N, d))
    x_new = np.empty((N, d))
    logw = np.empty(N)
    W = np.empty(N)
    anc = np.arange(N)
    initial_step(kernels, proposal, guided, kp, y, rng, x, logw)
    lse, e = normalise(logw, W)
    if math.isnan(lse):
        return 0, incs, means, covs, probs, moments, ess, resampled, x, logw, anc_hist, x_hist, lw_hist
    incs[0] = lse - math.log(N)
    ess[0] = e
    t0 = np.int64(0)  # not a literal: one specialisation of the callees
    _record_moments(kernels, fn, kp, t0, x, W, means, covs, probs, moments, fbuf)
    if keep_history:
        _store(t0, anc, x, logw, lse, anc_hist, x_hist, lw_hist)
    for t in range(1, T):
        rs = threshold >= 1.0 or e < threshold * N
        step(kernels, proposal, guided, kp, t, y, x, W, lse, rs, scheme, rng, streams, bounds, x_new, logw, anc)
        x, x_new = x_new, x
        lse, e = normalise(logw, W)
        if math.isnan(lse):
            return t, incs, means, covs, probs, moments, ess, resampled, x, logw, anc_hist, x_hist, lw_hist
        incs[t] = lse - (math.log(N) if rs else 0.0)
        ess[t] = e
        resampled[t] = rs
        _record_moments(kernels, fn, kp, t, x, W, means, covs, probs, moments, fbuf)
        if keep_history:
            _store(t, anc, x, logw, lse, anc_hist, x_hist, lw_hist)
    for n in range(N):
        logw[n] -= lse
    return -1, incs, means, covs, probs, moments, ess, resampled, x, logw, anc_hist, x_hist, lw_hist


# --- validation shared by the particle routines -----------------------------------
def align_with_sequences(name, value, seqs, single):
    """``value`` (``inputs`` or ``times``) as one finite array per observation sequence.

    It follows the observations' form (one sequence, or a list of arrays as long as
    ``seqs``) and each item has one row per time step; ``None`` gives ``[None, ...]``.
    """
    if value is None:
        return [None] * len(seqs)
    vals, v_single = split_batch(name, value)
    if v_single != single or len(vals) != len(seqs):
        raise ShapeError(
            f"{name}: got {1 if v_single else len(vals)} sequence(s) for "
            f"{1 if single else len(seqs)} observation sequence(s); give them in the same form"
        )
    out = []
    for i, (v, s) in enumerate(zip(vals, seqs)):
        label = name if single else f"{name}[{i}]"
        v = as_float_array(label, v, (1, 2) if name == "inputs" else 1)
        if len(v) != len(s):
            raise ShapeError(f"{label}: expected {len(s)} rows to match the observations, got {len(v)}")
        if not np.isfinite(v).all():
            t = int(np.argwhere(~np.isfinite(v))[0][0])
            raise DataError(f"{label}: non-finite value at time step {t}")
        out.append(v)
    return out


def prepare_sequences(model, y, inputs=None, times=None):
    """Validate observations and build one kernel-parameter tuple per sequence.

    Returns ``(kernels, [(kp, y_i), ...], single)``.
    """
    kernels = model.kernels()
    seqs, single = as_sequences("y", y, kernels.obs_dim)
    us = align_with_sequences("inputs", inputs, seqs, single)
    ts = align_with_sequences("times", times, seqs, single)
    return kernels, [(model.kernel_params(inputs=u, times=tt), s) for u, s, tt in zip(us, seqs, ts)], single


def check_filter_args(n_particles, ess_threshold, resampling):
    """Validate the common arguments; return ``(N, threshold, scheme_code)``."""
    N = check_int("n_particles", n_particles, minimum=1)
    thr = check_real("ess_threshold", ess_threshold, 0.0, 1.0)
    return N, thr, scheme_code(resampling)


class _FilterOptions(NamedTuple):
    """The validated options the two filters share (see :func:`bootstrap_filter`)."""

    n_particles: int
    threshold: float
    scheme: int
    state_function: StateFunction
    return_history: bool


def _filter_options(n_particles, ess_threshold, resampling, state_function, return_history) -> _FilterOptions:
    N, thr, code = check_filter_args(n_particles, ess_threshold, resampling)
    sf = NO_FUNCTION if state_function is None else state_function
    if not isinstance(sf, StateFunction):
        raise ParameterError("state_function: expected a smc.StateFunction(fn, dim)")
    return _FilterOptions(N, thr, code, sf, bool(return_history))


def _run(model, y, proposal, guided, opts: _FilterOptions, rng, inputs, times):
    N, thr, code, sf, history = opts
    kernels, jobs, single = prepare_sequences(model, y, inputs, times)
    loop = compiled(filter_loop, kernels=kernels, proposal=proposal, fn=sf.fn, step=particle_step(N))

    def run(i, g):
        kp, ys = jobs[i]
        streams, bounds = particle_streams(N, g)
        return loop(guided, int(sf.dim), kp, ys, N, thr, code, g, streams, bounds, history)

    # a large filter's particles already share the threads: its sequences run one after another
    outs = each_sequence(run, [len(ys) for _, ys in jobs], as_rng(rng), N if N < PARALLEL_MIN_PARTICLES else 0)
    results = []
    for i, out in enumerate(outs):
        status, incs, means, covs, probs, moments, ess, rs, x, logw, anc, xh, lwh = out
        if status >= 0:
            where = "" if single else f"sequence {i}"
            raise DegenerateWeightsError(status, where)
        results.append(
            ParticleFilterResult(
                log_likelihood=float(incs.sum()),
                log_likelihood_increments=incs,
                filtered_means=means,
                filtered_covs=covs,
                filtered_probs=probs if kernels.n_states > 0 else None,
                filtered_moments=moments if sf.dim > 0 else None,
                ess=ess,
                resampled=rs,
                particles=x,
                log_weights=logw,
                ancestors=anc if history else None,
                particle_history=xh if history else None,
                log_weight_history=lwh if history else None,
            )
        )
    return results[0] if single else results


def bootstrap_filter(
    model,
    y,
    n_particles: int = 1000,
    rng=None,
    resampling: str = "systematic",
    ess_threshold: float = 0.5,
    state_function: StateFunction | None = None,
    inputs=None,
    times=None,
    return_history: bool = False,
):
    """Bootstrap particle filter (proposal = transition) on one sequence or a list.

    Args:
        model: any :class:`statespace.StateSpaceModel`.
        y: ``(T, obs_dim)`` observations (``(T,)`` when ``obs_dim == 1``; NaN = missing), or a list.
        n_particles: number of particles ``N``.
        rng: ``numpy.random.Generator`` or seed. A list of sequences whose filters are large
            enough (``smc.particle_filter.threaded_fleet``: ``N`` below ``PARALLEL_MIN_PARTICLES``,
            ``N`` times the mean length at least ``PARALLEL_MIN_SEQUENCE_WORK``) runs on Numba's
            threads, sequence ``i`` on ``child_generators(rng, len(y))[i]``; any other list, one
            sequence after another on ``rng``. Either way it equals its sequences filtered alone on
            those generators.
        resampling: ``"systematic"`` (default), ``"stratified"``, ``"residual"`` or ``"multinomial"``.
        ess_threshold: resample when ``ESS < ess_threshold * N``; 1 resamples at every step, 0 never.
        state_function: optional :class:`StateFunction` whose filtered means are returned.
        inputs, times: per-sequence model inputs / observation times, passed to ``model.kernel_params``.
        return_history: also return all particles, weights and ancestor indices (memory ``O(T N)``).

    Returns:
        a ``ParticleFilterResult``, or a list of them for a list of sequences.

    Raises:
        DegenerateWeightsError: all weights vanished at some time step.
    """
    opts = _filter_options(n_particles, ess_threshold, resampling, state_function, return_history)
    return _run(model, y, BOOTSTRAP, False, opts, rng, inputs, times)


def guided_filter(
    model,
    y,
    proposal: Proposal,
    n_particles: int = 1000,
    rng=None,
    resampling: str = "systematic",
    ess_threshold: float = 0.5,
    state_function: StateFunction | None = None,
    inputs=None,
    times=None,
    return_history: bool = False,
):
    """Guided particle filter with a user :class:`Proposal`; arguments as :func:`bootstrap_filter`."""
    if not isinstance(proposal, Proposal):
        raise ParameterError("proposal: expected a smc.Proposal(sample_initial, log_initial, sample, log_density)")
    opts = _filter_options(n_particles, ess_threshold, resampling, state_function, return_history)
    return _run(model, y, proposal, True, opts, rng, inputs, times)
