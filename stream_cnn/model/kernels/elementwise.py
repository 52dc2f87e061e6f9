"""Element-wise kernels: residual add (with a fused activation) and channel concat copies."""
from numba import njit

from stream_cnn.model.kernels.activations import activate_inplace


@njit(cache=True, nogil=True, error_model="numpy")
def add(a, b, out, act, alpha):
    """out = f(a + b) element-wise; a, b, out C-contiguous of the same shape (any rank). out may alias a or b."""
    flat_a = a.reshape(a.size)
    flat_b = b.reshape(b.size)
    flat_out = out.reshape(out.size)
    if out.ctypes.data == a.ctypes.data:
        # accumulating in place: one array read and written, so the loop keeps its vectorised form (see
        # activate_inplace for why a store overlapping a load would not)
        for i in range(flat_out.shape[0]):
            flat_out[i] += flat_b[i]
    else:
        for i in range(flat_out.shape[0]):
            flat_out[i] = flat_a[i] + flat_b[i]
    if act != 0:
        activate_inplace(flat_out, act, alpha)


@njit(cache=True, nogil=True, error_model="numpy")
def concat_into(x, out, channel_offset):
    """Copy x (C, H, W) into out[channel_offset : channel_offset + C] (out is (C_total, H, W)).

    A channel concat is one call per input; channels are contiguous blocks, so each call is one flat copy.
    """
    block = x.size
    start = channel_offset * x.shape[1] * x.shape[2]
    flat_x = x.reshape(block)
    flat_out = out.reshape(out.size)[start:start + block]
    for i in range(block):
        flat_out[i] = flat_x[i]
