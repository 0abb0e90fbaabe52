r"""Remaining useful life with the partially-supervised autoregressive HMM (ARPHMM).

**Model.** A left-to-right chain on ``K`` states: state 0 is *healthy*, states
``1..K-2`` are degradation stages, and state ``K-1`` is *failed* (absorbing).
Each operating state emits the engine's feature vector through an
autoregressive Gaussian (Juesas & Ramasso's ARPHMM; ``lags=0`` gives Gaussian
emissions), with ``J = max_jump`` stages at most per cycle:

.. math::

    z_t \mid z_{t-1} = i \sim A_{i,\cdot} \;(A_{ij} = 0 \text{ unless } i \le j \le i + J), \qquad
    y_t \mid z_t = k \sim N\!\Big(b_k + \textstyle\sum_{l=1}^{L} A_{k,l}\, y_{t-l},\; \Sigma_k\Big).

**Partial knowledge from the life fraction.** A training engine that fails
after ``T`` cycles has RUL ``r_t = T - 1 - t`` at cycle ``t``. Stage ``k``
(``1 <= k <= K-2``) covers RUL values in ``[c - k w, c - (k-1) w)`` with
``w = c / (K-2)``, ``c`` the ``cap``; the healthy state covers ``r >= c``. The
plausibility of stage ``k`` is 1 inside its bin and decays as a Gaussian of the
distance to the bin in units of ``softness * w`` outside it (soft labels:
early cycles are plausible only in healthy states, final cycles only in the
last stages), and the failed state has plausibility 0 while the engine runs.
One extra, unobserved step (a missing row) with plausibility ``e_{K-1}`` marks
the failure, so EM sees every engine leave the last stage and the exit rate
of each stage is learned. EM (:meth:`hmm.HMM.fit` with ``pl``) fits all
engines together.

**Prediction.** For an engine observed up to cycle ``t`` the filter gives
:math:`\alpha = p(z_t \mid y_{0:t})` (no plausibilities at test time). The RUL
counted after cycle ``t`` is ``tau - 1`` with ``tau`` the time to absorption of
the chain started from :math:`\alpha`: a discrete phase-type distribution
(:func:`statespace.prognostics.time_to_absorption`), giving mean and quantiles
in closed form. Under the field's convention of capped RUL targets the point
forecast is :math:`E[\min(\mathrm{RUL}, c_{pred})]` (``point="capped_mean"``)
or the median. Optional recalibration maps nominal quantile levels through the
empirical distribution of probability-integral transforms measured by
cross-validation (Kuleshov et al., 2018), so 90% intervals cover about 90%.

**Empirical readout** (``readout="empirical"``). The phase-type RUL inherits
the chain's geometric sojourns and the filter's lag. Instead, the RUL of state
``k`` at age ``a`` can be read from the training engines
(:class:`statespace.prognostics.StateRULReadout`): the RUL of every training
cycle, weighted by the filtered probability of ``k`` at that cycle and by a
Gaussian kernel in age, mixed over the filtered state distribution at the
cut, :math:`p(r \mid y_{0:t}) \propto \sum_k \alpha_k \hat p(r \mid k, t)`.
The training posteriors are the in-sample filtered ones: what the filter
says at each training cycle, so the readout also absorbs the filter's lag.

Example::

    import numpy as np
    rng = np.random.default_rng(0)
    def engine(T):      # run to failure: two features drifting faster and faster
        frac = np.arange(T) / (T - 1)
        return np.column_stack([-3.0 * frac**3, 2.0 * frac**2]) + 0.25 * rng.standard_normal((T, 2))
    train_features = [engine(T) for T in rng.integers(60, 120, 20)]
    test_features = [engine(T)[: T // 2] for T in rng.integers(60, 120, 5)]   # cut before failure
    from hmm.rul import ARPHMMRUL
    model = ARPHMMRUL(n_states=8, lags=1, cap=40)
    model.fit(train_features, rng=0, progress=False)   # a FitResult; the model keeps the fit
    pred = model.predict(test_features)     # pred.rul, pred.q05, pred.q50, pred.q95
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from statespace.datasets.cmapss.features import SensorFeatures
from statespace.distributed import map_jobs
from statespace.errors import DataError, ParameterError, ShapeError
from statespace.interface import FitResult
from statespace.persistence import register_loadable
from statespace.prognostics import (
    StateRULReadout,
    capped_means,
    cdfs,
    cut_positions,
    cut_weights,
    quantiles,
    rul_report,
    truncation_splits,
)
from statespace.prognostics.metrics import check_weights
from statespace.prognostics.phase_type import PhaseTypeDistribution, time_to_absorption, times_to_absorption
from statespace.progress import progress_bar
from statespace.validation import (
    as_float_array,
    as_rng,
    as_sequences,
    check_choice,
    check_finite,
    check_fit_options,
    check_int,
    check_real,
)

from ..emissions import EmissionPrior
from ..model import HMM
from .state import SavedRULModel, chain_state, features_state, restore_chain, restore_features


def life_fraction_plausibilities(length: int, n_states: int, cap: float, softness: float = 0.5) -> np.ndarray:
    """Soft state labels ``(length + 1, n_states)`` of a run-to-failure engine.

    Row ``t < length`` is the operating cycle ``t`` (RUL ``length - 1 - t``);
    the last row is the failure step (only the failed state ``n_states - 1``).
    See the module docstring for the bins.
    """
    K = int(n_states)
    if K < 3:
        raise ParameterError(f"n_states: expected at least 3 (healthy, one stage, failed), got {n_states}")
    if not cap > 0 or not softness > 0:
        raise ParameterError(f"cap, softness: expected positive numbers, got {cap}, {softness}")
    T = int(length)
    if T < 1:
        raise ShapeError(f"length: expected a positive number of cycles, got {length}")
    n_bins = K - 2
    w = cap / n_bins
    r = np.arange(T - 1, -1, -1, dtype=np.float64)[:, None]
    k = np.arange(1, n_bins + 1)
    lo = np.r_[cap, cap - k * w]
    hi = np.r_[np.inf, cap - (k - 1) * w]
    lo[-1] = -np.inf  # the last stage takes every RUL below its upper edge
    dist = np.maximum(0.0, np.maximum(lo[None] - r, r - hi[None])) / (softness * w)
    pl = np.zeros((T + 1, K))
    pl[:T, : K - 1] = np.exp(-0.5 * dist**2)
    pl[T, K - 1] = 1.0
    return pl


class RULPrediction(NamedTuple):
    """Predictive RUL of each engine (cycles after its last observed one).

    Attributes:
        rul: ``(n,)`` point forecasts.
        q05, q50, q95: ``(n,)`` predictive quantiles (recalibrated when the model is).
        mean: ``(n,)`` uncapped phase-type means.
        state_probs: ``(n, K)`` filtered state distributions at the last cycle.
        distributions: the predictive RUL distribution of each engine (phase-type,
            or the empirical readout's mixture: both ``PhaseTypeDistribution``).
    """

    rul: np.ndarray
    q05: np.ndarray
    q50: np.ndarray
    q95: np.ndarray
    mean: np.ndarray
    state_probs: np.ndarray
    distributions: list


class ChainRULModel:
    """What the ARPHMM RUL models share: the left-to-right chain's layout and labels, the RUL
    readout (phase-type or empirical), the point forecast and the recalibration of intervals,
    and the chain's verbs (``filter``, ``smooth``, ``predict``, ``log_likelihood``, ...) delegated
    to the fitted chain.

    Subclasses (:class:`ARPHMMRUL`, :class:`hmm.rul.DeepARPHMMRUL`) set ``self.hmm`` in
    ``fit``: a :class:`hmm.chain.DiscreteChainModel` with ``transition_matrix``.
    """

    def __init__(self, n_states, cap, softness, point, point_cap, horizon, max_jump, readout, age_bandwidth):
        self.point = check_choice("point", point, ("capped_mean", "median"))
        self.horizon = None if horizon is None else check_int("horizon", horizon, minimum=1)
        self.max_jump = check_int("max_jump", max_jump, minimum=1)
        self.readout = check_choice("readout", readout, ("phase_type", "empirical"))
        self.n_states = check_int("n_states", n_states, minimum=1)
        self.cap = check_real("cap", cap, 0.0, strict=True)
        self.softness = check_real("softness", softness, 0.0)
        self.point_cap = self.cap if point_cap is None else check_real("point_cap", point_cap, 0.0, strict=True)
        self.age_bandwidth = (
            None if age_bandwidth is None else check_real("age_bandwidth", age_bandwidth, 0.0, strict=True)
        )
        self.readout_model = None
        if readout == "empirical":
            self.readout_model = StateRULReadout(age_bandwidth)  # validates age_bandwidth
        self.hmm = None
        self.pit_levels = None
        life_fraction_plausibilities(1, self.n_states, self.cap, self.softness)  # validates K, cap, softness

    @staticmethod
    def _engines(y) -> tuple[list, bool]:
        """``(sequences, single)``: the run-to-failure engines ``y`` as ``(T_i, d)`` arrays of one width ``d``."""
        seqs, single = as_sequences("y", y)
        seqs, _ = as_sequences("y", seqs, seqs[0].shape[1])
        return seqs, single

    def training_data(self, seqs, dt=None):
        """Run-to-failure engines (a list) with the failure step appended: ``(padded, pl, dt)`` lists."""
        d = seqs[0].shape[1]
        pls = [life_fraction_plausibilities(len(s), self.n_states, self.cap, self.softness) for s in seqs]
        padded = [np.vstack([s, np.full((1, d), np.nan)]) for s in seqs]
        dts = None if dt is None else [np.r_[np.asarray(a, dtype=np.float64), 1.0] for a in dt]
        return padded, pls, dts

    def _fit_readout(self, seqs, **kw) -> None:
        """After fitting the chain: forget the recalibration and, for the empirical readout, fit it on
        what the filter (given ``kw``) says on each training cycle, so that it also absorbs the filter's lag."""
        self.pit_levels = None
        if self.readout == "empirical":
            self.readout_model.fit(self.filter(seqs, **kw))

    @property
    def transition_matrix(self) -> np.ndarray:
        """``(K, K)`` transition matrix of the fitted left-to-right chain.

        Raises:
            ParameterError: the model is not fitted yet.
        """
        return self._require().transition_matrix

    def _require(self):
        if self.hmm is None or self.hmm.params is None:
            raise ParameterError(f"{type(self).__name__}: the model is not fitted; call fit first")
        return self.hmm

    def rul_distribution(self, state_probs, age: int | None = None) -> PhaseTypeDistribution:
        """RUL (cycles after the current one) from a state distribution.

        Phase-type (the chain's time to absorption), or the empirical readout at
        ``age`` (the 0-based index of the current cycle) when ``readout="empirical"``.
        """
        A = self.transition_matrix
        if self.readout == "empirical":
            if age is None:
                raise ParameterError("age: the empirical readout needs the current cycle index")
            dist = self.readout_model.distribution(state_probs, age)
        else:
            dist = time_to_absorption(state_probs, A, **self._absorption)
        return dist if self.horizon is None else dist.conditioned_below(self.horizon)

    @property
    def _absorption(self) -> dict:
        """The phase-type readout's settings: failure is the last state, entered one cycle after the last
        operating one (offset 1), the grid cut where ``P(RUL > n) < 1e-8``."""
        return {"absorbing": [self.n_states - 1], "offset": 1, "tol": 1e-8}

    def _prediction(self, probs, ages) -> RULPrediction:
        """Predictions from filtered state distributions ``probs (n, K)`` at the engines' ages (0-based cycles)."""
        if self.readout == "empirical":  # one readout table per distinct age
            dists = self.readout_model.distributions(probs, ages)
        else:  # every engine's survival curve in one compiled loop
            dists = times_to_absorption(probs, self.transition_matrix, **self._absorption)
        if self.horizon is not None:
            dists = [d.conditioned_below(self.horizon) for d in dists]
        return predict_from_distributions(dists, probs, self.point, self.point_cap, self.pit_levels)

    def calibrate(self, distributions, true_rul, rng=None, weights=None):
        """Recalibrate quantile levels from held-out (distribution, true RUL) pairs, optionally weighted
        (:func:`recalibrated_levels`); ``predict`` then reports ``F^{-1}(Q_u(level))``. Returns ``self``."""
        self.pit_levels = recalibrated_levels(distributions, true_rul, rng, weights)
        return self

    # ------------------------------------------------------------------ the chain's verbs, delegated
    # ``kw``: what the chain's verbs take beside the data (``dt`` for the S5 emission); the
    # plausibilities of training are never used here: what the features alone say.
    def filter(self, y, **kw):
        """Causal filtered state probabilities ``(T, K)`` of an engine (a list for a list).

        An engine far from every training trajectory can make all reachable states
        improbable at once, with states revived later that a scaled pass would have
        lost to underflow; the shared forward pass switches to log space exactly
        then, so the answer is exact either way.
        """
        out = self._require().filter(y, **kw)
        return [r.filtered_probs for r in out] if isinstance(out, list) else out.filtered_probs

    def smooth(self, y, **kw):
        """Smoothed state probabilities ``(T, K)`` (a list for a list)."""
        out = self._require().smooth(y, **kw)
        return [r.smoothed_probs for r in out] if isinstance(out, list) else out.smoothed_probs

    def predict(self, y, **kw) -> RULPrediction:
        """Predictive RUL after the last cycle of each engine (one row per engine).

        Each sequence must start at the engine's first cycle: the empirical
        readout takes the engine's age from its length.
        """
        seqs, single = as_sequences("y", y, self._require().obs_dim)
        filtered = self.filter(y, **kw)
        filtered = [filtered] if single else filtered
        return self._prediction(np.array([f[-1] for f in filtered]), np.array([len(s) - 1 for s in seqs]))

    def predict_cuts(self, y, cuts) -> RULPrediction:
        """Predictive RUL of each cut: engine ``y[c.engine]`` after its first ``c.n_observed`` cycles.

        The filter is causal, so this is ``predict([y[c.engine][:c.n_observed] for c in cuts])``
        to round-off, from one filtering pass per engine (up to its longest cut) where that
        takes one pass per cut: cross-validation at every admissible cut
        (:func:`statespace.prognostics.truncation_splits`) cuts each engine a hundred times.
        """
        seqs, _ = as_sequences("y", y, self._require().obs_dim)
        engines, n_observed = cut_positions(cuts, [len(s) for s in seqs])
        used, rows, longest = _longest_prefixes(engines, n_observed)
        return self._prefix_predictions([seqs[e][:n] for e, n in zip(used, longest)], rows, n_observed)

    def _prefix_predictions(self, seqs, rows, n_observed) -> RULPrediction:
        """Predictions after the first ``n_observed[j]`` cycles of ``seqs[rows[j]]``: one filter pass per sequence."""
        filtered = self.filter(list(seqs))
        probs = np.array([filtered[r][n - 1] for r, n in zip(rows, n_observed)])
        return self._prediction(probs, n_observed - 1)

    def sample(self, T: int, rng=None, inputs=None, times=None):
        """``(states (T, 1), features (T, d))`` simulated from the fitted chain."""
        return self._require().sample(T, rng=rng, inputs=inputs, times=times)

    def log_likelihood(self, y, **kw) -> float:
        """``log p(y)`` of the engines' features under the fitted chain, summed (no plausibilities)."""
        return self._require().log_likelihood(y, **kw)

    def most_likely_states(self, y, **kw):
        """Viterbi stage path(s) of the engines."""
        return self._require().most_likely_states(y, **kw)

    def sample_posterior(self, y, n_samples: int = 1, rng=None, **kw):
        """Stage paths ``(n_samples, T)`` drawn from ``p(z | y)`` per engine."""
        return self._require().sample_posterior(y, n_samples, rng, **kw)

    def forecast(self, y, steps: int, n_samples: int = 200, rng=None, **kw):
        """Stage distribution and feature rollouts ``steps`` cycles ahead (:class:`hmm.HMMForecast` per engine)."""
        return self._require().forecast(y, steps, n_samples, rng, **kw)

    #: The class of ``self.hmm`` (checked on loading).
    _HMM: type = HMM

    def _persist_state(self) -> dict:
        return chain_state(self)

    @classmethod
    def _from_persisted(cls, state: dict):
        return restore_chain(cls, state, cls._HMM)


def _longest_prefixes(engines, n_observed):
    """``(used, rows, longest)``: the distinct engines of the cuts, each cut's position among them and
    each engine's longest cut (what one pass per engine must cover)."""
    used, rows = np.unique(engines, return_inverse=True)
    longest = np.zeros(len(used), dtype=np.int64)
    np.maximum.at(longest, rows, n_observed)
    return used, rows, longest


def predict_from_distributions(
    dists, state_probs, point="capped_mean", point_cap=125.0, pit_levels=None
) -> RULPrediction:
    """:class:`RULPrediction` from each engine's predictive distribution.

    The point forecast is ``E[min(RUL, point_cap)]`` (``point="capped_mean"``) or
    the median capped at ``point_cap``; the quantiles are at 5%, 50% and 95%, or at
    the levels ``pit_levels`` (from :func:`recalibrated_levels`) maps them to.
    """
    levels = np.array([0.05, 0.5, 0.95])
    if pit_levels is not None:
        levels = np.interp(levels, pit_levels[0], pit_levels[1])
    q = quantiles(dists, levels).astype(np.float64)
    if point == "capped_mean":
        rul = capped_means(dists, [point_cap])[:, 0]
    else:
        rul = np.minimum(q[:, 1], point_cap)
    mean = np.array([dist.mean for dist in dists], dtype=np.float64)
    return RULPrediction(rul, q[:, 0], q[:, 1], q[:, 2], mean, np.asarray(state_probs), list(dists))


def recalibrated_levels(distributions, true_rul, rng=None, weights=None):
    """``(nominal, quantile)`` levels from held-out (distribution, true RUL) pairs.

    The empirical quantile function of the randomised PIT values
    ``u_i = F_i(r_i - 1) + V (F_i(r_i) - F_i(r_i - 1))``, ``V ~ U(0, 1)``, uniform
    for a calibrated model (Kuleshov et al., 2018): a nominal level ``q`` is then
    reported as ``F^{-1}(Q_u(q))``. ``weights`` (e.g. :attr:`CVResult.weights`)
    weigh the pairs: the sorted ``u`` are placed at their cumulative weight, which
    for equal weights is NumPy's linear ``quantile``.
    """
    true_rul = check_finite("true_rul", as_float_array("true_rul", true_rul, 1))
    if len(true_rul) != len(distributions):
        raise ShapeError(f"true_rul: got {len(true_rul)} values for {len(distributions)} distributions")
    w = check_weights(weights, len(true_rul))
    rng = as_rng(rng)
    F = cdfs(distributions, np.c_[true_rul - 1, true_rul])  # F_i(r_i - 1), F_i(r_i)
    u = F[:, 0] + rng.random(len(F)) * (F[:, 1] - F[:, 0])
    order = np.argsort(u[w > 0], kind="stable")
    u, w = u[w > 0][order], w[w > 0][order]
    nominal = np.linspace(0.0, 1.0, 201)
    if len(u) == 1:
        return nominal, np.full_like(nominal, u[0])
    position = np.cumsum(w) - w[0]
    return nominal, np.interp(nominal, position / position[-1], u)


class ARPHMMRUL(ChainRULModel):
    """ARPHMM remaining-useful-life model (see the module docstring).

    Args:
        n_states: ``K``, healthy + ``K-2`` stages + failed.
        lags: AR order ``L`` (0: Gaussian emissions).
        cap: ``c``, RUL span of the degradation stages (and of the capped point forecast).
        softness: width of the soft labels in units of a stage's span.
        covariance_type: ``"tied"``, ``"diag"`` or ``"full"``.
        ridge: ridge penalty on the AR coefficients (shrinks them towards 0).
        point: ``"capped_mean"`` (``E[min(RUL, point_cap)]``) or ``"median"``.
        point_cap: cap of the point forecast (default ``cap``).
        horizon: condition the predictive distribution on ``RUL <= horizon``
            (the design of test sets cut at most ``horizon`` cycles before
            failure); ``None`` keeps the plain phase-type distribution.
        max_jump: largest number of stages the chain may advance in one cycle
            (more than 1 lets the filter catch up with a fast engine).
        max_iter, tol: EM settings.
        readout: ``"phase_type"`` (time to absorption of the chain) or
            ``"empirical"`` (:class:`~statespace.prognostics.StateRULReadout`).
        age_bandwidth: age kernel of the empirical readout in cycles (``None``: no age).
    """

    def __init__(
        self,
        n_states: int = 30,
        lags: int = 1,
        cap: float = 125.0,
        softness: float = 0.5,
        covariance_type: str = "full",
        ridge: float = 1.0,
        point: str = "capped_mean",
        point_cap: float | None = None,
        horizon: int | None = None,
        max_jump: int = 2,
        max_iter: int = 15,
        tol: float = 1e-5,
        readout: str = "phase_type",
        age_bandwidth: float | None = 10.0,
    ):
        self.lags = check_int("lags", lags, minimum=0)
        super().__init__(n_states, cap, softness, point, point_cap, horizon, max_jump, readout, age_bandwidth)
        self.covariance_type = covariance_type
        self.ridge = check_real("ridge", ridge, 0.0)
        self.max_iter, self.tol = check_fit_options(max_iter, tol)

    def _new_hmm(self, obs_dim: int) -> HMM:
        prior = EmissionPrior(reg_covar=1e-6, ridge=self.ridge)
        return HMM(
            self.n_states,
            obs_dim,
            "ar" if self.lags else "gaussian",
            lags=self.lags,
            covariance_type=self.covariance_type,
            transitions="left-to-right",
            max_jump=self.max_jump,
            prior=prior,
        )

    def fit(self, y, rng=None, progress: bool = True, *, init=None) -> FitResult:
        """EM on run-to-failure engines ``y`` (each sequence ends at the engine's last cycle); ``init``: starting
        :class:`~hmm.HMMParams` (default: the data-driven start of :meth:`hmm.HMM.fit`)."""
        seqs, _ = self._engines(y)
        padded, pls, _ = self.training_data(seqs)
        self.hmm = self._new_hmm(seqs[0].shape[1])
        rng = as_rng(rng)
        res = self.hmm.fit(padded, pl=pls, init=init, max_iter=self.max_iter, tol=self.tol, rng=rng, progress=progress)
        self._fit_readout(seqs)
        return res


class RULPipeline(SavedRULModel):
    """Features (``SensorFeatures``) followed by an :class:`ARPHMMRUL`.

    Works on raw per-engine sensor and setting arrays, so that cross-validation
    refits the whole pipeline (normalisation included) on each fold.
    """

    def __init__(self, features=None, model: ARPHMMRUL | None = None):
        self.features = features if features is not None else SensorFeatures(baseline_cycles=20)
        self.model = model if model is not None else ARPHMMRUL()

    def fit(self, sensors, settings=None, rng=None, progress: bool = True) -> FitResult:
        """Fit the features on the training engines, then the RUL model on their features.

        Args:
            sensors: per-engine sensor arrays ``(T_i, n_sensors)`` running to failure.
            settings: per-engine operating-setting arrays ``(T_i, n_settings)``, or ``None``.
            rng: seed or ``numpy.random.Generator`` for the model's EM restarts.
            progress: show a progress bar (only when attached to a terminal or notebook).

        Returns:
            The RUL model's :class:`~statespace.FitResult`.
        """
        x = self.features.fit_transform(sensors, settings)
        return self.model.fit(x, rng=rng, progress=progress)

    def transform(self, sensors, settings=None) -> list[np.ndarray]:
        """Per-engine feature arrays ``(T_i, n_features)`` from the fitted feature steps."""
        return self.features.transform(sensors, settings)

    def predict(self, sensors, settings=None) -> RULPrediction:
        """RUL distributions, point forecasts and intervals at the last cycle of each engine given."""
        return self.model.predict(self.transform(sensors, settings))

    def predict_cuts(self, sensors, settings, cuts) -> RULPrediction:
        """:meth:`predict` for each cut ``c``: engine ``sensors[c.engine]`` after its first ``c.n_observed`` cycles.

        Equal to ``predict`` of the truncated engines to round-off, from one feature transform and
        one filtering pass per engine: the features of an engine's first ``n`` cycles are the
        first ``n`` rows of its features once ``n`` reaches ``features.baseline_cycles`` (the
        operating-condition normalisation and the health indicator act row by row, the baseline
        is the mean of those first cycles, the smoothing is causal). Shorter cuts are
        transformed on their own.
        """
        engines, n_observed = cut_positions(cuts, [len(s) for s in sensors])
        whole = n_observed >= self.features.baseline_cycles
        used, rows, longest = _longest_prefixes(engines[whole], n_observed[whole])
        parts = list(zip(used, longest)) + list(zip(engines[~whole], n_observed[~whole]))
        seq_of_cut = np.empty(len(engines), dtype=np.int64)
        seq_of_cut[whole] = rows
        seq_of_cut[~whole] = len(used) + np.arange(int((~whole).sum()))
        feats = self.transform(
            [sensors[e][:n] for e, n in parts], None if settings is None else [settings[e][:n] for e, n in parts]
        )
        return self.model._prefix_predictions(feats, seq_of_cut, n_observed)

    def _persist_state(self) -> dict:
        return {"features": features_state(self.features), "model": self.model}

    @classmethod
    def _from_persisted(cls, state: dict) -> RULPipeline:
        feats, model = restore_features(state["features"]), state["model"]
        if not isinstance(model, ChainRULModel):
            raise DataError(f"model: expected a chain RUL model, got a {type(model).__name__}")
        if model.hmm.obs_dim != feats.n_features:
            raise DataError(
                f"model: the model reads {model.hmm.obs_dim} features, the transform gives {feats.n_features}"
            )
        return cls(feats, model)


class CVResult(NamedTuple):
    """Cross-validated predictions: one entry per cut (see :func:`statespace.prognostics.truncation_splits`).

    ``weights`` are :func:`statespace.prognostics.cut_weights` (one over the engine's
    number of cuts); ``report`` is weighted by them, so its ``score`` is the expected
    PHM08 sum of a test set with one cut of each held-out engine.
    """

    cuts: list
    prediction: RULPrediction
    true_rul: np.ndarray
    report: dict
    weights: np.ndarray


def predict_cuts(pipe, sensors, settings, cuts) -> RULPrediction:
    """``pipe``'s predictions of the truncated engines ``sensors[c.engine][:c.n_observed]``: its own
    ``predict_cuts`` (one pass per engine) where it has one, else ``predict`` of the truncations."""
    if hasattr(pipe, "predict_cuts"):
        return pipe.predict_cuts(sensors, settings, cuts)
    engines, n_observed = cut_positions(cuts, [len(s) for s in sensors])
    return pipe.predict(
        [sensors[e][:n] for e, n in zip(engines, n_observed)],
        None if settings is None else [settings[e][:n] for e, n in zip(engines, n_observed)],
    )


def cross_validate(
    make_pipeline,
    sensors,
    settings=None,
    n_folds: int = 5,
    n_cuts: int | str = 3,
    min_cycles: int = 31,
    max_rul: int = 150,
    rng=None,
    progress: bool = True,
) -> CVResult:
    """Fit ``make_pipeline()`` on the training folds, predict the truncated held-out engines.

    ``sensors`` (and ``settings``) are lists of per-engine run-to-failure arrays.
    ``n_cuts``: random cuts per held-out engine, or ``"all"`` (every admissible cut:
    expected metrics over the cut, :func:`statespace.prognostics.truncation_splits`).
    The report, each engine weighing one, holds RMSE, MAE, the PHM08 score (summed
    over engines and per engine), and the coverage of the raw (uncalibrated) 90% intervals.
    Each fold fits with its own generator spawned from ``rng``, so the folds run as
    independent jobs (:func:`statespace.distributed.map_jobs`) with the same result anywhere.
    """
    rng = as_rng(rng)
    lengths = [len(s) for s in sensors]
    if settings is None:
        settings = [None] * len(sensors)
    splits = list(truncation_splits(lengths, n_folds, n_cuts, min_cycles, max_rul, rng))

    def fold(job):  # one fold, with its own generator: a Dask task inside statespace.distributed.use
        (train, cuts), fold_rng = job
        pipe = make_pipeline()
        set_tr = None if settings[0] is None else [settings[i] for i in train]
        pipe.fit([sensors[i] for i in train], set_tr, rng=fold_rng, progress=False)
        return predict_cuts(pipe, sensors, None if settings[0] is None else settings, cuts)

    with progress_bar(len(splits), "cross-validation", progress) as bar:
        parts = map_jobs(fold, list(zip(splits, rng.spawn(len(splits)))), on_done=lambda: bar.update(1))
    all_cuts = [c for _, cuts in splits for c in cuts]
    pred = RULPrediction(
        *[np.concatenate([getattr(p, f) for p in parts]) for f in RULPrediction._fields[:6]],
        [d for p in parts for d in p.distributions],
    )
    true = np.array([c.rul for c in all_cuts], dtype=np.float64)
    weights = cut_weights(all_cuts)
    return CVResult(all_cuts, pred, true, rul_report(pred.rul, true, pred.q05, pred.q95, weights), weights)


register_loadable(ARPHMMRUL)
register_loadable(RULPipeline)
