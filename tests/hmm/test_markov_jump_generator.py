"""Generator-derived quantities and exact simulation against closed forms and Monte Carlo."""

import numpy as np
import pytest
import scipy.linalg

from hmm.markov_jump import (
    MJPParams,
    generator_from_rates,
    mean_first_passage_times,
    relaxation_times,
    sample_paths,
    stationary_distribution,
    transition_matrix,
)
from statespace.errors import ParameterError

Q3 = generator_from_rates(np.array([[0.0, 2.0, 0.5], [1.0, 0.0, 1.0], [0.3, 0.0, 0.0]]))


def test_two_state_closed_forms():
    a, b = 0.7, 1.9
    Q = np.array([[-a, a], [b, -b]])
    np.testing.assert_allclose(stationary_distribution(Q), [b / (a + b), a / (a + b)])
    np.testing.assert_allclose(relaxation_times(Q), [1 / (a + b)])
    np.testing.assert_allclose(mean_first_passage_times(Q), [[0, 1 / a], [1 / b, 0]])
    t = 0.8
    p00 = b / (a + b) + a / (a + b) * np.exp(-(a + b) * t)
    assert transition_matrix(Q, t)[0, 0] == pytest.approx(p00, rel=1e-12)


def test_stationary_and_relaxation_match_long_time_limit_and_eigenvalues():
    pi = stationary_distribution(Q3)
    np.testing.assert_allclose(pi @ Q3, 0, atol=1e-12)
    np.testing.assert_allclose(scipy.linalg.expm(Q3 * 200.0), np.tile(pi, (3, 1)), atol=1e-10)
    tau = relaxation_times(Q3)
    assert len(tau) == 2 and tau[0] >= tau[1] > 0
    # The slowest mode decays like exp(-t / tau_0).
    t1, t2 = 5.0, 6.0
    d1 = np.abs(scipy.linalg.expm(Q3 * t1) - pi).max()
    d2 = np.abs(scipy.linalg.expm(Q3 * t2) - pi).max()
    assert np.log(d1 / d2) == pytest.approx((t2 - t1) / tau[0], rel=1e-3)


def first_passage(Q, i, j, rng):
    """Simulate the embedded jump chain with exponential holding times until j is hit."""
    t, x = 0.0, i
    while x != j:
        rate = -Q[x, x]
        t += rng.exponential(1.0 / rate)
        p = np.where(np.arange(len(Q)) == x, 0.0, Q[x]) / rate
        x = rng.choice(len(Q), p=p)
    return t


def test_mean_first_passage_times_match_simulation():
    M = mean_first_passage_times(Q3)
    rng = np.random.default_rng(0)
    for i, j in [(0, 2), (2, 1), (1, 0)]:
        hits = np.array([first_passage(Q3, i, j, rng) for _ in range(2000)])
        assert abs(hits.mean() - M[i, j]) <= 3 * hits.std(ddof=1) / np.sqrt(len(hits))


def test_sampled_states_follow_transition_matrix_on_irregular_grids():
    p = MJPParams(Q3, [1.0, 0.0, 0.0])
    rng = np.random.default_rng(1)
    grids = [np.array([0.0, 0.4, 1.5]) + rng.uniform(0, 0.01) for _ in range(4000)]
    states, paths = sample_paths(p, grids, rng=rng)
    states = np.array(states)
    assert np.all(states[:, 0] == 0)
    for col, t in ((1, 0.4), (2, 1.5)):
        want = scipy.linalg.expm(Q3 * t)[0]
        freq = np.bincount(states[:, col], minlength=3) / len(states)
        assert np.all(np.abs(freq - want) <= 3 * np.sqrt(want * (1 - want) / len(states)))
    # paths never use a structural zero (2 -> 1)
    for jt, js in paths[:500]:
        assert not np.any((js[:-1] == 2) & (js[1:] == 1))


def test_generator_validation():
    with pytest.raises(ParameterError, match="negative rate"):
        stationary_distribution(np.array([[-1.0, 1.0, 0.0], [1.0, -0.5, -0.5], [0.0, 0.0, 0.0]]))
    with pytest.raises(ParameterError, match="non-finite"):
        MJPParams(np.array([[np.nan, 0.0], [0.0, 0.0]]))
    with pytest.raises(ParameterError, match="t: expected"):
        transition_matrix(Q3, -1.0)
    p = MJPParams(Q3)
    with pytest.raises(ValueError):
        p.Q[0, 0] = 1.0  # immutable


def test_mean_first_passage_times_of_a_reducible_chain():
    # 2 is absorbing: from 1 the chain may be absorbed before reaching 0 (inf);
    # 2 is hit surely from 0 and 1: m_12 = 1/2 + m_02/2, m_02 = 1 + m_12 -> (3, 2).
    Q = np.array([[-1.0, 1.0, 0.0], [1.0, -2.0, 1.0], [0.0, 0.0, 0.0]])
    M = mean_first_passage_times(Q)
    want = np.array([[0.0, 1.0, 3.0], [np.inf, 0.0, 2.0], [np.inf, np.inf, 0.0]])
    np.testing.assert_allclose(M, want)


def test_params_survive_pickle_and_deepcopy():
    """MJPParams rebuilt by pickle / copy.deepcopy equal the original (__new__ takes the observation model third)."""
    import copy
    import pickle

    from hmm.markov_jump import GaussianLevels, MJPParams, NoisyLabels

    Q = np.array([[-1.0, 1.0], [0.5, -0.5]])
    for obs in (None, NoisyLabels.uniform_replacement(2, 0.1), GaussianLevels([0.0, 1.0], [1.0, 2.0], learn=False)):
        p = MJPParams(Q, [0.3, 0.7], obs)
        for q in (pickle.loads(pickle.dumps(p)), copy.deepcopy(p)):
            assert type(q) is MJPParams and repr(q.observation) == repr(p.observation)
            for a, b in zip(q, p):
                np.testing.assert_array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
