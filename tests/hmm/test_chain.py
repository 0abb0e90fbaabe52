"""The one chain base (hmm.chain) and the EM driver (hmm.em): the verbs every chain gets from it,
checked against brute-force enumeration of the K^T paths and against the definitions."""

import itertools
import pickle

import numpy as np
import pytest

import hmm.model as hmm_model
from hmm import ARHMM, CategoricalHMM, EmissionPrior, GaussianEmissionParams, GaussianHMM, HMMParams
from hmm.em import chain_e_step
from statespace.errors import ImpossibleDataError, ParameterError


def _enumerate(pi0, As, lik):
    """``p(z_{T-1} | y)`` and the expected statistics of every path (T small): an independent oracle."""
    T, K = lik.shape
    last, first, counts, Z = np.zeros(K), np.zeros(K), np.zeros((K, K)), 0.0
    for path in itertools.product(range(K), repeat=T):
        w = pi0[path[0]] * lik[0, path[0]]
        for t in range(1, T):
            w *= As[min(t - 1, len(As) - 1)][path[t - 1], path[t]] * lik[t, path[t]]
        Z += w
        last[path[-1]] += w
        first[path[0]] += w
        for t in range(1, T):
            counts[path[t - 1], path[t]] += w
    return np.log(Z), last / Z, first / Z, counts / Z


def _gaussian_hmm(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.ones(3), size=3)
    e = GaussianEmissionParams(np.array([[[-2.0]], [[0.0]], [[2.5]]]), np.array([[[0.5]], [[1.0]], [[0.7]]]))
    return GaussianHMM(3, 1, params=HMMParams(rng.dirichlet(np.ones(3)), A, e))


def _lik(model, y):
    from scipy.stats import norm

    e = model.params.emission
    return norm.pdf(y[:, :1], e.weights[:, 0, 0][None], np.sqrt(e.covs[:, 0, 0])[None])


def test_forecast_of_a_list_is_one_exact_forecast_per_sequence():
    model = _gaussian_hmm()
    ys = [model.sample(T, rng=s)[1] for s, T in ((1, 5), (2, 4))]
    out = model.forecast(ys, steps=3, n_samples=7, rng=0)
    assert isinstance(out, list) and len(out) == 2
    for y, fc in zip(ys, out):
        _, last, _, _ = _enumerate(model.params.pi0, [model.params.A], _lik(model, y))
        want = np.array([last @ np.linalg.matrix_power(model.params.A, h) for h in (1, 2, 3)])
        np.testing.assert_allclose(fc.state_probs, want, rtol=1e-10)
        assert fc.states.shape == (7, 3) and fc.observations.shape == (7, 3, 1)


def test_chain_e_step_is_additive_over_shards_and_matches_enumeration():
    model = _gaussian_hmm(1)
    ys = [model.sample(T, rng=s)[1] for s, T in ((3, 5), (4, 3), (5, 4))]
    items = [(y, np.zeros((len(y), 0)), None) for y in ys]
    whole = chain_e_step((model.emission_model, model.params), items)
    parts = [
        chain_e_step((model.emission_model, model.params), items[:1]),
        chain_e_step((model.emission_model, model.params), items[1:]),
    ]
    for field in range(4):
        np.testing.assert_allclose(
            np.asarray(parts[0][field]) + np.asarray(parts[1][field]), np.asarray(whole[field]), rtol=1e-12
        )
    ll, first, counts = 0.0, np.zeros(3), np.zeros((3, 3))
    for y in ys:
        z, _, f, c = _enumerate(model.params.pi0, [model.params.A], _lik(model, y))
        ll, first, counts = ll + z, first + f, counts + c
    assert whole.log_likelihood == pytest.approx(ll, rel=1e-10)
    np.testing.assert_allclose(whole.initial, first, rtol=1e-9)
    np.testing.assert_allclose(whole.transitions, counts, rtol=1e-9, atol=1e-12)
    pickle.loads(pickle.dumps((chain_e_step, (model.emission_model, model.params), items)))  # for Dask workers


def test_frozen_takes_parameter_field_names_only():
    model = _gaussian_hmm()
    y = model.sample(30, rng=0)[1]
    for old in ("initial", "transitions", "emissions", "coefs", "init"):
        with pytest.raises(ParameterError, match=r"frozen: unknown.*'A'.*'covs'.*'init_covs'.*'pi0'.*'weights'"):
            model.fit(y, frozen=(old,), max_iter=1, progress=False)
    with pytest.raises(ParameterError, match="'probs'"):
        CategoricalHMM(2, 3).fit(np.zeros(5), frozen=("A", "covs"), max_iter=1, progress=False)
    with pytest.raises(TypeError):
        model.fit(y, init_params=model.params, progress=False)


def test_initial_covariances_with_frozen_initial_means_are_the_scatter_about_them():
    # known states (one-hot plausibilities): the M-step's init_covs is the weighted scatter of the
    # sequences' first observations about the kept init_means, computed here from the data alone
    rng = np.random.default_rng(3)
    K, d, n = 2, 2, 60
    ys, pls, states = [], [], rng.integers(0, K, n)
    for s in states:
        y = rng.normal(size=(8, d)) + 3.0 * s
        ys.append(y)
        pls.append(np.eye(K)[np.r_[s, rng.integers(0, K, 7)]])
    e = GaussianEmissionParams.from_ar(
        np.zeros((K, d)),
        np.tile(np.eye(d), (K, 1, 1)),
        0.1 * np.ones((K, 1, d, d)),
        init_means=np.array([[0.5, -0.5], [2.0, 2.5]]),
    )
    start = HMMParams(np.full(K, 0.5), np.full((K, K), 0.5), e)
    prior = EmissionPrior(reg_covar=0.0, cov_dof=0.0, ridge=0.0)
    res = ARHMM(K, d, 1, prior=prior).fit(
        ys, pl=pls, init=start, frozen=("init_means",), max_iter=1, tol=0, progress=False
    )
    np.testing.assert_array_equal(res.params.emission.init_means, e.init_means)
    for k in range(K):
        r = np.array([y[0] for y, s in zip(ys, states) if s == k]) - e.init_means[k]
        np.testing.assert_allclose(res.params.emission.init_covs[k], r.T @ r / len(r), rtol=1e-9)


def test_initialize_is_the_data_driven_start_of_fit():
    model = _gaussian_hmm()
    y = model.sample(60, rng=4)[1]
    start = GaussianHMM.initialize(y, 3, 1, rng=5)
    assert isinstance(start, GaussianHMM) and start.n_states == 3
    a = GaussianHMM(3, 1).fit(y, max_iter=3, tol=0, rng=5, progress=False)
    b = start.fit(y, max_iter=3, tol=0, progress=False)  # warm start from the initialised params
    np.testing.assert_allclose(a.log_likelihoods, b.log_likelihoods, rtol=1e-12)


def _small_iohmm():
    pytest.importorskip("jax")
    from hmm import IOHMM

    rng = np.random.default_rng(0)
    u = np.cumsum(rng.standard_normal(40))[:, None] * 0.3
    y = (np.where(u[:, 0] > 0, 1.0, -1.0) + 0.8 * rng.standard_normal(40))[:, None]
    model = IOHMM.initialize(y, 2, 1, 1, inputs=u, rng=0, layer="lru", hidden=4, state=4)
    return model, y, u


def test_iohmm_gets_sample_posterior_and_forecast_from_the_chain():
    from scipy.stats import norm

    model, y, u = _small_iohmm()
    p = model.params
    ys, us = y[:5], u[:5]
    As = model.transition_matrices(us)
    lik = norm.pdf(ys[:, :1], p.means[:, 0][None], np.sqrt(p.variances[:, 0])[None])
    _, last, first, _ = _enumerate(p.pi0, As, lik)
    draws = model.sample_posterior(ys, n_samples=4000, rng=1, inputs=us)
    assert draws.shape == (4000, 5)
    for t, probs in ((0, first), (4, last)):  # binomial standard errors
        freq = np.bincount(draws[:, t], minlength=2) / 4000
        assert np.all(np.abs(freq - probs) <= 4 * np.sqrt(probs * (1 - probs) / 4000) + 1e-9)
    fut = np.array([[0.5], [-0.2]])
    fc = model.forecast([ys, ys[:3]], steps=2, inputs=[us, us[:3]], future_inputs=[fut, fut], n_samples=5, rng=0)
    A_ext = model.transition_matrices(np.vstack([us, fut]))  # A_1..A_6: the last two move past the end
    np.testing.assert_allclose(fc[0].state_probs, [last @ A_ext[4], last @ A_ext[4] @ A_ext[5]], rtol=1e-9)
    assert fc[1].observations.shape == (5, 2, 1)
    pickle.loads(pickle.dumps(model))  # the E-step's (model, params) travels to Dask workers

    # the generalised E-step over shards: counts add, per-sequence posteriors concatenate in order
    from hmm.chain import ChainData
    from hmm.em import chain_posteriors

    seqs, ins = [ys, y[5:12], y[12:15]], [us, u[5:12], u[12:15]]
    items = ChainData(seqs, ins, [None] * 3, False).items()
    whole = chain_posteriors((model, p), items)
    a, b = chain_posteriors((model, p), items[:2]), chain_posteriors((model, p), items[2:])
    from statespace.distributed._backend import reduce_sum  # the reduction EStep applies to shard results

    summed = reduce_sum([pickle.loads(pickle.dumps(a)), b])  # shard results travel by pickle
    assert summed[0] == pytest.approx(whole.log_likelihood, rel=1e-12)
    np.testing.assert_allclose(summed[1], whole.initial, rtol=1e-12)
    np.testing.assert_allclose(summed[2], whole.transitions, rtol=1e-12)
    for got, want in ((summed[3], whole.gammas), (summed[4], whole.two_slice)):
        assert len(got) == len(want) == 3
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)
    np.testing.assert_allclose(whole.gammas[0][[0, -1]], [first, last], rtol=1e-8)  # enumeration


def _ar_model(rng, K=2, d=2, L=2):
    """A two-state AR(2) HMM with one input, random coefficients."""
    e = GaussianEmissionParams.from_ar(
        rng.normal(size=(K, d)),
        np.stack([np.eye(d), [[1.0, 0.3], [0.3, 0.5]]]),
        0.2 * rng.normal(size=(K, L, d, d)),
        0.5 * rng.normal(size=(K, d, 1)),
        init_means=rng.normal(size=(K, d)),
    )
    return ARHMM(K, d, L, input_dim=1, params=HMMParams(np.array([0.3, 0.7]), [[0.9, 0.1], [0.2, 0.8]], e))


def test_chain_e_step_of_a_ragged_batch_equals_the_sum_of_its_sequences():
    """One shard of AR sequences (lag windows restarting at each start, sequences shorter than
    the lags, missing rows and coordinates, inputs, partial knowledge on some) against each
    sequence's smoother and statistics computed alone."""
    K = 2
    rng = np.random.default_rng(3)
    model = _ar_model(rng)
    e = model.params.emission
    items = []
    for i, T in enumerate((1, 2, 9, 30)):
        u = rng.normal(size=(T, 1))
        y = model.sample(T, rng=i, inputs=u)[1]
        if T > 5:
            y[3] = np.nan
            y[5, 1] = np.nan
        items.append((y, u, None if i % 2 else np.log(rng.uniform(0.2, 1.0, (T, K)))))
    whole = chain_e_step((model.emission_model, model.params), items)
    g = model.emission_model
    stats, ll, first, counts = g.zero_stats(), 0.0, np.zeros(K), np.zeros((K, K))
    for y, u, lp in items:
        res = model.smooth(y, inputs=u, pl=None if lp is None else np.exp(lp))
        g.accumulate(e, y, u, res.smoothed_probs, stats)
        ll, first, counts = ll + res.log_likelihood, first + res.smoothed_probs[0], counts + res.transition_counts
    assert whole.log_likelihood == pytest.approx(ll, rel=1e-12)
    np.testing.assert_allclose(whole.initial, first, rtol=1e-10)
    np.testing.assert_allclose(whole.transitions, counts, rtol=1e-10)
    np.testing.assert_allclose(whole.emission, g.flat_stats(stats), rtol=1e-10, atol=1e-12)


def test_diagonal_statistics_give_the_diagonal_m_step_of_the_full_ones():
    """A diagonal-covariance HMM sums only the diagonal of S^yy: its M-step must equal the one
    from the full statistics (whose off-diagonal entries that M-step drops)."""
    from hmm import emission_updates as eu

    model = GaussianHMM(3, 3, covariance_type="diag")
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 3)) @ [[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
    y += 3.0 * rng.integers(0, 3, (200, 1))
    y[7, 1] = np.nan
    model.params = GaussianHMM.initialize(y, 3, 3, covariance_type="diag", rng=0).params
    e, u = model.params.emission, np.zeros((len(y), 0))
    gamma = model.smooth(y).smoothed_probs
    diag = model.emission_model.accumulate(e, y, u, gamma, model.emission_model.zero_stats())
    full = model.emission_model.zero_stats()
    eu.gaussian_accumulate(e, y, u, gamma, full, diagonal=False)
    assert np.all(np.abs(full.Syy[:, 0, 1] - diag.Syy[:, 0, 1]) > 1.0)  # the statistics really differ
    a = model.emission_model.m_step(diag, e)
    b = model.emission_model.m_step(full, e)
    for name in ("weights", "covs", "init_means", "init_covs"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("batch_rows", [1 << 18, 8])
def test_verbs_of_a_list_equal_each_sequence_alone(batch_rows, monkeypatch):
    """A list's emission log-likelihoods come from one call over the ragged batch (AR lag windows
    restarting at each sequence, inputs, partial knowledge): every verb equals the sequence alone."""
    monkeypatch.setattr(hmm_model, "BATCH_ROWS", batch_rows)  # 8: several emission calls, a run per sequence
    K = 2
    rng = np.random.default_rng(5)
    model = _ar_model(rng)
    ys, us, pls = [], [], []
    for i, T in enumerate((1, 2, 9, 30, 30)):
        u = rng.normal(size=(T, 1))
        y = model.sample(T, rng=i, inputs=u)[1]
        if T > 5:
            y[3] = np.nan
            y[5, 1] = np.nan
        ys.append(y)
        us.append(u)
        pls.append(rng.uniform(0.2, 1.0, (T, K)))
    smooth, filt = model.smooth(ys, inputs=us, pl=pls), model.filter(ys, inputs=us, pl=pls)
    paths = model.most_likely_states(ys, inputs=us, pl=pls)
    total = 0.0
    for i, (y, u, pl) in enumerate(zip(ys, us, pls)):
        one = model.smooth(y, inputs=u, pl=pl)
        np.testing.assert_allclose(smooth[i].smoothed_probs, one.smoothed_probs, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(filt[i].filtered_probs, one.filtered_probs, rtol=1e-10, atol=1e-14)
        # predicted_probs[t] = A^T filtered_probs[t - 1], from pi0: NumPy's product as the oracle
        pred = np.vstack([model.params.pi0, filt[i].filtered_probs[:-1] @ model.params.A])[: len(y)]
        np.testing.assert_allclose(filt[i].predicted_probs, pred, rtol=1e-12, atol=1e-15)
        assert filt[i].log_likelihood == pytest.approx(one.log_likelihood, rel=1e-12)
        np.testing.assert_array_equal(paths[i], model.most_likely_states(y, inputs=u, pl=pl))
        total += one.log_likelihood
    assert model.log_likelihood(ys, inputs=us, pl=pls) == pytest.approx(total, rel=1e-12)


def test_a_fleet_log_likelihood_in_lanes_is_the_sum_of_its_sequences():
    """``log_likelihood`` of a list runs its forward passes in vector lanes (``hmm.batch.batch_forward``):
    it equals the sum of each sequence's own; a sequence of zero probability makes it ``-inf`` (no
    error), where ``filter`` raises naming that sequence."""
    model = _gaussian_hmm(3)
    rng = np.random.default_rng(11)
    ys = [model.sample(int(T), rng=i)[1] for i, T in enumerate(rng.integers(1, 70, size=21))]
    total = sum(model.log_likelihood(y) for y in ys)
    assert model.log_likelihood(ys) == pytest.approx(total, rel=1e-12)
    for got, y in zip(model.filter(ys), ys):
        np.testing.assert_allclose(got.filtered_probs, model.filter(y).filtered_probs, rtol=1e-10, atol=1e-14)
    ys[6] = ys[6].copy()
    ys[6][-1] = 1e200  # zero density under every state in float64
    assert model.log_likelihood(ys) == -np.inf
    with pytest.raises(ImpossibleDataError, match=r"y\[6\]"):
        model.filter(ys)
