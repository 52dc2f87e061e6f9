"""Program executors: run a whole sequence of kernel calls in one call from Python.

Calling a Numba kernel from Python costs about a microsecond of dispatch (type checks, unboxing each array): on
the digits model that was a fifth of the forward pass, on mini-Xception (~50 calls) more than half. So the Model
lays every run-state buffer out in one float32 arena (`state`) and every weight in another (`params`), and
describes its kernel calls as rows of an int64 table; an executor walks the table and calls the kernels on views
it cuts from the two arenas (C-contiguous array structs pointing into an arena: no allocation).

Row layout (ROW_WIDTH int64): [op code, then ARRAY_SLOTS array slots of (arena, offset, d0, d1, d2, d3), then
INT_SLOTS integer arguments]; arena 0 = state, 1 = params. Floating arguments (alpha) are in a float64 table with
FLOAT_SLOTS columns, one row per op.

The executors call the kernels through function pointers (`fns`, an int64 table of the kernels' compiled
addresses indexed by op code, filled by `kernel_addresses`), not as linked callees. Numba links a callee's code
into its caller and runs LLVM's full optimisation over the lot again, and it compiles every callee the caller can
reach (it types all branches): the linked executor for digits took 1.6 s of a 4.9 s empty-cache start to
re-optimise four kernels already optimised on their own, and one knowing every op compiled every kernel whichever
model ran (mini-Xception's empty-cache start: 49 s, now 24 s). Through pointers an executor compiles only its own
dispatch code (0.1-0.4 s), and each kernel is compiled, or loaded from the cache, on its own and only when a model
uses it. A pointer skips the dispatcher, so its kernel must have been compiled for exactly the argument types the
executor passes: `kernel_addresses` compiles each kernel for the types its argument kinds give (KERNEL_OPS) and
checks that it returns nothing.

Two executors: run_basic knows only the ops of plain 3x3-conv / 2x2-pool / dense classifiers like digits
(Winograd convs with their pool fused, padding copies, dense without activation, softmax) and compiles in 0.1 s;
run_full knows every op the Model emits (0.4 s) except those with non-float arguments (fractional_max_pool,
whose bins are int64 arrays), which stay plain Python calls between program segments. The Model picks run_basic
when every op of a segment is in BASIC_OPS.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from stream_cnn.model.kernels.activations import activation, glu, softmax
from stream_cnn.model.kernels.conv import (CONV2D_PATH_KERNELS, conv2d, conv2d_path_kernel, conv3x3_flat, conv3x3_flat_into, conv3x3_tiled,
                                           conv_channels_last,
                                           conv_patches,
                                           depthwise3x3_flat, depthwise3x3_rows, depthwise3x3_same,
                                           depthwise3x3_same_flat, pad_into,
                                           pointwise_rows_into, pointwise_small, pointwise_tiled,
                                           pointwise_rows16_into, pointwise_strided16, pointwise_tiled16,
                                           subsample_into)
from stream_cnn.model.kernels.dense import dense, dense_linear
from stream_cnn.model.kernels.stride2 import conv3x3_s2_tiled16, depthwise3x3_s2_tiled16
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

# op codes (indices into the address table: small and unique)
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
OP_POINTWISE_TILED16 = 35
OP_POINTWISE_ROWS16_INTO = 36
OP_POINTWISE_STRIDED16 = 37
OP_DEPTHWISE3X3_ROWS = 38
OP_CONV2D_PATHS = tuple(range(40, 40 + len(CONV2D_PATH_KERNELS)))   # conv2d's paths as kernels of their own
OP_CONV3X3_S2_TILED16 = 47
OP_DEPTHWISE3X3_S2_TILED16 = 48
OP_INPUT = 39   # no kernel: an executor's first row saying where to copy its x argument (see _take_input)

OP_DENSE_LINEAR = 7   # dense with identity activation: no activation code linked in

# the ops of digits-like models: run_basic's switch has a case for these only
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
    **{kernel: (code, "3413iiiiiif") for kernel, code in zip(CONV2D_PATH_KERNELS, OP_CONV2D_PATHS)},
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
    max_pool3s2_add: (OP_MAX_POOL3S2_ADD, "333iiii"),
    pointwise_small: (OP_POINTWISE_SMALL, "34131if"),
    pointwise_tiled: (OP_POINTWISE_TILED, "3313if"),
    pointwise_tiled16: (OP_POINTWISE_TILED16, "3313if"),
    pointwise_rows16_into: (OP_POINTWISE_ROWS16_INTO, "3313iiif"),
    pointwise_strided16: (OP_POINTWISE_STRIDED16, "3313iiif"),
    conv3x3_tiled: (OP_CONV3X3_TILED, "3313iiif"),
    pointwise_rows_into: (OP_POINTWISE_ROWS_INTO, "3313iiif"),
    conv_channels_last: (OP_CONV_CHANNELS_LAST, "34131if"),
    depthwise3x3_same: (OP_DEPTHWISE3X3_SAME, "34131if"),
    depthwise3x3_flat: (OP_DEPTHWISE3X3_FLAT, "34131if"),
    depthwise3x3_same_flat: (OP_DEPTHWISE3X3_SAME_FLAT, "3413if"),
    depthwise3x3_rows: (OP_DEPTHWISE3X3_ROWS, "3413if"),
    conv3x3_s2_tiled16: (OP_CONV3X3_S2_TILED16, "3313if"),
    depthwise3x3_s2_tiled16: (OP_DEPTHWISE3X3_S2_TILED16, "3413if"),
    winograd_conv_pooled: (OP_WINOGRAD, "33131iiiiif"),
}

def specialise(kernel, args):
    """(kernel, args) of the cheapest equivalent call: dense with the identity activation -> dense_linear, conv2d
    -> the kernel of its path for these arrays."""
    if kernel is dense and args[4] == 0:
        return dense_linear, args[:4]
    if kernel is conv2d:   # the one path the layer takes: conv2d would compile all seven
        xp, w, _, out, stride_h, stride_w, dil_h, dil_w, groups = args[:9]
        return conv2d_path_kernel(xp, w, out, stride_h, stride_w, dil_h, dil_w, groups), args
    return kernel, args


# activation and add take arrays of any rank; the Model hands them flat (rank 1) views.
FLAT_OPS = {activation: (OP_ACTIVATION, "11if"), add: (OP_ADD, "111if")}

KINDS = {code: kinds for code, kinds in list(KERNEL_OPS.values()) + list(FLAT_OPS.values())}
KERNELS = {code: kernel for kernel, (code, _) in list(KERNEL_OPS.items()) + list(FLAT_OPS.items())}
N_CODES = max(KINDS) + 1


def argument_types(kinds):
    """The Numba argument types of a kinds string: the exact types the executors pass (C-contiguous float32
    views of the arenas, int64 row entries, float64 alpha)."""
    return tuple(types.Array(types.float32, int(kind), "C") if kind in "1234" else
                 types.int64 if kind == "i" else types.float64 for kind in kinds)


def kernel_addresses(codes):
    """int64 table indexed by op code: the address of each listed op's kernel compiled (or loaded from the Numba
    cache) for the executors' argument types; 0 for the other ops."""
    table = np.zeros(N_CODES, dtype=np.int64)
    for code in set(codes):
        kernel, argtypes = KERNELS[code], argument_types(KINDS[code])
        kernel.compile(argtypes)
        compiled = kernel.overloads[argtypes]
        if compiled.signature.return_type != types.none:
            # the pointer call below is typed as returning nothing; a kernel returning a value would not match
            raise TypeError(f"kernel {kernel.__name__} returns {compiled.signature.return_type}, not None")
        table[code] = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
        if table[code] == 0:
            raise RuntimeError(f"no compiled code for kernel {kernel.__name__}")
    return table


def _emit_view(context, builder, fields, arenas, slot, rank):
    """LLVM IR for the float32 C-contiguous array of `rank` that array slot `slot` of a row describes: arena
    (0 = state, 1 = params), offset, shape. `fields` points at the row's int64s, `arenas` are the two arenas' data
    pointers. No meminfo: a view borrowed from an arena the caller holds for the whole call."""
    int64 = ir.IntType(64)

    def field(k):
        return builder.load(builder.gep(fields, [int64(k)]))

    base = 1 + slot * ARRAY_FIELDS
    in_state = builder.icmp_signed("==", field(base), int64(0))
    pointer = builder.gep(builder.select(in_state, *arenas), [field(base + 1)])
    shape = [field(base + 2 + k) for k in range(rank)]
    strides = [int64(4)]
    for extent in reversed(shape[1:]):
        strides.insert(0, builder.mul(strides[0], extent))
    array = context.make_array(types.Array(types.float32, rank, "C"))(context, builder)
    populate_array(array, data=pointer, shape=shape, strides=strides, itemsize=4, meminfo=None)
    return array._getvalue()


@intrinsic
def _state_view3(typingctx, row, state):
    """The 3-D view array slot 0 of `row` describes (arena 0: `state`)."""
    def codegen(context, builder, signature, args):
        fields = context.make_array(signature.args[0])(context, builder, args[0]).data
        data = context.make_array(signature.args[1])(context, builder, args[1]).data
        return _emit_view(context, builder, fields, (data, data), 0, 3)
    return types.Array(types.float32, 3, "C")(row, state), codegen


@njit(nogil=True, error_model="numpy", inline="always")
def _take_input(ops, state, x):
    """Where the executor starts: 1 past an OP_INPUT first row, after copying x into the buffer it describes at
    (top, left) when x is not empty; 0 when there is no such row. Copying here rather than in Python saves
    Model.forward(x) ~0.2 us (NumPy's assignment into a padded buffer's interior costs ~0.3 us of overhead)."""
    if ops.shape[0] == 0 or ops[0, 0] != OP_INPUT:
        return 0
    if x.size:
        row = ops[0]
        xp = _state_view3(row, state)
        top, left = row[INT_BASE], row[INT_BASE + 1]
        # plain rows, not a call of pad_into: linked in, pad_into added 0.45 s to the executor's compile
        for c in range(x.shape[0]):
            for y in range(x.shape[1]):
                src, dst = x[c, y], xp[c, top + y, left:]
                for i in range(x.shape[2]):
                    dst[i] = src[i]
    return 1


def _op_runner(codes):
    """An intrinsic (row, real, state, params, fns) -> bool that runs the op which `row` encodes when its code is
    one of `codes`, else returns False: a switch on row[0] with one case per code, each cutting the op's arrays
    from the arenas, taking its ints from the row and its floats from `real`, and calling the kernel at fns[code]
    with Numba's calling convention (so arrays and an error status pass exactly as in a linked call).

    Written as LLVM IR from the argument kinds of KERNEL_OPS rather than as @njit branches: each view cut there
    with slicing and reshape was ~10 IR nodes through Numba's inliner and type inference, most of an executor's
    compile time (0.9 of run_basic's 1.2 s); this way an executor compiles in ~0.2 s and the table is the only
    place that says what a kernel takes. Views are array structs with no meminfo: borrowed from arenas the caller
    holds for the whole call."""
    codes = sorted(codes)

    @intrinsic
    def run_op(typingctx, row, real, state, params, fns):
        def codegen(context, builder, signature, args):
            row_type, real_type, arena_type, _, fns_type = signature.args
            int64 = ir.IntType(64)

            def data(array_type, value):
                return context.make_array(array_type)(context, builder, value).data

            fields, reals, table = data(row_type, args[0]), data(real_type, args[1]), data(fns_type, args[4])
            arenas = data(arena_type, args[2]), data(arena_type, args[3])

            def field(k):
                return builder.load(builder.gep(fields, [int64(k)]))

            def view(slot, rank):
                return _emit_view(context, builder, fields, arenas, slot, rank)

            ran = cgutils.alloca_once_value(builder, cgutils.false_bit)
            done = builder.append_basic_block("op.done")
            unknown = builder.append_basic_block("op.unknown")
            switch = builder.switch(field(0), unknown)
            for code in codes:
                case = builder.append_basic_block(f"op.{code}")
                switch.add_case(int64(code), case)
                builder.position_at_end(case)
                address = builder.load(builder.gep(table, [int64(code)]))
                call = builder.append_basic_block(f"op.{code}.call")
                # a table without this kernel's address (not filled by kernel_addresses) reads as an unknown op
                builder.cbranch(builder.icmp_signed("==", address, int64(0)), unknown, call)
                builder.position_at_end(call)
                kinds, argtypes = KINDS[code], argument_types(KINDS[code])
                values, n_arrays, n_ints, n_reals = [], 0, 0, 0
                for kind in kinds:
                    if kind in "1234":
                        values.append(view(n_arrays, int(kind)))
                        n_arrays += 1
                    elif kind == "i":
                        values.append(field(INT_BASE + n_ints))
                        n_ints += 1
                    else:
                        values.append(builder.load(builder.gep(reals, [int64(n_reals)])))
                        n_reals += 1
                function_type = context.call_conv.get_function_type(types.none, argtypes)
                kernel = builder.inttoptr(address, function_type.as_pointer())
                status, _ = context.call_conv.call_function(builder, kernel, types.none, argtypes, values)
                with cgutils.if_unlikely(builder, status.is_error):
                    context.call_conv.return_status_propagate(builder, status)
                builder.store(cgutils.true_bit, ran)
                builder.branch(done)
            builder.position_at_end(unknown)
            builder.branch(done)
            builder.position_at_end(done)
            return builder.load(ran)
        return types.boolean(row, real, state, params, fns), codegen
    return run_op


_run_basic_op = _op_runner(BASIC_OPS)
_run_any_op = _op_runner(KINDS)


@njit(cache=True, nogil=True, error_model="numpy")
def run_basic(ops, reals, state, params, fns, x):
    """Run the ops of a plain CNN classifier (BASIC_OPS) in order, after the input copy (_take_input)."""
    for index in range(_take_input(ops, state, x), ops.shape[0]):
        if not _run_basic_op(ops[index], reals[index], state, params, fns):
            raise ValueError("run_basic: op outside BASIC_OPS")


@njit(cache=True, nogil=True, error_model="numpy")
def run_full(ops, reals, state, params, fns, x):
    """Run any op of KERNEL_OPS / FLAT_OPS in order, after the input copy (_take_input)."""
    for index in range(_take_input(ops, state, x), ops.shape[0]):
        if not _run_any_op(ops[index], reals[index], state, params, fns):
            raise ValueError("run_full: unknown op")
