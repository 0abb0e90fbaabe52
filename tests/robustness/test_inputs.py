"""Input conversion and option validation at every public entry point.

Oracles: a flat list of numbers is one sequence and must give exactly what the
same values as an array give; a list of sequences gives the sum of the
per-sequence log-likelihoods and the per-sequence posteriors; anything else
(None, scalars, strings, non-integer counts, complex parameters, invalid
options) is a library error naming the argument.

Class 0 marks what issue 18 found already holding (plain bad input); the other
numbers are the issue's failure classes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from robustness_support import (
    FAST,
    HEAVY,
    HMM_FACTORIES,
    Q3,
    assert_no_nan,
    categorical_hmm,
    expect_error,
    gaussian_hmm,
    hmm_data,
    lg_model,
    mjp,
    sv_model,
)

import smc
from statespace import LinearGaussianSSM, StochasticVolatility

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


# =========================================================================== class 8: sequences vs lists
def _assert_same(a, b):
    """Two results (NamedTuples/arrays/floats) equal to the last bit except for NaN positions."""
    if hasattr(a, "_fields"):
        for f in a._fields:
            _assert_same(getattr(a, f), getattr(b, f))
    elif a is None or b is None:
        assert a is b
    else:
        np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


@pytest.mark.issue18(8, "result")
@pytest.mark.parametrize("verb", ["log_likelihood", "filter", "smooth"])
@FAST
@given(values=st.lists(finite, min_size=2, max_size=8))
def test_lg_list_of_numbers_is_one_sequence(verb, values):
    model = lg_model(1)
    _assert_same(getattr(model, verb)(values), getattr(model, verb)(np.array(values)))


@pytest.mark.issue18(8, "result")
@pytest.mark.parametrize("verb", ["log_likelihood", "filter", "smooth", "most_likely_states"])
@FAST
@given(values=st.lists(finite, min_size=2, max_size=8))
def test_hmm_list_of_numbers_is_one_sequence(verb, values):
    model = gaussian_hmm()
    _assert_same(getattr(model, verb)(values), getattr(model, verb)(np.array(values)))


@pytest.mark.issue18(8, "result")
@FAST
@given(values=st.lists(st.integers(0, 2), min_size=2, max_size=8))
def test_categorical_list_of_symbols_is_one_sequence(values):
    model = categorical_hmm()
    _assert_same(model.log_likelihood(values), model.log_likelihood(np.array(values, dtype=float)))
    _assert_same(model.smooth(values), model.smooth(np.array(values, dtype=float)))


@pytest.mark.issue18(8, "result")
@FAST
@given(values=st.lists(st.integers(0, 2), min_size=2, max_size=6))
def test_mjp_list_of_states_and_times_is_one_sequence(values):
    model = mjp("exact")
    times = [0.5 * i + 0.1 * (i % 2) for i in range(len(values))]
    _assert_same(
        model.log_likelihood(values, times=times),
        model.log_likelihood(np.array(values, dtype=float), times=np.array(times)),
    )
    _assert_same(model.smooth(values, times=times), model.smooth(np.array(values, dtype=float), times=np.array(times)))


@pytest.mark.issue18(8, "result")
@FAST
@given(values=st.lists(finite, min_size=2, max_size=8))
def test_kalman_functions_list_of_numbers_is_one_sequence(values):
    from statespace import kalman_filter, rts_smoother

    p = lg_model(1).params
    _assert_same(kalman_filter(p, values), kalman_filter(p, np.array(values)))
    _assert_same(rts_smoother(p, values), rts_smoother(p, np.array(values)))


@pytest.mark.issue18(9, "error")
@pytest.mark.parametrize("proposal", [None, "bootstrap", 3])
def test_guided_filter_needs_a_proposal(proposal):
    expect_error("proposal", smc.guided_filter, sv_model(), np.array([0.1, 0.2]), proposal, n_particles=16, rng=0)


@pytest.mark.issue18(9, "error")
@pytest.mark.parametrize(
    "option", [{"smoother": "nonsense"}, {"n_backward": 0}, {"burn_in": -1}], ids=["smoother", "n_backward", "burn_in"]
)
def test_particle_em_options(option):
    from smc.learning import particle_em

    expect_error(
        next(iter(option)),
        particle_em,
        sv_model(),
        np.array([0.1, 0.2]),
        n_iter=2,
        n_particles=8,
        rng=0,
        progress=False,
        **option,
    )


@pytest.mark.issue18(8, "result")
def test_particle_filter_list_of_numbers_is_one_sequence():
    values = [0.3, -1.2, 0.8, 2.0, -0.4]
    a = smc.bootstrap_filter(sv_model(), values, n_particles=64, rng=3)
    b = smc.bootstrap_filter(sv_model(), np.array(values), n_particles=64, rng=3)
    assert a.log_likelihood == b.log_likelihood
    np.testing.assert_array_equal(a.filtered_means, b.filtered_means)


@pytest.mark.issue18(8, "result")
@pytest.mark.parametrize("kind", sorted(HMM_FACTORIES))
@HEAVY
@given(lengths=st.lists(st.integers(1, 7), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_hmm_list_of_sequences_is_sum_and_per_sequence(kind, lengths, seed):
    model = HMM_FACTORIES[kind]()
    ys = [np.asarray(model.sample(T, rng=seed + i)[1], dtype=float) for i, T in enumerate(lengths)]
    total = model.log_likelihood(ys)
    parts = [model.log_likelihood(y) for y in ys]
    np.testing.assert_allclose(total, sum(parts), rtol=1e-12, atol=1e-12)
    sm = model.smooth(ys)
    assert isinstance(sm, list) and len(sm) == len(ys)
    for s, y in zip(sm, ys):
        one = model.smooth(y)
        np.testing.assert_allclose(s.smoothed_probs, one.smoothed_probs, rtol=1e-12, atol=1e-14)
    paths = model.most_likely_states(ys)
    for p, y in zip(paths, ys):
        np.testing.assert_array_equal(p, model.most_likely_states(y))


@pytest.mark.issue18(8, "result")
@HEAVY
@given(lengths=st.lists(st.integers(1, 7), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_lg_list_of_sequences_is_sum_and_per_sequence(lengths, seed):
    model = lg_model(2)
    ys = [model.sample(T, rng=seed + i)[1] for i, T in enumerate(lengths)]
    np.testing.assert_allclose(model.log_likelihood(ys), sum(model.log_likelihood(y) for y in ys), rtol=1e-12)
    for s, y in zip(model.smooth(ys), ys):
        np.testing.assert_allclose(s.smoothed_means, model.smooth(y).smoothed_means, rtol=1e-12, atol=1e-12)


@pytest.mark.issue18(8, "result")
@HEAVY
@given(lengths=st.lists(st.integers(2, 6), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_mjp_list_of_sequences_is_sum(lengths, seed):
    model = mjp("noisy")
    rng = np.random.default_rng(seed)
    times = [np.cumsum(rng.exponential(1.0, T)) for T in lengths]
    ys = [np.asarray(model.sample(times=t, rng=seed + i)[1], dtype=float).ravel() for i, t in enumerate(times)]
    np.testing.assert_allclose(
        model.log_likelihood(ys, times=times),
        sum(model.log_likelihood(y, times=t) for y, t in zip(ys, times)),
        rtol=1e-12,
    )


@pytest.mark.issue18(8, "result")
@pytest.mark.parametrize("make", [lambda: lg_model(1), gaussian_hmm], ids=["lg", "hmm"])
def test_ragged_nested_list_is_list_of_sequences_or_error(make):
    """``[[a, b], [c]]`` cannot be one rectangular sequence: two sequences, or an error naming y."""
    model = make()
    nested = [[0.1, 0.5], [1.5]]
    try:
        got = model.log_likelihood(nested)
    except Exception:
        expect_error("y", model.log_likelihood, nested)
        return
    want = model.log_likelihood(np.array([0.1, 0.5])) + model.log_likelihood(np.array([1.5]))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _all_models():
    return {
        "lg": (lg_model(1), {}),
        "sv": (sv_model(), {}),
        "gaussian_hmm": (gaussian_hmm(), {}),
        "categorical_hmm": (categorical_hmm(), {}),
        "mjp": (mjp("exact"), {"times": None}),
    }


NOT_DATA = {
    "none": None,
    "scalar": 3.5,
    "string": "1 2 3",
    "dict": {"y": [1.0]},
    "empty": [],
    "set": {1.0, 2.0},
    "empty_array": np.zeros(0),
}


@pytest.mark.issue18(8, "error")
@pytest.mark.parametrize("what", sorted(NOT_DATA))
@pytest.mark.parametrize("name", ["lg", "gaussian_hmm", "categorical_hmm", "mjp"])
def test_not_data_is_an_error_naming_y(name, what):
    model, _ = _all_models()[name]
    kw = {"times": np.array([0.0, 1.0])} if name == "mjp" else {}
    expect_error(("y", "times"), model.log_likelihood, NOT_DATA[what], **kw)


@pytest.mark.issue18(8, "error")
@pytest.mark.parametrize("what", ["none", "scalar", "string"])
def test_particle_filter_not_data_is_an_error_naming_y(what):
    expect_error("y", smc.bootstrap_filter, sv_model(), NOT_DATA[what], n_particles=16, rng=0)


@pytest.mark.issue18(8, "error")
def test_mjp_sample_times_must_increase():
    expect_error("times", mjp("exact").sample, times=[3.0, 1.0, 2.0], rng=0)


@pytest.mark.issue18(8, "result")
def test_mjp_sample_times_list_is_one_grid():
    model = mjp("exact")
    a = model.sample(times=[0.0, 1.0, 2.5], rng=4)
    b = model.sample(times=np.array([0.0, 1.0, 2.5]), rng=4)
    _assert_same(a, b)
    assert np.asarray(a[1]).shape[0] == 3


# non-integers where a count is expected
COUNT_CALLS = {
    "lg.sample(T)": (lambda v: lg_model(1).sample(v, rng=0), "T"),
    "sv.sample(T)": (lambda v: sv_model().sample(v, rng=0), "T"),
    "hmm.sample(T)": (lambda v: gaussian_hmm().sample(v, rng=0), "T"),
    "GaussianHMM(n_states)": (lambda v: __import__("hmm").GaussianHMM(v, 1), "n_states"),
    "CategoricalHMM(n_symbols)": (lambda v: __import__("hmm").CategoricalHMM(2, v), "n_symbols"),
    "ARHMM(lags)": (lambda v: __import__("hmm").ARHMM(2, 1, v), "lags"),
    "hmm.sample_posterior(n_samples)": (
        lambda v: gaussian_hmm().sample_posterior(np.array([0.0, 1.0]), n_samples=v, rng=0),
        "n_samples",
    ),
    "hmm.forecast(steps)": (
        lambda v: gaussian_hmm().forecast(np.array([0.0, 1.0]), steps=v, n_samples=4, rng=0),
        "steps",
    ),
    "lg.forecast(steps)": (lambda v: lg_model(1).forecast(np.array([0.0, 1.0]), steps=v), "steps"),
    "lg.fit(max_iter)": (lambda v: lg_model(1).fit(np.array([0.0, 1.0, 0.5]), max_iter=v, progress=False), "max_iter"),
    "hmm.fit(max_iter)": (
        lambda v: gaussian_hmm().fit(np.array([0.0, 1.0, 0.5]), max_iter=v, progress=False),
        "max_iter",
    ),
    "mjp.fit(max_iter)": (
        lambda v: mjp("exact").fit(
            np.array([0.0, 1.0, 2.0]), times=np.array([0.0, 1.0, 2.0]), max_iter=v, progress=False
        ),
        "max_iter",
    ),
    "bootstrap_filter(n_particles)": (
        lambda v: smc.bootstrap_filter(sv_model(), np.array([0.1, 0.2]), n_particles=v, rng=0),
        "n_particles",
    ),
    "paris_smoother(n_particles)": (
        lambda v: smc.paris_smoother(sv_model(), np.array([0.1, 0.2]), n_particles=v, rng=0),
        "n_particles",
    ),
    "paris_smoother(n_backward)": (
        lambda v: smc.paris_smoother(sv_model(), np.array([0.1, 0.2]), n_particles=8, n_backward=v, rng=0),
        "n_backward",
    ),
    "particle_gibbs(n_iter)": (
        lambda v: smc.particle_gibbs(sv_model(), np.array([0.1, 0.2]), n_iter=v, n_particles=8, rng=0, progress=False),
        "n_iter",
    ),
    "particle_gibbs(n_particles)": (
        lambda v: smc.particle_gibbs(sv_model(), np.array([0.1, 0.2]), n_iter=4, n_particles=v, rng=0, progress=False),
        "n_particles",
    ),
    "ppg_smoother(n_iter)": (
        lambda v: smc.ppg_smoother(sv_model(), np.array([0.1, 0.2]), n_iter=v, n_particles=8, rng=0, progress=False),
        "n_iter",
    ),
    "resample(n)": (lambda v: smc.resample(np.full(4, 0.25), n=v, rng=0), "n"),
    "particle_em(n_iter)": (
        lambda v: __import__("smc.learning").learning.particle_em(
            sv_model(), np.array([0.1, 0.2]), n_iter=v, n_particles=8, rng=0, progress=False
        ),
        "n_iter",
    ),
    "score_ascent(n_particles)": (
        lambda v: __import__("smc.learning").learning.score_ascent(
            sv_model(), np.array([0.1, 0.2]), n_iter=2, n_particles=v, rng=0, progress=False
        ),
        "n_particles",
    ),
}


@pytest.mark.issue18(8, "error")
@pytest.mark.parametrize("value", [2.7, "3"], ids=["float", "str"])
@pytest.mark.parametrize("call", sorted(COUNT_CALLS))
def test_non_integer_count_is_an_error(call, value):
    fn, name = COUNT_CALLS[call]
    expect_error(name, fn, value)


@pytest.mark.issue18(9, "error")
@pytest.mark.parametrize("value", [0, -3], ids=["zero", "negative"])
@pytest.mark.parametrize("call", sorted(c for c in COUNT_CALLS if "max_iter" not in c and "lags" not in c))
def test_non_positive_count_is_an_error(call, value):
    fn, name = COUNT_CALLS[call]
    if call in ("lg.sample(T)", "sv.sample(T)", "hmm.sample(T)") and value == 0:
        name = ("T",)
    expect_error(name, fn, value)


@pytest.mark.issue18(0, "result")
@pytest.mark.parametrize(
    "call",
    [
        "lg.sample(T)",
        "hmm.sample(T)",
        "bootstrap_filter(n_particles)",
        "resample(n)",
        "hmm.sample_posterior(n_samples)",
        "lg.forecast(steps)",
    ],
)
def test_numpy_integer_count_is_accepted(call):
    fn, _ = COUNT_CALLS[call]
    assert_no_nan(fn(np.int64(3)))


@pytest.mark.issue18(8, "result")
@pytest.mark.parametrize(
    "call", ["lg.sample(T)", "hmm.sample(T)", "resample(n)", "hmm.forecast(steps)", "lg.forecast(steps)"]
)
def test_integral_float_count_equals_the_integer(call):
    """``3.0`` is how people write three: the same result as ``3`` (never a truncation of ``2.7``)."""
    from robustness_support import _leaves

    fn, _ = COUNT_CALLS[call]
    a, b = list(_leaves(fn(3.0), "r")), list(_leaves(fn(3), "r"))
    assert len(a) == len(b)
    for (_, x), (_, z) in zip(a, b):
        np.testing.assert_array_equal(x, z)


# complex values lose their imaginary part with a warning only
COMPLEX_CALLS = {
    "LinearGaussianSSM(F)": (
        lambda: LinearGaussianSSM(
            m0=np.zeros(1), P0=np.eye(1), F=[[0.5 + 0.1j]], Q=np.eye(1), H=np.eye(1), R=np.eye(1)
        ),
        "F",
    ),
    "StochasticVolatility(phi)": (lambda: StochasticVolatility(mu=-1.0, phi=0.5 + 0.2j, sigma=0.3), "phi"),
    "HMMParams(pi0)": (lambda: gaussian_hmm(pi0=np.array([0.6 + 0.1j, 0.4])), "pi0"),
    "MarkovJumpProcess(Q)": (lambda: mjp("exact", Q=Q3 + 0.1j), "Q"),
    "lg.log_likelihood(y)": (lambda: lg_model(1).log_likelihood(np.array([0.1 + 1j, 0.2])), "y"),
    "hmm.log_likelihood(y)": (lambda: gaussian_hmm().log_likelihood(np.array([0.1 + 1j, 0.2])), "y"),
}


@pytest.mark.issue18(8, "error")
@pytest.mark.parametrize("call", sorted(COMPLEX_CALLS))
def test_complex_values_are_an_error(call):
    import warnings

    fn, name = COMPLEX_CALLS[call]
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        expect_error(name, fn)


# =========================================================================== class 9: options
@pytest.mark.issue18(9, "error")
@pytest.mark.parametrize("value", [np.nan, -1.0, np.inf], ids=["nan", "negative", "inf"])
@pytest.mark.parametrize("field", ["reg_covar", "cov_dof", "ridge", "pseudo_count"])
def test_emission_prior_rejects_invalid_values(field, value):
    from hmm import EmissionPrior, GaussianHMM

    def build():
        return GaussianHMM(2, 1, prior=EmissionPrior(**{field: value}))

    expect_error(field, build)


FIT_CALLS = {
    "lg": lambda **kw: lg_model(1).fit(np.array([0.0, 1.0, 0.5, 0.7]), progress=False, **kw),
    "hmm": lambda **kw: gaussian_hmm().fit(np.array([0.0, 1.0, 0.5, 0.7]), progress=False, **kw),
    "mjp": lambda **kw: mjp("noisy").fit(
        np.array([0.0, 1.0, 2.0, 1.0]), times=np.array([0.0, 1.0, 2.0, 3.0]), progress=False, **kw
    ),
}


@pytest.mark.issue18(9, "error")
@pytest.mark.parametrize(
    "option",
    [{"tol": -1.0}, {"tol": np.nan}, {"max_iter": -1}, {"tol": "0.1"}],
    ids=["tol_negative", "tol_nan", "max_iter_negative", "tol_str"],
)
@pytest.mark.parametrize("family", sorted(FIT_CALLS))
def test_fit_options_are_validated(family, option):
    expect_error(next(iter(option)), FIT_CALLS[family], **option)


@pytest.mark.issue18(9, "result")
def test_fit_max_iter_zero_is_handled_alike_by_every_family():
    """``max_iter=0`` is either an error naming it in every family, or accepted by every family."""
    answers = {}
    for family, fit in FIT_CALLS.items():
        try:
            fit(max_iter=0)
            answers[family] = "accepted"
        except Exception:  # noqa: BLE001
            expect_error("max_iter", fit, max_iter=0)
            answers[family] = "error"
    assert len(set(answers.values())) == 1, answers


PG_BAD = {
    "method": {"method": "nonsense"},
    "n_chains": {"n_chains": 0},
    "burn_in": {"burn_in": -1},
    "n_particles": {"n_particles": 1},
}


@pytest.mark.issue18(9, "error")
@pytest.mark.parametrize("bad", sorted(PG_BAD))
def test_particle_gibbs_options_raise_library_errors(bad):
    kw = dict(n_iter=4, n_particles=8, rng=0, progress=False)
    kw.update(PG_BAD[bad])
    expect_error(bad, smc.particle_gibbs, sv_model(), np.array([0.1, -0.2, 0.3]), **kw)


@pytest.mark.issue18(9, "error")
def test_particle_gibbs_burn_in_beyond_chain_is_a_library_error():
    expect_error(
        ("burn_in", "n_iter"),
        smc.particle_gibbs,
        sv_model(),
        np.array([0.1, -0.2]),
        n_iter=4,
        burn_in=10,
        n_particles=8,
        rng=0,
        progress=False,
    )


FILTER_BAD = {
    "resampling": {"resampling": "nonsense"},
    "ess_threshold": {"ess_threshold": 1.5},
    "ess_threshold_nan": {"ess_threshold": np.nan},
}


@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize("bad", sorted(FILTER_BAD))
def test_particle_filter_options(bad):
    expect_error(
        bad.replace("_nan", ""),
        smc.bootstrap_filter,
        sv_model(),
        np.array([0.1, 0.2]),
        n_particles=16,
        rng=0,
        **FILTER_BAD[bad],
    )


@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize("bad", ["backward", "n_backward"])
def test_paris_options(bad):
    kw = {"backward": "nonsense"} if bad == "backward" else {"n_backward": 0}
    expect_error(bad, smc.paris_smoother, sv_model(), np.array([0.1, 0.2]), n_particles=16, rng=0, **kw)


@pytest.mark.issue18(0, "error")
@FAST
@given(w=st.lists(st.sampled_from([0.0, 1.0, -1.0, np.nan, np.inf, 1e-300, 0.5]), min_size=0, max_size=6))
def test_resample_weights(w):
    """Valid weights (finite, non-negative, positive sum) give indices in range; others a named error."""
    w = np.array(w, dtype=float)
    valid = len(w) > 0 and np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0
    if valid:
        idx = smc.resample(w, rng=0)
        assert idx.shape == (len(w),) and (idx >= 0).all() and (idx < len(w)).all()
        assert (w[idx] > 0).all()
    else:
        expect_error("weights", smc.resample, w, rng=0)


@pytest.mark.issue18(0, "error")
def test_resample_scheme():
    expect_error("scheme", smc.resample, np.full(3, 1 / 3), scheme="nonsense", rng=0)


# =========================================================================== class 0: shapes, values, parameters
@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize("name", sorted(HMM_FACTORIES))
@FAST
@given(data=st.data())
def test_hmm_bad_observations(name, data):
    """inf, wrong number of columns, 3-D arrays: an error naming y."""
    model, y = hmm_data(name, T=6)
    bad = data.draw(st.sampled_from(["inf", "columns", "3d", "nan_symbol" if name == "categorical" else "inf"]))
    y = np.array(y, dtype=float).reshape(len(y), -1)
    if bad == "inf":
        y[data.draw(st.integers(0, len(y) - 1)), 0] = data.draw(st.sampled_from([np.inf, -np.inf]))
    elif bad == "columns":
        y = np.hstack([y, y, y])
    elif bad == "3d":
        y = y[None]
    else:
        y[2, 0] = 1.5  # not a symbol
    verb = data.draw(st.sampled_from(["log_likelihood", "filter", "smooth", "most_likely_states"]))
    expect_error("y", getattr(model, verb), y)


@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize(
    "field,value",
    [
        ("A", [[0.5, 0.6], [0.2, 0.8]]),
        ("A", [[np.nan, 1.0], [0.2, 0.8]]),
        ("A", [[1.2, -0.2], [0.2, 0.8]]),
        ("pi0", [0.5, 0.6]),
        ("pi0", [1.0]),
        ("covs", np.full((2, 1, 1), -1.0)),
        ("covs", np.full((2, 1, 1), np.nan)),
    ],
)
def test_hmm_bad_parameters(field, value):
    from hmm import GaussianEmissionParams, GaussianHMM, HMMParams

    kw = {"pi0": [0.6, 0.4], "A": [[0.9, 0.1], [0.2, 0.8]], "covs": np.ones((2, 1, 1))}
    kw[field] = value

    def build():
        e = GaussianEmissionParams.from_ar(bias=[[0.0], [1.0]], covs=kw["covs"])
        return GaussianHMM(
            2, 1, params=HMMParams(np.asarray(kw["pi0"], dtype=float), np.asarray(kw["A"], dtype=float), e)
        )

    expect_error(field, build)


@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize(
    "field,value",
    [
        ("Q", [[1.0, 0.0], [0.0, -1.0]]),
        ("Q", [[np.nan, 0], [0, 1]]),
        ("R", [[-1.0]]),
        ("F", np.eye(3)),
        ("H", [[1.0, 0.0, 0.0]]),
        ("P0", [[1.0, 2.0], [2.0, 1.0]]),
        ("m0", [np.inf, 0.0]),
    ],
)
def test_lg_bad_parameters(field, value):
    kw = dict(m0=np.zeros(2), P0=np.eye(2), F=[[1.0, 1.0], [0.0, 1.0]], Q=0.1 * np.eye(2), H=[[1.0, 0.0]], R=[[0.5]])
    kw[field] = value
    expect_error(field, LinearGaussianSSM, **kw)


@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize(
    "Q",
    [
        [[-1.0, 1.0], [1.0, -2.0]],  # row does not sum to zero
        [[1.0, -1.0], [1.0, -1.0]],  # negative off-diagonal
        [[-1.0, 1.0], [np.nan, 0.0]],
    ],
    ids=["row_sum", "negative_rate", "nan"],
)
def test_mjp_bad_generator(Q):
    from hmm.markov_jump import MarkovJumpProcess

    expect_error("Q", MarkovJumpProcess, np.array(Q))


@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize(
    "times",
    [[0.0, 0.0, 1.0], [0.0, np.nan, 2.0], [0.0, 1.0], [2.0, 1.0, 0.0]],
    ids=["tie", "nan", "short", "decreasing"],
)
def test_mjp_bad_times(times):
    expect_error("times", mjp("exact").log_likelihood, np.array([0.0, 1.0, 2.0]), times=np.array(times))


@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize("pl", ["zeros_row", "above_one", "shape", "nan"])
def test_partial_labels_are_validated(pl):
    model, y = hmm_data("left_to_right", T=5)
    p = np.ones((5, 3))
    if pl == "zeros_row":
        p[2] = 0.0
    elif pl == "above_one":
        p[1, 1] = 1.5
    elif pl == "shape":
        p = np.ones((5, 2))
    else:
        p[0, 0] = np.nan
    expect_error("pl", model.smooth, y, pl=p)


@pytest.mark.issue18(0, "error")
@pytest.mark.parametrize("inputs", ["short", "inf", "none_needed"])
def test_inputs_are_validated(inputs):
    from hmm import GaussianEmissionParams, GaussianHMM, HMMParams

    e = GaussianEmissionParams.from_ar(bias=[[0.0], [1.0]], covs=np.ones((2, 1, 1)), input_coefs=np.ones((2, 1, 1)))
    model = GaussianHMM(
        2, 1, input_dim=1, params=HMMParams(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]]), e)
    )
    y = np.zeros(4)
    u = {"short": np.zeros((3, 1)), "inf": np.array([[0.0], [np.inf], [0.0], [0.0]]), "none_needed": None}[inputs]
    expect_error("inputs", model.log_likelihood, y, inputs=u)
