"""Batched forward and backward kernels for training: arrays are (N, C, H, W) maps or (N, F) vectors.

These are separate from the inference kernels (stream_cnn.model.kernels), which work on one (C, H, W) sample
with pre-padded inputs: training wants a whole mini-batch per call and the gradients of every operation.

Conventions shared by all kernels here:
- pure functions on caller-owned arrays: `out` / `grad_*` arguments are overwritten, nothing is returned
  except the scalar loss of `softmax_cross_entropy`;
- padding is implicit: the loops only visit output positions whose receptive field lies inside the input, so
  there is no padded copy (zero padding for conv / avg pool, -inf padding for max pool);
- the code is dtype-generic (accumulators start from a zeroed cell of the output array, so they take its
  dtype): training runs in float32, the gradient tests run the very same kernels on float64 copies;
- each output cell is written by exactly one prange iteration and summed in a fixed order, so the results do
  not depend on thread scheduling: a seeded run is bit-for-bit reproducible on the same machine.
"""
import math

import numpy as np
from numba import njit, prange

# The activation codes of ARCHITECTURE.md as the literal integers the kernels branch on. Names map to codes in
# one place only, stream_cnn.model.kernels.ACTIVATIONS (layers get their code from the model's layer objects);
# tests/test_gradients.py checks these constants against that table.
IDENTITY, RELU, LEAKY_RELU, RELU6, SIGMOID, TANH, GELU = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True, nogil=True)
def valid_range(k, pad, stride, size_in, size_out):
    """Output indices o in [lo, hi) with 0 <= o * stride + k - pad < size_in (kernel tap k inside the input)."""
    lo = 0
    if pad > k:
        lo = (pad - k + stride - 1) // stride
    hi = (size_in - 1 + pad - k) // stride + 1
    if hi > size_out:
        hi = size_out
    if hi < lo:
        hi = lo
    return lo, hi


# ---------------------------------------------------------------------------------------------- convolution
@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv2d_forward(x, w, b, out, stride_h, stride_w, pad_top, pad_left):
    """out[n, co] = b[co] + sum_ci w[co, ci] (*) x[n, ci] with zero padding; x (N, Ci, H, W), w (Co, Ci, KH, KW)."""
    n_batch, c_in, height, width = x.shape
    c_out, _, k_h, k_w = w.shape
    h_out, w_out = out.shape[2], out.shape[3]
    for n in prange(n_batch):
        for co in range(c_out):
            for oh in range(h_out):
                for ow in range(w_out):
                    out[n, co, oh, ow] = b[co]
            for ci in range(c_in):
                for kh in range(k_h):
                    oh_lo, oh_hi = valid_range(kh, pad_top, stride_h, height, h_out)
                    for kw in range(k_w):
                        ow_lo, ow_hi = valid_range(kw, pad_left, stride_w, width, w_out)
                        weight = w[co, ci, kh, kw]
                        # axpy over a whole output row: contiguous for stride 1, so it vectorises
                        for oh in range(oh_lo, oh_hi):
                            ih = oh * stride_h + kh - pad_top
                            for ow in range(ow_lo, ow_hi):
                                out[n, co, oh, ow] += weight * x[n, ci, ih, ow * stride_w + kw - pad_left]


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv2d_backward_input(grad_out, w, grad_x, stride_h, stride_w, pad_top, pad_left):
    """grad_x = d loss / d x of conv2d_forward, given grad_out = d loss / d out."""
    n_batch, c_in, height, width = grad_x.shape
    c_out, _, k_h, k_w = w.shape
    h_out, w_out = grad_out.shape[2], grad_out.shape[3]
    for n in prange(n_batch):
        for ci in range(c_in):
            for ih in range(height):
                for iw in range(width):
                    grad_x[n, ci, ih, iw] = 0
        for co in range(c_out):
            for ci in range(c_in):
                for kh in range(k_h):
                    oh_lo, oh_hi = valid_range(kh, pad_top, stride_h, height, h_out)
                    for kw in range(k_w):
                        ow_lo, ow_hi = valid_range(kw, pad_left, stride_w, width, w_out)
                        weight = w[co, ci, kh, kw]
                        for oh in range(oh_lo, oh_hi):
                            ih = oh * stride_h + kh - pad_top
                            for ow in range(ow_lo, ow_hi):
                                grad_x[n, ci, ih, ow * stride_w + kw - pad_left] += weight * grad_out[n, co, oh, ow]


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv2d_backward_params(x, grad_out, grad_w, grad_b, stride_h, stride_w, pad_top, pad_left):
    """grad_w, grad_b of conv2d_forward summed over the batch; parallel over output channels."""
    n_batch, c_in, height, width = x.shape
    c_out, _, k_h, k_w = grad_w.shape
    h_out, w_out = grad_out.shape[2], grad_out.shape[3]
    for co in prange(c_out):
        grad_b[co] = 0
        acc_b = grad_b[co]
        for n in range(n_batch):
            for oh in range(h_out):
                for ow in range(w_out):
                    acc_b += grad_out[n, co, oh, ow]
        grad_b[co] = acc_b
        for ci in range(c_in):
            for kh in range(k_h):
                oh_lo, oh_hi = valid_range(kh, pad_top, stride_h, height, h_out)
                for kw in range(k_w):
                    ow_lo, ow_hi = valid_range(kw, pad_left, stride_w, width, w_out)
                    grad_w[co, ci, kh, kw] = 0
                    acc = grad_w[co, ci, kh, kw]
                    for n in range(n_batch):
                        for oh in range(oh_lo, oh_hi):
                            ih = oh * stride_h + kh - pad_top
                            for ow in range(ow_lo, ow_hi):
                                acc += grad_out[n, co, oh, ow] * x[n, ci, ih, ow * stride_w + kw - pad_left]
                    grad_w[co, ci, kh, kw] = acc


# Stride-1 fast path. The input is zero-padded once and both the padded input and the output are viewed as
# flat rows of the padded width Wp ("wide" layout): output cell (oh, ow) sits at p = oh * Wp + ow and reads
# xp[p + kh * Wp + kw]. Every kernel tap is then ONE long contiguous axpy / dot over p in [0, L), instead of
# many short row loops, which is what makes the small 14x14 and 7x7 maps fast. The cells with ow >= W_out are
# scratch ("wrap-around" columns): the forward pass ignores them and the backward pass feeds zeros there.
@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv2d_forward_wide(xp, w, b, out_wide, padded_width, length):
    """xp (N, Ci, Hp * Wp) padded input; out_wide (N, Co, H_out * Wp); only p < length is written."""
    n_batch, c_in = xp.shape[0], xp.shape[1]
    c_out, _, k_h, k_w = w.shape
    for n in prange(n_batch):
        for co in range(c_out):
            bias = b[co]
            for p in range(length):
                out_wide[n, co, p] = bias
            for ci in range(c_in):
                for kh in range(k_h):
                    for kw in range(k_w):
                        offset = kh * padded_width + kw
                        weight = w[co, ci, kh, kw]
                        for p in range(length):
                            out_wide[n, co, p] += weight * xp[n, ci, p + offset]


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv2d_backward_input_wide(grad_wide, w, grad_xp, padded_width, length):
    """grad_xp (N, Ci, Hp * Wp) = d loss / d padded input; grad_wide is zero in the scratch columns."""
    n_batch, c_in = grad_xp.shape[0], grad_xp.shape[1]
    c_out, _, k_h, k_w = w.shape
    for n in prange(n_batch):
        for ci in range(c_in):
            for q in range(grad_xp.shape[2]):
                grad_xp[n, ci, q] = 0
            for co in range(c_out):
                for kh in range(k_h):
                    for kw in range(k_w):
                        offset = kh * padded_width + kw
                        weight = w[co, ci, kh, kw]
                        for p in range(length):
                            grad_xp[n, ci, p + offset] += weight * grad_wide[n, co, p]


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv2d_backward_params_wide(xp, grad_wide, grad_w, grad_b, padded_width, length):
    """grad_w, grad_b summed over the batch; grad_wide is zero in the scratch columns."""
    n_batch, c_in = xp.shape[0], xp.shape[1]
    c_out, _, k_h, k_w = grad_w.shape
    for co in prange(c_out):
        grad_b[co] = 0
        acc_b = grad_b[co]
        for n in range(n_batch):
            for p in range(length):
                acc_b += grad_wide[n, co, p]
        grad_b[co] = acc_b
        for ci in range(c_in):
            for kh in range(k_h):
                for kw in range(k_w):
                    offset = kh * padded_width + kw
                    grad_w[co, ci, kh, kw] = 0
                    acc = grad_w[co, ci, kh, kw]
                    for n in range(n_batch):
                        for p in range(length):
                            acc += grad_wide[n, co, p] * xp[n, ci, p + offset]
                    grad_w[co, ci, kh, kw] = acc


# 3x3 stride-1 kernels in the same wide layout, with the nine taps unrolled: one pass over p per (channel pair)
# reads the nine shifted inputs and updates the output once, instead of nine passes that each load and store
# the whole output row. The backward-input pass is written as a gather (a "full" correlation with the flipped
# kernel) over an output gradient that has a zero margin in front, so it too is a single pass per channel pair.
@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv3x3_forward_wide(xp, w, b, out_wide, padded_width, length):
    n_batch, c_in = xp.shape[0], xp.shape[1]
    c_out = w.shape[0]
    r1, r2 = padded_width, 2 * padded_width
    for n in prange(n_batch):
        for co in range(c_out):
            bias = b[co]
            for p in range(length):
                out_wide[n, co, p] = bias
            for ci in range(c_in):
                w00, w01, w02 = w[co, ci, 0, 0], w[co, ci, 0, 1], w[co, ci, 0, 2]
                w10, w11, w12 = w[co, ci, 1, 0], w[co, ci, 1, 1], w[co, ci, 1, 2]
                w20, w21, w22 = w[co, ci, 2, 0], w[co, ci, 2, 1], w[co, ci, 2, 2]
                for p in range(length):
                    out_wide[n, co, p] += (w00 * xp[n, ci, p] + w01 * xp[n, ci, p + 1] + w02 * xp[n, ci, p + 2]
                                           + w10 * xp[n, ci, p + r1] + w11 * xp[n, ci, p + r1 + 1]
                                           + w12 * xp[n, ci, p + r1 + 2] + w20 * xp[n, ci, p + r2]
                                           + w21 * xp[n, ci, p + r2 + 1] + w22 * xp[n, ci, p + r2 + 2])


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv3x3_backward_input_wide(grad_ext, w, grad_xp, padded_width):
    """grad_ext (N, Co, M + Hp * Wp): the wide output gradient at offset M = 2 * Wp + 2, zero elsewhere
    (including the scratch columns); grad_xp (N, Ci, Hp * Wp) is overwritten."""
    n_batch, c_in, size = grad_xp.shape
    c_out = w.shape[0]
    r1, r2 = padded_width, 2 * padded_width
    margin = r2 + 2
    for n in prange(n_batch):
        for ci in range(c_in):
            for q in range(size):
                grad_xp[n, ci, q] = 0
            for co in range(c_out):
                w00, w01, w02 = w[co, ci, 0, 0], w[co, ci, 0, 1], w[co, ci, 0, 2]
                w10, w11, w12 = w[co, ci, 1, 0], w[co, ci, 1, 1], w[co, ci, 1, 2]
                w20, w21, w22 = w[co, ci, 2, 0], w[co, ci, 2, 1], w[co, ci, 2, 2]
                for q in range(size):
                    base = q + margin  # grad_ext[base - (kh * Wp + kw)] is the output that tap (kh, kw) fed from q
                    grad_xp[n, ci, q] += (w00 * grad_ext[n, co, base] + w01 * grad_ext[n, co, base - 1]
                                          + w02 * grad_ext[n, co, base - 2] + w10 * grad_ext[n, co, base - r1]
                                          + w11 * grad_ext[n, co, base - r1 - 1] + w12 * grad_ext[n, co, base - r1 - 2]
                                          + w20 * grad_ext[n, co, base - r2] + w21 * grad_ext[n, co, base - r2 - 1]
                                          + w22 * grad_ext[n, co, base - r2 - 2])


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def conv3x3_backward_params_wide(xp, grad_wide, grad_w, grad_b, padded_width, length):
    """Nine dot products per (co, ci) accumulated in one pass over p; grad_wide is zero in the scratch columns."""
    n_batch, c_in = xp.shape[0], xp.shape[1]
    c_out = grad_w.shape[0]
    r1, r2 = padded_width, 2 * padded_width
    for co in prange(c_out):
        grad_b[co] = 0
        acc_b = grad_b[co]
        for n in range(n_batch):
            for p in range(length):
                acc_b += grad_wide[n, co, p]
        grad_b[co] = acc_b
        for ci in range(c_in):
            for kh in range(3):
                for kw in range(3):
                    grad_w[co, ci, kh, kw] = 0
            a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = grad_w[co, ci, 0, 0]
            for n in range(n_batch):
                for p in range(length):
                    g = grad_wide[n, co, p]
                    a00 += g * xp[n, ci, p]
                    a01 += g * xp[n, ci, p + 1]
                    a02 += g * xp[n, ci, p + 2]
                    a10 += g * xp[n, ci, p + r1]
                    a11 += g * xp[n, ci, p + r1 + 1]
                    a12 += g * xp[n, ci, p + r1 + 2]
                    a20 += g * xp[n, ci, p + r2]
                    a21 += g * xp[n, ci, p + r2 + 1]
                    a22 += g * xp[n, ci, p + r2 + 2]
            grad_w[co, ci, 0, 0], grad_w[co, ci, 0, 1], grad_w[co, ci, 0, 2] = a00, a01, a02
            grad_w[co, ci, 1, 0], grad_w[co, ci, 1, 1], grad_w[co, ci, 1, 2] = a10, a11, a12
            grad_w[co, ci, 2, 0], grad_w[co, ci, 2, 1], grad_w[co, ci, 2, 2] = a20, a21, a22


# -------------------------------------------------------------------------------------------------- pooling
@njit(cache=True, nogil=True, parallel=True)
def max_pool_forward(x, out, argmax, k_h, k_w, stride_h, stride_w, pad_top, pad_left):
    """Max over each window (padding never wins, as with -inf padding); argmax (int64, like out) keeps the flat
    index ih * W + iw of the winner for the backward pass (-1 if the window is all padding)."""
    n_batch, channels, height, width = x.shape
    h_out, w_out = out.shape[2], out.shape[3]
    for n in prange(n_batch):
        for c in range(channels):
            for oh in range(h_out):
                for ow in range(w_out):
                    best = -np.inf
                    best_index = -1
                    for kh in range(k_h):
                        ih = oh * stride_h + kh - pad_top
                        if ih < 0 or ih >= height:
                            continue
                        for kw in range(k_w):
                            iw = ow * stride_w + kw - pad_left
                            if iw < 0 or iw >= width:
                                continue
                            value = x[n, c, ih, iw]
                            if best_index < 0 or value > best:
                                best = value
                                best_index = ih * width + iw
                    out[n, c, oh, ow] = best
                    argmax[n, c, oh, ow] = best_index


@njit(cache=True, nogil=True, parallel=True)
def max_pool_backward(grad_out, argmax, grad_x):
    """Route each output gradient to the input cell that won the max (summed where windows overlap)."""
    n_batch, channels, height, width = grad_x.shape
    h_out, w_out = grad_out.shape[2], grad_out.shape[3]
    for n in prange(n_batch):
        for c in range(channels):
            for ih in range(height):
                for iw in range(width):
                    grad_x[n, c, ih, iw] = 0
            for oh in range(h_out):
                for ow in range(w_out):
                    index = argmax[n, c, oh, ow]
                    if index >= 0:
                        grad_x[n, c, index // width, index % width] += grad_out[n, c, oh, ow]


@njit(cache=True, nogil=True, parallel=True)
def avg_pool_forward(x, out, k_h, k_w, stride_h, stride_w, pad_top, pad_left):
    """Mean over the in-bounds cells of each window (padding excluded from the count, ONNX count_include_pad=0)."""
    n_batch, channels, height, width = x.shape
    h_out, w_out = out.shape[2], out.shape[3]
    for n in prange(n_batch):
        for c in range(channels):
            for oh in range(h_out):
                h_lo = max(oh * stride_h - pad_top, 0)
                h_hi = min(oh * stride_h - pad_top + k_h, height)
                for ow in range(w_out):
                    w_lo = max(ow * stride_w - pad_left, 0)
                    w_hi = min(ow * stride_w - pad_left + k_w, width)
                    out[n, c, oh, ow] = 0
                    acc = out[n, c, oh, ow]
                    for ih in range(h_lo, h_hi):
                        for iw in range(w_lo, w_hi):
                            acc += x[n, c, ih, iw]
                    count = (h_hi - h_lo) * (w_hi - w_lo)
                    out[n, c, oh, ow] = acc / count if count > 0 else acc


@njit(cache=True, nogil=True, parallel=True)
def avg_pool_backward(grad_out, grad_x, k_h, k_w, stride_h, stride_w, pad_top, pad_left):
    n_batch, channels, height, width = grad_x.shape
    h_out, w_out = grad_out.shape[2], grad_out.shape[3]
    for n in prange(n_batch):
        for c in range(channels):
            for ih in range(height):
                for iw in range(width):
                    grad_x[n, c, ih, iw] = 0
            for oh in range(h_out):
                h_lo = max(oh * stride_h - pad_top, 0)
                h_hi = min(oh * stride_h - pad_top + k_h, height)
                for ow in range(w_out):
                    w_lo = max(ow * stride_w - pad_left, 0)
                    w_hi = min(ow * stride_w - pad_left + k_w, width)
                    count = (h_hi - h_lo) * (w_hi - w_lo)
                    if count == 0:
                        continue
                    share = grad_out[n, c, oh, ow] / count
                    for ih in range(h_lo, h_hi):
                        for iw in range(w_lo, w_hi):
                            grad_x[n, c, ih, iw] += share


@njit(cache=True, nogil=True, parallel=True)
def global_avg_pool_forward(x, out):
    """(N, C, H, W) -> (N, C) mean over H, W."""
    n_batch, channels, height, width = x.shape
    for n in prange(n_batch):
        for c in range(channels):
            out[n, c] = 0
            acc = out[n, c]
            for ih in range(height):
                for iw in range(width):
                    acc += x[n, c, ih, iw]
            out[n, c] = acc / (height * width)


@njit(cache=True, nogil=True, parallel=True)
def global_avg_pool_backward(grad_out, grad_x):
    n_batch, channels, height, width = grad_x.shape
    for n in prange(n_batch):
        for c in range(channels):
            share = grad_out[n, c] / (height * width)
            for ih in range(height):
                for iw in range(width):
                    grad_x[n, c, ih, iw] = share


@njit(cache=True, nogil=True, parallel=True)
def global_max_pool_forward(x, out, argmax):
    """(N, C, H, W) -> (N, C) max over H, W; argmax (N, C) int64 flat index of the winner."""
    n_batch, channels, height, width = x.shape
    for n in prange(n_batch):
        for c in range(channels):
            best = x[n, c, 0, 0]
            best_index = 0
            for ih in range(height):
                for iw in range(width):
                    if x[n, c, ih, iw] > best:
                        best = x[n, c, ih, iw]
                        best_index = ih * width + iw
            out[n, c] = best
            argmax[n, c] = best_index


@njit(cache=True, nogil=True, parallel=True)
def global_max_pool_backward(grad_out, argmax, grad_x):
    n_batch, channels, height, width = grad_x.shape
    for n in prange(n_batch):
        for c in range(channels):
            for ih in range(height):
                for iw in range(width):
                    grad_x[n, c, ih, iw] = 0
            index = argmax[n, c]
            grad_x[n, c, index // width, index % width] = grad_out[n, c]


# ---------------------------------------------------------------------------------------------------- dense
@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def dense_forward(x, w, b, out):
    """out[n] = w @ x[n] + b; x (N, F_in), w (F_out, F_in), out (N, F_out)."""
    n_batch, n_in = x.shape
    n_out = w.shape[0]
    for n in prange(n_batch):
        for o in range(n_out):
            acc = b[o]
            for i in range(n_in):
                acc += w[o, i] * x[n, i]
            out[n, o] = acc


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def dense_backward_input(grad_out, w, grad_x):
    n_batch, n_in = grad_x.shape
    n_out = w.shape[0]
    for n in prange(n_batch):
        for i in range(n_in):
            grad_x[n, i] = 0
        for o in range(n_out):
            g = grad_out[n, o]
            for i in range(n_in):
                grad_x[n, i] += g * w[o, i]


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def dense_backward_params(x, grad_out, grad_w, grad_b):
    """grad_w, grad_b summed over the batch; parallel over output units."""
    n_batch, n_in = x.shape
    n_out = grad_w.shape[0]
    for o in prange(n_out):
        grad_b[o] = 0
        for i in range(n_in):
            grad_w[o, i] = 0
        for n in range(n_batch):
            g = grad_out[n, o]
            grad_b[o] += g
            for i in range(n_in):
                grad_w[o, i] += g * x[n, i]


# ------------------------------------------------------------------------------------------------ activations
@njit(cache=True, nogil=True, parallel=True)
def activation_forward(z, y, act, alpha):
    """y = f(z) element-wise on flat (1-D) views; f chosen by the activation code."""
    for i in prange(z.size):
        v = z[i]
        if act == RELU:
            y[i] = v if v > 0 else 0
        elif act == LEAKY_RELU:
            y[i] = v if v > 0 else alpha * v
        elif act == RELU6:
            y[i] = min(max(v, 0), 6)
        elif act == SIGMOID:
            y[i] = 1 / (1 + math.exp(-v))
        elif act == TANH:
            y[i] = math.tanh(v)
        elif act == GELU:
            y[i] = 0.5 * v * (1 + math.erf(v / math.sqrt(2.0)))
        else:
            y[i] = v


@njit(cache=True, nogil=True, parallel=True)
def activation_backward(z, grad_y, grad_z, act, alpha):
    """grad_z = grad_y * f'(z) on flat views (z is the pre-activation input)."""
    for i in prange(z.size):
        v = z[i]
        if act == RELU:
            slope = 1.0 if v > 0 else 0.0
        elif act == LEAKY_RELU:
            slope = 1.0 if v > 0 else alpha
        elif act == RELU6:
            slope = 1.0 if 0 < v < 6 else 0.0
        elif act == SIGMOID:
            s = 1 / (1 + math.exp(-v))
            slope = s * (1 - s)
        elif act == TANH:
            t = math.tanh(v)
            slope = 1 - t * t
        elif act == GELU:
            # d/dv [v * Phi(v)] = Phi(v) + v * phi(v)
            slope = 0.5 * (1 + math.erf(v / math.sqrt(2.0))) + v * math.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
        else:
            slope = 1.0
        grad_z[i] = grad_y[i] * slope


# ------------------------------------------------------------------------------------------------------ loss
@njit(cache=True, nogil=True)
def softmax_cross_entropy(logits, labels, probs, grad_logits):
    """Mean cross-entropy of softmax(logits) against integer labels; writes probs and d loss / d logits.

    logits, probs, grad_logits (N, K); labels (N,) int. Stable: the row max is subtracted before exp."""
    n_batch, n_classes = logits.shape
    total = 0.0
    for n in range(n_batch):
        row_max = logits[n, 0]
        for k in range(1, n_classes):
            if logits[n, k] > row_max:
                row_max = logits[n, k]
        norm = 0.0
        for k in range(n_classes):
            e = math.exp(logits[n, k] - row_max)
            probs[n, k] = e
            norm += e
        for k in range(n_classes):
            probs[n, k] = probs[n, k] / norm
        label = labels[n]
        # log p = (z - max) - log(norm): no log(0) even when the softmax underflows
        total -= (logits[n, label] - row_max) - math.log(norm)
        for k in range(n_classes):
            grad_logits[n, k] = probs[n, k] / n_batch
        grad_logits[n, label] -= 1.0 / n_batch
    return total / n_batch
