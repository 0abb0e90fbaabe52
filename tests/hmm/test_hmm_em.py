"""Baum-Welch: supervised limit, monotonicity on every model, plain-HMM limit, frozen parameters."""

import numpy as np
import pytest

from hmm import (
    ARHMM,
    CategoricalHMM,
    EmissionPrior,
    GaussianEmissionParams,
    GaussianHMM,
    HMMParams,
    ergodic,
    left_to_right,
    sticky,
)

NO_PRIOR = EmissionPrior(reg_covar=0.0, cov_dof=0.0, ridge=0.0)


def _ar_truth(K=3, d=2, L=1, p=1, seed=0):
    rng = np.random.default_rng(seed)
    e = GaussianEmissionParams.from_ar(
        bias=3.0 * rng.normal(size=(K, d)),
        covs=np.stack([np.eye(d) * (0.2 + 0.1 * k) for k in range(K)]),
        ar_coefs=0.3 * rng.normal(size=(K, L, d, d)),
        input_coefs=rng.normal(size=(K, d, p)),
    )
    A = np.full((K, K), 0.05 / (K - 1)) + np.eye(K) * (0.95 - 0.05 / (K - 1))
    return ARHMM(K, d, L, input_dim=p, params=HMMParams(np.full(K, 1.0 / K), A, e))


def _sim(model, n_seq, T, seed, input_dim=1):
    ys, xs, us = [], [], []
    for i in range(n_seq):
        rng = np.random.default_rng(seed + i)
        u = rng.normal(size=(T, input_dim))
        x, y = model.sample(T, rng=rng, inputs=u)
        ys.append(y), xs.append(x[:, 0].astype(int)), us.append(u)
    return ys, xs, us


def test_one_hot_plausibilities_give_the_supervised_mle():
    truth = _ar_truth()
    K, d, L = 3, 2, 1
    ys, xs, us = _sim(truth, 4, 150, seed=10)
    pls = [np.eye(K)[x] for x in xs]
    model = ARHMM(K, d, L, input_dim=1, prior=NO_PRIOR)
    model.fit(ys, inputs=us, pl=pls, max_iter=5, progress=False, rng=0)
    p = model.params
    # independent supervised estimates: counts and per-state least squares
    counts = np.zeros((K, K))
    for x in xs:
        np.add.at(counts, (x[:-1], x[1:]), 1.0)
    np.testing.assert_allclose(p.A, counts / counts.sum(axis=1, keepdims=True), atol=1e-10)
    np.testing.assert_allclose(p.pi0, np.bincount([x[0] for x in xs], minlength=K) / len(xs), atol=1e-10)
    for k in range(K):
        X = np.vstack(
            [np.column_stack([np.ones(len(y) - L), y[:-1], u[1:]])[x[1:] == k] for y, x, u in zip(ys, xs, us)]
        )
        Y = np.vstack([y[1:][x[1:] == k] for y, x in zip(ys, xs)])
        W, *_ = np.linalg.lstsq(X, Y, rcond=None)
        R = Y - X @ W
        np.testing.assert_allclose(p.emission.weights[k], W, atol=1e-8)
        np.testing.assert_allclose(p.emission.covs[k], R.T @ R / len(Y), atol=1e-8)
        first = np.array([y[0] for y, x in zip(ys, xs) if x[0] == k])
        if len(first) > 1:
            np.testing.assert_allclose(p.emission.init_means[k], first.mean(axis=0), atol=1e-10)


def test_all_ones_plausibilities_fit_exactly_like_the_plain_hmm():
    truth = _ar_truth()
    ys, xs, us = _sim(truth, 2, 100, seed=20)
    a = ARHMM(3, 2, 1, input_dim=1)
    b = ARHMM(3, 2, 1, input_dim=1)
    ra = a.fit(ys, inputs=us, max_iter=15, progress=False, rng=4)
    rb = b.fit(ys, inputs=us, pl=[np.ones((100, 3))] * 2, max_iter=15, progress=False, rng=4)
    np.testing.assert_allclose(ra.log_likelihoods, rb.log_likelihoods, rtol=1e-12)
    np.testing.assert_allclose(a.params.emission.weights, b.params.emission.weights, rtol=1e-10)


def _assert_monotone(history):
    h = np.asarray(history)
    assert len(h) >= 3
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]).max()), np.diff(h).min()


@pytest.mark.parametrize("cov", ["full", "diag", "tied"])
def test_em_is_monotone_gaussian(cov):
    rng = np.random.default_rng(1)
    y = np.concatenate(
        [rng.normal([0, 0], 1, (120, 2)), rng.normal([3, -1], 0.5, (120, 2)), rng.normal([0, 2], 1, (120, 2))]
    )
    y[rng.uniform(size=y.shape) < 0.1] = np.nan
    y[50] = np.nan
    model = GaussianHMM(3, 2, covariance_type=cov)
    _assert_monotone(model.fit(y, max_iter=30, tol=0, progress=False, rng=0).log_likelihoods)


def test_em_is_monotone_ar_with_inputs_missing_data_pl_and_sticky_prior():
    truth = _ar_truth()
    ys, xs, us = _sim(truth, 3, 120, seed=30)
    rng = np.random.default_rng(2)
    for y in ys:
        y[rng.uniform(size=y.shape) < 0.05] = np.nan
    pls = [np.where(rng.uniform(size=(120, 3)) < 0.3, 0.2, 1.0) for _ in ys]
    model = ARHMM(3, 2, 1, input_dim=1, transitions=sticky(ergodic(3), kappa=20.0, alpha=1.0), covariance_type="diag")
    _assert_monotone(model.fit(ys, inputs=us, pl=pls, max_iter=25, tol=0, progress=False, rng=0).log_likelihoods)


def test_em_is_monotone_left_to_right_and_keeps_structural_zeros():
    rng = np.random.default_rng(3)
    ys = [
        np.concatenate([rng.normal(m, 0.3, n) for m, n in zip([0, 1, 2.5], rng.integers(30, 60, 3))]) for _ in range(5)
    ]
    model = ARHMM(3, 1, 2, transitions=left_to_right(3))
    res = model.fit(ys, max_iter=25, tol=0, progress=False, rng=0, n_restarts=2)
    _assert_monotone(res.log_likelihoods)
    A = model.transition_matrix
    assert np.all(A[np.tril_indices(3, -1)] == 0) and A[0, 2] == 0 and A[2, 2] == 1.0


def test_em_is_monotone_categorical():
    rng = np.random.default_rng(4)
    y = np.concatenate([rng.choice(4, 100, p=[0.7, 0.1, 0.1, 0.1]), rng.choice(4, 100, p=[0.1, 0.1, 0.1, 0.7])]).astype(
        float
    )
    y[10:15] = np.nan
    model = CategoricalHMM(2, 4, prior=EmissionPrior(pseudo_count=0.5))
    _assert_monotone(model.fit(y, max_iter=30, tol=0, progress=False, rng=0).log_likelihoods)


def test_frozen_parameters_are_kept_and_warm_start_continues():
    truth = _ar_truth()
    ys, xs, us = _sim(truth, 2, 100, seed=40)
    model = ARHMM(3, 2, 1, input_dim=1, params=truth.params)
    res = model.fit(ys, inputs=us, frozen=("A", "weights"), max_iter=5, progress=False)
    np.testing.assert_array_equal(model.params.A, truth.params.A)
    np.testing.assert_array_equal(model.params.emission.weights, truth.params.emission.weights)
    assert not np.array_equal(model.params.emission.covs, truth.params.emission.covs)
    _assert_monotone(res.log_likelihoods)
    again = model.fit(ys, inputs=us, max_iter=3, progress=False)  # warm start from the fitted params
    assert again.log_likelihoods[0] >= res.log_likelihoods[-1] - 1e-9 * abs(res.log_likelihoods[-1])


def test_m_step_from_additive_functional_equals_supervised_em():
    """The per-particle sufficient statistics along the true path feed the same M-step."""
    truth = _ar_truth()
    ys, xs, us = _sim(truth, 1, 200, seed=50)
    y, x, u = ys[0], xs[0], us[0]
    fn = truth.sufficient_statistics()
    kp = truth.kernel_params(inputs=u)
    total, out = np.zeros(fn.dim), np.zeros(fn.dim)
    fn.initial(kp, np.array([float(x[0])]), y, out)
    total += out
    for t in range(1, len(y)):
        fn.step(kp, t, np.array([float(x[t - 1])]), np.array([float(x[t])]), y, out)
        total += out
    new = truth.m_step(total)
    sup = ARHMM(3, 2, 1, input_dim=1, params=truth.params)
    sup.fit(y, inputs=u, pl=np.eye(3)[x], max_iter=2, progress=False)
    np.testing.assert_allclose(new.params.emission.weights, sup.params.emission.weights, atol=1e-10)
    np.testing.assert_allclose(new.params.A, sup.params.A, atol=1e-12)


def test_save_load_round_trip_keeps_structure_and_likelihood(tmp_path):
    truth = _ar_truth()
    ys, xs, us = _sim(truth, 1, 80, seed=60)
    model = ARHMM(3, 2, 1, input_dim=1, transitions=sticky(ergodic(3), kappa=5.0), params=truth.params)
    path = tmp_path / "arhmm.npz"
    model.save(path)
    back = type(model).load(path)
    assert back.log_likelihood(ys[0], inputs=us[0]) == model.log_likelihood(ys[0], inputs=us[0])
    np.testing.assert_array_equal(back.structure.pseudo_counts, model.structure.pseudo_counts)
    assert back.lags == 1 and back.input_dim == 1
