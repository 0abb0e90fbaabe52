r"""Save and load fitted RUL pipelines and pools as one portable ``.npz`` (never pickle).

A fitted :class:`hmm.rul.RULPipeline` is its feature transform (kept sensor
columns, per-condition normalisation) and its chain model (an
:class:`hmm.rul.ARPHMMRUL` or :class:`hmm.deep_rul.DeepARPHMMRUL`): the
model's configuration, its fitted HMM, the filtered training posteriors its
empirical readout was built from, and its recalibrated quantile levels. A
:class:`hmm.rul_ensemble.RULEnsemble` is its members, weights, point forecast
and levels. The file holds a JSON header (format, library version, every
configuration) and one array per fitted quantity; each member's HMM is a
nested ``.npz`` written by that HMM's own ``save``. Loading rebuilds every
piece through its validating constructor, refits the (deterministic) readout
tables from the stored posteriors, and predicts exactly as the saved object::

    from hmm.rul_io import save_rul, load_rul
    save_rul("cmapss_fd001.npz", pipeline_or_pool)      # after fit (and calibrate)
    model = load_rul("cmapss_fd001.npz")
    pred = model.predict(test_sensors, test_settings)
"""

from __future__ import annotations

import inspect
import io
import json
from pathlib import Path

import numpy as np

from statespace.errors import DataError, ParameterError
from statespace.persistence import read_npz_with_header

FORMAT = "statespace-rul"
FORMAT_VERSION = 1
_HEADER = "__header__"


def _model_classes() -> dict:
    from .deep_rul import DeepARPHMMRUL
    from .rul import ARPHMMRUL

    return {"ARPHMMRUL": ARPHMMRUL, "DeepARPHMMRUL": DeepARPHMMRUL}


def _constructor_config(obj) -> dict:
    """The constructor arguments of ``obj`` as it stores them (every one must be an attribute)."""
    names = [n for n in inspect.signature(type(obj).__init__).parameters if n != "self"]
    missing = [n for n in names if not hasattr(obj, n)]
    if missing:
        raise ParameterError(f"{type(obj).__name__}: cannot save, no attribute for constructor arguments {missing}")
    return {n: getattr(obj, n) for n in names}


def _blob(save) -> np.ndarray:
    buf = io.BytesIO()
    save(buf)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


# ----------------------------------------------------------------------------- one pipeline
def _pipeline_state(pipe, prefix: str, arrays: dict) -> dict:
    feats, model = pipe.features, pipe.model
    if not hasattr(feats, "columns_") or model.hmm is None or model.hmm.params is None:
        raise ParameterError("pipeline: fit it before saving")
    norm = feats.normalizer_
    for name in ("settings_mean_", "settings_scale_", "centers_", "means_", "scales_"):
        arrays[f"{prefix}norm.{name}"] = np.asarray(getattr(norm, name), dtype=np.float64)
    arrays[f"{prefix}columns"] = np.asarray(feats.columns_, dtype=np.int64)
    if feats.health_cap is not None:
        arrays[f"{prefix}health.weights"] = np.asarray(feats.health_.weights_, dtype=np.float64)
        arrays[f"{prefix}health.loc_scale"] = np.array([feats.health_loc_, feats.health_scale_])
    arrays[f"{prefix}hmm"] = _blob(model.hmm.save)
    if model.readout_model is not None:
        ro = model.readout_model
        arrays[f"{prefix}readout.probs"] = ro.weights_
        arrays[f"{prefix}readout.lengths"] = np.diff(np.r_[np.flatnonzero(ro.ages_ == 0), len(ro.ages_)])
    if model.pit_levels is not None:
        arrays[f"{prefix}pit"] = np.vstack(model.pit_levels)
    return {
        "features": {"min_distinct": feats.min_distinct, "n_conditions": feats.n_conditions,
                     "baseline_cycles": feats.baseline_cycles, "alpha": feats.alpha, "health_cap": feats.health_cap,
                     "n_sensors": feats.n_sensors_,
                     "normalizer": {"n_conditions": norm.n_conditions, "max_conditions": norm.max_conditions,
                                    "separation": norm.separation}},
        "model": {"class": type(model).__name__, "config": _constructor_config(model)},
    }


def _array(arrays: dict, key: str, ndim: int) -> np.ndarray:
    if key not in arrays:
        raise DataError(f"path: the file lacks {key!r}")
    a = arrays[key]
    if a.ndim != ndim:
        raise DataError(f"path: {key!r} has {a.ndim} dimensions, expected {ndim}")
    return a


def _restore_pipeline(spec: dict, prefix: str, arrays: dict):
    from statespace.datasets.cmapss import OperatingConditionNormalizer
    from statespace.prognostics import HealthIndicator, SensorFeatures

    from .deep_rul import DeepARPHMMRUL
    from .learned_emission import LearnedEmissionHMM
    from .model import HMM
    from .rul import RULPipeline

    f = spec["features"]
    feats = SensorFeatures(f["min_distinct"], f["n_conditions"], f["baseline_cycles"], f["alpha"], f.get("health_cap"))
    feats.n_sensors_ = int(f["n_sensors"])
    feats.columns_ = _array(arrays, f"{prefix}columns", 1)
    if feats.columns_.size == 0 or feats.columns_.min() < 0 or feats.columns_.max() >= feats.n_sensors_:
        raise DataError(f"path: kept sensor columns {feats.columns_.tolist()} outside 0..{feats.n_sensors_ - 1}")
    n = f["normalizer"]
    norm = OperatingConditionNormalizer(n["n_conditions"], n["max_conditions"], n["separation"])
    for name, ndim in (("settings_mean_", 1), ("settings_scale_", 1), ("centers_", 2), ("means_", 2), ("scales_", 2)):
        setattr(norm, name, _array(arrays, f"{prefix}norm.{name}", ndim))
    k, width = len(norm.centers_), len(feats.columns_)
    if norm.means_.shape != (k, width) or norm.scales_.shape != (k, width) or not (norm.scales_ > 0).all():
        raise DataError(f"path: normalisation of {k} conditions x {width} sensors expected, got means "
                        f"{norm.means_.shape} and scales {norm.scales_.shape} (all positive)")
    feats.normalizer_ = norm
    if feats.health_cap is not None:
        feats.health_ = HealthIndicator(cap=feats.health_cap)
        feats.health_.weights_ = _array(arrays, f"{prefix}health.weights", 1)
        loc_scale = _array(arrays, f"{prefix}health.loc_scale", 1)
        if feats.health_.weights_.shape != (width + 1,) or loc_scale.shape != (2,) or not loc_scale[1] > 0:
            raise DataError(f"path: health channel of {width} sensors expects {width + 1} weights and a positive "
                            f"scale, got {feats.health_.weights_.shape[0]} weights and {loc_scale.tolist()}")
        feats.health_loc_, feats.health_scale_ = float(loc_scale[0]), float(loc_scale[1])

    classes = _model_classes()
    m = spec["model"]
    if m.get("class") not in classes:
        raise DataError(f"path: unknown RUL model class {m.get('class')!r}; expected one of {sorted(classes)}")
    model = classes[m["class"]](**m["config"])
    loader = LearnedEmissionHMM.load if isinstance(model, DeepARPHMMRUL) else HMM.load
    model.hmm = loader(io.BytesIO(_array(arrays, f"{prefix}hmm", 1).tobytes()))
    if model.hmm.obs_dim != feats.n_features:
        raise DataError(f"path: the model reads {model.hmm.obs_dim} features, the transform gives {feats.n_features}")
    if model.readout_model is not None:
        probs, lengths = _array(arrays, f"{prefix}readout.probs", 2), _array(arrays, f"{prefix}readout.lengths", 1)
        if lengths.sum() != len(probs):
            raise DataError(f"path: readout engine lengths sum to {lengths.sum()}, not {len(probs)} cycles")
        model.readout_model.fit(np.split(probs, np.cumsum(lengths)[:-1]))
    if f"{prefix}pit" in arrays:
        model.pit_levels = _pit(arrays[f"{prefix}pit"])
    return RULPipeline(feats, model)


def _pit(a: np.ndarray):
    if a.ndim != 2 or a.shape[0] != 2 or not (np.all(np.diff(a[0]) > 0) and np.all(np.diff(a[1]) >= 0)):
        raise DataError("path: recalibrated levels must be two increasing rows (nominal, quantile levels)")
    return a[0].copy(), a[1].copy()


# ----------------------------------------------------------------------------- public
class SavedRULModel:
    """``save`` and ``load`` for :class:`hmm.rul.RULPipeline` and :class:`hmm.rul_ensemble.RULEnsemble`."""

    def save(self, path) -> Path:
        """Write the fitted object to a portable ``.npz`` (:func:`save_rul`); returns the path."""
        return save_rul(path, self)

    @classmethod
    def load(cls, path):
        """The object written by :meth:`save`, predicting exactly as the saved one."""
        out = load_rul(path)
        if not isinstance(out, cls):
            raise DataError(f"path: holds a {type(out).__name__}, not a {cls.__name__}")
        return out


def save_rul(path, obj) -> Path:
    """Write a fitted :class:`hmm.rul.RULPipeline` or :class:`hmm.rul_ensemble.RULEnsemble` to ``path``."""
    from statespace import __version__

    from .rul import RULPipeline
    from .rul_ensemble import RULEnsemble

    arrays: dict = {}
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__}
    if isinstance(obj, RULPipeline):
        header.update(kind="pipeline", members=[_pipeline_state(obj, "m0.", arrays)])
    elif isinstance(obj, RULEnsemble):
        for i, member in enumerate(obj.members):
            if not isinstance(member, RULPipeline):
                raise ParameterError(f"members[{i}]: only RULPipeline members can be saved, got {type(member).__name__}")
        header.update(kind="ensemble", members=[_pipeline_state(m, f"m{i}.", arrays) for i, m in enumerate(obj.members)],
                      weights=[float(w) for w in obj.weights], point=obj.point, point_cap=obj.point_cap)
        if obj.pit_levels is not None:
            arrays["pit"] = np.vstack(obj.pit_levels)
    else:
        raise ParameterError(f"obj: expected a RULPipeline or RULEnsemble, got {type(obj).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, **{_HEADER: np.array(json.dumps(header))}, **arrays)
    return path


def load_rul(path):
    """The pipeline or pool written by :func:`save_rul`, validated piece by piece."""
    from .rul_ensemble import RULEnsemble

    header, arrays = read_npz_with_header(path, FORMAT, FORMAT_VERSION, _HEADER, "saved RUL model")
    members = [_restore_pipeline(spec, f"m{i}.", arrays) for i, spec in enumerate(header.get("members", []))]
    if header.get("kind") == "pipeline" and len(members) == 1:
        return members[0]
    if header.get("kind") != "ensemble" or not members:
        raise DataError(f"path: expected a pipeline or an ensemble with members, got kind {header.get('kind')!r}")
    pool = RULEnsemble(members, header["weights"], header["point"], header["point_cap"])
    if "pit" in arrays:
        pool.pit_levels = _pit(arrays["pit"])
    return pool
