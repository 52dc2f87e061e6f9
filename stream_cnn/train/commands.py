"""`stream-cnn train` and `stream-cnn eval`."""
from __future__ import annotations

import json
import sys
import time

import click

from stream_cnn.errors import StreamCnnError, UsageError


def _progress(length: int, label: str = ""):
    return click.progressbar(length=length, label=label, file=sys.stderr, width=30, show_eta=True)


@click.command("train")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(),
              help="Folder with the IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]).")
@click.option("--epochs", type=int, required=True, help="Passes over the training part.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (.npz); the config TOML is written beside it with the same stem.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds initialisation, shuffling, augmentation and dropout: same seed, same weights.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True,
              help="Peak learning rate (linear warm-up, then cosine decay to 2% of it).")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True, help="SGD momentum.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Camera-like augmentation: shift, rotation, scale, shear, stroke width, blur, noise, contrast.")
@click.option("--limit", type=int, default=None, help="Use only the first N training images.")
@click.option("--val-size", type=int, default=5000, show_default=True,
              help="Hold out the last N of the (limited) training images for validation (at most a tenth).")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def train_command(config, data_dir, epochs, out, seed, batch_size, lr, optimizer, momentum, weight_decay, augment,
                  limit, val_size, force):
    """Train the model of CONFIG (a model TOML) on an IDX data set with stream-cnn's own backprop.

    Always starts from fresh weights (nothing is resumed). Prints a progress bar per epoch and loss, training
    accuracy and validation accuracy after each; writes WEIGHTS.npz and WEIGHTS.toml."""
    from stream_cnn.train.network import Network
    from stream_cnn.train.trainer import (TrainOptions, check_outputs, load_config, load_training_data,
                                          save_weights, split_train_val, train_network)

    if epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if not lr > 0:
        raise UsageError(f"--lr must be positive, got {lr}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if val_size < 0:
        raise UsageError(f"--val-size must not be negative, got {val_size}")
    weights_path, toml_path = check_outputs(out, force)
    model_config, config_text = load_config(config)
    network = Network(model_config)   # a bad config fails here, before the data set is read
    network.check_classifier(model_config)
    data = load_training_data(data_dir, "train")
    options = TrainOptions(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
                           weight_decay=weight_decay, augment=augment, seed=seed, limit=limit, val_size=val_size)
    n_train, n_val = (len(part) for part in split_train_val(len(data), options))
    click.echo(f"training {config} on {n_train} images of {data_dir} (validation: {n_val}), "
               f"{network.flops / 1e6:.2f} MFLOP per image, {options.optimizer}, lr {lr}, seed {seed}", err=True)
    started = time.perf_counter()
    try:
        result = train_network(model_config, data.images, data.labels, options, progress=_progress,
                               log=lambda line: click.echo(line))
    except KeyboardInterrupt:
        raise StreamCnnError(f"training interrupted; nothing was written to {weights_path}", exit_code=130) from None
    save_weights(result.network, config_text, weights_path, toml_path)
    click.echo(f"wrote {weights_path} and {toml_path} ({time.perf_counter() - started:.0f} s)")


@click.command("eval")
@click.argument("model")
@click.option("--data", "data_dir", required=True, type=click.Path(),
              help="Folder with the IDX files (t10k-*/train-* images and labels, raw or .gz).")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--limit", type=int, default=None, help="Evaluate only the first N images.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def eval_command(model, data_dir, split, limit, as_json):
    """Accuracy and confusion matrix of MODEL (a bundled name such as `digits`, a .toml, or the .npz written by
    `train`) on a labelled IDX split, run through the inference engine one image at a time."""
    from stream_cnn.train.evaluate import evaluate, format_confusion

    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    result = evaluate(model, data_dir, split, limit=limit,
                      progress=None if as_json else (lambda n: _progress(n, "evaluating")))
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(f"model {result.model} on {result.data} ({result.split}, {result.n_images} images)")
    click.echo(f"accuracy {result.accuracy:.4f} ({int(result.confusion.trace())}/{result.n_images})")
    click.echo("confusion matrix (rows: true class, columns: predicted class)")
    click.echo(format_confusion(result))


commands = [train_command, eval_command]
