"""Exact inference of the HMM family against brute-force enumeration of all K^T paths.

The oracle re-implements the model from its definition (AR mean, the restart
rule after a gap, marginalisation of missing coordinates with scipy) and sums
over every state path, with partial knowledge and missing data.
"""

import itertools

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from hmm import ARHMM, CategoricalEmissionParams, CategoricalHMM, GaussianEmissionParams, HMMParams
from hmm.forward_backward import backward, forward, two_slice_marginals

K, T, D, L = 3, 6, 2, 1


def _model(seed=0, input_dim=0):
    rng = np.random.default_rng(seed)
    covs = np.empty((K, D, D))
    covs0 = np.empty((K, D, D))
    for k in range(K):
        M = rng.normal(size=(D, D))
        covs[k] = M @ M.T + 0.5 * np.eye(D)
        M = rng.normal(size=(D, D))
        covs0[k] = M @ M.T + 0.5 * np.eye(D)
    e = GaussianEmissionParams.from_ar(
        bias=rng.normal(size=(K, D)),
        covs=covs,
        ar_coefs=0.4 * rng.normal(size=(K, L, D, D)),
        input_coefs=rng.normal(size=(K, D, input_dim)) if input_dim else None,
        init_means=rng.normal(size=(K, D)),
        init_covs=covs0,
    )
    pi0 = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    return ARHMM(K, D, L, input_dim=input_dim, params=HMMParams(pi0, A, e)), e, pi0, A


def _emission_oracle(e, y, u, t, k):
    row = y[t]
    obs = ~np.isnan(row)
    if not obs.any():
        return 1.0
    hist = y[t - L : t] if t >= L else None
    if hist is None or np.isnan(hist).any():
        mean, cov = e.init_means[k], e.init_covs[k]
    else:
        mean = e.bias[k] + sum(e.ar_coefs[k, l] @ y[t - 1 - l] for l in range(L))
        if u is not None:
            mean = mean + e.input_coefs[k] @ u[t]
        cov = e.covs[k]
    return multivariate_normal(mean[obs], cov[np.ix_(obs, obs)]).pdf(row[obs])


def _enumerate(pi0, A, lik):
    """Joint weights of all paths: (log Z, marginals (T,K), two-slice (T-1,K,K), best path)."""
    Tn, Kn = lik.shape
    Z = 0.0
    marg = np.zeros((Tn, Kn))
    xi = np.zeros((Tn - 1, Kn, Kn))
    best, best_w = None, -1.0
    for path in itertools.product(range(Kn), repeat=Tn):
        w = pi0[path[0]] * lik[0, path[0]]
        for t in range(1, Tn):
            w *= A[path[t - 1], path[t]] * lik[t, path[t]]
        Z += w
        for t in range(Tn):
            marg[t, path[t]] += w
        for t in range(1, Tn):
            xi[t - 1, path[t - 1], path[t]] += w
        if w > best_w:
            best, best_w = path, w
    return np.log(Z), marg / Z, xi / Z, np.array(best)


def _data(seed=1, input_dim=0):
    model, e, pi0, A = _model(0, input_dim)
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(T, input_dim)) if input_dim else None
    _, y = model.sample(T, rng=rng, inputs=u)
    y[2, 1] = np.nan  # a missing coordinate: marginalised, and step 3 restarts the autoregression
    y[4] = np.nan  # a missing step: likelihood 1, and step 5 restarts
    pl = rng.uniform(0.05, 1.0, size=(T, K))
    pl[1] = [1.0, 0.0, 1.0]  # state 1 ruled out at t = 1
    lik = np.array([[_emission_oracle(e, y, u, t, k) for k in range(K)] for t in range(T)]) * pl
    return model, y, u, pl, lik, pi0, A


@pytest.mark.parametrize("input_dim", [0, 1])
def test_likelihood_and_marginals_match_enumeration(input_dim):
    model, y, u, pl, lik, pi0, A = _data(input_dim=input_dim)
    logZ, marg, xi, best = _enumerate(pi0, A, lik)
    assert model.log_likelihood(y, inputs=u, pl=pl) == pytest.approx(logZ, rel=1e-10)
    sm = model.smooth(y, inputs=u, pl=pl)
    np.testing.assert_allclose(sm.smoothed_probs, marg, atol=1e-12)
    np.testing.assert_allclose(sm.transition_counts, xi.sum(axis=0), atol=1e-12)
    np.testing.assert_array_equal(model.most_likely_states(y, inputs=u, pl=pl), best)
    # filtering: p(z_t | y_{0:t}) is the enumeration over the prefix
    filt = model.filter(y, inputs=u, pl=pl)
    for t in range(1, T + 1):
        _, m_t, _, _ = _enumerate(pi0, A, lik[:t]) if t > 1 else (None, lik[:1] * pi0 / (lik[0] @ pi0), None, None)
        np.testing.assert_allclose(filt.filtered_probs[t - 1], m_t[t - 1], atol=1e-12)
    np.testing.assert_allclose(filt.predicted_probs[1:], filt.filtered_probs[:-1] @ A, atol=1e-12)


def test_two_slice_marginals_kernel_matches_enumeration():
    model, y, u, pl, lik, pi0, A = _data()
    _, _, xi, _ = _enumerate(pi0, A, lik)
    with np.errstate(divide="ignore"):
        ll = np.log(lik)
    _, filt, scale = forward(pi0, A[None], ll)
    beta = backward(A[None], ll, scale)
    np.testing.assert_allclose(two_slice_marginals(A[None], ll, filt, scale, beta), xi, atol=1e-12)


def test_posterior_path_samples_match_enumerated_marginals():
    model, y, u, pl, lik, pi0, A = _data()
    _, marg, xi, _ = _enumerate(pi0, A, lik)
    n = 20000
    paths = model.sample_posterior(y, n_samples=n, rng=3, pl=pl)
    freq = np.stack([(paths == k).mean(axis=0) for k in range(K)], axis=1)
    se = np.sqrt(marg * (1 - marg) / n) + 1e-12
    assert np.all(np.abs(freq - marg) <= 4.5 * se + 1e-9)
    pair = np.mean((paths[:, 2] == 0) & (paths[:, 3] == 2))
    assert abs(pair - xi[2, 0, 2]) <= 4.5 * np.sqrt(xi[2, 0, 2] * (1 - xi[2, 0, 2]) / n)


def test_categorical_matches_enumeration():
    rng = np.random.default_rng(5)
    B = rng.dirichlet(np.ones(4), size=K)
    pi0, A = rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K), size=K)
    model = CategoricalHMM(K, 4, params=HMMParams(pi0, A, CategoricalEmissionParams(B)))
    y = np.array([0, 3, np.nan, 1, 2, 2.0])
    pl = rng.uniform(0.1, 1, size=(T, K))
    lik = np.array([[1.0 if np.isnan(v) else B[k, int(v)] for k in range(K)] for v in y]) * pl
    logZ, marg, _, best = _enumerate(pi0, A, lik)
    assert model.log_likelihood(y, pl=pl) == pytest.approx(logZ, rel=1e-12)
    np.testing.assert_allclose(model.smooth(y, pl=pl).smoothed_probs, marg, atol=1e-12)
    np.testing.assert_array_equal(model.most_likely_states(y, pl=pl), best)


def test_all_ones_plausibility_is_the_plain_hmm_and_lists_match_singles():
    model, y, u, pl, lik, pi0, A = _data()
    ones = np.ones((T, K))
    assert model.log_likelihood(y, pl=ones) == model.log_likelihood(y)
    np.testing.assert_array_equal(model.smooth(y, pl=ones).smoothed_probs, model.smooth(y).smoothed_probs)
    y2 = y[:4].copy()
    both = model.log_likelihood([y, y2], pl=[pl, None])
    assert both == pytest.approx(model.log_likelihood(y, pl=pl) + model.log_likelihood(y2), rel=1e-12)
    res = model.filter([y, y2])
    assert isinstance(res, list) and len(res) == 2


def test_particle_kernels_agree_with_exact_emissions():
    model, y, u, pl, lik, pi0, A = _data()
    k = model.kernels()
    kp = model.kernel_params(pl=pl)
    with np.errstate(divide="ignore"):
        loglik = np.log(lik)
    for t in range(T):
        for s in range(K):
            assert k.log_emission(kp, t, np.array([float(s)]), y) == pytest.approx(loglik[t, s], rel=1e-10)
    assert k.log_transition(kp, 1, np.array([0.0]), np.array([2.0])) == pytest.approx(np.log(A[0, 2]))
    assert k.log_initial(kp, np.array([1.0])) == pytest.approx(np.log(pi0[1]))
    assert k.log_transition_bound(kp, 1) == pytest.approx(np.log(A.max()))


def test_forward_survives_steps_explained_only_by_unreachable_states():
    """Left-to-right chain in state 0; a step that only state 2 explains must not underflow to NaN."""
    from scipy.special import logsumexp

    from hmm.forward_backward import posteriors, smoother

    pi0 = np.array([1.0, 0.0, 0.0])
    A = np.array([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
    ll = np.zeros((6, 3))
    ll[1] = [-1500.0, -1600.0, 0.0]  # at t=1 only states 0 and 1 are reachable
    ll[2] = [-3.0, -1.0, 50.0]
    # log-space oracle
    with np.errstate(divide="ignore"):
        la, lA = np.log(pi0) + ll[0], np.log(A)
    for t in range(1, 6):
        la = logsumexp(la[:, None] + lA, axis=0) + ll[t]
    ref = logsumexp(la)
    in_place = lambda p, a, x: posteriors(p, a, x.copy(), overwrite=True)  # noqa: E731
    for fn in (posteriors, smoother, in_place):
        lik, filt, smo, counts = fn(pi0, A[None], ll)
        assert lik == pytest.approx(ref, rel=1e-12)
        assert np.isfinite(filt).all() and np.isfinite(smo).all() and np.isfinite(counts).all()
        np.testing.assert_allclose(smo.sum(axis=1), 1.0, atol=1e-12)
    lik, filt, scale = forward(pi0, A[None], ll)
    assert lik == pytest.approx(ref, rel=1e-12)
    beta = backward(A[None], ll, scale)
    assert np.isfinite(filt * beta).all()
