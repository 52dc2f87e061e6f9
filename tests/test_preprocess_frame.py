"""Frame -> model input: colour order, stretch / centre-crop / letterbox geometry, ROI, normalisation, the digit
path, and no frame-sized allocation per frame."""
import tracemalloc
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_cnn.errors import UsageError
from stream_cnn.preprocess import FramePreprocessor, centre_crop, letterbox_placement, parse_roi
from stream_cnn.preprocess.frame import LUMA_TO_GRAY, area_weights

SCALE = 1 / 255


def config(shape=(1, 28, 28), color="gray", resize="stretch", mean=(0.5,), std=(0.25,), preprocess="frame"):
    return SimpleNamespace(input_shape=shape, color=color, scale=SCALE, mean=list(mean), std=list(std),
                           resize=resize, preprocess=preprocess)


def normalised(pixel, mean=0.5, std=0.25):
    return (pixel * SCALE - mean) / std


def make(cfg, roi=None, digit_finder=None):
    target = np.zeros(cfg.input_shape, np.float32)
    return FramePreprocessor(cfg, target, roi=roi, digit_finder=digit_finder), target


def test_uniform_colour_becomes_its_gray_value_normalised():
    pre, target = make(config())
    frame = np.empty((480, 640, 3), np.uint8)
    frame[:] = (30, 120, 200)                       # B, G, R
    region = pre(frame)
    gray = 0.299 * 200 + 0.587 * 120 + 0.114 * 30   # ITU-R BT.601 luma, what BGR2GRAY computes
    assert region == (0, 0, 640, 480)
    np.testing.assert_allclose(target, normalised(gray), atol=1.5 * SCALE / 0.25)


def test_rgb_models_get_channels_in_rgb_order_with_per_channel_normalisation():
    cfg = config(shape=(3, 16, 16), color="rgb", mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.125))
    pre, target = make(cfg)
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :, 0] = 255                            # pure blue in BGR
    pre(frame)
    np.testing.assert_allclose(target[0], (0 - 0.1) / 0.5, atol=1e-5)      # R
    np.testing.assert_allclose(target[1], (0 - 0.2) / 0.25, atol=1e-5)     # G
    np.testing.assert_allclose(target[2], (1 - 0.3) / 0.125, atol=1e-5)    # B


def test_stretch_maps_the_left_half_to_the_left_half():
    pre, target = make(config(shape=(1, 10, 20)))
    frame = np.zeros((100, 400, 3), np.uint8)
    frame[:, :200] = 255
    pre(frame)
    assert np.allclose(target[0, :, :10], normalised(255)) and np.allclose(target[0, :, 10:], normalised(0))


def test_centre_crop_drops_the_sides_of_a_wide_frame():
    pre, target = make(config(shape=(3, 28, 28), color="rgb", mean=(0, 0, 0), std=(1, 1, 1)))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :, 1] = 255                            # green everywhere...
    frame[:, :80] = (0, 0, 255)                     # ...except red bands outside the centred 480x480 square
    frame[:, 560:] = (0, 0, 255)
    pre.resize = "crop"
    region = pre(frame)
    assert region == (80, 0, 480, 480) == centre_crop((0, 0, 640, 480), 28, 28)
    assert np.allclose(target[0], 0.0) and np.allclose(target[1], 1.0)


def test_letterbox_keeps_aspect_and_fills_bars():
    cfg = config(resize="letterbox")
    pre, target = make(cfg)
    frame = np.full((480, 640, 3), 255, np.uint8)
    region = pre(frame)
    assert region == (0, 0, 640, 480)
    x, y, w, h = letterbox_placement(640, 480, 28, 28)
    assert (x, y, w, h) == (0, 3, 28, 21)
    assert np.allclose(target[0, y:y + h], normalised(255))
    assert np.allclose(target[0, :y], normalised(0)) and np.allclose(target[0, y + h:], normalised(0))


def test_roi_restricts_what_the_model_sees_and_is_returned():
    pre, target = make(config(), roi=parse_roi("100,50,200,150"))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[50:200, 100:300] = 255
    assert pre(frame) == (100, 50, 200, 150)
    assert np.allclose(target, normalised(255))


def test_roi_is_clipped_to_the_frame_and_rejected_when_outside():
    pre, _ = make(config(), roi=(600, 400, 200, 200))
    assert pre(np.zeros((480, 640, 3), np.uint8)) == (600, 400, 40, 80)
    pre, _ = make(config(), roi=(700, 10, 20, 20))
    with pytest.raises(UsageError, match="outside the 640x480 frame"):
        pre(np.zeros((480, 640, 3), np.uint8))


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "0,0,0,10", "-1,0,5,5", "1,2,3,4,5"])
def test_bad_roi_text_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--roi"):
        parse_roi(text)


def test_mismatched_colour_and_channels_is_rejected():
    with pytest.raises(UsageError, match="channel"):
        make(config(shape=(3, 8, 8), color="gray", mean=(0,), std=(1,)))


def test_steady_state_allocates_nothing_frame_sized():
    pre, target = make(config(shape=(3, 64, 64), color="rgb", mean=(0, 0, 0), std=(1, 1, 1), resize="letterbox"))
    frames = [np.random.default_rng(i).integers(0, 256, (480, 640, 3), dtype=np.uint8) for i in range(3)]
    pre(frames[0])                                   # first call sizes the buffers
    tracemalloc.start()
    try:
        for frame in frames * 3:
            pre(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000    # a 640x480 frame is 921,600 bytes; even the 64x64x3 input is 49,152


class ScriptedFinder:
    """Stands in for DigitFinder to test the plumbing around it: returns a fixed box and fills ``out``."""

    def __init__(self, box):
        self.box = box
        self.seen_shape = None

    def __call__(self, gray, out):
        self.seen_shape = gray.shape
        assert gray.dtype == np.uint8 and out.shape == (28, 28) and out.dtype == np.float32
        if self.box is None:
            return None
        out[:] = 255.0
        return self.box


def test_digit_path_offsets_the_box_by_the_roi_and_normalises():
    finder = ScriptedFinder((5, 6, 20, 30))
    pre, target = make(config(preprocess="digit", mean=(0.0,), std=(1.0,)), roi=(100, 40, 300, 200),
                       digit_finder=finder)
    region = pre(np.zeros((480, 640, 3), np.uint8))
    assert finder.seen_shape == (200, 300)
    assert region == (105, 46, 20, 30)
    assert np.allclose(target, 1.0)


def test_digit_path_no_digit_gives_none():
    pre, _ = make(config(preprocess="digit"), digit_finder=ScriptedFinder(None))
    assert pre(np.zeros((120, 160, 3), np.uint8)) is None


def test_digit_models_use_the_digit_finder_by_default():
    from stream_cnn.preprocess.digits import DigitFinder

    pre, target = make(config(preprocess="digit", mean=(0.0,), std=(1.0,)))
    assert isinstance(pre.digit_finder, DigitFinder)
    # A dark "7" written on a white sheet held in front of a darker room, as the camera would see it.
    frame = np.full((480, 640, 3), 70, np.uint8)
    frame[100:400, 200:440] = 225
    cv2.line(frame, (260, 160), (380, 160), (30, 30, 30), 14)
    cv2.line(frame, (380, 160), (300, 330), (30, 30, 30), 14)
    region = pre(frame)
    assert region is not None
    x, y, w, h = region
    assert x <= 270 and x + w >= 370 and y <= 170 and y + h >= 320      # the box surrounds the stroke
    assert target.max() > 0.5 and target.min() >= -1e-6                   # MNIST style: bright digit on black


@settings(max_examples=30, deadline=None)
@given(frame_w=st.integers(8, 200), frame_h=st.integers(8, 200), in_w=st.integers(4, 40), in_h=st.integers(4, 40),
       resize=st.sampled_from(["stretch", "crop", "letterbox"]), seed=st.integers(0, 2 ** 16))
def test_any_geometry_stays_inside_the_frame_and_in_range(frame_w, frame_h, in_w, in_h, resize, seed):
    pre, target = make(config(shape=(1, in_h, in_w), resize=resize))
    frame = np.random.default_rng(seed).integers(0, 256, (frame_h, frame_w, 3), dtype=np.uint8)
    x, y, w, h = pre(frame)
    assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= frame_w and y + h <= frame_h
    assert np.all(np.isfinite(target))
    assert target.min() >= normalised(0) - 1e-5 and target.max() <= normalised(255) + 1e-5


def opencv_reference(frame_bgr, cfg, region=None):
    """The OpenCV path the area kernel replaces: cvtColor, INTER_AREA resize, then normalise (stretch only)."""
    channels, height, width = cfg.input_shape
    x, y, w, h = region or (0, 0, frame_bgr.shape[1], frame_bgr.shape[0])
    view = frame_bgr[y:y + h, x:x + w]
    if cfg.color == "gray":
        planes = [cv2.resize(cv2.cvtColor(view, cv2.COLOR_BGR2GRAY), (width, height), interpolation=cv2.INTER_AREA)]
    else:
        rgb = cv2.cvtColor(cv2.resize(view, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        planes = [rgb[:, :, c] for c in range(3)]
    return np.stack([(p * SCALE - m) / s for p, m, s in zip(planes, cfg.mean, cfg.std)]).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(frame_w=st.integers(30, 330), frame_h=st.integers(30, 250), in_w=st.integers(4, 30), in_h=st.integers(4, 30),
       color=st.sampled_from(["gray", "rgb"]), seed=st.integers(0, 2 ** 16))
def test_area_kernel_matches_opencv_cvtcolor_and_inter_area(frame_w, frame_h, in_w, in_h, color, seed):
    # Smooth random content (a blurred noise field), like a camera picture, plus hard edges from a rectangle.
    rng = np.random.default_rng(seed)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (frame_h, frame_w, 3), dtype=np.uint8), (0, 0), 2)
    cv2.rectangle(frame, (frame_w // 4, frame_h // 4), (frame_w // 2, frame_h // 2), (250, 20, 120), -1)
    channels = 1 if color == "gray" else 3
    cfg = config(shape=(channels, in_h, in_w), color=color, mean=(0.5,) * channels, std=(0.25,) * channels)
    pre, target = make(cfg)
    pre(frame)
    assert pre._area
    expected = opencv_reference(frame, cfg)
    # OpenCV rounds to uint8 twice (gray, then the resize); the kernel keeps floats: at most ~1 grey level apart.
    assert np.abs(target - expected).max() <= 1.01 * SCALE / 0.25


def test_area_weights_are_inter_area_coverage():
    bins, first, second, whole = area_weights(10, 4)           # scale 2.5: bins [0,2.5) [2.5,5) [5,7.5) [7.5,10)
    assert list(bins) == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    np.testing.assert_allclose(first + second, 1 / 2.5, rtol=1e-6)  # every pixel counts fully, once
    np.testing.assert_allclose([first[2], second[2]], [0.5 / 2.5, 0.5 / 2.5], rtol=1e-6)   # pixel 2 straddles
    per_bin = np.zeros(4)
    np.add.at(per_bin, bins, first)
    np.add.at(per_bin, np.minimum(bins + 1, 3), second)
    np.testing.assert_allclose(per_bin, 1.0, rtol=1e-6)         # each bin is a mean
    assert list(whole) == [1, 1, 0, 1, 1, 1, 1, 0, 1, 1]
    with pytest.raises(ValueError):
        area_weights(4, 10)


def test_roi_and_crop_go_through_the_kernel_like_opencv():
    rng = np.random.default_rng(3)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    cfg = config(shape=(1, 20, 20))
    pre, target = make(cfg, roi=(50, 30, 200, 150))
    pre.resize = "crop"
    region = pre(frame)
    assert region == (75, 30, 150, 150) and pre._area
    assert np.abs(target - opencv_reference(frame, cfg, region)).max() <= 1.01 * SCALE / 0.25


def test_luma_frames_give_what_the_bgr_frame_gives():
    # A decoder's limited-range luma plane of a gray picture is 16 + gray * 219 / 255.
    rng = np.random.default_rng(5)
    gray = cv2.GaussianBlur(rng.integers(0, 256, (120, 160), dtype=np.uint8), (0, 0), 2)
    luma = np.round(16 + gray.astype(np.float64) * 219 / 255).astype(np.uint8)
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    from_bgr, bgr_target = make(config(shape=(1, 12, 16)))
    from_bgr(bgr)
    target = np.zeros((1, 12, 16), np.float32)
    FramePreprocessor(config(shape=(1, 12, 16)), target, luma_to_gray="limited")(luma)
    assert np.abs(target - bgr_target).max() <= 1.01 * SCALE / 0.25
    # An already-gray 2-D frame ("full" range) is taken as it is.
    target_full = np.zeros((1, 12, 16), np.float32)
    FramePreprocessor(config(shape=(1, 12, 16)), target_full)(gray)
    assert np.abs(target_full - bgr_target).max() <= 0.01 * SCALE / 0.25


def test_enlarging_a_small_roi_keeps_the_bilinear_path():
    pre, target = make(config(shape=(1, 28, 28)), roi=(10, 10, 8, 8))
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[10:18, 10:18] = 255
    assert pre(frame) == (10, 10, 8, 8) and not pre._area
    assert np.allclose(target, normalised(255))


@pytest.mark.parametrize("mapping", ["limited", "full", (1.1610177985280647, -19.446436073147353)])
def test_digit_path_maps_a_luma_plane_to_gray_like_the_lookup_table(mapping):
    # The finder gets gray = round(luma * factor + bias) clipped to 0..255 over the ROI, as the BGR path's gray.
    seen = []

    class KeepingFinder(ScriptedFinder):
        def __call__(self, gray, out):
            seen.append(gray.copy())
            return super().__call__(gray, out)

    target = np.zeros((1, 28, 28), np.float32)
    pre = FramePreprocessor(config(preprocess="digit"), target, roi=(10, 20, 300, 200),
                            digit_finder=KeepingFinder((1, 2, 3, 4)), luma_to_gray=mapping)
    luma = np.random.default_rng(3).integers(0, 256, (240, 320), np.uint8)
    luma[0, :256] = np.arange(256)                  # every level, inside the ROI's rows below
    luma[20, 10:266] = np.arange(256)
    assert pre(luma) == (11, 22, 3, 4)
    factor, bias = LUMA_TO_GRAY[mapping] if isinstance(mapping, str) else mapping
    expected = np.clip(np.round(luma[20:220, 10:310] * factor + bias), 0, 255)
    assert seen[0].shape == (200, 300)
    assert np.abs(seen[0].astype(np.int64) - expected).max() <= 1
