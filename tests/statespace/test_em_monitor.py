"""The one EM convergence monitor, and the scale equivariance of linear-Gaussian EM.

The monitor is checked on synthetic objective sequences against its written
rule; the EM loop is checked by forcing a worse M-step (it must stop, keep the
best parameters and warn) and on a model whose noise variances are ~1e-14 (an
absolute covariance floor there lowered the likelihood while ``converged=True``
was reported). Scale equivariance is checked against the c = 1 fit mapped through
the model's change of units (oracle: the group action, see ``em.py``).
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lgssm_dense import random_params

from statespace import LinearGaussianSSM
from statespace.convergence import ROUNDOFF, ConvergenceMonitor, ObjectiveDecreaseWarning
from statespace.errors import ParameterError
from statespace.linear_gaussian import LGSSMParams, fit_em, kalman_filter
from statespace.linear_gaussian import em as lg_em


def _run(objectives, tol):
    mon = ConvergenceMonitor(tol, "test")
    for k, v in enumerate(objectives):
        if mon.record(v, k):
            break
    return mon


# ---------------------------------------------------------------- the monitor's rule
@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(-1e12, 1e12),
    steps=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=12),
    tol=st.sampled_from([0.0, 1e-9, 1e-6, 1e-3]),
)
def test_monitor_follows_its_rule_on_any_sequence(start, steps, tol):
    objs = list(np.cumsum([start] + steps))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mon = _run(objs, tol)
    # replay the documented rule independently
    expected_stop, kind = len(objs) - 1, "max_iter"
    for k in range(1, len(objs)):
        delta, scale = objs[k] - objs[k - 1], max(1.0, abs(objs[k - 1]))
        if delta < -ROUNDOFF * scale:
            expected_stop, kind = k, "drop"
            break
        if delta < tol * scale:
            expected_stop, kind = k, "converged"
            break
    assert len(mon.history) == expected_stop + 1
    assert mon.converged == (kind == "converged")
    assert mon.decreased == (kind == "drop")
    drops = [w for w in caught if issubclass(w.category, ObjectiveDecreaseWarning)]
    assert len(drops) == (kind == "drop")
    res = mon.result(expected_stop)
    if kind == "drop":
        # the best parameters seen before the drop, with the history ending at their objective
        # (the latest of equal objectives)
        best = expected_stop - 1 - int(np.argmax(objs[:expected_stop][::-1]))
        assert res.params == best and res.log_likelihoods[-1] == objs[best]
        assert f"iteration {expected_stop}" in str(drops[0].message)
        assert not res.converged
    else:
        assert res.params == expected_stop and res.log_likelihoods[-1] == objs[expected_stop]


def test_monitor_round_off_is_relative_to_the_objective():
    big = -1e8
    # a drop of 1e-2 at |objective| 1e8 is round-off (allowance 0.1): converged, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mon = _run([big, big - 1e-2], tol=1e-6)
    assert mon.converged and not mon.decreased
    # the same drop at |objective| 1 is a genuine decrease
    with pytest.warns(ObjectiveDecreaseWarning, match="iteration 1"):
        mon = _run([-1.0, -1.0 - 1e-2], tol=1e-6)
    assert not mon.converged and mon.decreased and mon.best_params == 0


def test_monitor_rejects_nan_objective_and_bad_tol():
    with pytest.raises(ParameterError, match="iteration 1"):
        _run([0.0, np.nan], tol=1e-6)
    for tol in (-1.0, np.nan, np.inf):
        with pytest.raises(ParameterError, match="tol"):
            ConvergenceMonitor(tol)


# ---------------------------------------------------------------- EM loops that would go down
def _scalar_truth(scale):
    return LGSSMParams(m0=np.zeros(1), P0=np.eye(1) * scale, F=[[0.9]], Q=[[scale]], H=[[1.0]], R=[[scale]])


def test_em_stops_and_keeps_the_best_parameters_when_an_m_step_is_worse(monkeypatch):
    truth = _scalar_truth(1.0)
    _, y = LinearGaussianSSM(truth).sample(300, rng=1)
    start = truth.replace(Q=[[2.0]], R=[[0.5]])
    good = lg_em.m_step
    calls = []

    def worse_after_three(params, stats, frozen=()):
        calls.append(1)
        new = good(params, stats, frozen)
        return new if len(calls) < 4 else new.replace(R=np.asarray(new.R) * 50.0)

    monkeypatch.setattr(lg_em, "m_step", worse_after_three)
    with pytest.warns(ObjectiveDecreaseWarning, match="iteration 4"):
        res = fit_em(start, y, max_iter=50, tol=0.0, progress=False)
    assert not res.converged and len(calls) == 4
    # the returned parameters are those of the third M-step, and the history ends with their log-likelihood
    monkeypatch.setattr(lg_em, "m_step", good)
    ref = fit_em(start, y, max_iter=3, tol=0.0, progress=False)
    np.testing.assert_array_equal(res.params.R, ref.params.R)
    np.testing.assert_array_equal(res.log_likelihoods, ref.log_likelihoods)
    assert res.log_likelihoods[-1] == kalman_filter(res.params, y).log_likelihood


@pytest.mark.parametrize("scale", [1e-14, 1e-20, 1e-30])
def test_tiny_noise_em_never_reports_convergence_after_a_drop(scale):
    # variances far below 1e-12: an absolute eigenvalue floor moved them and lowered the likelihood
    truth = _scalar_truth(scale)
    _, y = LinearGaussianSSM(truth).sample(200, rng=1)
    start = truth.replace(Q=[[2 * scale]], R=[[0.5 * scale]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ObjectiveDecreaseWarning)
        res = fit_em(start, y, max_iter=30, tol=1e-10, progress=False)
    lls = res.log_likelihoods
    assert (np.diff(lls) >= -ROUNDOFF * np.abs(lls[:-1])).all()
    assert lls[-1] > lls[0]
    # the same fit in units where the noise is ~1: rescaled, the same estimates
    ref = fit_em(
        _scalar_truth(1.0).replace(Q=[[2.0]], R=[[0.5]]),
        y / np.sqrt(scale),
        max_iter=len(lls) - 1,
        tol=0.0,
        progress=False,
    )
    np.testing.assert_allclose(res.params.R / scale, ref.params.R, rtol=1e-7)
    np.testing.assert_allclose(res.params.Q / scale, ref.params.Q, rtol=1e-7)


# ---------------------------------------------------------------- scale equivariance
def _transform(p: LGSSMParams, c: float, a: float) -> LGSSMParams:
    """The model in units ``y -> c y``, ``x -> a x`` (see statespace/linear_gaussian/em.py)."""
    return LGSSMParams(
        m0=a * p.m0, P0=a * a * p.P0, F=p.F, B=a * p.B, Q=a * a * p.Q, H=(c / a) * p.H, D=c * p.D, R=c * c * p.R
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    c=st.sampled_from([1e-8, 1e-4, 1e4, 1e8]),
    state_follows=st.booleans(),
    p=st.integers(0, 1),
    missing=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 1000),
)
def test_em_is_scale_equivariant(c, state_follows, p, missing, seed):
    rng = np.random.default_rng(seed)
    truth = random_params(rng, d=2, m=2, p=p)
    u = rng.normal(size=(80, p)) if p else None
    _, y = LinearGaussianSSM(truth).sample(80, rng=rng, inputs=u)
    y[rng.random(y.shape) < missing] = np.nan
    start = random_params(np.random.default_rng(seed + 1), d=2, m=2, p=p)
    a = c if state_follows else 1.0
    n_iter = 8
    ref = fit_em(start, y, u, max_iter=n_iter, tol=0.0, progress=False)
    res = fit_em(_transform(start, c, a), c * y, u, max_iter=n_iter, tol=0.0, progress=False)
    assert res.n_iter == ref.n_iter == n_iter
    expected = _transform(ref.params, c, a)
    for name in ("m0", "P0", "F", "B", "Q", "H", "D", "R"):
        want = getattr(expected, name)
        np.testing.assert_allclose(
            getattr(res.params, name), want, rtol=1e-6, atol=1e-6 * np.abs(want).max(initial=0.0), err_msg=name
        )
    # log-likelihoods differ by the Jacobian of the change of units of the observed values
    n_obs = int((~np.isnan(y)).sum())
    np.testing.assert_allclose(
        res.log_likelihoods, ref.log_likelihoods - n_obs * np.log(c), rtol=1e-9, atol=1e-8 * n_obs * abs(np.log(c))
    )


@pytest.mark.parametrize("c", [1e-8, 1e-4, 1e4, 1e8])
def test_initialize_then_fit_follows_the_data_units(c):
    # the data-driven start must not floor variances in absolute units either
    rng = np.random.default_rng(3)
    truth = random_params(rng, d=2, m=3)
    _, y = LinearGaussianSSM(truth).sample(120, rng=rng)
    ref = LinearGaussianSSM.initialize(y, 2, rng=0).params
    got = LinearGaussianSSM.initialize(c * y, 2, rng=0).params
    want = _transform(ref, c, 1.0)
    for name in ("m0", "P0", "F", "Q", "H", "R"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-7, err_msg=name)
    res = LinearGaussianSSM(got).fit(c * y, max_iter=6, tol=0.0, progress=False)
    ref_fit = LinearGaussianSSM(ref).fit(y, max_iter=6, tol=0.0, progress=False)
    np.testing.assert_allclose(res.params.R, c * c * ref_fit.params.R, rtol=1e-6)
    np.testing.assert_allclose(
        res.params.H, c * ref_fit.params.H, rtol=1e-6, atol=1e-6 * c * np.abs(ref_fit.params.H).max()
    )
