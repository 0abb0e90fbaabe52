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


# --------------------------------------------------------------------------- lanes: one sequence per lane
# The kernels of :mod:`hmm.lane_forward_backward` hold ``(n, 8)`` blocks, row ``i`` of a block being
# state ``i`` of eight sequences side by side. Written out as vector operations (as above), a step
# is a few dozen instructions for all eight; as Numba loops it stayed scalar (the small scratch
# arrays may alias the large ones, so neither of LLVM's vectorisers would reorder the lane loops).


class _Lanes:
    """What both lane kernels emit with: vector constants, addressing and the matrix product."""

    def __init__(self, context, builder):
        self.builder = builder
        self.vec = ir.VectorType(ir.DoubleType(), LANES)
        self.intp = context.get_value_type(types.intp)
        self.fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.vec, [self.vec] * 3), "llvm.fma.v8f64"
        )
        self.zero = ir.Constant(self.vec, [0.0] * LANES)
        self.one = ir.Constant(self.vec, [1.0] * LANES)
        self.inf = ir.Constant(self.vec, [float("inf")] * LANES)

    def const(self, v):
        return ir.Constant(self.intp, v)

    def at(self, base, index):
        """The eight doubles at ``base[index]`` as one vector pointer (``index`` an LLVM integer)."""
        return self.builder.bitcast(self.builder.gep(base, [index]), self.vec.as_pointer())

    def row(self, base, i):
        """Row ``i`` (eight lanes) of the block at ``base``."""
        return self.builder.load(self.at(base, self.const(LANES * i)), align=8)

    def splat(self, x):
        """The scalar ``x`` in every lane."""
        b, undef = self.builder, ir.Constant(self.vec, ir.Undefined)
        i32 = ir.IntType(32)
        mask = ir.Constant(ir.VectorType(i32, LANES), [0] * LANES)
        return b.shuffle_vector(b.insert_element(undef, x, ir.Constant(i32, 0)), undef, mask)

    def combination(self, a_ptr, indices, rows):
        """``sum_i a_ptr[indices[i]] * rows[i]``, lane by lane, on two chains of FMAs (even and odd
        terms: half the latency of one chain)."""
        b = self.builder
        acc = [None, None]
        for i, (index, r) in enumerate(zip(indices, rows)):
            xv = self.splat(b.load(b.gep(a_ptr, [self.const(index)])))
            p = i % 2
            acc[p] = b.fmul(xv, r) if acc[p] is None else b.call(self.fma, [xv, r, acc[p]])
        return acc[0] if acc[1] is None else b.fadd(acc[0], acc[1])


def _flat(context, builder, signature, args, i):
    return context.make_array(signature.args[i])(context, builder, args[i]).data


def _index(context, builder, signature, args, i):
    return context.cast(builder, args[i], signature.args[i], types.intp)


@intrinsic
def lanes_forward_step(typingctx, F, prev_offset, cur_offset, Bl, b_offset, A, c, c_offset, bad, live, tiny, n):
    r"""One forward step of eight sequences: rows ``F.flat[cur + 8k : +8]`` of the normalised filter from those at ``prev``.

    With :math:`a = A^\top \alpha_{t-1}` (``A (n, n)`` C-contiguous) and the step's weights
    ``Bl.flat[b + 8k : +8]``: :math:`v = a \odot B_t`, :math:`c_t = \sum_k v_k` (into
    ``c.flat[c_offset : +8]``) and :math:`\alpha_t = v / c_t`. ``bad`` (eight lanes) is raised to
    ``live`` where a weight from non-zero factors falls below ``tiny`` (lost to underflow) or
    :math:`c_t` is not positive and finite; such a lane divides by 1 instead (its results are
    discarded by the caller). ``n`` is a literal.
    """
    if not isinstance(n, types.IntegerLiteral):
        return None
    K = n.literal_value
    sig = types.void(F, prev_offset, cur_offset, Bl, b_offset, A, c, c_offset, bad, live, tiny, n)

    def codegen(context, builder, signature, args):
        L = _Lanes(context, builder)
        f_ptr = _flat(context, builder, signature, args, 0)
        prev = builder.gep(f_ptr, [_index(context, builder, signature, args, 1)])
        cur = builder.gep(f_ptr, [_index(context, builder, signature, args, 2)])
        b_ptr = builder.gep(_flat(context, builder, signature, args, 3), [_index(context, builder, signature, args, 4)])
        a_ptr = _flat(context, builder, signature, args, 5)
        c_ptr = builder.gep(_flat(context, builder, signature, args, 6), [_index(context, builder, signature, args, 7)])
        bad_p = L.at(_flat(context, builder, signature, args, 8), L.const(0))
        live = L.row(_flat(context, builder, signature, args, 9), 0)
        tiny_v = L.splat(args[10])
        rows = [L.row(prev, i) for i in range(K)]
        lost = L.zero
        total = L.zero
        vs = []
        for k in range(K):
            a = L.combination(a_ptr, [i * K + k for i in range(K)], rows)  # (A^T alpha)_k
            b = L.row(b_ptr, k)
            v = builder.fmul(a, b)
            small = builder.and_(
                builder.fcmp_ordered("<", v, tiny_v),
                builder.and_(builder.fcmp_ordered(">", a, L.zero), builder.fcmp_ordered(">", b, L.zero)),
            )
            lost = builder.select(small, live, lost)
            total = builder.fadd(total, v)
            vs.append(v)
        builder.store(total, L.at(c_ptr, L.const(0)), align=8)
        fine = builder.and_(builder.fcmp_ordered(">", total, L.zero), builder.fcmp_ordered("<", total, L.inf))
        lost = builder.select(fine, lost, live)
        old = builder.load(bad_p, align=8)
        builder.store(builder.select(builder.fcmp_ordered(">", lost, old), lost, old), bad_p, align=8)
        inv = builder.fdiv(L.one, builder.select(fine, total, L.one))
        for k in range(K):
            builder.store(builder.fmul(vs[k], inv), L.at(cur, L.const(LANES * k)), align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def lanes_backward_step(typingctx, Bl, b_offset, F, f_offset, fp_offset, c, c_offset, beta, G, A, live, n):
    r"""One backward step of eight sequences, fused with the smoothed marginals and the counts.

    With the normalised filter rows at ``F.flat[f + 8k]`` (step ``t``) and ``fp`` (step ``t-1``), the
    weights ``Bl.flat[b + 8k]``, :math:`c_t` at ``c.flat[c_offset]`` and the message ``beta (n, 8)``:
    :math:`b = B_t \odot \beta_t / c_t` (0 where it overflows: only where :math:`A_{ij} = 0`), the
    marginals :math:`\alpha_t \odot \beta_t` (0 where :math:`\alpha_t = 0`) written over the weights,
    ``G (n, n, 8) += (alpha_{t-1} live) b^T`` lane by lane, and ``beta`` replaced by :math:`A b`
    where ``live`` and by 1 elsewhere (a lane before its last step). ``n`` is a literal.
    """
    if not isinstance(n, types.IntegerLiteral):
        return None
    K = n.literal_value
    sig = types.void(Bl, b_offset, F, f_offset, fp_offset, c, c_offset, beta, G, A, live, n)

    def codegen(context, builder, signature, args):
        L = _Lanes(context, builder)
        b_ptr = builder.gep(_flat(context, builder, signature, args, 0), [_index(context, builder, signature, args, 1)])
        f_ptr = _flat(context, builder, signature, args, 2)
        ft = builder.gep(f_ptr, [_index(context, builder, signature, args, 3)])
        fp = builder.gep(f_ptr, [_index(context, builder, signature, args, 4)])
        c_ptr = builder.gep(_flat(context, builder, signature, args, 5), [_index(context, builder, signature, args, 6)])
        beta_ptr = _flat(context, builder, signature, args, 7)
        g_ptr = _flat(context, builder, signature, args, 8)
        a_ptr = _flat(context, builder, signature, args, 9)
        live = L.row(_flat(context, builder, signature, args, 10), 0)
        inv = builder.fdiv(L.one, L.row(c_ptr, 0))
        betas = [L.row(beta_ptr, j) for j in range(K)]
        bt = []
        for j in range(K):
            v = builder.fmul(builder.fmul(L.row(b_ptr, j), inv), betas[j])
            bt.append(builder.select(builder.fcmp_ordered("<", v, L.inf), v, L.zero))
            f = L.row(ft, j)
            mark = builder.select(builder.fcmp_ordered(">", f, L.zero), builder.fmul(f, betas[j]), L.zero)
            builder.store(mark, L.at(b_ptr, L.const(LANES * j)), align=8)
        for i in range(K):
            p = builder.fmul(L.row(fp, i), live)
            for j in range(K):
                slot = L.at(g_ptr, L.const(LANES * (i * K + j)))
                builder.store(builder.call(L.fma, [p, bt[j], builder.load(slot, align=8)]), slot, align=8)
        on = builder.fcmp_ordered(">", live, L.zero)
        for i in range(K):
            nb_i = L.combination(a_ptr, [i * K + j for j in range(K)], bt)  # (A b)_i
            builder.store(builder.select(on, nb_i, L.one), L.at(beta_ptr, L.const(LANES * i)), align=8)
        return context.get_dummy_value()

    return sig, codegen
