r"""Markov jump processes (continuous-time Markov chains) observed at irregular times.

A chain with generator ``Q`` observed exactly or through noise at arbitrary
times: exact likelihood, filtering, smoothing (at observation and query times),
Viterbi, posterior path sampling, EM for ``Q`` (Bladt & Sorensen 2005) and
maximum likelihood for structured rates ``Q(theta)`` with standard errors.
See ``docs/markov_jump.md`` for the mathematics.

Modules, one job each: ``generator`` (parameters, derived quantities),
``observations`` (observation models), ``simulation`` (Gillespie),
``expectations`` (endpoint-conditioned expectations and bridges),
``inference`` (compiled forward-backward over intervals),
``em``, ``structured``, ``kernels`` (compiled per-particle kernels),
``model`` (the object API).
"""

from .em import expected_statistics, fit_em
from .expectations import endpoint_expectations, sample_bridge, transition_matrix
from .generator import (
    MJPParams,
    check_generator,
    generator_from_rates,
    mean_first_passage_times,
    relaxation_times,
    stationary_distribution,
)
from .model import MarkovJumpProcess, MJPFilterResult, MJPForecast, MJPKernelParams, MJPSmoothResult
from .observations import ExactStates, GaussianLevels, NoisyLabels
from .plots import plot_posterior
from .simulation import sample_path, sample_paths
from .structured import (
    StructuredFit,
    fit_structured,
    flashing_ratchet_rates,
    observed_information,
    structured_log_likelihood,
)

__all__ = [
    "ExactStates",
    "GaussianLevels",
    "MJPFilterResult",
    "MJPForecast",
    "MJPKernelParams",
    "MJPParams",
    "MJPSmoothResult",
    "MarkovJumpProcess",
    "NoisyLabels",
    "StructuredFit",
    "check_generator",
    "endpoint_expectations",
    "expected_statistics",
    "fit_em",
    "fit_structured",
    "flashing_ratchet_rates",
    "generator_from_rates",
    "mean_first_passage_times",
    "observed_information",
    "plot_posterior",
    "relaxation_times",
    "sample_bridge",
    "sample_path",
    "sample_paths",
    "stationary_distribution",
    "structured_log_likelihood",
    "transition_matrix",
]
