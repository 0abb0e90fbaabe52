"""Resampling schemes: unbiased offspring counts (replicate means against M W) and structural invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smc.resampling import SCHEMES, resample, resample_compiled, scheme_code
from statespace.errors import ParameterError

WEIGHTS = np.array([0.0, 0.01, 0.04, 0.15, 0.3, 0.0, 0.25, 0.1, 0.05, 0.1])


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("M", [10, 23])
def test_offspring_counts_are_unbiased(scheme, M):
    rng = np.random.default_rng(1234)
    R = 4000
    counts = np.empty((R, len(WEIGHTS)))
    code = scheme_code(scheme)
    for r in range(R):
        counts[r] = np.bincount(resample_compiled(code, WEIGHTS, M, rng), minlength=len(WEIGHTS))
    mean = counts.mean(axis=0)
    se = counts.std(axis=0, ddof=1) / np.sqrt(R)
    # 4 standard errors per coordinate; a deterministic count (se = 0) must be exact
    assert np.all(np.abs(mean - M * WEIGHTS) <= 4 * se + 1e-12), (mean, M * WEIGHTS, se)
    assert np.all(counts[:, WEIGHTS == 0] == 0)


def test_multinomial_counts_have_binomial_variance():
    rng = np.random.default_rng(7)
    M, R = 50, 4000
    counts = np.array([np.bincount(resample_compiled(0, WEIGHTS, M, rng), minlength=10) for _ in range(R)])
    var = counts.var(axis=0, ddof=1)
    expected = M * WEIGHTS * (1 - WEIGHTS)
    # sampling sd of a variance estimate is about var * sqrt(2 / R) (plus kurtosis); allow 6 of them
    assert np.all(np.abs(var - expected) <= 6 * np.sqrt(2.0 / R) * expected + 1e-12)


def test_low_variance_schemes_beat_multinomial():
    rng = np.random.default_rng(3)
    M, R = 40, 2000
    var = {}
    for name, code in SCHEMES.items():
        c = np.array([np.bincount(resample_compiled(code, WEIGHTS, M, rng), minlength=10) for _ in range(R)])
        var[name] = c.var(axis=0).sum()
    for name in ("stratified", "systematic", "residual"):
        assert var[name] < var["multinomial"]


@settings(max_examples=60, deadline=None)
@given(
    w=st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=1, max_size=30).filter(lambda v: sum(v) > 1e-3),
    M=st.integers(1, 60),
    scheme=st.sampled_from(sorted(SCHEMES)),
    seed=st.integers(0, 2**31),
)
def test_invariants(w, M, scheme, seed):
    w = np.array(w)
    W = w / w.sum()
    A = resample(w, scheme=scheme, n=M, rng=seed)
    assert A.shape == (M,) and A.dtype == np.int64
    assert np.all(np.diff(A) >= 0)
    assert np.all((A >= 0) & (A < len(w)))
    assert np.all(W[A] > 0)
    counts = np.bincount(A, minlength=len(w))
    if scheme == "systematic":
        assert np.all(np.abs(counts - M * W) < 1 + 1e-9)
    if scheme == "residual":
        assert np.all(counts >= np.floor(M * W * (1 - 1e-12)))


def test_same_seed_same_draws():
    for scheme in SCHEMES:
        np.testing.assert_array_equal(resample(WEIGHTS, scheme, 100, rng=5), resample(WEIGHTS, scheme, 100, rng=5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weights=[0.5, -0.1, 0.6]), "index 1"),
        (dict(weights=[0.5, np.nan]), "index 1"),
        (dict(weights=[0.0, 0.0]), "all weights are zero"),
        (dict(weights=[1.0], scheme="bogus"), "scheme"),
        (dict(weights=[1.0], n=0), "n:"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        resample(**kwargs)
