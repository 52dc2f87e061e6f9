"""Read the IDX format (LeCun's MNIST files) with NumPy only; raw or gzip-compressed.

IDX: 2 zero bytes, a type byte, a rank byte, then `rank` big-endian uint32 sizes, then the data, big-endian.
"""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream_cnn.errors import DataError

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# The two split names used by MNIST and Fashion-MNIST.
_SPLITS = {"train": "train", "test": "t10k"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Return the array stored in an IDX file (`.gz` is decompressed). Raises DataError on a bad file."""
    path = Path(path)
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        # EOFError / zlib.error: a truncated or corrupt .gz; they have no strerror
        raise DataError(f"{path}: cannot read IDX file ({getattr(err, 'strerror', None) or err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype, rank = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(f"{path}: IDX header truncated")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=rank, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX data is {len(raw) - header} bytes, header {shape} says {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


@dataclass
class LabelledImages:
    images: np.ndarray  # uint8 (N, H, W)
    labels: np.ndarray  # int64 (N,)
    source: Path

    def __len__(self) -> int:
        return len(self.labels)


def _split_file(directory: Path, prefix: str, kind: str) -> Path | None:
    for name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def find_dataset(directory: str | os.PathLike, split: str = "test") -> tuple[Path, Path]:
    """Locate the image and label IDX files of `split` ('train' or 'test') in `directory`."""
    directory = Path(directory)
    if split not in _SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {sorted(_SPLITS)}")
    if not directory.is_dir():
        raise DataError(f"{directory}: data directory not found (run scripts/fetch_mnist.sh)")
    prefix = _SPLITS[split]
    images = _split_file(directory, prefix, "images-idx3-ubyte")
    labels = _split_file(directory, prefix, "labels-idx1-ubyte")
    if images is None or labels is None:
        raise DataError(f"{directory}: no {prefix}-images-idx3-ubyte / {prefix}-labels-idx1-ubyte (.gz) files")
    return images, labels


def load_dataset(directory: str | os.PathLike, split: str = "test") -> LabelledImages:
    images_path, labels_path = find_dataset(directory, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{images_path}: expected images (N, H, W) and labels (N,), got {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{images_path}: {len(images)} images but {len(labels)} labels in {labels_path}")
    return LabelledImages(images=images.astype(np.uint8, copy=False), labels=labels.astype(np.int64), source=Path(directory))
