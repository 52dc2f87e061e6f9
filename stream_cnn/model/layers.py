"""Layer classes: plain objects holding their parameters and weights.

The contract every layer keeps (small on purpose):
- ``Layer(name, inputs=None, **params)`` validates its parameters (LayerError on a bad one);
  ``get_config()`` gives back a dict that ``make_layer`` turns into an equal layer (round trip).
- ``compute_output_shape(input_shapes)`` works out the output shape before anything runs;
  ``build(input_shapes)`` records it and the layer's ``n_params`` and ``flops``;
  ``weight_shapes(input_shapes)`` lists the arrays it needs from the .npz file.
- ``plan(runtime, input_names, inputs, out)`` emits the kernel calls of the forward pass, bound to preallocated
  buffers (the Model calls them in order; nothing is looked up or allocated per frame).
- ``reference_forward(inputs)`` computes the same output with the NumPy twin (reference.py), unfolded and unfused.

Shapes are (C, H, W) for feature maps and (N,) for vectors, without a batch axis. FLOPs count a multiply-add as
two operations (conv, dense) and one operation per element visited elsewhere.
"""
import math

import numpy as np

from stream_cnn._numba_cpu import wide_vectors
from stream_cnn.model import filters, kernels, reference
from stream_cnn.model.kernels import ACTIVATIONS

REQUIRED = object()      # parameter default meaning "must be given"
NOT_GIVEN = object()     # parameter default meaning "optional; absent means the callee's own default"


class LayerError(ValueError):
    """A bad layer parameter or shape; the Model adds the file and layer name to make a ModelFileError."""


# --- parameter parsing --------------------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _int(value, what, minimum=1) -> int:
    if not _is_int(value) or value < minimum:
        raise LayerError(f"'{what}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(value, what) -> float:
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool) \
            or not math.isfinite(value):
        raise LayerError(f"'{what}' must be a finite number, got {value!r}")
    return float(value)


def _pair(value, what, minimum=1) -> tuple:
    """int or [a, b] -> (a, b)."""
    if _is_int(value) and value >= minimum:
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) and v >= minimum for v in value):
        return int(value[0]), int(value[1])
    raise LayerError(f"'{what}' must be an integer >= {minimum} or [h, w], got {value!r}")


def _bool(value, what) -> bool:
    if not isinstance(value, bool):
        raise LayerError(f"'{what}' must be true or false, got {value!r}")
    return value


def _padding_spec(value):
    """'valid' | 'same' | int | [top, bottom, left, right] -> 'valid' | 'same' | (t, b, l, r)."""
    if value in ("valid", "same"):
        return value
    if _is_int(value) and value >= 0:
        return (int(value),) * 4
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_int(v) and v >= 0 for v in value):
        return tuple(int(v) for v in value)
    raise LayerError(f"'padding' must be \"valid\", \"same\", an integer >= 0 or [top, bottom, left, right], "
                     f"got {value!r}")


def resolve_padding(spec, in_hw, kernel, stride, dilation=(1, 1)) -> tuple:
    """Explicit (top, bottom, left, right) padding. "same" pads so the output is ceil(input / stride), the extra
    cell (odd total) going to the bottom / right like TensorFlow and ONNX SAME_UPPER."""
    if spec == "valid":
        return 0, 0, 0, 0
    if spec == "same":
        sides = []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            span = d * (k - 1) + 1
            out = -(-size // s)
            total = max((out - 1) * s + span - size, 0)
            sides.append((total // 2, total - total // 2))
        return sides[0][0], sides[0][1], sides[1][0], sides[1][1]
    return spec


def _activation(name, what="activation") -> int:
    if name not in ACTIVATIONS:
        raise LayerError(f"unknown {what} {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _axis_out(size, kernel, stride, before, after, dilation=1) -> int:
    return reference.output_size(size, kernel, stride, before, after, dilation)


def _fmt(shape) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"


# --- the base class -----------------------------------------------------------------------------------------

class Layer:
    type = ""
    PARAMS: dict = {}           # parameter name -> default (REQUIRED / NOT_GIVEN / a value)
    min_inputs, max_inputs = 1, 1   # max_inputs None = any number
    is_feature_map = False      # conv-like layers whose (C, H, W) output the live panel shows
    alias = False               # output is a view of the input (no kernel, no buffer of its own)
    fusable = False             # has run_act: a following activation can fuse into it

    def __init__(self, name, inputs=None, **params):
        self.name = name
        if inputs is not None:
            if isinstance(inputs, str):
                inputs = [inputs]
            if not isinstance(inputs, (list, tuple)) or not all(isinstance(v, str) for v in inputs):
                raise LayerError(f"'inputs' must be a list of layer names, got {inputs!r}")
            inputs = list(inputs)
        self.explicit_inputs = inputs is not None
        self.inputs = inputs
        unknown = [key for key in params if key not in self.PARAMS]
        if unknown:
            allowed = ", ".join(self.PARAMS) or "none"
            raise LayerError(f"unknown parameter '{unknown[0]}' (allowed: {allowed})")
        missing = [key for key, default in self.PARAMS.items() if default is REQUIRED and key not in params]
        if missing:
            raise LayerError(f"missing parameter '{missing[0]}'")
        self.given = dict(params)
        values = {key: params.get(key, default) for key, default in self.PARAMS.items()}
        self.configure(**values)
        self.input_shapes = None
        self.output_shape = None
        self.n_params = 0
        self.flops = 0

    def configure(self, **values):
        """Validate and store the parameters (subclasses)."""

    def get_config(self) -> dict:
        config = {"name": self.name, "type": self.type}
        if self.explicit_inputs:
            config["inputs"] = list(self.inputs)
        for key, value in self.given.items():
            config[key] = list(value) if isinstance(value, tuple) else value
        return config

    def check_input_count(self, count):
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            if self.max_inputs == self.min_inputs:
                wanted = str(self.min_inputs)
            elif self.max_inputs is None:
                wanted = f"at least {self.min_inputs}"
            else:
                wanted = f"{self.min_inputs} to {self.max_inputs}"
            raise LayerError(f"takes {wanted} input(s), got {count}")

    def compute_output_shape(self, input_shapes) -> tuple:
        raise NotImplementedError

    def weight_shapes(self, input_shapes) -> dict:
        """Arrays this layer reads from the .npz: param name -> shape."""
        return {}

    def count_flops(self) -> int:
        return int(np.prod(self.output_shape))

    def build(self, input_shapes):
        input_shapes = [tuple(int(v) for v in shape) for shape in input_shapes]
        self.check_input_count(len(input_shapes))
        shape = tuple(int(v) for v in self.compute_output_shape(input_shapes))
        if any(v <= 0 for v in shape):
            raise LayerError(f"output shape would be {_fmt(shape)} from input {_fmt(input_shapes[0])}: "
                             "the window is larger than the (padded) input")
        self.input_shapes = input_shapes
        self.output_shape = shape
        self.n_params = sum(int(np.prod(s)) for s in self.weight_shapes(input_shapes).values())
        self.flops = int(self.count_flops())

    def set_weights(self, arrays: dict):
        """Receive the checked arrays named in weight_shapes (keys without the layer-name prefix)."""

    def reset_runtime(self):
        """Undo fusions before the Model plans the forward pass again."""

    def reference_forward(self, inputs):
        raise NotImplementedError

    def plan(self, runtime, input_names, inputs, out):
        raise NotImplementedError

    def padded_read(self, index):
        """How this layer's planned kernels read input `index`: (pads, fill) if through a padded copy of it
        (runtime.padded), "offset" if they can read the map inside a padded buffer given its corner, None if
        they need the plain map. The Model keeps a map in its readers' padded buffer only when all agree."""
        return None

    def _need_map(self, shape):
        if len(shape) != 3:
            raise LayerError(f"needs a (C, H, W) feature map input, got shape {_fmt(shape)}")
        return shape

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} -> {self.output_shape}>"


# --- convolution --------------------------------------------------------------------------------------------

class _ConvBase(Layer):
    is_feature_map = True
    fusable = True

    def _configure_geometry(self, stride, padding, dilation, activation, alpha):
        self.stride = _pair(stride, "stride")
        self.padding = _padding_spec(padding)
        self.dilation = _pair(dilation, "dilation")
        self.act = _activation(activation)
        self.alpha = _number(alpha, "alpha")
        self.pads = (0, 0, 0, 0)

    def _conv_output_shape(self, in_shape, filters, kernel):
        c, h, w = self._need_map(in_shape)
        self.pads = resolve_padding(self.padding, (h, w), kernel, self.stride, self.dilation)
        top, bottom, left, right = self.pads
        return (filters,
                _axis_out(h, kernel[0], self.stride[0], top, bottom, self.dilation[0]),
                _axis_out(w, kernel[1], self.stride[1], left, right, self.dilation[1]))

    def count_flops(self):
        c_out, h, w = self.output_shape
        return 2 * c_out * h * w * (self.input_shapes[0][0] // self.groups) * self.kernel[0] * self.kernel[1]

    def reset_runtime(self):
        self.run_act, self.run_alpha = self.act, self.alpha
        self.run_weight = self.weight
        self.run_bias = self.bias if self.bias is not None else np.zeros(self.weight.shape[0], np.float32)

    def fold_batchnorm(self, scale, shift):
        """Fold y = scale * conv(x) + shift into the weights (float64 arithmetic, stored as float32)."""
        shape = (-1,) + (1,) * (self.run_weight.ndim - 1)
        self.run_weight = np.ascontiguousarray(
            (self.run_weight.astype(np.float64) * scale.reshape(shape)).astype(np.float32))
        self.run_bias = np.ascontiguousarray(
            (self.run_bias.astype(np.float64) * scale + shift).astype(np.float32))

    # Flat-plane 3x3 conv (kernels.conv3x3_flat) up to this many accumulator values per output plane: beyond
    # that its four accumulators stop fitting in L2 and the row kernels of conv2d are as fast.
    FLAT_MAX_PLANE = 16384

    def flat_eligible(self):
        """True if the conv can run as kernels.conv3x3_flat (3x3, stride 1, no dilation, no groups, at least 4
        filters, modest map), which can also fuse a following 2x2 max pool."""
        if self.kernel != (3, 3) or self.stride != (1, 1) or self.dilation != (1, 1) or self.groups != 1 \
                or self.output_shape[0] < 4:
            return False
        top, bottom, left, right = self.pads
        return self.output_shape[1] * (self.input_shapes[0][2] + left + right) <= self.FLAT_MAX_PLANE

    def _flat_pays(self):
        """Whether conv3x3_flat beats conv2d's row kernels for this layer on its own (fused with a pool it always
        does). Measured side by side: flat is 2x faster on narrow maps (14x14, 7x7: the rows are shorter than a
        SIMD vector) and 1.1-1.4x with one to eight input channels; even on 16-32 wide maps with 16-32 channels;
        slower with an output channel count that is not a multiple of its 4-channel blocks (classifier heads)."""
        c_out, _, out_w = self.output_shape
        return self.input_shapes[0][0] <= 8 or (out_w < 16 and c_out % 4 == 0)

    pooled_2x2 = False   # set by the Model when the 2x2 max pool after this conv runs inside its kernel

    def _read_pads(self):
        """The border the planned kernels read the input with: the pads, except that a conv whose 2x2 max pool
        runs fused as winograd_conv_pooled never reads the last padded row under an odd-high output (the pool
        drops the conv's last row) nor the last padded column beside an odd-wide one, so its padded input stops
        before them: 2 x tiles + 2 rows and columns, what winograd's flat input transform takes."""
        top, bottom, left, right = self.pads
        _, height, width = self.output_shape
        if self.pooled_2x2 and self._winograd_eligible(height // 2, width // 2, 2):
            bottom -= 1 if height % 2 and bottom else 0
            right -= 1 if width % 2 and right else 0
        return top, bottom, left, right

    def padded_read(self, index):
        if any(self.pads):
            return self._read_pads(), 0.0
        if self.kernel == (1, 1) and self.groups == 1 and self.stride != (1, 1):
            return "offset"   # read through subsample_into, which takes the map's corner
        return None

    def _padded_input(self, runtime, input_names, inputs):
        x = inputs[0]
        if any(self.pads):
            x = runtime.padded(input_names[0], x, self._read_pads(), 0.0)
        return x

    # Map widths on which a depthwise 3x3 "same" conv reads its unpadded input (kernels.depthwise3x3_same)
    # instead of a padded copy. Its vector loop covers the W - 2 inner columns: measured pad + conv -> same
    # 16x60x60 27.3 -> 22.7 us, 32x30x30 19.4 -> 17.0, 64x15x15 18.5 -> 17.6, 32x28x28 16.2 -> 14.9; but when W is
    # a multiple of 8 the padded conv's loop has no scalar tail and the W - 2 loop does (16x48x48 15.7 -> 19.9,
    # 32x32x32 15.1 -> 22.3), and on 8x8 maps the row set-up dominates (128x8x8 7.4 -> 17).
    # With 16-float vectors (stream_cnn._numba_cpu) the W - 2 loop leaves a longer scalar tail and the balance moves:
    # same vs pad + conv measured 8x60x60 15.2 vs 13.0 us, 16x60x60 29.0 vs 25.6, 64x15x15 45 vs 16.6, 32x28x28 19.8
    # vs 14.8, 64x14x14 40.5 vs 14.3, but 32x30x30 15.9 vs 23.4: there only widths that leave 14 columns after
    # whole 16-lane vectors (W % 16 == 14) read the unpadded map.
    # With 16-float vectors kernels.depthwise3x3_same_flat (one vector loop over the flat unpadded plane, the
    # window-crossing edges recomputed) beats both from 15 wide on: measured against pad + conv 16x60x60 22.5 ->
    # 18.0 us, 32x30x30 15.4 -> 13.0 (depthwise3x3_same 14.8), 64x15x15 14.3 -> 11.8; on 8x8 maps its edges are
    # half the map (128x8x8 9.2 -> 13.5), so not there.
    DEPTHWISE_SAME_MIN_WIDTH = 15
    # With 16-float vectors, since depthwise3x3_flat runs in 16-position blocks and pad_into copies 8- to 15-wide
    # rows in 8-float blocks, a pad copy + depthwise3x3_flat beats depthwise3x3_same_flat on 15-wide maps: measured
    # 64x15x15 10.2 -> 1.9 + 7.0 us, 32x15x15 5.3 -> 1.0 + 3.7 (on 30x30 it does not: 32x30x30 11.0 vs 3.7 + 7.4
    # with depthwise3x3_rows).
    DEPTHWISE_SAME_FLAT_MIN_WIDTH = 16

    def _depthwise_same(self, runtime, x):
        """The kernel (kernels.depthwise3x3_same or depthwise3x3_same_flat) the layer runs as on x as it is, or
        None (also when x already lives in a padded buffer: then reading that is free)."""
        if not (self.kernel == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == x.shape[0] and tuple(self.pads) == (1, 1, 1, 1)
                and x.shape[2] >= self.DEPTHWISE_SAME_MIN_WIDTH and x.shape[1] >= 2
                and runtime.interior(x) is None):
            return None
        if wide_vectors():
            return kernels.depthwise3x3_same_flat if x.shape[2] >= self.DEPTHWISE_SAME_FLAT_MIN_WIDTH else None
        return kernels.depthwise3x3_same if x.shape[2] % 8 != 0 else None

    def plan(self, runtime, input_names, inputs, out):
        same = self._depthwise_same(runtime, inputs[0])
        if same is kernels.depthwise3x3_same:
            runtime.step(kernels.depthwise3x3_same, inputs[0], self.run_weight, self.run_bias, out,
                         runtime.scratch(inputs[0].shape[2]), self.run_act, self.run_alpha)
            return
        if same is not None:
            own_act = self.run_act in kernels.FLAT_ACTIVATIONS
            runtime.step(kernels.depthwise3x3_same_flat, inputs[0], self.run_weight, self.run_bias, out,
                         self.run_act if own_act else 0, self.run_alpha)
            if not own_act:
                runtime.step(kernels.activation, out, out, self.run_act, self.run_alpha)
            return
        x = self._padded_input(runtime, input_names, inputs)
        if self._strided16_pays(runtime, x, out):
            # reads every other pixel itself (from the map's corner in its padded buffer): no subsample copy
            source, top, left = runtime.storage(x)
            own_act = self.run_act in kernels.FLAT_ACTIVATIONS
            runtime.step(kernels.pointwise_strided16, source, kernels.pointwise_tiled16_weights(self.run_weight),
                         self.run_bias, out, top, left, self.run_act if own_act else 0, self.run_alpha)
            if not own_act:
                runtime.step(kernels.activation, out, out, self.run_act, self.run_alpha)
            return
        if self.kernel == (1, 1) and self.groups == 1 and self.stride != (1, 1):
            # A strided 1x1 conv reads every other pixel: gathers in the inner loop ran at ~6 GMAC/s. Copying
            # the pixels it reads into a dense map first (one gather per input value, not one per MAC) lets the
            # stride-1 pointwise path run on it (Xception shortcuts: 19 -> ~5 us).
            key = (input_names[0], self.pads)
            x = runtime.subsampled(key, x, self.stride[0], self.stride[1], out.shape[1], out.shape[2])
            self._plan_pointwise(runtime, x, out)
            return
        if self.kernel == (1, 1) and self.groups == 1 and not any(self.pads):
            self._plan_pointwise(runtime, x, out)
            return
        if self._patches_pay(out.shape[1] * out.shape[2]):
            self._plan_patches(runtime, x, out, 1)
            return
        if self._channels_last_pays(out.shape[1] * out.shape[2]):
            runtime.step(kernels.conv_channels_last, x, kernels.channels_last_weights(self.run_weight),
                         self.run_bias, out, runtime.scratch(x.size), self.run_act, self.run_alpha)
            return
        if self._depthwise_flat_pays(x, out):
            own_act = self.run_act in kernels.FLAT_ACTIVATIONS
            runtime.step(kernels.depthwise3x3_flat, x, self.run_weight, self.run_bias, out,
                         runtime.scratch(kernels.depthwise_flat_scratch_size(out.shape[1], x.shape[2])),
                         self.run_act if own_act else 0, self.run_alpha)
            if not own_act:
                runtime.step(kernels.activation, out, out, self.run_act, self.run_alpha)
            return
        if self._conv3x3_tiled_fits():
            # out may be the interior of its readers' padded buffer (writes_at_offset): then it writes there
            target, top, left = runtime.storage(out)
            runtime.step(kernels.conv3x3_tiled, x, kernels.conv3x3_tiled_weights(self.run_weight), self.run_bias,
                         target, top, left, self.run_act, self.run_alpha)
            return
        if self._depthwise_rows_fits(x, out):
            runtime.step(kernels.depthwise3x3_rows, x, self.run_weight, self.run_bias, out, self.run_act,
                         self.run_alpha)
            return
        if self.flat_eligible() and self._flat_pays():
            scratch = runtime.scratch(kernels.flat_scratch_size(x.shape[1] - 2, x.shape[2]))
            own_act = self.run_act in kernels.FLAT_ACTIVATIONS
            target, top, left = runtime.storage(out)
            if target is not out:   # out is the interior of its readers' padded buffer (writes_at_offset)
                runtime.step(kernels.conv3x3_flat_into, x, self.run_weight, self.run_bias, target, scratch, top,
                             left, self.run_act, self.run_alpha)
                return
            runtime.step(kernels.conv3x3_flat, x, self.run_weight, self.run_bias, out, scratch, 1,
                         self.run_act if own_act else 0, self.run_alpha)
            if not own_act:   # sigmoid, tanh, gelu: in place on the output while it is in cache
                runtime.step(kernels.activation, out, out, self.run_act, self.run_alpha)
            return
        if self._depthwise_s2_tiled16_fits(runtime, x, out):
            runtime.step(kernels.depthwise3x3_s2_tiled16, x, self.run_weight, self.run_bias, out, self.run_act,
                         self.run_alpha)
            return
        if self._conv3x3_s2_tiled16_fits(runtime, x, out):
            runtime.step(kernels.conv3x3_s2_tiled16, x, kernels.conv3x3_s2_tiled16_weights(self.run_weight),
                         self.run_bias, out, self.run_act, self.run_alpha)
            return
        runtime.step(kernels.conv2d, x, self.run_weight, self.run_bias, out, self.stride[0], self.stride[1],
                     self.dilation[0], self.dilation[1], self.groups, self.run_act, self.run_alpha)

    # Input channels up to which a 3x3 stride-2 conv runs as kernels.conv3x3_s2_tiled16 (16-channel x 16-column
    # register tiles, the stride-2 columns split in registers) instead of conv2d's gathering stride-2 path:
    # measured the MobileNet stem 3 -> 16 channels on 97x97 -> 48x48 53 -> 12-14 us. More input channels were not
    # measured (no model has them), hence the bound.
    CONV3X3_S2_TILED16_MAX_CHANNELS = 8

    def _depthwise_s2_tiled16_fits(self, runtime, x, out):
        """True if plan() runs the layer (on its padded input x) as kernels.depthwise3x3_s2_tiled16 (16-float
        vectors only; out must be a plain map): conv2d's depthwise stride-2 loop reads its taps as gathers;
        measured 32x49x49 -> 24x24 18.0 -> 9.2 us, 64x25x25 -> 12x12 13.4 -> 4.7, 96x13x13 -> 6x6 9.2 -> 3.7."""
        return (wide_vectors() and self.kernel == (3, 3) and self.stride == (2, 2) and self.dilation == (1, 1)
                and self.groups == x.shape[0] and out.shape[0] == x.shape[0]
                and x.shape[1] >= 2 * out.shape[1] + 1 and x.shape[2] >= 2 * out.shape[2] + 1
                and self.run_act in kernels.FLAT_ACTIVATIONS and runtime.storage(out)[0] is out)

    def _conv3x3_s2_tiled16_fits(self, runtime, x, out):
        """True if plan() runs the layer (on its padded input x) as kernels.conv3x3_s2_tiled16 (16-float vectors
        only; out must be a plain map, at least 16 channels and 16 columns)."""
        return (wide_vectors() and self.kernel == (3, 3) and self.stride == (2, 2) and self.dilation == (1, 1)
                and self.groups == 1 and x.shape[0] <= self.CONV3X3_S2_TILED16_MAX_CHANNELS
                and out.shape[0] >= kernels.POINTWISE16_TILE and out.shape[2] >= kernels.POINTWISE16_TILE
                and x.shape[1] >= 2 * out.shape[1] + 1 and x.shape[2] >= 2 * out.shape[2] + 1
                and self.run_act in kernels.FLAT_ACTIVATIONS and runtime.storage(out)[0] is out)

    # 3x3 stride-1 convs with maps at least this wide run as kernels.conv3x3_tiled (4 output channels x 2 rows x
    # 32 columns of sums held in registers): measured against conv3x3_flat(_into) 8 -> 8 channels on 60x60 39.5 ->
    # 26.8 us, 1 -> 8 on 62x62 9.6 -> 5.5, 8 -> 16 on 32x32 25.7 -> 14.4. Narrower maps do not fill its tile.
    CONV3X3_TILED_MIN_WIDTH = 32

    def _conv3x3_tiled_fits(self):
        """True if plan() runs the layer as kernels.conv3x3_tiled."""
        c_out, out_h, out_w = self.output_shape
        return (self.kernel == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and c_out >= 4 and out_h >= 2 and out_w >= self.CONV3X3_TILED_MIN_WIDTH
                and self.run_act in kernels.FLAT_ACTIVATIONS)

    # 1x1 convs with maps at least this wide (and two rows) can write into their readers' padded buffer
    # (kernels.pointwise_rows_into, 8 -> 16 channels on 60x60 9.7 us against pointwise_tiled's 9.3): a depthwise
    # 3x3 conv reading it then runs on the padded map (conv2d 16x60x60 ~12 us) instead of recomputing the edges of
    # the unpadded one (depthwise3x3_same_flat ~16-18 us).
    POINTWISE_INTO_MIN_WIDTH = 32

    def writes_at_offset(self):
        """True if plan() runs a kernel that can write this layer's (unpooled) output inside a bigger padded
        buffer: kernels.pointwise_rows_into for 1x1 convs on wide maps, kernels.conv3x3_tiled, or
        kernels.conv3x3_flat_into for flat 3x3 convs applying their own activation (the branches of plan() before
        those must not take the layer)."""
        c_out, out_h, out_w = self.output_shape
        if self.kernel == (1, 1) and self.groups == 1 and not any(self.pads) and self.dilation == (1, 1):
            return (c_out >= 4 and out_h >= 2 and out_w >= self.POINTWISE_INTO_MIN_WIDTH
                    and self.run_act in kernels.FLAT_ACTIVATIONS)
        if not ((self.flat_eligible() and self._flat_pays()) or self._conv3x3_tiled_fits()) \
                or self.run_act not in kernels.FLAT_ACTIVATIONS:
            return False
        pixels = self.output_shape[1] * self.output_shape[2]
        c_in, height, width = self.input_shapes[0]
        top, bottom, left, right = self.pads
        return (not self._patches_pay(pixels) and not self._channels_last_pays(pixels)
                and self.groups != c_in   # one input channel: plan() may take a depthwise kernel
                and self.output_shape[1] == height + top + bottom - 2
                and self.output_shape[2] == width + left + right - 2)

    # Output widths below which a depthwise 3x3 stride-1 conv runs as kernels.depthwise3x3_flat (one vector loop
    # over the flat padded plane) instead of conv2d's row loops: with 16-float vectors a row under 16 wide is all
    # scalar tail (measured 64x15x15 12.2 -> 8.5 us, 128x8x8 8.9 -> 6.4; 32x30x30 11.4 vs 12.1, so not there).
    # With 8-float vectors (STREAM_CNN_VECTOR_WIDTH=256) an 8-wide row is one whole vector and the row loops win
    # (128x8x8 6.1 vs 7.8 us, 64x8x8 3.4 vs 4.6) while 15-wide rows still gain (32x15x15 9.1 -> 5.4).
    DEPTHWISE_FLAT_MAX_WIDTH = 24

    def _depthwise_flat_pays(self, x, out):
        """True if the layer (on its padded input x) runs as kernels.depthwise3x3_flat."""
        return (self.kernel == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == x.shape[0] and out.shape[2] < self.DEPTHWISE_FLAT_MAX_WIDTH
                and (wide_vectors() or out.shape[2] % 8 != 0)
                and x.shape[1] == out.shape[1] + 2 and x.shape[2] == out.shape[2] + 2)

    def _depthwise_rows_fits(self, x, out):
        """True if the layer (on its padded input x, not taken by depthwise3x3_flat) runs as
        kernels.depthwise3x3_rows instead of conv2d: where conv2d's row loop would leave a scalar tail of 13 to 15
        columns after its 16-float vectors. Its blocks cost more per vector than conv2d's loop, so elsewhere it
        loses; measured (no activation / relu) 16x30x30 4.6 / 5.4 -> 4.0 / 4.0 us, 32x30x30 8.7 / 10.4 -> 7.6 /
        7.7, but 32x28x28 6.1 / 7.7 -> 7.0 / 7.1, 16x60x60 11.4 / 13.7 -> 13.9 / 13.7, 16x48x48 6.8 / 8.5 -> 8.5 /
        8.4. Not measured with 8-float vectors."""
        return (wide_vectors() and self.kernel == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == x.shape[0] and out.shape[2] >= 16 and out.shape[2] % 16 >= 13
                and out.shape[1] >= 2
                and self.run_act in kernels.FLAT_ACTIVATIONS
                and x.shape[1] == out.shape[1] + 2 and x.shape[2] == out.shape[2] + 2)

    # Pixels up to which a 1x1 conv runs as kernels.pointwise_small (dot products along the channels) rather than
    # conv2d's loops along the pixels: measured 5x faster at 16 pixels, 1.3-1.8x at 64, slower at 225. Since
    # conv2d's pointwise loops use FMAs, start from the bias and fuse relu (16-float vectors), on 64 pixels
    # pointwise_small only wins from 64 input channels on: 32 -> 64 channels on 8x8 7.9 vs 5.2 us (conv2d),
    # 64 -> 128 18.0 vs 18.2, 128 -> 128 24.4 vs 36.6; on 16 pixels it still wins (64 -> 128 on 4x4 5.4 vs 11.5).
    POINTWISE_SMALL_MAX_PIXELS = 64
    POINTWISE_SMALL_MIN_CHANNELS = 64   # input channels from which it also runs on more than 16 pixels

    # Pixels from which a 1x1 conv runs as kernels.pointwise_tiled (4 output channels x 64 pixels of sums held in
    # registers): measured against conv2d / pointwise_small 128 -> 128 channels on 8x8 33 / 24 -> 11 us, 64 -> 128
    # on 8x8 17 / 18 -> 6.1, 64 -> 64 on 15x15 21.5 -> 11.9, 32 -> 32 on 30x30 18.4 -> 12.5, 16 -> 16 on 60x60
    # 19.4 -> 14.9, 8 -> 16 on 60x60 9.8 -> 9.4. Below 64 pixels its tile does not fit the map.
    POINTWISE_TILED_MIN_PIXELS = 64

    # Output rows from which a 1x1 stride-2 conv runs as kernels.pointwise_strided16 (16-output tiles within a row)
    # instead of subsample_into + a stride-1 kernel: 8 -> 16 channels to 30x30 1.6 + 2.4 -> 2.6 us, 16 -> 32 to
    # 15x15 1.1 + 2.0 -> 2.2; on rows of 8 or 4 outputs half or more of its lanes idle (32 -> 64 to 8x8 0.9 + 1.8 vs
    # 3.6, 64 -> 128 to 4x4 0.9 + 1.9 vs 7.0).
    STRIDED16_MIN_WIDTH = 15

    def _strided16_pays(self, runtime, x, out):
        """True if plan() runs the layer as kernels.pointwise_strided16 (reading x, or the padded buffer x lives
        in, at stride 2; out must be a plain map)."""
        return (self.kernel == (1, 1) and self.groups == 1 and self.stride == (2, 2) and self.dilation == (1, 1)
                and not any(self.pads) and out.shape[2] >= self.STRIDED16_MIN_WIDTH
                and self._tiled16_pays(x.shape[0], out.shape[0], kernels.POINTWISE16_TILE)
                and runtime.storage(out)[0] is out)

    @staticmethod
    def _tiled16_pays(c_in, c_out, pixels):
        """True if a stride-1 1x1 conv runs as kernels.pointwise_tiled16 (tiles of 16 channels x 16 pixels): with
        16-float vectors, at least 16 output channels and pixels, except maps of whole 64-pixel tiles with many
        input channels, where pointwise_tiled stays ahead (see conv.py: 128 -> 128 on 8x8 11.2 vs 12.1 us)."""
        return (wide_vectors() and c_out >= kernels.POINTWISE16_TILE and pixels >= kernels.POINTWISE16_TILE
                and not (pixels % 64 == 0 and c_in >= 64))

    def _plan_pointwise(self, runtime, x, out):
        """A stride-1 unpadded 1x1 conv of x into out (x already subsampled for a strided one)."""
        pixels = out.shape[1] * out.shape[2]
        target, top, left = runtime.storage(out)
        if target is not out:   # out is the interior of its readers' padded buffer (writes_at_offset)
            if self._tiled16_pays(x.shape[0], out.shape[0], pixels):   # maps >= 32 wide: whole 16-pixel tiles
                runtime.step(kernels.pointwise_rows16_into, x, kernels.pointwise_tiled16_weights(self.run_weight),
                             self.run_bias, target, top, left, self.run_act, self.run_alpha)
                return
            runtime.step(kernels.pointwise_rows_into, x, kernels.pointwise_tiled_weights(self.run_weight),
                         self.run_bias, target, top, left, self.run_act, self.run_alpha)
            return
        if self._tiled16_pays(x.shape[0], out.shape[0], pixels):
            own_act = self.run_act in kernels.FLAT_ACTIVATIONS
            runtime.step(kernels.pointwise_tiled16, x, kernels.pointwise_tiled16_weights(self.run_weight),
                         self.run_bias, out, self.run_act if own_act else 0, self.run_alpha)
            if not own_act:
                runtime.step(kernels.activation, out, out, self.run_act, self.run_alpha)
            return
        if pixels >= self.POINTWISE_TILED_MIN_PIXELS and out.shape[0] >= 4:
            own_act = self.run_act in kernels.FLAT_ACTIVATIONS
            runtime.step(kernels.pointwise_tiled, x, kernels.pointwise_tiled_weights(self.run_weight),
                         self.run_bias, out, self.run_act if own_act else 0, self.run_alpha)
            if not own_act:
                runtime.step(kernels.activation, out, out, self.run_act, self.run_alpha)
            return
        if 4 <= pixels <= self.POINTWISE_SMALL_MAX_PIXELS and out.shape[0] >= 4 \
                and (pixels <= 16 or x.shape[0] >= self.POINTWISE_SMALL_MIN_CHANNELS):
            runtime.step(kernels.pointwise_small, x, self.run_weight, self.run_bias, out,
                         runtime.scratch(x.shape[0] * pixels), self.run_act, self.run_alpha)
            return
        runtime.step(kernels.conv2d, x, self.run_weight, self.run_bias, out, 1, 1, 1, 1, 1, self.run_act,
                     self.run_alpha)

    def _patches_pay(self, pixels):
        """Whether kernels.conv_patches is the fastest way to compute `pixels` outputs per channel: few pixels
        (<= 64, where flat planes are short loops), enough filters for its 4-channel blocks to be full (>= 8)
        and a long enough dot product (C_in * kh * kw >= 64; measured 16->32 channels on 7x7: 11.6 -> 7.8 us,
        but 128 -> 7 channels on 4x4 slower, the patch copy dominating)."""
        c_in = self.input_shapes[0][0]
        return (self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.run_act in kernels.FLAT_ACTIVATIONS and self.output_shape[0] >= 8
                and 4 <= pixels <= 64 and c_in * self.kernel[0] * self.kernel[1] >= 64)

    def _channels_last_pays(self, pixels):
        """Whether kernels.conv_channels_last is the fastest way to compute this layer (where conv_patches does
        not pay, e.g. fewer than 8 filters): a few pixels per channel (4-64), a long dot product (C_in * kh * kw
        >= 64) and at least 4 filters, like a classifier head (measured 3x3 128 -> 7 on 4x4: conv2d 33 us,
        conv_channels_last 8.5; 64 -> 7 on 8x8: 49 -> 13)."""
        c_in = self.input_shapes[0][0]
        return (self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.kernel != (1, 1) and self.output_shape[0] >= 4
                and 4 <= pixels <= 64 and c_in * self.kernel[0] * self.kernel[1] >= 64)

    def _plan_patches(self, runtime, x, out, pool):
        c_out, out_h, out_w = out.shape
        size = kernels.patches_scratch_size(x.shape[0], self.kernel[0], self.kernel[1], c_out, out_h, out_w, pool)
        runtime.step(kernels.conv_patches, x, self.run_weight, self.run_bias, out, runtime.scratch(size), pool,
                     self.run_act, self.run_alpha)

    def _winograd_eligible(self, out_h, out_w, pool):
        """True if kernels.winograd_conv can compute this layer (3x3, stride 1, no dilation, no groups, >= 4
        filters, an activation it applies itself, a map whose bands fit its scratch layout)."""
        return (self.kernel == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.output_shape[0] >= 4 and self.run_act in kernels.FLAT_ACTIVATIONS
                and kernels.winograd_fits(out_h, out_w, pool))

    def pooled_writes_at_offset(self, pooled_shape):
        """True if plan_pooled() runs a kernel that can write the pooled map inside a bigger (padded) buffer."""
        return self._winograd_eligible(pooled_shape[1], pooled_shape[2], 2)

    def _plan_winograd_pooled(self, runtime, x, pooled):
        c_out, out_h, out_w = pooled.shape
        # U = G g G^T once, from the folded weights; the Program copies it into the params arena
        rows = kernels.winograd_weight_rows(x.shape[0], c_out, out_h, out_w, 2)
        u = kernels.winograd_weights(self.run_weight, rows)
        scratch = runtime.scratch(kernels.winograd_scratch_size(x.shape[0], out_h, out_w, 2))
        # pooled may be the interior of the next layer's padded input: then the kernel writes there, at its corner
        target, top, left = runtime.storage(pooled)
        runtime.step(kernels.winograd_conv_pooled, x, u, self.run_bias, target, scratch, out_h, out_w, top, left,
                     self.run_act, self.run_alpha)

    def plan_pooled(self, runtime, input_names, inputs, pooled):
        """Emit conv + bias + activation + 2x2 stride-2 max pool as one call writing `pooled` (flat_eligible
        convs with a monotone activation only; the Model checks)."""
        x = self._padded_input(runtime, input_names, inputs)
        if self._winograd_eligible(pooled.shape[1], pooled.shape[2], 2):
            # Measured on digits' three conv+pool layers against the kernels below, same process (a loaded
            # machine): 1->8 on 28x28 2.4 vs 3.5 us (flat), 8->16 on 14x14 5.2 vs 9.6 (flat), 16->32 on 7x7 7.9 vs
            # 8.8 (patches).
            self._plan_winograd_pooled(runtime, x, pooled)
            return
        if self._patches_pay(4 * pooled.shape[1] * pooled.shape[2]):
            self._plan_patches(runtime, x, pooled, 2)
            return
        scratch = runtime.scratch(kernels.flat_scratch_size(x.shape[1] - 2, x.shape[2]))
        runtime.step(kernels.conv3x3_flat, x, self.run_weight, self.run_bias, pooled, scratch, 2, self.run_act,
                     self.run_alpha)

    def reference_forward(self, inputs):
        return reference.conv2d(inputs[0], self.weight, self.bias, self.stride, self.pads, self.dilation,
                                self.groups, self.act, self.alpha)


class Conv2D(_ConvBase):
    type = "conv2d"
    PARAMS = {"filters": REQUIRED, "kernel": REQUIRED, "stride": 1, "padding": "valid", "dilation": 1,
              "groups": 1, "bias": True, "activation": "identity", "alpha": 0.01}

    def configure(self, filters, kernel, stride, padding, dilation, groups, bias, activation, alpha):
        self.filters = _int(filters, "filters")
        self.kernel = _pair(kernel, "kernel")
        self.groups = _int(groups, "groups")
        self.use_bias = _bool(bias, "bias")
        self._configure_geometry(stride, padding, dilation, activation, alpha)
        if self.filters % self.groups:
            raise LayerError(f"filters ({self.filters}) must be a multiple of groups ({self.groups})")
        self.weight = self.bias = None

    def compute_output_shape(self, input_shapes):
        channels = self._need_map(input_shapes[0])[0]
        if channels % self.groups:
            raise LayerError(f"input channels ({channels}) must be a multiple of groups ({self.groups})")
        return self._conv_output_shape(input_shapes[0], self.filters, self.kernel)

    def weight_shapes(self, input_shapes):
        shapes = {"weight": (self.filters, input_shapes[0][0] // self.groups) + self.kernel}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def set_weights(self, arrays):
        self.weight = arrays["weight"]
        self.bias = arrays.get("bias")


class FilterBank(_ConvBase):
    """A conv layer whose frozen weights come from a named filter bank (filters.py) instead of the .npz."""
    type = "filter_bank"
    BANK_PARAMS = ("size", "sigma", "orientations", "scales", "wavelength", "aspect", "phase", "scale_step",
                   "diagonals")
    PARAMS = {"bank": REQUIRED, "stride": 1, "padding": "same", "dilation": 1, "activation": "identity",
              "alpha": 0.01, **{key: NOT_GIVEN for key in BANK_PARAMS}}

    def configure(self, bank, stride, padding, dilation, activation, alpha, **bank_params):
        if bank not in filters.FILTER_BANKS:
            raise LayerError(f"unknown bank {bank!r}; expected one of {', '.join(filters.FILTER_BANKS)}")
        self.bank = bank
        self.bank_params = {k: v for k, v in bank_params.items() if v is not NOT_GIVEN}
        self.groups = 1
        self._configure_geometry(stride, padding, dilation, activation, alpha)
        try:  # generated for one channel now to validate the parameters and learn the filter count and size
            self.weight = filters.make_bank(bank, 1, **self.bank_params)
        except ValueError as err:
            raise LayerError(str(err)) from None
        self.bias = None
        self.filters = self.weight.shape[0]
        self.kernel = tuple(self.weight.shape[2:])

    def compute_output_shape(self, input_shapes):
        channels = self._need_map(input_shapes[0])[0]
        self.weight = filters.make_bank(self.bank, channels, **self.bank_params)
        return self._conv_output_shape(input_shapes[0], self.filters, self.kernel)

    def build(self, input_shapes):
        super().build(input_shapes)
        self.n_params = int(self.weight.size)  # frozen, generated here, not read from the .npz


# --- pooling ------------------------------------------------------------------------------------------------

class _WindowPool(Layer):
    PARAMS = {"kernel": REQUIRED, "stride": NOT_GIVEN, "padding": "valid"}

    def configure(self, kernel, stride, padding):
        self.kernel = _pair(kernel, "kernel")
        self.stride = self.kernel if stride is NOT_GIVEN else _pair(stride, "stride")
        self.padding = _padding_spec(padding)
        self.pads = (0, 0, 0, 0)

    def compute_output_shape(self, input_shapes):
        c, h, w = self._need_map(input_shapes[0])
        self.pads = resolve_padding(self.padding, (h, w), self.kernel, self.stride)
        top, bottom, left, right = self.pads
        if max(top, bottom) >= self.kernel[0] or max(left, right) >= self.kernel[1]:
            raise LayerError(f"padding {list(self.pads)} must be smaller than the kernel {list(self.kernel)} "
                             "(a window of padding only has no value)")
        return (c, _axis_out(h, self.kernel[0], self.stride[0], top, bottom),
                _axis_out(w, self.kernel[1], self.stride[1], left, right))

    def count_flops(self):
        return int(np.prod(self.output_shape)) * self.kernel[0] * self.kernel[1]


class MaxPool(_WindowPool):
    type = "max_pool"
    fill = -np.inf
    FLAT_MAX_PLANE = 4096   # padded plane size up to which kernels.max_pool_flat is used for strided pools

    def padded_read(self, index):
        return (tuple(self.pads), float(self.fill)) if any(self.pads) else None

    def runs_flat(self):
        """True if plan() runs kernels.max_pool_flat (which also has the fused max_pool_flat_add form)."""
        top, bottom, left, right = self.pads
        _, height, width = self.input_shapes[0]
        return self.type == "max_pool" and self.stride[1] >= 2 \
            and (height + top + bottom) * (width + left + right) <= self.FLAT_MAX_PLANE

    def add_reads_unpadded(self):
        """True if plan_add runs kernels.max_pool3s2_add (a 3x3 stride-2 pool read unpadded, its padding masked)
        when its input is a plain map. The Model then keeps that input out of padded buffers: max_pool_flat_add on
        the padded map measured 14.2 us against 12.8 for 16x60x60 (now 6.6), and 64x15x15 with "same" padding
        pad 3.7 + max_pool_flat_add 5.6 against 4.2 us."""
        return self.type == "max_pool" and self.kernel == (3, 3) and self.stride == (2, 2)

    def plan_add(self, runtime, input_names, inputs, residual, out):
        """Emit this pool and the residual add after it as one max_pool_flat_add call: out = pool + residual
        (runs_flat() pools only; the Model checks). out may be the interior of a padded_output buffer."""
        x = inputs[0]
        if self.add_reads_unpadded() and runtime.interior(x) is None:
            # read the map unpadded, no pad copy (Xception's 16x60x60 pool + add 6.0 + 14.3 -> 6.6 us)
            target, top, left = runtime.storage(out)
            runtime.step(kernels.max_pool3s2_add, x, residual, target, self.pads[0], self.pads[2], top, left)
            return
        if any(self.pads):
            x = runtime.padded(input_names[0], x, self.pads, self.fill)
        target, top, left = runtime.storage(out)
        runtime.step(kernels.max_pool_flat_add, x, residual, target,
                     runtime.scratch(kernels.flat_pool_scratch_size(x.shape)), self.kernel[0], self.kernel[1],
                     self.stride[0], self.stride[1], top, left)

    def plan(self, runtime, input_names, inputs, out):
        x = inputs[0]
        if any(self.pads):
            x = runtime.padded(input_names[0], x, self.pads, self.fill)
        if self.runs_flat():
            # strided pools on modest planes: contiguous passes, one gather per output (Xception's 3x3 / 2
            # pools measured 13 -> 11, 10 -> 6, 7.5 -> 3.5 and 7.3 -> 2.7 us; on 100x100 planes no faster)
            runtime.step(kernels.max_pool_flat, x, out, runtime.scratch(kernels.flat_pool_scratch_size(x.shape)),
                         self.kernel[0], self.kernel[1], self.stride[0], self.stride[1])
            return
        if self.type == "max_pool":
            row = runtime.scratch(x.shape[2])
            runtime.step(kernels.max_pool_separable, x, out, row, self.kernel[0], self.kernel[1], self.stride[0],
                         self.stride[1])
            return
        runtime.step(kernels.min_pool, x, out, self.kernel[0], self.kernel[1], self.stride[0], self.stride[1])

    def reference_forward(self, inputs):
        return reference.max_pool(inputs[0], self.kernel, self.stride, self.pads)


class MinPool(MaxPool):
    type = "min_pool"
    fill = np.inf

    def reference_forward(self, inputs):
        return reference.min_pool(inputs[0], self.kernel, self.stride, self.pads)


class AvgPool(_WindowPool):
    type = "avg_pool"

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.avg_pool, inputs[0], out, self.kernel[0], self.kernel[1], self.stride[0],
                     self.stride[1], self.pads[0], self.pads[2])

    def reference_forward(self, inputs):
        return reference.avg_pool(inputs[0], self.kernel, self.stride, self.pads)


class GlobalAvgPool(Layer):
    type = "global_avg_pool"

    def compute_output_shape(self, input_shapes):
        return (self._need_map(input_shapes[0])[0],)

    def count_flops(self):
        return int(np.prod(self.input_shapes[0]))

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.global_avg_pool, inputs[0], out)

    def reference_forward(self, inputs):
        return reference.global_avg_pool(inputs[0])


class GlobalMaxPool(GlobalAvgPool):
    type = "global_max_pool"

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.global_max_pool, inputs[0], out)

    def reference_forward(self, inputs):
        return reference.global_max_pool(inputs[0])


class AdaptiveAvgPool(Layer):
    type = "adaptive_avg_pool"
    PARAMS = {"output_size": REQUIRED}

    def configure(self, output_size):
        self.output_size = _pair(output_size, "output_size")

    def compute_output_shape(self, input_shapes):
        return (self._need_map(input_shapes[0])[0],) + self.output_size

    def bins(self):
        """[(start, stop)] per output row and per output column."""
        _, h, w = self.input_shapes[0]
        return reference.adaptive_bins(h, self.output_size[0]), reference.adaptive_bins(w, self.output_size[1])

    def count_flops(self):
        rows, cols = self.bins()
        return self.output_shape[0] * sum(b - a for a, b in rows) * sum(b - a for a, b in cols)

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.adaptive_avg_pool, inputs[0], out)

    def reference_forward(self, inputs):
        return reference.adaptive_avg_pool(inputs[0], self.output_size)


class AdaptiveMaxPool(AdaptiveAvgPool):
    type = "adaptive_max_pool"

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.adaptive_max_pool, inputs[0], out)

    def reference_forward(self, inputs):
        return reference.adaptive_max_pool(inputs[0], self.output_size)


class FractionalMaxPool(Layer):
    """Graham 2014 fractional max pooling with disjoint pseudo-random bins, fixed at load time by the seed.

    ``output_size = [h, w]``, or ``ratio`` = output size / input size in (0, 1] (like PyTorch's output_ratio;
    Graham's alpha is 1 / ratio; each output side is floor(input side * ratio), at least 1).
    """
    type = "fractional_max_pool"
    PARAMS = {"output_size": NOT_GIVEN, "ratio": NOT_GIVEN, "seed": 0}

    def configure(self, output_size, ratio, seed):
        if (output_size is NOT_GIVEN) == (ratio is NOT_GIVEN):
            raise LayerError("give exactly one of 'output_size' and 'ratio'")
        self.output_size = None if output_size is NOT_GIVEN else _pair(output_size, "output_size")
        if ratio is NOT_GIVEN:
            self.ratio = None
        else:
            ratio_pair = ratio if isinstance(ratio, (list, tuple)) else [ratio, ratio]
            if len(ratio_pair) != 2:
                raise LayerError(f"'ratio' must be a number or [rh, rw] in (0, 1], got {ratio!r}")
            self.ratio = tuple(_number(v, "ratio") for v in ratio_pair)
            if not all(0.0 < v <= 1.0 for v in self.ratio):
                raise LayerError(f"'ratio' must be in (0, 1] (output size / input size), got {ratio!r}")
        self.seed = _int(seed, "seed", minimum=0)
        self.row_edges = self.col_edges = None

    def compute_output_shape(self, input_shapes):
        c, h, w = self._need_map(input_shapes[0])
        if self.output_size is not None:
            out_h, out_w = self.output_size
        else:
            out_h, out_w = max(1, int(h * self.ratio[0])), max(1, int(w * self.ratio[1]))
        if out_h > h or out_w > w:
            raise LayerError(f"output_size [{out_h}, {out_w}] must not exceed the input [{h}, {w}]")
        # Rows and columns draw from independent streams of the same seed.
        self.row_edges = filters.fractional_edges(h, out_h, [self.seed, 0])
        self.col_edges = filters.fractional_edges(w, out_w, [self.seed, 1])
        return c, out_h, out_w

    def count_flops(self):
        return int(np.prod(self.input_shapes[0]))

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.fractional_max_pool, inputs[0], out, self.row_edges, self.col_edges)

    def reference_forward(self, inputs):
        return reference.fractional_max_pool(inputs[0], self.row_edges, self.col_edges)


# --- normalisation, dense, shape --------------------------------------------------------------------------

class BatchNorm(Layer):
    """Inference batch norm over channels ((C, H, W) input) or features ((N,) input).

    The Model folds it into the preceding conv/dense when it can; otherwise it runs as a 1x1 depthwise conv with
    the per-channel scale and shift, so no separate kernel is needed.
    """
    type = "batchnorm"
    PARAMS = {"eps": 1e-5}
    fusable = True

    def configure(self, eps):
        self.eps = _number(eps, "eps")
        if self.eps <= 0:
            raise LayerError(f"'eps' must be > 0, got {eps!r}")
        self.gamma = self.beta = self.mean = self.var = None

    def compute_output_shape(self, input_shapes):
        if len(input_shapes[0]) not in (1, 3):
            raise LayerError(f"needs a (C, H, W) or (N,) input, got {_fmt(input_shapes[0])}")
        return input_shapes[0]

    def weight_shapes(self, input_shapes):
        channels = (input_shapes[0][0],)
        return {"gamma": channels, "beta": channels, "mean": channels, "var": channels}

    def count_flops(self):
        return 2 * int(np.prod(self.output_shape))

    def set_weights(self, arrays):
        if np.any(arrays["var"] < 0):
            raise LayerError(f"weight '{self.name}.var' has negative values (min {arrays['var'].min():g}); "
                             "expected variances >= 0")
        self.gamma, self.beta, self.mean, self.var = (arrays[k] for k in ("gamma", "beta", "mean", "var"))

    def scale_shift(self):
        """float64 (scale, shift) with batchnorm(x) = scale * x + shift per channel."""
        scale = self.gamma.astype(np.float64) / np.sqrt(self.var.astype(np.float64) + self.eps)
        shift = self.beta.astype(np.float64) - self.mean.astype(np.float64) * scale
        return scale, shift

    def reset_runtime(self):
        self.run_act, self.run_alpha = 0, 0.01
        scale, shift = self.scale_shift()
        self.run_weight = np.ascontiguousarray(scale.astype(np.float32).reshape(-1, 1, 1, 1))
        self.run_bias = np.ascontiguousarray(shift.astype(np.float32))

    def plan(self, runtime, input_names, inputs, out):
        x, channels = inputs[0], self.output_shape[0]
        as_map = (channels, 1, 1) if x.ndim == 1 else x.shape
        runtime.step(kernels.conv2d, x.reshape(as_map), self.run_weight, self.run_bias, out.reshape(as_map),
                     1, 1, 1, 1, channels, self.run_act, self.run_alpha)

    def reference_forward(self, inputs):
        return reference.batchnorm(inputs[0], self.gamma, self.beta, self.mean, self.var, self.eps)


class Dense(Layer):
    """Fully connected; a (C, H, W) input is flattened (channel-major) first."""
    type = "dense"
    PARAMS = {"units": REQUIRED, "bias": True, "activation": "identity", "alpha": 0.01}
    fusable = True

    def configure(self, units, bias, activation, alpha):
        self.units = _int(units, "units")
        self.use_bias = _bool(bias, "bias")
        self.act = _activation(activation)
        self.alpha = _number(alpha, "alpha")
        self.weight = self.bias = None

    def compute_output_shape(self, input_shapes):
        return (self.units,)

    def weight_shapes(self, input_shapes):
        shapes = {"weight": (self.units, int(np.prod(input_shapes[0])))}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

    def count_flops(self):
        return 2 * self.units * int(np.prod(self.input_shapes[0]))

    def set_weights(self, arrays):
        self.weight = arrays["weight"]
        self.bias = arrays.get("bias")

    reset_runtime = _ConvBase.reset_runtime
    fold_batchnorm = _ConvBase.fold_batchnorm

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.dense, inputs[0].reshape(-1), self.run_weight, self.run_bias, out, self.run_act,
                     self.run_alpha)

    def reference_forward(self, inputs):
        return reference.dense(reference.flatten(inputs[0]), self.weight, self.bias, self.act, self.alpha)


class Flatten(Layer):
    type = "flatten"
    alias = True

    def compute_output_shape(self, input_shapes):
        return (int(np.prod(input_shapes[0])),)

    def count_flops(self):
        return 0

    def reference_forward(self, inputs):
        return reference.flatten(inputs[0])


class Dropout(Layer):
    """Identity at inference; kept so training configs load unchanged."""
    type = "dropout"
    PARAMS = {"rate": 0.5}
    alias = True

    def configure(self, rate):
        self.rate = _number(rate, "rate")
        if not 0.0 <= self.rate < 1.0:
            raise LayerError(f"'rate' must be in [0, 1), got {rate!r}")

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def count_flops(self):
        return 0

    def reference_forward(self, inputs):
        return np.asarray(inputs[0], np.float32)


# --- activations --------------------------------------------------------------------------------------------

class Activation(Layer):
    type = "activation"
    PARAMS = {"function": REQUIRED, "alpha": 0.01}
    in_place = True   # may overwrite its input when nobody else reads it

    def configure(self, function, alpha):
        self.act = _activation(function, "function")
        self.function = function
        self.alpha = _number(alpha, "alpha")

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.activation, inputs[0], out.reshape(inputs[0].shape), self.act, self.alpha)

    def reference_forward(self, inputs):
        return reference.activation(inputs[0], self.act, self.alpha)


class GLU(Layer):
    """Gated linear unit: split the input in halves a, b on axis 0 (channels), out = a * sigmoid(b)."""
    type = "glu"

    def compute_output_shape(self, input_shapes):
        shape = input_shapes[0]
        if shape[0] % 2:
            raise LayerError(f"needs an even number of channels to split in two, got {_fmt(shape)}")
        return (shape[0] // 2,) + tuple(shape[1:])

    def count_flops(self):
        return 4 * int(np.prod(self.output_shape))

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.glu, inputs[0], out)

    def reference_forward(self, inputs):
        return reference.glu(inputs[0])


class Softmax(Layer):
    type = "softmax"
    in_place = True

    def compute_output_shape(self, input_shapes):
        if len(input_shapes[0]) != 1:
            raise LayerError(f"needs a vector (N,) input, got {_fmt(input_shapes[0])}; "
                             "add a flatten, dense or global pool layer before it")
        return input_shapes[0]

    def count_flops(self):
        return 3 * int(np.prod(self.output_shape))

    def plan(self, runtime, input_names, inputs, out):
        runtime.step(kernels.softmax, inputs[0], out)

    def reference_forward(self, inputs):
        return reference.softmax(inputs[0])


# --- merges -------------------------------------------------------------------------------------------------

class Add(Layer):
    """Element-wise sum of two or more equal-shape inputs (residual), with an optional fused activation."""
    type = "add"
    PARAMS = {"activation": "identity", "alpha": 0.01}
    min_inputs, max_inputs = 2, None
    fusable = True

    def configure(self, activation, alpha):
        self.act = _activation(activation)
        self.alpha = _number(alpha, "alpha")

    def compute_output_shape(self, input_shapes):
        for shape in input_shapes[1:]:
            if shape != input_shapes[0]:
                raise LayerError(f"inputs must have equal shapes, got {', '.join(_fmt(s) for s in input_shapes)}")
        return input_shapes[0]

    def count_flops(self):
        return (len(self.input_shapes) - 1) * int(np.prod(self.output_shape))

    def reset_runtime(self):
        self.run_act, self.run_alpha = self.act, self.alpha

    def plan(self, runtime, input_names, inputs, out):
        last = len(inputs) - 1
        runtime.step(kernels.add, inputs[0], inputs[1], out, self.run_act if last == 1 else 0, self.run_alpha)
        for index in range(2, len(inputs)):   # more inputs accumulate in place (add allows out to alias a)
            runtime.step(kernels.add, out, inputs[index], out, self.run_act if index == last else 0,
                         self.run_alpha)

    def reference_forward(self, inputs):
        total = np.asarray(inputs[0], np.float64)
        for x in inputs[1:]:
            total = total + x
        return reference.activation(total, self.act, self.alpha)


class Concat(Layer):
    """Channel concat of (C_i, H, W) maps with equal H, W, or of (N_i,) vectors."""
    type = "concat"
    min_inputs, max_inputs = 2, None

    def compute_output_shape(self, input_shapes):
        first = input_shapes[0]
        for shape in input_shapes[1:]:
            if len(shape) != len(first) or shape[1:] != first[1:]:
                raise LayerError("inputs must agree on every axis but the first, got "
                                 + ", ".join(_fmt(s) for s in input_shapes))
        return (sum(s[0] for s in input_shapes),) + tuple(first[1:])

    def count_flops(self):
        return 0

    def plan(self, runtime, input_names, inputs, out):
        offset = 0
        out_map = out if out.ndim == 3 else out.reshape(out.shape[0], 1, 1)
        for x in inputs:
            x_map = x if x.ndim == 3 else x.reshape(x.shape[0], 1, 1)
            runtime.step(kernels.concat_into, x_map, out_map, offset)
            offset += x.shape[0]

    def reference_forward(self, inputs):
        return reference.concat([np.asarray(x, np.float32) for x in inputs])


LAYER_TYPES = {cls.type: cls for cls in (
    Conv2D, FilterBank, MaxPool, MinPool, AvgPool, GlobalAvgPool, GlobalMaxPool, AdaptiveAvgPool,
    AdaptiveMaxPool, FractionalMaxPool, BatchNorm, Dense, Flatten, Dropout, Activation, GLU, Softmax, Add,
    Concat,
)}


def make_layer(config: dict) -> Layer:
    """Layer from a config dict {"name", "type", ["inputs"], **params} (the [[layers]] table of the TOML)."""
    params = dict(config)
    layer_type = params.pop("type")
    name = params.pop("name")
    inputs = params.pop("inputs", None)
    if layer_type not in LAYER_TYPES:
        raise LayerError(f"unknown layer type {layer_type!r}; expected one of {', '.join(LAYER_TYPES)}")
    return LAYER_TYPES[layer_type](name, inputs, **params)
