"""Camera frame -> model input, per the model's [input] config.

BGR -> gray or RGB, an optional region of interest, resize to the model's (H, W) by stretching, centre-cropping
or letterboxing, then ``(pixel * scale - mean) / std`` per channel written straight into ``model.input``. Working
buffers are allocated once per frame size, so the steady state allocates nothing of frame size.

For models whose config says ``preprocess = "digit"`` the digit finder (``preprocess.digits.DigitFinder``) locates a
handwritten digit on paper and produces an MNIST-style 28x28 image; no digit found means no prediction.

Each call returns the region of the frame the model looked at, ``(x, y, w, h)`` in frame pixels, or None when
a digit model found no digit.
"""
from __future__ import annotations

import cv2
import numpy as np

from stream_cnn.errors import UsageError

Region = tuple[int, int, int, int]
RESIZE_MODES = ("stretch", "crop", "letterbox")
# Letterbox bars are black, like the dark surround a digit or object is usually trained on.
LETTERBOX_FILL = 0


def parse_roi(text: str | None) -> Region | None:
    """``"x,y,w,h"`` -> a tuple of non-negative ints with w, h > 0; UsageError otherwise."""
    if text is None or text == "":
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--roi must be four integers x,y,w,h (got {text!r})") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise UsageError(f"--roi needs x, y >= 0 and w, h > 0 (got {text!r})")
    return (x, y, w, h)


def clip_roi(roi: Region | None, frame_width: int, frame_height: int) -> Region:
    """The ROI intersected with the frame (the whole frame when no ROI); UsageError if nothing is left."""
    if roi is None:
        return (0, 0, frame_width, frame_height)
    x, y, w, h = roi
    x1, y1 = min(x + w, frame_width), min(y + h, frame_height)
    if x >= frame_width or y >= frame_height or x1 <= x or y1 <= y:
        raise UsageError(f"--roi {x},{y},{w},{h} lies outside the {frame_width}x{frame_height} frame")
    return (x, y, x1 - x, y1 - y)


def centre_crop(region: Region, target_width: int, target_height: int) -> Region:
    """The largest centred sub-rectangle of ``region`` with the target's aspect ratio."""
    x, y, w, h = region
    target_aspect = target_width / target_height
    if w / h > target_aspect:
        crop_w = max(1, round(h * target_aspect))
        return (x + (w - crop_w) // 2, y, crop_w, h)
    crop_h = max(1, round(w / target_aspect))
    return (x, y + (h - crop_h) // 2, w, crop_h)


def letterbox_placement(src_width: int, src_height: int, target_width: int, target_height: int):
    """Where a ``src`` image scaled to fit (aspect kept) lands inside the target: (x, y, w, h)."""
    factor = min(target_width / src_width, target_height / src_height)
    w = max(1, min(target_width, round(src_width * factor)))
    h = max(1, min(target_height, round(src_height * factor)))
    return ((target_width - w) // 2, (target_height - h) // 2, w, h)


def _interpolation(src_w: int, src_h: int, dst_w: int, dst_h: int) -> int:
    # Area averaging is the alias-free choice when shrinking; bilinear when enlarging.
    return cv2.INTER_AREA if dst_w * dst_h < src_w * src_h else cv2.INTER_LINEAR


class FramePreprocessor:
    """Writes a BGR frame into ``model_input`` per ``config``; returns the region looked at (or None)."""

    def __init__(self, config, model_input: np.ndarray, roi: Region | None = None, digit_finder=None):
        channels, height, width = (int(v) for v in config.input_shape)
        if model_input.shape != (channels, height, width) or model_input.dtype != np.float32:
            raise ValueError(f"model input is {model_input.shape} {model_input.dtype}, config says "
                             f"{(channels, height, width)} float32")
        color = str(getattr(config, "color", "gray")).lower()
        if color not in ("gray", "rgb"):
            raise UsageError(f"model input color {color!r} is not 'gray' or 'rgb'")
        if color == "gray" and channels != 1 or color == "rgb" and channels != 3:
            raise UsageError(f"model input color {color!r} does not match its {channels} channel(s)")
        self.resize = str(getattr(config, "resize", "stretch") or "stretch").lower()
        if self.resize not in RESIZE_MODES:
            raise UsageError(f"model input resize {self.resize!r} is not one of {', '.join(RESIZE_MODES)}")
        self.digit_mode = str(getattr(config, "preprocess", "frame") or "frame").lower() == "digit"
        self.color = color
        self.channels, self.height, self.width = channels, height, width
        self.input = model_input
        self.roi = roi
        # (x * scale - mean) / std == x * gain - offset with gain = scale / std, offset = mean / std.
        scale = float(getattr(config, "scale", 1.0))
        mean = np.broadcast_to(np.asarray(getattr(config, "mean", [0.0]), dtype=np.float64), (channels,))
        std = np.broadcast_to(np.asarray(getattr(config, "std", [1.0]), dtype=np.float64), (channels,))
        if np.any(std == 0):
            raise UsageError("model input std contains 0")
        self.gain = (scale / std).astype(np.float32)
        self.offset = (mean / std).astype(np.float32)
        self._frame_shape = None
        if self.digit_mode:
            if digit_finder is None:
                from stream_cnn.preprocess.digits import DigitFinder
                digit_finder = DigitFinder()
            self.digit_finder = digit_finder
            self._digit = np.zeros((28, 28), np.float32)
            self._digit_resized = np.zeros((height, width), np.float32)

    def _prepare(self, frame_shape):
        """Per frame size: the region, the crop, and every working buffer (allocated here, reused after)."""
        frame_h, frame_w = frame_shape[:2]
        self.region = clip_roi(self.roi, frame_w, frame_h)
        if self.digit_mode:
            self._gray_region = np.empty((self.region[3], self.region[2]), np.uint8)
        else:
            self.source_region = (centre_crop(self.region, self.width, self.height)
                                  if self.resize == "crop" else self.region)
            _, _, src_w, src_h = self.source_region
            if self.resize == "letterbox":
                self.placement = letterbox_placement(src_w, src_h, self.width, self.height)
            else:
                self.placement = (0, 0, self.width, self.height)
            _, _, place_w, place_h = self.placement
            self._interp = _interpolation(src_w, src_h, place_w, place_h)
            if self.color == "gray":
                # Gray first, then resize: area averaging on one channel instead of three.
                self._gray_region = np.empty((src_h, src_w), np.uint8)
                self._converted = np.empty((place_h, place_w), np.uint8)
            else:
                # Resize first, then swap channels: the model input is far smaller than the frame.
                self._resized_bgr = np.empty((place_h, place_w, 3), np.uint8)
                self._converted = np.empty((place_h, place_w, 3), np.uint8)
            if self.resize == "letterbox":
                # The bars never change: write the normalised fill once; frames only touch the placement.
                for c in range(self.channels):
                    self.input[c].fill(np.float32(LETTERBOX_FILL) * self.gain[c] - self.offset[c])
        self._frame_shape = frame_shape

    def _normalise_into(self, channel: int, pixels: np.ndarray, target: np.ndarray):
        np.multiply(pixels, self.gain[channel], out=target, casting="unsafe")
        np.subtract(target, self.offset[channel], out=target)

    def __call__(self, frame_bgr: np.ndarray) -> Region | None:
        if frame_bgr.shape != self._frame_shape:
            self._prepare(frame_bgr.shape)
        if self.digit_mode:
            return self._digit_input(frame_bgr)
        x, y, w, h = self.source_region
        px, py, pw, ph = self.placement
        view = frame_bgr[y:y + h, x:x + w]
        if self.color == "gray":
            cv2.cvtColor(view, cv2.COLOR_BGR2GRAY, dst=self._gray_region)
            cv2.resize(self._gray_region, (pw, ph), dst=self._converted, interpolation=self._interp)
        else:
            cv2.resize(view, (pw, ph), dst=self._resized_bgr, interpolation=self._interp)
            cv2.cvtColor(self._resized_bgr, cv2.COLOR_BGR2RGB, dst=self._converted)
        for c in range(self.channels):
            pixels = self._converted if self.color == "gray" else self._converted[:, :, c]
            self._normalise_into(c, pixels, self.input[c, py:py + ph, px:px + pw])
        return self.source_region

    def _digit_input(self, frame_bgr: np.ndarray) -> Region | None:
        rx, ry, rw, rh = self.region
        cv2.cvtColor(frame_bgr[ry:ry + rh, rx:rx + rw], cv2.COLOR_BGR2GRAY, dst=self._gray_region)
        box = self.digit_finder(self._gray_region, self._digit)
        if box is None:
            return None
        digit = self._digit
        if (self.height, self.width) != (28, 28):
            cv2.resize(digit, (self.width, self.height), dst=self._digit_resized, interpolation=cv2.INTER_LINEAR)
            digit = self._digit_resized
        for c in range(self.channels):
            self._normalise_into(c, digit, self.input[c])
        bx, by, bw, bh = (int(v) for v in box)
        return (bx + rx, by + ry, bw, bh)
