"""A trainable network built from the `[[layers]]` of a model config: batched forward and backward passes.

Each layer object holds its parameters and the activations it saved for backward; the maths lives in the Numba
kernels of stream_cnn.train.kernels. Only sequential graphs (every layer reads the previous one) are trainable.
"""
from __future__ import annotations

import math

import numpy as np

from stream_cnn.errors import ModelFileError
from stream_cnn.train import kernels as K

TRAINABLE_TYPES = (
    "conv2d", "dense", "max_pool", "avg_pool", "global_avg_pool", "global_max_pool",
    "flatten", "activation", "dropout", "softmax",
)


def _pair(value, what: str, layer: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    raise ModelFileError(f"layer {layer!r}: {what} must be an int or [h, w], got {value!r}")


def resolve_padding(padding, in_hw, kernel_hw, stride_hw, layer: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for "valid", "same" (ONNX SAME_UPPER: output = ceil(input / stride), the odd
    extra cell goes at the bottom / right), an int, or [top, bottom, left, right]."""
    if padding == "valid" or padding is None:
        return 0, 0, 0, 0
    if padding == "same":
        pads = []
        for size, k, s in zip(in_hw, kernel_hw, stride_hw):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        return pads[0][0], pads[0][1], pads[1][0], pads[1][1]
    if isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return padding, padding, padding, padding
    if isinstance(padding, list) and len(padding) == 4 and all(isinstance(p, int) and p >= 0 for p in padding):
        return tuple(padding)
    raise ModelFileError(f"layer {layer!r}: padding must be \"valid\", \"same\", an int or [t, b, l, r], got {padding!r}")


def _activation_code(name, layer: str) -> int:
    if name not in K.ACTIVATION_CODES:
        raise ModelFileError(f"layer {layer!r}: activation {name!r} cannot be trained; "
                             f"expected one of {sorted(K.ACTIVATION_CODES)}")
    return K.ACTIVATION_CODES[name]


class Layer:
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]

    def __init__(self, spec: dict, in_shape: tuple):
        self.name = spec["name"]
        self.type = spec["type"]
        self.in_shape = in_shape
        self.params, self.grads = {}, {}

    def init_params(self, rng: np.random.Generator) -> None:
        """Draw initial parameters (layers without parameters do nothing)."""

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _FusedActivation:
    """The `activation = "..."` a conv2d / dense layer applies to its own output."""

    def _setup_activation(self, spec: dict):
        self.act = _activation_code(spec.get("activation", "identity"), spec["name"])
        self.alpha = float(spec.get("alpha", 0.01))

    def _activate(self, z: np.ndarray) -> np.ndarray:
        self._pre_activation = z
        if self.act == K.IDENTITY:
            return z
        y = np.empty_like(z)
        K.activation_forward(z.reshape(-1), y.reshape(-1), self.act, self.alpha)
        return y

    def _activation_grad(self, grad: np.ndarray) -> np.ndarray:
        if self.act == K.IDENTITY:
            return grad
        z = self._pre_activation
        grad_z = np.empty_like(z)
        K.activation_backward(z.reshape(-1), np.ascontiguousarray(grad).reshape(-1), grad_z.reshape(-1),
                              self.act, self.alpha)
        return grad_z


class Conv2d(Layer, _FusedActivation):
    def __init__(self, spec, in_shape):
        super().__init__(spec, in_shape)
        if len(in_shape) != 3:
            raise ModelFileError(f"layer {self.name!r}: conv2d needs a (C, H, W) input, got {in_shape}")
        if spec.get("groups", 1) != 1 or _pair(spec.get("dilation", 1), "dilation", self.name) != (1, 1):
            raise ModelFileError(f"layer {self.name!r}: training supports groups = 1 and dilation = 1 only")
        c_in, h, w = in_shape
        self.filters = int(spec["filters"])
        self.kernel = _pair(spec.get("kernel", 3), "kernel", self.name)
        self.stride = _pair(spec.get("stride", 1), "stride", self.name)
        self.pads = resolve_padding(spec.get("padding", "valid"), (h, w), self.kernel, self.stride, self.name)
        top, bottom, left, right = self.pads
        h_out = (h + top + bottom - self.kernel[0]) // self.stride[0] + 1
        w_out = (w + left + right - self.kernel[1]) // self.stride[1] + 1
        if h_out < 1 or w_out < 1:
            raise ModelFileError(f"layer {self.name!r}: input {in_shape} is smaller than the kernel {self.kernel}")
        self.out_shape = (self.filters, h_out, w_out)
        self.has_bias = bool(spec.get("bias", True))
        self._setup_activation(spec)
        self.params = {"weight": np.zeros((self.filters, c_in, *self.kernel), np.float32),
                       "bias": np.zeros(self.filters, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def init_params(self, rng):
        # He initialisation: keeps the activation variance steady through ReLU layers
        fan_in = self.in_shape[0] * self.kernel[0] * self.kernel[1]
        self.params["weight"][...] = rng.normal(0.0, math.sqrt(2.0 / fan_in), self.params["weight"].shape)
        self.params["bias"][...] = 0

    def forward(self, x, training, rng=None):
        if self.stride == (1, 1):
            return self._activate(self._forward_wide(x))
        self._input = x
        out = np.empty((x.shape[0], *self.out_shape), x.dtype)
        K.conv2d_forward(x, self.params["weight"], self.params["bias"], out,
                         self.stride[0], self.stride[1], self.pads[0], self.pads[2])
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
        forward(self._padded, self.params["weight"], self.params["bias"], out_wide, wp, self._wide_length)
        return np.ascontiguousarray(out_wide.reshape(n_batch, self.filters, h_out, wp)[:, :, :, :w_out])

    def backward(self, grad):
        grad_z = np.ascontiguousarray(self._activation_grad(grad))
        if self.stride == (1, 1):
            grad_x = self._backward_wide(grad_z)
        else:
            K.conv2d_backward_params(self._input, grad_z, self.grads["weight"], self.grads["bias"],
                                     self.stride[0], self.stride[1], self.pads[0], self.pads[2])
            grad_x = np.empty_like(self._input)
            K.conv2d_backward_input(grad_z, self.params["weight"], grad_x,
                                    self.stride[0], self.stride[1], self.pads[0], self.pads[2])
        if not self.has_bias:
            self.grads["bias"][...] = 0
        return grad_x

    def _backward_wide(self, grad_z):
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
            K.conv3x3_backward_params_wide(self._padded, grad_wide, self.grads["weight"], self.grads["bias"],
                                           wp, self._wide_length)
            # the gather form reads up to 2 * Wp + 2 cells before each input cell: give it a zero margin
            margin = 2 * wp + 2
            grad_ext = np.zeros((n_batch, self.filters, margin + hpwp), grad_z.dtype)
            grad_ext[:, :, margin:margin + self._wide_length] = grad_wide[:, :, :self._wide_length]
            K.conv3x3_backward_input_wide(grad_ext, self.params["weight"], grad_xp, wp)
        else:
            K.conv2d_backward_params_wide(self._padded, grad_wide, self.grads["weight"], self.grads["bias"],
                                          wp, self._wide_length)
            K.conv2d_backward_input_wide(grad_wide, self.params["weight"], grad_xp, wp, self._wide_length)
        h, w = hp - top - bottom, wp - left - right
        return np.ascontiguousarray(grad_xp.reshape(n_batch, c_in, hp, wp)[:, :, top:top + h, left:left + w])


class Dense(Layer, _FusedActivation):
    def __init__(self, spec, in_shape):
        super().__init__(spec, in_shape)
        if len(in_shape) != 1:
            raise ModelFileError(f"layer {self.name!r}: dense needs a flat input (add a flatten layer), got {in_shape}")
        self.units = int(spec["units"])
        self.out_shape = (self.units,)
        self.has_bias = bool(spec.get("bias", True))
        self._setup_activation(spec)
        self.params = {"weight": np.zeros((self.units, in_shape[0]), np.float32),
                       "bias": np.zeros(self.units, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def init_params(self, rng):
        # He for ReLU-family outputs; Glorot-like 1/fan_in for the final (identity) logits layer
        gain = 1.0 if self.act in (K.IDENTITY, K.SIGMOID, K.TANH) else 2.0
        fan_in = self.in_shape[0]
        self.params["weight"][...] = rng.normal(0.0, math.sqrt(gain / fan_in), self.params["weight"].shape)
        self.params["bias"][...] = 0

    def forward(self, x, training, rng=None):
        self._input = x
        out = np.empty((x.shape[0], self.units), x.dtype)
        K.dense_forward(x, self.params["weight"], self.params["bias"], out)
        return self._activate(out)

    def backward(self, grad):
        grad_z = np.ascontiguousarray(self._activation_grad(grad))
        K.dense_backward_params(self._input, grad_z, self.grads["weight"], self.grads["bias"])
        if not self.has_bias:
            self.grads["bias"][...] = 0
        grad_x = np.empty_like(self._input)
        K.dense_backward_input(grad_z, self.params["weight"], grad_x)
        return grad_x


class _Pool2d(Layer):
    def __init__(self, spec, in_shape):
        super().__init__(spec, in_shape)
        if len(in_shape) != 3:
            raise ModelFileError(f"layer {self.name!r}: {self.type} needs a (C, H, W) input, got {in_shape}")
        c, h, w = in_shape
        self.kernel = _pair(spec.get("kernel", 2), "kernel", self.name)
        self.stride = _pair(spec.get("stride", list(self.kernel)), "stride", self.name)
        self.pads = resolve_padding(spec.get("padding", "valid"), (h, w), self.kernel, self.stride, self.name)
        top, bottom, left, right = self.pads
        h_out = (h + top + bottom - self.kernel[0]) // self.stride[0] + 1
        w_out = (w + left + right - self.kernel[1]) // self.stride[1] + 1
        if h_out < 1 or w_out < 1:
            raise ModelFileError(f"layer {self.name!r}: input {in_shape} is smaller than the window {self.kernel}")
        self.out_shape = (c, h_out, w_out)


class MaxPool(_Pool2d):
    def forward(self, x, training, rng=None):
        self._in_batch_shape = x.shape
        out = np.empty((x.shape[0], *self.out_shape), x.dtype)
        self._argmax = np.empty(out.shape, np.int64)
        K.max_pool_forward(x, out, self._argmax, *self.kernel, *self.stride, self.pads[0], self.pads[2])
        return out

    def backward(self, grad):
        grad_x = np.empty(self._in_batch_shape, grad.dtype)
        K.max_pool_backward(np.ascontiguousarray(grad), self._argmax, grad_x)
        return grad_x


class AvgPool(_Pool2d):
    def forward(self, x, training, rng=None):
        self._in_batch_shape = x.shape
        out = np.empty((x.shape[0], *self.out_shape), x.dtype)
        K.avg_pool_forward(x, out, *self.kernel, *self.stride, self.pads[0], self.pads[2])
        return out

    def backward(self, grad):
        grad_x = np.empty(self._in_batch_shape, grad.dtype)
        K.avg_pool_backward(np.ascontiguousarray(grad), grad_x, *self.kernel, *self.stride, self.pads[0], self.pads[2])
        return grad_x


class GlobalAvgPool(Layer):
    def __init__(self, spec, in_shape):
        super().__init__(spec, in_shape)
        if len(in_shape) != 3:
            raise ModelFileError(f"layer {self.name!r}: {self.type} needs a (C, H, W) input, got {in_shape}")
        self.out_shape = (in_shape[0],)

    def forward(self, x, training, rng=None):
        self._in_batch_shape = x.shape
        out = np.empty(x.shape[:2], x.dtype)
        K.global_avg_pool_forward(x, out)
        return out

    def backward(self, grad):
        grad_x = np.empty(self._in_batch_shape, grad.dtype)
        K.global_avg_pool_backward(np.ascontiguousarray(grad), grad_x)
        return grad_x


class GlobalMaxPool(GlobalAvgPool):
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
    def __init__(self, spec, in_shape):
        super().__init__(spec, in_shape)
        self.out_shape = (int(np.prod(in_shape)),)

    def forward(self, x, training, rng=None):
        return x.reshape(x.shape[0], -1)  # C-order: channel-major, as ONNX Flatten

    def backward(self, grad):
        return grad.reshape(grad.shape[0], *self.in_shape)


class Activation(Layer, _FusedActivation):
    def __init__(self, spec, in_shape):
        super().__init__(spec, in_shape)
        self.out_shape = in_shape
        self._setup_activation({"name": spec["name"], "activation": spec.get("function", "relu"),
                                "alpha": spec.get("alpha", 0.01)})

    def forward(self, x, training, rng=None):
        return self._activate(np.ascontiguousarray(x))

    def backward(self, grad):
        return self._activation_grad(grad)


class Dropout(Layer):
    """Inverted dropout: scaled at training time so inference is the identity (as the inference engine does)."""

    def __init__(self, spec, in_shape):
        super().__init__(spec, in_shape)
        self.out_shape = in_shape
        self.rate = float(spec.get("rate", 0.5))
        if not 0 <= self.rate < 1:
            raise ModelFileError(f"layer {self.name!r}: dropout rate must be in [0, 1), got {self.rate}")
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

    def __init__(self, spec, in_shape):
        super().__init__(spec, in_shape)
        self.out_shape = in_shape

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
    """The layers of a config in order; `forward` returns logits (N, K), `backward` takes d loss / d logits."""

    def __init__(self, layer_specs: list[dict], input_shape: tuple[int, int, int], source: str = "config"):
        self.layers: list[Layer] = []
        shape = tuple(input_shape)
        previous = "input"
        for index, spec in enumerate(layer_specs):
            name, kind = spec.get("name"), spec.get("type")
            if not isinstance(name, str) or kind is None:
                raise ModelFileError(f"{source}: layer #{index + 1} needs a name and a type")
            inputs = spec.get("inputs", [previous])
            if inputs != [previous]:
                raise ModelFileError(f"{source}: layer {name!r} reads {inputs}; training supports sequential models only")
            if kind not in LAYER_CLASSES:
                raise ModelFileError(f"{source}: layer {name!r} has type {kind!r}, which training does not support; "
                                     f"trainable types: {', '.join(TRAINABLE_TYPES)}")
            if kind == "softmax" and index != len(layer_specs) - 1:
                raise ModelFileError(f"{source}: layer {name!r}: softmax is only trainable as the last layer")
            try:
                layer = LAYER_CLASSES[kind](spec, shape)
            except (KeyError, TypeError, ValueError) as err:
                raise ModelFileError(f"{source}: layer {name!r}: bad or missing parameter ({err})") from None
            self.layers.append(layer)
            shape = layer.out_shape
            previous = name
        if len(shape) != 1:
            raise ModelFileError(f"{source}: the last layer must give a vector of class scores, got shape {shape}")
        self.input_shape = tuple(input_shape)
        self.n_outputs = shape[0]

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

    def load_state_dict(self, weights: dict[str, np.ndarray], source: str = "weights") -> None:
        for key, value, _ in self.parameters():
            if key not in weights:
                raise ModelFileError(f"{source}: missing array {key!r}")
            if weights[key].shape != value.shape:
                raise ModelFileError(f"{source}: {key} has shape {weights[key].shape}, expected {value.shape}")
            value[...] = weights[key]

    def forward(self, x: np.ndarray, training: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training, rng)
        return x

    def backward(self, grad_logits: np.ndarray) -> None:
        grad = grad_logits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def predict(self, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Class scores (logits) for a whole array of inputs, in batches, inference mode."""
        scores = np.empty((len(x), self.n_outputs), np.float32)
        for start in range(0, len(x), batch_size):
            scores[start:start + batch_size] = self.forward(x[start:start + batch_size], training=False)
        return scores

    def flops(self) -> int:
        """Multiply-adds x 2 of the conv and dense layers for one sample."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, (Conv2d, Dense)):
                total += 2 * layer.params["weight"].size * int(np.prod(layer.out_shape[1:] or (1,)))
        return total
