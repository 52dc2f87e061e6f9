"""The models the benchmark runs, by short name, each with the weights every engine gets.

* ``digits``: the bundled trained model when it is there; until then the architecture of configs/digits.toml with
  seeded random weights (said so in the report).
* ``mini_xception``: configs/mini_xception.toml (64x64 gray, the FER emotion model's shape), seeded weights.
* ``rgb``: configs/mobilenet_tiny.toml (96x96 RGB, MobileNetV2-style), seeded weights.

Any other name is a bundled model name or a path to a .toml, loaded as ``stream-cnn inspect`` would.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from stream_cnn.errors import ModelFileError, UsageError

DEFAULT_MODELS = ("digits", "mini_xception", "rgb")
WEIGHT_SEED = 0
# Example configs live beside the package in a source checkout (they are documentation, not bundled models).
CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIG_FILES = {"digits": "digits.toml", "mini_xception": "mini_xception.toml", "rgb": "mobilenet_tiny.toml"}


@dataclass
class BenchModel:
    key: str            # the name used on the command line and in the report
    model: object       # stream_cnn.model.Model
    weights_note: str   # where the weights came from
    source: str | None = None   # what a fresh process passes to load_model (None: save a copy first)

    @property
    def input_shape(self):
        return tuple(self.model.config.input_shape)


def _seeded(config, note_prefix=""):
    from stream_cnn.model.graph import Model

    config = dataclasses.replace(config, weights=None)
    model = Model(config, init_seed=WEIGHT_SEED)
    return model, f"{note_prefix}seeded random weights (seed {WEIGHT_SEED}), untrained"


def load_bench_model(key: str) -> BenchModel:
    from stream_cnn.model.config import read_config
    from stream_cnn.model.graph import Model
    from stream_cnn.model.zoo import ZOO_DIR

    if key == "digits":
        bundled = ZOO_DIR / "digits.toml"
        if bundled.exists():
            config = read_config(bundled)
            if config.weights_path is not None and config.weights_path.exists():
                return BenchModel(key, Model(config), f"trained ({config.weights_path.name}, bundled)", "digits")
    if key in CONFIG_FILES:
        path = CONFIGS_DIR / CONFIG_FILES[key]
        if not path.exists():
            raise ModelFileError(f"bench model '{key}' needs {path}, which is missing (run from a source "
                                 f"checkout, or pass a .toml path instead)")
        config = read_config(path)
        prefix = "bundled digits model not present yet: architecture of configs/digits.toml with " \
            if key == "digits" else ""
        model, note = _seeded(config, prefix)
        return BenchModel(key, model, note)
    from stream_cnn.model.zoo import resolve

    config = read_config(resolve(key))   # a bundled name or a .toml path; ModelFileError otherwise
    if config.weights is not None:
        return BenchModel(key, Model(config), f"trained ({config.weights_path.name})", key)
    model, note = _seeded(config)
    return BenchModel(key, model, note)


def parse_model_list(text: str) -> list:
    keys = [part.strip() for part in str(text).split(",") if part.strip()]
    if not keys:
        raise UsageError("--models needs at least one model name")
    if len(set(keys)) != len(keys):
        raise UsageError(f"--models lists a model twice: {text}")
    return keys
