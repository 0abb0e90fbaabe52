"""File safety: every model round-trips, and no malformed file gets past a library error.

The tests never rely on the layout of the header beyond what any ``.npz`` +
JSON format has: an archive entry holding a JSON object. Tampering is generic
(drop a key, rename a class, truncate the archive, flip a byte, swap arrays),
so the same tests hold across format versions.

Oracles: a loaded model is of the saved model's exact class and gives the
saved model's log-likelihood on the same data to the last bit; a tampered file
either loads back that same model (a flip in bytes nobody reads) or raises a
library error whose message names the file; a class name in a file can never
make the library call anything (a probe function planted in a library module
must never run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from robustness_support import (
    FAST,
    ar_hmm,
    categorical_hmm,
    expect_error,
    gaussian_hmm,
    gaussian_hmm_2d,
    left_to_right_hmm,
    lg_model,
    mjp,
    sv_model,
)

import statespace
from statespace import load_model, load_params, save_model
from statespace.errors import StateSpaceError

SAVED = {
    "lg": lambda: lg_model(2),
    "sv": sv_model,
    "gaussian_hmm": gaussian_hmm,
    "gaussian_hmm_2d": gaussian_hmm_2d,
    "arhmm": ar_hmm,
    "categorical_hmm": categorical_hmm,
    "left_to_right_hmm": left_to_right_hmm,
    "mjp_exact": lambda: mjp("exact"),
    "mjp_noisy": lambda: mjp("noisy"),
    "mjp_gauss": lambda: mjp("gauss"),
}

TIMES = np.array([0.0, 0.4, 1.5, 1.7, 3.0, 10.0])


def _data(name, model):
    if name.startswith("mjp"):
        return np.asarray(model.sample(times=TIMES, rng=1)[1], dtype=float).ravel()
    return np.asarray(model.sample(6, rng=1)[1], dtype=float)


def _score(name, model, y):
    if name == "sv":  # no exact likelihood: the particle filter with a fixed seed is deterministic
        import smc

        return smc.bootstrap_filter(model, y, n_particles=32, rng=0).log_likelihood
    if name.startswith("mjp"):
        return model.log_likelihood(y, times=TIMES)
    return model.log_likelihood(y)


def _saved(tmp_path, name):
    model = SAVED[name]()
    path = Path(save_model(tmp_path / f"{name}.npz", model))
    return model, path


# =========================================================================== class 3: one mechanism, every model
@pytest.mark.issue18(3, "result")
@pytest.mark.parametrize("name", sorted(SAVED))
def test_save_model_round_trip_keeps_exact_class_and_likelihood(tmp_path, name):
    model, path = _saved(tmp_path, name)
    with np.load(path, allow_pickle=False) as f:  # no pickle: every entry reads without it
        for key in f.files:
            assert f[key].dtype != object
    loaded = load_model(path)
    assert type(loaded) is type(model)
    y = _data(name, model)
    assert _score(name, loaded, y) == _score(name, model, y)


@pytest.mark.issue18(3, "result")
@pytest.mark.parametrize("name", ["gaussian_hmm", "arhmm", "categorical_hmm", "left_to_right_hmm"])
def test_hmm_save_method_keeps_exact_class(tmp_path, name):
    model = SAVED[name]()
    path = tmp_path / f"{name}.npz"
    model.save(path)
    path = path if path.exists() else Path(str(path) + ".npz")
    loaded = type(model).load(path)
    assert type(loaded) is type(model)
    y = _data(name, model)
    assert loaded.log_likelihood(y) == model.log_likelihood(y)
    # the generic loader reads the same file
    assert type(load_model(path)) is type(model)


@pytest.mark.issue18(3, "result")
def test_frozen_set_survives_the_round_trip(tmp_path):
    model = lg_model(1)
    fit = model.fit(model.sample(20, rng=0)[1], frozen=("F", "H"), max_iter=3, progress=False)
    fitted = type(model)(params=fit.params, frozen=("F", "H"))
    loaded = load_model(save_model(tmp_path / "lg.npz", fitted))
    assert set(loaded.frozen) == {"F", "H"}


@pytest.mark.issue18(3, "result")
@pytest.mark.parametrize("name", ["lg", "sv", "arhmm", "categorical_hmm", "mjp_noisy", "mjp_gauss"])
def test_save_params_round_trip(tmp_path, name):
    model = SAVED[name]()
    path = Path(statespace.save_params(tmp_path / f"{name}_params", model.params))
    loaded = load_params(path)
    assert type(loaded) is type(model.params)
    for a, b in zip(_flat(loaded), _flat(model.params)):
        np.testing.assert_array_equal(a, b)


def _flat(obj):
    if hasattr(obj, "_fields"):
        for f in obj._fields:
            yield from _flat(getattr(obj, f))
    elif obj is not None and not isinstance(obj, str):
        try:
            yield np.asarray(obj, dtype=float)
        except (TypeError, ValueError):
            yield np.asarray(repr(obj))


@pytest.mark.issue18(3, "error")
def test_class_load_refuses_a_file_of_another_class(tmp_path):
    from hmm import CategoricalHMM

    _, path = _saved(tmp_path, "gaussian_hmm")
    expect_error(str(path.name), CategoricalHMM.load, path)
    _, lg_path = _saved(tmp_path, "lg")
    expect_error(str(lg_path.name), CategoricalHMM.load, lg_path)


@pytest.mark.issue18(2, "error")
def test_params_file_and_model_file_are_not_confused(tmp_path):
    model, path = _saved(tmp_path, "lg")
    p = Path(statespace.save_params(tmp_path / "p.npz", model.params))
    expect_error(p.name, load_model, p)
    # a model file read as parameters either gives the parameters or a named error
    try:
        params = load_params(path)
    except StateSpaceError as exc:
        assert path.name in str(exc)
    else:
        np.testing.assert_array_equal(params.F, model.params.F)


# =========================================================================== class 2: malformed files
def _entries(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _header_key(entries):
    for k, v in entries.items():
        if v.dtype.kind == "U" and v.ndim == 0:
            try:
                if isinstance(json.loads(str(v)), dict):
                    return k
            except json.JSONDecodeError:
                continue
    raise AssertionError(f"no JSON header among {sorted(entries)}")


def _rewrite(path, entries):
    out = path.with_name("tampered_" + path.name)
    np.savez(out, **entries)
    return out


def _expect_file_error(path, loader=load_model):
    return expect_error((path.name,), loader, path)


@pytest.mark.issue18(2, "error")
@pytest.mark.parametrize(
    "content", [b"", b"not a zip file", b"PK\x03\x04" + b"\x00" * 40], ids=["empty", "text", "zip_magic_only"]
)
def test_garbage_files(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    _expect_file_error(path)


@pytest.mark.issue18(2, "error")
def test_missing_file_and_directory(tmp_path):
    _expect_file_error(tmp_path / "absent.npz")
    d = tmp_path / "adir.npz"
    d.mkdir()
    _expect_file_error(d)


@pytest.mark.issue18(2, "error")
@pytest.mark.parametrize("name", ["lg", "arhmm", "mjp_noisy"])
@FAST
@given(fraction=st.floats(0.0, 0.999))
def test_truncated_files(tmp_path_factory, name, fraction):
    tmp = tmp_path_factory.mktemp("trunc")
    _, path = _saved(tmp, name)
    data = path.read_bytes()
    path.write_bytes(data[: int(fraction * len(data))])
    _expect_file_error(path)


@pytest.mark.issue18(2, "result")
@pytest.mark.parametrize("name", ["lg", "categorical_hmm", "mjp_gauss"])
@FAST
@given(where=st.floats(0.0, 0.999), xor=st.integers(1, 255))
def test_flipped_byte_loads_the_same_model_or_fails_naming_the_file(tmp_path_factory, name, where, xor):
    tmp = tmp_path_factory.mktemp("flip")
    model, path = _saved(tmp, name)
    data = bytearray(path.read_bytes())
    i = int(where * len(data))
    data[i] ^= xor
    path.write_bytes(bytes(data))
    try:
        loaded = load_model(path)
    except StateSpaceError as exc:
        assert path.name in str(exc), str(exc)
        return
    except BaseException as exc:  # noqa: BLE001
        pytest.fail(f"byte {i} flipped: raw {type(exc).__name__}: {exc}")
    assert type(loaded) is type(model)
    y = _data(name, model)
    assert _score(name, loaded, y) == _score(name, model, y), f"byte {i} flipped: a different model loaded silently"


@pytest.mark.issue18(2, "error")
@pytest.mark.parametrize("name", ["lg", "gaussian_hmm", "mjp_noisy"])
@pytest.mark.parametrize("header", ["{", "[]", "null", '"text"', "{}", "42", '{"format": 3}'])
def test_broken_header_json(tmp_path, name, header):
    _, path = _saved(tmp_path, name)
    entries = _entries(path)
    entries[_header_key(entries)] = np.array(header)
    _expect_file_error(_rewrite(path, entries))


@pytest.mark.issue18(2, "error")
@pytest.mark.parametrize("name", ["lg", "arhmm", "mjp_noisy"])
def test_header_missing(tmp_path, name):
    _, path = _saved(tmp_path, name)
    entries = _entries(path)
    del entries[_header_key(entries)]
    _expect_file_error(_rewrite(path, entries))


def _paths(node, prefix=()):
    """Every (path, value) in a JSON tree."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _set(tree, path, value):
    import copy

    tree = copy.deepcopy(tree)
    node = tree
    for p in path[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


_DELETE = object()


def _get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def _header_mutations(header):
    """Deletions of every dict key and type changes of every leaf (bounded for speed)."""
    out = []
    for path, value in _paths(header):
        if not path:
            continue
        if isinstance(path[-1], str):
            out.append(("delete " + "/".join(map(str, path)), _set(header, path, _DELETE)))
        if isinstance(value, (str, int, float, bool)) or value is None:
            for bad in ([], {"x": 1}, -1, 10**30, "zz", None, 1.5):
                if bad != value and type(bad) is not type(value):
                    out.append((f"set {'/'.join(map(str, path))} = {bad!r}", _set(header, path, bad)))
                    break
    return out


@pytest.mark.issue18(2, "error")
@pytest.mark.parametrize("name", ["lg", "arhmm", "categorical_hmm", "mjp_noisy"])
def test_every_header_key_deleted_or_retyped(tmp_path, name):
    """Each deletion or type change either loads the same model or raises a library error naming the file."""
    model, path = _saved(tmp_path, name)
    entries = _entries(path)
    key = _header_key(entries)
    header = json.loads(str(entries[key]))
    y = _data(name, model)
    want = _score(name, model, y)
    failures = []
    for what, mutated in _header_mutations(header):
        tampered = dict(entries)
        tampered[key] = np.array(json.dumps(mutated))
        target = _rewrite(path, tampered)
        try:
            loaded = load_model(target)
        except StateSpaceError as exc:
            if target.name not in str(exc):
                failures.append(f"{what}: error does not name the file: {exc}")
            continue
        except BaseException as exc:  # noqa: BLE001
            failures.append(f"{what}: raw {type(exc).__name__}: {exc}")
            continue
        if type(loaded) is not type(model) or _score(name, loaded, y) != want:
            failures.append(f"{what}: loaded a different model ({type(loaded).__name__}) silently")
    assert not failures, f"{len(failures)} tampered headers not caught:\n" + "\n".join(failures[:20])


@pytest.mark.issue18(2, "error")
@pytest.mark.parametrize("name", ["lg", "arhmm", "mjp_noisy"])
@pytest.mark.parametrize("change", ["drop", "string", "nan", "reshape", "extra"])
def test_array_entries_tampered(tmp_path, name, change):
    model, path = _saved(tmp_path, name)
    entries = _entries(path)
    key = _header_key(entries)
    arrays = sorted(k for k in entries if k != key and entries[k].size > 1)
    target_key = arrays[0]
    if change == "drop":
        del entries[target_key]
    elif change == "string":
        entries[target_key] = np.array(["a"] * entries[target_key].size)
    elif change == "nan":
        entries[target_key] = np.full(entries[target_key].shape, np.nan)
    elif change == "reshape":
        entries[target_key] = entries[target_key].ravel()[:-1]
    else:
        entries["zz_extra"] = np.zeros(3)
    target = _rewrite(path, entries)
    if change == "extra":  # an unreferenced entry: refused, or ignored with the same model loaded
        try:
            loaded = load_model(target)
        except StateSpaceError as exc:
            assert target.name in str(exc), str(exc)
            return
        y = _data(name, model)
        assert _score(name, loaded, y) == _score(name, model, y)
        return
    _expect_file_error(target)


@pytest.mark.issue18(2, "error")
@pytest.mark.parametrize("name", ["lg", "mjp_noisy"])
def test_newer_format_version_is_refused(tmp_path, name):
    _, path = _saved(tmp_path, name)
    entries = _entries(path)
    key = _header_key(entries)
    header = json.loads(str(entries[key]))
    version_keys = [k for k in header if "version" in k and "format" in k]
    assert version_keys, f"no format version in the header {sorted(header)}"
    for k in version_keys:
        header[k] = 999
    entries[key] = np.array(json.dumps(header))
    exc = _expect_file_error(_rewrite(path, entries))
    assert "999" in str(exc), str(exc)


# =========================================================================== class 1: files never call anything
_PROBE_CALLS = []


def _probe(*args, **kwargs):
    _PROBE_CALLS.append((args, kwargs))
    return statespace.LinearGaussianSSM  # harmless if someone calls its result


PROBE_NAMES = [
    "statespace.errors:_robustness_probe",  # module:attribute
    "statespace.errors._robustness_probe",  # dotted
    "statespace._robustness_probe",  # registry-style top-level name
    "statespace.persistence:np.random.seed",  # a real function through the module's imports
    "statespace.persistence:importlib.import_module",
    "statespace.validation:np.errstate",
    "statespace.errors:DataError",  # a library class that is not a loadable model
    "statespace.LGSSMParams",  # a loadable container named where a model is expected
    "hmm.markov_jump.simulation:gillespie",  # a library function
]


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.setattr(statespace.errors, "_robustness_probe", _probe, raising=False)
    monkeypatch.setattr(statespace, "_robustness_probe", _probe, raising=False)
    _PROBE_CALLS.clear()
    yield _PROBE_CALLS


def _class_name_paths(header, names):
    for path, value in _paths(header):
        if path and isinstance(value, str) and any(n in value for n in names):
            yield path


@pytest.mark.issue18(1, "error")
@pytest.mark.parametrize("target", PROBE_NAMES)
@pytest.mark.parametrize("name", ["lg", "gaussian_hmm", "mjp_noisy"])
def test_class_names_in_a_file_never_call_anything(tmp_path, probe, name, target):
    model, path = _saved(tmp_path, name)
    entries = _entries(path)
    key = _header_key(entries)
    header = json.loads(str(entries[key]))
    names = {type(model).__name__, type(model.params).__name__}
    spots = list(_class_name_paths(header, names))
    assert spots, f"no class name of {names} found in the header"
    state = np.random.get_state()[1].copy()
    for spot in spots:
        if _get(header, spot) == target:
            continue
        tampered = dict(entries)
        tampered[key] = np.array(json.dumps(_set(header, spot, target)))
        target_path = _rewrite(path, tampered)
        try:
            loaded = load_model(target_path)
        except StateSpaceError as exc:
            assert target_path.name in str(exc), str(exc)
        except BaseException as exc:  # noqa: BLE001 - SystemExit included
            pytest.fail(f"{spot} -> {target!r}: raw {type(exc).__name__}: {exc}")
        else:
            pytest.fail(f"{spot} -> {target!r}: loaded {type(loaded).__name__} instead of refusing")
        assert not probe, f"{spot} -> {target!r}: loading called a function named by the file"
        np.testing.assert_array_equal(np.random.get_state()[1], state, err_msg="loading called np.random.seed")


@pytest.mark.issue18(1, "error")
@pytest.mark.parametrize("target", PROBE_NAMES[:3])
def test_hmm_load_never_calls_anything(tmp_path, probe, target):
    """The model's own load method goes through the same guarded reader."""
    model, path = _saved(tmp_path, "arhmm")
    entries = _entries(path)
    key = _header_key(entries)
    header = json.loads(str(entries[key]))
    for spot in _class_name_paths(header, {"ARHMM", "HMMParams"}):
        tampered = dict(entries)
        tampered[key] = np.array(json.dumps(_set(header, spot, target)))
        tp = _rewrite(path, tampered)
        expect_error(tp.name, type(model).load, tp)
        assert not probe
