"""The digit finder on frames rendered by the clip generator (scripts/make_recordings.py): it finds the digit on
the sheet and makes an MNIST-style 28x28 image of it, and finds nothing when there is no digit."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_cnn.preprocess.digits import (NO_SHEET_PATIENCE, SATURATED_SHARE, STROKE_FLOOR, DigitFinder, box_iou,
                                         canny_edges, component_stats, place_mnist)

ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = ROOT / "data" / "mnist"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_recordings", ROOT / "scripts" / "make_recordings.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_recordings"] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
CLIPS = {spec.name: spec for spec in gen.CLIPS}
DIGIT_CLIPS = [spec.name for spec in gen.CLIPS if spec.kind == "digits"]


@pytest.fixture(scope="module")
def clip_digits():
    """The test digits each clip shows, chosen exactly as the generator chooses them."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte").exists() and not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST not in data/mnist (run scripts/fetch_mnist.sh)")
    needed = sum(spec.n_digits for spec in gen.CLIPS)
    digits = gen.legible_test_digits(str(MNIST_DIR), needed, gen.SELECTION_SEED)
    per_clip, cursor = {}, 0
    for spec in gen.CLIPS:
        per_clip[spec.name] = digits[cursor:cursor + spec.n_digits]
        cursor += spec.n_digits
    return per_clip


def _scene(name, clip_digits, **condition_changes):
    spec = CLIPS[name]
    if condition_changes:
        spec = dataclasses.replace(spec, conditions=dataclasses.replace(spec.conditions, **condition_changes))
    return gen.Scene(spec, clip_digits[name])


def _gray(frame_bgr):
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)


def _correlation(a, b):
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def _frames_per_digit(scene, per_digit=3):
    """Frame indices spread over each digit's share of the clip (not only its first frame)."""
    share = scene.n_frames // len(scene.sheets)
    return [d * share + k * share // per_digit + share // (2 * per_digit)
            for d in range(len(scene.sheets)) for k in range(per_digit)]


@pytest.mark.parametrize("name", DIGIT_CLIPS)
def test_finds_the_digit_under_each_clip_condition(name, clip_digits):
    scene = _scene(name, clip_digits)
    images = {label: image for _, label, image in clip_digits[name]}
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    correlations = []
    for i in _frames_per_digit(scene):
        frame, truth = scene.render(i)
        box = finder(_gray(frame), out)
        assert box is not None, f"{name} frame {i}: digit {truth.label} not found"
        # The box is the digit's ink, not the sheet, a thumb or the room.
        assert box_iou(box, truth.digit_box) > 0.6, f"{name} frame {i}: box {box} vs true {truth.digit_box}"
        correlations.append(_correlation(out, images[truth.label]))
    # The 28x28 image looks like the MNIST image the digit was written from.
    assert np.mean(correlations) > 0.8, correlations
    assert min(correlations) > 0.55, correlations


def test_output_is_made_the_way_mnist_was(clip_digits):
    """White on black in [0, 255], the digit's box fitted into 20x20 (aspect kept), centre of mass at (14, 14)."""
    scene = _scene("digits_desk", clip_digits)
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    for i in _frames_per_digit(scene, per_digit=1):
        box = finder(_gray(scene.render(i)[0]), out)
        assert box is not None
        assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() == 255.0
        rows = np.nonzero(out.any(axis=1))[0]
        cols = np.nonzero(out.any(axis=0))[0]
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert 18 <= max(height, width) <= 20, (height, width)
        # Aspect kept: the 28x28 image's digit box has the proportions of the box found in the frame.
        assert abs(height / width - box[3] / box[2]) < 0.25 * max(1.0, box[3] / box[2])
        ys, xs = np.indices(out.shape)
        total = out.sum()
        assert abs((out * xs).sum() / total - 14.0) <= 0.75
        assert abs((out * ys).sum() / total - 14.0) <= 0.75
        # Background is exactly 0 (as in MNIST), and the stroke cores saturate (as in MNIST).
        assert (out == 0).mean() > 0.5
        assert (out[out > 0] >= 250).mean() > 0.2


def test_clean_frame_reproduces_the_mnist_image(clip_digits):
    """A sheet facing the camera squarely, evenly lit, still: the finder's 28x28 image is nearly the original."""
    scene = _scene("digits_desk", clip_digits, max_tilt_deg=0.0, max_roll_deg=0.0, drift_px=0.0, shake_px=0.0,
                   light_gradient=0.0, vignette=0.0, shadow_strength=0.0, noise_sigma=0.0, fixed_noise_sigma=0.0,
                   jpeg_quality=95)
    scene.yaw_bias = scene.pitch_bias = 0.0
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    for i in _frames_per_digit(scene, per_digit=1):
        frame, truth = scene.render(i)
        assert finder(_gray(frame), out) is not None
        original = next(image for _, label, image in clip_digits["digits_desk"] if label == truth.label)
        assert _correlation(out, original) > 0.88


@pytest.mark.parametrize("name", ["no_digit_blank_sheet", "no_digit_room"])
def test_no_digit_in_view_gives_none(name, clip_digits):
    scene = _scene(name, clip_digits)
    finder = DigitFinder()
    out = np.full((28, 28), -1.0, np.float32)
    for i in range(0, scene.n_frames, 4):
        assert finder(_gray(scene.render(i)[0]), out) is None, f"{name} frame {i}"
        assert np.all(out == -1.0), "out must be left alone when there is no digit"
    assert finder.sheet_outline is None


def test_shadow_and_light_gradient_do_not_change_the_digit(clip_digits):
    """The same frame lit evenly and under a deep shadow plus a steep light gradient: same box, same image."""
    even = _scene("digits_shadow", clip_digits, shadow_strength=0.0, light_gradient=0.0, vignette=0.0)
    harsh = _scene("digits_shadow", clip_digits, shadow_strength=0.5, light_gradient=0.8, vignette=0.4)
    finder = DigitFinder()
    out_even = np.zeros((28, 28), np.float32)
    out_harsh = np.zeros((28, 28), np.float32)
    for i in _frames_per_digit(even, per_digit=2):
        box_even = finder(_gray(even.render(i)[0]), out_even)
        box_harsh = finder(_gray(harsh.render(i)[0]), out_harsh)
        assert box_even is not None and box_harsh is not None, f"frame {i}"
        assert box_iou(box_even, box_harsh) > 0.8
        assert _correlation(out_even, out_harsh) > 0.85


def _sheet_frame(with_digit, rng):
    """A plain synthetic frame: dark room, bright sheet, a thumb over its left edge, ink specks."""
    frame = np.full((240, 320), 70, np.uint8)
    cv2.rectangle(frame, (80, 40), (240, 210), 225, -1)
    cv2.ellipse(frame, (80, 125), (30, 14), 0, 0, 360, 150, -1)  # thumb, from outside onto the sheet
    for _ in range(6):  # specks of dirt, a pixel or two
        x, y = int(rng.integers(100, 220)), int(rng.integers(60, 190))
        frame[y:y + 2, x:x + 2] = 90
    if with_digit:
        cv2.line(frame, (165, 80), (150, 170), 40, 9, cv2.LINE_AA)  # a "1"
        cv2.line(frame, (165, 80), (150, 95), 40, 7, cv2.LINE_AA)
    return frame


def test_fingers_and_specks_are_not_digits():
    rng = np.random.default_rng(3)
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    assert finder(_sheet_frame(False, rng), out) is None
    box = finder(_sheet_frame(True, rng), out)
    assert box is not None
    x, y, w, h = box
    # Only the stroke: nothing of the thumb (x < 110) and no speck far from it.
    assert 135 <= x and x + w <= 180 and 70 <= y and y + h <= 180, box


def test_empty_and_uniform_frames_give_none():
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    for value in (0, 128, 255):
        assert finder(np.full((480, 640), value, np.uint8), out) is None


@settings(max_examples=25, deadline=None)
@given(height=st.integers(16, 200), width=st.integers(16, 260), seed=st.integers(0, 2**31 - 1),
       cells=st.integers(2, 12))
def test_any_frame_gives_none_or_a_box_inside_it(height, width, seed, cells):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(cells, cells)).astype(np.uint8)
    frame = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_NEAREST)
    frame = cv2.add(frame, rng.integers(0, 20, size=frame.shape, dtype=np.uint8))
    out = np.zeros((28, 28), np.float32)
    box = DigitFinder()(frame, out)
    if box is not None:
        x, y, w, h = box
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 255.0


def test_work_buffers_are_reused_and_follow_the_frame_size(clip_digits):
    scene = _scene("digits_desk", clip_digits)
    frame = _gray(scene.render(5)[0])
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    assert finder(frame, out) is not None
    buffers = (finder._small, finder._blurred, finder._edges, finder._regions, finder._sheet_mask)
    assert finder(_gray(scene.render(6)[0]), out) is not None
    assert all(a is b for a, b in zip(buffers, (finder._small, finder._blurred, finder._edges, finder._regions,
                                                 finder._sheet_mask)))
    # A different frame size (a camera switched resolution): reallocated, still works.
    half = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)
    assert finder(half, out) is not None
    assert finder._small.shape == (120, 160)


def _fresh_result(gray):
    """What a finder that has seen no earlier frame (a full search, no tracking) gives on this frame."""
    out = np.zeros((28, 28), np.float32)
    box = DigitFinder()(gray, out)
    return box, out


@pytest.mark.parametrize("name, start", [("digits_handheld", 8), ("digits_dim", 40), ("no_digit_blank_sheet", 0)])
def test_tracking_gives_what_a_search_of_the_whole_frame_gives(name, start, clip_digits):
    """Consecutive frames (the finder tracks the sheet between them; fast shaky motion, defocus, a cut from one
    digit to the next, a blank sheet): every frame's answer is the one a fresh finder gives on that frame alone."""
    scene = _scene(name, clip_digits)
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    for i in range(start, start + 14):
        gray = _gray(scene.render(i)[0])
        box = finder(gray, out)
        fresh_box, fresh_out = _fresh_result(gray)
        assert (box is None) == (fresh_box is None), f"{name} frame {i}: tracked {box}, fresh {fresh_box}"
        if box is not None:
            assert box_iou(box, fresh_box) > 0.9, f"{name} frame {i}: tracked {box}, fresh {fresh_box}"
            assert _correlation(out, fresh_out) > 0.95
            # The sheet the digit was found on is reported in frame pixels and holds the digit's box.
            sx, sy, sw, sh = cv2.boundingRect(finder.sheet_outline.astype(np.float32))
            x, y, w, h = box
            assert sx - 2 <= x and sy - 2 <= y and x + w <= sx + sw + 2 and y + h <= sy + sh + 2
        else:
            assert finder.sheet_outline is None


def test_a_cut_never_leaves_a_stale_sheet(clip_digits):
    """Whatever the finder tracked, each frame is judged on its own pixels: cuts between a digit, the bare room,
    a blank sheet and a sheet elsewhere with another digit give, frame by frame, what a fresh finder gives."""
    digits = _scene("digits_desk", clip_digits)
    other = _scene("digits_dim", clip_digits)  # another room, another sheet, another digit
    room = _scene("no_digit_room", clip_digits)
    blank = _scene("no_digit_blank_sheet", clip_digits)
    # None: a uniform grey frame (nothing sheet-like at all: nothing to track either).
    sequence = [(None, 0), (digits, 20), (digits, 21), (room, 10), (room, 11), (digits, 22), (blank, 10),
                (blank, 11), (other, 20), (other, 21), (room, 12), (other, 22), (None, 0), (digits, 23)]
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    found = 0
    for scene, i in sequence:
        gray = np.full((480, 640), 128, np.uint8) if scene is None else _gray(scene.render(i)[0])
        box = finder(gray, out)
        fresh_box, fresh_out = _fresh_result(gray)
        where = f"{scene.spec.name if scene else 'uniform'} frame {i}: tracked {box}, fresh {fresh_box}"
        assert (box is None) == (fresh_box is None), where
        if box is None:
            assert finder.sheet_outline is None
        else:
            found += 1
            assert box_iou(box, fresh_box) > 0.9, where
            assert _correlation(out, fresh_out) > 0.95, where
    assert found == 7  # every digit frame (the fresh finder finds them all too)


def test_a_sheet_appearing_after_a_bare_view_is_found_at_once(clip_digits):
    """After many frames with nothing sheet-like in view (the finder then screens frames at quarter resolution
    first), a sheet held up is found on its first frame here, and never later than NO_SHEET_PATIENCE frames."""
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    rng = np.random.default_rng(5)
    for _ in range(3 * NO_SHEET_PATIENCE + 1):  # a dim, textured, featureless view: nothing to track
        noise = cv2.GaussianBlur(rng.integers(0, 60, (480, 640), dtype=np.uint8), (0, 0), 3)
        assert finder(noise, out) is None
    assert finder._frames_without_sheet % NO_SHEET_PATIENCE != 0  # the next frame is screened first
    scene = _scene("digits_desk", clip_digits)
    first = next(i for i in range(NO_SHEET_PATIENCE) if finder(_gray(scene.render(20 + i)[0]), out) is not None)
    assert first == 0


@pytest.mark.parametrize("gray, out", [
    (np.zeros((480, 640), np.float32), np.zeros((28, 28), np.float32)),
    (np.zeros((480, 640, 3), np.uint8), np.zeros((28, 28), np.float32)),
    (np.zeros((480, 640), np.uint8), np.zeros((28, 28), np.float64)),
    (np.zeros((480, 640), np.uint8), np.zeros((1, 28, 28), np.float32)),
])
def test_wrong_arrays_are_refused(gray, out):
    with pytest.raises(ValueError):
        DigitFinder()(gray, out)


def test_random_scenes_beyond_the_clip_settings(clip_digits):
    """Conditions drawn at random (seeded) across the generator's ranges -- not tuned clip by clip: the digit is
    found on digit sheets and nothing is found on blank sheets or in the bare room."""
    rng = np.random.default_rng(2718)
    digits = [d for name in DIGIT_CLIPS for d in clip_digits[name]]
    finder = DigitFinder()
    out = np.zeros((28, 28), np.float32)
    found = total = false_alarms = empty_frames = 0
    for trial in range(8):
        conditions = gen.Conditions(
            sheet_height_px=rng.uniform(220, 360), drift_px=rng.uniform(5, 35), shake_px=rng.uniform(0.5, 4),
            max_tilt_deg=rng.uniform(5, 25), max_roll_deg=rng.uniform(2, 12), light_gradient=rng.uniform(0, 0.7),
            vignette=rng.uniform(0, 0.45), shadow_strength=rng.uniform(0, 0.5), noise_sigma=rng.uniform(0.5, 3),
            fixed_noise_sigma=rng.uniform(0.5, 3), jpeg_quality=int(rng.uniform(50, 85)),
            ink_level=rng.uniform(40, 110), exposure=rng.uniform(0.6, 1.1), room_style=int(rng.integers(0, 4)))
        kind = ("digits", "blank", "digits", "room")[trial % 4]
        shown = [digits[int(k)] for k in rng.choice(len(digits), 2, replace=False)] if kind == "digits" else []
        spec = gen.ClipSpec(f"random{trial}", "digits" if shown else "no_digit", 2.0, "random conditions",
                            n_digits=len(shown), sheet=kind != "room", seed=500 + trial, conditions=conditions)
        scene = gen.Scene(spec, shown)
        for i in range(3, scene.n_frames, 7):
            frame, truth = scene.render(i)
            box = finder(_gray(frame), out)
            if truth.label is None:
                empty_frames += 1
                false_alarms += box is not None
            else:
                total += 1
                found += box is not None and box_iou(box, truth.digit_box) > 0.6
    assert found >= 0.9 * total, f"digit found on {found} of {total} frames"
    assert false_alarms == 0, f"a digit 'found' on {false_alarms} of {empty_frames} frames without one"


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), height=st.integers(2, 40), width=st.integers(2, 40),
       density=st.floats(0.05, 0.7), band=st.integers(0, 4))
def test_component_stats_match_opencv(seed, height, width, density, band):
    """The Numba kernel's boxes, areas and centroids are OpenCV's connectedComponentsWithStats'; `touching` marks
    exactly the components with a pixel outside the hull eroded by a (2 band + 1) square or outside the region
    eroded by 3x3 (cv2.erode, default border), as the finder first computed it."""
    rng = np.random.default_rng(seed)
    ink = (rng.random((height, width)) < density).astype(np.uint8)
    corners = np.stack([rng.integers(0, width, 6), rng.integers(0, height, 6)], axis=1).astype(np.int32)
    hull = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(corners).reshape(-1, 2), 255)
    region = np.where(rng.random((height, width)) < 0.85, hull, 0).astype(np.uint8)
    ink &= (hull > 0)
    count, labels, cv_stats, cv_centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    stats = np.zeros((count, 6), np.int64)
    stats[:, 0], stats[:, 1] = width, height
    sums = np.zeros((count, 2), np.float64)
    component_stats(labels, hull, region, band, stats, sums)
    square = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    allowed = cv2.erode(hull, square) & cv2.erode(region, np.ones((3, 3), np.uint8))
    for k in range(1, count):
        x, y, w, h, area = cv_stats[k]
        assert tuple(stats[k, :5]) == (x, y, x + w, y + h, area)
        np.testing.assert_allclose(sums[k] / area, cv_centroids[k], atol=1e-9)
        assert stats[k, 5] == int(np.any((labels == k) & (allowed == 0)))


def _place_mnist_reference(patch):
    """The same normalisation and placement in NumPy (np.quantile, np.indices), as the finder first had it."""
    stroke = patch[patch > 0.1 * float(patch.max())]
    if stroke.size == 0:
        return None
    reference = float(np.quantile(stroke, 1.0 - SATURATED_SHARE))
    if reference <= 0:
        return None
    floor = STROKE_FLOOR * reference
    patch = np.clip((patch - floor) * (255.0 / (reference - floor)), 0.0, 255.0)
    ys, xs = np.indices(patch.shape)
    total = float(patch.sum())
    left = int(round(14.0 - float((patch * xs).sum()) / total))
    top = int(round(14.0 - float((patch * ys).sum()) / total))
    out = np.zeros((28, 28), np.float32)
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(28, left + patch.shape[1]), min(28, top + patch.shape[0])
    out[y0:y1, x0:x1] = patch[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), height=st.integers(1, 20), width=st.integers(1, 20))
def test_place_mnist_matches_the_numpy_reference(seed, height, width):
    rng = np.random.default_rng(seed)
    patch = (rng.random((height, width)) * (rng.random((height, width)) < 0.6)).astype(np.float32)
    expected = _place_mnist_reference(patch.copy())
    out = np.full((28, 28), -1.0, np.float32)
    placed = place_mnist(patch.copy(), SATURATED_SHARE, STROKE_FLOOR, 14.0,
                         np.empty(patch.size, np.float32), out)
    assert placed == (expected is not None)
    if placed:
        np.testing.assert_allclose(out, expected, atol=1e-3)
    else:
        assert np.all(out == -1.0)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), height=st.integers(3, 60), width=st.integers(3, 60),
       low=st.integers(10, 60), ratio=st.floats(1.5, 3.5), blur=st.sampled_from([1, 3, 5]))
def test_canny_kernel_is_opencvs_canny(seed, height, width, low, ratio, blur):
    """The single-threaded Canny used on tracking windows gives exactly cv2.Canny's edges (blobs and ramps with
    noise, smoothed as the finder smooths; a window view of a larger image, as the finder passes it)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 6), max(2, width // 6))).astype(np.uint8)
    image = cv2.resize(coarse, (width + 4, height + 4), interpolation=cv2.INTER_LINEAR)
    image = cv2.add(image, rng.integers(0, 12, image.shape, dtype=np.uint8))
    image = cv2.GaussianBlur(image, (blur, blur), 0)
    window = image[2:2 + height, 2:2 + width]
    expected = cv2.Canny(np.ascontiguousarray(window), low, low * ratio)
    edges = np.full((height + 4, width + 4), 7, np.uint8)
    scratch = [np.empty((height, width), np.int32) for _ in range(3)]
    canny_edges(window, low, low * ratio, *scratch, np.empty(height * width, np.int32),
                edges[2:2 + height, 2:2 + width])
    np.testing.assert_array_equal(edges[2:2 + height, 2:2 + width], expected)
    assert np.all(edges[:2] == 7) and np.all(edges[:, :2] == 7)  # nothing written outside the window


def test_warm_up_reaches_every_finder_kernel():
    # The pipeline calls this before frame 0 so compiling the finder's kernels never lands on a frame's timing.
    from stream_cnn.preprocess import digits

    assert digits.DigitFinder.warm_up()
    for kernel in (digits.canny_edges, digits.ink_mask, digits.component_stats, digits.chosen_mask,
                   digits.ink_darkness, digits.select_digit, digits.place_mnist):
        assert kernel.signatures, kernel.__name__
