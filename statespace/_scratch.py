"""Memory for the compiled kernels without fresh pages: scratch kept across the E-steps of one fit
(:func:`scratch`), and a call's several outputs as one allocation (:func:`one_block`).

An EM fit calls its E-step once per iteration on the same data, so the compiled
kernels ask for the same scratch arrays every time (a long sequence's filtered and
smoothed covariances: ``O(T d^2)`` numbers). Allocated afresh at each call, those
arrays come from memory that the C allocator handed back to the system after the
previous call (glibc returns large freed blocks; Dask's workers make it return even
small ones), and touching them again costs a page fault per 4 kB: at ``d = 16`` that
cost more than the arithmetic. Inside ``with kept(workspace):`` :func:`scratch`
returns the same array for the same key on every call; outside any, a fresh one.

:class:`~statespace.distributed.EStep` keeps one :class:`Workspace` for its fit (in
process) and each shard host one for its shards (on a worker), so every E-step gets
this without knowing where it runs.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np


class Workspace:
    """Arrays by key, reused while large enough. Not shared between threads that use the same key."""

    __slots__ = ("_arrays",)

    def __init__(self):
        self._arrays: dict = {}

    def array(self, key, size: int) -> np.ndarray:
        """A float64 array of ``size`` elements (uninitialised), the same memory as the last call with ``key`` when it fits."""
        a = self._arrays.get(key)
        if a is None or a.size < size:
            a = self._arrays[key] = np.empty(size)
        return a[:size]

    def clear(self) -> None:
        self._arrays.clear()


_CURRENT: contextvars.ContextVar[Workspace | None] = contextvars.ContextVar("statespace_scratch", default=None)


@contextlib.contextmanager
def kept(workspace: Workspace):
    """Make :func:`scratch` draw from ``workspace`` inside the ``with`` block."""
    token = _CURRENT.set(workspace)
    try:
        yield workspace
    finally:
        _CURRENT.reset(token)


def scratch(key, size: int) -> np.ndarray:
    """``size`` float64 numbers of scratch (uninitialised): kept under ``key`` in the active :func:`kept` workspace, else fresh."""
    ws = _CURRENT.get()
    return np.empty(size) if ws is None else ws.array(key, size)


def one_block(*shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Uninitialised float64 arrays of the given shapes, consecutive views of one allocation.

    For the outputs of a call that returns several large arrays (a fleet's filtered and predicted
    means). glibc gives a freed block back to the system once the free memory at the top of its
    heap exceeds twice the largest block freed so far: after a caller drops the result of a call
    that made two or three equal large arrays, that happens, and the next call's arrays are fresh
    pages, whose first touch cost more than the filter of a fleet of 2,000 x 100 steps (12.8 MB of
    means: 2.3 ms in two arrays, 0.22 ms in one block, writing them). One block stays below the
    threshold and is handed out again.
    """
    sizes = [int(np.prod(s)) for s in shapes]
    block = np.empty(sum(sizes))
    out, at = [], 0
    for shape, n in zip(shapes, sizes):
        out.append(block[at : at + n].reshape(shape))
        at += n
    return out
