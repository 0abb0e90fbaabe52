"""State-conditional empirical RUL readout against a direct loop computation and a known chain."""

import numpy as np
import pytest

from statespace.errors import DataError, ParameterError, ShapeError
from statespace.prognostics import StateRULReadout, time_to_absorption


def _random_posteriors(rng, n_engines=6, K=4):
    out = []
    for T in rng.integers(15, 40, n_engines):
        p = rng.random((T, K)) ** 3
        out.append(p / p.sum(1, keepdims=True))
    return out


def _direct_pmf(probs, alpha, age, h, lam, horizon):
    """The readout written out cycle by cycle: weighted RUL histograms per state, mixed over alpha."""
    K = probs[0].shape[1]
    R = max(len(p) for p in probs)
    pooled = np.zeros((K, R))
    local = np.zeros((K, R))
    for p in probs:
        T = len(p)
        for t in range(T):
            r = T - 1 - t
            kern = 1.0 if h is None else np.exp(-0.5 * ((t - age) / h) ** 2)
            for k in range(K):
                pooled[k, r] += p[t, k]
                local[k, r] += p[t, k] * kern
    pooled /= pooled.sum(1, keepdims=True)
    cond = pooled if h is None else (local + lam * pooled) / (local.sum(1, keepdims=True) + lam)
    pmf = alpha @ cond
    if horizon is not None:
        pmf = np.r_[pmf, np.zeros(max(0, horizon + 1 - R))][: horizon + 1]
    return pmf / pmf.sum()


@pytest.mark.parametrize("h, lam, horizon", [(None, 1.0, None), (5.0, 1.0, None), (3.0, 0.2, 12), (8.0, 2.0, 60)])
def test_readout_matches_direct_computation(h, lam, horizon):
    rng = np.random.default_rng(3)
    probs = _random_posteriors(rng)
    ro = StateRULReadout(age_bandwidth=h, prior_strength=lam, horizon=horizon).fit(probs)
    for age in (0, 7.0, 21, 45):
        alpha = rng.dirichlet(np.ones(4))
        dist = ro.distribution(alpha, age)
        ref = _direct_pmf(probs, alpha, age, h, lam, horizon)
        np.testing.assert_allclose(dist.pmf, ref, atol=1e-12)
        # quantiles: smallest r whose cumulative weight reaches the level, from a sorted weighted sample
        r = np.arange(len(ref))
        for q in (0.05, 0.5, 0.95):
            assert dist.quantile(q) == r[np.flatnonzero(np.cumsum(ref) >= q - 1e-12)[0]]
        assert dist.mean == pytest.approx(r @ ref)
        assert dist.var == pytest.approx(((r - r @ ref) ** 2) @ ref)


def test_readout_of_a_known_chain_is_its_phase_type():
    """Engines simulated from a left-to-right chain with known states: the age-free readout
    of each state converges to the chain's time to absorption from that state."""
    rng = np.random.default_rng(0)
    A = np.array([[0.95, 0.05, 0.0, 0.0], [0.0, 0.9, 0.1, 0.0], [0.0, 0.0, 0.8, 0.2], [0.0, 0.0, 0.0, 1.0]])
    probs = []
    for _ in range(1500):
        z = [0]
        while z[-1] != 3:
            z.append(rng.choice(4, p=A[z[-1]]))
        probs.append(np.eye(4)[z[:-1]])  # operating cycles only: failure follows the last row
    ro = StateRULReadout(age_bandwidth=None).fit(probs)
    for k in range(3):
        emp = ro.distribution(np.eye(4)[k], age=0)
        ref = time_to_absorption(np.eye(4)[k], A, absorbing=[3], offset=1)
        n = min(len(emp.pmf), len(ref.pmf))
        # total variation distance: tens of thousands of (dependent) cycles per state
        assert 0.5 * np.abs(emp.pmf[:n] - ref.pmf[:n]).sum() + 0.5 * emp.pmf[n:].sum() < 0.04
        # the readout mean is a ratio of per-engine sums: delta-method standard error over engines
        a = np.array([np.sum((len(p) - 1 - np.arange(len(p)))[p[:, k] == 1]) for p in probs], float)
        b = np.array([np.sum(p[:, k]) for p in probs])
        se = np.sqrt(np.sum((a - emp.mean * b) ** 2)) / b.sum()
        assert emp.mean == pytest.approx(a.sum() / b.sum())
        assert abs(emp.mean - ref.mean) < 4 * se


def test_age_kernel_uses_elapsed_time():
    """One state, lives 30 or 60 cycles: at age 40 only the long engines remain, so the RUL is about 19."""
    probs = [np.ones((T, 1)) for T in [30] * 10 + [60] * 10]
    pooled = StateRULReadout(age_bandwidth=None).fit(probs).distribution([1.0], age=40)
    aged = StateRULReadout(age_bandwidth=2.0, prior_strength=1e-6).fit(probs).distribution([1.0], age=40)
    assert aged.mean == pytest.approx(19.0, abs=0.1)
    assert pooled.mean == pytest.approx(24.5)  # all cycles: RUL uniform on 0..29 and 0..59, weighted by cycles


def test_readout_errors():
    with pytest.raises(ParameterError, match="age_bandwidth"):
        StateRULReadout(age_bandwidth=0.0)
    with pytest.raises(ParameterError, match="prior_strength"):
        StateRULReadout(prior_strength=-1.0)
    with pytest.raises(DataError, match="fit"):
        StateRULReadout().distribution([1.0], 0)
    with pytest.raises(ShapeError, match=r"state_probs\[1\]"):
        StateRULReadout().fit([np.ones((5, 2)) / 2, np.ones((5, 3)) / 3])
    with pytest.raises(DataError, match=r"state_probs\[0\].*cycle 2, state 1"):
        StateRULReadout().fit([np.array([[1.0, 0.0], [0.5, 0.5], [1.0, np.nan]])])
    ro = StateRULReadout().fit([np.ones((5, 2)) / 2])
    with pytest.raises(ParameterError, match="state_probs"):
        ro.distribution([0.3, 0.3], 1)
    with pytest.raises(ParameterError, match="age"):
        ro.distribution([0.5, 0.5], -1)


def test_many_engines_at_shared_ages_match_the_direct_computation():
    rng = np.random.default_rng(4)
    probs = _random_posteriors(rng)
    ro = StateRULReadout(age_bandwidth=4.0, prior_strength=0.5, horizon=30).fit(probs)
    ages = np.array([3, 12, 3, 30, 12, 0])  # repeated ages share one table
    alphas = rng.dirichlet(np.ones(4), size=len(ages))
    for a, alpha, dist in zip(ages, alphas, ro.distributions(alphas, ages)):
        np.testing.assert_allclose(dist.pmf, _direct_pmf(probs, alpha, a, 4.0, 0.5, 30), atol=1e-12)
    with pytest.raises(ShapeError, match=r"expected shapes \(N, 4\) and \(N,\)"):
        ro.distributions(alphas, ages[:3])
    bad = alphas.copy()
    bad[2] = [0.5, 0.5, 0.5, 0.0]
    with pytest.raises(ParameterError, match=r"state_probs\[2\]"):
        ro.distributions(bad, ages)
    with pytest.raises(ParameterError, match=r"ages\[1\]"):
        ro.distributions(alphas, np.r_[3, -2, ages[2:]])
