r"""Selective scan: the S6 layer of Mamba (Gu & Dao, 2023).

A diagonal SSM whose step, input and output matrices depend on the input, so the
layer can choose what to remember. For channel ``h`` and state ``n``:

.. math::

    \Delta_t = \mathrm{softplus}(W_\uparrow W_\downarrow u_t + b_\Delta) \in \mathbb R^H, \quad
    B_t = W_B u_t \in \mathbb R^N, \quad C_t = W_C u_t \in \mathbb R^N,

.. math::

    x_t^{(h,n)} = e^{\Delta_t^{(h)} A_{hn}}\, x_{t-1}^{(h,n)} + \Delta_t^{(h)} B_t^{(n)} u_t^{(h)}, \qquad
    y_t^{(h)} = \sum_n C_t^{(n)} x_t^{(h,n)} + D_h u_t^{(h)},

with ``A = -exp(A_log)`` real and negative (S4D-Real init ``A_hn = -(n+1)``), ``A`` discretised by
zero-order hold and ``B`` by the Euler rule the paper uses. ``W_down W_up`` is a rank
``ceil(H/16)`` projection; ``b_Delta`` is the inverse softplus of steps
log-uniform on ``[dt_min, dt_max]``.

Because the coefficients vary with ``t`` the layer is no convolution; the parallel
mode is an associative scan over ``(exp(Delta A), Delta B u)``, run within chunks of
``chunk`` steps chained by their last state (memory ``chunk x H x N``; ``chunk >= L`` is
the single scan of depth ``log2 L``), the recurrent mode a step-by-step loop holding an
``(H, N)`` state.

Example::

    import jax
    import numpy as np
    from statespace.deep import selective_scan as s6
    u = np.random.default_rng(0).standard_normal((50, 16))
    params = s6.init(jax.random.key(0), hidden=16, state=8)
    y = s6.apply(params, u)       # u: (..., L, 16)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParameterError
from ._common import lecun_normal, linear_scan, log_uniform, over_batch


def init(key, hidden: int, state: int, dt_rank: int | None = None, dt_min: float = 1e-3, dt_max: float = 1e-1) -> dict:
    """Parameters of an S6 layer: ``hidden`` channels, ``state`` real modes per channel."""
    if hidden < 1 or state < 1:
        raise ParameterError(f"hidden, state: expected positive sizes, got {hidden}, {state}")
    rank = dt_rank or math.ceil(hidden / 16)
    fdt = jnp.result_type(float)
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    dt = jnp.exp(log_uniform(k5, (hidden,), dt_min, dt_max))
    return {
        "a_log": jnp.asarray(np.log(np.broadcast_to(np.arange(1.0, state + 1.0), (hidden, state)).copy()), dtype=fdt),
        "w_dt_down": lecun_normal(k1, (hidden, rank), hidden),
        "w_dt_up": lecun_normal(k2, (rank, hidden), rank),
        "b_dt": dt + jnp.log(-jnp.expm1(-dt)),  # softplus^{-1}(dt)
        "w_b": lecun_normal(k3, (hidden, state), hidden),
        "w_c": lecun_normal(k4, (hidden, state), hidden),
        "d": jnp.ones(hidden, dtype=fdt),
    }


def _selection(params, u):
    """Input-dependent ``(A_bar (..., H, N), B_bar u (..., H, N), C (..., N))``."""
    delta = jax.nn.softplus(u @ params["w_dt_down"] @ params["w_dt_up"] + params["b_dt"])
    a = -jnp.exp(params["a_log"])
    b = u @ params["w_b"]
    c = u @ params["w_c"]
    a_bar = jnp.exp(delta[..., None] * a)
    bu = (delta * u)[..., None] * b[..., None, :]
    return a_bar, bu, c


def _chunk_scan(params, x0, u):
    a_bar, bu, c = _selection(params, u)
    x = linear_scan(a_bar, bu, axis=0, x0=x0)  # (chunk, H, N)
    return x[-1], jnp.einsum("lhn,ln->lh", x, c) + params["d"] * u


def _parallel(params, u, chunk):
    L, H = u.shape
    chunk = max(1, min(int(chunk), L))
    n = -(-L // chunk)
    # zero padding at the end is harmless: the layer is causal and the tail is cut off
    padded = jnp.concatenate([u, jnp.zeros((n * chunk - L, H), dtype=u.dtype)]).reshape(n, chunk, H)
    x0 = jnp.zeros(params["a_log"].shape, dtype=u.dtype)
    _, y = jax.lax.scan(lambda x, v: _chunk_scan(params, x, v), x0, padded)
    return y.reshape(n * chunk, H)[:L]


def apply(params: dict, u, chunk: int = 64):
    """Parallel mode: ``u (..., L, H) -> y (..., L, H)``.

    The associative scan runs within chunks of ``chunk`` steps, chained sequentially:
    memory ``chunk x H x N`` instead of ``L x H x N``, and cache-friendly on CPUs
    (``chunk >= L`` gives the single fully parallel scan).
    """
    return over_batch(lambda p, v: _parallel(p, v, chunk), 2)(params, u)


def init_state(params: dict, batch_shape: tuple = ()):
    """The zero state ``(*batch_shape, H, N)``."""
    return jnp.zeros((*batch_shape, *params["a_log"].shape), dtype=params["a_log"].dtype)


def step(params: dict, state, u_t):
    """One recurrent step: ``(state (..., H, N), u_t (..., H)) -> (state, y_t (..., H))``."""
    a_bar, bu, c = _selection(params, u_t)
    x = a_bar * state + bu
    return x, jnp.einsum("...hn,...n->...h", x, c) + params["d"] * u_t


def apply_recurrent(params: dict, u, state=None):
    """Recurrent mode over a whole sequence: ``u (..., L, H) -> y (..., L, H)``."""
    if state is None:
        state = init_state(params, u.shape[:-2])
    _, y = jax.lax.scan(lambda x, ut: step(params, x, ut), state, jnp.moveaxis(u, -2, 0))
    return jnp.moveaxis(y, 0, -2)
