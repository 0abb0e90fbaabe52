"""hmm: discrete latent states (HMM, autoregressive HMM with partial knowledge) and Markov jump processes."""

import statespace  # noqa: F401  (first: it keys the library's cached kernels, statespace._compile)

from . import forward_backward, markov_jump
from .chain import DiscreteChainModel
from .emission_models import CategoricalEmission, EmissionModel, GaussianEmission
from .emissions import CategoricalEmissionParams, EmissionPrior, GaussianEmissionParams
from .io_hmm import IOHMM, IOHMMParams
from .learned_emission import LearnedEmissionHMM, LearnedEmissionParams
from .markov_jump import MarkovJumpProcess, MJPParams
from .model import ARHMM, HMM, CategoricalHMM, GaussianHMM, HMMFilterResult, HMMForecast, HMMParams, HMMSmoothResult
from .transitions import TransitionStructure, banded, ergodic, left_to_right, sticky
