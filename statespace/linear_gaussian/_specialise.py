"""The Kalman filter, RTS and E-step loops for a model's dimensions.

For the small dimensions of most state-space models, compiling the loops of the
template :mod:`statespace.linear_gaussian._fast` with ``d`` and ``m`` as compile-time
constants unrolls and vectorises their small loops: :func:`loops` imports such a copy, written once
and cached on disk by :func:`statespace._compile.specialised_copy`
(named by a hash of every library file the template reaches). Large dimensions, where the
generic loops are as fast, short sequences (where compiling a copy would cost more than it
saves) and an unwritable cache use the generic template itself.
"""

from __future__ import annotations

from pathlib import Path

from statespace._compile import specialised_copy

from . import _fast

#: Largest dimensions that get their own compiled loops.
MAX_SPECIALISED_DIM = 8
#: Shorter sequences use the generic loops (compiling a specialisation would cost more than it saves).
MIN_SPECIALISED_T = 500

_loaded: dict[tuple[int, int], object] = {}


def loops(d: int, m: int):
    """The module holding ``filter_loop`` and ``rts_loop`` for dimensions ``(d, m)``."""
    key = (int(d), int(m))
    if key in _loaded:
        return _loaded[key]
    module = None
    if max(key) <= MAX_SPECIALISED_DIM:
        module = specialised_copy(Path(_fast.__file__), "kalman", *key)
    _loaded[key] = module = module or _fast
    return module


def loops_for(d: int, m: int, T: int):
    """Specialised loops for long sequences, the generic template for short ones."""
    return loops(d, m) if T >= MIN_SPECIALISED_T else _fast
