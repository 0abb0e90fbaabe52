"""Shared pieces of the robustness suite: the contract, model factories, hypothesis settings.

The contract every public entry point must keep (docs/reliability.md): for any
input it either raises a library error (a ``ValueError`` subclass from
:mod:`statespace.errors`) whose message names the offending argument, or it
returns a result with no NaN that agrees with an exact oracle where one exists.

Model sizes are fixed (K = 2 or 3 states, d <= 2) so that Numba compiles each
kernel once per process; hypothesis runs derandomised so CI is reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from statespace.errors import StateSpaceError

# --------------------------------------------------------------------------- hypothesis
#: cheap strategies (array conversions, validation): a few dozen examples
FAST = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: strategies that run inference or EM: a handful of examples
HEAVY = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# --------------------------------------------------------------------------- the contract
def expect_error(names, fn, *args, **kwargs):
    """Call ``fn`` and require a library error whose message names one of ``names``.

    A raw exception (``TypeError``, ``KeyError``, a numpy error) or a plain
    ``ValueError`` fails the test with what was raised; so does a return.
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    try:
        out = fn(*args, **kwargs)
    except StateSpaceError as exc:
        msg = str(exc)
        assert any(n in msg for n in names), f"library error does not name {names}: {msg!r}"
        return exc
    except BaseException as exc:  # noqa: BLE001 - we report exactly what escaped
        pytest.fail(f"expected a statespace error naming {names}, got raw {type(exc).__name__}: {exc}")
    pytest.fail(f"expected a statespace error naming {names}, got a result: {_short(out)}")


def _short(obj) -> str:
    text = repr(obj)
    return text if len(text) < 300 else text[:300] + "..."


def assert_no_nan(result, what="result"):
    """No NaN anywhere in a result (NamedTuple, list, array, scalar; None skipped)."""
    for path, arr in _leaves(result, what):
        assert not np.isnan(arr).any(), f"{path} holds NaN"


def _leaves(obj, path):
    if obj is None or isinstance(obj, (str, bool)):
        return
    if hasattr(obj, "_fields"):
        for f in obj._fields:
            yield from _leaves(getattr(obj, f), f"{path}.{f}")
    elif isinstance(obj, (list, tuple)):
        for i, o in enumerate(obj):
            yield from _leaves(o, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, o in obj.items():
            yield from _leaves(o, f"{path}[{k!r}]")
    else:
        try:
            arr = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError):
            return
        yield path, arr


# --------------------------------------------------------------------------- model factories
def lg_model(m=1):
    """Constant-velocity tracking model (d = 2) observed in ``m`` coordinates."""
    from statespace import LinearGaussianSSM

    H = [[1.0, 0.0]] if m == 1 else [[1.0, 0.0], [0.0, 1.0]]
    return LinearGaussianSSM(
        m0=np.zeros(2), P0=np.eye(2), F=[[1.0, 1.0], [0.0, 1.0]], Q=0.1 * np.eye(2), H=H, R=0.5 * np.eye(m)
    )


def sv_model():
    from statespace import StochasticVolatility

    return StochasticVolatility(mu=-1.0, phi=0.9, sigma=0.3)


def gaussian_emission(means, sds, lags=0, ar=0.5):
    from hmm import GaussianEmissionParams

    means = np.asarray(means, dtype=float)
    K = len(means)
    covs = (np.asarray(sds, dtype=float) ** 2)[:, None, None] * np.ones((K, 1, 1))
    ar_coefs = np.full((K, lags, 1, 1), ar) if lags else None
    return GaussianEmissionParams.from_ar(
        bias=means[:, None], covs=covs, ar_coefs=ar_coefs, init_means=means[:, None], init_covs=covs
    )


PI2 = np.array([0.6, 0.4])
A2 = np.array([[0.9, 0.1], [0.2, 0.8]])


def gaussian_hmm(means=(-1.0, 1.0), sds=(1.0, 1.0), A=A2, pi0=PI2):
    from hmm import GaussianHMM, HMMParams

    return GaussianHMM(len(means), 1, params=HMMParams(np.asarray(pi0), np.asarray(A), gaussian_emission(means, sds)))


def gaussian_hmm_2d():
    from hmm import GaussianEmissionParams, GaussianHMM, HMMParams

    cov = np.array([[1.0, 0.3], [0.3, 0.8]])
    e = GaussianEmissionParams.from_ar(bias=np.array([[-1.0, 0.5], [1.0, -0.5]]), covs=np.stack([cov, 2 * cov]))
    return GaussianHMM(2, 2, params=HMMParams(PI2, A2, e))


def ar_hmm():
    from hmm import ARHMM, HMMParams

    return ARHMM(2, 1, 1, params=HMMParams(PI2, A2, gaussian_emission((-1.0, 1.0), (1.0, 0.7), lags=1)))


B23 = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])


def categorical_hmm(B=B23):
    from hmm import CategoricalEmissionParams, CategoricalHMM, HMMParams

    return CategoricalHMM(2, B.shape[1], params=HMMParams(PI2, A2, CategoricalEmissionParams(B)))


def left_to_right_hmm():
    """Three-state left-to-right Gaussian HMM (the ARPHMM's structure, without lags)."""
    from hmm import HMM, HMMParams

    A = np.array([[0.8, 0.2, 0.0], [0.0, 0.7, 0.3], [0.0, 0.0, 1.0]])
    return HMM(
        3,
        1,
        transitions="left-to-right",
        params=HMMParams(np.array([1.0, 0.0, 0.0]), A, gaussian_emission((-2.0, 0.0, 2.0), (1.0, 1.0, 1.0))),
    )


def banded_hmm():
    """Three-state Gaussian HMM whose chain moves one state down or up at most (a tridiagonal A)."""
    from hmm import HMM, HMMParams
    from hmm.transitions import banded

    A = np.array([[0.7, 0.3, 0.0], [0.2, 0.5, 0.3], [0.0, 0.4, 0.6]])
    return HMM(
        3,
        1,
        transitions=banded(3, 1, 1),
        params=HMMParams(np.array([0.2, 0.5, 0.3]), A, gaussian_emission((-2.0, 0.0, 2.0), (0.7, 1.0, 1.3))),
    )


Q3 = np.array([[-1.0, 0.6, 0.4], [0.5, -0.8, 0.3], [0.2, 0.7, -0.9]])


def mjp(kind="exact", Q=Q3):
    """Three-state jump process with exact, noisy-label or Gaussian-level observations."""
    from hmm.markov_jump import GaussianLevels, MarkovJumpProcess, NoisyLabels

    obs = {
        "exact": None,
        "noisy": NoisyLabels.uniform_replacement(Q.shape[0], 0.1) if kind == "noisy" else None,
        "gauss": GaussianLevels(np.arange(Q.shape[0], dtype=float), np.full(Q.shape[0], 0.5))
        if kind == "gauss"
        else None,
    }[kind]
    return MarkovJumpProcess(Q, observation=obs)


HMM_FACTORIES = {
    "gaussian": gaussian_hmm,
    "gaussian2d": gaussian_hmm_2d,
    "ar": ar_hmm,
    "categorical": categorical_hmm,
    "left_to_right": left_to_right_hmm,
    "banded": banded_hmm,
}


def hmm_data(kind, T=12, seed=0):
    """A valid observation sequence for the factory ``kind`` (sampled from it)."""
    model = HMM_FACTORIES[kind]()
    _, y = model.sample(T, rng=seed)
    return model, np.asarray(y, dtype=float)
