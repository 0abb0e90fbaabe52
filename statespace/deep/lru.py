r"""LRU: the linear recurrent unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De, 2023).

A diagonal complex recurrence learned directly in discrete time:

.. math::

    x_t = \lambda \odot x_{t-1} + \gamma \odot (B u_t), \qquad y_t = \mathrm{Re}(C x_t) + D \odot u_t,

with the exponential parameterisation :math:`\lambda_p = \exp(-e^{\nu_p} + i e^{\theta_p})`
(so :math:`|\lambda_p| < 1` always: stable by construction) and the normalisation
:math:`\gamma_p = \sqrt{1 - |\lambda_p|^2}`, stored as ``log gamma`` and learned,
which keeps the state's variance at the input's when ``|lambda|`` approaches 1.

*Ring initialisation*: :math:`\lambda` uniform on the ring
``r_min <= |lambda| <= r_max`` with phase uniform on ``[0, max_phase]``
(``|lambda|^2`` uniform between ``r_min^2`` and ``r_max^2``).
``B`` and ``C`` are complex Gaussian with variances ``1/(2H)`` and ``1/P``.

Example::

    import jax
    import numpy as np
    from statespace.deep import lru
    u = np.random.default_rng(0).standard_normal((50, 16))
    params = lru.init(jax.random.key(0), hidden=16, state=32, r_min=0.9, r_max=0.999)
    y = lru.apply(params, u)            # parallel (associative scan)
    y2 = lru.apply_recurrent(params, u) # step by step
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParameterError
from ._common import linear_scan, over_batch


def init(key, hidden: int, state: int, r_min: float = 0.0, r_max: float = 0.999, max_phase: float = 2 * np.pi) -> dict:
    """Parameters of an LRU layer with ``hidden`` channels and ``state`` complex modes (ring init)."""
    if hidden < 1 or state < 1:
        raise ParameterError(f"hidden, state: expected positive sizes, got {hidden}, {state}")
    if not 0.0 <= r_min < r_max < 1.0:
        raise ParameterError(f"r_min, r_max: expected 0 <= r_min < r_max < 1, got {r_min}, {r_max}")
    fdt = jnp.result_type(float)
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    u1 = jax.random.uniform(k1, (state,), dtype=fdt)
    u2 = jax.random.uniform(k2, (state,), dtype=fdt)
    nu_log = jnp.log(-0.5 * jnp.log(u1 * (r_max**2 - r_min**2) + r_min**2))
    theta_log = jnp.log(max_phase * u2)
    mod = jnp.exp(-jnp.exp(nu_log))
    b = jax.random.normal(k3, (2, state, hidden), dtype=fdt) / np.sqrt(2 * hidden)
    c = jax.random.normal(k4, (2, hidden, state), dtype=fdt) / np.sqrt(state)
    return {
        "nu_log": nu_log,
        "theta_log": theta_log,
        "gamma_log": jnp.log(jnp.sqrt(1.0 - mod**2)),
        "b_re": b[0],
        "b_im": b[1],
        "c_re": c[0],
        "c_im": c[1],
        "d": jax.random.normal(k5, (hidden,), dtype=fdt),
    }


def eigenvalues(params: dict):
    """``lambda (P,)`` complex, all of modulus below one."""
    return jnp.exp(-jnp.exp(params["nu_log"]) + 1j * jnp.exp(params["theta_log"]))


def _coeffs(params):
    lam = eigenvalues(params)
    b = (params["b_re"] + 1j * params["b_im"]) * jnp.exp(params["gamma_log"])[:, None]
    c = params["c_re"] + 1j * params["c_im"]
    return lam, b, c


def _parallel(params, u):
    lam, b, c = _coeffs(params)
    x = linear_scan(lam, u.astype(b.dtype) @ b.T, axis=0)
    return jnp.real(x @ c.T) + params["d"] * u


def apply(params: dict, u):
    """Parallel mode: ``u (..., L, H) -> y (..., L, H)``."""
    return over_batch(_parallel, 2)(params, u)


def init_state(params: dict, batch_shape: tuple = ()):
    """The zero state ``(*batch_shape, P)`` complex."""
    dtype = jnp.result_type(params["nu_log"].dtype, jnp.complex64)
    return jnp.zeros((*batch_shape, params["nu_log"].shape[0]), dtype=dtype)


def _step(coeffs, d, x, u_t):
    lam, b, c = coeffs
    x = lam * x + u_t.astype(b.dtype) @ b.T
    return x, jnp.real(x @ c.T) + d * u_t


def step(params: dict, state, u_t):
    """One recurrent step: ``(state (..., P), u_t (..., H)) -> (state, y_t (..., H))``."""
    return _step(_coeffs(params), params["d"], state, u_t)


def apply_recurrent(params: dict, u, state=None):
    """Recurrent mode over a whole sequence: ``u (..., L, H) -> y (..., L, H)``."""
    coeffs = _coeffs(params)
    if state is None:
        state = init_state(params, u.shape[:-2])
    _, y = jax.lax.scan(lambda x, ut: _step(coeffs, params["d"], x, ut), state, jnp.moveaxis(u, -2, 0))
    return jnp.moveaxis(y, 0, -2)
