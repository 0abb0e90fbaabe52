"""The filter's hand-vectorised pieces against plain references: the exponential of the weights
(against ``numpy.exp``, to one ulp) and branch-free systematic resampling (against the textbook
merge loop, index for index)."""

import numba as nb
import numpy as np

from smc.resampling import SYSTEMATIC, resample_into, systematic
from statespace._numerics.exp import exp_nonpositive
from statespace._numerics.weights import normalise


@nb.njit
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = exp_nonpositive(x[i])


def test_exp_within_one_ulp_and_underflow_to_zero():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [-rng.random(200_000) * 708, -rng.random(50_000), -rng.random(50_000) * 1e-8, [0.0, -0.0, -708.0]]
    )
    out = np.empty_like(x)
    _exp_all(x, out)
    ref = np.exp(x)
    assert np.all(np.abs(out - ref) <= np.spacing(ref))
    tiny = np.array([-708.5, -750.0, -1e300, -np.inf])
    out = np.empty(4)
    _exp_all(tiny, out)
    assert np.all(out == 0.0)


def test_normalise_matches_numpy():
    rng = np.random.default_rng(1)
    logw = rng.standard_normal(1001) * 30 - 500
    logw[::7] = -np.inf
    W = np.empty_like(logw)
    lse, ess = normalise(logw, W)
    m = logw.max()
    ref = np.exp(logw - m) / np.exp(logw - m).sum()
    np.testing.assert_allclose(W, ref, rtol=1e-13, atol=0)
    assert abs(lse - (m + np.log(np.exp(logw - m).sum()))) < 1e-12
    assert abs(ess - 1 / np.sum(ref**2)) < 1e-10 * ess
    for bad in (np.nan, np.inf):
        logw2 = logw.copy()
        logw2[3] = bad
        assert np.isnan(normalise(logw2, W)[0])
    assert np.isnan(normalise(np.full(5, -np.inf), np.empty(5))[0])


def _merge(W, M, v):
    A, j, s = [], 0, W[0]
    for m in range(M):
        u = (m + v) / M
        while u > s and j < len(W) - 1:
            j += 1
            s += W[j]
        A.append(j)
    return np.array(A)


def test_systematic_matches_the_merge_loop():
    rng = np.random.default_rng(2)
    for trial in range(400):
        N, M = int(rng.integers(1, 200)), int(rng.integers(1, 200))
        kind = trial % 4
        if kind == 0:
            W = rng.random(N)
        elif kind == 1:
            W = np.exp(rng.standard_normal(N) * 10)
        elif kind == 2:
            W = (rng.random(N) < 0.3) * rng.random(N)
            W[rng.integers(N)] += 1.0
        else:
            W = np.ones(N)
        W = W / W.sum()
        seed = int(rng.integers(1 << 30))
        v = np.random.default_rng(seed).random()
        expected = _merge(W, M, v)
        np.testing.assert_array_equal(systematic(W, M, np.random.default_rng(seed)), expected)
        out = np.empty(M, dtype=np.int64)
        resample_into(SYSTEMATIC, W, np.random.default_rng(seed), out)
        np.testing.assert_array_equal(out, expected)
