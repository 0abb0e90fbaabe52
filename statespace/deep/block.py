r"""Stacked deep SSM blocks and a sequence model (encoder, blocks, decoder).

One block maps ``u (L, H)`` to ``u + mix(sigma(SSM(norm(u))))`` (pre-norm, the
default) or ``norm(u + mix(sigma(SSM(u))))`` (post-norm), where ``SSM`` is any of the
four layers (:mod:`~statespace.deep.s4d`, :mod:`~statespace.deep.s5`,
:mod:`~statespace.deep.lru`, :mod:`~statespace.deep.selective_scan`), ``sigma`` the
GELU, ``mix`` a position-wise linear map ``H -> H`` (it mixes channels, which the
per-channel layers do not), and ``norm`` a layer normalisation over channels. Every
piece is causal, so the stack is: ``y_t`` depends on ``u_{0:t}`` only.

:class:`SequenceModel` wraps ``n_layers`` blocks between a linear encoder
``d_in -> H`` and a linear decoder ``H -> d_out``. It offers the two modes of its
layers: ``apply`` (parallel / convolution) for training on whole sequences and
``step`` (one time step, carrying each layer's state) for online filtering and
for sampling, where the next input is only known after the current output.

Example::

    import jax
    import numpy as np
    from statespace.deep import SequenceModel
    u = np.random.default_rng(0).standard_normal((4, 50, 3))   # 4 sequences of 50 steps
    net = SequenceModel("s5", d_in=3, d_out=2, hidden=32, state=16, n_layers=2)
    params = net.init(jax.random.key(0))
    y = net.apply(params, u)                       # u: (..., L, 3) -> (..., L, 2)
    state = net.init_state(params)
    state, y0 = net.step(params, state, u[..., 0, :])
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..errors import ParameterError
from . import lru, s4d, s5, selective_scan
from ._common import lecun_normal

LAYERS = {"s4d": s4d, "s5": s5, "lru": lru, "selective_scan": selective_scan}
NORMS = ("pre", "post", "none")
_EPS = 1e-5


def _layer_module(name: str):
    try:
        return LAYERS[name]
    except KeyError:
        raise ParameterError(f"layer: expected one of {tuple(LAYERS)}, got {name!r}") from None


def layer_norm(params: dict, x):
    """Normalise ``x (..., H)`` over channels, then scale and shift."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + _EPS) * params["scale"] + params["bias"]


def block_init(key, layer: str, hidden: int, state: int, **init_options) -> dict:
    """Parameters of one block around a ``layer`` SSM."""
    k_ssm, k_mix = jax.random.split(key)
    fdt = jnp.result_type(float)
    return {
        "ssm": _layer_module(layer).init(k_ssm, hidden, state, **init_options),
        "norm": {"scale": jnp.ones(hidden, dtype=fdt), "bias": jnp.zeros(hidden, dtype=fdt)},
        "mix_w": lecun_normal(k_mix, (hidden, hidden), hidden),
        "mix_b": jnp.zeros(hidden, dtype=fdt),
    }


def _layer_kwargs(layer: str, dt, discretization: str) -> dict:
    kw = {}
    if layer in ("s4d", "s5"):
        kw["discretization"] = discretization
    if layer == "s5":
        kw["dt"] = dt
    return kw


def _around(params, u, norm, ssm_out_fn):
    z = layer_norm(params["norm"], u) if norm == "pre" else u
    z, extra = ssm_out_fn(z)
    z = jax.nn.gelu(z) @ params["mix_w"] + params["mix_b"]
    out = u + z
    if norm == "post":
        out = layer_norm(params["norm"], out)
    return out, extra


def block_apply(layer: str, params: dict, u, dt=None, norm: str = "pre", discretization: str = "zoh", recurrent=False):
    """One block over a sequence ``u (..., L, H)`` (parallel mode, or step by step if ``recurrent``)."""
    mod = _layer_module(layer)
    fn = mod.apply_recurrent if recurrent else mod.apply
    kw = _layer_kwargs(layer, dt, discretization)
    return _around(params, u, norm, lambda z: (fn(params["ssm"], z, **kw), None))[0]


def block_step(layer: str, params: dict, state, u_t, dt_t=None, norm: str = "pre", discretization: str = "zoh"):
    """One block, one time step: ``(state, u_t (..., H)) -> (state, y_t (..., H))``."""
    mod = _layer_module(layer)
    kw = _layer_kwargs(layer, None, discretization)
    if layer == "s5":
        kw = {"dt_t": dt_t, "discretization": discretization}

    def ssm(z):
        new_state, y = mod.step(params["ssm"], state, z, **kw)
        return y, new_state

    y, new_state = _around(params, u_t, norm, ssm)
    return new_state, y


def _init_jitted(model, key):
    # One compiled program instead of dozens of eagerly dispatched random ops.
    return jax.jit(type(model)._init, static_argnums=0)(model, key)


class SequenceModel(NamedTuple):
    """A causal deep SSM ``(..., L, d_in) -> (..., L, d_out)``: encoder, ``n_layers`` blocks, decoder.

    Hashable, so its methods can be jitted with the model as a static argument.

    Attributes:
        layer: ``"s4d"``, ``"s5"``, ``"lru"`` or ``"selective_scan"``.
        d_in, d_out: input and output widths.
        hidden: channels inside the blocks (``H``).
        state: state size of each layer (complex modes for S4D/S5/LRU, real for S6).
        n_layers: number of blocks.
        norm: ``"pre"``, ``"post"`` or ``"none"``.
        discretization: ``"zoh"`` or ``"bilinear"`` (S4D and S5 only).
        init_options: extra keyword arguments of the layer's ``init`` as a tuple of pairs,
            e.g. ``(("init", "lin"),)`` for S4D or ``(("r_min", 0.9),)`` for LRU.
    """

    layer: str
    d_in: int
    d_out: int
    hidden: int = 64
    state: int = 32
    n_layers: int = 2
    norm: str = "pre"
    discretization: str = "zoh"
    init_options: tuple = ()

    def _check(self):
        _layer_module(self.layer)
        if self.norm not in NORMS:
            raise ParameterError(f"norm: expected one of {NORMS}, got {self.norm!r}")
        for name in ("d_in", "d_out", "hidden", "state", "n_layers"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name}: expected a positive integer, got {getattr(self, name)}")

    def init(self, key) -> dict:
        """Fresh parameters (a pytree of arrays) from a ``jax.random`` key."""
        self._check()
        return _init_jitted(self, key)

    def _init(self, key) -> dict:
        keys = jax.random.split(key, self.n_layers + 2)
        fdt = jnp.result_type(float)
        opts = dict(self.init_options)
        return {
            "enc_w": lecun_normal(keys[0], (self.d_in, self.hidden), self.d_in),
            "enc_b": jnp.zeros(self.hidden, dtype=fdt),
            "blocks": [block_init(k, self.layer, self.hidden, self.state, **opts) for k in keys[1:-1]],
            "dec_w": lecun_normal(keys[-1], (self.hidden, self.d_out), self.hidden),
            "dec_b": jnp.zeros(self.d_out, dtype=fdt),
        }

    def apply(self, params: dict, u, dt=None, recurrent: bool = False):
        """Whole sequences ``u (..., L, d_in)`` (with S5, optional increments ``dt (..., L)``)."""
        h = u @ params["enc_w"] + params["enc_b"]
        for bp in params["blocks"]:
            h = block_apply(self.layer, bp, h, dt, self.norm, self.discretization, recurrent)
        return h @ params["dec_w"] + params["dec_b"]

    def features(self, params: dict, u, dt=None):
        """The last block's output ``(..., L, hidden)`` (what a head on top reads)."""
        h = u @ params["enc_w"] + params["enc_b"]
        for bp in params["blocks"]:
            h = block_apply(self.layer, bp, h, dt, self.norm, self.discretization)
        return h

    def init_state(self, params: dict, batch_shape: tuple = ()) -> list:
        """Zero states of every layer (a list, one per block)."""
        mod = _layer_module(self.layer)
        return [mod.init_state(bp["ssm"], batch_shape) for bp in params["blocks"]]

    def step(self, params: dict, state: list, u_t, dt_t=None):
        """One time step: ``(state, u_t (..., d_in)) -> (state, y_t (..., d_out))``."""
        h = u_t @ params["enc_w"] + params["enc_b"]
        new = []
        for bp, s in zip(params["blocks"], state):
            s, h = block_step(self.layer, bp, s, h, dt_t, self.norm, self.discretization)
            new.append(s)
        return new, h @ params["dec_w"] + params["dec_b"]
