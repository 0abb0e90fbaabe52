"""The two-thread forward-backward (hmm.parallel_forward_backward) against exact log-space recursions.

Oracles: scipy's logsumexp forward-backward written out in the test (independent of
the library), and the library's exact log-space kernel ``_log_space`` for larger
problems. Problems are sized so that ``posteriors`` takes the two-thread path
(``T * K >= MIN_WORK``); a spy checks it did, or that it handed over when it must.
"""

import threading

import numba as nb
import numpy as np
import pytest
from scipy.special import logsumexp

import hmm.parallel_forward_backward as pfb
from hmm.forward_backward import posteriors
from hmm.log_space import log_space_posteriors as _log_space
from hmm.row_exponentials import restore_log_rows, shift_exp_rows
from hmm.vector_product import outer_accumulate, padded_width, vecmat


@pytest.fixture
def spy(monkeypatch):
    """Records what each call of the two-thread path returned (``result is None`` means it handed over)."""
    calls = []
    real = pfb.posteriors_two_threads

    def wrapped(pi0, A2, loglik):
        out = real(pi0, A2, loglik)
        calls.append(out)
        return out

    monkeypatch.setattr(pfb, "posteriors_two_threads", wrapped)
    return calls


def _problem(K, T, seed, scale=2.0):
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.full(K, 0.5), size=K) * 0.5 + 0.5 * np.eye(K)
    pi0 = rng.dirichlet(np.ones(K))
    ll = rng.normal(scale=scale, size=(T, K))
    return pi0, A, ll


def _assert_matches(result, reference, counts_rtol=1e-8):
    ll, filt, smo, counts = result
    ll_r, filt_r, smo_r, counts_r = reference[:4]
    assert ll == pytest.approx(ll_r, rel=1e-11)
    np.testing.assert_allclose(filt, filt_r, atol=1e-10)
    np.testing.assert_allclose(smo, smo_r, atol=1e-10)
    np.testing.assert_allclose(counts, counts_r, rtol=counts_rtol, atol=1e-8)


def _scipy_oracle(pi0, A, ll):
    T, K = ll.shape
    with np.errstate(divide="ignore"):
        lA = np.log(A)
        la = np.empty((T, K))
        la[0] = np.log(pi0) + ll[0]
    for t in range(1, T):
        la[t] = logsumexp(la[t - 1][:, None] + lA, axis=0) + ll[t]
    lb = np.zeros((T, K))
    for t in range(T - 1, 0, -1):
        lb[t - 1] = logsumexp(lA + ll[t] + lb[t], axis=1)
    total = logsumexp(la[-1])
    xi = la[:-1, :, None] + lA[None] + (ll[1:] + lb[1:])[:, None, :] - total
    return (
        total,
        np.exp(la - logsumexp(la, axis=1, keepdims=True)),
        np.exp(la + lb - total),
        np.exp(logsumexp(xi, axis=0)),
    )


@nb.njit
def _vecmat_cases(M, x, out, acc_out):
    vecmat(M, x, 0, 1, out, 0, 3, 8, False)
    vecmat(M, x, 1, 2, acc_out, 8, 17, 8, True)


def test_vector_product_matches_numpy():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(17, 8))
    x = rng.normal(size=40)
    out = np.full(8, np.nan)
    acc = rng.normal(size=24)
    expected_acc = acc.copy()
    expected_acc[8:16] += x[1:35:2] @ M  # strided x, offset out, looped (17 > 16 rows), accumulated
    _vecmat_cases(M, x, out, acc)
    np.testing.assert_allclose(out, x[:3] @ M[:3], rtol=1e-14)
    np.testing.assert_allclose(acc, expected_acc, rtol=1e-13)
    assert padded_width(1) == 8 and padded_width(8) == 8 and padded_width(20) == 24


@nb.njit
def _outer_cases(G4, x4, m4, G20, x20, m20, G2, x2, m2):
    outer_accumulate(G4, x4, 8, m4, 4, 64, 4, 4)  # packed: two rows of 4 per register
    outer_accumulate(G20, x20, 20, m20, 24, 63, 20, 24)  # padded, odd row count
    outer_accumulate(G2, x2, 0, m2, 0, 64, 2, 2)  # packed: four rows per register


@pytest.mark.parametrize("seed", [0, 1])
def test_outer_accumulate_matches_numpy(seed):
    """Both layouts of the rank update behind the expected counts, against NumPy's matrix product."""
    rng = np.random.default_rng(seed)
    x4, m4 = rng.normal(size=(70, 4)), rng.normal(size=(66, 4))
    x20 = rng.normal(size=(65, 20))
    m20 = np.zeros((65, 24))
    m20[:, :20] = rng.normal(size=(65, 20))  # padded: the columns beyond K are zero
    x2, m2 = rng.normal(size=(64, 2)), rng.normal(size=(64, 2))
    G4, G20, G2 = rng.normal(size=(4, 8)), rng.normal(size=(20, 24)), rng.normal(size=(2, 8))
    want4, want20, want2 = G4.copy(), G20.copy(), G2.copy()
    want4[:, :4] += x4[2:66].T @ m4[1:65]  # flat offsets 8 and 4: rows from 2 and 1
    want20 += x20[1:64].T @ m20[1:64]
    want2[:, :2] += x2.T @ m2
    _outer_cases(G4, x4, m4, G20, x20, m20, G2, x2, m2)
    for got, want in ((G4, want4), (G20, want20), (G2, want2)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@nb.njit
def _shift_exp_cases(a1, m1, a2, m2, a4, m4, a8, m8):
    return (
        shift_exp_rows(a1, m1, 0, a1.shape[0], 1),
        shift_exp_rows(a2, m2, 0, a2.shape[0], 2),
        shift_exp_rows(a4, m4, 0, a4.shape[0], 4),
        shift_exp_rows(a8, m8, 0, a8.shape[0], 8),
    )


def test_vector_exp_matches_numpy_and_restores():
    """The vectorised row shift and exponential against NumPy, for every K dividing 8: maxima
    exact, exponentials within 4 ulp, -inf to exactly 0, a row of -inf to NaN; an entry more than
    700 nats below its row's best is reported and kept, and restore_log_rows gives the input back."""
    rng = np.random.default_rng(11)
    cases = []
    for K in (1, 2, 4, 8):
        ll = rng.normal(scale=40.0, size=(64, K)) + rng.normal(scale=1e3, size=(64, 1))
        if K > 1:
            ll[3, 0] = -np.inf  # an impossible state
            ll[7, K - 1] = ll[7].max() - 699.0  # deep but representable
        cases.append(ll)
    low = [c.copy() for c in cases]
    low[2][9, 1] = low[2][9].max() - 800.0  # K = 4: underflows
    low[2][10] = -np.inf  # and a row no state explains
    for data, expect_low in ((cases, [False] * 4), (low, [False, False, True, False])):
        work = [c.copy() for c in data]
        ms = [np.empty(c.shape[0]) for c in data]
        flags = _shift_exp_cases(work[0], ms[0], work[1], ms[1], work[2], ms[2], work[3], ms[3])
        assert list(flags) == expect_low
        for ll, got, m, flagged in zip(data, work, ms, flags):
            mx = ll.max(axis=1)
            np.testing.assert_array_equal(m, mx)
            rows = np.isfinite(mx)
            with np.errstate(invalid="ignore"):
                shifted = ll - mx[:, None]
            want = np.exp(shifted)
            normal = rows[:, None] & (shifted >= -700.0)
            np.testing.assert_allclose(got[normal], want[normal], rtol=4 * np.finfo(float).eps, atol=0)
            assert np.all(got[rows[:, None] & np.isneginf(ll)] == 0.0)
            assert np.isnan(got[~rows]).all()
            deep = rows[:, None] & np.isfinite(ll) & (shifted < -700.0)
            np.testing.assert_array_equal(got[deep], shifted[deep])
            if flagged:
                restore_log_rows(got, m, 0, got.shape[0])
                np.testing.assert_allclose(got[np.isfinite(ll)], ll[np.isfinite(ll)], rtol=0, atol=1e-12)
                assert np.all(np.isneginf(got[~np.isfinite(ll)]))


def test_small_problem_against_independent_scipy_oracle(spy):
    pi0, A, ll = _problem(4, 10_001, seed=1)
    _assert_matches(posteriors(pi0, A[None], ll.copy(), overwrite=True), _scipy_oracle(pi0, A, ll))
    assert len(spy) == 1 and spy[0][0] is not None


# K = 1 (edge), 2 (scalar product), 9 (vector product, unrolled rows), 23 (looped rows, three
# registers); each K compiles its own kernels (seconds each), so the suite reuses these few.
@pytest.mark.parametrize("K,T", [(1, 40_003), (2, 20_000), (9, 6_001), (23, 2_001)])
def test_matches_exact_log_space(K, T, spy):
    pi0, A, ll = _problem(K, T, seed=K)
    _assert_matches(posteriors(pi0, A[None], ll.copy(), overwrite=True), _log_space(pi0, A[None], ll))
    # the copying entry point leaves its input alone and agrees
    kept = ll.copy()
    _assert_matches(posteriors(pi0, A[None], kept), _log_space(pi0, A[None], ll))
    np.testing.assert_array_equal(kept, ll)
    assert len(spy) == 2 and all(r is not None for r, _ in spy)


def test_structural_zeros_and_absorbing_state(spy):
    K, T = 4, 12_000
    A = np.zeros((K, K))
    for i in range(K - 1):
        A[i, i], A[i, i + 1] = 0.999, 0.001
    A[-1, -1] = 1.0
    pi0 = np.eye(K)[0]
    rng = np.random.default_rng(3)
    ll = rng.normal(scale=0.3, size=(T, K))
    result = posteriors(pi0, A[None], ll.copy(), overwrite=True)
    _assert_matches(result, _log_space(pi0, A[None], ll))
    assert np.all(result[3][A == 0] == 0.0)
    assert spy[0][0] is not None
    # data that walk through the stages drive the early states' weights below 1e-300 for good:
    # both paths then answer from log space, exactly
    stage = np.minimum(np.arange(T) * K // T, K - 1)
    ll = -0.5 * (rng.normal(size=T)[:, None] + stage[:, None] - np.arange(K)) ** 2
    _assert_matches(posteriors(pi0, A[None], ll.copy(), overwrite=True), _log_space(pi0, A[None], ll))


@pytest.mark.parametrize("where", [0.25, 0.75])
def test_lost_precision_hands_over_and_stays_exact(where, spy):
    """A state ruled out for ~1000 nats in steps of 50 (no single step trips the 700-nat
    pre-check) and then revived: the lazily scaled kernels must notice and hand over."""
    K, T = 2, 30_000
    A = np.array([[0.9, 0.1], [0.0, 1.0]])
    pi0 = np.array([1.0, 0.0])
    ll = np.zeros((T, K))
    ll[:, 1] = -50.0  # the chain should stay in state 0 ...
    t0 = int(where * T)
    ll[t0 : t0 + 20] = [-50.0, 0.0]  # ... but 20 steps make state 1 e^1000 likelier
    result = posteriors(pi0, A[None], ll.copy(), overwrite=True)
    _assert_matches(result, _log_space(pi0, A[None], ll))
    assert spy[0][0] is None and spy[0][1] is not None  # handed over to the scaled sequential path


@pytest.mark.parametrize("half", [0, 1])
def test_underflowing_step_restores_the_log_likelihoods(half, spy):
    pi0, A, ll = _problem(4, 20_000, seed=5)
    ll[5_000 + 10_000 * half, 2] = -900.0  # 900 nats below its step's best: log space is needed
    result = posteriors(pi0, A[None], ll.copy(), overwrite=True)
    _assert_matches(result, _log_space(pi0, A[None], ll))
    assert spy[0] == (None, None)


def test_impossible_states_at_some_steps(spy):
    """-inf entries (a state that cannot emit) must give weight exactly 0, in the vectorised
    exponential (K = 4) and in its tail rows (odd T)."""
    pi0, A, ll = _problem(4, 20_001, seed=8)
    rng = np.random.default_rng(8)
    ll[rng.integers(0, 20_001, 300), rng.integers(0, 4, 300)] = -np.inf
    ll[-1, :3] = -np.inf
    result = posteriors(pi0, A[None], ll.copy(), overwrite=True)
    _assert_matches(result, _log_space(pi0, A[None], ll))
    assert np.all(result[2][np.isneginf(ll)] == 0.0)
    assert spy[0][0] is not None


def test_impossible_data_gives_minus_infinity(spy):
    pi0, A, ll = _problem(4, 20_000, seed=6)
    ll[12_345] = -np.inf
    total, filt, _, _ = posteriors(pi0, A[None], ll.copy(), overwrite=True)
    assert total == -np.inf
    assert np.isfinite(filt[:12_345]).all()
    assert spy[0][0] is None


def test_concurrent_callers_get_their_own_answers():
    problems = [_problem(K, 30_000, seed=10 + K) for K in (2, 4, 9)]
    expected = [_log_space(pi0, A[None], ll) for pi0, A, ll in problems]
    got = [None] * len(problems)

    def work(i):
        pi0, A, ll = problems[i]
        for _ in range(3):
            got[i] = posteriors(pi0, A[None], ll.copy(), overwrite=True)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for g, e in zip(got, expected):
        _assert_matches(g, e)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")  # JAX's, when another test imported it
def test_forked_child_gets_a_worker_of_its_own():
    import multiprocessing as mp

    pi0, A, ll = _problem(4, 20_000, seed=7)
    expected = posteriors(pi0, A[None], ll.copy())[0]  # the parent's worker thread now exists
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_log_likelihood_in_child, (pi0, A, ll)).get(timeout=60)
    assert got == pytest.approx(expected, rel=1e-12)


def _log_likelihood_in_child(pi0, A, ll):
    return posteriors(pi0, A[None], ll.copy())[0]
