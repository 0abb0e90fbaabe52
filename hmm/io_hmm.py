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

    import numpy as np
    from hmm.io_hmm import IOHMM
    rng = np.random.default_rng(0)
    u = np.cumsum(rng.standard_normal((205, 1)), axis=0) * 0.3      # a slowly wandering input
    y = np.where(u > 0, 1.0, -1.0) + 0.8 * rng.standard_normal((205, 1))
    y_train, u_train, y_test, u_test, u_next = y[:150], u[:150], y[150:200], u[150:200], u[200:]
    model = IOHMM(n_states=2, obs_dim=1, input_dim=1, layer="lru", hidden=4, state=4)
    model.fit(y_train, inputs=u_train, max_iter=3, m_steps=10, rng=0, progress=False)
    model.log_likelihood(y_test, inputs=u_test)
    x, y = model.sample(150, inputs=u_train, rng=1)   # generic compiled simulator
    A_t = model.transition_matrices(u_train)           # (T-1, K, K)
    model.forecast(y_test, 5, inputs=u_test, future_inputs=u_next)   # needs the next 5 inputs

The inference verbs are those of :class:`hmm.chain.DiscreteChainModel`; this module
supplies the chain (``_inference_args``) and the generalised M-step.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from statespace.distributed import EStep
from statespace.errors import ParameterError, ShapeError
from statespace.interface import FitResult
from statespace.persistence import register_loadable
from statespace.validation import (
    as_float_array,
    as_inputs,
    as_rng,
    check_probability_vector,
    check_real,
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
            raise ShapeError(
                f"means/variances: expected shape ({len(pi0)}, d) each, got {means.shape} and {variances.shape}"
            )
        if not np.isfinite(means).all():
            raise ParameterError(f"means: non-finite value at index {tuple(np.argwhere(~np.isfinite(means))[0])}")
        if not (np.isfinite(variances) & (variances > 0)).all():
            k, j = np.argwhere(~(np.isfinite(variances) & (variances > 0)))[0]
            raise ParameterError(
                f"variances: expected positive finite values, got {variances[k, j]} at state {k}, coordinate {j}"
            )
        u_loc, u_scale = (
            np.atleast_1d(as_float_array("u_loc", u_loc)),
            np.atleast_1d(as_float_array("u_scale", u_scale)),
        )
        if u_loc.shape != u_scale.shape or not (u_scale > 0).all():
            raise ParameterError("u_loc/u_scale: expected matching shapes and positive scales")
        return super().__new__(cls, pi0, to_numpy_tree(net), means, variances, u_loc, u_scale)


class IOHMM(NetworkChain):
    """Input-output HMM with deep-SSM transition logits and diagonal Gaussian emissions.

    Args:
        n_states: ``K``.
        obs_dim: ``d``.
        input_dim: ``p >= 1``, width of the covariates.
        layer, hidden, state, n_layers, init_options: the :class:`~statespace.deep.SequenceModel`.
        min_variance: floor of the emission variances in the M-step.
        params: an :class:`IOHMMParams` (else ``fit`` initialises).
    """

    def __init__(
        self,
        n_states: int,
        obs_dim: int = 1,
        input_dim: int = 1,
        *,
        layer: str = "lru",
        hidden: int = 16,
        state: int = 16,
        n_layers: int = 1,
        init_options: tuple = (),
        min_variance: float = 1e-6,
        params=None,
    ):
        self._set_architecture(n_states, obs_dim, input_dim, 1, layer, hidden, state, n_layers, init_options)
        self.min_variance = check_real("min_variance", min_variance, 0.0, strict=True)
        self.params = None if params is None else self.check_params(params)

    @property
    def network(self):
        """The :class:`~statespace.deep.SequenceModel` mapping ``u_{0:t}`` to ``K x K`` logits."""
        return self._sequence_model(self.input_dim, self.n_states**2)

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

    def _parameter_names(self) -> tuple:
        return IOHMMParams._fields

    def _functions(self):
        if self._fns is None:
            self._fns = _transition_functions(self.network, self.n_states)
        return self._fns

    # ------------------------------------------------------------------ the chain
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

    _two_slice = True  # the transition network's M-step reads xi_t(i, j) per step

    def _inference_args(self, p: IOHMMParams, data: ChainData):
        for s, lt, lp in zip(data.seqs, self._log_transitions(p, data.inputs), data.log_pls):
            ll = self._emission_loglik(p, s)
            yield p.pi0, np.ascontiguousarray(np.exp(lt)), ll if lp is None else ll + lp

    def _sample_future(self, p, data, i, last_filtered, steps, future_inputs, n_samples, rng):
        """The network reads the inputs up to each future step; Gaussian draws given the sampled states."""
        lt = self._log_transitions(p, [np.vstack([data.inputs[i], future_inputs])])[0]
        A_future = np.exp(lt[-steps:])
        states = sample_future_states(last_filtered, A_future, n_samples, rng)
        obs = p.means[states] + np.sqrt(p.variances)[states] * rng.standard_normal((n_samples, steps, self._obs_dim))
        return A_future, states, obs

    # ------------------------------------------------------------------ learning
    def _initial_params(self, data: ChainData, rng) -> IOHMMParams:
        """A homogeneous Gaussian HMM fitted by Baum-Welch: its emissions, ``pi`` and ``log A`` as the logits' bias."""
        import jax

        from .model import GaussianHMM

        K = self.n_states
        uz = Standardiser.fit(data.inputs, self.input_dim)
        base = GaussianHMM(K, self._obs_dim, covariance_type="diag")
        base.fit(data.seqs, pl=plausibilities(data.log_pls), max_iter=50, rng=rng, progress=False)
        e = base.params.emission
        variances = np.maximum(np.array([np.diag(c) for c in e.covs]), self.min_variance)
        with jax.enable_x64(True):
            net = to_numpy_tree(self.network.init(jax.random.key(int(rng.integers(2**31)))))
        # start at the homogeneous chain: small decoder weights, bias log A
        net["dec_w"] = 0.1 * net["dec_w"]
        net["dec_b"] = np.log(np.maximum(base.params.A, 1e-6)).ravel()
        return IOHMMParams(base.params.pi0, net, e.bias.reshape(K, self._obs_dim), variances, uz.loc, uz.scale)

    def fit(
        self,
        y,
        inputs=None,
        pl=None,
        *,
        init: IOHMMParams | None = None,
        frozen=None,
        max_iter: int = 50,
        tol: float = 1e-6,
        m_steps: int = 100,
        learning_rate: float = 3e-3,
        weight_decay: float = 0.0,
        rng=None,
        progress: bool = True,
    ) -> FitResult:
        """Generalised EM (see the module docstring); sets ``self.params``.

        Starts from ``init``, else the current ``params`` (warm start), else :meth:`~hmm.DiscreteChainModel.initialize`'s
        start. ``frozen`` names :class:`IOHMMParams` fields EM keeps (``"pi0"``, ``"net"``,
        ``"means"``, ``"variances"``; the input standardisation is never learned).
        ``weight_decay`` adds the log-prior ``-n_steps * weight_decay * |theta|^2 / 2`` on the network
        (MAP-EM; ``log_likelihoods`` then includes it and never decreases).

        Generalised EM: the network's M-step is accepted only if it raises the expected
        complete-data objective, and the emissions' is closed form, so the objective never
        decreases; should it drop beyond round-off, the fit stops at the best parameters with
        a warning and ``converged=False`` (``ConvergenceMonitor``).
        """
        import jax

        frozen, max_iter, tol, m_steps, learning_rate, weight_decay = self._gem_options(
            frozen, max_iter, tol, m_steps, learning_rate, weight_decay
        )
        data = self._prepare(y, inputs, pl)
        rng = as_rng(rng)
        p = self._start(init)
        if p is None:
            p = self._initial_params(data, rng)
        Tp = padded_length([len(s) for s in data.seqs])
        n_obs = float(sum(len(s) for s in data.seqs))
        wd = float(weight_decay)
        with jax.enable_x64(True), EStep(chain_posteriors, data.items()) as estep:
            u_batch = pad([(u - p.u_loc) / p.u_scale for u in data.inputs], Tp)
            mstep = NetworkMStep(self._functions()["q"], learning_rate)
            penalty = jax.jit(l2_penalty)

            def m_step(stats, p):
                _, _, _, gammas, xis = stats
                if "net" not in frozen:
                    xi_batch = pad([x if len(x) else np.zeros((1, self.n_states, self.n_states)) for x in xis], Tp - 1)
                    p = p._replace(net=mstep.update(p.net, (u_batch, xi_batch, n_obs, wd), m_steps))
                return self._closed_form(p, data.seqs, gammas, frozen)

            return self._run_gem(p, estep, m_step, penalty, n_obs, wd, max_iter, tol, progress)

    def _closed_form(self, p: IOHMMParams, seqs, gammas, frozen=frozenset()) -> IOHMMParams:
        """``pi``, the means and the variances maximising the expected complete-data log-likelihood."""
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
        new = {"pi0": pi0 / pi0.sum(), "means": means, "variances": variances}
        return p._replace(**{k: v for k, v in new.items() if k not in frozen})

    # ------------------------------------------------------------------ compiled face
    def kernel_params(self, inputs=None, times=None) -> ChainKernelParams:
        """Kernel parameters for one input sequence (the transitions are computed from ``inputs``)."""
        p = self._require_params()
        if inputs is None:
            raise ShapeError(
                f"inputs: the IO-HMM's transitions depend on {self.input_dim}-dimensional inputs; none were given"
            )
        u = as_inputs("inputs", inputs, [len(np.atleast_1d(inputs))], self.input_dim, True)[0]
        A = np.exp(self._log_transitions(p, [u])[0])
        return ChainKernelParams(p.pi0, np.ascontiguousarray(A), p.means[None].copy(), np.sqrt(p.variances)[None])

    def _persist_state(self) -> dict:
        """The architecture (constructor arguments) and the fitted parameters."""
        return {**self._architecture(), "min_variance": self.min_variance, "params": self.params}

    def __repr__(self) -> str:
        return f"IOHMM(n_states={self.n_states}, obs_dim={self._obs_dim}, input_dim={self.input_dim}, layer={self.layer!r})"


@lru_cache(maxsize=16)
def _transition_functions(net, K: int) -> dict:
    """Jitted log-transition matrices of a network and the M-step objective ``q``, shared by every
    model of the same architecture (and rebuilt, not pickled, on a Dask worker)."""
    import jax

    def log_trans(p, u):
        logits = net.apply(p, u).reshape(*u.shape[:-1], K, K)
        return jax.nn.log_softmax(logits, axis=-1)

    def q(p, u, xi, n_obs, weight_decay):
        # xi[:, t-1] pairs with A_t, i.e. the logits at time t
        return jax.numpy.sum(xi * log_trans(p, u)[:, 1:]) / n_obs - weight_decay * l2_penalty(p)

    return {"log_trans": jax.jit(log_trans), "q": q}


register_loadable(IOHMMParams)
register_loadable(IOHMM)
