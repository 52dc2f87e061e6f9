"""Shared helpers of the pipeline tests (sources, sinks, CLI, faults, window): a tiny seeded model, synthetic
clips, JSONL / video readers, and ways to run the CLI in process and as a subprocess. Imported by the test
modules (tests/ is on sys.path under pytest) and by tests/conftest.py's fixtures; no test module imports another."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from stream_cnn.cli import main
from stream_cnn.overlay import TOP_BAR_COLOR
from stream_cnn.pipeline.throughput import read_every_frame

REPO = Path(__file__).resolve().parent.parent
TINY_LABELS = ["zero", "one", "two", "three"]
TINY_MODEL_TOML = """
name = "tiny-{preprocess}"

[input]
shape = [1, 28, 28]
color = "gray"
scale = 0.00392156862745098
mean = [0.5]
std = [0.25]
resize = "stretch"
preprocess = "{preprocess}"

[output]
labels = ["zero", "one", "two", "three"]

[[layers]]
name = "conv1"
type = "conv2d"
filters = 4
kernel = 3
padding = "same"
activation = "relu"

[[layers]]
name = "gap"
type = "global_avg_pool"

[[layers]]
name = "fc"
type = "dense"
units = 4

[[layers]]
name = "prob"
type = "softmax"
"""


def make_tiny_model(directory: Path, preprocess: str = "frame") -> str:
    """A 4-class conv + global pool + dense + softmax model with seeded random weights, saved as TOML + .npz."""
    from stream_cnn.model import load_model

    directory.mkdir(parents=True, exist_ok=True)
    draft = directory / f"draft-{preprocess}.toml"
    draft.write_text(TINY_MODEL_TOML.format(preprocess=preprocess))
    model = load_model(str(draft), init_seed=7)
    saved = directory / f"tiny-{preprocess}.toml"
    model.save(str(saved))
    return str(saved)


def synthetic_frame(i: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A moving bright disc on a brightness ramp: frames differ, so predictions vary and no frame is a repeat."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:] = (40 + 3 * i) % 200
    cv2.circle(frame, (30 + (7 * i) % (width - 60), height // 2), 28, (250, 250, 250), -1)
    cv2.putText(frame, str(i), (width - 70, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 255, 255), 2)
    return frame


def make_clip(path: Path, count: int = 30, fps: float = 30.0, fourcc: str = "mp4v", frozen_tail: int = 0) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (320, 240))
    assert writer.isOpened()
    for i in range(count):
        writer.write(synthetic_frame(min(i, count - 1 - frozen_tail)))
    writer.release()
    return str(path)


def read_jsonl(path) -> list:
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def decoded_frames(path) -> list:
    capture = cv2.VideoCapture(str(path))
    frames = []
    read_every_frame(capture, frames.append)
    capture.release()
    return frames


def overlay_visible(annotated: np.ndarray, raw: np.ndarray) -> bool:
    """The bars panel (top left) differs from the raw frame and holds pixels of the top bar's green."""
    panel = (slice(0, annotated.shape[0] // 3), slice(0, annotated.shape[1] // 2))
    changed = np.abs(annotated[panel].astype(int) - raw[panel].astype(int)).mean() > 15
    green = np.all(np.abs(annotated[panel].astype(int) - np.array(TOP_BAR_COLOR)) < 45, axis=2).sum()
    return bool(changed and green > 30)


def run_cli(args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)


def run_subprocess(args, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "stream_cnn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO), env=env)


def pool_window_params(max_channels: int):
    """Hypothesis strategy for a window pool case, shared by the kernel tests against the NumPy twin and against
    ONNX Runtime: dict(channels, height, width, kernel=(kh, kw), stride=(sh, sw), pads=(top, bottom, left,
    right), seed). Padding stays below the kernel size (ONNX and PyTorch require it: a window is never all
    padding) and the padded map holds at least one window."""
    from hypothesis import assume
    from hypothesis import strategies as st

    @st.composite
    def draw_params(draw):
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        pads = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1)),
                draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1)))
        height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        assume(height + pads[0] + pads[1] >= kh and width + pads[2] + pads[3] >= kw)
        return dict(channels=draw(st.integers(1, max_channels)), height=height, width=width, kernel=(kh, kw),
                    stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), pads=pads,
                    seed=draw(st.integers(0, 2 ** 16)))

    return draw_params()
