r"""Deep state-space sequence layers in JAX (imports jax: load it explicitly, ``import statespace.deep``).

Four causal layers, each a pair of pure functions ``init(key, hidden, state, ...) -> params``
and ``apply(params, u) -> y`` on ``u`` of shape ``(..., L, H)``, plus a recurrent face
``init_state`` / ``step`` / ``apply_recurrent`` that gives the same numbers one step at a time:

* :mod:`.s4d` -- diagonal complex SSM per channel, FFT convolution (Gu et al. 2022);
* :mod:`.s5` -- MIMO diagonal SSM, associative scan, irregular time steps (Smith et al. 2023);
* :mod:`.lru` -- linear recurrent unit with ring initialisation (Orvieto et al. 2023);
* :mod:`.selective_scan` -- Mamba's input-dependent S6 (Gu & Dao 2023);

and :class:`SequenceModel`, a stack of blocks (layer, GELU, channel mix, residual,
layer norm) between an encoder and a decoder. Parameters are plain pytrees of
real arrays, so any ``optax`` optimiser trains them (:func:`fit_sequence_model`
is a minimal loop). Precision follows JAX's default (float32) unless
``jax_enable_x64`` is on.
"""

from . import block, lru, s4d, s5, selective_scan
from .block import LAYERS, SequenceModel
from .training import fit_sequence_model
