"""The model contract (docs/interface.md, "The model contract"), checked for every public model class.

Each case builds a small instance with fixed seeds: a *truth* model whose ``sample`` draws two
sequences of different lengths, and a *start* model (data-driven, ``initialize`` where the family
has one) that ``fit`` moves. The checks are the contract's, not a family's own algebra (the
families' oracles - enumeration, dense Gaussian algebra, ``expm`` - live in their own test files):

* the verbs exist with the contract's keyword names, and the removed names are gone;
* the list rule: one sequence gives one result, a list gives a list of the same length whose
  entries equal the single-sequence results; ``log_likelihood`` of a list is the sum of the singles;
* ``fit`` updates ``model.params``, returns a NamedTuple whose first four fields are
  ``params, log_likelihoods, converged, n_iter``, starts from ``init=`` when given, never lowers its
  objective beyond round-off, and the fitted log-likelihood (sample -> fit -> log_likelihood) is
  that of the last history entry and at least the start's;
* ``frozen=`` field names stay bit-identical; an unknown name is a ParameterError listing the names;
* results are NamedTuples whose class docstring documents every field;
* a verb a family cannot do exactly raises ExactInferenceUnavailable naming an ``smc`` routine.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

from statespace.errors import ExactInferenceUnavailable, ParameterError

FIT_FIELDS = ("params", "log_likelihoods", "converged", "n_iter")
REMOVED_VERBS = ("posterior_sample", "sample_posterior_paths", "init_network")
REMOVED_FIT_KEYWORDS = ("params", "init_params", "learn_initial")
CONTRACT_KEYWORDS = {
    "sample": ("T", "rng", "inputs", "times"),
    "log_likelihood": ("y", "inputs"),
    "filter": ("y", "inputs"),
    "smooth": ("y", "inputs"),
    "sample_posterior": ("y", "n_samples", "rng", "inputs"),
    "forecast": ("y", "inputs"),
    "fit": ("y", "inputs", "init", "frozen", "max_iter", "progress"),
}


class Case(NamedTuple):
    """One model class under test.

    ``start()`` returns a fresh model to fit (and to run inference with); ``ys`` are two sequences
    sampled from a truth model; ``per_seq`` holds the per-sequence keyword arguments (inputs,
    times) in single-sequence form; ``exact`` the verbs the family does exactly (beside
    log_likelihood and fit); ``stochastic`` those among them that draw random numbers;
    ``extra`` keyword arguments per verb (``forecast``'s horizon, as a function of the sequence
    index); ``frozen`` field names to freeze; ``fit_kw`` keeps fits short; ``em`` says whether fit
    is a monotone EM (else stochastic approximation); ``unavailable`` the verbs that must raise.
    """

    start: Callable[[], Any]
    ys: list
    per_seq: list
    exact: tuple
    stochastic: tuple
    extra: dict
    frozen: tuple
    fit_kw: dict
    em: bool = True
    unavailable: tuple = ()
    rul: bool = False


def _lists(per_seq):
    """Per-sequence keyword arguments in list form: ``{name: [value_0, value_1]}``."""
    return {k: [kw[k] for kw in per_seq] for k in per_seq[0]}


# ----------------------------------------------------------------------------- the cases
def _lgssm():
    from statespace import LinearGaussianSSM

    truth = LinearGaussianSSM(
        m0=np.zeros(2), P0=np.eye(2), F=[[0.9, 0.1], [0.0, 0.8]], Q=0.1 * np.eye(2), H=[[1.0, 0.5]], R=[[0.2]]
    )
    ys = [truth.sample(T, rng=s)[1] for s, T in ((1, 40), (2, 25))]
    start = LinearGaussianSSM.initialize(ys, state_dim=2, rng=0)
    return Case(
        lambda: copy.deepcopy(start),
        ys,
        [{}, {}],
        ("filter", "smooth", "sample_posterior", "forecast"),
        ("sample_posterior",),
        {"forecast": lambda i: {"steps": 3}},
        ("F", "H"),
        {"max_iter": 5},
    )


def _regimes(rng, T, K=2):
    """A raw two-regime series (sticky switching) to build the truth models of the HMM family from."""
    z = np.zeros(T, dtype=int)
    for t in range(1, T):
        z[t] = z[t - 1] if rng.random() < 0.9 else 1 - z[t - 1]
    return z


def _hmm_case(make_truth, make_start, frozen, n_steps=(30, 18), inputs=None, extra_fit=None):
    truth = make_truth()
    ys, per_seq = [], []
    for s, T in enumerate(n_steps):
        kw = {} if inputs is None else {"inputs": inputs(T, s)}
        ys.append(truth.sample(T, rng=10 + s, **kw)[1])
        per_seq.append(kw)
    start = make_start(ys, _lists(per_seq))
    steps = lambda i: {
        "steps": 3,
        "n_samples": 5,
        "rng": 0,  # noqa: E731
        **({} if inputs is None else {"future_inputs": inputs(3, 99)}),
    }
    return Case(
        lambda: copy.deepcopy(start),
        ys,
        per_seq,
        ("filter", "smooth", "most_likely_states", "sample_posterior", "forecast"),
        ("sample_posterior", "forecast"),
        {"forecast": steps},
        frozen,
        {"max_iter": 4, **(extra_fit or {})},
    )


def _gaussian_hmm():
    from hmm import GaussianHMM

    rng = np.random.default_rng(0)
    z = _regimes(rng, 200)
    raw = (np.where(z, 2.0, -1.0) + 0.7 * rng.standard_normal(200))[:, None]
    return _hmm_case(
        lambda: GaussianHMM.initialize(raw, 2, 1, rng=0),
        lambda ys, kw: GaussianHMM.initialize(ys, 2, 1, rng=1),
        ("pi0", "covs"),
    )


def _arhmm():
    from hmm import ARHMM

    rng = np.random.default_rng(1)
    z = _regimes(rng, 200)
    raw = np.zeros((200, 1))
    for t in range(1, 200):
        raw[t] = (0.8 if z[t] else -0.3) * raw[t - 1] + (0.5 if z[t] else 1.0) + 0.5 * rng.standard_normal()
    return _hmm_case(
        lambda: ARHMM.initialize(raw, 2, 1, 1, rng=0),
        lambda ys, kw: ARHMM.initialize(ys, 2, 1, 1, rng=1),
        ("A", "weights"),
    )


def _categorical_hmm():
    from hmm import CategoricalHMM

    rng = np.random.default_rng(2)
    z = _regimes(rng, 200)
    raw = np.where(z, rng.choice(3, 200, p=[0.7, 0.2, 0.1]), rng.choice(3, 200, p=[0.1, 0.2, 0.7])).astype(float)
    return _hmm_case(
        lambda: CategoricalHMM.initialize(raw, 2, 3, rng=0),
        lambda ys, kw: CategoricalHMM.initialize(ys, 2, 3, rng=1),
        ("probs",),
    )


def _iohmm():
    pytest.importorskip("jax")
    from hmm import IOHMM

    def inputs(T, s):
        return np.cumsum(np.random.default_rng(100 + s).standard_normal(T))[:, None] * 0.3

    rng = np.random.default_rng(3)
    u = inputs(200, 50)
    raw = (np.where(u[:, 0] > 0, 1.0, -1.0) + 0.8 * rng.standard_normal(200))[:, None]
    small = dict(hidden=4, state=4)
    return _hmm_case(
        lambda: IOHMM.initialize(raw, 2, 1, 1, inputs=u, rng=0, **small),
        lambda ys, kw: IOHMM.initialize(ys, 2, 1, 1, inputs=kw["inputs"], rng=1, **small),
        ("means",),
        inputs=inputs,
        extra_fit={"max_iter": 2, "m_steps": 2},
    )


def _learned_emission_hmm():
    pytest.importorskip("jax")
    from hmm import LearnedEmissionHMM

    rng = np.random.default_rng(4)
    z = _regimes(rng, 200)
    raw = (np.where(z, 1.5, -1.0) + 0.6 * rng.standard_normal(200))[:, None]
    small = dict(hidden=4, state=4, n_layers=1)
    return _hmm_case(
        lambda: LearnedEmissionHMM.initialize(raw, 2, 1, rng=0, **small),
        lambda ys, kw: LearnedEmissionHMM.initialize(ys, 2, 1, rng=1, **small),
        ("A",),
        extra_fit={"max_iter": 2, "m_steps": 2},
    )


def _mjp():
    from hmm.markov_jump import MarkovJumpProcess, NoisyLabels

    Q = np.array([[-1.0, 0.7, 0.3], [0.4, -0.9, 0.5], [0.2, 0.8, -1.0]])
    truth = MarkovJumpProcess(Q, observation=NoisyLabels.uniform_replacement(3, 0.1))
    grids = [np.cumsum(np.random.default_rng(20 + s).exponential(0.6, T)) for s, T in enumerate((40, 25))]
    _, ys = truth.sample(times=grids, rng=5)
    start = MarkovJumpProcess(
        np.full((3, 3), 0.5) - 1.5 * np.eye(3), observation=NoisyLabels.uniform_replacement(3, 0.2)
    )
    horizon = lambda i: {"future_times": grids[i][-1] + np.array([0.0, 0.5, 2.0])}  # noqa: E731
    return Case(
        lambda: copy.deepcopy(start),
        list(ys),
        [{"times": g} for g in grids],
        ("filter", "smooth", "most_likely_states", "sample_posterior", "forecast"),
        ("sample_posterior",),
        {"forecast": horizon},
        ("initial", "emission"),
        {"max_iter": 5},
    )


def _stochastic_volatility():
    from statespace import StochasticVolatility

    truth = StochasticVolatility(mu=-1.0, phi=0.9, sigma=0.4)
    ys = [truth.sample(T, rng=s)[1] for s, T in ((1, 40), (2, 25))]
    return Case(
        lambda: StochasticVolatility(mu=-0.5, phi=0.8, sigma=0.5),
        ys,
        [{}, {}],
        (),
        (),
        {},
        (),
        {},
        em=False,
        unavailable=("log_likelihood", "filter", "smooth", "sample_posterior", "forecast", "fit"),
    )


def _neural_drift():
    pytest.importorskip("jax")
    from smc import NeuralDriftSSM

    rng = np.random.default_rng(6)
    raw = np.cumsum(0.3 * rng.standard_normal((80, 1)), axis=0)
    truth = NeuralDriftSSM.initialize(raw, n_hidden=3, rng=0)
    ys = [truth.sample(T, rng=s)[1] for s, T in ((1, 40), (2, 25))]
    start = NeuralDriftSSM.initialize(ys, n_hidden=3, rng=1)
    return Case(
        lambda: copy.deepcopy(start),
        ys,
        [{}, {}],
        (),
        (),
        {},
        ("W1", "sigma_y"),
        {"max_iter": 3, "n_particles": 8, "rng": 0},
        em=False,
        unavailable=("log_likelihood", "filter", "smooth", "sample_posterior", "forecast"),
    )


def _engines(n=4, seed=7):
    """Run-to-failure engines: two features drifting faster and faster towards failure."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        T = int(rng.integers(25, 35))
        frac = np.arange(T) / (T - 1)
        out.append(np.column_stack([-3.0 * frac**3, 2.0 * frac**2]) + 0.25 * rng.standard_normal((T, 2)))
    return out


def _rul_case(make):
    train = _engines()
    start = make()
    start.fit(train, rng=0, progress=False)
    test = [e[: len(e) // 2] for e in _engines(2, seed=8)]
    return Case(
        lambda: copy.deepcopy(start), test, [{}, {}], ("filter", "smooth", "predict"), (), {}, (), {"rng": 0}, rul=True
    )


def _arphmm_rul():
    from hmm.rul import ARPHMMRUL

    return _rul_case(lambda: ARPHMMRUL(n_states=4, lags=0, cap=20.0, max_jump=1, max_iter=3, covariance_type="diag"))


def _deep_arphmm_rul():
    pytest.importorskip("jax")
    from hmm.rul import DeepARPHMMRUL

    return _rul_case(
        lambda: DeepARPHMMRUL(
            n_states=4, cap=20.0, max_jump=1, hidden=4, state=2, n_layers=1, max_iter=1, m_steps=2, init_iter=2
        )
    )


BUILDERS = {
    "LinearGaussianSSM": _lgssm,
    "GaussianHMM": _gaussian_hmm,
    "ARHMM": _arhmm,
    "CategoricalHMM": _categorical_hmm,
    "IOHMM": _iohmm,
    "LearnedEmissionHMM": _learned_emission_hmm,
    "MarkovJumpProcess": _mjp,
    "StochasticVolatility": _stochastic_volatility,
    "NeuralDriftSSM": _neural_drift,
    "ARPHMMRUL": _arphmm_rul,
    "DeepARPHMMRUL": _deep_arphmm_rul,
}
MODELS = sorted(BUILDERS)


@functools.cache
def case(name: str) -> Case:
    return BUILDERS[name]()


def _pairs(verbs_of):
    return [(m, v) for m in MODELS for v in verbs_of(m)]


# Static lists of (model, verb) pairs, so that parametrisation does not build the models.
EXACT = {
    "LinearGaussianSSM": ("filter", "smooth", "sample_posterior", "forecast"),
    "MarkovJumpProcess": ("filter", "smooth", "most_likely_states", "sample_posterior", "forecast"),
    "ARPHMMRUL": ("filter", "smooth", "predict"),
    "DeepARPHMMRUL": ("filter", "smooth", "predict"),
    **{
        m: ("filter", "smooth", "most_likely_states", "sample_posterior", "forecast")
        for m in ("GaussianHMM", "ARHMM", "CategoricalHMM", "IOHMM", "LearnedEmissionHMM")
    },
}
UNAVAILABLE = {
    "StochasticVolatility": ("log_likelihood", "filter", "smooth", "sample_posterior", "forecast", "fit"),
    "NeuralDriftSSM": ("log_likelihood", "filter", "smooth", "sample_posterior", "forecast"),
}
FITTABLE = [m for m in MODELS if m != "StochasticVolatility"]
EM = [m for m in FITTABLE if m != "NeuralDriftSSM"]
FREEZABLE = [m for m in FITTABLE if m not in ("ARPHMMRUL", "DeepARPHMMRUL")]


# ----------------------------------------------------------------------------- comparisons
def _same(a, b, where="result"):
    """Deep equality of results (NamedTuples, lists, arrays) up to round-off of a batched computation."""
    if isinstance(a, tuple) and hasattr(a, "_fields"):
        assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
        for f in a._fields:
            _same(getattr(a, f), getattr(b, f), f"{where}.{f}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif a is None or isinstance(a, (str, bool)):
        assert a == b, where
    elif isinstance(a, (int, float, np.ndarray, np.generic)):
        np.testing.assert_allclose(
            np.asarray(b, dtype=float), np.asarray(a, dtype=float), rtol=1e-9, atol=1e-12, err_msg=where
        )
    else:  # e.g. a distribution object: compare its public array attributes
        _same(vars(a), vars(b), where) if hasattr(a, "__dict__") else None


def _shape_of(r):
    if isinstance(r, tuple) and hasattr(r, "_fields"):
        return (type(r).__name__, tuple(_shape_of(getattr(r, f)) for f in r._fields))
    if isinstance(r, np.ndarray):
        return r.shape
    if isinstance(r, (list, tuple)):
        return tuple(_shape_of(x) for x in r)
    return type(r).__name__


def _fields(params):
    """Every field of a parameter container, nested containers included: ``{name: value}``."""
    out = {}
    for f in getattr(params, "_fields", ()):
        v = getattr(params, f)
        out.setdefault(f, v)
        if hasattr(v, "_fields"):
            for g, w in _fields(v).items():
                out.setdefault(g, w)
    return out


def _identical(a, b) -> bool:
    if hasattr(a, "_fields"):
        return all(_identical(x, y) for x, y in zip(_fields(a).values(), _fields(b).values()))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    if a is None or isinstance(a, str):
        return a == b
    return np.array_equal(np.asarray(a), np.asarray(b))


def _params(model):
    """``model.params`` (a RUL model without its own keeps its chain's)."""
    return model.params if hasattr(model, "params") else model.hmm.params


def _call(model, verb, c: Case, i=None, **extra):
    """``model.verb`` on sequence ``i`` (or on the whole list when ``i`` is None)."""
    if i is None:
        y, kw = c.ys, _lists(c.per_seq)
        ex = c.extra.get(verb)
        if ex is not None:
            parts = [ex(j) for j in range(len(c.ys))]
            kw.update(
                {
                    k: ([p[k] for p in parts] if k in ("future_times", "future_inputs") else parts[0][k])
                    for k in parts[0]
                }
            )
    else:
        y, kw = c.ys[i], dict(c.per_seq[i])
        ex = c.extra.get(verb)
        if ex is not None:
            kw.update(ex(i))
    if verb == "sample_posterior":
        kw.update(n_samples=3, rng=0)
    return getattr(model, verb)(y, **kw, **extra)


# ----------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("name", MODELS)
def test_verbs_exist_with_the_contract_keywords(name):
    c = case(name)
    model = c.start()
    for old in REMOVED_VERBS:
        assert not hasattr(model, old), f"{name}.{old}: removed by the contract (use sample_posterior / initialize)"
    if c.rul:
        verbs = {"fit": ("y", "init", "progress"), "filter": ("y",), "smooth": ("y",), "predict": ("y",)}
    else:
        verbs = dict(CONTRACT_KEYWORDS)
        if name == "MarkovJumpProcess":
            verbs["forecast"] = ("y", "future_times", "inputs", "times")
        else:
            verbs["forecast"] = verbs["forecast"] + ("steps", "future_inputs")
        if c.em:
            verbs["fit"] = verbs["fit"] + ("tol",)
        if "most_likely_states" in c.exact:
            verbs["most_likely_states"] = ("y", "inputs")
    for verb, names in verbs.items():
        assert callable(getattr(model, verb, None)), f"{name}.{verb} is missing"
        params = inspect.signature(getattr(model, verb)).parameters
        missing = [n for n in names if n not in params]
        assert not missing, f"{name}.{verb}: missing keyword(s) {missing}; has {list(params)}"
    fit_params = inspect.signature(model.fit).parameters
    old = [n for n in REMOVED_FIT_KEYWORDS if n in fit_params]
    assert not old, f"{name}.fit: keyword(s) {old} removed by the contract (use init= / frozen=)"


@pytest.mark.parametrize("name, verb", _pairs(lambda m: EXACT.get(m, ())))
def test_list_rule(name, verb):
    """One sequence -> one result; a list -> a list of the same length whose entries are the singles
    (RUL ``predict``, the fleet verb: one RULPrediction whose rows are the singles' rows)."""
    c = case(name)
    model = c.start()
    singles = [_call(model, verb, c, i) for i in range(len(c.ys))]
    batch = _call(model, verb, c)
    if c.rul and verb == "predict":
        # the fleet verb: one RULPrediction whose fields hold one row per engine, for one engine or many
        for one in singles:
            assert all(len(getattr(one, f)) == 1 for f in one._fields), f"{name}.predict(one engine): not one row"
        joined = type(batch)(
            *(
                [d for one in singles for d in getattr(one, f)]
                if isinstance(getattr(batch, f), list)
                else np.concatenate([getattr(one, f) for one in singles])
                for f in batch._fields
            )
        )
        _same(joined, batch, f"{name}.predict(list)")
        return
    assert isinstance(batch, list), f"{name}.{verb}(list) returned {type(batch).__name__}, expected a list"
    assert len(batch) == len(c.ys)
    for i, (one, entry) in enumerate(zip(singles, batch)):
        assert not isinstance(one, list), f"{name}.{verb}(one sequence) returned a list"
        if verb in c.stochastic:  # draws from one shared stream: compare layout, not values
            assert _shape_of(entry) == _shape_of(one), f"{name}.{verb}: entry {i} has another layout"
        else:
            _same(one, entry, f"{name}.{verb}(list)[{i}]")


@pytest.mark.parametrize("name", [m for m in MODELS if m not in UNAVAILABLE])
def test_log_likelihood_of_a_list_is_the_sum_of_the_singles(name):
    c = case(name)
    model = c.start()
    if c.rul:
        model = model.hmm
    lls = [model.log_likelihood(c.ys[i], **c.per_seq[i]) for i in range(len(c.ys))]
    total = model.log_likelihood(c.ys, **_lists(c.per_seq))
    assert isinstance(total, float)
    np.testing.assert_allclose(total, sum(lls), rtol=1e-10)


def _fit(model, c: Case, **kw):
    data = c.ys if not c.rul else _engines(4, seed=9)
    per = _lists(c.per_seq) if not c.rul else {}
    return model.fit(data, **per, progress=False, **{**c.fit_kw, **kw}), data, per


@pytest.mark.parametrize("name", FITTABLE)
def test_fit_updates_the_model_and_returns_the_history(name):
    """sample -> fit -> log_likelihood: the fitted model's log-likelihood is the history's last entry, at
    least the start's, and the history never drops beyond round-off (EM families)."""
    c = case(name)
    model = c.start()
    start = copy.deepcopy(_params(model))
    ll0 = None
    if c.em and not c.rul:
        ll0 = model.log_likelihood(c.ys, **_lists(c.per_seq))
    res, data, per = _fit(model, c)
    assert isinstance(res, tuple) and hasattr(res, "_fields"), f"{name}.fit returned {type(res).__name__}"
    assert res._fields[:4] == FIT_FIELDS, f"{name}.fit: fields {res._fields[:4]}, expected {FIT_FIELDS}"
    assert _identical(_params(model), res.params), f"{name}.fit did not set model.params to result.params"
    assert not _identical(start, res.params), f"{name}.fit left the parameters unchanged"
    hist = np.asarray(res.log_likelihoods, dtype=float)
    assert hist.ndim == 1 and len(hist) >= 1 and isinstance(res.n_iter, (int, np.integer))
    if not c.em:
        return
    assert np.isfinite(hist).all()
    drops = np.diff(hist) < -1e-8 * np.maximum(1.0, np.abs(hist[:-1]))
    assert not drops.any(), f"{name}.fit: objective dropped at iteration {np.flatnonzero(drops)}: {hist}"
    if ll0 is not None:
        after = model.log_likelihood(data, **per)
        # the objective is the log-likelihood, plus the log-prior for a MAP fit (FitResult)
        log_prior = getattr(model, "log_prior", None) or getattr(model, "_log_prior", None)
        prior = (lambda p: log_prior(p)) if log_prior is not None else (lambda p: 0.0)
        np.testing.assert_allclose(hist[0], ll0 + prior(start), rtol=1e-9, err_msg="history[0] vs the start")
        np.testing.assert_allclose(hist[-1], after + prior(res.params), rtol=1e-9, err_msg="history[-1] vs the fit")
        assert after >= ll0 - 1e-9 * abs(ll0)


@pytest.mark.parametrize("name", [m for m in EM if m not in ("ARPHMMRUL", "DeepARPHMMRUL")])
def test_fit_starts_from_init(name):
    """fit(init=p) starts from p, not from model.params: the history opens with p's log-likelihood."""
    c = case(name)
    other = c.start()
    other.fit(c.ys, **_lists(c.per_seq), progress=False, **{**c.fit_kw, "max_iter": 1})
    p = other.params
    log_prior = getattr(other, "log_prior", None) or getattr(other, "_log_prior", None)
    want = other.log_likelihood(c.ys, **_lists(c.per_seq)) + (log_prior(p) if log_prior is not None else 0.0)
    model = c.start()
    res = model.fit(c.ys, **_lists(c.per_seq), init=p, progress=False, **{**c.fit_kw, "max_iter": 1})
    np.testing.assert_allclose(res.log_likelihoods[0], want, rtol=1e-9)


@pytest.mark.parametrize("name", FREEZABLE)
def test_frozen_fields_stay_bit_identical(name):
    c = case(name)
    model = c.start()
    start = _fields(model.params)
    res = model.fit(c.ys, **_lists(c.per_seq), frozen=c.frozen, progress=False, **c.fit_kw)
    fitted = _fields(res.params)
    for f in c.frozen:
        assert f in start, f"{name}: {f!r} is not a field of {type(model.params).__name__}"
        assert _identical(start[f], fitted[f]), f"{name}.fit(frozen={c.frozen}): {f} changed"
    moved = [f for f in fitted if f not in c.frozen and not _identical(start[f], fitted[f])]
    assert moved, f"{name}.fit(frozen={c.frozen}) changed nothing"
    with pytest.raises(ParameterError, match=re.escape(repr(c.frozen[0]))):
        c.start().fit(c.ys, **_lists(c.per_seq), frozen=("no_such_field",), progress=False, **c.fit_kw)


@pytest.mark.parametrize("name", [m for m in MODELS if m not in UNAVAILABLE])
def test_results_are_namedtuples_with_documented_fields(name):
    """filter / smooth / forecast (predict for RUL models) return NamedTuples whose class docstring names
    every field (most_likely_states and sample_posterior return arrays of states or draws)."""
    c = case(name)
    model = c.start()
    verbs = ("predict",) if c.rul else [v for v in c.exact if v not in ("most_likely_states", "sample_posterior")]
    for verb in verbs:
        r = _call(model, verb, c, 0)
        assert isinstance(r, tuple) and hasattr(r, "_fields"), f"{name}.{verb} returned {type(r).__name__}"
        doc = inspect.getdoc(type(r)) or ""
        undocumented = [f for f in r._fields if not re.search(rf"\b{re.escape(f)}\b", doc)]
        assert not undocumented, f"{name}.{verb}: {type(r).__name__} does not document {undocumented}"


@pytest.mark.parametrize("name, verb", _pairs(lambda m: UNAVAILABLE.get(m, ())))
def test_unavailable_verbs_name_an_smc_routine(name, verb):
    c = case(name)
    model = c.start()
    args = {"forecast": {"steps": 3}, "sample_posterior": {"n_samples": 2}}.get(verb, {})
    with pytest.raises(ExactInferenceUnavailable) as err:
        getattr(model, verb)(c.ys[0], **args)
    message = str(err.value)
    routines = re.findall(r"\bsmc\.[a-z_.]+[a-z]", message)
    assert routines, f"{name}.{verb}: the message names no smc routine: {message!r}"
    import smc
    import smc.learning  # noqa: F401

    for path in routines:  # every routine named exists
        obj = smc
        for part in path.split(".")[1:]:
            obj = getattr(obj, part, None)
            assert obj is not None, f"{name}.{verb}: the message names {path}, which does not exist"
