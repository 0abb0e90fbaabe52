"""What the learning schemes share: data preparation, the smoothed-functional
estimator (PaRIS or PPG, one call per learning iteration, reference paths kept
across iterations), parameter traces and the result container."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from statespace.diagnostics import DataTreeGroups
from statespace.errors import ParameterError
from statespace.validation import (
    as_float_array,
    as_sequences,
    check_choice,
    check_fit_options,
    check_int,
    check_real,
)

from ..paris import BACKWARD_DRAW_COST
from ..particle_filter import align_with_sequences, each_sequence
from ..ppg import ppg_step

SMOOTHERS = ("ppg", "paris")


class LearningResult(NamedTuple):
    """What every particle learning routine returns (a superset of :class:`~statespace.interface.FitResult`).

    Attributes:
        params: the fitted parameter container (``model.params``).
        log_likelihoods: ``(n_iter,)`` the particle log-likelihood estimate of each iteration's
            forward pass, at that iteration's parameters (a noisy learning curve; conditional
            passes give biased estimates, see the docs).
        converged: always ``False``: stochastic approximation runs its ``n_iter`` iterations.
        n_iter: iterations run.
        model: the fitted model.
        trace: ``(n_iter + 1, n_params)`` the parameters after each iteration (row 0: the start).
        param_names: names of the ``trace`` columns.
        particle_steps: ``(n_iter,)`` cumulative particle-steps (particles x time steps x passes).
    """

    params: object
    log_likelihoods: np.ndarray
    converged: bool
    n_iter: int
    model: object
    trace: np.ndarray
    param_names: tuple
    particle_steps: np.ndarray

    def datatree_groups(self, state_names=None) -> DataTreeGroups:
        """The run as one chain (``draw`` = iteration, the start included): the ``trace`` columns as
        ``posterior`` variables, the log-likelihood estimates (NaN at the start) and cumulative
        particle-steps (0 at the start) as ``sample_stats``; ``state_names`` is unused."""
        return DataTreeGroups.from_samples(
            {n: self.trace[None, :, j] for j, n in enumerate(self.param_names)},
            {
                "log_likelihood_estimate": np.concatenate([[np.nan], self.log_likelihoods])[None],
                "particle_steps": np.concatenate([[0.0], self.particle_steps])[None],
            },
        )


def prepare(model, y, inputs):
    """``[(y_i, u_i)]`` for every sequence (``u_i`` is ``None`` without inputs)."""
    seqs, single = as_sequences("y", y, model.kernels().obs_dim)
    return list(zip(seqs, align_with_sequences("inputs", inputs, seqs, single)))


def check_common(n_iter, n_particles, n_backward, smoother=None):
    """The options every particle learning routine shares, as ``(n_iter, n_particles, n_backward)``.

    ``n_iter >= 1`` follows :func:`statespace.validation.check_fit_options`;
    ``n_particles >= 2``, ``n_backward >= 1``; ``smoother`` one of :data:`SMOOTHERS`
    (``None`` for the routines that take no smoother).
    """
    n_iter = check_fit_options(n_iter, max_iter_name="n_iter")[0]
    n_particles = check_int("n_particles", n_particles, minimum=2)
    n_backward = check_int("n_backward", n_backward, minimum=1)
    if smoother is not None:
        check_choice("smoother", smoother, SMOOTHERS)
    return n_iter, n_particles, n_backward


class GradientOptions(NamedTuple):
    """The validated options of the stochastic-gradient routines (see :func:`check_gradient_options`)."""

    optimizer: str
    learning_rate: float
    decay_iters: float | None
    average_from: float


def check_gradient_options(optimizer, learning_rate, decay_iters, average_from) -> GradientOptions:
    """Options of the stochastic-gradient routines, validated.

    ``optimizer`` ``"adam"`` or ``"sgd"``; ``learning_rate > 0`` finite;
    ``decay_iters`` ``None`` or ``> 0``; ``average_from`` in ``[0, 1]``.
    """
    check_choice("optimizer", optimizer, ("adam", "sgd"))
    learning_rate = check_real("learning_rate", learning_rate, 0.0, strict=True)
    decay_iters = None if decay_iters is None else check_real("decay_iters", decay_iters, 0.0, strict=True)
    average_from = check_real("average_from", average_from, 0.0, 1.0)
    return GradientOptions(optimizer, learning_rate, decay_iters, average_from)


class FunctionalEstimator:
    """Smoothed expectation of an additive functional, summed over sequences.

    ``smoother="paris"``: one independent PaRIS pass per call. ``smoother="ppg"``:
    ``n_sweeps`` PPG iterations per call around reference paths kept from the
    previous call (so consecutive learning iterations form the Markov chain of
    the PPG learning scheme), averaging the sweeps from ``burn_in`` on. The
    first call starts each reference from a PaRIS pass.

    Sequences that carry enough work (``smc.particle_filter.threaded_fleet``) each draw from
    their own generator seeded from the call's ``rng`` and run on Numba's threads; others run one
    after another on ``rng``: the same estimates on any number of threads.
    """

    def __init__(self, data, *, smoother, n_particles, n_backward, n_sweeps=1, burn_in=0):
        check_choice("smoother", smoother, SMOOTHERS)
        n_sweeps = check_int("n_sweeps", n_sweeps, minimum=1)
        burn_in = check_int("burn_in", burn_in, minimum=0)
        if smoother == "ppg" and not burn_in < n_sweeps:
            raise ParameterError(f"burn_in: expected 0 <= burn_in < n_sweeps = {n_sweeps}, got {burn_in}")
        self.data = data
        self.smoother = smoother
        self.n_particles = check_int("n_particles", n_particles, minimum=2)
        self.n_backward = check_int("n_backward", n_backward, minimum=1)
        self.n_sweeps = n_sweeps if smoother == "ppg" else 1
        self.burn_in = burn_in if smoother == "ppg" else 0
        self.refs = [None] * len(data)
        self.particle_steps = 0

    def __call__(self, model, functional, rng, hp_for=None):
        """``(sum over sequences of the estimate, sum of log-likelihood estimates)``.

        ``hp_for(u)`` gives the functional's parameters for a sequence with inputs ``u``
        (default: the model's kernel parameters).
        """
        k = model.kernels()
        # the model's Python (kernel parameters, the functional's) before the threads; the sweeps in them
        params = [model.kernel_params(inputs=u) for _, u in self.data]
        hps = params if hp_for is None else [hp_for(u) for _, u in self.data]

        def run(i, g):
            y, kp = self.data[i][0], params[i]
            args = dict(n_particles=self.n_particles, n_backward=self.n_backward, hp=hps[i], rng=g)
            if self.smoother == "paris":
                est, _, lli = ppg_step(k, kp, y, None, functional, **args)
                return est, lli, self.n_particles * len(y)
            steps = self.n_particles * len(y) * self.n_sweeps
            if self.refs[i] is None:
                self.refs[i] = ppg_step(k, kp, y, None, functional, **args)[1]
                steps += self.n_particles * len(y)
            acc = np.zeros(functional.dim)
            for s in range(self.n_sweeps):
                e, self.refs[i], lli = ppg_step(k, kp, y, self.refs[i], functional, **args)
                if s >= self.burn_in:
                    acc += e
            return acc / (self.n_sweeps - self.burn_in), lli, steps

        # a conditional sweep is a PaRIS pass: a forward step and n_backward backward draws per particle
        work = self.n_particles * self.n_sweeps * (1 + BACKWARD_DRAW_COST * self.n_backward)
        outs = each_sequence(run, [len(y) for y, _ in self.data], rng, work)
        total = np.zeros(functional.dim)
        ll = 0.0
        for est, lli, steps in outs:  # summed in sequence order: the same on any number of threads
            total += est
            ll += lli
            self.particle_steps += steps
        return total, ll


def vector_of(model):
    """``(names, values)`` flattening the model's parameter container (for traces).

    Nested containers (e.g. an HMM's emission parameters) are flattened with a
    ``"outer.inner"`` prefix; frozen fields and non-numeric entries are skipped.
    """
    names, vals = [], []
    _flatten(model.params, "", set(getattr(model, "frozen", ())), names, vals)
    return tuple(names), np.array(vals)


def _flatten(p, prefix, frozen, names, vals):
    for f in p._fields:
        if f in frozen:
            continue
        v = getattr(p, f)
        if hasattr(v, "_fields"):
            _flatten(v, f"{prefix}{f}.", frozen, names, vals)
            continue
        try:
            a = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            continue
        if a.size == 0:
            continue
        if a.ndim == 0:
            names.append(prefix + f)
            vals.append(float(a))
        else:
            for idx in np.ndindex(a.shape):
                names.append(f"{prefix}{f}[{','.join(map(str, idx))}]")
                vals.append(float(a[idx]))


def step_size_schedule(step_sizes, n_iter, warm, exponent):
    """Stochastic-approximation step sizes: 1 for ``warm`` iterations, then ``(k - warm + 1)^-exponent``."""
    if step_sizes is None:
        k = np.arange(n_iter)
        return np.where(k < warm, 1.0, np.maximum(k - warm + 2.0, 1.0) ** (-exponent))
    if callable(step_sizes):
        return np.array([_check_step(f"step_sizes({k})", step_sizes(k)) for k in range(n_iter)])
    g = as_float_array("step_sizes", step_sizes)
    if g.shape != (n_iter,):
        raise ParameterError(f"step_sizes: expected {n_iter} values (one per iteration), got shape {g.shape}")
    for k, v in enumerate(g):
        _check_step(f"step_sizes[{k}]", v)
    return g


def _check_step(name, value) -> float:
    """A step size of stochastic approximation: a real number in (0, 1]."""
    v = check_real(name, value, 0.0, 1.0)
    if v == 0.0:
        raise ParameterError(f"{name}: expected a value in (0, 1], got 0.0")
    return v
