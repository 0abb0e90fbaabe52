r"""A state-space model with a neural drift, learned by Markov score climbing.

.. math::

    x_0 \sim \mathcal N(m_0, \operatorname{diag} s_0^2), \qquad
    x_t = x_{t-1} + f_\theta(x_{t-1}, h_t) + \sigma_x \odot \varepsilon_t, \qquad
    y_t = x_t + \sigma_y \odot \eta_t,

with :math:`f_\theta(x, h) = W_2 \tanh(W_1 x + W_h h + b_1) + b_2` a one-hidden-layer network
(``n_hidden`` units) and :math:`\varepsilon_t, \eta_t \sim \mathcal N(0, I_d)`. The optional
features ``h_t`` (``(T, p)``, passed as ``inputs``) are known covariates, typically the output of
a :class:`statespace.deep.SequenceModel` run over raw covariates (a deep-SSM encoding of their
history). NaN coordinates of ``y`` are missing and marginalised.

There is no exact filter; the compiled kernels (the network is evaluated inside them,
per particle) give every particle method of :mod:`smc` for free. Learning is
maximum likelihood by Markov score climbing (:func:`smc.learning.score_climbing`):
conditional SMC / PPG draws a trajectory from the current posterior and Adam follows
:math:`\nabla_\theta \log p_\theta(x_{0:T}, y_{0:T})`, computed by JAX from
:meth:`NeuralDriftSSM.parametrization`'s ``log_joint``. The vector ``theta`` holds
``W1, [Wh,] b1, W2, b2, log sigma_x, log sigma_y``; ``m0, s0`` stay fixed. Training with
features is for one sequence (score climbing's ``log_joint`` closes over that sequence's ``h``).

Example::

    import numpy as np
    from smc.neural_drift import NeuralDriftSSM
    y = np.cumsum(np.random.default_rng(0).normal(0.0, 0.3, (200, 1)), axis=0)   # a random walk
    model = NeuralDriftSSM.initialize(y, n_hidden=8, rng=0)
    result = model.fit(y, max_iter=20, n_particles=16, rng=1)   # PPG score climbing; updates model.params
    model.drift(np.linspace(-2, 2, 50)[:, None])                # f_theta on a grid
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace.errors import ParameterError, ShapeError
from statespace.interface import ModelKernels, Parametrization, StateSpaceModel
from statespace.persistence import SavedModel, register_loadable
from statespace.validation import as_float_array, as_rng, as_sequences, check_int, check_names, check_real

_LOG_2PI = math.log(2.0 * math.pi)


class _Base(NamedTuple):
    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    sigma_x: np.ndarray
    sigma_y: np.ndarray
    m0: np.ndarray
    s0: np.ndarray
    Wh: np.ndarray


class NeuralDriftParams(_Base):
    """Parameters: ``W1 (H, d)``, ``b1 (H,)``, ``W2 (d, H)``, ``b2 (d,)``; positive ``sigma_x, sigma_y, s0 (d,)``;
    ``m0 (d,)``; ``Wh (H, p)`` weights of the features ``h_t`` (``p = 0``, the default: no features)."""

    __slots__ = ()

    def __new__(cls, W1, b1, W2, b2, sigma_x, sigma_y, m0, s0, Wh=None):
        W1 = np.ascontiguousarray(np.atleast_2d(as_float_array("W1", W1)))
        H, d = W1.shape
        Wh = np.zeros((H, 0)) if Wh is None else as_float_array("Wh", Wh)
        if Wh.ndim != 2 or Wh.shape[0] != H:
            raise ShapeError(f"Wh: expected shape ({H}, p), got {Wh.shape}")
        arrs = {"W1": W1, "Wh": Wh}
        for name, v, shape in (
            ("b1", b1, (H,)),
            ("W2", W2, (d, H)),
            ("b2", b2, (d,)),
            ("sigma_x", sigma_x, (d,)),
            ("sigma_y", sigma_y, (d,)),
            ("m0", m0, (d,)),
            ("s0", s0, (d,)),
        ):
            a = as_float_array(name, v)
            a = np.ascontiguousarray(np.full(shape, float(a)) if a.ndim == 0 else a)
            if a.shape != shape:
                raise ShapeError(f"{name}: expected shape {shape}, got {a.shape}")
            arrs[name] = a
        for name, a in arrs.items():
            if not np.isfinite(a).all():
                raise ParameterError(f"{name}: non-finite value at index {tuple(np.argwhere(~np.isfinite(a))[0])}")
        for name in ("sigma_x", "sigma_y", "s0"):
            if (arrs[name] <= 0).any():
                i = int(np.argmax(arrs[name] <= 0))
                raise ParameterError(f"{name}: expected positive standard deviations, got {arrs[name][i]} at index {i}")
        return super().__new__(cls, *(arrs[f] for f in cls._fields))


# the model's fields, then the sequence's features: written once, from _Base
NeuralDriftKernelParams = NamedTuple(
    "NeuralDriftKernelParams", [(f, np.ndarray) for f in _Base._fields] + [("h", np.ndarray)]
)
NeuralDriftKernelParams.__doc__ = (
    """Kernel parameters of one sequence: the model's parameters and the features ``h (T, p)``."""
)


class NeuralDriftSSM(StateSpaceModel, SavedModel):
    """The neural-drift model of the module docstring (``state_dim == obs_dim == d``)."""

    def __init__(self, params: NeuralDriftParams):
        if not isinstance(params, NeuralDriftParams):
            raise ParameterError(f"params: expected NeuralDriftParams, got {type(params).__name__}")
        self.params = params

    @classmethod
    def initialize(
        cls, y, n_hidden: int = 16, rng=None, weight_scale: float = 0.1, input_dim: int = 0
    ) -> NeuralDriftSSM:
        """A starting model for data ``y``: small random drift, noise scales from the data's increments."""
        seqs, _ = as_sequences("y", y)
        H, p = check_int("n_hidden", n_hidden, minimum=1), check_int("input_dim", input_dim, minimum=0)
        weight_scale = check_real("weight_scale", weight_scale, 0.0)
        rng = as_rng(rng)
        d = seqs[0].shape[1]
        incr = np.concatenate([np.diff(s, axis=0) for s in seqs])
        sd = np.nan_to_num(np.nanstd(incr, axis=0), nan=1.0) + 1e-3
        first = np.array([s[0] for s in seqs])
        return cls(
            NeuralDriftParams(
                rng.standard_normal((H, d)) / math.sqrt(d),
                rng.standard_normal(H) * 0.5,
                weight_scale * rng.standard_normal((d, H)) / math.sqrt(H),
                np.zeros(d),
                sd / math.sqrt(2),
                sd / math.sqrt(2),
                np.nan_to_num(np.nanmean(first, axis=0)),
                np.nan_to_num(np.nanstd(np.concatenate(seqs), axis=0), nan=1.0) + 1e-3,
                rng.standard_normal((H, p)) / math.sqrt(max(p, 1)),
            )
        )

    @property
    def n_hidden(self) -> int:
        """The number of hidden units of the drift network (the rows of ``W1``)."""
        return self.params.W1.shape[0]

    @property
    def input_dim(self) -> int:
        """``p``, the dimension of the features ``h_t`` the drift takes (the columns of ``Wh``); 0 without features."""
        return self.params.Wh.shape[1]

    def drift(self, x, h=None) -> np.ndarray:
        """``f_theta(x, h)`` for points ``x (n, d)`` (and features ``h (n, p)`` when the model takes them)."""
        p = self.params
        x = np.atleast_2d(np.asarray(x, float))
        pre = x @ p.W1.T + p.b1
        if self.input_dim:
            if h is None:
                raise ShapeError(f"h: the drift takes {self.input_dim}-dimensional features; none were given")
            pre = pre + np.atleast_2d(np.asarray(h, float)) @ p.Wh.T
        return np.tanh(pre) @ p.W2.T + p.b2

    def kernels(self) -> ModelKernels:
        d = self.params.W1.shape[1]
        return ModelKernels(
            _sample_initial,
            _log_initial,
            _sample_transition,
            _log_transition,
            _log_transition_bound,
            _log_emission,
            _sample_emission,
            state_dim=d,
            obs_dim=d,
        )

    def _features(self, inputs) -> np.ndarray:
        if not self.input_dim:
            return np.zeros((1, 0))
        if inputs is None:
            raise ShapeError(f"inputs: the drift takes {self.input_dim}-dimensional features h_t; none were given")
        h = as_float_array("inputs", inputs, (1, 2))
        h = h.reshape(len(h), -1)
        if h.shape[1] != self.input_dim or not np.isfinite(h).all():
            raise ShapeError(f"inputs: expected finite (T, {self.input_dim}) features, got shape {h.shape}")
        return h

    def kernel_params(self, inputs=None, times=None) -> NeuralDriftKernelParams:
        return NeuralDriftKernelParams(*self.params, self._features(inputs))

    # ------------------------------------------------------------------ learning
    def parametrization(self, inputs=None) -> Parametrization:
        """The learning hook: ``theta = (W1, Wh, b1, W2, b2, log sigma_x, log sigma_y)`` and its JAX ``log_joint``.

        With features, ``inputs`` is the one training sequence's ``h (T, p)`` (``log_joint`` closes over it).
        """
        return self._parametrization(inputs, frozenset())

    def _parametrization(self, inputs, frozen) -> Parametrization:
        """:meth:`parametrization` without the fields named in ``frozen``, which keep this model's values."""
        p = self.params
        H, d = p.W1.shape
        q = self.input_dim
        h = self._features(inputs)
        sizes = [
            ("W1", H * d),
            ("Wh", H * q),
            ("b1", H),
            ("W2", d * H),
            ("b2", d),
            ("log_sigma_x", d),
            ("log_sigma_y", d),
        ]
        names = tuple(f"{n}[{i}]" for n, k in sizes for i in range(k))
        cuts = np.cumsum([0] + [k for _, k in sizes])

        def split(th, xp):
            W1, Wh, b1, W2, b2, lsx, lsy = (th[cuts[i] : cuts[i + 1]] for i in range(len(sizes)))
            return W1.reshape(H, d), Wh.reshape(H, q), b1, W2.reshape(d, H), b2, xp.exp(lsx), xp.exp(lsy)

        def to_vector(m):
            r = m.params
            return np.concatenate(
                [r.W1.ravel(), r.Wh.ravel(), r.b1, r.W2.ravel(), r.b2, np.log(r.sigma_x), np.log(r.sigma_y)]
            )

        def from_vector(th):
            W1, Wh, b1, W2, b2, sx, sy = split(np.asarray(th, float), np)
            return NeuralDriftSSM(NeuralDriftParams(W1, b1, W2, b2, sx, sy, p.m0, p.s0, Wh))

        def log_joint(th, x, y):
            import jax.numpy as jnp

            W1, Wh, b1, W2, b2, sx, sy = split(th, jnp)
            lp = jnp.sum(-0.5 * _LOG_2PI - jnp.log(p.s0) - 0.5 * ((x[0] - p.m0) / p.s0) ** 2)
            pre = x[:-1] @ W1.T + b1
            if q:
                pre = pre + jnp.asarray(h[1 : len(x)]) @ Wh.T  # the move into t reads h_t
            mean = x[:-1] + jnp.tanh(pre) @ W2.T + b2
            lp += jnp.sum(-0.5 * _LOG_2PI - jnp.log(sx) - 0.5 * ((x[1:] - mean) / sx) ** 2)
            obs = ~jnp.isnan(y)
            r = (jnp.where(obs, y, 0.0) - x) / sy
            return lp + jnp.sum(jnp.where(obs, -0.5 * _LOG_2PI - jnp.log(sy) - 0.5 * r * r, 0.0))

        natural = lambda m: {"sigma_x": m.params.sigma_x, "sigma_y": m.params.sigma_y}  # noqa: E731
        fixed = {"sigma_x": "log_sigma_x", "sigma_y": "log_sigma_y"}
        fixed = {fixed.get(f, f) for f in frozen}
        if not fixed & {n for n, _ in sizes}:
            return Parametrization(names, to_vector, from_vector, log_joint, natural)
        free = np.concatenate([np.full(k, n not in fixed) for n, k in sizes])
        base = to_vector(self)

        def to_free(m):
            return to_vector(m)[free]

        def from_free(th):
            full = base.copy()
            full[free] = th
            return from_vector(full)

        def log_joint_free(th, x, y):
            import jax.numpy as jnp

            return log_joint(jnp.asarray(base).at[np.flatnonzero(free)].set(th), x, y)

        return Parametrization(tuple(n for n, f in zip(names, free) if f), to_free, from_free, log_joint_free, natural)

    def fit(
        self,
        y,
        inputs=None,
        *,
        init: NeuralDriftParams | None = None,
        frozen=None,
        max_iter: int = 500,
        n_particles: int = 32,
        kernel: str = "ppg",
        learning_rate=0.01,
        rng=None,
        progress: bool = True,
        **kwargs,
    ):
        """Markov score climbing (:func:`smc.learning.score_climbing`); updates ``self.params``.

        Stochastic approximation: ``max_iter`` Adam steps along the complete-data score of
        a conditional-SMC (``kernel="csmc"``) or PPG (``"ppg"``) draw of the path; the
        fitted parameters are the Polyak-Ruppert average of the second half. Unlike EM, the
        recorded objective (a particle estimate per iteration) is noisy and may go down.

        Args:
            y, inputs: one sequence or a list (with features, one sequence and its ``h``).
            init: starting :class:`NeuralDriftParams`; by default ``self.params`` (warm start).
            frozen: names of :class:`NeuralDriftParams` fields kept fixed, from
                ``W1, Wh, b1, W2, b2, sigma_x, sigma_y`` (``m0`` and ``s0`` are always fixed).
            max_iter: gradient steps; ``n_particles``, ``kernel``, ``learning_rate``, ``rng``,
                ``progress`` and further keywords as in :func:`smc.learning.score_climbing`.

        Returns:
            :class:`smc.learning.LearningResult`, whose first four fields are those of
            :class:`~statespace.interface.FitResult` (``converged`` is always ``False``);
            its ``params`` become ``self.params``.
        """
        from .learning import score_climbing

        if init is not None and not isinstance(init, NeuralDriftParams):
            raise ParameterError(f"init: expected NeuralDriftParams, got {type(init).__name__}")
        frozen = check_names("frozen", frozen, NeuralDriftParams._fields)
        if self.input_dim and isinstance(y, (list, tuple)):
            raise ShapeError("y: training with features h_t takes one sequence (with its inputs), got a list")
        start = self if init is None else NeuralDriftSSM(init)
        result = score_climbing(
            start,
            y,
            n_iter=max_iter,
            n_particles=n_particles,
            kernel=kernel,
            parametrization=start._parametrization(inputs, frozen),
            learning_rate=learning_rate,
            inputs=inputs,
            rng=rng,
            progress=progress,
            **kwargs,
        )
        self.params = result.params
        return result

    def __repr__(self) -> str:
        return f"NeuralDriftSSM(d={self.params.W1.shape[1]}, n_hidden={self.n_hidden}, input_dim={self.input_dim})"


@nb.njit(cache=True)
def _mean(kp, t, x_prev, out):
    H, d = kp.W1.shape
    q = kp.Wh.shape[1]
    for j in range(d):
        out[j] = x_prev[j] + kp.b2[j]
    for h in range(H):
        a = kp.b1[h]
        for i in range(d):
            a += kp.W1[h, i] * x_prev[i]
        for k in range(q):
            a += kp.Wh[h, k] * kp.h[t, k]
        a = math.tanh(a)
        for j in range(d):
            out[j] += kp.W2[j, h] * a


@nb.njit(cache=True)
def _sample_initial(kp, rng, x_out):
    for j in range(x_out.shape[0]):
        x_out[j] = kp.m0[j] + kp.s0[j] * rng.standard_normal()


@nb.njit(cache=True)
def _log_initial(kp, x):
    out = 0.0
    for j in range(x.shape[0]):
        r = (x[j] - kp.m0[j]) / kp.s0[j]
        out += -0.5 * _LOG_2PI - math.log(kp.s0[j]) - 0.5 * r * r
    return out


@nb.njit(cache=True)
def _sample_transition(kp, t, x_prev, rng, x_out):
    _mean(kp, t, x_prev, x_out)
    for j in range(x_out.shape[0]):
        x_out[j] += kp.sigma_x[j] * rng.standard_normal()


@nb.njit(cache=True)
def _log_transition(kp, t, x_prev, x):
    m = np.empty(x.shape[0])
    _mean(kp, t, x_prev, m)
    out = 0.0
    for j in range(x.shape[0]):
        r = (x[j] - m[j]) / kp.sigma_x[j]
        out += -0.5 * _LOG_2PI - math.log(kp.sigma_x[j]) - 0.5 * r * r
    return out


@nb.njit(cache=True)
def _log_transition_bound(kp, t):
    out = 0.0
    for j in range(kp.sigma_x.shape[0]):
        out += -0.5 * _LOG_2PI - math.log(kp.sigma_x[j])
    return out


@nb.njit(cache=True)
def _log_emission(kp, t, x, y):
    out = 0.0
    for j in range(x.shape[0]):
        v = y[t, j]
        if not math.isnan(v):
            r = (v - x[j]) / kp.sigma_y[j]
            out += -0.5 * _LOG_2PI - math.log(kp.sigma_y[j]) - 0.5 * r * r
    return out


@nb.njit(cache=True)
def _sample_emission(kp, t, x, y, rng, y_out):
    for j in range(y_out.shape[0]):
        y_out[j] = x[j] + kp.sigma_y[j] * rng.standard_normal()


register_loadable(NeuralDriftParams)
register_loadable(NeuralDriftSSM)
