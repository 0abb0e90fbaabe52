"""Markov jump processes at the edges: gaps of any length, impossible data, input rules.

Oracles: ``scipy.linalg.expm`` where it is accurate; the stationary law from
``scipy.linalg.null_space(Q.T)``; absorption probabilities solved by hand from
the linear system of a reducible chain; scipy's Van Loan block exponential and
the linear growth of expected dwell times and jump counts with the gap.
"""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from hmm.markov_jump import (
    GaussianLevels,
    MarkovJumpProcess,
    NoisyLabels,
    endpoint_expectations,
    expected_statistics,
    generator_from_rates,
    sample_bridge,
    sample_paths,
    stationary_distribution,
    transition_matrix,
)
from hmm.markov_jump.expectations import transition_matrices
from statespace.errors import DataError, ImpossibleDataError, ParameterError, ShapeError

Q3 = np.array([[-1.0, 0.7, 0.3], [0.4, -0.9, 0.5], [0.2, 0.8, -1.0]])
HUGE = [1e6, 1e15, 1e50, 1e100, 1e200, 1e300, 1.7e308]


def null_space_law(Q):
    v = scipy.linalg.null_space(Q.T)
    assert v.shape[1] == 1
    return v[:, 0] / v[:, 0].sum()


def random_generator(rng, K, sparsity=0.3):
    R = rng.uniform(0.1, 1.0, (K, K)) * (rng.random((K, K)) > sparsity)
    R[np.arange(K), (np.arange(K) + 1) % K] = 1.0  # a cycle keeps it irreducible
    return generator_from_rates(R)


# --- class 6: long gaps ---------------------------------------------------------------


def test_long_gaps_give_the_stationary_law_to_full_precision():
    rng = np.random.default_rng(0)
    for K in (2, 3, 5, 8):
        for scale in (1e-3, 1.0, 1e3):
            Q = random_generator(rng, K) * scale
            pi = null_space_law(Q)
            for dt in HUGE:
                P = transition_matrix(Q, dt)
                assert np.isfinite(P).all(), (K, scale, dt)
                np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-14)
                np.testing.assert_allclose(P, np.broadcast_to(pi, P.shape), rtol=1e-12, atol=1e-15)


def test_tiny_rates_are_scaled_not_lost():
    Q = Q3 * 1e-300
    np.testing.assert_allclose(transition_matrix(Q, 1e300), scipy.linalg.expm(Q3), rtol=1e-13)
    np.testing.assert_allclose(transition_matrix(Q, 1e305)[1], null_space_law(Q3), rtol=1e-12)
    np.testing.assert_allclose(stationary_distribution(Q), null_space_law(Q3), rtol=1e-12)


def _exact_stationary(Q):
    """pi Q = 0, sum pi = 1 by Gaussian elimination in exact rational arithmetic.

    The diagonal is rebuilt exactly from the off-diagonal rates (the rounded
    float diagonal misses by 1e-16, more than the 1e-12 couplings tolerate).
    """
    from fractions import Fraction

    K = Q.shape[0]
    F = [[Fraction(float(Q[i, j])) if i != j else Fraction(0) for j in range(K)] for i in range(K)]
    for i in range(K):
        F[i][i] = -sum(F[i])
    A = [[F[j][i] for j in range(K)] + [Fraction(0)] for i in range(K - 1)]
    A.append([Fraction(1)] * K + [Fraction(1)])
    for c in range(K):
        p = next(r for r in range(c, K) if A[r][c] != 0)
        A[c], A[p] = A[p], A[c]
        for r in range(K):
            if r != c and A[r][c] != 0:
                f = A[r][c] / A[c][c]
                A[r] = [a - f * b for a, b in zip(A[r], A[c])]
    return np.array([float(A[i][K] / A[i][i]) for i in range(K)])


def test_nearly_decoupled_chain_keeps_every_digit():
    # Two fast blocks {0, 1} and {2, 3} coupled at rates 1e-12: the null space of Q^T
    # is ill-conditioned (a least-squares solve lost 5 digits), a 1e100 gap overflowed.
    Q = generator_from_rates(np.array([[0, 1, 1e-12, 0], [1, 0, 0, 0], [0, 0, 0, 2], [0, 3e-12, 1, 0.0]]))
    pi = _exact_stationary(Q)
    np.testing.assert_allclose(stationary_distribution(Q), pi, rtol=1e-14)
    for dt in (1e15, 1e100):
        np.testing.assert_allclose(transition_matrix(Q, dt), np.broadcast_to(pi, (4, 4)), rtol=1e-13)
    # Halfway through the slow mixing, against scipy (accurate at this norm).
    np.testing.assert_allclose(transition_matrix(Q, 1e6), scipy.linalg.expm(Q * 1e6), rtol=1e-8, atol=1e-14)


def test_reducible_chain_converges_to_its_absorption_limit():
    # 0 absorbing, {3, 4} a closed class, 1 and 2 transient.
    Q = np.array(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, -3.0, 1.5, 0.5, 0.0],
            [0.2, 2.0, -4.0, 1.0, 0.8],
            [0.0, 0.0, 0.0, -2.0, 2.0],
            [0.0, 0.0, 0.0, 1.0, -1.0],
        ]
    )
    transient, closed = [1, 2], [3, 4]
    # Absorption probabilities into {0} and into {3, 4}: h = (-Q_TT)^{-1} Q_T,class.
    into = np.stack([Q[transient][:, 0], Q[transient][:, closed].sum(axis=1)], axis=1)
    h = np.linalg.solve(-Q[np.ix_(transient, transient)], into)
    pc = null_space_law(Q[np.ix_(closed, closed)])  # (1/3, 2/3)
    want = np.zeros((5, 5))
    want[0, 0] = 1.0
    want[np.ix_(closed, closed)] = pc
    for r, i in enumerate(transient):
        want[i, 0] = h[r, 0]
        want[i, closed] = h[r, 1] * pc
    for dt in HUGE:
        P = transition_matrix(Q, dt)
        np.testing.assert_allclose(P, want, rtol=1e-12, atol=1e-15)


def test_log_likelihood_over_an_enormous_gap_restarts_from_the_stationary_law():
    obs = NoisyLabels.uniform_replacement(3, 0.2)
    model = MarkovJumpProcess(Q3, initial=[0.6, 0.3, 0.1], observation=obs)
    pi = null_space_law(Q3)
    restarted = MarkovJumpProcess(Q3, initial=pi, observation=obs)
    # Dyadic times: the second half's intervals stay exact after the gap is added.
    y1, t1 = np.array([0.0, 1.0, 1.0, 2.0]), np.array([0.0, 0.25, 1.125, 2.0])
    y2, t2 = np.array([2.0, 0.0, 1.0]), np.array([0.0, 0.5, 0.75])
    want = model.log_likelihood(y1, times=t1) + restarted.log_likelihood(y2, times=t2)
    y = np.concatenate([y1, y2])
    for gap in (2.0**20, 2.0**40):
        times = np.concatenate([t1, t1[-1] + gap + t2])
        assert model.log_likelihood(y, times=times) == pytest.approx(want, rel=1e-13)
        res = model.smooth(y, times=times)
        np.testing.assert_allclose(res.smoothed_probs[4:], restarted.smooth(y2, times=t2).smoothed_probs, atol=1e-13)
    # Beyond 2^52 intervals no later interval can be short: every later observation is an
    # independent draw from the stationary law, p(y) = sum_k pi_k B[k, y].
    marginal = np.log(pi @ obs.emission)
    for gap in (1e20, 1e100, 1e300):
        times = np.concatenate([t1, gap * np.array([1.0, 2.0, 3.0])])
        got = model.log_likelihood(y, times=times)
        assert got == pytest.approx(model.log_likelihood(y1, times=t1) + marginal[y2.astype(int)].sum(), rel=1e-13)


def _van_loan_scipy(Q, dt):
    """Endpoint-conditioned dwell times by scipy's 2K x 2K block exponential."""
    K = Q.shape[0]
    out = np.empty((K, K, K))
    for k in range(K):
        B = np.zeros((2 * K, 2 * K))
        B[:K, :K] = B[K:, K:] = Q
        B[k, K + k] = 1.0
        E = scipy.linalg.expm(B * dt)
        out[:, :, k] = E[:K, K:] / E[:K, :K]
    return out


def test_expected_statistics_grow_linearly_over_long_gaps():
    pi = null_space_law(Q3)
    off = Q3 - np.diag(np.diag(Q3))
    d0 = 60.0  # 60 relaxation times: beyond it the statistics are affine in dt to rounding
    dwell0, jumps0 = endpoint_expectations(Q3, d0)
    np.testing.assert_allclose(dwell0, _van_loan_scipy(Q3, d0), rtol=1e-11)
    for dt in HUGE[:-1]:
        dwell, jumps = endpoint_expectations(Q3, dt)
        np.testing.assert_allclose(dwell, dwell0 + pi * (dt - d0), rtol=1e-12)
        np.testing.assert_allclose(jumps, jumps0 + pi[:, None] * off * (dt - d0), rtol=1e-12)
        np.testing.assert_allclose(dwell.sum(axis=-1), dt, rtol=1e-13)


def test_e_step_over_a_long_gap_is_finite_and_accounts_for_all_time():
    obs = NoisyLabels.uniform_replacement(3, 0.1)
    model = MarkovJumpProcess(Q3, observation=obs)
    times = np.array([0.0, 0.5, 1.0, 1e200, 2e200])
    y = np.array([0.0, 1.0, 1.0, 2.0, 2.0])
    ll, dwell, jumps, gamma, _ = expected_statistics(model.params, [y[:, None]], [times])
    assert np.isfinite(ll) and np.isfinite(dwell).all() and np.isfinite(jumps).all() and np.isfinite(gamma).all()
    assert dwell.sum() == pytest.approx(times[-1] - times[0], rel=1e-12)
    # Over the gap the chain spends pi_k of the time in k and jumps k -> l at rate pi_k q_kl.
    pi = null_space_law(Q3)
    np.testing.assert_allclose(dwell / dwell.sum(), pi, rtol=1e-12)
    np.testing.assert_allclose(jumps / dwell.sum(), pi[:, None] * (Q3 - np.diag(np.diag(Q3))), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    K=st.integers(2, 5),
    log_rate=st.floats(-3, 3),
    log_dt=st.floats(-6, 300),
)
def test_transition_matrices_are_stochastic_for_any_gap(seed, K, log_rate, log_dt):
    rng = np.random.default_rng(seed)
    R = rng.uniform(0.0, 1.0, (K, K)) * (rng.random((K, K)) > 0.4)
    Q = generator_from_rates(R) * 10.0**log_rate
    dt = 10.0**log_dt
    P = transition_matrices(Q, np.array([dt]))[0]
    assert np.isfinite(P).all() and (P >= 0).all()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    if np.abs(Q).max() * dt <= 30.0:  # where scipy's Pade approximant is accurate
        np.testing.assert_allclose(P, scipy.linalg.expm(Q * dt), rtol=0, atol=1e-12)


def test_sampling_across_a_gap_too_long_for_a_path_draws_the_stationary_law():
    model = MarkovJumpProcess(Q3, initial=[1.0, 0.0, 0.0])
    rng = np.random.default_rng(3)
    n = 3000
    last = np.array([model.sample(times=[0.0, 1e12], rng=rng)[0][-1, 0] for _ in range(n)])
    freq = np.bincount(last.astype(int), minlength=3) / n
    pi = null_space_law(Q3)
    assert (np.abs(freq - pi) <= 5 * np.sqrt(pi * (1 - pi) / n)).all()
    with pytest.raises(DataError, match=r"times\[1\] - times\[0\]"):
        model.sample(times=[0.0, 1e12], rng=0, return_paths=True)
    with pytest.raises(DataError, match=r"times\[1\] - times\[0\]"):
        model.sample_posterior(np.array([0.0, 1.0]), times=np.array([0.0, 1e12]), rng=0, return_paths=True)


def test_posterior_paths_over_long_intervals_have_the_right_number_of_jumps():
    # mu t = 1.5e5: uniformisation over one piece stopped at 1e5 virtual jumps.
    t = 1.5e5
    model = MarkovJumpProcess(Q3)
    _, jumps = endpoint_expectations(Q3, t)
    rng = np.random.default_rng(5)
    counts = []
    for _ in range(20):
        _, [(jt, js)] = model.sample_posterior(
            np.array([0.0, 2.0]), times=np.array([0.0, t]), rng=rng, return_paths=True
        )
        assert js[0] == 0 and js[-1] == 2 and (np.diff(jt) > 0).all() and (js[1:] != js[:-1]).all()
        counts.append(len(jt))
    counts = np.asarray(counts, dtype=float)
    want = jumps[0, 2].sum()
    assert abs(counts.mean() - want) <= 5 * counts.std(ddof=1) / np.sqrt(len(counts))


# --- class 7: data of zero probability -----------------------------------------------------

# 0 <-> 1 only, 2 -> {0, 1}: once in {0, 1} the chain never reaches 2.
Q_CLOSED = np.array([[-1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [0.5, 0.5, -1.0]])


def _impossible_batch():
    ok = np.array([2.0, 0.0, 1.0])
    bad = np.array([0.0, 1.0, 2.0, 1.0])  # 1 -> 2 at step 2 is forbidden
    return [ok, bad], [np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.5, 3.0])]


@pytest.mark.parametrize("verb", ["filter", "smooth", "smooth_query", "most_likely_states", "sample_posterior", "fit"])
def test_impossible_exact_jump_raises_naming_sequence_and_step(verb):
    model = MarkovJumpProcess(Q_CLOSED)
    ys, ts = _impossible_batch()
    assert model.log_likelihood(ys, times=ts) == -np.inf
    calls = {
        "filter": lambda: model.filter(ys, times=ts),
        "smooth": lambda: model.smooth(ys, times=ts),
        "smooth_query": lambda: model.smooth(ys, times=ts, query_times=[np.array([0.5]), np.array([2.7])]),
        "most_likely_states": lambda: model.most_likely_states(ys, times=ts),
        "sample_posterior": lambda: model.sample_posterior(ys, times=ts, rng=0),
        "fit": lambda: model.fit(ys, times=ts, progress=False),
    }
    with pytest.raises(ImpossibleDataError, match=r"y\[1\]: the observation at time step 2"):
        calls[verb]()


def test_label_no_state_emits_gives_minus_inf_and_errors():
    B = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.5, 0.5, 0.0]])  # label 2 is never emitted
    model = MarkovJumpProcess(Q3, observation=NoisyLabels(B))
    y, t = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])
    ll = model.log_likelihood(y, times=t)
    assert ll == -np.inf and not np.isnan(ll)
    for call in (lambda: model.filter(y, times=t), lambda: model.smooth(y, times=t, query_times=[0.5])):
        with pytest.raises(ImpossibleDataError, match=r"^y: the observation at time step 2 \(time 2\)"):
            call()


# --- class 8: input rules ----------------------------------------------------------------


def test_sample_reads_a_flat_list_of_times_as_one_grid():
    model = MarkovJumpProcess(Q3)
    states, y = model.sample(times=[0.0, 1.0, 2.5], rng=0)
    states_a, _ = model.sample(times=np.array([0.0, 1.0, 2.5]), rng=0)
    assert states.shape == (3, 1) and y.shape == (3, 1)
    np.testing.assert_array_equal(states, states_a)
    with pytest.raises(DataError, match=r"times\[1\] = 1.0 <= times\[0\] = 3.0"):
        model.sample(times=[3.0, 1.0, 2.0], rng=0)
    many, _ = model.sample(times=[np.array([0.0, 1.0]), np.array([0.0, 2.0, 3.0])], rng=0)
    assert [len(s) for s in many] == [2, 3]
    st_paths, _ = sample_paths(model.params, [0.0, 1.0, 2.0], rng=0)
    assert st_paths.shape == (3,)
    with pytest.raises(DataError, match=r"times\[2\]"):
        sample_paths(model.params, [0.0, 1.0, 1.0], rng=0)


def test_sample_T_must_be_a_positive_integer():
    model = MarkovJumpProcess(Q3)
    for T in (2.7, 0, -1, True, "3", np.nan):
        with pytest.raises(ParameterError, match="T: expected an integer"):
            model.sample(T, rng=0)
    for T in (3, 3.0, np.int64(3)):
        states, y = model.sample(T, rng=0)
        assert states.shape == (3, 1) and y.shape == (3, 1)


def test_sample_T_and_times_must_agree():
    model = MarkovJumpProcess(Q3)
    with pytest.raises(ShapeError, match="T=2 but times has 3"):
        model.sample(2, times=[0.0, 1.0, 2.0], rng=0)
    with pytest.raises(ShapeError, match="times"):
        model.sample(rng=0)


def test_verbs_read_time_lists_like_arrays_and_check_them():
    model = MarkovJumpProcess(Q3, observation=NoisyLabels.uniform_replacement(3, 0.1))
    y = np.array([0.0, 1.0, 2.0, 2.0])
    t = [0.0, 0.5, 1.5, 4.0]
    assert model.log_likelihood(y, times=t) == model.log_likelihood(y, times=np.asarray(t))
    with pytest.raises(DataError, match=r"times\[2\]"):
        model.smooth(y, times=[0.0, 0.5, 0.5, 4.0])
    with pytest.raises(DataError, match="overflows"):
        model.log_likelihood(y[:2], times=[-1e308, 1e308])
    with pytest.raises(ShapeError, match="times"):
        model.filter(y, times=None)


# --- structured rates (JAX) -----------------------------------------------------------------


def test_structured_log_likelihood_over_long_gaps_matches_the_compiled_one():
    from hmm.markov_jump import flashing_ratchet_rates, structured_log_likelihood

    theta = np.array([0.5, 0.7, 0.9])
    model = MarkovJumpProcess(generator_from_rates(flashing_ratchet_rates(theta)))
    y = np.array([0.0, 1.0, 2.0, 4.0])
    for gap in (1.0, 1e8, 1e300):
        t = np.array([0.0, 1.0, 1.0 + gap, 1.0 + 2.0 * gap])
        got = structured_log_likelihood(flashing_ratchet_rates, theta, y, t, initial=np.full(6, 1 / 6))
        assert got == pytest.approx(model.log_likelihood(y, times=t), rel=1e-12)


def test_structured_impossible_data_names_the_step():
    from hmm.markov_jump import fit_structured, flashing_ratchet_rates, structured_log_likelihood

    theta0 = np.array([0.5, 0.0, 0.9])  # no switching: states 0-2 never reach 3-5
    y, t = np.array([0.0, 4.0, 1.0]), [0.0, 1.0, 2.0]
    obs = NoisyLabels(np.eye(6))
    ll = structured_log_likelihood(flashing_ratchet_rates, theta0, y, t, observation=obs, initial=np.full(6, 1 / 6))
    assert ll == -np.inf
    with pytest.raises(ImpossibleDataError, match=r"^y: the observation at time step 1"):
        fit_structured(flashing_ratchet_rates, theta0, y, t, initial=np.full(6, 1 / 6))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: sample_bridge(Q3, 1.5, 0, 1.0, rng=0), "a"),
        (lambda: transition_matrix(Q3, "x"), "t"),
        (lambda: endpoint_expectations(Q3, None), "t"),
        (lambda: NoisyLabels.uniform_replacement(2.7, 0.1), "K"),
    ],
)
def test_helpers_reject_unusable_arguments_by_name(call, name):
    with pytest.raises(ParameterError, match=f"^{name}: "):
        call()


def test_gaussian_level_beyond_float_range_is_impossible_not_nan():
    model = MarkovJumpProcess(Q3, observation=GaussianLevels([0.0, 1.0, 2.0], [1.0, 1.0, 1.0]))
    y, t = np.array([0.0, 1e200, 1.0]), np.array([0.0, 1.0, 2.0])
    assert model.log_likelihood(y, times=t) == -np.inf
    with pytest.raises(ImpossibleDataError, match="time step 1"):
        model.smooth(y, times=t)
