r"""Markov score climbing (Naesseth, Lindsten & Blei 2020) with a particle Gibbs kernel.

Maximum likelihood solves :math:`E_{p_\theta(x \mid y)}[\nabla_\theta \log p_\theta(x, y)] = 0`.
Markov score climbing replaces the posterior expectation by the current state of
a Markov chain that leaves :math:`p_{\theta_k}(x \mid y)` invariant:

.. math::

    x^{(k)} \sim M_{\theta_k}(x^{(k-1)}, \cdot), \qquad
    \theta_{k+1} = \theta_k + \gamma_k \, \nabla_\theta \log p_{\theta}(x^{(k)}, y)\big|_{\theta_k},

a stochastic approximation with Markovian noise that converges to a stationary
point of the likelihood under Robbins-Monro step sizes. Here :math:`M_\theta`
is conditional SMC with backward sampling (``kernel="csmc"``), or a PPG
iteration (``kernel="ppg"``) from whose backward-index tree ``n_paths``
trajectories are read at no extra forward cost and their gradients averaged
(the PPG version of the paper of Cardoso et al. 2023, section 4).

The gradient of the log joint density is taken by JAX on a model-supplied
``log_joint(theta, x, y)`` written in ``jax.numpy`` (the model's
:meth:`~statespace.interface.StateSpaceModel.parametrization`; shipped for the stochastic
volatility, linear-Gaussian and neural-drift models): this is the route by which learned
components (neural transitions, deep SSM layers) are trained, since the
sampler only needs the model's compiled kernels at the current parameters.
JAX runs in float64 here (``jax_enable_x64`` is switched on when this routine
first runs). Updates use optax Adam (default) or plain SGD, on the gradient
divided by the number of observations, with learning rate
:math:`\gamma_0 (1 + k/k_d)^{-0.6}` and Polyak-Ruppert averaging over the second
half of the run.

Example::

    from statespace import StochasticVolatility
    from smc.learning import score_climbing
    x, y = StochasticVolatility(-1.0, 0.95, 0.3).sample(2000, rng=0)
    res = score_climbing(StochasticVolatility(0.0, 0.8, 0.5), y, n_iter=500, rng=1)
"""

from __future__ import annotations

import numpy as np

from statespace.errors import ParameterError
from statespace.validation import as_rng, check_choice, check_int

from ..csmc import NO_FUNCTIONAL, backward_sample, index_tree_sample, run_sweep
from ._engine import LearningResult, check_common, check_gradient_options, prepare
from .parametrization import enable_x64
from .score_ascent import averaged_ascent

KERNELS = ("csmc", "ppg")


def _jax_gradient(log_joint):
    import jax

    jnp = enable_x64()
    grad = jax.jit(jax.grad(log_joint))
    batched = jax.jit(jax.vmap(jax.grad(log_joint), in_axes=(None, 0, None)))

    def gradient(theta, paths, y):
        th = jnp.asarray(theta)
        if len(paths) == 1:
            return np.asarray(grad(th, jnp.asarray(paths[0]), jnp.asarray(y)))
        return np.asarray(batched(th, jnp.asarray(np.stack(paths)), jnp.asarray(y))).mean(axis=0)

    return gradient


def score_climbing(
    model,
    y,
    n_iter=500,
    n_particles=32,
    *,
    kernel="csmc",
    n_backward=2,
    n_paths=1,
    parametrization=None,
    optimizer="adam",
    learning_rate=0.05,
    decay_iters=None,
    average_from=0.5,
    inputs=None,
    rng=None,
    progress=True,
) -> LearningResult:
    """Maximum likelihood by Markov score climbing (see the module docstring).

    Args:
        model: any model with a parametrization carrying a JAX ``log_joint`` (warm start: its parameters).
        y: one sequence or a list.
        n_iter: gradient steps (one Markov move per sequence each).
        n_particles: N of the conditional sweeps.
        kernel: ``"csmc"`` (conditional SMC, backward sampling) or ``"ppg"`` (conditional PaRIS).
        n_backward: K of the PPG kernel.
        n_paths: trajectories drawn per move (more than one needs ``kernel="ppg"``); their gradients are averaged.
        parametrization, optimizer, learning_rate, decay_iters, average_from: as in :func:`score_ascent`.
    """
    check_choice("kernel", kernel, KERNELS)
    n_iter, n_particles, n_backward = check_common(n_iter, n_particles, n_backward)
    n_paths = check_int("n_paths", n_paths, minimum=1)
    if n_paths > 1 and kernel != "ppg":
        raise ParameterError(f"n_paths: expected 1 (or more with kernel='ppg'), got {n_paths}")
    options = check_gradient_options(optimizer, learning_rate, decay_iters, average_from)
    param = parametrization or model.parametrization()
    if param.log_joint is None:
        raise ParameterError(
            "parametrization: Markov score climbing needs a JAX log_joint(theta, x, y), and this "
            "parametrization has none (e.g. a linear-Gaussian model with inputs); use smc.learning.score_ascent"
        )
    rng = as_rng(rng)
    data = prepare(model, y, inputs)
    gradient = _jax_gradient(param.log_joint)
    refs = [None] * len(data)
    K = int(n_backward) if kernel == "ppg" else 0
    n_steps_done = 0

    def gradient_step(k, theta):
        nonlocal n_steps_done
        current = param.from_vector(theta)
        kern = current.kernels()
        g = np.zeros_like(theta)
        ll = 0.0
        for i, (yy, u) in enumerate(data):
            kp = current.kernel_params(inputs=u)
            x, logw, _, bidx, _, lli, _ = run_sweep(
                kern, kp, yy, refs[i], n_particles=n_particles, functional=NO_FUNCTIONAL, n_backward=K, rng=rng
            )
            if K:
                paths = [index_tree_sample(x, logw, bidx, rng) for _ in range(n_paths)]
            else:
                paths = [backward_sample(kern.log_transition, kp, x, logw, rng)]
            refs[i] = paths[-1]
            g += gradient(theta, paths, yy)
            ll += lli
            n_steps_done += n_particles * len(yy)
        if not np.isfinite(g).all():
            raise ParameterError(f"log_joint: non-finite gradient at iteration {k} (theta = {theta})")
        return g, ll, n_steps_done

    label = f"Markov score climbing ({kernel})"
    return averaged_ascent(param, model, data, gradient_step, n_iter, options, label, progress)
