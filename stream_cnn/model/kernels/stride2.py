"""3x3 stride-2 convs whose stride-2 column reads are split into even and odd lanes in registers.

Why: conv2d's stride-2 paths read x[2 ox + kx] in their inner loops, which LLVM compiles as gathers (the MobileNet
stem 3 -> 16 channels on 97x97 -> 48x48 ran at ~40 GFLOP/s, 53 us; the depthwise stride-2 convs 9-18 us). Here,
as in simd.py's window3s2_add16, 16 outputs of one kernel row take two contiguous loads of 32 columns, two
shuffles into the even (tap 0) and odd (tap 1) columns, and the even lanes shifted by one with the 33rd column
loaded on its own (tap 2): 3 loads and 3 shuffles feed every FMA of that kernel row.

- conv3x3_s2_tiled16 (few input channels, the stem): tiles of 16 output channels x 16 columns whose sums stay in
  zmm registers (conv3s2_tile16, as simd.pointwise_tile16): stem 53 -> 12-14 us. First written as per-row copies
  of the C_in * 9 tap rows (copy_even16 into scratch) followed by pointwise_tile16 on them: 20-21 us, the copies
  costing as much as the FMAs.
- depthwise3x3_s2_tiled16: one channel, 16 outputs per chunk, the last chunk of a row masked (depthwise3s2_tile16):
  32x49x49 -> 24x24 18.0 -> 9.2 us, 64x25x25 -> 12x12 13.4 -> 4.7, 96x13x13 -> 6x6 9.2 -> 3.7. Copying the even /
  odd columns to scratch first (then unit-stride FMAs) measured 26-30 us on the first: copies cost as much as a
  depthwise conv's 9 FMAs per output.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from stream_cnn.model.kernels.conv import POINTWISE16_TILE, _piecewise_params_jit, pointwise_tiled16_weights
from stream_cnn.model.kernels.simd import (_I32, _IV, _LANES, _V, _is_matrix, _is_row, _masked_load, _masked_store,
                                           _piecewise, _splat)


def conv3x3_s2_tiled16_weights(w):
    """(C_out, C_in, 3, 3) weights as the (ceil(C_out / 16), C_in * 9, 16) blocks conv3x3_s2_tiled16 reads (at
    load), the last block shifted back to end at C_out as in pointwise_tiled16_weights."""
    c_out, c_in = w.shape[0], w.shape[1]
    return pointwise_tiled16_weights(np.ascontiguousarray(w.reshape(c_out, c_in * 9, 1, 1)))


@intrinsic
def depthwise3s2_tile16(typingctx, r0, r1, r2, start, k, bias, out, p, count, leaky, slope, cap):
    """out[p + i] = act(bias + sum over ky, kx of k[ky, kx] * r_ky[start + 2 i + kx]) for i < count (1..16), act
    conv._piecewise(v, leaky, slope, cap); out[p + count:] is not written. Per row two masked loads of columns
    start .. start + 2 count - 1 split into even and odd lanes, the third tap the even lanes shifted by one with
    column start + 2 count loaded on its own: nothing past it is read. FMAs in the order of conv2d's taps."""
    if not (all(_is_row(a) for a in (r0, r1, r2, out)) and _is_matrix(k) and bias == types.float32
            and all(isinstance(a, types.Integer) for a in (start, p, count)) and isinstance(leaky, types.Boolean)
            and slope == types.float32 and cap == types.float32):
        return None
    signature = types.void(r0, r1, r2, start, k, bias, out, p, count, leaky, slope, cap)

    def codegen(context, builder, signature, args):
        row0, row1, row2, start_v, k_v, bias_v, out_v, p_v, count_v, leaky_v, slope_v, cap_v = args
        array_types = signature.args

        def data(index, value):
            return context.make_array(array_types[index])(context, builder, value).data

        int64 = ir.IntType(64)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V, [_V, _V, _V]), "llvm.fma.v16f32")
        count32 = builder.trunc(count_v, _I32)
        read = _splat(builder, builder.mul(count32, _I32(2)))
        masks = [builder.icmp_signed("<", ir.Constant(_IV, [_LANES * h + j for j in range(_LANES)]), read)
                 for h in range(2)]
        zero = ir.Constant(_V, [0.0] * _LANES)
        taps = data(4, k_v)
        acc = _splat(builder, bias_v)
        for index, row in ((0, row0), (1, row1), (2, row2)):
            base = builder.gep(data(index, row), [start_v])
            halves = [_masked_load(builder, builder.gep(base, [int64(_LANES * h)]), masks[h], zero) for h in range(2)]
            even = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * j for j in range(_LANES)]))
            odd = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * j + 1 for j in range(_LANES)]))
            # even lane i + 1 is column 2 i + 2, except the last kept lane: that column, start + 2 count, goes in
            # at lane count - 1 (lanes past it are never stored)
            last = builder.load(builder.gep(base, [builder.mul(count_v, int64(2))]))
            shifted = builder.shuffle_vector(even, ir.Constant(_V, ir.Undefined),
                                             ir.Constant(_IV, [min(j + 1, _LANES - 1) for j in range(_LANES)]))
            after = builder.insert_element(shifted, last, builder.sub(count32, _I32(1)))
            for kx, values in enumerate((even, odd, after)):
                weight = builder.load(builder.gep(taps, [int64(3 * index + kx)]))
                acc = builder.call(fma, [_splat(builder, weight), values, acc])
        y = _piecewise(builder, leaky_v, slope_v, cap_v)(acc)
        kept = builder.icmp_signed("<", ir.Constant(_IV, list(range(_LANES))), _splat(builder, count32))
        _masked_store(builder, y, builder.gep(data(6, out_v), [p_v]), kept)
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, nogil=True, error_model="numpy")
def depthwise3x3_s2_tiled16(xp, w, b, out, act, alpha):
    """Depthwise (C_out == C_in, w (C, 1, 3, 3)) 3x3 stride-2 conv of the padded xp (C, Hp, Wp) into out (C, Ho,
    Wo), bias and activation (one of FLAT_ACTIVATIONS) fused, same result as conv2d. Needs Hp >= 2 Ho + 1 and
    Wp >= 2 Wo + 1. Each output row runs in chunks of 16 columns (depthwise3s2_tile16), the last one masked."""
    c, out_h, out_w = out.shape
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    for ch in range(c):
        k = w[ch, 0]
        bias = b[ch]
        plane = xp[ch]
        for oy in range(out_h):
            r0 = plane[2 * oy]
            r1 = plane[2 * oy + 1]
            r2 = plane[2 * oy + 2]
            dst = out[ch, oy]
            p = 0
            while p < out_w:
                depthwise3s2_tile16(r0, r1, r2, 2 * p, k, bias, dst, p, min(16, out_w - p), leaky, slope, cap)
                p += 16




@intrinsic
def conv3s2_tile16(typingctx, xp, y, start, wb, b, oc, out, q, leaky, slope, cap):
    """out[oc + j, q + i] = act(b[oc + j] + sum over ic, ky, kx of wb[9 ic + 3 ky + kx, j] *
    xp[ic, y + ky, start + 2 i + kx]) for j, i < 16: a tile of 16 output channels x 16 columns of a 3x3 stride-2
    conv, xp (C_in, Hp, Wp) and out (C_out, Q) C-contiguous, wb (C_in * 9, 16); act is conv._piecewise(v, leaky,
    slope, cap). Per input channel and kernel row two loads of 32 columns split into even and odd lanes, the third
    tap the even lanes shifted by one with column start + 32 loaded on its own (so start + 32 < Wp is all it
    reads); the 16 sums stay in zmm registers. FMAs in (ic, ky, kx) order from the bias."""
    if not (isinstance(xp, types.Array) and xp.dtype == types.float32 and xp.ndim == 3 and xp.layout == "C"
            and _is_matrix(wb) and _is_matrix(out) and _is_row(b)
            and all(isinstance(a, types.Integer) for a in (y, start, oc, q)) and isinstance(leaky, types.Boolean)
            and slope == types.float32 and cap == types.float32):
        return None
    signature = types.void(xp, y, start, wb, b, oc, out, q, leaky, slope, cap)

    def codegen(context, builder, signature, args):
        xp_v, y_v, start_v, wb_v, b_v, oc_v, out_v, q_v, leaky_v, slope_v, cap_v = args
        x_arr, wb_arr, b_arr, out_arr = [context.make_array(signature.args[k])(context, builder, args[k])
                                         for k in (0, 3, 4, 6)]
        int64 = ir.IntType(64)
        c_in, height, width = cgutils.unpack_tuple(builder, x_arr.shape, 3)
        out_pitch = cgutils.unpack_tuple(builder, out_arr.shape, 2)[1]
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V, [_V, _V, _V]), "llvm.fma.v16f32")
        sums = [cgutils.alloca_once(builder, _V) for _ in range(_LANES)]
        for j in range(_LANES):
            bias = builder.load(builder.gep(b_arr.data, [builder.add(oc_v, int64(j))]))
            builder.store(_splat(builder, bias), sums[j])
        plane_size = builder.mul(height, width)
        with cgutils.for_range(builder, c_in) as loop:
            ic = loop.index
            for ky in range(3):
                offset = builder.add(builder.add(builder.mul(ic, plane_size),
                                                 builder.mul(builder.add(y_v, int64(ky)), width)), start_v)
                base = builder.gep(x_arr.data, [offset])
                halves = [builder.load(builder.bitcast(builder.gep(base, [int64(_LANES * h)]), _V.as_pointer()),
                                       align=4) for h in range(2)]
                even = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_IV, [2 * i for i in range(_LANES)]))
                odd = builder.shuffle_vector(halves[0], halves[1],
                                             ir.Constant(_IV, [2 * i + 1 for i in range(_LANES)]))
                last = builder.insert_element(ir.Constant(_V, ir.Undefined),
                                              builder.load(builder.gep(base, [int64(2 * _LANES)])), _I32(0))
                after = builder.shuffle_vector(even, last, ir.Constant(_IV, [i + 1 for i in range(_LANES)]))
                for kx, values in enumerate((even, odd, after)):
                    row = builder.add(builder.mul(ic, int64(9)), int64(3 * ky + kx))
                    weights = builder.gep(wb_arr.data, [builder.mul(row, int64(_LANES))])
                    for j in range(_LANES):
                        weight = _splat(builder, builder.load(builder.gep(weights, [int64(j)])))
                        builder.store(builder.call(fma, [weight, values, builder.load(sums[j])]), sums[j])
        activate = _piecewise(builder, leaky_v, slope_v, cap_v)
        for j in range(_LANES):
            r = activate(builder.load(sums[j]))
            dst = builder.gep(out_arr.data, [builder.add(builder.mul(builder.add(oc_v, int64(j)), out_pitch), q_v)])
            builder.store(r, builder.bitcast(dst, _V.as_pointer()), align=4)
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, nogil=True, error_model="numpy")
def conv3x3_s2_tiled16(xp, wp, b, out, act, alpha):
    """3x3, stride 2, dilation 1, groups 1 conv of the padded xp (C_in, Hp, Wp) into out (C_out, Ho, Wo), bias
    and activation (one of FLAT_ACTIVATIONS) fused, same result as conv2d: wp = conv3x3_s2_tiled16_weights(w).
    Needs C_out >= 16, Wo >= 16, Hp >= 2 Ho + 1 and Wp >= 2 Wo + 1. Tiles of 16 output channels x 16 columns
    (conv3s2_tile16); the last tile of columns, like the last block of channels, is shifted back to end at the
    edge and recomputes a few outputs."""
    c_out, out_h, out_w = out.shape
    out_flat = out.reshape(c_out, out_h * out_w)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    for oy in range(out_h):
        start = 0
        while start < out_w:
            p = min(start, out_w - POINTWISE16_TILE)
            for block in range(wp.shape[0]):
                conv3s2_tile16(xp, 2 * oy, 2 * p, wp[block], b, min(POINTWISE16_TILE * block, c_out - POINTWISE16_TILE),
                               out_flat, oy * out_w + p, leaky, slope, cap)
            start += POINTWISE16_TILE
