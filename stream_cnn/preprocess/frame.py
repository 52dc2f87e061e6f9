"""Camera frame -> model input, per the model's [input] config.

BGR -> gray or RGB, an optional region of interest, resize to the model's (H, W) by stretching, centre-cropping
or letterboxing, then ``(pixel * scale - mean) / std`` per channel written straight into ``model.input``. Working
buffers are allocated once per frame size, so the steady state allocates nothing of frame size.

Shrinking (the usual case: a 640x480 frame to a 28x28 or 64x64 input) is one Numba kernel, ``area_mix_into``:
area averaging with exactly cv2.INTER_AREA's weights, the colour conversion and the normalisation in one pass
over the frame, writing float32 into the model input. OpenCV's path (cvtColor, then INTER_AREA by a non-integer
factor, then two NumPy passes) cost ~1.3 ms a 640x480 frame; the kernel ~0.03 ms. Both are linear, so averaging
first and converting colour after is the same arithmetic in another order; the kernel only skips the two
intermediate roundings to uint8 (tested against the OpenCV path to within one grey level). Enlarging (a ROI
smaller than the input) keeps OpenCV's bilinear path.

For models whose config says ``preprocess = "digit"`` the digit finder (``preprocess.digits.DigitFinder``) locates a
handwritten digit on paper and produces an MNIST-style 28x28 image; no digit found means no prediction.

Each call returns the region of the frame the model looked at, ``(x, y, w, h)`` in frame pixels, or None when
a digit model found no digit.
"""
from __future__ import annotations

import cv2
import numpy as np
from numba import njit

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


# ITU-R BT.601 luma weights in BGR order: what cv2.COLOR_BGR2GRAY computes.
BGR_TO_GRAY = ((0.114, 0.587, 0.299),)
BGR_TO_RGB = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))
# A decoder's luma plane (Y) -> the gray value cv2.COLOR_BGR2GRAY gives of the decoded BGR frame, as
# gray = Y * factor + bias. The BT.601 luma weights cancel the chroma terms of the YUV -> RGB matrix exactly, so
# only the range differs: "limited" (MPEG, Y in 16..235, what mp4/H.264 decoders give) or "full" (JPEG).
LUMA_TO_GRAY = {"limited": (255.0 / 219.0, -16.0 * 255.0 / 219.0), "full": (1.0, 0.0)}


def area_weights(src_size: int, dst_size: int):
    """cv2.INTER_AREA's weights for shrinking ``src_size`` pixels to ``dst_size`` bins, as per-source-pixel
    arrays: pixel i adds ``first_weight[i]`` to bin ``bin_index[i]`` and ``second_weight[i]`` to the next bin
    (a pixel straddles at most one bin edge when shrinking). Weights include the 1/scale of the mean.
    ``whole[i]`` is 1 when pixel i lies wholly inside its bin (its weight is then exactly 1/scale)."""
    if not 0 < dst_size <= src_size:
        raise ValueError(f"area weights shrink only ({src_size} -> {dst_size})")
    scale = src_size / dst_size
    bin_index = np.empty(src_size, np.int64)
    first_weight = np.empty(src_size, np.float32)
    second_weight = np.zeros(src_size, np.float32)
    whole = np.zeros(src_size, np.uint8)
    for i in range(src_size):
        b = min(int(i // scale), dst_size - 1)
        edge = (b + 1) * scale                      # where bin b ends, in source pixels
        inside = min(1.0, edge - i) if b + 1 < dst_size else 1.0
        bin_index[i] = b
        first_weight[i] = inside / scale
        if inside < 1.0:
            second_weight[i] = (1.0 - inside) / scale
        else:
            whole[i] = 1
    # Whole pixels must share one weight for the integer sums; 1/scale is the same float for all of them.
    return bin_index, first_weight, second_weight, whole


def area_gather(src_size: int, dst_size: int):
    """The same weights per destination bin: bin j is ``sum(weight[j, k] * pixel[start[j] + k] for k < count[j])``
    (a gather, so the kernel accumulates each bin in a register instead of scattering into memory)."""
    bin_index, first_weight, second_weight, _ = area_weights(src_size, dst_size)
    members = [[] for _ in range(dst_size)]
    for i in range(src_size):
        members[bin_index[i]].append((i, first_weight[i]))
        if second_weight[i] != 0.0:
            members[bin_index[i] + 1].append((i, second_weight[i]))
    longest = max(len(m) for m in members)
    start = np.array([m[0][0] for m in members], np.int64)
    count = np.array([len(m) for m in members], np.int64)
    weight = np.zeros((dst_size, longest), np.float32)
    for j, m in enumerate(members):
        weight[j, :len(m)] = [w for _, w in m]
    return start, count, weight


@njit(cache=True, nogil=True, fastmath=True)
def area_mix_into(frame_rows, top, left, channels, row_bin, row_w0, row_w1, row_whole, col_start, col_count,
                  col_weight, mix, bias, gain, offset, whole_sums, row_sums, out):
    """Area-average a region of a frame, mix its colour channels and normalise, in one pass over the region.

    frame_rows (H, W*channels) uint8, C-contiguous: the whole frame with channels (1 or 3) interleaved (a BGR
    frame reshaped, or a gray one), so the row loops see unit stride and vectorise; the region starts at row
    ``top``, pixel column ``left``; ``row_*`` are ``area_weights(h, Ho)`` (``row_whole[y]`` is 1 when region row y
    lies wholly inside one bin) and ``col_*`` are ``area_gather(w, Wo)``.
    mix (Co, channels): output channel co = sum over c of mix[co, c] * channel c (BGR -> luma weights, BGR -> RGB
    permutation, luma -> gray range expansion) plus bias[co]; the mixed value is clipped to [0, 255] and written as
    ``value * gain[co] - offset[co]``.
    Scratch: whole_sums (Ho, w*channels) uint16 (or int32 when a bin holds more than 257 rows),
    row_sums (Ho, w*channels) float32. out (Co, Ho, Wo) float32.
    """
    height = row_bin.shape[0]
    span = row_sums.shape[1]
    start = left * channels
    out_h = out.shape[1]
    out_w = out.shape[2]
    out_channels = out.shape[0]
    # Rows wholly inside a bin all carry the same weight: sum them as integers (cheap, exact) and scale once.
    whole_sums[:] = 0
    row_sums[:] = 0.0
    whole_weight = np.float32(0.0)
    for y in range(height):
        b = row_bin[y]
        # Slice first: an index like source[start + i] could be negative for all Numba knows, and the wraparound
        # check that adds blocks vectorisation.
        source = frame_rows[top + y, start:start + span]
        if row_whole[y]:
            whole_weight = row_w0[y]
            target = whole_sums[b]
            for i in range(span):
                target[i] += source[i]
        else:
            w0 = row_w0[y]
            w1 = row_w1[y]
            first = row_sums[b]
            for i in range(span):
                first[i] += np.float32(source[i]) * w0
            if w1 != 0.0:
                second = row_sums[b + 1]
                for i in range(span):
                    second[i] += np.float32(source[i]) * w1
    for b in range(out_h):
        first = row_sums[b]
        whole = whole_sums[b]
        for i in range(span):
            first[i] += np.float32(whole[i]) * whole_weight
    for b in range(out_h):
        sums = row_sums[b]
        for ox in range(out_w):
            x0 = col_start[ox]
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            if channels == 1:
                for k in range(col_count[ox]):
                    a0 += sums[x0 + k] * col_weight[ox, k]
            else:
                for k in range(col_count[ox]):
                    w = col_weight[ox, k]
                    base = (x0 + k) * 3
                    a0 += sums[base] * w
                    a1 += sums[base + 1] * w
                    a2 += sums[base + 2] * w
            for co in range(out_channels):
                value = bias[co] + mix[co, 0] * a0
                if channels == 3:
                    value += mix[co, 1] * a1 + mix[co, 2] * a2
                value = min(max(value, np.float32(0.0)), np.float32(255.0))
                out[co, b, ox] = value * gain[co] - offset[co]


def _interpolation(src_w: int, src_h: int, dst_w: int, dst_h: int) -> int:
    # Area averaging is the alias-free choice when shrinking; bilinear when enlarging.
    return cv2.INTER_AREA if dst_w * dst_h < src_w * src_h else cv2.INTER_LINEAR


class FramePreprocessor:
    """Writes a BGR frame (or a gray / luma one, 2-D) into ``model_input`` per ``config``; returns the region
    looked at (or None)."""

    def __init__(self, config, model_input: np.ndarray, roi: Region | None = None, digit_finder=None,
                 luma_to_gray: tuple[float, float] | str = "full"):
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
        # How a 2-D (single channel) frame maps to gray, gray = pixel * factor + bias: "full" = it is gray already;
        # "limited" = a decoder's MPEG-range Y plane; or the (factor, bias) a source measured
        # (sources.FileSource(luma=True).luma_to_gray).
        mapping = LUMA_TO_GRAY[luma_to_gray] if isinstance(luma_to_gray, str) else luma_to_gray
        self.luma_factor, self.luma_bias = (float(v) for v in mapping)
        self._luma_lut = np.clip(np.round(np.arange(256) * self.luma_factor + self.luma_bias), 0, 255).astype(np.uint8)
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
            frame_channels = 1 if len(frame_shape) == 2 else int(frame_shape[2])
            self._area = place_w <= src_w and place_h <= src_h and frame_channels in (1, 3)
            if self._area:
                if frame_channels == 1:
                    mix = [[self.luma_factor]] * self.channels   # a gray (or luma) frame feeds every channel
                    bias = [self.luma_bias] * self.channels
                else:
                    mix = BGR_TO_GRAY if self.color == "gray" else BGR_TO_RGB
                    bias = [0.0] * self.channels
                self._mix = np.asarray(mix, np.float32)
                self._bias = np.asarray(bias, np.float32)
                self._frame_channels = frame_channels
                self._row_weights = area_weights(src_h, place_h)
                self._col_weights = area_gather(src_w, place_w)
                # uint16 sums vectorise twice as wide as int32 and cannot overflow below 257 rows a bin.
                sum_type = np.uint16 if src_h <= 257 * place_h else np.int32
                self._whole_sums = np.empty((place_h, src_w * frame_channels), sum_type)
                self._row_sums = np.empty((place_h, src_w * frame_channels), np.float32)
                px, py = self.placement[:2]
                self._target = self.input[:, py:py + place_h, px:px + place_w]
            elif self.color == "gray":
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
        if self._area:
            if not frame_bgr.flags.c_contiguous:
                frame_bgr = np.ascontiguousarray(frame_bgr)     # decoders hand out contiguous frames; others pay
            rows = frame_bgr.reshape(frame_bgr.shape[0], -1)
            area_mix_into(rows, y, x, self._frame_channels, *self._row_weights, *self._col_weights, self._mix,
                          self._bias, self.gain, self.offset, self._whole_sums, self._row_sums, self._target)
            return self.source_region
        view = frame_bgr[y:y + h, x:x + w]
        px, py, pw, ph = self.placement
        if view.ndim == 2:
            # Enlarging a ROI of a gray / luma frame: rare, not hot.
            view = cv2.cvtColor(cv2.LUT(view, self._luma_lut), cv2.COLOR_GRAY2BGR)
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
        if frame_bgr.ndim == 2:
            # gray = luma * factor + bias, rounded and saturated: what the LUT holds, but cv2.LUT costs
            # 80-110 us on a 640x480 plane and this SIMD affine map 30-40 us (the same values for the
            # standard ranges and the fitted ones seen so far; at worst one grey level off at a rounding tie).
            cv2.addWeighted(frame_bgr[ry:ry + rh, rx:rx + rw], self.luma_factor, frame_bgr[ry:ry + rh, rx:rx + rw],
                            0.0, self.luma_bias, dst=self._gray_region)
        else:
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
