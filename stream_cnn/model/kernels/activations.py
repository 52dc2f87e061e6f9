"""Activation kernels and the in-place activation pass the other kernels fuse in.

Every function here branches on the activation code *outside* its element loop, so each loop body is a single
formula LLVM can vectorise. That needs three things: float32 constants (a bare Python float literal would promote
the data to float64 and halve the SIMD width), error_model="numpy" (Python's ZeroDivisionError check on every
division blocks vectorisation), and exp / erf written out (exp32, erf32) because without SVML libm's expf, tanhf
and erf are scalar calls: sigmoid and tanh of 25k values went from 90 us / 400 us to ~7 us.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

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


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32 as the float32 with the same bits (how 2**n is built without a libm call)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@njit(nogil=True, error_model="numpy", inline="always")
def exp32(v):
    """float32 exp that LLVM can vectorise (libm's expf is a scalar call: no SVML here).

    exp(v) = 2**n * exp(r), n = round(v / ln 2), r = v - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two parts so
    n * ln2_hi is exact), exp(r) by its Taylor series to r**7 (relative error < 2e-8 on that range), 2**n from
    the exponent bits. Inputs are clamped to the float32 range of exp, so +-inf give the float32 max / ~1e-38.
    """
    hi = np.float32(88.0)
    lo = np.float32(-87.0)
    v = hi if v > hi else v
    v = lo if v < lo else v
    n = np.floor(v * np.float32(1.4426950408889634) + np.float32(0.5))
    r = v - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return p * _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))


@njit(nogil=True, error_model="numpy", inline="always")
def erf32(v):
    """float32 erf that LLVM can vectorise: Abramowitz & Stegun 7.1.26, absolute error < 1.5e-7."""
    a = v if v > np.float32(0.0) else -v
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.3275911) * a)
    poly = np.float32(1.061405429)
    poly = poly * t + np.float32(-1.453152027)
    poly = poly * t + np.float32(1.421413741)
    poly = poly * t + np.float32(-0.284496736)
    poly = poly * t + np.float32(0.254829592)
    y = np.float32(1.0) - poly * t * exp32(-a * a)
    return y if v >= np.float32(0.0) else -y


@njit(cache=True, nogil=True, error_model="numpy")
def activate_into(src, dst, act, alpha):
    """dst[i] = f(src[i]) for 1-D contiguous arrays of equal length. src may be dst, but in place use
    activate_inplace: the overlapping call runs unvectorised (see there)."""
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
            dst[i] = one / (one + exp32(-src[i]))
    elif act == 5:
        two = np.float32(2.0)
        for i in range(n):
            # tanh v = 1 - 2 / (exp(2v) + 1): one vectorised exp instead of libm's scalar tanhf (~15 ns each).
            dst[i] = one - two / (exp32(two * src[i]) + one)
    elif act == 6:
        half = np.float32(0.5)
        inv_sqrt2 = np.float32(0.7071067811865476)
        for i in range(n):
            v = src[i]
            dst[i] = half * v * (one + erf32(v * inv_sqrt2))
    else:
        raise ValueError("unknown activation code")


@njit(cache=True, nogil=True, error_model="numpy")
def activate_inplace(x, act, alpha):
    """x[i] = f(x[i]) for a 1-D contiguous array.

    Not activate_into(x, x): LLVM guards each vectorised loop with a check that source and destination do not
    overlap, and an in-place call always overlaps, so it ran the scalar fallback, whose branches mispredict on
    mixed-sign data: relu6 in place on 74k values took 244 us instead of 4 (relu 13 us instead of 3).
    So the loops below repeat activate_into's on purpose, on one array instead of two: keep them apart (a
    shared helper taking src and dst would bring the overlap check back).
    """
    n = x.shape[0]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    if act == 0:
        return
    elif act == 1:
        for i in range(n):
            v = x[i]
            x[i] = v if v > zero else zero
    elif act == 2:
        slope = np.float32(alpha)
        for i in range(n):
            v = x[i]
            x[i] = v if v > zero else slope * v
    elif act == 3:
        six = np.float32(6.0)
        for i in range(n):
            v = x[i]
            v = v if v > zero else zero
            x[i] = v if v < six else six
    elif act == 4:
        for i in range(n):
            x[i] = one / (one + exp32(-x[i]))
    elif act == 5:
        two = np.float32(2.0)
        for i in range(n):
            x[i] = one - two / (exp32(two * x[i]) + one)
    elif act == 6:
        half = np.float32(0.5)
        inv_sqrt2 = np.float32(0.7071067811865476)
        for i in range(n):
            v = x[i]
            x[i] = half * v * (one + erf32(v * inv_sqrt2))
    else:
        raise ValueError("unknown activation code")


@njit(cache=True, nogil=True, error_model="numpy")
def activation(x, out, act, alpha):
    """out = f(x) element-wise; x and out C-contiguous of the same shape (any rank); out may be x (in place)."""
    if x.ctypes.data == out.ctypes.data:
        activate_inplace(out.reshape(out.size), act, alpha)
    else:
        activate_into(x.reshape(x.size), out.reshape(out.size), act, alpha)


@njit(cache=True, nogil=True, error_model="numpy")
def glu(x, out):
    """Gated linear unit on axis 0: x (2C, ...) -> out (C, ...) = a * sigmoid(b), a = x[:C], b = x[C:]."""
    flat_x = x.reshape(x.size)
    flat_out = out.reshape(out.size)
    n = flat_out.shape[0]
    gate = flat_x[n:]
    one = np.float32(1.0)
    for i in range(n):
        flat_out[i] = flat_x[i] * (one / (one + exp32(-gate[i])))


@njit(cache=True, nogil=True, error_model="numpy")
def softmax(x, out):
    """Numerically stable softmax of a 1-D vector: subtract the max before exp."""
    n = x.shape[0]
    largest = x[0]
    for i in range(1, n):
        if x[i] > largest:
            largest = x[i]
    total = 0.0  # float64: the normaliser of a long vector should not lose the small terms
    for i in range(n):
        e = exp32(x[i] - largest)
        out[i] = e
        total += e
    scale = np.float32(1.0 / total)
    for i in range(n):
        out[i] *= scale
