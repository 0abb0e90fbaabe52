r"""HMM whose emission parameters are produced by a deep SSM reading the observed history.

.. math::

    z_0 \sim \pi, \qquad z_t \mid z_{t-1} = i \sim A_{i,\cdot}, \qquad
    h_t = \mathrm{SSM}_\theta\big(v_{0:t}\big),\quad v_t = (\tilde y_{t-1}, m_{t-1}, u_t),

.. math::

    y_t^{(j)} \mid z_t = k,\ y_{0:t-1} \sim
    \mathcal N\!\big(\mu_{k}^{(j)}(h_t),\ \sigma_{k}^{(j)}(h_t)^2\big), \quad j = 1..d,

(``emission="per_state"``, the default) with ``SSM_theta`` a causal :class:`statespace.deep.SequenceModel` (S4D, S5, LRU or
selective scan blocks; with S5, optional per-step time increments ``dt_t`` for irregular
sampling) whose decoder outputs, for every state ``k``, a mean and a
scale ``sigma = min_scale + softplus(.)`` per coordinate (in standardised units).
``v_t`` holds the previous observation (NaN replaced by 0), its missingness mask and
the known inputs, so ``h_t`` depends on ``y_{0:t-1}`` and ``u_{0:t}`` only: the model is a
proper sequential density and an autoregressive HMM whose "AR part" is a learned
long-memory filter. NaN coordinates of ``y_t`` are marginalised (they drop out of the
diagonal Gaussian).

With ``emission="shared_shift"`` the network predicts one shift of the mean from the
history, shared by all states, around learned per-state means and scales:

.. math::

    y_t^{(j)} \mid z_t = k,\ y_{0:t-1} \sim \mathcal N\big(\mu_k^{(j)} + g_\theta(h_t)^{(j)},\ \sigma_k^{(j)\,2}\big),

(a tied autoregression through a long-memory filter). Its log-densities for all
states are three ``(T, d) x (d, K)`` products, so it scales to many states and
coordinates where the per-state decoder's ``(T, K, d)`` outputs do not.

The chain may be ergodic or left-to-right (``transitions="left-to-right"``, moves
``i -> i..i+max_jump``, last state absorbing, as in :mod:`hmm.transitions`).
Learning is **generalised EM**: the E-step is exact (:func:`hmm.forward_backward.posteriors`
on the network's emission log-likelihoods, plus ``log pl`` for partial knowledge);
the M-step sets ``pi`` and ``A`` in closed form (structural zeros of ``A`` stay zero) and takes Adam steps on
:math:`\theta` for :math:`Q(\theta) = \sum_{t,k} \gamma_t(k) \log p_\theta(y_t \mid z_t = k, y_{0:t-1})`,
accepting them only if ``Q`` rises (:class:`hmm.deep_support.NetworkMStep`), so the
log-likelihood never decreases. Without a warm start, ``fit`` starts from the
posteriors of a lag-1 ARHMM fitted by Baum-Welch (or from ``init_posteriors``).

Example::

    import numpy as np
    from hmm.learned_emission import LearnedEmissionHMM
    rng = np.random.default_rng(0)
    z = (np.arange(300) // 50) % 2                      # regimes of 50 steps
    y = (np.where(z, 1.5, -1.0) + 0.5 * rng.standard_normal(300))[:, None]
    train_sequences, test_sequence = [y[:100], y[100:200]], y[200:]
    model = LearnedEmissionHMM(n_states=2, obs_dim=1, layer="lru", hidden=4, state=4, n_layers=1)
    result = model.fit(train_sequences, max_iter=2, m_steps=10, rng=0, progress=False)
    model.log_likelihood(test_sequence)
    x, y = model.sample(100, rng=1)           # step mode of the network, one step at a time
    model.smooth(test_sequence).smoothed_probs

The compiled face (:meth:`kernel_params` with ``y=``) carries the per-step emission
parameters computed from a given observed sequence, so the particle methods of
:mod:`smc` run on the model conditionally on that sequence.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from statespace.distributed import EStep
from statespace.errors import DataError, ParameterError, ShapeError
from statespace.interface import FitResult, ModelKernels, StateSpaceModel
from statespace.persistence import register_loadable
from statespace.validation import (
    as_float_array,
    as_inputs,
    as_rng,
    check_choice,
    check_int,
    check_probability_vector,
    check_real,
    check_stochastic_matrix,
)

from .chain import ChainData, sample_future_states
from .deep_kernels import ChainKernelParams
from .deep_support import (
    NetworkChain,
    NetworkMStep,
    Standardiser,
    check_tree_finite,
    l2_penalty,
    pad,
    padded_length,
    plausibilities,
    to_numpy_tree,
)
from .em import chain_posteriors
from .transitions import make_structure

_LOG_2PI = math.log(2.0 * math.pi)
#: Sequences per network call when many are evaluated at once (see ``_loglik_matrices``).
_CHUNK = 256


class _Base(NamedTuple):
    pi0: np.ndarray
    A: np.ndarray
    net: dict
    y_loc: np.ndarray
    y_scale: np.ndarray
    u_loc: np.ndarray
    u_scale: np.ndarray


class LearnedEmissionParams(_Base):
    """Parameters of a :class:`LearnedEmissionHMM`.

    Attributes:
        pi0: ``(K,)`` initial distribution.
        A: ``(K, K)`` transition matrix.
        net: the :class:`~statespace.deep.SequenceModel` parameters (nested dict of float64 arrays).
        y_loc, y_scale: ``(d,)`` standardisation of the observations (network units).
        u_loc, u_scale: ``(p,)`` standardisation of the inputs.
    """

    __slots__ = ()

    def __new__(cls, pi0, A, net, y_loc, y_scale, u_loc=(), u_scale=()):
        pi0 = check_probability_vector("pi0", pi0)
        A = check_stochastic_matrix("A", A, len(pi0))
        check_tree_finite("net", net)
        arrs = []
        for name, v in (("y_loc", y_loc), ("y_scale", y_scale), ("u_loc", u_loc), ("u_scale", u_scale)):
            a = np.atleast_1d(as_float_array(name, v))
            if not np.isfinite(a).all():
                raise ParameterError(f"{name}: non-finite value at index {int(np.argmax(~np.isfinite(a)))}")
            arrs.append(a)
        for name, a in (("y_scale", arrs[1]), ("u_scale", arrs[3])):
            if (a <= 0).any():
                raise ParameterError(
                    f"{name}: expected positive scales, got {a[int(np.argmax(a <= 0))]} at index {int(np.argmax(a <= 0))}"
                )
        if arrs[0].shape != arrs[1].shape or arrs[2].shape != arrs[3].shape:
            raise ShapeError("y_loc/y_scale and u_loc/u_scale: expected matching shapes")
        return super().__new__(cls, pi0, A, to_numpy_tree(net), *arrs)


class LearnedEmissionHMM(NetworkChain):
    """An HMM with deep-SSM emissions (see the module docstring).

    Args:
        n_states: ``K``.
        obs_dim: ``d``.
        input_dim: ``p``, width of the known inputs ``u_t``.
        layer: ``"s4d"``, ``"s5"``, ``"lru"`` or ``"selective_scan"``.
        hidden, state, n_layers: sizes of the :class:`~statespace.deep.SequenceModel`.
        init_options: extra ``init`` options of the layer, e.g. ``(("r_min", 0.9),)`` for LRU.
        min_scale: floor of the emission standard deviation (standardised units).
        emission: ``"per_state"`` (the network outputs every state's mean and scale) or
            ``"shared_shift"`` (one shift of per-state means, see the module docstring).
        transitions: ``"ergodic"`` or ``"left-to-right"`` (last state absorbing).
        max_jump: largest forward move of the left-to-right chain.
        params: a :class:`LearnedEmissionParams` (else ``fit`` initialises).
    """

    def __init__(
        self,
        n_states: int,
        obs_dim: int = 1,
        input_dim: int = 0,
        *,
        layer: str = "lru",
        hidden: int = 32,
        state: int = 32,
        n_layers: int = 2,
        init_options: tuple = (),
        min_scale: float = 1e-3,
        emission: str = "per_state",
        transitions: str = "ergodic",
        max_jump: int = 1,
        params=None,
    ):
        self._set_architecture(n_states, obs_dim, input_dim, 0, layer, hidden, state, n_layers, init_options)
        self.min_scale = check_real("min_scale", min_scale, 0.0, strict=True)
        self.emission = check_choice("emission", emission, tuple(NETWORK_EMISSIONS))
        self.emission_model = NETWORK_EMISSIONS[self.emission]
        self.transitions = check_choice("transitions", transitions, ("ergodic", "left-to-right"))
        self.max_jump = check_int("max_jump", max_jump, minimum=1)
        self.structure = make_structure(transitions, self.n_states, False, self.max_jump)
        self.params = None if params is None else self.check_params(params)

    # ------------------------------------------------------------------ network
    @property
    def network(self):
        """The :class:`~statespace.deep.SequenceModel` mapping ``v_{0:t}`` to emission parameters."""
        d = self._obs_dim
        return self._sequence_model(2 * d + self.input_dim, self.emission_model.n_outputs(self.n_states, d))

    def _init_network(self, key) -> dict:
        """Fresh network parameters (with ``"shared_shift"``: the sequence model near a zero shift, unit scales)."""
        import jax

        with jax.enable_x64(True):
            seq = self.network.init(key)
            return to_numpy_tree(self.emission_model.fresh(seq, self.n_states, self._obs_dim, self.min_scale))

    def _sequence_params(self, net):
        """The :class:`~statespace.deep.SequenceModel` part of ``params.net``."""
        return self.emission_model.sequence_params(net)

    def check_params(self, params: LearnedEmissionParams) -> LearnedEmissionParams:
        """Check that ``params`` fits this model's dimensions and transition structure; return it unchanged.

        Values were validated when the :class:`LearnedEmissionParams` was built; this
        checks ``K`` states in ``pi0``, ``d`` coordinates in ``y_loc``, ``p`` in ``u_loc``,
        and that ``A`` respects the structural zeros (and absorbing state) of the model's
        transition structure. The network parameters are not compared with the
        architecture here.

        Raises:
            ParameterError: ``params`` is not a :class:`LearnedEmissionParams`, or ``A``
                puts mass on a forbidden move.
            ShapeError: the sizes differ from the model's.
        """
        if not isinstance(params, LearnedEmissionParams):
            raise ParameterError(f"params: expected LearnedEmissionParams, got {type(params).__name__}")
        if len(params.pi0) != self.n_states:
            raise ShapeError(f"params.pi0: expected {self.n_states} states, got {len(params.pi0)}")
        if params.y_loc.shape != (self._obs_dim,) or params.u_loc.shape != (self.input_dim,):
            raise ShapeError(f"params.y_loc/u_loc: expected shapes ({self._obs_dim},) and ({self.input_dim},)")
        self.structure.check("params.A", params.A)
        return params

    def _parameter_names(self) -> tuple:
        return LearnedEmissionParams._fields

    @property
    def transition_matrix(self) -> np.ndarray:
        """``(K, K)`` transition matrix of the current parameters."""
        return self._require_params().A

    def _functions(self):
        """Jitted float64 functions of the network, shared by every model of the same architecture."""
        if self._fns is None:
            self._fns = _network_functions(
                self.network, self.n_states, self._obs_dim, self.min_scale, self.emission_model
            )
        return self._fns

    # ------------------------------------------------------------------ data
    def _prepare(self, y, inputs=None, pl=None, dt=None) -> ChainData:
        """The chain's data, with the per-step increments ``dt`` (ones when omitted)."""
        data = super()._prepare(y, inputs, pl)
        return data._replace(dts=self._increments(dt, [len(s) for s in data.seqs], data.single))

    def _increments(self, dt, lengths, single):
        """Validated per-step increments (ones when ``dt`` is None): a list of ``(T_i,)`` arrays."""
        if dt is None:
            return [np.ones(T) for T in lengths]
        if self.layer != "s5":
            raise ParameterError(f"dt: time increments need layer='s5', this model has layer={self.layer!r}")
        arrs = [dt] if single else list(dt)
        if len(arrs) != len(lengths):
            raise ShapeError(f"dt: got {len(arrs)} increment arrays for {len(lengths)} sequences")
        out = []
        for i, (a, T) in enumerate(zip(arrs, lengths)):
            label = "dt" if single else f"dt[{i}]"
            a = np.asarray(a, dtype=np.float64)
            if a.shape != (T,):
                raise ShapeError(f"{label}: expected shape ({T},) (one increment per time step), got {a.shape}")
            bad = ~(np.isfinite(a) & (a > 0))
            if bad.any():
                raise DataError(
                    f"{label}: increment {a[np.argmax(bad)]} at time step {int(np.argmax(bad))}; expected positive finite"
                )
            out.append(a)
        return out

    def _batch(self, p: LearnedEmissionParams, seqs, us, dts):
        """Padded network inputs ``v``, increments ``dt``, standardised targets ``z``, masks: ``(N, T_pad, .)``."""
        Tp = padded_length([len(s) for s in seqs])
        zs, vs, obs = [], [], []
        for s, u in zip(seqs, us):
            z = (s - p.y_loc) / p.y_scale
            o = ~np.isnan(z)
            z = np.where(o, z, 0.0)
            prev_z = np.vstack([np.zeros((1, z.shape[1])), z[:-1]])
            prev_m = np.vstack([np.ones((1, z.shape[1])), (~o[:-1]).astype(float)])
            vs.append(np.hstack([prev_z, prev_m, (u - p.u_loc) / p.u_scale]))
            zs.append(z)
            obs.append(o.astype(float))
        return pad(vs, Tp), pad(dts, Tp, 1.0), pad(zs, Tp), pad(obs, Tp)

    def _loglik_matrices(self, p, data: ChainData):
        """Per-sequence ``(T_i, K)`` emission log-likelihoods (plus log-plausibilities).

        More than :data:`_CHUNK` sequences (every cut of a cross-validation) go
        through the network in chunks of exactly that many, grouped by padded
        length: padding a few thousand sequences to the longest took gigabytes,
        and fixed chunk shapes compile once per padded length.
        """
        import jax

        seqs, us, dts, lps = data.seqs, data.inputs, data.dts, data.log_pls
        out = [None] * len(seqs)
        if len(seqs) <= _CHUNK:
            groups = [np.arange(len(seqs))]
        else:
            by_length = np.array([padded_length([len(s)]) for s in seqs])
            groups = [np.flatnonzero(by_length == Tp) for Tp in np.unique(by_length)]
            groups = [g[i : i + _CHUNK] for g in groups for i in range(0, len(g), _CHUNK)]
        with jax.enable_x64(True):
            for rows in groups:
                # a short chunk is filled with copies of its first sequence, so every chunk has one shape
                fill = rows if len(seqs) <= _CHUNK else np.r_[rows, np.full(_CHUNK - len(rows), rows[0])]
                v, dt, z, o = self._batch(p, [seqs[i] for i in fill], [us[i] for i in fill], [dts[i] for i in fill])
                ll = np.asarray(self._functions()["loglik"](p.net, v, dt, z, o, np.log(p.y_scale)))
                for j, i in enumerate(rows):
                    m = ll[j, : len(seqs[i])].copy()  # a view would keep the padded chunk alive
                    out[i] = m if lps[i] is None else m + lps[i]
        return out

    def emission_params(self, y, inputs=None, dt=None):
        """Per-step emission ``(means, scales)``, each ``(T, K, d)`` in data units (list for several sequences)."""
        import jax

        p = self._require_params()
        data = self._prepare(y, inputs, dt=dt)
        with jax.enable_x64(True):
            v, dt_b, _, _ = self._batch(p, data.seqs, data.inputs, data.dts)
            mean, scale = (np.asarray(a) for a in self._functions()["emission"](p.net, v, dt_b))
        out = [
            (p.y_loc + p.y_scale * mean[i, : len(s)], p.y_scale * scale[i, : len(s)]) for i, s in enumerate(data.seqs)
        ]
        return self._one_or_list(data, out)

    # ------------------------------------------------------------------ the chain
    def _inference_args(self, p: LearnedEmissionParams, data: ChainData):
        A = p.A[None]
        for m in self._loglik_matrices(p, data):
            yield p.pi0, A, m

    def _sample_future(self, p, data, i, last_filtered, steps, future_inputs, n_samples, rng):
        """The network runs in step mode over the observed history, then over each sampled future."""
        import jax

        A_future = np.broadcast_to(p.A, (steps, *p.A.shape))
        states = sample_future_states(last_filtered, A_future, n_samples, rng)
        obs = np.empty((n_samples, steps, self._obs_dim))
        with jax.enable_x64(True):
            s0, prev0 = self._run_steps(p, data.seqs[i], data.inputs[i])
            for n in range(n_samples):
                obs[n] = self._roll(p, s0, prev0, future_inputs, rng, states[n].__getitem__, steps)[1]
        return A_future, states, obs

    def _run_steps(self, p, y, u):
        """Network state after reading ``y`` (NaN: missing) and ``u``, and the next step's ``(y, mask)`` input."""
        step = self._functions()["step"]
        d = self._obs_dim
        s = self.network.init_state(self._sequence_params(p.net))
        prev = np.concatenate([np.zeros(d), np.ones(d)])
        for t in range(len(y)):
            s, _, _ = step(p.net, s, np.concatenate([prev, (u[t] - p.u_loc) / p.u_scale]))
            z = (y[t] - p.y_loc) / p.y_scale
            miss = np.isnan(z)
            prev = np.concatenate([np.where(miss, 0.0, z), miss.astype(float)])
        return s, prev

    def _roll(self, p, s, prev, u, rng, next_state, steps: int):
        """States ``(steps,)`` from ``next_state(t)`` and observations ``(steps, d)`` drawn given them,
        the network (state ``s``, next input ``prev``) reading its own draws."""
        step = self._functions()["step"]
        d = self._obs_dim
        x = np.empty(steps, np.int64)
        y = np.empty((steps, d))
        for t in range(steps):
            s, mean, scale = step(p.net, s, np.concatenate([prev, (u[t] - p.u_loc) / p.u_scale]))
            k = x[t] = next_state(t)
            zt = np.asarray(mean)[k] + np.asarray(scale)[k] * rng.standard_normal(d)
            y[t] = p.y_loc + p.y_scale * zt
            prev = np.concatenate([zt, np.zeros(d)])
        return x, y

    # ------------------------------------------------------------------ simulation (step mode)
    def sample(self, T: int, rng=None, inputs=None, times=None):
        """Simulate ``(states (T, 1), y (T, d))``, running the network one step at a time."""
        import jax

        p = self._require_params()
        T = check_int("T", T, minimum=1, error=ShapeError)
        u = as_inputs("inputs", inputs, [T], self.input_dim, True)[0]
        rng = as_rng(rng)
        K, d = self.n_states, self._obs_dim
        z = [0]

        def next_state(t):
            z[0] = rng.choice(K, p=p.pi0) if t == 0 else rng.choice(K, p=p.A[z[0]])
            return z[0]

        with jax.enable_x64(True):
            s = self.network.init_state(self._sequence_params(p.net))
            x, y = self._roll(p, s, np.concatenate([np.zeros(d), np.ones(d)]), u, rng, next_state, T)
        return x[:, None].astype(np.float64), y

    # ------------------------------------------------------------------ learning
    def _initial_transitions(self) -> np.ndarray:
        """Stay with probability 0.9, the rest spread evenly over the allowed moves."""
        K, mask = self.n_states, self.structure.mask
        off = mask & ~np.eye(K, dtype=bool)
        n_off = off.sum(axis=1, keepdims=True)
        A = np.where(off, 0.1 / np.maximum(n_off, 1), 0.0) + np.eye(K) * np.where(n_off[:, 0] > 0, 0.9, 1.0)
        return A

    def _initial_params(self, data: ChainData, rng, ar_init: bool = True):
        """Standardisation from the data, a fresh network, and ``pi``, ``A`` of a lag-1 ARHMM fitted by
        Baum-Welch (``ar_init``; its smoothed posteriors are returned too, to pre-train the network on)."""
        import jax

        ys = Standardiser.fit(data.seqs, self._obs_dim)
        uz = Standardiser.fit(data.inputs, self.input_dim)
        K = self.n_states
        A = self._initial_transitions()
        net = self._init_network(jax.random.key(int(rng.integers(2**31))))
        params = LearnedEmissionParams(np.full(K, 1.0 / K), A, net, ys.loc, ys.scale, uz.loc, uz.scale)
        gammas = None
        if ar_init:
            from .model import ARHMM

            ar = ARHMM(
                K,
                self._obs_dim,
                lags=1,
                input_dim=self.input_dim,
                covariance_type="diag",
                transitions=self.transitions,
                max_jump=self.max_jump,
            )
            pls = plausibilities(data.log_pls)
            us = data.inputs if self.input_dim else None
            ar.fit(data.seqs, inputs=us, pl=pls, max_iter=30, rng=rng, progress=False)
            gammas = [r.smoothed_probs for r in ar.smooth(data.seqs, inputs=us, pl=pls)]
            params = params._replace(pi0=ar.params.pi0, A=ar.params.A)
        return params, gammas

    @classmethod
    def initialize(cls, y, *args, inputs=None, pl=None, dt=None, rng=None, **kwargs) -> LearnedEmissionHMM:
        """A model ``cls(*args, **kwargs)`` with ``fit``'s data-driven start: standardisation, a fresh
        network, and ``pi``, ``A`` of a lag-1 ARHMM (``fit`` from scratch also pre-trains the network
        on that ARHMM's posteriors)."""
        model = cls(*args, **kwargs)
        model.params = model._initial_params(model._prepare(y, inputs, pl, dt), as_rng(rng))[0]
        return model

    def fit(
        self,
        y,
        inputs=None,
        pl=None,
        *,
        init: LearnedEmissionParams | None = None,
        frozen=None,
        max_iter: int = 50,
        tol: float = 1e-6,
        m_steps: int = 100,
        learning_rate: float = 3e-3,
        weight_decay: float = 0.0,
        ar_init: bool = True,
        rng=None,
        progress: bool = True,
        dt=None,
        init_posteriors=None,
    ) -> FitResult:
        """Generalised EM; sets ``self.params``.

        Starts from ``init``, else the current ``params`` (warm start), else a fresh
        network trained first on the posteriors of a lag-1 ARHMM (``ar_init``).
        ``init_posteriors`` (one ``(T_i, K)`` array of state probabilities per sequence, e.g. the
        posteriors of a classical HMM) pre-trains the starting network on them instead. Each iteration:
        exact E-step, closed-form ``pi`` and ``A``, then up to ``m_steps`` Adam steps on the
        network's expected complete-data log-likelihood (accepted only if it rises).
        ``frozen`` names :class:`LearnedEmissionParams` fields EM keeps (``"pi0"``, ``"A"``,
        ``"net"``; the standardisations are never learned).
        ``weight_decay`` adds the Gaussian log-prior ``-n_steps * weight_decay * |theta|^2 / 2`` on the
        network (MAP-EM; ``log_likelihoods`` then includes it).
        ``log_likelihoods[i]`` is the objective entering iteration ``i`` (non-decreasing: each
        M-step is exact or accepted only if it raises the expected complete-data objective);
        stops when it improves by less than ``tol * max(1, |ll|)``, or, should it drop beyond
        round-off, at the best parameters with a warning and ``converged=False``
        (``ConvergenceMonitor``).
        """
        import jax

        frozen, max_iter, tol, m_steps, learning_rate, weight_decay = self._gem_options(
            frozen, max_iter, tol, m_steps, learning_rate, weight_decay
        )
        data = self._prepare(y, inputs, pl, dt)
        rng = as_rng(rng)
        gammas = None if init_posteriors is None else self._check_posteriors(init_posteriors, data.seqs)
        params = self._start(init)
        if params is None:
            params, ar_gammas = self._initial_params(data, rng, ar_init and gammas is None)
            gammas = ar_gammas if gammas is None else gammas
        with jax.enable_x64(True), EStep(chain_posteriors, data.items()) as estep:
            v, dt_b, z, o = self._batch(params, data.seqs, data.inputs, data.dts)
            n_obs = float(sum(len(s) for s in data.seqs))
            log_scale = np.log(params.y_scale)
            mstep = NetworkMStep(self._functions()["q"], learning_rate)
            wd = float(weight_decay)
            penalty = self._functions()["penalty"]
            if gammas is not None:
                params = params._replace(
                    net=self.emission_model.moment_start(params.net, pad(gammas, v.shape[1]), z, o, self.min_scale)
                )
            if gammas is not None:  # pre-train the emission network on given (or the ARHMM's) posteriors
                params = params._replace(
                    net=mstep.update(
                        params.net, (v, dt_b, z, o, log_scale, pad(gammas, v.shape[1]), n_obs, wd), 3 * m_steps
                    )
                )

            def m_step(stats, p):
                _, pi_counts, trans, gamma, _ = stats
                new = {"pi0": pi_counts / pi_counts.sum(), "A": self.structure.m_step(trans, p.A)}
                if "net" not in frozen:
                    new["net"] = mstep.update(
                        p.net, (v, dt_b, z, o, log_scale, pad(gamma, v.shape[1]), n_obs, wd), m_steps
                    )
                return LearnedEmissionParams(
                    *(new[f] if f in new and f not in frozen else getattr(p, f) for f in LearnedEmissionParams._fields)
                )

            return self._run_gem(params, estep, m_step, penalty, n_obs, wd, max_iter, tol, progress)

    def _check_posteriors(self, gammas, seqs) -> list[np.ndarray]:
        gammas = list(gammas) if isinstance(gammas, (list, tuple)) else [gammas]
        if len(gammas) != len(seqs):
            raise ShapeError(f"init_posteriors: got {len(gammas)} arrays for {len(seqs)} sequences")
        out = []
        for i, (g, s) in enumerate(zip(gammas, seqs)):
            g = np.asarray(g, dtype=np.float64)
            if g.shape != (len(s), self.n_states):
                raise ShapeError(f"init_posteriors[{i}]: expected shape ({len(s)}, {self.n_states}), got {g.shape}")
            if not (np.isfinite(g).all() and (g >= 0).all()):
                raise DataError(f"init_posteriors[{i}]: expected non-negative finite probabilities")
            out.append(g)
        return out

    # ------------------------------------------------------------------ compiled face
    def kernel_params(self, inputs=None, times=None, y=None, dt=None) -> ChainKernelParams:
        """Kernel parameters conditional on an observed sequence ``y`` (the network reads its history)."""
        p = self._require_params()
        if y is None:
            raise ShapeError("y: the learned emission depends on the observed history; pass y=<the sequence>")
        means, scales = self.emission_params(y, inputs, dt)
        return ChainKernelParams(p.pi0, p.A[None].copy(), means, scales)

    def _persist_state(self) -> dict:
        """The architecture (constructor arguments) and the fitted parameters."""
        return {
            **self._architecture(),
            "min_scale": self.min_scale,
            "emission": self.emission,
            "transitions": self.transitions,
            "max_jump": self.max_jump,
            "params": self.params,
        }

    def conditioned_on(self, y, inputs=None) -> ConditionedLearnedEmission:
        """This model with its emission parameters fixed to those computed from ``y``'s history.

        A plain :class:`~statespace.interface.StateSpaceModel` whose ``kernel_params()`` needs no
        ``y``, so the particle methods of :mod:`smc` run on it unchanged:
        ``smc.bootstrap_filter(model.conditioned_on(y), y)``.
        """
        return ConditionedLearnedEmission(self, self.kernel_params(inputs=inputs, y=y))

    def __repr__(self) -> str:
        return (
            f"LearnedEmissionHMM(n_states={self.n_states}, obs_dim={self._obs_dim}, layer={self.layer!r}, "
            f"hidden={self.hidden}, state={self.state}, n_layers={self.n_layers}, transitions={self.transitions!r})"
        )


class PerStateEmission:
    r"""``emission="per_state"``: the decoder outputs every state's mean and scale,
    :math:`\sigma = \text{floor} + \text{softplus}(\cdot)`; ``net`` is the sequence model's parameters."""

    name = "per_state"

    @staticmethod
    def n_outputs(K: int, d: int) -> int:
        return 2 * K * d

    @staticmethod
    def fresh(seq: dict, K: int, d: int, min_scale: float) -> dict:
        return seq

    @staticmethod
    def sequence_params(net: dict) -> dict:
        return net

    @staticmethod
    def moment_start(net, gamma, z, o, min_scale: float) -> dict:
        """No per-state constants to start: the network outputs them all."""
        return net

    @staticmethod
    def functions(net, K: int, d: int, floor: float):
        """``(emission, loglik, step, penalised)`` (jax-traceable) for the sequence model ``net``."""
        import jax
        import jax.numpy as jnp

        def emission(p, v, dt):
            out = net.apply(p, v, dt).reshape(*v.shape[:-1], K, 2, d)
            return out[..., 0, :], floor + jax.nn.softplus(out[..., 1, :])

        def loglik(p, v, dt, z, observed, log_scale):
            mean, scale = emission(p, v, dt)
            r = (z[..., None, :] - mean) / scale
            lp = -0.5 * _LOG_2PI - jnp.log(scale) - 0.5 * r * r - log_scale
            return jnp.sum(lp * observed[..., None, :], axis=-1)

        def step(p, s, v_t):
            s, out = net.step(p, s, v_t)
            out = out.reshape(K, 2, d)
            return s, out[:, 0, :], floor + jax.nn.softplus(out[:, 1, :])

        return emission, loglik, step, lambda p: p


class SharedShiftEmission:
    r"""``emission="shared_shift"``: per-state means and scales around one shift the network predicts;
    ``net = {"network": sequence model, "means": (K, d), "raw_scales": (K, d)}``."""

    name = "shared_shift"

    @staticmethod
    def n_outputs(K: int, d: int) -> int:
        return d

    @staticmethod
    def fresh(seq: dict, K: int, d: int, min_scale: float) -> dict:
        """The sequence model near a zero shift, every state at mean 0 and scale 1."""
        seq = dict(seq, dec_w=seq["dec_w"] * 0.01)
        raw = math.log(math.expm1(max(1.0 - min_scale, 1e-3)))
        return {"network": seq, "means": np.zeros((K, d)), "raw_scales": np.full((K, d), raw)}

    @staticmethod
    def sequence_params(net: dict) -> dict:
        return net["network"]

    @staticmethod
    def moment_start(net, gamma, z, o, min_scale: float) -> dict:
        """Per-state means and scales: posterior-weighted moments (no shift)."""
        w = np.einsum("ntk,ntj->kj", gamma, o)
        mean = np.einsum("ntk,ntj->kj", gamma, o * z) / np.maximum(w, 1e-12)
        var = np.einsum("ntk,ntj->kj", gamma, o * z * z) / np.maximum(w, 1e-12) - mean**2
        sd = np.sqrt(np.clip(var, 1e-4, None))
        raw = np.log(np.expm1(np.maximum(sd - min_scale, 1e-3)))
        return dict(net, means=np.where(w > 1e-12, mean, 0.0), raw_scales=np.where(w > 1e-12, raw, net["raw_scales"]))

    @staticmethod
    def functions(net, K: int, d: int, floor: float):
        """``(emission, loglik, step, penalised)`` (jax-traceable) for the sequence model ``net``."""
        import jax
        import jax.numpy as jnp

        def emission(p, v, dt):
            shift = net.apply(p["network"], v, dt)
            scale = floor + jax.nn.softplus(p["raw_scales"])
            return p["means"] + shift[..., None, :], jnp.broadcast_to(scale, (*v.shape[:-1], K, d))

        def loglik(p, v, dt, z, observed, log_scale):
            # sum_j o_j (e_j - mu_kj)^2 / s_kj^2 expanded into products over j: no (T, K, d) array
            e = z - net.apply(p["network"], v, dt)
            scale = floor + jax.nn.softplus(p["raw_scales"])
            w = 1.0 / (scale * scale)
            mu = p["means"]
            quad = (observed * e * e) @ w.T - 2.0 * (observed * e) @ (mu * w).T + observed @ (mu * mu * w).T
            const = observed @ jnp.log(scale).T + jnp.sum(observed * (0.5 * _LOG_2PI + log_scale), -1, keepdims=True)
            return -0.5 * quad - const

        def step(p, s, v_t):
            s, shift = net.step(p["network"], s, v_t)
            return s, p["means"] + shift, floor + jax.nn.softplus(p["raw_scales"])

        return emission, loglik, step, lambda p: p["network"]


#: The emissions of ``LearnedEmissionHMM(emission=...)``.
NETWORK_EMISSIONS = {e.name: e for e in (PerStateEmission, SharedShiftEmission)}


@lru_cache(maxsize=16)
def _network_functions(net, K: int, d: int, floor: float, emission) -> dict:
    """Jitted emission, log-likelihood, step, penalty and the M-step objective ``q`` of a network.

    Cached on the (hashable) architecture, so that fits of the same architecture (the
    folds of a cross-validation) reuse JAX's compiled programs instead of recompiling.
    """
    import jax
    import jax.numpy as jnp

    emission_fn, loglik, step, penalised = emission.functions(net, K, d, floor)

    def q(p, v, dt, z, observed, log_scale, gamma, n_obs, weight_decay):
        ll = loglik(p, v, dt, z, observed, log_scale)
        return jnp.sum(gamma * ll) / n_obs - weight_decay * l2_penalty(penalised(p))

    return {
        "emission": jax.jit(emission_fn),
        "loglik": jax.jit(loglik),
        "q": q,
        "step": jax.jit(step),
        "penalty": jax.jit(lambda p: l2_penalty(penalised(p))),
    }


class ConditionedLearnedEmission(StateSpaceModel):
    """A :class:`LearnedEmissionHMM` conditioned on one observed sequence (see ``conditioned_on``)."""

    def __init__(self, model: LearnedEmissionHMM, kp: ChainKernelParams):
        self.model, self.params, self._kp = model, model.params, kp

    def kernels(self) -> ModelKernels:
        return self.model.kernels()

    def kernel_params(self, inputs=None, times=None) -> ChainKernelParams:
        return self._kp


register_loadable(LearnedEmissionParams)
register_loadable(LearnedEmissionHMM)
