r"""Remaining useful life with the partially-supervised autoregressive HMM (ARPHMM) and its ensembles.

* ``hmm.rul.models``: the left-to-right degradation chain with life-fraction
  soft labels (:class:`ARPHMMRUL`), its phase-type or empirical RUL readout,
  the feature-plus-model :class:`RULPipeline` and truncation
  cross-validation (:func:`cross_validate`);
* ``hmm.rul.deep``: the same chain whose emission reads an S5 encoding of
  the sensor history (:class:`DeepARPHMMRUL`);
* ``hmm.rul.ensemble``: the linear pool of pipelines' predictive
  distributions (:class:`RULEnsemble`);
* ``hmm.rul.state``: what the pipelines and pools store in the library's
  single file format (:mod:`statespace.persistence`), and :func:`save_rul` /
  :func:`load_rul`.

Arrows point one way: ``state`` <- ``models`` <- ``deep``, ``ensemble``; all of
them read :mod:`statespace.prognostics` (dataset-free RUL pieces) and
:mod:`statespace.datasets.cmapss` (the sensor features), neither of which
imports this package.
"""

from .deep import DeepARPHMMRUL
from .ensemble import RULEnsemble, combine_cv, pool_predictions
from .models import (
    ARPHMMRUL,
    ChainRULModel,
    CVResult,
    RULPipeline,
    RULPrediction,
    cross_validate,
    life_fraction_plausibilities,
    predict_cuts,
    predict_from_distributions,
    recalibrated_levels,
)
from .state import load_rul, save_rul

__all__ = [
    "ARPHMMRUL",
    "CVResult",
    "ChainRULModel",
    "DeepARPHMMRUL",
    "RULEnsemble",
    "RULPipeline",
    "RULPrediction",
    "combine_cv",
    "cross_validate",
    "life_fraction_plausibilities",
    "load_rul",
    "pool_predictions",
    "predict_cuts",
    "predict_from_distributions",
    "recalibrated_levels",
    "save_rul",
]
