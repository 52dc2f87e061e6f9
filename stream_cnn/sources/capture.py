"""Frame sources over cv2.VideoCapture.

Two behaviours, because files and cameras fail users in opposite ways:

* ``FileSource`` delivers every frame of a file, in order, none skipped and none duplicated. A decode thread
  keeps a small queue full so decoding overlaps the consumer's work.
* ``LiveSource`` is for cameras, streams, and files replayed as if they were cameras. A capture thread reads as
  fast as the device delivers and keeps only the newest frame: a slow consumer sees the latest picture, never a
  stale buffered one, and every frame it never saw is counted as dropped. A frame identical to the previous one
  (a frozen driver re-delivering its last buffer) is not counted as new. When the device stops delivering, the
  thread retries with backoff for a bounded time and then ends the stream with a StreamInterrupted reason.

Both expose the same small interface: ``start()``, ``read(timeout) -> Frame | None`` (None = the stream ended),
``close()``, ``stop_reason`` (None, or the StreamInterrupted to raise once outputs are finalised) and counters.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from stream_cnn.errors import CameraNotFoundError, SourceError, StreamInterrupted
from stream_cnn.sources.handoff import BatchedHandoff

# Consecutive failed reads a file may have before we call it the end of what decodes. A corrupt packet costs
# one or two failed reads, after which FFmpeg resumes at the next decodable frame.
FILE_READ_RETRIES = 8
# Frames decoded ahead of the consumer for files: enough to hide decoder jitter, small enough to bound memory.
FILE_QUEUE_FRAMES = 8
# A consumer that caught up with the decoder is woken when this many frames are ready, not for each one.
FILE_WAKE_FRAMES = 4
# Pixel stride used to compare consecutive live frames; sensor noise makes a real new frame differ almost
# everywhere, so a sparse grid is enough to tell a re-delivered buffer from a new picture.
FROZEN_COMPARE_STEP = 8


# Mean absolute difference (grey levels) allowed between a luma plane mapped to gray and cv2's gray of the BGR
# frame: rounding in the decoder's YUV -> BGR conversion and in BGR -> gray accounts for about one level.
LUMA_MATCH_LEVELS = 3.0
# Standard deviation (grey levels) a first frame's luma needs for its range to be measured.
LUMA_MIN_SPREAD = 8.0


@dataclass
class Frame:
    """One decoded frame. ``index`` is the source's frame index; ``time_s`` the stream time in seconds."""

    index: int
    image: np.ndarray          # BGR uint8 (H, W, 3); the luma plane (H, W) from a FileSource opened with luma=True
    time_s: float
    captured_at: float         # time.perf_counter() when the frame was read, for capture-to-output latency


def quiet_opencv():
    """Silence OpenCV's own warnings (probing cameras and codecs prints several); our errors say what matters."""
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # very old builds lack the logging module
        pass


def _as_bgr(image: np.ndarray) -> np.ndarray:
    # Some capture backends hand out gray or BGRA frames; everything downstream expects 3-channel BGR.
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def open_decoder(path: str):
    """cv2.VideoCapture for a file with a single-threaded decoder. FFmpeg's frame threads cost 35% more CPU per
    frame here (0.41 vs 0.30 ms for a 640x480 mp4v frame) and contend for the cores with the pipeline's own
    threads, which already overlap decoding with everything else. Plain VideoCapture if a backend refuses."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
    if capture.isOpened():
        return capture
    capture.release()
    return cv2.VideoCapture(str(path))


def _frame_count(capture) -> int | None:
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if count and count > 0 else None


def _fps(capture, default: float) -> float:
    fps = capture.get(cv2.CAP_PROP_FPS)
    # Cameras and some containers report 0 or absurd values; fall back to a sane rate for timing and writers.
    return float(fps) if fps and 1.0 <= fps <= 240.0 else default


def luma_mapping(luma: np.ndarray, bgr: np.ndarray):
    """How this luma plane maps onto cv2's gray of the same frame decoded as BGR: ``(range name, (factor, bias))``
    with gray = luma * factor + bias, or None if it does not (the backend handed out something else) or the
    frame is too flat to tell.

    The factor and bias are fitted, not taken from the standard: FFmpeg's YUV -> BGR conversion rounds with a
    bias of about one grey level (measured on this build: gray = 1.164 Y - 19.7, where BT.601 says - 18.6), and
    matching what the BGR path gives is the point. The fit must land near a standard range ("limited" = MPEG,
    "full" = JPEG) and leave at most LUMA_MATCH_LEVELS of mean error."""
    from stream_cnn.preprocess.frame import LUMA_TO_GRAY

    if luma is None or bgr is None or luma.dtype != np.uint8 or bgr.ndim != 3 or luma.shape != bgr.shape[:2]:
        return None
    y = luma[::2, ::2].astype(np.float64).ravel()
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[::2, ::2].astype(np.float64).ravel()
    unclipped = (gray > 4) & (gray < 251)      # saturated pixels would bend the line
    # The two ranges differ by a contrast of 255/219, which only a frame with some spread shows. A flat first
    # frame keeps the BGR path.
    if unclipped.sum() < 100 or y[unclipped].std() < LUMA_MIN_SPREAD:
        return None
    factor, bias = np.polyfit(y[unclipped], gray[unclipped], 1)
    name = min(LUMA_TO_GRAY, key=lambda candidate: abs(LUMA_TO_GRAY[candidate][0] - factor))
    if abs(factor / LUMA_TO_GRAY[name][0] - 1.0) > 0.03 or abs(bias - LUMA_TO_GRAY[name][1]) > 4.0:
        return None
    error = float(np.abs(np.clip(y * factor + bias, 0, 255) - gray).mean())
    return (name, (float(factor), float(bias))) if error <= LUMA_MATCH_LEVELS else None


class FileSource:
    """Every frame of a video file, in order, decoded one step ahead on a thread.

    ``luma=True`` (for gray models when nothing needs the colour picture): frames are the decoder's luma plane,
    (H, W) uint8, skipping the decoder's YUV -> BGR conversion (a quarter of decoding a 640x480 mp4v frame) and
    a third of the bytes the preprocessing reads. ``luma_range`` ("limited" / "full") and ``luma_to_gray``
    (factor, bias) then say how it maps to gray; both are None when the file is delivered as BGR, which happens
    whenever the backend's luma output does not match the BGR picture's gray on the first frame (checked at open:
    other formats, other backends, a flat first frame)."""

    live = False

    def __init__(self, path: str, capture_factory: Callable[[str], object] = open_decoder, luma: bool = False,
                 wake_frames: int = FILE_WAKE_FRAMES):
        self.name = str(path)
        if not os.path.exists(path):
            raise SourceError(f"video file not found: {path}")
        if os.path.isdir(path):
            raise SourceError(f"{path} is a directory, not a video file")
        if not os.access(path, os.R_OK):
            raise SourceError(f"video file not readable (permission denied): {path}")
        quiet_opencv()
        self._capture = capture_factory(str(path))
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"cannot open {path} as a video: not a video, or truncated/corrupt before its first "
                              f"frame (an .mp4 cut short loses the index at its end)")
        self.fps = _fps(self._capture, 30.0)
        self.total_frames = _frame_count(self._capture)
        self.size = (int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.frames_read = 0
        self.dropped = 0
        self.repeated = 0
        self.decode_gaps: list[int] = []   # frame indices after which unreadable data was skipped
        self.stop_reason: StreamInterrupted | None = None
        self.luma_range: str | None = None
        self.luma_to_gray: tuple[float, float] | None = None
        self._first_image: np.ndarray | None = None   # a frame read while opening, delivered first
        if luma:
            self._switch_to_luma(str(path), capture_factory)
        # wake_frames 1 when a window shows the frames: a decoder slower than the processing would otherwise show
        # every fourth frame; batches only pay where frames are not watched as they come.
        self._queue = BatchedHandoff(FILE_QUEUE_FRAMES, wake_at=wake_frames)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode_loop, name="stream-cnn-decode", daemon=True)
        self._done = False

    def _switch_to_luma(self, path: str, capture_factory):
        """Turn the decoder's BGR conversion off if its luma plane matches the BGR picture's gray on frame 0."""
        reference = capture_factory(path)
        try:
            ok, bgr = reference.read()
        finally:
            reference.release()
        try:
            switched = ok and bool(self._capture.set(cv2.CAP_PROP_CONVERT_RGB, 0))
            ok, luma = self._capture.read() if switched else (False, None)
        except Exception:   # a capture object without these properties just stays BGR
            switched, ok, luma = False, False, None
        mapping = luma_mapping(luma, bgr) if ok else None
        if mapping is not None:
            (self.luma_range, self.luma_to_gray), self._first_image = mapping, luma
        elif switched:
            # Frame 0 was consumed (or the switch half-happened): start again from a fresh BGR capture.
            self._capture.release()
            self._capture = capture_factory(path)

    def start(self):
        self._thread.start()
        return self

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            if self._queue.put(item, timeout=0.1):
                return True
        return False

    def _decode_loop(self):
        failures_in_a_row = 0
        try:
            while not self._stop.is_set():
                if self._first_image is not None:
                    ok, image, self._first_image = True, self._first_image, None
                else:
                    ok, image = self._capture.read()
                if not ok or image is None:
                    if self.total_frames is not None and self.frames_read >= self.total_frames:
                        break   # the clean end of the file
                    failures_in_a_row += 1
                    if failures_in_a_row > FILE_READ_RETRIES:
                        break
                    continue
                if failures_in_a_row:
                    self.decode_gaps.append(self.frames_read)
                    failures_in_a_row = 0
                if self.luma_range is None:
                    image = _as_bgr(image)
                frame = Frame(self.frames_read, image, self.frames_read / self.fps, time.perf_counter())
                self.frames_read += 1
                if not self._put(frame):
                    return
            self.stop_reason = self._early_end_reason()
        except Exception as err:  # a backend exception must end the stream with a message, not kill a thread
            self.stop_reason = StreamInterrupted(
                f"{self.name}: decoding failed at frame {self.frames_read}: {err}")
        finally:
            self._put(None)
            self._queue.finish()

    def _early_end_reason(self) -> StreamInterrupted | None:
        if self._stop.is_set():
            return None
        expected = self.total_frames
        if expected is not None and self.frames_read < expected:
            gaps = f"; unreadable data skipped after frame(s) {self.decode_gaps[:5]}" if self.decode_gaps else ""
            return StreamInterrupted(
                f"{self.name}: stopped at frame {self.frames_read} of {expected}: the decoder could not read further "
                f"(file truncated or corrupt){gaps}; the {self.frames_read} decoded frames were processed")
        if self.decode_gaps:
            return StreamInterrupted(
                f"{self.name}: corrupt data skipped after frame(s) {self.decode_gaps[:5]}; "
                f"{self.frames_read} frames decoded")
        return None

    def read(self, timeout: float = 0.5) -> Frame | None:
        """The next frame, or None at the end of the stream. Waits in short slices so Ctrl-C stays responsive."""
        if self._done:
            return None
        while True:
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._done = True
                    return None
                continue
            if item is None:
                self._done = True
            return item

    def close(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._capture.release()


def parse_device(device: str | int):
    """`--device` value -> what cv2.VideoCapture takes: an int index, a /dev path, a URL or a clip path."""
    if isinstance(device, int):
        return device
    text = str(device).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return text


class LiveSource:
    """Newest-frame-only capture for cameras, streams and files replayed as cameras (``realtime``)."""

    live = True

    def __init__(self, device, *, realtime: bool = False, stall_timeout: float = 5.0,
                 capture_factory: Callable[[object], object] = cv2.VideoCapture, default_fps: float = 30.0):
        self.device = parse_device(device)
        self.name = f"camera {self.device}" if isinstance(self.device, int) else str(self.device)
        # A path to an existing file is a recorded clip standing in for a camera: its end is the end of the
        # stream, not a lost camera, and (like a camera) it delivers at its own frame rate.
        self.is_clip = isinstance(self.device, str) and os.path.isfile(self.device)
        self.realtime = realtime or self.is_clip
        self.stall_timeout = float(stall_timeout)
        self._factory = capture_factory
        quiet_opencv()
        self._capture = capture_factory(self.device)
        if not self._capture.isOpened():
            self._capture.release()
            raise self._not_found()
        self.fps = _fps(self._capture, default_fps)
        self.total_frames = _frame_count(self._capture) if self.is_clip else None
        self.size = (int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.frames_read = 0      # new frames captured (repeats excluded)
        self.dropped = 0          # new frames overwritten before the consumer took them
        self.repeated = 0         # frames identical to their predecessor, not counted as new
        self.read_failures = 0
        self.reopens = 0
        self.stop_reason: StreamInterrupted | None = None
        self._latest: Frame | None = None
        self._ended = False
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name="stream-cnn-capture", daemon=True)
        self._t0: float | None = None

    def _not_found(self) -> SourceError:
        if isinstance(self.device, int) or str(self.device).startswith("/dev/"):
            return CameraNotFoundError(
                f"no camera at {self.name}: pick another with --device N or --device /dev/videoN, "
                f"or run a file with `stream-cnn video FILE`")
        if isinstance(self.device, str) and "://" not in self.device and not os.path.exists(self.device):
            return CameraNotFoundError(
                f"no camera or file at {self.device!r}: use --device N, /dev/videoN, a stream URL or an existing clip")
        return SourceError(f"cannot open {self.device} as a video stream (unreachable URL, or not a video)")

    def start(self):
        self._thread.start()
        return self

    def _publish(self, image: np.ndarray):
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        frame = Frame(self.frames_read, _as_bgr(image), now - self._t0, now)
        self.frames_read += 1
        with self._condition:
            if self._latest is not None:
                self.dropped += 1
            self._latest = frame
            self._condition.notify_all()

    def _clip_finished(self) -> bool:
        if not self.is_clip:
            return False
        position = self._capture.get(cv2.CAP_PROP_POS_FRAMES)
        return self.total_frames is None or position >= self.total_frames - 1

    def _capture_loop(self):
        previous: np.ndarray | None = None
        last_new_at = time.perf_counter()
        first_failure_at: float | None = None
        failures = 0
        pace_start = time.perf_counter()
        reads = 0
        try:
            while not self._stop.is_set():
                ok, image = self._capture.read()
                now = time.perf_counter()
                if not ok or image is None:
                    if self._clip_finished():
                        break
                    self.read_failures += 1
                    failures += 1
                    if first_failure_at is None:
                        first_failure_at = now
                    if now - first_failure_at >= self.stall_timeout:
                        self.stop_reason = StreamInterrupted(
                            f"{self.name} stopped delivering frames: no frame for {now - first_failure_at:.1f}s "
                            f"after {self.frames_read} frames ({failures} retries); stopped")
                        break
                    # Backoff: quick retries catch a hiccup, longer waits avoid spinning on a dead device.
                    self._stop.wait(min(0.02 * 2 ** min(failures, 6), 0.5))
                    if failures % 4 == 0 and not self.is_clip:
                        self._reopen()
                    continue
                failures = 0
                first_failure_at = None
                reads += 1
                if self.realtime:
                    # Deliver at the clip's own rate, as a camera would; sleeping on the stop event keeps close fast.
                    due = pace_start + reads / self.fps
                    if due > now:
                        self._stop.wait(due - now)
                        now = time.perf_counter()
                # Compare against a private copy of the previous frame's sample grid: the consumer draws on
                # the frames it is handed, so the published array itself is no record of what the camera sent.
                grid = image[::FROZEN_COMPARE_STEP, ::FROZEN_COMPARE_STEP]
                if previous is not None and previous.shape == grid.shape and np.array_equal(previous, grid):
                    self.repeated += 1
                    if now - last_new_at >= self.stall_timeout:
                        self.stop_reason = StreamInterrupted(
                            f"{self.name} is frozen: the same picture for {now - last_new_at:.1f}s after "
                            f"{self.frames_read} frames; stopped")
                        break
                    continue
                previous = grid.copy()
                last_new_at = now
                self._publish(image)
        except Exception as err:  # a backend exception must end the stream with a message, not kill a thread
            self.stop_reason = StreamInterrupted(f"{self.name}: capture failed after frame {self.frames_read}: {err}")
        finally:
            with self._condition:
                self._ended = True
                self._condition.notify_all()

    def _reopen(self):
        # A camera that was unplugged and plugged back in needs a fresh handle; a dead one just fails again.
        try:
            self._capture.release()
            self._capture = self._factory(self.device)
            self.reopens += 1
        except Exception:
            pass

    def read(self, timeout: float = 0.5) -> Frame | None:
        """The newest frame not yet taken, waiting for one; None when the stream has ended."""
        with self._condition:
            while self._latest is None:
                if self._ended:
                    return None
                self._condition.wait(timeout)
            frame, self._latest = self._latest, None
            return frame

    def close(self):
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._capture.release()


def open_file(path: str, *, realtime: bool = False, stall_timeout: float = 5.0,
              capture_factory=None, luma: bool = False, wake_frames: int = FILE_WAKE_FRAMES):
    """A video file: every frame as fast as possible, or (``realtime``) replayed like a camera at its own fps.
    ``luma``: deliver the luma plane when the backend can (see FileSource); ignored for realtime replay."""
    if realtime:
        factory = capture_factory or cv2.VideoCapture
        FileSource(path, factory).close()   # same checks and messages for missing / non-video files
        return LiveSource(path, realtime=True, stall_timeout=stall_timeout, capture_factory=factory)
    return FileSource(path, capture_factory or open_decoder, luma=luma, wake_frames=wake_frames)


def open_camera(device="0", *, stall_timeout: float = 5.0, capture_factory=cv2.VideoCapture):
    """A camera index, /dev/videoN, stream URL, or a recorded clip standing in for a camera."""
    return LiveSource(device, stall_timeout=stall_timeout, capture_factory=capture_factory)
