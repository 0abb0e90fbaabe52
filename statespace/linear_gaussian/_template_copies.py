"""Copies of a template module with its dimensions fixed, written to a disk cache and imported.

Numba compiles loops over runtime sizes generically; knowing the state dimension
``D`` and the observation dimension ``M`` at compile time lets it unroll the small
fixed-size loops. A *template* is a module that reads ``D = 0`` and ``M = 0`` (the
generic code, which takes the sizes from the arrays); :func:`specialised_copy`
writes a copy with ``D = d`` and ``M = m`` into a cache directory and imports it,
and Numba's own ``cache=True`` keeps the machine code, so a second process pays only
the import.

The cache directory is ``$STATESPACE_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/statespace`` (``~/.cache/statespace``), else the system temporary
directory. Numba checks only the copy's own timestamp, yet the copy calls (and LLVM
inlines) functions of every library module it imports: the copy's file name carries
a hash of the template *and of every library file it reaches through its imports*
(:func:`reached_files`), so editing any of them, or upgrading, never reuses stale
machine code. If nothing is writable, :func:`specialised_copy` returns ``None`` and
the caller uses the template itself.

This module imports nothing from the library, so any module may use it.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

#: The line pair a template carries, replaced by the fixed dimensions in a copy.
MARKER = "\nD = 0\nM = 0\n"


def _module_file(root: Path, name: str) -> Path | None:
    """The file of the dotted module ``name`` under ``root`` (a package's ``__init__.py``)."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def reached_files(template: Path) -> list[Path]:
    """``template`` and every file of its top-level package that it imports, directly or not.

    Imports are read with :mod:`ast` (module level and inside functions, relative
    ones resolved); ``from p import x`` reaches the module ``p.x`` when it is one,
    else ``p``'s ``__init__``. Modules outside the template's own top-level package
    (NumPy, Numba) are versioned by their installers and not followed.
    """
    template = Path(template).resolve()
    root = next(p for p in template.parents if not (p / "__init__.py").is_file())
    top = template.relative_to(root).parts[0]
    seen, todo = {template}, [template]
    while todo:
        path = todo.pop()
        rel = path.relative_to(root).with_suffix("").parts
        package = list(rel[:-1])  # a module's package; for an ``__init__``, the package itself
        names = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                names += [f"{source}.{a.name}" if _module_file(root, f"{source}.{a.name}") else source
                          for a in node.names]
        for name in names:
            found = _module_file(root, name) if name.split(".")[0] == top else None
            if found is not None and found.resolve() not in seen:
                seen.add(found.resolve())
                todo.append(found.resolve())
    return sorted(seen)


def template_digest(template: Path) -> str:
    """Hash of the contents of :func:`reached_files` (names relative to the template's directory)."""
    h = hashlib.sha256()
    for path in reached_files(template):
        h.update(os.path.relpath(path, Path(template).resolve().parent).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


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


def specialised_copy(template: Path, kind: str, d: int, m: int):
    """Import a copy of the module file ``template`` with ``D = d, M = m``, written to the first
    writable cache directory under a name made of ``kind``, the dimensions and
    :func:`template_digest`; ``None`` when the template has no ``D = 0 / M = 0`` marker or
    nothing is writable."""
    source = Path(template).read_text()
    if MARKER not in source:
        return None
    name = f"statespace_{kind}_d{d}_m{m}_{template_digest(template)}"
    for directory in _cache_dirs():
        path = _write(directory, name, source.replace(MARKER, f"\nD = {d}\nM = {m}\n", 1))
        if path is None:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return None
