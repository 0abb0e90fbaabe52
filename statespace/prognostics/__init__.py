"""Prognostics: RUL labels and health indicators, phase-type and empirical RUL distributions, point forecasts, metrics, cross-validation, plots.

Model- and dataset-agnostic pieces for remaining-useful-life (RUL)
estimation: they read per-engine arrays and import no data set. The CMAPSS
loader and feature pipeline are :mod:`statespace.datasets.cmapss`; the ARPHMM
RUL models built on both are :mod:`hmm.rul`. Not imported by ``import
statespace``: ``import statespace.prognostics``. Plots import matplotlib
lazily (:mod:`statespace.prognostics.plots`).
"""

from .cross_validation import Cut, cut_positions, cut_weights, per_engine_means, simulated_test_sets, truncation_splits
from .features import HealthIndicator, exponential_smoothing, informative_columns, piecewise_linear_rul
from .metrics import interval_coverage, mae, phm08_score, phm08_scores, rmse, rul_report
from .phase_type import PhaseTypeDistribution, cdfs, mixture, quantiles, time_to_absorption, times_to_absorption
from .point_forecast import PointCapSelection, capped_means, select_point_cap
from .readout import StateRULReadout

__all__ = [
    "Cut",
    "HealthIndicator",
    "PhaseTypeDistribution",
    "PointCapSelection",
    "StateRULReadout",
    "capped_means",
    "cdfs",
    "cut_positions",
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
    "quantiles",
    "rmse",
    "rul_report",
    "select_point_cap",
    "simulated_test_sets",
    "time_to_absorption",
    "times_to_absorption",
    "truncation_splits",
]
