"""Data augmentation for digits: what a camera and the digit finder do to an MNIST-style image.

The camera-side preprocess crops the ink, scales it into a 20x20 box and centres it by mass, so what is left
to learn is the residue of that: a pixel or two of shift, a slightly wrong scale, a tilted sheet (rotation,
shear), a thicker or thinner pen, defocus, sensor noise and weak contrast. The ranges are kept small on
purpose: the model must still score >= 99% on clean MNIST.

Works on a batch of float32 images (N, H, W) in [0, 1], ink bright on a dark background. Everything draws from
the caller's np.random.Generator, so a seeded run is reproducible. Per-image work is a single cv2.warpAffine;
the other steps are vectorised over the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentSettings:
    max_shift: float = 2.0          # pixels
    max_rotation: float = 12.0      # degrees
    scale_range: tuple[float, float] = (0.88, 1.12)
    max_shear: float = 0.12
    p_thickness: float = 0.3        # dilate or erode (half each)
    p_blur: float = 0.25
    max_blur: float = 0.3           # weight of each neighbour in the 3-tap blur kernel [a, 1-2a, a]
    p_noise: float = 0.3
    max_noise: float = 0.08         # std of additive Gaussian noise
    p_contrast: float = 0.4
    contrast_range: tuple[float, float] = (0.55, 1.0)
    max_background: float = 0.12


def _affine_matrices(rng, n, height, width, s: AugmentSettings) -> np.ndarray:
    """(n, 2, 3) forward maps: rotate + scale + shear about the image centre, then shift."""
    angle = np.deg2rad(rng.uniform(-s.max_rotation, s.max_rotation, n))
    scale = rng.uniform(*s.scale_range, n)
    shear = rng.uniform(-s.max_shear, s.max_shear, n)
    shift = rng.uniform(-s.max_shift, s.max_shift, (n, 2))
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    # [[cos, -sin], [sin, cos]] @ [[1, shear], [0, 1]]
    linear = np.empty((n, 2, 2))
    linear[:, 0, 0], linear[:, 0, 1] = cos, cos * shear - sin
    linear[:, 1, 0], linear[:, 1, 1] = sin, sin * shear + cos
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    matrices = np.empty((n, 2, 3))
    matrices[:, :, :2] = linear
    matrices[:, :, 2] = centre - linear @ centre + shift
    return matrices


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """images moved by (dy, dx) pixels, zero filled (dy, dx in {-1, 0, 1})."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _thickness(images: np.ndarray, grow: bool) -> np.ndarray:
    """Grey dilation (grow) or erosion with a 2x2 square: about half a pixel of pen width either way."""
    neighbours = [images, _shifted(images, 0, 1), _shifted(images, 1, 0), _shifted(images, 1, 1)]
    if grow:
        return np.maximum.reduce(neighbours)
    return np.minimum.reduce(neighbours)


def _blur(images: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Separable 3-tap blur [a, 1 - 2a, a] with a per-image a (shape (n, 1, 1))."""
    rows = (1 - 2 * weight) * images + weight * (_shifted(images, 0, 1) + _shifted(images, 0, -1))
    return (1 - 2 * weight) * rows + weight * (_shifted(rows, 1, 0) + _shifted(rows, -1, 0))


def augment_batch(images: np.ndarray, rng: np.random.Generator, settings: AugmentSettings = AugmentSettings()) -> np.ndarray:
    """Return an augmented copy of `images` (N, H, W) float32 in [0, 1]."""
    n, height, width = images.shape
    s = settings
    out = np.empty_like(images)
    matrices = _affine_matrices(rng, n, height, width, s)
    for i in range(n):
        cv2.warpAffine(images[i], matrices[i], (width, height), dst=out[i], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    thick = rng.random(n) < s.p_thickness
    grow = rng.random(n) < 0.5
    for selector, is_grow in ((thick & grow, True), (thick & ~grow, False)):
        if selector.any():
            out[selector] = _thickness(out[selector], is_grow)

    blur = rng.random(n) < s.p_blur
    blur_weight = rng.uniform(0.05, s.max_blur, n).astype(np.float32)[:, None, None]
    if blur.any():
        out[blur] = _blur(out[blur], blur_weight[blur])

    contrast = rng.random(n) < s.p_contrast
    gain = np.where(contrast, rng.uniform(*s.contrast_range, n), 1.0).astype(np.float32)[:, None, None]
    background = np.where(contrast, rng.uniform(0, s.max_background, n), 0.0).astype(np.float32)[:, None, None]
    out = background + gain * out

    noisy = rng.random(n) < s.p_noise
    sigma = np.where(noisy, rng.uniform(0, s.max_noise, n), 0.0).astype(np.float32)[:, None, None]
    out += sigma * rng.standard_normal(out.shape, dtype=np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out
