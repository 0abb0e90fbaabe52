"""One way to compile for a given model or size and keep the machine code on disk.

Numba's ``cache=True`` keeps a function's machine code beside its source file, keyed
by the argument types and by *that file's* timestamp. Two kinds of compiled loop
escape it:

* loops that take a model's kernels as arguments (the particle filters, PaRIS,
  conditional SMC): a compiled function passed as an argument is a pointer to a
  Python object, which Numba refuses to cache, so every new process compiles them again;
* loops that are worth compiling with sizes as constants (the Kalman loops for
  ``d, m <= 8``): one source file cannot hold one copy per size.

Both are solved the same way here: *a small module is generated into a cache
directory* and imported, and Numba caches it like any other file.

* :func:`compiled` (models): ``compiled(template, kernels=..., proposal=...)`` writes a
  module whose one ``@njit(cache=True)`` function calls ``template`` with the given
  functions as module constants, and returns it. The functions travel as a
  :class:`KernelBundle`, a constant of size zero whose Numba type names the functions,
  so the calls are direct (and inlined by LLVM) and nothing process-specific is in the
  machine code.
* :func:`specialised_copy` (sizes): a copy of a template module with its ``D = 0`` /
  ``M = 0`` marker replaced by the dimensions.

*Staleness.* Numba checks only the generated file's timestamp, yet its code calls and
inlines functions of other files. The generated file's name therefore carries a hash of
every file it reaches (:func:`reached_files`: the template's module and each kernel's
module, and every module of their packages and of this library that they import), of the
Numba and Python versions: editing any of them, or upgrading, makes a new name and a
fresh compile; the older copy is deleted.

*What is not cached* (and runs correctly, compiled once per process, by calling the
template itself): kernels that cannot be imported by name from a module file (defined in
``__main__``, a notebook, or inside a function), parameter types defined there, and an
environment where no cache directory is writable. Loading an on-disk index that records
such a type would fail in a later process, which is why they never reach one.

JAX's programs (the deep layers) are kept by JAX's own persistent compilation cache, which
:func:`use_jax_cache` points into the same directory unless the user configured one.

The cache directory is ``$STATESPACE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/statespace``
(``~/.cache/statespace``), else the system temporary directory. Numba's own files go
beside the generated ones unless ``NUMBA_CACHE_DIR`` says otherwise.

This module imports nothing from the library, so any module may use it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import json
import operator
import os
import sys
import tempfile
import threading
from pathlib import Path

import numba
from numba.core import types
from numba.core.dispatcher import Dispatcher

#: The line pair a size template carries, replaced by the fixed dimensions in a copy.
MARKER = "\nD = 0\nM = 0\n"

#: The library's own top-level packages: imports into them are followed by :func:`reached_files`.
LIBRARY_PACKAGES = ("statespace", "hmm", "smc")
LIBRARY_ROOT = Path(__file__).resolve().parents[1]
#: How the name of every generated module begins.
GENERATED_PREFIX = "statespace_"


# --- what a generated file depends on ----------------------------------------------
def _module_file(roots, name: str) -> Path | None:
    """The file of the dotted module ``name`` under one of ``roots`` (a package's ``__init__.py``)."""
    for root in roots:
        base = root.joinpath(*name.split("."))
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path
    return None


def _root_of(path: Path) -> Path:
    """The directory on ``sys.path`` that holds ``path``'s top-level package (or the file itself)."""
    return next(p for p in path.parents if not (p / "__init__.py").is_file())


def reached_files(*seeds: Path) -> list[Path]:
    """``seeds`` and every file they import, directly or not, within their own top-level
    packages and the library's (:data:`LIBRARY_PACKAGES`).

    Imports are read with :mod:`ast` (module level and inside functions, relative ones
    resolved); ``from p import x`` reaches the module ``p.x`` when it is one, else ``p``'s
    ``__init__``. Modules outside (NumPy, Numba) are versioned by their installers and not followed.
    """
    seeds = [Path(s).resolve() for s in seeds]
    roots = list(dict.fromkeys([_root_of(s) for s in seeds] + [LIBRARY_ROOT]))  # a copied package wins
    tops = set(LIBRARY_PACKAGES) | {s.relative_to(_root_of(s)).parts[0].removesuffix(".py") for s in seeds}
    seen, todo = set(seeds), list(seeds)
    while todo:
        path = todo.pop()
        rel = path.relative_to(_root_of(path)).with_suffix("").parts
        package = list(rel[:-1])  # a module's package; for an ``__init__``, the package itself
        names = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                names += [
                    f"{source}.{a.name}" if _module_file(roots, f"{source}.{a.name}") else source for a in node.names
                ]
        for name in names:
            found = _module_file(roots, name) if name.split(".")[0] in tops else None
            if found is not None and found.resolve() not in seen:
                seen.add(found.resolve())
                todo.append(found.resolve())
    return sorted(seen)


def _stamp(path: Path) -> list:
    st = path.stat()
    return [str(path), st.st_mtime_ns, st.st_size]


def _digest(seeds, extra: str = "") -> str:
    """Hash of the versions, ``extra`` and the contents of :func:`reached_files` of ``seeds``.

    Parsing every reached file costs a few tenths of a second, so the result is kept in the
    cache directory with the timestamp and size of each reached file, and reused while none
    of them has changed (the set of reached files is a function of their contents).
    """
    head = f"numba {numba.__version__} python {sys.version_info[:2]}\0{extra}\0"
    key = hashlib.sha256((head + "\0".join(str(Path(s).resolve()) for s in seeds)).encode()).hexdigest()[:16]
    record = _read_record(key)
    if record is not None:
        try:
            if all(_stamp(Path(f[0])) == f for f in record["files"]):
                return record["digest"]
        except (OSError, KeyError, TypeError, IndexError):
            pass
    files = reached_files(*seeds)
    h = hashlib.sha256(head.encode())
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest = h.hexdigest()[:12]
    _write_record(key, {"files": [_stamp(f) for f in files], "digest": digest})
    return digest


def _read_record(key: str):
    for directory in _cache_dirs():
        try:
            return json.loads((directory / "digests" / f"{key}.json").read_text())
        except (OSError, ValueError):
            continue
    return None


def _write_record(key: str, record: dict) -> None:
    for directory in _cache_dirs():
        folder = directory / "digests"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(record))
            os.replace(tmp, folder / f"{key}.json")
            return
        except OSError:
            continue


def template_digest(template: Path) -> str:
    """Hash of the contents of :func:`reached_files` of ``template`` and of the versions."""
    return _digest([template])


# --- the library's own cached kernels ------------------------------------------------
# Numba keys a cached function by a hash of its own file alone, yet a kernel's machine code holds
# every function it inlines or links from other files (``inline="always"`` helpers, shared small
# kernels such as the Cholesky loop): an edit of one of those, or an upgrade that changes their
# file and not the kernel's, would leave the kernel's cached copy running the old code. Every
# cached function of the library is therefore keyed by its file *and* a hash of every source file
# of the library's packages (:func:`library_stamp`): any change recompiles them all, as an upgrade
# that changes most files does anyway. Numba's locator classes are extended (its private
# ``CacheImpl._locator_classes``; Numba's version is bounded in ``pyproject.toml``); where they are
# missing the functions keep Numba's own key. Functions outside the library (a user's, the
# generated modules above, which hash what they reach themselves) keep Numba's.


@functools.cache
def _library_package(py_file: str) -> Path | None:
    """The top-level package folder of ``py_file`` when it is one of :data:`LIBRARY_PACKAGES`, else None."""
    try:
        path = Path(py_file).resolve()
        root = _root_of(path)
        top = path.relative_to(root).parts[0]
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return root / top if top in LIBRARY_PACKAGES and (root / top / "__init__.py").is_file() else None


@functools.cache
def _packages_digest(folders: tuple[Path, ...]) -> str:
    h = hashlib.sha256(f"numba {numba.__version__} python {sys.version_info[:2]}".encode())
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            h.update(str(path.relative_to(folder.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def library_stamp(py_file) -> str | None:
    """The part of a cached kernel's key beyond Numba's (the hash of its own file): a hash of every
    ``.py`` file of the library's packages (those beside ``py_file``'s package, and its own),
    read once per process (1.2 MB, about 5 ms). None for a file outside them."""
    package = _library_package(str(py_file))
    return None if package is None else _package_stamp(package)


@functools.cache
def _package_stamp(package: Path) -> str:
    """:func:`library_stamp` of the files of ``package``: looked up once per package and process (Numba asks
    at every load and save of a cached function)."""
    library = [LIBRARY_ROOT / name for name in LIBRARY_PACKAGES if (LIBRARY_ROOT / name / "__init__.py").is_file()]
    return _packages_digest(tuple(sorted({package, *library})))  # one order: one key for every file of the library


class _LibraryStamp:
    """Mixin for Numba's cache locators: a library file's functions keyed by :func:`library_stamp` too."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if _library_package(str(py_file)) is None:
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return (super().get_source_stamp(), library_stamp(self._py_file))


def install_library_stamps() -> bool:
    """Key the library's cached functions by :func:`library_stamp` from now on (idempotent); returns
    whether Numba's locator classes were found. Run when this module is imported, which
    ``statespace/__init__.py`` does before anything that defines a kernel."""
    try:
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
        bases = [getattr(caching, n, None) or getattr(caching, "_" + n) for n in ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")]  # fmt: skip
        classes = impl._locator_classes
    except (ImportError, AttributeError):
        return False
    if not any(getattr(c, "_library_stamp", False) for c in classes):
        ours = [type(f"Library{b.__name__.lstrip('_')}", (_LibraryStamp, b), {"_library_stamp": True}) for b in bases]
        classes[:0] = ours  # in place: Numba's cache implementations share the list
    return True


install_library_stamps()  # on import: ``statespace/__init__.py`` imports this module before any kernel


# --- the cache directory -------------------------------------------------------------
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
    """Delete the older versions of ``name`` (same name up to the last ``_<digest>``) and Numba's cache of them."""
    prefix = name.rsplit("_", 1)[0] + "_"
    for old in list(directory.glob(prefix + "*.py")) + list((directory / "__pycache__").glob(prefix + "*")):
        if not old.name.startswith(name) and old.name[len(prefix) :].split(".")[0].isalnum():
            try:
                old.unlink()
            except OSError:
                pass


def _import_generated(name: str, source: str):
    """Write ``source`` as module ``name`` into the first writable cache directory and import it; ``None`` if none is."""
    if name in sys.modules:
        return sys.modules[name]
    for directory in _cache_dirs():
        path = _write(directory, name, source)
        if path is None:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    return None


# --- JAX's programs ------------------------------------------------------------------
#: Names the value of ``JAX_COMPILATION_CACHE_DIR`` that :func:`use_jax_cache` set, so that a child
#: process tells the library's choice, which it makes again from its own cache directory, from the user's.
JAX_CACHE_MARK = "STATESPACE_JAX_CACHE_DIR"


def use_jax_cache() -> Path | None:
    """Point JAX's persistent compilation cache at ``<cache directory>/jax``, unless the user chose.

    The deep layers' training steps and likelihoods are XLA programs that take seconds to
    compile per shape, in every process (each Dask worker, each notebook restart), on threads
    of their own. JAX keeps compiled programs on disk, keyed by the program, its compile
    options and JAX's version, once told where. This tells it when nothing else has: not when
    the user set ``JAX_COMPILATION_CACHE_DIR``, nor when JAX is already imported with a cache
    directory configured. Before JAX is imported, it sets that environment variable (marked
    as the library's in :data:`JAX_CACHE_MARK`); after, it updates JAX's configuration, which
    takes effect if JAX has compiled nothing yet. JAX's own options still apply
    (``JAX_ENABLE_COMPILATION_CACHE=false`` turns it off; programs compiled in under
    ``jax_persistent_cache_min_compile_time_secs``, 1 s by default, are not kept). Returns the
    directory, or ``None`` when the user's choice stands or nothing is writable.
    """
    chosen = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if chosen and chosen != os.environ.get(JAX_CACHE_MARK):
        return None
    jax = sys.modules.get("jax")
    if jax is not None and getattr(jax.config, "jax_compilation_cache_dir", None) not in (None, "", chosen):
        return None
    for directory in _cache_dirs():
        path = directory / "jax"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if not os.access(path, os.W_OK):
            continue
        os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ[JAX_CACHE_MARK] = str(path)
        if jax is not None:
            jax.config.update("jax_compilation_cache_dir", str(path))
        return path
    return None


use_jax_cache()  # on import, before the library's first JAX program


def specialised_copy(template: Path, kind: str, d: int, m: int):
    """Import a copy of the module file ``template`` with ``D = d, M = m``.

    Knowing the sizes at compile time lets Numba unroll small fixed-size loops. A
    *template* reads ``D = 0`` and ``M = 0`` (the generic code, which takes the sizes from
    the arrays). The copy is named by ``kind``, the dimensions and :func:`template_digest`.
    Returns ``None`` when the template has no marker or nothing is writable.
    """
    source = Path(template).read_text()
    if MARKER not in source:
        return None
    name = f"{GENERATED_PREFIX}{kind}_d{d}_m{m}_{template_digest(template)}"
    return _import_generated(name, source.replace(MARKER, f"\nD = {d}\nM = {m}\n", 1))


# --- Numba's private option for kernels that own no memory ---------------------------
def _supports_nrt_option() -> bool:
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return False
    return hasattr(CPUTargetOptions, "_nrt")


#: ``{"_nrt": False}`` where this Numba has the (private) option, else ``{}``.
NO_REFCOUNT = {"_nrt": False} if _supports_nrt_option() else {}


def refcount_free(**options) -> dict:
    """njit options for a kernel that allocates nothing and only reads its arguments.

    Numba increfs every array of an argument tuple on entry and decrefs it on exit;
    around loops its pruning pass keeps the pairs, which costs tens of atomic operations
    per call. Its private option ``_nrt=False`` compiles without them. Where a Numba version
    lacks the option the kernel compiles with reference counting: the same results, slower.
    """
    return {**options, **NO_REFCOUNT}


def with_refcount(**options) -> dict:
    """njit options for a function that allocates, called from :func:`refcount_free` kernels (which
    would otherwise pass it their ``_nrt=False``)."""
    return {**options, **({"_nrt": True} if NO_REFCOUNT else {})}


# --- compiled functions as constants of size zero -----------------------------------
class KernelBundle:
    """Named compiled functions (Numba dispatchers), integers and nested bundles.

    Inside compiled code ``bundle.name`` is the function (called directly, so LLVM can
    inline it) or the integer (a compile-time constant); the bundle itself occupies no
    memory, so a bundle held as a module constant leaves nothing process-specific in the
    machine code and the function using it can be cached on disk.
    """

    def __init__(self, **members):
        for name, value in members.items():
            if not (
                isinstance(value, (Dispatcher, KernelBundle))
                or (isinstance(value, int) and not isinstance(value, bool))
            ):
                raise TypeError(
                    f"KernelBundle member {name}: expected a Numba function, an int or a bundle, got {value!r}"
                )
        self.members = dict(members)
        self.numba_type = KernelBundleType(tuple(self.members.items()))

    def __getattr__(self, name):
        try:
            return self.__dict__["members"][name]
        except KeyError:
            raise AttributeError(name) from None


def _member_type(value):
    if isinstance(value, KernelBundle):
        return value.numba_type
    if isinstance(value, Dispatcher):
        return types.Dispatcher(value)
    return types.intp


class KernelBundleType(types.Type):
    """Numba type of a :class:`KernelBundle`: equal for bundles of the same functions and integers."""

    def __init__(self, items):
        self.members = dict(items)
        self._key = tuple((n, v.numba_type if isinstance(v, KernelBundle) else v) for n, v in items)
        super().__init__(name="KernelBundle(" + ", ".join(f"{n}={_describe(v)}" for n, v in items) + ")")

    @property
    def key(self):
        return self._key


def _describe(value) -> str:
    if isinstance(value, Dispatcher):
        return f"{value.py_func.__module__}.{value.py_func.__qualname__}@{id(value):x}"
    if isinstance(value, KernelBundle):
        return value.numba_type.name
    return str(value)


def _register_bundle_type() -> bool:
    """Teach Numba the bundle type; ``False`` (everything then runs uncached) if this Numba lacks an API used."""
    # numba.core.imputils.lower_constant is the one name used from outside ``numba.extending``
    try:
        from numba.core import cgutils
        from numba.core.imputils import lower_constant
        from numba.core.typing.templates import AttributeTemplate
        from numba.extending import (
            NativeValue,
            infer_getattr,
            lower_getattr_generic,
            models,
            register_model,
            typeof_impl,
            unbox,
        )
    except ImportError:
        return False

    @typeof_impl.register(KernelBundle)
    def _typeof(val, c):
        return val.numba_type

    @register_model(KernelBundleType)
    class _Model(models.StructModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, [])

    def _null(context, ty):
        return cgutils.get_null_value(context.get_value_type(ty))

    @lower_constant(KernelBundleType)
    def _constant(context, builder, ty, pyval):
        return _null(context, ty)

    @unbox(KernelBundleType)
    def _unbox(typ, obj, c):
        return NativeValue(_null(c.context, typ))

    @infer_getattr
    class _Attributes(AttributeTemplate):
        key = KernelBundleType

        def generic_resolve(self, ty, attr):
            if attr in ty.members:
                return _member_type(ty.members[attr])
            return None

    @lower_getattr_generic(KernelBundleType)
    def _getattr(context, builder, ty, val, attr):
        value = ty.members[attr]
        if isinstance(value, int):
            return context.get_constant(types.intp, value)
        # a call through a Dispatcher-typed value never reads the value: the callee is in its type
        return _null(context, _member_type(value))

    return True


#: Whether compiled functions can be cached (False only on a Numba without the extension API used).
BUNDLES_AVAILABLE = _register_bundle_type()


# --- the generated entry modules -------------------------------------------------------
def as_bundle(value) -> KernelBundle | None:
    """``value`` (a NamedTuple of dispatchers and ints, such as ``ModelKernels``, or a bundle) as a
    :class:`KernelBundle`; ``None`` when a member is anything else."""
    if isinstance(value, KernelBundle):
        return value
    if not hasattr(value, "_asdict"):
        return None
    members = {}
    for name, member in value._asdict().items():
        if hasattr(member, "_asdict"):
            member = as_bundle(member)
        if member is not None and not isinstance(member, (Dispatcher, KernelBundle, bool)):
            try:
                member = operator.index(member)  # dimensions may come as NumPy integers
            except TypeError:
                member = None
        if member is None or isinstance(member, bool):
            return None
        members[name] = member
    return KernelBundle(**members)


_import_names: dict[int, tuple] = {}


def _import_name(dispatcher: Dispatcher) -> tuple[str, str] | None:
    """``(module, attribute)`` under which ``dispatcher`` is found by import from a file; ``None`` if it is not."""
    known = _import_names.get(id(dispatcher))
    if known is not None and known[0] is dispatcher:  # the id of a collected closure may be reused
        return known[1]
    found = None
    module = sys.modules.get(getattr(dispatcher.py_func, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    if module is not None and module.__name__ != "__main__" and path and path.endswith(".py"):
        found = next(((module.__name__, n) for n, v in vars(module).items() if v is dispatcher), None)
    if len(_import_names) > 4096:
        _import_names.clear()
    _import_names[id(dispatcher)] = (dispatcher, found)
    return found


def _dispatchers(bundle: KernelBundle):
    for value in bundle.members.values():
        if isinstance(value, KernelBundle):
            yield from _dispatchers(value)
        elif isinstance(value, Dispatcher):
            yield value


def _bundle_source(bundle: KernelBundle, imports: dict) -> str:
    parts = []
    for name, value in bundle.members.items():
        if isinstance(value, KernelBundle):
            parts.append(f"{name}={_bundle_source(value, imports)}")
        elif isinstance(value, Dispatcher):
            parts.append(f"{name}={imports[_import_name(value)]}")
        else:
            parts.append(f"{name}={int(value)}")
    return "KernelBundle(" + ", ".join(parts) + ")"


class _Entry:
    """``template`` with some leading-or-not arguments fixed; cached on disk when the types allow it."""

    def __init__(self, template, fixed: dict, params: list[str]):
        self.template = template
        self.fixed = fixed
        self.params = params
        self.free = [p for p in params if p not in fixed]
        self._module = None  # the generated module, built on the first cacheable call
        self._cacheable_types: dict = {}
        self._lock = threading.Lock()

    def _full_args(self, args):
        it = iter(args)
        return [self.fixed[p] if p in self.fixed else next(it) for p in self.params]

    def _types_cacheable(self, args) -> bool:
        for a in args:
            cls = type(a)
            if cls is tuple:  # a plain tuple's type depends on its items (numba.typeof: about 12 us)
                ok = not a or _importable_type(numba.typeof(a))
            else:
                ok = self._cacheable_types.get(cls)
                if ok is None:
                    ok = self._cacheable_types[cls] = _importable_type(numba.typeof(a))
            if not ok:
                return False
        return True

    def generated(self):
        """The generated entry module (``None`` when the fixed functions cannot be imported by name)."""
        with self._lock:
            if self._module is None:
                self._module = _generate(self.template, self.fixed, self.params) or False
        return self._module or None

    def __call__(self, *args):
        if BUNDLES_AVAILABLE and self._types_cacheable(args):
            module = self.generated()
            if module is not None:
                return module.entry(*args)
        return self.template(*self._full_args(args))


def _importable_type(ty) -> bool:
    """Whether every class a Numba type refers to can be imported by name from a file (so an index can record it)."""
    if isinstance(ty, types.BaseNamedTuple):
        cls = ty.instance_class
        module = sys.modules.get(cls.__module__)
        path = getattr(module, "__file__", None)
        if (
            module is None
            or cls.__module__ == "__main__"
            or not path
            or getattr(module, cls.__qualname__, None) is not cls
        ):
            return False
    if isinstance(ty, (types.BaseTuple,)):
        return all(_importable_type(t) for t in ty.types)
    return True


def _generate(template, fixed, params):
    bundles = {}
    for name, value in fixed.items():
        bundle = KernelBundle(f=value) if isinstance(value, Dispatcher) else as_bundle(value)
        if bundle is None:
            return None
        bundles[name] = bundle
    template_name = _import_name(template)
    dispatchers = [d for b in bundles.values() for d in _dispatchers(b)]
    names = [_import_name(d) for d in dispatchers]
    if template_name is None or any(n is None for n in names):
        return None
    imports = {}
    for n in dict.fromkeys(names):
        imports[n] = f"_f{len(imports)}"
    lines = [f"from {mod} import {attr} as {alias}" for (mod, attr), alias in imports.items()]
    lines.append(f"from {template_name[0]} import {template_name[1]} as _template")
    for name, bundle in bundles.items():
        lines.append(f"_{name} = {_bundle_source(bundle, imports)}")
    free = [p for p in params if p not in fixed]
    call = [f"_{p}.f" if isinstance(fixed.get(p), Dispatcher) else f"_{p}" if p in fixed else p for p in params]
    nogil = ", nogil=True" if template.targetoptions.get("nogil") else ""
    body = "\n".join(lines)
    source = (
        f'"""Generated by statespace._compile: {template_name[0]}.{template_name[1]} with fixed '
        f'{", ".join(fixed)}; cached by Numba. Safe to delete."""\n'
        "import numba\n"
        "from statespace._compile import KernelBundle\n"
        f"{body}\n\n\n"
        f"@numba.njit(cache=True{nogil})\n"
        f"def entry({', '.join(free)}):\n"
        f"    return _template({', '.join(call)})\n"
    )
    files = {Path(sys.modules[m].__file__) for m, _ in list(imports) + [template_name]}
    identity = hashlib.sha256(source.encode()).hexdigest()[:10]
    name = f"{GENERATED_PREFIX}{template_name[1].lstrip('_')}_{identity}_{_digest(sorted(files), source)}"
    return _import_generated(name, source)


_entries: dict = {}


def compiled(template, **fixed):
    """``template`` (a plain ``@njit`` function) with the arguments named in ``fixed`` bound.

    Each value of ``fixed`` is a Numba function, a :class:`KernelBundle`, or a NamedTuple
    of functions and integers (``ModelKernels``, ``Proposal``, ``AdditiveFunctional``).
    The result takes the remaining arguments in ``template``'s order. It runs a generated
    ``@njit(cache=True)`` module that calls ``template`` with the fixed values as constants
    (compiled once, then loaded from disk by every later process); when the values or the
    arguments' types cannot be recorded on disk it calls ``template`` directly.
    """
    key = (template, tuple((n, _fixed_key(v)) for n, v in fixed.items()))
    entry = _entries.get(key)
    if entry is None:
        params = list(inspect.signature(template.py_func).parameters)
        unknown = set(fixed) - set(params)
        if unknown:
            raise TypeError(f"compiled: {template.py_func.__name__} has no argument {sorted(unknown)}")
        if len(_entries) > 1024:  # models whose kernels are made afresh on each call must not pile up
            _entries.clear()
        entry = _entries[key] = _Entry(template, dict(fixed), params)
    return entry


def _fixed_key(value):
    if hasattr(value, "_asdict"):
        return tuple((n, _fixed_key(v)) for n, v in value._asdict().items())
    if isinstance(value, KernelBundle):
        return value.numba_type
    return value
