"""ONNX export as an independent oracle: whole models exported and run in ONNX Runtime (and OpenCV dnn) agree with
model.forward. The exported graph keeps batch norm unfolded and activations as separate nodes, so agreement also
checks stream-cnn's own folding and fusion."""
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from stream_cnn.cli import main  # noqa: E402
from stream_cnn.errors import UsageError  # noqa: E402
from stream_cnn.model import load_model  # noqa: E402
from stream_cnn.model.onnx_export import export_onnx, to_onnx  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
MODELS = ["all_layers", "mini_xception", "mobilenet_tiny", "seed_features"]


def close(ours, theirs, tol=1e-5):
    scale = max(1.0, float(np.max(np.abs(ours))))
    return float(np.max(np.abs(np.asarray(ours) - np.asarray(theirs)))) <= tol * scale


def model_input(config, seed):
    pixels = np.random.default_rng(seed).uniform(0, 255, config.input_shape)
    mean = np.reshape(config.mean, (-1, 1, 1))
    std = np.reshape(config.std, (-1, 1, 1))
    return ((pixels * config.scale - mean) / std).astype(np.float32)


def session(proto):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1   # shared CI cores
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module", params=MODELS)
def exported(request):
    model = load_model(CONFIGS / f"{request.param}.toml", init_seed=0)
    return model, to_onnx(model)


def test_onnxruntime_agrees_with_forward(exported):
    model, proto = exported
    run = session(proto)
    assert run.get_inputs()[0].name == "input"
    assert run.get_inputs()[0].shape == [1, *model.config.input_shape]
    for seed in (1, 2):
        x = model_input(model.config, seed)
        theirs = run.run(None, {"input": x[None]})[0]
        assert theirs.shape == (1, *model.output_shape)
        assert close(model.forward(x), theirs[0])
    if len(model.output_shape) == 1:   # not a saturated softmax: the agreement is informative
        assert float(np.max(theirs)) < 0.999


def test_opencv_dnn_agrees_with_forward(exported, tmp_path):
    cv2 = pytest.importorskip("cv2")
    model, proto = exported
    path = tmp_path / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    net = cv2.dnn.readNetFromONNX(str(path))
    x = model_input(model.config, 3)
    net.setInput(x[None])
    theirs = net.forward()
    assert close(model.forward(x), np.asarray(theirs).reshape(model.output_shape))


def test_every_layer_type_is_exported_with_the_expected_operators():
    model = load_model(CONFIGS / "all_layers.toml", init_seed=0)
    proto = to_onnx(model)
    ops = {node.op_type for node in proto.graph.node}
    assert {"Conv", "Relu", "LeakyRelu", "Erf", "Tanh", "Sigmoid", "Clip", "BatchNormalization", "MaxPool",
            "Neg", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "MatMul", "Gather", "Max", "Flatten",
            "Concat", "Sum", "Split", "Mul", "Gemm", "Softmax", "Identity"} <= ops
    # a conv with a fused activation in stream-cnn is Conv + activation node in ONNX
    producers = {out: node for node in proto.graph.node for out in node.output}
    assert producers["conv_a"].op_type == "Relu"
    assert producers[producers["conv_a"].input[0]].op_type == "Conv"
    # opset and IR version that onnxruntime 1.x accepts
    assert proto.opset_import[0].version == 17
    onnx.checker.check_model(proto)


def test_opset_18_export_runs():
    model = load_model(CONFIGS / "all_layers.toml", init_seed=1)
    proto = to_onnx(model, opset=18)
    x = model_input(model.config, 4)
    assert close(model.forward(x), session(proto).run(None, {"input": x[None]})[0][0])


def test_trained_style_weights_from_a_saved_file(tmp_path):
    # weights come from a .npz file (not init_weights) and the model is reloaded before exporting
    model = load_model(CONFIGS / "mini_xception.toml", init_seed=5)
    path = model.save(tmp_path / "fer.toml")
    reloaded = load_model(path)
    out = export_onnx(reloaded, tmp_path / "fer.onnx")
    x = model_input(reloaded.config, 6)
    run = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert close(reloaded.forward(x), run.run(None, {"input": x[None]})[0][0])


def test_export_command_writes_and_verifies(tmp_path):
    out = tmp_path / "all.onnx"
    result = CliRunner().invoke(main, ["export", str(CONFIGS / "all_layers.toml"), str(out), "--verify"])
    assert result.exit_code == 0, result.output
    assert out.exists() and onnx.load(str(out)).graph.input[0].name == "input"
    assert "agrees: max abs difference" in result.stdout
    assert "names no weights file" in result.stderr   # says the weights are random, not trained


def test_export_to_an_unwritable_place_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["export", str(CONFIGS / "seed_features.toml"), str(blocker / "m.onnx")])
    assert result.exit_code == 6
    assert "cannot write ONNX file" in result.stderr and "Traceback" not in result.output


def test_missing_onnx_package_is_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)   # makes `import onnx` raise ImportError
    model = load_model(CONFIGS / "seed_features.toml")
    with pytest.raises(UsageError, match="needs the 'onnx' package: pip install onnx"):
        to_onnx(model)
    result = CliRunner().invoke(main, ["export", str(CONFIGS / "seed_features.toml"), str(tmp_path / "m.onnx")])
    assert result.exit_code == UsageError.exit_code
    assert "needs the 'onnx' package" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()


# Random graphs from the model-graph tests' strategy, exported: ONNX Runtime is the oracle here.
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_model_graph import random_graph  # noqa: E402  (tests/ is on sys.path: pytest's rootdir-less import)

from stream_cnn.errors import ModelFileError  # noqa: E402
from stream_cnn.model import Model, ModelConfig, init_weights  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=random_graph(), seed=st.integers(0, 2**16))
def test_random_graphs_agree_with_onnxruntime(data, seed):
    try:
        config = ModelConfig.from_dict(data)
        model = Model(config, init_weights(config, seed, calibrate=False))
    except ModelFileError:
        assume(False)
        return
    x = np.random.default_rng(seed).normal(size=config.input_shape).astype(np.float32)
    theirs = session(to_onnx(model)).run(None, {"input": x[None]})[0][0]
    assert close(model.forward(x), theirs)
