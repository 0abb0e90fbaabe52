"""The shared numerical kernels of ``statespace._numerics`` against independent oracles.

* the exponential (scalar and eight-lane vector forms of the one IR emitter) against
  ``math.exp`` over its whole range, the cut-off included;
* normalising log-weights against ``scipy.special.logsumexp``;
* categorical draws (from probabilities, unnormalised weights and logits) against their
  probabilities, counts within binomial bounds;
* Cholesky factors and triangular solves against ``scipy.linalg``;
* the Gaussian log-density of the observed coordinates against ``scipy.stats.multivariate_normal``
  on the observed sub-vector.
"""

import math

import llvmlite.ir as ir
import numba as nb
import numpy as np
import pytest
from numba import types
from numba.extending import intrinsic

from statespace._numerics.categorical import draw, draw_from_logits
from statespace._numerics.copy import copy_into
from statespace._numerics.exp import OVERFLOW, UNDERFLOW, emit_exp, exp, exp_nonpositive
from statespace._numerics.gaussian import logpdf_observed
from statespace._numerics.linalg import cholesky, cholesky_psd, solve_lower, solve_upper_t
from statespace._numerics.weights import max_and_nan, normalise


@nb.njit
def _scalar_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = exp_nonpositive(x[i])


def _exp_eight_intrinsic(positive):
    @intrinsic
    def _exp_eight(typingctx, x, out):
        """``out[i:i+8] = exp(x[i:i+8])`` for every block of eight, through the vector form of the emitter."""
        sig = types.void(x, out)

        def codegen(context, builder, signature, args):
            from numba.core import cgutils

            vec = ir.VectorType(ir.DoubleType(), 8)
            xa = context.make_array(signature.args[0])(context, builder, args[0])
            oa = context.make_array(signature.args[1])(context, builder, args[1])
            n = builder.udiv(builder.extract_value(xa.shape, 0), ir.Constant(xa.shape.type.element, 8))
            with cgutils.for_range(builder, n) as loop:
                at = builder.mul(loop.index, ir.Constant(loop.index.type, 8))
                src = builder.bitcast(builder.gep(xa.data, [at]), vec.as_pointer())
                dst = builder.bitcast(builder.gep(oa.data, [at]), vec.as_pointer())
                builder.store(emit_exp(builder, builder.load(src, align=8), positive=positive), dst, align=8)
            return context.get_dummy_value()

        return sig, codegen

    return _exp_eight


_exp_eight = _exp_eight_intrinsic(False)
_exp_eight_positive = _exp_eight_intrinsic(True)


@nb.njit
def _vector_exp(x, out):
    _exp_eight(x, out)


def _exp_oracle(x):
    """``math.exp`` where the kernel builds the value exactly; 0 below the cut-off, for -inf and NaN."""
    return np.array([math.exp(v) if v >= UNDERFLOW else 0.0 for v in x])


def _arguments():
    rng = np.random.default_rng(0)
    edge = [
        0.0,
        -0.0,
        -1e-300,
        -0.5 * math.log(2),
        -math.log(2),
        UNDERFLOW,
        np.nextafter(UNDERFLOW, 0.0),
        np.nextafter(UNDERFLOW, -np.inf),
        -708.5,
        -745.2,
        -800.0,
        -1e300,
        -np.inf,
        np.nan,
    ]
    x = np.concatenate([-rng.random(100_000) * 710, -rng.random(20_000), -rng.random(20_000) * 1e-8, edge])
    return np.concatenate([x, np.zeros(-len(x) % 8)])


def test_exp_scalar_and_vector_within_one_ulp_of_math_exp_and_zero_below_cutoff():
    x = _arguments()
    want = _exp_oracle(x)
    for kernel in (_scalar_exp, _vector_exp):
        got = np.full_like(x, -1.0)
        kernel(x, got)
        assert np.all(np.abs(got - want) <= np.spacing(want))
        assert np.all(got[~(x >= UNDERFLOW)] == 0.0)  # below the cut-off, -inf and NaN
        assert got[x == UNDERFLOW][0] > 0.0  # the cut-off itself is inside the range


@nb.njit
def _full_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = exp(x[i])


@nb.njit
def _full_vector_exp(x, out):
    _exp_eight_positive(x, out)


def test_full_range_exp_within_one_ulp_of_math_exp_inf_beyond_and_nan_kept():
    rng = np.random.default_rng(1)
    log_max = math.log(np.finfo(np.float64).max)  # 709.78...
    edge = [log_max, np.nextafter(log_max, 0.0), np.nextafter(log_max, np.inf), 709.0, 709.5, OVERFLOW, 710.0]
    edge += [1e300, np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-300, math.log(2), UNDERFLOW, -800.0]
    x = np.concatenate([(rng.random(100_000) - 0.5) * 1418, rng.standard_normal(20_000), edge])
    x = np.concatenate([x, np.zeros(-len(x) % 8)])
    got = np.empty_like(x)
    _full_exp(x, got)
    vector = np.empty_like(x)
    _full_vector_exp(x, vector)
    np.testing.assert_array_equal(vector, got)
    with np.errstate(over="ignore"):
        want = np.array([math.exp(v) if v >= UNDERFLOW and v <= log_max else np.exp(v) for v in x])
    want[~(x >= UNDERFLOW) & ~np.isnan(x)] = 0.0  # the kernel's cut-off, as exp_nonpositive's
    finite = np.isfinite(want)
    assert np.all(np.abs(got[finite] - want[finite]) <= np.spacing(want[finite]))
    assert np.all(got[np.isposinf(want)] == np.inf) and np.isposinf(want).sum() >= 5
    assert np.isnan(got[np.isnan(x)]).all() and not np.isnan(got[~np.isnan(x)]).any()
    # on non-positive arguments the two kernels are one computation
    neg = x[x <= 0.0]
    a, b = np.empty_like(neg), np.empty_like(neg)
    _full_exp(neg, a)
    _scalar_exp(neg, b)
    np.testing.assert_array_equal(a, b)


def test_exp_integer_argument():
    @nb.njit
    def f(k):
        return exp_nonpositive(k)

    assert abs(f(-3) - math.exp(-3)) <= np.spacing(math.exp(-3))


# --- normalising log-weights --------------------------------------------------------------
def test_max_and_nan_against_numpy_for_every_length_and_placement():
    """Eight interleaved running maxima plus a tail: every length 0-40 (every tail size), the
    maximum and a NaN at every position, infinities, against ``np.nanmax`` / ``np.isnan``."""
    rng = np.random.default_rng(5)
    for N in list(range(41)) + [1000, 1003]:
        x = rng.standard_normal(N) * 100
        cases = [x]
        for i in range(N) if N <= 40 else (0, 7, 8, N - 1):
            big = x.copy()
            big[i] = 1e300
            nan = x.copy()
            nan[i] = np.nan
            inf = x.copy()
            inf[i] = np.inf if i % 2 else -np.inf
            cases += [big, nan, inf]
        cases.append(np.full(N, -np.inf))
        for c in cases:
            m, has_nan = max_and_nan(c)
            finite = c[~np.isnan(c)]
            assert m == (finite.max() if finite.size else -np.inf)
            assert has_nan == bool(np.isnan(c).any())


def test_normalise_against_scipy_logsumexp():
    from scipy.special import logsumexp

    rng = np.random.default_rng(2)
    for logw in (rng.standard_normal(1001) * 300 - 500, np.array([-np.inf, 3.0, -np.inf]), np.array([-1e300, 0.0])):
        W = np.empty_like(logw)
        lse, ess = normalise(logw, W)
        want = np.exp(logw - logsumexp(logw))
        np.testing.assert_allclose(lse, logsumexp(logw), rtol=1e-14)
        # the oracle exponentiates arguments of size ~1e3: its own relative error is ~1e-13
        np.testing.assert_allclose(W, want, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(ess, 1.0 / np.sum(want**2), rtol=1e-12)


def test_normalise_degenerate_weights_give_nan_not_nan_weights():
    for logw in ([-np.inf, -np.inf], [0.0, np.nan], [0.0, np.inf]):
        lse, ess = normalise(np.array(logw), np.empty(2))
        assert np.isnan(lse) and ess == 0.0


# --- categorical draws --------------------------------------------------------------------
@nb.njit
def _draws(p, total, n, rng):
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = draw(p, rng, total)
    return out


@nb.njit
def _logit_draws(logits, n, rng):
    w = np.empty_like(logits)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = draw_from_logits(logits, w, rng)
    return out


def _assert_frequencies(idx, p):
    """Each count within 5 binomial standard deviations of ``n p`` (a zero-probability index never drawn)."""
    n = idx.shape[0]
    counts = np.bincount(idx, minlength=p.shape[0])
    sd = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) <= 5 * sd + 1e-9), (counts, n * p)


def test_draw_frequencies_within_binomial_bounds():
    p = np.array([0.1, 0.0, 0.25, 0.05, 0.6])
    _assert_frequencies(_draws(p, 1.0, 200_000, np.random.default_rng(0)), p)
    q = np.array([3.0, 1.0, 0.0, 6.0])  # unnormalised, with its total
    _assert_frequencies(_draws(q, 10.0, 200_000, np.random.default_rng(1)), q / 10.0)


def test_draw_round_off_never_returns_a_zero_probability_index():
    # the cumulative sum falls short of the total: the fallback is the last index with mass
    p = np.array([0.5, 0.5 - 1e-9, 0.0, 0.0])
    idx = _draws(p, 1.0, 200_000, np.random.default_rng(2))
    assert set(np.unique(idx)) <= {0, 1}


def test_draw_from_logits_frequencies_and_degenerate_logits():
    logits = np.array([-1000.0, -1001.0, -np.inf, -999.5])
    p = np.exp(logits - logits.max())
    p /= p.sum()
    _assert_frequencies(_logit_draws(logits, 200_000, np.random.default_rng(3)), p)
    assert np.all(_logit_draws(np.full(3, -np.inf), 5, np.random.default_rng(4)) == -1)
    assert np.all(_logit_draws(np.array([0.0, np.nan]), 5, np.random.default_rng(4)) == -1)


# --- Cholesky factors and triangular solves -----------------------------------------------
def test_cholesky_and_solves_against_scipy_on_the_leading_block():
    import scipy.linalg as sl

    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 6):
        B = rng.standard_normal((n, n + 2))
        A = np.full((8, 8), np.nan)  # only the leading n x n block is read
        A[:n, :n] = B @ B.T + 1e-3 * np.eye(n)
        L = np.zeros((8, 8))
        assert cholesky(A, L, n)
        want = sl.cholesky(A[:n, :n], lower=True)
        np.testing.assert_allclose(np.tril(L[:n, :n]), want, rtol=1e-12, atol=1e-14)
        b = rng.standard_normal(8)
        x = b.copy()
        q = solve_lower(want, x, n)
        z = sl.solve_triangular(want, b[:n], lower=True)
        np.testing.assert_allclose(x[:n], z, rtol=1e-11)
        np.testing.assert_allclose(q, b[:n] @ np.linalg.solve(A[:n, :n], b[:n]), rtol=1e-10)  # the quadratic form
        x = b.copy()
        solve_upper_t(want, x, n)
        np.testing.assert_allclose(x[:n], sl.solve_triangular(want, b[:n], lower=True, trans="T"), rtol=1e-11)


def test_cholesky_refuses_indefinite_nan_and_overflowing_matrices():
    L = np.zeros((2, 2))
    for A in (
        [[1.0, 2.0], [2.0, 1.0]],
        [[np.nan, 0.0], [0.0, 1.0]],
        [[1e308, 0.0], [0.0, np.inf]],
        [[0.0, 0.0], [0.0, 1.0]],
    ):
        assert not cholesky(np.array(A), L, 2)


def test_cholesky_psd_factors_a_singular_covariance():
    rng = np.random.default_rng(6)
    B = rng.standard_normal((4, 2))
    A = B @ B.T  # rank 2
    L = np.full((4, 4), np.nan)
    cholesky_psd(A, L)
    assert np.all(np.isfinite(L)) and np.all(np.triu(L, 1) == 0.0)
    np.testing.assert_allclose(L @ L.T, A, atol=1e-12)


# --- Gaussian log-density with missing coordinates ----------------------------------------
def test_logpdf_observed_against_scipy_on_the_observed_subvector():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(7)
    for d in (1, 2, 3, 5):
        B = rng.standard_normal((d, d + 1))
        S = B @ B.T + 0.1 * np.eye(d)
        for _ in range(6):
            r = rng.standard_normal(d) * 2
            r[rng.random(d) < 0.4] = np.nan
            o = ~np.isnan(r)
            want = multivariate_normal(np.zeros(o.sum()), S[np.ix_(o, o)]).logpdf(r[o]) if o.any() else 0.0
            np.testing.assert_allclose(logpdf_observed(r, S), want, rtol=1e-12, atol=1e-12)


# --- copying arrays in compiled code ----------------------------------------------------
def test_copy_into_equals_numpy_assignment_for_shapes_and_layouts():
    rng = np.random.default_rng(3)
    block = rng.standard_normal((6, 5, 4))
    cases = [
        (block[2, 1], np.zeros(4)),  # a row
        (block[1:4, 2], np.zeros((3, 4))),  # rows, C-contiguous source
        (block[:, 1:3, 0], np.zeros((6, 2))),  # a strided source
        (block[0], np.zeros((4, 5)).T),  # a transposed (F-ordered) destination
        (np.arange(5, dtype=np.int64), np.zeros(5, dtype=np.int64)),
        (np.array([True, False, True]), np.zeros(3, dtype=np.bool_)),
    ]
    for src, dst in cases:
        want = dst.copy()
        want[...] = src
        copy_into(src, dst)
        np.testing.assert_array_equal(dst, want)
    with pytest.raises(ValueError, match="differ in size"):
        copy_into(np.zeros(3), np.zeros(4))
