"""The Model: wiring, shape inference, folding and fusion, buffers, feature maps, saving, and the forward pass
against the NumPy reference (reference.py, run layer by layer on the unfolded graph)."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from stream_cnn.model import LAYER_TYPES, Model, ModelConfig, init_weights, load_model, make_layer
from stream_cnn.model.config import read_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
ALL_LAYERS = CONFIGS / "all_layers.toml"


def close(ours, reference, tol=1e-5):
    """Max abs difference within tol, scaled by the reference's magnitude when it exceeds 1 (float32 keeps ~7
    significant digits, so a value of 70 cannot agree to 1e-5 absolute)."""
    scale = max(1.0, float(np.max(np.abs(reference)))) if np.size(reference) else 1.0
    return float(np.max(np.abs(np.asarray(ours) - np.asarray(reference)))) <= tol * scale


def model_input(config, seed=1):
    """A random frame through the config's own normalisation: the inputs the calibrated init expects."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0, 255, config.input_shape)
    mean = np.reshape(config.mean, (-1, 1, 1))
    std = np.reshape(config.std, (-1, 1, 1))
    return ((pixels * config.scale - mean) / std).astype(np.float32)


def config_from(layers, shape=(1, 8, 8), **top):
    data = {"name": "test", "input": {"shape": list(shape)}, "layers": layers, **top}
    return ModelConfig.from_dict(data)


@pytest.fixture(scope="module")
def all_layers():
    return load_model(ALL_LAYERS, init_seed=0)


def test_all_layers_config_uses_every_layer_type(all_layers):
    assert {layer.type for layer in all_layers.layers} == set(LAYER_TYPES)


def test_every_layer_buffer_matches_reference_when_unfused(all_layers):
    # fuse=False gives every layer its own buffer, so each layer's kernel output can be held to its twin.
    unfused = Model(all_layers.config, all_layers.weights, fuse=False)
    x = model_input(unfused.config)
    unfused.forward(x)
    expected = unfused.reference_outputs(x)
    for layer in unfused.layers:
        assert unfused.buffer(layer.name).shape == layer.output_shape
        assert close(unfused.buffer(layer.name), expected[layer.name]), layer.name


def test_fused_forward_matches_reference(all_layers):
    x = model_input(all_layers.config)
    probs = all_layers.forward(x)
    assert close(probs, all_layers.reference_forward(x))
    assert probs.shape == (5,) and abs(float(probs.sum()) - 1.0) < 1e-5
    # calibrated random weights do not saturate the softmax, so agreement above means something
    assert probs.max() < 0.999


def test_fusion_decisions_of_all_layers(all_layers):
    assert all_layers.fused == {
        "depthwise_bn": "folded", "depthwise_gelu": "fused",     # conv -> BN -> act: one kernel call
        "squash": "in place",                                     # after glu, nothing to fuse into
        "flat": "view", "drop": "view",
        "fc1_bn": "folded", "fc1_relu6": "fused",                 # dense -> BN -> act
        "probs": "in place",                                      # softmax overwrites the logits
    }
    # bn_a follows a conv with its own ReLU, vector_bn a concat: neither can fold, both run as kernels
    kinds = {row["name"]: row["runs_as"] for row in all_layers.summary()}
    assert kinds["bn_a"] == kinds["vector_bn"] == "kernel"


def test_batchnorm_folded_model_equals_unfolded_reference():
    layers = [
        {"name": "c1", "type": "conv2d", "filters": 6, "kernel": 3, "padding": "same", "bias": False},
        {"name": "bn1", "type": "batchnorm", "eps": 1e-3},
        {"name": "r1", "type": "activation", "function": "relu"},
        {"name": "c2", "type": "conv2d", "filters": 4, "kernel": 1},
        {"name": "bn2", "type": "batchnorm"},
        {"name": "f", "type": "flatten"},
        {"name": "d", "type": "dense", "units": 3},
        {"name": "bn3", "type": "batchnorm"},
    ]
    config = config_from(layers, shape=(3, 7, 9))
    rng = np.random.default_rng(5)
    weights = init_weights(config, seed=2, calibrate=False)
    for name in ("bn1", "bn2", "bn3"):   # statistics far from identity so folding really changes the weights
        size = weights[f"{name}.gamma"].shape
        weights[f"{name}.gamma"] = rng.uniform(0.2, 3.0, size).astype(np.float32)
        weights[f"{name}.mean"] = rng.uniform(-2, 2, size).astype(np.float32)
        weights[f"{name}.var"] = rng.uniform(0.05, 4.0, size).astype(np.float32)
    model = Model(config, weights)
    assert model.fused == {"bn1": "folded", "r1": "fused", "bn2": "folded", "f": "view", "bn3": "folded"}
    assert not np.array_equal(model.layers[0].run_weight, weights["c1.weight"])
    x = rng.normal(size=config.input_shape).astype(np.float32)
    assert close(model.forward(x), model.reference_forward(x))
    assert close(model.forward(x), Model(config, weights, fuse=False).forward(x))


def test_activation_not_fused_into_a_layer_with_two_readers():
    # conv output read by a relu and by the add: fusing the relu would change what the add sees
    layers = [
        {"name": "c", "type": "conv2d", "filters": 3, "kernel": 3, "padding": 1},
        {"name": "r", "type": "activation", "function": "relu"},
        {"name": "sum", "type": "add", "inputs": ["c", "r"]},
        {"name": "s", "type": "activation", "function": "tanh", "inputs": ["input"]},
        {"name": "out", "type": "add", "inputs": ["sum", "s", "s"]},
    ]
    config = config_from(layers, shape=(3, 6, 6))
    model = Model(config, init_seed=0)
    assert "r" not in model.fused and "s" not in model.fused   # s reads the model input: never in place
    x = np.random.default_rng(0).normal(size=(3, 6, 6)).astype(np.float32)
    before = x.copy()
    assert close(model.forward(x), model.reference_forward(x))
    np.testing.assert_array_equal(model.input, before)


def test_activation_after_activation_runs_in_place_and_matches():
    layers = [
        {"name": "c", "type": "conv2d", "filters": 2, "kernel": 2, "activation": "relu"},
        {"name": "a", "type": "activation", "function": "leaky_relu", "alpha": 0.2},
        {"name": "b", "type": "activation", "function": "sigmoid"},
    ]
    model = Model(config_from(layers, shape=(1, 5, 5)), init_seed=0)
    assert model.fused == {"a": "in place", "b": "in place"}
    assert model.buffer("b") is not None and np.shares_memory(model.buffer("b"), model.buffer("c"))
    x = np.random.default_rng(3).normal(size=(1, 5, 5)).astype(np.float32)
    assert close(model.forward(x), model.reference_forward(x))


def test_forward_allocates_nothing_in_steady_state(all_layers):
    x = model_input(all_layers.config)
    for _ in range(5):   # compile / warm every kernel first
        all_layers.forward(x)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(300):
            all_layers.forward(x)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The smallest layer buffer here is 5 floats = 20 bytes, 300 passes of one would be 6 kB; allow only noise
    # from the interpreter's own bookkeeping.
    assert after - before < 256
    assert peak - before < 2048


def test_forward_returns_the_model_owned_output_and_uses_model_input(all_layers):
    x = model_input(all_layers.config, seed=7)
    first = all_layers.forward(x)
    assert first is all_layers.output
    np.testing.assert_array_equal(all_layers.input, x)
    kept = first.copy()
    all_layers.input[...] = model_input(all_layers.config, seed=8)
    second = all_layers.forward()
    assert second is first and not np.array_equal(second, kept)


def test_feature_maps_are_views_of_conv_outputs(all_layers):
    x = model_input(all_layers.config, seed=4)
    all_layers.forward(x)
    maps = all_layers.feature_maps()
    assert [name for name, _ in maps] == ["conv_a", "edges", "stripes", "strided", "depthwise"]
    shapes = {layer.name: layer.output_shape for layer in all_layers.layers}
    for name, array in maps:
        assert array.shape == shapes[name] and array.ndim == 3 and array.dtype == np.float32
        assert array is all_layers.buffer(name)
    # the edges map is a plain (unfused) filter bank: exactly its reference output
    reference = all_layers.reference_outputs(x)
    assert close(dict(maps)["edges"], reference["edges"])
    # depthwise shows the conv after its folded BN and fused GELU, as the live panel should
    assert close(dict(maps)["depthwise"], reference["depthwise_gelu"])


def test_shapes_are_inferred_at_load():
    config = read_config(CONFIGS / "mini_xception.toml")
    model = Model(config, init_seed=0)
    shapes = {layer.name: layer.output_shape for layer in model.layers}
    assert shapes["conv2"] == (8, 60, 60)
    assert [shapes[f"block{i}_add"] for i in range(1, 5)] == [(16, 30, 30), (32, 15, 15), (64, 8, 8),
                                                              (128, 4, 4)]
    assert shapes["classifier"] == (7, 4, 4) and model.output_shape == (7,)
    assert config.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.mark.parametrize("name, shape, classes", [("mini_xception", (1, 64, 64), 7),
                                                  ("mobilenet_tiny", (3, 96, 96), 10),
                                                  ("seed_features", (1, 128, 128), None)])
def test_bundled_example_configs_load_and_run(name, shape, classes):
    model = load_model(CONFIGS / f"{name}.toml", init_seed=0)
    assert model.config.input_shape == shape
    out = model.forward(model_input(model.config))
    assert np.all(np.isfinite(out))
    if classes is None:
        assert model.output_shape == (7, 32, 32) and not model.weights   # fixed filters, nothing to train
        assert model.config.labels is None
    else:
        assert out.shape == (classes,) and abs(float(out.sum()) - 1) < 1e-5
        assert len(model.config.labels) == classes


def test_seed_features_matches_reference():
    model = load_model(CONFIGS / "seed_features.toml")
    x = model_input(model.config)
    assert close(model.forward(x), model.reference_forward(x))


def test_default_names_and_sequential_wiring():
    layers = [{"type": "conv2d", "filters": 2, "kernel": 3}, {"type": "max_pool", "kernel": 2},
              {"type": "flatten"}, {"type": "dense", "units": 4}]
    model = Model(config_from(layers, shape=(1, 8, 8)), init_seed=0)
    assert [layer.name for layer in model.layers] == ["conv2d1", "max_pool2", "flatten3", "dense4"]
    assert [layer.inputs for layer in model.layers] == [["input"], ["conv2d1"], ["max_pool2"], ["flatten3"]]
    assert [layer.output_shape for layer in model.layers] == [(2, 6, 6), (2, 3, 3), (18,), (4,)]
    assert model.config.labels == ["0", "1", "2", "3"]


def test_padding_same_and_stride():
    # 4x4 image, 3x3 filter: valid gives 2x2, padding 1 keeps 4x4, stride 2 halves it (the seed's numbers)
    for padding, stride, expected in (("valid", 1, (1, 2, 2)), (1, 1, (1, 4, 4)), ("same", 1, (1, 4, 4)),
                                      (1, 2, (1, 2, 2)), ("same", 2, (1, 2, 2))):
        layer = make_layer({"name": "c", "type": "conv2d", "filters": 1, "kernel": 3, "padding": padding,
                            "stride": stride})
        assert layer.compute_output_shape([(1, 4, 4)]) == expected


def test_params_and_flops():
    layers = [{"name": "c", "type": "conv2d", "filters": 4, "kernel": 3},
              {"name": "g", "type": "conv2d", "filters": 6, "kernel": 1, "groups": 2},
              {"name": "bn", "type": "batchnorm"},
              {"name": "d", "type": "dense", "units": 5, "bias": False}]
    model = Model(config_from(layers, shape=(1, 5, 5)), init_seed=0)
    conv, grouped, norm, dense = model.layers
    assert conv.n_params == 4 * 1 * 3 * 3 + 4 and conv.flops == 2 * 4 * 3 * 3 * (1 * 3 * 3)
    assert grouped.n_params == 6 * 2 * 1 * 1 + 6 and grouped.flops == 2 * 6 * 3 * 3 * 2
    assert norm.n_params == 4 * 6
    assert dense.n_params == 5 * 54 and dense.flops == 2 * 5 * 54
    assert model.n_params == conv.n_params + grouped.n_params + norm.n_params + dense.n_params


@pytest.mark.parametrize("layer_config", [
    {"name": "c", "type": "conv2d", "filters": 4, "kernel": [3, 1], "stride": [1, 2], "padding": [0, 1, 2, 0],
     "dilation": 2, "groups": 2, "bias": False, "activation": "leaky_relu", "alpha": 0.2},
    {"name": "f", "type": "filter_bank", "bank": "gabor", "orientations": 3, "wavelength": 5.0,
     "inputs": ["input"]},
    {"name": "p", "type": "max_pool", "kernel": 2, "padding": "same"},
    {"name": "m", "type": "min_pool", "kernel": [2, 3], "stride": 1},
    {"name": "a", "type": "avg_pool", "kernel": 3, "stride": 2, "padding": 1},
    {"name": "g", "type": "global_avg_pool"}, {"name": "gm", "type": "global_max_pool"},
    {"name": "aa", "type": "adaptive_avg_pool", "output_size": [2, 3]},
    {"name": "am", "type": "adaptive_max_pool", "output_size": 2},
    {"name": "fr", "type": "fractional_max_pool", "ratio": 0.7, "seed": 4},
    {"name": "b", "type": "batchnorm", "eps": 0.001}, {"name": "d", "type": "dense", "units": 3},
    {"name": "fl", "type": "flatten"}, {"name": "ac", "type": "activation", "function": "gelu"},
    {"name": "gl", "type": "glu"}, {"name": "s", "type": "softmax"},
    {"name": "ad", "type": "add", "inputs": ["x", "y"], "activation": "relu"},
    {"name": "cc", "type": "concat", "inputs": ["x", "y", "z"]}, {"name": "dr", "type": "dropout", "rate": 0.1},
])
def test_layer_get_config_round_trips(layer_config):
    layer = make_layer(dict(layer_config))
    assert layer.get_config() == layer_config
    again = make_layer(layer.get_config())
    assert again.get_config() == layer_config and type(again) is type(layer)


def test_save_writes_the_same_pair_and_reloads(tmp_path, all_layers):
    path = all_layers.save(tmp_path / "copy.toml")
    assert path.exists() and (tmp_path / "copy.npz").exists()
    reloaded = load_model(path)
    assert reloaded.config.weights == "copy.npz"
    assert [layer.get_config() for layer in reloaded.layers] == [layer.get_config() for layer in all_layers.layers]
    assert set(reloaded.weights) == set(all_layers.weights)
    for key, array in all_layers.weights.items():
        np.testing.assert_array_equal(reloaded.weights[key], array)
    x = model_input(all_layers.config, seed=9)
    np.testing.assert_array_equal(reloaded.forward(x), all_layers.forward(x))
    # saving the reloaded model reproduces the TOML byte for byte
    again = reloaded.save(tmp_path / "again.toml")
    assert again.read_text().replace("again.npz", "copy.npz") == path.read_text()
    for key in ("scale", "mean", "std", "resize", "preprocess", "labels", "color", "input_shape"):
        assert getattr(reloaded.config, key) == getattr(all_layers.config, key)


def test_save_without_weights_writes_no_npz(tmp_path):
    model = load_model(CONFIGS / "seed_features.toml")
    path = model.save(tmp_path / "front.toml")
    assert not (tmp_path / "front.npz").exists() and "weights" not in path.read_text()
    assert load_model(path).output_shape == (7, 32, 32)


def test_init_weights_is_deterministic_per_seed():
    config = read_config(ALL_LAYERS)
    first, second, other = init_weights(config, 3), init_weights(config, 3), init_weights(config, 4)
    assert set(first) == set(other)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert not all(np.array_equal(first[k], other[k]) for k in first)
    assert all(v.dtype == np.float32 for v in first.values())


# --- randomised graphs --------------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from stream_cnn.errors import ModelFileError  # noqa: E402

ACTIVATION_NAMES = ["identity", "relu", "leaky_relu", "relu6", "sigmoid", "tanh", "gelu"]


@st.composite
def random_graph(draw):
    """A random small graph: a chain of map layers with optional residual adds / concats back to earlier maps,
    then a head that ends in a vector. Shapes that collapse are filtered out by the model's own validation."""
    channels = draw(st.sampled_from([1, 3]))
    height, width = draw(st.integers(3, 9)), draw(st.integers(3, 9))
    layers, maps = [], ["input"]
    for index in range(draw(st.integers(1, 5))):
        name = f"l{index}"
        kind = draw(st.sampled_from(["conv", "conv", "depthwise", "pool", "bn", "act", "merge"]))
        if kind == "conv":
            layer = {"type": "conv2d", "filters": draw(st.integers(1, 5)), "kernel": draw(st.integers(1, 4)),
                     "stride": draw(st.integers(1, 2)), "dilation": draw(st.integers(1, 2)),
                     "padding": draw(st.sampled_from(["valid", "same", 1, [0, 2, 1, 0]])),
                     "bias": draw(st.booleans()), "activation": draw(st.sampled_from(ACTIVATION_NAMES))}
        elif kind == "depthwise":
            layer = {"type": "conv2d", "filters": 2 * channels, "groups": channels, "kernel": 3, "padding": "same"}
        elif kind == "pool":
            layer = {"type": draw(st.sampled_from(["max_pool", "min_pool", "avg_pool"])),
                     "kernel": draw(st.integers(1, 3)), "stride": draw(st.integers(1, 2)),
                     "padding": draw(st.sampled_from(["valid", "same"]))}
        elif kind == "bn":
            layer = {"type": "batchnorm"}
        elif kind == "act":
            layer = {"type": "activation", "function": draw(st.sampled_from(ACTIVATION_NAMES)), "alpha": 0.3}
        else:
            other = draw(st.sampled_from(maps))
            layer = {"type": draw(st.sampled_from(["add", "concat"])), "inputs": [maps[-1], other]}
        layer["name"] = name
        layers.append(layer)
        maps.append(name)
    head = draw(st.sampled_from(["gap", "dense", "flatten_softmax"]))
    if head == "gap":
        layers += [{"name": "head", "type": "global_max_pool"}, {"name": "out", "type": "softmax"}]
    elif head == "dense":
        layers += [{"name": "head", "type": "dense", "units": 3, "activation": "tanh"},
                   {"name": "out", "type": "batchnorm"}]
    else:
        layers += [{"name": "head", "type": "flatten"}, {"name": "out", "type": "softmax"}]
    return {"name": "random", "input": {"shape": [channels, height, width]}, "layers": layers}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=random_graph(), seed=st.integers(0, 2**16))
def test_random_graphs_match_reference(data, seed):
    from hypothesis import assume

    try:
        config = ModelConfig.from_dict(data)
        weights = init_weights(config, seed, calibrate=False)
        model = Model(config, weights)
    except ModelFileError:
        assume(False)   # an invalid combination (e.g. add of unequal shapes): the loader said so in one line
        return
    x = np.random.default_rng(seed).normal(size=config.input_shape).astype(np.float32)
    assert close(model.forward(x), model.reference_forward(x))
    unfused = Model(config, weights, fuse=False)
    unfused.forward(x)
    reference = unfused.reference_outputs(x)
    for layer in unfused.layers:
        assert close(unfused.buffer(layer.name), reference[layer.name]), layer.name


# --- the forward pass as executor programs, conv + pool fusion ------------------------------------------------

DIGITS_LIKE = [
    {"name": "c1", "type": "conv2d", "filters": 4, "kernel": 3, "padding": "same", "activation": "relu"},
    {"name": "p1", "type": "max_pool", "kernel": 2},
    {"name": "c2", "type": "conv2d", "filters": 6, "kernel": 3, "padding": "same", "bias": False},
    {"name": "bn2", "type": "batchnorm"},
    {"name": "r2", "type": "activation", "function": "relu6"},
    {"name": "p2", "type": "max_pool", "kernel": 2},
    {"name": "f", "type": "flatten"},
    {"name": "d", "type": "dense", "units": 5},
    {"name": "s", "type": "softmax"},
]


def test_digits_shaped_model_is_one_basic_executor_call_with_pools_fused():
    from stream_cnn.model.kernels import program

    model = Model(config_from(DIGITS_LIKE, shape=(1, 13, 10)), init_seed=1)
    assert model.fused == {"p1": "fused", "bn2": "folded", "r2": "fused", "p2": "fused", "f": "view",
                           "s": "in place"}
    assert len(model._steps) == 1 and model._steps[0][0] is program.run_basic
    x = model_input(model.config)
    assert close(model.forward(x), model.reference_forward(x))
    # a conv fused with its pool shows the pooled map (the full-size map is never computed)
    reference = model.reference_outputs(x)
    maps = dict(model.feature_maps())
    assert maps["c1"].shape == (4, 6, 5) and close(maps["c1"], reference["p1"])
    assert close(maps["c2"], reference["p2"])
    assert maps["c1"] is model.buffer("p1")


@pytest.mark.parametrize("change", ["second reader", "sigmoid", "stride 1 pool", "padded pool"])
def test_conv_and_pool_stay_apart_when_fusing_would_change_a_result(change):
    layers = [dict(layer) for layer in DIGITS_LIKE[:2]] + [{"name": "g", "type": "global_avg_pool"}]
    if change == "second reader":
        layers.append({"name": "g2", "type": "global_max_pool", "inputs": ["c1"]})
        layers.append({"name": "both", "type": "concat", "inputs": ["g", "g2"]})
    elif change == "sigmoid":
        layers[0]["activation"] = "sigmoid"
    elif change == "stride 1 pool":
        layers[1]["stride"] = 1
    else:
        layers[1]["padding"] = 1
    model = Model(config_from(layers, shape=(3, 9, 8)), init_seed=0)
    assert "p1" not in model.fused
    x = model_input(model.config)
    assert close(model.forward(x), model.reference_forward(x))
    assert close(model.buffer("c1"), model.reference_outputs(x)["c1"])


def test_program_splits_around_a_kernel_the_executors_do_not_run(all_layers):
    from stream_cnn.model import kernels

    kinds = [kernel for kernel, _ in all_layers._steps]
    assert kernels.fractional_max_pool in kinds   # int64 bin edges: a plain call between executor segments
    assert len(kinds) < 6
    x = model_input(all_layers.config, seed=9)
    assert close(all_layers.forward(x), all_layers.reference_forward(x))


def test_strided_pointwise_and_separable_pools_match_reference():
    layers = [
        {"name": "c", "type": "conv2d", "filters": 6, "kernel": 3, "activation": "relu"},
        {"name": "short", "type": "conv2d", "filters": 8, "kernel": 1, "stride": 2, "padding": "same"},
        {"name": "dw", "type": "conv2d", "inputs": ["c"], "filters": 6, "kernel": 3, "padding": "same",
         "groups": 6},
        {"name": "pw", "type": "conv2d", "filters": 8, "kernel": 1},
        {"name": "pool", "type": "max_pool", "kernel": 3, "stride": 2, "padding": "same"},
        {"name": "sum", "type": "add", "inputs": ["pool", "short"]},
        {"name": "g", "type": "global_avg_pool"},
        {"name": "s", "type": "softmax"},
    ]
    for shape in [(1, 13, 13), (3, 14, 11)]:
        model = Model(config_from(layers, shape=shape), init_seed=3)
        x = model_input(model.config)
        reference = model.reference_outputs(x)
        assert close(model.forward(x), reference["s"])
        for name in ("short", "sum"):
            assert close(model.buffer(name), reference[name]), name
        # the pool runs inside the add's kernel (max_pool_flat_add): its map is never stored on its own
        assert model.fused["pool"] == "fused" and np.shares_memory(model.buffer("pool"), model.buffer("sum"))
        unfused = Model(model.config, model.weights, fuse=False)
        unfused.forward(x)
        assert close(unfused.buffer("pool"), reference["pool"])


def test_flat_conv_writes_into_its_readers_padded_buffer():
    """A 3x3 conv planned as conv3x3_flat whose readers are a padded depthwise conv and a strided 1x1 shortcut (
    mini-Xception's conv2) writes its map straight into the depthwise conv's padded buffer (conv3x3_flat_into, or
    conv3x3_tiled on maps at least 32 wide): no pad copy runs, values and buffer() as the reference. The pool after the pointwise conv reads its map
    unpadded when it is even-sized (max_pool3s2_add)."""
    from stream_cnn.model.kernels import program

    layers = [
        {"name": "c1", "type": "conv2d", "filters": 4, "kernel": 3, "activation": "relu"},
        {"name": "c2", "type": "conv2d", "filters": 6, "kernel": 3, "activation": "relu"},
        {"name": "short", "type": "conv2d", "filters": 8, "kernel": 1, "stride": 2, "padding": "same"},
        {"name": "dw", "type": "conv2d", "inputs": ["c2"], "filters": 6, "kernel": 3, "padding": "same",
         "groups": 6},
        {"name": "pw", "type": "conv2d", "filters": 8, "kernel": 1},
        {"name": "pool", "type": "max_pool", "kernel": 3, "stride": 2, "padding": "same"},
        {"name": "sum", "type": "add", "inputs": ["pool", "short"]},
        {"name": "g", "type": "global_avg_pool"},
        {"name": "s", "type": "softmax"},
    ]
    for shape in [(1, 20, 20), (3, 31, 40)]:
        model = Model(config_from(layers, shape=shape), init_seed=7)
        assert model.padded_outputs.get("c2") == ((1, 1, 1, 1), 0.0)
        ops = [int(row[0]) for _, args in model.program.steps for row in args[0]]
        c2_width = shape[2] - 4
        assert (program.OP_CONV3X3_TILED if c2_width >= 32 else program.OP_CONV3X3_FLAT_INTO) in ops
        # no pad copy of c2's 6 channels (slot 1 of a pad row is the padded buffer; its first dimension)
        padded_channels = [int(row[1 + program.ARRAY_FIELDS + 2]) for _, args in model.program.steps
                           for row in args[0] if row[0] == program.OP_PAD]
        assert 6 not in padded_channels
        # the pool of pw's map: on an even map (16x16) read unpadded by max_pool3s2_add (pw writes a plain map), on
        # an odd one (27x36) padded, and pw (36 wide) writes straight into that padded buffer: no copy either way
        even = shape[1] % 2 == 0
        assert (program.OP_MAX_POOL3S2_ADD in ops) == even and 8 not in padded_channels
        assert (program.OP_POINTWISE_ROWS_INTO in ops) == (not even)
        x = model_input(model.config)
        reference = model.reference_outputs(x)
        assert close(model.forward(x), reference["s"])
        for name in ("c2", "short", "dw", "sum"):
            assert close(model.buffer(name), reference[name]), name


def test_wide_pointwise_conv_writes_into_its_depthwise_readers_padded_buffer():
    """A 1x1 conv on a map at least 32 wide whose reader is a padded depthwise 3x3 conv writes into that conv's
    padded buffer (pointwise_rows_into; no pad copy, the depthwise conv runs on the padded map), but one feeding
    a pool + add that reads an even map unpadded (max_pool3s2_add) keeps a plain map; values as the reference."""
    from stream_cnn.model.kernels import program

    layers = [
        {"name": "pw1", "type": "conv2d", "filters": 8, "kernel": 1, "activation": "relu"},
        {"name": "dw", "type": "conv2d", "filters": 8, "kernel": 3, "padding": "same", "groups": 8},
        {"name": "pw2", "type": "conv2d", "filters": 8, "kernel": 1},
        {"name": "pool", "type": "max_pool", "kernel": 3, "stride": 2, "padding": "same"},
        {"name": "short", "type": "conv2d", "inputs": ["pw1"], "filters": 8, "kernel": 1, "stride": 2,
         "padding": "same"},
        {"name": "sum", "type": "add", "inputs": ["pool", "short"]},
        {"name": "g", "type": "global_avg_pool"},
        {"name": "s", "type": "softmax"},
    ]
    model = Model(config_from(layers, shape=(3, 6, 40)), init_seed=3)
    assert model.padded_outputs.get("pw1") == ((1, 1, 1, 1), 0.0)
    assert "pw2" not in model.padded_outputs
    ops = [int(row[0]) for _, args in model.program.steps for row in args[0]]
    assert ops.count(program.OP_POINTWISE_ROWS_INTO) == 1 and program.OP_MAX_POOL3S2_ADD in ops
    assert program.OP_PAD not in ops
    x = model_input(model.config)
    reference = model.reference_outputs(x)
    assert close(model.forward(x), reference["s"])
    for name in ("pw1", "dw", "pw2", "short", "sum"):
        assert close(model.buffer(name), reference[name]), name


def test_add_output_lives_in_the_next_convs_padded_buffer():
    """An add whose readers are a padded 3x3 conv and a strided 1x1 shortcut is written straight into the conv's
    padded buffer (no pad copy); the shortcut reads it at an offset, and buffer() / feature maps still show the
    plain maps. An add that is also read plainly (here by the second add) keeps a buffer of its own."""
    layers = [
        {"name": "c", "type": "conv2d", "filters": 8, "kernel": 3, "padding": "same", "activation": "relu"},
        {"name": "short1", "type": "conv2d", "filters": 8, "kernel": 1, "stride": 2, "padding": "same"},
        {"name": "pw1", "type": "conv2d", "inputs": ["c"], "filters": 8, "kernel": 1},
        {"name": "pool1", "type": "max_pool", "kernel": 3, "stride": 2, "padding": "same"},
        {"name": "sum1", "type": "add", "inputs": ["pool1", "short1"]},
        {"name": "short2", "type": "conv2d", "filters": 8, "kernel": 1, "stride": 2, "padding": "same"},
        {"name": "dw2", "type": "conv2d", "inputs": ["sum1"], "filters": 8, "kernel": 3, "padding": "same",
         "groups": 8},
        {"name": "pool2", "type": "max_pool", "kernel": 3, "stride": 2, "padding": "same"},
        {"name": "sum2", "type": "add", "inputs": ["short2", "pool2"]},
        {"name": "head", "type": "conv2d", "filters": 5, "kernel": 3, "padding": "same"},
        {"name": "sum3", "type": "add", "inputs": ["head", "head"]},
        {"name": "g", "type": "global_avg_pool"},
        {"name": "s", "type": "softmax"},
    ]
    for shape in [(1, 16, 16), (3, 13, 18)]:
        model = Model(config_from(layers, shape=shape), init_seed=5)
        assert set(model.padded_outputs) == {"sum1", "sum2"}
        assert model.padded_outputs["sum1"] == ((1, 1, 1, 1), 0.0)
        x = model_input(model.config)
        reference = model.reference_outputs(x)
        assert close(model.forward(x), reference["s"])
        for name in ("c", "short1", "sum1", "short2", "dw2", "sum2", "head"):
            assert close(model.buffer(name), reference[name]), name
            assert model.buffer(name).shape == reference[name].shape
            assert np.shares_memory(model.buffer(name), model.program.state), name
        maps = dict(model.feature_maps())
        assert maps["dw2"] is model.buffer("dw2")
        model.forward(x)   # a second pass over the same buffers: the borders the kernels skip are still zeros
        assert close(model.output, reference["s"])


def test_run_state_lives_in_one_arena(all_layers):
    state = all_layers.program.state
    for name, array in [("input", all_layers.input), ("output", all_layers.output)] + all_layers.feature_maps():
        assert np.shares_memory(array, state), name


def test_bundled_digits_runs_its_convs_as_winograd_and_matches_the_reference():
    from stream_cnn.model.kernels import program

    model = load_model(Path(__file__).resolve().parents[1] / "stream_cnn" / "model" / "zoo" / "digits.toml")
    (executor, (ops, *_)), = model._steps
    assert executor is program.run_basic
    # No padding copies: the model input lives inside conv1's padded buffer, and conv1 and conv2 write their pooled
    # maps straight into the next conv's padded input (out_top / out_left), whose zero border nobody writes.
    assert list(ops[:, 0]) == [program.OP_WINOGRAD] * 3 + [program.OP_DENSE_LINEAR, program.OP_SOFTMAX]
    assert model.padded_input == ((1, 1, 1, 1), 0.0) and not model.input.flags.c_contiguous
    # conv3's input stops before the bottom row / right column its pool never reads (7x7: 3x3 pooled)
    assert model.padded_outputs == {"pool1": ((1, 1, 1, 1), 0.0), "pool2": ((1, 0, 1, 0), 0.0)}
    rng = np.random.default_rng(4)
    for _ in range(3):
        # digit-like inputs: mostly dark, a few bright strokes
        x = (rng.random(model.input.shape) < 0.2).astype(np.float32) * rng.random(model.input.shape, np.float32)
        probs = model.forward(x).copy()
        assert close(probs, model.reference_forward(x))
        reference = model.reference_outputs(x)
        for name, pooled in (("conv1", "pool1"), ("conv2", "pool2"), ("conv3", "pool3")):
            assert close(model.buffer(name), reference[pooled])
