"""Pooling kernels. Max / min pool read a pre-padded input (border -inf / +inf, see pad_into), so the window
loops use only non-negative offsets; average pool reads the unpadded input because it must count only real cells.
"""
import numpy as np
from numba import njit

from stream_cnn.model.kernels.simd import window3s2_add8x2, window3s2_add16


@njit(cache=True, nogil=True, error_model="numpy")
def _extreme_pool(xp, out, kh, kw, sh, sw, sign):
    """Max pool of sign * xp, times sign: sign = 1 is max pool, sign = -1 is min pool (min x = -max(-x)).

    Negation is exact, so one loop nest serves both. Each output row starts at -inf and folds in one input row
    at a time; the common window widths (2, 3) and strides (1, 2) are unrolled with literal offsets.
    """
    channels, out_h, out_w = out.shape
    lowest = np.float32(-np.inf)
    for c in range(channels):
        for oy in range(out_h):
            o = out[c, oy]
            for ox in range(out_w):
                o[ox] = lowest
            for ky in range(kh):
                r = xp[c, oy * sh + ky]
                if kw == 2 and sw == 2:
                    for ox in range(out_w):
                        a = sign * r[2 * ox]
                        z = sign * r[2 * ox + 1]
                        m = a if a > z else z
                        o[ox] = m if m > o[ox] else o[ox]
                elif kw == 3 and sw == 1:
                    for ox in range(out_w):
                        a = sign * r[ox]
                        y = sign * r[ox + 1]
                        z = sign * r[ox + 2]
                        m = a if a > y else y
                        m = m if m > z else z
                        o[ox] = m if m > o[ox] else o[ox]
                elif kw == 3 and sw == 2:
                    for ox in range(out_w):
                        a = sign * r[2 * ox]
                        y = sign * r[2 * ox + 1]
                        z = sign * r[2 * ox + 2]
                        m = a if a > y else y
                        m = m if m > z else z
                        o[ox] = m if m > o[ox] else o[ox]
                else:
                    for kx in range(kw):
                        seg = r[kx:]
                        if sw == 1:
                            for ox in range(out_w):
                                v = sign * seg[ox]
                                o[ox] = v if v > o[ox] else o[ox]
                        elif sw == 2:
                            for ox in range(out_w):
                                v = sign * seg[2 * ox]
                                o[ox] = v if v > o[ox] else o[ox]
                        else:
                            for ox in range(out_w):
                                v = sign * seg[ox * sw]
                                o[ox] = v if v > o[ox] else o[ox]
            if sign < 0:
                for ox in range(out_w):
                    o[ox] = -o[ox]


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool(xp, out, kh, kw, sh, sw):
    """out[c, oy, ox] = max of the kh x kw window at (oy*sh, ox*sw) of xp (already padded with -inf)."""
    _extreme_pool(xp, out, kh, kw, sh, sw, np.float32(1.0))


@njit(cache=True, nogil=True, error_model="numpy")
def min_pool(xp, out, kh, kw, sh, sw):
    """out[c, oy, ox] = min of the kh x kw window at (oy*sh, ox*sw) of xp (already padded with +inf)."""
    _extreme_pool(xp, out, kh, kw, sh, sw, np.float32(-1.0))


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_separable(xp, out, row, kh, kw, sh, sw):
    """max_pool computed as a column max then a row max: same result, fewer strided loads.

    For each output row the kh input rows are folded into `row` (float32 scratch of at least xp.shape[2]
    values) with contiguous, vectorised loads; only the kw-wide pass over that one row reads with the stride.
    A 3x3 stride-2 window then costs 3 strided loads per output instead of 9 (Xception's pools: ~3x faster).
    """
    channels, out_h, out_w = out.shape
    width = (out_w - 1) * sw + kw
    t = row[:width]
    for c in range(channels):
        for oy in range(out_h):
            r = xp[c, oy * sh]
            for x in range(width):
                t[x] = r[x]
            for ky in range(1, kh):
                r = xp[c, oy * sh + ky]
                for x in range(width):
                    v = r[x]
                    t[x] = v if v > t[x] else t[x]
            o = out[c, oy]
            if kw == 3 and sw == 2:
                for ox in range(out_w):
                    a = t[2 * ox]
                    y = t[2 * ox + 1]
                    z = t[2 * ox + 2]
                    m = a if a > y else y
                    o[ox] = m if m > z else z
            elif kw == 2 and sw == 2:
                for ox in range(out_w):
                    a = t[2 * ox]
                    z = t[2 * ox + 1]
                    o[ox] = a if a > z else z
            else:
                for ox in range(out_w):
                    window = t[ox * sw:]
                    m = window[0]
                    for kx in range(1, kw):
                        v = window[kx]
                        m = v if v > m else m
                    o[ox] = m


# max_pool_flat works on this many floats of input at a time (whole channels, at least one), so the input
# chunk and its two passes stay in L1/L2 instead of streaming the whole map through L2 three times.
FLAT_POOL_CHUNK = 2048


def flat_pool_scratch_size(xp_shape):
    """Floats of scratch max_pool_flat needs for a padded input of this (C, Hp, Wp) shape."""
    plane = xp_shape[1] * xp_shape[2]
    return 2 * min(xp_shape[0], max(1, FLAT_POOL_CHUNK // plane)) * plane


@njit(nogil=True, error_model="numpy", inline="always")
def _shifted_max(src, dst, n, taps, step):
    """dst[q] = max over t < taps of src[q + t * step] for q < n: one pass of max_pool_flat (the column max with
    step = Wp, the row max with step = 1). Each shift is a slice view, so the loops index with q alone and
    vectorise; a 3-tap window (the common one) is one pass, others fold in one shift at a time."""
    if taps == 3:
        s1 = src[step:]
        s2 = src[2 * step:]
        for q in range(n):
            a = src[q]
            y = s1[q]
            z = s2[q]
            m = a if a > y else y
            dst[q] = m if m > z else z
    else:
        for q in range(n):
            dst[q] = src[q]
        for t in range(1, taps):
            s = src[t * step:]
            for q in range(n):
                v = s[q]
                dst[q] = v if v > dst[q] else dst[q]


@njit(nogil=True, error_model="numpy", inline="always")
def _max_pool_flat(xp, res, out, scratch, kh, kw, sh, sw, out_top, out_left, with_res):
    """The body of max_pool_flat and max_pool_flat_add (see there); with_res adds res[c, oy, ox] to each output."""
    channels, hp, wp = xp.shape
    out_h, out_w = res.shape[1], res.shape[2]
    plane = hp * wp
    chunk = min(channels, max(1, FLAT_POOL_CHUNK // plane))
    flat = xp.reshape(channels * plane)
    c0 = 0
    while c0 < channels:
        n_ch = min(chunk, channels - c0)
        length = n_ch * plane
        x = flat[c0 * plane:c0 * plane + length]
        n_col = length - (kh - 1) * wp
        n_row = n_col - (kw - 1)
        col = scratch[:n_col]
        win = scratch[chunk * plane:chunk * plane + n_row]
        _shifted_max(x, col, n_col, kh, wp)
        _shifted_max(col, win, n_row, kw, 1)
        for c in range(n_ch):
            for oy in range(out_h):
                src = win[c * plane + oy * sh * wp:]
                o = out[c0 + c, out_top + oy, out_left:out_left + out_w]
                if with_res:
                    r = res[c0 + c, oy]
                    if sw == 2:
                        for ox in range(out_w):
                            o[ox] = src[2 * ox] + r[ox]
                    else:
                        for ox in range(out_w):
                            o[ox] = src[ox * sw] + r[ox]
                elif sw == 2:
                    for ox in range(out_w):
                        o[ox] = src[2 * ox]
                else:
                    for ox in range(out_w):
                        o[ox] = src[ox * sw]
        c0 += n_ch


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_flat(xp, out, scratch, kh, kw, sh, sw):
    """max_pool on padded planes seen as flat vectors: same result, for small and strided pools.

    max_pool_separable walks (channel, output row) pairs and gathers kw strided values per output; on
    Xception's 3x3 stride-2 pools (rows of 9 to 61 values) those short loops and the scalar gathers were most of
    the time. Here, for a chunk of whole channels at a time, the column max over kh rows is one contiguous pass
    (cell q reads q + ky * Wp), the row max over kw columns a second one (q + kx), and each output is then a
    single strided load of (c, oy * sh, ox * sw). Cells whose window crosses a row or channel edge are computed
    and never read; the passes cover sh times more rows than the outputs need, but vectorised that is cheaper.
    scratch: float32 of at least flat_pool_scratch_size(xp.shape), contents ignored.
    """
    _max_pool_flat(xp, out, out, scratch, kh, kw, sh, sw, 0, 0, False)


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_flat_add(xp, res, out, scratch, kh, kw, sh, sw, out_top, out_left):
    """A max pool and the residual add after it in one pass (Xception's block ends: add(pool(x), shortcut)):
    out[c, out_top + oy, out_left + ox] = max_pool(xp)[c, oy, ox] + res[c, oy, ox], for res (C, Ho, Wo).

    out may be the next layer's padded buffer, (out_top, out_left) the corner of the map in it; nothing outside
    that window is written, so the border keeps its fill. The pooled map is never stored: the add reads it
    while it is in registers (the separate add was another pass over both maps)."""
    _max_pool_flat(xp, res, out, scratch, kh, kw, sh, sw, out_top, out_left, True)


@njit(nogil=True, error_model="numpy", inline="always")
def _window_rows(x, c, oy, pad_top):
    """The three rows of x[c] under output row oy's window; a row in the padding is replaced by one inside the
    map that the window also covers (max is idempotent)."""
    height = x.shape[1]
    top = 2 * oy - pad_top
    return (x[c, max(top, 0)], x[c, min(max(top + 1, 0), height - 1)], x[c, min(top + 2, height - 1)])


@njit(nogil=True, error_model="numpy", inline="always")
def _column_max(r0, r1, r2, col, width):
    """max(r0[col], r1[col], r2[col]), or -inf for a column outside the map."""
    if col >= width:
        return np.float32(-np.inf)
    a = r0[col]
    y = r1[col]
    z = r2[col]
    m = a if a > y else y
    return m if m > z else z


@njit(cache=True, nogil=True, error_model="numpy")
def _pool3s2_add_narrow(x, res, out, pad_top, pad_left, out_top, out_left):
    """max_pool3s2_add for rows of at most 8 outputs: two output rows per vector (window3s2_add8x2); an odd last
    row is paired with itself (written twice, same values). 128x8x8 4.1 -> 2.6 us, 64x15x15 4.2 -> 2.6."""
    channels, height, width = x.shape
    out_h, out_w = res.shape[1], res.shape[2]
    start = -pad_left
    for c in range(channels):
        for oy in range(0, out_h, 2):
            oy2 = min(oy + 1, out_h - 1)
            a0, a1, a2 = _window_rows(x, c, oy, pad_top)
            b0, b1, b2 = _window_rows(x, c, oy2, pad_top)
            window3s2_add8x2(a0, a1, a2, b0, b1, b2, start, width, _column_max(a0, a1, a2, start + 16, width),
                             _column_max(b0, b1, b2, start + 16, width), res[c, oy], res[c, oy2],
                             out[c, out_top + oy, out_left:], out[c, out_top + oy2, out_left:], out_w)


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool3s2_add(x, res, out, pad_top, pad_left, out_top, out_left):
    """max_pool_flat_add for a 3x3 stride-2 max pool read unpadded: out[c, out_top + oy, out_left + ox] = max of
    x[c] over rows 2 oy - pad_top .. + 2 and columns 2 ox - pad_left .. + 2 that lie inside x, + res[c, oy, ox],
    for x (C, H, W), res (C, Ho, Wo) the pool's output shape (any "same" or explicit padding below 3).

    The padding is never materialised (Xception's pools: no pad copy; on odd maps the copy cost ~4 us of 64x15x15):
    a window row outside the map is replaced by one inside it (max is idempotent), columns outside are masked to
    -inf. Each chunk of up to 16 outputs of a row is one window3s2_add16 (kernels/simd.py): the three rows' 33
    columns loaded as masked vectors, the column maximum, the even / odd / next-even lanes shuffled out, the
    residual added and the chunk stored under a mask, so rows of any length run as vectors. Was: flat passes over
    the chunk's row maxima at even columns through scratch, then a scalar loop per output row: 16x60x60 13.1 ->
    6.6 us, 32x30x30 9.2 -> 3.9, 128x8x8 5.1 -> 4.2; 64x15x15 with "same" padding 3.7 (pad) + 5.6
    (max_pool_flat_add) -> 4.2."""
    channels, height, width = x.shape
    out_h, out_w = res.shape[1], res.shape[2]
    lowest = np.float32(-np.inf)
    if out_w <= 8:
        _pool3s2_add_narrow(x, res, out, pad_top, pad_left, out_top, out_left)
        return
    for c in range(channels):
        for oy in range(out_h):
            top = 2 * oy - pad_top
            r0 = x[c, max(top, 0)]
            r1 = x[c, min(max(top + 1, 0), height - 1)]
            r2 = x[c, min(top + 2, height - 1)]
            o = out[c, out_top + oy, out_left:]
            res_row = res[c, oy]
            p = 0
            while p < out_w:
                start = 2 * p - pad_left
                # the 33rd column of the chunk (the third of its last window), past the two vectors loaded
                extra = lowest
                if start + 32 < width:
                    a = r0[start + 32]
                    y = r1[start + 32]
                    z = r2[start + 32]
                    m = a if a > y else y
                    extra = m if m > z else z
                window3s2_add16(r0, r1, r2, start, width, extra, res_row, o, p, min(16, out_w - p))
                p += 16


@njit(cache=True, nogil=True, error_model="numpy")
def _avg_pool_full_windows(x, out, kh, kw, sh, sw):
    """Average pool where every window lies inside x (no padding): row passes, then one multiply by 1/(kh*kw)."""
    channels, out_h, out_w = out.shape
    inv_count = np.float32(1.0 / (kh * kw))
    for c in range(channels):
        for oy in range(out_h):
            o = out[c, oy]
            for ox in range(out_w):
                o[ox] = np.float32(0.0)
            for ky in range(kh):
                r = x[c, oy * sh + ky]
                if kw == 2 and sw == 2:
                    for ox in range(out_w):
                        o[ox] += r[2 * ox] + r[2 * ox + 1]
                else:
                    for kx in range(kw):
                        seg = r[kx:]
                        if sw == 1:
                            for ox in range(out_w):
                                o[ox] += seg[ox]
                        elif sw == 2:
                            for ox in range(out_w):
                                o[ox] += seg[2 * ox]
                        else:
                            for ox in range(out_w):
                                o[ox] += seg[ox * sw]
            for ox in range(out_w):
                o[ox] *= inv_count


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool(x, out, kh, kw, sh, sw, pad_top, pad_left):
    """Average over the part of each window that lies inside x (ONNX AveragePool count_include_pad=0).

    A window made only of padding (padding >= kernel, which ONNX forbids) gives 0.
    """
    channels, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    if (pad_top == 0 and pad_left == 0 and (out_h - 1) * sh + kh <= height
            and (out_w - 1) * sw + kw <= width):
        _avg_pool_full_windows(x, out, kh, kw, sh, sw)
        return
    for c in range(channels):
        for oy in range(out_h):
            y0 = oy * sh - pad_top
            y1 = min(y0 + kh, height)
            y0 = max(y0, 0)
            for ox in range(out_w):
                x0 = ox * sw - pad_left
                x1 = min(x0 + kw, width)
                x0 = max(x0, 0)
                total = np.float32(0.0)
                for y in range(y0, y1):
                    row = x[c, y]
                    for xx in range(x0, x1):
                        total += row[xx]
                count = (y1 - y0) * (x1 - x0)
                out[c, oy, ox] = total / np.float32(count) if count > 0 else np.float32(0.0)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def global_avg_pool(x, out):
    """x (C, H, W) -> out (C,): mean over each channel."""
    channels = x.shape[0]
    plane = x.shape[1] * x.shape[2]
    flat = x.reshape(channels, plane)
    for c in range(channels):
        total = np.float32(0.0)
        row = flat[c]
        for i in range(plane):
            total += row[i]
        out[c] = total / np.float32(plane)


@njit(cache=True, nogil=True, error_model="numpy")
def global_max_pool(x, out):
    """x (C, H, W) -> out (C,): max over each channel."""
    channels = x.shape[0]
    plane = x.shape[1] * x.shape[2]
    flat = x.reshape(channels, plane)
    for c in range(channels):
        row = flat[c]
        best = row[0]
        for i in range(1, plane):
            v = row[i]
            best = v if v > best else best
        out[c] = best


@njit(cache=True, nogil=True, error_model="numpy")
def _bin_start(i, size, bins):
    return (i * size) // bins


@njit(cache=True, nogil=True, error_model="numpy")
def _bin_stop(i, size, bins):
    return ((i + 1) * size + bins - 1) // bins


@njit(cache=True, nogil=True, error_model="numpy")
def adaptive_avg_pool(x, out):
    """Bin i of an axis covers [floor(i*H/Ho), ceil((i+1)*H/Ho)) (PyTorch AdaptiveAvgPool2d)."""
    channels, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for c in range(channels):
        for oy in range(out_h):
            y0 = _bin_start(oy, height, out_h)
            y1 = _bin_stop(oy, height, out_h)
            for ox in range(out_w):
                x0 = _bin_start(ox, width, out_w)
                x1 = _bin_stop(ox, width, out_w)
                total = np.float32(0.0)
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        total += x[c, y, xx]
                out[c, oy, ox] = total / np.float32((y1 - y0) * (x1 - x0))


@njit(cache=True, nogil=True, error_model="numpy")
def adaptive_max_pool(x, out):
    """Max over the adaptive bins (same bin edges as adaptive_avg_pool)."""
    height, width = x.shape[1], x.shape[2]
    out_h, out_w = out.shape[1], out.shape[2]
    # Bin bounds are computed inline rather than kept in edge arrays: the kernel must not allocate.
    channels = x.shape[0]
    for c in range(channels):
        for oy in range(out_h):
            y0 = _bin_start(oy, height, out_h)
            y1 = _bin_stop(oy, height, out_h)
            for ox in range(out_w):
                x0 = _bin_start(ox, width, out_w)
                x1 = _bin_stop(ox, width, out_w)
                best = x[c, y0, x0]
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        v = x[c, y, xx]
                        best = v if v > best else best
                out[c, oy, ox] = best


@njit(cache=True, nogil=True, error_model="numpy")
def fractional_max_pool(x, out, row_edges, col_edges):
    """Max over bins [edges[i], edges[i+1]) on each axis; edges (int64, length out+1) from fractional_edges."""
    channels = x.shape[0]
    out_h, out_w = out.shape[1], out.shape[2]
    for c in range(channels):
        for oy in range(out_h):
            y0 = row_edges[oy]
            y1 = row_edges[oy + 1]
            for ox in range(out_w):
                x0 = col_edges[ox]
                x1 = col_edges[ox + 1]
                best = x[c, y0, x0]
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        v = x[c, y, xx]
                        best = v if v > best else best
                out[c, oy, ox] = best
