"""Exact inference for Markov jump processes against brute force with scipy.linalg.expm."""

import itertools

import numpy as np
import pytest
import scipy.linalg
from scipy.stats import norm

from hmm.markov_jump import (
    ExactStates,
    GaussianLevels,
    MarkovJumpProcess,
    MJPParams,
    NoisyLabels,
    generator_from_rates,
)
from statespace.errors import DataError, ParameterError, ShapeError
from statespace.interface import simulate


def random_generator(K, rng, zeros=()):
    R = rng.uniform(0.2, 1.5, (K, K))
    for i, j in zeros:
        R[i, j] = 0.0
    return generator_from_rates(R)


def emission_matrix(model, y, K):
    """p(y_t | x_t = k) computed directly from the observation model's definition."""
    obs = model.params.observation
    out = np.ones((len(y), K))
    for t, v in enumerate(y[:, 0]):
        if np.isnan(v):
            continue
        if isinstance(obs, ExactStates):
            out[t] = np.arange(K) == v
        elif isinstance(obs, NoisyLabels):
            out[t] = obs.emission[:, int(v)]
        else:
            out[t] = norm.pdf(v, obs.means, obs.stds)
    return out


def brute_force(model, y, times):
    """Enumerate every state sequence: (likelihood, smoothed marginals, best path)."""
    Q, pi0 = np.asarray(model.params.Q), np.asarray(model.params.initial)
    K, T = len(pi0), len(times)
    e = emission_matrix(model, y, K)
    Ps = [scipy.linalg.expm(Q * d) for d in np.diff(times)]
    total, marg, best, best_p = 0.0, np.zeros((T, K)), None, -1.0
    for path in itertools.product(range(K), repeat=T):
        p = pi0[path[0]] * e[0, path[0]]
        for t in range(1, T):
            p *= Ps[t - 1][path[t - 1], path[t]] * e[t, path[t]]
        total += p
        marg[np.arange(T), path] += p
        if p > best_p:
            best, best_p = np.array(path), p
    return total, marg / total, best


def models(rng):
    K = 3
    Q = random_generator(K, rng, zeros=[(0, 2)])
    pi0 = rng.dirichlet(np.ones(K))
    B = rng.dirichlet(np.ones(4), size=K)
    return [
        MarkovJumpProcess(Q, pi0),
        MarkovJumpProcess(Q, pi0, NoisyLabels(B)),
        MarkovJumpProcess(Q, pi0, GaussianLevels([0.0, 1.0, 2.5], [0.5, 0.7, 0.4])),
    ]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_likelihood_smoother_viterbi_match_enumeration(which):
    rng = np.random.default_rng(which)
    model = models(rng)[which]
    times = np.sort(rng.uniform(0, 3, 5))
    _, y = model.sample(times=times, rng=rng)
    y[2, 0] = np.nan  # one missing observation
    p, marg, best = brute_force(model, y, times)
    assert model.log_likelihood(y, times=times) == pytest.approx(np.log(p), rel=1e-10)
    sm = model.smooth(y, times=times)
    np.testing.assert_allclose(sm.smoothed_probs, marg, atol=1e-10)
    np.testing.assert_array_equal(model.most_likely_states(y, times=times), best)
    # The filter at the last step equals the smoother there.
    np.testing.assert_allclose(model.filter(y, times=times).filtered_probs[-1], marg[-1], atol=1e-10)


def test_several_sequences_with_their_own_grids_sum_log_likelihoods():
    rng = np.random.default_rng(5)
    model = models(rng)[1]
    grids = [np.sort(rng.uniform(0, 4, n)) for n in (3, 6, 1)]
    _, ys = model.sample(times=grids, rng=rng)
    total = sum(np.log(brute_force(model, y, g)[0]) for y, g in zip(ys, grids))
    assert model.log_likelihood(ys, times=grids) == pytest.approx(total, rel=1e-10)


def test_query_time_marginals_equal_a_missing_observation_there():
    # Smoothing at a query time s is smoothing with an extra, missing, observation at s.
    rng = np.random.default_rng(7)
    model = models(rng)[2]
    times = np.array([0.0, 0.4, 1.5, 1.7, 3.0])
    _, y = model.sample(times=times, rng=rng)
    queries = np.array([0.0, 0.2, 1.0, 1.7, 2.2, 4.0])
    got = model.smooth(y, times=times, query_times=queries).query_probs
    for n, s in enumerate(queries):
        if s in times:
            want = model.smooth(y, times=times).smoothed_probs[np.searchsorted(times, s)]
        else:
            t2 = np.sort(np.append(times, s))
            y2 = np.insert(y, np.searchsorted(times, s), np.nan, axis=0)
            want = brute_force(model, y2, t2)[1][np.searchsorted(t2, s)]
        np.testing.assert_allclose(got[n], want, atol=1e-10)
    with pytest.raises(DataError, match="precedes the first observation"):
        model.smooth(y, times=times, query_times=[-1.0])


def test_kernels_match_expm_and_simulate_through_interface():
    rng = np.random.default_rng(3)
    model = models(rng)[1]
    times = np.array([0.0, 0.3, 1.1, 1.2])
    k, kp = model.kernels(), model.kernel_params(times=times)
    Q = np.asarray(model.params.Q)
    for t in range(1, 4):
        P = scipy.linalg.expm(Q * (times[t] - times[t - 1]))
        for i in range(3):
            for j in range(3):
                want = np.log(P[i, j]) if P[i, j] > 0 else -np.inf
                assert k.log_transition(kp, t, np.array([i * 1.0]), np.array([j * 1.0])) == pytest.approx(
                    want, rel=1e-10
                )
        assert k.log_transition_bound(kp, t) >= np.log(P.max()) - 1e-12
        assert k.log_transition_bound(kp, t) <= 0.0
    x, y = simulate(k, kp, 4, np.random.default_rng(0))
    assert x.shape == (4, 1) and y.shape == (4, 1)
    # log_emission of the kernels equals the observation model's
    L = model.params.observation.log_likelihoods(y, 3)
    for t in range(4):
        for s in range(3):
            assert k.log_emission(kp, t, np.array([float(s)]), y) == pytest.approx(L[t, s])


def test_bad_input_gives_clear_value_errors():
    Q = np.array([[-1.0, 1.0], [2.0, -2.0]])
    with pytest.raises(ParameterError, match=r"Q: negative rate -1.0 at \(0, 1\)"):
        MJPParams(np.array([[1.0, -1.0], [2.0, -2.0]]))
    with pytest.raises(ParameterError, match="row 1 sums to"):
        MJPParams(np.array([[-1.0, 1.0], [2.0, -1.0]]))
    with pytest.raises(ShapeError, match="square"):
        MJPParams(np.zeros((2, 3)))
    with pytest.raises(ParameterError, match="initial"):
        MJPParams(Q, [0.3, 0.3])
    m = MarkovJumpProcess(Q)
    with pytest.raises(DataError, match=r"strictly increasing.*times\[2\]"):
        m.log_likelihood(np.array([0.0, 1.0, 1.0]), times=np.array([0.0, 1.0, 1.0]))
    with pytest.raises(DataError, match="unknown state 2.0 at time step 1"):
        m.log_likelihood(np.array([0.0, 2.0]), times=np.array([0.0, 1.0]))
    with pytest.raises(DataError, match="unknown state 0.5"):
        m.log_likelihood(np.array([0.0, 0.5]), times=np.array([0.0, 1.0]))
    with pytest.raises(ShapeError, match="times"):
        m.log_likelihood(np.array([0.0, 1.0]), times=np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ShapeError, match="times"):
        m.log_likelihood(np.array([0.0, 1.0]))
    with pytest.raises(DataError, match="non-finite time"):
        m.log_likelihood(np.array([0.0, 1.0]), times=np.array([0.0, np.nan]))
    # impossible data (a structural zero with exact observations): -inf likelihood, clear error in Viterbi
    absorbing = MarkovJumpProcess(np.array([[-1.0, 1.0], [0.0, 0.0]]))
    assert absorbing.log_likelihood(np.array([1.0, 0.0]), times=np.array([0.0, 1.0])) == -np.inf
    with pytest.raises(DataError, match="impossible"):
        absorbing.most_likely_states(np.array([1.0, 0.0]), times=np.array([0.0, 1.0]))
    with pytest.raises(DataError, match="impossible"):
        absorbing.fit(np.array([1.0, 0.0]), times=np.array([0.0, 1.0]), progress=False)


def test_posterior_paths_agree_with_observations_and_marginals():
    rng = np.random.default_rng(11)
    Q = random_generator(3, rng)
    model = MarkovJumpProcess(Q, None, NoisyLabels.uniform_replacement(3, 0.3))
    times = np.array([0.0, 0.5, 1.0])
    _, y = model.sample(times=times, rng=rng)
    # Exact observations: every sampled path passes through the observed states.
    exact = MarkovJumpProcess(Q)
    ys = np.array([[0.0], [2.0], [1.0]])
    from hmm.markov_jump.simulation import states_at

    for s in range(20):
        _, [(jt, js)] = exact.sample_posterior(ys, times=times, rng=s, return_paths=True)
        np.testing.assert_array_equal(states_at(jt, js, times), [0, 2, 1])
    # Noisy: the frequency of the state at a query time matches the smoothed marginal (3 SE).
    n = 3000
    q = 0.75
    want = model.smooth(y, times=times, query_times=[q]).query_probs[0]
    g = np.random.default_rng(0)
    hits = np.zeros(3)
    for _ in range(n):
        _, [(jt, js)] = model.sample_posterior(y, times=times, rng=g, return_paths=True)
        hits[states_at(jt, js, np.array([q]))[0]] += 1
    freq = hits / n
    se = np.sqrt(want * (1 - want) / n)
    assert np.all(np.abs(freq - want) <= 3 * se + 1e-12)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_save_and_load_round_trip(tmp_path, which):
    from statespace.persistence import load_model, save_model

    model = models(np.random.default_rng(9))[which]
    path = save_model(tmp_path / "mjp", model)
    back = load_model(path)
    assert type(back) is MarkovJumpProcess
    np.testing.assert_array_equal(back.params.Q, model.params.Q)
    np.testing.assert_array_equal(back.params.initial, model.params.initial)
    assert back.params.observation_kind == model.params.observation_kind
    times = np.array([0.0, 0.5, 2.0])
    _, y = model.sample(times=times, rng=0)
    assert back.log_likelihood(y, times=times) == model.log_likelihood(y, times=times)


def test_plot_posterior_draws_marginals_and_overlays():
    import matplotlib

    matplotlib.use("Agg")
    from hmm.markov_jump import plot_posterior

    rng = np.random.default_rng(12)
    model = models(rng)[1]
    times = np.sort(rng.uniform(0, 3, 8))
    _, y, path = model.sample(times=times, rng=rng, return_paths=True)
    q = np.linspace(times[0], times[-1], 50)
    probs = model.smooth(y, times=times, query_times=q).query_probs
    fig, ax = plot_posterior(probs, q, obs_times=times, y=y, path=path)
    assert ax.collections and len(ax.lines) == 2
    np.testing.assert_allclose(ax.collections[0].get_array().reshape(3, 50), probs.T)
    with pytest.raises(ShapeError):
        plot_posterior(probs[:-1], q)


def test_forecast_is_the_last_filtered_row_moved_by_expm():
    """forecast(y, future_times) against scipy.linalg.expm, per sequence of a list, and frozen fields kept by fit."""
    from scipy.linalg import expm

    rng = np.random.default_rng(4)
    Q = random_generator(3, rng)
    model = MarkovJumpProcess(Q, None, NoisyLabels.uniform_replacement(3, 0.2))
    grids = [np.cumsum(rng.exponential(0.5, n)) for n in (6, 9)]
    _, y = model.sample(times=grids, rng=rng)
    future = [g[-1] + np.array([0.0, 0.3, 2.0]) for g in grids]
    out = model.forecast(y, future, times=grids)
    assert isinstance(out, list) and len(out) == 2
    for res, f, g, ys in zip(out, future, grids, y):
        last = model.filter(ys, times=g).filtered_probs[-1]
        want = np.stack([last @ expm(Q * (s - g[-1])) for s in f])
        np.testing.assert_allclose(res.state_probs, want, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(res.times, f)
    with pytest.raises(DataError, match=r"future_times\[1\]"):
        model.forecast(y, [future[0], grids[1][-1] - np.array([1.0])], times=grids)
    start = model.params
    fit = model.fit(y, times=grids, frozen=("initial", "emission"), max_iter=3, progress=False)
    assert model.params is fit.params and not np.array_equal(fit.params.Q, start.Q)
    np.testing.assert_array_equal(fit.params.initial, start.initial)
    np.testing.assert_array_equal(fit.params.emission, start.emission)
    assert fit.params.observation.learn == "symmetric"
    with pytest.raises(ParameterError, match="frozen"):
        model.fit(y, times=grids, frozen=("transitions",), progress=False)


def test_noisy_label_statistics_are_the_weighted_symbol_counts():
    """N_km = sum over sequences and observed steps of gamma_t(k) 1[y_t = m], written as a loop;
    missing labels count nothing, a symbol nobody shows gets 0."""
    rng = np.random.default_rng(4)
    K, M = 3, 4
    obs = NoisyLabels(rng.dirichlet(np.ones(M), size=K))
    gammas, ys = [], []
    for T in (7, 1, 12):
        gammas.append(rng.dirichlet(np.ones(K), size=T))
        y = rng.integers(0, M - 1, size=(T, 1)).astype(float)  # symbol M - 1 never shows
        y[rng.random(T) < 0.3] = np.nan
        ys.append(y)
    want = np.zeros((K, M))
    for g, y in zip(gammas, ys):
        for t in range(len(y)):
            if not np.isnan(y[t, 0]):
                want[:, int(y[t, 0])] += g[t]
    got = obs.statistics(gammas, ys).reshape(K, M)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    assert (got[:, M - 1] == 0).all()
