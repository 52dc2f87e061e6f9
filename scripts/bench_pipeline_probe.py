#!/usr/bin/env python3
"""How close `stream-cnn video` runs to the decoder: decode-only vs the pipeline without outputs, and encode-only
(decode + mp4v encode, no model) vs the pipeline with --output (and with --output --jsonl), interleaved in rounds
in one process on a generated 640x480 30 fps clip, so a busy machine slows every variant alike.

    python scripts/bench_pipeline_probe.py [--frames 600] [--rounds 5] [--model PATH|NAME] [--threads N]

Prints per variant the median fps and the spread (min-max) over the rounds, the CPU time per frame (all threads;
on a machine shared with other work the wall-clock rate follows the CPU cost more than the critical path), and
the ratios the issue sets targets
for (video >= 95% of decode-only; video --output >= 90% of encode-only), computed per round and then the median.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402

from stream_cnn.pipeline import throughput  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default=None, help="model name or .toml (default: a digits-shaped whole-frame "
                                                      "model with seeded weights)")
    parser.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads before running (default: "
                                                                   "leave OpenCV's setting alone)")
    parser.add_argument("--skip-jsonl", action="store_true", help="leave out the --output --jsonl variant")
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory(prefix="stream-cnn-probe-") as tmp:
        tmp = Path(tmp)
        clip = throughput.make_probe_clip(tmp / "probe.mp4", frames=args.frames)
        model = args.model or throughput.make_probe_model(tmp / "model")
        out, jsonl = str(tmp / "out.mp4"), str(tmp / "out.jsonl")
        variants = {
            "decode-only": lambda: throughput.decode_only(clip),
            "video": lambda: throughput.video(clip, model),
            "encode-only": lambda: throughput.encode_only(clip, out),
            "video --output": lambda: throughput.video(clip, model, output=out),
        }
        if not args.skip_jsonl:
            variants["video --output --jsonl"] = lambda: throughput.video(clip, model, output=out, jsonl=jsonl)
        throughput.video(clip, model, name="warm-up")      # compile / load kernels outside the timed rounds
        fps = {name: [] for name in variants}
        cpu = {name: [] for name in variants}
        for round_index in range(args.rounds):
            for name, run in variants.items():
                result = run()
                if result.frames != args.frames:
                    print(f"{name}: {result.frames} frames, expected {args.frames}", file=sys.stderr)
                    return 1
                fps[name].append(result.fps)
                cpu[name].append(result.cpu_ms_per_frame)
                throughput.remove_quietly(out, jsonl)
            print(f"round {round_index + 1}: " + "  ".join(f"{n} {v[-1]:.0f}" for n, v in fps.items()),
                  file=sys.stderr)
    print(f"clip: {args.frames} frames 640x480 mp4v; model: {args.model or 'digits-shaped whole-frame (seeded)'}; "
          f"cv2 threads: {cv2.getNumThreads()}; cpus: {os.cpu_count()}; load avg: "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for name, values in fps.items():
        print(f"  {name:24s} {statistics.median(values):7.0f} fps  (min {min(values):.0f}, max {max(values):.0f})"
              f"   CPU {statistics.median(cpu[name]):.2f} ms/frame")

    def ratio(num, den):
        return statistics.median(a / b for a, b in zip(fps[num], fps[den]))

    print(f"  video / decode-only                    {100 * ratio('video', 'decode-only'):5.1f}%  (target >= 95%)")
    print(f"  video --output / encode-only           {100 * ratio('video --output', 'encode-only'):5.1f}%  "
          f"(target >= 90%)")
    if not args.skip_jsonl:
        print(f"  video --output --jsonl / encode-only   "
              f"{100 * ratio('video --output --jsonl', 'encode-only'):5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
