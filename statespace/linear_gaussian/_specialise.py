"""Kalman loops specialised to fixed dimensions, generated once and cached on disk.

Numba compiles loops over runtime sizes generically. For the small dimensions
of most state-space models, knowing ``d`` and ``m`` at compile time is worth a
~3x speed-up, so :func:`loops` writes a copy of the template
:mod:`statespace.linear_gaussian._fast` with ``D = d`` and ``M = m`` into a
cache directory, imports it, and lets Numba's own ``cache=True`` keep the
machine code: the second process pays only the import.

The cache directory is ``$STATESPACE_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/statespace`` (``~/.cache/statespace``), else the system
temporary directory. File names carry a hash of the template and of the kernel helpers it
inlines, so editing either (or upgrading) never reuses stale code. If nothing is writable, or
the dimensions are large (where the generic loops are as fast), the generic
template itself is used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from . import _fast, kernels

#: Largest dimensions that get their own compiled loops.
MAX_SPECIALISED_DIM = 8
#: Shorter sequences use the generic loops (compiling a specialisation would cost more than it saves).
MIN_SPECIALISED_T = 500

_loaded: dict[tuple[int, int], object] = {}


def _template() -> tuple[str, str]:
    source = Path(_fast.__file__).read_text()
    # Numba's cache checks only the generated file's own timestamp, yet the loops inline
    # helpers from ``kernels``: hash both, so a change to either never reuses stale machine code.
    helpers = Path(kernels.__file__).read_text()
    return source, hashlib.sha256((source + helpers).encode()).hexdigest()[:12]


def _cache_dirs():
    env = os.environ.get("STATESPACE_CACHE_DIR")
    if env:
        yield Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    yield (Path(xdg) if xdg else Path.home() / ".cache") / "statespace"
    yield Path(tempfile.gettempdir()) / f"statespace-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _write(directory: Path, name: str, source: str) -> Path | None:
    path = directory / f"{name}.py"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != source:
            tmp = directory / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(source)
            os.replace(tmp, path)  # atomic: concurrent processes never see half a file
            _remove_stale(directory, name)
        return path
    except OSError:
        return None


def _remove_stale(directory: Path, name: str) -> None:
    """Delete copies of older templates for the same dimensions (and Numba's cache of them)."""
    prefix = name.rsplit("_", 1)[0] + "_"
    for old in list(directory.glob(prefix + "*.py")) + list((directory / "__pycache__").glob(prefix + "*")):
        if not old.name.startswith(name):
            try:
                old.unlink()
            except OSError:
                pass


def specialised_copy(source: str, digest: str, kind: str, d: int, m: int):
    """Import a copy of template ``source`` with ``D = d, M = m`` written to the first writable
    cache directory (named by ``kind``, the dimensions and ``digest``); ``None`` when the template
    has no ``D = 0 / M = 0`` marker or nothing is writable."""
    marker = "\nD = 0\nM = 0\n"
    if marker not in source:
        return None
    name = f"statespace_{kind}_d{d}_m{m}_{digest}"
    for directory in _cache_dirs():
        path = _write(directory, name, source.replace(marker, f"\nD = {d}\nM = {m}\n", 1))
        if path is None:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return None


def loops(d: int, m: int):
    """The module holding ``filter_loop`` and ``rts_loop`` for dimensions ``(d, m)``."""
    key = (int(d), int(m))
    if key in _loaded:
        return _loaded[key]
    module = None
    if max(key) <= MAX_SPECIALISED_DIM:
        source, digest = _template()
        module = specialised_copy(source, digest, "kalman", *key)
    _loaded[key] = module = module or _fast
    return module


def loops_for(d: int, m: int, T: int):
    """Specialised loops for long sequences, the generic template for short ones."""
    return loops(d, m) if T >= MIN_SPECIALISED_T else _fast
