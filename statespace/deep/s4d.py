r"""S4D: a diagonal complex state-space layer (Gu, Gupta, Goel & Ré, 2022).

Each of the ``H`` channels is an independent single-input single-output SSM with
``P`` complex modes (``N = 2P`` real state dimensions, conjugate pairs implicit):

.. math::

    x'(t) = A x(t) + B u(t), \qquad y(t) = 2\,\mathrm{Re}\!\left(C x(t)\right) + D u(t),
    \qquad A = \mathrm{diag}(a_1..a_P),\ \mathrm{Re}\,a_p < 0.

With a learned step ``Delta = exp(log_dt)`` per channel it is discretised by

* zero-order hold: :math:`\bar A = e^{\Delta A}`, :math:`\bar B = (\bar A - 1) A^{-1} B`;
* bilinear: :math:`\bar A = (1 + \Delta A/2)/(1 - \Delta A/2)`, :math:`\bar B = \Delta B/(1 - \Delta A/2)`.

The layer is the causal convolution ``y = K * u + D u`` with the kernel

.. math::  K_\ell = 2\,\mathrm{Re} \sum_p C_p \bar B_p \bar A_p^{\,\ell}, \qquad \ell = 0..L-1,

computed from a Vandermonde product and applied by FFT (``O(L log L)``, the
*convolution mode*), or the recurrence ``x_t = \bar A x_{t-1} + \bar B u_t``
(the *recurrent mode*, one step at a time). Initialisations of ``A``:

* ``"lin"`` (S4D-Lin): :math:`a_n = -\tfrac12 + i\pi n`;
* ``"inv"`` (S4D-Inv): :math:`a_n = -\tfrac12 + i \tfrac{N}{\pi}\left(\tfrac{N}{2n+1} - 1\right)`;
* ``"legs"`` (S4D-LegS): the eigenvalues (positive imaginary part) of the normal part
  of HiPPO-LegS of size ``N``, with ``B`` the HiPPO ``B`` in that eigenbasis.

``B`` starts at 1 for Lin/Inv, ``C`` is standard complex normal, ``log_dt`` is
uniform on ``[log dt_min, log dt_max]``. The real part of ``A`` is kept negative by
parameterising ``log(-Re a)``.

Example::

    import jax
    import numpy as np
    from statespace.deep import s4d
    u = np.random.default_rng(0).standard_normal((50, 16))
    params = s4d.init(jax.random.key(0), hidden=16, state=32, init="legs")
    y = s4d.apply(params, u)                # u: (..., L, 16), convolution mode
    y2 = s4d.apply_recurrent(params, u)     # same numbers, step by step
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParameterError
from ._common import hippo_normal_eig, log_uniform, over_batch

INITS = ("lin", "inv", "legs")
DISCRETIZATIONS = ("zoh", "bilinear")


def init(key, hidden: int, state: int, init: str = "legs", dt_min: float = 1e-3, dt_max: float = 1e-1) -> dict:
    """Parameters of an S4D layer with ``hidden`` channels and ``state`` complex modes per channel."""
    if init not in INITS:
        raise ParameterError(f"init: expected one of {INITS}, got {init!r}")
    if hidden < 1 or state < 1:
        raise ParameterError(f"hidden, state: expected positive sizes, got {hidden}, {state}")
    n = np.arange(state)
    N = 2 * state
    b = np.ones(state, dtype=complex)
    if init == "lin":
        a = -0.5 + 1j * np.pi * n
    elif init == "inv":
        a = -0.5 + 1j * (N / np.pi) * (N / (2 * n + 1) - 1)
    else:
        lam, V, B = hippo_normal_eig(N)
        keep = np.argsort(-lam.imag)[:state]  # one of each conjugate pair, fastest first
        a = lam[keep]
        b = (V.conj().T @ B)[keep]
    k_c, k_dt = jax.random.split(key)
    c = jax.random.normal(k_c, (2, hidden, state), dtype=jnp.result_type(float)) * np.sqrt(0.5)

    def tile(v):
        return jnp.asarray(np.broadcast_to(v, (hidden, state)).copy(), dtype=jnp.result_type(float))

    return {
        "log_neg_a_re": tile(np.log(-a.real)),
        "a_im": tile(a.imag),
        "b_re": tile(b.real),
        "b_im": tile(b.imag),
        "c_re": c[0],
        "c_im": c[1],
        "d": jnp.ones(hidden, dtype=jnp.result_type(float)),
        "log_dt": log_uniform(k_dt, (hidden,), dt_min, dt_max),
    }


def discretize(params: dict, discretization: str = "zoh"):
    """``(A_bar, B_bar, C)``, each ``(H, P)`` complex."""
    a = -jnp.exp(params["log_neg_a_re"]) + 1j * params["a_im"]
    b = params["b_re"] + 1j * params["b_im"]
    c = params["c_re"] + 1j * params["c_im"]
    dta = jnp.exp(params["log_dt"])[:, None] * a
    if discretization == "zoh":
        a_bar = jnp.exp(dta)
        b_bar = (a_bar - 1.0) / a * b
    elif discretization == "bilinear":
        den = 1.0 - dta / 2.0
        a_bar = (1.0 + dta / 2.0) / den
        b_bar = jnp.exp(params["log_dt"])[:, None] * b / den
    else:
        raise ParameterError(f"discretization: expected one of {DISCRETIZATIONS}, got {discretization!r}")
    return a_bar, b_bar, c


def kernel(params: dict, length: int, discretization: str = "zoh"):
    """The convolution kernel ``K (H, length)``: ``K[h, l] = 2 Re sum_p C B_bar A_bar^l``."""
    a_bar, b_bar, c = discretize(params, discretization)
    log_a = jnp.log(a_bar)
    # l = q M + r: A^l = (A^M)^q A^r turns the (H, P, L) Vandermonde product into a batched
    # (Q x P) @ (P x M) matrix product with only H P (Q + M) complex exponentials.
    m = max(1, int(np.ceil(np.sqrt(length))))
    q = -(-length // m)
    low = jnp.exp(log_a[..., None] * jnp.arange(m))  # (H, P, M)
    high = jnp.exp(log_a[..., None] * (m * jnp.arange(q))) * (c * b_bar)[..., None]  # (H, P, Q)
    k = jnp.einsum("hpq,hpr->hqr", high, low).reshape(a_bar.shape[0], q * m)[:, :length]
    return 2.0 * jnp.real(k)


def _conv(params, u, discretization):
    L = u.shape[0]
    k = kernel(params, L, discretization)
    n = 2 * L  # zero padding makes the circular FFT convolution causal
    y = jnp.fft.irfft(jnp.fft.rfft(u.T, n=n) * jnp.fft.rfft(k, n=n), n=n)[:, :L].T
    return y + u * params["d"]


def apply(params: dict, u, discretization: str = "zoh"):
    """Convolution mode: ``u (..., L, H) -> y (..., L, H)``."""
    return over_batch(lambda p, v: _conv(p, v, discretization), 2)(params, u)


def init_state(params: dict, batch_shape: tuple = ()):
    """The zero state ``(*batch_shape, H, P)`` complex."""
    H, P = params["a_im"].shape
    dtype = jnp.result_type(params["a_im"].dtype, jnp.complex64)
    return jnp.zeros((*batch_shape, H, P), dtype=dtype)


def _step(disc, d, x, u_t):
    a_bar, b_bar, c = disc
    x = a_bar * x + b_bar * u_t[..., None]
    y = 2.0 * jnp.real(jnp.sum(c * x, axis=-1)) + d * u_t
    return x, y


def step(params: dict, state, u_t, discretization: str = "zoh"):
    """One recurrent step: ``(state (..., H, P), u_t (..., H)) -> (state, y_t (..., H))``."""
    return _step(discretize(params, discretization), params["d"], state, u_t)


def apply_recurrent(params: dict, u, discretization: str = "zoh", state=None):
    """Recurrent mode over a whole sequence: ``u (..., L, H) -> y (..., L, H)`` (discretises once)."""
    disc = discretize(params, discretization)
    if state is None:
        state = init_state(params, u.shape[:-2])
    u_time_first = jnp.moveaxis(u, -2, 0)
    _, y = jax.lax.scan(lambda x, ut: _step(disc, params["d"], x, ut), state, u_time_first)
    return jnp.moveaxis(y, 0, -2)
