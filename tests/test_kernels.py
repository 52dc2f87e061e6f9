"""Each Numba kernel against its NumPy twin (stream_cnn.model.reference) on randomised shapes and parameters.

Inputs are U(-1, 1) and conv / dense weights are scaled by 1/sqrt(fan_in), as a trained layer's would be, so every
output is O(1) and float32 rounding of a long sum stays around 1e-6: the 1e-5 absolute tolerance then tests the
algorithm, not the arithmetic. The reference computes in float64.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import pool_window_params
from stream_cnn.model import kernels as K
from stream_cnn.model import reference as R

TOL = 1e-5
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALPHAS = st.sampled_from([0.01, 0.1, 0.3])


def uniform(rng, shape, scale=1.0):
    return (rng.uniform(-1.0, 1.0, shape) * scale).astype(np.float32)


def padded(x, top, bottom, left, right, fill=0.0):
    """The kernel-side padding: a buffer with its border filled once, interior written by pad_into."""
    c, h, w = x.shape
    xp = np.full((c, h + top + bottom, w + left + right), fill, dtype=np.float32)
    K.pad_into(x, xp, top, left)
    return xp


def run_conv(x, w, b, stride, pads, dilation, groups, act, alpha):
    top, bottom, left, right = pads
    out_h = R.output_size(x.shape[1], w.shape[2], stride[0], top, bottom, dilation[0])
    out_w = R.output_size(x.shape[2], w.shape[3], stride[1], left, right, dilation[1])
    out = np.full((w.shape[0], out_h, out_w), np.nan, dtype=np.float32)  # NaN: any cell left unwritten shows
    K.conv2d(padded(x, *pads), w, b, out, stride[0], stride[1], dilation[0], dilation[1], groups, act, alpha)
    return out


def conv_case(rng, c_in, c_out, height, width, kh, kw, groups):
    x = uniform(rng, (c_in, height, width))
    fan_in = (c_in // groups) * kh * kw
    w = uniform(rng, (c_out, c_in // groups, kh, kw), 1.0 / np.sqrt(fan_in))
    b = uniform(rng, (c_out,), 0.5)
    return x, w, b


def assert_close(actual, expected):
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL)


def test_pad_into_writes_interior_only():
    rng = np.random.default_rng(0)
    x = uniform(rng, (2, 3, 4))
    xp = np.full((2, 3 + 1 + 2, 4 + 3 + 0), -7.0, dtype=np.float32)
    K.pad_into(x, xp, 1, 3)
    np.testing.assert_array_equal(xp[:, 1:4, 3:7], x)
    border = np.ones(xp.shape, bool)
    border[:, 1:4, 3:7] = False
    assert np.all(xp[border] == -7.0)


@st.composite
def conv_params(draw):
    """Any conv the kernel must handle; kernel sizes 1 and 3 and stride 1 are weighted to reach the fast paths."""
    depthwise = draw(st.booleans())
    if depthwise:
        groups = draw(st.integers(1, 5))
        cin_per_group, cout_per_group = 1, draw(st.integers(1, 2))
    else:
        groups = draw(st.sampled_from([1, 1, 2, 3]))
        cin_per_group, cout_per_group = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kh = draw(st.sampled_from([1, 2, 3, 3, 3, 5]))
    kw = draw(st.sampled_from([kh, kh, 1, 2, 3, 4]))
    stride = (draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3])))
    dilation = (draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 3])))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    # The padded input must hold at least one (dilated) window; the unpadded one may be smaller than the kernel.
    assume(height + pads[0] + pads[1] >= dilation[0] * (kh - 1) + 1)
    assume(width + pads[2] + pads[3] >= dilation[1] * (kw - 1) + 1)
    return dict(c_in=groups * cin_per_group, c_out=groups * cout_per_group, height=height, width=width,
                kh=kh, kw=kw, groups=groups, stride=stride, dilation=dilation, pads=pads,
                act=draw(st.integers(0, 6)), alpha=draw(ALPHAS), seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(conv_params())
def test_conv2d_matches_reference(p):
    rng = np.random.default_rng(p["seed"])
    x, w, b = conv_case(rng, p["c_in"], p["c_out"], p["height"], p["width"], p["kh"], p["kw"], p["groups"])
    got = run_conv(x, w, b, p["stride"], p["pads"], p["dilation"], p["groups"], p["act"], p["alpha"])
    want = R.conv2d(x, w, b, p["stride"], p["pads"], p["dilation"], p["groups"], p["act"], p["alpha"])
    assert_close(got, want)


# Each fast path explicitly, with channel counts that leave remainders in the 4 x 4 pointwise blocks, through
# the single-threaded kernel, the multi-threaded variant (which splits output channels into chunks) and the path's own
# kernel (conv2d_path_kernel: what the Model plans).
CONV2D_PATH_CASES = [
    (7, 9, 5, 1, 1, 1, (0, 0, 0, 0)),      # pointwise, remainders in both channel blocks
    (8, 12, 6, 1, 1, 1, (0, 0, 0, 0)),     # pointwise, whole blocks
    (1, 1, 1, 1, 1, 1, (0, 0, 0, 0)),      # 1x1 input, single channel
    (3, 5, 1, 3, 1, 1, (1, 1, 1, 1)),      # 1x1 input with a 3x3 kernel: only the centre tap sees data
    (6, 4, 7, 3, 1, 2, (1, 1, 1, 1)),      # grouped 3x3
    (6, 9, 6, 3, 1, 3, (1, 0, 0, 1)),      # grouped 3x3, odd channels per group: pairs must not straddle groups
    (6, 12, 7, 3, 1, 6, (0, 2, 1, 1)),     # depthwise 3x3, channel multiplier 2, asymmetric padding
    (3, 6, 27, 3, 1, 3, (1, 1, 1, 1)),     # depthwise 3x3 on rows >= 24 wide: two rows per pass, odd last row
    (2, 2, 26, 3, 1, 2, (1, 1, 1, 0)),     # the same, even number of rows
    (16, 32, 20, 3, 1, 1, (1, 1, 1, 1)),   # 3x3, enough channels for every parallel chunk
    (5, 10, 9, 3, 2, 1, (1, 1, 1, 1)),     # 3x3 stride 2
    (6, 9, 8, 3, 2, 3, (0, 1, 1, 0)),      # grouped 3x3 stride 2, odd channels per group
    (8, 8, 10, 3, 2, 8, (0, 1, 0, 1)),     # depthwise 3x3 stride 2 (MobileNetV2's downsampling)
    (64, 72, 12, 1, 1, 1, (0, 0, 0, 0)),   # pointwise, 72 channels = 8 chunks of 9 rounded up to 12
    (12, 8, 9, 1, 1, 1, (0, 0, 0, 0)),     # pointwise, a block of 8 input channels then one of 4 (relu not fused)
    (16, 6, 15, 1, 1, 1, (0, 0, 0, 0)),    # pointwise, two blocks of 8 (relu fused into the second), 240 pixels
    (3, 10, 12, 5, 1, 1, (2, 2, 2, 2)),    # 5-wide kernel rows unrolled
    (4, 6, 8, 4, 2, 2, (1, 2, 2, 1)),      # general path, stride 2, even kernel
    (9, 13, 9, 1, 2, 1, (0, 0, 0, 0)),     # strided pointwise (Xception shortcut), remainders in channel blocks
    (4, 8, 5, 1, 3, 1, (0, 1, 1, 0)),      # padded pointwise, stride 3
]


@pytest.mark.parametrize("c_in, c_out, size, k, stride, groups, pads", CONV2D_PATH_CASES)
@pytest.mark.parametrize("act", [0, 1, 6])
@pytest.mark.parametrize("kernel", [K.conv2d, K.conv2d_parallel, "path"])
def test_conv2d_fast_paths(c_in, c_out, size, k, stride, groups, pads, act, kernel):
    rng = np.random.default_rng(c_in * 100 + c_out)
    x, w, b = conv_case(rng, c_in, c_out, size, size + 1, k, k, groups)
    top, bottom, left, right = pads
    out = np.full((c_out, R.output_size(size, k, stride, top, bottom), R.output_size(size + 1, k, stride, left, right)),
                  np.nan, np.float32)
    xp = padded(x, *pads)
    if kernel == "path":   # the path's own kernel, as the Model plans it
        kernel = K.conv2d_path_kernel(xp, w, out, stride, stride, 1, 1, groups)
    kernel(xp, w, b, out, stride, stride, 1, 1, groups, act, 0.01)
    assert_close(out, R.conv2d(x, w, b, stride, pads, 1, groups, act))


def test_the_fast_path_cases_reach_every_conv2d_path_kernel():
    reached = set()
    for c_in, c_out, size, k, stride, groups, pads in CONV2D_PATH_CASES:
        top, bottom, left, right = pads
        xp = np.zeros((c_in, size + top + bottom, size + 1 + left + right), np.float32)
        w = np.zeros((c_out, c_in // groups, k, k), np.float32)
        out = np.zeros((c_out, R.output_size(size, k, stride, top, bottom),
                        R.output_size(size + 1, k, stride, left, right)), np.float32)
        reached.add(K.conv2d_path_kernel(xp, w, out, stride, stride, 1, 1, groups))
    assert reached == set(K.CONV2D_PATH_KERNELS)


def test_parallel_variant_is_chosen_only_for_big_layers():
    assert K.conv_macs((32, 32, 32), (32, 16, 3, 3)) == 32 * 32 * 32 * 16 * 9
    assert not K.use_parallel_conv((32, 32, 32), (32, 16, 3, 3))
    assert K.use_parallel_conv((256, 112, 112), (256, 256, 3, 3))


@SETTINGS
@given(pool_window_params(max_channels=4), st.sampled_from(["max", "min", "avg"]))
def test_window_pools_match_reference(p, kind):
    rng = np.random.default_rng(p["seed"])
    x = uniform(rng, (p["channels"], p["height"], p["width"]))
    (kh, kw), (sh, sw), pads = p["kernel"], p["stride"], p["pads"]
    want = getattr(R, f"{kind}_pool")(x, p["kernel"], p["stride"], pads)
    got = np.full(want.shape, np.nan, dtype=np.float32)
    if kind == "avg":
        K.avg_pool(x, got, kh, kw, sh, sw, pads[0], pads[2])
    elif kind == "max":
        K.max_pool(padded(x, *pads, fill=-np.inf), got, kh, kw, sh, sw)
    else:
        K.min_pool(padded(x, *pads, fill=np.inf), got, kh, kw, sh, sw)
    assert_close(got, want)


# The unrolled window shapes (2 and 3 wide, stride 1 and 2) and the all-windows-inside average path, explicitly.
@pytest.mark.parametrize("kernel, stride", [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((3, 3), (2, 2)), ((2, 2), (1, 1)),
                                            ((3, 2), (3, 2)), ((1, 4), (2, 3))])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 0, 1, 0), (0, 1, 0, 1)])
def test_window_pool_fast_paths(kernel, stride, pads):
    rng = np.random.default_rng(sum(kernel) + 7 * sum(stride))
    x = uniform(rng, (3, 11, 12))
    (kh, kw), (sh, sw) = kernel, stride
    for kind, fill in [("max", -np.inf), ("min", np.inf), ("avg", None)]:
        want = getattr(R, f"{kind}_pool")(x, kernel, stride, pads)
        got = np.full(want.shape, np.nan, dtype=np.float32)
        if kind == "avg":
            K.avg_pool(x, got, kh, kw, sh, sw, pads[0], pads[2])
        else:
            getattr(K, f"{kind}_pool")(padded(x, *pads, fill=fill), got, kh, kw, sh, sw)
        assert_close(got, want)


@SETTINGS
@given(st.integers(1, 5), st.integers(1, 12), st.integers(1, 12), st.integers(0, 2 ** 16))
def test_global_pools_match_reference(channels, height, width, seed):
    x = uniform(np.random.default_rng(seed), (channels, height, width))
    for kernel, twin in [(K.global_avg_pool, R.global_avg_pool), (K.global_max_pool, R.global_max_pool)]:
        got = np.full(channels, np.nan, dtype=np.float32)
        kernel(x, got)
        assert_close(got, twin(x))


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12), st.data())
def test_adaptive_pools_match_reference(channels, height, width, data):
    # Output may be larger than the input too (bins then overlap / repeat), as in PyTorch.
    out_hw = (data.draw(st.integers(1, 14)), data.draw(st.integers(1, 14)))
    x = uniform(np.random.default_rng(height * 31 + width), (channels, height, width))
    for kernel, twin in [(K.adaptive_avg_pool, R.adaptive_avg_pool), (K.adaptive_max_pool, R.adaptive_max_pool)]:
        want = twin(x, out_hw)
        got = np.full(want.shape, np.nan, dtype=np.float32)
        kernel(x, got)
        assert_close(got, want)


def test_adaptive_bins_follow_pytorch_rule():
    # 10 -> 4: [floor(10i/4), ceil(10(i+1)/4)) = [0,3), [2,5), [5,8), [7,10): overlapping where 10/4 is fractional.
    assert R.adaptive_bins(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    x = np.arange(10, dtype=np.float32).reshape(1, 1, 10)
    got = np.empty((1, 1, 4), np.float32)
    K.adaptive_avg_pool(x, got)
    np.testing.assert_allclose(got.ravel(), [1.0, 3.0, 6.0, 8.0])


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 16), st.integers(1, 16), st.data())
def test_fractional_max_pool_matches_reference(channels, height, width, data):
    from stream_cnn.model.filters import fractional_edges
    out_h, out_w = data.draw(st.integers(1, height)), data.draw(st.integers(1, width))
    seed = data.draw(st.integers(0, 1000))
    rows, cols = fractional_edges(height, out_h, seed), fractional_edges(width, out_w, seed + 1)
    x = uniform(np.random.default_rng(seed), (channels, height, width))
    want = R.fractional_max_pool(x, rows, cols)
    got = np.full(want.shape, np.nan, dtype=np.float32)
    K.fractional_max_pool(x, got, rows, cols)
    assert_close(got, want)


@SETTINGS
@given(st.integers(1, 400), st.integers(1, 24), st.integers(0, 6), ALPHAS, st.integers(0, 2 ** 16))
def test_dense_matches_reference(n_in, n_out, act, alpha, seed):
    rng = np.random.default_rng(seed)
    x = uniform(rng, n_in)
    w = uniform(rng, (n_out, n_in), 1.0 / np.sqrt(n_in))
    b = uniform(rng, n_out, 0.5)
    got = np.full(n_out, np.nan, dtype=np.float32)
    K.dense(x, w, b, got, act, alpha)
    assert_close(got, R.dense(x, w, b, act, alpha))


SHAPES = st.sampled_from([(1,), (17,), (3, 5), (2, 3, 4), (1, 1, 1), (4, 1, 9)])


@SETTINGS
@given(SHAPES, st.integers(0, 6), ALPHAS, st.integers(0, 2 ** 16))
def test_activation_matches_reference(shape, act, alpha, seed):
    # Values to +-8 reach relu6's clip and the saturated ends of sigmoid and tanh.
    x = uniform(np.random.default_rng(seed), shape, 8.0)
    got = np.full(shape, np.nan, dtype=np.float32)
    K.activation(x, got, act, alpha)
    assert_close(got, R.activation(x, act, alpha))
    K.activation(x, x, act, alpha)  # in place is allowed
    assert_close(x, got)


def test_activation_extremes_stay_finite():
    x = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=np.float32)
    for act in range(7):
        got = np.empty_like(x)
        K.activation(x, got, act, 0.01)
        assert_close(got, R.activation(x, act, 0.01))


@SETTINGS
@given(st.integers(1, 4), st.sampled_from([(), (3,), (2, 5)]), st.integers(0, 2 ** 16))
def test_glu_matches_reference(half, rest, seed):
    x = uniform(np.random.default_rng(seed), (2 * half,) + rest, 6.0)
    got = np.full((half,) + rest, np.nan, dtype=np.float32)
    K.glu(x, got)
    assert_close(got, R.glu(x))


@SETTINGS
@given(st.integers(1, 50), st.floats(0.1, 1000.0), st.integers(0, 2 ** 16))
def test_softmax_matches_reference_and_is_stable(n, spread, seed):
    # Spreads up to 1000 would overflow exp without the max subtraction.
    x = uniform(np.random.default_rng(seed), n, spread)
    got = np.full(n, np.nan, dtype=np.float32)
    K.softmax(x, got)
    assert np.all(np.isfinite(got))
    assert_close(got, R.softmax(x))
    assert abs(float(got.sum(dtype=np.float64)) - 1.0) < 1e-5


@SETTINGS
@given(SHAPES, st.integers(0, 6), ALPHAS, st.integers(0, 2 ** 16))
def test_add_matches_reference(shape, act, alpha, seed):
    rng = np.random.default_rng(seed)
    a, b = uniform(rng, shape, 4.0), uniform(rng, shape, 4.0)
    want = R.add(a, b, act, alpha)
    got = np.full(shape, np.nan, dtype=np.float32)
    K.add(a, b, got, act, alpha)
    assert_close(got, want)
    K.add(a, b, a, act, alpha)  # residual written over its input
    assert_close(a, want)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(1, 5), st.integers(1, 5))
def test_concat_matches_reference(channel_counts, height, width):
    rng = np.random.default_rng(sum(channel_counts) * 7 + height)
    maps = [uniform(rng, (c, height, width)) for c in channel_counts]
    got = np.full((sum(channel_counts), height, width), np.nan, dtype=np.float32)
    offset = 0
    for m in maps:
        K.concat_into(m, got, offset)
        offset += m.shape[0]
    np.testing.assert_array_equal(got, R.concat(maps))


def test_batchnorm_reference_is_the_affine_fold():
    # The model folds BN into the previous layer as w * s, b * s + (beta - mean * s), s = gamma / sqrt(var + eps).
    rng = np.random.default_rng(5)
    x, w, b = conv_case(rng, 3, 4, 6, 6, 3, 3, 1)
    gamma, beta, mean = uniform(rng, 4), uniform(rng, 4), uniform(rng, 4)
    var = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    s = gamma / np.sqrt(var + 1e-5)
    folded = run_conv(x, (w * s[:, None, None, None]).astype(np.float32), (b * s + beta - mean * s).astype(np.float32),
                      (1, 1), (1, 1, 1, 1), (1, 1), 1, 0, 0.0)
    assert_close(folded, R.batchnorm(R.conv2d(x, w, b, 1, 1), gamma, beta, mean, var))


def test_activation_codes_match_the_contract():
    assert K.ACTIVATIONS == {"identity": 0, "relu": 1, "leaky_relu": 2, "relu6": 3, "sigmoid": 4, "tanh": 5,
                             "gelu": 6}


# Runs in a fresh interpreter because NUMBA_NRT_STATS must be set before numba is imported. Numba's runtime counts
# every allocation it makes; the only ones expected are the per-argument wrappers made when Python hands a NumPy
# array to compiled code (one per array argument per call). Anything more would be an allocation inside a kernel.
ALLOCATION_PROBE = r"""
import json
import numpy as np
import stream_cnn
from numba.core.runtime import rtsys
from stream_cnn.model import kernels as K
from stream_cnn.model.filters import fractional_edges

rng = np.random.default_rng(0)
f32 = lambda *shape: rng.uniform(-1, 1, shape).astype(np.float32)
x, xp, out, small = f32(4, 8, 8), f32(4, 10, 10), f32(8, 8, 8), f32(8, 4, 4)
pool_out, edges, fmp_out = f32(4, 4, 4), fractional_edges(8, 5, 0), f32(4, 5, 5)
w3, w1, wd, b = f32(8, 4, 3, 3), f32(8, 4, 1, 1), f32(4, 1, 3, 3), f32(8)
v, wv, ov, gate_out = f32(256), f32(8, 256), f32(8), f32(2, 8, 8)
calls = {
    "pad_into": (K.pad_into, (x, xp, 1, 1)),
    "conv2d 3x3": (K.conv2d, (xp, w3, b, out, 1, 1, 1, 1, 1, 1, 0.0)),
    "conv2d pointwise": (K.conv2d, (x, w1, b, out, 1, 1, 1, 1, 1, 2, 0.1)),
    "conv2d depthwise": (K.conv2d, (xp, wd, b[:4], f32(4, 8, 8), 1, 1, 1, 1, 4, 3, 0.0)),
    "conv2d stride 2": (K.conv2d, (xp, w3, b, small, 2, 2, 1, 1, 1, 4, 0.0)),
    "conv2d dilated": (K.conv2d, (xp, w3, b, small, 2, 2, 2, 2, 1, 6, 0.0)),
    "conv2d_parallel": (K.conv2d_parallel, (xp, w3, b, out, 1, 1, 1, 1, 1, 5, 0.0)),
    "max_pool": (K.max_pool, (x, pool_out, 2, 2, 2, 2)),
    "min_pool": (K.min_pool, (x, pool_out, 3, 3, 2, 2)),
    "avg_pool": (K.avg_pool, (x, pool_out, 3, 3, 2, 2, 1, 1)),
    "global_avg_pool": (K.global_avg_pool, (x, b[:4])),
    "global_max_pool": (K.global_max_pool, (x, b[:4])),
    "adaptive_avg_pool": (K.adaptive_avg_pool, (x, pool_out)),
    "adaptive_max_pool": (K.adaptive_max_pool, (x, pool_out)),
    "fractional_max_pool": (K.fractional_max_pool, (x, fmp_out, edges, edges)),
    "dense": (K.dense, (v, wv, b, ov, 2, 0.1)),
    "activation": (K.activation, (x, x, 6, 0.0)),
    "glu": (K.glu, (x, gate_out)),
    "softmax": (K.softmax, (b, ov)),
    "add": (K.add, (x, x, x, 1, 0.0)),
    "concat_into": (K.concat_into, (x, out, 2)),
    "conv3x3_flat": (K.conv3x3_flat, (xp, w3, b, out, f32(K.flat_scratch_size(8, 10)), 1, 1, 0.0)),
    "conv3x3_flat_into": (K.conv3x3_flat_into, (xp, w3, b, f32(8, 10, 10), f32(K.flat_scratch_size(8, 10)), 1, 1, 1,
                                                0.0)),
    "conv3x3_flat pooled": (K.conv3x3_flat, (xp, w3, b, pool_out.repeat(2, axis=0), f32(K.flat_scratch_size(8, 10)),
                                             2, 3, 0.0)),
    "max_pool_separable": (K.max_pool_separable, (xp, pool_out, f32(10), 3, 3, 2, 2)),
    "max_pool_flat": (K.max_pool_flat, (xp, pool_out, f32(K.flat_pool_scratch_size(xp.shape)), 3, 3, 2, 2)),
    "subsample_into": (K.subsample_into, (xp, pool_out, 2, 2, 1, 1)),
    "max_pool_flat_add": (K.max_pool_flat_add, (xp, pool_out, xp, f32(K.flat_pool_scratch_size(xp.shape)), 3, 3, 2,
                                                2, 1, 1)),
    "max_pool3s2_add": (K.max_pool3s2_add, (x, pool_out, xp, 0, 1, 1, 1)),
    "pointwise_small": (K.pointwise_small, (x, w1, b, out, f32(4 * 64), 3, 0.0)),
    "pointwise_tiled": (K.pointwise_tiled, (x, K.pointwise_tiled_weights(w1), b, out, 2, 0.1)),
    "pointwise_rows16_into": (K.pointwise_rows16_into, (f32(4, 2, 32), K.pointwise_tiled16_weights(np.tile(w1, (4, 1, 1, 1))),
                                                        np.tile(b, 4), f32(32, 4, 34), 1, 1, 1, 0.0)),
    "pointwise_strided16": (K.pointwise_strided16, (xp, K.pointwise_tiled16_weights(np.tile(w1, (2, 1, 1, 1))),
                                                    np.tile(b, 2), f32(16, 4, 4), 1, 1, 3, 0.0)),
    "pointwise_tiled16": (K.pointwise_tiled16, (x, K.pointwise_tiled16_weights(np.tile(w1, (2, 1, 1, 1))),
                                                np.tile(b, 2), f32(16, 8, 8), 2, 0.1)),
    "pointwise_rows_into": (K.pointwise_rows_into, (f32(4, 2, 32), K.pointwise_tiled_weights(w1), b, f32(8, 4, 34), 1, 1,
                                                    1, 0.0)),
    "conv3x3_tiled": (K.conv3x3_tiled, (f32(4, 4, 34), K.conv3x3_tiled_weights(w3), b, f32(8, 4, 34), 1, 1, 3, 0.0)),
    "conv3x3_s2_tiled16": (K.conv3x3_s2_tiled16, (f32(3, 33, 33), K.conv3x3_s2_tiled16_weights(np.tile(w3[:, :3], (2, 1, 1, 1))),
                                                  np.tile(b, 2), f32(16, 16, 16), 3, 0.0)),
    "depthwise3x3_s2_tiled16": (K.depthwise3x3_s2_tiled16, (f32(4, 41, 41), wd, b[:4], f32(4, 20, 20), 3, 0.0)),
    "depthwise3x3_same": (K.depthwise3x3_same, (x, wd, b[:4], f32(4, 8, 8), f32(8), 1, 0.0)),
    "depthwise3x3_same_flat": (K.depthwise3x3_same_flat, (x, wd, b[:4], f32(4, 8, 8), 3, 0.0)),
    "depthwise3x3_flat": (K.depthwise3x3_flat, (xp, wd, b[:4], f32(4, 8, 8), f32(K.depthwise_flat_scratch_size(8, 10)),
                                                2, 0.1)),
    "depthwise3x3_rows": (K.depthwise3x3_rows, (f32(4, 4, 18), wd, b[:4], f32(4, 2, 16), 1, 0.0)),
    "conv_channels_last": (K.conv_channels_last, (xp, K.channels_last_weights(w3), b, out, f32(xp.size), 1, 0.0)),
    "conv_patches": (K.conv_patches, (xp, w3, b, pool_out.repeat(2, axis=0), f32(4 * 64 * 36 + 8 * 64), 2, 1, 0.0)),
    "winograd_conv": (K.winograd_conv, (xp, K.winograd_weights(w3), b, out, f32(K.winograd_scratch_size(4, 8, 8, 1)),
                                        8, 8, 0, 0, 1, 1, 0.0)),
    "winograd_conv_pooled": (K.winograd_conv_pooled, (xp, K.winograd_weights(w3), b, pool_out.repeat(2, axis=0),
                                                      f32(K.winograd_scratch_size(4, 4, 4, 2)), 4, 4, 0, 0, 1, 0.0)),
    "winograd_conv_pooled 1 input": (K.winograd_conv_pooled, (xp[:1].copy(), K.winograd_weights(w3[:, :1]), b,
                                                              pool_out.repeat(2, axis=0),
                                                              f32(K.winograd_scratch_size(1, 4, 4, 2)), 4, 4, 0, 0,
                                                              1, 0.0)),
}
extra = {}
for name, (kernel, args) in calls.items():
    kernel(*args)  # compile / load from cache first
    arrays = sum(isinstance(a, np.ndarray) for a in args)
    before = rtsys.get_allocation_stats().alloc
    kernel(*args)
    extra[name] = rtsys.get_allocation_stats().alloc - before - arrays
print(json.dumps(extra))
"""


def test_kernels_allocate_nothing():
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_NRT_STATS="1")
    result = subprocess.run([sys.executable, "-c", ALLOCATION_PROBE], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    extra = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(extra) == 47   # every kernel the probe calls reported back
    assert {name: n for name, n in extra.items() if n != 0} == {}


def test_vectorisable_exp_and_erf_are_accurate():
    """exp32 / erf32 replace libm inside the kernels; they must be as good as float32 needs."""
    import math

    from stream_cnn.model.kernels.activations import erf32, exp32

    for v in np.linspace(-87.0, 88.0, 701, dtype=np.float32):
        exact = math.exp(float(v))
        assert abs(float(exp32(v)) - exact) <= 1e-6 * exact
    for v in np.linspace(-6.0, 6.0, 481, dtype=np.float32):
        assert abs(float(erf32(v)) - math.erf(float(v))) < 3e-7
    assert float(exp32(np.float32(-np.inf))) < 1e-37 and np.isfinite(exp32(np.float32(np.inf)))


# --- kernels the Model plans instead of conv2d / max_pool on some layers ---------------------------------------

def guarded(shape, rng, top=1, bottom=1, left=1, right=1):
    """x and its zero-padded copy, the copy followed in memory by NaN: conv3x3_flat reads whole flat planes, so
    any value it took from beyond the buffer into a real output would show as NaN."""
    x = uniform(rng, shape)
    c, h, w = shape
    size = c * (h + top + bottom) * (w + left + right)
    store = np.full(size + 64, np.nan, np.float32)
    xp = store[:size].reshape(c, h + top + bottom, w + left + right)
    xp[...] = 0.0
    K.pad_into(x, xp, top, left)
    return x, xp


def same_conv3x3_case(rng, c_in, c_out, height, width, pool, act, alpha):
    """Weights, bias and the reference result of a 3x3 'same' conv (+ 2x2 max pool when pool == 2) of a map of
    the given size; skips the test when the map has no 2x2 pooling window."""
    if pool == 2 and (height < 2 or width < 2):
        pytest.skip("no 2x2 pooling window in a map this small")
    w = uniform(rng, (c_out, c_in, 3, 3), 1.0 / np.sqrt(c_in * 9))
    b = uniform(rng, (c_out,), 0.5)
    return w, b, lambda x: (R.max_pool(R.conv2d(x, w, b, 1, 1, 1, 1, act, alpha), 2) if pool == 2
                            else R.conv2d(x, w, b, 1, 1, 1, 1, act, alpha))


@pytest.mark.parametrize("c_in, c_out, height, width", [
    (1, 8, 28, 28), (8, 16, 14, 14), (16, 32, 7, 7),   # the digits layers
    (3, 5, 1, 1), (2, 7, 5, 9), (5, 6, 2, 3), (4, 4, 11, 6), (1, 9, 3, 4),   # 5, 6, 7, 9: shifted last block
    (2, 6, 25, 100), (1, 8, 62, 62),   # unpooled: several bands of output rows (FLAT_BAND), a short last band
])
@pytest.mark.parametrize("pool", [1, 2])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.1), (3, 0.0)])
def test_conv3x3_flat_matches_reference_conv_then_pool(c_in, c_out, height, width, pool, act, alpha):
    rng = np.random.default_rng(c_in * 1000 + c_out * 10 + height)
    x, xp = guarded((c_in, height, width), rng)
    w, b, reference = same_conv3x3_case(rng, c_in, c_out, height, width, pool, act, alpha)
    expected = reference(x)
    out = np.full(expected.shape, np.nan, np.float32)
    scratch = np.full(K.flat_scratch_size(height, width + 2), np.nan, np.float32)   # contents must not matter
    K.conv3x3_flat(xp, w, b, out, scratch, pool, act, alpha)
    assert_close(out, expected)


@pytest.mark.parametrize("c_in, c_out, height, width", [(8, 8, 60, 60), (2, 6, 25, 100), (3, 5, 1, 1)])
def test_conv3x3_flat_into_writes_the_window_only(c_in, c_out, height, width):
    """conv3x3_flat_into at an offset inside a NaN-bordered buffer: the window holds conv3x3_flat's values bit
    for bit (the border would show NaN if read), nothing outside it is written."""
    rng = np.random.default_rng(height)
    x, xp = guarded((c_in, height, width), rng)
    w = uniform(rng, (c_out, c_in, 3, 3), 1.0 / np.sqrt(c_in * 9))
    b = uniform(rng, (c_out,), 0.5)
    scratch = np.full(K.flat_scratch_size(height, width + 2), np.nan, np.float32)
    plain = np.full((c_out, height, width), np.nan, np.float32)
    K.conv3x3_flat(xp, w, b, plain, scratch, 1, 1, 0.0)
    big = np.full((c_out, height + 3, width + 2), -7.0, np.float32)
    K.conv3x3_flat_into(xp, w, b, big, scratch, 2, 1, 1, 0.0)
    np.testing.assert_array_equal(big[:, 2:2 + height, 1:1 + width], plain)
    border = np.ones(big.shape, bool)
    border[:, 2:2 + height, 1:1 + width] = False
    assert np.all(big[border] == -7.0)
    assert_close(plain, R.conv2d(x, w, b, 1, (1, 1, 1, 1), act=1))


def test_conv3x3_flat_on_an_unpadded_input_is_a_valid_conv():
    rng = np.random.default_rng(5)
    x, xp = guarded((3, 9, 7), rng, 0, 0, 0, 0)
    w = uniform(rng, (6, 3, 3, 3), 0.2)
    b = uniform(rng, (6,))
    out = np.full((6, 7, 5), np.nan, np.float32)
    K.conv3x3_flat(xp, w, b, out, np.zeros(K.flat_scratch_size(7, 7), np.float32), 1, 1, 0.0)
    assert_close(out, R.conv2d(x, w, b, act=1))


@pytest.mark.parametrize("kernel, stride, pads", [
    (3, 2, (0, 1, 0, 1)), (3, 2, (1, 1, 1, 1)), (2, 2, (0, 0, 0, 0)), (3, 1, (1, 1, 1, 1)), (4, 3, (1, 2, 0, 3)),
    ((2, 3), (1, 2), (0, 1, 1, 1)),
])
@pytest.mark.parametrize("size", [(9, 9), (4, 11), (17, 6)])
def test_max_pool_separable_matches_reference(kernel, stride, pads, size):
    rng = np.random.default_rng(size[0] * 31 + size[1])
    x = uniform(rng, (3,) + size)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    top, bottom, left, right = pads
    out_h = R.output_size(size[0], kh, sh, top, bottom)
    out_w = R.output_size(size[1], kw, sw, left, right)
    out = np.full((3, out_h, out_w), np.nan, np.float32)
    xp = padded(x, *pads, fill=-np.inf)
    K.max_pool_separable(xp, out, np.full(xp.shape[2], np.nan, np.float32), kh, kw, sh, sw)
    np.testing.assert_array_equal(out, R.max_pool(x, (kh, kw), (sh, sw), pads))


@pytest.mark.parametrize("kernel, stride, pads", [
    (3, 2, (0, 1, 0, 1)), (3, 2, (1, 1, 1, 1)), (2, 2, (0, 0, 0, 0)), (3, 1, (1, 1, 1, 1)), (4, 3, (1, 2, 0, 3)),
    ((2, 3), (1, 2), (0, 1, 1, 1)),
])
@pytest.mark.parametrize("shape", [(3, 9, 9), (2, 4, 11), (5, 17, 6), (40, 9, 9), (2, 70, 40)])
def test_max_pool_flat_matches_reference(kernel, stride, pads, shape):
    # (40, 9, 9) and (2, 70, 40) run several channels per chunk and one channel per chunk with a ragged last chunk
    rng = np.random.default_rng(shape[1] * 31 + shape[2])
    x = uniform(rng, shape)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    top, bottom, left, right = pads
    out_h = R.output_size(shape[1], kh, sh, top, bottom)
    out_w = R.output_size(shape[2], kw, sw, left, right)
    out = np.full((shape[0], out_h, out_w), np.nan, np.float32)
    xp = padded(x, *pads, fill=-np.inf)
    scratch = np.full(K.flat_pool_scratch_size(xp.shape), np.nan, np.float32)
    K.max_pool_flat(xp, out, scratch, kh, kw, sh, sw)
    np.testing.assert_array_equal(out, R.max_pool(x, (kh, kw), (sh, sw), pads))


@pytest.mark.parametrize("kernel, stride, pads", [
    (3, 2, (0, 1, 0, 1)), (3, 2, (1, 1, 1, 1)), (2, 2, (0, 0, 0, 0)), (3, 1, (1, 1, 1, 1)), (4, 3, (1, 2, 0, 3)),
])
@pytest.mark.parametrize("shape", [(3, 9, 9), (2, 4, 11), (40, 9, 9), (2, 70, 40)])
@pytest.mark.parametrize("corner", [(0, 0, 0, 0), (1, 1, 1, 1), (0, 2, 3, 1)])
def test_max_pool_flat_add_is_pool_plus_residual_written_at_the_corner(kernel, stride, pads, shape, corner):
    """max_pool_flat_add(xp, res, out, ...) = max pool + res, written into the window of out at (top, left) of a
    buffer with a (top, bottom, left, right) border; the border (the next layer's padding) is left as it was."""
    rng = np.random.default_rng(shape[1] * 31 + shape[2] + sum(corner))
    x = uniform(rng, shape)
    top, bottom, left, right = pads
    out_h = R.output_size(shape[1], kernel, stride, top, bottom)
    out_w = R.output_size(shape[2], kernel, stride, left, right)
    res = uniform(rng, (shape[0], out_h, out_w))
    xp = padded(x, *pads, fill=-np.inf)
    scratch = np.full(K.flat_pool_scratch_size(xp.shape), np.nan, np.float32)
    o_top, o_bottom, o_left, o_right = corner
    out = np.full((shape[0], out_h + o_top + o_bottom, out_w + o_left + o_right), 7.0, np.float32)
    K.max_pool_flat_add(xp, res, out, scratch, kernel, kernel, stride, stride, o_top, o_left)
    expected = R.add(R.max_pool(x, kernel, stride, pads), res)
    assert_close(out[:, o_top:o_top + out_h, o_left:o_left + out_w], expected)
    border = np.ones(out.shape, bool)
    border[:, o_top:o_top + out_h, o_left:o_left + out_w] = False
    assert np.all(out[border] == 7.0)


@pytest.mark.parametrize("stride", [(2, 2), (3, 1), (1, 2)])
@pytest.mark.parametrize("corner", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 1, 3)])
def test_subsample_into_takes_every_strided_pixel(stride, corner):
    """The map may sit inside a padded buffer: subsample_into reads from its (top, left) corner on."""
    x = uniform(np.random.default_rng(3), (4, 9, 10))
    expected = x[:, ::stride[0], ::stride[1]]
    top, bottom, left, right = corner
    xp = padded(x, top, bottom, left, right, fill=np.nan)
    out = np.full(expected.shape, np.nan, np.float32)
    K.subsample_into(xp, out, stride[0], stride[1], top, left)
    np.testing.assert_array_equal(out, expected)


@SETTINGS
@given(channels=st.integers(1, 6), height=st.integers(1, 20), width=st.integers(1, 70), top=st.integers(0, 2),
       left=st.integers(0, 2), seed=st.integers(0, 1000))
def test_subsample_into_stride_2_rows_of_any_length(channels, height, width, top, left, seed):
    """Stride 2 (copied 16 values at a time, the last chunk of a row masked): rows of 1 to 35 outputs, from any
    corner; the buffer sits between +inf cells in memory and out starts as NaN, so a read past it or a missed or
    write outside out shows (out lies between -5 cells)."""
    rng = np.random.default_rng(seed)
    xp = fenced(rng, (channels, top + height, left + width))
    out_h, out_w = -(-height // 2), -(-width // 2)
    out = fenced(rng, (channels, out_h, out_w), fence=-5.0)
    out[...] = np.nan
    K.subsample_into(xp, out, 2, 2, top, left)
    np.testing.assert_array_equal(out, xp[:, top::2, left::2])
    whole = out.base
    assert np.all(whole[:32] == -5.0) and np.all(whole[32 + out.size:] == -5.0)


@pytest.mark.parametrize("c_in, c_out, height, width", [
    (64, 128, 4, 4), (128, 16, 8, 8), (3, 4, 2, 2), (7, 6, 1, 5), (16, 9, 3, 3), (5, 5, 7, 9),
])
@pytest.mark.parametrize("act", [0, 1, 3, 5])
def test_pointwise_small_matches_reference(c_in, c_out, height, width, act):
    rng = np.random.default_rng(c_in * 7 + c_out + height)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 1, 1, 1)
    out = np.full((c_out, height, width), np.nan, np.float32)
    scratch = np.full(c_in * height * width, np.nan, np.float32)
    K.pointwise_small(x, w, b, out, scratch, act, 0.0)
    assert_close(out, R.conv2d(x, w, b, act=act))


@pytest.mark.parametrize("c_in, c_out, height, width", [
    (128, 128, 8, 8),   # mini-Xception's last block: one tile of pixels
    (8, 16, 60, 60),    # 3600 pixels: the last tile shifted back (3600 = 56 * 64 + 16)
    (64, 64, 15, 15),   # 225 pixels
    (3, 9, 5, 13),      # 65 pixels, C_out not a multiple of 4: both last blocks shifted back
    (1, 4, 1, 64),      # one input channel, one channel block
])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.2), (3, 0.0)])
def test_pointwise_tiled_matches_reference(c_in, c_out, height, width, act, alpha):
    rng = np.random.default_rng(c_in * 7 + c_out + height)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 1, 1, 1)
    x *= 8   # values past relu6's cap
    out = np.full((c_out, height, width), np.nan, np.float32)
    K.pointwise_tiled(x, K.pointwise_tiled_weights(w), b, out, act, alpha)
    assert_close(out, R.conv2d(x, w, b, act=act, alpha=alpha))


@SETTINGS
@given(c_in=st.integers(1, 70), c_out=st.integers(4, 21), height=st.integers(1, 20), width=st.integers(1, 20),
       act=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2 ** 16))
def test_pointwise_tiled_property(c_in, c_out, height, width, act, seed):
    assume(height * width >= 64)
    rng = np.random.default_rng(seed)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 1, 1, 1)
    out = np.full((c_out, height, width), np.nan, np.float32)
    K.pointwise_tiled(x, K.pointwise_tiled_weights(w), b, out, act, 0.1)
    assert_close(out, R.conv2d(x, w, b, act=act, alpha=0.1))


@pytest.mark.parametrize("c_in, c_out, height, width, top, left", [
    (8, 8, 60, 60, 1, 1),    # mini-Xception's conv2, written into its reader's padded buffer
    (1, 8, 62, 62, 0, 0),    # conv1: one input channel; 62 columns = a tile and one shifted back by 2
    (3, 9, 5, 32, 2, 3),     # odd row count and C_out: the last row pair and channel block shifted back
    (13, 4, 2, 47, 0, 1),    # two rows, one channel block
])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.2), (3, 0.0)])
def test_conv3x3_tiled_matches_reference(c_in, c_out, height, width, top, left, act, alpha):
    rng = np.random.default_rng(c_in * 7 + c_out + height)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 3, 3, 1)
    x *= 4   # values past relu6's cap
    target = np.full((c_out, height + 2 * top + 1, width + 2 * left + 1), np.nan, np.float32)
    K.conv3x3_tiled(padded(x, 1, 1, 1, 1), K.conv3x3_tiled_weights(w), b, target, top, left, act, alpha)
    assert_close(target[:, top:top + height, left:left + width], R.conv2d(x, w, b, 1, 1, act=act, alpha=alpha))
    outside = np.ones(target.shape, bool)
    outside[:, top:top + height, left:left + width] = False
    assert np.isnan(target[outside]).all()   # nothing outside the output's place is written


@SETTINGS
@given(c_in=st.integers(1, 20), c_out=st.integers(4, 13), height=st.integers(2, 9), width=st.integers(32, 70),
       act=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2 ** 16))
def test_conv3x3_tiled_property(c_in, c_out, height, width, act, seed):
    rng = np.random.default_rng(seed)
    x, w, b = conv_case(rng, c_in, c_out, height + 2, width + 2, 3, 3, 1)
    out = np.full((c_out, height, width), np.nan, np.float32)
    K.conv3x3_tiled(x, K.conv3x3_tiled_weights(w), b, out, 0, 0, act, 0.1)
    assert_close(out, R.conv2d(x, w, b, act=act, alpha=0.1))


@pytest.mark.parametrize("c, height, width, pads", [
    (32, 48, 48, (0, 1, 0, 1)),   # MobileNet's downsampling depthwise convs ("same" at stride 2)
    (64, 24, 24, (0, 1, 0, 1)),
    (96, 12, 12, (0, 1, 0, 1)),
    (3, 40, 37, (1, 1, 1, 1)),    # 19 outputs a row: a whole chunk of 16 and a masked one of 3
    (2, 9, 70, (1, 0, 2, 0)),     # padded input taller / wider than the conv reads
])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.2), (3, 0.0)])
def test_depthwise3x3_s2_tiled16_matches_reference(c, height, width, pads, act, alpha):
    rng = np.random.default_rng(c * 3 + height + width)
    x, w, b = conv_case(rng, c, c, height, width, 3, 3, c)
    x *= 8   # values past relu6's cap
    expected = R.conv2d(x, w, b, 2, pads, groups=c, act=act, alpha=alpha)
    out = np.full(expected.shape, np.nan, np.float32)
    K.depthwise3x3_s2_tiled16(padded(x, *pads), w, b, out, act, alpha)
    assert_close(out, expected)


@SETTINGS
@given(c=st.integers(1, 9), height=st.integers(3, 40), width=st.integers(3, 75),
       act=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2 ** 16))
def test_depthwise3x3_s2_tiled16_property(c, height, width, act, seed):
    rng = np.random.default_rng(seed)
    x, w, b = conv_case(rng, c, c, height, width, 3, 3, c)
    expected = R.conv2d(x, w, b, 2, groups=c, act=act, alpha=0.1)
    out = np.full(expected.shape, np.nan, np.float32)
    K.depthwise3x3_s2_tiled16(x, w, b, out, act, 0.1)
    assert_close(out, expected)


@pytest.mark.parametrize("c_in, c_out, height, width, pads", [
    (3, 16, 96, 96, (0, 1, 0, 1)),   # the MobileNet stem ("same" at stride 2 pads bottom / right only)
    (3, 21, 33, 40, (1, 1, 1, 1)),   # C_out, columns not multiples of 16: the last blocks shifted back
    (1, 16, 31, 31, (1, 1, 1, 1)),   # one input channel, 16 output columns: one tile
    (5, 32, 9, 35, (1, 0, 1, 0)),    # the padded input wider / taller than the conv reads
])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.2), (3, 0.0)])
def test_conv3x3_s2_tiled16_matches_reference(c_in, c_out, height, width, pads, act, alpha):
    rng = np.random.default_rng(c_in * 7 + c_out + height)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 3, 3, 1)
    x *= 4   # values past relu6's cap
    expected = R.conv2d(x, w, b, 2, pads, act=act, alpha=alpha)
    out = np.full(expected.shape, np.nan, np.float32)
    K.conv3x3_s2_tiled16(padded(x, *pads), K.conv3x3_s2_tiled16_weights(w), b, out, act, alpha)
    assert_close(out, expected)


@SETTINGS
@given(c_in=st.integers(1, 8), c_out=st.integers(16, 40), height=st.integers(3, 20), width=st.integers(33, 70),
       act=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2 ** 16))
def test_conv3x3_s2_tiled16_property(c_in, c_out, height, width, act, seed):
    rng = np.random.default_rng(seed)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 3, 3, 1)
    expected = R.conv2d(x, w, b, 2, act=act, alpha=0.1)   # unpadded: odd widths read to the edge, even ones not
    out = np.full(expected.shape, np.nan, np.float32)
    K.conv3x3_s2_tiled16(x, K.conv3x3_s2_tiled16_weights(w), b, out, act, 0.1)
    assert_close(out, expected)


@pytest.mark.parametrize("c_in, c_out, height, width, top, left", [
    (8, 16, 60, 60, 1, 1),   # mini-Xception's block 1, written into the depthwise conv's padded buffer
    (3, 9, 5, 33, 0, 2),     # odd row count, C_out not a multiple of 4, 33 columns: last blocks shifted back
    (1, 4, 2, 32, 2, 0),     # one input channel, one tile
])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.2), (3, 0.0)])
def test_pointwise_rows_into_matches_reference(c_in, c_out, height, width, top, left, act, alpha):
    rng = np.random.default_rng(c_in * 5 + c_out + width)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 1, 1, 1)
    x *= 8   # values past relu6's cap
    target = np.full((c_out, height + 2 * top + 1, width + 2 * left + 1), np.nan, np.float32)
    K.pointwise_rows_into(x, K.pointwise_tiled_weights(w), b, target, top, left, act, alpha)
    assert_close(target[:, top:top + height, left:left + width], R.conv2d(x, w, b, act=act, alpha=alpha))
    outside = np.ones(target.shape, bool)
    outside[:, top:top + height, left:left + width] = False
    assert np.isnan(target[outside]).all()   # nothing outside the output's place is written


@SETTINGS
@given(c_in=st.integers(1, 40), c_out=st.integers(4, 13), height=st.integers(2, 7), width=st.integers(32, 70),
       act=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2 ** 16))
def test_pointwise_rows_into_property(c_in, c_out, height, width, act, seed):
    rng = np.random.default_rng(seed)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 1, 1, 1)
    out = np.full((c_out, height, width), np.nan, np.float32)
    K.pointwise_rows_into(x, K.pointwise_tiled_weights(w), b, out, 0, 0, act, 0.1)
    assert_close(out, R.conv2d(x, w, b, act=act, alpha=0.1))


@SETTINGS
@given(c_in=st.integers(1, 40), c_out=st.integers(16, 35), height=st.integers(1, 7), width=st.integers(16, 70),
       top=st.integers(0, 2), left=st.integers(0, 2), act=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2 ** 16))
def test_pointwise_rows16_into_writes_the_conv_at_the_corner_only(c_in, c_out, height, width, top, left, act, seed):
    """pointwise_rows16_into: the 1x1 conv written at (top, left) of a bigger NaN buffer, nothing else written;
    rows of 16 to 70 columns (the last tile of each row shifted back), C_out not a multiple of 16."""
    rng = np.random.default_rng(seed)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 1, 1, 1)
    x *= 8   # values past relu6's cap
    target = np.full((c_out, height + 2 * top + 1, width + 2 * left + 1), np.nan, np.float32)
    K.pointwise_rows16_into(x, K.pointwise_tiled16_weights(w), b, target, top, left, act, 0.1)
    assert_close(target[:, top:top + height, left:left + width], R.conv2d(x, w, b, act=act, alpha=0.1))
    outside = np.ones(target.shape, bool)
    outside[:, top:top + height, left:left + width] = False
    assert np.isnan(target[outside]).all()


@pytest.mark.parametrize("c_in, c_out, height, width", [
    (64, 128, 4, 4),    # mini-Xception's last shortcut: one tile of pixels
    (16, 16, 60, 60),   # 3600 pixels
    (64, 64, 15, 15),   # 225 pixels: the last tile shifted back
    (3, 19, 5, 7),      # 35 pixels, C_out not a multiple of 16: both last blocks shifted back
    (1, 16, 1, 16),     # one input channel, one channel block, one tile
])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.2), (3, 0.0)])
def test_pointwise_tiled16_matches_reference(c_in, c_out, height, width, act, alpha):
    rng = np.random.default_rng(c_in * 7 + c_out + height)
    x, w, b = conv_case(rng, c_in, c_out, height, width, 1, 1, 1)
    x *= 8   # values past relu6's cap
    out = np.full((c_out, height, width), np.nan, np.float32)
    K.pointwise_tiled16(x, K.pointwise_tiled16_weights(w), b, out, act, alpha)
    assert_close(out, R.conv2d(x, w, b, act=act, alpha=alpha))


@SETTINGS
@given(c_in=st.integers(1, 70), c_out=st.integers(16, 40), height=st.integers(1, 20), width=st.integers(1, 20),
       act=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2 ** 16))
def test_pointwise_tiled16_property(c_in, c_out, height, width, act, seed):
    """Any map of at least 16 pixels; x and out lie between +inf cells in memory, so a read or write past them
    shows."""
    assume(height * width >= 16)
    rng = np.random.default_rng(seed)
    _, w, b = conv_case(rng, c_in, c_out, height, width, 1, 1, 1)
    x = fenced(rng, (c_in, height, width))
    out = fenced(rng, (c_out, height, width))
    out[...] = np.nan
    K.pointwise_tiled16(x, K.pointwise_tiled16_weights(w), b, out, act, 0.1)
    assert_close(out, R.conv2d(x, w, b, act=act, alpha=0.1))
    assert np.all(out.base[:32] == np.inf) and np.all(out.base[32 + out.size:] == np.inf)


@SETTINGS
@given(c_in=st.integers(1, 40), c_out=st.integers(16, 35), out_h=st.integers(1, 6), out_w=st.integers(1, 40),
       top=st.integers(0, 2), left=st.integers(0, 2), extra=st.integers(0, 2), act=st.sampled_from([0, 1, 2, 3]),
       seed=st.integers(0, 2 ** 16))
def test_pointwise_strided16_is_the_conv_of_every_other_pixel(c_in, c_out, out_h, out_w, top, left, extra, act,
                                                               seed):
    """The 1x1 stride-2 conv read from the map's corner in a bigger buffer, rows of 1 to 40 outputs (chunks of
    16, the last masked), maps of odd and even size; x lies between +inf cells in memory and the cells of its
    buffer outside the strided pixels are +inf too, so using any of them shows; out lies between -5 cells that
    must stay."""
    rng = np.random.default_rng(seed)
    height, width = 2 * out_h - 1 + extra % 2, 2 * out_w - 1 + extra // 2
    _, w, b = conv_case(rng, c_in, c_out, 1, 1, 1, 1, 1)
    xp = fenced(rng, (c_in, top + height + 1, left + width + 1))
    picked = xp[:, top:top + height:2, left:left + width:2].copy()
    xp[...] = np.inf
    xp[:, top:top + height:2, left:left + width:2] = picked
    out = fenced(rng, (c_out, out_h, out_w), fence=-5.0)
    out[...] = np.nan
    K.pointwise_strided16(xp, K.pointwise_tiled16_weights(w), b, out, top, left, act, 0.1)
    assert_close(out, R.conv2d(picked, w, b, act=act, alpha=0.1))
    assert np.all(out.base[:32] == -5.0) and np.all(out.base[32 + out.size:] == -5.0)


def test_pointwise_tiled16_activations_keep_nan_like_the_flat_kernels():
    x = np.zeros((1, 4, 4), np.float32)
    x[0, 1, 2] = np.nan
    w = np.ones((16, 1, 1, 1), np.float32)
    b = np.zeros(16, np.float32)
    for act, keeps in [(0, True), (1, False), (2, True), (3, False)]:
        out = np.full((16, 4, 4), 7.0, np.float32)
        K.pointwise_tiled16(x, K.pointwise_tiled16_weights(w), b, out, act, 0.1)
        assert np.isnan(out[:, 1, 2]).all() == keeps
        assert (out[:, 1, 2] == 0).all() == (not keeps)
        out[:, 1, 2] = 0
        assert (out == 0).all()


def test_pointwise_tiled_activations_keep_nan_like_the_flat_kernels():
    # relu and relu6 turn NaN into 0, identity and leaky relu keep it (as _piecewise_act does)
    x = np.zeros((1, 8, 8), np.float32)
    x[0, 3, 5] = np.nan
    w = np.ones((4, 1, 1, 1), np.float32)
    b = np.zeros(4, np.float32)
    for act, keeps in [(0, True), (1, False), (2, True), (3, False)]:
        out = np.full((4, 8, 8), 7.0, np.float32)
        K.pointwise_tiled(x, K.pointwise_tiled_weights(w), b, out, act, 0.1)
        assert np.isnan(out[:, 3, 5]).all() == keeps
        assert (out[:, 3, 5] == 0).all() == (not keeps)
        out[:, 3, 5] = 0
        assert (out == 0).all()


@pytest.mark.parametrize("c_in, c_out, height, width, kernel", [
    (16, 32, 7, 7, (3, 3)),   # digits' third layer
    (8, 9, 4, 5, (3, 3)),     # C_out not a multiple of 4: the last channel block is shifted back
    (20, 8, 3, 3, (2, 3)),    # any kernel size; 1x... outputs
    (64, 12, 2, 3, (1, 1)),
])
@pytest.mark.parametrize("pool", [1, 2])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.2), (3, 0.0)])
def test_conv_patches_matches_reference_conv_then_pool(c_in, c_out, height, width, kernel, pool, act, alpha):
    rng = np.random.default_rng(c_in + 3 * c_out + height)
    kh, kw = kernel
    x, w, b = conv_case(rng, c_in, c_out, height, width, kh, kw, 1)
    pads = (kh // 2, (kh - 1) // 2, kw // 2, (kw - 1) // 2)
    expected = R.conv2d(x, w, b, 1, pads, 1, 1, act, alpha)
    if pool == 2:
        expected = R.max_pool(expected, 2)
    if expected.shape[1] * expected.shape[2] * pool * pool < 4:
        pytest.skip("conv_patches needs at least 4 conv outputs per channel")
    out = np.full(expected.shape, np.nan, np.float32)
    size = K.patches_scratch_size(c_in, kh, kw, c_out, expected.shape[1], expected.shape[2], pool)
    K.conv_patches(padded(x, *pads), w, b, out, np.full(size, np.nan, np.float32), pool, act, alpha)
    assert_close(out, expected)


@SETTINGS
@given(c_in=st.integers(1, 40), c_out=st.integers(4, 11), height=st.integers(1, 8), width=st.integers(1, 8),
       kernel=st.sampled_from([(3, 3), (1, 3), (2, 2), (5, 3)]), padding=st.sampled_from(["same", "valid"]),
       act=st.sampled_from([0, 1, 2, 3, 4, 5]), alpha=ALPHAS, seed=st.integers(0, 1000))
def test_conv_channels_last_matches_reference(c_in, c_out, height, width, kernel, padding, act, alpha, seed):
    """Any C_out >= 4 (the last 4-channel block is shifted back), any pixel count >= 4 (likewise the last pixel
    block), rectangular kernels and odd pads; the scratch starts as NaN so a read of stale scratch shows."""
    kh, kw = kernel
    pads = (kh // 2, (kh - 1) // 2, kw // 2, (kw - 1) // 2) if padding == "same" else (0, 0, 0, 0)
    out_h = R.output_size(height, kh, 1, pads[0], pads[1])
    out_w = R.output_size(width, kw, 1, pads[2], pads[3])
    assume(out_h >= 1 and out_w >= 1 and out_h * out_w >= 4)
    x, w, b = conv_case(np.random.default_rng(seed), c_in, c_out, height, width, kh, kw, 1)
    xp = padded(x, *pads)
    out = np.full((c_out, out_h, out_w), np.nan, np.float32)
    K.conv_channels_last(xp, K.channels_last_weights(w), b, out, np.full(xp.size, np.nan, np.float32), act, alpha)
    assert_close(out, R.conv2d(x, w, b, 1, pads, 1, 1, act, alpha))


def test_classifier_head_runs_as_conv_channels_last():
    """mini-Xception's 3x3 128 -> 7 head on 4x4 (7 filters: conv_patches' 8-channel minimum not met) runs as
    conv_channels_last; a 16 -> 32 layer on 7x7 (enough filters) keeps conv_patches, which plan() checks first."""
    from stream_cnn.model.layers import make_layer

    def layer(filters, input_shape):
        conv = make_layer({"name": "c", "type": "conv2d", "filters": filters, "kernel": 3, "padding": "same"})
        conv.build([input_shape])
        conv.set_weights({"weight": np.zeros((filters, input_shape[0], 3, 3), np.float32),
                          "bias": np.zeros(filters, np.float32)})
        conv.reset_runtime()
        return conv

    head = layer(7, (128, 4, 4))
    assert head._channels_last_pays(16) and not head._patches_pay(16)
    assert layer(32, (16, 7, 7))._patches_pay(49)


@SETTINGS
@given(channels=st.integers(1, 6), mult=st.integers(1, 2), height=st.integers(1, 30), width=st.integers(1, 40),
       act=st.sampled_from([0, 1, 3, 5]), seed=st.integers(0, 1000))
def test_depthwise3x3_same_is_conv2d_on_the_padded_map(channels, mult, height, width, act, seed):
    """Bit for bit conv2d on the zero-padded map (left-out taps are zero products), for one and two output rows
    per pass (widths from 24), one-column and one-row maps, channel multipliers; scratch starts as NaN."""
    x, w, b = conv_case(np.random.default_rng(seed), channels, channels * mult, height, width, 3, 3, channels)
    expected = np.full((channels * mult, height, width), np.nan, np.float32)
    K.conv2d(padded(x, 1, 1, 1, 1), w, b, expected, 1, 1, 1, 1, channels, act, 0.0)
    out = np.full(expected.shape, np.nan, np.float32)
    K.depthwise3x3_same(x, w, b, out, np.full(width, np.nan, np.float32), act, 0.0)
    np.testing.assert_array_equal(out, expected)
    assert_close(out, R.conv2d(x, w, b, 1, (1, 1, 1, 1), 1, channels, act, 0.0))


@SETTINGS
@given(channels=st.integers(1, 6), mult=st.integers(1, 2), height=st.integers(2, 30), width=st.integers(1, 40),
       act=st.sampled_from([0, 1, 2, 3]), alpha=ALPHAS, seed=st.integers(0, 1000))
def test_depthwise3x3_same_flat_matches_reference(channels, mult, height, width, act, alpha, seed):
    """The flat depthwise "same" conv of the unpadded map: edge rows and columns (recomputed with the outside
    taps left out), one- and two-column and two-row maps, channel multipliers; out starts as NaN."""
    x, w, b = conv_case(np.random.default_rng(seed), channels, channels * mult, height, width, 3, 3, channels)
    out = np.full((channels * mult, height, width), np.nan, np.float32)
    K.depthwise3x3_same_flat(x, w, b, out, act, alpha)
    assert_close(out, R.conv2d(x, w, b, 1, (1, 1, 1, 1), 1, channels, act, alpha))


def fenced(rng, shape, fence=np.inf):
    """A C-contiguous float32 array of `shape` with uniform values, lying inside a buffer whose cells before and
    after it hold `fence`: a kernel reading past either end would pick those up."""
    size = int(np.prod(shape))
    buffer = np.full(size + 64, fence, np.float32)
    view = buffer[32:32 + size].reshape(shape)
    view[...] = uniform(rng, shape)
    return view


@SETTINGS
@given(channels=st.integers(1, 20), height=st.integers(1, 40), width=st.integers(1, 72),
       pads=st.sampled_from([(0, 1, 0, 1), (1, 1, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0), (2, 2, 2, 2), (0, 2, 1, 0)]),
       seed=st.integers(0, 1000))
def test_max_pool3s2_add_matches_reference_pool_then_add(channels, height, width, pads, seed):
    """The 3x3 stride-2 pool read unpadded (its padding masked), plus the residual, written at an offset into a
    bordered buffer: bit for bit the reference, border untouched; even and odd maps, "same" and explicit pads,
    rows of 1 to 36 outputs (one, two and three 16-lane chunks, ragged ends). x and res sit between +inf cells in
    memory, so a read outside the windows would show as +inf."""
    top, bottom, left, right = pads
    assume(height + top + bottom >= 3 and width + left + right >= 3)
    rng = np.random.default_rng(seed)
    x = fenced(rng, (channels, height, width))
    pooled = R.max_pool(x, (3, 3), (2, 2), pads)
    res = fenced(rng, pooled.shape)
    out_h, out_w = pooled.shape[1:]
    big = np.full((channels, out_h + 2, out_w + 3), -7.0, np.float32)
    K.max_pool3s2_add(x, res, big, top, left, 1, 2)
    np.testing.assert_array_equal(big[:, 1:1 + out_h, 2:2 + out_w], pooled + res)
    border = np.ones(big.shape, bool)
    border[:, 1:1 + out_h, 2:2 + out_w] = False
    assert np.all(big[border] == -7.0)


@SETTINGS
@given(channels=st.integers(1, 6), mult=st.integers(1, 2), height=st.integers(1, 30), width=st.integers(1, 40),
       act=st.sampled_from([0, 1, 2, 3]), alpha=ALPHAS, seed=st.integers(0, 1000))
def test_depthwise3x3_flat_matches_reference(channels, mult, height, width, act, alpha, seed):
    """The flat-plane depthwise conv on a padded map followed in memory by NaN (it must not read past the
    plane), channel multipliers, one-row and one-column maps; scratch starts as NaN."""
    rng = np.random.default_rng(seed)
    x, xp = guarded((channels, height, width), rng)
    w = uniform(rng, (channels * mult, 1, 3, 3), 1.0 / 3.0)
    b = uniform(rng, (channels * mult,), 0.5)
    out = np.full((channels * mult, height, width), np.nan, np.float32)
    scratch = np.full(K.depthwise_flat_scratch_size(height, width + 2), np.nan, np.float32)
    K.depthwise3x3_flat(xp, w, b, out, scratch, act, alpha)
    assert_close(out, R.conv2d(x, w, b, 1, (1, 1, 1, 1), 1, channels, act, alpha))


@SETTINGS
@given(channels=st.integers(1, 6), mult=st.integers(1, 2), height=st.integers(2, 30), width=st.integers(16, 70),
       act=st.sampled_from([0, 1, 2, 3]), alpha=ALPHAS, seed=st.integers(0, 1000))
def test_depthwise3x3_rows_matches_reference(channels, mult, height, width, act, alpha, seed):
    """The 16-column-block depthwise conv on a padded map followed in memory by NaN (it must not read past the
    plane): widths that are and are not multiples of 16 (the last block shifted back), odd heights (the last row
    pair shifted back), channel multipliers; out starts as NaN and must be fully written."""
    rng = np.random.default_rng(seed)
    x, xp = guarded((channels, height, width), rng)
    w = uniform(rng, (channels * mult, 1, 3, 3), 1.0 / 3.0)
    b = uniform(rng, (channels * mult,), 0.5)
    out = np.full((channels * mult, height, width), np.nan, np.float32)
    K.depthwise3x3_rows(xp, w, b, out, act, alpha)
    assert_close(out, R.conv2d(x, w, b, 1, (1, 1, 1, 1), 1, channels, act, alpha))


# --- Winograd F(2x2, 3x3) ----------------------------------------------------------------------------------------

def run_winograd(x, w, b, pool, act, alpha, out_top=0, out_left=0, margin=(0, 0), crop=False):
    """winograd_conv on x padded by 1 (NaN beyond the padded buffer, NaN scratch), writing at (out_top, out_left)
    of a NaN-filled out with `margin` extra rows / columns after the result; returns (out, the result region).
    With crop (pooled only), the padded buffer stops before the bottom row / right column that the pool never
    reads under an odd-sized map, as the Model plans it (winograd's flat input transform then runs)."""
    rng = np.random.default_rng(0)
    _, height, width = x.shape
    bottom, right = (1 - height % 2, 1 - width % 2) if crop and pool == 2 else (1, 1)
    _, xp = guarded(x.shape, rng, bottom=bottom, right=right)
    xp[:, 1:1 + height, 1:1 + width] = x
    c_out = w.shape[0]
    out_h, out_w = x.shape[1] // pool, x.shape[2] // pool
    out = np.full((c_out, out_top + out_h + margin[0], out_left + out_w + margin[1]), np.nan, np.float32)
    scratch = np.full(K.winograd_scratch_size(x.shape[0], out_h, out_w, pool), np.nan, np.float32)
    u = K.winograd_weights(w, K.winograd_weight_rows(x.shape[0], c_out, out_h, out_w, pool))
    K.winograd_conv(xp, u, b, out, scratch, out_h, out_w, out_top, out_left, pool, act, alpha)
    return out, out[:, out_top:out_top + out_h, out_left:out_left + out_w]


@pytest.mark.parametrize("c_in, c_out, height, width", [
    (1, 8, 28, 28), (8, 16, 14, 14), (16, 32, 7, 7),   # the digits layers
    (3, 5, 7, 9), (2, 7, 5, 6), (5, 4, 9, 7), (9, 6, 1, 1), (1, 4, 2, 3), (6, 9, 3, 1),
    (6, 21, 4, 6),   # few tiles, many filters: the products run along the output channels (pooled)
    (2, 70, 4, 4),   # more filters than a U row of 64 holds: along the tiles
])
@pytest.mark.parametrize("pool, crop", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("act, alpha", [(0, 0.0), (1, 0.0), (2, 0.1), (3, 0.0)])
def test_winograd_conv_matches_reference_conv_then_pool(c_in, c_out, height, width, pool, crop, act, alpha):
    rng = np.random.default_rng(c_in * 1000 + c_out * 10 + height)
    x = uniform(rng, (c_in, height, width))
    w, b, reference = same_conv3x3_case(rng, c_in, c_out, height, width, pool, act, alpha)
    expected = reference(x)
    out, result = run_winograd(x, w, b, pool, act, alpha, crop=crop)
    assert_close(result, expected)


@given(c_in=st.integers(1, 9), c_out=st.integers(4, 11), height=st.integers(1, 19), width=st.integers(1, 19),
       pool=st.sampled_from([1, 2]), act=st.sampled_from([0, 1, 2, 3]), alpha=ALPHAS,
       out_top=st.integers(0, 2), out_left=st.integers(0, 3), margin=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       crop=st.booleans(), seed=st.integers(0, 2**16))
@SETTINGS
def test_winograd_conv_writes_the_reference_at_its_offset_and_nothing_else(c_in, c_out, height, width, pool, act,
                                                                          alpha, out_top, out_left, margin, crop,
                                                                          seed):
    assume(pool == 1 or (height >= 2 and width >= 2))
    rng = np.random.default_rng(seed)
    x = uniform(rng, (c_in, height, width))
    w, b, reference = same_conv3x3_case(rng, c_in, c_out, height, width, pool, act, alpha)
    expected = reference(x)
    out, result = run_winograd(x, w, b, pool, act, alpha, out_top, out_left, margin, crop)
    assert_close(result, expected)
    # everything around the result (e.g. the next layer's padding border) is left as it was
    outside = np.ones(out.shape, bool)
    outside[:, out_top:out_top + expected.shape[1], out_left:out_left + expected.shape[2]] = False
    assert np.isnan(out[outside]).all()


def test_winograd_weights_are_g_w_gt():
    rng = np.random.default_rng(3)
    w = uniform(rng, (5, 2, 3, 3))
    g = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
    u = K.winograd_weights(w)
    assert u.shape == (2, 16, 5) and u.dtype == np.float32 and u.flags.c_contiguous
    for o in range(5):
        for c in range(2):
            np.testing.assert_allclose(u[c, :, o].reshape(4, 4), g @ w[o, c].astype(np.float64) @ g.T, atol=1e-6)
    # rows padded to 64 (the layout that lets the products run along the output channels): zeros past C_out
    wide = K.winograd_weights(w, 64)
    assert wide.shape == (2, 16, 64) and np.array_equal(wide[:, :, :5], u) and not wide[:, :, 5:].any()
    with pytest.raises(ValueError):
        K.winograd_weights(w, 4)


def test_winograd_weight_rows_pad_only_where_the_products_run_along_the_channels():
    assert K.winograd_weight_rows(16, 32, 3, 3, 2) == 64     # digits' 16 -> 32 on 7x7: 12 tiles
    assert K.winograd_weight_rows(8, 16, 7, 7, 2) == 16      # digits' 8 -> 16 on 14x14: 56 tiles
    assert K.winograd_weight_rows(1, 8, 14, 14, 2) == 8      # one input channel: its own path
    assert K.winograd_weight_rows(16, 32, 6, 6, 1) == 32     # unpooled: along the tiles only
    assert K.winograd_weight_rows(16, 70, 1, 1, 2) == 70     # more filters than a row of 64


def test_winograd_fits_bounds_the_map_size():
    assert K.winograd_fits(14, 14, 2) and K.winograd_fits(28, 28, 1)
    assert not K.winograd_fits(64, 64, 2) and not K.winograd_fits(128, 128, 1)
