"""Errors raised by the library.

Every error about bad input or bad parameters is a ``ValueError`` subclass, so
``except ValueError`` keeps working for callers who do not care which one.
Messages name the argument, the index (time step, sequence, state) and what was
expected, so the user can fix the call without reading our source.
"""


class StateSpaceError(ValueError):
    """Base class of the library's input and parameter errors."""


class ShapeError(StateSpaceError):
    """An array has the wrong number of dimensions or the wrong length."""


class ParameterError(StateSpaceError):
    """A model parameter is invalid (non-PSD covariance, non-stochastic row, ...)."""


class DataError(StateSpaceError):
    """Observations, inputs or times are invalid (inf, wrong length, not increasing)."""


class DegenerateWeightsError(StateSpaceError):
    """All particle weights vanished or became non-finite at some time step."""

    def __init__(self, t: int, detail: str = ""):
        self.t = int(t)
        msg = (
            f"all particle weights are zero or non-finite at time step t={self.t}"
            + (f" ({detail})" if detail else "")
            + "; use more particles or a proposal closer to the observations"
        )
        super().__init__(msg)


class StaleCacheError(RuntimeError):
    """Compiled code on disk calls a kernel whose current source no longer matches it (delete the cache)."""


class ExactInferenceUnavailable(NotImplementedError):
    """The model has no exact filter/smoother; use the particle methods of ``smc``."""


class ImpossibleDataError(DataError):
    """The observations have zero probability (or overflow) under the model.

    ``log_likelihood`` answers such data with ``-inf``; every verb that
    conditions on the data (``filter``, ``smooth``, ``most_likely_states``,
    ``sample_posterior``, ``forecast``, ``fit``) raises this error instead,
    naming the sequence and the first time step at which the data became
    impossible, because a posterior given a null event is undefined.
    """
