r"""The exponential, as LLVM code that vectorises.

Normalising log-weights (particle filters) and exponentiating shifted emission
log-likelihoods (scaled forward-backward) both need :math:`e^x` for
:math:`x = \ell - \max \ell \le 0` over long arrays. ``math.exp`` compiles to a call into
libm, which LLVM cannot vectorise without a vector math library (Numba has none without
Intel's SVML). This module writes the exponential once, as an LLVM IR emitter
(:func:`emit_exp`) that works on one ``double`` or on a vector of doubles; the scalar
kernels :func:`exp_nonpositive` and :func:`exp` and the eight-lane row kernel of
:mod:`hmm.row_exponentials` all use it. :func:`exp` is the one for model kernels (a
log-density with :math:`e^{-x}` in it, such as stochastic volatility's emission): a
particle loop over such a kernel vectorises, where one over ``math.exp`` calls libm once
per particle.

The algorithm is the textbook range reduction

.. math::

    x = n \log 2 + r, \quad n = \lfloor x / \log 2 + \tfrac12 \rfloor, \quad |r| \le \tfrac12 \log 2, \qquad
    e^x = 2^n\, e^r,

with :math:`\log 2` split in two (Cody-Waite: :math:`n \log 2_{hi}` is exact, so :math:`r` is
exact to about :math:`2^{-60}`), :math:`e^r` by its Taylor polynomial of degree 13 in
Horner form with fused multiply-adds (remainder :math:`(\log 2/2)^{14}/14! < 10^{-17}`
relative; degree 12 leaves :math:`1.6 \cdot 10^{-16}`, close to one ulp), and :math:`2^n`
assembled from its exponent bits. Relative error: about one ulp (tested against
``math.exp`` and NumPy).

Cut-off, :data:`UNDERFLOW` :math:`= -708`: :math:`2^n` built from exponent bits must be a
normal number (:math:`n \ge -1022`, i.e. :math:`x \gtrsim -708.05`). Below it the true value is
subnormal (:math:`e^{-708} \approx 3.3 \cdot 10^{-308}`) and the kernel returns exactly 0 (as for
``-inf``; NaN also gives 0, so callers that must keep NaN test for it). This is the right
cut-off for the kernel itself: any larger one (the HMM once used :math:`-700` here) throws
away representable weights, any smaller one would need a second, subnormal code path. Relative
to a largest term of 1 (arguments are shifted by their maximum), a subnormal term changes no
normalised weight at double precision. The scaled HMM recursion has a stricter need of its own
(it multiplies the exponentials by probabilities afterwards, where values near the underflow
limit lose precision); it keeps its own hand-over threshold to log space
(:data:`hmm.row_exponentials.LOWEST`) above this cut-off.

Positive arguments (:func:`exp` only): for :math:`n > 0`, :math:`2^n` is assembled as
:math:`2 \cdot 2^{n-1}`, so that it stays representable up to :math:`n = 1024`; arguments above
:data:`OVERFLOW` are clamped to it and give ``inf`` (as does every argument whose exponential
exceeds the largest double), and NaN gives NaN, as ``math.exp``. The factor 2 is exact and
:math:`n \le 0` takes the other kernel's path, so both kernels agree bit for bit on
non-positive arguments.
"""

from __future__ import annotations

import math

import llvmlite.ir as ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Smallest argument whose exponential is built exactly (``2^n`` stays a normal number); below it, 0.
UNDERFLOW = -708.0
#: Arguments above it are clamped to it: slightly above :math:`\log` of the largest double, so their exponential is inf.
OVERFLOW = 709.79
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # trailing bits zero: n * _LN2_HI is exact for |n| < 2**11
_LN2_LO = 1.90821492927058770002e-10
_TAYLOR = [1.0 / math.factorial(i) for i in range(14)]  # degree 13


def _constant(ty, value):
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [float(value)] * ty.count)
    return ir.Constant(ty, float(value))


def emit_exp(builder, x, positive: bool = False):
    r"""Emit LLVM IR for :math:`e^x` (``x`` a ``double`` or a vector of doubles), with 0 below
    :data:`UNDERFLOW` and for ``-inf``; return the value (same type as ``x``).

    ``positive=False``: for :math:`x \le 0` (NaN gives 0). ``positive=True``: for every ``x``,
    ``inf`` beyond the largest double and NaN for NaN, as ``math.exp``.
    """
    ty = x.type
    vector = isinstance(ty, ir.VectorType)
    suffix = f"v{ty.count}f64" if vector else "f64"
    int_ty = ir.VectorType(ir.IntType(64), ty.count) if vector else ir.IntType(64)
    module = builder.module
    fma = cgutils.get_or_insert_function(module, ir.FunctionType(ty, [ty, ty, ty]), f"llvm.fma.{suffix}")
    floor = cgutils.get_or_insert_function(module, ir.FunctionType(ty, [ty]), f"llvm.floor.{suffix}")
    inside = builder.fcmp_ordered(">=", x, _constant(ty, UNDERFLOW))  # false for NaN and -inf
    xc = builder.select(inside, x, _constant(ty, UNDERFLOW))  # keeps n (and the exponent bits) in range
    if positive:
        below = builder.fcmp_ordered("<=", xc, _constant(ty, OVERFLOW))
        xc = builder.select(below, xc, _constant(ty, OVERFLOW))
    n = builder.call(floor, [builder.call(fma, [xc, _constant(ty, _LOG2E), _constant(ty, 0.5)])])
    r = builder.call(fma, [n, _constant(ty, -_LN2_HI), xc])
    r = builder.call(fma, [n, _constant(ty, -_LN2_LO), r])
    poly = _constant(ty, _TAYLOR[-1])
    for c in reversed(_TAYLOR[:-1]):
        poly = builder.call(fma, [poly, r, _constant(ty, c)])

    def integer(v):
        return ir.Constant(int_ty, [v] * ty.count) if vector else ir.Constant(int_ty, v)

    # 2^n from its exponent bits; for n > 0 (positive arguments only) 2 * 2^(n-1), so that n = 1024
    # (e^x beyond the largest double) gives inf rather than a wrapped exponent. Both factors are
    # exact, and n <= 0 takes the plain path: poly * 2^(n-1) would round to a subnormal near the cut-off.
    ni = builder.fptosi(n, int_ty)
    if positive:
        up = builder.icmp_signed(">", ni, integer(0))
        ni = builder.sub(ni, builder.zext(up, int_ty))
    bits = builder.shl(builder.add(ni, integer(1023)), integer(52))
    e = builder.fmul(poly, builder.bitcast(bits, ty))
    if positive:
        e = builder.fmul(e, builder.select(up, _constant(ty, 2.0), _constant(ty, 1.0)))
    e = builder.select(inside, e, _constant(ty, 0.0))
    if positive:  # NaN in, NaN out
        e = builder.select(builder.fcmp_unordered("uno", x, x), x, e)
    return e


@intrinsic
def exp_nonpositive(typingctx, x):
    """:math:`e^x` for :math:`x \\le 0`, as one branch-free expression (loops over it vectorise);
    0 below :data:`UNDERFLOW`, for ``-inf`` and for NaN (NaN is the caller's to exclude)."""
    if not isinstance(x, (types.Float, types.Integer)):
        return None
    sig = types.float64(x)

    def codegen(context, builder, signature, args):
        return emit_exp(builder, context.cast(builder, args[0], signature.args[0], types.float64))

    return sig, codegen


@intrinsic
def exp(typingctx, x):
    """:math:`e^x` for every argument, as one branch-free expression (loops over it vectorise);
    0 below :data:`UNDERFLOW` and for ``-inf``, ``inf`` beyond the largest double, NaN for NaN."""
    if not isinstance(x, (types.Float, types.Integer)):
        return None
    sig = types.float64(x)

    def codegen(context, builder, signature, args):
        return emit_exp(builder, context.cast(builder, args[0], signature.args[0], types.float64), positive=True)

    return sig, codegen
