"""The executors (kernels/program.py): ops encoded as rows run their kernels through the address table, errors
raised inside a kernel reach Python, and rows the table or the executor does not know are refused."""
import numpy as np
import pytest

from stream_cnn.model.graph import NO_INPUT
from stream_cnn.model.kernels import program
from stream_cnn.model.kernels.activations import activation

RELU = 1


def _activation_row(act):
    """One OP_ACTIVATION row: state[16:24] = act(state[0:8])."""
    ops = np.zeros((1, program.ROW_WIDTH), dtype=np.int64)
    ops[0, 0] = program.OP_ACTIVATION
    first, second = 1, 1 + program.ARRAY_FIELDS
    ops[0, first:first + 3] = (0, 0, 8)       # arena 0 (state), offset 0, 8 floats
    ops[0, second:second + 3] = (0, 16, 8)
    ops[0, program.INT_BASE] = act
    return ops, np.zeros((1, program.FLOAT_SLOTS))


def test_an_encoded_op_runs_its_kernel_on_arena_views():
    state = np.zeros(32, dtype=np.float32)
    state[:8] = np.arange(8) - 4.0
    ops, reals = _activation_row(RELU)
    program.run_full(ops, reals, state, np.zeros(1, np.float32), program.kernel_addresses([program.OP_ACTIVATION]), NO_INPUT)
    expected = np.zeros(8, np.float32)
    activation(state[:8].copy(), expected, RELU, 0.0)
    np.testing.assert_array_equal(state[16:24], expected)
    assert state[16:24].tolist() == [0, 0, 0, 0, 0, 1, 2, 3]
    assert not state[8:16].any() and not state[24:].any()   # nothing outside the output view is written


def test_an_error_raised_in_a_kernel_reaches_python():
    ops, reals = _activation_row(999)   # activation raises on an unknown code
    fns = program.kernel_addresses([program.OP_ACTIVATION])
    with pytest.raises(ValueError, match="unknown activation code"):
        program.run_full(ops, reals, np.zeros(32, np.float32), np.zeros(1, np.float32), fns, NO_INPUT)


def test_an_op_outside_the_table_or_the_executor_is_refused():
    ops, reals = _activation_row(RELU)
    state, params = np.zeros(32, np.float32), np.zeros(1, np.float32)
    with pytest.raises(ValueError, match="unknown op"):   # no address for it in the table
        program.run_full(ops, reals, state, params, program.kernel_addresses([program.OP_SOFTMAX]), NO_INPUT)
    with pytest.raises(ValueError, match="outside BASIC_OPS"):
        program.run_basic(ops, reals, state, params, program.kernel_addresses([program.OP_ACTIVATION]), NO_INPUT)
    ops[0, 0] = 999
    with pytest.raises(ValueError, match="unknown op"):
        program.run_full(ops, reals, state, params, program.kernel_addresses([program.OP_ACTIVATION]), NO_INPUT)


def test_every_kernel_compiles_for_its_argument_kinds_and_returns_nothing():
    table = program.kernel_addresses(list(program.KINDS))
    assert table.shape == (program.N_CODES,)
    assert all(table[code] != 0 for code in program.KINDS)
    assert set(np.flatnonzero(table)) == set(program.KINDS)


def test_an_input_row_copies_x_into_its_buffer_first():
    """OP_INPUT first: x lands inside the buffer at (top, left), the border stays, and the ops after it see it."""
    state = np.full(128, 7.0, dtype=np.float32)
    state[:36] = 0.0                                # a 1x6x6 buffer at offset 0 with a zero border
    ops, reals = _activation_row(RELU)
    ops[0, 1:4] = (0, 0, 36)                        # relu over the whole 6x6 buffer ...
    ops[0, 1 + program.ARRAY_FIELDS:4 + program.ARRAY_FIELDS] = (0, 64, 36)   # ... into state[64:100]
    take = np.zeros((1, program.ROW_WIDTH), dtype=np.int64)
    take[0, :6] = (program.OP_INPUT, 0, 0, 1, 6, 6)
    take[0, program.INT_BASE:program.INT_BASE + 2] = (1, 2)
    ops = np.concatenate([take, ops])
    reals = np.zeros((2, program.FLOAT_SLOTS))
    x = (np.arange(12, dtype=np.float32) - 6.0).reshape(1, 3, 4)
    fns = program.kernel_addresses([program.OP_ACTIVATION])
    program.run_full(ops, reals, state, np.zeros(1, np.float32), fns, x)
    expected = np.zeros((6, 6), np.float32)
    expected[1:4, 2:6] = x[0]
    np.testing.assert_array_equal(state[:36].reshape(6, 6), expected)
    np.testing.assert_array_equal(state[64:100].reshape(6, 6), np.maximum(expected, 0))
    state[:36] = 0.0
    program.run_full(ops, reals, state, np.zeros(1, np.float32), fns, NO_INPUT)   # nothing to copy: skipped
    assert not state[:36].any()
