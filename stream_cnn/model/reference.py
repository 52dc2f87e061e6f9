"""NumPy twin of every kernel: slow, obvious and allocating, written to be read.

The tests hold the Numba kernels to these functions. Unlike the kernels, these take unpadded inputs and explicit
padding, return new arrays, and compute in float64 before rounding to float32, so they are the "true" value the
float32 kernels approximate. Activations may be given by code (int) or name.
"""
import math

import numpy as np

from stream_cnn.model.kernels.activations import ACTIVATIONS


def _pair(value):
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _sides(padding):
    """int p -> (p, p, p, p); (top, bottom, left, right) as given."""
    if isinstance(padding, (tuple, list)):
        top, bottom, left, right = padding
        return int(top), int(bottom), int(left), int(right)
    p = int(padding)
    return p, p, p, p


def output_size(size, kernel, stride=1, pad_before=0, pad_after=0, dilation=1):
    """Length of a conv / pool output axis (floor mode, like ONNX and PyTorch)."""
    span = dilation * (kernel - 1) + 1
    return (size + pad_before + pad_after - span) // stride + 1


def pad(x, padding, value=0.0):
    """Pad a (C, H, W) map on H and W: padding = int or (top, bottom, left, right)."""
    top, bottom, left, right = _sides(padding)
    return np.pad(x, ((0, 0), (top, bottom), (left, right)), constant_values=value)


def activation(x, act=0, alpha=0.01):
    code = ACTIVATIONS[act] if isinstance(act, str) else int(act)
    v = np.asarray(x, dtype=np.float64)
    if code == 0:
        y = v
    elif code == 1:
        y = np.maximum(v, 0.0)
    elif code == 2:
        y = np.where(v > 0, v, alpha * v)
    elif code == 3:
        y = np.clip(v, 0.0, 6.0)
    elif code == 4:
        with np.errstate(over="ignore"):
            y = 1.0 / (1.0 + np.exp(-v))
    elif code == 5:
        y = np.tanh(v)
    elif code == 6:
        erf = np.vectorize(math.erf)
        y = 0.5 * v * (1.0 + erf(v / math.sqrt(2.0))) if v.size else v
    else:
        raise ValueError(f"unknown activation code {act!r}")
    return np.asarray(y, dtype=np.float32)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, act=0, alpha=0.01):
    """Cross-correlation of x (C_in, H, W) with w (C_out, C_in // groups, KH, KW), zero padding, then activation."""
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    top, bottom, left, right = _sides(padding)
    c_out, cin_per_group, kh, kw = w.shape
    xp = pad(np.asarray(x, np.float64), (top, bottom, left, right))
    out_h = output_size(x.shape[1], kh, sh, top, bottom, dh)
    out_w = output_size(x.shape[2], kw, sw, left, right, dw)
    cout_per_group = c_out // groups
    out = np.zeros((c_out, out_h, out_w))
    for oc in range(c_out):
        group = oc // cout_per_group
        channels = xp[group * cin_per_group:(group + 1) * cin_per_group]
        for oy in range(out_h):
            for ox in range(out_w):
                # The receptive field of output (oy, ox): every dh-th row and dw-th column from the top-left corner.
                window = channels[:, oy * sh: oy * sh + dh * (kh - 1) + 1: dh,
                                  ox * sw: ox * sw + dw * (kw - 1) + 1: dw]
                out[oc, oy, ox] = np.sum(window * w[oc])
        if b is not None:
            out[oc] += b[oc]
    return activation(out, act, alpha)


def _pool(x, kernel, stride, padding, fill, reduce):
    kh, kw = _pair(kernel)
    sh, sw = _pair(kernel if stride is None else stride)
    top, bottom, left, right = _sides(padding)
    xp = pad(np.asarray(x, np.float64), (top, bottom, left, right), value=fill)
    out_h = output_size(x.shape[1], kh, sh, top, bottom)
    out_w = output_size(x.shape[2], kw, sw, left, right)
    out = np.empty((x.shape[0], out_h, out_w))
    for oy in range(out_h):
        for ox in range(out_w):
            window = xp[:, oy * sh: oy * sh + kh, ox * sw: ox * sw + kw]
            out[:, oy, ox] = reduce(window)
    return out.astype(np.float32)


def max_pool(x, kernel, stride=None, padding=0):
    return _pool(x, kernel, stride, padding, -np.inf, lambda win: win.max(axis=(1, 2)))


def min_pool(x, kernel, stride=None, padding=0):
    return _pool(x, kernel, stride, padding, np.inf, lambda win: win.min(axis=(1, 2)))


def avg_pool(x, kernel, stride=None, padding=0):
    """Mean over the real (non-padding) cells of each window: ONNX AveragePool count_include_pad=0.

    A window made only of padding (possible only when padding >= kernel, which ONNX forbids) gives 0.
    """
    def mean_of_real_cells(window):
        real = (~np.isnan(window)).sum(axis=(1, 2))
        return np.nansum(window, axis=(1, 2)) / np.maximum(real, 1)
    return _pool(x, kernel, stride, padding, np.nan, mean_of_real_cells)


def global_avg_pool(x):
    return np.asarray(x, np.float64).mean(axis=(1, 2)).astype(np.float32)


def global_max_pool(x):
    return np.asarray(x).max(axis=(1, 2)).astype(np.float32)


def adaptive_bins(size, bins):
    """[(start, stop)] with bin i = [floor(i*size/bins), ceil((i+1)*size/bins)) (PyTorch adaptive pooling)."""
    return [(math.floor(i * size / bins), math.ceil((i + 1) * size / bins)) for i in range(bins)]


def _adaptive(x, output_size_hw, reduce):
    out_h, out_w = _pair(output_size_hw)
    rows = adaptive_bins(x.shape[1], out_h)
    cols = adaptive_bins(x.shape[2], out_w)
    return _binned(x, rows, cols, reduce)


def _binned(x, rows, cols, reduce):
    out = np.empty((x.shape[0], len(rows), len(cols)))
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            out[:, i, j] = reduce(np.asarray(x, np.float64)[:, y0:y1, x0:x1])
    return out.astype(np.float32)


def adaptive_avg_pool(x, output_size_hw):
    return _adaptive(x, output_size_hw, lambda win: win.mean(axis=(1, 2)))


def adaptive_max_pool(x, output_size_hw):
    return _adaptive(x, output_size_hw, lambda win: win.max(axis=(1, 2)))


def fractional_max_pool(x, row_edges, col_edges):
    """Max over bins [edges[i], edges[i+1]) on each axis."""
    rows = list(zip(row_edges[:-1], row_edges[1:]))
    cols = list(zip(col_edges[:-1], col_edges[1:]))
    return _binned(x, rows, cols, lambda win: win.max(axis=(1, 2)))


def dense(x, w, b=None, act=0, alpha=0.01):
    """W x + b with W (N_out, N_in), then activation."""
    y = np.asarray(w, np.float64) @ np.asarray(x, np.float64)
    if b is not None:
        y = y + b
    return activation(y, act, alpha)


def flatten(x):
    """(C, H, W) -> (C*H*W,), channel-major (C-order), like ONNX Flatten."""
    return np.asarray(x).reshape(-1)


def glu(x):
    """Split on axis 0 into halves a, b: a * sigmoid(b)."""
    half = x.shape[0] // 2
    a = np.asarray(x[:half], np.float64)
    gate = np.asarray(x[half:], np.float64)
    with np.errstate(over="ignore"):
        return (a / (1.0 + np.exp(-gate))).astype(np.float32)


def softmax(x):
    v = np.asarray(x, np.float64)
    e = np.exp(v - v.max())
    return (e / e.sum()).astype(np.float32)


def add(a, b, act=0, alpha=0.01):
    return activation(np.asarray(a, np.float64) + np.asarray(b, np.float64), act, alpha)


def concat(maps):
    """Channel concat of (C_i, H, W) maps."""
    return np.concatenate(maps, axis=0)


def batchnorm(x, gamma, beta, mean, var, eps=1e-5):
    """Inference batch norm per channel of (C, H, W) or (N,); the model folds this into the previous layer."""
    v = np.asarray(x, np.float64)
    shape = (-1,) + (1,) * (v.ndim - 1)
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return (v * scale.reshape(shape) + shift.reshape(shape)).astype(np.float32)
