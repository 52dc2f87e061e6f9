#!/usr/bin/env python3
"""Generate the clips in recordings/: handwritten digits as a webcam sees them, plus clips with no digit.

Every frame is rendered from a seeded description of the scene, so a clip is reproducible and each frame can be
rendered on its own (the tests render single frames). The digits are MNIST **test** images (t10k), never training
images. A scene is a synthetic cluttered room; a sheet of paper with the digit written on it is held in front of
it by two hands (thumbs on the sheet's edge), seen in perspective, under uneven light and a soft cast shadow; the
sheet drifts and shakes, so it is motion-blurred; the lens sometimes defocuses; sensor noise and JPEG compression
are added before the clip is encoded with mp4v.

    python scripts/make_recordings.py [--data data/mnist] [--out recordings] [--asset stream_cnn/assets/demo.mp4]

Each CLIP.mp4 gets CLIP.labels.json with the true label of every frame (null = no digit in view).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480
FOCAL_PX = 700.0  # pinhole focal length used to project the tilted sheet
PAPER_W, PAPER_H = 300, 390  # the sheet's own pixel canvas (portrait, about A5 proportions)
SELECTION_SEED = 2024  # which t10k digits appear in the clips
KNN_K = 5  # a candidate digit is used only when its K nearest training images all share its label


@dataclass
class Conditions:
    """The knobs that make one clip harder or easier than another."""
    sheet_height_px: float = 300.0  # height of the sheet in the frame at zero tilt
    drift_px: float = 18.0  # amplitude of the slow drift of the sheet centre
    shake_px: float = 1.5  # amplitude of the fast hand tremor
    camera_shake_px: float = 0.0  # a webcam on a monitor stands still; a hand-held phone does not
    max_tilt_deg: float = 14.0  # yaw / pitch of the sheet
    max_roll_deg: float = 6.0
    light_gradient: float = 0.35  # left-to-right (or top-to-bottom) fall-off of the light
    vignette: float = 0.25
    shadow_strength: float = 0.25  # fraction of light the cast shadow takes away
    shadow_blur_px: float = 35.0
    motion_blur_gain: float = 0.8  # blur length per px/frame of motion (exposure time / frame time)
    defocus_every_s: float = 0.0  # 0 = never; otherwise a defocus episode this often
    defocus_sigma: float = 2.0
    noise_sigma: float = 3.0  # temporal grain (changes every frame)
    fixed_noise_sigma: float = 1.5  # fixed-pattern noise (the same every frame)
    jpeg_quality: int = 70
    ink_level: float = 60.0  # grey level of the ink (paper is ~235 before lighting)
    exposure: float = 1.0
    room_style: int = 0


@dataclass
class ClipSpec:
    name: str
    kind: str  # "digits" | "no_digit"
    seconds: float
    description: str
    n_digits: int = 0
    sheet: bool = True  # no_digit clips: a blank sheet held up, or only the room
    seed: int = 0
    fps: int = 15  # webcams drop to 15 fps indoors; it also halves the size of the clips
    conditions: Conditions = field(default_factory=Conditions)


CLIPS = [
    ClipSpec(
        "digits_desk", "digits", 4.0, seed=11, n_digits=4,
        description="Sheet held at arm's length in an evenly lit room: mild tilt, gentle drift, thumbs on the "
                    "side edges, light sensor noise. The baseline clip (bundled as the package's demo clip).",
        conditions=Conditions(sheet_height_px=310, drift_px=14, shake_px=1.0, max_tilt_deg=10, max_roll_deg=4,
                              light_gradient=0.25, vignette=0.2, shadow_strength=0.15, noise_sigma=1.0,
                              jpeg_quality=75, room_style=0)),
    ClipSpec(
        "digits_shadow", "digits", 4.0, seed=23, n_digits=4,
        description="A soft cast shadow (a head or arm between lamp and sheet) moves across the sheet and the "
                    "digit; strong light fall-off across the view and vignetting; warm lamp light.",
        conditions=Conditions(sheet_height_px=290, drift_px=16, shake_px=1.2, max_tilt_deg=12, max_roll_deg=6,
                              light_gradient=0.55, vignette=0.35, shadow_strength=0.45, shadow_blur_px=30,
                              noise_sigma=1.0, jpeg_quality=70, room_style=1)),
    ClipSpec(
        "digits_handheld", "digits", 4.0, seed=37, n_digits=4,
        description="Shaky hand: larger, faster sheet motion with motion blur, the lens losing focus "
                    "(defocus episodes), more tilt, stronger noise and JPEG compression.",
        conditions=Conditions(sheet_height_px=280, drift_px=30, shake_px=3.5, max_tilt_deg=18, max_roll_deg=9,
                              light_gradient=0.3, vignette=0.25, shadow_strength=0.2, motion_blur_gain=1.0,
                              defocus_every_s=1.3, defocus_sigma=2.2, noise_sigma=1.5, jpeg_quality=55,
                              room_style=2)),
    ClipSpec(
        "digits_dim", "digits", 4.0, seed=41, n_digits=4,
        description="Dim evening room: under-exposed, low contrast (pale pencil-grey ink), strong tilt, a "
                    "smaller sheet further from the camera, heavy low-light sensor noise.",
        conditions=Conditions(sheet_height_px=250, drift_px=16, shake_px=1.5, max_tilt_deg=22, max_roll_deg=8,
                              light_gradient=0.4, vignette=0.4, shadow_strength=0.25, noise_sigma=2.5,
                              fixed_noise_sigma=2.5,
                              jpeg_quality=60, ink_level=105, exposure=0.62, room_style=3)),
    ClipSpec(
        "no_digit_blank_sheet", "no_digit", 3.0, seed=53, sheet=True,
        description="A blank sheet held up the same way (thumbs on its edges, tilt, drift, shadow, noise): "
                    "paper but no digit.",
        conditions=Conditions(sheet_height_px=300, drift_px=20, shake_px=2.0, max_tilt_deg=14,
                              light_gradient=0.45, vignette=0.3, shadow_strength=0.4, noise_sigma=1.0,
                              jpeg_quality=65, room_style=1)),
    ClipSpec(
        "no_digit_room", "no_digit", 3.0, seed=67, sheet=False,
        description="Only the cluttered room (window, shelves, poster, lamp), the camera slightly shaking, "
                    "a shadow passing: no paper, no digit.",
        conditions=Conditions(camera_shake_px=2.0, light_gradient=0.35, vignette=0.3, shadow_strength=0.35,
                              noise_sigma=1.0, jpeg_quality=65, room_style=2)),
]

DEMO_CLIP = "digits_desk"


# ---------------------------------------------------------------------------------------------- the room
def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled smoothly."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells, max(2, cells * w // h))).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def make_room(style: int, seed: int, width: int, height: int) -> np.ndarray:
    """A cluttered synthetic room, BGR float32 in [0, 255]: wall, floor, window, shelves, poster, lamp, plant."""
    rng = np.random.default_rng([seed, 1])
    palettes = [  # wall BGR, floor BGR
        ((150, 160, 170), (60, 80, 110)),
        ((110, 140, 170), (50, 65, 85)),
        ((150, 140, 120), (70, 90, 100)),
        ((120, 120, 115), (45, 55, 70)),
    ]
    wall, floor = palettes[style % len(palettes)]
    room = np.empty((height, width, 3), np.float32)
    room[:] = wall
    # Wall: vertical gradient (ceiling light) and a blotchy paint texture.
    rows = np.linspace(1.08, 0.85, height, dtype=np.float32)[:, None, None]
    room *= rows
    room += 10.0 * _smooth_noise(rng, height, width, 6)[..., None]
    room += rng.normal(0.0, 2.0, size=(height, width, 1)).astype(np.float32)
    # Floor with planks.
    floor_y = int(height * rng.uniform(0.72, 0.8))
    room[floor_y:] = floor
    room[floor_y:] += 12.0 * _smooth_noise(rng, height - floor_y, width, 3)[..., None]
    for x in range(int(rng.uniform(0, 60)), width, int(rng.uniform(70, 110))):
        cv2.line(room, (x, floor_y), (int(x + (x - width / 2) * 0.6), height), (35, 45, 60), 2, cv2.LINE_AA)
    # A window (bright, with mullions) on one side.
    wx = int(rng.uniform(0.02, 0.12) * width) if rng.random() < 0.5 else int(rng.uniform(0.7, 0.8) * width)
    wy, ww, wh = int(0.08 * height), int(0.2 * width), int(0.36 * height)
    sky = rng.uniform(225, 250)
    cv2.rectangle(room, (wx - 8, wy - 8), (wx + ww + 8, wy + wh + 8), (200, 205, 210), -1)
    cv2.rectangle(room, (wx, wy), (wx + ww, wy + wh), (sky, sky - 5, sky - 25), -1)
    cv2.line(room, (wx + ww // 2, wy), (wx + ww // 2, wy + wh), (185, 190, 195), 6)
    cv2.line(room, (wx, wy + wh // 2), (wx + ww, wy + wh // 2), (185, 190, 195), 6)
    # A bookshelf with books of many colours.
    sx = int(rng.uniform(0.3, 0.5) * width)
    sy, sw, sh = int(0.12 * height), int(0.28 * width), int(0.55 * height)
    cv2.rectangle(room, (sx, sy), (sx + sw, sy + sh), (40, 60, 90), -1)
    for shelf in range(3):
        y0, y1 = sy + 8 + shelf * sh // 3, sy + (shelf + 1) * sh // 3 - 4
        x = sx + 6
        while x < sx + sw - 12:
            bw = int(rng.uniform(6, 16))
            top = y0 + int(rng.uniform(0, 0.35) * (y1 - y0))
            colour = tuple(float(c) for c in rng.uniform(30, 220, size=3))
            cv2.rectangle(room, (x, top), (min(x + bw, sx + sw - 6), y1), colour, -1)
            cv2.line(room, (x, top), (x, y1), (20, 20, 20), 1)
            x += bw + 1
        cv2.rectangle(room, (sx, y1), (sx + sw, y1 + 5), (30, 45, 70), -1)
    # A poster of coloured shapes, a framed picture, a lamp, a plant, a desk edge.
    px, py = int(rng.uniform(0.05, 0.25) * width), int(rng.uniform(0.52, 0.6) * height)
    cv2.rectangle(room, (px, py), (px + 90, py + 70), (80, 150, 200), -1)
    for _ in range(5):
        centre = (px + int(rng.uniform(10, 80)), py + int(rng.uniform(10, 60)))
        cv2.circle(room, centre, int(rng.uniform(5, 14)), tuple(float(c) for c in rng.uniform(20, 240, 3)), -1)
    fx, fy = int(rng.uniform(0.8, 0.9) * width), int(0.5 * height)
    cv2.rectangle(room, (fx, fy), (fx + 50, fy + 40), (30, 30, 30), 5)
    cv2.rectangle(room, (fx + 5, fy + 5), (fx + 45, fy + 35), (90, 120, 60), -1)
    lx = int(rng.uniform(0.55, 0.7) * width)
    cv2.line(room, (lx, floor_y), (lx, int(0.35 * height)), (30, 30, 30), 4)
    cv2.ellipse(room, (lx, int(0.33 * height)), (32, 20), 0, 180, 360, (170, 220, 245), -1)
    cv2.circle(room, (lx, int(0.34 * height)), 10, (235, 250, 255), -1)
    plant_x = int(rng.uniform(0.05, 0.95) * width)
    for _ in range(14):
        angle = rng.uniform(-2.6, -0.5)
        length = rng.uniform(30, 70)
        end = (int(plant_x + length * math.cos(angle)), int(floor_y - 20 + length * math.sin(angle)))
        cv2.line(room, (plant_x, floor_y - 20), end, (40, float(rng.uniform(110, 160)), 50), 5, cv2.LINE_AA)
    cv2.rectangle(room, (plant_x - 18, floor_y - 22), (plant_x + 18, floor_y + 15), (50, 80, 150), -1)
    desk_y = int(height * 0.86)
    cv2.rectangle(room, (0, desk_y), (width, height), (55, 90, 125), -1)
    cv2.line(room, (0, desk_y), (width, desk_y), (40, 60, 85), 3)
    # Fine texture everywhere (fabric, wood grain), then a touch of softness from the lens.
    room += rng.normal(0.0, 3.0, size=room.shape).astype(np.float32)
    room = cv2.GaussianBlur(room, (0, 0), 0.8)
    return np.clip(room, 0, 255)


# ---------------------------------------------------------------------------------------------- the sheet
def make_paper(seed: int) -> np.ndarray:
    """A blank off-white sheet with a faint fibre texture, BGR float32."""
    rng = np.random.default_rng([seed, 2])
    paper = np.empty((PAPER_H, PAPER_W, 3), np.float32)
    paper[:] = (228, 236, 240)
    paper += 4.0 * _smooth_noise(rng, PAPER_H, PAPER_W, 8)[..., None]
    paper += rng.normal(0.0, 1.5, size=(PAPER_H, PAPER_W, 1)).astype(np.float32)
    return paper


def write_digit(paper: np.ndarray, mnist_image: np.ndarray, ink_level: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Write an MNIST digit on a copy of `paper` as dark ink. Returns the sheet and the ink bbox (x, y, w, h)
    in paper pixels."""
    scale = rng.uniform(7.0, 8.5)  # 28 px -> ~200-240 px: the digit takes most of the sheet's width
    size = int(round(28 * scale))
    strokes = cv2.resize(mnist_image.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_CUBIC)
    # A pen stroke has a crisper edge than the blown-up 28x28 image; keep the shape, sharpen the edge.
    strokes = np.clip((strokes - 0.25) / 0.45, 0.0, 1.0)
    strokes = cv2.GaussianBlur(strokes, (0, 0), 1.4)
    cx = PAPER_W / 2 + rng.uniform(-0.06, 0.06) * PAPER_W
    cy = PAPER_H / 2 + rng.uniform(-0.06, 0.06) * PAPER_H
    x0, y0 = int(round(cx - size / 2)), int(round(cy - size / 2))
    sheet = paper.copy()
    region = sheet[y0:y0 + size, x0:x0 + size]
    ink = np.array([ink_level + 10, ink_level, ink_level - 5], np.float32)  # blue-black
    region[:] = region * (1.0 - strokes[..., None]) + ink * strokes[..., None]
    ys, xs = np.nonzero(strokes > 0.5)
    bbox = (float(x0 + xs.min()), float(y0 + ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1))
    return sheet, bbox


# ---------------------------------------------------------------------------------------------- motion
class SmoothPath:
    """A smooth random function of time: a sum of a few sinusoids with random frequencies and phases."""

    def __init__(self, rng: np.random.Generator, amplitude: float, min_hz: float, max_hz: float, terms: int = 3):
        self.freqs = rng.uniform(min_hz, max_hz, terms)
        self.phases = rng.uniform(0, 2 * math.pi, terms)
        weights = rng.uniform(0.5, 1.0, terms)
        self.weights = amplitude * weights / weights.sum()

    def __call__(self, t: float) -> float:
        return float(np.sum(self.weights * np.sin(2 * math.pi * self.freqs * t + self.phases)))


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def motion_kernel(dx: float, dy: float) -> np.ndarray | None:
    """A line kernel along (dx, dy) of length |(dx, dy)|, or None when the motion is under a pixel."""
    length = math.hypot(dx, dy)
    if length < 1.0:
        return None
    size = int(math.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    # Anti-aliased line through the centre, drawn with 4 bits of sub-pixel precision (shift=4 -> units of 1/16).
    cv2.line(kernel, (int(round((c - dx / 2) * 16)), int(round((c - dy / 2) * 16))),
             (int(round((c + dx / 2) * 16)), int(round((c + dy / 2) * 16))), 1.0, 1, cv2.LINE_AA, shift=4)
    return kernel / kernel.sum()


# ---------------------------------------------------------------------------------------------- a scene
@dataclass
class FrameTruth:
    label: int | None
    digit_box: tuple[int, int, int, int] | None  # ink bbox in frame pixels (x, y, w, h)
    sheet_quad: np.ndarray | None  # 4x2 corners in frame pixels


class Scene:
    """Renders frame i of a clip. `digits` is a list of (t10k index, label, 28x28 uint8 image) shown in turn,
    each for an equal share of the clip; empty = a blank sheet (or no sheet when spec.sheet is False)."""

    def __init__(self, spec: ClipSpec, digits: list[tuple[int, int, np.ndarray]]):
        self.spec = spec
        self.cond = spec.conditions
        self.n_frames = int(round(spec.seconds * spec.fps))
        rng = np.random.default_rng([spec.seed, 0])
        margin = 24  # the room is rendered larger so camera shake can move the view
        self.margin = margin
        self.room = make_room(self.cond.room_style, spec.seed, FRAME_W + 2 * margin, FRAME_H + 2 * margin)
        self.paper = make_paper(spec.seed)
        self.sheets: list[tuple[np.ndarray, int | None, tuple | None]] = []
        for index, label, image in digits:
            digit_rng = np.random.default_rng([spec.seed, 3, index])
            sheet, bbox = write_digit(self.paper, image, self.cond.ink_level, digit_rng)
            self.sheets.append((sheet, label, bbox))
        if not self.sheets:
            self.sheets.append((self.paper, None, None))
        c = self.cond
        self.base_centre = (FRAME_W * rng.uniform(0.42, 0.58), FRAME_H * rng.uniform(0.45, 0.55))
        self.path_x = SmoothPath(rng, c.drift_px, 0.15, 0.6)
        self.path_y = SmoothPath(rng, c.drift_px * 0.7, 0.15, 0.6)
        self.shake_x = SmoothPath(rng, c.shake_px, 2.0, 6.0, terms=4)
        self.shake_y = SmoothPath(rng, c.shake_px, 2.0, 6.0, terms=4)
        self.yaw = SmoothPath(rng, math.radians(c.max_tilt_deg), 0.1, 0.4)
        self.pitch = SmoothPath(rng, math.radians(c.max_tilt_deg), 0.1, 0.4)
        self.yaw_bias = math.radians(c.max_tilt_deg) * rng.uniform(-0.5, 0.5)
        self.pitch_bias = math.radians(c.max_tilt_deg) * rng.uniform(-0.5, 0.5)
        self.roll = SmoothPath(rng, math.radians(c.max_roll_deg), 0.1, 0.5)
        self.scale = SmoothPath(rng, 0.05, 0.1, 0.3)
        self.camera_x = SmoothPath(rng, c.camera_shake_px, 0.5, 3.0)
        self.camera_y = SmoothPath(rng, c.camera_shake_px, 0.5, 3.0)
        self.skin = np.array([rng.uniform(120, 150), rng.uniform(150, 175), rng.uniform(195, 225)], np.float32)
        self.thumb_params = [(side, rng.uniform(0.35, 0.65)) for side in ("left", "right")]
        # Light: a gradient in a random direction, vignetting, a warm or cool tint.
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
        along = ((xx - FRAME_W / 2) * math.cos(angle) + (yy - FRAME_H / 2) * math.sin(angle)) / (FRAME_W / 2)
        radius2 = ((xx - FRAME_W / 2) ** 2 + (yy - FRAME_H / 2) ** 2) / ((FRAME_W / 2) ** 2 + (FRAME_H / 2) ** 2)
        light = (1.0 + 0.5 * c.light_gradient * along) * (1.0 - c.vignette * radius2)
        tint = np.array([0.92, 1.0, 1.06] if c.room_style in (1, 3) else [1.0, 1.0, 1.0], np.float32)
        self.light = (light[..., None] * tint * c.exposure).astype(np.float32)
        # The cast shadow: a soft blob that slides across the view.
        self.shadow_radius = (rng.uniform(90, 140), rng.uniform(140, 220))
        self.shadow_start = np.array([rng.uniform(-0.1, 0.3) * FRAME_W, rng.uniform(0.2, 0.8) * FRAME_H])
        self.shadow_end = np.array([rng.uniform(0.6, 1.0) * FRAME_W, rng.uniform(0.2, 0.8) * FRAME_H])
        self.shadow_angle = rng.uniform(0, 180)
        self.fixed_pattern = (c.fixed_noise_sigma * rng.normal(0.0, 1.0, size=(FRAME_H, FRAME_W, 1))).astype(np.float32)

    # -- geometry ----------------------------------------------------------------------------------------
    def sheet_pose(self, t: float) -> tuple[np.ndarray, float, float]:
        """Frame-pixel corners of the sheet at time t, and its centre."""
        c = self.cond
        cx = self.base_centre[0] + self.path_x(t) + self.shake_x(t)
        cy = self.base_centre[1] + self.path_y(t) + self.shake_y(t)
        height = c.sheet_height_px * (1.0 + self.scale(t))
        half_w, half_h = height * PAPER_W / PAPER_H / 2, height / 2
        corners = np.array([[-half_w, -half_h, 0], [half_w, -half_h, 0], [half_w, half_h, 0], [-half_w, half_h, 0]])
        rot = _rotation(self.yaw(t) + self.yaw_bias, self.pitch(t) + self.pitch_bias, self.roll(t))
        pts = corners @ rot.T
        depth = FOCAL_PX + pts[:, 2]
        quad = np.stack([cx + FOCAL_PX * pts[:, 0] / depth, cy + FOCAL_PX * pts[:, 1] / depth], axis=1)
        return quad.astype(np.float32), cx, cy

    def digit_index(self, i: int) -> int:
        return min(len(self.sheets) - 1, i * len(self.sheets) // self.n_frames)

    # -- rendering ---------------------------------------------------------------------------------------
    def render(self, i: int) -> tuple[np.ndarray, FrameTruth]:
        """Frame i as BGR uint8 (640x480) and what is really in it."""
        spec, c = self.spec, self.cond
        t = i / spec.fps
        rng = np.random.default_rng([spec.seed, 4, i])
        ox = self.margin + self.camera_x(t)
        oy = self.margin + self.camera_y(t)
        shift = np.float32([[1, 0, -ox], [0, 1, -oy]])
        frame = cv2.warpAffine(self.room, shift, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        truth = FrameTruth(None, None, None)
        if spec.sheet:
            sheet, label, bbox = self.sheets[self.digit_index(i)]
            quad, cx, cy = self.sheet_pose(t)
            quad_next, _, _ = self.sheet_pose(t + 1.0 / spec.fps)
            paper_corners = np.float32([[0, 0], [PAPER_W, 0], [PAPER_W, PAPER_H], [0, PAPER_H]])
            homography = cv2.getPerspectiveTransform(paper_corners, quad)
            layer = cv2.warpPerspective(sheet, homography, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)
            alpha = cv2.warpPerspective(np.ones((PAPER_H, PAPER_W), np.float32), homography, (FRAME_W, FRAME_H),
                                        flags=cv2.INTER_LINEAR)
            self._draw_hands(layer, alpha, homography, t)
            # Motion blur of the moving sheet and hands: blur along this frame's displacement.
            motion = (quad_next - quad).mean(axis=0) * c.motion_blur_gain
            kernel = motion_kernel(float(motion[0]), float(motion[1]))
            if kernel is not None:
                layer = cv2.filter2D(layer, -1, kernel)
                alpha = cv2.filter2D(alpha, -1, kernel)
            alpha3 = alpha[..., None]
            frame = frame * (1.0 - alpha3) + layer * alpha3
            truth.sheet_quad = quad
            if label is not None:
                x, y, w, h = bbox
                box_pts = np.float32([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]).reshape(-1, 1, 2)
                frame_pts = cv2.perspectiveTransform(box_pts, homography).reshape(-1, 2)
                x0, y0 = frame_pts.min(axis=0)
                x1, y1 = frame_pts.max(axis=0)
                truth.label = int(label)
                truth.digit_box = (int(x0), int(y0), int(math.ceil(x1 - x0)), int(math.ceil(y1 - y0)))
        frame = frame * self.light * self._shadow(t)[..., None]
        if c.defocus_every_s > 0:
            phase = (t % c.defocus_every_s) / c.defocus_every_s
            if phase > 0.75:  # the last quarter of each period the lens hunts for focus
                sigma = c.defocus_sigma * math.sin((phase - 0.75) / 0.25 * math.pi)
                if sigma > 0.3:
                    frame = cv2.GaussianBlur(frame, (0, 0), sigma)
        # Sensor: a fixed pattern (the same every frame) plus temporal grain. A webcam's demosaicing and
        # denoising leave grain a couple of pixels wide, so it is drawn at half resolution and upsampled.
        # Shot noise grows with brightness, read noise does not. Then the camera's own JPEG.
        grain = rng.normal(0.0, 1.0, size=(FRAME_H // 2, FRAME_W // 2, 3)).astype(np.float32)
        grain[..., 1:] = grain[..., :1] + 0.4 * grain[..., 1:]  # mostly luminance, a little colour
        grain = cv2.resize(grain, (FRAME_W, FRAME_H), interpolation=cv2.INTER_LINEAR)
        frame = frame + (c.noise_sigma * grain + self.fixed_pattern) * (0.5 + frame / 255.0)
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, c.jpeg_quality])
        frame = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        return frame, truth

    def _shadow(self, t: float) -> np.ndarray:
        """Multiplicative light map of the soft cast shadow at time t (1 = unshadowed)."""
        c = self.cond
        shadow = np.ones((FRAME_H, FRAME_W), np.float32)
        if c.shadow_strength <= 0:
            return shadow
        progress = t / max(self.spec.seconds, 1e-6)
        centre = self.shadow_start + (self.shadow_end - self.shadow_start) * progress
        axes = (int(self.shadow_radius[0]), int(self.shadow_radius[1]))
        cv2.ellipse(shadow, (int(centre[0]), int(centre[1])), axes, self.shadow_angle, 0, 360,
                    1.0 - c.shadow_strength, -1)
        return cv2.GaussianBlur(shadow, (0, 0), c.shadow_blur_px)

    def _draw_hands(self, layer: np.ndarray, alpha: np.ndarray, homography: np.ndarray, t: float) -> None:
        """Thumbs over the left and right edges of the sheet, the rest of each hand behind and beside it."""
        for side, along in self.thumb_params:
            along = along + 0.02 * math.sin(2 * math.pi * 0.7 * t)
            edge_x = 0.0 if side == "left" else float(PAPER_W)
            inward = 1.0 if side == "left" else -1.0
            pts = np.float32([[edge_x, along * PAPER_H],
                              [edge_x + inward * 0.11 * PAPER_W, along * PAPER_H - 0.03 * PAPER_H],
                              [edge_x - inward * 0.18 * PAPER_W, along * PAPER_H + 0.12 * PAPER_H]]).reshape(-1, 1, 2)
            edge_pt, tip_pt, palm_pt = cv2.perspectiveTransform(pts, homography).reshape(-1, 2)
            # The palm: a large blob outside the sheet, partly behind its edge.
            palm_axes = (int(0.8 * np.linalg.norm(tip_pt - edge_pt)) + 20, 55)
            self._skin_ellipse(layer, alpha, palm_pt, palm_axes, angle=75.0, shade=0.85)
            # The thumb: from the edge onto the sheet.
            direction = tip_pt - edge_pt
            length = float(np.linalg.norm(direction))
            angle = math.degrees(math.atan2(direction[1], direction[0]))
            centre = edge_pt + direction * 0.45
            self._skin_ellipse(layer, alpha, centre, (int(length * 0.75) + 4, 15), angle=angle, shade=1.0)

    def _skin_ellipse(self, layer, alpha, centre, axes, angle: float, shade: float) -> None:
        mask = np.zeros((FRAME_H, FRAME_W), np.float32)
        cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.2)
        # Rounded shading: darker towards the rim, so the finger looks like a finger and not a flat decal.
        core = cv2.GaussianBlur(mask, (0, 0), max(axes[1] / 2.5, 1.0))
        colour = self.skin * shade * (0.7 + 0.3 * np.clip(core * 1.6, 0, 1))[..., None]
        m3 = mask[..., None]
        layer[:] = layer * (1.0 - m3) + colour * m3
        np.maximum(alpha, mask, out=alpha)


# ---------------------------------------------------------------------------------------------- digits
def legible_test_digits(data_dir: str, count: int, seed: int) -> list[tuple[int, int, np.ndarray]]:
    """`count` random MNIST test digits, labels balanced across 0-9 as far as possible, keeping only digits
    whose K nearest training images (Euclidean, raw pixels) all carry the same label: a person holding a digit
    up writes a legible one, and MNIST's test set has a tail of ambiguous scrawls. The training images are only
    used for this check; they never appear in a clip."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from stream_cnn.data import load_dataset

    test = load_dataset(data_dir, "test")
    train = load_dataset(data_dir, "train")
    train_flat = train.images.reshape(len(train), -1).astype(np.float32)
    train_norm = (train_flat ** 2).sum(axis=1)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(test))
    chosen: list[tuple[int, int, np.ndarray]] = []
    per_label = {d: 0 for d in range(10)}
    quota = math.ceil(count / 10)
    for index in order:
        label = int(test.labels[index])
        if per_label[label] >= quota:
            continue
        x = test.images[index].reshape(-1).astype(np.float32)
        distances = train_norm - 2.0 * (train_flat @ x)
        nearest = np.argpartition(distances, KNN_K)[:KNN_K]
        if np.all(train.labels[nearest] == label):
            chosen.append((int(index), label, test.images[index]))
            per_label[label] += 1
        if len(chosen) == count:
            break
    order_rng = np.random.default_rng(seed + 1)
    return [chosen[k] for k in order_rng.permutation(len(chosen))]


# ---------------------------------------------------------------------------------------------- writing
def write_clip(scene: Scene, path: Path) -> list[int | None]:
    """Encode the scene with mp4v and return the label of each frame. Checks the clip reads back whole."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), scene.spec.fps, (FRAME_W, FRAME_H))
    if not writer.isOpened():
        raise SystemExit(f"cannot open an mp4v VideoWriter for {path}")
    labels: list[int | None] = []
    for i in range(scene.n_frames):
        frame, truth = scene.render(i)
        writer.write(frame)
        labels.append(truth.label)
    writer.release()
    capture = cv2.VideoCapture(str(path))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    capture.release()
    if decoded != scene.n_frames:
        raise SystemExit(f"{path}: wrote {scene.n_frames} frames but {decoded} decode")
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/mnist", help="directory with the MNIST IDX files")
    parser.add_argument("--out", default="recordings", help="output directory for the clips")
    parser.add_argument("--asset", default="stream_cnn/assets/demo.mp4",
                        help=f"where to copy the {DEMO_CLIP} clip for `stream-cnn demo` ('' = skip)")
    parser.add_argument("--only", nargs="*", help="clip names to (re)generate; default all")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_needed = sum(spec.n_digits for spec in CLIPS)
    digits = legible_test_digits(args.data, n_needed, SELECTION_SEED)
    cursor = 0
    for spec in CLIPS:
        clip_digits = digits[cursor:cursor + spec.n_digits]
        cursor += spec.n_digits
        if args.only and spec.name not in args.only:
            continue
        scene = Scene(spec, clip_digits)
        path = out / f"{spec.name}.mp4"
        labels = write_clip(scene, path)
        sidecar = {
            "clip": path.name,
            "fps": spec.fps,
            "frames": len(labels),
            "width": FRAME_W,
            "height": FRAME_H,
            "kind": spec.kind,
            "labels": labels,
            "digits": [{"t10k_index": idx, "label": label} for idx, label, _ in clip_digits],
            "source": (f"MNIST t10k indices {[idx for idx, _, _ in clip_digits]}" if clip_digits
                       else ("blank sheet, no digit" if spec.sheet else "room only, no sheet")),
            "description": spec.description,
            "generator": f"scripts/make_recordings.py (seed {spec.seed}, selection seed {SELECTION_SEED})",
        }
        (out / f"{spec.name}.labels.json").write_text(json.dumps(sidecar, indent=1) + "\n")
        print(f"{path}: {len(labels)} frames, {path.stat().st_size / 1024:.0f} KiB, {sidecar['source']}")
        if spec.name == DEMO_CLIP and args.asset:
            Path(args.asset).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, args.asset)
            print(f"{args.asset}: copy of {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
