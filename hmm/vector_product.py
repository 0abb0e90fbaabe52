r"""A vector-matrix product written in LLVM vector instructions, for Numba kernels.

:func:`vecmat` computes

.. math::

    \mathrm{out}[0{:}W] \mathrel{(+)}= \sum_{i < n} x_i \, M[i, 0{:}W]

with ``n`` and the padded width ``W`` (a multiple of 8) known at compile time.
The sum runs on ``W / 8`` registers of eight doubles (two sets, even and odd
rows, to halve the dependency chain), one broadcast and one fused
multiply-add per row and register.

Why not a plain loop: in the forward-backward recursions the product *is* the
step, and whether LLVM keeps a Numba loop's accumulators in registers depends
on unrolling heuristics that change with ``K`` (measured: a 20-state step took
3 ms or 18 ms per 100,000 steps depending on the padding alone). Written out
as vector operations, the code is the same for every ``K``.
"""

from __future__ import annotations

import llvmlite.ir as ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8
_UNROLL = 16  # rows written out in straight-line code (no loop overhead at small K)


def padded_width(K: int) -> int:
    """``K`` rounded up to a whole number of registers."""
    return -(-int(K) // LANES) * LANES


@intrinsic
def vecmat(typingctx, M, x, x_offset, x_stride, out, out_offset, n_rows, width, accumulate):
    """``out.flat[o : o + width] (+)= sum_{i < n_rows} x.flat[x_offset + i * x_stride] * M[i, :width]``.

    ``M`` is C-contiguous float64 with ``width`` columns, ``x`` and ``out``
    C-contiguous float64 arrays of any dimension, addressed flat (``o`` is
    ``out_offset``): a column of a matrix is ``x_offset = j, x_stride = n_cols``,
    and no row view (which costs reference counting in a loop) is needed.
    ``n_rows``, ``width`` (a multiple of 8) and ``accumulate`` are literals.
    """
    if not (isinstance(n_rows, types.IntegerLiteral) and isinstance(width, types.IntegerLiteral)
            and isinstance(accumulate, types.BooleanLiteral)):
        return None
    K, W, acc_in = n_rows.literal_value, width.literal_value, accumulate.literal_value
    if W % LANES or K < 1:
        return None
    n_reg = W // LANES
    sig = types.void(M, x, x_offset, x_stride, out, out_offset, n_rows, width, accumulate)

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        vec = ir.VectorType(f64, LANES)
        intp = context.get_value_type(types.intp)
        m_ptr = context.make_array(signature.args[0])(context, builder, args[0]).data
        x_ptr = context.make_array(signature.args[1])(context, builder, args[1]).data
        o_ptr = context.make_array(signature.args[4])(context, builder, args[4]).data
        x_off = context.cast(builder, args[2], signature.args[2], types.intp)
        x_step = context.cast(builder, args[3], signature.args[3], types.intp)
        o_ptr = builder.gep(o_ptr, [context.cast(builder, args[5], signature.args[5], types.intp)])
        zero = ir.Constant(vec, [0.0] * LANES)
        # accumulators live in entry-block allocas, which LLVM promotes to registers
        accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(n_reg)] for _ in range(2)]
        splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        undef = ir.Constant(vec, ir.Undefined)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fma.v8f64")

        def add_row(row, parity):
            xi = builder.load(builder.gep(x_ptr, [builder.add(x_off, builder.mul(row, x_step))]))
            xv = builder.shuffle_vector(builder.insert_element(undef, xi, ir.Constant(ir.IntType(32), 0)), undef, splat_mask)
            base = builder.mul(row, ir.Constant(intp, W))
            for r in range(n_reg):
                p = builder.gep(m_ptr, [builder.add(base, ir.Constant(intp, r * LANES))])
                mv = builder.load(builder.bitcast(p, vec.as_pointer()), align=8)
                slot = accs[parity][r]
                builder.store(builder.call(fma, [xv, mv, builder.load(slot)]), slot)

        if K <= _UNROLL:
            for i in range(K):
                add_row(ir.Constant(intp, i), i % 2)
        else:
            with cgutils.for_range(builder, ir.Constant(intp, K // 2)) as loop:
                row = builder.mul(loop.index, ir.Constant(intp, 2))
                add_row(row, 0)
                add_row(builder.add(row, ir.Constant(intp, 1)), 1)
            if K % 2:
                add_row(ir.Constant(intp, K - 1), 0)
        for r in range(n_reg):
            total = builder.fadd(builder.load(accs[0][r]), builder.load(accs[1][r]))
            p = builder.bitcast(builder.gep(o_ptr, [ir.Constant(intp, r * LANES)]), vec.as_pointer())
            if acc_in:
                total = builder.fadd(total, builder.load(p, align=8))
            builder.store(total, p, align=8)
        return context.get_dummy_value()

    return sig, codegen
