"""Baum-Welch never reports convergence after a drop, and its M-steps are scale-equivariant.

Oracles: the Gaussian HMM in units ``y -> c y`` is the same model with means
``c mu``, covariances ``c^2 Sigma`` and prior ``psi -> c^2 psi``; its log-likelihood
is shifted by the Jacobian ``-n log|c|`` (``n`` observed values). So the fit of ``c y``
from the transformed start must be the transformed fit of ``y``. The drop tests use a
deliberately worse M-step, and a supervised ARHMM whose initial-state covariances
are singular in exact arithmetic (two points in two dimensions).
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from hmm import ARHMM, EmissionPrior, GaussianEmissionParams, GaussianHMM, HMMParams
from statespace.convergence import ROUNDOFF, ObjectiveDecreaseWarning

sys.path.insert(0, str(Path(__file__).parent))
from test_hmm_em import NO_PRIOR, _ar_truth, _sim  # noqa: E402


def _data(seed=0, T=300):
    rng = np.random.default_rng(seed)
    y = np.concatenate(
        [
            rng.normal([0, 0], 1, (T // 3, 2)),
            rng.normal([3, -1], 0.5, (T // 3, 2)),
            rng.multivariate_normal([0, 2], [[1.0, 0.6], [0.6, 0.8]], T - 2 * (T // 3)),
        ]
    )
    y[rng.uniform(size=y.shape) < 0.1] = np.nan
    return y


def _start(c=1.0):
    means = np.array([[0.5, 0.0], [2.0, -0.5], [0.0, 1.5]]) * c
    covs = np.stack([np.eye(2), 0.7 * np.eye(2), np.array([[1.0, 0.3], [0.3, 1.0]])]) * c * c
    A = np.full((3, 3), 0.05) + 0.85 * np.eye(3)
    return HMMParams(np.full(3, 1 / 3), A, GaussianEmissionParams(means[:, None, :], covs))


def _scaled_prior(prior: EmissionPrior, c: float) -> EmissionPrior:
    return prior._replace(reg_covar=prior.reg_covar * c * c)


@pytest.mark.parametrize("cov", ["full", "diag", "tied"])
@pytest.mark.parametrize("prior", [NO_PRIOR, EmissionPrior(reg_covar=1e-2, cov_dof=3.0)], ids=["mle", "map"])
@pytest.mark.parametrize("c", [1e-16, 1e-8, 1e-4, 1e4, 1e8])
def test_gaussian_hmm_em_is_scale_equivariant(c, prior, cov):
    y = _data()
    n_iter = 12
    ref = GaussianHMM(3, 2, covariance_type=cov, prior=prior).fit(
        y, init=_start(), max_iter=n_iter, tol=0, progress=False
    )
    res = GaussianHMM(3, 2, covariance_type=cov, prior=_scaled_prior(prior, c)).fit(
        c * y, init=_start(c), max_iter=n_iter, tol=0, progress=False
    )
    # (the stopping rule reads |objective|, which the Jacobian shifts: a run at its fixed point
    # may stop a few iterations apart; the iterates themselves must agree)
    np.testing.assert_allclose(res.params.A, ref.params.A, rtol=1e-7, atol=1e-12)
    # round-off differs between the two runs and EM carries it on: agreement to 1e-7 of each array's scale
    for got, want in (
        (res.params.emission.weights, c * ref.params.emission.weights),
        (res.params.emission.covs, c * c * ref.params.emission.covs),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7 * np.abs(want).max())
    # objective = log-likelihood (+ log-prior, whose log|Sigma| term moves by nu0 * K * d * log|c|)
    n_obs = int((~np.isnan(y)).sum())
    n_cov = 1 if cov == "tied" else 3
    shift = -n_obs * np.log(c) - prior.cov_dof * n_cov * 2 * np.log(c)
    n = min(len(res.log_likelihoods), len(ref.log_likelihoods))
    np.testing.assert_allclose(
        res.log_likelihoods[:n], ref.log_likelihoods[:n] + shift, rtol=1e-9, atol=1e-9 * abs(shift)
    )


def test_baum_welch_stops_at_the_best_parameters_when_an_m_step_is_worse(monkeypatch):
    y = _data(1)
    model = GaussianHMM(3, 2, prior=NO_PRIOR)
    good = model._m_step_params
    calls = []

    def worse_at_the_third(stats, old, frozen=frozenset()):
        calls.append(1)
        new = good(stats, old, frozen)
        if len(calls) == 3:
            e = new.emission
            new = new._replace(emission=e._replace(covs=e.covs * 30.0, init_covs=e.init_covs * 30.0))
        return new

    monkeypatch.setattr(model, "_m_step_params", worse_at_the_third)
    with pytest.warns(ObjectiveDecreaseWarning, match="iteration 3"):
        res = model.fit(y, init=_start(), max_iter=40, tol=0, progress=False)
    assert not res.converged and len(calls) == 3
    # the parameters after two M-steps, whose objective ends the history
    ref = GaussianHMM(3, 2, prior=NO_PRIOR).fit(y, init=_start(), max_iter=2, tol=0, progress=False)
    np.testing.assert_array_equal(res.params.emission.covs, ref.params.emission.covs)
    np.testing.assert_allclose(res.log_likelihoods, ref.log_likelihoods, rtol=1e-12)
    assert model.params is res.params


def test_supervised_arhmm_with_singular_initial_covariances_stays_monotone():
    # two first observations per state in two dimensions: the exact initial-state covariance is
    # singular, and accepting its round-off version made the objective a function of round-off
    truth = _ar_truth()
    ys, xs, us = _sim(truth, 4, 150, seed=10)
    pls = [np.eye(3)[x] for x in xs]
    model = ARHMM(3, 2, 1, input_dim=1, prior=NO_PRIOR)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ObjectiveDecreaseWarning)
        res = model.fit(ys, inputs=us, pl=pls, max_iter=8, tol=1e-12, progress=False, rng=0)
    h = res.log_likelihoods
    assert (np.diff(h) >= -ROUNDOFF * np.abs(h[:-1])).all()
    for S in res.params.emission.init_covs:
        assert np.linalg.cond(S) < 1e12


def test_markov_jump_em_stops_at_the_best_parameters_when_an_m_step_is_worse(monkeypatch):
    import hmm.markov_jump.em as mjp_em
    from hmm.markov_jump import MarkovJumpProcess, MJPParams, generator_from_rates

    rng = np.random.default_rng(3)
    truth = MarkovJumpProcess(generator_from_rates(rng.uniform(0.2, 1.2, (3, 3))))
    grids = [np.sort(rng.choice(np.arange(0.0, 5.0, 0.25), size=8, replace=False)) for _ in range(60)]
    _, y = truth.sample(times=grids, rng=rng)
    start = generator_from_rates(np.ones((3, 3)))
    good = mjp_em.m_step
    calls = []

    def worse_at_the_third(params, *args, **kwargs):
        calls.append(1)
        new = good(params, *args, **kwargs)
        return new if len(calls) != 3 else MJPParams(np.asarray(new.Q) * 8.0, new.initial, new.observation)

    monkeypatch.setattr(mjp_em, "m_step", worse_at_the_third)
    with pytest.warns(ObjectiveDecreaseWarning, match="iteration 3"):
        res = MarkovJumpProcess(start).fit(y, times=grids, max_iter=50, tol=0, progress=False)
    assert not res.converged and len(calls) == 3
    monkeypatch.setattr(mjp_em, "m_step", good)
    ref = MarkovJumpProcess(start).fit(y, times=grids, max_iter=2, tol=0, progress=False)
    np.testing.assert_array_equal(np.asarray(res.params.Q), np.asarray(ref.params.Q))
    np.testing.assert_allclose(res.log_likelihoods, ref.log_likelihoods, rtol=1e-12)


@pytest.mark.parametrize("kind", ["learned", "iohmm"])
def test_generalised_em_stops_at_the_best_parameters_when_the_objective_drops(kind, monkeypatch):
    # the GEM loops are monotone by construction (exact or accepted-only-if-better M-steps);
    # a drop is forced by lowering the E-step's log-likelihood at the third evaluation
    from hmm import IOHMM, LearnedEmissionHMM

    rng = np.random.default_rng(0)
    y = np.concatenate([rng.normal(-1, 0.3, 40), rng.normal(1, 0.3, 40)])[:, None]
    u = rng.normal(size=(80, 1))
    if kind == "learned":
        model, kw = LearnedEmissionHMM(2, 1, layer="lru", hidden=4, state=4, n_layers=1), {}
    else:
        model, kw = IOHMM(2, 1, 1, layer="lru", hidden=4, state=4), {"inputs": u}
    seen, calls = [], []
    e_step = model._e_step

    def lowered(params, *args):
        out = e_step(params, *args)
        calls.append(1)
        seen.append(params)
        return (out[0] - 50.0 * (len(calls) == 3), *out[1:])

    monkeypatch.setattr(model, "_e_step", lowered)
    with pytest.warns(ObjectiveDecreaseWarning, match="iteration 2"):
        res = model.fit(y, max_iter=6, m_steps=5, tol=0, rng=0, progress=False, **kw)
    assert not res.converged and len(res.log_likelihoods) == 2
    assert res.params is seen[1] and model.params is seen[1]


@pytest.mark.parametrize("c", [1e-8, 1e-4, 1e4, 1e8])
def test_markov_jump_em_with_gaussian_levels_is_scale_equivariant(c):
    # y -> c y maps the levels' means to c means and stds to |c| stds; the likelihood moves by -n log c
    from hmm.markov_jump import GaussianLevels, MarkovJumpProcess, MJPParams, generator_from_rates

    rng = np.random.default_rng(1)
    Q = generator_from_rates(rng.uniform(0.3, 1.5, (3, 3)))
    truth = MarkovJumpProcess(Q, None, GaussianLevels([0.0, 1.0, 2.0], [0.4, 0.4, 0.4]))
    grids = [np.sort(rng.uniform(0, 6, 25)) for _ in range(15)]
    _, y = truth.sample(times=grids, rng=rng)
    R0 = np.ones((3, 3))

    def start(scale):
        return MJPParams(
            generator_from_rates(R0), None, GaussianLevels(np.array([-0.5, 0.8, 2.5]) * scale, np.ones(3) * scale)
        )

    ref = MarkovJumpProcess(params=start(1.0)).fit(y, times=grids, max_iter=15, tol=0.0, progress=False)
    res = MarkovJumpProcess(params=start(c)).fit([c * v for v in y], times=grids, max_iter=15, tol=0.0, progress=False)
    np.testing.assert_allclose(np.asarray(res.params.Q), np.asarray(ref.params.Q), rtol=1e-7)
    np.testing.assert_allclose(res.params.observation.means, c * ref.params.observation.means, rtol=1e-7, atol=1e-7 * c)
    np.testing.assert_allclose(res.params.observation.stds, c * ref.params.observation.stds, rtol=1e-7)
    n = len(res.log_likelihoods)
    n_obs = sum(int((~np.isnan(v)).sum()) for v in y)
    np.testing.assert_allclose(res.log_likelihoods[:n], ref.log_likelihoods[:n] - n_obs * np.log(c), rtol=1e-9)


@pytest.mark.parametrize("c", [1e-8, 1e8])
def test_arhmm_em_is_scale_equivariant(c):
    # y -> c y: intercepts and input coefficients scale by c, lag coefficients are unchanged,
    # covariances scale by c^2 (maximum likelihood: the ridge and covariance priors are off)
    truth = _ar_truth()
    ys, _, us = _sim(truth, 3, 120, seed=40)
    rng = np.random.default_rng(5)
    for y in ys:
        y[rng.uniform(size=y.shape) < 0.05] = np.nan
    e = truth.params.emission
    K, q, d = e.weights.shape
    row_scale = np.ones(q)
    row_scale[0] = row_scale[1 + d :] = c  # intercept and inputs; lags (rows 1..d) unchanged

    def start(s, rs):
        return truth.params._replace(
            emission=e._replace(
                weights=e.weights * 0.8 * rs[None, :, None],
                covs=e.covs * 1.5 * s * s,
                init_means=e.init_means * s,
                init_covs=e.init_covs * s * s,
            )
        )

    def fit(data, p0):
        return ARHMM(3, 2, 1, input_dim=1, prior=NO_PRIOR).fit(
            data, inputs=us, init=p0, max_iter=10, tol=0, progress=False
        )

    ref = fit(ys, start(1.0, np.ones(q)))
    res = fit([c * y for y in ys], start(c, row_scale))
    got, want = res.params.emission, ref.params.emission
    np.testing.assert_allclose(res.params.A, ref.params.A, rtol=1e-7, atol=1e-12)
    for g, w in (
        (got.weights, want.weights * row_scale[None, :, None]),
        (got.covs, want.covs * c * c),
        (got.init_means, want.init_means * c),
        (got.init_covs, want.init_covs * c * c),
    ):
        np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-7 * np.abs(w).max())
    n_obs = sum(int((~np.isnan(y)).sum()) for y in ys)
    n = min(len(res.log_likelihoods), len(ref.log_likelihoods))
    np.testing.assert_allclose(res.log_likelihoods[:n], ref.log_likelihoods[:n] - n_obs * np.log(c), rtol=1e-9)


@pytest.mark.parametrize("c", [1e-20, 1e-14, 1.0, 1e14])
def test_deep_hmm_standardiser_follows_the_data_units(c):
    # LearnedEmissionHMM and IOHMM learn on z = (y - loc) / scale, where their variance floors act:
    # the same z in any units keeps their fits scale-equivariant; a constant column stays unscaled
    from hmm.deep_support import Standardiser

    rng = np.random.default_rng(0)
    y = rng.normal([2.0, -1.0], [0.5, 3.0], size=(200, 2))
    y[rng.uniform(size=y.shape) < 0.1] = np.nan
    ref, got = Standardiser.fit([y], 2), Standardiser.fit([c * y], 2)
    np.testing.assert_allclose(got.loc, c * ref.loc, rtol=1e-12)
    np.testing.assert_allclose(got.scale, c * ref.scale, rtol=1e-12)
    const = Standardiser.fit([np.full((50, 1), 3.0 * c)], 1)
    assert const.scale[0] == 1.0


def test_mjp_level_variance_floor_is_per_state():
    """One outlier held by one state must not floor the other states' variances: with states
    assigned their points exactly, the M-step gives each state its points' own mean and variance."""
    from hmm.markov_jump import GaussianLevels

    rng = np.random.default_rng(0)
    groups = [rng.normal(0.0, 1.0, 100), np.append(rng.normal(5.0, 1.0, 99), 1e8)]
    stats = np.array([[len(g), g.sum(), (g**2).sum()] for g in groups]).ravel()
    fitted = GaussianLevels([0.0, 1.0], [1.0, 1.0]).m_step_from_statistics(stats, 2)
    np.testing.assert_allclose(fitted.means, [g.mean() for g in groups], rtol=1e-12)
    np.testing.assert_allclose(fitted.stds[0], groups[0].std(), rtol=1e-9)
