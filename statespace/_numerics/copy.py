"""Copying one array into another of the same size, element by element, in compiled code.

An array assignment ``dst[a:b] = src`` (or ``dst[i] = row``) in a Numba function makes
Numba compile, once per process and per array type, its shape-mismatch error path, which
formats both shapes into a message: about 1.5 s of every first call on an empty cache (the
HMM fit's first call spent 4 of its 17 s there). :func:`copy_into` copies with a loop
and a fixed message, so kernels that copy arrays compile without it.
"""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True, nogil=True)
def copy_into(src, dst):
    """``dst[...] = src`` for arrays of the same size (any shapes and layouts), in C order."""
    if src.size != dst.size:
        raise ValueError("copy_into: src and dst differ in size")
    s = src.flat
    d = dst.flat
    for i in range(src.size):
        d[i] = s[i]
