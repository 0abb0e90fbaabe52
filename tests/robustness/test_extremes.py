"""Extreme data and parameters: outliers, impossible data, long gaps, tiny scales.

Oracles:
* HMM posteriors: brute-force enumeration of all K^T state paths in log space
  (scipy's ``norm.logpdf`` and ``logsumexp``), exact for any outlier;
* Markov jump processes: ``scipy.linalg.expm(Q dt)`` for moderate gaps and the
  stationary distribution (null vector of Q^T) where ``exp(-gap * dt)`` is below
  1e-26, fed to a plain log-space forward recursion;
* linear-Gaussian trailing gaps: the smoother on the sequence without the gap
  (a gap after the last observation cannot change earlier posteriors);
* EM: the scale map (y -> c y gives m0 -> c m0, P0, Q, R -> c^2 ..., log-likelihood
  - T m log c; MJP times -> c times gives Q -> Q / c with the same likelihood).

Data of zero probability (docs/reliability.md): ``log_likelihood`` is ``-inf``
with no NaN and every verb that conditions on the data raises
``ImpossibleDataError`` naming the sequence and time step.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg
from hypothesis import assume, given
from hypothesis import strategies as st
from robustness_support import (
    FAST,
    HEAVY,
    Q3,
    assert_no_nan,
    categorical_hmm,
    expect_error,
    gaussian_hmm,
    lg_model,
    mjp,
)
from scipy.special import logsumexp
from scipy.stats import norm

from statespace import LinearGaussianSSM
from statespace.errors import ImpossibleDataError, StateSpaceError


# =========================================================================== class 5: outliers in HMMs
def _enumerate_log(log_pi0, log_A, loglik):
    """Log-space enumeration: (log Z, marginals (T, K), summed two-slice marginals (K, K)).

    Each step's log-likelihoods are shifted by their maximum first (a constant per
    step, which cancels in every posterior): path weights are then sums of terms
    of order one, so an outlier's ``-1e9`` never sets the precision of the others.
    """
    T, K = loglik.shape
    shift = loglik.max(axis=1, keepdims=True)
    loglik = loglik - shift
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    w = log_pi0[paths[:, 0]] + loglik[0, paths[:, 0]]
    for t in range(1, T):
        w = w + log_A[paths[:, t - 1], paths[:, t]] + loglik[t, paths[:, t]]
    logZ = logsumexp(w)
    p = np.exp(w - logZ)
    logZ = logZ + shift.sum()
    marg = np.zeros((T, K))
    counts = np.zeros((K, K))
    for t in range(T):
        np.add.at(marg[t], paths[:, t], p)
        if t:
            np.add.at(counts, (paths[:, t - 1], paths[:, t]), p)
    return logZ, marg, counts


MEANS3, SDS3 = (-1.0, 0.5, 2.0), (1.0, 0.5, 2.0)
A3 = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
PI3 = np.array([0.5, 0.3, 0.2])


@pytest.mark.issue18(5, "result")
@HEAVY
@given(
    T=st.integers(2, 6),
    where=st.data(),
    exponent=st.integers(0, 12),
    sign=st.sampled_from([-1.0, 1.0]),
    n_out=st.integers(1, 2),
    seed=st.integers(0, 1000),
)
def test_hmm_outlier_posteriors_equal_log_space_enumeration(T, where, exponent, sign, n_out, seed):
    model = gaussian_hmm(MEANS3, SDS3, A3, PI3)
    y = np.random.default_rng(seed).normal(size=T)
    for _ in range(n_out):
        y[where.draw(st.integers(0, T - 1))] = sign * 10.0**exponent
    loglik = norm.logpdf(y[:, None], np.array(MEANS3)[None], np.array(SDS3)[None])
    with np.errstate(divide="ignore"):
        logZ, marg, counts = _enumerate_log(np.log(PI3), np.log(A3), loglik)
    sm = model.smooth(y)
    np.testing.assert_allclose(sm.log_likelihood, logZ, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sm.smoothed_probs, marg, atol=1e-12)
    np.testing.assert_allclose(sm.transition_counts, counts, atol=1e-11)
    best = model.most_likely_states(y)
    path_score = (
        np.log(PI3[best[0]])
        + loglik[0, best[0]]
        + sum(np.log(A3[best[t - 1], best[t]]) + loglik[t, best[t]] for t in range(1, T))
    )
    assert path_score >= max(
        np.log(PI3[p[0]]) + loglik[0, p[0]] + sum(np.log(A3[p[t - 1], p[t]]) + loglik[t, p[t]] for t in range(1, T))
        for p in itertools.product(range(3), repeat=T)
    ) - 1e-9 * abs(path_score)


@pytest.mark.issue18(5, "result")
@pytest.mark.parametrize("outlier", [1e3, 1e6, 1e9], ids=["1e3", "1e6", "1e9"])
def test_hmm_outliers_keep_posteriors_normalised_at_scale(outlier):
    """K = 6, T = 3000, outliers every 97 steps: marginals sum to 1, counts to T - 1 (to 1e-12)."""
    K, T = 6, 3000
    rng = np.random.default_rng(7)
    A = rng.dirichlet(np.full(K, 2.0), size=K)
    model = gaussian_hmm(np.linspace(-2.5, 2.5, K), np.linspace(0.5, 1.5, K), A, np.full(K, 1.0 / K))
    y = rng.normal(size=T)
    y[::97] = outlier * np.sign(rng.normal(size=len(y[::97])))
    sm = model.smooth(y)
    assert_no_nan(sm)
    np.testing.assert_allclose(sm.smoothed_probs.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(sm.transition_counts.sum(), T - 1, rtol=1e-12)
    np.testing.assert_allclose(sm.filtered_probs.sum(axis=1), 1.0, atol=1e-12)


# =========================================================================== class 7: data of zero probability
POSTERIOR_VERBS = {
    "filter": lambda m, y, **kw: m.filter(y, **kw),
    "smooth": lambda m, y, **kw: m.smooth(y, **kw),
    "most_likely_states": lambda m, y, **kw: m.most_likely_states(y, **kw),
    "sample_posterior": lambda m, y, **kw: m.sample_posterior(y, rng=0, **kw),
    "forecast": lambda m, y, **kw: m.forecast(y, steps=2, n_samples=4, rng=0, **kw),
    "fit": lambda m, y, **kw: m.fit(y, max_iter=3, progress=False, **kw),
}


def _impossible_categorical():
    """Symbol 2 has probability zero in every state, so observing it is impossible."""
    return categorical_hmm(np.array([[0.7, 0.3, 0.0], [0.1, 0.9, 0.0]]))


def _impossible_by_transitions():
    """Deterministic emissions, identity transitions: 0 then 1 is impossible though each symbol is possible."""
    from hmm import CategoricalEmissionParams, CategoricalHMM, HMMParams

    return CategoricalHMM(2, 2, params=HMMParams(np.array([0.5, 0.5]), np.eye(2), CategoricalEmissionParams(np.eye(2))))


IMPOSSIBLE = {
    "categorical_symbol": (_impossible_categorical, [0.0, 1.0, 0.0, 2.0, 1.0], 3),
    "categorical_path": (_impossible_by_transitions, [0.0, 0.0, 1.0, 1.0], 2),
}


@pytest.mark.issue18(7, "result")
@pytest.mark.parametrize("case", sorted(IMPOSSIBLE))
def test_impossible_data_log_likelihood_is_minus_inf(case):
    make, y, _ = IMPOSSIBLE[case]
    assert make().log_likelihood(y) == -np.inf
    assert make().log_likelihood([np.array([0.0, 1.0]), np.array(y)]) == -np.inf


@pytest.mark.issue18(7, "error")
@pytest.mark.parametrize("verb", sorted(POSTERIOR_VERBS))
@pytest.mark.parametrize("case", sorted(IMPOSSIBLE))
def test_impossible_data_posterior_verbs_raise_naming_time_step(case, verb):
    make, y, t = IMPOSSIBLE[case]
    exc = expect_error("y", POSTERIOR_VERBS[verb], make(), np.array(y))
    assert isinstance(exc, ImpossibleDataError), f"{type(exc).__name__}: {exc}"
    assert f"time step {t}" in str(exc), str(exc)


@pytest.mark.issue18(7, "error")
@pytest.mark.parametrize("verb", ["filter", "smooth", "most_likely_states", "sample_posterior", "fit"])
def test_impossible_data_in_a_list_names_the_sequence(verb):
    make, y, t = IMPOSSIBLE["categorical_symbol"]
    exc = expect_error("y[1]", POSTERIOR_VERBS[verb], make(), [np.array([0.0, 1.0, 1.0]), np.array(y)])
    assert isinstance(exc, ImpossibleDataError) and f"time step {t}" in str(exc), str(exc)


@pytest.mark.issue18(7, "error")
@pytest.mark.parametrize("verb", sorted(POSTERIOR_VERBS))
def test_partial_labels_contradicting_the_chain(verb):
    """pl at t = 2 allows only state 0, which a left-to-right chain that has left it cannot re-enter."""
    from robustness_support import left_to_right_hmm

    y = np.array([0.1, 2.0, -2.0, 0.3])
    pl = np.ones((4, 3))
    pl[1] = [0.0, 1.0, 0.0]
    pl[2] = [1.0, 0.0, 0.0]
    assert left_to_right_hmm().log_likelihood(y, pl=pl) == -np.inf
    exc = expect_error(("y", "pl"), POSTERIOR_VERBS[verb], left_to_right_hmm(), y, pl=pl)
    assert isinstance(exc, ImpossibleDataError) and "time step 2" in str(exc), str(exc)


def _mjp_impossible():
    """State 2 is absorbing: a jump 2 -> 0 is impossible."""
    from hmm.markov_jump import MarkovJumpProcess

    return MarkovJumpProcess(np.array([[-1.0, 0.5, 0.5], [0.5, -1.0, 0.5], [0.0, 0.0, 0.0]]))


MJP_VERBS = {
    "filter": lambda m, y, t: m.filter(y, times=t),
    "smooth": lambda m, y, t: m.smooth(y, times=t),
    "most_likely_states": lambda m, y, t: m.most_likely_states(y, times=t),
    "fit": lambda m, y, t: m.fit(y, times=t, max_iter=3, progress=False),
}


@pytest.mark.issue18(7, "error")
@pytest.mark.parametrize("verb", sorted(MJP_VERBS))
def test_mjp_impossible_jump(verb):
    y, times = np.array([1.0, 2.0, 0.0, 1.0]), np.array([0.0, 0.5, 1.5, 2.0])
    assert _mjp_impossible().log_likelihood(y, times=times) == -np.inf
    exc = expect_error("y", MJP_VERBS[verb], _mjp_impossible(), y, times)
    assert isinstance(exc, ImpossibleDataError) and "time step 2" in str(exc), str(exc)


def _consistent(model, y, verbs):
    """ll finite: every verb returns no NaN; ll = -inf: every verb raises ImpossibleDataError; never NaN."""
    ll = model.log_likelihood(y)
    assert not np.isnan(ll), "log_likelihood is NaN"
    for name, verb in verbs.items():
        if np.isfinite(ll):
            try:
                out = verb(model, y)
            except StateSpaceError as exc:  # a named library error is an allowed answer, not "impossible"
                assert not isinstance(exc, ImpossibleDataError), f"{name}: finite log-likelihood {ll} but {exc}"
                continue
            assert_no_nan(out, name)
            if hasattr(out, "smoothed_probs"):
                np.testing.assert_allclose(out.smoothed_probs.sum(axis=1), 1.0, atol=1e-12)
        else:
            exc = expect_error("y", verb, model, y)
            assert isinstance(exc, ImpossibleDataError), f"{name}: {type(exc).__name__}: {exc}"


@pytest.mark.issue18(7, "result")
@FAST
@given(exponent=st.sampled_from([100, 150, 155, 160, 170, 200, 300]), T=st.integers(2, 6), seed=st.integers(0, 100))
def test_hmm_extreme_magnitudes_are_consistent_across_verbs(exponent, T, seed):
    y = np.random.default_rng(seed).normal(size=T) * 10.0**exponent
    _consistent(gaussian_hmm(), y, POSTERIOR_VERBS)


LG_VERBS = {
    "filter": lambda m, y: m.filter(y),
    "smooth": lambda m, y: m.smooth(y),
    "forecast": lambda m, y: m.forecast(y, steps=2),
    "fit": lambda m, y: m.fit(y, max_iter=3, progress=False),
}


@pytest.mark.issue18(7, "result")
@FAST
@given(exponent=st.sampled_from([100, 150, 155, 160, 170, 200, 300]), T=st.integers(2, 6), seed=st.integers(0, 100))
def test_lg_extreme_magnitudes_are_consistent_across_verbs(exponent, T, seed):
    y = np.random.default_rng(seed).normal(size=T) * 10.0**exponent
    _consistent(lg_model(1), y, LG_VERBS)


# =========================================================================== class 6: MJP long gaps
def _stationary(Q):
    w, v = np.linalg.eig(Q.T)
    p = np.real(v[:, np.argmin(np.abs(w))])
    return p / p.sum()


def _transition_oracle(Q, dt):
    gap = np.min(np.abs(np.real(np.linalg.eigvals(Q)))[np.abs(np.linalg.eigvals(Q)) > 1e-12])
    if gap * dt > 60.0:  # exp(-60) ~ 1e-26: the stationary limit to double precision
        return np.tile(_stationary(Q), (len(Q), 1))
    return scipy.linalg.expm(Q * dt)


def _mjp_oracle_loglik(model, y, times, kind):
    p = model.params
    K = len(p.Q)
    if kind == "exact":
        L = np.where(np.arange(K)[None] == y[:, None], 0.0, -np.inf)
    elif kind == "noisy":
        with np.errstate(divide="ignore"):
            L = np.log(p.emission[:, y.astype(int)].T)
    else:
        L = norm.logpdf(y[:, None], p.means[None], p.stds[None])
    with np.errstate(divide="ignore"):
        a = np.log(p.initial) + L[0]
        for t in range(1, len(y)):
            logP = np.log(_transition_oracle(p.Q, times[t] - times[t - 1]))
            a = logsumexp(a[:, None] + logP, axis=0) + L[t]
    return logsumexp(a)


GAPS = [1e-9, 1e-3, 0.7, 5.0, 60.0, 1e3, 1e6, 1e12, 1e50, 1e150, 1e300]


@pytest.mark.issue18(6, "result")
@pytest.mark.parametrize("kind", ["exact", "noisy", "gauss"])
@HEAVY
@given(gaps=st.lists(st.sampled_from(GAPS), min_size=1, max_size=4), seed=st.integers(0, 1000))
def test_mjp_any_gap_matches_expm_or_stationary_limit(kind, gaps, seed):
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    assume(np.all(np.diff(times) > 0))
    model = mjp(kind)
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        y = rng.normal(rng.integers(0, 3, len(times)).astype(float), 0.5)
    else:
        y = rng.integers(0, 3, len(times)).astype(float)
    want = _mjp_oracle_loglik(model, y, times, kind)
    got = model.log_likelihood(y, times=times)
    assert not np.isnan(got)
    if np.isfinite(want):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        for verb in ("filter", "smooth"):
            out = getattr(model, verb)(y, times=times)
            assert_no_nan(out, verb)
            probs = out.filtered_probs if verb == "filter" else out.smoothed_probs
            np.testing.assert_allclose(np.asarray(probs).sum(axis=1), 1.0, atol=1e-12)
    else:
        assert got == -np.inf


@pytest.mark.issue18(6, "result")
@pytest.mark.parametrize("dt", [1e3, 1e8, 1e15, 1e100, 1e300])
def test_mjp_transition_matrix_over_long_interval_is_stationary(dt):
    from hmm.markov_jump import transition_matrix

    P = np.asarray(transition_matrix(Q3, dt))
    assert_no_nan(P)
    np.testing.assert_allclose(P, np.tile(_stationary(Q3), (3, 1)), rtol=1e-12, atol=1e-15)


# =========================================================================== class 10: unstable LG, trailing gap
@pytest.mark.issue18(10, "result")
@pytest.mark.parametrize("F", [1.05, 1.5, 3.0])
@pytest.mark.parametrize("gap", [10, 300, 3000])
def test_lg_unstable_trailing_gap_leaves_earlier_posteriors_unchanged(F, gap, record_property):
    """Either the exact smoother (earlier steps as without the gap, no NaN) or a DataError naming y and the step."""
    model = LinearGaussianSSM(m0=np.zeros(1), P0=np.eye(1), F=[[F]], Q=[[0.1]], H=[[1.0]], R=[[0.5]])
    y_obs = np.random.default_rng(0).normal(size=12)
    y = np.concatenate([y_obs, np.full(gap, np.nan)])
    cut = model.smooth(y_obs)
    try:  # the forecast over the same horizon: finite, or a named error
        assert_no_nan(model.forecast(y_obs, steps=gap), "forecast")
    except StateSpaceError:
        expect_error("steps", model.forecast, y_obs, steps=gap)
    try:
        full = model.smooth(y)
    except StateSpaceError:
        exc = expect_error("y", model.smooth, y)
        assert "time step" in str(exc), str(exc)
        record_property("outcome", "clear error")
        # the likelihood does not involve the gap's moments: always the one without the gap
        np.testing.assert_allclose(model.log_likelihood(y), cut.log_likelihood, rtol=1e-12)
        return
    assert not np.isnan(full.smoothed_means).any(), "NaN smoothed means"
    assert not np.isnan(full.smoothed_covs).any(), "NaN smoothed covariances"
    np.testing.assert_allclose(full.log_likelihood, cut.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(full.smoothed_means[:12], cut.smoothed_means, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(full.smoothed_covs[:12], cut.smoothed_covs, rtol=1e-9, atol=1e-12)


# =========================================================================== class 4: EM
def _monotone(lls, what):
    lls = np.asarray(lls)
    assert not np.isnan(lls).any(), f"{what}: NaN in the EM objective"
    drops = np.diff(lls) < -1e-10 * np.maximum(1.0, np.abs(lls[:-1]))
    assert not drops.any(), f"{what}: EM objective decreased at iteration {int(np.argmax(drops)) + 1}: {lls}"


SCALES = [1e-9, 1e-6, 1e-3, 1e4]


@pytest.mark.issue18(4, "result")
@pytest.mark.parametrize("c", SCALES)
def test_lg_em_is_scale_equivariant_and_monotone(c):
    from statespace.linear_gaussian import LGSSMParams

    truth = lg_model(1)
    _, y = truth.sample(60, rng=11)
    init = LGSSMParams(
        m0=np.array([0.5, 0.0]),
        P0=2 * np.eye(2),
        F=[[1.0, 0.9], [0.0, 0.95]],
        Q=0.3 * np.eye(2),
        H=[[1.0, 0.0]],
        R=[[1.0]],
    )
    scaled = LGSSMParams(m0=c * init.m0, P0=c * c * init.P0, F=init.F, Q=c * c * init.Q, H=init.H, R=c * c * init.R)
    ref = truth.fit(y, init=init, max_iter=15, tol=0.0, progress=False)
    fit = truth.fit(c * y, init=scaled, max_iter=15, tol=0.0, progress=False)
    _monotone(fit.log_likelihoods, f"LG EM at scale {c}")
    n = np.count_nonzero(~np.isnan(y))
    np.testing.assert_allclose(
        np.asarray(fit.log_likelihoods), np.asarray(ref.log_likelihoods) - n * np.log(c), rtol=1e-8, atol=1e-6
    )
    for name, power in (("F", 0), ("H", 0), ("Q", 2), ("R", 2), ("m0", 1), ("P0", 2)):
        np.testing.assert_allclose(
            getattr(fit.params, name),
            c**power * getattr(ref.params, name),
            rtol=1e-6,
            atol=1e-9 * c**power,
            err_msg=name,
        )


@pytest.mark.issue18(4, "result")
@pytest.mark.parametrize("c", [1e-7, 1e-14])
def test_lg_em_never_reports_convergence_after_a_drop(c):
    """Noise variances ~c^2: the M-step's covariance floor must not lower the likelihood."""
    import warnings

    from statespace.linear_gaussian import LGSSMParams

    truth = lg_model(1)
    _, y = truth.sample(80, rng=5)
    p = truth.params  # start where the data came from, in the data's units: the floor must not push EM away
    start = LinearGaussianSSM(
        params=LGSSMParams(m0=c * p.m0, P0=c * c * p.P0, F=p.F, Q=c * c * p.Q, H=p.H, R=c * c * p.R)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = start.fit(c * y, max_iter=60, tol=1e-6, progress=False)
    _monotone(fit.log_likelihoods, f"LG EM at scale {c}")
    # independent of the reported history: the returned parameters' own likelihood
    final = LinearGaussianSSM(params=fit.params).log_likelihood(c * y)
    np.testing.assert_allclose(final, fit.log_likelihoods[-1], rtol=1e-9)
    initial = start.log_likelihood(c * y)
    assert final >= initial - 1e-9 * abs(initial), (
        f"EM returned worse parameters than it started from: {final} < {initial}"
    )
    dropped = [w for w in caught if "decrease" in str(w.message)]
    assert not (dropped and fit.converged), "converged=True reported after a drop of the objective"


@pytest.mark.issue18(4, "result")
@pytest.mark.parametrize("prior", ["none", "default_scaled"])
@pytest.mark.parametrize("c", SCALES)
def test_hmm_em_is_scale_equivariant_and_monotone(c, prior):
    """Baum-Welch on ``c y`` from scaled starting values gives the scaled estimates.

    The default ``EmissionPrior`` is a MAP prior in the data's units (``reg_covar``
    is a variance): it is rescaled with the data (``reg_covar -> c^2 reg_covar``),
    or switched off for the plain maximum-likelihood estimate.
    """
    from robustness_support import gaussian_emission

    from hmm import EmissionPrior, GaussianHMM, HMMParams

    def model(scale):
        p = EmissionPrior(0.0, 0.0, 0.0, 0.0) if prior == "none" else EmissionPrior(reg_covar=1e-6 * scale * scale)
        return GaussianHMM(2, 1, prior=p)

    _, y = gaussian_hmm((-1.0, 1.5), (0.8, 1.2)).sample(80, rng=3)
    y = np.asarray(y, dtype=float)
    init = gaussian_hmm((-0.5, 0.5), (1.0, 1.0)).params
    init_c = HMMParams(init.pi0, init.A, gaussian_emission((-0.5 * c, 0.5 * c), (c, c)))
    ref = model(1.0).fit(y, init=init, max_iter=15, tol=0.0, progress=False)
    fit = model(c).fit(c * y, init=init_c, max_iter=15, tol=0.0, progress=False)
    _monotone(fit.log_likelihoods, f"HMM EM at scale {c}")
    np.testing.assert_allclose(
        np.asarray(fit.log_likelihoods), np.asarray(ref.log_likelihoods) - len(y) * np.log(c), rtol=1e-8, atol=1e-6
    )
    np.testing.assert_allclose(fit.params.A, ref.params.A, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.params.emission.covs, c * c * ref.params.emission.covs, rtol=1e-6)
    np.testing.assert_allclose(fit.params.emission.weights[:, 0], c * ref.params.emission.weights[:, 0], rtol=1e-6)


@pytest.mark.issue18(4, "result")
@pytest.mark.parametrize("c", [1e-6, 1e-2, 1e3])
def test_mjp_em_is_time_scale_equivariant_and_monotone(c):
    from hmm.markov_jump import MJPParams

    model = mjp("noisy")
    times = np.cumsum(np.random.default_rng(2).exponential(0.7, 40))
    y = np.asarray(model.sample(times=times, rng=2)[1], dtype=float).ravel()
    init = mjp("noisy", Q=np.array([[-1.0, 0.5, 0.5], [0.5, -1.0, 0.5], [0.5, 0.5, -1.0]])).params
    init_c = (
        init._replace(Q=init.Q / c)
        if hasattr(init, "_replace")
        else MJPParams(init.Q / c, init.initial, init.observation)
    )
    ref = model.fit(y, times=times, init=init, max_iter=20, tol=0.0, progress=False)
    fit = model.fit(y, times=c * times, init=init_c, max_iter=20, tol=0.0, progress=False)
    _monotone(fit.log_likelihoods, f"MJP EM at time scale {c}")
    np.testing.assert_allclose(fit.log_likelihoods, ref.log_likelihoods, rtol=1e-8)
    np.testing.assert_allclose(fit.params.Q * c, ref.params.Q, rtol=1e-6, atol=1e-10)
