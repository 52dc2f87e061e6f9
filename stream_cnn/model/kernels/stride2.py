"""3x3 stride-2 convs whose column reads are made unit-stride before the arithmetic.

Why: conv2d's stride-2 paths read x[2 ox + kx] in their inner loops, which LLVM compiles as gathers (the MobileNet
stem 3 -> 16 channels on 96x96 ran at ~40 GFLOP/s, 53 us; the depthwise stride-2 convs at a few GFLOP/s). Here the
even / odd columns an output row needs are copied out once per row with copy_even16 (two masked loads and a
shuffle per 16 values), so the multiply-adds run on contiguous vectors:

- conv3x3_s2_tiled16: a few input channels (the stem). Per output row the C_in * 9 tap rows (tap (ic, ky, kx) of
  output column ox is xp[ic, 2 oy + ky, 2 ox + kx]) are copied into a (C_in * 9, W_out) scratch matrix; the row is
  then a 1x1 conv of that matrix, run as pointwise_tile16 tiles of 16 output channels x 16 columns whose sums stay
  in zmm registers, bias and activation fused.
- depthwise3x3_s2_tiled16: copies cost as much as a depthwise conv's 9 FMAs per output (copying the even / odd
  columns to scratch first measured 32x49x49 -> 24x24 26-30 us against conv2d's 18), so the deinterleave happens
  in registers instead (depthwise3s2_tile16): per 16 outputs and input row two masked loads split into even and
  odd lanes, the third tap the even lanes shifted by one; measured 32x49x49 -> 24x24 18.0 -> 9.2 us, 64x25x25 ->
  12x12 13.4 -> 4.7, 96x13x13 -> 6x6 9.2 -> 3.7.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from stream_cnn.model.kernels.conv import POINTWISE16_TILE, _piecewise, _piecewise_params_jit, pointwise_tiled16_weights
from stream_cnn.model.kernels.simd import (_I32, _IV, _LANES, _V, _is_matrix, _is_row, _masked_load, _masked_store,
                                           _splat, copy_even16, pointwise_tile16)


def conv3x3_s2_tiled16_weights(w):
    """(C_out, C_in, 3, 3) weights as the (ceil(C_out / 16), C_in * 9, 16) blocks conv3x3_s2_tiled16 reads (at
    load), the last block shifted back to end at C_out as in pointwise_tiled16_weights."""
    c_out, c_in = w.shape[0], w.shape[1]
    return pointwise_tiled16_weights(np.ascontiguousarray(w.reshape(c_out, c_in * 9, 1, 1)))


def conv3x3_s2_scratch_size(c_in, out_w):
    """Floats of scratch conv3x3_s2_tiled16 needs: one output row's tap rows."""
    return c_in * 9 * out_w


@njit(nogil=True, error_model="numpy", inline="always")
def _copy_even(src, start, dst, count):
    """dst[i] = src[start + 2 i] for i < count, 16 at a time (copy_even16 touches nothing past either end)."""
    p = 0
    while p < count:
        copy_even16(src, start + 2 * p, dst, p, min(16, count - p))
        p += 16


@njit(cache=True, nogil=True, error_model="numpy")
def conv3x3_s2_tiled16(xp, wp, b, out, scratch, act, alpha):
    """3x3, stride 2, dilation 1, groups 1 conv of the padded xp (C_in, Hp, Wp) into out (C_out, Ho, Wo), bias
    and activation (one of FLAT_ACTIVATIONS) fused, same result as conv2d: wp = conv3x3_s2_tiled16_weights(w),
    scratch conv3x3_s2_scratch_size(C_in, Wo) floats (contents ignored). Needs C_out >= 16, Wo >= 16,
    Hp >= 2 Ho + 1 and Wp >= 2 Wo + 1. The last tile of columns is shifted back to end at the edge."""
    c_in = xp.shape[0]
    c_out, out_h, out_w = out.shape
    depth = c_in * 9
    taps = scratch[:depth * out_w].reshape(depth, out_w)
    out_flat = out.reshape(c_out, out_h * out_w)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    for oy in range(out_h):
        for ic in range(c_in):
            for ky in range(3):
                src = xp[ic, 2 * oy + ky]
                k = 9 * ic + 3 * ky
                _copy_even(src, 0, taps[k], out_w)
                _copy_even(src, 1, taps[k + 1], out_w)
                _copy_even(src, 2, taps[k + 2], out_w)
        start = 0
        while start < out_w:
            p = min(start, out_w - POINTWISE16_TILE)
            for block in range(wp.shape[0]):
                pointwise_tile16(taps, p, wp[block], b, min(POINTWISE16_TILE * block, c_out - POINTWISE16_TILE),
                                 out_flat, oy * out_w + p, leaky, slope, cap)
            start += POINTWISE16_TILE


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
        leaky_mask = builder.icmp_signed("!=", _splat(builder, builder.zext(leaky_v, _I32)),
                                         ir.Constant(_IV, [0] * _LANES))
        below = builder.select(leaky_mask, builder.fmul(_splat(builder, slope_v), acc), zero)
        y = builder.select(builder.fcmp_ordered(">", acc, zero), acc, below)
        cap_vector = _splat(builder, cap_v)
        y = builder.select(builder.fcmp_ordered(">", y, cap_vector), cap_vector, y)
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


