"""Explicit 16-lane vector code for loops LLVM's vectorisers leave scalar, written as LLVM IR intrinsics.

Why: a 3x3 stride-2 max pool reads each window's columns at 2 ox, 2 ox + 1 and 2 ox + 2. Numba's LLVM compiles
such loops as gathers (the third column is a second stride-2 access group), a loop reading only the pair (2 ox,
2 ox + 1) vectorises but needs extra passes over scratch for the third column, and rows of 4-30 outputs are
shorter than one unrolled vector iteration, so row loops ran scalar (max_pool3s2_add 16x60x60: 13 us). In IR the
deinterleave is two shufflevectors of two contiguous loads, the third column a one-lane shift of the even lanes,
and the ragged row ends and the "same" padding are masks on the loads and the store (AVX-512 masked moves), so a
chunk of 16 outputs is a dozen vector instructions whatever the row length. The same masked stride-2 loads
serve subsample_into (copy_even16) and the strided 1x1 conv (pointwise_tile16_s2). pointwise_tile16 is a 1x1
conv tile of 16 output channels x 16 pixels whose sums are 16 zmm registers: the Numba form of it (16 statements
over a register_tile) was fully unrolled before LLVM's vectorisers ran and its bias and store loops came out
scalar (6-9 us where this takes 1.9 on 64 -> 128 channels on 4x4).

An intrinsic is inlined into its caller, so a kernel using one compiles standalone as usual (max_pool3s2_add
0.58 s CPU, pointwise_tiled16 0.36 s, empty cache). Lanes are 16 floats whatever the CPU: without AVX-512 LLVM
splits each vector in two, and the Model plans the FMA-tile kernels only with 16-float vectors (wide_vectors()).
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_LANES = 16
_V = ir.VectorType(_F32, _LANES)
_M = ir.VectorType(ir.IntType(1), _LANES)
_IV = ir.VectorType(_I32, _LANES)


def _masked_load(builder, pointer, mask, passthru):
    fnty = ir.FunctionType(_V, [_V.as_pointer(), _I32, _M, _V])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.masked.load.v16f32.p0")
    return builder.call(fn, [builder.bitcast(pointer, _V.as_pointer()), _I32(4), mask, passthru])


def _masked_store(builder, value, pointer, mask):
    fnty = ir.FunctionType(ir.VoidType(), [_V, _V.as_pointer(), _I32, _M])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.masked.store.v16f32.p0")
    builder.call(fn, [value, builder.bitcast(pointer, _V.as_pointer()), _I32(4), mask])


def _splat(builder, scalar):
    vector = builder.insert_element(ir.Constant(ir.VectorType(scalar.type, _LANES), ir.Undefined), scalar, _I32(0))
    return builder.shuffle_vector(vector, vector, ir.Constant(_IV, [0] * _LANES))


def _max(builder, a, b):
    """a > b ? a : b, lane by lane: the same select as the kernels' scalar `a if a > b else b`."""
    return builder.select(builder.fcmp_ordered(">", a, b), a, b)


def _piecewise(builder, leaky_v, slope_v, cap_v):
    """v -> conv's piecewise activation of a 16-lane vector (slope * v below zero when leaky, else 0; capped at
    cap): the FLAT_ACTIVATIONS every tile kernel fuses. The splats are made once, for all the vectors it is
    applied to."""
    zero = ir.Constant(_V, [0.0] * _LANES)
    slope_vector, cap_vector = _splat(builder, slope_v), _splat(builder, cap_v)
    leaky_mask = builder.icmp_signed("!=", _splat(builder, builder.zext(leaky_v, _I32)),
                                     ir.Constant(_IV, [0] * _LANES))

    def activate(v):
        below = builder.select(leaky_mask, builder.fmul(slope_vector, v), zero)
        y = builder.select(builder.fcmp_ordered(">", v, zero), v, below)
        return builder.select(builder.fcmp_ordered(">", y, cap_vector), cap_vector, y)
    return activate


def _is_row(ty):
    return isinstance(ty, types.Array) and ty.dtype == types.float32 and ty.ndim == 1


@intrinsic
def window3s2_add16(typingctx, r0, r1, r2, start, width, extra, res, out, p, count):
    """out[p + i] = res[p + i] + max over the rows r0, r1, r2 (float32, 1-D) of their columns start + 2 i,
    start + 2 i + 1 and start + 2 i + 2, for i < count (1..16); out[p + count:] is not written.

    Columns outside [0, width) count as -inf ("same" padding: start may be negative); column start + 32, past the
    two vectors loaded, is passed in as `extra` (float32, already the maximum over the three rows, or -inf).
    Nothing outside those columns of the rows, nor outside res[p:p + count], is read."""
    if not (all(_is_row(a) for a in (r0, r1, r2, res, out)) and extra == types.float32
            and all(isinstance(a, types.Integer) for a in (start, width, p, count))):
        return None
    signature = types.void(r0, r1, r2, start, width, extra, res, out, p, count)

    def codegen(context, builder, signature, args):
        row0, row1, row2, start_v, width_v, extra_v, res_v, out_v, p_v, count_v = args
        array_types = signature.args

        def data(index, value):
            return context.make_array(array_types[index])(context, builder, value).data

        int64 = ir.IntType(64)
        first = builder.trunc(start_v, _I32)
        width32 = builder.trunc(width_v, _I32)
        lowest = ir.Constant(_V, [float("-inf")] * _LANES)
        halves = []
        for half in range(2):
            columns = builder.add(ir.Constant(_IV, [_LANES * half + k for k in range(_LANES)]), _splat(builder, first))
            inside = builder.and_(builder.icmp_signed(">=", columns, ir.Constant(_IV, [0] * _LANES)),
                                  builder.icmp_signed("<", columns, _splat(builder, width32)))
            column_max = None
            for index, row in ((0, row0), (1, row1), (2, row2)):
                pointer = builder.gep(data(index, row), [builder.add(start_v, int64(_LANES * half))])
                values = _masked_load(builder, pointer, inside, lowest)
                column_max = values if column_max is None else _max(builder, column_max, values)
            halves.append(column_max)
        even = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * k for k in range(_LANES)]))
        odd = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * k + 1 for k in range(_LANES)]))
        tail = builder.insert_element(ir.Constant(_V, ir.Undefined), extra_v, _I32(0))
        after = builder.shuffle_vector(even, tail, ir.Constant(_IV, [k + 1 for k in range(_LANES)]))
        window_max = _max(builder, _max(builder, even, odd), after)
        kept = builder.icmp_signed("<", ir.Constant(_IV, list(range(_LANES))),
                                   _splat(builder, builder.trunc(count_v, _I32)))
        residual = _masked_load(builder, builder.gep(data(6, res_v), [p_v]), kept, ir.Constant(_V, [0.0] * _LANES))
        _masked_store(builder, builder.fadd(window_max, residual), builder.gep(data(7, out_v), [p_v]), kept)
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def window3s2_add8x2(typingctx, a0, a1, a2, b0, b1, b2, start, width, extra_a, extra_b, res_a, res_b, out_a, out_b,
                     count):
    """window3s2_add16 for two output rows of at most 8 outputs in one vector: lanes 0-7 are out_a[i] = res_a[i] +
    max over rows a0, a1, a2 of columns start + 2 i .. + 2, lanes 8-15 the same for the b rows, for i < count
    (1..8). Column start + 16 of each row triple is passed in as extra_a / extra_b. On narrow maps (Xception's
    8x8 and 15x15 pools, rows of 4 and 8 outputs) a chunk per row left most lanes masked."""
    rows = (a0, a1, a2, b0, b1, b2, res_a, res_b, out_a, out_b)
    if not (all(_is_row(a) for a in rows) and extra_a == types.float32 and extra_b == types.float32
            and all(isinstance(a, types.Integer) for a in (start, width, count))):
        return None
    signature = types.void(a0, a1, a2, b0, b1, b2, start, width, extra_a, extra_b, res_a, res_b, out_a, out_b,
                           count)

    def codegen(context, builder, signature, args):
        array_types = signature.args
        start_v, width_v, extra_a_v, extra_b_v, count_v = args[6], args[7], args[8], args[9], args[14]

        def data(index):
            return context.make_array(array_types[index])(context, builder, args[index]).data

        int64 = ir.IntType(64)
        lanes = ir.Constant(_IV, list(range(_LANES)))
        columns = builder.add(lanes, _splat(builder, builder.trunc(start_v, _I32)))
        inside = builder.and_(builder.icmp_signed(">=", columns, ir.Constant(_IV, [0] * _LANES)),
                              builder.icmp_signed("<", columns, _splat(builder, builder.trunc(width_v, _I32))))
        lowest = ir.Constant(_V, [float("-inf")] * _LANES)
        halves = []
        for first in (0, 3):
            column_max = None
            for index in range(first, first + 3):
                values = _masked_load(builder, builder.gep(data(index), [start_v]), inside, lowest)
                column_max = values if column_max is None else _max(builder, column_max, values)
            halves.append(column_max)
        even = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * k for k in range(_LANES)]))
        odd = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * k + 1 for k in range(_LANES)]))
        tail = builder.insert_element(ir.Constant(_V, ir.Undefined), extra_a_v, _I32(0))
        tail = builder.insert_element(tail, extra_b_v, _I32(1))
        after = builder.shuffle_vector(even, tail, ir.Constant(_IV, [1, 2, 3, 4, 5, 6, 7, 16,
                                                                     9, 10, 11, 12, 13, 14, 15, 17]))
        window_max = _max(builder, _max(builder, even, odd), after)
        count32 = _splat(builder, builder.trunc(count_v, _I32))
        kept_a = builder.icmp_signed("<", lanes, count32)
        kept_b = builder.and_(builder.icmp_signed(">=", lanes, ir.Constant(_IV, [8] * _LANES)),
                              builder.icmp_signed("<", lanes, builder.add(count32, ir.Constant(_IV, [8] * _LANES))))
        zero = ir.Constant(_V, [0.0] * _LANES)
        # lanes 8-15 address the b rows from 8 floats before them: masked-off lanes are never accessed
        residual = _masked_load(builder, data(10), kept_a, zero)
        residual = _masked_load(builder, builder.gep(data(11), [int64(-8)]), kept_b, residual)
        total = builder.fadd(window_max, residual)
        _masked_store(builder, total, data(12), kept_a)
        _masked_store(builder, total, builder.gep(data(13), [int64(-8)]), kept_b)
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def copy_even16(typingctx, src, start, dst, p, count):
    """dst[p + i] = src[start + 2 i] for i < count (1..16): two contiguous masked loads and one shuffle for 16
    stride-2 values (a strided 1x1 conv's subsample; row loops of 4-30 values otherwise ran scalar). Only
    src[start:start + 2 count - 1] and dst[p:p + count] are touched."""
    if not (_is_row(src) and _is_row(dst) and all(isinstance(a, types.Integer) for a in (start, p, count))):
        return None
    signature = types.void(src, start, dst, p, count)

    def codegen(context, builder, signature, args):
        src_v, start_v, dst_v, p_v, count_v = args
        src_data = context.make_array(signature.args[0])(context, builder, src_v).data
        dst_data = context.make_array(signature.args[2])(context, builder, dst_v).data
        count2 = _splat(builder, builder.sub(builder.mul(builder.trunc(count_v, _I32), _I32(2)), _I32(1)))
        zero = ir.Constant(_V, [0.0] * _LANES)
        halves = []
        for half in range(2):
            lanes = ir.Constant(_IV, [_LANES * half + k for k in range(_LANES)])
            pointer = builder.gep(src_data, [builder.add(start_v, ir.IntType(64)(_LANES * half))])
            halves.append(_masked_load(builder, pointer, builder.icmp_signed("<", lanes, count2), zero))
        even = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * k for k in range(_LANES)]))
        kept = builder.icmp_signed("<", ir.Constant(_IV, list(range(_LANES))),
                                   _splat(builder, builder.trunc(count_v, _I32)))
        _masked_store(builder, even, builder.gep(dst_data, [p_v]), kept)
        return context.get_dummy_value()

    return signature, codegen


def _is_matrix(ty):
    return isinstance(ty, types.Array) and ty.dtype == types.float32 and ty.ndim == 2 and ty.layout == "C"


def _pointwise_tile16_codegen(context, builder, x_arr, p_v, wb_arr, b_arr, oc_v, out_arr, q_v, leaky_v, slope_v,
                              cap_v, count_v):
    """The body of pointwise_tile16 / pointwise_tile16_s2: count_v None reads 16 contiguous pixels of x and stores
    16, else reads the even columns of 2 count - 1 values (stride 2) and stores count."""
    int64 = ir.IntType(64)
    c_in, x_pitch = cgutils.unpack_tuple(builder, x_arr.shape, 2)
    out_pitch = cgutils.unpack_tuple(builder, out_arr.shape, 2)[1]
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V, [_V, _V, _V]), "llvm.fma.v16f32")
    lanes = ir.Constant(_IV, list(range(_LANES)))
    if count_v is not None:
        count32 = builder.trunc(count_v, _I32)
        kept = builder.icmp_signed("<", lanes, _splat(builder, count32))
        read = _splat(builder, builder.sub(builder.mul(count32, _I32(2)), _I32(1)))
        read_masks = [builder.icmp_signed("<", ir.Constant(_IV, [_LANES * h + k for k in range(_LANES)]), read)
                      for h in range(2)]
    # allocas in the entry block, promoted to registers by LLVM (they never escape)
    sums = [cgutils.alloca_once(builder, _V) for _ in range(_LANES)]
    for j in range(_LANES):
        bias = builder.load(builder.gep(b_arr.data, [builder.add(oc_v, int64(j))]))
        builder.store(_splat(builder, bias), sums[j])
    zero = ir.Constant(_V, [0.0] * _LANES)
    with cgutils.for_range(builder, c_in) as loop:
        k = loop.index
        row = builder.gep(x_arr.data, [builder.add(builder.mul(k, x_pitch), p_v)])
        if count_v is None:
            values = builder.load(builder.bitcast(row, _V.as_pointer()), align=4)
        else:
            halves = [_masked_load(builder, builder.gep(row, [int64(_LANES * h)]), read_masks[h], zero)
                      for h in range(2)]
            values = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * i for i in range(_LANES)]))
        weights = builder.gep(wb_arr.data, [builder.mul(k, int64(_LANES))])
        for j in range(_LANES):
            weight = _splat(builder, builder.load(builder.gep(weights, [int64(j)])))
            builder.store(builder.call(fma, [weight, values, builder.load(sums[j])]), sums[j])
    activate = _piecewise(builder, leaky_v, slope_v, cap_v)
    for j in range(_LANES):
        y = activate(builder.load(sums[j]))
        row = builder.gep(out_arr.data, [builder.add(builder.mul(builder.add(oc_v, int64(j)), out_pitch), q_v)])
        if count_v is None:
            builder.store(y, builder.bitcast(row, _V.as_pointer()), align=4)
        else:
            _masked_store(builder, y, row, kept)


def _pointwise_tile16_types_ok(x, wb, b, out, ints, leaky, slope, cap):
    return (_is_matrix(x) and _is_matrix(wb) and _is_matrix(out) and _is_row(b)
            and all(isinstance(a, types.Integer) for a in ints) and isinstance(leaky, types.Boolean)
            and slope == types.float32 and cap == types.float32)


@intrinsic
def pointwise_tile16(typingctx, x, p, wb, b, oc, out, q, leaky, slope, cap):
    """out[oc + j, q + i] = act(b[oc + j] + sum over k of wb[k, j] * x[k, p + i]) for j, i < 16: a tile of 16
    output channels x 16 pixels of a 1x1 conv, x (C_in, P) and out (C_out, Q) C-contiguous, wb (C_in, 16); act is
    conv._piecewise(v, leaky, slope, cap) (the FLAT_ACTIVATIONS), same values, NaN included.

    The 16 running sums are 16 vectors (zmm registers) across the whole loop over the input channels, each step one
    load of 16 pixels of x, 16 broadcast weights and 16 FMAs. Written in Numba (16 statements over a register_tile
    of 256) LLVM fully unrolled the 16-wide loops before vectorising and left the bias and store loops scalar."""
    if not _pointwise_tile16_types_ok(x, wb, b, out, (p, oc, q), leaky, slope, cap):
        return None
    signature = types.void(x, p, wb, b, oc, out, q, leaky, slope, cap)

    def codegen(context, builder, signature, args):
        x_arr, wb_arr, b_arr, out_arr = [context.make_array(signature.args[k])(context, builder, args[k])
                                         for k in (0, 2, 3, 5)]
        _pointwise_tile16_codegen(context, builder, x_arr, args[1], wb_arr, b_arr, args[4], out_arr, args[6],
                                  args[7], args[8], args[9], None)
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def pointwise_tile16_s2(typingctx, x, p, wb, b, oc, out, q, count, leaky, slope, cap):
    """pointwise_tile16 reading every other pixel: out[oc + j, q + i] = act(b[oc + j] + sum over k of wb[k, j] *
    x[k, p + 2 i]) for i < count (1..16), j < 16. A strided 1x1 conv (Xception's shortcuts) then needs no
    subsampled copy of its input: each step loads two masked vectors and keeps their even lanes."""
    if not _pointwise_tile16_types_ok(x, wb, b, out, (p, oc, q, count), leaky, slope, cap):
        return None
    signature = types.void(x, p, wb, b, oc, out, q, count, leaky, slope, cap)

    def codegen(context, builder, signature, args):
        x_arr, wb_arr, b_arr, out_arr = [context.make_array(signature.args[k])(context, builder, args[k])
                                         for k in (0, 2, 3, 5)]
        _pointwise_tile16_codegen(context, builder, x_arr, args[1], wb_arr, b_arr, args[4], out_arr, args[6],
                                  args[8], args[9], args[10], args[7])
        return context.get_dummy_value()

    return signature, codegen
