"""Frames per second of `stream-cnn video` against what the decoder (and encoder) alone can do on the same clip.

The clip is generated: 640x480 at 30 fps, a sheet of paper with a digit drifting across a textured desk, with
per-frame sensor noise, encoded with mp4v (the codec the video sink uses first). Each repetition runs, back to back:

* decode-only: a plain ``cv2.VideoCapture.read()`` loop over the clip, OpenCV's defaults (the target's baseline);
  and the same with one decoder thread, as the pipeline's file source opens files (a diagnostic);
* video: the real runner (``stream_cnn.pipeline.run_stream``, the CLI's entry, no window), every frame;
* encode-only: decode + ``cv2.VideoWriter.write`` of every frame, no model;
* video --output: the runner writing the annotated video through ``sinks.VideoFileSink``.

Ratios are taken per repetition (same load for both runs) and the median reported; CPU time per frame (all
threads) is recorded beside each rate. The runner is timed as a user waits for it: from opening the clip to the
return of ``Pipeline.run()``, including finalising and checking the output video.
"""
from __future__ import annotations

import os
import statistics
import tempfile

import cv2
import numpy as np

from stream_cnn.errors import StreamCnnError
from stream_cnn.pipeline import throughput

CLIP_SIZE = (640, 480)
CLIP_FPS = 30.0


def make_clip(path: str, frames: int, size=CLIP_SIZE, fps=CLIP_FPS, digit: str = "3") -> str:
    """Write the benchmark clip; returns its path."""
    width, height = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise StreamCnnError(f"cannot write the benchmark clip {path}: no mp4v encoder in this OpenCV build")
    rng = np.random.default_rng(5)
    # A desk: a dim gradient with fixed grain, so the frames are not trivially compressible.
    ramp = (np.linspace(60, 110, width, dtype=np.float32)[None, :]
            + np.linspace(0, 30, height, dtype=np.float32)[:, None])
    desk = np.clip(ramp + rng.normal(0, 6, (height, width)), 0, 255).astype(np.uint8)
    desk = cv2.merge([desk, (desk * 0.9).astype(np.uint8), (desk * 0.8).astype(np.uint8)])
    # Sensor noise changes every frame in a real camera clip, and it is what makes decoding cost what it does: a
    # noiseless clip decodes several times faster than any camera recording. Eight noise fields, cycled.
    noise = [rng.integers(-5, 6, (height, width, 1), dtype=np.int16) for _ in range(8)]
    sheet_w, sheet_h = 240, 300
    for index in range(frames):
        frame = desk.copy()
        phase = 2 * np.pi * index / max(frames, 1)
        x = int(width / 2 - sheet_w / 2 + 120 * np.sin(phase))
        y = int(height / 2 - sheet_h / 2 + 50 * np.sin(2 * phase))
        cv2.rectangle(frame, (x, y), (x + sheet_w, y + sheet_h), (235, 238, 240), thickness=-1)
        cv2.putText(frame, digit, (x + 65, y + 215), cv2.FONT_HERSHEY_SIMPLEX, 6.0, (40, 40, 45), thickness=18,
                    lineType=cv2.LINE_AA)
        frame = np.clip(frame + noise[index % len(noise)], 0, 255).astype(np.uint8)
        writer.write(frame)
    writer.release()
    return path


def sample_frame(index: int = 10) -> np.ndarray:
    """One frame of the benchmark clip (BGR, 640x480), for per-frame measurements without a file."""
    with tempfile.TemporaryDirectory(prefix="stream-cnn-bench-frame-") as workdir:
        clip = make_clip(os.path.join(workdir, "frame.mp4"), index + 1)
        capture = cv2.VideoCapture(clip)
        frame = None
        for _ in range(index + 1):
            ok, image = capture.read()
            if ok:
                frame = image
        capture.release()
    if frame is None:
        raise StreamCnnError("cannot decode the generated benchmark clip (no mp4v decoder in this OpenCV build?)")
    return frame


def decode_only(clip: str, decoder_threads: int | None = None) -> dict:
    """A plain read loop; decoder_threads=None leaves FFmpeg's own choice (frame threads on every core)."""
    if decoder_threads is None:
        capture = cv2.VideoCapture(clip)
    else:
        capture = cv2.VideoCapture(clip, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, int(decoder_threads)])
    clock = throughput.Clock()  # started once the clip is open
    run = clock.run("decode-only", throughput.read_every_frame(capture))
    capture.release()
    return _rates(run)


def _rates(run: throughput.Run) -> dict:
    """fps, and CPU time per frame over all threads of this process: on a shared machine the wall-clock rate
    follows the CPU cost more than the critical path."""
    return {"frames": run.frames, "seconds": run.seconds, "fps": run.fps, "cpu_ms_per_frame": run.cpu_ms_per_frame}


def encode_only(clip: str, out_path: str) -> dict:
    """Decode and encode (mp4v) on one thread, one frame after the other."""
    capture = cv2.VideoCapture(clip)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, (width, height))
    clock = throughput.Clock()
    frames = throughput.read_every_frame(capture, writer.write)
    writer.release()
    run = clock.run("encode-only", frames)
    capture.release()
    return _rates(run)


def run_video(clip: str, model, out_path: str | None) -> dict:
    """The real runner on every frame of the clip, headless, as `stream-cnn video CLIP [--output OUT]` runs it:
    through ``pipeline.run_stream``, the CLI's own entry, so the source it picks (the luma plane for gray
    whole-frame models) is the one measured. Timed from opening the source to the return of the run, which
    includes finalising the output video and the sink's own playability check: what a user waits for."""
    run, summary = throughput.video_with_summary(clip, model, output=out_path)
    result = _rates(run)
    result.update({"inferred": summary.inferred, "dropped": summary.dropped, "runner_elapsed_s": summary.elapsed_s})
    if out_path:
        result.update({"frames_written": summary.video_frames, "codec": summary.video_codec})
    latency = summary.latency_stats()
    if latency:
        result["forward_ms_mean"], result["forward_ms_p50"], result["forward_ms_p95"] = latency
    return result


def bench_pipeline(model, model_key: str, frames: int, repeats: int, log=lambda text: None) -> dict:
    with tempfile.TemporaryDirectory(prefix="stream-cnn-bench-video-") as workdir:
        clip = make_clip(os.path.join(workdir, "clip.mp4"), frames)
        log(f"  clip: {frames} frames {CLIP_SIZE[0]}x{CLIP_SIZE[1]} at {CLIP_FPS:g} fps, mp4v")
        runs = {"decode_only": [], "decode_only_1thread": [], "video": [], "encode_only": [], "video_output": []}
        for repeat in range(repeats):
            runs["decode_only"].append(decode_only(clip))
            runs["decode_only_1thread"].append(decode_only(clip, decoder_threads=1))
            runs["video"].append(run_video(clip, model, None))
            runs["encode_only"].append(encode_only(clip, os.path.join(workdir, "encoded.mp4")))
            runs["video_output"].append(run_video(clip, model, os.path.join(workdir, "annotated.mp4")))
            log(f"  repeat {repeat + 1}/{repeats}: decode {runs['decode_only'][-1]['fps']:.0f} fps, video "
                f"{runs['video'][-1]['fps']:.0f}, encode {runs['encode_only'][-1]['fps']:.0f}, video --output "
                f"{runs['video_output'][-1]['fps']:.0f}")
    fps = {name: statistics.median(run["fps"] for run in values) for name, values in runs.items()}
    cpu = {name: statistics.median(run["cpu_ms_per_frame"] for run in values) for name, values in runs.items()}
    # Ratios per repetition (the runs of one repetition ran back to back, under the same load), then the median.
    video_vs_decode = [v["fps"] / d["fps"] for v, d in zip(runs["video"], runs["decode_only"])]
    output_vs_encode = [v["fps"] / e["fps"] for v, e in zip(runs["video_output"], runs["encode_only"])]
    return {
        "model": model_key, "clip": {"frames": frames, "width": CLIP_SIZE[0], "height": CLIP_SIZE[1],
                                     "fps": CLIP_FPS, "codec": "mp4v"},
        "repeats": repeats, "fps": fps, "cpu_ms_per_frame": cpu,
        "video_vs_decode": statistics.median(video_vs_decode),
        "video_output_vs_encode": statistics.median(output_vs_encode),
        "runs": runs,
    }
