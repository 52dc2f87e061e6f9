"""Find a handwritten digit on a sheet of paper held up to a camera and make an MNIST-style 28x28 image of it.

A webcam frame of a digit is mostly not the digit: the room behind the sheet, the sheet's edges, the fingers
holding it, shadows and uneven light. The finder works in four steps on shrunken copies of the frame: half
resolution (the "working" resolution) to search the whole frame for the sheet and to read the digit's strokes,
quarter resolution to follow the sheet from frame to frame and to find the ink (a digit on a sheet that fills a
useful part of the view is still 20-40 pixels tall there, what MNIST needs, with strokes 3+ pixels wide):

1. **Sheet**: the paper is a large, bright, roughly quadrilateral region bounded by an edge all round. Canny edges
   of the blurred frame cut it into regions; the paper's outline is an edge everywhere (the thumbs only notch
   it), while a soft shadow or a light gradient across the sheet makes no edge, so the paper stays one region
   however unevenly it is lit -- where a single brightness threshold would cut a shadowed sheet in two or merge a
   lit one with a light wall. Candidates: big regions brighter than the frame's Otsu level, solid, filling their
   minimum-area rectangle, not running out along the frame's edge (a wall, the desk). A region that leaks out
   through a gap in a faint edge is opened to cut the neck. The filled outline (holes -- the digit -- included,
   thumb notches excluded) is the search region. Each candidate, largest first, is searched for a digit: a
   window pane or a picture on the wall can look like a sheet, but carries no digit.
2. **Ink**: dark relative to the paper *around it*: the paper's brightness is estimated by a grey-level dilation
   (a max filter wider than a pen stroke, so strokes vanish from it) and a pixel is ink when it is darker than a
   fixed fraction of that. A ratio, not a difference, so a shadow or a light gradient that scales paper and ink
   alike changes nothing.
3. **Digit**: connected ink components; those reaching the sheet's border band (fingers, the sheet's own edge,
   the room seen past it) and specks are dropped; the largest component near the sheet's centre, plus the
   fragments close to it (a digit's strokes are not always connected), is the digit if its size, shape and ink
   density are those of a written digit. Otherwise there is no digit (None), never a guess.
4. **MNIST image**: the ink darkness (1 - pixel / paper) inside the digit's box, normalised so the stroke cores
   saturate the way MNIST's do, scaled to fit a 20x20 box (aspect kept) and placed by its centre of mass at
   (14, 14) of the 28x28 field with an integer shift -- exactly how MNIST was made. White digit on black, float32
   in [0, 255].

**Tracking** (the cost: a whole-frame search is ~1 ms a 640x480 frame here, the decoder ~0.3 ms). A held sheet
moves a few pixels a frame, so after a frame with a sheet the next one is searched only in a window around where
it was: the same edges, regions and sheet tests at a quarter of the frame's resolution (a sixteenth of its
pixels), then -- where that resolution merges the sheet with a bright wall through a faint stretch of its edge,
or pinches it between the digit and a thumb -- at the working resolution, and only when neither finds it, in the
whole frame. Nothing of the last frame is reused but where to look and the frame's brightness level: a region
is the sheet again only when it lies wholly inside the window (not cut by the window's edge, where the whole
frame might join it to more), has about the sheet's size and place and passes every sheet test on this frame's
pixels; steps 2-4 then run on it as on any sheet. Only the windows are shrunk from the frame while tracking. A
sheet found again without a digit (a blank sheet) ends the search, and the whole frame is searched at least every
FULL_SEARCH_EVERY frames (a window pane or a sheet elsewhere is seen then). With nothing sheet-like in view for
NO_SHEET_PATIENCE frames, a frame is first screened at quarter resolution and searched at the working resolution
only when something there passes the sheet tests (or every NO_SHEET_PATIENCE-th frame, in case the coarser edges
hide it). About a fifth to a quarter of the cost is left: ~0.25 ms a frame on the recorded clips
(scripts/bench_finder_probe.py).

Ink components are found at quarter resolution (steps 2-3) and the chosen digit's strokes are read again at the
working resolution within their footprint (step 4): at quarter resolution the 28x28 image loses the strokes'
shape. The pixel loops OpenCV has no single call for (component boxes, the digit's choice, the darkness, the
MNIST normalisation) are Numba kernels; OpenCV's connectedComponentsWithStats costs ~6 ns a pixel here.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
from numba import njit

# Tuning constants (fractions are of the sheet's size unless stated). Why each value:
WORK_SCALE = 0.5  # half resolution: 4x fewer pixels, digits still far larger than 20 px
CANNY_LOW, CANNY_HIGH = 20, 50  # on the blurred working frame: the paper's edge, not sensor noise
QUARTER_CANNY_LOW, QUARTER_CANNY_HIGH = 40, 120  # on the quarter-resolution frame (tracking): fewer, surer edges
MIN_SHEET_AREA = 0.03  # of the frame: a sheet smaller than this is too far away to read a digit on
MIN_SHEET_SOLIDITY = 0.82  # contour area / hull area: thumbs notch the outline, clutter makes it ragged
MIN_SHEET_RECT_FILL = 0.72  # hull area / min-area rectangle: a tilted quadrilateral still fills most of it
MAX_SHEET_ELONGATION = 3.0  # long side / short side of that rectangle
SHEET_NECK = 9  # working px: a region's parts joined by a neck narrower than this are separated
MAX_SHEET_CANDIDATES = 6  # the largest regions examined as possible sheets
MAX_SHEET_EDGE_SHARE = 0.15  # of the outline on the frame's edge: more is a wall or desk running out of view
INK_RATIO = 0.70  # ink is darker than 70% of the surrounding paper (pen ~25-45%, paper grain/noise ~90-100%)
BACKGROUND_WINDOW = 0.12  # max-filter width: wider than a pen stroke (~5-7% of the sheet)
BORDER_BAND = 0.025  # components reaching this band inside the sheet's outline are fingers / edges / room
MIN_COMPONENT_AREA = 0.0015  # of the sheet's area: specks of noise, paper grain, dust
FRAGMENT_REACH = 0.35  # of the main stroke's larger side: how far a detached stroke of the same digit may be
MIN_FRAGMENT_AREA = 0.04  # of the main stroke's area
MIN_DIGIT_SIZE = 0.12  # the digit's larger side, of the sheet's shorter side
MAX_DIGIT_SIZE = 0.95
MAX_DIGIT_WIDTH_RATIO = 1.6  # width / height: written digits are not much wider than tall
MAX_BLOB_FILL = 0.72  # ink area / box area for a non-thin shape: a filled blob (smudge, shadow) is no digit
MIN_DIGIT_PIXELS = 6  # the digit's larger side in quarter-resolution px (24 frame px): below it nothing to read
MNIST_BOX = 20
MNIST_SIZE = 28
MNIST_CENTRE = 14.0  # MNIST's centres of mass sit at (14, 14) in pixel-index coordinates (measured on t10k)
SATURATED_SHARE = 0.40  # MNIST: ~40% of a digit's non-zero pixels are at (or next to) 255 (measured on t10k)
STROKE_FLOOR = 0.12  # darkness below this share of a stroke core's is paper grain, not ink
# Tracking (see the module docstring): where to look for the last frame's sheet, and how far it may have changed.
TRACK_MARGIN = 0.08  # of the sheet box's longer side, each way: a hand moves a sheet ~3-8 working px a frame
TRACK_MIN_MARGIN = 5  # px of the resolution searched
TRACK_AREA_CHANGE = 0.3  # the region's area may grow or shrink by this factor between frames
TRACK_MAX_SHIFT = 0.3  # of the sheet's shorter side: how far its box centre may move between frames
FULL_SEARCH_EVERY = 30  # frames: the whole frame is searched at least this often (a second at 30 fps)
NO_SHEET_PATIENCE = 4  # frames without anything sheet-like before the whole frame is first screened at quarter
#                        resolution; it is still searched at the working resolution every this many frames


def _otsu_level(hist: np.ndarray, lo: int, hi: int) -> int | None:
    """Otsu's threshold over grey levels [lo, hi): the level that best splits that part of the histogram."""
    counts = hist[lo:hi]
    total = counts.sum()
    if total <= 0 or hi - lo < 2:
        return None
    levels = np.arange(lo, hi, dtype=np.float64)
    weight_low = np.cumsum(counts)
    mass_low = np.cumsum(counts * levels)
    weight_high = total - weight_low
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = mass_low / weight_low
        mean_high = (mass_low[-1] - mass_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    return lo + int(np.argmax(between)) + 1  # pixels >= level are the bright class


# -- Numba kernels: one pass over a crop's pixels where NumPy would make several (and OpenCV's
# connectedComponentsWithStats costs ~6 ns a pixel here, ten times its labelling alone) -----------------------
@njit(cache=True, nogil=True)
def canny_edges(image, low, high, dx, dy, magnitude, stack, edges):
    """cv2.Canny(image, low, high, edges) -- 3x3 Sobel with replicated borders, L1 gradient magnitude,
    non-maximum suppression in four directions (OpenCV's fixed-point tan 22.5), 8-connected hysteresis -- in one
    thread: OpenCV splits even a small window's Canny across its threads, which costs more than the work here
    (and takes the core the video decoder runs on). dx, dy, magnitude (int32) and stack (int32, image.size) are
    scratch; edges: 255 on an edge, else 0."""
    height, width = image.shape
    column_sum = np.empty(width, np.int32)
    column_diff = np.empty(width, np.int32)
    for y in range(height):
        ym = max(y - 1, 0)
        yp = min(y + 1, height - 1)
        for x in range(width):
            up = np.int32(image[ym, x])
            down = np.int32(image[yp, x])
            column_sum[x] = up + 2 * np.int32(image[y, x]) + down
            column_diff[x] = down - up
        for x in range(1, width - 1):  # no index clamping inside a row: it vectorises
            gx = column_sum[x + 1] - column_sum[x - 1]
            gy = column_diff[x - 1] + 2 * column_diff[x] + column_diff[x + 1]
            dx[y, x] = gx
            dy[y, x] = gy
            magnitude[y, x] = abs(gx) + abs(gy)
        for x in (0, width - 1):
            xm = max(x - 1, 0)
            xp = min(x + 1, width - 1)
            gx = column_sum[xp] - column_sum[xm]
            gy = column_diff[xm] + 2 * column_diff[x] + column_diff[xp]
            dx[y, x] = gx
            dy[y, x] = gy
            magnitude[y, x] = abs(gx) + abs(gy)
    top = 0
    for y in range(height):
        for x in range(width):
            edges[y, x] = 0
        for x in range(width):
            m = magnitude[y, x]
            if m <= low:
                continue
            ax = abs(dx[y, x])
            ay = abs(dy[y, x])
            tg22x = ax * 13573  # tan(22.5 degrees) in 15-bit fixed point, as OpenCV
            yy = ay << 15
            if yy < tg22x:
                m1 = magnitude[y, x - 1] if x > 0 else 0
                m2 = magnitude[y, x + 1] if x + 1 < width else 0
                is_max = m > m1 and m >= m2
            else:
                tg67x = tg22x + ((ax + ax) << 15)
                if yy > tg67x:
                    m1 = magnitude[y - 1, x] if y > 0 else 0
                    m2 = magnitude[y + 1, x] if y + 1 < height else 0
                    is_max = m > m1 and m >= m2
                else:
                    s = -1 if (dx[y, x] ^ dy[y, x]) < 0 else 1
                    m1 = magnitude[y - 1, x - s] if y > 0 and 0 <= x - s < width else 0
                    m2 = magnitude[y + 1, x + s] if y + 1 < height and 0 <= x + s < width else 0
                    is_max = m > m1 and m > m2
            if not is_max:
                continue
            if m > high:
                edges[y, x] = 255
                stack[top] = y * width + x
                top += 1
            else:
                edges[y, x] = 1  # weak: an edge only where connected to a strong one
    while top > 0:  # hysteresis: strong edges grow through 8-connected weak ones
        top -= 1
        p = stack[top]
        y = p // width
        x = p - y * width
        for ny in range(max(y - 1, 0), min(y + 2, height)):
            for nx in range(max(x - 1, 0), min(x + 2, width)):
                if edges[ny, nx] == 1:
                    edges[ny, nx] = 255
                    stack[top] = ny * width + nx
                    top += 1
    for y in range(height):
        for x in range(width):
            if edges[y, x] == 1:
                edges[y, x] = 0


@njit(cache=True, nogil=True)
def ink_mask(pixels, paper, region, ink_ratio, ink):
    """ink = 255 where `region` is set and pixel < round(ink_ratio * paper) (rounded and saturated as
    cv2.convertScaleAbs makes the threshold image), else 0."""
    height, width = pixels.shape
    for y in range(height):
        for x in range(width):
            level = min(255, int(ink_ratio * paper[y, x] + 0.5))
            ink[y, x] = 255 if region[y, x] != 0 and pixels[y, x] < level else 0


@njit(cache=True, nogil=True)
def component_stats(labels, hull, region, band, stats, centroid_sums):
    """Per component of `labels` (0 = background): stats[k] = (x0, y0, x1, y1, area, touching) with x1, y1
    exclusive; centroid_sums[k] = (sum x, sum y). `stats` and `centroid_sums` are zeroed by the caller, with
    stats[:, 0:2] set to the crop's (width, height).

    touching = 1 when any pixel of the component lies in the hull's border band -- outside the hull eroded by a
    (2 band + 1)^2 square -- or on the rim of `region` -- outside it eroded by 3x3 -- with pixels beyond the
    crop counting as set, exactly as cv2.erode's default border does. The hull is convex, so each of its rows is
    one run of pixels and the erosion is a test of two per-row bounds."""
    height, width = labels.shape
    first = np.empty(height, np.int64)
    last = np.empty(height, np.int64)
    for y in range(height):
        first[y], last[y] = width, -1
        for x in range(width):
            if hull[y, x] != 0:
                if first[y] == width:
                    first[y] = x
                last[y] = x
    for y in range(height):
        # The band square's rows: its pixels must all be in the hull, whose rows span [first, last].
        left_bound, right_bound = 0, width - 1
        for r in range(max(0, y - band), min(height, y + band + 1)):
            left_bound = max(left_bound, first[r])
            right_bound = min(right_bound, last[r])
        for x in range(width):
            k = labels[y, x]
            if k == 0:
                continue
            if x < stats[k, 0]:
                stats[k, 0] = x
            if y < stats[k, 1]:
                stats[k, 1] = y
            if x + 1 > stats[k, 2]:
                stats[k, 2] = x + 1
            if y + 1 > stats[k, 3]:
                stats[k, 3] = y + 1
            stats[k, 4] += 1
            centroid_sums[k, 0] += x
            centroid_sums[k, 1] += y
            if stats[k, 5] != 0:
                continue
            if left_bound > max(0, x - band) or right_bound < min(width - 1, x + band):
                stats[k, 5] = 1
                continue
            for ny in range(max(0, y - 1), min(height, y + 2)):
                for nx in range(max(0, x - 1), min(width, x + 2)):
                    if region[ny, nx] == 0:
                        stats[k, 5] = 1


@njit(cache=True, nogil=True)
def chosen_mask(labels, chosen, keep):
    """keep[y, x] = 1 where labels[y, x] is a chosen component (chosen: a 0/1 flag per label), else 0."""
    height, width = labels.shape
    for y in range(height):
        for x in range(width):
            keep[y, x] = chosen[labels[y, x]]


@njit(cache=True, nogil=True)
def ink_darkness(pixels, paper, keep, darkness):
    """darkness = max(0, 1 - pixel / paper) where keep, else 0 (paper floored at 1)."""
    height, width = pixels.shape
    for y in range(height):
        for x in range(width):
            if keep[y, x] == 0:
                darkness[y, x] = 0.0
            else:
                value = 1.0 - np.float32(pixels[y, x]) / np.float32(max(paper[y, x], 1))
                darkness[y, x] = value if value > 0.0 else 0.0


@njit(cache=True, nogil=True)
def select_digit(stats, centroid_sums, min_area, centre_x, centre_y, near_scale, fragment_reach, min_fragment_share,
                 chosen):
    """The digit's components among those `component_stats` measured: the largest component near the sheet's
    centre (area / (1 + (distance / near_scale)^2) largest; touching ones and those under `min_area` never), plus
    the fragments big enough (>= min_fragment_share of its area) whose box is within fragment_reach x its larger
    side of its box. Sets chosen[k] = 1 for them; returns (x0, y0, x1, y1, ink_area), x0 = -1 when none."""
    count = stats.shape[0]
    main = -1
    best = -1.0
    for k in range(1, count):
        if stats[k, 5] != 0 or stats[k, 4] < min_area:
            continue
        dx = centroid_sums[k, 0] / stats[k, 4] - centre_x
        dy = centroid_sums[k, 1] / stats[k, 4] - centre_y
        distance2 = (dx * dx + dy * dy) / (near_scale * near_scale)
        score = stats[k, 4] / (1.0 + distance2)
        if score > best:
            best = score
            main = k
    if main < 0:
        return -1, -1, -1, -1, 0
    mx0, my0, mx1, my1 = stats[main, 0], stats[main, 1], stats[main, 2], stats[main, 3]
    reach = fragment_reach * max(mx1 - mx0, my1 - my0)
    x0, y0, x1, y1, ink_area = mx0, my0, mx1, my1, 0
    for k in range(1, count):
        if stats[k, 5] != 0 or stats[k, 4] < min_area:
            continue
        if k != main:
            if stats[k, 4] < min_fragment_share * stats[main, 4]:
                continue
            gap_x = max(0, max(stats[k, 0], mx0) - min(stats[k, 2], mx1))
            gap_y = max(0, max(stats[k, 1], my0) - min(stats[k, 3], my1))
            if gap_x > reach or gap_y > reach:
                continue
        chosen[k] = 1
        x0, y0 = min(x0, stats[k, 0]), min(y0, stats[k, 1])
        x1, y1 = max(x1, stats[k, 2]), max(y1, stats[k, 3])
        ink_area += stats[k, 4]
    return x0, y0, x1, y1, ink_area


@njit(cache=True, nogil=True)
def place_mnist(patch, saturated_share, stroke_floor, centre, strokes, out):
    """Normalise the digit's darkness `patch` (already scaled into the 20x20 box) the way MNIST's strokes look
    and place it into the 28x28 `out` with its centre of mass at (centre, centre), an integer shift.

    The level reached by the top `saturated_share` of the stroke pixels (those above a tenth of the darkest; the
    linear-interpolated quantile, as np.quantile) becomes 255; darkness below stroke_floor x that level is paper
    grain and becomes 0. `patch` is normalised in place; `strokes` is scratch of at least patch.size floats.
    Returns False (out untouched) when there are no strokes or the placed patch would miss the field."""
    height, width = patch.shape
    darkest = np.float32(0.0)
    for y in range(height):
        for x in range(width):
            darkest = max(darkest, patch[y, x])
    count = 0
    for y in range(height):
        for x in range(width):
            if patch[y, x] > 0.1 * darkest:
                strokes[count] = patch[y, x]
                count += 1
    if count == 0:
        return False
    ordered = np.sort(strokes[:count])
    position = (1.0 - saturated_share) * (count - 1)
    below = int(np.floor(position))
    above = min(below + 1, count - 1)
    reference = ordered[below] + (position - below) * (ordered[above] - ordered[below])
    if reference <= 0:
        return False
    floor = stroke_floor * reference
    gain = 255.0 / (reference - floor)
    total = 0.0
    sum_x = 0.0
    sum_y = 0.0
    for y in range(height):
        for x in range(width):
            value = min(max((patch[y, x] - floor) * gain, 0.0), 255.0)
            patch[y, x] = value
            total += value
            sum_x += value * x
            sum_y += value * y
    if total <= 0:
        return False
    left = int(np.rint(centre - sum_x / total))
    top = int(np.rint(centre - sum_y / total))
    size = out.shape[0]
    dst_x0, dst_y0 = max(0, left), max(0, top)
    dst_x1, dst_y1 = min(size, left + width), min(size, top + height)
    if dst_x1 <= dst_x0 or dst_y1 <= dst_y0:
        return False
    out[:, :] = 0.0
    for y in range(dst_y0, dst_y1):
        for x in range(dst_x0, dst_x1):
            out[y, x] = patch[y - top, x - left]
    return True


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes, the form DigitFinder returns: how well two finds agree."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)


class DigitFinder:
    """Call with a uint8 grey frame and a preallocated float32 (28, 28) output; returns the digit's box
    (x, y, w, h) in frame pixels, or None when no digit is in view (then `out` is left unchanged).

    Work buffers are allocated for the frame size on the first call (and again only if the size changes).
    The finder keeps the sheet it last saw between calls (see the module docstring: tracking); a new frame
    size, or a sheet not found again, starts a full search."""

    def __init__(self) -> None:
        self._frame_shape: tuple[int, int] | None = None
        self.sheet_outline: np.ndarray | None = None  # the sheet the digit was found on (frame pixels, N x 2)

    @staticmethod
    def warm_up() -> bool:
        """Compile (or load from the Numba cache) every kernel the finder uses, so the cost does not land on the
        first frames of a stream (~3 s with an empty cache). Runs a throwaway finder on a drawn sheet with a digit,
        twice (full search, then tracking); returns whether it found the digit, i.e. reached every kernel."""
        frame = np.full((480, 640), 60, np.uint8)
        cv2.rectangle(frame, (200, 120), (440, 380), 230, -1)
        cv2.ellipse(frame, (320, 250), (30, 50), 0, 0, 360, 40, 12)
        finder, out = DigitFinder(), np.zeros((28, 28), np.float32)
        return finder(frame, out) is not None and finder(frame, out) is not None

    # -- buffers -----------------------------------------------------------------------------------------
    def _allocate(self, height: int, width: int) -> None:
        self._frame_shape = (height, width)
        self._work_w = max(16, int(round(width * WORK_SCALE)))
        self._work_h = max(16, int(round(height * WORK_SCALE)))
        self._to_frame_x, self._to_frame_y = width / self._work_w, height / self._work_h
        self._to_frame = np.array([self._to_frame_x, self._to_frame_y], np.float32)
        shape = (self._work_h, self._work_w)
        self._half = _Resolution(self._work_h, self._work_w, 5, SHEET_NECK, CANNY_LOW, CANNY_HIGH, (1.0, 1.0),
                                 cv2.CHAIN_APPROX_NONE)
        # Half the working resolution (a quarter of the frame's): tracking the sheet, finding the ink.
        quarter_h, quarter_w = max(8, self._work_h // 2), max(8, self._work_w // 2)
        self._quarter = _Resolution(quarter_h, quarter_w, 3, SHEET_NECK // 2 | 1, QUARTER_CANNY_LOW, QUARTER_CANNY_HIGH,
                                    (self._work_w / quarter_w, self._work_h / quarter_h), cv2.CHAIN_APPROX_SIMPLE)
        self._small, self._blurred = self._half.image, self._half.blurred
        self._edges, self._regions = self._half.edges, self._half.regions
        self._sheet_mask = np.zeros(shape, np.uint8)
        # Ink-step buffers: views of their top-left corner serve each sheet's crop.
        self._paper_max = np.empty(shape, np.uint8)
        self._paper = np.empty(shape, np.uint8)
        self._ink = np.empty(shape, np.uint8)
        self._hull = np.empty(shape, np.uint8)
        self._labels = np.empty(shape, np.int32)
        self._keep = np.empty(shape, np.uint8)
        self._keep_wide = np.empty(shape, np.uint8)
        self._keep_work = np.empty(shape, np.uint8)
        self._keep_work_wide = np.empty(shape, np.uint8)
        self._ink_work = np.empty(shape, np.uint8)
        self._paper_work = np.empty(shape, np.uint8)
        self._darkness = np.empty(shape, np.float32)
        self._patch = np.empty((MNIST_BOX, MNIST_BOX), np.float32)
        self._strokes = np.empty(MNIST_BOX * MNIST_BOX, np.float32)
        self._barrier_kernel = np.ones((3, 3), np.uint8)
        self._rect_kernels: dict[int, np.ndarray] = {}
        self._track: _Track | None = None
        self._exact_halves = (width == 2 * self._work_w and height == 2 * self._work_h
                              and self._work_w == 2 * quarter_w and self._work_h == 2 * quarter_h)
        self._whole_frame_shrunk = False
        self._bright_level = 128
        self._since_full_search = 0
        self._frames_without_sheet = 0  # consecutive frames whose search found nothing sheet-like

    def _rect_kernel(self, size: int) -> np.ndarray:
        kernel = self._rect_kernels.get(size)
        if kernel is None:
            kernel = self._rect_kernels[size] = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
        return kernel

    # -- the call ----------------------------------------------------------------------------------------
    def __call__(self, gray: np.ndarray, out: np.ndarray) -> tuple[int, int, int, int] | None:
        if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2:
            raise ValueError(f"DigitFinder expects a uint8 (H, W) grey frame, got {getattr(gray, 'dtype', type(gray))} "
                             f"{getattr(gray, 'shape', '')}")
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (MNIST_SIZE, MNIST_SIZE):
            raise ValueError("DigitFinder writes into a float32 (28, 28) array")
        if gray.shape != self._frame_shape:
            self._allocate(*gray.shape)
        self.sheet_outline = None
        self._whole_frame_shrunk = False  # this frame's copies are made below
        self._since_full_search += 1
        track = self._track
        if track is not None and self._since_full_search < FULL_SEARCH_EVERY:
            self._shrink(gray, track)
            sheet = self._find_tracked_sheet(track)
            if sheet is not None:
                box = self._digit_on(sheet, out)
                self._track = _Track.of(sheet, box is not None)
                # A sheet found again without a digit (a blank sheet held up) ends the search here until the
                # next full search: another sheet-like region in view (a window pane, a picture) is looked at
                # then, a few frames later.
                if box is not None or not track.had_digit:
                    return box
        if not self._whole_frame_shrunk:
            self._shrink(gray, None)
        if (track is None and self._frames_without_sheet >= NO_SHEET_PATIENCE
                and self._frames_without_sheet % NO_SHEET_PATIENCE != 0 and not self._sheet_like_at_quarter()):
            # Nothing sheet-like in view for a while (the bare room), nor now at a quarter of the resolution:
            # the working-resolution search is left to every NO_SHEET_PATIENCE-th frame.
            self._frames_without_sheet += 1
            return None
        return self._full_search(out)

    def _sheet_like_at_quarter(self) -> bool:
        """Whether any region of the whole quarter-resolution frame passes the sheet tests."""
        quarter = self._quarter
        min_area = MIN_SHEET_AREA * quarter.width * quarter.height
        for outline in self._region_outlines(quarter, 0, 0, quarter.width, quarter.height):
            _, _, w, h = cv2.boundingRect(outline)
            if w * h >= min_area and cv2.contourArea(outline) >= min_area and self._as_sheet(outline, quarter):
                return True
        return False

    def _shrink(self, gray: np.ndarray, track: _Track | None) -> None:
        """The working and quarter-resolution copies of the frame: all of it, or (tracking, when both halvings
        are exact so a part shrinks exactly as the whole would) only the windows the tracked sheet is looked
        for in -- most of a frame is room, and reading it is a good part of the cost."""
        quarter = self._quarter
        if track is None or not self._exact_halves:
            cv2.resize(gray, (self._work_w, self._work_h), dst=self._small, interpolation=cv2.INTER_AREA)
            cv2.resize(self._small, (quarter.width, quarter.height), dst=quarter.image, interpolation=cv2.INTER_AREA)
            self._whole_frame_shrunk = True
            return
        qx0, qy0, qx1, qy1 = self._window(track, quarter)
        hx0, hy0, hx1, hy1 = self._window(track, self._half)
        x0, y0 = min(2 * qx0, hx0) & ~1, min(2 * qy0, hy0) & ~1  # even: whole quarter pixels
        x1, y1 = min(self._work_w, (max(2 * qx1, hx1) + 1) & ~1), min(self._work_h, (max(2 * qy1, hy1) + 1) & ~1)
        cv2.resize(gray[2 * y0:2 * y1, 2 * x0:2 * x1], (x1 - x0, y1 - y0), dst=self._small[y0:y1, x0:x1],
                   interpolation=cv2.INTER_AREA)
        cv2.resize(self._small[y0:y1, x0:x1], ((x1 - x0) // 2, (y1 - y0) // 2),
                   dst=quarter.image[y0 // 2:y1 // 2, x0 // 2:x1 // 2], interpolation=cv2.INTER_AREA)
        self._whole_frame_shrunk = False

    def _full_search(self, out: np.ndarray) -> tuple[int, int, int, int] | None:
        """Every sheet-like region is searched for a digit until one is found: a window pane or a picture on the
        wall can look like a sheet too, but it carries no digit. The sheet with the digit, else the largest
        sheet-like region, is tracked in the next frames."""
        self._since_full_search = 0
        self._track = None
        self._frames_without_sheet += 1  # until a sheet-like region turns up below
        for sheet in self._find_sheets():
            self._frames_without_sheet = 0
            box = self._digit_on(sheet, out)
            if box is not None:
                self._track = _Track.of(sheet, True)
                return box
            if self._track is None:
                self._track = _Track.of(sheet, False)
        return None

    def _digit_on(self, sheet: _Sheet, out: np.ndarray) -> tuple[int, int, int, int] | None:
        """Steps 2-4 on a sheet: the ink at a quarter of the frame's resolution, the digit's strokes read at the
        working resolution (see the module docstring)."""
        quarter = self._quarter
        if sheet.res is quarter:
            digit = self._find_digit(sheet.outline, sheet.short_side, sheet.hull, sheet.mask)
        else:  # a working-resolution outline: pixel 2i or 2i+1 lies in quarter pixel i
            outline = (sheet.outline // quarter.scale.astype(np.int32)).astype(np.int32)
            digit = self._find_digit(outline, sheet.short_side / float(quarter.scale[0]))
        if digit is None or not self._write_mnist(digit[0], out):
            return None
        to_frame = self._to_frame * sheet.res.scale
        self.sheet_outline = (sheet.outline.reshape(-1, 2) * to_frame).astype(np.float32)
        return self._frame_box(digit[1])

    def _frame_box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in working pixels -> the frame pixels it covers, clipped to the frame."""
        x, y, w, h = box
        height, width = self._frame_shape
        x0, y0 = int(math.floor(x * self._to_frame_x)), int(math.floor(y * self._to_frame_y))
        x1 = min(width, int(math.ceil((x + w) * self._to_frame_x)))
        y1 = min(height, int(math.ceil((y + h) * self._to_frame_y)))
        return x0, y0, x1 - x0, y1 - y0

    # -- step 1: the sheet -------------------------------------------------------------------------------
    @staticmethod
    def _region_outlines(res: _Resolution, x0: int, y0: int, x1: int, y1: int) -> list[np.ndarray]:
        """Outer outlines (in `res` pixels) of the edge-bounded regions of the window [x0, x1) x [y0, y1) of
        `res`'s image. A region's holes, such as the digit on the sheet, are left out."""
        small, blurred = res.image[y0:y1, x0:x1], res.blurred[y0:y1, x0:x1]
        edges, regions = res.edges[y0:y1, x0:x1], res.regions[y0:y1, x0:x1]
        cv2.GaussianBlur(small, res.blur, 0, dst=blurred)
        if x1 - x0 == res.width and y1 - y0 == res.height:
            cv2.Canny(blurred, res.canny_low, res.canny_high, edges=edges)
        else:  # a window: the same edges, in this thread
            size = (y1 - y0) * (x1 - x0)
            scratch = [buffer[:size].reshape(y1 - y0, x1 - x0) for buffer in res.gradient_scratch]
            canny_edges(blurred, res.canny_low, res.canny_high, *scratch, res.edge_stack[:size], edges)
        cv2.dilate(edges, res.barrier_kernel, dst=regions)
        cv2.bitwise_not(regions, dst=regions)
        # Two-level hierarchy: top-level contours are the outer outlines of the regions.
        contours, hierarchy = cv2.findContours(regions, cv2.RETR_CCOMP, res.chain, offset=(x0, y0))
        if hierarchy is None:
            return []
        return [contours[index] for index in np.nonzero(hierarchy[0][:, 3] < 0)[0]]

    def _find_sheets(self) -> Iterator[_Sheet]:
        """Sheet-like regions of the whole frame (at the working resolution), largest first, lazily (the caller
        stops at the first with a digit on it).

        A region is a connected area bounded by edges (Canny); the paper's outline is an edge all round (the
        thumbs only notch it), while a soft shadow or a light gradient across it makes none, so the paper
        stays one region however unevenly it is lit. Sheet-like: large, brighter than the frame's Otsu
        level, solid, close to a (perspective) rectangle, not running out along the frame's edge."""
        outlines = self._region_outlines(self._half, 0, 0, self._work_w, self._work_h)
        min_area = MIN_SHEET_AREA * self._work_w * self._work_h
        big = []
        for contour in outlines:
            if len(contour) * len(contour) >= 4 * min_area:  # a region this big has a long outline
                area = cv2.contourArea(contour)
                if area >= min_area:
                    big.append((area, contour))
        if not big:
            return
        big.sort(key=lambda item: -item[0])
        hist = cv2.calcHist([self._blurred], [0], None, [256], [0, 256]).ravel().astype(np.float64)
        self._bright_level = _otsu_level(hist, 0, 256) or 128
        for _, outline in big[:MAX_SHEET_CANDIDATES]:
            sheet = self._as_sheet(outline, self._half)
            if sheet is not None:
                yield sheet

    def _find_tracked_sheet(self, track: _Track) -> _Sheet | None:
        """The tracked sheet found again in this frame, or None. Only a window around where it was is searched,
        with the same edges, regions and sheet tests as the full search, so nothing is carried over from the
        last frame but where to look (and the frame's brightness level): a region is the sheet again only if it
        lies wholly inside the window -- not cut by the window's edge, where the full frame might join it to
        more -- and has about the sheet's size and place. First at a quarter of the frame's resolution (a
        sixteenth of its pixels); where that merges the sheet with the wall through a faint stretch of its edge
        or pinches it between the digit and a thumb, at the working resolution."""
        sheet = self._find_in_window(track, self._quarter)
        return sheet if sheet is not None else self._find_in_window(track, self._half)

    @staticmethod
    def _window(track: _Track, res: _Resolution) -> tuple[int, int, int, int]:
        """Where to look for the tracked sheet in `res`'s image: (x0, y0, x1, y1), x1 and y1 exclusive."""
        to_x, to_y = res.scale
        x, y, w, h = track.box[0] / to_x, track.box[1] / to_y, track.box[2] / to_x, track.box[3] / to_y
        margin = max(TRACK_MIN_MARGIN, TRACK_MARGIN * max(w, h))
        x0, y0 = max(0, int(x - margin)), max(0, int(y - margin))
        x1, y1 = min(res.width, int(math.ceil(x + w + margin))), min(res.height, int(math.ceil(y + h + margin)))
        return x0, y0, x1, y1

    def _find_in_window(self, track: _Track, res: _Resolution) -> _Sheet | None:
        """The tracked sheet in a window of `res`'s image around its last place, or None."""
        to_x, to_y = res.scale
        x, y, w, h = track.box[0] / to_x, track.box[1] / to_y, track.box[2] / to_x, track.box[3] / to_y
        x0, y0, x1, y1 = self._window(track, res)
        inner_x0 = x0 if x0 > 0 else -1  # a window edge on the frame's edge cuts nothing
        inner_y0 = y0 if y0 > 0 else -1
        inner_x1 = x1 - 1 if x1 < res.width else res.width
        inner_y1 = y1 - 1 if y1 < res.height else res.height
        area_scale = to_x * to_y
        min_area = max(MIN_SHEET_AREA * res.width * res.height,
                       track.area / area_scale / (1.0 + TRACK_AREA_CHANGE))
        max_area = track.area / area_scale * (1.0 + TRACK_AREA_CHANGE)
        for contour in self._region_outlines(res, x0, y0, x1, y1):
            cx, cy, cw, ch = cv2.boundingRect(contour)
            if (cw * ch < min_area or cx <= inner_x0 or cy <= inner_y0
                    or cx + cw - 1 >= inner_x1 or cy + ch - 1 >= inner_y1):
                continue
            area = cv2.contourArea(contour)
            if not min_area <= area <= max_area:
                continue
            shift = math.hypot(cx + cw / 2 - (x + w / 2), cy + ch / 2 - (y + h / 2))
            if shift > TRACK_MAX_SHIFT * track.short_side / to_x:
                continue
            sheet = self._as_sheet(contour, res)
            if sheet is not None:
                return sheet
        return None

    def _as_sheet(self, outline: np.ndarray, res: _Resolution) -> _Sheet | None:
        """The sheet, if the region is sheet-like, else None. A region that leaks out through a
        gap in a faint edge (a lamp or window as bright as the paper just behind a corner) is opened to cut the
        neck, without cutting the paper between the digit and a thumb."""
        shape = self._sheet_shape(outline)
        if shape is not None and self._runs_along_frame_edge(outline, res):
            return None
        x, y, w, h = cv2.boundingRect(outline)
        member = np.zeros((h, w), np.uint8)
        cv2.drawContours(member, [outline], -1, 255, thickness=cv2.FILLED, offset=(-x, -y))
        if cv2.mean(res.blurred[y:y + h, x:x + w], mask=member)[0] < self._bright_level:
            return None
        if shape is not None:
            return _Sheet(outline, *shape, member, res)
        # Opening the filled region (the digit, a hole, is filled) cuts such necks.
        cv2.morphologyEx(member, cv2.MORPH_OPEN, res.neck_kernel, dst=member)
        contours_open, _ = cv2.findContours(member, cv2.RETR_EXTERNAL, res.chain, offset=(x, y))
        if not contours_open:
            return None
        outline = max(contours_open, key=cv2.contourArea)
        shape = self._sheet_shape(outline)
        if shape is None or self._runs_along_frame_edge(outline, res):
            return None
        return _Sheet(outline, *shape, None, res)

    @staticmethod
    def _runs_along_frame_edge(outline: np.ndarray, res: _Resolution) -> bool:
        """A held sheet is seen whole; a region running along the frame's edge is the wall or the desk."""
        x, y, w, h = cv2.boundingRect(outline)
        if x > 0 and y > 0 and x + w < res.width and y + h < res.height:
            return False
        points = outline.reshape(-1, 2)
        if res.chain == cv2.CHAIN_APPROX_NONE:  # one point a pixel: the share of points is the share of length
            on_edge = np.count_nonzero((points[:, 0] == 0) | (points[:, 1] == 0)
                                       | (points[:, 0] == res.width - 1) | (points[:, 1] == res.height - 1))
            return on_edge > MAX_SHEET_EDGE_SHARE * len(points)
        # Straight runs are single segments: the length of the segments lying on an edge of the frame.
        following = np.roll(points, -1, axis=0)
        on_edge = np.zeros(len(points), bool)
        for axis, last in ((0, res.width - 1), (1, res.height - 1)):
            for line in (0, last):
                on_edge |= (points[:, axis] == line) & (following[:, axis] == line)
        lengths = np.abs(following - points).sum(axis=1)  # on an edge a segment is horizontal or vertical
        return lengths[on_edge].sum() > MAX_SHEET_EDGE_SHARE * cv2.arcLength(outline, True)

    @staticmethod
    def _sheet_shape(outline: np.ndarray) -> tuple[float, np.ndarray] | None:
        """(the sheet's shorter side, its convex hull) if `outline` is sheet-shaped (solid, close to a
        perspective rectangle, not too elongated), else None."""
        area = cv2.contourArea(outline)
        hull = cv2.convexHull(outline)
        hull_area = cv2.contourArea(hull)
        if hull_area <= 0 or area / hull_area < MIN_SHEET_SOLIDITY:
            return None
        (_, _), (rect_w, rect_h), _ = cv2.minAreaRect(hull)
        short, long = min(rect_w, rect_h), max(rect_w, rect_h)
        if short <= 0 or long / short > MAX_SHEET_ELONGATION or hull_area / (rect_w * rect_h) < MIN_SHEET_RECT_FILL:
            return None
        return short, hull

    # -- steps 2 and 3: ink and the digit ----------------------------------------------------------------
    def _find_digit(self, outline: np.ndarray, short_side: float, hull_points: np.ndarray | None = None,
                    filled: np.ndarray | None = None):
        """(darkness patch, its box in working pixels) of the digit on the sheet `outline` (in quarter-resolution
        pixels, where the ink is looked for), or None."""
        sx, sy, sw, sh = cv2.boundingRect(outline)
        crop = self._quarter.image[sy:sy + sh, sx:sx + sw]
        # The filled outline, not its hull: the notches the thumbs cut stay outside, so whatever the thumbs
        # leave on the paper reaches the border band and is dropped, while the digit (a hole) stays inside.
        if filled is not None:  # drawn already, over the outline's bounding box, when the sheet was tested
            mask = filled
        else:
            mask = self._sheet_mask[:sh, :sw]
            mask.fill(0)
            cv2.drawContours(mask, [outline], -1, 255, thickness=cv2.FILLED, offset=(-sx, -sy))
        sheet_area = float(cv2.countNonZero(mask))
        if sheet_area <= 0:
            return None
        # Paper brightness around each pixel: a max filter wider than a stroke, smoothed.
        window = max(5, int(BACKGROUND_WINDOW * short_side)) | 1
        paper_max, paper = self._paper_max[:sh, :sw], self._paper[:sh, :sw]
        cv2.dilate(crop, self._rect_kernel(window), dst=paper_max)
        cv2.blur(paper_max, (window, window), dst=paper)
        # Ink is looked for in the sheet's convex hull, so that what the thumbs put on the paper is seen whole.
        hull = self._hull[:sh, :sw]
        hull.fill(0)
        if hull_points is None:
            hull_points = cv2.convexHull(outline)
        cv2.fillConvexPoly(hull, hull_points.reshape(-1, 2) - (sx, sy), 255)
        ink = self._ink[:sh, :sw]
        ink_mask(crop, paper, hull, INK_RATIO, ink)
        labels = self._labels[:sh, :sw]
        count, _ = cv2.connectedComponents(ink, labels, 8, cv2.CV_32S)
        if count <= 1:
            return None
        # Ink reaching in from outside the sheet is not written on it: components with pixels in the hull's
        # border band, or in what of the hull is not the sheet's own region (the notches the thumbs cut, plus
        # the region's one-pixel rim) are fingers, the sheet's edge, the room. A digit only needs to keep a
        # pixel clear of a thumb, not a whole band.
        band_px = max(2, int(round(BORDER_BAND * short_side)))
        stats = np.zeros((count, 6), np.int64)
        stats[:, 0], stats[:, 1] = sw, sh
        centroid_sums = np.zeros((count, 2), np.float64)
        component_stats(labels, hull, mask, band_px, stats, centroid_sums)
        moments = cv2.moments(outline)  # the polygon's: the same centre as the filled mask's, far cheaper
        if moments["m00"] <= 0:
            return None
        flags = np.zeros(count, np.uint8)
        x0, y0, x1, y1, ink_area = select_digit(
            stats, centroid_sums, max(4.0, MIN_COMPONENT_AREA * sheet_area), moments["m10"] / moments["m00"] - sx,
            moments["m01"] / moments["m00"] - sy, 0.35 * short_side, FRAGMENT_REACH, MIN_FRAGMENT_AREA, flags)
        if x0 < 0:
            return None
        w, h = x1 - x0, y1 - y0
        larger, smaller = max(w, h), min(w, h)
        if (larger < max(MIN_DIGIT_PIXELS, MIN_DIGIT_SIZE * short_side) or larger > MAX_DIGIT_SIZE * max(sw, sh)
                or w > MAX_DIGIT_WIDTH_RATIO * h
                or (smaller > 0.35 * larger and ink_area / (w * h) > MAX_BLOB_FILL)):
            return None
        # Darkness of the digit's own strokes (other ink in its box is masked out), with a pixel of margin so
        # the anti-aliased stroke edges are kept -- read at the working resolution: from a quarter-resolution
        # patch the strokes lose their shape (on the clean-frame test an "8" correlated 0.77 with its MNIST
        # original instead of 0.94).
        x0m, y0m = max(0, x0 - 1), max(0, y0 - 1)
        x1m, y1m = min(sw, x1 + 1), min(sh, y1 + 1)
        keep, footprint = self._keep[:y1m - y0m, :x1m - x0m], self._keep_wide[:y1m - y0m, :x1m - x0m]
        chosen_mask(labels[y0m:y1m, x0m:x1m], flags, keep)
        cv2.dilate(keep, self._barrier_kernel, dst=footprint)
        # The chosen components' footprint (a quarter pixel of margin) at the working resolution; the ink there
        # is the digit's, found again at the working resolution with the same paper-relative threshold.
        to_x, to_y = self._quarter.scale
        wx0, wy0 = int((sx + x0m) * to_x), int((sy + y0m) * to_y)
        wx1, wy1 = min(self._work_w, int((sx + x1m) * to_x)), min(self._work_h, int((sy + y1m) * to_y))
        size = (wx1 - wx0, wy1 - wy0)
        footprint_work, ink_work = self._keep_work[:size[1], :size[0]], self._ink_work[:size[1], :size[0]]
        keep_wide = self._keep_work_wide[:size[1], :size[0]]
        cv2.resize(footprint, size, dst=footprint_work, interpolation=cv2.INTER_NEAREST)
        paper_work = self._paper_work[:size[1], :size[0]]
        cv2.resize(paper[y0m:y1m, x0m:x1m], size, dst=paper_work, interpolation=cv2.INTER_LINEAR)
        pixels = self._small[wy0:wy1, wx0:wx1]
        # The same test as the quarter-resolution ink's; only zero / non-zero of ink_work is read below.
        ink_mask(pixels, paper_work, footprint_work, INK_RATIO, ink_work)
        cv2.dilate(ink_work, self._barrier_kernel, dst=keep_wide)
        bx, by, bw, bh = cv2.boundingRect(keep_wide)
        if bw == 0 or bh == 0:
            return None
        darkness = self._darkness[:bh, :bw]
        ink_darkness(pixels[by:by + bh, bx:bx + bw], paper_work[by:by + bh, bx:bx + bw],
                     keep_wide[by:by + bh, bx:bx + bw], darkness)
        return darkness, (wx0 + bx, wy0 + by, bw, bh)

    # -- step 4: the MNIST image -------------------------------------------------------------------------
    def _write_mnist(self, darkness: np.ndarray, out: np.ndarray) -> bool:
        h, w = darkness.shape
        scale = MNIST_BOX / max(w, h)
        new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        patch = self._patch[:new_h, :new_w]
        cv2.resize(darkness, (new_w, new_h), dst=patch, interpolation=cv2.INTER_AREA)
        return place_mnist(patch, SATURATED_SHARE, STROKE_FLOOR, MNIST_CENTRE, self._strokes, out)


class _Resolution:
    """A working copy of the frame at one scale and the buffers the sheet search uses on it."""

    def __init__(self, height: int, width: int, blur: int, neck: int, canny_low: float, canny_high: float,
                 scale: tuple[float, float], chain: int) -> None:
        self.height, self.width = height, width
        self.scale = np.array(scale)  # the size of one of its pixels in working pixels (x, y)
        self.canny_low, self.canny_high = canny_low, canny_high
        self.image = np.empty((height, width), np.uint8)
        self.blurred = np.empty((height, width), np.uint8)
        self.edges = np.empty((height, width), np.uint8)
        self.regions = np.empty((height, width), np.uint8)
        self.blur = (blur, blur)  # Gaussian kernel before Canny (5x5 working, 3x3 quarter: alike in frame px)
        self.neck_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (neck, neck))
        self.barrier_kernel = np.ones((3, 3), np.uint8)  # edges thickened to a closed barrier between regions
        self.chain = chain  # how findContours stores outlines: every pixel (NONE) or the corners (SIMPLE)
        self.gradient_scratch = [np.empty(height * width, np.int32) for _ in range(3)]  # dx, dy, magnitude
        self.edge_stack = np.empty(height * width, np.int32)


class _Track:
    """Where the last frame's sheet was (working pixels) and whether a digit was on it."""
    __slots__ = ("box", "area", "short_side", "had_digit")

    def __init__(self, box: tuple[int, int, int, int], area: float, short_side: float, had_digit: bool) -> None:
        self.box, self.area, self.short_side, self.had_digit = box, area, short_side, had_digit

    @classmethod
    def of(cls, sheet: _Sheet, had_digit: bool) -> _Track:
        """In working pixels, whatever the resolution the sheet was found at."""
        to_x, to_y = sheet.res.scale
        x, y, w, h = cv2.boundingRect(sheet.outline)
        box = (int(x * to_x), int(y * to_y), int(math.ceil(w * to_x)), int(math.ceil(h * to_y)))
        return cls(box, float(cv2.contourArea(sheet.outline)) * to_x * to_y, sheet.short_side * to_x, had_digit)


class _Sheet:
    """A sheet found in one frame: its outline, shorter side and convex hull in pixels of the resolution `res` it
    was found at, and the outline filled over its bounding box (None when not drawn as such)."""
    __slots__ = ("outline", "short_side", "hull", "mask", "res")

    def __init__(self, outline: np.ndarray, short_side: float, hull: np.ndarray, mask: np.ndarray | None,
                 res: _Resolution) -> None:
        self.outline, self.short_side, self.hull, self.mask, self.res = outline, short_side, hull, mask, res
