"""hmmlearn as an oracle, parameter recovery on a simulated ARHMM, forecasts, and bad input."""

import itertools

import numpy as np
import pytest

from hmm import ARHMM, HMM, GaussianEmissionParams, GaussianHMM, HMMParams, left_to_right
from statespace.errors import DataError, ParameterError, ShapeError


def _gaussian_problem(seed=0):
    rng = np.random.default_rng(seed)
    K, d = 3, 2
    means = 2.0 * rng.normal(size=(K, d))
    covs = np.stack([M @ M.T + 0.3 * np.eye(d) for M in rng.normal(size=(K, d, d))])
    pi0 = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K) * 2, size=K) * 0.5 + np.eye(K) * 0.5
    e = GaussianEmissionParams.from_ar(means, covs)
    model = GaussianHMM(K, d, params=HMMParams(pi0, A, e))
    return model, means, covs, pi0, A


def test_gaussian_hmm_matches_hmmlearn():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    model, means, covs, pi0, A = _gaussian_problem()
    _, y = model.sample(300, rng=1)
    ref = hmmlearn.GaussianHMM(n_components=3, covariance_type="full", init_params="", params="")
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = pi0, A, means, covs
    assert model.log_likelihood(y) == pytest.approx(ref.score(y), rel=1e-10)
    np.testing.assert_allclose(model.smooth(y).smoothed_probs, ref.predict_proba(y), atol=1e-9)
    np.testing.assert_array_equal(model.most_likely_states(y), ref.decode(y, algorithm="viterbi")[1])


def _match(est, true):
    """Permutation of estimated states minimising the distance to the true biases."""
    K = len(true)
    return min(itertools.permutations(range(K)), key=lambda p: np.abs(est[list(p)] - true).sum())


def test_parameter_recovery_3_state_2d_2_lag_arhmm():
    K, d, L = 3, 2, 2
    rng = np.random.default_rng(7)
    ar = np.empty((K, L, d, d))
    ar[:, 0] = np.array([[[0.5, 0.1], [0.0, 0.4]], [[-0.3, 0.0], [0.2, 0.3]], [[0.2, -0.2], [0.1, -0.4]]])
    ar[:, 1] = np.array([[[0.2, 0.0], [0.0, 0.1]], [[0.1, 0.1], [0.0, -0.2]], [[-0.1, 0.0], [0.1, 0.2]]])
    e = GaussianEmissionParams.from_ar(
        bias=np.array([[0.0, 0.0], [3.0, -2.0], [-3.0, 2.0]]),
        covs=np.stack([0.3 * np.eye(d)] * K),
        ar_coefs=ar,
        init_means=np.array([[0.0, 0.0], [3.0, -2.0], [-3.0, 2.0]]),
        init_covs=np.stack([np.eye(d)] * K),
    )
    A = np.array([[0.95, 0.03, 0.02], [0.04, 0.93, 0.03], [0.02, 0.05, 0.93]])
    truth = ARHMM(K, d, L, params=HMMParams(np.full(K, 1 / 3), A, e))
    ys = [truth.sample(500, rng=rng)[1] for _ in range(20)]
    model = ARHMM(K, d, L)
    model.fit(ys, n_restarts=2, rng=0, progress=False)
    p = model.params
    perm = list(_match(p.emission.bias, e.bias))
    assert np.abs(p.emission.ar_coefs[perm] - ar).max() < 0.05
    assert np.abs(p.A[np.ix_(perm, perm)] - A).max() < 0.03


def test_forecast_state_distribution_is_exact_and_rollout_mean_matches_one_step_ahead():
    model, means, covs, pi0, A = _gaussian_problem()
    _, y = model.sample(50, rng=2)
    fc = model.forecast(y, steps=3, n_samples=4000, rng=3)
    last = model.filter(y).filtered_probs[-1]
    np.testing.assert_allclose(
        fc.state_probs, np.stack([last @ np.linalg.matrix_power(A, h) for h in (1, 2, 3)]), atol=1e-12
    )
    exact = fc.state_probs[0] @ means
    se = fc.observations[:, 0].std(axis=0) / np.sqrt(4000)
    assert np.all(np.abs(fc.mean[0] - exact) < 4.5 * se)
    freq = np.bincount(fc.states[:, 2], minlength=3) / 4000
    assert np.all(
        np.abs(freq - fc.state_probs[2]) < 4.5 * np.sqrt(fc.state_probs[2] * (1 - fc.state_probs[2]) / 4000) + 1e-9
    )


def test_sample_through_kernels_has_the_model_transition_frequencies():
    model, means, covs, pi0, A = _gaussian_problem()
    x, y = model.sample(20000, rng=4)
    z = x[:, 0].astype(int)
    counts = np.zeros((3, 3))
    np.add.at(counts, (z[:-1], z[1:]), 1)
    est = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(est - A).max() < 0.03
    for k in range(3):
        assert np.abs(y[z == k].mean(axis=0) - means[k]).max() < 5 * np.sqrt(covs[k].diagonal().max() / (z == k).sum())


def test_bad_input_errors_name_the_problem():
    model, *_ = _gaussian_problem()
    y = np.zeros((10, 2))
    with pytest.raises(ShapeError, match=r"pl: expected shape \(10, 3\)"):
        model.log_likelihood(y, pl=np.ones((10, 2)))
    pl = np.ones((10, 3))
    pl[4] = 0.0
    with pytest.raises(DataError, match="time step 4"):
        model.filter(y, pl=pl)
    with pytest.raises(DataError, match=r"pl\[1\].*sequence 1, time step 4"):
        model.fit([y, y], pl=[np.ones((10, 3)), pl], progress=False)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        model.filter(y, pl=np.full((10, 3), 1.5))
    e = model.params.emission
    with pytest.raises(ParameterError, match="row"):
        HMMParams(np.full(3, 1 / 3), np.full((3, 3), 0.5), e)
    lr = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.0, 0.0, 1.0]])
    with pytest.raises(ParameterError, match="structural zero"):
        GaussianHMM(3, 2, transitions=left_to_right(3), params=HMMParams(np.full(3, 1 / 3), lr, e))
    with pytest.raises(ParameterError, match="unknown kind 'poisson'"):
        HMM(3, 2, emission="poisson")
    with pytest.raises(ParameterError, match="unknown structure"):
        HMM(3, 2, transitions="circular")
    with pytest.raises(ShapeError, match="2 columns"):
        model.log_likelihood(np.zeros((10, 3)))
    with pytest.raises(DataError, match="infinite value at time step 2"):
        model.log_likelihood(np.where(np.arange(20).reshape(10, 2) == 4, np.inf, 0.0))
    with pytest.raises(ParameterError, match="frozen"):
        model.fit(y, frozen=("everything",), progress=False)
    with pytest.raises(ParameterError, match="no parameters yet"):
        ARHMM(2, 1, 1).filter(np.zeros(5))
    with pytest.raises(ParameterError, match="not positive definite"):
        GaussianEmissionParams.from_ar(np.zeros((1, 2)), -np.eye(2)[None])
    from hmm import CategoricalHMM

    with pytest.raises(DataError, match="time step 1 holds 7"):
        CategoricalHMM(2, 3).fit(np.array([0.0, 7.0, 1.0]), progress=False)
