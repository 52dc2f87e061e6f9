"""A trainable network built from a model config: batched forward and backward passes.

The config means the same to training as to the inference engine because the engine builds it: the layers are
made, checked, wired and shaped by stream_cnn.model (config.py, layers.py and the graph's layer builder), so a
bad config gives `train` the same ModelFileError as `inspect`. Each trainable layer here wraps one of those
built layer objects and reads what it resolved (kernel, stride, padding as (top, bottom, left, right), activation
code and alpha, input and output shapes, the shapes of its weight arrays); what it adds is what only training
needs: parameters and their gradients, the activations saved for backward, and the batched Numba kernels of
stream_cnn.train.kernels. Only sequential graphs (every layer reads the previous one) are trainable.
"""
from __future__ import annotations

import math

import numpy as np

from stream_cnn.model.config import ModelConfig
from stream_cnn.model.graph import INPUT, build_layers, check_labels
from stream_cnn.model.kernels import ACTIVATIONS
from stream_cnn.model.layers import LayerError
from stream_cnn.train import kernels as K

# Output activations after which a layer's weights get the variance-1 (Glorot-like) init instead of He's.
_UNIT_GAIN_ACTIVATIONS = tuple(ACTIVATIONS[name] for name in ("identity", "sigmoid", "tanh"))


class Layer:
    """One trainable layer over a built stream_cnn.model layer (`spec`), whose parameters it does not change.

    params / grads hold the arrays the model reads from its .npz (spec.weight_shapes), by the same names."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.name
        self.type = spec.type
        self.in_shape = spec.input_shapes[0]
        self.out_shape = spec.output_shape
        shapes = spec.weight_shapes(spec.input_shapes)
        self.params = {key: np.zeros(shape, np.float32) for key, shape in shapes.items()}
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}

    def init_params(self, rng: np.random.Generator) -> None:
        """Draw initial parameters (layers without parameters do nothing)."""

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _FusedActivation:
    """The activation (code spec.act, spec.alpha) a conv2d / dense / activation layer applies to its output."""

    def _activate(self, z: np.ndarray) -> np.ndarray:
        self._pre_activation = z
        if self.spec.act == K.IDENTITY:
            return z
        y = np.empty_like(z)
        K.activation_forward(z.reshape(-1), y.reshape(-1), self.spec.act, self.spec.alpha)
        return y

    def _activation_grad(self, grad: np.ndarray) -> np.ndarray:
        if self.spec.act == K.IDENTITY:
            return grad
        z = self._pre_activation
        grad_z = np.empty_like(z)
        K.activation_backward(z.reshape(-1), np.ascontiguousarray(grad).reshape(-1), grad_z.reshape(-1),
                              self.spec.act, self.spec.alpha)
        return grad_z


class _Affine(Layer, _FusedActivation):
    """conv2d and dense: weight, optional bias (`bias = false` has no bias array, as in the .npz)."""

    def _bias_and_grad(self):
        if "bias" in self.params:
            return self.params["bias"], self.grads["bias"]
        # the kernels always add a bias: give them zeros, and a gradient sink nobody reads
        weight = self.params["weight"]
        zeros = np.zeros(weight.shape[0], weight.dtype)
        return zeros, np.zeros_like(zeros)


class Conv2d(_Affine):
    def __init__(self, spec):
        super().__init__(spec)
        if spec.groups != 1 or spec.dilation != (1, 1):
            raise LayerError("training supports groups = 1 and dilation = 1 only")
        self.filters, self.kernel, self.stride, self.pads = spec.filters, spec.kernel, spec.stride, spec.pads

    def init_params(self, rng):
        # He initialisation: keeps the activation variance steady through ReLU layers
        fan_in = self.in_shape[0] * self.kernel[0] * self.kernel[1]
        self.params["weight"][...] = rng.normal(0.0, math.sqrt(2.0 / fan_in), self.params["weight"].shape)
        if "bias" in self.params:
            self.params["bias"][...] = 0

    def forward(self, x, training, rng=None):
        if self.stride == (1, 1):
            return self._activate(self._forward_wide(x))
        self._input = x
        out = np.empty((x.shape[0], *self.out_shape), x.dtype)
        bias, _ = self._bias_and_grad()
        K.conv2d_forward(x, self.params["weight"], bias, out, self.stride[0], self.stride[1], self.pads[0],
                         self.pads[2])
        return self._activate(out)

    def _forward_wide(self, x):
        """Stride 1: pad once, run the flat-row kernel (see kernels.conv2d_forward_wide), crop the scratch columns."""
        n_batch, c_in, h, w = x.shape
        top, bottom, left, right = self.pads
        hp, wp = h + top + bottom, w + left + right
        _, h_out, w_out = self.out_shape
        xp = np.zeros((n_batch, c_in, hp, wp), x.dtype)
        xp[:, :, top:top + h, left:left + w] = x
        self._padded = xp.reshape(n_batch, c_in, hp * wp)
        self._wide_length = (h_out - 1) * wp + w_out
        out_wide = np.empty((n_batch, self.filters, h_out * wp), x.dtype)
        forward = K.conv3x3_forward_wide if self.kernel == (3, 3) else K.conv2d_forward_wide
        bias, _ = self._bias_and_grad()
        forward(self._padded, self.params["weight"], bias, out_wide, wp, self._wide_length)
        return np.ascontiguousarray(out_wide.reshape(n_batch, self.filters, h_out, wp)[:, :, :, :w_out])

    def backward(self, grad):
        grad_z = np.ascontiguousarray(self._activation_grad(grad))
        _, grad_bias = self._bias_and_grad()
        if self.stride == (1, 1):
            return self._backward_wide(grad_z, grad_bias)
        K.conv2d_backward_params(self._input, grad_z, self.grads["weight"], grad_bias,
                                 self.stride[0], self.stride[1], self.pads[0], self.pads[2])
        grad_x = np.empty_like(self._input)
        K.conv2d_backward_input(grad_z, self.params["weight"], grad_x,
                                self.stride[0], self.stride[1], self.pads[0], self.pads[2])
        return grad_x

    def _backward_wide(self, grad_z, grad_bias):
        n_batch, c_in, hpwp = self._padded.shape
        top, bottom, left, right = self.pads
        _, h_out, w_out = self.out_shape
        wp = w_out + self.kernel[1] - 1
        hp = hpwp // wp
        grad_wide = np.zeros((n_batch, self.filters, h_out, wp), grad_z.dtype)
        grad_wide[:, :, :, :w_out] = grad_z  # zeros in the scratch columns keep them out of every sum
        grad_wide = grad_wide.reshape(n_batch, self.filters, h_out * wp)
        grad_xp = np.empty_like(self._padded)
        if self.kernel == (3, 3):
            K.conv3x3_backward_params_wide(self._padded, grad_wide, self.grads["weight"], grad_bias,
                                           wp, self._wide_length)
            # the gather form reads up to 2 * Wp + 2 cells before each input cell: give it a zero margin
            margin = 2 * wp + 2
            grad_ext = np.zeros((n_batch, self.filters, margin + hpwp), grad_z.dtype)
            grad_ext[:, :, margin:margin + self._wide_length] = grad_wide[:, :, :self._wide_length]
            K.conv3x3_backward_input_wide(grad_ext, self.params["weight"], grad_xp, wp)
        else:
            K.conv2d_backward_params_wide(self._padded, grad_wide, self.grads["weight"], grad_bias,
                                          wp, self._wide_length)
            K.conv2d_backward_input_wide(grad_wide, self.params["weight"], grad_xp, wp, self._wide_length)
        h, w = hp - top - bottom, wp - left - right
        return np.ascontiguousarray(grad_xp.reshape(n_batch, c_in, hp, wp)[:, :, top:top + h, left:left + w])


class Dense(_Affine):
    """Fully connected; a (C, H, W) input is flattened channel-major first, as the inference engine does."""

    def __init__(self, spec):
        super().__init__(spec)
        self.units = spec.units

    def init_params(self, rng):
        # He for ReLU-family outputs; Glorot-like 1/fan_in for the final (identity) logits layer
        gain = 1.0 if self.spec.act in _UNIT_GAIN_ACTIVATIONS else 2.0
        fan_in = self.params["weight"].shape[1]
        self.params["weight"][...] = rng.normal(0.0, math.sqrt(gain / fan_in), self.params["weight"].shape)
        if "bias" in self.params:
            self.params["bias"][...] = 0

    def forward(self, x, training, rng=None):
        self._input = x.reshape(x.shape[0], -1)
        out = np.empty((x.shape[0], self.units), x.dtype)
        bias, _ = self._bias_and_grad()
        K.dense_forward(self._input, self.params["weight"], bias, out)
        return self._activate(out)

    def backward(self, grad):
        grad_z = np.ascontiguousarray(self._activation_grad(grad))
        _, grad_bias = self._bias_and_grad()
        K.dense_backward_params(self._input, grad_z, self.grads["weight"], grad_bias)
        grad_x = np.empty_like(self._input)
        K.dense_backward_input(grad_z, self.params["weight"], grad_x)
        return grad_x.reshape(grad_x.shape[0], *self.in_shape)


class MaxPool(Layer):
    def forward(self, x, training, rng=None):
        spec = self.spec
        self._in_batch_shape = x.shape
        out = np.empty((x.shape[0], *self.out_shape), x.dtype)
        self._argmax = np.empty(out.shape, np.int64)
        K.max_pool_forward(x, out, self._argmax, *spec.kernel, *spec.stride, spec.pads[0], spec.pads[2])
        return out

    def backward(self, grad):
        grad_x = np.empty(self._in_batch_shape, grad.dtype)
        K.max_pool_backward(np.ascontiguousarray(grad), self._argmax, grad_x)
        return grad_x


class AvgPool(Layer):
    def forward(self, x, training, rng=None):
        spec = self.spec
        self._in_batch_shape = x.shape
        out = np.empty((x.shape[0], *self.out_shape), x.dtype)
        K.avg_pool_forward(x, out, *spec.kernel, *spec.stride, spec.pads[0], spec.pads[2])
        return out

    def backward(self, grad):
        spec = self.spec
        grad_x = np.empty(self._in_batch_shape, grad.dtype)
        K.avg_pool_backward(np.ascontiguousarray(grad), grad_x, *spec.kernel, *spec.stride, spec.pads[0],
                            spec.pads[2])
        return grad_x


class GlobalAvgPool(Layer):
    def forward(self, x, training, rng=None):
        self._in_batch_shape = x.shape
        out = np.empty(x.shape[:2], x.dtype)
        K.global_avg_pool_forward(x, out)
        return out

    def backward(self, grad):
        grad_x = np.empty(self._in_batch_shape, grad.dtype)
        K.global_avg_pool_backward(np.ascontiguousarray(grad), grad_x)
        return grad_x


class GlobalMaxPool(Layer):
    def forward(self, x, training, rng=None):
        self._in_batch_shape = x.shape
        out = np.empty(x.shape[:2], x.dtype)
        self._argmax = np.empty(x.shape[:2], np.int64)
        K.global_max_pool_forward(x, out, self._argmax)
        return out

    def backward(self, grad):
        grad_x = np.empty(self._in_batch_shape, grad.dtype)
        K.global_max_pool_backward(np.ascontiguousarray(grad), self._argmax, grad_x)
        return grad_x


class Flatten(Layer):
    def forward(self, x, training, rng=None):
        return x.reshape(x.shape[0], -1)  # C-order: channel-major, as ONNX Flatten

    def backward(self, grad):
        return grad.reshape(grad.shape[0], *self.in_shape)


class Activation(Layer, _FusedActivation):
    def forward(self, x, training, rng=None):
        return self._activate(np.ascontiguousarray(x))

    def backward(self, grad):
        return self._activation_grad(grad)


class Dropout(Layer):
    """Inverted dropout: scaled at training time so inference is the identity (as the inference engine does)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.rate = spec.rate
        self._mask = None

    def forward(self, x, training, rng=None):
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = rng.random(x.shape, dtype=np.float32) >= self.rate
        self._mask = keep.astype(x.dtype) / x.dtype.type(1 - self.rate)
        return x * self._mask

    def backward(self, grad):
        return grad if self._mask is None else grad * self._mask


class Softmax(Layer):
    """A final softmax: training folds it into the cross-entropy loss, so forward passes logits through."""

    def forward(self, x, training, rng=None):
        return x

    def backward(self, grad):
        return grad


LAYER_CLASSES = {
    "conv2d": Conv2d, "dense": Dense, "max_pool": MaxPool, "avg_pool": AvgPool,
    "global_avg_pool": GlobalAvgPool, "global_max_pool": GlobalMaxPool, "flatten": Flatten,
    "activation": Activation, "dropout": Dropout, "softmax": Softmax,
}


class Network:
    """The layers of a config in order; `forward` returns the last layer's output (logits for a classifier),
    `backward` takes d loss / d that output."""

    def __init__(self, config: ModelConfig):
        built, _, _ = build_layers(config)   # the inference engine's own parsing, checks and shapes
        self.layers: list[Layer] = []
        previous = INPUT
        for index, spec in enumerate(built):
            tag = (spec.name, spec.type)
            if spec.inputs != [previous]:
                raise config.error(f"reads {', '.join(spec.inputs)}; training supports sequential models only "
                                   f"(each layer reads the one before it, here '{previous}')", tag)
            if spec.type not in LAYER_CLASSES:
                raise config.error(f"training does not support this layer type; trainable types: "
                                   f"{', '.join(LAYER_CLASSES)}", tag)
            if spec.type == "softmax" and index != len(built) - 1:
                raise config.error("softmax is only trainable as the last layer (it is folded into the loss)", tag)
            try:
                self.layers.append(LAYER_CLASSES[spec.type](spec))
            except LayerError as err:
                raise config.error(err, tag) from None
            previous = spec.name
        self.input_shape = tuple(config.input_shape)
        self.output_shape = built[-1].output_shape
        self.flops = sum(spec.flops for spec in built)   # per sample, counted as `inspect` counts them

    def check_classifier(self, config: ModelConfig) -> int:
        """The number of classes; a ModelFileError unless the output is a vector of class scores that matches the
        config's [output] labels (checked in the inference engine's words, as loading the trained model would)."""
        return check_labels(config, self.layers[-1].name, self.output_shape, required_by="training")

    def init_params(self, rng: np.random.Generator) -> None:
        for layer in self.layers:
            layer.init_params(rng)

    def parameters(self):
        """(key, param, grad) triples; key is the `.npz` name `<layer>.<param>`."""
        for layer in self.layers:
            for pname, value in layer.params.items():
                yield f"{layer.name}.{pname}", value, layer.grads[pname]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value, _ in self.parameters()}

    def forward(self, x: np.ndarray, training: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training, rng)
        return x

    def backward(self, grad_logits: np.ndarray) -> None:
        grad = grad_logits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def predict(self, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Outputs (logits) for a whole array of inputs, in batches, inference mode."""
        scores = np.empty((len(x), *self.output_shape), np.float32)
        for start in range(0, len(x), batch_size):
            scores[start:start + batch_size] = self.forward(x[start:start + batch_size], training=False)
        return scores
