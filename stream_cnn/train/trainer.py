"""The training loop: config + IDX data set -> trained weights (.npz) and a config TOML beside them.

A run is a pure function of (config, data, options, seed): the seed drives weight initialisation, the shuffle,
augmentation and dropout, and the kernels sum in a fixed order, so the same command gives the same weights.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from stream_cnn.data import load_dataset
from stream_cnn.errors import DataError, ModelFileError, OutputError, UsageError
from stream_cnn.model.config import ModelConfig, read_config
from stream_cnn.train.augment import augment_batch
from stream_cnn.train.inputs import check_images_fit, normalise, scale_pixels
from stream_cnn.train.kernels import softmax_cross_entropy
from stream_cnn.train.network import Network
from stream_cnn.train.optim import OPTIMIZERS, cosine_lr


def load_config(path: str | os.PathLike) -> tuple[ModelConfig, str]:
    """The model config as the inference engine reads it (stream_cnn.model.config: same checks, same messages),
    and its text, which save_weights writes back beside the weights with only the `weights` line changed."""
    config = read_config(path)
    try:
        text = config.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:   # it was readable a moment ago
        raise ModelFileError(f"{config.path}: cannot read model config again ({err})") from None
    return config, text


@dataclass
class TrainOptions:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    augment: bool = True
    seed: int = 0
    limit: int | None = None
    val_size: int = 5000
    warmup_steps: int = 200


@dataclass
class EpochStats:
    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float | None
    seconds: float
    lr: float


@dataclass
class TrainResult:
    network: Network
    history: list[EpochStats] = field(default_factory=list)


def split_train_val(n_images: int, options: TrainOptions) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation parts: the first `limit` images, the last part held out
    (`val_size`, at most a tenth of them)."""
    n = n_images if options.limit is None else min(options.limit, n_images)
    n_val = min(options.val_size, n // 10)
    return np.arange(0, n - n_val), np.arange(n - n_val, n)


def train_network(config: ModelConfig, images: np.ndarray, labels: np.ndarray, options: TrainOptions,
                  progress: Callable | None = None, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train a fresh network of `config` on uint8 images (N, H, W) with integer labels.

    progress(n_batches, label) -> context manager with .update(k) (e.g. click.progressbar); log(line) gets one
    line per epoch."""
    if options.optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {options.optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    if options.epochs < 1 or options.batch_size < 1 or not options.lr > 0:
        raise UsageError("epochs, batch size and learning rate must be positive")
    check_images_fit(images, config)
    network = Network(config)
    n_classes = network.check_classifier(config)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DataError(f"labels run from {labels.min()} to {labels.max()}, the model has {n_classes} classes")

    rng = np.random.default_rng(options.seed)
    network.init_params(rng)
    params = [p for _, p, _ in network.parameters()]
    grads = [g for _, _, g in network.parameters()]
    if options.optimizer == "sgd":
        optimizer = OPTIMIZERS["sgd"](params, momentum=options.momentum, weight_decay=options.weight_decay)
    else:
        optimizer = OPTIMIZERS["adam"](params, weight_decay=options.weight_decay)

    train_idx, val_idx = split_train_val(len(images), options)
    if len(train_idx) == 0:
        raise DataError("no training images left after holding out the validation part")
    val_x = normalise(scale_pixels(images[val_idx], config), config) if len(val_idx) else None
    val_y = labels[val_idx]

    batch = options.batch_size
    steps_per_epoch = math.ceil(len(train_idx) / batch)
    total_steps = steps_per_epoch * options.epochs
    step = 0
    result = TrainResult(network=network)
    for epoch in range(1, options.epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(train_idx)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = progress(steps_per_epoch, f"epoch {epoch}/{options.epochs}") if progress else None
        if bar is not None:
            bar.__enter__()
        try:
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                unit = scale_pixels(images[idx], config)
                if options.augment:
                    unit = augment_batch(unit, rng)
                x = normalise(unit, config)
                y = labels[idx]
                logits = network.forward(x, training=True, rng=rng)
                probs = np.empty_like(logits)
                grad_logits = np.empty_like(logits)
                loss = softmax_cross_entropy(logits, y, probs, grad_logits)
                if not math.isfinite(loss):
                    raise UsageError(f"training diverged (loss {loss}) at epoch {epoch}; try a smaller --lr")
                network.backward(grad_logits)
                lr = cosine_lr(options.lr, step, total_steps, min(options.warmup_steps, total_steps // 10))
                optimizer.step(grads, lr)
                step += 1
                loss_sum += loss * len(idx)
                correct += int((probs.argmax(axis=1) == y).sum())
                seen += len(idx)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        val_acc = None
        if val_x is not None:
            val_acc = float((network.predict(val_x).argmax(axis=1) == val_y).mean())
        stats = EpochStats(epoch=epoch, loss=loss_sum / seen, train_accuracy=correct / seen, val_accuracy=val_acc,
                           seconds=time.perf_counter() - started, lr=lr)
        result.history.append(stats)
        if log is not None:
            val_text = f"{val_acc:.4f}" if val_acc is not None else "n/a"
            log(f"epoch {epoch}/{options.epochs}  loss {stats.loss:.4f}  train acc {stats.train_accuracy:.4f}  "
                f"val acc {val_text}  lr {lr:.2e}  ({stats.seconds:.1f} s)")
    return result


# ---------------------------------------------------------------------------------------------------- output
def output_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    """The weights path (must end in .npz) and the config TOML written beside it (same stem)."""
    out = Path(out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {out}: the weights file must end in .npz")
    return out, out.with_suffix(".toml")


def check_outputs(out: str | os.PathLike, force: bool) -> tuple[Path, Path]:
    """Refuse to overwrite existing outputs without force, and fail before training if they cannot be written."""
    weights_path, toml_path = output_paths(out)
    if not force:
        for path in (weights_path, toml_path):
            if path.exists():
                raise OutputError(f"{path} exists; pass --force to overwrite it (training never resumes from it)")
    directory = weights_path.parent if str(weights_path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"{weights_path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise OutputError(f"{weights_path}: directory {directory} is not writable")
    for path in (weights_path, toml_path):
        if path.exists() and (path.is_dir() or not os.access(path, os.W_OK)):
            raise OutputError(f"{path} cannot be overwritten")
    return weights_path, toml_path


_WEIGHTS_LINE = re.compile(r'^weights\s*=.*$', re.MULTILINE)
_FIRST_TABLE = re.compile(r'^\s*\[', re.MULTILINE)


def config_text_with_weights(text: str, weights_name: str) -> str:
    """The config text with its top-level `weights = ...` pointing at weights_name (comments kept)."""
    line = f'weights = "{weights_name}"'
    first_table = _FIRST_TABLE.search(text)
    head_end = first_table.start() if first_table else len(text)
    head, tail = text[:head_end], text[head_end:]
    if _WEIGHTS_LINE.search(head):
        head = _WEIGHTS_LINE.sub(line, head, count=1)
    else:
        head = head.rstrip("\n") + ("\n" if head.strip() else "") + line + "\n\n"
    return head + tail


def _atomic_write(path: Path, write: Callable[[object], None]) -> None:
    # write to a temporary file in the same directory, then rename: no half-written weights on Ctrl-C
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions of a new file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_weights(network: Network, config_text: str, weights_path: Path, toml_path: Path) -> None:
    arrays = {key: np.ascontiguousarray(value, dtype=np.float32) for key, value, _ in network.parameters()}
    try:
        _atomic_write(weights_path, lambda handle: np.savez(handle, **arrays))
        text = config_text_with_weights(config_text, weights_path.name)
        tomllib.loads(text)  # never write a config that does not parse
        _atomic_write(toml_path, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as err:
        raise OutputError(f"{weights_path}: cannot write ({err.strerror or err})") from None


def load_training_data(data_dir, split: str = "train"):
    data = load_dataset(data_dir, split)
    if len(data) == 0:
        raise DataError(f"{data_dir}: the {split} split has no images")
    return data
