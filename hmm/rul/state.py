r"""Saving and loading fitted RUL pipelines and pools (through :mod:`statespace.persistence`).

A fitted :class:`hmm.rul.RULPipeline` is its feature transform (kept sensor
columns, per-condition normalisation, optional health channel) and its chain
model (:class:`hmm.rul.ARPHMMRUL` or :class:`hmm.rul.DeepARPHMMRUL`): the
model's constructor arguments, its fitted HMM, the filtered training posteriors
its empirical readout was built from, and its recalibrated quantile levels. A
:class:`hmm.rul.RULEnsemble` is its member pipelines, weights, point
forecast and levels. All of it is one tree of the library's single file format
(:mod:`statespace.persistence`: ``.npz`` + JSON header, no pickle); loading
rebuilds every piece through its validating constructor, refits the
(deterministic) readout tables from the stored posteriors, and predicts exactly
as the saved object::

    # needs data: NASA CMAPSS FD001 in the folder named by $CMAPSS_DIR
    import os
    from hmm.rul import ARPHMMRUL, RULPipeline
    from statespace.datasets import load_cmapss
    data = load_cmapss(os.environ["CMAPSS_DIR"], "FD001")
    pipe = RULPipeline(model=ARPHMMRUL(n_states=8, cap=60))
    pipe.fit(data.train.split(data.train.sensors)[:20], data.train.split(data.train.settings)[:20], rng=0, progress=False)
    pipe.save("cmapss_fd001.npz")                  # after fit (and calibrate)
    pipe = RULPipeline.load("cmapss_fd001.npz")    # or load_rul(...): a pipeline or a pool
    pred = pipe.predict(data.test.split(data.test.sensors), data.test.split(data.test.settings))

This module holds the pieces' state (what the classes' persistence hooks store
and check); it imports none of the model modules, which import it.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from statespace.datasets.cmapss.features import OperatingConditionNormalizer, SensorFeatures
from statespace.errors import DataError, ParameterError
from statespace.persistence import SavedModel, _load, save_model
from statespace.prognostics.features import HealthIndicator


class SavedRULModel(SavedModel):
    """``save``/``load`` of :class:`hmm.rul.RULPipeline` and :class:`hmm.rul.RULEnsemble`."""


def save_rul(path, obj) -> Path:
    """Write a fitted :class:`hmm.rul.RULPipeline` or :class:`hmm.rul.RULEnsemble` to ``path``."""
    if not isinstance(obj, SavedRULModel):
        raise ParameterError(f"obj: expected a RULPipeline or RULEnsemble, got {type(obj).__name__}")
    return save_model(path, obj)


def load_rul(path):
    """The pipeline or pool saved at ``path`` (a ``DataError`` naming the file for anything else)."""
    return _load(path, expected=SavedRULModel, what="RULPipeline or RULEnsemble")


# ----------------------------------------------------------------------------- pieces
def constructor_config(obj) -> dict:
    """The constructor arguments of ``obj`` as it stores them (every one must be an attribute)."""
    names = [n for n in inspect.signature(type(obj).__init__).parameters if n != "self"]
    missing = [n for n in names if not hasattr(obj, n)]
    if missing:
        raise ParameterError(f"{type(obj).__name__}: cannot save, no attribute for constructor arguments {missing}")
    return {n: getattr(obj, n) for n in names}


def features_state(feats) -> dict:
    """The fitted ``SensorFeatures`` as a tree."""
    if not hasattr(feats, "columns_"):
        raise ParameterError("pipeline: fit it before saving")
    norm = feats.normalizer_
    state = {
        "config": {
            "min_distinct": feats.min_distinct,
            "n_conditions": feats.n_conditions,
            "baseline_cycles": feats.baseline_cycles,
            "alpha": feats.alpha,
            "health_cap": feats.health_cap,
        },
        "n_sensors": int(feats.n_sensors_),
        "columns": np.asarray(feats.columns_, dtype=np.int64),
        "normalizer": {
            "config": {
                "n_conditions": norm.n_conditions,
                "max_conditions": norm.max_conditions,
                "separation": norm.separation,
            },
            **{name: np.asarray(getattr(norm, name), dtype=np.float64) for name, _ in _NORMALIZER},
        },
    }
    if feats.health_cap is not None:
        state["health"] = {
            "weights": np.asarray(feats.health_.weights_, dtype=np.float64),
            "loc_scale": np.array([feats.health_loc_, feats.health_scale_], dtype=np.float64),
        }
    return state


_NORMALIZER = (("settings_mean_", 1), ("settings_scale_", 1), ("centers_", 2), ("means_", 2), ("scales_", 2))


def _array(value, name: str, ndim: int, kind: str = "f") -> np.ndarray:
    a = np.asarray(value)
    if (
        not isinstance(value, np.ndarray)
        or a.ndim != ndim
        or a.dtype.kind not in (kind + "iu" if kind == "f" else kind)
    ):
        raise DataError(
            f"{name}: expected a {ndim}-dimensional numeric array, got {type(value).__name__} with {a.ndim} dimensions"
        )
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{name}: non-finite values")
    return a


def restore_features(state: dict):
    """The ``SensorFeatures`` of :func:`features_state`, checked piece by piece."""
    feats = SensorFeatures(**state["config"])
    feats.n_sensors_ = int(state["n_sensors"])
    feats.columns_ = _array(state["columns"], "features.columns", 1, "iu")
    if feats.columns_.size == 0 or feats.columns_.min() < 0 or feats.columns_.max() >= feats.n_sensors_:
        raise DataError(
            f"features.columns: kept sensor columns {feats.columns_.tolist()} outside 0..{feats.n_sensors_ - 1}"
        )
    n = state["normalizer"]
    norm = OperatingConditionNormalizer(**n["config"])
    for name, ndim in _NORMALIZER:
        setattr(norm, name, _array(n[name], f"features.normalizer.{name}", ndim).astype(np.float64))
    k, width = len(norm.centers_), len(feats.columns_)
    if norm.means_.shape != (k, width) or norm.scales_.shape != (k, width) or not (norm.scales_ > 0).all():
        raise DataError(
            f"features.normalizer: {k} conditions x {width} sensors expected, got means "
            f"{norm.means_.shape} and scales {norm.scales_.shape} (all positive)"
        )
    feats.normalizer_ = norm
    if ("health" in state) != (feats.health_cap is not None):
        raise DataError("features.health: present exactly when health_cap is set")
    if feats.health_cap is not None:
        feats.health_ = HealthIndicator(cap=feats.health_cap)
        feats.health_.weights_ = _array(state["health"]["weights"], "features.health.weights", 1).astype(np.float64)
        loc_scale = _array(state["health"]["loc_scale"], "features.health.loc_scale", 1)
        if feats.health_.weights_.shape != (width + 1,) or loc_scale.shape != (2,) or not loc_scale[1] > 0:
            raise DataError(
                f"features.health: health channel of {width} sensors expects {width + 1} weights and a "
                f"positive scale, got {feats.health_.weights_.shape[0]} weights and {loc_scale.tolist()}"
            )
        feats.health_loc_, feats.health_scale_ = float(loc_scale[0]), float(loc_scale[1])
    return feats


def chain_state(model) -> dict:
    """A fitted chain RUL model (:class:`hmm.rul.ChainRULModel`) as a tree."""
    hmm = model.hmm
    if hmm is None or hmm.params is None:
        raise ParameterError("pipeline: fit it before saving")
    readout = None
    if model.readout_model is not None:
        ro = model.readout_model
        readout = {"probs": ro.weights_, "lengths": np.diff(np.r_[np.flatnonzero(ro.ages_ == 0), len(ro.ages_)])}
    return {
        "config": constructor_config(model),
        "hmm": hmm,
        "readout": readout,
        "pit_levels": pit_array(model.pit_levels),
    }


def restore_chain(cls, state: dict, hmm_class):
    """The chain RUL model of :func:`chain_state`: constructor, fitted HMM, refitted readout, levels."""
    model = cls(**state["config"])
    if not isinstance(state["hmm"], hmm_class):
        raise DataError(f"hmm: a {cls.__name__} holds a {hmm_class.__name__}, got a {type(state['hmm']).__name__}")
    model.hmm = state["hmm"]
    if model.hmm.params is None:
        raise DataError("hmm: the model has no fitted parameters")
    readout = state["readout"]
    if (readout is None) != (model.readout_model is None):
        raise DataError(
            f"readout: stored posteriors are present exactly when readout='empirical' (readout={model.readout!r})"
        )
    if readout is not None:
        probs = _array(readout["probs"], "readout.probs", 2)
        lengths = _array(readout["lengths"], "readout.lengths", 1, "iu")
        if lengths.sum() != len(probs) or (lengths < 1).any():
            raise DataError(f"readout: engine lengths sum to {lengths.sum()}, not {len(probs)} cycles")
        model.readout_model.fit(np.split(probs.astype(np.float64), np.cumsum(lengths)[:-1]))
    model.pit_levels = levels_from_array(state["pit_levels"])
    return model


def pit_array(levels):
    """Recalibrated ``(nominal, quantile)`` levels as one ``(2, n)`` array (None stays None)."""
    return None if levels is None else np.vstack(levels)


def levels_from_array(a):
    """The ``(nominal, quantile)`` levels of :func:`pit_array`, checked (two increasing rows)."""
    if a is None:
        return None
    a = _array(a, "pit_levels", 2)
    if a.shape[0] != 2 or not (np.all(np.diff(a[0]) > 0) and np.all(np.diff(a[1]) >= 0)):
        raise DataError("pit_levels: recalibrated levels must be two increasing rows (nominal, quantile levels)")
    return a[0].astype(np.float64), a[1].astype(np.float64)
