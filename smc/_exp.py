r"""A vectorisable :math:`\exp` for normalising log-weights.

``math.exp`` compiles to a call into libm, which LLVM cannot vectorise without a vector
math library (no SVML here); normalising the weights was then the largest cost of a
particle-filter step. :func:`exp_nonpositive` is the textbook range reduction

.. math::

    x = k \log 2 + r, \quad k = \mathrm{round}(x / \log 2), \quad |r| \le \tfrac12 \log 2, \qquad
    e^x = 2^k\, e^r,

with :math:`\log 2` split in two (Cody-Waite, the :math:`k \log 2_{hi}` product is exact),
:math:`e^r` by its Taylor polynomial of degree 13 (truncation below :math:`10^{-17}` relative) and
:math:`2^k` assembled from its exponent bits. It is a branch-free function of one double,
so loops over particles vectorise; accuracy is about one ulp (tested against ``math.exp``).
Only for :math:`x \le 0` (log-weights minus their maximum): below :math:`-708` it returns 0
instead of a subnormal, which changes no normalised weight at double precision.
"""

import numba as nb
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # trailing bits zero: k * _LN2_HI is exact for |k| < 2**11
_LN2_LO = 1.90821492927058770002e-10
_UNDERFLOW = -708.0  # 2**k stays normal (k >= -1022) above this


@intrinsic
def _bits_as_float(typingctx, bits):
    """Reinterpret an int64 as the float64 with the same bits (a no-op bitcast)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@nb.njit(cache=True, fastmath={"contract"})
def exp_nonpositive(x):
    """:math:`e^x` for :math:`x \\le 0` (``-inf`` gives 0; NaN is the caller's to exclude)."""
    xc = x if x > _UNDERFLOW else _UNDERFLOW
    kf = float(int(xc * _LOG2E - 0.5))  # round to nearest: xc * log2(e) - 0.5 <= 0 truncates upwards
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _bits_as_float((int(kf) + 1023) << 52)
    return p * scale if x >= _UNDERFLOW else 0.0
