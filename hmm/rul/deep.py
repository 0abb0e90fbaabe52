r"""Remaining useful life with an ARPHMM whose emission reads an S5 encoding of the sensor history.

**Model.** The chain of :mod:`hmm.rul`: ``K`` states, 0 healthy, ``1..K-2``
degradation stages, ``K-1`` failed (absorbing), left-to-right moves of at most
``J = max_jump`` stages per cycle. The emission of the multivariate feature
vector :math:`y_t \in \mathbb R^d` is a diagonal Gaussian whose per-state mean
and scale are produced by a causal S5 network reading the sensor history
(:class:`hmm.learned_emission.LearnedEmissionHMM` with ``layer="s5"``):

.. math::

    z_t \mid z_{t-1} = i \sim A_{i,\cdot}\ (A_{ij} = 0 \text{ unless } i \le j \le i + J), \qquad
    h_t = \mathrm{S5}_\theta\big(v_{0:t};\ \Delta t_{1:t}\big),\quad v_t = (\tilde y_{t-1}, m_{t-1}),

.. math::

    y_t^{(j)} \mid z_t = k,\ y_{0:t-1} \sim \mathcal N\big(\mu_k^{(j)}(h_t),\ \sigma_k^{(j)}(h_t)^2\big).

The S5 steps are the cycle increments :math:`\Delta t_t` (``dt``; CMAPSS cycles
are consecutive, so 1 unless the user passes irregular inspection times). The
classical ARPHMM is the special case where :math:`\mu_k` is affine in
:math:`y_{t-1}` and :math:`\sigma_k` constant; here the "AR part" is a learned
long-memory filter of all 14 sensors.

**Partial knowledge and learning.** The training engines carry the soft
life-fraction labels of :func:`hmm.rul.life_fraction_plausibilities` and one
extra missing row at failure (plausible only in the failed state), exactly as
for the classical model. Generalised EM
(:meth:`hmm.learned_emission.LearnedEmissionHMM.fit`): exact E-step with the
plausibilities, closed-form ``pi`` and ``A`` (structural zeros stay zero),
Adam steps on the network accepted only if the expected complete-data
log-likelihood rises (so the objective never decreases). Start: a classical
Gaussian ARPHMM (diagonal covariances) fitted by EM gives ``A``, ``pi`` and
state posteriors on which the network is pre-trained.

**Prediction.** As in :mod:`hmm.rul`: the causal filter (the network sees only
cycles up to the cut, no plausibilities) gives :math:`\alpha = p(z_t \mid y_{0:t})`
at the last observed cycle; the RUL is ``tau - 1`` with ``tau`` the phase-type
time to absorption of the chain started from :math:`\alpha`
(:func:`statespace.prognostics.time_to_absorption`), optionally conditioned on
``RUL <= horizon``, with the capped-mean or median point forecast and PIT
recalibration of the quantile levels. ``readout="empirical"`` replaces the
phase-type distribution by the state-conditional empirical readout
:math:`p(r \mid y_{0:t}) \propto \sum_k \alpha_k \hat p(r \mid k, t)` learned
from the filtered training engines (:class:`statespace.prognostics.StateRULReadout`),
exactly as the classical model's option of the same name.

Example (drops into :class:`hmm.rul.RULPipeline` and :func:`hmm.rul.cross_validate`)::

    import numpy as np
    rng = np.random.default_rng(0)
    def engine(T):      # run to failure: two features drifting faster and faster
        frac = np.arange(T) / (T - 1)
        return np.column_stack([-3.0 * frac**3, 2.0 * frac**2]) + 0.25 * rng.standard_normal((T, 2))
    train_features = [engine(T) for T in rng.integers(60, 120, 20)]
    test_features = [engine(T)[: T // 2] for T in rng.integers(60, 120, 5)]   # cut before failure
    from hmm.rul import DeepARPHMMRUL
    model = DeepARPHMMRUL(n_states=8, cap=40, horizon=60, hidden=4, state=2, max_iter=2, m_steps=10, init_iter=5)
    model.fit(train_features, rng=0, progress=False)   # a FitResult; the model keeps the fit
    pred = model.predict(test_features)     # pred.rul, pred.q05, pred.q50, pred.q95
"""

from __future__ import annotations

from statespace.errors import ShapeError
from statespace.interface import FitResult
from statespace.persistence import register_loadable
from statespace.validation import as_rng, check_fit_options, check_int, check_real

from ..deep_support import Standardiser
from ..learned_emission import LearnedEmissionHMM, LearnedEmissionParams
from .models import ARPHMMRUL, ChainRULModel


class DeepARPHMMRUL(ChainRULModel):
    """ARPHMM RUL model with an S5 emission network (see the module docstring).

    The public interface is that of :class:`hmm.rul.ARPHMMRUL`.

    Args:
        n_states: ``K``, healthy + ``K-2`` stages + failed.
        cap: ``c``, RUL span of the degradation stages (and of the capped point forecast).
        softness: width of the soft labels in units of a stage's span.
        point: ``"capped_mean"`` (``E[min(RUL, point_cap)]``) or ``"median"``.
        point_cap: cap of the point forecast (default ``cap``).
        horizon: condition the predictive distribution on ``RUL <= horizon`` (``None``: no).
        max_jump: largest number of stages the chain may advance in one cycle.
        hidden, state, n_layers: sizes of the S5 network.
        max_iter, tol: generalised EM settings.
        m_steps, learning_rate, weight_decay: Adam steps per M-step, their step size, and the
            Gaussian prior on the network weights (MAP-EM).
        min_scale: floor of the emission standard deviation (standardised units).
        init_iter: EM iterations of the classical ARPHMM that starts the fit.
        emission: ``"shared_shift"`` (per-state means and scales around one shift predicted from
            the history: cheap for many states) or ``"per_state"`` (the network outputs every
            state's mean and scale; ``K d`` times more outputs per cycle).
        readout: ``"phase_type"`` (time to absorption of the chain) or ``"empirical"``
            (:class:`~statespace.prognostics.StateRULReadout` on the filtered training engines).
        age_bandwidth: age kernel of the empirical readout in cycles (``None``: no age).
    """

    def __init__(
        self,
        n_states: int = 30,
        cap: float = 125.0,
        softness: float = 0.5,
        point: str = "capped_mean",
        point_cap: float | None = None,
        horizon: int | None = None,
        max_jump: int = 2,
        hidden: int = 16,
        state: int = 8,
        n_layers: int = 1,
        max_iter: int = 8,
        tol: float = 1e-5,
        m_steps: int = 20,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-3,
        min_scale: float = 0.02,
        init_iter: int = 15,
        emission: str = "shared_shift",
        readout: str = "phase_type",
        age_bandwidth: float | None = 10.0,
    ):
        self.max_iter, self.tol = check_fit_options(max_iter, tol)
        self.init_iter = check_fit_options(init_iter, max_iter_name="init_iter")[0]
        self.m_steps = check_int("m_steps", m_steps, minimum=1)
        super().__init__(n_states, cap, softness, point, point_cap, horizon, max_jump, readout, age_bandwidth)
        self.hidden, self.state = check_int("hidden", hidden, minimum=1), check_int("state", state, minimum=1)
        self.n_layers = check_int("n_layers", n_layers, minimum=1)
        self.learning_rate = check_real("learning_rate", learning_rate, 0.0, strict=True)
        self.weight_decay = check_real("weight_decay", weight_decay, 0.0)
        self.min_scale = check_real("min_scale", min_scale, 0.0, strict=True)
        self.emission = emission

    _HMM = LearnedEmissionHMM

    def _new_hmm(self, obs_dim: int) -> LearnedEmissionHMM:
        return LearnedEmissionHMM(
            self.n_states,
            obs_dim,
            layer="s5",
            hidden=self.hidden,
            state=self.state,
            n_layers=self.n_layers,
            min_scale=self.min_scale,
            emission=self.emission,
            transitions="left-to-right",
            max_jump=self.max_jump,
        )

    def _initial_params(self, seqs, padded, pls, rng) -> tuple[LearnedEmissionParams, list]:
        """``pi``, ``A`` and state posteriors of a classical diagonal Gaussian ARPHMM; a fresh network."""
        import jax

        classical = ARPHMMRUL(
            n_states=self.n_states,
            lags=0,
            cap=self.cap,
            softness=self.softness,
            covariance_type="diag",
            max_jump=self.max_jump,
            max_iter=self.init_iter,
        )
        classical.fit(seqs, rng=rng, progress=False)
        gammas = [r.smoothed_probs for r in classical.hmm.smooth(padded, pl=pls)]
        ys = Standardiser.fit(padded, seqs[0].shape[1])
        net = self.hmm._init_network(jax.random.key(int(rng.integers(2**31))))
        p = classical.hmm.params
        return LearnedEmissionParams(p.pi0, p.A, net, ys.loc, ys.scale), gammas

    def fit(
        self, y, rng=None, progress: bool = True, *, init: LearnedEmissionParams | None = None, dt=None
    ) -> FitResult:
        """Generalised EM on run-to-failure engines (each sequence ends at the engine's last cycle).

        ``dt``: per-engine cycle increments ``(T_i,)`` (default: consecutive cycles, all 1).
        ``init`` warm-starts from a :class:`~hmm.learned_emission.LearnedEmissionParams`.
        """
        seqs, single = self._engines(y)
        dt = None if dt is None else _per_sequence("dt", dt, seqs, single)
        rng = as_rng(rng)
        padded, pls, dts = self.training_data(seqs, dt)
        self.hmm = self._new_hmm(seqs[0].shape[1])
        gammas = None
        if init is None:
            init, gammas = self._initial_params(seqs, padded, pls, rng)
        res = self.hmm.fit(
            padded,
            pl=pls,
            dt=dts,
            init=init,
            init_posteriors=gammas,
            max_iter=self.max_iter,
            tol=self.tol,
            m_steps=self.m_steps,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            ar_init=False,
            rng=rng,
            progress=progress,
        )
        self._fit_readout(seqs, dt=dt)
        return res

    def __repr__(self) -> str:
        return (
            f"DeepARPHMMRUL(n_states={self.n_states}, cap={self.cap:g}, max_jump={self.max_jump}, "
            f"hidden={self.hidden}, state={self.state}, n_layers={self.n_layers})"
        )


def _per_sequence(name: str, values, seqs, single: bool = False) -> list:
    """One array per sequence (a single array for a single sequence)."""
    out = [values] if single else list(values)
    if len(out) != len(seqs):
        raise ShapeError(f"{name}: got {len(out)} arrays for {len(seqs)} sequences")
    return out


register_loadable(DeepARPHMMRUL)
