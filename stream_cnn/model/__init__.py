"""The CNN core: layers made of Numba kernels, the model graph, model files (TOML + .npz).

    from stream_cnn.model import load_model
    model = load_model("digits")      # a bundled name or a path to a .toml
    probs = model.forward(x)          # x: (C, H, W) float32; returns the model-owned output buffer

Names are imported on first use, so `stream-cnn --help` does not pay for importing Numba.
"""
import importlib

_EXPORTS = {
    "Model": "stream_cnn.model.graph",
    "load_model": "stream_cnn.model.graph",
    "init_weights": "stream_cnn.model.graph",
    "ModelConfig": "stream_cnn.model.config",
    "read_config": "stream_cnn.model.config",
    "Layer": "stream_cnn.model.layers",
    "LAYER_TYPES": "stream_cnn.model.layers",
    "make_layer": "stream_cnn.model.layers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stream_cnn.model' has no attribute {name!r}")
