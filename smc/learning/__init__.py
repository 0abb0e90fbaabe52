"""Parameter learning with particle smoothers: particle EM / SAEM, score ascent (Fisher's identity),
Markov score climbing, and Bayesian particle Gibbs."""

from ._engine import LearningResult
from .bayesian_gibbs import LGPrior, PosteriorChains, SVPrior, bayesian_particle_gibbs
from .parametrization import Parametrization
from .particle_em import particle_em
from .score_ascent import estimate_score, score_ascent
from .score_climbing import score_climbing
