"""Find a handwritten digit on a sheet of paper held up to a camera and make an MNIST-style 28x28 image of it.

A webcam frame of a digit is mostly not the digit: the room behind the sheet, the sheet's edges, the fingers
holding it, shadows and uneven light. The finder works in four steps, all on a half-resolution copy of the frame
(a digit on a sheet that fills a useful part of the view is still 40+ pixels tall there, twice what MNIST needs):

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
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

# Tuning constants (fractions are of the sheet's size unless stated). Why each value:
WORK_SCALE = 0.5  # half resolution: 4x fewer pixels, digits still far larger than 20 px
CANNY_LOW, CANNY_HIGH = 20, 50  # on the blurred working frame: the paper's edge, not sensor noise
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
MIN_DIGIT_PIXELS = 12  # the digit's larger side in working pixels: below this there is nothing to read
MNIST_BOX = 20
MNIST_SIZE = 28
MNIST_CENTRE = 14.0  # MNIST's centres of mass sit at (14, 14) in pixel-index coordinates (measured on t10k)
SATURATED_SHARE = 0.40  # MNIST: ~40% of a digit's non-zero pixels are at (or next to) 255 (measured on t10k)
STROKE_FLOOR = 0.12  # darkness below this share of a stroke core's is paper grain, not ink


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


class DigitFinder:
    """Call with a uint8 grey frame and a preallocated float32 (28, 28) output; returns the digit's box
    (x, y, w, h) in frame pixels, or None when no digit is in view (then `out` is left unchanged).

    Work buffers are allocated for the frame size on the first call (and again only if the size changes)."""

    def __init__(self) -> None:
        self._frame_shape: tuple[int, int] | None = None
        self.sheet_outline: np.ndarray | None = None  # the sheet the digit was found on (frame pixels, N x 2)

    # -- buffers -----------------------------------------------------------------------------------------
    def _allocate(self, height: int, width: int) -> None:
        self._frame_shape = (height, width)
        self._work_w = max(16, int(round(width * WORK_SCALE)))
        self._work_h = max(16, int(round(height * WORK_SCALE)))
        self._to_frame_x, self._to_frame_y = width / self._work_w, height / self._work_h
        shape = (self._work_h, self._work_w)
        self._small = np.empty(shape, np.uint8)
        self._blurred = np.empty(shape, np.uint8)
        self._edges = np.empty(shape, np.uint8)
        self._regions = np.empty(shape, np.uint8)
        self._sheet_mask = np.zeros(shape, np.uint8)
        self._barrier_kernel = np.ones((3, 3), np.uint8)
        self._neck_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (SHEET_NECK, SHEET_NECK))

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
        cv2.resize(gray, (self._work_w, self._work_h), dst=self._small, interpolation=cv2.INTER_AREA)
        # Every sheet-like region is searched for a digit until one is found: a window pane or a picture on the
        # wall can look like a sheet too, but it carries no digit.
        for outline, short_side in self._find_sheets():
            digit = self._find_digit(outline, short_side)
            if digit is not None and self._write_mnist(digit[0], out):
                scale = np.array([self._to_frame_x, self._to_frame_y], np.float32)
                self.sheet_outline = outline.reshape(-1, 2).astype(np.float32) * scale
                return self._frame_box(digit[1])
        return None

    def _frame_box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in working pixels -> the frame pixels it covers, clipped to the frame."""
        x, y, w, h = box
        height, width = self._frame_shape
        x0, y0 = int(math.floor(x * self._to_frame_x)), int(math.floor(y * self._to_frame_y))
        x1 = min(width, int(math.ceil((x + w) * self._to_frame_x)))
        y1 = min(height, int(math.ceil((y + h) * self._to_frame_y)))
        return x0, y0, x1 - x0, y1 - y0

    # -- step 1: the sheet -------------------------------------------------------------------------------
    def _find_sheets(self) -> Iterator[tuple[np.ndarray, float]]:
        """Sheet-like regions, largest first, lazily (the caller stops at the first with a digit on it):
        (outline contour in working pixels, shorter side).

        A region is a connected area bounded by edges (Canny); the paper's outline is an edge all round (the
        thumbs only notch it), while a soft shadow or a light gradient across it makes none, so the paper
        stays one region however unevenly it is lit. Sheet-like: large, brighter than the frame's Otsu
        level, solid, close to a (perspective) rectangle, not running out along the frame's edge."""
        cv2.GaussianBlur(self._small, (5, 5), 0, dst=self._blurred)
        cv2.Canny(self._blurred, CANNY_LOW, CANNY_HIGH, edges=self._edges)
        cv2.dilate(self._edges, self._barrier_kernel, dst=self._regions)
        cv2.bitwise_not(self._regions, dst=self._regions)
        # Two-level hierarchy: top-level contours are the outer outlines of the regions (a region's holes, such
        # as the digit on the sheet, are the second level and are ignored here).
        contours, hierarchy = cv2.findContours(self._regions, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        if hierarchy is None:
            return
        min_area = MIN_SHEET_AREA * self._work_w * self._work_h
        outer = hierarchy[0][:, 3] < 0
        big = []
        for index in np.nonzero(outer)[0]:
            contour = contours[index]
            if len(contour) * len(contour) >= 4 * min_area:  # a region this big has a long outline
                area = cv2.contourArea(contour)
                if area >= min_area:
                    big.append((area, contour))
        if not big:
            return
        big.sort(key=lambda item: -item[0])
        hist = cv2.calcHist([self._blurred], [0], None, [256], [0, 256]).ravel().astype(np.float64)
        bright_level = _otsu_level(hist, 0, 256) or 128
        for _, outline in big[:MAX_SHEET_CANDIDATES]:
            short = self._sheet_shape(outline)
            if short is not None and self._runs_along_frame_edge(outline):
                continue
            x, y, w, h = cv2.boundingRect(outline)
            member = np.zeros((h, w), np.uint8)
            cv2.drawContours(member, [outline], -1, 255, thickness=cv2.FILLED, offset=(-x, -y))
            if cv2.mean(self._blurred[y:y + h, x:x + w], mask=member)[0] < bright_level:
                continue
            if short is None:
                # Where the paper's edge is faint (a lamp or window as bright as the paper just behind a corner)
                # the region leaks out through a narrow gap. Opening the filled region (the digit, a hole, is
                # filled) cuts such necks without cutting the paper between the digit and a thumb.
                cv2.morphologyEx(member, cv2.MORPH_OPEN, self._neck_kernel, dst=member)
                contours_open, _ = cv2.findContours(member, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(x, y))
                if not contours_open:
                    continue
                outline = max(contours_open, key=cv2.contourArea)
                short = self._sheet_shape(outline)
                if short is None or self._runs_along_frame_edge(outline):
                    continue
            yield outline, short

    def _runs_along_frame_edge(self, outline: np.ndarray) -> bool:
        """A held sheet is seen whole; a region running along the frame's edge is the wall or the desk."""
        points = outline.reshape(-1, 2)
        on_edge = np.count_nonzero((points[:, 0] == 0) | (points[:, 1] == 0)
                                   | (points[:, 0] == self._work_w - 1) | (points[:, 1] == self._work_h - 1))
        return on_edge > MAX_SHEET_EDGE_SHARE * len(points)

    @staticmethod
    def _sheet_shape(outline: np.ndarray) -> float | None:
        """The sheet's shorter side if `outline` is sheet-shaped (solid, close to a perspective rectangle, not
        too elongated), else None."""
        area = cv2.contourArea(outline)
        hull = cv2.convexHull(outline)
        hull_area = cv2.contourArea(hull)
        if hull_area <= 0 or area / hull_area < MIN_SHEET_SOLIDITY:
            return None
        (_, _), (rect_w, rect_h), _ = cv2.minAreaRect(hull)
        short, long = min(rect_w, rect_h), max(rect_w, rect_h)
        if short <= 0 or long / short > MAX_SHEET_ELONGATION or hull_area / (rect_w * rect_h) < MIN_SHEET_RECT_FILL:
            return None
        return short

    # -- steps 2 and 3: ink and the digit ----------------------------------------------------------------
    def _find_digit(self, outline: np.ndarray, short_side: float):
        sx, sy, sw, sh = cv2.boundingRect(outline)
        crop = self._small[sy:sy + sh, sx:sx + sw]
        mask = self._sheet_mask[sy:sy + sh, sx:sx + sw]
        mask[:] = 0
        # The filled outline, not its hull: the notches the thumbs cut stay outside, so whatever the thumbs
        # leave on the paper reaches the border band and is dropped, while the digit (a hole) stays inside.
        cv2.drawContours(mask, [outline], -1, 255, thickness=cv2.FILLED, offset=(-sx, -sy))
        sheet_area = float(cv2.countNonZero(mask))
        if sheet_area <= 0:
            return None
        # Paper brightness around each pixel: a max filter wider than a stroke, smoothed.
        window = max(5, int(BACKGROUND_WINDOW * short_side)) | 1
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (window, window))
        paper = cv2.dilate(crop, kernel)
        paper = cv2.blur(paper, (window, window))
        # Ink is looked for in the sheet's convex hull, so that what the thumbs put on the paper is seen whole.
        hull = np.zeros_like(mask)
        cv2.fillConvexPoly(hull, cv2.convexHull(outline).reshape(-1, 2) - (sx, sy), 255)
        ink = cv2.compare(crop, cv2.convertScaleAbs(paper, alpha=INK_RATIO), cv2.CMP_LT)
        cv2.bitwise_and(ink, hull, dst=ink)
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
        if count <= 1:
            return None
        # Ink reaching in from outside the sheet is not written on it: components with pixels in the hull's
        # border band, or in what of the hull is not the sheet's own region (the notches the thumbs cut, plus
        # the region's one-pixel rim) are fingers, the sheet's edge, the room. A digit only needs to keep a
        # pixel clear of a thumb, not a whole band.
        band_px = max(2, int(round(BORDER_BAND * short_side)))
        hull_core = cv2.erode(hull, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * band_px + 1, 2 * band_px + 1)))
        region_core = cv2.erode(mask, self._barrier_kernel)
        touching = np.zeros(count, bool)
        touching[labels[(ink > 0) & ((hull_core == 0) | (region_core == 0))]] = True
        areas = stats[:, cv2.CC_STAT_AREA]
        candidates = np.nonzero(~touching & (areas >= max(4.0, MIN_COMPONENT_AREA * sheet_area)))[0]
        candidates = candidates[candidates != 0]
        if candidates.size == 0:
            return None
        moments = cv2.moments(mask, binaryImage=True)
        centre = np.array([moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]])
        distance = np.linalg.norm(centroids[candidates] - centre, axis=1) / (0.35 * short_side)
        main = candidates[np.argmax(areas[candidates] / (1.0 + distance ** 2))]
        mx, my, mw, mh = stats[main, :4]
        reach = FRAGMENT_REACH * max(mw, mh)
        chosen = [main]
        for other in candidates:
            if other == main or areas[other] < MIN_FRAGMENT_AREA * areas[main]:
                continue
            ox, oy, ow, oh = stats[other, :4]
            gap_x = max(0, max(ox, mx) - min(ox + ow, mx + mw))
            gap_y = max(0, max(oy, my) - min(oy + oh, my + mh))
            if gap_x <= reach and gap_y <= reach:
                chosen.append(other)
        boxes = stats[chosen, :4]
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
        w, h = int(x1 - x0), int(y1 - y0)
        larger, smaller = max(w, h), min(w, h)
        ink_area = float(areas[chosen].sum())
        if (larger < max(MIN_DIGIT_PIXELS, MIN_DIGIT_SIZE * short_side) or larger > MAX_DIGIT_SIZE * max(sw, sh)
                or w > MAX_DIGIT_WIDTH_RATIO * h
                or (smaller > 0.35 * larger and ink_area / (w * h) > MAX_BLOB_FILL)):
            return None
        # Darkness of the digit's own strokes (other ink in its box is masked out), with a pixel of margin so
        # the anti-aliased stroke edges are kept.
        x0m, y0m = max(0, x0 - 1), max(0, y0 - 1)
        x1m, y1m = min(sw, x1 + 1), min(sh, y1 + 1)
        region_labels = labels[y0m:y1m, x0m:x1m]
        keep = np.isin(region_labels, chosen).astype(np.uint8)
        keep = cv2.dilate(keep, np.ones((3, 3), np.uint8))
        region = crop[y0m:y1m, x0m:x1m].astype(np.float32)
        region_paper = paper[y0m:y1m, x0m:x1m].astype(np.float32)
        darkness = (1.0 - region / np.maximum(region_paper, 1.0)) * keep
        np.maximum(darkness, 0.0, out=darkness)
        # Strip the margin back to the tight box of what was kept above the paper's own grain.
        return darkness, (sx + x0m, sy + y0m, x1m - x0m, y1m - y0m)

    # -- step 4: the MNIST image -------------------------------------------------------------------------
    @staticmethod
    def _write_mnist(darkness: np.ndarray, out: np.ndarray) -> bool:
        h, w = darkness.shape
        scale = MNIST_BOX / max(w, h)
        new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        patch = cv2.resize(darkness, (new_w, new_h), interpolation=cv2.INTER_AREA)
        stroke = patch[patch > 0.1 * float(patch.max())]
        if stroke.size == 0:
            return False
        reference = float(np.quantile(stroke, 1.0 - SATURATED_SHARE))
        if reference <= 0:
            return False
        # Paper grain and noise leave faint darkness around the strokes; MNIST's background is exactly 0.
        floor = STROKE_FLOOR * reference
        np.clip((patch - floor) * (255.0 / (reference - floor)), 0.0, 255.0, out=patch)
        total = float(patch.sum())
        ys, xs = np.indices(patch.shape)
        com_x, com_y = float((patch * xs).sum()) / total, float((patch * ys).sum()) / total
        left = int(round(MNIST_CENTRE - com_x))
        top = int(round(MNIST_CENTRE - com_y))
        # Place the patch at (left, top), clipped to the field (a lopsided digit's box can poke past an edge).
        dst_x0, dst_y0 = max(0, left), max(0, top)
        dst_x1, dst_y1 = min(MNIST_SIZE, left + new_w), min(MNIST_SIZE, top + new_h)
        if dst_x1 <= dst_x0 or dst_y1 <= dst_y0:
            return False
        out[:] = 0.0
        out[dst_y0:dst_y1, dst_x0:dst_x1] = patch[dst_y0 - top:dst_y1 - top, dst_x0 - left:dst_x1 - left]
        return True
