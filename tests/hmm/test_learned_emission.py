"""LearnedEmissionHMM: exact inference against brute-force enumeration and scipy densities,
generalised EM monotonicity, step-mode sampling against parallel mode, the compiled face."""

import itertools

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")
import scipy.stats  # noqa: E402

from hmm.learned_emission import LearnedEmissionHMM, LearnedEmissionParams  # noqa: E402
from statespace.errors import DataError, ParameterError, ShapeError  # noqa: E402

K, D = 2, 2


def _data(rng, n=3, T=48):
    out = []
    for _ in range(n):
        z = (np.arange(T) // 12) % 2
        y = np.column_stack([np.where(z, 1.5, -1.5), np.where(z, -0.5, 0.5)]) + 0.6 * rng.standard_normal((T, D))
        out.append(np.cumsum(y, axis=0) * 0.1 + y)
    return out


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    y = _data(rng)
    model = LearnedEmissionHMM(K, D, layer="s5", hidden=6, state=4, n_layers=1)
    res = model.fit(y, max_iter=6, m_steps=60, tol=1e-9, rng=0, progress=False)
    return model, y, res


def _brute_force(model, y):
    """log p(y) by summing over all K^T state paths with scipy's normal density."""
    p = model.params
    means, scales = model.emission_params(y)
    T = len(y)
    obs = ~np.isnan(y)
    logg = np.array(
        [[np.sum(scipy.stats.norm.logpdf(y[t], means[t, k], scales[t, k])[obs[t]]) for k in range(K)] for t in range(T)]
    )
    total = []
    for path in itertools.product(range(K), repeat=T):
        lp = np.log(p.pi0[path[0]]) + logg[0, path[0]]
        for t in range(1, T):
            lp += np.log(p.A[path[t - 1], path[t]]) + logg[t, path[t]]
        total.append(lp)
    return np.logaddexp.reduce(total)


def test_generalised_em_log_likelihood_never_decreases(fitted):
    _, _, res = fitted
    ll = res.log_likelihoods
    assert np.all(np.diff(ll) >= -1e-9 * np.abs(ll[:-1]))
    assert ll[-1] > ll[0]


def test_log_likelihood_matches_enumeration_with_missing_values(fitted):
    model, y, _ = fitted
    short = y[0][:7].copy()
    short[3, 1] = np.nan
    short[5] = np.nan
    assert model.log_likelihood(short) == pytest.approx(_brute_force(model, short), rel=1e-10)


def test_emissions_are_causal_and_smoother_consistent(fitted):
    model, y, _ = fitted
    full = model.emission_params(y[0])
    part = model.emission_params(y[0][:20])
    np.testing.assert_allclose(part[0], full[0][:20], atol=1e-10)
    np.testing.assert_allclose(part[1], full[1][:20], atol=1e-10)
    filt, smo = model.filter(y[0]), model.smooth(y[0])
    assert filt.log_likelihood == pytest.approx(smo.log_likelihood)
    np.testing.assert_allclose(smo.smoothed_probs.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(smo.smoothed_probs[-1], filt.filtered_probs[-1], atol=1e-12)
    assert smo.transition_counts.sum() == pytest.approx(len(y[0]) - 1)
    path = model.most_likely_states(y[0])
    assert path.shape == (len(y[0]),)


def test_many_sequences_go_through_the_network_in_chunks(fitted, monkeypatch):
    """Chunked evaluation (fixed chunk shapes, grouped by padded length) against one call per sequence."""
    import hmm.learned_emission as le

    model, y, _ = fitted
    rng = np.random.default_rng(3)
    cuts = [y[i % 3][: int(n)] for i, n in enumerate(rng.integers(5, 48, 9))] + [np.vstack(y)[:100]]
    cuts[4] = cuts[4].copy()
    cuts[4][2] = np.nan
    one_by_one = [model.filter(c) for c in cuts]
    monkeypatch.setattr(le, "_CHUNK", 4)  # 10 sequences, padded lengths 64 and 128: chunks of 4, 4, 1 and 1
    chunked = model.filter(cuts)
    for a, b in zip(one_by_one, chunked):
        assert b.log_likelihood == pytest.approx(a.log_likelihood, rel=1e-12)
        np.testing.assert_allclose(b.filtered_probs, a.filtered_probs, atol=1e-12)


def test_step_mode_sampling_matches_parallel_mode(fitted):
    model, _, _ = fitted
    p = model.params
    x, ys = model.sample(30, rng=7)
    means, scales = model.emission_params(ys)
    rng = np.random.default_rng(7)  # replay the sampler's draws
    z = 0
    for t in range(30):
        z = rng.choice(K, p=p.pi0) if t == 0 else rng.choice(K, p=p.A[z])
        eps = rng.standard_normal(D)
        assert x[t, 0] == z
        np.testing.assert_allclose(ys[t], means[t, z] + scales[t, z] * eps, rtol=1e-9, atol=1e-9)


def test_compiled_kernels_match_exact_likelihood(fitted):
    model, y, _ = fitted
    seq = y[1][:10]
    kp = model.kernel_params(y=seq)
    k = model.kernels()
    means, scales = model.emission_params(seq)
    for t in range(10):
        for s in range(K):
            want = scipy.stats.norm.logpdf(seq[t], means[t, s], scales[t, s]).sum()
            assert k.log_emission(kp, t, np.array([float(s)]), seq) == pytest.approx(want, rel=1e-10)
    smc = pytest.importorskip("smc")
    cond = model.conditioned_on(seq)
    ests = [smc.bootstrap_filter(cond, seq, n_particles=400, rng=r).log_likelihood for r in range(8)]
    se = np.std(ests) / np.sqrt(len(ests))
    assert abs(np.mean(ests) - model.log_likelihood(seq)) < 4 * se + 0.05


def test_warm_start_and_validation(fitted):
    model, y, _ = fitted
    p = model.params
    again = LearnedEmissionHMM(K, D, layer="s5", hidden=6, state=4, n_layers=1, params=p)
    assert again.log_likelihood(y) == pytest.approx(model.log_likelihood(y))
    with pytest.raises(ShapeError, match="y"):
        model.log_likelihood(np.zeros((5, 3)))
    with pytest.raises(ShapeError, match="y"):
        model.kernel_params()
    with pytest.raises(ParameterError, match="layer"):
        LearnedEmissionHMM(2, 1, layer="rnn")
    with pytest.raises(ParameterError, match="y_scale"):
        LearnedEmissionParams(p.pi0, p.A, p.net, p.y_loc, -p.y_scale)
    with pytest.raises(ParameterError, match="A"):
        LearnedEmissionParams(p.pi0, p.A * 2, p.net, p.y_loc, p.y_scale)


def test_save_and_load_round_trip(fitted, tmp_path):
    model, y, _ = fitted
    path = model.save(tmp_path / "learned.npz")
    back = LearnedEmissionHMM.load(path)
    assert (back.layer, back.hidden, back.state, back.n_layers) == (
        model.layer,
        model.hidden,
        model.state,
        model.n_layers,
    )
    assert back.log_likelihood(y) == pytest.approx(model.log_likelihood(y), rel=1e-12)
    data = dict(np.load(path, allow_pickle=False))
    data["params.A"] = data["params.A"] * 3.0
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(DataError, match=r"bad\.npz.*A"):
        LearnedEmissionHMM.load(tmp_path / "bad.npz")


def test_inputs_and_partial_knowledge():
    rng = np.random.default_rng(3)
    ys, us, pls = [], [], []
    for _ in range(2):
        u = rng.standard_normal((40, 1))
        z = (np.arange(40) // 10) % 2
        ys.append((np.where(z, 1.0, -1.0) + 0.5 * u[:, 0] + 0.3 * rng.standard_normal(40))[:, None])
        us.append(u)
        pl = np.ones((40, K))
        pl[:5] = [1.0, 0.0]  # known to start in state 0
        pls.append(pl)
    model = LearnedEmissionHMM(K, 1, input_dim=1, layer="lru", hidden=4, state=4, n_layers=1)
    res = model.fit(ys, inputs=us, pl=pls, max_iter=3, m_steps=10, rng=0, progress=False)
    assert np.all(np.diff(res.log_likelihoods) >= -1e-9 * np.abs(res.log_likelihoods[:-1]))
    # the inputs enter causally: changing u_t moves the emissions from t on only
    u2 = us[0].copy()
    u2[15] += 2.0
    m1, _ = model.emission_params(ys[0], inputs=us[0])
    m2, _ = model.emission_params(ys[0], inputs=u2)
    np.testing.assert_allclose(m1[:15], m2[:15], atol=1e-12)
    assert np.abs(m1[15] - m2[15]).max() > 1e-8
    # log p(y, pl) by enumeration: the plausibilities multiply the emission densities
    y6, u6, pl6 = ys[0][:6], us[0][:6], pls[0][:6].copy()
    pl6[5] = [0.3, 0.9]
    p = model.params
    means, scales = model.emission_params(y6, inputs=u6)
    total = []
    with np.errstate(divide="ignore"):  # pl forces state 0 at t = 0, so pi0 has a zero
        for path in itertools.product(range(K), repeat=6):
            lp = np.log(p.pi0[path[0]])
            for t in range(6):
                if t:
                    lp += np.log(p.A[path[t - 1], path[t]])
                lp += np.log(pl6[t, path[t]]) + scipy.stats.norm.logpdf(
                    y6[t, 0], means[t, path[t], 0], scales[t, path[t], 0]
                )
            total.append(lp)
    assert model.log_likelihood(y6, inputs=u6, pl=pl6) == pytest.approx(np.logaddexp.reduce(total), rel=1e-10)


def test_padded_length_rounds_up_to_a_multiple_of_64():
    """Padded steps cost as much as real ones: multiples of 64 (CMAPSS's 363 steps pad to 384, not 512)."""
    from hmm.deep_support import padded_length

    assert [padded_length([n]) for n in (1, 64, 65, 363, 1024, 1025)] == [64, 64, 128, 384, 1024, 2048]
    assert padded_length([10, 363, 200]) == 384
