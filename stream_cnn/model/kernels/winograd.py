"""Winograd F(2x2, 3x3) convolution: 3x3 stride-1 undilated ungrouped conv with bias, a piecewise-linear
activation (FLAT_ACTIVATIONS) and optionally the following 2x2 stride-2 max pool fused.

Each 2x2 block of conv outputs (a tile) is A^T [(G g G^T) * (B^T d B)] A, d the 4x4 input patch under it, g the
3x3 kernel: 16 multiplies per tile and input/output channel pair instead of 36. With U = G g G^T computed once at
load (winograd_weights) and V = B^T d B computed once per input channel and tile, the 16 products summed over
the input channels are 16 independent matrix products M_e (C_out, tiles) = U_e (C_out, C_in) . V_e (C_in, tiles),
e = 0..15 the position in the 4x4 transformed tile. A 2x2 max pool of the conv output is one tile reduced to
its max, so with pool = 2 the tiles are exactly the pooled outputs (floor semantics: an odd last row/column of
the conv output is never computed).

Why the loops look the way they do (digits' maps are 28, 14 and 7 wide, so rows are shorter than a SIMD vector
and a loop along them runs scalar; the stages here run along longer contiguous axes instead):
- Tiles are numbered t = ty * S + tx with S = tiles_w + 1 (one junk tile per tile row; pooled, S is out's row
  pitch when that is tiles_w + 1 or + 2), so the horizontal half of the input transform reads the vertically
  transformed bands of a channel, laid end to end, at 2 t + k: one stride-2 loop over all the channel's tiles. The
  vertical half runs per (channel, tile row) along the input row.
- The products run along the tiles (the contiguous axis of V and M), 4 output channels x 32 tiles per pass, the
  sums in registers through all the input channels (_products4), so each V value loaded feeds four FMAs; M of one
  block of 4 output channels (16 x 4 rows of a chunk of tiles) stays in L1 and the output transform, bias and
  pool run on it right away.
- Maps of few tiles (digits' 7x7 layer: 12 tiles, one 16-lane vector) run the same compiled products along the
  output channels instead, 4 tiles x 32 output channels per pass, V values as the broadcast weights and U (rows
  padded to _CHUNK, winograd_weight_rows) as the rows: fewer passes there (7.7 -> 5.6 us for the layer, with the
  earlier 4 x 4 passes).
  As the products only broadcast V there, junk tiles cost nothing, and V comes from _input_transform_flat: two
  flat loops over all channels at once (tile rows 2 S apart; the Model crops the padded input of an odd map to
  2 tiles + 2 rows and columns so rows are 2 S wide), not 7 short loops per channel (1.65 -> 0.59 us).
- Loop counts are rounded up to 16 lanes with a shift (_lanes16): LLVM then adds no tail loops at 16 lanes.
- Rows that one loop reads or writes together sit a literal distance apart (_CHUNK, _BANDS): see _CHUNK.
- With one input channel (digits' first layer) the products are folded into the pooled output transform: M_e is
  just U_e V_e, and writing it out cost more than the transform.
- The output transform is one loop over the tiles per output channel into a row of scratch; the values are then
  copied to their (row, column) places in out, at out[oc, out_top + y, out_left + x], so a caller can write
  straight into the interior of the next layer's padded buffer. Pooled, with S = out's row pitch that copy is one
  flat loop per channel (a select keeps the border cells under junk tiles), applying bias / activation (_act,
  branch-free) on the way instead of a pass of its own.

Tried and dropped: output channels as the vector axis for maps of few tiles as a second code path (at 8 lanes:
the layer 7.6 -> 6.7 us, but ~1.5 s more empty-cache compile; now the same _products4 serves both, and each
helper has one call site: a literal argument or a second inlined call site compiled a second copy, +0.5-0.8 s);
4 output x 8 input channels or 8 x 4 per pass, and two transformed positions per pass (all 5-20% slower); the
helpers inlined into winograd_conv (the input transform and products ran 1.5-2x slower). Later, on digits'
layers: 8 input channels per pass with all 32 weights hoisted (products 3.2 -> 4.5-4.8 us, spills), the weights
read inside the loop (2.9 -> 3.1-3.3 us), the += sums as one FMA chain r + a0 p0 + ... (no change), the output
transform writing straight into out through the select (conv1 2.1 -> 2.5 us, conv3 4.4 -> 4.6), the flat copy
rounded up to whole vectors (no change), saving / restoring the cells under junk tiles (as fast as the select).
"""
import numpy as np
from numba import njit

from stream_cnn.model.kernels.conv import _piecewise_act
from stream_cnn.model.kernels.registers import register_tile

# G of F(2x2, 3x3): U = G g G^T (4x4 from 3x3); applied once at load, in float64.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_weights(w, rows=None):
    """U (C_in, 16, R) float32 from w (C_out, C_in, 3, 3): U[c, 4 i + j, o] = (G w[o, c] G^T)[i, j] for o < C_out,
    zero for C_out <= o < R; R = rows (>= C_out), by default C_out.

    Rows of one (input channel, transformed position) run along the output channels. With R = _CHUNK they sit
    16 _CHUNK floats apart from the next channel's, the layout V has along the tiles, and the products may take
    the output channels as their vector axis (see _products4); winograd_weight_rows says when that pays. Otherwise
    R = C_out keeps the weights compact (digits' 8 -> 16 layer: 8 KB rather than 32 KB of L1)."""
    w = np.asarray(w, dtype=np.float64)
    c_out, c_in = w.shape[0], w.shape[1]
    rows = c_out if rows is None else rows
    if rows < c_out:
        raise ValueError(f"winograd_weights: rows {rows} < C_out {c_out}")
    u = np.zeros((c_in, 16, rows), np.float32)
    u[:, :, :c_out] = np.einsum("ik,ockl,jl->cijo", _G, w, _G).reshape(c_in, 16, c_out)
    return u


def winograd_weight_rows(c_in, c_out, out_h, out_w, pool):
    """R for winograd_weights: _CHUNK where the products of this layer pay to run along the output channels
    (few tiles, pooled, more than one input channel), else C_out."""
    th, tw = winograd_tiles(out_h, out_w, pool)
    # py_func: run the rule in Python (compiling it here would add to the load time)
    if pool == 2 and c_in > 1 and _channels_as_lanes.py_func(th * (tw + 1), c_out, _CHUNK) \
            and _flat_fits.py_func(c_in, th, tw + 1):
        return _CHUNK
    return c_out


# Tiles are processed in chunks of _CHUNK: every row of V (one transformed position e, one input channel) and of
# M (one e, one output channel of the block) is _CHUNK floats apart from the next, a literal distance, so LLVM can
# tell the rows of one product loop apart at compile time. With runtime row distances it checked every pair of
# them for overlap before each loop (~80 instructions), which cost more than the 16-tile loops themselves.
_CHUNK = 64
# Lanes of one pass of the products (_products4): 4 x _STEP sums fill 8 zmm registers. 4 x 64 (16 registers)
# would halve the passes over 64 tiles, but the 7x7 layer's 32 output channels would run half junk.
_STEP = 32
# Floats per vertically transformed block of one input channel (4 blocks, a literal distance apart for the same
# reason); winograd_fits says which layers stay within it.
_BANDS = 2048


def winograd_tiles(out_h, out_w, pool):
    """(tile rows, tiles per row) for an output of out_h x out_w after pooling by pool (1 or 2)."""
    if pool == 2:
        return out_h, out_w
    return (out_h + 1) // 2, (out_w + 1) // 2


def winograd_fits(out_h, out_w, pool):
    """True if winograd_conv takes an output of this size (one channel's bands must fit in _BANDS floats)."""
    th, tw = winograd_tiles(out_h, out_w, pool)
    return th * 2 * (tw + 2) + 70 <= _BANDS


def winograd_scratch_size(c_in, out_h, out_w, pool):
    """Floats of scratch winograd_conv needs (contents ignored between calls)."""
    th, tw = winograd_tiles(out_h, out_w, pool)
    s = tw + 2   # the most tiles per row (winograd_conv_pooled)
    n_tiles = th * s
    n_chunks = (n_tiles + _CHUNK - 1) // _CHUNK
    rows = 4 * _BANDS                            # one channel's vertically transformed bands, 4 blocks
    v = n_chunks * 16 * c_in * _CHUNK            # V
    m = 16 * 4 * _CHUNK                          # M of one chunk for one block of 4 output channels
    y = 16 * n_chunks * _CHUNK                   # 4 output channels x 4 output positions per tile
    return rows + v + m + y + th * s             # + which tiles are real (winograd_conv_pooled)


@njit(nogil=True, error_model="numpy", inline="always")
def _lanes16(n):
    """n rounded up to a multiple of 16, computed so that LLVM can tell it is one (a shift, not a division).
    A loop over n floats then vectorises with no remainder loop: at 16 lanes (_numba_cpu) LLVM otherwise adds an
    8-, 4- or 1-lane tail after every vector loop, and with few tiles (digits' 7x7 layer: 12) the loop runs a
    single vector, so those tails, their alias checks and the registers they keep alive cost more than the
    vector itself (the three digits layers: 17.0 -> 14.7 us, same process)."""
    return ((n + 15) >> 4) << 4


@njit(nogil=True, error_model="numpy", inline="always")
def _band(plane, o, y, n):
    """B^T down columns x < n of rows y .. y + 3 of plane: o[x + k _BANDS] = row k of B^T d."""
    d0 = plane[y]
    d1 = plane[y + 1]
    d2 = plane[y + 2]
    d3 = plane[y + 3]
    for x in range(n):
        a, b, e, f = d0[x], d1[x], d2[x], d3[x]
        o[x] = a - e
        o[x + _BANDS] = b + e
        o[x + 2 * _BANDS] = e - b
        o[x + 3 * _BANDS] = b - f


@njit(nogil=True, error_model="numpy", inline="always")
def _bands_to_v(rows, v, c, c_in, n_tiles):
    """B along the rows of channel c's bands (laid end to end in rows, 4 blocks _BANDS apart) into v."""
    n_chunks = (n_tiles + _CHUNK - 1) // _CHUNK
    # tile t starts at column 2 t of the bands laid end to end (s = width / 2)
    for chunk in range(n_chunks):
        t0 = chunk * _CHUNK
        # whole 16-lane vectors (_lanes16): the extra lanes read past the bands and compute junk nobody reads
        n = min(_CHUNK, _lanes16(n_tiles - t0))
        for i in range(4):
            src = rows[i * _BANDS + 2 * t0:]
            # columns 2 t + 2, 2 t + 3 through a second view, 2 floats on: read from src, the four loads formed one
            # stride-2 group that LLVM vectorised only with a scalar last vector (so that it never reads past the
            # group's end), and 16 tiles (digits' 7x7 layer) ran entirely scalar (input transforms of digits'
            # layers: 0.45 / 1.1 / 2.1 -> 0.35 / 0.8 / 1.5 us)
            nxt = rows[i * _BANDS + 2 * t0 + 2:]
            dst = v[((chunk * c_in + c) * 16 + 4 * i) * _CHUNK:]
            for t in range(n):
                a, b, e, f = src[2 * t], src[2 * t + 1], nxt[2 * t], nxt[2 * t + 1]
                dst[t] = a - e
                dst[t + _CHUNK] = b + e
                dst[t + 2 * _CHUNK] = e - b
                dst[t + 3 * _CHUNK] = b - f


@njit(cache=True, nogil=True, error_model="numpy")
def _input_transform(xp, rows, v, th, s, c_in):
    """v[((chunk * c_in + c) * 16 + e) * _CHUNK + t % _CHUNK] = (B^T d B)[i, j], e = 4 i + j, d the 4x4 patch of
    xp[c] at (2 ty, 2 tx), t = ty * s + tx, chunk = t // _CHUNK, for tiles whose patches lie inside xp (always
    so when pooling: the pool drops an odd last conv row / column). One channel at a time: B^T down the columns
    of each 4-row band into rows (4 blocks _BANDS apart), then B along the band rows into v. Band columns past
    xp's width (2 s = width + 2: two junk tiles a row) are zeros."""
    width = 2 * s
    n_cols = min(width, xp.shape[2])
    for c in range(c_in):
        for ty in range(th):
            o = rows[ty * width:]
            _band(xp[c], o, 2 * ty, n_cols)
            for x in range(n_cols, width):
                o[x] = o[x + _BANDS] = o[x + 2 * _BANDS] = o[x + 3 * _BANDS] = np.float32(0.0)
        _bands_to_v(rows, v, c, c_in, th * s)


# The unpooled kernel's own copy, with the edge cases: a kernel that cannot reach them (winograd_conv_pooled, which
# the digits executor carries) does not compile them (~0.2 s of the empty-cache compile).
@njit(cache=True, nogil=True, error_model="numpy")
def _input_transform_edges(xp, rows, v, th, s, c_in):
    """_input_transform where the last band may run past the input's last row or column (an unpooled odd size):
    zeros there."""
    hp, wp = xp.shape[1], xp.shape[2]
    width = 2 * s
    n_cols = min(width, wp)
    zero = np.float32(0.0)
    for c in range(c_in):
        plane = xp[c]
        for ty in range(th):
            o = rows[ty * width:]
            y = 2 * ty
            if y + 3 < hp:
                _band(plane, o, y, n_cols)
            else:
                for x in range(n_cols):
                    a = plane[y, x]
                    b = plane[y + 1, x] if y + 1 < hp else zero
                    e = plane[y + 2, x] if y + 2 < hp else zero
                    o[x] = a - e
                    o[x + _BANDS] = b + e
                    o[x + 2 * _BANDS] = e - b
                    o[x + 3 * _BANDS] = b
            for x in range(n_cols, width):
                o[x] = zero
                o[x + _BANDS] = zero
                o[x + 2 * _BANDS] = zero
                o[x + 3 * _BANDS] = zero
        _bands_to_v(rows, v, c, c_in, th * s)


@njit(nogil=True, error_model="numpy", inline="always")
def _flat_fits(c_in, th, s):
    """True if _input_transform_flat takes c_in channels of (2 th + 2) x 2 s: V within the tiles path's V
    (16 se <= 16 c_in _CHUNK) and the row transform within one _BANDS block (with the column pass's overreach)."""
    n = c_in * (2 * th + 2) * s
    return ((n + 15) >> 4 << 4) <= c_in * _CHUNK and n + 3 * s + 16 <= _BANDS


@njit(cache=True, nogil=True, error_model="numpy")
def _input_transform_flat(xp, h, v, s, se):
    """V of a map of few tiles, for products that broadcast it (channels as lanes): v[e se + c cs + 2 s ty + tx]
    = (B^T d B)[i, j], e = 4 i + j, d the 4x4 patch of xp[c] at (2 ty, 2 tx), cs = Hp s; xp (C_in, Hp, 2 s).
    Tile rows are 2 s apart and tx = s - 1 is junk: the products skip junk tiles instead of computing them.

    Two flat passes over all channels at once (the per-channel passes of _input_transform ran 7 loops of 8-16
    values per channel: digits' 16 -> 32 layer 1.65 us). As rows are 2 s wide, tile column tx of row r of channel
    c starts at 2 q in xp flat, q = (c Hp + r) s + tx: B along every row at every even column into h (4 blocks
    _BANDS apart), then B^T down the columns of h, where rows r .. r + 3 of a tile are s apart. se >= _lanes16(C_in
    Hp s); the second pass reads up to 3 s + 15 past that in h (junk, only for junk tiles)."""
    n = xp.shape[0] * xp.shape[1] * s
    xf = xp.reshape(xp.size)
    nxt = xf[2:]
    # the last q (a junk tile) would read 2 floats past xp: the vector loop stops a 16-lane step short of it.
    # Bounded by _BANDS (which _flat_fits ensures it is) so that LLVM can tell 2 q does not overflow: otherwise
    # the stride-2 loads were no interleaved group and the loop ran scalar (4.2 us instead of ...).
    main = min(((n - 1) >> 4) << 4, _BANDS)
    for q in range(main):
        a, b, e, f = xf[2 * q], xf[2 * q + 1], nxt[2 * q], nxt[2 * q + 1]
        h[q] = a - e
        h[q + _BANDS] = b + e
        h[q + 2 * _BANDS] = e - b
        h[q + 3 * _BANDS] = b - f
    zero = np.float32(0.0)
    for q in range(main, n):
        a, b = xf[2 * q], xf[2 * q + 1]
        e = nxt[2 * q] if 2 * q + 3 < xf.size else zero
        f = nxt[2 * q + 1] if 2 * q + 3 < xf.size else zero
        h[q] = a - e
        h[q + _BANDS] = b + e
        h[q + 2 * _BANDS] = e - b
        h[q + 3 * _BANDS] = b - f
    for j in range(4):
        # runtime distances through views: with src[q + s], Numba wraps negative indices and the loop ran scalar
        src, src1, src2, src3 = h[j * _BANDS:], h[j * _BANDS + s:], h[j * _BANDS + 2 * s:], h[j * _BANDS + 3 * s:]
        dst0, dst1, dst2, dst3 = v[j * se:], v[(4 + j) * se:], v[(8 + j) * se:], v[(12 + j) * se:]
        for q in range(min(_lanes16(n), _BANDS)):
            a, b, e, f = src[q], src1[q], src2[q], src3[q]
            dst0[q] = a - e
            dst1[q] = b + e
            dst2[q] = e - b
            dst3[q] = b - f


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _products4(w, wb, se, si, x, xb, m, n, c_in):
    """m[(4 e + j) * _CHUNK + k] = sum over c of w[wb + e se + j + c si] * x[xb + (16 c + e) * _CHUNK + k]
    for j = 0..3, k < n, all 16 e. Per e and step of _STEP (32) lanes, the 4 x 32 sums are a register_tile that
    LLVM keeps in 8 zmm registers through the whole loop over the input channels: each channel is 2 vector loads
    of x, 4 broadcast weights and 8 FMAs, with no load or store of a sum (the sums were rows of m, loaded and
    stored every 4 input channels: digits' 8 -> 16 / 16 -> 32 layers 4.0 / 4.0 -> 3.6 / 2.9 us). Indices into w
    and x are unsigned offsets carried along the loop: with signed ones Numba wrapped negative indices, a
    compare and cmov per weight that doubled the loop's instructions. Lanes past n (up to the next _STEP) compute
    junk nobody reads, within the same row of x and m (n <= _CHUNK, a multiple of _STEP).

    Two uses, one compiled body (a second code path cost ~1.5 s of the empty-cache compile):
    - tiles as the vector axis: x = V of one chunk, w = U flat (se = R, si = 16 R, wb = first output channel of a
      block of 4): m rows are 4 output channels along the chunk's tiles;
    - output channels as the vector axis, for maps of few tiles: x = U flat (R = _CHUNK), w = V of
      _input_transform_flat (se, si = its position and channel strides, wb = first tile of a group of 4): m rows
      are 4 tiles along the output channels (digits' 7x7 layer: 12 tiles, 32 output channels, one step)."""
    n = _lanes16(n)   # a no-op for the callers' n, but LLVM cannot see that across the call
    acc = register_tile(128)   # 4 x _STEP, a literal
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    usi, ux = np.uint64(si), np.uint64(16 * _CHUNK)
    for e in range(16):
        we = w[wb + e * se:]
        r = m[e * 4 * _CHUNK:]
        for t0 in range(0, n, _STEP):
            xe = x[xb + e * _CHUNK + t0:]
            for k in range(_STEP):
                acc[k] = acc[_STEP + k] = acc[2 * _STEP + k] = acc[3 * _STEP + k] = np.float32(0.0)
            kw, kx = np.uint64(0), np.uint64(0)
            for c in range(c_in):
                a0, b0, c0, d0 = we[kw], we[kw + one], we[kw + two], we[kw + three]
                for k in range(_STEP):
                    p0 = xe[kx + np.uint64(k)]
                    acc[k] += a0 * p0
                    acc[_STEP + k] += b0 * p0
                    acc[2 * _STEP + k] += c0 * p0
                    acc[3 * _STEP + k] += d0 * p0
                kw += usi
                kx += ux
            rt = r[t0:]
            for k in range(_STEP):
                rt[k] = acc[k]
                rt[k + _CHUNK] = acc[_STEP + k]
                rt[k + 2 * _CHUNK] = acc[2 * _STEP + k]
                rt[k + 3 * _CHUNK] = acc[3 * _STEP + k]


@njit(nogil=True, error_model="numpy", inline="always")
def _output_tile(m, q):
    """The 2x2 outputs (y00, y01, y10, y11) = A^T m A of the tile whose 16 transformed products sit at
    m[q + 4 e * _CHUNK] (e = 4 i + k), before bias."""
    # rows of A^T m: s = row 0, z = row 1
    s0 = m[q] + m[q + 16 * _CHUNK] + m[q + 32 * _CHUNK]
    s1 = m[q + 4 * _CHUNK] + m[q + 20 * _CHUNK] + m[q + 36 * _CHUNK]
    s2 = m[q + 8 * _CHUNK] + m[q + 24 * _CHUNK] + m[q + 40 * _CHUNK]
    s3 = m[q + 12 * _CHUNK] + m[q + 28 * _CHUNK] + m[q + 44 * _CHUNK]
    z0 = m[q + 16 * _CHUNK] - m[q + 32 * _CHUNK] - m[q + 48 * _CHUNK]
    z1 = m[q + 20 * _CHUNK] - m[q + 36 * _CHUNK] - m[q + 52 * _CHUNK]
    z2 = m[q + 24 * _CHUNK] - m[q + 40 * _CHUNK] - m[q + 56 * _CHUNK]
    z3 = m[q + 28 * _CHUNK] - m[q + 44 * _CHUNK] - m[q + 60 * _CHUNK]
    return s0 + s1 + s2, s1 - s2 - s3, z0 + z1 + z2, z1 - z2 - z3


@njit(nogil=True, error_model="numpy", inline="always")
def _output_pooled(m, j, y, t0, n, bias):
    """y[t0 + t] = max of the 2x2 outputs A^T m A of tile t0 + t, + bias, for output channel j of the block
    (position e = 4 i + k of the transformed tile at m[(4 e + j) * _CHUNK + t])."""
    yt = y[t0:]
    for t in range(n):
        y00, y01, y10, y11 = _output_tile(m, j * _CHUNK + t)
        top = y00 if y00 > y01 else y01
        bottom = y10 if y10 > y11 else y11
        yt[t] = (top if top > bottom else bottom) + bias


@njit(nogil=True, error_model="numpy", inline="always")
def _output_unpooled(m, j, y, t0, n, quadrant, bias):
    """The 2x2 outputs A^T m A + bias of tiles t0 .. t0 + n of output channel j of the block: output (a, b) of
    tile t at y[(2 a + b) * quadrant + t]."""
    yt = y[t0:]
    for t in range(n):
        y00, y01, y10, y11 = _output_tile(m, j * _CHUNK + t)
        yt[t] = y00 + bias
        yt[quadrant + t] = y01 + bias
        yt[2 * quadrant + t] = y10 + bias
        yt[3 * quadrant + t] = y11 + bias


@njit(nogil=True, error_model="numpy", inline="always")
def _pooled_one_input(v, uf, rows, chunk, oc, y, t0, n, bias):
    """With one input channel M_e = U[0, e, oc] * V_e (U flat in uf, R = rows): the products are folded into the pooled output transform
    (y[t0 + t] as _output_transform with pool == 2) instead of writing 16 rows of M per output channel, which
    cost more than the transform (digits' first layer: 4 stores per input value loaded)."""
    x = v[chunk * 16 * _CHUNK:]
    w = uf[oc:]
    w0, w1, w2, w3 = w[0], w[rows], w[2 * rows], w[3 * rows]
    w4, w5, w6, w7 = w[4 * rows], w[5 * rows], w[6 * rows], w[7 * rows]
    w8, w9, w10, w11 = w[8 * rows], w[9 * rows], w[10 * rows], w[11 * rows]
    w12, w13, w14, w15 = w[12 * rows], w[13 * rows], w[14 * rows], w[15 * rows]
    # -2 w8 .. -2 w11: q = p - 2 m8 = m4 - m8 as one FMA on p (see below)
    n8, n9, n10, n11 = np.float32(-2.0) * w8, np.float32(-2.0) * w9, np.float32(-2.0) * w10, np.float32(-2.0) * w11
    yt = y[t0:]
    for t in range(n):
        # Rows 1 and 2 of M enter both row sums of A^T M: s = m0 + m4 + m8 and z = m4 - m8 - m12 per column. As
        # p = m4 + m8 and q = p - 2 m8, with s = m0 + p and z = q - m12, every product but m8 feeds one add, which
        # the caller's fastmath contract fuses into an FMA: 5 vector ops per column instead of 8 (this loop is
        # bound by its vector arithmetic, one zmm op a cycle).
        x8, x9, x10, x11 = x[t + 8 * _CHUNK], x[t + 9 * _CHUNK], x[t + 10 * _CHUNK], x[t + 11 * _CHUNK]
        m8, m9, m10, m11 = w8 * x8, w9 * x9, w10 * x10, w11 * x11
        p0 = w4 * x[t + 4 * _CHUNK] + m8
        p1 = w5 * x[t + 5 * _CHUNK] + m9
        p2 = w6 * x[t + 6 * _CHUNK] + m10
        p3 = w7 * x[t + 7 * _CHUNK] + m11
        s0 = w0 * x[t] + p0
        s1 = w1 * x[t + _CHUNK] + p1
        s2 = w2 * x[t + 2 * _CHUNK] + p2
        s3 = w3 * x[t + 3 * _CHUNK] + p3
        z0 = (n8 * x8 + p0) - w12 * x[t + 12 * _CHUNK]
        z1 = (n9 * x9 + p1) - w13 * x[t + 13 * _CHUNK]
        z2 = (n10 * x10 + p2) - w14 * x[t + 14 * _CHUNK]
        z3 = (n11 * x11 + p3) - w15 * x[t + 15 * _CHUNK]
        y00 = s0 + s1 + s2
        y01 = s1 - s2 - s3
        y10 = z0 + z1 + z2
        y11 = z1 - z2 - z3
        top = y00 if y00 > y01 else y01
        bottom = y10 if y10 > y11 else y11
        yt[t] = (top if top > bottom else bottom) + bias


@njit(nogil=True, error_model="numpy", inline="always")
def _channels_as_lanes(n_tiles, c_out, rows):
    """True if the products should run along the output channels, 4 tiles a pass, rather than along the tiles, 4
    output channels a pass (both per 4 input channels and transformed position): a pass costs about as much as
    1.5 vectors of work (16 weights loaded and broadcast, a dependence check; 3 : 2 below), so the layout with
    fewer passes x (setup + vectors) wins. Needs U rows of _CHUNK floats and V in one chunk. Digits: 16 -> 32 on
    7x7 (12 tiles) runs along the channels (21 vs 40), 8 -> 16 on 14x14 (56 tiles) along the tiles (70 vs 44).
    The weights date from _products4's earlier 4 x 4-channel passes; with its 4 x _STEP passes (whole steps of 32
    lanes) the FMA counts give the same two choices (6144 vs 16384 and 14336 vs 8192 vector FMAs)."""
    if rows != _CHUNK or n_tiles > _CHUNK or c_out > _CHUNK:
        return False
    # vectors of 16 lanes written out, not _lanes16: winograd_weight_rows runs this in Python at load, and calling
    # a jitted helper there would compile it (~0.2 s and a cache file)
    along_channels = (n_tiles + 3) // 4 * (3 + 2 * ((c_out + 15) // 16))
    along_tiles = (c_out + 3) // 4 * (3 + 2 * ((n_tiles + 15) // 16))
    return along_channels < along_tiles


@njit(nogil=True, error_model="numpy", inline="always")
def _act_params(act, alpha):
    """(slope, top) with _act(v, slope, top) = activation act (one of FLAT_ACTIVATIONS) of v."""
    slope = np.float32(1.0) if act == 0 else np.float32(alpha) if act == 2 else np.float32(0.0)
    return slope, np.float32(6.0) if act == 3 else np.float32(np.inf)


@njit(nogil=True, error_model="numpy", inline="always")
def _act(v, slope, top):
    """Identity, relu, leaky relu or relu6 without a branch on the kind: min(v if v > 0 else slope v, top) (+ 0
    so that relu gives 0, not -0, and a NaN stays NaN, as in _piecewise_act)."""
    v = v if v > np.float32(0.0) else slope * v + np.float32(0.0)
    return top if v > top else v


# The input transform and the products are separate compiled functions, not inlined: inlined into this loop nest
# they ran 1.5-2x slower (measured on digits' layers); the output transform is faster inlined (not inlined, its
# row arguments cost ~3x).
@njit(cache=True, nogil=True, error_model="numpy")
def winograd_conv(xp, u, b, out, scratch, out_h, out_w, out_top, out_left, pool, act, alpha):
    """out[oc, out_top + y, out_left + x] for y < out_h, x < out_w = act(conv3x3(xp)[oc, y, x] + b[oc]) (pool 1)
    or act(max of the 2x2 block at (2 y, 2 x) of conv3x3(xp)[oc] + b[oc]) (pool 2); the rest of out untouched.

    xp (C_in, Hp, Wp): padded input, read like conv2d with stride 1 (rows past Hp / columns past Wp, reached
    only by the last tile of an unpooled odd size, count as zeros); u = winograd_weights(w) (C_in, 16, R);
    b (C_out,), C_out >= 4; act one of FLAT_ACTIVATIONS (leaky alpha >= 0 when pooling); scratch: at least
    winograd_scratch_size(C_in, out_h, out_w, pool) floats, contents ignored.
    """
    if pool == 2:
        winograd_conv_pooled(xp, u, b, out, scratch, out_h, out_w, out_top, out_left, act, alpha)
        return
    c_in = xp.shape[0]
    c_out = b.shape[0]
    rows = u.shape[2]
    uf = u.reshape(u.size)
    th, tw = (out_h + 1) // 2, (out_w + 1) // 2
    s = tw + 1
    n_tiles = th * s
    n_chunks = (n_tiles + _CHUNK - 1) // _CHUNK
    quadrant = n_chunks * _CHUNK
    rows_len = 4 * _BANDS
    v_len = n_chunks * 16 * c_in * _CHUNK
    v = scratch[rows_len:rows_len + v_len]
    m = scratch[rows_len + v_len:rows_len + v_len + 64 * _CHUNK]
    y_start = rows_len + v_len + 64 * _CHUNK
    _input_transform_edges(xp, scratch[:rows_len], v, th, s, c_in)
    block = 0
    while block < c_out:
        # blocks of 4 output channels; the last block is shifted back to end at C_out (recomputing a few)
        oc = min(block, c_out - 4)
        for chunk in range(n_chunks):
            t0 = chunk * _CHUNK
            # whole SIMD vectors (_lanes16): the lanes past the last tile compute junk nobody reads
            n = min(_CHUNK, _lanes16(n_tiles - t0))
            _products4(uf, oc, rows, 16 * rows, v, chunk * c_in * 16 * _CHUNK, m, n, c_in)
            for j in range(4):
                _output_unpooled(m, j, scratch[y_start + 4 * j * quadrant:], t0, n, quadrant, b[oc + j])
        for j in range(4):
            y = scratch[y_start + 4 * j * quadrant:y_start + 4 * (j + 1) * quadrant]
            for k in range(4):
                _piecewise_act(y[k * quadrant:k * quadrant + n_tiles], act, alpha)
            for oy in range(out_h):
                dst = out[oc + j, out_top + oy, out_left:]
                half = oy // 2
                src_even = y[(oy % 2) * 2 * quadrant + half * s:]
                src_odd = y[((oy % 2) * 2 + 1) * quadrant + half * s:]
                for ox in range(out_w // 2):
                    dst[2 * ox] = src_even[ox]
                    dst[2 * ox + 1] = src_odd[ox]
                if out_w % 2:
                    dst[out_w - 1] = src_even[out_w // 2]
        block += 4


# What the Model plans (conv + 2x2 max pool) and the digits executor carries: a kernel of its own so that the
# executor does not compile the unpooled output paths (~0.35 s of the empty-cache compile).
# fastmath contract: for the FMAs of _pooled_one_input (elsewhere here no product feeds a single add but in _act,
# where slope v + 0 fused is the same value)
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def winograd_conv_pooled(xp, u, b, out, scratch, out_h, out_w, out_top, out_left, act, alpha):
    """winograd_conv(xp, u, b, out, scratch, out_h, out_w, out_top, out_left, 2, act, alpha)."""
    c_in = xp.shape[0]
    c_out = b.shape[0]
    rows = u.shape[2]
    uf = u.reshape(u.size)
    th, tw = out_h, out_w
    s = tw + 1
    # Passes of the products: blocks of 4 output channels along the tiles (chunk by chunk), or for few tiles
    # groups of 4 tiles of a tile row along the output channels (see _products4). One call site of each helper
    # serves both, as a second inlined copy costs compile time. The second takes V from _input_transform_flat,
    # which needs rows 2 s wide and 2 th + 2 high (the Model crops an odd map's unread last padded row / column).
    lanes = (c_in > 1 and _channels_as_lanes(th * s, c_out, rows) and xp.shape[1] == 2 * th + 2
             and xp.shape[2] == 2 * s and _flat_fits(c_in, th, s))
    # Along the tiles, with out's rows 1 or 2 tiles longer than a tile row (the next layer's padded input), the
    # tile rows take out's row pitch: the pooled planes then go to out in one flat copy per channel instead of
    # one short copy per row (digits' first two layers: 0.57 / 0.45 us of row copies).
    pitch = out.shape[2]
    flat_copy = not lanes and s <= pitch <= s + 1
    if flat_copy:
        s = pitch
    n_tiles = th * s
    n_chunks = (n_tiles + _CHUNK - 1) // _CHUNK
    quadrant = n_chunks * _CHUNK
    rows_len = 4 * _BANDS
    v_len = n_chunks * 16 * c_in * _CHUNK
    v = scratch[rows_len:rows_len + v_len]
    m = scratch[rows_len + v_len:rows_len + v_len + 64 * _CHUNK]
    y_start = rows_len + v_len + 64 * _CHUNK
    out_flat = out.reshape(out.size)
    # with flat_copy, real[t] says whether tile t is one (not the junk ending a tile row): the copy keeps out's
    # cells under junk tiles as they were (a select per value; saving and restoring them cost more)
    real = scratch[y_start + 4 * quadrant:y_start + 4 * quadrant + th * s]
    if flat_copy:
        for r in range(th):
            row = real[r * s:(r + 1) * s]
            for x in range(s):
                row[x] = np.float32(1.0) if x < tw else np.float32(0.0)
    slope, top = _act_params(act, alpha)
    se = _lanes16(c_in * xp.shape[1] * s)   # V's position stride with lanes
    if lanes:
        _input_transform_flat(xp, scratch[:rows_len], v, s, se)
    else:
        _input_transform(xp, scratch[:rows_len], v, th, s, c_in)
    groups = (tw + 3) // 4   # groups of 4 tiles per tile row (lanes)
    n_passes = th * groups if lanes else (c_out + 3) // 4
    for p in range(n_passes):
        # the last block of output channels is shifted back to end at C_out (recomputing a few)
        oc = min(4 * p, c_out - 4)
        ty, tx0 = p // groups, 4 * (p % groups)
        for chunk in range(1 if lanes else n_chunks):
            t0 = chunk * _CHUNK
            # whole SIMD vectors (_lanes16): the lanes past the last tile or channel compute junk nobody reads
            n = min(_CHUNK, _lanes16(n_tiles - t0))
            if c_in == 1:
                for j in range(4):
                    _pooled_one_input(v, uf, rows, chunk, oc + j, scratch[y_start + j * quadrant:], t0, n,
                                      b[oc + j])
                continue
            if lanes:   # weights: V at tile (ty, tx0); rows: U; m rows: 4 tiles along the output channels
                w, wb, w_se, w_si, x, xb, n, y_row, t0 = v, 2 * s * ty + tx0, se, xp.shape[1] * s, uf, 0, \
                    _lanes16(c_out), _CHUNK, 0
            else:       # weights: U at output channel oc; rows: V of this chunk; m rows: 4 channels along the tiles
                w, wb, w_se, w_si, x, xb, y_row = uf, oc, rows, 16 * rows, v, chunk * c_in * 16 * _CHUNK, quadrant
            _products4(w, wb, w_se, w_si, x, xb, m, n, c_in)
            for j in range(4):
                # with lanes, bias and activation are added below (along the channels)
                _output_pooled(m, j, scratch[y_start + j * y_row:], t0, n, np.float32(0.0) if lanes else b[oc + j])
        # bias (with lanes) and the activation are applied on the way to out: a pass of its own over the pooled
        # rows, as _piecewise_act, cost more than the copy (digits' three layers: ~0.5 us each for both)
        for j in range(4):
            if lanes:   # tile (ty, tx0 + j) along the output channels
                tx = tx0 + j
                if tx >= tw:   # past the tile row (junk)
                    continue
                y = scratch[y_start + j * _CHUNK:y_start + (j + 1) * _CHUNK]
                for o in range(c_out):
                    out[o, out_top + ty, out_left + tx] = _act(y[o] + b[o], slope, top)
                continue
            y = scratch[y_start + j * quadrant:y_start + (j + 1) * quadrant]   # output channel oc + j
            if flat_copy:
                # tile (r, x) lands at out[oc + j, out_top + r, out_left + x]; the junk tiles ending rows
                # r < th - 1 land on cells beside the result (the padded border), which are kept as they were
                start = ((oc + j) * out.shape[1] + out_top) * pitch + out_left
                dst = out_flat[start:start + th * s]
                for i in range(min((th - 1) * s + tw, _BANDS)):
                    # both sides loaded, then a select (with dst[i] loaded in a branch, the loop ran scalar)
                    keep = dst[i]
                    value = _act(y[i], slope, top)
                    dst[i] = value if real[i] != np.float32(0.0) else keep
                continue
            for r in range(th):
                dst = out[oc + j, out_top + r, out_left:]
                src = y[r * s:]
                for c in range(tw):
                    dst[c] = _act(src[c], slope, top)
