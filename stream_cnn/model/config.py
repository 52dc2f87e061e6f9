"""Model files: the TOML config and the .npz weights beside it, read, validated and written back.

Every problem with a model file is a ModelFileError whose single line names the file, the layer (when there is
one) and what was expected against what was found. Layer parameters themselves are checked by the layer classes
(layers.py) when the Model is built; this module checks the file-level structure and the weight arrays.
"""
import math
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream_cnn.errors import ModelFileError

COLORS = ("gray", "rgb")
RESIZE_MODES = ("stretch", "crop", "letterbox")
PREPROCESS_MODES = ("frame", "digit")
_TOP_LEVEL_KEYS = ("name", "description", "weights", "input", "output", "layers")


def one_line(text) -> str:
    """Collapse a message to one line: the CLI prints exactly one line per error."""
    return " ".join(str(text).split())


def _describe(value) -> str:
    return repr(value) if not isinstance(value, str) else f'"{value}"'


@dataclass
class ModelConfig:
    """Everything in the TOML file except the layers' weights. `layers` holds one dict per [[layers]] table."""

    name: str
    input_shape: tuple
    layers: list
    description: str = ""
    weights: str | None = None          # as written in the TOML: relative to the TOML file's folder
    color: str = "gray"
    scale: float = 1.0 / 255.0
    mean: tuple = (0.0,)
    std: tuple = (1.0,)
    resize: str = "stretch"
    preprocess: str = "frame"
    labels: list | None = None
    min_confidence: float = 0.0
    path: Path | None = None            # the TOML file this came from (None: built in memory)
    extra: dict = field(default_factory=dict)  # other top-level tables (e.g. [train]); kept for round trips

    @property
    def source(self) -> str:
        """How error messages name this config."""
        return str(self.path) if self.path is not None else f"<model {self.name}>"

    @property
    def weights_path(self) -> Path | None:
        if self.weights is None:
            return None
        weights = Path(self.weights)
        if not weights.is_absolute() and self.path is not None:
            weights = self.path.parent / weights
        return weights

    def error(self, message, layer=None) -> ModelFileError:
        """A ModelFileError naming this file (and the layer, given as (name, type) or a name)."""
        where = self.source
        if layer is not None:
            if isinstance(layer, tuple):
                where += f": layer '{layer[0]}' ({layer[1]})"
            else:
                where += f": layer '{layer}'"
        return ModelFileError(one_line(f"{where}: {message}"))

    @classmethod
    def from_dict(cls, data: dict, path=None) -> "ModelConfig":
        """Validate the parsed TOML document (or an equivalent dict built in code)."""
        path = Path(path) if path is not None else None
        probe = cls(name=str(data.get("name", "model")), input_shape=(1, 1, 1), layers=[], path=path)

        def fail(message):
            return probe.error(message)

        if not isinstance(data, dict):
            raise fail("expected a TOML table at the top level")
        for key, value in data.items():
            if key not in _TOP_LEVEL_KEYS and not isinstance(value, dict):
                raise fail(f"unknown top-level key '{key}' (expected {', '.join(_TOP_LEVEL_KEYS)} or a [table])")
        extra = {k: v for k, v in data.items() if k not in _TOP_LEVEL_KEYS}

        name = data.get("name", path.stem if path is not None else "model")
        if not isinstance(name, str) or not name:
            raise fail(f"'name' must be a non-empty string, got {_describe(name)}")
        probe.name = name
        description = data.get("description", "")
        if not isinstance(description, str):
            raise fail(f"'description' must be a string, got {_describe(description)}")
        weights = data.get("weights")
        if weights is not None and (not isinstance(weights, str) or not weights):
            raise fail(f"'weights' must be a file name (string), got {_describe(weights)}")

        section = data.get("input")
        if not isinstance(section, dict):
            raise fail("missing [input] table (shape = [C, H, W], color, scale, mean, std, ...)")
        known = ("shape", "color", "scale", "mean", "std", "resize", "preprocess")
        for key in section:
            if key not in known:
                raise fail(f"[input]: unknown key '{key}' (expected one of {', '.join(known)})")
        shape = section.get("shape")
        if (not isinstance(shape, list) or len(shape) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
            raise fail(f"[input] shape must be [C, H, W] with positive integers, got {_describe(shape)}")
        channels = shape[0]
        color = section.get("color", "gray" if channels == 1 else "rgb")
        if color not in COLORS:
            raise fail(f"[input] color must be one of {', '.join(COLORS)}, got {_describe(color)}")
        expected_channels = 1 if color == "gray" else 3
        if channels != expected_channels:
            raise fail(f"[input] color \"{color}\" needs {expected_channels} channel(s), shape has {channels}")
        scale = section.get("scale", 1.0 / 255.0)
        if not _is_number(scale) or not math.isfinite(scale) or scale == 0:
            raise fail(f"[input] scale must be a finite non-zero number, got {_describe(scale)}")
        mean = _per_channel(section.get("mean", [0.0]), channels, "mean", fail)
        std = _per_channel(section.get("std", [1.0]), channels, "std", fail)
        if any(v <= 0 for v in std):
            raise fail(f"[input] std must be > 0, got {list(std)}")
        resize = section.get("resize", "stretch")
        if resize not in RESIZE_MODES:
            raise fail(f"[input] resize must be one of {', '.join(RESIZE_MODES)}, got {_describe(resize)}")
        preprocess = section.get("preprocess", "frame")
        if preprocess not in PREPROCESS_MODES:
            raise fail(f"[input] preprocess must be one of {', '.join(PREPROCESS_MODES)}, "
                       f"got {_describe(preprocess)}")

        output = data.get("output", {})
        if not isinstance(output, dict):
            raise fail("[output] must be a table")
        for key in output:
            if key not in ("labels", "min_confidence"):
                raise fail(f"[output]: unknown key '{key}' (expected labels, min_confidence)")
        labels = output.get("labels")
        if labels is not None and (not isinstance(labels, list) or not all(isinstance(v, str) for v in labels)):
            raise fail(f"[output] labels must be a list of strings, got {_describe(labels)}")
        min_confidence = output.get("min_confidence", 0.0)
        if not _is_number(min_confidence) or not 0.0 <= min_confidence <= 1.0:
            raise fail(f"[output] min_confidence must be a number in [0, 1], got {_describe(min_confidence)}")

        layers = data.get("layers")
        if not isinstance(layers, list) or not layers:
            raise fail("no [[layers]]: a model needs at least one layer")
        seen = set()
        for index, layer in enumerate(layers):
            if not isinstance(layer, dict):
                raise fail(f"layers[{index}] must be a table")
            layer_type = layer.get("type")
            if not isinstance(layer_type, str):
                raise fail(f"layers[{index}] ('{layer.get('name', '?')}') has no type = \"...\"")
            layer_name = layer.get("name")
            if layer_name is None:
                continue  # the model gives it a default name
            if not isinstance(layer_name, str) or not layer_name or layer_name == "input" or "." in layer_name:
                raise fail(f"layers[{index}]: name must be a non-empty string without '.', not \"input\", "
                           f"got {_describe(layer_name)}")
            if layer_name in seen:
                raise fail(f"duplicate layer name '{layer_name}'")
            seen.add(layer_name)

        return cls(name=name, description=description, weights=weights, input_shape=tuple(shape), color=color,
                   scale=float(scale), mean=mean, std=std, resize=resize, preprocess=preprocess,
                   labels=list(labels) if labels is not None else None, min_confidence=float(min_confidence),
                   layers=[dict(layer) for layer in layers], path=path, extra=extra)

    def to_dict(self) -> dict:
        data = {"name": self.name}
        if self.description:
            data["description"] = self.description
        if self.weights is not None:
            data["weights"] = self.weights
        data["input"] = {
            "shape": list(self.input_shape), "color": self.color, "scale": self.scale, "mean": list(self.mean),
            "std": list(self.std), "resize": self.resize, "preprocess": self.preprocess,
        }
        output = {}
        if self.labels is not None:
            output["labels"] = list(self.labels)
        if self.min_confidence:
            output["min_confidence"] = self.min_confidence
        if output:
            data["output"] = output
        data.update(self.extra)
        data["layers"] = [dict(layer) for layer in self.layers]
        return data


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _per_channel(value, channels, key, fail) -> tuple:
    if _is_number(value):
        value = [value]
    if not isinstance(value, list) or not all(_is_number(v) and math.isfinite(v) for v in value):
        raise fail(f"[input] {key} must be a list of finite numbers, got {_describe(value)}")
    if len(value) == 1:
        value = value * channels
    if len(value) != channels:
        raise fail(f"[input] {key} needs 1 or {channels} values (one per channel), got {len(value)}")
    return tuple(float(v) for v in value)


def read_config(path) -> ModelConfig:
    """Parse and validate a TOML model config (not its layers' parameters, not its weights)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: model file not found") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, expected a .toml model file") from None
    except OSError as err:
        raise ModelFileError(one_line(f"{path}: cannot read model file: {err.strerror or err}")) from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not a text (UTF-8) TOML file") from None
    except tomllib.TOMLDecodeError as err:
        raise ModelFileError(one_line(f"{path}: bad TOML syntax: {err}")) from None
    return ModelConfig.from_dict(data, path)


def read_weights(path: Path, source: str) -> dict:
    """All arrays of an .npz file, read without pickle. Content checks happen in check_weights."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {}
            for key in archive.files:
                try:
                    arrays[key] = archive[key]
                except ValueError:  # object arrays need pickle, which we never allow
                    raise ModelFileError(f"{source}: weights file {path}: array '{key}' holds Python objects "
                                         "(pickled); expected float32 numbers") from None
            return arrays
    except FileNotFoundError:
        raise ModelFileError(f"{source}: weights file {path} not found") from None
    except ModelFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ModelFileError(one_line(f"{source}: weights file {path} is not a readable .npz archive: {err}")) \
            from None


def check_weights(config: ModelConfig, arrays: dict, expected: dict, owners: dict) -> dict:
    """Check arrays against expected {key: shape}; owners maps key -> (layer name, layer type). Returns float32
    C-contiguous copies. Any missing or extra array, wrong shape, dtype, or non-finite value is a ModelFileError."""
    where = f" in {config.weights}" if config.weights else ""
    for key, shape in expected.items():
        if key not in arrays:
            raise config.error(f"missing weight array '{key}'{where}: expected float32 {_shape(shape)}",
                               owners[key])
    for key in arrays:
        if key not in expected:
            layer_name = key.split(".", 1)[0]
            known = [k for k in expected if k.split(".", 1)[0] == layer_name]
            if known:
                hint = f"layer '{layer_name}' expects only {', '.join(known)}"
            else:
                hint = f"no layer '{layer_name}' takes weights"
            raise config.error(f"unexpected weight array '{key}'{where}: {hint}")
    checked = {}
    for key, shape in expected.items():
        array = arrays[key]
        if array.dtype != np.float32:
            raise config.error(f"weight '{key}' has dtype {array.dtype}, expected float32", owners[key])
        if tuple(array.shape) != tuple(shape):
            raise config.error(f"weight '{key}' has shape {_shape(array.shape)}, expected {_shape(shape)}",
                               owners[key])
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise config.error(f"weight '{key}' has {bad} NaN/inf value(s), expected all finite", owners[key])
        checked[key] = np.ascontiguousarray(array, dtype=np.float32)
    return checked


def _shape(shape) -> str:
    return "(" + ", ".join(str(int(v)) for v in shape) + ("," if len(shape) == 1 else "") + ")"


# --- writing TOML -------------------------------------------------------------------------------------------
# The config format uses strings, numbers, booleans, flat lists of those, tables and arrays of tables: small
# enough to write by hand instead of adding a dependency.

def _toml_key(key: str) -> str:
    if key and all(ch.isalnum() or ch in "_-" for ch in key):
        return key
    return _toml_string(key)


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(ch in text for ch in ".en") else text + ".0"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _write_table(lines, prefix, table, array=False):
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_list(v)}
    header = f"[[{prefix}]]" if array else f"[{prefix}]"
    if prefix:
        lines.append("")
        lines.append(header)
    for key, value in scalars.items():
        lines.append(f"{_toml_key(key)} = {toml_value(value)}")
    for key, value in table.items():
        sub = f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key)
        if isinstance(value, dict):
            _write_table(lines, sub, value)
        elif _is_table_list(value):
            for item in value:
                _write_table(lines, sub, item, array=True)


def _is_table_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def to_toml(data: dict) -> str:
    lines = []
    _write_table(lines, "", data)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_config(config: ModelConfig, path) -> None:
    Path(path).write_text(to_toml(config.to_dict()), encoding="utf-8")
