"""Prognostics: features and health indicators, phase-type and empirical RUL distributions, point forecasts, metrics, cross-validation, plots.

Model-agnostic pieces for remaining-useful-life (RUL) estimation; the
ARPHMM RUL model built on them lives in :mod:`hmm.rul`. Plots import
matplotlib lazily (:mod:`statespace.prognostics.plots`).
"""

from .cross_validation import Cut, cut_weights, per_engine_means, simulated_test_sets, truncation_splits
from .features import (
    HealthIndicator,
    SensorFeatures,
    exponential_smoothing,
    informative_columns,
    piecewise_linear_rul,
)
from .metrics import interval_coverage, mae, phm08_score, phm08_scores, rmse, rul_report
from .phase_type import PhaseTypeDistribution, mixture, time_to_absorption
from .point_forecast import PointCapSelection, capped_means, select_point_cap
from .readout import StateRULReadout

__all__ = [
    "Cut",
    "HealthIndicator",
    "PhaseTypeDistribution",
    "PointCapSelection",
    "SensorFeatures",
    "StateRULReadout",
    "capped_means",
    "cut_weights",
    "exponential_smoothing",
    "informative_columns",
    "interval_coverage",
    "mae",
    "mixture",
    "per_engine_means",
    "phm08_score",
    "phm08_scores",
    "piecewise_linear_rul",
    "rmse",
    "rul_report",
    "select_point_cap",
    "simulated_test_sets",
    "time_to_absorption",
    "truncation_splits",
]
