"""The Model: a config, its weights and the run-state buffers, kept apart.

Loading does all the work once: layers are made and wired (sequential by default, ``inputs = [...]`` for
residual adds and concats), output shapes are inferred, weights are checked, batch norm is folded into the
conv/dense before it, activations fuse into the layer before them (or run in place), a 3x3 conv followed by a
2x2 max pool that nobody else reads becomes one conv+pool kernel, a max pool read only by a residual add runs
inside the add's kernel, a layer whose readers all pad its output alike (or read it at an offset) writes straight
into their padded buffer when its kernel can, and every buffer the forward pass writes
(outputs, padded inputs whose borders are filled once, scratch) is allocated. The kernel calls are then encoded
as a Program: all run-state buffers live in one float32 arena and the weights in another, and the calls become
rows of an op table that one Numba executor runs in a single call from Python (kernels/program.py), so the
per-call dispatch cost (~1 us a kernel) is paid once per forward pass. The forward pass looks nothing up and
allocates nothing. The weights it runs are copies made at load (folded, in the params arena): changing
``model.weights`` or a layer's arrays afterwards has no effect; load the model again instead.
"""
from pathlib import Path

import numpy as np

from stream_cnn.errors import ModelFileError
from stream_cnn.model.config import ModelConfig, check_weights, read_config, read_weights, write_config
from stream_cnn.model.layers import LayerError, make_layer

INPUT = "input"


class _Runtime:
    """Collects the forward pass's kernel calls and the padded buffers they need."""

    def __init__(self):
        self.steps = []
        self._padded = {}
        self._interiors = {}   # (address, shape, strides) of a map kept inside a padded buffer -> its placement
        self.scratch_buffers = []
        self._subsampled = {}

    def step(self, kernel, *args):
        self.steps.append((kernel, args))

    def scratch(self, size):
        """A float32 work buffer of `size` values for one kernel call (contents never read across calls)."""
        buffer = np.zeros(size, dtype=np.float32)
        self.scratch_buffers.append(buffer)
        return buffer

    def padded_buffers(self):
        return list(self._padded.values()) + list(self._subsampled.values())

    @staticmethod
    def key(x):
        return x.ctypes.data, x.shape, x.strides

    def padded_output(self, shape, pads, fill):
        """A padded buffer (border = fill) allocated as a layer's output storage; returns the (C, H, W) view of
        its interior, which stands for the layer's output from then on. Its producer writes the interior
        (storage()), its padded readers get the whole buffer from padded() without a copy."""
        top, bottom, left, right = pads
        channels, height, width = shape
        xp = np.full((channels, height + top + bottom, width + left + right), fill, dtype=np.float32)
        interior = xp[:, top:top + height, left:left + width]
        self._interiors[self.key(interior)] = (xp, top, left, tuple(pads), float(fill))
        return interior

    def padded_outputs(self):
        return [placed[0] for placed in self._interiors.values()]

    def interior(self, x):
        """(padded buffer, top, left) if x is the interior view of a padded_output buffer, else None."""
        placed = self._interiors.get(self.key(x)) if isinstance(x, np.ndarray) and x.ndim == 3 else None
        return None if placed is None else placed[:3]

    def storage(self, out):
        """(array, top, left) a kernel writes `out` through: the padded buffer and the interior's corner for a
        padded_output interior, else (out, 0, 0)."""
        placed = self.interior(out)
        return (out, 0, 0) if placed is None else placed

    def subsampled(self, source_key, x, stride_h, stride_w, out_h, out_w):
        """A buffer holding x[:, ::stride_h, ::stride_w] (first out_h rows, out_w columns), refreshed by a
        subsample_into step; shared by consumers of the same source and stride."""
        from stream_cnn.model import kernels

        key = (source_key, stride_h, stride_w, out_h, out_w)
        if key not in self._subsampled:
            buffer = np.zeros((x.shape[0], out_h, out_w), dtype=np.float32)
            self._subsampled[key] = buffer
            source, top, left = self.storage(x)
            self.step(kernels.subsample_into, source, buffer, stride_h, stride_w, top, left)
        return self._subsampled[key]

    def padded(self, source_name, x, pads, fill):
        """A buffer holding x with the given (top, bottom, left, right) border, refreshed by a pad_into step.
        Consumers of the same source with the same border share one buffer and one copy. If x already lives in
        a padded_output buffer with this border, that buffer is returned and no copy is made."""
        from stream_cnn.model import kernels

        placed = self._interiors.get(self.key(x))
        if placed is not None:
            if placed[3:] != (tuple(pads), float(fill)):
                raise AssertionError(f"{source_name} lives in a padded buffer with another border")
            return placed[0]
        key = (source_name, tuple(pads), float(fill))
        if key not in self._padded:
            top, bottom, left, right = pads
            channels, height, width = x.shape
            xp = np.full((channels, height + top + bottom, width + left + right), fill, dtype=np.float32)
            self._padded[key] = xp
            self.step(kernels.pad_into, x, xp, top, left)
        return self._padded[key]


_ALIGN = 16   # floats: every buffer starts on a 64-byte boundary (one cache line, one AVX-512 vector)
# The executors' x argument when there is nothing to copy in (forward() without x): empty, and 3-D like every
# input they take, so one compiled signature serves both calls.
NO_INPUT = np.zeros((0, 0, 0), dtype=np.float32)


def _aligned_zeros(size):
    """float32 zeros whose first element sits on a 64-byte boundary."""
    raw = np.zeros(size + _ALIGN, dtype=np.float32)
    shift = (-(raw.ctypes.data // 4)) % _ALIGN
    return raw[shift:shift + size]


class Program:
    """The forward pass as executor calls: run-state buffers moved into one arena, weights into another, and
    runs of kernel calls the executors know encoded as op tables (see kernels/program.py).

    ``steps`` is what Model.forward runs: (callable, args) pairs, usually a single executor call; a kernel the
    executors do not know (fractional_max_pool) stays a plain call on arena views, splitting the program.
    ``relocate(array)`` gives the arena view standing for a buffer (or a view of one) planned before the move.
    """

    def __init__(self, owned, steps):
        from stream_cnn.model.kernels import program as executors

        self._executors = executors
        self._relocated = {}
        self._ranges = []   # (start address, end address, arena offset) of each planned buffer
        offset = 0
        for buffer in owned:
            self._ranges.append((buffer.ctypes.data, buffer.ctypes.data + buffer.nbytes, offset))
            offset += -(-buffer.size // _ALIGN) * _ALIGN
        self.state = _aligned_zeros(max(offset, 1))
        for buffer, (_, _, start) in zip(owned, self._ranges):
            self.state[start:start + buffer.size] = buffer.reshape(-1)   # keeps the padded borders' fill
        self._params = []
        self._param_offsets = {}
        self._param_size = 0
        encoded = [self._encode(kernel, args) for kernel, args in steps]
        self.params = _aligned_zeros(max(self._param_size, 1))
        for array, start in self._params:
            self.params[start:start + array.size] = array.reshape(-1)
        self.steps = self._segments(steps, encoded)

    def _locate(self, array):
        """Arena offset of an array lying inside a planned buffer, else None."""
        address = array.ctypes.data
        for start, end, offset in self._ranges:
            if start <= address < end or (array.size == 0 and start <= address <= end):
                return offset + (address - start) // 4
        return None

    def relocate(self, array):
        """The arena view for a planned array; the same planned array always gives the same view object."""
        if not isinstance(array, np.ndarray) or array.dtype != np.float32:
            return array
        key = id(array)
        if key in self._relocated:
            return self._relocated[key][1]
        offset = self._locate(array)
        if offset is None:
            return array
        if not array.flags.c_contiguous:
            raise AssertionError("planned buffers are used through C-contiguous views only")
        view = self.state[offset:offset + array.size].reshape(array.shape)
        self._relocated[key] = (array, view)   # keeps the planned array alive so its id is not reused
        return view

    def _param(self, array):
        key = id(array)
        if key not in self._param_offsets:
            self._params.append((array, self._param_size))
            self._param_offsets[key] = self._param_size
            self._param_size += -(-array.size // _ALIGN) * _ALIGN
        return self._param_offsets[key]

    def _encode(self, kernel, args):
        """(op code, int64 row, float64 row) for a kernel call an executor can run, else None."""
        executors = self._executors
        kernel, args = executors.specialise(kernel, args)
        flat = kernel in executors.FLAT_OPS
        code, kinds = executors.FLAT_OPS[kernel] if flat else executors.KERNEL_OPS.get(kernel, (None, ""))
        if code is None or len(kinds) != len(args):
            return None
        row = np.zeros(executors.ROW_WIDTH, dtype=np.int64)
        reals = np.zeros(executors.FLOAT_SLOTS, dtype=np.float64)
        slot = n_int = n_float = 0
        for kind, value in zip(kinds, args):
            if kind in "1234":
                if not isinstance(value, np.ndarray) or value.dtype != np.float32 or not value.flags.c_contiguous:
                    return None
                shape = (value.size,) if flat else value.shape
                if len(shape) != int(kind):
                    return None
                offset = self._locate(value)
                arena = 0 if offset is not None else 1
                base = 1 + slot * executors.ARRAY_FIELDS
                row[base:base + 2 + len(shape)] = (arena, offset if arena == 0 else -1) + tuple(shape)
                slot += 1
            elif kind == "i":
                row[executors.INT_BASE + n_int] = int(value)
                n_int += 1
            else:
                reals[n_float] = float(value)
                n_float += 1
        # weights go to the params arena only once the whole call is known to be encodable
        for index, (kind, value) in enumerate(zip(kinds, args)):
            base = 1 + sum(1 for k in kinds[:index] if k in "1234") * executors.ARRAY_FIELDS
            if kind in "1234" and row[base] == 1:
                row[base + 1] = self._param(value)
        row[0] = code
        return code, row, reals

    def taking_input(self, buffer, top, left):
        """(executor, args without x) of a one-step program that first copies its x argument into `buffer` (a
        planned 3-D array: the model input, or the padded buffer holding it) at (top, left), else None."""
        if len(self.steps) != 1 or self.steps[0][0] not in (self._executors.run_basic, self._executors.run_full):
            return None
        offset = self._locate(buffer)
        if offset is None or buffer.ndim != 3:
            return None
        executor, (ops, reals, state, params, fns, _) = self.steps[0]
        row = np.zeros((1, self._executors.ROW_WIDTH), dtype=np.int64)
        row[0, :6] = (self._executors.OP_INPUT, 0, offset) + buffer.shape
        row[0, self._executors.INT_BASE:self._executors.INT_BASE + 2] = top, left
        ops = np.ascontiguousarray(np.concatenate([row, ops]))
        reals = np.ascontiguousarray(np.concatenate([np.zeros((1, reals.shape[1])), reals]))
        return executor, ops, reals, state, params, fns

    def _segments(self, steps, encoded):
        """Consecutive encodable calls become one executor call; the others stay plain calls on arena views."""
        result, run = [], []

        def flush():
            if run:
                ops = np.ascontiguousarray(np.stack([row for _, row, _ in run]))
                reals = np.ascontiguousarray(np.stack([r for _, _, r in run]))
                basic = all(code in self._executors.BASIC_OPS for code, _, _ in run)
                executor = self._executors.run_basic if basic else self._executors.run_full
                fns = self._executors.kernel_addresses([code for code, _, _ in run])
                result.append((executor, (ops, reals, self.state, self.params, fns, NO_INPUT)))
                run.clear()

        for (kernel, args), op in zip(steps, encoded):
            if op is None:
                flush()
                result.append((kernel, tuple(self.relocate(a) for a in args)))
            else:
                run.append(op)
        flush()
        return tuple(result)


def build_layers(config: ModelConfig):
    """Make, wire and shape the layers of a config. Returns (layers, expected weights, owners): the layer
    objects in order (unweighted), {"<layer>.<param>": shape} of the weights they need, and
    {"<layer>.<param>": (layer name, type)} for error messages. Raises ModelFileError on a bad config."""
    layers, known = [], {INPUT}
    shapes = {INPUT: tuple(config.input_shape)}
    previous = INPUT
    expected, owners = {}, {}
    for index, layer_config in enumerate(config.layers):
        layer_config = dict(layer_config)
        layer_config.setdefault("name", f"{layer_config['type']}{index + 1}")
        tag = (layer_config["name"], layer_config["type"])
        try:
            layer = make_layer(layer_config)
        except LayerError as err:
            raise config.error(err, tag) from None
        if layer.name in known:
            raise config.error(f"duplicate layer name '{layer.name}'", tag)
        if layer.inputs is None:
            layer.inputs = [previous]
        for input_name in layer.inputs:
            if input_name not in known:
                raise config.error(f"unknown input '{input_name}' (expected \"input\" or a layer defined "
                                   f"before this one: {', '.join(sorted(known - {INPUT})) or 'none'})", tag)
        try:
            layer.build([shapes[name] for name in layer.inputs])
        except LayerError as err:
            raise config.error(err, tag) from None
        for param, shape in layer.weight_shapes(layer.input_shapes).items():
            expected[f"{layer.name}.{param}"] = shape
            owners[f"{layer.name}.{param}"] = tag
        shapes[layer.name] = layer.output_shape
        known.add(layer.name)
        layers.append(layer)
        previous = layer.name
    return layers, expected, owners


def check_labels(config: ModelConfig, last_name: str, output_shape, required_by: str | None = None):
    """The number of classes a model with this output shape predicts, or None if it outputs feature maps;
    a ModelFileError (config.error) if the [output] labels do not match the output, or, with required_by (e.g.
    "training"), if the output is not a vector of class scores."""
    output_shape = tuple(output_shape)
    if len(output_shape) != 1:
        if required_by is not None:
            raise config.error(f"the last layer '{last_name}' outputs {output_shape}; {required_by} needs a vector "
                               "of class scores (end with a dense layer, optionally + softmax)")
        if config.labels:
            raise config.error(f"[output] labels given, but the last layer '{last_name}' outputs "
                               f"feature maps {output_shape}, not a vector of class scores")
        return None
    classes = output_shape[0]
    if config.labels is not None and len(config.labels) != classes:
        raise config.error(f"[output] has {len(config.labels)} labels, but the last layer "
                           f"'{last_name}' outputs {classes} values")
    return classes


def init_weights(config: ModelConfig, seed: int = 0, calibrate: bool = True) -> dict:
    """Seeded random weights for a config with no trained weights (for inspect, export, bench and tests).

    He-normal conv/dense weights, small random biases and batch-norm gamma/beta. With calibrate, each batch norm's
    mean and var are then measured on a few random inputs, layer by layer, as training would leave them, so
    activations stay near unit scale through deep residual stacks and the softmax is not saturated (a saturated
    softmax would make every "outputs agree" test trivially true). Without it they are random near (0, 1).
    """
    layers, expected, _ = build_layers(config)
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in expected.items():
        param = key.rsplit(".", 1)[1]
        if param == "weight":
            fan_in = int(np.prod(shape[1:]))
            values = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif param in ("gamma", "var"):
            values = rng.uniform(0.5, 1.5, shape)
        else:  # bias, beta, mean
            values = rng.uniform(-0.1, 0.1, shape)
        weights[key] = values.astype(np.float32)
    norms = [layer for layer in layers if layer.type == "batchnorm"]
    if calibrate and norms:
        _calibrate_batchnorm(config, weights, norms, rng)
    return weights


def _calibrate_batchnorm(config, weights, norms, rng, samples=8):
    model = Model(config, weights, fuse=False)
    pixels = rng.uniform(0.0, 255.0, (samples,) + tuple(config.input_shape))
    channel_shape = (1, -1, 1, 1)
    inputs = ((pixels * config.scale - np.reshape(config.mean, channel_shape)) / np.reshape(config.std, channel_shape))
    inputs = inputs.astype(np.float32)
    for norm in norms:
        seen = []
        for x in inputs:
            model.forward(x)
            seen.append(model.buffer(norm.inputs[0]).copy())
        seen = np.stack(seen).astype(np.float64)
        axes = (0,) + tuple(range(2, seen.ndim))   # all but the channel axis
        weights[f"{norm.name}.mean"] = seen.mean(axis=axes).astype(np.float32)
        weights[f"{norm.name}.var"] = seen.var(axis=axes).astype(np.float32)
        model = Model(config, weights, fuse=False)


class Model:
    """A loaded network. ``forward()`` runs the kernels on ``model.input`` and returns the model-owned output."""

    def __init__(self, config: ModelConfig, weights: dict | None = None, *, init_seed: int | None = None,
                 fuse: bool = True):
        """fuse=False keeps every layer's output in its own buffer (no batch-norm folding, no fused or in-place
        activations): slower, but ``buffer(name)`` then holds exactly that layer's output, for tests and
        calibration."""
        self.config = config
        self.fuse = fuse
        self.layers, expected, owners = build_layers(config)
        self._by_name = {layer.name: layer for layer in self.layers}
        if weights is None:
            if config.weights_path is not None:   # read even if no layer needs weights: extra arrays are errors
                weights = read_weights(config.weights_path, config.source)
            elif not expected:
                weights = {}
            elif init_seed is not None:
                weights = init_weights(config, init_seed)
            else:
                first = next(iter(expected))
                raise config.error(f"needs weight array '{first}' but the config names no weights file "
                                   "(add weights = \"<file>.npz\")", owners[first])
        self.weights = check_weights(config, weights or {}, expected, owners)
        for layer in self.layers:
            prefix = layer.name + "."
            try:
                layer.set_weights({k[len(prefix):]: v for k, v in self.weights.items() if k.startswith(prefix)})
            except LayerError as err:
                raise config.error(err, (layer.name, layer.type)) from None
        self.output_shape = self.layers[-1].output_shape
        classes = check_labels(self.config, self.layers[-1].name, self.output_shape)
        if classes is not None and self.config.labels is None:
            self.config.labels = [str(i) for i in range(classes)]
        self.input = np.zeros(config.input_shape, dtype=np.float32)
        self._plan()

    # --- loading helpers -----------------------------------------------------------------------------------

    def _single_reader_root(self, name, through):
        """Follow name back through alias layers whose types are in `through`, requiring every output on the way
        to have exactly one reader; return the layer owning the buffer, or None (shared, or the model input)."""
        while True:
            if name == INPUT or self._readers[name] != 1:
                return None
            if name in self._alias_of:
                if self._by_name[name].type not in through:
                    return None
                name = self._alias_of[name]
                continue
            return self._by_name[name]

    def _plan(self):
        """Decide fusions, allocate every buffer and bind the kernel calls of the forward pass."""
        self._readers = {INPUT: 0}
        for layer in self.layers:
            self._readers[layer.name] = 0
            for name in layer.inputs:
                self._readers[name] += 1
        self._readers[self.layers[-1].name] += 1  # the caller reads the output
        self._alias_of = {}   # layer name -> input name whose buffer it shares
        in_place = set()      # aliases that still run a kernel, on the shared buffer
        folded = set()
        for layer in self.layers:
            layer.reset_runtime()
            source = layer.inputs[0]
            if layer.alias:
                self._alias_of[layer.name] = source
            elif not self.fuse:
                continue
            elif layer.type == "batchnorm":
                target = self._single_reader_root(source, through=("dropout",))
                if target is not None and target.type in ("conv2d", "filter_bank", "dense") \
                        and target.run_act == 0:
                    target.fold_batchnorm(*layer.scale_shift())
                    self._alias_of[layer.name] = source
                    folded.add(layer.name)
            elif getattr(layer, "in_place", False):
                target = self._single_reader_root(source, through=("dropout", "flatten", "batchnorm",
                                                                   "activation", "softmax"))
                if target is None:
                    continue
                if layer.type == "activation" and target.fusable and target.run_act == 0 \
                        and target.name not in self._alias_of:
                    target.run_act, target.run_alpha = layer.act, layer.alpha
                else:
                    in_place.add(layer.name)
                self._alias_of[layer.name] = source

        pooled_by = self._plan_conv_pool_fusions(in_place) if self.fuse else {}
        pool_of = {conv: pool for pool, (conv, _) in pooled_by.items()}
        for conv in pool_of:
            self._by_name[conv].pooled_2x2 = True   # its padded input may stop before rows it never reads
        through = {name: pool for pool, (_, path) in pooled_by.items() for name in path}
        add_pools = self._plan_pool_add_fusions(pooled_by) if self.fuse else {}
        fused_pools = {pool: add for add, (pool, _) in add_pools.items()}
        # Kernels the Model lets write at an offset: max_pool_flat_add, and winograd_conv_pooled for a conv + pool
        # (the pool names the fused output; digits' pooled maps then land inside the next conv's padded input).
        offset_pools = {pool for pool, (conv, _) in pooled_by.items()
                        if self._by_name[conv].pooled_writes_at_offset(self._by_name[pool].output_shape)}
        writers = set(add_pools) | offset_pools
        # and unpooled convs whose kernel writes at an offset (conv3x3_flat_into)
        writers |= {layer.name for layer in self.layers
                    if layer.name not in pool_of and getattr(layer, "writes_at_offset", lambda: False)()}
        excluded = (set(pooled_by) - offset_pools) | set(pool_of) | set(through) | set(fused_pools)
        # a pool + add that reads an even map unpadded (max_pool3s2_add) keeps its input a plain map
        excluded |= {self._buffer_owner(self._by_name[pool].inputs[0]) for pool in fused_pools
                     if self._by_name[pool].add_reads_unpadded()} - {None}
        padded_out = self._plan_padded_outputs(in_place, excluded, writers) if self.fuse else {}

        runtime = _Runtime()
        # The model input kept inside the padded buffer its readers need: forward(x) and the preprocessor write
        # its interior, and no pad_into copy runs (digits: 0.23 us of a ~12 us forward).
        self.padded_input = self._plan_padded_input() if self.fuse else None
        if self.padded_input is not None:
            self.input = runtime.padded_output(tuple(self.config.input_shape), *self.padded_input)
        buffers = {INPUT: self.input}
        planned_input = self.input
        owned = [] if self.padded_input is not None else [self.input]
        for layer in self.layers:
            inputs = [buffers[name] for name in layer.inputs]
            if layer.name in fused_pools:
                buffers[layer.name] = None   # computed by the add it feeds (below); shares the add's buffer
                continue
            if layer.name in add_pools:
                # max pool + residual add in one kernel, writing the sum (into the next layer's padded buffer
                # when padded_out placed it there); the pooled map itself is never stored.
                pool_name, residual = add_pools[layer.name]
                pool = self._by_name[pool_name]
                if layer.name in padded_out:
                    out = runtime.padded_output(layer.output_shape, *padded_out[layer.name])
                else:
                    out = np.zeros(layer.output_shape, dtype=np.float32)
                    owned.append(out)
                pool.plan_add(runtime, pool.inputs, [buffers[name] for name in pool.inputs], buffers[residual],
                              out)
                buffers[layer.name] = buffers[pool_name] = out
                continue
            if layer.name in pool_of:
                # conv + 2x2 max pool in one kernel: the conv writes the pooled map straight into the pool's
                # buffer; the full-size conv output never exists, so the conv's buffer (and feature map) is the
                # pooled one.
                pool_name = pool_of[layer.name]
                if pool_name in padded_out:
                    out = runtime.padded_output(self._by_name[pool_name].output_shape, *padded_out[pool_name])
                else:
                    out = np.zeros(self._by_name[pool_name].output_shape, dtype=np.float32)
                    owned.append(out)
                layer.plan_pooled(runtime, layer.inputs, inputs, out)
            elif layer.name in through or layer.name in pooled_by:
                out = buffers[pooled_by[layer.name][0] if layer.name in pooled_by
                              else pooled_by[through[layer.name]][0]]
            elif layer.name in self._alias_of:
                out = buffers[self._alias_of[layer.name]].reshape(layer.output_shape)
                if layer.name in in_place:
                    layer.plan(runtime, layer.inputs, inputs, out)
            elif layer.name in padded_out:
                # a conv writing its output straight into its readers' padded buffer (writes_at_offset)
                out = runtime.padded_output(layer.output_shape, *padded_out[layer.name])
                layer.plan(runtime, layer.inputs, inputs, out)
            else:
                out = np.zeros(layer.output_shape, dtype=np.float32)
                owned.append(out)
                layer.plan(runtime, layer.inputs, inputs, out)
            buffers[layer.name] = out
        owned += runtime.padded_buffers() + runtime.scratch_buffers + runtime.padded_outputs()
        # Bytes of run state: the input, every layer output that is not a view, the padded copies and scratch.
        self.buffer_bytes = sum(b.nbytes for b in owned)
        program = Program(owned, runtime.steps)
        self._steps = program.steps
        self.program = program

        interiors = {}

        def relocate(array):
            placed = runtime.interior(array)
            if placed is None:
                return program.relocate(array)
            # a map kept inside its reader's padded buffer: the interior of its arena copy, one view object per map
            # (a fused conv and its pool name the same map)
            key = runtime.key(array)
            if key not in interiors:
                xp, top, left = placed
                interiors[key] = program.relocate(xp)[:, top:top + array.shape[1], left:left + array.shape[2]]
            return interiors[key]
        self._buffers = {name: relocate(array) for name, array in buffers.items()}
        self.input = self._buffers[INPUT]
        self._input_shape = self.input.shape
        self._only_step = self._steps[0] if len(self._steps) == 1 else None
        # forward(x) on a one-executor program: one call that copies x in first (see program._take_input)
        self._taking_input = program.taking_input(*runtime.storage(planned_input))
        self.output = self._buffers[self.layers[-1].name]
        self._feature_maps = [(layer.name, self._buffers[layer.name]) for layer in self.layers
                              if layer.is_feature_map]
        self.fused = {name: ("folded" if name in folded else "in place" if name in in_place else "fused"
                             if not self._by_name[name].alias else "view") for name in self._alias_of}
        self.fused.update({pool: "fused" for pool in pooled_by})
        self.fused.update({pool: "fused" for pool in fused_pools})
        self.padded_outputs = dict(padded_out)

    def _plan_conv_pool_fusions(self, in_place):
        """{max pool name: (conv name, [alias layers between])} for every 2x2 stride-2 unpadded max pool whose
        input is a 3x3 stride-1 conv read by nobody else (through folded BN / fused activation / dropout views)
        with a monotone fused activation, so pooling before bias + activation is exact."""
        fusions = {}
        for layer in self.layers:
            if layer.type != "max_pool" or layer.kernel != (2, 2) or layer.stride != (2, 2) or any(layer.pads):
                continue
            name, path = layer.inputs[0], []
            while name != INPUT and name in self._alias_of and name not in in_place \
                    and self._readers[name] == 1 and self._by_name[name].type in ("batchnorm", "activation",
                                                                                   "dropout"):
                path.append(name)
                name = self._alias_of[name]
            conv = self._by_name.get(name)
            if conv is None or name in self._alias_of or self._readers[name] != 1 \
                    or not getattr(conv, "flat_eligible", lambda: False)() \
                    or not (conv.run_act in (0, 1, 3) or (conv.run_act == 2 and conv.run_alpha >= 0)):
                continue
            fusions[layer.name] = (name, path)
        return fusions

    def _plan_pool_add_fusions(self, pooled_by):
        """{add name: (max pool name, other input name)} for every two-input add without a fused activation
        whose one input is a max pool that only it reads and that runs as kernels.max_pool_flat: the pool and
        the add then run as one max_pool_flat_add call."""
        fusions = {}
        for layer in self.layers:
            if layer.type != "add" or len(layer.inputs) != 2 or layer.run_act != 0 \
                    or layer.name in self._alias_of or layer.inputs[0] == layer.inputs[1]:
                continue
            for index, name in enumerate(layer.inputs):
                pool = self._by_name.get(name)
                if pool is not None and pool.type == "max_pool" and name not in self._alias_of \
                        and name not in pooled_by and self._readers[name] == 1 and pool.runs_flat():
                    fusions[layer.name] = (name, layer.inputs[1 - index])
                    break
        return fusions

    def _buffer_root(self, name):
        """The layer (or INPUT) whose buffer `name`'s output shares, following alias layers."""
        while name in self._alias_of:
            name = self._alias_of[name]
        return name

    def _buffer_owner(self, name):
        """The layer whose buffer holds `name`'s output as the same (C, H, W) map, or None (a reshape on the
        way, or the model input)."""
        root = self._buffer_root(name)
        if root == INPUT or (name != root and self._by_name[name].output_shape != self._by_name[root].output_shape):
            return None
        return root

    def _plan_padded_input(self):
        """(pads, fill) if every layer reading the model input reads it through a padded copy with this one
        border and fill (no view layer, in-place kernel or offset reader on it), else None."""
        requests = set()
        for layer in self.layers:
            for index, name in enumerate(layer.inputs):
                if name != INPUT:
                    continue
                request = None if layer.name in self._alias_of else layer.padded_read(index)
                if request is None or request == "offset":
                    return None
                requests.add(request)
        return next(iter(requests)) if len(requests) == 1 else None

    def _plan_padded_outputs(self, in_place, excluded, writers):
        """{layer name: (pads, fill)}: layers whose output is kept in the padded buffer its readers need,
        written there by their own kernel, so no pad_into copy runs. A layer qualifies if it is in `writers`
        (its kernel can write at an offset), is not in `excluded`, no in-place kernel or reshape runs on its
        buffer, it is not the model output, and every reader either pads it with one and the same border and
        fill or reads it at an offset (strided 1x1 convs' subsample). Readers of the plain map (feature_maps(),
        buffer(name)) get the interior view."""
        wanted, blocked = {}, set(excluded)
        blocked.add(self._buffer_root(self.layers[-1].name))
        for layer in self.layers:
            if layer.name in self._alias_of:
                if layer.name in in_place or self._buffer_owner(layer.name) is None:
                    blocked.add(self._buffer_root(layer.name))
                continue
            for index, name in enumerate(layer.inputs):
                owner = self._buffer_owner(name)
                if owner is None:
                    continue
                request = layer.padded_read(index)
                if request is None:
                    blocked.add(owner)
                elif request != "offset":
                    wanted.setdefault(owner, set()).add(request)
        return {owner: next(iter(requests)) for owner, requests in wanted.items()
                if owner in writers and owner not in blocked and len(requests) == 1}

    # --- running -------------------------------------------------------------------------------------------

    def forward(self, x=None):
        """Run on model.input (after copying x into it, if given); returns the model-owned output buffer."""
        # Python costs count at batch 1 (digits' whole forward is ~12 us): slice assignment copies ~0.07 us
        # faster than np.copyto, and a one-step program (any model run by one executor) skips the loop.
        if x is not None:
            if x.shape != self._input_shape:
                raise ValueError(f"model {self.config.name!r} takes input of shape {self.input.shape}, got {x.shape}")
            if self._taking_input is not None:
                executor, ops, reals, state, params, fns = self._taking_input
                executor(ops, reals, state, params, fns, x)
                return self.output
            self.input[...] = x
        if self._only_step is not None:
            self._only_step[0](*self._only_step[1])
            return self.output
        for kernel, args in self._steps:
            kernel(*args)
        return self.output

    def feature_maps(self):
        """[(layer name, (C, H, W) view)] of the conv layers after the last forward (after fused BN and
        activation). A conv fused with the 2x2 max pool after it shows the pooled map: the full-size map is
        never computed (a quarter of the pixels, same channels; fine for the live panel). A map kept inside its
        readers' padded buffer is its interior view (not C-contiguous)."""
        return self._feature_maps

    def buffer(self, name):
        """The buffer holding a layer's output (shared with its input for views and fused layers; a max pool run
        inside the add after it shows the add's buffer; a map kept in a padded buffer is its interior view)."""
        return self._buffers[name]

    def reference_outputs(self, x=None):
        """{layer name: output} computed by the NumPy twin on the unfolded, unfused graph (slow; for tests)."""
        outputs = {INPUT: np.asarray(self.input if x is None else x, dtype=np.float32)}
        for layer in self.layers:
            outputs[layer.name] = layer.reference_forward([outputs[name] for name in layer.inputs])
        return outputs

    def reference_forward(self, x=None):
        return self.reference_outputs(x)[self.layers[-1].name]

    # --- describing and saving -----------------------------------------------------------------------------

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    def summary(self) -> list:
        """One dict per layer: name, type, inputs, output_shape, params, flops, runs_as."""
        return [{"name": layer.name, "type": layer.type, "inputs": list(layer.inputs),
                 "output_shape": list(layer.output_shape), "params": layer.n_params, "flops": layer.flops,
                 "runs_as": self.fused.get(layer.name, "kernel")} for layer in self.layers]

    def save(self, path) -> Path:
        """Write the config TOML at path and the weights as <stem>.npz beside it (no .npz if none needed)."""
        path = Path(path)
        if path.suffix != ".toml":
            path = path.with_suffix(".toml")
        weights_path = path.with_suffix(".npz")
        config = self.config
        saved = ModelConfig(
            name=config.name, description=config.description,
            weights=weights_path.name if self.weights else None, input_shape=config.input_shape,
            color=config.color, scale=config.scale, mean=config.mean, std=config.std, resize=config.resize,
            preprocess=config.preprocess, labels=config.labels, min_confidence=config.min_confidence,
            layers=[layer.get_config() for layer in self.layers], path=path, extra=config.extra)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_config(saved, path)
            if self.weights:
                with open(weights_path, "wb") as handle:
                    np.savez(handle, **self.weights)
        except OSError as err:
            from stream_cnn.errors import OutputError
            raise OutputError(f"{path}: cannot write model: {err.strerror or err}") from None
        return path

    def __repr__(self):
        return f"<Model {self.config.name!r} {tuple(self.config.input_shape)} -> {self.output_shape}>"


def load_model(source, *, init_seed: int | None = None) -> Model:
    """A bundled model name ("digits") or a path to a .toml config. With init_seed, a config that names no
    weights file gets seeded random weights (init_weights) instead of failing."""
    from stream_cnn.model.zoo import resolve

    path = resolve(source)
    return Model(read_config(path), init_seed=init_seed)


__all__ = ["Model", "ModelConfig", "ModelFileError", "build_layers", "check_labels", "init_weights", "load_model"]
