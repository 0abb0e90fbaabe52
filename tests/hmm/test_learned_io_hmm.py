"""IOHMM: time-varying transitions from a deep SSM; exact inference against enumeration,
generalised EM monotonicity, the compiled face against a particle filter."""

import itertools

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")
import scipy.stats  # noqa: E402

from hmm.io_hmm import IOHMM, IOHMMParams  # noqa: E402
from statespace.errors import ParameterError, ShapeError  # noqa: E402

K = 2


def _data(rng, n=3, T=50):
    ys, us = [], []
    for _ in range(n):
        u = np.cumsum(rng.standard_normal(T)) * 0.3
        z = (u > 0).astype(int)
        ys.append((np.where(z, 1.0, -1.0) + 0.8 * rng.standard_normal(T))[:, None])
        us.append(u[:, None])
    return ys, us


@pytest.fixture(scope="module")
def fitted():
    ys, us = _data(np.random.default_rng(1))
    model = IOHMM(K, 1, 1, layer="lru", hidden=4, state=4)
    res = model.fit(ys, inputs=us, max_iter=6, m_steps=60, tol=1e-9, rng=0, progress=False)
    return model, ys, us, res


def test_generalised_em_log_likelihood_never_decreases(fitted):
    *_, res = fitted
    ll = res.log_likelihoods
    assert np.all(np.diff(ll) >= -1e-9 * np.abs(ll[:-1]))
    assert ll[-1] > ll[0]


def test_log_likelihood_matches_enumeration(fitted):
    model, ys, us, _ = fitted
    y, u = ys[0][:7].copy(), us[0][:7]
    y[2] = np.nan
    p = model.params
    A = model.transition_matrices(u)
    assert A.shape == (6, K, K)
    np.testing.assert_allclose(A.sum(-1), 1.0, atol=1e-12)
    sd = np.sqrt(p.variances[:, 0])
    logg = np.array(
        [
            [0.0 if np.isnan(y[t, 0]) else scipy.stats.norm.logpdf(y[t, 0], p.means[k, 0], sd[k]) for k in range(K)]
            for t in range(7)
        ]
    )
    paths = []
    for path in itertools.product(range(K), repeat=7):
        lp = np.log(p.pi0[path[0]]) + logg[0, path[0]]
        for t in range(1, 7):
            lp += np.log(A[t - 1, path[t - 1], path[t]]) + logg[t, path[t]]
        paths.append(lp)
    assert model.log_likelihood(y, inputs=u) == pytest.approx(np.logaddexp.reduce(paths), rel=1e-10)


def test_transitions_are_causal_in_the_inputs(fitted):
    model, _, us, _ = fitted
    u = us[0].copy()
    A = model.transition_matrices(u)
    u[30] += 3.0
    B = model.transition_matrices(u)
    np.testing.assert_allclose(A[:29], B[:29], atol=1e-12)  # A[t-1] is A_t: uses u_{0:t}
    assert np.abs(A[29:] - B[29:]).max() > 1e-6


def test_verbs_of_a_list_equal_each_sequence_alone(fitted):
    """Each sequence has its own transition matrices: a list goes sequence by sequence, computed once."""
    model, ys, us, _ = fitted
    smo, filt = model.smooth(ys, inputs=us), model.filter(ys, inputs=us)
    for i, (y, u) in enumerate(zip(ys, us)):
        one = model.smooth(y, inputs=u)
        np.testing.assert_array_equal(smo[i].smoothed_probs, one.smoothed_probs)
        np.testing.assert_array_equal(filt[i].filtered_probs, model.filter(y, inputs=u).filtered_probs)
        assert smo[i].log_likelihood == one.log_likelihood


def test_smoother_and_particle_filter(fitted):
    model, ys, us, _ = fitted
    smo = model.smooth(ys[1], inputs=us[1])
    np.testing.assert_allclose(smo.smoothed_probs.sum(1), 1.0, atol=1e-12)
    assert smo.transition_counts.sum() == pytest.approx(len(ys[1]) - 1)
    filt = model.filter(ys[1], inputs=us[1])
    np.testing.assert_allclose(smo.smoothed_probs[-1], filt.filtered_probs[-1], atol=1e-12)
    x, y = model.sample(40, inputs=us[1][:40], rng=3)
    assert x.shape == (40, 1) and y.shape == (40, 1) and set(np.unique(x)) <= {0.0, 1.0}
    smc = pytest.importorskip("smc")
    exact = model.log_likelihood(ys[1], inputs=us[1])
    ests = [smc.bootstrap_filter(model, ys[1], n_particles=300, rng=r, inputs=us[1]).log_likelihood for r in range(8)]
    se = np.std(ests) / np.sqrt(len(ests))
    assert abs(np.mean(ests) - exact) < 4 * se + 0.05


def test_bad_input(fitted):
    model, ys, us, _ = fitted
    with pytest.raises(ShapeError, match="inputs"):
        model.log_likelihood(ys[0])
    with pytest.raises(ShapeError, match="inputs"):
        model.log_likelihood(ys[0], inputs=np.zeros((len(ys[0]), 2)))
    with pytest.raises(ShapeError, match="inputs"):
        model.kernel_params()
    p = model.params
    with pytest.raises(ParameterError, match="variances"):
        IOHMMParams(p.pi0, p.net, p.means, -p.variances, p.u_loc, p.u_scale)
    with pytest.raises(ParameterError, match="input_dim"):
        IOHMM(2, 1, 0)


def test_save_and_load_round_trip(fitted, tmp_path):
    model, ys, us, _ = fitted
    back = IOHMM.load(model.save(tmp_path / "io.npz"))
    assert back.log_likelihood(ys, inputs=us) == pytest.approx(model.log_likelihood(ys, inputs=us), rel=1e-12)
