"""The IDX loader: synthetic files (raw and gzip, every failure mode) and the real MNIST / Fashion-MNIST files."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from stream_cnn.data import find_dataset, load_dataset, read_idx
from stream_cnn.errors import DataError

MNIST_DIR = Path(__file__).resolve().parents[1] / "data" / "mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_split(directory: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = False):
    for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        path = directory / f"{prefix}-{kind}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_raw_and_gzip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    write_split(tmp_path, "t10k", images, labels, gz=gz)
    data = load_dataset(tmp_path, "test")
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.labels.dtype == np.int64 and len(data) == 7


def test_big_endian_types_are_decoded(tmp_path):
    values = np.array([[1, -2], [300, 70000]], dtype=">i4")
    path = tmp_path / "ints.idx"
    path.write_bytes(idx_bytes(values, 0x0C))
    np.testing.assert_array_equal(read_idx(path), [[1, -2], [300, 70000]])
    floats = np.array([0.5, -1.25], dtype=">f4")
    path.write_bytes(idx_bytes(floats, 0x0D))
    np.testing.assert_array_equal(read_idx(path), [0.5, -1.25])


def test_bad_magic_truncated_and_mismatched_files_are_data_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(bad)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(idx_bytes(np.zeros((4, 3, 3), np.uint8))[:-5])
    with pytest.raises(DataError, match="bytes"):
        read_idx(truncated)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2), np.uint8)))[:-8])
    with pytest.raises(DataError, match="cannot read"):
        read_idx(broken_gz)
    garbage_gz = tmp_path / "garbage.gz"
    garbage_gz.write_bytes(gzip.compress(b"x" * 100)[:10] + b"\xff" * 40)
    with pytest.raises(DataError, match="cannot read"):
        read_idx(garbage_gz)
    not_gz = tmp_path / "plain.gz"
    not_gz.write_bytes(idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(DataError, match="cannot read"):
        read_idx(not_gz)
    write_split(tmp_path, "train", np.zeros((3, 2, 2), np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="3 images but 4 labels"):
        load_dataset(tmp_path, "train")


def test_missing_directory_files_and_bad_split(tmp_path):
    with pytest.raises(DataError, match="not found"):
        find_dataset(tmp_path / "nope", "test")
    with pytest.raises(DataError, match="t10k-images"):
        find_dataset(tmp_path, "test")
    with pytest.raises(DataError, match="unknown split"):
        find_dataset(tmp_path, "validation")


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="data/mnist missing (run scripts/fetch_mnist.sh)")
def test_real_mnist_has_the_standard_sizes_and_label_balance():
    train, test = load_dataset(MNIST_DIR, "train"), load_dataset(MNIST_DIR, "test")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.images.dtype == np.uint8
    # known MNIST facts: the first training label is a 5, the first test label a 7; test class 1 has 1135 images
    assert train.labels[0] == 5 and test.labels[0] == 7
    assert np.bincount(test.labels, minlength=10)[1] == 1135
    assert set(np.unique(train.labels)) == set(range(10))


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Fashion-MNIST not installed (apt package dataset-fashion-mnist)")
def test_fashion_mnist_gzip_files_load():
    test = load_dataset(FASHION_DIR, "test")
    assert test.images.shape == (10000, 28, 28)
    assert np.all(np.bincount(test.labels, minlength=10) == 1000)  # Fashion-MNIST test set is balanced
