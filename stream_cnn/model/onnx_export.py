"""Export a Model to ONNX (opset 17 by default), layer by layer, from the unfolded graph and original weights.

Each layer output becomes a tensor named after the layer: (1, C, H, W) for feature maps, (1, N) for vectors;
the graph input is "input" (1, C, H, W). Batch norm stays a BatchNormalization node (ONNX runtimes fold it
themselves), so an exported model is an independent check of stream-cnn's own folding and fusion.

Layers without a single ONNX operator are built from exact equivalents:
- min pool: Neg, MaxPool, Neg;  GELU (erf form): Div, Erf, Add, Mul, Mul;  ReLU6: Clip(0, 6).
- adaptive average pool: two MatMuls with row / column averaging matrices (bins of unequal size included).
- adaptive and fractional max pool: max is separable over a rectangle, so rows then columns: for each offset j
  within a bin, Gather the row start+j (clamped to the bin's last row), and take the element-wise Max; the
  fractional pool's bin edges are fixed at load time, so they are exported as constant indices.

The `onnx` package is imported lazily: it is a test extra, not a runtime dependency.
"""
import math
from pathlib import Path

import numpy as np

from stream_cnn.errors import OutputError, UsageError

DEFAULT_OPSET = 17


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise UsageError("exporting to ONNX needs the 'onnx' package: pip install onnx "
                         "(or pip install 'stream-cnn[test]')") from None
    return onnx, helper, numpy_helper


class _GraphBuilder:
    def __init__(self, helper, numpy_helper, opset):
        self.opset = opset
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes = []
        self.initializers = []
        self._names = set()

    def const(self, name, array):
        if name not in self._names:
            self._names.add(name)
            self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, outputs, **attrs):
        if isinstance(outputs, str):
            outputs = [outputs]
        self.nodes.append(self.helper.make_node(op, list(inputs), outputs, name=f"{outputs[0]}:{op}", **attrs))
        return outputs[0]

    def activation(self, x, out, code, alpha, prefix):
        """Nodes for activation code `code` from tensor x into tensor out."""
        if code == 0:
            return self.node("Identity", [x], out)
        if code == 1:
            return self.node("Relu", [x], out)
        if code == 2:
            return self.node("LeakyRelu", [x], out, alpha=float(alpha))
        if code == 3:
            low = self.const("const/zero", np.array(0.0, np.float32))
            high = self.const("const/six", np.array(6.0, np.float32))
            return self.node("Clip", [x, low, high], out)
        if code == 4:
            return self.node("Sigmoid", [x], out)
        if code == 5:
            return self.node("Tanh", [x], out)
        if code == 6:
            root2 = self.const("const/sqrt2", np.array(math.sqrt(2.0), np.float32))
            one = self.const("const/one", np.array(1.0, np.float32))
            half = self.const("const/half", np.array(0.5, np.float32))
            scaled = self.node("Div", [x, root2], f"{prefix}/gelu_div")
            erf = self.node("Erf", [scaled], f"{prefix}/gelu_erf")
            shifted = self.node("Add", [erf, one], f"{prefix}/gelu_add")
            product = self.node("Mul", [x, shifted], f"{prefix}/gelu_mul")
            return self.node("Mul", [product, half], out)
        raise UsageError(f"cannot export activation code {code}")

    def with_activation(self, op, inputs, out, code, alpha, **attrs):
        """op followed by its activation (Conv + Relu, Gemm + Sigmoid, ...)."""
        if code == 0:
            return self.node(op, inputs, out, **attrs)
        raw = self.node(op, inputs, f"{out}/{op.lower()}", **attrs)
        return self.activation(raw, out, code, alpha, out)

    def separable_max(self, x, out, row_bins, col_bins):
        """Max over bins [(start, stop)] of rows (axis 2) then columns (axis 3) via Gather + Max."""
        rows = self._gather_max(x, f"{out}/rows", row_bins, axis=2)
        return self._gather_max(rows, out, col_bins, axis=3)

    def _gather_max(self, x, out, bins, axis):
        widest = max(stop - start for start, stop in bins)
        picked = []
        for offset in range(widest):
            index = np.array([min(start + offset, stop - 1) for start, stop in bins], np.int64)
            name = self.const(f"{out}/index{offset}", index)
            picked.append(self.node("Gather", [x, name], f"{out}/gather{offset}", axis=axis))
        if len(picked) == 1:
            return self.node("Identity", picked, out)
        return self.node("Max", picked, out)


def _pads(pads):
    top, bottom, left, right = pads
    return [int(top), int(left), int(bottom), int(right)]   # ONNX order: begins then ends


def _export_layer(graph, layer, inputs):
    """Append the nodes computing `layer` from the tensors named in `inputs`; output tensor = layer.name."""
    out, kind = layer.name, layer.type
    x = inputs[0]
    if kind in ("conv2d", "filter_bank"):
        weight = graph.const(f"{out}.weight", layer.weight)
        args = [x, weight]
        if layer.bias is not None:
            args.append(graph.const(f"{out}.bias", layer.bias))
        return graph.with_activation("Conv", args, out, layer.act, layer.alpha, kernel_shape=list(layer.kernel),
                                     strides=list(layer.stride), dilations=list(layer.dilation),
                                     pads=_pads(layer.pads), group=int(layer.groups))
    if kind == "max_pool":
        return graph.node("MaxPool", [x], out, kernel_shape=list(layer.kernel), strides=list(layer.stride),
                          pads=_pads(layer.pads))
    if kind == "min_pool":
        negated = graph.node("Neg", [x], f"{out}/neg")
        pooled = graph.node("MaxPool", [negated], f"{out}/maxpool", kernel_shape=list(layer.kernel),
                            strides=list(layer.stride), pads=_pads(layer.pads))
        return graph.node("Neg", [pooled], out)
    if kind == "avg_pool":
        return graph.node("AveragePool", [x], out, kernel_shape=list(layer.kernel), strides=list(layer.stride),
                          pads=_pads(layer.pads), count_include_pad=0)
    if kind in ("global_avg_pool", "global_max_pool"):
        op = "GlobalAveragePool" if kind == "global_avg_pool" else "GlobalMaxPool"
        pooled = graph.node(op, [x], f"{out}/pool")
        return graph.node("Flatten", [pooled], out, axis=1)
    if kind == "adaptive_avg_pool":
        row_bins, col_bins = layer.bins()
        _, height, width = layer.input_shapes[0]
        rows = np.zeros((len(row_bins), height), np.float32)
        for i, (start, stop) in enumerate(row_bins):
            rows[i, start:stop] = 1.0 / (stop - start)
        cols = np.zeros((width, len(col_bins)), np.float32)
        for j, (start, stop) in enumerate(col_bins):
            cols[start:stop, j] = 1.0 / (stop - start)
        row_mean = graph.node("MatMul", [graph.const(f"{out}/row_weights", rows), x], f"{out}/rows")
        return graph.node("MatMul", [row_mean, graph.const(f"{out}/col_weights", cols)], out)
    if kind == "adaptive_max_pool":
        return graph.separable_max(x, out, *layer.bins())
    if kind == "fractional_max_pool":
        row_bins = list(zip(layer.row_edges[:-1].tolist(), layer.row_edges[1:].tolist()))
        col_bins = list(zip(layer.col_edges[:-1].tolist(), layer.col_edges[1:].tolist()))
        return graph.separable_max(x, out, row_bins, col_bins)
    if kind == "batchnorm":
        names = [graph.const(f"{out}.{key}", getattr(layer, key)) for key in ("gamma", "beta", "mean", "var")]
        return graph.node("BatchNormalization", [x] + names, out, epsilon=float(layer.eps))
    if kind == "dense":
        if len(layer.input_shapes[0]) != 1:
            x = graph.node("Flatten", [x], f"{out}/flatten", axis=1)
        args = [x, graph.const(f"{out}.weight", layer.weight)]
        if layer.bias is not None:
            args.append(graph.const(f"{out}.bias", layer.bias))
        return graph.with_activation("Gemm", args, out, layer.act, layer.alpha, transB=1)
    if kind == "flatten":
        return graph.node("Flatten", [x], out, axis=1)
    if kind == "dropout":
        return graph.node("Identity", [x], out)
    if kind == "activation":
        return graph.activation(x, out, layer.act, layer.alpha, out)
    if kind == "glu":
        half_a, half_b = f"{out}/a", f"{out}/b"
        halves = {"num_outputs": 2} if graph.opset >= 18 else {}   # opset 18 made the count explicit
        graph.node("Split", [x], [half_a, half_b], axis=1, **halves)
        gate = graph.node("Sigmoid", [half_b], f"{out}/gate")
        return graph.node("Mul", [half_a, gate], out)
    if kind == "softmax":
        return graph.node("Softmax", [x], out, axis=-1)
    if kind == "add":
        if layer.act == 0:
            return graph.node("Sum", inputs, out)
        total = graph.node("Sum", inputs, f"{out}/sum")
        return graph.activation(total, out, layer.act, layer.alpha, out)
    if kind == "concat":
        return graph.node("Concat", inputs, out, axis=1)
    raise UsageError(f"layer '{layer.name}': cannot export layer type {kind!r} to ONNX")


def to_onnx(model, opset: int = DEFAULT_OPSET):
    """The model as an onnx.ModelProto (checked with onnx.checker)."""
    onnx, helper, numpy_helper = _import_onnx()
    graph = _GraphBuilder(helper, numpy_helper, int(opset))
    for layer in model.layers:
        _export_layer(graph, layer, list(layer.inputs))
    input_info = helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1] + list(model.config.input_shape))
    last = model.layers[-1]
    output_info = helper.make_tensor_value_info(last.name, onnx.TensorProto.FLOAT, [1] + list(last.output_shape))
    onnx_graph = helper.make_graph(graph.nodes, model.config.name, [input_info], [output_info], graph.initializers)
    opsets = [helper.make_opsetid("", int(opset))]
    proto = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="stream-cnn",
                              doc_string=model.config.description)
    # The oldest IR version that carries this opset: runtimes older than the onnx package refuse newer IR.
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model, path, opset: int = DEFAULT_OPSET) -> Path:
    """Write the model to an .onnx file; returns the path."""
    proto = to_onnx(model, opset)
    path = Path(path)
    try:
        path.write_bytes(proto.SerializeToString())
    except OSError as err:
        raise OutputError(f"{path}: cannot write ONNX file: {err.strerror or err}") from None
    return path
