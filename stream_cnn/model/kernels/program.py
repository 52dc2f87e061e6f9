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

Two executors, because an executor compiles every kernel it can reach (Numba types all branches):
- run_basic knows the ops of plain conv / pool / dense classifiers (digits): compiling it with an empty cache
  costs a few seconds;
- run_full knows every op the Model emits except those with non-float arguments (fractional_max_pool, whose
  bins are int64 arrays), which stay plain Python calls between program segments.
The Model picks run_basic when every op of a segment is in BASIC_OPS.
"""
from numba import njit

from stream_cnn.model.kernels.activations import activation, glu, softmax
from stream_cnn.model.kernels.conv import conv2d, conv3x3_flat, pad_into, subsample_into
from stream_cnn.model.kernels.dense import dense
from stream_cnn.model.kernels.elementwise import add, concat_into
from stream_cnn.model.kernels.pool import (adaptive_avg_pool, adaptive_max_pool, avg_pool, global_avg_pool,
                                           global_max_pool, max_pool, min_pool)

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

BASIC_OPS = frozenset({OP_PAD, OP_CONV3X3_FLAT, OP_MAX_POOL, OP_DENSE, OP_SOFTMAX, OP_ACTIVATION})

# kernel -> (op code, argument kinds): "1".."4" = float32 C-contiguous array of that rank, "i" int, "f" float.
KERNEL_OPS = {
    pad_into: (OP_PAD, "33ii"),
    conv3x3_flat: (OP_CONV3X3_FLAT, "34131iif"),
    max_pool: (OP_MAX_POOL, "33iiii"),
    dense: (OP_DENSE, "1211if"),
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
    subsample_into: (OP_SUBSAMPLE, "33ii"),
}
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


@njit(cache=True, nogil=True, error_model="numpy")
def _run_basic_op(code, row, reals, state, params):
    """Returns False for an op this executor does not know (the Model never emits one)."""
    i = INT_BASE
    if code == OP_PAD:
        pad_into(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i], row[i + 1])
    elif code == OP_CONV3X3_FLAT:
        conv3x3_flat(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                     _v3(row, 3, state, params), _v1(row, 4, state, params), row[i], row[i + 1], reals[0])
    elif code == OP_MAX_POOL:
        max_pool(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i], row[i + 1], row[i + 2],
                 row[i + 3])
    elif code == OP_DENSE:
        dense(_v1(row, 0, state, params), _v2(row, 1, state, params), _v1(row, 2, state, params),
              _v1(row, 3, state, params), row[i], reals[0])
    elif code == OP_SOFTMAX:
        softmax(_v1(row, 0, state, params), _v1(row, 1, state, params))
    elif code == OP_ACTIVATION:
        activation(_v1(row, 0, state, params), _v1(row, 1, state, params), row[i], reals[0])
    else:
        return False
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def run_basic(ops, reals, state, params):
    """Run the ops of a plain CNN (BASIC_OPS) in order."""
    for index in range(ops.shape[0]):
        row = ops[index]
        if not _run_basic_op(row[0], row, reals[index], state, params):
            raise ValueError("run_basic: op outside BASIC_OPS")


@njit(cache=True, nogil=True, error_model="numpy")
def run_full(ops, reals, state, params):
    """Run any op of KERNEL_OPS / FLAT_OPS in order."""
    i = INT_BASE
    for index in range(ops.shape[0]):
        row = ops[index]
        code = row[0]
        real = reals[index]
        if _run_basic_op(code, row, real, state, params):
            continue
        if code == OP_CONV2D:
            conv2d(_v3(row, 0, state, params), _v4(row, 1, state, params), _v1(row, 2, state, params),
                   _v3(row, 3, state, params), row[i], row[i + 1], row[i + 2], row[i + 3], row[i + 4], row[i + 5],
                   real[0])
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
            add(_v1(row, 0, state, params), _v1(row, 1, state, params), _v1(row, 2, state, params), row[i],
                real[0])
        elif code == OP_CONCAT:
            concat_into(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i])
        elif code == OP_SUBSAMPLE:
            subsample_into(_v3(row, 0, state, params), _v3(row, 1, state, params), row[i], row[i + 1])
        elif code == OP_GLU:
            glu(_v3(row, 0, state, params), _v3(row, 1, state, params))
        else:
            raise ValueError("run_full: unknown op")
