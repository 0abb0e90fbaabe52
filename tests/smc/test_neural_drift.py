"""NeuralDriftSSM: compiled kernels against numpy/scipy densities, the JAX log joint against the
kernels, parametrization round trip, validation; PPG score climbing on a double well (slow)."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest
import scipy.stats

from smc.neural_drift import NeuralDriftParams, NeuralDriftSSM
from statespace.errors import ParameterError, ShapeError


def _model(d=2, H=5, seed=0):
    rng = np.random.default_rng(seed)
    return NeuralDriftSSM(
        NeuralDriftParams(
            rng.standard_normal((H, d)),
            rng.standard_normal(H),
            rng.standard_normal((d, H)) * 0.3,
            rng.standard_normal(d) * 0.1,
            np.array([0.4, 0.7])[:d],
            np.array([0.3, 0.2])[:d],
            np.zeros(d),
            np.ones(d),
        )
    )


def test_kernels_match_numpy_densities():
    m = _model()
    p, k, kp = m.params, m.kernels(), m.kernel_params()
    rng = np.random.default_rng(1)
    x_prev, x = rng.standard_normal(2), rng.standard_normal(2)
    mean = x_prev + np.tanh(p.W1 @ x_prev + p.b1) @ p.W2.T + p.b2
    np.testing.assert_allclose(m.drift(x_prev[None])[0], mean - x_prev, rtol=1e-12)
    want = scipy.stats.norm.logpdf(x, mean, p.sigma_x).sum()
    assert k.log_transition(kp, 3, x_prev, x) == pytest.approx(want, rel=1e-12)
    y = np.array([[np.nan, 0.5], [0.1, -0.2]])
    assert k.log_emission(kp, 0, x, y) == pytest.approx(scipy.stats.norm.logpdf(0.5, x[1], p.sigma_y[1]), rel=1e-12)
    assert k.log_initial(kp, x) == pytest.approx(scipy.stats.norm.logpdf(x, 0, 1).sum(), rel=1e-12)
    assert k.log_transition_bound(kp, 1) >= k.log_transition(kp, 1, x_prev, mean)


def test_simulated_increments_have_the_model_moments():
    m = _model(d=1, H=3)
    x, y = m.sample(4000, rng=2)
    resid = x[1:, 0] - x[:-1, 0] - m.drift(x[:-1])[:, 0]
    assert abs(resid.mean()) < 4 * 0.4 / np.sqrt(4000)
    assert resid.std() == pytest.approx(0.4, rel=0.05)
    assert (y[:, 0] - x[:, 0]).std() == pytest.approx(0.3, rel=0.05)


def test_jax_log_joint_equals_sum_of_kernel_log_densities():
    jax = pytest.importorskip("jax")
    m = _model()
    param = m.parametrization()
    theta = param.to_vector(m)
    assert param.from_vector(theta).params.W1 == pytest.approx(m.params.W1)
    x, y = m.sample(20, rng=3)
    y[4, 0] = np.nan
    k, kp = m.kernels(), m.kernel_params()
    want = k.log_initial(kp, x[0]) + k.log_emission(kp, 0, x[0], y)
    for t in range(1, 20):
        want += k.log_transition(kp, t, x[t - 1], x[t]) + k.log_emission(kp, t, x[t], y)
    with jax.enable_x64(True):
        got = float(param.log_joint(jax.numpy.asarray(theta), jax.numpy.asarray(x), jax.numpy.asarray(y)))
    assert got == pytest.approx(want, rel=1e-10)


def test_validation():
    p = _model().params
    with pytest.raises(ParameterError, match="sigma_x"):
        NeuralDriftParams(p.W1, p.b1, p.W2, p.b2, -p.sigma_x, p.sigma_y, p.m0, p.s0)
    with pytest.raises(ShapeError, match="W2"):
        NeuralDriftParams(p.W1, p.b1, p.W2.T, p.b2, p.sigma_x, p.sigma_y, p.m0, p.s0)
    with pytest.raises(ParameterError, match="n_hidden"):
        NeuralDriftSSM.initialize(np.zeros((10, 1)), n_hidden=0)


@pytest.mark.slow
def test_ppg_score_climbing_recovers_double_well_drift():
    pytest.importorskip("jax")
    # smc's compiled sweeps keep a Numba cache index that names the test helper module
    # _ppg_oracles; make it importable when this file runs on its own.
    sys.path.append(str(pathlib.Path(__file__).parent))
    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "deep_neural_drift.py"
    spec = importlib.util.spec_from_file_location("deep_neural_drift", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    out = ex.main(["--length", "400", "--n-iter", "150"])
    assert out["drift_rmse_neural"] < 0.85 * min(out["drift_rmse_initial"], out["drift_rmse_linear"])
    assert out["heldout_loglik_neural"] > out["heldout_loglik_linear"]


def test_features_enter_kernels_and_log_joint():
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(4)
    base = _model(d=1, H=4).params
    m = NeuralDriftSSM(base._replace(Wh=rng.standard_normal((4, 2))))
    h = rng.standard_normal((25, 2))
    x, y = m.sample(25, rng=5, inputs=h)
    k, kp = m.kernels(), m.kernel_params(inputs=h)
    p = m.params
    for t in (1, 7, 24):  # the move into t reads h_t
        mean = x[t - 1] + np.tanh(p.W1 @ x[t - 1] + p.Wh @ h[t] + p.b1) @ p.W2.T + p.b2
        np.testing.assert_allclose(m.drift(x[t - 1][None], h[t][None])[0], mean - x[t - 1], rtol=1e-12)
        assert k.log_transition(kp, t, x[t - 1], x[t]) == pytest.approx(
            scipy.stats.norm.logpdf(x[t], mean, p.sigma_x).sum(), rel=1e-12
        )
    param = m.parametrization(h)
    theta = param.to_vector(m)
    np.testing.assert_allclose(param.from_vector(theta).params.Wh, p.Wh)
    want = k.log_initial(kp, x[0]) + k.log_emission(kp, 0, x[0], y)
    for t in range(1, 25):
        want += k.log_transition(kp, t, x[t - 1], x[t]) + k.log_emission(kp, t, x[t], y)
    with jax.enable_x64(True):
        got = float(param.log_joint(jax.numpy.asarray(theta), jax.numpy.asarray(x), jax.numpy.asarray(y)))
    assert got == pytest.approx(want, rel=1e-10)
    with pytest.raises(ShapeError, match="inputs"):
        m.kernel_params()
    with pytest.raises(ShapeError, match="inputs"):
        m.kernel_params(inputs=np.zeros((25, 3)))
