"""`stream-cnn inspect MODEL`: the layer table (name, type, output shape, params, FLOPs) and totals, as text and
JSON, for a path or a bundled model name."""
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stream_cnn.cli import main
from stream_cnn.model import load_model, zoo

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def inspect(*args):
    result = CliRunner().invoke(main, ["inspect", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_table_matches_the_model():
    data = json.loads(inspect(str(CONFIGS / "mini_xception.toml"), "--json"))
    model = load_model(CONFIGS / "mini_xception.toml", init_seed=0)
    assert data["name"] == "mini_xception" and data["input"]["shape"] == [1, 64, 64]
    assert [row["name"] for row in data["layers"]] == [layer.name for layer in model.layers]
    assert [row["output_shape"] for row in data["layers"]] == [list(layer.output_shape) for layer in model.layers]
    assert sum(row["params"] for row in data["layers"]) == data["total_params"] == model.n_params
    assert sum(row["flops"] for row in data["layers"]) == data["total_flops"] == model.flops
    assert data["labels"][3] == "happy" and data["output_shape"] == [7]
    rows = {row["name"]: row for row in data["layers"]}
    # the first conv: 8 filters of 3x3 on one channel, no bias; 62x62 outputs, 2 FLOPs per multiply-add
    assert rows["conv1"]["params"] == 72 and rows["conv1"]["flops"] == 2 * 8 * 62 * 62 * 9
    assert rows["conv1_bn"]["runs_as"] == "folded" and rows["conv1_relu"]["runs_as"] == "fused"
    assert rows["block1_add"]["inputs"] == ["block1_pool", "block1_shortcut_bn"]
    assert data["buffer_bytes"] > 64 * 64 * 4


def test_text_table_lists_every_layer_and_totals():
    text = inspect(str(CONFIGS / "all_layers.toml"))
    model = load_model(CONFIGS / "all_layers.toml", init_seed=0)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("name"))
    assert lines[header].split() == ["name", "type", "output", "shape", "params", "FLOPs", "runs", "as"]
    body = lines[header + 2: header + 2 + len(model.layers)]
    for line, layer in zip(body, model.layers):
        assert line.split()[:2] == [layer.name, layer.type]
        assert f"{layer.n_params:,}" in line and f"{layer.flops:,}" in line
    total = next(line for line in lines if line.startswith("total"))
    assert f"{model.n_params:,}" in total and f"{model.flops:,}" in total
    assert "seeded random weights (seed 0), untrained" in text
    assert f"{len(model.layers)} layers, {model.n_params:,} parameters" in text


def test_filter_bank_model_needs_no_weights():
    text = inspect(str(CONFIGS / "seed_features.toml"))
    assert "none needed (fixed filters only)" in text and "feature maps (7, 32, 32)" in text


def test_model_with_weights_file_names_it(tmp_path):
    saved = load_model(CONFIGS / "all_layers.toml", init_seed=2).save(tmp_path / "net.toml")
    text = inspect(str(saved))
    assert f"weights: {tmp_path / 'net.npz'}" in text


def test_bundled_name_resolves_in_the_zoo(tmp_path, monkeypatch):
    shutil.copy(CONFIGS / "seed_features.toml", tmp_path / "edges.toml")
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    assert zoo.bundled_names() == ["edges"]
    assert json.loads(inspect("edges", "--json"))["name"] == "seed_features"
    result = CliRunner().invoke(main, ["inspect", "nothing_like_it"])
    assert result.exit_code == 5 and "bundled: edges" in result.stderr


@pytest.mark.skipif(not (zoo.ZOO_DIR / "digits.toml").exists(), reason="digits model not trained yet")
def test_bundled_digits_model():
    data = json.loads(inspect("digits", "--json"))
    assert data["input"]["shape"] == [1, 28, 28] and data["output_shape"] == [10]
    assert data["labels"] == [str(i) for i in range(10)]
