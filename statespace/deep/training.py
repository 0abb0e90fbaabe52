"""A minimal optax loop: minimise a scalar loss over a parameter pytree.

The generalised-EM M-steps of :mod:`hmm.learned_emission` and :mod:`hmm.io_hmm`
call it with the negative expected complete-data log-likelihood as the loss;
users call it to train a :class:`~statespace.deep.SequenceModel` on its own.
"""

from __future__ import annotations

import jax
import numpy as np

from ..progress import progress_bar


def fit_sequence_model(
    loss_fn,
    params,
    n_steps: int,
    optimizer=None,
    learning_rate: float = 1e-3,
    opt_state=None,
    tol: float = 0.0,
    progress: bool = True,
):
    """Run ``n_steps`` optimiser steps on ``loss_fn(params)`` (a jax-traceable scalar).

    Args:
        loss_fn: ``params -> scalar``; data are closed over (it is jitted once here).
        params: initial parameter pytree (warm start).
        optimizer: an ``optax.GradientTransformation`` (default ``optax.adam(learning_rate)``).
        opt_state: the optimiser state to continue from (default: a fresh one).
        tol: stop early once the loss changes by less than ``tol`` (relative) between steps.

    Returns:
        ``(params, losses (n_run,), opt_state)``; ``losses[i]`` is the loss *before* step ``i``.
    """
    import optax

    optimizer = optimizer or optax.adam(learning_rate)
    opt_state = optimizer.init(params) if opt_state is None else opt_state

    @jax.jit
    def update(p, s):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    losses = []
    with progress_bar(n_steps, "optax", progress) as bar:
        for _ in range(int(n_steps)):
            params, opt_state, loss = update(params, opt_state)
            losses.append(float(loss))
            bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
            bar.update()
            if tol > 0 and len(losses) > 1 and abs(losses[-1] - losses[-2]) <= tol * (abs(losses[-2]) + 1e-12):
                break
    return params, np.asarray(losses), opt_state
