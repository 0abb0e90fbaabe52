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
on unrolling heuristics that change with ``K`` (the same 20-state step ran several
times slower or faster depending on the padding alone). Written out
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
    if not (
        isinstance(n_rows, types.IntegerLiteral)
        and isinstance(width, types.IntegerLiteral)
        and isinstance(accumulate, types.BooleanLiteral)
    ):
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
            xv = builder.shuffle_vector(
                builder.insert_element(undef, xi, ir.Constant(ir.IntType(32), 0)), undef, splat_mask
            )
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


#: Accumulator registers one row loop of :func:`outer_accumulate` keeps (of the 32 AVX-512 ones).
_ACCUMULATORS = 24


@intrinsic
def outer_accumulate(typingctx, G, x, x_offset, M, m_offset, n_rows, n_cols, m_width):
    """``G[i, j] += sum_{r < n_rows} x.flat[x_offset + r * n_cols + i] * M.flat[m_offset + r * m_width + j]``, ``i, j < n_cols``.

    A rank-``n_rows`` update of ``G`` (``n_cols`` rows, C-contiguous float64,
    at least ``m_width`` columns) from the rows of ``x`` (a C-contiguous
    ``(., n_cols)`` array, flat offset ``x_offset``) against those of ``M``
    (a C-contiguous ``(., m_width)`` array, flat offset ``m_offset``). ``n_rows``, ``n_cols`` and
    ``m_width`` are literals, and ``M`` takes one of two layouts:

    * *packed*, ``m_width == n_cols`` dividing 8 (``n_rows * n_cols`` a
      multiple of 16): eight doubles hold ``8 / n_cols`` whole rows of both
      ``x`` and ``M``; each register of ``M`` is multiplied by a lane-shuffled
      register of ``x`` per row of ``G``, and the row groups' partial sums are
      added once at the end, so no lane is padding;
    * *padded*, ``m_width`` a multiple of 8 (columns beyond ``n_cols`` zero):
      each row of ``M`` is loaded once and multiplied into every row of ``G``,
      whose accumulators stay in registers (in groups of rows when ``G`` is
      larger than the register file).

    Either way two sets of accumulators take alternate rows when registers
    allow: each accumulator is a chain of dependent FMAs, and at small
    ``n_cols`` one set alone waits on their latency.
    """
    if not all(isinstance(a, types.IntegerLiteral) for a in (n_rows, n_cols, m_width)):
        return None
    R, K, W = n_rows.literal_value, n_cols.literal_value, m_width.literal_value
    packed = W == K and LANES % K == 0
    if K < 1 or R < 1 or (packed and (R * K) % (2 * LANES)) or (not packed and W % LANES):
        return None
    sig = types.void(G, x, x_offset, M, m_offset, n_rows, n_cols, m_width)

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        vec = ir.VectorType(f64, LANES)
        i32 = ir.IntType(32)
        intp = context.get_value_type(types.intp)
        g_arr = context.make_array(signature.args[0])(context, builder, args[0])
        g_ptr = g_arr.data
        g_stride = builder.udiv(builder.extract_value(g_arr.strides, 0), ir.Constant(intp, 8))
        x_ptr = context.make_array(signature.args[1])(context, builder, args[1]).data
        m_ptr = context.make_array(signature.args[3])(context, builder, args[3]).data
        x_off = context.cast(builder, args[2], signature.args[2], types.intp)
        m_ptr = builder.gep(m_ptr, [context.cast(builder, args[4], signature.args[4], types.intp)])
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fma.v8f64")
        zero = ir.Constant(vec, [0.0] * LANES)
        undef = ir.Constant(vec, ir.Undefined)
        splat_mask = ir.Constant(ir.VectorType(i32, LANES), [0] * LANES)

        def const(v):
            return ir.Constant(intp, v)

        def vptr(base, index):
            return builder.bitcast(builder.gep(base, [index]), vec.as_pointer())

        def g_elem(i, j):
            return builder.gep(g_ptr, [builder.add(builder.mul(const(i), g_stride), const(j))])

        def fma_into(slot, a, b):
            builder.store(builder.call(fma, [a, b, builder.load(slot)]), slot)

        if packed:
            per = LANES // K  # rows per register
            masks = [
                ir.Constant(ir.VectorType(i32, LANES), [(lane // K) * K + i for lane in range(LANES)]) for i in range(K)
            ]
            sets = [[cgutils.alloca_once_value(builder, zero) for _ in range(K)] for _ in range(2)]
            with cgutils.for_range(builder, const(R * K // (2 * LANES))) as loop:
                for s, accs in enumerate(sets):
                    flat = builder.mul(builder.add(builder.mul(loop.index, const(2)), const(s)), const(LANES))
                    xv = builder.load(vptr(x_ptr, builder.add(x_off, flat)), align=8)
                    mv = builder.load(vptr(m_ptr, flat), align=8)
                    for i in range(K):
                        fma_into(accs[i], builder.shuffle_vector(xv, xv, masks[i]), mv)
            for i in range(K):
                total = builder.fadd(builder.load(sets[0][i]), builder.load(sets[1][i]))
                for j in range(K):
                    acc = builder.extract_element(total, ir.Constant(i32, j))
                    for q in range(1, per):
                        acc = builder.fadd(acc, builder.extract_element(total, ir.Constant(i32, q * K + j)))
                    p = g_elem(i, j)
                    builder.store(builder.fadd(builder.load(p), acc), p)
            return context.get_dummy_value()

        n_reg = W // LANES
        group = max(1, _ACCUMULATORS // n_reg)

        def add_row(index, rows, accs):
            mv = [
                builder.load(vptr(m_ptr, builder.add(builder.mul(index, const(W)), const(r * LANES))), align=8)
                for r in range(n_reg)
            ]
            x_base = builder.add(x_off, builder.mul(index, const(K)))
            for i in rows:
                xi = builder.load(builder.gep(x_ptr, [builder.add(x_base, const(i))]))
                xv = builder.shuffle_vector(builder.insert_element(undef, xi, ir.Constant(i32, 0)), undef, splat_mask)
                for r in range(n_reg):
                    fma_into(accs[i, r], xv, mv[r])

        for i0 in range(0, K, group):
            rows = range(i0, min(K, i0 + group))
            n_sets = 2 if 2 * len(rows) * n_reg <= _ACCUMULATORS and R >= 2 else 1
            sets = [
                {(i, r): cgutils.alloca_once_value(builder, zero) for i in rows for r in range(n_reg)}
                for _ in range(n_sets)
            ]
            with cgutils.for_range(builder, const(R // n_sets)) as loop:
                first = builder.mul(loop.index, const(n_sets))
                for s, accs in enumerate(sets):
                    add_row(builder.add(first, const(s)), rows, accs)
            if R % n_sets:
                add_row(const(R - 1), rows, sets[0])
            for i in rows:
                for r in range(n_reg):
                    p = vptr(g_ptr, builder.add(builder.mul(const(i), g_stride), const(r * LANES)))
                    total = builder.load(p, align=8)
                    for accs in sets:
                        total = builder.fadd(total, builder.load(accs[i, r]))
                    builder.store(total, p, align=8)
        return context.get_dummy_value()

    return sig, codegen
