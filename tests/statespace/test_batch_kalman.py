"""The Kalman filter, RTS smoother and E-step at the covariance recursions' fixed point, and over a ragged batch.

Once the Riccati and RTS recursions of a time-invariant model agree with the
previous step to round-off, the loops copy the previous step's matrices
(``statespace._numerics.linalg.fixed_point``). Oracles: the same model written
with time-varying parameter stacks of identical matrices (which always takes the
full recursion), the dense joint-Gaussian algebra of ``lgssm_dense``, and for the
batch kernels (``statespace.linear_gaussian.batch``) the per-sequence functions.
"""

import numpy as np
import pytest
from lgssm_dense import block, condition

from statespace._ragged import pack
from statespace.errors import DataError, ImpossibleDataError, ShapeError
from statespace.linear_gaussian import (
    LGSSMParams,
    LinearGaussianSSM,
    kalman_filter,
    kalman_log_likelihood,
    rts_smoother,
)
from statespace.linear_gaussian import batch as batch_module
from statespace.linear_gaussian.batch import batch_e_step, batch_filter, batch_log_likelihood, batch_smoother
from statespace.linear_gaussian.data import prepare
from statespace.linear_gaussian.em import e_step


def _model(d, m, seed):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(d, d))
    F *= 0.9 / max(abs(np.linalg.eigvals(F)))
    Lq = rng.normal(size=(d, d)) * 0.3
    Lr = rng.normal(size=(m, m)) * 0.3
    return LGSSMParams(
        m0=rng.normal(size=d),
        P0=np.eye(d),
        F=F,
        Q=Lq @ Lq.T + 0.1 * np.eye(d),
        H=rng.normal(size=(m, d)),
        R=Lr @ Lr.T + 0.2 * np.eye(m),
    )


def _stacked(p, T):
    """The same model with every matrix repeated along a time axis (never at a fixed point by construction)."""
    return p.replace(
        F=np.repeat(p.F[None], T, 0),
        Q=np.repeat(p.Q[None], T, 0),
        H=np.repeat(p.H[None], T, 0),
        R=np.repeat(p.R[None], T, 0),
    )


def _data(p, T, seed, missing):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(T, p.obs_dim)) * 2.0
    if missing:
        y[T // 3 : T // 3 + 15] = np.nan  # a gap: the recursion leaves the fixed point and returns to it
        y[T // 2 :: 37, 0] = np.nan  # isolated partial rows: another pattern of observed coordinates
    return y


@pytest.mark.parametrize("d,m,T", [(1, 1, 300), (3, 2, 300), (3, 2, 700), (12, 2, 300)])
@pytest.mark.parametrize("missing", [False, True])
def test_fixed_point_matches_full_recursion(d, m, T, missing):
    p = _model(d, m, seed=d + 10 * m)
    y = _data(p, T, seed=T, missing=missing)
    full = rts_smoother(_stacked(p, T), y)
    fast = rts_smoother(p, y)
    assert fast.log_likelihood == pytest.approx(full.log_likelihood, rel=1e-13)
    for name in ("filtered_means", "predicted_means", "smoothed_means"):
        np.testing.assert_allclose(getattr(fast, name), getattr(full, name), rtol=1e-11, atol=1e-11, err_msg=name)
    for name in ("filtered_covs", "predicted_covs", "smoothed_covs", "smoothed_cross_covs", "smoother_gains"):
        a, b = getattr(fast, name), getattr(full, name)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max(), err_msg=name)
    # E-step statistics: the stacked model takes the full per-step path of the statistics loop too
    seqs, us, _ = prepare(p, y, None)
    s_fast, ll_fast = e_step(p, seqs, us)
    s_full, ll_full = e_step(_stacked(p, T), seqs, us)
    assert ll_fast == pytest.approx(ll_full, rel=1e-13)
    np.testing.assert_allclose(s_fast, s_full, rtol=1e-11, atol=1e-10 * np.abs(s_full).max())


def test_fixed_point_is_reached_and_copied():
    """After convergence the covariances are constant exactly (the full recursion wanders by ulps)."""
    p = _model(4, 2, seed=3)
    y = _data(p, 2000, seed=1, missing=False)
    res = rts_smoother(p, y)
    for name in ("filtered_covs", "predicted_covs", "smoothed_covs", "smoother_gains"):
        c = getattr(res, name)
        assert (c[300:1500] == c[300]).all(), name


def test_fixed_point_against_dense_oracle():
    p = _model(2, 1, seed=5)
    T = 90
    y = _data(p, T, seed=2, missing=True)
    mean, cov, ll = condition(p, y)
    d = p.state_dim
    res = rts_smoother(p, y)
    np.testing.assert_allclose(res.smoothed_means.ravel(), mean, rtol=1e-9, atol=1e-9)
    blocks = np.array([block(cov, d, t, t) for t in range(T)])
    np.testing.assert_allclose(res.smoothed_covs, blocks, rtol=1e-9, atol=1e-11)
    assert res.log_likelihood == pytest.approx(ll, rel=1e-10)


def _inputs_model(d, m, p_in, seed):
    rng = np.random.default_rng(seed)
    base = _model(d, m, seed)
    return base.replace(B=rng.normal(size=(d, p_in)), D=rng.normal(size=(m, p_in)))


@pytest.fixture(params=["one chunk per sequence", "default chunks"])
def chunks(request, monkeypatch):
    """Run a test with a chunk per sequence (every thread and chunk-sum path) and with the default cut."""
    if request.param == "one chunk per sequence":
        monkeypatch.setattr(batch_module, "MIN_CHUNK_ROWS", 1)
        monkeypatch.setattr(batch_module, "SHARERS_PER_CHUNK", 0)
    return request.param


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("d,m,p_in,lengths", [(2, 1, 0, (1, 7, 30, 2, 600)), (3, 2, 2, tuple(range(5, 80, 3)))])
def test_batch_e_step_equals_the_per_sequence_e_step(d, m, p_in, lengths, n_threads, chunks):
    p = _inputs_model(d, m, p_in, seed=d) if p_in else _model(d, m, seed=d)
    rng = np.random.default_rng(len(lengths))
    ys = [_data(p, T, seed=i, missing=T > 20) for i, T in enumerate(lengths)]
    us = [rng.normal(size=(T, p_in)) for T in lengths] if p_in else None
    y, offsets = pack(ys)
    u = np.concatenate(us) if p_in else None
    stats, ll = batch_e_step(p, y, offsets, u, n_threads=n_threads)
    seqs, useqs, _ = prepare(p, ys, us)
    ref_stats, ref_ll = e_step(p, seqs, useqs)
    assert ll == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(stats, ref_stats, rtol=1e-10, atol=1e-10 * np.abs(ref_stats).max())
    lls = batch_log_likelihood(p, y, offsets, u, n_threads=n_threads)
    for i, s in enumerate(ys):
        assert lls[i] == pytest.approx(kalman_log_likelihood(p, s, None if us is None else us[i]), rel=1e-12)


@pytest.mark.parametrize("lengths", [(40,), (40, 40, 40, 40, 40, 40), (30, 40, 50)])
def test_a_batch_declared_complete_refuses_a_missing_value_rather_than_drop_it(lengths):
    # complete=True compiles the statistics without the imputation of missing rows; a caller whose
    # promise is wrong gets the library's error, not statistics that leave those rows out
    p = _model(2, 2, seed=3)
    ys = [_data(p, T, seed=i, missing=False) for i, T in enumerate(lengths)]
    ys[-1][7, 1] = np.nan
    y, offsets = pack(ys)
    with pytest.raises(DataError, match="declared every row complete"):
        batch_e_step(p, y, offsets, complete=True)
    stats, ll = batch_e_step(p, y, offsets)  # checked: imputed, as the per-sequence E-step does
    seqs, useqs, _ = prepare(p, ys, None)
    ref_stats, ref_ll = e_step(p, seqs, useqs)
    assert ll == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(stats, ref_stats, rtol=1e-10, atol=1e-10 * np.abs(ref_stats).max())


def test_batch_sums_do_not_depend_on_the_threads(monkeypatch):
    monkeypatch.setattr(batch_module, "MIN_CHUNK_ROWS", 1)  # many chunks, spread over the threads
    monkeypatch.setattr(batch_module, "SHARERS_PER_CHUNK", 0)
    p = _model(3, 2, seed=1)
    ys = [_data(p, T, seed=T, missing=False) for T in range(20, 300, 7)]
    y, offsets = pack(ys)
    assert len(batch_module._chunk_ends(offsets)) > 2
    one, two = batch_e_step(p, y, offsets, n_threads=1), batch_e_step(p, y, offsets, n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    assert one[1] == two[1]


@pytest.mark.parametrize(
    "lengths",
    [
        [100] * 2000,
        [1000] * 100,
        [200] * 5000,
        list(range(1, 3000)),
        [70_000],
        [5] * 3,
        [1_000_000, 3, 3],
        [1_000_000] + [3] * 20,
    ],
)
def test_chunks_are_a_power_of_two_of_whole_runs(lengths):
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ends = batch_module._chunk_ends(offsets)
    n, S, N = len(ends), len(lengths), int(offsets[-1])
    # every sequence in exactly one chunk, in order
    assert ends[-1] == S and (np.diff(np.concatenate([[0], ends])) > 0).all()
    # the largest power of two within the floors; fewer only where one sequence outweighs a chunk's share
    rows = max(batch_module.MIN_CHUNK_ROWS, batch_module.SHARERS_PER_CHUNK * N // S)
    cap = min(S, batch_module.MAX_CHUNKS, max(batch_module.MIN_CHUNKS, N // rows))
    planned = 1 << (cap.bit_length() - 1)
    if max(lengths) <= N / planned:
        assert n == planned
    else:
        assert n <= planned
    if n > 1 and min(lengths) == max(lengths):
        rows = np.diff(np.concatenate([[0], offsets[ends]]))
        assert rows.max() - rows.min() <= lengths[0]  # about equal rows


def test_batch_errors_name_the_sequence():
    p = _model(2, 2, seed=0)
    tiny = p.replace(P0=p.P0 * 1e-150, Q=p.Q * 1e-150, R=p.R * 1e-150)
    ys = [np.zeros((5, 2)), np.zeros((6, 2)), np.full((4, 2), 1e150)]
    y, offsets = pack(ys)
    lls = batch_log_likelihood(tiny, y, offsets)
    assert lls[2] == -np.inf and np.isfinite(lls[:2]).all()
    with pytest.raises(ImpossibleDataError, match=r"y\[2\]: the observation at time step 0"):
        batch_e_step(tiny, y, offsets)
    with pytest.raises(ShapeError, match="offsets"):
        batch_e_step(p, y, np.array([0, 5, 14]))
    with pytest.raises(ShapeError, match="time-varying"):
        batch_e_step(_stacked(p, 5), y[:5], np.array([0, 5]))


def _assert_e_step_is_the_full_recursion(p, ys, n_threads, inputs=None):
    """The batch E-step of ``ys`` (and ``inputs``, a list like ``ys``) against the sum of every sequence's
    full recursion (time-varying parameters: nothing shared, nothing in lock-step); returns the packed batch."""
    y, offsets = pack(ys)
    u = None if inputs is None else np.concatenate(inputs)
    stats, ll = batch_e_step(p, y, offsets, u, n_threads=n_threads)
    seqs, us, _ = prepare(p, ys, inputs)
    ref = np.zeros_like(stats)
    ref_ll = 0.0
    for s, u in zip(seqs, us):
        st, l = e_step(_stacked(p, len(s)), [s], [u])
        ref += st
        ref_ll += l
    assert ll == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(stats, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    return y, offsets


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("d,m", [(1, 1), (4, 2), (9, 3)])
def test_long_sequences_nobody_shares_with_leave_fixed_points_in_place(d, m, n_threads):
    """A sequence whose covariances no other shares runs ``COMPACT``: a covariance at its fixed point
    stays in the row where it was reached (the E-step sums a run of such steps as one row times their
    number). Long sequences of distinct lengths, some with gaps that leave the fixed point and return
    to it, against each one's full recursion; d = 9 takes the generic loops, the others their
    dimensions' compiled copies."""
    p = _model(d, m, seed=20 + d)
    ys = [_data(p, T, seed=i, missing=i % 2 == 1) for i, T in enumerate((1500, 1501, 2003, 640, 2))]
    y, offsets = _assert_e_step_is_the_full_recursion(p, ys, n_threads)
    lls = batch_log_likelihood(p, y, offsets, n_threads=n_threads)
    for i, s in enumerate(ys):
        assert lls[i] == pytest.approx(kalman_log_likelihood(_stacked(p, len(s)), s), rel=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_sequences_of_one_length_and_mask_share_covariances(n_threads, chunks, lockstep):
    """A fleet of equal-length sequences: the batch replays the first one's covariances for the others
    (same length, same missing coordinates) and recomputes them where the pattern differs."""
    p = _model(3, 2, seed=7)
    rng = np.random.default_rng(5)
    ys = [rng.normal(size=(40, 2)) * 2.0 for _ in range(12)]
    ys[4][10:13] = np.nan  # a different pattern between two shared runs
    ys[5][10:13] = np.nan  # ... shared by the next sequence
    ys[8][3, 1] = np.nan
    ys[9] = ys[9][:35]  # another length
    y, offsets = _assert_e_step_is_the_full_recursion(p, ys, n_threads)
    lls = batch_log_likelihood(p, y, offsets, n_threads=n_threads)
    for i, s in enumerate(ys):
        assert lls[i] == pytest.approx(kalman_log_likelihood(p, s), rel=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_interleaved_lengths_are_grouped_to_share_covariances(n_threads, chunks, lockstep):
    """Lengths alternating within a chunk: the batch visits each chunk's sequences by length, so the
    equal-length ones share covariances and the covariance half of their statistics; the sums still
    equal the per-sequence E-step's (and one chunk per sequence changes nothing)."""
    p = _model(3, 2, seed=8)
    rng = np.random.default_rng(8)
    ys = [rng.normal(size=(30 + i % 3, 2)) * 2.0 for i in range(15)]
    ys[7][5, 0] = np.nan  # one with its own missing pattern in the middle of a run
    y, offsets = pack(ys)
    stats, ll = batch_e_step(p, y, offsets, n_threads=n_threads)
    seqs, us, _ = prepare(p, ys, None)
    ref_stats, ref_ll = e_step(p, seqs, us)
    assert ll == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(stats, ref_stats, rtol=1e-10, atol=1e-10 * np.abs(ref_stats).max())


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_shuffled_ragged_fleet_equals_its_sequences_one_by_one(n_threads, chunks, lockstep):
    """Twelve sequences of each of five lengths, shuffled over the batch: the batch is sorted by length
    before it is cut, so sequences far apart share covariances and replay in lock-step; the summed
    statistics equal the per-sequence E-step's and each log-likelihood lands at its own index."""
    p = _model(2, 2, seed=3)
    rng = np.random.default_rng(3)
    lengths = rng.permutation(np.repeat([17, 23, 24, 40, 61], 12))
    ys = [rng.normal(size=(T, 2)) * 1.5 for T in lengths]
    ys[5][3, 1] = np.nan  # one sequence with its own missing pattern among its length's run
    y, offsets = pack(ys)
    stats, ll = batch_e_step(p, y, offsets, n_threads=n_threads)
    seqs, us, _ = prepare(p, ys, None)
    ref_stats, ref_ll = e_step(p, seqs, us)
    assert ll == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(stats, ref_stats, rtol=1e-10, atol=1e-10 * np.abs(ref_stats).max())
    lls = batch_log_likelihood(p, y, offsets, n_threads=n_threads)
    np.testing.assert_allclose(lls, [kalman_log_likelihood(p, s) for s in ys], rtol=1e-12)


def _fleet(p, rng, p_in=0):
    """Sequences that exercise every sharing case: repeated lengths, one length with two missing
    patterns (each shared), a fully missing step, a sequence of one step, an empty one."""
    lengths = (40, 40, 25, 40, 25, 40, 1, 40, 0, 25, 40)
    ys = [rng.normal(size=(T, p.obs_dim)) * 2.0 for T in lengths]
    for i in (3, 5):
        ys[i][10:13] = np.nan
    ys[7][4, 0] = np.nan
    ys[10][4, 0] = np.nan
    us = [rng.normal(size=(T, p_in)) for T in lengths] if p_in else None
    return ys, us


@pytest.fixture(params=["small groups one by one", "every group in lock-step"])
def lockstep(request, monkeypatch):
    """Run a test with the default lock-step threshold and with every group of sharers in lock-step
    (inputs, missing patterns, smoothing and groups of one through ``replay_groups``)."""
    if request.param == "every group in lock-step":
        monkeypatch.setattr(batch_module, "MIN_LOCKSTEP", 1)
    return request.param


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("d,m,p_in", [(1, 1, 0), (3, 2, 0), (3, 2, 2), (5, 3, 0)])
def test_batch_filter_and_smoother_equal_the_full_recursion_per_sequence(d, m, p_in, n_threads, lockstep):
    """Every sequence of a batch (sharing covariances or not) equals the filter and smoother of the
    same model written with time-varying stacks, which runs the whole recursion at every step alone."""
    p = _inputs_model(d, m, p_in, seed=d) if p_in else _model(d, m, seed=d)
    ys, us = _fleet(p, np.random.default_rng(d + p_in), p_in)
    y, offsets = pack(ys)
    u = np.concatenate(us) if p_in else None
    filt = batch_filter(p, y, offsets, u, n_threads=n_threads)
    smo = batch_smoother(p, y, offsets, u, n_threads=n_threads)
    assert filt.smoothed_means is None
    for i, s in enumerate(ys):
        ui = None if us is None else us[i]
        if len(s) == 0:
            assert filt.log_likelihoods[i] == 0.0 and smo.sequence(i).smoothed_means.shape == (0, d)
            continue
        ref = rts_smoother(_stacked(p, len(s)), s, ui)
        got = smo.sequence(i)
        for name in got._fields:
            np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-9, atol=1e-12, err_msg=name)
        f = filt.sequence(i)
        assert type(f).__name__ == "KalmanFilterResult"
        for name in f._fields:
            np.testing.assert_allclose(getattr(f, name), getattr(ref, name), rtol=1e-9, atol=1e-12, err_msg=name)


def test_batch_covariances_are_stored_once_per_length_and_pattern():
    """The fleet of `_fleet`: 11 sequences, 6 covariance groups (40, 25, 40 with a gap, 1, 0, 40 with a
    missing coordinate); sharers get the very rows of their group, read-only (covariances equal to the
    bit), and the replay, run in lock-step by the group's members, gives the same means to round-off
    as the sequence filtered alone in a batch of one."""
    p = _model(3, 2, seed=3)
    ys, _ = _fleet(p, np.random.default_rng(0))
    y, offsets = pack(ys)
    res = batch_smoother(p, y, offsets)
    assert res.filtered_covs.shape[0] == 40 + 25 + 40 + 1 + 0 + 40
    assert len({int(c) for c, T in zip(res.cov_rows, map(len, ys)) if T}) == 5
    assert not res.filtered_covs.flags.writeable and not res.smoothed_covs.flags.writeable
    for i, s in enumerate(ys):
        if len(s) == 0:
            continue
        one = batch_smoother(p, s, np.array([0, len(s)]), n_threads=1).sequence(0)
        for name, a in zip(one._fields, res.sequence(i)):
            if name.endswith("means") or name == "log_likelihood":
                np.testing.assert_allclose(a, getattr(one, name), rtol=1e-12, atol=1e-13, err_msg=f"{i} {name}")
            else:
                np.testing.assert_array_equal(a, getattr(one, name), err_msg=f"{i} {name}")


def test_model_verbs_run_a_list_as_one_batch():
    """`LinearGaussianSSM.filter/smooth/log_likelihood` of a list equal the per-sequence functions;
    time-varying models and single sequences keep the per-sequence path."""
    p = _model(2, 2, seed=11)
    model = LinearGaussianSSM(p)
    ys, _ = _fleet(p, np.random.default_rng(1))
    ys = [s for s in ys if len(s)]
    filt, smo = model.filter(ys), model.smooth(ys)
    assert isinstance(filt, list) and len(filt) == len(ys)
    total = 0.0
    for i, s in enumerate(ys):
        ref = rts_smoother(p, s)
        np.testing.assert_allclose(smo[i].smoothed_covs, ref.smoothed_covs, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(smo[i].smoothed_means, ref.smoothed_means, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(filt[i].filtered_means, kalman_filter(p, s).filtered_means, rtol=1e-10, atol=1e-13)
        total += kalman_log_likelihood(p, s)
    assert model.log_likelihood(ys) == pytest.approx(total, rel=1e-12)
    tv = LinearGaussianSSM(_stacked(p, 40))
    same = [s for s in ys if len(s) == 40]
    for a, b in zip(tv.smooth(same), model.smooth(same)):
        np.testing.assert_allclose(a.smoothed_means, b.smoothed_means, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a.smoothed_covs, b.smoothed_covs, rtol=1e-9, atol=1e-12)


def test_batch_filter_errors_name_the_sequence(lockstep):
    p = _model(2, 2, seed=0)
    tiny = p.replace(P0=p.P0 * 1e-150, Q=p.Q * 1e-150, R=p.R * 1e-150)
    ys = [np.zeros((5, 2)), np.zeros((5, 2)), np.full((5, 2), 1e150), np.zeros((5, 2))]
    y, offsets = pack(ys)
    # sequence 2 shares sequence 0's covariances and fails on its own data in the replay
    with pytest.raises(ImpossibleDataError, match=r"y\[2\]: the observation at time step 0"):
        batch_filter(tiny, y, offsets)
    with pytest.raises(ImpossibleDataError, match=r"y\[2\]"):
        LinearGaussianSSM(tiny).smooth(ys)
    # a source that fails: its sharers are not run, and the error names the source
    unstable = p.replace(F=np.eye(2) * 1e3)
    gap = [np.vstack([np.full((120, 2), np.nan), np.ones((1, 2))]) for _ in range(3)]
    with pytest.raises(DataError, match=r"y\[0\]"):
        batch_filter(unstable, *pack(gap))
    with pytest.raises(ShapeError, match="time-varying"):
        batch_filter(_stacked(p, 5), y[:5], np.array([0, 5]))


def test_filter_groups_of_every_length_replay_in_lock_step():
    """Without smoothing, complete sequences of every length share the longest one's covariances (the
    filter's at step t do not depend on later steps): one stored copy, several lock-step runs of
    members of decreasing lengths, each equal to its own filter; a member whose data are impossible
    mid-run is named, and the others of its run are not disturbed."""
    p = _model(2, 2, seed=4)
    rng = np.random.default_rng(4)
    n = 2 * batch_module.LOCKSTEP + 77
    ys = [rng.normal(size=(int(T), 2)) for T in rng.integers(1, 60, size=n)]
    y, offsets = pack(ys)
    res = batch_filter(p, y, offsets)
    assert res.filtered_covs.shape[0] == max(map(len, ys))
    every = res.sequences()
    for i, s in enumerate(ys):
        ref = kalman_filter(p, s)
        got = res.sequence(i)
        for name in got._fields:
            np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-12, atol=1e-13, err_msg=name)
            np.testing.assert_array_equal(getattr(every[i], name), getattr(got, name))  # built in bulk: the same
    for name in every[0]._fields:  # negative indices count from the end
        np.testing.assert_array_equal(getattr(res.sequence(-1), name), getattr(every[-1], name))
    with pytest.raises(IndexError):
        res.sequence(n)
    bad = next(i for i in range(n // 2, n) if len(ys[i]) > 8)
    ys[bad] = ys[bad].copy()
    ys[bad][7] = 1e200  # an observation of zero probability in float64
    with pytest.raises(ImpossibleDataError, match=rf"y\[{bad}\]: the observation at time step 7"):
        batch_filter(p, *pack(ys))


@pytest.mark.parametrize("smooth", [False, True])
def test_lock_step_groups_longer_than_their_staging_blocks(smooth):
    """Lock-step members keep their last ``STAGE_STEPS`` steps of means in a staging block before writing
    them to their own rows: members longer than several blocks, whose lengths (filter-only groups mix
    lengths) end inside a block, each equal their own filter (and RTS smoother)."""
    from statespace.linear_gaussian import _fast

    p = _model(3, 2, seed=11)
    rng = np.random.default_rng(11)
    span = 3 * _fast.STAGE_STEPS
    n = batch_module.LOCKSTEP + 9  # a full group and a partial one
    lengths = [span + 5] * n if smooth else rng.integers(span // 3, span + 5, size=n)
    ys = [rng.normal(size=(int(T), 2)) for T in lengths]
    y, offsets = pack(ys)
    res = (batch_smoother if smooth else batch_filter)(p, y, offsets)
    oracle = rts_smoother if smooth else kalman_filter
    for i, s in enumerate(ys):
        ref, got = oracle(p, s), res.sequence(i)
        for name in got._fields:
            np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-12, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_e_step_of_a_fleet_in_lock_step_groups_equals_the_full_recursion(n_threads):
    """Runs of sharers longer than a lock-step group (several full groups and a partial one), of two
    lengths (2 steps: no interior step), a run cut by a sequence with its own missing pattern, and
    lengths too long for a group of ``MIN_LOCKSTEP``: the summed statistics and log-likelihoods equal
    the full per-sequence recursion's."""
    from statespace.linear_gaussian import _fast

    p = _model(3, 2, seed=21)
    rng = np.random.default_rng(21)
    n = 2 * batch_module.LOCKSTEP + 5
    long_T = _fast.ESTEP_BLOCK_ROWS // batch_module.MIN_LOCKSTEP + 1  # groups of fewer than MIN_LOCKSTEP
    lengths = [37] * n + [2] * (batch_module.MIN_LOCKSTEP + 3) + [long_T] * batch_module.MIN_LOCKSTEP
    ys = [rng.normal(size=(T, 2)) * 2.0 for T in lengths]
    ys[n // 2][5, 1] = np.nan
    y, offsets = _assert_e_step_is_the_full_recursion(p, ys, n_threads)
    lls = batch_log_likelihood(p, y, offsets, n_threads=n_threads)
    for i in range(0, len(ys), 7):
        assert lls[i] == pytest.approx(kalman_log_likelihood(p, ys[i]), rel=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_e_step_of_a_fleet_with_inputs_in_lock_step_groups_equals_the_full_recursion(n_threads):
    """Inputs move the means, not the covariances: a fleet with inputs replays in lock-step too, each
    member reading its own ``B u_t``, ``D u_t`` and ``u_t`` (every statistic of the inputs included:
    ``x_{t-1} u_t^T``, ``x_t u_t^T``, ``u_t u_t^T`` of the transition and of the emission, ``y_t u_t^T``)
    against each sequence's full recursion; a run cut by a sequence with a missing value."""
    p = _inputs_model(3, 2, 2, seed=22)
    rng = np.random.default_rng(22)
    lengths = [41] * (batch_module.LOCKSTEP + batch_module.MIN_LOCKSTEP + 3) + [2] * (batch_module.MIN_LOCKSTEP + 2)
    ys = [rng.normal(size=(T, 2)) * 2.0 for T in lengths]
    us = [rng.normal(size=(T, 2)) + 3.0 for T in lengths]  # not centred: the input sums are far from zero
    ys[5][7, 0] = np.nan
    assert batch_module._paths(np.array(lengths), False)[2]  # the lock-step path is taken
    y, offsets = _assert_e_step_is_the_full_recursion(p, ys, n_threads, inputs=us)
    lls = batch_log_likelihood(p, y, offsets, np.concatenate(us), n_threads=n_threads)
    for i in range(0, len(ys), 5):
        assert lls[i] == pytest.approx(kalman_log_likelihood(p, ys[i], us[i]), rel=1e-12)


def test_a_fleet_with_inputs_through_the_model_equals_each_sequence_alone():
    """The list rule with inputs: the fleet's inputs, validated as one block, fold into the batch's
    means (lock-step groups and a ragged tail); every entry equals the verb on that sequence alone."""
    model = LinearGaussianSSM(_inputs_model(3, 2, 2, seed=23))
    rng = np.random.default_rng(23)
    lengths = [30] * (batch_module.MIN_LOCKSTEP + 4) + [17, 9, 9]
    ys = [rng.normal(size=(T, 2)) for T in lengths]
    us = [rng.normal(size=(T, 2)) + 1.0 for T in lengths]
    ys[-1][3] = np.nan
    for verb in (model.filter, model.smooth):
        fleet = verb(ys, us)
        for i in (0, 7, len(ys) - 3, len(ys) - 1):
            alone = verb(ys[i], us[i])
            for name in alone._fields:
                np.testing.assert_allclose(
                    getattr(fleet[i], name), getattr(alone, name), rtol=1e-12, atol=1e-13, err_msg=name
                )
    total = sum(model.log_likelihood(y, u) for y, u in zip(ys, us))
    assert model.log_likelihood(ys, us) == pytest.approx(total, rel=1e-12)
