r"""Unconstrained parameter vectors for gradient-based learning.

Score ascent and Markov score climbing move a vector :math:`\theta \in \mathbb{R}^p`;
a :class:`~statespace.interface.Parametrization` maps it to a model and back, names its
entries (for traces and ArviZ) and may carry a JAX log joint density
:math:`\log p_\theta(x_{0:T-1}, y_{0:T-1})` for Markov score climbing. The model owns it:
the learning routines ask ``model.parametrization()`` (the hook of
:class:`~statespace.interface.StateSpaceModel`, implemented by the stochastic volatility,
linear-Gaussian and neural-drift models), unless one is passed explicitly.
"""

from __future__ import annotations

from statespace.interface import Parametrization

__all__ = ["Parametrization", "enable_x64"]


def enable_x64():
    """Switch JAX to float64 (the library's precision) and return ``jax.numpy``."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jnp
