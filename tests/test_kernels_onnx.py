"""Independent oracle: single-layer ONNX graphs built with onnx.helper, run in ONNX Runtime, against the kernels.

ONNX Runtime has its own implementation of every operator, so agreement here checks the kernels' semantics
(padding order, strides, dilation, groups, count_include_pad=0, activation formulas) against a second source, not
just against our own NumPy reading of them. Inputs are U(-1, 1) with 1/sqrt(fan_in) weights so outputs are O(1)
and 1e-5 absolute is a tolerance on the semantics, not on float32 summation order.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from helpers import pool_window_params  # noqa: E402
from stream_cnn.model import kernels as K  # noqa: E402
from stream_cnn.model import reference as R  # noqa: E402

OPSET = 20  # has Gelu; supported by onnxruntime 1.32
TOL = 1e-5
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def uniform(rng, shape, scale=1.0):
    return (rng.uniform(-1.0, 1.0, shape) * scale).astype(np.float32)


def run_onnx(nodes, feeds, output_names, initializers=()):
    """Build a graph from nodes with float inputs named like feeds, run it, return the named outputs."""
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape))
              for name, value in feeds.items()]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in output_names]
    graph = helper.make_graph(nodes, "single_layer", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v), name) for name, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    # ORT validates the graph when it loads; outputs are left unshaped, so onnx.checker would refuse them.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machine is shared; one thread is plenty for these sizes
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # run the ops as written
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(output_names, feeds)


def activation_nodes(act, alpha, src, dst):
    """ONNX nodes computing activation code `act` from src into dst (plus initializers they need)."""
    if act == 0:
        return [helper.make_node("Identity", [src], [dst])], []
    if act == 1:
        return [helper.make_node("Relu", [src], [dst])], []
    if act == 2:
        return [helper.make_node("LeakyRelu", [src], [dst], alpha=alpha)], []
    if act == 3:
        return ([helper.make_node("Clip", [src, "clip_lo", "clip_hi"], [dst])],
                [("clip_lo", np.float32(0.0)), ("clip_hi", np.float32(6.0))])
    if act == 4:
        return [helper.make_node("Sigmoid", [src], [dst])], []
    if act == 5:
        return [helper.make_node("Tanh", [src], [dst])], []
    if act == 6:
        return [helper.make_node("Gelu", [src], [dst], approximate="none")], []
    raise AssertionError(act)


def assert_close(actual, expected):
    expected = np.asarray(expected, np.float32).reshape(actual.shape)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL)


@st.composite
def conv_params(draw):
    depthwise = draw(st.booleans())
    if depthwise:
        groups, cin_per_group, cout_per_group = draw(st.integers(1, 5)), 1, draw(st.integers(1, 2))
    else:
        groups = draw(st.sampled_from([1, 1, 2]))
        cin_per_group, cout_per_group = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    kh = draw(st.sampled_from([1, 2, 3, 3, 5]))
    kw = draw(st.sampled_from([kh, kh, 1, 3, 4]))
    stride = (draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 2])))
    dilation = (draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2])))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))  # top, bottom, left, right
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    assume(height + pads[0] + pads[1] >= dilation[0] * (kh - 1) + 1)
    assume(width + pads[2] + pads[3] >= dilation[1] * (kw - 1) + 1)
    return dict(groups=groups, c_in=groups * cin_per_group, c_out=groups * cout_per_group, kh=kh, kw=kw,
                stride=stride, dilation=dilation, pads=pads, height=height, width=width,
                act=draw(st.integers(0, 6)), alpha=draw(st.sampled_from([0.01, 0.2])),
                seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(conv_params())
def test_conv_with_activation_matches_onnxruntime(p):
    rng = np.random.default_rng(p["seed"])
    x = uniform(rng, (p["c_in"], p["height"], p["width"]))
    w = uniform(rng, (p["c_out"], p["c_in"] // p["groups"], p["kh"], p["kw"]),
                1.0 / np.sqrt(p["c_in"] // p["groups"] * p["kh"] * p["kw"]))
    b = uniform(rng, p["c_out"], 0.5)
    top, bottom, left, right = p["pads"]
    conv = helper.make_node("Conv", ["x", "w", "b"], ["conv"], kernel_shape=[p["kh"], p["kw"]],
                            pads=[top, left, bottom, right], strides=list(p["stride"]),
                            dilations=list(p["dilation"]), group=p["groups"])
    act_nodes, act_inits = activation_nodes(p["act"], p["alpha"], "conv", "y")
    (want,) = run_onnx([conv] + act_nodes, {"x": x[None]}, ["y"], [("w", w), ("b", b)] + act_inits)

    xp = np.zeros((p["c_in"], p["height"] + top + bottom, p["width"] + left + right), np.float32)
    K.pad_into(x, xp, top, left)
    got = np.full(want.shape[1:], np.nan, np.float32)
    K.conv2d(xp, w, b, got, p["stride"][0], p["stride"][1], p["dilation"][0], p["dilation"][1], p["groups"],
             p["act"], p["alpha"])
    assert_close(got, want)


def test_big_convs_match_onnxruntime():
    """The 3x3, pointwise and depthwise paths and the multi-threaded variant, at sizes a real model has."""
    rng = np.random.default_rng(11)
    for c_in, c_out, size, k, kernel in [(16, 32, 32, 3, K.conv2d), (64, 128, 16, 1, K.conv2d),
                                         (32, 32, 32, 3, K.conv2d), (16, 32, 32, 3, K.conv2d_parallel)]:
        groups = 32 if (c_in, c_out) == (32, 32) else 1  # depthwise
        x = uniform(rng, (c_in, size, size))
        w = uniform(rng, (c_out, c_in // groups, k, k), 1.0 / np.sqrt(c_in // groups * k * k))
        b = uniform(rng, c_out, 0.5)
        pad = k // 2
        conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k], pads=[pad] * 4, group=groups)
        (want,) = run_onnx([conv], {"x": x[None]}, ["y"], [("w", w), ("b", b)])
        xp = np.zeros((c_in, size + 2 * pad, size + 2 * pad), np.float32)
        K.pad_into(x, xp, pad, pad)
        got = np.empty(want.shape[1:], np.float32)
        kernel(xp, w, b, got, 1, 1, 1, 1, groups, 0, 0.0)
        assert_close(got, want)


@SETTINGS
@given(pool_window_params(max_channels=3), st.sampled_from(["max", "min", "avg"]))
def test_window_pools_match_onnxruntime(p, kind):
    x = uniform(np.random.default_rng(p["seed"]), (p["channels"], p["height"], p["width"]))
    top, bottom, left, right = p["pads"]
    kh, kw = p["kernel"]
    attrs = dict(kernel_shape=[kh, kw], strides=list(p["stride"]), pads=[top, left, bottom, right])
    if kind == "max":
        nodes = [helper.make_node("MaxPool", ["x"], ["y"], **attrs)]
    elif kind == "avg":
        nodes = [helper.make_node("AveragePool", ["x"], ["y"], count_include_pad=0, **attrs)]
    else:  # min pool = -MaxPool(-x)
        nodes = [helper.make_node("Neg", ["x"], ["neg"]), helper.make_node("MaxPool", ["neg"], ["negmax"], **attrs),
                 helper.make_node("Neg", ["negmax"], ["y"])]
    (want,) = run_onnx(nodes, {"x": x[None]}, ["y"])
    got = np.full(want.shape[1:], np.nan, np.float32)
    sh, sw = p["stride"]
    if kind == "avg":
        K.avg_pool(x, got, kh, kw, sh, sw, top, left)
    else:
        fill = -np.inf if kind == "max" else np.inf
        xp = np.full((p["channels"], p["height"] + top + bottom, p["width"] + left + right), fill, np.float32)
        K.pad_into(x, xp, top, left)
        (K.max_pool if kind == "max" else K.min_pool)(xp, got, kh, kw, sh, sw)
    assert_close(got, want)


@pytest.mark.parametrize("op, kernel", [("GlobalAveragePool", K.global_avg_pool),
                                        ("GlobalMaxPool", K.global_max_pool)])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (16, 14, 14)])
def test_global_pools_match_onnxruntime(op, kernel, shape):
    x = uniform(np.random.default_rng(sum(shape)), shape)
    (want,) = run_onnx([helper.make_node(op, ["x"], ["y"])], {"x": x[None]}, ["y"])
    got = np.empty(shape[0], np.float32)
    kernel(x, got)
    assert_close(got, want)


def test_adaptive_avg_pool_matches_onnx_average_pool_when_bins_are_even():
    # With H divisible by Ho the adaptive bins are a plain kernel = stride = H / Ho average pool.
    x = uniform(np.random.default_rng(2), (4, 12, 8))
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[4, 2], strides=[4, 2])
    (want,) = run_onnx([node], {"x": x[None]}, ["y"])
    got = np.empty((4, 3, 4), np.float32)
    K.adaptive_avg_pool(x, got)
    assert_close(got, want)


@pytest.mark.parametrize("n_in, n_out", [(1, 1), (7, 3), (64, 10), (300, 17)])
@pytest.mark.parametrize("act", range(7))
def test_dense_matches_onnx_gemm(n_in, n_out, act):
    rng = np.random.default_rng(n_in * 13 + n_out)
    x = uniform(rng, n_in)
    w = uniform(rng, (n_out, n_in), 1.0 / np.sqrt(n_in))
    b = uniform(rng, n_out, 0.5)
    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["gemm"], transB=1)
    act_nodes, act_inits = activation_nodes(act, 0.1, "gemm", "y")
    (want,) = run_onnx([gemm] + act_nodes, {"x": x[None]}, ["y"], [("w", w), ("b", b)] + act_inits)
    got = np.empty(n_out, np.float32)
    K.dense(x, w, b, got, act, 0.1)
    assert_close(got, want)


@pytest.mark.parametrize("act", range(7))
def test_activations_match_onnxruntime(act):
    x = uniform(np.random.default_rng(act), (3, 6, 5), 8.0)  # reaches relu6's clip and sigmoid/tanh saturation
    nodes, inits = activation_nodes(act, 0.2, "x", "y")
    (want,) = run_onnx(nodes, {"x": x}, ["y"], inits)
    got = np.empty_like(x)
    K.activation(x, got, act, 0.2)
    assert_close(got, want)


def test_gelu_matches_the_erf_formula_graph():
    # Gelu written out as 0.5 x (1 + erf(x / sqrt 2)) with primitive ops, independent of the Gelu operator.
    x = uniform(np.random.default_rng(9), (64,), 5.0)
    nodes = [helper.make_node("Div", ["x", "sqrt2"], ["scaled"]), helper.make_node("Erf", ["scaled"], ["erf"]),
             helper.make_node("Add", ["erf", "one"], ["plus1"]), helper.make_node("Mul", ["x", "plus1"], ["prod"]),
             helper.make_node("Mul", ["prod", "half"], ["y"])]
    inits = [("sqrt2", np.float32(np.sqrt(2.0))), ("one", np.float32(1.0)), ("half", np.float32(0.5))]
    (want,) = run_onnx(nodes, {"x": x}, ["y"], inits)
    got = np.empty_like(x)
    K.activation(x, got, K.ACTIVATIONS["gelu"], 0.0)
    assert_close(got, want)


@pytest.mark.parametrize("n, spread", [(1, 1.0), (3, 2.0), (10, 5.0), (100, 50.0), (7, 1000.0)])
def test_softmax_matches_onnxruntime(n, spread):
    x = uniform(np.random.default_rng(n), n, spread)
    (want,) = run_onnx([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], {"x": x[None]}, ["y"])
    got = np.empty(n, np.float32)
    K.softmax(x, got)
    assert_close(got, want)


@pytest.mark.parametrize("act", [0, 1, 3])
def test_add_matches_onnxruntime(act):
    rng = np.random.default_rng(act + 40)
    a, b = uniform(rng, (4, 5, 6), 4.0), uniform(rng, (4, 5, 6), 4.0)
    act_nodes, act_inits = activation_nodes(act, 0.1, "sum", "y")
    (want,) = run_onnx([helper.make_node("Add", ["a", "b"], ["sum"])] + act_nodes, {"a": a, "b": b}, ["y"],
                       act_inits)
    got = np.empty_like(a)
    K.add(a, b, got, act, 0.1)
    assert_close(got, want)


def test_concat_matches_onnxruntime():
    rng = np.random.default_rng(3)
    maps = [uniform(rng, (c, 4, 5)) for c in (2, 1, 3)]
    feeds = {f"m{i}": m[None] for i, m in enumerate(maps)}
    (want,) = run_onnx([helper.make_node("Concat", list(feeds), ["y"], axis=1)], feeds, ["y"])
    got = np.empty((6, 4, 5), np.float32)
    offset = 0
    for m in maps:
        K.concat_into(m, got, offset)
        offset += m.shape[0]
    np.testing.assert_array_equal(got, want[0])


def test_glu_matches_onnx_split_sigmoid_mul():
    x = uniform(np.random.default_rng(8), (6, 3, 4), 4.0)
    nodes = [helper.make_node("Split", ["x", "halves"], ["a", "b"], axis=0),
             helper.make_node("Sigmoid", ["b"], ["gate"]), helper.make_node("Mul", ["a", "gate"], ["y"])]
    (want,) = run_onnx(nodes, {"x": x}, ["y"], [("halves", np.array([3, 3], np.int64))])
    got = np.empty((3, 3, 4), np.float32)
    K.glu(x, got)
    assert_close(got, want)


def test_reference_twin_agrees_with_onnxruntime_on_a_strided_dilated_grouped_conv():
    """The NumPy reference itself is checked against ONNX, so the kernel tests compare with a trusted twin."""
    rng = np.random.default_rng(21)
    x = uniform(rng, (4, 9, 8))
    w = uniform(rng, (6, 2, 3, 2), 0.4)
    b = uniform(rng, 6)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 2], pads=[2, 0, 1, 3],
                            strides=[2, 3], dilations=[2, 1], group=2)
    (want,) = run_onnx([node], {"x": x[None]}, ["y"], [("w", w), ("b", b)])
    # ONNX pads [top, left, bottom, right] = [2, 0, 1, 3] -> reference (top, bottom, left, right) = (2, 1, 0, 3)
    assert_close(R.conv2d(x, w, b, (2, 3), (2, 1, 0, 3), (2, 1), 2), want)
