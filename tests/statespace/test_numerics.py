"""The shared numerical kernels of ``statespace._numerics`` against independent oracles.

* the exponential (scalar and eight-lane vector forms of the one IR emitter) against
  ``math.exp`` over its whole range, the cut-off included;
"""

import math

import llvmlite.ir as ir
import numba as nb
import numpy as np
from numba import types
from numba.extending import intrinsic

from statespace._numerics.exp import UNDERFLOW, emit_exp, exp_nonpositive


@nb.njit
def _scalar_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = exp_nonpositive(x[i])


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
            builder.store(emit_exp(builder, builder.load(src, align=8)), dst, align=8)
        return context.get_dummy_value()

    return sig, codegen


@nb.njit
def _vector_exp(x, out):
    _exp_eight(x, out)


def _exp_oracle(x):
    """``math.exp`` where the kernel builds the value exactly; 0 below the cut-off, for -inf and NaN."""
    return np.array([math.exp(v) if v >= UNDERFLOW else 0.0 for v in x])


def _arguments():
    rng = np.random.default_rng(0)
    edge = [0.0, -0.0, -1e-300, -0.5 * math.log(2), -math.log(2), UNDERFLOW, np.nextafter(UNDERFLOW, 0.0),
            np.nextafter(UNDERFLOW, -np.inf), -708.5, -745.2, -800.0, -1e300, -np.inf, np.nan]
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


def test_exp_integer_argument():
    @nb.njit
    def f(k):
        return exp_nonpositive(k)

    assert abs(f(-3) - math.exp(-3)) <= np.spacing(math.exp(-3))
