"""Accuracy and confusion matrix of a model on a labelled IDX split, run through the inference engine
(`load_model(...).forward`, one image at a time), so the number measured is what users run."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream_cnn.data import load_dataset
from stream_cnn.errors import DataError
from stream_cnn.train.inputs import model_inputs


@dataclass
class EvalResult:
    model: str
    data: str
    split: str
    labels: list[str]
    confusion: np.ndarray     # (K, K) int64: rows = true class, columns = predicted class

    @property
    def n_images(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.n_images, 1))

    def per_class_accuracy(self) -> list[float | None]:
        totals = self.confusion.sum(axis=1)
        return [float(self.confusion[k, k] / totals[k]) if totals[k] else None for k in range(len(totals))]

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "split": self.split, "n_images": self.n_images,
                "accuracy": self.accuracy, "labels": self.labels,
                "per_class_accuracy": self.per_class_accuracy(), "confusion": self.confusion.tolist()}


def resolve_model_source(model: str) -> str:
    """`eval` also accepts the .npz that `train --out` wrote: the config TOML is beside it."""
    path = Path(model)
    if path.suffix == ".npz":
        return str(path.with_suffix(".toml"))
    return model


def evaluate(model: str, data_dir, split: str = "test", limit: int | None = None, progress=None) -> EvalResult:
    from stream_cnn.model import load_model

    net = load_model(resolve_model_source(model))
    data = load_dataset(data_dir, split)
    images, labels = data.images, data.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if len(labels) == 0:
        raise DataError(f"{data_dir}: the {split} split has no images")
    x = model_inputs(images, net.config)
    n_classes = int(np.prod(net.output_shape))
    if labels.max() >= n_classes:
        raise DataError(f"{data_dir}: labels go up to {labels.max()} but the model has {n_classes} classes")
    predictions = np.empty(len(x), np.int64)
    bar = progress(len(x)) if progress else None
    if bar is not None:
        bar.__enter__()
    try:
        for i in range(len(x)):
            predictions[i] = int(np.argmax(net.forward(x[i])))
            if bar is not None and (i + 1) % 500 == 0:
                bar.update(500)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    names = list(net.config.labels) if net.config.labels else [str(k) for k in range(n_classes)]
    return EvalResult(model=str(net.config.source), data=str(data_dir), split=split, labels=names,
                      confusion=confusion)


def format_confusion(result: EvalResult) -> str:
    """A text table: rows = true class, columns = predicted class, plus per-class accuracy."""
    labels = result.labels
    width = max(5, max(len(label) for label in labels) + 1, len(str(int(result.confusion.max()))) + 1)
    lines = ["true".rjust(width) + " " + "".join(label.rjust(width) for label in labels) + "   accuracy"]
    for k, label in enumerate(labels):
        row = "".join(str(int(v)).rjust(width) for v in result.confusion[k])
        acc = result.per_class_accuracy()[k]
        lines.append(label.rjust(width) + " " + row + ("   n/a" if acc is None else f"   {acc:.4f}"))
    return "\n".join(lines)
