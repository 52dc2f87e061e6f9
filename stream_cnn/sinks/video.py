"""Annotated video output with a codec fallback, encoded on its own thread, checked playable after close.

cv2.VideoWriter fails quietly: an unavailable codec gives a writer that is not opened, and a writer that was
never fed, or fed frames of the wrong size, leaves an empty or unplayable file. So: the path is checked writable
before any processing; codecs are tried in order until one opens; every frame is resized to the first frame's
size; and after release the file is reopened with VideoCapture, its frame count checked and its first and last
frames decoded (``verify_playable``).
"""
from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from stream_cnn.errors import OutputError
from stream_cnn.sources import quiet_opencv
from stream_cnn.sources.handoff import BatchedHandoff

# Per requested extension: (fourcc, extension) tried in order. mp4v is in every FFmpeg build; avc1 needs an H.264
# encoder; MJPG in AVI is the last resort that works everywhere (the extension changes, and we say so).
CODEC_FALLBACKS = {
    ".mp4": [("mp4v", ".mp4"), ("avc1", ".mp4"), ("MJPG", ".avi")],
    ".m4v": [("mp4v", ".m4v"), ("avc1", ".m4v"), ("MJPG", ".avi")],
    ".mov": [("mp4v", ".mov"), ("avc1", ".mov"), ("MJPG", ".avi")],
    ".avi": [("MJPG", ".avi"), ("XVID", ".avi")],
    ".mkv": [("XVID", ".mkv"), ("MJPG", ".mkv"), ("MJPG", ".avi")],
}
ENCODER_QUEUE_FRAMES = 16
# A producer held up by the encoder resumes when half the frames are encoded; an idle encoder wakes for 4 frames.
ENCODER_WAKE_FRAMES = 4


def check_writable_file(path: str, what: str = "output") -> str:
    """Fail now, before any processing, if ``path`` cannot be created or overwritten. Returns the absolute path."""
    path = os.path.abspath(os.path.expanduser(str(path)))
    directory = os.path.dirname(path)
    if os.path.isdir(path):
        raise OutputError(f"{what} path {path} is a directory; give a file name")
    if not os.path.isdir(directory):
        raise OutputError(f"cannot write {what} {path}: directory {directory} does not exist")
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as err:
        raise OutputError(f"cannot write {what} {path}: {err.strerror or err}") from None
    if not existed:
        os.remove(path)
    return path


def count_playable_frames(path: str) -> int:
    """Decode the whole file and count its frames (0 if it does not open): the honest playability check."""
    quiet_opencv()
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return 0
        frames = 0
        while capture.grab():
            frames += 1
        return frames
    finally:
        capture.release()


def verify_playable(path: str, expected_frames: int) -> int:
    """Frames the file plays, checked without decoding all of it when possible: the container's frame count must
    equal what was written, and the first and the last frame must decode (the last one proves the index and the
    data at the end were finalised). Anything else falls back to decoding the whole file (count_playable_frames).
    A full decode of a 600-frame 640x480 output costs as much as a third of encoding it; this costs two frames."""
    quiet_opencv()
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return 0
        listed = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ends_decode = capture.grab()
        if ends_decode and listed > 1:
            ends_decode = capture.set(cv2.CAP_PROP_POS_FRAMES, listed - 1) and capture.grab()
            ends_decode = ends_decode and not capture.grab()   # and nothing after what the index lists
        if ends_decode and listed == expected_frames:
            return listed
    finally:
        capture.release()
    return count_playable_frames(path)


class VideoFileSink:
    """Writes BGR frames to a video file on an encoder thread; ``close()`` finalises and verifies it."""

    def __init__(self, path: str, fps: float, codecs=None, threaded: bool = True):
        self.requested_path = check_writable_file(path, "video")
        extension = os.path.splitext(self.requested_path)[1].lower()
        if codecs is None:
            if extension not in CODEC_FALLBACKS:
                raise OutputError(f"video output {path}: unknown extension {extension or '(none)'}; "
                                  f"use one of {', '.join(sorted(CODEC_FALLBACKS))}")
            codecs = CODEC_FALLBACKS[extension]
        self.codecs = list(codecs)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.path: str | None = None       # the file actually written (the extension may change on fallback)
        self.fourcc: str | None = None
        self.size: tuple[int, int] | None = None
        self.frames_written = 0
        self.notes: list[str] = []
        self._writer = None
        self._threaded = threaded
        self._queue = BatchedHandoff(ENCODER_QUEUE_FRAMES, wake_at=ENCODER_WAKE_FRAMES)
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None
        self._closed = False

    def _open(self, width: int, height: int):
        quiet_opencv()
        base = os.path.splitext(self.requested_path)[0]
        tried = []
        for fourcc, extension in self.codecs:
            candidate = base + extension
            writer = cv2.VideoWriter(candidate, cv2.VideoWriter_fourcc(*fourcc), self.fps, (width, height))
            if writer.isOpened():
                self._writer, self.path, self.fourcc, self.size = writer, candidate, fourcc, (width, height)
                if candidate != self.requested_path:
                    self.notes.append(f"no {os.path.splitext(self.requested_path)[1]} encoder available "
                                      f"(tried {', '.join(tried)}); wrote {fourcc} to {candidate}")
                return
            writer.release()
            tried.append(fourcc)
            if os.path.exists(candidate) and os.path.getsize(candidate) == 0:
                os.remove(candidate)   # a failed open can leave an empty file behind
        raise OutputError(f"cannot encode video {self.requested_path}: no codec opened (tried {', '.join(tried)})")

    def _encode(self, frame: np.ndarray):
        if frame.shape[1::-1] != self.size:
            # The writer silently drops frames of another size; keep the stream consistent instead.
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.frames_written += 1

    def _encode_loop(self):
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            try:
                self._encode(frame)
            except Exception as err:   # keep draining so the producer never blocks on a dead encoder
                self._error = err

    def write(self, frame: np.ndarray):
        """Queue a frame for encoding. The caller must not modify ``frame`` afterwards."""
        if self._writer is None:
            self._open(frame.shape[1], frame.shape[0])
            if self._threaded:
                self._thread = threading.Thread(target=self._encode_loop, name="stream-cnn-encode", daemon=True)
                self._thread.start()
        if self._thread is not None:
            self._queue.put(frame)   # blocks when the encoder is behind: files must not lose frames
        else:
            self._encode(frame)

    def close(self) -> int:
        """Finish encoding, release, and check the file decodes; returns the number of frames in it."""
        if self._closed:
            return self.frames_written
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._queue.finish()
            self._thread.join()
        if self._writer is None:
            return 0    # nothing was ever written: no file, nothing to verify
        self._writer.release()
        if self._error is not None:
            raise OutputError(f"encoding {self.path} failed: {self._error}")
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            raise OutputError(f"video {self.path} is empty after writing {self.frames_written} frames "
                              f"(codec {self.fourcc})")
        playable = verify_playable(self.path, self.frames_written)
        if playable == 0:
            raise OutputError(f"video {self.path} was written ({self.frames_written} frames, codec {self.fourcc}) "
                              f"but does not play back")
        return playable
