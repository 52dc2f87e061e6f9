#!/usr/bin/env python3
"""CPU cost of the digit finder per frame on the frames of the recorded clips: the finder in the work tree against
the finder at an earlier git revision, interleaved frame by frame in one process, so a busy machine slows both alike.

    python scripts/bench_finder_probe.py [--before REV] [--rounds 3] [CLIP.mp4 ...]
    python scripts/bench_finder_probe.py --pipeline [--frames 300] [--before REV] [--rounds 3]

Each clip is decoded once and converted to gray the way `stream-cnn video` does for a digit model (cvtColor). In
every round each finder gets a fresh instance per clip (the finder tracks the sheet between frames, so frames are
fed in clip order) and the two are called on the same frame one after the other, alternating which goes first.
Two clocks: the process's CPU time (time.process_time_ns: the calling thread plus the worker threads OpenCV
splits some calls across -- on a 2-core machine those take the core the video decoder runs on) and the calling
thread's alone (time.thread_time_ns). Prints per clip and overall the median, 90th percentile and mean ms per
frame, and how often the two finders agree (both "no digit", or boxes overlapping with IoU >= 0.9).

--pipeline: what that means for `stream-cnn video` with the default `digits` model. A recording-like clip (the
scene of recordings/digits_desk.mp4 -- sheet, thumbs, room, noise, mp4v -- rendered by scripts/make_recordings.py
for --frames frames) is played in rounds: decode-only, and `stream-cnn video --no-display` (in process, as
scripts/bench_pipeline_probe.py runs it) with the 'before' and the work tree's finder (the pipeline's finder class
swapped for the run); prints fps, CPU per frame and the video / decode-only ratio per finder, medians over rounds.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
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


def work_tree_finder():
    """The package's own DigitFinder, imported under its own name: its Numba kernels are cached beside the source
    with the module's name in them, so loading the file under another name would leave cache entries that the
    package could not load."""
    from stream_cnn.preprocess.digits import DigitFinder

    return DigitFinder


def gray_frames(clip: Path) -> list[np.ndarray]:
    from stream_cnn.pipeline.throughput import read_every_frame

    capture = cv2.VideoCapture(str(clip))
    frames = []
    read_every_frame(capture, lambda frame: frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
    capture.release()
    return frames


def summary(ns: list[int]) -> str:
    ms = np.asarray(ns, np.float64) / 1e6
    return f"median {np.median(ms):.3f}  p90 {np.percentile(ms, 90):.3f}  mean {ms.mean():.3f} ms"


def recording_like_clip(path: Path, frames: int) -> Path:
    """The digits_desk scene of the recordings, `frames` frames long, encoded as the recordings are (mp4v)."""
    generator = load_finder_module(ROOT / "scripts" / "make_recordings.py", "make_recordings")
    from stream_cnn.data import load_dataset  # noqa: F401  (the generator needs MNIST: fail early and clearly)

    spec = next(clip for clip in generator.CLIPS if clip.name == "digits_desk")
    needed = sum(clip.n_digits for clip in generator.CLIPS)
    digits = generator.legible_test_digits(str(ROOT / "data" / "mnist"), needed, generator.SELECTION_SEED)
    spec = generator.ClipSpec(spec.name, spec.kind, frames / spec.fps, spec.description, n_digits=spec.n_digits,
                              seed=spec.seed, fps=spec.fps, conditions=spec.conditions)
    generator.write_clip(generator.Scene(spec, digits[:spec.n_digits]), path)
    return path


def pipeline(args, finders) -> int:
    """video / decode-only on a recording-like clip with the digits model, per finder (see the docstring)."""
    from stream_cnn.model import load_model
    from stream_cnn.pipeline import throughput
    from stream_cnn.preprocess import digits as digits_module

    package_finder = digits_module.DigitFinder
    with tempfile.TemporaryDirectory(prefix="finder-pipeline-") as tmp:
        print(f"rendering a {args.frames}-frame recording-like clip ...", file=sys.stderr)
        clip = recording_like_clip(Path(tmp) / "digits_desk_long.mp4", args.frames)
        model = load_model("digits")
        runs = {"decode-only": lambda: throughput.decode_only(clip)}
        for name, finder_class in finders.items():
            def run(finder_class=finder_class, name=name):
                digits_module.DigitFinder = finder_class  # the pipeline makes its finder from this name
                try:
                    return throughput.video(clip, model, name=f"video ({name} finder)")
                finally:
                    digits_module.DigitFinder = package_finder
            runs[f"video, {name} finder"] = run
        for run in runs.values():  # warm-up
            run()
        fps = {name: [] for name in runs}
        cpu = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                result = run()
                fps[name].append(result.fps)
                cpu[name].append(result.cpu_ms_per_frame)
    print(f"stream-cnn video, digits model, {args.frames}-frame 640x480 recording-like clip ({args.rounds} rounds); "
          f"cpus {os.cpu_count()}; load avg {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for name in runs:
        print(f"  {name:28s} {statistics.median(fps[name]):7.0f} fps  (min {min(fps[name]):.0f}, max "
              f"{max(fps[name]):.0f})   CPU {statistics.median(cpu[name]):.2f} ms/frame")
    for name in finders:
        ratio = statistics.median(v / d for v, d in zip(fps[f"video, {name} finder"], fps["decode-only"]))
        print(f"  video / decode-only, {name} finder: {100 * ratio:5.1f}%")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", type=Path, help="clips (default: recordings/*.mp4)")
    parser.add_argument("--before", default=DEFAULT_BEFORE, help=f"git revision of the 'before' finder "
                                                                 f"(default {DEFAULT_BEFORE})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pipeline", action="store_true", help="video / decode-only with the digits model on a "
                                                                "recording-like clip, per finder")
    parser.add_argument("--frames", type=int, default=300, help="--pipeline: frames of the rendered clip")
    args = parser.parse_args()
    if args.pipeline:
        with tempfile.TemporaryDirectory(prefix="finder-probe-") as tmp:
            return pipeline(args, {"before": finder_at_revision(args.before, Path(tmp)).DigitFinder,
                                   "after": work_tree_finder()})
    clips = args.clips or sorted((ROOT / "recordings").glob("*.mp4"))
    if not clips:
        print("no clips", file=sys.stderr)
        return 1
    from stream_cnn.preprocess.digits import box_iou

    frames = {clip.name: gray_frames(clip) for clip in clips}
    with tempfile.TemporaryDirectory(prefix="finder-probe-") as tmp:
        finders = {"before": finder_at_revision(args.before, Path(tmp)).DigitFinder,
                   "after": work_tree_finder()}
        out = np.zeros((28, 28), np.float32)
        for make in finders.values():  # warm-up: Numba kernels loaded (or compiled), OpenCV paths touched
            for clip_frames in frames.values():
                finder = make()
                for gray in clip_frames:
                    finder(gray, out)
        times = {name: {clip: [] for clip in frames} for name in finders}  # process CPU, ns
        thread_times = {name: [] for name in finders}
        agree = total = 0
        for round_index in range(args.rounds):
            for clip, clip_frames in frames.items():
                instances = {name: make() for name, make in finders.items()}
                for i, gray in enumerate(clip_frames):
                    order = list(instances) if (i + round_index) % 2 == 0 else list(instances)[::-1]
                    boxes = {}
                    for name in order:
                        start, start_thread = time.process_time_ns(), time.thread_time_ns()
                        boxes[name] = instances[name](gray, out)
                        times[name][clip].append(time.process_time_ns() - start)
                        thread_times[name].append(time.thread_time_ns() - start_thread)
                    before, after = boxes["before"], boxes["after"]
                    total += 1
                    agree += (before is None and after is None) or (
                        before is not None and after is not None and box_iou(before, after) >= 0.9)
    print(f"digit finder process CPU time per 640x480 frame ({args.rounds} rounds, interleaved; "
          f"before = {args.before}, "
          f"after = work tree); cv2 threads {cv2.getNumThreads()}; load avg "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for clip in frames:
        print(f"  {clip:28s} before {summary(times['before'][clip])}   after {summary(times['after'][clip])}")
    every = {name: [t for clip in frames for t in times[name][clip]] for name in finders}
    print(f"  {'all frames':28s} before {summary(every['before'])}   after {summary(every['after'])}")
    print(f"  {'all frames, thread CPU':28s} before {summary(thread_times['before'])}   after "
          f"{summary(thread_times['after'])}")
    ratio = statistics.median(every["after"]) / statistics.median(every["before"])
    print(f"  median after / before: {ratio:.2f}; same answer (no digit, or box IoU >= 0.9) on "
          f"{agree}/{total} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
