r"""The shared model interface.

Every model of the library, and every user-defined one, is a state-space model

.. math::

    x_0 \sim \mu_\theta(\cdot), \qquad
    x_t \mid x_{t-1} \sim f_\theta(\cdot \mid x_{t-1}, u_t), \qquad
    y_t \mid x_t \sim g_\theta(\cdot \mid x_t, y_{0:t-1}, u_t),

with latent states ``x_t`` (continuous in R^d, or a discrete code 0..K-1) and
observations ``y_t`` in R^m (NaN coordinates are missing). The emission may look
at past observations (autoregressive HMMs) and at known inputs ``u_t``.

A model offers two faces.

* **The object API** (:class:`StateSpaceModel`): ``sample``, ``log_likelihood``,
  ``filter``, ``smooth``, ``sample_posterior``, ``forecast``, ``fit`` on Python data
  (the contract of every verb is in ``docs/interface.md``). Families with exact
  inference (Kalman, forward-backward) implement them; others raise
  :class:`~statespace.errors.ExactInferenceUnavailable` naming the ``smc`` routine to use.
* **The compiled kernels** (:class:`ModelKernels`): per-particle Numba functions
  that particle methods call inside their compiled loops. They all take the
  model's *kernel parameters* first: a tuple (NamedTuples allowed) of float64
  arrays and scalars built by :meth:`StateSpaceModel.kernel_params` for one
  sequence. Inputs, observation times and precomputed time-varying quantities
  (e.g. ``expm(Q dt_t)``) belong in that tuple, so the kernel signatures stay the
  same for every family.

A state is always a float64 vector of length ``state_dim``; discrete models store
the state code as ``x[0]`` (an integer value in float). ``t`` is the time index of
the *new* state or observation. Kernel signatures::

    sample_initial(kp, rng, x_out)                  -> None   # x_0 ~ mu
    log_initial(kp, x)                              -> float  # log mu(x_0)
    sample_transition(kp, t, x_prev, rng, x_out)    -> None   # x_t ~ f(. | x_{t-1})
    log_transition(kp, t, x_prev, x)                -> float  # log f(x_t | x_{t-1})
    log_transition_bound(kp, t)                     -> float  # sup log f at step t (inf if none)
    log_emission(kp, t, x, y)                       -> float  # log g(y_t | x_t, y_{0:t-1}); y is (T, m)
    sample_emission(kp, t, x, y, rng, y_out)        -> None   # rows < t of y are already filled

``rng`` is a ``numpy.random.Generator`` (Numba supports it natively), so a seed
reproduces a run. ``log_emission`` must return 0 for a row that is all NaN and
marginalise NaN coordinates exactly where it can.

Design note: particle routines receive these kernels as first-class Numba
dispatchers and are specialised per model. A specialised routine is compiled
once per process (Numba cannot cache code keyed on a dispatcher argument); the
kernels themselves use ``cache=True``.

Minimal example (the stochastic volatility model shipped in
:mod:`statespace.stochastic_volatility` is a complete one)::

    from statespace import StochasticVolatility
    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    x, y = sv.sample(500, rng=0)
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from .errors import ExactInferenceUnavailable, ParameterError, ShapeError
from .validation import as_float_array, as_rng, check_int


class ModelKernels(NamedTuple):
    """The compiled per-particle functions of a model (see the module docstring).

    ``state_dim`` is the length of the state vector; ``n_states`` is the number
    of discrete states, or 0 for a continuous state space.
    """

    sample_initial: Any
    log_initial: Any
    sample_transition: Any
    log_transition: Any
    log_transition_bound: Any
    log_emission: Any
    sample_emission: Any
    state_dim: int
    obs_dim: int
    n_states: int = 0


class AdditiveFunctional(NamedTuple):
    r"""A compiled additive functional :math:`h_0(x_0, y) + \sum_{t\ge1} h_t(x_{t-1}, x_t, y)`.

    What PaRIS smooths online and what particle EM needs: the shipped models
    expose their complete-data sufficient statistics this way
    (:meth:`StateSpaceModel.sufficient_statistics`), and users pass their own.

    Attributes:
        initial: ``initial(kp, x, y, out)`` writes (overwrites, not adds) ``h_0(x_0, y_0)`` into ``out`` (``(dim,)``).
        step: ``step(kp, t, x_prev, x, y, out)`` writes ``h_t(x_{t-1}, x_t, y_t)`` into ``out``.
        dim: length of the functional's value.
    """

    initial: Any
    step: Any
    dim: int


class Parametrization(NamedTuple):
    r"""A map between a model and an unconstrained vector :math:`\theta \in \mathbb{R}^p` (a learning hook).

    Score ascent and Markov score climbing (:mod:`smc.learning`) move ``theta`` and
    rebuild the model from it; a model supplies its own through
    ``StateSpaceModel.parametrization``.

    Attributes:
        names: the names of the vector's entries (``"F[0,1]"`` style for matrix entries).
        to_vector: ``to_vector(model) -> theta`` (``(p,)`` float64).
        from_vector: ``from_vector(theta) -> model``.
        log_joint: optional ``log_joint(theta, x, y) -> scalar`` in ``jax.numpy``, the complete-data
            log-density :math:`\log p_\theta(x_{0:T-1}, y_{0:T-1})` (``x`` is ``(T, state_dim)``,
            ``y`` is ``(T, obs_dim)`` with NaN for missing, marginalised); needed by Markov score climbing.
        natural: optional ``natural(model) -> dict`` of the reported (constrained) parameters.
    """

    names: tuple
    to_vector: Callable
    from_vector: Callable
    log_joint: Callable | None = None
    natural: Callable | None = None


class FitResult(NamedTuple):
    """What every ``fit`` returns.

    Attributes:
        params: the fitted parameter container.
        log_likelihoods: the objective per iteration (marginal log-likelihood,
            plus the log-prior when a prior is used); never decreases for EM.
        converged: whether the tolerance was met before ``max_iter``.
        n_iter: number of iterations run.
    """

    params: Any
    log_likelihoods: np.ndarray
    converged: bool
    n_iter: int


class StateSpaceModel(abc.ABC):
    """Base class of every model: the friendly object API over the kernels."""

    #: The parameter container (an immutable, validated NamedTuple).
    params: Any

    # --- the compiled face -------------------------------------------------
    @abc.abstractmethod
    def kernels(self) -> ModelKernels:
        """The model's compiled per-particle kernels."""

    @abc.abstractmethod
    def kernel_params(self, inputs: np.ndarray | None = None, times: np.ndarray | None = None) -> tuple:
        """Numba-friendly parameters for one sequence (inputs/times folded in)."""

    @property
    def state_dim(self) -> int:
        """Length of the state vector ``x_t`` (1 for a discrete state, whose code is ``x[0]``), from ``kernels``."""
        return self.kernels().state_dim

    @property
    def obs_dim(self) -> int:
        """``m``, the number of coordinates of an observation ``y_t``, from ``kernels``."""
        return self.kernels().obs_dim

    # --- learning from expected sufficient statistics (exponential families) ---
    def sufficient_statistics(self) -> AdditiveFunctional:
        """The complete-data sufficient statistics as a compiled additive functional."""
        raise NotImplementedError(f"{type(self).__name__} does not expose sufficient statistics")

    def m_step(self, stats: np.ndarray, n_sequences: int = 1, n_steps: int | None = None):
        """New parameters maximising the expected complete-data log-likelihood.

        ``stats`` is the sum over sequences of the expected value of
        ``sufficient_statistics`` (exact, or estimated by PaRIS / particle Gibbs);
        returns a new model of the same class. Frozen parameters are kept.
        """
        raise NotImplementedError(f"{type(self).__name__} has no closed-form M-step")

    # --- learning hooks of the particle learning routines (smc.learning) -------
    def parametrization(self, inputs=None) -> Parametrization:
        """The map between this model and an unconstrained parameter vector (a ``Parametrization``).

        The hook of :func:`smc.learning.score_ascent`, :func:`smc.learning.estimate_score` and
        (with a ``log_joint``) :func:`smc.learning.score_climbing`: a model that implements it
        gets gradient-based particle learning. ``from_vector`` must return a model of the same
        class whose kernels are those of ``self`` at the new parameters; fixed (frozen)
        parameters are closed over.

        Args:
            inputs: the known inputs of the one training sequence, for a model whose
                ``log_joint`` closes over them; models without inputs ignore it.

        Raises:
            ParameterError: the model does not implement this hook (this default); implement
                ``parametrization()`` or pass ``parametrization=`` to the learning routine.
        """
        raise ParameterError(
            f"model: {type(self).__name__} does not implement parametrization(); gradient-based particle "
            "learning needs it: implement StateSpaceModel.parametrization() returning a "
            "statespace.interface.Parametrization, or pass parametrization="
        )

    def gibbs_prior(self):
        """The default prior of :func:`smc.learning.bayesian_particle_gibbs` for this model.

        The hook of Bayesian particle Gibbs: an object with three methods,
        ``names(model) -> tuple`` (the sampled parameters), ``values(model) -> (p,) array``
        (their values, in that order) and ``draw(model, paths, data, rng) -> model``, one
        sweep of the parameters from their conditional given the state trajectories
        ``paths`` (one ``(T_i, state_dim)`` array per sequence) and ``data`` (the
        ``(y_i, inputs_i)`` pairs), leaving that conditional invariant. The shipped
        ``SVPrior`` and ``LGPrior`` are conjugate examples.

        Raises:
            ParameterError: the model has no default prior (this default); implement
                ``gibbs_prior()`` or pass ``prior=`` to ``bayesian_particle_gibbs``.
        """
        raise ParameterError(
            f"model: {type(self).__name__} does not implement gibbs_prior(); Bayesian particle Gibbs "
            "needs a prior with names/values/draw: implement StateSpaceModel.gibbs_prior() or pass prior="
        )

    # --- simulation ----------------------------------------------------------
    def sample(self, T: int, rng=None, inputs=None, times=None):
        """Simulate ``(states, observations)`` of shapes ``(T, state_dim)`` and ``(T, obs_dim)``."""
        T = check_int("T", T, minimum=1, error=ShapeError)
        if inputs is not None:
            inputs = as_float_array("inputs", inputs, (1, 2))
            if len(inputs) != T:
                raise ShapeError(f"inputs: expected {T} rows (one per time step), got {len(inputs)}")
        k = self.kernels()
        return simulate(k, self.kernel_params(inputs=inputs, times=times), T, as_rng(rng))

    # --- exact inference (families that have it override) ------------------
    def log_likelihood(self, y, inputs=None):
        r"""The marginal log-likelihood :math:`\log p(y)`, computed exactly (Kalman filter, forward algorithm).

        The data of every verb (``log_likelihood``, ``filter``, ``smooth``, ``fit``, ...) follow
        the sequence rule of ``statespace.validation``: **one sequence** is an array
        ``(T, obs_dim)`` (``(T,)`` when ``obs_dim == 1``; a flat list of numbers is one
        sequence too); **several sequences** are a list or tuple of such arrays, whose
        lengths may differ. NaN entries of ``y`` are missing and marginalised; anything
        else that is not a sequence (``None``, a scalar, a ragged nested list, inf) is a
        :class:`~statespace.errors.ShapeError` or :class:`~statespace.errors.DataError`
        naming the argument. ``inputs`` (``(T, input_dim)``, finite) take the same form as
        ``y``: one array for one sequence, a list of arrays for a list.

        Args:
            y: one sequence or a list of sequences.
            inputs: known inputs aligned with ``y``, for models that take them.

        Returns:
            The log-likelihood of the sequence, or for a list the sum over its sequences;
            ``-inf`` (never NaN) when the data have zero probability under the model.

        Raises:
            ExactInferenceUnavailable: the model has no exact likelihood (this default);
                estimate it with :func:`smc.bootstrap_filter`.
        """
        raise ExactInferenceUnavailable(
            f"{type(self).__name__} has no exact likelihood; estimate it with smc.bootstrap_filter(model, y, "
            "n_particles=...).log_likelihood"
        )

    def filter(self, y, inputs=None):
        r"""The filtering distributions :math:`p(x_t \mid y_{0:t})` of every time step, computed exactly.

        Data as in :meth:`log_likelihood`. Returns the family's result NamedTuple
        (``KalmanFilterResult``, ``HMMFilterResult``, ``MJPFilterResult``), which carries
        the sequence's ``log_likelihood`` beside the marginals (``filtered_means``/
        ``filtered_covs`` for a Gaussian state, ``filtered_probs`` for a discrete one):
        one result for one sequence, a list of results, one per sequence and in the same
        order, for a list.

        Raises:
            ImpossibleDataError: the data have zero probability under the model; the message
                names the sequence (``y[i]`` for a list) and the first such time step.
            ExactInferenceUnavailable: the model has no exact filter (this default); use
                :func:`smc.bootstrap_filter` or :func:`smc.guided_filter`.
        """
        raise ExactInferenceUnavailable(
            f"{type(self).__name__} has no exact filter; use smc.bootstrap_filter(model, y, n_particles=...) "
            "or smc.guided_filter"
        )

    def smooth(self, y, inputs=None):
        r"""The smoothing distributions :math:`p(x_t \mid y_{0:T-1})` of every time step, computed exactly.

        Data, result layout (one result per sequence, ``smoothed_*`` fields) and errors as
        in :meth:`filter`.

        Raises:
            ImpossibleDataError: the data have zero probability under the model.
            ExactInferenceUnavailable: the model has no exact smoother (this default); use
                :func:`smc.paris_smoother` (online, for additive functionals) or
                :func:`smc.ppg_smoother`.
        """
        raise ExactInferenceUnavailable(
            f"{type(self).__name__} has no exact smoother; use smc.paris_smoother (additive functionals) "
            "or smc.ppg_smoother (marginals)"
        )

    def sample_posterior(self, y, n_samples: int = 1, rng=None, inputs=None):
        r"""Latent paths drawn exactly from :math:`p(x_{0:T-1} \mid y)`.

        Data as in :meth:`log_likelihood`. Returns ``(n_samples, T, ...)`` draws per
        sequence (a list for a list): ``(n_samples, T, d)`` for a Gaussian state,
        ``(n_samples, T)`` state codes for a discrete one.

        Raises:
            ImpossibleDataError: the data have zero probability under the model.
            ExactInferenceUnavailable: the model has no exact posterior sampler (this
                default); use :func:`smc.particle_gibbs` (conditional SMC draws) or
                :func:`smc.ppg_smoother`.
        """
        raise ExactInferenceUnavailable(
            f"{type(self).__name__} has no exact posterior sampler; use smc.particle_gibbs (conditional SMC "
            "draws of the path) or smc.ppg_smoother"
        )

    def forecast(self, y, steps: int, inputs=None, future_inputs=None):
        r"""The predictive distribution ``1..steps`` steps past the end of each sequence.

        Data as in :meth:`log_likelihood`; ``future_inputs`` cover the horizon for models
        with inputs. Returns the family's forecast NamedTuple, one per sequence (a list
        for a list). The Markov jump process takes future *times* instead of ``steps``.

        Raises:
            ImpossibleDataError: the data have zero probability under the model.
            ExactInferenceUnavailable: the model has no exact forecast (this default);
                filter with :func:`smc.bootstrap_filter` and simulate forward from its
                last particles with the model's kernels.
        """
        raise ExactInferenceUnavailable(
            f"{type(self).__name__} has no exact forecast; use smc.bootstrap_filter and simulate forward from "
            "its last particles (result.particles, result.log_weights) with model.kernels()"
        )

    def fit(
        self, y, inputs=None, *, init=None, frozen=None, max_iter: int = 100, tol: float = 1e-6, progress=True
    ) -> FitResult:
        """Maximum-likelihood (or MAP) parameters from one sequence or a list of them (data as in :meth:`log_likelihood`).

        The exact families run EM: the E-step is their exact smoother, the M-step
        raises the expected complete-data log-likelihood, so the objective never
        decreases (``ConvergenceMonitor``: a drop beyond round-off stops the fit with
        ``converged=False``). Every ``fit`` takes the same keywords:

        * ``init``: starting parameters (the family's parameter container); by default
          the current ``self.params`` (warm start), or a data-driven start
          (``initialize``) for a model that has none yet;
        * ``frozen``: names of fields of the parameter container kept fixed (``None``:
          the model's default); an unknown name is a
          :class:`~statespace.errors.ParameterError` listing the allowed ones;
        * ``max_iter``, ``tol``, ``progress``.

        It sets ``self.params`` to the fitted parameters and returns a :class:`FitResult`
        (or a NamedTuple whose first four fields are those of ``FitResult``).

        Raises:
            ImpossibleDataError: the data have zero probability under the parameters being fitted.
            ExactInferenceUnavailable: the model has no exact EM (this default); use the
                learning routines of :mod:`smc.learning` (``particle_em``,
                ``score_climbing``, ``bayesian_particle_gibbs``).
        """
        raise ExactInferenceUnavailable(
            f"{type(self).__name__} has no exact EM; use smc.learning.particle_em, smc.learning.score_climbing "
            "or smc.learning.bayesian_particle_gibbs"
        )


def simulate(kernels: ModelKernels, kp: tuple, T: int, rng: np.random.Generator):
    """Draw one trajectory ``(x, y)`` of length ``T`` from any model's kernels."""
    return _simulate(
        kernels.sample_initial,
        kernels.sample_transition,
        kernels.sample_emission,
        kp,
        T,
        kernels.state_dim,
        kernels.obs_dim,
        rng,
    )


@nb.njit
def _simulate(sample_initial, sample_transition, sample_emission, kp, T, d, m, rng):
    x = np.empty((T, d))
    y = np.full((T, m), np.nan)
    sample_initial(kp, rng, x[0])
    sample_emission(kp, 0, x[0], y, rng, y[0])
    for t in range(1, T):
        sample_transition(kp, t, x[t - 1], rng, x[t])
        sample_emission(kp, t, x[t], y, rng, y[t])
    return x, y
