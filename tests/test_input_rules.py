"""The input rules of :mod:`statespace.validation`, at the public entry points of every family.

Oracles:

* a flat list of numbers is *one* sequence: every verb gives bit for bit what
  the same values as a numpy array give; a list of arrays gives the
  per-sequence results (summed for ``log_likelihood``), each computed alone;
* anything that is not data (None, scalars, strings, dicts, sets, empty lists,
  ragged nested lists, mixed lists, 3-D, object, boolean or complex arrays) is
  a library error (a ``statespace.errors.StateSpaceError``) naming the argument;
* a count is an integer: ``2.7``, ``"3"``, ``True``, NaN and inf are errors
  naming the argument, never truncated, while an integral float (``3.0``)
  gives exactly what the integer gives;
* every ``fit`` and learning loop applies one rule to its options:
  ``max_iter``/``n_iter`` an integer >= 1, ``tol`` finite >= 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hmm
import smc
import smc.learning
from hmm import ARHMM, CategoricalEmissionParams, CategoricalHMM, GaussianEmissionParams, GaussianHMM, HMMParams
from statespace import LinearGaussianSSM, StochasticVolatility
from statespace.errors import ParameterError, StateSpaceError

PI = np.array([0.6, 0.4])
A = np.array([[0.9, 0.1], [0.2, 0.8]])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- models
def lg(m=1):
    H = np.eye(m, 2)
    return LinearGaussianSSM(
        m0=np.zeros(2), P0=np.eye(2), F=[[1.0, 1.0], [0.0, 1.0]], Q=0.1 * np.eye(2), H=H, R=0.5 * np.eye(m)
    )


def sv():
    return StochasticVolatility(mu=-1.0, phi=0.9, sigma=0.3)


def gaussian_hmm(pi0=PI):
    e = GaussianEmissionParams.from_ar(bias=[[-1.0], [1.0]], covs=np.ones((2, 1, 1)))
    return GaussianHMM(2, 1, params=HMMParams(pi0, A, e))


def ar_hmm():
    e = GaussianEmissionParams.from_ar(
        bias=[[-1.0], [1.0]], covs=np.full((2, 1, 1), 0.5), ar_coefs=np.full((2, 1, 1, 1), 0.5)
    )
    return ARHMM(2, 1, 1, params=HMMParams(PI, A, e))


def categorical_hmm():
    return CategoricalHMM(2, 3, params=HMMParams(PI, A, CategoricalEmissionParams([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])))


def mjp():
    return hmm.MarkovJumpProcess(np.array([[-1.0, 1.0], [0.5, -0.5]]))


# (factory, verbs with exact answers, values of one sequence, values of another)
REAL = [0.3, -1.2, 2.5, 0.0, 1.1]
SYMBOLS = [0, 2, 1, 1, 0]
FAMILIES = {
    "lg": (lg, ("log_likelihood", "filter", "smooth"), REAL, REAL[:3]),
    "gaussian_hmm": (gaussian_hmm, ("log_likelihood", "filter", "smooth", "most_likely_states"), REAL, REAL[:3]),
    "ar_hmm": (ar_hmm, ("log_likelihood", "filter", "smooth", "most_likely_states"), REAL, REAL[:3]),
    "categorical_hmm": (
        categorical_hmm,
        ("log_likelihood", "filter", "smooth", "most_likely_states"),
        SYMBOLS,
        SYMBOLS[:2],
    ),
}


def same(a, b):
    """Equal to the last bit (NaN where NaN), through NamedTuples, lists and arrays."""
    if hasattr(a, "_fields"):
        assert type(a) is type(b)
        for f in a._fields:
            same(getattr(a, f), getattr(b, f))
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif a is None or b is None or isinstance(a, str):
        assert a == b
    else:
        np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def expect_error(names, fn, *args, **kwargs):
    """``fn`` must raise a library error whose message names one of ``names`` (nothing else, no warning)."""
    names = (names,) if isinstance(names, str) else names
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(StateSpaceError) as info:
            fn(*args, **kwargs)
    assert any(n in str(info.value) for n in names), str(info.value)
    return info.value


# =========================================================================== class 8: one sequence or a list of them
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_flat_list_is_one_sequence_and_list_of_arrays_is_a_batch(family):
    make, verbs, a, b = FAMILIES[family]
    model = make()
    for verb in verbs:
        f = getattr(model, verb)
        same(f(list(a)), f(np.array(a)))
        same(f(tuple(a)), f(np.array(a)))
        batch = f([np.array(a), np.array(b)])
        if verb == "log_likelihood":
            assert batch == f(np.array(a)) + f(np.array(b))
        else:
            same(batch, [f(np.array(a)), f(np.array(b))])


def test_rectangular_list_of_rows_is_one_multivariate_sequence():
    model = lg(2)
    rows = [[0.1, 0.2], [0.5, -0.3], [1.0, 0.4]]
    for verb in ("log_likelihood", "filter", "smooth"):
        same(getattr(model, verb)(rows), getattr(model, verb)(np.array(rows)))
    err = expect_error("y", lg(1).log_likelihood, [[0.1, 0.2], [0.5, -0.3]])
    assert "list of arrays" in str(err)  # the message tells how to pass several sequences


def test_particle_filter_list_is_one_sequence():
    """No exact likelihood for SV: the bootstrap filter with one seed is the oracle of itself."""
    a = smc.bootstrap_filter(sv(), REAL, n_particles=64, rng=3)
    b = smc.bootstrap_filter(sv(), np.array(REAL), n_particles=64, rng=3)
    same(a, b)
    both = smc.bootstrap_filter(sv(), [np.array(REAL), np.array(REAL[:3])], n_particles=64, rng=3)
    assert len(both) == 2 and both[0].log_likelihood_increments.shape == (5,)


NOT_DATA = {
    "none": None,
    "scalar": 3.5,
    "numpy_scalar": np.float64(2.0),
    "string": "1 2 3",
    "dict": {"y": [1.0, 2.0]},
    "set": {1.0, 2.0},
    "empty_list": [],
    "empty_array": np.zeros(0),
    "ragged": [[0.1, 0.5], [1.5]],
    "mixed": [np.zeros(3), 1.0],
    "three_d": np.zeros((2, 3, 1)),
    "object": np.array([1.0, None]),
    "bool": np.array([True, False, True]),
    "complex": np.array([0.1 + 1j, 0.2]),
    "list_of_none": [None, None],
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_not_data_is_an_error_naming_y(family):
    make, verbs, *_ = FAMILIES[family]
    model = make()
    for what, value in NOT_DATA.items():
        for verb in verbs:
            expect_error("y", getattr(model, verb), value)
        expect_error("y", model.fit, value, max_iter=1, progress=False)


def test_particle_routines_refuse_non_data():
    for what in ("none", "scalar", "string", "ragged", "complex", "bool"):
        expect_error("y", smc.bootstrap_filter, sv(), NOT_DATA[what], n_particles=16, rng=0)
        expect_error("y", smc.paris_smoother, sv(), NOT_DATA[what], n_particles=16, rng=0)


def _value(draw_kind, data):
    """A random Python object shaped like data, or not (hypothesis)."""
    kind = data.draw(st.sampled_from(["flat", "rows", "ragged", "arrays", "nested3", "mixed"]))
    num = st.floats(-5, 5, allow_nan=False, allow_infinity=False)
    if kind == "flat":
        return data.draw(st.lists(num, min_size=0, max_size=6))
    if kind == "rows":
        d = data.draw(st.integers(1, 3))
        return data.draw(st.lists(st.lists(num, min_size=d, max_size=d), min_size=1, max_size=5))
    if kind == "ragged":
        return data.draw(st.lists(st.lists(num, min_size=0, max_size=4), min_size=1, max_size=4))
    if kind == "arrays":
        return [np.array(v) for v in data.draw(st.lists(st.lists(num, min_size=1, max_size=5), min_size=1, max_size=3))]
    if kind == "nested3":
        return [[[data.draw(num)]] * 2] * 2
    return [np.array([data.draw(num)]), data.draw(num)]


@pytest.mark.parametrize("family", ["lg", "gaussian_hmm"])
@FEW
@given(data=st.data())
def test_any_python_value_is_a_library_error_or_the_array_result(family, data):
    model = FAMILIES[family][0]()
    value = _value(None, data)
    try:
        got = model.log_likelihood(value)
    except StateSpaceError as exc:
        assert "y" in str(exc)
        return
    if isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
        want = sum(model.log_likelihood(v) for v in value)
    else:
        arr = np.asarray(value, dtype=float)
        assert arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1), arr.shape  # one univariate sequence
        want = model.log_likelihood(arr)
    # to rounding: an HMM list of three or more sequences runs its forward passes in vector lanes
    # (hmm.lane_forward_backward), which sum a step in another order than one sequence alone
    assert got == pytest.approx(want, rel=1e-13, abs=1e-13)


def test_inputs_follow_the_observations_form():
    """A batch of observations with its inputs as one array (rows read as sequences before) is an error."""
    e = GaussianEmissionParams(np.array([[[0.0], [1.0]], [[1.0], [-1.0]]]), np.ones((2, 1, 1)), input_dim=1)
    model = GaussianHMM(2, 1, input_dim=1, params=HMMParams(PI, A, e))
    y, u = np.array(REAL), np.linspace(0, 1, 5)
    same(model.log_likelihood(list(REAL), inputs=list(u)), model.log_likelihood(y, inputs=u))
    expect_error("inputs", model.log_likelihood, [y, y], inputs=np.stack([u, u]))


# =========================================================================== complex numbers are never truncated
COMPLEX = {
    "LinearGaussianSSM(F)": (
        lambda z: LinearGaussianSSM(m0=[0.0], P0=[[1.0]], F=[[0.5 + z]], Q=[[1.0]], H=[[1.0]], R=[[1.0]]),
        "F",
        lambda m: m.params.F,
    ),
    "StochasticVolatility(phi)": (
        lambda z: StochasticVolatility(mu=-1.0, phi=0.5 + z, sigma=0.3),
        "phi",
        lambda m: m.params.phi,
    ),
    "HMMParams(pi0)": (lambda z: gaussian_hmm(pi0=np.array([0.6 + z, 0.4])), "pi0", lambda m: m.params.pi0),
    "HMMParams(A)": (
        lambda z: GaussianHMM(
            2, 1, params=HMMParams(PI, A + np.array([[z, 0], [0, 0]]), gaussian_hmm().params.emission)
        ),
        "A",
        lambda m: m.params.A,
    ),
    "y": (lambda z: gaussian_hmm().log_likelihood(np.array(REAL) + z), "y", lambda r: r),
}


@pytest.mark.parametrize("call", sorted(COMPLEX))
def test_complex_values_are_an_error_unless_real(call):
    fn, name, read = COMPLEX[call]
    expect_error(name, fn, 0.1j)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same(read(fn(0j)), read(fn(0.0)))  # a zero imaginary part is a real number


# =========================================================================== counts
Y = np.array(REAL)
COUNTS = {
    # name of the argument: (call with the value, the argument's name, a valid integral value)
    "lg.sample(T)": (lambda v: lg().sample(v, rng=0), "T", 4),
    "sv.sample(T)": (lambda v: sv().sample(v, rng=0), "T", 4),
    "hmm.sample(T)": (lambda v: gaussian_hmm().sample(v, rng=0), "T", 4),
    "categorical.sample(T)": (lambda v: categorical_hmm().sample(v, rng=0), "T", 4),
    "lg.forecast(steps)": (lambda v: lg().forecast(Y, steps=v), "steps", 3),
    "lg.sample_posterior(n_samples)": (lambda v: lg().sample_posterior(Y, n_samples=v, rng=0), "n_samples", 2),
    "lg.initialize(state_dim)": (lambda v: LinearGaussianSSM.initialize(Y, state_dim=v, rng=0).params, "state_dim", 2),
    "GaussianHMM(n_states)": (lambda v: GaussianHMM(v, 1).n_states, "n_states", 3),
    "GaussianHMM(obs_dim)": (lambda v: GaussianHMM(2, v).obs_dim, "obs_dim", 2),
    "CategoricalHMM(n_symbols)": (lambda v: CategoricalHMM(2, v).n_symbols, "n_symbols", 4),
    "ARHMM(lags)": (lambda v: ARHMM(2, 1, v).lags, "lags", 2),
    "left_to_right(max_jump)": (lambda v: hmm.left_to_right(4, v).mask, "max_jump", 2),
    "banded(upper)": (lambda v: hmm.banded(4, 0, v).mask, "upper", 2),
    "GaussianEmissionParams(lags)": (
        lambda v: GaussianEmissionParams(np.zeros((2, 1 + 2, 1)), np.ones((2, 1, 1)), lags=v).lags,
        "lags",
        2,
    ),
    "HMM(max_jump)": (lambda v: hmm.HMM(3, 1, transitions="left-to-right", max_jump=v).structure.mask, "max_jump", 2),
    "hmm.sample_posterior(n_samples)": (
        lambda v: gaussian_hmm().sample_posterior(Y, n_samples=v, rng=0),
        "n_samples",
        2,
    ),
    "hmm.forecast(steps)": (lambda v: gaussian_hmm().forecast(Y, steps=v, n_samples=4, rng=0), "steps", 2),
    "hmm.forecast(n_samples)": (lambda v: gaussian_hmm().forecast(Y, steps=2, n_samples=v, rng=0), "n_samples", 3),
    "hmm.fit(n_restarts)": (
        lambda v: GaussianHMM(2, 1).fit(Y, n_restarts=v, max_iter=2, rng=0, progress=False).params,
        "n_restarts",
        2,
    ),
    "IOHMM(hidden)": (lambda v: hmm.IOHMM(2, hidden=v).hidden, "hidden", 8),
    "LearnedEmissionHMM(n_layers)": (lambda v: hmm.LearnedEmissionHMM(2, n_layers=v).n_layers, "n_layers", 1),
    "bootstrap_filter(n_particles)": (lambda v: smc.bootstrap_filter(sv(), Y, n_particles=v, rng=0), "n_particles", 8),
    "paris_smoother(n_particles)": (lambda v: smc.paris_smoother(sv(), Y, n_particles=v, rng=0), "n_particles", 8),
    "paris_smoother(n_backward)": (
        lambda v: smc.paris_smoother(sv(), Y, n_particles=8, n_backward=v, rng=0),
        "n_backward",
        2,
    ),
    "paris_smoother(max_trials)": (
        lambda v: smc.paris_smoother(sv(), Y, n_particles=8, max_trials=v, rng=0),
        "max_trials",
        4,
    ),
    "particle_gibbs(n_iter)": (
        lambda v: smc.particle_gibbs(sv(), Y, n_iter=v, n_particles=8, rng=0, progress=False),
        "n_iter",
        3,
    ),
    "particle_gibbs(n_particles)": (
        lambda v: smc.particle_gibbs(sv(), Y, n_iter=3, n_particles=v, rng=0, progress=False),
        "n_particles",
        8,
    ),
    "particle_gibbs(n_chains)": (
        lambda v: smc.particle_gibbs(sv(), Y, n_iter=3, n_particles=8, n_chains=v, rng=0, progress=False),
        "n_chains",
        2,
    ),
    "particle_gibbs(burn_in)": (
        lambda v: smc.particle_gibbs(sv(), Y, n_iter=3, n_particles=8, burn_in=v, rng=0, progress=False),
        "burn_in",
        1,
    ),
    "ppg_smoother(n_iter)": (
        lambda v: smc.ppg_smoother(sv(), Y, n_iter=v, n_particles=8, rng=0, progress=False),
        "n_iter",
        3,
    ),
    "ppg_smoother(n_backward)": (
        lambda v: smc.ppg_smoother(sv(), Y, n_iter=3, n_backward=v, n_particles=8, rng=0, progress=False),
        "n_backward",
        2,
    ),
    "resample(n)": (lambda v: smc.resample(np.full(4, 0.25), n=v, rng=0), "n", 6),
    "smoothed_marginals_functional(T)": (lambda v: smc.smoothed_marginals_functional(v).dim, "T", 5),
    "time_to_absorption(offset)": (
        lambda v: (
            __import__("statespace.prognostics")
            .prognostics.time_to_absorption([1.0, 0.0], [[0.5, 0.5], [0.0, 1.0]], offset=v)
            .mean
        ),
        "offset",
        1,
    ),
    "truncation_splits(n_folds)": (
        lambda v: [
            c
            for f in __import__("statespace.prognostics").prognostics.truncation_splits(
                [40, 50, 60, 70], n_folds=v, min_cycles=5, rng=0
            )
            for c in f
        ],
        "n_folds",
        2,
    ),
}
NONE_MEANS_DEFAULT = {"max_trials", "n"}  # documented: None picks the default
BAD_COUNTS = {"fraction": 2.7, "string": "3", "bool": True, "nan": float("nan"), "inf": float("inf"), "none": None}


@pytest.mark.parametrize("call", sorted(COUNTS))
def test_non_integral_count_is_an_error(call):
    fn, name, _ = COUNTS[call]
    for bad, value in BAD_COUNTS.items():
        if not (bad == "none" and name in NONE_MEANS_DEFAULT):
            expect_error(name, fn, value)


@pytest.mark.parametrize("call", sorted(COUNTS))
def test_integral_float_count_is_the_integer(call):
    """``4.0`` (and ``np.int64(4)``) give exactly what ``4`` gives; ``2.7`` never passes as 2."""
    fn, name, v = COUNTS[call]
    same(fn(float(v)), fn(v))
    same(fn(np.int64(v)), fn(v))
    expect_error(name, fn, v + 0.5)
    if name == "n_particles" and "bootstrap" in call:  # how people write ten thousand
        same(fn(1e4), fn(10_000))


BAD_RNG = {"fraction": 2.5, "string": "seed", "bool": True, "negative": -1}


@pytest.mark.parametrize("bad", sorted(BAD_RNG))
def test_rng_must_be_a_generator_or_a_seed(bad):
    expect_error("rng", lg().sample, 3, rng=BAD_RNG[bad])
    expect_error("rng", smc.bootstrap_filter, sv(), Y, n_particles=8, rng=BAD_RNG[bad])
    same(lg().sample(3, rng=7.0), lg().sample(3, rng=7))


# =========================================================================== options
OPTIONS = {
    "ess_threshold": [1.5, -0.1, float("nan"), "0.5", None],
    "resampling": ["nonsense", 3, None],
}


def test_particle_filter_options():
    for option, values in OPTIONS.items():
        for bad in values:
            expect_error(option, smc.bootstrap_filter, sv(), Y, n_particles=8, rng=0, **{option: bad})
            expect_error(option, smc.paris_smoother, sv(), Y, n_particles=8, rng=0, **{option: bad})


def test_particle_gibbs_raises_library_errors():
    """particle_gibbs and ppg raised bare ValueError; every refusal is now a ParameterError."""
    for bad in ({"method": "nonsense"}, {"n_chains": 0}, {"burn_in": -1}, {"burn_in": 3}, {"n_particles": 1}):
        kw = dict(n_iter=3, n_particles=8, rng=0, progress=False) | bad
        err = expect_error(tuple(bad), smc.particle_gibbs, sv(), Y, **kw)
        assert isinstance(err, ParameterError)
    expect_error("n_backward", smc.ppg_smoother, sv(), Y, n_iter=2, n_backward=0, n_particles=8, rng=0, progress=False)


# --------------------------------------------------------------------------- the fit rule, alike in every family
def _fit_lg(**kw):
    return lg().fit(Y, progress=False, **kw)


def _fit_hmm(make):
    return lambda **kw: make().fit(Y if make is not categorical_hmm else SYMBOLS, progress=False, **kw)


def _fit_mjp(**kw):
    return mjp().fit([0.0, 1.0, 1.0, 0.0], times=[0.0, 0.5, 1.5, 2.0], progress=False, **kw)


def _fit_iohmm(**kw):
    return hmm.IOHMM(2, 1, 1).fit(Y, inputs=np.zeros((5, 1)), progress=False, **kw)


def _fit_learned(**kw):
    return hmm.LearnedEmissionHMM(2, 1).fit(Y, progress=False, **kw)


def _particle_em(**kw):
    n = kw.pop("max_iter", 2)
    return smc.learning.particle_em(sv(), Y, n_iter=n, n_particles=8, rng=0, progress=False, **kw)


def _score_ascent(**kw):
    n = kw.pop("max_iter", 2)
    return smc.learning.score_ascent(sv(), Y, n_iter=n, n_particles=8, rng=0, progress=False, **kw)


FITS = {
    "LinearGaussianSSM": (_fit_lg, True),
    "GaussianHMM": (_fit_hmm(gaussian_hmm), True),
    "ARHMM": (_fit_hmm(ar_hmm), True),
    "CategoricalHMM": (_fit_hmm(categorical_hmm), True),
    "MarkovJumpProcess": (_fit_mjp, True),
    "IOHMM": (_fit_iohmm, True),
    "LearnedEmissionHMM": (_fit_learned, True),
    "particle_em": (_particle_em, False),
    "score_ascent": (_score_ascent, False),
}
BAD_MAX_ITER = {
    "zero": 0,
    "negative": -2,
    "fraction": 2.5,
    "string": "3",
    "bool": True,
    "none": None,
    "inf": float("inf"),
}
BAD_TOL = {"negative": -1e-3, "nan": float("nan"), "inf": float("inf"), "string": "0.1", "none": None, "complex": 1e-3j}


@pytest.mark.parametrize("family", sorted(FITS))
def test_fit_max_iter_rule_is_the_same_in_every_family(family):
    fit, _ = FITS[family]
    for bad, value in BAD_MAX_ITER.items():
        err = expect_error(("max_iter", "n_iter"), fit, max_iter=value)
        assert isinstance(err, ParameterError), bad


@pytest.mark.parametrize("family", sorted(f for f, (_, has_tol) in FITS.items() if has_tol))
def test_fit_tol_rule_is_the_same_in_every_family(family):
    fit, _ = FITS[family]
    for bad, value in BAD_TOL.items():
        err = expect_error("tol", fit, max_iter=1, tol=value)
        assert isinstance(err, ParameterError), bad
    if family in ("LinearGaussianSSM", "GaussianHMM", "CategoricalHMM", "MarkovJumpProcess"):
        # the valid edge: an integral float max_iter and a zero tolerance run as the integer does
        same(fit(max_iter=2.0, tol=0).log_likelihoods, fit(max_iter=2, tol=0.0).log_likelihoods)


def test_learning_step_options():
    kw = dict(n_iter=2, n_particles=8, rng=0, progress=False)
    expect_error("step_sizes", smc.learning.particle_em, sv(), Y, step_sizes=[0.5, float("nan")], **kw)
    expect_error("step_sizes", smc.learning.particle_em, sv(), Y, step_sizes=lambda k: 2.0, **kw)
    expect_error("learning_rate", smc.learning.score_ascent, sv(), Y, learning_rate=-0.1, **kw)
    expect_error("average_from", smc.learning.score_ascent, sv(), Y, average_from="half", **kw)
    expect_error("n_sweeps", smc.learning.particle_em, sv(), Y, n_sweeps=1.5, **kw)


WRONG_KIND = {
    # option: (call with a value of the wrong kind, the name the error must give)
    "lg.fit(frozen)": (lambda v: lg().fit(Y, frozen=v, max_iter=1, progress=False), "frozen"),
    "hmm.fit(frozen)": (lambda v: gaussian_hmm().fit(Y, frozen=v, max_iter=1, progress=False), "frozen"),
    "lg.fit(init)": (lambda v: lg().fit(Y, init=v, max_iter=1, progress=False), "init"),
    "HMM(prior)": (lambda v: GaussianHMM(2, prior=v), "prior"),
    "HMM(transitions)": (lambda v: GaussianHMM(2, transitions=v), "transitions"),
    "HMM(absorbing)": (lambda v: GaussianHMM(2, absorbing=v), "absorbing"),
    "ppg_smoother(functional)": (
        lambda v: smc.ppg_smoother(sv(), Y, functional=v, n_iter=2, n_particles=8, rng=0, progress=False),
        "functional",
    ),
    "time_to_absorption(absorbing)": (
        lambda v: __import__("statespace.prognostics").prognostics.time_to_absorption(
            [1.0, 0.0], [[0.5, 0.5], [0.0, 1.0]], absorbing=v
        ),
        "absorbing",
    ),
}


@pytest.mark.parametrize("call", sorted(WRONG_KIND))
def test_options_of_the_wrong_kind_are_named_errors(call):
    """Numbers, NaN, complex, dicts or 3-D arrays where names, containers or flags are expected (raw
    TypeError/AttributeError/ValueError before)."""
    fn, name = WRONG_KIND[call]
    for value in (2.7, float("nan"), 1 + 1j, {"a": 1}, np.zeros((2, 2, 2))):
        expect_error(name, fn, value)
