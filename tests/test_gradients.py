"""Backprop checked against central finite differences, layer by layer and for softmax cross-entropy.

Why float64: the training kernels are dtype-generic (accumulators take the dtype of the output array), so the
tests run the very same Numba code on float64 copies of the parameters and inputs. In float64 a central
difference with eps = 1e-6 has truncation error ~eps^2 and rounding error ~1e-16 / eps = 1e-10, so analytic and
numeric gradients must agree to ~1e-6 relative; in float32 the rounding error alone (~1e-7 / eps) would force
eps ~1e-2 and tolerances so loose that an off-by-one tap could hide. A separate test checks that the float32
path (what training runs) gives the same values as float64 to float32 precision.
"""
import numpy as np
import pytest

from stream_cnn.model.config import ModelConfig
from stream_cnn.model.kernels import ACTIVATIONS
from stream_cnn.train import kernels as K
from stream_cnn.train.network import Network

EPS = 1e-6


def network_of(specs, in_shape):
    """A trainable network of [[layers]] tables on an input of any shape (the config is built in memory, so the
    inference engine's layer builder parses and shapes it, as it does for a TOML file)."""
    return Network(ModelConfig(name="test", input_shape=tuple(in_shape), layers=specs))


def make_layer(spec, in_shape, seed=0, dtype=np.float64):
    layer = network_of([spec], in_shape).layers[0]
    rng = np.random.default_rng(seed)
    for key, value in layer.params.items():
        layer.params[key] = rng.normal(0, 0.5, value.shape).astype(dtype)
        layer.grads[key] = np.zeros_like(layer.params[key])
    return layer


def numeric_grad(f, array, eps=EPS):
    """Central differences of scalar f() with respect to every element of `array` (perturbed in place)."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = f()
        flat[i] = saved - eps
        minus = f()
        flat[i] = saved
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def check_layer(spec, in_shape, batch=2, seed=1):
    """loss = sum(forward(x) * R) for a fixed random R; compare d loss / d x and d loss / d params."""
    layer = make_layer(spec, in_shape)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (batch, *in_shape))
    out = layer.forward(x, training=False)
    projection = rng.normal(0, 1, out.shape)

    def loss():
        return float(np.sum(layer.forward(x, training=False) * projection))

    layer.forward(x, training=False)
    grad_x = layer.backward(projection.copy())
    analytic = {key: g.copy() for key, g in layer.grads.items()}
    np.testing.assert_allclose(grad_x, numeric_grad(loss, x), rtol=1e-5, atol=1e-7, err_msg="d loss / d input")
    for key, value in layer.params.items():
        np.testing.assert_allclose(analytic[key], numeric_grad(loss, value), rtol=1e-5, atol=1e-7,
                                   err_msg=f"d loss / d {key}")
    return layer


@pytest.mark.parametrize("kernel,stride,padding", [
    (3, 1, "same"), (3, 1, "valid"), (3, 2, "same"), (3, 2, 1), ([2, 3], [2, 1], [1, 0, 2, 1]), (1, 1, "valid"),
    (5, 1, 2), (3, [1, 2], "same"),
])
def test_conv2d_gradients(kernel, stride, padding):
    check_layer({"name": "c", "type": "conv2d", "filters": 3, "kernel": kernel, "stride": stride,
                 "padding": padding}, (2, 7, 6))


@pytest.mark.parametrize("activation", ["identity", "relu", "leaky_relu", "relu6", "sigmoid", "tanh", "gelu"])
def test_fused_activation_gradients(activation):
    check_layer({"name": "c", "type": "conv2d", "filters": 2, "kernel": 3, "padding": "same",
                 "activation": activation, "alpha": 0.1}, (1, 5, 5))


@pytest.mark.parametrize("function", ["relu", "leaky_relu", "sigmoid", "tanh", "gelu"])
def test_activation_layer_gradients(function):
    check_layer({"name": "a", "type": "activation", "function": function, "alpha": 0.2}, (2, 3, 4))


@pytest.mark.parametrize("activation", ["identity", "relu", "tanh"])
def test_dense_gradients(activation):
    check_layer({"name": "d", "type": "dense", "units": 4, "activation": activation}, (7,), batch=3)


@pytest.mark.parametrize("kind,kernel,stride,padding", [
    ("max_pool", 2, None, "valid"), ("max_pool", 3, 2, 1), ("max_pool", 3, 1, "same"),
    ("avg_pool", 2, None, "valid"), ("avg_pool", 3, 2, 1), ("avg_pool", [2, 3], [1, 2], "same"),
])
def test_pool_gradients(kind, kernel, stride, padding):
    spec = {"name": "p", "type": kind, "kernel": kernel, "padding": padding}
    if stride is not None:
        spec["stride"] = stride
    check_layer(spec, (2, 7, 6))


@pytest.mark.parametrize("kind", ["global_avg_pool", "global_max_pool", "flatten"])
def test_global_pool_and_flatten_gradients(kind):
    check_layer({"name": "g", "type": kind}, (3, 4, 5))


def test_dense_on_a_feature_map_flattens_it_channel_major():
    """The inference engine's dense layer flattens a (C, H, W) input itself; training's does the same."""
    check_layer({"name": "d", "type": "dense", "units": 3, "activation": "relu"}, (2, 3, 2), batch=2)
    layer = make_layer({"name": "d", "type": "dense", "units": 3}, (2, 3, 2))
    x = np.random.default_rng(6).normal(0, 1, (2, 2, 3, 2))
    expected = x.reshape(2, -1) @ layer.params["weight"].T + layer.params["bias"]
    np.testing.assert_allclose(layer.forward(x, False), expected, rtol=1e-12)


def test_bias_false_has_no_bias_parameter_and_trains_the_weight():
    """bias = false: no '<name>.bias' array (the inference engine rejects an unexpected one), weights still learn."""
    for spec, in_shape in (({"name": "c", "type": "conv2d", "filters": 2, "kernel": 3, "bias": False}, (1, 5, 5)),
                           ({"name": "c", "type": "conv2d", "filters": 2, "kernel": 3, "stride": 2, "bias": False},
                            (1, 5, 5)),
                           ({"name": "d", "type": "dense", "units": 3, "bias": False}, (4,))):
        layer = check_layer(spec, in_shape)
        assert list(layer.params) == ["weight"]


def test_activation_codes_are_the_inference_engines():
    """The training kernels branch on literal codes; names map to codes only in stream_cnn.model.kernels."""
    assert (K.IDENTITY, K.RELU, K.LEAKY_RELU, K.RELU6, K.SIGMOID, K.TANH, K.GELU) == tuple(
        ACTIVATIONS[name] for name in ("identity", "relu", "leaky_relu", "relu6", "sigmoid", "tanh", "gelu"))


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (4, 5))
    labels = np.array([0, 4, 2, 2])
    probs, grad = np.empty_like(logits), np.empty_like(logits)

    def loss():
        return K.softmax_cross_entropy(logits, labels, np.empty_like(logits), np.empty_like(logits))

    value = K.softmax_cross_entropy(logits, labels, probs, grad)
    shifted = logits - logits.max(axis=1, keepdims=True)
    expected_probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected_probs, rtol=1e-12)
    assert value == pytest.approx(-np.mean(np.log(expected_probs[np.arange(4), labels])), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_grad(loss, logits), rtol=1e-6, atol=1e-9)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    probs, grad = np.empty_like(logits), np.empty_like(logits)
    loss = K.softmax_cross_entropy(logits, np.array([1]), probs, grad)
    assert loss == pytest.approx(1000.0, rel=1e-6)
    assert np.all(np.isfinite(grad)) and grad[0, 1] == pytest.approx(-1.0)


def test_whole_network_gradient_through_loss():
    """A small conv net end to end: every parameter's gradient of the cross-entropy loss."""
    specs = [
        {"name": "c1", "type": "conv2d", "filters": 2, "kernel": 3, "padding": "same", "activation": "relu"},
        {"name": "p1", "type": "max_pool", "kernel": 2},
        {"name": "c2", "type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": 1, "activation": "gelu"},
        {"name": "f", "type": "flatten"},
        {"name": "d", "type": "dense", "units": 4},
        {"name": "s", "type": "softmax"},
    ]
    net = network_of(specs, (1, 8, 8))
    rng = np.random.default_rng(5)
    net.init_params(rng)
    for layer in net.layers:
        for key in layer.params:
            layer.params[key] = layer.params[key].astype(np.float64) + rng.normal(0, 0.05, layer.params[key].shape)
            layer.grads[key] = np.zeros_like(layer.params[key])
    x = rng.normal(0, 1, (3, 1, 8, 8))
    labels = np.array([0, 3, 1])

    def loss():
        logits = net.forward(x)
        return K.softmax_cross_entropy(logits, labels, np.empty_like(logits), np.empty_like(logits))

    logits = net.forward(x)
    grad_logits = np.empty_like(logits)
    K.softmax_cross_entropy(logits, labels, np.empty_like(logits), grad_logits)
    net.backward(grad_logits)
    for key, value, grad in net.parameters():
        np.testing.assert_allclose(grad, numeric_grad(loss, value), rtol=1e-5, atol=1e-8, err_msg=key)


def _numpy_conv(x, w, b, stride, pads):
    """Obvious reference: explicit zero padding and a window loop."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    kh, kw = w.shape[2:]
    h_out = (xp.shape[2] - kh) // stride[0] + 1
    w_out = (xp.shape[3] - kw) // stride[1] + 1
    out = np.empty((x.shape[0], w.shape[0], h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", window, w) + b
    return out


@pytest.mark.parametrize("stride,padding", [(1, "same"), (2, "same"), (1, [0, 2, 1, 0]), (2, 0)])
def test_conv_forward_matches_numpy_and_float32(stride, padding):
    spec = {"name": "c", "type": "conv2d", "filters": 4, "kernel": 3, "stride": stride, "padding": padding}
    layer64 = make_layer(spec, (3, 9, 8))
    layer32 = make_layer(spec, (3, 9, 8), dtype=np.float32)
    x = np.random.default_rng(2).normal(0, 1, (2, 3, 9, 8))
    expected = _numpy_conv(x, layer64.params["weight"], layer64.params["bias"], layer64.stride, layer64.pads)
    np.testing.assert_allclose(layer64.forward(x, False), expected, rtol=1e-12, atol=1e-12)
    out32 = layer32.forward(x.astype(np.float32), False)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, expected, rtol=1e-4, atol=1e-5)
    # backward in float32 agrees with float64
    g = np.random.default_rng(4).normal(0, 1, expected.shape)
    gx64, gx32 = layer64.backward(g), layer32.backward(g.astype(np.float32))
    np.testing.assert_allclose(gx32, gx64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer32.grads["weight"], layer64.grads["weight"], rtol=1e-4, atol=1e-4)


def test_general_and_stride1_conv_kernels_agree():
    """The stride-1 fast path (flat padded rows) and the general strided kernel compute the same conv."""
    rng = np.random.default_rng(8)
    x = rng.normal(0, 1, (2, 3, 6, 7))
    w = rng.normal(0, 1, (4, 3, 3, 3))
    b = rng.normal(0, 1, 4)
    layer = make_layer({"name": "c", "type": "conv2d", "filters": 4, "kernel": 3, "padding": "same"}, (3, 6, 7))
    layer.params["weight"], layer.params["bias"] = w, b
    general = np.empty((2, 4, 6, 7))
    K.conv2d_forward(x, w, b, general, 1, 1, 1, 1)
    np.testing.assert_allclose(layer.forward(x, False), general, rtol=1e-12)
