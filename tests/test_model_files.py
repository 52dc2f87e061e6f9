"""Bad model files: every problem is one ModelFileError line naming the file, the layer and expected vs actual,
in process and through the CLI (exit code 5, one line, no traceback)."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stream_cnn.cli import main
from stream_cnn.errors import ModelFileError
from stream_cnn.model import load_model

GOOD_TOML = """\
name = "tiny"
weights = "tiny.npz"

[input]
shape = [1, 6, 6]

[output]
labels = ["no", "yes"]

[[layers]]
name = "c1"
type = "conv2d"
filters = 4
kernel = 3
activation = "relu"

[[layers]]
name = "pool"
type = "max_pool"
kernel = 2

[[layers]]
name = "fc"
type = "dense"
units = 2

[[layers]]
name = "probs"
type = "softmax"
"""


def good_weights():
    rng = np.random.default_rng(0)
    return {
        "c1.weight": rng.normal(size=(4, 1, 3, 3)).astype(np.float32),
        "c1.bias": np.zeros(4, np.float32),
        "fc.weight": rng.normal(size=(2, 16)).astype(np.float32),
        "fc.bias": np.zeros(2, np.float32),
    }


def write_model(folder: Path, toml=GOOD_TOML, weights=None, name="tiny.toml"):
    path = folder / name
    path.write_text(toml)
    arrays = good_weights() if weights is None else weights
    if arrays is not False:
        np.savez(folder / "tiny.npz", **arrays)
    return path


def edited(old, new):
    assert old in GOOD_TOML
    return GOOD_TOML.replace(old, new)


def without(key):
    arrays = good_weights()
    del arrays[key]
    return arrays


def replaced(key, value):
    arrays = good_weights()
    arrays[key] = value
    return arrays


nan_weight = good_weights()["c1.weight"].copy()
nan_weight[0, 0, 1, 1] = np.nan

# (case id, toml text, weights dict / None for the good ones / False for no file, expected message fragments)
CASES = [
    ("unknown layer type", edited('type = "max_pool"', 'type = "maxpool3d"'), None,
     ["layer 'pool'", "unknown layer type 'maxpool3d'", "max_pool"]),
    ("bad parameter value", edited("kernel = 3", 'kernel = "big"'), None,
     ["layer 'c1' (conv2d)", "'kernel' must be an integer >= 1 or [h, w], got 'big'"]),
    ("negative parameter", edited("units = 2", "units = -2"), None,
     ["layer 'fc' (dense)", "'units' must be an integer >= 1, got -2"]),
    ("unknown parameter", edited("filters = 4", "filters = 4\nfilter_count = 4"), None,
     ["layer 'c1' (conv2d)", "unknown parameter 'filter_count'", "allowed: filters"]),
    ("missing parameter", edited("units = 2\n", ""), None, ["layer 'fc' (dense)", "missing parameter 'units'"]),
    ("bad activation", edited('activation = "relu"', 'activation = "swish"'), None,
     ["layer 'c1' (conv2d)", "unknown activation 'swish'", "relu6"]),
    ("unknown input name", edited('type = "dense"', 'type = "dense"\ninputs = ["conv1"]'), None,
     ["layer 'fc' (dense)", "unknown input 'conv1'", "c1, pool"]),
    ("duplicate layer name", edited('name = "pool"', 'name = "c1"'), None, ["duplicate layer name 'c1'"]),
    ("shape collapses to zero", edited("kernel = 2", "kernel = 5"), None,
     ["layer 'pool' (max_pool)", "output shape would be (4, 0, 0) from input (4, 4, 4)"]),
    ("bad input shape", edited("shape = [1, 6, 6]", "shape = [1, 6]"), None,
     ["[input] shape must be [C, H, W]", "[1, 6]"]),
    ("missing weight array", GOOD_TOML, without("c1.bias"),
     ["layer 'c1' (conv2d)", "missing weight array 'c1.bias'", "expected float32 (4,)"]),
    ("extra weight array", GOOD_TOML, replaced("c9.weight", np.zeros((1, 1), np.float32)),
     ["unexpected weight array 'c9.weight'", "no layer 'c9' takes weights"]),
    ("extra array of a known layer", GOOD_TOML, replaced("c1.gamma", np.ones(4, np.float32)),
     ["unexpected weight array 'c1.gamma'", "layer 'c1' expects only c1.weight, c1.bias"]),
    ("wrong shape", GOOD_TOML, replaced("c1.weight", np.zeros((4, 1, 5, 5), np.float32)),
     ["layer 'c1' (conv2d)", "weight 'c1.weight' has shape (4, 1, 5, 5), expected (4, 1, 3, 3)"]),
    ("wrong dtype", GOOD_TOML, replaced("fc.weight", np.zeros((2, 16), np.float64)),
     ["layer 'fc' (dense)", "weight 'fc.weight' has dtype float64, expected float32"]),
    ("NaN weights", GOOD_TOML, replaced("c1.weight", nan_weight),
     ["layer 'c1' (conv2d)", "weight 'c1.weight' has 1 NaN/inf value(s), expected all finite"]),
    ("inf weights", GOOD_TOML, replaced("fc.bias", np.array([np.inf, 0], np.float32)),
     ["layer 'fc' (dense)", "'fc.bias' has 1 NaN/inf"]),
    ("pickled object array", GOOD_TOML, replaced("fc.bias", np.array([None, 1], dtype=object)),
     ["array 'fc.bias' holds Python objects", "expected float32"]),
    ("missing weights file", GOOD_TOML, False, ["weights file", "tiny.npz not found"]),
    ("no weights file named", edited('weights = "tiny.npz"\n', ""), False,
     ["layer 'c1' (conv2d)", "needs weight array 'c1.weight'", "names no weights file"]),
    ("label count", edited('labels = ["no", "yes"]', 'labels = ["a", "b", "c"]'), None,
     ["[output] has 3 labels", "'probs' outputs 2 values"]),
    ("bad TOML syntax", edited("filters = 4", "filters = = 4"), None, ["bad TOML syntax", "line"]),
    ("unknown top-level key", "colour = 1\n" + GOOD_TOML, None, ["unknown top-level key 'colour'"]),
    ("colour vs channels", edited("shape = [1, 6, 6]", 'shape = [1, 6, 6]\ncolor = "rgb"'), None,
     ['[input] color "rgb" needs 3 channel(s), shape has 1']),
    ("no layers", GOOD_TOML.split("[[layers]]")[0], None, ["no [[layers]]"]),
    ("softmax on maps", edited('name = "fc"\ntype = "dense"\nunits = 2', 'name = "fc"\ntype = "dropout"'), False,
     ["layer 'probs' (softmax)", "needs a vector (N,) input, got (4, 2, 2)"]),
]


@pytest.mark.parametrize("toml, weights, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_model_file_in_process(tmp_path, toml, weights, fragments):
    path = write_model(tmp_path, toml, weights)
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path)) or str(tmp_path / "tiny.npz") in message
    for fragment in fragments:
        assert fragment in message, message
    assert caught.value.exit_code == 5


# `inspect` gives a config without a weights file seeded random weights, so that case is not an error there.
CLI_CASES = [c for c in CASES if c[0] != "no weights file named"]


@pytest.mark.parametrize("toml, weights, fragments", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_model_file_through_cli(tmp_path, toml, weights, fragments):
    path = write_model(tmp_path, toml, weights)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 5, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stream-cnn: ")
    assert fragments[0] in lines[0]
    assert "Traceback" not in result.output and result.stdout == ""


def test_good_model_file_loads(tmp_path):
    model = load_model(write_model(tmp_path))
    assert model.output_shape == (2,) and model.config.labels == ["no", "yes"]


def test_negative_variance_is_rejected(tmp_path):
    toml = GOOD_TOML.replace('[[layers]]\nname = "fc"', '[[layers]]\nname = "bn"\ntype = "batchnorm"\n\n'
                                                         '[[layers]]\nname = "fc"')
    arrays = good_weights()
    arrays.update({"bn.gamma": np.ones(4, np.float32), "bn.beta": np.zeros(4, np.float32),
                   "bn.mean": np.zeros(4, np.float32), "bn.var": np.array([1, -1, 1, 1], np.float32)})
    with pytest.raises(ModelFileError, match=r"layer 'bn' \(batchnorm\): weight 'bn.var' has negative values"):
        load_model(write_model(tmp_path, toml, arrays))


def test_corrupt_npz(tmp_path):
    path = write_model(tmp_path)
    (tmp_path / "tiny.npz").write_bytes(b"this is not a zip archive")
    with pytest.raises(ModelFileError, match="is not a readable .npz archive"):
        load_model(path)


def test_missing_model_file_and_unknown_name(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        load_model(tmp_path / "absent.toml")
    with pytest.raises(ModelFileError, match=r"unknown model 'no_such_model'.*bundled"):
        load_model("no_such_model")
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "absent.toml")])
    assert result.exit_code == 5 and "model file not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_not_utf8(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ModelFileError, match="not a text"):
        load_model(path)


def test_real_subprocess_reports_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(edited("kernel = 3", "kernel = 0"))
    np.savez(tmp_path / "tiny.npz", **good_weights())
    # the installed console script, as a user runs it (python -m stream_cnn if the script is not on PATH)
    command = [shutil.which("stream-cnn")] if shutil.which("stream-cnn") else [sys.executable, "-m", "stream_cnn"]
    done = subprocess.run(command + ["inspect", str(bad)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 5
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0] == (f"stream-cnn: {bad}: layer 'c1' (conv2d): 'kernel' must be an integer >= 1 or [h, w], "
                        "got 0")
    assert "Traceback" not in done.stderr


def test_saved_toml_round_trips_awkward_values(tmp_path):
    toml = GOOD_TOML.replace('name = "tiny"', 'name = "tiny"\ndescription = "quotes \\" back\\\\slash\\ttab é ✓"')
    toml = toml.replace('labels = ["no", "yes"]', 'labels = ["nö \\"no\\"", "y\\u0001s"]\nmin_confidence = 0.25')
    toml = toml.replace("units = 2", "units = 2\n\n[train]\nlearning_rate = 1e-05\nepochs = 3\nnotes = [\"a\", \"b\"]")
    model = load_model(write_model(tmp_path, toml))
    saved = model.save(tmp_path / "out" / "copy.toml")
    again = load_model(saved)
    for key in ("description", "labels", "min_confidence", "extra", "scale", "mean", "std"):
        assert getattr(again.config, key) == getattr(model.config, key), key
    assert again.config.extra == {"train": {"learning_rate": 1e-05, "epochs": 3, "notes": ["a", "b"]}}
    assert again.config.labels == ['nö "no"', "y\x01s"]
