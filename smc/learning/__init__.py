"""Parameter learning with particle smoothers: particle EM / SAEM, score ascent (Fisher's identity),
Markov score climbing, and Bayesian particle Gibbs."""

from ._engine import LearningResult
from .parametrization import Parametrization
from .particle_em import particle_em
