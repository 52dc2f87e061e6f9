"""Numba kernels of the forward pass: pure functions writing into preallocated float32 arrays.

The contract (signatures, semantics, activation codes) is in ARCHITECTURE.md, "Kernel contract".
Every kernel is compiled lazily, for the argument types it is first called with, and cached on disk.
Pass `alpha` as a Python float and `act` as an int, so one compiled signature serves every layer.

Beyond the contract's kernels, the Model plans faster equivalents where they measured faster (each one is held
to the NumPy twin by tests/test_kernels.py): conv3x3_flat and conv_patches (3x3 / small-map convs, optionally
with the following 2x2 max pool fused; conv3x3_flat_into writes into a padded buffer), conv_channels_last (small-map heads), depthwise3x3_same and depthwise3x3_same_flat (padding without
a pad copy), depthwise3x3_flat (depthwise 3x3 on narrow maps), pointwise_tiled and conv3x3_tiled (1x1 and 3x3 convs as products in register tiles, kernels/registers.py), pointwise_small (1x1 convs on few pixels), subsample_into (strided 1x1 convs), max_pool_separable,
max_pool_flat, max_pool_flat_add (a pool and the residual add after it; max_pool3s2_add reads an even map unpadded), activate_inplace, winograd_conv (3x3
stride-1 convs as Winograd F(2x2, 3x3), optionally with the following 2x2 max pool fused; winograd_conv_pooled is
its pooled half). kernels/program.py holds the executors that run a whole forward pass in one call from Python.
"""
from stream_cnn.model.kernels.activations import (ACTIVATIONS, activate_inplace, activate_into, activation, glu,
                                                  softmax)
from stream_cnn.model.kernels.conv import (
    FLAT_ACTIVATIONS,
    PARALLEL_MIN_MACS,
    conv2d,
    conv2d_parallel,
    conv3x3_flat,
    conv3x3_flat_into,
    conv3x3_tiled,
    conv3x3_tiled_weights,
    channels_last_weights,
    conv_channels_last,
    conv_macs,
    conv_patches,
    depthwise3x3_flat,
    depthwise3x3_rows,
    depthwise3x3_same,
    depthwise3x3_same_flat,
    depthwise_flat_scratch_size,
    flat_scratch_size,
    pad_into,
    patches_scratch_size,
    pointwise_small,
    pointwise_rows_into,
    pointwise_tiled,
    pointwise_tiled_weights,
    subsample_into,
    use_parallel_conv,
)
from stream_cnn.model.kernels.dense import dense
from stream_cnn.model.kernels.elementwise import add, concat_into
from stream_cnn.model.kernels.winograd import (winograd_conv, winograd_conv_pooled, winograd_fits,
                                               winograd_scratch_size, winograd_weight_rows, winograd_weights)
from stream_cnn.model.kernels.pool import (
    adaptive_avg_pool,
    adaptive_max_pool,
    avg_pool,
    flat_pool_scratch_size,
    fractional_max_pool,
    global_avg_pool,
    global_max_pool,
    max_pool,
    max_pool_flat,
    max_pool_flat_add,
    max_pool3s2_add,
    max_pool_separable,
    min_pool,
)

__all__ = [
    "ACTIVATIONS",
    "FLAT_ACTIVATIONS",
    "PARALLEL_MIN_MACS",
    "activate_inplace",
    "activate_into",
    "activation",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "add",
    "avg_pool",
    "concat_into",
    "conv2d",
    "conv2d_parallel",
    "conv3x3_flat",
    "conv3x3_flat_into",
    "conv3x3_tiled",
    "conv3x3_tiled_weights",
    "channels_last_weights",
    "conv_channels_last",
    "conv_macs",
    "conv_patches",
    "depthwise3x3_flat",
    "depthwise3x3_rows",
    "depthwise3x3_same",
    "depthwise3x3_same_flat",
    "depthwise_flat_scratch_size",
    "dense",
    "flat_pool_scratch_size",
    "flat_scratch_size",
    "fractional_max_pool",
    "global_avg_pool",
    "global_max_pool",
    "glu",
    "max_pool",
    "max_pool_flat",
    "max_pool_flat_add",
    "max_pool3s2_add",
    "max_pool_separable",
    "min_pool",
    "pad_into",
    "patches_scratch_size",
    "pointwise_small",
    "pointwise_rows_into",
    "pointwise_tiled",
    "pointwise_tiled_weights",
    "softmax",
    "subsample_into",
    "use_parallel_conv",
    "winograd_conv",
    "winograd_conv_pooled",
    "winograd_fits",
    "winograd_scratch_size",
    "winograd_weight_rows",
    "winograd_weights",
]
