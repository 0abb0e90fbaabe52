"""Endpoint-conditioned expectations and bridges against Monte Carlo over simulated paths."""

import numpy as np
import pytest
import scipy.linalg

from hmm.markov_jump import endpoint_expectations, generator_from_rates, sample_bridge
from hmm.markov_jump.expectations import transition_matrices
from hmm.markov_jump.simulation import gillespie

Q3 = generator_from_rates(np.array([[0.0, 0.9, 0.3], [0.5, 0.0, 1.2], [0.0, 0.7, 0.0]]))  # one structural zero
T_INTERVAL = 1.3


def path_statistics(jt, js, t, K):
    dwell = np.zeros(K)
    jumps = np.zeros((K, K))
    edges = np.concatenate([[0.0], jt, [t]])
    for i, s in enumerate(js):
        dwell[s] += edges[i + 1] - edges[i]
        if i > 0:
            jumps[js[i - 1], s] += 1
    return np.concatenate([dwell, jumps.ravel()])


def within_3se(samples, want):
    samples = np.asarray(samples)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    # Quantities that are zero on every path (structural zeros) have se 0 and must match exactly.
    return np.abs(mean - want) <= 3 * se + 1e-12


def test_generator_expm_matches_scipy():
    rng = np.random.default_rng(0)
    for scale in (1e-3, 0.3, 5.0, 60.0):
        Q = generator_from_rates(rng.uniform(0, 1, (5, 5)))
        P = transition_matrices(Q, np.array([scale]))[0]
        np.testing.assert_allclose(P, scipy.linalg.expm(Q * scale), atol=1e-13, rtol=1e-10)


def test_endpoint_expectations_match_monte_carlo_of_forward_simulated_paths():
    # Independent oracle: simulate from a with Gillespie and keep paths by their end state.
    K, a = 3, 0
    dwell, jumps = endpoint_expectations(Q3, T_INTERVAL)
    rng = np.random.default_rng(1)
    by_end = {b: [] for b in range(K)}
    for _ in range(20000):
        jt, js = gillespie(Q3, a, 0.0, T_INTERVAL, rng)
        by_end[int(js[-1])].append(path_statistics(jt, js, T_INTERVAL, K))
    P = scipy.linalg.expm(Q3 * T_INTERVAL)
    for b in range(K):
        want = np.concatenate([dwell[a, b], jumps[a, b].ravel()])
        assert np.all(within_3se(by_end[b], want)), b
        # the end-state frequencies are P(t)[a, b]
        n = sum(len(v) for v in by_end.values())
        assert abs(len(by_end[b]) / n - P[a, b]) <= 3 * np.sqrt(P[a, b] * (1 - P[a, b]) / n)
    # Dwell times add up to the interval; a structural zero has no jumps.
    np.testing.assert_allclose(dwell.sum(axis=2), T_INTERVAL)
    assert np.all(jumps[:, :, 2, 0] == 0)


def test_uniformization_bridges_match_van_loan_expectations():
    K = 3
    dwell, jumps = endpoint_expectations(Q3, T_INTERVAL)
    rng = np.random.default_rng(2)
    for a, b in [(0, 2), (2, 0), (1, 1)]:
        stats = []
        for _ in range(4000):
            jt, js = sample_bridge(Q3, a, b, T_INTERVAL, rng)
            assert js[0] == a and js[-1] == b
            assert np.all(np.diff(jt) >= 0) and np.all(js[1:] != js[:-1])
            assert np.all(Q3[js[:-1], js[1:]] > 0)  # never an impossible jump
            stats.append(path_statistics(jt, js, T_INTERVAL, K))
        want = np.concatenate([dwell[a, b], jumps[a, b].ravel()])
        assert np.all(within_3se(stats, want)), (a, b)


def test_transition_matrices_are_stochastic_and_match_scipy():
    dts = np.array([1e-6, 0.1, 2.0, 30.0])
    P = transition_matrices(Q3, dts)
    for d, Pd in zip(dts, P):
        np.testing.assert_allclose(Pd, scipy.linalg.expm(Q3 * d), atol=1e-12)
        np.testing.assert_allclose(Pd.sum(axis=1), 1.0, atol=1e-12)


def test_bridge_rejects_impossible_endpoints():
    absorbing = generator_from_rates(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="impossible"):
        sample_bridge(absorbing, 1, 0, 1.0, rng=0)
    with pytest.raises(ValueError, match="state in 0..1"):
        sample_bridge(absorbing, 2, 0, 1.0, rng=0)
