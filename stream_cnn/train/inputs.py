"""IDX images -> model inputs, as the model config's [input] table says: pixel * scale, then (value - mean) / std.

One definition for training and for `eval`, so both feed the network exactly what the other saw. IDX digits
are already MNIST-style, so the camera-side digit finder is not used."""
from __future__ import annotations

import numpy as np

from stream_cnn.errors import DataError
from stream_cnn.model.config import ModelConfig


def check_images_fit(images: np.ndarray, config: ModelConfig) -> None:
    """uint8 (N, H, W) grayscale images must match the model's (1, H, W) input."""
    channels, height, width = config.input_shape
    if channels != 1:
        raise DataError(f"the IDX images are grayscale but model {config.name!r} wants {channels} channels")
    if images.shape[1:] != (height, width):
        raise DataError(f"the images are {images.shape[1]}x{images.shape[2]}, "
                        f"model {config.name!r} wants {height}x{width}")


def scale_pixels(images: np.ndarray, config: ModelConfig) -> np.ndarray:
    """uint8 (N, H, W) -> float32 pixel * scale (what augmentation works on)."""
    return images.astype(np.float32) * np.float32(config.scale)


def normalise(unit: np.ndarray, config: ModelConfig) -> np.ndarray:
    """float32 (N, H, W) scaled pixels -> (N, 1, H, W) model input: (value - mean) / std."""
    return ((unit - np.float32(config.mean[0])) / np.float32(config.std[0]))[:, None, :, :]


def model_inputs(images: np.ndarray, config: ModelConfig) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) model inputs."""
    check_images_fit(images, config)
    return normalise(scale_pixels(images, config), config)
