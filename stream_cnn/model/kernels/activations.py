"""Activation kernels and the in-place activation pass the other kernels fuse in.

Every function here branches on the activation code *outside* its element loop, so each loop body is a single
formula LLVM can vectorise. Constants are float32 on purpose: a bare Python float literal would promote the
float32 data to float64 and halve the SIMD width.
"""
import math

import numpy as np
from numba import njit

# name -> int code used by the kernels (a plain dict, for code outside njit only).
ACTIVATIONS = {
    "identity": 0,
    "relu": 1,
    "leaky_relu": 2,
    "relu6": 3,
    "sigmoid": 4,
    "tanh": 5,
    "gelu": 6,
}


@njit(cache=True, nogil=True)
def activate_into(src, dst, act, alpha):
    """dst[i] = f(src[i]) for 1-D contiguous arrays of equal length; src may be dst (in place)."""
    n = dst.shape[0]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    if act == 0:
        # In-place callers skip the call for identity; this copy is for the out-of-place form.
        for i in range(n):
            dst[i] = src[i]
    elif act == 1:
        for i in range(n):
            v = src[i]
            dst[i] = v if v > zero else zero
    elif act == 2:
        slope = np.float32(alpha)
        for i in range(n):
            v = src[i]
            dst[i] = v if v > zero else slope * v
    elif act == 3:
        six = np.float32(6.0)
        for i in range(n):
            v = src[i]
            v = v if v > zero else zero
            dst[i] = v if v < six else six
    elif act == 4:
        for i in range(n):
            dst[i] = one / (one + np.exp(-src[i]))
    elif act == 5:
        for i in range(n):
            dst[i] = np.tanh(src[i])
    elif act == 6:
        half = np.float32(0.5)
        inv_sqrt2 = np.float32(0.7071067811865476)
        for i in range(n):
            v = src[i]
            dst[i] = half * v * (one + np.float32(math.erf(v * inv_sqrt2)))
    else:
        raise ValueError("unknown activation code")


@njit(cache=True, nogil=True)
def activation(x, out, act, alpha):
    """out = f(x) element-wise; x and out C-contiguous of the same shape (any rank)."""
    activate_into(x.reshape(x.size), out.reshape(out.size), act, alpha)


@njit(cache=True, nogil=True)
def glu(x, out):
    """Gated linear unit on axis 0: x (2C, ...) -> out (C, ...) = a * sigmoid(b), a = x[:C], b = x[C:]."""
    flat_x = x.reshape(x.size)
    flat_out = out.reshape(out.size)
    n = flat_out.shape[0]
    gate = flat_x[n:]
    one = np.float32(1.0)
    for i in range(n):
        flat_out[i] = flat_x[i] * (one / (one + np.exp(-gate[i])))


@njit(cache=True, nogil=True)
def softmax(x, out):
    """Numerically stable softmax of a 1-D vector: subtract the max before exp."""
    n = x.shape[0]
    largest = x[0]
    for i in range(1, n):
        if x[i] > largest:
            largest = x[i]
    total = 0.0  # float64: the normaliser of a long vector should not lose the small terms
    for i in range(n):
        e = np.exp(x[i] - largest)
        out[i] = e
        total += e
    scale = np.float32(1.0 / total)
    for i in range(n):
        out[i] *= scale
