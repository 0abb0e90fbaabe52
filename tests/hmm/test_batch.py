"""Batch-first forward-backward (hmm.batch) against the per-sequence kernels and brute-force enumeration."""

import itertools

import numpy as np
import pytest

from hmm import GaussianEmissionParams
from hmm.batch import _shift_rows, batch_forward, batch_gaussian_loglik, batch_posteriors, batch_viterbi
from hmm.emissions import gaussian_loglik
from hmm.forward_backward import forward, posteriors
from hmm.lane_forward_backward import group_posteriors
from statespace._ragged import Ragged, pack
from statespace.errors import ShapeError


def _chain(K, rng):
    A = rng.random((K, K)) + 0.1
    A /= A.sum(1, keepdims=True)
    pi0 = rng.random(K) + 0.1
    return pi0 / pi0.sum(), A


def _enumerate(pi0, A, L):
    """log p(y), p(z_t | y) and sum_t p(z_{t-1}, z_t | y) by summing over every path."""
    T, K = L.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    logw = np.log(pi0[paths[:, 0]]) + L[0, paths[:, 0]]
    for t in range(1, T):
        logw += np.log(A[paths[:, t - 1], paths[:, t]]) + L[t, paths[:, t]]
    ll = np.logaddexp.reduce(logw)
    w = np.exp(logw - ll)
    gamma = np.zeros((T, K))
    counts = np.zeros((K, K))
    for t in range(T):
        np.add.at(gamma[t], paths[:, t], w)
        if t:
            np.add.at(counts, (paths[:, t - 1], paths[:, t]), w)
    return ll, gamma, counts


def test_batch_posteriors_match_brute_force_enumeration():
    rng = np.random.default_rng(0)
    K = 3
    pi0, A = _chain(K, rng)
    seqs = [rng.normal(size=(T, K)) * 3 for T in (1, 4, 2, 5, 3)]
    seqs[2][1, 1] = -np.inf  # a state ruled out at one step
    L, offsets = pack(seqs)
    res = batch_posteriors(pi0, A, L, offsets)
    for i, s in enumerate(seqs):
        ll, gamma, counts = _enumerate(pi0, A, s)
        assert res.log_likelihoods[i] == pytest.approx(ll, rel=1e-12)
        np.testing.assert_allclose(res.smoothed_of()[i], gamma, atol=1e-12)
        np.testing.assert_allclose(res.transition_counts[i], counts, atol=1e-12)
    np.testing.assert_allclose(res.initial_counts(), sum(_enumerate(pi0, A, s)[1][0] for s in seqs), atol=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_batch_viterbi_matches_brute_force_enumeration(n_threads):
    """Every sequence's path is the best of all K^T paths (scored here in log space); an empty sequence
    gets an empty path, and one with an impossible step a best of -inf."""
    rng = np.random.default_rng(3)
    K = 3
    pi0, A = _chain(K, rng)
    seqs = [rng.normal(size=(T, K)) * 3 for T in (1, 5, 0, 2, 6, 3, 4)]
    seqs[5][1] = -np.inf  # no state explains this step
    seqs[4][2, 0] = -np.inf  # a state ruled out at one step
    L, offsets = pack(seqs)
    res = batch_viterbi(pi0, A, L, offsets, n_threads=n_threads)
    assert res.paths.dtype == np.int64 and res.paths.shape == (len(L),)
    for i, s in enumerate(seqs):
        path, best = res.paths[offsets[i] : offsets[i + 1]], res.best[i]
        if len(s) == 0:
            assert path.size == 0
            continue
        if i == 5:
            assert best == -np.inf
            continue
        paths = np.array(list(itertools.product(range(K), repeat=len(s))))
        logw = np.log(pi0[paths[:, 0]]) + s[0, paths[:, 0]]
        for t in range(1, len(s)):
            logw += np.log(A[paths[:, t - 1], paths[:, t]]) + s[t, paths[:, t]]
        np.testing.assert_array_equal(path, paths[np.argmax(logw)])
        assert best == pytest.approx(logw.max(), rel=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_batch_posteriors_equal_the_per_sequence_path(n_threads):
    rng = np.random.default_rng(1)
    K = 5
    pi0, A = _chain(K, rng)
    seqs = [rng.normal(size=(int(T), K)) * 4 for T in rng.integers(1, 300, size=60)]
    seqs[7][10] = -np.inf  # impossible step: -inf log-likelihood, NaN rows from there
    seqs[9][20, :] = [-2000.0, 0.0, -2000.0, -2000.0, -2000.0]  # weights far below the best (fallback paths)
    L, offsets = pack(seqs)
    res = batch_posteriors(pi0, A, L, offsets, n_threads=n_threads)
    fwd = batch_forward(pi0, A, L, offsets, n_threads=n_threads)
    for i, s in enumerate(seqs):
        ll, filt, smo, counts = posteriors(pi0, A[None], s.copy())
        if i == 7:
            assert res.log_likelihoods[i] == -np.inf and fwd.log_likelihoods[i] == -np.inf
            continue
        assert res.log_likelihoods[i] == pytest.approx(ll, rel=1e-13, abs=1e-10)
        np.testing.assert_allclose(res.filtered_of()[i], filt, atol=1e-13)
        np.testing.assert_allclose(res.smoothed_of()[i], smo, atol=1e-13)
        np.testing.assert_allclose(res.transition_counts[i], counts, atol=1e-11)
        f_ll, f_filt, _ = forward(pi0, A[None], s)
        assert fwd.log_likelihoods[i] == pytest.approx(f_ll, rel=1e-13)
        np.testing.assert_allclose(Ragged(fwd.filtered, fwd.offsets)[i], f_filt, atol=1e-13)


@pytest.mark.parametrize("K", [2, 5, 20])
def test_an_e_step_s_kept_scratch_left_dirty_gives_the_numbers_of_fresh_arrays(K):
    """``reuse=True`` takes every array of the result from the E-step's workspace, as the previous
    iteration left it: poisoned with NaN (the flags' bytes then read True), the call gives the same
    bits as one with fresh arrays, lanes, one-sequence and exact paths alike (an impossible step, a
    step whose weights underflow)."""
    from statespace._scratch import Workspace, kept

    rng = np.random.default_rng(3)
    pi0, A = _chain(K, rng)
    seqs = [rng.normal(size=(int(T), K)) * 3 for T in rng.integers(1, 80, size=300)]
    seqs[7][4] = -np.inf
    seqs[9][2] = -2000.0
    seqs[9][2, 0] = 0.0
    L, offsets = pack(seqs)
    fresh = batch_posteriors(pi0, A, L.copy(), offsets)
    ws = Workspace()
    with kept(ws):
        batch_posteriors(pi0, A, L.copy(), offsets, reuse=True)  # the workspace's arrays, sized
        for key in list(ws._arrays):
            ws._arrays[key][:] = np.nan
        kept_result = batch_posteriors(pi0, A, L.copy(), offsets, reuse=True)
    for field, key in (("filtered", "filtered"), ("log_likelihoods", "lls"), ("transition_counts", "counts")):
        assert np.shares_memory(getattr(kept_result, field), ws.array(f"hmm.batch.{key}", 1))  # the poisoned memory
    for field in ("log_likelihoods", "filtered", "smoothed", "transition_counts"):
        np.testing.assert_array_equal(getattr(kept_result, field), getattr(fresh, field), err_msg=field)


def test_threads_do_not_change_the_numbers():
    rng = np.random.default_rng(2)
    pi0, A = _chain(4, rng)
    L, offsets = pack([rng.normal(size=(50, 4)) for _ in range(40)])
    one, two = batch_posteriors(pi0, A, L, offsets, n_threads=1), batch_posteriors(pi0, A, L, offsets, n_threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("lags", "p"), [(0, 0), (0, 2), (2, 0), (2, 2)])
def test_batch_gaussian_loglik_restarts_the_lag_window_per_sequence(lags, p):
    """Each sequence's rows equal its own call, bit for bit (without lags the batch's rows run as one
    range, in blocks that straddle the sequences)."""
    rng = np.random.default_rng(3)
    K, d = 3, 2
    bias = rng.normal(size=(K, d))
    covs = np.array([np.eye(d) * (0.5 + k) for k in range(K)])
    ar = rng.normal(size=(K, lags, d, d)) * 0.2 if lags else None
    e = GaussianEmissionParams.from_ar(bias, covs, ar_coefs=ar, input_coefs=rng.normal(size=(K, d, p)))
    seqs = [rng.normal(size=(T, d)) for T in (5, 1, 300, 8, 130)]
    us = [rng.normal(size=(len(s), p)) for s in seqs]
    seqs[2][4, 1] = np.nan
    seqs[2][9] = np.nan
    y, offsets = pack(seqs)
    out = batch_gaussian_loglik(e, y, pack(us)[0], offsets)
    for i, (s, u) in enumerate(zip(seqs, us)):
        np.testing.assert_array_equal(Ragged(out, offsets)[i], gaussian_loglik(e, s, u))


def test_offsets_are_validated():
    L = np.zeros((10, 2))
    pi0, A = np.array([0.5, 0.5]), np.full((2, 2), 0.5)
    for bad, what in (
        ([0, 5, 9], "end at the number of rows"),
        ([0, 6, 4, 10], "must not decrease"),
        ([[0, 10]], "1-D integer"),
    ):
        with pytest.raises(ShapeError, match=what):
            batch_posteriors(pi0, A, L, np.array(bad))
    with pytest.raises(ShapeError, match="pi0, A"):
        batch_posteriors(np.ones(3) / 3, A, L, np.array([0, 10]))


def test_ragged_view():
    data, offsets = pack([np.arange(3.0), np.arange(0.0), np.arange(2.0)])
    view = Ragged(data, offsets)
    assert len(view) == 3 and list(view.lengths) == [3, 0, 2]
    np.testing.assert_array_equal(view[-1], [0.0, 1.0])
    assert view[0].base is not None  # a view, not a copy
    with pytest.raises(IndexError):
        view[3]


def test_one_long_sequence_takes_the_two_thread_pass_with_the_same_numbers():
    rng = np.random.default_rng(4)
    pi0, A = _chain(6, rng)
    L = rng.normal(size=(20_000, 6)) * 3
    res = batch_posteriors(pi0, A, L, np.array([0, len(L)]))
    ll, filt, smo, counts = posteriors(pi0, A[None], L.copy())
    assert res.log_likelihoods[0] == pytest.approx(ll, rel=1e-13)
    np.testing.assert_allclose(res.smoothed, smo, atol=1e-13)
    np.testing.assert_allclose(res.filtered, filt, atol=1e-13)
    np.testing.assert_allclose(res.transition_counts[0], counts, rtol=1e-12)
    _, gamma, _ = _enumerate(pi0, A, L[:6])  # and the short case against enumeration once more
    np.testing.assert_allclose(batch_posteriors(pi0, A, L[:6], np.array([0, 6])).smoothed, gamma, atol=1e-12)


def test_pack_takes_views_that_tile_one_block_without_a_copy():
    """Consecutive views of one array (a batch's per-sequence results) pack into a view of it; anything
    else (a gap, another order, separate arrays, another dtype) is concatenated. Both equal np.concatenate.
    (Sequences of 300 rows and more: shorter ones are copied without looking, test_ragged_items.)"""
    R = 300
    block = np.arange(30.0 * R).reshape(10 * R, 3)
    cases = {
        "tiling": ([block[0 : 2 * R], block[2 * R : 2 * R], block[2 * R : 7 * R], block[7 * R : 10 * R]], True),
        "gap": ([block[0 : 2 * R], block[3 * R : 7 * R]], False),
        "order": ([block[2 * R : 7 * R], block[0 : 2 * R]], False),
        "separate": ([block[0 : 2 * R].copy(), block[2 * R : 4 * R].copy()], False),
        "int": ([np.arange(6).reshape(2, 3), np.arange(6, 9).reshape(1, 3)], False),
    }
    for name, (seqs, shared) in cases.items():
        data, offsets = pack(seqs)
        np.testing.assert_array_equal(data, np.concatenate(seqs).astype(np.float64), err_msg=name)
        np.testing.assert_array_equal(offsets, np.cumsum([0] + [len(s) for s in seqs]), err_msg=name)
        assert np.shares_memory(data, block) == shared, name


@pytest.mark.parametrize("K", [1, 2, 3, 8, 16, 17])
def test_sequences_in_vector_lanes_match_the_one_sequence_path(K):
    """hmm.lane_forward_backward runs up to 16 states eight sequences at a time (ragged lengths, a partial
    last group); 17 states run one sequence at a time. Either way each sequence equals posteriors()."""
    rng = np.random.default_rng(10 + K)
    pi0, A = _chain(K, rng)
    lengths = [1, 2, 37, 5, 120, 1, 64, 3, 99, 8, 17, 250, 2, 41, 7, 300, 11, 1, 90]
    seqs = [rng.normal(size=(T, K)) * 3 for T in lengths]
    L, offsets = pack(seqs)
    res = batch_posteriors(pi0, A, L, offsets, n_threads=1)
    for i, s in enumerate(seqs):
        ll, filt, smo, counts = posteriors(pi0, A[None], s.copy())
        assert res.log_likelihoods[i] == pytest.approx(ll, rel=1e-13, abs=1e-10)
        np.testing.assert_allclose(res.filtered_of()[i], filt, atol=1e-13)
        np.testing.assert_allclose(res.smoothed_of()[i], smo, atol=1e-13)
        np.testing.assert_allclose(res.transition_counts[i], counts, atol=1e-11)


def test_a_sequence_in_lanes_does_not_depend_on_its_group():
    """Each lane does its own sequence's arithmetic: the same sequence, batched with other sequences in
    another order (other group mates, another lane, another padding), gives the same bits."""
    rng = np.random.default_rng(11)
    pi0, A = _chain(4, rng)
    seqs = [rng.normal(size=(int(T), 4)) * 2 for T in rng.integers(20, 200, size=23)]
    one = batch_posteriors(pi0, A, *pack(seqs), n_threads=1)
    order = rng.permutation(len(seqs))
    two = batch_posteriors(pi0, A, *pack([seqs[j] for j in order]), n_threads=1)
    for pos, j in enumerate(order):
        assert two.log_likelihoods[pos] == one.log_likelihoods[j]
        np.testing.assert_array_equal(two.smoothed_of()[pos], one.smoothed_of()[j])
        np.testing.assert_array_equal(two.filtered_of()[pos], one.filtered_of()[j])
        np.testing.assert_array_equal(two.transition_counts[pos], one.transition_counts[j])


def test_a_lane_that_loses_a_weight_to_underflow_is_redone_alone():
    """At step 10 state 0's weight e^-680 falls below what the scaled recursion keeps, while state 1,
    which explains the step, is all but unreachable (moves of probability 1e-10); no log-likelihood
    sits far enough below its row's best for the up-front check. The lane reports it and the sequence
    runs on the one-sequence path, which answers exactly."""
    rng = np.random.default_rng(12)
    A = np.array([[1.0 - 1e-10, 1e-10], [1e-10, 1.0 - 1e-10]])
    pi0 = np.array([1.0, 0.0])
    seqs = [rng.normal(size=(30, 2)) for _ in range(9)]
    seqs[4][10] = [-680.0, 0.0]  # state 1 explains step 10 alone, and it is almost unreachable
    L, offsets = pack(seqs)
    m, B = np.empty(len(L)), np.empty_like(L)
    _shift_rows(L, 0, len(L), m, B, np.empty(len(L), bool))
    np.exp(B, out=B)
    S = len(seqs)
    left = group_posteriors(pi0, A, offsets, np.arange(S), m, np.empty(S), np.empty_like(L), B, np.zeros((S, 2, 2)))
    assert list(left) == [4]  # the lanes hand that sequence back, and only that one
    res = batch_posteriors(pi0, A, L, offsets, n_threads=1)
    for i, s in enumerate(seqs):
        ll, filt, smo, counts = posteriors(pi0, A[None], s.copy())
        assert res.log_likelihoods[i] == pytest.approx(ll, rel=1e-12)
        np.testing.assert_allclose(res.smoothed_of()[i], smo, atol=1e-12)
        np.testing.assert_allclose(res.transition_counts[i], counts, atol=1e-10)
    assert res.smoothed_of()[4][10, 1] == pytest.approx(1.0)


def test_padding_after_a_short_sequence_leaves_its_numbers_alone():
    """A short sequence grouped with a long one waits through hundreds of padding steps before its own
    backward recursion starts. Rows of A whose floating-point sums are not exactly 1 would make a
    message carried through that padding drift: the lanes must start it at exactly 1."""
    A = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    A[0] /= A[0].sum() * (1 + 3e-16)  # float sums a few ulps off 1
    pi0 = np.array([0.2, 0.3, 0.5])
    rng = np.random.default_rng(13)
    short = rng.normal(size=(5, 3))
    peers = [rng.normal(size=(5, 3)) for _ in range(3)]
    alone = batch_posteriors(pi0, A, *pack([short, *peers]), n_threads=1)
    with_long = batch_posteriors(pi0, A, *pack([short, peers[0], rng.normal(size=(400, 3)) * 2]), n_threads=1)
    assert with_long.log_likelihoods[0] == alone.log_likelihoods[0]
    np.testing.assert_array_equal(with_long.smoothed_of()[0], alone.smoothed_of()[0])
    np.testing.assert_array_equal(with_long.transition_counts[0], alone.transition_counts[0])


@pytest.mark.parametrize("mixing", [True, False])
def test_weights_that_underflow_stay_in_the_lanes_or_go_to_the_exact_pass(monkeypatch, mixing):
    """An AR model's first step can sit thousands of nats below the best state's (its initial mean is
    far away), and later steps hundreds. For a chain that mixes the lanes drop those negligible terms,
    as the one-sequence path does, and carry the sequences themselves; for one that does not (a move of
    probability 0) the terms cannot be dropped and the exact log-space pass takes them. Neither runs the
    one-sequence kernel. Every sequence against brute-force enumeration in log space."""
    import hmm.batch as hb

    calls = {"alone": 0, "exact": 0}
    alone, exact = hb._posteriors_kernel, hb._exact_kernel
    monkeypatch.setattr(
        hb, "_posteriors_kernel", lambda *a: calls.__setitem__("alone", calls["alone"] + 1) or alone(*a)
    )
    monkeypatch.setattr(
        hb, "_exact_kernel", lambda *a: calls.__setitem__("exact", calls["exact"] + len(a[4])) or exact(*a)
    )
    rng = np.random.default_rng(14)
    K = 3
    pi0, A = _chain(K, rng)
    if not mixing:
        A[2, 0] = 0.0
        A[2] /= A[2].sum()
    seqs = [rng.normal(size=(6, K)) for _ in range(8)]
    for s in seqs[::2]:
        s[0, 1:] -= 3000.0  # the first step far below the best state
        s[3, 2] = s[3, 0] - 800.0  # and a later one
    with np.errstate(divide="ignore"):
        res = batch_posteriors(pi0, A, *pack(seqs), n_threads=1)
        for i, s in enumerate(seqs):
            ll, gamma, counts = _enumerate(pi0, A, s)
            assert res.log_likelihoods[i] == pytest.approx(ll, rel=1e-12)
            np.testing.assert_allclose(res.smoothed_of()[i], gamma, atol=1e-12)
            np.testing.assert_allclose(res.transition_counts[i], counts, atol=1e-12)
    assert calls == {"alone": 0, "exact": 0 if mixing else 4}
