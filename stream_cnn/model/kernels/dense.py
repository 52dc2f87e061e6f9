"""Fully connected layer: out = f(W x + b), W (N_out, N_in) row-major like ONNX Gemm(transB=1)."""
import numpy as np
from numba import njit

from stream_cnn.model.kernels.activations import activate_inplace


# reassoc lets LLVM split each dot product into SIMD partial sums; without it a float reduction stays scalar.
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _dot_rows(x, w, b, out):
    n_out, n_in = w.shape
    for o in range(n_out):
        row = w[o]
        acc = np.float32(0.0)
        for i in range(n_in):
            acc += row[i] * x[i]
        out[o] = acc + b[o]


@njit(cache=True, nogil=True, error_model="numpy")
def dense_linear(x, w, b, out):
    """dense with the identity activation (what the program executors run for a plain classifier layer)."""
    _dot_rows(x, w, b, out)


@njit(cache=True, nogil=True, error_model="numpy")
def dense(x, w, b, out, act, alpha):
    """x (N_in,), w (N_out, N_in), b (N_out,) -> out (N_out,), activation fused."""
    _dot_rows(x, w, b, out)
    if act != 0:
        activate_inplace(out, act, alpha)
