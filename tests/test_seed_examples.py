"""The worked numbers from the project seed, computed by the Numba kernels."""
import numpy as np

from stream_cnn.model import kernels as K
from stream_cnn.model import reference as R
from stream_cnn.model.filters import sobel


def test_seed_quadrant_max_and_average_pool():
    quadrant = np.array([[[1, 0], [4, 6]]], dtype=np.float32)  # the seed's 2x2 patch (1, 0, 4, 6)
    biggest = np.empty((1, 1, 1), np.float32)
    K.max_pool(quadrant, biggest, 2, 2, 2, 2)
    mean = np.empty((1, 1, 1), np.float32)
    K.avg_pool(quadrant, mean, 2, 2, 2, 2, 0, 0)
    assert biggest[0, 0, 0] == 6.0
    assert mean[0, 0, 0] == 2.75


def test_seed_relu_nodes_through_dense():
    pixels = np.array([155.0, 60.0], dtype=np.float32)
    weights = np.array([[0.27, 0.2],     # 155*0.27 + 60*0.2 = 41.85 + 12 = 53.85
                        [-0.1, -0.4]],   # 155*-0.1 + 60*-0.4 = -15.5 - 24 = -39.5 -> ReLU -> 0
                       dtype=np.float32)
    out = np.empty(2, np.float32)
    K.dense(pixels, weights, np.zeros(2, np.float32), out, K.ACTIVATIONS["relu"], 0.0)
    np.testing.assert_allclose(out[0], 53.85, rtol=1e-6)
    assert out[1] == 0.0
    K.dense(pixels, weights, np.zeros(2, np.float32), out, K.ACTIVATIONS["identity"], 0.0)
    np.testing.assert_allclose(out[1], -39.5, rtol=1e-6)  # the node really was negative before ReLU


def test_seed_softmax():
    scores = np.array([2.5, 1.8, 0.2], dtype=np.float32)
    probs = np.empty(3, np.float32)
    K.softmax(scores, probs)
    np.testing.assert_array_equal(np.round(probs, 2), np.array([0.63, 0.31, 0.06], np.float32))
    assert abs(float(probs.sum(dtype=np.float64)) - 1.0) < 1e-6
    assert probs[0] > probs[1] > probs[2]


def test_seed_sobel_responds_only_at_a_vertical_step_edge():
    image = np.zeros((1, 8, 8), np.float32)
    image[0, :, 4:] = 1.0                     # dark left half, bright right half: the edge is between columns 3, 4
    weights = sobel()                         # (2, 1, 3, 3): x then y derivative
    out = np.empty((2, 6, 6), np.float32)     # valid conv: 8 - 3 + 1
    K.conv2d(image, weights, np.zeros(2, np.float32), out, 1, 1, 1, 1, 1, 0, 0.0)
    x_response, y_response = out
    # Output column c is centred on input column c + 1: only centres 3 and 4 straddle the edge.
    edge_columns = [2, 3]
    assert np.all(x_response[:, edge_columns] == 4.0)  # 1 + 2 + 1 across the step, rising to the right
    assert np.all(np.delete(x_response, edge_columns, axis=1) == 0.0)
    assert np.all(y_response == 0.0)                   # no horizontal edge anywhere


def test_seed_output_sizes_valid_same_and_stride_2():
    rng = np.random.default_rng(4)
    image = rng.uniform(0, 1, (1, 4, 4)).astype(np.float32)
    weights = rng.uniform(-1, 1, (1, 1, 3, 3)).astype(np.float32)
    bias = np.zeros(1, np.float32)

    valid = np.empty((1, R.output_size(4, 3), R.output_size(4, 3)), np.float32)
    K.conv2d(image, weights, bias, valid, 1, 1, 1, 1, 1, 0, 0.0)
    assert valid.shape == (1, 2, 2)
    np.testing.assert_allclose(valid, R.conv2d(image, weights, bias), atol=1e-6)

    padded = np.zeros((1, 6, 6), np.float32)
    K.pad_into(image, padded, 1, 1)
    size_same = R.output_size(4, 3, 1, 1, 1)
    same = np.empty((1, size_same, size_same), np.float32)
    K.conv2d(padded, weights, bias, same, 1, 1, 1, 1, 1, 0, 0.0)
    assert same.shape == (1, 4, 4)
    np.testing.assert_allclose(same, R.conv2d(image, weights, bias, padding=1), atol=1e-6)

    size_half = R.output_size(4, 3, 2, 1, 1)
    halved = np.empty((1, size_half, size_half), np.float32)
    K.conv2d(padded, weights, bias, halved, 2, 2, 1, 1, 1, 0, 0.0)
    assert halved.shape == (1, 2, 2)
    np.testing.assert_allclose(halved, R.conv2d(image, weights, bias, stride=2, padding=1), atol=1e-6)
    np.testing.assert_allclose(halved, same[:, ::2, ::2], atol=1e-6)  # stride 2 = every other 'same' output
