"""Saving and loading parameters: round trips, validation on load, no pickle."""

import json

import numpy as np
import pytest

from lgssm_dense import random_params
from statespace import LinearGaussianSSM, StochasticVolatility, load_model, load_params, save_model, save_params
from statespace.errors import DataError, ParameterError, StateSpaceError


def test_lgssm_model_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    params = random_params(rng, d=3, m=2, p=1, T=4, time_varying=("F", "R"))
    model = LinearGaussianSSM(params, frozen=("F", "R"))
    path = save_model(tmp_path / "fit", model)
    assert path.suffix == ".npz"
    back = load_model(path)
    assert type(back) is LinearGaussianSSM and back.frozen == model.frozen
    for a, b in zip(back.params, params):
        np.testing.assert_array_equal(a, b)
    # and it computes the same thing
    y = rng.normal(size=(4, 2))
    u = rng.normal(size=(4, 1))
    assert back.log_likelihood(y, u) == model.log_likelihood(y, u)


def test_sv_params_round_trip_keeps_floats(tmp_path):
    sv = StochasticVolatility(mu=-0.5, phi=0.9, sigma=0.2)
    save_model(tmp_path / "sv.npz", sv)
    back = load_model(tmp_path / "sv.npz")
    assert back.params == sv.params and isinstance(back.params.phi, float)
    p = load_params(tmp_path / "sv.npz")
    assert p == sv.params


def test_no_pickle_and_header_contents(tmp_path):
    model = LinearGaussianSSM(random_params(np.random.default_rng(1), d=2, m=2))
    path = save_model(tmp_path / "m.npz", model)
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(str(f["__statespace_header__"]))
        assert all(f[k].dtype != object for k in f.files)
    import statespace

    assert header["library_version"] == statespace.__version__
    assert header["model_class"].endswith("LinearGaussianSSM")
    assert set(header["fields"]) == {"m0", "P0", "F", "B", "Q", "H", "D", "R"}


def test_load_validates_like_construction(tmp_path):
    model = LinearGaussianSSM(random_params(np.random.default_rng(2), d=2, m=2))
    path = save_model(tmp_path / "m.npz", model)
    with np.load(path) as f:
        data = dict(f)
    data["Q"] = -np.eye(2)
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(ParameterError, match="Q"):
        load_model(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda h, d: h.update(params_class="os:system"), "refusing"),
        (lambda h, d: h.update(format="other"), "not a statespace"),
        (lambda h, d: h.update(format_version=99), "newer"),
        (lambda h, d: d.pop("F"), "F"),
        (lambda h, d: h["fields"].pop("F"), "fields"),
    ],
)
def test_bad_files_raise(tmp_path, mutate, message):
    model = LinearGaussianSSM(random_params(np.random.default_rng(3), d=2, m=2))
    path = save_model(tmp_path / "m.npz", model)
    with np.load(path) as f:
        data = dict(f)
    header = json.loads(str(data["__statespace_header__"]))
    mutate(header, data)
    data["__statespace_header__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(StateSpaceError, match=message):
        load_model(tmp_path / "bad.npz")


def test_unreadable_and_foreign_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="path"):
        load_params(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(DataError, match="header"):
        load_params(tmp_path / "plain.npz")
    sv = StochasticVolatility()
    save_params(tmp_path / "p.npz", sv.params)
    with pytest.raises(DataError, match="load_params"):
        load_model(tmp_path / "p.npz")
