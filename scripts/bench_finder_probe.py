#!/usr/bin/env python3
"""CPU cost of the digit finder per frame on the frames of the recorded clips: the finder in the work tree against
the finder at an earlier git revision, interleaved frame by frame in one process, so a busy machine slows both alike.

    python scripts/bench_finder_probe.py [--before REV] [--rounds 3] [CLIP.mp4 ...]

Each clip is decoded once and converted to gray the way `stream-cnn video` does for a digit model (cvtColor). In
every round each finder gets a fresh instance per clip (the finder tracks the sheet between frames, so frames are
fed in clip order) and the two are called on the same frame one after the other, alternating which goes first.
Time is the calling thread's CPU time (time.thread_time_ns): what the pipeline's preprocessing thread pays.
Prints per clip and overall the median, 90th percentile and mean ms per frame, and how often the two finders agree
(both "no digit", or boxes overlapping with IoU >= 0.9).
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FINDER_PATH = "stream_cnn/preprocess/digits.py"
DEFAULT_BEFORE = "e272f33"  # the last revision with the single-pass finder (before tracking)


def load_finder_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def finder_at_revision(revision: str, directory: Path):
    """The DigitFinder module as it was at `revision` (written to `directory` and imported from there)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{FINDER_PATH}"], check=True,
                            capture_output=True, text=True).stdout
    path = directory / f"digits_{revision.replace('/', '_').replace('~', '_').replace('^', '_')}.py"
    path.write_text(source)
    return load_finder_module(path, path.stem)


def gray_frames(clip: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    capture.release()
    return frames


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)


def summary(ns: list[int]) -> str:
    ms = np.asarray(ns, np.float64) / 1e6
    return f"median {np.median(ms):.3f}  p90 {np.percentile(ms, 90):.3f}  mean {ms.mean():.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", type=Path, help="clips (default: recordings/*.mp4)")
    parser.add_argument("--before", default=DEFAULT_BEFORE, help=f"git revision of the 'before' finder "
                                                                 f"(default {DEFAULT_BEFORE})")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    clips = args.clips or sorted((ROOT / "recordings").glob("*.mp4"))
    if not clips:
        print("no clips", file=sys.stderr)
        return 1
    frames = {clip.name: gray_frames(clip) for clip in clips}
    with tempfile.TemporaryDirectory(prefix="finder-probe-") as tmp:
        finders = {"before": finder_at_revision(args.before, Path(tmp)).DigitFinder,
                   "after": load_finder_module(ROOT / FINDER_PATH, "digits_work_tree").DigitFinder}
        out = np.zeros((28, 28), np.float32)
        for make in finders.values():  # warm-up: Numba kernels loaded (or compiled), OpenCV paths touched
            for clip_frames in frames.values():
                finder = make()
                for gray in clip_frames:
                    finder(gray, out)
        times = {name: {clip: [] for clip in frames} for name in finders}
        agree = total = 0
        for round_index in range(args.rounds):
            for clip, clip_frames in frames.items():
                instances = {name: make() for name, make in finders.items()}
                for i, gray in enumerate(clip_frames):
                    order = list(instances) if (i + round_index) % 2 == 0 else list(instances)[::-1]
                    boxes = {}
                    for name in order:
                        start = time.thread_time_ns()
                        boxes[name] = instances[name](gray, out)
                        times[name][clip].append(time.thread_time_ns() - start)
                    before, after = boxes["before"], boxes["after"]
                    total += 1
                    agree += (before is None and after is None) or (
                        before is not None and after is not None and iou(before, after) >= 0.9)
    print(f"digit finder CPU time per 640x480 frame ({args.rounds} rounds, interleaved; before = {args.before}, "
          f"after = work tree); cv2 threads {cv2.getNumThreads()}; load avg "
          f"{' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())}")
    for clip in frames:
        print(f"  {clip:28s} before {summary(times['before'][clip])}   after {summary(times['after'][clip])}")
    every = {name: [t for clip in frames for t in times[name][clip]] for name in finders}
    print(f"  {'all frames':28s} before {summary(every['before'])}   after {summary(every['after'])}")
    ratio = statistics.median(every["after"]) / statistics.median(every["before"])
    print(f"  median after / before: {ratio:.2f}; same answer (no digit, or box IoU >= 0.9) on "
          f"{agree}/{total} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
