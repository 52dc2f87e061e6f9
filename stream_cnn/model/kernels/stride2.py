"""3x3 stride-2 convs whose column reads are made unit-stride before the arithmetic.

Why: conv2d's stride-2 paths read x[2 ox + kx] in their inner loops, which LLVM compiles as gathers (the MobileNet
stem 3 -> 16 channels on 96x96 ran at ~40 GFLOP/s, 53 us; the depthwise stride-2 convs at a few GFLOP/s). Here the
even / odd columns an output row needs are copied out once per row with copy_even16 (two masked loads and a
shuffle per 16 values), so the multiply-adds run on contiguous vectors:

- conv3x3_s2_tiled16: a few input channels (the stem). Per output row the C_in * 9 tap rows (tap (ic, ky, kx) of
  output column ox is xp[ic, 2 oy + ky, 2 ox + kx]) are copied into a (C_in * 9, W_out) scratch matrix; the row is
  then a 1x1 conv of that matrix, run as pointwise_tile16 tiles of 16 output channels x 16 columns whose sums stay
  in zmm registers, bias and activation fused.
- depthwise3x3_s2_rows: per channel and output row, the three input rows' even and odd columns go to scratch and
  each output is nine FMAs on contiguous values, bias and activation fused.
"""
import numpy as np
from numba import njit

from stream_cnn.model.kernels.conv import POINTWISE16_TILE, _piecewise, _piecewise_params_jit, pointwise_tiled16_weights
from stream_cnn.model.kernels.simd import copy_even16, pointwise_tile16


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


def depthwise3x3_s2_scratch_size(out_h, out_w):
    """Floats of scratch depthwise3x3_s2_flat needs: six column phases of one input channel."""
    return 6 * (out_h + 1) * out_w


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def depthwise3x3_s2_flat(xp, w, b, out, scratch, act, alpha):
    """Depthwise (C_out == C_in, w (C, 1, 3, 3)) 3x3 stride-2 conv of the padded xp (C, Hp, Wp) into out (C, Ho,
    Wo), bias and activation (one of FLAT_ACTIVATIONS) fused, same result as conv2d: scratch
    depthwise3x3_s2_scratch_size(Ho, Wo) floats (contents ignored). Needs Hp >= 2 Ho + 1 and Wp >= 2 Wo + 1.

    Each input row 2 i + r is copied once into three planes of pitch Wo: its columns 2 j (phase 3 r), 2 j + 1
    (3 r + 1) and 2 j + 2 (3 r + 2). Output (oy, ox) at q = oy * Wo + ox then reads every tap at q or q + Wo of
    some phase, so the whole output plane is one unit-stride vector loop (no row tails: 12- and 6-wide rows would
    otherwise run scalar)."""
    c, out_h, out_w = out.shape
    size = (out_h + 1) * out_w
    pixels = out_h * out_w
    phases = scratch[:6 * size].reshape(6, size)
    ee, eo, ee1 = phases[0], phases[1], phases[2]
    oe, oo, oe1 = phases[3], phases[4], phases[5]
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    for ch in range(c):
        plane = xp[ch]
        for y in range(2 * out_h + 1):
            i = y // 2
            base = 3 * (y % 2)
            row = plane[y]
            _copy_even(row, 0, phases[base, i * out_w:], out_w)
            _copy_even(row, 1, phases[base + 1, i * out_w:], out_w)
            _copy_even(row, 2, phases[base + 2, i * out_w:], out_w)
        k = w[ch, 0]
        t00, t01, t02 = k[0, 0], k[0, 1], k[0, 2]
        t10, t11, t12 = k[1, 0], k[1, 1], k[1, 2]
        t20, t21, t22 = k[2, 0], k[2, 1], k[2, 2]
        bias = b[ch]
        dst = out[ch].reshape(pixels)
        for q in range(pixels):
            v = (bias + t00 * ee[q] + t01 * eo[q] + t02 * ee1[q]
                 + t10 * oe[q] + t11 * oo[q] + t12 * oe1[q]
                 + t20 * ee[q + out_w] + t21 * eo[q + out_w] + t22 * ee1[q + out_w])
            dst[q] = _piecewise(v, leaky, slope, cap)
