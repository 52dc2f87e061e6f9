"""Training end to end on small subsets: loss falls, accuracy rises, runs are reproducible, the CLI guards
its outputs, and nothing is MNIST-specific (Fashion-MNIST trains too)."""
import tomllib
from pathlib import Path

import numba
import numpy as np
import pytest
from click.testing import CliRunner

from stream_cnn.cli import main
from stream_cnn.data import load_dataset
from stream_cnn.train.augment import augment_batch
from stream_cnn.train.trainer import TrainOptions, config_text_with_weights, read_config, train_network

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT / "data" / "mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="data/mnist missing (run scripts/fetch_mnist.sh)")

# A cheap net for the tests (the bundled digits config is bigger): conv 8 -> pool -> conv 16 -> pool -> dense.
SMALL_CONFIG = """
name = "small"
description = "test net"

[input]
shape = [1, 28, 28]
color = "gray"
scale = 0.00392156862745098
mean = [0.1307]
std = [0.3081]
preprocess = "digit"

[output]
labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

[[layers]]
name = "conv1"
type = "conv2d"
filters = 8
kernel = 3
padding = "same"
activation = "relu"

[[layers]]
name = "pool1"
type = "max_pool"
kernel = 2

[[layers]]
name = "conv2"
type = "conv2d"
filters = 16
kernel = 3
stride = 2
padding = 1
activation = "relu"

[[layers]]
name = "pool2"
type = "avg_pool"
kernel = 2

[[layers]]
name = "flatten"
type = "flatten"

[[layers]]
name = "drop"
type = "dropout"
rate = 0.1

[[layers]]
name = "fc"
type = "dense"
units = 10

[[layers]]
name = "softmax"
type = "softmax"
"""


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "small.toml"
    path.write_text(SMALL_CONFIG)
    return path


@pytest.fixture(scope="module")
def mnist_train():
    if not MNIST_DIR.is_dir():
        pytest.skip("data/mnist missing (run scripts/fetch_mnist.sh)")
    return load_dataset(MNIST_DIR, "train")


def _loss_and_accuracy(network, images, labels, config):
    from stream_cnn.train.kernels import softmax_cross_entropy
    from stream_cnn.train.trainer import normalise

    x = normalise(images.astype(np.float32) * np.float32(config.input.scale), config.input)
    logits = network.predict(x)
    probs, grad = np.empty_like(logits), np.empty_like(logits)
    loss = softmax_cross_entropy(logits, labels, probs, grad)
    return loss, float((probs.argmax(axis=1) == labels).mean())


@needs_mnist
def test_short_run_loss_falls_and_accuracy_rises(small_config, mnist_train):
    config = read_config(small_config)
    options = TrainOptions(epochs=2, batch_size=16, lr=3e-3, limit=2000, seed=1, warmup_steps=20, augment=False)
    before = train_network(config, mnist_train.images, mnist_train.labels,
                           TrainOptions(epochs=1, limit=20, val_size=0, lr=1e-12, seed=1))
    result = train_network(config, mnist_train.images, mnist_train.labels, options)
    held_out = slice(50000, 51000)  # never seen: training used the first 2,000 images
    loss0, acc0 = _loss_and_accuracy(before.network, mnist_train.images[held_out], mnist_train.labels[held_out], config)
    loss1, acc1 = _loss_and_accuracy(result.network, mnist_train.images[held_out], mnist_train.labels[held_out], config)
    assert loss0 > 1.5 and acc0 < 0.3  # an untrained 10-class net is near chance
    assert loss1 < 0.6 * loss0
    assert acc1 > 0.75  # chance is 0.1; 226 steps of a tiny net
    first, last = result.history
    assert last.loss < first.loss
    assert last.val_accuracy > 0.75  # held-out 200 of the 2,000


@needs_mnist
def test_same_seed_same_weights_different_seed_different_weights(small_config, mnist_train):
    config = read_config(small_config)

    def run(seed):
        options = TrainOptions(epochs=1, batch_size=50, limit=600, seed=seed, val_size=0)
        return train_network(config, mnist_train.images, mnist_train.labels, options).network.state_dict()

    first, second, other = run(7), run(7), run(8)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    assert any(not np.array_equal(first[key], other[key]) for key in first)
    # the kernels sum in a fixed order whatever the thread count, so NUMBA_NUM_THREADS does not change weights
    if numba.config.NUMBA_NUM_THREADS > 1:
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            single = run(7)
        finally:
            numba.set_num_threads(threads)
        for key in first:
            np.testing.assert_array_equal(first[key], single[key], err_msg=key)


@needs_mnist
def test_sgd_with_momentum_trains_too(small_config, mnist_train):
    config = read_config(small_config)
    options = TrainOptions(epochs=2, batch_size=32, lr=0.05, optimizer="sgd", limit=2000, seed=3, augment=False,
                           warmup_steps=20)
    result = train_network(config, mnist_train.images, mnist_train.labels, options)
    assert result.history[1].loss < result.history[0].loss
    assert result.history[1].val_accuracy > 0.8


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Fashion-MNIST not installed (apt package dataset-fashion-mnist)")
def test_fashion_mnist_trains_well_above_chance(small_config):
    """Same loader (gzip IDX) and trainer on a different data set: a few hundred steps beat chance (10%) by far."""
    data = load_dataset(FASHION_DIR, "train")
    config = read_config(small_config)
    options = TrainOptions(epochs=1, batch_size=32, lr=3e-3, limit=10000, seed=0, augment=False, warmup_steps=20)
    result = train_network(config, data.images, data.labels, options)  # 282 steps
    test = load_dataset(FASHION_DIR, "test")
    _, accuracy = _loss_and_accuracy(result.network, test.images[:2000], test.labels[:2000], config)
    assert accuracy > 0.7


def test_augmentation_is_seeded_bounded_and_mild():
    rng = np.random.default_rng(0)
    images = np.zeros((16, 28, 28), np.float32)
    images[:, 8:20, 12:16] = 1.0  # a "1"
    first = augment_batch(images, np.random.default_rng(5))
    second = augment_batch(images, np.random.default_rng(5))
    np.testing.assert_array_equal(first, second)
    assert first.shape == images.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert not np.array_equal(first, augment_batch(images, rng))
    # the stroke stays near the centre: centre of mass moves by a few pixels at most
    ys, xs = np.mgrid[0:28, 0:28]
    mass = first.sum(axis=(1, 2))
    cy, cx = (first * ys).sum(axis=(1, 2)) / mass, (first * xs).sum(axis=(1, 2)) / mass
    assert np.all(np.abs(cy - 13.5) < 4) and np.all(np.abs(cx - 13.5) < 4)


def test_config_text_with_weights_replaces_or_inserts_the_weights_line():
    text = 'name = "m"\nweights = "old.npz"  # trained\n\n[input]\nshape = [1, 2, 2]\nweights = 3\n'
    updated = tomllib.loads(config_text_with_weights(text, "new.npz"))
    assert updated["weights"] == "new.npz" and updated["input"]["weights"] == 3
    inserted = tomllib.loads(config_text_with_weights('name = "m"\n[input]\nshape = [1, 2, 2]\n', "w.npz"))
    assert inserted["weights"] == "w.npz" and inserted["input"]["shape"] == [1, 2, 2]


# ------------------------------------------------------------------------------------------------------ CLI
def _train_args(config, out, *extra):
    return ["train", str(config), "--data", str(MNIST_DIR), "--epochs", "1", "--limit", "300", "--out", str(out),
            "--batch-size", "50", *extra]


@needs_mnist
def test_cli_train_writes_weights_and_config_then_refuses_to_overwrite(small_config, tmp_path):
    runner = CliRunner()
    out = tmp_path / "model.npz"
    result = runner.invoke(main, _train_args(small_config, out, "--seed", "4"))
    assert result.exit_code == 0, result.output
    assert "epoch 1/1" in result.output and "val acc" in result.output
    written = tomllib.loads((tmp_path / "model.toml").read_text())
    assert written["weights"] == "model.npz" and written["name"] == "small"
    with np.load(out, allow_pickle=False) as weights:
        assert weights["conv1.weight"].shape == (8, 1, 3, 3) and weights["fc.weight"].shape == (10, 16 * 3 * 3)
        assert all(weights[key].dtype == np.float32 for key in weights.files)
        saved = {key: weights[key].copy() for key in weights.files}
    mtime = out.stat().st_mtime_ns

    refused = runner.invoke(main, _train_args(small_config, out, "--seed", "5"))
    assert refused.exit_code == 6
    assert "exists" in refused.output and "--force" in refused.output and "Traceback" not in refused.output
    assert out.stat().st_mtime_ns == mtime

    forced = runner.invoke(main, _train_args(small_config, out, "--seed", "5", "--force"))
    assert forced.exit_code == 0, forced.output
    with np.load(out, allow_pickle=False) as weights:
        assert not np.array_equal(weights["conv1.weight"], saved["conv1.weight"])  # a fresh run, not a resume


def test_cli_train_bad_data_dir_is_one_line_and_exit_7(small_config, tmp_path):
    result = CliRunner().invoke(main, ["train", str(small_config), "--data", str(tmp_path / "missing"),
                                       "--epochs", "1", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 7
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "missing" in lines[0] and lines[0].startswith("stream-cnn:")
    assert not (tmp_path / "m.npz").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["train", str(small_config), "--data", str(empty),
                                       "--epochs", "1", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 7 and "train-images-idx3-ubyte" in result.output


def test_cli_train_bad_options_and_config(small_config, tmp_path):
    runner = CliRunner()
    wrong_suffix = runner.invoke(main, ["train", str(small_config), "--data", str(tmp_path), "--epochs", "1",
                                        "--out", str(tmp_path / "m.bin")])
    assert wrong_suffix.exit_code == 2 and ".npz" in wrong_suffix.output
    no_dir = runner.invoke(main, ["train", str(small_config), "--data", str(tmp_path), "--epochs", "1",
                                  "--out", str(tmp_path / "nowhere" / "m.npz")])
    assert no_dir.exit_code == 6 and "does not exist" in no_dir.output
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text(SMALL_CONFIG.replace('type = "avg_pool"', 'type = "fractional_max_pool"'))
    unsupported = runner.invoke(main, ["train", str(bad_config), "--data", str(MNIST_DIR), "--epochs", "1",
                                       "--limit", "100", "--out", str(tmp_path / "m.npz")])
    if MNIST_DIR.is_dir():
        assert unsupported.exit_code == 5 and "fractional_max_pool" in unsupported.output
    zero_epochs = runner.invoke(main, ["train", str(small_config), "--data", str(tmp_path), "--epochs", "0",
                                       "--out", str(tmp_path / "m.npz")])
    assert zero_epochs.exit_code == 2 and "--epochs" in zero_epochs.output


@pytest.mark.parametrize("name,lr", [("adam", 0.05), ("sgd", 0.05)])
def test_optimisers_minimise_a_quadratic(name, lr):
    from stream_cnn.train.optim import OPTIMIZERS

    target = np.array([3.0, -2.0, 0.5], np.float32)
    param = np.zeros(3, np.float32)
    optimizer = OPTIMIZERS[name]([param])
    for _ in range(500):
        optimizer.step([2 * (param - target)], lr)  # gradient of |p - target|^2
    np.testing.assert_allclose(param, target, atol=1e-2)


def test_dropout_scales_kept_units_and_routes_gradients_through_the_same_mask():
    from stream_cnn.train.network import Dropout

    layer = Dropout({"name": "d", "type": "dropout", "rate": 0.25}, (1000,))
    x = np.ones((4, 1000), np.float32)
    y = layer.forward(x, training=True, rng=np.random.default_rng(0))
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.75)  # inverted dropout: inference needs no rescaling
    grad = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(grad != 0, kept)
    assert layer.forward(x, training=False) is x
