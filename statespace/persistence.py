r"""Save and load models, fitted pipelines and parameter containers: one portable format, no pickle.

Every loadable object of the library (the linear-Gaussian SSM, stochastic
volatility, the HMM family with its exact class, IOHMM, LearnedEmissionHMM,
Markov jump processes, the neural-drift SSM, the RUL pipelines and ensembles,
and their parameter containers) goes through the two functions here::

    from statespace import LinearGaussianSSM, save_model, load_model
    model = LinearGaussianSSM(m0=[0.0], P0=[[1.0]], F=[[0.9]], Q=[[0.1]], H=[[1.0]], R=[[0.5]], frozen=("H",))
    model.fit(model.sample(100, rng=0)[1], max_iter=5, progress=False)
    path = save_model("fit.npz", model)       # ".npz" appended if missing
    model = load_model("fit.npz")             # same class, configuration, parameters, frozen set

and the models' ``save(path)`` / ``Class.load(path)`` methods are these
functions (``Class.load`` also refuses a file holding another class).

**File layout** (format version 2). A NumPy ``.npz`` archive written by
``np.savez`` and read with ``allow_pickle=False``: one entry
``__statespace_header__``, a JSON object::

    {"format": "statespace", "format_version": 2, "library_version": "0.1.0",
     "class": "hmm.ARHMM", "state": {"n_states": 3, "params": {"object": "hmm.HMMParams", ...}, ...}}

and one entry per array of the object, named by its place in the tree (``params.A``,
``model.hmm.params.emission.covs``, ...). ``state`` is a *tree*
whose nodes are JSON scalars (``null``, booleans, integers, finite floats,
strings) or one-key objects: ``{"array": "params.A"}`` (a numeric array entry:
bool, integer or float64), ``{"list": [...]}``, ``{"tuple": [...]}``,
``{"dict": {...}}`` (string keys), ``{"float": "nan" | "inf" | "-inf"}``, and
``{"object": NAME, "state": {...}}`` for a nested loadable object (a parameter
container inside a model, a model inside a pipeline). Every array entry is
referenced exactly once; anything else in the file is an error.

**Registry rule.** ``NAME`` is looked up in a registry of classes declared
loadable with :func:`register_loadable`, filled when the library's packages
(a fixed list: :data:`LIBRARY_MODULES`) are imported; nothing named by a file
is ever imported, and no attribute is followed, so a file can only make the
library build registered classes through their validating constructors, never
call anything else. Loading rebuilds the tree bottom-up: a registered
``NamedTuple`` container as ``cls(**state)`` (its validating ``__new__``), any
other registered class as ``cls._from_persisted(state)``. Every failure
(unreadable or truncated archive, missing header, JSON that is not an object,
fields of the wrong type, an unregistered class, missing or extra arrays,
arrays of the wrong dtype, a constructor refusing the values, a newer format
version) is a :class:`~statespace.errors.DataError` naming the file and the
place in the tree.

**Making a class loadable.** Decorate it and give it two hooks (or inherit
:class:`SavedModel`, whose defaults store ``{"params": self.params}``)::

    from statespace.interface import StateSpaceModel
    from statespace.persistence import SavedModel, register_loadable

    @register_loadable                          # name "mypackage.MyModel"
    class MyModel(StateSpaceModel, SavedModel):
        def __init__(self, params, window=5): ...
        def _persist_state(self) -> dict:       # constructor arguments (a tree)
            return {"params": self.params, "window": self.window}
        @classmethod
        def _from_persisted(cls, state):        # rebuild through the constructor
            return cls(**state)

Parameter containers are ``NamedTuple`` subclasses registered the same way
(``register_loadable(MyParams)``); their fields are the state.

**Format versions.** A file of an older version is converted to the current
tree by one migration function per old format (``_MIGRATIONS``): version 1
``statespace-params`` files of ``save_model``/``save_params``, version 1
``statespace-rul`` files of ``hmm.rul.save_rul``, and the unversioned files
of the former ``HMM.save`` and deep-model ``save`` methods. A file of a newer
version is refused.
"""

from __future__ import annotations

import importlib
import io
import json
import math
from pathlib import Path

import numpy as np

from ._version import __version__
from .errors import DataError, ParameterError

FORMAT = "statespace"
FORMAT_VERSION = 2
_HEADER = "__statespace_header__"

#: Imported before a name is looked up in the registry: the modules whose classes are loadable.
#: A fixed list, never taken from a file.
LIBRARY_MODULES = ("statespace", "hmm", "hmm.rul", "smc")

_REGISTRY: dict[str, type] = {}
_NAMES: dict[type, str] = {}
_ARRAY_KINDS = "biuf"  # bool, signed and unsigned integers, floats


# ----------------------------------------------------------------------------- registry
def register_loadable(cls=None, *, name: str | None = None):
    """Declare ``cls`` loadable under ``name`` (default ``"<top package>.<class name>"``); usable as a decorator.

    ``cls`` is a ``NamedTuple`` parameter container (rebuilt as ``cls(**fields)``) or a
    class with ``_persist_state(self) -> dict`` and ``classmethod _from_persisted(cls, state)``.
    """

    def register(c):
        if not isinstance(c, type):
            raise ParameterError(f"register_loadable: expected a class, got {type(c).__name__}")
        is_container = issubclass(c, tuple) and hasattr(c, "_fields")
        if not is_container and not (hasattr(c, "_persist_state") and hasattr(c, "_from_persisted")):
            raise ParameterError(
                f"register_loadable: {c.__qualname__} is neither a NamedTuple nor has _persist_state/_from_persisted"
            )
        key = name or f"{c.__module__.split('.')[0]}.{c.__qualname__}"
        old = _REGISTRY.get(key)
        if old is not None and (old.__module__, old.__qualname__) != (c.__module__, c.__qualname__):
            raise ParameterError(f"register_loadable: name {key!r} is taken by {old.__module__}.{old.__qualname__}")
        _REGISTRY[key] = c
        _NAMES[c] = key
        return c

    return register if cls is None else register(cls)


def registered_name(cls) -> str | None:
    """The registry name of ``cls`` (None when it is not loadable)."""
    return _NAMES.get(cls)


def _lookup(name: str) -> type:
    if name not in _REGISTRY:
        for module in LIBRARY_MODULES:
            importlib.import_module(module)
    if name not in _REGISTRY:
        raise _Corrupt(
            f"class {name!r} is not a loadable class of this library (loadable: {', '.join(sorted(_REGISTRY))})"
        )
    return _REGISTRY[name]


def _lookup_legacy(qualified: str) -> type:
    """A registered class by the ``"module:Qualname"`` spelling of version-1 headers (registry only, no import)."""
    if not isinstance(qualified, str):
        raise _Corrupt(f"class name: expected a string, got {type(qualified).__name__}")
    for module in LIBRARY_MODULES:
        importlib.import_module(module)
    for cls in _REGISTRY.values():
        if f"{cls.__module__}:{cls.__qualname__}" == qualified:
            return cls
    raise _Corrupt(f"class {qualified!r} is not a loadable class of this library")


class SavedModel:
    """``save``/``load`` methods over ``save_model``/``load_model``, and default hooks.

    The default hooks store ``{"params": self.params}`` and rebuild ``cls(params=...)``.
    """

    def save(self, path) -> Path:
        """Write this object to ``path`` (``.npz`` appended if missing); returns the path written."""
        return save_model(path, self)

    @classmethod
    def load(cls, path):
        """The object saved at ``path``; a ``DataError`` if the file holds another class."""
        return _load(path, expected=cls)

    def _persist_state(self) -> dict:
        return {"params": self.params}

    @classmethod
    def _from_persisted(cls, state: dict):
        return cls(**state)


# ----------------------------------------------------------------------------- writing
class _Encoder:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, value, where: str) -> dict:
        arr = np.asarray(value)
        if arr.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"{where}: arrays of dtype {arr.dtype} cannot be saved (bool, integer or float only)")
        arr = arr.astype({"f": np.float64, "i": np.int64, "u": np.uint64, "b": np.bool_}[arr.dtype.kind], copy=False)
        key = where  # the entry is named by its place in the tree (unique), so the archive reads on its own
        if key in self.arrays or key == _HEADER:
            key = f"{where}#{len(self.arrays)}"
        self.arrays[key] = arr
        return {"array": key}

    def node(self, obj, where: str):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            f = float(obj)
            return f if math.isfinite(f) else {"float": repr(f)}
        name = _NAMES.get(type(obj))
        if name is not None:
            state = obj._asdict() if isinstance(obj, tuple) else obj._persist_state()
            if not isinstance(state, dict):
                raise TypeError(f"{type(obj).__name__}._persist_state returned a {type(state).__name__}, not a dict")
            return {"object": name, "state": self.fields(state, where)}
        if hasattr(obj, "_fields") or hasattr(obj, "_persist_state"):
            raise TypeError(
                f"{where}: {type(obj).__qualname__} is not registered as loadable "
                "(statespace.persistence.register_loadable)"
            )
        if isinstance(obj, dict):
            return {"dict": self.fields(obj, where)}
        if isinstance(obj, (list, tuple)):
            kind = "list" if isinstance(obj, list) else "tuple"
            return {kind: [self.node(v, f"{where}.{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):  # numpy or JAX arrays
            return self.array(obj, where)
        raise TypeError(f"{where}: cannot save a {type(obj).__qualname__}")

    def fields(self, mapping: dict, where: str) -> dict:
        out = {}
        for k, v in mapping.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: dictionary key {k!r} is not a string")
            out[k] = self.node(v, f"{where}.{k}" if where else k)
        return out


def _npz_path(path) -> Path:
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _write(path, obj) -> Path:
    name = _NAMES.get(type(obj))
    if name is None:
        raise ParameterError(f"model: a {type(obj).__qualname__} cannot be saved (not registered as loadable)")
    enc = _Encoder()
    try:
        root = enc.node(obj, "")
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"model: cannot save this {type(obj).__name__}: {exc}") from exc
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "class": name,
        "state": root["state"],
    }
    path = _npz_path(path)
    np.savez(path, **{_HEADER: np.array(json.dumps(header, allow_nan=False))}, **enc.arrays)
    return path


def save_model(path, model) -> Path:
    """Write a model or fitted pipeline (any registered loadable object) to ``path``; returns the path."""
    if isinstance(model, tuple) and hasattr(model, "_fields"):
        raise ParameterError(f"model: got a parameter container {type(model).__name__}; use save_params")
    return _write(path, model)


def save_params(path, params) -> Path:
    """Write a parameter container (a registered ``NamedTuple``) to ``path``; returns the path."""
    if not (isinstance(params, tuple) and hasattr(params, "_fields")):
        raise ParameterError(f"params: expected a parameter container (NamedTuple), got {type(params).__name__}")
    return _write(path, params)


# ----------------------------------------------------------------------------- reading
class _Corrupt(Exception):
    """What is wrong with a file; :func:`_load` adds the file name and raises a ``DataError``."""


#: What a validating constructor or a ``_from_persisted`` hook raises on values it refuses
#: (the library's errors are ValueErrors; the others come from values of the wrong type).
_REFUSALS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, MemoryError, RecursionError)


def _read_archive(path) -> dict:
    """Every entry of the ``.npz`` at ``path`` (no pickle)."""
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise _Corrupt("not an .npz archive (a single .npy array)")
        with f:
            return {k: f[k] for k in f.files}
    except _Corrupt:
        raise
    except FileNotFoundError as exc:
        raise _Corrupt("no such file") from exc
    except Exception as exc:  # noqa: BLE001 - parsing untrusted bytes: zipfile, zlib, numpy's header reader
        # (BadZipFile, EOFError, NotImplementedError, ValueError, OSError, ...), no library code runs here
        raise _Corrupt(
            f"not a readable .npz archive (empty, truncated or corrupted): {type(exc).__name__}: {exc}"
        ) from exc


def _json_header(arrays: dict, key: str) -> dict:
    raw = arrays.pop(key)
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise _Corrupt(f"header entry {key!r} is not a string")
    try:
        header = json.loads(str(raw))
    except (ValueError, RecursionError) as exc:
        raise _Corrupt(f"header entry {key!r} is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise _Corrupt(f"header entry {key!r} is a JSON {type(header).__name__}, expected an object")
    return header


def _field(header: dict, key: str, kind, what: str = "header"):
    if key not in header:
        raise _Corrupt(f"{what} lacks the field {key!r}")
    value = header[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _Corrupt(f"{what} field {key!r} is a {type(value).__name__}, expected {names}")
    return value


class _Decoder:
    def __init__(self, arrays: dict):
        self.arrays = arrays
        self.used: set[str] = set()

    def node(self, node, where: str):
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if isinstance(node, float):
            return node
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise _Corrupt(f"{where}: malformed node {str(node)[:80]!r}")
        if len(node) == 2 or "object" in node:
            if set(node) != {"object", "state"}:
                raise _Corrupt(
                    f"{where}: an object node has exactly the fields 'object' and 'state', got {sorted(node)}"
                )
            return self.object(node["object"], node["state"], where)
        ((tag, value),) = node.items()
        if tag == "array":
            return self.array(value, where)
        if tag in ("list", "tuple"):
            if not isinstance(value, list):
                raise _Corrupt(f"{where}: a {tag} node holds a {type(value).__name__}, expected a JSON list")
            items = [self.node(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return items if tag == "list" else tuple(items)
        if tag == "dict":
            return self.fields(value, where)
        if tag == "float":
            if value not in ("nan", "inf", "-inf"):
                raise _Corrupt(f"{where}: a float node holds {value!r}, expected 'nan', 'inf' or '-inf'")
            return float(value)
        raise _Corrupt(f"{where}: unknown node kind {tag!r}")

    def fields(self, value, where: str) -> dict:
        if not isinstance(value, dict):
            raise _Corrupt(f"{where}: expected a JSON object, got a {type(value).__name__}")
        return {k: self.node(v, f"{where}.{k}") for k, v in value.items()}

    def array(self, key, where: str) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise _Corrupt(f"{where}: the array entry {key!r} is missing from the file")
        if key in self.used:
            raise _Corrupt(f"{where}: the array entry {key!r} is referenced twice")
        self.used.add(key)
        arr = self.arrays[key]
        if arr.dtype.kind not in _ARRAY_KINDS:
            raise _Corrupt(f"{where}: the array entry {key!r} has dtype {arr.dtype}, expected bool, integer or float")
        return arr

    def object(self, name, state, where: str):
        if not isinstance(name, str):
            raise _Corrupt(f"{where}: class name is a {type(name).__name__}, expected a string")
        cls = _lookup(name)
        values = self.fields(state, f"{where}")
        try:
            if issubclass(cls, tuple):
                if set(values) != set(cls._fields):
                    raise _Corrupt(
                        f"{where}: {name} has the fields {list(cls._fields)}, the file gives {sorted(values)}"
                    )
                return cls(**values)
            return cls._from_persisted(values)
        except _Corrupt:
            raise
        except _REFUSALS as exc:
            raise _Corrupt(f"{where}: {name} refuses the stored values: {type(exc).__name__}: {exc}") from exc


def _load_tree(header: dict, arrays: dict):
    """The object of a current-version ``header`` and its ``arrays``."""
    name = _field(header, "class", str)
    state = _field(header, "state", dict)
    _field(header, "library_version", str)
    dec = _Decoder(arrays)
    try:
        obj = dec.object(name, state, "state")
    except RecursionError as exc:
        raise _Corrupt("the state tree is nested too deeply") from exc
    extra = sorted(set(arrays) - dec.used)
    if extra:
        raise _Corrupt(f"array entries {extra[:5]} are not referenced by the header")
    return obj


def _header_of(arrays: dict):
    """``(key, header)`` of any format this library ever wrote (see ``_MIGRATIONS``)."""
    for key in (_HEADER, "__header__", "meta"):
        if key in arrays:
            return key, _json_header(arrays, key)
    raise _Corrupt(f"no header entry {_HEADER!r}: not a file written by statespace")


def _current(arrays: dict):
    """``(header, arrays)`` in the current format, migrating older formats."""
    key, header = _header_of(arrays)
    if key == "meta":  # the former HMM.save: no format field, no version
        fmt, version = "hmm", 0
    else:
        fmt = _field(header, "format", str)
        version = 0 if fmt == "statespace-deep-model" else _field(header, "format_version", int)
    if fmt == FORMAT and version > FORMAT_VERSION:
        raise _Corrupt(
            f"format version {version} is newer than this library reads ({FORMAT_VERSION}); "
            f"it was written by statespace {header.get('library_version')!s}"
        )
    if fmt == FORMAT and version == FORMAT_VERSION:
        return header, arrays
    migrate = _MIGRATIONS.get((fmt, version))
    if migrate is None:
        raise _Corrupt(f"unknown format {fmt!r} version {version}")
    return migrate(header, arrays)


def _load(path, expected=None, kind: str = "any", what: str | None = None):
    shown = repr(str(path)) if isinstance(path, (str, Path)) else repr(path)
    try:
        header, arrays = _current(_read_archive(path))
        if expected is not None and not issubclass(_lookup(_field(header, "class", str)), expected):
            raise _Corrupt(f"holds a {header['class']}, not a {what or expected.__name__}")
        if kind != "any":
            is_params = issubclass(_lookup(_field(header, "class", str)), tuple)
            if kind == "model" and is_params:
                raise _Corrupt("holds a parameter container only; use load_params")
            if kind == "params" and not is_params:
                raise _Corrupt("holds a model, not a parameter container; use load_model")
        return _load_tree(header, arrays)
    except _Corrupt as exc:
        raise DataError(f"path {shown}: {exc}") from exc.__cause__


def load_model(path):
    """The model or pipeline saved at ``path``, rebuilt through its validating constructor.

    Raises :class:`~statespace.errors.DataError` (naming the file) for any file that
    is not a valid saved object of a registered class.
    """
    return _load(path, kind="model")


def load_params(path):
    """The parameter container saved by ``save_params`` (validated like construction)."""
    return _load(path, kind="params")


# ----------------------------------------------------------------------------- older formats
class _Tree:
    """Builds a current-version tree from the arrays of an older file (migrations)."""

    def __init__(self, arrays: dict, prefix: str = "", into: dict | None = None):
        self.old = arrays
        self.prefix = prefix  # nested files of the old RUL format share the outer file's entries
        self.arrays: dict[str, np.ndarray] = {} if into is None else into

    def array(self, value) -> dict:
        key = f"{self.prefix}a{len(self.arrays)}"
        self.arrays[key] = np.asarray(value)
        return {"array": key}

    def take(self, key: str) -> dict:
        if key not in self.old:
            raise _Corrupt(f"the array entry {key!r} is missing from the file")
        return self.array(self.old[key])

    def value(self, v):
        """A JSON value of an old header as a tree node (lists become tuples: they were constructor tuples)."""
        if isinstance(v, list):
            return {"tuple": [self.value(x) for x in v]}
        if isinstance(v, dict):
            return {"dict": {k: self.value(x) for k, x in v.items()}}
        return v

    @staticmethod
    def obj(name: str, state: dict) -> dict:
        return {"object": name, "state": state}

    def header(self, name: str, state: dict, library_version) -> tuple[dict, dict]:
        return (
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "library_version": str(library_version),
                "class": name,
                "state": state,
            },
            self.arrays,
        )


def _migrate_params_v1(header: dict, arrays: dict):
    """``statespace-params`` version 1: one array or scalar per container field, ``module:Qualname`` classes."""
    t = _Tree(arrays)
    params_cls = _lookup_legacy(_field(header, "params_class", str))
    kinds = _field(header, "fields", dict)
    if set(kinds) != set(getattr(params_cls, "_fields", ())):
        raise _Corrupt(f"fields {sorted(kinds)} do not match {params_cls.__name__} fields {list(params_cls._fields)}")
    fields = {}
    for name, kind in kinds.items():
        if kind == "none":
            fields[name] = None
        elif kind == "array":
            fields[name] = t.take(name)
        elif kind == "scalar":
            if name not in arrays or arrays[name].ndim != 0:
                raise _Corrupt(f"the scalar field {name!r} is missing or not a scalar")
            fields[name] = arrays[name].item()
            if isinstance(fields[name], float) and not math.isfinite(fields[name]):
                fields[name] = {"float": repr(fields[name])}
        else:
            raise _Corrupt(f"field {name!r} has unknown kind {kind!r}")
    extra = sorted(set(arrays) - set(kinds))
    if extra:
        raise _Corrupt(f"array entries {extra[:5]} are not fields of {params_cls.__name__}")
    params = t.obj(_NAMES[params_cls], fields)
    if "model_class" not in header:
        return t.header(_NAMES[params_cls], fields, header.get("library_version"))
    model_cls = _lookup_legacy(_field(header, "model_class", str))
    state = {"params": params}
    if "frozen" in header:
        state["frozen"] = {"tuple": list(_field(header, "frozen", list))}
    return t.header(_NAMES[model_cls], state, header.get("library_version"))


def _hmm_v0_state(meta: dict, t: _Tree) -> tuple[str, dict]:
    """Registry name and state of a file of the former ``HMM.save`` (``meta`` header, fixed array names)."""
    cls = {
        "HMM": "hmm.HMM",
        "ARHMM": "hmm.ARHMM",
        "GaussianHMM": "hmm.GaussianHMM",
        "CategoricalHMM": "hmm.CategoricalHMM",
    }.get(meta.get("class"), "hmm.HMM")
    m = {
        k: _field(meta, k, kind, "meta")
        for k, kind in (
            ("n_states", int),
            ("obs_dim", int),
            ("emission", str),
            ("lags", int),
            ("input_dim", int),
            ("covariance_type", str),
            ("absorbing", bool),
            ("prior", list),
        )
    }
    if m["emission"] == "categorical":
        emission = t.obj("hmm.CategoricalEmissionParams", {"probs": t.take("probs")})
    else:
        emission = t.obj(
            "hmm.GaussianEmissionParams",
            {
                "weights": t.take("weights"),
                "covs": t.take("covs"),
                "init_means": t.take("init_means"),
                "init_covs": t.take("init_covs"),
                "lags": m["lags"],
                "input_dim": m["input_dim"],
            },
        )
    prior_fields = ("reg_covar", "cov_dof", "ridge", "pseudo_count")
    if len(m["prior"]) != len(prior_fields):
        raise _Corrupt(f"meta field 'prior' has {len(m['prior'])} values, expected {len(prior_fields)}")
    state = {
        "n_states": m["n_states"],
        "obs_dim": m["obs_dim"],
        "emission": m["emission"],
        "lags": m["lags"],
        "input_dim": m["input_dim"],
        "covariance_type": m["covariance_type"],
        "n_symbols": meta.get("n_symbols"),
        "transitions": t.obj(
            "hmm.TransitionStructure",
            {"mask": t.take("mask"), "pseudo_counts": t.take("pseudo_counts"), "absorbing": m["absorbing"]},
        ),
        "prior": t.obj("hmm.EmissionPrior", dict(zip(prior_fields, m["prior"]))),
        "params": t.obj("hmm.HMMParams", {"pi0": t.take("pi0"), "A": t.take("A"), "emission": emission}),
    }
    return cls, state


def _migrate_hmm_v0(meta: dict, arrays: dict):
    t = _Tree(arrays)
    name, state = _hmm_v0_state(meta, t)
    return t.header(name, state, meta.get("library_version"))


def _deep_v0_state(header: dict, t: _Tree) -> tuple[str, dict]:
    """Registry name and state of a file of the former deep-model ``save`` (``field.key.index`` array names)."""
    model = {"IOHMM": "hmm.IOHMM", "LearnedEmissionHMM": "hmm.LearnedEmissionHMM"}.get(header.get("model"))
    params = {"IOHMMParams": "hmm.IOHMMParams", "LearnedEmissionParams": "hmm.LearnedEmissionParams"}.get(
        header.get("params")
    )
    if model is None or params is None:
        raise _Corrupt(f"unknown deep model {header.get('model')!r} with parameters {header.get('params')!r}")
    fields: dict = {}
    for key in t.old:
        head, _, rest = key.partition(".")
        node = fields.setdefault(head, {}) if rest else fields
        if rest:
            parts = rest.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = t.take(key)
        else:
            fields[head] = t.take(key)

    def listify(node):  # {"0": .., "1": ..} was a list
        if not isinstance(node, dict) or "array" in node:
            return node
        if node and all(k.isdigit() for k in node) and sorted(map(int, node)) == list(range(len(node))):
            return {"list": [listify(node[str(i)]) for i in range(len(node))]}
        return {"dict": {k: listify(v) for k, v in node.items()}}

    state = {k: (listify(v) if isinstance(v, dict) and "array" not in v else v) for k, v in fields.items()}
    config = _field(header, "config", dict)
    cfg = {k: t.value(v) for k, v in config.items()}
    if "init_options" in config:
        cfg["init_options"] = {"tuple": [{"tuple": list(p)} for p in _field(config, "init_options", list, "config")]}
    return model, dict(cfg, params=t.obj(params, state))


def _migrate_deep_v0(header: dict, arrays: dict):
    t = _Tree(arrays)
    name, state = _deep_v0_state(header, t)
    return t.header(name, state, header.get("library_version"))


def _nested(blob: np.ndarray, what: str):
    """``(key, header, arrays)`` of an ``.npz`` stored as a byte array inside an older file."""
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise _Corrupt(f"{what}: expected a byte array, got dtype {blob.dtype} and {blob.ndim} dimensions")
    try:
        inner = _read_archive(io.BytesIO(blob.tobytes()))
    except _Corrupt as exc:
        raise _Corrupt(f"{what}: {exc}") from exc.__cause__
    key, header = _header_of(inner)
    return key, header, inner


def _migrate_rul_v1(header: dict, arrays: dict):
    """``statespace-rul`` version 1: members' fitted pieces under ``m<i>.`` prefixes, their HMMs nested files."""
    t = _Tree(arrays)
    members = _field(header, "members", list)

    def member(spec, i: int):
        if not isinstance(spec, dict):
            raise _Corrupt(f"members[{i}] is a {type(spec).__name__}, expected an object")
        prefix = f"m{i}."
        f = _field(spec, "features", dict, f"members[{i}]")
        n = _field(f, "normalizer", dict, f"members[{i}].features")
        feats = {
            "config": {
                "dict": {
                    k: f.get(k) for k in ("min_distinct", "n_conditions", "baseline_cycles", "alpha", "health_cap")
                }
            },
            "n_sensors": f.get("n_sensors"),
            "columns": t.take(prefix + "columns"),
            "normalizer": {
                "dict": {
                    "config": {"dict": dict(n)},
                    **{
                        name: t.take(f"{prefix}norm.{name}")
                        for name in ("settings_mean_", "settings_scale_", "centers_", "means_", "scales_")
                    },
                }
            },
        }
        if f.get("health_cap") is not None:
            feats["health"] = {
                "dict": {"weights": t.take(prefix + "health.weights"), "loc_scale": t.take(prefix + "health.loc_scale")}
            }
        m = _field(spec, "model", dict, f"members[{i}]")
        cls = {"ARPHMMRUL": "hmm.ARPHMMRUL", "DeepARPHMMRUL": "hmm.DeepARPHMMRUL"}.get(m.get("class"))
        if cls is None:
            raise _Corrupt(f"members[{i}]: unknown RUL model class {m.get('class')!r}")
        if prefix + "hmm" not in arrays:
            raise _Corrupt(f"the array entry {prefix + 'hmm'!r} is missing from the file")
        key, inner_header, inner = _nested(arrays[prefix + "hmm"], f"members[{i}].hmm")
        inner_tree = _Tree(inner, prefix=f"{prefix}hmm.", into=t.arrays)
        state_of = _hmm_v0_state if key == "meta" else _deep_v0_state
        hmm_name, hmm_state = state_of(inner_header, inner_tree)
        readout = None
        if prefix + "readout.probs" in arrays:
            readout = {
                "dict": {"probs": t.take(prefix + "readout.probs"), "lengths": t.take(prefix + "readout.lengths")}
            }
        pit = t.take(prefix + "pit") if prefix + "pit" in arrays else None
        model = t.obj(
            cls,
            {
                "config": {"dict": {k: t.value(v) for k, v in _field(m, "config", dict).items()}},
                "hmm": t.obj(hmm_name, hmm_state),
                "readout": readout,
                "pit_levels": pit,
            },
        )
        return t.obj("hmm.RULPipeline", {"features": {"dict": feats}, "model": model})

    nodes = [member(spec, i) for i, spec in enumerate(members)]
    kind = header.get("kind")
    if kind == "pipeline" and len(nodes) == 1:
        return t.header("hmm.RULPipeline", nodes[0]["state"], header.get("library_version"))
    if kind != "ensemble" or not nodes:
        raise _Corrupt(f"expected a pipeline or an ensemble with members, got kind {kind!r}")
    state = {
        "members": {"list": nodes},
        "weights": t.array(np.asarray(_field(header, "weights", list), dtype=float)),
        "point": header.get("point"),
        "point_cap": header.get("point_cap"),
        "pit_levels": t.take("pit") if "pit" in arrays else None,
    }
    return t.header("hmm.RULEnsemble", state, header.get("library_version"))


#: ``(format, version) -> migration``: ``(header, arrays) -> (current header, current arrays)``.
_MIGRATIONS = {
    ("statespace-params", 1): _migrate_params_v1,
    ("statespace-rul", 1): _migrate_rul_v1,
    ("hmm", 0): _migrate_hmm_v0,
    ("statespace-deep-model", 0): _migrate_deep_v0,
}
