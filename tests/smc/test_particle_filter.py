"""Particle filters against exact oracles: Kalman (linear-Gaussian) and forward filtering (HMM)."""

import math
from typing import NamedTuple

import numba as nb
import numpy as np
import pytest

import smc
from smc.particle_filter import Proposal, StateFunction, bootstrap_filter, forward_step, guided_filter
from statespace import StochasticVolatility
from statespace.errors import DataError, DegenerateWeightsError, ParameterError, ShapeError, StateSpaceError

# scalar linear-Gaussian model: x_t = F x_{t-1} + N(0, Q), y_t = H x_t + N(0, R)
M0, P0, F, Q, H, R = 0.0, 1.0, 0.9, 0.5, 1.0, 1.0


def rule_generators(seed, n):
    """The documented rule for a threaded list's generators, from NumPy alone: sequence ``i`` of a
    list of ``n`` draws from a generator of the caller's kind seeded by child ``i`` of a
    ``SeedSequence`` made of four draws of the caller's generator."""
    caller = np.random.default_rng(seed)
    children = np.random.SeedSequence(caller.integers(0, 2**63, size=4).tolist()).spawn(n)
    return [np.random.Generator(np.random.PCG64(c)) for c in children]


def lg_model():
    from statespace.linear_gaussian import LinearGaussianSSM

    return LinearGaussianSSM(m0=[M0], P0=[[P0]], F=[[F]], Q=[[Q]], H=[[H]], R=[[R]])


def hmm_model():
    from hmm import GaussianHMM, HMMParams
    from hmm.emissions import GaussianEmissionParams

    A = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    em = GaussianEmissionParams(weights=np.array([-2.0, 0.0, 2.0]).reshape(3, 1, 1), covs=np.ones((3, 1, 1)))
    return GaussianHMM(3, 1, params=HMMParams(np.ones(3) / 3, A, em))


# --- the locally optimal proposal of the scalar LG model, written as a user would ---
_S0 = 1.0 / (1.0 / P0 + H * H / R)
_S = 1.0 / (1.0 / Q + H * H / R)


@nb.njit
def _lognorm(x, m, v):
    return -0.5 * (math.log(2 * math.pi * v) + (x - m) ** 2 / v)


@nb.njit
def _q0_params(y):
    if math.isnan(y[0, 0]):
        return M0, P0
    return _S0 * (M0 / P0 + H * y[0, 0] / R), _S0


@nb.njit
def _q_params(t, x_prev, y):
    if math.isnan(y[t, 0]):
        return F * x_prev[0], Q
    return _S * (F * x_prev[0] / Q + H * y[t, 0] / R), _S


@nb.njit
def opt_sample_initial(kp, y, rng, x_out):
    m, v = _q0_params(y)
    x_out[0] = m + math.sqrt(v) * rng.standard_normal()


@nb.njit
def opt_log_initial(kp, y, x):
    m, v = _q0_params(y)
    return _lognorm(x[0], m, v)


@nb.njit
def opt_sample(kp, t, x_prev, y, rng, x_out):
    m, v = _q_params(t, x_prev, y)
    x_out[0] = m + math.sqrt(v) * rng.standard_normal()


@nb.njit
def opt_log_density(kp, t, x_prev, x, y):
    m, v = _q_params(t, x_prev, y)
    return _lognorm(x[0], m, v)


OPTIMAL = Proposal(opt_sample_initial, opt_log_initial, opt_sample, opt_log_density)


@nb.njit
def square(kp, t, x, out):
    out[0] = x[0] * x[0]


# every linear-Gaussian bootstrap run below uses it, so the filter is compiled once for that model
SQUARE = StateFunction(square, 1)


def _likelihood_ratio_check(run, exact, R):
    ratio = np.exp(np.array([run(r) for r in range(R)]) - exact)
    mean, se = ratio.mean(), ratio.std(ddof=1) / math.sqrt(R)
    assert abs(mean - 1.0) < 3 * se, (mean, se)
    return mean, se


@pytest.mark.parametrize("resampling", ["systematic", "multinomial"])
def test_bootstrap_likelihood_is_unbiased(resampling):
    model = lg_model()
    _, y = model.sample(30, rng=11)
    exact = model.log_likelihood(y)
    _, se = _likelihood_ratio_check(
        lambda r: (
            bootstrap_filter(model, y, 64, rng=1000 + r, resampling=resampling, state_function=SQUARE).log_likelihood
        ),
        exact,
        300,
    )
    assert se < 0.05  # the check has power: the estimator is not wildly dispersed


def test_guided_likelihood_is_unbiased_with_missing_data():
    model = lg_model()
    _, y = model.sample(30, rng=12)
    y[[3, 4, 17]] = np.nan
    exact = model.log_likelihood(y)
    _likelihood_ratio_check(lambda r: guided_filter(model, y, OPTIMAL, 32, rng=r).log_likelihood, exact, 300)


def test_filtered_moments_match_kalman():
    model = lg_model()
    _, y = model.sample(100, rng=3)
    kf = model.filter(y)
    N = 4000
    res = bootstrap_filter(model, y, N, rng=4, state_function=SQUARE)
    var = kf.filtered_covs[:, 0, 0]
    # standardised errors: (pf - kf) / sd(pf), sd from the filtered variance and the ESS
    z = (res.filtered_means[:, 0] - kf.filtered_means[:, 0]) / np.sqrt(var / res.ess)
    assert np.mean(z**2) < 4.0 and np.max(np.abs(z)) < 6.0
    # Gaussian filtering laws: sd of a variance estimate ~ v sqrt(2/ESS), Var(x^2) = 2v^2 + 4m^2 v
    z_var = (res.filtered_covs[:, 0, 0] - var) / (var * np.sqrt(2.0 / res.ess))
    assert np.max(np.abs(z_var)) < 6.0
    m = kf.filtered_means[:, 0]
    z_sq = (res.filtered_moments[:, 0] - (var + m**2)) / np.sqrt((2 * var**2 + 4 * m**2 * var) / res.ess)
    assert np.max(np.abs(z_sq)) < 6.0


def test_guided_optimal_proposal_beats_bootstrap_ess():
    model = lg_model()
    _, y = model.sample(100, rng=5)
    boot = bootstrap_filter(model, y, 500, rng=6, ess_threshold=1.0, state_function=SQUARE)
    opt = guided_filter(model, y, OPTIMAL, 500, rng=6, ess_threshold=1.0)
    assert opt.ess.mean() > boot.ess.mean()
    kf = model.filter(y)
    assert np.abs(opt.filtered_means[:, 0] - kf.filtered_means[:, 0]).max() < 0.25


def test_hmm_filtered_probabilities_match_forward_filter():
    model = hmm_model()
    _, y = model.sample(80, rng=0)
    exact = model.filter(y)
    N = 4000
    res = bootstrap_filter(model, y, N, rng=1)
    assert res.filtered_probs.shape == exact.filtered_probs.shape
    p = exact.filtered_probs
    sd = np.sqrt(p * (1 - p) / res.ess[:, None]) + 1e-3
    assert np.max(np.abs(res.filtered_probs - p) / sd) < 6.0
    np.testing.assert_allclose(res.filtered_probs.sum(axis=1), 1.0)
    _likelihood_ratio_check(
        lambda r: bootstrap_filter(model, y[:20], 100, rng=r).log_likelihood, model.log_likelihood(y[:20]), 200
    )


def test_missing_observation_leaves_weights_unchanged():
    model = StochasticVolatility()
    _, y = model.sample(40, rng=0)
    y[10] = np.nan
    res = bootstrap_filter(model, y, 300, rng=1, ess_threshold=0.0, return_history=True)
    assert not res.resampled.any()
    np.testing.assert_allclose(res.log_weight_history[10], res.log_weight_history[9], atol=1e-12)
    assert res.log_likelihood_increments[10] == pytest.approx(0.0, abs=1e-12)
    assert res.ess[10] == pytest.approx(res.ess[9])


def test_history_ancestors_and_thresholds():
    model = StochasticVolatility()
    _, y = model.sample(50, rng=0)
    N = 200
    always = bootstrap_filter(model, y, N, rng=2, ess_threshold=1.0, return_history=True)
    assert always.resampled[1:].all() and not always.resampled[0]
    assert always.ancestors.shape == (50, N) and always.particle_history.shape == (50, N, 1)
    np.testing.assert_array_equal(always.ancestors[0], np.arange(N))
    assert np.all((always.ancestors >= 0) & (always.ancestors < N))
    never = bootstrap_filter(model, y, N, rng=2, ess_threshold=0.0, return_history=True)
    assert not never.resampled.any()
    np.testing.assert_array_equal(never.ancestors, np.tile(np.arange(N), (50, 1)))
    adaptive = bootstrap_filter(model, y, N, rng=2)
    for t in range(1, 50):
        assert adaptive.resampled[t] == (adaptive.ess[t - 1] < 0.5 * N)
    assert bootstrap_filter(model, y, N, rng=2).ancestors is None


def test_same_seed_same_result_and_lists():
    model = StochasticVolatility()
    _, y1 = model.sample(30, rng=0)
    _, y2 = model.sample(20, rng=1)
    a = bootstrap_filter(model, y1, 100, rng=9)
    b = bootstrap_filter(model, y1, 100, rng=9)
    assert a.log_likelihood == b.log_likelihood
    np.testing.assert_array_equal(a.filtered_means, b.filtered_means)
    both = bootstrap_filter(model, [y1, y2], 100, rng=3)
    assert isinstance(both, list) and [len(r.ess) for r in both] == [30, 20]


def test_degenerate_weights_name_the_time_step():
    # y_t^2 overflows to inf: every SV emission log-density is -inf at t = 7
    y = np.zeros(20)
    y[7] = 1e200
    with pytest.raises(DegenerateWeightsError, match=r"t=7.*more particles") as err:
        bootstrap_filter(StochasticVolatility(), y, 50, rng=0)
    assert err.value.t == 7
    assert isinstance(err.value, StateSpaceError)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_particles=0), ParameterError, "n_particles"),
        (dict(ess_threshold=1.5), ParameterError, "ess_threshold"),
        (dict(resampling="nope"), ParameterError, "resampling"),
        (dict(y=np.ones((5, 2))), ShapeError, "y"),
        (dict(y=np.array([0.0, np.inf])), StateSpaceError, "time step 1"),
        (dict(state_function=square), ParameterError, "state_function"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = dict(model=StochasticVolatility(), y=np.zeros(5), n_particles=10)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        bootstrap_filter(**args)


def test_exported_from_package():
    assert smc.bootstrap_filter is bootstrap_filter and smc.guided_filter is guided_filter


def _lg_with_inputs():
    from statespace.linear_gaussian import LinearGaussianSSM

    return LinearGaussianSSM(m0=[0.0], P0=[[1.0]], F=[[0.8]], Q=[[0.3]], H=[[1.0]], R=[[0.5]], B=[[1.0]], D=[[0.5]])


def test_inputs_follow_the_observations_sequence_by_sequence():
    """One rule pairs inputs[i] with y[i] for every particle routine: a batch run equals the
    sequences run one by one on the same generator (a mispairing or a shared input would differ),
    and the filters and particle EM reject the same malformed inputs with the same message."""
    from smc.learning import particle_em

    model = _lg_with_inputs()
    u1, u2 = np.linspace(-2.0, 2.0, 12)[:, None], np.full((8, 1), 3.0)
    _, y1 = model.sample(12, rng=0, inputs=u1)
    _, y2 = model.sample(8, rng=1, inputs=u2)
    batch = bootstrap_filter(model, [y1, y2], 200, rng=np.random.default_rng(5), inputs=[u1, u2])
    g = np.random.default_rng(5)
    one_by_one = [
        bootstrap_filter(model, y1, 200, rng=g, inputs=u1),
        bootstrap_filter(model, y2, 200, rng=g, inputs=u2),
    ]
    for b, s in zip(batch, one_by_one):
        assert np.array_equal(b.filtered_means, s.filtered_means) and b.log_likelihood == s.log_likelihood
    bad = [
        (u1, ShapeError, r"inputs: got 1 sequence\(s\) for 2 observation sequence\(s\)"),
        ([u1, u2[:5]], ShapeError, r"inputs\[1\]: expected 8 rows to match the observations, got 5"),
        (
            [u1, np.where(np.arange(8)[:, None] == 6, np.nan, u2)],
            DataError,
            r"inputs\[1\]: non-finite value at time step 6",
        ),
    ]
    for inputs, error, match in bad:
        with pytest.raises(error, match=match):
            bootstrap_filter(model, [y1, y2], 20, rng=0, inputs=inputs)
        with pytest.raises(error, match=match):
            particle_em(model, [y1, y2], n_iter=1, n_particles=4, inputs=inputs, rng=0, progress=False)


# --- the reweighting loop: without reference counting, and with it for densities that allocate ---
class _ScalarLGParams(NamedTuple):
    F: float
    Q: float
    R: float


@nb.njit
def _u_sample_initial(kp, rng, x):
    x[0] = M0 + math.sqrt(P0) * rng.standard_normal()


@nb.njit
def _u_log_initial(kp, x):
    return -0.5 * (math.log(2 * math.pi * P0) + (x[0] - M0) ** 2 / P0)


@nb.njit
def _u_sample_transition(kp, t, xp, rng, x):
    x[0] = kp.F * xp[0] + math.sqrt(kp.Q) * rng.standard_normal()


@nb.njit
def _u_log_transition(kp, t, xp, x):
    return -0.5 * (math.log(2 * math.pi * kp.Q) + (x[0] - kp.F * xp[0]) ** 2 / kp.Q)


@nb.njit
def _u_log_transition_bound(kp, t):
    return -0.5 * math.log(2 * math.pi * kp.Q)


@nb.njit
def _u_log_emission(kp, t, x, y):
    v = y[t, 0]
    if math.isnan(v):
        return 0.0
    return -0.5 * (math.log(2 * math.pi * kp.R) + (v - H * x[0]) ** 2 / kp.R)


@nb.njit
def _u_log_emission_allocating(kp, t, x, y):
    # the same density through a temporary array: it cannot compile without reference counting
    r = np.empty(1)
    r[0] = y[t, 0] - H * x[0]
    if math.isnan(r[0]):
        return 0.0
    return -0.5 * (math.log(2 * math.pi * kp.R) + r[0] ** 2 / kp.R)


@nb.njit
def _u_sample_emission(kp, t, x, y, rng, y_out):
    y_out[0] = H * x[0] + math.sqrt(kp.R) * rng.standard_normal()


def _user_lg(log_emission):
    from statespace import ModelKernels, StateSpaceModel

    class UserLG(StateSpaceModel):
        def kernels(self):
            return ModelKernels(
                _u_sample_initial,
                _u_log_initial,
                _u_sample_transition,
                _u_log_transition,
                _u_log_transition_bound,
                log_emission,
                _u_sample_emission,
                state_dim=1,
                obs_dim=1,
            )

        def kernel_params(self, inputs=None, times=None):
            return _ScalarLGParams(F, Q, R)

    return UserLG()


def test_emission_density_that_allocates_gives_the_same_filter_and_paris():
    """A user's emission density that allocates (a temporary array) runs in the filter and PaRIS, whose
    reweighting loop is compiled without reference counting (a density compiled from there could not
    allocate), with the same draws and weights as its non-allocating twin (same seed), whose
    likelihood estimate agrees with Kalman's. Each run gets a fresh dispatcher, so that the density
    is compiled for the first time inside that entry point's loop."""

    def fresh():
        return _user_lg(nb.njit(_u_log_emission_allocating.py_func))

    _, y = lg_model().sample(60, rng=5)
    y[[7, 30]] = np.nan
    plain = _user_lg(_u_log_emission)
    a = bootstrap_filter(plain, y, 500, rng=11)
    b = bootstrap_filter(fresh(), y, 500, rng=11)
    np.testing.assert_allclose(b.log_likelihood_increments, a.log_likelihood_increments, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.particles, a.particles, rtol=1e-12)
    fun = smc.smoothed_marginals_functional(len(y))
    pa = smc.paris_smoother(plain, y, fun, n_particles=200, rng=3)
    pb = smc.paris_smoother(fresh(), y, fun, n_particles=200, rng=3)
    np.testing.assert_allclose(pb.estimates, pa.estimates, rtol=1e-10, atol=1e-12)
    online = smc.PaRIS(fresh(), fun, n_particles=200, rng=3)
    for row in y:
        online.update(row)
    np.testing.assert_allclose(online.estimate, pb.estimate, rtol=1e-10, atol=1e-12)
    exact = lg_model().log_likelihood(y)
    _likelihood_ratio_check(lambda r: bootstrap_filter(plain, y, 500, rng=100 + r).log_likelihood, exact, 40)


@nb.njit
def _bootstrap_move(kernels, proposal, kp, t, y, x_prev, W, lse, rng, x_new, logw, anc):
    forward_step(kernels, proposal, False, kp, t, y, x_prev, W, lse, False, 0, rng, x_new, logw, anc)


def test_forward_step_alone_compiles_an_allocating_density_with_reference_counting():
    """``forward_step`` compiled on its own (as in online PaRIS's step when its cache entry is rebuilt)
    with a density never compiled before: the density allocates, so it must be compiled with
    reference counting although the reweighting loop runs without; the weights are the density's
    own values (its Python function, particle by particle) plus the carried normalised log-weights
    (``log W``, from NumPy)."""
    from scipy.special import logsumexp

    from smc.particle_filter import BOOTSTRAP

    fresh = nb.njit(_u_log_emission_allocating.py_func)
    kernels, kp = _user_lg(fresh).kernels(), _ScalarLGParams(F, Q, R)
    rng = np.random.default_rng(0)
    x_prev, y = rng.standard_normal((50, 1)), rng.standard_normal((5, 1))
    y[3] = np.nan
    prev = rng.standard_normal(50) * 3.0 - 40.0  # the previous step's unnormalised log-weights
    lse = logsumexp(prev)
    W = np.exp(prev - lse)
    for t in (1, 3):
        x_new, logw, anc = np.empty((50, 1)), prev.copy(), np.zeros(50, dtype=np.int64)
        _bootstrap_move(kernels, BOOTSTRAP, kp, t, y, x_prev, W, lse, rng, x_new, logw, anc)
        want = [_u_log_emission_allocating.py_func(kp, t, x_new[n], y) + np.log(W[n]) for n in range(50)]
        np.testing.assert_allclose(logw, want, rtol=1e-12)
        np.testing.assert_array_equal(anc, np.arange(50))
