"""Extreme observations and data of zero probability in the discrete-state HMM family.

One observation far from every state (10^3 to 10^8 standard deviations) must
leave every posterior exact: equal to forward-backward on the same
log-likelihood matrix computed in log space with each row shifted by its
maximum (so the magnitude of the outlier never enters a sum). Oracles, both
written here with scipy's ``logsumexp`` and independent of the library:

* brute-force enumeration of all ``K^T`` state paths (tiny problems);
* a plain normalised log-space forward-backward (larger problems).

Every path of :func:`hmm.forward_backward.posteriors` is exercised: one
sequence, a list, partial knowledge ``pl``, time-varying transitions, the
two-thread path (``T * K >= 40,000``) with ``K`` dividing 8 (vectorised
exponential) and not (NumPy's), and the ARHMM.

Data of zero probability (a symbol no state emits, a state the transition
structure cannot reach, soft labels excluding every state the emission allows,
log-likelihoods beyond float64's range): ``log_likelihood`` is ``-inf``, every
other verb raises :class:`~statespace.errors.ImpossibleDataError` naming the
sequence and the time step.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from hmm import ARHMM, CategoricalHMM, GaussianHMM
from hmm.emissions import CategoricalEmissionParams, EmissionPrior, GaussianEmissionParams
from hmm.forward_backward import backward, forward, posteriors, smoother, two_slice_marginals
from hmm.model import HMMParams
from statespace.errors import ImpossibleDataError, ParameterError


# --------------------------------------------------------------------------- oracles
def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(x)


def _transitions(A, T):
    """``(T - 1, K, K)`` log transition matrices from ``(K, K)`` or ``(T - 1, K, K)``."""
    lA = _log(np.asarray(A))
    return np.broadcast_to(lA, (T - 1, *lA.shape[-2:])) if lA.ndim == 2 else lA


def _enumerate(pi0, A, ll):
    """All K^T paths, in log space, rows shifted by their maxima: (log Z, marginals, summed two-slice marginals)."""
    T, K = ll.shape
    m = ll.max(axis=1)
    s = ll - m[:, None]
    lA = _transitions(A, T)
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    w = _log(pi0)[paths[:, 0]] + s[0, paths[:, 0]]
    for t in range(1, T):
        w = w + lA[t - 1, paths[:, t - 1], paths[:, t]] + s[t, paths[:, t]]
    z = logsumexp(w)
    p = np.exp(w - z)
    marg, counts = np.zeros((T, K)), np.zeros((K, K))
    for t in range(T):
        np.add.at(marg[t], paths[:, t], p)
        if t:
            np.add.at(counts, (paths[:, t - 1], paths[:, t]), p)
    return z + m.sum(), marg, counts


def _log_space(pi0, A, ll):
    """Normalised log-space forward-backward: (log Z, filtered, smoothed, summed two-slice marginals)."""
    T, K = ll.shape
    m = ll.max(axis=1)
    s = ll - m[:, None]
    lA = _transitions(A, T)
    la, lc = np.empty((T, K)), np.empty(T)
    a = _log(pi0) + s[0]
    for t in range(T):
        if t:
            a = logsumexp(la[t - 1][:, None] + lA[t - 1], axis=0) + s[t]
        lc[t] = logsumexp(a)
        la[t] = a - lc[t]
    lb = np.zeros((T, K))
    for t in range(T - 1, 0, -1):
        lb[t - 1] = logsumexp(lA[t - 1] + s[t] + lb[t], axis=1) - lc[t]
    lg = la + lb
    lg -= logsumexp(lg, axis=1, keepdims=True)
    counts = np.zeros((K, K))
    for t in range(1, T):
        w = la[t - 1][:, None] + lA[t - 1] + (s[t] + lb[t])[None, :]
        counts += np.exp(w - logsumexp(w))
    return lc.sum() + m.sum(), np.exp(la), np.exp(lg), counts


def _assert_exact(result, oracle, T):
    ll, filt, smo, counts = result[:4]
    ll_o, filt_o, smo_o, counts_o = (oracle[0], None, oracle[1], oracle[2]) if len(oracle) == 3 else oracle
    assert ll == pytest.approx(ll_o, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(smo.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(counts.sum(), T - 1, rtol=1e-12)
    np.testing.assert_allclose(smo, smo_o, rtol=0, atol=1e-10)
    np.testing.assert_allclose(counts, counts_o, rtol=1e-10, atol=1e-10)
    if filt_o is not None:
        np.testing.assert_allclose(filt, filt_o, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- models
def _gaussian(K, A=None, sd=1.0, **kw):
    e = GaussianEmissionParams(np.arange(K, dtype=float).reshape(K, 1, 1), np.full((K, 1, 1), sd**2))
    if A is None:
        A = np.full((K, K), 0.1 / (K - 1))
        np.fill_diagonal(A, 0.9)
    return GaussianHMM(K, params=HMMParams(np.full(K, 1.0 / K), A, e), **kw)


def _sample(K, T, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=T) + rng.integers(0, K, size=T)


def _loglik(model, y, pl=None):
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    lp = None if pl is None else _log(pl)
    ll = model.emission_model.log_likelihood(model.params.emission, y, np.zeros((len(y), model.input_dim)))
    return ll if lp is None else ll + lp


OUTLIERS = [1e3, 1e6, 1e8]


# --------------------------------------------------------------------------- class 5: exact posteriors
@pytest.mark.parametrize("outlier", OUTLIERS + [-1e8])
@pytest.mark.parametrize("where", [0, 3, 6])
def test_one_outlier_matches_path_enumeration(outlier, where):
    K, T = 3, 7
    model = _gaussian(K, sd=1.0)
    y = _sample(K, T, seed=where)
    y[where] = outlier
    _assert_exact(model.smooth(y), _enumerate(model.params.pi0, model.params.A, _loglik(model, y)), T)
    filt = model.filter(y)
    oracle = _log_space(model.params.pi0, model.params.A, _loglik(model, y))
    assert filt.log_likelihood == pytest.approx(oracle[0], rel=1e-12)
    np.testing.assert_allclose(filt.filtered_probs, oracle[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("outlier", OUTLIERS)
def test_outlier_in_a_list_of_sequences_and_with_soft_labels(outlier):
    K, T = 3, 400
    model = _gaussian(K)
    ys = [_sample(K, T, seed=1), _sample(K, T // 2, seed=2)]
    ys[1][T // 4] = outlier
    pls = [None, np.random.default_rng(3).uniform(0.05, 1.0, size=(T // 2, K))]
    pls[1][T // 4 + 1] = [1.0, 0.0, 0.0]  # the step after the outlier is known to be state 0
    for pl in (None, pls):
        for y, r, lp in zip(ys, model.smooth(ys, pl=pl), pls if pl is not None else [None, None]):
            _assert_exact(r, _log_space(model.params.pi0, model.params.A, _loglik(model, y, lp)), len(y))


@pytest.mark.parametrize("outlier", OUTLIERS)
def test_outlier_with_time_varying_transitions(outlier):
    """Each step its own transition matrix (the IOHMM's chains), some with structural zeros."""
    K, T = 3, 300
    rng = np.random.default_rng(4)
    As = rng.dirichlet(np.ones(K), size=(T - 1, K))
    As[::5] = np.eye(K)  # frozen steps: a state lost here is never re-seeded
    pi0 = np.full(K, 1.0 / K)
    ll = -0.5 * (_sample(K, T, seed=5)[:, None] - np.arange(K)) ** 2
    ll[150] = -0.5 * (outlier - np.arange(K)) ** 2
    oracle = _log_space(pi0, As, ll)
    _assert_exact(posteriors(pi0, As, ll.copy(), overwrite=True), oracle, T)
    _assert_exact(smoother(pi0, As, ll), oracle, T)
    total, filt, scale = forward(pi0, As, ll)
    assert total == pytest.approx(oracle[0], rel=1e-12)
    np.testing.assert_allclose(filt, oracle[1], rtol=0, atol=1e-12)
    # the per-step pieces the IOHMM's E-step (and the Markov jump processes) build on
    beta = backward(As, ll, scale)
    xi = two_slice_marginals(As, ll, filt, scale, beta)
    np.testing.assert_allclose(xi.sum(axis=(1, 2)), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(xi.sum(axis=0), oracle[3], rtol=1e-10, atol=1e-10)
    gamma = filt * beta
    np.testing.assert_allclose(gamma / gamma.sum(axis=1, keepdims=True), oracle[2], rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "pi0",
    [[1e-320, 1.0 - 2e-10, 2e-10], [0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]],
    ids=["prior-reverses-the-emission", "prior-excludes", "uniform"],
)
def test_first_step_drops_negligible_terms_by_their_joint_weight(pi0):
    """Row 0's weights are pi0 * B_0: a mixing chain drops a term there only when the prior and the
    emission together put it e^-500 below the best. First case: state 1's emission is 750 nats
    below state 0's, but state 0's prior is 1e-320, so state 1 is the likelier start (dropping it
    by its emission alone would leave the posteriors wrong); state 2 sits thousands of nats down.
    Every posterior equals the log-space oracle."""
    K, T = 3, 40
    model = _gaussian(K, sd=np.sqrt(1 / 1500))  # y = 0: state 1's log-density 750 below state 0's
    model = GaussianHMM(K, params=model.params._replace(pi0=np.array(pi0)))
    y = np.arange(T) % K + 0.01 * np.random.default_rng(3).normal(size=T)
    y[0] = 0.0
    oracle = _log_space(model.params.pi0, model.params.A, _loglik(model, y))
    _assert_exact(model.smooth(y), oracle, T)
    assert model.log_likelihood(y) == pytest.approx(oracle[0], rel=1e-12)
    _assert_exact(model.smooth([y, y[::-1].copy(), y])[0], oracle, T)  # the batch kernel


@pytest.mark.parametrize("K,T", [(4, 10_001), (6, 10_000)])
@pytest.mark.parametrize("outlier", [1e6, 1e8])
@pytest.mark.parametrize("sparse", [False, True], ids=["mixing", "sparse"])
def test_outlier_on_the_two_thread_path(K, T, outlier, sparse):
    """T * K >= 40,000 and one time-invariant chain: the two-thread path (K = 4: the vectorised
    exponential; K = 6: NumPy's), outliers in either half. A mixing chain drops the negligible
    terms and stays on it; a chain with structural zeros hands over to log space."""
    from hmm.parallel_forward_backward import MIN_WORK

    assert T * K >= MIN_WORK
    A = None
    if sparse:
        A = np.full((K, K), 0.1 / (K - 2))
        np.fill_diagonal(A, 0.9)
        A[np.arange(K), (np.arange(K) + 1) % K] = 0.0
    model = _gaussian(K, A=A)
    y = _sample(K, T, seed=K)
    y[T // 3] = outlier
    y[T - 5] = -outlier
    oracle = _log_space(model.params.pi0, model.params.A, _loglik(model, y))
    _assert_exact(model.smooth(y), oracle, T)
    assert model.log_likelihood(y) == pytest.approx(oracle[0], rel=1e-12)


@pytest.mark.parametrize("outlier", OUTLIERS)
def test_outlier_in_an_arhmm(outlier):
    """The outlier also enters the next step's regressor: two extreme steps."""
    K, T = 2, 300
    e = GaussianEmissionParams.from_ar(
        np.array([[-1.0], [1.0]]), np.array([[[1.0]], [[0.5]]]), ar_coefs=np.array([0.5, -0.3]).reshape(K, 1, 1, 1)
    )
    model = ARHMM(K, 1, 1, params=HMMParams(np.array([0.5, 0.5]), np.array([[0.95, 0.05], [0.1, 0.9]]), e))
    y = np.random.default_rng(6).normal(size=T)
    y[100] = outlier
    _assert_exact(model.smooth(y), _log_space(model.params.pi0, model.params.A, _loglik(model, y)), T)


def test_viterbi_after_an_outlier_matches_enumeration():
    """Max-product must not carry the outlier's magnitude (-5e15 at 10^8 sd) into later steps, where
    it would compare paths one nat apart in numbers whose spacing is 1."""
    from hmm.inference import viterbi

    K, T = 3, 7
    model = _gaussian(K)
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    lA, lpi = _log(model.params.A), _log(model.params.pi0)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        y = rng.normal(scale=0.8, size=T) + rng.integers(0, K, size=T)
        y[seed % T] = 1e8 * (1 if seed % 2 else -1)
        ll = _loglik(model, y)
        m = ll.max(axis=1)
        s = ll - m[:, None]
        w = lpi[paths[:, 0]] + s[0, paths[:, 0]]
        for t in range(1, T):
            w = w + lA[paths[:, t - 1], paths[:, t]] + s[t, paths[:, t]]
        np.testing.assert_array_equal(model.most_likely_states(y), paths[np.argmax(w)])
        assert viterbi(model.params.pi0, model.params.A[None], ll)[1] == pytest.approx(w.max() + m.sum(), rel=1e-14)


def test_outlier_under_a_left_to_right_chain():
    """Structural zeros: the outlier step (explained best by the last state) must not cut paths."""
    K, T = 3, 8
    A = np.array([[0.8, 0.2, 0.0], [0.0, 0.8, 0.2], [0.0, 0.0, 1.0]])
    model = _gaussian(K, A=A, transitions="left-to-right")
    y = np.array([0.1, -0.2, 1e6, 0.9, 1.1, 2.2, 1.9, 2.1])
    _assert_exact(model.smooth(y), _enumerate(model.params.pi0, A, _loglik(model, y)), T)


def test_posterior_paths_through_a_state_one_observation_ruled_out():
    """The only way to the second observation is through a state the first put 800 nats below the
    best: its linear filtered weight underflows to 0, so backward sampling must use the exact
    log-space weights. Oracle: enumeration of the 9 paths; draws within 5 binomial sd."""
    A = np.array([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.0, 0.0, 1.0]])
    e = GaussianEmissionParams(np.array([0.0, 40.0, 80.0]).reshape(3, 1, 1), np.ones((3, 1, 1)))
    model = GaussianHMM(3, params=HMMParams(np.full(3, 1.0 / 3), A, e))
    y = np.array([0.0, 60.0])
    paths = np.array(list(itertools.product(range(3), repeat=2)))
    ll = _loglik(model, y)
    with np.errstate(divide="ignore"):
        w = (
            _log(model.params.pi0)[paths[:, 0]]
            + ll[0, paths[:, 0]]
            + _log(A)[paths[:, 0], paths[:, 1]]
            + ll[1, paths[:, 1]]
        )
    prob = np.exp(w - logsumexp(w))
    n = 2000
    draws = model.sample_posterior(y, n_samples=n, rng=3)
    counts = np.array([np.sum((draws[:, 0] == a) & (draws[:, 1] == b)) for a, b in paths])
    sd = np.sqrt(n * prob * (1 - prob))
    assert np.all(np.abs(counts - n * prob) <= 5 * sd + 1e-9), (counts, n * prob)
    assert counts[[3 * 1 + 1, 3 * 1 + 2]].sum() == n  # every draw goes through state 1 first


@settings(max_examples=25, deadline=None)
@given(
    K=st.integers(2, 3),
    T=st.integers(2, 6),
    seed=st.integers(0, 10_000),
    exponent=st.floats(2.0, 8.0),
    sign=st.sampled_from([-1.0, 1.0]),
    sparse=st.booleans(),
    data=st.data(),
)
def test_random_hmms_with_outliers_match_enumeration(K, T, seed, exponent, sign, sparse, data):
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.ones(K), size=K)
    if sparse:  # structural zeros off the diagonal
        A *= rng.random((K, K)) < 0.6
        A[np.arange(K), np.arange(K)] += 0.1
        A /= A.sum(axis=1, keepdims=True)
    pi0 = rng.dirichlet(np.ones(K))
    means = rng.normal(scale=3.0, size=K)
    sds = rng.uniform(0.3, 2.0, size=K)
    e = GaussianEmissionParams(means.reshape(K, 1, 1), (sds**2).reshape(K, 1, 1))
    model = GaussianHMM(K, params=HMMParams(pi0, A, e))
    y = rng.normal(size=T) * 2.0
    y[data.draw(st.integers(0, T - 1))] = sign * 10.0**exponent
    _assert_exact(model.smooth(y), _enumerate(pi0, A, _loglik(model, y)), T)


# --------------------------------------------------------------------------- class 7: impossible data
VERBS = {
    "filter": lambda m, y, **kw: m.filter(y, **kw),
    "smooth": lambda m, y, **kw: m.smooth(y, **kw),
    "most_likely_states": lambda m, y, **kw: m.most_likely_states(y, **kw),
    "sample_posterior": lambda m, y, **kw: m.sample_posterior(y, rng=0, **kw),
    "fit": lambda m, y, **kw: m.fit(y, max_iter=2, progress=False, **kw),
}


def _categorical(probs, A=None, pi0=None, **kw):
    probs = np.asarray(probs, dtype=float)
    K, M = probs.shape
    A = np.full((K, K), 1.0 / K) if A is None else A
    pi0 = np.full(K, 1.0 / K) if pi0 is None else pi0
    return CategoricalHMM(K, M, params=HMMParams(pi0, A, CategoricalEmissionParams(probs)), **kw)


def _symbol_no_state_emits():
    return _categorical([[0.7, 0.3, 0.0], [0.1, 0.9, 0.0]]), np.array([0.0, 1.0, 0.0, 2.0, 1.0]), {}, 3


def _state_out_of_reach():
    """Symbol 2 only from state 2, which a left-to-right chain starting in state 0 reaches at t = 2 at the earliest."""
    A = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    model = _categorical(
        [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]],
        A=A,
        pi0=np.array([1.0, 0.0, 0.0]),
        transitions="left-to-right",
    )
    return model, np.array([0.0, 2.0, 2.0, 2.0]), {}, 1


def _soft_labels_exclude_the_emitting_states():
    """pl at t = 2 allows state 0 only, which never emits symbol 1."""
    pl = np.ones((4, 2))
    pl[2] = [1.0, 0.0]
    return _categorical([[1.0, 0.0], [0.3, 0.7]]), np.array([0.0, 1.0, 1.0, 0.0]), {"pl": pl}, 2


def _beyond_float64():
    """(y - mean)^2 / 2 overflows for 1e200: the density is below float64's range in every state."""
    y = np.array([0.3, -0.5, 1e200, 0.2])
    return _gaussian(3), y, {}, 2


def _beyond_float64_arhmm():
    e = GaussianEmissionParams.from_ar(
        np.array([[-1.0], [1.0]]), np.ones((2, 1, 1)), ar_coefs=np.array([0.5, -0.3]).reshape(2, 1, 1, 1)
    )
    model = ARHMM(2, 1, 1, params=HMMParams(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]]), e))
    return model, np.array([0.3, 2e160, -0.5, 0.2]), {}, 1


IMPOSSIBLE = {
    "symbol": _symbol_no_state_emits,
    "unreachable": _state_out_of_reach,
    "soft_labels": _soft_labels_exclude_the_emitting_states,
    "overflow": _beyond_float64,
    "overflow_ar": _beyond_float64_arhmm,
}


@pytest.mark.parametrize("case", sorted(IMPOSSIBLE))
def test_impossible_data_gives_minus_infinity_and_named_errors(case):
    model, y, kw, t = IMPOSSIBLE[case]()
    assert model.log_likelihood(y, **kw) == -np.inf
    for name, verb in VERBS.items():
        label = "y[0]" if name == "fit" else "y"  # fit reads one sequence as a list of one
        with pytest.raises(
            ImpossibleDataError, match=rf"^{re.escape(label)}: the observation at time step {t} "
        ) as exc:
            verb(model, y, **kw)
        assert "zero probability" in str(exc.value), name
    with pytest.raises(ImpossibleDataError, match=rf"^y: the observation at time step {t} "):
        model.forecast(y, 2, n_samples=3, rng=0, **kw)


@pytest.mark.parametrize("case", sorted(IMPOSSIBLE))
def test_impossible_sequence_in_a_list_is_named(case):
    model, y, kw, t = IMPOSSIBLE[case]()
    ok = np.zeros(3) if case in ("symbol", "unreachable", "soft_labels") else np.array([0.1, 0.2, 0.3])
    pl = {"pl": [None, kw["pl"]]} if "pl" in kw else {}
    lls = [model.log_likelihood(ok), model.log_likelihood([ok, y], **pl)]
    assert np.isfinite(lls[0]) and lls[1] == -np.inf
    for verb in VERBS.values():
        with pytest.raises(ImpossibleDataError, match=rf"^y\[1\]: the observation at time step {t} "):
            verb(model, [ok, y], **pl)


def test_impossible_data_message_says_what_rules_the_step_out():
    model, y, kw, t = _state_out_of_reach()
    with pytest.raises(ImpossibleDataError, match="every state the chain can occupy there"):
        model.smooth(y)
    model, y, kw, t = _symbol_no_state_emits()
    with pytest.raises(ImpossibleDataError, match="under every state "):
        model.smooth(y)


def test_huge_but_representable_observation_stays_possible():
    """1e150: the log-likelihoods (about -5e299) are finite, so every verb answers, without NaN."""
    model = _gaussian(3)
    y = np.array([0.3, 1e150, 0.2])
    assert np.isfinite(model.log_likelihood(y))
    r = model.smooth(y)
    assert np.isfinite(r.smoothed_probs).all() and np.isfinite(r.transition_counts).all()
    np.testing.assert_allclose(r.smoothed_probs.sum(axis=1), 1.0, atol=1e-12)


# --------------------------------------------------------------------------- class 9: EmissionPrior
@pytest.mark.parametrize("value", [np.nan, -1.0, np.inf, -np.inf])
@pytest.mark.parametrize("field", EmissionPrior._fields)
def test_emission_prior_rejects_invalid_values(field, value):
    with pytest.raises(ParameterError, match=rf"^{field}: "):
        EmissionPrior(**{field: value})


def test_emission_prior_accepts_zeros_and_positional_values():
    assert EmissionPrior(0.0, 0.0, 0.0, 0.0) == (0.0, 0.0, 0.0, 0.0)
    p = EmissionPrior(1e-3, 2, ridge=0.5)
    assert p.cov_dof == 2.0 and isinstance(p.cov_dof, float) and p.pseudo_count == 0.0
    with pytest.raises(ParameterError, match="^reg_covar: "):
        EmissionPrior("a lot")


# --------------------------------------------------------------------------- the deep-SSM families
NET_VERBS = ("filter", "smooth", "most_likely_states")


def test_iohmm_impossible_data():
    """Log-densities beyond float64's range at step 2 of the second sequence (time-varying chain)."""
    pytest.importorskip("jax")
    import jax

    from hmm.deep_support import to_numpy_tree
    from hmm.io_hmm import IOHMM, IOHMMParams

    model = IOHMM(2, 1, 1, layer="lru", hidden=4, state=4)
    with jax.enable_x64(True):
        net = to_numpy_tree(model.network.init(jax.random.key(0)))
    model.params = model.check_params(
        IOHMMParams(np.array([0.5, 0.5]), net, np.array([[-1.0], [1.0]]), np.ones((2, 1)), np.zeros(1), np.ones(1))
    )
    u = np.linspace(-1.0, 1.0, 5)[:, None]
    ok, bad = np.array([0.1, -0.3, 0.2, 0.0, 0.4])[:, None], np.array([0.1, -0.3, 1e200, 0.2, 0.0])[:, None]
    assert np.isfinite(model.log_likelihood(ok, inputs=u))
    assert model.log_likelihood([ok, bad], inputs=[u, u]) == -np.inf
    for verb in NET_VERBS:
        with pytest.raises(ImpossibleDataError, match=r"^y\[1\]: the observation at time step 2 "):
            getattr(model, verb)([ok, bad], inputs=[u, u])


def test_learned_emission_hmm_impossible_data():
    """Soft labels that put a left-to-right chain in a state it cannot reach yet (step 1)."""
    pytest.importorskip("jax")
    import jax

    from hmm.learned_emission import LearnedEmissionHMM, LearnedEmissionParams

    model = LearnedEmissionHMM(3, 1, 0, hidden=4, transitions="left-to-right")
    A = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    model.params = model.check_params(
        LearnedEmissionParams(
            np.array([1.0, 0.0, 0.0]), A, model._init_network(jax.random.key(0)), np.zeros(1), np.ones(1)
        )
    )
    y = np.array([0.1, -0.3, 0.5, 0.2])
    pl = np.ones((4, 3))
    pl[1] = [0.0, 0.0, 1.0]
    assert np.isfinite(model.log_likelihood(y)) and model.log_likelihood(y, pl=pl) == -np.inf
    for verb in NET_VERBS + ("sample_posterior",):
        with pytest.raises(
            ImpossibleDataError, match="^y: the observation at time step 1 .*every state the chain can occupy"
        ):
            getattr(model, verb)(y, pl=pl)
