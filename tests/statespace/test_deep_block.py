"""Stacked blocks and SequenceModel: modes agree, causality, batching, a small training run."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from statespace.deep import LAYERS, SequenceModel, fit_sequence_model  # noqa: E402
from statespace.deep.block import layer_norm  # noqa: E402
from statespace.errors import ParameterError  # noqa: E402


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("layer,norm", [(name, "pre") for name in LAYERS] + [("lru", "post")])
def test_stack_modes_agree_and_are_causal(layer, norm):
    net = SequenceModel(layer, d_in=2, d_out=3, hidden=6, state=4, n_layers=2, norm=norm)
    params = net.init(jax.random.key(0))
    u = jax.random.normal(jax.random.key(1), (2, 16, 2))
    dt = jax.random.uniform(jax.random.key(2), (2, 16)) + 0.5 if layer == "s5" else None
    apply = jax.jit(net.apply, static_argnames="recurrent")
    par = apply(params, u, dt)
    rec = apply(params, u, dt, recurrent=True)
    np.testing.assert_allclose(np.asarray(rec), np.asarray(par), atol=1e-10)
    step = jax.jit(net.step)
    state = net.init_state(params, (2,))
    ys = []
    for t in range(16):
        state, y = step(params, state, u[:, t], None if dt is None else dt[:, t])
        ys.append(y)
    np.testing.assert_allclose(np.stack(ys, 1), np.asarray(par), atol=1e-10)
    v = u.at[0, 9].set(3.0)
    pv = apply(params, v, dt)
    np.testing.assert_allclose(np.asarray(pv[:, :9]), np.asarray(par[:, :9]), atol=1e-12)
    np.testing.assert_allclose(np.asarray(pv[1]), np.asarray(par[1]), atol=1e-12)
    assert par.shape == (2, 16, 3)


def test_layer_norm_standardises_channels():
    x = jax.random.normal(jax.random.key(0), (5, 7)) * 3 + 2
    y = np.asarray(layer_norm({"scale": jnp.ones(7), "bias": jnp.zeros(7)}, x))
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), np.asarray(x).var(-1) / (np.asarray(x).var(-1) + 1e-5), rtol=1e-10)


def test_training_recovers_a_teacher_network():
    # A student of the same architecture learns the teacher's input-output map: the
    # held-out error drops far below the error of the untrained student.
    net = SequenceModel("lru", d_in=1, d_out=1, hidden=4, state=4, n_layers=1)
    teacher = net.init(jax.random.key(10))
    u = jax.random.normal(jax.random.key(1), (8, 40, 1))
    u_test = jax.random.normal(jax.random.key(2), (8, 40, 1))
    y, y_test = net.apply(teacher, u), net.apply(teacher, u_test)
    student = net.init(jax.random.key(11))
    mse = lambda p, a, b: jnp.mean((net.apply(p, a) - b) ** 2)
    before = float(mse(student, u_test, y_test))
    fitted, losses, _ = fit_sequence_model(lambda p: mse(p, u, y), student, 150, learning_rate=2e-2, progress=False)
    after = float(mse(fitted, u_test, y_test))
    assert losses[-1] < losses[0]
    assert after < 0.1 * before


def test_bad_configuration_raises():
    with pytest.raises(ParameterError, match="layer"):
        SequenceModel("transformer", 1, 1).init(jax.random.key(0))
    with pytest.raises(ParameterError, match="norm"):
        SequenceModel("lru", 1, 1, norm="batch").init(jax.random.key(0))
    with pytest.raises(ParameterError, match="n_layers"):
        SequenceModel("lru", 1, 1, n_layers=0).init(jax.random.key(0))
