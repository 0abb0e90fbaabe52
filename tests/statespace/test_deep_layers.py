"""Deep SSM layers against independent oracles.

S4D's kernel against scipy's discretisation of a real block-diagonal realisation
and against the integral of the continuous impulse response; S5, LRU and the
selective scan against plain numpy loops; parallel/convolution modes against the
recurrent modes; gradients against central finite differences. All in float64.
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
import scipy.integrate  # noqa: E402
import scipy.signal  # noqa: E402

from statespace.deep import lru, s4d, s5, selective_scan  # noqa: E402
from statespace.deep._common import hippo_legs, hippo_normal_eig, linear_scan  # noqa: E402
from statespace.errors import ParameterError  # noqa: E402

H, P, L = 3, 4, 37


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _u(seed=1, shape=(2, L, H)):
    return jax.random.normal(jax.random.key(seed), shape, dtype=jnp.float64)


# --- S4D -------------------------------------------------------------------------


def _s4d_real_realisation(params, h):
    """A real (2P, 2P) block-diagonal system equal to channel ``h`` of an S4D layer."""
    a = -np.exp(np.asarray(params["log_neg_a_re"][h])) + 1j * np.asarray(params["a_im"][h])
    b = np.asarray(params["b_re"][h]) + 1j * np.asarray(params["b_im"][h])
    c = np.asarray(params["c_re"][h]) + 1j * np.asarray(params["c_im"][h])
    n = len(a)
    A = np.zeros((2 * n, 2 * n))
    B = np.zeros((2 * n, 1))
    C = np.zeros((1, 2 * n))
    for p in range(n):
        i = 2 * p
        A[i : i + 2, i : i + 2] = [[a[p].real, -a[p].imag], [a[p].imag, a[p].real]]
        B[i : i + 2, 0] = [b[p].real, b[p].imag]
        C[0, i : i + 2] = [2 * c[p].real, -2 * c[p].imag]
    return A, B, C


@pytest.mark.parametrize("init", s4d.INITS)
@pytest.mark.parametrize("method", s4d.DISCRETIZATIONS)
def test_s4d_kernel_matches_scipy_discretisation(init, method):
    params = s4d.init(jax.random.key(0), H, P, init=init, dt_min=0.01, dt_max=0.2)
    K = np.asarray(s4d.kernel(params, L, method))
    for h in range(H):
        A, B, C = _s4d_real_realisation(params, h)
        dt = float(np.exp(params["log_dt"][h]))
        Ad, Bd, *_ = scipy.signal.cont2discrete((A, B, C, np.zeros((1, 1))), dt, method=method)
        x = Bd[:, 0].copy()
        want = []
        for _ in range(L):
            want.append(C[0] @ x)
            x = Ad @ x
        np.testing.assert_allclose(K[h], want, rtol=1e-9, atol=1e-11)


def test_s4d_zoh_kernel_is_the_integrated_impulse_response():
    # ZOH: K_l = int_{l dt}^{(l+1) dt} 2 Re(sum_p C_p B_p exp(a_p s)) ds, the continuous impulse response.
    params = s4d.init(jax.random.key(3), 2, 3, init="lin", dt_min=0.05, dt_max=0.3)
    K = np.asarray(s4d.kernel(params, 6, "zoh"))
    for h in range(2):
        a = -np.exp(np.asarray(params["log_neg_a_re"][h])) + 1j * np.asarray(params["a_im"][h])
        cb = (np.asarray(params["c_re"][h]) + 1j * np.asarray(params["c_im"][h])) * (
            np.asarray(params["b_re"][h]) + 1j * np.asarray(params["b_im"][h])
        )
        dt = float(np.exp(params["log_dt"][h]))
        impulse = lambda s: 2.0 * np.real(np.sum(cb * np.exp(a * s)))
        for ell in range(6):
            want, _ = scipy.integrate.quad(impulse, ell * dt, (ell + 1) * dt, epsabs=1e-13, epsrel=1e-12)
            assert K[h, ell] == pytest.approx(want, rel=1e-8, abs=1e-12)


def test_s4d_convolution_is_causal_filter_with_skip():
    params = s4d.init(jax.random.key(0), H, P, init="inv")
    u = _u(shape=(L, H))
    K = np.asarray(s4d.kernel(params, L))
    un = np.asarray(u)
    want = np.array([[K[h, : t + 1][::-1] @ un[: t + 1, h] for h in range(H)] for t in range(L)])
    want += un * np.asarray(params["d"])
    np.testing.assert_allclose(np.asarray(s4d.apply(params, u)), want, rtol=1e-10, atol=1e-10)


def test_s4d_legs_init_uses_hippo_normal_eigenvalues():
    params = s4d.init(jax.random.key(0), 1, 5, init="legs")
    a = -np.exp(np.asarray(params["log_neg_a_re"][0])) + 1j * np.asarray(params["a_im"][0])
    A, _ = hippo_legs(10)
    p = np.sqrt(np.arange(10) + 0.5)
    eig = np.linalg.eigvals(A + np.outer(p, p))
    upper = eig[eig.imag > 0]
    np.testing.assert_allclose(a[np.argsort(a.imag)], upper[np.argsort(upper.imag)], rtol=1e-8)


def test_hippo_normal_eig_diagonalises_unitarily():
    lam, V, _ = hippo_normal_eig(8)
    A, _ = hippo_legs(8)
    p = np.sqrt(np.arange(8) + 0.5)
    np.testing.assert_allclose(V.conj().T @ V, np.eye(8), atol=1e-10)
    np.testing.assert_allclose(V @ np.diag(lam) @ V.conj().T, A + np.outer(p, p), atol=1e-9)


# --- loop oracles -------------------------------------------------------------------


def _loop(a_bar, bu, c_fn):
    """x_t = a_bar_t * x_{t-1} + bu_t in plain numpy, returning c_fn(t, x_t) per step."""
    x = np.zeros_like(bu[0])
    out = []
    for t in range(len(bu)):
        x = a_bar[t] * x + bu[t]
        out.append(c_fn(t, x))
    return np.array(out)


@pytest.mark.parametrize("method", s5.DISCRETIZATIONS)
def test_s5_matches_python_loop_with_irregular_steps(method):
    params = s5.init(jax.random.key(0), H, P, blocks=2)
    u = np.asarray(_u(shape=(L, H)))
    dt = np.random.default_rng(0).exponential(1.0, L) + 0.05
    lam = -np.exp(np.asarray(params["log_neg_lam_re"])) + 1j * np.asarray(params["lam_im"])
    B = np.asarray(params["b_re"]) + 1j * np.asarray(params["b_im"])
    C = np.asarray(params["c_re"]) + 1j * np.asarray(params["c_im"])
    step = np.exp(np.asarray(params["log_step"]))
    a_bar, bu = [], []
    for t in range(L):
        d = step * dt[t]
        if method == "zoh":
            ab = np.exp(lam * d)
            bb = ((ab - 1) / lam)[:, None] * B
        else:
            ab = (1 + lam * d / 2) / (1 - lam * d / 2)
            bb = (d / (1 - lam * d / 2))[:, None] * B
        a_bar.append(ab)
        bu.append(bb @ u[t])
    want = _loop(a_bar, bu, lambda t, x: (C @ x).real + np.asarray(params["d"]) * u[t])
    got = s5.apply(params, jnp.asarray(u), dt=jnp.asarray(dt), discretization=method)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-10)
    rec = s5.apply_recurrent(params, jnp.asarray(u), dt=jnp.asarray(dt), discretization=method)
    np.testing.assert_allclose(np.asarray(rec), want, rtol=1e-10, atol=1e-10)


def test_s5_zoh_increment_is_exact_for_held_input():
    # ZOH is exact for piecewise-constant input: one step of dt=2 equals two steps of dt=1 with the same input.
    params = s5.init(jax.random.key(2), H, P)
    u = _u(shape=(1, H))
    one = s5.step(params, s5.init_state(params), u[0], jnp.asarray(2.0))[0]
    s1 = s5.step(params, s5.init_state(params), u[0], jnp.asarray(1.0))[0]
    two = s5.step(params, s1, u[0], jnp.asarray(1.0))[0]
    np.testing.assert_allclose(np.asarray(one), np.asarray(two), rtol=1e-12, atol=1e-12)


def test_lru_matches_python_loop_and_ring_init():
    params = lru.init(jax.random.key(0), H, 200, r_min=0.5, r_max=0.9)
    lam = np.asarray(lru.eigenvalues(params))
    assert np.all((np.abs(lam) >= 0.5 - 1e-12) & (np.abs(lam) <= 0.9 + 1e-12))
    # |lambda|^2 is uniform on [r_min^2, r_max^2]: its mean is the midpoint (SE ~ 0.093/sqrt(200)).
    assert abs(np.mean(np.abs(lam) ** 2) - (0.25 + 0.81) / 2) < 4 * 0.0933 / np.sqrt(200)
    np.testing.assert_allclose(np.exp(np.asarray(params["gamma_log"])), np.sqrt(1 - np.abs(lam) ** 2), rtol=1e-12)

    params = lru.init(jax.random.key(1), H, P)
    u = np.asarray(_u(shape=(L, H)))
    lam = np.asarray(lru.eigenvalues(params))
    gamma = np.exp(np.asarray(params["gamma_log"]))
    B = (np.asarray(params["b_re"]) + 1j * np.asarray(params["b_im"])) * gamma[:, None]
    C = np.asarray(params["c_re"]) + 1j * np.asarray(params["c_im"])
    want = _loop([lam] * L, [B @ u[t] for t in range(L)], lambda t, x: (C @ x).real + np.asarray(params["d"]) * u[t])
    np.testing.assert_allclose(np.asarray(lru.apply(params, jnp.asarray(u))), want, rtol=1e-10, atol=1e-10)


def test_selective_scan_matches_python_loop():
    params = {k: np.asarray(v) for k, v in selective_scan.init(jax.random.key(0), H, P, dt_rank=2).items()}
    u = np.asarray(_u(shape=(L, H)))
    A = -np.exp(params["a_log"])
    want = []
    x = np.zeros((H, P))
    for t in range(L):
        delta = np.log1p(np.exp(u[t] @ params["w_dt_down"] @ params["w_dt_up"] + params["b_dt"]))
        Bt, Ct = u[t] @ params["w_b"], u[t] @ params["w_c"]
        for h in range(H):
            for n in range(P):
                x[h, n] = np.exp(delta[h] * A[h, n]) * x[h, n] + delta[h] * Bt[n] * u[t, h]
        want.append(x @ Ct + params["d"] * u[t])
    jp = {k: jnp.asarray(v) for k, v in params.items()}
    for chunk in (64, 8, 1):  # one padded chunk, several chunks with a ragged tail, pure sequential
        got = selective_scan.apply(jp, jnp.asarray(u), chunk=chunk)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-10)


def test_selective_scan_init_step_sizes():
    params = selective_scan.init(jax.random.key(0), 64, 4, dt_min=1e-3, dt_max=1e-1)
    dt = np.asarray(jax.nn.softplus(params["b_dt"]))
    assert dt.min() >= 1e-3 * (1 - 1e-9) and dt.max() <= 1e-1 * (1 + 1e-9)


# --- modes, batching, gradients -----------------------------------------------------

LAYER_CASES = [
    ("s4d-zoh", s4d, lambda k: s4d.init(k, H, P, init="legs"), {"discretization": "zoh"}),
    ("s4d-bilinear", s4d, lambda k: s4d.init(k, H, P, init="lin"), {"discretization": "bilinear"}),
    ("s5", s5, lambda k: s5.init(k, H, P, blocks=2), {}),
    ("lru", lru, lambda k: lru.init(k, H, P), {}),
    ("selective_scan", selective_scan, lambda k: selective_scan.init(k, H, P), {}),
]


@pytest.mark.parametrize("name,mod,make,kw", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_parallel_and_recurrent_modes_agree(name, mod, make, kw):
    params = make(jax.random.key(0))
    u = _u()
    par = jax.jit(lambda p, v: mod.apply(p, v, **kw))(params, u)
    rec = mod.apply_recurrent(params, u, **kw)
    np.testing.assert_allclose(np.asarray(par), np.asarray(rec), atol=1e-5 * 1e-5, rtol=0)
    # step by step from the public step function, batched state
    state = mod.init_state(params, (2,))
    step = jax.jit(lambda p, s, v: mod.step(p, s, v, **kw))
    ys = []
    for t in range(L):
        state, y = step(params, state, u[:, t])
        ys.append(y)
    np.testing.assert_allclose(np.stack(ys, 1), np.asarray(par), atol=1e-10)
    # batching equals separate calls; causality: changing u_t leaves y_{<t} unchanged
    np.testing.assert_allclose(np.asarray(mod.apply(params, u[1], **kw)), np.asarray(par[1]), atol=1e-12)
    v = u.at[:, 20].add(5.0)
    pv = mod.apply(params, v, **kw)
    np.testing.assert_allclose(np.asarray(pv[:, :20]), np.asarray(par[:, :20]), atol=1e-12)
    assert np.abs(np.asarray(pv[:, 20:] - par[:, 20:])).max() > 1e-3


@pytest.mark.parametrize("name,mod,make,kw", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_gradients_match_finite_differences(name, mod, make, kw):
    params = make(jax.random.key(0))
    u = _u(shape=(12, H))
    w = _u(seed=5, shape=(12, H))
    loss = jax.jit(lambda p: jnp.sum(jnp.tanh(mod.apply(p, u, **kw)) * w))
    grads = jax.jit(jax.grad(loss))(params)
    rng = np.random.default_rng(0)
    direction = {k: jnp.asarray(rng.standard_normal(np.shape(v))) for k, v in params.items()}
    eps = 1e-6
    shift = lambda s: {k: params[k] + s * direction[k] for k in params}
    fd = (float(loss(shift(eps))) - float(loss(shift(-eps)))) / (2 * eps)
    analytic = sum(float(jnp.sum(grads[k] * direction[k])) for k in params)
    assert analytic == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_linear_scan_with_initial_state():
    a = _u(seed=2, shape=(9, 2)) * 0.5
    b = _u(seed=3, shape=(9, 2))
    x0 = jnp.asarray([1.0, -2.0])
    want, x = [], np.asarray(x0)
    for t in range(9):
        x = np.asarray(a[t]) * x + np.asarray(b[t])
        want.append(x)
    np.testing.assert_allclose(np.asarray(linear_scan(a, b, 0, x0)), want, rtol=1e-12)


def test_bad_options_raise_parameter_errors():
    with pytest.raises(ParameterError, match="init"):
        s4d.init(jax.random.key(0), H, P, init="legt")
    with pytest.raises(ParameterError, match="blocks"):
        s5.init(jax.random.key(0), H, 6, blocks=4)
    with pytest.raises(ParameterError, match="r_min"):
        lru.init(jax.random.key(0), H, P, r_min=0.9, r_max=0.5)
    with pytest.raises(ParameterError, match="discretization"):
        s4d.apply(s4d.init(jax.random.key(0), H, P), _u(), discretization="euler")


@pytest.mark.parametrize("name,mod,make,kw", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_modes_agree_to_1e5_in_float32(name, mod, make, kw):
    # the tolerance, at JAX's default precision (the float64 tests above are far tighter)
    with jax.enable_x64(False):
        params = make(jax.random.key(0))
        u = jax.random.normal(jax.random.key(1), (2, 64, H))
        assert u.dtype == jnp.float32
        par = np.asarray(mod.apply(params, u, **kw))
        rec = np.asarray(mod.apply_recurrent(params, u, **kw))
    np.testing.assert_allclose(par, rec, atol=1e-5, rtol=1e-5)
