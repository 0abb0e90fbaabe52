"""One persistence mechanism: round trips of every model class, no code execution on load, malformed files.

Oracles: a loaded model is of the saved model's exact class and computes what the
saved model computes (log-likelihoods, filters, drifts) to the last bit; the
legacy-format fixtures of ``tests/data`` (written by the library before format
version 2, see ``tests/data/make_persistence_v1.py``) load into models equal to
the same literals built with today's constructors, and the legacy RUL pipeline
predicts what it predicted when it was saved; a function named in a file is
replaced by a recorder that must never be called.
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lgssm_dense import random_params

import statespace
from statespace import LinearGaussianSSM, StochasticVolatility, load_model, load_params, save_model, save_params
from statespace.errors import DataError, ParameterError
from statespace.persistence import FORMAT_VERSION, SavedModel, register_loadable

DATA = Path(__file__).resolve().parents[1] / "data"
HEADER = "__statespace_header__"


def _legacy():
    spec = importlib.util.spec_from_file_location("make_persistence_v1", DATA / "make_persistence_v1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- models
def _lg():
    params = random_params(np.random.default_rng(0), d=3, m=2, p=1, T=5, time_varying=("F", "R"))
    return LinearGaussianSSM(params, frozen=("F", "R"))


def _hmms():
    from hmm import ARHMM, HMM, CategoricalHMM, GaussianHMM, ergodic, sticky
    from hmm.emissions import EmissionPrior

    rng = np.random.default_rng(1)
    y = rng.normal(size=(60, 2)).cumsum(axis=0) * 0.1
    u = rng.normal(size=(60, 1))
    g = GaussianHMM(3, 2, covariance_type="tied", input_dim=1, prior=EmissionPrior(1e-4, 1.0, 0.3, 0.5))
    g.fit(y, inputs=u, max_iter=3, rng=0, progress=False)
    a = ARHMM(3, 2, lags=2, transitions="left-to-right", max_jump=2, covariance_type="diag")
    a.fit(y, max_iter=3, rng=0, progress=False)
    c = CategoricalHMM(3, 4, transitions=sticky(ergodic(3), kappa=5.0, alpha=0.5))
    c.fit(rng.integers(0, 4, 80), max_iter=3, rng=0, progress=False)
    h = HMM(2, 1, "gaussian", transitions="ergodic", absorbing=True)
    h.fit(y[:, :1], max_iter=3, rng=0, progress=False)
    return {
        "gaussian": (g, lambda m: m.log_likelihood(y, inputs=u)),
        "ar": (a, lambda m: m.log_likelihood(y)),
        "categorical": (c, lambda m: m.log_likelihood(np.arange(30) % 4)),
        "plain": (h, lambda m: m.log_likelihood(y[:, :1])),
    }


def _same(a, b):
    """Equal trees of arrays, scalars and containers (exact)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (tuple, list)) and not isinstance(a, str):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:
        assert a == b or (a != a and b != b)


def test_lgssm_round_trip_keeps_frozen_time_varying_and_likelihood(tmp_path):
    model = _lg()
    path = save_model(tmp_path / "fit", model)
    assert path.suffix == ".npz"
    back = LinearGaussianSSM.load(path)
    assert type(back) is LinearGaussianSSM and back.frozen == model.frozen
    _same(tuple(back.params), tuple(model.params))
    y, u = np.random.default_rng(2).normal(size=(5, 2)), np.random.default_rng(3).normal(size=(5, 1))
    assert back.log_likelihood(y, u) == model.log_likelihood(y, u)
    np.testing.assert_array_equal(back.smooth(y, u).smoothed_means, model.smooth(y, u).smoothed_means)


def test_sv_round_trip_keeps_floats(tmp_path):
    sv = StochasticVolatility(mu=-0.5, phi=0.9, sigma=0.2)
    back = load_model(sv.save(tmp_path / "sv"))
    assert type(back) is StochasticVolatility and back.params == sv.params and isinstance(back.params.phi, float)
    assert load_params(save_params(tmp_path / "p.npz", sv.params)) == sv.params


@pytest.mark.parametrize("kind", ["gaussian", "ar", "categorical", "plain"])
def test_hmm_family_round_trip_keeps_exact_class_structure_prior_and_likelihood(tmp_path, kind):
    from hmm import HMM

    model, score = _hmms()[kind]
    path = model.save(tmp_path / kind)
    for back in (load_model(path), HMM.load(path), type(model).load(path)):
        assert type(back) is type(model)
        _same(tuple(back.structure), tuple(model.structure))
        assert back.prior == model.prior and back.covariance_type == model.covariance_type
        _same(tuple(back.params), tuple(model.params))
        assert score(back) == score(model)


def test_a_subclass_load_refuses_a_file_of_a_sibling_class(tmp_path):
    from hmm import ARHMM, CategoricalHMM

    models = _hmms()
    path = models["ar"][0].save(tmp_path / "ar")
    with pytest.raises(DataError, match=r"ar\.npz.*hmm\.ARHMM, not a CategoricalHMM"):
        CategoricalHMM.load(path)
    path = models["plain"][0].save(tmp_path / "plain")
    with pytest.raises(DataError, match="not a ARHMM"):
        ARHMM.load(path)
    with pytest.raises(DataError, match="not a LinearGaussianSSM"):
        LinearGaussianSSM.load(path)


@pytest.mark.parametrize("observation", ["exact", "labels", "gaussian"])
def test_markov_jump_round_trip(tmp_path, observation):
    from hmm.markov_jump import ExactStates, GaussianLevels, MarkovJumpProcess, NoisyLabels

    obs = {
        "exact": ExactStates(),
        "labels": NoisyLabels.uniform_replacement(3, 0.1),
        "gaussian": GaussianLevels([0.0, 1.0, 3.0], [0.5, 0.4, 0.3]),
    }[observation]
    model = MarkovJumpProcess([[-1.0, 0.6, 0.4], [0.3, -0.5, 0.2], [0.5, 0.5, -1.0]], [0.2, 0.3, 0.5], obs)
    back = MarkovJumpProcess.load(model.save(tmp_path / "mjp"))
    times = np.array([0.0, 0.3, 1.1, 4.0])
    _, y = model.sample(times=times, rng=0)
    assert type(back) is MarkovJumpProcess and back.log_likelihood(y, times=times) == model.log_likelihood(
        y, times=times
    )


def test_neural_drift_round_trip(tmp_path):
    from smc import NeuralDriftSSM

    y = np.random.default_rng(4).normal(size=(30, 2)).cumsum(axis=0)
    model = NeuralDriftSSM.initialize(y, n_hidden=5, rng=0, input_dim=1)
    back = load_model(model.save(tmp_path / "nd"))
    assert type(back) is NeuralDriftSSM
    _same(tuple(back.params), tuple(model.params))
    grid = np.linspace(-2, 2, 7)[:, None].repeat(2, axis=1)
    h = np.zeros((7, 1))
    np.testing.assert_array_equal(back.drift(grid, h), model.drift(grid, h))


@pytest.mark.parametrize("which", ["iohmm", "learned"])
def test_deep_models_round_trip(tmp_path, which):
    jax = pytest.importorskip("jax")
    from hmm import IOHMM, IOHMMParams, LearnedEmissionHMM, LearnedEmissionParams
    from hmm.deep_support import to_numpy_tree

    rng = np.random.default_rng(5)
    y, u = rng.normal(size=(12, 2)), rng.normal(size=(12, 1))
    if which == "iohmm":
        model = IOHMM(2, 2, 1, hidden=4, state=2, init_options=(("r_min", 0.5),))
        with jax.enable_x64(True):
            net = to_numpy_tree(model.network.init(jax.random.key(0)))
        model.params = model.check_params(
            IOHMMParams([0.4, 0.6], net, [[0.0, 1.0], [1.0, 0.0]], [[1.0, 2.0], [0.5, 1.0]], [0.1], [2.0])
        )
    else:
        model = LearnedEmissionHMM(
            2, 2, 1, hidden=4, state=2, n_layers=1, emission="shared_shift", transitions="left-to-right"
        )
        net = model._init_network(jax.random.key(0))
        model.params = model.check_params(
            LearnedEmissionParams([1.0, 0.0], [[0.9, 0.1], [0.0, 1.0]], net, [0.1, 0.2], [1.5, 0.5], [0.0], [1.0])
        )
    back = type(model).load(model.save(tmp_path / which))
    assert type(back) is type(model) and back.init_options == model.init_options
    _same(back.params._asdict(), model.params._asdict())
    assert back.log_likelihood(y, inputs=u) == model.log_likelihood(y, inputs=u)


# ----------------------------------------------------------------------------- older formats
@pytest.mark.parametrize("name", ["lgssm", "arhmm", "categorical", "mjp", "sv"])
def test_legacy_files_load_into_equal_models(name):
    want = _legacy().legacy_models()[name]
    back = load_model(DATA / f"persistence_v1_{name}.npz")
    assert type(back) is type(want)
    _same(back.params._asdict(), want.params._asdict())
    if name == "lgssm":
        assert back.frozen == want.frozen
    if name in ("arhmm", "categorical"):
        assert back.prior == want.prior
        _same(tuple(back.structure), tuple(want.structure))


def test_legacy_rul_pipeline_predicts_what_it_predicted_when_saved(tmp_path):
    from hmm.rul import RULPipeline

    legacy = _legacy()
    back = RULPipeline.load(DATA / "persistence_v1_rul.npz")
    _, _, tsens, tsets = legacy.rul_engines()
    pred = back.predict(tsens, tsets)
    with np.load(DATA / "persistence_v1_rul_predictions.npz") as want:
        for key in want.files:  # to rounding: the prediction code itself may have changed since
            np.testing.assert_allclose(getattr(pred, key), want[key], rtol=1e-12, atol=1e-12, err_msg=key)
    # re-saved in the current format, it still predicts the same
    again = RULPipeline.load(back.save(tmp_path / "again"))
    np.testing.assert_array_equal(again.predict(tsens, tsets).rul, pred.rul)


def test_legacy_deep_model_file_loads(tmp_path):
    """The former deep-model writer's layout (``field.key.index`` entries) is migrated."""
    jax = pytest.importorskip("jax")
    from hmm import LearnedEmissionHMM, LearnedEmissionParams

    model = LearnedEmissionHMM(2, 1, hidden=3, state=2, n_layers=1, init_options=(("r_min", 0.4),))
    net = model._init_network(jax.random.key(1))
    model.params = model.check_params(LearnedEmissionParams([0.5, 0.5], [[0.8, 0.2], [0.3, 0.7]], net, [0.0], [1.0]))
    arrays = {
        "pi0": model.params.pi0,
        "A": model.params.A,
        "y_loc": model.params.y_loc,
        "y_scale": model.params.y_scale,
        "u_loc": model.params.u_loc,
        "u_scale": model.params.u_scale,
    }

    def flat(tree, prefix):
        if isinstance(tree, dict):
            for k, v in tree.items():
                flat(v, f"{prefix}.{k}")
        elif isinstance(tree, (list, tuple)):
            for i, v in enumerate(tree):
                flat(v, f"{prefix}.{i}")
        else:
            arrays[prefix] = np.asarray(tree, dtype=np.float64)

    flat(model.params.net, "net")
    config = {
        "n_states": 2,
        "obs_dim": 1,
        "input_dim": 0,
        "layer": "lru",
        "hidden": 3,
        "state": 2,
        "n_layers": 1,
        "init_options": [["r_min", 0.4]],
        "min_scale": model.min_scale,
        "emission": "per_state",
        "transitions": "ergodic",
        "max_jump": 1,
    }
    header = {
        "format": "statespace-deep-model",
        "model": "LearnedEmissionHMM",
        "params": "LearnedEmissionParams",
        "config": config,
        "library_version": "0.1.0",
    }
    np.savez(tmp_path / "old.npz", __header__=np.array(json.dumps(header)), **arrays)
    back = LearnedEmissionHMM.load(tmp_path / "old.npz")
    assert back.init_options == model.init_options
    _same(back.params._asdict(), model.params._asdict())
    y = np.random.default_rng(0).normal(size=(9, 1))
    assert back.log_likelihood(y) == model.log_likelihood(y)


# ----------------------------------------------------------------------------- registry
@register_loadable(name="tests.Scaled")
class _Scaled(SavedModel):
    def __init__(self, params, scale=1.0):
        if not scale > 0:
            raise ParameterError(f"scale: expected a positive number, got {scale}")
        self.params, self.scale = params, float(scale)

    def _persist_state(self):
        return {"params": self.params, "scale": self.scale}


def test_a_user_class_registered_as_loadable_round_trips(tmp_path):
    obj = _Scaled({"w": [np.arange(3.0), np.eye(2)], "b": (1, None, "x", float("inf"))}, 2.5)
    back = _Scaled.load(obj.save(tmp_path / "user"))
    assert type(back) is _Scaled and back.scale == 2.5
    _same(back.params, obj.params)
    # its constructor validates on load as on construction
    path = tmp_path / "user.npz"
    with np.load(path) as f:
        entries = dict(f)
    header = json.loads(str(entries[HEADER]))
    header["state"]["scale"] = -1.0
    entries[HEADER] = np.array(json.dumps(header))
    np.savez(tmp_path / "bad.npz", **entries)
    with pytest.raises(DataError, match=r"bad\.npz.*scale: expected a positive number"):
        load_model(tmp_path / "bad.npz")


def test_unregistered_objects_and_taken_names_are_refused(tmp_path):
    class Plain:
        params = None

    with pytest.raises(ParameterError, match="not registered"):
        save_model(tmp_path / "x", Plain())
    with pytest.raises(ParameterError, match=r"params\.f: .*cannot save a function"):
        save_model(tmp_path / "x", _Scaled({"f": lambda: 0}))
    with pytest.raises(ParameterError, match="taken"):
        register_loadable(type("Other", (SavedModel,), {}), name="tests.Scaled")
    with pytest.raises(ParameterError, match="save_params"):
        save_model(tmp_path / "x", _lg().params)
    with pytest.raises(DataError, match="load_params"):
        load_model(save_params(tmp_path / "p", _lg().params))
    with pytest.raises(DataError, match="load_model"):
        load_params(save_model(tmp_path / "m", _lg()))


def test_header_records_class_versions_and_no_pickle(tmp_path):
    path = save_model(tmp_path / "m.npz", _hmms()["ar"][0])
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(str(f[HEADER]))
        assert all(f[k].dtype.kind in "biufU" for k in f.files)
    assert header["class"] == "hmm.ARHMM" and header["format_version"] == FORMAT_VERSION
    assert header["library_version"] == statespace.__version__
    assert header["state"]["params"]["object"] == "hmm.HMMParams"


# ----------------------------------------------------------------------------- nothing is ever called
_TARGETS = [
    "os.abort",
    "os:abort",
    "sys.exit",
    "builtins.eval",
    "builtins:eval",
    "statespace.validation:as_rng",
    "statespace.validation.as_rng",
    "hmm.model:np.random.default_rng",
    "statespace.linear_gaussian._specialise:os.abort",
    "statespace.progress:sys.exit",
    "statespace.persistence:importlib.import_module",
    "statespace.persistence.register_loadable",
    "hmm.model.as_rng",
    "statespace.DataError",
    "__builtins__.eval",
]


@pytest.fixture
def recorders(monkeypatch):
    """``arm()`` replaces functions a file could name by recorders; returns the list of calls."""
    calls = []

    def recorder(name):
        def record(*args, **kwargs):
            calls.append(name)

        return record

    import statespace.validation

    def arm():
        monkeypatch.setattr(os, "abort", recorder("os.abort"))
        monkeypatch.setattr(sys, "exit", recorder("sys.exit"))
        monkeypatch.setattr(builtins, "eval", recorder("eval"))
        monkeypatch.setattr(statespace.validation, "as_rng", recorder("as_rng"))
        monkeypatch.setattr(np.random, "default_rng", recorder("default_rng"))
        return calls

    return arm


@pytest.mark.parametrize("where", ["class", "nested"])
@pytest.mark.parametrize("target", _TARGETS)
def test_a_function_named_in_a_file_is_refused_without_being_called(tmp_path, recorders, target, where):
    path = save_model(tmp_path / "m.npz", _lg())
    with np.load(path) as f:
        entries = dict(f)
    header = json.loads(str(entries[HEADER]))
    if where == "class":
        header["class"] = target
    else:  # the parameter container, an empty state: a callable taking no argument would be called
        header["state"]["params"] = {"object": target, "state": {}}
    entries[HEADER] = np.array(json.dumps(header))
    np.savez(tmp_path / "evil.npz", **entries)
    calls = recorders()
    with pytest.raises(DataError, match=r"evil\.npz.*not a loadable class"):
        load_model(tmp_path / "evil.npz")
    assert calls == []


# ----------------------------------------------------------------------------- malformed files
def _entries(path):
    with np.load(path) as f:
        return dict(f)


def _edit_header(fn):
    def mutate(entries):
        header = json.loads(str(entries[HEADER]))
        out = fn(header)
        entries[HEADER] = np.array(out if isinstance(out, str) else json.dumps(header))

    return mutate


def _key(entries, i=0):
    return sorted(k for k in entries if k != HEADER and entries[k].size > 1)[i]


_MALFORMED = {
    "header not json": (_edit_header(lambda h: "{nope"), "not valid JSON"),
    "header a list": (_edit_header(lambda h: "[1]"), "JSON list, expected an object"),
    "header a number": (_edit_header(lambda h: "3"), "JSON int"),
    "header not a string": (lambda e: e.update({HEADER: np.arange(3.0)}), "not a string"),
    "no header": (lambda e: e.pop(HEADER), "no header"),
    "version a string": (_edit_header(lambda h: h.update(format_version="2")), "'format_version' is a str"),
    "version newer": (_edit_header(lambda h: h.update(format_version=FORMAT_VERSION + 1)), "newer"),
    "format unknown": (_edit_header(lambda h: h.update(format="other")), "unknown format"),
    "class missing": (_edit_header(lambda h: h.pop("class") and None), "lacks the field 'class'"),
    "class a number": (_edit_header(lambda h: h.update({"class": 3})), "'class' is a int"),
    "class unknown": (_edit_header(lambda h: h.update({"class": "statespace.NoSuchModel"})), "not a loadable class"),
    "state a list": (_edit_header(lambda h: h.update(state=[])), "'state' is a list"),
    "node unknown kind": (_edit_header(lambda h: h["state"].update(frozen={"set": []})), "unknown node kind"),
    "node two kinds": (_edit_header(lambda h: h["state"].update(frozen={"list": [], "tuple": []})), "object node"),
    "bad float node": (_edit_header(lambda h: h["state"].update(frozen={"float": "1e999x"})), "float node"),
    "container field missing": (_edit_header(lambda h: h["state"]["params"]["state"].pop("Q")), "fields"),
    "container field extra": (_edit_header(lambda h: h["state"]["params"]["state"].update(Z=1)), "fields"),
    "model argument extra": (_edit_header(lambda h: h["state"].update(colour="red")), "colour"),
    "array missing": (lambda e: e.pop(_key(e)), "missing from the file"),
    "array extra": (lambda e: e.update(extra=np.zeros(2)), "not referenced"),
    "array referenced twice": (
        _edit_header(lambda h: h["state"]["params"]["state"].update(Q=h["state"]["params"]["state"]["P0"])),
        "referenced twice",
    ),
    "array wrong shape": (lambda e: e.update({"params.Q": e["params.Q"][..., :-1]}), "Q: expected"),
    "array of strings": (lambda e: e.update({"params.Q": e["params.Q"].astype(str)}), "dtype <U"),
    "array complex": (lambda e: e.update({"params.Q": e["params.Q"] + 1j}), "dtype complex"),
    "array not positive definite": (lambda e: e.update({"params.Q": -e["params.Q"]}), "Q"),
    "frozen unknown name": (_edit_header(lambda h: h["state"].update(frozen={"tuple": ["nothing"]})), "frozen"),
}


@pytest.mark.parametrize("case", sorted(_MALFORMED))
def test_each_malformed_file_is_a_data_error_naming_the_file(tmp_path, case):
    mutate, message = _MALFORMED[case]
    entries = _entries(save_model(tmp_path / "m.npz", _lg()))
    mutate(entries)
    np.savez(tmp_path / "broken.npz", **entries)
    with pytest.raises(DataError) as info:
        load_model(tmp_path / "broken.npz")
    assert "broken.npz" in str(info.value) and message in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "content", [None, b"", b"hello", b"PK\x03\x04" + bytes(30)], ids=["missing", "empty", "text", "zip-magic"]
)
def test_unreadable_files_are_data_errors_naming_the_file(tmp_path, content):
    path = tmp_path / "junk.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=r"junk\.npz"):
        load_model(path)


def test_a_single_npy_array_is_not_a_model_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"a\.npy.*not an \.npz archive"):
        load_model(tmp_path / "a.npy")


_GOOD = {}


def _good_file(tmp_path_factory):
    if not _GOOD:
        model, score = _hmms()["ar"]
        path = save_model(tmp_path_factory.mktemp("good") / "ar.npz", model)
        _GOOD.update(model=model, score=score, data=path.read_bytes())
    return _GOOD


@settings(max_examples=30, deadline=None)
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 0.9999), st.integers(1, 255)), max_size=3))
def test_corrupted_or_truncated_bytes_give_a_data_error_or_the_same_model(tmp_path_factory, cut, flips):
    good = _good_file(tmp_path_factory)
    data = bytearray(good["data"])
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    data = data[: max(int(cut * len(data)), 0)] if cut < 1.0 else data
    path = tmp_path_factory.mktemp("bad") / "corrupt.npz"
    path.write_bytes(bytes(data))
    try:
        back = load_model(path)
    except DataError as exc:
        assert "corrupt.npz" in str(exc)
        return
    assert type(back) is type(good["model"]) and good["score"](back) == good["score"](good["model"])
