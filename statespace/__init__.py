"""statespace: the shared model interface and the linear-Gaussian family.

Sister packages: :mod:`hmm` (discrete latent states, Markov jump processes) and
:mod:`smc` (particle filters, PaRIS, particle Gibbs, particle learning). Heavy
optional libraries (jax, arviz, matplotlib) are imported only by the functions
that need them, so ``import statespace`` stays fast. The application
subpackages are imported explicitly: :mod:`statespace.prognostics` (RUL
metrics, phase-type RUL, point forecasts, CV protocol) and
:mod:`statespace.datasets` (the CMAPSS loader and features).
"""

# first: the library's cached kernels are keyed by every file of the library (statespace._compile)
from . import (
    _compile,  # noqa: F401
    errors,
)
from ._version import __version__
from .convergence import ObjectiveDecreaseWarning
from .errors import (
    DataError,
    DegenerateWeightsError,
    ExactInferenceUnavailable,
    ImpossibleDataError,
    ParameterError,
    ShapeError,
    StateSpaceError,
)
from .interface import AdditiveFunctional, FitResult, ModelKernels, StateSpaceModel, simulate
from .linear_gaussian import LGSSMParams, LinearGaussianSSM, kalman_filter, rts_smoother
from .persistence import load_model, load_params, save_model, save_params
from .stochastic_volatility import StochasticVolatility, SVParams
