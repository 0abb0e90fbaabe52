"""Saved and reloaded RUL pipelines and pools predict exactly as the fitted originals."""

import json

import numpy as np
import pytest

from hmm.rul import ARPHMMRUL, RULEnsemble, RULPipeline, load_rul, save_rul
from statespace.datasets.cmapss import SensorFeatures
from statespace.errors import DataError, ParameterError

HEADER = "__statespace_header__"


def _engines(rng, n=6):
    """Run-to-failure engines: 2 sensors drifting as the end nears and a constant one, 3 noisy settings
    (the sizes of tests/hmm/test_deep_rul.py, so that the deep model's compiled functions are reused)."""
    sens, sets = [], []
    for T in rng.integers(45, 70, n):
        wear = np.linspace(0.0, 1.0, T) ** 2
        x = np.column_stack([wear, -wear, np.zeros(T)]) + 0.05 * rng.standard_normal((T, 3))
        x[:, 2] = 1.0
        sens.append(x)
        sets.append(0.01 * rng.standard_normal((T, 3)))
    return sens, sets


def _classical(readout="empirical", health_cap=None):
    return RULPipeline(
        SensorFeatures(baseline_cycles=5, health_cap=health_cap),
        ARPHMMRUL(
            n_states=5,
            lags=0,
            cap=40.0,
            softness=0.3,
            covariance_type="diag",
            horizon=60,
            max_iter=4,
            readout=readout,
            age_bandwidth=8.0,
        ),
    )


def _assert_same_predictions(a, b):
    for field in ("rul", "q05", "q50", "q95", "mean", "state_probs"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    for da, db in zip(a.distributions, b.distributions):
        np.testing.assert_array_equal(da.pmf, db.pmf)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    train, test = _engines(rng), _engines(rng, 4)
    test = ([s[: len(s) // 2] for s in test[0]], [s[: len(s) // 2] for s in test[1]])
    return train, test


@pytest.mark.parametrize("readout, health_cap", [("empirical", 40.0), ("phase_type", None)])
def test_classical_pipeline_round_trip(data, tmp_path, readout, health_cap):
    (sens, sets), test = data
    pipe = _classical(readout, health_cap)
    pipe.fit(sens, sets, rng=0, progress=False)
    pred = pipe.predict(*test)
    pipe.model.calibrate(pred.distributions, np.array([10, 20, 30, 25]), rng=0)
    path = pipe.save(tmp_path / "pipe")
    assert path.suffix == ".npz"
    back = RULPipeline.load(path)
    assert type(back.model) is ARPHMMRUL and back.model.readout == readout
    np.testing.assert_array_equal(back.features.columns_, pipe.features.columns_)
    assert back.features.n_features == pipe.features.n_features == 2 + (health_cap is not None)
    for a, b in zip(back.transform(*test), pipe.transform(*test)):
        np.testing.assert_array_equal(a, b)
    _assert_same_predictions(back.predict(*test), pipe.predict(*test))
    with pytest.raises(DataError, match="not a RULEnsemble"):
        RULEnsemble.load(path)


def test_pool_with_a_deep_member_round_trip(data, tmp_path):
    pytest.importorskip("jax")
    from hmm.rul import DeepARPHMMRUL

    (sens, sets), test = data
    deep = RULPipeline(
        SensorFeatures(baseline_cycles=5),
        DeepARPHMMRUL(
            n_states=5,
            cap=40.0,
            softness=0.3,
            horizon=60,
            max_jump=1,
            hidden=4,
            state=2,
            max_iter=1,
            m_steps=2,
            init_iter=2,
            readout="empirical",
            age_bandwidth=8.0,
        ),
    )
    pool = RULEnsemble([deep, _classical()], weights=[0.6, 0.4])
    pool.fit(sens, sets, rng=1, progress=False)
    pred = pool.predict(*test)
    pool.calibrate(pred.distributions, np.array([10, 20, 30, 25]), rng=0)
    back = load_rul(save_rul(tmp_path / "pool.npz", pool))
    assert isinstance(back, RULEnsemble) and type(back.members[0].model) is DeepARPHMMRUL
    np.testing.assert_array_equal(back.weights, pool.weights)
    _assert_same_predictions(back.predict(*test), pool.predict(*test))


def _entries(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _with_header(entries, edit):
    header = json.loads(str(entries[HEADER]))
    edit(header)
    return dict(entries, **{HEADER: np.array(json.dumps(header))})


def test_bad_files_and_unfitted_models(data, tmp_path):
    (sens, sets), _ = data
    with pytest.raises(ParameterError, match="fit it before saving"):
        save_rul(tmp_path / "x.npz", _classical())
    with pytest.raises(ParameterError, match="expected a RULPipeline or RULEnsemble"):
        save_rul(tmp_path / "x.npz", "model")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(DataError, match=r"other\.npz.*no header"):
        load_rul(tmp_path / "other.npz")
    pipe = _classical()
    pipe.fit(sens, sets, rng=0, progress=False)
    arrays = _entries(save_rul(tmp_path / "pipe.npz", pipe))
    # a class name is looked up among the registered loadable classes only, never imported
    np.savez(tmp_path / "evil.npz", **_with_header(arrays, lambda h: h["state"]["model"].update(object="os.system")))
    with pytest.raises(DataError, match=r"evil\.npz.*'os.system' is not a loadable class"):
        load_rul(tmp_path / "evil.npz")
    # a tampered readout: lengths that do not add up to the stored cycles
    np.savez(tmp_path / "bad.npz", **dict(arrays, **{"model.readout.lengths": arrays["model.readout.lengths"][:-1]}))
    with pytest.raises(DataError, match=r"bad\.npz.*readout: engine lengths"):
        load_rul(tmp_path / "bad.npz")
    # an invalid configuration fails as the constructor would, as an error naming the file
    cfg = _with_header(arrays, lambda h: h["state"]["model"]["state"]["config"]["dict"].update(point="mode"))
    np.savez(tmp_path / "cfg.npz", **cfg)
    with pytest.raises(DataError, match=r"cfg\.npz.*point"):
        load_rul(tmp_path / "cfg.npz")
    # a file of another model class
    hmm_path = pipe.model.hmm.save(tmp_path / "hmm")
    with pytest.raises(DataError, match=r"hmm\.npz.*not a RULPipeline or RULEnsemble"):
        load_rul(hmm_path)


def test_tampered_health_channel_is_refused(data, tmp_path):
    (sens, sets), _ = data
    pipe = _classical(health_cap=40.0)
    pipe.fit(sens, sets, rng=0, progress=False)
    arrays = _entries(save_rul(tmp_path / "pipe.npz", pipe))
    np.savez(
        tmp_path / "bad.npz", **dict(arrays, **{"features.health.weights": arrays["features.health.weights"][:-1]})
    )
    with pytest.raises(DataError, match="health channel of 2 sensors expects 3 weights"):
        load_rul(tmp_path / "bad.npz")

    def drop_health(h):  # the model then reads one column more than the transform gives
        h["state"]["features"]["dict"]["config"]["dict"]["health_cap"] = None
        del h["state"]["features"]["dict"]["health"]

    cfg = {k: v for k, v in _with_header(arrays, drop_health).items() if not k.startswith("features.health")}
    np.savez(tmp_path / "cfg.npz", **cfg)
    with pytest.raises(DataError, match="the model reads 3 features, the transform gives 2"):
        load_rul(tmp_path / "cfg.npz")
