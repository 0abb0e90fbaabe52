"""The linear-Gaussian per-particle kernels against scipy densities and each other.

The d = m = 1 kernels are separate straight-line code (so particle loops can
inline them), and rows with some coordinates missing take a separate path in
``log_emission``: both are checked here on time-varying matrices with inputs.
"""

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from statespace import LinearGaussianSSM
from statespace.linear_gaussian import _particle_kernels as general
from statespace.linear_gaussian import kernels as K

T = 6


def _scalar_model(rng, time_varying, with_inputs):
    if time_varying:
        kw = dict(
            F=rng.normal(size=(T, 1, 1)),
            Q=rng.uniform(0.1, 2.0, (T, 1, 1)),
            H=rng.normal(size=(T, 1, 1)),
            R=rng.uniform(0.1, 2.0, (T, 1, 1)),
        )
    else:
        kw = dict(F=np.array([[0.7]]), Q=np.array([[0.4]]), H=np.array([[1.3]]), R=np.array([[0.6]]))
    u = None
    if with_inputs:
        kw.update(B=rng.normal(size=(1, 2)), D=rng.normal(size=(1, 2)))
        u = rng.normal(size=(T, 2))
    return LinearGaussianSSM(m0=np.array([0.3]), P0=np.array([[1.7]]), **kw), u


@pytest.mark.parametrize("time_varying", [False, True])
@pytest.mark.parametrize("with_inputs", [False, True])
def test_scalar_kernels_match_scipy_and_general_kernels(time_varying, with_inputs):
    rng = np.random.default_rng(5)
    mod, u = _scalar_model(rng, time_varying, with_inputs)
    ks = mod.kernels()
    assert ks.log_emission is K.log_emission_scalar
    p = mod.params
    kp = mod.kernel_params(u)

    def mat(a, t):
        return a[t] if a.ndim == 3 else a

    bu = np.zeros((T, 1)) if u is None else u @ p.B.T
    du = np.zeros((T, 1)) if u is None else u @ p.D.T
    y = rng.normal(size=(T, 1))
    y[2] = np.nan
    x0 = rng.normal(size=1)
    assert ks.log_initial(kp, x0) == pytest.approx(norm(0.3, np.sqrt(1.7)).logpdf(x0[0]), abs=1e-12)
    for t in range(T):
        xp, x = rng.normal(size=1), rng.normal(size=1)
        mean = mat(p.F, t)[0, 0] * xp[0] + bu[t, 0]
        ref = norm(mean, np.sqrt(mat(p.Q, t)[0, 0])).logpdf(x[0])
        assert ks.log_transition(kp, t, xp, x) == pytest.approx(ref, abs=1e-12)
        ref = 0.0 if t == 2 else norm(mat(p.H, t)[0, 0] * x[0] + du[t, 0], np.sqrt(mat(p.R, t)[0, 0])).logpdf(y[t, 0])
        assert ks.log_emission(kp, t, x, y) == pytest.approx(ref, abs=1e-12)
        # the draws use the same standard normal as the general kernels
        for f1, f2, args in [
            (ks.sample_transition, general.sample_transition, (kp, t, xp)),
            (ks.sample_emission, general.sample_emission, (kp, t, x, y)),
            (ks.sample_initial, general.sample_initial, (kp,)),
        ]:
            a, b = np.zeros(1), np.zeros(1)
            f1(*args, np.random.default_rng(t), a)
            f2(*args, np.random.default_rng(t), b)
            assert a[0] == pytest.approx(b[0], abs=1e-14)


def test_scalar_transition_draws_have_the_transition_moments():
    mod, _ = _scalar_model(np.random.default_rng(1), False, False)
    kp, ks = mod.kernel_params(), mod.kernels()
    rng = np.random.default_rng(2)
    n = 20000
    out = np.empty((n, 1))
    for i in range(n):
        ks.sample_transition(kp, 1, np.array([2.0]), rng, out[i])
    # mean 1.4, variance 0.4: 5-sigma bounds
    assert abs(out.mean() - 1.4) < 5 * np.sqrt(0.4 / n)
    assert abs(out.var() - 0.4) < 5 * 0.4 * np.sqrt(2.0 / n)


@pytest.mark.parametrize("dims", [(1, 4), (3, 2), (2, 9)])  # 9 > MAX_SPECIALISED_DIM: the general kernels
def test_log_emission_marginalises_missing_coordinates_exactly(dims):
    rng = np.random.default_rng(3)
    d, m = dims
    for _ in range(10):
        A = rng.normal(size=(T, m, m))
        R = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(m)
        H = rng.normal(size=(T, m, d))
        D = rng.normal(size=(m, 1))
        u = rng.normal(size=(T, 1))
        mod = LinearGaussianSSM(
            m0=np.zeros(d), P0=np.eye(d), F=0.5 * np.eye(d), Q=np.eye(d), H=H, R=R, B=np.zeros((d, 1)), D=D
        )
        kp, ks = mod.kernel_params(u), mod.kernels()
        y = rng.normal(size=(T, m))
        y[rng.random((T, m)) < 0.4] = np.nan
        y[0] = np.nan
        y[1] = rng.normal(size=m)
        x = rng.normal(size=d)
        for t in range(T):
            o = ~np.isnan(y[t])
            mean = H[t] @ x + D @ u[t]
            ref = 0.0 if not o.any() else multivariate_normal(mean[o], R[t][np.ix_(o, o)]).logpdf(y[t][o])
            assert ks.log_emission(kp, t, x, y) == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("p", [0, 2])
def test_functional_step_on_observed_rows_is_the_complete_data_statistic(p):
    # The direct path for fully observed rows against the statistics written out
    # with numpy; a row with a gap takes the imputing path, checked against the
    # exact E-step in test_interface.
    rng = np.random.default_rng(11)
    d, m = 3, 2
    F = rng.normal(size=(T, d, d))
    H = rng.normal(size=(m, d))
    B, D = rng.normal(size=(d, p)), rng.normal(size=(m, p))
    kw = dict(B=B, D=D) if p else {}
    mod = LinearGaussianSSM(m0=np.zeros(d), P0=np.eye(d), F=F, Q=np.eye(d), H=H, R=np.eye(m), **kw)
    u = rng.normal(size=(T, p))
    kp = mod.kernel_params(u if p else None)
    y = rng.normal(size=(T, m))
    lay = K.stats_layout(d, m, p)
    h = mod.sufficient_statistics()
    for t in range(1, T):
        xp, x = rng.normal(size=d), rng.normal(size=d)
        out = np.full(lay.size, 3.0)
        h.step(kp, t, xp, x, y, out)
        eps = x - F[t] @ xp - B @ u[t]
        r = y[t] - H @ x - D @ u[t]
        expect = {
            "nt": [1.0],
            "xpxp": np.outer(xp, xp),
            "xxp": np.outer(x, xp),
            "xx": np.outer(x, x),
            "xpu": np.outer(xp, u[t]),
            "xu": np.outer(x, u[t]),
            "uut": np.outer(u[t], u[t]),
            "qres": np.outer(eps, eps),
            "ne": [1.0],
            "yx": np.outer(y[t], x),
            "yy": np.outer(y[t], y[t]),
            "xexe": np.outer(x, x),
            "xeu": np.outer(x, u[t]),
            "yu": np.outer(y[t], u[t]),
            "uue": np.outer(u[t], u[t]),
            "rres": np.outer(r, r),
        }
        fields = list(lay._fields)
        for name in fields[:-1]:
            lo, hi = getattr(lay, name), getattr(lay, fields[fields.index(name) + 1])
            want = np.ravel(expect.get(name, np.zeros(hi - lo)))
            np.testing.assert_allclose(out[lo:hi], want, atol=1e-12, err_msg=name)
