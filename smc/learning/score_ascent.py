r"""Maximum likelihood by score ascent: the gradient by Fisher's identity, smoothed by PaRIS or PPG.

Fisher's identity writes the score as a smoothed additive functional,

.. math::

    \nabla_\theta \log p_\theta(y_{0:T}) = E_\theta\Big[\nabla_\theta \log \mu_\theta(X_0)
      + \sum_{t=0}^{T} \nabla_\theta \log g_\theta(y_t \mid X_t)
      + \sum_{t=1}^{T} \nabla_\theta \log f_\theta(X_t \mid X_{t-1}) \,\Big|\, y_{0:T}\Big],

so PaRIS (or PPG) estimates it in one pass. The per-step gradients are taken
on the model's own compiled log-densities by central differences in the
unconstrained coordinates of the model's :meth:`~statespace.interface.StateSpaceModel.parametrization`
(step ``1e-5``; the densities are smooth, so the error, ~1e-10, is far below the
Monte Carlo noise): every model of the shared interface gets a score with no
extra code. The functional's parameters are the kernel parameters at
:math:`\theta \pm h e_j`, built once per iteration.

The update is stochastic approximation on :math:`\theta` with the score divided
by the number of observations (so step sizes do not depend on T):
``optimizer="adam"`` (default, optax) or ``"sgd"`` (Robbins-Monro,
:math:`\theta_{k+1} = \theta_k + \gamma_k \hat s_k / n`), with the learning rate
decaying as :math:`\gamma_0 (1 + k/k_d)^{-0.6}` and Polyak-Ruppert averaging of
the iterates over the second half of the run (the returned model).

Example::

    from statespace import StochasticVolatility
    from smc.learning import score_ascent
    x, y = StochasticVolatility(-1.0, 0.95, 0.3).sample(500, rng=0)
    res = score_ascent(StochasticVolatility(0.0, 0.8, 0.5), y, n_iter=50, rng=1)
"""

from __future__ import annotations

import numba as nb
import numpy as np

from statespace.interface import AdditiveFunctional
from statespace.progress import progress_bar
from statespace.validation import as_rng

from ._engine import FunctionalEstimator, LearningResult, check_common, check_gradient_options, prepare
from .parametrization import Parametrization, enable_x64

#: Central-difference step in unconstrained coordinates.
FD_STEP = 1e-5

_SCORE_FUNCTIONALS: dict = {}


def score_functional(kernels, n_params) -> AdditiveFunctional:
    """The complete-data score as an additive functional, by central differences of the model's kernels.

    Its parameters are ``(kps_plus, kps_minus, two_h)``: tuples of ``n_params``
    kernel parameter sets at :math:`\\theta \\pm h e_j` and the array of ``2 h``.
    """
    key = (kernels.log_initial, kernels.log_transition, kernels.log_emission)
    if key not in _SCORE_FUNCTIONALS:
        li, lt, le = key

        @nb.njit
        def initial(hp, x, y, out):
            plus, minus, two_h = hp
            for j in range(len(plus)):
                out[j] = (li(plus[j], x) + le(plus[j], 0, x, y) - li(minus[j], x) - le(minus[j], 0, x, y)) / two_h[j]

        @nb.njit
        def step(hp, t, x_prev, x, y, out):
            plus, minus, two_h = hp
            for j in range(len(plus)):
                up = lt(plus[j], t, x_prev, x) + le(plus[j], t, x, y)
                down = lt(minus[j], t, x_prev, x) + le(minus[j], t, x, y)
                out[j] = (up - down) / two_h[j]

        _SCORE_FUNCTIONALS[key] = (initial, step)
    initial, step = _SCORE_FUNCTIONALS[key]
    return AdditiveFunctional(initial, step, int(n_params))


def score_params(param: Parametrization, theta, inputs=None, h=FD_STEP):
    """The parameters of :func:`score_functional` at ``theta`` for a sequence with ``inputs``."""
    plus, minus = [], []
    for j in range(len(theta)):
        e = np.zeros(len(theta))
        e[j] = h
        plus.append(param.from_vector(theta + e).kernel_params(inputs=inputs))
        minus.append(param.from_vector(theta - e).kernel_params(inputs=inputs))
    return tuple(plus), tuple(minus), np.full(len(theta), 2.0 * h)


def estimate_score(
    model,
    y,
    parametrization=None,
    n_particles=100,
    n_backward=2,
    *,
    smoother="paris",
    n_sweeps=1,
    burn_in=0,
    inputs=None,
    rng=None,
):
    """Fisher-identity estimate of :math:`\\nabla_\\theta \\log p_\\theta(y)` in unconstrained coordinates."""
    param = parametrization or model.parametrization()
    data = prepare(model, y, inputs)
    theta = param.to_vector(model)
    est = FunctionalEstimator(
        data, smoother=smoother, n_particles=n_particles, n_backward=n_backward, n_sweeps=n_sweeps, burn_in=burn_in
    )
    func = score_functional(model.kernels(), len(theta))
    return est(model, func, as_rng(rng), hp_for=lambda u: score_params(param, theta, u))[0]


def score_ascent(
    model,
    y,
    n_iter=300,
    n_particles=32,
    *,
    n_backward=2,
    smoother="ppg",
    n_sweeps=1,
    burn_in=0,
    parametrization=None,
    optimizer="adam",
    learning_rate=0.05,
    decay_iters=None,
    average_from=0.5,
    inputs=None,
    rng=None,
    progress=True,
) -> LearningResult:
    """Maximum likelihood by stochastic score ascent (see the module docstring).

    Args:
        model: any model (warm start: its parameters) implementing ``parametrization()``, unless one is passed.
        y: one sequence or a list.
        n_iter: gradient steps.
        n_particles, n_backward, smoother, n_sweeps, burn_in: the smoother of each step (as in particle EM).
        parametrization: a :class:`~statespace.interface.Parametrization` (default: ``model.parametrization()``).
        optimizer: ``"adam"`` or ``"sgd"``.
        learning_rate: initial step size :math:`\\gamma_0`.
        decay_iters: :math:`k_d` of the decay (default ``n_iter / 10``).
        average_from: fraction of the run after which iterates are averaged (1 disables averaging).
    """
    n_iter, n_particles, n_backward = check_common(n_iter, n_particles, n_backward, smoother)
    options = check_gradient_options(optimizer, learning_rate, decay_iters, average_from)
    param = parametrization or model.parametrization()
    rng = as_rng(rng)
    data = prepare(model, y, inputs)
    est = FunctionalEstimator(
        data, smoother=smoother, n_particles=n_particles, n_backward=n_backward, n_sweeps=n_sweeps, burn_in=burn_in
    )
    func = score_functional(model.kernels(), len(param.to_vector(model)))

    def gradient_step(k, theta):
        th = theta.copy()
        score, ll = est(param.from_vector(theta), func, rng, hp_for=lambda u: score_params(param, th, u))
        return score, ll, est.particle_steps

    return averaged_ascent(param, model, data, gradient_step, n_iter, options, f"score ascent ({smoother})", progress)


def averaged_ascent(param, model, data, gradient_step, n_iter, options, label, progress) -> LearningResult:
    """Stochastic approximation with Polyak-Ruppert averaging, shared by score ascent and score climbing.

    Starting from ``model``'s parameters, iterates :math:`\\theta_{k+1} = \\theta_k + \\gamma_k \\hat g_k / n`
    with :math:`\\gamma_k = \\gamma_0 (1 + k / k_d)^{-0.6}` (through ``options.optimizer``) and
    returns the average of the iterates after ``options.average_from * n_iter``.
    ``gradient_step(k, theta) -> (gradient estimate summed over the data,
    log-likelihood estimate, cumulative particle steps)``; ``n`` is the number of
    observations in ``data``.
    """
    theta = np.asarray(param.to_vector(model), dtype=float)
    n_obs = sum(len(s) for s, _ in data)
    kd = options.decay_iters or max(n_iter / 10.0, 1.0)
    rates = options.learning_rate * (1.0 + np.arange(n_iter) / kd) ** -0.6
    step = _optimizer(options.optimizer, theta, rates)
    start_avg = min(int(options.average_from * n_iter), n_iter - 1)
    trace = np.empty((n_iter + 1, len(theta)))
    trace[0] = theta
    lls, steps = np.empty(n_iter), np.empty(n_iter)
    avg = np.zeros_like(theta)
    with progress_bar(n_iter, label, progress) as bar:
        for k in range(n_iter):
            g, lls[k], steps[k] = gradient_step(k, theta)
            theta = step(k, theta, g / n_obs)
            trace[k + 1] = theta
            if k >= start_avg:
                avg += theta
            bar.set_postfix(loglik=f"{lls[k]:.4g}")
            bar.update(1)
    final = param.from_vector(avg / (n_iter - start_avg))
    return LearningResult(final.params, lls, False, n_iter, final, trace, tuple(param.names), steps)


def _optimizer(name, theta, rates):
    """``step(k, theta, grad) -> theta`` ascending ``grad`` with step size ``rates[k]``."""
    if name == "sgd":
        return lambda k, th, g: th + rates[k] * g
    import optax

    jnp = enable_x64()

    opt = optax.inject_hyperparams(optax.adam)(learning_rate=float(rates[0]))
    state = {"s": opt.init(jnp.asarray(theta))}

    def step(k, th, g):
        st = state["s"]
        st.hyperparams["learning_rate"] = jnp.asarray(rates[k])
        upd, st = opt.update(jnp.asarray(-g), st)
        state["s"] = st
        return np.asarray(th + np.asarray(upd), dtype=float)

    return step
