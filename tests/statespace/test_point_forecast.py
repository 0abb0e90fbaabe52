"""The cross-validated choice of the point forecast's cap, against enumeration of every test set."""

import itertools

import numpy as np
import pytest

from statespace.errors import DataError, ParameterError, ShapeError
from statespace.prognostics import Cut, PhaseTypeDistribution, capped_means, phm08_scores, select_point_cap


def _problem(seed=3):
    """Three engines with 2, 3 and 2 cuts; a random predictive pmf on 0..40 (with a tail) at each cut."""
    rng = np.random.default_rng(seed)
    cuts = [Cut(e, 31 + j, 0) for e, n in enumerate((2, 3, 2)) for j in range(n)]
    dists = []
    for _ in cuts:
        pmf = rng.dirichlet(np.full(41, 0.3)) * 0.9
        dists.append(PhaseTypeDistribution(np.arange(41), pmf, 0.1, 0.0, 0.0))
    true = rng.integers(5, 45, len(cuts)).astype(float)
    return dists, true, cuts


def _every_test_set(cuts):
    """Index arrays of every test set (one cut per engine), all equally likely."""
    by_engine = {}
    for i, c in enumerate(cuts):
        by_engine.setdefault(c.engine, []).append(i)
    return [np.array(s) for s in itertools.product(*by_engine.values())]


def test_capped_means_by_the_survival_identity():
    # E[min(R, c)] = sum_{k < c} P(R > k) for integer c: an identity independent of the pmf-weighted sum
    dists, _, _ = _problem()
    caps = [1, 7, 25, 40, 60]
    got = capped_means(dists, caps)
    for i, d in enumerate(dists):
        survival = 1.0 - np.cumsum(d.pmf)  # P(R > k), the tail included
        survival = np.concatenate([survival, np.full(100, d.tail)])
        np.testing.assert_allclose(got[i], [survival[:c].sum() for c in caps], rtol=1e-12)


def test_selection_matches_enumerated_test_sets():
    dists, true, cuts = _problem()
    caps = np.array([5.0, 15.0, 25.0, 35.0])
    sets = _every_test_set(cuts)
    assert len(sets) == 12
    points = capped_means(dists, caps)
    exact_mse = np.array([[np.mean((points[s, j] - true[s]) ** 2) for s in sets] for j in range(4)])
    exact_score = np.array([[phm08_scores(points[s, j], true[s]).sum() for s in sets] for j in range(4)])
    sel = select_point_cap(dists, true, cuts, caps)
    # the cut-weighted figures are the expectations over the equally likely test sets
    np.testing.assert_allclose(sel.rmse**2, exact_mse.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(sel.score, exact_score.mean(axis=1), rtol=1e-12)
    assert sel.p_targets is None and sel.cap == caps[np.argmin(exact_mse.mean(axis=1))]

    max_rmse, max_score = np.median(np.sqrt(exact_mse)), np.median(exact_score)
    met = (np.sqrt(exact_mse) <= max_rmse) & (exact_score <= max_score)
    exact_p = met.mean(axis=1)
    sel = select_point_cap(dists, true, cuts, caps, max_rmse=max_rmse, max_score=max_score, n_draws=20000, rng=1)
    # binomial standard error <= 0.0036 with 20,000 draws
    np.testing.assert_allclose(sel.p_targets, exact_p, atol=0.02)
    order = np.sort(exact_p)
    assert order[-1] - order[-2] > 0.05  # a clear winner, so the estimate must find it
    assert sel.cap == caps[np.argmax(exact_p)]
    # one target alone
    sel = select_point_cap(dists, true, cuts, caps, max_score=max_score, n_draws=20000, rng=2)
    np.testing.assert_allclose(sel.p_targets, (exact_score <= max_score).mean(axis=1), atol=0.02)


def test_selection_draws_are_shared_by_the_caps():
    # equal forecasts under two caps (every distribution below both) get the same probability exactly
    dists = [PhaseTypeDistribution(np.arange(4), np.array([0.1, 0.2, 0.3, 0.4]), 0.0, 0.0, 0.0) for _ in range(6)]
    cuts = [Cut(e, 31, 0) for e in (0, 0, 1, 1, 2, 2)]
    true = np.array([1.0, 4.0, 2.0, 9.0, 3.0, 0.0])
    sel = select_point_cap(dists, true, cuts, [10.0, 20.0, 1.5], max_rmse=3.0, n_draws=500, rng=0)
    assert sel.p_targets[0] == sel.p_targets[1] and 0 < sel.p_targets[0] < 1
    assert sel.cap == 10.0  # a tie goes to the lower RMSE, then the first


def test_selection_refuses_bad_input():
    dists, true, cuts = _problem()
    with pytest.raises(ParameterError, match=r"caps\[1\]"):
        select_point_cap(dists, true, cuts, [125.0, -1.0])
    with pytest.raises(ParameterError, match=r"caps\[0\]"):
        capped_means(dists, [np.nan])
    with pytest.raises(ShapeError, match="caps"):
        select_point_cap(dists, true, cuts, [])
    with pytest.raises(ShapeError, match="true_rul"):
        select_point_cap(dists, true[:-1], cuts, [125.0])
    with pytest.raises(DataError, match="index 2"):
        select_point_cap(dists, np.where(np.arange(true.size) == 2, np.nan, true), cuts, [125.0])
    with pytest.raises(ShapeError, match="cuts"):
        select_point_cap(dists, true, cuts[:-1], [125.0])
    with pytest.raises(ParameterError, match="max_rmse"):
        select_point_cap(dists, true, cuts, [125.0], max_rmse=0.0)
    with pytest.raises(ParameterError, match="max_score"):
        select_point_cap(dists, true, cuts, [125.0], max_score=np.inf)
