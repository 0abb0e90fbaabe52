r"""Input-output HMM: transition probabilities driven by a deep SSM over covariates.

.. math::

    z_0 \sim \pi, \qquad
    p(z_t = j \mid z_{t-1} = i, u_{0:t}) = A_t(i, j) = \operatorname{softmax}_j\big(\ell_\theta(u_{0:t})_{ij}\big),
    \qquad y_t^{(m)} \mid z_t = k \sim \mathcal N(\mu_k^{(m)}, \sigma_k^{(m)2}),

where :math:`\ell_\theta` is a causal :class:`statespace.deep.SequenceModel` whose
decoder outputs the ``K x K`` transition logits at every step (Bengio & Frasconi's
IO-HMM, with a long-memory sequence model in place of a feed-forward map). The
chain is time-inhomogeneous, so forward-backward runs on the ``(T-1, K, K)`` stack
``A_1..A_{T-1}`` (:mod:`hmm.forward_backward` accepts it as is). NaN coordinates of
``y`` are marginalised.

Generalised EM: exact E-step giving :math:`\gamma_t(k)` and the two-slice marginals
:math:`\xi_t(i, j)`; closed-form M-step for ``pi``, ``mu``, ``sigma``; Adam steps on

.. math::  Q(\theta) = \sum_{t \ge 1} \sum_{i,j} \xi_t(i, j) \log A_t^\theta(i, j),

accepted only when ``Q`` rises, so the log-likelihood never decreases.

Example::

    from hmm.io_hmm import IOHMM
    model = IOHMM(n_states=2, obs_dim=1, input_dim=1, layer="lru", hidden=8, state=8)
    model.fit(y_train, inputs=u_train, max_iter=20, rng=0)
    model.log_likelihood(y_test, inputs=u_test)
    x, y = model.sample(200, inputs=u, rng=1)     # generic compiled simulator
    A_t = model.transition_matrices(u)             # (T-1, K, K)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from statespace.convergence import ConvergenceMonitor
from statespace.errors import ParameterError, ShapeError
from statespace.interface import FitResult, ModelKernels, StateSpaceModel
from statespace.persistence import SavedModel, register_loadable
from statespace.progress import progress_bar
from statespace.validation import (
    as_float_array,
    as_inputs,
    as_rng,
    as_sequences,
    check_choice,
    check_fit_options,
    check_int,
    check_probability_vector,
    check_real,
)

from .deep_kernels import ChainKernelParams, chain_kernels
from .deep_support import (
    NetworkMStep,
    Standardiser,
    check_tree_finite,
    l2_penalty,
    pad,
    padded_length,
    to_numpy_tree,
)
from .forward_backward import backward, forward, impossible_data_error, posteriors, two_slice_marginals
from .inference import predicted, viterbi
from .model import HMMFilterResult, HMMSmoothResult

_LOG_2PI = math.log(2.0 * math.pi)


class _Base(NamedTuple):
    pi0: np.ndarray
    net: dict
    means: np.ndarray
    variances: np.ndarray
    u_loc: np.ndarray
    u_scale: np.ndarray


class IOHMMParams(_Base):
    """Parameters of an :class:`IOHMM`.

    Attributes:
        pi0: ``(K,)`` initial distribution.
        net: parameters of the transition network (nested dict of float64 arrays).
        means, variances: ``(K, d)`` diagonal Gaussian emissions.
        u_loc, u_scale: ``(p,)`` standardisation of the inputs.
    """

    __slots__ = ()

    def __new__(cls, pi0, net, means, variances, u_loc, u_scale):
        pi0 = check_probability_vector("pi0", pi0)
        check_tree_finite("net", net)
        means = np.atleast_2d(as_float_array("means", means))
        variances = np.atleast_2d(as_float_array("variances", variances))
        if means.shape[0] != len(pi0) or variances.shape != means.shape:
            raise ShapeError(f"means/variances: expected shape ({len(pi0)}, d) each, got {means.shape} and {variances.shape}")
        if not np.isfinite(means).all():
            raise ParameterError(f"means: non-finite value at index {tuple(np.argwhere(~np.isfinite(means))[0])}")
        if not (np.isfinite(variances) & (variances > 0)).all():
            k, j = np.argwhere(~(np.isfinite(variances) & (variances > 0)))[0]
            raise ParameterError(f"variances: expected positive finite values, got {variances[k, j]} at state {k}, coordinate {j}")
        u_loc, u_scale = np.atleast_1d(as_float_array("u_loc", u_loc)), np.atleast_1d(as_float_array("u_scale", u_scale))
        if u_loc.shape != u_scale.shape or not (u_scale > 0).all():
            raise ParameterError("u_loc/u_scale: expected matching shapes and positive scales")
        return super().__new__(cls, pi0, to_numpy_tree(net), means, variances, u_loc, u_scale)


class IOHMM(StateSpaceModel, SavedModel):
    """Input-output HMM with deep-SSM transition logits and diagonal Gaussian emissions.

    Args:
        n_states: ``K``.
        obs_dim: ``d``.
        input_dim: ``p >= 1``, width of the covariates.
        layer, hidden, state, n_layers, init_options: the :class:`~statespace.deep.SequenceModel`.
        min_variance: floor of the emission variances in the M-step.
        params: an :class:`IOHMMParams` (else ``fit`` initialises).
    """

    def __init__(self, n_states: int, obs_dim: int = 1, input_dim: int = 1, *, layer: str = "lru", hidden: int = 16,
                 state: int = 16, n_layers: int = 1, init_options: tuple = (), min_variance: float = 1e-6, params=None):
        from statespace.deep.block import LAYERS

        self.n_states = check_int("n_states", n_states, minimum=1)
        self._obs_dim = check_int("obs_dim", obs_dim, minimum=1)
        self.input_dim = check_int("input_dim", input_dim, minimum=1)
        self.layer = check_choice("layer", layer, tuple(LAYERS))
        self.hidden, self.state = check_int("hidden", hidden, minimum=1), check_int("state", state, minimum=1)
        self.n_layers = check_int("n_layers", n_layers, minimum=1)
        self.init_options = tuple(init_options)
        self.min_variance = check_real("min_variance", min_variance, 0.0, strict=True)
        self._fns = None
        self.params = None if params is None else self.check_params(params)

    @property
    def network(self):
        """The :class:`~statespace.deep.SequenceModel` mapping ``u_{0:t}`` to ``K x K`` logits."""
        from statespace.deep import SequenceModel

        return SequenceModel(self.layer, self.input_dim, self.n_states**2, self.hidden, self.state, self.n_layers,
                             init_options=self.init_options)

    def check_params(self, params: IOHMMParams) -> IOHMMParams:
        """Check that ``params`` fits this model's dimensions and return it unchanged.

        Values were validated when the :class:`IOHMMParams` was built; this checks the
        sizes: ``means`` (hence ``pi0`` and ``variances``) for ``K`` states and ``d``
        observation coordinates, ``u_loc`` for ``p`` inputs. The network parameters
        are not compared with the architecture here.

        Raises:
            ParameterError: ``params`` is not an :class:`IOHMMParams`.
            ShapeError: the sizes differ from the model's.
        """
        if not isinstance(params, IOHMMParams):
            raise ParameterError(f"params: expected IOHMMParams, got {type(params).__name__}")
        if params.means.shape != (self.n_states, self._obs_dim) or params.u_loc.shape != (self.input_dim,):
            raise ShapeError(f"params: expected means ({self.n_states}, {self._obs_dim}) and u_loc ({self.input_dim},)")
        return params

    def _require_params(self) -> IOHMMParams:
        if self.params is None:
            raise ParameterError("params: the model has no parameters yet; pass params=... or call fit first")
        return self.params

    def _functions(self):
        if self._fns is None:
            import jax

            net, K = self.network, self.n_states

            def log_trans(p, u):
                logits = net.apply(p, u).reshape(*u.shape[:-1], K, K)
                return jax.nn.log_softmax(logits, axis=-1)

            def q(p, u, xi, n_obs, weight_decay):
                # xi[:, t-1] pairs with A_t, i.e. the logits at time t
                return jax.numpy.sum(xi * log_trans(p, u)[:, 1:]) / n_obs - weight_decay * l2_penalty(p)

            self._fns = {"log_trans": jax.jit(log_trans), "q": q}
        return self._fns

    # ------------------------------------------------------------------ data and building blocks
    def _prepare(self, y, inputs, pl=None):
        seqs, single = as_sequences("y", y, self._obs_dim)
        us = as_inputs("inputs", inputs, [len(s) for s in seqs], self.input_dim, single)
        from .partial_knowledge import log_plausibilities

        lps = log_plausibilities(pl, [len(s) for s in seqs], self.n_states, single)
        return seqs, us, lps, single

    def _log_transitions(self, p: IOHMMParams, us) -> list[np.ndarray]:
        import jax

        with jax.enable_x64(True):
            batch = pad([(u - p.u_loc) / p.u_scale for u in us], padded_length([len(u) for u in us]))
            lt = np.asarray(self._functions()["log_trans"](p.net, batch))
        return [lt[i, 1 : len(u)] if len(u) > 1 else lt[i, :1] for i, u in enumerate(us)]

    def transition_matrices(self, inputs) -> np.ndarray | list:
        """``A_1..A_{T-1}`` ``(T-1, K, K)`` for one input sequence (a list for several)."""
        p = self._require_params()
        single = not isinstance(inputs, (list, tuple))
        seqs = [inputs] if single else list(inputs)
        us = as_inputs("inputs", seqs, [len(np.atleast_1d(s)) for s in seqs], self.input_dim, False)
        out = [np.exp(lt) if len(u) > 1 else np.exp(lt)[:0] for lt, u in zip(self._log_transitions(p, us), us)]
        return out[0] if single else out

    def _emission_loglik(self, p: IOHMMParams, y: np.ndarray) -> np.ndarray:
        obs = ~np.isnan(y)
        # whitened before squaring: the square overflows (to a log-density of -inf, data beyond
        # float64's range) only where the log-density itself would
        with np.errstate(over="ignore"):
            r = ((np.where(obs, y, 0.0)[:, None, :] - p.means) / np.sqrt(p.variances)) ** 2
        lp = -0.5 * (_LOG_2PI + np.log(p.variances) + r)
        return np.sum(lp * obs[:, None, :], axis=-1)

    def _chains(self, p, seqs, us, lps):
        """Per sequence ``(A (S, K, K), loglik (T, K))`` ready for forward-backward."""
        out = []
        for s, lt, lp in zip(seqs, self._log_transitions(p, us), lps):
            ll = self._emission_loglik(p, s)
            out.append((np.ascontiguousarray(np.exp(lt)), ll if lp is None else ll + lp))
        return out

    # ------------------------------------------------------------------ exact inference
    @staticmethod
    def _require_possible(log_likelihood, p, i, single, A, ll) -> None:
        """Raise :class:`~statespace.errors.ImpossibleDataError` when sequence ``i`` has zero probability."""
        if not log_likelihood > -np.inf:
            raise impossible_data_error("y" if single else f"y[{i}]", p.pi0, A, ll)

    def log_likelihood(self, y, inputs=None, pl=None) -> float:
        """``log p(y | u)`` summed over sequences (``-inf`` for data of zero probability)."""
        p = self._require_params()
        seqs, us, lps, _ = self._prepare(y, inputs, pl)
        return float(sum(forward(p.pi0, A, ll)[0] for A, ll in self._chains(p, seqs, us, lps)))

    def filter(self, y, inputs=None, pl=None):
        """Filtered and predicted state probabilities (:class:`hmm.HMMFilterResult`)."""
        p = self._require_params()
        seqs, us, lps, single = self._prepare(y, inputs, pl)
        out = []
        for i, (A, ll) in enumerate(self._chains(p, seqs, us, lps)):
            lik, filt, _ = forward(p.pi0, A, ll)
            self._require_possible(lik, p, i, single, A, ll)
            out.append(HMMFilterResult(float(lik), filt, predicted(p.pi0, A, filt)))
        return out[0] if single else out

    def smooth(self, y, inputs=None, pl=None):
        """Smoothed state probabilities and expected transition counts (:class:`hmm.HMMSmoothResult`)."""
        p = self._require_params()
        seqs, us, lps, single = self._prepare(y, inputs, pl)
        out = []
        for i, (A, ll) in enumerate(self._chains(p, seqs, us, lps)):
            lik, filt, smo, counts = posteriors(p.pi0, A, ll)
            self._require_possible(lik, p, i, single, A, ll)
            out.append(HMMSmoothResult(float(lik), filt, smo, counts))
        return out[0] if single else out

    def most_likely_states(self, y, inputs=None, pl=None):
        """Viterbi path(s) ``(T,)``."""
        p = self._require_params()
        seqs, us, lps, single = self._prepare(y, inputs, pl)
        out = []
        for i, (A, ll) in enumerate(self._chains(p, seqs, us, lps)):
            path, best = viterbi(p.pi0, A, ll)
            self._require_possible(best, p, i, single, A, ll)
            out.append(path)
        return out[0] if single else out

    # ------------------------------------------------------------------ learning
    def _initial_params(self, seqs, us, lps, rng):
        """A homogeneous Gaussian HMM fitted by Baum-Welch: its emissions, ``pi`` and ``log A`` as the logits' bias."""
        import jax

        from .model import GaussianHMM

        K = self.n_states
        uz = Standardiser.fit(us, self.input_dim)
        base = GaussianHMM(K, self._obs_dim, covariance_type="diag")
        pls = None if all(lp is None for lp in lps) else [None if lp is None else np.exp(lp) for lp in lps]
        base.fit(seqs, pl=pls, max_iter=50, rng=rng, progress=False)
        e = base.params.emission
        variances = np.maximum(np.array([np.diag(c) for c in e.covs]), self.min_variance)
        with jax.enable_x64(True):
            net = to_numpy_tree(self.network.init(jax.random.key(int(rng.integers(2**31)))))
        # start at the homogeneous chain: small decoder weights, bias log A
        net["dec_w"] = 0.1 * net["dec_w"]
        net["dec_b"] = np.log(np.maximum(base.params.A, 1e-6)).ravel()
        return IOHMMParams(base.params.pi0, net, e.bias.reshape(K, self._obs_dim), variances, uz.loc, uz.scale)

    def fit(self, y, inputs=None, pl=None, init_params: IOHMMParams | None = None, max_iter: int = 50,
            tol: float = 1e-6, m_steps: int = 100, learning_rate: float = 3e-3, weight_decay: float = 0.0, rng=None,
            progress: bool = True) -> FitResult:
        """Generalised EM (see the module docstring); sets ``self.params``; warm starts like ``hmm.HMM.fit``.

        ``weight_decay`` adds the log-prior ``-n_steps * weight_decay * |theta|^2 / 2`` on the network
        (MAP-EM; ``log_likelihoods`` then includes it and never decreases).

        Generalised EM: the network's M-step is accepted only if it raises the expected
        complete-data objective, and the emissions' is closed form, so the objective never
        decreases; should it drop beyond round-off, the fit stops at the best parameters with
        a warning and ``converged=False`` (``ConvergenceMonitor``).
        """
        import jax

        max_iter, tol = check_fit_options(max_iter, tol)
        m_steps = check_int("m_steps", m_steps, minimum=0)
        learning_rate = check_real("learning_rate", learning_rate, 0.0, strict=True)
        weight_decay = check_real("weight_decay", weight_decay, 0.0)
        seqs, us, lps, _ = self._prepare(y, inputs, pl)
        rng = as_rng(rng)
        if init_params is not None:
            p = self.check_params(init_params)
        else:
            p = self.params if self.params is not None else self._initial_params(seqs, us, lps, rng)
        Tp = padded_length([len(s) for s in seqs])
        n_obs = float(sum(len(s) for s in seqs))
        with jax.enable_x64(True):
            u_batch = pad([(u - p.u_loc) / p.u_scale for u in us], Tp)
            mstep = NetworkMStep(self._functions()["q"], learning_rate)
            wd = float(weight_decay)
            penalty = jax.jit(l2_penalty)
            net = jax.tree_util.tree_map(jax.numpy.asarray, p.net)
            monitor = ConvergenceMonitor(tol, "generalised EM (IOHMM)")
            it = 0
            with progress_bar(max_iter, "generalised EM", progress) as bar:
                for it in range(1, int(max_iter) + 1):
                    ll, gammas, xis = self._e_step(p, seqs, us, lps)
                    bar.update(1)
                    bar.set_postfix(loglik=f"{ll:.6g}", refresh=False)
                    if monitor.record(ll - n_obs * wd * penalty(net), p):
                        break
                    xi_batch = pad([x if len(x) else np.zeros((1, self.n_states, self.n_states)) for x in xis], Tp - 1)
                    net, *_ = mstep(net, (u_batch, xi_batch, n_obs, wd), m_steps)
                    p = self._closed_form(p, seqs, gammas)._replace(net=to_numpy_tree(net))
                else:  # the final parameters' objective
                    monitor.record(self._e_step(p, seqs, us, lps)[0] - n_obs * wd * penalty(net), p)
        res = monitor.result(it)
        self.params = res.params
        return res

    def _e_step(self, p, seqs, us, lps):
        total, gammas, xis = 0.0, [], []
        for i, (A, ll) in enumerate(self._chains(p, seqs, us, lps)):
            lik, filt, scale = forward(p.pi0, A, ll)
            self._require_possible(lik, p, i, False, A, ll)
            beta = backward(A, ll, scale)
            total += lik
            gamma = filt * beta  # rows normalised: see two_slice_marginals
            gammas.append(gamma / gamma.sum(axis=1, keepdims=True))
            xis.append(two_slice_marginals(A, ll, filt, scale, beta))
        return total, gammas, xis

    def _closed_form(self, p: IOHMMParams, seqs, gammas) -> IOHMMParams:
        pi0 = sum(g[0] for g in gammas)
        w_sum = np.zeros_like(p.means)
        w_y = np.zeros_like(p.means)
        w_yy = np.zeros_like(p.means)
        for s, g in zip(seqs, gammas):
            obs = ~np.isnan(s)
            ys = np.where(obs, s, 0.0)
            w_sum += g.T @ obs
            w_y += g.T @ ys
            w_yy += g.T @ (ys * ys)
        safe = np.where(w_sum > 0, w_sum, 1.0)
        means = np.where(w_sum > 0, w_y / safe, p.means)
        variances = np.where(w_sum > 0, w_yy / safe - means**2, p.variances)
        variances = np.maximum(variances, self.min_variance)
        return p._replace(pi0=pi0 / pi0.sum(), means=means, variances=variances)

    # ------------------------------------------------------------------ compiled face
    def kernels(self) -> ModelKernels:
        return chain_kernels(self._obs_dim, self.n_states)

    def kernel_params(self, inputs=None, times=None) -> ChainKernelParams:
        """Kernel parameters for one input sequence (the transitions are computed from ``inputs``)."""
        p = self._require_params()
        if inputs is None:
            raise ShapeError(f"inputs: the IO-HMM's transitions depend on {self.input_dim}-dimensional inputs; none were given")
        u = as_inputs("inputs", inputs, [len(np.atleast_1d(inputs))], self.input_dim, True)[0]
        A = np.exp(self._log_transitions(p, [u])[0])
        return ChainKernelParams(p.pi0, np.ascontiguousarray(A), p.means[None].copy(), np.sqrt(p.variances)[None])

    def _persist_state(self) -> dict:
        """The architecture (constructor arguments) and the fitted parameters."""
        return {"n_states": self.n_states, "obs_dim": self._obs_dim, "input_dim": self.input_dim, "layer": self.layer,
                "hidden": self.hidden, "state": self.state, "n_layers": self.n_layers,
                "init_options": self.init_options, "min_variance": self.min_variance, "params": self.params}

    def __repr__(self) -> str:
        return f"IOHMM(n_states={self.n_states}, obs_dim={self._obs_dim}, input_dim={self.input_dim}, layer={self.layer!r})"


register_loadable(IOHMMParams)
register_loadable(IOHMM)
