"""Throughput of `stream-cnn video` against the loops it cannot beat: decode only, and decode + encode only.

Used by scripts/bench_pipeline_probe.py and available to `stream-cnn bench`. Everything here runs in process and
times the wall clock of a whole run (opening, every frame, finalising and checking the outputs), so the ratio
`video / decode-only` is what a user waiting for a file sees.

The reference loops are written to be as fast as a plain OpenCV program can be:

* decode only: ``VideoCapture.read()`` in a loop (BGR, the decoder's default settings);
* encode only: the same decode on a thread feeding a bounded queue, ``VideoWriter.write()`` (mp4v) on the caller's
  thread, so decoding and encoding overlap like they do in the pipeline. No model, no overlay.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PROBE_WIDTH, PROBE_HEIGHT, PROBE_FPS = 640, 480, 30.0

# The digits model's layers with the whole frame as its input instead of the digit finder: the shape of model the
# pipeline runs on every frame, without the finder's cost (which depends on what is in view).
PROBE_MODEL_TOML = """
name = "probe-digits-shaped"
description = "digits-shaped network with seeded random weights on the whole frame (pipeline throughput probe)"

[input]
shape = [1, 28, 28]
color = "gray"
scale = 0.00392156862745098
mean = [0.0]
std = [1.0]
resize = "stretch"
preprocess = "frame"

[output]
labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

[[layers]]
name = "conv1"
type = "conv2d"
filters = 8
kernel = 3
padding = "same"
activation = "relu"

[[layers]]
name = "pool1"
type = "max_pool"
kernel = 2

[[layers]]
name = "conv2"
type = "conv2d"
filters = 16
kernel = 3
padding = "same"
activation = "relu"

[[layers]]
name = "pool2"
type = "max_pool"
kernel = 2

[[layers]]
name = "conv3"
type = "conv2d"
filters = 32
kernel = 3
padding = "same"
activation = "relu"

[[layers]]
name = "pool3"
type = "max_pool"
kernel = 2

[[layers]]
name = "flatten"
type = "flatten"

[[layers]]
name = "fc"
type = "dense"
units = 10

[[layers]]
name = "softmax"
type = "softmax"
"""


def make_probe_clip(path, frames: int = 600, width: int = PROBE_WIDTH, height: int = PROBE_HEIGHT,
                    fps: float = PROBE_FPS, seed: int = 0) -> str:
    """A clip that costs the decoder what a camera recording does: a textured scene panning slowly, a moving
    object, and fresh sensor noise on every frame (a clean synthetic picture would decode unrealistically fast)."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8), (0, 0), 3)
    # A few noise fields cycled with a shift: noise that changes every frame without drawing millions of normals.
    noise_fields = [rng.normal(0, 4, (height, width + 64, 3)).astype(np.int16) for _ in range(5)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write the probe clip {path} (no mp4v encoder)")
    frame16 = np.empty((height, width, 3), np.int16)
    frame = np.empty((height, width, 3), np.uint8)
    try:
        for i in range(frames):
            x, y = (3 * i) % width, (i // 2) % height
            shift = (7 * i) % 64
            np.add(scene[y:y + height, x:x + width], noise_fields[i % 5][:, shift:shift + width], out=frame16)
            np.clip(frame16, 0, 255, out=frame16)
            frame[:] = frame16
            cv2.circle(frame, (60 + (5 * i) % (width - 120), height // 2), 50, (240, 240, 240), -1)
            cv2.putText(frame, str(i), (width - 140, height - 30), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 255, 255), 3)
            writer.write(frame)
    finally:
        writer.release()
    return str(path)


def make_probe_model(directory) -> str:
    """The digits-shaped whole-frame model with seeded weights, saved as TOML + .npz; returns the .toml path."""
    from stream_cnn.model import load_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    draft = directory / "probe-draft.toml"
    draft.write_text(PROBE_MODEL_TOML)
    saved = directory / "probe-digits-shaped.toml"
    load_model(str(draft), init_seed=0).save(str(saved))
    return str(saved)


@dataclass
class Run:
    name: str
    frames: int
    seconds: float
    cpu_seconds: float = 0.0      # process CPU time (all threads): what a busy machine makes the wall time track

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_frame(self) -> float:
        return 1000.0 * self.cpu_seconds / self.frames if self.frames else 0.0


class Clock:
    """Wall clock and process CPU time, both started when made; `run()` reads them into a Run."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def run(self, name, frames) -> Run:
        return Run(name, frames, time.perf_counter() - self.wall, time.process_time() - self.cpu)


def read_every_frame(capture, each=None) -> int:
    """Read `capture` to its end, handing each frame to `each` when given (a writer's write, a list's append);
    returns the frame count."""
    frames = 0
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        if each is not None:
            each(image)
        frames += 1


def decode_only(path) -> Run:
    """Every frame read as BGR and dropped."""
    clock = Clock()
    capture = cv2.VideoCapture(str(path))
    frames = read_every_frame(capture)
    capture.release()
    return clock.run("decode-only", frames)


def encode_only(path, out_path) -> Run:
    """Decode on a thread, encode mp4v on this one, bounded queue between them; the file is finalised."""
    clock = Clock()
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or PROBE_FPS
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    frames_queue: queue.Queue = queue.Queue(maxsize=8)

    def decode():
        while True:
            ok, image = capture.read()
            frames_queue.put(image if ok else None)
            if not ok:
                return

    thread = threading.Thread(target=decode, daemon=True)
    thread.start()
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    frames = 0
    while (image := frames_queue.get()) is not None:
        writer.write(image)
        frames += 1
    writer.release()
    thread.join()
    capture.release()
    return clock.run("encode-only", frames)


def video(path, model, output=None, jsonl=None, name: str | None = None) -> Run:
    """The real `stream-cnn video PATH --no-display` runner, in process, summary not printed. ``model``: a model
    name or .toml path, or a loaded Model (reused as is)."""
    return video_with_summary(path, model, output, jsonl, name)[0]


def video_with_summary(path, model, output=None, jsonl=None, name: str | None = None):
    """`video()`, also returning the runner's own summary (frames inferred and dropped, latency, codec)."""
    from stream_cnn.pipeline import StreamRequest, run_stream

    loaded = None if isinstance(model, (str, os.PathLike)) else model
    model_name = str(model) if loaded is None else str(loaded.config.name)
    request = StreamRequest(kind="file", source=str(path), model_name=model_name, output=output, jsonl=jsonl,
                            no_display=True, progress=False)
    clock = Clock()
    summary = run_stream(request, echo=lambda *args, **kwargs: None, model=loaded)
    label = name or "video" + (" --output" if output else "") + (" --jsonl" if jsonl else "")
    return clock.run(label, summary.frames), summary


def remove_quietly(*paths):
    for path in paths:
        if path and os.path.exists(path):
            os.remove(path)
