r"""Row-shifted exponentials of emission log-likelihoods, for the scaled recursions.

The scaled forward-backward recursions read

.. math::

    B_t(k) = e^{\ell_t(k) - m_t}, \qquad m_t = \max_k \ell_t(k),

for a ``(T, K)`` array of log-likelihoods, in place. :func:`exponentiator`
gives, per ``K``, the function that does it for a block of rows. When ``K``
divides 8, eight consecutive doubles hold ``8 / K`` whole rows, and
:func:`shift_exp_rows` works on them as one register in a single pass over
memory: the row maxima by
``log2 K`` lane-swap-and-max steps, the exponential by Cody-Waite range
reduction and a polynomial. Numba has no vectorised ``exp`` without Intel's
SVML, and NumPy's needs a separate pass over memory and a call from Python.

The exponential is the library's one kernel, :func:`statespace._numerics.exp.emit_exp`
(range reduction and a degree-13 polynomial, about one ulp), applied to a whole register.
Shifted log-likelihoods below :data:`LOWEST` (``-700``) are not exponentiated but
reported, and the recursion hands the block over to log space: the exponential itself
is exact down to ``statespace._numerics.exp.UNDERFLOW`` (``-708``), but the scaled
recursions multiply these values by predicted probabilities, and a weight within
:math:`e^{8}` of the smallest normal number would lose bits to subnormal products
there. ``-inf`` gives exactly 0.
"""

from __future__ import annotations

import math

import llvmlite.ir as ir
import numba as nb
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from statespace._numerics.exp import emit_exp

from .vector_product import LANES

#: A shifted log-likelihood below this is reported (log space needed): the recursion's margin above the
#: exponential's own cut-off (``statespace._numerics.exp.UNDERFLOW``, -708), see the module docstring.
LOWEST = -700.0
#: What exponentiating a block of rows left: exponentials; shifted logs only (an entry underflows);
#: exponentials except the underflowing entries, which keep their shifted logs (:func:`restore_log_rows`).
EXPONENTIATED, SHIFTED, MIXED = 0, 1, 2


def _rows_ok(K):
    return isinstance(K, types.IntegerLiteral) and 1 <= K.literal_value <= LANES and LANES % K.literal_value == 0


def _setup(context, builder):
    f64 = ir.DoubleType()
    vec = ir.VectorType(f64, LANES)
    intp = context.get_value_type(types.intp)
    return f64, vec, intp


def _vector_ptr(builder, base, index, vec):
    return builder.bitcast(builder.gep(base, [index]), vec.as_pointer())


def _row_maxima(builder, v, K):
    """Every lane gets the maximum of its row (``K`` consecutive lanes), by lane swaps at distance 1, 2, 4."""
    maxnum = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(v.type, [v.type, v.type]), "llvm.maxnum.v8f64"
    )
    step = 1
    while step < K:
        mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [lane ^ step for lane in range(LANES)])
        v = builder.call(maxnum, [v, builder.shuffle_vector(v, v, mask)])
        step *= 2
    return v


def _splat(vec, value):
    return ir.Constant(vec, [float(value)] * LANES)


@intrinsic
def shift_exp_rows(typingctx, loglik, m, lo, hi, K):
    """Rows ``lo .. hi-1`` of ``loglik (T, K)``: ``m[t] = max_k loglik[t, k]`` and
    ``loglik[t, k] = exp(loglik[t, k] - m[t])``; whether a finite entry lay below
    :data:`LOWEST` after the shift (its weight would underflow: the caller needs log space).

    Such an entry keeps its shifted value ``loglik[t, k] - m[t]`` (negative, so
    the caller can tell it from an exponential and rebuild the row: see
    :func:`restore_log_rows`); ``-inf`` gives 0; a
    row of ``-inf`` gets ``m[t] = -inf`` and NaN. ``K`` is a literal dividing
    8, ``(hi - lo) * K`` a multiple of 8.
    """
    if not _rows_ok(K):
        return None
    Kv = K.literal_value
    sig = types.boolean(loglik, m, lo, hi, K)

    def codegen(context, builder, signature, args):
        f64, vec, intp = _setup(context, builder)
        bvec = ir.VectorType(ir.IntType(1), LANES)
        ptr = context.make_array(signature.args[0])(context, builder, args[0]).data
        m_ptr = context.make_array(signature.args[1])(context, builder, args[1]).data
        row0 = context.cast(builder, args[2], signature.args[2], types.intp)
        start = builder.mul(row0, ir.Constant(intp, Kv))
        stop = builder.mul(context.cast(builder, args[3], signature.args[3], types.intp), ir.Constant(intp, Kv))
        n_vec = builder.udiv(builder.sub(stop, start), ir.Constant(intp, LANES))
        rows_per = LANES // Kv
        flag = cgutils.alloca_once_value(builder, ir.Constant(bvec, [0] * LANES))
        with cgutils.for_range(builder, n_vec) as loop:
            at = builder.add(start, builder.mul(loop.index, ir.Constant(intp, LANES)))
            p = _vector_ptr(builder, ptr, at, vec)
            v = builder.load(p, align=8)
            mx = _row_maxima(builder, v, Kv)
            first_row = builder.add(row0, builder.mul(loop.index, ir.Constant(intp, rows_per)))
            for r in range(rows_per):
                lane = builder.extract_element(mx, ir.Constant(ir.IntType(32), r * Kv))
                builder.store(lane, builder.gep(m_ptr, [builder.add(first_row, ir.Constant(intp, r))]))
            x = builder.fsub(v, mx)
            e = emit_exp(builder, x)
            # below LOWEST: -inf gives 0, a finite value is kept and reported; NaN (a row of -inf)
            # stays NaN, so that the recursion reports the step no state explains
            ok = builder.fcmp_ordered(">=", x, _splat(vec, LOWEST))
            finite_low = builder.fcmp_ordered(">", x, _splat(vec, -math.inf))
            low = builder.and_(builder.fcmp_ordered("<", x, _splat(vec, LOWEST)), finite_low)
            builder.store(builder.or_(builder.load(flag), low), flag)
            nan = builder.fcmp_unordered("uno", x, x)
            builder.store(builder.select(ok, e, builder.select(builder.or_(low, nan), x, _splat(vec, 0.0))), p, align=8)
        any_low = builder.load(flag)
        out = ir.Constant(ir.IntType(1), 0)
        for lane in range(LANES):
            out = builder.or_(out, builder.extract_element(any_low, ir.Constant(ir.IntType(32), lane)))
        return out

    return sig, codegen


@nb.njit(cache=True, nogil=True)
def _shift_rows(loglik, m, lo, hi, K):
    """Rows ``lo .. hi-1``: ``m[t] = max_k loglik[t, k]``, ``loglik[t] -= m[t]``; whether a finite
    value fell below :data:`LOWEST` (the caller then needs log space)."""
    nb.literally(K)
    # K as a constant gets loops fully unrolled: best while the unrolled code is short; beyond,
    # the trip count read at run time sends them to LLVM's loop vectoriser instead
    Kr = K if K <= 8 else loglik.shape[1]
    under = False
    for t in range(lo, hi):
        mt = -np.inf
        for k in range(Kr):
            mt = max(mt, loglik[t, k])
        m[t] = mt
        for k in range(Kr):
            v = loglik[t, k] - mt
            under |= (v < LOWEST) & (loglik[t, k] > -np.inf)
            loglik[t, k] = v
    return under


@nb.njit(cache=True, nogil=True)
def _shift_exp_tail(loglik, m, lo, hi, K):
    """:func:`shift_exp_rows` for the few rows that do not fill a register: :func:`_shift_rows`,
    then the exponentials (a NaN row stays NaN, ``-inf`` gives 0, a reported entry keeps its value)."""
    nb.literally(K)
    under = _shift_rows(loglik, m, lo, hi, K)
    for t in range(lo, hi):
        for k in range(K):
            x = loglik[t, k]
            if x >= LOWEST or x != x:
                loglik[t, k] = np.exp(x)
            elif x == -np.inf:
                loglik[t, k] = 0.0
    return under


@nb.njit(cache=True)
def restore_log_rows(loglik, m, lo, hi):
    """Undo an exponentiation of rows ``lo .. hi-1`` (:data:`EXPONENTIATED` or :data:`MIXED`):
    a positive entry is ``exp(l - m)``, a negative one the shifted log itself, 0 or NaN was ``-inf``."""
    K = loglik.shape[1]
    for t in range(lo, hi):
        for k in range(K):
            v = loglik[t, k]
            if v > 0.0:
                loglik[t, k] = np.log(v) + m[t]
            elif v < 0.0:
                loglik[t, k] = v + m[t]
            else:
                loglik[t, k] = -np.inf


def exponentiator(K: int):
    """``exponentiate(loglik, m, lo, hi) -> EXPONENTIATED | SHIFTED | MIXED`` for ``K`` states.

    Rows ``lo .. hi-1`` of ``loglik`` become ``exp(loglik - m[:, None])`` with
    ``m`` their maxima (written), unless an entry would underflow: then
    :data:`MIXED` (``K`` dividing 8: one vectorised pass, the entry keeps its
    shifted log) or :data:`SHIFTED` (other ``K``: a shift pass, then NumPy's
    exponential, which is skipped). The kernels close over ``K`` only, so
    Numba caches them on disk.
    """
    if LANES % K == 0:

        @nb.njit(cache=True, nogil=True)
        def shift_exp(loglik, m, lo, hi):
            whole = lo + (hi - lo) // (LANES // K) * (LANES // K)  # rows in whole registers
            under = shift_exp_rows(loglik, m, lo, whole, K)
            return _shift_exp_tail(loglik, m, whole, hi, K) or under

        def exponentiate(loglik, m, lo, hi):
            return MIXED if shift_exp(loglik, m, lo, hi) else EXPONENTIATED
    else:

        @nb.njit(cache=True, nogil=True)
        def shift_rows(loglik, m, lo, hi):
            return _shift_rows(loglik, m, lo, hi, K)

        def exponentiate(loglik, m, lo, hi):
            if shift_rows(loglik, m, lo, hi):
                return SHIFTED
            np.exp(loglik[lo:hi], out=loglik[lo:hi])  # NumPy's SIMD exp; it releases the GIL
            return EXPONENTIATED

    return exponentiate
