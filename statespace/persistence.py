"""Save and load fitted parameters as portable ``.npz`` files (never pickle).

A file holds one array per field of the parameter container plus a JSON
header: the container's class, the model class (when a model was saved), its
frozen parameters, the library version and a format version. Loading imports
the classes by name (only from this library's packages), rebuilds the container
through its validating constructor (so a corrupted or hand-edited file fails
like a bad call would) and refuses anything else. Works for every family whose
parameters are a NamedTuple of arrays and numbers (``LGSSMParams``, ``SVParams``,
the HMM containers, ...)::

    from statespace import LinearGaussianSSM, save_model, load_model
    save_model("fit.npz", model)          # after model.fit(...)
    model = load_model("fit.npz")         # same class, parameters and frozen set

A model class is loadable when ``cls(params=p)`` builds it (and accepts
``frozen=`` if its instances have a ``frozen`` attribute).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from .errors import DataError

FORMAT = "statespace-params"
FORMAT_VERSION = 1
_HEADER = "__statespace_header__"
_ALLOWED_PACKAGES = ("statespace", "hmm", "smc")


def _qualname(obj_type) -> str:
    return f"{obj_type.__module__}:{obj_type.__qualname__}"


def _resolve(name: str, what: str):
    module, _, qual = name.partition(":")
    if module.split(".")[0] not in _ALLOWED_PACKAGES or not qual:
        raise DataError(f"{what}: refusing to load class {name!r} from outside {_ALLOWED_PACKAGES}")
    try:
        obj = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"{what}: class {name!r} not found in this version of the library") from exc
    return obj


def save_params(path, params, *, model=None) -> Path:
    """Write ``params`` (a NamedTuple container) to ``path`` (``.npz`` appended if missing)."""
    from . import __version__

    if not hasattr(params, "_fields"):
        raise DataError(f"params: expected a parameter container (NamedTuple), got {type(params).__name__}")
    arrays, kinds = {}, {}
    for name in params._fields:
        value = getattr(params, name)
        if value is None:
            kinds[name] = "none"
            continue
        arr = np.asarray(value)
        if arr.dtype == object:
            raise DataError(f"params.{name}: cannot store a non-numeric value of type {type(value).__name__}")
        arrays[name] = arr
        kinds[name] = "scalar" if arr.ndim == 0 and not isinstance(value, np.ndarray) else "array"
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "params_class": _qualname(type(params)),
        "fields": kinds,
    }
    if model is not None:
        header["model_class"] = _qualname(type(model))
        frozen = getattr(model, "frozen", None)
        if frozen is not None:
            header["frozen"] = sorted(frozen)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, **arrays, **{_HEADER: np.array(json.dumps(header))})
    return path


def read_npz_with_header(path, fmt: str = FORMAT, version: int = FORMAT_VERSION, key: str = _HEADER, what: str = "statespace parameter file"):
    """``(header, arrays)`` of an ``.npz`` whose ``key`` entry is a JSON header of format ``fmt``
    (no pickle); refuses other files and newer format versions with a :class:`DataError`."""
    path_text = str(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"path: cannot read {path_text!r} as a {what} ({exc})") from exc
    if key not in data:
        raise DataError(f"path: {path_text!r} has no header; is it a {what}?")
    try:
        header = json.loads(str(data.pop(key)))
    except json.JSONDecodeError as exc:
        raise DataError(f"path: corrupted header in {path_text!r}") from exc
    if header.get("format") != fmt:
        raise DataError(f"path: {path_text!r} is not a {what}")
    if header.get("format_version", 0) > version:
        raise DataError(
            f"path: file format version {header['format_version']} is newer than this library reads ({version}); "
            f"it was written by statespace {header.get('library_version')}"
        )
    return header, data


def load_params(path):
    """Read a parameter container written by :func:`save_params`, validating it like construction."""
    header, data = read_npz_with_header(path)
    cls = _resolve(header["params_class"], "path")
    kinds = header["fields"]
    expected = set(getattr(cls, "_fields", ()))
    if set(kinds) != expected:
        raise DataError(f"path: fields {sorted(kinds)} do not match {cls.__name__} fields {sorted(expected)}")
    values = {}
    for name, kind in kinds.items():
        if kind == "none":
            values[name] = None
        elif name not in data:
            raise DataError(f"path: field {name!r} is missing from the file")
        else:
            values[name] = data[name].item() if kind == "scalar" else data[name]
    return cls(**values)


def save_model(path, model) -> Path:
    """Write a model's parameters, class and frozen set (see :func:`save_params`)."""
    return save_params(path, model.params, model=model)


def load_model(path):
    """Rebuild the model saved by :func:`save_model`."""
    header, _ = read_npz_with_header(path)
    if "model_class" not in header:
        raise DataError(f"path: {str(path)!r} holds parameters only; use load_params")
    cls = _resolve(header["model_class"], "path")
    params = load_params(path)
    if "frozen" in header:
        return cls(params=params, frozen=tuple(header["frozen"]))
    return cls(params=params)
