"""smc: particle filters, PaRIS online smoothing, particle Gibbs and particle learning for any model of the shared interface."""

import statespace  # noqa: F401  (first: it keys the library's cached kernels, statespace._compile)

# --- particle filters and PaRIS (issue 4) ---
# --- particle Gibbs, PPG and particle learning (issue 6) ---
from .csmc import ParticleGibbsResult, csmc_step, particle_gibbs

# --- learned components (issue 8) ---
from .neural_drift import NeuralDriftParams, NeuralDriftSSM
from .paris import PaRIS, PaRISResult, paris_smoother, smoothed_marginals_functional, split_marginals
from .particle_filter import ParticleFilterResult, Proposal, StateFunction, bootstrap_filter, guided_filter
from .ppg import PPGResult, ppg_smoother, ppg_step
from .resampling import resample
