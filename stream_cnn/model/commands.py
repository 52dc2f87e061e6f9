"""`stream-cnn inspect MODEL` and `stream-cnn export MODEL OUT.onnx`."""
import json

import click


def _load_for_tools(source, seed):
    """(model, weights note). A config without a weights file gets seeded random weights, so it can still be
    inspected, exported and benchmarked."""
    from stream_cnn.model.config import read_config
    from stream_cnn.model.graph import Model
    from stream_cnn.model.zoo import resolve

    config = read_config(resolve(source))
    if config.weights is not None:
        return Model(config), str(config.weights_path)
    model = Model(config, init_seed=seed)
    if model.weights:
        return model, f"none in the config: seeded random weights (seed {seed}), untrained"
    return model, "none needed (fixed filters only)"


def _shape(shape) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"


def _si(value) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return str(value)


@click.command("inspect")
@click.argument("model_name", metavar="MODEL")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def inspect_command(model_name, as_json):
    """Show MODEL's layers: name, type, output shape, parameters and FLOPs, with totals.

    MODEL is a bundled model name (e.g. digits) or a path to a .toml config. FLOPs count a multiply-add as two;
    params include the frozen weights of filter banks.
    "runs as" tells how the layer executes after loading: its own kernel, folded (batch norm into the conv or
    dense before it), fused (activation into the layer before it), in place, or a view (no work).
    """
    model, weights_note = _load_for_tools(model_name, seed=0)
    config = model.config
    rows = model.summary()
    buffer_bytes = model.buffer_bytes
    if as_json:
        click.echo(json.dumps({
            "name": config.name, "path": str(config.path), "description": config.description,
            "input": {"shape": list(config.input_shape), "color": config.color, "scale": config.scale,
                      "mean": list(config.mean), "std": list(config.std), "resize": config.resize,
                      "preprocess": config.preprocess},
            "weights": weights_note, "labels": config.labels, "output_shape": list(model.output_shape),
            "layers": rows, "total_params": model.n_params, "total_flops": model.flops,
            "buffer_bytes": buffer_bytes,
        }, indent=2))
        return
    click.echo(f"model:   {config.name}  ({config.path})")
    if config.description:
        click.echo(f"         {config.description}")
    click.echo(f"input:   {_shape(config.input_shape)} {config.color}, pixel * {config.scale:.6g}, "
               f"mean {list(config.mean)}, std {list(config.std)}, resize {config.resize}, "
               f"preprocess {config.preprocess}")
    click.echo(f"weights: {weights_note}")
    if config.labels:
        click.echo(f"output:  {len(config.labels)} classes: {', '.join(config.labels)}")
    else:
        click.echo(f"output:  feature maps {_shape(model.output_shape)}")
    click.echo("")
    header = ("name", "type", "output shape", "params", "FLOPs", "runs as")
    table = [(r["name"], r["type"], _shape(r["output_shape"]), f"{r['params']:,}", f"{r['flops']:,}",
              r["runs_as"]) for r in rows]
    table.append(("total", "", _shape(model.output_shape), f"{model.n_params:,}", f"{model.flops:,}", ""))
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header))]
    right = {3, 4}

    def line(row):
        cells = [str(v).rjust(w) if i in right else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    click.echo(line(header))
    click.echo(line(["-" * w for w in widths]))
    for row in table[:-1]:
        click.echo(line(row))
    click.echo(line(["-" * w for w in widths]))
    click.echo(line(table[-1]))
    click.echo(f"\n{len(rows)} layers, {model.n_params:,} parameters, {_si(model.flops)}FLOPs per frame, "
               f"{buffer_bytes / 1024:.1f} KiB of preallocated buffers")


@click.command("export")
@click.argument("model_name", metavar="MODEL")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--opset", default=17, show_default=True, type=click.IntRange(13, 21),
              help="ONNX opset version.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights used when the config "
              "names no weights file.")
@click.option("--verify", is_flag=True, help="Run the exported file in ONNX Runtime on a random input and "
              "report the largest difference from stream-cnn's own forward pass.")
def export_command(model_name, output, opset, seed, verify):
    """Write MODEL as an ONNX file OUTPUT (needs the `onnx` package).

    MODEL is a bundled model name or a path to a .toml config. Conv layers with a fused activation export as
    Conv + activation nodes, dense as Gemm, batch norm as BatchNormalization; fractional and adaptive pools as
    exact Gather/Max or MatMul equivalents.
    """
    from stream_cnn.model.onnx_export import export_onnx

    model, weights_note = _load_for_tools(model_name, seed=seed)
    if weights_note.startswith("none in the config"):
        click.echo(f"stream-cnn: note: {model.config.name} names no weights file; exporting seeded random "
                   f"weights (seed {seed}), untrained", err=True)
    path = export_onnx(model, output, opset=opset)
    click.echo(f"wrote {path} (opset {opset}, input \"input\" {_shape((1,) + tuple(model.config.input_shape))}, "
               f"output \"{model.layers[-1].name}\" {_shape((1,) + tuple(model.output_shape))})")
    if verify:
        import numpy as np

        from stream_cnn.errors import UsageError
        try:
            import onnxruntime
        except ImportError:
            raise UsageError("--verify needs the 'onnxruntime' package: pip install onnxruntime") from None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(seed).random(model.config.input_shape, dtype=np.float32)
        theirs = session.run(None, {"input": x[None]})[0][0]
        ours = model.forward(x)
        click.echo(f"onnxruntime {onnxruntime.__version__} agrees: max abs difference "
                   f"{float(np.max(np.abs(theirs - ours))):.3g}")


commands = [inspect_command, export_command]
