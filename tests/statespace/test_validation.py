"""Bad input raises the library's ValueError subclasses, naming the argument (and index) at fault."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lgssm_dense import random_params

from statespace import LinearGaussianSSM
from statespace.errors import DataError, ParameterError, ShapeError, StateSpaceError
from statespace.linear_gaussian import LGSSMParams, kalman_filter, rts_smoother


def _good(**changes):
    base = dict(m0=np.zeros(2), P0=np.eye(2), F=0.9 * np.eye(2), Q=0.1 * np.eye(2), H=np.ones((1, 2)), R=[[0.5]])
    base.update(changes)
    return base


@pytest.mark.parametrize(
    "changes, error, name",
    [
        (dict(F=np.eye(3)), ShapeError, "F"),
        (dict(F=np.eye(2)[None].repeat(2, 0)[..., None]), ShapeError, "F"),
        (dict(H=np.ones((1, 3))), ShapeError, "H"),
        (dict(R=np.eye(2)), ShapeError, "R"),
        (dict(P0=np.eye(3)), ShapeError, "P0"),
        (dict(m0=np.zeros((2, 1))), ShapeError, "m0"),
        (dict(Q=[[1.0, 0.0], [0.0, -1.0]]), ParameterError, "Q"),
        (dict(Q=[[1.0, 0.5], [0.2, 1.0]]), ParameterError, "Q"),
        (dict(P0=[[1.0, 2.0], [2.0, 1.0]]), ParameterError, "P0"),
        (dict(R=[[np.nan]]), ParameterError, "R"),
        (dict(H=[[1.0, np.nan]]), ParameterError, "H"),
        (dict(F=[[1.0, np.inf], [0.0, 1.0]]), ParameterError, "F"),
        (dict(m0=[0.0, np.nan]), ParameterError, "m0"),
        (dict(B=np.ones((2, 2)), D=np.ones((1, 3))), ShapeError, "B and D"),
        (dict(B=np.ones((3, 1))), ShapeError, "B"),
        (dict(F=np.stack([np.eye(2)] * 4), Q=np.stack([np.eye(2)] * 3)), ShapeError, "time-varying"),
        (dict(Q=np.stack([np.eye(2), -np.eye(2)])), ParameterError, "Q"),
        (dict(F="abc"), ShapeError, "F"),
        (dict(Q=None), ShapeError, "Q"),
    ],
)
def test_bad_parameters(changes, error, name):
    with pytest.raises(error, match=name) as info:
        LGSSMParams(**_good(**changes))
    assert isinstance(info.value, StateSpaceError) and isinstance(info.value, ValueError)


def test_time_varying_error_names_the_time_index():
    Q = np.stack([np.eye(2), np.eye(2), [[1.0, 0.0], [0.0, -1.0]]])
    with pytest.raises(ParameterError, match="time index 2"):
        LGSSMParams(**_good(Q=Q))


def test_params_are_immutable_and_replace_validates():
    p = LGSSMParams(**_good())
    with pytest.raises(ValueError):
        p.F[0, 0] = 2.0
    with pytest.raises(ParameterError, match="R"):
        p.replace(R=[[-1.0]])
    with pytest.raises(ShapeError, match="G"):
        p.replace(G=1.0)


@pytest.fixture(scope="module")
def model():
    return LinearGaussianSSM(random_params(np.random.default_rng(0), d=2, m=2, p=1))


@pytest.mark.parametrize(
    "y, inputs, error, name",
    [
        (np.array([[0.0, np.inf]] * 3), np.zeros((3, 1)), DataError, r"y: infinite value at time step 0, coordinate 1"),
        (np.zeros((3, 3)), np.zeros((3, 1)), ShapeError, "y"),
        (np.zeros((3, 2, 1)), np.zeros((3, 1)), ShapeError, "y"),
        (np.zeros((0, 2)), np.zeros((0, 1)), ShapeError, "y"),
        (np.zeros((3, 2)), np.zeros((4, 1)), ShapeError, "inputs"),
        (np.zeros((3, 2)), None, ShapeError, "inputs"),
        (np.zeros((3, 2)), np.array([[0.0], [np.nan], [0.0]]), DataError, "inputs"),
        ([np.zeros((3, 2)), np.zeros((2, 2))], [np.zeros((3, 1))], ShapeError, "inputs"),
        ([np.zeros((3, 2)), np.zeros((2, 3))], [np.zeros((3, 1)), np.zeros((2, 1))], ShapeError, r"y\[1\]"),
        ([np.zeros((3, 2)), np.zeros((2, 2))], [np.zeros((3, 1)), np.zeros((3, 1))], ShapeError, r"inputs\[1\]"),
        # a fleet's inputs are checked in one block; what it finds off is named per sequence
        ([np.zeros((3, 2)), np.zeros((2, 2))], [np.zeros((2, 1)), np.zeros((3, 1))], ShapeError, r"inputs\[0\]"),
        ([np.zeros((3, 2)), np.zeros((2, 2))], [np.zeros((3, 2)), np.zeros((2, 2))], ShapeError, r"inputs\[0\]"),
        (
            [np.zeros((3, 2)), np.zeros((2, 2))],
            [np.zeros((3, 1)), np.array([[0.0], [np.nan]])],
            DataError,
            r"inputs\[1\]: non-finite input at time step 1, coordinate 0",
        ),
        (
            [np.zeros((3, 2)), np.zeros((2, 2))],
            [np.zeros((3, 1)), np.array([[np.inf], [0.0]])],
            DataError,
            r"inputs\[1\]: non-finite input at time step 0",
        ),
        ([], None, ShapeError, "y"),
    ],
)
def test_bad_data(model, y, inputs, error, name):
    for call in (
        model.filter,
        model.smooth,
        model.log_likelihood,
        lambda a, b: model.fit(a, b, max_iter=1, progress=False),
    ):
        with pytest.raises(error, match=name):
            call(y, inputs)


def test_inputs_to_a_model_without_inputs():
    m = LinearGaussianSSM(**_good())
    with pytest.raises(ShapeError, match="inputs"):
        kalman_filter(m.params, np.zeros((3, 1)), np.zeros((3, 1)))


def test_time_varying_length_must_match_the_data():
    p = random_params(np.random.default_rng(1), d=2, m=1, T=5, time_varying=("H",))
    with pytest.raises(ShapeError, match="y: sequence has 4 time steps"):
        rts_smoother(p, np.zeros((4, 1)))


def test_other_arguments(model):
    y = np.zeros((3, 2))
    u = np.zeros((3, 1))
    with pytest.raises(ShapeError, match="n_samples"):
        model.sample_posterior(y, 0, inputs=u)
    with pytest.raises(ShapeError, match="steps"):
        model.forecast(y, 0, inputs=u, future_inputs=np.zeros((0, 1)))
    with pytest.raises(ShapeError, match="future_inputs"):
        model.forecast(y, 2, inputs=u)
    with pytest.raises(ShapeError, match="future_inputs"):
        model.forecast(y, 2, inputs=u, future_inputs=np.zeros((3, 1)))
    with pytest.raises(ParameterError, match="tol"):
        model.fit(y, u, tol=-1.0, progress=False)
    with pytest.raises(ParameterError, match="frozen"):
        LinearGaussianSSM(model.params, frozen=("X",))
    with pytest.raises(ShapeError, match="params"):
        LinearGaussianSSM(model.params, F=np.eye(2))
    with pytest.raises(ShapeError, match="state_dim"):
        LinearGaussianSSM.initialize(y, state_dim=0)


@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.sampled_from([np.inf, -np.inf, np.nan, 1.7e308, -1.7e308]),
        ),
        min_size=1,
        max_size=40,
    ),
    allow_nan=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_has_non_finite_agrees_with_elementwise_checks(values, allow_nan):
    from statespace.validation import has_non_finite

    a = np.array(values).reshape(-1, 1)
    # the element-by-element oracle; sums that overflow (1.7e308 + 1.7e308) hold no inf themselves
    expected = bool(np.isinf(a).any() if allow_nan else (~np.isfinite(a)).any())
    assert has_non_finite(a, allow_nan) is expected


_ENTRIES = st.one_of(
    st.floats(min_value=-1e3, max_value=1e3),
    st.sampled_from([np.inf, -np.inf, np.nan, 1.7e308, -1.7e308]),
)


@st.composite
def _batches(draw):
    """Lists of sequences of every form the sequence rule meets: 2-D float64 (the fast path), 1-D,
    float32, integer and boolean arrays, other widths, empty sequences; values with NaN, inf and sums
    that overflow."""
    n = draw(st.integers(1, 6))
    out = []
    kinds = st.sampled_from(["f64", "f64", "f64", "1d", "f32", "int", "bool", "wide"])
    one_kind = draw(st.none() | kinds)  # batches of one kind are common: the block converts them in bulk
    for _ in range(n):
        T = draw(st.integers(0, 5))
        kind = one_kind or draw(kinds)
        vals = np.array(draw(st.lists(_ENTRIES, min_size=2 * T, max_size=2 * T)), dtype=np.float64)
        if kind == "1d":
            out.append(vals[:T])
        elif kind == "f32":
            with np.errstate(over="ignore"):  # 1.7e308 becomes inf, which the rule must then reject
                out.append(vals.reshape(T, 2).astype(np.float32))
        elif kind == "int":
            out.append(np.nan_to_num(np.clip(vals, -1e3, 1e3)).astype(np.int64).reshape(T, 2) % 7)
        elif kind == "bool":
            out.append(np.zeros((T, 2), dtype=bool))
        elif kind == "wide":
            out.append(np.zeros((T, 3)))
        else:
            out.append(vals.reshape(T, 2))
    return out


def _outcome(fn):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return type(exc), str(exc)


@given(
    batch=_batches(),
    obs_dim=st.sampled_from([None, 1, 2]),
    allow_nan=st.booleans(),
    rows=st.sampled_from([None, 4, 100]),
)
@settings(max_examples=400, deadline=None)
def test_a_packed_batch_holds_what_the_per_item_rule_gives_or_raises_its_error(batch, obs_dim, allow_nan, rows):
    from statespace._ragged import Tiled, pack
    from statespace.validation import as_sequences

    # the oracle: the rule applied item by item (no block)
    ref = _outcome(lambda: as_sequences("y", batch, obs_dim, allow_nan=allow_nan))
    got = _outcome(lambda: as_sequences("y", batch, obs_dim, allow_nan=allow_nan, packed=True, packed_rows=rows))
    if isinstance(ref, tuple) and isinstance(ref[0], type):  # an error: the same one, naming the same item
        assert got == ref
        return
    (ref_seqs, ref_single), (seqs, single) = ref, got
    assert single == ref_single
    assert len(seqs) == len(ref_seqs)
    for a, b in zip(seqs, ref_seqs):
        assert a.dtype == np.float64 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    n_rows = sum(len(s) for s in ref_seqs)
    # one block needs one width: without obs_dim the rule accepts items of different widths (callers
    # such as hmm.rul check the width afterwards), and those stay a list
    if single or (rows is not None and n_rows > rows) or len({s.shape[1] for s in ref_seqs}) > 1:
        assert type(seqs) is not Tiled
        return
    assert type(seqs) is Tiled
    block, _ = pack(seqs)
    assert block is seqs.block and all(np.shares_memory(s, block) for s in seqs if s.size)
    if seqs.complete:  # complete: nothing missing, nothing infinite, element by element
        assert np.isfinite(block).all()
    elif np.isfinite(block).all():  # only a sum that overflows leaves a finite batch unmarked
        with np.errstate(over="ignore", invalid="ignore"):
            assert not np.isfinite(block.sum())
