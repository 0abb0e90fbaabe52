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

    import numpy as np
    from hmm import ARHMM
    rng = np.random.default_rng(0)
    sequences, plausibilities = [], []
    for T in (60, 80, 70):
        stage = 4 * np.arange(T) // T                   # four stages, in order
        y = np.zeros((T, 2))
        for t in range(1, T):
            y[t] = 0.5 * y[t - 1] + stage[t] + 0.3 * rng.standard_normal(2)
        sequences.append(y)
        plausibilities.append(np.where(np.abs(np.arange(4) - stage[:, None]) <= 1, 1.0, 0.05))  # soft labels
    model = ARHMM(n_states=4, obs_dim=2, lags=1, transitions="left-to-right")
    result = model.fit(sequences, pl=plausibilities, n_restarts=3, rng=0, progress=False)
    filt = model.filter(sequences[0], pl=plausibilities[0])   # filt.filtered_probs (T, K)
    model.transition_matrix

Every method takes one sequence (``(T, d)``, or ``(T,)`` when ``d == 1``) or a
list of sequences, and returns one result or a list accordingly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from statespace.distributed import EStep
from statespace.errors import ParameterError, ShapeError
from statespace.interface import AdditiveFunctional, FitResult, ModelKernels
from statespace.persistence import register_loadable
from statespace.validation import (
    as_float_array,
    as_rng,
    as_sequences,
    check_choice,
    check_fit_options,
    check_int,
    check_probability_vector,
)

from . import emissions as em_
from . import kernels as kern
from .chain import ChainData, DiscreteChainModel, HMMFilterResult, HMMForecast, HMMSmoothResult
from .em import ChainStats, batched, chain_e_step, compile_e_step, fit_em
from .emission_models import CategoricalEmission, GaussianEmission
from .initialization import initial_params
from .partial_knowledge import log_plausibilities
from .transitions import TransitionStructure, make_structure

__all__ = [
    "ARHMM",
    "CategoricalHMM",
    "GaussianHMM",
    "HMM",
    "HMMFilterResult",
    "HMMForecast",
    "HMMParams",
    "HMMSmoothResult",
]

EMISSION_KINDS = ("gaussian", "ar", "categorical")
COVARIANCE_TYPES = ("full", "diag", "tied")
#: Most rows of one emission call when a list of sequences is processed (see ``HMM._inference_args``).
BATCH_ROWS = 1 << 18


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

    @classmethod
    def _trusted(cls, pi0: np.ndarray, A: np.ndarray, emission) -> HMMParams:
        """The container without validation, for EM's M-step (normalised counts, the structure's zeros kept)."""
        return _HMMParamsBase.__new__(cls, pi0, A, emission)


class HMM(DiscreteChainModel):
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

    The emission density is an object of ``hmm.emission_models`` (:class:`~hmm.GaussianEmission`, :class:`~hmm.CategoricalEmission`)
    (``self.emission_model``); every verb and EM go through it.
    """

    # a list of up to one emission call's rows arrives as one validated block (``_batch_runs`` slices it)
    _PACKED_ROWS = BATCH_ROWS

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
        self.covariance_type = covariance_type
        self.structure = make_structure(
            transitions, self.n_states, absorbing, check_int("max_jump", max_jump, minimum=1)
        )
        if prior is not None and not isinstance(prior, em_.EmissionPrior):
            raise ParameterError(f"prior: expected an hmm.EmissionPrior, got {type(prior).__name__}")
        self.prior = prior if prior is not None else em_.EmissionPrior()
        self.n_symbols = None if n_symbols is None else check_int("n_symbols", n_symbols, minimum=1)
        if emission == "categorical":
            if n_symbols is None:
                raise ParameterError("n_symbols: a categorical emission needs a positive number of symbols, got None")
            if self._obs_dim != 1 or self.input_dim:
                raise ParameterError("categorical emission: observations are one column of symbols and take no inputs")
            self.emission_model = CategoricalEmission(self.n_states, self.n_symbols, self.prior)
        else:
            self.emission_model = GaussianEmission(
                self.n_states, self._obs_dim, self.lags, self.input_dim, covariance_type, self.prior
            )
        self.params = None
        if params is not None:
            self.params = self.check_params(params)

    # ------------------------------------------------------------------ parameters
    def check_params(self, params: HMMParams) -> HMMParams:
        """Validate ``params`` against this model's structure (shapes, structural zeros)."""
        if not isinstance(params, HMMParams):
            raise ParameterError(f"params: expected an HMMParams, got {type(params).__name__}")
        self.emission_model.check_params(params.emission)
        self.structure.check("A", params.A)
        return params

    def _parameter_names(self) -> tuple:
        """``pi0``, ``A`` and the emission's fields (``weights``, ``covs``, ... or ``probs``)."""
        return ("pi0", "A") + self.emission_model.fields

    @property
    def transition_matrix(self) -> np.ndarray:
        """``(K, K)`` transition matrix of the current parameters."""
        return self._require_params().A

    # ------------------------------------------------------------------ the chain
    def _check_data(self, name: str, y: np.ndarray) -> None:
        self.emission_model.check_data(name, y)

    def _batch_runs(self, params, data: ChainData):
        """``(pi0, A, loglik, offsets)`` for each run of consecutive sequences: one emission call per run
        (its factors computed once, not once per sequence). Runs of at most BATCH_ROWS rows (or one longer
        sequence) keep each call's output small enough to come from the allocator's reused memory: one
        call over tens of millions of rows takes fresh pages from the system every time, which costs
        more than it saves."""
        A = params.A[None]
        seqs, inputs, log_pls = data.seqs, data.inputs, data.log_pls
        lengths = [len(s) for s in seqs]
        i = 0
        while i < len(seqs):
            j, rows = i, 0
            while j < len(seqs) and (j == i or rows + lengths[j] <= BATCH_ROWS):
                rows += lengths[j]
                j += 1
            # slices of the validation's Tiled lists: their blocks, without a copy
            y, u, log_pl, offsets = batched(seqs[i:j], inputs[i:j], log_pls[i:j], self.n_states)
            ll = self.emission_model.log_likelihood(params.emission, y, u, offsets)
            if log_pl is not None:
                ll = ll + log_pl
            yield params.pi0, A, ll, offsets
            i = j

    def _inference_args(self, params, data: ChainData):
        """A view per sequence of :meth:`_batch_runs`'s log-likelihoods."""
        for pi0, A, ll, offsets in self._batch_runs(params, data):
            for k in range(len(offsets) - 1):
                yield pi0, A, ll[offsets[k] : offsets[k + 1]]

    def _sample_future(self, params, data, i, last_filtered, steps, future_inputs, n_samples, rng):
        """Observation rollouts through the compiled kernels (an AR emission reads its own draws)."""
        yv, u = data.seqs[i], data.inputs[i]
        T = len(yv)
        kp = self.kernel_params(inputs=np.vstack([u, future_inputs]) if self.input_dim else None, _length=T + steps)
        ext = np.full((T + steps, self._obs_dim), np.nan)
        ext[:T] = yv
        states, obs = kern.rollouts(kp, ext, T, last_filtered, n_samples, rng)
        return np.broadcast_to(params.A, (steps, *params.A.shape)), states, obs

    # ------------------------------------------------------------------ model selection
    def n_free_parameters(self) -> int:
        """Free parameters (structural zeros and the absorbing row excluded)."""
        n = self.n_states - 1
        n += int(sum(max(int(r.sum()) - 1, 0) for r in self.structure.mask))
        return n + self.emission_model.n_free_parameters()

    def aic(self, y, inputs=None, pl=None) -> float:
        """Akaike's information criterion ``-2 log p(y, pl) + 2 k`` of the current parameters (lower is better).

        ``k`` is :meth:`~hmm.HMM.n_free_parameters`; the log-likelihood is :meth:`~hmm.DiscreteChainModel.log_likelihood`
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
    def _initial_params(self, data: ChainData, rng, restart: int = 0) -> HMMParams:
        return initial_params(self, data.seqs, data.inputs, data.log_pls, rng, restart, HMMParams)

    def _e_step(self, params: HMMParams, estep: EStep) -> ChainStats:
        """Summed expected statistics at ``params`` (:func:`hmm.em.chain_e_step` through ``estep``)."""
        return estep((self.emission_model, params))

    def _m_step_params(self, stats, old: HMMParams, frozen=frozenset()) -> HMMParams:
        """The MAP parameters for summed statistics ``stats`` (:class:`~hmm.em.ChainStats`); ``frozen`` fields keep ``old``."""
        _, pi_counts, trans, flat = stats
        pi0 = old.pi0 if "pi0" in frozen or pi_counts.sum() <= 0 else pi_counts / pi_counts.sum()
        A = old.A if "A" in frozen else self.structure.m_step(trans, old.A)
        e = self.emission_model.m_step(self.emission_model.stats_from_flat(flat), old.emission, frozen)
        return HMMParams._trusted(pi0, A, e)

    def _log_prior(self, params: HMMParams) -> float:
        return self.structure.log_prior(params.A) + self.emission_model.log_prior(params.emission)

    def fit(
        self,
        y,
        inputs=None,
        pl=None,
        *,
        init: HMMParams | None = None,
        frozen=None,
        max_iter: int = 100,
        tol: float = 1e-6,
        n_restarts: int = 1,
        rng=None,
        progress: bool = True,
    ) -> FitResult:
        """Baum-Welch (MAP-EM) over one or several sequences; sets ``self.params`` to the best run.

        Starts from ``init``, else from the current ``params`` (warm start), else from
        ``n_restarts`` data-driven initialisations (:meth:`~hmm.DiscreteChainModel.initialize`: k-means for
        ergodic chains, random contiguous segments for left-to-right ones, guided by
        ``pl``). ``frozen`` names parameter fields EM keeps: ``"pi0"``, ``"A"`` and the
        emission's fields (``"weights"``, ``"covs"``, ``"init_means"``, ``"init_covs"``;
        categorical: ``"probs"``).
        """
        frozen = self._frozen(frozen)
        max_iter, tol = check_fit_options(max_iter, tol)
        n_restarts = check_int("n_restarts", n_restarts, minimum=1)
        data = self._prepare(y, inputs, pl)
        rng = as_rng(rng)
        start = self._start(init)
        # looked up now, so that a test may replace the M-step on the instance
        e_step, m_step = self._e_step, self._m_step_params
        with EStep(chain_e_step, list(zip(data.seqs, data.inputs, data.log_pls))) as estep:
            if estep.in_process:  # an empty cache: the kernels of the start and of the E-step side by side
                compile_e_step(self.emission_model, self.n_states, estep.items)
            starts = [start] if start is not None else [self._initial_params(data, rng, r) for r in range(n_restarts)]
            res = fit_em(
                starts,
                lambda p: e_step(p, estep),
                lambda s, p: m_step(s, p, frozen),
                self._log_prior,
                int(max_iter),
                float(tol),
                f"Baum-Welch ({type(self).__name__})",
                "Baum-Welch",
                progress,
                estep,
            )
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
        return kern.build(p, self.emission_model.name, self.lags, u, log_pl)

    def sufficient_statistics(self) -> AdditiveFunctional:
        """Initial-state indicators, transition indicators and emission statistics, flattened.

        Layout: ``[K initial | K*K transitions | emission statistics]``, as :meth:`m_step` reads it.
        """
        K = self.n_states
        dim = K + K * K + self.emission_model.flat_stats(self.emission_model.zero_stats()).size
        return AdditiveFunctional(kern.stats_initial, kern.stats_step, dim)

    def m_step(self, stats: np.ndarray, n_sequences: int = 1, n_steps: int | None = None) -> HMM:
        """A new model with the MAP parameters for expected statistics ``stats`` (flat layout; frozen: none)."""
        K = self.n_states
        stats = np.asarray(stats, dtype=np.float64)
        new = self._copy()
        new.params = self._m_step_params(
            ChainStats(0.0, stats[:K], stats[K : K + K * K].reshape(K, K), stats[K + K * K :]), self._require_params()
        )
        return new

    # ------------------------------------------------------------------ persistence
    #: The emission kind a subclass fixes (its constructor passes it to :class:`HMM`); None: any.
    _EMISSION: str | None = None

    def _persist_state(self) -> dict:
        """The constructor's arguments (transition structure and prior included) and the parameters."""
        return {
            "n_states": self.n_states,
            "obs_dim": self._obs_dim,
            "emission": self.emission_kind,
            "lags": self.lags,
            "input_dim": self.input_dim,
            "covariance_type": self.covariance_type,
            "n_symbols": self.n_symbols,
            "transitions": self.structure,
            "prior": self.prior,
            "params": self.params,
        }

    @classmethod
    def _from_persisted(cls, state: dict) -> HMM:
        """Rebuild through :class:`HMM`'s validating constructor, as the exact saved class."""
        if cls._EMISSION is not None and state.get("emission") != cls._EMISSION:
            raise ParameterError(
                f"emission: a {cls.__name__} has emission {cls._EMISSION!r}, got {state.get('emission')!r}"
            )
        model = cls.__new__(cls)
        HMM.__init__(model, **state)  # the subclasses' constructors only fix the emission kind
        _check_structure(model.structure, model.n_states)
        return model

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
        raise ParameterError(
            f"transitions.mask: expected a ({K}, {K}) bool array allowing a move from every state, "
            f"got dtype {mask.dtype} and shape {mask.shape}"
        )
    if counts.shape != (K, K) or not (np.isfinite(counts) & (counts >= 0)).all():
        raise ParameterError(f"transitions.pseudo_counts: expected ({K}, {K}) finite non-negative counts")
    if not isinstance(structure.absorbing, bool):
        raise ParameterError(f"transitions.absorbing: expected a bool, got {type(structure.absorbing).__name__}")


for _loadable in (
    HMMParams,
    em_.GaussianEmissionParams,
    em_.CategoricalEmissionParams,
    em_.EmissionPrior,
    TransitionStructure,
    HMM,
    ARHMM,
    GaussianHMM,
    CategoricalHMM,
):
    register_loadable(_loadable)
