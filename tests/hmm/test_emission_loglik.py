"""The (autoregressive) Gaussian emission log-likelihoods against scipy, row by row, on sequences
long enough to fill the compiled kernel's blocks of time steps (and end in a partial one)."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from hmm import GaussianEmissionParams
from hmm.batch import _THREAD_WORK, batch_gaussian_loglik
from hmm.emissions import TIME_BLOCK, gaussian_loglik


def _oracle(e, y, u, t, k):
    """``log N`` of the observed coordinates of ``y[t]``, the regression or the restart Gaussian as documented."""
    L = e.lags
    obs = ~np.isnan(y[t])
    if not obs.any():
        return 0.0
    if t < L or np.isnan(y[t - L : t]).any():
        mean, cov = e.init_means[k], e.init_covs[k]
    else:
        mean = e.bias[k] + sum(e.ar_coefs[k, l] @ y[t - 1 - l] for l in range(L))
        if u.shape[1]:
            mean = mean + e.input_coefs[k] @ u[t]
        cov = e.covs[k]
    return multivariate_normal(mean[obs], cov[np.ix_(obs, obs)]).logpdf(y[t, obs])


@pytest.mark.parametrize(
    ("d", "lags", "input_dim", "diagonal"),
    [(1, 0, 0, False), (3, 0, 0, False), (3, 0, 0, True), (5, 2, 0, False), (2, 1, 2, True), (4, 1, 1, False)],
)
def test_blocked_emission_loglik_matches_scipy_row_by_row(d, lags, input_dim, diagonal):
    rng = np.random.default_rng(d * 100 + lags * 10 + input_dim)
    K = 3
    T = 2 * TIME_BLOCK + 37  # two full blocks and a partial one
    covs = []
    for _ in range(K):
        if diagonal:
            covs.append(np.diag(rng.uniform(0.3, 2.0, d)))
        else:
            w = rng.normal(size=(d, d))
            covs.append(w @ w.T / d + 0.3 * np.eye(d))
    covs = np.array(covs)
    ar = rng.normal(size=(K, lags, d, d)) * 0.3 if lags else None
    C = rng.normal(size=(K, d, input_dim)) if input_dim else None
    e = GaussianEmissionParams.from_ar(
        rng.normal(size=(K, d)) * 3.0,
        covs,
        ar_coefs=ar,
        input_coefs=C,
        init_means=rng.normal(size=(K, d)),
        init_covs=covs[::-1].copy(),
    )
    y = rng.normal(size=(T, d)) * 2.0 + 5.0
    u = rng.normal(size=(T, input_dim))
    y[TIME_BLOCK - 1, 0] = np.nan  # a partial row at a block's end; the next lags restart
    y[TIME_BLOCK + 5] = np.nan  # a missing step inside the second block
    y[T - 2, -1] = np.nan  # one in the partial block
    got = gaussian_loglik(e, y, u)
    want = np.array([[_oracle(e, y, u, t, k) for k in range(K)] for t in range(T)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("L", [0, 2])
@pytest.mark.parametrize(
    ("n_threads", "lengths"),
    [(2, [9_000, 1, 6_999, 3, 9_000]), (3, [9_000, 1, 6_999, 3, 9_000]), (2, [12_499, 12_502])],
)
def test_row_ranges_across_threads_equal_each_sequence_alone(n_threads, lengths, L):
    """A batch is cut into equal row ranges, whatever its sequences: a range that cuts a sequence
    reads its lag window's history, one that starts within a sequence's first L rows restarts with
    it (the last case cuts one row after a sequence's start). Each sequence's numbers equal its own, including restarts (NaN) at and after the cuts."""
    rng = np.random.default_rng(7)
    K, d = 3, 2
    e = GaussianEmissionParams.from_ar(
        rng.normal(size=(K, d)),
        np.array([np.eye(d) * (0.5 + k) for k in range(K)]),
        ar_coefs=0.2 * rng.normal(size=(K, L, d, d)) if L else None,
    )
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    N = int(offsets[-1])
    cuts = np.linspace(0, N, n_threads + 1).astype(int)[1:-1]
    assert N * K * d * d >= _THREAD_WORK  # large enough to be cut
    y = rng.normal(size=(N, d))
    y[cuts[-1] + 3] = np.nan  # a restart just after the last cut, whose own window crosses it cleanly
    if len(cuts) > 1:
        y[cuts[0] - 1, 0] = np.nan  # a window with a NaN across the first cut
    u = np.zeros((N, 0))
    got = batch_gaussian_loglik(e, y, u, offsets, n_threads=n_threads)
    for a, b in zip(offsets[:-1], offsets[1:]):
        np.testing.assert_array_equal(got[a:b], gaussian_loglik(e, y[a:b], u[a:b]))


@pytest.mark.parametrize("L", [0, 1, 3])
def test_clean_rows_of_a_batch_equal_their_definition_row_by_row(L):
    """A row takes the blocked fast path when it and the ``L`` rows before it in its own sequence are fully
    observed: the in-place flags (written over a dirty buffer, one sequence after another, and for one
    sequence alone) against that definition evaluated row by row."""
    from hmm.emission_updates import clean_batch_rows
    from hmm.emissions import clean_rows

    rng = np.random.default_rng(11 + L)
    N, d = 700, 3
    y = rng.normal(size=(N, d))
    y[rng.random((N, d)) < 0.03] = np.nan
    offsets = np.unique(np.concatenate([[0, N], rng.choice(np.arange(1, N), size=25, replace=False), [5, 6]]))
    offsets = offsets.astype(np.int64)
    full = ~np.isnan(y).any(axis=1)
    want = np.zeros(N, bool)
    for a, b in zip(offsets[:-1], offsets[1:]):
        for t in range(a, b):
            want[t] = t - a >= L and full[t - L : t + 1].all()
    dirty = rng.random(N) < 0.5
    np.testing.assert_array_equal(clean_batch_rows(y, L, offsets, dirty), want)
    a, b = offsets[3], offsets[4]
    np.testing.assert_array_equal(clean_rows(y[a:b], L), want[a:b])


@pytest.mark.parametrize("diagonal", [False, True])
def test_weighted_scatter_over_thread_chunks_equals_numpy_and_does_not_depend_on_threads(diagonal):
    """The E-step's scatter sums ``sum_t gamma_t(k) z_t z_t^T`` over the fast rows, cut into fixed chunks of
    rows summed on threads, against a direct numpy sum; sequences and lag windows straddle the chunk cuts,
    and one thread or two give the same bits."""
    import numba

    from hmm.emission_updates import SCATTER_CHUNK_ROWS, weighted_scatter
    from hmm.emissions import clean_rows

    rng = np.random.default_rng(5)
    d, L, p_in, K = 2, 2, 1, 3
    N = 2 * SCATTER_CHUNK_ROWS + 999
    y = rng.normal(size=(N, d))
    y[rng.random(N) < 0.01, 1] = np.nan
    u = rng.normal(size=(N, p_in))
    cuts = np.sort(rng.choice(np.arange(1, N), size=40, replace=False))
    cuts = np.unique(np.concatenate([cuts, [SCATTER_CHUNK_ROWS - 1, SCATTER_CHUNK_ROWS + 1]]))
    offsets = np.concatenate([[0], cuts, [N]]).astype(np.int64)
    gamma = rng.dirichlet(np.ones(K), size=N)
    q = 1 + L * d + p_in
    fast = np.concatenate([clean_rows(y[a:b], L) for a, b in zip(offsets[:-1], offsets[1:])])
    rows = np.flatnonzero(fast)
    Z = np.column_stack([np.ones(len(rows))] + [y[rows - 1 - l] for l in range(L)] + [u[rows], y[rows]])
    want = np.einsum("tk,ti,tj->kij", gamma[rows], Z, Z)
    if diagonal:  # the yy block's diagonal only
        yy = want[:, q:, q:]
        want[:, q:, q:] = yy * np.eye(d)
    threads = numba.get_num_threads()
    got = []
    try:
        for n in (1, 2):
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            S = np.zeros((K, q + d, q + d))
            np.testing.assert_array_equal(weighted_scatter(y, u, L, offsets, gamma, diagonal, S), fast)
            got.append(S)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_allclose(got[0], want, rtol=1e-10, atol=1e-9)
    np.testing.assert_array_equal(got[0], got[1])
