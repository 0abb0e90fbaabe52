r"""Particle EM and SAEM with PaRIS or PPG sufficient statistics.

For an exponential-family model the complete-data log-likelihood depends on the
data only through additive sufficient statistics
:math:`S(x_{0:T}, y) = s_0(x_0, y_0) + \sum_t s_t(x_{t-1}, x_t, y_t)`, and the
M-step :math:`\theta = \bar\theta(S)` is closed form (the model's ``m_step``).
Iteration :math:`k`:

.. math::

    \hat S_k \approx E_{\theta_k}[S(X, y) \mid y] \quad\text{(PaRIS, or PPG around the previous reference path)},

    \bar S_k = (1 - \gamma_k)\, \bar S_{k-1} + \gamma_k \hat S_k, \qquad
    \theta_{k+1} = \bar\theta(\bar S_k).

With :math:`\gamma_k = 1` this is particle EM (Monte Carlo EM); a decreasing
schedule (:math:`\sum\gamma_k = \infty`, :math:`\sum\gamma_k^2 < \infty`) is SAEM
(Delyon, Lavielle & Moulines 1999), which averages the Monte Carlo noise out and
converges to a stationary point of the likelihood. The default schedule is
:math:`\gamma_k = 1` for the first half of the iterations (fast EM-like
progress), then :math:`\gamma_k = (k - k_w + 2)^{-0.7}`.

With ``smoother="ppg"`` the PPG chain runs across iterations: each iteration
makes ``n_sweeps`` conditional PaRIS passes around the reference path left by
the previous one (Cardoso et al. 2023, section 4), which removes most of the
self-normalisation bias of PaRIS at the same N.

Example::

    from statespace import StochasticVolatility
    from smc.learning import particle_em
    truth = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    x, y = truth.sample(500, rng=0)
    res = particle_em(StochasticVolatility(0.0, 0.5, 1.0), y, n_iter=30, n_particles=32, rng=1)
    res.model
"""

from __future__ import annotations

import numpy as np

from statespace.errors import ParameterError
from statespace.progress import progress_bar
from statespace.validation import as_rng

from ._engine import FunctionalEstimator, LearningResult, check_common, prepare, step_size_schedule, vector_of


def particle_em(
    model,
    y,
    n_iter=100,
    n_particles=32,
    *,
    n_backward=2,
    smoother="ppg",
    n_sweeps=1,
    burn_in=0,
    step_sizes=None,
    inputs=None,
    rng=None,
    progress=True,
) -> LearningResult:
    """Fit ``model`` by particle EM / SAEM (see the module docstring).

    Args:
        model: a model with ``sufficient_statistics()`` and ``m_step`` (warm start: its parameters).
        y: one sequence or a list of sequences.
        n_iter: EM iterations.
        n_particles, n_backward: N and K of each PaRIS / conditional PaRIS pass.
        smoother: ``"ppg"`` or ``"paris"``.
        n_sweeps, burn_in: PPG passes per iteration and how many of them are not averaged.
        step_sizes: ``None`` (default SAEM schedule), a callable ``k -> gamma_k``, or an array
            of ``n_iter`` values in (0, 1]; all ones is plain particle EM.
        rng: seed or Generator.
    """
    n_iter, n_particles, n_backward = check_common(n_iter, n_particles, n_backward, smoother)
    try:
        functional = model.sufficient_statistics()
    except NotImplementedError as exc:
        raise ParameterError(f"model: {exc}; particle EM needs sufficient statistics and an M-step") from None
    rng = as_rng(rng)
    data = prepare(model, y, inputs)
    gammas = step_size_schedule(step_sizes, n_iter, n_iter // 2, 0.7)
    est = FunctionalEstimator(
        data, smoother=smoother, n_particles=n_particles, n_backward=n_backward, n_sweeps=n_sweeps, burn_in=burn_in
    )
    n_steps = sum(len(s) for s, _ in data)
    names, v0 = vector_of(model)
    trace = np.empty((n_iter + 1, len(v0)))
    trace[0] = v0
    lls = np.empty(n_iter)
    steps = np.empty(n_iter)
    s_bar = None
    bar = progress_bar(n_iter, f"particle EM ({smoother})", progress)
    for k in range(n_iter):
        functional = model.sufficient_statistics()
        s_hat, lls[k] = est(model, functional, rng)
        s_bar = s_hat if s_bar is None else (1.0 - gammas[k]) * s_bar + gammas[k] * s_hat
        model = model.m_step(s_bar, n_sequences=len(data), n_steps=n_steps)
        trace[k + 1] = vector_of(model)[1]
        steps[k] = est.particle_steps
        bar.set_postfix(loglik=f"{lls[k]:.4g}")
        bar.update(1)
    bar.close()
    return LearningResult(model.params, lls, False, n_iter, model, trace, names, steps)
