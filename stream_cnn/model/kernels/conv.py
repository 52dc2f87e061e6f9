"""2-D convolution (cross-correlation, like ONNX Conv / PyTorch) on a pre-padded input.

Layout: xp (C_in, Hp, Wp) already zero-padded by pad_into, w (C_out, C_in // groups, KH, KW), b (C_out,),
out (C_out, Ho, Wo). The caller sizes out; the kernel reads xp rows [oy*sh + ky*dh] and columns
[ox*sw + kx*dw], which the padding makes non-negative and in range.

Why the loops look the way they do:
- The innermost loop always runs over output columns (the contiguous W axis), and the padded input row is taken as
  a slice view starting at the tap's column offset, so the loop index is the only index: LLVM can prove it
  non-negative, drops Numba's negative-index wraparound select and vectorises.
- 3x3 stride 1 is unrolled with literal offsets (+1, +2): one pass over a row applies all nine taps. 3x3 stride 2
  likewise with the literal 2 (2*ox, 2*ox+1, 2*ox+2); other kernels apply one 3- or 5-wide kernel row per pass.
- 1x1 stride 1 is a matrix product on flat (C, H*W) planes, blocked 4 output x 4 input channels so each input value
  loaded feeds four accumulators; strided or padded 1x1 uses the same blocking one output row at a time.
- Depthwise 3x3 has one input channel per output, so each output value is computed once and written once with bias
  and activation fused.
- Accumulators live in out's rows (no temporaries); bias is the initial value, the activation runs over the output
  plane while it is still in cache.
- Every function that does the multiply-adds carries fastmath={"contract"} itself, so LLVM fuses them into FMA
  instructions. The flag does not travel with an inline="always" helper (Numba inlines its IR into the caller,
  which compiles it with the caller's flags): without it on the callers, conv2d and conv3x3_flat ran separate
  vmulps + vaddps (mini-Xception's per-op sum 445 -> 418 us with it).
- conv2d is single-threaded. conv2d_parallel (same arguments) splits output channels across threads with prange;
  a separate kernel so that small layers never touch the thread pool (waking it costs more than it saves, and
  spinning workers steal the CPU from the video decoder). use_parallel_conv() says when it pays.
"""
import numpy as np
from numba import njit, prange

from stream_cnn.model.kernels.activations import activate_inplace
from stream_cnn.model.kernels.registers import register_tile
from stream_cnn.model.kernels.simd import copy_even16, pointwise_tile16, pointwise_tile16_s2

# Multiply-accumulates from which conv2d_parallel beats conv2d when it runs once per video frame. Measured on the
# 2-vCPU VM this project runs on: 3x3 16->32 on 32x32 (4.7M MACs) takes 120 us serial and 62 us on 2 threads
# back-to-back, but 6900 us on 2 threads when called every 33 ms, because the idle worker thread takes ~7 ms to
# be woken. So threads only pay when half a layer's serial time (~35 GMAC/s) exceeds that wake-up: ~500M MACs.
PARALLEL_MIN_MACS = 500_000_000


@njit(cache=True, nogil=True, error_model="numpy")
def pad_into(x, xp, top, left):
    """Copy x (C, H, W) into xp[:, top:top+H, left:left+W]; the border of xp is left untouched.

    Rows 8 to 15 wide are copied as two 8-float blocks (the second shifted back to end at the row's end) through
    a register tile: the plain loop ran them as scalar tail (16-float vectors), and straight from x to xp LLVM
    keeps the copy scalar since the two may alias. Measured 64x15x15 3.8 -> 1.9 us, 128x8x8 1.9 -> 1.6. (The two
    ways in one loop nest slowed the plain one: 16x60x60 6.1 -> 7.3 us.)"""
    channels, height, width = x.shape
    if 8 <= width < 16:
        copy = register_tile(8)
        for c in range(channels):
            for y in range(height):
                src = x[c, y]
                dst = xp[c, top + y, left:left + width]
                for s in (0, width - 8):
                    a = src[s:s + 8]
                    d = dst[s:s + 8]
                    for i in range(8):
                        copy[i] = a[i]
                    for i in range(8):
                        d[i] = copy[i]
        return
    for c in range(channels):
        for y in range(height):
            src = x[c, y]
            dst = xp[c, top + y, left:left + width]
            for i in range(width):
                dst[i] = src[i]


@njit(cache=True, nogil=True, error_model="numpy")
def subsample_into(x, out, stride_h, stride_w, top, left):
    """out[c, oy, ox] = x[c, top + oy * stride_h, left + ox * stride_w] for the (C, Ho, Wo) of out: the pixels a
    strided 1x1 conv reads, made dense so the stride-1 pointwise path can run on them. (top, left) is the corner
    of the map inside x: (0, 0) for a plain map, the padding for a map kept in its reader's padded buffer.
    Stride 2 copies 16 values at a time with copy_even16 (kernels/simd.py): a loop over src[2 ox] ran scalar on
    rows of 4-30 values (Xception's shortcuts 8x30x30 2.0 -> 1.4 us, 16x15x15 1.5 -> 1.0)."""
    channels, out_h, out_w = out.shape
    for c in range(channels):
        for oy in range(out_h):
            src = x[c, top + oy * stride_h]
            dst = out[c, oy]
            if stride_w == 2:
                p = 0
                while p < out_w:
                    copy_even16(src, left + 2 * p, dst, p, min(16, out_w - p))
                    p += 16
            else:
                src = src[left:]
                for ox in range(out_w):
                    dst[ox] = src[ox * stride_w]


@njit(cache=True, nogil=True, error_model="numpy")
def _fill_bias(out, b, oc):
    plane = out[oc]
    value = b[oc]
    for oy in range(plane.shape[0]):
        row = plane[oy]
        for ox in range(row.shape[0]):
            row[ox] = value


@njit(cache=True, nogil=True, error_model="numpy")
def _finish_plane(out, oc, act, alpha):
    if act != 0:
        activate_inplace(out[oc].reshape(out.shape[1] * out.shape[2]), act, alpha)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _conv_general(xp, w, b, out, sh, sw, dh, dw, groups, act, alpha, oc_start, oc_stop):
    """Any kernel size, stride, dilation and grouping: one kernel row (or one tap) per pass over an output row.

    Kernel rows 3 or 5 wide at stride 1, dilation 1 are unrolled (one pass applies the whole row); stride 2 has
    its own loop with the literal 2 so LLVM can recognise the even/odd interleaved loads.
    """
    c_out, out_h, out_w = out.shape
    cin_per_group = w.shape[1]
    kh, kw = w.shape[2], w.shape[3]
    cout_per_group = c_out // groups
    row_unrolled = sw == 1 and dw == 1 and (kw == 3 or kw == 5)
    for oc in range(oc_start, oc_stop):
        _fill_bias(out, b, oc)
        ic_base = (oc // cout_per_group) * cin_per_group
        for icg in range(cin_per_group):
            ic = ic_base + icg
            for ky in range(kh):
                taps = w[oc, icg, ky]
                if row_unrolled and kw == 3:
                    t0, t1, t2 = taps[0], taps[1], taps[2]
                    for oy in range(out_h):
                        out_row = out[oc, oy]
                        r = xp[ic, oy * sh + ky * dh]
                        for ox in range(out_w):
                            out_row[ox] += t0 * r[ox] + t1 * r[ox + 1] + t2 * r[ox + 2]
                elif row_unrolled:
                    t0, t1, t2, t3, t4 = taps[0], taps[1], taps[2], taps[3], taps[4]
                    for oy in range(out_h):
                        out_row = out[oc, oy]
                        r = xp[ic, oy * sh + ky * dh]
                        for ox in range(out_w):
                            out_row[ox] += (t0 * r[ox] + t1 * r[ox + 1] + t2 * r[ox + 2]
                                            + t3 * r[ox + 3] + t4 * r[ox + 4])
                else:
                    for kx in range(kw):
                        tap = taps[kx]
                        for oy in range(out_h):
                            out_row = out[oc, oy]
                            seg = xp[ic, oy * sh + ky * dh, kx * dw:]
                            if sw == 1:
                                for ox in range(out_w):
                                    out_row[ox] += tap * seg[ox]
                            elif sw == 2:
                                for ox in range(out_w):
                                    out_row[ox] += tap * seg[2 * ox]
                            else:
                                for ox in range(out_w):
                                    out_row[ox] += tap * seg[ox * sw]
        _finish_plane(out, oc, act, alpha)


@njit(nogil=True, error_model="numpy", inline="always")
def _taps3x3(k):
    """The nine weights of one 3x3 kernel k (3, 3), row-major."""
    return k[0, 0], k[0, 1], k[0, 2], k[1, 0], k[1, 1], k[1, 2], k[2, 0], k[2, 1], k[2, 2]


@njit(nogil=True, error_model="numpy", inline="always")
def _window3x3(r0, r1, r2, i):
    """The nine input values under a 3x3 kernel whose left column is i in the rows r0, r1, r2. Callers pass the
    loop index itself (ox, or the literal 2 * ox), so every load keeps a literal offset and the loop vectorises."""
    return r0[i], r0[i + 1], r0[i + 2], r1[i], r1[i + 1], r1[i + 2], r2[i], r2[i + 1], r2[i + 2]


@njit(nogil=True, error_model="numpy", inline="always")
def _dot9(t, v):
    """t[0] * v[0] + ... + t[8] * v[8], summed left to right."""
    return (t[0] * v[0] + t[1] * v[1] + t[2] * v[2] + t[3] * v[3] + t[4] * v[4] + t[5] * v[5]
            + t[6] * v[6] + t[7] * v[7] + t[8] * v[8])


@njit(nogil=True, error_model="numpy", inline="always")
def _biased_dot9(bias, t, v):
    """bias + t[0] * v[0] + ... + t[8] * v[8], summed left to right from the bias."""
    return (bias + t[0] * v[0] + t[1] * v[1] + t[2] * v[2] + t[3] * v[3] + t[4] * v[4] + t[5] * v[5]
            + t[6] * v[6] + t[7] * v[7] + t[8] * v[8])


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _conv3x3_s2_single(xp, w, b, out, groups, act, alpha, oc_start, oc_stop):
    """3x3, stride 2, dilation 1, any grouping, one output channel at a time: nine taps, literal stride 2."""
    c_out, out_h, out_w = out.shape
    cin_per_group = w.shape[1]
    cout_per_group = c_out // groups
    for oc in range(oc_start, oc_stop):
        _fill_bias(out, b, oc)
        ic_base = (oc // cout_per_group) * cin_per_group
        for icg in range(cin_per_group):
            ic = ic_base + icg
            taps = _taps3x3(w[oc, icg])
            plane = xp[ic]
            for oy in range(out_h):
                r0 = plane[2 * oy]
                r1 = plane[2 * oy + 1]
                r2 = plane[2 * oy + 2]
                out_row = out[oc, oy]
                for ox in range(out_w):
                    out_row[ox] += _dot9(taps, _window3x3(r0, r1, r2, 2 * ox))
        _finish_plane(out, oc, act, alpha)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _conv3x3_s2(xp, w, b, out, groups, act, alpha, oc_start, oc_stop):
    """3x3, stride 2, dilation 1, any grouping: two output channels per pass over the input rows.

    Stride-2 loads are gathers, so sharing each one between two channels pays even more than at stride 1
    (measured 18 -> 26 GFLOP/s; four channels with their weights read from w in the loop was slower, 11).
    Same loop as _conv3x3_s1 but for the literal 2: one function with the stride as an argument (a branch per
    row between the two inner loops) measured 1.4-2x slower.
    """
    c_out, out_h, out_w = out.shape
    cin_per_group = w.shape[1]
    cout_per_group = c_out // groups
    oc = oc_start
    while oc < oc_stop:
        if oc + 1 >= oc_stop or oc // cout_per_group != (oc + 1) // cout_per_group:
            _conv3x3_s2_single(xp, w, b, out, groups, act, alpha, oc, oc + 1)
            oc += 1
            continue
        _fill_bias(out, b, oc)
        _fill_bias(out, b, oc + 1)
        ic_base = (oc // cout_per_group) * cin_per_group
        for icg in range(cin_per_group):
            ic = ic_base + icg
            taps_a = _taps3x3(w[oc, icg])
            taps_c = _taps3x3(w[oc + 1, icg])
            plane = xp[ic]
            for oy in range(out_h):
                r0 = plane[2 * oy]
                r1 = plane[2 * oy + 1]
                r2 = plane[2 * oy + 2]
                out_a = out[oc, oy]
                out_c = out[oc + 1, oy]
                for ox in range(out_w):
                    window = _window3x3(r0, r1, r2, 2 * ox)
                    out_a[ox] += _dot9(taps_a, window)
                    out_c[ox] += _dot9(taps_c, window)
        _finish_plane(out, oc, act, alpha)
        _finish_plane(out, oc + 1, act, alpha)
        oc += 2


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _conv3x3_s1_single(xp, w, b, out, groups, act, alpha, oc_start, oc_stop):
    """3x3, stride 1, dilation 1, any grouping, one output channel at a time: nine taps unrolled."""
    c_out, out_h, out_w = out.shape
    cin_per_group = w.shape[1]
    cout_per_group = c_out // groups
    for oc in range(oc_start, oc_stop):
        _fill_bias(out, b, oc)
        ic_base = (oc // cout_per_group) * cin_per_group
        for icg in range(cin_per_group):
            ic = ic_base + icg
            taps = _taps3x3(w[oc, icg])
            plane = xp[ic]
            for oy in range(out_h):
                r0 = plane[oy]
                r1 = plane[oy + 1]
                r2 = plane[oy + 2]
                out_row = out[oc, oy]
                for ox in range(out_w):
                    out_row[ox] += _dot9(taps, _window3x3(r0, r1, r2, ox))
        _finish_plane(out, oc, act, alpha)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _conv3x3_s1(xp, w, b, out, groups, act, alpha, oc_start, oc_stop):
    """3x3, stride 1, dilation 1, any grouping: two output channels per pass over the input rows.

    The nine input values loaded per output column feed both channels' accumulators, halving the input traffic
    (measured 80 -> 98 GFLOP/s for 16->32 on 32x32, 62 -> 113 for 64->64 on 56x56).
    """
    c_out, out_h, out_w = out.shape
    cin_per_group = w.shape[1]
    cout_per_group = c_out // groups
    oc = oc_start
    while oc < oc_stop:
        if oc + 1 >= oc_stop or oc // cout_per_group != (oc + 1) // cout_per_group:
            _conv3x3_s1_single(xp, w, b, out, groups, act, alpha, oc, oc + 1)
            oc += 1
            continue
        _fill_bias(out, b, oc)
        _fill_bias(out, b, oc + 1)
        ic_base = (oc // cout_per_group) * cin_per_group
        for icg in range(cin_per_group):
            ic = ic_base + icg
            taps_a = _taps3x3(w[oc, icg])
            taps_c = _taps3x3(w[oc + 1, icg])
            plane = xp[ic]
            for oy in range(out_h):
                r0 = plane[oy]
                r1 = plane[oy + 1]
                r2 = plane[oy + 2]
                out_a = out[oc, oy]
                out_c = out[oc + 1, oy]
                for ox in range(out_w):
                    window = _window3x3(r0, r1, r2, ox)
                    out_a[ox] += _dot9(taps_a, window)
                    out_c[ox] += _dot9(taps_c, window)
        _finish_plane(out, oc, act, alpha)
        _finish_plane(out, oc + 1, act, alpha)
        oc += 2


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _depthwise3x3_s1(xp, w, b, out, groups, act, alpha, oc_start, oc_stop):
    """3x3 stride 1 with one input channel per output (depthwise, any channel multiplier): write each value once.

    Two output rows per pass: they share two of their three input rows, so 12 loads feed 18 FMAs instead of 18
    loads for 18 (depthwise is load-bound: measured 12.8 -> 9.3 us for 16 channels on 60x60, 9.9 -> 7.5 for 32
    on 30x30; on 15x15 rows no faster, so narrow maps keep one row per pass; four rows per pass was slower).
    """
    c_out, out_h, out_w = out.shape
    cout_per_group = c_out // groups
    for oc in range(oc_start, oc_stop):
        ic = oc // cout_per_group
        taps = _taps3x3(w[oc, 0])
        bias = b[oc]
        plane = xp[ic]
        oy = 0
        while out_w >= 24 and oy + 1 < out_h:
            r0 = plane[oy]
            r1 = plane[oy + 1]
            r2 = plane[oy + 2]
            r3 = plane[oy + 3]
            top = out[oc, oy]
            bottom = out[oc, oy + 1]
            for ox in range(out_w):
                a0, a1, a2 = r0[ox], r0[ox + 1], r0[ox + 2]
                b0, b1, b2 = r1[ox], r1[ox + 1], r1[ox + 2]
                c0, c1, c2 = r2[ox], r2[ox + 1], r2[ox + 2]
                d0, d1, d2 = r3[ox], r3[ox + 1], r3[ox + 2]
                top[ox] = _biased_dot9(bias, taps, (a0, a1, a2, b0, b1, b2, c0, c1, c2))
                bottom[ox] = _biased_dot9(bias, taps, (b0, b1, b2, c0, c1, c2, d0, d1, d2))
            oy += 2
        while oy < out_h:
            r0 = plane[oy]
            r1 = plane[oy + 1]
            r2 = plane[oy + 2]
            out_row = out[oc, oy]
            for ox in range(out_w):
                out_row[ox] = _biased_dot9(bias, taps, _window3x3(r0, r1, r2, ox))
            oy += 1
        _finish_plane(out, oc, act, alpha)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _depthwise3x3_s2(xp, w, b, out, groups, act, alpha, oc_start, oc_stop):
    """Depthwise 3x3 stride 2 (MobileNet's downsampling): each output written once, literal stride 2."""
    c_out, out_h, out_w = out.shape
    cout_per_group = c_out // groups
    for oc in range(oc_start, oc_stop):
        ic = oc // cout_per_group
        taps = _taps3x3(w[oc, 0])
        bias = b[oc]
        plane = xp[ic]
        for oy in range(out_h):
            r0 = plane[2 * oy]
            r1 = plane[2 * oy + 1]
            r2 = plane[2 * oy + 2]
            out_row = out[oc, oy]
            for ox in range(out_w):
                out_row[ox] = _biased_dot9(bias, taps, _window3x3(r0, r1, r2, 2 * ox))
        _finish_plane(out, oc, act, alpha)


@njit(nogil=True, error_model="numpy", inline="always")
def _weights1x4(w, oc, ic):
    """The 1x1 weights of output channel oc for input channels ic..ic+3."""
    return w[oc, ic, 0, 0], w[oc, ic + 1, 0, 0], w[oc, ic + 2, 0, 0], w[oc, ic + 3, 0, 0]


@njit(nogil=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _pointwise_4x8(x_flat, w, oc, ic, o0, o1, o2, o3, pixels, first, b0, b1, b2, b3, floor):
    """o_j = (b_j if first else o_j) + sum over input channels ic..ic+7 of w[oc + j, i] * x_flat[i]: eight input
    rows per pass over the four output rows, so the accumulators are loaded and stored half as often as with four
    (~15% faster). The first block starts from the bias instead of reading a bias-filled row (one pass over the
    outputs less: 8 -> 16 channels on 60x60 17 -> 12 us), and each sum is one FMA chain starting from the
    accumulator (8 instructions for 8 products, not a multiply, 7 FMAs and an add). Values below floor become
    floor: -inf leaves them alone (NaN too: the test is t < floor), 0 on the last block is a fused relu (saves the
    activation pass over the outputs, 15.5 -> 11.6 us for 8 -> 16 channels on 60x60)."""
    x0, x1, x2, x3 = x_flat[ic], x_flat[ic + 1], x_flat[ic + 2], x_flat[ic + 3]
    x4, x5, x6, x7 = x_flat[ic + 4], x_flat[ic + 5], x_flat[ic + 6], x_flat[ic + 7]
    k = w[oc, ic:ic + 8, 0, 0]
    a0, a1, a2, a3, a4, a5, a6, a7 = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
    k = w[oc + 1, ic:ic + 8, 0, 0]
    c0, c1, c2, c3, c4, c5, c6, c7 = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
    k = w[oc + 2, ic:ic + 8, 0, 0]
    d0, d1, d2, d3, d4, d5, d6, d7 = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
    k = w[oc + 3, ic:ic + 8, 0, 0]
    e0, e1, e2, e3, e4, e5, e6, e7 = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
    if first:
        for p in range(pixels):
            v0, v1, v2, v3 = x0[p], x1[p], x2[p], x3[p]
            v4, v5, v6, v7 = x4[p], x5[p], x6[p], x7[p]
            t0 = b0 + a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4 + a5 * v5 + a6 * v6 + a7 * v7
            o0[p] = t0 if not t0 < floor else floor
            t1 = b1 + c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4 + c5 * v5 + c6 * v6 + c7 * v7
            o1[p] = t1 if not t1 < floor else floor
            t2 = b2 + d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3 + d4 * v4 + d5 * v5 + d6 * v6 + d7 * v7
            o2[p] = t2 if not t2 < floor else floor
            t3 = b3 + e0 * v0 + e1 * v1 + e2 * v2 + e3 * v3 + e4 * v4 + e5 * v5 + e6 * v6 + e7 * v7
            o3[p] = t3 if not t3 < floor else floor
    else:
        for p in range(pixels):
            v0, v1, v2, v3 = x0[p], x1[p], x2[p], x3[p]
            v4, v5, v6, v7 = x4[p], x5[p], x6[p], x7[p]
            t0 = o0[p] + a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4 + a5 * v5 + a6 * v6 + a7 * v7
            o0[p] = t0 if not t0 < floor else floor
            t1 = o1[p] + c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4 + c5 * v5 + c6 * v6 + c7 * v7
            o1[p] = t1 if not t1 < floor else floor
            t2 = o2[p] + d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3 + d4 * v4 + d5 * v5 + d6 * v6 + d7 * v7
            o2[p] = t2 if not t2 < floor else floor
            t3 = o3[p] + e0 * v0 + e1 * v1 + e2 * v2 + e3 * v3 + e4 * v4 + e5 * v5 + e6 * v6 + e7 * v7
            o3[p] = t3 if not t3 < floor else floor


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _pointwise(xp, w, b, out, act, alpha, oc_start, oc_stop):
    """1x1 stride 1, groups 1, no padding: out (C_out, P) = W (C_out, C_in) @ x (C_in, P), P = H*W.

    Blocked 4 output x 8 (then 4) input channels: each input value loaded per pixel feeds four output rows.
    """
    c_in = xp.shape[0]
    pixels = out.shape[1] * out.shape[2]
    x_flat = xp.reshape(c_in, pixels)
    out_flat = out.reshape(out.shape[0], pixels)
    oc = oc_start
    while oc < oc_stop:
        if oc + 4 <= oc_stop:
            o0 = out_flat[oc]
            o1 = out_flat[oc + 1]
            o2 = out_flat[oc + 2]
            o3 = out_flat[oc + 3]
            b0, b1, b2, b3 = b[oc], b[oc + 1], b[oc + 2], b[oc + 3]
            if c_in < 8:
                for p in range(pixels):
                    o0[p] = b0
                    o1[p] = b1
                    o2[p] = b2
                    o3[p] = b3
            # relu rides on the last block of eight input channels when there is no remainder block after it
            fused_relu = act == 1 and c_in % 8 == 0
            ic = 0
            while ic + 8 <= c_in:
                floor = np.float32(0.0) if fused_relu and ic + 8 == c_in else np.float32(-np.inf)
                _pointwise_4x8(x_flat, w, oc, ic, o0, o1, o2, o3, pixels, ic == 0, b0, b1, b2, b3, floor)
                ic += 8
            while ic + 4 <= c_in:
                x0 = x_flat[ic]
                x1 = x_flat[ic + 1]
                x2 = x_flat[ic + 2]
                x3 = x_flat[ic + 3]
                a00, a01, a02, a03 = _weights1x4(w, oc, ic)
                a10, a11, a12, a13 = _weights1x4(w, oc + 1, ic)
                a20, a21, a22, a23 = _weights1x4(w, oc + 2, ic)
                a30, a31, a32, a33 = _weights1x4(w, oc + 3, ic)
                for p in range(pixels):
                    v0 = x0[p]
                    v1 = x1[p]
                    v2 = x2[p]
                    v3 = x3[p]
                    o0[p] += a00 * v0 + a01 * v1 + a02 * v2 + a03 * v3
                    o1[p] += a10 * v0 + a11 * v1 + a12 * v2 + a13 * v3
                    o2[p] += a20 * v0 + a21 * v1 + a22 * v2 + a23 * v3
                    o3[p] += a30 * v0 + a31 * v1 + a32 * v2 + a33 * v3
                ic += 4
            while ic < c_in:
                x0 = x_flat[ic]
                a0, a1, a2, a3 = w[oc, ic, 0, 0], w[oc + 1, ic, 0, 0], w[oc + 2, ic, 0, 0], w[oc + 3, ic, 0, 0]
                for p in range(pixels):
                    v0 = x0[p]
                    o0[p] += a0 * v0
                    o1[p] += a1 * v0
                    o2[p] += a2 * v0
                    o3[p] += a3 * v0
                ic += 1
            if not fused_relu:
                for j in range(4):
                    _finish_plane(out, oc + j, act, alpha)
            oc += 4
        else:
            o0 = out_flat[oc]
            b0 = b[oc]
            for p in range(pixels):
                o0[p] = b0
            for ic in range(c_in):
                x0 = x_flat[ic]
                a0 = w[oc, ic, 0, 0]
                for p in range(pixels):
                    o0[p] += a0 * x0[p]
            _finish_plane(out, oc, act, alpha)
            oc += 1


@njit(nogil=True, error_model="numpy", inline="always")
def _store4(row, q, bias, s0, s1, s2, s3):
    row[q] = s0 + bias
    row[q + 1] = s1 + bias
    row[q + 2] = s2 + bias
    row[q + 3] = s3 + bias


# reassoc: each output is a dot product over the input channels, which LLVM may then split into SIMD partial sums.
@njit(nogil=True, error_model="numpy", fastmath={"reassoc", "contract"}, inline="always")
def _rows_dot_blocks(w2, rows, b, out2d):
    """out2d[o, p] = b[o] + dot(w2[o], rows[p]) for w2 (C_out, K), rows (P, K), out2d (C_out, P); C_out, P >= 4.

    The shared core of pointwise_small and conv_patches: 4 output channels x 4 rows at a time (16 sums; each of
    the 8 values loaded per k feeds four), so the dot products run along K with no loop overhead per output.
    """
    c_out, depth = w2.shape
    pixels = rows.shape[0]
    block = 0
    while block < c_out:
        # shifted last blocks (of channels and of pixels) recompute a few outputs instead of needing tail code
        oc = min(block, c_out - 4)
        r0, r1, r2, r3 = w2[oc], w2[oc + 1], w2[oc + 2], w2[oc + 3]
        start = 0
        while start < pixels:
            p = min(start, pixels - 4)
            x0, x1, x2, x3 = rows[p], rows[p + 1], rows[p + 2], rows[p + 3]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.float32(0.0)
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = np.float32(0.0)
            for k in range(depth):
                a0, a1, a2, a3 = r0[k], r1[k], r2[k], r3[k]
                v0, v1, v2, v3 = x0[k], x1[k], x2[k], x3[k]
                s00 += a0 * v0
                s01 += a0 * v1
                s02 += a0 * v2
                s03 += a0 * v3
                s10 += a1 * v0
                s11 += a1 * v1
                s12 += a1 * v2
                s13 += a1 * v3
                s20 += a2 * v0
                s21 += a2 * v1
                s22 += a2 * v2
                s23 += a2 * v3
                s30 += a3 * v0
                s31 += a3 * v1
                s32 += a3 * v2
                s33 += a3 * v3
            _store4(out2d[oc], p, b[oc], s00, s01, s02, s03)
            _store4(out2d[oc + 1], p, b[oc + 1], s10, s11, s12, s13)
            _store4(out2d[oc + 2], p, b[oc + 2], s20, s21, s22, s23)
            _store4(out2d[oc + 3], p, b[oc + 3], s30, s31, s32, s33)
            start += 4
        block += 4


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def pointwise_small(x, w, b, out, xt, act, alpha):
    """1x1 stride 1, groups 1 conv for maps of few pixels (P = H*W <= ~64, C_out >= 4, P >= 4), same result as
    conv2d. xt: float32 scratch of at least C_in * P values.

    conv2d's pointwise path runs along the pixels, one SIMD vector for a 4x4 map, so its loop overhead dominates
    (64->128 channels on 4x4: 17 us). Here the input is transposed to (P, C_in) and each output is a dot product
    along the channels, 4 output channels x 4 pixels at a time (16 sums; each of the 8 values loaded per channel
    feeds four): 5x faster on 4x4 maps, 1.3-1.8x on 8x8, slower from ~15x15 on.
    """
    c_in = x.shape[0]
    c_out, out_h, out_w = out.shape
    pixels = out_h * out_w
    x_flat = x.reshape(c_in, pixels)
    x_t = xt[:pixels * c_in].reshape(pixels, c_in)
    for ic in range(c_in):
        src = x_flat[ic]
        for p in range(pixels):
            x_t[p, ic] = src[p]
    w2 = w.reshape(c_out, c_in)
    out_flat = out.reshape(c_out, pixels)
    _rows_dot_blocks(w2, x_t, b, out_flat)
    if act != 0:
        activate_inplace(out.reshape(out.size), act, alpha)


# --- 1x1 convs as register-tiled matrix products -------------------------------------------------------------
#
# out (C_out, P) = W (C_out, C_in) @ x (C_in, P) + b in tiles of 4 output channels x 64 pixels: the 16 vectors of
# running sums of a tile live in zmm registers (kernels/registers.py) for the whole loop over the input channels,
# each step loading four vectors of one input row and four weights (broadcast) for 16 FMAs. _pointwise instead
# keeps its sums in the output rows (loaded and stored once per 8 input channels) and on maps of 64-225 pixels
# spends much of its time setting up its short loops. Measured (best of 7, relu fused) against conv2d /
# pointwise_small: 128 -> 128 channels on 8x8 34 / 24 -> 11 us, 64 -> 128 on 8x8 17 / 18 -> 6.4, 64 -> 64 on
# 15x15 22 -> 12.8, 32 -> 32 on 30x30 18 -> 13, 16 -> 16 on 60x60 17 -> 14, 8 -> 16 on 60x60 8.8 -> 7.6.
# Tiles of 4 x 32 ran at a third of that (too few independent sums to hide the FMA latency), 8 x 32 and 6 x 64
# no faster than 4 x 64.

POINTWISE_TILE_CHANNELS = 4
POINTWISE_TILE_PIXELS = 64


def pointwise_tiled_weights(w):
    """(C_out, C_in, 1, 1) weights as the (ceil(C_out / 4), C_in, 4) blocks pointwise_tiled reads (at load): block
    i holds output channels min(4 i, C_out - 4) .. + 3, so the last block is shifted back to end at C_out."""
    c_out, c_in = w.shape[0], w.shape[1]
    blocks = -(-c_out // POINTWISE_TILE_CHANNELS)
    packed = np.empty((blocks, c_in, POINTWISE_TILE_CHANNELS), np.float32)
    for i in range(blocks):
        oc = min(POINTWISE_TILE_CHANNELS * i, c_out - POINTWISE_TILE_CHANNELS)
        packed[i] = w[oc:oc + POINTWISE_TILE_CHANNELS, :, 0, 0].T
    return packed


def _piecewise_params(act, alpha):
    """(leaky, slope, cap) with which _piecewise(v, ...) is activation act, one of FLAT_ACTIVATIONS: identity is a
    leaky relu of slope 1, relu6 a relu capped at 6."""
    leaky = act == 0 or act == 2
    slope = np.float32(alpha) if act == 2 else np.float32(1.0)
    cap = np.float32(6.0) if act == 3 else np.float32(np.inf)
    return leaky, slope, cap


_piecewise_params_jit = njit(nogil=True, error_model="numpy", inline="always")(_piecewise_params)


@njit(nogil=True, error_model="numpy", inline="always")
def _piecewise(v, leaky, slope, cap):
    """One branch-free formula for the FLAT_ACTIVATIONS (see _piecewise_params), so a tile's store loop has no
    branch on the activation (a branch per activation kept LLVM from promoting the tile to registers). Same values
    as _piecewise_act, NaN included (relu and relu6 give 0, identity and leaky relu keep it)."""
    zero = np.float32(0.0)
    y = v if v > zero else (slope * v if leaky else zero)
    return cap if y > cap else y


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def pointwise_tiled(x, wp, b, out, act, alpha):
    """1x1 stride 1, groups 1 conv of x (C_in, H, W) into out (C_out, H, W), bias and activation (one of
    FLAT_ACTIVATIONS) fused, same result as conv2d: wp = pointwise_tiled_weights(w). Needs C_out >= 4 and
    H * W >= 64 (the last tile of pixels, like the last block of channels, is shifted back to end at the edge and
    recomputes a few outputs, so there is no tail code)."""
    c_in = x.shape[0]
    c_out = out.shape[0]
    pixels = out.shape[1] * out.shape[2]
    x_flat = x.reshape(c_in, pixels)
    out_flat = out.reshape(c_out, pixels)
    acc = register_tile(256)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    start = 0
    while start < pixels:
        p = min(start, pixels - 64)
        for block in range(wp.shape[0]):
            oc = min(4 * block, c_out - 4)
            b0, b1, b2, b3 = b[oc], b[oc + 1], b[oc + 2], b[oc + 3]
            for i in range(64):
                acc[i] = b0
                acc[64 + i] = b1
                acc[128 + i] = b2
                acc[192 + i] = b3
            wb = wp[block]
            for k in range(c_in):
                row = x_flat[k, p:p + 64]
                wk = wb[k]
                w0, w1, w2, w3 = wk[0], wk[1], wk[2], wk[3]
                for i in range(64):
                    v = row[i]
                    acc[i] += w0 * v
                    acc[64 + i] += w1 * v
                    acc[128 + i] += w2 * v
                    acc[192 + i] += w3 * v
            # one loop per output row: with the four rows in one loop LLVM would not vectorise it (it cannot rule
            # out that the rows overlap)
            dst = out_flat[oc, p:p + 64]
            for i in range(64):
                dst[i] = _piecewise(acc[i], leaky, slope, cap)
            dst = out_flat[oc + 1, p:p + 64]
            for i in range(64):
                dst[i] = _piecewise(acc[64 + i], leaky, slope, cap)
            dst = out_flat[oc + 2, p:p + 64]
            for i in range(64):
                dst[i] = _piecewise(acc[128 + i], leaky, slope, cap)
            dst = out_flat[oc + 3, p:p + 64]
            for i in range(64):
                dst[i] = _piecewise(acc[192 + i], leaky, slope, cap)
        start += 64


# --- 1x1 convs in tiles of 16 output channels x 16 pixels (kernels/simd.py pointwise_tile16) ---------------------
#
# Each tile's 16 running sums are 16 zmm registers for the whole loop over the input channels; per input channel
# one load of 16 pixels feeds 16 FMAs with broadcast weights (pointwise_tiled: four loads and four weights per 16
# FMAs). 16-pixel tiles also fit maps of 16-63 pixels and waste less at the end of a map than 64-pixel ones.
# Measured against pointwise_tiled / pointwise_small (best of 7): 16 -> 16 channels on 60x60 14.9 -> 11.7 us,
# 32 -> 32 on 30x30 12.3 -> 10.5, 64 -> 64 on 15x15 11.9 -> 10.2, 16 -> 32 on 30x30 7.6 -> 5.9, 16 -> 32 on 15x15
# 2.3 -> 1.8, 8 -> 16 on 30x30 2.7 -> 2.4, 64 -> 128 on 4x4 (pointwise_small) 4.8 -> 1.9; but on 8x8 maps with
# many input channels, one whole 64-pixel tile, pointwise_tiled stays ahead (128 -> 128 11.2 vs 12.1).

POINTWISE16_TILE = 16


def pointwise_tiled16_weights(w):
    """(C_out, C_in, 1, 1) weights as the (ceil(C_out / 16), C_in, 16) blocks pointwise_tiled16 reads (at load):
    block i holds output channels min(16 i, C_out - 16) .. + 15, so the last block is shifted back to end at
    C_out."""
    c_out, c_in = w.shape[0], w.shape[1]
    blocks = -(-c_out // POINTWISE16_TILE)
    packed = np.empty((blocks, c_in, POINTWISE16_TILE), np.float32)
    for i in range(blocks):
        oc = min(POINTWISE16_TILE * i, c_out - POINTWISE16_TILE)
        packed[i] = w[oc:oc + POINTWISE16_TILE, :, 0, 0].T
    return packed


@njit(cache=True, nogil=True, error_model="numpy")
def pointwise_tiled16(x, wp, b, out, act, alpha):
    """1x1 stride 1, groups 1 conv of x (C_in, H, W) into out (C_out, H, W), bias and activation (one of
    FLAT_ACTIVATIONS) fused, same result as conv2d: wp = pointwise_tiled16_weights(w). Needs C_out >= 16 and
    H * W >= 16 (the last tile of pixels, like the last block of channels, is shifted back to end at the edge and
    recomputes a few outputs, so there is no tail code)."""
    c_in = x.shape[0]
    c_out = out.shape[0]
    pixels = out.shape[1] * out.shape[2]
    x_flat = x.reshape(c_in, pixels)
    out_flat = out.reshape(c_out, pixels)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    start = 0
    while start < pixels:
        p = min(start, pixels - POINTWISE16_TILE)
        for block in range(wp.shape[0]):
            pointwise_tile16(x_flat, p, wp[block], b, min(POINTWISE16_TILE * block, c_out - POINTWISE16_TILE),
                             out_flat, p, leaky, slope, cap)
        start += POINTWISE16_TILE


@njit(cache=True, nogil=True, error_model="numpy")
def pointwise_rows16_into(x, wp, b, out, out_top, out_left, act, alpha):
    """pointwise_tiled16 written at out[oc, out_top + y, out_left + x] for the (C_out, H, W) result (nothing else
    of out is written), so a 1x1 conv can write straight into its readers' padded buffer (as pointwise_rows_into):
    tiles of 16 pixels within a row, the last one of each row shifted back. Needs C_out >= 16 and W >= 16.
    Mini-Xception's 8 -> 16 channels on 60x60 into 62x62: pointwise_rows_into 9.7 -> 8.0 us."""
    c_in, height, width = x.shape
    c_out, out_h, out_w = out.shape
    x_flat = x.reshape(c_in, height * width)
    out_flat = out.reshape(c_out, out_h * out_w)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    for y in range(height):
        start = 0
        while start < width:
            col = min(start, width - POINTWISE16_TILE)
            p = y * width + col
            q = (out_top + y) * out_w + out_left + col
            for block in range(wp.shape[0]):
                pointwise_tile16(x_flat, p, wp[block], b, min(POINTWISE16_TILE * block, c_out - POINTWISE16_TILE),
                                 out_flat, q, leaky, slope, cap)
            start += POINTWISE16_TILE


@njit(cache=True, nogil=True, error_model="numpy")
def pointwise_strided16(x, wp, b, out, top, left, act, alpha):
    """A 1x1 stride-2 conv: out[o, oy, ox] = act(b[o] + sum over k of w[o, k] * x[k, top + 2 oy, left + 2 ox]) for
    the (C_out, Ho, Wo) of out, wp = pointwise_tiled16_weights(w), act one of FLAT_ACTIVATIONS; (top, left) is the
    map's corner in x (a padded buffer it lives in, or (0, 0)). Tiles of 16 channels x up to 16 outputs of a row
    (pointwise_tile16_s2), so no subsample_into copy runs first. Needs C_out >= 16; rows of >= 15 outputs keep the
    lanes full. Xception's shortcuts: subsample + pointwise_tiled16 8x30x30 -> 16 channels 1.6 + 2.4 -> 2.6 us."""
    c_in, x_h, x_w = x.shape
    c_out, out_h, out_w = out.shape
    x_flat = x.reshape(c_in, x_h * x_w)
    out_flat = out.reshape(c_out, out_h * out_w)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    for oy in range(out_h):
        ox = 0
        while ox < out_w:
            count = min(POINTWISE16_TILE, out_w - ox)
            p = (top + 2 * oy) * x_w + left + 2 * ox
            for block in range(wp.shape[0]):
                pointwise_tile16_s2(x_flat, p, wp[block], b, min(POINTWISE16_TILE * block, c_out - POINTWISE16_TILE),
                                    out_flat, oy * out_w + ox, count, leaky, slope, cap)
            ox += POINTWISE16_TILE


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _pointwise_strided(xp, w, b, out, sh, sw, act, alpha, oc_start, oc_stop):
    """1x1, groups 1, any stride or padding (e.g. Xception's stride-2 shortcut convs), one output row at a time.

    Same 4 output x 4 input channel blocking as _pointwise, so each strided input value loaded feeds four
    accumulators; 3-5x faster than one pass per (output, input) channel pair on these short rows.
    """
    c_in = xp.shape[0]
    out_h, out_w = out.shape[1], out.shape[2]
    oc = oc_start
    while oc < oc_stop:
        if oc + 4 <= oc_stop:
            b0, b1, b2, b3 = b[oc], b[oc + 1], b[oc + 2], b[oc + 3]
            for oy in range(out_h):
                o0 = out[oc, oy]
                o1 = out[oc + 1, oy]
                o2 = out[oc + 2, oy]
                o3 = out[oc + 3, oy]
                for ox in range(out_w):
                    o0[ox] = b0
                    o1[ox] = b1
                    o2[ox] = b2
                    o3[ox] = b3
                iy = oy * sh
                ic = 0
                while ic + 4 <= c_in:
                    x0 = xp[ic, iy]
                    x1 = xp[ic + 1, iy]
                    x2 = xp[ic + 2, iy]
                    x3 = xp[ic + 3, iy]
                    a00, a01, a02, a03 = _weights1x4(w, oc, ic)
                    a10, a11, a12, a13 = _weights1x4(w, oc + 1, ic)
                    a20, a21, a22, a23 = _weights1x4(w, oc + 2, ic)
                    a30, a31, a32, a33 = _weights1x4(w, oc + 3, ic)
                    for ox in range(out_w):
                        v0 = x0[ox * sw]
                        v1 = x1[ox * sw]
                        v2 = x2[ox * sw]
                        v3 = x3[ox * sw]
                        o0[ox] += a00 * v0 + a01 * v1 + a02 * v2 + a03 * v3
                        o1[ox] += a10 * v0 + a11 * v1 + a12 * v2 + a13 * v3
                        o2[ox] += a20 * v0 + a21 * v1 + a22 * v2 + a23 * v3
                        o3[ox] += a30 * v0 + a31 * v1 + a32 * v2 + a33 * v3
                    ic += 4
                while ic < c_in:
                    x0 = xp[ic, iy]
                    a0, a1, a2, a3 = w[oc, ic, 0, 0], w[oc + 1, ic, 0, 0], w[oc + 2, ic, 0, 0], w[oc + 3, ic, 0, 0]
                    for ox in range(out_w):
                        v0 = x0[ox * sw]
                        o0[ox] += a0 * v0
                        o1[ox] += a1 * v0
                        o2[ox] += a2 * v0
                        o3[ox] += a3 * v0
                    ic += 1
            for j in range(4):
                _finish_plane(out, oc + j, act, alpha)
            oc += 4
        else:
            bias = b[oc]
            for oy in range(out_h):
                o0 = out[oc, oy]
                for ox in range(out_w):
                    o0[ox] = bias
                for ic in range(c_in):
                    x0 = xp[ic, oy * sh]
                    a0 = w[oc, ic, 0, 0]
                    for ox in range(out_w):
                        o0[ox] += a0 * x0[ox * sw]
            _finish_plane(out, oc, act, alpha)
            oc += 1


# conv2d's paths, in the order _conv_range tries them
(CONV_POINTWISE, CONV_POINTWISE_STRIDED, CONV_DEPTHWISE3X3_S1, CONV_3X3_S1, CONV_DEPTHWISE3X3_S2, CONV_3X3_S2,
 CONV_GENERAL) = range(7)


@njit(nogil=True, error_model="numpy", inline="always")
def conv2d_path(xp, w, out, sh, sw, dh, dw, groups):
    """Which of conv2d's paths fits the layer (reads only shapes: `conv2d_path.py_func` runs it on the arrays in
    plain Python at load time, see conv2d_path_kernel)."""
    kh, kw = w.shape[2], w.shape[3]
    cin_per_group = w.shape[1]
    unit = sh == 1 and sw == 1 and dh == 1 and dw == 1
    if unit and kh == 1 and kw == 1 and groups == 1 and xp.shape[1] == out.shape[1] and xp.shape[2] == out.shape[2]:
        return CONV_POINTWISE
    if kh == 1 and kw == 1 and groups == 1:
        return CONV_POINTWISE_STRIDED
    if unit and kh == 3 and kw == 3:
        return CONV_DEPTHWISE3X3_S1 if cin_per_group == 1 else CONV_3X3_S1
    if sh == 2 and sw == 2 and dh == 1 and dw == 1 and kh == 3 and kw == 3:
        return CONV_DEPTHWISE3X3_S2 if cin_per_group == 1 else CONV_3X3_S2
    return CONV_GENERAL


@njit(cache=True, nogil=True, error_model="numpy")
def _conv_range(xp, w, b, out, sh, sw, dh, dw, groups, act, alpha, oc_start, oc_stop):
    """Run the path conv2d_path picks, for output channels [oc_start, oc_stop)."""
    path = conv2d_path(xp, w, out, sh, sw, dh, dw, groups)
    if path == CONV_POINTWISE:
        _pointwise(xp, w, b, out, act, alpha, oc_start, oc_stop)
    elif path == CONV_POINTWISE_STRIDED:
        _pointwise_strided(xp, w, b, out, sh, sw, act, alpha, oc_start, oc_stop)
    elif path == CONV_DEPTHWISE3X3_S1:
        _depthwise3x3_s1(xp, w, b, out, groups, act, alpha, oc_start, oc_stop)
    elif path == CONV_3X3_S1:
        _conv3x3_s1(xp, w, b, out, groups, act, alpha, oc_start, oc_stop)
    elif path == CONV_DEPTHWISE3X3_S2:
        _depthwise3x3_s2(xp, w, b, out, groups, act, alpha, oc_start, oc_stop)
    elif path == CONV_3X3_S2:
        _conv3x3_s2(xp, w, b, out, groups, act, alpha, oc_start, oc_stop)
    else:
        _conv_general(xp, w, b, out, sh, sw, dh, dw, groups, act, alpha, oc_start, oc_stop)


@njit(cache=True, nogil=True, error_model="numpy")
def conv2d(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    """out = f(conv(xp, w) + b) on one thread. xp is already padded; out is (C_out, Ho, Wo); zeros for b if no bias.

    Pass act as an int and alpha as a Python float, so every layer shares one compiled signature.
    """
    _conv_range(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha, 0, out.shape[0])


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def conv2d_parallel(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    """conv2d with output channels split across Numba's threads; same arguments, same result.

    Only worth it for layers of at least PARALLEL_MIN_MACS multiply-accumulates (see use_parallel_conv).
    """
    c_out = out.shape[0]
    n_chunks = 8
    # Chunks are multiples of 4 channels so the pointwise path keeps its 4-channel blocks.
    chunk = ((c_out + n_chunks - 1) // n_chunks + 3) // 4 * 4
    for i in prange(n_chunks):
        start = i * chunk
        stop = min(start + chunk, c_out)
        if start < stop:
            _conv_range(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha, start, stop)


# One kernel per conv2d path, each with conv2d's arguments. conv2d compiles all seven paths (~11 s with an empty
# cache, whichever the model uses); the Model plans the path's own kernel instead (program.specialise), so a
# model compiles only the paths it has.
@njit(cache=True, nogil=True, error_model="numpy")
def conv2d_pointwise(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    _pointwise(xp, w, b, out, act, alpha, 0, out.shape[0])


@njit(cache=True, nogil=True, error_model="numpy")
def conv2d_pointwise_strided(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    _pointwise_strided(xp, w, b, out, stride_h, stride_w, act, alpha, 0, out.shape[0])


@njit(cache=True, nogil=True, error_model="numpy")
def conv2d_depthwise3x3_s1(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    _depthwise3x3_s1(xp, w, b, out, groups, act, alpha, 0, out.shape[0])


@njit(cache=True, nogil=True, error_model="numpy")
def conv2d_3x3_s1(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    _conv3x3_s1(xp, w, b, out, groups, act, alpha, 0, out.shape[0])


@njit(cache=True, nogil=True, error_model="numpy")
def conv2d_depthwise3x3_s2(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    _depthwise3x3_s2(xp, w, b, out, groups, act, alpha, 0, out.shape[0])


@njit(cache=True, nogil=True, error_model="numpy")
def conv2d_3x3_s2(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    _conv3x3_s2(xp, w, b, out, groups, act, alpha, 0, out.shape[0])


@njit(cache=True, nogil=True, error_model="numpy")
def conv2d_general(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha):
    _conv_general(xp, w, b, out, stride_h, stride_w, dil_h, dil_w, groups, act, alpha, 0, out.shape[0])


CONV2D_PATH_KERNELS = (conv2d_pointwise, conv2d_pointwise_strided, conv2d_depthwise3x3_s1, conv2d_3x3_s1,
                       conv2d_depthwise3x3_s2, conv2d_3x3_s2, conv2d_general)


def conv2d_path_kernel(xp, w, out, stride_h, stride_w, dil_h, dil_w, groups):
    """The kernel of the conv2d path that fits these arrays and settings (same arguments and result as conv2d)."""
    return CONV2D_PATH_KERNELS[conv2d_path.py_func(xp, w, out, stride_h, stride_w, dil_h, dil_w, groups)]


def conv_macs(out_shape, w_shape):
    """Multiply-accumulates of one conv2d call (plain Python, for choosing a variant at load time)."""
    c_out, out_h, out_w = out_shape
    return c_out * out_h * out_w * w_shape[1] * w_shape[2] * w_shape[3]


def use_parallel_conv(out_shape, w_shape):
    """True if a layer is big enough for conv2d_parallel to pay for waking the thread pool."""
    return conv_macs(out_shape, w_shape) >= PARALLEL_MIN_MACS and out_shape[0] >= 8


# --- 3x3 stride-1 convolution on flat padded planes, optionally fused with a 2x2 max pool ---------------------
#
# On small maps (digits: 14x14, 7x7) the row loops above are short: a 7-wide row is one partial SIMD vector,
# so LLVM runs it scalar. Here every padded plane is seen as one flat vector of hp * wp values: the output value
# (oy, ox) sits at q = oy * wp + ox of a flat accumulator, and tap (ky, kx) reads the input at q + ky * wp + kx.
# One loop over q then covers the whole plane (the two columns per row that fall on the padding are computed and
# thrown away), so a 7x7 output is a 61-long vector loop instead of seven 7-long ones: 2-3x faster on the digits
# layers. Four output channels share each pass over the input (the nine values loaded feed 36 FMAs).
# The accumulator length is rounded up to a multiple of 32 so the vector loop has no scalar tail; the extra
# lanes read the next input plane (junk, never used); the last input plane stops at its end instead.

FLAT_ROUND = 32


def flat_scratch_size(out_h, padded_w):
    """Floats of scratch conv3x3_flat needs for an output of out_h rows on a padded width (4 accumulators and
    one block for the pooling pass)."""
    return 5 * ((out_h * padded_w + FLAT_ROUND - 1) // FLAT_ROUND * FLAT_ROUND)


@njit(nogil=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _flat_accumulate4(x_flat, w, oc, plane, wp, a0, a1, a2, a3, q0, n_round):
    """a_j[q] = sum over input channels and taps of w[oc + j] * x at q0 + q + tap offset (j = 0..3, q < n_round).

    The first input channel assigns instead of adding to zeroed rows (one pass less: 1 -> 8 channels on 62x62
    13 -> 10 us). Lanes past the input's end (the last row's two padding columns, on the last input channel)
    are left as they were: no output reads them."""
    total = x_flat.shape[0]
    reach = 2 * wp + 2
    for ic in range(w.shape[1]):
        base = ic * plane + q0
        n = min(n_round, total - base - reach)
        s0 = x_flat[base:]
        s1 = x_flat[base + 1:]
        s2 = x_flat[base + 2:]
        s3 = x_flat[base + wp:]
        s4 = x_flat[base + wp + 1:]
        s5 = x_flat[base + wp + 2:]
        s6 = x_flat[base + 2 * wp:]
        s7 = x_flat[base + 2 * wp + 1:]
        s8 = x_flat[base + 2 * wp + 2:]
        k = w[oc, ic]
        p = w[oc + 1, ic]
        r = w[oc + 2, ic]
        t = w[oc + 3, ic]
        k0, k1, k2 = k[0, 0], k[0, 1], k[0, 2]
        k3, k4, k5 = k[1, 0], k[1, 1], k[1, 2]
        k6, k7, k8 = k[2, 0], k[2, 1], k[2, 2]
        p0, p1, p2 = p[0, 0], p[0, 1], p[0, 2]
        p3, p4, p5 = p[1, 0], p[1, 1], p[1, 2]
        p6, p7, p8 = p[2, 0], p[2, 1], p[2, 2]
        r0, r1, r2 = r[0, 0], r[0, 1], r[0, 2]
        r3, r4, r5 = r[1, 0], r[1, 1], r[1, 2]
        r6, r7, r8 = r[2, 0], r[2, 1], r[2, 2]
        t0, t1, t2 = t[0, 0], t[0, 1], t[0, 2]
        t3, t4, t5 = t[1, 0], t[1, 1], t[1, 2]
        t6, t7, t8 = t[2, 0], t[2, 1], t[2, 2]
        if ic == 0:
            for q in range(n):
                v0, v1, v2 = s0[q], s1[q], s2[q]
                v3, v4, v5 = s3[q], s4[q], s5[q]
                v6, v7, v8 = s6[q], s7[q], s8[q]
                a0[q] = k0 * v0 + k1 * v1 + k2 * v2 + k3 * v3 + k4 * v4 + k5 * v5 + k6 * v6 + k7 * v7 + k8 * v8
                a1[q] = p0 * v0 + p1 * v1 + p2 * v2 + p3 * v3 + p4 * v4 + p5 * v5 + p6 * v6 + p7 * v7 + p8 * v8
                a2[q] = r0 * v0 + r1 * v1 + r2 * v2 + r3 * v3 + r4 * v4 + r5 * v5 + r6 * v6 + r7 * v7 + r8 * v8
                a3[q] = t0 * v0 + t1 * v1 + t2 * v2 + t3 * v3 + t4 * v4 + t5 * v5 + t6 * v6 + t7 * v7 + t8 * v8
            continue
        for q in range(n):
            v0, v1, v2 = s0[q], s1[q], s2[q]
            v3, v4, v5 = s3[q], s4[q], s5[q]
            v6, v7, v8 = s6[q], s7[q], s8[q]
            a0[q] += k0 * v0 + k1 * v1 + k2 * v2 + k3 * v3 + k4 * v4 + k5 * v5 + k6 * v6 + k7 * v7 + k8 * v8
            a1[q] += p0 * v0 + p1 * v1 + p2 * v2 + p3 * v3 + p4 * v4 + p5 * v5 + p6 * v6 + p7 * v7 + p8 * v8
            a2[q] += r0 * v0 + r1 * v1 + r2 * v2 + r3 * v3 + r4 * v4 + r5 * v5 + r6 * v6 + r7 * v7 + r8 * v8
            a3[q] += t0 * v0 + t1 * v1 + t2 * v2 + t3 * v3 + t4 * v4 + t5 * v5 + t6 * v6 + t7 * v7 + t8 * v8


@njit(cache=True, nogil=True, error_model="numpy")
def _piecewise_act(plane, act, alpha):
    """In place on a 1-D array: identity, relu, leaky relu or relu6 (FLAT_ACTIVATIONS), written out rather than
    through activate_inplace so the kernels using it do not carry (and compile) the exp-based activations."""
    zero = np.float32(0.0)
    if act == 1:
        for i in range(plane.shape[0]):
            v = plane[i]
            plane[i] = v if v > zero else zero
    elif act == 2:
        slope = np.float32(alpha)
        for i in range(plane.shape[0]):
            v = plane[i]
            plane[i] = v if v > zero else slope * v
    elif act == 3:
        six = np.float32(6.0)
        for i in range(plane.shape[0]):
            v = plane[i]
            v = v if v > zero else zero
            plane[i] = v if v < six else six


@njit(nogil=True, error_model="numpy", inline="always")
def _flat_finish(acc, pair_max, bias, out, oc, wp, pool, act, alpha):
    """out[oc] = act(acc + bias), or with pool == 2 the 2x2 stride-2 max of acc, + bias, then act.

    The pool runs on the flat accumulator too: pair_max[q] = max(acc[q], acc[q + 1]), then
    acc[q] = max(pair_max[q], pair_max[q + wp]) (two contiguous vector passes; pair_max is a separate scratch
    block so neither pass reads what it writes), and the pooled value of (oy, ox) is acc[2 oy wp + 2 ox]: one
    strided load per output instead of four (the pooled finish was a quarter of the digits forward pass).
    Only the piecewise-linear activations (identity, relu, leaky relu, relu6) are done here, written out rather
    than through activate_into so this kernel does not carry (and compile) the exp-based ones; the Model runs
    the others as a separate in-place activation. Pooling before bias and activation is exact for these (with
    leaky alpha >= 0): adding a constant and rounding are monotone, so they commute with max.
    """
    out_h, out_w = out.shape[1], out.shape[2]
    if pool == 2:
        n = acc.shape[0] - wp - 1
        for q in range(n + wp):
            a = acc[q]
            z = acc[q + 1]
            pair_max[q] = a if a > z else z
        shifted = pair_max[wp:]
        for q in range(n):
            a = pair_max[q]
            z = shifted[q]
            acc[q] = a if a > z else z
        for oy in range(out_h):
            row = out[oc, oy]
            src = acc[2 * oy * wp:]
            for ox in range(out_w):
                row[ox] = src[2 * ox] + bias
    else:
        for oy in range(out_h):
            row = out[oc, oy]
            src = acc[oy * wp:]
            for ox in range(out_w):
                row[ox] = src[ox] + bias
    _piecewise_act(out[oc].reshape(out_h * out_w), act, alpha)


FLAT_ACTIVATIONS = (0, 1, 2, 3)   # the activation codes conv3x3_flat and conv_patches apply themselves

# Unpooled, conv3x3_flat runs in bands of whole output rows of about this many flat positions: the four
# accumulators of a band (16 KB) stay in L1 across the input channels instead of going to L2 and back once per
# input channel (whole 60x62 planes are 60 KB). Measured 8 -> 8 channels on 60x60 53 -> 44 us, 1 -> 8 on 62x62
# 13.5 -> 9.1 us; bands of 256 were slower again (loop set-up per band), 2048 no better than whole planes.
FLAT_BAND = 1024


@njit(nogil=True, error_model="numpy", inline="always")
def _band_finish(acc, bias, out, oc, oy0, rows, wp, out_left, out_w, act, alpha):
    """out[oc, oy0 + r, out_left:out_left + out_w] = act(acc[r * wp:r * wp + out_w] + bias) for r < rows, act one
    of FLAT_ACTIVATIONS: bias and activation in one pass while the band is in L1."""
    zero = np.float32(0.0)
    for r in range(rows):
        row = out[oc, oy0 + r, out_left:]
        src = acc[r * wp:]
        if act == 1:
            for ox in range(out_w):
                v = src[ox] + bias
                row[ox] = v if v > zero else zero
        elif act == 2:
            slope = np.float32(alpha)
            for ox in range(out_w):
                v = src[ox] + bias
                row[ox] = v if v > zero else slope * v
        elif act == 3:
            six = np.float32(6.0)
            for ox in range(out_w):
                v = src[ox] + bias
                v = v if v > zero else zero
                row[ox] = v if v < six else six
        else:
            for ox in range(out_w):
                row[ox] = src[ox] + bias


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _flat_bands(xp, w, b, out, scratch, out_top, out_left, act, alpha):
    """conv3x3_flat with pool = 1, in bands of output rows (FLAT_BAND), written at out[:, out_top:, out_left:]; its
    own function, not a branch of conv3x3_flat (as a branch it ran ~10% slower, 49 -> 54 us on 8 -> 8 channels,
    60x60)."""
    c_in, hp, wp = xp.shape
    c_out, out_h, out_w = w.shape[0], hp - 2, wp - 2
    plane = hp * wp
    x_flat = xp.reshape(c_in * plane)
    band_rows = max(1, min(out_h, FLAT_BAND // wp))
    cap = band_rows * wp   # <= the whole-plane accumulator length flat_scratch_size counts
    oy0 = 0
    while oy0 < out_h:
        rows = min(band_rows, out_h - oy0)
        block = 0
        while block < c_out:
            oc = min(block, c_out - 4)   # shifted last block, as in conv3x3_flat
            _flat_accumulate4(x_flat, w, oc, plane, wp, scratch[0:cap], scratch[cap:2 * cap],
                              scratch[2 * cap:3 * cap], scratch[3 * cap:4 * cap], oy0 * wp, rows * wp)
            for j in range(4):
                _band_finish(scratch[j * cap:(j + 1) * cap], b[oc + j], out, oc + j, out_top + oy0, rows, wp,
                             out_left, out_w, act, alpha)
            block += 4
        oy0 += rows


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def conv3x3_flat(xp, w, b, out, scratch, pool, act, alpha):
    """3x3, stride 1, dilation 1, groups 1 conv of the padded xp (C_in, Hp, Wp), bias and activation fused;
    pool = 1: out is (C_out, Hp - 2, Wp - 2); pool = 2: out is the 2x2 stride-2 max pool of that,
    (C_out, (Hp - 2) // 2, (Wp - 2) // 2); C_out >= 4. act is one of FLAT_ACTIVATIONS (identity, relu, leaky
    relu with alpha >= 0 when pooling, relu6). scratch: float32 of at least flat_scratch_size(Hp - 2, Wp), contents
    ignored.
    """
    c_in, hp, wp = xp.shape
    c_out = w.shape[0]
    plane = hp * wp
    n_round = (hp - 2) * wp
    n_round = (n_round + FLAT_ROUND - 1) // FLAT_ROUND * FLAT_ROUND
    x_flat = xp.reshape(c_in * plane)
    if pool == 1:
        _flat_bands(xp, w, b, out, scratch, 0, 0, act, alpha)
        return
    pair_max = scratch[4 * n_round:5 * n_round]
    block = 0
    while block < c_out:
        # Blocks of four output channels; when C_out is not a multiple of 4 the last block is shifted back to
        # end at C_out and recomputes a few channels (same values), so there is no one-channel path to compile.
        oc = min(block, c_out - 4)
        _flat_accumulate4(x_flat, w, oc, plane, wp, scratch[0:n_round], scratch[n_round:2 * n_round],
                          scratch[2 * n_round:3 * n_round], scratch[3 * n_round:4 * n_round], 0, n_round)
        for j in range(4):
            _flat_finish(scratch[j * n_round:(j + 1) * n_round], pair_max, b[oc + j], out, oc + j, wp, pool, act,
                         alpha)
        block += 4


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def conv3x3_flat_into(xp, w, b, out, scratch, out_top, out_left, act, alpha):
    """conv3x3_flat with pool = 1 written at out[oc, out_top + y, out_left + x] for the (C_out, Hp - 2, Wp - 2)
    conv output (nothing else of out is written), so a conv can write straight into the interior of its
    readers' padded buffer (mini-Xception's conv2: no pad copy before the depthwise conv reading it)."""
    _flat_bands(xp, w, b, out, scratch, out_top, out_left, act, alpha)


@njit(nogil=True, error_model="numpy", inline="always")
def _tile_4x2x32_start(acc, b, oc):
    """A register tile of 4 output channels x 2 rows x 32 columns (acc[64 j + 32 r + i]: channel oc + j, row r)
    set to the channels' biases."""
    b0, b1, b2, b3 = b[oc], b[oc + 1], b[oc + 2], b[oc + 3]
    for i in range(32):
        acc[i] = b0
        acc[32 + i] = b0
        acc[64 + i] = b1
        acc[96 + i] = b1
        acc[128 + i] = b2
        acc[160 + i] = b2
        acc[192 + i] = b3
        acc[224 + i] = b3


@njit(nogil=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _tile_4x2x32_fma(acc, r0, r1, wk):
    """acc (the tile of _tile_4x2x32_start) += wk[j] * (r0, r1) for its 4 channels j: 32 values of two input rows,
    each loaded once for four FMAs."""
    w0, w1, w2, w3 = wk[0], wk[1], wk[2], wk[3]
    for i in range(32):
        u = r0[i]
        v = r1[i]
        acc[i] += w0 * u
        acc[32 + i] += w0 * v
        acc[64 + i] += w1 * u
        acc[96 + i] += w1 * v
        acc[128 + i] += w2 * u
        acc[160 + i] += w2 * v
        acc[192 + i] += w3 * u
        acc[224 + i] += w3 * v


@njit(nogil=True, error_model="numpy", inline="always")
def _tile_4x2x32_store(acc, out, oc, y, x, leaky, slope, cap):
    """The tile of _tile_4x2x32_start, activated, into out[oc:oc + 4, y:y + 2, x:x + 32]: one loop per output row
    (see pointwise_tiled), written out: as loops over the channels and rows the tile's offsets were no longer
    literal and LLVM kept it in memory (conv3x3_tiled 8 -> 8 on 60x60 27 -> 116 us)."""
    dst = out[oc, y, x:x + 32]
    for i in range(32):
        dst[i] = _piecewise(acc[i], leaky, slope, cap)
    dst = out[oc, y + 1, x:x + 32]
    for i in range(32):
        dst[i] = _piecewise(acc[32 + i], leaky, slope, cap)
    dst = out[oc + 1, y, x:x + 32]
    for i in range(32):
        dst[i] = _piecewise(acc[64 + i], leaky, slope, cap)
    dst = out[oc + 1, y + 1, x:x + 32]
    for i in range(32):
        dst[i] = _piecewise(acc[96 + i], leaky, slope, cap)
    dst = out[oc + 2, y, x:x + 32]
    for i in range(32):
        dst[i] = _piecewise(acc[128 + i], leaky, slope, cap)
    dst = out[oc + 2, y + 1, x:x + 32]
    for i in range(32):
        dst[i] = _piecewise(acc[160 + i], leaky, slope, cap)
    dst = out[oc + 3, y, x:x + 32]
    for i in range(32):
        dst[i] = _piecewise(acc[192 + i], leaky, slope, cap)
    dst = out[oc + 3, y + 1, x:x + 32]
    for i in range(32):
        dst[i] = _piecewise(acc[224 + i], leaky, slope, cap)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def pointwise_rows_into(x, wp, b, out, out_top, out_left, act, alpha):
    """pointwise_tiled written at out[oc, out_top + y, out_left + x] for the (C_out, H, W) result (nothing else of
    out is written), so a 1x1 conv can write straight into its readers' padded buffer: tiles of 4 output channels
    x 2 rows x 32 columns (as conv3x3_tiled), which cover whole rows, instead of 64 pixels of the flat map. Needs
    C_out >= 4, H >= 2 and W >= 32. Mini-Xception's 8 -> 16 channels on 60x60 writing into the depthwise conv's
    padded input saves that conv its edge recomputation (depthwise3x3_same_flat 16x60x60 ~16 us -> conv2d on the
    padded map ~12)."""
    c_in, height, width = x.shape
    c_out = out.shape[0]
    acc = register_tile(256)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    row_start = 0
    while row_start < height:
        oy = min(row_start, height - 2)
        col_start = 0
        while col_start < width:
            ox = min(col_start, width - 32)
            for block in range(wp.shape[0]):
                oc = min(4 * block, c_out - 4)
                _tile_4x2x32_start(acc, b, oc)
                wb = wp[block]
                for k in range(c_in):
                    r0 = x[k, oy, ox:ox + 32]
                    r1 = x[k, oy + 1, ox:ox + 32]
                    _tile_4x2x32_fma(acc, r0, r1, wb[k])
                _tile_4x2x32_store(acc, out, oc, out_top + oy, out_left + ox, leaky, slope, cap)
            col_start += 32
        row_start += 2


# --- 3x3 stride-1 convs as register-tiled products -----------------------------------------------------------
#
# pointwise_tiled's scheme for 3x3 convs: a tile of 4 output channels x 2 output rows x 32 columns (16 vectors
# of sums in zmm registers) runs through the C_in * 9 (input channel, tap) pairs, each loading two 32-wide input
# row segments at the tap's offset and four broadcast weights for 16 FMAs. conv3x3_flat keeps its four
# accumulators in memory (one load and store of each per input channel and pass). Tiles cover whole output
# rows, so they write straight into a padded target (no junk columns as in the flat layout); the last tile of
# columns (and of rows) is shifted back to end at the edge and recomputes a few outputs.

CONV3X3_TILE_COLUMNS = 32


def conv3x3_tiled_weights(w):
    """(C_out, C_in, 3, 3) weights as the (ceil(C_out / 4), C_in * 9, 4) blocks conv3x3_tiled reads (at load),
    the last block shifted back to end at C_out as in pointwise_tiled_weights."""
    c_out, c_in = w.shape[0], w.shape[1]
    return pointwise_tiled_weights(np.ascontiguousarray(w.reshape(c_out, c_in * 9, 1, 1)))


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def conv3x3_tiled(xp, wp, b, out, out_top, out_left, act, alpha):
    """3x3, stride 1, dilation 1, groups 1 conv of the padded xp (C_in, Hp, Wp), bias and activation (one of
    FLAT_ACTIVATIONS) fused, written at out[oc, out_top + y, out_left + x] for the (C_out, Hp - 2, Wp - 2) conv
    output (nothing else of out is written): wp = conv3x3_tiled_weights(w). Needs C_out >= 4, Hp - 2 >= 2 and
    Wp - 2 >= 32."""
    c_in, hp, wpad = xp.shape
    c_out = out.shape[0]
    out_h, out_w = hp - 2, wpad - 2
    acc = register_tile(256)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    row_start = 0
    while row_start < out_h:
        oy = min(row_start, out_h - 2)
        col_start = 0
        while col_start < out_w:
            ox = min(col_start, out_w - 32)
            for block in range(wp.shape[0]):
                oc = min(4 * block, c_out - 4)
                _tile_4x2x32_start(acc, b, oc)
                wb = wp[block]
                for ic in range(c_in):
                    plane = xp[ic]
                    for ky in range(3):
                        top = plane[oy + ky]
                        bottom = plane[oy + ky + 1]
                        for kx in range(3):
                            r0 = top[ox + kx:ox + kx + 32]
                            r1 = bottom[ox + kx:ox + kx + 32]
                            _tile_4x2x32_fma(acc, r0, r1, wb[9 * ic + 3 * ky + kx])
                _tile_4x2x32_store(acc, out, oc, out_top + oy, out_left + ox, leaky, slope, cap)
            col_start += 32
        row_start += 2


# --- small maps, many input channels: convolution as dot products over patches ---------------------------------
#
# On a 7x7 map even the flat planes are short (a 64-long loop per output block and input channel, so loop
# overhead and the accumulators' loads and stores dominate). Here the input patches are copied out once
# (im2col, K = C_in * kh * kw values per pixel) and every output is a dot product of length K, 4 output channels x
# 4 pixels at a time in 16 running sums that stay in registers: digits' 16 -> 32 channel 7x7 layer 11.6 -> 7.8 us.


def patches_scratch_size(c_in, kh, kw, c_out, out_h, out_w, pool):
    """Floats of scratch conv_patches needs: the patches, plus the unpooled conv output when pooling."""
    pixels = out_h * out_w * (4 if pool == 2 else 1)
    return pixels * c_in * kh * kw + (c_out * pixels if pool == 2 else 0)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def conv_patches(xp, w, b, out, scratch, pool, act, alpha):
    """Stride-1, undilated, ungrouped conv of the padded xp with any kernel size, bias and activation fused,
    same result as conv2d (pool = 1) or conv2d followed by a 2x2 stride-2 max pool (pool = 2: out is the pooled
    map and only the conv outputs the pool reads are computed). C_out >= 4 and at least 4 conv outputs per
    channel; act is one of FLAT_ACTIVATIONS; scratch: patches_scratch_size(...) floats, contents ignored."""
    c_in = xp.shape[0]
    c_out, out_h, out_w = out.shape
    kh, kw = w.shape[2], w.shape[3]
    conv_h = out_h * pool
    conv_w = out_w * pool
    depth = c_in * kh * kw
    pixels = conv_h * conv_w
    patches = scratch[:pixels * depth].reshape(pixels, depth)
    for oy in range(conv_h):
        for ox in range(conv_w):
            row = patches[oy * conv_w + ox]
            j = 0
            for ic in range(c_in):
                for ky in range(kh):
                    src = xp[ic, oy + ky, ox:]
                    for kx in range(kw):
                        row[j] = src[kx]
                        j += 1
    w2 = w.reshape(c_out, depth)
    if pool == 2:
        conv_out = scratch[pixels * depth:pixels * depth + c_out * pixels].reshape(c_out, pixels)
    else:
        conv_out = out.reshape(c_out, pixels)
    _rows_dot_blocks(w2, patches, b, conv_out)
    if pool == 2:
        for c in range(c_out):
            src = conv_out[c]
            for oy in range(out_h):
                top = src[2 * oy * conv_w:]
                bottom = src[(2 * oy + 1) * conv_w:]
                row = out[c, oy]
                for ox in range(out_w):
                    a = top[2 * ox]
                    z = top[2 * ox + 1]
                    m = a if a > z else z
                    a = bottom[2 * ox]
                    z = bottom[2 * ox + 1]
                    m = m if m > a else a
                    row[ox] = m if m > z else z
    _piecewise_act(out.reshape(out.size), act, alpha)


# --- small maps, many input channels, few output channels: dot products along the channels ----------------------
#
# Classifier heads like mini-Xception's 3x3 128 -> 7 on 4x4 have too few outputs per channel for any loop along
# the pixels (conv2d ran it at ~5 GMAC/s) and 7 output channels fill 4-channel blocks badly; conv_patches' im2col
# copy (9 x 128 values per pixel) cost more than the products. Here the padded input is transposed once to
# channels-last (Hp * Wp rows of C_in values, 9x less copying than im2col) and each output is a sum over the
# taps of dot products of length C_in between a weight row and an input row, 4 output channels x 4 pixels at a
# time (16 sums, each of the 8 values loaded per channel feeding four).


def channels_last_weights(w):
    """(C_out, C_in, KH, KW) weights as the (C_out, KH, KW, C_in) array conv_channels_last reads (at load)."""
    return np.ascontiguousarray(np.transpose(w, (0, 2, 3, 1)))


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def conv_channels_last(xp, wt, b, out, xt, act, alpha):
    """Stride-1, undilated, ungrouped conv of the padded xp (C_in, Hp, Wp), bias and activation fused, same
    result as conv2d: wt = channels_last_weights(w), (C_out, KH, KW, C_in); out (C_out, Ho, Wo) with C_out >= 4
    and Ho * Wo >= 4; xt: float32 scratch of at least Hp * Wp * C_in values, contents ignored."""
    c_in, hp, wp = xp.shape
    c_out, kh, kw = wt.shape[0], wt.shape[1], wt.shape[2]
    out_h, out_w = out.shape[1], out.shape[2]
    x_t = xt[:hp * wp * c_in].reshape(hp * wp, c_in)
    x_flat = xp.reshape(c_in, hp * wp)
    for ic in range(c_in):
        src = x_flat[ic]
        for q in range(hp * wp):
            x_t[q, ic] = src[q]
    out_flat = out.reshape(c_out, out_h * out_w)
    pixels = out_h * out_w
    block = 0
    while block < c_out:
        # shifted last blocks (of channels and of pixels) recompute a few outputs instead of needing tail code
        oc = min(block, c_out - 4)
        start = 0
        while start < pixels:
            p = min(start, pixels - 4)
            q0 = (p // out_w) * wp + p % out_w
            q1 = ((p + 1) // out_w) * wp + (p + 1) % out_w
            q2 = ((p + 2) // out_w) * wp + (p + 2) % out_w
            q3 = ((p + 3) // out_w) * wp + (p + 3) % out_w
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.float32(0.0)
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = np.float32(0.0)
            for ky in range(kh):
                for kx in range(kw):
                    shift = ky * wp + kx
                    r0, r1, r2, r3 = wt[oc, ky, kx], wt[oc + 1, ky, kx], wt[oc + 2, ky, kx], wt[oc + 3, ky, kx]
                    x0, x1, x2, x3 = x_t[q0 + shift], x_t[q1 + shift], x_t[q2 + shift], x_t[q3 + shift]
                    for k in range(c_in):
                        a0, a1, a2, a3 = r0[k], r1[k], r2[k], r3[k]
                        v0, v1, v2, v3 = x0[k], x1[k], x2[k], x3[k]
                        s00 += a0 * v0
                        s01 += a0 * v1
                        s02 += a0 * v2
                        s03 += a0 * v3
                        s10 += a1 * v0
                        s11 += a1 * v1
                        s12 += a1 * v2
                        s13 += a1 * v3
                        s20 += a2 * v0
                        s21 += a2 * v1
                        s22 += a2 * v2
                        s23 += a2 * v3
                        s30 += a3 * v0
                        s31 += a3 * v1
                        s32 += a3 * v2
                        s33 += a3 * v3
            _store4(out_flat[oc], p, b[oc], s00, s01, s02, s03)
            _store4(out_flat[oc + 1], p, b[oc + 1], s10, s11, s12, s13)
            _store4(out_flat[oc + 2], p, b[oc + 2], s20, s21, s22, s23)
            _store4(out_flat[oc + 3], p, b[oc + 3], s30, s31, s32, s33)
            start += 4
        block += 4
    if act != 0:
        activate_inplace(out.reshape(out.size), act, alpha)


# --- depthwise 3x3 "same" on the unpadded map -------------------------------------------------------------------
#
# A depthwise conv after a pointwise one (Xception's separable blocks) would otherwise need its input copied into
# a zero-bordered buffer first (pad_into: a whole extra pass over the map, ~7 us for 16 x 60 x 60). Here the
# border is implicit: the rows above the first and below the last are a zero row, the interior columns run the
# same vectorised nine-tap loop as _depthwise3x3_s1 on slices shifted by one column, and the first and last
# columns, whose windows stick out, are summed with their outside taps left out. Leaving out a zero product does
# not change a float sum, so the values are bit for bit those of conv2d on the padded map.


@njit(nogil=True, error_model="numpy", inline="always")
def _edge_columns3(out_row, bias, t, r0, r1, r2, width):
    """The first and last outputs of a row: bias + the taps whose input column lies inside [0, width), in the
    order _biased_dot9 adds them."""
    if width == 1:
        out_row[0] = bias + t[1] * r0[0] + t[4] * r1[0] + t[7] * r2[0]
        return
    out_row[0] = bias + t[1] * r0[0] + t[2] * r0[1] + t[4] * r1[0] + t[5] * r1[1] + t[7] * r2[0] + t[8] * r2[1]
    e = width - 2
    out_row[width - 1] = (bias + t[0] * r0[e] + t[1] * r0[e + 1] + t[3] * r1[e] + t[4] * r1[e + 1]
                          + t[6] * r2[e] + t[7] * r2[e + 1])


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def depthwise3x3_same(x, w, b, out, zero_row, act, alpha):
    """Depthwise 3x3 stride 1 conv with one pixel of zero padding on every side, of the unpadded x (C, H, W)
    (w (C * m, 1, 3, 3), any channel multiplier m), bias and activation fused, into out (C * m, H, W): same values
    as conv2d on the padded map. zero_row: float32 scratch of at least W values (zeroed here)."""
    c_out, height, width = out.shape
    mult = c_out // x.shape[0]
    zero = zero_row[:width]
    for i in range(width):
        zero[i] = np.float32(0.0)
    for oc in range(c_out):
        taps = _taps3x3(w[oc, 0])
        bias = b[oc]
        plane = x[oc // mult]
        oy = 0
        while width >= 24 and oy + 1 < height:
            # two output rows per pass, as in _depthwise3x3_s1
            r0 = plane[oy - 1] if oy > 0 else zero
            r1 = plane[oy]
            r2 = plane[oy + 1]
            r3 = plane[oy + 2] if oy + 2 < height else zero
            top = out[oc, oy]
            bottom = out[oc, oy + 1]
            inner_top = top[1:]
            inner_bottom = bottom[1:]
            for ox in range(width - 2):
                a0, a1, a2 = r0[ox], r0[ox + 1], r0[ox + 2]
                b0, b1, b2 = r1[ox], r1[ox + 1], r1[ox + 2]
                c0, c1, c2 = r2[ox], r2[ox + 1], r2[ox + 2]
                d0, d1, d2 = r3[ox], r3[ox + 1], r3[ox + 2]
                inner_top[ox] = _biased_dot9(bias, taps, (a0, a1, a2, b0, b1, b2, c0, c1, c2))
                inner_bottom[ox] = _biased_dot9(bias, taps, (b0, b1, b2, c0, c1, c2, d0, d1, d2))
            _edge_columns3(top, bias, taps, r0, r1, r2, width)
            _edge_columns3(bottom, bias, taps, r1, r2, r3, width)
            oy += 2
        while oy < height:
            r0 = plane[oy - 1] if oy > 0 else zero
            r1 = plane[oy]
            r2 = plane[oy + 1] if oy + 1 < height else zero
            out_row = out[oc, oy]
            inner = out_row[1:]
            for ox in range(width - 2):
                inner[ox] = _biased_dot9(bias, taps, _window3x3(r0, r1, r2, ox))
            _edge_columns3(out_row, bias, taps, r0, r1, r2, width)
            oy += 1
        _finish_plane(out, oc, act, alpha)


# --- depthwise 3x3 on narrow maps: flat padded planes ----------------------------------------------------------
#
# With 16-float vectors a 15- or 8-wide output row is all scalar tail, so _depthwise3x3_s1's row loops ran scalar
# on Xception's 15x15 and 8x8 maps. As in conv3x3_flat, the padded plane is seen as one flat vector: output (oy, ox)
# is q = oy * Wp + ox and tap (ky, kx) reads q + ky * Wp + kx, so one vector loop covers the plane (the two
# padding columns per row are computed and dropped); the rows are then copied out with the activation. Measured
# (16-float vectors) 64x15x15 12.2 -> 8.5 us, 32x15x15 6.3 -> 4.4, 128x8x8 8.9 -> 6.4, 64x8x8 4.7 -> 3.4; on 30- and
# 60-wide maps the row loops are as fast or faster (32x30x30 11.4 vs 12.1, 16x60x60 15.5 vs 20.9).


def depthwise_flat_scratch_size(out_h, padded_w):
    """Floats of scratch depthwise3x3_flat needs."""
    return out_h * padded_w


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def depthwise3x3_flat(xp, w, b, out, scratch, act, alpha):
    """Depthwise 3x3 stride 1 conv of the padded xp (C, Hp, Wp) (w (C * m, 1, 3, 3), any channel multiplier m),
    bias and activation (one of FLAT_ACTIVATIONS) fused, into out (C * m, Hp - 2, Wp - 2): same values as conv2d
    with groups = C. scratch: at least depthwise_flat_scratch_size(Hp - 2, Wp) floats, contents ignored.

    The plane runs in literal 16-position blocks through a register tile and the rows are copied out in literal
    8-column blocks (the last block of each shifted back to end at the edge, recomputing or recopying a few
    values): a run-time-length loop over the 253 positions of a 15x15 map left a scalar tail of up to 63 (LLVM
    interleaves 16-float vectors by 4), and a 15- or 8-wide row copy was all scalar tail. Measured 64x15x15 8.7 ->
    7.3 us, 128x8x8 6.5 -> 5.1 (with one tile for both: 8.9 and 6.3). Planes under 16 positions or rows under 8
    wide take plain loops."""
    c_in, hp, wp = xp.shape
    c_out, out_h, out_w = out.shape
    mult = c_out // c_in
    plane = hp * wp
    n = out_h * wp - 2   # the last row's two padding columns would read past the plane
    x_flat = xp.reshape(c_in * plane)
    acc = scratch[:n]
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    tile = register_tile(16)
    copy = register_tile(8)
    for oc in range(c_out):
        k = w[oc, 0]
        t0, t1, t2 = k[0, 0], k[0, 1], k[0, 2]
        t3, t4, t5 = k[1, 0], k[1, 1], k[1, 2]
        t6, t7, t8 = k[2, 0], k[2, 1], k[2, 2]
        base = (oc // mult) * plane
        bias = b[oc]
        if n >= 16:
            start = 0
            while start < n:
                q = min(start, n - 16)
                # the block's windows: tap (ky, kx) of position q + i reads q + i + ky * wp + kx
                u = x_flat[base + q:base + q + 18]
                v = x_flat[base + q + wp:base + q + wp + 18]
                z = x_flat[base + q + 2 * wp:base + q + 2 * wp + 18]
                for i in range(16):
                    tile[i] = _piecewise(bias + t0 * u[i] + t1 * u[i + 1] + t2 * u[i + 2] + t3 * v[i]
                                         + t4 * v[i + 1] + t5 * v[i + 2] + t6 * z[i] + t7 * z[i + 1]
                                         + t8 * z[i + 2], leaky, slope, cap)
                # through the tile: the loop above stores nothing that could alias its loads (no run-time checks)
                d = acc[q:q + 16]
                for i in range(16):
                    d[i] = tile[i]
                start += 16
        else:
            s0 = x_flat[base:]
            s1 = x_flat[base + 1:]
            s2 = x_flat[base + 2:]
            s3 = x_flat[base + wp:]
            s4 = x_flat[base + wp + 1:]
            s5 = x_flat[base + wp + 2:]
            s6 = x_flat[base + 2 * wp:]
            s7 = x_flat[base + 2 * wp + 1:]
            s8 = x_flat[base + 2 * wp + 2:]
            for q in range(n):
                acc[q] = _piecewise(bias + t0 * s0[q] + t1 * s1[q] + t2 * s2[q] + t3 * s3[q] + t4 * s4[q]
                                    + t5 * s5[q] + t6 * s6[q] + t7 * s7[q] + t8 * s8[q], leaky, slope, cap)
        for oy in range(out_h):
            row = out[oc, oy]
            if out_w < 8:
                src = acc[oy * wp:]
                for ox in range(out_w):
                    row[ox] = src[ox]
                continue
            start = 0
            while start < out_w:
                s = min(start, out_w - 8)
                src = acc[oy * wp + s:oy * wp + s + 8]
                dst = row[s:s + 8]
                # copied through the tile so LLVM may load all eight before storing (acc and out could alias)
                for i in range(8):
                    copy[i] = src[i]
                for i in range(8):
                    dst[i] = copy[i]
                start += 8


# --- depthwise 3x3 "same" on the unpadded map, flat -------------------------------------------------------------
#
# depthwise3x3_same on a flat plane: output (oy, ox) of a row other than the first and last is q = oy * W + ox and
# tap (ky, kx) reads q + (ky - 1) * W + kx - 1, so one vector loop covers those rows (no pad copy, no row loops with
# scalar tails under 16-float vectors, and the output plane has the input's pitch: no copy out either). Outputs
# whose window sticks out of the map (first and last row, first and last column, where the flat offsets would
# wrap into the neighbouring row) are then recomputed with their outside taps left out.


@njit(nogil=True, error_model="numpy", inline="always")
def _edge_value(plane, oy, ox, height, width, t, bias):
    """bias + the taps of the 3x3 window at (oy, ox) that lie inside the (height, width) plane."""
    acc = bias
    for ky in range(3):
        y = oy + ky - 1
        if y < 0 or y >= height:
            continue
        row = plane[y]
        for kx in range(3):
            x = ox + kx - 1
            if x >= 0 and x < width:
                acc += t[3 * ky + kx] * row[x]
    return acc


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def depthwise3x3_same_flat(x, w, b, out, act, alpha):
    """Same result as depthwise3x3_same (depthwise 3x3 stride 1, one pixel of zero padding on every side, of the
    unpadded x (C, H, W), w (C * m, 1, 3, 3), bias and activation (one of FLAT_ACTIVATIONS) fused, out (C * m, H, W)),
    for H, W >= 2.

    The activation rides on the stores (_piecewise), not a pass of its own over the output; the edge columns of
    the inner rows are written out tap by tap (straight-line code, no loops over the window with bounds tests),
    only the four corners go through _edge_value. Measured 16x60x60 16.9 -> 16.1 us, 32x30x30 11.3 -> 10.6, 64x15x15
    10.3 -> 9.4."""
    c_out, height, width = out.shape
    mult = c_out // x.shape[0]
    plane = height * width
    x_flat = x.reshape(x.shape[0] * plane)
    n = (height - 2) * width - 2   # rows 1 .. H - 2 without their first and last output
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    for oc in range(c_out):
        k = w[oc, 0]
        t0, t1, t2 = k[0, 0], k[0, 1], k[0, 2]
        t3, t4, t5 = k[1, 0], k[1, 1], k[1, 2]
        t6, t7, t8 = k[2, 0], k[2, 1], k[2, 2]
        bias = b[oc]
        base = (oc // mult) * plane
        o = out[oc].reshape(plane)
        d = o[width + 1:]
        s0 = x_flat[base:]
        s1 = x_flat[base + 1:]
        s2 = x_flat[base + 2:]
        s3 = x_flat[base + width:]
        s4 = x_flat[base + width + 1:]
        s5 = x_flat[base + width + 2:]
        s6 = x_flat[base + 2 * width:]
        s7 = x_flat[base + 2 * width + 1:]
        s8 = x_flat[base + 2 * width + 2:]
        for q in range(n):
            d[q] = _piecewise(bias + t0 * s0[q] + t1 * s1[q] + t2 * s2[q] + t3 * s3[q] + t4 * s4[q] + t5 * s5[q]
                              + t6 * s6[q] + t7 * s7[q] + t8 * s8[q], leaky, slope, cap)
        # the first and last rows (no row above / below), then the first and last column of every row
        top = o
        bottom = o[(height - 1) * width:]
        r0 = x_flat[base:]
        r1 = x_flat[base + width:]
        rb = x_flat[base + (height - 2) * width:]
        rc = x_flat[base + (height - 1) * width:]
        for q in range(width - 2):
            top[q + 1] = _piecewise(bias + t3 * r0[q] + t4 * r0[q + 1] + t5 * r0[q + 2]
                                    + t6 * r1[q] + t7 * r1[q + 1] + t8 * r1[q + 2], leaky, slope, cap)
            bottom[q + 1] = _piecewise(bias + t0 * rb[q] + t1 * rb[q + 1] + t2 * rb[q + 2]
                                       + t3 * rc[q] + t4 * rc[q + 1] + t5 * rc[q + 2], leaky, slope, cap)
        taps = (t0, t1, t2, t3, t4, t5, t6, t7, t8)
        src = x[oc // mult]
        dst = out[oc]
        e = width - 2
        for oy in range(1, height - 1):
            if width < 2:   # one column: its windows lose both side columns
                dst[oy, 0] = _piecewise(_edge_value(src, oy, 0, height, width, taps, bias), leaky, slope, cap)
                continue
            a = src[oy - 1]
            m = src[oy]
            z = src[oy + 1]
            dst[oy, 0] = _piecewise(bias + t1 * a[0] + t2 * a[1] + t4 * m[0] + t5 * m[1] + t7 * z[0] + t8 * z[1],
                                    leaky, slope, cap)
            dst[oy, width - 1] = _piecewise(bias + t0 * a[e] + t1 * a[e + 1] + t3 * m[e] + t4 * m[e + 1]
                                            + t6 * z[e] + t7 * z[e + 1], leaky, slope, cap)
        for oy in (0, height - 1):
            dst[oy, 0] = _piecewise(_edge_value(src, oy, 0, height, width, taps, bias), leaky, slope, cap)
            dst[oy, width - 1] = _piecewise(_edge_value(src, oy, width - 1, height, width, taps, bias), leaky,
                                            slope, cap)


# --- depthwise 3x3 on padded maps in literal 16-wide blocks -------------------------------------------------------
#
# _depthwise3x3_s1's loop of run-time length over a row vectorises as whole 16-float vectors plus a scalar tail: 14
# of a 30-wide row's columns (dropping the tail alone took 32x30x30 from 8.6 to 5.2 us). Here every inner loop runs
# a literal 16 times, the last block of a row (and the last pair of rows) shifted back to end at the edge to
# recompute a few outputs instead of running tail code. The sums go to a register tile first and are copied out:
# stored straight into the output rows, LLVM guarded the loop with run-time alias checks and judged them too dear
# for 16 iterations (scalar code, 2x slower than conv2d). Loops with a run-time trip count that LLVM can tell is a
# multiple of 16 were worse still (4-5x: its checks, hoisted over the whole plane, find the two output rows'
# ranges overlapping and take the scalar path every time).

@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def depthwise3x3_rows(xp, w, b, out, act, alpha):
    """Depthwise 3x3 stride 1 conv of the padded xp (C, Hp, Wp) (w (C * m, 1, 3, 3), any channel multiplier m),
    bias and activation (one of FLAT_ACTIVATIONS) fused, into out (C * m, Hp - 2, Wp - 2): same values as conv2d
    with groups = C. Needs Hp - 2 >= 2 and Wp - 2 >= 16: two output rows x 16 columns per block (they share two of
    their four input rows: 12 loads for 18 FMAs). Measured against conv2d (its activation a pass of its own) with
    relu 16x30x30 5.4 -> 3.8 us, 32x30x30 10.9 -> 7.5; 60-wide maps about even (16x60x60 13.7 -> 13.5)."""
    c_in = xp.shape[0]
    c_out, out_h, out_w = out.shape
    mult = c_out // c_in
    tile = register_tile(32)
    leaky, slope, cap = _piecewise_params_jit(act, alpha)
    for oc in range(c_out):
        k = w[oc, 0]
        t0, t1, t2 = k[0, 0], k[0, 1], k[0, 2]
        t3, t4, t5 = k[1, 0], k[1, 1], k[1, 2]
        t6, t7, t8 = k[2, 0], k[2, 1], k[2, 2]
        bias = b[oc]
        plane = xp[oc // mult]
        row_start = 0
        while row_start < out_h:
            oy = min(row_start, out_h - 2)
            col_start = 0
            while col_start < out_w:
                ox = min(col_start, out_w - 16)
                r0 = plane[oy, ox:ox + 18]
                r1 = plane[oy + 1, ox:ox + 18]
                r2 = plane[oy + 2, ox:ox + 18]
                r3 = plane[oy + 3, ox:ox + 18]
                for i in range(16):
                    a0, a1, a2 = r0[i], r0[i + 1], r0[i + 2]
                    b0, b1, b2 = r1[i], r1[i + 1], r1[i + 2]
                    c0, c1, c2 = r2[i], r2[i + 1], r2[i + 2]
                    d0, d1, d2 = r3[i], r3[i + 1], r3[i + 2]
                    tile[i] = _piecewise(bias + t0 * a0 + t1 * a1 + t2 * a2 + t3 * b0 + t4 * b1 + t5 * b2
                                         + t6 * c0 + t7 * c1 + t8 * c2, leaky, slope, cap)
                    tile[16 + i] = _piecewise(bias + t0 * b0 + t1 * b1 + t2 * b2 + t3 * c0 + t4 * c1 + t5 * c2
                                              + t6 * d0 + t7 * d1 + t8 * d2, leaky, slope, cap)
                top = out[oc, oy, ox:ox + 16]
                for i in range(16):
                    top[i] = tile[i]
                bottom = out[oc, oy + 1, ox:ox + 16]
                for i in range(16):
                    bottom[i] = tile[16 + i]
                col_start += 16
            row_start += 2
