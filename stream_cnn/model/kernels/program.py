"""Program executors: run a whole sequence of kernel calls in one call from Python.

Calling a Numba kernel from Python costs about a microsecond of dispatch (type checks, unboxing each array): on
the digits model that was a fifth of the forward pass, on mini-Xception (~50 calls) more than half. So the Model
lays every run-state buffer out in one float32 arena (`state`) and every weight in another (`params`), and
describes its kernel calls as rows of an int64 table; an executor walks the table and calls the kernels on views
it cuts from the two arenas. Views are slices reshaped to C-contiguous arrays (no allocation), so the kernels see
exactly the argument types they get from Python and share their compiled code with those calls.

Row layout (ROW_WIDTH int64): [op code, then ARRAY_SLOTS array slots of (arena, offset, d0, d1, d2, d3), then
INT_SLOTS integer arguments]; arena 0 = state, 1 = params. Floating arguments (alpha) are in a float64 table with
FLOAT_SLOTS columns, one row per op.

Two executors, because an executor compiles every kernel it can reach (Numba types all branches), and Numba
re-optimises every callee's code again inside each caller that links it, so nesting and reach cost compile time:
- run_basic knows only the ops of plain 3x3-conv / 2x2-pool / dense classifiers like digits (Winograd convs
  with their pool fused, padding copies, dense without activation, softmax), so a cold start compiles little;
- run_full knows every op the Model emits except those with non-float arguments (fractional_max_pool, whose
  bins are int64 arrays), which stay plain Python calls between program segments.
The Model picks run_basic when every op of a segment is in BASIC_OPS.

Caching caveat: Numba keys a cached function on its own source file only, and the executors carry compiled
copies of every kernel they call. After editing a kernel in another file, save this file too (or clear
__pycache__), or the executors keep running the old kernel code from the cache.
"""
from numba import njit

from stream_cnn.model.kernels.activations import activation, glu, softmax
from stream_cnn.model.kernels.conv import (conv2d, conv3x3_flat, conv3x3_flat_into, conv3x3_tiled,
                                           conv_channels_last,
                                           conv_patches,
                                           depthwise3x3_flat, depthwise3x3_same, depthwise3x3_same_flat, pad_into,
                                           pointwise_rows_into, pointwise_small, pointwise_tiled,
                                           subsample_into)
from stream_cnn.model.kernels.dense import dense, dense_linear
from stream_cnn.model.kernels.elementwise import add, concat_into
from stream_cnn.model.kernels.pool import (adaptive_avg_pool, adaptive_max_pool, avg_pool, global_avg_pool,
                                           global_max_pool, max_pool, max_pool3s2_add, max_pool_flat,
                                           max_pool_flat_add, max_pool_separable, min_pool)
from stream_cnn.model.kernels.winograd import winograd_conv_pooled

ARRAY_SLOTS = 5
ARRAY_FIELDS = 6
INT_SLOTS = 8
FLOAT_SLOTS = 2
INT_BASE = 1 + ARRAY_SLOTS * ARRAY_FIELDS
ROW_WIDTH = INT_BASE + INT_SLOTS

# op codes (the order of the branches below does not matter; the numbers must stay unique)
OP_PAD = 1
OP_CONV3X3_FLAT = 2
OP_MAX_POOL = 3
OP_DENSE = 4
OP_SOFTMAX = 5
OP_ACTIVATION = 6
OP_CONV2D = 10
OP_MIN_POOL = 11
OP_AVG_POOL = 12
OP_GLOBAL_AVG_POOL = 13
OP_GLOBAL_MAX_POOL = 14
OP_ADAPTIVE_AVG_POOL = 15
OP_ADAPTIVE_MAX_POOL = 16
OP_ADD = 17
OP_CONCAT = 18
OP_GLU = 19
OP_SUBSAMPLE = 20
OP_MAX_POOL_SEPARABLE = 21
OP_POINTWISE_SMALL = 22
OP_MAX_POOL_FLAT = 23
OP_MAX_POOL_FLAT_ADD = 24
OP_CONV_CHANNELS_LAST = 25
OP_DEPTHWISE3X3_SAME = 26
OP_CONV_PATCHES = 8
OP_WINOGRAD = 27
OP_DEPTHWISE3X3_FLAT = 28
OP_CONV3X3_FLAT_INTO = 29
OP_MAX_POOL3S2_ADD = 30
OP_DEPTHWISE3X3_SAME_FLAT = 31
OP_POINTWISE_TILED = 32
OP_CONV3X3_TILED = 33
OP_POINTWISE_ROWS_INTO = 34

OP_DENSE_LINEAR = 7   # dense with identity activation: no activation code linked in

# digits' convs all run as winograd_conv_pooled, so run_basic no longer carries conv3x3_flat / conv_patches (each kernel an
# executor can reach costs compile time on an empty cache); models still planning those run under run_full.
BASIC_OPS = frozenset({OP_PAD, OP_WINOGRAD, OP_DENSE_LINEAR, OP_SOFTMAX})

# kernel -> (op code, argument kinds): "1".."4" = float32 C-contiguous array of that rank, "i" int, "f" float.
KERNEL_OPS = {
    pad_into: (OP_PAD, "33ii"),
    conv3x3_flat: (OP_CONV3X3_FLAT, "34131iif"),
    conv3x3_flat_into: (OP_CONV3X3_FLAT_INTO, "34131iiif"),
    conv_patches: (OP_CONV_PATCHES, "34131iif"),
    max_pool: (OP_MAX_POOL, "33iiii"),
    dense: (OP_DENSE, "1211if"),
    dense_linear: (OP_DENSE_LINEAR, "1211"),
    softmax: (OP_SOFTMAX, "11"),
    conv2d: (OP_CONV2D, "3413iiiiiif"),
    min_pool: (OP_MIN_POOL, "33iiii"),
    avg_pool: (OP_AVG_POOL, "33iiiiii"),
    global_avg_pool: (OP_GLOBAL_AVG_POOL, "31"),
    global_max_pool: (OP_GLOBAL_MAX_POOL, "31"),
    adaptive_avg_pool: (OP_ADAPTIVE_AVG_POOL, "33"),
    adaptive_max_pool: (OP_ADAPTIVE_MAX_POOL, "33"),
    concat_into: (OP_CONCAT, "33i"),
    glu: (OP_GLU, "33"),
    subsample_into: (OP_SUBSAMPLE, "33iiii"),
    max_pool_separable: (OP_MAX_POOL_SEPARABLE, "331iiii"),
    max_pool_flat: (OP_MAX_POOL_FLAT, "331iiii"),
    max_pool_flat_add: (OP_MAX_POOL_FLAT_ADD, "3331iiiiii"),
    max_pool3s2_add: (OP_MAX_POOL3S2_ADD, "3331ii"),
    pointwise_small: (OP_POINTWISE_SMALL, "34131if"),
    pointwise_tiled: (OP_POINTWISE_TILED, "3313if"),
    conv3x3_tiled: (OP_CONV3X3_TILED, "3313iiif"),
    pointwise_rows_into: (OP_POINTWISE_ROWS_INTO, "3313iiif"),
    conv_channels_last: (OP_CONV_CHANNELS_LAST, "34131if"),
    depthwise3x3_same: (OP_DEPTHWISE3X3_SAME, "34131if"),
    depthwise3x3_flat: (OP_DEPTHWISE3X3_FLAT, "34131if"),
    depthwise3x3_same_flat: (OP_DEPTHWISE3X3_SAME_FLAT, "3413if"),
    winograd_conv_pooled: (OP_WINOGRAD, "33131iiiiif"),
}

def specialise(kernel, args):
    """(kernel, args) of the cheapest equivalent call: dense with the identity activation -> dense_linear."""
    if kernel is dense and args[4] == 0:
        return dense_linear, args[:4]
    return kernel, args


# activation and add take arrays of any rank; the Model hands them flat (rank 1) views.
FLAT_OPS = {activation: (OP_ACTIVATION, "11if"), add: (OP_ADD, "111if")}


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _arena(row, slot, state, params):
    return state if row[1 + slot * ARRAY_FIELDS] == 0 else params


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _v1(row, slot, state, params):
    base = 1 + slot * ARRAY_FIELDS
    off = row[base + 1]
    return _arena(row, slot, state, params)[off:off + row[base + 2]]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _v2(row, slot, state, params):
    base = 1 + slot * ARRAY_FIELDS
    off, d0, d1 = row[base + 1], row[base + 2], row[base + 3]
    return _arena(row, slot, state, params)[off:off + d0 * d1].reshape((d0, d1))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _v3(row, slot, state, params):
    base = 1 + slot * ARRAY_FIELDS
    off, d0, d1, d2 = row[base + 1], row[base + 2], row[base + 3], row[base + 4]
    return _arena(row, slot, state, params)[off:off + d0 * d1 * d2].reshape((d0, d1, d2))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _v4(row, slot, state, params):
    base = 1 + slot * ARRAY_FIELDS
    off, d0, d1, d2, d3 = row[base + 1], row[base + 2], row[base + 3], row[base + 4], row[base + 5]
    return _arena(row, slot, state, params)[off:off + d0 * d1 * d2 * d3].reshape((d0, d1, d2, d3))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _run_basic_op(row, alpha, state, params):
    """Run one op of BASIC_OPS (both executors share these branches); False if row's op is not one of them."""
    i = INT_BASE
    code = row[0]
    if code == OP_PAD:
        pad_into(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i], row[i + 1])
    elif code == OP_WINOGRAD:
        winograd_conv_pooled(_v3(row, 0, state, params), _v3(row, 1, state, params), _v1(row, 2, state, params),
                             _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], row[i + 1], row[i + 2],
                             row[i + 3], row[i + 4], alpha)
    elif code == OP_DENSE_LINEAR:
        dense_linear(_v1(row, 0, state, params), _v2(row, 1, state, params), _v1(row, 2, state, params),
                     _v1(row, 3, state, params))
    elif code == OP_SOFTMAX:
        softmax(_v1(row, 0, state, params), _v1(row, 1, state, params))
    else:
        return False
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def run_basic(ops, reals, state, params):
    """Run the ops of a plain CNN classifier (BASIC_OPS) in order."""
    for index in range(ops.shape[0]):
        if not _run_basic_op(ops[index], reals[index, 0], state, params):
            raise ValueError("run_basic: op outside BASIC_OPS")


@njit(cache=True, nogil=True, error_model="numpy")
def run_full(ops, reals, state, params):
    """Run any op of KERNEL_OPS / FLAT_OPS in order."""
    i = INT_BASE
    for index in range(ops.shape[0]):
        row = ops[index]
        code = row[0]
        alpha = reals[index, 0]
        if _run_basic_op(row, alpha, state, params):
            continue
        if code == OP_CONV3X3_FLAT:
            conv3x3_flat(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                         _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], row[i + 1], alpha)
        elif code == OP_CONV3X3_FLAT_INTO:
            conv3x3_flat_into(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                              _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], row[i + 1],
                              row[i + 2], alpha)
        elif code == OP_CONV_PATCHES:
            conv_patches(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                         _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], row[i + 1], alpha)
        elif code == OP_CONV2D:
            conv2d(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                   _v3(row, 3, state, params), row[i], row[i + 1], row[i + 2], row[i + 3], row[i + 4], row[i + 5],
                   alpha)
        elif code == OP_POINTWISE_SMALL:
            pointwise_small(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                            _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], alpha)
        elif code == OP_POINTWISE_TILED:
            pointwise_tiled(_v3(row, 0, state, params), _v3(row, 1, state, params), _v1(row, 2, state, params),
                            _v3(row, 3, state, params), row[i], alpha)
        elif code == OP_CONV3X3_TILED:
            conv3x3_tiled(_v3(row, 0, state, params), _v3(row, 1, state, params), _v1(row, 2, state, params),
                          _v3(row, 3, state, params), row[i], row[i + 1], row[i + 2], alpha)
        elif code == OP_POINTWISE_ROWS_INTO:
            pointwise_rows_into(_v3(row, 0, state, params), _v3(row, 1, state, params), _v1(row, 2, state, params),
                                _v3(row, 3, state, params), row[i], row[i + 1], row[i + 2], alpha)
        elif code == OP_CONV_CHANNELS_LAST:
            conv_channels_last(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                               _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], alpha)
        elif code == OP_DEPTHWISE3X3_SAME:
            depthwise3x3_same(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                              _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], alpha)
        elif code == OP_DEPTHWISE3X3_SAME_FLAT:
            depthwise3x3_same_flat(_v3(row, 0, state, params), _v4(row, 1, state, params),
                                   _v1(row, 2, state, params), _v3(row, 3, state, params), row[i], alpha)
        elif code == OP_DEPTHWISE3X3_FLAT:
            depthwise3x3_flat(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                              _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], alpha)
        elif code == OP_DENSE:
            dense(_v1(row, 0, state, params), _v2(row, 1, state, params), _v1(row, 2, state, params),
                  _v1(row, 3, state, params), row[i], alpha)
        elif code == OP_ACTIVATION:
            activation(_v1(row, 0, state, params), _v1(row, 1, state, params), row[i], alpha)
        elif code == OP_MAX_POOL:
            max_pool(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i], row[i + 1], row[i + 2],
                     row[i + 3])
        elif code == OP_MAX_POOL_SEPARABLE:
            max_pool_separable(_v3(row, 0, state, params), _v3(row, 1, state, params), _v1(row, 2, state, params),
                               row[i], row[i + 1], row[i + 2], row[i + 3])
        elif code == OP_MAX_POOL_FLAT:
            max_pool_flat(_v3(row, 0, state, params), _v3(row, 1, state, params), _v1(row, 2, state, params),
                          row[i], row[i + 1], row[i + 2], row[i + 3])
        elif code == OP_MAX_POOL_FLAT_ADD:
            max_pool_flat_add(_v3(row, 0, state, params), _v3(row, 1, state, params), _v3(row, 2, state, params),
                              _v1(row, 3, state, params), row[i], row[i + 1], row[i + 2], row[i + 3], row[i + 4],
                              row[i + 5])
        elif code == OP_MAX_POOL3S2_ADD:
            max_pool3s2_add(_v3(row, 0, state, params), _v3(row, 1, state, params), _v3(row, 2, state, params),
                            _v1(row, 3, state, params), row[i], row[i + 1])
        elif code == OP_MIN_POOL:
            min_pool(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i], row[i + 1], row[i + 2],
                     row[i + 3])
        elif code == OP_AVG_POOL:
            avg_pool(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i], row[i + 1], row[i + 2],
                     row[i + 3], row[i + 4], row[i + 5])
        elif code == OP_GLOBAL_AVG_POOL:
            global_avg_pool(_v3(row, 0, state, params), _v1(row, 1, state, params))
        elif code == OP_GLOBAL_MAX_POOL:
            global_max_pool(_v3(row, 0, state, params), _v1(row, 1, state, params))
        elif code == OP_ADAPTIVE_AVG_POOL:
            adaptive_avg_pool(_v3(row, 0, state, params), _v3(row, 1, state, params))
        elif code == OP_ADAPTIVE_MAX_POOL:
            adaptive_max_pool(_v3(row, 0, state, params), _v3(row, 1, state, params))
        elif code == OP_ADD:
            add(_v1(row, 0, state, params), _v1(row, 1, state, params), _v1(row, 2, state, params), row[i], alpha)
        elif code == OP_CONCAT:
            concat_into(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i])
        elif code == OP_SUBSAMPLE:
            subsample_into(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i], row[i + 1], row[i + 2],
                           row[i + 3])
        elif code == OP_GLU:
            glu(_v3(row, 0, state, params), _v3(row, 1, state, params))
        else:
            raise ValueError("run_full: unknown op")
