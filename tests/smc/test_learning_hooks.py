"""Models own their learning hooks: a user model written in the test gets score ascent and
Bayesian particle Gibbs by implementing only ``parametrization()`` / ``gibbs_prior()``, checked
against the exact Kalman score and a Kalman grid posterior; a model without them gets the library
error naming the missing method; a user result joins ``to_datatree`` through ``datatree_groups``."""

import math

import numpy as np
import pytest
from _ppg_oracles import ScalarLG, ScalarLGParams, kalman_rts

from smc.learning import bayesian_particle_gibbs, estimate_score, score_ascent, score_climbing
from statespace.diagnostics import DataTreeGroups, to_datatree
from statespace.errors import ParameterError
from statespace.interface import Parametrization


class ScoredLG(ScalarLG):
    """The scalar linear-Gaussian test model plus one hook: ``theta = (F, log Q, log R)``."""

    def parametrization(self, inputs=None):
        p = self.params
        return Parametrization(
            ("F", "log_Q", "log_R"),
            lambda m: np.array([m.params.F, math.log(m.params.Q), math.log(m.params.R)]),
            lambda th: ScoredLG(th[0], math.exp(th[1]), math.exp(th[2]), p.m0, p.P0),
        )


class FPrior:
    """Prior ``F ~ N(0, sd^2)`` with ``Q, R`` fixed: the conditional of ``F`` given the paths is Gaussian."""

    sd = 1.0

    def names(self, model):
        return ("F",)

    def values(self, model):
        return np.array([model.params.F])

    def draw(self, model, paths, data, rng):
        p = model.params
        prev = np.concatenate([x[:-1, 0] for x in paths])
        nxt = np.concatenate([x[1:, 0] for x in paths])
        prec = 1 / self.sd**2 + prev @ prev / p.Q
        F = (prev @ nxt / p.Q) / prec + rng.standard_normal() / math.sqrt(prec)
        return GibbsLG(F, p.Q, p.R, p.m0, p.P0)


class GibbsLG(ScalarLG):
    """The scalar linear-Gaussian test model plus one hook: its default particle Gibbs prior."""

    def gibbs_prior(self):
        return FPrior()


def _kalman_score(model, y):
    """Exact gradient of log p(y) in (F, log Q, log R) by central differences of the Kalman likelihood."""
    param = model.parametrization()
    th = param.to_vector(model)

    def loglik(t):
        return kalman_rts(param.from_vector(t).params, y).log_likelihood

    return np.array([(loglik(th + e) - loglik(th - e)) / 2e-6 for e in 1e-6 * np.eye(3)])


def test_a_user_model_gets_score_learning_from_its_parametrization_hook():
    model = ScoredLG(0.8, 0.5, 1.0)
    _, y = model.sample(60, rng=0)
    exact = _kalman_score(model, y)
    est = np.array(
        [estimate_score(model, y, n_particles=24, smoother="ppg", n_sweeps=12, burn_in=2, rng=i) for i in range(8)]
    )
    se = est.std(axis=0, ddof=1) / math.sqrt(len(est))
    assert (np.abs(est.mean(axis=0) - exact) < 4 * se).all(), (est.mean(axis=0), exact, se)
    res = score_ascent(model, y, n_iter=3, n_particles=8, rng=1, progress=False)
    assert isinstance(res.model, ScoredLG) and res.param_names == ("F", "log_Q", "log_R")


def test_a_user_model_gets_bayesian_particle_gibbs_from_its_prior_hook():
    truth = GibbsLG(0.7, 0.5, 0.5)
    _, y = truth.sample(40, rng=3)
    post = bayesian_particle_gibbs(
        GibbsLG(0.0, 0.5, 0.5),
        y,
        n_iter=600,
        n_particles=12,
        n_chains=2,
        burn_in=100,
        rng=4,
        progress=False,
        n_threads=1,
    )
    draws = post.samples["F"]
    # oracle: p(F | y) on a grid, N(0, 1) prior times the exact Kalman likelihood
    grid = np.linspace(-1.5, 1.5, 3001)
    logp = np.array([-0.5 * f * f + kalman_rts(ScalarLGParams(f, 0.5, 0.5, 0.0, 1.0), y).log_likelihood for f in grid])
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = w @ grid
    sd = math.sqrt(w @ (grid - mean) ** 2)
    batches = draws.reshape(2 * 10, -1).mean(axis=1)
    se = batches.std(ddof=1) / math.sqrt(len(batches))
    assert abs(draws.mean() - mean) < 4 * se + 1e-3, (draws.mean(), mean, se)
    assert abs(draws.std() / sd - 1) < 0.25, (draws.std(), sd)


def test_a_model_without_the_hooks_gets_the_library_error_naming_the_method():
    model = ScalarLG(0.8, 0.5, 1.0)
    _, y = model.sample(20, rng=0)
    for run in (
        lambda: score_ascent(model, y, n_iter=2, progress=False),
        lambda: score_climbing(model, y, n_iter=2, progress=False),
        lambda: estimate_score(model, y),
    ):
        with pytest.raises(ParameterError, match=r"ScalarLG does not implement parametrization\(\)"):
            run()
    with pytest.raises(ParameterError, match=r"ScalarLG does not implement gibbs_prior\(\)"):
        bayesian_particle_gibbs(model, y, n_iter=2, progress=False)


def test_a_user_result_joins_to_datatree_through_datatree_groups():
    pytest.importorskip("arviz")
    g = np.random.default_rng(0)
    samples = {"a": g.standard_normal((2, 30)), "B[0,1]": g.standard_normal((2, 30))}

    class MyChains:
        def datatree_groups(self, state_names=None):
            return DataTreeGroups.from_samples(samples, {"energy": np.ones((2, 30))})

    got = to_datatree(MyChains())
    want = to_datatree(samples)
    for name in ("a", "B"):
        np.testing.assert_array_equal(got["posterior"][name].values, want["posterior"][name].values)
    assert got["sample_stats"]["energy"].shape == (2, 30)
    both = to_datatree([MyChains(), MyChains()])  # a list of results stacks as chains
    assert dict(both["posterior"].sizes)["chain"] == 4


def test_score_climbing_refuses_a_linear_gaussian_model_with_inputs():
    """The linear-Gaussian log_joint has no B u / D u terms: climbing it on a model with inputs
    would follow another model's gradient, so the model's hook offers no log_joint and the
    routine says so (score ascent, which differences the compiled kernels, still applies)."""
    from statespace import LinearGaussianSSM

    model = LinearGaussianSSM(m0=[0.0], P0=[[1.0]], F=[[0.9]], Q=[[0.1]], H=[[1.0]], R=[[0.5]], B=[[1.0]], D=[[0.0]])
    u = np.ones((30, 1))
    _, y = model.sample(30, rng=0, inputs=u)
    assert model.parametrization().log_joint is None
    with pytest.raises(ParameterError, match="log_joint"):
        score_climbing(model, y, inputs=u, n_iter=2, n_particles=8, rng=0, progress=False)
