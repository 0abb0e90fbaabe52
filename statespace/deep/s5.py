r"""S5: a multi-input multi-output diagonal state-space layer (Smith, Warrington & Linderman, 2023).

One SSM with ``P`` complex modes reads all ``H`` channels at once:

.. math::

    x'(t) = \Lambda x(t) + \tilde B u(t), \qquad y(t) = \mathrm{Re}\!\left(\tilde C x(t)\right) + D \odot u(t),

with :math:`\Lambda = \mathrm{diag}(\lambda_1..\lambda_P)`, :math:`\tilde B \in \mathbb C^{P\times H}`,
:math:`\tilde C \in \mathbb C^{H\times P}`. Each mode has a learned step
``Delta_p = exp(log_step_p)``; an irregularly sampled sequence passes the time
increments ``dt_t`` and step ``t`` uses ``Delta_p dt_t`` (zero-order hold handles
any increment exactly):

.. math::

    \bar\Lambda_t = e^{\Lambda \Delta dt_t}, \qquad
    \bar B_t = (\bar\Lambda_t - 1)\Lambda^{-1}\tilde B \quad\text{(ZOH)}, \qquad
    x_t = \bar\Lambda_t x_{t-1} + \bar B_t u_t .

The parallel mode runs this recurrence with an associative scan (depth
``log2 L``); the recurrent mode runs it step by step. Initialisation (HiPPO-N):
``Lambda`` are the eigenvalues of the normal part of HiPPO-LegS, taken in ``blocks``
diagonal blocks of size ``P / blocks`` as in the paper; ``B~ = V^* B`` and
``C~ = C V`` with ``B, C`` LeCun-normal and ``V`` the (block-diagonal) eigenvectors.

Example::

    import jax
    import numpy as np
    from statespace.deep import s5
    rng = np.random.default_rng(0)
    u, dt = rng.standard_normal((50, 16)), rng.uniform(0.5, 2.0, 50)
    params = s5.init(jax.random.key(0), hidden=16, state=32, blocks=4)
    y = s5.apply(params, u, dt=dt)   # u: (..., L, 16), dt: (..., L) positive increments
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ..errors import ParameterError
from ._common import hippo_normal_eig, lecun_normal, linear_scan, log_uniform, over_batch

DISCRETIZATIONS = ("zoh", "bilinear")


def init(key, hidden: int, state: int, blocks: int = 1, dt_min: float = 1e-3, dt_max: float = 1e-1) -> dict:
    """Parameters of an S5 layer: ``hidden`` channels, ``state`` complex modes in ``blocks`` HiPPO-N blocks."""
    if hidden < 1 or state < 1:
        raise ParameterError(f"hidden, state: expected positive sizes, got {hidden}, {state}")
    if blocks < 1 or state % blocks:
        raise ParameterError(f"blocks: expected a divisor of state={state}, got {blocks}")
    lam, V, _ = hippo_normal_eig(state // blocks)
    lam = np.tile(lam, blocks)
    V = scipy.linalg.block_diag(*([V] * blocks))
    k_b, k_c, k_dt = jax.random.split(key, 3)
    fdt = jnp.result_type(float)
    cdt = jnp.result_type(fdt, jnp.complex64)
    b = lecun_normal(k_b, (state, hidden), hidden)
    c = lecun_normal(k_c, (hidden, state), state)
    b_t = jnp.asarray(V.conj().T, dtype=cdt) @ b.astype(cdt)
    c_t = c.astype(cdt) @ jnp.asarray(V, dtype=cdt)

    def f(v):
        return jnp.asarray(v, dtype=fdt)

    return {
        "log_neg_lam_re": f(np.log(-lam.real)),
        "lam_im": f(lam.imag),
        "b_re": jnp.real(b_t),
        "b_im": jnp.imag(b_t),
        "c_re": jnp.real(c_t),
        "c_im": jnp.imag(c_t),
        "d": jax.random.normal(jax.random.fold_in(key, 7), (hidden,), dtype=jnp.result_type(float)),
        "log_step": log_uniform(k_dt, (state,), dt_min, dt_max),
    }


def _continuous(params):
    lam = -jnp.exp(params["log_neg_lam_re"]) + 1j * params["lam_im"]
    b = params["b_re"] + 1j * params["b_im"]
    c = params["c_re"] + 1j * params["c_im"]
    return lam, b, c


def _discrete_coeffs(lam, step, dt, discretization):
    """``(Lambda_bar, scale)`` of shape ``dt.shape + (P,)`` with ``B_bar = scale * B~`` row-wise."""
    delta = step * dt[..., None]
    if discretization == "zoh":
        lam_bar = jnp.exp(lam * delta)
        return lam_bar, (lam_bar - 1.0) / lam
    if discretization == "bilinear":
        den = 1.0 - lam * delta / 2.0
        return (1.0 + lam * delta / 2.0) / den, delta / den
    raise ParameterError(f"discretization: expected one of {DISCRETIZATIONS}, got {discretization!r}")


def _parallel(params, u, dt, discretization):
    lam, b, c = _continuous(params)
    lam_bar, scale = _discrete_coeffs(lam, jnp.exp(params["log_step"]), dt, discretization)
    bu = scale * (u.astype(b.dtype) @ b.T)  # (L, P)
    x = linear_scan(lam_bar, bu, axis=0)
    return jnp.real(x @ c.T) + params["d"] * u


def _increments(u, dt):
    if dt is None:
        return jnp.ones(u.shape[:-1], dtype=u.dtype)
    return jnp.broadcast_to(jnp.asarray(dt, dtype=u.dtype), u.shape[:-1])


def apply(params: dict, u, dt=None, discretization: str = "zoh"):
    """Parallel mode: ``u (..., L, H)`` and optional increments ``dt (..., L)`` -> ``y (..., L, H)``."""
    return over_batch(lambda p, v, d: _parallel(p, v, d, discretization), 2)(params, u, _increments(u, dt))


def init_state(params: dict, batch_shape: tuple = ()):
    """The zero state ``(*batch_shape, P)`` complex."""
    dtype = jnp.result_type(params["lam_im"].dtype, jnp.complex64)
    return jnp.zeros((*batch_shape, params["lam_im"].shape[0]), dtype=dtype)


def _step(cont, step_size, d, discretization, x, u_t, dt_t):
    lam, b, c = cont
    lam_bar, scale = _discrete_coeffs(lam, step_size, dt_t, discretization)
    x = lam_bar * x + scale * (u_t.astype(b.dtype) @ b.T)
    return x, jnp.real(x @ c.T) + d * u_t


def step(params: dict, state, u_t, dt_t=None, discretization: str = "zoh"):
    """One recurrent step: ``(state (..., P), u_t (..., H), dt_t (...)) -> (state, y_t (..., H))``."""
    dt_t = _increments(u_t, dt_t)
    return _step(_continuous(params), jnp.exp(params["log_step"]), params["d"], discretization, state, u_t, dt_t)


def apply_recurrent(params: dict, u, dt=None, discretization: str = "zoh", state=None):
    """Recurrent mode over a whole sequence (same arguments and result as :func:`apply`)."""
    cont = _continuous(params)
    step_size = jnp.exp(params["log_step"])
    if state is None:
        state = init_state(params, u.shape[:-2])
    xs = (jnp.moveaxis(u, -2, 0), jnp.moveaxis(_increments(u, dt), -1, 0))

    def body(x, inp):
        return _step(cont, step_size, params["d"], discretization, x, *inp)

    _, y = jax.lax.scan(body, state, xs)
    return jnp.moveaxis(y, 0, -2)
