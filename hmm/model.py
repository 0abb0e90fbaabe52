r"""Hidden Markov models: Gaussian, autoregressive (ARHMM) and categorical, with partial knowledge.

.. math::

    z_0 \sim \pi, \qquad z_t \mid z_{t-1} = i \sim A_{i,\cdot}, \qquad
    y_t \mid z_t = k \sim g_k(\cdot \mid y_{t-L:t-1}, u_t),

with :math:`g_k` one of the emissions of :mod:`hmm.emissions` and :math:`A`
shaped by a :class:`~hmm.transitions.TransitionStructure` (ergodic, sticky,
left-to-right with an absorbing last state, ...). Optional partial knowledge
``pl`` (:mod:`hmm.partial_knowledge`) multiplies the emission likelihoods
everywhere: likelihood, filtering, smoothing, Viterbi and EM. The ARPHMM of
Juesas & Ramasso is ``ARHMM(..., transitions="left-to-right")`` fitted with ``pl``::

    from hmm import ARHMM
    model = ARHMM(n_states=4, obs_dim=2, lags=1, transitions="left-to-right")
    result = model.fit(sequences, pl=plausibilities, n_restarts=3, rng=0)
    filt = model.filter(sequences[0], pl=plausibilities[0])   # filt.filtered_probs (T, K)
    model.transition_matrix

Every method takes one sequence (``(T, d)``, or ``(T,)`` when ``d == 1``) or a
list of sequences, and returns one result or a list accordingly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from statespace.errors import ParameterError, ShapeError
from statespace.interface import AdditiveFunctional, FitResult, ModelKernels, StateSpaceModel
from statespace.persistence import SavedModel, register_loadable
from statespace.validation import (
    as_float_array,
    as_inputs,
    as_rng,
    as_sequences,
    check_choice,
    check_fit_options,
    check_int,
    check_names,
    check_probability_vector,
)

from . import emission_updates as eu
from . import emissions as em_
from . import kernels as kern
from .em import fit_with_restarts
from .forward_backward import forward, impossible_data_error, posteriors
from .inference import predicted, sample_paths, viterbi
from .initialization import initial_params
from .partial_knowledge import log_plausibilities
from .transitions import TransitionStructure, make_structure

EMISSION_KINDS = ("gaussian", "ar", "categorical")
COVARIANCE_TYPES = ("full", "diag", "tied")


class _HMMParamsBase(NamedTuple):
    pi0: np.ndarray
    A: np.ndarray
    emission: object


class HMMParams(_HMMParamsBase):
    """Parameters of an HMM.

    Attributes:
        pi0: ``(K,)`` initial state distribution.
        A: ``(K, K)`` transition matrix, ``A[i, j] = p(z_t = j | z_{t-1} = i)``.
        emission: a :class:`~hmm.emissions.GaussianEmissionParams` or
            :class:`~hmm.emissions.CategoricalEmissionParams`.
    """

    __slots__ = ()

    def __new__(cls, pi0, A, emission):
        K = emission.n_states
        pi0 = check_probability_vector("pi0", pi0, K)
        A = as_float_array("A", A)
        if A.shape != (K, K):
            raise ShapeError(f"A: expected shape ({K}, {K}) to match the emission's {K} states, got {A.shape}")
        from statespace.validation import check_stochastic_matrix

        A = check_stochastic_matrix("A", A, K)
        return super().__new__(cls, pi0, A, emission)


class HMMFilterResult(NamedTuple):
    """``filtered_probs[t] = p(z_t | y_{0:t})``, ``predicted_probs[t] = p(z_t | y_{0:t-1})``."""

    log_likelihood: float
    filtered_probs: np.ndarray
    predicted_probs: np.ndarray


class HMMSmoothResult(NamedTuple):
    """``smoothed_probs[t] = p(z_t | y_{0:T-1})``; ``transition_counts[i, j] = sum_t p(z_{t-1}=i, z_t=j | y)``."""

    log_likelihood: float
    filtered_probs: np.ndarray
    smoothed_probs: np.ndarray
    transition_counts: np.ndarray


class HMMForecast(NamedTuple):
    """Forecast ``h = 1..steps`` ahead of the end of a sequence.

    Attributes:
        state_probs: ``(steps, K)`` exact ``p(z_{T-1+h} | y)``.
        states: ``(n_samples, steps)`` sampled future states.
        observations: ``(n_samples, steps, d)`` sampled future observations (AR rollouts).
        mean: ``(steps, d)`` Monte Carlo mean of the observations.
    """

    state_probs: np.ndarray
    states: np.ndarray
    observations: np.ndarray
    mean: np.ndarray


class HMM(StateSpaceModel, SavedModel):
    """A hidden Markov model with Gaussian, autoregressive Gaussian or categorical emissions.

    Args:
        n_states: ``K``.
        obs_dim: ``d`` (1 for categorical).
        emission: ``"gaussian"``, ``"ar"`` (autoregressive Gaussian) or ``"categorical"``.
        lags: ``L`` for ``"ar"``.
        input_dim: ``p``, dimension of the inputs ``u_t`` (Gaussian kinds).
        covariance_type: ``"full"``, ``"diag"`` or ``"tied"``.
        n_symbols: ``M`` for ``"categorical"``.
        transitions: ``"ergodic"``, ``"left-to-right"`` or a :class:`~hmm.transitions.TransitionStructure`.
        absorbing: make the last state absorbing (ergodic structure).
        max_jump: largest forward move of the left-to-right structure.
        params: an :class:`HMMParams` (otherwise ``fit`` initialises from the data).
        prior: an :class:`~hmm.emissions.EmissionPrior` (regularisation of the M-step).
    """

    def __init__(
        self,
        n_states: int,
        obs_dim: int = 1,
        emission: str = "gaussian",
        *,
        lags: int = 0,
        input_dim: int = 0,
        covariance_type: str = "full",
        n_symbols: int | None = None,
        transitions="ergodic",
        absorbing: bool = False,
        max_jump: int = 1,
        params: HMMParams | None = None,
        prior: em_.EmissionPrior | None = None,
    ):
        check_choice("emission", emission, EMISSION_KINDS)
        check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
        self.n_states = check_int("n_states", n_states, minimum=1)
        self.emission_kind = emission
        lags = check_int("lags", lags, minimum=0)
        self.lags = lags if emission == "ar" else 0
        if emission == "ar" and self.lags < 1:
            raise ParameterError(f"lags: an autoregressive emission needs lags >= 1, got {lags}")
        if emission == "gaussian" and lags:
            raise ParameterError("lags: a plain Gaussian emission has no lags; use emission='ar'")
        self._obs_dim = check_int("obs_dim", obs_dim, minimum=1)
        self.input_dim = check_int("input_dim", input_dim, minimum=0)
        if emission == "categorical":
            if n_symbols is None:
                raise ParameterError("n_symbols: a categorical emission needs a positive number of symbols, got None")
            if self._obs_dim != 1 or self.input_dim:
                raise ParameterError("categorical emission: observations are one column of symbols and take no inputs")
        self.n_symbols = None if n_symbols is None else check_int("n_symbols", n_symbols, minimum=1)
        self.covariance_type = covariance_type
        self.structure = make_structure(transitions, self.n_states, absorbing, check_int("max_jump", max_jump, minimum=1))
        if prior is not None and not isinstance(prior, em_.EmissionPrior):
            raise ParameterError(f"prior: expected an hmm.EmissionPrior, got {type(prior).__name__}")
        self.prior = prior if prior is not None else em_.EmissionPrior()
        self.params = None
        if params is not None:
            self.params = self.check_params(params)

    # ------------------------------------------------------------------ parameters
    def check_params(self, params: HMMParams) -> HMMParams:
        """Validate ``params`` against this model's structure (shapes, structural zeros)."""
        if not isinstance(params, HMMParams):
            raise ParameterError(f"params: expected an HMMParams, got {type(params).__name__}")
        e = params.emission
        if self.emission_kind == "categorical":
            if not isinstance(e, em_.CategoricalEmissionParams) or e.probs.shape != (self.n_states, self.n_symbols):
                raise ParameterError(f"params.emission: expected CategoricalEmissionParams with probs ({self.n_states}, {self.n_symbols})")
        else:
            want = (self.n_states, 1 + self.lags * self._obs_dim + self.input_dim, self._obs_dim)
            if not isinstance(e, em_.GaussianEmissionParams) or e.weights.shape != want or e.lags != self.lags:
                raise ParameterError(f"params.emission: expected GaussianEmissionParams with lags={self.lags} and weights {want}")
        self.structure.check("A", params.A)
        return params

    def _require_params(self) -> HMMParams:
        if self.params is None:
            raise ParameterError("params: the model has no parameters yet; pass params=... or call fit first")
        return self.params

    @property
    def transition_matrix(self) -> np.ndarray:
        """``(K, K)`` transition matrix of the current parameters."""
        return self._require_params().A

    # ------------------------------------------------------------------ data
    def _prepare(self, y, inputs=None, pl=None):
        seqs, single = as_sequences("y", y, self._obs_dim)
        if self.emission_kind == "categorical":
            for i, s in enumerate(seqs):
                em_.check_categorical_data("y" if single else f"y[{i}]", s, self.n_symbols)
        lengths = [len(s) for s in seqs]
        us = as_inputs("inputs", inputs, lengths, self.input_dim, single)
        lps = log_plausibilities(pl, lengths, self.n_states, single)
        return seqs, us, lps, single

    # ------------------------------------------------------------------ model-specific pieces (used by EM)
    def _emission_loglik(self, params, y, u):
        e = params.emission
        if self.emission_kind == "categorical":
            with np.errstate(divide="ignore"):
                return em_.categorical_loglik(y, np.log(e.probs))
        return em_.gaussian_loglik(e, y, u)

    def _q(self) -> int:
        return 1 + self.lags * self._obs_dim + self.input_dim

    def _zero_stats(self):
        if self.emission_kind == "categorical":
            return np.zeros((self.n_states, self.n_symbols))
        return eu.GaussianStats.zeros(self.n_states, self._q(), self._obs_dim)

    def _flat_stats(self, stats) -> np.ndarray:
        return stats.ravel() if self.emission_kind == "categorical" else stats.flat()

    def _accumulate(self, params, y, u, gamma, stats):
        e = params.emission
        if self.emission_kind == "categorical":
            eu.categorical_accumulate(y, gamma, stats)
        else:
            eu.gaussian_accumulate(e, y, u, gamma, stats)

    def _m_step_params(self, stats: np.ndarray, old: HMMParams, frozen=frozenset()) -> HMMParams:
        K = self.n_states
        pi_counts, trans = stats[:K], stats[K : K + K * K].reshape(K, K)
        rest = stats[K + K * K :]
        pi0 = old.pi0 if "initial" in frozen or pi_counts.sum() <= 0 else pi_counts / pi_counts.sum()
        A = old.A if "transitions" in frozen else self.structure.m_step(trans, old.A)
        if "emissions" in frozen:
            e = old.emission
        elif self.emission_kind == "categorical":
            e = eu.categorical_m_step(rest.reshape(K, self.n_symbols), old.emission, self.prior)
        else:
            gs = eu.GaussianStats.from_flat(rest, K, self._q(), self._obs_dim)
            e = eu.gaussian_m_step(gs, old.emission, self.covariance_type, self.prior, frozen)
        return HMMParams(pi0, A, e)

    def _log_prior(self, params: HMMParams) -> float:
        lp = self.structure.log_prior(params.A)
        if self.emission_kind == "categorical":
            return lp + eu.categorical_log_prior(params.emission, self.prior)
        return lp + eu.gaussian_log_prior(params.emission, self.covariance_type, self.prior, self.lags > 0)

    def _loglik_matrix(self, params, y, u, lp):
        ll = self._emission_loglik(params, y, u)
        return ll if lp is None else ll + lp

    def _require_possible(self, log_likelihood, p, i, single, s, u, lp) -> None:
        """Raise :class:`~statespace.errors.ImpossibleDataError` for sequence ``i`` when it has zero
        probability (``log_likelihood`` is ``-inf``): a posterior given a null event is undefined."""
        if not log_likelihood > -np.inf:
            raise impossible_data_error("y" if single else f"y[{i}]", p.pi0, p.A[None], self._loglik_matrix(p, s, u, lp))

    # ------------------------------------------------------------------ exact inference
    def log_likelihood(self, y, inputs=None, pl=None) -> float:
        """``log p(y, pl)`` summed over sequences (``pl`` omitted: the marginal log-likelihood).

        ``-inf`` when some sequence has zero probability under the model; the
        verbs that condition on the data (``filter``, ``smooth``, ...) raise
        :class:`~statespace.errors.ImpossibleDataError` there instead.
        """
        p = self._require_params()
        seqs, us, lps, _ = self._prepare(y, inputs, pl)
        A = p.A[None]
        return float(sum(forward(p.pi0, A, self._loglik_matrix(p, s, u, lp))[0] for s, u, lp in zip(seqs, us, lps)))

    def filter(self, y, inputs=None, pl=None):
        """Filtered and one-step predicted state probabilities (:class:`HMMFilterResult`)."""
        p = self._require_params()
        seqs, us, lps, single = self._prepare(y, inputs, pl)
        A = p.A[None]
        out = []
        for i, (s, u, lp) in enumerate(zip(seqs, us, lps)):
            ll, filt, _ = forward(p.pi0, A, self._loglik_matrix(p, s, u, lp))
            self._require_possible(ll, p, i, single, s, u, lp)
            out.append(HMMFilterResult(float(ll), filt, predicted(p.pi0, A, filt)))
        return out[0] if single else out

    def smooth(self, y, inputs=None, pl=None):
        """Smoothed state probabilities and expected transition counts (:class:`HMMSmoothResult`)."""
        p = self._require_params()
        seqs, us, lps, single = self._prepare(y, inputs, pl)
        A = p.A[None]
        out = []
        for i, (s, u, lp) in enumerate(zip(seqs, us, lps)):
            ll, filt, smo, counts = posteriors(p.pi0, A, self._loglik_matrix(p, s, u, lp), overwrite=True)
            self._require_possible(ll, p, i, single, s, u, lp)
            out.append(HMMSmoothResult(float(ll), filt, smo, counts))
        return out[0] if single else out

    def most_likely_states(self, y, inputs=None, pl=None):
        """Viterbi path(s): ``(T,)`` int arrays."""
        p = self._require_params()
        seqs, us, lps, single = self._prepare(y, inputs, pl)
        out = []
        for i, (s, u, lp) in enumerate(zip(seqs, us, lps)):
            path, best = viterbi(p.pi0, p.A[None], self._loglik_matrix(p, s, u, lp))
            self._require_possible(best, p, i, single, s, u, lp)
            out.append(path)
        return out[0] if single else out

    def sample_posterior(self, y, n_samples: int = 1, rng=None, inputs=None, pl=None):
        """Paths ``(n_samples, T)`` drawn from ``p(z | y, pl)`` (forward filtering, backward sampling)."""
        p = self._require_params()
        rng = as_rng(rng)
        n_samples = check_int("n_samples", n_samples, minimum=1)
        seqs, us, lps, single = self._prepare(y, inputs, pl)
        out = []
        for i, (s, u, lp) in enumerate(zip(seqs, us, lps)):
            loglik = self._loglik_matrix(p, s, u, lp)
            ll, filt, _ = forward(p.pi0, p.A[None], loglik)
            self._require_possible(ll, p, i, single, s, u, lp)
            out.append(sample_paths(p.pi0, p.A[None], loglik, filt, n_samples, rng))
        return out[0] if single else out

    def forecast(self, y, steps: int, n_samples: int = 200, rng=None, inputs=None, future_inputs=None, pl=None) -> HMMForecast:
        """State distribution (exact) and observation rollouts (sampled) ``steps`` ahead of one sequence."""
        p = self._require_params()
        rng = as_rng(rng)
        steps = check_int("steps", steps, minimum=1, error=ShapeError)
        n_samples = check_int("n_samples", n_samples, minimum=1)
        seqs, us, lps, single = self._prepare(y, inputs, pl)
        if not single:
            raise ShapeError("y: forecast takes one sequence; loop over a list")
        yv, u, lp = seqs[0], us[0], lps[0]
        T = len(yv)
        fut = np.zeros((steps, self.input_dim))
        if self.input_dim:
            if future_inputs is None:
                raise ShapeError(f"future_inputs: the model takes inputs; expected shape ({steps}, {self.input_dim})")
            fut = as_float_array("future_inputs", future_inputs, (1, 2)).reshape(len(future_inputs), -1)
            if fut.shape != (steps, self.input_dim) or not np.isfinite(fut).all():
                raise ShapeError(f"future_inputs: expected a finite array of shape ({steps}, {self.input_dim}), got shape {fut.shape}")
        ll, filt, _ = forward(p.pi0, p.A[None], self._loglik_matrix(p, yv, u, lp))
        self._require_possible(ll, p, 0, True, yv, u, lp)
        probs = np.empty((steps, self.n_states))
        cur = filt[-1]
        for h in range(steps):
            cur = cur @ p.A
            probs[h] = cur
        kp = self.kernel_params(inputs=np.vstack([u, fut]) if self.input_dim else None, _length=T + steps)
        ext = np.full((T + steps, self._obs_dim), np.nan)
        ext[:T] = yv
        states, obs = kern.rollouts(kp, ext, T, filt[-1], n_samples, rng)
        return HMMForecast(probs, states, obs, obs.mean(axis=0))

    # ------------------------------------------------------------------ model selection
    def n_free_parameters(self) -> int:
        """Free parameters (structural zeros and the absorbing row excluded)."""
        K, d = self.n_states, self._obs_dim
        n = K - 1
        n += int(sum(max(int(r.sum()) - 1, 0) for r in self.structure.mask))
        if self.emission_kind == "categorical":
            return n + K * (self.n_symbols - 1)
        cov = {"full": K * d * (d + 1) // 2, "diag": K * d, "tied": d * (d + 1) // 2}[self.covariance_type]
        n += K * self._q() * d + cov
        if self.lags:
            n += K * d + (K * d if self.covariance_type == "diag" else K * d * (d + 1) // 2)
        return n

    def aic(self, y, inputs=None, pl=None) -> float:
        """Akaike's information criterion ``-2 log p(y, pl) + 2 k`` of the current parameters (lower is better).

        ``k`` is :meth:`n_free_parameters`; the log-likelihood is :meth:`log_likelihood`
        summed over the sequences (arguments as there), so ``+inf`` for data of zero
        probability.
        """
        return -2.0 * self.log_likelihood(y, inputs, pl) + 2.0 * self.n_free_parameters()

    def bic(self, y, inputs=None, pl=None) -> float:
        """BIC with ``n`` the number of observed time steps (rows not entirely missing)."""
        seqs, _ = as_sequences("y", y, self._obs_dim)
        n_obs = sum(int((~np.isnan(s)).any(axis=1).sum()) for s in seqs)
        return -2.0 * self.log_likelihood(y, inputs, pl) + math.log(max(n_obs, 1)) * self.n_free_parameters()

    # ------------------------------------------------------------------ learning
    def fit(
        self,
        y,
        inputs=None,
        pl=None,
        init_params: HMMParams | None = None,
        max_iter: int = 100,
        tol: float = 1e-6,
        n_restarts: int = 1,
        rng=None,
        frozen=(),
        progress: bool = True,
    ) -> FitResult:
        """Baum-Welch (MAP-EM) over one or several sequences; sets ``self.params`` to the best run.

        Starts from ``init_params``, else from the current ``params`` (warm start),
        else from ``n_restarts`` data-driven initialisations (k-means for ergodic
        chains, random contiguous segments for left-to-right ones, guided by ``pl``).
        ``frozen`` names parameters EM keeps: ``"initial"``, ``"transitions"``,
        ``"emissions"``, or emission parts ``"coefs"``, ``"covs"``, ``"init"``.
        """
        frozen = check_names("frozen", frozen, ("initial", "transitions", "emissions", "coefs", "covs", "init"))
        max_iter, tol = check_fit_options(max_iter, tol)
        n_restarts = check_int("n_restarts", n_restarts, minimum=1)
        seqs, us, lps, _ = self._prepare(y, inputs, pl)
        rng = as_rng(rng)
        if init_params is not None:
            starts = [self.check_params(init_params)]
        elif self.params is not None:
            starts = [self.params]
        else:
            starts = [initial_params(self, seqs, us, lps, rng, r, HMMParams) for r in range(int(n_restarts))]
        res = fit_with_restarts(self, starts, seqs, us, lps, int(max_iter), float(tol), frozen, progress)
        self.params = res.params
        return res

    # ------------------------------------------------------------------ compiled face
    def kernels(self) -> ModelKernels:
        return ModelKernels(
            kern.sample_initial,
            kern.log_initial,
            kern.sample_transition,
            kern.log_transition,
            kern.log_transition_bound,
            kern.log_emission,
            kern.sample_emission,
            state_dim=1,
            obs_dim=self._obs_dim,
            n_states=self.n_states,
        )

    def kernel_params(self, inputs=None, times=None, pl=None, _length: int | None = None):
        """Kernel parameters for one sequence; ``pl`` ``(T, K)`` folds partial knowledge into ``log_emission``."""
        p = self._require_params()
        u = np.zeros((0, self.input_dim))
        if self.input_dim:
            if inputs is None:
                raise ShapeError(f"inputs: the model takes {self.input_dim}-dimensional inputs but none were given")
            u = np.ascontiguousarray(inputs, dtype=np.float64).reshape(-1, self.input_dim)
        log_pl = np.zeros((0, self.n_states))
        if pl is not None:
            T = len(pl) if _length is None else _length
            log_pl = log_plausibilities(pl, [T], self.n_states, True)[0]
        return kern.build(p, self.emission_kind, self.lags, u, log_pl)

    def sufficient_statistics(self) -> AdditiveFunctional:
        """Initial-state indicators, transition indicators and emission statistics, flattened.

        Layout: ``[K initial | K*K transitions | emission statistics]``, as :meth:`m_step` reads it.
        """
        K = self.n_states
        if self.emission_kind == "categorical":
            dim = K + K * K + K * self.n_symbols
        else:
            dim = K + K * K + eu.GaussianStats.zeros(K, self._q(), self._obs_dim).flat().size
        return AdditiveFunctional(kern.stats_initial, kern.stats_step, dim)

    def m_step(self, stats: np.ndarray, n_sequences: int = 1, n_steps: int | None = None) -> "HMM":
        """A new model with the MAP parameters for expected statistics ``stats`` (frozen: none)."""
        new = self._copy()
        new.params = self._m_step_params(np.asarray(stats, dtype=np.float64), self._require_params())
        return new

    # ------------------------------------------------------------------ persistence
    #: The emission kind a subclass fixes (its constructor passes it to :class:`HMM`); None: any.
    _EMISSION: str | None = None

    def _persist_state(self) -> dict:
        """The constructor's arguments (transition structure and prior included) and the parameters."""
        return {"n_states": self.n_states, "obs_dim": self._obs_dim, "emission": self.emission_kind,
                "lags": self.lags, "input_dim": self.input_dim, "covariance_type": self.covariance_type,
                "n_symbols": self.n_symbols, "transitions": self.structure, "prior": self.prior, "params": self.params}

    @classmethod
    def _from_persisted(cls, state: dict) -> "HMM":
        """Rebuild through :class:`HMM`'s validating constructor, as the exact saved class."""
        if cls._EMISSION is not None and state.get("emission") != cls._EMISSION:
            raise ParameterError(f"emission: a {cls.__name__} has emission {cls._EMISSION!r}, got {state.get('emission')!r}")
        model = cls.__new__(cls)
        HMM.__init__(model, **state)  # the subclasses' constructors only fix the emission kind
        _check_structure(model.structure, model.n_states)
        return model

    def _copy(self) -> "HMM":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __repr__(self) -> str:
        extra = f", lags={self.lags}" if self.lags else ""
        return f"{type(self).__name__}(n_states={self.n_states}, obs_dim={self._obs_dim}, emission={self.emission_kind!r}{extra})"


class ARHMM(HMM):
    """Autoregressive HMM (``emission="ar"``); with ``pl`` in ``fit``/``filter`` it is the ARPHMM."""

    _EMISSION = "ar"

    def __init__(self, n_states: int, obs_dim: int = 1, lags: int = 1, **kwargs):
        super().__init__(n_states, obs_dim, "ar", lags=lags, **kwargs)


class GaussianHMM(HMM):
    """HMM with Gaussian emissions (full, diagonal or tied covariances)."""

    _EMISSION = "gaussian"

    def __init__(self, n_states: int, obs_dim: int = 1, **kwargs):
        super().__init__(n_states, obs_dim, "gaussian", **kwargs)


class CategoricalHMM(HMM):
    """HMM with categorical emissions on ``n_symbols`` symbols."""

    _EMISSION = "categorical"

    def __init__(self, n_states: int, n_symbols: int, **kwargs):
        super().__init__(n_states, 1, "categorical", n_symbols=n_symbols, **kwargs)


def _check_structure(structure: TransitionStructure, K: int) -> None:
    """A loaded :class:`~hmm.transitions.TransitionStructure` (a plain container) checked as the builders make it."""
    mask, counts = np.asarray(structure.mask), np.asarray(structure.pseudo_counts)
    if mask.dtype != np.bool_ or mask.shape != (K, K) or not mask.any(axis=1).all():
        raise ParameterError(f"transitions.mask: expected a ({K}, {K}) bool array allowing a move from every state, "
                             f"got dtype {mask.dtype} and shape {mask.shape}")
    if counts.shape != (K, K) or not (np.isfinite(counts) & (counts >= 0)).all():
        raise ParameterError(f"transitions.pseudo_counts: expected ({K}, {K}) finite non-negative counts")
    if not isinstance(structure.absorbing, bool):
        raise ParameterError(f"transitions.absorbing: expected a bool, got {type(structure.absorbing).__name__}")


for _loadable in (HMMParams, em_.GaussianEmissionParams, em_.CategoricalEmissionParams, em_.EmissionPrior,
                  TransitionStructure, HMM, ARHMM, GaussianHMM, CategoricalHMM):
    register_loadable(_loadable)
