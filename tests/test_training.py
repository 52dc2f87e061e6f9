"""Training end to end on small subsets: loss falls, accuracy rises, runs are reproducible, the CLI guards
its outputs, and nothing is MNIST-specific (Fashion-MNIST trains too)."""
import dataclasses
import tomllib
from pathlib import Path

import numba
import numpy as np
import pytest
from click.testing import CliRunner

from stream_cnn.cli import main
from stream_cnn.data import load_dataset
from stream_cnn.model import load_model
from stream_cnn.model.config import read_config, write_config
from stream_cnn.train.augment import augment_batch
from stream_cnn.train.inputs import model_inputs
from stream_cnn.train.network import Network
from stream_cnn.train.trainer import TrainOptions, config_text_with_weights, load_config, save_weights, train_network

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT / "data" / "mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="data/mnist missing (run scripts/fetch_mnist.sh)")

DIGITS_CONFIG = ROOT / "configs" / "digits.toml"

# A cheap net for the tests on the digits config's [input] and [output] (its own layers are bigger and all stride
# 1): conv 8 -> max pool -> strided conv 16 -> avg pool -> dropout -> dense.
SMALL_LAYERS = [
    {"name": "conv1", "type": "conv2d", "filters": 8, "kernel": 3, "padding": "same", "activation": "relu"},
    {"name": "pool1", "type": "max_pool", "kernel": 2},
    {"name": "conv2", "type": "conv2d", "filters": 16, "kernel": 3, "stride": 2, "padding": 1, "activation": "relu"},
    {"name": "pool2", "type": "avg_pool", "kernel": 2},
    {"name": "flatten", "type": "flatten"},
    {"name": "drop", "type": "dropout", "rate": 0.1},
    {"name": "fc", "type": "dense", "units": 10},
    {"name": "softmax", "type": "softmax"},
]


def write_config_like_digits(path: Path, layers: list, name: str = "small") -> Path:
    """A model TOML with the digits config's input and labels, no weights file, and these layers."""
    config = dataclasses.replace(read_config(DIGITS_CONFIG), name=name, description="test net", weights=None,
                                 mean=(0.1307,), std=(0.3081,), layers=layers, path=None)
    write_config(config, path)
    return path


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    return write_config_like_digits(tmp_path_factory.mktemp("config") / "small.toml", SMALL_LAYERS)


@pytest.fixture(scope="module")
def mnist_train():
    if not MNIST_DIR.is_dir():
        pytest.skip("data/mnist missing (run scripts/fetch_mnist.sh)")
    return load_dataset(MNIST_DIR, "train")


def _loss_and_accuracy(network, images, labels, config):
    from stream_cnn.train.kernels import softmax_cross_entropy

    x = model_inputs(images, config)
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
def test_same_seed_same_weights_different_seed_different_weights(small_config, mnist_train, tmp_path):
    config = read_config(small_config)

    def run(seed):
        options = TrainOptions(epochs=1, batch_size=50, limit=600, seed=seed, val_size=0)
        return train_network(config, mnist_train.images, mnist_train.labels, options).network.state_dict()

    first, second, other = run(7), run(7), run(8)
    # the command reads the TOML and writes the .npz through the same code: same options, same arrays
    out = tmp_path / "cli.npz"
    cli = CliRunner().invoke(main, ["train", str(small_config), "--data", str(MNIST_DIR), "--epochs", "1",
                                    "--limit", "600", "--batch-size", "50", "--val-size", "0", "--seed", "7",
                                    "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    with np.load(out, allow_pickle=False) as written:
        assert sorted(written.files) == sorted(first)
        for key in first:
            np.testing.assert_array_equal(written[key], first[key], err_msg=key)
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
    unsupported_layers = [dict(layer) for layer in SMALL_LAYERS]
    unsupported_layers[3] = {"name": "pool2", "type": "fractional_max_pool", "ratio": 0.5}
    bad_config = write_config_like_digits(tmp_path / "bad.toml", unsupported_layers)
    # the config is checked before the data set is read: no data needed to be told about it
    unsupported = runner.invoke(main, ["train", str(bad_config), "--data", str(tmp_path / "no-data"), "--epochs",
                                       "1", "--out", str(tmp_path / "m.npz")])
    assert unsupported.exit_code == 5 and "fractional_max_pool" in unsupported.output
    assert "'pool2'" in unsupported.output and "trainable types" in unsupported.output
    zero_epochs = runner.invoke(main, ["train", str(small_config), "--data", str(tmp_path), "--epochs", "0",
                                       "--out", str(tmp_path / "m.npz")])
    assert zero_epochs.exit_code == 2 and "--epochs" in zero_epochs.output


@pytest.mark.parametrize("layer,problem", [
    ({"name": "conv1", "type": "conv2d", "filters": 8, "kernel": 3, "padding": "half"}, "padding"),
    ({"name": "conv1", "type": "conv2d", "filters": 8, "kernel": [3, 3, 3]}, "kernel"),
    ({"name": "conv1", "type": "conv2d", "filters": 8, "kernel": 3, "activation": "swish"}, "swish"),
    ({"name": "conv1", "type": "conv2d", "filters": 8}, "kernel"),
    ({"name": "conv1", "type": "conv2d", "filters": 8, "kernel": 3, "strides": 2}, "strides"),
    ({"name": "conv1", "type": "conv2d", "filters": 8, "kernel": 40}, "window"),
    ({"name": "conv1", "type": "max_pool", "kernel": 2, "padding": [2, 0, 0, 0]}, "padding"),
    ({"name": "conv1", "type": "dropout", "rate": 1.5}, "rate"),
    ({"name": "conv1", "type": "conv_2d", "filters": 8, "kernel": 3}, "conv_2d"),
])
def test_cli_train_rejects_a_bad_layer_with_the_same_message_as_inspect(tmp_path, layer, problem):
    """The inference engine parses the config for training too: one meaning, one message, exit 5."""
    layers = [dict(spec) for spec in SMALL_LAYERS]
    layers[0] = layer
    bad = write_config_like_digits(tmp_path / "bad.toml", layers)
    runner = CliRunner()
    trained = runner.invoke(main, ["train", str(bad), "--data", str(tmp_path), "--epochs", "1",
                                   "--out", str(tmp_path / "m.npz")])
    inspected = runner.invoke(main, ["inspect", str(bad)])
    assert trained.exit_code == inspected.exit_code == 5
    assert len(trained.output.strip().splitlines()) == 1 and "Traceback" not in trained.output
    assert trained.output == inspected.output
    assert "'conv1'" in trained.output and problem in trained.output


def test_cli_train_labels_that_do_not_match_the_scores_are_the_engines_message(tmp_path):
    bad = write_config_like_digits(tmp_path / "bad.toml", SMALL_LAYERS[:-2] + [
        {"name": "fc", "type": "dense", "units": 7}, {"name": "softmax", "type": "softmax"}])
    runner = CliRunner()
    trained = runner.invoke(main, ["train", str(bad), "--data", str(tmp_path / "no-data"), "--epochs", "1",
                                   "--out", str(tmp_path / "m.npz")])
    inspected = runner.invoke(main, ["inspect", str(bad)])
    assert trained.exit_code == inspected.exit_code == 5
    assert trained.output == inspected.output and "10 labels" in trained.output


def test_trained_network_and_inference_engine_compute_the_same_function(tmp_path):
    """Every geometry the config can say (strides, [t, b, l, r] and "same" padding, avg pool excluding padding,
    bias = false, leaky alpha, dense straight on a feature map) means the same to training and to inference:
    the engine loads the saved weights with no missing or extra array and gives the trained net's softmax."""
    layers = [
        {"name": "conv1", "type": "conv2d", "filters": 4, "kernel": 3, "padding": "same", "bias": False,
         "activation": "leaky_relu", "alpha": 0.2},
        {"name": "pool1", "type": "avg_pool", "kernel": 3, "stride": 2, "padding": 1},
        {"name": "conv2", "type": "conv2d", "filters": 6, "kernel": [3, 2], "stride": [2, 1],
         "padding": [1, 0, 1, 1], "activation": "tanh"},
        {"name": "pool2", "type": "max_pool", "kernel": 2, "stride": 1, "padding": "same"},
        {"name": "act", "type": "activation", "function": "gelu"},
        {"name": "drop", "type": "dropout", "rate": 0.3},
        {"name": "fc", "type": "dense", "units": 10},
        {"name": "softmax", "type": "softmax"},
    ]
    config_path = write_config_like_digits(tmp_path / "varied.toml", layers)
    config, text = load_config(config_path)
    network = Network(config)
    rng = np.random.default_rng(11)
    network.init_params(rng)
    for _, value, _ in network.parameters():   # non-zero biases too, so every array's role is checked
        value[...] = rng.normal(0.0, 0.4, value.shape)
    weights_path = tmp_path / "trained.npz"
    save_weights(network, text, weights_path, weights_path.with_suffix(".toml"))
    model = load_model(str(weights_path.with_suffix(".toml")))
    assert [layer.output_shape for layer in model.layers] == [layer.out_shape for layer in network.layers]
    assert model.flops == network.flops
    x = rng.normal(0.0, 1.0, (4, 1, 28, 28)).astype(np.float32)
    logits = network.predict(x).astype(np.float64)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    for sample, probs in zip(x, expected):
        np.testing.assert_allclose(model.forward(sample), probs, rtol=1e-4, atol=1e-5)


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
    from stream_cnn.model.config import ModelConfig

    config = ModelConfig(name="test", input_shape=(1000,), layers=[{"name": "d", "type": "dropout", "rate": 0.25}])
    layer = Network(config).layers[0]
    x = np.ones((4, 1000), np.float32)
    y = layer.forward(x, training=True, rng=np.random.default_rng(0))
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.75)  # inverted dropout: inference needs no rescaling
    grad = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(grad != 0, kept)
    assert layer.forward(x, training=False) is x
