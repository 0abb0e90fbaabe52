"""PPG against the exact (Kalman/RTS) smoothed expectation of sum_t x_{t-1} x_t."""

import numpy as np
import pytest
from _ppg_oracles import CROSS, ScalarLG, kalman_rts

from smc.ppg import ppg_smoother, ppg_step

MODEL = ScalarLG(F=0.9, Q=0.5, R=1.0)


@pytest.fixture(scope="module")
def problem():
    _, y = MODEL.sample(60, rng=0)
    y[7] = np.nan
    return y, kalman_rts(MODEL.params, y).cross.sum()


def test_ppg_has_smaller_bias_than_paris_at_fixed_n(problem):
    y, exact = problem
    N = 8
    g = np.random.default_rng(1)
    paris = np.array(
        [ppg_step(MODEL.kernels(), MODEL.params, y, None, CROSS, n_particles=N, rng=g)[0][0] for _ in range(300)]
    )
    res = ppg_smoother(MODEL, y, CROSS, n_particles=N, n_iter=15, burn_in=5, n_chains=150, rng=2, progress=False)
    ppg = res.estimates[:, 5:, 0].mean(axis=1)  # one PPG estimator per independent chain
    b_paris, se_paris = paris.mean() - exact, paris.std(ddof=1) / np.sqrt(len(paris))
    b_ppg, se_ppg = ppg.mean() - exact, ppg.std(ddof=1) / np.sqrt(len(ppg))
    # PaRIS at N=8 is visibly biased; PPG's remaining bias is within its Monte Carlo error
    assert abs(b_paris) > 4 * se_paris
    assert abs(b_paris) - abs(b_ppg) > 3 * np.hypot(se_paris, se_ppg)
    assert abs(b_ppg) < 3.5 * se_ppg


def test_ppg_converges_to_exact_value_as_iterations_grow(problem):
    y, exact = problem
    res = ppg_smoother(MODEL, y, CROSS, n_particles=8, n_iter=400, burn_in=20, n_chains=4, rng=3, progress=False)
    est = res.estimates[:, :, 0]
    assert abs(res.estimate[0] - exact) < 4 * res.standard_error[0]

    # root-mean-square error of the running estimator over chains shrinks with the number of iterations
    def rmse(k):
        return np.sqrt(np.mean((est[:, 20:k].mean(axis=1) - exact) ** 2))

    assert rmse(400) < 0.5 * rmse(40)


def test_ppg_defaults_to_sufficient_statistics_and_is_reproducible(problem):
    y, _ = problem
    a = ppg_smoother(MODEL, y, n_particles=6, n_iter=3, rng=5, progress=False)
    b = ppg_smoother(MODEL, y, n_particles=6, n_iter=3, rng=5, progress=False)
    np.testing.assert_array_equal(a.estimates, b.estimates)
    assert a.estimates.shape == (1, 3, 5) and a.references.shape == (1, 60, 1)
    c = ppg_smoother(MODEL, y, n_particles=6, n_iter=3, reference=a.references[0], rng=5, progress=False)
    assert np.isfinite(c.estimate).all()


def test_bad_arguments(problem):
    y, _ = problem
    with pytest.raises(ValueError, match="n_backward"):
        ppg_smoother(MODEL, y, CROSS, n_backward=0, progress=False)
    with pytest.raises(ValueError, match="reference"):
        ppg_smoother(MODEL, y, CROSS, reference=np.zeros((3, 1)), progress=False)


def test_a_model_without_statistics_needs_a_functional(problem):
    """As for PaRIS: the default functional is the model's sufficient statistics, and a model that
    has none is a ParameterError naming the argument, not a bare NotImplementedError."""
    from statespace import StochasticVolatility
    from statespace.errors import ParameterError

    class NoStats(StochasticVolatility):
        def sufficient_statistics(self):
            raise NotImplementedError

    with pytest.raises(ParameterError, match="functional: NoStats has no built-in sufficient statistics"):
        ppg_smoother(NoStats(), problem[0], n_iter=2, progress=False)
