"""The streaming loop: source -> preprocess -> model -> overlay -> sinks.

Threads overlap: the source's capture/decode thread; a processing thread doing preprocessing (one Numba kernel),
the forward pass (Numba kernels release the GIL), the JSONL line and the overlay; and the video encoder thread.
With a window, the main thread does only cv2.imshow / waitKey (GUI toolkits want the main thread) and shows the
newest annotated frame; without one, the main thread is the processing thread. A file therefore runs close to
the slowest of decoder, model and encoder. Nothing is drawn when no window or video will show it.

Whatever ends the loop — end of stream, a source fault, q in the window, Ctrl-C — the outputs are finalised
(video released and checked playable, JSONL closed), the summary is printed, and only then is the error raised.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import click
import cv2
import numpy as np

from stream_cnn.errors import StreamCnnError
from stream_cnn.overlay import Overlay, OverlayStats, ProbabilitySmoother
from stream_cnn.preprocess import FramePreprocessor
from stream_cnn.sinks import WindowSink

NO_PREDICTION = "no digit"
PROGRESS_INTERVAL_S = 0.2


@dataclass
class PipelineOptions:
    topk: int = 3
    smooth: int = 0                 # moving average over N predictions; 0/1 = off
    features: bool = False          # feature-map panel shown from the start (key f toggles)
    display: bool = True
    max_frames: int | None = None   # stop after this many frames taken from the source
    stride: int = 1                 # infer every Nth frame; the others are drawn with the latest prediction
    progress: bool | None = None    # None = when stderr is a terminal
    roi: tuple | None = None
    title: str = "stream-cnn"
    snapshot_dir: str = "."
    # cv2.setNumThreads for the run (restored after). OpenCV's pool splits every 640x480 cvtColor / blur / resize
    # over worker threads that spin-wait between jobs: with the decoder and encoder threads already on a 2-core
    # machine that bought no speed and cost 0.10-0.14 ms of CPU a frame (digits, measured side by side).
    # None leaves OpenCV's setting alone.
    opencv_threads: int | None = 1


@dataclass
class Summary:
    source: str
    frames: int = 0                 # frames taken from the source
    inferred: int = 0               # frames the model ran on
    dropped: int = 0
    repeated: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list = field(default_factory=list)
    classes: Counter = field(default_factory=Counter)
    outputs: list = field(default_factory=list)
    ended_by: str = "end of stream"
    video_frames: int | None = None   # frames in the annotated video as written (when --output), and its codec
    video_codec: str | None = None

    def latency_stats(self):
        if not self.latencies_ms:
            return None
        values = np.asarray(self.latencies_ms)
        return float(values.mean()), float(np.percentile(values, 50)), float(np.percentile(values, 95))

    def format(self) -> str:
        rate = self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0
        lines = [f"{self.frames} frames from {self.source} in {self.elapsed_s:.2f} s ({rate:.1f} fps), "
                 f"{self.inferred} inferred, {self.dropped} dropped, {self.repeated} frozen repeats; "
                 f"ended by {self.ended_by}"]
        stats = self.latency_stats()
        if stats:
            lines.append("inference latency ms: mean {:.3f}  p50 {:.3f}  p95 {:.3f}".format(*stats))
        if self.classes:
            ranked = sorted(self.classes.items(), key=lambda item: (-item[1], str(item[0])))
            lines.append("classes: " + "  ".join(f"{label}: {count}" for label, count in ranked))
        lines.extend(self.outputs)
        return "\n".join(lines)


class RateMeter:
    """Events per second over roughly the last second, from a running total."""

    def __init__(self):
        self._mark_time = time.perf_counter()
        self._mark_count = 0
        self.rate = 0.0

    def update(self, total: int, now: float) -> float:
        elapsed = now - self._mark_time
        if elapsed >= 0.5:
            self.rate = (total - self._mark_count) / elapsed
            self._mark_time, self._mark_count = now, total
        elif self._mark_count == 0 and elapsed > 0.05:
            self.rate = total / elapsed   # the first half second: the rate since the start
        return self.rate


class ProgressBar:
    """frames done / total, fps and ETA on one stderr line, redrawn in place."""

    def __init__(self, total: int | None, enabled: bool):
        self.total = total
        self.enabled = enabled
        self._last = 0.0
        self._start = time.perf_counter()
        self._drawn = False

    def update(self, done: int, dropped: int, force: bool = False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        elapsed = now - self._start
        fps = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            fraction = min(1.0, done / self.total)
            width = 24
            filled = int(round(width * fraction))
            eta = (self.total - done) / fps if fps > 0 else 0.0
            text = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {100 * fraction:3.0f}% "
                    f"{fps:6.1f} fps  ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        else:
            text = f"{done} frames  {fps:6.1f} fps  dropped {dropped}"
        sys.stderr.write("\r" + text + "  ")
        sys.stderr.flush()
        self._drawn = True

    def finish(self, done: int, dropped: int):
        if self.enabled:
            self.update(done, dropped, force=True)
            if self._drawn:
                sys.stderr.write("\n")
                sys.stderr.flush()


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (outputs finalised) but reported with its own exit status."""


class _Interrupts:
    """SIGINT / SIGTERM handlers for the main thread that can hold an interrupt back while one frame's outputs are
    written: the JSONL line and the video frame of a frame are written together or not at all (an interrupt
    between the two left a JSONL line with no frame in the video)."""

    def __init__(self):
        self.holding = False
        self.held: KeyboardInterrupt | None = None

    def handle(self, signum, frame):
        error = _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        if self.holding:
            self.held = error
        else:
            raise error

    def release(self):
        """End a held stretch; raise the interrupt that arrived during it, if any."""
        self.holding = False
        if self.held is not None:
            error, self.held = self.held, None
            raise error


class Pipeline:
    """Runs one stream to its end. Sinks are opened by the caller (so bad paths fail before processing)."""

    def __init__(self, source, model, options: PipelineOptions, *, video=None, jsonl=None, recorder=None,
                 echo=click.echo):
        self.source = source
        self.model = model
        self.options = options
        self.video = video
        self.jsonl = jsonl
        self.recorder = recorder
        self.echo = echo
        config = model.config
        # One forward pass now: the first call loads or compiles the kernels, which must not land on frame 0's
        # latency; it also tells how many classes an unlabelled model has.
        n_classes = int(np.asarray(model.forward()).size)
        labels = getattr(config, "labels", None) or [str(i) for i in range(n_classes)]
        self.labels = [str(label) for label in labels]
        self.digit_mode = str(getattr(config, "preprocess", "frame") or "frame").lower() == "digit"
        self.min_confidence = float(getattr(config, "min_confidence", 0.0) or 0.0)
        self.preprocess = FramePreprocessor(config, model.input, roi=options.roi,
                                            luma_to_gray=getattr(source, "luma_to_gray", None) or "full")
        if self.digit_mode:
            self.preprocess.digit_finder.warm_up()  # the finder's kernels too, for the same reason
        topk = max(1, min(int(options.topk), len(self.labels)))
        self.topk = topk
        self.overlay = Overlay(self.labels, topk=topk, show_features=options.features)
        self.smoother = (ProbabilitySmoother(options.smooth, len(self.labels)) if options.smooth > 1 else None)
        self.window = WindowSink(options.title, options.snapshot_dir) if options.display else None
        self.summary = Summary(source=source.name)
        self._probs = np.zeros(len(self.labels), np.float64)

    def _predict(self, image: np.ndarray):
        """Preprocess + forward; returns (probs or None, region, forward latency ms). The probabilities are copied
        into a buffer of the pipeline's (the model's own is overwritten by the next pass), which holds them until
        the next inferred frame: they stay on screen over the frames a stride skips."""
        region = self.preprocess(image)
        if region is None and self.digit_mode:
            if self.smoother is not None:
                self.smoother.reset()
            return None, None, 0.0
        start = time.perf_counter()
        raw = self.model.forward()
        latency_ms = (time.perf_counter() - start) * 1000.0
        probs = self.smoother.update(raw) if self.smoother is not None else raw
        held = self._probs
        held[:] = probs
        return held, region, latency_ms

    def _label_of(self, probs) -> str | None:
        """The argmax label, or None when there is no prediction or it is under the model's min_confidence."""
        if probs is None:
            return None
        best = int(probs.argmax())
        return self.labels[best] if probs[best] >= self.min_confidence else None

    def _jsonl_record(self, frame, probs, region, latency_ms) -> dict:
        label, prob, topk = None, None, []
        if probs is not None:
            # Stable on the negated values: ties rank the lower class index first, as argmax does.
            order = np.argsort(-probs, kind="stable")[: self.topk]
            topk = [[self.labels[int(i)], round(float(probs[i]), 6)] for i in order]
            if float(probs[order[0]]) >= self.min_confidence:
                label, prob = topk[0]
        return {
            "frame": int(frame.index), "time_s": round(float(frame.time_s), 4), "label": label, "prob": prob,
            "topk": topk, "latency_ms": round(latency_ms, 4),
            "box": None if region is None else [int(v) for v in region],
            "dropped": int(self.source.dropped),
        }

    def _open_window(self):
        if self.window is None:
            return
        problem = self.window.open()
        if problem is not None:
            self.echo(f"stream-cnn: {problem}; running without a window (pass --no-display to skip the window, "
                      f"--output/--jsonl to keep the results)", err=True)
            self.window = None

    def _process_frames(self, progress: ProgressBar, publish=None):
        """The per-frame work, on whichever thread runs it: read, record raw, infer (every stride-th frame), write
        the JSONL line, and -- only when someone will look at it -- draw the overlay and hand the annotated frame to
        the encoder and to ``publish`` (the window). Returns when the stream ends, max_frames is reached or
        ``self._stop`` is set; pauses while ``self._resume`` is clear."""
        # Everything looked up once: this loop runs for every frame, and on a shared machine its Python cost is
        # paid in frames per second. Work nobody will see (rates and overlay when nothing is drawn, the JSONL
        # record without --jsonl, the progress line when it is off) is skipped, not done and thrown away.
        options, summary, stats = self.options, self.summary, self.stats
        source, recorder, video, jsonl = self.source, self.recorder, self.video, self.jsonl
        # Signal handlers run in the main thread: a worker (window mode) holds nothing back, the window loop stops it
        interrupts = self._interrupts if publish is None else _Interrupts()
        read, predict, label_of = source.read, self._predict, self._label_of
        classes, latencies = summary.classes, summary.latencies_ms
        resume, stop = self._resume, self._stop
        stride = max(1, int(options.stride))
        limit = options.max_frames
        draws = video is not None or publish is not None
        capture_meter, process_meter = RateMeter(), RateMeter()
        progress_update = progress.update if progress.enabled else None
        perf_counter = time.perf_counter
        probs, region, latency_ms = None, None, 0.0
        frames = inferred = 0
        try:
            while limit is None or frames < limit:
                if not resume.is_set():
                    resume.wait()
                if stop.is_set():
                    return
                frame = read()
                if frame is None:
                    return
                frames += 1
                image = frame.image
                if recorder is not None:
                    # Raw, before the overlay draws on it: a copy only when something will draw (the source
                    # hands out a fresh array per frame and never writes to it again).
                    recorder.write(image.copy() if draws else image)
                if (frames - 1) % stride == 0:
                    probs, region, latency_ms = predict(image)
                    inferred += 1
                    if probs is not None:
                        latencies.append(latency_ms)
                    label = label_of(probs)
                    classes[label if label is not None else NO_PREDICTION] += 1
                    if jsonl is not None:
                        interrupts.holding = draws and video is not None   # until the video has this frame too
                        jsonl.write(self._jsonl_record(frame, probs, region, latency_ms))
                if draws:
                    now = perf_counter()
                    stats.capture_fps = capture_meter.update(source.frames_read, now)
                    stats.process_fps = process_meter.update(frames, now)
                    if image.ndim == 2:    # a luma-only source feeding a picture after all: draw in colour
                        image = frame.image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                    stats.latency_ms = latency_ms
                    stats.dropped = source.dropped
                    stats.repeated = source.repeated
                    feature_maps = self.model.feature_maps() if self.overlay.show_features else None
                    confident = probs is None or float(probs.max()) >= self.min_confidence
                    annotated = self.overlay.draw(image, probs, region, stats=stats, no_prediction=NO_PREDICTION,
                                                  feature_maps=feature_maps, confident=confident)
                    if video is not None:
                        video.write(annotated)
                        if interrupts.holding:
                            interrupts.release()
                    if publish is not None:
                        publish(annotated)
                if progress_update is not None:
                    progress_update(frames, source.dropped)
        finally:
            summary.frames, summary.inferred = frames, inferred
        self.summary.ended_by = f"--max-frames {options.max_frames}"

    def _worker(self, progress: ProgressBar):
        try:
            self._process_frames(progress, publish=self._publish)
        except BaseException as err:   # handed to the main thread, which raises it once outputs are finalised
            self._worker_error = err
        finally:
            with self._shown:
                self._worker_done = True
                self._shown.notify_all()

    def _publish(self, annotated: np.ndarray):
        # The window shows the newest annotated frame; older ones still went to the file, none is kept waiting.
        with self._shown:
            self._latest = annotated
            self._shown.notify_all()

    def _next_to_show(self):
        """The newest annotated frame not yet shown (None if none came within a GUI tick), and whether the worker
        is done."""
        with self._shown:
            if self._latest is None and not self._worker_done:
                self._shown.wait(0.02)
            frame, self._latest = self._latest, None
            return frame, self._worker_done

    def _window_loop(self, progress: ProgressBar):
        """Main thread with a window: cv2.imshow / waitKey only; a worker thread does everything else."""
        worker = threading.Thread(target=self._worker, args=(progress,), name="stream-cnn-process", daemon=True)
        worker.start()
        shown = None
        try:
            while True:
                frame, done = self._next_to_show()
                if frame is None and done:
                    break
                if frame is None and shown is None:
                    continue
                # No new frame: poll the keyboard only, so the window stays responsive between frames.
                action = self.window.show(frame)
                shown = frame if frame is not None else shown
                if action == "pause":
                    self._resume.clear()
                    self.stats.paused = True
                    action = self._wait_while_paused(shown)
                    self.stats.paused = False
                    self._resume.set()
                if action == "snapshot":
                    self.echo(f"snapshot: {self.window.save_snapshot(shown)}", err=True)
                elif action == "features":
                    self.overlay.toggle_features()
                elif action == "quit":
                    self.summary.ended_by = "quit key"
                    break
        finally:
            self._stop.set()
            self._resume.set()
            worker.join()
        if self._worker_error is not None:
            raise self._worker_error

    def _wait_while_paused(self, annotated: np.ndarray) -> str | None:
        while True:
            action = self.window.show(annotated, wait_ms=50)
            if action in ("pause", "quit"):
                return action
            if action == "snapshot":
                self.echo(f"snapshot: {self.window.save_snapshot(annotated)}", err=True)

    def run(self) -> Summary:
        options = self.options
        summary = self.summary
        progress_enabled = options.progress if options.progress is not None else sys.stderr.isatty()
        progress = ProgressBar(self.source.total_frames if not self.source.live else None, progress_enabled)
        self.stats = OverlayStats()
        self._stop, self._resume = threading.Event(), threading.Event()
        self._resume.set()
        self._shown = threading.Condition()
        self._latest, self._worker_done, self._worker_error = None, False, None
        previous_term_handler = previous_int_handler = None
        self._interrupts = interrupts = _Interrupts()
        if threading.current_thread() is threading.main_thread():
            previous_term_handler = signal.signal(signal.SIGTERM, interrupts.handle)
            # Ctrl-C only where Python's own handler is installed: an ignored SIGINT (a background job) stays ignored
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                previous_int_handler = signal.signal(signal.SIGINT, interrupts.handle)
        interrupted: KeyboardInterrupt | None = None
        previous_opencv_threads = cv2.getNumThreads()
        if options.opencv_threads is not None:
            cv2.setNumThreads(int(options.opencv_threads))
        started = time.perf_counter()
        try:
            self._open_window()
            self.source.start()
            if self.window is None:
                self._process_frames(progress)
            else:
                self._window_loop(progress)
        except KeyboardInterrupt as err:
            interrupted = err
            summary.ended_by = "SIGTERM" if isinstance(err, _Terminated) else "Ctrl-C"
        finally:
            interrupts.holding = False   # an error mid-frame must not leave later interrupts held
            summary.elapsed_s = time.perf_counter() - started
            cv2.setNumThreads(previous_opencv_threads)
            self.source.close()
            summary.dropped = self.source.dropped
            summary.repeated = self.source.repeated
            if previous_term_handler is not None:
                signal.signal(signal.SIGTERM, previous_term_handler)
            if previous_int_handler is not None:
                signal.signal(signal.SIGINT, previous_int_handler)
            progress.finish(summary.frames, summary.dropped)
            output_failures = self._close_outputs()
        stop_reason = self.source.stop_reason
        if stop_reason is not None and interrupted is None:
            summary.ended_by = "a source fault"
        self.echo(summary.format())
        if interrupted is not None:
            if isinstance(interrupted, _Terminated):
                raise StreamCnnError(f"terminated (SIGTERM) after {summary.frames} frames; outputs finalised",
                                     exit_code=143)
            raise StreamCnnError(f"interrupted (Ctrl-C) after {summary.frames} frames; outputs finalised",
                                 exit_code=130)
        if output_failures:
            raise output_failures[0]
        if stop_reason is not None:
            raise stop_reason
        return summary

    def _close_outputs(self) -> list:
        """Finalise every sink even if one fails; returns the failures, raised once the summary is out."""
        failures = []
        if self.window is not None:
            self.window.close()
        if self.video is not None:
            try:
                frames = self.video.close()
                self.summary.video_frames, self.summary.video_codec = self.video.frames_written, self.video.fourcc
                if self.video.path is not None:
                    self.summary.outputs.append(
                        f"annotated video: {self.video.path} ({frames} frames, {self.video.fourcc})")
                for note in self.video.notes:
                    self.echo(f"stream-cnn: {note}", err=True)
            except StreamCnnError as err:
                failures.append(err)
        if self.jsonl is not None:
            self.jsonl.close()
            self.summary.outputs.append(f"predictions: {self.jsonl.path} ({self.jsonl.lines} lines)")
        if self.recorder is not None:
            try:
                frames = self.recorder.close(dropped=int(self.source.dropped), source_fps=float(self.source.fps))
                self.summary.outputs.append(f"recording: {self.recorder.directory} ({frames} raw frames)")
            except StreamCnnError as err:
                failures.append(err)
        if self.window is not None and self.window.snapshots:
            self.summary.outputs.append(f"snapshots: {', '.join(self.window.snapshots)}")
        return failures
