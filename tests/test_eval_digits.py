"""`stream-cnn eval`: the bundled `digits` model on the real 10,000-image MNIST test set, through the inference
engine, and eval's handling of other models and bad input."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stream_cnn.cli import main
from stream_cnn.model import load_model
from stream_cnn.model.zoo import ZOO_DIR

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(),
                                 reason="data/mnist missing: run scripts/fetch_mnist.sh (CI fetches it)")


@pytest.fixture(scope="module")
def digits_json():
    result = CliRunner().invoke(main, ["eval", "digits", "--data", str(MNIST_DIR), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@needs_mnist
def test_bundled_digits_model_reaches_99_percent_on_the_mnist_test_set(digits_json):
    assert digits_json["n_images"] == 10000 and digits_json["split"] == "test"
    assert digits_json["accuracy"] >= 0.990
    confusion = np.array(digits_json["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 10000
    assert np.trace(confusion) / 10000 == pytest.approx(digits_json["accuracy"])
    # known MNIST test class sizes: 980 zeros ... 1009 nines
    assert confusion.sum(axis=1).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert digits_json["labels"] == [str(k) for k in range(10)]
    assert min(digits_json["per_class_accuracy"]) > 0.97


@needs_mnist
def test_eval_table_output_matches_the_json(digits_json):
    result = CliRunner().invoke(main, ["eval", "digits", "--data", str(MNIST_DIR)])
    assert result.exit_code == 0, result.output
    assert f"accuracy {digits_json['accuracy']:.4f}" in result.output
    rows = [line.split() for line in result.output.splitlines() if line.split()[:1] in ([str(k)] for k in range(10))]
    table = [[int(v) for v in row[1:11]] for row in rows[-10:]]
    assert table == digits_json["confusion"]


def test_bundled_digits_model_is_small_and_cheap():
    model = load_model("digits")
    assert model.config.preprocess == "digit" and model.config.input_shape == (1, 28, 28)
    assert model.config.labels == [str(k) for k in range(10)]
    assert (ZOO_DIR / "digits.npz").stat().st_size < 1_000_000
    assert model.flops < 3_000_000
    probs = model.forward(np.zeros((1, 28, 28), np.float32))
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0, abs=1e-5)


@needs_mnist
def test_eval_accepts_the_npz_written_by_train(tmp_path):
    runner = CliRunner()
    out = tmp_path / "tiny.npz"
    trained = runner.invoke(main, ["train", str(ROOT / "configs" / "digits.toml"), "--data", str(MNIST_DIR),
                                   "--epochs", "1", "--limit", "1000", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(main, ["eval", str(out), "--data", str(MNIST_DIR), "--limit", "300", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n_images"] == 300 and report["accuracy"] > 0.3  # 15 steps: above chance, far from done


def test_eval_bad_inputs_are_one_line_errors(tmp_path):
    runner = CliRunner()
    missing_data = runner.invoke(main, ["eval", "digits", "--data", str(tmp_path / "nope")])
    assert missing_data.exit_code == 7 and len(missing_data.output.strip().splitlines()) == 1
    assert "Traceback" not in missing_data.output
    unknown_model = runner.invoke(main, ["eval", "no_such_model", "--data", str(tmp_path)])
    assert unknown_model.exit_code == 5 and "no_such_model" in unknown_model.output
    # 32x32 images do not fit the 28x28 model
    for name, array in (("t10k-images-idx3-ubyte", np.zeros((3, 32, 32), np.uint8)),
                        ("t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))):
        header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (tmp_path / name).write_bytes(header + array.tobytes())
    wrong_size = runner.invoke(main, ["eval", "digits", "--data", str(tmp_path)])
    assert wrong_size.exit_code == 7 and "32x32" in wrong_size.output and "28x28" in wrong_size.output
