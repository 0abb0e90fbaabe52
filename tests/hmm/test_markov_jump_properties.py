"""Property-based checks: any generator, grid and missingness pattern against enumeration."""

import itertools

import numpy as np
import scipy.linalg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hmm.markov_jump import MarkovJumpProcess, NoisyLabels, generator_from_rates


@st.composite
def problems(draw):
    K = draw(st.integers(2, 3))
    T = draw(st.integers(1, 4))
    rates = np.array(draw(st.lists(st.floats(0.0, 3.0), min_size=K * K, max_size=K * K))).reshape(K, K)
    gaps = np.array(draw(st.lists(st.floats(1e-3, 5.0), min_size=T, max_size=T)))
    times = np.cumsum(gaps)
    labels = np.array(draw(st.lists(st.one_of(st.integers(0, K - 1), st.none()), min_size=T, max_size=T)), dtype=float)
    eps = draw(st.floats(0.01, 0.9))
    return generator_from_rates(rates), times, labels, eps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_likelihood_and_marginals_match_enumeration(problem):
    Q, times, labels, eps = problem
    K = len(Q)
    model = MarkovJumpProcess(Q, None, NoisyLabels.uniform_replacement(K, eps))
    B = model.params.observation.emission
    y = labels[:, None]
    total, marg = 0.0, np.zeros((len(times), K))
    Ps = [scipy.linalg.expm(Q * d) for d in np.diff(times)]
    for path in itertools.product(range(K), repeat=len(times)):
        p = 1.0 / K
        for t, s in enumerate(path):
            if t:
                p *= Ps[t - 1][path[t - 1], s]
            if not np.isnan(labels[t]):
                p *= B[s, int(labels[t])]
        total += p
        marg[np.arange(len(times)), path] += p
    assert np.isclose(model.log_likelihood(y, times=times), np.log(total), rtol=1e-9, atol=1e-12)
    sm = model.smooth(y, times=times).smoothed_probs
    np.testing.assert_allclose(sm, marg / total, atol=1e-9)
    np.testing.assert_allclose(model.filter(y, times=times).filtered_probs.sum(axis=1), 1.0, atol=1e-12)
