"""Draw the network's view on the frame with cv2 only: top-k classes with probability bars and the argmax label
(top left), capture / processing FPS, inference latency and dropped frames (bottom strip), the region the model
looked at (box), the "no digit" state, and an optional panel of the first conv layers' feature maps (right).

Sizes scale with the frame height so the text is readable from 320x240 to 1080p; the reference is 640x480.
Everything is drawn in place on the frame passed in.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR colours, chosen to stay distinguishable on both bright paper and dark rooms.
TOP_BAR_COLOR = (60, 200, 80)        # green: the argmax class
OTHER_BAR_COLOR = (0, 170, 255)      # orange: the runners-up
BAR_TRACK_COLOR = (70, 70, 70)       # unfilled part of a bar
TEXT_COLOR = (255, 255, 255)
MUTED_TEXT_COLOR = (190, 190, 190)
NO_PREDICTION_COLOR = (0, 200, 255)  # amber: "no digit" / below min confidence
BOX_COLOR = (60, 200, 80)
BOX_MISSING_COLOR = (0, 200, 255)
REFERENCE_HEIGHT = 480.0
# The stats strip's numbers change on every frame at hundreds of fps; nobody reads faster than a few updates a
# second, so its text is re-rendered at most this often and stamped from a cached mask in between.
STATS_TEXT_INTERVAL_S = 0.25
FEATURE_CHANNELS_PER_LAYER = 8
FEATURE_LAYERS_SHOWN = 2


@dataclass
class OverlayStats:
    capture_fps: float = 0.0
    process_fps: float = 0.0
    latency_ms: float = 0.0
    dropped: int = 0
    repeated: int = 0
    paused: bool = False


def _darken(image: np.ndarray, x0: int, y0: int, x1: int, y1: int):
    """Halve the brightness of a rectangle in place: a translucent panel without a blended copy."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 > x0 and y1 > y0:
        patch = image[y0:y1, x0:x1]
        np.right_shift(patch, 1, out=patch)


def _text(image, text, org, scale, color, thickness):
    # Text always sits on a darkened panel, so plain anti-aliased glyphs stay legible on any background.
    cv2.putText(image, text, org, FONT, scale, color, thickness, cv2.LINE_AA)


# Rendered texts kept (see TextStamps); cleared when full. Top-k rows give labels x percentages: a few hundred.
TEXT_STAMPS_KEPT = 512


class TextStamps:
    """Light text on a darkened panel, rendered once per distinct string and stamped after.

    cv2.putText rasterises the Hershey strokes anew on every call (3-10 us a string, several strings a frame).
    Here each (text, scale, colour, thickness) is drawn once onto black (anti-aliased: colour x coverage) and
    kept; a frame then takes the brighter of that mask and itself, per channel. Over the halved panel (<= 127)
    that is the glyph where it covers, the panel elsewhere, with the anti-aliased edge's own brightness.
    Only for colours at least as bright as the panel in every channel (white, light gray)."""

    def __init__(self, kept: int = TEXT_STAMPS_KEPT):
        self.kept = kept
        self._masks: dict = {}

    def draw(self, image: np.ndarray, text: str, org, scale: float, color, thickness: int):
        channels = image.shape[2] if image.ndim == 3 else 1
        key = (text, scale, color, thickness, channels)
        entry = self._masks.get(key)
        if entry is None:
            entry = self._render(text, scale, color, thickness, channels)
            if len(self._masks) >= self.kept:
                self._masks.clear()
            self._masks[key] = entry
        mask, left, top = entry
        x0, y0 = org[0] - left, org[1] - top
        h, w = image.shape[:2]
        cx0, cy0 = max(0, x0), max(0, y0)
        cx1, cy1 = min(w, x0 + mask.shape[1]), min(h, y0 + mask.shape[0])
        if cx1 <= cx0 or cy1 <= cy0:
            return
        target = image[cy0:cy1, cx0:cx1]
        cv2.max(target, mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], dst=target)

    @staticmethod
    def _render(text, scale, color, thickness, channels):
        (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
        margin = thickness + 2                     # the anti-aliased edge reaches past getTextSize's box
        mask = np.zeros((text_h + baseline + 2 * margin, text_w + 2 * margin, channels), np.uint8)
        if channels == 1:
            color = (max(color),)
        cv2.putText(mask, text, (margin, margin + text_h), FONT, scale, color, thickness, cv2.LINE_AA)
        return (mask if channels > 1 else mask[:, :, 0]), margin, margin + text_h


class Overlay:
    """Draws predictions and stats onto frames; one instance per stream."""

    def __init__(self, labels, topk: int = 3, show_features: bool = False):
        self.labels = [str(label) for label in labels]
        self.topk = max(1, min(int(topk), len(self.labels)))
        self.show_features = bool(show_features)
        # Stats strip cache: the text mask (white anti-aliased glyphs on black, strip-sized, 3 channels) and when
        # and for which strip size it was rendered.
        self._stats_mask: np.ndarray | None = None
        self._stats_key = None
        self._stats_rendered_at = -1.0
        self._stamps = TextStamps()

    def toggle_features(self):
        self.show_features = not self.show_features

    def draw(self, frame: np.ndarray, probs: np.ndarray | None, region=None, *, stats: OverlayStats | None = None,
             no_prediction: str = "no digit", feature_maps=None, confident: bool = True) -> np.ndarray:
        """Annotate ``frame`` in place. ``probs`` None means no prediction for this frame (e.g. no digit found);
        ``confident`` False (top probability under the model's min_confidence) shows the bars but no label."""
        # Below ~0.65 the Hershey glyphs at thickness 1 run into each other, so small frames get relatively
        # larger text.
        s = max(0.65, frame.shape[0] / REFERENCE_HEIGHT)
        if region is not None:
            self._draw_region(frame, region, s, found=probs is not None)
        self._draw_predictions(frame, probs, s, no_prediction, confident)
        if stats is not None:
            self._draw_stats(frame, stats, s)
        if self.show_features and feature_maps:
            self._draw_feature_panel(frame, feature_maps, s)
        return frame

    def _draw_region(self, frame, region, s, found):
        x, y, w, h = (int(v) for v in region)
        color = BOX_COLOR if found else BOX_MISSING_COLOR
        # Skip the box when it is the whole frame: it would only trace the border.
        if (x, y, w, h) != (0, 0, frame.shape[1], frame.shape[0]):
            # Axis-aligned on whole pixels: anti-aliasing adds nothing visible and tripled the cost (34 us).
            cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), color, max(1, round(2 * s)), cv2.LINE_8)

    def _draw_predictions(self, frame, probs, s, no_prediction, confident=True):
        pad = round(8 * s)
        row_h = round(24 * s)
        head_h = round(44 * s)
        panel_w = round(250 * s)
        rows = self.topk if probs is not None else 0
        panel_h = pad + head_h + rows * row_h + pad
        _darken(frame, 0, 0, panel_w, panel_h)
        if probs is None:
            _text(frame, no_prediction, (pad, pad + round(32 * s)), 1.0 * s, NO_PREDICTION_COLOR, max(1, round(2 * s)))
            return
        # Stable on the negated values: ties rank the lower class first, as argmax (and the JSONL) do.
        order = np.argsort(-probs, kind="stable")[: self.topk]
        best = int(order[0])
        if confident:
            head = f"{self.labels[best]}  {100.0 * float(probs[best]):.0f}%"
            self._stamps.draw(frame, head, (pad, pad + round(34 * s)), 1.2 * s, TEXT_COLOR, max(1, round(2 * s)))
        else:
            _text(frame, "unsure", (pad, pad + round(32 * s)), 1.0 * s, NO_PREDICTION_COLOR, max(1, round(2 * s)))
        label_w = round(70 * s)
        bar_x0 = pad + label_w
        bar_x1 = panel_w - pad - round(48 * s)
        for row, cls in enumerate(order):
            top = pad + head_h + row * row_h
            p = float(np.clip(probs[cls], 0.0, 1.0))
            name = self.labels[int(cls)]
            if len(name) > 8:
                name = name[:7] + "."
            self._stamps.draw(frame, name, (pad, top + round(17 * s)), 0.5 * s, TEXT_COLOR, 1)
            bar_top, bar_bottom = top + round(4 * s), top + row_h - round(4 * s)
            cv2.rectangle(frame, (bar_x0, bar_top), (bar_x1, bar_bottom), BAR_TRACK_COLOR, -1)
            filled = bar_x0 + round((bar_x1 - bar_x0) * p)
            if filled > bar_x0:
                color = TOP_BAR_COLOR if row == 0 else OTHER_BAR_COLOR
                cv2.rectangle(frame, (bar_x0, bar_top), (filled, bar_bottom), color, -1)
            self._stamps.draw(frame, f"{100.0 * p:.1f}", (bar_x1 + round(6 * s), top + round(17 * s)), 0.5 * s,
                              MUTED_TEXT_COLOR, 1)

    def _draw_stats(self, frame, stats: OverlayStats, s):
        height, width = frame.shape[:2]
        strip_h = round(26 * s)
        strip = frame[height - strip_h:height]
        _darken(frame, 0, height - strip_h, width, height)
        now = time.perf_counter()
        key = (strip.shape, stats.paused, bool(stats.repeated))
        if (self._stats_mask is None or key != self._stats_key
                or now - self._stats_rendered_at >= STATS_TEXT_INTERVAL_S):
            self._stats_mask = self._render_stats_mask(stats, s, strip.shape, height)
            self._stats_key, self._stats_rendered_at = key, now
        # White text over the halved (<= 127) strip: the brighter of the two is the glyph with its anti-aliased
        # edge, the strip elsewhere.
        cv2.max(strip, self._stats_mask, dst=strip)

    def _render_stats_mask(self, stats: OverlayStats, s, shape, height) -> np.ndarray:
        width = shape[1]
        parts = [f"cap {stats.capture_fps:.1f} fps", f"proc {stats.process_fps:.1f} fps",
                 f"infer {stats.latency_ms:.2f} ms", f"dropped {stats.dropped}"]
        if stats.repeated:
            parts.append(f"frozen {stats.repeated}")
        if stats.paused:
            parts.append("PAUSED")
        text = "  ".join(parts)
        scale = 0.5 * s
        # Shrink to fit narrow frames rather than run off the edge.
        text_width = cv2.getTextSize(text, FONT, scale, 1)[0][0]
        if text_width > width - round(16 * s):
            scale *= (width - round(16 * s)) / text_width
        mask = np.zeros(shape, np.uint8)
        _text(mask, text, (round(8 * s), shape[0] - round(8 * s)), scale, TEXT_COLOR, 1)
        return mask

    def _draw_feature_panel(self, frame, feature_maps, s):
        """Tiles of the first conv layers' maps on the right edge, each map min-max scaled to its own range."""
        height, width = frame.shape[:2]
        tile = round(44 * s)
        gap = max(1, round(3 * s))
        caption_h = round(16 * s)
        layers = list(feature_maps)[:FEATURE_LAYERS_SHOWN]
        columns = 2
        panel_w = columns * tile + (columns + 1) * gap
        x_base = width - panel_w
        y = round(4 * s)
        bottom_limit = height - round(30 * s)
        for name, maps in layers:
            maps = np.asarray(maps)
            if maps.ndim != 3:
                continue
            count = min(FEATURE_CHANNELS_PER_LAYER, maps.shape[0])
            rows = (count + columns - 1) // columns
            block_h = caption_h + rows * (tile + gap)
            if y + block_h > bottom_limit:
                break
            _darken(frame, x_base, y, width, y + block_h + gap)
            _text(frame, str(name)[:12], (x_base + gap, y + caption_h - round(4 * s)), 0.4 * s, TEXT_COLOR, 1)
            for i in range(count):
                fmap = maps[i]
                low, high = float(fmap.min()), float(fmap.max())
                span = high - low if high > low else 1.0
                gray = ((fmap - low) * (255.0 / span)).astype(np.uint8)
                tile_img = cv2.resize(gray, (tile, tile), interpolation=cv2.INTER_NEAREST)
                colored = cv2.applyColorMap(tile_img, cv2.COLORMAP_VIRIDIS)
                tx = x_base + gap + (i % columns) * (tile + gap)
                ty = y + caption_h + (i // columns) * (tile + gap)
                frame[ty:ty + tile, tx:tx + tile] = colored
            y += block_h + gap
